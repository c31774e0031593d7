#include "service.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/clock.h"
#include "lib/log.h"
#include "outbox.h"
#include "pdm/v1/pdm.pb-c.h"
#include "pipeline.h"
#include "store.h"
#include "usage.h"
#include "drivers/bus_config.h"
#include "models/asset_config.h"
#include "models/engine.h"

#define SERVICE_TICK_MS 1000 /* maintenance limits, service outcomes and reminders checked */

/* Usage counters and maintenance state of one asset (usage.h). */
struct pdm_service_asset {
    struct pdm_usage u;
    struct pdm_service_limits lim;
    int tracked;                       /* running_sensor or a maintenance limit configured */
    char maint_id[PDM_ALERT_ID_MAX];   /* open MAINTENANCE_DUE alert, "" if none */
    char due_why[256];                 /* what made it due */
    struct pdm_complaint outcome_fail; /* recording a visit's outcome fails (retried each check) */
};

/* Reminder state of one source of open alerts (renotify_h). */
struct pdm_reminder {
    char id[PDM_ALERT_ID_MAX]; /* the open episode it tracks, "" = none */
    int acked;
    int64_t due_ms; /* monotonic: next reminder */
};

#define MS_PER_HOUR 3600000.0

static const char *const SVC_KEY_MAINT = "maint:";     /* store key of MAINTENANCE_DUE alerts */
static const char *const SVC_KEY_OUTCOME = "service:"; /* and of SERVICE_OUTCOME messages */

static void usage_view(const struct pdm_service *s, uint32_t i, struct pdm_usage_view *v)
{
    const struct pdm_service_asset *sa = &s->assets[i];
    const struct pdm_usage_counts *c = &sa->u.c;
    *v = (struct pdm_usage_view){
        .asset = s->cfg.assets[i].name,
        .run_hours = (double)c->run_ms / MS_PER_HOUR,
        .hours_since_service = pdm_usage_hours_since_service(c),
        .starts = c->starts,
        .starts_since_service = pdm_usage_starts_since_service(c),
        .running = c->running,
        .last_service_ms = c->svc_wall_ms,
        .outcome_due_ms = c->confirm_ms,
        .maintenance_due = sa->maint_id[0] ? sa->due_why : "",
        .alert_id = sa->maint_id,
    };
}

/* A good reading of sensor: the counters of every asset it says is running. */
static void usage_on_sample(void *ctx, uint32_t sensor, int64_t mono_ms, double value)
{
    struct pdm_service *s = ctx;
    for (uint32_t i = 0; i < s->cfg.n_assets; i++) {
        const struct pdm_asset_cfg *ac = &s->cfg.assets[i];
        if (!ac->has_running || ac->running_sensor != (int32_t)sensor)
            continue;
        struct pdm_service_asset *sa = &s->assets[i];
        int change = pdm_usage_sample(&sa->u, value, mono_ms);
        if (change)
            pdm_debug("asset %s: %s (%" PRIu64 " starts, %.2f run hours)", ac->name,
                      change > 0 ? "started" : "stopped", sa->u.c.starts,
                      (double)sa->u.c.run_ms / MS_PER_HOUR);
        pdm_store_usage_put(s->store, i, &sa->u.c);
        s->pipe->engine.assets[i].run_years =
            (double)sa->u.c.run_ms / MS_PER_HOUR / PDM_HOURS_PER_YEAR;
    }
}

/* A score of asset i: the observation after a service visit keeps its highest probability. */
static void usage_on_score(void *ctx, uint32_t i, double p)
{
    struct pdm_service *s = ctx;
    struct pdm_service_asset *sa = &s->assets[i];
    if (!sa->u.c.confirm_ms)
        return;
    if (!sa->u.c.obs_evals || p > sa->u.c.obs_max_p)
        sa->u.c.obs_max_p = p;
    sa->u.c.obs_evals++;
    pdm_store_usage_put(s->store, i, &sa->u.c);
}

struct svc_alert {
    int kind;
    enum pdm_alert_state state;
    enum pdm_severity severity;
    const char *reason;
    int outcome;
    uint64_t visit;
    double probability;
    int reminder;
};

