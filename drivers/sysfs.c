/* On-board temperatures from sysfs: hwmon (tempM_input) and thermal zones (temp), both in
 * millidegrees Celsius per the kernel ABI (Documentation/hwmon/sysfs-interface,
 * Documentation/ABI/testing/sysfs-class-thermal).
 *
 * The attribute file stays open and is re-read with pread() at offset 0, which makes sysfs
 * regenerate the value: one system call per reading, no path walk, no allocation. A sensor
 * whose bus fails (I2C NAK, 1-Wire CRC) makes the read itself fail with EIO, ENXIO, ENODATA or
 * EAGAIN; that is reported per reading, and the next reading tries again. */
#include "onboard.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- shared helpers ------------------------------------------------------------------------ */

int pdm_onboard_path(char *out, size_t outlen, const char *root, const char *path)
{
    int n = snprintf(out, outlen, "%s%s", root ? root : "", path);
    return n < 0 || (size_t)n >= outlen ? -ENAMETOOLONG : 0;
}

static void trim(char *s)
{
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = '\0';
}

int pdm_onboard_read_attr(const char *path, char *buf, size_t buflen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = pread(fd, buf, buflen - 1, 0);
    int e = n < 0 ? -errno : 0;
    close(fd);
    if (e)
        return e;
    if ((size_t)n == buflen - 1)
        return -EMSGSIZE;
    buf[n] = '\0';
    trim(buf);
    return 0;
}

int pdm_onboard_write_attr(const char *path, const char *s)
{
    /* O_TRUNC matters only for the regular files of a test tree; sysfs ignores it. */
    int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    size_t len = strlen(s);
    ssize_t n = write(fd, s, len);
    int e = n < 0 ? -errno : (size_t)n != len ? -EIO : 0;
    if (close(fd) != 0 && e == 0)
        e = -errno;
    return e;
}

int pdm_onboard_parse_long(const char *s, long long *out)
{
    char *end;
    while (*s == ' ' || *s == '\t')
        s++;
    if (*s == '\0')
        return -EBADMSG;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || end == s)
        return -EBADMSG;
    while (*end == ' ' || *end == '\t' || *end == '\n')
        end++;
    if (*end != '\0')
        return -EBADMSG;
    *out = v;
    return 0;
}

/* ---- finding the sensor -------------------------------------------------------------------- */

/* Scans root/sys/class/CLASS for PREFIXn folders whose attribute ATTR equals want (or, when
 * want is "", whose n equals index); the lowest n wins so the choice is stable across boots
 * with the same hardware. Writes the folder into dir. On failure lists what it saw in err. */
static int find_dev(const char *root, const char *cls, const char *prefix, const char *attr,
                    const char *want, int index, char *dir, size_t dirlen, char *err, size_t errlen)
{
    char base[PDM_ONBOARD_PATH_MAX], p[PDM_ONBOARD_PATH_MAX + 64], seen[160] = "";
    char sub[PDM_ONBOARD_PATH_MAX];
    snprintf(sub, sizeof(sub), "/sys/class/%s", cls);
    if (pdm_onboard_path(base, sizeof(base), root, sub) != 0) {
        snprintf(err, errlen, "%s: path too long", sub);
        return -ENAMETOOLONG;
    }
    DIR *d = opendir(base);
    if (!d) {
        int e = -errno;
        snprintf(err, errlen, "%s: %s (no %s support on this board?)", base, strerror(-e), cls);
        return e;
    }
    size_t plen = strlen(prefix);
    long best = -1;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strncmp(de->d_name, prefix, plen) != 0)
            continue;
        char *end;
        long n = strtol(de->d_name + plen, &end, 10);
        if (end == de->d_name + plen || *end != '\0' || n < 0)
            continue;
        int match;
        if (want[0]) {
            char val[PDM_ONBOARD_NAME_MAX];
            int rc = -ENAMETOOLONG;
            if (snprintf(p, sizeof(p), "%s/%s/%s", base, de->d_name, attr) < (int)sizeof(p))
                rc = pdm_onboard_read_attr(p, val, sizeof(val));
            /* older drivers keep it one level down: hwmonN/device/name */
            if (rc != 0 && strcmp(cls, "hwmon") == 0 &&
                snprintf(p, sizeof(p), "%s/%s/device/%s", base, de->d_name, attr) < (int)sizeof(p))
                rc = pdm_onboard_read_attr(p, val, sizeof(val));
            if (rc != 0)
                continue;
            match = strcmp(val, want) == 0;
            size_t sl = strlen(seen);
            if (!match && sl + strlen(val) + 3 < sizeof(seen))
                snprintf(seen + sl, sizeof(seen) - sl, "%s%s", sl ? ", " : "", val);
        } else {
            match = n == index;
        }
        if (match && (best < 0 || n < best))
            best = n;
    }
    closedir(d);
    if (best < 0) {
        if (want[0])
            snprintf(err, errlen, "%s: no %sN with %s '%s' (found: %s)", base, prefix, attr, want,
                     seen[0] ? seen : "none");
        else
            snprintf(err, errlen, "%s/%s%d: no such device", base, prefix, index);
        return -ENOENT;
    }
    if (snprintf(dir, dirlen, "%s/%s%ld", base, prefix, best) >= (int)dirlen) {
        snprintf(err, errlen, "%s: path too long", base);
        return -ENAMETOOLONG;
    }
    return 0;
}

