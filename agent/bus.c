/* The bus thread: schedules, reads, backs off. See bus.h for the contract.
 *
 * Failure handling is layered so a fault costs only what it must:
 *  - transport (connection refused or lost, serial port gone): the whole bus is down. Due
 *    sensors get a failed sample without touching the wire; (re)connect is tried first at once,
 *    then with backoff from 1 s doubling to 30 s.
 *  - unit (no answer, garbled answer): that unit id is backed off, starting at the sensor's
 *    period and doubling to 30 s; its sensors get failed samples without a request until the
 *    retry time, so a dead unit costs at most one timeout per backoff slot and the other units
 *    keep their period.
 *  - value (exception answer, NaN): the device is alive, only this sensor fails; no backoff.
 *
 * Memory: allocated once in pdm_bus_start: per sensor of the bus about 64 bytes, per distinct
 * unit id about 120 bytes, plus the driver's context. The read loop does not allocate. */
#include "bus.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

#include "clock.h"
#include "config.h"
#include "log.h"
#include "drivers/driver.h"

#define BACKOFF_MAX_MS        30000 /* unit and connection backoff cap */
#define CONNECT_FIRST_BACKOFF 1000  /* ms after the first failed reconnect */
#define ERR_MAX               160   /* driver reasons for logs; samples keep 47 chars */

struct bus_sensor {
    uint32_t sensor;                /* index into cfg->sensors */
    uint32_t unit;                  /* index into pdm_bus.units */
    int64_t next_ms;                /* absolute monotonic due time */
    struct pdm_complaint complaint; /* device answers but the value is unusable */
};

struct bus_unit {
    int unit_id;
    int64_t backoff_ms; /* 0 while the unit answers */
    int64_t retry_ms;   /* no request to this unit before this monotonic time */
    int32_t err;        /* last failure, repeated in samples while backed off */
    char reason[sizeof(((struct pdm_sample *)0)->reason)];
    struct pdm_complaint complaint;
};

struct pdm_bus {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int stop; /* under lock */

    const struct pdm_config *cfg;
    const struct pdm_bus_cfg *bc;
    struct pdm_queue *q;
    const struct pdm_driver_ops *ops;
    void *drv;
    char where[PDM_PATH_MAX]; /* "127.0.0.1:1502" or "/dev/ttyUSB0" */

    int up;                  /* driver connected as far as we know */
    int64_t conn_backoff_ms; /* 0 = next attempt is the first after a loss */
    int64_t conn_retry_ms;
    int32_t conn_err;
    char conn_reason[sizeof(((struct pdm_sample *)0)->reason)];
    struct pdm_complaint conn_complaint;

    struct bus_sensor *sensors;
    uint32_t n_sensors;
    struct bus_unit *units;
    uint32_t n_units;
};

/* Copies a reason into a fixed field, cutting it if needed (logs keep the whole text). */
static void set_text(char *dst, size_t n, const char *src)
{
    size_t len = strnlen(src, n - 1);
    memcpy(dst, src, len);
    dst[len] = '\0';
}

static int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

static const struct pdm_sensor_cfg *sensor_cfg(const struct pdm_bus *b, const struct bus_sensor *s)
{
    return &b->cfg->sensors[s->sensor];
}

static void push(struct pdm_bus *b, const struct bus_sensor *s, double value, int32_t err,
                 const char *reason)
{
    struct pdm_sample smp = {
        .ts_ms = pdm_wall_ms(),
        .mono_ms = pdm_mono_ms(),
        .value = err ? 0.0 : value,
        .sensor = s->sensor,
        .err = err,
    };
    if (err)
        set_text(smp.reason, sizeof(smp.reason), reason);
    /* -ENOBUFS: dropped and counted by the queue; the main loop reports it */
    (void)pdm_queue_push(b->q, &smp);
}

/* The read step: one request per sensor in v0.1. Everything that knows how a sensor maps to
 * requests lives here, so it can later execute a plan of coalesced requests instead. */
