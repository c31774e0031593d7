#!/usr/bin/env bash
# Signed model updates over the air, on real components: pdm-sim -> pdm-agent -> mosquitto
# (client certificates) <- pdmctl publish / subscribe as the backend.
#  1. refused, each with its reason in cmd_result and the agent scoring on with model v1:
#     garbage payload, unknown command, unknown key, bad signature, model that does not load
#     (FILE:LINE reason), version not newer, inputs the asset has no sensor for, unknown asset;
#     the model that does not load is signed by openssl and encoded by hand (mkupdate.py), so
#     the signing contract is checked from outside pdm-agent's code
#  2. a good update (pdmctl sign-model) swapped in live: cmd_result ok, Status and the next
#     alert carry v2 and its sha256, the window of an unchanged input keeps its samples while a
#     changed one starts empty; the same update again answers "already runs"
#  3. a fleet-wide update (retained, built by mkupdate.py) reaches the device and runs
#  4. restart: the accepted v3 runs instead of the configuration's v1; the retained fleet
#     update comes again at the new connection and is answered "already runs"; the empty
#     message that clears it is not answered; v2 is refused (anti-rollback survives the restart)
#  5. the accepted file damaged: the agent falls back to the previous accepted one (v2), says
#     so, and v3 can be sent again; both damaged: the configuration's v1
#  6. no model_pubkey: every update is refused with NO_VERIFY_KEY
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/agent_env.sh"
it_setup model_update
pki_make gw-test
MQTT_PORT=$(free_port)
SIM_PORT=$(free_port)
broker_start "$MQTT_PORT"
MKUPDATE=(python3 "$PDM_SOURCE_DIR/tests/integration/mkupdate.py")
URI=mqtts://127.0.0.1:$MQTT_PORT
BACKEND=(--uri "$URI" --ca "$T/tls/ca.pem" --cert "$T/tls/sub.pem" --key "$T/tls/sub.key")
DEV_TOPIC=pdm/v1/gw-test/cmd
FLEET_TOPIC=pdm/v1/fleet/cmd

# the backend's signing key, and another one the device does not know
mkdir -p "$T/keys"
"$PDMCTL" keygen --key-out "$T/keys/backend.key" --pub-out "$T/keys/backend.pub" >"$T/keygen.log" ||
    fail "keygen failed: $(cat "$T/keygen.log")"
KEY_ID=$(sed -n 's/^key id //p' "$T/keygen.log")
[ "$(stat -c %a "$T/keys/backend.key")" = 600 ] || fail "backend key is not 0600"
"$PDMCTL" keygen --key-out "$T/keys/other.key" --pub-out "$T/keys/other.pub" >/dev/null
# keygen never overwrites a key by accident
if "$PDMCTL" keygen --key-out "$T/keys/backend.key" --pub-out "$T/keys/x.pub" 2>"$T/kg2.log"; then
    fail "keygen overwrote an existing key"
fi
grep -q "refusing to overwrite" "$T/kg2.log" || fail "keygen: no reason for refusing"

TELEMETRY_S=1 write_agent_conf "$T/agent.conf" "$MQTT_PORT" "$SIM_PORT"
sed -i "s#^data_dir = data#data_dir = data\nmodel_pubkey = keys/backend.pub#" "$T/agent.conf"
"$PDM_AGENT" -c "$T/agent.conf" --check >"$T/check.log" 2>&1 || fail "config rejected: $(cat "$T/check.log")"

# model variants of examples/models/compressor.model (v1)
M=$T/models/compressor.model
variant() { # OUT SED-EXPRESSION...
    local out=$1
    shift
    cp "$M" "$out"
    for e in "$@"; do sed -i "$e" "$out"; done
}
# v2: a high intercept (alerts at once), vibration window 10 -> 60 s (a new window), the
# temperature and power windows unchanged (kept)
variant "$T/v2.model" 's/^version = 1 /version = 2 /' 's/^intercept = -4.0 /intercept = 4.0 /' \
    '/^\[input vibration\]/,/^\[/s/^window_s = 10/window_s = 60/'
