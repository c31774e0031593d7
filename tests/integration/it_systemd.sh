#!/usr/bin/env bash
# Issue 5, the service: this test plays systemd's part. It binds the NOTIFY_SOCKET datagram
# socket itself and starts the agent as systemd would (NOTIFY_SOCKET, WATCHDOG_USEC), then checks
# - READY=1 arrives once, and only after the store file exists and the agent logs "running";
# - WATCHDOG=1 pings keep coming at half of WATCHDOG_USEC (2 s -> about one per second);
# - STOPPING=1 arrives on SIGTERM, the agent exits 0, and the stop flushed the store: readings
#   that were never committed before SIGTERM (commit interval 60 s) are in SQLite afterwards;
# - an abstract socket name (@...) works, and WATCHDOG_PID naming another process means no pings;
# - a bad configuration exits 78 without READY=1 (the unit's RestartPreventExitStatus=78);
# - packaging/pdm-agent.service passes `systemd-analyze verify` with no output at all and
#   `systemd-analyze security --offline=true` rates its exposure at or below 2.5.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/agent_env.sh"
it_setup systemd

UNIT="$PDM_SOURCE_DIR/packaging/pdm-agent.service"
command -v systemd-analyze >/dev/null || fail "systemd-analyze is missing (scripts/deps.sh --test)"

