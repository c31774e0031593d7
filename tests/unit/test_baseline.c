/* Per-asset baselines: the learning arithmetic and its floor, the [model] baseline key, the
 * effective model (one scorer, constants swapped), the file's round trip and refusals, and the
 * agent module end to end on a hand-built config with synthetic time: learning refusals,
 * learning from the window statistics, storing, applying, and no allocation per evaluation. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/baseline.h"
#include "agent/config.h"
#include "check.h"
#include "models/engine.h"
#include "models/model.h"
#include "train/model_write.h"

#include "alloc_count.h"

static void test_moments(void)
{
    struct pdm_moments mo = {0};
    CHECK_NEAR(pdm_moments_sd(&mo), 0, 0);
    const double x[] = {2, 4, 4, 4, 5, 5, 7, 9};
    for (size_t i = 0; i < 8; i++)
        pdm_moments_add(&mo, x[i]);
    CHECK_INT(mo.n, 8);
    CHECK_NEAR(mo.mean, 5.0, 1e-12);
    CHECK_NEAR(pdm_moments_sd(&mo), sqrt(32.0 / 7.0), 1e-12); /* sample sd, n - 1 */
    /* a large offset does not ruin the variance (why Welford, not sum of squares) */
    struct pdm_moments big = {0};
    for (size_t i = 0; i < 8; i++)
        pdm_moments_add(&big, 1e9 + x[i]);
    CHECK_NEAR(pdm_moments_sd(&big), sqrt(32.0 / 7.0), 1e-6);
    struct pdm_moments one = {0};
    pdm_moments_add(&one, 3);
    CHECK_NEAR(pdm_moments_sd(&one), 0, 0);
}

static void test_floor(void)
{
    CHECK_NEAR(pdm_baseline_scale(0.1, 8), 2.0, 1e-12); /* 0.25 x fleet scale */
    CHECK_NEAR(pdm_baseline_scale(3.0, 8), 3.0, 1e-12); /* the measured sd above the floor */
    CHECK_NEAR(pdm_baseline_scale(0.0, 8), 2.0, 1e-12); /* a constant input */
    CHECK(pdm_baseline_scale(0.0, 0.0) > 0);
}

static void model(struct pdm_model *m)
{
    memset(m, 0, sizeof(*m));
    snprintf(m->id, sizeof(m->id), "compressor");
    m->version = 1;
    m->intercept = -4;
    m->warning = 0.5;
    m->critical = 0.8;
    m->clear = 0.4;
    m->hold = 1;
    m->eval_period_ms = 1000;
    const char *names[] = {"temperature", "vibration", "age"};
    const double c[] = {45, 2.5, 5}, s[] = {8, 2, 5}, w[] = {1.6, 1.4, 0.4};
    for (int k = 0; k < 3; k++) {
        struct pdm_model_input *in = &m->inputs[k];
        snprintf(in->name, sizeof(in->name), "%s", names[k]);
        in->is_age = k == 2;
        in->stat = k == 1 ? PDM_STAT_RMS : PDM_STAT_MEAN;
        in->window_s = k == 2 ? 0 : 10;
        in->center = c[k];
        in->scale = s[k];
        in->weight = w[k];
    }
    m->n_inputs = 3;
}

static void baseline(struct pdm_baseline *b)
{
    memset(b, 0, sizeof(*b));
    snprintf(b->model_id, sizeof(b->model_id), "compressor");
    b->n_inputs = 2;
    snprintf(b->in[0].name, sizeof(b->in[0].name), "temperature");
    b->in[0].stat = PDM_STAT_MEAN;
    b->in[0].window_s = 10;
    b->in[0].center = 52.25;
    b->in[0].scale = 2.0;
    b->in[0].sd = 0.125;
    b->in[0].n = 60;
    snprintf(b->in[1].name, sizeof(b->in[1].name), "vibration");
    b->in[1].stat = PDM_STAT_RMS;
    b->in[1].window_s = 10;
    b->in[1].center = 1.75;
    b->in[1].scale = 0.6;
    b->in[1].sd = 0.6;
    b->in[1].n = 60;
    b->learned_ms = 1735689600123LL;
    b->seconds = 60;
}