static int read_sensor(struct pdm_bus *b, const struct bus_sensor *s, double *value, char *err,
                       size_t errlen)
{
    const struct pdm_sensor_cfg *sc = sensor_cfg(b, s);
    uint16_t regs[PDM_REG_MAX_WORDS];
    struct pdm_read_req req = {
        .unit_id = sc->unit_id,
        .table = sc->table,
        .address = sc->address,
        .count = pdm_reg_words(sc->type),
    };
    int rc = b->ops->read(b->drv, &req, regs, err, errlen);
    if (rc < 0)
        return rc;
    double raw;
    rc = pdm_reg_decode(sc->type, sc->order, regs, &raw);
    if (rc == -ERANGE) {
        snprintf(err, errlen, "unit %d: device sent NaN/Inf (error value)", sc->unit_id);
        return rc;
    }
    if (rc < 0) {
        snprintf(err, errlen, "unit %d: cannot decode %s", sc->unit_id,
                 pdm_reg_type_name(sc->type));
        return rc;
    }
    *value = raw * sc->scale + sc->offset;
    return 0;
}

/* The unit did not answer usefully: worth backing off (see drivers/modbus.c for the codes). */
static int unit_failure(int rc)
{
    return rc == -ETIMEDOUT || rc == -EBADMSG || rc == -EPROTO || rc == -ENOLINK;
}

/* The device answered, but with an exception, or the value is unusable. */
static int value_failure(int rc)
{
    return rc == -EOPNOTSUPP || rc == -ENXIO || rc == -EINVAL || rc == -EREMOTEIO ||
           rc == -EINPROGRESS || rc == -EBUSY || rc == -EMSGSIZE || rc == -ERANGE;
}

static void conn_failed(struct pdm_bus *b, int64_t now, int rc, const char *err)
{
    b->up = 0;
    b->conn_backoff_ms =
        b->conn_backoff_ms ? min64(b->conn_backoff_ms * 2, BACKOFF_MAX_MS) : CONNECT_FIRST_BACKOFF;
    b->conn_retry_ms = now + b->conn_backoff_ms;
    b->conn_err = rc;
    snprintf(b->conn_reason, sizeof(b->conn_reason), "bus down: %s", strerror(-rc));
    pdm_complain(&b->conn_complaint, now, "bus %s: %s; retrying in %lld s", b->bc->name, err,
                 (long long)(b->conn_backoff_ms + 999) / 1000);
}

/* Brings the bus up if it is down and its retry time has come. Returns 1 when up. Called
 * before every read even while up (free when connected): the driver drops a TCP connection
 * after a timeout, and a reconnect that fails must count against the bus, not against the unit
 * that happens to be read next. */
static int ensure_up(struct pdm_bus *b, int64_t now)
{
    if (!b->up && now < b->conn_retry_ms)
        return 0;
    char err[ERR_MAX] = "";
    int rc;
    if (!b->drv) {
        rc = b->ops->open(&b->drv, b->bc, err, sizeof(err));
    } else {
        rc = b->ops->connect(b->drv, err, sizeof(err));
    }
    if (rc < 0) {
        conn_failed(b, pdm_mono_ms(), rc, err);
        return 0;
    }
    if (!b->up) {
        b->up = 1;
        b->conn_backoff_ms = 0;
        pdm_release(&b->conn_complaint, "bus %s: connected to %s again", b->bc->name, b->where);
    }
    return 1;
}

