#!/usr/bin/env bash
# Shared helpers for the integration tests. Source it, then call it_setup.
#
# Every process started through start_bg is killed when the test exits; every wait is bounded.
# Network: 127.0.0.1 only.
set -euo pipefail

: "${PDM_SOURCE_DIR:?run through ctest}"
: "${PDM_TEST_TMP:=/tmp/pdm-test}"

IT_PIDS=()

# Cross builds (scripts/cross.sh) run the target's programs under qemu-user: $PDM_AGENT etc. are
# wrappers then, and PDM_EMULATOR names the emulator (empty in a native build).
: "${PDM_EMULATOR:=}"

# run_target PROGRAM ARGS...: runs a program built by this build tree that is not behind a
# wrapper (e.g. one installed by cmake --install), under the emulator in a cross build.
run_target() {
    if [ -n "$PDM_EMULATOR" ]; then
        # word splitting on purpose: the emulator may come with options
        # shellcheck disable=SC2086
        $PDM_EMULATOR "$@"
    else
        "$@"
    fi
}

it_setup() { # NAME
    T="$PDM_TEST_TMP/$1"
    rm -rf "$T"
    mkdir -p "$T"
    trap it_cleanup EXIT
    echo "test folder: $T"
}

it_cleanup() {
    local rc=$?
    for pid in "${IT_PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${IT_PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    if [ $rc -ne 0 ]; then
        echo "---- FAILED ($rc); logs in $T:"
        for f in "$T"/*.log; do
            [ -f "$f" ] || continue
            echo "==== $f (last 40 lines)"
            tail -n 40 "$f"
        done
    fi
    exit $rc
}

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

# wait_for SECONDS COMMAND...: runs COMMAND every 0.1 s until it succeeds; 1 on timeout.
wait_for() {
    local limit=$1
    shift
    local deadline=$((SECONDS + limit))
    while ! "$@" >/dev/null 2>&1; do
        if [ $SECONDS -ge $deadline ]; then
            return 1
        fi
        sleep 0.1
    done
}

# start_bg NAME COMMAND...: runs COMMAND in the background, output in $T/NAME.log; sets LAST_PID.
# With IT_NS set, COMMAND runs inside that network namespace (its own loopback).
start_bg() {
    local name=$1
    shift
    if [ -n "${IT_NS:-}" ]; then
        set -- ip netns exec "$IT_NS" "$@"
    fi
    "$@" >"$T/$name.log" 2>&1 &
    LAST_PID=$!
    IT_PIDS+=("$LAST_PID")
}

# stop_pid PID [SIGNAL]: signals and reaps (bounded: SIGKILL after 10 s).
stop_pid() {
    local pid=$1 sig=${2:-TERM}
    kill "-$sig" "$pid" 2>/dev/null || return 0
    local i
    for i in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# free_port: prints a TCP port on 127.0.0.1 that nothing listens on right now.
free_port() {
    python3 - <<'PY' 2>/dev/null || echo $((20000 + RANDOM % 20000))
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
PY
}

port_open() { # PORT
    if [ -n "${IT_NS:-}" ]; then
        ip netns exec "$IT_NS" bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
    else
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
    fi
}

# pki_make: throwaway CA and certificates in $T/tls (see scripts/pki.sh).
pki_make() {
    "$PDM_SOURCE_DIR/scripts/pki.sh" "$T/tls" "${1:-gw-test}" >/dev/null
}

# broker_start PORT [rogue|persist]: mosquitto on 127.0.0.1:PORT requiring client certificates
# signed by $T/tls/ca.pem. "rogue": the broker presents a certificate from an unrelated CA.
# "persist": sessions and queued QoS 1 messages survive a restart (saved in $T on exit).
broker_start() {
    local port=$1 srv=server persist=false
    [ "${2:-}" = rogue ] && srv=rogue-server
    [ "${2:-}" = persist ] && persist=true
    command -v mosquitto >/dev/null || fail "mosquitto is not installed"
    local mosq
    mosq=$(command -v mosquitto || echo /usr/sbin/mosquitto)
    cat >"$T/mosquitto-$port.conf" <<CONF
user root
per_listener_settings false
allow_anonymous false
persistence $persist
persistence_location $T/
max_queued_messages 100000
max_queued_bytes 0
log_dest stderr
log_type error
log_type warning
log_type notice
listener $port 127.0.0.1
cafile $T/tls/ca.pem
certfile $T/tls/$srv.pem
keyfile $T/tls/$srv.key
require_certificate true
use_identity_as_username true
CONF
    start_bg "mosquitto-$port" "$mosq" -c "$T/mosquitto-$port.conf"
    BROKER_PID=$LAST_PID
    wait_for 10 port_open "$port" || fail "mosquitto did not start on port $port"
}

broker_stop() {
    [ -n "${BROKER_PID:-}" ] && stop_pid "$BROKER_PID"
    BROKER_PID=
}

# count_lines FILE PATTERN: number of lines matching PATTERN (0 if FILE is missing).
count_lines() {
    [ -f "$1" ] || { echo 0; return; }
    grep -c -- "$2" "$1" || true
}

# file_has FILE PATTERN [N]: FILE has at least N (default 1) lines matching PATTERN.
file_has() {
    local n
    n=$(count_lines "$1" "$2")
    [ "$n" -ge "${3:-1}" ]
}
