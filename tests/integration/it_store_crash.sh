#!/usr/bin/env bash
# Crash proof of store-and-forward (issue 3): the agent is killed with SIGKILL at random moments,
# PDM_CRASH_ROUNDS times (default 12; the long variant runs 200), while pdm-sim cycles the
# compressor through healthy -> failing -> healthy (alerts are raised, escalated and cleared
# over and over) and the broker is stopped and started at random moments.
#   - after every kill the database passes PRAGMA integrity_check;
#   - at the end, with the broker up, every alert event ever committed has reached the backend,
#     a seq received twice carried the same content, and no seq is missing unless it is still
#     undelivered in the store (delivery_check.py --expect-dropped 0).
# PDM_CRASH_SEED=N replays the same random choices (the seed is printed at start).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/agent_env.sh"
it_setup store_crash
ROUNDS=${PDM_CRASH_ROUNDS:-12}
SEED=${PDM_CRASH_SEED:-$(($$ % 32768))}
RANDOM=$SEED
echo "rounds $ROUNDS, seed $SEED (PDM_CRASH_SEED=$SEED reproduces the random choices)"

pki_make gw-test
MQTT_PORT=$(free_port)
SIM_PORT=$(free_port)
DB="$T/data/pdm-agent.db"

# lib.sh's cleanup signals every pid it ever started; over hundreds of rounds a reaped pid may be
# reused by an unrelated process, so reaped ones are taken off the list.
forget_pid() { # PID
    local keep=() p
    for p in "${IT_PIDS[@]}"; do
        [ "$p" = "$1" ] || keep+=("$p")
    done
    IT_PIDS=("${keep[@]}")
}

sleep_ms() { # MS
    sleep "$(printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)))"
}

# The backend: a persistent session (client id "backend"), so the broker queues QoS 1 messages
# while the subscriber or the broker is away. pdmctl subscribe exits when the broker goes, so
# every broker start gets a new subscriber with its own log.
SUB_LOGS=()
NSUB=0
BROKER_UP=0
N_FLAPS=0
backend_up() {
    [ -f "$T/mosquitto-$MQTT_PORT.log" ] && mv "$T/mosquitto-$MQTT_PORT.log" "$T/mosquitto-$MQTT_PORT.$N_FLAPS.txt"
    broker_start "$MQTT_PORT" persist
    NSUB=$((NSUB + 1))
    subscribe "sub$NSUB" --client-id backend --keep-session
    SUB_LOGS+=("$T/sub$NSUB.log")
    wait_for 10 file_has "$T/sub$NSUB.log" 'subscribed' || fail "subscriber sub$NSUB did not subscribe"
    BROKER_UP=1
}
backend_down() {
    local b=$BROKER_PID
    broker_stop # SIGTERM: mosquitto saves sessions and queued messages on the way out
    forget_pid "$b"
    wait_for 10 sh -c "! kill -0 $SUB_PID" || echo "note: sub$NSUB still running after the broker stopped"
    stop_pid "$SUB_PID"
    forget_pid "$SUB_PID"
    BROKER_UP=0
}
flap() {
    N_FLAPS=$((N_FLAPS + 1))
    if [ $BROKER_UP = 1 ]; then
        echo "   broker down"
        backend_down
    else
        echo "   broker up"
        backend_up
    fi
}

AGENT_PID=
agent_start() { # ROUND
    # not start_bg: one log for all rounds, appended, with a marker per start
    local cmd=("$PDM_AGENT" -c "$T/agent.conf")
    [ -z "${IT_NS:-}" ] || cmd=(ip netns exec "$IT_NS" "${cmd[@]}") # as start_bg does
    echo "==== round $1: agent started" >>"$T/agent.log"
    "${cmd[@]}" >>"$T/agent.log" 2>&1 &
    AGENT_PID=$!
    IT_PIDS+=("$AGENT_PID")
}
agent_reap() {
    wait "$AGENT_PID" 2>/dev/null || true
    forget_pid "$AGENT_PID"
}

# The check runs on a copy: SQLite would otherwise recover and checkpoint the WAL itself, and the
# next agent start is meant to find the file exactly as the kill left it.
check_integrity() { # ROUND
    rm -f "$T/check.db" "$T/check.db-wal"
    [ -f "$DB" ] || return 0 # killed before the file existed
    cp "$DB" "$T/check.db"
    [ -f "$DB-wal" ] && cp "$DB-wal" "$T/check.db-wal"
    local r
    r=$(sqlite3 "$T/check.db" 'PRAGMA integrity_check' 2>&1) || true
    [ "$r" = ok ] || fail "round $1: integrity_check after kill -9 printed: $r"
}

q() { sqlite3 "$DB" "$1" 2>/dev/null; }

# The session exists before the agent first publishes.
backend_up

