#!/usr/bin/env bash
# pdmctl report on a real buffer, checked in a real browser: pdm-sim degrades a compressor, the
# agent raises WARNING then CRITICAL, then the vibration sensor freezes (flagged readings and a
# SENSOR_FAULT). The report is built from the agent's SQLite file while the agent runs, then
# rendered by headless Chromium: the rendered DOM (with the layout measured in the browser) must
# show plots with data, the thresholds, the RAISED alert, the health score and the escaped
# sensor unit, and a screenshot must be a non-blank image of the window's size.
# Exit 77 when Chromium cannot run here.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/agent_env.sh"
it_setup report

CHROMIUM=$(command -v chromium || command -v chromium-browser || true)
[ -n "$CHROMIUM" ] || { echo "SKIP: chromium is not installed (scripts/deps.sh --test)"; exit 77; }
# Its own profile and HOME under the test folder; --no-sandbox because tests run as root.
export HOME="$T/chromium-home"
mkdir -p "$HOME"
chrome() {
    timeout 60 "$CHROMIUM" --headless --disable-gpu --no-sandbox --no-first-run \
        --user-data-dir="$T/chromium-profile" --disable-extensions --hide-scrollbars \
        --force-device-scale-factor=1 "$@" 2>>"$T/chromium.log"
}
echo '<!DOCTYPE html><p id="ok">ok</p>' >"$T/probe.html"
chrome --dump-dom "file://$T/probe.html" | grep -q 'id="ok"' ||
    { echo "SKIP: chromium cannot run here (see $T/chromium.log)"; tail -5 "$T/chromium.log"; exit 77; }

pki_make gw-test
MQTT_PORT=$(free_port)
SIM_PORT=$(free_port)
broker_start "$MQTT_PORT"
write_agent_conf "$T/agent.conf" "$MQTT_PORT" "$SIM_PORT"
# Vibration: frozen for 2 s = flagged (quality 2) and a SENSOR_FAULT. Power gets a unit with
# markup characters: the page must show them as text.
python3 - "$T/agent.conf" <<'PY'
import sys
p = sys.argv[1]
s = open(p).read()
s = s.replace("[sensor comp_vib]\n", "[sensor comp_vib]\nfrozen_s = 2\nunit = mm/s\n")
s = s.replace("[sensor comp_power]\n", "[sensor comp_power]\nunit = <b>W</b>&\"'\n")
open(p, "w").write(s)
PY
UNIT='<b>W</b>&"'"'"
DB="$T/data/pdm-agent.db"
q() { python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(sys.argv[2]).fetchone()[0])' "$DB" "$1" 2>/dev/null; }

start_bg sim "$PDM_SIM" --port "$SIM_PORT" --healthy-s 4 --degrade-s 8 --seed 1 --quiet
SIM_PID=$LAST_PID
wait_for 10 port_open "$SIM_PORT" || fail "pdm-sim did not listen"
start_bg agent "$PDM_AGENT" -c "$T/agent.conf"
AGENT_PID=$LAST_PID

critical() { [ "$(q 'SELECT COUNT(*) FROM alerts WHERE severity = 2')" -ge 1 ]; }
wait_for 90 critical || fail "no CRITICAL alert in the store within 90 s"
# a few more scores in the failing state, for a probability line worth checking
scores() { [ "$(q 'SELECT COUNT(*) FROM rows WHERE kind = 1')" -ge 30 ]; }
wait_for 60 scores || fail "fewer than 30 scores stored"
# The device now reads constant values: frozen readings are flagged, vibration faults.
stop_pid "$SIM_PID"
start_bg sim2 "$PDM_SIM" --port "$SIM_PORT" --scenario failing --freeze 0 --seed 1 --quiet
wait_for 10 port_open "$SIM_PORT" || fail "pdm-sim did not listen again"
vib_fault() { [ "$(q "SELECT COUNT(*) FROM alerts WHERE asset = 'sensor:comp_vib' AND state = 1")" -ge 1 ]; }
wait_for 60 vib_fault || fail "no SENSOR_FAULT for the frozen vibration sensor"
wait_for 10 sh -c "[ \$(python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(\"SELECT COUNT(*) FROM rows WHERE quality = 2\").fetchone()[0])' '$DB') -gt 5 ]" ||
    fail "no frozen readings stored"

# ---- the report, built while the agent keeps writing
"$PDMCTL" report compressor-1 -c "$T/agent.conf" -o "$T/report.html" 2>"$T/report.err" ||
    fail "pdmctl report failed: $(cat "$T/report.err")"
cat "$T/report.err"
"$PDMCTL" report compressor-1 -c "$T/agent.conf" --json --days 2 >"$T/report.json" ||
    fail "pdmctl report --json failed"