static void step(struct pdm_bus *b, struct bus_sensor *s, int64_t now)
{
    const struct pdm_sensor_cfg *sc = sensor_cfg(b, s);
    struct bus_unit *u = &b->units[s->unit];

    if (!ensure_up(b, now)) {
        push(b, s, 0, b->conn_err, b->conn_reason);
        return;
    }
    if (u->backoff_ms && now < u->retry_ms) {
        push(b, s, 0, u->err, u->reason);
        return;
    }

    char err[ERR_MAX] = "";
    double value = 0;
    int rc = read_sensor(b, s, &value, err, sizeof(err));
    int64_t done = pdm_mono_ms();
    if (rc == 0 || value_failure(rc)) {
        if (u->backoff_ms) {
            u->backoff_ms = 0;
            pdm_release(&u->complaint, "bus %s: unit %d at %s answering again", b->bc->name,
                        u->unit_id, b->where);
        }
        if (rc == 0)
            pdm_release(&s->complaint, "bus %s: sensor %s: reading again", b->bc->name, sc->name);
        else
            pdm_complain(&s->complaint, done, "bus %s: sensor %s (%s register %d): %s", b->bc->name,
                         sc->name, pdm_reg_table_name(sc->table), sc->address, err);
        push(b, s, value, rc, err);
        return;
    }
    if (unit_failure(rc)) {
        u->backoff_ms = u->backoff_ms ? min64(u->backoff_ms * 2, BACKOFF_MAX_MS) : sc->period_ms;
        /* counted from the end of the failed request: with a timeout longer than the period,
         * counting from its start would leave no pause at all */
        u->retry_ms = done + u->backoff_ms;
        u->err = rc;
        set_text(u->reason, sizeof(u->reason), err);
        pdm_complain(&u->complaint, done,
                     "bus %s: unit %d at %s not answering (%s); retrying every %.1f s", b->bc->name,
                     u->unit_id, b->where, err, (double)u->backoff_ms / 1000.0);
        push(b, s, 0, rc, err);
        return;
    }
    /* transport: the driver dropped the connection; reconnect at the next due read */
    push(b, s, 0, rc, err);
    b->up = 0;
    b->conn_retry_ms = done;
    b->conn_err = rc;
    snprintf(b->conn_reason, sizeof(b->conn_reason), "bus down: %s", strerror(-rc));
    pdm_complain(&b->conn_complaint, done, "bus %s: connection lost (%s); reconnecting",
                 b->bc->name, err);
}

/* Next slot on the sensor's period grid strictly after now: missed slots are skipped. */
static void advance(struct bus_sensor *s, int64_t period, int64_t now)
{
    s->next_ms += period;
    if (s->next_ms <= now)
        s->next_ms += ((now - s->next_ms) / period + 1) * period;
}

static int stopping(struct pdm_bus *b)
{
    pthread_mutex_lock(&b->lock);
    int stop = b->stop;
    pthread_mutex_unlock(&b->lock);
    return stop;
}

static void *bus_main(void *arg)
{
    struct pdm_bus *b = arg;
    char name[16] = "bus-"; /* the kernel keeps 15 characters: shown by top -H, ps -L */
    set_text(name + 4, sizeof(name) - 4, b->bc->name);
    prctl(PR_SET_NAME, name, 0, 0, 0);

    int64_t start = pdm_mono_ms();
    b->conn_retry_ms = start; /* first open at once */
    for (uint32_t i = 0; i < b->n_sensors; i++)
        b->sensors[i].next_ms = start;

    while (!stopping(b)) {
        int64_t now = pdm_mono_ms();
        for (uint32_t i = 0; i < b->n_sensors && !stopping(b); i++) {
            struct bus_sensor *s = &b->sensors[i];
            if (s->next_ms > now)
                continue;
            step(b, s, now);
            now = pdm_mono_ms();
            advance(s, sensor_cfg(b, s)->period_ms, now);
        }

        int64_t due = INT64_MAX;
        for (uint32_t i = 0; i < b->n_sensors; i++)
            due = min64(due, b->sensors[i].next_ms);

        pthread_mutex_lock(&b->lock);
        while (!b->stop) {
            if (due == INT64_MAX) {
                pthread_cond_wait(&b->cond, &b->lock);
                continue;
            }
            if (pdm_mono_ms() >= due)
                break;
            struct timespec ts = {.tv_sec = due / 1000, .tv_nsec = (due % 1000) * 1000000};
            if (pthread_cond_timedwait(&b->cond, &b->lock, &ts) == ETIMEDOUT)
                break;
        }
        pthread_mutex_unlock(&b->lock);
    }
    return NULL;
}

