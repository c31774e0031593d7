; ControlBox TB232 RS-485 temperature sensor module (Modbus RTU).
;
; Source: controlbox.eu, TB232 setup page "Modbus configuration": holding registers (function
; 03), all big-endian; address 0 = temperature as float32 (two registers, -55.0 .. 125.0 degC),
; address 2 = state (0 normal, 1 alert, 2 warning, 3 critical).
; NOT verified: the page also lists int16 forms of the temperature (x10 and whole degrees) in
; the same row; which one address 0 returns may depend on the module's setting. Check with
; `pdmctl read --address 0 --count 2` before relying on it.

[profile]
name = controlbox-tb232
description = ControlBox TB232 temperature module
table = holding
word_order = ABCD

[register temperature]
address = 0
type = float32
unit = degC

[register state]
address = 2
type = u16             ; 0 normal, 1 alert, 2 warning, 3 critical (the module's own limits)
