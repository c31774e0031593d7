/* Modbus register <-> value conversion, independent of any library.
 *
 * A Modbus register is a 16-bit big-endian word on the wire; libmodbus hands us host-order
 * uint16_t values. Multi-register values are assembled from the bytes A B C D (A = most
 * significant byte of the value) according to the word order:
 *   ABCD  registers [AB][CD]  "big"    (Modbus convention, most devices)
 *   CDAB  registers [CD][AB]  "little" (word swapped, common on PLCs and meters)
 *   BADC  registers [BA][DC]  byte swapped within each word
 *   DCBA  registers [DC][BA]  fully reversed
 * The same naming extends to 64-bit values (ABCDEFGH etc.: word order applies per 16-bit word,
 * byte swap within the word).
 *
 * We do not use libmodbus' modbus_set_float_* (they write the wrong byte order in 3.1.6). */
#ifndef PDM_REGISTERS_H
#define PDM_REGISTERS_H

#include <stdint.h>

enum pdm_reg_table {
    PDM_TABLE_HOLDING = 0,  /* function 3 */
    PDM_TABLE_INPUT = 1,    /* function 4 */
    PDM_TABLE_COIL = 2,     /* function 1: read/write bits */
    PDM_TABLE_DISCRETE = 3, /* function 2: read-only bits (discrete inputs) */
};

enum pdm_reg_type {
    PDM_TYPE_U16 = 0,
    PDM_TYPE_S16,
    PDM_TYPE_U32,
    PDM_TYPE_S32,
    PDM_TYPE_FLOAT32,
    PDM_TYPE_U64,
    PDM_TYPE_S64,
    PDM_TYPE_FLOAT64,
    PDM_TYPE_BOOL, /* one coil or discrete input; drivers hand bits over one per uint16_t */
};

enum pdm_word_order {
    PDM_ORDER_ABCD = 0, /* "big" */
    PDM_ORDER_CDAB = 1, /* "little" */
    PDM_ORDER_BADC = 2,
    PDM_ORDER_DCBA = 3,
};

#define PDM_REG_MAX_WORDS 4 /* a 64-bit value */

/* Number of 16-bit registers a type occupies (1, 2 or 4; bool: 1 bit). */
int pdm_reg_words(enum pdm_reg_type t);
/* 1 for the bit tables (coil, discrete), which hold only bool values. */
int pdm_reg_table_is_bits(enum pdm_reg_table t);

/* Name <-> enum. Parsers return 0 or -EINVAL. Orders accept ABCD|CDAB|BADC|DCBA (any case) and
 * the aliases big (=ABCD) and little (=CDAB). Tables: holding, input, coil (coils), discrete
 * (discrete_input, discrete_inputs). */
int pdm_reg_type_parse(const char *s, enum pdm_reg_type *out);
int pdm_word_order_parse(const char *s, enum pdm_word_order *out);
int pdm_reg_table_parse(const char *s, enum pdm_reg_table *out);
const char *pdm_reg_type_name(enum pdm_reg_type t);
const char *pdm_word_order_name(enum pdm_word_order o);
const char *pdm_reg_table_name(enum pdm_reg_table t);

/* Decodes pdm_reg_words(t) registers into a double (before scale/offset). For 16-bit types the
 * order only matters for BADC/DCBA (byte swap); bool is 0 or 1 (any non-zero word is 1) and
 * ignores the order. Returns 0, or -ERANGE for a NaN/Inf float (a
 * device error value), -EINVAL for a bad type. */
int pdm_reg_decode(enum pdm_reg_type t, enum pdm_word_order o, const uint16_t *regs, double *out);

/* Encodes v into pdm_reg_words(t) registers (rounded and clamped for integer types). For the
 * simulator and tests; the inverse of pdm_reg_decode. */
void pdm_reg_encode(enum pdm_reg_type t, enum pdm_word_order o, double v, uint16_t *regs);

#endif
