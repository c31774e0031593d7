/* Register <-> value conversion. All byte handling is explicit here so the result does not
 * depend on the host's endianness or on libmodbus' float helpers (wrong order in 3.1.6). */
#include "registers.h"

#include <errno.h>
#include <math.h>
#include <string.h>
#include <strings.h>

static const struct {
    const char *name;
    enum pdm_reg_type type;
} type_names[] = {
    /* canonical names first: pdm_reg_type_name() returns the first match */
    {"u16", PDM_TYPE_U16},        {"s16", PDM_TYPE_S16},         {"u32", PDM_TYPE_U32},
    {"s32", PDM_TYPE_S32},        {"float32", PDM_TYPE_FLOAT32}, {"u64", PDM_TYPE_U64},
    {"s64", PDM_TYPE_S64},        {"float64", PDM_TYPE_FLOAT64}, {"uint16", PDM_TYPE_U16},
    {"int16", PDM_TYPE_S16},      {"uint32", PDM_TYPE_U32},      {"int32", PDM_TYPE_S32},
    {"float", PDM_TYPE_FLOAT32},  {"uint64", PDM_TYPE_U64},      {"int64", PDM_TYPE_S64},
    {"double", PDM_TYPE_FLOAT64}, {"bool", PDM_TYPE_BOOL},       {"bit", PDM_TYPE_BOOL},
};

static const struct {
    const char *name;
    enum pdm_word_order order;
} order_names[] = {
    {"ABCD", PDM_ORDER_ABCD}, {"CDAB", PDM_ORDER_CDAB}, {"BADC", PDM_ORDER_BADC},
    {"DCBA", PDM_ORDER_DCBA}, {"big", PDM_ORDER_ABCD},  {"little", PDM_ORDER_CDAB},
};

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

int pdm_reg_words(enum pdm_reg_type t)
{
    switch (t) {
    case PDM_TYPE_U16:
    case PDM_TYPE_S16:
    case PDM_TYPE_BOOL:
        return 1;
    case PDM_TYPE_U32:
    case PDM_TYPE_S32:
    case PDM_TYPE_FLOAT32:
        return 2;
    case PDM_TYPE_U64:
    case PDM_TYPE_S64:
    case PDM_TYPE_FLOAT64:
        return 4;
    }
    return 0;
}

int pdm_reg_type_parse(const char *s, enum pdm_reg_type *out)
{
    for (size_t i = 0; i < N_ELEMS(type_names); i++) {
        if (strcasecmp(s, type_names[i].name) == 0) {
            *out = type_names[i].type;
            return 0;
        }
    }
    return -EINVAL;
}

int pdm_word_order_parse(const char *s, enum pdm_word_order *out)
{
    for (size_t i = 0; i < N_ELEMS(order_names); i++) {
        if (strcasecmp(s, order_names[i].name) == 0) {
            *out = order_names[i].order;
            return 0;
        }
    }
    return -EINVAL;
}

static const struct {
    const char *name;
    enum pdm_reg_table table;
} table_names[] = {
    /* canonical names first: pdm_reg_table_name() returns the first match */
    {"holding", PDM_TABLE_HOLDING},
    {"input", PDM_TABLE_INPUT},
    {"coil", PDM_TABLE_COIL},
    {"discrete", PDM_TABLE_DISCRETE},
    {"coils", PDM_TABLE_COIL},
    {"discrete_input", PDM_TABLE_DISCRETE},
    {"discrete_inputs", PDM_TABLE_DISCRETE},
};

int pdm_reg_table_parse(const char *s, enum pdm_reg_table *out)
{
    for (size_t i = 0; i < N_ELEMS(table_names); i++) {
        if (strcasecmp(s, table_names[i].name) == 0) {
            *out = table_names[i].table;
            return 0;
        }
    }
    return -EINVAL;
}

int pdm_reg_table_is_bits(enum pdm_reg_table t)
{
    return t == PDM_TABLE_COIL || t == PDM_TABLE_DISCRETE;
}

const char *pdm_reg_type_name(enum pdm_reg_type t)
{
    for (size_t i = 0; i < N_ELEMS(type_names); i++)
        if (type_names[i].type == t)
            return type_names[i].name;
    return "?";
}

const char *pdm_word_order_name(enum pdm_word_order o)
{
    for (size_t i = 0; i < N_ELEMS(order_names); i++)
        if (order_names[i].order == o)
            return order_names[i].name;
    return "?";
}

const char *pdm_reg_table_name(enum pdm_reg_table t)
{
    for (size_t i = 0; i < N_ELEMS(table_names); i++)
        if (table_names[i].table == t)
            return table_names[i].name;
    return "?";
}

static uint16_t swap16(uint16_t w)
{
    return (uint16_t)((w << 8) | (w >> 8));
}

static int order_valid(enum pdm_word_order o)
{
    return o == PDM_ORDER_ABCD || o == PDM_ORDER_CDAB || o == PDM_ORDER_BADC || o == PDM_ORDER_DCBA;
}

/* Register position of value word i (0 = most significant) and whether its bytes are swapped.
 * CDAB and DCBA put the least significant word first; BADC and DCBA swap bytes in each word. */
