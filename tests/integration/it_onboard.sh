#!/usr/bin/env bash
# On-board Linux sensors end to end: a fake sysfs tree (hwmon, a thermal zone, an IIO
# accelerometer whose /dev node is a FIFO fed by this test) next to a Modbus bus (pdm-sim) ->
# pdm-agent -> mosquitto (mutual TLS) -> a subscriber. Checks:
#  - the hwmon and thermal temperatures arrive in telemetry with their values, and a changed
#    file shows up as the new value;
#  - the vibration features of a known signal arrive (x: a 100 Hz sine of 2 m/s^2 sampled at
#    3200 Hz, so rms = the quantised sine's RMS, kurtosis 1.5; z: gravity only, rms ~ 0);
#  - a sensor whose file is missing is reported failed (pdmctl status, log) and nothing else
#    stops: the agent keeps running and stops cleanly;
#  - an asset scores with a sysfs temperature as its temperature input.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/agent_env.sh"
it_setup onboard
pki_make gw-test
MQTT_PORT=$(free_port)
SIM_PORT=$(free_port)
broker_start "$MQTT_PORT"

# ---- the fake tree ---------------------------------------------------------------------------
F="$T/fake"
put() { # REL CONTENT
    mkdir -p "$(dirname "$F/$1")"
    printf '%s\n' "$2" >"$F/$1"
}
put sys/class/hwmon/hwmon0/name acpitz
put sys/class/hwmon/hwmon0/temp1_input 27800
put sys/class/hwmon/hwmon3/name coretemp
put sys/class/hwmon/hwmon3/temp1_label "Package id 0"
put sys/class/hwmon/hwmon3/temp1_input 41500
put sys/class/hwmon/hwmon3/temp2_label "Core 0"
put sys/class/hwmon/hwmon3/temp2_input 40000
put sys/class/thermal/thermal_zone0/type cpu-thermal
put sys/class/thermal/thermal_zone0/temp 52125
D=sys/bus/iio/devices/iio:device0
put $D/name adxl345
put $D/in_accel_scale 0.038300
put $D/sampling_frequency 100
put $D/buffer/enable 0
put $D/buffer/length 0
for a in x y z; do
    put $D/in_accel_${a}_raw 0
    put $D/scan_elements/in_accel_${a}_en 0
    put $D/scan_elements/in_accel_${a}_type le:s16/16\>\>0
done
put $D/scan_elements/in_accel_x_index 0
put $D/scan_elements/in_accel_y_index 1
put $D/scan_elements/in_accel_z_index 2
mkdir -p "$F/dev"
mkfifo "$F/dev/iio:device0"

# The kernel's side of the buffer: x, y, z as le:s16 scans (the config has a sensor on each
# axis, so the agent enables all three), 320 scans every 100 ms: 3200 Hz in real time.
cat >"$T/feed.py" <<'PY'
import math, struct, sys, time
SCALE, AMP, RATE, TONE = 0.0383, 2.0, 3200, 100
raw_x = [round(AMP * math.sin(2 * math.pi * TONE * i / RATE) / SCALE) for i in range(32)]
if sys.argv[1] == "rms":  # the RMS of the quantised sine, as the agent must compute it
    print("%.9f" % math.sqrt(sum((r * SCALE) ** 2 for r in raw_x) / 32))
    sys.exit(0)
g = round(9.80665 / SCALE)
burst = b"".join(struct.pack("<hhh", raw_x[i % 32], 0, g) for i in range(320))
with open(sys.argv[1], "wb", buffering=0) as f:
    while True:
        f.write(burst)  # 1920 bytes: under PIPE_BUF, so written whole
        time.sleep(0.1)
PY
start_bg feed python3 "$T/feed.py" "$F/dev/iio:device0"
FEED_PID=$LAST_PID
WANT_RMS=$(python3 "$T/feed.py" rms)

# ---- the agent's configuration ----------------------------------------------------------------
write_agent_conf "$T/agent.conf" "$MQTT_PORT" "$SIM_PORT"
# replace the Modbus temperature and vibration by on-board ones for the asset; keep comp_power
python3 - "$T/agent.conf" <<'PY'
import sys
p = sys.argv[1]
s = open(p).read()
s = s.replace("temperature = comp_temp", "temperature = board_temp")
s = s.replace("vibration = comp_vib", "vibration = vib_x_rms")
open(p, "w").write(s)
PY
cat >>"$T/agent.conf" <<CONF

