#!/usr/bin/env bash
# pdmctl status, scan and check as a field engineer runs them, against real components: the
# agent's control socket (0600, one agent per data_dir, stale socket replaced, slow clients
# dropped), pdm-sim answering chosen unit ids, mosquitto with good and rogue certificates.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/agent_env.sh"
it_setup pdmctl
pki_make gw-test

# expect_rc RC OUTFILE COMMAND...: runs COMMAND (stdout+stderr to OUTFILE), checks its status
expect_rc() {
    local want=$1 out=$2
    shift 2
    set +e
    "$@" >"$out" 2>&1
    local rc=$?
    set -e
    [ "$rc" -eq "$want" ] || { cat "$out"; fail "'$*' exited $rc, expected $want"; }
}

# ---- arguments and help ------------------------------------------------------------------------
for cmd in status scan check; do
    "$PDMCTL" "$cmd" --help >"$T/help.txt" || fail "pdmctl $cmd --help exited $?"
    grep -q "^usage: pdmctl $cmd" "$T/help.txt" || fail "pdmctl $cmd --help prints no usage"
    grep -q "exit status" "$T/help.txt" || fail "pdmctl $cmd --help does not document exit codes"
    expect_rc 2 "$T/arg.txt" "$PDMCTL" "$cmd" --bogus
    grep -q "unknown option '--bogus'" "$T/arg.txt" || fail "$cmd: unclear unknown-option message"
done
"$PDMCTL" --help | grep -q "^  scan " || fail "pdmctl --help does not list scan"
expect_rc 2 "$T/arg.txt" "$PDMCTL" status --watch 0
grep -q -- "--watch: expected seconds" "$T/arg.txt" || fail "bad --watch not explained"
expect_rc 2 "$T/arg.txt" "$PDMCTL" status -c x.conf --socket y.sock
expect_rc 2 "$T/arg.txt" "$PDMCTL" status extra
expect_rc 2 "$T/arg.txt" "$PDMCTL" scan
grep -q "exactly one of --tcp" "$T/arg.txt" || fail "scan without a transport not explained"
expect_rc 2 "$T/arg.txt" "$PDMCTL" scan --tcp 127.0.0.1 --units 1-300
grep -q -- "--units: expected" "$T/arg.txt" || fail "bad --units not explained"
expect_rc 2 "$T/arg.txt" "$PDMCTL" scan --rtu /dev/null --units 0-3
grep -q "broadcast" "$T/arg.txt" || fail "unit 0 on a serial line not explained"
expect_rc 2 "$T/arg.txt" "$PDMCTL" scan --tcp 127.0.0.1 --baud 9600
expect_rc 2 "$T/arg.txt" "$PDMCTL" scan --tcp 127.0.0.1 --timeout-ms 5
expect_rc 2 "$T/arg.txt" "$PDMCTL" check -c a.conf extra

# ---- status with no agent ----------------------------------------------------------------------
expect_rc 1 "$T/noagent.txt" "$PDMCTL" status --socket "$T/nothing.sock"
grep -q "no agent answers on $T/nothing.sock: is pdm-agent running?" "$T/noagent.txt" ||
    fail "no-agent message unclear: $(cat "$T/noagent.txt")"

# ---- a site: broker, simulator, agent ------------------------------------------------------------
MQTT_PORT=$(free_port)
SIM_PORT=$(free_port)
broker_start "$MQTT_PORT"
write_agent_conf "$T/agent.conf" "$MQTT_PORT" "$SIM_PORT"
SOCK="$T/data/pdm-agent.sock"
start_bg sim "$PDM_SIM" --port "$SIM_PORT" --healthy-s 4 --degrade-s 8 --seed 3 --quiet
SIM_PID=$LAST_PID
wait_for 10 port_open "$SIM_PORT" || fail "pdm-sim did not listen"

