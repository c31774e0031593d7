/* agent.conf and model file reading: the shipped example loads clean; broken files report every
 * mistake at once, each as the exact FILE:LINE: section.key: reason line a user would see.
 * All fixtures are written into a fresh mkdtemp folder under /tmp and removed at the end. */
#define _GNU_SOURCE
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/config.h"
#include "check.h"
#include "models/model.h"

static char g_dir[256]; /* the test's temp folder, symbolic links resolved */

/* Writes text to g_dir/rel, creating folders on the way. */
static void write_file(const char *rel, const char *text)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", g_dir, rel);
    for (char *p = path + strlen(g_dir) + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            mkdir(path, 0755);
            *p = '/';
        }
    }
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        exit(2);
    }
    fputs(text, f);
    fclose(f);
}

static char *read_all(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        perror(path);
        exit(2);
    }
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return strdup(buf);
}

static void copy_example(const char *src_rel, const char *dst_rel)
{
    char src[PATH_MAX];
    snprintf(src, sizeof(src), "%s/%s", PDM_SOURCE_DIR, src_rel);
    char *text = read_all(src);
    write_file(dst_rel, text);
    free(text);
}

/* Expected output with every '@' replaced by the temp folder. */
static char *subst(const char *tmpl)
{
    size_t n = 1;
    for (const char *p = tmpl; *p; p++)
        n += *p == '@' ? strlen(g_dir) : 1;
    char *out = malloc(n), *o = out;
    for (const char *p = tmpl; *p; p++) {
        if (*p == '@') {
            strcpy(o, g_dir);
            o += strlen(g_dir);
        } else {
            *o++ = *p;
        }
    }
    *o = '\0';
    return out;
}

/* Loads path, capturing what the user would see; *out is malloc'ed. */
static int load(const char *path, struct pdm_config *cfg, char **out)
{
    size_t len = 0;
    FILE *ms = open_memstream(out, &len);
    struct pdm_diag d = {.out = ms};
    int n = pdm_config_load(path, cfg, &d);
    fclose(ms);
    CHECK_INT(d.errors, n);
    return n;
}

static void check_output(const char *got, const char *tmpl)
{
    char *want = subst(tmpl);
    CHECK_STR(got, want);
    free(want);
}

static const char *join(char *buf, size_t size, const char *a, const char *b)
{
    snprintf(buf, size, "%s%s", a, b);
    return buf;
}

static double logistic(const struct pdm_model *m, const double *x)
{
    double logit = m->intercept;
    for (uint32_t i = 0; i < m->n_inputs; i++)
        logit += m->inputs[i].weight * (x[i] - m->inputs[i].center) / m->inputs[i].scale;
    return 1.0 / (1.0 + exp(-logit));
}

static void write_tls(const char *folder)
{
    static const char *const names[] = {"ca.pem", "device.pem", "device.key"};
    char rel[256];
    for (int i = 0; i < 3; i++) {
        snprintf(rel, sizeof(rel), "%s/tls/%s", folder, names[i]);
        write_file(rel, "dummy\n");
    }
}

static void test_good_example(void)
{
    copy_example("examples/agent.conf", "good/agent.conf");
    copy_example("examples/models/compressor.model", "good/models/compressor.model");
    write_tls("good");

    char path[PATH_MAX], want[PATH_MAX];
    snprintf(path, sizeof(path), "%s/good/agent.conf", g_dir);
    static struct pdm_config cfg;
    char *out = NULL;
    CHECK_INT(load(path, &cfg, &out), 0);
    CHECK_STR(out, "");
    free(out);

    char dir[512];
    snprintf(dir, sizeof(dir), "%s/good", g_dir);
    CHECK_STR(cfg.dir, dir);
    CHECK_STR(cfg.device_id, "gw-0001");
    CHECK_STR(cfg.data_dir, join(want, sizeof(want), dir, "/data"));
    CHECK_INT(cfg.log_level, PDM_LOG_INFO);
    CHECK_STR(cfg.uri, "mqtts://127.0.0.1:8883");
    CHECK_STR(cfg.ca_file, join(want, sizeof(want), dir, "/tls/ca.pem"));
    CHECK_STR(cfg.cert_file, join(want, sizeof(want), dir, "/tls/device.pem"));
    CHECK_STR(cfg.key_file, join(want, sizeof(want), dir, "/tls/device.key"));
    CHECK_STR(cfg.topic_prefix, "pdm/v1");
    CHECK_INT(cfg.telemetry_interval_s, 10);
    CHECK_INT(cfg.allow_plaintext, 0);

    CHECK_INT(cfg.n_buses, 1);
    CHECK_STR(cfg.buses[0].name, "plant");
    CHECK_INT(cfg.buses[0].driver, PDM_DRIVER_MODBUS_TCP);
    CHECK_STR(cfg.buses[0].host, "127.0.0.1");
    CHECK_INT(cfg.buses[0].port, 1502);
    CHECK_INT(cfg.buses[0].timeout_ms, 500);

    /* the simulator's register map */
    static const char *const names[] = {"comp_temp", "comp_vib", "comp_power"};
    static const char *const units[] = {"degC", "mm/s", "W"};
    CHECK_INT(cfg.n_sensors, 3);
    for (uint32_t i = 0; i < 3 && i < cfg.n_sensors; i++) {
        const struct pdm_sensor_cfg *s = &cfg.sensors[i];
        CHECK_STR(s->name, names[i]);
        CHECK_INT(s->bus, 0);
        CHECK_INT(s->unit_id, 1);
        CHECK_INT(s->table, PDM_TABLE_HOLDING);
        CHECK_INT(s->address, 2 * i);
        CHECK_INT(s->type, PDM_TYPE_FLOAT32);
        CHECK_INT(s->order, PDM_ORDER_ABCD);
        CHECK_NEAR(s->scale, 1.0, 0);
        CHECK_NEAR(s->offset, 0.0, 0);
        CHECK_INT(s->period_ms, 500);
        CHECK_STR(s->unit, units[i]);
        CHECK_INT(pdm_config_sensor_index(&cfg, names[i]), i);
    }
    CHECK_INT(pdm_config_sensor_index(&cfg, "nope"), -1);
    CHECK_INT(pdm_config_bus_index(&cfg, "plant"), 0);
    CHECK_INT(pdm_config_bus_index(&cfg, "nope"), -1);

    CHECK_INT(cfg.n_assets, 1);
    if (cfg.n_assets == 1) {
        const struct pdm_asset_cfg *a = &cfg.assets[0];
        CHECK_STR(a->name, "compressor-1");
        CHECK_INT(pdm_config_asset_index(&cfg, "compressor-1"), 0);
        CHECK_INT(pdm_config_asset_index(&cfg, "compressor"), -1);
        CHECK_STR(a->model_path, join(want, sizeof(want), dir, "/models/compressor.model"));
        CHECK_INT(a->installed_s, 1559347200); /* 2019-06-01T00:00:00Z */
        const struct pdm_model *m = &a->model;
        CHECK_STR(m->id, "compressor");
        CHECK_INT(m->version, 1);
        CHECK_NEAR(m->intercept, -4.0, 0);
        CHECK_NEAR(m->warning, 0.5, 0);
        CHECK_NEAR(m->critical, 0.8, 0);
        CHECK_NEAR(m->clear, 0.4, 0);
        CHECK_INT(m->hold, 3);
        CHECK_INT(m->eval_period_ms, 1000);
        CHECK_INT(m->n_inputs, 4);
        CHECK_INT(a->n_inputs, 4);
        static const char *const inputs[] = {"temperature", "vibration", "power", "age"};
        static const int32_t sensors[] = {0, 1, 2, -1};
        for (uint32_t i = 0; i < 4 && i < a->n_inputs; i++) {
            CHECK_STR(m->inputs[i].name, inputs[i]);
            CHECK_STR(a->inputs[i].input, inputs[i]);
            CHECK_INT(a->inputs[i].sensor, sensors[i]);
            CHECK_INT(m->inputs[i].is_age, i == 3);
        }
        CHECK_INT(m->inputs[1].stat, PDM_STAT_RMS);
        CHECK_NEAR(m->inputs[1].window_s, 10, 0);
        CHECK_NEAR(m->inputs[2].center, 800, 0);
        CHECK_NEAR(m->inputs[2].scale, 150, 0);
        CHECK_NEAR(m->inputs[2].weight, 0.6, 0);
        /* the example's promise: healthy ~0.02, a failing compressor well over critical */
        const double healthy[] = {45, 2.5, 800, 7}, failing[] = {60, 8, 1000, 7};
        CHECK_NEAR(logistic(m, healthy), 0.02, 0.005);
        CHECK(logistic(m, failing) > 0.9);
    }
    pdm_config_free(&cfg);
    CHECK(cfg.buses == NULL && cfg.n_buses == 0 && cfg.assets == NULL);
    pdm_config_free(&cfg); /* twice is harmless */

    /* without a diag sink the errors are still counted */
    CHECK_INT(pdm_config_load(path, &cfg, NULL), 0);
    pdm_config_free(&cfg);
}

static const char BAD_CONF[] = "; several mistakes at once\n"      /* 1 */
                               "[agent]\n"                         /* 2 */
                               "device_id = gw-0001\n"             /* 3 */
                               "data_dir = data\n"                 /* 4 */
                               "log_level = verbose\n"             /* 5 */
                               "\n"                                /* 6 */
                               "[mqtt]\n"                          /* 7 */
                               "uri = mqtt://127.0.0.1:1883\n"     /* 8 */
                               "ca_file = tls/missing.pem\n"       /* 9 */
                               "telemetry_interval_s = 0\n"        /* 10 */
                               "\n"                                /* 11 */
                               "[bus plant]\n"                     /* 12 */
                               "driver = modbus-tcp\n"             /* 13 */
                               "host = 127.0.0.1\n"                /* 14 */
                               "prot = 1502\n"                     /* 15 */
                               "device = /dev/ttyUSB0\n"           /* 16 */
                               "\n"                                /* 17 */
                               "[sensor comp_temp]\n"              /* 18 */
                               "bus = plant\n"                     /* 19 */
                               "adress = 0\n"                      /* 20 */
                               "type = float32\n"                  /* 21 */
                               "unit_id = 300\n"                   /* 22 */
                               "unit_id = 2\n"                     /* 23 */
                               "\n"                                /* 24 */
                               "[sensor comp_vib]\n"               /* 25 */
                               "bus = plnat\n"                     /* 26 */
                               "address = 65535\n"                 /* 27 */
                               "type = float32 ; two registers\n"  /* 28 */
                               "  scale = 2\n"                     /* 29 */
                               "\n"                                /* 30 */
                               "[asset compressor-1]\n"            /* 31 */
                               "model = models/compressor.model\n" /* 32 */
                               "temprature = comp_temp\n"          /* 33 */
                               "vibration = comp_vib\n"            /* 34 */
                               "power = comp_pwr\n"                /* 35 */
                               "installed = 2019-02-30\n"          /* 36 */
                               "\n"                                /* 37 */
                               "[sensr extra]\n"                   /* 38 */
                               "bus = plant\n";                    /* 39 */

