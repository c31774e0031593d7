/* drivers/sysfs.c and drivers/iio.c against fake sysfs and /dev trees in a temporary folder
 * (cfg.root), plus fault injection for the errors a real driver returns (EIO, ENODATA), and
 * iio samples fed through models/vibration.c.
 *
 * Fault injection: this program defines pread() (pread64 with the build's 64-bit off_t) and
 * read(); the drivers, linked statically into it, call these, which forward to the kernel unless
 * a failure is armed for the next call. (Under ASan the program's definitions also take
 * precedence over the interceptors.) */
#define _XOPEN_SOURCE 700 /* nftw */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "drivers/onboard.h"
#include "models/vibration.h"

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

static volatile int fail_pread_errno, fail_read_errno;

ssize_t pread(int fd, void *buf, size_t n, off_t off)
{
    if (fail_pread_errno) {
        errno = fail_pread_errno;
        fail_pread_errno = 0;
        return -1;
    }
    /* Not syscall(SYS_pread64, ..., off): 32-bit ARM passes the 64-bit offset in an aligned
     * register pair after a padding argument, so that call read at a garbage offset there.
     * preadv() is a separate libc function the drivers never call. */
    struct iovec iov = {.iov_base = buf, .iov_len = n};
    return preadv(fd, &iov, 1, off);
}

ssize_t read(int fd, void *buf, size_t n)
{
    if (fail_read_errno) {
        errno = fail_read_errno;
        fail_read_errno = 0;
        return -1;
    }
    return syscall(SYS_read, fd, buf, n);
}

/* ---- fake tree helpers ----------------------------------------------------------------------- */

static char root[64];

static void mkdirs(const char *rel)
{
    char p[512];
    snprintf(p, sizeof(p), "%s/%s", root, rel);
    for (char *s = p + strlen(root) + 1; *s; s++) {
        if (*s == '/') {
            *s = '\0';
            mkdir(p, 0755);
            *s = '/';
        }
    }
    mkdir(p, 0755);
}

static void put(const char *rel, const char *content)
{
    char p[512];
    snprintf(p, sizeof(p), "%s/%s", root, rel);
    char dir[512];
    snprintf(dir, sizeof(dir), "%s", rel);
    char *slash = strrchr(dir, '/');
    if (slash) {
        *slash = '\0';
        mkdirs(dir);
    }
    FILE *f = fopen(p, "w");
    if (!f) {
        fprintf(stderr, "cannot write %s: %s\n", p, strerror(errno));
        exit(2);
    }
    fputs(content, f);
    fclose(f);
}

