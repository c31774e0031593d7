/* Swapping an asset's model while the engine runs (over-the-air updates): windows of inputs
 * that keep name, sensor and window_s keep their samples, changed and new inputs start empty,
 * the feed index follows, thresholds change, an open alert stays open, a failed prepare leaves
 * the engine as it was, and the scoring path allocates nothing after the swap. Synthetic time
 * and a config built by hand, as in test_engine.c. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/config.h"
#include "check.h"
#include "models/engine.h"

#include "alloc_count.h"

enum { S_TEMP, S_VIB, S_POWER, S_FAST, N_SENSORS };
#define INSTALLED_S 1577836800LL
#define WALL0_MS    1735689600000LL

static struct pdm_sensor_cfg sensors[N_SENSORS];
static struct pdm_asset_cfg assets[2];
static struct pdm_config cfg;

static void add_input(struct pdm_model *m, const char *name, enum pdm_stat stat, double window_s,
                      double center, double scale, double weight)
{
    struct pdm_model_input *in = &m->inputs[m->n_inputs++];
    snprintf(in->name, sizeof(in->name), "%s", name);
    in->is_age = strcmp(name, "age") == 0;
    in->stat = stat;
    in->window_s = window_s;
    in->center = center;
    in->scale = scale;
    in->weight = weight;
}

static void model_head(struct pdm_model *m, uint32_t version, double intercept)
{
    memset(m, 0, sizeof(*m));
    snprintf(m->id, sizeof(m->id), "compressor");
    m->version = version;
    m->intercept = intercept;
    m->warning = 0.5;
    m->critical = 0.8;
    m->clear = 0.4;
    m->hold = 2;
    m->eval_period_ms = 1000;
}

/* v1: temperature (mean 2 s), vibration (rms 2 s), age; a second asset shares vibration. */
static void build(void)
{
    memset(&cfg, 0, sizeof(cfg));
    memset(assets, 0, sizeof(assets));
    const char *names[] = {"temp", "vib", "power", "fast"};
    const int periods[] = {1000, 100, 1000, 10};
    for (int i = 0; i < N_SENSORS; i++) {
        snprintf(sensors[i].name, sizeof(sensors[i].name), "%s", names[i]);
        sensors[i].period_ms = periods[i];
    }
    cfg.sensors = sensors;
    cfg.n_sensors = N_SENSORS;
    cfg.assets = assets;
    cfg.n_assets = 2;
    for (int i = 0; i < 2; i++) {
        struct pdm_asset_cfg *a = &assets[i];
        snprintf(a->name, sizeof(a->name), "a%d", i);
        a->installed_s = INSTALLED_S;
        model_head(&a->model, 1, -4);
    }
    add_input(&assets[0].model, "temperature", PDM_STAT_MEAN, 2, 45, 10, 1.5);
    add_input(&assets[0].model, "vibration", PDM_STAT_RMS, 2, 2, 1, 1.0);
    add_input(&assets[0].model, "age", PDM_STAT_MEAN, 0, 5, 5, 0.2);
    int32_t s0[] = {S_TEMP, S_VIB, -1};
    for (uint32_t k = 0; k < 3; k++)
        assets[0].inputs[k].sensor = s0[k];
    assets[0].n_inputs = 3;
    add_input(&assets[1].model, "vibration", PDM_STAT_MAX, 1, 2, 1, 1.0);
    assets[1].inputs[0].sensor = S_VIB;
    assets[1].n_inputs = 1;
}

struct last {
    int n;
    double p;
    struct pdm_score score;
    int raised;
};

static void on_eval(void *ctx, const struct pdm_eval *ev)
{
    struct last *l = ctx;
    if (ev->asset != 0)
        return;
    l->n++;
    l->p = ev->score->probability;
    l->score = *ev->score;
    if (ev->has_alert && ev->alert.state == PDM_ALERT_RAISED) {
        l->raised++;
        memcpy(ev->fsm->alert_id, "a0-1", 5);
    }
}

static void feed(struct pdm_engine *e, int64_t from, int64_t to)
{
    for (int64_t t = from; t < to; t += 100) {
        pdm_engine_on_sample(e, S_VIB, t, 3.0);
        if (t % 1000 == 0) {
            pdm_engine_on_sample(e, S_TEMP, t, 90.0); /* hot: P high under every model here */
            pdm_engine_on_sample(e, S_POWER, t, 900.0);
        }
    }
}

static const struct pdm_window *win(const struct pdm_engine *e, uint32_t asset, uint32_t k)
{
    return &e->assets[asset].in[k].win;
}