variant "$T/v3.model" 's/^version = 1 /version = 3 /' 's/^intercept = -4.0 /intercept = 3.0 /'
variant "$T/v1b.model" 's/^intercept = -4.0 /intercept = -3.5 /'
variant "$T/bad.model" 's/^version = 1 /version = 4 /' 's/^scale = 8 /scale = 0 /'
variant "$T/pressure.model" 's/^version = 1 /version = 5 /'
printf '\n[input oil_pressure]\nstat = mean\nwindow_s = 10\ncenter = 3\nscale = 1\nweight = 1\n' \
    >>"$T/pressure.model"

subscribe sub
start_bg sim "$PDM_SIM" --port "$SIM_PORT" --scenario healthy --seed 5 --quiet
wait_for 10 port_open "$SIM_PORT" || fail "pdm-sim did not listen"
start_agent() {
    start_bg "agent$1" "$PDM_AGENT" -c "$T/agent.conf"
    AGENT_PID=$LAST_PID
    wait_for 20 file_has "$T/agent$1.log" "commands: subscribed to pdm/v1/gw-test/cmd/#" ||
        fail "agent did not subscribe to its command topics"
}
status_json() { "$PDMCTL" status --socket "$T/data/pdm-agent.sock" --json; }
# field of the asset's input NAME in pdmctl status --json
input_field() { # NAME FIELD
    status_json | python3 -c "import json,sys; a=json.load(sys.stdin)['assets'][0]
print([i for i in a['inputs'] if i['name']=='$1'][0]['$2'])"
}
asset_field() { status_json | python3 -c "import json,sys; print(json.load(sys.stdin)['assets'][0]['$1'])"; }
window_full() { [ "$(input_field temperature samples)" -ge 52 ]; } # 10 s at 200 ms + 2

# send EXPECTED_EXIT NAME TOPIC (--file F | --message M): pdmctl publish --wait; the answer
# line goes to $T/NAME.out
send() {
    local want=$1 name=$2 topic=$3
    shift 3
    local rc=0
    "$PDMCTL" publish "${BACKEND[@]}" --topic "$topic" --wait 15 "$@" >"$T/$name.out" 2>"$T/$name.err" || rc=$?
    cat "$T/$name.out"
    [ "$rc" = "$want" ] || fail "$name: pdmctl publish exited $rc, expected $want ($(cat "$T/$name.err"))"
}
expect_refused() { # NAME REASON TEXT-PATTERN
    grep -q "REFUSED $2 " "$T/$1.out" || fail "$1: not refused with $2"
    grep -q -- "$3" "$T/$1.out" || fail "$1: reason text lacks '$3'"
    grep -q "refused, $2: " "$T/agent1.log" || fail "$1: no log line for $2"
}
sign() { # OUT MODEL [sign-model args]
    local out=$1 model=$2
    shift 2
    "$PDMCTL" sign-model --key "$T/keys/backend.key" --model "$model" -o "$out" "$@" 2>>"$T/sign.log" ||
        fail "sign-model $model failed: $(tail -3 "$T/sign.log")"
}

start_agent 1
grep -q "model updates: accepted when signed with key $KEY_ID" "$T/agent1.log" || fail "key not loaded"
wait_for 30 window_full || fail "the temperature window never filled"
[ "$(asset_field model_version)" = 1 ] || fail "not running v1"
V1_SHA=$(asset_field model_sha256)

echo "== 1. refused updates"
send 1 garbage "$DEV_TOPIC/model" --message 'this is not protobuf'
expect_refused garbage BAD_PAYLOAD "not a pdm.v1.ModelUpdate"
printf '\x0a\x05req-7' >"$T/reboot.bin"
send 1 unknown "$DEV_TOPIC/reboot" --file "$T/reboot.bin"
expect_refused unknown UNKNOWN_COMMAND "no command 'reboot'"
grep -q "request=req-7 " "$T/unknown.out" || fail "unknown command answered without its request_id"

"$PDMCTL" sign-model --key "$T/keys/other.key" --model "$T/v2.model" -o "$T/otherkey.bin" 2>/dev/null
send 1 otherkey "$DEV_TOPIC/model" --file "$T/otherkey.bin"
expect_refused otherkey UNKNOWN_KEY "is not one of this device's model keys ($KEY_ID)"

