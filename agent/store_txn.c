/* The store's transactions (see store.c and store_int.h): seq reservation, the holding area,
 * writes and delivery marks, and what the outbox reads back. */
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

/* ---- seq reservation --------------------------------------------------------------------- */

/* Creates or removes UNSAFE_FILE. Best effort: an empty file usually still fits on a full
 * disk (an inode and a directory entry); if not, the gap protection is lost and we say so. */
static void mark_unsafe(struct pdm_store *s, int on)
{
    if (on == s->unsafe_marked)
        return;
    char path[PATH_MAX + 32];
    snprintf(path, sizeof(path), "%s/" UNSAFE_FILE, s->dir);
    if (on) {
        int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0) {
            pdm_warn("store %s: cannot create %s (%s): if the agent crashes before the held "
                     "alerts are written, their seq may be used again",
                     s->dir, UNSAFE_FILE, strerror(errno));
            return;
        }
        close(fd);
        int dfd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
    } else if (unlink(path) != 0 && errno != ENOENT) {
        return; /* stays marked: the next open skips ahead, which is safe */
    }
    s->unsafe_marked = on;
}

/* Writes "reserved up to R" durably: temp file, fsync, rename, fsync of the folder, so that
 * after a power cut the file holds either the old or the new value, never a torn one. */
int store_write_reserve(struct pdm_store *s, uint64_t r)
{
    char path[PATH_MAX + 32], tmp[PATH_MAX + 32], text[64];
    snprintf(path, sizeof(path), "%s/" RESERVE_FILE, s->dir);
    snprintf(tmp, sizeof(tmp), "%s/" RESERVE_FILE ".tmp", s->dir);
    int len = snprintf(text, sizeof(text), "reserved up to %llu\n", (unsigned long long)r);
    int e = 0;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        e = errno;
    else {
        if (write(fd, text, (size_t)len) != len)
            e = errno ? errno : EIO;
        else if (fsync(fd) != 0)
            e = errno;
        if (close(fd) != 0 && !e)
            e = errno;
        if (!e && rename(tmp, path) != 0)
            e = errno;
        if (e)
            unlink(tmp);
    }
    if (!e) {
        int dfd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0 || fsync(dfd) != 0)
            e = errno;
        if (dfd >= 0)
            close(dfd);
    }
    if (e) {
        pdm_complain(&s->reserve_failing, pdm_mono_ms(),
                     "store %s: cannot write the seq reservation (%s); seqs are still handed out, "
                     "but if the database is lost before this succeeds a seq may repeat",
                     path, strerror(e));
        return -e;
    }
    s->reserved = r;
    pdm_release(&s->reserve_failing, "store %s: seq reservation written again", path);
    return 0;
}

/* 0 and *r when the file holds a reservation, -ENOENT when there is none, -EBADMSG when it
 * cannot be read as one. */
int store_read_reserve(struct pdm_store *s, uint64_t *r)
{
    char path[PATH_MAX + 32];
    snprintf(path, sizeof(path), "%s/" RESERVE_FILE, s->dir);
    FILE *f = fopen(path, "re");
    if (!f)
        return -errno;
    unsigned long long v = 0;
    int ok = fscanf(f, "reserved up to %llu", &v) == 1;
    fclose(f);
    if (!ok)
        return -EBADMSG;
    *r = v;
    return 0;
}

static uint64_t take_seq(struct pdm_store *s)
{
    uint64_t n = s->next_seq++;
    if (n > s->reserved && n >= s->reserve_retry) {
        if (store_write_reserve(s, n - 1 + SEQ_RESERVE_STEP) != 0)
            s->reserve_retry = n + SEQ_RETRY_STEP; /* do not fsync on every seq while failing */
    }
    return n;
}

/* ---- holding area ------------------------------------------------------------------------ */

static struct held_row *ring_at(struct pdm_store *s, size_t i)
{
    return &s->ring[(s->ring_head + i) & (HOLD_ROWS - 1)];
}

static void ring_clear(struct pdm_store *s)
{
    s->ring_head = s->ring_n = 0; /* restart at slot 0: only the first pages stay resident */
}

static struct held_alert *held_find(struct pdm_store *s, uint64_t seq)
{
    for (size_t i = 0; i < s->n_held; i++)
        if (s->held[i].seq == seq)
            return &s->held[i];
    return NULL;
}

static void held_remove(struct pdm_store *s, struct held_alert *h)
{
    struct held_alert *last = &s->held[s->n_held - 1];
    if (h != last)
        memcpy(h, last, sizeof(*h));
    s->n_held--;
}

