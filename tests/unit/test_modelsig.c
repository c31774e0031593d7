/* Signed model updates, the parts below the agent loop: public key files and key ids,
 * signatures made by openssl (fixtures below, made with `openssl dgst -sha256 -sign`) checked
 * against the text pdm.proto defines, the accepted-model files in data_dir, and the generic
 * command helpers (topics, request_id from raw bytes, the CommandResult). */
#define _GNU_SOURCE
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/command.h"
#include "agent/modelsig.h"
#include "agent/modelstore.h"
#include "check.h"
#include "pdm/v1/pdm.pb-c.h"

static char g_dir[256];

/* Two P-256 keys; their ids as `openssl pkey -pubin -outform DER | sha256sum | cut -c1-16`
 * prints them: cd5a3198e141fe11 and 7505baf59204a6ab. */
#define PUB_A                                                                                      \
    "-----BEGIN PUBLIC KEY-----\n"                                                                 \
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAENESLhNwm60v1mV19N1Fn3o9RmYbs\n"                           \
    "cIya8tKL08uJX+TbwxCdnCMZONeeAmt1e4ImXkWUa2UThwfGmNNgskAFxg==\n"                               \
    "-----END PUBLIC KEY-----\n"
#define PUB_B                                                                                      \
    "-----BEGIN PUBLIC KEY-----\n"                                                                 \
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEmu98oDIM5+3+LgZxKBRk8vQF09VD\n"                           \
    "WxGXyI0MsUEVdd607PEar02jKhOSoxUEuC3QqoEbaKK7F2FT1EONi3FU6Q==\n"                               \
    "-----END PUBLIC KEY-----\n"
#define PUB_P384                                                                                   \
    "-----BEGIN PUBLIC KEY-----\n"                                                                 \
    "MHYwEAYHKoZIzj0CAQYFK4EEACIDYgAE7BJwKhiTHPor6PCqEQbvqAvhmfqSSK37\n"                           \
    "5iBcRvfCJAZ6ajrzorEq/o6SoQU8Jgd3dbIOp6pp36pgRIwrtoSZPFW+6mkI6lQy\n"                           \
    "FDr3LxGoHCbNg0Rs1Wc9UGY3GqcoHNDu\n"                                                           \
    "-----END PUBLIC KEY-----\n"
#define PUB_RSA                                                                                    \
    "-----BEGIN PUBLIC KEY-----\n"                                                                 \
    "MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQCvCaftJolwIx8dRINHwma+unsk\n"                           \
    "S175DRJ8SES266dYa6uoZh+Cf5uvcOus8LurcyRQozS99kQp2ChvhS5Xr0L8qkOL\n"                           \
    "+JEKdXOdA8hycfsfgcu+HSFrbQt7lsW7QC+mM4lVCTX38r9c5HchCkruEYQ/9cwA\n"                           \
    "zz8ZfmWoSsuP67tKPQIDAQAB\n"                                                                   \
    "-----END PUBLIC KEY-----\n"

/* openssl dgst -sha256 -sign A.key over
 * "pdm-model-update-v1\nasset=pump-7\nversion=42\nsha256=<sha256 of "model bytes\n">\n" */
static const uint8_t SIG_A[] = {
    0x30, 0x45, 0x02, 0x21, 0x00, 0x94, 0x54, 0xc2, 0xb1, 0xaa, 0x87, 0xf0, 0x8e, 0xe9, 0x00,
    0x67, 0x45, 0xb0, 0xf2, 0x83, 0x6d, 0x35, 0xa0, 0x74, 0x2a, 0x18, 0x89, 0xb5, 0x1a, 0x44,
    0x6e, 0xbf, 0x35, 0x87, 0xe9, 0x5d, 0x63, 0x02, 0x20, 0x0b, 0x9a, 0x85, 0x62, 0x96, 0x01,
    0x73, 0x45, 0x70, 0x3b, 0xa0, 0x8d, 0x1c, 0x9a, 0x20, 0xb5, 0x48, 0x36, 0x2a, 0xbc, 0xaa,
    0xa8, 0x2e, 0x4a, 0xa4, 0xab, 0xfd, 0x8a, 0xf3, 0xdd, 0x4c, 0xa1};