static void test_effective_model(void)
{
    struct pdm_model m, fleet;
    struct pdm_baseline b;
    model(&m);
    fleet = m;
    baseline(&b);
    char err[256];
    CHECK_INT(pdm_model_apply_baseline(&m, &b, err, sizeof(err)), 0);
    CHECK(pdm_model_uses_asset_baseline(&m));
    CHECK_NEAR(m.inputs[0].center, 52.25, 0);
    CHECK_NEAR(m.inputs[0].scale, 2.0, 0);
    CHECK_NEAR(m.inputs[0].fleet_center, 45, 0);
    CHECK(m.inputs[0].from_asset && m.inputs[1].from_asset && !m.inputs[2].from_asset);
    CHECK_NEAR(m.inputs[2].center, 5, 0); /* age keeps the file's constants */

    /* the one scorer on the effective model: z against the asset's center and scale */
    double x[3] = {54.25, 1.75, 7};
    struct pdm_score s;
    pdm_model_score(&m, x, &s);
    CHECK_NEAR(s.in[0].z, 1.0, 1e-12);
    CHECK_NEAR(s.in[1].z, 0.0, 1e-12);
    CHECK_NEAR(s.in[2].z, 0.4, 1e-12);
    CHECK_NEAR(s.logit, -4 + 1.6 + 0.4 * 0.4, 1e-12);
    struct pdm_score sf;
    pdm_model_score(&fleet, x, &sf);
    CHECK_NEAR(sf.in[0].z, (54.25 - 45) / 8, 1e-12);

    /* applying twice is the same as once (the fleet constants are not lost) */
    CHECK_INT(pdm_model_apply_baseline(&m, &b, err, sizeof(err)), 0);
    CHECK_NEAR(m.inputs[0].fleet_center, 45, 0);
    pdm_model_use_fleet(&m);
    CHECK(!pdm_model_uses_asset_baseline(&m));
    CHECK(memcmp(&m.inputs[0].center, &fleet.inputs[0].center, sizeof(double)) == 0);
    CHECK_NEAR(m.inputs[1].scale, 2, 0);

    /* mismatches are refused with a reason and leave the model as it was */
    struct pdm_baseline bad = b;
    snprintf(bad.model_id, sizeof(bad.model_id), "chiller");
    CHECK_INT(pdm_model_apply_baseline(&m, &bad, err, sizeof(err)), -EINVAL);
    CHECK(strstr(err, "chiller") != NULL);
    bad = b;
    bad.in[1].window_s = 30;
    CHECK_INT(pdm_model_apply_baseline(&m, &bad, err, sizeof(err)), -EINVAL);
    CHECK(strstr(err, "vibration") != NULL && strstr(err, "30") != NULL);
    bad = b;
    bad.in[1].stat = PDM_STAT_MAX;
    CHECK_INT(pdm_model_apply_baseline(&m, &bad, err, sizeof(err)), -EINVAL);
    bad = b;
    bad.n_inputs = 1; /* vibration missing */
    CHECK_INT(pdm_model_apply_baseline(&m, &bad, err, sizeof(err)), -EINVAL);
    CHECK(strstr(err, "vibration") != NULL);
    bad = b;
    bad.n_inputs = 3; /* one input more than the model has */
    snprintf(bad.in[2].name, sizeof(bad.in[2].name), "power");
    bad.in[2].scale = 1;
    CHECK_INT(pdm_model_apply_baseline(&m, &bad, err, sizeof(err)), -EINVAL);
    CHECK(!pdm_model_uses_asset_baseline(&m));
    CHECK_NEAR(m.inputs[0].center, 45, 0);
}

static char dir[] = "/tmp/test_baseline_XXXXXX";