# check while nothing else is running on the site: everything ready
expect_rc 0 "$T/check.txt" "$PDMCTL" check -c "$T/agent.conf"
cat "$T/check.txt"
grep -qx "configuration OK" "$T/check.txt" || fail "check does not validate like pdm-agent --check"
# the three adjacent float32 sensors are one request per period on the wire (coalesced)
grep -q "^bus plant: 1 request per cycle" "$T/check.txt" || fail "check: no coalesced request plan"
grep -Eq "^  request 1: unit 1 holding 0\.\.5 \(3 sensors: comp_temp comp_vib comp_power\)" "$T/check.txt" ||
    fail "check: the planned request does not cover the three sensors"
for s in comp_temp comp_vib comp_power; do
    grep -Eq "^$s +plant +1 +-?[0-9.e+-]+ .* ok$" "$T/check.txt" || fail "check: no good read of $s"
done
grep -q "chain verifies against ca_file" "$T/check.txt" || fail "check: no chain verification"
grep -q "host name 127.0.0.1 matches" "$T/check.txt" || fail "check: no host name match"
grep -q "key_file matches cert_file" "$T/check.txt" || fail "check: no key/cert match"
grep -Eq "broker certificate /CN=localhost expires on .*(days|renew)" "$T/check.txt" ||
    fail "check: no expiry of the broker certificate"
grep -q "in [0-9]* days (renew it)" "$T/check.txt" || fail "check: 30-day certificates not warned"
grep -q "^READY" "$T/check.txt" || fail "check: no READY verdict"

start_bg agent "$PDM_AGENT" -c "$T/agent.conf"
AGENT_PID=$LAST_PID
wait_for 10 test -S "$SOCK" || fail "the agent made no control socket at $SOCK"
[ "$(stat -c %a "$SOCK")" = 600 ] || fail "control socket mode $(stat -c %a "$SOCK"), expected 600"

# text: live values, the model inputs and the probability, once the broker is connected (the
# first score can come before the TLS handshake ends, under qemu on a busy machine)
has_values() {
    "$PDMCTL" status -c "$T/agent.conf" >"$T/status.txt" 2>&1 &&
        grep -Eq "^comp_temp +plant +1 +[0-9.]+ +degC +ok" "$T/status.txt" &&
        grep -q "P = 0\.[0-9]*, health" "$T/status.txt" &&
        grep -q "BROKER mqtts://127.0.0.1:$MQTT_PORT: connected" "$T/status.txt"
}
wait_for 30 has_values || {
    cat "$T/status.txt"
    fail "status shows no values, no probability or no connected broker"
}
cat "$T/status.txt"
for w in "ASSET compressor-1 (model compressor v1)" "temperature *comp_temp *mean" "BUFFER" \
    "BROKER mqtts://127.0.0.1:$MQTT_PORT: connected" "RECENT ERRORS"; do
    grep -q "$w" "$T/status.txt" || fail "status text lacks '$w'"
done

# JSON: the same, machine-readable; then the alert once the compressor degrades
status_json() { "$PDMCTL" status --socket "$SOCK" --json >"$T/status.json" 2>&1; }
alert_open() {
    status_json && python3 - "$T/status.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
a = s["assets"][0]
sys.exit(0 if a["alert"]["active"] and a["alert"]["severity"] in ("WARNING", "CRITICAL") else 1)
PY
}
wait_for 60 alert_open || { cat "$T/status.json"; fail "status --json shows no open alert"; }
python3 - "$T/status.json" <<'PY' || fail "status --json content"
import json, sys
s = json.load(open(sys.argv[1]))
assert s["device_id"] == "gw-test", s["device_id"]
sens = {x["name"]: x for x in s["sensors"]}
assert set(sens) == {"comp_temp", "comp_vib", "comp_power"}, sens.keys()
for x in sens.values():
    # a number: %.6g writes 1038.9996 as 1039, which json reads as an int
    assert type(x["value"]) in (int, float) and x["ok"] and x["reads"] > 0, x
