; Eastron SDM120-Modbus single-phase energy meter (RS-485, Modbus RTU).
;
; Source: Eastron "SDM120-Modbus user manual", part "Modbus protocol", input register table
; (function 04, each value an IEEE 754 float32 in two registers, high word first = ABCD).
; Addresses below are the zero-based wire addresses (manual's "3X" number - 30001), with the
; manual's hex start address in the comment.
; Checked against public copies of the Eastron SDM230/SDM630/SDM72 tables, which share these
; addresses (0x0000 V, 0x0006 A, 0x000C W, 0x0046 Hz, 0x0048 import kWh, 0x0156 total kWh).
; NOT verified against an SDM120 manual itself: check one reading with `pdmctl read` on site.
; Serial settings (baud, parity) and the unit id are set on the meter's own menu and belong on
; the [bus] and [device]: look them up on the meter. Eastron manuals limit a request to 30
; parameters (60 registers); the agent's coalesced reads of this map stay under that.

[profile]
name = eastron-sdm120
description = Eastron SDM120-Modbus single-phase energy meter
table = input
type = float32
word_order = ABCD

[register voltage]
address = 0            ; 0x0000 (30001) line to neutral voltage
unit = V

[register current]
address = 6            ; 0x0006 (30007)
unit = A

[register active_power]
address = 12           ; 0x000C (30013), signed: negative when exporting
unit = W

[register frequency]
address = 70           ; 0x0046 (30071)
unit = Hz

[register import_energy]
address = 72           ; 0x0048 (30073) import active energy
unit = kWh

[register total_energy]
address = 342          ; 0x0156 (30343) total active energy (import + export)
unit = kWh
