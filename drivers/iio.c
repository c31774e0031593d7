/* An accelerometer through the Linux IIO interface (Documentation/ABI/testing/sysfs-bus-iio).
 *
 * Buffered mode (the normal one for vibration): the chosen in_accel_{x,y,z} scan elements are
 * enabled, every other one disabled, buffer/length set and buffer/enable written; the kernel
 * then fills /dev/iio:deviceN with scans at sampling_frequency. A scan holds the enabled
 * elements in _index order, each aligned to its own storage size, the scan padded to the
 * largest one (the kernel's iio_compute_scan_bytes). Each element is decoded by its _type
 * (endianness, sign, valid bits, storage bits, shift) and converted per the ABI:
 * value = (raw + offset) * scale, in m/s^2.
 *
 * Polled mode: one pread() of each in_accel_*_raw per read(); for slow boards or drivers
 * without a buffer. Rate limited by the caller's schedule and the driver's bus speed.
 *
 * Memory: the context plus buffer_frames scans of bytes, allocated at open(); read() does not
 * allocate. */
#include "onboard.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define IIO_DEFAULT_FRAMES  256  /* scans */
#define IIO_DEFAULT_TIMEOUT 1000 /* ms */
#define IIO_MAX_ELEMENTS    16   /* scan elements considered for the layout */

/* ---- scan element types -------------------------------------------------------------------- */

static int parse_uint(const char **s, unsigned *out)
{
    char *end;
    if (**s < '0' || **s > '9')
        return -EINVAL;
    unsigned long v = strtoul(*s, &end, 10);
    if (v > 1024)
        return -EINVAL;
    *out = (unsigned)v;
    *s = end;
    return 0;
}

int pdm_iio_parse_type(const char *s, struct pdm_iio_type *t)
{
    memset(t, 0, sizeof(*t));
    t->repeat = 1;
    if (strncmp(s, "le:", 3) == 0)
        t->big_endian = 0;
    else if (strncmp(s, "be:", 3) == 0)
        t->big_endian = 1;
    else
        return -EINVAL;
    s += 3;
    if (*s == 's' || *s == 'S')
        t->is_signed = 1;
    else if (*s == 'u' || *s == 'U')
        t->is_signed = 0;
    else
        return -EINVAL;
    s++;
    if (parse_uint(&s, &t->bits) != 0 || *s++ != '/' || parse_uint(&s, &t->storage) != 0)
        return -EINVAL;
    if (*s == 'X') {
        s++;
        if (parse_uint(&s, &t->repeat) != 0 || t->repeat == 0)
            return -EINVAL;
    }
    if (s[0] != '>' || s[1] != '>')
        return -EINVAL;
    s += 2;
    if (parse_uint(&s, &t->shift) != 0)
        return -EINVAL;
    while (*s == '\n' || *s == ' ')
        s++;
    if (*s != '\0')
        return -EINVAL;
    if (t->storage != 8 && t->storage != 16 && t->storage != 32 && t->storage != 64)
        return -EINVAL;
    if (t->bits == 0 || t->bits > t->storage || t->shift + t->bits > t->storage)
        return -EINVAL;
    return 0;
}

int64_t pdm_iio_decode(const uint8_t *p, const struct pdm_iio_type *t)
{
    unsigned nb = t->storage / 8;
    uint64_t v = 0;
    for (unsigned i = 0; i < nb; i++)
        v |= (uint64_t)p[t->big_endian ? i : nb - 1 - i] << (8 * (nb - 1 - i));
    v >>= t->shift;
    if (t->bits < 64) {
        v &= ((uint64_t)1 << t->bits) - 1;
        if (t->is_signed && (v >> (t->bits - 1)) & 1)
            v |= ~(uint64_t)0 << t->bits;
    }
    return (int64_t)v;
}

/* ---- context ------------------------------------------------------------------------------- */