static const char *get(const char *rel)
{
    static char buf[128];
    char p[512];
    snprintf(p, sizeof(p), "%s/%s", root, rel);
    buf[0] = '\0';
    FILE *f = fopen(p, "r");
    if (f) {
        size_t n = fread(buf, 1, sizeof(buf) - 1, f);
        buf[n] = '\0';
        fclose(f);
    }
    buf[strcspn(buf, "\n")] = '\0';
    return buf;
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static struct pdm_onboard_cfg base_cfg(enum pdm_onboard_source src)
{
    struct pdm_onboard_cfg c;
    memset(&c, 0, sizeof(c));
    c.source = src;
    snprintf(c.root, sizeof(c.root), "%s", root);
    return c;
}

/* open + one read; returns the read's result and the value */
static int read_once(const struct pdm_onboard_cfg *cfg, double *v, char *err, size_t errlen)
{
    void *ctx;
    struct pdm_onboard_info info;
    int rc = pdm_onboard_sysfs.open(&ctx, cfg, &info, err, errlen);
    if (rc != 0)
        return rc;
    rc = pdm_onboard_sysfs.read(ctx, v, 1, err, errlen);
    pdm_onboard_sysfs.close(ctx);
    return rc;
}

/* ---- sysfs ----------------------------------------------------------------------------------- */

static void test_hwmon(void)
{
    put("sys/class/hwmon/hwmon0/name", "acpitz\n");
    put("sys/class/hwmon/hwmon0/temp1_input", "27800\n");
    put("sys/class/hwmon/hwmon1/name", "coretemp\n");
    put("sys/class/hwmon/hwmon1/temp1_label", "Package id 0\n");
    put("sys/class/hwmon/hwmon1/temp1_input", "45000\n");
    put("sys/class/hwmon/hwmon1/temp2_label", "Core 0\n");
    put("sys/class/hwmon/hwmon1/temp2_input", "43500\n");
    put("sys/class/hwmon/hwmon12/device/name", "nct6775\n"); /* older layout */
    put("sys/class/hwmon/hwmon12/temp1_input", "-5500\n");

    char err[512] = "";
    double v = 0;
    struct pdm_onboard_cfg c = base_cfg(PDM_ONBOARD_HWMON);
    snprintf(c.device, sizeof(c.device), "coretemp");
    snprintf(c.label, sizeof(c.label), "Core 0");
    CHECK_INT(read_once(&c, &v, err, sizeof(err)), 1);
    CHECK_NEAR(v, 43.5, 1e-12);

    c.label[0] = '\0'; /* no label, no index: temp1 */
    CHECK_INT(read_once(&c, &v, err, sizeof(err)), 1);
    CHECK_NEAR(v, 45.0, 1e-12);
    c.index = 2;
    CHECK_INT(read_once(&c, &v, err, sizeof(err)), 1);
    CHECK_NEAR(v, 43.5, 1e-12);

    snprintf(c.device, sizeof(c.device), "nct6775");
    c.index = 0;
    CHECK_INT(read_once(&c, &v, err, sizeof(err)), 1);
    CHECK_NEAR(v, -5.5, 1e-12);

    /* the engineer typed a wrong name: the message says what exists */
    snprintf(c.device, sizeof(c.device), "cpu_thermal");
    CHECK_INT(read_once(&c, &v, err, sizeof(err)), -ENOENT);
    CHECK_MSG(strstr(err, "'cpu_thermal'") && strstr(err, "coretemp") && strstr(err, "acpitz"),
              "err: %s", err);
    /* a wrong label: the labels are listed */
    snprintf(c.device, sizeof(c.device), "coretemp");
    snprintf(c.label, sizeof(c.label), "Core 7");
    CHECK_INT(read_once(&c, &v, err, sizeof(err)), -ENOENT);
    CHECK_MSG(strstr(err, "'Core 7'") && strstr(err, "'Core 0'") && strstr(err, "Package id 0"),
              "err: %s", err);
    /* a tempM that does not exist */
    c.label[0] = '\0';
    c.index = 9;
    CHECK_INT(read_once(&c, &v, err, sizeof(err)), -ENOENT);
    CHECK_MSG(strstr(err, "temp9_input") != NULL, "err: %s", err);
    /* no name at all */
    c.device[0] = '\0';
    CHECK_INT(read_once(&c, &v, err, sizeof(err)), -EINVAL);
}

static void test_thermal_and_file(void)
{
    put("sys/class/thermal/thermal_zone0/type", "acpitz\n");
    put("sys/class/thermal/thermal_zone0/temp", "30000\n");
    put("sys/class/thermal/thermal_zone1/type", "cpu-thermal\n");
    put("sys/class/thermal/thermal_zone1/temp", "51234\n");
    put("sys/class/thermal/cooling_device0/type", "fan\n");

    char err[512] = "";
    double v = 0;
    struct pdm_onboard_cfg c = base_cfg(PDM_ONBOARD_THERMAL);
    snprintf(c.device, sizeof(c.device), "cpu-thermal");
    CHECK_INT(read_once(&c, &v, err, sizeof(err)), 1);
    CHECK_NEAR(v, 51.234, 1e-12);
    c.device[0] = '\0';
    c.index = 0;
    CHECK_INT(read_once(&c, &v, err, sizeof(err)), 1);
    CHECK_NEAR(v, 30.0, 1e-12);
    c.index = 5;
    CHECK_INT(read_once(&c, &v, err, sizeof(err)), -ENOENT);
    CHECK_MSG(strstr(err, "thermal_zone5") != NULL, "err: %s", err);
    snprintf(c.device, sizeof(c.device), "gpu-thermal");
    CHECK_INT(read_once(&c, &v, err, sizeof(err)), -ENOENT);
    CHECK_MSG(strstr(err, "cpu-thermal") != NULL, "err: %s", err);

    /* a board without thermal support at all */
    struct pdm_onboard_cfg none = base_cfg(PDM_ONBOARD_THERMAL);
    snprintf(none.root, sizeof(none.root), "%s/nowhere", root);
    CHECK_INT(read_once(&none, &v, err, sizeof(err)), -ENOENT);
    CHECK_MSG(strstr(err, "/sys/class/thermal") != NULL, "err: %s", err);

    /* direct file: missing, then the same open handle follows the value, garbage, recovery */
    struct pdm_onboard_cfg f = base_cfg(PDM_ONBOARD_FILE);
    snprintf(f.path, sizeof(f.path), "/sys/class/hwmon/hwmon7/temp1_input");
    CHECK_INT(read_once(&f, &v, err, sizeof(err)), -ENOENT);
    CHECK_MSG(strstr(err, "hwmon7/temp1_input") != NULL, "err: %s", err);

    snprintf(f.path, sizeof(f.path), "/sys/class/thermal/thermal_zone1/temp");
    void *ctx = NULL;
    struct pdm_onboard_info info;
    CHECK_INT(pdm_onboard_sysfs.open(&ctx, &f, &info, err, sizeof(err)), 0);
    if (!ctx)
        return;
    CHECK_INT(info.n_channels, 1);
    CHECK_STR(info.unit, "degC");
    CHECK(strstr(info.where, "thermal_zone1/temp") != NULL);
    put("sys/class/thermal/thermal_zone1/temp", "-12500\n");
    CHECK_INT(pdm_onboard_sysfs.read(ctx, &v, 1, err, sizeof(err)), 1);
    CHECK_NEAR(v, -12.5, 1e-12);
    put("sys/class/thermal/thermal_zone1/temp", "4a000\n");
    CHECK_INT(pdm_onboard_sysfs.read(ctx, &v, 1, err, sizeof(err)), -EBADMSG);
    CHECK_MSG(strstr(err, "'4a000'") && strstr(err, "millidegrees"), "err: %s", err);
    put("sys/class/thermal/thermal_zone1/temp", "");
    CHECK_INT(pdm_onboard_sysfs.read(ctx, &v, 1, err, sizeof(err)), -EBADMSG);
    put("sys/class/thermal/thermal_zone1/temp", "52000\n");
    /* the sensor's bus fails (what an I2C sensor driver returns), then recovers */
    fail_pread_errno = EIO;
    CHECK_INT(pdm_onboard_sysfs.read(ctx, &v, 1, err, sizeof(err)), -EIO);
    CHECK_MSG(strstr(err, "thermal_zone1/temp") && strstr(err, "Input/output error"), "err: %s",
              err);
    fail_pread_errno = ENODATA; /* "no conversion yet" */
    CHECK_INT(pdm_onboard_sysfs.read(ctx, &v, 1, err, sizeof(err)), -EAGAIN);
    CHECK_INT(pdm_onboard_sysfs.read(ctx, &v, 1, err, sizeof(err)), 1);
    CHECK_NEAR(v, 52.0, 1e-12);
    CHECK_INT(pdm_onboard_sysfs.read(ctx, &v, 0, err, sizeof(err)), -ENOSPC);
    pdm_onboard_sysfs.close(ctx);
    pdm_onboard_sysfs.close(NULL);

    /* a garbage file is refused at open, so a wrong path shows up at start */
    put("sys/class/hwmon/hwmon0/temp1_label", "CPU\n");
    snprintf(f.path, sizeof(f.path), "/sys/class/hwmon/hwmon0/temp1_label");
    CHECK_INT(pdm_onboard_sysfs.open(&ctx, &f, &info, err, sizeof(err)), -EBADMSG);
    CHECK(ctx == NULL);
    /* EIO at open is refused too (the engineer sees it at commissioning) */
    snprintf(f.path, sizeof(f.path), "/sys/class/hwmon/hwmon0/temp1_input");
    fail_pread_errno = EIO;
    CHECK_INT(pdm_onboard_sysfs.open(&ctx, &f, &info, err, sizeof(err)), -EIO);
    CHECK(ctx == NULL);
}

/* ---- iio: types --------------------------------------------------------------------------------
 */

static void test_iio_types(void)
{
    struct pdm_iio_type t;
    CHECK_INT(pdm_iio_parse_type("le:s16/16>>0", &t), 0);
    CHECK(!t.big_endian && t.is_signed && t.bits == 16 && t.storage == 16 && t.shift == 0 &&
          t.repeat == 1);
    CHECK_INT(pdm_iio_parse_type("be:u12/16>>4\n", &t), 0);
    CHECK(t.big_endian && !t.is_signed && t.bits == 12 && t.storage == 16 && t.shift == 4);
    CHECK_INT(pdm_iio_parse_type("le:s16/16X3>>0", &t), 0);
    CHECK_INT(t.repeat, 3);
    CHECK_INT(pdm_iio_parse_type("le:s64/64>>0", &t), 0);
    const char *bad[] = {"",
                         "xx:s16/16>>0",
                         "le:q16/16>>0",
                         "le:s17/16>>0",
                         "le:s16/16",
                         "le:s12/12>>0",
                         "le:s12/16>>5",
                         "le:s0/16>>0",
                         "le:s16/16>>0 junk",
                         "le:s/16>>0",
                         "le:s16/16X0>>0"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CHECK_MSG(pdm_iio_parse_type(bad[i], &t) == -EINVAL, "'%s' was accepted", bad[i]);

    const uint8_t le_m1000[] = {0x18, 0xfc};
    pdm_iio_parse_type("le:s16/16>>0", &t);
    CHECK_INT(pdm_iio_decode(le_m1000, &t), -1000);
    const uint8_t be_abc[] = {0xab, 0xc5}; /* low nibble is not part of the value */
    pdm_iio_parse_type("be:u12/16>>4", &t);
    CHECK_INT(pdm_iio_decode(be_abc, &t), 0xabc);
    pdm_iio_parse_type("be:s12/16>>4", &t);
    CHECK_INT(pdm_iio_decode(be_abc, &t), 0xabc - 4096); /* -1348 */
    const uint8_t le_m3[] = {0xd0, 0xff};                /* -3 << 4 */
    pdm_iio_parse_type("le:s12/16>>4", &t);
    CHECK_INT(pdm_iio_decode(le_m3, &t), -3);
    const uint8_t le32[] = {0x00, 0x00, 0x80, 0x00}; /* 24 valid bits: +8388608 as u24, -ve s24 */
    pdm_iio_parse_type("le:s24/32>>0", &t);
    CHECK_INT(pdm_iio_decode(le32, &t), -8388608);
    pdm_iio_parse_type("le:u24/32>>0", &t);
    CHECK_INT(pdm_iio_decode(le32, &t), 8388608);
    const uint8_t le64[] = {0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    pdm_iio_parse_type("le:s64/64>>0", &t);
    CHECK_INT(pdm_iio_decode(le64, &t), -2);
    const uint8_t u8[] = {0x81};
    pdm_iio_parse_type("le:s8/8>>0", &t);
    CHECK_INT(pdm_iio_decode(u8, &t), -127);
}

/* ---- iio: a fake ADXL345-like device ------------------------------------------------------- */

#define SCALE    0.0383 /* m/s^2 per LSB (3.9 mg) */
#define RATE     3200   /* Hz */
#define TONE     100    /* Hz: 32 samples per period */
#define AMP      2.0    /* m/s^2 */
#define Y_OFFSET (-4.0) /* LSB */
#define N_FRAMES 8192

static int16_t raw_x(int i)
{
    return (int16_t)lround(AMP * sin(2 * M_PI * TONE * i / RATE) / SCALE);
}
static int16_t raw_y(int i)
{
    return (int16_t)(i % 5 - 2);
}
static int16_t raw_z(int i)
{
    return (int16_t)lround(PDM_STANDARD_GRAVITY / SCALE) + (int16_t)(i % 2);
}

/* Scan: x le:s16 (index 0), y le:s16 (1), z be:s13/16>>3 (2): 6 bytes. */
static void frame(uint8_t *p, int i)
{
    uint16_t x = (uint16_t)raw_x(i), y = (uint16_t)raw_y(i);
    uint16_t z = (uint16_t)((uint16_t)raw_z(i) << 3) | 0x5; /* junk in the low bits */
    p[0] = x & 0xff, p[1] = x >> 8;
    p[2] = y & 0xff, p[3] = y >> 8;
    p[4] = z >> 8, p[5] = z & 0xff;
}

static void make_iio_device(int n, const char *name)
{
    char d[128], p[192];
    snprintf(d, sizeof(d), "sys/bus/iio/devices/iio:device%d", n);
#define PUT(rel, val)                                                                              \
    do {                                                                                           \
        snprintf(p, sizeof(p), "%s/%s", d, rel);                                                   \
        put(p, val);                                                                               \
    } while (0)
    PUT("name", name);
    PUT("in_accel_scale", "0.038300\n");
    PUT("in_accel_y_offset", "-4\n");
    PUT("sampling_frequency", "100.000000\n");
    PUT("in_accel_x_raw", "52\n");
    PUT("in_accel_y_raw", "-3\n");
    PUT("in_accel_z_raw", "256\n");
    PUT("buffer/enable", "1\n"); /* left on by someone: must be switched off first */
    PUT("buffer/length", "0\n");
    PUT("scan_elements/in_accel_x_en", "0\n");
    PUT("scan_elements/in_accel_x_index", "0\n");
    PUT("scan_elements/in_accel_x_type", "le:s16/16>>0\n");
    PUT("scan_elements/in_accel_y_en", "0\n");
    PUT("scan_elements/in_accel_y_index", "1\n");
    PUT("scan_elements/in_accel_y_type", "le:s16/16>>0\n");
    PUT("scan_elements/in_accel_z_en", "0\n");
    PUT("scan_elements/in_accel_z_index", "2\n");
    PUT("scan_elements/in_accel_z_type", "be:s13/16>>3\n");
    PUT("scan_elements/in_timestamp_en", "1\n");
    PUT("scan_elements/in_timestamp_index", "3\n");
    PUT("scan_elements/in_timestamp_type", "le:s64/64>>0\n");
#undef PUT
}

static void test_iio_buffered_file(void)
{
    put("sys/bus/iio/devices/iio:device0/name", "lis3dh\n");
    make_iio_device(1, "adxl345\n");
    /* the device node: a regular file of prepared scans */
    mkdirs("dev");
    static uint8_t scans[N_FRAMES * 6];
    for (int i = 0; i < N_FRAMES; i++)
        frame(scans + 6 * i, i);
    char p[256];
    snprintf(p, sizeof(p), "%s/dev/iio:device1", root);
    FILE *f = fopen(p, "wb");
    CHECK(f != NULL);
    if (!f)
        return;
    fwrite(scans, 1, sizeof(scans), f);
    fclose(f);

    struct pdm_onboard_cfg c = base_cfg(PDM_ONBOARD_IIO_BUFFERED);
    snprintf(c.device, sizeof(c.device), "adxl345");
    c.sampling_hz = RATE;
    c.buffer_frames = 500;
    void *ctx = NULL;
    struct pdm_onboard_info info;
    char err[512] = "";
    CHECK_MSG(pdm_onboard_iio.open(&ctx, &c, &info, err, sizeof(err)) == 0, "%s", err);
    if (!ctx)
        return;
    CHECK_INT(info.n_channels, 3);
    CHECK_STR(info.channel[2], "z");
    CHECK_STR(info.unit, "m/s2");
    CHECK_NEAR(info.sample_hz, RATE, 0);
    CHECK_INT(info.max_frames, 500);
    CHECK(strstr(info.where, "/dev/iio:device1") != NULL);
    /* what the driver told the device */
    CHECK_STR(get("sys/bus/iio/devices/iio:device1/sampling_frequency"), "3200");
    CHECK_STR(get("sys/bus/iio/devices/iio:device1/buffer/length"), "500");
    CHECK_STR(get("sys/bus/iio/devices/iio:device1/buffer/enable"), "1");
    CHECK_STR(get("sys/bus/iio/devices/iio:device1/scan_elements/in_accel_x_en"), "1");
    CHECK_STR(get("sys/bus/iio/devices/iio:device1/scan_elements/in_accel_z_en"), "1");
    CHECK_STR(get("sys/bus/iio/devices/iio:device1/scan_elements/in_timestamp_en"), "0");

    /* Read it all in uneven chunks, check every value, feed x and z into vibration windows. */
    struct pdm_vib vx, vz;
    pdm_vib_init(&vx, 4096);
    pdm_vib_init(&vz, 4096);
    struct pdm_vib_features fx[2], fz[2], tmp;
    int wx = 0, wz = 0, frames = 0, bad = 0, rc;
    static double out[3 * 500];
    size_t chunk[] = {3 * 500, 3 * 7, 3 * 1, 3 * 333 + 2}; /* the last one: not whole frames */
    for (int k = 0;; k++) {
        size_t max = chunk[k % 4];
        rc = pdm_onboard_iio.read(ctx, out, max, err, sizeof(err));
        if (rc < 0)
            break;
        CHECK(rc % 3 == 0 && (size_t)rc <= max);
        for (int i = 0; i < rc / 3; i++, frames++) {
            double ex = raw_x(frames) * SCALE, ey = (raw_y(frames) + Y_OFFSET) * SCALE,
                   ez = raw_z(frames) * SCALE;
            if (fabs(out[3 * i] - ex) > 1e-9 || fabs(out[3 * i + 1] - ey) > 1e-9 ||
                fabs(out[3 * i + 2] - ez) > 1e-9) {
                if (bad++ < 3)
                    fprintf(stderr, "frame %d: %g %g %g, expected %g %g %g\n", frames, out[3 * i],
                            out[3 * i + 1], out[3 * i + 2], ex, ey, ez);
            }
            if (pdm_vib_push(&vx, out[3 * i], &tmp) && wx < 2)
                fx[wx++] = tmp;
            if (pdm_vib_push(&vz, out[3 * i + 2], &tmp) && wz < 2)
                fz[wz++] = tmp;
        }
    }
    CHECK_MSG(rc == -ENODATA, "read ended with %d: %s", rc, err);
    CHECK_INT(frames, N_FRAMES);
    CHECK_INT(bad, 0);
    CHECK_INT(wx, 2);
    CHECK_INT(wz, 2);
    /* The RMS of the quantised sine as sampled (the period is exactly 32 samples, so every
     * window holds whole periods): the driver and the features must reproduce it exactly; and
     * it is within one LSB (0.0383 m/s2, 1.9% of A) of the analogue A/sqrt(2) = 1.41421. */
    double q2 = 0;
    for (int i = 0; i < 32; i++)
        q2 += (raw_x(i) * SCALE) * (raw_x(i) * SCALE);
    double q_rms = sqrt(q2 / 32);
    for (int w = 0; w < wx && w < 2; w++) {
        CHECK_NEAR(fx[w].rms, q_rms, 1e-9);
        CHECK_NEAR(fx[w].rms, AMP / sqrt(2.0), SCALE / 2);
        CHECK_NEAR(fx[w].kurtosis, 1.5, 0.01);
        CHECK_NEAR(fx[w].crest, sqrt(2.0), 0.03);
        CHECK_NEAR(fx[w].mean, 0.0, 0.01);
        /* gravity on z is DC: it shows in the mean, not in the RMS */
        CHECK_NEAR(fz[w].mean, PDM_STANDARD_GRAVITY, SCALE);
        CHECK_NEAR(fz[w].rms, SCALE / 2, 1e-9);
    }
    printf("iio buffered: %d frames; x window rms %.5f m/s2 (quantised sine %.5f, A/sqrt(2) "
           "%.5f), kurtosis %.4f\n",
           frames, wx ? fx[0].rms : 0, q_rms, AMP / sqrt(2.0), wx ? fx[0].kurtosis : 0);

    CHECK_INT(pdm_onboard_iio.read(ctx, out, 2, err, sizeof(err)), -ENOSPC);
    pdm_onboard_iio.close(ctx);
    CHECK_STR(get("sys/bus/iio/devices/iio:device1/buffer/enable"), "0");

    /* Two axes by index instead of name: scan of x and z only, 4 bytes; y's offset not used. */
    static uint8_t xz[4 * 10 + 2]; /* and half a scan at the end */
    for (int i = 0; i < 10; i++) {
        uint8_t s6[6];
        frame(s6, i);
        memcpy(xz + 4 * i, s6, 2);
        memcpy(xz + 4 * i + 2, s6 + 4, 2);
    }
    f = fopen(p, "wb");
    fwrite(xz, 1, sizeof(xz), f);
    fclose(f);
    c.device[0] = '\0';
    c.index = 1;
    c.axes = 1u | 4u;
    c.sampling_hz = 0;
    CHECK_MSG(pdm_onboard_iio.open(&ctx, &c, &info, err, sizeof(err)) == 0, "%s", err);
    if (!ctx)
        return;
    CHECK_NEAR(info.sample_hz, 3200, 0); /* left as it was */
    CHECK_STR(get("sys/bus/iio/devices/iio:device1/scan_elements/in_accel_y_en"), "0");
    rc = pdm_onboard_iio.read(ctx, out, 3 * 500, err, sizeof(err));
    CHECK_INT(rc, 2 * 10);
    if (rc == 20) {
        CHECK_NEAR(out[2 * 9], raw_x(9) * SCALE, 1e-9);
        CHECK_NEAR(out[2 * 9 + 1], raw_z(9) * SCALE, 1e-9);
    }
    /* the device fails under us */
    fail_read_errno = EIO;
    CHECK_INT(pdm_onboard_iio.read(ctx, out, 3 * 500, err, sizeof(err)), -EIO);
    CHECK_MSG(strstr(err, "iio:device1") && strstr(err, "Input/output error"), "err: %s", err);
    /* the stream ends inside a scan: said so, not decoded */
    CHECK_INT(pdm_onboard_iio.read(ctx, out, 3 * 500, err, sizeof(err)), -ENODATA);
    CHECK_MSG(strstr(err, "incomplete scan") != NULL, "err: %s", err);
    pdm_onboard_iio.close(ctx);
}

/* A FIFO as the device node: a writer thread trickles scans in 7-byte pieces, so reads see
 * incomplete scans that must be kept for the next read. */
struct writer {
    char path[256];
    int n_frames, hold_open_ms;
    int rc;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    int fd = -1;
    for (int64_t end = now_ms() + 5000; fd < 0 && now_ms() < end;) {
        fd = open(w->path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0)
            usleep(1000); /* no reader yet: bounded retry */
    }
    if (fd < 0) {
        w->rc = -1;
        return NULL;
    }
    fcntl(fd, F_SETFL, 0); /* blocking writes from here */
    uint8_t s[6 * 64];
    int done = 0;
    while (done < w->n_frames) {
        int n = w->n_frames - done < 64 ? w->n_frames - done : 64;
        for (int i = 0; i < n; i++)
            frame(s + 6 * i, done + i);
        for (int off = 0; off < 6 * n; off += 7) {
            int len = 6 * n - off < 7 ? 6 * n - off : 7;
            if (write(fd, s + off, (size_t)len) != len) {
                w->rc = -2;
                close(fd);
                return NULL;
            }
        }
        done += n;
    }
    if (w->hold_open_ms)
        usleep((useconds_t)w->hold_open_ms * 1000);
    close(fd);
    w->rc = 0;
    return NULL;
}

static void test_iio_buffered_fifo(void)
{
    make_iio_device(2, "adxl345-fifo\n");
    struct writer w = {.n_frames = 1000, .hold_open_ms = 400};
    snprintf(w.path, sizeof(w.path), "%s/dev/iio:device2", root);
    CHECK_INT(mkfifo(w.path, 0600), 0);
    pthread_t th;
    CHECK_INT(pthread_create(&th, NULL, writer_main, &w), 0);

    struct pdm_onboard_cfg c = base_cfg(PDM_ONBOARD_IIO_BUFFERED);
    snprintf(c.path, sizeof(c.path), "/sys/bus/iio/devices/iio:device2"); /* direct */
    c.timeout_ms = 100;
    c.buffer_frames = 50;
    void *ctx = NULL;
    struct pdm_onboard_info info;
    char err[512] = "";
    CHECK_MSG(pdm_onboard_iio.open(&ctx, &c, &info, err, sizeof(err)) == 0, "%s", err);
    if (!ctx) {
        pthread_join(th, NULL);
        return;
    }
    static double out[3 * 50];
    int frames = 0, bad = 0, timeouts = 0, again = 0, rc = 0;
    int64_t t0 = now_ms();
    /* bounded: the writer needs well under a second; 10 s is the give-up point */
    while (now_ms() - t0 < 10000) {
        rc = pdm_onboard_iio.read(ctx, out, 3 * 50, err, sizeof(err));
        if (rc == -EAGAIN) {
            again++;
            continue;
        }
        if (rc == -ETIMEDOUT) {
            timeouts++; /* the writer holds the FIFO open without data for 400 ms */
            continue;
        }
        if (rc < 0)
            break;
        for (int i = 0; i < rc / 3; i++, frames++)
            if (fabs(out[3 * i] - raw_x(frames) * SCALE) > 1e-9 ||
                fabs(out[3 * i + 2] - raw_z(frames) * SCALE) > 1e-9)
                bad++;
    }
    pthread_join(th, NULL);
    CHECK_INT(w.rc, 0);
    CHECK_MSG(rc == -ENODATA, "read ended with %d: %s", rc, err);
    CHECK_INT(frames, 1000);
    CHECK_INT(bad, 0);
    CHECK_MSG(timeouts >= 1, "no read timed out while the writer was silent (%d)", timeouts);
    printf("iio fifo: %d frames, %d incomplete-scan retries, %d timeouts of %d ms\n", frames, again,
           timeouts, c.timeout_ms);
    pdm_onboard_iio.close(ctx);
}

static void test_iio_polled_and_errors(void)
{
    make_iio_device(3, "bma220\n");
    struct pdm_onboard_cfg c = base_cfg(PDM_ONBOARD_IIO_POLLED);
    snprintf(c.device, sizeof(c.device), "bma220");
    void *ctx = NULL;
    struct pdm_onboard_info info;
    char err[512] = "";
    CHECK_MSG(pdm_onboard_iio.open(&ctx, &c, &info, err, sizeof(err)) == 0, "%s", err);
    if (ctx) {
        double v[3];
        CHECK_INT(info.max_frames, 1);
        CHECK_INT(pdm_onboard_iio.read(ctx, v, 3, err, sizeof(err)), 3);
        CHECK_NEAR(v[0], 52 * SCALE, 1e-12);
        CHECK_NEAR(v[1], (-3 + Y_OFFSET) * SCALE, 1e-12);
        CHECK_NEAR(v[2], 256 * SCALE, 1e-12);
        put("sys/bus/iio/devices/iio:device3/in_accel_y_raw", "-7\n");
        CHECK_INT(pdm_onboard_iio.read(ctx, v, 3, err, sizeof(err)), 3);
        CHECK_NEAR(v[1], (-7 + Y_OFFSET) * SCALE, 1e-12);
        put("sys/bus/iio/devices/iio:device3/in_accel_y_raw", "oops\n");
        CHECK_INT(pdm_onboard_iio.read(ctx, v, 3, err, sizeof(err)), -EBADMSG);
        CHECK_MSG(strstr(err, "in_accel_y_raw") && strstr(err, "'oops'"), "err: %s", err);
        fail_pread_errno = EIO;
        CHECK_INT(pdm_onboard_iio.read(ctx, v, 3, err, sizeof(err)), -EIO);
        CHECK_MSG(strstr(err, "in_accel_x_raw") != NULL, "err: %s", err);
        pdm_onboard_iio.close(ctx);
    }

    /* wrong name: the names present are listed */
    snprintf(c.device, sizeof(c.device), "mma8452");
    CHECK_INT(pdm_onboard_iio.open(&ctx, &c, &info, err, sizeof(err)), -ENOENT);
    CHECK_MSG(strstr(err, "'mma8452'") && strstr(err, "bma220") && strstr(err, "lis3dh"), "err: %s",
              err);
    /* no scale: the value cannot be put in m/s^2 */
    make_iio_device(4, "noscale\n");
    snprintf(c.device, sizeof(c.device), "noscale");
    char p[256];
    snprintf(p, sizeof(p), "%s/sys/bus/iio/devices/iio:device4/in_accel_scale", root);
    remove(p);
    CHECK_INT(pdm_onboard_iio.open(&ctx, &c, &info, err, sizeof(err)), -ENOENT);
    CHECK_MSG(strstr(err, "in_accel_scale") != NULL, "err: %s", err);
    put("sys/bus/iio/devices/iio:device4/in_accel_scale", "fast\n");
    CHECK_INT(pdm_onboard_iio.open(&ctx, &c, &info, err, sizeof(err)), -EBADMSG);

    /* buffered: an axis the device does not have, a bad type, no /dev node */
    make_iio_device(5, "twoaxis\n");
    snprintf(p, sizeof(p), "%s/sys/bus/iio/devices/iio:device5/scan_elements/in_accel_z_en", root);
    remove(p);
    c.source = PDM_ONBOARD_IIO_BUFFERED;
    snprintf(c.device, sizeof(c.device), "twoaxis");
    CHECK_INT(pdm_onboard_iio.open(&ctx, &c, &info, err, sizeof(err)), -ENOENT);
    CHECK_MSG(strstr(err, "in_accel_z_en") != NULL, "err: %s", err);
    c.axes = 3;
    put("sys/bus/iio/devices/iio:device5/scan_elements/in_accel_y_type", "le:s16/12>>0\n");
    CHECK_INT(pdm_onboard_iio.open(&ctx, &c, &info, err, sizeof(err)), -EBADMSG);
    CHECK_MSG(strstr(err, "in_accel_y_type") && strstr(err, "le:s16/12>>0"), "err: %s", err);
    put("sys/bus/iio/devices/iio:device5/scan_elements/in_accel_y_type", "le:s16/16>>0\n");
    CHECK_INT(pdm_onboard_iio.open(&ctx, &c, &info, err, sizeof(err)), -ENOENT);
    CHECK_MSG(strstr(err, "/dev/iio:device5") != NULL, "err: %s", err);
    /* a failed open leaves the buffer off */
    CHECK_STR(get("sys/bus/iio/devices/iio:device5/buffer/enable"), "0");
    c.axes = 8;
    CHECK_INT(pdm_onboard_iio.open(&ctx, &c, &info, err, sizeof(err)), -EINVAL);
    pdm_onboard_iio.close(NULL);
}

int main(void)
{
    snprintf(root, sizeof(root), "/tmp/pdm_onboard.XXXXXX");
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        return 2;
    }
    test_hwmon();
    test_thermal_and_file();
    test_iio_types();
    test_iio_buffered_file();
    test_iio_buffered_fifo();
    test_iio_polled_and_errors();
    nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return check_summary("test_onboard");
}
