/* Accepted model updates on disk (layout and guarantees in modelstore.h). */
#include "modelstore.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const suffix[] = {
    [PDM_MS_CURRENT] = ".model",
    [PDM_MS_PREV] = ".model.prev",
    [PDM_MS_HIGHEST] = ".highest",
    [PDM_MS_SCRATCH] = "",
};

int pdm_modelstore_open(struct pdm_modelstore *ms, const char *data_dir, char *err, size_t errlen)
{
    int n = snprintf(ms->dir, sizeof(ms->dir), "%s/models", data_dir);
    if (n < 0 || (size_t)n >= sizeof(ms->dir)) {
        snprintf(err, errlen, "model store: path too long under %s", data_dir);
        return -ENAMETOOLONG;
    }
    if (mkdir(ms->dir, 0750) != 0 && errno != EEXIST) {
        int e = errno;
        snprintf(err, errlen, "model store: cannot create %s: %s", ms->dir, strerror(e));
        return -e;
    }
    return 0;
}

int pdm_modelstore_path(const struct pdm_modelstore *ms, const char *asset, enum pdm_ms_file f,
                        char *out, size_t len)
{
    int n = f == PDM_MS_SCRATCH ? snprintf(out, len, "%s/incoming.tmp", ms->dir)
                                : snprintf(out, len, "%s/%s%s", ms->dir, asset, suffix[f]);
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* Writes buf to path (created or truncated), fsyncs it when sync. 0 or -errno. */
static int write_file(const char *path, const void *buf, size_t len, int sync)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0)
        return -errno;
    const char *p = buf;
    size_t left = len;
    int rc = 0;
    while (left && rc == 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            rc = w < 0 ? -errno : -EIO;
        else {
            p += w;
            left -= (size_t)w;
        }
    }
    if (rc == 0 && sync && fsync(fd) != 0)
        rc = -errno;
    if (close(fd) != 0 && rc == 0)
        rc = -errno;
    if (rc != 0)
        unlink(path);
    return rc;
}

/* fsync of the folder holding path: makes renames in it durable. */
static int sync_dir_of(const char *path)
{
    char dir[PDM_PATH_MAX];
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == dir)
        slash[1] = '\0';
    else if (slash)
        *slash = '\0';
    else
        snprintf(dir, sizeof(dir), ".");
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) == 0 ? 0 : -errno;
    close(fd);
    return rc;
}

