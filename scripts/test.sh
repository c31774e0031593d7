#!/usr/bin/env bash
# The whole test suite: installs what it needs, builds, runs CTest; then the same suite again
# built with AddressSanitizer + UndefinedBehaviorSanitizer; then cross-built for ARM boards and
# run under qemu-user (scripts/cross.sh): arm64 always, armhf (32-bit) too unless turned off.
#   scripts/test.sh                    everything
# then the Debian packages (scripts/package.sh --check): amd64 installed, upgraded and purged
# with dpkg here, the cross-tested architectures built and checked (lintian, fields, contents).
#   PDM_TEST_FAST=1 scripts/test.sh    skip the sanitizer pass, the cross builds and packages
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
[ "$fast" = 1 ] || deps+=(--package)
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
if [ "$fast" != 1 ]; then
    # a package needs the target's -dev packages installed through dpkg (multiarch); where the
    # mirror cannot provide them deps.sh made a sysroot for the tests instead, which is enough
    # to cross-test but not for dpkg-buildpackage: that architecture's package is skipped, said
    # here (DEVELOPERS.md, Packaging).
    pkg_arches=(amd64)
    for a in $cross; do
        if dpkg-query -W -f='${Status}' "libpaho-mqtt-dev:$a" 2>/dev/null | grep -q "install ok installed"; then
            pkg_arches+=("$a")
        else
            echo "test.sh: no $a package this run: its -dev packages are not installable from this mirror"
        fi
    done
    step "Debian packages ${pkg_arches[*]} (scripts/package.sh --check)"
    scripts/package.sh --check "${pkg_arches[@]}"
fi
step "all tests passed"
echo "time per part:"
printf '  %s\n' "${parts[@]}"
printf '  %5d s  in all (including scripts/deps.sh)\n' $((SECONDS - t0))
