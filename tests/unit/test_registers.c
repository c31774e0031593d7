/* Register conversion against golden vectors. Every vector below was computed independently
 * with Python's struct module (pack big-endian, then reorder words/bytes), not with this code. */
#include <errno.h>
#include <math.h>
#include <stdint.h>

#include "check.h"
#include "drivers/registers.h"

struct vec {
    enum pdm_reg_type type;
    double value;
    uint16_t regs[4][PDM_REG_MAX_WORDS]; /* by order: ABCD, CDAB, BADC, DCBA */
};

static const struct vec vectors[] = {
    /* float32 123.456 = 0x42F6E979 */
    {PDM_TYPE_FLOAT32,
     123.456,
     {{0x42F6, 0xE979}, {0xE979, 0x42F6}, {0xF642, 0x79E9}, {0x79E9, 0xF642}}},
    /* float32 45.0 = 0x42340000 */
    {PDM_TYPE_FLOAT32,
     45.0,
     {{0x4234, 0x0000}, {0x0000, 0x4234}, {0x3442, 0x0000}, {0x0000, 0x3442}}},
    {PDM_TYPE_U32,
     (double)0x12345678,
     {{0x1234, 0x5678}, {0x5678, 0x1234}, {0x3412, 0x7856}, {0x7856, 0x3412}}},
    /* s32 -123456 = 0xFFFE1DC0 */
    {PDM_TYPE_S32,
     -123456.0,
     {{0xFFFE, 0x1DC0}, {0x1DC0, 0xFFFE}, {0xFEFF, 0xC01D}, {0xC01D, 0xFEFF}}},
    /* below 2^53, so the double holds it exactly and encode can reproduce it */
    {PDM_TYPE_U64,
     (double)0x0011223344556677ULL,
     {{0x0011, 0x2233, 0x4455, 0x6677},
      {0x6677, 0x4455, 0x2233, 0x0011},
      {0x1100, 0x3322, 0x5544, 0x7766},
      {0x7766, 0x5544, 0x3322, 0x1100}}},
    /* s64 -123456789012 = 0xFFFFFFE34166E5EC */
    {PDM_TYPE_S64,
     -123456789012.0,
     {{0xFFFF, 0xFFE3, 0x4166, 0xE5EC},
      {0xE5EC, 0x4166, 0xFFE3, 0xFFFF},
      {0xFFFF, 0xE3FF, 0x6641, 0xECE5},
      {0xECE5, 0x6641, 0xE3FF, 0xFFFF}}},
    /* float64 123.456 = 0x405EDD2F1A9FBE77 */
    {PDM_TYPE_FLOAT64,
     123.456,
     {{0x405E, 0xDD2F, 0x1A9F, 0xBE77},
      {0xBE77, 0x1A9F, 0xDD2F, 0x405E},
      {0x5E40, 0x2FDD, 0x9F1A, 0x77BE},
      {0x77BE, 0x9F1A, 0x2FDD, 0x5E40}}},
    /* float64 -0.001 = 0xBF50624DD2F1A9FC */
    {PDM_TYPE_FLOAT64,
     -0.001,
     {{0xBF50, 0x624D, 0xD2F1, 0xA9FC},
      {0xA9FC, 0xD2F1, 0x624D, 0xBF50},
      {0x50BF, 0x4D62, 0xF1D2, 0xFCA9},
      {0xFCA9, 0xF1D2, 0x4D62, 0x50BF}}},
    /* 16-bit: the order only swaps bytes (BADC, DCBA) */
    {PDM_TYPE_S16, -123.0, {{0xFF85}, {0xFF85}, {0x85FF}, {0x85FF}}},
    {PDM_TYPE_U16, 65413.0, {{0xFF85}, {0xFF85}, {0x85FF}, {0x85FF}}},
    {PDM_TYPE_U16, 0x1234, {{0x1234}, {0x1234}, {0x3412}, {0x3412}}},
};

static const enum pdm_word_order orders[4] = {PDM_ORDER_ABCD, PDM_ORDER_CDAB, PDM_ORDER_BADC,
                                              PDM_ORDER_DCBA};

