/* agent.conf reader (schema in config.h and examples/agent.conf).
 *
 * Two passes over the file as read by ini_reader.c: the first counts and names the [bus],
 * [sensor] and [asset] sections and allocates cfg's arrays (the only allocation, at start-up:
 * about 1.7 KB per bus, 0.6 KB per sensor, 4 KB per asset); the second checks every section in
 * file order, so references may point further down the file. Options are declared once each in
 * the key tables below: name, kind of value, bounds and where it is stored. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "lib/ini_reader.h"
#include "lib/mqtt_uri.h"
#include "modelsig.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* Where `cmake --install` puts the shipped profiles (set by CMakeLists.txt). */
#ifndef PDM_PROFILE_DIR
#define PDM_PROFILE_DIR "/usr/local/share/pdm-agent/profiles"
#endif

enum vkind {
    V_INT,       /* int in [min, max] */
    V_DOUBLE,    /* finite double */
    V_NONZERO,   /* finite, non-zero double */
    V_BOOL,      /* int 0/1 */
    V_STR,       /* char[size], optional text */
    V_TEXT,      /* char[size], must not be empty, no blanks (host, device) */
    V_DEVICE_ID, /* char[size], [A-Za-z0-9_-]{1,64} */
    V_PATH,      /* char[size], resolved against the config's folder */
    V_FILE,      /* V_PATH that must be readable now (certificates, keys) */
    V_LOGLEVEL,
    V_URI,
    V_TOPIC,
    V_DRIVER,
    V_PARITY,
    V_BUSREF,
    V_TABLE,
    V_TYPE,
    V_ORDER,
    V_AXIS,     /* int 0..2: x | y | z */
    V_FEATURE,  /* enum pdm_vib_feature */
    V_IIO_MODE, /* enum pdm_iio_mode */
};

#define F_REQ     1u  /* required (for a driver-specific key: required with that driver) */
#define F_TCP     2u  /* modbus-tcp buses only */
#define F_RTU     4u  /* modbus-rtu buses only */
#define F_SYSFS   8u  /* sysfs buses (and their sensors) only */
#define F_IIO     16u /* iio buses (and their sensors) only */
#define F_IIO_OPT 32u /* F_REQ does not hold on iio buses (device or name: see load_bus) */
#define F_MODBUS  (F_TCP | F_RTU)
#define F_DRIVERS (F_TCP | F_RTU | F_SYSFS | F_IIO)

struct key_def {
    const char *key;
    enum vkind kind;
    unsigned flags;
    long long min, max; /* V_INT */
    size_t off, size;   /* where in the section's struct */
};

#define AT(type, member) offsetof(struct type, member), sizeof(((struct type *)0)->member)

enum { AK_MODEL_PUBKEY = 6, AK_RENOTIFY_H, AK_CONFIRM_AFTER_H }; /* indexes into agent_keys */
#define SERVICE_HOURS_MAX 8760.0 /* renotify_h, confirm_after_h: at most a year */
static const struct key_def agent_keys[] = {
    {"device_id", V_DEVICE_ID, F_REQ, 0, 0, AT(pdm_config, device_id)},
    {"data_dir", V_PATH, F_REQ, 0, 0, AT(pdm_config, data_dir)},
    {"log_level", V_LOGLEVEL, 0, 0, 0, AT(pdm_config, log_level)},
    {"commit_interval_ms", V_INT, 0, 50, 60000, AT(pdm_config, commit_interval_ms)},
    {"buffer_max_mb", V_INT, 0, 1, 65536, AT(pdm_config, buffer_max_mb)},
    {"disk_reserve_mb", V_INT, 0, 0, 65536, AT(pdm_config, disk_reserve_mb)},
    [AK_MODEL_PUBKEY] = {"model_pubkey", V_FILE, 0, 0, 0, AT(pdm_config, model_pubkey)},
    [AK_RENOTIFY_H] = {"renotify_h", V_DOUBLE, 0, 0, 0, AT(pdm_config, renotify_h)},
    [AK_CONFIRM_AFTER_H] = {"confirm_after_h", V_DOUBLE, 0, 0, 0, AT(pdm_config, confirm_after_h)},
};

static const struct key_def mqtt_keys[] = {
    {"uri", V_URI, F_REQ, 0, 0, AT(pdm_config, uri)},
    {"ca_file", V_FILE, 0, 0, 0, AT(pdm_config, ca_file)},
    {"cert_file", V_FILE, 0, 0, 0, AT(pdm_config, cert_file)},
    {"key_file", V_FILE, 0, 0, 0, AT(pdm_config, key_file)},
    {"topic_prefix", V_TOPIC, 0, 0, 0, AT(pdm_config, topic_prefix)},
    {"telemetry_interval_s", V_INT, 0, 1, 3600, AT(pdm_config, telemetry_interval_s)},
    {"allow_plaintext", V_BOOL, 0, 0, 0, AT(pdm_config, allow_plaintext)},
};

static const struct key_def bus_keys[] = {
    {"driver", V_DRIVER, F_REQ, 0, 0, AT(pdm_bus_cfg, driver)},
    {"host", V_TEXT, F_REQ | F_TCP, 0, 0, AT(pdm_bus_cfg, host)},
    {"port", V_INT, F_TCP, 1, 65535, AT(pdm_bus_cfg, port)},
    {"timeout_ms", V_INT, 0, 10, 60000, AT(pdm_bus_cfg, timeout_ms)},
    {"device", V_TEXT, F_REQ | F_RTU | F_IIO | F_IIO_OPT, 0, 0, AT(pdm_bus_cfg, device)},
    {"baud", V_INT, F_RTU, 1200, 921600, AT(pdm_bus_cfg, baud)},
    {"parity", V_PARITY, F_RTU, 0, 0, AT(pdm_bus_cfg, parity)},
    {"data_bits", V_INT, F_RTU, 7, 8, AT(pdm_bus_cfg, data_bits)},
    {"stop_bits", V_INT, F_RTU, 1, 2, AT(pdm_bus_cfg, stop_bits)},
    {"max_span", V_INT, F_MODBUS, 1, 125, AT(pdm_bus_cfg, max_span)},
    {"max_span_bits", V_INT, F_MODBUS, 1, 2000, AT(pdm_bus_cfg, max_span_bits)},
    {"max_gap", V_INT, F_MODBUS, 0, 124, AT(pdm_bus_cfg, max_gap)},
    {"frame_gap_ms", V_INT, F_MODBUS, 0, 1000, AT(pdm_bus_cfg, frame_gap_ms)},
    {"root", V_PATH, F_SYSFS | F_IIO, 0, 0, AT(pdm_bus_cfg, root)},
    {"name", V_TEXT, F_IIO, 0, 0, AT(pdm_bus_cfg, iio_name)},
    {"rate_hz", V_INT, F_REQ | F_IIO, 1, 100000, AT(pdm_bus_cfg, rate_hz)},
    {"window", V_INT, F_IIO, 2, 1048576, AT(pdm_bus_cfg, window)},
    {"mode", V_IIO_MODE, F_IIO, 0, 0, AT(pdm_bus_cfg, mode)},
};