/* ---- transactions ------------------------------------------------------------------------ */

static void txn_reset(struct pdm_store *s)
{
    s->in_txn = 0;
    s->txn_rows_marked = s->txn_alerts_marked = 0;
}

/* The open transaction is gone (SQLite rolled it back after an error, or we did): undo the
 * marks it carried. Staged rows and held alerts are in memory and stay. */
static void txn_lost(struct pdm_store *s)
{
    s->rows_pending += s->txn_rows_marked;
    s->alerts_pending += s->txn_alerts_marked;
    s->count[C_ROWS_DELIVERED] -= s->txn_rows_marked;
    s->count[C_ALERTS_DELIVERED] -= s->txn_alerts_marked;
    if (s->txn_rows_marked || s->txn_alerts_marked)
        s->marks_undone++;
    if (s->txn_rows_marked || s->txn_alerts_marked)
        pdm_warn("store %s: transaction rolled back: delivery marks of %llu rows and %llu alerts "
                 "undone, those messages will be sent again",
                 s->path, (unsigned long long)s->txn_rows_marked,
                 (unsigned long long)s->txn_alerts_marked);
    txn_reset(s);
}

/* After a failed statement inside the transaction: did SQLite roll the whole thing back? */
void store_check_txn_alive(struct pdm_store *s)
{
    if (s->in_txn && sqlite3_get_autocommit(s->db))
        txn_lost(s);
}

void store_rollback(struct pdm_store *s)
{
    if (!sqlite3_get_autocommit(s->db)) {
        sqlite3_step(s->st[ST_ROLLBACK]);
        sqlite3_reset(s->st[ST_ROLLBACK]);
    }
}

int store_txn_begin(struct pdm_store *s)
{
    if (s->in_txn)
        return 0;
    int ret = store_exec_stmt(s, s->st[ST_BEGIN], "starting a transaction");
    if (ret == 0)
        s->in_txn = 1;
    return ret;
}

int store_set_meta(struct pdm_store *s, const char *key, uint64_t v)
{
    sqlite3_stmt *st = s->st[ST_SET_META];
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)v);
    return store_exec_stmt(s, st, "recording counters");
}

/* Writes the seq high-water and the totals that changed, inside the open transaction. */
int store_write_meta(struct pdm_store *s)
{
    int ret = 0;
    uint64_t hw = s->next_seq - 1;
    if (hw > s->hw_on_disk)
        ret = store_set_meta(s, "seq_hw", hw);
    for (int i = 0; ret == 0 && i < C_COUNT; i++)
        if (s->count[i] != s->count_on_disk[i])
            ret = store_set_meta(s, STORE_COUNTER_KEY[i], s->count[i]);
    return ret;
}

void store_meta_written(struct pdm_store *s)
{
    uint64_t hw = s->next_seq - 1;
    if (hw > s->hw_on_disk)
        s->hw_on_disk = hw;
    memcpy(s->count_on_disk, s->count, sizeof(s->count));
}

static int insert_alert(struct pdm_store *s, uint64_t seq, const char *asset, const char *alert_id,
                        int state, int severity, int64_t ts_ms, const void *payload, size_t len)
{
    sqlite3_stmt *st = s->st[ST_PUT_ALERT];
    sqlite3_bind_int64(st, 1, (sqlite3_int64)seq);
    sqlite3_bind_text(st, 2, asset, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, alert_id, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 4, state);
    sqlite3_bind_int(st, 5, severity);
    sqlite3_bind_int64(st, 6, ts_ms);
    sqlite3_bind_blob(st, 7, payload ? payload : "", (int)len, SQLITE_STATIC);
    return store_exec_stmt(s, st, "storing an alert");
}

static int insert_row(struct pdm_store *s, const struct held_row *r)
{
    sqlite3_stmt *st = s->st[ST_PUT_ROW];
    sqlite3_bind_int64(st, 1, (sqlite3_int64)r->seq);
    sqlite3_bind_int(st, 2, r->kind);
    sqlite3_bind_int64(st, 3, r->ref);
    sqlite3_bind_int64(st, 4, r->ts_ms);
    sqlite3_bind_double(st, 5, r->value);
    sqlite3_bind_int(st, 6, r->quality);
    return store_exec_stmt(s, st, "storing a reading");
}

