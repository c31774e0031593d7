#!/usr/bin/env bash
# The closed service loop on real components: pdm-sim -> pdm-agent -> mosquitto (client
# certificates) <- pdmctl publish / subscribe as the backend; commands are encoded by hand
# (mkcmd.py), as a backend without pdm-agent's code would.
#  1. usage counters: both assets run (power above running_above): one start each, run hours
#     grow; MAINTENANCE_DUE on a small start limit (compressor-1) and hour limit (compressor-2),
#     each saying which limit with the counters; pdmctl status and Status show them
#  2. cmd/status publishes a fresh Status with the counters (also on the fleet topic, where
#     cmd/ack is refused NOT_ON_FLEET_TOPIC); cmd/report publishes a
#     CheckupReport on .../report; unknown asset and garbage are refused with their reasons
#  3. reminders: an unacknowledged MAINTENANCE_DUE comes again as UPDATED (reminder) every
#     renotify_h; cmd/ack stops them (ok, again ok "already", unknown id, empty id refused)
#  4. cmd/service clears MAINTENANCE_DUE, resets the counters since service, and after
#     confirm_after_h publishes SERVICE_OUTCOME FIX_CONFIRMED (healthy readings); ack of the
#     cleared alert -> ALERT_NOT_ACTIVE; unknown/empty asset refused
#  5. kill -9: run hours and starts survive within one commit interval, no start is counted for
#     the restart, the open MAINTENANCE_DUE is resumed
#  6. failing readings: a visit whose outcome is pending survives a kill -9 and ends in
#     SERVICE_OUTCOME FAULT_PERSISTS; a cmd/service published retained is done once (live) and
#     refused RETAINED_REFUSED when the broker hands it over again after the restart: no second
#     visit is recorded
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/agent_env.sh"
it_setup service_loop
pki_make gw-test
MQTT_PORT=$(free_port)
SIM_PORT=$(free_port)
broker_start "$MQTT_PORT"
MKCMD=(python3 "$PDM_SOURCE_DIR/tests/integration/mkcmd.py")
BACKEND=(--uri "mqtts://127.0.0.1:$MQTT_PORT" --ca "$T/tls/ca.pem" --cert "$T/tls/sub.pem" --key "$T/tls/sub.key")
DEV_TOPIC=pdm/v1/gw-test/cmd

TELEMETRY_S=1 write_agent_conf "$T/agent.conf" "$MQTT_PORT" "$SIM_PORT"
# renotify every 6 s, outcomes 12 s after a visit; commits every 500 ms
sed -i 's#^data_dir = data#data_dir = data\ncommit_interval_ms = 500\nrenotify_h = 0.0016667\nconfirm_after_h = 0.0033333#' "$T/agent.conf"
cat >>"$T/agent.conf" <<CONF
running_sensor = comp_power
running_above = 500
running_hysteresis = 50
running_debounce_s = 1
service_every_starts = 1

[asset compressor-2]
model = models/compressor.model
temperature = comp_temp
vibration = comp_vib
power = comp_power
running_sensor = comp_power
running_above = 500
running_debounce_s = 0
age_from = run_hours
service_every_hours = 0.0015
CONF
"$PDM_AGENT" -c "$T/agent.conf" --check >"$T/check.log" 2>&1 || fail "config rejected: $(cat "$T/check.log")"