kill -0 "$AGENT_PID" || fail "the agent stopped while the report was read"
size=$(stat -c %s "$T/report.html")
echo "report.html: $size bytes"
[ "$size" -lt 2000000 ] || fail "report is $size bytes"
# Self-contained: nothing is fetched from anywhere.
grep -Eiq '(src|href)=|<script|@import|url\(' "$T/report.html" && fail "the page refers to outside resources or scripts"

# ---- rendering: the DOM after layout, with measurements taken by the browser. The probe
# script is added to a copy only; the report itself has no scripts.
cat >"$T/probe.js" <<'JS'
for (const p of document.querySelectorAll("path.series")) {
  const b = p.getBBox(); p.dataset.bboxW = b.width.toFixed(1); p.dataset.bboxH = b.height.toFixed(1);
  p.dataset.len = p.getTotalLength().toFixed(1);
  p.dataset.shownW = p.getBoundingClientRect().width.toFixed(1);
}
const h = document.getElementById("health-score"), r = h.getBoundingClientRect();
h.dataset.rectW = r.width.toFixed(0); h.dataset.rectH = r.height.toFixed(0);
h.dataset.bg = getComputedStyle(h).backgroundColor; h.dataset.text = h.innerText;
for (const t of document.querySelectorAll("#alert-table tbody tr"))
  t.dataset.shownH = t.getBoundingClientRect().height.toFixed(0);
JS
python3 - "$T/report.html" "$T/probe.js" "$T/probe-report.html" <<'PY'
import sys
page, js, out = sys.argv[1:4]
html = open(page, encoding="utf-8").read()
open(out, "w", encoding="utf-8").write(html.replace("</body>", "<script>" + open(js).read() + "</script></body>"))
PY
chrome --dump-dom --virtual-time-budget=5000 "file://$T/probe-report.html" >"$T/dom.html" ||
    fail "chromium could not render the report"
[ -s "$T/dom.html" ] || fail "empty DOM dump"
chrome --screenshot="$T/shot.png" --window-size=1200,2400 "file://$T/report.html" >/dev/null ||
    fail "chromium could not take a screenshot"

python3 - "$T/dom.html" "$T/report.json" "$T/shot.png" "$UNIT" <<'PY' || fail "rendered report check failed"
import json, re, struct, sys, zlib
from html.parser import HTMLParser

dom_file, json_file, png_file, unit = sys.argv[1:5]

class Dom(HTMLParser):
    """Keeps every element with its attributes, its ancestors and its text."""
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.els, self.stack = [], []
    def handle_starttag(self, tag, attrs):
        el = {"tag": tag, "a": dict(attrs), "text": "", "up": list(self.stack)}
        self.els.append(el)
        if tag not in ("br", "meta", "line", "rect", "path", "img", "input"):
            self.stack.append(el)
    def handle_startendtag(self, tag, attrs):
        self.els.append({"tag": tag, "a": dict(attrs), "text": "", "up": list(self.stack)})
    def handle_endtag(self, tag):
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i]["tag"] == tag:
                del self.stack[i:]
                break
    def handle_data(self, d):
        for el in self.stack:
            el["text"] += d

d = Dom()
d.feed(open(dom_file, encoding="utf-8").read())
def find(pred): return [e for e in d.els if pred(e)]
def inside(e, pred): return any(pred(u) for u in e["up"])
errors = []
def check(cond, msg):
    if not cond: errors.append(msg)

# plots: one per sensor-fed input plus the probability, each with a drawn line
figs = find(lambda e: e["tag"] == "figure" and "plot" in e["a"].get("class", ""))
names = [f["a"].get("data-input", "probability") for f in figs]
check(names == ["temperature", "vibration", "power", "probability"], f"plots: {names}")
for f in figs:
    fid = f["a"]["id"]
    paths = find(lambda e: e["tag"] == "path" and e["a"].get("class") == "series" and inside(e, lambda u: u is f))
    check(len(paths) == 1, f"{fid}: {len(paths)} series paths")
    for p in paths:
        pts = len(re.findall(r"[ML]\s*-?[0-9.]+[ ,]-?[0-9.]+", p["a"].get("d", "")))
        a = p["a"]
        print(f"{fid}: {pts} points in d, data-points {a.get('data-points')}, "
              f"bbox {a.get('data-bbox-w')} x {a.get('data-bbox-h')}, length {a.get('data-len')}, "
              f"on screen {a.get('data-shown-w')} px wide")
        check(pts >= 20, f"{fid}: only {pts} points drawn")
        check(int(a.get("data-points", 0)) >= pts, f"{fid}: data-points below the drawn points")
        check(float(a.get("data-bbox-w", 0)) > 300, f"{fid}: the line spans {a.get('data-bbox-w')} units")
        check(float(a.get("data-len", 0)) > 300, f"{fid}: rendered length {a.get('data-len')}")
        check(float(a.get("data-shown-w", 0)) > 300, f"{fid}: {a.get('data-shown-w')} px on screen")
    ticks = find(lambda e: e["tag"] == "text" and "tick" in e["a"].get("class", "") and inside(e, lambda u: u is f))
    check(any(re.search(r"\d{4}-\d{2}-\d{2}", t["text"]) for t in ticks), f"{fid}: no date on the time axis")
    check(any(re.search(r"\d{2}:\d{2}", t["text"]) for t in ticks), f"{fid}: no time on the time axis")

