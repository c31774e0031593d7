#!/usr/bin/env bash
# A damaged database at start-up is moved aside (kept for diagnosis), a fresh one is started,
# the agent runs on and says so in its log and in Status, and seq keeps growing.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/agent_env.sh"
it_setup store_corrupt
pki_make gw-test
MQTT_PORT=$(free_port)
SIM_PORT=$(free_port)
broker_start "$MQTT_PORT"
write_agent_conf "$T/agent.conf" "$MQTT_PORT" "$SIM_PORT"
subscribe sub
start_bg sim "$PDM_SIM" --port "$SIM_PORT" --scenario healthy --quiet
wait_for 10 port_open "$SIM_PORT" || fail "pdm-sim did not listen"

start_bg agent "$PDM_AGENT" -c "$T/agent.conf"
wait_for 20 file_has "$T/sub.log" '"type":"telemetry"' 2 || fail "no telemetry from the first run"
stop_pid "$LAST_PID"
max_before=$(sqlite3 "$T/data/pdm-agent.db" "SELECT max(seq) FROM rows")
[ -n "$max_before" ] && [ "$max_before" -gt 0 ] || fail "first run stored nothing"

# Damage the file: random bytes over pages 2..9 (table and index b-trees).
dd if=/dev/urandom of="$T/data/pdm-agent.db" bs=4096 seek=1 count=8 conv=notrunc status=none
sqlite3 "$T/data/pdm-agent.db" 'PRAGMA quick_check' 2>&1 | grep -qx ok && fail "the damage was not detectable"

n0=$(count_lines "$T/sub.log" '"type":"telemetry"')
start_bg agent2 "$PDM_AGENT" -c "$T/agent.conf"
wait_for 20 file_has "$T/agent2.log" 'damaged' || fail "agent did not report the damaged database"
grep 'damaged' "$T/agent2.log"
ls "$T/data"/pdm-agent.db.corrupt-* >/dev/null 2>&1 || fail "the damaged file was not kept for diagnosis"
wait_for 20 file_has "$T/sub.log" '"type":"telemetry"' $((n0 + 2)) || fail "no telemetry after recovery"
kill -0 "$LAST_PID" || fail "agent died after recovery"
sqlite3 "$T/data/pdm-agent.db" 'PRAGMA integrity_check' | grep -qx ok || fail "fresh database not ok"

last=$(grep '"type":"telemetry"' "$T/sub.log" | tail -n 1)
fs=$(json_field "$last" first_seq)
[ "$fs" -gt "$max_before" ] || fail "seq after recovery ($fs) is not above the old file's ($max_before)"
grep '"type":"status"' "$T/sub.log" | tail -n 1 | grep -q '"store_recovered":true' ||
    fail "Status does not say the store was recovered"
echo "PASS"
