#!/usr/bin/env bash
# The man pages in docs/man/ render without a warning and still say what the code does:
#  - groff -ww and man --warnings (as lintian runs it) are silent on every page;
#  - every key the configuration reader accepts (the key tables in agent/config*.c, the model,
#    input and train keys in models/model_file.c) is an item of its section in pdm-agent.conf(5), integer keys with
#    the range the table gives, and every item there is a key the reader accepts;
#  - every subcommand `pdmctl --help` lists has its subsection in pdmctl(1), mentioning every
#    option its --help shows, and every option an item there documents is one --help shows;
#    the same for the OPTIONS of pdm-agent(8) and pdm-sim(1) against their --help;
#  - the example configuration in pdm-agent.conf(5) passes `pdm-agent --check`.
# The lists come from the sources and the binaries, never from a copy in this test.
source "$(dirname "$0")/lib.sh"
it_setup manpages
M="$PDM_SOURCE_DIR/docs/man"

for tool in groff man python3; do
    if ! command -v "$tool" >/dev/null; then
        echo "SKIP: $tool is not installed (scripts/deps.sh --test installs groff-base, man-db)"
        exit 77
    fi
done

pages=(pdm-agent.8 pdmctl.1 pdm-agent.conf.5 pdm-sim.1)
for p in "${pages[@]}"; do
    [ -f "$M/$p" ] || fail "docs/man/$p is missing"
done

# ---- (a) rendering -------------------------------------------------------------------------
for p in "$M"/*.[1-8]; do
    name=$(basename "$p")
    LC_ALL=C.UTF-8 groff -ww -mandoc -z "$p" 2>"$T/groff-$name.err" ||
        fail "groff failed on $name: $(cat "$T/groff-$name.err")"
    [ ! -s "$T/groff-$name.err" ] || fail "groff -ww warns on $name: $(cat "$T/groff-$name.err")"
    # lintian's check: man-db's pipeline (preconv, tbl, ...) at 80 columns
    LC_ALL=C.UTF-8 MANROFFSEQ='' MANWIDTH=80 man --warnings -E UTF-8 -l -Tutf8 -Z "$p" \
        >/dev/null 2>"$T/man-$name.err" || fail "man failed on $name: $(cat "$T/man-$name.err")"
    [ ! -s "$T/man-$name.err" ] || fail "man --warnings warns on $name: $(cat "$T/man-$name.err")"
    # and it reads as text: the NAME line is there
    out=$(MANWIDTH=80 man -l "$p" 2>/dev/null || true)
    printf '%s\n' "$out" | grep -q "^NAME" || fail "$name renders without a NAME section"
done
echo "ok: ${#pages[@]} pages render without warnings (groff -ww, man --warnings)"

# ---- (b) keys and options ------------------------------------------------------------------
"$PDM_AGENT" --help >"$T/pdm-agent.help"
"$PDM_SIM" --help >"$T/pdm-sim.help"
"$PDMCTL" --help >"$T/pdmctl.help"
mkdir -p "$T/pdmctl-help"
# the subcommands as pdmctl itself lists them: "  NAME  summary" under "commands:"
subs=$(sed -n '/^commands:/,/^$/p' "$T/pdmctl.help" | sed -n 's/^  \([a-z][a-z0-9-]*\)  .*/\1/p')
[ -n "$subs" ] || fail "cannot read the subcommands from pdmctl --help: $(cat "$T/pdmctl.help")"
for s in $subs; do
    "$PDMCTL" "$s" --help >"$T/pdmctl-help/$s" 2>&1 || fail "pdmctl $s --help exited $?"
done

# shellcheck disable=SC2086 # one argument per subcommand
python3 - "$PDM_SOURCE_DIR" "$T" $subs <<'PY' || fail "the man pages and the code disagree (above)"
import os, re, sys

src, tmp, subs = sys.argv[1], sys.argv[2], sys.argv[3:]
man = os.path.join(src, "docs", "man")
problems = []


def norm(text):
    """roff source -> the characters a reader sees (fonts, escapes and quotes removed)."""
    text = re.sub(r"\\f(\[[^]]*\]|\(..|.)", "", text)
    for a, b in (("\\-", "-"), ("\\(aq", "'"), ("\\(mu", "x"), ("\\(<=", "<="), ("\\(bu", ""),
                 ("\\(em", "--"), ("\\&", ""), ("\\c", ""), ("\\%", ""), ("\\e", "\\")):
        text = text.replace(a, b)
    return text


