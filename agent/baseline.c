/* Per-asset baselines in the agent (interface, file layout and memory in baseline.h). */
#include "baseline.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/clock.h"
#include "config.h"
#include "lib/log.h"
#include "modelstore.h"

enum learn_state { IDLE = 0, LEARNING, DONE, FAILED };

struct asset_bl {
    char model_sha[65]; /* the model baselines were applied to: a change means a model update */
    int has_stored;     /* a baseline file for this asset was read or written */
    struct pdm_baseline stored;
    char apply_note[256]; /* why the model uses asset or fleet constants, for describe */
    /* learning */
    enum learn_state state;
    int force, from_backend;
    double seconds;
    int64_t start_mono_ms, end_mono_ms;
    struct pdm_moments *acc; /* one per model input while learning, else NULL */
    char request_id[PDM_BASELINE_REQ_MAX];
    char message[PDM_CMD_TEXT_MAX]; /* how the last learning ended */
};

struct pdm_baselines {
    struct pdm_config *cfg;
    char dir[PDM_PATH_MAX];
    struct asset_bl *a; /* cfg->n_assets */
};

/* ---- the file: "key = value" lines, numbers with 17 digits so they read back exactly ------- */

int pdm_baseline_save(const char *path, const char *asset, const struct pdm_baseline *bl, char *err,
                      size_t errlen)
{
    /* formatted in memory, then written by the one durable writer (tmp, fsync, rename, folder
     * fsync), so a short write is never renamed into place */
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(ENOMEM));
        return -ENOMEM;
    }
    fprintf(f,
            "# per-asset baseline learned by pdm-agent; relearn with pdmctl baseline, do not edit\n"
            "asset = %s\nmodel = %s\nlearned_ms = %lld\nseconds = %.17g\n",
            asset, bl->model_id, (long long)bl->learned_ms, bl->seconds);
    fprintf(f, "# input = name stat window_s center scale sd evaluations\n");
    for (uint32_t k = 0; k < bl->n_inputs; k++) {
        const struct pdm_baseline_input *in = &bl->in[k];
        fprintf(f, "input = %s %s %.17g %.17g %.17g %.17g %llu\n", in->name,
                pdm_stat_name(in->stat), in->window_s, in->center, in->scale, in->sd,
                (unsigned long long)in->n);
    }
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) {
        free(text);
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(ENOMEM));
        return -ENOMEM;
    }
    int rc = pdm_write_durable(path, text, len);
    free(text);
    if (rc != 0) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(-rc));
        return rc;
    }
    return 0;
}

static int stat_from_name(const char *s, enum pdm_stat *out)
{
    for (int i = PDM_STAT_MEAN; i <= PDM_STAT_MAX; i++) {
        if (strcmp(s, pdm_stat_name((enum pdm_stat)i)) == 0) {
            *out = (enum pdm_stat)i;
            return 0;
        }
    }
    return -EINVAL;
}

int pdm_baseline_load(const char *path, struct pdm_baseline *bl, char *err, size_t errlen)
{
    memset(bl, 0, sizeof(*bl));
    FILE *f = fopen(path, "re");
    if (!f) {
        int e = errno;
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(e));
        return -e;
    }
    char line[512];
    int lineno = 0, rc = 0;
    while (rc == 0 && fgets(line, sizeof(line), f)) {
        lineno++;
        if (line[0] == '#' || line[0] == '\n')
            continue;
        char key[32], val[256];
        if (sscanf(line, "%31s = %255[^\n]", key, val) != 2) {
            rc = -EINVAL;
        } else if (strcmp(key, "model") == 0) {
            rc = strlen(val) < sizeof(bl->model_id) ? 0 : -EINVAL;
            if (rc == 0)
                strcpy(bl->model_id, val);
        } else if (strcmp(key, "learned_ms") == 0) {
            long long v;
            rc = sscanf(val, "%lld", &v) == 1 ? 0 : -EINVAL;
            bl->learned_ms = v;
        } else if (strcmp(key, "seconds") == 0) {
            rc = sscanf(val, "%lf", &bl->seconds) == 1 ? 0 : -EINVAL;
        } else if (strcmp(key, "input") == 0) {
            if (bl->n_inputs == PDM_MODEL_MAX_INPUTS) {
                rc = -EINVAL;
                break;
            }
            struct pdm_baseline_input *in = &bl->in[bl->n_inputs];
            char name[64], stat[16];
            unsigned long long n;
            if (sscanf(val, "%63s %15s %lf %lf %lf %lf %llu", name, stat, &in->window_s,
                       &in->center, &in->scale, &in->sd, &n) != 7 ||
                !pdm_model_name_ok(name) || stat_from_name(stat, &in->stat) != 0 ||
                !isfinite(in->center) || !(in->scale > 0) || !isfinite(in->scale)) {
                rc = -EINVAL;
            } else {
                strcpy(in->name, name);
                in->n = n;
                bl->n_inputs++;
            }
        } /* asset and unknown keys: informational */
    }
    fclose(f);
    if (rc == 0 && (!bl->model_id[0] || bl->n_inputs == 0)) {
        lineno = 0;
        rc = -EINVAL;
    }
    if (rc != 0) {
        if (lineno)
            snprintf(err, errlen, "%s:%d: not a baseline line the agent can read", path, lineno);
        else
            snprintf(err, errlen, "%s: no model or no inputs in the file", path);
    }
    return rc;
}

