/* pdmctl keygen and pdmctl sign-model: the backend side of signed model updates (mbed TLS).
 *
 * keygen makes the EC P-256 key pair a backend signs with; devices get the public half as
 * [agent] model_pubkey. sign-model validates a model file with the agent's own loader, signs
 * the text defined in pdm.proto (ModelUpdate) and writes the encoded pdm.v1.ModelUpdate, ready
 * to publish on {topic_prefix}/{device_id}/cmd/model or {topic_prefix}/fleet/cmd/model. For a
 * key kept in an HSM or a cloud KMS, --print-text prints what to sign and --signature takes
 * the DER signature made there. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/error.h>
#include <mbedtls/platform_util.h>

#include "agent/modelsig.h"
#include "agent/uplink.h"
#include "cli.h"
#include "keyfile.h"
#include "lib/fileio.h"
#include "models/model.h"
#include "pdm/v1/pdm.pb-c.h"
#include "pdmctl.h"

#define PEM_MAX 4096

/* ---- keygen ------------------------------------------------------------------------------- */

static void keygen_usage(FILE *f)
{
    fprintf(f,
            "usage: pdmctl keygen --key-out PRIVATE.pem --pub-out PUBLIC.pem [--force]\n"
            "  Makes an EC P-256 key pair for signing model updates. The private key is written\n"
            "  owner-only (0600) and stays with the backend; the public key (0644) goes to every\n"
            "  device as [agent] model_pubkey. Prints the key id that updates name. Existing\n"
            "  files are not overwritten unless --force.\n");
}

int cmd_keygen(int argc, char **argv)
{
    const char *key_out = NULL, *pub_out = NULL;
    int force = 0, c;
    enum { O_KEY_OUT = 256, O_PUB_OUT, O_FORCE, O_HELP };
    static const struct option longopts[] = {
        {"key-out", required_argument, 0, O_KEY_OUT},
        {"pub-out", required_argument, 0, O_PUB_OUT},
        {"force", no_argument, 0, O_FORCE},
        {"help", no_argument, 0, O_HELP},
        {0, 0, 0, 0},
    };
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (c) {
        case O_KEY_OUT:
            key_out = optarg;
            break;
        case O_PUB_OUT:
            pub_out = optarg;
            break;
        case O_FORCE:
            force = 1;
            break;
        case 'h':
        case O_HELP:
            keygen_usage(stdout);
            return PDMCTL_EXIT_OK;
        default: /* ':' a value is missing, '?' unknown */
            return pdmctl_cli_bad_option("keygen", c, argv, keygen_usage);
        }
    }
    if (optind < argc)
        return pdmctl_cli_extra_arg("keygen", argv[optind], keygen_usage);
    if (!key_out || !pub_out) {
        fprintf(stderr, "pdmctl keygen: --key-out and --pub-out are required\n");
        keygen_usage(stderr);
        return PDMCTL_EXIT_USAGE;
    }
    struct pdm_rng rng;
    mbedtls_pk_context pk;
    mbedtls_pk_init(&pk);
    int code = PDMCTL_EXIT_FAIL;
    unsigned char priv[PEM_MAX], pub[PEM_MAX];
    char id[PDM_KEY_ID_LEN + 1], err[512];
    if (pdm_rng_init(&rng, "pdmctl keygen") != 0 || pdm_gen_p256(&pk, &rng) != 0 ||
        mbedtls_pk_write_key_pem(&pk, priv, sizeof(priv)) != 0 ||
        mbedtls_pk_write_pubkey_pem(&pk, pub, sizeof(pub)) != 0 || pdm_key_id(&pk, id) != 0) {
        fprintf(stderr, "pdmctl keygen: cannot make the key (mbed TLS)\n");
        goto out;
    }
    if (pdm_write_new_file(key_out, priv, strlen((char *)priv), 0600, force, err, sizeof(err)) !=
            0 ||
        pdm_write_new_file(pub_out, pub, strlen((char *)pub), 0644, force, err, sizeof(err)) != 0) {
        fprintf(stderr, "pdmctl keygen: %s\n", err);
        goto out;
    }
    printf("key id %s\n", id);
    fprintf(stderr,
            "pdmctl keygen: private key %s (0600, keep it on the backend), public key %s (for "
            "[agent] model_pubkey)\n",
            key_out, pub_out);
    code = PDMCTL_EXIT_OK;
