/* The option errors and number parsing every pdmctl subcommand shares (cli.h). */
#include "cli.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pdmctl.h"

int pdmctl_cli_bad_option(const char *cmd, int c, char *const *argv, pdmctl_usage_fn usage)
{
    /* getopt_long has moved past a long option and past the last letter of "-xyz"; within
     * "-xyz" it has not, so a short option is named by its letter (optopt) */
    const char *opt = optind > 0 ? argv[optind - 1] : "?";
    char letter[3] = "-?";
    int is_long = strncmp(opt, "--", 2) == 0;
    if (optopt > 0 && optopt < 256 && (c == '?' || !is_long)) {
        letter[1] = (char)optopt;
        opt = letter;
    }
    if (c == ':')
        fprintf(stderr, "pdmctl %s: %s needs a value (try: pdmctl %s --help)\n", cmd, opt, cmd);
    else if (optopt >= 256 && is_long) /* a known long option given a value: --json=1 */
        fprintf(stderr, "pdmctl %s: %.*s takes no value (try: pdmctl %s --help)\n", cmd,
                (int)strcspn(opt, "="), opt, cmd);
    else
        fprintf(stderr, "pdmctl %s: unknown option '%s' (try: pdmctl %s --help)\n", cmd, opt, cmd);
    if (usage)
        usage(stderr);
    return PDMCTL_EXIT_USAGE;
}

int pdmctl_cli_extra_arg(const char *cmd, const char *arg, pdmctl_usage_fn usage)
{
    fprintf(stderr, "pdmctl %s: unexpected argument '%s' (try: pdmctl %s --help)\n", cmd, arg, cmd);
    if (usage)
        usage(stderr);
    return PDMCTL_EXIT_USAGE;
}

/* [+-]digits, decimal or 0x hex, into a sign and a 64-bit magnitude; -1 when it is not one or
 * does not fit in 64 bits. */
static int whole(const char *s, int *neg, uint64_t *mag)
{
    const char *p = s;
    *neg = *p == '-';
    if (*p == '-' || *p == '+')
        p++;
    unsigned base = 10;
    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
        base = 16;
        p += 2;
    }
    if (!*p)
        return -1;
    uint64_t v = 0;
    for (; *p; p++) {
        unsigned d = *p >= '0' && *p <= '9'   ? (unsigned)(*p - '0')
                     : *p >= 'a' && *p <= 'f' ? (unsigned)(*p - 'a' + 10)
                     : *p >= 'A' && *p <= 'F' ? (unsigned)(*p - 'A' + 10)
                                              : 99;
        if (d >= base || v > (UINT64_MAX - d) / base)
            return -1;
        v = v * base + d;
    }
    *mag = v;
    return 0;
}

int pdmctl_parse_i64(const char *cmd, const char *opt, const char *what, const char *s, int64_t min,
                     int64_t max, int64_t *out)
{
    int neg;
    uint64_t mag;
    int64_t v = 0;
    int ok = whole(s, &neg, &mag) == 0 && mag <= (neg ? (uint64_t)INT64_MAX + 1 : INT64_MAX);
    if (ok) {
        /* -2^63 has no positive twin: negate in unsigned arithmetic */
        v = neg ? (int64_t)(0 - mag) : (int64_t)mag;
        ok = v >= min && v <= max;
    }
    if (!ok) {
        fprintf(stderr, "pdmctl %s: %s: expected %s %" PRId64 "..%" PRId64 "%s, got '%s'\n", cmd,
                opt, what ? what : "a whole number", min, max, what ? "" : " (or 0x hex)", s);
        return -1;
    }
    *out = v;
    return 0;
}

int pdmctl_parse_u64(const char *cmd, const char *opt, const char *s, uint64_t max, uint64_t *out)
{
    int neg;
    uint64_t v;
    if (whole(s, &neg, &v) != 0 || neg || v > max) {
        fprintf(stderr,
                "pdmctl %s: %s: expected a whole number 0..%" PRIu64 " (or 0x hex), got '%s'\n",
                cmd, opt, max, s);
        return -1;
    }
    *out = v;
    return 0;
}

int pdmctl_parse_int(const char *cmd, const char *opt, const char *s, long min, long max, int *out)
{
    int64_t v;
    if (pdmctl_parse_i64(cmd, opt, NULL, s, min, max, &v) != 0)
        return -1;
    *out = (int)v;
    return 0;
}

/* A finite number in strtod's forms, nothing before or after it; -1 otherwise. */
static int number(const char *s, double *out)
{
    char *end;
    errno = 0;
    if (!*s || *s == ' ' || *s == '\t')
        return -1;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v))
        return -1;
    *out = v;
    return 0;
}

int pdmctl_parse_double(const char *cmd, const char *opt, const char *s, double min, double max,
                        double *out)
{
    double v;
    if (number(s, &v) != 0 || !(v >= min && v <= max)) {
        fprintf(stderr, "pdmctl %s: %s: expected a number from %g to %g, got '%s'\n", cmd, opt, min,
                max, s);
        return -1;
    }
    *out = v;
    return 0;
}

int pdmctl_parse_positive(const char *cmd, const char *opt, const char *s, double *out)
{
    double v;
    if (number(s, &v) != 0 || !(v > 0)) {
        fprintf(stderr, "pdmctl %s: %s: expected a positive number, got '%s'\n", cmd, opt, s);
        return -1;
    }
    *out = v;
    return 0;
}