struct iio_ctx {
    enum pdm_onboard_source source;
    char dir[PDM_ONBOARD_PATH_MAX]; /* the device's sysfs folder */
    char dev[PDM_ONBOARD_PATH_MAX]; /* /dev/iio:deviceN */
    uint32_t n_ch;
    char axis[PDM_ONBOARD_MAX_CH]; /* 'x', 'y', 'z' per channel, for messages */
    double scale[PDM_ONBOARD_MAX_CH], offset[PDM_ONBOARD_MAX_CH];
    /* polled */
    int raw_fd[PDM_ONBOARD_MAX_CH];
    /* buffered */
    int fd, enabled;
    struct pdm_iio_type type[PDM_ONBOARD_MAX_CH];
    size_t at[PDM_ONBOARD_MAX_CH]; /* byte offset of each channel in a scan */
    size_t scan_bytes;
    uint8_t *buf;
    size_t cap, have; /* bytes: capacity, and bytes of an incomplete scan kept from last read */
    int timeout_ms;
};

static const char axis_name[PDM_ONBOARD_MAX_CH] = {'x', 'y', 'z'};

static void iio_close(void *vctx)
{
    struct iio_ctx *c = vctx;
    if (!c)
        return;
    if (c->fd >= 0)
        close(c->fd);
    if (c->enabled) {
        /* Stop the capture we started so the device is left as found; nothing to do on failure,
         * the next open() writes 0 first anyway. */
        char p[PDM_ONBOARD_PATH_MAX + 32];
        snprintf(p, sizeof(p), "%s/buffer/enable", c->dir);
        (void)pdm_onboard_write_attr(p, "0");
    }
    for (uint32_t i = 0; i < PDM_ONBOARD_MAX_CH; i++)
        if (c->raw_fd[i] >= 0)
            close(c->raw_fd[i]);
    free(c->buf);
    free(c);
}

/* attribute of the device folder into buf; 0 or -errno */
static int attr(const struct iio_ctx *c, const char *name, char *buf, size_t buflen)
{
    char p[PDM_ONBOARD_PATH_MAX + 64];
    if (snprintf(p, sizeof(p), "%s/%s", c->dir, name) >= (int)sizeof(p))
        return -ENAMETOOLONG;
    return pdm_onboard_read_attr(p, buf, buflen);
}

static int attr_double(const struct iio_ctx *c, const char *name, double *out)
{
    char buf[64], *end;
    int rc = attr(c, name, buf, sizeof(buf));
    if (rc != 0)
        return rc;
    errno = 0;
    double v = strtod(buf, &end);
    if (errno != 0 || end == buf || *end != '\0' || !isfinite(v))
        return -EBADMSG;
    *out = v;
    return 0;
}

/* Finds the device folder and its /dev node: cfg->path, or by `name`, or by index. */
static int find_device(struct iio_ctx *c, const struct pdm_onboard_cfg *cfg, char *err,
                       size_t errlen)
{
    char base[PDM_ONBOARD_PATH_MAX];
    const char *leaf = NULL;
    if (cfg->path[0]) {
        if (pdm_onboard_path(c->dir, sizeof(c->dir), cfg->root, cfg->path) != 0)
            goto toolong;
        leaf = strrchr(c->dir, '/');
        leaf = leaf ? leaf + 1 : c->dir;
    } else {
        if (pdm_onboard_path(base, sizeof(base), cfg->root, "/sys/bus/iio/devices") != 0)
            goto toolong;
        DIR *d = opendir(base);
        if (!d) {
            int e = -errno;
            snprintf(err, errlen, "%s: %s (no IIO support on this board?)", base, strerror(-e));
            return e;
        }
        long best = -1;
        char seen[160] = "";
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            char *end;
            if (strncmp(de->d_name, "iio:device", 10) != 0)
                continue;
            long n = strtol(de->d_name + 10, &end, 10);
            if (end == de->d_name + 10 || *end != '\0')
                continue;
            int match = 0;
            if (cfg->device[0]) {
                char p[PDM_ONBOARD_PATH_MAX + 64], name[PDM_ONBOARD_NAME_MAX];
                if (snprintf(p, sizeof(p), "%s/%s/name", base, de->d_name) >= (int)sizeof(p) ||
                    pdm_onboard_read_attr(p, name, sizeof(name)) != 0)
                    continue;
                match = strcmp(name, cfg->device) == 0;
                size_t sl = strlen(seen);
                if (!match && sl + strlen(name) + 3 < sizeof(seen))
                    snprintf(seen + sl, sizeof(seen) - sl, "%s%s", sl ? ", " : "", name);
            } else {
                match = n == cfg->index;
            }
            if (match && (best < 0 || n < best))
                best = n;
        }
        closedir(d);
        if (best < 0) {
            if (cfg->device[0])
                snprintf(err, errlen, "%s: no iio:deviceN named '%s' (found: %s)", base,
                         cfg->device, seen[0] ? seen : "none");
            else
                snprintf(err, errlen, "%s/iio:device%d: no such device", base, cfg->index);
            return -ENOENT;
        }
        if (snprintf(c->dir, sizeof(c->dir), "%s/iio:device%ld", base, best) >= (int)sizeof(c->dir))
            goto toolong;
        leaf = strrchr(c->dir, '/') + 1;
    }
    char devpath[PDM_ONBOARD_PATH_MAX];
    if (snprintf(devpath, sizeof(devpath), "/dev/%s", leaf) >= (int)sizeof(devpath) ||
        pdm_onboard_path(c->dev, sizeof(c->dev), cfg->root, devpath) != 0)
        goto toolong;
    return 0;
