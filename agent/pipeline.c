#include "pipeline.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "baseline.h"
#include "control.h"
#include "encode.h"
#include "lib/clock.h"
#include "outbox.h"
#include "store.h"
#include "drivers/bus_config.h"
#include "models/asset_config.h"

#define QUEUE_CAPACITY   4096  /* samples between bus threads and the loop: 288 KiB */
#define SAMPLES_PER_WAKE 256   /* samples taken off the queue per loop turn */
#define QUEUE_CALM_MS    60000 /* no drops for this long before "sample queue" is all clear */

int pdm_pipeline_init(struct pdm_pipeline *p, const struct pdm_pipeline_cfg *cfg,
                      struct pdm_store *store, struct pdm_outbox *outbox,
                      struct pdm_control *control, struct pdm_baselines *baselines, uint8_t *buf,
                      size_t buf_cap, int64_t now)
{
    int rc;
    p->cfg = *cfg;
    p->store = store;
    p->outbox = outbox;
    p->control = control;
    p->baselines = baselines;
    p->buf = buf;
    p->buf_cap = buf_cap;
    p->sensor_ref = calloc(cfg->n_sensors + 1, sizeof(*p->sensor_ref));
    p->asset_ref = calloc(cfg->n_assets + 1, sizeof(*p->asset_ref));
    p->health = calloc(cfg->n_sensors + 1, sizeof(*p->health));
    p->input_names = calloc((size_t)(cfg->n_assets + 1) * PDM_MODEL_MAX_INPUTS, sizeof(char *));
    if (!p->sensor_ref || !p->asset_ref || !p->health || !p->input_names) {
        pdm_err("out of memory at start-up");
        return -ENOMEM;
    }
    for (uint32_t i = 0; i < cfg->n_sensors; i++) {
        if ((rc = pdm_store_name_id(store, PDM_ROW_READING, cfg->sensors[i].name,
                                    &p->sensor_ref[i])) != 0) {
            pdm_err("store: cannot register sensor %s (%s)", cfg->sensors[i].name, strerror(-rc));
            return rc;
        }
    }
    for (uint32_t i = 0; i < cfg->n_assets; i++) {
        if ((rc = pdm_store_name_id(store, PDM_ROW_SCORE, cfg->assets[i].name, &p->asset_ref[i])) !=
            0) {
            pdm_err("store: cannot register asset %s (%s)", cfg->assets[i].name, strerror(-rc));
            return rc;
        }
        for (uint32_t k = 0; k < cfg->assets[i].n_inputs; k++) {
            int32_t s = cfg->assets[i].inputs[k].sensor;
            p->input_names[i * PDM_MODEL_MAX_INPUTS + k] = s >= 0 ? cfg->sensors[s].name : NULL;
        }
    }
    if ((rc = pdm_engine_init(&p->engine, cfg->assets, cfg->n_assets, cfg->sensors, cfg->n_sensors,
                              now)) != 0) {
        pdm_err("engine: cannot allocate windows (%s)", strerror(-rc));
        return rc;
    }
    struct pdm_quality_limits *lim = calloc(cfg->n_sensors + 1, sizeof(*lim));
    if (!lim)
        return -ENOMEM;
    for (uint32_t i = 0; i < cfg->n_sensors; i++) {
        const struct pdm_sensor_cfg *sc = &cfg->sensors[i];
        lim[i] = (struct pdm_quality_limits){
            .valid_min = sc->valid_min,
            .valid_max = sc->valid_max,
            .frozen_ms = (int64_t)sc->frozen_s * 1000,
            .stale_ms = sc->stale_s > 0 ? (int64_t)sc->stale_s * 1000
                                        : pdm_quality_default_stale_ms(sc->period_ms),
        };
    }
    rc = pdm_quality_init(&p->quality, lim, cfg->n_sensors, now);
    free(lim);
    if (rc != 0) {
        pdm_err("data quality: cannot allocate its state (%s)", strerror(-rc));
        return rc;
    }
    if ((rc = pdm_queue_init(&p->queue, QUEUE_CAPACITY)) != 0) {
        pdm_err("sample queue: %s", strerror(-rc));
        return rc;
    }
    return 0;
}

void pdm_pipeline_set_hooks(struct pdm_pipeline *p, const struct pdm_pipeline_hooks *hooks)
{
    p->hooks = *hooks;
}

void pdm_pipeline_free(struct pdm_pipeline *p)
{
    if (p->queue.ring)
        pdm_queue_destroy(&p->queue);
    if (p->engine.assets)
        pdm_engine_free(&p->engine);
    pdm_quality_free(&p->quality);
    free(p->sensor_ref);
    free(p->asset_ref);
    free(p->health);
    free(p->input_names);
}