static const char *driver_name(enum pdm_bus_driver d)
{
    return d == PDM_DRIVER_MODBUS_RTU ? "modbus-rtu" : "modbus-tcp";
}

int pdm_bus_start(struct pdm_bus **out, const struct pdm_config *cfg, uint32_t bus,
                  struct pdm_queue *q)
{
    *out = NULL;
    if (bus >= cfg->n_buses)
        return -EINVAL;
    struct pdm_bus *b = calloc(1, sizeof(*b));
    if (!b)
        return -ENOMEM;
    b->cfg = cfg;
    b->bc = &cfg->buses[bus];
    b->q = q;
    b->ops =
        b->bc->driver == PDM_DRIVER_MODBUS_RTU ? &pdm_driver_modbus_rtu : &pdm_driver_modbus_tcp;
    if (b->bc->driver == PDM_DRIVER_MODBUS_RTU)
        set_text(b->where, sizeof(b->where), b->bc->device);
    else
        snprintf(b->where, sizeof(b->where), "%s:%d", b->bc->host, b->bc->port);

    uint32_t n = 0;
    for (uint32_t i = 0; i < cfg->n_sensors; i++)
        n += cfg->sensors[i].bus == bus;
    if (n) {
        b->sensors = calloc(n, sizeof(*b->sensors));
        b->units = calloc(n, sizeof(*b->units)); /* at most one unit per sensor */
        if (!b->sensors || !b->units) {
            free(b->sensors);
            free(b->units);
            free(b);
            return -ENOMEM;
        }
    }
    for (uint32_t i = 0; i < cfg->n_sensors; i++) {
        if (cfg->sensors[i].bus != bus)
            continue;
        struct bus_sensor *s = &b->sensors[b->n_sensors++];
        s->sensor = i;
        uint32_t u = 0;
        while (u < b->n_units && b->units[u].unit_id != cfg->sensors[i].unit_id)
            u++;
        if (u == b->n_units)
            b->units[b->n_units++].unit_id = cfg->sensors[i].unit_id;
        s->unit = u;
    }

    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&b->cond, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&b->lock, NULL);

    if (b->bc->driver == PDM_DRIVER_MODBUS_RTU)
        pdm_info("bus %s (%s %s %d %d%c%d): %u sensors on %u unit ids", b->bc->name,
                 driver_name(b->bc->driver), b->where, b->bc->baud, b->bc->data_bits, b->bc->parity,
                 b->bc->stop_bits, b->n_sensors, b->n_units);
    else
        pdm_info("bus %s (%s %s): %u sensors on %u unit ids", b->bc->name,
                 driver_name(b->bc->driver), b->where, b->n_sensors, b->n_units);

    /* Signals are for the main loop: the bus thread starts with all of them blocked. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&b->thread, NULL, bus_main, b);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        pthread_cond_destroy(&b->cond);
        pthread_mutex_destroy(&b->lock);
        free(b->sensors);
        free(b->units);
        free(b);
        return -rc;
    }
    *out = b;
    return 0;
}

void pdm_bus_stop(struct pdm_bus *b)
{
    if (!b)
        return;
    pthread_mutex_lock(&b->lock);
    b->stop = 1;
    pthread_cond_signal(&b->cond);
    pthread_mutex_unlock(&b->lock);
    pthread_join(b->thread, NULL);
    if (b->drv)
        b->ops->close(b->drv);
    pthread_cond_destroy(&b->cond);
    pthread_mutex_destroy(&b->lock);
    free(b->sensors);
    free(b->units);
    free(b);
}
