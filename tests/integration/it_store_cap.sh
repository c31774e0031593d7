#!/usr/bin/env bash
# A long outage with a small buffer: the database stays under buffer_max_mb, the oldest
# undelivered readings are dropped and counted exactly, and every alert is still delivered.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/agent_env.sh"
it_setup store_cap
pki_make gw-test
MQTT_PORT=$(free_port)
SIM_PORT=$(free_port)
CAP_MB=1

# The backend's persistent session exists before the outage, so the broker keeps everything
# published to it while the subscriber itself is away.
broker_start "$MQTT_PORT" persist
subscribe sub1 --client-id backend --keep-session
wait_for 10 file_has "$T/sub1.log" 'subscribed' || fail "subscriber did not subscribe"
broker_stop
stop_pid "$SUB_PID"

# A busy gateway: the compressor's three sensors plus nine more, every 10 ms (about 1200
# readings/s), so a 1 MB buffer fills in seconds.
write_agent_conf "$T/agent.conf" "$MQTT_PORT" "$SIM_PORT"
sed -i "s/^period_ms = 200/period_ms = 10/; s/^log_level = .*/log_level = info\nbuffer_max_mb = $CAP_MB\ncommit_interval_ms = 200/" "$T/agent.conf"
for i in $(seq 1 9); do
    printf '\n[sensor extra_%d]\nbus = plant\naddress = %d\ntype = float32\nperiod_ms = 10\n' \
        "$i" $(((i % 3) * 2)) >>"$T/agent.conf"
done
"$PDM_AGENT" --check -c "$T/agent.conf" >/dev/null || fail "test config rejected"

start_bg sim "$PDM_SIM" --port "$SIM_PORT" --healthy-s 2 --degrade-s 6 --seed 3 --quiet
wait_for 10 port_open "$SIM_PORT" || fail "pdm-sim did not listen"
start_bg agent "$PDM_AGENT" -c "$T/agent.conf"
AGENT_PID=$LAST_PID

# Watch the file size while the buffer fills and overflows.
db="$T/data/pdm-agent.db"
cap=$((CAP_MB * 1024 * 1024))
maxsize=0
deadline=$((SECONDS + 90))
while [ $SECONDS -lt $deadline ]; do
    size=$(($(stat -c %s "$db" 2>/dev/null || echo 0) + $(stat -c %s "$db-wal" 2>/dev/null || echo 0)))
    [ "$size" -gt "$maxsize" ] && maxsize=$size
    if grep -q 'alert .* CRITICAL' "$T/agent.log" &&
        [ "$(sqlite3 "$db" "SELECT value FROM meta WHERE key = 'rows_dropped'" 2>/dev/null || echo 0)" -gt 5000 ] 2>/dev/null; then
        break
    fi
    sleep 0.2
done
echo "largest database + WAL seen: $maxsize bytes (cap $cap)"
grep -q 'alert .* CRITICAL' "$T/agent.log" || fail "no CRITICAL alert during the outage"
[ "$maxsize" -le "$cap" ] || fail "database grew to $maxsize bytes, over the $cap cap"
grep -q 'buffer full' "$T/agent.log" || fail "agent did not say it is dropping readings"

# pdmctl buffer reads the same figures from the file while the agent is writing it
"$PDMCTL" buffer --db "$db" --json >"$T/buffer.json" || fail "pdmctl buffer failed on a live database"
cat "$T/buffer.json"; echo
b=$(cat "$T/buffer.json")
[ "$(json_field "$b" rows_dropped)" -gt 0 ] || fail "pdmctl buffer shows no dropped readings"
[ "$(json_field "$b" alerts_undelivered)" -ge 1 ] || fail "pdmctl buffer shows no undelivered alert"
"$PDMCTL" buffer --db "$db" | grep -q '^dropped .* undelivered rows' || fail "text output lacks the dropped line"
set +e
"$PDMCTL" buffer --db "$T/nowhere.db" >/dev/null 2>"$T/nodb.err"
rc=$?
set -e
[ $rc -eq 1 ] && grep -q nowhere.db "$T/nodb.err" || fail "missing database: exit $rc, $(cat "$T/nodb.err")"

echo "-- broker back"
broker_start "$MQTT_PORT" persist
subscribe sub2 --client-id backend --keep-session
wait_for 60 sh -c "[ \$(sqlite3 '$db' 'SELECT count(*) FROM alerts WHERE delivered = 0') = 0 ]" ||
    fail "alerts still undelivered"
stop_pid "$AGENT_PID"
# drain: what the broker acknowledged reaches the subscriber; wait for the goodbye Status
wait_for 30 file_has "$T/sub2.log" '"online":false' || fail "subscriber did not see the agent stop"
dropped=$(sqlite3 "$db" "SELECT value FROM meta WHERE key = 'rows_dropped'")
pending=$(sqlite3 "$db" "SELECT count(*) FROM rows WHERE delivered = 0")
echo "dropped $dropped readings, $pending still undelivered at stop"
b=$("$PDMCTL" buffer --db "$db" --json)
[ "$(json_field "$b" rows_dropped)" = "$dropped" ] || fail "pdmctl buffer disagrees on dropped readings"
[ "$(json_field "$b" rows_undelivered)" = "$pending" ] || fail "pdmctl buffer disagrees on undelivered rows"
python3 "$PDM_SOURCE_DIR/tests/integration/delivery_check.py" --db "$db" \
    --expect-dropped "$dropped" "$T/sub1.log" "$T/sub2.log" || fail "delivery check"
echo "PASS"
