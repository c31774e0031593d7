#include "status.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "control.h"
#include "encode.h"
#include "lib/clock.h"
#include "lib/log.h"
#include "outbox.h"
#include "pipeline.h"
#include "service.h"
#include "store.h"
#include "drivers/bus_config.h"
#include "models/asset_config.h"

#define STATUS_INTERVAL_MS 60000 /* retained Status refresh while connected */

void pdm_status_init(struct pdm_status *st, const struct pdm_status_cfg *cfg,
                     const struct pdm_pipeline *pipe, const struct pdm_service *service,
                     struct pdm_store *store, struct pdm_outbox *outbox,
                     const struct pdm_broker_state *broker, uint8_t *buf, size_t buf_cap)
{
    memset(st, 0, sizeof(*st));
    st->cfg = *cfg;
    st->pipe = pipe;
    st->service = service;
    st->store = store;
    st->outbox = outbox;
    st->broker = broker;
    st->buf = buf;
    st->buf_cap = buf_cap;
    st->t_status = -1;
    snprintf(st->topic, sizeof(st->topic), "%s/%s/status", cfg->topic_prefix, cfg->device_id);
}

const char *pdm_status_topic(const struct pdm_status *st)
{
    return st->topic;
}

int pdm_status_encode(struct pdm_status *st, int online, uint8_t *buf, size_t cap)
{
    const struct pdm_status_cfg *cfg = &st->cfg;
    struct pdm_status_model models[64];
    struct pdm_status_sensor sensors[256];
    size_t nm = cfg->n_assets < 64 ? cfg->n_assets : 64;
    size_t ns = cfg->n_sensors < 256 ? cfg->n_sensors : 256;
    for (size_t i = 0; i < nm; i++) {
        models[i].asset = cfg->assets[i].name;
        models[i].model_id = cfg->assets[i].model.id;
        models[i].version = cfg->assets[i].model.version;
        models[i].sha256 = cfg->assets[i].model.sha256;
    }
    for (size_t i = 0; online && i < ns; i++) {
        sensors[i].sensor = cfg->sensors[i].name;
        sensors[i].ok = st->pipe->health[i].ok;
        sensors[i].reads = st->pipe->health[i].reads;
        sensors[i].errors = st->pipe->health[i].errors;
        sensors[i].last_error = st->pipe->health[i].last_error;
        sensors[i].last_ok_ms = st->pipe->health[i].last_ok_ms;
    }
    struct pdm_store_stats ss = {0};
    if (online && st->store)
        pdm_store_stats(st->store, &ss);
    struct pdm_status_msg m = {
        .device_id = cfg->device_id,
        .online = online,
        .agent_version = PDM_VERSION,
        .ts_ms = online ? pdm_wall_ms() : 0,
        .models = models,
        .n_models = nm,
        .sensors = sensors,
        .n_sensors = online ? ns : 0,
        .buffer_readings = ss.rows_pending,
        .buffer_alerts = ss.alerts_pending,
        .seq = ss.next_seq,
        .buffer_bytes = ss.db_bytes,
        .buffer_max_bytes = ss.max_bytes,
        .oldest_undelivered_ms = ss.oldest_pending_ms,
        .delivered_readings = ss.rows_delivered,
        .delivered_alerts = ss.alerts_delivered,
        .dropped_readings = ss.rows_dropped,
        .store_recovered = ss.recovered,
        .store_write_failing = ss.write_failing,
    };
    int len = pdm_encode_status(&m, buf, cap);
    if (len < 0 || !online || !st->service)
        return len;
    /* Status.usage: every asset (issue 6) */
    struct pdm_usage_view uv[64];
    size_t nu = cfg->n_assets < 64 ? cfg->n_assets : 64;
    for (size_t i = 0; i < nu; i++)
        pdm_service_usage(st->service, (uint32_t)i, &uv[i]);
    return pdm_encode_status_usage(uv, nu, buf, (size_t)len, cap);
}

void pdm_status_publish(struct pdm_status *st, int online)
{
    int len = pdm_status_encode(st, online, st->buf, st->buf_cap);
    if (len < 0) {
        char e[64];
        pdm_err("status: cannot encode (%s); not published",
                pdm_encode_why(len, st->buf_cap, e, sizeof(e)));
        return;
    }
    int rc = pdm_outbox_send(st->outbox, st->topic, st->buf, (size_t)len, 1);
    if (rc != 0 && rc != -EAGAIN)
        pdm_debug("status: not published (%s)", strerror(-rc));
}

