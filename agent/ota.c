/* Signed model updates over the air (contract in ota.h and pdm.proto).
 *
 * Memory: the keys and one small record per asset at open; handling an update allocates (the
 * decoded message, the loader's text, the windows of a swap) - a command, not the sample ->
 * score path. Time: the main loop is held for the signature check (1.5 ms on the x86 test
 * machine with mbed TLS; expect tens of ms on a small ARM core), the model load and the
 * durable write (two fsyncs); samples wait in the bus queue meanwhile. */
#include "ota.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/log.h"
#include "modelsig.h"
#include "modelstore.h"
#include "pdm/v1/pdm.pb-c.h"

enum source { SRC_CONFIG = 0, SRC_CURRENT, SRC_PREV };

struct ota_asset {
    enum source src;      /* where the running model came from */
    uint32_t highest;     /* highest version accepted or run (anti-rollback) */
    char highest_sha[65]; /* its SHA-256 */
};

struct pdm_ota {
    struct pdm_config *cfg;
    struct pdm_keyring keys; /* n == 0: no model_pubkey */
    struct pdm_modelstore ms;
    struct ota_asset *assets;
};

int pdm_ota_open(struct pdm_ota **out, struct pdm_config *cfg, char *err, size_t errlen)
{
    *out = NULL;
    struct pdm_ota *o = calloc(1, sizeof(*o));
    if (!o || !(o->assets = calloc(cfg->n_assets + 1, sizeof(*o->assets)))) {
        free(o);
        snprintf(err, errlen, "model updates: out of memory");
        return -ENOMEM;
    }
    o->cfg = cfg;
    int rc = 0;
    if (cfg->model_pubkey[0]) {
        char why[512];
        rc = pdm_keyring_load(&o->keys, cfg->model_pubkey, why, sizeof(why));
        if (rc != 0)
            snprintf(err, errlen, "model_pubkey: %s", why);
    } else {
        for (int i = 0; i < PDM_KEYRING_MAX; i++)
            mbedtls_pk_init(&o->keys.pk[i]);
    }
    if (rc == 0)
        rc = pdm_modelstore_open(&o->ms, cfg->data_dir, err, errlen);
    if (rc != 0) {
        pdm_ota_close(o);
        return rc;
    }
    char ids[128];
    pdm_keyring_ids(&o->keys, ids, sizeof(ids));
    if (o->keys.n)
        pdm_info("model updates: accepted when signed with key %s (%s)", ids, cfg->model_pubkey);
    else
        pdm_info("model updates: refused (no [agent] model_pubkey configured)");
    *out = o;
    return 0;
}

void pdm_ota_close(struct pdm_ota *o)
{
    if (!o)
        return;
    pdm_keyring_free(&o->keys);
    free(o->assets);
    free(o);
}

int pdm_ota_map_inputs(const struct pdm_asset_cfg *a, const struct pdm_model *m, int32_t *sensor,
                       char *why, size_t len)
{
    size_t off = 0;
    int missing = 0;
    why[0] = '\0';
    for (uint32_t k = 0; k < m->n_inputs && k < PDM_MODEL_MAX_INPUTS; k++) {
        const struct pdm_model_input *in = &m->inputs[k];
        sensor[k] = -1;
        if (in->is_age && (a->installed_s || a->age_from_run_hours))
            continue;
        if (!in->is_age && !pdm_model_input_has_sensor(in))
            continue;
        for (uint32_t p = 0; !in->is_age && p < a->n_provides && sensor[k] < 0; p++)
            if (strcmp(a->provides[p].input, in->name) == 0)
                sensor[k] = a->provides[p].sensor;
        if (sensor[k] >= 0)
            continue;
        int w = in->is_age ? snprintf(why + off, len - off,
                                      "%sinput 'age' needs 'installed = YYYY-MM-DD' in [asset %s]",
                                      missing ? "; " : "", a->name)
                           : snprintf(why + off, len - off,
                                      "%sinput '%s' has no sensor: [asset %s] has no '%s = SENSOR'",
                                      missing ? "; " : "", in->name, a->name, in->name);
        missing++;
        if (w > 0 && (size_t)w < len - off)
            off += (size_t)w;
    }
    return missing ? -ENOENT : 0;
}

