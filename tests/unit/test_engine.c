/* The scoring engine end to end: samples -> windows -> score -> alert, driven with synthetic
 * time (monotonic and wall clock are parameters, so nothing here sleeps). The config is built
 * by hand; the config loader is tested elsewhere. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "agent/config.h"
#include "check.h"
#include "models/engine.h"
#include "models/window.h"

enum { S_TEMP, S_VIB, S_POWER, N_SENSORS };

/* 2020-01-01T00:00:00Z; WALL_5Y is exactly 5 mean Gregorian years later:
 * 5 * 365.2425 * 86400 = 157784760 s. */
#define INSTALLED_S 1577836800LL
#define WALL_5Y_MS  ((INSTALLED_S + 157784760LL) * 1000)

static struct pdm_sensor_cfg sensors[N_SENSORS];
static struct pdm_asset_cfg assets[3];
static struct pdm_config cfg;

static void add_input(struct pdm_asset_cfg *a, const char *name, enum pdm_stat stat,
                      double window_s, double center, double scale, double weight, int32_t sensor)
{
    struct pdm_model *m = &a->model;
    struct pdm_model_input *in = &m->inputs[m->n_inputs];
    snprintf(in->name, sizeof(in->name), "%s", name);
    in->is_age = strcmp(name, "age") == 0;
    in->stat = stat;
    in->window_s = window_s;
    in->center = center;
    in->scale = scale;
    in->weight = weight;
    snprintf(a->inputs[m->n_inputs].input, sizeof(a->inputs[0].input), "%s", name);
    a->inputs[m->n_inputs].sensor = sensor;
    m->n_inputs++;
    a->n_inputs = m->n_inputs;
}

/* Three sensors: temperature and power read every second, vibration every 100 ms. */
static void reset_config(void)
{
    memset(&cfg, 0, sizeof(cfg));
    memset(sensors, 0, sizeof(sensors));
    memset(assets, 0, sizeof(assets));
    const char *names[] = {"comp_temp", "comp_vib", "comp_power"};
    const int periods[] = {1000, 100, 1000};
    for (int i = 0; i < N_SENSORS; i++) {
        snprintf(sensors[i].name, sizeof(sensors[i].name), "%s", names[i]);
        sensors[i].period_ms = periods[i];
        sensors[i].scale = 1.0;
    }
    snprintf(cfg.device_id, sizeof(cfg.device_id), "gw-test");
    cfg.sensors = sensors;
    cfg.n_sensors = N_SENSORS;
    cfg.assets = assets;
    cfg.n_assets = 0;
}

/* The compressor model used below:
 *   logit = -4 + 1.5 (T - 45)/10 + 1.0 (vib_rms - 2)/1 + 0.5 (P_max - 1000)/500 + 0.2 (age - 5)/5
 * with 2 s windows, evaluated every second, warning 0.5 / critical 0.8 / clear 0.4, hold 3. */
static struct pdm_asset_cfg *add_compressor(const char *name)
{
    struct pdm_asset_cfg *a = &assets[cfg.n_assets++];
    snprintf(a->name, sizeof(a->name), "%s", name);
    snprintf(a->model.id, sizeof(a->model.id), "compressor");
    a->model.version = 1;
    a->model.intercept = -4.0;
    a->model.warning = 0.5;
    a->model.critical = 0.8;
    a->model.clear = 0.4;
    a->model.hold = 3;
    a->model.eval_period_ms = 1000;
    a->installed_s = INSTALLED_S;
    add_input(a, "temperature", PDM_STAT_MEAN, 2, 45, 10, 1.5, S_TEMP);
    add_input(a, "vibration", PDM_STAT_RMS, 2, 2, 1, 1.0, S_VIB);
    add_input(a, "power", PDM_STAT_MAX, 2, 1000, 500, 0.5, S_POWER);
    add_input(a, "age", PDM_STAT_MEAN, 0, 5, 5, 0.2, -1);
    return a;
}