void pdm_pipeline_refresh_inputs(struct pdm_pipeline *p)
{
    for (uint32_t i = 0; i < p->cfg.n_assets; i++) {
        const struct pdm_asset_cfg *as = &p->cfg.assets[i];
        for (uint32_t k = 0; k < PDM_MODEL_MAX_INPUTS; k++) {
            int32_t s = k < as->n_inputs ? as->inputs[k].sensor : -1;
            p->input_names[i * PDM_MODEL_MAX_INPUTS + k] = s >= 0 ? p->cfg.sensors[s].name : NULL;
        }
    }
}

static void on_eval(void *ctx, const struct pdm_eval *ev)
{
    struct pdm_pipeline *p = ctx;
    pdm_baselines_on_eval(p->baselines, ev); /* learning, if the asset is learning its baseline */
    const struct pdm_asset_cfg *asset = &p->cfg.assets[ev->asset];
    uint64_t seq;
    int rc = pdm_store_put_row(p->store, PDM_ROW_SCORE, p->asset_ref[ev->asset], ev->ts_ms,
                               ev->score->probability, &seq);
    if (rc != 0)
        pdm_err("store: cannot store the score of asset %s (%s)", asset->name, strerror(-rc));
    if (p->hooks.on_score)
        p->hooks.on_score(p->hooks.ctx, ev->asset, ev->score->probability);
    pdm_debug("asset %s: P=%.3f health=%u", asset->name, ev->score->probability, ev->score->health);
    if (!ev->has_alert)
        return;

    uint64_t aseq = pdm_store_alloc_seq(p->store);
    if (ev->alert.state == PDM_ALERT_RAISED)
        snprintf(ev->fsm->alert_id, sizeof(ev->fsm->alert_id), "%s-%" PRIu64, asset->name, aseq);
    struct pdm_alert_msg m = {
        .device_id = p->cfg.device_id,
        .asset = asset->name,
        .alert_id = ev->fsm->alert_id,
        .seq = aseq,
        .state = ev->alert.state,
        .severity = ev->alert.severity,
        .ts_ms = ev->ts_ms,
        .model = &asset->model,
        .score = ev->score,
        .input_sensors = &p->input_names[ev->asset * PDM_MODEL_MAX_INPUTS],
    };
    int len = pdm_encode_alert(&m, p->buf, p->buf_cap);
    if (len < 0) {
        char e[64];
        pdm_err("asset %s: cannot encode alert (%s)", asset->name,
                pdm_encode_why(len, p->buf_cap, e, sizeof(e)));
        return;
    }
    rc = pdm_store_put_alert(p->store, aseq, asset->name, ev->fsm->alert_id, ev->alert.state,
                             ev->alert.severity, ev->ts_ms, p->buf, (size_t)len);
    if (rc != 0)
        pdm_err("asset %s: cannot write alert %s to the store (%s); it is kept in memory, "
                "published meanwhile, and written when the store accepts writes again",
                asset->name, ev->fsm->alert_id, strerror(-rc));

    /* the two inputs that drove the score most, for the log line */
    uint32_t order[PDM_MODEL_MAX_INPUTS];
    pdm_score_rank(ev->score, order);
    char why[256] = "";
    size_t off = 0;
    for (uint32_t i = 0; i < ev->score->n_inputs && i < 3; i++) {
        uint32_t k = order[i];
        int w = snprintf(why + off, sizeof(why) - off, "%s%s %+.2f (%.4g vs %.4g %s)",
                         i ? ", " : "", asset->model.inputs[k].name, ev->score->in[k].contribution,
                         ev->score->in[k].value, asset->model.inputs[k].center,
                         asset->model.inputs[k].from_asset ? "asset" : "fleet");
        if (w < 0 || (size_t)w >= sizeof(why) - off)
            break;
        off += (size_t)w;
    }
    pdm_info("asset %s: alert %s %s %s P=%.3f health=%u; drivers: %s", asset->name,
             ev->fsm->alert_id, pdm_alert_state_name(ev->alert.state),
             pdm_severity_name(ev->alert.severity), ev->score->probability, ev->score->health, why);
    pdm_outbox_pump(p->outbox);
}

/* ---- data quality: SENSOR_FAULT alerts ------------------------------------------------------
 */

/* The first asset a sensor feeds (the Alert's asset), or "" if none. */
const char *pdm_pipeline_sensor_asset(const struct pdm_pipeline *p, uint32_t sensor)
{
    for (uint32_t i = 0; i < p->cfg.n_assets; i++)
        for (uint32_t k = 0; k < p->cfg.assets[i].n_inputs; k++)
            if (p->cfg.assets[i].inputs[k].sensor == (int32_t)sensor)
                return p->cfg.assets[i].name;
    return "";
}

/* Empties the windows a faulted sensor feeds, so its assets stop scoring now (skipped_stale)
 * instead of scoring on the last window_s of data before the fault. The window's fields are
 * public (window.h); emptying is resetting the ring, nothing is freed. */
