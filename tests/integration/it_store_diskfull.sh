#!/usr/bin/env bash
# Disk full (issue 3): the agent's data_dir is a small tmpfs that a filler file fills up while
# the broker is down and the compressor degrades. The agent must stay up and keep sampling
# (readings and alerts held in memory, the failure logged), write everything once space is
# freed, and deliver every alert: those committed before, those held while the disk was full,
# and those published straight from memory when the disk fills again with the broker up.
# Needs root (mount); exits 77 (skipped) when the tmpfs cannot be mounted.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/agent_env.sh"

# A run that was killed may have left its tmpfs mounted: it_setup's rm -rf would stop there.
if mountpoint -q "$PDM_TEST_TMP/store_diskfull/data" 2>/dev/null; then
    umount "$PDM_TEST_TMP/store_diskfull/data" || umount -l "$PDM_TEST_TMP/store_diskfull/data"
fi
it_setup store_diskfull

# The agent must close its files before the tmpfs can go, so stop everything first; then
# lib.sh's it_cleanup reaps (nothing left to kill), prints logs on failure and exits with rc.
diskfull_cleanup() {
    local rc=$?
    [ "$rc" -eq 77 ] && exit 77
    local pid
    for pid in "${IT_PIDS[@]}"; do
        stop_pid "$pid"
    done
    if mountpoint -q "$T/data"; then
        umount "$T/data" 2>/dev/null || umount -l "$T/data" || true
    fi
    (exit "$rc")
    it_cleanup
}
trap diskfull_cleanup EXIT

# 16 MB rather than 4: after the filler goes, the agent (about 150 KB/s of WAL at this rate)
# must not fill the filesystem again by itself before the test ends; the filler makes it full
# whatever its size.
FS_MB=16
mkdir -p "$T/data"
if ! out=$(mount -t tmpfs -o size=${FS_MB}m tmpfs "$T/data" 2>&1); then
    echo "SKIP: cannot mount a ${FS_MB} MB tmpfs on $T/data (needs root or CAP_SYS_ADMIN): $out"
    exit 77
fi
df -k "$T/data" | tail -n 1

pki_make gw-test
MQTT_PORT=$(free_port)
SIM_PORT=$(free_port)
db="$T/data/pdm-agent.db"
log="$T/agent.log"

# The backend's persistent session exists before the outage (as in it_store_cap.sh).
broker_start "$MQTT_PORT" persist
subscribe sub1 --client-id backend --keep-session
wait_for 10 file_has "$T/sub1.log" 'subscribed' || fail "subscriber did not subscribe"
broker_stop
stop_pid "$SUB_PID"

# Twelve sensors every 10 ms; a cap (64 MB) far above the filesystem and no disk reserve, so
# neither saves the store: the filesystem really fills.
write_agent_conf "$T/agent.conf" "$MQTT_PORT" "$SIM_PORT"
sed -i "s/^period_ms = 200/period_ms = 10/; s/^log_level = .*/log_level = info\nbuffer_max_mb = 64\ndisk_reserve_mb = 0\ncommit_interval_ms = 200/" "$T/agent.conf"
for i in $(seq 1 9); do
    printf '\n[sensor extra_%d]\nbus = plant\naddress = %d\ntype = float32\nperiod_ms = 10\n' \
        "$i" $(((i % 3) * 2)) >>"$T/agent.conf"
done
"$PDM_AGENT" --check -c "$T/agent.conf" >/dev/null || fail "test config rejected"

# cycle: healthy 3 s, degrading 4 s, failing 2 s, recovering 4 s, again: alerts are raised,
# escalated and cleared during both full-disk phases.
start_bg sim "$PDM_SIM" --port "$SIM_PORT" --scenario cycle --healthy-s 3 --degrade-s 4 --seed 3 --quiet
wait_for 10 port_open "$SIM_PORT" || fail "pdm-sim did not listen"
start_bg agent "$PDM_AGENT" -c "$T/agent.conf"
AGENT_PID=$LAST_PID

db_has_rows() {
    [ "$(sqlite3 "$db" 'SELECT count(*) FROM rows' 2>/dev/null || echo 0)" -gt 0 ]
}
wait_for 10 db_has_rows || fail "agent stored no readings"