static void test_many_mistakes(void)
{
    write_file("bad/agent.conf", BAD_CONF);
    copy_example("examples/models/compressor.model", "bad/models/compressor.model");
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/bad/agent.conf", g_dir);
    static struct pdm_config cfg;
    char *out = NULL;
    int n = load(path, &cfg, &out);
    /* problems in the text come first, then the checks of each section in file order */
    check_output(
        out,
        "@/bad/agent.conf:23: sensor.comp_temp.unit_id: duplicate key (first set at line 22)\n"
        "@/bad/agent.conf:29: sensor.comp_vib.scale: indented line: remove the leading spaces, "
        "continuation lines are not supported\n"
        "@/bad/agent.conf:5: agent.log_level: expected error, warning, info or debug, got "
        "'verbose'\n"
        "@/bad/agent.conf:9: mqtt.ca_file: cannot read '@/bad/tls/missing.pem': No such file or "
        "directory\n"
        "@/bad/agent.conf:10: mqtt.telemetry_interval_s: expected an integer from 1 to 3600, got "
        "'0'\n"
        "@/bad/agent.conf:8: mqtt.uri: plain-text MQTT refused: use mqtts:// or set "
        "allow_plaintext = true\n"
        "@/bad/agent.conf:15: bus.plant.prot: unknown key 'prot' (did you mean 'port'?)\n"
        "@/bad/agent.conf:16: bus.plant.device: 'device' is for modbus-rtu or iio buses\n"
        "@/bad/agent.conf:20: sensor.comp_temp.adress: unknown key 'adress' (did you mean "
        "'address'?)\n"
        "@/bad/agent.conf:22: sensor.comp_temp.unit_id: expected an integer from 1 to 247, got "
        "'300'\n"
        "@/bad/agent.conf:18: sensor.comp_temp.address: required key is missing (needed by "
        "modbus-tcp)\n"
        "@/bad/agent.conf:26: sensor.comp_vib.bus: no [bus plnat] section (did you mean "
        "'plant'?)\n"
        "@/bad/agent.conf:27: sensor.comp_vib.address: a float32 at address 65535 needs 2 "
        "registers and runs past the last address 65535\n"
        "@/bad/agent.conf:33: asset.compressor-1.temprature: model 'compressor' has no input "
        "'temprature' (inputs: temperature, vibration, power, age)\n"
        "@/bad/agent.conf:35: asset.compressor-1.power: no [sensor comp_pwr] section\n"
        "@/bad/agent.conf:36: asset.compressor-1.installed: '2019-02-30' is not a real date\n"
        "@/bad/agent.conf:31: asset.compressor-1.temperature: model input 'temperature' has no "
        "sensor: add 'temperature = SENSOR_NAME'\n"
        "@/bad/agent.conf:38: sensr.extra: unknown section kind 'sensr' (did you mean "
        "'sensor'?)\n");
    CHECK_INT(n, 18);
    /* the indented "scale = 2" did not reach the previous value or the sensor */
    CHECK_INT(cfg.n_sensors, 2);
    if (cfg.n_sensors == 2) {
        CHECK_INT(cfg.sensors[1].type, PDM_TYPE_FLOAT32);
        CHECK_NEAR(cfg.sensors[1].scale, 1.0, 0);
        CHECK_INT(cfg.sensors[0].unit_id, 1); /* neither 300 nor the duplicate 2 */
    }
    free(out);
    pdm_config_free(&cfg);
}

static void test_structure_mistakes(void)
{
    char long_line[256] = "key = ";
    memset(long_line + 6, 'x', 200);
    long_line[206] = '\0';
    char text[2048];
    snprintf(text, sizeof(text),
             "stray = 1\n"                         /* 1 */
             "[agent]\n"                           /* 2 */
             "device_id = gw 0001\n"               /* 3 */
             "data_dir = /var/lib/pdm-agent\n"     /* 4 */
             "[mqtt]\n"                            /* 5 */
             "uri = mqtts://broker.example:8883\n" /* 6 */
             "ca_file = tls/ca.pem\n"              /* 7 */
             "topic_prefix = /pdm/#\n"             /* 8 */
             "[bus line1]\n"                       /* 9 */
             "driver = modbus-rtu\n"               /* 10 */
             "host = 10.0.0.1\n"                   /* 11 */
             "parity = X\n"                        /* 12 */
             "[bus line1]\n"                       /* 13 */
             "device = /dev/ttyS1\n"               /* 14 */
             "[bus]\n"                             /* 15 */
             "[sensor s1]\n"                       /* 16 */
             "bus = line1\n"                       /* 17 */
             "address = 1\n"                       /* 18 */
             "type = float16\n"                    /* 19 */
             "%s\n"                                /* 20 */
             "word_order = middle\n"               /* 21 */
             "this line has no equals sign\n"      /* 22 */
             "scale = 0\n",                        /* 23 */
             long_line);
    write_file("struct/agent.conf", text);
    write_file("struct/tls/ca.pem", "dummy\n");
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/struct/agent.conf", g_dir);
    static struct pdm_config cfg;
    char *out = NULL;
    int n = load(path, &cfg, &out);
    check_output(
        out,
        "@/struct/agent.conf:1: stray: key outside any section: put it under a [section] header\n"
        "@/struct/agent.conf:13: bus.line1: duplicate section (first at line 9); its keys are "
        "ignored\n"
        "@/struct/agent.conf:20: sensor.s1.key: line is 206 characters long; at most 197 are "
        "allowed\n"
        "@/struct/agent.conf:22: sensor.s1.this: expected 'key = value', a [section] header or a "
        "comment\n"
        "@/struct/agent.conf:3: agent.device_id: expected 1 to 64 characters from A-Z a-z 0-9 _ "
        "-, got 'gw 0001'\n"
        "@/struct/agent.conf:8: mqtt.topic_prefix: expected MQTT topic levels without '+' or '#' "
        "and no leading or trailing '/', got '/pdm/#'\n"
        "@/struct/agent.conf:5: mqtt.cert_file: required key is missing (needed by mqtts://)\n"
        "@/struct/agent.conf:5: mqtt.key_file: required key is missing (needed by mqtts://)\n"
        "@/struct/agent.conf:11: bus.line1.host: 'host' is for modbus-tcp buses\n"
        "@/struct/agent.conf:12: bus.line1.parity: expected N, E or O, got 'X'\n"
        "@/struct/agent.conf:9: bus.line1.device: required key is missing (needed by "
        "modbus-rtu)\n"
        "@/struct/agent.conf:15: bus: needs a name: [bus NAME]\n"
        "@/struct/agent.conf:19: sensor.s1.type: expected u16, s16, u32, s32, float32, u64, s64 "
        "or float64, got 'float16'\n"
        "@/struct/agent.conf:21: sensor.s1.word_order: expected big (ABCD), little (CDAB), BADC "
        "or DCBA, got 'middle'\n"
        "@/struct/agent.conf:23: sensor.s1.scale: expected a non-zero number, got '0'\n"
        "@/struct/agent.conf: asset: no [asset NAME] section: at least one needed\n");
    CHECK_INT(n, 16);
    CHECK_INT(cfg.n_buses, 1);
    free(out);
    pdm_config_free(&cfg);
}

static const char BAD_MODEL[] = "[model]\n"           /* 1 */
                                "id = bad id!\n"      /* 2 */
                                "version = 0\n"       /* 3 */
                                "intercept = -4x\n"   /* 4 */
                                "warning = 0.5\n"     /* 5 */
                                "critical = 0.45\n"   /* 6 */
                                "clear = 0.6\n"       /* 7 */
                                "hold = 3\n"          /* 8 */
                                "\n"                  /* 9 */
                                "[input Temp]\n"      /* 10 */
                                "stat = mean\n"       /* 11 */
                                "\n"                  /* 12 */
                                "[input vibration]\n" /* 13 */
                                "stat = median\n"     /* 14 */
                                "window_s = 0.5\n"    /* 15 */
                                "center = 2.5\n"      /* 16 */
                                "scale = 0\n"         /* 17 */
                                "wieght = 1.4\n"      /* 18 */
                                "\n"                  /* 19 */
                                "[inptu power]\n";    /* 20 */

static const char BAD_MODEL_OUT[] =
    "@/m/models/bad.model:2: model.id: expected 1 to 64 characters from A-Z a-z 0-9 _ . -, got "
    "'bad id!'\n"
    "@/m/models/bad.model:3: model.version: expected an integer from 1 to 4294967295, got '0'\n"
    "@/m/models/bad.model:4: model.intercept: expected a finite number, got '-4x'\n"
    "@/m/models/bad.model:1: model.eval_period_ms: required key is missing\n"
    "@/m/models/bad.model:7: model.clear: clear (0.6) must be below warning (0.5), or an alert "
    "could never end\n"
    "@/m/models/bad.model:6: model.critical: critical (0.45) must not be below warning (0.5)\n"
    "@/m/models/bad.model:10: input.Temp: input name must be a lower-case letter followed by up "
    "to 31 of a-z 0-9 _\n"
    "@/m/models/bad.model:14: input.vibration.stat: expected mean, rms or max, got 'median'\n"
    "@/m/models/bad.model:15: input.vibration.window_s: expected a number from 1 to 86400, got "
    "'0.5'\n"
    "@/m/models/bad.model:17: input.vibration.scale: expected a number greater than 0, got '0'\n"
    "@/m/models/bad.model:18: input.vibration.wieght: unknown key 'wieght' (did you mean "
    "'weight'?)\n"
    "@/m/models/bad.model:13: input.vibration.weight: required key is missing\n"
    "@/m/models/bad.model:20: inptu.power: unknown section kind 'inptu' (did you mean "
    "'input'?)\n";

static void test_model_file(void)
{
    write_file("m/models/bad.model", BAD_MODEL);
    copy_example("examples/models/compressor.model", "m/models/compressor.model");

    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/m/models/bad.model", g_dir);
    struct pdm_model m;
    char *out = NULL;
    size_t len = 0;
    FILE *ms = open_memstream(&out, &len);
    struct pdm_diag d = {.out = ms};
    int n = pdm_model_load(path, &m, &d);
    fclose(ms);
    check_output(out, BAD_MODEL_OUT);
    CHECK_INT(n, 13);
    free(out);

    /* the shipped model, directly; and more inputs than a model may have */
    snprintf(path, sizeof(path), "%s/m/models/compressor.model", g_dir);
    CHECK_INT(pdm_model_load(path, &m, NULL), 0);
    CHECK_INT(m.n_inputs, 4);
    CHECK_INT(m.inputs[3].is_age, 1);
    CHECK_INT(m.inputs[0].line, 18);

    char big[8192] = "[model]\nid = m\nversion = 4294967295\nintercept = 0\nwarning = 0.5\n"
                     "critical = 0.5\nclear = 0.1\nhold = 1000\neval_period_ms = 100\n";
    for (int i = 0; i <= PDM_MODEL_MAX_INPUTS; i++)
        snprintf(big + strlen(big), sizeof(big) - strlen(big),
                 "[input in%d]\nstat = max\nwindow_s = 86400\ncenter = 0\nscale = 1e-3\n"
                 "weight = -1\n",
                 i);
    write_file("m/models/big.model", big);
    snprintf(path, sizeof(path), "%s/m/models/big.model", g_dir);
    out = NULL;
    ms = open_memstream(&out, &len);
    d = (struct pdm_diag){.out = ms};
    n = pdm_model_load(path, &m, &d);
    fclose(ms);
    check_output(out, "@/m/models/big.model:106: input.in16: too many inputs: a model has at "
                      "most 16\n");
    CHECK_INT(n, 1);
    free(out);
    CHECK_INT(m.n_inputs, 16);
    CHECK_INT(m.version, 4294967295u);
    CHECK_INT(m.inputs[15].stat, PDM_STAT_MAX);
}

