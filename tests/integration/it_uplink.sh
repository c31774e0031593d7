#!/usr/bin/env bash
# agent/uplink.c and pdmctl subscribe/decode against a real mosquitto with client certificates:
#  1. 200 QoS 1 publishes: 200 DELIVERED events, and a subscriber receives all 200
#  2. mqtt:// without allow_plaintext is refused with the reason
#  3. a broker with a certificate from another CA: CONNECT_FAILED names the verification failure,
#     nothing is published; the same for a certificate issued for another host name and for
#     a closed port, each with its own reason
#  4. pdmctl decode on a payload saved by subscribe --save (and Google's protoc if installed)
#  5. broker stopped under load: CONNECTION_LOST, in-flight count back to 0, publish -> ENOTCONN
#  6. Last Will: a killed client leaves a retained, binary offline Status
#  7. incoming commands: bounded slots, a too-large payload keeps its head (request id readable),
#     messages beyond the slots are counted in the overflow slot, none is lost unaccounted
#  8. pdmctl subscribe --timeout of 30 days waits (in ms it does not fit a 32-bit long)
source "$(dirname "$0")/lib.sh"
: "${UPLINK_PROBE:?run through ctest}" "${PDMCTL:?}"

it_setup it_uplink
pki_make gw-test
TLS=$T/tls
PORT=$(free_port)
broker_start "$PORT"
URI=mqtts://127.0.0.1:$PORT
DEV=("$TLS/ca.pem" "$TLS/device.pem" "$TLS/device.key")
SUB=(--ca "$TLS/ca.pem" --cert "$TLS/sub.pem" --key "$TLS/sub.key")

echo "== 1. 200 messages delivered and received"
mkdir -p "$T/saved"
start_bg sub1 "$PDMCTL" subscribe --uri "$URI" "${SUB[@]}" --count 200 --timeout 60 --json \
    --save "$T/saved" --client-id sub1
SUB1=$LAST_PID
wait_for 15 file_has "$T/sub1.log" "subscribed to" || fail "subscriber did not subscribe"
"$UPLINK_PROBE" publish "$URI" "${DEV[@]}" 200 >"$T/probe1.log" 2>&1 || {
    cat "$T/probe1.log"
    fail "probe: not every message was delivered exactly once"
}
cat "$T/probe1.log"
grep -q "publish before connect: -ENOTCONN" "$T/probe1.log" || fail "publish before connect not refused"
grep -q "^sent 200 delivered 200 duplicates 0 failed 0" "$T/probe1.log" || fail "delivery counts wrong"
wait "$SUB1" || fail "subscriber did not receive 200 messages"
[ "$(count_lines "$T/sub1.log" '"type":"alert"')" -eq 200 ] || fail "expected 200 JSON alert lines"
# every seq 1..200 exactly once, decoded from the protobuf payload
seqs=$(grep -o '"seq":[0-9]*' "$T/sub1.log" | sort -u | wc -l)
[ "$seqs" -eq 200 ] || fail "expected 200 distinct seq values, got $seqs"
grep -Eq '"topic":"pdm/v1/gw-test/alert","rx_ms":[0-9]+,"type":"alert","device_id":"gw-test"' "$T/sub1.log" ||
    fail "JSON envelope or field order wrong"