def parse_page(name):
    """[(level, title, [lines])]: every .SH and .SS with the source lines under it."""
    secs = []
    with open(os.path.join(man, name)) as f:
        for line in f.read().splitlines():
            m = re.match(r'^\.(SH|SS)\s+"?(.*?)"?\s*$', line)
            if m:
                secs.append((m.group(1), norm(m.group(2)), []))
            elif secs:
                secs[-1][2].append(line)
    return secs


def sh_lines(secs, title):
    """The lines of .SH title, its .SS subsections included."""
    out, inside = [], False
    for level, t, lines in secs:
        if level == "SH":
            inside = t == title
        if inside:
            out += lines
    return out


def items(lines):
    """[(names, text)]: each .TP item, with the names of its heading lines (.TP and .TQ) and the
    text of the item."""
    out, cur, expect_head = [], None, False
    for line in lines:
        if line.startswith((".TP", ".TQ")):
            if line.startswith(".TP") or cur is None:
                cur = ([], [])
                out.append(cur)
            expect_head = True
            continue
        if re.match(r"^\.(SS|SH|PP|IP|RS|RE)\b", line):
            cur, expect_head = None, False
            continue
        if cur is None:
            continue
        if expect_head:
            cur[0].append(line)
            expect_head = False
        else:
            cur[1].append(line)
    return [(heads, norm(" ".join(heads + text))) for heads, text in out]


def read(path):
    with open(os.path.join(src, path)) as f:
        return f.read()


def strings(body):
    return re.findall(r'"([^"]*)"', body)


# ---- configuration keys: from the reader's own tables ----------------------------------------
# agent/config_sections.c ([agent], [mqtt], [bus], [sensor], [asset]) and agent/config.c
# ([device], profile files): one line per key, {"key", V_KIND, FLAGS, MIN, MAX, AT(...), DEFAULT}
config_files = sorted(f for f in os.listdir(os.path.join(src, "agent"))
                      if re.match(r"config\w*\.c$", f))
config_c = "\n".join(read(os.path.join("agent", f)) for f in config_files)
model_c = read("models/model_file.c")
keys = {}    # section kind -> {key: (min, max) or None}
origin = {}  # section kind -> where the keys come from, for messages
for m in re.finditer(r"static const struct key_def (\w+)_keys\[\] = \{(.*?)\n\};", config_c, re.S):
    kind, body = m.group(1), m.group(2)
    entries = re.findall(r'\{\s*"([a-z0-9_]+)",\s*(V_\w+),\s*[^,]+?,\s*(-?\d+),\s*(-?\d+),\s*AT\(',
                         body)
    if len(entries) != body.count("AT(") or not entries:
        problems.append(f"agent/config*.c: cannot read the table {kind}_keys "
                        f"({len(entries)} entries parsed, {body.count('AT(')} present): "
                        "update tests/integration/it_manpages.sh")
    keys[kind] = {k: ((int(lo), int(hi)) if t == "V_INT" else None) for k, t, lo, hi in entries}
    origin[kind] = f"agent/config*.c {kind}_keys"
for kind in ("agent", "mqtt", "bus", "sensor", "asset", "device"):
    if kind not in keys:
        problems.append(f"agent/config*.c: no table {kind}_keys: update the test")
for kind in ("model", "input", "train"):
    m = re.search(r"\b%s_keys\[\] = \{([^}]*)\}" % kind, model_c)
    if not m or not strings(m.group(1)):
        problems.append(f"models/model_file.c: cannot find {kind}_keys: update the test")
        continue
    keys[kind] = {k: None for k in strings(m.group(1))}
    origin[kind] = f"models/model_file.c {kind}_keys"

# every kind of section the readers accept needs its subsection
kinds = []
for text, pattern in ((config_c, r"section_kinds\[\] = \{([^}]*)\}"),
                      (config_c, r"\bkinds\[\] = \{([^}]*)\}"),
                      (model_c, r"section_kinds\[\] = \{([^}]*)\}")):
    m = re.search(pattern, text)
    if not m:
        problems.append(f"cannot find {pattern} in the sources: update the test")
        continue
    kinds += strings(m.group(1))

conf = parse_page("pdm-agent.conf.5")
titles = [t for level, t, _ in conf if level == "SS"]
for kind in kinds:
    if not any(t.startswith("[" + kind) for t in titles):
        problems.append(f"pdm-agent.conf.5: no subsection for the [{kind}] sections the reader "
                        "accepts")