/* Stores and publishes a MAINTENANCE_DUE or SERVICE_OUTCOME alert of asset i. id: the episode's
 * id, or (for a new one) a buffer it is written to once the alert is encoded: until then the
 * episode is not open, so a failure is retried at the next check. Returns 0 or -errno (logged). */
static int svc_emit(struct pdm_service *s, uint32_t i, const struct svc_alert *ev, char *id,
                    size_t idlen)
{
    const char *asset = s->cfg.assets[i].name;
    int maint = ev->kind == PDM_KIND_MAINTENANCE_DUE;
    uint64_t seq = pdm_store_alloc_seq(s->store);
    int fresh = ev->state == PDM_ALERT_RAISED || !maint;
    char nid[PDM_ALERT_ID_MAX];
    if (fresh)
        snprintf(nid, sizeof(nid), "%s-%s-%" PRIu64, asset, maint ? "maint" : "service", seq);
    else
        snprintf(nid, sizeof(nid), "%s", id);
    struct pdm_usage_view v;
    usage_view(s, i, &v);
    struct pdm_service_alert_msg m = {
        .device_id = s->cfg.device_id,
        .asset = asset,
        .alert_id = nid,
        .reason = ev->reason,
        .seq = seq,
        .kind = ev->kind,
        .state = ev->state,
        .severity = ev->severity,
        .ts_ms = pdm_wall_ms(),
        .usage = &v,
        .outcome = ev->outcome,
        .visit_id = ev->visit,
        .probability = ev->probability,
        .reminder = ev->reminder,
    };
    int len = pdm_encode_service_alert(&m, s->buf, s->buf_cap);
    if (len < 0) {
        char e[64];
        pdm_err("asset %s: cannot encode alert %s (%s)", asset, nid,
                pdm_encode_why(len, s->buf_cap, e, sizeof(e)));
        return len;
    }
    if (fresh)
        snprintf(id, idlen, "%s", nid);
    char key[PDM_NAME_MAX + 16];
    snprintf(key, sizeof(key), "%s%s", maint ? SVC_KEY_MAINT : SVC_KEY_OUTCOME, asset);
    int rc = pdm_store_put_alert(s->store, seq, key, nid, ev->state, ev->severity, m.ts_ms, s->buf,
                                 (size_t)len);
    if (rc != 0)
        pdm_err("asset %s: cannot write alert %s to the store (%s); it is kept in memory and "
                "published meanwhile",
                asset, nid, strerror(-rc));
    pdm_outbox_pump(s->outbox);
    return 0;
}