grep -q '"state":"RAISED","severity":"WARNING"' "$T/sub1.log" || fail "enums not printed as names"
saved=("$T"/saved/*.pb)
[ "${#saved[@]}" -eq 200 ] || fail "--save did not write 200 payloads"

echo "== 2. plain-text MQTT refused"
"$UPLINK_PROBE" plaintext "mqtt://127.0.0.1:$PORT" >"$T/probe2.log" 2>&1 || {
    cat "$T/probe2.log"
    fail "mqtt:// without allow_plaintext was not refused"
}
cat "$T/probe2.log"
grep -q "plain-text MQTT refused for URI mqtt://127.0.0.1:$PORT: use mqtts:// or set allow_plaintext = true" \
    "$T/probe2.log" || fail "refusal reason missing"

echo "== 3. broker with a certificate from another CA"
RPORT=$(free_port)
broker_start "$RPORT" rogue
start_bg sub3 "$PDMCTL" subscribe --uri "$URI" "${SUB[@]}" --topic 'pdm/v1/#' --json --client-id sub3
wait_for 15 file_has "$T/sub3.log" "subscribed to" || fail "subscriber 3 did not subscribe"
"$UPLINK_PROBE" refused "mqtts://127.0.0.1:$RPORT" "${DEV[@]}" >"$T/probe3.log" 2>&1 || {
    cat "$T/probe3.log"
    fail "connection to the rogue broker did not fail as expected"
}
cat "$T/probe3.log"
grep -q "^CONNECT_FAILED: TLS handshake with 127.0.0.1:$RPORT failed: certificate verify failed" \
    "$T/probe3.log" || fail "CONNECT_FAILED reason does not name the certificate verification"
grep -q "publish after failure: -ENOTCONN" "$T/probe3.log" || fail "publish not refused"
# pdmctl itself refuses the rogue broker, with the same reason
if "$PDMCTL" subscribe --uri "mqtts://127.0.0.1:$RPORT" "${SUB[@]}" --count 1 --timeout 10 \
    >"$T/sub-rogue.log" 2>&1; then
    fail "pdmctl subscribe accepted the rogue broker"
fi
grep -q "certificate verify failed" "$T/sub-rogue.log" || fail "pdmctl: reason missing"

# a certificate from our CA, but for another host name: refused by the host name check
(
    cd "$TLS"
    openssl ecparam -name prime256v1 -genkey -noout -out other.key 2>/dev/null
    openssl req -new -key other.key -subj /CN=other.example -out other.csr
    printf 'subjectAltName=DNS:other.example\nextendedKeyUsage=serverAuth\n' >other.ext
    openssl x509 -req -in other.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 \
        -extfile other.ext -out other.pem 2>/dev/null
)
NPORT=$(free_port)
sed -e "s/^listener .*/listener $NPORT 127.0.0.1/" -e "s#/server\.#/other.#g" \
    "$T/mosquitto-$PORT.conf" >"$T/mosquitto-other.conf"
start_bg mosquitto-other "$(command -v mosquitto || echo /usr/sbin/mosquitto)" -c "$T/mosquitto-other.conf"
wait_for 10 port_open "$NPORT" || fail "mosquitto (other name) did not start"
"$UPLINK_PROBE" refused "mqtts://127.0.0.1:$NPORT" "${DEV[@]}" >"$T/probe3b.log" 2>&1 || {
    cat "$T/probe3b.log"
    fail "connection to a broker with another host name's certificate did not fail"
}
cat "$T/probe3b.log"
grep -q "^CONNECT_FAILED: TLS handshake with 127.0.0.1:$NPORT failed: the broker's certificate is not issued for this host name" \
    "$T/probe3b.log" || fail "host name mismatch not named"
# nobody listening
"$UPLINK_PROBE" refused "mqtts://127.0.0.1:$(free_port)" "${DEV[@]}" >"$T/probe3c.log" 2>&1 ||
    fail "connection to a closed port did not fail"
grep -q "^CONNECT_FAILED: cannot connect to 127.0.0.1:[0-9]*: .*is the broker running" "$T/probe3c.log" ||
    fail "closed port: reason missing"

echo "== 4. pdmctl decode of a saved payload"
saved=("$T"/saved/*-alert.pb)
f=${saved[0]}
"$PDMCTL" decode alert "$f" >"$T/decode.log" || fail "decode failed"
cat "$T/decode.log"
for field in 'device_id: "gw-test"' 'asset: "compressor-1"' 'state: RAISED' 'severity: WARNING' \
    'model_id: "compressor"' 'name: "temperature"' 'sensor: "temp-1"' 'health_score: 38'; do
    grep -qF "$field" "$T/decode.log" || fail "decode output lacks '$field'"
done
"$PDMCTL" decode alert --json <"$f" >"$T/decode.json" || fail "decode --json from stdin failed"
grep -q '^{"type":"alert","device_id":"gw-test"' "$T/decode.json" || fail "decode --json output"
printf '\xff\xff\xff\xff\xff\xff\xff' >"$T/garbage.pb" # field number 2^28+, wire type 7
if "$PDMCTL" decode alert "$T/garbage.pb" 2>"$T/garbage.log"; then
    fail "garbage decoded"
fi
grep -q "not a valid pdm.v1.Alert payload" "$T/garbage.log" || fail "garbage: no reason"
if command -v protoc >/dev/null; then
    protoc --decode=pdm.v1.Alert -I "$PDM_SOURCE_DIR/proto" "$PDM_SOURCE_DIR/proto/pdm/v1/pdm.proto" \
        <"$f" >"$T/protoc.log" || fail "Google's protoc cannot decode our payload"
    grep -q 'state: RAISED' "$T/protoc.log" && grep -q 'name: "temperature"' "$T/protoc.log" ||
        fail "protoc's decoding differs"
    echo "protoc agrees"
else
    echo "protoc not installed: cross-check skipped"
fi

echo "== 5. broker stopped while messages are in flight"
LPORT=$(free_port)
broker_start "$LPORT"
LOST_BROKER=$BROKER_PID
start_bg probe5 "$UPLINK_PROBE" lost "mqtts://127.0.0.1:$LPORT" "${DEV[@]}"
PROBE5=$LAST_PID
wait_for 15 file_has "$T/probe5.log" "^READY" || fail "probe 5 did not connect"
sleep 0.5 # let some messages be acknowledged and some be in flight
stop_pid "$LOST_BROKER"
wait "$PROBE5" || fail "connection loss not handled (see probe5.log)"
cat "$T/probe5.log"
grep -q "^CONNECTION_LOST: connection to 127.0.0.1:$LPORT lost" "$T/probe5.log" || fail "no CONNECTION_LOST"

echo "== 6. Last Will: retained, binary, offline Status"
start_bg probe6 "$UPLINK_PROBE" will "$URI" "${DEV[@]}"
PROBE6=$LAST_PID
wait_for 15 file_has "$T/probe6.log" "^READY" || fail "probe 6 did not connect"
kill -KILL "$PROBE6"
wait "$PROBE6" 2>/dev/null || true
"$PDMCTL" subscribe --uri "$URI" "${SUB[@]}" --topic pdm/v1/gw-test/status --count 1 --timeout 15 \
    >"$T/will.log" 2>&1 || fail "no retained Last Will"
cat "$T/will.log"
grep -q "^STATUS gw-test  offline agent probe" "$T/will.log" || fail "Last Will not decoded as offline Status"
# subscriber 3 saw the will too, and never anything from the rogue-broker attempt
wait_for 10 file_has "$T/sub3.log" '"type":"status"' || fail "live subscriber missed the will"
[ "$(count_lines "$T/sub3.log" '"type":"alert"')" -eq 0 ] || fail "alerts published during test 3"

echo "== 7. incoming messages: slots, overflow, too large"
"$UPLINK_PROBE" inbox "$URI" "${DEV[@]}" >"$T/probe7.log" 2>&1 || {
    cat "$T/probe7.log"
    fail "incoming messages not accounted for"
}
cat "$T/probe7.log"
grep -q "request big len 32768 full_len 40000 too_large 1" "$T/probe7.log" ||
    fail "the too-large message did not keep its head"
grep -Eq "dropped [1-9]" "$T/probe7.log" || fail "no overflow event"

echo "== 8. subscribe --timeout 2592000 (30 days) waits instead of timing out at once"
start_bg longwait "$PDMCTL" subscribe --uri "$URI" "${SUB[@]}" --topic pdm/v1/nobody/status \
    --count 1 --timeout 2592000 --client-id longwait
LONGWAIT=$LAST_PID
gone() { ! kill -0 "$1" 2>/dev/null; }
subscribed_or_gone() { file_has "$T/longwait.log" "subscribed to" || gone "$LONGWAIT"; }
wait_for 15 subscribed_or_gone || fail "subscriber 8 did not subscribe"
# nothing is published there: it must still be waiting, also 2 s later
if gone "$LONGWAIT" || wait_for 2 gone "$LONGWAIT"; then
    fail "subscribe --timeout 2592000 ended at once: $(cat "$T/longwait.log")"
fi
stop_pid "$LONGWAIT"

echo "PASS"