/* The tempM_input of an hwmon folder: by tempM_label when a label is configured. */
static int hwmon_input(const char *dir, const char *label, int index, char *out, size_t outlen,
                       char *err, size_t errlen)
{
    if (!label[0]) {
        int m = index > 0 ? index : 1;
        if (snprintf(out, outlen, "%s/temp%d_input", dir, m) >= (int)outlen)
            return -ENAMETOOLONG;
        return 0;
    }
    DIR *d = opendir(dir);
    if (!d) {
        int e = -errno;
        snprintf(err, errlen, "%s: %s", dir, strerror(-e));
        return e;
    }
    char seen[160] = "";
    long best = -1;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        long m;
        char tail[16];
        /* temp<M>_label */
        if (sscanf(de->d_name, "temp%ld%15s", &m, tail) != 2 || strcmp(tail, "_label") != 0)
            continue;
        /* d_name matched temp<M>_label, so it is short; the room covers any d_name anyway */
        char p[PDM_ONBOARD_PATH_MAX + sizeof(de->d_name) + 2], val[PDM_ONBOARD_NAME_MAX];
        snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
        if (pdm_onboard_read_attr(p, val, sizeof(val)) != 0)
            continue;
        if (strcmp(val, label) == 0) {
            if (best < 0 || m < best)
                best = m;
        } else {
            size_t sl = strlen(seen);
            if (sl + strlen(val) + 5 < sizeof(seen))
                snprintf(seen + sl, sizeof(seen) - sl, "%s'%s'", sl ? ", " : "", val);
        }
    }
    closedir(d);
    if (best < 0) {
        snprintf(err, errlen, "%s: no tempM_label '%s' (labels: %s)", dir, label,
                 seen[0] ? seen : "none");
        return -ENOENT;
    }
    if (snprintf(out, outlen, "%s/temp%ld_input", dir, best) >= (int)outlen)
        return -ENAMETOOLONG;
    return 0;
}

/* ---- the driver ---------------------------------------------------------------------------- */

struct sysfs_ctx {
    int fd;
    char where[PDM_ONBOARD_PATH_MAX];
};

static int sysfs_read(void *vctx, double *out, size_t max, char *err, size_t errlen)
{
    struct sysfs_ctx *c = vctx;
    if (max < 1) {
        snprintf(err, errlen, "%s: no room for a value", c->where);
        return -ENOSPC;
    }
    char buf[32];
    ssize_t n = pread(c->fd, buf, sizeof(buf) - 1, 0);
    if (n < 0) {
        int e = errno;
        if (e == EAGAIN || e == ENODATA) {
            snprintf(err, errlen, "%s: the sensor has no reading yet (%s); trying again", c->where,
                     strerror(e));
            return -EAGAIN;
        }
        snprintf(err, errlen, "%s: read failed: %s (the sensor or its bus); trying again", c->where,
                 strerror(e));
        return -e;
    }
    buf[n] = '\0';
    trim(buf);
    long long milli;
    if (n == 0 || pdm_onboard_parse_long(buf, &milli) != 0) {
        char shown[sizeof(buf)];
        memcpy(shown, buf, sizeof(shown));
        for (char *s = shown; *s; s++)
            if (*s < 0x20 || *s > 0x7e)
                *s = '?';
        snprintf(err, errlen, "%s: expected millidegrees C as an integer, got '%s'", c->where,
                 shown);
        return -EBADMSG;
    }
    out[0] = (double)milli / 1000.0;
    return 1;
}

