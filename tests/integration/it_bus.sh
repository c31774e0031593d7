#!/usr/bin/env bash
# The Modbus path end to end against pdm-sim on 127.0.0.1: `pdmctl read` (word orders, input
# table, refused connection, silent unit id, exception) and the bus thread through bus_probe
# (a dead unit id does not cost the live unit its period; reconnect after the device restarts).
source "$(dirname "$0")/lib.sh"
: "${PDM_SIM:?run through ctest}" "${PDMCTL:?run through ctest}" "${BUS_PROBE:?run through ctest}"
it_setup it_bus

# start_sim NAME PORT [ARGS...]: pdm-sim on PORT, waits until it accepts connections.
start_sim() {
    local name=$1 port=$2
    shift 2
    start_bg "$name" "$PDM_SIM" --port "$port" --quiet "$@"
    SIM_PID=$LAST_PID
    wait_for 10 port_open "$port" || fail "pdm-sim did not start on port $port"
}

# column FILE ADDRESS TYPE ORDER: the value pdmctl read printed for TYPE at ADDRESS in ORDER.
column() {
    awk -v a="$2" -v t="$3" -v o="$4" '
        $1 == "address" && $2 == "type" { for (i = 3; i <= NF; i++) if ($i == o) c = i }
        c && $1 == a && $2 == t { print $c; exit }' "$1"
}

# between V LO HI: LO <= V <= HI (V may be "nan/inf" or empty: then false).
between() {
    awk -v v="$1" -v lo="$2" -v hi="$3" 'BEGIN { exit !(v ~ /^-?[0-9.e+-]+$/ && v + 0 >= lo && v + 0 <= hi) }'
}

# summary FILE SENSOR FIELD: a number from bus_probe's "summary sensor=..." line.
summary() {
    sed -n "s/^summary sensor=$2 .*$3=\([0-9]*\).*/\1/p" "$1"
}

# --- pdmctl read: big-endian device -------------------------------------------------------
PORT=$(free_port)
start_sim sim-big "$PORT" --scenario healthy
"$PDMCTL" read --tcp "127.0.0.1:$PORT" --unit 1 --address 0 --count 7 >"$T/read-big.out" \
    2>"$T/read-big.err" || fail "pdmctl read against the sim failed: $(cat "$T/read-big.err")"
v=$(column "$T/read-big.out" 0 float32 ABCD)
between "$v" 44 46 || fail "big-endian sim: float32 ABCD at 0 is '$v', expected about 45"
v=$(column "$T/read-big.out" 0 float32 CDAB)
between "$v" 44 46 && fail "big-endian sim: CDAB also reads as temperature ('$v')"
v=$(column "$T/read-big.out" 2 float32 ABCD)
between "$v" 2 3 || fail "big-endian sim: vibration float32 ABCD at 2 is '$v', expected about 2.5"
grep -Eq '^ +6 +0x0001 +1 +1$' "$T/read-big.out" || fail "running flag (register 6) is not 1"

"$PDMCTL" read --tcp "127.0.0.1:$PORT" --unit 1 --address 4 --count 2 --table input \
    >"$T/read-input.out" 2>&1 || fail "pdmctl read --table input failed"
v=$(column "$T/read-input.out" 4 float32 ABCD)
between "$v" 780 820 || fail "input register 4 (power) is '$v', expected about 800"
echo "ok: pdmctl read decodes a big-endian float32 under ABCD (holding and input)"

# coils and discrete inputs: the simulated compressor is running (coil 0 on)
"$PDMCTL" read --tcp "127.0.0.1:$PORT" --unit 1 --address 0 --count 1 --table coil \
    >"$T/read-coil.out" 2>&1 || fail "pdmctl read --table coil failed: $(cat "$T/read-coil.out")"
grep -Eq '^ +0  1 \(on\)$' "$T/read-coil.out" || fail "coil 0 (running) not shown as on: $(cat "$T/read-coil.out")"
rc=0
"$PDMCTL" read --tcp "127.0.0.1:$PORT" --unit 1 --address 0 --count 200 >/dev/null 2>"$T/read-big-count.err" || rc=$?
[ $rc -eq 2 ] && grep -q 'at most 125 registers' "$T/read-big-count.err" ||
    fail "a 200-register read should be refused with a reason (exit $rc)"
