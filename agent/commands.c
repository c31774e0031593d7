#include "commands.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "baseline.h"
#include "command.h"
#include "control.h"
#include "encode.h"
#include "lib/clock.h"
#include "lib/log.h"
#include "ota.h"
#include "outbox.h"
#include "pdm/v1/pdm.pb-c.h"
#include "pipeline.h"
#include "service.h"
#include "status.h"
#include "store.h"
#include "drivers/bus_config.h"
#include "models/asset_config.h"

void pdm_commands_init(struct pdm_commands *c, const struct pdm_commands_cfg *cfg,
                       const struct pdm_cmd_modules *m)
{
    memset(c, 0, sizeof(*c));
    c->cfg = *cfg;
    c->m = *m;
    snprintf(c->topic_report, sizeof(c->topic_report), "%s/%s/report", cfg->topic_prefix,
             cfg->device_id);
}

static int asset_index(const struct pdm_commands_cfg *cfg, const char *name)
{
    for (uint32_t i = 0; i < cfg->n_assets; i++)
        if (strcmp(cfg->assets[i].name, name) == 0)
            return (int)i;
    return -1;
}

static void cmd_model(void *ctx, const struct pdm_cmd *cmd, struct pdm_cmd_result *res)
{
    struct pdm_commands *c = ctx;
    if (pdm_ota_handle(c->m.ota, &c->m.pipe->engine, cmd, res, pdm_mono_ms()) > 0) {
        pdm_baselines_sync(c->m.baselines); /* a new model: its own baseline, or fleet */
        pdm_pipeline_refresh_inputs(c->m.pipe);
        /* the backend sees the new model id/version/sha256 at once */
        pdm_status_publish(c->m.status, 1);
    }
}

/* ---- per-asset baselines: cmd/baseline and the control socket's baseline requests ---------- */

/* cmd/baseline: answered at once (started or refused); the end of learning is a second
 * CommandResult with the same request_id (baseline_finished). */
static void cmd_baseline(void *ctx, const struct pdm_cmd *cmd, struct pdm_cmd_result *res)
{
    struct pdm_commands *c = ctx;
    Pdm__V1__BaselineRequest *r =
        pdm__v1__baseline_request__unpack(NULL, cmd->len, (const uint8_t *)cmd->payload);
    if (!r) {
        pdm_cmd_set(res, PDM_CMD_BAD_PAYLOAD, "the payload is not a pdm.v1.BaselineRequest");
        return;
    }
    char text[PDM_CMD_TEXT_MAX];
    enum pdm_cmd_reason reason = pdm_baselines_start(
        c->m.baselines, &c->m.pipe->engine, r->asset ? r->asset : "", r->seconds, r->force,
        cmd->request_id, 1, pdm_mono_ms(), text, sizeof(text));
    pdm_cmd_set(res, reason, "%s", text);
    pdm__v1__baseline_request__free_unpacked(r, NULL);
}

/* Learning that ended: logged by baseline.c; the backend that asked gets the second answer. */
void pdm_commands_tick(struct pdm_commands *c, int64_t now)
{
    static struct pdm_baseline_done done; /* 1 KiB of text: not on the stack of the loop */
    static struct pdm_cmd cmd;
    static struct pdm_cmd_result res;
    for (int guard = 0;
         guard < 64 && pdm_baselines_tick(c->m.baselines, &c->m.pipe->engine, now, &done);
         guard++) {
        if (!done.ok)
            pdm_control_note_error(c->m.control, pdm_wall_ms(), "asset %s: baseline: %.100s",
                                   c->cfg.assets[done.asset].name, done.text);
        if (!done.from_backend)
            continue;
        memset(&cmd, 0, sizeof(cmd));
        memset(&res, 0, sizeof(res));
        snprintf(cmd.name, sizeof(cmd.name), "baseline");
        snprintf(cmd.request_id, sizeof(cmd.request_id), "%s", done.request_id);
        int alerting = !done.ok && strstr(done.text, "raised an alert") != NULL;
        pdm_cmd_set(&res,
                    done.ok    ? PDM_CMD_BASELINE_LEARNED
                    : alerting ? PDM_CMD_ASSET_ALERTING
                               : PDM_CMD_BASELINE_FAILED,
                    "%s", done.text);
        res.ok = done.ok;
        pdm_outbox_queue_result(c->m.outbox, &cmd, &res);
    }
}