int store_usage_dirty(const struct pdm_store *s)
{
    return s->n_usage && memcmp(s->usage, s->usage_disk, s->n_usage * sizeof(*s->usage)) != 0;
}

/* The usage rows that changed since the last commit, inside the open transaction. */
static int write_usage(struct pdm_store *s)
{
    int ret = 0;
    for (uint32_t i = 0; ret == 0 && i < s->n_usage; i++) {
        const struct pdm_usage_counts *c = &s->usage[i];
        if (!s->usage_asset[i][0] || memcmp(c, &s->usage_disk[i], sizeof(*c)) == 0)
            continue;
        sqlite3_stmt *st = s->st[ST_PUT_USAGE];
        sqlite3_bind_text(st, 1, s->usage_asset[i], -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)c->run_ms);
        sqlite3_bind_int64(st, 3, (sqlite3_int64)c->starts);
        sqlite3_bind_int(st, 4, c->running);
        sqlite3_bind_int64(st, 5, (sqlite3_int64)c->svc_run_ms);
        sqlite3_bind_int64(st, 6, (sqlite3_int64)c->svc_starts);
        sqlite3_bind_int64(st, 7, c->svc_wall_ms);
        sqlite3_bind_int64(st, 8, c->confirm_ms);
        sqlite3_bind_double(st, 9, c->obs_max_p);
        sqlite3_bind_int64(st, 10, (sqlite3_int64)c->obs_evals);
        sqlite3_bind_int64(st, 11, (sqlite3_int64)c->visit);
        ret = store_exec_stmt(s, st, "storing usage counters");
    }
    return ret;
}

/* Writes everything staged or held (alerts first, then rows, then seq_hw and totals) and
 * commits. On failure nothing is lost from memory: the rows stay staged, the alerts held, and
 * the next call retries. */
int store_write_pending(struct pdm_store *s, const char *what)
{
    int ret = store_txn_begin(s);
    for (size_t i = 0; ret == 0 && i < s->n_held; i++) {
        struct held_alert *h = &s->held[i];
        ret = insert_alert(s, h->seq, h->asset, h->alert_id, h->state, h->severity, h->ts_ms,
                           h->payload, h->len);
        if (ret == -EEXIST)
            ret = 0; /* already on disk (a commit that reported failure but got through) */
    }
    for (size_t i = 0; ret == 0 && i < s->ring_n; i++)
        ret = insert_row(s, ring_at(s, i));
    if (ret == 0)
        ret = write_usage(s);
    if (ret == 0)
        ret = store_write_meta(s);
    if (ret == 0) {
        int rc = sqlite3_step(s->st[ST_COMMIT]);
        if (rc != SQLITE_DONE)
            ret = store_fail(s, rc, what);
        sqlite3_reset(s->st[ST_COMMIT]);
    }
    if (ret != 0) {
        /* Give the transaction up whatever the reason (even BUSY): the staged rows would be
         * inserted twice by a retry that found them still in it. */
        store_rollback(s);
        txn_lost(s);
        s->write_failing = 1;
        return ret;
    }
    size_t rows = s->ring_n, alerts = s->n_held;
    store_meta_written(s);
    if (s->n_usage)
        memcpy(s->usage_disk, s->usage, s->n_usage * sizeof(*s->usage));
    txn_reset(s);
    ring_clear(s);
    s->n_held = 0;
    mark_unsafe(s, 0);
    if (s->write_failing) {
        s->write_failing = 0;
        pdm_release(&s->failing,
                    "store %s: writes succeed again; %zu readings and %zu alerts held in memory "
                    "are now on disk",
                    s->path, rows, alerts);
    }
    return 0;
}

/* For writes that need no transaction of their own (prune): they ride along in the open
 * transaction, or commit by themselves. */
static int after_write(struct pdm_store *s, int ret)
{
    if (ret != 0)
        store_check_txn_alive(s);
    return ret;
}

/* ---- writing ----------------------------------------------------------------------------- */

uint64_t pdm_store_alloc_seq(struct pdm_store *s)
{
    return take_seq(s);
}

int pdm_store_put_row(struct pdm_store *s, enum pdm_row_kind kind, uint32_t ref, int64_t ts_ms,
                      double value, uint64_t *seq)
{
    return pdm_store_put_row_q(s, kind, ref, ts_ms, value, 0, seq);
}

