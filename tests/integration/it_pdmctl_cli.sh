#!/usr/bin/env bash
# pdmctl's command line, the same way in every subcommand (tools/pdmctl/cli.c): an unknown option,
# a missing value, a stray argument and a bad number exit 2 with a message naming the subcommand
# and the option; operands and option values that start with '-' work in the orders pdmctl(1)
# shows. No broker, agent or simulator: seconds.
# shellcheck disable=SC2086 # the argument lists below are split into words on purpose
source "$(dirname "$0")/lib.sh"
it_setup pdmctl_cli

# expect_rc RC OUTFILE COMMAND...: runs COMMAND (stdout+stderr to OUTFILE), checks its status
expect_rc() {
    local want=$1 out=$2
    shift 2
    set +e
    "$@" >"$out" 2>&1
    local rc=$?
    set -e
    [ "$rc" -eq "$want" ] || { cat "$out"; fail "'$*' exited $rc, expected $want"; }
}
# expect_msg TEXT OUTFILE WHAT: OUTFILE's first line contains TEXT (no grep: under qemu every
# process counts)
expect_msg() {
    local first=""
    IFS= read -r first <"$2" || true
    [[ "$first" == *"$1"* ]] || fail "$3: expected '$1', got: $(head -n 3 "$2")"
}

# ---- every subcommand pdmctl --help lists ------------------------------------------------------
"$PDMCTL" --help >"$T/help.txt"
subs=$(sed -n '/^commands:/,/^$/p' "$T/help.txt" | sed -n 's/^  \([a-z][a-z0-9-]*\)  .*/\1/p')
[ "$(echo "$subs" | wc -w)" -ge 15 ] || fail "cannot read the subcommands: $(cat "$T/help.txt")"
for cmd in $subs; do
    expect_rc 2 "$T/o.txt" "$PDMCTL" "$cmd" --no-such-option
    expect_msg "pdmctl $cmd: unknown option '--no-such-option'" "$T/o.txt" "$cmd --no-such-option"
    grep -q "^usage: pdmctl $cmd" "$T/o.txt" || fail "$cmd: no usage after the error"
    # an unknown letter within a group of letters is named by itself
    expect_rc 2 "$T/o.txt" "$PDMCTL" "$cmd" -Zh
    expect_msg "pdmctl $cmd: unknown option '-Z'" "$T/o.txt" "$cmd -Zh"
    # -h as well as --help (it_manpages runs --help): usage on stdout, exit 0
    "$PDMCTL" "$cmd" -h >"$T/h.txt" 2>"$T/h.err" || fail "pdmctl $cmd -h exited $?"
    IFS= read -r first <"$T/h.txt" || true
    [[ "$first" == "usage: pdmctl $cmd"* ]] || fail "pdmctl $cmd -h: no usage on stdout"
    [ ! -s "$T/h.err" ] || fail "pdmctl $cmd -h wrote to stderr: $(cat "$T/h.err")"
done