assert sens["comp_temp"]["unit"] == "degC"
a = s["assets"][0]
assert a["name"] == "compressor-1" and a["scored"]
assert 0.5 <= a["probability"] <= 1, a["probability"]
assert a["alert"]["alert_id"].startswith("compressor-1-"), a["alert"]
names = [i["name"] for i in a["inputs"]]
assert "temperature" in names, names
t = a["inputs"][names.index("temperature")]
assert t["sensor"] == "comp_temp" and all(k in t for k in ("value", "z", "contribution")), t
assert s["broker"]["state"] == "connected", s["broker"]
assert s["buffer"]["ok"] and "readings" in s["buffer"], s["buffer"]
print("json ok: P=%.3f %s %s" % (a["probability"], a["alert"]["severity"], a["alert"]["alert_id"]))
PY
grep -q "alert: \(WARNING\|CRITICAL\), alert_id compressor-1-" <("$PDMCTL" status --socket "$SOCK") ||
    fail "status text does not show the open alert"

# --watch redraws in place until stopped
set +e
timeout 3.5 "$PDMCTL" status --socket "$SOCK" --watch 1 >"$T/watch.txt" 2>&1
set -e
[ "$(grep -c $'\033\[H' "$T/watch.txt")" -ge 2 ] || fail "--watch did not redraw"
grep -q "refreshing every 1 s" "$T/watch.txt" || fail "--watch does not say how to stop"

# Slow clients do not block the loop: four idle connections fill every slot; the agent drops
# them after 2 s and answers again; an overlong request is refused.
# (The script says when its four are connected: python3 alone can take over 0.3 s to start on a
# loaded machine, and a request sent before them would find free slots.)
python3 - "$SOCK" "$T/idle.ready" <<'PY' &
import socket, sys, time
cs = []
for _ in range(4):
    c = socket.socket(socket.AF_UNIX); c.connect(sys.argv[1]); cs.append(c)
open(sys.argv[2], "w").close()
time.sleep(6)
PY
IDLE_PID=$!
IT_PIDS+=("$IDLE_PID")
wait_for 5 test -e "$T/idle.ready" || fail "the idle clients did not connect"
wait_for 5 "$PDMCTL" status --socket "$SOCK" || fail "status blocked by idle clients"
python3 - "$SOCK" <<'PY' || fail "an overlong request was not refused"
import socket, sys
c = socket.socket(socket.AF_UNIX); c.connect(sys.argv[1]); c.settimeout(5)
c.sendall(b"x" * 400)
r = c.recv(4096).decode()
assert r.startswith("error: unknown request"), r
PY

# A second agent on the same data_dir is refused and leaves the first one alone.
expect_rc 1 "$T/second.txt" timeout 20 "$PDM_AGENT" -c "$T/agent.conf"
grep -q "another pdm-agent is already running with data_dir $T/data" "$T/second.txt" ||
    fail "second agent: $(cat "$T/second.txt")"
"$PDMCTL" status --socket "$SOCK" >/dev/null || fail "first agent lost its socket to the second"

# A crash leaves the socket behind: status says nobody answers; a new agent replaces it.
stop_pid "$AGENT_PID" KILL
[ -S "$SOCK" ] || fail "expected a stale socket after kill -9"
expect_rc 1 "$T/stale.txt" "$PDMCTL" status --socket "$SOCK"
grep -q "is pdm-agent running? (connection refused)" "$T/stale.txt" || fail "stale: $(cat "$T/stale.txt")"
start_bg agent2 "$PDM_AGENT" -c "$T/agent.conf"
AGENT_PID=$LAST_PID
wait_for 10 "$PDMCTL" status --socket "$SOCK" || fail "a new agent did not replace the stale socket"
stop_pid "$AGENT_PID"
[ ! -e "$SOCK" ] || fail "the agent left its socket behind after a clean stop"