/* Loads path with the model loader; its FILE:LINE messages, with path shown as label and
 * joined by "; ", go to why. Returns the number of errors. */
static int load_model(const char *path, const char *label, struct pdm_model *m, char *why,
                      size_t len)
{
    char *text = NULL;
    size_t tlen = 0;
    FILE *f = open_memstream(&text, &tlen);
    /* without a stream (out of memory) the loader only counts: the verdict still holds, only
     * its reasons are lost, and why says so */
    struct pdm_diag diag = {.out = f, .errors = 0};
    int errors = pdm_model_load(path, m, &diag);
    if (f)
        fclose(f);
    size_t off = 0, plen = strlen(path);
    why[0] = '\0';
    if (!f && errors) {
        snprintf(why, len, "%s: %d error%s (no memory to keep the loader's messages)", label,
                 errors, errors == 1 ? "" : "s");
        return errors;
    }
    for (const char *p = text; p && *p && off + 1 < len;) {
        if (strncmp(p, path, plen) == 0) {
            int w = snprintf(why + off, len - off, "%s", label);
            off = w > 0 && (size_t)w < len - off ? off + (size_t)w : len - 1;
            p += plen;
        } else if (*p == '\n') {
            if (p[1] && off + 3 < len) {
                memcpy(why + off, "; ", 2);
                off += 2;
            }
            p++;
        } else {
            why[off++] = *p++;
        }
        why[off] = '\0';
    }
    free(text);
    return errors;
}

static void apply_model(struct pdm_asset_cfg *a, const struct pdm_model *m, const int32_t *sensor)
{
    a->model = *m;
    a->n_inputs = m->n_inputs;
    for (uint32_t k = 0; k < PDM_MODEL_MAX_INPUTS; k++) {
        struct pdm_asset_input_cfg *ai = &a->inputs[k];
        memset(ai, 0, sizeof(*ai));
        ai->sensor = k < m->n_inputs ? sensor[k] : -1;
        if (k < m->n_inputs)
            snprintf(ai->input, sizeof(ai->input), "%s", m->inputs[k].name);
    }
}

static const char *source_name(enum source s)
{
    return s == SRC_CURRENT ? "the accepted model update"
           : s == SRC_PREV  ? "the previous accepted model update"
                            : "the configuration's model";
}

void pdm_ota_select(struct pdm_ota *o)
{
    for (uint32_t i = 0; i < o->cfg->n_assets; i++) {
        struct pdm_asset_cfg *a = &o->cfg->assets[i];
        struct ota_asset *st = &o->assets[i];
        st->src = SRC_CONFIG;
        st->highest = a->model.version;
        memcpy(st->highest_sha, a->model.sha256, sizeof(st->highest_sha));
        uint32_t hv;
        char hsha[65];
        int rc = pdm_modelstore_read_highest(&o->ms, a->name, &hv, hsha);
        if (rc == 0 && hv >= st->highest) {
            st->highest = hv;
            memcpy(st->highest_sha, hsha, sizeof(hsha));
        } else if (rc == -EBADMSG) {
            pdm_warn("asset %s: the record of the highest accepted model version in %s is "
                     "damaged; anti-rollback goes by the model files that load",
                     a->name, o->ms.dir);
        }
        int failed = 0;
        for (enum source src = SRC_CURRENT; src <= SRC_PREV; src++) {
            char path[PDM_PATH_MAX];
            if (pdm_modelstore_path(&o->ms, a->name,
                                    src == SRC_CURRENT ? PDM_MS_CURRENT : PDM_MS_PREV, path,
                                    sizeof(path)) != 0 ||
                access(path, F_OK) != 0)
                continue;
            struct pdm_model m;
            char why[1024];
            if (load_model(path, path, &m, why, sizeof(why)) != 0) {
                pdm_warn("asset %s: %s %s does not load (%s); %s", a->name, source_name(src), path,
                         why,
                         src == SRC_CURRENT ? "trying the previous accepted one"
                                            : "falling back to the configuration's model");
                failed++;
                continue;
            }
            if (m.version > st->highest) { /* see modelstore.h: a crash between two renames */
                st->highest = m.version;
                memcpy(st->highest_sha, m.sha256, sizeof(st->highest_sha));
            }
            if (strcmp(m.id, a->model.id) != 0) {
                pdm_warn("asset %s: %s %s is model '%s' but the configuration names model '%s' "
                         "(%s); running the configuration's",
                         a->name, source_name(src), path, m.id, a->model.id, a->model_path);
                break;
            }
            if (m.version <= a->model.version) {
                pdm_info("asset %s: the configuration's model %s v%u is not older than %s v%u "
                         "(%s); running the configuration's",
                         a->name, a->model.id, a->model.version, source_name(src), m.version, path);
                break;
            }
            int32_t sensor[PDM_MODEL_MAX_INPUTS];
            if (pdm_ota_map_inputs(a, &m, sensor, why, sizeof(why)) != 0) {
                pdm_warn("asset %s: %s %s (v%u) cannot run here: %s; %s", a->name, source_name(src),
                         path, m.version, why,
                         src == SRC_CURRENT ? "trying the previous accepted one"
                                            : "falling back to the configuration's model");
                failed++;
                continue;
            }
            pdm_info("asset %s: runs %s %s v%u (%s, sha256 %.16s...) instead of the "
                     "configuration's v%u%s",
                     a->name, source_name(src), m.id, m.version, path, m.sha256, a->model.version,
                     failed ? ", because the newer one does not load" : "");
            apply_model(a, &m, sensor);
            st->src = src;
            break;
        }
        if (failed && st->src == SRC_CONFIG)
            pdm_warn("asset %s: no accepted model update loads; running the configuration's "
                     "model %s v%u (%s)",
                     a->name, a->model.id, a->model.version, a->model_path);
    }
}

