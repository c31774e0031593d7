/* lib/json.c: string escaping, the number policy (shortest round-trip, null when not finite,
 * exact integers) and a fixed buffer that runs out. */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "lib/json.h"

static const char *num(double v)
{
    static char buf[64];
    struct pdm_json j = pdm_json_buffer(buf, sizeof(buf));
    pdm_json_num(&j, v);
    return buf;
}

static void test_numbers(void)
{
    CHECK_STR(num(0.1), "0.1");
    CHECK_STR(num(21.5), "21.5");
    CHECK_STR(num(-3), "-3");
    CHECK_STR(num(0), "0");
    CHECK_STR(num(1.0 / 3.0), "0.3333333333333333");
    CHECK_STR(num(0.1 + 0.2), "0.30000000000000004");
    CHECK_STR(num(1e300), "1e+300");
    CHECK_STR(num(NAN), "null");
    CHECK_STR(num(INFINITY), "null");
    CHECK_STR(num(-INFINITY), "null");
    /* every double reads back as itself, within PDM_JSON_NUM_MAX */
    const double hard[] = {DBL_MIN,
                           -DBL_MIN,
                           DBL_MAX,
                           DBL_TRUE_MIN,
                           5e-324,
                           123456789.123456789,
                           (double)(float)0.1,
                           2.2250738585072014e-308};
    for (size_t i = 0; i < sizeof(hard) / sizeof(hard[0]); i++) {
        char t[PDM_JSON_NUM_MAX];
        pdm_json_double_text(t, sizeof(t), hard[i]);
        CHECK_MSG(strtod(t, NULL) == hard[i], "%s does not read back", t);
        CHECK(strlen(t) < sizeof(t));
    }
    srand(7);
    for (int i = 0; i < 20000; i++) {
        uint64_t bits = ((uint64_t)rand() << 42) ^ ((uint64_t)rand() << 21) ^ (uint64_t)rand();
        double v;
        memcpy(&v, &bits, sizeof(v));
        if (!isfinite(v))
            continue;
        char t[PDM_JSON_NUM_MAX];
        pdm_json_double_text(t, sizeof(t), v);
        if (strtod(t, NULL) != v) {
            CHECK_MSG(0, "%s does not read back", t);
            break;
        }
    }
    char t[PDM_JSON_NUM_MAX];
    pdm_json_double_text(t, sizeof(t), NAN);
    CHECK_STR(t, "NaN");
    pdm_json_double_text(t, sizeof(t), -INFINITY);
    CHECK_STR(t, "-Infinity");

    char buf[64];
    struct pdm_json j = pdm_json_buffer(buf, sizeof(buf));
    pdm_json_int(&j, INT64_MIN);
    pdm_json_raw(&j, ",");
    pdm_json_uint(&j, UINT64_MAX);
    CHECK_STR(buf, "-9223372036854775808,18446744073709551615");
}

static void test_strings(void)
{
    char buf[128];
    struct pdm_json j = pdm_json_buffer(buf, sizeof(buf));
    pdm_json_str(&j, "a\"b\\c\n\r\t\x01\x1f \xc3\xa9/");
    CHECK_STR(buf, "\"a\\\"b\\\\c\\n\\r\\t\\u0001\\u001f \xc3\xa9/\"");
    j = pdm_json_buffer(buf, sizeof(buf));
    pdm_json_str(&j, NULL);
    CHECK_STR(buf, "\"\"");

    /* a FILE writer writes the same text */
    char *mem = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&mem, &len);
    pdm_json_fstr(f, "x\"y");
    fputc(' ', f);
    pdm_json_fnum(f, 0.1);
    fputc(' ', f);
    pdm_json_fnum(f, NAN);
    fclose(f);
    CHECK_STR(mem, "\"x\\\"y\" 0.1 null");
    free(mem);
}

static void test_full_buffer(void)
{
    char buf[8];
    struct pdm_json j = pdm_json_buffer(buf, sizeof(buf));
    pdm_json_raw(&j, "{\"a\":");
    CHECK_INT(j.full, 0);
    pdm_json_num(&j, 0.125); /* 5 more bytes do not fit in 8 with the NUL */
    CHECK_INT(j.full, 1);
    CHECK_STR(buf, "{\"a\":"); /* what fitted whole stays */
    CHECK_INT(j.len, 5);
    pdm_json_raw(&j, "}"); /* would fit, but the writer stopped */
    CHECK_STR(buf, "{\"a\":");
    j = pdm_json_buffer(buf, sizeof(buf));
    pdm_json_str(&j, "abcdefgh");
    CHECK_INT(j.full, 1);
    CHECK(strlen(buf) < sizeof(buf));
}

int main(void)
{
    test_numbers();
    test_strings();
    test_full_buffer();
    return check_summary("test_json");
}
