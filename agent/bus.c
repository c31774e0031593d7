/* The bus thread: schedules, reads, backs off. See bus.h for the contract.
 *
 * What goes on the wire is a plan of requests (drivers/plan.h): neighbouring sensors of one
 * unit id, table and period are read in one request, and requests are scheduled at absolute
 * due times, each at its sensors' period. Transactions are strictly one at a time (this thread
 * owns the line) with the bus's frame gap between them.
 *
 * Failure handling is layered so a fault costs only what it must:
 *  - transport (connection refused or lost, serial port gone): the whole bus is down. Due
 *    sensors get a failed sample without touching the wire; (re)connect is tried first at once,
 *    then with backoff from 1 s doubling to 30 s.
 *  - unit (no answer, garbled answer): that unit id is backed off, starting at the request's
 *    period and doubling to 30 s; its sensors get failed samples without a request until the
 *    retry time, so a dead unit costs at most one timeout per backoff slot and the other units
 *    keep their period.
 *  - value (exception answer, NaN): the device is alive, only these sensors fail; no backoff.
 *    Exceptions 2 and 3 to a coalesced request split it (remembered, see plan.h) before any
 *    sensor is failed.
 *
 * Memory: allocated once in pdm_bus_start: per sensor of the bus about 48 bytes of plan plus
 * 32 bytes of state, per request 16 bytes, per distinct unit id about 120 bytes, one read buffer
 * of the largest request (at most 2000 * 2 bytes for coils), plus the driver's context. The
 * read loop does not allocate. */
#include "bus.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/clock.h"
#include "config.h"
#include "lib/log.h"
#include "onboard_bus.h"
#include "drivers/driver.h"
#include "drivers/plan.h"
#include "drivers/sampler.h"

#define BACKOFF_MAX_MS        30000 /* unit and connection backoff cap */
#define CONNECT_FIRST_BACKOFF 1000  /* ms after the first failed reconnect */
#define ERR_MAX               160   /* driver reasons for logs; samples keep 47 chars */

struct bus_sensor {
    struct pdm_complaint complaint; /* device answers but the value is unusable */
};

struct bus_req {
    uint32_t unit;   /* index into pdm_bus.units */
    int64_t next_ms; /* absolute monotonic due time */
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
    /* driver = sysfs or iio: the thread is onboard_bus.c's and nothing below is used */
    struct pdm_onboard_bus *onboard;

    struct pdm_sampler thread; /* drivers/sampler.h */

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

    int64_t gap_us;     /* pause between transactions (pdm_frame_gap_us) */
    int64_t last_io_ns; /* monotonic end of the last transaction; 0 = none yet */