static void sysfs_close(void *vctx)
{
    struct sysfs_ctx *c = vctx;
    if (!c)
        return;
    if (c->fd >= 0)
        close(c->fd);
    free(c);
}

static int sysfs_open(void **ctx, const struct pdm_onboard_cfg *cfg, struct pdm_onboard_info *info,
                      char *err, size_t errlen)
{
    *ctx = NULL;
    char dir[PDM_ONBOARD_PATH_MAX], file[PDM_ONBOARD_PATH_MAX];
    int rc = 0;
    switch (cfg->source) {
    case PDM_ONBOARD_HWMON:
        if (!cfg->device[0]) {
            snprintf(err, errlen,
                     "hwmon: the hwmon device name is not set (e.g. coretemp, "
                     "cpu_thermal; see /sys/class/hwmon/hwmon*/name)");
            return -EINVAL;
        }
        rc = find_dev(cfg->root, "hwmon", "hwmon", "name", cfg->device, 0, dir, sizeof(dir), err,
                      errlen);
        if (rc == 0)
            rc = hwmon_input(dir, cfg->label, cfg->index, file, sizeof(file), err, errlen);
        break;
    case PDM_ONBOARD_THERMAL:
        rc = find_dev(cfg->root, "thermal", "thermal_zone", "type", cfg->device, cfg->index, dir,
                      sizeof(dir), err, errlen);
        if (rc == 0 && snprintf(file, sizeof(file), "%s/temp", dir) >= (int)sizeof(file))
            rc = -ENAMETOOLONG;
        break;
    case PDM_ONBOARD_FILE:
        if (!cfg->path[0]) {
            snprintf(err, errlen, "sysfs: no file configured");
            return -EINVAL;
        }
        rc = pdm_onboard_path(file, sizeof(file), cfg->root, cfg->path);
        break;
    default:
        snprintf(err, errlen, "sysfs: source %d is not a temperature (hwmon, thermal, file)",
                 (int)cfg->source);
        return -EINVAL;
    }
    if (rc == -ENAMETOOLONG)
        snprintf(err, errlen, "sysfs: path too long under '%s'", cfg->root);
    if (rc != 0)
        return rc;

    struct sysfs_ctx *c = calloc(1, sizeof(*c));
    if (!c) {
        snprintf(err, errlen, "sysfs: out of memory");
        return -ENOMEM;
    }
    snprintf(c->where, sizeof(c->where), "%s", file);
    c->fd = open(file, O_RDONLY | O_CLOEXEC);
    if (c->fd < 0) {
        rc = -errno;
        snprintf(err, errlen, "%s: %s", file, strerror(-rc));
        free(c);
        return rc;
    }
    /* One reading now, so a wrong file (not a temperature) or a dead sensor is found at start,
     * not later; "no reading yet" is normal right after boot for some drivers. */
    double v;
    rc = sysfs_read(c, &v, 1, err, errlen);
    if (rc < 0 && rc != -EAGAIN) {
        sysfs_close(c);
        return rc;
    }
    memset(info, 0, sizeof(*info));
    info->n_channels = 1;
    snprintf(info->channel[0], sizeof(info->channel[0]), "temp");
    info->unit = "degC";
    info->max_frames = 1;
    snprintf(info->where, sizeof(info->where), "%s", file);
    *ctx = c;
    return 0;
}

const struct pdm_onboard_ops pdm_onboard_sysfs = {
    .name = "sysfs",
    .open = sysfs_open,
    .read = sysfs_read,
    .close = sysfs_close,
};