/* ---- cmd/model --------------------------------------------------------------------------- */

static void list_models(const struct pdm_config *cfg, const uint32_t *idx, size_t n,
                        struct pdm_cmd_result *res)
{
    for (size_t k = 0; k < n && res->n_models < PDM_CMD_MAX_MODELS; k++) {
        const struct pdm_asset_cfg *a = &cfg->assets[idx[k]];
        res->models[res->n_models++] = (struct pdm_status_model){
            .asset = a->name,
            .model_id = a->model.id,
            .version = a->model.version,
            .sha256 = a->model.sha256,
        };
    }
}

/* "a, b" of the asset names, for messages. */
static void names(const struct pdm_config *cfg, const uint32_t *idx, size_t n, char *out,
                  size_t len)
{
    size_t off = 0;
    out[0] = '\0';
    for (size_t k = 0; k < n && off < len; k++) {
        int w = snprintf(out + off, len - off, "%s%s", k ? ", " : "", cfg->assets[idx[k]].name);
        if (w < 0)
            break;
        off += (size_t)w;
    }
}

/* Which inputs kept their window, for the answer. */
static void swap_summary(const struct pdm_engine_swap *sw, char *out, size_t len)
{
    size_t off = 0;
    int kept = 0, fresh = 0;
    out[0] = '\0';
    for (int pass = 0; pass < 2; pass++) {
        for (uint32_t k = 0; k < sw->model.n_inputs; k++) {
            int is_kept = sw->keep[k] >= 0;
            if (sw->sensor[k] < 0 || is_kept != (pass == 0))
                continue;
            const char *head = pass == 0 ? (kept++ ? ", " : "window kept: ")
                                         : (fresh++ ? ", "
                                                    : (kept ? "; new window: "
                                                            : "new "
                                                              "window: "));
            int w = snprintf(out + off, len - off, "%s%s", head, sw->model.inputs[k].name);
            if (w < 0 || (size_t)w >= len - off)
                return;
            off += (size_t)w;
        }
    }
}

/* Whether every target of an update whose model file has SHA-256 sha runs exactly that file
 * at that version; the targets go to idx[0 .. *n). The same bytes are the same model id, so a
 * fleet update's targets are the assets running the id of an asset that runs sha. */
