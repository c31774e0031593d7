#!/usr/bin/env bash
# The AI4I 2020 figures of docs/MODELS.md: 5-fold stratified cross-validation of a linear
# model and of one with derived inputs, by pdmctl (train + eval --folds 5), and the same folds in
# scikit-learn's LogisticRegression (same standardisation, same penalty, same class weights)
# printed beside them when python3-sklearn is there (as root the script installs it; the
# product itself never needs Python).
#
#   bench/ai4i.sh [CSV]     (default ../shared/datasets/ai4i2020/ai4i2020.csv; needs ./build)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
csv=${1:-$root/../shared/datasets/ai4i2020/ai4i2020.csv}
pdmctl=$root/build/pdmctl
[ -x "$pdmctl" ] || { echo "build first: cmake -S . -B build && cmake --build build" >&2; exit 1; }
[ -f "$csv" ] || { echo "no dataset at $csv" >&2; exit 1; }
W=$(mktemp -d /tmp/pdm-bench-ai4i.XXXXXX)
trap 'rm -rf "$W"' EXIT

label="Machine failure"
inputs="air=Air temperature [K],process=Process temperature [K],speed=Rotational speed [rpm]"
inputs="$inputs,torque=Torque [Nm],wear=Tool wear [min]"
# power ~ torque x speed; overstrain ~ wear x torque; heat dissipation ~ (process - air) and
# speed; squares for the two-sided rules (power too low or too high, wear in a band)
derive="power=torque*speed,power_sq=square(power),strain=wear*torque,dtemp=process-air"
derive="$derive,dtemp_sq=square(dtemp),dtemp_speed=dtemp*speed,wear_sq=square(wear)"
derive="$derive,speed_sq=square(speed),torque_sq=square(torque)"

start=$(date +%s.%N)
"$pdmctl" train --csv "$csv" --label "$label" --inputs "$inputs" -o "$W/linear.model" >"$W/train-linear.txt"
"$pdmctl" train --csv "$csv" --label "$label" --inputs "$inputs" --derive "$derive" \
    -o "$W/derived.model" >"$W/train-derived.txt"
for m in linear derived; do
    "$pdmctl" eval --csv "$csv" --label "$label" --model "$W/$m.model" --folds 5 --json \
        --scores "$W/$m-scores.csv" >"$W/$m.json"
done
end=$(date +%s.%N)

# Debian's interpreter: python3-sklearn installs for it, not for another python3 on PATH
py=python3
[ -x /usr/bin/python3 ] && py=/usr/bin/python3
have_sklearn=0
if "$py" -c 'import sklearn' 2>/dev/null; then
    have_sklearn=1