out:
    mbedtls_platform_zeroize(priv, sizeof(priv));
    mbedtls_pk_free(&pk);
    pdm_rng_free(&rng);
    return code;
}

/* ---- sign-model --------------------------------------------------------------------------- */

static void sign_usage(FILE *f)
{
    fprintf(f,
            "usage: pdmctl sign-model --key PRIVATE.pem --model FILE [--asset NAME]\n"
            "                         [--version N] [--request-id ID] -o UPDATE.bin\n"
            "       pdmctl sign-model --model FILE [--asset NAME] --print-text\n"
            "       pdmctl sign-model --model FILE [--asset NAME] --signature SIG.der\n"
            "                         --pubkey PUBLIC.pem [--request-id ID] -o UPDATE.bin\n"
            "  Checks the model file with the agent's loader, signs it (ECDSA P-256 over SHA-256\n"
            "  of the text in pdm.proto, ModelUpdate: target asset, version, the model's\n"
            "  SHA-256) and writes the pdm.v1.ModelUpdate to publish on\n"
            "  {topic_prefix}/{device_id}/cmd/model, or {topic_prefix}/fleet/cmd/model for every\n"
            "  device (pdmctl publish, or mosquitto_pub -f UPDATE.bin).\n"
            "  --asset NAME  only that asset; without it every asset running the model's id\n"
            "  --version N   must equal the model file's version (a check, not an override)\n"
            "  --print-text  print the exact text to sign (for a key in an HSM or KMS)\n"
            "  --signature   a DER ECDSA signature of that text made elsewhere; --pubkey checks\n"
            "                it and gives the key id\n"
            "  -o -          the update on stdout\n");
}

/* Reads and checks the model file; returns the bytes (malloc'd) or NULL after saying why. */
static unsigned char *load_checked_model(const char *path, struct pdm_model *m, size_t *len)
{
    struct pdm_diag diag = {.out = stderr, .errors = 0};
    if (pdm_model_load(path, m, &diag) != 0) {
        fprintf(stderr, "pdmctl sign-model: %s does not load: not signed\n", path);
        return NULL;
    }
    unsigned char *buf = NULL;
    int rc = pdm_read_file(path, PDM_UPLINK_MSG_MAX, &buf, len);
    if (rc != 0) {
        fprintf(stderr, "pdmctl sign-model: cannot read %s: %s\n", path,
                rc == -EFBIG ? "larger than an agent takes (32 KiB)" : strerror(-rc));
        return NULL;
    }
    return buf;
}