static void test_golden(void)
{
    for (size_t v = 0; v < sizeof(vectors) / sizeof(vectors[0]); v++) {
        const struct vec *g = &vectors[v];
        int n = pdm_reg_words(g->type);
        /* float32 decodes to the nearest float, not to the decimal literal */
        double tol = g->type == PDM_TYPE_FLOAT32 ? 1e-5 * fabs(g->value) : 0.0;
        for (int o = 0; o < 4; o++) {
            double got = -1;
            int rc = pdm_reg_decode(g->type, orders[o], g->regs[o], &got);
            CHECK_MSG(rc == 0, "decode %s %s rc %d", pdm_reg_type_name(g->type),
                      pdm_word_order_name(orders[o]), rc);
            CHECK_MSG(fabs(got - g->value) <= tol, "decode %s %s = %.17g, expected %.17g",
                      pdm_reg_type_name(g->type), pdm_word_order_name(orders[o]), got, g->value);

            uint16_t enc[PDM_REG_MAX_WORDS] = {0xAAAA, 0xAAAA, 0xAAAA, 0xAAAA};
            pdm_reg_encode(g->type, orders[o], g->value, enc);
            for (int i = 0; i < n; i++)
                CHECK_MSG(enc[i] == g->regs[o][i],
                          "encode %s %s %.17g: reg[%d] = 0x%04X, want 0x%04X",
                          pdm_reg_type_name(g->type), pdm_word_order_name(orders[o]), g->value, i,
                          enc[i], g->regs[o][i]);
            /* encode must not write past the type's registers */
            for (int i = n; i < PDM_REG_MAX_WORDS; i++)
                CHECK_INT(enc[i], 0xAAAA);
        }
    }
}

/* Above 2^53 a u64 loses its low bits in a double: decode rounds like the compiler does. */
static void test_u64_large(void)
{
    const uint16_t abcd[4] = {0x0102, 0x0304, 0x0506, 0x0708};
    const uint16_t dcba[4] = {0x0807, 0x0605, 0x0403, 0x0201};
    const uint16_t max[4] = {0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF};
    double v = 0;
    CHECK_INT(pdm_reg_decode(PDM_TYPE_U64, PDM_ORDER_ABCD, abcd, &v), 0);
    CHECK(v == (double)0x0102030405060708ULL);
    CHECK_INT(pdm_reg_decode(PDM_TYPE_U64, PDM_ORDER_DCBA, dcba, &v), 0);
    CHECK(v == (double)0x0102030405060708ULL);
    CHECK_INT(pdm_reg_decode(PDM_TYPE_U64, PDM_ORDER_BADC, max, &v), 0);
    CHECK(v == 18446744073709551616.0);
    CHECK_INT(pdm_reg_decode(PDM_TYPE_S64, PDM_ORDER_BADC, max, &v), 0);
    CHECK_NEAR(v, -1, 0);
}

static void test_words(void)
{
    CHECK_INT(pdm_reg_words(PDM_TYPE_U16), 1);
    CHECK_INT(pdm_reg_words(PDM_TYPE_S16), 1);
    CHECK_INT(pdm_reg_words(PDM_TYPE_U32), 2);
    CHECK_INT(pdm_reg_words(PDM_TYPE_S32), 2);
    CHECK_INT(pdm_reg_words(PDM_TYPE_FLOAT32), 2);
    CHECK_INT(pdm_reg_words(PDM_TYPE_U64), 4);
    CHECK_INT(pdm_reg_words(PDM_TYPE_S64), 4);
    CHECK_INT(pdm_reg_words(PDM_TYPE_FLOAT64), 4);
    CHECK_INT(pdm_reg_words((enum pdm_reg_type)99), 0);
}

static void test_nan_inf(void)
{
    double v = 7.0;
    const uint16_t nan32[2] = {0x7FC0, 0x0000};
    const uint16_t inf32[2] = {0x7F80, 0x0000};
    const uint16_t ninf32_cdab[2] = {0x0000, 0xFF80};
    const uint16_t nan64[4] = {0x7FF8, 0, 0, 0};
    const uint16_t inf64_dcba[4] = {0, 0, 0, 0xF07F};
    CHECK_INT(pdm_reg_decode(PDM_TYPE_FLOAT32, PDM_ORDER_ABCD, nan32, &v), -ERANGE);
    CHECK_INT(pdm_reg_decode(PDM_TYPE_FLOAT32, PDM_ORDER_ABCD, inf32, &v), -ERANGE);
    CHECK_INT(pdm_reg_decode(PDM_TYPE_FLOAT32, PDM_ORDER_CDAB, ninf32_cdab, &v), -ERANGE);
    CHECK_INT(pdm_reg_decode(PDM_TYPE_FLOAT64, PDM_ORDER_ABCD, nan64, &v), -ERANGE);
    CHECK_INT(pdm_reg_decode(PDM_TYPE_FLOAT64, PDM_ORDER_DCBA, inf64_dcba, &v), -ERANGE);
    CHECK_NEAR(v, 7.0, 0); /* untouched on error */
    /* the same bits as an integer are fine */
    CHECK_INT(pdm_reg_decode(PDM_TYPE_U32, PDM_ORDER_ABCD, nan32, &v), 0);
    CHECK_NEAR(v, 2143289344.0, 0);
    /* bad arguments */
    CHECK_INT(pdm_reg_decode((enum pdm_reg_type)42, PDM_ORDER_ABCD, nan32, &v), -EINVAL);
    CHECK_INT(pdm_reg_decode(PDM_TYPE_U16, (enum pdm_word_order)9, nan32, &v), -EINVAL);
}

