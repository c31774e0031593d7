/* The [agent], [mqtt], [bus], [sensor] and [asset] sections of agent.conf: one table line per
 * key (name, kind, flags, integer bounds, where it is stored, default, fractional bounds), then
 * the rules between keys that a table cannot say. Adding a key: one line here, its field in
 * config.h / drivers/bus_config.h / models/asset_config.h, its item in pdm-agent.conf(5). */
#include "config_keys.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "modelsig.h"

#define SERVICE_HOURS_MAX 8760.0 /* renotify_h, confirm_after_h: at most a year */

enum { AK_MODEL_PUBKEY = 6 }; /* indexes into agent_keys */
static const struct key_def agent_keys[] = {
    {"device_id", V_DEVICE_ID, F_REQ, 0, 0, AT(pdm_config, device_id), DEF_NONE},
    {"data_dir", V_PATH, F_REQ, 0, 0, AT(pdm_config, data_dir), DEF_NONE},
    {"log_level", V_LOGLEVEL, 0, 0, 0, AT(pdm_config, log_level), DEF_I(PDM_LOG_INFO)},
    {"commit_interval_ms", V_INT, 0, 50, 60000, AT(pdm_config, commit_interval_ms), DEF_I(1000)},
    {"buffer_max_mb", V_INT, 0, 1, 65536, AT(pdm_config, buffer_max_mb), DEF_I(64)},
    {"disk_reserve_mb", V_INT, 0, 0, 65536, AT(pdm_config, disk_reserve_mb), DEF_I(8)},
    [AK_MODEL_PUBKEY] = {"model_pubkey", V_FILE, 0, 0, 0, AT(pdm_config, model_pubkey), DEF_NONE},
    {"renotify_h", V_DRANGE, 0, 0, 0, AT(pdm_config, renotify_h), DEF_DR(24, 0, SERVICE_HOURS_MAX)},
    {"confirm_after_h", V_DRANGE, 0, 0, 0, AT(pdm_config, confirm_after_h),
     DEF_DR(72, 0, SERVICE_HOURS_MAX)},
};

enum { MK_URI }; /* indexes into mqtt_keys */
static const struct key_def mqtt_keys[] = {
    [MK_URI] = {"uri", V_URI, F_REQ, 0, 0, AT(pdm_config, uri), DEF_NONE},
    {"ca_file", V_FILE, 0, 0, 0, AT(pdm_config, ca_file), DEF_NONE},
    {"cert_file", V_FILE, 0, 0, 0, AT(pdm_config, cert_file), DEF_NONE},
    {"key_file", V_FILE, 0, 0, 0, AT(pdm_config, key_file), DEF_NONE},
    {"topic_prefix", V_TOPIC, 0, 0, 0, AT(pdm_config, topic_prefix), DEF_S("pdm/v1")},
    {"telemetry_interval_s", V_INT, 0, 1, 3600, AT(pdm_config, telemetry_interval_s), DEF_I(10)},
    {"allow_plaintext", V_BOOL, 0, 0, 0, AT(pdm_config, allow_plaintext), DEF_I(0)},
};