static int already_runs(const struct pdm_config *cfg, const char *asset, const char *sha,
                        uint32_t version, uint32_t *idx, size_t *n)
{
    int found = -1;
    for (uint32_t i = 0; i < cfg->n_assets && found < 0; i++)
        if ((!asset[0] || strcmp(cfg->assets[i].name, asset) == 0) &&
            strcmp(cfg->assets[i].model.sha256, sha) == 0 &&
            cfg->assets[i].model.version == version)
            found = (int)i;
    if (found < 0)
        return 0;
    *n = 0;
    if (asset[0]) {
        idx[(*n)++] = (uint32_t)found;
        return 1;
    }
    const char *id = cfg->assets[found].model.id;
    for (uint32_t i = 0; i < cfg->n_assets; i++) {
        if (strcmp(cfg->assets[i].model.id, id) != 0)
            continue;
        if (strcmp(cfg->assets[i].model.sha256, sha) != 0) {
            *n = 0; /* one of them takes the update: the full path decides */
            return 0;
        }
        idx[(*n)++] = i;
    }
    return 1;
}

int pdm_ota_handle(struct pdm_ota *o, struct pdm_engine *e, const struct pdm_cmd *cmd,
                   struct pdm_cmd_result *res, int64_t now_mono_ms)
{
    struct pdm_config *cfg = o->cfg;
    int swapped = 0;
    if (o->keys.n == 0) {
        pdm_cmd_set(res, PDM_CMD_NO_VERIFY_KEY,
                    "this device has no [agent] model_pubkey: model updates are refused");
        return 0;
    }
    Pdm__V1__ModelUpdate *u =
        pdm__v1__model_update__unpack(NULL, cmd->len, (const uint8_t *)cmd->payload);
    if (!u) {
        pdm_cmd_set(res, PDM_CMD_BAD_PAYLOAD, "%zu bytes that are not a pdm.v1.ModelUpdate",
                    cmd->len);
        return 0;
    }
    const char *asset = u->asset ? u->asset : "";
    const uint8_t *model = u->model.data;
    size_t mlen = u->model.len;
    char sha[65];
    pdm_sha256_hex(model, mlen, sha);
    char why[PDM_CMD_TEXT_MAX - 128];
    size_t n = 0, na = cfg->n_assets + 1;
    struct pdm_model m;
    /* per target asset: which, whether it takes the update, its inputs' sensors, its swap */
    uint32_t *idx = calloc(na, sizeof(*idx));
    int *take = calloc(na, sizeof(*take));
    int32_t(*sensor)[PDM_MODEL_MAX_INPUTS] = calloc(na, sizeof(*sensor));
    struct pdm_engine_swap *sw = calloc(na, sizeof(*sw));
    if (!idx || !take || !sensor || !sw) {
        pdm_cmd_set(res, PDM_CMD_INTERNAL_ERROR, "out of memory; nothing changed");
        goto out;
    }

