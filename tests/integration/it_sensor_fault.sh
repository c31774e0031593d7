#!/usr/bin/env bash
# Data quality on real components: pdm-sim -> pdm-agent -> mosquitto -> subscriber.
#  1. valid range: aux_power (valid_max below what pdm-sim serves) raises SENSOR_FAULT with the
#     reason, and its readings arrive flagged (quality 1);
#  2. stop answering: pdm-sim stops -> SENSOR_FAULT RAISED for the asset's sensors ("no good
#     reading ..."), no AssetScore is stored while they are faulted and no fault-risk alert comes;
#     pdm-sim back -> CLEARED with the same alert_id;
#  3. frozen: pdm-sim --freeze stops the values changing -> comp_temp (frozen_s = 2) raises
#     "value unchanged (...)".
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/agent_env.sh"
it_setup sensor_fault
pki_make gw-test
MQTT_PORT=$(free_port)
SIM_PORT=$(free_port)
broker_start "$MQTT_PORT"
TELEMETRY_S=1 write_agent_conf "$T/agent.conf" "$MQTT_PORT" "$SIM_PORT"
# short stale times keep the test short; comp_temp also watches for a frozen value
sed -i 's/^period_ms = 200$/period_ms = 200\nstale_s = 2/' "$T/agent.conf"
sed -i '/^\[sensor comp_temp\]/a frozen_s = 2' "$T/agent.conf"
cat >>"$T/agent.conf" <<CONF

[sensor aux_power]
bus = plant
address = 4
type = float32
period_ms = 200
valid_min = 0
valid_max = 500
CONF
"$PDM_AGENT" -c "$T/agent.conf" --check >"$T/check.log" 2>&1 || fail "config rejected: $(cat "$T/check.log")"

subscribe sub
start_bg sim "$PDM_SIM" --port "$SIM_PORT" --scenario healthy --seed 3 --quiet
SIM_PID=$LAST_PID
wait_for 10 port_open "$SIM_PORT" || fail "pdm-sim did not listen"
start_bg agent "$PDM_AGENT" -c "$T/agent.conf"
AGENT_PID=$LAST_PID

faults() { # SENSOR STATE: the SENSOR_FAULT alert lines of SENSOR in STATE
    grep '"type":"alert"' "$T/sub.log" | grep '"kind":"SENSOR_FAULT"' |
        grep "\"sensor\":\"$1\"" | grep "\"state\":\"$2\"" || true
}
has_fault() { [ -n "$(faults "$1" "$2")" ]; }

# ---- 1. valid range
wait_for 20 has_fault aux_power RAISED || fail "no SENSOR_FAULT for aux_power (valid_max 500)"
line=$(faults aux_power RAISED | sed -n 1p)
echo "$line"
reason=$(json_field "$line" reason)
[[ "$reason" =~ ^value\ [0-9.]+\ outside\ valid\ range\ 0\.\.500$ ]] || fail "reason: $reason"
[ "$(json_field "$line" severity)" = WARNING ] || fail "not WARNING: $line"
[ "$(json_field "$line" asset)" = "" ] || fail "aux_power feeds no asset, yet: $line"
[[ "$(json_field "$line" alert_id)" == aux_power-fault-* ]] || fail "alert_id: $line"
grep -q 'sensor aux_power: alert aux_power-fault-[0-9]* RAISED SENSOR_FAULT' "$T/agent.log" ||
    fail "no log line for the fault"
series() { grep '"type":"telemetry"' "$T/sub.log" | grep -o "\"sensor\":\"$1\"[^}]*}"; }
flagged() { series aux_power | grep -q '"quality":\[1'; }
wait_for 10 flagged || fail "aux_power readings do not arrive with quality 1"
# the good sensors carry no quality array
series comp_vib | grep -q '"quality":\[[0-9]' &&
    fail "comp_vib readings are flagged"
# the asset is scored while its sensors are good
wait_for 20 grep -q '"asset":"compressor-1","ts_ms"' "$T/sub.log" || fail "asset never scored"

# ---- 2. stop answering
stop_pid "$SIM_PID" TERM
for s in comp_temp comp_vib comp_power; do
    wait_for 20 has_fault $s RAISED || fail "no SENSOR_FAULT for $s with pdm-sim stopped"
done
line=$(faults comp_vib RAISED | sed -n 1p)
echo "$line"
reason=$(json_field "$line" reason)
[[ "$reason" == "no good reading for "*"unit 1 at 127.0.0.1:$SIM_PORT"* ]] || fail "reason: $reason"
[ "$(json_field "$line" asset)" = compressor-1 ] || fail "asset: $line"
raised_ts=$(json_field "$(faults comp_temp RAISED | sed -n 1p)" ts_ms)
vib_id=$(json_field "$line" alert_id)
sleep 3 # the asset would have been scored 3 times in this time (eval_period 1 s)

back_ms=$(date +%s%3N) # from here on readings are fresh again: scoring may resume
start_bg sim2 "$PDM_SIM" --port "$SIM_PORT" --scenario healthy --seed 3 --quiet --freeze 4
wait_for 10 port_open "$SIM_PORT" || fail "pdm-sim did not listen again"
for s in comp_temp comp_vib comp_power; do
    wait_for 20 has_fault $s CLEARED || fail "no CLEARED for $s after pdm-sim came back"
done
line=$(faults comp_vib CLEARED | sed -n 1p)
echo "$line"
[ "$(json_field "$line" alert_id)" = "$vib_id" ] || fail "CLEARED with another alert_id: $line"
faults aux_power CLEARED | grep -q . && fail "aux_power cleared while still out of range"

# ---- 3. frozen (pdm-sim stops changing 4 s after its start; frozen_s = 2)
frozen() { faults comp_temp RAISED | grep -q 'value unchanged'; }
wait_for 20 frozen || fail "no frozen SENSOR_FAULT for comp_temp"
faults comp_temp RAISED | grep 'value unchanged'
reason=$(json_field "$(faults comp_temp RAISED | grep 'value unchanged' | sed -n 1p)" reason)
[[ "$reason" =~ ^value\ unchanged\ \([0-9.]+\)\ for\ [0-9]+\ s$ ]] || fail "reason: $reason"

stop_pid "$AGENT_PID" TERM
# No score was stored while the asset's sensors gave no fresh data (from the fault until
# pdm-sim came back; fresh good readings may score before the fault is declared cleared),
# and no fault-risk alert at all.
n=$(python3 - "$T/data/pdm-agent.db" "$raised_ts" "$back_ms" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
print(db.execute("SELECT COUNT(*) FROM rows WHERE kind = 1 AND ts_ms > ? AND ts_ms < ?",
                 (int(sys.argv[2]), int(sys.argv[3]))).fetchone()[0])
PY
)
[ "$n" = 0 ] || fail "$n scores stored while the sensors were faulted"
grep '"type":"alert"' "$T/sub.log" | grep -v SENSOR_FAULT | grep -q . && fail "a fault-risk alert came"
# flagged readings are in the store with their quality
q=$(python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('SELECT COUNT(*) FROM rows WHERE quality = 2').fetchone()[0])" "$T/data/pdm-agent.db")
[ "$q" -gt 0 ] || fail "no frozen reading stored with quality 2"
echo "PASS"