static void test_encode_round_clamp(void)
{
    uint16_t r[4];
    double v;

    pdm_reg_encode(PDM_TYPE_U16, PDM_ORDER_ABCD, 12.5, r);
    CHECK_INT(r[0], 13); /* half away from zero */
    pdm_reg_encode(PDM_TYPE_U16, PDM_ORDER_ABCD, 12.49, r);
    CHECK_INT(r[0], 12);
    pdm_reg_encode(PDM_TYPE_U16, PDM_ORDER_ABCD, -5, r);
    CHECK_INT(r[0], 0);
    pdm_reg_encode(PDM_TYPE_U16, PDM_ORDER_ABCD, 70000, r);
    CHECK_INT(r[0], 0xFFFF);
    pdm_reg_encode(PDM_TYPE_U16, PDM_ORDER_ABCD, NAN, r);
    CHECK_INT(r[0], 0);
    pdm_reg_encode(PDM_TYPE_S16, PDM_ORDER_ABCD, -2.5, r);
    CHECK_INT(r[0], 0xFFFD); /* -3 */
    pdm_reg_encode(PDM_TYPE_S16, PDM_ORDER_ABCD, -40000, r);
    CHECK_INT(r[0], 0x8000);
    pdm_reg_encode(PDM_TYPE_S16, PDM_ORDER_ABCD, 40000, r);
    CHECK_INT(r[0], 0x7FFF);
    pdm_reg_encode(PDM_TYPE_U32, PDM_ORDER_ABCD, 1e12, r);
    CHECK(r[0] == 0xFFFF && r[1] == 0xFFFF);
    pdm_reg_encode(PDM_TYPE_S32, PDM_ORDER_ABCD, -1e12, r);
    CHECK(r[0] == 0x8000 && r[1] == 0x0000);
    pdm_reg_encode(PDM_TYPE_S32, PDM_ORDER_ABCD, 1e12, r);
    CHECK(r[0] == 0x7FFF && r[1] == 0xFFFF);
    pdm_reg_encode(PDM_TYPE_U64, PDM_ORDER_ABCD, 1e30, r);
    CHECK(r[0] == 0xFFFF && r[1] == 0xFFFF && r[2] == 0xFFFF && r[3] == 0xFFFF);
    pdm_reg_encode(PDM_TYPE_U64, PDM_ORDER_ABCD, -1, r);
    CHECK(r[0] == 0 && r[1] == 0 && r[2] == 0 && r[3] == 0);
    pdm_reg_encode(PDM_TYPE_S64, PDM_ORDER_ABCD, 1e30, r);
    CHECK(r[0] == 0x7FFF && r[1] == 0xFFFF && r[2] == 0xFFFF && r[3] == 0xFFFF);
    pdm_reg_encode(PDM_TYPE_S64, PDM_ORDER_ABCD, -1e30, r);
    CHECK(r[0] == 0x8000 && r[1] == 0 && r[2] == 0 && r[3] == 0);
    pdm_reg_encode(PDM_TYPE_S64, PDM_ORDER_CDAB, -1, r);
    CHECK(r[0] == 0xFFFF && r[1] == 0xFFFF && r[2] == 0xFFFF && r[3] == 0xFFFF);
    CHECK_INT(pdm_reg_decode(PDM_TYPE_S64, PDM_ORDER_CDAB, r, &v), 0);
    CHECK_NEAR(v, -1, 0);
}