# ---- the unit file ------------------------------------------------------------------------------
# verify wants ExecStart to exist: check a copy that starts the binary under test.
mkdir -p "$T/unit"
sed "s|^ExecStart=/usr/bin/pdm-agent |ExecStart=$PDM_AGENT |" "$UNIT" >"$T/unit/pdm-agent.service"
grep -q "^ExecStart=$PDM_AGENT " "$T/unit/pdm-agent.service" || fail "unit: no ExecStart to rewrite"
# verify also runs `man` for Documentation=man:...: give it the pages of docs/man/ only, so the
# unit can name no page the source does not ship.
verify_args=()
for p in "$PDM_SOURCE_DIR"/docs/man/*.[1-8]; do
    [ -e "$p" ] || continue
    mkdir -p "$T/man/man${p##*.}"
    cp "$p" "$T/man/man${p##*.}/"
done
if ! command -v man >/dev/null; then
    verify_args=(--man=no)
    echo "(man is not installed: the unit's Documentation= page is not checked)"
fi
set +e
MANPATH="$T/man" systemd-analyze verify "${verify_args[@]}" "$T/unit/pdm-agent.service" >"$T/verify.log" 2>&1
rc=$?
set -e
cat "$T/verify.log"
# unknown keys and bad values are only warnings (exit 0): any output at all is a failure
[ $rc -eq 0 ] && [ ! -s "$T/verify.log" ] || fail "systemd-analyze verify is not clean (exit $rc)"

systemd-analyze security --offline=true --no-pager "$UNIT" >"$T/security.log" 2>&1 ||
    fail "systemd-analyze security failed: $(tail -n 3 "$T/security.log")"
exposure=$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p' "$T/security.log")
[ -n "$exposure" ] || fail "no exposure level in the systemd-analyze security output"
echo "exposure: $exposure"
awk -v e="$exposure" 'BEGIN { exit !(e <= 2.5) }' || fail "exposure $exposure is above 2.5"
grep -q '^Type=notify$' "$UNIT" || fail "unit is not Type=notify"
grep -q '^RestartPreventExitStatus=78$' "$UNIT" || fail "unit restarts on a config error"

# ---- the notification protocol ------------------------------------------------------------------
# notify_listen NAME SOCKET AGENT_LOG DB: logs "MONO_MS MESSAGE_LINE" per received line to
# $T/NAME.log; on READY=1 it also logs whether the store file existed and the agent had logged
# "running" at that moment. SOCKET starting with '@' is abstract.
cat >"$T/notify_listen.py" <<'PY'
import os, socket, sys, time
path, agent_log, db = sys.argv[1:4]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("\0" + path[1:] if path.startswith("@") else path)
print("bound", flush=True)
while True:
    msg = s.recv(4096).decode()
    now = int(time.monotonic() * 1000)
    for line in msg.split("\n"):
        print(now, line, flush=True)
    if "READY=1" in msg.split("\n"):
        try:
            running = "running; broker" in open(agent_log, errors="replace").read()
        except OSError:
            running = False
        print(now, "CHECK db=%d running=%d" % (os.path.exists(db), running), flush=True)
PY
notify_listen() {
    start_bg "$1" python3 -u "$T/notify_listen.py" "$2" "$3" "$4"
    wait_for 10 file_has "$T/$1.log" '^bound' || fail "notify listener $1 did not bind"
}

SIM_PORT=$(free_port)
MQTT_PORT=$(free_port) # nothing listens there: the agent buffers, as on a site without uplink
start_bg sim "$PDM_SIM" --port "$SIM_PORT" --scenario healthy --seed 3 --quiet
wait_for 10 port_open "$SIM_PORT" || fail "pdm-sim did not start"
pki_make gw-test
write_agent_conf "$T/agent.conf" "$MQTT_PORT" "$SIM_PORT"
# the only commit before SIGTERM would be at 60 s: rows in SQLite after the stop prove the flush
sed -i 's/^\[agent\]$/[agent]\ncommit_interval_ms = 60000/' "$T/agent.conf"
DB="$T/data/pdm-agent.db"

notify_listen notify "$T/notify.sock" "$T/agent.log" "$DB"
cd "$T"
NOTIFY_SOCKET="$T/notify.sock" WATCHDOG_USEC=2000000 start_bg agent "$PDM_AGENT" -c "$T/agent.conf"
AGENT_PID=$LAST_PID
N="$T/notify.log"

wait_for 20 file_has "$N" ' READY=1$' || fail "no READY=1 within 20 s"
file_has "$N" 'CHECK db=1 running=1' || fail "READY=1 came before the store and buses were up"
wait_for 10 file_has "$N" ' STATUS=buffering: broker' || fail "no STATUS line about the broker"

# Pings: at least 4 within 5 s of READY, no gap above 1.5 s (the interval is 1 s).
wait_for 5 file_has "$N" ' WATCHDOG=1$' 4 || fail "fewer than 4 WATCHDOG=1 within 5 s"
grep ' WATCHDOG=1$' "$N" | awk 'NR > 1 && $1 - prev > 1500 { bad = 1 } { prev = $1 }
    END { exit bad }' || fail "WATCHDOG=1 gap above 1.5 s: $(grep -c WATCHDOG "$N") pings"
! file_has "$N" 'STOPPING=1' || fail "STOPPING=1 before any signal"

# Readings are held in the open transaction until SIGTERM.
wait_for 10 file_has "$T/agent.log" 'running; broker' || fail "agent never logged running"
before=$(sqlite3 "file:$DB?mode=ro" 'SELECT count(*) FROM rows' 2>/dev/null || echo 0)
kill -TERM "$AGENT_PID"
wait_for 10 file_has "$N" ' STOPPING=1$' || fail "no STOPPING=1 after SIGTERM"
set +e
wait "$AGENT_PID"
rc=$?
set -e
[ $rc -eq 0 ] || fail "agent exited $rc after SIGTERM, expected 0"
file_has "$T/agent.log" 'stopped' || fail "agent did not log its clean stop"
[ "$(sqlite3 "$DB" 'PRAGMA integrity_check')" = ok ] || fail "store damaged after a clean stop"
after=$(sqlite3 "$DB" 'SELECT count(*) FROM rows')
echo "rows committed: before SIGTERM $before, after the stop $after"
[ "$after" -gt "$before" ] || fail "the clean stop did not flush the held readings ($before -> $after)"
[ "$(count_lines "$N" ' READY=1$')" -eq 1 ] || fail "READY=1 sent more than once"

# Abstract socket, and a WATCHDOG_PID that is not ours (a process that inherited the variables):
# READY and STOPPING still arrive, pings do not.
ABS="@pdm-it-systemd-$$"
notify_listen notify2 "$ABS" "$T/agent2.log" "$DB"
NOTIFY_SOCKET="$ABS" WATCHDOG_USEC=400000 WATCHDOG_PID=1 start_bg agent2 "$PDM_AGENT" -c "$T/agent.conf"
AGENT2_PID=$LAST_PID
wait_for 20 file_has "$T/notify2.log" ' READY=1$' || fail "no READY=1 over an abstract socket"
sleep 1.5 # an absence: at 200 ms intervals, 7 pings would have come by now
! file_has "$T/notify2.log" ' WATCHDOG=1$' || fail "pinged although WATCHDOG_PID is another process"
stop_pid "$AGENT2_PID"
file_has "$T/notify2.log" ' STOPPING=1$' || fail "no STOPPING=1 over an abstract socket"

# A configuration error: exit 78, no READY=1 (systemd would report a failed start, not restart).
printf '[agent]\ndevice_id = gw test\n' >"$T/bad.conf"
ready_before=$(count_lines "$N" ' READY=1$')
set +e
NOTIFY_SOCKET="$T/notify.sock" WATCHDOG_USEC=2000000 "$PDM_AGENT" -c "$T/bad.conf" >"$T/bad.log" 2>&1
rc=$?
set -e
[ $rc -eq 78 ] || fail "bad config exited $rc, expected 78"
[ "$(count_lines "$N" ' READY=1$')" -eq "$ready_before" ] || fail "READY=1 sent for a bad config"
echo "PASS"
