/* models/vibration.c: hand-computed features of synthetic signals, numerical stability under a
 * large DC offset, block and sample pushes agreeing, no allocation, and the check on real
 * bearing recordings (CWRU, ../shared/datasets/cwru) that the window features separate the
 * healthy bearing from the inner-race and outer-race faults.
 *
 * The CWRU figures, drive-end accelerometer (g), 12 kHz, windows of 4096 samples (0.34 s),
 * non-overlapping, min..max over the windows of each file (printed by this test):
 *
 *   file    samples  windows  RMS (g)          peak (g)       crest        kurtosis
 *   normal  243938   59       0.0695..0.0765   0.215..0.298   2.94..4.16   2.50..3.04
 *   inner   121265   29       0.2855..0.2960   1.299..1.727   4.49..5.90   4.95..5.78
 *   ball    122571   29       0.1316..0.1459   0.445..0.619   3.26..4.51   2.79..3.11
 *   outer   121991   29       0.6398..0.6992   3.033..3.612   4.69..5.33   7.24..7.97
 *
 * So every healthy window is below every inner- and outer-race window in RMS (x3.7 margin),
 * kurtosis (3.04 < 4.95) and crest factor (4.16 < 4.49, narrow). The ball fault separates by
 * RMS only; its kurtosis and crest overlap the healthy range (the dataset README calls it the
 * hard case). Whole files (mean removed): normal rms 0.0727 kurtosis 2.76, inner 0.2912 / 5.40,
 * ball 0.1387 / 2.98, outer 0.6691 / 7.65; DC offsets 0.013..0.023 g.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "models/vibration.h"

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

/* ---- allocation counter (same technique as test_noalloc.c) ----------------------------------- */

#include "alloc_count.h"

static void *(*volatile do_malloc)(size_t) = malloc;

/* ---- helpers ------------------------------------------------------------------------------ */

/* Reference: two passes in long double over a whole array. */
static void reference(const double *x, size_t n, struct pdm_vib_features *f)
{
    long double s = 0, m2 = 0, m4 = 0, peak = 0;
    for (size_t i = 0; i < n; i++)
        s += x[i];
    long double mean = s / n;
    for (size_t i = 0; i < n; i++) {
        long double d = x[i] - mean;
        m2 += d * d;
        m4 += d * d * d * d;
        if (fabsl(d) > peak)
            peak = fabsl(d);
    }
    f->n = (uint32_t)n;
    f->mean = (double)mean;
    f->rms = (double)sqrtl(m2 / n);
    f->peak = (double)peak;
    f->crest = f->rms > 0 ? f->peak / f->rms : 0;
    f->kurtosis = m2 > 0 ? (double)((m4 / n) / ((m2 / n) * (m2 / n))) : 0;
}

/* Pushes x[0..n) one sample at a time; expects exactly one window to complete, at the end. */
static int one_window(const double *x, uint32_t n, struct pdm_vib_features *f)
{
    struct pdm_vib v;
    if (pdm_vib_init(&v, n) != 0)
        return -1;
    int completed = 0;
    for (uint32_t i = 0; i < n; i++) {
        int r = pdm_vib_push(&v, x[i], f);
        if (r && i != n - 1)
            return -1;
        completed += r;
    }
    return completed == 1 && v.windows == 1 && v.n == 0 ? 0 : -1;
}

/* ---- synthetic signals -------------------------------------------------------------------- */

#define N_SYN 4800 /* 100 whole periods of 48 samples */

