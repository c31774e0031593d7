/* Drives agent/bus.c against pdm-sim; run by integration/it_bus.sh.
 *
 * Builds a config by hand (one modbus-tcp bus on 127.0.0.1:PORT, sensors below), runs the bus
 * thread for --seconds (or until SIGTERM), prints every sample as one line and, at the end, per
 * sensor counts and the largest gap between good samples, plus how long pdm_bus_stop() took:
 *   sample t=MS sensor=NAME ok value=V
 *   sample t=MS sensor=NAME err=E reason=TEXT
 *   summary sensor=NAME ok=N failed=N gap_max_ms=N
 *   stop_ms=N
 * Sensors: temp (live unit, reg 0 float32), power_kw (live unit, reg 4 float32, scale 0.001),
 * dead (--dead-unit, reg 0 float32, --dead-period-ms). Or, with one --sensor per sensor (up to
 * 16), NAME:UNIT:TABLE:ADDRESS:TYPE[:PERIOD_MS] (TYPE "-" for coil/discrete), e.g.
 * temp:1:holding:0:float32:200. --max-span, --max-gap, --frame-gap-ms set the bus's plan keys
 * (defaults as in agent.conf); --debug logs the planned requests. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/bus.h"
#include "lib/clock.h"
#include "agent/config.h"
#include "lib/log.h"
#include "lib/queue.h"

#define MAX_SENSORS 16

static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

static long arg_long(const char *name, const char *v)
{
    char *end;
    long x = strtol(v, &end, 10);
    if (!*v || *end) {
        fprintf(stderr, "bus_probe: %s: not a number: '%s'\n", name, v);
        exit(2);
    }
    return x;
}

/* NAME:UNIT:TABLE:ADDRESS:TYPE[:PERIOD_MS] into s; exits on a bad spec. */
static void parse_sensor(const char *spec, long default_period, struct pdm_sensor_cfg *s)
{
    char buf[256], *save = NULL, *f[6] = {0};
    int n = 0;
    snprintf(buf, sizeof(buf), "%s", spec);
    for (char *tok = strtok_r(buf, ":", &save); tok && n < 6; tok = strtok_r(NULL, ":", &save))
        f[n++] = tok;
    if (n < 5 || pdm_reg_table_parse(f[2], &s->table) < 0 ||
        (strcmp(f[4], "-") != 0 && pdm_reg_type_parse(f[4], &s->type) < 0)) {
        fprintf(stderr,
                "bus_probe: --sensor: expected NAME:UNIT:TABLE:ADDRESS:TYPE[:PERIOD_MS], "
                "got '%s'\n",
                spec);
        exit(2);
    }
    snprintf(s->name, sizeof(s->name), "%s", f[0]);
    s->unit_id = (int)arg_long("--sensor unit", f[1]);
    s->address = (int)arg_long("--sensor address", f[3]);
    if (pdm_reg_table_is_bits(s->table))
        s->type = PDM_TYPE_BOOL;
    s->period_ms = (int)(n > 5 ? arg_long("--sensor period", f[5]) : default_period);
}