elif [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    echo "installing python3-sklearn for the comparison (Debian package)..." >&2
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q \
        --no-install-recommends python3-sklearn >/dev/null 2>&1 &&
        "$py" -c 'import sklearn' 2>/dev/null && have_sklearn=1 || true
fi

"$py" - "$csv" "$W" "$have_sklearn" <<'PY'
import csv, json, math, re, statistics, sys, warnings

path, work, have_sklearn = sys.argv[1], sys.argv[2], sys.argv[3] == "1"

def mean_sd(xs):
    return statistics.mean(xs), statistics.stdev(xs)

def fmt(xs):
    m, s = mean_sd(xs)
    return "%.4f +- %.4f" % (m, s)

def read_model(p):
    """[input] sections in order: name -> {column, derive}, and [train] l2 / class_weight."""
    inputs, train, sec = [], {}, None
    for line in open(p):
        line = line.split(" ;")[0].strip()
        if not line or line.startswith(";"):
            continue
        m = re.match(r"\[(\w+)(?: (\w+))?\]", line)
        if m:
            sec = m.groups()
            if sec[0] == "input":
                inputs.append({"name": sec[1]})
            continue
        k, v = [s.strip() for s in line.split("=", 1)]
        if sec[0] == "input":
            inputs[-1][k] = v
        elif sec[0] == "train":
            train[k] = v
    return inputs, train

def features(inputs, rows):
    """Input values per row, derived ones evaluated here from the model file's text."""
    out = []
    for r in rows:
        v = {}
        pending = list(inputs)
        while pending:
            rest = []
            for i in pending:
                e = i.get("derive")
                if e is None:
                    v[i["name"]] = float(r[i["column"]])
                    continue
                sq = re.fullmatch(r"square\((\w+)\)", e)
                bi = re.fullmatch(r"(\w+) ([*-]) (\w+)", e)
                args = [sq.group(1)] * 2 if sq else [bi.group(1), bi.group(3)]
                if not all(a in v for a in args):
                    rest.append(i)
                    continue
                a, b = v[args[0]], v[args[1]]
                v[i["name"]] = a - b if bi and bi.group(2) == "-" else a * b
            assert len(rest) < len(pending)
            pending = rest
        out.append([v[i["name"]] for i in inputs])
    return out

with open(path, newline="", encoding="utf-8-sig") as f:
    rows = list(csv.DictReader(f))
y_all = [int(r["Machine failure"]) for r in rows]

def best_f1_threshold(p, y):
    """The rule of pdmctl train: best F1 over 'P >= score', halfway to the next lower score."""
    order = sorted(range(len(p)), key=lambda i: -p[i])
    pos = sum(y)
    tp = fp = 0
    best, thr, i = -1, 0.5, 0
    while i < len(order):
        j = i
        while j < len(order) and p[order[j]] == p[order[i]]:
            tp += y[order[j]]
            fp += 1 - y[order[j]]
            j += 1
        lower = p[order[j]] if j < len(order) else p[order[i]]
        prec, rec = tp / (tp + fp), tp / pos
        f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0
        if f1 > best:
            best, thr = f1, (p[order[i]] + lower) / 2
        i = j
    return min(max(thr, 1e-6), 1 - 1e-6)

print("AI4I 2020 (%s): %d rows, %d failures; 5-fold stratified cross-validation, the same folds"
      % (path.split("/")[-1], len(rows), sum(y_all)))
print("%-22s %-13s %-17s %-17s %-17s %s" % ("model", "by", "ROC-AUC", "AP", "F1 at warning",
                                            "max |dP|"))
for name in ("linear", "derived"):
    inputs, train = read_model("%s/%s.model" % (work, name))
    res = json.load(open("%s/%s.json" % (work, name)))
    folds = res["fold_results"]
    label = "%s (%d inputs)" % (name, len(inputs))
    print("%-22s %-13s %-17s %-17s %-17s" % (label, "pdmctl", fmt([f["auc"] for f in folds]),
          fmt([f["ap"] for f in folds]), fmt([f["f1"] for f in folds])))
    if not have_sklearn:
        continue
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import average_precision_score, f1_score, roc_auc_score
    from sklearn.preprocessing import StandardScaler
    ours = {}
    with open("%s/%s-scores.csv" % (work, name)) as f:
        for r in csv.DictReader(f):
            ours[int(r["line"])] = (float(r["p"]), int(r["fold"]))
    fold = np.array([ours[i + 2][1] for i in range(len(rows))])  # data row i is on line i + 2
    p_ours = np.array([ours[i + 2][0] for i in range(len(rows))])
    X = np.array(features(inputs, rows))
    y = np.array(y_all)
    l2 = float(train.get("l2", 1))
    cw = train.get("class_weight", "balanced")
    cw = None if cw == "none" else "balanced" if cw == "balanced" else {0: 1.0, 1: float(cw)}
    auc, ap, f1, worst = [], [], [], 0.0
    for k in range(1, 6):
        tr, te = fold != k, fold == k
        sc = StandardScaler().fit(X[tr])  # mean and population standard deviation
        clf = LogisticRegression(C=1.0 / l2, class_weight=cw, solver="newton-cg", tol=1e-10,
                                 max_iter=1000)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            clf.fit(sc.transform(X[tr]), y[tr])
        p_tr = clf.predict_proba(sc.transform(X[tr]))[:, 1]
        p_te = clf.predict_proba(sc.transform(X[te]))[:, 1]
        t = best_f1_threshold(list(p_tr), list(y[tr]))
        auc.append(roc_auc_score(y[te], p_te))
        ap.append(average_precision_score(y[te], p_te))
        f1.append(f1_score(y[te], (p_te >= t).astype(int)))
        worst = max(worst, float(np.max(np.abs(p_te - p_ours[te]))))
    print("%-22s %-13s %-17s %-17s %-17s %.2g" % ("", "scikit-learn", fmt(auc), fmt(ap), fmt(f1),
                                                  worst))
if not have_sklearn:
    print("(scikit-learn not installed: no reference run; as root this script installs "
          "python3-sklearn)")
else:
    import sklearn
    print("scikit-learn %s: LogisticRegression(C = 1 / l2, class_weight as recorded, newton-cg,"
          " tol 1e-10) on StandardScaler'd inputs fitted on the same 4 folds;" % sklearn.__version__)
    print("max |dP| = largest difference of an out-of-fold probability between the two")
PY
printf 'pdmctl: 2 trainings + 2 x 5-fold cross-validations in %.2f s\n' "$(echo "$end - $start" | bc 2>/dev/null || python3 -c "print($end - $start)")"
cpu=$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | sed 's/.*: //' || true)
echo "machine: $(uname -srm), $(nproc) cores${cpu:+, $cpu}"