/* Control socket requests with arguments (control.h): "baseline ASSET SECONDS [force]" starts
 * learning, "baseline-show ASSET" describes the asset's baseline state. */
int pdm_commands_control_request(void *ctx, const char *req, char *out, size_t cap)
{
    struct pdm_commands *c = ctx;
    char verb[32], asset[PDM_NAME_MAX + 2], extra[16] = "", more[8];
    double seconds = 0;
    int n = sscanf(req, "%31s %65s %lf %15s %7s", verb, asset, &seconds, extra, more);
    if (n >= 1 && strcmp(verb, "baseline") == 0) {
        if (n < 3 || n > 4 || (n == 4 && strcmp(extra, "force") != 0)) {
            snprintf(out, cap, "error: usage: baseline ASSET SECONDS [force]\n");
            return 0;
        }
        char text[PDM_CMD_TEXT_MAX];
        enum pdm_cmd_reason r =
            pdm_baselines_start(c->m.baselines, &c->m.pipe->engine, asset, seconds, n == 4, "", 0,
                                pdm_mono_ms(), text, sizeof(text));
        if (r == PDM_CMD_OK)
            snprintf(out, cap, "ok: %s\n", text);
        else
            snprintf(out, cap, "error: %s: %s\n", pdm_cmd_reason_name(r), text);
        return 0;
    }
    if (n >= 1 && strcmp(verb, "baseline-show") == 0) {
        if (n != 2)
            snprintf(out, cap, "error: usage: baseline-show ASSET\n");
        else if (pdm_baselines_describe(c->m.baselines, asset, pdm_mono_ms(), out, cap) != 0)
            snprintf(out, cap, "error: UNKNOWN_ASSET: no asset '%.64s' on this device\n", asset);
        return 0;
    }
    return -ENOENT;
}

/* ---- the commands of the service loop ---- */

static void cmd_ack(void *ctx, const struct pdm_cmd *cmd, struct pdm_cmd_result *res)
{
    struct pdm_commands *c = ctx;
    Pdm__V1__AckAlert *m = pdm__v1__ack_alert__unpack(NULL, cmd->len, cmd->payload);
    if (!m) {
        pdm_cmd_set(res, PDM_CMD_BAD_PAYLOAD, "the payload is not a pdm.v1.AckAlert");
        return;
    }
    const char *by = m->by && *m->by ? m->by : "the backend";
    if (!m->alert_id || !*m->alert_id)
        pdm_cmd_set(res, PDM_CMD_MISSING_FIELD, "alert_id is empty");
    else
        pdm_service_ack(c->m.service, m->alert_id, by, res);
    pdm__v1__ack_alert__free_unpacked(m, NULL);
}

static void cmd_service(void *ctx, const struct pdm_cmd *cmd, struct pdm_cmd_result *res)
{
    struct pdm_commands *c = ctx;
    Pdm__V1__ServiceVisit *m = pdm__v1__service_visit__unpack(NULL, cmd->len, cmd->payload);
    if (!m) {
        pdm_cmd_set(res, PDM_CMD_BAD_PAYLOAD, "the payload is not a pdm.v1.ServiceVisit");
        return;
    }
    int i = m->asset && *m->asset ? asset_index(&c->cfg, m->asset) : -1;
    if (!m->asset || !*m->asset) {
        pdm_cmd_set(res, PDM_CMD_MISSING_FIELD, "asset is empty");
        goto out;
    }
    if (i < 0) {
        pdm_cmd_set(res, PDM_CMD_UNKNOWN_ASSET, "no asset %.64s on this device", m->asset);
        goto out;
    }
    if (pdm_service_visit(c->m.service, (uint32_t)i, m->visit_ref, m->technician, m->note, res) !=
        0)
        goto out;
    pdm_status_publish(c->m.status, 1);
out:
    pdm__v1__service_visit__free_unpacked(m, NULL);
}