static void forget_sensor(struct pdm_pipeline *p, uint32_t sensor)
{
    const struct pdm_engine *e = &p->engine;
    if (!e->feed_start || sensor >= p->cfg.n_sensors)
        return;
    for (uint32_t i = e->feed_start[sensor]; i < e->feed_start[sensor + 1]; i++)
        e->feeds[i]->head = e->feeds[i]->count = 0;
}

static void on_quality(void *ctx, const struct pdm_quality_event *ev)
{
    struct pdm_pipeline *p = ctx;
    const char *name = p->cfg.sensors[ev->sensor].name;
    const char *asset = pdm_pipeline_sensor_asset(p, ev->sensor);
    if (ev->raised)
        forget_sensor(p, ev->sensor);
    if (!ev->raised && !ev->state->alert_id[0])
        return; /* no alert was opened (cannot happen: raise always names one) */
    uint64_t aseq = pdm_store_alloc_seq(p->store);
    if (ev->raised)
        snprintf(ev->state->alert_id, sizeof(ev->state->alert_id), "%s-fault-%" PRIu64, name, aseq);
    enum pdm_alert_state state = ev->raised ? PDM_ALERT_RAISED : PDM_ALERT_CLEARED;
    int64_t ts = pdm_wall_ms();
    struct pdm_sensor_fault_msg m = {
        .device_id = p->cfg.device_id,
        .asset = asset,
        .alert_id = ev->state->alert_id,
        .sensor = name,
        .reason = ev->reason,
        .seq = aseq,
        .state = state,
        .ts_ms = ts,
    };
    int len = pdm_encode_sensor_fault(&m, p->buf, p->buf_cap);
    if (len < 0) {
        char e[64];
        pdm_err("sensor %s: cannot encode its SENSOR_FAULT alert (%s)", name,
                pdm_encode_why(len, p->buf_cap, e, sizeof(e)));
        return;
    }
    char key[PDM_NAME_MAX + 8]; /* the store groups open alerts by this key */
    snprintf(key, sizeof(key), "sensor:%s", name);
    int rc = pdm_store_put_alert(p->store, aseq, key, ev->state->alert_id, state, PDM_SEV_WARNING,
                                 ts, p->buf, (size_t)len);
    if (rc != 0)
        pdm_err("sensor %s: cannot write alert %s to the store (%s); it is kept in memory, "
                "published meanwhile, and written when the store accepts writes again",
                name, ev->state->alert_id, strerror(-rc));
    if (ev->raised) {
        pdm_control_note_error(p->control, ts, "sensor %s: fault: %s", name, ev->reason);
        pdm_warn("sensor %s: alert %s RAISED SENSOR_FAULT (%s): %s; %s%s%s", name,
                 ev->state->alert_id, pdm_quality_cause_name(ev->cause), ev->reason,
                 ev->cause == PDM_QC_STALE ? "" : "its readings are stored flagged; ",
                 *asset ? "asset scoring paused until it recovers: " : "it feeds no asset", asset);
    } else {
        pdm_info("sensor %s: alert %s CLEARED SENSOR_FAULT: %s", name, ev->state->alert_id,
                 ev->reason);
    }
    pdm_outbox_pump(p->outbox);
}

/* What a failed read means for the field engineer: which unit at which address. Failure path
 * only. */
static void read_failure_text(const struct pdm_pipeline *p, const struct pdm_sample *smp, char *out,
                              size_t len)
{
    const struct pdm_sensor_cfg *sc = &p->cfg.sensors[smp->sensor];
    const struct pdm_bus_cfg *bc = &p->cfg.buses[sc->bus];
    const char *why = smp->reason[0] ? smp->reason : "read failed";
    char prefix[24];
    int n = snprintf(prefix, sizeof(prefix), "unit %d: ", sc->unit_id);
    if (n > 0 && strncmp(why, prefix, (size_t)n) == 0)
        why += n; /* the driver's "unit N: " is said below */
    /* a reason is a line in a log or a status table: long host names and paths are cut */
    if (bc->driver == PDM_DRIVER_MODBUS_TCP)
        snprintf(out, len, "unit %d at %.64s:%d: %.64s", sc->unit_id, bc->host, bc->port, why);
    else if (bc->driver == PDM_DRIVER_MODBUS_RTU)
        snprintf(out, len, "unit %d on %.64s: %.64s", sc->unit_id, bc->device, why);
    else
        snprintf(out, len, "bus %s: %s", bc->name, why);
}

