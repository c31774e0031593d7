#!/usr/bin/env bash
# `cmake --install` into a fresh prefix gives what a packager or a field engineer expects: the
# three programs (runnable from the prefix), the .proto a backend needs to decode what the agent
# sends (identical to the source), and the example config with its model, which passes
# `pdm-agent --check` as shipped once the TLS files it names exist.
source "$(dirname "$0")/lib.sh"
: "${PDM_BUILD_DIR:?run through ctest}"
it_setup install
P="$T/prefix"

cmake --install "$PDM_BUILD_DIR" --prefix "$P" >"$T/install.log" 2>&1 ||
    fail "cmake --install failed: $(tail -n 5 "$T/install.log")"

for b in pdm-agent pdmctl pdm-sim; do
    [ -x "$P/bin/$b" ] || fail "bin/$b is not installed"
    v=$(run_target "$P/bin/$b" --version) || fail "installed $b --version exited $?"
    printf '%s\n' "$v" | grep -Eq "^$b [0-9]+\.[0-9]+\.[0-9]+$" || fail "$b --version printed '$v'"
done
echo "ok: bin/pdm-agent, bin/pdmctl, bin/pdm-sim installed and report their version"

S="$P/share/pdm-agent"
[ -f "$S/proto/pdm/v1/pdm.proto" ] || fail "share/pdm-agent/proto/pdm/v1/pdm.proto is missing"
cmp -s "$S/proto/pdm/v1/pdm.proto" "$PDM_SOURCE_DIR/proto/pdm/v1/pdm.proto" ||
    fail "the installed pdm.proto differs from proto/pdm/v1/pdm.proto"
cmp -s "$S/examples/agent.conf" "$PDM_SOURCE_DIR/examples/agent.conf" ||
    fail "examples/agent.conf is missing or differs from the source"
cmp -s "$S/examples/models/compressor.model" "$PDM_SOURCE_DIR/examples/models/compressor.model" ||
    fail "examples/models/compressor.model is missing or differs from the source"
echo "ok: pdm.proto and the examples installed unchanged"

# The shipped example, copied where a user would edit it. Without its TLS files --check must
# refuse it (so the positive check below proves something); with them it must pass.
cp -r "$S/examples" "$T/site"
rc=0
run_target "$P/bin/pdm-agent" --check -c "$T/site/agent.conf" >"$T/check-notls.out" 2>&1 || rc=$?
[ "$rc" -ne 0 ] || fail "--check passed although tls/ca.pem does not exist"
grep -q "tls/ca.pem" "$T/check-notls.out" ||
    fail "--check without TLS files does not name them: $(cat "$T/check-notls.out")"
"$PDM_SOURCE_DIR/scripts/pki.sh" "$T/site/tls" gw-0001 >/dev/null 2>&1 ||
    fail "scripts/pki.sh could not make the TLS files"
out=$(run_target "$P/bin/pdm-agent" --check -c "$T/site/agent.conf" 2>&1) ||
    fail "--check on the installed example failed: $out"
[ "$out" = "configuration OK" ] || fail "unexpected --check output: $out"
echo "ok: the installed example config passes pdm-agent --check"

# The installed proto is enough to decode: protoc accepts it from the prefix alone.
if command -v protoc >/dev/null; then
    protoc -I "$S/proto" --descriptor_set_out="$T/pdm.desc" "$S/proto/pdm/v1/pdm.proto" ||
        fail "protoc rejects the installed pdm.proto"
fi
echo "PASS"
