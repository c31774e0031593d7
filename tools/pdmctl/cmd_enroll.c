/* pdmctl enroll: the device's TLS identity, made on the device with mbed TLS.
 *
 * Generates an EC P-256 key (written owner-only, 0600, never over an existing file unless
 * --force) and a PKCS#10 certificate signing request for CN=DEVICE_ID. The private key never
 * leaves the gateway: only the CSR goes to the CA, which returns the certificate that
 * [mqtt] cert_file names (key_file names the key). The broker then knows the device by the
 * certificate's CN (mosquitto: use_identity_as_username), so CN must be the device_id. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <mbedtls/error.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/x509_csr.h>

#include "agent/config.h"
#include "agent/modelsig.h"
#include "cli.h"
#include "keyfile.h"
#include "pdmctl.h"

#define PEM_MAX 4096

static void usage(FILE *f)
{
    fprintf(f, "usage: pdmctl enroll --key-out device.key --csr-out device.csr --cn DEVICE_ID\n"
               "                     [--org ORGANISATION] [--force]\n"
               "  Makes the device's EC P-256 key (owner-only, 0600) and a certificate signing\n"
               "  request for CN=DEVICE_ID (the [agent] device_id). Send the CSR to your CA; the\n"
               "  certificate it returns is [mqtt] cert_file, the key is key_file. Existing files\n"
               "  are not overwritten unless --force (a new key needs a new certificate).\n");
}

/* A value for the subject: printable, no backslash; mbed TLS 2.28 escapes only ','. */
static int subject_value(const char *in, char *out, size_t len)
{
    size_t o = 0;
    for (const char *p = in; *p; p++) {
        if (*p < 0x20 || *p > 0x7e || *p == '\\' || *p == '"')
            return -1;
        if (o + 3 >= len)
            return -1;
        if (*p == ',')
            out[o++] = '\\';
        out[o++] = *p;
    }
    out[o] = '\0';
    return o ? 0 : -1;
}

