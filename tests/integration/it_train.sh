#!/usr/bin/env bash
# pdmctl train and eval on real data: the AI4I 2020 predictive-maintenance set
# (../shared/datasets/ai4i2020, 10,000 rows, 339 failures; skipped when absent). 5-fold
# cross-validated AUC/AP/F1 must clear floors that a broken trainer (wrong sign, no
# standardisation, derived inputs ignored, labels shuffled) misses; the model with derived
# inputs must beat the linear one; the agent's engine must score every row as pdmctl eval does.
# Then the errors a user meets: a missing column, a value that is not a number, a label that is
# not 0/1, a row with a field too many, each named with FILE:LINE.
source "$(dirname "$0")/lib.sh"
CSV="$PDM_SOURCE_DIR/../shared/datasets/ai4i2020/ai4i2020.csv"
[ -f "$CSV" ] || { echo "SKIP: $CSV not present"; exit 77; }
it_setup train
: "${SCORE_PROBE:?run through ctest}"

LABEL="Machine failure"
IN="air=Air temperature [K],process=Process temperature [K],speed=Rotational speed [rpm]"
IN="$IN,torque=Torque [Nm],wear=Tool wear [min]"
DERIVE="power=torque*speed,power_sq=square(power),strain=wear*torque,dtemp=process-air"
DERIVE="$DERIVE,dtemp_sq=square(dtemp),dtemp_speed=dtemp*speed,wear_sq=square(wear)"
DERIVE="$DERIVE,speed_sq=square(speed),torque_sq=square(torque)"

expect_rc() { # RC OUTFILE COMMAND...
    local want=$1 out=$2
    shift 2
    set +e
    "$@" >"$out" 2>&1
    local rc=$?
    set -e
    [ "$rc" -eq "$want" ] || { cat "$out"; fail "'$*' exited $rc, expected $want"; }
}

# json FILE KEY: one number from pdmctl eval --json
json() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }
# at_least VALUE FLOOR WHAT
at_least() {
    python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) >= float(sys.argv[2]) else 1)' "$1" "$2" ||
        fail "$3 = $1, below the floor $2"
    echo "$3 = $1 (floor $2)"
}

"$PDMCTL" train --help | grep -q "^usage: pdmctl train" || fail "train --help"
"$PDMCTL" eval --help | grep -q "^usage: pdmctl eval" || fail "eval --help"

# ---- the linear model and the one with derived inputs, 5-fold cross-validated ---------------
"$PDMCTL" train --csv "$CSV" --label "$LABEL" --inputs "$IN" -o "$T/linear.model" \
    >"$T/train-linear.log" 2>&1 || fail "train (linear) failed"
"$PDMCTL" train --csv "$CSV" --label "$LABEL" --inputs "$IN" --derive "$DERIVE" \
    -o "$T/derived.model" >"$T/train-derived.log" 2>&1 || fail "train (derived) failed"
grep -q "10000 rows, 339 failures" "$T/train-derived.log" || fail "row/failure count wrong"
for m in linear derived; do
    "$PDMCTL" eval --csv "$CSV" --label "$LABEL" --model "$T/$m.model" --folds 5 --json \
        >"$T/$m.json" 2>"$T/eval-$m.log" || fail "eval --folds 5 ($m) failed"
done
at_least "$(json "$T/linear.json" auc)" 0.88 "linear 5-fold AUC"
at_least "$(json "$T/linear.json" ap)" 0.35 "linear 5-fold AP"
at_least "$(json "$T/linear.json" f1)" 0.35 "linear 5-fold F1"
at_least "$(json "$T/derived.json" auc)" 0.94 "derived 5-fold AUC"
at_least "$(json "$T/derived.json" ap)" 0.50 "derived 5-fold AP"
at_least "$(json "$T/derived.json" f1)" 0.45 "derived 5-fold F1"
at_least "$(json "$T/derived.json" ap)" "$(json "$T/linear.json" ap)" "derived AP vs linear AP"
python3 - "$T/derived.json" <<'PY' || fail "eval --json lacks per-fold results or calibration"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["folds"] == 5 and len(d["fold_results"]) == 5, d.keys()
assert sum(f["rows"] for f in d["fold_results"]) == 10000
assert all(f["positives"] in (67, 68) for f in d["fold_results"])  # stratified
assert len(d["calibration"]) == 10 and sum(b["rows"] for b in d["calibration"]) == 10000
assert 0 < d["auc_sd"] < 0.05
PY
# the same seed gives the same folds, so the same figures
"$PDMCTL" eval --csv "$CSV" --label "$LABEL" --model "$T/derived.model" --folds 5 --json \
    >"$T/derived2.json" 2>/dev/null
cmp -s "$T/derived.json" "$T/derived2.json" || fail "two runs with the same seed differ"

# ---- agreement: the agent's engine scores every row as pdmctl eval does -------------------
"$PDMCTL" eval --csv "$CSV" --label "$LABEL" --model "$T/derived.model" --scores "$T/scores.csv" \
    >"$T/eval-text.log" 2>&1 || fail "eval (no folds) failed"