static void test_file(void)
{
    struct pdm_baseline b, r;
    baseline(&b);
    b.in[0].center = 45.123456789012345; /* needs 17 digits */
    char path[256], err[512];
    snprintf(path, sizeof(path), "%s/x.baseline", dir);
    CHECK_INT(pdm_baseline_save(path, "compressor-1", &b, err, sizeof(err)), 0);
    CHECK_INT(pdm_baseline_load(path, &r, err, sizeof(err)), 0);
    CHECK_STR(r.model_id, "compressor");
    CHECK_INT(r.n_inputs, 2);
    CHECK(r.in[0].center == b.in[0].center);
    CHECK(r.in[1].scale == b.in[1].scale && r.in[1].stat == PDM_STAT_RMS);
    CHECK(r.in[0].window_s == 10 && r.in[0].n == 60 && r.learned_ms == b.learned_ms);
    char tmp[300];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    CHECK(access(tmp, F_OK) != 0); /* renamed, nothing left behind */

    /* a damaged file is refused with its line */
    FILE *f = fopen(path, "a");
    fputs("input = pressure mean 10 3 -1 0 5\n", f); /* scale <= 0 */
    fclose(f);
    CHECK_INT(pdm_baseline_load(path, &r, err, sizeof(err)), -EINVAL);
    CHECK_MSG(strstr(err, ":9:") != NULL, "%s", err); /* the appended line */
    f = fopen(path, "w");
    fputs("asset = x\n", f);
    fclose(f);
    CHECK_INT(pdm_baseline_load(path, &r, err, sizeof(err)), -EINVAL);
    unlink(path);
}

static int load_model_text(const char *text, struct pdm_model *m, char *log, size_t loglen)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/m.model", dir);
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    FILE *mem = fmemopen(log, loglen, "w");
    struct pdm_diag diag = {.out = mem};
    int n = pdm_model_load(path, m, &diag);
    fclose(mem);
    unlink(path);
    return n;
}

static void test_model_key(void)
{
    static const char head[] = "[model]\nid = c\nversion = 1\nintercept = -4\nwarning = 0.5\n"
                               "critical = 0.8\nclear = 0.4\nhold = 1\neval_period_ms = 1000\n";
    static const char input[] = "[input temperature]\nstat = mean\nwindow_s = 10\ncenter = 45\n"
                                "scale = 8\nweight = 1\n";
    char text[1024], log[1024] = "";
    struct pdm_model m;
    snprintf(text, sizeof(text), "%s%s", head, input);
    CHECK_INT(load_model_text(text, &m, log, sizeof(log)), 0);
    CHECK_INT(m.baseline_asset, 0); /* default: fleet */
    snprintf(text, sizeof(text), "%sbaseline = asset\n%s", head, input);
    CHECK_INT(load_model_text(text, &m, log, sizeof(log)), 0);
    CHECK_INT(m.baseline_asset, 1);
    snprintf(text, sizeof(text), "%sbaseline = fleet\n%s", head, input);
    CHECK_INT(load_model_text(text, &m, log, sizeof(log)), 0);
    CHECK_INT(m.baseline_asset, 0);
    snprintf(text, sizeof(text), "%sbaseline = mine\n%s", head, input);
    CHECK_INT(load_model_text(text, &m, log, sizeof(log)), 1);
    CHECK_MSG(strstr(log, ":10: model.baseline: expected fleet or asset, got 'mine'") != NULL, "%s",
              log);

    /* written back with the file's constants, also while an asset baseline is applied */
    snprintf(text, sizeof(text), "%sbaseline = asset\n%s", head, input);
    CHECK_INT(load_model_text(text, &m, log, sizeof(log)), 0);
    struct pdm_baseline b;
    memset(&b, 0, sizeof(b));
    snprintf(b.model_id, sizeof(b.model_id), "c");
    b.n_inputs = 1;
    snprintf(b.in[0].name, sizeof(b.in[0].name), "temperature");
    b.in[0].window_s = 10;
    b.in[0].center = 50;
    b.in[0].scale = 3;
    char err[128];
    CHECK_INT(pdm_model_apply_baseline(&m, &b, err, sizeof(err)), 0);
    char out[2048];
    FILE *mem = fmemopen(out, sizeof(out), "w");
    CHECK_INT(pdm_model_write(mem, &m, NULL, NULL), 0);
    fclose(mem);
    CHECK(strstr(out, "baseline = asset\n") != NULL);
    CHECK(strstr(out, "center = 45\n") != NULL && strstr(out, "scale = 8\n") != NULL);
}

/* ---- the agent module on a hand-built config --------------------------------------------------
 */

enum { S_TEMP, S_VIB, N_SENSORS };
static struct pdm_sensor_cfg sensors[N_SENSORS];
static struct pdm_asset_cfg assets[1];
static struct pdm_config cfg;

