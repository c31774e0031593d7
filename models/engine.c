/* The scoring engine (interface and guarantees in engine.h).
 *
 * Memory, all allocated by pdm_engine_init() and nothing afterwards:
 *   assets:     n_assets * sizeof(struct pdm_engine_asset)  (about 2.5 KB each on 64-bit)
 *   windows:    16 bytes per slot, cap = ceil(window_s * 1000 / period_ms) + 2 slots per input,
 *               e.g. a 60 s mean over a 100 ms sensor is 602 slots = 9.6 KB
 *   feed index: 4 * (n_sensors + 1) + 8 * (number of windowed inputs) bytes
 * Window caps above PDM_ENGINE_MAX_CAP are refused: a typo in window_s or period_ms must not
 * silently eat a gateway's RAM. */
#include "engine.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "asset_config.h"
#include "drivers/bus_config.h"
#include "lib/log.h"

#define PDM_ENGINE_MAX_CAP 1000000u             /* samples per window (16 MB) */
#define PDM_ENGINE_MIN_CAP 4u                   /* samples per window */
#define SECONDS_PER_YEAR   (365.2425 * 86400.0) /* mean Gregorian year */
#define NO_ASSET_WAIT_MS   1000                 /* poll timeout when there is nothing to score */

/* Slots for one input: enough for window_s of samples at the sensor's period, plus two for
 * jitter of the bus thread (a read landing just inside both ends of the span). */
static double window_slots(const struct pdm_model_input *in, const struct pdm_sensor_cfg *s)
{
    return ceil(in->window_s * 1000.0 / s->period_ms) + 2.0;
}

static int window_cap(const struct pdm_asset_cfg *a, const struct pdm_model_input *in,
                      const struct pdm_sensor_cfg *s, uint32_t *cap)
{
    if (!(in->window_s > 0.0) || s->period_ms <= 0) {
        pdm_err("asset %s: input %s: window_s %g s / sensor %s period %d ms is not usable; "
                "the engine does not start",
                a->name, in->name, in->window_s, s->name, s->period_ms);
        return -EINVAL;
    }
    double slots = window_slots(in, s);
    if (slots > PDM_ENGINE_MAX_CAP) {
        pdm_err("asset %s: input %s: a %g s window of sensor %s (one read every %d ms) needs "
                "%.0f samples, over the limit of %u; shorten window_s in the model or lengthen "
                "period_ms; the engine does not start",
                a->name, in->name, in->window_s, s->name, s->period_ms, slots, PDM_ENGINE_MAX_CAP);
        return -E2BIG;
    }
    *cap = slots < PDM_ENGINE_MIN_CAP ? PDM_ENGINE_MIN_CAP : (uint32_t)slots;
    return 0;
}

static int init_asset(struct pdm_engine_asset *ea, const struct pdm_sensor_cfg *sensors,
                      uint32_t n_sensors, const struct pdm_asset_cfg *a, int64_t now_mono_ms)
{
    const struct pdm_model *m = &a->model;

    ea->cfg = a;
    for (uint32_t k = 0; k < PDM_MODEL_MAX_INPUTS; k++)
        ea->in[k].sensor = -1;
    if (m->n_inputs > PDM_MODEL_MAX_INPUTS || a->n_inputs != m->n_inputs) {
        pdm_err("asset %s: %u inputs mapped to sensors but model %s has %u; the engine does not "
                "start",
                a->name, a->n_inputs, m->id, m->n_inputs);
        return -EINVAL;
    }
    if (m->eval_period_ms <= 0) {
        pdm_err("asset %s: model %s: eval_period_ms %d is not usable; the engine does not start",
                a->name, m->id, m->eval_period_ms);
        return -EINVAL;
    }
    for (uint32_t k = 0; k < m->n_inputs; k++) {
        const struct pdm_model_input *in = &m->inputs[k];
        int32_t s = a->inputs[k].sensor;
        if (!pdm_model_input_has_sensor(in))
            continue; /* computed from installed_s or from other inputs; no window */
        if (s < 0 || (uint32_t)s >= n_sensors) {
            pdm_err("asset %s: input %s has no valid sensor (index %d of %u); the engine does not "
                    "start",
                    a->name, in->name, (int)s, n_sensors);
            return -EINVAL;
        }
        uint32_t cap;
        int rc = window_cap(a, in, &sensors[s], &cap);
        if (rc != 0)
            return rc;
        rc = pdm_window_init(&ea->in[k].win, cap, llround(in->window_s * 1000.0));
        if (rc != 0)
            return rc;
        ea->in[k].sensor = s;
    }
    ea->policy.warning = m->warning;
    ea->policy.critical = m->critical;
    ea->policy.clear = m->clear;
    ea->policy.hold = m->hold;
    pdm_alert_fsm_init(&ea->fsm);
    ea->next_eval_mono_ms = now_mono_ms + m->eval_period_ms;
    return 0;
}

