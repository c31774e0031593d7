#!/usr/bin/env bash
# The agent refuses a broker whose certificate is not signed by ca_file, says why, and keeps its
# data: nothing is marked delivered, and it goes on sampling into the store.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/agent_env.sh"
it_setup agent_tls
pki_make gw-test
MQTT_PORT=$(free_port)
SIM_PORT=$(free_port)
broker_start "$MQTT_PORT" rogue
write_agent_conf "$T/agent.conf" "$MQTT_PORT" "$SIM_PORT"
start_bg sim "$PDM_SIM" --port "$SIM_PORT" --scenario healthy --quiet
wait_for 10 port_open "$SIM_PORT" || fail "pdm-sim did not listen"
start_bg agent "$PDM_AGENT" -c "$T/agent.conf"
wait_for 20 file_has "$T/agent.log" 'cannot connect' || fail "agent did not report the refused broker"
grep 'cannot connect' "$T/agent.log" | sed -n 1p
grep -i 'cannot connect' "$T/agent.log" | grep -Eqi 'certificate|verify|handshake' ||
    fail "the reason does not mention the certificate"
wait_for 20 sh -c "[ \$(sqlite3 '$T/data/pdm-agent.db' 'SELECT count(*) FROM rows' 2>/dev/null || echo 0) -gt 10 ]" ||
    fail "agent stopped storing readings while the broker was refused"
delivered=$(sqlite3 "$T/data/pdm-agent.db" 'SELECT count(*) FROM rows WHERE delivered = 1')
[ "$delivered" = 0 ] || fail "$delivered rows marked delivered to a rogue broker"
grep -q 'RAISED\|UPDATED' "$T/agent.log" && fail "healthy scenario raised an alert"
echo "PASS"