toolong:
    snprintf(err, errlen, "iio: path too long under '%s'", cfg->root);
    return -ENAMETOOLONG;
}

/* in_accel_X_scale or the shared in_accel_scale (required); the same for _offset (optional). */
static int read_calibration(struct iio_ctx *c, int ch, int axis, char *err, size_t errlen)
{
    char name[64];
    snprintf(name, sizeof(name), "in_accel_%c_scale", axis_name[axis]);
    int rc = attr_double(c, name, &c->scale[ch]);
    if (rc == -ENOENT)
        rc = attr_double(c, "in_accel_scale", &c->scale[ch]);
    if (rc != 0) {
        snprintf(err, errlen, "%s: cannot read in_accel_%c_scale or in_accel_scale: %s", c->dir,
                 axis_name[axis], rc == -EBADMSG ? "not a number" : strerror(-rc));
        return rc;
    }
    c->offset[ch] = 0.0;
    snprintf(name, sizeof(name), "in_accel_%c_offset", axis_name[axis]);
    rc = attr_double(c, name, &c->offset[ch]);
    if (rc == -ENOENT)
        rc = attr_double(c, "in_accel_offset", &c->offset[ch]);
    if (rc != 0 && rc != -ENOENT) {
        snprintf(err, errlen, "%s: cannot read the offset of axis %c: %s", c->dir, axis_name[axis],
                 rc == -EBADMSG ? "not a number" : strerror(-rc));
        return rc;
    }
    return 0;
}

static int write_dev_attr(struct iio_ctx *c, const char *name, const char *val, char *err,
                          size_t errlen)
{
    char p[PDM_ONBOARD_PATH_MAX + 64];
    snprintf(p, sizeof(p), "%s/%s", c->dir, name);
    int rc = pdm_onboard_write_attr(p, val);
    if (rc != 0)
        snprintf(err, errlen, "%s: cannot write '%s': %s", p, val, strerror(-rc));
    return rc;
}

struct element {
    long index;
    struct pdm_iio_type type;
    int ch; /* our channel, or -1 for an element we could not disable (e.g. a timestamp) */
};

static int cmp_element(const void *a, const void *b)
{
    const struct element *x = a, *y = b;
    return x->index < y->index ? -1 : x->index > y->index;
}

