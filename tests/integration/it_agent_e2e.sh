#!/usr/bin/env bash
# End to end on real components: pdm-sim (Modbus TCP) -> pdm-agent -> mosquitto (mutual TLS) ->
# a subscriber. The compressor degrades; the subscriber must receive the alert RAISED as WARNING
# and UPDATED to CRITICAL with one alert_id, decodable with the .proto files, plus telemetry and
# a retained online Status.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/agent_env.sh"
it_setup agent_e2e
pki_make gw-test
MQTT_PORT=$(free_port)
SIM_PORT=$(free_port)
broker_start "$MQTT_PORT"
write_agent_conf "$T/agent.conf" "$MQTT_PORT" "$SIM_PORT"

mkdir -p "$T/payloads"
subscribe sub --save "$T/payloads"
wait_for 10 file_has "$T/sub.log" . || true # the subscriber prints nothing until a message

start_bg sim "$PDM_SIM" --port "$SIM_PORT" --healthy-s 3 --degrade-s 8 --seed 1 --quiet
wait_for 10 port_open "$SIM_PORT" || fail "pdm-sim did not listen"
start_bg agent "$PDM_AGENT" -c "$T/agent.conf"
AGENT_PID=$LAST_PID

wait_for 60 file_has "$T/sub.log" '"severity":"CRITICAL"' || fail "no CRITICAL alert within 60 s"
wait_for 10 file_has "$T/sub.log" '"type":"telemetry"' || fail "no telemetry"

alerts=$(grep '"type":"alert"' "$T/sub.log")
echo "$alerts"
first=$(printf '%s\n' "$alerts" | sed -n 1p)
[ "$(json_field "$first" state)" = RAISED ] || fail "first alert is not RAISED: $first"
[ "$(json_field "$first" severity)" = WARNING ] || fail "first alert is not WARNING: $first"
id=$(json_field "$first" alert_id)
[ -n "$id" ] || fail "no alert_id"
crit=$(printf '%s\n' "$alerts" | grep '"severity":"CRITICAL"' | sed -n 1p)
[ "$(json_field "$crit" state)" = UPDATED ] || fail "CRITICAL did not come as UPDATED: $crit"
[ "$(json_field "$crit" alert_id)" = "$id" ] || fail "alert_id changed within the episode"
p=$(json_field "$crit" probability)
awk -v p="$p" 'BEGIN { exit !(p >= 0.8 && p <= 1) }' || fail "CRITICAL with probability $p"
[ "$(json_field "$crit" device_id)" = gw-test ] || fail "device_id missing"
printf '%s\n' "$crit" | grep -q '"inputs":\[{"name":"' || fail "alert does not name its inputs"
# seq grows from one alert to the next
s1=$(json_field "$first" seq)
s2=$(json_field "$crit" seq)
[ "$s2" -gt "$s1" ] || fail "seq did not grow: $s1 then $s2"

# Status: retained online message naming the model and the SHA-256 of the file it loaded
grep '"type":"status"' "$T/sub.log" | grep -q '"online":true' || fail "no online Status"
sum=$(sha256sum "$T/models/compressor.model" | cut -d' ' -f1)
grep '"type":"status"' "$T/sub.log" | grep -q "\"model_id\":\"compressor\",\"model_version\":1,\"sha256\":\"$sum\"" ||
    fail "Status does not carry the model file's SHA-256 ($sum)"

# The payload decodes with the .proto files alone (Google's protoc, independent of our code).
if command -v protoc >/dev/null; then
    f=$(ls "$T/payloads"/*-alert.pb | tail -n 1)
    protoc --decode=pdm.v1.Alert -I "$PDM_SOURCE_DIR/proto" "$PDM_SOURCE_DIR/proto/pdm/v1/pdm.proto" \
        <"$f" >"$T/decoded.txt" || fail "protoc could not decode $f"
    cat "$T/decoded.txt"
    grep -q "alert_id: \"$id\"" "$T/decoded.txt" || fail "protoc decode lacks the alert_id"
    grep -q "state: UPDATED" "$T/decoded.txt" || fail "protoc decode lacks state"
    f=$(ls "$T/payloads"/*-telemetry.pb | tail -n 1)
    protoc --decode=pdm.v1.TelemetryBatch -I "$PDM_SOURCE_DIR/proto" \
        "$PDM_SOURCE_DIR/proto/pdm/v1/pdm.proto" <"$f" | grep -q 'sensor: "comp_temp"' ||
        fail "telemetry does not decode with protoc"
else
    echo "protoc not installed: skipping the independent decode"
fi

# Clean stop: exit 0 and a retained offline Status replaces the online one.
stop_pid "$AGENT_PID" TERM
wait_for 10 file_has "$T/sub.log" '"online":false' || fail "no offline Status after SIGTERM"
grep -q "stopped" "$T/agent.log" || fail "agent did not log its stop"
echo "PASS"