static int tmp_name(const char *path, char *out, size_t len)
{
    int n = snprintf(out, len, "%s.tmp", path);
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int pdm_write_durable(const char *path, const void *buf, size_t len)
{
    char tmp[PDM_PATH_MAX + 8];
    int rc = tmp_name(path, tmp, sizeof(tmp));
    if (rc == 0)
        rc = write_file(tmp, buf, len, 1);
    if (rc == 0 && rename(tmp, path) != 0) {
        rc = -errno;
        unlink(tmp);
    }
    if (rc == 0)
        rc = sync_dir_of(path);
    return rc;
}

int pdm_modelstore_scratch(const struct pdm_modelstore *ms, const void *buf, size_t len)
{
    char path[PDM_PATH_MAX];
    int rc = pdm_modelstore_path(ms, NULL, PDM_MS_SCRATCH, path, sizeof(path));
    return rc == 0 ? write_file(path, buf, len, 0) : rc;
}

int pdm_modelstore_read_highest(const struct pdm_modelstore *ms, const char *asset,
                                uint32_t *version, char sha[65])
{
    char path[PDM_PATH_MAX];
    int rc = pdm_modelstore_path(ms, asset, PDM_MS_HIGHEST, path, sizeof(path));
    if (rc != 0)
        return rc;
    FILE *f = fopen(path, "r");
    if (!f)
        return -errno;
    char line[128] = "";
    char *got = fgets(line, sizeof(line), f);
    fclose(f);
    unsigned long v = 0;
    char hex[65] = "";
    int n = got ? sscanf(line, "%lu %64[0-9a-f]", &v, hex) : 0;
    if (n != 2 || v == 0 || v > UINT32_MAX || strlen(hex) != 64)
        return -EBADMSG;
    *version = (uint32_t)v;
    memcpy(sha, hex, 65);
    return 0;
}

/* Makes a copy of src at dst (created or truncated, fsynced). 0, or -errno. */
static int copy_file(const char *src, const char *dst)
{
    FILE *f = fopen(src, "rb");
    if (!f)
        return -errno;
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int rc = 0;
    for (;;) {
        if (len == cap) {
            char *nb = cap < (64u << 20) ? realloc(buf, cap ? cap * 2 : 65536) : NULL;
            if (!nb) {
                rc = -ENOMEM;
                break;
            }
            buf = nb;
            cap = cap ? cap * 2 : 65536;
        }
        size_t r = fread(buf + len, 1, cap - len, f);
        len += r;
        if (r == 0) {
            rc = ferror(f) ? -EIO : 0;
            break;
        }
    }
    fclose(f);
    if (rc == 0)
        rc = write_file(dst, buf, len, 1);
    free(buf);
    return rc;
}

int pdm_modelstore_install(const struct pdm_modelstore *ms, const char *asset, const void *model,
                           size_t len, uint32_t version, const char *sha, int rotate,
                           int *installed, char *err, size_t errlen)
{
    char cur[PDM_PATH_MAX], prev[PDM_PATH_MAX], high[PDM_PATH_MAX];
    char cur_tmp[PDM_PATH_MAX + 8], prev_tmp[PDM_PATH_MAX + 8], high_tmp[PDM_PATH_MAX + 8];
    char line[96];
    *installed = 0;
    int n = snprintf(line, sizeof(line), "%u %s\n", (unsigned)version, sha);
    int rc = n > 0 && (size_t)n < sizeof(line) ? 0 : -EINVAL;
    if (rc == 0)
        rc = pdm_modelstore_path(ms, asset, PDM_MS_CURRENT, cur, sizeof(cur));
    if (rc == 0)
        rc = pdm_modelstore_path(ms, asset, PDM_MS_PREV, prev, sizeof(prev));
    if (rc == 0)
        rc = pdm_modelstore_path(ms, asset, PDM_MS_HIGHEST, high, sizeof(high));
    if (rc == 0)
        rc = tmp_name(cur, cur_tmp, sizeof(cur_tmp));
    if (rc == 0)
        rc = tmp_name(prev, prev_tmp, sizeof(prev_tmp));
    if (rc == 0)
        rc = tmp_name(high, high_tmp, sizeof(high_tmp));
    if (rc != 0) {
        snprintf(err, errlen, "model store: file names for asset %s too long", asset);
        return rc;
    }
    /* both new files on disk before any name changes */
    if ((rc = write_file(cur_tmp, model, len, 1)) != 0) {
        snprintf(err, errlen, "cannot write %s: %s", cur_tmp, strerror(-rc));
        return rc;
    }
    if ((rc = write_file(high_tmp, line, (size_t)n, 1)) != 0) {
        snprintf(err, errlen, "cannot write %s: %s", high_tmp, strerror(-rc));
        unlink(cur_tmp);
        return rc;
    }
    /* The running file becomes the fallback without leaving its name: a second name (a hard
     * link, or a copy where the file system has none) is renamed over NAME.model.prev, and
     * NAME.model is only ever replaced by the rename below, so it is always the old or the new
     * model, never missing. */
    if (rotate) {
        unlink(prev_tmp); /* left by a crash */
        if (link(cur, prev_tmp) != 0) {
            rc = -errno;
            if (rc == -EPERM || rc == -EOPNOTSUPP || rc == -EXDEV || rc == -EMLINK)
                rc = copy_file(cur, prev_tmp);
        }
        if (rc == 0 && rename(prev_tmp, prev) != 0)
            rc = -errno;
        if (rc == -ENOENT) {
            rc = 0; /* no NAME.model yet: nothing to keep */
        } else if (rc != 0) {
            snprintf(err, errlen, "cannot keep %s as %s: %s", cur, prev, strerror(-rc));
            unlink(prev_tmp);
        }
    }
    if (rc == 0 && rename(cur_tmp, cur) != 0) {
        rc = -errno;
        snprintf(err, errlen, "cannot rename %s to %s: %s", cur_tmp, cur, strerror(-rc));
    }
    if (rc == 0)
        *installed = 1;
    if (rc == 0 && rename(high_tmp, high) != 0) {
        rc = -errno;
        snprintf(err, errlen, "cannot rename %s to %s: %s", high_tmp, high, strerror(-rc));
    }
    unlink(cur_tmp); /* whatever was not renamed */
    unlink(high_tmp);
    int src = sync_dir_of(cur);
    if (rc == 0 && src != 0) {
        rc = src;
        snprintf(err, errlen, "cannot sync the folder of %s: %s", cur, strerror(-rc));
    }
    return rc;
}
