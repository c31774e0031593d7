#!/usr/bin/env bash
# Trainer/agent agreement on data made here (no dataset needed): pdmctl train on a CSV with a
# BOM, CRLF line ends, quoted fields and a column name holding a comma; derived inputs; the
# written model loaded by the agent's loader and every row scored by the agent's engine
# (score_probe) must match pdmctl eval --scores to 1e-9. Then pdm-agent --check with the trained
# model: base inputs mapped is good; a sensor on a derived input, or a base input without one,
# is a configuration error naming FILE:LINE.
source "$(dirname "$0")/lib.sh"
it_setup train_agree
: "${SCORE_PROBE:?run through ctest}"

# ---- data: failures more likely when hot, and when load * speed is high --------------------
python3 - "$T/plant.csv" <<'PY'
import math, random, sys
rng = random.Random(7)
with open(sys.argv[1], "w", newline="") as f:
    f.write("\ufeff")  # UTF-8 BOM
    f.write('id,"Temp, inlet [degC]",Ambient [degC],load,speed,failed\r\n')
    for i in range(3000):
        temp = rng.gauss(60, 8)
        amb = rng.gauss(25, 4)
        load = rng.uniform(0.2, 1.0)
        speed = rng.gauss(1500, 200)
        logit = -4 + 0.15 * (temp - amb - 35) + 6 * (load * speed / 1500 - 0.6) ** 2 * 4
        y = 1 if rng.random() < 1 / (1 + math.exp(-logit)) else 0
        t = '"%.3f"' % temp if i % 7 == 0 else "%.3f" % temp  # some numbers quoted
        f.write("%d,%s,%.2f,%.4f,%.1f,%d\r\n" % (i + 1, t, amb, load, speed, y))
PY

"$PDMCTL" train --csv "$T/plant.csv" --label failed \
    --input "temp=Temp, inlet [degC]" --inputs "amb=Ambient [degC],load,speed" \
    --derive "dt=temp-amb,power=load*speed,power_sq=square(power)" \
    --stat max --window-s 30 --id plant --version 7 -o "$T/plant.model" >"$T/train.log" 2>&1 ||
    fail "pdmctl train failed: $(cat "$T/train.log")"
grep -q "Newton: converged in [0-9]* steps" "$T/train.log" || fail "train does not report convergence"
grep -q "^derive = load \* speed$" "$T/plant.model" || fail "derived input not written"
grep -q "^derive = square(power)$" "$T/plant.model" || fail "square() not written"
grep -q "^column = Temp, inlet \[degC\]$" "$T/plant.model" || fail "column not recorded"
grep -q "^version = 7$" "$T/plant.model" || fail "--version not written"
grep -q "^stat = max$" "$T/plant.model" || fail "--stat not written"

"$PDMCTL" eval --csv "$T/plant.csv" --label failed --model "$T/plant.model" \
    --scores "$T/scores.csv" --json >"$T/eval.json" 2>"$T/eval.log" || fail "pdmctl eval failed"
[ "$(wc -l <"$T/scores.csv")" -eq 3001 ] || fail "scores file does not have 3000 rows"
"$SCORE_PROBE" "$T/plant.model" "$T/plant.csv" "$T/scores.csv" 1e-9 >"$T/probe.log" 2>&1 ||
    fail "agent and trainer disagree: $(cat "$T/probe.log")"
grep -q "3000 rows scored by the agent's engine, 0 not evaluated" "$T/probe.log" ||
    fail "probe did not score every row: $(cat "$T/probe.log")"
cat "$T/probe.log"

# the check must be able to fail: a model with one weight changed in its last digits
sed 's/^\(weight = -\{0,1\}[0-9]*\.[0-9]\{4\}\)[0-9]*/\1/' "$T/plant.model" >"$T/rounded.model"
if "$SCORE_PROBE" "$T/rounded.model" "$T/plant.csv" "$T/scores.csv" 1e-9 >"$T/probe2.log" 2>&1; then
    fail "the agreement check passes with rounded weights: it cannot fail"
fi

# ---- the agent's configuration with the trained model --------------------------------------
pki_make gw-test
mkdir -p "$T/site"
cp "$T/plant.model" "$T/site/plant.model"
conf() { # extra asset lines
    cat <<CONF
[agent]
device_id = gw-test
data_dir = data
[mqtt]
uri = mqtts://127.0.0.1:8883
ca_file = $T/tls/ca.pem
cert_file = $T/tls/device.pem
key_file = $T/tls/device.key
[bus plant]
driver = modbus-tcp
host = 127.0.0.1
[sensor t_in]
bus = plant
address = 0
type = float32
[sensor t_amb]
bus = plant
address = 2
type = float32
[sensor load]
bus = plant
address = 4
type = float32
[sensor speed]
bus = plant
address = 6
type = float32
[asset press-1]
model = plant.model
temp = t_in
amb = t_amb
load = load
CONF
    printf '%s\n' "$@"
}
conf "speed = speed" >"$T/site/good.conf"
"$PDM_AGENT" --check -c "$T/site/good.conf" >"$T/check-good.log" 2>&1 ||
    fail "agent rejects the trained model: $(cat "$T/check-good.log")"
conf "speed = speed" "power = speed" >"$T/site/derived.conf"
set +e
"$PDM_AGENT" --check -c "$T/site/derived.conf" >"$T/check-derived.log" 2>&1
rc=$?
set -e
[ $rc -eq 78 ] || fail "a sensor on a derived input: exit $rc, expected 78"
grep -q "derived.conf:34: asset.press-1.power: model input 'power' is derived (load \* speed)" \
    "$T/check-derived.log" || fail "unclear error: $(cat "$T/check-derived.log")"
conf >"$T/site/missing.conf"
set +e
"$PDM_AGENT" --check -c "$T/site/missing.conf" >"$T/check-missing.log" 2>&1
rc=$?
set -e
[ $rc -eq 78 ] || fail "a base input without a sensor: exit $rc, expected 78"
grep -q "missing.conf:28: asset.press-1.speed: model input 'speed' has no sensor" \
    "$T/check-missing.log" || fail "unclear error: $(cat "$T/check-missing.log")"
echo "OK"
