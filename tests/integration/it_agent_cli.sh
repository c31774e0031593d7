#!/usr/bin/env bash
# The command lines as a user meets them: --help/--version, --check on good and bad configs
# (every error as FILE:LINE: section.key: reason, exit 78), a daemon that refuses a bad config
# with the same errors as log lines at priority error (<3>).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/agent_env.sh"
it_setup agent_cli
pki_make gw-test

for b in "$PDM_AGENT" "$PDMCTL" "$PDM_SIM"; do
    "$b" --help >"$T/help.txt" || fail "$b --help exited $?"
    grep -qi usage "$T/help.txt" || fail "$b --help prints no usage"
    "$b" --version | grep -Eq '^pdm[-a-z]* [0-9]+\.[0-9]+\.[0-9]+$' || fail "$b --version"
done
set +e
"$PDM_AGENT" --bogus >/dev/null 2>&1
[ $? -eq 64 ] || fail "unknown option should exit 64"
set -e

write_agent_conf "$T/agent.conf" 8883 1502
out=$("$PDM_AGENT" --check -c "$T/agent.conf") || fail "--check on a good config failed: $out"
[ "$out" = "configuration OK" ] || fail "unexpected --check output: $out"

# A config with several mistakes: all are reported, each with file, line and key.
cat >"$T/bad.conf" <<'CONF'
[agent]
device_id = gw 0001
data_dir = data

[mqtt]
uri = mqtt://127.0.0.1:1883
topic_prefix = pdm/v1

[bus plant]
driver = modbus-tcp
host = 127.0.0.1
port = 70000

[sensor comp_temp]
bus = nowhere
adress = 0
type = float32

[asset compressor-1]
model = models/compressor.model
temperature = comp_temp
CONF
set +e
"$PDM_AGENT" --check -c "$T/bad.conf" >"$T/check.out" 2>&1
rc=$?
set -e
cat "$T/check.out"
[ $rc -eq 78 ] || fail "--check on a bad config exited $rc, expected 78"
f="$T/bad.conf"
grep -q "^$f:2: agent.device_id: " "$T/check.out" || fail "device_id error missing"
grep -q "^$f:6: mqtt.uri: .*plain" "$T/check.out" || fail "plain-text refusal missing"
grep -q "^$f:12: bus.plant.port: " "$T/check.out" || fail "port range error missing"
grep -q "^$f:15: sensor.comp_temp.bus: .*nowhere" "$T/check.out" || fail "bad bus reference missing"
grep -q "^$f:16: sensor.comp_temp.adress: .*address" "$T/check.out" || fail "unknown key with suggestion missing"
grep -q "^$f:[0-9]*: sensor.comp_temp.address: " "$T/check.out" || fail "missing address not reported"
[ "$(grep -c "^$f:" "$T/check.out")" -ge 6 ] || fail "not every error was reported"
n=$(grep -c "^$f:[0-9]*: " "$T/check.out")
grep -q "^$f: $n errors in the configuration; not OK$" "$T/check.out" || fail "--check summary missing"

# The daemon refuses to start with the same errors and exit status, and touches nothing. Its
# stderr is journald's input: every line is an error ("<3>"), so journalctl -p warning shows it.
set +e
"$PDM_AGENT" -c "$T/bad.conf" >"$T/run.out" 2>"$T/run.err"
rc=$?
set -e
cat "$T/run.err"
[ $rc -eq 78 ] || fail "daemon on a bad config exited $rc, expected 78"
[ ! -s "$T/run.out" ] || fail "daemon wrote to stdout: $(cat "$T/run.out")"
grep -q "^<3>$f:15: sensor.comp_temp.bus: " "$T/run.err" || fail "daemon did not print the errors at <3>"
[ "$(grep -c "^<3>$f:" "$T/run.err")" -eq "$(grep -c "^$f:" "$T/check.out")" ] ||
    fail "the daemon did not print every error --check prints"
grep -q "^<3>$f: $n errors in the configuration; the agent does not start$" "$T/run.err" ||
    fail "daemon summary missing or not at <3>"
! grep -qv "^<3>" "$T/run.err" || fail "daemon printed lines without an error prefix: $(grep -v "^<3>" "$T/run.err")"
! grep -q "^<" "$T/check.out" || fail "--check output carries priority prefixes"
[ ! -e "$T/data" ] || fail "daemon created its data folder despite a bad config"

# mqtt:// is accepted only with allow_plaintext = true
write_agent_conf "$T/plain.conf" 1883 1502 "allow_plaintext = true"
sed -i 's|^uri = mqtts://|uri = mqtt://|' "$T/plain.conf"
"$PDM_AGENT" --check -c "$T/plain.conf" | grep -qx "configuration OK" || fail "allow_plaintext not honoured"
echo "PASS"