subscribe sub
start_bg sim "$PDM_SIM" --port "$SIM_PORT" --scenario healthy --seed 7 --quiet
SIM_PID=$LAST_PID
wait_for 10 port_open "$SIM_PORT" || fail "pdm-sim did not listen"
N=0
start_agent() {
    N=$((N + 1))
    start_bg "agent$N" "$PDM_AGENT" -c "$T/agent.conf"
    AGENT_PID=$LAST_PID
    wait_for 20 file_has "$T/agent$N.log" "commands: subscribed to pdm/v1/gw-test/cmd/#" ||
        fail "agent did not subscribe to its command topics"
}
status_json() { "$PDMCTL" status --socket "$T/data/pdm-agent.sock" --json; }
usage_field() { # ASSET-INDEX FIELD
    status_json | python3 -c "import json,sys; print(json.load(sys.stdin)['assets'][$1]['usage']['$2'])"
}
alerts() { # KIND ASSET STATE: alert lines
    grep '"type":"alert"' "$T/sub.log" | grep "\"kind\":\"$1\"" | grep "\"asset\":\"$2\"" |
        grep "\"state\":\"$3\"" || true
}
has_alert() { [ -n "$(alerts "$@")" ]; }
# send EXPECTED_EXIT NAME COMMAND FIELD=VALUE...: encodes and sends a command, waits for the
# answer (in $T/NAME.out)
send() {
    local want=$1 name=$2 cmd=$3
    shift 3
    "${MKCMD[@]}" "$T/$name.bin" 1="req-$name" "$@"
    local rc=0
    "$PDMCTL" publish "${BACKEND[@]}" --topic "$DEV_TOPIC/$cmd" --file "$T/$name.bin" --wait 15 \
        >"$T/$name.out" 2>"$T/$name.err" || rc=$?
    cat "$T/$name.out"
    [ "$rc" = "$want" ] || fail "$name: pdmctl publish exited $rc, expected $want ($(cat "$T/$name.err"))"
    grep -q "request=req-$name " "$T/$name.out" || fail "$name: answer without its request_id"
}
expect() { # NAME OK|REFUSED REASON TEXT-PATTERN
    grep -q "$2 $3 " "$T/$1.out" || fail "$1: not $2 $3: $(cat "$T/$1.out")"
    grep -q -- "$4" "$T/$1.out" || fail "$1: text lacks '$4': $(cat "$T/$1.out")"
}

start_agent

echo "== 1. counters and MAINTENANCE_DUE"
wait_for 20 has_alert MAINTENANCE_DUE compressor-1 RAISED || fail "no MAINTENANCE_DUE on the start limit"
line=$(alerts MAINTENANCE_DUE compressor-1 RAISED | sed -n 1p)
echo "$line"
[[ "$(json_field "$line" reason)" == "1 starts since service >= service_every_starts 1; counters: "* ]] ||
    fail "reason does not say the start limit: $line"
[ "$(json_field "$line" severity)" = WARNING ] || fail "not WARNING: $line"
M1=$(json_field "$line" alert_id)
[[ "$M1" == compressor-1-maint-* ]] || fail "alert_id $M1"
echo "$line" | grep -q '"usage":{"asset":"compressor-1",[^}]*"starts":1,' || fail "no counters in the alert: $line"
# 0.0015 h = 5.4 s of running
wait_for 20 has_alert MAINTENANCE_DUE compressor-2 RAISED || fail "no MAINTENANCE_DUE on the hour limit"
line=$(alerts MAINTENANCE_DUE compressor-2 RAISED | sed -n 1p)
echo "$line"
[[ "$(json_field "$line" reason)" == *" run hours since service >= service_every_hours 0.0015; counters: "* ]] ||
    fail "reason does not say the hour limit: $line"
M2=$(json_field "$line" alert_id)
grep -q "asset compressor-1: alert $M1 RAISED MAINTENANCE_DUE: 1 starts since service" "$T/agent1.log" ||
    fail "no log line for $M1"
# raised once: no second RAISED while it is open, checked once its first reminder has come
# (renotify_h later: the check ran every second meanwhile)
reminders() { alerts MAINTENANCE_DUE "$1" UPDATED | grep -c '"reminder":true' || true; }
at_least() { [ "$("$@" | tail -1)" -ge "$N_MIN" ]; } # N_MIN=n at_least COMMAND...: output >= n
N_MIN=1 wait_for 15 at_least reminders compressor-1 || fail "no reminder for $M1 after renotify_h"
[ "$(alerts MAINTENANCE_DUE compressor-1 RAISED | wc -l)" = 1 ] || fail "MAINTENANCE_DUE raised twice"
[ "$(usage_field 0 starts)" = 1 ] || fail "compressor-1: starts $(usage_field 0 starts), expected 1"
[ "$(usage_field 0 running)" = True ] || fail "compressor-1 not running"
"$PDMCTL" status --socket "$T/data/pdm-agent.sock" >"$T/status.txt"
grep -q "usage: running, [0-9.e-]* run hours, 1 starts" "$T/status.txt" || fail "pdmctl status: no usage line: $(cat "$T/status.txt")"
grep -q "maintenance due: alert_id $M1: 1 starts since service" "$T/status.txt" || fail "pdmctl status: no maintenance line"

