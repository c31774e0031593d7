#!/usr/bin/env bash
# Per-asset baselines and explained alerts, on real components: pdm-sim -> pdm-agent ->
# mosquitto (client certificates) <- pdmctl publish / subscribe as the backend; pdmctl baseline
# and status over the agent's control socket.
#  1. a model with `baseline = asset` and nothing learned: fleet constants, logged and shown
#  2. pdmctl baseline refusals: unknown asset, duration out of range, learning already running
#  3. pdmctl baseline --seconds 6 learns the simulator's healthy levels (45 degC, 2.5 mm/s,
#     800 W) with the scale floor on these steady inputs, stores them, and the model uses them
#  4. the backend's cmd/baseline: refused for an unknown asset; accepted (first answer), then the
#     second answer BASELINE_LEARNED on cmd_result
#  5. restart: the stored baseline is applied again (log, status: baseline asset)
#  6. the machine degrades: alerts name their inputs with value, baseline center and source
#     (asset) and health; learning is refused while alerting, accepted with --force
#  7. no data (the simulator gone): refused with NO_INPUT_DATA
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/agent_env.sh"
it_setup baseline
pki_make gw-test
MQTT_PORT=$(free_port)
SIM_PORT=$(free_port)
broker_start "$MQTT_PORT"
URI=mqtts://127.0.0.1:$MQTT_PORT
BACKEND=(--uri "$URI" --ca "$T/tls/ca.pem" --cert "$T/tls/sub.pem" --key "$T/tls/sub.key")
SOCK=$T/data/pdm-agent.sock

TELEMETRY_S=1 write_agent_conf "$T/agent.conf" "$MQTT_PORT" "$SIM_PORT"
sed -i 's/^period_ms = 200$/period_ms = 200\nstale_s = 2/' "$T/agent.conf"
# the example model, asking for per-asset baselines
sed -i 's/^eval_period_ms = 1000 .*/&\nbaseline = asset/' "$T/models/compressor.model"
grep -q '^baseline = asset' "$T/models/compressor.model" || fail "model not edited"
"$PDM_AGENT" -c "$T/agent.conf" --check >"$T/check.log" 2>&1 || fail "config rejected: $(cat "$T/check.log")"

subscribe sub
start_bg sim "$PDM_SIM" --port "$SIM_PORT" --scenario healthy --seed 5 --quiet
SIM_PID=$LAST_PID
wait_for 10 port_open "$SIM_PORT" || fail "pdm-sim did not listen"
start_agent() {
    start_bg "agent$1" "$PDM_AGENT" -c "$T/agent.conf"
    AGENT_PID=$LAST_PID
    wait_for 20 file_has "$T/agent$1.log" "commands: subscribed to pdm/v1/gw-test/cmd/#" ||
        fail "agent did not subscribe to its command topics"
}
status_json() { "$PDMCTL" status --socket "$SOCK" --json; }
input_field() { # NAME FIELD
    status_json | python3 -c "import json,sys; a=json.load(sys.stdin)['assets'][0]
print([i for i in a['inputs'] if i['name']=='$1'][0]['$2'])"
}
window_full() { [ "$(input_field temperature samples)" -ge 52 ]; } # 10 s at 200 ms + 2
baseline() { "$PDMCTL" baseline --socket "$SOCK" "$@"; }
# refused NAME REASON ARGS...: pdmctl baseline exits 1 and names the reason
refused() {
    local name=$1 reason=$2
    shift 2
    local rc=0
    baseline "$@" >"$T/$name.out" 2>"$T/$name.err" || rc=$?
    [ "$rc" = 1 ] || fail "$name: pdmctl baseline exited $rc, expected 1 ($(cat "$T/$name.out" "$T/$name.err"))"
    grep -q "$reason" "$T/$name.err" || fail "$name: no $reason in: $(cat "$T/$name.err")"
}
# request RID ASSET SECONDS [FORCE]: a pdm.v1.BaselineRequest, encoded by hand from the .proto
request() {
    python3 - "$@" <<'PY'
import struct, sys
rid, asset, sec = sys.argv[1].encode(), sys.argv[2].encode(), float(sys.argv[3])
out = b'\x0a' + bytes([len(rid)]) + rid + b'\x12' + bytes([len(asset)]) + asset
out += b'\x19' + struct.pack('<d', sec)
if len(sys.argv) > 4:
    out += b'\x20\x01'
sys.stdout.buffer.write(out)
PY
}
send() { # EXPECTED_EXIT NAME FILE
    local want=$1 name=$2 rc=0
    "$PDMCTL" publish "${BACKEND[@]}" --topic pdm/v1/gw-test/cmd/baseline --wait 15 --file "$3" \
        >"$T/$name.out" 2>"$T/$name.err" || rc=$?
    cat "$T/$name.out"
    [ "$rc" = "$want" ] || fail "$name: pdmctl publish exited $rc, expected $want ($(cat "$T/$name.err"))"
}
near() { python3 -c "import sys; sys.exit(0 if abs(float('$1') - $2) <= $3 else 1)"; } # V WANT TOL

