/* Signed model updates: what is signed, key ids, and verification with mbed TLS.
 *
 * The backend signs, with ECDSA on P-256, the SHA-256 digest of this text (pdm.proto,
 * ModelUpdate, is the reference):
 *
 *   pdm-model-update-v1\n
 *   asset=<target asset, or empty for every asset running the model's id>\n
 *   version=<decimal>\n
 *   sha256=<SHA-256 of the model bytes, lowercase hex>\n
 *
 * A key is named by its key id: the first 8 bytes of the SHA-256 of its DER
 * SubjectPublicKeyInfo, as 16 lowercase hex digits. A public key file ([agent] model_pubkey)
 * may hold several PEM public keys, so a backend can rotate its signing key: devices that
 * know the old and the new key accept updates signed with either.
 *
 * Used by the agent (verify) and by pdmctl sign-model (the same text and key ids), so both
 * sides agree by construction; the tests also sign with openssl to check it from outside. */
#ifndef PDM_MODELSIG_H
#define PDM_MODELSIG_H

#include <stddef.h>
#include <stdint.h>

#include <mbedtls/pk.h>

#define PDM_KEY_ID_LEN      16  /* hex digits */
#define PDM_KEYRING_MAX     4   /* public keys in one model_pubkey file */
#define PDM_MODELSIG_TEXT   256 /* enough for the signed text with a 64-character asset name */
#define PDM_MODELSIG_SIGMAX MBEDTLS_PK_SIGNATURE_MAX_SIZE

struct pdm_keyring {
    mbedtls_pk_context pk[PDM_KEYRING_MAX];
    char id[PDM_KEYRING_MAX][PDM_KEY_ID_LEN + 1];
    unsigned n;
};

/* Reads every "-----BEGIN PUBLIC KEY-----" block of path; each must be an EC P-256 key.
 * Returns 0, or -errno with the reason in err (a file with no public key, a private key, a key
 * of another type or curve are errors). kr is initialised in every case: free it. */
int pdm_keyring_load(struct pdm_keyring *kr, const char *path, char *err, size_t errlen);
void pdm_keyring_free(struct pdm_keyring *kr);
/* Index of the key with this id, or -1. */
int pdm_keyring_find(const struct pdm_keyring *kr, const char *key_id);
/* "id1, id2" of the keys, for messages. */
void pdm_keyring_ids(const struct pdm_keyring *kr, char *out, size_t len);

/* The key id of pk (public or private key). 0 or -errno. */
int pdm_key_id(mbedtls_pk_context *pk, char out[PDM_KEY_ID_LEN + 1]);
/* 1 if pk is an EC key on P-256. */
int pdm_key_is_p256(const mbedtls_pk_context *pk);

/* The text above into out; returns its length, or -EINVAL (asset too long, has a newline) or
 * -ENOSPC. */
int pdm_modelsig_text(const char *asset, uint32_t version, const uint8_t *model, size_t len,
                      char *out, size_t cap);
/* SHA-256 of that text. 0 or -errno. */
int pdm_modelsig_digest(const char *asset, uint32_t version, const uint8_t *model, size_t len,
                        uint8_t digest[32]);
/* 0 when sig is a valid signature by pk of (asset, version, model); -EBADMSG when it is not. */
int pdm_modelsig_verify(mbedtls_pk_context *pk, const char *asset, uint32_t version,
                        const uint8_t *model, size_t len, const uint8_t *sig, size_t siglen);

/* SHA-256 of buf as 64 lowercase hex digits. */
void pdm_sha256_hex(const uint8_t *buf, size_t len, char out[65]);

#endif
