/* The one JSON writer: pdmctl's --json outputs (decode, subscribe, buffer, report, eval) and the
 * agent's `status json` on the control socket.
 *
 * Strings are escaped in one place: '"' and '\' with a backslash, \n \r \t by name, any other
 * byte below 0x20 as \u00XX; everything else (UTF-8 included) as is.
 *
 * Numbers, one policy: a double is written with the fewest significant digits (15, 16 or 17, as
 * %.*g) that read back as the same double, so nothing is lost and 0.1 stays "0.1"; a value that
 * is not finite (NaN, infinity) has no JSON number and is written as null. Integers are exact
 * (pdm_json_int, pdm_json_uint). pdm_json_double_text gives the same digits for text output,
 * with "NaN", "Infinity", "-Infinity" for the others (the proto3 JSON mapping puts those in
 * quotes: print.c).
 *
 * A writer goes to a FILE or into a fixed buffer (the control socket's per-client buffer):
 * when the buffer is full, the writer stops, keeps what fitted whole and sets full. */
#ifndef PDM_JSON_H
#define PDM_JSON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct pdm_json {
    FILE *f;   /* non-NULL: write here */
    char *buf; /* else into buf[0..cap), always NUL-terminated */
    size_t cap, len;
    int full; /* the buffer ran out: later writes do nothing */
};

/* The longest text pdm_json_double_text writes, NUL included ("-2.2250738585072014e-308"). */
#define PDM_JSON_NUM_MAX 32

struct pdm_json pdm_json_file(FILE *f);
struct pdm_json pdm_json_buffer(char *buf, size_t cap);

/* Text as is: punctuation, keys known to need no escaping. */
void pdm_json_raw(struct pdm_json *j, const char *text);
void pdm_json_rawf(struct pdm_json *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A string in quotes, escaped; NULL is written as "". */
void pdm_json_str(struct pdm_json *j, const char *s);
/* A double by the policy above (null when not finite). */
void pdm_json_num(struct pdm_json *j, double v);
void pdm_json_int(struct pdm_json *j, int64_t v);
void pdm_json_uint(struct pdm_json *j, uint64_t v);

/* Shortest round-trip digits of v into out (at least PDM_JSON_NUM_MAX bytes is always
 * enough); "NaN", "Infinity" or "-Infinity" when v is not finite. */
void pdm_json_double_text(char *out, size_t len, double v);

/* For FILE callers: the same as pdm_json_str / pdm_json_num on pdm_json_file(f). */
void pdm_json_fstr(FILE *f, const char *s);
void pdm_json_fnum(FILE *f, double v);

#endif
