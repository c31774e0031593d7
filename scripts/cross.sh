#!/usr/bin/env bash
# Cross-builds pdm-agent for an ARM board and runs the whole test suite under qemu-user:
#   scripts/cross.sh arm64|armhf [CTEST ARGS...]     e.g. scripts/cross.sh armhf -L unit
# Build folder build-ARCH (RelWithDebInfo, -Werror). CTest runs the cross-built unit tests
# through CMAKE_CROSSCOMPILING_EMULATOR and the integration tests with pdm-agent, pdmctl,
# pdm-sim and the probes under qemu, while mosquitto, openssl, socat and python stay native.
# PDM_CROSS_BUILD_ONLY=1: build, run no tests.
set -euo pipefail
cd "$(dirname "$0")/.."

arch=${1:-}
case $arch in
arm64 | armhf) shift ;;
*)
    echo "usage: scripts/cross.sh arm64|armhf [ctest args...]" >&2
    exit 2
    ;;
esac
t0=$SECONDS
step() { echo; echo "== $arch: $* ($((SECONDS - t0)) s)"; }

scripts/deps.sh --test --cross "$arch"

# Debian multiarch packages (libfoo-dev:ARCH) when they are installed, else the sysroot that
# deps.sh unpacked because they could not be (see deps.sh).
sysroot=
if ! dpkg-query -W -f='${Status}' "libpaho-mqtt-dev:$arch" 2>/dev/null | grep -q "install ok installed"; then
    sysroot=${PDM_CROSS_CACHE:-/var/cache/pdm-agent-cross}/$arch/root
    [ -f "$sysroot/.pdm-sysroot" ] || {
        echo "cross.sh: neither libpaho-mqtt-dev:$arch nor a sysroot in $sysroot (scripts/deps.sh --cross $arch)" >&2
        exit 1
    }
fi
build=build-$arch
# a build folder made for the other kind of library lookup starts afresh
if [ -f "$build/CMakeCache.txt" ] &&
    [ "$(sed -n 's/^PDM_CROSS_SYSROOT:PATH=//p' "$build/CMakeCache.txt")" != "$sysroot" ]; then
    rm -rf "$build"
fi

step "build for $arch (RelWithDebInfo, -Wall -Wextra -Werror${sysroot:+, sysroot $sysroot})"
cmake -S . -B "$build" -DCMAKE_TOOLCHAIN_FILE="cmake/toolchain-$arch.cmake" \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPDM_WERROR=ON -DPDM_CROSS_SYSROOT="$sysroot" >/dev/null
cmake --build "$build" -j"$(nproc)"
if [ "${PDM_CROSS_BUILD_ONLY:-0}" = 1 ]; then
    step "built"
    exit 0
fi

step "tests under qemu-user"
(cd "$build" && ctest --output-on-failure -j2 --timeout 300 "$@")
step "all $arch tests passed"