static const char MODEL[] = "model bytes\n";

static const char *write_file(const char *name, const char *text)
{
    static char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", g_dir, name);
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        exit(2);
    }
    fputs(text, f);
    fclose(f);
    return path;
}

static void test_keyring(void)
{
    struct pdm_keyring kr;
    char err[512];
    const char *path =
        write_file("two.pub", "# rotation: old key, then the new one\n" PUB_A "\n" PUB_B);
    CHECK_INT(pdm_keyring_load(&kr, path, err, sizeof(err)), 0);
    CHECK_INT(kr.n, 2);
    CHECK_STR(kr.id[0], "cd5a3198e141fe11");
    CHECK_STR(kr.id[1], "7505baf59204a6ab");
    CHECK_INT(pdm_keyring_find(&kr, "7505baf59204a6ab"), 1);
    CHECK_INT(pdm_keyring_find(&kr, "0000000000000000"), -1);
    CHECK_INT(pdm_keyring_find(&kr, NULL), -1);
    char ids[64];
    pdm_keyring_ids(&kr, ids, sizeof(ids));
    CHECK_STR(ids, "cd5a3198e141fe11, 7505baf59204a6ab");

    /* the openssl signature verifies for exactly what was signed, and nothing else */
    const uint8_t *m = (const uint8_t *)MODEL;
    size_t ml = strlen(MODEL);
    CHECK_INT(pdm_modelsig_verify(&kr.pk[0], "pump-7", 42, m, ml, SIG_A, sizeof(SIG_A)), 0);
    CHECK_INT(pdm_modelsig_verify(&kr.pk[1], "pump-7", 42, m, ml, SIG_A, sizeof(SIG_A)),
              -EBADMSG); /* the other key */
    CHECK_INT(pdm_modelsig_verify(&kr.pk[0], "pump-8", 42, m, ml, SIG_A, sizeof(SIG_A)),
              -EBADMSG); /* another asset */
    CHECK_INT(pdm_modelsig_verify(&kr.pk[0], "", 42, m, ml, SIG_A, sizeof(SIG_A)), -EBADMSG);
    CHECK_INT(pdm_modelsig_verify(&kr.pk[0], "pump-7", 43, m, ml, SIG_A, sizeof(SIG_A)),
              -EBADMSG); /* another version */
    CHECK_INT(pdm_modelsig_verify(&kr.pk[0], "pump-7", 42, m, ml - 1, SIG_A, sizeof(SIG_A)),
              -EBADMSG); /* other bytes */
    uint8_t bad[sizeof(SIG_A)];
    memcpy(bad, SIG_A, sizeof(bad));
    bad[20] ^= 1;
    CHECK_INT(pdm_modelsig_verify(&kr.pk[0], "pump-7", 42, m, ml, bad, sizeof(bad)), -EBADMSG);
    CHECK_INT(pdm_modelsig_verify(&kr.pk[0], "pump-7", 42, m, ml, SIG_A, 10), -EBADMSG);
    CHECK_INT(pdm_modelsig_verify(&kr.pk[0], "pump-7", 42, m, ml, NULL, 0), -EBADMSG);
    pdm_keyring_free(&kr);

    /* the text itself, byte for byte */
    char text[PDM_MODELSIG_TEXT];
    int n = pdm_modelsig_text("pump-7", 42, m, ml, text, sizeof(text));
    CHECK_STR(text, "pdm-model-update-v1\nasset=pump-7\nversion=42\nsha256="
                    "5a3949ca84f738f57e5005ddb999bd80bbcded1eef362fcf31a8ff6e21a63915\n");
    CHECK_INT(n, (int)strlen(text));
    CHECK_INT(pdm_modelsig_text("a\nversion=1", 1, m, ml, text, sizeof(text)), -EINVAL);

    /* files that are not one to four P-256 public keys */
    struct {
        const char *name, *text, *why;
    } bad_files[] = {
        {"rsa.pub", PUB_RSA, "line 1: an RSA key; model signatures are ECDSA on P-256"},
        {"p384.pub", PUB_A PUB_P384, "line 5: an EC key on another curve; model signatures"},
        {"priv.pem",
         "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBMlYMSTsLndn6OQ9CqgO3B8\n-----END EC PRIVATE "
         "KEY-----\n",
         "holds a private key: the device needs only the public key"},
        {"empty.pub", "nothing here\n", "holds no PEM public key"},
        {"cut.pub", "-----BEGIN PUBLIC KEY-----\nMFkw\n", "line 1: PEM block without its END"},
        {"junk.pub", "-----BEGIN PUBLIC KEY-----\nnot base64 !\n-----END PUBLIC KEY-----\n",
         "line 1: not a valid public key"},
        {"five.pub", PUB_A PUB_B PUB_A PUB_B PUB_A, "line 17: more than 4 public keys"},
    };
    for (size_t i = 0; i < sizeof(bad_files) / sizeof(bad_files[0]); i++) {
        path = write_file(bad_files[i].name, bad_files[i].text);
        err[0] = '\0';
        CHECK(pdm_keyring_load(&kr, path, err, sizeof(err)) < 0);
        CHECK_MSG(strstr(err, bad_files[i].why) != NULL, "%s: '%s'", bad_files[i].name, err);
        pdm_keyring_free(&kr);
    }
    CHECK(pdm_keyring_load(&kr, "/nonexistent/key.pub", err, sizeof(err)) == -ENOENT);
    pdm_keyring_free(&kr);
}