int pdm_store_put_row_q(struct pdm_store *s, enum pdm_row_kind kind, uint32_t ref, int64_t ts_ms,
                        double value, uint8_t quality, uint64_t *seq)
{
    if (!store_kind_ok((int)kind))
        return -EINVAL;
    if (s->ring_n == HOLD_ROWS) {
        /* Staging is full: a caller that never commits gets an automatic commit; while writes
         * fail, the oldest held reading makes room (counted, persisted with the next commit). */
        if (s->write_failing || store_commit_all(s, "committing a full staging area") != 0) {
            s->ring_head = (s->ring_head + 1) & (HOLD_ROWS - 1);
            s->ring_n--;
            s->rows_pending--;
            s->count[C_ROWS_DROPPED]++;
            pdm_complain(&s->failing, pdm_mono_ms(),
                         "store %s: writes failing and %d readings held in memory: dropping the "
                         "oldest (%llu dropped so far); alerts are kept",
                         s->path, HOLD_ROWS, (unsigned long long)s->count[C_ROWS_DROPPED]);
        }
    }
    uint64_t n = take_seq(s);
    *ring_at(s, s->ring_n++) = (struct held_row){.seq = n,
                                                 .ts_ms = ts_ms,
                                                 .value = value,
                                                 .ref = ref,
                                                 .kind = (uint8_t)kind,
                                                 .quality = quality};
    s->rows_pending++;
    if (seq)
        *seq = n;
    return 0;
}

int pdm_store_commit(struct pdm_store *s)
{
    return store_commit_all(s, "committing");
}

/* Keeps an alert that could not be written. 0, or -ENOSPC/-EMSGSIZE when it cannot be held. */
static int hold_alert(struct pdm_store *s, uint64_t seq, const char *asset, const char *alert_id,
                      int state, int severity, int64_t ts_ms, const void *payload, size_t len)
{
    if (held_find(s, seq))
        return 0;
    if (s->n_held == HOLD_ALERTS || len > HOLD_PAYLOAD) {
        pdm_err("store %s: alert %s (seq %llu) could not be written and %s: it is lost", s->path,
                alert_id, (unsigned long long)seq,
                len > HOLD_PAYLOAD ? "is too large to hold in memory"
                                   : "the memory holding area is full");
        return len > HOLD_PAYLOAD ? -EMSGSIZE : -ENOSPC;
    }
    struct held_alert *h = &s->held[s->n_held++];
    h->seq = seq;
    h->ts_ms = ts_ms;
    h->state = state;
    h->severity = severity;
    h->len = (uint32_t)len;
    snprintf(h->asset, sizeof(h->asset), "%s", asset);
    snprintf(h->alert_id, sizeof(h->alert_id), "%s", alert_id);
    if (len)
        memcpy(h->payload, payload, len);
    return 0;
}

int pdm_store_put_alert(struct pdm_store *s, uint64_t seq, const char *asset, const char *alert_id,
                        int state, int severity, int64_t ts_ms, const void *payload, size_t len)
{
    if (seq == 0 || seq >= s->next_seq || !asset || strlen(asset) > ASSET_MAX_LEN || !alert_id ||
        strlen(alert_id) > ALERT_ID_MAX_LEN || (!payload && len) || len > INT_MAX)
        return -EINVAL;
    if (held_find(s, seq))
        return -EEXIST;
    int ret = store_txn_begin(s);
    if (ret == 0) {
        ret = insert_alert(s, seq, asset, alert_id, state, severity, ts_ms, payload, len);
        if (ret == -EEXIST || ret == -EINVAL || ret == -EMSGSIZE)
            return ret; /* a caller bug, not a write failure: the transaction goes on */
    }
    if (ret == 0) {
        s->alerts_pending++;
        ret = store_write_pending(s, "committing an alert");
        if (ret == 0) {
            store_enforce_limits(s);
            return 0;
        }
        s->alerts_pending--; /* rolled back with the transaction; counted again if held */
    } else {
        store_check_txn_alive(s);
        s->write_failing = 1;
    }
    /* Not on disk: hold it, and serve it from memory until a later commit writes it. */
    if (hold_alert(s, seq, asset, alert_id, state, severity, ts_ms, payload, len) == 0) {
        s->alerts_pending++;
        mark_unsafe(s, 1);
    }
    return ret;
}

