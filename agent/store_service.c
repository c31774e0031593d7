/* The store's service tables (see store_int.h): usage counters, service visits,
 * acknowledgements, and the recent alerts of an asset (issue 6). */
#include "store_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "lib/clock.h"
#include "lib/log.h"

/* ---- usage counters, service visits, acknowledgements (issue 6) ---------------------------- */

int pdm_store_usage_slots(struct pdm_store *s, uint32_t n)
{
    if (s->usage)
        return -EALREADY;
    s->usage = calloc(n + 1, sizeof(*s->usage));
    s->usage_disk = calloc(n + 1, sizeof(*s->usage_disk));
    s->usage_asset = calloc(n + 1, sizeof(*s->usage_asset));
    if (!s->usage || !s->usage_disk || !s->usage_asset)
        return -ENOMEM;
    s->n_usage = n;
    return 0;
}

int pdm_store_usage_load(struct pdm_store *s, uint32_t slot, const char *asset,
                         struct pdm_usage_counts *out)
{
    if (slot >= s->n_usage || !asset || strlen(asset) > ASSET_MAX_LEN)
        return -EINVAL;
    memset(out, 0, sizeof(*out));
    sqlite3_stmt *st = s->st[ST_GET_USAGE];
    sqlite3_bind_text(st, 1, asset, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    int ret = 0;
    if (rc == SQLITE_ROW) {
        out->run_ms = (uint64_t)sqlite3_column_int64(st, 0);
        out->starts = (uint64_t)sqlite3_column_int64(st, 1);
        out->running = sqlite3_column_int(st, 2) != 0;
        out->svc_run_ms = (uint64_t)sqlite3_column_int64(st, 3);
        out->svc_starts = (uint64_t)sqlite3_column_int64(st, 4);
        out->svc_wall_ms = sqlite3_column_int64(st, 5);
        out->confirm_ms = sqlite3_column_int64(st, 6);
        out->obs_max_p = sqlite3_column_double(st, 7);
        out->obs_evals = (uint64_t)sqlite3_column_int64(st, 8);
        out->visit = (uint64_t)sqlite3_column_int64(st, 9);
    } else if (rc != SQLITE_DONE) {
        ret = store_fail(s, rc, "reading usage counters");
    }
    sqlite3_reset(st);
    snprintf(s->usage_asset[slot], sizeof(s->usage_asset[slot]), "%s", asset);
    s->usage[slot] = s->usage_disk[slot] = *out;
    return ret;
}

void pdm_store_usage_put(struct pdm_store *s, uint32_t slot, const struct pdm_usage_counts *c)
{
    if (slot < s->n_usage)
        s->usage[slot] = *c;
}

/* Runs one prepared write in the open transaction and commits everything durably. */
static int write_now(struct pdm_store *s, sqlite3_stmt *st, const char *what)
{
    int ret = store_txn_begin(s);
    if (ret == 0)
        ret = store_exec_stmt(s, st, what);
    if (ret == 0)
        return store_write_pending(s, what);
    store_check_txn_alive(s);
    return ret;
}

int pdm_store_add_visit(struct pdm_store *s, const char *asset, int64_t ts_ms, const char *ref,
                        const char *technician, const char *note, const struct pdm_usage_counts *c,
                        uint64_t *id)
{
    sqlite3_stmt *st = s->st[ST_PUT_VISIT];
    sqlite3_bind_text(st, 1, asset, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, ts_ms);
    sqlite3_bind_text(st, 3, ref ? ref : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, technician ? technician : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, note ? note : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, (sqlite3_int64)c->run_ms);
    sqlite3_bind_int64(st, 7, (sqlite3_int64)c->starts);
    int ret = store_txn_begin(s);
    if (ret == 0)
        ret = store_exec_stmt(s, st, "recording a service visit");
    if (ret != 0) {
        store_check_txn_alive(s);
        return ret;
    }
    *id = (uint64_t)sqlite3_last_insert_rowid(s->db);
    return 0; /* committed by the caller's pdm_store_commit, with the usage row it changes */
}

int pdm_store_set_visit_outcome(struct pdm_store *s, uint64_t id, int outcome, int64_t ts_ms,
                                double max_p)
{
    sqlite3_stmt *st = s->st[ST_SET_OUTCOME];
    sqlite3_bind_int64(st, 1, (sqlite3_int64)id);
    sqlite3_bind_int(st, 2, outcome);
    sqlite3_bind_int64(st, 3, ts_ms);
    sqlite3_bind_double(st, 4, max_p);
    return write_now(s, st, "recording a service outcome");
}

int pdm_store_put_ack(struct pdm_store *s, const char *alert_id, int64_t ts_ms)
{
    sqlite3_stmt *st = s->st[ST_PUT_ACK];
    sqlite3_bind_text(st, 1, alert_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, ts_ms);
    return write_now(s, st, "recording an acknowledgement");
}

int pdm_store_acked(struct pdm_store *s, const char *alert_id, int64_t *ts_ms)
{
    sqlite3_stmt *st = s->st[ST_GET_ACK];
    sqlite3_bind_text(st, 1, alert_id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    int ret = 0;
    if (rc == SQLITE_ROW) {
        ret = 1;
        if (ts_ms)
            *ts_ms = sqlite3_column_int64(st, 0);
    } else if (rc != SQLITE_DONE) {
        ret = store_fail(s, rc, "reading acknowledgements");
    }
    sqlite3_reset(st);
    return ret;
}

int pdm_store_alert_state(struct pdm_store *s, const char *alert_id, int *state)
{
    sqlite3_stmt *st = s->st[ST_ALERT_STATE];
    sqlite3_bind_text(st, 1, alert_id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    int ret = -ENOENT;
    if (rc == SQLITE_ROW) {
        *state = sqlite3_column_int(st, 0);
        ret = 0;
    } else if (rc != SQLITE_DONE) {
        ret = store_fail(s, rc, "looking up an alert");
    }
    sqlite3_reset(st);
    /* held alerts (writes failing) are newer than anything on disk */
    uint64_t best = 0;
    for (size_t i = 0; i < s->n_held; i++)
        if (strcmp(s->held[i].alert_id, alert_id) == 0 && s->held[i].seq > best) {
            best = s->held[i].seq;
            *state = s->held[i].state;
            ret = 0;
        }
    return ret;
}

int pdm_store_recent_alerts(struct pdm_store *s, const char *asset, int max, pdm_recent_alert_cb cb,
                            void *ctx)
{
    sqlite3_stmt *st = s->st[ST_RECENT_ALERTS];
    sqlite3_bind_text(st, 1, asset, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, max);
    int rc, n = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct pdm_stored_alert a;
        store_decode_alert(st, &a);
        cb(ctx, &a, sqlite3_column_int64(st, 5));
        n++;
    }
    int ret = rc == SQLITE_DONE ? n : store_fail(s, rc, "reading recent alerts");
    sqlite3_reset(st);
    return ret;
}