static void build(int baseline_asset)
{
    memset(&cfg, 0, sizeof(cfg));
    memset(assets, 0, sizeof(assets));
    snprintf(sensors[S_TEMP].name, sizeof(sensors[S_TEMP].name), "temp");
    snprintf(sensors[S_VIB].name, sizeof(sensors[S_VIB].name), "vib");
    sensors[S_TEMP].period_ms = sensors[S_VIB].period_ms = 100;
    cfg.sensors = sensors;
    cfg.n_sensors = N_SENSORS;
    cfg.assets = assets;
    cfg.n_assets = 1;
    snprintf(cfg.data_dir, sizeof(cfg.data_dir), "%s", dir);
    snprintf(assets[0].name, sizeof(assets[0].name), "comp-1");
    assets[0].installed_s = 1577836800LL;
    model(&assets[0].model);
    for (uint32_t k = 0; k < 3; k++)
        assets[0].model.inputs[k].window_s = k == 2 ? 0 : 1;
    assets[0].model.baseline_asset = baseline_asset;
    snprintf(assets[0].model.sha256, sizeof(assets[0].model.sha256), "%064d", 1);
    assets[0].inputs[0].sensor = S_TEMP;
    assets[0].inputs[1].sensor = S_VIB;
    assets[0].inputs[2].sensor = -1;
    assets[0].n_inputs = 3;
}

struct ctx {
    struct pdm_baselines *b;
    int count_evals;
    int raise; /* fake an alert on the next evaluation */
};

static void on_eval(void *p, const struct pdm_eval *ev)
{
    struct ctx *c = p;
    struct pdm_eval copy = *ev;
    if (c->raise) {
        copy.has_alert = 1;
        copy.alert.state = PDM_ALERT_RAISED;
        c->raise = 0;
    }
    pdm_baselines_on_eval(c->b, &copy);
}

/* temperature alternates 45 and 55 each second (window mean over 1 s), vibration steady 1.0 */
static void run(struct pdm_engine *e, struct ctx *c, int64_t from, int64_t to)
{
    for (int64_t t = from; t < to; t += 100) {
        pdm_engine_on_sample(e, S_TEMP, t, (t / 1000) % 2 ? 55.0 : 45.0);
        pdm_engine_on_sample(e, S_VIB, t, 1.0);
        pdm_engine_tick(e, t, 1735689600000LL + t, on_eval, c);
    }
}