#define MAX_SEEN 256
struct seen {
    uint32_t asset;
    int64_t mono_ms, ts_ms;
    double p;
    uint32_t health;
    double x[PDM_MODEL_MAX_INPUTS];
    int has_alert;
    struct pdm_alert_event alert;
};
struct recorder {
    int64_t now; /* monotonic time of the current tick, set by the test */
    int n;
    struct seen s[MAX_SEEN];
};

static void record(void *ctx, const struct pdm_eval *ev)
{
    struct recorder *r = ctx;
    if (r->n >= MAX_SEEN)
        return;
    struct seen *s = &r->s[r->n++];
    s->asset = ev->asset;
    s->mono_ms = r->now;
    s->ts_ms = ev->ts_ms;
    s->p = ev->score->probability;
    s->health = ev->score->health;
    for (uint32_t i = 0; i < ev->score->n_inputs; i++)
        s->x[i] = ev->score->in[i].value;
    s->has_alert = ev->has_alert;
    s->alert = ev->alert;
    if (ev->has_alert && ev->alert.state == PDM_ALERT_RAISED)
        snprintf(ev->fsm->alert_id, sizeof(ev->fsm->alert_id), "%s-%d", cfg.assets[ev->asset].name,
                 r->n);
}

static int64_t tick(struct pdm_engine *e, struct recorder *r, int64_t now)
{
    r->now = now;
    return pdm_engine_tick(e, now, WALL_5Y_MS + now, record, r);
}

static void feed_all(struct pdm_engine *e, int64_t t, double temp, double vib, double power)
{
    pdm_engine_on_sample(e, S_TEMP, t, temp);
    pdm_engine_on_sample(e, S_VIB, t, vib);
    pdm_engine_on_sample(e, S_POWER, t, power);
}

/* ---- the window on its own ------------------------------------------------------------------ */

static void test_window(void)
{
    struct pdm_window w;
    double out = -1;
    CHECK_INT(pdm_window_init(&w, 8, 2000), 0);
    CHECK_INT(pdm_window_stat(&w, PDM_STAT_MEAN, 0, &out), 0);
    CHECK_NEAR(out, -1, 0); /* untouched when empty */

    pdm_window_push(&w, 1000, 10);
    pdm_window_push(&w, 2000, 20);
    pdm_window_push(&w, 3000, 30);
    /* now 3000, span 2000: samples with ts > 1000 -> 20, 30 (ts 1000 is exactly at the edge
     * and out) */
    CHECK_INT(pdm_window_stat(&w, PDM_STAT_MEAN, 3000, &out), 2);
    CHECK_NEAR(out, 25, 1e-12);
    CHECK_INT(pdm_window_stat(&w, PDM_STAT_RMS, 3000, &out), 2);
    CHECK_NEAR(out, sqrt((400.0 + 900.0) / 2.0), 1e-12); /* sqrt(650) = 25.495 */
    CHECK_INT(pdm_window_stat(&w, PDM_STAT_MAX, 3000, &out), 2);
    CHECK_NEAR(out, 30, 0);
    /* at 2999 the 1000 sample is still in: mean (10+20+30)/3 = 20 */
    CHECK_INT(pdm_window_stat(&w, PDM_STAT_MEAN, 2999, &out), 3);
    CHECK_NEAR(out, 20, 1e-12);
    /* later, older samples expire one by one */
    CHECK_INT(pdm_window_stat(&w, PDM_STAT_MEAN, 4000, &out), 1);
    CHECK_NEAR(out, 30, 0);
    out = -1;
    CHECK_INT(pdm_window_stat(&w, PDM_STAT_MAX, 5000, &out), 0);
    CHECK_NEAR(out, -1, 0);
    pdm_window_free(&w);

    /* a full ring overwrites the oldest: cap 4, six pushes -> 3, 4, 5, 6 remain */
    CHECK_INT(pdm_window_init(&w, 4, 1000), 0);
    for (int i = 1; i <= 6; i++)
        pdm_window_push(&w, i, (double)i);
    CHECK_INT(pdm_window_stat(&w, PDM_STAT_MEAN, 6, &out), 4);
    CHECK_NEAR(out, 4.5, 1e-12);
    CHECK_INT(pdm_window_stat(&w, PDM_STAT_MAX, 6, &out), 4);
    CHECK_NEAR(out, 6, 0);
    /* negative values: max of all-negative, rms ignores sign */
    for (int i = 0; i < 4; i++)
        pdm_window_push(&w, 10 + i, -3.0 - i); /* -3 -4 -5 -6 */
    CHECK_INT(pdm_window_stat(&w, PDM_STAT_MAX, 13, &out), 4);
    CHECK_NEAR(out, -3, 0);
    CHECK_INT(pdm_window_stat(&w, PDM_STAT_RMS, 13, &out), 4);
    CHECK_NEAR(out, sqrt((9.0 + 16 + 25 + 36) / 4), 1e-12);
    pdm_window_free(&w);
    CHECK_INT(pdm_window_init(&w, 0, 1000), -EINVAL);
}

