#!/usr/bin/env bash
# Agent-level helpers on top of lib.sh: a config for pdm-sim + mosquitto, and JSON field access
# for the lines that `pdmctl subscribe --json` prints.

# write_agent_conf FILE MQTT_PORT MODBUS_PORT [extra [mqtt] lines]
write_agent_conf() {
    local f=$1 mport=$2 bport=$3
    mkdir -p "$T/models"
    cp "$PDM_SOURCE_DIR/examples/models/compressor.model" "$T/models/"
    cat >"$f" <<CONF
[agent]
device_id = gw-test
data_dir = data
log_level = ${AGENT_LOG_LEVEL:-info}

[mqtt]
uri = mqtts://127.0.0.1:$mport
ca_file = tls/ca.pem
cert_file = tls/device.pem
key_file = tls/device.key
telemetry_interval_s = ${TELEMETRY_S:-2}
${4:-}

[bus plant]
driver = modbus-tcp
host = 127.0.0.1
port = $bport
timeout_ms = 300

[sensor comp_temp]
bus = plant
address = 0
type = float32
period_ms = 200
unit = degC

[sensor comp_vib]
bus = plant
address = 2
type = float32
period_ms = 200

[sensor comp_power]
bus = plant
address = 4
type = float32
word_order = big
period_ms = 200

[asset compressor-1]
model = models/compressor.model
temperature = comp_temp
vibration = comp_vib
power = comp_power
installed = 2019-06-01
CONF
}

# subscribe NAME [args]: pdmctl subscribe --json with the test subscriber's certificate.
subscribe() {
    local name=$1
    shift
    start_bg "$name" "$PDMCTL" subscribe --uri "mqtts://127.0.0.1:$MQTT_PORT" --ca "$T/tls/ca.pem" \
        --cert "$T/tls/sub.pem" --key "$T/tls/sub.key" --json --topic 'pdm/v1/#' "$@"
    SUB_PID=$LAST_PID
    # the subscription must be in place before anything is published, or messages miss it
    wait_for 15 file_has "$T/$name.log" 'subscribed to' || fail "subscriber $name did not subscribe"
}

# json_field LINE KEY: the value of "KEY": in a compact JSON line (string without quotes).
json_field() {
    printf '%s\n' "$1" | grep -o "\"$2\":\(\"[^\"]*\"\|[^,}]*\)" | sed -n 1p | sed 's/^"[^"]*"://; s/^"//; s/"$//'
}