    int k = pdm_keyring_find(&o->keys, u->key_id);
    if (k < 0) {
        char ids[128];
        pdm_keyring_ids(&o->keys, ids, sizeof(ids));
        pdm_cmd_set(res, PDM_CMD_UNKNOWN_KEY,
                    "key_id '%.32s' is not one of this device's model keys (%s)",
                    u->key_id ? u->key_id : "", ids);
        goto out;
    }
    if (pdm_modelsig_verify(&o->keys.pk[k], asset, u->version, model, mlen, u->signature.data,
                            u->signature.len) != 0) {
        pdm_cmd_set(res, PDM_CMD_BAD_SIGNATURE,
                    "the signature does not verify with key %s for asset='%.64s' version=%u "
                    "sha256=%.16s...: not installed",
                    o->keys.id[k], asset, (unsigned)u->version, sha);
        goto out;
    }
    if (mlen == 0) {
        pdm_cmd_set(res, PDM_CMD_MODEL_INVALID, "the update carries no model file");
        goto out;
    }
    /* The same bytes already running (a retained fleet update at every reconnect, a command
     * delivered twice): answered before the flash write and the model load. The signature is
     * still checked above: it costs about a millisecond, and skipping it would answer OK to an
     * unsigned or wrongly signed message carrying a known model, where the full check refuses
     * it; so every answer stays what the full path would give, and an update that does not
     * verify is always refused. */
    if (already_runs(cfg, asset, sha, u->version, idx, &n)) {
        const struct pdm_model *run = &cfg->assets[idx[0]].model;
        char list[256];
        names(cfg, idx, n, list, sizeof(list));
        list_models(cfg, idx, n, res);
        pdm_cmd_set(res, PDM_CMD_OK, "model %s v%u (sha256 %.16s...) already runs on %s", run->id,
                    run->version, run->sha256, list);
        goto out;
    }
    int rc = pdm_modelstore_scratch(&o->ms, model, mlen);
    if (rc != 0) {
        pdm_cmd_set(res, PDM_CMD_STORAGE_FAILED, "cannot write it to %s: %s", o->ms.dir,
                    strerror(-rc));
        goto out;
    }
    char scratch[PDM_PATH_MAX];
    pdm_modelstore_path(&o->ms, NULL, PDM_MS_SCRATCH, scratch, sizeof(scratch));
    int errors = load_model(scratch, "model", &m, why, sizeof(why));
    unlink(scratch);
    if (errors) {
        pdm_cmd_set(res, PDM_CMD_MODEL_INVALID, "the model does not load: %s", why);
        goto out;
    }
    if (m.version != u->version) {
        pdm_cmd_set(res, PDM_CMD_MODEL_INVALID,
                    "the update says version %u but the model file says version = %u",
                    (unsigned)u->version, (unsigned)m.version);
        goto out;
    }

    /* targets */
    if (asset[0]) {
        int i = pdm_config_asset_index(cfg, asset);
        if (i < 0) {
            pdm_cmd_set(res, PDM_CMD_UNKNOWN_ASSET, "no asset '%.64s' on this device", asset);
            goto out;
        }
        if (strcmp(cfg->assets[i].model.id, m.id) != 0) {
            pdm_cmd_set(res, PDM_CMD_MODEL_ID_MISMATCH,
                        "asset %s runs model '%s', the update is model '%s': changing an asset's "
                        "model is a configuration change",
                        asset, cfg->assets[i].model.id, m.id);
            goto out;
        }
        idx[n++] = (uint32_t)i;
    } else {
        for (uint32_t i = 0; i < cfg->n_assets; i++)
            if (strcmp(cfg->assets[i].model.id, m.id) == 0)
                idx[n++] = i;
        if (n == 0) {
            pdm_cmd_set(res, PDM_CMD_NOT_APPLICABLE, "no asset of this device runs model '%s'",
                        m.id);
            goto out;
        }
    }

    /* every target must take it, or none does */
    size_t n_take = 0;
    for (size_t t = 0; t < n; t++) {
        const struct pdm_asset_cfg *a = &cfg->assets[idx[t]];
        const struct ota_asset *st = &o->assets[idx[t]];
        if (strcmp(a->model.sha256, m.sha256) == 0)
            continue; /* already running it: a repeated command, or a retained one */
        int newer = m.version > a->model.version && m.version > st->highest;
        int reinstall = m.version > a->model.version && m.version == st->highest &&
                        strcmp(m.sha256, st->highest_sha) == 0;
        if (!newer && !reinstall) {
            pdm_cmd_set(res, PDM_CMD_VERSION_NOT_NEWER,
                        "asset %s runs %s v%u and has accepted up to v%u: v%u is not newer",
                        a->name, a->model.id, a->model.version, st->highest, m.version);
            goto out;
        }
        if (pdm_ota_map_inputs(a, &m, sensor[t], why, sizeof(why)) != 0) {
            pdm_cmd_set(res, PDM_CMD_INPUTS_UNAVAILABLE, "%s", why);
            goto out;
        }
        take[t] = 1;
        n_take++;
    }
    if (n_take == 0) {
        char list[256];
        names(cfg, idx, n, list, sizeof(list));
        list_models(cfg, idx, n, res);
        pdm_cmd_set(res, PDM_CMD_OK, "model %s v%u (sha256 %.16s...) already runs on %s", m.id,
                    m.version, m.sha256, list);
        goto out;
    }