static void test_sine(void)
{
    static double x[N_SYN];
    const double a = 2.5, dc = 9.81; /* gravity on the axis must not count as vibration */
    for (int i = 0; i < N_SYN; i++)
        x[i] = dc + a * sin(2 * M_PI * i / 48.0 + 0.3);
    struct pdm_vib_features f;
    CHECK_INT(one_window(x, N_SYN, &f), 0);
    CHECK_INT(f.n, N_SYN);
    CHECK_NEAR(f.mean, dc, 1e-9);
    CHECK_NEAR(f.rms, a / sqrt(2.0), 1e-9);
    /* 48 samples per period hit the crest only to cos(2*pi*0.5/48) at worst; 0.3 rad phase:
     * the sampled peak is the largest |sin| on the grid */
    double grid_peak = 0;
    for (int i = 0; i < 48; i++)
        if (fabs(sin(2 * M_PI * i / 48.0 + 0.3)) > grid_peak)
            grid_peak = fabs(sin(2 * M_PI * i / 48.0 + 0.3));
    CHECK_NEAR(f.peak, a * grid_peak, 1e-9);
    CHECK_NEAR(f.crest, sqrt(2.0) * grid_peak, 1e-9);
    CHECK(f.crest > 1.40 && f.crest <= sqrt(2.0) + 1e-12);
    CHECK_NEAR(f.kurtosis, 1.5, 1e-9);
}

static void test_square_and_spike(void)
{
    static double x[N_SYN];
    for (int i = 0; i < N_SYN; i++)
        x[i] = 0.5 + ((i / 24) % 2 ? -3.0 : 3.0);
    struct pdm_vib_features f;
    CHECK_INT(one_window(x, N_SYN, &f), 0);
    CHECK_NEAR(f.mean, 0.5, 1e-12);
    CHECK_NEAR(f.rms, 3.0, 1e-12);
    CHECK_NEAR(f.peak, 3.0, 1e-12);
    CHECK_NEAR(f.crest, 1.0, 1e-12);
    CHECK_NEAR(f.kurtosis, 1.0, 1e-12);

    /* One spike of height h among N zeros: mean = h/N; with p = 1/N the centred values are
     * h(1-p) once and -hp N-1 times, so var = h^2 p(1-p), peak = h(1-p),
     * crest = sqrt((1-p)/p) = sqrt(N-1) = 31.61 and
     * kurtosis = (1 - 3p + 3p^2) / (p(1-p)) = 998.001 for N = 1000. */
    enum { N = 1000 };
    static double s[N];
    memset(s, 0, sizeof(s));
    const double h = 4.0, p = 1.0 / N;
    s[123] = h;
    CHECK_INT(one_window(s, N, &f), 0);
    CHECK_NEAR(f.mean, h * p, 1e-15);
    CHECK_NEAR(f.rms, h * sqrt(p * (1 - p)), 1e-12);
    CHECK_NEAR(f.peak, h * (1 - p), 1e-12);
    CHECK_NEAR(f.crest, sqrt(N - 1.0), 1e-9);
    CHECK_NEAR(f.kurtosis, (1 - 3 * p + 3 * p * p) / (p * (1 - p)), 1e-7);
    CHECK(f.kurtosis > 997.9 && f.kurtosis < 998.1);

    /* A flat window (stuck sensor): RMS 0, crest and kurtosis reported as 0, not NaN. */
    for (int i = 0; i < N; i++)
        s[i] = 1.25;
    CHECK_INT(one_window(s, N, &f), 0);
    CHECK_NEAR(f.rms, 0, 0);
    CHECK_NEAR(f.peak, 0, 0);
    CHECK_NEAR(f.crest, 0, 0);
    CHECK_NEAR(f.kurtosis, 0, 0);
}

/* Gravity-sized DC offset times a million over a tiny signal: the naive sum-of-powers formula
 * loses every digit here (x^4 ~ 1e28 against a centred m4 ~ 1e-6). */