/* Maintenance limits and due service outcomes of asset i. */
static void svc_check_asset(struct pdm_service *s, uint32_t i, int64_t wall)
{
    struct pdm_service_asset *sa = &s->assets[i];
    const struct pdm_asset_cfg *ac = &s->cfg.assets[i];
    if (sa->tracked && !sa->maint_id[0]) {
        char why[256];
        if (pdm_usage_due(&sa->lim, &sa->u.c, wall, why, sizeof(why))) {
            snprintf(sa->due_why, sizeof(sa->due_why), "%s", why);
            struct svc_alert ev = {.kind = PDM_KIND_MAINTENANCE_DUE,
                                   .state = PDM_ALERT_RAISED,
                                   .severity = PDM_SEV_WARNING,
                                   .reason = sa->due_why};
            if (svc_emit(s, i, &ev, sa->maint_id, sizeof(sa->maint_id)) == 0)
                pdm_warn("asset %s: alert %s RAISED MAINTENANCE_DUE: %s; open until a service "
                         "visit is recorded (cmd/service)",
                         ac->name, sa->maint_id, sa->due_why);
        }
    }
    struct pdm_usage_counts *c = &sa->u.c;
    if (c->confirm_ms && wall >= c->confirm_ms) {
        double clear = s->pipe->engine.assets[i].policy.clear;
        int fixed = c->obs_evals > 0 && c->obs_max_p < clear;
        char why[256];
        if (!c->obs_evals)
            snprintf(why, sizeof(why),
                     "fault persists: asset not scored since service visit %" PRIu64
                     " (no usable readings), so the fix cannot be confirmed",
                     c->visit);
        else
            snprintf(why, sizeof(why),
                     "%s: highest fault probability %.3f over %" PRIu64
                     " scores since service visit %" PRIu64 " is %s the clear threshold %.3f",
                     fixed ? "fix confirmed" : "fault persists", c->obs_max_p, c->obs_evals,
                     c->visit, fixed ? "below" : "at or above", clear);
        char id[PDM_ALERT_ID_MAX];
        struct svc_alert ev = {.kind = PDM_KIND_SERVICE_OUTCOME,
                               .state = PDM_ALERT_CLEARED,
                               .severity = fixed ? PDM_SEV_NONE : PDM_SEV_WARNING,
                               .reason = why,
                               .outcome = fixed ? PDM__V1__SERVICE_OUTCOME__FIX_CONFIRMED
                                                : PDM__V1__SERVICE_OUTCOME__FAULT_PERSISTS,
                               .visit = c->visit,
                               .probability = c->obs_max_p};
        int rc = pdm_store_set_visit_outcome(s->store, c->visit, fixed ? 1 : 2, wall, c->obs_max_p);
        if (rc != 0) {
            /* retried every check (SERVICE_TICK_MS): logged at growing intervals */
            pdm_complain(&sa->outcome_fail, pdm_mono_ms(),
                         "asset %s: cannot record the outcome of service visit %" PRIu64
                         " (%s); retrying at the next check",
                         ac->name, c->visit, strerror(-rc));
            return;
        }
        pdm_release(&sa->outcome_fail,
                    "asset %s: the outcome of service visit %" PRIu64 " is recorded now", ac->name,
                    c->visit);
        c->confirm_ms = 0; /* before the alert: its commit carries the counters too */
        pdm_store_usage_put(s->store, i, c);
        if (svc_emit(s, i, &ev, id, sizeof(id)) == 0)
            pdm_log(fixed ? PDM_LOG_INFO : PDM_LOG_WARNING, "asset %s: %s (%s)", ac->name, why, id);
    }
}

/* The open alert of reminder slot k, or NULL: per asset its FAULT_RISK episode, per sensor its
 * SENSOR_FAULT, per asset its MAINTENANCE_DUE. */
static const char *rem_open_id(const struct pdm_service *s, uint32_t k)
{
    uint32_t na = s->cfg.n_assets, ns = s->cfg.n_sensors;
    if (k < na)
        return s->pipe->engine.assets[k].fsm.active != PDM_SEV_NONE
                   ? s->pipe->engine.assets[k].fsm.alert_id
                   : NULL;
    if (k < na + ns)
        return s->pipe->quality.s[k - na].faulted && s->pipe->quality.s[k - na].alert_id[0]
                   ? s->pipe->quality.s[k - na].alert_id
                   : NULL;
    return s->assets[k - na - ns].maint_id[0] ? s->assets[k - na - ns].maint_id : NULL;
}

/* Follows slot k to its current episode: a new one starts unacknowledged (unless the store says
 * otherwise: an acknowledgement survives restarts) with its first reminder renotify_h away. */
static const char *rem_sync(struct pdm_service *s, uint32_t k, int64_t now)
{
    struct pdm_reminder *r = &s->rem[k];
    const char *id = rem_open_id(s, k);
    if (!id) {
        r->id[0] = '\0';
        return NULL;
    }
    if (strcmp(r->id, id) != 0) {
        snprintf(r->id, sizeof(r->id), "%s", id);
        r->acked = pdm_store_acked(s->store, id, NULL) == 1;
        r->due_ms = now + (int64_t)(s->cfg.renotify_h * MS_PER_HOUR);
    }
    return id;
}