int pdm_store_mark_alert_delivered(struct pdm_store *s, uint64_t seq)
{
    struct held_alert *h = held_find(s, seq);
    if (h) {
        held_remove(s, h);
        s->alerts_pending--;
        s->count[C_ALERTS_DELIVERED]++; /* persisted with the next commit */
        return 0;
    }
    /* Outside a transaction the mark commits on its own, with the total. */
    int own = !s->in_txn && !s->ring_n;
    int ret = store_txn_begin(s);
    if (ret)
        return ret;
    sqlite3_stmt *st = s->st[ST_MARK_ALERT];
    sqlite3_bind_int64(st, 1, (sqlite3_int64)(seq > INT64_MAX ? INT64_MAX : seq));
    ret = store_exec_stmt(s, st, "marking an alert delivered");
    if (ret) {
        store_check_txn_alive(s);
        return ret;
    }
    uint64_t n = (uint64_t)sqlite3_changes(s->db);
    s->alerts_pending -= n;
    s->count[C_ALERTS_DELIVERED] += n;
    s->txn_alerts_marked += n;
    return own ? store_write_pending(s, "committing a delivery mark") : 0;
}

int pdm_store_mark_rows_delivered(struct pdm_store *s, uint64_t lo, uint64_t hi)
{
    if (lo > hi)
        return 0;
    int own = !s->in_txn && !s->ring_n;
    int ret = store_txn_begin(s);
    if (ret)
        return ret;
    sqlite3_stmt *st = s->st[ST_MARK_ROWS];
    sqlite3_bind_int64(st, 1, (sqlite3_int64)(lo > INT64_MAX ? INT64_MAX : lo));
    sqlite3_bind_int64(st, 2, (sqlite3_int64)(hi > INT64_MAX ? INT64_MAX : hi));
    ret = store_exec_stmt(s, st, "marking rows delivered");
    if (ret) {
        store_check_txn_alive(s);
        return ret;
    }
    uint64_t n = (uint64_t)sqlite3_changes(s->db);
    s->rows_pending -= n;
    s->count[C_ROWS_DELIVERED] += n;
    s->txn_rows_marked += n;
    return own ? store_write_pending(s, "committing delivery marks") : 0;
}

int pdm_store_prune(struct pdm_store *s, uint64_t keep_rows)
{
    sqlite3_stmt *st = s->st[ST_PRUNE];
    sqlite3_bind_int64(st, 1, (sqlite3_int64)(keep_rows > INT64_MAX ? INT64_MAX : keep_rows));
    sqlite3_bind_int(st, 2, PRUNE_MAX_ROWS);
    return after_write(s, store_exec_stmt(s, st, "pruning delivered rows"));
}

/* ---- reading ----------------------------------------------------------------------------- */

/* The held alert with the lowest seq in (after, below), or NULL. At most HOLD_ALERTS compares. */
static const struct held_alert *held_next(const struct pdm_store *s, uint64_t after, uint64_t below)
{
    const struct held_alert *best = NULL;
    for (size_t i = 0; i < s->n_held; i++) {
        const struct held_alert *h = &s->held[i];
        if (h->seq > after && h->seq < below && (!best || h->seq < best->seq))
            best = h;
    }
    return best;
}

/* Alerts on disk and alerts held in memory, merged in seq order. */
int pdm_store_next_alerts(struct pdm_store *s, uint64_t after_seq, int max, pdm_alert_row_cb cb,
                          void *ctx)
{
    if (!cb)
        return -EINVAL;
    if (max <= 0)
        return 0;
    sqlite3_stmt *st = s->st[ST_NEXT_ALERTS];
    sqlite3_bind_int64(st, 1, (sqlite3_int64)(after_seq > INT64_MAX ? INT64_MAX : after_seq));
    sqlite3_bind_int64(st, 2, NO_UPPER_BOUND);
    sqlite3_bind_int(st, 3, max);
    int n = 0, rc = SQLITE_DONE, stop = 0;
    uint64_t last = after_seq;
    while (n < max && !stop && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        uint64_t seq = (uint64_t)sqlite3_column_int64(st, 0);
        const struct held_alert *h;
        while (n < max && !stop && (h = held_next(s, last, seq)) != NULL) {
            n++;
            last = h->seq;
            stop = cb(ctx, h->seq, h->payload, h->len) != 0;
        }
        if (n == max || stop)
            break;
        const void *p = sqlite3_column_blob(st, 1);
        size_t len = (size_t)sqlite3_column_bytes(st, 1);
        n++;
        last = seq;
        stop = cb(ctx, seq, p, len) != 0;
    }
    int ret = 0;
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        ret = store_fail(s, rc, "reading undelivered alerts");
    /* reset ends the read snapshot; a statement left open would stall WAL checkpoints */
    sqlite3_reset(st);
    const struct held_alert *h;
    while (n < max && !stop && (h = held_next(s, last, UINT64_MAX)) != NULL) {
        n++;
        last = h->seq;
        stop = cb(ctx, h->seq, h->payload, h->len) != 0;
    }
    return ret && n == 0 ? ret : n;
}