/* Flattens sensor -> windows into feed_start/feeds (a CSR layout): the windows fed by sensor s
 * are feeds[feed_start[s] .. feed_start[s + 1]). */
static int build_feeds(struct pdm_engine *e)
{
    uint32_t ns = e->n_sensors;
    uint32_t total = 0;

    e->feed_start = calloc((size_t)ns + 1, sizeof(*e->feed_start));
    if (!e->feed_start)
        return -ENOMEM;
    for (uint32_t i = 0; i < e->n_assets; i++) {
        for (uint32_t k = 0; k < PDM_MODEL_MAX_INPUTS; k++) {
            int32_t s = e->assets[i].in[k].sensor;
            if (s >= 0) {
                e->feed_start[s + 1]++;
                total++;
            }
        }
    }
    for (uint32_t s = 0; s < ns; s++)
        e->feed_start[s + 1] += e->feed_start[s];
    if (total == 0)
        return 0;
    e->feeds = calloc(total, sizeof(*e->feeds));
    if (!e->feeds)
        return -ENOMEM;

    /* Second pass fills each sensor's slice in asset/input order; fill[] borrows the counts of
     * feed_start shifted by one, restored afterwards. */
    for (uint32_t i = 0; i < e->n_assets; i++) {
        for (uint32_t k = 0; k < PDM_MODEL_MAX_INPUTS; k++) {
            int32_t s = e->assets[i].in[k].sensor;
            if (s >= 0)
                e->feeds[e->feed_start[s]++] = &e->assets[i].in[k].win;
        }
    }
    for (uint32_t s = ns; s > 0; s--)
        e->feed_start[s] = e->feed_start[s - 1];
    e->feed_start[0] = 0;
    return 0;
}

int pdm_engine_init(struct pdm_engine *e, const struct pdm_asset_cfg *assets, uint32_t n_assets,
                    const struct pdm_sensor_cfg *sensors, uint32_t n_sensors, int64_t now_mono_ms)
{
    int rc = 0;

    memset(e, 0, sizeof(*e));
    e->sensors = sensors;
    e->n_sensors = n_sensors;
    if (n_assets > 0) {
        e->assets = calloc(n_assets, sizeof(*e->assets));
        if (!e->assets)
            return -ENOMEM;
        e->n_assets = n_assets;
    }
    for (uint32_t i = 0; i < e->n_assets && rc == 0; i++)
        rc = init_asset(&e->assets[i], sensors, n_sensors, &assets[i], now_mono_ms);
    if (rc == 0)
        rc = build_feeds(e);
    if (rc != 0)
        pdm_engine_free(e);
    return rc;
}

void pdm_engine_free(struct pdm_engine *e)
{
    for (uint32_t i = 0; i < e->n_assets; i++) {
        for (uint32_t k = 0; k < PDM_MODEL_MAX_INPUTS; k++)
            pdm_window_free(&e->assets[i].in[k].win);
    }
    free(e->assets);
    free(e->feed_start);
    free(e->feeds);
    e->assets = NULL;
    e->feed_start = NULL;
    e->feeds = NULL;
    e->n_assets = 0;
}

