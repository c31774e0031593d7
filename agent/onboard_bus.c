/* The bus thread for on-board sensors: temperatures from sysfs, vibration features from an IIO
 * accelerometer. See onboard_bus.h; drivers/onboard.h for the drivers.
 *
 * sysfs: every sensor keeps its attribute file open (one pread() per reading) and is read at
 * absolute due times on the monotonic clock, each at its period, missed slots skipped. A failed
 * read is pushed as a failed sample; unless the sensor only said "not ready" (-EAGAIN) the file
 * is closed and looked up again at the next slot, so an hwmon device that came back under a new
 * hwmonN number is found again by its name.
 *
 * iio: the thread captures continuously (buffered: as fast as the kernel fills the buffer;
 * polled: one in_accel_*_raw reading per 1/rate_hz, paced here) and folds every sample into a
 * running window per axis (models/vibration.h: no sample buffer). At the end of each window it
 * pushes one sample per sensor of that axis with its feature. A gap in the stream (timeout, read
 * failure) drops the partial window, so a window never spans a gap. A device that fails or whose
 * stream ends is closed and opened again after 1 s, doubling to 30 s; every attempt in between
 * pushes failed samples, so the main loop sees the sensors fail.
 *
 * Memory, allocated once in pdm_onboard_bus_start: 40 bytes per sensor of the bus; for iio also
 * the read buffer of rate_hz/10 frames (16..4096) of up to 3 doubles, e.g. 3200 Hz on x, y, z:
 * 320 x 3 x 8 = 7.5 KiB, and 72 bytes of window state per axis; the driver adds its own byte
 * buffer of the same number of scans at open (about 2 KiB there). The loops do not allocate. */
#include "onboard_bus.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/clock.h"
#include "config.h"
#include "lib/log.h"
#include "drivers/onboard.h"
#include "drivers/sampler.h"
#include "models/vibration.h"

#define BACKOFF_FIRST_MS 1000  /* iio: first reopen after a failure */
#define BACKOFF_MAX_MS   30000 /* iio: reopen interval cap */
#define ERR_MAX          512   /* driver reasons name whole paths; samples keep 47 chars */

struct ob_sensor {
    uint32_t sensor; /* index into cfg->sensors */
    void *ctx;       /* sysfs: the open attribute; NULL until (re)opened */
    int64_t next_ms; /* sysfs: absolute monotonic due time */
    struct pdm_complaint complaint;
};

struct pdm_onboard_bus {
    struct pdm_sampler thread; /* drivers/sampler.h */

    const struct pdm_config *cfg;
    const struct pdm_bus_cfg *bc;
    struct pdm_queue *q;
    char root[PDM_ONBOARD_PATH_MAX]; /* "" for the real /sys and /dev */

    struct ob_sensor *s;
    uint32_t n;

    /* iio */
    struct pdm_onboard_cfg oc;
    void *dev;
    struct pdm_onboard_info info;
    int ch_of_axis[PDM_ONBOARD_MAX_CH]; /* position of x, y, z in a frame; -1 = not read */
    struct pdm_vib vib[PDM_ONBOARD_MAX_CH];
    double *buf;
    size_t buf_values;
    int64_t period_ms;  /* one window at rate_hz */
    int64_t backoff_ms; /* 0 while the device works */
    int64_t retry_ms;
    int64_t last_data_ms; /* monotonic time of the last samples read */
    int64_t last_fail_ms; /* last failed samples pushed (a timeout repeats them once a window) */
    struct pdm_complaint complaint;
};

static void set_text(char *dst, size_t n, const char *src)
{
    size_t len = strnlen(src, n - 1);
    memcpy(dst, src, len);
    dst[len] = '\0';
}

/* Sleeps until the monotonic time due_ns or pdm_onboard_bus_stop; returns 1 when stopping. */
static int wait_until_ns(struct pdm_onboard_bus *b, int64_t due_ns)
{
    return pdm_sampler_wait_until_ns(&b->thread, due_ns);
}

static int stopping(struct pdm_onboard_bus *b)
{
    return pdm_sampler_stopping(&b->thread);
}