/* Sends the reminder of slot k (an UPDATED with reminder = true). */
static void rem_send(struct pdm_service *s, uint32_t k)
{
    uint32_t na = s->cfg.n_assets, ns = s->cfg.n_sensors;
    int len = 0, rc = 0; /* encoded length or -errno; the store's answer */
    if (k < na) {
        struct pdm_engine_asset *ea = &s->pipe->engine.assets[k];
        if (!ea->evals)
            return; /* restored after a restart and not scored yet: no numbers to send */
        const struct pdm_asset_cfg *ac = &s->cfg.assets[k];
        uint64_t seq = pdm_store_alloc_seq(s->store);
        struct pdm_alert_msg m = {
            .device_id = s->cfg.device_id,
            .asset = ac->name,
            .alert_id = ea->fsm.alert_id,
            .seq = seq,
            .state = PDM_ALERT_UPDATED,
            .severity = ea->fsm.active,
            .ts_ms = pdm_wall_ms(),
            .model = &ac->model,
            .score = &ea->last,
            .input_sensors = &s->pipe->input_names[k * PDM_MODEL_MAX_INPUTS],
            .reminder = 1,
        };
        len = pdm_encode_alert(&m, s->buf, s->buf_cap);
        if (len >= 0)
            rc = pdm_store_put_alert(s->store, seq, ac->name, ea->fsm.alert_id, PDM_ALERT_UPDATED,
                                     ea->fsm.active, m.ts_ms, s->buf, (size_t)len);
    } else if (k < na + ns) {
        uint32_t si = k - na;
        const struct pdm_quality_sensor *q = &s->pipe->quality.s[si];
        const char *name = s->cfg.sensors[si].name;
        uint64_t seq = pdm_store_alloc_seq(s->store);
        struct pdm_sensor_fault_msg m = {
            .device_id = s->cfg.device_id,
            .asset = pdm_pipeline_sensor_asset(s->pipe, si),
            .alert_id = q->alert_id,
            .sensor = name,
            .reason = q->reason,
            .seq = seq,
            .state = PDM_ALERT_UPDATED,
            .ts_ms = pdm_wall_ms(),
            .reminder = 1,
        };
        char key[PDM_NAME_MAX + 8];
        snprintf(key, sizeof(key), "sensor:%s", name);
        len = pdm_encode_sensor_fault(&m, s->buf, s->buf_cap);
        if (len >= 0)
            rc = pdm_store_put_alert(s->store, seq, key, q->alert_id, PDM_ALERT_UPDATED,
                                     PDM_SEV_WARNING, m.ts_ms, s->buf, (size_t)len);
    } else {
        uint32_t i = k - na - ns;
        struct svc_alert ev = {.kind = PDM_KIND_MAINTENANCE_DUE,
                               .state = PDM_ALERT_UPDATED,
                               .severity = PDM_SEV_WARNING,
                               .reason = s->assets[i].due_why,
                               .reminder = 1};
        /* logs its own failures; a store failure keeps the alert in memory and sends it */
        if (svc_emit(s, i, &ev, s->assets[i].maint_id, sizeof(s->assets[i].maint_id)) != 0) {
            pdm_err("alert %s: reminder not sent; the next one is due in %.4g h", s->rem[k].id,
                    s->cfg.renotify_h);
            return;
        }
    }
    char e[64];
    if (len < 0)
        pdm_err("alert %s: reminder not sent: cannot encode it (%s); the next one is due in "
                "%.4g h",
                s->rem[k].id, pdm_encode_why(len, s->buf_cap, e, sizeof(e)), s->cfg.renotify_h);
    else if (rc != 0)
        pdm_err("alert %s: reminder not written to the store (%s); it is kept in memory and sent "
                "meanwhile",
                s->rem[k].id, strerror(-rc));
    else
        pdm_info("alert %s: not acknowledged after %.4g h: reminder sent (UPDATED)", s->rem[k].id,
                 s->cfg.renotify_h);
    pdm_outbox_pump(s->outbox);
}

static int64_t service_tick(void *ctx, int64_t now)
{
    struct pdm_service *s = ctx;
    int64_t wall = pdm_wall_ms();
    for (uint32_t i = 0; i < s->cfg.n_assets; i++)
        svc_check_asset(s, i, wall);
    for (uint32_t k = 0; k < s->n_rem; k++) {
        if (!rem_sync(s, k, now) || s->rem[k].acked || s->cfg.renotify_h <= 0 ||
            now < s->rem[k].due_ms)
            continue;
        s->rem[k].due_ms = now + (int64_t)(s->cfg.renotify_h * MS_PER_HOUR);
        rem_send(s, k);
    }
    return now + SERVICE_TICK_MS;
}