start_agent 1
echo "== 1. nothing learned: fleet constants"
grep -q "asset compressor-1: start: model compressor asks for a per-asset baseline, none is learned yet; scoring with the fleet constants" "$T/agent1.log" ||
    fail "no log line saying the fleet constants are used"
wait_for 30 window_full || fail "the temperature window never filled"
[ "$(input_field temperature baseline)" = fleet ] || fail "status: temperature baseline is not fleet"
[ "$(input_field temperature center)" = 45 ] || fail "status: fleet center is not 45"
"$PDMCTL" status --socket "$SOCK" >"$T/status1.txt"
grep -Eq "^  temperature +comp_temp +mean +[0-9.]+ +45 \(fleet\) " "$T/status1.txt" ||
    fail "pdmctl status does not show value and baseline: $(grep temperature "$T/status1.txt")"
grep -q "health" "$T/status1.txt" || fail "pdmctl status shows no health"

echo "== 2. refusals"
refused unknown UNKNOWN_ASSET nope --seconds 5
grep -q "no asset 'nope'" "$T/unknown.err" || fail "unknown asset: no reason"
refused short BASELINE_DURATION compressor-1 --seconds 0.5
refused long BASELINE_DURATION compressor-1 --minutes 20000
grep -q "out of range (1 s to 604800 s)" "$T/long.err" || fail "duration: no range given"
rc=0
baseline compressor-1 >/dev/null 2>&1 || rc=$?
[ "$rc" = 2 ] || fail "no duration: exit $rc, expected 2"

echo "== 3. learning the healthy levels"
start_bg learn "$PDMCTL" baseline --socket "$SOCK" compressor-1 --minutes 0.1 # 6 s
LEARN_PID=$LAST_PID
wait_for 5 file_has "$T/learn.log" "learning the baseline of 3 inputs" || fail "learning did not start"
refused running BASELINE_RUNNING compressor-1 --seconds 5
grep -q "already learning" "$T/running.err" || fail "running: no reason"
rc=0
wait "$LEARN_PID" || rc=$?
[ "$rc" = 0 ] || fail "pdmctl baseline exited $rc: $(cat "$T/learn.log")"
cat "$T/learn.log"
row() { grep -E "^  $1 " "$T/learn.log"; } # input stat window center scale sd evals fc fs
for spec in "temperature 45 0.5 2" "vibration 2.5 0.2 0.5" "power 800 10 37.5"; do
    set -- $spec
    r=$(row "$1") || fail "no learned row for $1"
    c=$(echo "$r" | awk '{print $4}')
    s=$(echo "$r" | awk '{print $5}')
    n=$(echo "$r" | awk '{print $7}')
    near "$c" "$2" "$3" || fail "$1: learned center $c, the simulator's healthy level is $2"
    # steady window means: the sd is far below the floor, 0.25 x the model's scale
    near "$s" "$4" 1e-9 || fail "$1: learned scale $s, expected the floor $4"
    [ "$n" -ge 4 ] || fail "$1: learned from $n evaluations only"
    echo "$r" | grep -q "(scale floor)" || fail "$1: the floor is not pointed out"
done
grep -q "scoring with the asset's learned constants" "$T/learn.log" || fail "pdmctl: not in use"
[ -f "$T/data/baselines/compressor-1.baseline" ] || fail "no stored baseline file"
grep -q '^model = compressor$' "$T/data/baselines/compressor-1.baseline" || fail "file not bound to the model"
[ "$(input_field temperature baseline)" = asset ] || fail "status: baseline not asset after learning"
[ "$(input_field age baseline)" = fleet ] || fail "status: age must keep the fleet constants"
LEARNED_T=$(input_field temperature center)
near "$LEARNED_T" 45 0.5 || fail "status center $LEARNED_T"
grep -q "model compressor scores with the asset's own baseline" "$T/agent1.log" || fail "no log line for the new baseline"

echo "== 4. the backend's cmd/baseline"
request bl-0 nope 5 >"$T/req0.bin"
send 1 bunknown "$T/req0.bin"
grep -q "REFUSED UNKNOWN_ASSET" "$T/bunknown.out" || fail "backend: unknown asset not refused"
request bl-1 compressor-1 3 >"$T/req1.bin"
send 0 bstart "$T/req1.bin"
grep -q "request=bl-1  OK COMMAND_OK  asset compressor-1: learning the baseline" "$T/bstart.out" ||
    fail "backend: no start answer"
learned_msg() { grep '"type":"cmd_result"' "$T/sub.log" | grep '"request_id":"bl-1"' | grep -q '"reason":"BASELINE_LEARNED"'; }
wait_for 20 learned_msg || fail "backend: no BASELINE_LEARNED answer: $(grep cmd_result "$T/sub.log" | tail -3)"
grep '"reason":"BASELINE_LEARNED"' "$T/sub.log" | grep -q 'temperature center 4' || fail "backend: learned values not in the text"
grep '"reason":"BASELINE_LEARNED"' "$T/sub.log" | grep -q '"ok":true' || fail "backend: learned answer not ok"