/* Enables our axes, disables everything else, and computes the scan layout. */
static int setup_scan(struct iio_ctx *c, const int *axis_of_ch, char *err, size_t errlen)
{
    char sd[PDM_ONBOARD_PATH_MAX + 32];
    snprintf(sd, sizeof(sd), "%s/scan_elements", c->dir);
    DIR *d = opendir(sd);
    if (!d) {
        int e = -errno;
        snprintf(err, errlen, "%s: %s (the driver has no buffer; use polled mode)", sd,
                 strerror(-e));
        return e;
    }
    struct element el[IIO_MAX_ELEMENTS];
    int n_el = 0, rc = 0, found[PDM_ONBOARD_MAX_CH] = {0};
    struct dirent *de;
    while ((de = readdir(d)) != NULL && rc == 0) {
        size_t len = strlen(de->d_name);
        if (len < 4 || strcmp(de->d_name + len - 3, "_en") != 0)
            continue;
        char stem[PDM_ONBOARD_NAME_MAX], p[PDM_ONBOARD_PATH_MAX + 128], v[32];
        if (len - 3 >= sizeof(stem))
            continue;
        memcpy(stem, de->d_name, len - 3);
        stem[len - 3] = '\0';
        int ch = -1;
        for (uint32_t i = 0; i < c->n_ch; i++) {
            char want[32];
            snprintf(want, sizeof(want), "in_accel_%c", axis_name[axis_of_ch[i]]);
            if (strcmp(stem, want) == 0)
                ch = (int)i;
        }
        if (snprintf(p, sizeof(p), "%s/%s", sd, de->d_name) >= (int)sizeof(p))
            continue;
        rc = pdm_onboard_write_attr(p, ch >= 0 ? "1" : "0");
        if (rc != 0) {
            snprintf(err, errlen, "%s: cannot write: %s", p, strerror(-rc));
            break;
        }
        /* read back: some elements cannot be turned off and still take space in a scan */
        if ((rc = pdm_onboard_read_attr(p, v, sizeof(v))) != 0) {
            snprintf(err, errlen, "%s: cannot read back: %s", p, strerror(-rc));
            break;
        }
        if (strcmp(v, "1") != 0) {
            if (ch >= 0) {
                snprintf(err, errlen, "%s: the driver refused to enable it", p);
                rc = -EIO;
            }
            continue;
        }
        if (n_el == IIO_MAX_ELEMENTS) {
            snprintf(err, errlen, "%s: more than %d enabled scan elements", sd, IIO_MAX_ELEMENTS);
            rc = -E2BIG;
            break;
        }
        struct element *e = &el[n_el++];
        e->ch = ch;
        long long idx;
        snprintf(p, sizeof(p), "%s/%s_index", sd, stem);
        if ((rc = pdm_onboard_read_attr(p, v, sizeof(v))) != 0 ||
            (rc = pdm_onboard_parse_long(v, &idx)) != 0) {
            snprintf(err, errlen, "%s: %s", p, rc == -EBADMSG ? "not an integer" : strerror(-rc));
            break;
        }
        e->index = (long)idx;
        snprintf(p, sizeof(p), "%s/%s_type", sd, stem);
        if ((rc = pdm_onboard_read_attr(p, v, sizeof(v))) != 0) {
            snprintf(err, errlen, "%s: %s", p, strerror(-rc));
            break;
        }
        if ((rc = pdm_iio_parse_type(v, &e->type)) != 0) {
            snprintf(err, errlen, "%s: cannot parse '%s' (expected like le:s16/16>>0)", p, v);
            rc = -EBADMSG;
            break;
        }
        if (ch >= 0) {
            if (e->type.repeat != 1) {
                snprintf(err, errlen, "%s: repeated element '%s' is not supported", p, v);
                rc = -ENOTSUP;
                break;
            }
            found[ch] = 1;
        }
    }
    closedir(d);
    if (rc != 0)
        return rc;
    for (uint32_t i = 0; i < c->n_ch; i++) {
        if (!found[i]) {
            snprintf(err, errlen, "%s: no in_accel_%c_en: the device has no such axis", sd,
                     axis_name[axis_of_ch[i]]);
            return -ENOENT;
        }
    }
    qsort(el, (size_t)n_el, sizeof(el[0]), cmp_element);
    size_t off = 0, largest = 1;
    for (int i = 0; i < n_el; i++) {
        size_t len = el[i].type.storage / 8 * el[i].type.repeat;
        off = (off + len - 1) / len * len;
        if (el[i].ch >= 0) {
            c->type[el[i].ch] = el[i].type;
            c->at[el[i].ch] = off;
        }
        off += len;
        if (len > largest)
            largest = len;
    }
    c->scan_bytes = (off + largest - 1) / largest * largest;
    return 0;
}