/* At start-up, after the store is open: loads the counters and sets up the state. */
static int service_setup(struct pdm_service *s)
{
    const struct pdm_service_cfg *cfg = &s->cfg;
    s->assets = calloc(cfg->n_assets + 1, sizeof(*s->assets));
    s->n_rem = 2 * cfg->n_assets + cfg->n_sensors;
    s->rem = calloc(s->n_rem + 1, sizeof(*s->rem));
    if (!s->assets || !s->rem)
        return -ENOMEM;
    int rc = pdm_store_usage_slots(s->store, cfg->n_assets);
    for (uint32_t i = 0; rc == 0 && i < cfg->n_assets; i++) {
        const struct pdm_asset_cfg *ac = &cfg->assets[i];
        struct pdm_service_asset *sa = &s->assets[i];
        rc = pdm_store_usage_load(s->store, i, ac->name, &sa->u.c);
        if (rc != 0) {
            pdm_err("store: cannot read the usage counters of asset %s (%s)", ac->name,
                    strerror(-rc));
            return rc;
        }
        int64_t gap = ac->has_running ? 3 * (int64_t)cfg->sensors[ac->running_sensor].period_ms : 0;
        pdm_usage_init(&sa->u, ac->running_above, ac->running_hysteresis,
                       (int64_t)ac->running_debounce_s * 1000, gap > 10000 ? gap : 10000);
        sa->lim = (struct pdm_service_limits){
            .every_hours = ac->service_every_hours,
            .every_starts = (uint32_t)ac->service_every_starts,
            .every_months = (uint32_t)ac->service_every_months,
            .since_s = ac->last_service_s ? ac->last_service_s : ac->installed_s,
        };
        sa->tracked = ac->has_running || ac->service_every_hours > 0 ||
                      ac->service_every_starts > 0 || ac->service_every_months > 0;
        if (sa->tracked)
            pdm_info("asset %s: %.2f run hours, %" PRIu64 " starts (%.2f h, %" PRIu64
                     " starts since service)%s",
                     ac->name, (double)sa->u.c.run_ms / MS_PER_HOUR, sa->u.c.starts,
                     pdm_usage_hours_since_service(&sa->u.c),
                     pdm_usage_starts_since_service(&sa->u.c),
                     sa->u.c.confirm_ms ? "; a service outcome is pending" : "");
    }
    if (rc != 0) {
        pdm_err("usage counters: cannot allocate (%s)", strerror(-rc));
        return rc;
    }
    return 0;
}

/* After the engine exists: the age input of assets with age_from = run_hours. */
static void service_engine_ready(struct pdm_service *s)
{
    for (uint32_t i = 0; i < s->cfg.n_assets; i++)
        s->pipe->engine.assets[i].run_years =
            (double)s->assets[i].u.c.run_ms / MS_PER_HOUR / PDM_HOURS_PER_YEAR;
}

int pdm_service_restore(struct pdm_service *s, const struct pdm_stored_alert *sa)
{
    size_t n = strlen(SVC_KEY_MAINT);
    if (strncmp(sa->asset, SVC_KEY_OUTCOME, strlen(SVC_KEY_OUTCOME)) == 0)
        return 1; /* outcomes are single CLEARED messages: nothing to resume */
    if (strncmp(sa->asset, SVC_KEY_MAINT, n) != 0)
        return 0;
    for (uint32_t i = 0; i < s->cfg.n_assets; i++) {
        if (strcmp(s->cfg.assets[i].name, sa->asset + n) != 0 || sa->state == PDM_ALERT_CLEARED)
            continue;
        struct pdm_service_asset *x = &s->assets[i];
        snprintf(x->maint_id, sizeof(x->maint_id), "%s", sa->alert_id);
        pdm_usage_due(&x->lim, &x->u.c, pdm_wall_ms(), x->due_why, sizeof(x->due_why));
        if (!x->due_why[0])
            snprintf(x->due_why, sizeof(x->due_why), "maintenance due (limit changed since)");
        pdm_info("asset %s: alert %s (MAINTENANCE_DUE) is still open from before the restart",
                 sa->asset + n, sa->alert_id);
    }
    return 1;
}