static void test_dc_offset_stability(void)
{
    static double x[N_SYN], y[N_SYN];
    uint32_t seed = 12345;
    for (int i = 0; i < N_SYN; i++) {
        seed = seed * 1664525u + 1013904223u;
        double noise = ((seed >> 8) / 16777216.0 - 0.5) * 0.02;
        y[i] = 0.01 * sin(2 * M_PI * i / 37.0) + noise;
        x[i] = 1e7 + y[i];
    }
    struct pdm_vib_features f, r;
    reference(y, N_SYN, &r);
    CHECK_INT(one_window(x, N_SYN, &f), 0);
    /* x carries y to about 1e7 * 2^-52 = 2e-9 absolute */
    CHECK_NEAR(f.rms, r.rms, 1e-8);
    CHECK_NEAR(f.kurtosis, r.kurtosis, 1e-4);
    CHECK_NEAR(f.crest, r.crest, 1e-4);
}

static void test_streaming_and_block(void)
{
    struct pdm_vib v;
    CHECK_INT(pdm_vib_init(&v, 1), -EINVAL);
    CHECK_INT(pdm_vib_init(&v, 0), -EINVAL);
    CHECK_INT(pdm_vib_init(&v, 100), 0);
    struct pdm_vib_features f;
    CHECK_INT(pdm_vib_peek(&v, &f), -ENODATA);

    /* 3.5 windows pushed in uneven blocks: three windows come out, each equal to the reference
     * over its own 100 samples; the half window stays pending. */
    static double x[350];
    for (int i = 0; i < 350; i++)
        x[i] = 3.0 * sin(0.7 * i) + (i >= 100 && i < 200 ? 5.0 * (i % 7 == 0) : 0) + 0.01 * i;
    size_t off = 0, blocks[] = {1, 63, 80, 2, 150, 54};
    int got = 0;
    for (size_t b = 0; b < sizeof(blocks) / sizeof(blocks[0]); b++) {
        size_t n = blocks[b];
        while (n > 0) {
            int done;
            size_t used = pdm_vib_push_block(&v, x + off, n, &f, &done);
            CHECK(used >= 1 && used <= n);
            off += used;
            n -= used;
            if (done) {
                struct pdm_vib_features r;
                reference(x + 100 * got, 100, &r);
                CHECK_INT(off, 100 * (got + 1));
                CHECK_NEAR(f.rms, r.rms, 1e-12);
                CHECK_NEAR(f.peak, r.peak, 1e-12);
                CHECK_NEAR(f.kurtosis, r.kurtosis, 1e-10);
                got++;
            }
        }
    }
    CHECK_INT(got, 3);
    CHECK_INT(off, 350);
    CHECK_INT(v.windows, 3);
    CHECK_INT(v.n, 50);
    struct pdm_vib_features r;
    reference(x + 300, 50, &r);
    CHECK_INT(pdm_vib_peek(&v, &f), 0);
    CHECK_INT(f.n, 50);
    CHECK_NEAR(f.rms, r.rms, 1e-12);
    pdm_vib_reset(&v);
    CHECK_INT(v.n, 0);
    CHECK_INT(pdm_vib_peek(&v, &f), -ENODATA);
}

static void test_no_allocation(void)
{
    CHECK_INT(install_counter(), 0);
    /* the counter is not blind */
    n_alloc = 0;
    counting = 1;
    void *p = do_malloc(32);
    counting = 0;
    free(p);
    CHECK_MSG(n_alloc >= 1, "the allocation counter saw %lu of 1 allocations", n_alloc);

    struct pdm_vib v;
    struct pdm_vib_features f;
    static double block[1000];
    for (int i = 0; i < 1000; i++)
        block[i] = sin(0.01 * i);
    n_alloc = 0;
    counting = 1;
    int windows = 0;
    pdm_vib_init(&v, 4096);
    for (int rep = 0; rep < 500; rep++) {
        size_t off = 0;
        while (off < 1000) {
            int done;
            off += pdm_vib_push_block(&v, block + off, 1000 - off, &f, &done);
            windows += done;
        }
        windows += pdm_vib_push(&v, 0.5, &f);
    }
    pdm_vib_peek(&v, &f);
    counting = 0;
    CHECK_MSG(n_alloc == 0, "%lu heap allocations while computing vibration features", n_alloc);
    CHECK_INT(windows, 500500 / 4096);
}