static const struct key_def bus_keys[] = {
    {"driver", V_DRIVER, F_REQ, 0, 0, AT(pdm_bus_cfg, driver), DEF_NONE},
    {"host", V_TEXT, F_REQ | F_TCP, 0, 0, AT(pdm_bus_cfg, host), DEF_NONE},
    {"port", V_INT, F_TCP, 1, 65535, AT(pdm_bus_cfg, port), DEF_I(502)},
    {"timeout_ms", V_INT, 0, 10, 60000, AT(pdm_bus_cfg, timeout_ms), DEF_I(500)},
    {"device", V_TEXT, F_REQ | F_RTU | F_IIO | F_IIO_OPT, 0, 0, AT(pdm_bus_cfg, device), DEF_NONE},
    {"baud", V_INT, F_RTU, 1200, 921600, AT(pdm_bus_cfg, baud), DEF_I(9600)},
    {"parity", V_PARITY, F_RTU, 0, 0, AT(pdm_bus_cfg, parity), DEF_I('N')},
    {"data_bits", V_INT, F_RTU, 7, 8, AT(pdm_bus_cfg, data_bits), DEF_I(8)},
    {"stop_bits", V_INT, F_RTU, 1, 2, AT(pdm_bus_cfg, stop_bits), DEF_I(1)},
    {"max_span", V_INT, F_MODBUS, 1, 125, AT(pdm_bus_cfg, max_span), DEF_I(64)},
    {"max_span_bits", V_INT, F_MODBUS, 1, 2000, AT(pdm_bus_cfg, max_span_bits), DEF_I(2000)},
    {"max_gap", V_INT, F_MODBUS, 0, 124, AT(pdm_bus_cfg, max_gap), DEF_I(8)},
    /* -1 = not set: 0 on TCP, 3.5 characters on RTU (pdm_frame_gap_us()) */
    {"frame_gap_ms", V_INT, F_MODBUS, 0, 1000, AT(pdm_bus_cfg, frame_gap_ms), DEF_I(-1)},
    {"root", V_PATH, F_SYSFS | F_IIO, 0, 0, AT(pdm_bus_cfg, root), DEF_NONE},
    {"name", V_TEXT, F_IIO, 0, 0, AT(pdm_bus_cfg, iio_name), DEF_NONE},
    {"rate_hz", V_INT, F_REQ | F_IIO, 1, 100000, AT(pdm_bus_cfg, rate_hz), DEF_NONE},
    {"window", V_INT, F_IIO, 2, 1048576, AT(pdm_bus_cfg, window), DEF_I(4096)},
    {"mode", V_IIO_MODE, F_IIO, 0, 0, AT(pdm_bus_cfg, mode), DEF_I(PDM_IIO_BUFFERED)},
};

enum { SK_BUS, SK_UNIT_ID, SK_TABLE, SK_ADDRESS, SK_TYPE }; /* indexes into sensor_keys */
static const struct key_def sensor_keys[] = {
    [SK_BUS] = {"bus", V_BUSREF, F_REQ, 0, 0, AT(pdm_sensor_cfg, bus), DEF_NONE},
    [SK_UNIT_ID] = {"unit_id", V_INT, F_MODBUS, 1, 247, AT(pdm_sensor_cfg, unit_id), DEF_I(1)},
    [SK_TABLE] = {"table", V_TABLE, F_MODBUS, 0, 0, AT(pdm_sensor_cfg, table),
                  DEF_I(PDM_TABLE_HOLDING)},
    [SK_ADDRESS] = {"address", V_INT, F_REQ | F_MODBUS, 0, 65535, AT(pdm_sensor_cfg, address),
                    DEF_NONE},
    /* required for register tables; coil and discrete imply bool (load_sensor checks both) */
    [SK_TYPE] = {"type", V_TYPE, F_MODBUS, 0, 0, AT(pdm_sensor_cfg, type), DEF_I(PDM_TYPE_U16)},
    {"word_order", V_ORDER, F_MODBUS, 0, 0, AT(pdm_sensor_cfg, order), DEF_I(PDM_ORDER_ABCD)},
    {"scale", V_NONZERO, 0, 0, 0, AT(pdm_sensor_cfg, scale), DEF_D(1.0)},
    {"offset", V_DOUBLE, 0, 0, 0, AT(pdm_sensor_cfg, offset), DEF_D(0.0)},
    /* on an iio bus the period is one window: window / rate_hz of the bus */
    {"period_ms", V_INT, F_MODBUS | F_SYSFS, 10, 86400000, AT(pdm_sensor_cfg, period_ms),
     DEF_I(1000)},
    /* sysfs and iio sensors without one get degC or m/s2 (load_onboard_sensor) */
    {"unit", V_STR, 0, 0, 0, AT(pdm_sensor_cfg, unit), DEF_S("")},
    /* data quality: no limits unless given; check_sensor_quality() checks min < max */
    {"valid_min", V_DOUBLE, 0, 0, 0, AT(pdm_sensor_cfg, valid_min), DEF_D(-INFINITY)},
    {"valid_max", V_DOUBLE, 0, 0, 0, AT(pdm_sensor_cfg, valid_max), DEF_D(INFINITY)},
    {"frozen_s", V_INT, 0, 0, 2592000, AT(pdm_sensor_cfg, frozen_s), DEF_I(0)},
    /* 0 = max(3 periods, 10 s) (models/quality.c) */
    {"stale_s", V_INT, 0, 1, 2592000, AT(pdm_sensor_cfg, stale_s), DEF_I(0)},
    /* on-board sensors; load_onboard_sensor checks which combinations make sense */
    {"hwmon", V_TEXT, F_SYSFS, 0, 0, AT(pdm_sensor_cfg, hwmon), DEF_NONE},
    {"label", V_STR, F_SYSFS, 0, 0, AT(pdm_sensor_cfg, label), DEF_NONE},
    {"index", V_INT, F_SYSFS, 1, 99, AT(pdm_sensor_cfg, index), DEF_NONE},
    {"thermal_zone", V_TEXT, F_SYSFS, 0, 0, AT(pdm_sensor_cfg, hwmon), DEF_NONE},
    {"path", V_TEXT, F_SYSFS, 0, 0, AT(pdm_sensor_cfg, path), DEF_NONE},
    {"axis", V_AXIS, F_REQ | F_IIO, 0, 0, AT(pdm_sensor_cfg, axis), DEF_NONE},
    {"feature", V_FEATURE, F_REQ | F_IIO, 0, 0, AT(pdm_sensor_cfg, feature), DEF_NONE},
};

