#include "outbox.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control.h"
#include "lib/clock.h"
#include "drivers/bus_config.h"

#define PRUNE_INTERVAL_MS 10000  /* delivered rows beyond KEEP_DELIVERED are deleted */
#define KEEP_DELIVERED    100000 /* delivered rows kept for local history */

_Static_assert(PDM_PB_STR(PDM_MODEL_INFO_MAX) < 16384 && PDM_RESULT_MAX_BYTES < 16384,
               "two-byte length prefixes assumed in outbox.h");

int pdm_outbox_init(struct pdm_outbox *o, const struct pdm_outbox_cfg *cfg, struct pdm_store *store,
                    pdm_outbox_publish_fn publish, void *publish_ctx, struct pdm_control *control,
                    uint8_t *buf, size_t buf_cap)
{
    memset(o, 0, sizeof(*o));
    o->cfg = *cfg;
    o->store = store;
    o->publish = publish;
    o->publish_ctx = publish_ctx;
    o->control = control;
    o->buf = buf;
    o->buf_cap = buf_cap;
    snprintf(o->topic_alert, sizeof(o->topic_alert), "%s/%s/alert", cfg->topic_prefix,
             cfg->device_id);
    snprintf(o->topic_telemetry, sizeof(o->topic_telemetry), "%s/%s/telemetry", cfg->topic_prefix,
             cfg->device_id);
    if (pdm_cmd_result_topic(cfg->topic_prefix, cfg->device_id, o->topic_cmd_result,
                             sizeof(o->topic_cmd_result)) != 0) {
        pdm_err("topic_prefix %s: command topics too long", cfg->topic_prefix);
        return -ENAMETOOLONG;
    }
    o->rows = calloc(PDM_OUTBOX_BATCH_ROWS, sizeof(*o->rows));
    o->trows = calloc(PDM_OUTBOX_BATCH_ROWS, sizeof(*o->trows));
    if (!o->rows || !o->trows) {
        pdm_err("out of memory at start-up");
        return -ENOMEM;
    }
    return 0;
}

void pdm_outbox_free(struct pdm_outbox *o)
{
    free(o->rows);
    free(o->trows);
    o->rows = NULL;
    o->trows = NULL;
}

/* ---- the in-flight window ------------------------------------------------------------------ */

static struct pdm_outbox_inflight *inflight_find(struct pdm_outbox *o, uint64_t cookie)
{
    for (int i = 0; i < PDM_OUTBOX_MAX_INFLIGHT; i++)
        if (o->inflight[i].kind != PDM_OB_FREE && o->inflight[i].cookie == cookie)
            return &o->inflight[i];
    return NULL;
}

static int replay_inflight(const struct pdm_outbox *o)
{
    int n = 0;
    for (int i = 0; i < PDM_OUTBOX_MAX_INFLIGHT; i++)
        n += o->inflight[i].kind == PDM_OB_ROWS && o->inflight[i].hi <= o->replay_end;
    return n;
}

static struct pdm_outbox_inflight *inflight_slot(struct pdm_outbox *o)
{
    for (int i = 0; i < PDM_OUTBOX_MAX_INFLIGHT; i++)
        if (o->inflight[i].kind == PDM_OB_FREE)
            return &o->inflight[i];
    return NULL;
}

static int publish(struct pdm_outbox *o, enum pdm_outbox_kind kind, const char *topic,
                   const void *payload, size_t len, int retained, uint64_t lo, uint64_t hi,
                   uint32_t rows)
{
    struct pdm_outbox_inflight *slot = inflight_slot(o);
    if (!slot)
        return -EAGAIN;
    uint64_t cookie = ++o->next_cookie;
    int rc = o->publish(o->publish_ctx, topic, payload, len, retained, cookie);
    if (rc != 0)
        return rc;
    slot->kind = kind;
    slot->cookie = cookie;
    slot->lo = lo;
    slot->hi = hi;
    slot->rows = rows;
    return 0;
}

int pdm_outbox_send(struct pdm_outbox *o, const char *topic, const void *payload, size_t len,
                    int retained)
{
    return publish(o, PDM_OB_MESSAGE, topic, payload, len, retained, 0, 0, 0);
}

static void drop_inflight(struct pdm_outbox *o)
{
    memset(o->inflight, 0, sizeof(o->inflight));
    o->alert_cursor = 0;
    o->replay_cursor = 0;
    o->live_cursor = o->replay_end;
}

