/* The key engine behind agent.conf and device profiles (agent/config*.c only).
 *
 * A key is declared once, as one line of its section's table: name, kind of value, flags,
 * bounds, where it is stored and its default. keys_defaults() writes every default of a table
 * into a section's struct; keys_apply() reads a section through its table: values in file
 * order, unknown keys (with a suggestion), keys for another driver, missing required keys.
 * Errors are reported as "FILE:LINE: section.key: reason" and reading goes on. */
#ifndef PDM_CONFIG_KEYS_H
#define PDM_CONFIG_KEYS_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "lib/ini_reader.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

enum vkind {
    V_INT,       /* int in [min, max] */
    V_DOUBLE,    /* finite double */
    V_DRANGE,    /* finite double in [dmin, dmax]; the range is checked after the section */
    V_NONZERO,   /* finite, non-zero double */
    V_BOOL,      /* int 0/1 */
    V_STR,       /* char[size], optional text */
    V_TEXT,      /* char[size], must not be empty, no blanks (host, device) */
    V_DEVICE_ID, /* char[size], [A-Za-z0-9_-]{1,64} */
    V_PATH,      /* char[size], resolved against the config's folder */
    V_FILE,      /* V_PATH that must be readable now (certificates, keys, models) */
    V_LOGLEVEL,
    V_URI,
    V_TOPIC,
    V_DRIVER,
    V_PARITY,
    V_BUSREF,    /* uint32_t index of a [bus] */
    V_SENSORREF, /* int32_t index of a [sensor] (an asset's running_sensor) */
    V_TABLE,
    V_TYPE,
    V_ORDER,
    V_AXIS,     /* int 0..2: x | y | z */
    V_FEATURE,  /* enum pdm_vib_feature */
    V_IIO_MODE, /* enum pdm_iio_mode */
    V_DATE,     /* int64_t Unix seconds of YYYY-MM-DD (UTC midnight), not in the future */
    V_AGE_FROM, /* int: installed = 0, run_hours = 1 */
};

#define F_REQ     1u  /* required (for a driver-specific key: required with that driver) */
#define F_TCP     2u  /* modbus-tcp buses only */
#define F_RTU     4u  /* modbus-rtu buses only */
#define F_SYSFS   8u  /* sysfs buses (and their sensors) only */
#define F_IIO     16u /* iio buses (and their sensors) only */
#define F_IIO_OPT 32u /* F_REQ does not hold on iio buses (device or name: see load_bus) */
#define F_FIRST   64u /* read before the other keys of the section (KEYS_FIRST) */
#define F_MODBUS  (F_TCP | F_RTU)
#define F_DRIVERS (F_TCP | F_RTU | F_SYSFS | F_IIO)

/* A key's default, written by keys_defaults() before the section is read. */
struct key_default {
    int set;
    long long i; /* integer and enum kinds, char for V_PARITY */
    double d;    /* V_DOUBLE, V_DRANGE, V_NONZERO */
    const char *s;
};
/* The last initializers of a table line: the default, and for V_DRANGE the bounds. */
#define DEF_NONE             {0, 0, 0, NULL}, 0, 0
#define DEF_I(v)             {1, (v), 0, NULL}, 0, 0
#define DEF_D(v)             {1, 0, (v), NULL}, 0, 0
#define DEF_S(v)             {1, 0, 0, (v)}, 0, 0
#define DEF_DR(v, low, high) {1, 0, (v), NULL}, (low), (high)

struct key_def {
    const char *key;
    enum vkind kind;
    unsigned flags;
    long long min, max; /* V_INT */
    size_t off, size;   /* where in the section's struct */
    struct key_default def;
    double dmin, dmax; /* V_DRANGE */
};

#define AT(type, member) offsetof(struct type, member), sizeof(((struct type *)0)->member)

struct profile; /* config.c */

/* One load: the configuration being filled and the file as read. */
struct ctx {
    struct pdm_config *cfg;
    struct pdm_ini_doc doc;
    struct profile *profiles; /* start-up only: freed at the end of pdm_config_load() */
    size_t n_profiles;
};

enum keys_pass { KEYS_ALL = 0, KEYS_FIRST, KEYS_REST };

struct keys_opts {
    unsigned driver_only; /* F_TCP..F_IIO when the section's driver is known, else 0 */
    enum keys_pass pass;  /* KEYS_FIRST: only F_FIRST keys; KEYS_REST: all others */
    /* a key the table does not have: returns 1 when the section takes it (an asset's
     * `input = sensor` lines), 0 to report it as unknown */
    int (*other)(struct ctx *c, const struct pdm_ini_section *s, const struct pdm_ini_entry *e,
                 void *obj, void *arg);
    void *arg;
};

/* Writes the default of every key of defs that has one into obj. */
void keys_defaults(const struct key_def *defs, size_t n_defs, void *obj);

/* Reads every key of s through defs into obj (opts may be NULL). Returns a bit mask of the defs
 * that were present and valid. */
uint32_t keys_apply(struct ctx *c, const struct pdm_ini_section *s, const struct key_def *defs,
                    size_t n_defs, void *obj, const struct keys_opts *opts);

/* Values the sections check beyond their key's kind. */
int keys_check_uri(const char *v, int *plain);
const char *keys_driver_names(unsigned mask, char *buf, size_t len);
unsigned keys_driver_flag(const char *v);
int keys_resolve_path(struct ctx *c, const struct pdm_ini_section *s, const struct pdm_ini_entry *e,
                      char *out, size_t outlen);
int keys_check_readable(struct ctx *c, const struct pdm_ini_section *s,
                        const struct pdm_ini_entry *e, const char *path);

/* config_sections.c: the [agent], [mqtt], [bus], [sensor] and [asset] sections (the defaults
 * of [bus], [sensor] and [asset]: pdm_config_*_defaults() in config.h). */
void config_main_defaults(struct pdm_config *cfg);
void config_load_agent(struct ctx *c, const struct pdm_ini_section *s);
void config_load_mqtt(struct ctx *c, const struct pdm_ini_section *s);
void config_load_bus(struct ctx *c, const struct pdm_ini_section *s, struct pdm_bus_cfg *b);
void config_load_sensor(struct ctx *c, const struct pdm_ini_section *s, struct pdm_sensor_cfg *sn);
void config_load_asset(struct ctx *c, const struct pdm_ini_section *s, struct pdm_asset_cfg *a);
unsigned config_sensor_driver(struct ctx *c, const struct pdm_ini_section *s);
void config_check_register(struct ctx *c, const struct pdm_ini_section *s,
                           struct pdm_sensor_cfg *sn, int has_type, int type_ok, int addr_ok);

#endif