# ---- scan ----------------------------------------------------------------------------------------
"$PDMCTL" scan --tcp "127.0.0.1:$SIM_PORT" --units 1-2 --timeout-ms 100 >"$T/scan1.txt" 2>"$T/scan1.err" ||
    fail "scan did not find unit 1: $(cat "$T/scan1.err")"
grep -Eq "^ +1 +answers" "$T/scan1.txt" || fail "scan: unit 1 missing: $(cat "$T/scan1.txt")"
SIM2_PORT=$(free_port)
start_bg sim2 "$PDM_SIM" --port "$SIM2_PORT" --unit-id 1,3 --quiet
wait_for 10 port_open "$SIM2_PORT" || fail "second pdm-sim did not listen"
"$PDMCTL" scan --tcp "127.0.0.1:$SIM2_PORT" --units 1-6 --timeout-ms 100 >"$T/scan.txt" 2>"$T/scan.err" ||
    fail "scan found nothing: $(cat "$T/scan.err")"
cat "$T/scan.txt"
grep -q "^2 of 6 unit ids answered on 127.0.0.1:$SIM2_PORT: 1 3$" "$T/scan.txt" || fail "scan: expected 1 and 3 only"
grep -q "^scan: 6 unit ids on .* at most" "$T/scan.err" || fail "scan: no bound or progress on stderr"
# an exception reply is a device too, and says which exception
"$PDMCTL" scan --tcp "127.0.0.1:$SIM2_PORT" --units 3 --address 65000 >"$T/scanx.txt" 2>&1 ||
    fail "scan: an exception reply should count as an answer"
grep -q "exception: illegal data address (exception 2)" "$T/scanx.txt" || fail "scan: exception not named"
expect_rc 1 "$T/scan0.txt" "$PDMCTL" scan --tcp "127.0.0.1:$SIM2_PORT" --units 4,5 --timeout-ms 50
grep -q "no unit id answered" "$T/scan0.txt" || fail "scan: no clear message when nothing answers"

# ---- check: rogue broker, wrong key, bad config ------------------------------------------------
ROGUE_PORT=$(free_port)
broker_start "$ROGUE_PORT" rogue
write_agent_conf "$T/rogue.conf" "$ROGUE_PORT" "$SIM_PORT"
expect_rc 1 "$T/check-rogue.txt" "$PDMCTL" check -c "$T/rogue.conf"
cat "$T/check-rogue.txt"
grep -q "chain does not verify against ca_file" "$T/check-rogue.txt" || fail "rogue broker not reported"
grep -q "^NOT READY: .*does not verify" "$T/check-rogue.txt" || fail "rogue: verdict does not say why"

write_agent_conf "$T/wrongkey.conf" "$MQTT_PORT" "$SIM_PORT"
sed -i 's|^key_file = tls/device.key|key_file = tls/sub.key|' "$T/wrongkey.conf"
expect_rc 1 "$T/check-key.txt" "$PDMCTL" check -c "$T/wrongkey.conf"
cat "$T/check-key.txt"
grep -q "key and certificate do not match" "$T/check-key.txt" || fail "wrong key not reported"

stop_pid "$SIM_PID" # the site's device goes away: every sensor fails
expect_rc 1 "$T/check-dead.txt" "$PDMCTL" check -c "$T/agent.conf"
grep -Eq "^comp_temp .* ERROR: cannot connect to 127.0.0.1:$SIM_PORT" "$T/check-dead.txt" ||
    fail "a dead device is not shown in the table: $(cat "$T/check-dead.txt")"

printf '[agent]\ndevice_id = bad id\n' >"$T/bad.conf"
expect_rc 78 "$T/check-bad.txt" "$PDMCTL" check -c "$T/bad.conf"
grep -q "^$T/bad.conf:2: agent.device_id: " "$T/check-bad.txt" || fail "config errors not as FILE:LINE"
echo "PASS"
