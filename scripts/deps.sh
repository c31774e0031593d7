#!/usr/bin/env bash
# Installs the Debian 12 packages pdm-agent needs (run as root).
#   scripts/deps.sh                build + demo packages
#   scripts/deps.sh --test         also what the test suite needs
#   scripts/deps.sh --package      also what scripts/package.sh needs to build and check .debs
#   scripts/deps.sh --cross ARCH   also a cross toolchain, the target's libraries and qemu-user for
#                                  ARCH (arm64 or armhf); options combine
# apt-get runs only when something is missing, so repeated runs cost nothing.
#
# The target's libraries come as Debian multiarch packages (libfoo-dev:ARCH beside the native
# ones) when apt can install them. Those must have exactly the version of this machine's own
# libfoo, so a mirror whose ARCH lists lag behind (or fail to download) makes that impossible;
# then they are unpacked into a sysroot instead, $PDM_CROSS_CACHE/ARCH/root
# (default /var/cache/pdm-agent-cross), with a private apt state, leaving dpkg untouched.
# scripts/cross.sh uses whichever is there.
set -euo pipefail

usage() {
    echo "usage: scripts/deps.sh [--test] [--package] [--cross arm64|armhf]..." >&2
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
    groff-base man-db # it_manpages: render docs/man/ with groff -ww and man --warnings
    chromium          # headless rendering of the pdmctl report page (it_report)
    clang-format
)
# debian/ builds with debhelper; lintian checks the result; the amd64 package's install test
# runs its postinst, which needs adduser (missing from minimal images)
package_pkgs=(debhelper dpkg-dev lintian adduser)
# The libraries the agent links, as ARCH's multiarch -dev packages (they install beside the
# native ones). libssl-dev because Paho's CMake package links OpenSSL::SSL.
cross_libs=(libpaho-mqtt-dev libssl-dev libmodbus-dev libsqlite3-dev libmbedtls-dev
    libprotobuf-c-dev libinih-dev)
cache=${PDM_CROSS_CACHE:-/var/cache/pdm-agent-cross}
arches=()

while [ $# -gt 0 ]; do
    case $1 in
    --test) pkgs+=("${test_pkgs[@]}") ;;
    --package) pkgs+=("${package_pkgs[@]}") ;;
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
    # crossbuild-essential-ARCH: the cross gcc and binutils; protoc-c stays the host's;
    # qemu-user-static runs the target's programs in the tests.
    pkgs+=("crossbuild-essential-$a" qemu-user-static)
done

is_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

need_root() { # WHAT
    if [ "$(id -u)" -ne 0 ]; then
        echo "deps.sh: $1" >&2
        echo "deps.sh: run as root" >&2
        exit 1
    fi
}