/* Every other key of an [asset] maps a model input to a sensor (asset_input_line). */
enum { AK_MODEL, AK_INSTALLED, AK_RUNNING_SENSOR }; /* indexes into asset_keys */
static const struct key_def asset_keys[] = {
    /* read first: the input lines are checked against the model's inputs */
    [AK_MODEL] = {"model", V_FILE, F_REQ | F_FIRST, 0, 0, AT(pdm_asset_cfg, model_path), DEF_NONE},
    [AK_INSTALLED] = {"installed", V_DATE, 0, 0, 0, AT(pdm_asset_cfg, installed_s), DEF_NONE},
    /* usage counters and maintenance (agent/usage.h); check_asset_usage: what needs what */
    [AK_RUNNING_SENSOR] = {"running_sensor", V_SENSORREF, 0, 0, 0,
                           AT(pdm_asset_cfg, running_sensor), DEF_NONE},
    {"running_above", V_DOUBLE, 0, 0, 0, AT(pdm_asset_cfg, running_above), DEF_NONE},
    {"running_hysteresis", V_DRANGE, 0, 0, 0, AT(pdm_asset_cfg, running_hysteresis),
     DEF_DR(0, 0, 1e300)},
    {"running_debounce_s", V_INT, 0, 0, 3600, AT(pdm_asset_cfg, running_debounce_s), DEF_I(5)},
    {"age_from", V_AGE_FROM, 0, 0, 0, AT(pdm_asset_cfg, age_from_run_hours), DEF_I(0)},
    {"service_every_hours", V_DRANGE, 0, 0, 0, AT(pdm_asset_cfg, service_every_hours),
     DEF_DR(0, 0, 1e6)},
    {"service_every_starts", V_INT, 0, 0, 100000000, AT(pdm_asset_cfg, service_every_starts),
     DEF_I(0)},
    {"service_every_months", V_INT, 0, 0, 1200, AT(pdm_asset_cfg, service_every_months), DEF_I(0)},
    {"last_service", V_DATE, 0, 0, 0, AT(pdm_asset_cfg, last_service_s), DEF_NONE},
};

