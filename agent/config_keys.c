/* The key engine of agent.conf (config_keys.h): reading one value by its kind, defaults, and a
 * whole section through its table. No section knows more than its table here; the rules
 * between keys are in config_sections.c and config.c. */
#include "config_keys.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "lib/mqtt_uri.h"

/* ---- values ---------------------------------------------------------------------------- */

static int parse_bool(const char *s, int *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    for (size_t i = 0; i < N_ELEMS(yes); i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    return -EINVAL;
}

/* agent.conf takes mqtts://HOST:PORT or mqtt://HOST:PORT only (HOST may be [IPv6]): the port is
 * written out and Paho's ssl:// and tcp:// are not. Sets *plain for mqtt://. */
int keys_check_uri(const char *v, int *plain)
{
    struct pdm_mqtt_uri u;
    if (pdm_mqtt_uri_parse(v, &u, NULL, 0) < 0 || u.paho_scheme || !u.port_given)
        return -EINVAL;
    *plain = !u.tls;
    return 0;
}

static int check_topic_prefix(const char *v)
{
    size_t n = strlen(v);
    if (!n || v[0] == '/' || v[n - 1] == '/' || strpbrk(v, "+#"))
        return -EINVAL;
    return 0;
}

static int is_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (valid for any year here). */
static int64_t days_from_civil(int y, int m, int d)
{
    static const int before[12] = {0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334};
    int64_t days = 0;
    for (int yy = 1970; yy < y; yy++)
        days += 365 + is_leap(yy);
    for (int yy = y; yy < 1970; yy++)
        days -= 365 + is_leap(yy);
    return days + before[m - 1] + (m > 2 && is_leap(y)) + d - 1;
}

/* A clock reading before this is a gateway without RTC that has not synced yet: the
 * "not in the future" check would then reject every date and keep the agent from starting. */
#define CLOCK_PLAUSIBLE_S 1577836800LL /* 2020-01-01T00:00:00Z */
/* A date is local; its day starts at most 14 h before UTC midnight (UTC+14). */
#define MAX_UTC_OFFSET_S (14 * 3600)

static int parse_date(struct ctx *c, const struct pdm_ini_section *s, const struct pdm_ini_entry *e,
                      int64_t *out)
{
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    const char *v = e->value;
    int digits_ok = strlen(v) == 10 && v[4] == '-' && v[7] == '-';
    for (int i = 0; digits_ok && i < 10; i++)
        if (i != 4 && i != 7 && !(v[i] >= '0' && v[i] <= '9'))
            digits_ok = 0;
    if (!digits_ok) {
        pdm_ini_error(&c->doc, e->line, s, e->key, "expected a date YYYY-MM-DD, got '%s'", v);
        return -EINVAL;
    }
    int y = atoi(v), m = atoi(v + 5), d = atoi(v + 8);
    if (y < 1900 || m < 1 || m > 12 || d < 1 || d > mdays[m - 1] + (m == 2 && is_leap(y))) {
        pdm_ini_error(&c->doc, e->line, s, e->key, "'%s' is not a real date", v);
        return -EINVAL;
    }
    int64_t t = days_from_civil(y, m, d) * 86400;
    time_t now = time(NULL);
    if ((long long)now >= CLOCK_PLAUSIBLE_S && t - MAX_UTC_OFFSET_S > (int64_t)now) {
        pdm_ini_error(&c->doc, e->line, s, e->key, "'%s' is in the future", v);
        return -EINVAL;
    }
    *out = t;
    return 0;
}

/* Resolves a path value against the config's folder into out[outlen]. */
int keys_resolve_path(struct ctx *c, const struct pdm_ini_section *s, const struct pdm_ini_entry *e,
                      char *out, size_t outlen)
{
    const char *v = e->value;
    if (!*v) {
        pdm_ini_error(&c->doc, e->line, s, e->key, "expected a path, got ''");
        return -EINVAL;
    }
    int n;
    if (v[0] == '/') {
        n = snprintf(out, outlen, "%s", v);
    } else {
        while (v[0] == '.' && v[1] == '/') {
            v += 2;
            while (*v == '/')
                v++;
        }
        if (!*v || strcmp(v, ".") == 0)
            n = snprintf(out, outlen, "%s", c->cfg->dir);
        else
            n = snprintf(out, outlen, "%s/%s", strcmp(c->cfg->dir, "/") ? c->cfg->dir : "", v);
    }
    if (n < 0 || (size_t)n >= outlen) {
        out[0] = '\0';
        pdm_ini_error(&c->doc, e->line, s, e->key, "path too long: at most %zu characters",
                      outlen - 1);
        return -ENAMETOOLONG;
    }
    return 0;
}

int keys_check_readable(struct ctx *c, const struct pdm_ini_section *s,
                        const struct pdm_ini_entry *e, const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int err = errno;
        pdm_ini_error(&c->doc, e->line, s, e->key, "cannot read '%s': %s", path, strerror(err));
        return -err;
    }
    close(fd);
    return 0;
}