echo "ok: pdmctl read shows coils; refuses an over-long register read"

# an exception answer is a failure with the Modbus reason
rc=0
"$PDMCTL" read --tcp "127.0.0.1:$PORT" --unit 1 --address 100 >/dev/null 2>"$T/read-exc.err" || rc=$?
[ "$rc" -eq 1 ] || fail "read of a missing register exited $rc, expected 1"
grep -q "unit 1: illegal data address (exception 2)" "$T/read-exc.err" ||
    fail "no exception reason: $(cat "$T/read-exc.err")"

# a bad command line exits 2 and says what is missing
rc=0
"$PDMCTL" read --tcp "127.0.0.1:$PORT" --unit 1 >/dev/null 2>"$T/read-usage.err" || rc=$?
[ "$rc" -eq 2 ] || fail "read without --address exited $rc, expected 2"
grep -q -- "--address is required" "$T/read-usage.err" || fail "usage error not explained"
stop_pid "$SIM_PID"
echo "ok: exceptions exit 1 with the reason, usage errors exit 2"

# --- word order little (CDAB) ---------------------------------------------------------------
PORT=$(free_port)
start_sim sim-little "$PORT" --word-order little --scenario healthy --unit-id 1
"$PDMCTL" read --tcp "127.0.0.1:$PORT" --unit 1 --address 0 --count 6 >"$T/read-little.out" \
    2>&1 || fail "pdmctl read against the little-endian sim failed"
v=$(column "$T/read-little.out" 0 float32 CDAB)
between "$v" 44 46 || fail "little sim: float32 CDAB at 0 is '$v', expected about 45"
v=$(column "$T/read-little.out" 0 float32 ABCD)
between "$v" 44 46 && fail "little sim: ABCD also reads as temperature ('$v')"
echo "ok: a word-swapped device reads as temperature under CDAB only"

# a unit id the device does not answer: exit 1 after the timeout, not a hang
rc=0
start=$SECONDS
"$PDMCTL" read --tcp "127.0.0.1:$PORT" --unit 2 --address 0 --timeout-ms 300 >/dev/null \
    2>"$T/read-silent.err" || rc=$?
[ "$rc" -eq 1 ] || fail "read of a silent unit id exited $rc, expected 1"
grep -q "unit 2: no answer within 300 ms" "$T/read-silent.err" ||
    fail "silent unit: unexpected reason: $(cat "$T/read-silent.err")"
[ $((SECONDS - start)) -le 3 ] || fail "silent unit took $((SECONDS - start)) s for a 300 ms timeout"
stop_pid "$SIM_PID"
echo "ok: a silent unit id times out with exit 1"

# --- nothing listening --------------------------------------------------------------------
CLOSED=$(free_port)
rc=0
"$PDMCTL" read --tcp "127.0.0.1:$CLOSED" --unit 1 --address 0 >/dev/null 2>"$T/read-closed.err" ||
    rc=$?
[ "$rc" -eq 1 ] || fail "read from a closed port exited $rc, expected 1"
grep -q "cannot connect to 127.0.0.1:$CLOSED: Connection refused" "$T/read-closed.err" ||
    fail "closed port: unexpected reason: $(cat "$T/read-closed.err")"
echo "ok: a closed port exits 1 with 'Connection refused'"

# --- RTU: a serial line with nobody on it, and a port that does not exist --------------------
command -v socat >/dev/null || fail "socat is not installed"
start_bg socat socat pty,raw,echo=0,link="$T/ttyA" pty,raw,echo=0,link="$T/ttyB"
SOCAT_PID=$LAST_PID
wait_for 10 test -e "$T/ttyA" || fail "socat did not create the serial pair"
rc=0
"$PDMCTL" read --rtu "$T/ttyA" --baud 19200 --parity E --unit 3 --address 0 --timeout-ms 200 \
    >/dev/null 2>"$T/read-rtu.err" || rc=$?
[ "$rc" -eq 1 ] || fail "RTU read with nobody on the line exited $rc, expected 1"
grep -q "unit 3: no answer within 200 ms" "$T/read-rtu.err" ||
    fail "RTU silent line: unexpected reason: $(cat "$T/read-rtu.err")"