/* Linked with -Wl,--wrap=rename (tests/CMakeLists.txt): a rename onto a name ending in
 * g_fail_rename fails with EIO, as a failing flash or a full file system would. */
static const char *g_fail_rename;
int __real_rename(const char *from, const char *to);
int __wrap_rename(const char *from, const char *to);
int __wrap_rename(const char *from, const char *to)
{
    size_t n = strlen(to), k = g_fail_rename ? strlen(g_fail_rename) : 0;
    if (k && n >= k && strcmp(to + n - k, g_fail_rename) == 0) {
        errno = EIO;
        return -1;
    }
    return __real_rename(from, to);
}

static int file_eq(const char *path, const char *want)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char buf[256] = "";
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return strcmp(buf, want) == 0;
}

static void test_modelstore(void)
{
    struct pdm_modelstore ms;
    char err[512], cur[PATH_MAX], prev[PATH_MAX];
    CHECK_INT(pdm_modelstore_open(&ms, g_dir, err, sizeof(err)), 0);
    CHECK_INT(pdm_modelstore_open(&ms, g_dir, err, sizeof(err)), 0); /* exists: fine */
    pdm_modelstore_path(&ms, "pump-7", PDM_MS_CURRENT, cur, sizeof(cur));
    pdm_modelstore_path(&ms, "pump-7", PDM_MS_PREV, prev, sizeof(prev));
    uint32_t v = 0;
    int inst = -1;
    char sha[65];
    CHECK_INT(pdm_modelstore_read_highest(&ms, "pump-7", &v, sha), -ENOENT);

    const char *sha2 = "2222222222222222222222222222222222222222222222222222222222222222";
    const char *sha3 = "3333333333333333333333333333333333333333333333333333333333333333";
    CHECK_INT(pdm_modelstore_install(&ms, "pump-7", "v2\n", 3, 2, sha2, 1, &inst, err, sizeof(err)),
              0);
    CHECK(file_eq(cur, "v2\n"));
    CHECK(access(prev, F_OK) != 0); /* nothing to keep yet */
    CHECK_INT(pdm_modelstore_read_highest(&ms, "pump-7", &v, sha), 0);
    CHECK_INT(v, 2);
    CHECK_STR(sha, sha2);
    CHECK_INT(pdm_modelstore_install(&ms, "pump-7", "v3\n", 3, 3, sha3, 1, &inst, err, sizeof(err)),
              0);
    CHECK(file_eq(cur, "v3\n"));
    CHECK(file_eq(prev, "v2\n"));
    CHECK_INT(pdm_modelstore_read_highest(&ms, "pump-7", &v, sha), 0);
    CHECK_INT(v, 3);
    /* without rotation the fallback stays what it was */
    CHECK_INT(pdm_modelstore_install(&ms, "pump-7", "v4\n", 3, 4, sha3, 0, &inst, err, sizeof(err)),
              0);
    CHECK(file_eq(cur, "v4\n"));
    CHECK(file_eq(prev, "v2\n"));
    struct stat st;
    /* created 0640 less what the umask takes away (077 under a strict one) */
    mode_t um = umask(0);
    umask(um);
    CHECK(stat(cur, &st) == 0 && (st.st_mode & 0777) == (0640 & ~um));
    /* no temporary file is left behind */
    char tmp[PATH_MAX + 8];
    snprintf(tmp, sizeof(tmp), "%s.tmp", cur);
    CHECK(access(tmp, F_OK) != 0);
    CHECK_INT(inst, 1);

    /* the new model cannot take the name: NAME.model stays the old model, never missing */
    const char *sha5 = "5555555555555555555555555555555555555555555555555555555555555555";
    g_fail_rename = ".model";
    err[0] = '\0';
    CHECK_INT(pdm_modelstore_install(&ms, "pump-7", "v5\n", 3, 5, sha5, 1, &inst, err, sizeof(err)),
              -EIO);
    g_fail_rename = NULL;
    CHECK_INT(inst, 0);
    CHECK_MSG(file_eq(cur, "v4\n"), "%s after a failed install: %s", cur, err);
    CHECK(strstr(err, "cannot rename") != NULL);
    CHECK(access(tmp, F_OK) != 0);
    CHECK_INT(pdm_modelstore_read_highest(&ms, "pump-7", &v, sha), 0);
    CHECK_INT(v, 4);
    /* the model is in place but its record is not: installed says so */
    g_fail_rename = ".highest";
    CHECK_INT(pdm_modelstore_install(&ms, "pump-7", "v5\n", 3, 5, sha5, 1, &inst, err, sizeof(err)),
              -EIO);
    g_fail_rename = NULL;
    CHECK_INT(inst, 1);
    CHECK(file_eq(cur, "v5\n"));
    CHECK(file_eq(prev, "v4\n"));

    /* a damaged record is reported as such, not read as version 0 */
    char high[PATH_MAX];
    pdm_modelstore_path(&ms, "pump-7", PDM_MS_HIGHEST, high, sizeof(high));
    CHECK(file_eq(high, "4 3333333333333333333333333333333333333333333333333333333333333333\n"));
    snprintf(tmp, sizeof(tmp), "%s.tmp", high);
    CHECK(access(tmp, F_OK) != 0);
    FILE *f = fopen(high, "w");
    fputs("4 33\n", f);
    fclose(f);
    CHECK_INT(pdm_modelstore_read_highest(&ms, "pump-7", &v, sha), -EBADMSG);

    /* a folder that cannot be written: the reason names it */
    struct pdm_modelstore ro;
    CHECK(pdm_modelstore_open(&ro, "/proc/self", err, sizeof(err)) < 0);
    CHECK(strstr(err, "cannot create /proc/self/models") != NULL);
}