static int word_pos(enum pdm_word_order o, int i, int n)
{
    return (o == PDM_ORDER_CDAB || o == PDM_ORDER_DCBA) ? n - 1 - i : i;
}

static int byte_swapped(enum pdm_word_order o)
{
    return o == PDM_ORDER_BADC || o == PDM_ORDER_DCBA;
}

/* The value's n words as one unsigned integer, most significant word first. */
static uint64_t assemble(enum pdm_word_order o, const uint16_t *regs, int n)
{
    uint64_t raw = 0;
    for (int i = 0; i < n; i++) {
        uint16_t w = regs[word_pos(o, i, n)];
        if (byte_swapped(o))
            w = swap16(w);
        raw = (raw << 16) | w;
    }
    return raw;
}

static void scatter(enum pdm_word_order o, uint64_t raw, uint16_t *regs, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        uint16_t w = (uint16_t)(raw & 0xFFFF);
        raw >>= 16;
        regs[word_pos(o, i, n)] = byte_swapped(o) ? swap16(w) : w;
    }
}

int pdm_reg_decode(enum pdm_reg_type t, enum pdm_word_order o, const uint16_t *regs, double *out)
{
    int n = pdm_reg_words(t);
    if (n == 0 || !order_valid(o))
        return -EINVAL;
    if (t == PDM_TYPE_BOOL) {
        *out = regs[0] != 0;
        return 0;
    }
    uint64_t raw = assemble(o, regs, n);
    switch (t) {
    case PDM_TYPE_BOOL:
        break;
    case PDM_TYPE_U16:
        *out = (double)(uint16_t)raw;
        return 0;
    case PDM_TYPE_S16:
        *out = (double)(int16_t)(uint16_t)raw;
        return 0;
    case PDM_TYPE_U32:
        *out = (double)(uint32_t)raw;
        return 0;
    case PDM_TYPE_S32:
        *out = (double)(int32_t)(uint32_t)raw;
        return 0;
    case PDM_TYPE_U64:
        *out = (double)raw; /* exact up to 2^53 */
        return 0;
    case PDM_TYPE_S64:
        *out = (double)(int64_t)raw;
        return 0;
    case PDM_TYPE_FLOAT32: {
        uint32_t bits = (uint32_t)raw;
        float f;
        memcpy(&f, &bits, sizeof(f));
        if (!isfinite(f))
            return -ERANGE;
        *out = f;
        return 0;
    }
    case PDM_TYPE_FLOAT64: {
        double d;
        memcpy(&d, &raw, sizeof(d));
        if (!isfinite(d))
            return -ERANGE;
        *out = d;
        return 0;
    }
    }
    return -EINVAL;
}

/* Rounds half away from zero and clamps into [lo, hi]; NaN becomes 0. The bounds are compared
 * as doubles so that values beyond the integer range never reach a cast (undefined there). */
static int64_t to_signed(double v, double lo, double hi, int64_t ilo, int64_t ihi)
{
    if (isnan(v))
        return 0;
    v = round(v);
    if (v <= lo)
        return ilo;
    if (v >= hi)
        return ihi;
    return (int64_t)v;
}

static uint64_t to_unsigned(double v, double hi, uint64_t ihi)
{
    if (isnan(v))
        return 0;
    v = round(v);
    if (v <= 0.0)
        return 0;
    if (v >= hi)
        return ihi;
    return (uint64_t)v;
}

void pdm_reg_encode(enum pdm_reg_type t, enum pdm_word_order o, double v, uint16_t *regs)
{
    int n = pdm_reg_words(t);
    if (n == 0 || !order_valid(o))
        return;
    uint64_t raw = 0;
    switch (t) {
    case PDM_TYPE_U16:
        raw = to_unsigned(v, 65535.0, UINT16_MAX);
        break;
    case PDM_TYPE_S16:
        raw = (uint16_t)(int16_t)to_signed(v, -32768.0, 32767.0, INT16_MIN, INT16_MAX);
        break;
    case PDM_TYPE_U32:
        raw = to_unsigned(v, 4294967295.0, UINT32_MAX);
        break;
    case PDM_TYPE_S32:
        raw = (uint32_t)(int32_t)to_signed(v, -2147483648.0, 2147483647.0, INT32_MIN, INT32_MAX);
        break;
    case PDM_TYPE_U64:
        /* 2^64 is the first double above UINT64_MAX */
        raw = to_unsigned(v, 18446744073709551616.0, UINT64_MAX);
        break;
    case PDM_TYPE_S64:
        raw = (uint64_t)to_signed(v, -9223372036854775808.0, 9223372036854775808.0, INT64_MIN,
                                  INT64_MAX);
        break;
    case PDM_TYPE_FLOAT32: {
        float f = (float)v;
        uint32_t bits;
        memcpy(&bits, &f, sizeof(bits));
        raw = bits;
        break;
    }
    case PDM_TYPE_FLOAT64:
        memcpy(&raw, &v, sizeof(raw));
        break;
    case PDM_TYPE_BOOL:
        regs[0] = !isnan(v) && v != 0.0;
        return;
    }
    scatter(o, raw, regs, n);
}