static const char MISMATCH_CONF[] = "[agent]\n"                         /* 1 */
                                    "device_id = gw-0002\n"             /* 2 */
                                    "data_dir = /var/lib/pdm-agent\n"   /* 3 */
                                    "[mqtt]\n"                          /* 4 */
                                    "uri = mqtt://127.0.0.1:1883\n"     /* 5 */
                                    "allow_plaintext = yes\n"           /* 6 */
                                    "[bus b]\n"                         /* 7 */
                                    "driver = modbus-tcp\n"             /* 8 */
                                    "host = localhost\n"                /* 9 */
                                    "[sensor t]\n"                      /* 10 */
                                    "bus = b\n"                         /* 11 */
                                    "address = 0\n"                     /* 12 */
                                    "type = float32\n"                  /* 13 */
                                    "[asset a1]\n"                      /* 14 */
                                    "model = models/compressor.model\n" /* 15 */
                                    "temperature = t\n"                 /* 16 */
                                    "vibration = t\n"                   /* 17 */
                                    "age = t\n"                         /* 18 */
                                    "[asset a2]\n"                      /* 19 */
                                    "model = models/compressor.model\n" /* 20 */
                                    "temperature = t\n"                 /* 21 */
                                    "vibration = t\n"                   /* 22 */
                                    "power = t\n"                       /* 23 */
                                    "installed = 2999-01-01\n"          /* 24 */
                                    "[asset a3]\n"                      /* 25 */
                                    "model = models/bad.model\n"        /* 26 */
                                    "temperature = nosuch\n"            /* 27 */
                                    "[asset a4]\n"                      /* 28 */
                                    "model = models/none.model\n";      /* 29 */

static void test_asset_model_mismatch(void)
{
    /* needs test_model_file's model files */
    write_file("m/agent.conf", MISMATCH_CONF);
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/m/agent.conf", g_dir);
    static struct pdm_config cfg;
    char *out = NULL;
    int n = load(path, &cfg, &out);
    char tmpl[8192];
    snprintf(tmpl, sizeof(tmpl), "%s%s%s",
             "@/m/agent.conf:18: asset.a1.age: 'age' is not read from a sensor: it comes from "
             "'installed = YYYY-MM-DD'\n"
             "@/m/agent.conf:14: asset.a1.power: model input 'power' has no sensor: add 'power = "
             "SENSOR_NAME'\n"
             "@/m/agent.conf:14: asset.a1.installed: required key is missing: model 'compressor' "
             "has an 'age' input\n"
             "@/m/agent.conf:24: asset.a2.installed: '2999-01-01' is in the future\n",
             BAD_MODEL_OUT,
             "@/m/agent.conf:27: asset.a3.temperature: no [sensor nosuch] section\n"
             "@/m/agent.conf:29: asset.a4.model: cannot read '@/m/models/none.model': No such "
             "file or directory\n");
    check_output(out, tmpl);
    CHECK_INT(n, 19);
    CHECK_INT(cfg.allow_plaintext, 1);
    CHECK_INT(cfg.n_assets, 4);
    if (cfg.n_assets == 4) {
        /* inputs follow the model's order, whatever the order in the config */
        const struct pdm_asset_cfg *a = &cfg.assets[1];
        CHECK_INT(a->n_inputs, 4);
        CHECK_STR(a->inputs[2].input, "power");
        CHECK_INT(a->inputs[2].sensor, 0);
        CHECK_INT(a->inputs[2].line, 23);
        CHECK_STR(a->inputs[3].input, "age");
        CHECK_INT(a->inputs[3].sensor, -1);
        CHECK_INT(a->inputs[3].line, 24);
        CHECK_INT(cfg.assets[2].n_inputs, 0); /* its model did not load */
    }
    free(out);
    pdm_config_free(&cfg);
}

static const char DERIVED_BAD_MODEL[] = "[model]\n"                  /* 1 */
                                        "id = d\n"                   /* 2 */
                                        "version = 1\n"              /* 3 */
                                        "intercept = 0\n"            /* 4 */
                                        "warning = 0.5\n"            /* 5 */
                                        "critical = 0.8\n"           /* 6 */
                                        "clear = 0.4\n"              /* 7 */
                                        "hold = 1\n"                 /* 8 */
                                        "eval_period_ms = 1000\n"    /* 9 */
                                        "[input torque]\n"           /* 10 */
                                        "stat = mean\n"              /* 11 */
                                        "window_s = 10\n"            /* 12 */
                                        "center = 40\n"              /* 13 */
                                        "scale = 10\n"               /* 14 */
                                        "weight = 1\n"               /* 15 */
                                        "[input power]\n"            /* 16 */
                                        "derive = torque * rpm\n"    /* 17 */
                                        "center = 1\n"               /* 18 */
                                        "scale = 1\n"                /* 19 */
                                        "weight = 1\n"               /* 20 */
                                        "[input a]\n"                /* 21 */
                                        "derive = b - torque\n"      /* 22 */
                                        "stat = max\n"               /* 23 */
                                        "center = 0\n"               /* 24 */
                                        "scale = 1\n"                /* 25 */
                                        "weight = 1\n"               /* 26 */
                                        "[input b]\n"                /* 27 */
                                        "derive = square(a)\n"       /* 28 */
                                        "center = 0\n"               /* 29 */
                                        "scale = 1\n"                /* 30 */
                                        "[input age]\n"              /* 31 */
                                        "derive = torque * torque\n" /* 32 */
                                        "center = 5\n"               /* 33 */
                                        "scale = 5\n"                /* 34 */
                                        "weight = 1\n"               /* 35 */
                                        "[train]\n"                  /* 36 */
                                        "l2 = -1\n"                  /* 37 */
                                        "class_weight = heavy\n"     /* 38 */
                                        "thresholds = manual\n"      /* 39 */
                                        "lable = x\n" /* 40 */;

/* Derived inputs in a model file: every mistake named at its line (an unknown input, a cycle, a
 * sensor window on a derived input, a derived age, a bad [train] section); then an asset that
 * maps a sensor to a derived input, or forgets a base input. */
static void test_derived_model(void)
{
    write_file("d/models/bad.model", DERIVED_BAD_MODEL);
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/d/models/bad.model", g_dir);
    static struct pdm_model m;
    char *out = NULL;
    size_t len = 0;
    FILE *ms = open_memstream(&out, &len);
    struct pdm_diag d = {.out = ms};
    int n = pdm_model_load(path, &m, &d);
    fclose(ms);
    check_output(out,
                 "@/d/models/bad.model:23: input.a.stat: a derived input has no sensor window of "
                 "its own: it is computed from the inputs it names, which have theirs\n"
                 "@/d/models/bad.model:27: input.b.weight: required key is missing\n"
                 "@/d/models/bad.model:32: input.age.derive: 'age' is the asset's age in years; "
                 "it cannot be derived\n"
                 "@/d/models/bad.model:37: train.l2: expected a number from 0 to 1e+12, got '-1'\n"
                 "@/d/models/bad.model:38: train.class_weight: expected none, balanced or the "
                 "weight of a positive row (a number > 0), got 'heavy'\n"
                 "@/d/models/bad.model:39: train.thresholds: expected auto or fixed, got "
                 "'manual'\n"
                 "@/d/models/bad.model:40: train.lable: unknown key 'lable' (did you mean "
                 "'label'?)\n"
                 "@/d/models/bad.model:17: input.power.derive: no input 'rpm' in this model "
                 "(inputs: torque power a b age)\n"
                 "@/d/models/bad.model:22: input.a.derive: derived inputs form a cycle: a -> b -> "
                 "a\n");
    CHECK_INT(n, 9);
    free(out);

    write_file("d/models/good.model", "[model]\nid = press\nversion = 3\nintercept = -2\n"
                                      "warning = 0.5\ncritical = 0.8\nclear = 0.4\nhold = 1\n"
                                      "eval_period_ms = 1000\n"
                                      "[input power_sq]\nderive = square(power)\ncenter = 1e6\n"
                                      "scale = 1e5\nweight = 0.5\n"
                                      "[input power]\nderive = torque * speed\ncenter = 1000\n"
                                      "scale = 100\nweight = 1\n"
                                      "[input torque]\nstat = mean\nwindow_s = 5\ncenter = 40\n"
                                      "scale = 10\nweight = 1\ncolumn = Torque [Nm]\n"
                                      "[input speed]\nstat = max\nwindow_s = 5\ncenter = 1500\n"
                                      "scale = 200\nweight = -1\n");
    snprintf(path, sizeof(path), "%s/d/models/good.model", g_dir);
    CHECK_INT(pdm_model_load(path, &m, NULL), 0);
    CHECK_INT(m.n_derived, 2);
    CHECK_INT(m.derive_order[0], 1); /* power before power_sq */
    CHECK_INT(m.derive_order[1], 0);

    static const char conf[] = "[agent]\n"                       /* 1 */
                               "device_id = gw-0003\n"           /* 2 */
                               "data_dir = /var/lib/pdm-agent\n" /* 3 */
                               "[mqtt]\n"                        /* 4 */
                               "uri = mqtt://127.0.0.1:1883\n"   /* 5 */
                               "allow_plaintext = yes\n"         /* 6 */
                               "[bus b]\n"                       /* 7 */
                               "driver = modbus-tcp\n"           /* 8 */
                               "host = localhost\n"              /* 9 */
                               "[sensor t]\n"                    /* 10 */
                               "bus = b\n"                       /* 11 */
                               "address = 0\n"                   /* 12 */
                               "type = float32\n"                /* 13 */
                               "[asset ok]\n"                    /* 14 */
                               "model = models/good.model\n"     /* 15 */
                               "speed = t\n"                     /* 16 */
                               "torque = t\n"                    /* 17 */
                               "[asset wrong]\n"                 /* 18 */
                               "model = models/good.model\n"     /* 19 */
                               "power = t\n"                     /* 20 */
                               "torque = t\n";                   /* 21 */
    write_file("d/agent.conf", conf);
    snprintf(path, sizeof(path), "%s/d/agent.conf", g_dir);
    static struct pdm_config cfg;
    out = NULL;
    n = load(path, &cfg, &out);
    check_output(out, "@/d/agent.conf:20: asset.wrong.power: model input 'power' is derived "
                      "(torque * speed): it is computed from the other inputs, not read from a "
                      "sensor; remove this line\n"
                      "@/d/agent.conf:18: asset.wrong.speed: model input 'speed' has no sensor: "
                      "add 'speed = SENSOR_NAME'\n");
    CHECK_INT(n, 2);
    if (cfg.n_assets == 2) {
        const struct pdm_asset_cfg *a = &cfg.assets[0];
        CHECK_INT(a->n_inputs, 4);
        CHECK_INT(a->inputs[0].sensor, -1); /* power_sq: derived, no sensor */
        CHECK_INT(a->inputs[1].sensor, -1);
        CHECK_INT(a->inputs[2].sensor, 0);
        CHECK_INT(a->inputs[3].sensor, 0);
        CHECK_INT(a->inputs[3].line, 16);
    }
    free(out);
    pdm_config_free(&cfg);
}