static void test_round_trip(void)
{
    static const double values[] = {0, 1, -1, 42.75, -273.15, 1013.25, 65535, -32768, 1e6, 3e-3};
    static const enum pdm_reg_type types[] = {PDM_TYPE_U16, PDM_TYPE_S16,     PDM_TYPE_U32,
                                              PDM_TYPE_S32, PDM_TYPE_FLOAT32, PDM_TYPE_U64,
                                              PDM_TYPE_S64, PDM_TYPE_FLOAT64};
    for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
        for (int o = 0; o < 4; o++) {
            for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
                double in = values[i], expect;
                uint16_t r[4];
                switch (types[t]) {
                case PDM_TYPE_U16:
                    expect = in < 0 ? 0 : in > 65535 ? 65535 : round(in);
                    break;
                case PDM_TYPE_S16:
                    expect = in < -32768 ? -32768 : in > 32767 ? 32767 : round(in);
                    break;
                case PDM_TYPE_U32:
                case PDM_TYPE_U64:
                    expect = in < 0 ? 0 : round(in);
                    break;
                case PDM_TYPE_S32:
                case PDM_TYPE_S64:
                    expect = round(in);
                    break;
                case PDM_TYPE_FLOAT32:
                    expect = (float)in;
                    break;
                default:
                    expect = in;
                }
                double out = NAN;
                pdm_reg_encode(types[t], orders[o], in, r);
                int rc = pdm_reg_decode(types[t], orders[o], r, &out);
                CHECK_MSG(rc == 0 && out == expect, "%s %s: %g -> %.17g (rc %d), expected %.17g",
                          pdm_reg_type_name(types[t]), pdm_word_order_name(orders[o]), in, out, rc,
                          expect);
            }
        }
    }
}

static void test_names(void)
{
    enum pdm_reg_type t;
    enum pdm_word_order o;
    enum pdm_reg_table tb;

    static const char *tnames[] = {"u16", "s16", "u32", "s32", "float32", "u64", "s64", "float64"};
    for (int i = 0; i < 8; i++) {
        CHECK_INT(pdm_reg_type_parse(tnames[i], &t), 0);
        CHECK_INT(t, i);
        CHECK_STR(pdm_reg_type_name((enum pdm_reg_type)i), tnames[i]);
    }
    CHECK_INT(pdm_reg_type_parse("FLOAT32", &t), 0);
    CHECK_INT(t, PDM_TYPE_FLOAT32);
    CHECK_INT(pdm_reg_type_parse("int16", &t), 0);
    CHECK_INT(t, PDM_TYPE_S16);
    CHECK_INT(pdm_reg_type_parse("float16", &t), -EINVAL);
    CHECK_INT(pdm_reg_type_parse("", &t), -EINVAL);
    CHECK_STR(pdm_reg_type_name((enum pdm_reg_type)77), "?");

    CHECK_INT(pdm_word_order_parse("ABCD", &o), 0);
    CHECK_INT(o, PDM_ORDER_ABCD);
    CHECK_INT(pdm_word_order_parse("cdab", &o), 0);
    CHECK_INT(o, PDM_ORDER_CDAB);
    CHECK_INT(pdm_word_order_parse("BaDc", &o), 0);
    CHECK_INT(o, PDM_ORDER_BADC);
    CHECK_INT(pdm_word_order_parse("DCBA", &o), 0);
    CHECK_INT(o, PDM_ORDER_DCBA);
    CHECK_INT(pdm_word_order_parse("big", &o), 0);
    CHECK_INT(o, PDM_ORDER_ABCD);
    CHECK_INT(pdm_word_order_parse("LITTLE", &o), 0);
    CHECK_INT(o, PDM_ORDER_CDAB);
    CHECK_INT(pdm_word_order_parse("ABDC", &o), -EINVAL);
    CHECK_INT(pdm_word_order_parse("middle", &o), -EINVAL);
    CHECK_STR(pdm_word_order_name(PDM_ORDER_ABCD), "ABCD");
    CHECK_STR(pdm_word_order_name(PDM_ORDER_CDAB), "CDAB");
    CHECK_STR(pdm_word_order_name(PDM_ORDER_BADC), "BADC");
    CHECK_STR(pdm_word_order_name(PDM_ORDER_DCBA), "DCBA");
    CHECK_STR(pdm_word_order_name((enum pdm_word_order)8), "?");

    CHECK_INT(pdm_reg_table_parse("holding", &tb), 0);
    CHECK_INT(tb, PDM_TABLE_HOLDING);
    CHECK_INT(pdm_reg_table_parse("Input", &tb), 0);
    CHECK_INT(tb, PDM_TABLE_INPUT);
    CHECK_INT(pdm_reg_table_parse("coil", &tb), 0);
    CHECK_INT(tb, PDM_TABLE_COIL);
    CHECK_INT(pdm_reg_table_parse("Coils", &tb), 0);
    CHECK_INT(tb, PDM_TABLE_COIL);
    CHECK_INT(pdm_reg_table_parse("discrete", &tb), 0);
    CHECK_INT(tb, PDM_TABLE_DISCRETE);
    CHECK_INT(pdm_reg_table_parse("discrete_input", &tb), 0);
    CHECK_INT(tb, PDM_TABLE_DISCRETE);
    CHECK_INT(pdm_reg_table_parse("register", &tb), -EINVAL);
    CHECK_STR(pdm_reg_table_name(PDM_TABLE_HOLDING), "holding");
    CHECK_STR(pdm_reg_table_name(PDM_TABLE_INPUT), "input");
    CHECK_STR(pdm_reg_table_name(PDM_TABLE_COIL), "coil");
    CHECK_STR(pdm_reg_table_name(PDM_TABLE_DISCRETE), "discrete");
    CHECK_STR(pdm_reg_table_name((enum pdm_reg_table)9), "?");
    CHECK(pdm_reg_table_is_bits(PDM_TABLE_COIL) && pdm_reg_table_is_bits(PDM_TABLE_DISCRETE));
    CHECK(!pdm_reg_table_is_bits(PDM_TABLE_HOLDING) && !pdm_reg_table_is_bits(PDM_TABLE_INPUT));

    CHECK_INT(pdm_reg_type_parse("bool", &t), 0);
    CHECK_INT(t, PDM_TYPE_BOOL);
    CHECK_STR(pdm_reg_type_name(PDM_TYPE_BOOL), "bool");
}

