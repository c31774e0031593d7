#!/usr/bin/env bash
# Benchmark: deliver an hour of backlog (20 sensors at 10 Hz = 720,000 readings) stored in the
# agent's SQLite buffer to a local mosquitto over mutual TLS (QoS 1), and report how long it
# takes from the connection to the last PUBACK (the agent's "backlog delivered" log line).
#
#   bench/backlog.sh [ROWS]          (default 720000; needs a build in ./build)
#
# Prints the agent's own figure and the machine. Not a test.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
rows=${1:-720000}
bin=$root/build
[ -x "$bin/pdm-agent" ] || { echo "build first: cmake -S . -B build && cmake --build build" >&2; exit 1; }
[ -x /usr/bin/time ] || DEBIAN_FRONTEND=noninteractive apt-get install -y -q time >/dev/null || {
    echo "bench/backlog.sh needs /usr/bin/time (Debian package 'time')" >&2
    exit 1
}
W=$(mktemp -d /tmp/pdm-bench-backlog.XXXXXX)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$W"' EXIT
port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
mqtt_port=$(port)
dead_port=$(port) # nothing listens: the sensors fail, only the backlog travels

scripts/pki.sh "$W/tls" gw-bench >/dev/null
mkdir -p "$W/models"
cp examples/models/compressor.model "$W/models/"
{
    printf '[agent]\ndevice_id = gw-bench\ndata_dir = data\nbuffer_max_mb = 256\n\n'
    printf '[mqtt]\nuri = mqtts://127.0.0.1:%s\nca_file = tls/ca.pem\ncert_file = tls/device.pem\nkey_file = tls/device.key\n\n' "$mqtt_port"
    printf '[bus plant]\ndriver = modbus-tcp\nhost = 127.0.0.1\nport = %s\ntimeout_ms = 100\n\n' "$dead_port"
    for i in $(seq 1 20); do
        printf '[sensor s%02d]\nbus = plant\naddress = %d\ntype = float32\nperiod_ms = 100\n\n' "$i" $((i * 2))
    done
    printf '[asset compressor-1]\nmodel = models/compressor.model\ntemperature = s01\nvibration = s02\npower = s03\ninstalled = 2019-06-01\n'
} >"$W/agent.conf"

# 1. let the agent create its database and register the sensor names, with no broker
"$bin/pdm-agent" -c "$W/agent.conf" >"$W/agent0.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [ -f "$W/data/pdm-agent.db" ] && break; sleep 0.1; done
sleep 1
kill "${pids[0]}"; wait "${pids[0]}" 2>/dev/null || true
pids=()

# 2. an hour of readings, undelivered, 100 ms apart per sensor, continuing the agent's seq
sqlite3 "$W/data/pdm-agent.db" <<SQL
WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < $rows)
INSERT INTO rows(seq, kind, ref, ts_ms, value, delivered)
SELECT (SELECT coalesce(max(value), 0) FROM meta WHERE key = 'seq_hw') + i, 0,
       (SELECT id FROM names WHERE kind = 0 AND name = printf('s%02d', 1 + i % 20)),
       CAST(strftime('%s', 'now') AS INTEGER) * 1000 - 3600000 + (i / 20) * 100,
       20.0 + (i % 1000) / 100.0, 0
FROM c;
INSERT OR REPLACE INTO meta(key, value) VALUES ('seq_hw', (SELECT max(seq) FROM rows));
SQL
echo "backlog: $(sqlite3 "$W/data/pdm-agent.db" 'SELECT count(*) FROM rows WHERE delivered = 0') undelivered rows, $(du -h "$W/data/pdm-agent.db" | cut -f1) on disk"

# 3. broker up, agent up: time to the last acknowledgement
cat >"$W/mosquitto.conf" <<CONF
user root
allow_anonymous false
persistence false
log_dest none
listener $mqtt_port 127.0.0.1
cafile $W/tls/ca.pem
certfile $W/tls/server.pem
keyfile $W/tls/server.key
require_certificate true
use_identity_as_username true
CONF
"$(command -v mosquitto || echo /usr/sbin/mosquitto)" -c "$W/mosquitto.conf" >/dev/null 2>&1 &
pids+=($!)
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$mqtt_port") 2>/dev/null && break; sleep 0.1; done
/usr/bin/time -f "agent: %e s wall, %U s user, %S s sys, max RSS %M KB" \
    "$bin/pdm-agent" -c "$W/agent.conf" >"$W/agent.log" 2>&1 &
pids+=($!)
for _ in $(seq 3000); do grep -q 'backlog delivered' "$W/agent.log" && break; sleep 0.1; done
grep -E 'backlog' "$W/agent.log" | sed 's/^<[0-9]>//'
grep -q 'backlog delivered' "$W/agent.log" || { echo "backlog not delivered within 300 s" >&2; exit 1; }
pkill -TERM -P "${pids[1]}"; wait "${pids[1]}" 2>/dev/null || true
tail -n 1 "$W/agent.log"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(uname -m)"