/* ---- publishing from the store ------------------------------------------------------------- */

struct alert_pub {
    struct pdm_outbox *o;
    int rc;
};

static int on_stored_alert(void *ctx, uint64_t seq, const void *payload, size_t len)
{
    struct alert_pub *p = ctx;
    struct pdm_outbox *o = p->o;
    if (seq <= o->replay_end && len + 2 <= o->buf_cap) {
        /* stored before this connection: say so, the backend sees an old ts_ms */
        memcpy(o->buf, payload, len);
        int rlen = pdm_encode_mark_replay(o->buf, len, o->buf_cap);
        if (rlen > 0) {
            payload = o->buf;
            len = (size_t)rlen;
        }
    }
    p->rc = publish(o, PDM_OB_ALERT, o->topic_alert, payload, len, 0, seq, seq, 0);
    if (p->rc == 0)
        o->alert_cursor = seq;
    return p->rc;
}

static const char *sensor_unit(const struct pdm_outbox *o, const char *name)
{
    for (uint32_t i = 0; i < o->cfg.n_sensors; i++)
        if (strcmp(o->cfg.sensors[i].name, name) == 0)
            return o->cfg.sensors[i].unit;
    return "";
}

/* Publishes the next batch of undelivered rows with *cursor < seq <= upto and advances
 * *cursor; returns 1 if one was published, 0 if nothing is due, or -errno (-EAGAIN when the
 * in-flight window is full). */
static int publish_rows(struct pdm_outbox *o, uint64_t *cursor, uint64_t upto, int replay)
{
    if (*cursor >= upto)
        return 0;
    int n = pdm_store_next_rows(o->store, *cursor, o->rows, PDM_OUTBOX_BATCH_ROWS);
    if (n < 0)
        return n;
    int used = 0;
    while (used < n && o->rows[used].seq <= upto)
        used++;
    if (used == 0) {
        *cursor = upto;
        return 0;
    }
    for (int i = 0; i < used; i++) {
        const struct pdm_row *r = &o->rows[i];
        const char *name = pdm_store_id_name(o->store, (enum pdm_row_kind)r->kind, r->ref);
        o->trows[i] = (struct pdm_telemetry_row){
            .seq = r->seq,
            .ts_ms = r->ts_ms,
            .value = r->value,
            .kind = r->kind,
            .quality = r->quality,
            .name = name ? name : "?",
            .unit = r->kind == PDM_ROW_READING && name ? sensor_unit(o, name) : "",
        };
    }
    int len = pdm_encode_telemetry(o->cfg.device_id, pdm_wall_ms(), o->trows, (size_t)used, replay,
                                   o->buf, o->buf_cap);
    if (len < 0)
        return len;
    uint64_t lo = o->rows[0].seq, hi = o->rows[used - 1].seq;
    int rc =
        publish(o, PDM_OB_ROWS, o->topic_telemetry, o->buf, (size_t)len, 0, lo, hi, (uint32_t)used);
    if (rc != 0)
        return rc;
    *cursor = hi;
    return 1;
}

