#!/usr/bin/env bash
# End to end over Modbus RTU: pdm-sim on one end of a socat pty pair, pdm-agent on the other,
# mosquitto (mutual TLS), a subscriber. The line also carries a sensor on unit 5, which nobody
# serves: the agent must say so in its log, back off, and keep unit 1 at its period; the
# compressor on unit 1 degrades and the alert must still go RAISED WARNING -> CRITICAL.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/agent_env.sh"
: "${PDM_SIM:?run through ctest}" "${PDM_AGENT:?run through ctest}"
command -v socat >/dev/null || fail "socat is not installed"
it_setup agent_rtu
pki_make gw-test
MQTT_PORT=$(free_port)
broker_start "$MQTT_PORT"

start_bg socat socat -d -d pty,raw,echo=0,link="$T/ttyA" pty,raw,echo=0,link="$T/ttyB"
both_links() { [ -e "$T/ttyA" ] && [ -e "$T/ttyB" ]; }
wait_for 10 both_links || fail "socat did not create the serial pair"

PERIOD_MS=200
mkdir -p "$T/models"
cp "$PDM_SOURCE_DIR/examples/models/compressor.model" "$T/models/"
cat >"$T/agent.conf" <<CONF
[agent]
device_id = gw-test
data_dir = data
log_level = info

[mqtt]
uri = mqtts://127.0.0.1:$MQTT_PORT
ca_file = tls/ca.pem
cert_file = tls/device.pem
key_file = tls/device.key
telemetry_interval_s = 2

[bus line1]
driver = modbus-rtu
device = $T/ttyB
baud = 19200
parity = E
data_bits = 8
stop_bits = 1
timeout_ms = 300

[sensor comp_temp]
bus = line1
unit_id = 1
address = 0
type = float32
period_ms = $PERIOD_MS
unit = degC

[sensor comp_vib]
bus = line1
unit_id = 1
address = 2
type = float32
period_ms = $PERIOD_MS

[sensor comp_power]
bus = line1
unit_id = 1
address = 4
type = float32
period_ms = $PERIOD_MS

; a second device on the line that is switched off: read, but used by no asset
[sensor flow]
bus = line1
unit_id = 5
address = 0
type = float32
period_ms = 500

[asset compressor-1]
model = models/compressor.model
temperature = comp_temp
vibration = comp_vib
power = comp_power
installed = 2019-06-01
CONF
out=$("$PDM_AGENT" --check -c "$T/agent.conf") || fail "--check on the RTU config failed: $out"

subscribe sub
start_bg sim "$PDM_SIM" --rtu "$T/ttyA" --baud 19200 --parity E --unit-id 1 --healthy-s 3 \
    --degrade-s 8 --seed 3 --quiet
SIM_PID=$LAST_PID
wait_for 10 file_has "$T/sim.log" "serving Modbus RTU on $T/ttyA (19200 8E1), unit id 1," ||
    fail "pdm-sim did not open the serial port"
start_bg agent "$PDM_AGENT" -c "$T/agent.conf"
AGENT_PID=$LAST_PID

wait_for 60 file_has "$T/sub.log" '"severity":"CRITICAL"' || fail "no CRITICAL alert within 60 s"
wait_for 10 file_has "$T/sub.log" '"type":"telemetry"' || fail "no telemetry"

# fault-risk alerts only: the dead unit's sensors raise SENSOR_FAULT alerts of their own
alerts=$(grep '"type":"alert"' "$T/sub.log" | grep -v '"kind":"SENSOR_FAULT"')
first=$(printf '%s\n' "$alerts" | sed -n 1p)
[ "$(json_field "$first" state)" = RAISED ] || fail "first alert is not RAISED: $first"
[ "$(json_field "$first" severity)" = WARNING ] || fail "first alert is not WARNING: $first"
id=$(json_field "$first" alert_id)
crit=$(printf '%s\n' "$alerts" | grep '"severity":"CRITICAL"' | sed -n 1p)
[ "$(json_field "$crit" alert_id)" = "$id" ] || fail "CRITICAL is not the same episode as $id"
echo "ok: alert $id RAISED WARNING, then CRITICAL, over RTU"

# The agent names the line, and the dead unit once (then backs off), not on every failure.
A="$T/agent.log"
file_has "$A" "bus line1 (modbus-rtu $T/ttyB 19200 8E1): 4 sensors on 2 unit ids" ||
    fail "agent did not log the RTU line settings"
file_has "$A" "bus line1: unit 5 at $T/ttyB not answering (unit 5: no answer within 300 ms)" ||
    fail "agent did not report unit 5 as not answering"
[ "$(count_lines "$A" "unit 5 at .* not answering")" -le 2 ] || fail "unit 5 logged on every failure"
if grep -q "unit 1 at .* not answering" "$A"; then fail "unit 1 was reported as not answering"; fi

# Unit 1 keeps its period although unit 5 costs a 300 ms timeout per retry: count the comp_temp
# readings that telemetry carried and the largest gap between them.
grep '"type":"telemetry"' "$T/sub.log" |
    grep -o '"sensor":"comp_temp","ts_ms":\[[0-9,]*\]' | grep -o '[0-9]\{10,\}' | sort -n \
    >"$T/temp_ts.txt"
read -r n span gap < <(awk 'NR == 1 { f = $1 } NR > 1 && $1 - p > g { g = $1 - p }
    { p = $1 } END { print NR, p - f, g + 0 }' "$T/temp_ts.txt")
expected=$((span / PERIOD_MS))
echo "comp_temp: $n readings in $span ms (period $PERIOD_MS ms: $expected expected), max gap $gap ms"
[ "$span" -ge 8000 ] || fail "telemetry covers only $span ms of comp_temp"
[ "$((n * 100))" -ge "$((expected * 80))" ] || fail "unit 1 delivered $n of $expected readings"
[ "$gap" -le 700 ] || fail "comp_temp gap of $gap ms: longer than a period plus one timeout"
if grep '"type":"telemetry"' "$T/sub.log" | grep -q '"sensor":"flow","ts_ms":\[[0-9]'; then
    fail "telemetry carries values for the dead unit"
fi
echo "ok: unit 1 kept its period next to a dead unit 5"

# Clean stop of both ends; the simulator saw unit 5's requests and stayed silent, fewer times
# than a sensor polled every 500 ms without backoff would have asked.
stop_pid "$AGENT_PID" TERM
grep -q "stopped" "$A" || fail "agent did not log its stop"
stop_pid "$SIM_PID" TERM
read -r answered ignored < <(sed -n \
    's/^pdm-sim: stopping after \([0-9]*\) requests answered, \([0-9]*\) ignored.*/\1 \2/p' \
    "$T/sim.log")
[ -n "${ignored:-}" ] || fail "pdm-sim did not print its request counts"
echo "pdm-sim: answered $answered, ignored $ignored (unit 5)"
[ "$ignored" -ge 2 ] || fail "unit 5 was asked $ignored times: never retried"
[ "$ignored" -le $((span / 500 / 3)) ] || fail "unit 5 asked $ignored times in $span ms: no backoff"
[ "$answered" -ge "$n" ] || fail "pdm-sim answered $answered requests, fewer than $n readings"
echo "PASS"