static void push(struct pdm_onboard_bus *b, uint32_t sensor, double value, int32_t err,
                 const char *reason)
{
    const struct pdm_sensor_cfg *sc = &b->cfg->sensors[sensor];
    pdm_sampler_push(b->q, sensor, err ? 0.0 : value * sc->scale + sc->offset, err, reason);
}

/* ---- sysfs ------------------------------------------------------------------------------- */

void pdm_onboard_sysfs_cfg(const struct pdm_bus_cfg *bc, const struct pdm_sensor_cfg *sc,
                           struct pdm_onboard_cfg *oc)
{
    memset(oc, 0, sizeof(*oc));
    /* the bus's root without trailing slashes, as the bus thread uses it */
    size_t rl = strnlen(bc->root, sizeof(oc->root) - 1);
    while (rl > 0 && bc->root[rl - 1] == '/')
        rl--;
    memcpy(oc->root, bc->root, rl);
    switch (sc->source) {
    case PDM_SYSFS_THERMAL:
        oc->source = PDM_ONBOARD_THERMAL;
        break;
    case PDM_SYSFS_FILE:
        oc->source = PDM_ONBOARD_FILE;
        break;
    default:
        oc->source = PDM_ONBOARD_HWMON;
        break;
    }
    _Static_assert(sizeof(oc->path) >= sizeof(sc->path), "path does not fit");
    _Static_assert(sizeof(oc->device) >= sizeof(sc->hwmon), "name does not fit");
    _Static_assert(sizeof(oc->label) >= sizeof(sc->label), "label does not fit");
    memcpy(oc->path, sc->path, sizeof(sc->path));
    memcpy(oc->device, sc->hwmon, sizeof(sc->hwmon));
    memcpy(oc->label, sc->label, sizeof(sc->label));
    oc->index = sc->index;
}

static void sysfs_cfg(const struct pdm_onboard_bus *b, const struct pdm_sensor_cfg *sc,
                      struct pdm_onboard_cfg *oc)
{
    pdm_onboard_sysfs_cfg(b->bc, sc, oc);
}

static void sysfs_step(struct pdm_onboard_bus *b, struct ob_sensor *s)
{
    const struct pdm_sensor_cfg *sc = &b->cfg->sensors[s->sensor];
    char err[ERR_MAX] = "", reason[sizeof(((struct pdm_sample *)0)->reason)];
    int rc;
    const char *stage = "read";
    if (!s->ctx) {
        struct pdm_onboard_cfg oc;
        struct pdm_onboard_info info;
        sysfs_cfg(b, sc, &oc);
        stage = "open";
        rc = pdm_onboard_sysfs.open(&s->ctx, &oc, &info, err, sizeof(err));
        if (rc == 0)
            pdm_info("bus %s: sensor %s reads %s every %d ms", b->bc->name, sc->name, info.where,
                     sc->period_ms);
    } else {
        rc = 0;
    }
    double v = 0;
    if (rc == 0) {
        stage = "read";
        rc = pdm_onboard_sysfs.read(s->ctx, &v, 1, err, sizeof(err));
    }
    if (rc == 1) {
        pdm_release(&s->complaint, "bus %s: sensor %s: reading again", b->bc->name, sc->name);
        push(b, s->sensor, v, 0, "");
        return;
    }
    if (rc != -EAGAIN && s->ctx) {
        pdm_onboard_sysfs.close(s->ctx);
        s->ctx = NULL;
    }
    pdm_complain(&s->complaint, pdm_mono_ms(), "bus %s: sensor %s: %s; trying again every %d ms",
                 b->bc->name, sc->name, err, sc->period_ms);
    snprintf(reason, sizeof(reason), "%s: %s", stage, strerror(-rc));
    push(b, s->sensor, 0, rc, reason);
}