echo "== 2. status and report"
send 0 status1 status
expect status1 OK COMMAND_OK "Status published on pdm/v1/gw-test/status"
has_status() { grep '"type":"status"' "$T/sub.log" | grep -q "\"maintenance_alert_id\":\"$M1\""; }
wait_for 10 has_status || fail "no Status with the usage counters"
send 0 report1 report
expect report1 OK COMMAND_OK "check-up report of 2 assets (.* bytes) published on pdm/v1/gw-test/report"
has_report() { grep '"type":"report"' "$T/sub.log" | grep -q '"request_id":"req-report1"'; }
wait_for 10 has_report || fail "no CheckupReport on .../report"
rep=$(grep '"type":"report"' "$T/sub.log" | grep '"request_id":"req-report1"')
echo "$rep" | python3 -c "
import json, sys
r = json.load(sys.stdin)
a = {x['asset']: x for x in r['assets']}
c1 = a['compressor-1']
assert c1['model_id'] == 'compressor', c1
assert c1['usage']['starts'] == 1, c1['usage']
assert any(o['alert_id'] == '$M1' and o['kind'] == 'MAINTENANCE_DUE' for o in c1['open_alerts']), c1
assert any(h['alert_id'] == '$M1' for h in c1['recent_alerts']), c1
assert len(r['sensors']) == 3, r['sensors']
" || fail "report content: $rep"
send 0 report2 report 2=compressor-2 3=u:2
wait_for 10 grep -q '"request_id":"req-report2"' "$T/sub.log" || fail "no report for compressor-2"
grep '"request_id":"req-report2"' "$T/sub.log" | grep -q '"asset":"compressor-1"' &&
    fail "report for compressor-2 lists compressor-1"
send 1 report3 report 2=nosuch
expect report3 REFUSED UNKNOWN_ASSET "no asset nosuch on this device"
# the fleet topic: status is answered, ack is for one device only
"${MKCMD[@]}" "$T/fleet.bin" 1=req-fleet 2=x
"$PDMCTL" publish "${BACKEND[@]}" --topic pdm/v1/fleet/cmd/status --file "$T/fleet.bin" --wait 4 >"$T/fleet1.out" 2>&1 || true
grep -q "status  request=req-fleet (fleet)  OK COMMAND_OK" "$T/fleet1.out" || fail "fleet status: $(cat "$T/fleet1.out")"
"$PDMCTL" publish "${BACKEND[@]}" --topic pdm/v1/fleet/cmd/ack --file "$T/fleet.bin" --wait 4 >"$T/fleet2.out" 2>&1 || true
grep -q "ack  request=req-fleet (fleet)  REFUSED NOT_ON_FLEET_TOPIC" "$T/fleet2.out" || fail "fleet ack: $(cat "$T/fleet2.out")"
"$PDMCTL" publish "${BACKEND[@]}" --topic "$DEV_TOPIC/ack" --message 'not protobuf at all' --wait 15 >"$T/garbage.out" 2>&1 && fail "garbage acked"
grep -q "REFUSED BAD_PAYLOAD .*not a pdm.v1.AckAlert" "$T/garbage.out" || fail "garbage: $(cat "$T/garbage.out")"