# --version is a check of the model file's version (parsed in 64 bits: long is 32 on armhf)
for v in 3 0 -2 4294967296 2x; do
    if "$PDMCTL" sign-model --key "$T/keys/backend.key" --model "$T/v2.model" --version "$v" \
        -o "$T/x.bin" 2>"$T/signver.log"; then
        fail "sign-model --version $v signed a v2 model"
    fi
done
grep -q -- "--version: expected a whole number 1..4294967295 (or 0x hex), got '2x'" "$T/signver.log" ||
    fail "--version 2x: no reason: $(cat "$T/signver.log")"
sign "$T/v2.bin" "$T/v2.model" --request-id up-2 --version 2
# the same bytes with one digit of the model changed: the signature no longer matches
python3 -c "import sys; d=open(sys.argv[1],'rb').read(); open(sys.argv[2],'wb').write(d.replace(b'weight = 1.6', b'weight = 9.6'))" \
    "$T/v2.bin" "$T/tampered.bin"
cmp -s "$T/v2.bin" "$T/tampered.bin" && fail "tampering changed nothing"
send 1 tampered "$DEV_TOPIC/model" --file "$T/tampered.bin"
expect_refused tampered BAD_SIGNATURE "does not verify with key $KEY_ID"

# pdmctl sign-model refuses to sign a model that does not load ...
if "$PDMCTL" sign-model --key "$T/keys/backend.key" --model "$T/bad.model" -o "$T/x.bin" 2>"$T/signbad.log"; then
    fail "sign-model signed a broken model"
fi
grep -q "bad.model:[0-9]*: input.temperature.scale: " "$T/signbad.log" || fail "sign-model: no FILE:LINE reason"
# ... so it is signed with openssl, like a backend that does not use pdmctl
"${MKUPDATE[@]}" --key "$T/keys/backend.key" --pub "$T/keys/backend.pub" --model "$T/bad.model" \
    --asset compressor-1 --version 4 --request-id bad-4 -o "$T/bad.bin" 2>/dev/null
send 1 invalid "$DEV_TOPIC/model" --file "$T/bad.bin"
expect_refused invalid MODEL_INVALID "model:[0-9]*: input.temperature.scale: expected a number greater than 0"

sign "$T/v1b.bin" "$T/v1b.model" --asset compressor-1
send 1 rollback "$DEV_TOPIC/model" --file "$T/v1b.bin"
expect_refused rollback VERSION_NOT_NEWER "runs compressor v1 and has accepted up to v1: v1 is not newer"

sign "$T/pressure.bin" "$T/pressure.model"
send 1 inputs "$DEV_TOPIC/model" --file "$T/pressure.bin"
expect_refused inputs INPUTS_UNAVAILABLE "input 'oil_pressure' has no sensor"

sign "$T/noasset.bin" "$T/v2.model" --asset compressor-9
send 1 noasset "$DEV_TOPIC/model" --file "$T/noasset.bin"
expect_refused noasset UNKNOWN_ASSET "no asset 'compressor-9'"

# still v1, still scoring
[ "$(asset_field model_version)" = 1 ] || fail "a refused update changed the model"
[ "$(asset_field model_sha256)" = "$V1_SHA" ] || fail "the running model's bytes changed"
evals_above() { [ "$(asset_field evals)" -gt "$1" ]; }
wait_for 10 evals_above "$(asset_field evals)" || fail "the agent stopped scoring"
[ ! -e "$T/data/models/compressor-1.model" ] || fail "a refused update was written to data_dir"

echo "== 2. a good update, swapped in live"
send 0 good "$DEV_TOPIC/model" --file "$T/v2.bin"
grep -q "CMD_RESULT gw-test  model  request=up-2  OK COMMAND_OK  model compressor v2" "$T/good.out" ||
    fail "no ok answer for v2"
grep -q "now: compressor-1=compressor v2" "$T/good.out" || fail "the answer does not list v2"
# windows: temperature (unchanged) kept its full window, vibration (60 s now) starts anew
t=$(input_field temperature samples)
v=$(input_field vibration samples)
echo "after the swap: temperature window $t samples, vibration window $v samples"
[ "$t" -ge 52 ] || fail "the temperature window lost its samples ($t)"
[ "$v" -lt 45 ] || fail "the vibration window (window_s changed) was not restarted ($v)"
V2_SHA=$(sha256sum "$T/v2.model" | cut -c1-64)
[ "$(asset_field model_version)" = 2 ] && [ "$(asset_field model_sha256)" = "$V2_SHA" ] ||
    fail "pdmctl status does not show v2 with its sha256"