static void sysfs_main(struct pdm_onboard_bus *b)
{
    int64_t start = pdm_mono_ms();
    for (uint32_t i = 0; i < b->n; i++)
        b->s[i].next_ms = start;
    while (!stopping(b)) {
        int64_t now = pdm_mono_ms(), due = INT64_MAX;
        for (uint32_t i = 0; i < b->n; i++) {
            struct ob_sensor *s = &b->s[i];
            int64_t period = b->cfg->sensors[s->sensor].period_ms;
            if (s->next_ms <= now) {
                sysfs_step(b, s);
                now = pdm_mono_ms();
                /* next slot on the sensor's grid strictly after now: missed slots are skipped */
                s->next_ms += period;
                if (s->next_ms <= now)
                    s->next_ms += ((now - s->next_ms) / period + 1) * period;
            }
            if (s->next_ms < due)
                due = s->next_ms;
        }
        if (due == INT64_MAX)
            due = now + 3600 * 1000; /* no sensors: sleep until stopped */
        wait_until_ns(b, due * 1000000);
    }
}

/* ---- iio --------------------------------------------------------------------------------- */

static double feature_of(const struct pdm_vib_features *f, enum pdm_vib_feature k)
{
    switch (k) {
    case PDM_FEAT_PEAK:
        return f->peak;
    case PDM_FEAT_CREST:
        return f->crest;
    case PDM_FEAT_KURTOSIS:
        return f->kurtosis;
    default:
        return f->rms;
    }
}

/* Every sensor of the bus gets the same failure; the partial windows are dropped. */
static void iio_fail_all(struct pdm_onboard_bus *b, int rc, const char *reason)
{
    for (int a = 0; a < PDM_ONBOARD_MAX_CH; a++)
        pdm_vib_reset(&b->vib[a]);
    for (uint32_t i = 0; i < b->n; i++)
        push(b, b->s[i].sensor, 0, rc, reason);
    b->last_fail_ms = pdm_mono_ms();
}

/* The device failed: close it, fail the sensors, reopen after the backoff. */
static void iio_down(struct pdm_onboard_bus *b, int rc, const char *stage, const char *err)
{
    if (b->dev) {
        pdm_onboard_iio.close(b->dev);
        b->dev = NULL;
    }
    int64_t now = pdm_mono_ms();
    b->backoff_ms = b->backoff_ms ? b->backoff_ms * 2 : BACKOFF_FIRST_MS;
    if (b->backoff_ms > BACKOFF_MAX_MS)
        b->backoff_ms = BACKOFF_MAX_MS;
    b->retry_ms = now + b->backoff_ms;
    pdm_complain(&b->complaint, now, "bus %s: %s; opening the device again in %lld s", b->bc->name,
                 err, (long long)(b->backoff_ms + 999) / 1000);
    char reason[sizeof(((struct pdm_sample *)0)->reason)];
    snprintf(reason, sizeof(reason), "%s: %s", stage, strerror(-rc));
    iio_fail_all(b, rc, reason);
}

static void iio_window(struct pdm_onboard_bus *b, int axis, const struct pdm_vib_features *f)
{
    for (uint32_t i = 0; i < b->n; i++) {
        const struct pdm_sensor_cfg *sc = &b->cfg->sensors[b->s[i].sensor];
        if (sc->axis == axis)
            push(b, b->s[i].sensor, feature_of(f, sc->feature), 0, "");
    }
    if (b->backoff_ms) {
        b->backoff_ms = 0;
        pdm_release(&b->complaint, "bus %s: %s delivering samples again", b->bc->name,
                    b->info.where);
    }
}

static void iio_feed(struct pdm_onboard_bus *b, const double *v, size_t n_values)
{
    size_t nch = b->info.n_channels;
    struct pdm_vib_features f;
    for (size_t k = 0; k + nch <= n_values; k += nch)
        for (int a = 0; a < PDM_ONBOARD_MAX_CH; a++)
            if (b->ch_of_axis[a] >= 0 && pdm_vib_push(&b->vib[a], v[k + b->ch_of_axis[a]], &f))
                iio_window(b, a, &f);
}