static int iio_open(void **ctx, const struct pdm_onboard_cfg *cfg, struct pdm_onboard_info *info,
                    char *err, size_t errlen)
{
    *ctx = NULL;
    if (cfg->source != PDM_ONBOARD_IIO_BUFFERED && cfg->source != PDM_ONBOARD_IIO_POLLED) {
        snprintf(err, errlen, "iio: source %d is neither buffered nor polled", (int)cfg->source);
        return -EINVAL;
    }
    unsigned axes = cfg->axes ? cfg->axes : 7u;
    if (axes & ~7u) {
        snprintf(err, errlen, "iio: axes mask 0x%x: only x (1), y (2), z (4)", axes);
        return -EINVAL;
    }
    struct iio_ctx *c = calloc(1, sizeof(*c));
    if (!c) {
        snprintf(err, errlen, "iio: out of memory");
        return -ENOMEM;
    }
    c->fd = -1;
    for (int i = 0; i < PDM_ONBOARD_MAX_CH; i++)
        c->raw_fd[i] = -1;
    c->source = cfg->source;
    c->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : IIO_DEFAULT_TIMEOUT;
    int axis_of_ch[PDM_ONBOARD_MAX_CH];
    memset(info, 0, sizeof(*info));
    for (int a = 0; a < PDM_ONBOARD_MAX_CH; a++) {
        if (axes & (1u << a)) {
            axis_of_ch[c->n_ch] = a;
            c->axis[c->n_ch] = axis_name[a];
            snprintf(info->channel[c->n_ch], sizeof(info->channel[0]), "%c", axis_name[a]);
            c->n_ch++;
        }
    }
    int rc = find_device(c, cfg, err, errlen);
    for (uint32_t i = 0; rc == 0 && i < c->n_ch; i++)
        rc = read_calibration(c, (int)i, axis_of_ch[i], err, errlen);
    if (rc != 0)
        goto fail;

    double hz = 0;
    if (cfg->sampling_hz > 0) {
        char v[32];
        snprintf(v, sizeof(v), "%g", cfg->sampling_hz);
        const char *name = "sampling_frequency";
        if (attr_double(c, name, &hz) == -ENOENT)
            name = "in_accel_sampling_frequency";
        if ((rc = write_dev_attr(c, name, v, err, errlen)) != 0)
            goto fail;
    }
    if (attr_double(c, "sampling_frequency", &hz) != 0 &&
        attr_double(c, "in_accel_sampling_frequency", &hz) != 0)
        hz = 0; /* unknown: the caller paces polled reads; buffered rate is the driver's */

    if (c->source == PDM_ONBOARD_IIO_POLLED) {
        for (uint32_t i = 0; i < c->n_ch; i++) {
            char p[PDM_ONBOARD_PATH_MAX + 32];
            snprintf(p, sizeof(p), "%s/in_accel_%c_raw", c->dir, axis_name[axis_of_ch[i]]);
            c->raw_fd[i] = open(p, O_RDONLY | O_CLOEXEC);
            if (c->raw_fd[i] < 0) {
                rc = -errno;
                snprintf(err, errlen, "%s: %s", p, strerror(-rc));
                goto fail;
            }
        }
        info->sample_hz = 0;
        info->max_frames = 1;
        snprintf(info->where, sizeof(info->where), "%s", c->dir);
    } else {
        uint32_t frames = cfg->buffer_frames ? cfg->buffer_frames : IIO_DEFAULT_FRAMES;
        char v[32];
        /* a buffer left enabled (by us before a crash, or another tool) locks the scan setup */
        if ((rc = write_dev_attr(c, "buffer/enable", "0", err, errlen)) != 0)
            goto fail;
        if ((rc = setup_scan(c, axis_of_ch, err, errlen)) != 0)
            goto fail;
        snprintf(v, sizeof(v), "%u", frames);
        if ((rc = write_dev_attr(c, "buffer/length", v, err, errlen)) != 0)
            goto fail;
        c->cap = c->scan_bytes * frames;
        c->buf = malloc(c->cap);
        if (!c->buf) {
            snprintf(err, errlen, "iio: out of memory for %zu bytes of samples", c->cap);
            rc = -ENOMEM;
            goto fail;
        }
        c->fd = open(c->dev, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
        if (c->fd < 0) {
            rc = -errno;
            snprintf(err, errlen, "%s: %s", c->dev, strerror(-rc));
            goto fail;
        }
        if ((rc = write_dev_attr(c, "buffer/enable", "1", err, errlen)) != 0)
            goto fail;
        c->enabled = 1;
        info->sample_hz = hz;
        info->max_frames = frames;
        snprintf(info->where, sizeof(info->where), "%s", c->dev);
    }
    info->n_channels = c->n_ch;
    info->unit = "m/s2";
    *ctx = c;
    return 0;
fail:
    iio_close(c);
    return rc;
}

static int read_polled(struct iio_ctx *c, double *out, char *err, size_t errlen)
{
    for (uint32_t i = 0; i < c->n_ch; i++) {
        char buf[32];
        ssize_t n = pread(c->raw_fd[i], buf, sizeof(buf) - 1, 0);
        if (n < 0) {
            int e = errno;
            snprintf(err, errlen, "%s/in_accel_%c_raw: read failed: %s; trying again", c->dir,
                     c->axis[i], strerror(e));
            return e == ENODATA ? -EAGAIN : -e;
        }
        buf[n] = '\0';
        long long raw;
        if (pdm_onboard_parse_long(buf, &raw) != 0) {
            buf[strcspn(buf, "\n")] = '\0';
            snprintf(err, errlen, "%s/in_accel_%c_raw: '%s' is not an integer", c->dir, c->axis[i],
                     buf);
            return -EBADMSG;
        }
        out[i] = ((double)raw + c->offset[i]) * c->scale[i];
    }
    return (int)c->n_ch;
}

static int read_buffered(struct iio_ctx *c, double *out, size_t max, char *err, size_t errlen)
{
    size_t frames = max / c->n_ch;
    if (frames > c->cap / c->scan_bytes)
        frames = c->cap / c->scan_bytes;
    size_t want = frames * c->scan_bytes;
    if (c->have < c->scan_bytes) {
        struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
        int pr;
        do
            pr = poll(&pfd, 1, c->timeout_ms);
        while (pr < 0 && errno == EINTR);
        if (pr < 0) {
            int e = errno;
            snprintf(err, errlen, "%s: poll: %s", c->dev, strerror(e));
            return -e;
        }
        if (pr == 0) {
            snprintf(err, errlen, "%s: no samples within %d ms (is the sensor's trigger running?)",
                     c->dev, c->timeout_ms);
            return -ETIMEDOUT;
        }
    }
    if (want > c->have) {
        ssize_t n = read(c->fd, c->buf + c->have, want - c->have);
        if (n < 0) {
            int e = errno;
            if (e == EAGAIN || e == EINTR) {
                if (c->have < c->scan_bytes) {
                    snprintf(err, errlen, "%s: no samples yet", c->dev);
                    return -EAGAIN;
                }
            } else {
                snprintf(err, errlen, "%s: read failed: %s", c->dev, strerror(e));
                return -e;
            }
        } else if (n == 0 && c->have < c->scan_bytes) {
            snprintf(err, errlen, "%s: end of the sample stream%s", c->dev,
                     c->have ? " (an incomplete scan was dropped)" : "");
            c->have = 0;
            return -ENODATA;
        } else {
            c->have += (size_t)n;
        }
    }
    size_t got = c->have / c->scan_bytes;
    if (got > frames)
        got = frames;
    if (got == 0) {
        snprintf(err, errlen, "%s: incomplete scan, waiting for the rest", c->dev);
        return -EAGAIN;
    }
    for (size_t f = 0; f < got; f++) {
        const uint8_t *scan = c->buf + f * c->scan_bytes;
        for (uint32_t i = 0; i < c->n_ch; i++) {
            int64_t raw = pdm_iio_decode(scan + c->at[i], &c->type[i]);
            out[f * c->n_ch + i] = ((double)raw + c->offset[i]) * c->scale[i];
        }
    }
    size_t used = got * c->scan_bytes;
    memmove(c->buf, c->buf + used, c->have - used);
    c->have -= used;
    return (int)(got * c->n_ch);
}

static int iio_read(void *vctx, double *out, size_t max, char *err, size_t errlen)
{
    struct iio_ctx *c = vctx;
    if (max < c->n_ch) {
        snprintf(err, errlen, "iio: room for %zu values, a frame needs %u", max, c->n_ch);
        return -ENOSPC;
    }
    if (c->source == PDM_ONBOARD_IIO_POLLED)
        return read_polled(c, out, err, errlen);
    return read_buffered(c, out, max, err, errlen);
}

const struct pdm_onboard_ops pdm_onboard_iio = {
    .name = "iio",
    .open = iio_open,
    .read = iio_read,
    .close = iio_close,
};