/* Parses one value into obj according to def. Returns 0, or -EINVAL after reporting. */
static int apply_value(struct ctx *c, const struct pdm_ini_section *s, const struct key_def *def,
                       const struct pdm_ini_entry *e, void *obj)
{
    const struct pdm_ini_doc *doc = &c->doc;
    void *p = (char *)obj + def->off;
    const char *v = e->value;
    const char *expected = NULL;
    long long i;
    double x;
    switch (def->kind) {
    case V_INT:
        if (pdm_ini_int(doc, s, e, def->min, def->max, &i) < 0)
            return -EINVAL;
        *(int *)p = (int)i;
        return 0;
    case V_DOUBLE:
    case V_DRANGE: /* the range: keys_apply(), after the section */
        return pdm_ini_double(doc, s, e, (double *)p);
    case V_NONZERO:
        if (pdm_ini_double(doc, s, e, &x) < 0)
            return -EINVAL;
        if (x == 0) {
            pdm_ini_error(doc, e->line, s, e->key, "expected a non-zero number, got '%s'", v);
            return -EINVAL;
        }
        *(double *)p = x;
        return 0;
    case V_BOOL:
        if (parse_bool(v, (int *)p) == 0)
            return 0;
        expected = "true or false (or yes/no, on/off, 1/0)";
        break;
    case V_STR:
    case V_TEXT:
        if (def->kind == V_TEXT && (!*v || strpbrk(v, " \t"))) {
            pdm_ini_error(doc, e->line, s, e->key, "expected a value without blanks, got '%s'", v);
            return -EINVAL;
        }
        if (strlen(v) >= def->size) {
            pdm_ini_error(doc, e->line, s, e->key, "too long: at most %zu characters",
                          def->size - 1);
            return -EINVAL;
        }
        strcpy(p, v);
        return 0;
    case V_DEVICE_ID:
        if (!pdm_ini_is_name(v, def->size - 1, 0)) {
            expected = "1 to 64 characters from A-Z a-z 0-9 _ -";
            break;
        }
        strcpy(p, v);
        return 0;
    case V_PATH:
        return keys_resolve_path(c, s, e, p, def->size);
    case V_FILE:
        if (keys_resolve_path(c, s, e, p, def->size) < 0)
            return -EINVAL;
        return keys_check_readable(c, s, e, p) < 0 ? -EINVAL : 0;
    case V_LOGLEVEL:
        if (pdm_log_level_parse(v, (enum pdm_log_level *)p) == 0)
            return 0;
        expected = "error, warning, info or debug";
        break;
    case V_URI: {
        int plain;
        if (keys_check_uri(v, &plain) < 0 || strlen(v) >= def->size) {
            expected = "mqtts://HOST:PORT";
            break;
        }
        strcpy(p, v);
        return 0;
    }
    case V_TOPIC:
        if (check_topic_prefix(v) < 0 || strlen(v) >= def->size) {
            expected = "MQTT topic levels without '+' or '#' and no leading or trailing '/'";
            break;
        }
        strcpy(p, v);
        return 0;
    case V_DRIVER:
        if (strcmp(v, "modbus-tcp") == 0)
            *(enum pdm_bus_driver *)p = PDM_DRIVER_MODBUS_TCP;
        else if (strcmp(v, "modbus-rtu") == 0)
            *(enum pdm_bus_driver *)p = PDM_DRIVER_MODBUS_RTU;
        else if (strcmp(v, "sysfs") == 0)
            *(enum pdm_bus_driver *)p = PDM_DRIVER_SYSFS;
        else if (strcmp(v, "iio") == 0)
            *(enum pdm_bus_driver *)p = PDM_DRIVER_IIO;
        else
            expected = "modbus-tcp, modbus-rtu, sysfs or iio";
        break;
    case V_PARITY:
        if (strlen(v) == 1 && strchr("NEOneo", v[0])) {
            *(char *)p = (char)(v[0] & ~0x20); /* upper case */
            return 0;
        }
        expected = "N, E or O";
        break;
    case V_BUSREF: {
        int idx = pdm_config_bus_index(c->cfg, v);
        if (idx >= 0) {
            *(uint32_t *)p = (uint32_t)idx;
            return 0;
        }
        const char *names[64];
        size_t n = 0;
        for (uint32_t b = 0; b < c->cfg->n_buses && n < N_ELEMS(names); b++)
            names[n++] = c->cfg->buses[b].name;
        const char *hint = pdm_ini_suggest(v, names, n);
        pdm_ini_error(doc, e->line, s, e->key, "no [bus %s] section%s%s%s", v,
                      hint ? " (did you mean '" : "", hint ? hint : "", hint ? "'?)" : "");
        return -EINVAL;
    }
    case V_SENSORREF: {
        int idx = pdm_config_sensor_index(c->cfg, v);
        if (idx >= 0) {
            *(int32_t *)p = idx;
            return 0;
        }
        pdm_ini_error(doc, e->line, s, e->key,
                      "no [sensor %s] section: the sensor whose reading says the asset runs", v);
        return -EINVAL;
    }
    case V_DATE:
        return parse_date(c, s, e, (int64_t *)p);
    case V_AGE_FROM:
        if (strcmp(v, "installed") == 0)
            *(int *)p = 0;
        else if (strcmp(v, "run_hours") == 0)
            *(int *)p = 1;
        else
            expected = "installed or run_hours";
        break;
    case V_TABLE:
        if (pdm_reg_table_parse(v, (enum pdm_reg_table *)p) == 0)
            return 0;
        expected = "holding, input, coil or discrete";
        break;
    case V_TYPE:
        if (pdm_reg_type_parse(v, (enum pdm_reg_type *)p) == 0)
            return 0;
        expected = "u16, s16, u32, s32, float32, u64, s64 or float64";
        break;
    case V_ORDER:
        if (pdm_word_order_parse(v, (enum pdm_word_order *)p) == 0)
            return 0;
        expected = "big (ABCD), little (CDAB), BADC or DCBA";
        break;
    case V_AXIS:
        if (strlen(v) == 1 && v[0] >= 'x' && v[0] <= 'z') {
            *(int *)p = v[0] - 'x';
            return 0;
        }
        expected = "x, y or z";
        break;
    case V_FEATURE: {
        static const char *const names[] = {"rms", "peak", "crest", "kurtosis"};
        for (size_t k = 0; k < N_ELEMS(names); k++) {
            if (strcmp(v, names[k]) == 0) {
                *(enum pdm_vib_feature *)p = (enum pdm_vib_feature)k;
                return 0;
            }
        }
        expected = "rms, peak, crest or kurtosis";
        break;
    }
    case V_IIO_MODE:
        if (strcmp(v, "buffered") == 0)
            *(enum pdm_iio_mode *)p = PDM_IIO_BUFFERED;
        else if (strcmp(v, "polled") == 0)
            *(enum pdm_iio_mode *)p = PDM_IIO_POLLED;
        else
            expected = "buffered or polled";
        break;
    }
    if (!expected)
        return 0;
    pdm_ini_error(doc, e->line, s, e->key, "expected %s, got '%s'", expected, v);
    return -EINVAL;
}

