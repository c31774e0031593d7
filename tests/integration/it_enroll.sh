#!/usr/bin/env bash
# pdmctl enroll: the device's key and CSR made with mbed TLS, then the whole commissioning
# path with real parts:
#  1. the key is EC P-256 and owner-only (0600); the CSR verifies, names CN=device_id and the
#     organisation (with a comma), and carries the key's public half
#  2. the test CA signs the CSR with openssl; pdm-agent connects with that certificate to a
#     mosquitto that requires client certificates, and a subscriber receives its telemetry
#  3. existing files are never overwritten without --force; with --force a key that was 0644
#     comes back 0600; bad device ids are refused
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/agent_env.sh"
it_setup enroll
pki_make gw-test
E=$T/enroll
mkdir -p "$E"

echo "== 1. key and CSR"
"$PDMCTL" enroll --key-out "$E/device.key" --csr-out "$E/device.csr" --cn gw-test \
    --org "ACME Cooling, Inc." >"$T/enroll.out" 2>"$T/enroll.err" ||
    fail "enroll failed: $(cat "$T/enroll.err")"
cat "$T/enroll.out" "$T/enroll.err"
[ "$(stat -c %a "$E/device.key")" = 600 ] || fail "the key is $(stat -c %a "$E/device.key"), not 0600"
openssl pkey -in "$E/device.key" -noout -text 2>/dev/null | grep -q "NIST CURVE: P-256\|prime256v1" ||
    fail "the key is not EC P-256"
openssl req -in "$E/device.csr" -noout -verify 2>&1 | grep -q "verify OK" || fail "the CSR does not verify"
subject=$(openssl req -in "$E/device.csr" -noout -subject -nameopt RFC2253)
echo "$subject"
[ "$subject" = 'subject=CN=gw-test,O=ACME Cooling\, Inc.' ] || fail "CSR subject: $subject"
[ "$(openssl req -in "$E/device.csr" -noout -pubkey)" = "$(openssl pkey -in "$E/device.key" -pubout)" ] ||
    fail "the CSR does not carry the key's public half"

echo "== 2. signed by the CA, used by the agent against mosquitto"
printf 'extendedKeyUsage=clientAuth\n' >"$E/ext"
openssl x509 -req -in "$E/device.csr" -CA "$T/tls/ca.pem" -CAkey "$T/tls/ca.key" -CAcreateserial \
    -days 1 -sha256 -extfile "$E/ext" -out "$E/device.pem" 2>/dev/null || fail "the CA did not sign the CSR"
MQTT_PORT=$(free_port)
SIM_PORT=$(free_port)
broker_start "$MQTT_PORT"
write_agent_conf "$T/agent.conf" "$MQTT_PORT" "$SIM_PORT"
sed -i -e "s#^cert_file = .*#cert_file = $E/device.pem#" -e "s#^key_file = .*#key_file = $E/device.key#" \
    "$T/agent.conf"
subscribe sub --topic pdm/v1/gw-test/telemetry
start_bg sim "$PDM_SIM" --port "$SIM_PORT" --scenario healthy --quiet
wait_for 10 port_open "$SIM_PORT" || fail "pdm-sim did not listen"
start_bg agent "$PDM_AGENT" -c "$T/agent.conf"
wait_for 20 file_has "$T/agent.log" "connected; sending" || fail "the agent did not connect with the enrolled identity"
wait_for 20 file_has "$T/sub.log" '"device_id":"gw-test"' || fail "no telemetry from the enrolled device"
grep -q "as gw-test (.*u'gw-test')" "$T/mosquitto-$MQTT_PORT.log" ||
    fail "the broker does not know the device by its certificate's CN"

echo "== 3. no silent overwrite"
key_sum=$(sha256sum <"$E/device.key")
if "$PDMCTL" enroll --key-out "$E/device.key" --csr-out "$E/other.csr" --cn gw-test 2>"$T/again.err"; then
    fail "enroll overwrote an existing key"
fi
grep -q "device.key exists: refusing to overwrite it" "$T/again.err" || fail "no reason for refusing"
[ ! -e "$E/other.csr" ] || fail "a CSR was written for a key that was not"
[ "$(sha256sum <"$E/device.key")" = "$key_sum" ] || fail "the key changed"
chmod 644 "$E/device.key"
"$PDMCTL" enroll --key-out "$E/device.key" --csr-out "$E/device.csr" --cn gw-test --force \
    >/dev/null 2>"$T/force.err" || fail "enroll --force failed: $(cat "$T/force.err")"
[ "$(stat -c %a "$E/device.key")" = 600 ] || fail "after --force the key is $(stat -c %a "$E/device.key")"
[ "$(sha256sum <"$E/device.key")" != "$key_sum" ] || fail "--force kept the old key"
for bad in fleet 'gw 1' ''; do
    rc=0
    "$PDMCTL" enroll --key-out "$E/x.key" --csr-out "$E/x.csr" --cn "$bad" 2>/dev/null || rc=$?
    [ "$rc" = 2 ] || fail "--cn '$bad' not refused as a bad command line (exit $rc)"
done
[ ! -e "$E/x.key" ] || fail "a key was written for a refused device id"
echo "PASS"
