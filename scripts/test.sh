#!/usr/bin/env bash
# The whole test suite: installs what it needs, builds, runs CTest; then the same suite again
# built with AddressSanitizer + UndefinedBehaviorSanitizer.
#   scripts/test.sh            everything
#   PDM_TEST_FAST=1 scripts/test.sh   skip the sanitizer pass
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
t0=$SECONDS
scripts/deps.sh --test

step() { echo; echo "== $* ($((SECONDS - t0)) s)"; }

step "format check (.clang-format)"
scripts/format.sh --check

step "build (RelWithDebInfo, -Wall -Wextra -Werror)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)"
step "tests"
(cd build && ctest --output-on-failure -j2 --timeout 300)

if [ "${PDM_TEST_FAST:-0}" != 1 ]; then
    step "build with ASan + UBSan"
    cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DPDM_SANITIZE=ON >/dev/null
    cmake --build build-asan -j"$(nproc)"
    step "tests under ASan + UBSan"
    (cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
        LSAN_OPTIONS=suppressions="$repo/tests/lsan.supp":print_suppressions=0 \
        UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        ctest --output-on-failure -j2 --timeout 300)
fi
step "all tests passed"
