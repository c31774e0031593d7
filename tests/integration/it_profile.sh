#!/usr/bin/env bash
# Device profiles end to end. (1) Every shipped profiles/*.profile passes `pdm-agent --check`
# through a [device] that uses it; a broken profile fails with its own FILE:LINE. (2) A
# [device] whose profile lives in the config's profiles/ folder is read from pdm-sim over
# Modbus TCP; its NAME.REGISTER sensors feed the asset and arrive in telemetry with the
# profile's scale, and registers left out by `only` are not read.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/agent_env.sh"
: "${PDM_SIM:?run through ctest}" "${PDM_AGENT:?run through ctest}"
it_setup profile
pki_make gw-test

# ---- (1) the shipped profiles ----------------------------------------------------------------
mkdir -p "$T/check/profiles" "$T/check/models"
cp "$PDM_SOURCE_DIR"/profiles/*.profile "$T/check/profiles/"
cp "$PDM_SOURCE_DIR/examples/models/compressor.model" "$T/check/models/"
n=0
{
    printf '[agent]\ndevice_id = gw\ndata_dir = data\n'
    printf '[mqtt]\nuri = mqtt://127.0.0.1:1883\nallow_plaintext = true\n'
    printf '[bus line]\ndriver = modbus-rtu\ndevice = /dev/ttyUSB0\n'
    printf '[sensor t]\nbus = line\naddress = 0\ntype = float32\n'
    printf '[asset a]\nmodel = models/compressor.model\ntemperature = t\nvibration = t\n'
    printf 'power = t\ninstalled = 2019-06-01\n'
    for f in "$PDM_SOURCE_DIR"/profiles/*.profile; do
        n=$((n + 1))
        printf '[device d%d]\nbus = line\nunit_id = %d\nprofile = %s\n' "$n" "$n" \
            "$(basename "$f" .profile)"
    done
} >"$T/check/agent.conf"
[ "$n" -ge 3 ] || fail "only $n shipped profiles"
out=$("$PDM_AGENT" --check -c "$T/check/agent.conf" 2>&1) ||
    fail "--check refused a shipped profile: $out"
[ "$out" = "configuration OK" ] || fail "--check said: $out"
echo "ok: $n shipped profiles pass --check"

# a profile with a mistake: the agent names the profile's file and line, exit 78
printf '[profile]\nname = eastron-sdm120\ndescription = x\n[register v]\naddress = 0\ntype = float33\n' \
    >"$T/check/profiles/eastron-sdm120.profile"
rc=0
out=$("$PDM_AGENT" --check -c "$T/check/agent.conf" 2>&1) || rc=$?
[ "$rc" = 78 ] || fail "--check with a broken profile exited $rc: $out"
printf '%s\n' "$out" | grep -qF "$T/check/profiles/eastron-sdm120.profile:6: register.v.type: expected" ||
    fail "--check did not name the profile's line: $out"
echo "ok: a broken profile is refused with its FILE:LINE"

# ---- (2) a device read end to end ------------------------------------------------------------
MQTT_PORT=$(free_port)
SIM_PORT=$(free_port)
broker_start "$MQTT_PORT"
mkdir -p "$T/models" "$T/profiles"
cp "$PDM_SOURCE_DIR/examples/models/compressor.model" "$T/models/"
# pdm-sim's map as a profile: the same float32 values in input registers 0, 2, 4
cat >"$T/profiles/sim-compressor.profile" <<'PROF'
[profile]
name = sim-compressor
description = pdm-sim compressor, input registers
table = input
type = float32
word_order = ABCD
[register temperature]
address = 0
unit = degC
[register vibration]
address = 2
unit = mm/s
[register power]
address = 4
[register power_kw]
address = 4
scale = 0.001
unit = kW
[register running]
address = 6
type = u16
PROF
cat >"$T/agent.conf" <<CONF
[agent]
device_id = gw-test
data_dir = data
log_level = debug
[mqtt]
uri = mqtts://127.0.0.1:$MQTT_PORT
ca_file = tls/ca.pem
cert_file = tls/device.pem
key_file = tls/device.key
telemetry_interval_s = 1
[bus plant]
driver = modbus-tcp
host = 127.0.0.1
port = $SIM_PORT
timeout_ms = 300
[device comp]
bus = plant
unit_id = 1
profile = sim-compressor
period_ms = 200
only = temperature, vibration, power, power_kw
[asset compressor-1]
model = models/compressor.model
temperature = comp.temperature
vibration = comp.vibration
power = comp.power
installed = 2019-06-01
CONF
out=$("$PDM_AGENT" --check -c "$T/agent.conf" 2>&1) || fail "--check: $out"

subscribe sub
start_bg sim "$PDM_SIM" --port "$SIM_PORT" --healthy-s 600 --seed 2 --quiet
wait_for 10 port_open "$SIM_PORT" || fail "pdm-sim did not listen"
start_bg agent "$PDM_AGENT" -c "$T/agent.conf"
AGENT_PID=$LAST_PID

has_series() { grep '"type":"telemetry"' "$T/sub.log" | grep -q "\"sensor\":\"$1\",\"ts_ms\":\[[0-9]"; }
for s in comp.temperature comp.vibration comp.power comp.power_kw; do
    wait_for 30 has_series "$s" || fail "no telemetry for $s within 30 s"
done
echo "ok: the device's sensors arrive in telemetry"
if grep '"type":"telemetry"' "$T/sub.log" | grep -q '"sensor":"comp.running"'; then
    fail "comp.running is not in 'only', yet it was read"
fi
# the values: the first reading of each series (ts_ms, then value arrays in the JSON line)
first_value() {
    grep '"type":"telemetry"' "$T/sub.log" | grep -o "\"sensor\":\"$1\"[^}]*" | sed -n 1p |
        grep -o '"value":\[[^],]*' | sed 's/.*\[//'
}
temp=$(first_value comp.temperature)
w=$(first_value comp.power)
kw=$(first_value comp.power_kw)
echo "comp.temperature=$temp comp.power=$w W comp.power_kw=$kw kW"
awk -v t="$temp" 'BEGIN { exit !(t > 0 && t < 150) }' || fail "temperature $temp degC is implausible"
# both come from one read of the same registers: power_kw is exactly power x 0.001
awk -v w="$w" -v k="$kw" 'BEGIN { d = k * 1000 - w; exit !(w > 10 && d < 0.001 * w && -d < 0.001 * w) }' ||
    fail "power_kw ($kw) is not power ($w) scaled by 0.001"
# the planner coalesces the device's four values like any sensors on one unit and period
file_has "$T/agent.log" "request 1: unit 1 input 0..5 (4 sensors: comp.temperature comp.vibration comp.power comp.power_kw)" ||
    fail "the device's registers were not read in one request"
stop_pid "$AGENT_PID" TERM
grep -q "stopped" "$T/agent.log" || fail "agent did not log its stop"
echo "PASS"
