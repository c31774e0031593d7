/* Key material for pdmctl (see keyfile.h). */
#include "keyfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mbedtls/ecp.h>

int pdm_rng_init(struct pdm_rng *r, const char *who)
{
    mbedtls_entropy_init(&r->entropy);
    mbedtls_ctr_drbg_init(&r->drbg);
    return mbedtls_ctr_drbg_seed(&r->drbg, mbedtls_entropy_func, &r->entropy,
                                 (const unsigned char *)who, strlen(who)) == 0
               ? 0
               : -EIO;
}

void pdm_rng_free(struct pdm_rng *r)
{
    mbedtls_ctr_drbg_free(&r->drbg);
    mbedtls_entropy_free(&r->entropy);
}

int pdm_rng_fill(void *rng, unsigned char *out, size_t len)
{
    struct pdm_rng *r = rng;
    return mbedtls_ctr_drbg_random(&r->drbg, out, len);
}

int pdm_gen_p256(mbedtls_pk_context *pk, struct pdm_rng *r)
{
    if (mbedtls_pk_setup(pk, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY)) != 0)
        return -EIO;
    return mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(*pk), pdm_rng_fill, r) == 0
               ? 0
               : -EIO;
}

static int write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return w < 0 ? -errno : -EIO;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

int pdm_write_new_file(const char *path, const void *buf, size_t len, mode_t mode, int force,
                       char *err, size_t errlen)
{
    char tmp[4096];
    const char *target = path;
    if (force) {
        int n = snprintf(tmp, sizeof(tmp), "%s.tmp-%ld", path, (long)getpid());
        if (n < 0 || (size_t)n >= sizeof(tmp)) {
            snprintf(err, errlen, "%s: path too long", path);
            return -ENAMETOOLONG;
        }
        target = tmp;
    }
    int fd = open(target, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0) {
        int e = errno;
        if (e == EEXIST && !force)
            snprintf(err, errlen, "%s exists: refusing to overwrite it (--force replaces it)",
                     path);
        else
            snprintf(err, errlen, "cannot create %s: %s", target, strerror(e));
        return -e;
    }
    /* the umask may have taken bits away; a key file must have exactly these */
    int rc = fchmod(fd, mode) == 0 ? 0 : -errno;
    if (rc == 0)
        rc = write_all(fd, buf, len);
    if (rc == 0 && fsync(fd) != 0)
        rc = -errno;
    if (close(fd) != 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && force && rename(tmp, path) != 0)
        rc = -errno;
    if (rc != 0) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(-rc));
        unlink(target);
    }
    return rc;
}
