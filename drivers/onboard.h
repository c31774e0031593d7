/* On-board Linux sensors: temperatures from sysfs (hwmon, thermal zones) and an accelerometer
 * through the Linux IIO interface. They are not register based, so they sit behind a small ops
 * table of their own rather than driver.h's.
 *
 * Ownership: an instance is owned by one thread (a bus-like thread): open() once, read() on the
 * thread's schedule, close() at the end. Calls return 0 / a count or a negative errno and write a
 * short reason, naming the file, into err. Memory: sysfs holds one open file (no buffer); iio
 * allocates one byte buffer of buffer_frames scans at open() (e.g. 256 frames x 8 bytes = 2 KB)
 * and nothing after.
 *
 * Paths: every absolute path (/sys/..., /dev/...) is prefixed with cfg->root, "" on a real
 * system; tests point it at a fake tree in a temporary folder. */
#ifndef PDM_ONBOARD_H
#define PDM_ONBOARD_H

#include <stddef.h>
#include <stdint.h>

#define PDM_ONBOARD_PATH_MAX 256
#define PDM_ONBOARD_NAME_MAX 64
#define PDM_ONBOARD_MAX_CH   3       /* accelerometer axes x, y, z */
#define PDM_STANDARD_GRAVITY 9.80665 /* m/s^2 per g */

enum pdm_onboard_source {
    /* sysfs */
    PDM_ONBOARD_HWMON,   /* /sys/class/hwmon/hwmonN whose `name` is cfg->device; the tempM
                            whose tempM_label is cfg->label, else tempM with M = cfg->index */
    PDM_ONBOARD_THERMAL, /* /sys/class/thermal/thermal_zoneN whose `type` is cfg->device, else
                            N = cfg->index */
    PDM_ONBOARD_FILE,    /* cfg->path: one file holding millidegrees C (e.g. a tempM_input) */
    /* iio */
    PDM_ONBOARD_IIO_BUFFERED, /* samples from /dev/iio:deviceN at the device's rate */
    PDM_ONBOARD_IIO_POLLED,   /* one in_accel_*_raw reading per read() call */
};

struct pdm_onboard_cfg {
    enum pdm_onboard_source source;
    char root[PDM_ONBOARD_PATH_MAX];   /* prefix for /sys and /dev; "" on a real system */
    char path[PDM_ONBOARD_PATH_MAX];   /* FILE: the file; iio: the device folder, optional */
    char device[PDM_ONBOARD_NAME_MAX]; /* hwmon `name`, thermal `type`, iio `name` */
    char label[PDM_ONBOARD_NAME_MAX];  /* hwmon tempM_label, optional */
    int index;                         /* hwmon tempM (1..); thermal zone or iio:deviceN when
                                          device is "" */
    /* iio */
    unsigned axes;          /* bit 0 x, bit 1 y, bit 2 z; 0 = all three */
    double sampling_hz;     /* written to sampling_frequency when > 0; 0 = leave as is */
    uint32_t buffer_frames; /* kernel buffer/length and our read buffer, in scans; 0 = 256 */
    int timeout_ms;         /* longest a read() waits for buffered samples; 0 = 1000 */
};

struct pdm_onboard_info {
    uint32_t n_channels; /* values per frame: 1 for a temperature, one per axis for iio */
    char channel[PDM_ONBOARD_MAX_CH][8]; /* "temp", or "x", "y", "z" */
    const char *unit;                    /* "degC" or "m/s2" (the IIO ABI unit; divide by
                                            PDM_STANDARD_GRAVITY for g) */
    double sample_hz;                 /* per channel for buffered iio; 0 when paced by the caller */
    uint32_t max_frames;              /* most frames one read() returns */
    char where[PDM_ONBOARD_PATH_MAX]; /* the resolved file or device, for logs */
};

struct pdm_onboard_ops {
    const char *name; /* "sysfs", "iio" */
    /* Finds the sensor, checks it can be read, fills info. On failure nothing stays open. */
    int (*open)(void **ctx, const struct pdm_onboard_cfg *cfg, struct pdm_onboard_info *info,
                char *err, size_t errlen);
    /* Reads whole frames, channel values interleaved (x0 y0 z0 x1 ...), into out[0..max).
     * Returns the number of VALUES written (a multiple of n_channels, >= n_channels), or
     * -EAGAIN (nothing yet, try again), -ETIMEDOUT (buffered: nothing within timeout_ms),
     * -ENODATA (the stream ended), -EIO / -ENODEV (driver failure), -EBADMSG (unreadable
     * content), -ENOSPC (max < n_channels). sysfs returns one value in degC. */
    int (*read)(void *ctx, double *out, size_t max, char *err, size_t errlen);
    void (*close)(void *ctx); /* NULL-safe; iio disables the buffer it enabled */
};

extern const struct pdm_onboard_ops pdm_onboard_sysfs;
extern const struct pdm_onboard_ops pdm_onboard_iio;

/* ---- IIO scan elements, exposed for tests and for pdmctl ----------------------------------- */

/* One channel's `*_type`, e.g. "le:s12/16>>4" or "be:u16/16>>0" or "le:s16/16X2>>0". */
struct pdm_iio_type {
    int big_endian, is_signed;
    unsigned bits;    /* valid bits, 1..64 */
    unsigned storage; /* storage bits: 8, 16, 32 or 64 */
    unsigned shift;   /* right shift before masking */
    unsigned repeat;  /* 1 unless "X<n>" */
};

/* Parses a scan element type; 0 or -EINVAL. */
int pdm_iio_parse_type(const char *s, struct pdm_iio_type *t);
/* Decodes one stored value at p (storage/8 bytes): shift, mask to bits, sign-extend. */
int64_t pdm_iio_decode(const uint8_t *p, const struct pdm_iio_type *t);

/* ---- small sysfs helpers shared by sysfs.c and iio.c ---------------------------------------- */

/* root + path into out; -ENAMETOOLONG when it does not fit. */
int pdm_onboard_path(char *out, size_t outlen, const char *root, const char *path);
/* Reads a whole small attribute file into buf (NUL-terminated, trailing newline and blanks
 * removed). 0 or -errno (-EMSGSIZE when it does not fit). */
int pdm_onboard_read_attr(const char *path, char *buf, size_t buflen);
/* Writes s to an attribute file; 0 or -errno. */
int pdm_onboard_write_attr(const char *path, const char *s);
/* Parses a whole decimal integer (surrounding blanks allowed); 0 or -EBADMSG. */
int pdm_onboard_parse_long(const char *s, long long *out);

#endif