static void test_commands(void)
{
    char name[64];
    int fleet = -1;
    CHECK_INT(
        pdm_cmd_parse_topic("pdm/v1/gw-1/cmd/model", "pdm/v1", "gw-1", name, sizeof(name), &fleet),
        0);
    CHECK_STR(name, "model");
    CHECK_INT(fleet, 0);
    CHECK_INT(
        pdm_cmd_parse_topic("pdm/v1/fleet/cmd/model", "pdm/v1", "gw-1", name, sizeof(name), &fleet),
        0);
    CHECK_INT(fleet, 1);
    CHECK_INT(
        pdm_cmd_parse_topic("pdm/v1/gw-1/cmd/a/b", "pdm/v1", "gw-1", name, sizeof(name), &fleet),
        0);
    CHECK_STR(name, "a/b"); /* answered as an unknown command */
    CHECK_INT(
        pdm_cmd_parse_topic("pdm/v1/gw-2/cmd/model", "pdm/v1", "gw-1", name, sizeof(name), &fleet),
        -EINVAL);
    CHECK_INT(pdm_cmd_parse_topic("pdm/v1/gw-1/cmd/", "pdm/v1", "gw-1", name, sizeof(name), &fleet),
              -EINVAL);
    CHECK_INT(
        pdm_cmd_parse_topic("pdm/v1/gw-1/status", "pdm/v1", "gw-1", name, sizeof(name), &fleet),
        -EINVAL);
    char dev[128], fl[128];
    CHECK_INT(pdm_cmd_topics("site/a", "gw-1", dev, fl, sizeof(dev)), 0);
    CHECK_STR(dev, "site/a/gw-1/cmd/#");
    CHECK_STR(fl, "site/a/fleet/cmd/#");

    /* request_id: field 1 wherever it is, other fields of every wire type skipped */
    char rid[PDM_CMD_REQUEST_ID_MAX + 1];
    const uint8_t after[] = {0x20, 0x96, 0x01,                  /* 4: varint 150 */
                             0x2d, 1,    2,    3,   4,          /* 5: fixed32 */
                             0x12, 2,    'a',  'b',             /* 2: "ab" */
                             0x0a, 4,    'r',  '-', 0x01, '9'}; /* 1: "r-\x019" */
    pdm_cmd_request_id(after, sizeof(after), rid, sizeof(rid));
    CHECK_STR(rid, "r-?9");
    pdm_cmd_request_id(after, sizeof(after) - 1, rid, sizeof(rid)); /* cut inside field 1 */
    CHECK_STR(rid, "");
    const uint8_t garbage[] = "this is not protobuf";
    pdm_cmd_request_id(garbage, sizeof(garbage) - 1, rid, sizeof(rid));
    CHECK_STR(rid, "");
    const uint8_t runaway[] = {0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    pdm_cmd_request_id(runaway, sizeof(runaway), rid, sizeof(rid));
    CHECK_STR(rid, "");
    pdm_cmd_request_id(NULL, 0, rid, sizeof(rid));
    CHECK_STR(rid, "");

    /* the answer decodes as a pdm.v1.CommandResult with every field */
    struct pdm_cmd cmd = {.name = "model", .fleet = 1, .request_id = "r-9"};
    struct pdm_cmd_result res = {0};
    pdm_cmd_set(&res, PDM_CMD_VERSION_NOT_NEWER, "v%d is not newer", 2);
    CHECK_INT(res.ok, 0);
    res.models[0] = (struct pdm_status_model){"pump-7", "pump", 3, "abcd"};
    res.n_models = 1;
    uint8_t buf[512];
    int len = pdm_cmd_encode_result(&cmd, &res, "gw-1", 1700000000000LL, buf, sizeof(buf));
    CHECK(len > 0);
    Pdm__V1__CommandResult *r = pdm__v1__command_result__unpack(NULL, (size_t)len, buf);
    CHECK(r != NULL);
    if (r) {
        CHECK_STR(r->request_id, "r-9");
        CHECK_STR(r->command, "model");
        CHECK_INT(r->ok, 0);
        CHECK_INT(r->reason, PDM__V1__COMMAND_REASON__VERSION_NOT_NEWER);
        CHECK_STR(r->text, "v2 is not newer");
        CHECK_STR(r->device_id, "gw-1");
        CHECK_INT(r->ts_ms, 1700000000000LL);
        CHECK_INT(r->fleet, 1);
        CHECK_INT(r->n_models, 1);
        if (r->n_models == 1)
            CHECK_INT(r->models[0]->model_version, 3);
        pdm__v1__command_result__free_unpacked(r, NULL);
    }
    CHECK_INT(pdm_cmd_encode_result(&cmd, &res, "gw-1", 1, buf, 10), -ENOSPC);
    CHECK_STR(pdm_cmd_reason_name(PDM_CMD_INPUTS_UNAVAILABLE), "INPUTS_UNAVAILABLE");
    pdm_cmd_set(&res, PDM_CMD_NOT_APPLICABLE, "nothing here");
    CHECK_INT(res.ok, 1);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

int main(void)
{
    char tmpl[] = "/tmp/pdm-test-modelsig-XXXXXX";
    if (!mkdtemp(tmpl) || strlen(tmpl) >= sizeof(g_dir)) {
        perror("mkdtemp");
        return 2;
    }
    strcpy(g_dir, tmpl);
    test_keyring();
    test_modelstore();
    test_commands();
    nftw(g_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return check_summary("test_modelsig");
}