stop_pid "$SOCAT_PID"
rc=0
"$PDMCTL" read --rtu "$T/no-such-tty" --unit 1 --address 0 >/dev/null 2>"$T/read-nodev.err" ||
    rc=$?
[ "$rc" -eq 1 ] || fail "RTU read from a missing port exited $rc, expected 1"
grep -q "cannot open $T/no-such-tty: No such file or directory" "$T/read-nodev.err" ||
    fail "missing port: unexpected reason: $(cat "$T/read-nodev.err")"
echo "ok: RTU: a silent line times out, a missing port is named"

# --- RTU: pdm-sim serving units 1 and 3 on one line -----------------------------------------
# A request for an absent unit must not cost the next request to a live one (libmodbus' own
# RTU filter swallows the frame after an ignored one, which this would catch).
rm -f "$T/ttyA" "$T/ttyB"
start_bg socat2 socat pty,raw,echo=0,link="$T/ttyA" pty,raw,echo=0,link="$T/ttyB"
SOCAT_PID=$LAST_PID
both_links() { [ -e "$T/ttyA" ] && [ -e "$T/ttyB" ]; }
wait_for 10 both_links || fail "socat did not create the serial pair"
start_bg sim-rtu "$PDM_SIM" --rtu "$T/ttyA" --baud 19200 --parity E --unit-id 1,3 \
    --scenario healthy --quiet
SIM_PID=$LAST_PID
wait_for 10 file_has "$T/sim-rtu.log" "serving Modbus RTU on $T/ttyA (19200 8E1), unit id 1,3" ||
    fail "pdm-sim did not open the serial port"
i=0
for unit in 1 5 3 5 1; do
    i=$((i + 1))
    rc=0
    "$PDMCTL" read --rtu "$T/ttyB" --baud 19200 --parity E --unit "$unit" --address 0 \
        --count 2 --timeout-ms 300 >"$T/read-rtu-$i.out" 2>&1 || rc=$?
    if [ "$unit" = 5 ]; then
        [ "$rc" -eq 1 ] || fail "RTU unit 5 (not served) exited $rc, expected 1"
        grep -q "unit 5: no answer within 300 ms" "$T/read-rtu-$i.out" ||
            fail "RTU unit 5: unexpected reason: $(cat "$T/read-rtu-$i.out")"
    else
        [ "$rc" -eq 0 ] || fail "RTU unit $unit (read $i) failed: $(cat "$T/read-rtu-$i.out")"
        v=$(column "$T/read-rtu-$i.out" 0 float32 ABCD)
        between "$v" 44 46 || fail "RTU unit $unit: temperature is '$v', expected about 45"
    fi
done
stop_pid "$SIM_PID"
file_has "$T/sim-rtu.log" "stopping after 3 requests answered, 2 ignored for other unit ids" ||
    fail "pdm-sim RTU counts: $(tail -n 1 "$T/sim-rtu.log")"
stop_pid "$SOCAT_PID"
rc=0
"$PDM_SIM" --rtu "$T/no-such-tty" --quiet >/dev/null 2>"$T/sim-nodev.err" || rc=$?
[ "$rc" -eq 1 ] || fail "pdm-sim on a missing serial port exited $rc, expected 1"
grep -q "cannot open $T/no-such-tty: No such file or directory" "$T/sim-nodev.err" ||
    fail "pdm-sim missing port: $(cat "$T/sim-nodev.err")"
rc=0
"$PDM_SIM" --baud 9600 >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 2 ] || fail "pdm-sim --baud without --rtu exited $rc, expected 2"
echo "ok: RTU: pdm-sim answers units 1 and 3, stays silent for 5 without losing the next request"

# --- bus thread: a dead unit id next to a live one ------------------------------------------
# temp and power_kw on unit 1 every 100 ms, "dead" on unit 7 every 100 ms, timeout 200 ms.
# Without backoff unit 7 would be asked about 13 times in 4 s, each costing the live unit a
# 200 ms stall (about 27 live reads); with backoff doubling from 100 ms after each failed
# request it is asked about 5 times and the live unit keeps most of its 40 slots.
PORT=$(free_port)
start_sim sim-bus "$PORT" --scenario healthy --unit-id 1
"$BUS_PROBE" --port "$PORT" --seconds 4 --period-ms 100 --dead-period-ms 100 --timeout-ms 200 \
    --dead-unit 7 >"$T/probe.log" 2>&1 || fail "bus_probe failed"