/* ---- MATLAB v5 reader (just enough for the CWRU files) ------------------------------------
 * Layout: a 128-byte header (text, subsystem offset, version 0x0100, endian mark "IM" when
 * written little-endian), then data elements: an 8-byte tag (u32 type, u32 byte count) and the
 * data padded to 8 bytes, or the "small element" form where the upper 16 bits of the first word
 * hold the byte count (1..4) and the data sits in the tag's second word. A variable is a
 * miMATRIX whose sub-elements are array flags (class in the low byte), dimensions, the name,
 * and the real part. miCOMPRESSED elements are zlib streams, which this project does not link:
 * they are reported and skipped. */

enum {
    MI_INT8 = 1,
    MI_UINT8 = 2,
    MI_INT16 = 3,
    MI_UINT16 = 4,
    MI_INT32 = 5,
    MI_UINT32 = 6,
    MI_SINGLE = 7,
    MI_DOUBLE = 9,
    MI_MATRIX = 14,
    MI_COMPRESSED = 15,
};

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Reads one element tag at p (avail bytes left). Returns the element's total size on disk
 * (tag + padded data) or 0 when it does not fit. */
static size_t mat_tag(const uint8_t *p, size_t avail, uint32_t *type, uint32_t *nbytes,
                      const uint8_t **data)
{
    if (avail < 8)
        return 0;
    uint32_t w0 = le32(p);
    if (w0 >> 16) { /* small element */
        *type = w0 & 0xffff;
        *nbytes = w0 >> 16;
        *data = p + 4;
        return *nbytes <= 4 ? 8 : 0;
    }
    *type = w0;
    *nbytes = le32(p + 4);
    *data = p + 8;
    size_t total = 8 + (((size_t)*nbytes + 7) & ~(size_t)7);
    /* the last element of a file may lack its padding */
    if (8 + (size_t)*nbytes > avail)
        return 0;
    return total > avail ? avail : total;
}