/* Usage counters and maintenance of asset i for the snapshot. */
static void fill_usage(const struct pdm_status *st, uint32_t i, struct pdm_ctl_asset *x)
{
    struct pdm_usage_view v;
    x->has_usage = st->service && pdm_service_usage(st->service, i, &v);
    if (!x->has_usage)
        return;
    struct pdm_ctl_usage *u = &x->usage;
    u->run_hours = v.run_hours;
    u->hours_since_service = v.hours_since_service;
    u->starts = v.starts;
    u->starts_since_service = v.starts_since_service;
    u->running = v.running;
    u->last_service_ms = v.last_service_ms;
    u->outcome_due_ms = v.outcome_due_ms;
    snprintf(u->alert_id, sizeof(u->alert_id), "%s", v.alert_id);
    snprintf(u->due, sizeof(u->due), "%s", v.maintenance_due);
}

/* Copies the loop's view into the control module's snapshot (arrays sized at start: no
 * allocation). Runs in the main loop, like everything that reads the engine and the store. */
void pdm_status_fill_snapshot(void *ctx, struct pdm_ctl_snapshot *s)
{
    struct pdm_status *st = ctx;
    const struct pdm_status_cfg *cfg = &st->cfg;
    s->device_id = cfg->device_id;
    for (uint32_t i = 0; i < s->n_sensors && i < cfg->n_sensors; i++) {
        const struct pdm_sensor_cfg *sc = &cfg->sensors[i];
        const struct pdm_sensor_health *h = &st->pipe->health[i];
        struct pdm_ctl_sensor *x = &s->sensors[i];
        x->name = sc->name;
        x->unit = sc->unit;
        x->bus = cfg->buses[sc->bus].name;
        x->unit_id = sc->unit_id;
        x->ok = h->ok;
        x->has_value = h->last_ok_ms != 0;
        x->value = h->last_value;
        x->value_ms = h->last_ok_ms;
        x->reads = h->reads;
        x->errors = h->errors;
        memcpy(x->last_error, h->last_error, sizeof(x->last_error));
    }
    for (uint32_t i = 0; i < s->n_assets && i < st->pipe->engine.n_assets; i++) {
        const struct pdm_engine_asset *ea = &st->pipe->engine.assets[i];
        struct pdm_ctl_asset *x = &s->assets[i];
        x->name = cfg->assets[i].name;
        x->model = &cfg->assets[i].model;
        memcpy(x->input_sensor, &st->pipe->input_names[i * PDM_MODEL_MAX_INPUTS],
               sizeof(x->input_sensor));
        for (uint32_t k = 0; k < PDM_MODEL_MAX_INPUTS; k++)
            x->input_samples[k] = ea->in[k].win.count;
        x->evals = ea->evals;
        x->skipped_stale = ea->skipped_stale;
        x->scored = ea->evals > 0;
        x->score = ea->last;
        x->score_ms = ea->last_ts_ms;
        x->severity = ea->fsm.active;
        memcpy(x->alert_id, ea->fsm.alert_id, sizeof(x->alert_id));
        fill_usage(st, i, x); /* issue 6 */
    }
    s->store_ok = pdm_store_stats(st->store, &s->store) == 0;
    s->broker_uri = cfg->uri;
    s->broker_connected = st->broker->connected;
    s->broker_connecting = st->broker->connecting;
    memcpy(s->broker_error, st->broker->error, sizeof(s->broker_error));
    s->queue_dropped = st->pipe->queue.dropped;
}

/* Running while connected (started at CONNECTED, stopped at a connection loss). */
static int64_t status_timer(void *ctx, int64_t now)
{
    pdm_status_publish(ctx, 1);
    return now + STATUS_INTERVAL_MS;
}

int pdm_status_add_timer(struct pdm_status *st, struct pdm_timers *t)
{
    st->timers = t;
    st->t_status = pdm_timer_add(t, "status", PDM_TIMER_OFF, status_timer, st);
    return st->t_status;
}

void pdm_status_timer_restart(struct pdm_status *st, int64_t now)
{
    pdm_timer_set(st->timers, st->t_status, now + STATUS_INTERVAL_MS);
}

void pdm_status_timer_stop(struct pdm_status *st)
{
    pdm_timer_set(st->timers, st->t_status, PDM_TIMER_OFF);
}