void pdm_engine_on_sample(struct pdm_engine *e, uint32_t sensor, int64_t mono_ms, double value)
{
    if (!e->feed_start || sensor >= e->n_sensors)
        return;
    for (uint32_t i = e->feed_start[sensor]; i < e->feed_start[sensor + 1]; i++)
        pdm_window_push(e->feeds[i], mono_ms, value);
}

/* Scores one asset if every windowed input has data. Returns 1 when it evaluated. */
static int evaluate(struct pdm_engine *e, uint32_t idx, int64_t now_mono_ms, int64_t now_wall_ms,
                    pdm_eval_cb cb, void *ctx)
{
    struct pdm_engine_asset *ea = &e->assets[idx];
    const struct pdm_model *m = &ea->cfg->model;
    double x[PDM_MODEL_MAX_INPUTS];

    for (uint32_t k = 0; k < m->n_inputs; k++) {
        if (m->inputs[k].derive != PDM_DERIVE_NONE) {
            x[k] = 0.0; /* pdm_model_score derives it from the window statistics of the others */
        } else if (m->inputs[k].is_age && ea->cfg->age_from_run_hours) {
            x[k] = ea->run_years; /* kept current by the agent's usage counters */
        } else if (m->inputs[k].is_age) {
            x[k] = ((double)now_wall_ms / 1000.0 - (double)ea->cfg->installed_s) / SECONDS_PER_YEAR;
        } else if (pdm_window_stat(&ea->in[k].win, m->inputs[k].stat, now_mono_ms, &x[k]) == 0) {
            /* A silent sensor must not be scored as if it read zero: no score, no alert change;
             * the bus layer reports the sensor itself. */
            ea->skipped_stale++;
            return 0;
        }
    }

    struct pdm_eval ev;
    memset(&ev, 0, sizeof(ev));
    pdm_model_score(m, x, &ea->last);
    ea->last_ts_ms = now_wall_ms;
    ea->evals++;
    ev.asset = idx;
    ev.ts_ms = now_wall_ms;
    ev.score = &ea->last;
    ev.fsm = &ea->fsm;
    ev.has_alert = pdm_alert_step(&ea->fsm, &ea->policy, ea->last.probability, &ev.alert);
    if (cb)
        cb(ctx, &ev);
    return 1;
}

int64_t pdm_engine_tick(struct pdm_engine *e, int64_t now_mono_ms, int64_t now_wall_ms,
                        pdm_eval_cb cb, void *ctx)
{
    int64_t earliest = INT64_MAX;

    if (e->n_assets == 0)
        return now_mono_ms + NO_ASSET_WAIT_MS;
    for (uint32_t i = 0; i < e->n_assets; i++) {
        struct pdm_engine_asset *ea = &e->assets[i];
        if (now_mono_ms >= ea->next_eval_mono_ms) {
            int64_t period = ea->cfg->model.eval_period_ms;
            evaluate(e, i, now_mono_ms, now_wall_ms, cb, ctx);
            /* Absolute schedule: due times stay on the grid set at init, so the period does not
             * drift with tick latency. After a stall (more than a period late), jump to the first
             * slot after now: one evaluation, not a burst of catch-up scores on old data. */
            int64_t next = ea->next_eval_mono_ms + period;
            if (next <= now_mono_ms)
                next += ((now_mono_ms - next) / period + 1) * period;
            ea->next_eval_mono_ms = next;
        }
        if (ea->next_eval_mono_ms < earliest)
            earliest = ea->next_eval_mono_ms;
    }
    return earliest;
}

/* ---- model swap (over-the-air model updates, agent/ota.c) -------------------------------------
 *
 * Everything that can fail or allocate happens in prepare; commit only moves, frees and copies.
 * Neither runs on the sample -> score path: the agent calls them while handling a command. */

/* Sensor feeding slot k of asset i once sw and the earlier pending swaps are committed. */
static int32_t slot_sensor(const struct pdm_engine *e, const struct pdm_engine_swap *sw,
                           const struct pdm_engine_swap *earlier, size_t n_earlier, uint32_t i,
                           uint32_t k)
{
    if (i == sw->asset)
        return sw->sensor[k];
    for (size_t j = n_earlier; j-- > 0;) /* the latest pending swap of asset i wins */
        if (earlier[j].asset == i)
            return earlier[j].sensor[k];
    return e->assets[i].in[k].sensor;
}

