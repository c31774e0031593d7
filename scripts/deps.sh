#!/usr/bin/env bash
# Installs the Debian 12 packages pdm-agent needs (run as root).
#   scripts/deps.sh          build + demo packages
#   scripts/deps.sh --test   also what the test suite needs
#   scripts/deps.sh --package   also what scripts/package.sh needs to build and check .debs
# apt-get runs only when something is missing, so repeated runs cost nothing.
set -euo pipefail

pkgs=(
    # build
    cmake make gcc pkg-config libc6-dev
    libpaho-mqtt-dev libssl-dev libmodbus-dev libsqlite3-dev libmbedtls-dev
    libprotobuf-c-dev protobuf-c-compiler libinih-dev
    # demo: broker and throwaway certificates
    mosquitto openssl
)
if [ "${1:-}" = "--test" ]; then
    pkgs+=(
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
fi
if [ "${1:-}" = "--package" ]; then
    # debian/ builds with debhelper; lintian checks the result; the amd64 package's install
    # test runs its postinst, which needs adduser (missing from minimal images)
    pkgs+=(debhelper dpkg-dev lintian adduser)
fi

missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "deps.sh: these Debian packages are missing: ${missing[*]}" >&2
    echo "deps.sh: run as root (or: sudo apt-get install ${missing[*]})" >&2
    exit 1
fi
echo "deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