# thresholds of the model on the probability plot
for cls, v in (("threshold warning", 0.5), ("threshold critical", 0.8)):
    g = find(lambda e: e["tag"] == "g" and e["a"].get("class") == cls)
    check(len(g) == 1 and abs(float(g[0]["a"]["data-value"]) - v) < 1e-9, f"{cls} line missing or wrong")

# the escaped unit: an attribute and a text, never markup
power = [f for f in figs if f["a"].get("data-input") == "power"][0]
check(power["a"].get("data-unit") == unit, f"data-unit is {power['a'].get('data-unit')!r}")
check(unit in power["text"], "the unit is not shown as text in the power plot's caption")
check(not find(lambda e: e["tag"] == "b" and e["text"] == "W"), "the unit's markup became an element")

# the health score, shown and sized by the browser
h = find(lambda e: e.get("a", {}).get("id") == "health-score")
check(len(h) == 1, "no health score")
h = h[0]["a"]
health = int(h.get("data-health", "-1"))
print(f"health score {health}: {h.get('data-rect-w')} x {h.get('data-rect-h')} px, background {h.get('data-bg')}, text {h.get('data-text')!r}")
check(0 <= health <= 100, f"health {health}")
check(int(h.get("data-rect-h", 0)) >= 40 and int(h.get("data-rect-w", 0)) >= 60, "health score not laid out")
check(h.get("data-text", "").startswith(str(health)), "health score text")
rule = find(lambda e: e.get("a", {}).get("id") == "visit-rule")
check(rule and "below 60" in rule[0]["text"], "the preventive-visit rule is not shown")
check(rule and rule[0]["a"].get("data-visit") == ("due" if health < 60 else "not-due"), "visit rule state")

# the alert table: RAISED fault risk with its top inputs, the escalation, the sensor fault
rows = find(lambda e: e["tag"] == "tr" and "data-state" in e["a"])
for r in rows: print("alert row:", re.sub(r"\s+", " ", r["text"])[:160])
raised = [r for r in rows if r["a"]["data-state"] == "RAISED" and r["a"]["data-kind"] == "FAULT_RISK"]
check(len(raised) >= 1, "no RAISED fault-risk alert in the table")
check(all(int(r["a"].get("data-shown-h", 0)) > 10 for r in rows), "an alert row is not laid out")
check(raised and "WARNING" in raised[-1]["text"], "the RAISED row lacks its severity")
check(raised and re.search(r"(temperature|vibration|power) [0-9.]+ \S+, z \+[0-9.]+, share \+[0-9.]+", raised[-1]["text"]), "RAISED row lacks its top inputs")
check(any(r["a"]["data-state"] == "UPDATED" and "CRITICAL" in r["text"] for r in rows), "no UPDATED CRITICAL row")
check(any(r["a"]["data-kind"] == "SENSOR_FAULT" and "comp_vib" in r["text"] for r in rows), "no SENSOR_FAULT row for comp_vib")

# data quality: frozen vibration readings, counted and marked on the plot
q = find(lambda e: e["tag"] == "tr" and e["a"].get("data-sensor") == "comp_vib")
check(q and int(q[0]["a"]["data-flagged"]) > 0, "no flagged readings for comp_vib in the quality table")
vib = [f for f in figs if f["a"].get("data-input") == "vibration"][0]
check(find(lambda e: e["tag"] == "path" and e["a"].get("class") == "flagged" and inside(e, lambda u: u is vib)), "no flagged marks on the vibration plot")
check(find(lambda e: e.get("a", {}).get("id") == "no-counters"), "maintenance section missing")
check(find(lambda e: e.get("a", {}).get("id") == "buffer-table"), "buffer section missing")