int pdm_engine_swap_prepare(const struct pdm_engine *e, uint32_t asset, const struct pdm_model *m,
                            const int32_t *sensor, const struct pdm_engine_swap *earlier,
                            size_t n_earlier, struct pdm_engine_swap *sw, char *err, size_t errlen)
{
    memset(sw, 0, sizeof(*sw));
    sw->asset = asset;
    for (uint32_t k = 0; k < PDM_MODEL_MAX_INPUTS; k++) {
        sw->keep[k] = -1;
        sw->sensor[k] = -1;
    }
    if (asset >= e->n_assets || m->n_inputs > PDM_MODEL_MAX_INPUTS || m->eval_period_ms <= 0) {
        snprintf(err, errlen, "the model or the asset index is not usable");
        return -EINVAL;
    }
    const struct pdm_engine_asset *ea = &e->assets[asset];
    const struct pdm_model *old = &ea->cfg->model;
    sw->model = *m;
    int rc = 0;
    for (uint32_t k = 0; k < m->n_inputs && rc == 0; k++) {
        const struct pdm_model_input *in = &m->inputs[k];
        if (!pdm_model_input_has_sensor(in))
            continue;
        int32_t s = sensor[k];
        if (s < 0 || (uint32_t)s >= e->n_sensors) {
            snprintf(err, errlen, "input %s has no sensor", in->name);
            rc = -EINVAL;
            break;
        }
        sw->sensor[k] = s;
        /* Same name, sensor and window length: the samples already held are exactly what a
         * fresh window would collect, so the window moves over. The statistic is taken at
         * evaluation from the raw samples, so a changed stat does not need new ones. */
        for (uint32_t j = 0; j < old->n_inputs; j++) {
            if (pdm_model_input_has_sensor(&old->inputs[j]) && ea->in[j].sensor == s &&
                strcmp(old->inputs[j].name, in->name) == 0 &&
                old->inputs[j].window_s == in->window_s) {
                sw->keep[k] = (int)j;
                break;
            }
        }
        if (sw->keep[k] >= 0)
            continue;
        const struct pdm_sensor_cfg *sc = &e->sensors[s];
        double slots = sc->period_ms > 0 && in->window_s > 0 ? window_slots(in, sc) : 0;
        if (!(slots >= 1) || slots > PDM_ENGINE_MAX_CAP) {
            snprintf(err, errlen,
                     "input %s: a %g s window of sensor %s (one read every %d ms) needs %.0f "
                     "samples; the limit is %u",
                     in->name, in->window_s, sc->name, sc->period_ms, slots, PDM_ENGINE_MAX_CAP);
            rc = -E2BIG;
            break;
        }
        uint32_t cap = slots < PDM_ENGINE_MIN_CAP ? PDM_ENGINE_MIN_CAP : (uint32_t)slots;
        rc = pdm_window_init(&sw->fresh[k], cap, llround(in->window_s * 1000.0));
        if (rc != 0)
            snprintf(err, errlen, "out of memory for the window of input %s", in->name);
    }

    /* The feed index as it will be after this commit and the earlier pending ones: windows stay
     * at their addresses inside e->assets, only which sensor feeds which slot of the swapped
     * assets changes. */
    uint32_t ns = e->n_sensors, total = 0;
    if (rc == 0) {
        sw->feed_start = calloc((size_t)ns + 1, sizeof(*sw->feed_start));
        rc = sw->feed_start ? 0 : -ENOMEM;
    }
    for (uint32_t i = 0; rc == 0 && i < e->n_assets; i++) {
        for (uint32_t k = 0; k < PDM_MODEL_MAX_INPUTS; k++) {
            int32_t s = slot_sensor(e, sw, earlier, n_earlier, i, k);
            if (s >= 0) {
                sw->feed_start[s + 1]++;
                total++;
            }
        }
    }
    if (rc == 0 && total) {
        sw->feeds = calloc(total, sizeof(*sw->feeds));
        rc = sw->feeds ? 0 : -ENOMEM;
    }
    if (rc == 0) {
        for (uint32_t s = 0; s < ns; s++)
            sw->feed_start[s + 1] += sw->feed_start[s];
        for (uint32_t i = 0; i < e->n_assets; i++) {
            for (uint32_t k = 0; k < PDM_MODEL_MAX_INPUTS; k++) {
                int32_t s = slot_sensor(e, sw, earlier, n_earlier, i, k);
                if (s >= 0)
                    sw->feeds[sw->feed_start[s]++] = &e->assets[i].in[k].win;
            }
        }
        for (uint32_t s = ns; s > 0; s--)
            sw->feed_start[s] = sw->feed_start[s - 1];
        sw->feed_start[0] = 0;
    } else if (rc == -ENOMEM) {
        snprintf(err, errlen, "out of memory for the feed index");
    }
    if (rc != 0)
        pdm_engine_swap_abort(sw);
    return rc;
}

