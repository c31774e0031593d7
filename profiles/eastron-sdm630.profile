; Eastron SDM630-Modbus three-phase energy meter (RS-485, Modbus RTU).
;
; Source: Eastron "SDM630-Modbus user manual" (V2), part "Modbus protocol", input register
; table (function 04, IEEE 754 float32 in two registers, high word first = ABCD). Addresses
; are the zero-based wire addresses (3X number - 30001); the manual's hex start address and
; 3X number are in the comments.
; Checked against public register lists for the SDM630 and the SDM72D (same addresses for
; 0x0000..0x0010, 0x0034, 0x0046, 0x0048, 0x0156). One third-party page for the different
; SDM630MCT "V1.7" protocol lists another layout (e.g. current at 30013): this profile is for
; the SDM630-Modbus, not that variant. Check one reading with `pdmctl read` on site.
; Serial settings (baud, parity) and the unit id are set on the meter's own menu and belong on
; the [bus] and [device]. Eastron manuals limit a request to 30 parameters (60 registers); the
; agent's coalesced reads of this map (at most 18 registers) stay under that.

[profile]
name = eastron-sdm630
description = Eastron SDM630-Modbus three-phase energy meter
table = input
type = float32
word_order = ABCD

[register voltage_l1]
address = 0            ; 0x0000 (30001) phase 1 line to neutral
unit = V

[register voltage_l2]
address = 2            ; 0x0002 (30003)
unit = V

[register voltage_l3]
address = 4            ; 0x0004 (30005)
unit = V

[register current_l1]
address = 6            ; 0x0006 (30007)
unit = A

[register current_l2]
address = 8            ; 0x0008 (30009)
unit = A

[register current_l3]
address = 10           ; 0x000A (30011)
unit = A

[register power_l1]
address = 12           ; 0x000C (30013) phase 1 active power
unit = W

[register power_l2]
address = 14           ; 0x000E (30015)
unit = W

[register power_l3]
address = 16           ; 0x0010 (30017)
unit = W

[register active_power]
address = 52           ; 0x0034 (30053) total system power
unit = W

[register frequency]
address = 70           ; 0x0046 (30071)
unit = Hz

[register import_energy]
address = 72           ; 0x0048 (30073) total import active energy
unit = kWh

[register total_energy]
address = 342          ; 0x0156 (30343) total active energy
unit = kWh