echo "== 5. restart: the stored baseline is used"
stop_pid "$AGENT_PID"
start_agent 2
grep -q "asset compressor-1: start: model compressor scores with the asset's own baseline (center/scale: temperature 4" "$T/agent2.log" ||
    fail "stored baseline not applied at start: $(grep baseline "$T/agent2.log")"
wait_for 30 window_full || fail "window did not fill after restart"
[ "$(input_field temperature baseline)" = asset ] || fail "status after restart: not asset"
"$PDMCTL" status --socket "$SOCK" | grep -Eq "^  vibration +comp_vib +rms +[0-9.]+ +[0-9.]+ \(asset\) " ||
    fail "pdmctl status after restart does not show the asset baseline"
baseline compressor-1 --show >"$T/show.out" || fail "--show failed"
grep -q "scoring with the asset's learned constants" "$T/show.out" || fail "--show: not in use"

# the exact stored center (17 digits) the agent now scores temperature against
STORED_T=$(awk '$1 == "input" && $3 == "temperature" {print $6}' "$T/data/baselines/compressor-1.baseline")
near "$STORED_T" 45 0.5 || fail "stored temperature center $STORED_T"

echo "== 6. the machine degrades: explained alerts; learning refused while alerting"
stop_pid "$SIM_PID"
start_bg sim2 "$PDM_SIM" --port "$SIM_PORT" --scenario failing --seed 5 --quiet
SIM2_PID=$LAST_PID
wait_for 10 port_open "$SIM_PORT" || fail "failing pdm-sim did not listen"
raised() { grep '"type":"alert"' "$T/sub.log" | grep '"kind":"FAULT_RISK"' | grep -q '"state":"RAISED"'; }
wait_for 60 raised || fail "no alert from the failing machine"
ALERT=$(grep '"type":"alert"' "$T/sub.log" | grep '"state":"RAISED"' | grep FAULT_RISK | head -1)
echo "$ALERT" | python3 -c "
import json, sys
a = json.loads(sys.stdin.read())
a = a.get('message', a)
assert a['health_score'] <= 50, a['health_score']
ins = a['inputs']
assert len(ins) == 4, ins
byname = {i['name']: i for i in ins}
t = byname['temperature']
assert t['baseline_source'] == 'BASELINE_ASSET', t
assert abs(t['center'] - $STORED_T) < 1e-9, t
assert t['scale'] > 0 and abs(t['z'] - (t['value'] - t['center']) / t['scale']) < 1e-9, t
assert byname['age'].get('baseline_source', 'BASELINE_FLEET') == 'BASELINE_FLEET', byname['age']
c = [abs(i['contribution']) for i in ins]
assert c == sorted(c, reverse=True), 'inputs not ranked by contribution'
" || fail "alert does not explain itself: $ALERT"
grep -Eq "RAISED WARNING P=[0-9.]+ health=[0-9]+; drivers: [a-z]+ \+[0-9.]+ \([0-9.]+ vs [0-9.]+ asset\)" "$T/agent2.log" ||
    grep -Eq "RAISED CRITICAL P=[0-9.]+ health=[0-9]+; drivers: [a-z]+ \+[0-9.]+ \([0-9.]+ vs [0-9.]+ asset\)" "$T/agent2.log" ||
    fail "the agent's alert line does not show the baseline"
refused alerting ASSET_ALERTING compressor-1 --seconds 5
grep -q "would hide the fault" "$T/alerting.err" || fail "alerting: no reason"
request bl-2 compressor-1 5 >"$T/req2.bin"
send 1 balert "$T/req2.bin"
grep -q "REFUSED ASSET_ALERTING" "$T/balert.out" || fail "backend: alerting not refused"
baseline compressor-1 --seconds 4 --force --no-wait >"$T/force.out" 2>&1 || fail "--force refused: $(cat "$T/force.out")"
grep -q "forced despite an open alert" "$T/force.out" || fail "--force: not said"
forced_done() { baseline compressor-1 --show | grep -q "learned over 4"; }
wait_for 15 forced_done || fail "forced learning did not end"

echo "== 7. no data"
stop_pid "$SIM2_PID"
# a stale sensor empties the windows it feeds (its assets stop scoring)
wait_for 20 file_has "$T/agent2.log" "sensor comp_temp: alert .* RAISED SENSOR_FAULT (stale)" ||
    fail "the simulator's absence was not noticed"
# --force: the fault-risk alert is still open; what is refused now is the missing data
refused nodata NO_INPUT_DATA compressor-1 --seconds 5 --force
grep -q "has no data in its 10 s window" "$T/nodata.err" || fail "no data: no reason"
echo "PASS"