static void test_relative_paths_and_rtu(void)
{
    copy_example("examples/models/compressor.model", "rel/sub/models/compressor.model");
    write_file("rel/sub/tls/ca.pem", "dummy\n");
    write_file("rel/sub/agent.conf", "[agent]\n"
                                     "device_id = gw_3\n"
                                     "data_dir = ../store\n"
                                     "log_level = debug\n"
                                     "[mqtt]\n"
                                     "uri = mqtts://[::1]:8883\n"
                                     "ca_file = ./tls/ca.pem\n"
                                     "cert_file = /etc/hostname\n"
                                     "key_file = ././tls/ca.pem\n"
                                     "topic_prefix = site/a\n"
                                     "[bus rs485]\n"
                                     "driver = modbus-rtu\n"
                                     "device = /dev/ttyS1\n"
                                     "parity = e\n"
                                     "baud = 19200\n"
                                     "[sensor flow]\n"
                                     "bus = rs485\n"
                                     "address = 100\n"
                                     "type = s16\n"
                                     "table = input\n"
                                     "word_order = little\n"
                                     "scale = -0.5\n"
                                     "offset = 1e3\n"
                                     "[asset pump]\n"
                                     "installed = 2000-02-29\n"
                                     "temperature = flow\n"
                                     "vibration = flow\n"
                                     "power = flow\n"
                                     "model = models/compressor.model\n");
    char cwd[PATH_MAX];
    CHECK(getcwd(cwd, sizeof(cwd)) != NULL);
    CHECK_INT(chdir(g_dir), 0);
    static struct pdm_config cfg;
    char *out = NULL;
    int n = load("rel/sub/agent.conf", &cfg, &out);
    CHECK_INT(chdir(cwd), 0);
    CHECK_INT(n, 0);
    CHECK_STR(out, "");
    free(out);

    char dir[512], want[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s/rel/sub", g_dir);
    CHECK_STR(cfg.path, "rel/sub/agent.conf");
    CHECK_STR(cfg.dir, dir);
    CHECK_STR(cfg.data_dir, join(want, sizeof(want), dir, "/../store"));
    CHECK_STR(cfg.ca_file, join(want, sizeof(want), dir, "/tls/ca.pem"));
    CHECK_STR(cfg.key_file, join(want, sizeof(want), dir, "/tls/ca.pem"));
    CHECK_STR(cfg.cert_file, "/etc/hostname");
    CHECK_STR(cfg.topic_prefix, "site/a");
    CHECK_INT(cfg.log_level, PDM_LOG_DEBUG);
    CHECK_INT(cfg.n_buses, 1);
    if (cfg.n_buses == 1) {
        const struct pdm_bus_cfg *b = &cfg.buses[0];
        CHECK_INT(b->driver, PDM_DRIVER_MODBUS_RTU);
        CHECK_STR(b->device, "/dev/ttyS1");
        CHECK_INT(b->parity, 'E');
        CHECK_INT(b->baud, 19200);
        CHECK_INT(b->data_bits, 8);
        CHECK_INT(b->stop_bits, 1);
        CHECK_INT(b->timeout_ms, 500);
    }
    if (cfg.n_sensors == 1) {
        const struct pdm_sensor_cfg *s = &cfg.sensors[0];
        CHECK_INT(s->unit_id, 1);
        CHECK_INT(s->table, PDM_TABLE_INPUT);
        CHECK_INT(s->type, PDM_TYPE_S16);
        CHECK_INT(s->order, PDM_ORDER_CDAB);
        CHECK_NEAR(s->scale, -0.5, 0);
        CHECK_NEAR(s->offset, 1000, 0);
        CHECK_INT(s->period_ms, 1000);
        CHECK_STR(s->unit, "");
    }
    if (cfg.n_assets == 1) {
        CHECK_STR(cfg.assets[0].model_path,
                  join(want, sizeof(want), dir, "/models/compressor.model"));
        CHECK_INT(cfg.assets[0].installed_s, 951782400); /* 2000-02-29T00:00:00Z */
    }
    pdm_config_free(&cfg);

    /* a missing file is one error that says so */
    out = NULL;
    snprintf(want, sizeof(want), "%s/nope.conf", g_dir);
    CHECK_INT(load(want, &cfg, &out), 1);
    check_output(out, "@/nope.conf: config: cannot read the configuration: No such file or "
                      "directory\n");
    free(out);
    pdm_config_free(&cfg);
}

/* The request-plan keys of a bus and the bit tables (coil, discrete) of a sensor. */
#define PLAN_HEAD                                                                                  \
    "[agent]\n"                                                                                    \
    "device_id = gw\n"                                                                             \
    "data_dir = data\n"                                                                            \
    "[mqtt]\n"                                                                                     \
    "uri = mqtt://127.0.0.1:1883\n"                                                                \
    "allow_plaintext = true\n"
#define PLAN_ASSET                                                                                 \
    "[asset a]\n"                                                                                  \
    "model = models/compressor.model\n"                                                            \
    "temperature = t\n"                                                                            \
    "vibration = t\n"                                                                              \
    "power = t\n"                                                                                  \
    "installed = 2019-06-01\n"

/* Two [bus] sections on one serial device would be two threads talking over each other on the
 * same RS-485 pair: refused, on the second one's device line. */
static void test_one_owner_per_serial_line(void)
{
    copy_example("examples/models/compressor.model", "serial/models/compressor.model");
    write_file("serial/agent.conf", PLAN_HEAD /* 1-6 */
               "[bus meters]\n"               /* 7 */
               "driver = modbus-rtu\n"        /* 8 */
               "device = /dev/ttyUSB0\n"      /* 9 */
               "[bus vibration]\n"            /* 10 */
               "driver = modbus-rtu\n"        /* 11 */
               "baud = 19200\n"               /* 12 */
               "device = /dev/ttyUSB0\n"      /* 13 */
               "[bus other]\n"                /* 14 */
               "driver = modbus-rtu\n"        /* 15 */
               "device = /dev/ttyUSB1\n"      /* 16 */
               "[sensor t]\n"                 /* 17 */
               "bus = meters\n"               /* 18 */
               "address = 0\n"                /* 19 */
               "type = float32\n"             /* 20 */
               PLAN_ASSET);
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/serial/agent.conf", g_dir);
    static struct pdm_config cfg;
    char *out = NULL;
    CHECK_INT(load(path, &cfg, &out), 1);
    check_output(out, "@/serial/agent.conf:13: bus.vibration.device: /dev/ttyUSB0 is already the "
                      "line of [bus meters] (line 7): one bus section per serial line; put all "
                      "the devices on it there, each with its unit_id\n");
    free(out);
    pdm_config_free(&cfg);
}

static void test_plan_keys_and_bits(void)
{
    copy_example("examples/models/compressor.model", "plan/models/compressor.model");
    write_file("plan/agent.conf", PLAN_HEAD /* 1-6 */
               "[bus plant]\n"              /* 7 */
               "driver = modbus-tcp\n"      /* 8 */
               "host = 127.0.0.1\n"         /* 9 */
               "max_span = 32\n"            /* 10 */
               "max_span_bits = 100\n"      /* 11 */
               "max_gap = 0\n"              /* 12 */
               "frame_gap_ms = 5\n"         /* 13 */
               "[bus line]\n"               /* 14 */
               "driver = modbus-rtu\n"      /* 15 */
               "device = /dev/ttyS1\n"      /* 16 */
               "[sensor t]\n"               /* 17 */
               "bus = plant\n"              /* 18 */
               "address = 0\n"              /* 19 */
               "type = float32\n"           /* 20 */
               "[sensor running]\n"         /* 21 */
               "bus = plant\n"              /* 22 */
               "table = coil\n"             /* 23 */
               "address = 0\n"              /* 24 */
               "[sensor door]\n"            /* 25 */
               "bus = line\n"               /* 26 */
               "table = discrete\n"         /* 27 */
               "type = bool\n"              /* 28 */
               "address = 65535\n"          /* 29 */
               PLAN_ASSET);
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/plan/agent.conf", g_dir);
    static struct pdm_config cfg;
    char *out = NULL;
    CHECK_INT(load(path, &cfg, &out), 0);
    CHECK_STR(out, "");
    free(out);
    if (cfg.n_buses == 2 && cfg.n_sensors == 3) {
        CHECK_INT(cfg.buses[0].max_span, 32);
        CHECK_INT(cfg.buses[0].max_span_bits, 100);
        CHECK_INT(cfg.buses[0].max_gap, 0);
        CHECK_INT(cfg.buses[0].frame_gap_ms, 5);
        /* defaults; -1: the frame gap is derived from the line (3.5 characters on RTU) */
        CHECK_INT(cfg.buses[1].max_span, 64);
        CHECK_INT(cfg.buses[1].max_span_bits, 2000);
        CHECK_INT(cfg.buses[1].max_gap, 8);
        CHECK_INT(cfg.buses[1].frame_gap_ms, -1);
        CHECK_INT(cfg.sensors[1].table, PDM_TABLE_COIL);
        CHECK_INT(cfg.sensors[1].type, PDM_TYPE_BOOL); /* implied */
        CHECK_INT(cfg.sensors[2].table, PDM_TABLE_DISCRETE);
        CHECK_INT(cfg.sensors[2].type, PDM_TYPE_BOOL);
        CHECK_INT(cfg.sensors[2].address, 65535); /* one bit fits at the last address */
    } else {
        CHECK_MSG(0, "%u buses, %u sensors", cfg.n_buses, cfg.n_sensors);
    }
    pdm_config_free(&cfg);

    write_file("plan/bad.conf", PLAN_HEAD  /* 1-6 */
               "[bus plant]\n"             /* 7 */
               "driver = modbus-tcp\n"     /* 8 */
               "host = 127.0.0.1\n"        /* 9 */
               "max_span = 126\n"          /* 10 */
               "max_span_bits = 0\n"       /* 11 */
               "max_gap = -1\n"            /* 12 */
               "frame_gap_ms = 2000\n"     /* 13 */
               "[sensor t]\n"              /* 14 */
               "bus = plant\n"             /* 15 */
               "address = 0\n"             /* 16 */
               "type = float32\n"          /* 17 */
               "[sensor c1]\n"             /* 18 */
               "bus = plant\n"             /* 19 */
               "table = coil\n"            /* 20 */
               "type = float32\n"          /* 21 */
               "address = 1\n"             /* 22 */
               "[sensor c2]\n"             /* 23 */
               "bus = plant\n"             /* 24 */
               "table = discrete\n"        /* 25 */
               "address = 1\n"             /* 26 */
               "word_order = big\n"        /* 27 */
               "[sensor r1]\n"             /* 28 */
               "bus = plant\n"             /* 29 */
               "address = 1\n"             /* 30 */
               "type = bool\n"             /* 31 */
               "[sensor r2]\n"             /* 32 */
               "bus = plant\n"             /* 33 */
               "address = 3\n"             /* 34 */
               "[sensor r3]\n"             /* 35 */
               "bus = plant\n"             /* 36 */
               "table = coils_and_stuff\n" /* 37 */
               "address = 3\n"             /* 38 */
               "type = u16\n"              /* 39 */
               PLAN_ASSET);
    snprintf(path, sizeof(path), "%s/plan/bad.conf", g_dir);
    out = NULL;
    int n = load(path, &cfg, &out);
    check_output(
        out,
        "@/plan/bad.conf:10: bus.plant.max_span: expected an integer from 1 to 125, got '126'\n"
        "@/plan/bad.conf:11: bus.plant.max_span_bits: expected an integer from 1 to 2000, got "
        "'0'\n"
        "@/plan/bad.conf:12: bus.plant.max_gap: expected an integer from 0 to 124, got '-1'\n"
        "@/plan/bad.conf:13: bus.plant.frame_gap_ms: expected an integer from 0 to 1000, got "
        "'2000'\n"
        "@/plan/bad.conf:21: sensor.c1.type: table = coil holds on/off bits: leave type out or "
        "write bool\n"
        "@/plan/bad.conf:27: sensor.c2.word_order: table = discrete holds single bits: "
        "word_order does not apply\n"
        "@/plan/bad.conf:31: sensor.r1.type: bool is for table = coil or discrete; a register "
        "holding 0/1 is u16\n"
        "@/plan/bad.conf:32: sensor.r2.type: required key is missing\n"
        "@/plan/bad.conf:37: sensor.r3.table: expected holding, input, coil or discrete, got "
        "'coils_and_stuff'\n");
    CHECK_INT(n, 9);
    free(out);
    pdm_config_free(&cfg);
}

/* On-board sensors: sysfs temperatures and iio vibration features, their keys, defaults and the
 * keys that belong to other drivers. */
static void test_onboard_keys(void)
{
    copy_example("examples/models/compressor.model", "onboard/models/compressor.model");
    /* the shipped board example loads clean */
    copy_example("examples/board.conf", "onboard/board.conf");
    write_tls("onboard");
    char path[PATH_MAX], want[PATH_MAX];
    snprintf(path, sizeof(path), "%s/onboard/board.conf", g_dir);
    static struct pdm_config cfg;
    char *out = NULL;
    CHECK_INT(load(path, &cfg, &out), 0);
    CHECK_STR(out, "");
    free(out);
    pdm_config_free(&cfg);

    write_file("onboard/agent.conf", PLAN_HEAD                /* 1-6 */
               "[bus board]\n"                                /* 7 */
               "driver = sysfs\n"                             /* 8 */
               "root = fake\n"                                /* 9 */
               "[bus accel]\n"                                /* 10 */
               "driver = iio\n"                               /* 11 */
               "name = adxl345\n"                             /* 12 */
               "rate_hz = 3200\n"                             /* 13 */
               "[bus accel2]\n"                               /* 14 */
               "driver = iio\n"                               /* 15 */
               "device = iio:device3\n"                       /* 16 */
               "rate_hz = 100\n"                              /* 17 */
               "window = 50\n"                                /* 18 */
               "mode = polled\n"                              /* 19 */
               "[sensor t]\n"                                 /* 20 */
               "bus = board\n"                                /* 21 */
               "hwmon = coretemp\n"                           /* 22 */
               "label = Core 0\n"                             /* 23 */
               "[sensor zone]\n"                              /* 24 */
               "bus = board\n"                                /* 25 */
               "thermal_zone = cpu-thermal\n"                 /* 26 */
               "period_ms = 5000\n"                           /* 27 */
               "[sensor file]\n"                              /* 28 */
               "bus = board\n"                                /* 29 */
               "path = /sys/class/hwmon/hwmon0/temp1_input\n" /* 30 */
               "unit = K\n"                                   /* 31 */
               "offset = 273.15\n"                            /* 32 */
               "[sensor idx]\n"                               /* 33 */
               "bus = board\n"                                /* 34 */
               "hwmon = nct6775\n"                            /* 35 */
               "index = 2\n"                                  /* 36 */
               "[sensor vx]\n"                                /* 37 */
               "bus = accel\n"                                /* 38 */
               "axis = x\n"                                   /* 39 */
               "feature = rms\n"                              /* 40 */
               "[sensor vz]\n"                                /* 41 */
               "bus = accel2\n"                               /* 42 */
               "axis = z\n"                                   /* 43 */
               "feature = kurtosis\n"                         /* 44 */
               PLAN_ASSET);
    snprintf(path, sizeof(path), "%s/onboard/agent.conf", g_dir);
    out = NULL;
    CHECK_INT(load(path, &cfg, &out), 0);
    CHECK_STR(out, "");
    free(out);
    if (cfg.n_buses == 3 && cfg.n_sensors == 6) {
        const struct pdm_bus_cfg *board = &cfg.buses[0], *accel = &cfg.buses[1],
                                 *accel2 = &cfg.buses[2];
        CHECK_INT(board->driver, PDM_DRIVER_SYSFS);
        CHECK_STR(board->root, join(want, sizeof(want), g_dir, "/onboard/fake"));
        CHECK_INT(accel->driver, PDM_DRIVER_IIO);
        CHECK_STR(accel->iio_name, "adxl345");
        CHECK_INT(accel->iio_index, -1);
        CHECK_INT(accel->rate_hz, 3200);
        CHECK_INT(accel->window, 4096); /* default */
        CHECK_INT(accel->mode, PDM_IIO_BUFFERED);
        CHECK_STR(accel->root, ""); /* the real /sys and /dev */
        CHECK_INT(accel2->iio_index, 3);
        CHECK_STR(accel2->device, ""); /* not a serial port */
        CHECK_INT(accel2->window, 50);
        CHECK_INT(accel2->mode, PDM_IIO_POLLED);

        const struct pdm_sensor_cfg *s = cfg.sensors;
        CHECK_INT(s[0].source, PDM_SYSFS_HWMON);
        CHECK_STR(s[0].hwmon, "coretemp");
        CHECK_STR(s[0].label, "Core 0");
        CHECK_STR(s[0].unit, "degC"); /* the sysfs unit unless told otherwise */
        CHECK_INT(s[0].period_ms, 1000);
        CHECK_INT(s[0].unit_id, 0); /* pdmctl status shows no Modbus unit */
        CHECK_INT(s[1].source, PDM_SYSFS_THERMAL);
        CHECK_STR(s[1].hwmon, "cpu-thermal");
        CHECK_INT(s[1].period_ms, 5000);
        CHECK_INT(s[2].source, PDM_SYSFS_FILE);
        CHECK_STR(s[2].path, "/sys/class/hwmon/hwmon0/temp1_input"); /* root goes in front */
        CHECK_STR(s[2].unit, "K");
        CHECK_NEAR(s[2].offset, 273.15, 0);
        CHECK_INT(s[3].index, 2);
        CHECK_INT(s[4].axis, 0);
        CHECK_INT(s[4].feature, PDM_FEAT_RMS);
        CHECK_STR(s[4].unit, "m/s2");
        CHECK_INT(s[4].period_ms, 1280); /* one window: 4096 samples at 3200 Hz */
        CHECK_INT(s[5].axis, 2);
        CHECK_INT(s[5].feature, PDM_FEAT_KURTOSIS);
        CHECK_STR(s[5].unit, ""); /* kurtosis has no unit */
        CHECK_INT(s[5].period_ms, 500);
    } else {
        CHECK_MSG(0, "%u buses, %u sensors", cfg.n_buses, cfg.n_sensors);
    }
    pdm_config_free(&cfg);

    /* Modbus keys on on-board buses and sensors and the other way round, and every on-board
     * mistake, all reported at once. */
    write_file("onboard/bad.conf", PLAN_HEAD /* 1-6 */
               "[bus board]\n"               /* 7 */
               "driver = sysfs\n"            /* 8 */
               "host = 127.0.0.1\n"          /* 9 */
               "rate_hz = 100\n"             /* 10 */
               "[bus accel]\n"               /* 11 */
               "driver = iio\n"              /* 12 */
               "device = iio:device1\n"      /* 13 */
               "name = adxl345\n"            /* 14 */
               "mode = streaming\n"          /* 15 */
               "max_gap = 2\n"               /* 16 */
               "[bus accel2]\n"              /* 17 */
               "driver = iio\n"              /* 18 */
               "device = /dev/iio:device0\n" /* 19 */
               "rate_hz = 1\n"               /* 20 */
               "window = 1048576\n"          /* 21 */
               "[bus plant]\n"               /* 22 */
               "driver = modbus-tcp\n"       /* 23 */
               "host = 127.0.0.1\n"          /* 24 */
               "root = /\n"                  /* 25 */
               "[sensor t]\n"                /* 26 */
               "bus = board\n"               /* 27 */
               "unit_id = 3\n"               /* 28 */
               "address = 0\n"               /* 29 */
               "hwmon = coretemp\n"          /* 30 */
               "thermal_zone = cpu\n"        /* 31 */
               "[sensor f]\n"                /* 32 */
               "bus = board\n"               /* 33 */
               "path = sys/x\n"              /* 34 */
               "label = CPU\n"               /* 35 */
               "[sensor none]\n"             /* 36 */
               "bus = board\n"               /* 37 */
               "[sensor v]\n"                /* 38 */
               "bus = accel\n"               /* 39 */
               "axis = w\n"                  /* 40 */
               "period_ms = 100\n"           /* 41 */
               "[sensor m]\n"                /* 42 */
               "bus = plant\n"               /* 43 */
               "address = 1\n"               /* 44 */
               "type = u16\n"                /* 45 */
               "hwmon = coretemp\n"          /* 46 */
               "axis = x\n"                  /* 47 */
               PLAN_ASSET);
    snprintf(path, sizeof(path), "%s/onboard/bad.conf", g_dir);
    out = NULL;
    int n = load(path, &cfg, &out);
    check_output(
        out,
        "@/onboard/bad.conf:9: bus.board.host: 'host' is for modbus-tcp buses\n"
        "@/onboard/bad.conf:10: bus.board.rate_hz: 'rate_hz' is for iio buses\n"
        "@/onboard/bad.conf:15: bus.accel.mode: expected buffered or polled, got 'streaming'\n"
        "@/onboard/bad.conf:16: bus.accel.max_gap: 'max_gap' is for modbus-tcp or modbus-rtu "
        "buses\n"
        "@/onboard/bad.conf:11: bus.accel.rate_hz: required key is missing (needed by iio)\n"
        "@/onboard/bad.conf:14: bus.accel.name: give the device either by number (device = "
        "iio:deviceN) or by name, not both\n"
        "@/onboard/bad.conf:19: bus.accel2.device: expected iio:deviceN (as in "
        "/sys/bus/iio/devices), got '/dev/iio:device0'\n"
        "@/onboard/bad.conf:21: bus.accel2.window: 1048576 samples at 1 Hz make a window longer "
        "than a day\n"
        "@/onboard/bad.conf:25: bus.plant.root: 'root' is for sysfs or iio buses\n"
        "@/onboard/bad.conf:28: sensor.t.unit_id: 'unit_id' is for modbus-tcp or modbus-rtu "
        "buses\n"
        "@/onboard/bad.conf:29: sensor.t.address: 'address' is for modbus-tcp or modbus-rtu "
        "buses\n"
        "@/onboard/bad.conf:31: sensor.t.thermal_zone: give one of hwmon, thermal_zone and "
        "path\n"
        "@/onboard/bad.conf:35: sensor.f.label: 'label' selects a tempM of an hwmon device: add "
        "hwmon = NAME\n"
        "@/onboard/bad.conf:34: sensor.f.path: expected an absolute path such as "
        "/sys/class/hwmon/hwmon0/temp1_input (the bus's root is put in front), got 'sys/x'\n"
        "@/onboard/bad.conf:36: sensor.none.hwmon: required key is missing: a sysfs sensor needs "
        "hwmon = NAME (with label or index), thermal_zone = TYPE or path = FILE\n"
        "@/onboard/bad.conf:40: sensor.v.axis: expected x, y or z, got 'w'\n"
        "@/onboard/bad.conf:41: sensor.v.period_ms: 'period_ms' is for modbus-tcp, modbus-rtu or "
        "sysfs buses\n"
        "@/onboard/bad.conf:38: sensor.v.feature: required key is missing (needed by iio)\n"
        "@/onboard/bad.conf:46: sensor.m.hwmon: 'hwmon' is for sysfs buses\n"
        "@/onboard/bad.conf:47: sensor.m.axis: 'axis' is for iio buses\n");
    CHECK_INT(n, 20);
    free(out);
    pdm_config_free(&cfg);
}

/* ---- device profiles ------------------------------------------------------------------- */

#define TEST_PROFILE                                                                               \
    "; a small meter for the tests\n" /* 1 */                                                      \
    "[profile]\n"                     /* 2 */                                                      \
    "name = test-meter\n"             /* 3 */                                                      \
    "description = test meter\n"      /* 4 */                                                      \
    "table = input\n"                 /* 5 */                                                      \
    "type = float32\n"                /* 6 */                                                      \
    "word_order = CDAB\n"             /* 7 */                                                      \
    "[register voltage]\n"            /* 8 */                                                      \
    "address = 0\n"                   /* 9 */                                                      \
    "unit = V\n"                      /* 10 */                                                     \
    "[register power]\n"              /* 11 */                                                     \
    "address = 12\n"                  /* 12 */                                                     \
    "scale = 1000\n"                  /* 13 */                                                     \
    "offset = -5\n"                   /* 14 */                                                     \
    "unit = W\n"                      /* 15 */                                                     \
    "[register count]\n"              /* 16 */                                                     \
    "table = holding\n"               /* 17 */                                                     \
    "address = 100\n"                 /* 18 */                                                     \
    "type = u16\n"                    /* 19 */                                                     \
    "[register running]\n"            /* 20 */                                                     \
    "table = coil\n"                  /* 21 */                                                     \
    "address = 3\n"                   /* 22 */

static const struct pdm_sensor_cfg *sensor(const struct pdm_config *cfg, const char *name)
{
    int i = pdm_config_sensor_index(cfg, name);
    CHECK_MSG(i >= 0, "no sensor %s", name);
    return i >= 0 ? &cfg->sensors[i] : NULL;
}

/* [device NAME] expands to NAME.REGISTER sensors with the profile's values and the device's
 * bus, unit id and period; `only` takes a subset; assets map them like any sensor. */
static void test_device_profiles(void)
{
    copy_example("examples/models/compressor.model", "dev/models/compressor.model");
    write_file("dev/profiles/test-meter.profile", TEST_PROFILE);
    write_file("dev/agent.conf", PLAN_HEAD "[bus line]\n"
                                           "driver = modbus-rtu\n"
                                           "device = /dev/ttyUSB0\n"
                                           "[device meter]\n"
                                           "bus = line\n"
                                           "unit_id = 7\n"
                                           "profile = test-meter\n"
                                           "period_ms = 250\n"
                                           "[device sub]\n"
                                           "bus = line\n"
                                           "profile = test-meter\n"
                                           "only = power ,running\n"
                                           "[sensor t]\n"
                                           "bus = line\n"
                                           "address = 0\n"
                                           "type = float32\n"
                                           "[asset a]\n"
                                           "model = models/compressor.model\n"
                                           "temperature = t\n"
                                           "vibration = meter.voltage\n"
                                           "power = sub.power\n"
                                           "installed = 2019-06-01\n");
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/dev/agent.conf", g_dir);
    static struct pdm_config cfg;
    char *out = NULL;
    CHECK_INT(load(path, &cfg, &out), 0);
    CHECK_STR(out, "");
    free(out);
    CHECK_INT(cfg.n_sensors, 1 + 4 + 2);
    CHECK(pdm_config_sensor_index(&cfg, "sub.voltage") < 0);
    CHECK(pdm_config_sensor_index(&cfg, "sub.count") < 0);
    const struct pdm_sensor_cfg *v = sensor(&cfg, "meter.voltage");
    if (v) {
        CHECK_INT(v->table, PDM_TABLE_INPUT); /* profile defaults */
        CHECK_INT(v->type, PDM_TYPE_FLOAT32);
        CHECK_INT(v->order, PDM_ORDER_CDAB);
        CHECK_INT(v->address, 0);
        CHECK_STR(v->unit, "V");
        CHECK_INT(v->unit_id, 7);
        CHECK_INT(v->period_ms, 250);
        CHECK_INT((int)v->bus, 0);
        CHECK(isinf(v->valid_min) && isinf(v->valid_max));
    }
    const struct pdm_sensor_cfg *p = sensor(&cfg, "sub.power");
    if (p) {
        CHECK_INT(p->address, 12);
        CHECK_NEAR(p->scale, 1000, 0);
        CHECK_NEAR(p->offset, -5, 0);
        CHECK_STR(p->unit, "W");
        CHECK_INT(p->unit_id, 1); /* defaults of a device */
        CHECK_INT(p->period_ms, 1000);
    }
    const struct pdm_sensor_cfg *n = sensor(&cfg, "meter.count");
    if (n) {
        CHECK_INT(n->table, PDM_TABLE_HOLDING); /* the register overrides the defaults */
        CHECK_INT(n->type, PDM_TYPE_U16);
        CHECK_INT(n->address, 100);
    }
    const struct pdm_sensor_cfg *r = sensor(&cfg, "sub.running");
    if (r) {
        CHECK_INT(r->table, PDM_TABLE_COIL);
        CHECK_INT(r->type, PDM_TYPE_BOOL); /* the default float32 does not apply to a coil */
    }
    CHECK_INT(cfg.assets[0].inputs[1].sensor, pdm_config_sensor_index(&cfg, "meter.voltage"));
    CHECK_INT(cfg.assets[0].inputs[2].sensor, pdm_config_sensor_index(&cfg, "sub.power"));
    pdm_config_free(&cfg);
}

/* Every shipped profile loads clean through a device, and the SDM120's values are the
 * manual's: float32 input registers, high word first. */
static void test_shipped_profiles(void)
{
    static const char *const shipped[] = {"eastron-sdm120", "eastron-sdm630",
                                          "machinesaver-trivibe", "controlbox-tb232"};
    copy_example("examples/models/compressor.model", "ship/models/compressor.model");
    char conf[8192];
    int n = snprintf(conf, sizeof(conf),
                     PLAN_HEAD "[bus line]\ndriver = modbus-tcp\nhost = 127.0.0.1\n"
                               "[sensor t]\nbus = line\naddress = 0\ntype = float32\n" PLAN_ASSET);
    for (size_t i = 0; i < sizeof(shipped) / sizeof(shipped[0]); i++) {
        char src[PATH_MAX], dst[PATH_MAX];
        snprintf(src, sizeof(src), "profiles/%s.profile", shipped[i]);
        snprintf(dst, sizeof(dst), "ship/profiles/%s.profile", shipped[i]);
        copy_example(src, dst);
        n += snprintf(conf + n, sizeof(conf) - (size_t)n,
                      "[device d%zu]\nbus = line\nunit_id = %zu\nprofile = %s\n", i, i + 1,
                      shipped[i]);
    }
    write_file("ship/agent.conf", conf);
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/ship/agent.conf", g_dir);
    static struct pdm_config cfg;
    char *out = NULL;
    CHECK_INT(load(path, &cfg, &out), 0);
    CHECK_STR(out, "");
    free(out);
    static const struct {
        const char *name;
        int address;
        const char *unit;
    } sdm120[] = {{"d0.voltage", 0, "V"},          {"d0.current", 6, "A"},
                  {"d0.active_power", 12, "W"},    {"d0.frequency", 70, "Hz"},
                  {"d0.import_energy", 72, "kWh"}, {"d0.total_energy", 342, "kWh"}};
    for (size_t i = 0; i < sizeof(sdm120) / sizeof(sdm120[0]); i++) {
        const struct pdm_sensor_cfg *s = sensor(&cfg, sdm120[i].name);
        if (!s)
            continue;
        CHECK_INT(s->table, PDM_TABLE_INPUT);
        CHECK_INT(s->type, PDM_TYPE_FLOAT32);
        CHECK_INT(s->order, PDM_ORDER_ABCD);
        CHECK_INT(s->address, sdm120[i].address);
        CHECK_STR(s->unit, sdm120[i].unit);
        CHECK_INT(s->unit_id, 1);
    }
    const struct pdm_sensor_cfg *p = sensor(&cfg, "d1.active_power");
    if (p)
        CHECK_INT(p->address, 52); /* SDM630 total system power, 0x0034 */
    const struct pdm_sensor_cfg *v = sensor(&cfg, "d2.velocity_rms_1");
    if (v) {
        CHECK_INT(v->table, PDM_TABLE_HOLDING);
        CHECK_INT(v->address, 178);
        CHECK_NEAR(v->scale, 25.4, 0);
        CHECK_STR(v->unit, "mm/s");
    }
    pdm_config_free(&cfg);
}

/* A broken profile reports its own FILE:LINE errors; a device names what is wrong with it. */
static void test_device_profile_errors(void)
{
    copy_example("examples/models/compressor.model", "deverr/models/compressor.model");
    write_file("deverr/profiles/test-meter.profile", TEST_PROFILE);
    write_file("deverr/profiles/broken.profile", "[profile]\n"             /* 1 */
                                                 "name = broken2\n"        /* 2 */
                                                 "tabel = input\n"         /* 3 */
                                                 "[register a.b]\n"        /* 4 */
                                                 "address = 1\n"           /* 5 */
                                                 "[register v]\n"          /* 6 */
                                                 "address = 65535\n"       /* 7 */
                                                 "type = float32\n"        /* 8 */
                                                 "word_order = sideways\n" /* 9 */
                                                 "[register c]\n"          /* 10 */
                                                 "table = discrete\n"      /* 11 */
                                                 "address = 2\n"           /* 12 */
                                                 "type = u16\n"            /* 13 */
                                                 "[register u]\n"          /* 14 */
                                                 "address = 4\n"           /* 15 */
                                                 "[regster x]\n");         /* 16 */
    write_file("deverr/agent.conf", PLAN_HEAD                              /* 1-6 */
               "[bus line]\n"                                              /* 7 */
               "driver = modbus-tcp\n"                                     /* 8 */
               "host = 127.0.0.1\n"                                        /* 9 */
               "[bus board]\n"                                             /* 10 */
               "driver = sysfs\n"                                          /* 11 */
               "[device bad]\n"                                            /* 12 */
               "bus = line\n"                                              /* 13 */
               "profile = broken\n"                                        /* 14 */
               "[device gone]\n"                                           /* 15 */
               "bus = line\n"                                              /* 16 */
               "profile = test-metre\n"                                    /* 17 */
               "[device m]\n"                                              /* 18 */
               "bus = board\n"                                             /* 19 */
               "profile = test-meter\n"                                    /* 20 */
               "only = voltage, powr, count, voltage\n"                    /* 21 */
               "[sensor m.count]\n"                                        /* 22 */
               "bus = line\n"                                              /* 23 */
               "address = 0\n"                                             /* 24 */
               "type = u16\n"                                              /* 25 */
               "[device n]\n"                                              /* 26 */
               "profile = test-meter\n"                                    /* 27 */
               "sensor = x\n"                                              /* 28 */
               "[sensor t]\n"                                              /* 29 */
               "bus = line\n"                                              /* 30 */
               "address = 0\n"                                             /* 31 */
               "type = float32\n"                                          /* 32 */
               "[asset a]\n"                                               /* 33 */
               "model = models/compressor.model\n"
               "temperature = t\n"
               "vibration = m.voltage\n"
               "power = bad.v\n"
               "installed = 2019-06-01\n");
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/deverr/agent.conf", g_dir);
    static struct pdm_config cfg;
    char *out = NULL;
    int errors = load(path, &cfg, &out);
    /* the unknown profile lists what is there; the installed folder may hold more */
    char want[2048];
    snprintf(want, sizeof(want),
             "%s/deverr/agent.conf:17: device.gone.profile: no profile 'test-metre': looked for "
             "test-metre.profile in %s/deverr/profiles and %s; profiles there: broken, "
             "test-meter",
             g_dir, g_dir, pdm_config_profile_dir());
    char *hit = strstr(out, want);
    CHECK_MSG(hit != NULL, "missing: %s\nin:\n%s", want, out);
    if (hit) { /* cut that line out; the rest is exact */
        char *eol = strchr(hit, '\n');
        memmove(hit, eol + 1, strlen(eol + 1) + 1);
    }
    check_output(out,
                 "@/deverr/profiles/broken.profile:3: profile.tabel: unknown key 'tabel' (did "
                 "you mean 'table'?)\n"
                 "@/deverr/profiles/broken.profile:1: profile.description: required key is "
                 "missing\n"
                 "@/deverr/profiles/broken.profile:16: regster.x: unknown section kind 'regster' "
                 "(did you mean 'register'?)\n"
                 "@/deverr/profiles/broken.profile:2: profile.name: the file is broken.profile "
                 "but names profile 'broken2': they must match\n"
                 "@/deverr/profiles/broken.profile:4: register.a.b: register name must be 1 to "
                 "64 characters from A-Z a-z 0-9 _ - (no '.': sensors are named "
                 "DEVICE.REGISTER)\n"
                 "@/deverr/profiles/broken.profile:9: register.v.word_order: expected big "
                 "(ABCD), little (CDAB), BADC or DCBA, got 'sideways'\n"
                 "@/deverr/profiles/broken.profile:7: register.v.address: a float32 at address "
                 "65535 needs 2 registers and runs past the last address 65535\n"
                 "@/deverr/profiles/broken.profile:13: register.c.type: table = discrete holds "
                 "on/off bits: leave type out or write bool\n"
                 "@/deverr/profiles/broken.profile:14: register.u.type: required key is missing\n"
                 "@/deverr/agent.conf:19: device.m.bus: [bus board] is a sysfs bus: a profile "
                 "describes Modbus registers; put the device on a modbus-tcp or modbus-rtu bus\n"
                 "@/deverr/agent.conf:21: device.m.only: profile 'test-meter' has no register "
                 "'powr' (did you mean 'power'?)\n"
                 "@/deverr/agent.conf:21: device.m.only: register 'voltage' is listed twice\n"
                 "@/deverr/agent.conf:18: device.m: register 'count' of profile 'test-meter' "
                 "makes sensor 'm.count', which is also [sensor m.count] (line 22): rename one "
                 "of them\n"
                 "@/deverr/agent.conf:28: device.n.sensor: unknown key 'sensor'\n"
                 "@/deverr/agent.conf:26: device.n.bus: required key is missing\n"
                 "@/deverr/agent.conf:37: asset.a.power: no [sensor bad.v] section\n");
    CHECK_INT(errors, 17);
    free(out);
    pdm_config_free(&cfg);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* [agent] model_pubkey, the reserved device_id "fleet", and asset lines for inputs the model
 * does not use (kept for model updates). */
#define KEY_CONF                                                                                   \
    "[agent]\n"                                                                                    \
    "device_id = %s\n"                                                                             \
    "data_dir = data\n"                                                                            \
    "model_pubkey = %s\n"                                                                          \
    "\n"                                                                                           \
    "[mqtt]\n"                                                                                     \
    "uri = mqtts://127.0.0.1:8883\n"                                                               \
    "ca_file = tls/ca.pem\n"                                                                       \
    "cert_file = tls/device.pem\n"                                                                 \
    "key_file = tls/device.key\n"                                                                  \
    "\n"                                                                                           \
    "[bus b]\n"                                                                                    \
    "driver = modbus-tcp\n"                                                                        \
    "host = 127.0.0.1\n"                                                                           \
    "\n"                                                                                           \
    "[sensor t]\n"                                                                                 \
    "bus = b\n"                                                                                    \
    "address = 0\n"                                                                                \
    "type = u16\n"                                                                                 \
    "\n"                                                                                           \
    "[sensor p]\n"                                                                                 \
    "bus = b\n"                                                                                    \
    "address = 2\n"                                                                                \
    "type = u16\n"                                                                                 \
    "\n"                                                                                           \
    "[asset c]\n"                                                                                  \
    "model = models/compressor.model\n"                                                            \
    "temperature = t\n"                                                                            \
    "oil_pressure = p\n"                                                                           \
    "vibration = t\n"                                                                              \
    "power = p\n"                                                                                  \
    "installed = 2019-06-01\n"

static void test_model_update_keys(void)
{
    copy_example("examples/models/compressor.model", "k/models/compressor.model");
    write_tls("k");
    write_file("k/keys/ok.pub", "-----BEGIN PUBLIC KEY-----\n"
                                "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAENESLhNwm60v1mV19N1Fn3o9RmYbs\n"
                                "cIya8tKL08uJX+TbwxCdnCMZONeeAmt1e4ImXkWUa2UThwfGmNNgskAFxg==\n"
                                "-----END PUBLIC KEY-----\n");
    write_file("k/keys/rsa.pub",
               "-----BEGIN PUBLIC KEY-----\n"
               "MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQCvCaftJolwIx8dRINHwma+unsk\n"
               "S175DRJ8SES266dYa6uoZh+Cf5uvcOus8LurcyRQozS99kQp2ChvhS5Xr0L8qkOL\n"
               "+JEKdXOdA8hycfsfgcu+HSFrbQt7lsW7QC+mM4lVCTX38r9c5HchCkruEYQ/9cwA\n"
               "zz8ZfmWoSsuP67tKPQIDAQAB\n"
               "-----END PUBLIC KEY-----\n");
    char text[2048], path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/k/agent.conf", g_dir);
    static struct pdm_config cfg;
    char *out = NULL;

    snprintf(text, sizeof(text), KEY_CONF, "gw-1", "keys/ok.pub");
    write_file("k/agent.conf", text);
    CHECK_INT(load(path, &cfg, &out), 0);
    check_output(out, "");
    char want[PATH_MAX];
    CHECK_STR(cfg.model_pubkey, join(want, sizeof(want), g_dir, "/k/keys/ok.pub"));
    if (cfg.n_assets == 1) {
        const struct pdm_asset_cfg *a = &cfg.assets[0];
        CHECK_INT(a->n_inputs, 4);   /* the model's: temperature, vibration, power, age */
        CHECK_INT(a->n_provides, 4); /* every sensor line, oil_pressure too */
        CHECK_STR(a->provides[1].input, "oil_pressure");
        CHECK_INT(a->provides[1].sensor, 1);
        CHECK_INT(a->provides[1].line, 29);
    }
    free(out);
    pdm_config_free(&cfg);

    snprintf(text, sizeof(text), KEY_CONF, "fleet", "keys/rsa.pub");
    write_file("k/agent.conf", text);
    CHECK_INT(load(path, &cfg, &out), 2);
    check_output(out, "@/k/agent.conf:2: agent.device_id: 'fleet' is reserved: "
                      "{topic_prefix}/fleet/cmd/... is the fleet-wide command topic\n"
                      "@/k/agent.conf:4: agent.model_pubkey: '@/k/keys/rsa.pub' line 1: an RSA "
                      "key; model signatures are ECDSA on P-256 (prime256v1): pdmctl keygen makes "
                      "one\n");
    free(out);
    pdm_config_free(&cfg);

    snprintf(text, sizeof(text), KEY_CONF, "gw-1", "keys/none.pub");
    write_file("k/agent.conf", text);
    CHECK_INT(load(path, &cfg, &out), 1);
    check_output(out, "@/k/agent.conf:4: agent.model_pubkey: cannot read '@/k/keys/none.pub': No "
                      "such file or directory\n");
    free(out);
    pdm_config_free(&cfg);
}

/* [asset] usage and maintenance keys, [agent] renotify_h / confirm_after_h (issue 6). */
#define USAGE_CONF                                                                                 \
    "[agent]\n"                                                                                    \
    "device_id = gw-1\n"                                                                           \
    "data_dir = data\n"                                                                            \
    "%s"                                                                                           \
    "\n"                                                                                           \
    "[mqtt]\n"                                                                                     \
    "uri = mqtts://127.0.0.1:8883\n"                                                               \
    "ca_file = tls/ca.pem\n"                                                                       \
    "cert_file = tls/device.pem\n"                                                                 \
    "key_file = tls/device.key\n"                                                                  \
    "\n"                                                                                           \
    "[bus b]\n"                                                                                    \
    "driver = modbus-tcp\n"                                                                        \
    "host = 127.0.0.1\n"                                                                           \
    "\n"                                                                                           \
    "[sensor t]\n"                                                                                 \
    "bus = b\n"                                                                                    \
    "address = 0\n"                                                                                \
    "type = u16\n"                                                                                 \
    "\n"                                                                                           \
    "[asset c]\n"                                                                                  \
    "model = models/compressor.model\n"                                                            \
    "temperature = t\n"                                                                            \
    "vibration = t\n"                                                                              \
    "power = t\n"                                                                                  \
    "%s"

static void test_usage_keys(void)
{
    copy_example("examples/models/compressor.model", "u/models/compressor.model");
    write_tls("u");
    char text[4096], path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/u/agent.conf", g_dir);
    static struct pdm_config cfg;
    char *out = NULL;

    /* good: age from the run hours (no installed date needed), every limit */
    snprintf(text, sizeof(text), USAGE_CONF, "renotify_h = 0.5\nconfirm_after_h = 48\n",
             "running_sensor = t\nrunning_above = 50\nrunning_hysteresis = 5\n"
             "running_debounce_s = 2\nage_from = run_hours\nservice_every_hours = 400\n"
             "service_every_starts = 1000\nservice_every_months = 12\n"
             "last_service = 2024-03-01\n");
    write_file("u/agent.conf", text);
    CHECK_INT(load(path, &cfg, &out), 0);
    check_output(out, "");
    CHECK_NEAR(cfg.renotify_h, 0.5, 0);
    CHECK_NEAR(cfg.confirm_after_h, 48, 0);
    if (cfg.n_assets == 1) {
        const struct pdm_asset_cfg *a = &cfg.assets[0];
        CHECK_INT(a->has_running, 1);
        CHECK_INT(a->running_sensor, 0);
        CHECK_NEAR(a->running_above, 50, 0);
        CHECK_NEAR(a->running_hysteresis, 5, 0);
        CHECK_INT(a->running_debounce_s, 2);
        CHECK_INT(a->age_from_run_hours, 1);
        CHECK_NEAR(a->service_every_hours, 400, 0);
        CHECK_INT(a->service_every_starts, 1000);
        CHECK_INT(a->service_every_months, 12);
        CHECK_INT(a->last_service_s, 1709251200); /* 2024-03-01 */
        CHECK_INT(a->installed_s, 0);
    }
    free(out);
    pdm_config_free(&cfg);

    /* defaults */
    snprintf(text, sizeof(text), USAGE_CONF, "", "installed = 2019-06-01\n");
    write_file("u/agent.conf", text);
    CHECK_INT(load(path, &cfg, &out), 0);
    CHECK_NEAR(cfg.renotify_h, 24, 0);
    CHECK_NEAR(cfg.confirm_after_h, 72, 0);
    if (cfg.n_assets == 1)
        CHECK_INT(cfg.assets[0].has_running, 0);
    free(out);
    pdm_config_free(&cfg);

    /* mistakes, each with FILE:LINE */
    snprintf(text, sizeof(text), USAGE_CONF, "renotify_h = -1\nconfirm_after_h = x\n",
             "running_sensor = nosuch\nrunning_debounce_s = 9999\nage_from = years\n"
             "service_every_months = 6\nlast_service = 2024-02-30\n");
    write_file("u/agent.conf", text);
    CHECK_INT(load(path, &cfg, &out), 7);
    /* the range check comes after every key was read as a number: renotify_h is second */
    check_output(out,
                 "@/u/agent.conf:5: agent.confirm_after_h: expected a finite number, got 'x'\n"
                 "@/u/agent.conf:4: agent.renotify_h: expected a number from 0 to 8760, got '-1'\n"
                 "@/u/agent.conf:27: asset.c.running_sensor: no [sensor nosuch] section: the "
                 "sensor whose reading says the asset runs\n"
                 "@/u/agent.conf:28: asset.c.running_debounce_s: expected an integer from 0 to "
                 "3600, got '9999'\n"
                 "@/u/agent.conf:29: asset.c.age_from: expected installed or run_hours, got "
                 "'years'\n"
                 "@/u/agent.conf:31: asset.c.last_service: '2024-02-30' is not a real date\n"
                 "@/u/agent.conf:22: asset.c.installed: required key is missing: model "
                 "'compressor' has an 'age' input\n");
    free(out);
    pdm_config_free(&cfg);

    /* combinations */
    snprintf(text, sizeof(text), USAGE_CONF, "",
             "running_above = 10\nage_from = run_hours\nservice_every_hours = 5\n"
             "service_every_months = 6\n");
    write_file("u/agent.conf", text);
    CHECK_INT(load(path, &cfg, &out), 4);
    check_output(out, "@/u/agent.conf:25: asset.c.running_above: needs 'running_sensor = SENSOR' "
                      "(which reading says the asset runs)\n"
                      "@/u/agent.conf:27: asset.c.service_every_hours: needs 'running_sensor = "
                      "SENSOR' (which reading says the asset runs)\n"
                      "@/u/agent.conf:26: asset.c.age_from: run_hours needs 'running_sensor = "
                      "SENSOR' (run hours are counted from it)\n"
                      "@/u/agent.conf:28: asset.c.service_every_months: months count from "
                      "'last_service = YYYY-MM-DD' (or 'installed'): set one\n");
    free(out);
    pdm_config_free(&cfg);

    snprintf(text, sizeof(text), USAGE_CONF, "", "running_sensor = t\ninstalled = 2019-06-01\n");
    write_file("u/agent.conf", text);
    CHECK_INT(load(path, &cfg, &out), 1);
    check_output(out, "@/u/agent.conf:20: asset.c.running_above: required key is missing: "
                      "running_sensor needs the value above which the asset counts as running\n");
    free(out);
    pdm_config_free(&cfg);
}

/* Every section takes its defaults from its key table (agent/config_sections.c, config.c):
 * a file that gives only the required keys gets them in the parsed struct. */
static void test_table_defaults(void)
{
    copy_example("examples/models/compressor.model", "def/models/compressor.model");
    write_tls("def");
    write_file("def/profiles/test-meter.profile", TEST_PROFILE);
    write_file("def/agent.conf",
               "[agent]\ndevice_id = gw-1\ndata_dir = data\n\n"
               "[mqtt]\nuri = mqtts://127.0.0.1:8883\nca_file = tls/ca.pem\n"
               "cert_file = tls/device.pem\nkey_file = tls/device.key\n\n"
               "[bus b]\ndriver = modbus-tcp\nhost = 127.0.0.1\n\n"
               "[bus r]\ndriver = modbus-rtu\ndevice = /dev/ttyUSB0\n\n"
               "[sensor t]\nbus = b\naddress = 0\ntype = u16\n\n"
               "[device m]\nbus = r\nprofile = test-meter\nonly = voltage\n\n"
               "[asset c]\nmodel = models/compressor.model\ninstalled = 2019-06-01\n"
               "temperature = t\nvibration = t\npower = t\n");
    char path[PATH_MAX], *out = NULL;
    snprintf(path, sizeof(path), "%s/def/agent.conf", g_dir);
    static struct pdm_config cfg;
    CHECK_INT(load(path, &cfg, &out), 0);
    check_output(out, "");
    /* [agent] and [mqtt] */
    CHECK_INT(cfg.log_level, PDM_LOG_INFO);
    CHECK_INT(cfg.commit_interval_ms, 1000);
    CHECK_INT(cfg.buffer_max_mb, 64);
    CHECK_INT(cfg.disk_reserve_mb, 8);
    CHECK_NEAR(cfg.renotify_h, 24, 0);
    CHECK_NEAR(cfg.confirm_after_h, 72, 0);
    CHECK_STR(cfg.topic_prefix, "pdm/v1");
    CHECK_INT(cfg.telemetry_interval_s, 10);
    CHECK_INT(cfg.allow_plaintext, 0);
    /* [bus]: what drivers/modbus.c no longer fills in itself */
    CHECK_INT(cfg.n_buses, 2);
    if (cfg.n_buses == 2) {
        const struct pdm_bus_cfg *b = &cfg.buses[0], *r = &cfg.buses[1];
        CHECK_INT(b->port, 502);
        CHECK_INT(b->timeout_ms, 500);
        CHECK_INT(b->max_span, 64);
        CHECK_INT(b->max_span_bits, 2000);
        CHECK_INT(b->max_gap, 8);
        CHECK_INT(b->frame_gap_ms, -1);
        CHECK_INT(b->iio_index, -1);
        CHECK_INT(b->window, 4096);
        CHECK_INT(r->baud, 9600);
        CHECK_INT(r->parity, 'N');
        CHECK_INT(r->data_bits, 8);
        CHECK_INT(r->stop_bits, 1);
        CHECK_INT(r->timeout_ms, 500);
    }
    /* [sensor], and the sensors of a [device] (unit_id, period_ms) */
    CHECK_INT(cfg.n_sensors, 2);
    if (cfg.n_sensors == 2) {
        const struct pdm_sensor_cfg *t = &cfg.sensors[0], *v = &cfg.sensors[1];
        CHECK_INT(t->unit_id, 1);
        CHECK_INT(t->table, PDM_TABLE_HOLDING);
        CHECK_INT(t->order, PDM_ORDER_ABCD);
        CHECK_NEAR(t->scale, 1.0, 0);
        CHECK_NEAR(t->offset, 0.0, 0);
        CHECK_INT(t->period_ms, 1000);
        CHECK_STR(t->unit, "");
        CHECK(isinf(t->valid_min) && t->valid_min < 0);
        CHECK(isinf(t->valid_max) && t->valid_max > 0);
        CHECK_INT(t->frozen_s, 0);
        CHECK_INT(t->stale_s, 0);
        CHECK_STR(v->name, "m.voltage");
        CHECK_INT(v->unit_id, 1);
        CHECK_INT(v->period_ms, 1000);
        CHECK_NEAR(v->scale, 1.0, 0);
        CHECK(isinf(v->valid_min) && isinf(v->valid_max));
        CHECK_INT(v->table, PDM_TABLE_INPUT); /* the [profile]'s default over the table's */
    }
    /* [asset] */
    if (cfg.n_assets == 1) {
        const struct pdm_asset_cfg *a = &cfg.assets[0];
        CHECK_INT(a->has_running, 0);
        CHECK_INT(a->running_debounce_s, 5);
        CHECK_NEAR(a->running_hysteresis, 0, 0);
        CHECK_INT(a->age_from_run_hours, 0);
        CHECK_NEAR(a->service_every_hours, 0, 0);
        CHECK_INT(a->service_every_starts, 0);
        CHECK_INT(a->service_every_months, 0);
    }
    free(out);
    pdm_config_free(&cfg);

    /* the same defaults for a bus made outside a file (pdmctl --tcp/--rtu) */
    struct pdm_bus_cfg bus;
    memset(&bus, 0, sizeof(bus));
    pdm_config_bus_defaults(&bus);
    CHECK_INT(bus.timeout_ms, 500);
    CHECK_INT(bus.baud, 9600);
    CHECK_INT(bus.parity, 'N');
}

int main(void)
{
    char tmpl[] = "/tmp/pdm-test-config-XXXXXX", real[PATH_MAX];
    if (!mkdtemp(tmpl) || !realpath(tmpl, real) || strlen(real) >= sizeof(g_dir)) {
        perror("mkdtemp");
        return 2;
    }
    strcpy(g_dir, real);
    static struct pdm_config zero;
    pdm_config_free(&zero); /* safe on a zeroed config */

    test_good_example();
    test_many_mistakes();
    test_structure_mistakes();
    test_model_file();
    test_asset_model_mismatch();
    test_derived_model();
    test_relative_paths_and_rtu();
    test_plan_keys_and_bits();
    test_one_owner_per_serial_line();
    test_onboard_keys();
    test_device_profiles();
    test_shipped_profiles();
    test_device_profile_errors();
    test_model_update_keys();
    test_usage_keys();
    test_table_defaults();

    nftw(g_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return check_summary("test_config");
}