static int iio_open(struct pdm_onboard_bus *b)
{
    char err[ERR_MAX] = "";
    int rc = pdm_onboard_iio.open(&b->dev, &b->oc, &b->info, err, sizeof(err));
    if (rc < 0) {
        b->dev = NULL;
        iio_down(b, rc, "open", err);
        return rc;
    }
    for (int a = 0; a < PDM_ONBOARD_MAX_CH; a++) {
        b->ch_of_axis[a] = -1;
        for (uint32_t c = 0; c < b->info.n_channels; c++)
            if (b->info.channel[c][0] == 'x' + a)
                b->ch_of_axis[a] = (int)c;
        pdm_vib_reset(&b->vib[a]);
    }
    if (b->info.sample_hz > 0 && b->oc.source == PDM_ONBOARD_IIO_BUFFERED &&
        (b->info.sample_hz < b->bc->rate_hz * 0.98 || b->info.sample_hz > b->bc->rate_hz * 1.02))
        pdm_warn("bus %s: %s runs at %g Hz, not the %d Hz asked for; a window of %d samples "
                 "lasts %.2f s",
                 b->bc->name, b->info.where, b->info.sample_hz, b->bc->rate_hz, b->bc->window,
                 b->bc->window / b->info.sample_hz);
    pdm_info("bus %s: reading %s (%s)", b->bc->name, b->info.where,
             b->oc.source == PDM_ONBOARD_IIO_POLLED ? "polled" : "buffered");
    b->last_data_ms = pdm_mono_ms();
    return 0;
}

static void iio_main(struct pdm_onboard_bus *b)
{
    int polled = b->oc.source == PDM_ONBOARD_IIO_POLLED;
    int64_t tick_ns = 1000000000LL / b->bc->rate_hz, next_ns = pdm_mono_ns();
    b->retry_ms = pdm_mono_ms();
    while (!stopping(b)) {
        if (!b->dev) {
            if (wait_until_ns(b, b->retry_ms * 1000000))
                break;
            if (iio_open(b) < 0)
                continue;
            next_ns = pdm_mono_ns();
        }
        if (polled) {
            if (wait_until_ns(b, next_ns))
                break;
            int64_t now = pdm_mono_ns();
            next_ns += tick_ns;
            if (next_ns <= now) /* late: skip the missed ticks rather than burst */
                next_ns += ((now - next_ns) / tick_ns + 1) * tick_ns;
        }
        char err[ERR_MAX] = "";
        int rc = pdm_onboard_iio.read(b->dev, b->buf, b->buf_values, err, sizeof(err));
        int64_t now = pdm_mono_ms();
        if (rc > 0) {
            b->last_data_ms = now;
            iio_feed(b, b->buf, (size_t)rc);
        } else if (rc == -EAGAIN) {
            continue; /* incomplete scan or no conversion yet: nothing lost */
        } else if (rc == -ETIMEDOUT) {
            /* a silent device: say so once a window, keep waiting on the open device */
            if (now - b->last_data_ms >= b->period_ms && now - b->last_fail_ms >= b->period_ms) {
                pdm_complain(&b->complaint, now, "bus %s: %s", b->bc->name, err);
                if (!b->backoff_ms)
                    b->backoff_ms = BACKOFF_FIRST_MS; /* so the recovery is logged */
                iio_fail_all(b, rc, "no samples from the device");
            }
        } else {
            iio_down(b, rc, rc == -ENODATA ? "stream ended" : "read", err);
        }
    }
}

/* ---- thread ------------------------------------------------------------------------------ */

static void onboard_main(void *arg)
{
    struct pdm_onboard_bus *b = arg;
    if (b->bc->driver == PDM_DRIVER_IIO)
        iio_main(b);
    else
        sysfs_main(b);
}

static void ob_free(struct pdm_onboard_bus *b)
{
    free(b->s);
    free(b->buf);
    free(b);
}

int pdm_onboard_bus_start(struct pdm_onboard_bus **out, const struct pdm_config *cfg, uint32_t bus,
                          struct pdm_queue *q)
{
    *out = NULL;
    if (bus >= cfg->n_buses)
        return -EINVAL;
    const struct pdm_bus_cfg *bc = &cfg->buses[bus];
    if (bc->driver != PDM_DRIVER_SYSFS && bc->driver != PDM_DRIVER_IIO)
        return -EINVAL;
    struct pdm_onboard_bus *b = calloc(1, sizeof(*b));
    if (!b)
        return -ENOMEM;
    b->cfg = cfg;
    b->bc = bc;
    b->q = q;
    /* "/" and "" both mean the real system; the drivers put root in front of /sys/... */
    size_t rl = strnlen(bc->root, sizeof(b->root) - 1);
    while (rl > 0 && bc->root[rl - 1] == '/')
        rl--;
    memcpy(b->root, bc->root, rl);