void pdm_engine_swap_abort(struct pdm_engine_swap *sw)
{
    for (uint32_t k = 0; k < PDM_MODEL_MAX_INPUTS; k++)
        pdm_window_free(&sw->fresh[k]);
    free(sw->feed_start);
    free(sw->feeds);
    sw->feed_start = NULL;
    sw->feeds = NULL;
}

void pdm_engine_swap_commit(struct pdm_engine *e, struct pdm_engine_swap *sw,
                            struct pdm_asset_cfg *a, int64_t now_mono_ms)
{
    struct pdm_engine_asset *ea = &e->assets[sw->asset];
    struct pdm_engine_input old[PDM_MODEL_MAX_INPUTS];
    int moved[PDM_MODEL_MAX_INPUTS] = {0};
    memcpy(old, ea->in, sizeof(old));
    for (uint32_t k = 0; k < PDM_MODEL_MAX_INPUTS; k++) {
        struct pdm_engine_input *in = &ea->in[k];
        in->sensor = sw->sensor[k];
        if (sw->keep[k] >= 0) {
            in->win = old[sw->keep[k]].win;
            moved[sw->keep[k]] = 1;
        } else {
            in->win = sw->fresh[k]; /* zeroed (no window) for inputs without one */
        }
        memset(&sw->fresh[k], 0, sizeof(sw->fresh[k]));
    }
    for (uint32_t j = 0; j < PDM_MODEL_MAX_INPUTS; j++)
        if (!moved[j])
            pdm_window_free(&old[j].win);
    free(e->feed_start);
    free(e->feeds);
    e->feed_start = sw->feed_start;
    e->feeds = sw->feeds;
    sw->feed_start = NULL;
    sw->feeds = NULL;

    /* the model the engine scores is the asset's, in the config the agent owns */
    int period_changed = a->model.eval_period_ms != sw->model.eval_period_ms;
    a->model = sw->model;
    a->n_inputs = sw->model.n_inputs;
    for (uint32_t k = 0; k < PDM_MODEL_MAX_INPUTS; k++) {
        struct pdm_asset_input_cfg *ai = &a->inputs[k];
        memset(ai, 0, sizeof(*ai));
        ai->sensor = -1;
        if (k < sw->model.n_inputs) {
            snprintf(ai->input, sizeof(ai->input), "%s", sw->model.inputs[k].name);
            ai->sensor = sw->sensor[k];
        }
    }
    /* An open alert stays open under the new thresholds; its hold counters carry on. */
    ea->policy.warning = a->model.warning;
    ea->policy.critical = a->model.critical;
    ea->policy.clear = a->model.clear;
    ea->policy.hold = a->model.hold;
    /* the last score belongs to the old model's inputs: not shown as the new one's */
    memset(&ea->last, 0, sizeof(ea->last));
    ea->evals = 0;
    ea->skipped_stale = 0;
    if (period_changed)
        ea->next_eval_mono_ms = now_mono_ms + a->model.eval_period_ms;
}