P="$T/probe.log"
ok=$(summary "$P" temp ok)
[ -n "$ok" ] || fail "bus_probe printed no summary"
[ "$ok" -ge 31 ] || fail "live sensor read $ok times in 4 s at 100 ms (dead unit stalls the bus)"
[ "$(summary "$P" temp failed)" -eq 0 ] || fail "live sensor had failures"
gap=$(summary "$P" temp gap_max_ms)
[ "$gap" -le 450 ] || fail "live sensor gap $gap ms: longer than period + one timeout"
[ "$(summary "$P" dead ok)" -eq 0 ] || fail "the dead unit produced values"
[ "$(summary "$P" dead failed)" -ge 10 ] || fail "the dead unit's failures are not reported"
file_has "$P" "sensor=dead err=-110 reason=unit 7: no answer within 200 ms" ||
    fail "no timeout reason for the dead sensor"
file_has "$P" "bus plant (modbus-tcp 127.0.0.1:$PORT): 3 sensors" || fail "no start line"
file_has "$P" "unit 7 at 127.0.0.1:$PORT not answering" || fail "dead unit not logged"
[ "$(count_lines "$P" "not answering")" -le 2 ] || fail "dead unit logged on every failure"
# scale: power in W * 0.001
v=$(sed -n 's/^sample .* sensor=power_kw ok value=\([0-9.]*\)$/\1/p' "$P" | sed -n 1p)
between "$v" 0.78 0.82 || fail "power_kw is '$v', expected about 0.8 (800 W * 0.001)"
stop_ms=$(sed -n 's/^stop_ms=\([0-9]*\).*/\1/p' "$P")
[ "$stop_ms" -le 500 ] || fail "pdm_bus_stop took $stop_ms ms"
stop_pid "$SIM_PID"
asked=$(sed -n 's/.* \([0-9]*\) ignored for other unit ids$/\1/p' "$T/sim-bus.log")
[ -n "$asked" ] || fail "pdm-sim did not report its request counts"
[ "$asked" -ge 3 ] || fail "unit 7 was asked only $asked times: no retries after backoff"
[ "$asked" -le 8 ] || fail "unit 7 was asked $asked times in 4 s: no backoff"
echo "ok: dead unit asked $asked times in 4 s, live unit read $ok times (max gap $gap ms)," \
    "stop in $stop_ms ms"

# --- bus thread: the device goes away and comes back ----------------------------------------
P="$T/probe-reconnect.log"
start_sim sim-bus2 "$PORT" --scenario healthy --unit-id 1
start_bg probe-reconnect "$BUS_PROBE" --port "$PORT" --seconds 60 --period-ms 100 \
    --dead-period-ms 1000 --timeout-ms 200 --dead-unit 7
PROBE_PID=$LAST_PID
wait_for 10 file_has "$P" "sensor=temp ok" || fail "no live samples before the restart"
stop_pid "$SIM_PID"
wait_for 10 file_has "$P" "sensor=temp err=.*bus down: Connection refused" ||
    fail "live sensor does not report the lost device"
start_sim sim-bus3 "$PORT" --scenario healthy --unit-id 1
recovered() {
    awk '/sensor=temp err=/ { f = 1 } f && /sensor=temp ok/ { ok = 1 } END { exit !ok }' "$P"
}
wait_for 40 recovered || fail "the bus did not reconnect after the device came back"
file_has "$P" "bus plant: connected to 127.0.0.1:$PORT again" || fail "reconnect not logged"
stop_pid "$PROBE_PID"
file_has "$P" "^summary sensor=temp" || fail "bus_probe did not stop cleanly on SIGTERM"
echo "ok: the bus reconnects after the device restarts"