enum { SK_BUS, SK_UNIT_ID, SK_TABLE, SK_ADDRESS, SK_TYPE }; /* indexes into sensor_keys */
static const struct key_def sensor_keys[] = {
    [SK_BUS] = {"bus", V_BUSREF, F_REQ, 0, 0, AT(pdm_sensor_cfg, bus)},
    [SK_UNIT_ID] = {"unit_id", V_INT, F_MODBUS, 1, 247, AT(pdm_sensor_cfg, unit_id)},
    [SK_TABLE] = {"table", V_TABLE, F_MODBUS, 0, 0, AT(pdm_sensor_cfg, table)},
    [SK_ADDRESS] = {"address", V_INT, F_REQ | F_MODBUS, 0, 65535, AT(pdm_sensor_cfg, address)},
    /* required for register tables; coil and discrete imply bool (load_sensor checks both) */
    [SK_TYPE] = {"type", V_TYPE, F_MODBUS, 0, 0, AT(pdm_sensor_cfg, type)},
    {"word_order", V_ORDER, F_MODBUS, 0, 0, AT(pdm_sensor_cfg, order)},
    {"scale", V_NONZERO, 0, 0, 0, AT(pdm_sensor_cfg, scale)},
    {"offset", V_DOUBLE, 0, 0, 0, AT(pdm_sensor_cfg, offset)},
    /* on an iio bus the period is one window: window / rate_hz of the bus */
    {"period_ms", V_INT, F_MODBUS | F_SYSFS, 10, 86400000, AT(pdm_sensor_cfg, period_ms)},
    {"unit", V_STR, 0, 0, 0, AT(pdm_sensor_cfg, unit)},
    /* data quality; check_sensor_quality() sets the defaults and checks min < max */
    {"valid_min", V_DOUBLE, 0, 0, 0, AT(pdm_sensor_cfg, valid_min)},
    {"valid_max", V_DOUBLE, 0, 0, 0, AT(pdm_sensor_cfg, valid_max)},
    {"frozen_s", V_INT, 0, 0, 2592000, AT(pdm_sensor_cfg, frozen_s)},
    {"stale_s", V_INT, 0, 1, 2592000, AT(pdm_sensor_cfg, stale_s)},
    /* on-board sensors; load_onboard_sensor checks which combinations make sense */
    {"hwmon", V_TEXT, F_SYSFS, 0, 0, AT(pdm_sensor_cfg, hwmon)},
    {"label", V_STR, F_SYSFS, 0, 0, AT(pdm_sensor_cfg, label)},
    {"index", V_INT, F_SYSFS, 1, 99, AT(pdm_sensor_cfg, index)},
    {"thermal_zone", V_TEXT, F_SYSFS, 0, 0, AT(pdm_sensor_cfg, hwmon)},
    {"path", V_TEXT, F_SYSFS, 0, 0, AT(pdm_sensor_cfg, path)},
    {"axis", V_AXIS, F_REQ | F_IIO, 0, 0, AT(pdm_sensor_cfg, axis)},
    {"feature", V_FEATURE, F_REQ | F_IIO, 0, 0, AT(pdm_sensor_cfg, feature)},
};

/* [device NAME]: a Modbus device described by a profile file instead of [sensor] sections. */
struct device_cfg {
    uint32_t bus;
    int unit_id;
    int period_ms;
    char profile[PDM_NAME_MAX + 1];
    char only[512]; /* "reg1, reg2": a subset of the profile's registers; "" = all */
};

static const struct key_def device_keys[] = {
    {"bus", V_BUSREF, F_REQ, 0, 0, AT(device_cfg, bus)},
    {"unit_id", V_INT, 0, 1, 247, AT(device_cfg, unit_id)},
    {"profile", V_DEVICE_ID, F_REQ, 0, 0, AT(device_cfg, profile)},
    {"period_ms", V_INT, 0, 10, 86400000, AT(device_cfg, period_ms)},
    {"only", V_STR, 0, 0, 0, AT(device_cfg, only)},
};

/* A profile file: [profile] (name, description, defaults for its registers) and one
 * [register NAME] per value, with the same keys and meaning as a Modbus [sensor]. */
struct profile_head {
    char name[PDM_NAME_MAX + 1];
    char description[256];
    enum pdm_reg_table table;
    enum pdm_reg_type type;
    enum pdm_word_order order;
};

enum { HK_NAME, HK_DESCRIPTION, HK_TABLE, HK_TYPE, HK_ORDER }; /* indexes into profile_keys */
static const struct key_def profile_keys[] = {
    [HK_NAME] = {"name", V_DEVICE_ID, F_REQ, 0, 0, AT(profile_head, name)},
    [HK_DESCRIPTION] = {"description", V_STR, F_REQ, 0, 0, AT(profile_head, description)},
    [HK_TABLE] = {"table", V_TABLE, 0, 0, 0, AT(profile_head, table)},
    [HK_TYPE] = {"type", V_TYPE, 0, 0, 0, AT(profile_head, type)},
    [HK_ORDER] = {"word_order", V_ORDER, 0, 0, 0, AT(profile_head, order)},
};

enum { RK_TABLE, RK_ADDRESS, RK_TYPE }; /* indexes into register_keys */
static const struct key_def register_keys[] = {
    [RK_TABLE] = {"table", V_TABLE, 0, 0, 0, AT(pdm_sensor_cfg, table)},
    [RK_ADDRESS] = {"address", V_INT, F_REQ, 0, 65535, AT(pdm_sensor_cfg, address)},
    [RK_TYPE] = {"type", V_TYPE, 0, 0, 0, AT(pdm_sensor_cfg, type)},
    {"word_order", V_ORDER, 0, 0, 0, AT(pdm_sensor_cfg, order)},
    {"scale", V_NONZERO, 0, 0, 0, AT(pdm_sensor_cfg, scale)},
    {"offset", V_DOUBLE, 0, 0, 0, AT(pdm_sensor_cfg, offset)},
    {"unit", V_STR, 0, 0, 0, AT(pdm_sensor_cfg, unit)},
};

static const char *const section_kinds[] = {"agent", "mqtt", "bus", "sensor", "asset", "device"};

/* A profile as read for the devices that name it; each file is read once per load. */
struct profile {
    char name[PDM_NAME_MAX + 1];
    char path[PDM_PATH_MAX];     /* "" when no file was found */
    int ok;                      /* found and read without errors */
    struct pdm_sensor_cfg *regs; /* one per [register]: name = register name; no bus yet */
    uint32_t n_regs;
};

struct ctx {
    struct pdm_config *cfg;
    struct pdm_ini_doc doc;
    struct profile *profiles; /* start-up only: freed at the end of pdm_config_load() */
    size_t n_profiles;
};

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
static int check_uri(const char *v, int *plain)
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

static void parse_installed(struct ctx *c, const struct pdm_ini_section *s,
                            const struct pdm_ini_entry *e, int64_t *out)
{
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    const char *v = e->value;
    int digits_ok = strlen(v) == 10 && v[4] == '-' && v[7] == '-';
    for (int i = 0; digits_ok && i < 10; i++)
        if (i != 4 && i != 7 && !(v[i] >= '0' && v[i] <= '9'))
            digits_ok = 0;
    if (!digits_ok) {
        pdm_ini_error(&c->doc, e->line, s, e->key, "expected a date YYYY-MM-DD, got '%s'", v);
        return;
    }
    int y = atoi(v), m = atoi(v + 5), d = atoi(v + 8);
    if (y < 1900 || m < 1 || m > 12 || d < 1 || d > mdays[m - 1] + (m == 2 && is_leap(y))) {
        pdm_ini_error(&c->doc, e->line, s, e->key, "'%s' is not a real date", v);
        return;
    }
    int64_t t = days_from_civil(y, m, d) * 86400;
    time_t now = time(NULL);
    if ((long long)now >= CLOCK_PLAUSIBLE_S && t - MAX_UTC_OFFSET_S > (int64_t)now) {
        pdm_ini_error(&c->doc, e->line, s, e->key, "'%s' is in the future", v);
        return;
    }
    *out = t;
}

/* Resolves a path value against the config's folder into out[outlen]. */
static int resolve_path(struct ctx *c, const struct pdm_ini_section *s,
                        const struct pdm_ini_entry *e, char *out, size_t outlen)
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