# ---- a value missing, a value given to a switch --------------------------------------------------
for c in "baseline --minutes" "buffer --db" "check -c" "check --config" "decode" "eval --csv" \
    "eval -m" "enroll --cn" "keygen --key-out" "publish --wait" "read --address" "report --days" \
    "scan --units" "sign-model -o" "status --socket" "subscribe --count" "train --hold"; do
    set -- $c
    [ $# -eq 2 ] || continue # decode has no option with a value
    expect_rc 2 "$T/o.txt" "$PDMCTL" "$1" "$2"
    expect_msg "pdmctl $1: $2 needs a value" "$T/o.txt" "$1 $2 (no value)"
done
for c in "decode --json" "buffer --json" "enroll --force" "keygen --force" "eval --json" \
    "publish --retain" "sign-model --print-text" "subscribe --allow-plaintext" "baseline --show"; do
    set -- $c
    expect_rc 2 "$T/o.txt" "$PDMCTL" "$1" "$2=1"
    expect_msg "pdmctl $1: $2 takes no value" "$T/o.txt" "$1 $2=1"
done

# ---- bad numbers: exit 2, the subcommand, the option and what it expects --------------------------
while read -r cmd opt value range; do
    expect_rc 2 "$T/o.txt" "$PDMCTL" "$cmd" "$opt" "$value"
    expect_msg "pdmctl $cmd: $opt: expected $range, got '$value'" "$T/o.txt" "$cmd $opt $value"
done <<'EOF'
baseline --minutes 0 a positive number
baseline --seconds 1e999 a positive number
eval --folds 21 a whole number 2..20 (or 0x hex)
eval --seed -1 a whole number 0..18446744073709551615 (or 0x hex)
eval --seed 18446744073709551616 a whole number 0..18446744073709551615 (or 0x hex)
eval --l2 x a number from 0 to 1e+12
publish --wait 0 seconds 1..3600
read --address 65536 a whole number 0..65535 (or 0x hex)
read --count 0x a whole number 1..2000 (or 0x hex)
report --days 3661 a whole number 1..3660 (or 0x hex)
scan --timeout-ms 5 a whole number 10..10000 (or 0x hex)
scan --baud 9600x a whole number 50..4000000 (or 0x hex)
sign-model --version 4294967296 a whole number 1..4294967295 (or 0x hex)
sign-model --version -2 a whole number 1..4294967295 (or 0x hex)
status --watch 0 seconds 1..3600
subscribe --count 1.5 a whole number 1..2147483647 (or 0x hex)
subscribe --timeout 2147483648 seconds 1..2147483647
train --hold 0 a whole number 1..1000 (or 0x hex)
train --version 2x a whole number 1..4294967295 (or 0x hex)
train --eval-period-ms 99 a whole number 100..3600000 (or 0x hex)
train --l2 -1 a number from 0 to 1e+12
train --warning 1 a number from 1e-09 to 1
train --window-s nan a number from 1 to 86400
EOF
expect_rc 2 "$T/o.txt" "$PDMCTL" train --hold=0x3e9
expect_msg "pdmctl train: --hold: expected a whole number 1..1000 (or 0x hex), got '0x3e9'" \
    "$T/o.txt" "train --hold=0x3e9"
# in range, with 0x or a leading 0 (decimal): past the number, to the next complaint
expect_rc 2 "$T/o.txt" "$PDMCTL" read --tcp 127.0.0.1 --unit 1 --address 0x10 --count 010 --bogus
expect_msg "unknown option '--bogus'" "$T/o.txt" "read: 0x10 and 010 in range"

# ---- stray arguments -----------------------------------------------------------------------------
for cmd in buffer check enroll eval keygen publish read scan sign-model status subscribe train; do
    expect_rc 2 "$T/o.txt" "$PDMCTL" "$cmd" stray
    expect_msg "pdmctl $cmd: unexpected argument 'stray'" "$T/o.txt" "$cmd stray"
done
expect_rc 2 "$T/o.txt" "$PDMCTL" report a b
expect_msg "pdmctl report: unexpected argument 'b'" "$T/o.txt" "report a b"
expect_rc 2 "$T/o.txt" "$PDMCTL" baseline a b --seconds 5
expect_msg "pdmctl baseline: one asset at a time" "$T/o.txt" "baseline a b"
expect_rc 2 "$T/o.txt" "$PDMCTL" decode status a b
expect_msg "pdmctl decode:" "$T/o.txt" "decode status a b"

# ---- values that start with '-', and operands around the options ---------------------------------
"$PDMCTL" keygen --key-out "$T/k.pem" --pub-out "$T/k.pub" >/dev/null 2>&1 || fail "keygen"
MODEL="$PDM_SOURCE_DIR/examples/models/compressor.model"
# -o -: the update on stdout
"$PDMCTL" sign-model --key "$T/k.pem" --model "$MODEL" --request-id -r1 -o - >"$T/u.bin" \
    2>"$T/sign.err" || fail "sign-model -o -: $(cat "$T/sign.err")"
[ -s "$T/u.bin" ] || fail "sign-model -o - wrote nothing on stdout"
"$PDMCTL" decode model "$T/u.bin" >"$T/ref.txt" || fail "decode model FILE"
grep -q 'request_id: "-r1"' "$T/ref.txt" || fail "--request-id -r1 not taken: $(cat "$T/ref.txt")"
# pdmctl decode TYPE [FILE|-] [--json]: the operands in order, the option anywhere
for args in "model $T/u.bin" "model -" "model" "--json model $T/u.bin" "model --json -" \
    "model - --json" "--json model" "model -- -"; do
    "$PDMCTL" decode $args <"$T/u.bin" >"$T/d.txt" 2>&1 || fail "decode $args: $(cat "$T/d.txt")"
    case "$args" in
    *--json*) grep -q '"request_id":"-r1"' "$T/d.txt" || fail "decode $args: $(cat "$T/d.txt")" ;;
    *) cmp -s "$T/d.txt" "$T/ref.txt" || fail "decode $args differs: $(cat "$T/d.txt")" ;;
    esac
done
# pdmctl report ASSET -c FILE [...]: the asset before, between or after the options; an asset
# the configuration lacks is refused by name, so the operand is known to be taken as the asset
E="$T/example"
mkdir -p "$E/models" "$E/tls"
cp "$MODEL" "$E/models/"
touch "$E/tls/ca.pem" "$E/tls/device.pem" "$E/tls/device.key"
cp "$PDM_SOURCE_DIR/examples/agent.conf" "$E/agent.conf"
for args in "nope -c $E/agent.conf --days 3" "-c $E/agent.conf nope --days 3" \
    "-c $E/agent.conf --days 3 nope" "--days=3 --config=$E/agent.conf nope"; do
    expect_rc 2 "$T/o.txt" "$PDMCTL" report $args
    grep -q "has no \[asset nope\]" "$T/o.txt" || fail "report $args: $(cat "$T/o.txt")"
done
# pdmctl baseline ASSET ...: the asset anywhere; no agent here, so it gets as far as the socket
for args in "compressor-1 --seconds 5 --socket $T/none.sock" \
    "--socket $T/none.sock compressor-1 --seconds 5" "--seconds 5 --socket $T/none.sock compressor-1"; do
    expect_rc 1 "$T/o.txt" "$PDMCTL" baseline $args
    grep -q "no agent answers on $T/none.sock" "$T/o.txt" || fail "baseline $args: $(cat "$T/o.txt")"
done
# a value that starts with '-' is the option's value, not an option
expect_rc 0 "$T/o.txt" "$PDMCTL" sign-model --model "$MODEL" --asset -a --print-text
grep -qx "asset=-a" "$T/o.txt" || fail "sign-model --asset -a: $(cat "$T/o.txt")"
expect_rc 2 "$T/o.txt" "$PDMCTL" publish --uri mqtts://127.0.0.1:1 --topic t --message -x --file f
expect_msg "one of --file or --message are required" "$T/o.txt" "publish --message -x"

echo "pdmctl command line: $(echo "$subs" | wc -w) subcommands checked"
