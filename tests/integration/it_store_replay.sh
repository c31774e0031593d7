#!/usr/bin/env bash
# A live alert raised during a long replay is not stuck behind the backlog.
#
# A slow uplink is made real: broker, agent, simulator and subscriber run in a network
# namespace of their own whose loopback is shaped to 2 Mbit/s (tc tbf), so replaying 150,000
# stored readings takes several seconds. The compressor is failing from the start, so the agent
# raises an alert while the replay is under way. The alert must arrive before the replay ends,
# within a few seconds of its evaluation. Needs root (ip netns, tc): skipped otherwise.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/agent_env.sh"
it_setup store_replay
NS=pdm-replay-$$
if ! ip netns add "$NS" 2>"$T/netns.err"; then
    echo "SKIP: cannot make a network namespace: $(cat "$T/netns.err")"
    exit 77
fi
it_cleanup_ns() {
    local rc=$?
    for pid in "${IT_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${IT_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    ip netns del "$NS" 2>/dev/null || true
    IT_PIDS=()
    (exit $rc)
    it_cleanup
}
trap it_cleanup_ns EXIT
# a real link MTU: tbf drops any packet larger than its burst, and loopback packets are 64 KB
ip netns exec "$NS" ip link set lo mtu 1500 up
if ! ip netns exec "$NS" tc qdisc add dev lo root tbf rate 2mbit burst 32kb latency 60s 2>"$T/tc.err"; then
    echo "SKIP: cannot shape the link: $(cat "$T/tc.err")"
    exit 77
fi
IT_NS=$NS
ROWS=${PDM_REPLAY_ROWS:-150000}

pki_make gw-test
MQTT_PORT=$(free_port)
SIM_PORT=$(free_port)
TELEMETRY_S=1 write_agent_conf "$T/agent.conf" "$MQTT_PORT" "$SIM_PORT"
db="$T/data/pdm-agent.db"

# 1. the agent makes its database (no broker yet), then we give it a backlog
start_bg agent0 "$PDM_AGENT" -c "$T/agent.conf"
wait_for 20 sh -c "[ \$(sqlite3 '$db' 'SELECT count(*) FROM names WHERE kind = 0' 2>/dev/null || echo 0) -ge 3 ]" ||
    fail "agent did not create its database"
stop_pid "$LAST_PID"
sqlite3 "$db" <<SQL
WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < $ROWS)
INSERT INTO rows(seq, kind, ref, ts_ms, value, delivered)
SELECT (SELECT max(max(seq), (SELECT coalesce(max(value), 0) FROM meta WHERE key = 'seq_hw')) FROM rows) + i,
       0, (SELECT id FROM names WHERE kind = 0 AND name = 'comp_temp'),
       CAST(strftime('%s', 'now') AS INTEGER) * 1000 - 7200000 + i * 40, 45.0 + (i % 10) / 10.0, 0
FROM c;
INSERT OR REPLACE INTO meta(key, value) VALUES ('seq_hw', (SELECT max(seq) FROM rows));
SQL

# 2. broker and backend first, then a failing compressor and the agent
broker_start "$MQTT_PORT"
subscribe sub
wait_for 10 file_has "$T/sub.log" 'subscribed' || fail "subscriber did not subscribe"
start_bg sim "$PDM_SIM" --port "$SIM_PORT" --scenario failing --quiet
wait_for 10 port_open "$SIM_PORT" || fail "pdm-sim did not listen"
start_bg agent "$PDM_AGENT" -c "$T/agent.conf"

wait_for 120 file_has "$T/agent.log" 'backlog delivered' || fail "backlog not delivered within 120 s"
wait_for 20 file_has "$T/sub.log" '"type":"alert"' || fail "no alert reached the backend"
grep 'backlog' "$T/agent.log"

alert_line=$(grep -n -m1 '"type":"alert"' "$T/sub.log" | cut -d: -f1)
last_replay=$(grep -n '"type":"telemetry".*"replay":true' "$T/sub.log" | tail -n 1 | cut -d: -f1)
first_replay=$(grep -n -m1 '"type":"telemetry".*"replay":true' "$T/sub.log" | cut -d: -f1)
[ -n "$first_replay" ] || fail "no replayed telemetry arrived"
alert=$(sed -n "${alert_line}p" "$T/sub.log")
latency=$(($(json_field "$alert" rx_ms) - $(json_field "$alert" ts_ms)))
replay_ms=$(($(json_field "$(sed -n "${last_replay}p" "$T/sub.log")" rx_ms) - \
    $(json_field "$(sed -n "${first_replay}p" "$T/sub.log")" rx_ms)))
echo "replay took ${replay_ms} ms on the shaped link; the alert arrived ${latency} ms after its evaluation"
[ "$alert_line" -lt "$last_replay" ] ||
    fail "the replay ended before the alert was raised: the test proves nothing (raise PDM_REPLAY_ROWS)"
[ "$(json_field "$alert" replay)" != true ] || fail "a live alert was flagged as replay"
[ "$latency" -le 5000 ] || fail "the live alert took ${latency} ms: stuck behind the backlog"
echo "PASS"