int cmd_enroll(int argc, char **argv)
{
    const char *key_out = NULL, *csr_out = NULL, *cn = NULL, *org = NULL;
    int force = 0, c;
    enum { O_KEY_OUT = 256, O_CSR_OUT, O_CN, O_ORG, O_FORCE, O_HELP };
    static const struct option longopts[] = {
        {"key-out", required_argument, 0, O_KEY_OUT},
        {"csr-out", required_argument, 0, O_CSR_OUT},
        {"cn", required_argument, 0, O_CN},
        {"org", required_argument, 0, O_ORG},
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
        case O_CSR_OUT:
            csr_out = optarg;
            break;
        case O_CN:
            cn = optarg;
            break;
        case O_ORG:
            org = optarg;
            break;
        case O_FORCE:
            force = 1;
            break;
        case 'h':
        case O_HELP:
            usage(stdout);
            return PDMCTL_EXIT_OK;
        default: /* ':' a value is missing, '?' unknown */
            return pdmctl_cli_bad_option("enroll", c, argv, usage);
        }
    }
    if (optind < argc)
        return pdmctl_cli_extra_arg("enroll", argv[optind], usage);
    if (!key_out || !csr_out || !cn) {
        fprintf(stderr, "pdmctl enroll: --key-out, --csr-out and --cn are required\n");
        usage(stderr);
        return PDMCTL_EXIT_USAGE;
    }
    /* the same rule as [agent] device_id, which the broker will see as the CN */
    size_t n = strlen(cn);
    int id_ok = n >= 1 && n <= PDM_NAME_MAX && strcmp(cn, PDM_FLEET_ID) != 0;
    for (size_t i = 0; id_ok && i < n; i++)
        id_ok = (cn[i] >= 'A' && cn[i] <= 'Z') || (cn[i] >= 'a' && cn[i] <= 'z') ||
                (cn[i] >= '0' && cn[i] <= '9') || cn[i] == '_' || cn[i] == '-';
    if (!id_ok) {
        fprintf(stderr,
                "pdmctl enroll: --cn '%s': a device_id is 1 to %d characters from A-Z a-z 0-9 _ "
                "- and not '%s'\n",
                cn, PDM_NAME_MAX, PDM_FLEET_ID);
        return PDMCTL_EXIT_USAGE;
    }
    char subject[400], org_v[256] = "";
    if (org && subject_value(org, org_v, sizeof(org_v)) != 0) {
        fprintf(stderr, "pdmctl enroll: --org '%s': printable ASCII without \\ or \", please\n",
                org);
        return PDMCTL_EXIT_USAGE;
    }
    /* mbed TLS writes the names in this order: the organisation first, as CAs expect */
    snprintf(subject, sizeof(subject), "%s%s%sCN=%s", org ? "O=" : "", org_v, org ? "," : "", cn);

    struct pdm_rng rng;
    mbedtls_pk_context pk;
    mbedtls_x509write_csr req;
    mbedtls_pk_init(&pk);
    mbedtls_x509write_csr_init(&req);
    unsigned char key_pem[PEM_MAX], csr_pem[PEM_MAX];
    char id[PDM_KEY_ID_LEN + 1], err[512];
    int code = PDMCTL_EXIT_FAIL;
    int mr = 0;
    if (pdm_rng_init(&rng, "pdmctl enroll") != 0 || pdm_gen_p256(&pk, &rng) != 0 ||
        mbedtls_pk_write_key_pem(&pk, key_pem, sizeof(key_pem)) != 0) {
        fprintf(stderr, "pdmctl enroll: cannot make the key (mbed TLS)\n");
        goto out;
    }
    mbedtls_x509write_csr_set_md_alg(&req, MBEDTLS_MD_SHA256);
    mbedtls_x509write_csr_set_key(&req, &pk);
    if ((mr = mbedtls_x509write_csr_set_subject_name(&req, subject)) != 0 ||
        (mr = mbedtls_x509write_csr_set_key_usage(&req, MBEDTLS_X509_KU_DIGITAL_SIGNATURE)) != 0 ||
        (mr = mbedtls_x509write_csr_pem(&req, csr_pem, sizeof(csr_pem), pdm_rng_fill, &rng)) != 0) {
        char why[128];
        mbedtls_strerror(mr, why, sizeof(why));
        fprintf(stderr, "pdmctl enroll: cannot write the CSR for %s: %s\n", subject, why);
        goto out;
    }
    /* refuse before writing anything, so a refusal leaves no half of a pair behind */
    for (int k = 0; !force && k < 2; k++) {
        const char *path = k ? csr_out : key_out;
        if (access(path, F_OK) == 0) {
            fprintf(stderr,
                    "pdmctl enroll: %s exists: refusing to overwrite it (--force "
                    "replaces it)\n",
                    path);
            goto out;
        }
    }
    if (pdm_write_new_file(key_out, key_pem, strlen((char *)key_pem), 0600, force, err,
                           sizeof(err)) != 0 ||
        pdm_write_new_file(csr_out, csr_pem, strlen((char *)csr_pem), 0644, force, err,
                           sizeof(err)) != 0) {
        fprintf(stderr, "pdmctl enroll: %s\n", err);
        goto out;
    }
    pdm_key_id(&pk, id);
    printf("%s\n", subject);
    fprintf(stderr,
            "pdmctl enroll: key %s (EC P-256, 0600; public key id %s) and request %s for %s.\n"
            "Send %s to your CA; install the certificate it returns as [mqtt] cert_file and\n"
            "%s as key_file.\n",
            key_out, id, csr_out, subject, csr_out, key_out);
    code = PDMCTL_EXIT_OK;
out:
    mbedtls_platform_zeroize(key_pem, sizeof(key_pem));
    mbedtls_x509write_csr_free(&req);
    mbedtls_pk_free(&pk);
    pdm_rng_free(&rng);
    return code;
}