static void test_swap(void)
{
    build();
    struct pdm_engine e;
    CHECK_INT(pdm_engine_init(&e, cfg.assets, cfg.n_assets, cfg.sensors, cfg.n_sensors, 0), 0);
    struct last l = {0};
    feed(&e, 0, 6001);
    pdm_engine_tick(&e, 5000, WALL0_MS + 5000, on_eval, &l);
    pdm_engine_tick(&e, 6000, WALL0_MS + 6000, on_eval, &l);
    CHECK_INT(l.raised, 1); /* an alert is open before the swap */
    CHECK_INT(e.assets[0].fsm.active, PDM_SEV_CRITICAL);
    const double *temp_data = win(&e, 0, 0)->v;
    uint32_t temp_count = win(&e, 0, 0)->count;
    CHECK_INT(temp_count, 4);                              /* cap ceil(2) + 2, full */
    CHECK_NEAR(l.score.logit, -4 + 1.5 * 4.5 + 1.0, 1e-3); /* v1; age about 5 years: ~0 */

    /* v2: temperature unchanged (stat changed: the samples still serve), vibration window
     * 2 -> 4 s (a new window), power added, age dropped; new thresholds and period */
    struct pdm_model v2;
    model_head(&v2, 2, -3);
    v2.warning = 0.6;
    v2.critical = 0.9;
    v2.clear = 0.5;
    v2.eval_period_ms = 500;
    add_input(&v2, "vibration", PDM_STAT_RMS, 4, 2, 1, 1.0);
    add_input(&v2, "temperature", PDM_STAT_MAX, 2, 45, 10, 1.5);
    add_input(&v2, "power", PDM_STAT_MEAN, 3, 800, 100, 0.5);
    int32_t sensor[] = {S_VIB, S_TEMP, S_POWER};

    struct pdm_engine_swap sw;
    char err[256];
    CHECK_INT(pdm_engine_swap_prepare(&e, 0, &v2, sensor, NULL, 0, &sw, err, sizeof(err)), 0);
    CHECK_INT(sw.keep[0], -1); /* vibration: window_s changed */
    CHECK_INT(sw.keep[1], 0);  /* temperature: from old slot 0 */
    CHECK_INT(sw.keep[2], -1); /* power: new */
    /* prepared, not committed: the engine still scores v1 */
    CHECK_INT(assets[0].model.version, 1);
    CHECK(win(&e, 0, 0)->v == temp_data);

    pdm_engine_swap_commit(&e, &sw, &assets[0], 6000);
    CHECK_INT(assets[0].model.version, 2);
    CHECK_INT(assets[0].n_inputs, 3);
    CHECK_STR(assets[0].inputs[2].input, "power");
    CHECK_INT(assets[0].inputs[2].sensor, S_POWER);
    CHECK(win(&e, 0, 1)->v == temp_data); /* temperature moved to slot 1 with its samples */
    CHECK_INT(win(&e, 0, 1)->count, temp_count);
    CHECK_INT(win(&e, 0, 0)->count, 0); /* vibration: empty, 4 s at 100 ms + 2 */
    CHECK_INT(win(&e, 0, 0)->cap, 42);
    CHECK_INT(win(&e, 0, 2)->count, 0);
    CHECK_INT(win(&e, 0, 3)->cap, 0);                    /* nothing left in the old age slot */
    CHECK_INT(e.assets[0].fsm.active, PDM_SEV_CRITICAL); /* the alert stays open */
    CHECK_STR(e.assets[0].fsm.alert_id, "a0-1");
    CHECK_NEAR(e.assets[0].policy.critical, 0.9, 0);
    CHECK_INT(e.assets[0].evals, 0);
    CHECK_INT(e.assets[0].next_eval_mono_ms, 6500); /* the new period from now */

    /* the feed index follows: vib feeds both assets' vibration windows, power the new one */
    uint32_t other_before = win(&e, 1, 0)->count;
    uint64_t stale_before = e.assets[0].skipped_stale;
    pdm_engine_tick(&e, 6500, WALL0_MS + 6500, on_eval, &l); /* power has no data yet */
    CHECK_INT(e.assets[0].skipped_stale, stale_before + 1);

    /* from here on, no allocation: the swap did its allocating in prepare */
    install_counter();
    n_alloc = n_free = 0;
    counting = 1;
    feed(&e, 7000, 9000);
    pdm_engine_tick(&e, 9000, WALL0_MS + 9000, on_eval, &l);
    counting = 0;
    CHECK_MSG(n_alloc == 0 && n_free == 0, "%lu allocations, %lu frees after the swap", n_alloc,
              n_free);
    CHECK_INT(win(&e, 0, 0)->count, 20);
    CHECK_INT(win(&e, 0, 2)->count, 2);
    CHECK_INT(win(&e, 1, 0)->count, other_before + 20 > 12 ? 12 : other_before + 20);
    /* scored with v2: -3 + 1.0 * (3 - 2) / 1 + 1.5 * (90 - 45) / 10 + 0.5 * (900 - 800) / 100 */
    CHECK_INT(l.score.n_inputs, 3);
    CHECK_NEAR(l.score.logit, -3 + 1.0 + 6.75 + 0.5, 1e-9);
    CHECK_NEAR(l.score.in[1].value, 90, 0);

    /* a prepare that fails changes nothing */
    struct pdm_model v3;
    model_head(&v3, 3, 0);
    add_input(&v3, "fast", PDM_STAT_MEAN, 86400, 0, 1, 1); /* 8.64 M samples of a 10 ms sensor */
    int32_t s3[] = {S_FAST};
    err[0] = '\0';
    CHECK_INT(pdm_engine_swap_prepare(&e, 0, &v3, s3, NULL, 0, &sw, err, sizeof(err)), -E2BIG);
    CHECK(strstr(err, "input fast: a 86400 s window of sensor fast") != NULL);
    int32_t none[] = {-1};
    CHECK_INT(pdm_engine_swap_prepare(&e, 0, &v3, none, NULL, 0, &sw, err, sizeof(err)), -EINVAL);
    CHECK_STR(err, "input fast has no sensor");
    CHECK_INT(pdm_engine_swap_prepare(&e, 7, &v3, s3, NULL, 0, &sw, err, sizeof(err)), -EINVAL);
    CHECK_INT(assets[0].model.version, 2);
    CHECK_INT(win(&e, 0, 0)->count, 20);

    /* a prepared swap can be dropped */
    CHECK_INT(pdm_engine_swap_prepare(&e, 0, &v2, sensor, NULL, 0, &sw, err, sizeof(err)), 0);
    pdm_engine_swap_abort(&sw);
    CHECK_INT(assets[0].model.version, 2);
    pdm_engine_free(&e);
}

