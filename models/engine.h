/* The scoring engine: sensor samples -> per-input windows -> model score -> alert decision, for
 * every asset of the config.
 *
 * pdm_engine_init() allocates every window (sized from each input's window_s and its sensor's
 * period_ms) and all state; after it returns, pdm_engine_on_sample() and pdm_engine_tick()
 * perform no heap allocation (tests/unit/test_noalloc.c proves it). */
#ifndef PDM_ENGINE_H
#define PDM_ENGINE_H

#include <stdint.h>

#include "alert.h"
#include "model.h"
#include "window.h"

struct pdm_asset_cfg;
struct pdm_sensor_cfg;

struct pdm_engine_input {
    int32_t sensor; /* index into the engine's sensors, -1 for age */
    struct pdm_window win;
};

struct pdm_engine_asset {
    const struct pdm_asset_cfg *cfg; /* borrowed from the config, which outlives the engine */
    struct pdm_engine_input in[PDM_MODEL_MAX_INPUTS]; /* in model input order */
    struct pdm_alert_policy policy;
    struct pdm_alert_fsm fsm;
    int64_t next_eval_mono_ms;
    uint64_t evals, skipped_stale; /* evaluations done / skipped because an input had no data */
    struct pdm_score last;         /* last score, valid when evals > 0 */
    int64_t last_ts_ms;            /* wall clock of the last score */
    /* age_from = run_hours: the asset's run time in years (run hours / PDM_HOURS_PER_YEAR), set
     * by the caller from its usage counters (agent/usage.h); the age input reads it */
    double run_years;
};

#define PDM_HOURS_PER_YEAR                                                                         \
    (365.2425 * 24.0) /* the mean Gregorian year of the age input, in hours */

/* Result of one evaluation, handed to the caller's callback. */
struct pdm_eval {
    uint32_t asset; /* index into the assets the engine was built from */
    int64_t ts_ms;  /* wall clock of the evaluation */
    const struct pdm_score *score;
    int has_alert; /* 1 when the alert state changed: see alert */
    struct pdm_alert_event alert;
    struct pdm_alert_fsm *fsm; /* the asset's state machine: set fsm->alert_id on RAISED */
};

typedef void (*pdm_eval_cb)(void *ctx, const struct pdm_eval *ev);

struct pdm_engine {
    /* borrowed from the config, which outlives the engine: each sensor's period_ms sizes the
     * windows it feeds */
    const struct pdm_sensor_cfg *sensors;
    uint32_t n_sensors;
    struct pdm_engine_asset *assets;
    uint32_t n_assets;
    /* sensor index -> list of (asset, input) windows it feeds, flattened at init */
    uint32_t *feed_start; /* n_sensors + 1 entries */
    struct pdm_window **feeds;
};

/* The engine gets only its slice of the configuration: the assets (each asset's model and the
 * sensor index feeding each input) and the sensors those indexes refer to. 0 or -errno. */
int pdm_engine_init(struct pdm_engine *e, const struct pdm_asset_cfg *assets, uint32_t n_assets,
                    const struct pdm_sensor_cfg *sensors, uint32_t n_sensors, int64_t now_mono_ms);
void pdm_engine_free(struct pdm_engine *e);
/* A good reading of sensor (mono_ms: monotonic time of the read). */
void pdm_engine_on_sample(struct pdm_engine *e, uint32_t sensor, int64_t mono_ms, double value);
/* Evaluates every asset whose eval period is due; calls cb for each evaluation. Returns the
 * monotonic time of the next due evaluation (for the caller's poll timeout). */
int64_t pdm_engine_tick(struct pdm_engine *e, int64_t now_mono_ms, int64_t now_wall_ms,
                        pdm_eval_cb cb, void *ctx);

/* ---- model swap (over-the-air model updates, agent/ota.c) ----------------------------------
 *
 * Replaces one asset's model while the engine runs, in two steps, both outside the sample ->
 * score path (the agent runs them while handling a command, never from pdm_engine_tick):
 *  - prepare allocates a window for every new or changed windowed input and the new feed index
 *    (16 bytes per window slot, as at init, plus 4 * (n_sensors + 1) + 8 per windowed input);
 *    on failure it returns -errno with a reason and the engine is untouched;
 *  - commit cannot fail: it moves the windows of inputs that keep their name, sensor and
 *    window_s (their samples are kept, so the new model scores at once on the history it
 *    already has), frees the windows no longer used, copies the model and its input -> sensor
 *    map into the asset's config (what the engine scores and Status reports), and applies the
 *    new thresholds. An open alert stays open. After commit the hot path is allocation-free
 *    again. */
struct pdm_engine_swap {
    uint32_t asset;
    struct pdm_model model;
    int32_t sensor[PDM_MODEL_MAX_INPUTS];          /* per new input; -1 without a window */
    int keep[PDM_MODEL_MAX_INPUTS];                /* old input whose window moves here, or -1 */
    struct pdm_window fresh[PDM_MODEL_MAX_INPUTS]; /* new windows of the inputs not kept */
    uint32_t *feed_start;
    struct pdm_window **feeds;
};

/* sensor[k]: index into the engine's sensors of the sensor feeding input k of m (ignored for age).
 * Swapping several assets at once: earlier[0 .. n_earlier) are the swaps already prepared and
 * not yet committed (NULL, 0 for none); the feed index built here counts them as committed,
 * so commit the swaps in the order prepared: after each commit the index matches every asset
 * swapped so far (stopping after any prefix leaves a correct engine; abort the rest). */
int pdm_engine_swap_prepare(const struct pdm_engine *e, uint32_t asset, const struct pdm_model *m,
                            const int32_t *sensor, const struct pdm_engine_swap *earlier,
                            size_t n_earlier, struct pdm_engine_swap *sw, char *err, size_t errlen);
/* a must be &assets[sw->asset] of the assets the engine was built from. */
void pdm_engine_swap_commit(struct pdm_engine *e, struct pdm_engine_swap *sw,
                            struct pdm_asset_cfg *a, int64_t now_mono_ms);
void pdm_engine_swap_abort(struct pdm_engine_swap *sw);

#endif
