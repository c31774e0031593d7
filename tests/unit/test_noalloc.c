/* Proves that the scoring path (pdm_engine_on_sample, pdm_engine_tick and everything they call:
 * windows, model score, alert state machine, the callback hand-off) does no heap allocation
 * once pdm_engine_init() has returned.
 *
 * Allocations are counted by tests/unit/alloc_count.h (replacement malloc family in a plain
 * build, ASan's hooks under AddressSanitizer). The test also allocates on purpose while
 * counting, so it cannot pass because the counter is blind. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/config.h"
#include "check.h"
#include "models/engine.h"
#include "agent/store.h"
#include "agent/usage.h"

#include "alloc_count.h"

/* Called through volatile pointers so the compiler cannot elide the intentional allocations. */
static void *(*volatile do_malloc)(size_t) = malloc;
static void *(*volatile do_calloc)(size_t, size_t) = calloc;
static void *(*volatile do_realloc)(void *, size_t) = realloc;
static void (*volatile do_free)(void *) = free;

/* ---- a plant with three assets, one sensor shared by two of them ----------------------------- */

enum { S_TEMP, S_VIB, S_POWER, S_FLOW, N_SENSORS };
#define INSTALLED_S 1577836800LL    /* 2020-01-01 */
#define WALL0_MS    1735689600000LL /* 2025-01-01, 5 years later */

static struct pdm_sensor_cfg sensors[N_SENSORS];
static struct pdm_asset_cfg assets[3];
static struct pdm_config cfg;

static void add_input(struct pdm_asset_cfg *a, const char *name, enum pdm_stat stat,
                      double window_s, double center, double scale, double weight, int32_t sensor)
{
    struct pdm_model_input *in = &a->model.inputs[a->model.n_inputs];
    snprintf(in->name, sizeof(in->name), "%s", name);
    in->is_age = strcmp(name, "age") == 0;
    in->stat = stat;
    in->window_s = window_s;
    in->center = center;
    in->scale = scale;
    in->weight = weight;
    snprintf(a->inputs[a->n_inputs].input, sizeof(a->inputs[0].input), "%s", name);
    a->inputs[a->n_inputs].sensor = sensor;
    a->model.n_inputs++;
    a->n_inputs++;
}

static struct pdm_asset_cfg *add_asset(const char *name, int eval_ms, int hold)
{
    struct pdm_asset_cfg *a = &assets[cfg.n_assets++];
    snprintf(a->name, sizeof(a->name), "%s", name);
    snprintf(a->model.id, sizeof(a->model.id), "%s-model", name);
    a->model.version = 1;
    a->model.intercept = -4.0;
    a->model.warning = 0.5;
    a->model.critical = 0.8;
    a->model.clear = 0.4;
    a->model.hold = hold;
    a->model.eval_period_ms = eval_ms;
    a->installed_s = INSTALLED_S;
    return a;
}

static void build_config(void)
{
    const char *names[] = {"temp", "vib", "power", "flow"};
    const int periods[] = {50, 10, 100, 20}; /* ms */
    for (int i = 0; i < N_SENSORS; i++) {
        snprintf(sensors[i].name, sizeof(sensors[i].name), "%s", names[i]);
        sensors[i].period_ms = periods[i];
        sensors[i].scale = 1.0;
    }
    cfg.sensors = sensors;
    cfg.n_sensors = N_SENSORS;
    cfg.assets = assets;

    struct pdm_asset_cfg *a = add_asset("compressor", 100, 3);
    add_input(a, "temperature", PDM_STAT_MEAN, 2, 45, 10, 1.5, S_TEMP);
    add_input(a, "vibration", PDM_STAT_RMS, 1, 2, 1, 1.0, S_VIB);
    add_input(a, "power", PDM_STAT_MAX, 3, 1000, 500, 0.5, S_POWER);
    add_input(a, "age", PDM_STAT_MEAN, 0, 5, 5, 0.2, -1);
    a = add_asset("pump", 100, 2);
    add_input(a, "vibration", PDM_STAT_RMS, 2, 2, 1, 1.2, S_VIB); /* shares the vib sensor */
    add_input(a, "flow", PDM_STAT_MEAN, 1, 10, 2, -0.8, S_FLOW);
    add_input(a, "vibration_peak", PDM_STAT_MAX, 0.5, 3, 1, 0.5, S_VIB);
    a = add_asset("fan", 250, 1);
    add_input(a, "temperature", PDM_STAT_MAX, 5, 45, 10, 2.0, S_TEMP);
    add_input(a, "age", PDM_STAT_MEAN, 0, 5, 5, 0.2, -1);
    /* derived inputs are computed on the scoring path too: square(temperature), and
     * temperature - age (small weights: they must not change the alert pattern much) */
    add_input(a, "temp_sq", PDM_STAT_MEAN, 0, 2500, 1000, 0.01, -1);
    add_input(a, "temp_age", PDM_STAT_MEAN, 0, 40, 10, 0.01, -1);
    a->model.inputs[2].derive = PDM_DERIVE_PRODUCT;
    a->model.inputs[2].arg[0] = a->model.inputs[2].arg[1] = 0;
    a->model.inputs[3].derive = PDM_DERIVE_DIFF;
    a->model.inputs[3].arg[0] = 0;
    a->model.inputs[3].arg[1] = 1;
    int bad;
    char err[128];
    CHECK_INT(pdm_model_link(&a->model, &bad, err, sizeof(err)), 0);
    CHECK_INT(a->model.n_derived, 2);
}