struct per_asset {
    int n[2];
    double logit[2];
};

static void on_eval_both(void *ctx, const struct pdm_eval *ev)
{
    struct per_asset *pa = ctx;
    if (ev->asset < 2) {
        pa->n[ev->asset]++;
        pa->logit[ev->asset] = ev->score->logit;
    }
}

/* A fleet update swaps two assets running the same model at once, v2 reordering the inputs and
 * adding one: after both commits every window of both assets is fed by its own sensor (the
 * feed index of the second swap must include the first), and both score with v2. */
static void test_swap_two_assets(void)
{
    build();
    assets[1].model = assets[0].model;
    memcpy(assets[1].inputs, assets[0].inputs, sizeof(assets[1].inputs));
    assets[1].n_inputs = assets[0].n_inputs;
    struct pdm_engine e;
    CHECK_INT(pdm_engine_init(&e, cfg.assets, cfg.n_assets, cfg.sensors, cfg.n_sensors, 0), 0);
    feed(&e, 0, 6001);

    struct pdm_model v2;
    model_head(&v2, 2, -3);
    add_input(&v2, "vibration", PDM_STAT_RMS, 4, 2, 1, 1.0);
    add_input(&v2, "temperature", PDM_STAT_MAX, 2, 45, 10, 1.5);
    add_input(&v2, "power", PDM_STAT_MEAN, 3, 800, 100, 0.5);
    int32_t sensor[] = {S_VIB, S_TEMP, S_POWER};
    struct pdm_engine_swap sw[2];
    char err[256];
    CHECK_INT(pdm_engine_swap_prepare(&e, 0, &v2, sensor, NULL, 0, &sw[0], err, sizeof(err)), 0);
    CHECK_INT(pdm_engine_swap_prepare(&e, 1, &v2, sensor, sw, 1, &sw[1], err, sizeof(err)), 0);
    pdm_engine_swap_commit(&e, &sw[0], &assets[0], 6000);
    pdm_engine_swap_commit(&e, &sw[1], &assets[1], 6000);

    install_counter();
    n_alloc = n_free = 0;
    counting = 1;
    feed(&e, 7000, 9000);
    struct per_asset pa = {{0}, {0}};
    pdm_engine_tick(&e, 9000, WALL0_MS + 9000, on_eval_both, &pa);
    counting = 0;
    CHECK_MSG(n_alloc == 0 && n_free == 0, "%lu allocations, %lu frees after the swaps", n_alloc,
              n_free);
    for (uint32_t i = 0; i < 2; i++) {
        CHECK_INT(win(&e, i, 0)->count, 20); /* vibration: 2 s of a 100 ms sensor */
        CHECK_INT(win(&e, i, 2)->count, 2);  /* power: the new input is fed */
        CHECK_INT(pa.n[i], 1);
        CHECK_NEAR(pa.logit[i], -3 + 1.0 + 6.75 + 0.5, 1e-9);
    }
    pdm_engine_free(&e);
}

int main(void)
{
    test_swap();
    test_swap_two_assets();
    return check_summary("test_engine_swap");
}