    /* allocate every swap before anything changes; sw[0 .. np) in target order, each one's
     * feed index counting the ones before it (committed in the same order below) */
    size_t np = 0;
    for (size_t t = 0; t < n; t++) {
        if (!take[t])
            continue;
        char err[256];
        rc = pdm_engine_swap_prepare(e, idx[t], &m, sensor[t], sw, np, &sw[np], err, sizeof(err));
        if (rc == 0) {
            np++;
        } else {
            for (size_t j = 0; j < np; j++)
                pdm_engine_swap_abort(&sw[j]);
            pdm_cmd_set(res, rc == -ENOMEM ? PDM_CMD_INTERNAL_ERROR : PDM_CMD_MODEL_INVALID,
                        "asset %s: %s; nothing changed", cfg->assets[idx[t]].name, err);
            goto out;
        }
    }

    /* durable first, then live: what runs is always on disk */
    char done[PDM_CMD_TEXT_MAX / 2] = "", left[256] = "";
    size_t off = 0, loff = 0;
    int store_failed = 0;
    for (size_t t = 0, p = 0; t < n; t++) {
        if (!take[t])
            continue;
        struct pdm_engine_swap *s = &sw[p++];
        struct pdm_asset_cfg *a = &cfg->assets[idx[t]];
        struct ota_asset *st = &o->assets[idx[t]];
        char err[512];
        int installed = 0;
        if (!store_failed) {
            /* the running file becomes the fallback, unless it is the fallback already (the
             * newer one did not load) or the asset runs the configuration's file */
            rc = pdm_modelstore_install(&o->ms, a->name, model, mlen, m.version, m.sha256,
                                        st->src == SRC_CURRENT, &installed, err, sizeof(err));
            if (rc != 0 && installed) {
                /* NAME.model is the new model already and the next start runs it
                 * (pdm_ota_select raises the highest version from the file): running it now
                 * keeps what runs and what starts next the same; the answer says what failed */
                store_failed = 1;
                snprintf(why, sizeof(why),
                         "asset %s: %s, after the new model was written as its model file: "
                         "v%u runs now and at the next start",
                         a->name, err, m.version);
                pdm_warn("asset %s: model %s v%u is in place in %s but %s; it runs now and "
                         "the next start runs it too, unless a power cut before the folder "
                         "reaches the disk brings back v%u",
                         a->name, m.id, m.version, o->ms.dir, err, a->model.version);
            } else if (rc != 0) {
                store_failed = 1;
                snprintf(why, sizeof(why), "asset %s: %s", a->name, err);
            }
        }
        if (store_failed && !installed) {
            pdm_engine_swap_abort(s);
            int w = snprintf(left + loff, sizeof(left) - loff, "%s%s", loff ? ", " : "", a->name);
            if (w > 0 && (size_t)w < sizeof(left) - loff)
                loff += (size_t)w;
            continue;
        }
        char summary[256];
        swap_summary(s, summary, sizeof(summary));
        uint32_t old_version = a->model.version;
        pdm_engine_swap_commit(e, s, a, now_mono_ms);
        st->src = SRC_CURRENT;
        st->highest = m.version;
        memcpy(st->highest_sha, m.sha256, sizeof(st->highest_sha));
        swapped++;
        pdm_info("asset %s: model %s v%u -> v%u swapped in (%s)", a->name, m.id, old_version,
                 m.version, summary);
        int w = snprintf(done + off, sizeof(done) - off, "%s%s (%s)", off ? "; " : "", a->name,
                         summary);
        if (w > 0 && (size_t)w < sizeof(done) - off)
            off += (size_t)w;
    }
    list_models(cfg, idx, n, res);
    if (store_failed)
        pdm_cmd_set(res, PDM_CMD_STORAGE_FAILED, "%s; %s%s%s%s", why,
                    swapped ? "runs on " : "nothing changed", swapped ? done : "",
                    left[0] ? "; not installed on " : "", left);
    else
        pdm_cmd_set(res, PDM_CMD_OK, "model %s v%u (sha256 %.16s...) runs on %s", m.id, m.version,
                    m.sha256, done);
out:
    free(idx);
    free(take);
    free(sensor);
    free(sw);
    pdm__v1__model_update__free_unpacked(u, NULL);
    return swapped;
}