/* Severity ramps up and back down every 20 s; phase offsets per sensor make the assets cross
 * their thresholds at different times, so every kind of transition happens many times. */
static double wave(int64_t t_ms, int64_t offset_ms)
{
    int64_t ph = (t_ms + offset_ms) % 20000;
    return ph < 10000 ? ph / 10000.0 : (20000 - ph) / 10000.0; /* 0..1..0 */
}

struct tally {
    unsigned long evals, raised, updated, cleared, with_alert;
    double p_min, p_max;
};

/* Must not allocate either: it stands in for the agent's callback; it sets the alert id by hand
 * (snprintf would bring libc's formatting into the measurement). */
static void on_eval(void *ctx, const struct pdm_eval *ev)
{
    struct tally *t = ctx;
    t->evals++;
    if (ev->score->probability < t->p_min)
        t->p_min = ev->score->probability;
    if (ev->score->probability > t->p_max)
        t->p_max = ev->score->probability;
    if (!ev->has_alert)
        return;
    t->with_alert++;
    switch (ev->alert.state) {
    case PDM_ALERT_RAISED:
        t->raised++;
        memcpy(ev->fsm->alert_id, "episode", 8);
        ev->fsm->alert_id[7] = (char)('0' + t->raised % 10);
        ev->fsm->alert_id[8] = '\0';
        break;
    case PDM_ALERT_UPDATED:
        t->updated++;
        break;
    case PDM_ALERT_CLEARED:
        t->cleared++;
        break;
    }
}

static void test_counter_sees_allocations(void)
{
    n_alloc = n_free = 0;
    counting = 1;
    void *p = do_malloc(64);
    void *q = do_calloc(4, 16);
    p = do_realloc(p, 4096);
    do_free(p);
    do_free(q);
    counting = 0;
    CHECK_MSG(n_alloc >= 3, "the counter saw %lu of 3 allocations", n_alloc);
    CHECK_MSG(n_free >= 2, "the counter saw %lu of 2 frees", n_free);

    /* and it is quiet when off */
    unsigned long before = n_alloc;
    p = do_malloc(64);
    do_free(p);
    CHECK_INT(n_alloc, before);
}