for kind, accepted in keys.items():
    secs = [lines for level, t, lines in conf if level == "SS" and t.startswith("[" + kind)]
    if len(secs) != 1:
        problems.append(f"pdm-agent.conf.5: expected one subsection [{kind} ...], found "
                        f"{len(secs)}")
        continue
    documented = {}
    for heads, text in items(secs[0]):
        for h in heads:
            m = re.match(r'^\.B[IR]?\s+"?([a-z0-9_]+)[\s"]', h + " ")
            if m:
                documented[norm(m.group(1))] = text
    for key, rng in accepted.items():
        if key not in documented:
            problems.append(f"pdm-agent.conf.5 [{kind}]: key '{key}' ({origin[kind]}) is not "
                            "documented")
        elif rng:
            for n in rng:
                if not re.search(r"(?<![\d.])%d(?![\d])" % n, documented[key]):
                    problems.append(f"pdm-agent.conf.5 [{kind}]: '{key}' does not give its range "
                                    f"{rng[0]} to {rng[1]} ({origin[kind]}): {documented[key]}")
                    break
    for key in documented:
        if key not in accepted:
            problems.append(f"pdm-agent.conf.5 [{kind}]: documents '{key}', which "
                            f"{origin[kind]} does not accept")

# ---- options: from the binaries' --help --------------------------------------------------------
OPT = r"(?<![\w-])(--[a-z][a-z0-9-]*|-[A-Za-z])(?![\w-])"


def help_opts(path):
    with open(path) as f:
        return set(re.findall(OPT, f.read()))


def check_options(page, where, lines, helped, extra=()):
    """Every option of --help is mentioned in lines; every option an item documents is one
    --help shows (or one of extra)."""
    text = norm("\n".join(lines))
    mentioned = set(re.findall(OPT, text))
    for o in sorted(helped - mentioned - {"-h", "--help"}):
        problems.append(f"{page} {where}: option {o} (in its --help) is not documented")
    for heads, _ in items(lines):
        for o in re.findall(OPT, norm(" ".join(h for h in heads if h.startswith(".B")))):
            if o not in helped and o not in extra:
                problems.append(f"{page} {where}: documents option {o}, which --help does not "
                                "show")


for page, binary in (("pdm-agent.8", "pdm-agent"), ("pdm-sim.1", "pdm-sim")):
    secs = parse_page(page)
    check_options(page, "OPTIONS", sh_lines(secs, "OPTIONS"),
                  help_opts(os.path.join(tmp, binary + ".help")), {"--help"})

ctl = parse_page("pdmctl.1")
sub_secs = {t[len("pdmctl "):]: lines for level, t, lines in ctl
            if level == "SS" and t.startswith("pdmctl ")}
for s in subs:
    if s not in sub_secs:
        problems.append(f"pdmctl.1: no subsection 'pdmctl {s}' for that subcommand")
        continue
    check_options("pdmctl.1", f"'pdmctl {s}'", sub_secs[s],
                  help_opts(os.path.join(tmp, "pdmctl-help", s)), {"--help"})
for s in sub_secs:
    if s not in subs:
        problems.append(f"pdmctl.1: documents 'pdmctl {s}', which pdmctl --help does not list")
check_options("pdmctl.1", "OPTIONS", sh_lines(ctl, "OPTIONS"),
              help_opts(os.path.join(tmp, "pdmctl.help")), {"-h", "--help", "--version"})

for p in problems:
    print("FAIL:", p)
print(f"checked {sum(len(v) for v in keys.values())} configuration keys in {len(keys)} sections, "
      f"{len(subs)} pdmctl subcommands")
sys.exit(1 if problems else 0)
PY
echo "ok: every key and option the code accepts is documented, and nothing else is"

# ---- (c) the example configuration ------------------------------------------------------------
E="$T/example"
mkdir -p "$E/models" "$E/tls"
cp "$PDM_SOURCE_DIR/examples/models/compressor.model" "$E/models/"
cp -r "$PDM_SOURCE_DIR/profiles" "$E/profiles"
touch "$E/tls/ca.pem" "$E/tls/device.pem" "$E/tls/device.key"
# the first example under EXAMPLES, as a reader would copy it
sed -n '/^\.SH EXAMPLES/,/^\.SH /p' "$M/pdm-agent.conf.5" |
    awk '/^\.EX/ { n++; on = 1; next } /^\.EE/ { on = 0 } on && n == 1' |
    sed 's/\\-/-/g' >"$E/agent.conf"
grep -q '^\[agent\]' "$E/agent.conf" || fail "no example configuration found in pdm-agent.conf.5"
out=$("$PDM_AGENT" --check -c "$E/agent.conf" 2>&1) ||
    fail "the example in pdm-agent.conf.5 does not pass pdm-agent --check: $out"
[ "$out" = "configuration OK" ] || fail "unexpected --check output for the example: $out"
echo "ok: the example configuration in pdm-agent.conf.5 passes pdm-agent --check"
echo "PASS"