static void cmd_status(void *ctx, const struct pdm_cmd *cmd, struct pdm_cmd_result *res)
{
    (void)cmd;
    struct pdm_commands *c = ctx;
    pdm_status_publish(c->m.status, 1);
    pdm_status_timer_restart(c->m.status, pdm_mono_ms());
    pdm_cmd_set(res, PDM_CMD_OK, "Status published on %s", pdm_status_topic(c->m.status));
}

#define REPORT_HISTORY_DEFAULT 10
#define REPORT_HISTORY_MAX     50

struct recent_ctx {
    struct pdm_report_alert *out;
    size_t n, max;
    char (*ids)[PDM_ALERT_ID_MAX];
};

static void on_recent(void *ctx, const struct pdm_stored_alert *sa, int64_t ts_ms)
{
    struct recent_ctx *r = ctx;
    if (r->n >= r->max)
        return;
    snprintf(r->ids[r->n], PDM_ALERT_ID_MAX, "%s", sa->alert_id);
    r->out[r->n] = (struct pdm_report_alert){.alert_id = r->ids[r->n],
                                             .kind = pdm_service_alert_kind(sa->asset),
                                             .state = sa->state,
                                             .severity = sa->severity,
                                             .ts_ms = ts_ms,
                                             .seq = sa->seq};
    r->n++;
}

