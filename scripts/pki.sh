#!/usr/bin/env bash
# Throwaway PKI for the demo and the tests: a CA, a broker certificate for 127.0.0.1/localhost,
# a device (client) certificate, a subscriber certificate, and a second, unrelated "rogue" CA
# with its own broker certificate (to prove that an unknown broker is refused).
#
#   scripts/pki.sh DIR [DEVICE_ID]
#
# Files in DIR: ca.pem ca.key server.pem server.key device.pem device.key sub.pem sub.key
#               rogue-ca.pem rogue-server.pem rogue-server.key
# Keys are EC P-256. Never use these outside a test.
set -euo pipefail
dir=${1:?usage: pki.sh DIR [DEVICE_ID]}
device=${2:-gw-0001}
mkdir -p "$dir"
cd "$dir"

mkca() { # name subject
    openssl ecparam -name prime256v1 -genkey -noout -out "$1.key" 2>/dev/null
    openssl req -x509 -new -key "$1.key" -sha256 -days 30 -subj "$2" -out "$1.pem" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
}
mkcert() { # name ca subject extfile-lines
    openssl ecparam -name prime256v1 -genkey -noout -out "$1.key" 2>/dev/null
    openssl req -new -key "$1.key" -subj "$3" -out "$1.csr"
    printf '%s\n' "$4" >"$1.ext"
    openssl x509 -req -in "$1.csr" -CA "$2.pem" -CAkey "$2.key" -CAcreateserial -days 30 \
        -sha256 -extfile "$1.ext" -out "$1.pem" 2>/dev/null
    rm -f "$1.csr" "$1.ext"
}

mkca ca "/CN=pdm-agent test CA"
mkcert server ca "/CN=localhost" \
    "subjectAltName=DNS:localhost,IP:127.0.0.1
extendedKeyUsage=serverAuth"
mkcert device ca "/CN=$device" "extendedKeyUsage=clientAuth"
mkcert sub ca "/CN=backend-subscriber" "extendedKeyUsage=clientAuth"
mkca rogue-ca "/CN=someone else's CA"
mkcert rogue-server rogue-ca "/CN=localhost" \
    "subjectAltName=DNS:localhost,IP:127.0.0.1
extendedKeyUsage=serverAuth"
chmod 600 ./*.key
rm -f ./*.srl