    for (uint32_t i = 0; i < cfg->n_sensors; i++)
        b->n += cfg->sensors[i].bus == bus;
    if (b->n && !(b->s = calloc(b->n, sizeof(*b->s)))) {
        ob_free(b);
        return -ENOMEM;
    }
    unsigned axes = 0;
    for (uint32_t i = 0, k = 0; i < cfg->n_sensors; i++) {
        if (cfg->sensors[i].bus != bus)
            continue;
        b->s[k++].sensor = i;
        axes |= 1u << cfg->sensors[i].axis;
    }

    if (bc->driver == PDM_DRIVER_IIO) {
        struct pdm_onboard_cfg *oc = &b->oc;
        oc->source = bc->mode == PDM_IIO_POLLED ? PDM_ONBOARD_IIO_POLLED : PDM_ONBOARD_IIO_BUFFERED;
        memcpy(oc->root, b->root, sizeof(oc->root));
        set_text(oc->device, sizeof(oc->device), bc->iio_name);
        oc->index = bc->iio_index < 0 ? 0 : bc->iio_index;
        oc->axes = b->n ? axes : 1u; /* a bus without sensors still proves the device works */
        oc->sampling_hz = bc->rate_hz;
        oc->timeout_ms = bc->timeout_ms;
        uint32_t frames = (uint32_t)bc->rate_hz / 10; /* about 100 ms of samples per read */
        frames = frames < 16 ? 16 : frames > 4096 ? 4096 : frames;
        oc->buffer_frames = frames;
        if (oc->source == PDM_ONBOARD_IIO_POLLED)
            frames = 1;
        b->buf_values = (size_t)frames * PDM_ONBOARD_MAX_CH;
        b->period_ms = ((int64_t)bc->window * 1000 + bc->rate_hz / 2) / bc->rate_hz;
        if (b->period_ms < 1)
            b->period_ms = 1;
        for (int a = 0; a < PDM_ONBOARD_MAX_CH; a++) {
            b->ch_of_axis[a] = -1;
            pdm_vib_init(&b->vib[a], (uint32_t)bc->window);
        }
        if (!(b->buf = calloc(b->buf_values, sizeof(*b->buf)))) {
            ob_free(b);
            return -ENOMEM;
        }
        char axes_txt[8] = "";
        for (int a = 0, n = 0; a < PDM_ONBOARD_MAX_CH; a++)
            if (oc->axes & (1u << a))
                axes_txt[n++] = (char)('x' + a);
        char dev[80];
        if (bc->iio_name[0])
            snprintf(dev, sizeof(dev), "device %s", bc->iio_name);
        else
            snprintf(dev, sizeof(dev), "iio:device%d", oc->index);
        pdm_info("bus %s (iio %s, %s at %d Hz): %u sensors on axes %s, window %d samples "
                 "(%.2f s), %zu bytes of read buffer",
                 bc->name, oc->source == PDM_ONBOARD_IIO_POLLED ? "polled" : "buffered", dev,
                 bc->rate_hz, b->n, axes_txt, bc->window, (double)bc->window / bc->rate_hz,
                 b->buf_values * sizeof(double));
    } else {
        pdm_info("bus %s (sysfs%s%s): %u sensors", bc->name, b->root[0] ? " under " : "", b->root,
                 b->n);
    }

    int rc = pdm_sampler_start(&b->thread, bc->name, onboard_main, b);
    if (rc != 0) {
        ob_free(b);
        return rc;
    }
    *out = b;
    return 0;
}

void pdm_onboard_bus_stop(struct pdm_onboard_bus *b)
{
    if (!b)
        return;
    pdm_sampler_stop(&b->thread);
    for (uint32_t i = 0; i < b->n; i++)
        pdm_onboard_sysfs.close(b->s[i].ctx);
    pdm_onboard_iio.close(b->dev); /* disables the buffer it enabled */
    ob_free(b);
}