void pdm_outbox_pump(struct pdm_outbox *o)
{
    if (!o->connected)
        return;
    /* command answers first: small, and someone is waiting for them */
    while (o->results_len) {
        struct pdm_outbox_result *r = &o->results[o->results_head];
        int rc = publish(o, PDM_OB_MESSAGE, o->topic_cmd_result, r->buf, r->len, 0, 0, 0, 0);
        if (rc == -EAGAIN)
            return;
        if (rc != 0)
            pdm_warn("command answer not published (%s); the backend will have to ask again",
                     strerror(-rc));
        r->len = 0;
        o->results_head = (o->results_head + 1) % PDM_OUTBOX_PENDING_RESULTS;
        o->results_len--;
    }
    /* A failed commit took some delivery marks with it: those alerts and rows are undelivered
     * again although the cursors are past them. Once writes work again (not while they fail,
     * or every failed commit would start the round again), go round from the start once; the
     * backend drops what it already has by seq. */
    struct pdm_store_stats st;
    if (pdm_store_stats(o->store, &st) == 0 && st.marks_undone != o->marks_undone &&
        !st.write_failing) {
        o->marks_undone = st.marks_undone;
        o->alert_cursor = 0;
        o->replay_cursor = 0;
        o->live_cursor = o->replay_end;
        pdm_info("store: delivery records were lost with a failed commit; re-sending what is "
                 "still undelivered");
    }
    for (;;) {
        struct alert_pub p = {o, 0};
        int n = pdm_store_next_alerts(o->store, o->alert_cursor, 1, on_stored_alert, &p);
        if (n < 0) {
            pdm_err("store: cannot read undelivered alerts (%s); will retry", strerror(-n));
            return;
        }
        if (n == 0)
            break;
        if (p.rc != 0)
            return; /* window full (or not connected): PUBACKs will call us again */
    }
    /* Rows are published only once committed: a row the broker has seen must never be lost
     * to a crash, or its seq could be handed out again. */
    if (o->live_cursor < o->rows_upto) {
        int rc = pdm_store_commit(o->store);
        if (rc != 0) {
            pdm_complain(&o->store_complaint, pdm_mono_ms(),
                         "store: commit failed (%s); readings are held in memory and telemetry "
                         "waits until a commit succeeds; alerts are still published",
                         strerror(-rc));
            return;
        }
    }
    for (;;) {
        int rc = publish_rows(o, &o->live_cursor, o->rows_upto, 0);
        if (rc == 0 && replay_inflight(o) >= PDM_OUTBOX_REPLAY_INFLIGHT)
            return; /* the next PUBACK calls us again */
        if (rc == 0) {
            rc = publish_rows(o, &o->replay_cursor, o->replay_end, 1);
            if (rc == 0 && o->replaying) {
                o->replaying = 0;
                pdm_debug("backlog handed over: waiting for the broker's acknowledgements");
            }
        }
        if (rc <= 0) {
            if (rc < 0 && rc != -EAGAIN && rc != -ENOTCONN)
                pdm_err("telemetry: cannot publish (%s); will retry", strerror(-rc));
            return;
        }
    }
}

void pdm_outbox_rows_due(struct pdm_outbox *o)
{
    struct pdm_store_stats st;
    if (pdm_store_stats(o->store, &st) == 0 && st.next_seq > 0)
        o->rows_upto = st.next_seq - 1;
}

void pdm_outbox_queue_result(struct pdm_outbox *o, const struct pdm_cmd *cmd,
                             const struct pdm_cmd_result *res)
{
    if (o->results_len == PDM_OUTBOX_PENDING_RESULTS) {
        pdm_warn("command answers: %d waiting already; the oldest is dropped",
                 PDM_OUTBOX_PENDING_RESULTS);
        o->results[o->results_head].len = 0;
        o->results_head = (o->results_head + 1) % PDM_OUTBOX_PENDING_RESULTS;
        o->results_len--;
    }
    struct pdm_outbox_result *r =
        &o->results[(o->results_head + o->results_len) % PDM_OUTBOX_PENDING_RESULTS];
    int len =
        pdm_cmd_encode_result(cmd, res, o->cfg.device_id, pdm_wall_ms(), r->buf, sizeof(r->buf));
    if (len <= 0) {
        char e[64];
        pdm_err("command %s: cannot encode its answer (%s)", cmd->name,
                len == 0 ? "empty" : pdm_encode_why(len, sizeof(r->buf), e, sizeof(e)));
        return;
    }
    r->len = (size_t)len;
    o->results_len++;
    pdm_outbox_pump(o);
}

/* ---- connection events --------------------------------------------------------------------- */

void pdm_outbox_connected(struct pdm_outbox *o, int64_t now)
{
    o->connected = 1;
    struct pdm_store_stats st;
    if (pdm_store_commit(o->store) == 0 && pdm_store_stats(o->store, &st) == 0) {
        o->replay_end = st.next_seq ? st.next_seq - 1 : 0;
        o->rows_upto = o->replay_end;
        o->replaying = st.rows_pending > 0;
        o->backlog_rows = st.rows_pending;
        o->backlog_acked = 0;
        o->backlog_t0 = now;
        if (st.alerts_pending || st.rows_pending)
            pdm_info("backlog: %" PRIu64 " alerts, %" PRIu64 " readings/scores to deliver",
                     st.alerts_pending, st.rows_pending);
    }
    drop_inflight(o);
}

void pdm_outbox_disconnected(struct pdm_outbox *o)
{
    o->connected = 0;
    drop_inflight(o);
}