/* ---- init: window sizes, feed index, refusals ----------------------------------------------- */

static void test_init(void)
{
    reset_config();
    struct pdm_asset_cfg *a = add_compressor("c1");
    a->model.inputs[0].window_s = 10; /* 10 s of a 1 s sensor: ceil(10) + 2 = 12 */
    a->model.inputs[1].window_s = 5;  /* 5 s of a 100 ms sensor: 50 + 2 = 52 */
    a->model.inputs[2].window_s = 1;  /* 1 + 2 = 3 -> the minimum, 4 */
    struct pdm_asset_cfg *b = add_compressor("c2");
    b->model.inputs[1].window_s = 1.05; /* ceil(10.5) + 2 = 13, span 1050 ms */
    b->model.eval_period_ms = 300;
    /* a third asset reads vibration twice (rms and peak) */
    struct pdm_asset_cfg *c = &assets[cfg.n_assets++];
    snprintf(c->name, sizeof(c->name), "fan");
    c->model.intercept = 0;
    c->model.warning = 0.5;
    c->model.critical = 0.8;
    c->model.clear = 0.4;
    c->model.hold = 1;
    c->model.eval_period_ms = 500;
    add_input(c, "vibration", PDM_STAT_RMS, 1, 0, 1, 1, S_VIB);
    add_input(c, "vibration_peak", PDM_STAT_MAX, 1, 0, 1, 1, S_VIB);

    struct pdm_engine e;
    CHECK_INT(pdm_engine_init(&e, cfg.assets, cfg.n_assets, cfg.sensors, cfg.n_sensors, 5000), 0);
    CHECK_INT(e.n_assets, 3);
    CHECK_INT(e.assets[0].in[0].win.cap, 12);
    CHECK_INT(e.assets[0].in[0].win.span_ms, 10000);
    CHECK_INT(e.assets[0].in[1].win.cap, 52);
    CHECK_INT(e.assets[0].in[2].win.cap, 4);
    CHECK_INT(e.assets[0].in[3].sensor, -1); /* age: no window */
    CHECK_INT(e.assets[0].in[3].win.cap, 0);
    CHECK_INT(e.assets[1].in[1].win.cap, 13);
    CHECK_INT(e.assets[1].in[1].win.span_ms, 1050);
    CHECK_NEAR(e.assets[0].policy.warning, 0.5, 0);
    CHECK_INT(e.assets[0].policy.hold, 3);
    CHECK_INT(e.assets[0].next_eval_mono_ms, 6000);
    CHECK_INT(e.assets[1].next_eval_mono_ms, 5300);
    CHECK_INT(e.assets[2].next_eval_mono_ms, 5500);

    /* feed index: temp -> c1, c2; vib -> c1, c2, fan x2; power -> c1, c2 */
    CHECK_INT(e.feed_start[S_TEMP + 1] - e.feed_start[S_TEMP], 2);
    CHECK_INT(e.feed_start[S_VIB + 1] - e.feed_start[S_VIB], 4);
    CHECK_INT(e.feed_start[S_POWER + 1] - e.feed_start[S_POWER], 2);
    pdm_engine_on_sample(&e, S_VIB, 5000, 7.0);
    pdm_engine_on_sample(&e, S_VIB, 5100, 9.0);
    pdm_engine_on_sample(&e, 99, 5100, 9.0); /* unknown sensor: ignored */
    CHECK_INT(e.assets[0].in[1].win.count, 2);
    CHECK_INT(e.assets[1].in[1].win.count, 2);
    CHECK_INT(e.assets[2].in[0].win.count, 2);
    CHECK_INT(e.assets[2].in[1].win.count, 2);
    CHECK_INT(e.assets[0].in[0].win.count, 0);
    CHECK_INT(e.assets[0].in[2].win.count, 0);

    /* the fan evaluates at 5500 on vibration alone: rms sqrt((49+81)/2), max 9 */
    struct recorder r = {0};
    CHECK_INT(tick(&e, &r, 5300), 5500); /* c2 due but stale (no temperature): next 5600 */
    CHECK_INT(e.assets[1].skipped_stale, 1);
    CHECK_INT(tick(&e, &r, 5500), 5600);
    CHECK_INT(r.n, 1);
    CHECK_INT(r.s[0].asset, 2);
    CHECK_NEAR(r.s[0].x[0], sqrt(65.0), 1e-12);
    CHECK_NEAR(r.s[0].x[1], 9.0, 0);
    pdm_engine_free(&e);
    CHECK(e.assets == NULL);

    /* window cap limit: 999998 s of a 1 s sensor is 1,000,000 slots (16 MB): accepted;
     * one more second is refused before anything stays allocated */
    reset_config();
    a = add_compressor("big");
    a->model.inputs[0].window_s = 999998;
    CHECK_INT(pdm_engine_init(&e, cfg.assets, cfg.n_assets, cfg.sensors, cfg.n_sensors, 0), 0);
    CHECK_INT(e.assets[0].in[0].win.cap, 1000000);
    pdm_engine_free(&e);
    a->model.inputs[0].window_s = 999999;
    CHECK_INT(pdm_engine_init(&e, cfg.assets, cfg.n_assets, cfg.sensors, cfg.n_sensors, 0), -E2BIG);
    CHECK(e.assets == NULL && e.feeds == NULL && e.feed_start == NULL);
    /* a day of a 10 ms sensor: 8,640,002 slots */
    a->model.inputs[0].window_s = 86400;
    sensors[S_TEMP].period_ms = 10;
    CHECK_INT(pdm_engine_init(&e, cfg.assets, cfg.n_assets, cfg.sensors, cfg.n_sensors, 0), -E2BIG);

    /* a windowed input without a sensor, and a model/asset input count mismatch */
    reset_config();
    a = add_compressor("bad");
    a->inputs[1].sensor = -1;
    CHECK_INT(pdm_engine_init(&e, cfg.assets, cfg.n_assets, cfg.sensors, cfg.n_sensors, 0),
              -EINVAL);
    a->inputs[1].sensor = N_SENSORS;
    CHECK_INT(pdm_engine_init(&e, cfg.assets, cfg.n_assets, cfg.sensors, cfg.n_sensors, 0),
              -EINVAL);
    a->inputs[1].sensor = S_VIB;
    a->n_inputs = 3;
    CHECK_INT(pdm_engine_init(&e, cfg.assets, cfg.n_assets, cfg.sensors, cfg.n_sensors, 0),
              -EINVAL);
    CHECK(e.assets == NULL);

    /* no assets: nothing to do, the caller polls again in a second */
    reset_config();
    CHECK_INT(pdm_engine_init(&e, cfg.assets, cfg.n_assets, cfg.sensors, cfg.n_sensors, 0), 0);
    pdm_engine_on_sample(&e, S_TEMP, 10, 1.0);
    CHECK_INT(tick(&e, &r, 5000), 6000);
    pdm_engine_free(&e);
}