# the backend sees it in Status and in the alert the new model raises (intercept 4: P ~ 0.98)
v2_status() { grep '"type":"status"' "$T/sub.log" | grep -q "\"model_version\":2,\"sha256\":\"$V2_SHA\""; }
wait_for 10 v2_status || fail "no Status with model v2 and its sha256"
v2_alert() { grep '"type":"alert"' "$T/sub.log" | grep '"state":"RAISED"' | grep -q '"model_version":2'; }
wait_for 15 v2_alert || fail "no alert from model v2"
grep -q "window kept: temperature, power; new window: vibration" "$T/agent1.log" ||
    fail "no log line naming kept and new windows"
[ "$(cat "$T/data/models/compressor-1.model" | sha256sum | cut -c1-64)" = "$V2_SHA" ] ||
    fail "v2 not stored in data_dir"
# QoS 1 may deliver a command twice: the same update again is not an error. This copy is
# signed the way a key in an HSM would sign it: pdmctl prints the text, openssl signs it
"$PDMCTL" sign-model --model "$T/v2.model" --print-text >"$T/v2.txt" || fail "--print-text failed"
openssl dgst -sha256 -sign "$T/keys/backend.key" -out "$T/v2.sig" "$T/v2.txt"
"$PDMCTL" sign-model --model "$T/v2.model" --signature "$T/v2.sig" --pubkey "$T/keys/backend.pub" \
    --request-id up-2 -o "$T/v2-hsm.bin" 2>>"$T/sign.log" || fail "--signature: $(tail -1 "$T/sign.log")"
if "$PDMCTL" sign-model --model "$T/v2.model" --signature "$T/v2.sig" --pubkey "$T/keys/other.pub" \
    -o "$T/x.bin" 2>"$T/wrongsig.log"; then
    fail "sign-model accepted a signature that does not match the public key"
fi
grep -q "the signature does not verify" "$T/wrongsig.log" || fail "no reason for the refused signature"
send 0 again "$DEV_TOPIC/model" --file "$T/v2-hsm.bin"
grep -q "OK COMMAND_OK  model compressor v2 .* already runs on compressor-1" "$T/again.out" ||
    fail "a repeated update is not answered as already running"

echo "== 3. a fleet-wide update, retained, built outside pdmctl"
"${MKUPDATE[@]}" --key "$T/keys/backend.key" --pub "$T/keys/backend.pub" --model "$T/v3.model" \
    --version 3 --request-id fleet-3 -o "$T/v3.bin" 2>/dev/null
send 0 fleet "$FLEET_TOPIC/model" --file "$T/v3.bin" --retain
grep -q "CMD_RESULT gw-test  model  request=fleet-3 (fleet)  OK COMMAND_OK  model compressor v3" "$T/fleet.out" ||
    fail "fleet update not answered ok by gw-test"
[ "$(asset_field model_version)" = 3 ] || fail "v3 does not run"

echo "== 4. restart: v3 still runs, v2 is still a rollback"
stop_pid "$AGENT_PID"
# a model already running is answered without the scratch write to flash (nor a model load):
# the scratch file's name taken by a folder makes that write fail, even as root
mkdir "$T/data/models/incoming.tmp"
start_agent 2
grep -q "asset compressor-1: runs the accepted model update compressor v3 .* instead of the configuration's v1" \
    "$T/agent2.log" || fail "no log line: accepted v3 instead of the configuration's v1"
[ "$(asset_field model_version)" = 3 ] || fail "after a restart v3 does not run"
# the retained fleet update reaches the agent again at its new connection: nothing to do
wait_for 10 file_has "$T/agent2.log" "command model, request fleet-3 (fleet topic): COMMAND_OK: .* already runs" ||
    fail "the retained fleet update was not delivered (or not answered) after the restart"
rmdir "$T/data/models/incoming.tmp"
# remove the retained update; the empty message that clears it is not answered
n_results=$(count_lines "$T/sub.log" '"type":"cmd_result"')
"$PDMCTL" publish "${BACKEND[@]}" --topic "$FLEET_TOPIC/model" --message '' --retain 2>/dev/null ||
    fail "cannot clear the retained update"