TELEMETRY_S=1 write_agent_conf "$T/agent.conf" "$MQTT_PORT" "$SIM_PORT"
sed -i 's/^log_level = .*/&\ncommit_interval_ms = 250/' "$T/agent.conf"
# A fast model, so that runs of 0.3-3 s raise and clear alerts: short windows, one evaluation
# every 250 ms, two in a row over a threshold.
sed -i 's/^hold = .*/hold = 2/; s/^eval_period_ms = .*/eval_period_ms = 250/; s/^window_s = .*/window_s = 2/' \
    "$T/models/compressor.model"
"$PDM_AGENT" --check -c "$T/agent.conf" >/dev/null || fail "test config rejected"

# One cycle: 3 s healthy, 4 s degrading, 2 s failing, 4 s recovering.
start_bg sim "$PDM_SIM" --port "$SIM_PORT" --scenario cycle --healthy-s 3 --degrade-s 4 --seed 5 --quiet
wait_for 10 port_open "$SIM_PORT" || fail "pdm-sim did not listen"

next_flap=$((2 + RANDOM % 3))
for round in $(seq 1 "$ROUNDS"); do
    run_ms=$((300 + RANDOM % 2701))
    flap_at=-1 # ms into the run; run_ms = after the kill
    if [ "$round" -ge "$next_flap" ]; then
        # two times in three while the agent runs, else between two runs
        flap_at=$run_ms
        [ $((RANDOM % 3)) -ne 0 ] && flap_at=$((RANDOM % run_ms))
        next_flap=$((round + 2 + RANDOM % 3))
    fi
    msg="-- round $round: run $run_ms ms, broker $([ $BROKER_UP = 1 ] && echo up || echo down)"
    if [ $flap_at -eq $run_ms ]; then
        msg="$msg, flap after the kill"
    elif [ $flap_at -ge 0 ]; then
        msg="$msg, flap at $flap_at ms"
    fi
    echo "$msg"
    agent_start "$round"
    if [ $flap_at -ge 0 ] && [ $flap_at -lt $run_ms ]; then
        sleep_ms "$flap_at"
        flap
        # the flap itself takes time; the agent still dies within run_ms of the flap
        sleep_ms $((run_ms - flap_at))
    else
        sleep_ms "$run_ms"
    fi
    kill -KILL "$AGENT_PID" 2>/dev/null || fail "round $round: the agent had already exited (see agent.log)"
    agent_reap
    check_integrity "$round"
    if [ $flap_at -eq $run_ms ]; then
        flap
    fi
done

echo "-- final run: broker up, agent stopped cleanly once everything is delivered"
[ $BROKER_UP = 1 ] || backend_up
agent_start final
# Readings keep coming (about 20 rows/s): "small" is what one commit and one telemetry interval
# leave behind.
backlog_small() {
    [ "$(q 'SELECT count(*) FROM alerts WHERE delivered = 0')" = 0 ] &&
        [ "$(q 'SELECT count(*) FROM rows WHERE delivered = 0')" -lt 100 ]
}
final_connected() {
    sed -n '/^==== round final/,$p' "$T/agent.log" | grep -q 'broker .*: connected'
}
wait_for 30 final_connected || fail "the agent did not connect to the broker in the final run"
wait_for 60 backlog_small ||
    fail "the backlog was not delivered within 60 s: $(q 'SELECT count(*) FROM alerts WHERE delivered = 0') alerts, $(q 'SELECT count(*) FROM rows WHERE delivered = 0') rows undelivered"
cur="${SUB_LOGS[-1]}"
offline0=$(count_lines "$cur" '"online":false')
kill -TERM "$AGENT_PID"
wait_for 15 sh -c "! kill -0 $AGENT_PID" || fail "the agent did not stop within 15 s of SIGTERM"
rc=0
wait "$AGENT_PID" || rc=$?
forget_pid "$AGENT_PID"
[ $rc = 0 ] || fail "the agent exited with status $rc on SIGTERM"
# QoS 1 in order on one connection: the goodbye Status comes after everything the agent sent.
wait_for 30 file_has "$cur" '"online":false' $((offline0 + 1)) || fail "subscriber did not see the agent stop"
stop_pid "$SUB_PID"
forget_pid "$SUB_PID"

! grep -n 'Sanitizer\|runtime error:' "$T/agent.log" || fail "sanitizer report in agent.log"
sqlite3 "$DB" 'PRAGMA integrity_check' | grep -qx ok || fail "integrity_check after the clean stop"
events=$(q 'SELECT count(*) FROM alerts')
echo "alert events in the store: $events; by state and severity:"
q 'SELECT state, severity, count(*) FROM alerts GROUP BY state, severity'
[ "$events" -ge 2 ] || fail "only $events alert events were raised: the run proves nothing about alerts"
kills=$(grep -c '^==== round [0-9]' "$T/agent.log")
echo "$kills kills, $N_FLAPS broker flaps, ${#SUB_LOGS[@]} subscriber logs"
python3 "$PDM_SOURCE_DIR/tests/integration/delivery_check.py" --db "$DB" --expect-dropped 0 \
    "${SUB_LOGS[@]}" || fail "delivery check"
echo "PASS"