/* "modbus-tcp or modbus-rtu" for a mask of F_TCP..F_IIO, into buf. */
const char *keys_driver_names(unsigned mask, char *buf, size_t len)
{
    static const struct {
        unsigned flag;
        const char *name;
    } drv[] = {{F_TCP, "modbus-tcp"}, {F_RTU, "modbus-rtu"}, {F_SYSFS, "sysfs"}, {F_IIO, "iio"}};
    size_t n = 0, left = (size_t)__builtin_popcount(mask & F_DRIVERS);
    buf[0] = '\0';
    for (size_t k = 0; k < N_ELEMS(drv); k++) {
        if (!(mask & drv[k].flag))
            continue;
        left--;
        int w = snprintf(buf + n, len - n, "%s%s", drv[k].name,
                         left == 0   ? ""
                         : left == 1 ? " or "
                                     : ", ");
        if (w < 0 || (size_t)w >= len - n)
            break;
        n += (size_t)w;
    }
    return buf;
}

/* The F_ flag of a driver name, 0 when unknown. */
unsigned keys_driver_flag(const char *v)
{
    if (strcmp(v, "modbus-tcp") == 0)
        return F_TCP;
    if (strcmp(v, "modbus-rtu") == 0)
        return F_RTU;
    if (strcmp(v, "sysfs") == 0)
        return F_SYSFS;
    if (strcmp(v, "iio") == 0)
        return F_IIO;
    return 0;
}

