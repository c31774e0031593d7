; MachineSaver TriVibe triaxial vibration and temperature transmitter (RS-485, Modbus RTU).
;
; Source: MachineSaver knowledge base, TriVibe book, pages "Modbus Registers Map" and "Modbus
; Register Highlight (Quick Start)" (library.machinesaver.com). Holding registers (function
; 03), zero-based addresses as listed there, big-endian ("Big Endian memory allocation"; for
; 32-bit values the high word first = ABCD).
;   31        TEMPERATURE, degrees C
;   172..177  overall acceleration RMS per axis, g, two registers each
;   178..183  overall velocity RMS per axis, in/s, two registers each
; NOT verified from the public pages: the data type of register 31 (16-bit; taken here as a
; signed whole number of degC, no scaling) and that the two-register values are float32 (the
; quick-start lists them as register pairs). Check with `pdmctl read --address 31` and
; `--address 172 --count 12`, which decode every type side by side, before relying on them.
; Here velocity is scaled to mm/s (x 25.4) and acceleration to m/s2 (x 9.80665), the units the
; agent's models and on-board vibration features use.
; Factory serial settings: 115200 baud, 8N1; unit id = last two digits of the serial number.

[profile]
name = machinesaver-trivibe
description = MachineSaver TriVibe vibration transmitter (per-axis RMS, temperature)
table = holding
word_order = ABCD

[register temperature]
address = 31
type = s16
unit = degC

[register accel_rms_1]
address = 172
type = float32
scale = 9.80665        ; g -> m/s2
unit = m/s2

[register accel_rms_2]
address = 174
type = float32
scale = 9.80665
unit = m/s2

[register accel_rms_3]
address = 176
type = float32
scale = 9.80665
unit = m/s2

[register velocity_rms_1]
address = 178
type = float32
scale = 25.4           ; in/s -> mm/s
unit = mm/s

[register velocity_rms_2]
address = 180
type = float32
scale = 25.4
unit = mm/s

[register velocity_rms_3]
address = 182
type = float32
scale = 25.4
unit = mm/s