grep -q "^ROC-AUC 0\.9" "$T/eval-text.log" || fail "in-sample AUC not printed: $(cat "$T/eval-text.log")"
grep -q "^calibration" "$T/eval-text.log" || fail "no calibration table"
"$SCORE_PROBE" "$T/derived.model" "$CSV" "$T/scores.csv" 1e-9 >"$T/probe.log" 2>&1 ||
    fail "agent and trainer disagree: $(cat "$T/probe.log")"
grep -q "10000 rows scored" "$T/probe.log" || fail "probe: $(cat "$T/probe.log")"
cat "$T/probe.log"

# ---- errors, each with FILE:LINE ---------------------------------------------------------
expect_rc 1 "$T/err1.txt" "$PDMCTL" train --csv "$CSV" --label "$LABEL" \
    --inputs "$IN,rpm=Speed [rpm]" -o "$T/x.model"
grep -q "ai4i2020.csv:1: no column 'Speed \[rpm\]' in the header (columns: 'UDI'" "$T/err1.txt" ||
    fail "missing column: $(cat "$T/err1.txt")"
expect_rc 1 "$T/err1b.txt" "$PDMCTL" train --csv "$CSV" --label "Failure" --inputs "$IN" -o "$T/x.model"
grep -q "no column 'Failure'" "$T/err1b.txt" || fail "missing label column: $(cat "$T/err1b.txt")"

# line 6 (row UDI 5): torque 'abc'; line 9: label 2; line 12: a field too many
awk 'BEGIN { FS = OFS = "," }
     NR == 6 { $7 = "abc" }
     NR == 9 { $9 = "2" }
     NR == 12 { $0 = $0 ",extra" }
     { print }' "$CSV" >"$T/bad.csv"
expect_rc 1 "$T/err2.txt" "$PDMCTL" train --csv "$T/bad.csv" --label "$LABEL" --inputs "$IN" \
    -o "$T/x.model"
grep -q "bad.csv:6: column 'Torque \[Nm\]': 'abc' is not a number" "$T/err2.txt" ||
    fail "non-numeric value: $(cat "$T/err2.txt")"
grep -q "bad.csv:9: label column 'Machine failure' must be 0 or 1, got '2'" "$T/err2.txt" ||
    fail "label not 0/1: $(cat "$T/err2.txt")"
grep -q "bad.csv:12: 15 fields, but the header has 14" "$T/err2.txt" ||
    fail "bad row: $(cat "$T/err2.txt")"
[ ! -e "$T/x.model" ] || fail "a model was written from bad data"
expect_rc 1 "$T/err3.txt" "$PDMCTL" eval --csv "$T/bad.csv" --label "$LABEL" --model "$T/linear.model"
grep -q "bad.csv:6: column 'Torque \[Nm\]'" "$T/err3.txt" || fail "eval: $(cat "$T/err3.txt")"

# command-line mistakes: exit 2 with the reason
expect_rc 2 "$T/err4.txt" "$PDMCTL" train --csv "$CSV" --label "$LABEL" \
    --inputs "Torque [Nm]" -o "$T/x.model"
grep -q "column 'Torque \[Nm\]' is not a valid input name.*e.g. torque_nm=Torque \[Nm\]" "$T/err4.txt" ||
    fail "bad input name: $(cat "$T/err4.txt")"
expect_rc 2 "$T/err5.txt" "$PDMCTL" train --csv "$CSV" --label "$LABEL" --inputs "$IN" \
    --derive "x=torque/speed" -o "$T/x.model"
grep -q "expected 'A \* B', 'A - B' or 'square(A)'" "$T/err5.txt" || fail "bad derive: $(cat "$T/err5.txt")"
expect_rc 2 "$T/err6.txt" "$PDMCTL" train --csv "$CSV" --label "$LABEL" --inputs "$IN" \
    --derive "a=b*torque,b=a*speed" -o "$T/x.model"
grep -q "cycle" "$T/err6.txt" || fail "derive cycle: $(cat "$T/err6.txt")"
expect_rc 2 "$T/err7.txt" "$PDMCTL" eval --csv "$CSV" --label "$LABEL" --model "$T/linear.model" --folds 1
# separable without regularisation: a clear failure, not a model with huge weights
awk 'BEGIN { FS = OFS = "," } NR > 1 { $9 = ($7 > 45) ? 1 : 0 } { print }' "$CSV" >"$T/sep.csv"
expect_rc 1 "$T/err8.txt" "$PDMCTL" train --csv "$T/sep.csv" --label "$LABEL" --inputs "$IN" \
    --l2 0 -o "$T/x.model"
grep -q "separable" "$T/err8.txt" || fail "separable data: $(cat "$T/err8.txt")"
"$PDMCTL" train --csv "$T/sep.csv" --label "$LABEL" --inputs "$IN" -o "$T/sep.model" \
    >"$T/sep.log" 2>&1 || fail "separable data with the default l2 does not fit: $(cat "$T/sep.log")"
echo "OK"