# the JSON holds the same data
j = json.load(open(json_file))
check(j["asset"] == "compressor-1" and j["days"] == 2, "json header")
check([i["input"] for i in j["inputs"]] == ["temperature", "vibration", "power", "age"], "json inputs")
check(j["inputs"][2]["unit"] == unit, "json unit")
check(j["health"]["score"] is not None and 0 <= j["health"]["score"] <= 100, "json health")
check(j["model"]["warning"] == 0.5 and j["model"]["critical"] == 0.8, "json thresholds")
check(any(e["state"] == "RAISED" and e["kind"] == "FAULT_RISK" and e["top_inputs"] for e in j["alerts"]["events"]), "json: no RAISED alert with inputs")
for i in j["inputs"][:3]:
    c = i["columns"]
    check(len(c["t_ms"]) >= 20 and len(c["t_ms"]) == len(c["min"]) == len(c["max"]) == len(c["n"]), f"json columns of {i['input']}")
    check(all(a is None or a <= b for a, b in zip(c["min"], c["max"])), "json min > max")
check(j["inputs"][1]["frozen"] > 0, "json: no frozen vibration readings")
check(j["maintenance"]["source"] is None and j["maintenance"]["counters"] == [], "json maintenance")
check(j["buffer"]["rows"] > 0, "json buffer")

# the screenshot: a PNG of the window's size that is not blank
raw = open(png_file, "rb").read()
check(raw[:8] == b"\x89PNG\r\n\x1a\n", "screenshot is not a PNG")
pos, idat, w = 8, b"", 0
while pos < len(raw):
    n, typ = struct.unpack(">I4s", raw[pos:pos + 8])
    body = raw[pos + 8:pos + 8 + n]
    if typ == b"IHDR":
        w, hh, depth, ctype = struct.unpack(">IIBB", body[:10])
    elif typ == b"IDAT":
        idat += body
    pos += 12 + n
print(f"screenshot {w} x {hh}, depth {depth}, colour type {ctype}")
check((w, hh) == (1200, 2400), f"screenshot is {w} x {hh}")
check(depth == 8 and ctype in (2, 6), "unexpected PNG format")
bpp = 4 if ctype == 6 else 3
data, stride = zlib.decompress(idat), w * bpp
prev, pix = bytearray(stride), []
for y in range(hh):  # undo the PNG row filters
    f, row = data[y * (stride + 1)], bytearray(data[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
    for x in range(stride):
        a = row[x - bpp] if x >= bpp else 0
        b, c = prev[x], prev[x - bpp] if x >= bpp else 0
        if f == 1: row[x] = (row[x] + a) & 255
        elif f == 2: row[x] = (row[x] + b) & 255
        elif f == 3: row[x] = (row[x] + (a + b) // 2) & 255
        elif f == 4:
            p = a + b - c; pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            row[x] = (row[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    pix.append(row)
    prev = row
colours, dark, red = set(), 0, 0
for y in range(0, hh, 2):
    row = pix[y]
    for x in range(0, stride, bpp * 2):
        r, g, b = row[x], row[x + 1], row[x + 2]
        colours.add((r, g, b))
        dark += r + g + b < 300
        red += r > 150 and g < 80 and b < 80
total = (hh // 2) * (w // 2)
print(f"screenshot: {len(colours)} colours, {100 * dark / total:.1f} % dark, {red} strongly red samples")
check(len(colours) > 50, "screenshot has almost no colours: blank?")
check(dark / total > 0.002, "screenshot has no text or lines")
check(health >= 60 or red > 500, "a health score below 60 is not shown on red")

if errors:
    print("\n".join("FAIL: " + e for e in errors))
    sys.exit(1)
PY

# ---- the command line: mistakes are named
set +e
"$PDMCTL" report nosuch -c "$T/agent.conf" >/dev/null 2>"$T/e1"; rc1=$?
"$PDMCTL" report compressor-1 -c "$T/agent.conf" --days 0 >/dev/null 2>"$T/e2"; rc2=$?
"$PDMCTL" report compressor-1 -c "$T/agent.conf" --db "$T/nowhere.db" >/dev/null 2>"$T/e3"; rc3=$?
set -e
[ $rc1 = 2 ] && grep -q 'compressor-1' "$T/e1" || fail "unknown asset: exit $rc1, $(cat "$T/e1")"
[ $rc2 = 2 ] && grep -q -- '--days' "$T/e2" || fail "--days 0: exit $rc2, $(cat "$T/e2")"
[ $rc3 = 1 ] && grep -q 'nowhere.db' "$T/e3" || fail "missing database: exit $rc3, $(cat "$T/e3")"

# ---- with the agent stopped the file is read, not changed
stop_pid "$AGENT_PID" TERM
sum1=$(sha256sum "$DB" | cut -d' ' -f1)
"$PDMCTL" report compressor-1 -c "$T/agent.conf" --json >"$T/report2.json" || fail "report after the agent stopped"
sum2=$(sha256sum "$DB" | cut -d' ' -f1)
[ "$sum1" = "$sum2" ] || fail "pdmctl report changed the database"
python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); assert j["alerts"]["total"] >= 3, j["alerts"]["total"]' "$T/report2.json" ||
    fail "report after the stop lacks the alerts"
echo "PASS"