# --- coalescing on the wire -----------------------------------------------------------------
# Three adjacent float32 sensors on one unit and period: one request per period, not three
# (pdm-sim counts the requests it answers per function code). With max_span 1 (coalescing off)
# the same sensors cost three.
# fc_count LOG NAME: pdm-sim's "answered by function: ... NAME=N" at stop.
fc_count() {
    sed -n "s/^pdm-sim: answered by function: .*$2=\([0-9]*\).*/\1/p" "$1"
}
THREE=(--sensor comp_temp:1:holding:0:float32 --sensor comp_vib:1:holding:2:float32
    --sensor comp_power:1:holding:4:float32)
PORT=$(free_port)
start_sim sim-coalesce "$PORT" --scenario healthy --unit-id 1
"$BUS_PROBE" --port "$PORT" --seconds 2 --period-ms 100 --debug "${THREE[@]}" \
    >"$T/probe-coalesce.log" 2>&1 || fail "bus_probe (coalescing) failed"
stop_pid "$SIM_PID"
P="$T/probe-coalesce.log"
file_has "$P" "bus plant: request 1: unit 1 holding 0..5 (3 sensors: comp_temp comp_vib comp_power) every 100 ms" ||
    fail "the planned request is not logged"
reads=$(summary "$P" comp_temp ok)
holding=$(fc_count "$T/sim-coalesce.log" holding)
[ "$reads" -ge 15 ] || fail "comp_temp read $reads times in 2 s at 100 ms"
for s in comp_vib comp_power; do
    [ "$(summary "$P" $s ok)" -ge $((reads - 1)) ] || fail "$s read less often than comp_temp"
done
# the last request may be answered after the probe stopped counting
[ "$holding" -ge "$reads" ] && [ "$holding" -le $((reads + 1)) ] ||
    fail "$holding requests for $reads periods of 3 adjacent sensors (not coalesced)"
echo "ok: coalesced: 3 adjacent sensors, $reads periods, $holding requests on the wire"

start_sim sim-single "$PORT" --scenario healthy --unit-id 1
"$BUS_PROBE" --port "$PORT" --seconds 2 --period-ms 100 --max-span 1 "${THREE[@]}" \
    >"$T/probe-single.log" 2>&1 || fail "bus_probe (max_span 1) failed"
stop_pid "$SIM_PID"
reads1=$(summary "$T/probe-single.log" comp_temp ok)
holding1=$(fc_count "$T/sim-single.log" holding)
# the probe may stop counting right after the first of the last period's three requests
[ "$holding1" -ge $((3 * reads1 - 2)) ] || fail "max_span 1: $holding1 requests for $reads1 periods"
echo "ok: max_span 1: $reads1 periods, $holding1 requests (one per sensor)"

# --- split on exception: a device that takes at most 2 registers per read --------------------
start_sim sim-maxread "$PORT" --scenario healthy --unit-id 1 --max-read 2
"$BUS_PROBE" --port "$PORT" --seconds 2 --period-ms 100 "${THREE[@]}" \
    >"$T/probe-maxread.log" 2>&1 || fail "bus_probe (--max-read) failed"
stop_pid "$SIM_PID"
P="$T/probe-maxread.log"
for s in comp_temp comp_vib comp_power; do
    [ "$(summary "$P" $s failed)" -eq 0 ] || fail "$s failed although its pieces are readable"
    [ "$(summary "$P" $s ok)" -ge 15 ] || fail "$s read $(summary "$P" $s ok) times in 2 s"
done
file_has "$P" "unit 1 refused holding 0..5 with illegal data value (exception 3); reading it as 0..1 and 2..5 from now on" ||
    fail "the split is not logged"
[ "$(count_lines "$P" "refused")" -eq 2 ] || fail "splits are not remembered (logged again)"
exc=$(fc_count "$T/sim-maxread.log" exceptions)
reads=$(summary "$P" comp_temp ok)
holding=$(fc_count "$T/sim-maxread.log" holding)
# first period: 0..5 refused, 0..1, 2..5 refused, 2..3, 4..5; then 3 reads per period
[ "$exc" -eq 2 ] || fail "the device refused $exc reads: the big request was retried"
[ "$holding" -ge $((3 * reads + 2)) ] && [ "$holding" -le $((3 * reads + 5)) ] ||
    fail "$holding requests for $reads periods after the split"
echo "ok: split on exception 3: $exc refusals in total, then 3 reads per period" \
    "($holding requests for $reads periods)"