int pdm_service_init(struct pdm_service *s, const struct pdm_service_cfg *cfg,
                     struct pdm_store *store, struct pdm_outbox *outbox, struct pdm_pipeline *pipe,
                     uint8_t *buf, size_t buf_cap)
{
    memset(s, 0, sizeof(*s));
    s->cfg = *cfg;
    s->store = store;
    s->outbox = outbox;
    s->pipe = pipe;
    s->buf = buf;
    s->buf_cap = buf_cap;
    int rc = service_setup(s);
    if (rc != 0)
        return rc;
    service_engine_ready(s);
    struct pdm_pipeline_hooks hooks = {
        .ctx = s, .on_good_sample = usage_on_sample, .on_score = usage_on_score};
    pdm_pipeline_set_hooks(pipe, &hooks);
    return 0;
}

void pdm_service_free(struct pdm_service *s)
{
    free(s->assets);
    free(s->rem);
    s->assets = NULL;
    s->rem = NULL;
    s->n_rem = 0;
}

int pdm_service_add_timer(struct pdm_service *s, struct pdm_timers *t)
{
    return pdm_timer_add(t, "service", 0, service_tick, s);
}

int pdm_service_usage(const struct pdm_service *s, uint32_t i, struct pdm_usage_view *v)
{
    usage_view(s, i, v);
    return s->assets[i].tracked || s->assets[i].u.c.visit;
}

size_t pdm_service_open_alerts(struct pdm_service *s, uint32_t i, int64_t now,
                               struct pdm_report_alert *out)
{
    uint32_t na = s->cfg.n_assets, ns = s->cfg.n_sensors;
    const struct pdm_engine_asset *ea = &s->pipe->engine.assets[i];
    size_t n = 0;
    for (uint32_t k = 0; k < s->n_rem; k++) {
        int mine = k < na ? k == i
                   : k < na + ns
                       ? pdm_pipeline_sensor_asset(s->pipe, k - na) == s->cfg.assets[i].name
                       : k - na - ns == i;
        const char *id = mine ? rem_sync(s, k, now) : NULL;
        if (!id)
            continue;
        out[n++] = (struct pdm_report_alert){
            .alert_id = id,
            .kind = k < na        ? PDM__V1__ALERT_KIND__FAULT_RISK
                    : k < na + ns ? PDM__V1__ALERT_KIND__SENSOR_FAULT
                                  : PDM_KIND_MAINTENANCE_DUE,
            .state = PDM_ALERT_RAISED,
            .severity = k < na ? ea->fsm.active : PDM_SEV_WARNING,
            .acknowledged = s->rem[k].acked,
        };
    }
    return n;
}

int pdm_service_alert_kind(const char *key)
{
    if (strncmp(key, SVC_KEY_MAINT, strlen(SVC_KEY_MAINT)) == 0)
        return PDM_KIND_MAINTENANCE_DUE;
    if (strncmp(key, SVC_KEY_OUTCOME, strlen(SVC_KEY_OUTCOME)) == 0)
        return PDM_KIND_SERVICE_OUTCOME;
    if (strncmp(key, "sensor:", 7) == 0)
        return PDM__V1__ALERT_KIND__SENSOR_FAULT;
    return PDM__V1__ALERT_KIND__FAULT_RISK;
}