void pdm_pipeline_drain(struct pdm_pipeline *p)
{
    struct pdm_sample s[SAMPLES_PER_WAKE];
    uint32_t n;
    while ((n = pdm_queue_pop(&p->queue, s, SAMPLES_PER_WAKE)) > 0) {
        for (uint32_t i = 0; i < n; i++) {
            struct pdm_sensor_health *h = &p->health[s[i].sensor];
            if (s[i].err != 0) {
                char why[PDM_QUALITY_REASON_MAX];
                read_failure_text(p, &s[i], why, sizeof(why));
                pdm_quality_on_sample(&p->quality, s[i].sensor, 0, 0, s[i].mono_ms, why);
                h->ok = 0;
                h->errors++;
                snprintf(h->last_error, sizeof(h->last_error), "%s", s[i].reason);
                pdm_control_note_error(p->control, s[i].ts_ms, "sensor %s: %s",
                                       p->cfg.sensors[s[i].sensor].name, s[i].reason);
                continue;
            }
            h->ok = 1;
            h->reads++;
            h->last_ok_ms = s[i].ts_ms;
            h->last_value = s[i].value;
            /* flagged readings are stored and published, but the model never sees them */
            enum pdm_quality_flag q =
                pdm_quality_on_sample(&p->quality, s[i].sensor, 1, s[i].value, s[i].mono_ms, NULL);
            if (q == PDM_Q_GOOD) {
                pdm_engine_on_sample(&p->engine, s[i].sensor, s[i].mono_ms, s[i].value);
                if (p->hooks.on_good_sample)
                    p->hooks.on_good_sample(p->hooks.ctx, s[i].sensor, s[i].mono_ms, s[i].value);
            }
            uint64_t seq;
            int rc = pdm_store_put_row_q(p->store, PDM_ROW_READING, p->sensor_ref[s[i].sensor],
                                         s[i].ts_ms, s[i].value, (uint8_t)q, &seq);
            if (rc != 0)
                pdm_complain(&p->put_complaint, s[i].mono_ms,
                             "store: cannot store a reading of %s (%s); readings are lost until "
                             "the store accepts them again",
                             p->cfg.sensors[s[i].sensor].name, strerror(-rc));
            else if (p->put_complaint.active)
                pdm_release(&p->put_complaint, "store: readings are stored again");
        }
    }
    int64_t now = pdm_mono_ms();
    if (p->queue.dropped != p->queue_dropped_seen) {
        p->queue_drop_mono_ms = now;
        pdm_complain(&p->queue_complaint, now,
                     "sample queue full: %" PRIu64 " samples dropped so far (the main loop is too "
                     "slow for the configured sensors and periods)",
                     p->queue.dropped);
        p->queue_dropped_seen = p->queue.dropped;
    } else if (p->queue_complaint.active && now - p->queue_drop_mono_ms >= QUEUE_CALM_MS) {
        /* overflows come in bursts: the all-clear waits for a quiet minute, not one drain */
        pdm_release(&p->queue_complaint,
                    "sample queue: no samples dropped for %d s (%" PRIu64 " dropped in all)",
                    QUEUE_CALM_MS / 1000, p->queue.dropped);
    }
}

int64_t pdm_pipeline_tick(struct pdm_pipeline *p, int64_t now)
{
    /* faults first: a sensor that just faulted must not be scored in this turn */
    int64_t next_stale = pdm_quality_tick(&p->quality, now, on_quality, p);
    int64_t next_eval = pdm_engine_tick(&p->engine, now, pdm_wall_ms(), on_eval, p);
    return next_eval < next_stale ? next_eval : next_stale;
}

void pdm_pipeline_restore_alert(struct pdm_pipeline *p, const struct pdm_stored_alert *sa)
{
    if (strncmp(sa->asset, "sensor:", 7) == 0) {
        /* a SENSOR_FAULT still open: its recovery clears the same alert_id */
        int i = -1;
        for (uint32_t k = 0; k < p->cfg.n_sensors && i < 0; k++)
            if (strcmp(p->cfg.sensors[k].name, sa->asset + 7) == 0)
                i = (int)k;
        if (i < 0 || sa->state == PDM_ALERT_CLEARED)
            return;
        pdm_quality_restore(&p->quality, (uint32_t)i, sa->alert_id, pdm_mono_ms());
        pdm_info("sensor %s: alert %s (SENSOR_FAULT) is still open from before the restart",
                 sa->asset + 7, sa->alert_id);
        return;
    }
    for (uint32_t i = 0; i < p->engine.n_assets; i++) {
        if (strcmp(p->cfg.assets[i].name, sa->asset) != 0)
            continue;
        struct pdm_alert_fsm *f = &p->engine.assets[i].fsm;
        f->active = (enum pdm_severity)sa->severity;
        snprintf(f->alert_id, sizeof(f->alert_id), "%s", sa->alert_id);
        pdm_info("asset %s: alert %s (%s) is still open from before the restart", sa->asset,
                 sa->alert_id, pdm_severity_name(f->active));
    }
}