/* Coils and discrete inputs: the driver hands each bit over as one uint16_t, 0 or 1. Any
 * non-zero word is "on" (a defensive choice for drivers that pass the raw byte 0xFF), and the
 * word order never matters for a single bit. */
static void test_bits(void)
{
    CHECK_INT(pdm_reg_words(PDM_TYPE_BOOL), 1);
    static const struct {
        uint16_t word;
        double value;
    } bits[] = {{0x0000, 0.0}, {0x0001, 1.0}, {0x00FF, 1.0}, {0xFF00, 1.0}, {0x8000, 1.0}};
    for (size_t i = 0; i < sizeof(bits) / sizeof(bits[0]); i++) {
        for (int o = 0; o < 4; o++) {
            double got = -1;
            CHECK_INT(pdm_reg_decode(PDM_TYPE_BOOL, orders[o], &bits[i].word, &got), 0);
            CHECK_NEAR(got, bits[i].value, 0);
        }
    }
    /* encode: 0 and NaN are off, anything else on; one word only */
    uint16_t regs[2] = {0xAAAA, 0xAAAA};
    pdm_reg_encode(PDM_TYPE_BOOL, PDM_ORDER_DCBA, 1.0, regs);
    CHECK_INT(regs[0], 1);
    CHECK_INT(regs[1], 0xAAAA);
    pdm_reg_encode(PDM_TYPE_BOOL, PDM_ORDER_ABCD, 0.0, regs);
    CHECK_INT(regs[0], 0);
    pdm_reg_encode(PDM_TYPE_BOOL, PDM_ORDER_ABCD, -3.5, regs);
    CHECK_INT(regs[0], 1);
    pdm_reg_encode(PDM_TYPE_BOOL, PDM_ORDER_ABCD, NAN, regs);
    CHECK_INT(regs[0], 0);
    /* a bool is never NaN/Inf: no -ERANGE whatever the word */
    double got;
    uint16_t nanlike = 0x7FC0;
    CHECK_INT(pdm_reg_decode(PDM_TYPE_BOOL, PDM_ORDER_ABCD, &nanlike, &got), 0);
    CHECK_NEAR(got, 1.0, 0);
}

int main(void)
{
    test_golden();
    test_u64_large();
    test_words();
    test_nan_inf();
    test_encode_round_clamp();
    test_round_trip();
    test_names();
    test_bits();
    return check_summary("test_registers");
}