[bus board]
driver = sysfs
root = fake

[bus accel]
driver = iio
root = fake
name = adxl345
rate_hz = 3200
window = 1024
timeout_ms = 300

[sensor board_temp]
bus = board
hwmon = coretemp
label = Package id 0
period_ms = 200

[sensor soc_temp]
bus = board
thermal_zone = cpu-thermal
period_ms = 200

[sensor ghost]
bus = board
path = /sys/class/hwmon/hwmon9/temp1_input
period_ms = 200

[sensor vib_x_rms]
bus = accel
axis = x
feature = rms

[sensor vib_x_kurt]
bus = accel
axis = x
feature = kurtosis

[sensor vib_y_peak]
bus = accel
axis = y
feature = peak

[sensor vib_z_rms]
bus = accel
axis = z
feature = rms
CONF
"$PDM_AGENT" -c "$T/agent.conf" --check >"$T/check.log" 2>&1 || fail "--check refused the config: $(cat "$T/check.log")"

subscribe sub
start_bg sim "$PDM_SIM" --port "$SIM_PORT" --seed 1 --quiet
wait_for 10 port_open "$SIM_PORT" || fail "pdm-sim did not listen"
# pdmctl check reads the sysfs sensors once: good ones show their value, the missing file
# is an error that makes the site not ready; IIO features are left to the running agent
rc=0
"$PDMCTL" check -c "$T/agent.conf" >"$T/pdmctl-check.log" 2>&1 || rc=$?
grep -E '^(board_temp|soc_temp|ghost|vib_x_rms) ' "$T/pdmctl-check.log"
[ $rc -eq 1 ] || fail "pdmctl check with a missing sysfs file exited $rc, expected 1"
grep -Eq '^board_temp +board +- +41\.5 .* ok$' "$T/pdmctl-check.log" || fail "check: board_temp not read as 41.5"
grep -Eq '^ghost +board .*ERROR: .*hwmon9' "$T/pdmctl-check.log" || fail "check: ghost's missing file not named"
grep -Eq '^vib_x_rms .*not read here' "$T/pdmctl-check.log" || fail "check: IIO sensor not listed"

start_bg agent "$PDM_AGENT" -c "$T/agent.conf"
AGENT_PID=$LAST_PID

# values SENSOR: every value of SENSOR received so far, one a line
values() {
    python3 - "$T/sub.log" "$1" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("type") != "telemetry":
        continue
    for s in (m.get("message") or m).get("series", []):
        if s.get("sensor") == sys.argv[2]:
            for v in s.get("value", []):
                print(v)
PY
}
has_value() { # SENSOR VALUE TOLERANCE
    values "$1" | awk -v w="$2" -v t="$3" '{ d = $1 - w; if (d < 0) d = -d; if (d <= t) f = 1 }
        END { exit !f }'
}

wait_for 30 has_value board_temp 41.5 1e-9 || fail "board_temp 41.5 never arrived: $(values board_temp | tail -3)"
wait_for 10 has_value soc_temp 52.125 1e-9 || fail "soc_temp 52.125 never arrived"
grep '"sensor":"board_temp"' "$T/sub.log" | grep -q '"unit":"degC"' || fail "board_temp has no unit degC"

# the file changes: the new value follows (written in place, as the kernel does)
printf '47250\n' >"$F/sys/class/hwmon/hwmon3/temp1_input"
wait_for 20 has_value board_temp 47.25 1e-9 || fail "board_temp did not follow the file to 47.25"

# vibration: within 1e-6 of the quantised sine's RMS, and within 1 LSB of A/sqrt(2)
wait_for 20 has_value vib_x_rms "$WANT_RMS" 1e-6 || fail "vib_x_rms never near $WANT_RMS: $(values vib_x_rms | tail -3)"
values vib_x_rms | awk -v w="$WANT_RMS" '{ d = $1 - w; if (d < 0) d = -d; if (d > 1e-6) bad++ }
    END { exit bad > 0 }' || fail "some vib_x_rms windows are off: $(values vib_x_rms | sort -u | head)"