# install_missing PKG...: apt-get install of those not installed yet.
install_missing() {
    local missing=() p
    for p in "$@"; do
        is_installed "$p" || missing+=("$p")
    done
    [ ${#missing[@]} -gt 0 ] || return 0
    need_root "these Debian packages are missing: ${missing[*]} (sudo apt-get install ${missing[*]})"
    echo "deps.sh: installing ${missing[*]}"
    # A list that fails to download (a mirror mid-sync) is not fatal by itself: the install
    # fails, naming the package, if it really needed that list.
    apt-get update -q || echo "deps.sh: apt-get update reported errors (above); installing with the lists it has" >&2
    # other apt users on the same machine: wait for the lock instead of failing
    apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${missing[@]}"
}

# apt_private ARCH ARGS...: apt-get for ARCH alone with its own lists and an empty package
# database under $cache/ARCH/apt; Debian's sources only.
apt_private() {
    local a=$1 d=$cache/$1/apt
    shift
    mkdir -p "$d/lists/partial" "$d/archives/partial" "$d/sources.list.d"
    [ -f "$d/status" ] || : >"$d/status"
    cp /etc/apt/sources.list.d/debian.sources "$d/sources.list.d/" 2>/dev/null ||
        grep -h '^deb .*debian' /etc/apt/sources.list >"$d/sources.list.d/debian.list"
    apt-get -q -o APT::Architecture="$a" -o APT::Architectures::="$a" \
        -o Dir::State="$d" -o Dir::State::Lists="$d/lists" -o Dir::State::status="$d/status" \
        -o Dir::Cache="$d" -o Dir::Cache::archives="$d/archives" \
        -o Dir::Etc::SourceList=/dev/null -o Dir::Etc::SourceParts="$d/sources.list.d" \
        -o Dir::Etc::Preferences=/dev/null -o Dir::Etc::PreferencesParts=/dev/null \
        -o Debug::NoLocking=1 "$@"
}

# multiarch ARCH PKG...: installs PKG:ARCH beside the native packages if apt can; 1 if not,
# with dpkg left as it was.
multiarch() {
    local a=$1 added=0 p
    shift
    local want=()
    for p in "$@"; do want+=("$p:$a"); done
    if ! apt_private "$a" update >"$cache/$a/update.log" 2>&1; then
        grep '^E:' "$cache/$a/update.log" | head -n 3 >&2 || true
        echo "deps.sh: the $a package lists do not download completely: no multiarch packages for $a" >&2
        return 1
    fi
    if ! dpkg --print-foreign-architectures | grep -qx "$a"; then
        echo "deps.sh: adding the dpkg architecture $a"
        dpkg --add-architecture "$a"
        added=1
    fi
    if apt-get update -q && apt-get -s install --no-install-recommends "${want[@]}" >"$cache/$a/simulate.log" 2>&1; then
        apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${want[@]}"
        return 0
    fi
    grep -A8 'unmet dependencies' "$cache/$a/simulate.log" >&2 || true
    echo "deps.sh: the $a packages cannot be installed beside this machine's own (versions differ)" >&2
    if [ $added = 1 ] && [ -z "$(dpkg-query -W -f='${Architecture}\n' 2>/dev/null | grep -x "$a")" ]; then
        echo "deps.sh: removing the dpkg architecture $a again"
        dpkg --remove-architecture "$a"
        apt-get update -q >/dev/null 2>&1 || true
    fi
    return 1
}

# sysroot ARCH PKG...: PKG and what it depends on for ARCH, unpacked into $cache/ARCH/root.
sysroot() {
    local a=$1 root=$cache/$1/root
    shift
    echo "deps.sh: unpacking the $a libraries into the sysroot $root"
    # errors here are lists that did not download (see multiarch); the rest is still usable
    apt_private "$a" update >"$cache/$a/update.log" 2>&1 || true
    rm -rf "$cache/$a/apt/archives"/*.deb "$root"
    apt_private "$a" install -y --download-only --no-install-recommends "$@" >"$cache/$a/download.log" 2>&1 || {
        tail -n 15 "$cache/$a/download.log" >&2
        echo "deps.sh: cannot download the $a packages for the sysroot" >&2
        exit 1
    }
    mkdir -p "$root"
    local deb
    for deb in "$cache/$a/apt/archives"/*.deb; do
        dpkg-deb -x "$deb" "$root"
    done
    printf '%s\n' "$@" >"$root/.pdm-sysroot"
}

install_missing "${pkgs[@]}"

for a in "${arches[@]}"; do
    # pkgconf:ARCH gives TRIPLET-pkg-config (multiarch only; a sysroot uses the host's)
    done_multi=1
    for l in "${cross_libs[@]}" pkgconf; do
        is_installed "$l:$a" || done_multi=0
    done
    [ $done_multi = 1 ] && continue
    # the sysroot is complete for this list of packages
    want=(libc6-dev libgcc-s1 "${cross_libs[@]}")
    [ "$(cat "$cache/$a/root/.pdm-sysroot" 2>/dev/null)" = "$(printf '%s\n' "${want[@]}")" ] && continue
    need_root "the $a libraries are missing (neither libfoo-dev:$a nor a sysroot in $cache/$a)"
    mkdir -p "$cache/$a"
    export DEBIAN_FRONTEND=noninteractive
    multiarch "$a" "${cross_libs[@]}" pkgconf || sysroot "$a" "${want[@]}"
done
