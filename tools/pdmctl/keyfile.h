/* Key material for pdmctl keygen, enroll and sign-model, with mbed TLS: a seeded random
 * generator, EC P-256 key generation, and files written owner-only without ever clobbering an
 * existing one by accident. */
#ifndef PDMCTL_KEYFILE_H
#define PDMCTL_KEYFILE_H

#include <stddef.h>
#include <sys/types.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/pk.h>

struct pdm_rng {
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
};

/* Seeds the generator from the system's entropy (getrandom). 0 or -EIO. */
int pdm_rng_init(struct pdm_rng *r, const char *who);
void pdm_rng_free(struct pdm_rng *r);
/* For mbed TLS's f_rng arguments. */
int pdm_rng_fill(void *rng, unsigned char *out, size_t len);

/* pk (initialised, empty) becomes a new EC P-256 key pair. 0 or -EIO. */
int pdm_gen_p256(mbedtls_pk_context *pk, struct pdm_rng *r);

/* Writes len bytes to path with exactly mode. Without force an existing path is an error
 * (O_EXCL: "refusing to overwrite"); with force the file is replaced through a temporary one
 * created with mode, so a key never sits in a file with looser permissions. 0 or -errno with
 * the reason in err. */
int pdm_write_new_file(const char *path, const void *buf, size_t len, mode_t mode, int force,
                       char *err, size_t errlen);

#endif