    struct pdm_plan plan;       /* items are the bus's sensors; item tag = cfg sensor index */
    struct bus_sensor *sensors; /* by plan item */
    struct bus_req *reqs;       /* by plan request */
    struct bus_unit *units;
    uint32_t n_units;
    uint16_t *buf; /* plan.max_count registers or bits */
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

static const struct pdm_sensor_cfg *item_cfg(const struct pdm_bus *b, uint32_t item)
{
    return &b->cfg->sensors[b->plan.items[item].tag];
}

static void push(struct pdm_bus *b, uint32_t item, double value, int32_t err, const char *reason)
{
    pdm_sampler_push(b->q, b->plan.items[item].tag, value, err, reason);
}

/* Every sensor of request r gets the same failure without a transaction. */
static void fail_request(struct pdm_bus *b, uint32_t r, int32_t err, const char *reason)
{
    const struct pdm_plan_req *q = &b->plan.reqs[r];
    for (uint32_t k = q->first; k < q->first + q->n; k++)
        push(b, b->plan.order[k], 0, err, reason);
}

/* The unit did not answer usefully: worth backing off (see drivers/modbus.c for the codes). */
static int unit_failure(int rc)
{
    return rc == -ETIMEDOUT || rc == -EBADMSG || rc == -EPROTO || rc == -ENOLINK;
}

/* One transaction, after the bus's frame gap: an RTU device only sees a new frame after the
 * line was quiet for 3.5 characters, and some slow devices or gateways need more. */
static int io_read(void *ctx, const struct pdm_read_req *rd, uint16_t *regs, char *err,
                   size_t errlen)
{
    struct pdm_bus *b = ctx;
    if (b->gap_us && b->last_io_ns) {
        int64_t at = b->last_io_ns + b->gap_us * 1000;
        struct timespec ts = {.tv_sec = at / 1000000000, .tv_nsec = at % 1000000000};
        /* at most PDM_FRAME_GAP_MAX_MS; EINTR cannot happen (signals are blocked here) */
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
            ;
    }
    int rc = b->ops->read(b->drv, rd, regs, err, errlen);
    b->last_io_ns = pdm_mono_ns();
    return rc;
}

static void io_result(void *ctx, uint32_t item, const uint16_t *regs, int rc, const char *err)
{
    struct pdm_bus *b = ctx;
    const struct pdm_sensor_cfg *sc = item_cfg(b, item);
    struct bus_sensor *s = &b->sensors[item];
    char why[ERR_MAX];
    double value = 0;
    if (rc == 0) {
        double raw;
        rc = pdm_reg_decode(sc->type, sc->order, regs, &raw);
        if (rc == -ERANGE)
            snprintf(why, sizeof(why), "unit %d: device sent NaN/Inf (error value)", sc->unit_id);
        else if (rc < 0)
            snprintf(why, sizeof(why), "unit %d: cannot decode %s", sc->unit_id,
                     pdm_reg_type_name(sc->type));
        else
            value = raw * sc->scale + sc->offset;
        err = why;
    }
    if (rc == 0) {
        pdm_release(&s->complaint, "bus %s: sensor %s: reading again", b->bc->name, sc->name);
    } else if (pdm_drv_answered(rc) || rc == -ERANGE) {
        /* the device is alive, this value is not: named per sensor */
        pdm_complain(&s->complaint, pdm_mono_ms(), "bus %s: sensor %s (unit %d %s %d): %s",
                     b->bc->name, sc->name, sc->unit_id, pdm_reg_table_name(sc->table), sc->address,
                     err);
    }
    /* other failures (no answer, transport) are logged once per unit or bus by step() */
    push(b, item, value, rc, err);
}

static void io_split(void *ctx, const struct pdm_read_req *was, const struct pdm_read_req *a,
                     const struct pdm_read_req *b2, const char *why)
{
    struct pdm_bus *b = ctx;
    /* the driver's reason starts with "unit N: ", already said here */
    char prefix[24];
    int n = snprintf(prefix, sizeof(prefix), "unit %d: ", was->unit_id);
    if (n > 0 && strncmp(why, prefix, (size_t)n) == 0)
        why += n;
    pdm_info("bus %s: unit %d refused %s %d..%d with %s; reading it as %d..%d and %d..%d from "
             "now on",
             b->bc->name, was->unit_id, pdm_reg_table_name(was->table), was->address,
             was->address + was->count - 1, why, a->address, a->address + a->count - 1, b2->address,
             b2->address + b2->count - 1);
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
 * before every request even while up (free when connected): the driver drops a TCP connection
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

static void step(struct pdm_bus *b, uint32_t r, int64_t now)
{
    const struct pdm_plan_req *q = &b->plan.reqs[r];
    struct bus_unit *u = &b->units[b->reqs[r].unit];

    if (!ensure_up(b, now)) {
        fail_request(b, r, b->conn_err, b->conn_reason);
        return;
    }
    if (u->backoff_ms && now < u->retry_ms) {
        fail_request(b, r, u->err, u->reason);
        return;
    }

    char err[ERR_MAX] = "";
    const struct pdm_plan_io io = {
        .ctx = b, .read = io_read, .result = io_result, .split = io_split};
    int rc = pdm_plan_run(&b->plan, r, b->buf, &io, err, sizeof(err));
    int64_t done = pdm_mono_ms();
    if (rc == 0) {
        if (u->backoff_ms) {
            u->backoff_ms = 0;
            pdm_release(&u->complaint, "bus %s: unit %d at %s answering again", b->bc->name,
                        u->unit_id, b->where);
        }
        return;
    }
    if (unit_failure(rc)) {
        u->backoff_ms = u->backoff_ms ? min64(u->backoff_ms * 2, BACKOFF_MAX_MS) : q->period_ms;
        /* counted from the end of the failed request: with a timeout longer than the period,
         * counting from its start would leave no pause at all */
        u->retry_ms = done + u->backoff_ms;
        u->err = rc;
        set_text(u->reason, sizeof(u->reason), err);
        pdm_complain(&u->complaint, done,
                     "bus %s: unit %d at %s not answering (%s); retrying every %.1f s", b->bc->name,
                     u->unit_id, b->where, err, (double)u->backoff_ms / 1000.0);
        return;
    }
    /* transport: the driver dropped the connection; reconnect at the next due request */
    b->up = 0;
    b->conn_retry_ms = done;
    b->conn_err = rc;
    snprintf(b->conn_reason, sizeof(b->conn_reason), "bus down: %s", strerror(-rc));
    pdm_complain(&b->conn_complaint, done, "bus %s: connection lost (%s); reconnecting",
                 b->bc->name, err);
}

/* Next slot on the request's period grid strictly after now: missed slots are skipped. */
static void advance(struct bus_req *br, int64_t period, int64_t now)
{
    br->next_ms += period;
    if (br->next_ms <= now)
        br->next_ms += ((now - br->next_ms) / period + 1) * period;
}

static int stopping(struct pdm_bus *b)
{
    return pdm_sampler_stopping(&b->thread);
}

static void bus_main(void *arg)
{
    struct pdm_bus *b = arg;
    int64_t start = pdm_mono_ms();
    b->conn_retry_ms = start; /* first open at once */
    for (uint32_t r = 0; r < b->plan.n_reqs; r++)
        b->reqs[r].next_ms = start;

    while (!stopping(b)) {
        int64_t now = pdm_mono_ms();
        for (uint32_t r = 0; r < b->plan.n_reqs && !stopping(b); r++) {
            struct bus_req *br = &b->reqs[r];
            if (br->next_ms > now)
                continue;
            step(b, r, now);
            now = pdm_mono_ms();
            advance(br, b->plan.reqs[r].period_ms, now);
        }

        int64_t due = INT64_MAX; /* no requests: sleep until stopped */
        for (uint32_t r = 0; r < b->plan.n_reqs; r++)
            due = min64(due, b->reqs[r].next_ms);
        pdm_sampler_wait_until_ms(&b->thread, due);
    }
}

static const char *driver_name(enum pdm_bus_driver d)
{
    return d == PDM_DRIVER_MODBUS_RTU ? "modbus-rtu" : "modbus-tcp";
}

static void bus_free(struct pdm_bus *b)
{
    pdm_plan_free(&b->plan);
    free(b->sensors);
    free(b->reqs);
    free(b->units);
    free(b->buf);
    free(b);
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
    enum pdm_bus_driver drv = cfg->buses[bus].driver;
    if (drv == PDM_DRIVER_SYSFS || drv == PDM_DRIVER_IIO) {
        int rc = pdm_onboard_bus_start(&b->onboard, cfg, bus, q);
        if (rc < 0) {
            free(b);
            return rc;
        }
        *out = b;
        return 0;
    }
    b->cfg = cfg;
    b->bc = &cfg->buses[bus];
    b->q = q;
    const struct pdm_bus_cfg *bc = b->bc;
    int rtu = bc->driver == PDM_DRIVER_MODBUS_RTU;
    b->ops = rtu ? &pdm_driver_modbus_rtu : &pdm_driver_modbus_tcp;
    if (rtu)
        set_text(b->where, sizeof(b->where), bc->device);
    else
        snprintf(b->where, sizeof(b->where), "%s:%d", bc->host, bc->port);
    b->gap_us =
        pdm_frame_gap_us(rtu, bc->baud, bc->data_bits, bc->parity, bc->stop_bits, bc->frame_gap_ms);

    int rc = pdm_plan_for_bus(&b->plan, bc, bus, cfg->sensors, cfg->n_sensors);
    if (rc < 0) {
        pdm_err("bus %s: cannot plan its requests: %s", bc->name, strerror(-rc));
        bus_free(b);
        return rc;
    }
    uint32_t n = b->plan.n_items;
    if (n) {
        b->sensors = calloc(n, sizeof(*b->sensors));
        b->reqs = calloc(b->plan.n_reqs, sizeof(*b->reqs));
        b->units = calloc(n, sizeof(*b->units)); /* at most one unit per sensor */
        b->buf = calloc((size_t)b->plan.max_count, sizeof(*b->buf));
        if (!b->sensors || !b->reqs || !b->units || !b->buf) {
            bus_free(b);
            return -ENOMEM;
        }
    }
    for (uint32_t r = 0; r < b->plan.n_reqs; r++) {
        int id = b->plan.reqs[r].read.unit_id;
        uint32_t u = 0;
        while (u < b->n_units && b->units[u].unit_id != id)
            u++;
        if (u == b->n_units)
            b->units[b->n_units++].unit_id = id;
        b->reqs[r].unit = u;
    }

    if (rtu)
        pdm_info("bus %s (%s %s %d %d%c%d): %u sensors on %u unit ids in %u requests, frame gap "
                 "%.2f ms",
                 bc->name, driver_name(bc->driver), b->where, bc->baud, bc->data_bits, bc->parity,
                 bc->stop_bits, n, b->n_units, b->plan.n_reqs, (double)b->gap_us / 1000.0);
    else
        pdm_info("bus %s (%s %s): %u sensors on %u unit ids in %u requests", bc->name,
                 driver_name(bc->driver), b->where, n, b->n_units, b->plan.n_reqs);
    if (pdm_log_get_level() >= PDM_LOG_DEBUG) {
        char line[512];
        for (uint32_t r = 0; r < b->plan.n_reqs; r++) {
            pdm_plan_format(&b->plan, r, line, sizeof(line));
            pdm_debug("bus %s: %s", bc->name, line);
        }
    }

    rc = pdm_sampler_start(&b->thread, bc->name, bus_main, b);
    if (rc != 0) {
        bus_free(b);
        return rc;
    }
    *out = b;
    return 0;
}

void pdm_bus_stop(struct pdm_bus *b)
{
    if (!b)
        return;
    if (b->onboard) {
        pdm_onboard_bus_stop(b->onboard);
        free(b);
        return;
    }
    pdm_sampler_stop(&b->thread);
    if (b->drv)
        b->ops->close(b->drv);
    bus_free(b);
}