void config_main_defaults(struct pdm_config *cfg)
{
    keys_defaults(agent_keys, N_ELEMS(agent_keys), cfg);
    keys_defaults(mqtt_keys, N_ELEMS(mqtt_keys), cfg);
}

void pdm_config_bus_defaults(struct pdm_bus_cfg *b)
{
    keys_defaults(bus_keys, N_ELEMS(bus_keys), b);
    b->iio_index = -1; /* not a key: set from device = iio:deviceN */
}

void pdm_config_sensor_defaults(struct pdm_sensor_cfg *sn)
{
    keys_defaults(sensor_keys, N_ELEMS(sensor_keys), sn);
}

void pdm_config_asset_defaults(struct pdm_asset_cfg *a)
{
    keys_defaults(asset_keys, N_ELEMS(asset_keys), a);
}

void config_load_agent(struct ctx *c, const struct pdm_ini_section *s)
{
    struct pdm_config *cfg = c->cfg;
    uint32_t ok = keys_apply(c, s, agent_keys, N_ELEMS(agent_keys), cfg, NULL);
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
}

void config_load_mqtt(struct ctx *c, const struct pdm_ini_section *s)
{
    struct pdm_config *cfg = c->cfg;
    uint32_t ok = keys_apply(c, s, mqtt_keys, N_ELEMS(mqtt_keys), cfg, NULL);
    if (!((ok >> MK_URI) & 1u))
        return; /* no valid uri: nothing to check it against */
    int plain = 0;
    keys_check_uri(cfg->uri, &plain);
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

void config_load_bus(struct ctx *c, const struct pdm_ini_section *s, struct pdm_bus_cfg *b)
{
    /* the driver decides which other keys belong here, wherever it is in the section */
    const struct pdm_ini_entry *d = pdm_ini_get(s, "driver");
    struct keys_opts o = {.driver_only = d ? keys_driver_flag(d->value) : 0};
    keys_apply(c, s, bus_keys, N_ELEMS(bus_keys), b, &o);
    if (o.driver_only == F_IIO)
        load_iio_bus(c, s, b);
}

/* The F_ flag of the driver of the bus a sensor section names (the bus may come later in the
 * file), 0 when unknown. */
unsigned config_sensor_driver(struct ctx *c, const struct pdm_ini_section *s)
{
    const struct pdm_ini_entry *bus = pdm_ini_get(s, "bus");
    for (size_t i = 0; bus && i < c->doc.n_sections; i++) {
        const struct pdm_ini_section *b = &c->doc.sections[i];
        if (strcmp(b->kind, "bus") == 0 && strcmp(b->arg, bus->value) == 0) {
            const struct pdm_ini_entry *d = pdm_ini_get(b, "driver");
            return d ? keys_driver_flag(d->value) : 0;
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

/* A range of valid values must not be empty; stale_s must be longer
 * than one read period or the sensor would be stale between two good reads. */
static void check_sensor_quality(struct ctx *c, const struct pdm_ini_section *s,
                                 struct pdm_sensor_cfg *sn)
{
    const struct pdm_ini_entry *lo = pdm_ini_get(s, "valid_min");
    const struct pdm_ini_entry *hi = pdm_ini_get(s, "valid_max");
    const struct pdm_ini_entry *st = pdm_ini_get(s, "stale_s");
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
void config_check_register(struct ctx *c, const struct pdm_ini_section *s,
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
    unsigned driver = config_sensor_driver(c, s);
    struct keys_opts o = {.driver_only = driver};
    uint32_t ok = keys_apply(c, s, sensor_keys, N_ELEMS(sensor_keys), sn, &o);
    if (driver == F_SYSFS || driver == F_IIO) {
        load_onboard_sensor(c, s, sn, driver);
        return;
    }
    /* bus unknown (misspelt, or its driver is): most buses are Modbus, so say what it lacks */
    if (!driver && !pdm_ini_get(s, "address"))
        pdm_ini_error(&c->doc, s->line, s, "address", "required key is missing");
    config_check_register(c, s, sn, pdm_ini_get(s, "type") != NULL, (ok >> SK_TYPE) & 1u,
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

void config_load_sensor(struct ctx *c, const struct pdm_ini_section *s, struct pdm_sensor_cfg *sn)
{
    load_sensor(c, s, sn);
    check_sensor_quality(c, s, sn);
}

/* ---- [asset] ------------------------------------------------------------------------------ */

/* The combinations of the usage and maintenance keys: what each key needs from the others. */
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

/* The `input = sensor` lines of one [asset], in the model's input order. */
struct asset_lines {
    int model_ok;
    const struct pdm_ini_entry *mapped[PDM_MODEL_MAX_INPUTS];
    int32_t sensor_of[PDM_MODEL_MAX_INPUTS];
};

/* A key asset_keys does not have: it maps a model input to a sensor. */
static int asset_input_line(struct ctx *c, const struct pdm_ini_section *s,
                            const struct pdm_ini_entry *e, void *obj, void *arg)
{
    struct pdm_asset_cfg *a = obj;
    struct asset_lines *al = arg;
    const struct pdm_config *cfg = c->cfg;
    const struct pdm_ini_doc *doc = &c->doc;
    if (strcmp(e->key, "age") == 0) {
        pdm_ini_error(doc, e->line, s, e->key,
                      "'age' is not read from a sensor: it comes from 'installed = "
                      "YYYY-MM-DD'");
        return 1;
    }
    int input = -1;
    if (al->model_ok) {
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
        al->mapped[input] = e;
        al->sensor_of[input] = sensor;
    }
    if (sensor >= 0 && is_input_name(e->key)) {
        if (a->n_provides == PDM_ASSET_MAX_PROVIDES) {
            pdm_ini_error(doc, e->line, s, e->key, "too many inputs: at most %d per asset",
                          PDM_ASSET_MAX_PROVIDES);
            return 1;
        }
        struct pdm_asset_input_cfg *p = &a->provides[a->n_provides++];
        snprintf(p->input, sizeof(p->input), "%s", e->key);
        p->sensor = sensor;
        p->line = e->line;
    }
    return 1;
}

void config_load_asset(struct ctx *c, const struct pdm_ini_section *s, struct pdm_asset_cfg *a)
{
    const struct pdm_ini_doc *doc = &c->doc;
    struct asset_lines al = {0};
    /* the model first, wherever its line is: the other lines name its inputs */
    struct keys_opts first = {.pass = KEYS_FIRST};
    uint32_t ok = keys_apply(c, s, asset_keys, N_ELEMS(asset_keys), a, &first);
    if ((ok >> AK_MODEL) & 1u) /* the model's own errors name its file and lines */
        al.model_ok = pdm_model_load(a->model_path, &a->model, doc->diag) == 0;
    struct keys_opts rest = {.pass = KEYS_REST, .other = asset_input_line, .arg = &al};
    ok |= keys_apply(c, s, asset_keys, N_ELEMS(asset_keys), a, &rest);
    a->has_running = (ok >> AK_RUNNING_SENSOR) & 1u;
    check_asset_usage(c, s, a);
    if (!al.model_ok)
        return;

    const struct pdm_ini_entry *inst_e = pdm_ini_get(s, "installed");
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
        } else if (al.mapped[i]) {
            out->sensor = al.sensor_of[i];
            out->line = al.mapped[i]->line;
        } else {
            pdm_ini_error(doc, s->line, s, in->name,
                          "model input '%s' has no sensor: add '%s = SENSOR_NAME'", in->name,
                          in->name);
        }
    }
    a->n_inputs = a->model.n_inputs;
}
