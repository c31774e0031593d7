/* Signed model updates with mbed TLS (what is signed and why: modelsig.h, pdm.proto). */
#include "modelsig.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/ecp.h>
#include <mbedtls/error.h>
#include <mbedtls/sha256.h>

#include "lib/fileio.h"

#define KEYFILE_MAX (64 * 1024) /* a few PEM keys; anything larger is not a key file */

static const char BEGIN_PUB[] = "-----BEGIN PUBLIC KEY-----";
static const char END_PUB[] = "-----END PUBLIC KEY-----";

void pdm_sha256_hex(const uint8_t *buf, size_t len, char out[65])
{
    uint8_t d[32];
    mbedtls_sha256_ret(buf, len, d, 0);
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

int pdm_key_is_p256(const mbedtls_pk_context *pk)
{
    return mbedtls_pk_get_type(pk) == MBEDTLS_PK_ECKEY &&
           mbedtls_pk_ec(*pk)->grp.id == MBEDTLS_ECP_DP_SECP256R1;
}

int pdm_key_id(mbedtls_pk_context *pk, char out[PDM_KEY_ID_LEN + 1])
{
    unsigned char der[256];
    /* mbed TLS writes DER at the end of the buffer */
    int n = mbedtls_pk_write_pubkey_der(pk, der, sizeof(der));
    if (n <= 0)
        return -EINVAL;
    char hex[65];
    pdm_sha256_hex(der + sizeof(der) - n, (size_t)n, hex);
    memcpy(out, hex, PDM_KEY_ID_LEN);
    out[PDM_KEY_ID_LEN] = '\0';
    return 0;
}

static int line_of(const char *text, const char *p)
{
    int line = 1;
    for (const char *q = text; q < p; q++)
        line += *q == '\n';
    return line;
}

int pdm_keyring_load(struct pdm_keyring *kr, const char *path, char *err, size_t errlen)
{
    memset(kr, 0, sizeof(*kr));
    for (int i = 0; i < PDM_KEYRING_MAX; i++)
        mbedtls_pk_init(&kr->pk[i]);
    unsigned char *raw = NULL;
    size_t len = 0;
    int rc = pdm_read_file(path, KEYFILE_MAX, &raw, &len);
    if (rc != 0) {
        snprintf(err, errlen, "cannot read '%s': %s", path,
                 rc == -EFBIG ? "larger than 64 KiB, not a public key file" : strerror(-rc));
        return rc;
    }
    char *text = (char *)raw;
    if (strstr(text, "PRIVATE KEY-----")) {
        snprintf(err, errlen,
                 "'%s' holds a private key: the device needs only the public key (pdmctl keygen "
                 "writes it, or: openssl pkey -in KEY -pubout)",
                 path);
        rc = -EINVAL;
        goto out;
    }
    for (const char *p = strstr(text, BEGIN_PUB); p; p = strstr(p, BEGIN_PUB)) {
        const char *end = strstr(p, END_PUB);
        int line = line_of(text, p);
        if (!end) {
            snprintf(err, errlen, "'%s' line %d: PEM block without its END line", path, line);
            rc = -EINVAL;
            goto out;
        }
        end += strlen(END_PUB);
        if (kr->n == PDM_KEYRING_MAX) {
            snprintf(err, errlen, "'%s' line %d: more than %d public keys", path, line,
                     PDM_KEYRING_MAX);
            rc = -E2BIG;
            goto out;
        }
        /* mbed TLS parses PEM from a NUL-terminated buffer whose length counts the NUL */
        size_t n = (size_t)(end - p);
        char one[4096];
        if (n + 2 > sizeof(one)) {
            snprintf(err, errlen, "'%s' line %d: public key block too long", path, line);
            rc = -EINVAL;
            goto out;
        }
        memcpy(one, p, n);
        one[n] = '\n';
        one[n + 1] = '\0';
        mbedtls_pk_context *pk = &kr->pk[kr->n];
        int mr = mbedtls_pk_parse_public_key(pk, (const unsigned char *)one, n + 2);
        if (mr != 0) {
            char why[128];
            mbedtls_strerror(mr, why, sizeof(why));
            snprintf(err, errlen, "'%s' line %d: not a valid public key (%s)", path, line, why);
            rc = -EINVAL;
            goto out;
        }
        if (!pdm_key_is_p256(pk)) {
            int ec = mbedtls_pk_get_type(pk) == MBEDTLS_PK_ECKEY;
            snprintf(err, errlen,
                     "'%s' line %d: an %s key%s; model signatures are ECDSA on P-256 "
                     "(prime256v1): pdmctl keygen makes one",
                     path, line, ec ? "EC" : mbedtls_pk_get_name(pk),
                     ec ? " on another curve" : "");
            rc = -EINVAL;
            goto out;
        }
        pdm_key_id(pk, kr->id[kr->n]);
        kr->n++;
        p = end;
    }
    if (kr->n == 0) {
        snprintf(err, errlen, "'%s' holds no PEM public key (-----BEGIN PUBLIC KEY-----)", path);
        rc = -EINVAL;
    }
out:
    free(text);
    return rc;
}

void pdm_keyring_free(struct pdm_keyring *kr)
{
    for (int i = 0; i < PDM_KEYRING_MAX; i++)
        mbedtls_pk_free(&kr->pk[i]);
    kr->n = 0;
}

int pdm_keyring_find(const struct pdm_keyring *kr, const char *key_id)
{
    for (unsigned i = 0; key_id && i < kr->n; i++)
        if (strcmp(kr->id[i], key_id) == 0)
            return (int)i;
    return -1;
}

void pdm_keyring_ids(const struct pdm_keyring *kr, char *out, size_t len)
{
    size_t off = 0;
    out[0] = '\0';
    for (unsigned i = 0; i < kr->n && off < len; i++) {
        int w = snprintf(out + off, len - off, "%s%s", i ? ", " : "", kr->id[i]);
        if (w < 0)
            break;
        off += (size_t)w;
    }
}

int pdm_modelsig_text(const char *asset, uint32_t version, const uint8_t *model, size_t len,
                      char *out, size_t cap)
{
    if (!asset)
        asset = "";
    /* a newline in the asset would let one text be read two ways */
    if (strlen(asset) > 64 || strpbrk(asset, "\r\n"))
        return -EINVAL;
    char hex[65];
    pdm_sha256_hex(model, len, hex);
    int n = snprintf(out, cap, "pdm-model-update-v1\nasset=%s\nversion=%u\nsha256=%s\n", asset,
                     (unsigned)version, hex);
    if (n < 0 || (size_t)n >= cap)
        return -ENOSPC;
    return n;
}

int pdm_modelsig_digest(const char *asset, uint32_t version, const uint8_t *model, size_t len,
                        uint8_t digest[32])
{
    char text[PDM_MODELSIG_TEXT];
    int n = pdm_modelsig_text(asset, version, model, len, text, sizeof(text));
    if (n < 0)
        return n;
    return mbedtls_sha256_ret((const unsigned char *)text, (size_t)n, digest, 0) == 0 ? 0 : -EIO;
}

int pdm_modelsig_verify(mbedtls_pk_context *pk, const char *asset, uint32_t version,
                        const uint8_t *model, size_t len, const uint8_t *sig, size_t siglen)
{
    uint8_t d[32];
    int rc = pdm_modelsig_digest(asset, version, model, len, d);
    if (rc != 0)
        return -EBADMSG;
    if (!sig || siglen == 0)
        return -EBADMSG;
    return mbedtls_pk_verify(pk, MBEDTLS_MD_SHA256, d, sizeof(d), sig, siglen) == 0 ? 0 : -EBADMSG;
}