/* ---- applying ------------------------------------------------------------------------------- */

static int file_path(const struct pdm_baselines *b, uint32_t asset, char *out, size_t len)
{
    int n = snprintf(out, len, "%s/%s.baseline", b->dir, b->cfg->assets[asset].name);
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* Sets the asset's model to asset or fleet constants as the model file and the stored baseline
 * say, and logs which (the field engineer's question: "which baseline is it scoring with?"). */
static void apply(struct pdm_baselines *b, uint32_t i, const char *when)
{
    struct pdm_asset_cfg *ac = &b->cfg->assets[i];
    struct asset_bl *s = &b->a[i];
    struct pdm_model *m = &ac->model;
    char why[160] = "";
    pdm_model_use_fleet(m);
    if (!m->baseline_asset) {
        snprintf(s->apply_note, sizeof(s->apply_note),
                 "fleet constants (model %s says baseline = fleet)", m->id);
        if (s->has_stored)
            pdm_info("asset %s: %s: model %s uses the fleet constants (baseline = fleet); the "
                     "learned baseline is kept but not used",
                     ac->name, when, m->id);
        return;
    }
    if (!s->has_stored) {
        snprintf(s->apply_note, sizeof(s->apply_note), "fleet constants (no baseline learned yet)");
        pdm_info("asset %s: %s: model %s asks for a per-asset baseline, none is learned yet; "
                 "scoring with the fleet constants (learn one: pdmctl baseline %s --minutes N)",
                 ac->name, when, m->id, ac->name);
        return;
    }
    if (pdm_model_apply_baseline(m, &s->stored, why, sizeof(why)) != 0) {
        snprintf(s->apply_note, sizeof(s->apply_note), "fleet constants (stored baseline: %s)",
                 why);
        pdm_warn("asset %s: %s: the stored baseline does not fit model %s (%s); scoring with the "
                 "fleet constants until it is learned again",
                 ac->name, when, m->id, why);
        return;
    }
    snprintf(s->apply_note, sizeof(s->apply_note), "asset baseline learned over %.0f s",
             s->stored.seconds);
    char list[256] = "";
    size_t off = 0;
    for (uint32_t k = 0; k < m->n_inputs; k++) {
        if (!m->inputs[k].from_asset)
            continue;
        int w = snprintf(list + off, sizeof(list) - off, "%s%s %.4g/%.4g", off ? ", " : "",
                         m->inputs[k].name, m->inputs[k].center, m->inputs[k].scale);
        if (w < 0 || (size_t)w >= sizeof(list) - off)
            break;
        off += (size_t)w;
    }
    pdm_info("asset %s: %s: model %s scores with the asset's own baseline (center/scale: %s)",
             ac->name, when, m->id, list);
}

int pdm_baselines_open(struct pdm_baselines **out, struct pdm_config *cfg, char *err, size_t errlen)
{
    *out = NULL;
    struct pdm_baselines *b = calloc(1, sizeof(*b));
    if (!b || !(b->a = calloc(cfg->n_assets + 1, sizeof(*b->a)))) {
        free(b);
        snprintf(err, errlen, "baselines: out of memory");
        return -ENOMEM;
    }
    b->cfg = cfg;
    int n = snprintf(b->dir, sizeof(b->dir), "%s/baselines", cfg->data_dir);
    if (n < 0 || (size_t)n >= sizeof(b->dir) || (mkdir(b->dir, 0750) != 0 && errno != EEXIST)) {
        int e = n < 0 || (size_t)n >= sizeof(b->dir) ? ENAMETOOLONG : errno;
        snprintf(err, errlen, "baselines: cannot create %s/baselines: %s", cfg->data_dir,
                 strerror(e));
        pdm_baselines_close(b);
        return -e;
    }
    for (uint32_t i = 0; i < cfg->n_assets; i++) {
        char path[PDM_PATH_MAX + 80], why[256];
        if (file_path(b, i, path, sizeof(path)) == 0 && access(path, F_OK) == 0) {
            if (pdm_baseline_load(path, &b->a[i].stored, why, sizeof(why)) == 0)
                b->a[i].has_stored = 1;
            else
                pdm_warn("asset %s: %s; the baseline is ignored (learn it again)",
                         cfg->assets[i].name, why);
        }
        apply(b, i, "start");
        memcpy(b->a[i].model_sha, cfg->assets[i].model.sha256, sizeof(b->a[i].model_sha));
    }
    *out = b;
    return 0;
}

void pdm_baselines_close(struct pdm_baselines *b)
{
    if (!b)
        return;
    for (uint32_t i = 0; b->a && i < b->cfg->n_assets; i++)
        free(b->a[i].acc);
    free(b->a);
    free(b);
}

/* ---- learning ------------------------------------------------------------------------------- */

enum pdm_cmd_reason pdm_baselines_start(struct pdm_baselines *b, const struct pdm_engine *e,
                                        const char *asset, double seconds, int force,
                                        const char *request_id, int from_backend,
                                        int64_t now_mono_ms, char *text, size_t textlen)
{
    int i = pdm_config_asset_index(b->cfg, asset);
    if (i < 0) {
        snprintf(text, textlen, "no asset '%.64s' on this device", asset);
        return PDM_CMD_UNKNOWN_ASSET;
    }
    struct asset_bl *s = &b->a[i];
    const struct pdm_model *m = &b->cfg->assets[i].model;
    if (!(seconds >= PDM_BASELINE_MIN_S && seconds <= PDM_BASELINE_MAX_S)) {
        snprintf(text, textlen, "learning time %g s is out of range (%g s to %g s)", seconds,
                 PDM_BASELINE_MIN_S, PDM_BASELINE_MAX_S);
        return PDM_CMD_BASELINE_DURATION;
    }
    if (s->state == LEARNING) {
        snprintf(text, textlen, "asset %s is already learning its baseline (%.0f of %.0f s done)",
                 asset, (double)(now_mono_ms - s->start_mono_ms) / 1000.0, s->seconds);
        return PDM_CMD_BASELINE_RUNNING;
    }
    if (s->state == FAILED && s->acc) {
        /* ended (model replaced, alert) in this same drain: the tick has not answered its
         * requester yet; starting now would overwrite that answer and leak acc */
        snprintf(text, textlen,
                 "asset %s: the previous learning just ended (%.200s) and its answer is not sent "
                 "yet; send again",
                 asset, s->message);
        return PDM_CMD_BASELINE_RUNNING;
    }
    if ((uint32_t)i < e->n_assets && e->assets[i].fsm.active != PDM_SEV_NONE && !force) {
        snprintf(text, textlen,
                 "asset %s has an open %s alert (%s): learning a faulty machine as healthy would "
                 "hide the fault; fix it first, or force it",
                 asset, pdm_severity_name(e->assets[i].fsm.active), e->assets[i].fsm.alert_id);
        return PDM_CMD_ASSET_ALERTING;
    }
    uint32_t windowed = 0;
    for (uint32_t k = 0; k < m->n_inputs; k++) {
        if (!pdm_model_input_has_sensor(&m->inputs[k]))
            continue;
        windowed++;
        double x;
        if ((uint32_t)i >= e->n_assets ||
            pdm_window_stat(&e->assets[i].in[k].win, m->inputs[k].stat, now_mono_ms, &x) == 0) {
            snprintf(text, textlen,
                     "input %s of asset %s has no data in its %g s window (is its sensor "
                     "reading?); nothing to learn from",
                     m->inputs[k].name, asset, m->inputs[k].window_s);
            return PDM_CMD_NO_INPUT_DATA;
        }
    }
    if (windowed == 0) {
        snprintf(text, textlen, "model %s of asset %s has no windowed inputs to learn", m->id,
                 asset);
        return PDM_CMD_NO_INPUT_DATA;
    }
    s->acc = calloc(PDM_MODEL_MAX_INPUTS, sizeof(*s->acc));
    if (!s->acc) {
        snprintf(text, textlen, "out of memory");
        return PDM_CMD_INTERNAL_ERROR;
    }
    s->state = LEARNING;
    s->force = force;
    s->from_backend = from_backend;
    s->seconds = seconds;
    s->start_mono_ms = now_mono_ms;
    s->end_mono_ms = now_mono_ms + llround(seconds * 1000.0);
    snprintf(s->request_id, sizeof(s->request_id), "%s", request_id ? request_id : "");
    s->message[0] = '\0';
    snprintf(text, textlen, "asset %s: learning the baseline of %u inputs of model %s for %g s%s",
             asset, windowed, m->id, seconds, force ? " (forced despite an open alert)" : "");
    pdm_info("%s", text);
    return PDM_CMD_OK;
}

static void fail(struct asset_bl *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(struct asset_bl *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->message, sizeof(s->message), fmt, ap);
    va_end(ap);
    s->state = FAILED;
    /* end_mono_ms stays: tick reports it at once */
}

void pdm_baselines_on_eval(struct pdm_baselines *b, const struct pdm_eval *ev)
{
    if (!b || ev->asset >= b->cfg->n_assets)
        return;
    struct asset_bl *s = &b->a[ev->asset];
    if (s->state != LEARNING)
        return;
    if (ev->has_alert && ev->alert.state == PDM_ALERT_RAISED && !s->force) {
        s->end_mono_ms = 0; /* finish now */
        fail(s, "the asset raised an alert while learning; nothing was stored (a faulty "
                "machine must not become its own baseline)");
        return;
    }
    const struct pdm_model *m = &b->cfg->assets[ev->asset].model;
    for (uint32_t k = 0; k < m->n_inputs && k < ev->score->n_inputs; k++)
        if (pdm_model_input_has_sensor(&m->inputs[k]) && isfinite(ev->score->in[k].value))
            pdm_moments_add(&s->acc[k], ev->score->in[k].value);
}

static int finish(struct pdm_baselines *b, uint32_t i, int64_t now_mono_ms)
{
    struct asset_bl *s = &b->a[i];
    struct pdm_asset_cfg *ac = &b->cfg->assets[i];
    const struct pdm_model *m = &ac->model;
    struct pdm_baseline bl;
    memset(&bl, 0, sizeof(bl));
    snprintf(bl.model_id, sizeof(bl.model_id), "%s", m->id);
    bl.learned_ms = pdm_wall_ms();
    bl.seconds = (double)(now_mono_ms - s->start_mono_ms) / 1000.0;
    char list[PDM_CMD_TEXT_MAX - 160] = "";
    size_t off = 0;
    for (uint32_t k = 0; k < m->n_inputs; k++) {
        const struct pdm_model_input *in = &m->inputs[k];
        if (!pdm_model_input_has_sensor(in))
            continue;
        if (s->acc[k].n < PDM_BASELINE_MIN_N) {
            fail(s,
                 "input %s was scored %llu times in %.0f s, at least %d are needed; nothing "
                 "was stored (learn longer, or check its sensor)",
                 in->name, (unsigned long long)s->acc[k].n, bl.seconds, PDM_BASELINE_MIN_N);
            return -ENODATA;
        }
        struct pdm_baseline_input *bi = &bl.in[bl.n_inputs++];
        snprintf(bi->name, sizeof(bi->name), "%s", in->name);
        bi->stat = in->stat;
        bi->window_s = in->window_s;
        bi->center = s->acc[k].mean;
        bi->sd = pdm_moments_sd(&s->acc[k]);
        double fleet_scale = in->from_asset ? in->fleet_scale : in->scale;
        bi->scale = pdm_baseline_scale(bi->sd, fleet_scale);
        bi->n = s->acc[k].n;
        int w = snprintf(list + off, sizeof(list) - off, "%s%s center %.6g scale %.6g (sd %.3g%s)",
                         off ? ", " : "", in->name, bi->center, bi->scale, bi->sd,
                         bi->scale > bi->sd ? ", floor" : "");
        if (w > 0 && (size_t)w < sizeof(list) - off)
            off += (size_t)w;
    }
    char path[PDM_PATH_MAX + 80], why[PDM_PATH_MAX + 160];
    int rc = file_path(b, i, path, sizeof(path));
    if (rc == 0)
        rc = pdm_baseline_save(path, ac->name, &bl, why, sizeof(why));
    else
        snprintf(why, sizeof(why), "path too long under %s", b->dir);
    if (rc != 0) {
        fail(s, "learned, but cannot store it: %.300s; the model keeps its previous constants",
             why);
        return rc;
    }
    s->stored = bl;
    s->has_stored = 1;
    s->state = DONE;
    snprintf(s->message, sizeof(s->message), "baseline of asset %s learned over %.0f s: %s",
             ac->name, bl.seconds, list);
    apply(b, i, "baseline learned");
    return 0;
}

int pdm_baselines_tick(struct pdm_baselines *b, struct pdm_engine *e, int64_t now_mono_ms,
                       struct pdm_baseline_done *done)
{
    (void)e;
    if (!b)
        return 0;
    for (uint32_t i = 0; i < b->cfg->n_assets; i++) {
        struct asset_bl *s = &b->a[i];
        if (!((s->state == LEARNING || (s->state == FAILED && s->acc)) &&
              now_mono_ms >= s->end_mono_ms))
            continue;
        if (s->state == LEARNING)
            finish(b, i, now_mono_ms);
        free(s->acc);
        s->acc = NULL;
        memset(done, 0, sizeof(*done));
        done->asset = i;
        done->ok = s->state == DONE;
        done->from_backend = s->from_backend;
        snprintf(done->request_id, sizeof(done->request_id), "%s", s->request_id);
        snprintf(done->text, sizeof(done->text), "%s", s->message);
        if (done->ok)
            pdm_info("asset %s: %s", b->cfg->assets[i].name, s->message);
        else
            pdm_warn("asset %s: baseline learning failed: %s", b->cfg->assets[i].name, s->message);
        return 1;
    }
    return 0;
}

void pdm_baselines_sync(struct pdm_baselines *b)
{
    for (uint32_t i = 0; b && i < b->cfg->n_assets; i++) {
        struct asset_bl *s = &b->a[i];
        const struct pdm_model *m = &b->cfg->assets[i].model;
        if (strcmp(s->model_sha, m->sha256) == 0)
            continue;
        memcpy(s->model_sha, m->sha256, sizeof(s->model_sha));
        if (s->state == LEARNING) {
            s->end_mono_ms = 0;
            fail(s, "the asset's model was replaced while learning; nothing was stored (learn "
                    "again for the new model)");
        }
        apply(b, i, "new model");
    }
}

/* ---- description for pdmctl ----------------------------------------------------------------- */

int pdm_baselines_describe(const struct pdm_baselines *b, const char *asset, int64_t now_mono_ms,
                           char *out, size_t cap)
{
    int i = pdm_config_asset_index(b->cfg, asset);
    if (i < 0)
        return -ENOENT;
    const struct asset_bl *s = &b->a[i];
    const struct pdm_model *m = &b->cfg->assets[i].model;
    static const char *const names[] = {"idle", "learning", "done", "failed"};
    size_t off = 0;
#define OUT(...)                                                                                   \
    do {                                                                                           \
        int w_ = snprintf(out + off, cap - off, __VA_ARGS__);                                      \
        if (w_ > 0)                                                                                \
            off = (size_t)w_ < cap - off ? off + (size_t)w_ : cap - 1;                             \
    } while (0)
    OUT("state %s\nasset %s\nmodel %s\nmodel_baseline %s\nin_use %s\nnote %s\n", names[s->state],
        b->cfg->assets[i].name, m->id, m->baseline_asset ? "asset" : "fleet",
        pdm_model_uses_asset_baseline(m) ? "asset" : "fleet", s->apply_note);
    if (s->state == LEARNING)
        OUT("progress %.1f %.1f\n", (double)(now_mono_ms - s->start_mono_ms) / 1000.0, s->seconds);
    if (s->message[0])
        OUT("message %s\n", s->message);
    if (s->has_stored) {
        OUT("learned_ms %lld\nlearned_s %.1f\n", (long long)s->stored.learned_ms,
            s->stored.seconds);
        for (uint32_t k = 0; k < s->stored.n_inputs; k++) {
            const struct pdm_baseline_input *in = &s->stored.in[k];
            int mk = pdm_model_input_index(m, in->name);
            double fc = NAN, fs = NAN;
            if (mk >= 0) {
                const struct pdm_model_input *mi = &m->inputs[mk];
                fc = mi->from_asset ? mi->fleet_center : mi->center;
                fs = mi->from_asset ? mi->fleet_scale : mi->scale;
            }
            OUT("input %s %s %g %.6g %.6g %.6g %llu %.6g %.6g\n", in->name, pdm_stat_name(in->stat),
                in->window_s, in->center, in->scale, in->sd, (unsigned long long)in->n, fc, fs);
        }
    }
#undef OUT
    return 0;
}