echo "== 3. reminders and cmd/ack"
N_MIN=1 wait_for 15 at_least reminders compressor-1 || fail "no reminder for $M1 after renotify_h"
send 0 ack1 ack 2="$M1" 3=alice
expect ack1 OK COMMAND_OK "alert $M1 acknowledged by alice: no more reminders"
send 0 ack2 ack 2="$M1"
expect ack2 OK COMMAND_OK "alert $M1 was already acknowledged"
send 1 ack3 ack 2=compressor-1-maint-999999
expect ack3 REFUSED UNKNOWN_ALERT "no alert compressor-1-maint-999999 on this device"
send 1 ack4 ack 3=bob
expect ack4 REFUSED MISSING_FIELD "alert_id is empty"
before=$(reminders compressor-1)
before2=$(reminders compressor-2)
# two more renotify periods: compressor-2 (not acknowledged) gets reminders, compressor-1 none
N_MIN=$((before2 + 2)) wait_for 20 at_least reminders compressor-2 || fail "compressor-2: reminders stopped"
[ "$(reminders compressor-1)" = "$before" ] || fail "a reminder for $M1 after it was acknowledged"

echo "== 4. cmd/service and FIX_CONFIRMED"
send 0 svc1 service 2=compressor-2 3=carol 4="replaced filter" 5=WO-17
expect svc1 OK COMMAND_OK "service visit [0-9]* recorded for compressor-2 by carol; maintenance counters reset; MAINTENANCE_DUE $M2 cleared"
wait_for 10 has_alert MAINTENANCE_DUE compressor-2 CLEARED || fail "MAINTENANCE_DUE not cleared by the visit"
[ "$(usage_field 1 starts_since_service)" = 0 ] || fail "starts since service not reset"
[ -n "$(usage_field 1 outcome_due_ms | grep -v '^0$')" ] || fail "no outcome pending"
send 1 ack5 ack 2="$M2"
expect ack5 REFUSED ALERT_NOT_ACTIVE "alert $M2 is no longer open (cleared)"
send 1 svc2 service 2=nosuch
expect svc2 REFUSED UNKNOWN_ASSET "no asset nosuch"
send 1 svc3 service 3=carol
expect svc3 REFUSED MISSING_FIELD "asset is empty"
wait_for 30 has_alert SERVICE_OUTCOME compressor-2 CLEARED || fail "no SERVICE_OUTCOME 12 s after the visit"
line=$(alerts SERVICE_OUTCOME compressor-2 CLEARED | sed -n 1p)
echo "$line"
[ "$(json_field "$line" outcome)" = FIX_CONFIRMED ] || fail "healthy readings, yet: $line"
[[ "$(json_field "$line" reason)" == "fix confirmed: highest fault probability "* ]] || fail "reason: $line"
sqlite3 "$T/data/pdm-agent.db" "SELECT technician, note, visit_ref, outcome FROM services WHERE asset = 'compressor-2'" >"$T/visits.txt" 2>/dev/null ||
    python3 -c "import sqlite3; [print('|'.join(map(str, r))) for r in sqlite3.connect('$T/data/pdm-agent.db').execute(\"SELECT technician, note, visit_ref, outcome FROM services WHERE asset = 'compressor-2'\")]" >"$T/visits.txt"
grep -q "^carol|replaced filter|WO-17|1$" "$T/visits.txt" || fail "visit not stored: $(cat "$T/visits.txt")"
# the hour limit counts again from the visit: due again 5.4 s of running later, a new episode
raised2() { alerts MAINTENANCE_DUE compressor-2 RAISED | wc -l; }
N_MIN=2 wait_for 20 at_least raised2 || fail "not due again after the visit"

echo "== 5. kill -9"
# running on: more than one commit interval (0.5 s) of run time since this point
hs=$(usage_field 0 run_hours)
ran_on() { python3 -c "import sys; sys.exit(0 if $(usage_field 0 run_hours) > $hs + 0.6/3600 else 1)"; }
wait_for 10 ran_on || fail "compressor-1 run hours do not grow"
h0=$(usage_field 0 run_hours)
s0=$(usage_field 0 starts)
kill -9 "$AGENT_PID"
wait "$AGENT_PID" 2>/dev/null || true
start_agent
wait_for 10 file_has "$T/agent$N.log" "alert $M1 (MAINTENANCE_DUE) is still open from before the restart" ||
    fail "the open MAINTENANCE_DUE was not resumed"