FAIL_RE='store .*pdm-agent.db: .*\(disk is full\|No space left\)'
REC_RE='store .*pdm-agent.db: writes succeed again'
ALERT_RE='asset [^ ]*: alert [^ ]* \(RAISED\|UPDATED\|CLEARED\) '
lines() { wc -l <"$log"; }
# after_line N PATTERN: a line after line N of the agent log matches PATTERN.
after_line() { tail -n "+$(($1 + 1))" "$log" | grep -q -- "$2"; }
# first_after N PATTERN: the number of the first line after line N that matches PATTERN.
first_after() { awk -v n="$1" -v re="$2" 'NR > n && $0 ~ re { print NR; exit }' "$log"; }
alive() { kill -0 "$AGENT_PID" 2>/dev/null || fail "agent died: $(tail -n 5 "$log")"; }
fill_disk() { # dd stops at ENOSPC, which is the point
    dd if=/dev/zero of="$T/data/filler" bs=64k status=none 2>/dev/null || true
    df -k "$T/data" | tail -n 1
}

echo "-- phase A: disk full, broker down"
fill_disk
wait_for 10 after_line 0 "$FAIL_RE" || fail "no write failure logged after the disk filled"
FAIL_A=$(first_after 0 "${FAIL_RE//\\/}")
grep -m 1 -- "$FAIL_RE" "$log"
# Alerts raised and escalated while the disk is full (the model needs a few seconds of
# degradation): wait for an escalation so more than one event is held.
wait_for 25 after_line "$FAIL_A" 'alert .* UPDATED' || fail "no alert escalated while the disk was full"
alive
rows_before=$(sqlite3 "$db" 'SELECT count(*) FROM rows')
sleep_until=$((SECONDS + 1)) # a second more of samples held, bounded
while [ $SECONDS -lt $sleep_until ]; do sleep 0.2; done
alive
[ "$(sqlite3 "$db" 'SELECT count(*) FROM rows')" = "$rows_before" ] ||
    fail "readings reached the database although the disk is full"
grep -q 'Segmentation\|AddressSanitizer\|runtime error:' "$log" && fail "sanitizer or crash report"

echo "-- phase A: space freed"
n=$(lines)
rm -f "$T/data/filler"
wait_for 10 after_line "$n" "$REC_RE" || fail "no recovery line after space was freed"
REC_A=$(first_after "$n" "writes succeed again")
rec=$(sed -n "${REC_A}p" "$log")
echo "$rec"
held_rows=$(printf '%s\n' "$rec" | sed -n 's/.*again; \([0-9]*\) readings and \([0-9]*\) alerts.*/\1/p')
held_alerts=$(printf '%s\n' "$rec" | sed -n 's/.*again; \([0-9]*\) readings and \([0-9]*\) alerts.*/\2/p')
[ -n "$held_rows" ] && [ -n "$held_alerts" ] || fail "recovery line has no held counts"
events_a=$(sed -n "${FAIL_A},${REC_A}p" "$log" | grep -c -- "$ALERT_RE" || true)
echo "phase A: $events_a alert events logged while the disk was full; $held_alerts held, $held_rows readings held"
[ "$events_a" -ge 1 ] || fail "expected alert events while the disk was full, saw $events_a"
# The broker was down: every alert event of the full period was held and is now on disk.
[ "$held_alerts" -eq "$events_a" ] ||
    fail "$events_a alert events while full but $held_alerts written on recovery"
# Sampling went on: about 1200 readings/s for several seconds were kept in memory.
[ "$held_rows" -ge 2000 ] || fail "only $held_rows readings held while the disk was full"
alive

echo "-- broker back"
broker_start "$MQTT_PORT" persist
subscribe sub2 --client-id backend --keep-session
undelivered_alerts() { [ "$(sqlite3 "$db" 'SELECT count(*) FROM alerts WHERE delivered = 0')" = 0 ]; }
wait_for 30 undelivered_alerts || fail "alerts still undelivered after the broker came back"
wait_for 10 file_has "$T/sub2.log" '"type":"status"' || fail "no Status after reconnecting"
grep '"type":"status"' "$T/sub2.log" | tail -n 1 | grep -q '"store_write_failing":true' &&
    fail "Status says writes fail after they recovered"