awk -v w="$WANT_RMS" 'BEGIN { d = w - 2 / sqrt(2); if (d < 0) d = -d; exit !(d < 0.0383) }' ||
    fail "the test signal is wrong: rms $WANT_RMS"
wait_for 10 has_value vib_x_kurt 1.5 0.01 || fail "vib_x_kurt not 1.5 (sine): $(values vib_x_kurt | tail -3)"
wait_for 10 has_value vib_y_peak 0 1e-9 || fail "vib_y_peak not 0 (y is flat): $(values vib_y_peak | tail -3)"
wait_for 10 has_value vib_z_rms 0 1e-9 || fail "vib_z_rms not 0 (gravity is DC): $(values vib_z_rms | tail -3)"
grep '"sensor":"vib_x_rms"' "$T/sub.log" | grep -q '"unit":"m/s2"' || fail "vib_x_rms has no unit m/s2"
echo "vibration: x rms $(values vib_x_rms | tail -1) (want $WANT_RMS), kurtosis $(values vib_x_kurt | tail -1)"

# the missing file: a failed sensor in pdmctl status and in the log, nothing else stops
status_json() { "$PDMCTL" status --socket "$T/data/pdm-agent.sock" --json; }
ghost_failed() {
    status_json | python3 -c '
import json, sys
st = json.load(sys.stdin)
g = [s for s in st["sensors"] if s["name"] == "ghost"][0]
b = [s for s in st["sensors"] if s["name"] == "board_temp"][0]
ok = (not g["ok"]) and g["errors"] > 0 and "No such file" in g["last_error"] and b["ok"]
print(g, b)
sys.exit(0 if ok else 1)'
}
wait_for 15 ghost_failed || fail "ghost is not shown failed in pdmctl status: $(status_json)"
grep -q "sensor ghost: .*hwmon9/temp1_input" "$T/agent.log" || fail "the log does not name ghost's missing file"

# the sample stream ends (the feeder dies): the vibration sensors fail, the agent reopens the
# device and the features come back when samples flow again
stop_pid "$FEED_PID" KILL
vib_failed() {
    status_json | python3 -c '
import json, sys
v = [s for s in json.load(sys.stdin)["sensors"] if s["name"] == "vib_x_rms"][0]
print(v)
sys.exit(0 if not v["ok"] and v["last_error"] else 1)'
}
wait_for 15 vib_failed || fail "vib_x_rms not failed after the stream ended: $(status_json)"
grep -q "bus accel: .*end of the sample stream; opening the device again" "$T/agent.log" ||
    fail "the log does not say the stream ended"
n_before=$(values vib_x_rms | wc -l)
start_bg feed2 python3 "$T/feed.py" "$F/dev/iio:device0"
more_windows() { [ "$(values vib_x_rms | wc -l)" -gt $((n_before + 2)) ]; }
wait_for 20 more_windows || fail "no vibration windows after the stream came back"
vib_ok() { ! vib_failed; }
wait_for 10 vib_ok || fail "vib_x_rms still failed after the stream came back"

# the asset scores with the sysfs temperature and the iio rms as inputs
asset_scored() {
    status_json | python3 -c '
import json, sys
a = json.load(sys.stdin)["assets"][0]
names = {i["name"]: i["sensor"] for i in a["inputs"]}
ok = a["scored"] and names.get("temperature") == "board_temp" and names.get("vibration") == "vib_x_rms"
print(a["scored"], names)
sys.exit(0 if ok else 1)'
}
wait_for 30 asset_scored || fail "the asset did not score on board_temp and vib_x_rms: $(status_json)"

# a clean stop, promptly, with the IIO buffer switched off again
t0=$SECONDS
stop_pid "$AGENT_PID" TERM
[ $((SECONDS - t0)) -le 5 ] || fail "the agent took $((SECONDS - t0)) s to stop"
grep -q "stopped" "$T/agent.log" || fail "agent did not log its stop"
[ "$(cat "$F/$D/buffer/enable")" = 0 ] || fail "buffer/enable left on"
[ "$(cat "$F/$D/sampling_frequency")" = 3200 ] || fail "sampling_frequency not set to 3200"
echo "PASS"