static void cmd_report(void *ctx, const struct pdm_cmd *cmd, struct pdm_cmd_result *res)
{
    struct pdm_commands *c = ctx;
    Pdm__V1__ReportRequest *m = pdm__v1__report_request__unpack(NULL, cmd->len, cmd->payload);
    if (!m) {
        pdm_cmd_set(res, PDM_CMD_BAD_PAYLOAD, "the payload is not a pdm.v1.ReportRequest");
        return;
    }
    const struct pdm_commands_cfg *cfg = &c->cfg;
    int only = -1;
    if (m->asset && *m->asset && (only = asset_index(&c->cfg, m->asset)) < 0) {
        pdm_cmd_set(res, PDM_CMD_UNKNOWN_ASSET, "no asset %.64s on this device", m->asset);
        pdm__v1__report_request__free_unpacked(m, NULL);
        return;
    }
    size_t hist = m->history ? m->history : REPORT_HISTORY_DEFAULT;
    hist = hist > REPORT_HISTORY_MAX ? REPORT_HISTORY_MAX : hist;
    /* a command, not the sample path: the report's parts are allocated for this call */
    uint32_t na = cfg->n_assets, ns = cfg->n_sensors;
    struct pdm_report_asset *ra = calloc(na + 1, sizeof(*ra));
    struct pdm_usage_view *uv = calloc(na + 1, sizeof(*uv));
    struct pdm_report_alert *open = calloc((size_t)(na + 1) * (ns + 2), sizeof(*open));
    struct pdm_report_alert *recent = calloc((size_t)(na + 1) * hist, sizeof(*recent));
    char(*ids)[PDM_ALERT_ID_MAX] = calloc((size_t)(na + 1) * hist, sizeof(*ids));
    struct pdm_status_sensor *sens = calloc(ns + 1, sizeof(*sens));
    int len = -ENOMEM, hist_err = 0; /* hist_err: a store failure reading recent alerts */
    size_t n = 0;
    if (!ra || !uv || !open || !recent || !ids || !sens)
        goto done;
    int64_t now = pdm_mono_ms();
    for (uint32_t i = 0; i < na; i++) {
        if (only >= 0 && (uint32_t)only != i)
            continue;
        const struct pdm_engine_asset *ea = &c->m.pipe->engine.assets[i];
        struct pdm_report_asset *r = &ra[n];
        struct pdm_report_alert *op = &open[(size_t)n * (ns + 2)];
        r->asset = cfg->assets[i].name;
        r->model = &cfg->assets[i].model;
        r->scored = ea->evals > 0;
        r->score = &ea->last;
        r->score_ts_ms = ea->last_ts_ms;
        r->input_sensors = &c->m.pipe->input_names[i * PDM_MODEL_MAX_INPUTS];
        r->usage = pdm_service_usage(c->m.service, i, &uv[n]) ? &uv[n] : NULL;
        r->open = op;
        /* open alerts: the asset's fault risk, maintenance, and faults of sensors it reads */
        r->n_open = pdm_service_open_alerts(c->m.service, i, now, op);
        struct recent_ctx rc = {&recent[n * hist], 0, hist, &ids[n * hist]};
        int hr =
            pdm_store_recent_alerts(c->m.store, cfg->assets[i].name, (int)hist, on_recent, &rc);
        if (hr < 0) {
            hist_err = hr;
            pdm_warn("report %s: cannot read the recent alerts of asset %s from the store (%s); "
                     "the report lists none for it",
                     cmd->request_id, cfg->assets[i].name, strerror(-hr));
        }
        r->recent = rc.out;
        r->n_recent = rc.n;
        n++;
    }
    for (uint32_t s = 0; s < ns; s++)
        sens[s] = (struct pdm_status_sensor){.sensor = cfg->sensors[s].name,
                                             .ok = c->m.pipe->health[s].ok,
                                             .reads = c->m.pipe->health[s].reads,
                                             .errors = c->m.pipe->health[s].errors,
                                             .last_error = c->m.pipe->health[s].last_error,
                                             .last_ok_ms = c->m.pipe->health[s].last_ok_ms};
    struct pdm_report_msg rm = {.device_id = cfg->device_id,
                                .request_id = cmd->request_id,
                                .agent_version = PDM_VERSION,
                                .ts_ms = pdm_wall_ms(),
                                .assets = ra,
                                .n_assets = n,
                                .sensors = sens,
                                .n_sensors = ns};
    len = pdm_encode_report(&rm, c->m.buf, c->m.buf_cap);
done:
    if (len < 0) {
        char e[64];
        pdm_cmd_set(res, PDM_CMD_INTERNAL_ERROR, "cannot build the report (%s)",
                    pdm_encode_why(len, c->m.buf_cap, e, sizeof(e)));
    } else {
        int rc = pdm_outbox_send(c->m.outbox, c->topic_report, c->m.buf, (size_t)len, 0);
        if (rc == -EAGAIN)
            pdm_cmd_set(res, PDM_CMD_BUSY, "too many messages in flight; send again");
        else if (rc != 0)
            pdm_cmd_set(res, PDM_CMD_INTERNAL_ERROR, "cannot publish the report (%s)",
                        strerror(-rc));
        else
            pdm_cmd_set(
                res, PDM_CMD_OK, "check-up report of %zu asset%s (%d bytes) published on %s%s%s", n,
                n == 1 ? "" : "s", len, c->topic_report,
                hist_err ? "; without recent alerts: cannot read them from the store, " : "",
                hist_err ? strerror(-hist_err) : "");
    }
    free(ra);
    free(uv);
    free(open);
    free(recent);
    free(ids);
    free(sens);
    pdm__v1__report_request__free_unpacked(m, NULL);
}

/* Every command the agent knows; later commands add a line here. */
static const struct pdm_cmd_def commands[] = {
    /* model and status are idempotent (an update already running is answered ok), so they work
     * retained; the others would act again at every reconnect */
    {"model", 1, cmd_model, 0},     {"baseline", 0, cmd_baseline, 1}, {"ack", 0, cmd_ack, 1},
    {"service", 0, cmd_service, 1}, {"status", 1, cmd_status, 0},     {"report", 0, cmd_report, 1},
};

void pdm_commands_handle(struct pdm_commands *c, const struct pdm_uplink_event *ev)
{
    static struct pdm_cmd cmd; /* static: the result's text and model list are 3 KiB */
    static struct pdm_cmd_result res;
    if (pdm_cmd_dispatch(commands, sizeof(commands) / sizeof(commands[0]), c, c->cfg.topic_prefix,
                         c->cfg.device_id, ev, &cmd, &res) != 0)
        return;
    if (!res.ok)
        pdm_control_note_error(c->m.control, pdm_wall_ms(), "command %s refused: %s: %.80s",
                               cmd.name, pdm_cmd_reason_name(res.reason), res.text);
    pdm_outbox_queue_result(c->m.outbox, &cmd, &res);
}