static int check_readable(struct ctx *c, const struct pdm_ini_section *s,
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
        return resolve_path(c, s, e, p, def->size);
    case V_FILE:
        if (resolve_path(c, s, e, p, def->size) < 0)
            return -EINVAL;
        return check_readable(c, s, e, p) < 0 ? -EINVAL : 0;
    case V_LOGLEVEL:
        if (pdm_log_level_parse(v, (enum pdm_log_level *)p) == 0)
            return 0;
        expected = "error, warning, info or debug";
        break;
    case V_URI: {
        int plain;
        if (check_uri(v, &plain) < 0 || strlen(v) >= def->size) {
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
static const char *driver_names(unsigned mask, char *buf, size_t len)
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
static unsigned driver_flag(const char *v)
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

/* Applies every key of s through defs into obj and reports unknown and missing keys.
 * driver_only: F_TCP or F_RTU for a bus whose driver is known, else 0. Returns a bit mask of
 * the defs that were present and valid. */
static uint32_t apply_section(struct ctx *c, const struct pdm_ini_section *s,
                              const struct key_def *defs, size_t n_defs, void *obj,
                              unsigned driver_only)
{
    const char *names[32];
    for (size_t d = 0; d < n_defs; d++)
        names[d] = defs[d].key;
    uint32_t ok = 0;
    for (size_t i = 0; i < s->n_entries; i++) {
        const struct pdm_ini_entry *e = &s->entries[i];
        size_t d = 0;
        while (d < n_defs && strcmp(defs[d].key, e->key) != 0)
            d++;
        if (d == n_defs) {
            pdm_ini_unknown_key(&c->doc, s, e, names, n_defs);
            continue;
        }
        unsigned only = defs[d].flags & F_DRIVERS;
        if (driver_only && only && !(only & driver_only)) {
            char list[64];
            pdm_ini_error(&c->doc, e->line, s, e->key, "'%s' is for %s buses", e->key,
                          driver_names(only, list, sizeof(list)));
            continue;
        }
        if (apply_value(c, s, &defs[d], e, obj) == 0)
            ok |= 1u << d;
    }
    for (size_t d = 0; d < n_defs; d++) {
        unsigned only = defs[d].flags & F_DRIVERS;
        if (defs[d].flags & F_IIO_OPT)
            only &= ~F_IIO;
        if (!(defs[d].flags & F_REQ) || pdm_ini_get(s, defs[d].key))
            continue;
        char list[64];
        if (!only)
            pdm_ini_error(&c->doc, s->line, s, defs[d].key, "required key is missing");
        else if (driver_only & only)
            pdm_ini_error(&c->doc, s->line, s, defs[d].key,
                          "required key is missing (needed by %s)",
                          driver_names(driver_only & only, list, sizeof(list)));
    }
    return ok;
}

/* ---- sections -------------------------------------------------------------------------- */

static void load_agent(struct ctx *c, const struct pdm_ini_section *s)
{
    struct pdm_config *cfg = c->cfg;
    uint32_t ok = apply_section(c, s, agent_keys, N_ELEMS(agent_keys), cfg, 0);
    const struct pdm_ini_entry *e = pdm_ini_get(s, "device_id");
    if (e && strcmp(cfg->device_id, PDM_FLEET_ID) == 0)
        pdm_ini_error(&c->doc, e->line, s, e->key,
                      "'%s' is reserved: {topic_prefix}/%s/cmd/... is the fleet-wide command "
                      "topic",
                      PDM_FLEET_ID, PDM_FLEET_ID);
    e = pdm_ini_get(s, "model_pubkey");
    if (e && (ok >> AK_MODEL_PUBKEY) & 1u) {
        /* read now, so a wrong file is a configuration error and not a refused update later */
        struct pdm_keyring kr;
        char why[512];
        if (pdm_keyring_load(&kr, cfg->model_pubkey, why, sizeof(why)) != 0)
            pdm_ini_error(&c->doc, e->line, s, e->key, "%s", why);
        pdm_keyring_free(&kr);
    }
    /* service loop timers: a range check on top of V_DOUBLE's "finite number" */
    double x;
    e = pdm_ini_get(s, "renotify_h");
    if (e && (ok >> AK_RENOTIFY_H) & 1u)
        pdm_ini_double_range(&c->doc, s, e, 0, SERVICE_HOURS_MAX, &x);
    e = pdm_ini_get(s, "confirm_after_h");
    if (e && (ok >> AK_CONFIRM_AFTER_H) & 1u)
        pdm_ini_double_range(&c->doc, s, e, 0, SERVICE_HOURS_MAX, &x);
}

static void load_mqtt(struct ctx *c, const struct pdm_ini_section *s)
{
    struct pdm_config *cfg = c->cfg;
    uint32_t ok = apply_section(c, s, mqtt_keys, N_ELEMS(mqtt_keys), cfg, 0);
    if (!(ok & 1u))
        return; /* no valid uri: nothing to check it against */
    int plain = 0;
    check_uri(cfg->uri, &plain);
    if (plain && !cfg->allow_plaintext) {
        pdm_ini_error(&c->doc, pdm_ini_get(s, "uri")->line, s, "uri",
                      "plain-text MQTT refused: use mqtts:// or set allow_plaintext = true");
    } else if (!plain) {
        static const char *const tls_keys[] = {"ca_file", "cert_file", "key_file"};
        for (size_t i = 0; i < N_ELEMS(tls_keys); i++)
            if (!pdm_ini_get(s, tls_keys[i]))
                pdm_ini_error(&c->doc, s->line, s, tls_keys[i],
                              "required key is missing (needed by mqtts://)");
    }
}

/* An iio bus names its device one way, and its window must fit a sensor period. */
static void load_iio_bus(struct ctx *c, const struct pdm_ini_section *s, struct pdm_bus_cfg *b)
{
    const struct pdm_ini_entry *dev = pdm_ini_get(s, "device"), *name = pdm_ini_get(s, "name");
    if (dev && name) {
        pdm_ini_error(&c->doc, name->line, s, name->key,
                      "give the device either by number (device = iio:deviceN) or by name, not "
                      "both");
    } else if (!dev && !name) {
        pdm_ini_error(&c->doc, s->line, s, "name",
                      "required key is missing: name = the IIO device's name (e.g. adxl345), or "
                      "device = iio:deviceN");
    } else if (dev) {
        long long n;
        if (strncmp(dev->value, "iio:device", 10) != 0 || !dev->value[10] ||
            strspn(dev->value + 10, "0123456789") != strlen(dev->value + 10) ||
            (n = atoll(dev->value + 10)) > 9999) {
            pdm_ini_error(&c->doc, dev->line, s, dev->key,
                          "expected iio:deviceN (as in /sys/bus/iio/devices), got '%s'",
                          dev->value);
        } else {
            b->iio_index = (int)n;
            b->device[0] = '\0'; /* not a serial port */
        }
    }
    if (b->rate_hz > 0 && (int64_t)b->window * 1000 / b->rate_hz > 86400000) {
        const struct pdm_ini_entry *w = pdm_ini_get(s, "window");
        pdm_ini_error(&c->doc, w ? w->line : s->line, s, "window",
                      "%d samples at %d Hz make a window longer than a day", b->window, b->rate_hz);
    }
}

static void load_bus(struct ctx *c, const struct pdm_ini_section *s, struct pdm_bus_cfg *b)
{
    /* the driver decides which other keys belong here, wherever it is in the section */
    const struct pdm_ini_entry *d = pdm_ini_get(s, "driver");
    unsigned driver_only = d ? driver_flag(d->value) : 0;
    apply_section(c, s, bus_keys, N_ELEMS(bus_keys), b, driver_only);
    if (driver_only == F_IIO)
        load_iio_bus(c, s, b);
}

/* The F_ flag of the driver of the bus a sensor section names (the bus may come later in the
 * file), 0 when unknown. */
static unsigned sensor_driver(struct ctx *c, const struct pdm_ini_section *s)
{
    const struct pdm_ini_entry *bus = pdm_ini_get(s, "bus");
    for (size_t i = 0; bus && i < c->doc.n_sections; i++) {
        const struct pdm_ini_section *b = &c->doc.sections[i];
        if (strcmp(b->kind, "bus") == 0 && strcmp(b->arg, bus->value) == 0) {
            const struct pdm_ini_entry *d = pdm_ini_get(b, "driver");
            return d ? driver_flag(d->value) : 0;
        }
    }
    return 0;
}

/* A sensor on a sysfs or iio bus: what to read instead of a register. */
static void load_onboard_sensor(struct ctx *c, const struct pdm_ini_section *s,
                                struct pdm_sensor_cfg *sn, unsigned driver)
{
    sn->unit_id = 0; /* no Modbus unit: pdmctl status shows 0 */
    int has_unit = pdm_ini_get(s, "unit") != NULL;
    if (driver == F_IIO) {
        if (!has_unit)
            strcpy(sn->unit, sn->feature <= PDM_FEAT_PEAK ? "m/s2" : "");
        return; /* axis and feature are required keys; the period comes from the bus */
    }
    static const char *const what[] = {"hwmon", "thermal_zone", "path"};
    const struct pdm_ini_entry *given[3];
    int n = 0;
    for (int k = 0; k < 3; k++)
        n += (given[k] = pdm_ini_get(s, what[k])) != NULL;
    if (n == 0)
        pdm_ini_error(&c->doc, s->line, s, "hwmon",
                      "required key is missing: a sysfs sensor needs hwmon = NAME (with label or "
                      "index), thermal_zone = TYPE or path = FILE");
    for (int k = 1; n > 1 && k < 3; k++)
        if (given[k])
            pdm_ini_error(&c->doc, given[k]->line, s, given[k]->key,
                          "give one of hwmon, thermal_zone and path");
    if (given[0])
        sn->source = PDM_SYSFS_HWMON;
    else if (given[1])
        sn->source = PDM_SYSFS_THERMAL;
    else if (given[2])
        sn->source = PDM_SYSFS_FILE;
    const struct pdm_ini_entry *label = pdm_ini_get(s, "label"), *index = pdm_ini_get(s, "index");
    if (label && index)
        pdm_ini_error(&c->doc, index->line, s, index->key,
                      "give the input either by label or by index, not both");
    if (!given[0] && (label || index))
        pdm_ini_error(&c->doc, (label ? label : index)->line, s, (label ? label : index)->key,
                      "'%s' selects a tempM of an hwmon device: add hwmon = NAME",
                      (label ? label : index)->key);
    if (given[2] && sn->path[0] != '/')
        pdm_ini_error(&c->doc, given[2]->line, s, given[2]->key,
                      "expected an absolute path such as /sys/class/hwmon/hwmon0/temp1_input "
                      "(the bus's root is put in front), got '%s'",
                      given[2]->value);
    if (!has_unit)
        strcpy(sn->unit, "degC");
}

/* valid_min/valid_max default to no limit; a range must not be empty; stale_s must be longer
 * than one read period or the sensor would be stale between two good reads. */
static void check_sensor_quality(struct ctx *c, const struct pdm_ini_section *s,
                                 struct pdm_sensor_cfg *sn)
{
    const struct pdm_ini_entry *lo = pdm_ini_get(s, "valid_min");
    const struct pdm_ini_entry *hi = pdm_ini_get(s, "valid_max");
    const struct pdm_ini_entry *st = pdm_ini_get(s, "stale_s");
    if (!lo)
        sn->valid_min = -INFINITY;
    if (!hi)
        sn->valid_max = INFINITY;
    if (lo && hi && !(sn->valid_min < sn->valid_max))
        pdm_ini_error(&c->doc, hi->line, s, hi->key,
                      "valid_max (%g) must be greater than valid_min (%g)", sn->valid_max,
                      sn->valid_min);
    if (st && sn->stale_s > 0 && (long long)sn->stale_s * 1000 <= sn->period_ms)
        pdm_ini_error(&c->doc, st->line, s, st->key,
                      "%d s is not longer than one read period (period_ms = %d): the sensor "
                      "would count as stale between two reads",
                      sn->stale_s, sn->period_ms);
}

/* Rules for one Modbus value, shared by [sensor] and profile [register] sections: a coil or
 * discrete input is one bit (bool, no word order); a register needs a type (has_type: given in
 * s or, in a profile, as a default); the value must end at or before address 65535. type_ok and
 * addr_ok: the type and address were valid. */
static void check_register(struct ctx *c, const struct pdm_ini_section *s,
                           struct pdm_sensor_cfg *sn, int has_type, int type_ok, int addr_ok)
{
    const struct pdm_ini_entry *type_e = pdm_ini_get(s, "type");
    if (pdm_reg_table_is_bits(sn->table)) {
        /* a coil or discrete input is one bit: there is no other type and no word order */
        const struct pdm_ini_entry *order_e = pdm_ini_get(s, "word_order");
        if (type_e && type_ok && sn->type != PDM_TYPE_BOOL)
            pdm_ini_error(&c->doc, type_e->line, s, type_e->key,
                          "table = %s holds on/off bits: leave type out or write bool",
                          pdm_reg_table_name(sn->table));
        if (order_e)
            pdm_ini_error(&c->doc, order_e->line, s, order_e->key,
                          "table = %s holds single bits: word_order does not apply",
                          pdm_reg_table_name(sn->table));
        sn->type = PDM_TYPE_BOOL;
        type_ok = 1;
    } else if (!has_type) {
        pdm_ini_error(&c->doc, s->line, s, "type", "required key is missing");
    } else if (type_e && type_ok && sn->type == PDM_TYPE_BOOL) {
        pdm_ini_error(&c->doc, type_e->line, s, type_e->key,
                      "bool is for table = coil or discrete; a register holding 0/1 is u16");
        type_ok = 0;
    }
    int words = pdm_reg_words(sn->type);
    if (type_ok && addr_ok && sn->address + words > 65536) {
        const struct pdm_ini_entry *e = pdm_ini_get(s, "address");
        pdm_ini_error(&c->doc, e->line, s, e->key,
                      "a %s at address %d needs %d registers and runs past the last address 65535",
                      pdm_reg_type_name(sn->type), sn->address, words);
    }
}

static void load_sensor(struct ctx *c, const struct pdm_ini_section *s, struct pdm_sensor_cfg *sn)
{
    unsigned driver = sensor_driver(c, s);
    uint32_t ok = apply_section(c, s, sensor_keys, N_ELEMS(sensor_keys), sn, driver);
    if (driver == F_SYSFS || driver == F_IIO) {
        load_onboard_sensor(c, s, sn, driver);
        return;
    }
    /* bus unknown (misspelt, or its driver is): most buses are Modbus, so say what it lacks */
    if (!driver && !pdm_ini_get(s, "address"))
        pdm_ini_error(&c->doc, s->line, s, "address", "required key is missing");
    check_register(c, s, sn, pdm_ini_get(s, "type") != NULL, (ok >> SK_TYPE) & 1u,
                   (ok >> SK_ADDRESS) & 1u);
}

static int model_input_index(const struct pdm_model *m, const char *name)
{
    for (uint32_t i = 0; i < m->n_inputs; i++)
        if (strcmp(m->inputs[i].name, name) == 0)
            return (int)i;
    return -1;
}

/* [a-z][a-z0-9_]{0,31}: what a model file accepts as an input name */
static int is_input_name(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++) {
        char ch = s[n];
        if (!((ch >= 'a' && ch <= 'z') || (n && ((ch >= '0' && ch <= '9') || ch == '_'))))
            return 0;
    }
    return n >= 1 && n <= PDM_MODEL_NAME_MAX;
}

/* A line for an input the model does not have: a typo of one of its inputs, or a sensor kept
 * for a model update that will use it (agent/ota.c). Returns 1 if it is kept. */
static int keep_for_updates(const struct pdm_model *m, const char *key)
{
    const char *names[PDM_MODEL_MAX_INPUTS];
    size_t n = 0;
    for (uint32_t k = 0; k < m->n_inputs && k < PDM_MODEL_MAX_INPUTS; k++)
        names[n++] = m->inputs[k].name;
    return is_input_name(key) && !pdm_ini_suggest(key, names, n);
}

/* ---- [asset] usage counters and maintenance (agent/usage.h) ---------------------------- */

static const char *const usage_keys[] = {
    "running_sensor", "running_above",       "running_hysteresis",   "running_debounce_s",
    "age_from",       "service_every_hours", "service_every_starts", "service_every_months",
    "last_service",
};

/* An [asset] key about usage or maintenance: parsed into a, returns 1; any other key 0. */
static int asset_usage_key(struct ctx *c, const struct pdm_ini_section *s,
                           const struct pdm_ini_entry *e, struct pdm_asset_cfg *a)
{
    const struct pdm_ini_doc *doc = &c->doc;
    size_t k = 0;
    while (k < N_ELEMS(usage_keys) && strcmp(usage_keys[k], e->key) != 0)
        k++;
    if (k == N_ELEMS(usage_keys))
        return 0;
    long long i;
    double x;
    switch (k) {
    case 0: {
        int sensor = pdm_config_sensor_index(c->cfg, e->value);
        if (sensor < 0)
            pdm_ini_error(doc, e->line, s, e->key,
                          "no [sensor %s] section: the sensor whose reading says the asset runs",
                          e->value);
        else
            a->has_running = 1, a->running_sensor = sensor;
        break;
    }
    case 1:
        pdm_ini_double(doc, s, e, &a->running_above);
        break;
    case 2:
        if (pdm_ini_double_range(doc, s, e, 0, 1e300, &x) == 0)
            a->running_hysteresis = x;
        break;
    case 3:
        if (pdm_ini_int(doc, s, e, 0, 3600, &i) == 0)
            a->running_debounce_s = (int)i;
        break;
    case 4:
        if (strcmp(e->value, "run_hours") == 0)
            a->age_from_run_hours = 1;
        else if (strcmp(e->value, "installed") != 0)
            pdm_ini_error(doc, e->line, s, e->key, "expected installed or run_hours, got '%s'",
                          e->value);
        break;
    case 5:
        if (pdm_ini_double_range(doc, s, e, 0, 1e6, &x) == 0)
            a->service_every_hours = x;
        break;
    case 6:
        if (pdm_ini_int(doc, s, e, 0, 100000000, &i) == 0)
            a->service_every_starts = (int)i;
        break;
    case 7:
        if (pdm_ini_int(doc, s, e, 0, 1200, &i) == 0)
            a->service_every_months = (int)i;
        break;
    case 8:
        parse_installed(c, s, e, &a->last_service_s);
        break;
    }
    return 1;
}

/* The combinations: what each key needs from the others. */
static void check_asset_usage(struct ctx *c, const struct pdm_ini_section *s,
                              const struct pdm_asset_cfg *a)
{
    const struct pdm_ini_doc *doc = &c->doc;
    const char *need_running[] = {"running_above", "running_hysteresis", "running_debounce_s",
                                  "service_every_hours", "service_every_starts"};
    const struct pdm_ini_entry *e;
    if (a->has_running && !pdm_ini_get(s, "running_above"))
        pdm_ini_error(doc, s->line, s, "running_above",
                      "required key is missing: running_sensor needs the value above which the "
                      "asset counts as running");
    for (size_t k = 0; k < N_ELEMS(need_running); k++)
        if (!pdm_ini_get(s, "running_sensor") && (e = pdm_ini_get(s, need_running[k])))
            pdm_ini_error(doc, e->line, s, e->key,
                          "needs 'running_sensor = SENSOR' (which reading says the asset runs)");
    if (a->age_from_run_hours && !pdm_ini_get(s, "running_sensor"))
        pdm_ini_error(doc, pdm_ini_get(s, "age_from")->line, s, "age_from",
                      "run_hours needs 'running_sensor = SENSOR' (run hours are counted from it)");
    if ((e = pdm_ini_get(s, "service_every_months")) && a->service_every_months > 0 &&
        !pdm_ini_get(s, "last_service") && !pdm_ini_get(s, "installed"))
        pdm_ini_error(doc, e->line, s, e->key,
                      "months count from 'last_service = YYYY-MM-DD' (or 'installed'): set one");
}

static void load_asset(struct ctx *c, const struct pdm_ini_section *s, struct pdm_asset_cfg *a)
{
    const struct pdm_config *cfg = c->cfg;
    const struct pdm_ini_doc *doc = &c->doc;
    const struct pdm_ini_entry *model_e = pdm_ini_get(s, "model");
    const struct pdm_ini_entry *inst_e = pdm_ini_get(s, "installed");
    int model_ok = 0;
    if (!model_e) {
        pdm_ini_error(doc, s->line, s, "model", "required key is missing");
    } else if (resolve_path(c, s, model_e, a->model_path, sizeof(a->model_path)) == 0 &&
               check_readable(c, s, model_e, a->model_path) == 0) {
        /* the model's own errors name its file and lines */
        model_ok = pdm_model_load(a->model_path, &a->model, doc->diag) == 0;
    }

    /* every other key maps a model input to a sensor; kept in the model's input order */
    const struct pdm_ini_entry *mapped[PDM_MODEL_MAX_INPUTS] = {0};
    int32_t sensor_of[PDM_MODEL_MAX_INPUTS];
    for (size_t i = 0; i < s->n_entries; i++) {
        const struct pdm_ini_entry *e = &s->entries[i];
        if (e == model_e)
            continue;
        if (e == inst_e) {
            parse_installed(c, s, e, &a->installed_s);
            continue;
        }
        if (asset_usage_key(c, s, e, a))
            continue;
        if (strcmp(e->key, "age") == 0) {
            pdm_ini_error(doc, e->line, s, e->key,
                          "'age' is not read from a sensor: it comes from 'installed = "
                          "YYYY-MM-DD'");
            continue;
        }
        int input = -1;
        if (model_ok) {
            input = model_input_index(&a->model, e->key);
            if (input < 0 && !keep_for_updates(&a->model, e->key)) {
                char list[PDM_MODEL_MAX_INPUTS * (PDM_MODEL_NAME_MAX + 2) + 1] = "";
                for (uint32_t k = 0; k < a->model.n_inputs; k++) {
                    if (k)
                        strcat(list, ", ");
                    strcat(list, a->model.inputs[k].name);
                }
                pdm_ini_error(doc, e->line, s, e->key, "model '%s' has no input '%s' (inputs: %s)",
                              a->model.id, e->key, list);
            }
        }
        int sensor = pdm_config_sensor_index(cfg, e->value);
        if (sensor < 0) {
            const char *names[256];
            size_t n = 0;
            for (uint32_t k = 0; k < cfg->n_sensors && n < N_ELEMS(names); k++)
                names[n++] = cfg->sensors[k].name;
            const char *hint = pdm_ini_suggest(e->value, names, n);
            pdm_ini_error(doc, e->line, s, e->key, "no [sensor %s] section%s%s%s", e->value,
                          hint ? " (did you mean '" : "", hint ? hint : "", hint ? "'?)" : "");
        }
        if (input >= 0 && a->model.inputs[input].derive != PDM_DERIVE_NONE) {
            char expr[2 * PDM_MODEL_NAME_MAX + 16];
            pdm_model_format_derive(&a->model, &a->model.inputs[input], expr, sizeof(expr));
            pdm_ini_error(doc, e->line, s, e->key,
                          "model input '%s' is derived (%s): it is computed from the other "
                          "inputs, not read from a sensor; remove this line",
                          e->key, expr);
            input = -1;
        }
        if (input >= 0) {
            mapped[input] = e;
            sensor_of[input] = sensor;
        }
        if (sensor >= 0 && is_input_name(e->key)) {
            if (a->n_provides == PDM_ASSET_MAX_PROVIDES) {
                pdm_ini_error(doc, e->line, s, e->key, "too many inputs: at most %d per asset",
                              PDM_ASSET_MAX_PROVIDES);
                continue;
            }
            struct pdm_asset_input_cfg *p = &a->provides[a->n_provides++];
            snprintf(p->input, sizeof(p->input), "%s", e->key);
            p->sensor = sensor;
            p->line = e->line;
        }
    }
    if (!pdm_ini_get(s, "running_debounce_s"))
        a->running_debounce_s = 5;
    check_asset_usage(c, s, a);
    if (!model_ok)
        return;

    for (uint32_t i = 0; i < a->model.n_inputs; i++) {
        const struct pdm_model_input *in = &a->model.inputs[i];
        struct pdm_asset_input_cfg *out = &a->inputs[i];
        _Static_assert(sizeof(out->input) >= sizeof(in->name), "input name does not fit");
        memcpy(out->input, in->name, sizeof(in->name));
        out->sensor = -1;
        out->line = s->line;
        if (in->derive != PDM_DERIVE_NONE) {
            /* computed from the other inputs: no sensor */
        } else if (in->is_age) {
            if (a->age_from_run_hours)
                out->line = pdm_ini_get(s, "age_from")->line;
            else if (inst_e)
                out->line = inst_e->line;
            else
                pdm_ini_error(doc, s->line, s, "installed",
                              "required key is missing: model '%s' has an 'age' input",
                              a->model.id);
        } else if (mapped[i]) {
            out->sensor = sensor_of[i];
            out->line = mapped[i]->line;
        } else {
            pdm_ini_error(doc, s->line, s, in->name,
                          "model input '%s' has no sensor: add '%s = SENSOR_NAME'", in->name,
                          in->name);
        }
    }
    a->n_inputs = a->model.n_inputs;
}

/* ---- device profiles ------------------------------------------------------------------- */

const char *pdm_config_profile_dir(void)
{
    return PDM_PROFILE_DIR;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* "a, b, c" (sorted) of the NAME.profile files in dir, appended to buf; returns how many. */
static size_t list_profiles(const char *dir, char *buf, size_t len)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    char *names[64];
    size_t n = 0;
    const struct dirent *de;
    while ((de = readdir(d)) != NULL && n < N_ELEMS(names)) {
        size_t l = strlen(de->d_name);
        if (l > 8 && strcmp(de->d_name + l - 8, ".profile") == 0 &&
            (names[n] = strndup(de->d_name, l - 8)) != NULL)
            n++;
    }
    closedir(d);
    qsort(names, n, sizeof(names[0]), cmp_str);
    for (size_t i = 0; i < n; i++) {
        size_t used = strlen(buf);
        if (used + strlen(names[i]) + 8 < len)
            snprintf(buf + used, len - used, "%s%s", used ? ", " : "", names[i]);
        else if (used + 5 < len && !strstr(buf, ", ..."))
            strcat(buf, ", ...");
        free(names[i]);
    }
    return n;
}

/* Reads p->path into p (register templates). Errors name the profile file and its lines. */
static void read_profile(struct ctx *c, struct profile *p, const struct pdm_ini_section *dev,
                         const struct pdm_ini_entry *at)
{
    struct pdm_diag *diag = c->doc.diag;
    int before = diag->errors;
    struct ctx pc = {.cfg = c->cfg};
    int rc = pdm_ini_load(p->path, &pc.doc, diag);
    if (rc < 0) {
        pdm_ini_error(&c->doc, at->line, dev, at->key, "cannot read profile %s: %s", p->path,
                      strerror(-rc));
        pdm_ini_free(&pc.doc);
        return;
    }
    const struct pdm_ini_doc *doc = &pc.doc;
    size_t n = 0;
    for (size_t i = 0; i < doc->n_sections; i++)
        n += strcmp(doc->sections[i].kind, "register") == 0;
    if (n && !(p->regs = calloc(n, sizeof(*p->regs)))) {
        pdm_ini_free(&pc.doc);
        pdm_ini_error(&c->doc, at->line, dev, at->key, "out of memory reading %s", p->path);
        return;
    }

    /* the [profile] defaults apply to every register, wherever the section is in the file */
    struct profile_head head = {.table = PDM_TABLE_HOLDING, .order = PDM_ORDER_ABCD};
    const struct pdm_ini_section *head_s = NULL;
    uint32_t head_ok = 0;
    static const char *const kinds[] = {"profile", "register"};
    for (size_t i = 0; i < doc->n_sections; i++) {
        const struct pdm_ini_section *s = &doc->sections[i];
        if (strcmp(s->kind, "profile") == 0) {
            if (*s->arg)
                pdm_ini_error(doc, s->line, s, NULL, "[profile] takes no name");
            head_ok = apply_section(&pc, s, profile_keys, N_ELEMS(profile_keys), &head, 0);
            head_s = s;
        } else if (strcmp(s->kind, "register") != 0) {
            const char *hint = pdm_ini_suggest(s->kind, kinds, N_ELEMS(kinds));
            pdm_ini_error(doc, s->line, s, NULL, "unknown section kind '%s' (%s%s%s)", s->kind,
                          hint ? "did you mean '" : "expected profile or register",
                          hint ? hint : "", hint ? "'?" : "");
        }
    }
    if (!head_s) {
        pdm_diag_error(diag, p->path, 0, "profile", NULL,
                       "required section [profile] is missing (name, description)");
    } else {
        const struct pdm_ini_entry *e = pdm_ini_get(head_s, "name");
        if ((head_ok >> HK_NAME) & 1u && strcmp(head.name, p->name) != 0)
            pdm_ini_error(doc, e->line, head_s, e->key,
                          "the file is %s.profile but names profile '%s': they must match", p->name,
                          head.name);
        e = pdm_ini_get(head_s, "type");
        if ((head_ok >> HK_TYPE) & 1u && head.type == PDM_TYPE_BOOL) {
            pdm_ini_error(doc, e->line, head_s, e->key,
                          "bool is implied by table = coil or discrete; it is no default type");
            head_ok &= ~(1u << HK_TYPE);
        }
    }
    int has_head_type = head_s && pdm_ini_get(head_s, "type");
    int head_type_ok = (head_ok >> HK_TYPE) & 1u;

    for (size_t i = 0; i < doc->n_sections; i++) {
        const struct pdm_ini_section *s = &doc->sections[i];
        if (strcmp(s->kind, "register") != 0)
            continue;
        if (!pdm_ini_is_name(s->arg, PDM_NAME_MAX, 0)) {
            pdm_ini_error(doc, s->line, s, NULL,
                          "register name must be 1 to %d characters from A-Z a-z 0-9 _ - (no "
                          "'.': sensors are named DEVICE.REGISTER)",
                          PDM_NAME_MAX);
            continue;
        }
        struct pdm_sensor_cfg *sn = &p->regs[p->n_regs++];
        strcpy(sn->name, s->arg);
        sn->line = s->line;
        sn->table = head.table;
        sn->type = head_type_ok ? head.type : PDM_TYPE_U16;
        sn->order = head.order;
        sn->scale = 1.0;
        uint32_t ok = apply_section(&pc, s, register_keys, N_ELEMS(register_keys), sn, 0);
        int own_type = pdm_ini_get(s, "type") != NULL;
        check_register(&pc, s, sn, own_type || has_head_type,
                       own_type ? (int)((ok >> RK_TYPE) & 1u) : head_type_ok,
                       (ok >> RK_ADDRESS) & 1u);
    }
    if (!n)
        pdm_diag_error(diag, p->path, 0, "register", NULL,
                       "no [register NAME] section: a profile needs at least one");
    pdm_ini_free(&pc.doc);
    p->ok = diag->errors == before;
}

/* The profile a [device] names (entry at), read on first use. NULL when there is no such file
 * or the name is not valid (reported by load_device). */
static struct profile *find_profile(struct ctx *c, const struct pdm_ini_section *dev,
                                    const struct pdm_ini_entry *at)
{
    if (!pdm_ini_is_name(at->value, PDM_NAME_MAX, 0))
        return NULL;
    for (size_t i = 0; i < c->n_profiles; i++)
        if (strcmp(c->profiles[i].name, at->value) == 0)
            return &c->profiles[i];
    struct profile *grown = realloc(c->profiles, (c->n_profiles + 1) * sizeof(*grown));
    if (!grown)
        return NULL;
    c->profiles = grown;
    struct profile *p = &c->profiles[c->n_profiles++];
    memset(p, 0, sizeof(*p));
    strcpy(p->name, at->value);

    char local[PDM_PATH_MAX + 16];
    snprintf(local, sizeof(local), "%s/profiles", c->cfg->dir); /* dir < PDM_PATH_MAX: fits */
    const char *dirs[] = {local, PDM_PROFILE_DIR};
    for (size_t i = 0; i < N_ELEMS(dirs) && !p->path[0]; i++) {
        int w = snprintf(p->path, sizeof(p->path), "%s/%s.profile", dirs[i], p->name);
        if (w < 0 || (size_t)w >= sizeof(p->path) || access(p->path, F_OK) != 0)
            p->path[0] = '\0';
    }
    if (p->path[0]) {
        read_profile(c, p, dev, at);
        return p;
    }
    char found[400] = "";
    size_t n = list_profiles(local, found, sizeof(found));
    n += list_profiles(PDM_PROFILE_DIR, found, sizeof(found));
    pdm_ini_error(&c->doc, at->line, dev, at->key,
                  "no profile '%s': looked for %s.profile in %s and %s; profiles there: %s",
                  p->name, p->name, local, PDM_PROFILE_DIR, n ? found : "none");
    return p;
}

/* Comma-separated register names of `only` into sel[p->n_regs]; reports unknown names. */
static void select_registers(struct ctx *c, const struct pdm_ini_section *s,
                             const struct pdm_ini_entry *e, const struct profile *p,
                             unsigned char *sel)
{
    const char *names[256];
    size_t n_names = 0;
    for (uint32_t k = 0; k < p->n_regs && n_names < N_ELEMS(names); k++)
        names[n_names++] = p->regs[k].name;
    const char *v = e->value;
    for (;;) {
        v += strspn(v, " \t");
        size_t len = strcspn(v, ",");
        size_t end = len;
        while (end && (v[end - 1] == ' ' || v[end - 1] == '\t'))
            end--;
        char name[PDM_NAME_MAX + 1];
        if (!end) {
            pdm_ini_error(&c->doc, e->line, s, e->key,
                          "expected register names separated by commas, got '%s'", e->value);
            return;
        }
        snprintf(name, sizeof(name), "%.*s", (int)end, v);
        uint32_t k = 0;
        while (k < p->n_regs && (end > PDM_NAME_MAX || strcmp(p->regs[k].name, name) != 0))
            k++;
        if (k < p->n_regs && sel[k]) {
            pdm_ini_error(&c->doc, e->line, s, e->key, "register '%s' is listed twice", name);
        } else if (k < p->n_regs) {
            sel[k] = 1;
        } else {
            const char *hint = pdm_ini_suggest(name, names, n_names);
            char list[300] = "";
            for (size_t i = 0; !hint && i < n_names; i++) {
                size_t used = strlen(list);
                if (used + strlen(names[i]) + 8 >= sizeof(list)) {
                    strcat(list, ", ...");
                    break;
                }
                snprintf(list + used, sizeof(list) - used, "%s%s", i ? ", " : "", names[i]);
            }
            pdm_ini_error(&c->doc, e->line, s, e->key,
                          "profile '%s' has no register '%.*s' (%s%s%s)", p->name, (int)end, v,
                          hint ? "did you mean '" : "registers: ", hint ? hint : list,
                          hint ? "'?" : "");
        }
        if (!v[len])
            return;
        v += len + 1;
    }
}

/* A [device NAME] section becomes one sensor per (selected) register of its profile, named
 * NAME.REGISTER, appended to cfg->sensors (sized for them by register_sections). */
static void load_device(struct ctx *c, const struct pdm_ini_section *s)
{
    struct pdm_config *cfg = c->cfg;
    struct device_cfg d = {.unit_id = 1, .period_ms = 1000};
    unsigned driver = sensor_driver(c, s);
    uint32_t ok = apply_section(c, s, device_keys, N_ELEMS(device_keys), &d, 0);
    const struct pdm_ini_entry *bus_e = pdm_ini_get(s, "bus");
    if (driver && !(driver & F_MODBUS)) {
        char name[16];
        pdm_ini_error(&c->doc, bus_e->line, s, bus_e->key,
                      "[bus %s] is a %s bus: a profile describes Modbus registers; put the "
                      "device on a modbus-tcp or modbus-rtu bus",
                      bus_e->value, driver_names(driver, name, sizeof(name)));
    }
    const struct pdm_ini_entry *prof_e = pdm_ini_get(s, "profile");
    const struct profile *p = prof_e ? find_profile(c, s, prof_e) : NULL;
    if (!p || !p->ok)
        return;
    unsigned char sel[256];
    const struct pdm_ini_entry *only_e = pdm_ini_get(s, "only");
    if (p->n_regs > sizeof(sel)) {
        pdm_ini_error(&c->doc, prof_e->line, s, prof_e->key,
                      "profile '%s' has %u registers: at most %zu per device", p->name, p->n_regs,
                      sizeof(sel));
        return;
    }
    memset(sel, only_e ? 0 : 1, sizeof(sel));
    if (only_e)
        select_registers(c, s, only_e, p, sel);

    for (uint32_t k = 0; k < p->n_regs; k++) {
        if (!sel[k])
            continue;
        char name[2 * PDM_NAME_MAX + 2];
        snprintf(name, sizeof(name), "%s.%s", s->arg, p->regs[k].name);
        if (strlen(name) > PDM_NAME_MAX) {
            pdm_ini_error(&c->doc, s->line, s, NULL,
                          "sensor name '%s' is longer than %d characters: shorten the device "
                          "name",
                          name, PDM_NAME_MAX);
            continue;
        }
        int clash = pdm_config_sensor_index(cfg, name);
        if (clash >= 0) {
            pdm_ini_error(&c->doc, s->line, s, NULL,
                          "register '%s' of profile '%s' makes sensor '%s', which is also "
                          "[sensor %s] (line %d): rename one of them",
                          p->regs[k].name, p->name, name, name, cfg->sensors[clash].line);
            continue;
        }
        struct pdm_sensor_cfg *sn = &cfg->sensors[cfg->n_sensors++];
        *sn = p->regs[k];
        strcpy(sn->name, name);
        sn->bus = (ok & 1u) ? d.bus : 0;
        sn->unit_id = d.unit_id;
        sn->period_ms = d.period_ms;
        sn->valid_min = -INFINITY;
        sn->valid_max = INFINITY;
        sn->line = s->line;
    }
}

static void free_profiles(struct ctx *c)
{
    for (size_t i = 0; i < c->n_profiles; i++)
        free(c->profiles[i].regs);
    free(c->profiles);
    c->profiles = NULL;
    c->n_profiles = 0;
}

/* ---- whole file ------------------------------------------------------------------------ */

enum kind { K_AGENT, K_MQTT, K_BUS, K_SENSOR, K_ASSET, K_DEVICE, K_UNKNOWN };

static enum kind kind_of(const struct pdm_ini_section *s)
{
    for (size_t k = 0; k < N_ELEMS(section_kinds); k++)
        if (strcmp(s->kind, section_kinds[k]) == 0)
            return (enum kind)k;
    return K_UNKNOWN;
}

/* 1 if the header's name fits its kind; reports why not when report is set. */
static int header_ok(struct ctx *c, const struct pdm_ini_section *s, int report)
{
    enum kind k = kind_of(s);
    if (k == K_AGENT || k == K_MQTT) {
        if (*s->arg && report)
            pdm_ini_error(&c->doc, s->line, s, NULL, "[%s] takes no name; its keys are ignored",
                          s->kind);
        return !*s->arg;
    }
    if (!*s->arg) {
        if (report)
            pdm_ini_error(&c->doc, s->line, s, NULL, "needs a name: [%s NAME]", s->kind);
        return 0;
    }
    if (!pdm_ini_is_name(s->arg, PDM_NAME_MAX, 1)) {
        if (report)
            pdm_ini_error(&c->doc, s->line, s, NULL,
                          "%s name must be 1 to %d characters from A-Z a-z 0-9 _ . -; its keys "
                          "are ignored",
                          s->kind, PDM_NAME_MAX);
        return 0;
    }
    return 1;
}

static void set_defaults(struct pdm_config *cfg)
{
    cfg->log_level = PDM_LOG_INFO;
    strcpy(cfg->topic_prefix, "pdm/v1");
    cfg->telemetry_interval_s = 10;
    cfg->commit_interval_ms = 1000;
    cfg->buffer_max_mb = 64;
    cfg->disk_reserve_mb = 8;
    cfg->renotify_h = 24;
    cfg->confirm_after_h = 72;
}

/* Counts, allocates and names the per-kind arrays so that any section can refer to any other. */
static int register_sections(struct ctx *c)
{
    struct pdm_config *cfg = c->cfg;
    size_t n[K_UNKNOWN] = {0};
    for (size_t i = 0; i < c->doc.n_sections; i++) {
        const struct pdm_ini_section *s = &c->doc.sections[i];
        if (kind_of(s) != K_UNKNOWN && header_ok(c, s, 0))
            n[kind_of(s)]++;
    }
    /* a device's sensors are its profile's registers: read the profiles now to count them */
    for (size_t i = 0; i < c->doc.n_sections; i++) {
        const struct pdm_ini_section *s = &c->doc.sections[i];
        const struct pdm_ini_entry *e =
            kind_of(s) == K_DEVICE && header_ok(c, s, 0) ? pdm_ini_get(s, "profile") : NULL;
        const struct profile *p = e ? find_profile(c, s, e) : NULL;
        if (p && p->ok)
            n[K_SENSOR] += p->n_regs;
    }
    if ((n[K_BUS] && !(cfg->buses = calloc(n[K_BUS], sizeof(*cfg->buses)))) ||
        (n[K_SENSOR] && !(cfg->sensors = calloc(n[K_SENSOR], sizeof(*cfg->sensors)))) ||
        (n[K_ASSET] && !(cfg->assets = calloc(n[K_ASSET], sizeof(*cfg->assets)))))
        return -ENOMEM;
    for (size_t i = 0; i < c->doc.n_sections; i++) {
        const struct pdm_ini_section *s = &c->doc.sections[i];
        if (!header_ok(c, s, 0))
            continue;
        switch (kind_of(s)) {
        case K_BUS: {
            struct pdm_bus_cfg *b = &cfg->buses[cfg->n_buses++];
            strcpy(b->name, s->arg);
            b->line = s->line;
            b->port = 502;
            b->timeout_ms = 500;
            b->baud = 9600;
            b->parity = 'N';
            b->data_bits = 8;
            b->stop_bits = 1;
            b->max_span = 64;
            b->max_span_bits = 2000;
            b->max_gap = 8;
            b->frame_gap_ms = -1;
            b->iio_index = -1;
            b->window = 4096;
            break;
        }
        case K_SENSOR: {
            struct pdm_sensor_cfg *sn = &cfg->sensors[cfg->n_sensors++];
            strcpy(sn->name, s->arg);
            sn->line = s->line;
            sn->unit_id = 1;
            sn->table = PDM_TABLE_HOLDING;
            sn->type = PDM_TYPE_U16;
            sn->order = PDM_ORDER_ABCD;
            sn->scale = 1.0;
            sn->offset = 0.0;
            sn->period_ms = 1000;
            break;
        }
        case K_ASSET: {
            struct pdm_asset_cfg *a = &cfg->assets[cfg->n_assets++];
            strcpy(a->name, s->arg);
            a->line = s->line;
            break;
        }
        default:
            break;
        }
    }
    /* after every [sensor], so a clash is found whatever the order in the file */
    for (size_t i = 0; i < c->doc.n_sections; i++) {
        const struct pdm_ini_section *s = &c->doc.sections[i];
        if (kind_of(s) == K_DEVICE && header_ok(c, s, 0))
            load_device(c, s);
    }
    return 0;
}

/* An iio sensor yields one value per window of its bus: that is its period. */
static void iio_sensor_periods(struct pdm_config *cfg)
{
    for (uint32_t i = 0; i < cfg->n_sensors; i++) {
        struct pdm_sensor_cfg *sn = &cfg->sensors[i];
        const struct pdm_bus_cfg *b = sn->bus < cfg->n_buses ? &cfg->buses[sn->bus] : NULL;
        if (b && b->driver == PDM_DRIVER_IIO && b->rate_hz > 0) {
            int64_t ms = ((int64_t)b->window * 1000 + b->rate_hz / 2) / b->rate_hz;
            sn->period_ms = ms < 1 ? 1 : ms > 86400000 ? 86400000 : (int)ms;
        }
    }
}

/* One owner per serial line: two [bus] sections on the same device would be two threads
 * talking over each other on one RS-485 pair (garbled frames, timeouts on both). */
static void check_serial_owners(struct ctx *c)
{
    for (size_t i = 0; i < c->doc.n_sections; i++) {
        const struct pdm_ini_section *s = &c->doc.sections[i];
        const struct pdm_ini_entry *drv = kind_of(s) == K_BUS ? pdm_ini_get(s, "driver") : NULL;
        const struct pdm_ini_entry *dev = drv ? pdm_ini_get(s, "device") : NULL;
        if (!dev || strcmp(drv->value, "modbus-rtu") != 0)
            continue;
        for (size_t j = 0; j < i; j++) {
            const struct pdm_ini_section *o = &c->doc.sections[j];
            const struct pdm_ini_entry *odrv =
                kind_of(o) == K_BUS ? pdm_ini_get(o, "driver") : NULL;
            const struct pdm_ini_entry *odev = odrv ? pdm_ini_get(o, "device") : NULL;
            if (!odev || strcmp(odrv->value, "modbus-rtu") != 0 ||
                strcmp(odev->value, dev->value) != 0)
                continue;
            pdm_ini_error(&c->doc, dev->line, s, "device",
                          "%s is already the line of [bus %s] (line %d): one bus section per "
                          "serial line; put all the devices on it there, each with its unit_id",
                          dev->value, o->arg, o->line);
            break;
        }
    }
}

static void check_sections(struct ctx *c)
{
    struct pdm_config *cfg = c->cfg;
    int have_agent = 0, have_mqtt = 0;
    for (size_t i = 0; i < c->doc.n_sections; i++) {
        const struct pdm_ini_section *s = &c->doc.sections[i];
        enum kind k = kind_of(s);
        if (k == K_UNKNOWN) {
            const char *hint = pdm_ini_suggest(s->kind, section_kinds, N_ELEMS(section_kinds));
            if (hint)
                pdm_ini_error(&c->doc, s->line, s, NULL,
                              "unknown section kind '%s' (did you mean '%s'?)", s->kind, hint);
            else
                pdm_ini_error(&c->doc, s->line, s, NULL,
                              "unknown section kind '%s' (expected agent, mqtt, bus, sensor, "
                              "asset or device)",
                              s->kind);
            continue;
        }
        if (!header_ok(c, s, 1))
            continue;
        switch (k) {
        case K_AGENT:
            have_agent = 1;
            load_agent(c, s);
            break;
        case K_MQTT:
            have_mqtt = 1;
            load_mqtt(c, s);
            break;
        case K_BUS:
            load_bus(c, s, &cfg->buses[pdm_config_bus_index(cfg, s->arg)]);
            break;
        case K_SENSOR:
            load_sensor(c, s, &cfg->sensors[pdm_config_sensor_index(cfg, s->arg)]);
            check_sensor_quality(c, s, &cfg->sensors[pdm_config_sensor_index(cfg, s->arg)]);
            break;
        case K_ASSET:
            for (uint32_t a = 0; a < cfg->n_assets; a++)
                if (strcmp(cfg->assets[a].name, s->arg) == 0)
                    load_asset(c, s, &cfg->assets[a]);
            break;
        case K_DEVICE: /* expanded into sensors by register_sections */
        case K_UNKNOWN:
            break;
        }
    }
    iio_sensor_periods(cfg);
    check_serial_owners(c);
    struct pdm_diag *d = c->doc.diag;
    if (!have_agent)
        pdm_diag_error(d, cfg->path, 0, "agent", NULL, "required section [agent] is missing");
    if (!have_mqtt)
        pdm_diag_error(d, cfg->path, 0, "mqtt", NULL, "required section [mqtt] is missing");
    if (!cfg->n_buses)
        pdm_diag_error(d, cfg->path, 0, "bus", NULL, "no [bus NAME] section: at least one needed");
    if (!cfg->n_sensors)
        pdm_diag_error(d, cfg->path, 0, "sensor", NULL,
                       "no [sensor NAME] or [device NAME] section: at least one needed");
    if (!cfg->n_assets)
        pdm_diag_error(d, cfg->path, 0, "asset", NULL,
                       "no [asset NAME] section: at least one needed");
}

/* cfg->dir = absolute folder of path (symbolic links resolved). */
static int config_dir(struct pdm_config *cfg, const char *path)
{
    char folder[PDM_PATH_MAX];
    const char *slash = strrchr(path, '/');
    if (!slash)
        strcpy(folder, ".");
    else if (slash == path)
        strcpy(folder, "/");
    else
        snprintf(folder, sizeof(folder), "%.*s", (int)(slash - path), path);
    char *abs = realpath(folder, NULL);
    if (!abs)
        return -errno;
    int rc = strlen(abs) < sizeof(cfg->dir) ? 0 : -ENAMETOOLONG;
    if (rc == 0)
        strcpy(cfg->dir, abs);
    free(abs);
    return rc;
}

int pdm_config_load(const char *path, struct pdm_config *cfg, struct pdm_diag *diag)
{
    struct pdm_diag count_only = {0};
    if (!diag)
        diag = &count_only;
    memset(cfg, 0, sizeof(*cfg));
    set_defaults(cfg);
    int before = diag->errors;
    if (strlen(path) >= sizeof(cfg->path)) {
        pdm_diag_error(diag, path, 0, "config", NULL, "path too long: at most %zu characters",
                       sizeof(cfg->path) - 1);
        return diag->errors - before;
    }
    strcpy(cfg->path, path);

    struct ctx c = {.cfg = cfg};
    int rc = config_dir(cfg, path);
    if (rc == 0)
        rc = pdm_ini_load(cfg->path, &c.doc, diag);
    if (rc == 0)
        rc = register_sections(&c);
    if (rc == 0)
        check_sections(&c);
    else
        pdm_diag_error(diag, cfg->path, 0, "config", NULL, "cannot read the configuration: %s",
                       strerror(-rc));
    free_profiles(&c);
    pdm_ini_free(&c.doc);
    return diag->errors - before;
}

void pdm_config_free(struct pdm_config *cfg)
{
    if (!cfg)
        return;
    free(cfg->buses);
    free(cfg->sensors);
    free(cfg->assets);
    cfg->buses = NULL;
    cfg->sensors = NULL;
    cfg->assets = NULL;
    cfg->n_buses = cfg->n_sensors = cfg->n_assets = 0;
}

int pdm_config_sensor_index(const struct pdm_config *cfg, const char *name)
{
    for (uint32_t i = 0; i < cfg->n_sensors; i++)
        if (strcmp(cfg->sensors[i].name, name) == 0)
            return (int)i;
    return -1;
}

int pdm_config_asset_index(const struct pdm_config *cfg, const char *name)
{
    for (uint32_t i = 0; i < cfg->n_assets; i++)
        if (strcmp(cfg->assets[i].name, name) == 0)
            return (int)i;
    return -1;
}

int pdm_config_bus_index(const struct pdm_config *cfg, const char *name)
{
    for (uint32_t i = 0; i < cfg->n_buses; i++)
        if (strcmp(cfg->buses[i].name, name) == 0)
            return (int)i;
    return -1;
}