void pdm_service_ack(struct pdm_service *s, const char *alert_id, const char *by,
                     struct pdm_cmd_result *res)
{
    int64_t now = pdm_mono_ms();
    for (uint32_t k = 0; k < s->n_rem; k++) {
        const char *id = rem_sync(s, k, now);
        if (!id || strcmp(id, alert_id) != 0)
            continue;
        struct pdm_reminder *r = &s->rem[k];
        int64_t when = 0;
        if (r->acked && pdm_store_acked(s->store, id, &when) == 1) {
            pdm_cmd_set(res, PDM_CMD_OK, "alert %s was already acknowledged (%lld s ago)", id,
                        (long long)((pdm_wall_ms() - when) / 1000));
            return;
        }
        int rc = pdm_store_put_ack(s->store, id, pdm_wall_ms());
        if (rc != 0) {
            pdm_cmd_set(res, PDM_CMD_STORAGE_FAILED,
                        "cannot record the acknowledgement of %s (%s); send again", id,
                        strerror(-rc));
            return;
        }
        r->acked = 1;
        pdm_cmd_set(res, PDM_CMD_OK, "alert %s acknowledged by %.64s: no more reminders", id, by);
        return;
    }
    int state = 0;
    int rc = pdm_store_alert_state(s->store, alert_id, &state);
    if (rc == -ENOENT)
        pdm_cmd_set(res, PDM_CMD_UNKNOWN_ALERT, "no alert %.96s on this device", alert_id);
    else if (rc != 0)
        pdm_cmd_set(res, PDM_CMD_INTERNAL_ERROR, "cannot look up alert %.96s (%s)", alert_id,
                    strerror(-rc));
    else
        pdm_cmd_set(res, PDM_CMD_ALERT_NOT_ACTIVE,
                    "alert %.96s is no longer open (%s): nothing to acknowledge", alert_id,
                    state == PDM_ALERT_CLEARED ? "cleared" : "its source is no longer configured");
}

int pdm_service_visit(struct pdm_service *s, uint32_t i, const char *visit_ref,
                      const char *technician, const char *note, struct pdm_cmd_result *res)
{
    const char *asset = s->cfg.assets[i].name;
    struct pdm_service_asset *sa = &s->assets[i];
    struct pdm_usage_counts old = sa->u.c;
    int64_t wall = pdm_wall_ms();
    uint64_t visit = 0;
    int rc = pdm_store_add_visit(s->store, asset, wall, visit_ref, technician, note, &old, &visit);
    if (rc == 0) {
        struct pdm_usage_counts *c = &sa->u.c;
        c->svc_run_ms = c->run_ms;
        c->svc_starts = c->starts;
        c->svc_wall_ms = wall;
        c->confirm_ms = wall + (int64_t)(s->cfg.confirm_after_h * MS_PER_HOUR);
        c->obs_max_p = 0;
        c->obs_evals = 0;
        c->visit = visit;
        pdm_store_usage_put(s->store, i, c);
        rc = pdm_store_commit(s->store); /* the visit and the reset together */
        if (rc != 0) {
            sa->u.c = old;
            pdm_store_usage_put(s->store, i, &old);
        }
    }
    if (rc != 0) {
        pdm_cmd_set(res, PDM_CMD_STORAGE_FAILED,
                    "cannot record the service visit (%s); nothing changed, send again",
                    strerror(-rc));
        return rc;
    }
    char cleared[160] = "";
    if (sa->maint_id[0]) {
        char why[200];
        snprintf(why, sizeof(why), "service visit %" PRIu64 " recorded", visit);
        struct svc_alert ev = {.kind = PDM_KIND_MAINTENANCE_DUE,
                               .state = PDM_ALERT_CLEARED,
                               .severity = PDM_SEV_WARNING,
                               .reason = why};
        if (svc_emit(s, i, &ev, sa->maint_id, sizeof(sa->maint_id)) == 0)
            snprintf(cleared, sizeof(cleared), "; MAINTENANCE_DUE %s cleared", sa->maint_id);
        pdm_info("asset %s: alert %s CLEARED MAINTENANCE_DUE: %s", asset, sa->maint_id, why);
        sa->maint_id[0] = '\0';
        sa->due_why[0] = '\0';
    }
    pdm_cmd_set(res, PDM_CMD_OK,
                "service visit %" PRIu64 " recorded for %s%s%.64s; maintenance counters reset%s; "
                "outcome (fix confirmed or fault persists) in %.4g h",
                visit, asset, technician && *technician ? " by " : "", technician ? technician : "",
                cleared, s->cfg.confirm_after_h);
    return 0;
}
