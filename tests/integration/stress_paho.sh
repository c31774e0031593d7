#!/usr/bin/env bash
# Stress test for stopping and destroying a Paho client (issue 17): PDM_STRESS_ROUNDS rounds
# (default 300), each one
#  a. pdmctl subscribe --count N receives N messages from the agent's uplink (uplink_probe
#     publish), then disconnects, destroys its client and exits;
#  b. every PDM_STRESS_LOST_EVERY-th round (default 3; each needs a broker of its own), an
#     uplink destroyed right after its connection was lost (uplink_probe lost, broker killed
#     under load).
# Every program must exit with its own status: an abort, a segfault or glibc's "double free"
# fails the round. The counts are printed at the end. Not in the default suite (label long):
# under qemu a round takes a few seconds.
source "$(dirname "$0")/lib.sh"
: "${UPLINK_PROBE:?run through ctest}" "${PDMCTL:?}"

ROUNDS=${PDM_STRESS_ROUNDS:-300}
LOST_EVERY=${PDM_STRESS_LOST_EVERY:-3}
N=20
it_setup stress_paho
pki_make gw-test
TLS=$T/tls
PORT=$(free_port)
broker_start "$PORT"
MAIN_BROKER=$BROKER_PID
URI=mqtts://127.0.0.1:$PORT
DEV=("$TLS/ca.pem" "$TLS/device.pem" "$TLS/device.key")
SUB=(--ca "$TLS/ca.pem" --cert "$TLS/sub.pem" --key "$TLS/sub.key")

crashed() { # LOG: the C library or qemu reported a crash
    grep -Eq 'double free|corruption|free\(\)|Segmentation|Aborted|uncaught target signal|AddressSanitizer|runtime error' "$1"
}

sub_ok=0 lost_ok=0 lost_runs=0
for ((r = 1; r <= ROUNDS; r++)); do
    start_bg "sub-$r" "$PDMCTL" subscribe --uri "$URI" "${SUB[@]}" --topic pdm/v1/gw-test/alert \
        --count "$N" --timeout 60 --client-id "stress-sub-$r"
    SUBPID=$LAST_PID
    wait_for 30 file_has "$T/sub-$r.log" "subscribed to" || fail "round $r: subscriber did not subscribe"
    "$UPLINK_PROBE" publish "$URI" "${DEV[@]}" "$N" >"$T/pub-$r.log" 2>&1 ||
        fail "round $r: publisher failed (exit $?; see pub-$r.log)"
    rc=0
    wait "$SUBPID" || rc=$?
    if [ "$rc" -ne 0 ] || crashed "$T/sub-$r.log"; then
        tail -5 "$T/sub-$r.log"
        fail "round $r: pdmctl subscribe exited $rc after $N messages"
    fi
    crashed "$T/pub-$r.log" && fail "round $r: the publisher reported a crash"
    [ "$(count_lines "$T/sub-$r.log" "^ALERT ")" -eq "$N" ] || fail "round $r: not $N messages"
    sub_ok=$((sub_ok + 1))
    rm -f "$T/sub-$r.log" "$T/pub-$r.log"

    if ((LOST_EVERY > 0 && r % LOST_EVERY == 0)); then
        lost_runs=$((lost_runs + 1))
        LPORT=$(free_port)
        broker_start "$LPORT"
        start_bg "lost-$r" "$UPLINK_PROBE" lost "mqtts://127.0.0.1:$LPORT" "${DEV[@]}"
        LPID=$LAST_PID
        wait_for 30 file_has "$T/lost-$r.log" "^READY" || fail "round $r: lost probe did not connect"
        stop_pid "$BROKER_PID"
        rc=0
        wait "$LPID" || rc=$?
        if [ "$rc" -ne 0 ] || crashed "$T/lost-$r.log"; then
            cat "$T/lost-$r.log"
            fail "round $r: destroy after a lost connection: exit $rc"
        fi
        lost_ok=$((lost_ok + 1))
        rm -f "$T/lost-$r.log" "$T/mosquitto-$LPORT.log"
    fi
    IT_PIDS=("$MAIN_BROKER") # the others have been waited for: never signal a reused pid
    ((r % 50 == 0)) && echo "round $r: $sub_ok subscribe rounds, $lost_ok of $lost_runs lost-connection rounds clean"
done
echo "stress_paho: $ROUNDS rounds: pdmctl subscribe $sub_ok/$ROUNDS clean exits," \
    "uplink destroyed after a lost connection $lost_ok/$lost_runs, 0 crashes${PDM_EMULATOR:+ (under $PDM_EMULATOR)}"