static void test_scoring_path_does_not_allocate(void)
{
    build_config();
    struct pdm_engine e;
    CHECK_INT(pdm_engine_init(&e, cfg.assets, cfg.n_assets, cfg.sensors, cfg.n_sensors, 0),
              0); /* allocations here are expected */

    struct tally t = {.p_min = 1.0, .p_max = 0.0};
    unsigned long samples = 0;
    int64_t next_due = 0, ticks_with_work = 0;

    n_alloc = n_free = 0;
    counting = 1;
    /* 10 minutes of plant time in 10 ms steps */
    for (int64_t now = 0; now <= 600000; now += 10) {
        double w = wave(now, 0);
        pdm_engine_on_sample(&e, S_VIB, now, 2.0 + 4.0 * w);
        samples++;
        if (now % 20 == 0) {
            pdm_engine_on_sample(&e, S_FLOW, now, 10.0 - 6.0 * wave(now, 3000));
            samples++;
        }
        if (now % 50 == 0) {
            pdm_engine_on_sample(&e, S_TEMP, now, 45.0 + 30.0 * wave(now, 7000));
            samples++;
        }
        if (now % 100 == 0) {
            pdm_engine_on_sample(&e, S_POWER, now, 1000.0 + 900.0 * w);
            samples++;
        }
        if (now >= next_due) {
            next_due = pdm_engine_tick(&e, now, WALL0_MS + now, on_eval, &t);
            ticks_with_work++;
        }
    }
    counting = 0;

    CHECK_MSG(n_alloc == 0, "%lu heap allocations on the scoring path after init", n_alloc);
    CHECK_MSG(n_free == 0, "%lu frees on the scoring path after init", n_free);
    CHECK_MSG(samples >= 100000, "only %lu samples", samples);
    CHECK_MSG(t.evals >= 10000, "only %lu evaluations", t.evals);
    uint64_t engine_evals = 0, stale = 0;
    for (uint32_t i = 0; i < e.n_assets; i++) {
        engine_evals += e.assets[i].evals;
        stale += e.assets[i].skipped_stale;
    }
    CHECK_INT(engine_evals, t.evals); /* every evaluation reached the callback */
    CHECK_INT(stale, 0);
    /* the run exercised the whole state machine, repeatedly */
    CHECK_MSG(t.raised >= 10, "RAISED %lu times", t.raised);
    CHECK_MSG(t.updated >= 10, "UPDATED %lu times", t.updated);
    CHECK_MSG(t.cleared >= 10, "CLEARED %lu times", t.cleared);
    CHECK_INT(t.with_alert, t.raised + t.updated + t.cleared);
    CHECK_MSG(t.p_min < 0.05 && t.p_max > 0.95, "P ranged only %g..%g", t.p_min, t.p_max);
    printf("scoring path: %lu samples, %lu evaluations, %lu ticks; RAISED %lu, UPDATED %lu, "
           "CLEARED %lu; %lu allocations\n",
           samples, t.evals, (unsigned long)ticks_with_work, t.raised, t.updated, t.cleared,
           n_alloc);
    pdm_engine_free(&e);
}

/* Usage counters on every power sample (issue 6): counting and staging them into the store
 * (the copy the next commit writes) allocate nothing. The store is opened and committed outside
 * the counted span: SQLite allocates there, on the commit path, not on the sample path. */
static void test_usage_path_does_not_allocate(void)
{
    char dir[] = "/tmp/pdm-test-noalloc-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    struct pdm_store *st = NULL;
    char err[256];
    CHECK_INT(pdm_store_open(&st, dir, err, sizeof(err)), 0);
    if (!st)
        return;
    CHECK_INT(pdm_store_usage_slots(st, 2), 0);
    struct pdm_usage u[2];
    memset(u, 0, sizeof(u));
    CHECK_INT(pdm_store_usage_load(st, 0, "a", &u[0].c), 0);
    CHECK_INT(pdm_store_usage_load(st, 1, "b", &u[1].c), 0);
    pdm_usage_init(&u[0], 500.0, 50.0, 2000, 10000);
    pdm_usage_init(&u[1], 0.5, 0, 0, 10000);

    n_alloc = n_free = 0;
    counting = 1;
    /* 10 minutes at 100 ms: power cycling every 60 s, a flag toggling every 7 s */
    for (int64_t now = 100; now <= 600000; now += 100) {
        pdm_usage_sample(&u[0], (now / 30000) % 2 ? 1000.0 : 0.0, now);
        pdm_usage_sample(&u[1], (now / 7000) % 2 ? 1.0 : 0.0, now);
        pdm_store_usage_put(st, 0, &u[0].c);
        pdm_store_usage_put(st, 1, &u[1].c);
    }
    counting = 0;
    CHECK_MSG(n_alloc == 0, "%lu heap allocations on the usage path", n_alloc);
    CHECK_MSG(n_free == 0, "%lu frees on the usage path", n_free);
    CHECK_INT(u[0].c.starts, 10);
    CHECK_INT(u[1].c.starts, 43);
    CHECK_NEAR((double)u[0].c.run_ms, 300000, 2000);
    CHECK_INT(pdm_store_commit(st), 0);
    pdm_store_close(st);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    CHECK_INT(system(cmd), 0);
}

int main(void)
{
    CHECK_INT(install_counter(), 0);
    test_counter_sees_allocations();
    test_scoring_path_does_not_allocate();
    test_usage_path_does_not_allocate();
    /* the allocator still counts after the long run (no hook was lost on the way) */
    test_counter_sees_allocations();
    return check_summary("test_noalloc");
}