int pdm_store_next_rows(struct pdm_store *s, uint64_t after_seq, struct pdm_row *rows, int max)
{
    if (max <= 0)
        return 0;
    if (!rows)
        return -EINVAL;
    sqlite3_stmt *st = s->st[ST_NEXT_ROWS];
    sqlite3_bind_int64(st, 1, (sqlite3_int64)(after_seq > INT64_MAX ? INT64_MAX : after_seq));
    sqlite3_bind_int64(st, 2, NO_UPPER_BOUND);
    sqlite3_bind_int(st, 3, max);
    int n = 0, rc = SQLITE_DONE;
    while (n < max && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        store_decode_row(st, &rows[n]);
        n++;
    }
    int ret = n;
    if (n < max && rc != SQLITE_DONE)
        ret = store_fail(s, rc, "reading undelivered rows");
    sqlite3_reset(st);
    return ret;
}

static int oldest(struct pdm_store *s, sqlite3_stmt *st, int64_t *ts, int *found)
{
    int rc = sqlite3_step(st);
    int ret = 0;
    *found = 0;
    if (rc == SQLITE_ROW) {
        *ts = sqlite3_column_int64(st, 0);
        *found = 1;
    } else if (rc != SQLITE_DONE) {
        ret = store_fail(s, rc, "reading the oldest undelivered entry");
    }
    sqlite3_reset(st);
    return ret;
}

int pdm_store_stats(struct pdm_store *s, struct pdm_store_stats *st)
{
    int64_t row_ts = 0, alert_ts = 0;
    int have_row, have_alert;
    int ret = oldest(s, s->st[ST_OLDEST_ROW], &row_ts, &have_row);
    if (ret == 0)
        ret = oldest(s, s->st[ST_OLDEST_ALERT], &alert_ts, &have_alert);
    if (ret)
        return ret;
    memset(st, 0, sizeof(*st));
    st->rows_pending = s->rows_pending;
    st->alerts_pending = s->alerts_pending;
    st->next_seq = s->next_seq;
    /* "Oldest" is the first undelivered entry in seq (storage) order, found by an index seek;
     * timestamps follow that order except across a wall-clock step. Memory counts too. */
    if (!have_row && s->ring_n) {
        row_ts = ring_at(s, 0)->ts_ms;
        have_row = 1;
    }
    for (size_t i = 0; i < s->n_held; i++) {
        if (!have_alert || s->held[i].ts_ms < alert_ts)
            alert_ts = s->held[i].ts_ms;
        have_alert = 1;
    }
    if (have_row && have_alert)
        st->oldest_pending_ms = row_ts < alert_ts ? row_ts : alert_ts;
    else if (have_row)
        st->oldest_pending_ms = row_ts;
    else if (have_alert)
        st->oldest_pending_ms = alert_ts;
    st->db_bytes = store_file_bytes(s->path) + store_file_bytes(s->wal_path);
    st->max_bytes = s->max_bytes;
    st->rows_delivered = s->count[C_ROWS_DELIVERED];
    st->alerts_delivered = s->count[C_ALERTS_DELIVERED];
    st->rows_dropped = s->count[C_ROWS_DROPPED];
    st->rows_held = s->write_failing ? s->ring_n : 0;
    st->alerts_held = s->n_held;
    st->write_failing = s->write_failing;
    st->marks_undone = s->marks_undone;
    st->recovered = s->recovered;
    if (s->recovered)
        snprintf(st->recovered_path, sizeof(st->recovered_path), "%s", s->recovered_path);
    return 0;
}

int pdm_store_open_alerts(struct pdm_store *s, pdm_open_alert_cb cb, void *ctx)
{
    if (!cb)
        return -EINVAL;
    sqlite3_stmt *st = s->st[ST_OPEN_ALERTS];
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (sqlite3_column_int(st, 3) == STATE_CLEARED)
            continue;
        struct pdm_stored_alert a;
        store_decode_alert(st, &a);
        cb(ctx, &a);
    }
    int ret = 0;
    if (rc != SQLITE_DONE)
        ret = store_fail(s, rc, "reading open alerts");
    sqlite3_reset(st);
    return ret;
}