/* ---- schedule ------------------------------------------------------------------------------- */

static void test_schedule(void)
{
    reset_config();
    add_compressor("c1");
    struct pdm_engine e;
    struct recorder r = {0};
    CHECK_INT(pdm_engine_init(&e, cfg.assets, cfg.n_assets, cfg.sensors, cfg.n_sensors, 1000), 0);

    int64_t times[] = {1500, 2000, 3500, 3600, 7700, 8000, 8999, 9000};
    int64_t want_next[] = {2000, 3000, 4000, 4000, 8000, 9000, 9000, 10000};
    int want_evals[] = {0, 1, 2, 2, 3, 4, 4, 5};
    for (size_t i = 0; i < sizeof(times) / sizeof(times[0]); i++) {
        feed_all(&e, times[i], 45, 2, 1000);
        int64_t next = tick(&e, &r, times[i]);
        /* 3500: due 3000 was late by 500 ms; the next stays on the grid at 4000 (no drift).
         * 7700: four periods late; one evaluation, then the next slot after now (no burst). */
        CHECK_MSG(next == want_next[i], "tick at %lld returned %lld, expected %lld",
                  (long long)times[i], (long long)next, (long long)want_next[i]);
        CHECK_MSG(r.n == want_evals[i], "after tick at %lld: %d evaluations, expected %d",
                  (long long)times[i], r.n, want_evals[i]);
    }
    CHECK_INT(e.assets[0].evals, 5);
    CHECK_INT(r.s[1].mono_ms, 3500);
    CHECK_INT(r.s[1].ts_ms, WALL_5Y_MS + 3500); /* the score carries the wall clock */
    CHECK_INT(e.assets[0].last_ts_ms, WALL_5Y_MS + 9000);
    pdm_engine_free(&e);

    /* two assets: the earliest due time wins */
    reset_config();
    add_compressor("c1");
    add_compressor("c2")->model.eval_period_ms = 300;
    CHECK_INT(pdm_engine_init(&e, cfg.assets, cfg.n_assets, cfg.sensors, cfg.n_sensors, 1000), 0);
    r.n = 0;
    CHECK_INT(tick(&e, &r, 1000), 1300);
    feed_all(&e, 1300, 45, 2, 1000);
    CHECK_INT(tick(&e, &r, 1300), 1600);
    CHECK_INT(tick(&e, &r, 1900), 2000); /* c1 at 2000, c2 at 2200 */
    CHECK_INT(r.n, 2);
    CHECK_INT(r.s[0].asset, 1);
    pdm_engine_free(&e);
}