static double mat_value(const uint8_t *p, uint32_t type)
{
    switch (type) {
    case MI_DOUBLE: {
        uint64_t u = (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
        double d;
        memcpy(&d, &u, sizeof(d));
        return d;
    }
    case MI_SINGLE: {
        uint32_t u = le32(p);
        float f;
        memcpy(&f, &u, sizeof(f));
        return f;
    }
    case MI_INT8:
        return (int8_t)p[0];
    case MI_UINT8:
        return p[0];
    case MI_INT16:
        return (int16_t)(p[0] | p[1] << 8);
    case MI_UINT16:
        return (uint16_t)(p[0] | p[1] << 8);
    case MI_INT32:
        return (int32_t)le32(p);
    default:
        return le32(p);
    }
}

static size_t mat_size(uint32_t type)
{
    switch (type) {
    case MI_DOUBLE:
        return 8;
    case MI_SINGLE:
    case MI_INT32:
    case MI_UINT32:
        return 4;
    case MI_INT16:
    case MI_UINT16:
        return 2;
    case MI_INT8:
    case MI_UINT8:
        return 1;
    default:
        return 0;
    }
}

/* Loads the first variable whose name ends with suffix as doubles (caller frees *out). Returns
 * 0, -ENOENT (file or variable absent), -ENOTSUP (compressed or unsupported), -EBADMSG. The name
 * found goes into name. */
static int mat_load(const char *path, const char *suffix, double **out, size_t *n, char *name,
                    size_t namelen, char *why, size_t whylen)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        snprintf(why, whylen, "%s: %s", path, strerror(errno));
        return -ENOENT;
    }
    fseek(fp, 0, SEEK_END);
    long size = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    uint8_t *buf = size > 128 ? malloc((size_t)size) : NULL;
    if (!buf || fread(buf, 1, (size_t)size, fp) != (size_t)size) {
        fclose(fp);
        free(buf);
        snprintf(why, whylen, "%s: cannot read (%ld bytes)", path, size);
        return -EBADMSG;
    }
    fclose(fp);
    int rc = -ENOENT, compressed = 0;
    snprintf(why, whylen, "%s: no variable *%s", path, suffix);
    if (memcmp(buf, "MATLAB 5.0", 10) != 0 || buf[126] != 'I' || buf[127] != 'M') {
        snprintf(why, whylen, "%s: not a little-endian MATLAB v5 file", path);
        rc = -EBADMSG;
        goto out;
    }
    for (size_t off = 128; off < (size_t)size;) {
        uint32_t type, nbytes;
        const uint8_t *data;
        size_t el = mat_tag(buf + off, (size_t)size - off, &type, &nbytes, &data);
        if (el == 0) {
            snprintf(why, whylen, "%s: truncated element at byte %zu", path, off);
            rc = -EBADMSG;
            goto out;
        }
        off += el;
        if (type == MI_COMPRESSED) {
            compressed++;
            continue;
        }
        if (type != MI_MATRIX)
            continue;
        /* sub-elements: flags, dimensions, name, real part */
        const uint8_t *p = data, *end = data + nbytes;
        uint32_t st[4], sn[4];
        const uint8_t *sd[4];
        int k;
        for (k = 0; k < 4; k++) {
            size_t sub = mat_tag(p, (size_t)(end - p), &st[k], &sn[k], &sd[k]);
            if (sub == 0)
                break;
            p += sub;
        }
        if (k < 4 || st[2] != MI_INT8)
            continue; /* not a plain numeric matrix (cell, struct, sparse...) */
        char nm[64];
        size_t nl = sn[2] < sizeof(nm) - 1 ? sn[2] : sizeof(nm) - 1;
        memcpy(nm, sd[2], nl);
        nm[nl] = '\0';
        size_t sl = strlen(suffix);
        if (nl < sl || strcmp(nm + nl - sl, suffix) != 0)
            continue;
        snprintf(name, namelen, "%s", nm);
        size_t es = mat_size(st[3]);
        if (es == 0 || (st[0] != MI_UINT32) || (sd[0][0] & 0xff) != 6 /* mxDOUBLE_CLASS */) {
            snprintf(why, whylen, "%s: %s: unsupported class or storage type %u", path, nm, st[3]);
            rc = -ENOTSUP;
            goto out;
        }
        *n = sn[3] / es;
        *out = malloc(*n * sizeof(double));
        if (!*out) {
            rc = -ENOMEM;
            goto out;
        }
        for (size_t i = 0; i < *n; i++)
            (*out)[i] = mat_value(sd[3] + i * es, st[3]);
        rc = 0;
        goto out;
    }
    if (compressed) {
        snprintf(why, whylen,
                 "%s: %d compressed (miCOMPRESSED) element(s); zlib is not a dependency of this "
                 "project, so they cannot be read",
                 path, compressed);
        rc = -ENOTSUP;
    }
out:
    free(buf);
    return rc;
}

static void put32(uint8_t *f, size_t *o, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        f[(*o)++] = (uint8_t)(v >> (8 * i));
}