int cmd_sign_model(int argc, char **argv)
{
    const char *key = NULL, *model_path = NULL, *asset = "", *out_path = NULL;
    const char *request_id = NULL, *sig_path = NULL, *pub_path = NULL;
    uint64_t version = 0; /* 0 = no --version given */
    int print_text = 0, c;
    enum {
        O_KEY = 256,
        O_MODEL,
        O_ASSET,
        O_VERSION,
        O_REQUEST_ID,
        O_PRINT_TEXT,
        O_SIGNATURE,
        O_PUBKEY,
        O_HELP
    };
    static const struct option longopts[] = {
        {"key", required_argument, 0, O_KEY},
        {"model", required_argument, 0, O_MODEL},
        {"asset", required_argument, 0, O_ASSET},
        {"version", required_argument, 0, O_VERSION},
        {"request-id", required_argument, 0, O_REQUEST_ID},
        {"print-text", no_argument, 0, O_PRINT_TEXT},
        {"signature", required_argument, 0, O_SIGNATURE},
        {"pubkey", required_argument, 0, O_PUBKEY},
        {"help", no_argument, 0, O_HELP},
        {0, 0, 0, 0},
    };
    optind = 1;
    opterr = 0;
    /* -o - (the update on stdout): getopt takes "-" as -o's value */
    while ((c = getopt_long(argc, argv, ":ho:", longopts, NULL)) != -1) {
        switch (c) {
        case O_KEY:
            key = optarg;
            break;
        case O_MODEL:
            model_path = optarg;
            break;
        case O_ASSET:
            asset = optarg;
            break;
        case 'o':
            out_path = optarg;
            break;
        case O_VERSION: {
            /* 64 bits, not long: long is 32 bits on armhf, where UINT32_MAX does not fit */
            int64_t v;
            if (pdmctl_parse_i64("sign-model", "--version", NULL, optarg, 1, UINT32_MAX, &v) < 0)
                return PDMCTL_EXIT_USAGE;
            version = (uint64_t)v;
            break;
        }
        case O_REQUEST_ID:
            request_id = optarg;
            break;
        case O_PRINT_TEXT:
            print_text = 1;
            break;
        case O_SIGNATURE:
            sig_path = optarg;
            break;
        case O_PUBKEY:
            pub_path = optarg;
            break;
        case 'h':
        case O_HELP:
            sign_usage(stdout);
            return PDMCTL_EXIT_OK;
        default: /* ':' a value is missing, '?' unknown */
            return pdmctl_cli_bad_option("sign-model", c, argv, sign_usage);
        }
    }
    if (optind < argc)
        return pdmctl_cli_extra_arg("sign-model", argv[optind], sign_usage);
    const char *problem = !model_path                        ? "--model FILE is required"
                          : print_text && (key || sig_path)  ? "--print-text signs nothing"
                          : !print_text && !out_path         ? "-o UPDATE.bin is required"
                          : !print_text && !key && !sig_path ? "--key (or --signature) is required"
                          : key && sig_path                  ? "--key or --signature, not both"
                          : sig_path && !pub_path            ? "--signature needs --pubkey"
                          : strlen(asset) > 64 || strpbrk(asset, "/\n")
                              ? "--asset: not an asset name"
                              : NULL;
    if (problem) {
        fprintf(stderr, "pdmctl sign-model: %s\n", problem);
        sign_usage(stderr);
        return PDMCTL_EXIT_USAGE;
    }

    struct pdm_model m;
    size_t mlen = 0;
    unsigned char *model = load_checked_model(model_path, &m, &mlen);
    if (!model)
        return PDMCTL_EXIT_FAIL;
    int code = PDMCTL_EXIT_FAIL;
    struct pdm_rng rng;
    int rng_used = 0;
    mbedtls_pk_context pk;
    mbedtls_pk_init(&pk);
    unsigned char sig[PDM_MODELSIG_SIGMAX];
    size_t siglen = 0;
    unsigned char *ext_sig = NULL;
    uint8_t *buf = NULL;
    char id[PDM_KEY_ID_LEN + 1];
    char text[PDM_MODELSIG_TEXT];
    uint8_t digest[32];
    if (version && version != m.version) {
        fprintf(stderr,
                "pdmctl sign-model: --version %" PRIu64 ", but %s says version = %u: not signed\n",
                version, model_path, m.version);
        goto out;
    }
    int tlen = pdm_modelsig_text(asset, m.version, model, mlen, text, sizeof(text));
    if (tlen < 0 || pdm_modelsig_digest(asset, m.version, model, mlen, digest) != 0) {
        fprintf(stderr, "pdmctl sign-model: cannot build the text to sign\n");
        goto out;
    }
    if (print_text) {
        fwrite(text, 1, (size_t)tlen, stdout);
        code = fflush(stdout) == 0 ? PDMCTL_EXIT_OK : PDMCTL_EXIT_FAIL;
        goto out;
    }

    int mr;
    if (key) {
        mr = mbedtls_pk_parse_keyfile(&pk, key, NULL);
        if (mr != 0) {
            char why[128];
            mbedtls_strerror(mr, why, sizeof(why));
            fprintf(stderr, "pdmctl sign-model: --key %s: %s\n", key, why);
            goto out;
        }
    } else if ((mr = mbedtls_pk_parse_public_keyfile(&pk, pub_path)) != 0) {
        char why[128];
        mbedtls_strerror(mr, why, sizeof(why));
        fprintf(stderr, "pdmctl sign-model: --pubkey %s: %s\n", pub_path, why);
        goto out;
    }
    if (!pdm_key_is_p256(&pk)) {
        fprintf(stderr, "pdmctl sign-model: %s is not an EC P-256 key (pdmctl keygen makes one)\n",
                key ? key : pub_path);
        goto out;
    }
    pdm_key_id(&pk, id);
    if (key) {
        rng_used = 1;
        if (pdm_rng_init(&rng, "pdmctl sign-model") != 0 ||
            mbedtls_pk_sign(&pk, MBEDTLS_MD_SHA256, digest, sizeof(digest), sig, &siglen,
                            pdm_rng_fill, &rng) != 0) {
            fprintf(stderr, "pdmctl sign-model: signing failed (mbed TLS)\n");
            goto out;
        }
    } else {
        size_t n = 0;
        int rc = pdm_read_file(sig_path, sizeof(sig), &ext_sig, &n);
        if (rc != 0) {
            fprintf(stderr, "pdmctl sign-model: --signature %s: %s\n", sig_path,
                    rc == -EFBIG ? "too large for an ECDSA P-256 signature" : strerror(-rc));
            goto out;
        }
        memcpy(sig, ext_sig, n);
        siglen = n;
    }
    /* what the device will check, checked here first */
    if (pdm_modelsig_verify(&pk, asset, m.version, model, mlen, sig, siglen) != 0) {
        fprintf(stderr,
                "pdmctl sign-model: the signature does not verify with key %s for this text; "
                "nothing written:\n%s",
                id, text);
        goto out;
    }

    char rid[96];
    if (!request_id) {
        snprintf(rid, sizeof(rid), "model-%.64s-v%u", m.id, m.version);
        request_id = rid;
    }
    Pdm__V1__ModelUpdate u = PDM__V1__MODEL_UPDATE__INIT;
    u.request_id = (char *)request_id;
    u.asset = (char *)asset;
    u.model.data = model;
    u.model.len = mlen;
    u.version = m.version;
    u.signature.data = sig;
    u.signature.len = siglen;
    u.key_id = id;
    size_t sz = pdm__v1__model_update__get_packed_size(&u);
    if (sz > PDM_UPLINK_MSG_MAX) {
        fprintf(stderr, "pdmctl sign-model: the update is %zu bytes; agents take at most %d\n", sz,
                PDM_UPLINK_MSG_MAX);
        goto out;
    }
    buf = malloc(sz ? sz : 1);
    if (!buf)
        goto out;
    pdm__v1__model_update__pack(&u, buf);
    FILE *f = strcmp(out_path, "-") == 0 ? stdout : fopen(out_path, "wb");
    if (!f || fwrite(buf, 1, sz, f) != sz || (f != stdout ? fclose(f) : fflush(f)) != 0) {
        fprintf(stderr, "pdmctl sign-model: cannot write %s: %s\n", out_path, strerror(errno));
        goto out;
    }
    char sha[65];
    pdm_sha256_hex(model, mlen, sha);
    fprintf(stderr,
            "pdmctl sign-model: model %s v%u (%zu bytes, sha256 %.16s...) for %s%s%s, signed "
            "with key %s: %s (%zu bytes), request_id %s\n",
            m.id, m.version, mlen, sha, asset[0] ? "asset " : "every asset running model ",
            asset[0] ? asset : m.id, "", id, out_path, sz, request_id);
    code = PDMCTL_EXIT_OK;
out:
    free(buf);
    free(ext_sig);
    free(model);
    mbedtls_pk_free(&pk);
    if (rng_used)
        pdm_rng_free(&rng);
    return code;
}