/* An integer of size bytes at p (the enum, int, uint32_t or char a key's kind stores). */
static void store_int(void *p, size_t size, long long v)
{
    if (size == sizeof(char)) {
        *(char *)p = (char)v;
    } else if (size == sizeof(int32_t)) {
        int32_t x = (int32_t)v;
        memcpy(p, &x, sizeof(x));
    } else {
        int64_t x = v;
        memcpy(p, &x, sizeof(x));
    }
}

void keys_defaults(const struct key_def *defs, size_t n_defs, void *obj)
{
    for (size_t d = 0; d < n_defs; d++) {
        const struct key_def *def = &defs[d];
        void *p = (char *)obj + def->off;
        if (!def->def.set)
            continue;
        switch (def->kind) {
        case V_DOUBLE:
        case V_DRANGE:
        case V_NONZERO:
            *(double *)p = def->def.d;
            break;
        case V_STR:
        case V_TEXT:
        case V_DEVICE_ID:
        case V_PATH:
        case V_FILE:
        case V_URI:
        case V_TOPIC:
            snprintf(p, def->size, "%s", def->def.s);
            break;
        default:
            store_int(p, def->size, def->def.i);
            break;
        }
    }
}

/* Is def read in this pass? */
static int in_pass(const struct key_def *def, enum keys_pass pass)
{
    if (pass == KEYS_FIRST)
        return (def->flags & F_FIRST) != 0;
    if (pass == KEYS_REST)
        return !(def->flags & F_FIRST);
    return 1;
}

uint32_t keys_apply(struct ctx *c, const struct pdm_ini_section *s, const struct key_def *defs,
                    size_t n_defs, void *obj, const struct keys_opts *opts)
{
    static const struct keys_opts none;
    if (!opts)
        opts = &none;
    unsigned driver_only = opts->driver_only;
    const char *names[32];
    for (size_t d = 0; d < n_defs && d < N_ELEMS(names); d++)
        names[d] = defs[d].key;
    uint32_t ok = 0;
    for (size_t i = 0; i < s->n_entries; i++) {
        const struct pdm_ini_entry *e = &s->entries[i];
        size_t d = 0;
        while (d < n_defs && strcmp(defs[d].key, e->key) != 0)
            d++;
        if (d == n_defs) {
            if (opts->pass == KEYS_FIRST || (opts->other && opts->other(c, s, e, obj, opts->arg)))
                continue;
            pdm_ini_unknown_key(&c->doc, s, e, names, n_defs);
            continue;
        }
        if (!in_pass(&defs[d], opts->pass))
            continue;
        unsigned only = defs[d].flags & F_DRIVERS;
        if (driver_only && only && !(only & driver_only)) {
            char list[64];
            pdm_ini_error(&c->doc, e->line, s, e->key, "'%s' is for %s buses", e->key,
                          keys_driver_names(only, list, sizeof(list)));
            continue;
        }
        if (apply_value(c, s, &defs[d], e, obj) == 0)
            ok |= 1u << d;
    }
    for (size_t d = 0; d < n_defs; d++) {
        unsigned only = defs[d].flags & F_DRIVERS;
        if (defs[d].flags & F_IIO_OPT)
            only &= ~F_IIO;
        if (!in_pass(&defs[d], opts->pass) || !(defs[d].flags & F_REQ) ||
            pdm_ini_get(s, defs[d].key))
            continue;
        char list[64];
        if (!only)
            pdm_ini_error(&c->doc, s->line, s, defs[d].key, "required key is missing");
        else if (driver_only & only)
            pdm_ini_error(&c->doc, s->line, s, defs[d].key,
                          "required key is missing (needed by %s)",
                          keys_driver_names(driver_only & only, list, sizeof(list)));
    }
    /* ranges of fractional numbers, once every key of the section was read as a number */
    for (size_t d = 0; d < n_defs; d++) {
        const struct pdm_ini_entry *e;
        double x;
        if (defs[d].kind != V_DRANGE || !((ok >> d) & 1u) || !(e = pdm_ini_get(s, defs[d].key)))
            continue;
        if (pdm_ini_double_range(&c->doc, s, e, defs[d].dmin, defs[d].dmax, &x) < 0)
            ok &= ~(1u << d);
    }
    return ok;
}