static void test_mat_reader_small_elements(void)
{
    /* A hand-made file: header; a miCOMPRESSED element that must be skipped; a matrix
     * "xy_DE_time" of 2 values stored as int16 (MATLAB stores whole numbers compactly); a
     * matrix "ab" whose name is a small element (packed into its tag). */
    static uint8_t f[512];
    size_t o = 0;
    memset(f, ' ', 128);
    memcpy(f, "MATLAB 5.0 MAT-file, test", 25);
    f[124] = 0x00, f[125] = 0x01, f[126] = 'I', f[127] = 'M';
    o = 128;
    /* compressed junk */
    put32(f, &o, MI_COMPRESSED);
    put32(f, &o, 8);
    put32(f, &o, 0xdeadbeef);
    put32(f, &o, 0x12345678);
    /* matrix "xy_DE_time": flags (16) + dims (16) + name (8 + 16) + int16 data (8 + 8) */
    size_t mstart = o;
    put32(f, &o, MI_MATRIX);
    put32(f, &o, 0); /* length, fixed below */
    put32(f, &o, MI_UINT32);
    put32(f, &o, 8);
    put32(f, &o, 6); /* mxDOUBLE_CLASS */
    put32(f, &o, 0);
    put32(f, &o, MI_INT32);
    put32(f, &o, 8);
    put32(f, &o, 2);
    put32(f, &o, 1);
    put32(f, &o, MI_INT8);
    put32(f, &o, 10);
    memcpy(f + o, "xy_DE_time\0\0\0\0\0\0", 16);
    o += 16;
    put32(f, &o, MI_INT16);
    put32(f, &o, 4);
    put32(f, &o, 0xfffe0007u); /* 7, -2 */
    put32(f, &o, 0);
    /* a small-element name: "ab" in the tag itself (bytes 2, type miINT8) */
    put32(f, &o, MI_MATRIX);
    put32(f, &o, 16 + 16 + 8 + 16);
    put32(f, &o, MI_UINT32);
    put32(f, &o, 8);
    put32(f, &o, 6);
    put32(f, &o, 0);
    put32(f, &o, MI_INT32);
    put32(f, &o, 8);
    put32(f, &o, 1);
    put32(f, &o, 1);
    put32(f, &o, 2u << 16 | MI_INT8);
    memcpy(f + o, "ab\0\0", 4);
    o += 4;
    put32(f, &o, MI_DOUBLE);
    put32(f, &o, 8);
    double d = -1.5;
    memcpy(f + o, &d, 8); /* little-endian host (x86, ARM) */
    o += 8;
    size_t len = o;
    size_t mo = mstart + 4;
    put32(f, &mo, 16 + 16 + 24 + 16);
    char path[64];
    snprintf(path, sizeof(path), "/tmp/pdm_test_vibration.%ld.mat", (long)getpid());
    FILE *fp = fopen(path, "wb");
    CHECK(fp != NULL);
    if (!fp)
        return;
    fwrite(f, 1, len, fp);
    fclose(fp);
    double *x = NULL;
    size_t n = 0;
    char name[64] = "", why[256];
    CHECK_INT(mat_load(path, "_DE_time", &x, &n, name, sizeof(name), why, sizeof(why)), 0);
    CHECK_STR(name, "xy_DE_time");
    CHECK_INT(n, 2);
    if (x && n == 2) {
        CHECK_NEAR(x[0], 7, 0);
        CHECK_NEAR(x[1], -2, 0);
    }
    free(x);
    x = NULL;
    CHECK_INT(mat_load(path, "ab", &x, &n, name, sizeof(name), why, sizeof(why)), 0);
    CHECK_STR(name, "ab");
    CHECK_INT(n, 1);
    if (x && n == 1)
        CHECK_NEAR(x[0], -1.5, 0);
    free(x);
    /* only compressed content left: reported as such, not as "absent" */
    CHECK_INT(mat_load(path, "_FE_time", &x, &n, name, sizeof(name), why, sizeof(why)), -ENOTSUP);
    CHECK(strstr(why, "compressed") != NULL);
    remove(path);
}

/* ---- CWRU --------------------------------------------------------------------------------- */

#define CWRU_WIN 4096

struct cwru_file {
    const char *label, *file;
    double readme_rms, readme_kurt; /* whole file, from datasets/README.md */
    /* window min / max per feature */
    double rms[2], peak[2], crest[2], kurt[2];
    int windows, loaded;
};

static void span(double *mm, double v)
{
    if (v < mm[0])
        mm[0] = v;
    if (v > mm[1])
        mm[1] = v;
}

