#!/usr/bin/env bash
# The end-to-end demo, about a minute, ends by itself:
#   a local mosquitto requiring client certificates (throwaway CA made here), pdm-sim serving a
#   compressor over Modbus TCP that runs healthy and then degrades, pdm-agent sampling it, and a
#   backend-side subscriber printing every message decoded: telemetry as it flows, then the alert
#   RAISED as WARNING and UPDATED to CRITICAL, with probability and the inputs that drove it.
# Everything runs on 127.0.0.1 in ./demo-run (kept afterwards for a look: logs, config, the
# agent's SQLite store).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
scripts/deps.sh
echo "== building"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" 2>&1 | grep -E "error|warning|Built target pdm" || true
bin=$root/build

run=$root/demo-run
rm -rf "$run"
mkdir -p "$run/data" "$run/models"
pids=()
cleanup() {
    for p in "${pids[@]}"; do
        kill "$p" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$p" 2>/dev/null || true
    done
    wait 2>/dev/null || true
}
trap cleanup EXIT

port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])' 2>/dev/null || echo $((20000 + RANDOM % 20000)); }
mqtt_port=$(port)
modbus_port=$(port)
while [ "$modbus_port" = "$mqtt_port" ]; do modbus_port=$(port); done

echo "== throwaway CA and certificates in $run/tls"
scripts/pki.sh "$run/tls" gw-demo

cat >"$run/mosquitto.conf" <<CONF
user root
allow_anonymous false
persistence false
log_dest file $run/mosquitto.log
listener $mqtt_port 127.0.0.1
cafile $run/tls/ca.pem
certfile $run/tls/server.pem
keyfile $run/tls/server.key
require_certificate true
use_identity_as_username true
CONF
cp examples/models/compressor.model "$run/models/"
cat >"$run/agent.conf" <<CONF
; made by scripts/demo.sh: the example configuration with the demo's ports
[agent]
device_id = gw-demo
data_dir = data
log_level = info

[mqtt]
uri = mqtts://127.0.0.1:$mqtt_port
ca_file = tls/ca.pem
cert_file = tls/device.pem
key_file = tls/device.key
topic_prefix = pdm/v1
telemetry_interval_s = 5

[bus plant]
driver = modbus-tcp
host = 127.0.0.1
port = $modbus_port
timeout_ms = 500

[sensor comp_temp]
bus = plant
unit_id = 1
table = holding
address = 0
type = float32
word_order = big
period_ms = 500
unit = degC

[sensor comp_vib]
bus = plant
address = 2
type = float32
period_ms = 500
unit = mm/s

[sensor comp_power]
bus = plant
address = 4
type = float32
period_ms = 500
unit = W

[asset compressor-1]
model = models/compressor.model
temperature = comp_temp
vibration = comp_vib
power = comp_power
installed = 2019-06-01
CONF

echo "== checking the configuration"
"$bin/pdm-agent" --check -c "$run/agent.conf"

mosq=$(command -v mosquitto || echo /usr/sbin/mosquitto)
"$mosq" -c "$run/mosquitto.conf" >>"$run/mosquitto.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$mqtt_port") 2>/dev/null && break; sleep 0.1; done
echo "== broker: mosquitto on 127.0.0.1:$mqtt_port (TLS, client certificates required)"

"$bin/pdmctl" subscribe --uri "mqtts://127.0.0.1:$mqtt_port" --ca "$run/tls/ca.pem" \
    --cert "$run/tls/sub.pem" --key "$run/tls/sub.key" --topic 'pdm/v1/gw-demo/#' \
    --client-id demo-backend >"$run/backend.out" 2>&1 &
sub_pid=$!
pids+=($sub_pid)

"$bin/pdm-sim" --port "$modbus_port" --healthy-s 12 --degrade-s 20 --seed 7 >"$run/sim.log" 2>&1 &
sim_pid=$!
pids+=($sim_pid)
# the displays below end by themselves when the process they follow exits
tail -n +1 -f --pid=$sim_pid "$run/sim.log" | sed -u 's/^/[sim]     /' &
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$modbus_port") 2>/dev/null && break; sleep 0.1; done
echo "== simulator: compressor on Modbus TCP 127.0.0.1:$modbus_port: healthy 12 s, then degrading"

"$bin/pdm-agent" -c "$run/agent.conf" >"$run/agent.log" 2>&1 &
agent_pid=$!
pids=($agent_pid "${pids[@]}") # stopped first, so it says goodbye to the broker
tail -n +1 -f --pid=$agent_pid "$run/agent.log" | sed -u 's/^<[0-9]>/[agent]   /' &
echo "== agent started; the backend subscriber's decoded messages follow as [backend]"
tail -n +1 -f --pid=$sub_pid "$run/backend.out" | sed -u 's/^/[backend] /' &

deadline=$((SECONDS + 80))
while [ $SECONDS -lt $deadline ]; do
    if grep -q "CRITICAL" "$run/backend.out" 2>/dev/null; then
        sleep 3 # one more telemetry batch, then stop
        break
    fi
    sleep 0.5
done

echo
if grep -q "RAISED.*WARNING" "$run/backend.out" && grep -q "CRITICAL" "$run/backend.out"; then
    echo "== demo complete: the backend received the alert RAISED as WARNING, then CRITICAL:"
    grep "^ALERT" "$run/backend.out" || true
    echo "== files: $run (agent.log, backend.out, data/pdm-agent.db)"
    exit 0
fi
echo "== demo FAILED: no CRITICAL alert reached the backend within 80 s; see $run/*.log" >&2
exit 1
