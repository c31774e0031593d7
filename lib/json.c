/* The one JSON writer (see json.h for the escaping and number policy). */
#include "json.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

struct pdm_json pdm_json_file(FILE *f)
{
    return (struct pdm_json){.f = f};
}

struct pdm_json pdm_json_buffer(char *buf, size_t cap)
{
    if (cap)
        buf[0] = '\0';
    return (struct pdm_json){.buf = buf, .cap = cap, .full = cap == 0};
}

static void vput(struct pdm_json *j, const char *fmt, va_list ap)
{
    if (j->f) {
        vfprintf(j->f, fmt, ap);
        return;
    }
    if (j->full)
        return;
    int n = vsnprintf(j->buf + j->len, j->cap - j->len, fmt, ap);
    if (n < 0 || (size_t)n >= j->cap - j->len) {
        j->buf[j->len] = '\0'; /* keep only what fitted whole */
        j->full = 1;
        return;
    }
    j->len += (size_t)n;
}

void pdm_json_rawf(struct pdm_json *j, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vput(j, fmt, ap);
    va_end(ap);
}

void pdm_json_raw(struct pdm_json *j, const char *text)
{
    pdm_json_rawf(j, "%s", text);
}

void pdm_json_str(struct pdm_json *j, const char *s)
{
    pdm_json_raw(j, "\"");
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p && !j->full; p++) {
        switch (*p) {
        case '"':
            pdm_json_raw(j, "\\\"");
            break;
        case '\\':
            pdm_json_raw(j, "\\\\");
            break;
        case '\n':
            pdm_json_raw(j, "\\n");
            break;
        case '\r':
            pdm_json_raw(j, "\\r");
            break;
        case '\t':
            pdm_json_raw(j, "\\t");
            break;
        default:
            if (*p < 0x20)
                pdm_json_rawf(j, "\\u%04x", *p);
            else
                pdm_json_rawf(j, "%c", *p);
        }
    }
    pdm_json_raw(j, "\"");
}

void pdm_json_double_text(char *out, size_t len, double v)
{
    if (isnan(v)) {
        snprintf(out, len, "NaN");
        return;
    }
    if (isinf(v)) {
        snprintf(out, len, v > 0 ? "Infinity" : "-Infinity");
        return;
    }
    /* 17 significant digits always read back; fewer often do and read better */
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(out, len, "%.*g", prec, v);
        if (prec == 17 || strtod(out, NULL) == v)
            return;
    }
}

void pdm_json_num(struct pdm_json *j, double v)
{
    if (!isfinite(v)) {
        pdm_json_raw(j, "null");
        return;
    }
    char t[PDM_JSON_NUM_MAX];
    pdm_json_double_text(t, sizeof(t), v);
    pdm_json_raw(j, t);
}

void pdm_json_int(struct pdm_json *j, int64_t v)
{
    pdm_json_rawf(j, "%" PRId64, v);
}

void pdm_json_uint(struct pdm_json *j, uint64_t v)
{
    pdm_json_rawf(j, "%" PRIu64, v);
}

void pdm_json_fstr(FILE *f, const char *s)
{
    struct pdm_json j = pdm_json_file(f);
    pdm_json_str(&j, s);
}

void pdm_json_fnum(FILE *f, double v)
{
    struct pdm_json j = pdm_json_file(f);
    pdm_json_num(&j, v);
}