int main(int argc, char **argv)
{
    long port = 0, seconds = 4, period = 100, dead_period = 100, timeout = 200, live_unit = 1,
         dead_unit = 7, max_span = 64, max_gap = 8, frame_gap = -1;
    const char *specs[MAX_SENSORS];
    int n_specs = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--debug") == 0) {
            pdm_log_set_level(PDM_LOG_DEBUG);
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "bus_probe: %s needs a value\n", argv[i]);
            return 2;
        }
        const char *v = argv[++i];
        if (strcmp(argv[i - 1], "--port") == 0)
            port = arg_long("--port", v);
        else if (strcmp(argv[i - 1], "--seconds") == 0)
            seconds = arg_long("--seconds", v);
        else if (strcmp(argv[i - 1], "--period-ms") == 0)
            period = arg_long("--period-ms", v);
        else if (strcmp(argv[i - 1], "--dead-period-ms") == 0)
            dead_period = arg_long("--dead-period-ms", v);
        else if (strcmp(argv[i - 1], "--timeout-ms") == 0)
            timeout = arg_long("--timeout-ms", v);
        else if (strcmp(argv[i - 1], "--live-unit") == 0)
            live_unit = arg_long("--live-unit", v);
        else if (strcmp(argv[i - 1], "--dead-unit") == 0)
            dead_unit = arg_long("--dead-unit", v);
        else if (strcmp(argv[i - 1], "--max-span") == 0)
            max_span = arg_long("--max-span", v);
        else if (strcmp(argv[i - 1], "--max-gap") == 0)
            max_gap = arg_long("--max-gap", v);
        else if (strcmp(argv[i - 1], "--frame-gap-ms") == 0)
            frame_gap = arg_long("--frame-gap-ms", v);
        else if (strcmp(argv[i - 1], "--sensor") == 0 && n_specs < MAX_SENSORS)
            specs[n_specs++] = v;
        else {
            fprintf(stderr, "bus_probe: unknown option %s\n", argv[i - 1]);
            return 2;
        }
    }
    if (port <= 0) {
        fprintf(stderr, "usage: bus_probe --port P [--seconds S] [--period-ms N] "
                        "[--dead-period-ms N] [--timeout-ms N] [--live-unit N] [--dead-unit N]\n"
                        "       [--sensor NAME:UNIT:TABLE:ADDRESS:TYPE[:PERIOD_MS]]... "
                        "[--max-span N] [--max-gap N] [--frame-gap-ms N] [--debug]\n");
        return 2;
    }

    static struct pdm_bus_cfg bus;
    static struct pdm_sensor_cfg sensors[MAX_SENSORS];
    static struct pdm_config cfg;
    pdm_config_bus_defaults(&bus);
    snprintf(bus.name, sizeof(bus.name), "plant");
    bus.driver = PDM_DRIVER_MODBUS_TCP;
    bus.timeout_ms = (int)timeout;
    snprintf(bus.host, sizeof(bus.host), "127.0.0.1");
    bus.port = (int)port;
    bus.max_span = (int)max_span;
    bus.max_span_bits = 2000;
    bus.max_gap = (int)max_gap;
    bus.frame_gap_ms = (int)frame_gap;
    const struct {
        const char *name;
        long unit;
        int address;
        double scale;
        long period;
    } def[3] = {
        {"temp", live_unit, 0, 1.0, period},
        {"power_kw", live_unit, 4, 0.001, period},
        {"dead", dead_unit, 0, 1.0, dead_period},
    };
    uint32_t n_sensors = n_specs ? (uint32_t)n_specs : 3;
    for (int i = 0; i < n_specs; i++) {
        sensors[i].order = PDM_ORDER_ABCD;
        sensors[i].scale = 1.0;
        parse_sensor(specs[i], period, &sensors[i]);
    }
    for (int i = 0; i < 3 && !n_specs; i++) {
        snprintf(sensors[i].name, sizeof(sensors[i].name), "%s", def[i].name);
        sensors[i].bus = 0;
        sensors[i].unit_id = (int)def[i].unit;
        sensors[i].table = PDM_TABLE_HOLDING;
        sensors[i].address = def[i].address;
        sensors[i].type = PDM_TYPE_FLOAT32;
        sensors[i].order = PDM_ORDER_ABCD;
        sensors[i].scale = def[i].scale;
        sensors[i].period_ms = (int)def[i].period;
    }
    cfg.buses = &bus;
    cfg.n_buses = 1;
    cfg.sensors = sensors;
    cfg.n_sensors = n_sensors;

    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    setvbuf(stdout, NULL, _IOLBF, 0);

    struct pdm_queue q;
    if (pdm_queue_init(&q, 256) < 0) {
        fprintf(stderr, "bus_probe: queue init failed\n");
        return 1;
    }
    struct pdm_bus *b;
    int rc = pdm_bus_start(&b, &cfg, 0, &q);
    if (rc < 0) {
        fprintf(stderr, "bus_probe: pdm_bus_start: %s\n", strerror(-rc));
        return 1;
    }

    long ok[MAX_SENSORS] = {0}, failed[MAX_SENSORS] = {0};
    int64_t last_ok[MAX_SENSORS] = {0}, gap_max[MAX_SENSORS] = {0};
    int64_t start = pdm_mono_ms(), end = start + seconds * 1000;
    while (!g_stop) {
        int64_t now = pdm_mono_ms();
        if (now >= end)
            break;
        struct pollfd p = {.fd = q.efd, .events = POLLIN};
        poll(&p, 1, (int)(end - now));
        struct pdm_sample s[32];
        uint32_t n;
        while ((n = pdm_queue_pop(&q, s, 32)) > 0) {
            for (uint32_t i = 0; i < n; i++) {
                uint32_t k = s[i].sensor;
                if (k >= n_sensors) {
                    printf("bad sensor index %u\n", k);
                    continue;
                }
                if (s[i].err == 0) {
                    if (last_ok[k] && s[i].mono_ms - last_ok[k] > gap_max[k])
                        gap_max[k] = s[i].mono_ms - last_ok[k];
                    last_ok[k] = s[i].mono_ms;
                    ok[k]++;
                    printf("sample t=%lld sensor=%s ok value=%.4f\n",
                           (long long)(s[i].mono_ms - start), sensors[k].name, s[i].value);
                } else {
                    failed[k]++;
                    printf("sample t=%lld sensor=%s err=%d reason=%s\n",
                           (long long)(s[i].mono_ms - start), sensors[k].name, s[i].err,
                           s[i].reason);
                }
            }
        }
    }
    int64_t t0 = pdm_mono_ms();
    pdm_bus_stop(b);
    int64_t stop_ms = pdm_mono_ms() - t0;
    for (uint32_t k = 0; k < n_sensors; k++)
        printf("summary sensor=%s ok=%ld failed=%ld gap_max_ms=%lld\n", sensors[k].name, ok[k],
               failed[k], (long long)gap_max[k]);
    printf("stop_ms=%lld dropped=%llu\n", (long long)stop_ms, (unsigned long long)q.dropped);
    pdm_queue_destroy(&q);
    return 0;
}