send 1 rollback2 "$DEV_TOPIC/model" --file "$T/v2.bin"
# the first answer after the clear is this one: the empty message was not answered
results_above() { [ "$(count_lines "$T/sub.log" '"type":"cmd_result"')" -gt "$1" ]; }
wait_for 10 results_above "$n_results" || fail "the subscriber saw no answer"
grep '"type":"cmd_result"' "$T/sub.log" | sed -n "$((n_results + 1))p" | grep -q VERSION_NOT_NEWER ||
    fail "the empty message clearing the retained update was answered"
grep -q "REFUSED VERSION_NOT_NEWER  asset compressor-1 runs compressor v3 and has accepted up to v3: v2 is not newer" \
    "$T/rollback2.out" || fail "v2 accepted after a restart (rollback)"

echo "== 5. damaged accepted model: fallback"
stop_pid "$AGENT_PID"
sed -i 's/^hold = 3 /hold = three /' "$T/data/models/compressor-1.model"
start_agent 3
grep -q "asset compressor-1: the accepted model update .*/compressor-1.model does not load (.*compressor-1.model:[0-9]*: model.hold: .*); trying the previous accepted one" \
    "$T/agent3.log" || fail "no log line for the damaged model"
grep -q "runs the previous accepted model update compressor v2 .*because the newer one does not load" \
    "$T/agent3.log" || fail "no log line for the fallback to v2"
[ "$(asset_field model_version)" = 2 ] || fail "not running v2 after the fallback"
# the damaged v3 can be sent again (same version, same bytes as accepted before); the version
# record cannot be replaced this time (its name taken by a folder): the model file is already
# the new one, so v3 runs, and the answer says what failed instead of "nothing changed"
H="$T/data/models/compressor-1.highest"
mv "$H" "$H.keep" && mkdir "$H" && touch "$H/x"
send 1 reinstall "$DEV_TOPIC/model" --file "$T/v3.bin"
rm -r "$H" && mv "$H.keep" "$H"
grep -q "REFUSED STORAGE_FAILED  asset compressor-1: cannot rename .*compressor-1.highest: Is a directory, after the new model was written as its model file: v3 runs now and at the next start; runs on compressor-1" \
    "$T/reinstall.out" || fail "reinstall: the answer does not say that v3 runs although its record failed"
grep -q "nothing changed" "$T/reinstall.out" && fail "reinstall: 'nothing changed' although v3 is in place"
[ "$(asset_field model_version)" = 3 ] || fail "v3 not reinstalled"
stop_pid "$AGENT_PID"
sed -i 's/^hold = 3 /hold = three /' "$T/data/models/compressor-1.model"
sed -i 's/^hold = 3 /hold = three /' "$T/data/models/compressor-1.model.prev"
start_agent 4
grep -q "no accepted model update loads; running the configuration's model compressor v1" "$T/agent4.log" ||
    fail "no log line for the fallback to the configuration's model"
[ "$(asset_field model_version)" = 1 ] || fail "not running the configuration's v1"
[ "$(asset_field model_sha256)" = "$V1_SHA" ] || fail "not the configuration's file"
# and the anti-rollback record still says 3
send 1 rollback3 "$DEV_TOPIC/model" --file "$T/v2.bin"
grep -q "REFUSED VERSION_NOT_NEWER .*has accepted up to v3" "$T/rollback3.out" || fail "rollback record lost"

echo "== 6. no model_pubkey: updates refused"
stop_pid "$AGENT_PID"
sed -i '/^model_pubkey/d' "$T/agent.conf"
start_agent 5
send 1 nokey "$DEV_TOPIC/model" --file "$T/v3.bin"
grep -q "REFUSED NO_VERIFY_KEY  this device has no \[agent\] model_pubkey" "$T/nokey.out" ||
    fail "no NO_VERIFY_KEY answer"
stop_pid "$AGENT_PID"
# every answer went to gw-test's cmd_result topic and decodes there too
[ "$(count_lines "$T/sub.log" '"topic":"pdm/v1/gw-test/cmd_result"')" -ge 14 ] ||
    fail "the subscriber did not see the answers on pdm/v1/gw-test/cmd_result"
echo "PASS"