static void cwru_one(struct cwru_file *c, const char *dir)
{
    char path[1024], name[64], why[512];
    snprintf(path, sizeof(path), "%s/cwru/%s", dir, c->file);
    double *x = NULL;
    size_t n = 0;
    int rc = mat_load(path, "_DE_time", &x, &n, name, sizeof(name), why, sizeof(why));
    if ((rc == -ENOENT && !strstr(why, "no variable")) || rc == -ENOTSUP) {
        printf("cwru %s: not available: %s\n", c->label, why);
        return;
    }
    CHECK_MSG(rc == 0, "%s", why);
    if (rc != 0)
        return;
    c->loaded = 1;
    CHECK_MSG(n > 100000, "%s: only %zu samples", name, n);

    struct pdm_vib v;
    CHECK_INT(pdm_vib_init(&v, CWRU_WIN), 0);
    for (int k = 0; k < 2; k++) {
        c->rms[k] = c->peak[k] = c->crest[k] = c->kurt[k] = k ? -INFINITY : INFINITY;
    }
    size_t off = 0;
    double worst = 0;
    while (off < n) {
        struct pdm_vib_features f, r;
        int done;
        size_t used = pdm_vib_push_block(&v, x + off, n - off, &f, &done);
        if (done) {
            size_t start = off + used - CWRU_WIN;
            reference(x + start, CWRU_WIN, &r);
            double e = fabs(f.kurtosis - r.kurtosis) / r.kurtosis + fabs(f.rms - r.rms) / r.rms +
                       fabs(f.crest - r.crest) / r.crest;
            if (e > worst)
                worst = e;
            span(c->rms, f.rms);
            span(c->peak, f.peak);
            span(c->crest, f.crest);
            span(c->kurt, f.kurtosis);
            c->windows++;
        }
        off += used;
    }
    CHECK_INT(c->windows, n / CWRU_WIN);
    CHECK_MSG(worst < 1e-10, "%s: streaming features differ from the two-pass reference by %g",
              name, worst);

    /* Whole file against the dataset README (given to 3 significant digits). The README's RMS
     * is the raw RMS, DC included (the recordings carry a 0.013..0.023 g offset), so it is
     * compared with sqrt(rms^2 + mean^2); its kurtosis is the plain (non-excess) one, about the
     * mean, like ours. */
    struct pdm_vib all;
    struct pdm_vib_features w = {0};
    CHECK_INT(pdm_vib_init(&all, (uint32_t)n), 0);
    int done;
    CHECK_INT(pdm_vib_push_block(&all, x, n, &w, &done), n);
    CHECK_INT(done, 1);
    double raw_rms = sqrt(w.rms * w.rms + w.mean * w.mean);
    CHECK_MSG(fabs(raw_rms - c->readme_rms) <= 0.0006,
              "%s: whole-file RMS with DC %.4f g, README %.3f", name, raw_rms, c->readme_rms);
    CHECK_MSG(fabs(w.kurtosis - c->readme_kurt) <= 0.006,
              "%s: whole-file kurtosis %.3f, README %.2f", name, w.kurtosis, c->readme_kurt);
    printf("cwru %-6s %s: %zu samples, %d windows; whole file: mean %+.4f rms %.4f peak %.3f "
           "crest %.2f kurtosis %.2f\n",
           c->label, name, n, c->windows, w.mean, w.rms, w.peak, w.crest, w.kurtosis);
    printf("  windows: rms %.4f..%.4f  peak %.3f..%.3f  crest %.2f..%.2f  kurtosis %.2f..%.2f\n",
           c->rms[0], c->rms[1], c->peak[0], c->peak[1], c->crest[0], c->crest[1], c->kurt[0],
           c->kurt[1]);
    free(x);
}