/* ---- stale inputs and window expiry --------------------------------------------------------- */

static void test_stale_and_expiry(void)
{
    reset_config();
    add_compressor("c1");
    /* an asset scored on age alone never lacks data */
    struct pdm_asset_cfg *old = &assets[cfg.n_assets++];
    snprintf(old->name, sizeof(old->name), "old");
    old->model.intercept = 0;
    old->model.warning = 0.5;
    old->model.critical = 0.8;
    old->model.clear = 0.4;
    old->model.hold = 100;
    old->model.eval_period_ms = 1000;
    old->installed_s = INSTALLED_S;
    add_input(old, "age", PDM_STAT_MEAN, 0, 0, 1, 1, -1);

    struct pdm_engine e;
    struct recorder r = {0};
    CHECK_INT(pdm_engine_init(&e, cfg.assets, cfg.n_assets, cfg.sensors, cfg.n_sensors, 0), 0);

    CHECK_INT(tick(&e, &r, 1000), 2000); /* no samples at all */
    CHECK_INT(e.assets[0].evals, 0);
    CHECK_INT(e.assets[0].skipped_stale, 1);
    CHECK_INT(r.n, 1); /* only "old" */
    CHECK_INT(r.s[0].asset, 1);
    CHECK_NEAR(r.s[0].x[0], 5.0, 1e-7); /* 5 years and 1 s after installation */
    CHECK_NEAR(r.s[0].x[0], 5.0 + 1.0 / 31556952.0, 1e-15);

    /* temperature and vibration but no power yet: still no score for c1 */
    pdm_engine_on_sample(&e, S_TEMP, 1500, 100);
    pdm_engine_on_sample(&e, S_VIB, 1500, 2);
    tick(&e, &r, 2000);
    CHECK_INT(e.assets[0].evals, 0);
    CHECK_INT(e.assets[0].skipped_stale, 2);
    CHECK_INT(e.assets[0].fsm.n_warn + e.assets[0].fsm.n_crit, 0); /* no alert step */

    pdm_engine_on_sample(&e, S_POWER, 2500, 1000);
    pdm_engine_on_sample(&e, S_TEMP, 2500, 40);
    pdm_engine_on_sample(&e, S_TEMP, 3000, 40);
    r.n = 0;
    tick(&e, &r, 3000);
    CHECK_INT(e.assets[0].evals, 1);
    CHECK_INT(r.n, 2);
    /* 2 s window at 3000 keeps ts > 1000: temperatures 100, 40, 40 -> mean 60 */
    CHECK_NEAR(r.s[0].x[0], 60.0, 1e-12);

    pdm_engine_on_sample(&e, S_VIB, 3900, 2);
    r.n = 0;
    tick(&e, &r, 4000);
    /* at 4000 the 100 read at 1500 has dropped out: mean of 40, 40 */
    CHECK_INT(r.n, 2);
    CHECK_NEAR(r.s[0].x[0], 40.0, 1e-12);
    CHECK_NEAR(r.s[0].x[2], 1000.0, 0);

    /* power read last at 2500: its window (3000, 5000] is empty at 5000, so c1 goes stale
     * even though the other sensors keep reading */
    pdm_engine_on_sample(&e, S_TEMP, 4500, 40);
    pdm_engine_on_sample(&e, S_VIB, 4500, 2);
    r.n = 0;
    tick(&e, &r, 5000);
    CHECK_INT(e.assets[0].evals, 2);
    CHECK_INT(e.assets[0].skipped_stale, 3);
    CHECK_INT(r.n, 1);
    CHECK_INT(r.s[0].asset, 1);
    pdm_engine_free(&e);
}