h1=$(usage_field 0 run_hours)
s1=$(usage_field 0 starts)
echo "run hours before kill $h0, after restart $h1; starts $s0 -> $s1"
# at most one commit interval (0.5 s) lost, plus the status poll's own lag
python3 -c "import sys; sys.exit(0 if $h1 >= $h0 - 0.6/3600 else 1)" || fail "run hours lost: $h0 -> $h1"
[ "$s1" = "$s0" ] || fail "the restart counted a start: $s0 -> $s1"
[ "$(alerts MAINTENANCE_DUE compressor-1 RAISED | wc -l)" = 1 ] || fail "MAINTENANCE_DUE raised again after the restart"
# still acknowledged after the restart: no reminder for it while compressor-2 (open, not
# acknowledged) gets two, one renotify period apart
before=$(reminders compressor-1)
before2=$(reminders compressor-2)
N_MIN=$((before2 + 2)) wait_for 30 at_least reminders compressor-2 ||
    fail "compressor-2: no reminders after the restart"
[ "$(reminders compressor-1)" = "$before" ] || fail "the acknowledgement did not survive the restart"

echo "== 6. FAULT_PERSISTS across a kill -9, a retained cmd/service done only once"
kill -USR1 "$SIM_PID"
wait_for 40 has_alert FAULT_RISK compressor-1 RAISED || fail "no fault-risk alert on failing readings"
send 0 svc4 service 2=compressor-1 3=dave
expect svc4 OK COMMAND_OK "MAINTENANCE_DUE $M1 cleared"
# published retained while the agent is subscribed: delivered live (not flagged retained), done
"${MKCMD[@]}" "$T/svcret.bin" 1=req-svcret 2=compressor-2 3=erin 5=WO-RET
"$PDMCTL" publish "${BACKEND[@]}" --topic "$DEV_TOPIC/service" --file "$T/svcret.bin" --retain \
    --wait 15 >"$T/svcret.out" 2>&1 || fail "retained service: $(cat "$T/svcret.out")"
grep -q "request=req-svcret  OK COMMAND_OK  service visit" "$T/svcret.out" ||
    fail "retained service not done live: $(cat "$T/svcret.out")"
visits_ret() {
    python3 -c "import sqlite3; print(sqlite3.connect('file:$T/data/pdm-agent.db?mode=ro', uri=True).execute(\"SELECT count(*) FROM services WHERE visit_ref = 'WO-RET'\").fetchone()[0])"
}
[ "$(visits_ret)" = 1 ] || fail "retained service: $(visits_ret) visits stored, expected 1"
kill -9 "$AGENT_PID"
wait "$AGENT_PID" 2>/dev/null || true
start_agent
# the broker hands the retained command over again at the reconnect: refused, not a new visit
refused_ret() {
    grep '"request_id":"req-svcret"' "$T/sub.log" | grep -q '"reason":"RETAINED_REFUSED"'
}
wait_for 15 refused_ret || fail "the retained cmd/service was not refused after the restart"
grep -q "command service, request req-svcret: refused, RETAINED_REFUSED: 'service' is not done again from a retained message" \
    "$T/agent$N.log" || fail "no log line for the refused retained cmd/service"
[ "$(visits_ret)" = 1 ] || fail "the retained cmd/service recorded a visit again after the restart"
"$PDMCTL" publish "${BACKEND[@]}" --topic "$DEV_TOPIC/service" --message '' --retain 2>/dev/null ||
    fail "could not clear the retained cmd/service"
grep -q "a service outcome is pending" "$T/agent$N.log" || fail "the pending outcome was not resumed"
wait_for 40 has_alert SERVICE_OUTCOME compressor-1 CLEARED || fail "no SERVICE_OUTCOME after the restart"
line=$(alerts SERVICE_OUTCOME compressor-1 CLEARED | sed -n 1p)
echo "$line"
[ "$(json_field "$line" outcome)" = FAULT_PERSISTS ] || fail "failing readings, yet: $line"
[ "$(json_field "$line" severity)" = WARNING ] || fail "FAULT_PERSISTS not WARNING: $line"
echo "PASS"