void pdm_outbox_delivered(struct pdm_outbox *o, uint64_t cookie)
{
    struct pdm_outbox_inflight *f = inflight_find(o, cookie);
    if (!f)
        return; /* from a previous connection: it will be sent again, dedup by seq */
    int rc = 0;
    if (f->kind == PDM_OB_ALERT)
        rc = pdm_store_mark_alert_delivered(o->store, f->lo);
    else if (f->kind == PDM_OB_ROWS)
        rc = pdm_store_mark_rows_delivered(o->store, f->lo, f->hi);
    if (f->kind == PDM_OB_ROWS && f->hi <= o->replay_end && o->backlog_rows) {
        o->backlog_acked += f->rows;
        if (o->backlog_acked >= o->backlog_rows) {
            double s = (double)(pdm_mono_ms() - o->backlog_t0) / 1000.0;
            pdm_log(o->backlog_rows >= PDM_OUTBOX_BATCH_ROWS ? PDM_LOG_INFO : PDM_LOG_DEBUG,
                    "backlog delivered: %" PRIu64 " readings/scores in %.1f s (%.0f/s)",
                    o->backlog_acked, s, s > 0 ? (double)o->backlog_acked / s : 0.0);
            o->backlog_rows = 0;
        }
    }
    if (rc != 0)
        pdm_err("store: cannot record delivery of seq %" PRIu64 "..%" PRIu64
                " (%s); it will be sent again",
                f->lo, f->hi, strerror(-rc));
    f->kind = PDM_OB_FREE;
}

void pdm_outbox_send_failed(struct pdm_outbox *o, uint64_t cookie)
{
    struct pdm_outbox_inflight *f = inflight_find(o, cookie);
    if (!f)
        return;
    if (f->kind == PDM_OB_ALERT && o->alert_cursor >= f->lo)
        o->alert_cursor = f->lo - 1;
    else if (f->kind == PDM_OB_ROWS && f->lo > o->replay_end && o->live_cursor >= f->lo)
        o->live_cursor = f->lo - 1;
    else if (f->kind == PDM_OB_ROWS && f->lo <= o->replay_end && o->replay_cursor >= f->lo)
        o->replay_cursor = f->lo - 1;
    f->kind = PDM_OB_FREE;
}

/* ---- timers -------------------------------------------------------------------------------- */

static int64_t commit_timer(void *ctx, int64_t now)
{
    struct pdm_outbox *o = ctx;
    int rc = pdm_store_commit(o->store);
    if (rc != 0)
        pdm_control_note_error(o->control, pdm_wall_ms(), "store: commit failed (%s)",
                               strerror(-rc));
    if (rc != 0)
        pdm_complain(&o->store_complaint, now,
                     "store: commit failed (%s); sampling and scoring go on, readings are "
                     "held in memory and the commit is retried every %d ms",
                     strerror(-rc), o->cfg.commit_interval_ms);
    else if (o->store_complaint.active) {
        pdm_release(&o->store_complaint, "store: commits succeed again");
        pdm_outbox_pump(o); /* re-sends what lost its delivery mark meanwhile, see pump() */
    }
    return now + o->cfg.commit_interval_ms;
}

static int64_t telemetry_timer(void *ctx, int64_t now)
{
    struct pdm_outbox *o = ctx;
    pdm_outbox_rows_due(o);
    pdm_outbox_pump(o);
    return now + (int64_t)o->cfg.telemetry_interval_s * 1000;
}

static int64_t prune_timer(void *ctx, int64_t now)
{
    struct pdm_outbox *o = ctx;
    int rc = pdm_store_prune(o->store, KEEP_DELIVERED);
    if (rc != 0)
        pdm_warn("store: pruning delivered rows failed (%s)", strerror(-rc));
    return now + PRUNE_INTERVAL_MS;
}

int pdm_outbox_add_timers(struct pdm_outbox *o, struct pdm_timers *t, int64_t now)
{
    if (pdm_timer_add(t, "commit", now + o->cfg.commit_interval_ms, commit_timer, o) < 0 ||
        pdm_timer_add(t, "telemetry", now + (int64_t)o->cfg.telemetry_interval_s * 1000,
                      telemetry_timer, o) < 0)
        return -ENOSPC;
    return 0;
}

int pdm_outbox_add_prune_timer(struct pdm_outbox *o, struct pdm_timers *t, int64_t now)
{
    return pdm_timer_add(t, "prune", now + PRUNE_INTERVAL_MS, prune_timer, o) < 0 ? -ENOSPC : 0;
}