/* ---- a degrading compressor ----------------------------------------------------------------- */

static void test_degradation(void)
{
    reset_config();
    add_compressor("c1");
    struct pdm_engine e;
    static struct recorder r;
    memset(&r, 0, sizeof(r));
    CHECK_INT(pdm_engine_init(&e, cfg.assets, cfg.n_assets, cfg.sensors, cfg.n_sensors, 0), 0);

    /* Phases by sample time (temperature and power every 1 s, vibration every 100 ms):
     *   A  0..9.9 s    healthy   T 45, vib 2,   power 1000  logit -4           P 0.0179862
     *   B 10..19.9 s   wearing   T 55, vib 4.5, power 1500  -4+1.5+2.5+0.5=0.5 P 0.6224593
     *   C 20..29.9 s   failing   T 65, vib 5,   power 1500  -4+3+3+0.5=2.5     P 0.9241418
     *   D 30 s on      repaired  as A
     * Age is 5 years plus under a minute: contribution 0.04 * 40 s / 31556952 s < 6e-8. */
    int64_t end = 40000;
    for (int64_t t = 0; t <= end; t += 100) {
        double temp = 45, vib = 2, power = 1000;
        if (t >= 10000 && t < 20000) {
            temp = 55, vib = 4.5, power = 1500;
        } else if (t >= 20000 && t < 30000) {
            temp = 65, vib = 5, power = 1500;
        }
        pdm_engine_on_sample(&e, S_VIB, t, vib);
        if (t % 1000 == 0) {
            pdm_engine_on_sample(&e, S_TEMP, t, temp);
            pdm_engine_on_sample(&e, S_POWER, t, power);
        }
        int64_t next = tick(&e, &r, t);
        CHECK_MSG(next == (t / 1000 + 1) * 1000, "at %lld next due %lld", (long long)t,
                  (long long)next);
    }
    CHECK_INT(r.n, 40); /* 1 s .. 40 s */
    CHECK_INT(e.assets[0].skipped_stale, 0);

    const struct seen *ev[8];
    int n_ev = 0;
    for (int i = 0; i < r.n; i++) {
        CHECK_INT(r.s[i].mono_ms, (i + 1) * 1000);
        if (r.s[i].has_alert && n_ev < 8)
            ev[n_ev++] = &r.s[i];
    }
    CHECK_INT(n_ev, 3);
    if (n_ev != 3)
        return;

    /* Healthy: P = 1/(1+e^4) = 0.01798620996209156, health round(98.2) = 98 */
    CHECK_NEAR(r.s[4].p, 0.01798620996209156, 1e-8);
    CHECK_INT(r.s[4].health, 98);

    /* The transition evaluations at 10 s and 11 s mix phases in the 2 s windows (at 11 s
     * vib rms = sqrt((9*4 + 11*20.25)/20) = 3.597, logit -0.403, P 0.40 < warning), so the
     * hold count starts at 12 s and WARNING is raised at the third pure evaluation, 14 s. */
    CHECK_INT(ev[0]->mono_ms, 14000);
    CHECK_INT(ev[0]->alert.state, PDM_ALERT_RAISED);
    CHECK_INT(ev[0]->alert.severity, PDM_SEV_WARNING);
    CHECK_INT(ev[0]->alert.previous, PDM_SEV_NONE);
    CHECK_NEAR(ev[0]->p, 0.6224593312018546, 1e-8);
    CHECK_INT(ev[0]->health, 38); /* 37.75 -> 38 */
    CHECK_NEAR(ev[0]->x[0], 55.0, 1e-12);
    CHECK_NEAR(ev[0]->x[1], 4.5, 1e-12);
    CHECK_NEAR(ev[0]->x[2], 1500.0, 0);
    CHECK_NEAR(ev[0]->x[3], 5.0, 1e-6);
    CHECK_NEAR(r.s[11].p, 0.6224593312018546, 1e-8); /* at 12 s: first pure B */
    CHECK_MSG(r.s[10].p > 0.39 && r.s[10].p < 0.41, "P at 11 s = %g", r.s[10].p);

    /* At 20 s (T mean 60, vib rms sqrt(409.75/20) = 4.526) logit 1.276, P 0.78 < critical;
     * at 21 s P 0.907 starts the count; CRITICAL at 23 s. */
    CHECK_INT(ev[1]->mono_ms, 23000);
    CHECK_INT(ev[1]->alert.state, PDM_ALERT_UPDATED);
    CHECK_INT(ev[1]->alert.severity, PDM_SEV_CRITICAL);
    CHECK_INT(ev[1]->alert.previous, PDM_SEV_WARNING);
    CHECK_NEAR(ev[1]->p, 0.9241418199787566, 1e-8);
    CHECK_INT(ev[1]->health, 8); /* 7.59 -> 8 */
    CHECK_MSG(r.s[19].p > 0.77 && r.s[19].p < 0.8, "P at 20 s = %g", r.s[19].p);

    /* Repair at 30 s: at 30 s the windows still hold most of phase C (P 0.71, between clear
     * and critical, one de-escalation count); at 31 s T is 45, power max 1000 and vib rms
     * sqrt((9*25 + 11*4)/20) = sqrt(13.45), so logit = sqrt(13.45) - 6 = -2.33258 and
     * P = 0.08846073931146257 < clear: CLEARED straight from CRITICAL. */
    CHECK_INT(ev[2]->mono_ms, 31000);
    CHECK_INT(ev[2]->alert.state, PDM_ALERT_CLEARED);
    CHECK_INT(ev[2]->alert.severity, PDM_SEV_CRITICAL);
    CHECK_NEAR(ev[2]->p, 0.08846073931146257, 1e-8);
    CHECK_NEAR(ev[2]->x[1], sqrt(13.45), 1e-12);
    CHECK_NEAR(r.s[39].p, 0.01798620996209156, 1e-8);
    CHECK_INT(e.assets[0].fsm.active, PDM_SEV_NONE);
    CHECK_STR(e.assets[0].fsm.alert_id, "c1-14"); /* set by the callback on RAISED, kept */
    CHECK_NEAR(e.assets[0].last.probability, r.s[39].p, 0);
    pdm_engine_free(&e);
}

