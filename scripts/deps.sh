#!/usr/bin/env bash
# Installs the Debian 12 packages pdm-agent needs (run as root).
#   scripts/deps.sh                build + demo packages
#   scripts/deps.sh --test         also what the test suite needs
#   scripts/deps.sh --cross ARCH   also a cross toolchain, the target's -dev libraries and qemu-user
#                                  for ARCH (arm64 or armhf); options combine
# apt-get runs only when something is missing, so repeated runs cost nothing.
set -euo pipefail

usage() {
    echo "usage: scripts/deps.sh [--test] [--cross arm64|armhf]..." >&2
    exit 2
}

pkgs=(
    # build
    cmake make gcc pkg-config libc6-dev
    libpaho-mqtt-dev libssl-dev libmodbus-dev libsqlite3-dev libmbedtls-dev
    libprotobuf-c-dev protobuf-c-compiler libinih-dev
    # demo: broker and throwaway certificates
    mosquitto openssl
)
test_pkgs=(
    protobuf-compiler # protoc --decode: checks payloads against proto/ independently of our code
    sqlite3           # integrity checks of the store from the tests
    socat             # serial pty pairs for Modbus RTU tests
    python3           # free-port helper and delivery checks in tests
    iproute2          # ip netns + tc: a shaped, slow uplink for the replay test
    systemd           # systemd-analyze verify/security on packaging/pdm-agent.service
    clang-format
)
# The libraries the agent links, as ARCH's multiarch -dev packages (they install beside the
# native ones). libssl-dev because Paho's CMake package links OpenSSL::SSL.
cross_libs=(libpaho-mqtt-dev libssl-dev libmodbus-dev libsqlite3-dev libmbedtls-dev
    libprotobuf-c-dev libinih-dev)
arches=()

while [ $# -gt 0 ]; do
    case $1 in
    --test) pkgs+=("${test_pkgs[@]}") ;;
    --cross)
        [ $# -ge 2 ] || usage
        case $2 in
        arm64 | armhf) arches+=("$2") ;;
        *)
            echo "deps.sh: --cross $2: unknown architecture (arm64 or armhf)" >&2
            exit 2
            ;;
        esac
        shift
        ;;
    *) usage ;;
    esac
    shift
done

for a in "${arches[@]}"; do
    # crossbuild-essential-ARCH: gcc and libc6-dev:ARCH; pkgconf:ARCH: TRIPLET-pkg-config;
    # protoc-c stays the host's; qemu-user-static runs the target's programs in the tests.
    pkgs+=("crossbuild-essential-$a" "pkgconf:$a" qemu-user-static)
    for l in "${cross_libs[@]}"; do
        pkgs+=("$l:$a")
    done
done

missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
new_arches=()
for a in "${arches[@]}"; do
    dpkg --print-foreign-architectures | grep -qx "$a" || new_arches+=("$a")
done
if [ ${#missing[@]} -eq 0 ] && [ ${#new_arches[@]} -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    for a in "${new_arches[@]}"; do
        echo "deps.sh: dpkg does not know the architecture $a (dpkg --add-architecture $a)" >&2
    done
    echo "deps.sh: these Debian packages are missing: ${missing[*]}" >&2
    echo "deps.sh: run as root (or: sudo apt-get install ${missing[*]})" >&2
    exit 1
fi
for a in "${new_arches[@]}"; do
    echo "deps.sh: adding the dpkg architecture $a"
    dpkg --add-architecture "$a"
done
echo "deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# A list that fails to download (a mirror mid-sync) is not fatal by itself: the install below
# fails, naming the package, if it really needed that list.
apt-get update -q || echo "deps.sh: apt-get update reported errors (above); installing with the lists it has" >&2
# other apt users on the same machine: wait for the lock instead of failing
apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${missing[@]}"
