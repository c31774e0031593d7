#!/usr/bin/env bash
# The whole test suite: installs what it needs, builds, runs CTest; then the same suite again
# built with AddressSanitizer + UndefinedBehaviorSanitizer; then cross-built for ARM boards and
# run under qemu-user (scripts/cross.sh): arm64 always, armhf (32-bit) too unless turned off.
#   scripts/test.sh                    everything
#   PDM_TEST_FAST=1 scripts/test.sh    skip the sanitizer pass and the cross builds
#   PDM_TEST_CROSS="arm64"             the architectures to cross-test (default "arm64 armhf",
#                                      "" for none)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
t0=$SECONDS
fast=${PDM_TEST_FAST:-0}
cross=${PDM_TEST_CROSS-arm64 armhf}
[ "$fast" = 1 ] && cross=
deps=(--test)
for a in $cross; do deps+=(--cross "$a"); done
scripts/deps.sh "${deps[@]}"

# each step prints the seconds since the start; the end prints how long each part took
parts=() part= part_t=$SECONDS
step() {
    [ -n "$part" ] && parts+=("$(printf '%5d s  %s' $((SECONDS - part_t)) "$part")")
    part=$* part_t=$SECONDS
    echo
    echo "== $* ($((SECONDS - t0)) s)"
}

step "format check (.clang-format)"
scripts/format.sh --check

step "build (RelWithDebInfo, -Wall -Wextra -Werror)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)"
step "tests"
(cd build && ctest --output-on-failure -j2 --timeout 300)

if [ "$fast" != 1 ]; then
    step "build with ASan + UBSan"
    cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DPDM_SANITIZE=ON >/dev/null
    cmake --build build-asan -j"$(nproc)"
    step "tests under ASan + UBSan"
    (cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
        LSAN_OPTIONS=suppressions="$repo/tests/lsan.supp":print_suppressions=0 \
        UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        ctest --output-on-failure -j2 --timeout 300)
fi
for a in $cross; do
    step "cross build and tests for $a under qemu-user (scripts/cross.sh $a)"
    scripts/cross.sh "$a"
done
step "all tests passed"
echo "time per part:"
printf '  %s\n' "${parts[@]}"
printf '  %5d s  in all (including scripts/deps.sh)\n' $((SECONDS - t0))