/* 0 when every recording was there and checked, -1 when some were missing (said why). */
static int test_cwru(void)
{
    static struct cwru_file files[] = {
        {.label = "normal", .file = "normal_0_97.mat", .readme_rms = 0.074, .readme_kurt = 2.76},
        {.label = "inner",
         .file = "12k_Drive_End_IR007_0_105.mat",
         .readme_rms = 0.292,
         .readme_kurt = 5.40},
        {.label = "ball",
         .file = "12k_Drive_End_B007_0_118.mat",
         .readme_rms = 0.139,
         .readme_kurt = 2.98},
        {.label = "outer",
         .file = "12k_Drive_End_OR007_6oclock_0_130.mat",
         .readme_rms = 0.670,
         .readme_kurt = 7.65},
    };
    const char *dir = getenv("PDM_DATASETS_DIR");
    if (!dir)
        dir = PDM_DATASETS_DIR;
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
        cwru_one(&files[i], dir);
    struct cwru_file *normal = &files[0], *inner = &files[1], *ball = &files[2], *outer = &files[3];
    if (!normal->loaded || !inner->loaded || !ball->loaded || !outer->loaded) {
        printf("the separation checks need all four recordings under %s/cwru\n", dir);
        return -1;
    }
    /* Separation, window by window: every healthy window below every faulty one. */
    struct cwru_file *faults[] = {inner, outer};
    for (int i = 0; i < 2; i++) {
        struct cwru_file *c = faults[i];
        CHECK_MSG(normal->rms[1] < c->rms[0], "RMS: healthy max %.4f g >= %s min %.4f g",
                  normal->rms[1], c->label, c->rms[0]);
        CHECK_MSG(normal->kurt[1] < c->kurt[0], "kurtosis: healthy max %.2f >= %s min %.2f",
                  normal->kurt[1], c->label, c->kurt[0]);
        CHECK_MSG(normal->crest[1] < c->crest[0], "crest: healthy max %.2f >= %s min %.2f",
                  normal->crest[1], c->label, c->crest[0]);
        printf("cwru separation normal/%s: rms %.4f < %.4f (x%.1f), kurtosis %.2f < %.2f, "
               "crest %.2f < %.2f\n",
               c->label, normal->rms[1], c->rms[0], c->rms[0] / normal->rms[1], normal->kurt[1],
               c->kurt[0], normal->crest[1], c->crest[0]);
    }
    /* The ball fault is the hard case: its kurtosis and crest overlap the healthy range, only the
     * RMS level separates it (and RMS depends on mounting and gain). Checked, not hidden. */
    CHECK_MSG(normal->rms[1] < ball->rms[0], "RMS: healthy max %.4f g >= ball min %.4f g",
              normal->rms[1], ball->rms[0]);
    printf("cwru normal/ball: rms %.4f < %.4f separates; kurtosis %.2f..%.2f vs %.2f..%.2f "
           "and crest %.2f..%.2f vs %.2f..%.2f %s\n",
           normal->rms[1], ball->rms[0], normal->kurt[0], normal->kurt[1], ball->kurt[0],
           ball->kurt[1], normal->crest[0], normal->crest[1], ball->crest[0], ball->crest[1],
           normal->kurt[1] >= ball->kurt[0] ? "overlap" : "separate too");
    return 0;
}

/* test_vibration: the synthetic cases; test_vibration cwru: the CWRU bearing recordings from
 * ../shared/datasets (PDM_DATASETS_DIR), exit 77 (CTest: skipped) where they are missing. */
int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "cwru")) {
        if (test_cwru() != 0 && check_failed == 0) {
            printf("test_vibration cwru: skipped: recordings missing\n");
            return 77;
        }
        return check_summary("test_vibration cwru");
    }
    test_sine();
    test_square_and_spike();
    test_dc_offset_stability();
    test_streaming_and_block();
    test_no_allocation();
    test_mat_reader_small_elements();
    return check_summary("test_vibration");
}