echo "-- phase B: disk full again, broker up"
n=$(lines)
fill_disk
wait_for 10 after_line "$n" "$FAIL_RE" || fail "no write failure logged the second time"
FAIL_B=$(first_after "$n" "${FAIL_RE//\\/}")
# Status is published on connect: reconnect so the backend sees the failing store.
broker_stop
stop_pid "$SUB_PID"
broker_start "$MQTT_PORT" persist
subscribe sub3 --client-id backend --keep-session
status_failing() { grep '"type":"status"' "$T/sub3.log" | grep -q '"store_write_failing":true'; }
wait_for 20 status_failing || fail "Status does not say writes fail while the disk is full"
grep '"type":"status"' "$T/sub3.log" | grep -m 1 '"store_write_failing":true' | cut -c 1-300
alive
n=$(lines)
rm -f "$T/data/filler"
wait_for 10 after_line "$n" "$REC_RE" || fail "no recovery line after space was freed again"
REC_B=$(first_after "$n" "writes succeed again")
sed -n "${REC_B}p" "$log"
events_b=$(sed -n "${FAIL_B},${REC_B}p" "$log" | grep -c -- "$ALERT_RE" || true)
echo "phase B: $events_b alert events logged while the disk was full (broker up)"
wait_for 30 undelivered_alerts || fail "alerts still undelivered after the second recovery"

echo "-- stop"
kill -TERM "$AGENT_PID"
wait_for 15 sh -c "! kill -0 $AGENT_PID" || fail "agent did not stop within 15 s of SIGTERM"
rc=0
wait "$AGENT_PID" || rc=$?
[ "$rc" -eq 0 ] || fail "agent exit status $rc after SIGTERM"
grep -q 'AddressSanitizer\|LeakSanitizer\|runtime error:' "$log" && fail "sanitizer report in the agent log"
wait_for 30 file_has "$T/sub3.log" '"online":false' || fail "subscriber did not see the agent stop"
grep '"online":false' "$T/sub3.log" | tail -n 1 | grep -q '"store_write_failing":true' &&
    fail "goodbye Status says writes fail"

sqlite3 "$db" 'PRAGMA integrity_check' | grep -qx ok || fail "integrity_check not ok"
dropped=$(sqlite3 "$db" "SELECT value FROM meta WHERE key = 'rows_dropped'")
dropped=${dropped:-0}
echo "rows_dropped $dropped"
python3 "$PDM_SOURCE_DIR/tests/integration/delivery_check.py" --db "$db" \
    --expect-dropped "$dropped" "$T/sub1.log" "$T/sub2.log" "$T/sub3.log" || fail "delivery check"

# Every alert event the agent logged (committed, held then written, or published from memory)
# reached the backend: per alert id, the same states and severities, each with its own seq.
python3 - "$log" "$T/sub1.log" "$T/sub2.log" "$T/sub3.log" <<'PY' || fail "alert events lost"
import collections, json, re, sys

def norm(v):
    return str(v).upper().split("_")[-1]

logged = collections.defaultdict(list)
pat = re.compile(r"asset \S+: alert (\S+) (RAISED|UPDATED|CLEARED) (\S+) P=")
with open(sys.argv[1], errors="replace") as f:
    for line in f:
        m = pat.search(line)
        if m:
            logged[m.group(1)].append((m.group(2), norm(m.group(3))))
got = {}
for path in sys.argv[2:]:
    with open(path, errors="replace") as f:
        for line in f:
            if not line.startswith("{"):
                continue
            try:
                m = json.loads(line)
            except json.JSONDecodeError:
                continue
            if m.get("type") == "alert":
                got[m["seq"]] = (m["alert_id"], norm(m["state"]), norm(m["severity"]))
received = collections.defaultdict(list)
for aid, st, sv in got.values():
    received[aid].append((st, sv))
bad = [a for a in logged if sorted(logged[a]) != sorted(received.get(a, []))]
extra = [a for a in received if a not in logged]
n = sum(len(v) for v in logged.values())
print(f"alerts: {n} events of {len(logged)} ids logged, {len(got)} distinct alert seqs received")
for a in bad:
    print(f"  {a}: logged {sorted(logged[a])}, received {sorted(received.get(a, []))}")
if extra:
    print(f"  received ids the agent never logged: {extra}")
sys.exit(1 if bad or extra or not n else 0)
PY
# A full disk can last hours: like every other failing condition (README, "Logs") it must be
# logged once and then at growing intervals, not on every 200 ms commit. The store does so for
# its own lines; the agent's "commit failed" line must too. (complain schedule: first, +10 s,
# +20 s: at most 3 in phase A, which lasts well under 40 s.)
floods=$(sed -n "${FAIL_A},${REC_A}p" "$log" | grep -c 'store: commit failed' || true)
echo "phase A: $floods 'store: commit failed' lines in $(sed -n "${FAIL_A},${REC_A}p" "$log" | wc -l) log lines"
[ "$floods" -le 3 ] || fail "the agent logged 'store: commit failed' $floods times while the disk was full (every commit): not rate-limited"
echo "PASS"