# a hole in the map: only the sensor inside it fails, with the device's reason
start_sim sim-hole "$PORT" --scenario healthy --unit-id 1 --hole 2-3
"$BUS_PROBE" --port "$PORT" --seconds 1 --period-ms 100 "${THREE[@]}" \
    >"$T/probe-hole.log" 2>&1 || fail "bus_probe (--hole) failed"
stop_pid "$SIM_PID"
P="$T/probe-hole.log"
[ "$(summary "$P" comp_vib ok)" -eq 0 ] || fail "the sensor in the hole produced values"
file_has "$P" "sensor=comp_vib err=-6 reason=unit 1: illegal data address (exception 2)" ||
    fail "the sensor in the hole does not report exception 2"
[ "$(summary "$P" comp_temp failed)" -eq 0 ] && [ "$(summary "$P" comp_power failed)" -eq 0 ] ||
    fail "the neighbours of the hole failed"
[ "$(summary "$P" comp_power ok)" -ge 7 ] || fail "comp_power not read at its period"
echo "ok: a hole fails only the sensor inside it (exception 2), neighbours keep reading"

# --- coils and discrete inputs --------------------------------------------------------------
# coil 0 "compressor running" is 1; discrete input 0 "door open" is 1 only in the failing
# phase of the cycle (here 1 s failing after 1 s healthy + 2 s degrading, every 5 s)
start_sim sim-bits "$PORT" --scenario cycle --healthy-s 1 --degrade-s 2 --unit-id 1
"$BUS_PROBE" --port "$PORT" --seconds 6 --period-ms 200 --debug \
    --sensor running:1:coil:0:- --sensor door:1:discrete:0:- --sensor temp:1:holding:0:float32 \
    >"$T/probe-bits.log" 2>&1 || fail "bus_probe (bits) failed"
stop_pid "$SIM_PID"
P="$T/probe-bits.log"
file_has "$P" "request 2: unit 1 coil 0..0 (1 sensor: running) every 200 ms" || fail "no coil request"
file_has "$P" "request 3: unit 1 discrete 0..0 (1 sensor: door) every 200 ms" ||
    fail "no discrete request"
[ "$(summary "$P" running failed)" -eq 0 ] && [ "$(summary "$P" door failed)" -eq 0 ] ||
    fail "bit reads failed"
[ "$(count_lines "$P" "sensor=running ok value=1.0000")" -ge 20 ] || fail "running is not 1"
[ "$(count_lines "$P" "sensor=running ok value=0")" -eq 0 ] || fail "running read as 0"
opened=$(count_lines "$P" "sensor=door ok value=1.0000")
closed=$(count_lines "$P" "sensor=door ok value=0.0000")
[ "$opened" -ge 2 ] && [ "$closed" -ge 10 ] || fail "door: open $opened times, closed $closed times"
[ "$(fc_count "$T/sim-bits.log" coils)" -ge 20 ] && [ "$(fc_count "$T/sim-bits.log" discrete)" -ge 20 ] ||
    fail "pdm-sim did not see functions 1 and 2"
echo "ok: coil (function 1) and discrete input (function 2): running=1, door opened $opened" \
    "and closed $closed times"

# --- frame gap: transactions on one bus are at least frame_gap_ms apart ----------------------
start_sim sim-gap "$PORT" --scenario healthy --unit-id 1
"$BUS_PROBE" --port "$PORT" --seconds 2 --period-ms 500 --max-span 1 --frame-gap-ms 60 \
    "${THREE[@]}" >"$T/probe-gap.log" 2>&1 || fail "bus_probe (frame gap) failed"
stop_pid "$SIM_PID"
# samples of one period come out 60 ms or more apart (comp_temp, comp_vib, comp_power)
gaps=$(awk '/^sample .* ok/ { split($2, a, "="); t = a[2] + 0
            if (n++ && t - last < 300) { d = t - last; if (!min || d < min) min = d } last = t }
            END { print min + 0 }' "$T/probe-gap.log")
[ "$gaps" -ge 59 ] || fail "transactions only $gaps ms apart with frame_gap_ms = 60"
echo "ok: frame gap: transactions at least $gaps ms apart (frame_gap_ms = 60)"