/* ---- derived inputs: combined from the window statistics of base inputs at each evaluation -- */

static void test_derived(void)
{
    reset_config();
    struct pdm_asset_cfg *a = &assets[cfg.n_assets++];
    snprintf(a->name, sizeof(a->name), "mill");
    a->model.intercept = -1.0;
    a->model.warning = 0.5;
    a->model.critical = 0.8;
    a->model.clear = 0.4;
    a->model.hold = 1;
    a->model.eval_period_ms = 1000;
    a->installed_s = INSTALLED_S;
    add_input(a, "power_sq", PDM_STAT_MEAN, 0, 4e8, 1e8, 0.5, -1); /* square(power) */
    add_input(a, "torque", PDM_STAT_MEAN, 2, 40, 10, 1.0, S_TEMP);
    add_input(a, "speed", PDM_STAT_MAX, 2, 1000, 100, -0.5, S_POWER);
    add_input(a, "power", PDM_STAT_MEAN, 0, 40000, 5000, 1.0, -1); /* torque * speed */
    add_input(a, "wear_age", PDM_STAT_MEAN, 0, 0, 1, 0.1, -1);     /* age - torque */
    add_input(a, "age", PDM_STAT_MEAN, 0, 5, 5, 0.2, -1);
    struct pdm_model *m = &a->model;
    m->inputs[0].derive = PDM_DERIVE_PRODUCT;
    m->inputs[0].arg[0] = m->inputs[0].arg[1] = 3;
    m->inputs[3].derive = PDM_DERIVE_PRODUCT;
    m->inputs[3].arg[0] = 1;
    m->inputs[3].arg[1] = 2;
    m->inputs[4].derive = PDM_DERIVE_DIFF;
    m->inputs[4].arg[0] = 5;
    m->inputs[4].arg[1] = 1;
    int bad;
    char err[128];
    CHECK_INT(pdm_model_link(m, &bad, err, sizeof(err)), 0);

    struct pdm_engine e;
    struct recorder r = {0};
    CHECK_INT(pdm_engine_init(&e, cfg.assets, cfg.n_assets, cfg.sensors, cfg.n_sensors, 0), 0);
    /* derived inputs and age have no window and no sensor feeding them */
    CHECK_INT(e.assets[0].in[0].sensor, -1);
    CHECK_INT(e.assets[0].in[0].win.cap, 0);
    CHECK_INT(e.assets[0].in[3].sensor, -1);
    CHECK_INT(e.feed_start[S_TEMP + 1] - e.feed_start[S_TEMP], 1);

    /* torque mean(40, 42) = 41, speed max(1000, 1100) = 1100: power = 41 * 1100 = 45100, not the
     * mean of the products (42900) */
    pdm_engine_on_sample(&e, S_TEMP, 500, 40);
    pdm_engine_on_sample(&e, S_POWER, 500, 1000);
    pdm_engine_on_sample(&e, S_TEMP, 900, 42);
    pdm_engine_on_sample(&e, S_POWER, 900, 1100);
    tick(&e, &r, 1000);
    CHECK_INT(r.n, 1);
    CHECK_NEAR(r.s[0].x[1], 41, 0);
    CHECK_NEAR(r.s[0].x[2], 1100, 0);
    CHECK_NEAR(r.s[0].x[3], 45100, 0);
    CHECK_NEAR(r.s[0].x[0], 45100.0 * 45100.0, 0);
    double age = (WALL_5Y_MS + 1000) / 1000.0;
    age = (age - INSTALLED_S) / (365.2425 * 86400.0);
    CHECK_NEAR(r.s[0].x[5], age, 1e-12);
    CHECK_NEAR(r.s[0].x[4], age - 41, 1e-12);
    /* the engine's score is pdm_model_score of the base statistics, bit for bit */
    double x[] = {0, 41, 1100, 0, 0, r.s[0].x[5]};
    struct pdm_score s;
    pdm_model_score(m, x, &s);
    CHECK(s.probability == r.s[0].p);

    /* a base input going silent stops the asset's scoring, derived inputs included */
    tick(&e, &r, 4000);
    CHECK_INT(r.n, 1);
    CHECK_INT(e.assets[0].skipped_stale, 1);
    pdm_engine_free(&e);
}

int main(void)
{
    test_window();
    test_init();
    test_schedule();
    test_stale_and_expiry();
    test_degradation();
    test_derived();
    return check_summary("test_engine");
}