static void test_agent_learning(void)
{
    build(1);
    struct pdm_engine e;
    struct ctx c = {0};
    char err[512], text[PDM_CMD_TEXT_MAX];
    CHECK_INT(pdm_baselines_open(&c.b, &cfg, err, sizeof(err)), 0);
    CHECK(!pdm_model_uses_asset_baseline(&assets[0].model)); /* nothing learned yet */
    CHECK_INT(pdm_engine_init(&e, cfg.assets, cfg.n_assets, cfg.sensors, cfg.n_sensors, 0), 0);

    /* refusals */
    CHECK_INT(pdm_baselines_start(c.b, &e, "comp-1", 10, 0, "", 0, 0, text, sizeof(text)),
              PDM_CMD_NO_INPUT_DATA); /* no sample yet */
    CHECK(strstr(text, "temperature") != NULL);
    run(&e, &c, 0, 2000);
    CHECK_INT(pdm_baselines_start(c.b, &e, "nope", 10, 0, "", 0, 2000, text, sizeof(text)),
              PDM_CMD_UNKNOWN_ASSET);
    CHECK_INT(pdm_baselines_start(c.b, &e, "comp-1", 0.5, 0, "", 0, 2000, text, sizeof(text)),
              PDM_CMD_BASELINE_DURATION);
    CHECK_INT(pdm_baselines_start(c.b, &e, "comp-1", 1e9, 0, "", 0, 2000, text, sizeof(text)),
              PDM_CMD_BASELINE_DURATION);
    e.assets[0].fsm.active = PDM_SEV_WARNING;
    CHECK_INT(pdm_baselines_start(c.b, &e, "comp-1", 10, 0, "", 0, 2000, text, sizeof(text)),
              PDM_CMD_ASSET_ALERTING);
    e.assets[0].fsm.active = PDM_SEV_NONE;

    /* learning: an alert raised meanwhile discards it */
    CHECK_INT(pdm_baselines_start(c.b, &e, "comp-1", 5, 0, "req-1", 1, 2000, text, sizeof(text)),
              PDM_CMD_OK);
    CHECK_INT(pdm_baselines_start(c.b, &e, "comp-1", 5, 0, "", 0, 2000, text, sizeof(text)),
              PDM_CMD_BASELINE_RUNNING);
    c.raise = 1;
    run(&e, &c, 2000, 3100);
    /* failed but not answered yet: a new request waits, so req-1 still gets its final answer
     * (and nothing leaks: ASan) */
    CHECK_INT(pdm_baselines_start(c.b, &e, "comp-1", 5, 1, "req-2", 1, 3100, text, sizeof(text)),
              PDM_CMD_BASELINE_RUNNING);
    CHECK(strstr(text, "not sent yet") != NULL);
    struct pdm_baseline_done done;
    CHECK_INT(pdm_baselines_tick(c.b, &e, 3100, &done), 1);
    CHECK(!done.ok && strstr(done.text, "alert") != NULL);
    CHECK_STR(done.request_id, "req-1");
    CHECK_INT(pdm_baselines_tick(c.b, &e, 3100, &done), 0);

    /* a good learning, 20 s: evaluations do not allocate */
    CHECK_INT(pdm_baselines_start(c.b, &e, "comp-1", 20, 0, "", 0, 3100, text, sizeof(text)),
              PDM_CMD_OK);
    CHECK_INT(install_counter(), 0);
    n_alloc = 0;
    counting = 1;
    run(&e, &c, 3100, 23100);
    counting = 0;
    CHECK_MSG(n_alloc == 0, "%lu allocations while learning", n_alloc);
    counting = 1; /* the counter is not blind */
    void *volatile probe = malloc(16);
    counting = 0;
    free(probe);
    CHECK_INT(n_alloc, 1);
    CHECK_INT(pdm_baselines_tick(c.b, &e, 22000, &done), 0); /* not yet */
    CHECK_INT(pdm_baselines_tick(c.b, &e, 23100, &done), 1);
    CHECK_MSG(done.ok, "%s", done.text);
    const struct pdm_model *m = &assets[0].model;
    CHECK(pdm_model_uses_asset_baseline(m)); /* the model says asset: applied at once */
    /* window means of 1 s swing between 45 and 55: center 50, sd about 4 (over the floor 2) */
    CHECK_NEAR(m->inputs[0].center, 50.0, 0.5);
    CHECK_MSG(m->inputs[0].scale > 3 && m->inputs[0].scale < 5.5, "scale %g", m->inputs[0].scale);
    CHECK_NEAR(m->inputs[1].center, 1.0, 1e-9);
    CHECK_NEAR(m->inputs[1].scale, 0.5, 1e-12); /* steady: the floor, 0.25 x 2 */
    CHECK_NEAR(m->inputs[2].center, 5, 0);      /* age untouched */
    char desc[4096];
    CHECK_INT(pdm_baselines_describe(c.b, "comp-1", 23100, desc, sizeof(desc)), 0);
    CHECK(strstr(desc, "state done\n") && strstr(desc, "in_use asset\n"));
    pdm_engine_free(&e);
    pdm_baselines_close(c.b);

    /* stored: a new start applies it; a model asking for fleet does not use it */
    build(1);
    CHECK_INT(pdm_baselines_open(&c.b, &cfg, err, sizeof(err)), 0);
    CHECK(pdm_model_uses_asset_baseline(&assets[0].model));
    CHECK_NEAR(assets[0].model.inputs[1].scale, 0.5, 1e-12);
    pdm_baselines_close(c.b);
    build(0);
    CHECK_INT(pdm_baselines_open(&c.b, &cfg, err, sizeof(err)), 0);
    CHECK(!pdm_model_uses_asset_baseline(&assets[0].model));
    pdm_baselines_close(c.b);
    /* a model whose inputs changed: the stored baseline does not fit, fleet constants stay */
    build(1);
    assets[0].model.inputs[0].window_s = 30;
    CHECK_INT(pdm_baselines_open(&c.b, &cfg, err, sizeof(err)), 0);
    CHECK(!pdm_model_uses_asset_baseline(&assets[0].model));
    CHECK_INT(pdm_baselines_describe(c.b, "comp-1", 0, desc, sizeof(desc)), 0);
    CHECK(strstr(desc, "in_use fleet\n") && strstr(desc, "30"));
    pdm_baselines_close(c.b);
}

int main(void)
{
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_moments();
    test_floor();
    test_effective_model();
    test_file();
    test_model_key();
    test_agent_learning();
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return check_summary("test_baseline");
}
