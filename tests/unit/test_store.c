/* agent/store.c against real SQLite files in a private temporary folder. */
#define _XOPEN_SOURCE 700 /* nftw() for cleaning up the temporary folder */
#include "lib/clock.h"
#include "agent/store.h"
#include "check.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <sqlite3.h>
#include <stdint.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/statvfs.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char g_base[64];

/* A fresh, empty folder per test under the mkdtemp base. */
static const char *fresh_dir(const char *name)
{
    static char dir[128];
    snprintf(dir, sizeof(dir), "%s/%s", g_base, name);
    if (mkdir(dir, 0755) != 0) {
        perror(dir);
        exit(2);
    }
    return dir;
}

static struct pdm_store *open_ok(const char *dir)
{
    struct pdm_store *s = NULL;
    char err[512] = "";
    int rc = pdm_store_open(&s, dir, err, sizeof(err));
    CHECK_MSG(rc == 0 && s, "open %s: %d %s", dir, rc, err);
    if (!s)
        exit(1); /* every later step would crash on NULL */
    return s;
}

/* Reads one integer with a separate connection, as an operator's sqlite3 shell would. */
static long long db_int(const char *dir, const char *sql)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/pdm-agent.db", dir);
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    long long v = -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

static void db_exec(const char *dir, const char *sql)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/pdm-agent.db", dir);
    sqlite3 *db = NULL;
    CHECK(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK);
    CHECK(sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(db);
}

static uint64_t next_seq(struct pdm_store *s)
{
    struct pdm_store_stats st;
    CHECK_INT(pdm_store_stats(s, &st), 0);
    return st.next_seq;
}

/* Collects next_alerts callbacks. */
struct alert_seen {
    int n, stop_at; /* stop_at: 1-based call that returns nonzero, 0 = never */
    uint64_t seq[16];
    char payload[16][32];
};

static int on_alert(void *ctx, uint64_t seq, const void *payload, size_t len)
{
    struct alert_seen *a = ctx;
    if (a->n < 16) {
        a->seq[a->n] = seq;
        snprintf(a->payload[a->n], sizeof(a->payload[0]), "%.*s", (int)len, (const char *)payload);
    }
    a->n++;
    return a->stop_at && a->n == a->stop_at ? -EAGAIN : 0;
}

static int put_alert(struct pdm_store *s, const char *asset, const char *id, int state, int64_t ts,
                     uint64_t *seq_out)
{
    uint64_t seq = pdm_store_alloc_seq(s);
    char payload[32];
    snprintf(payload, sizeof(payload), "alert-%llu", (unsigned long long)seq);
    if (seq_out)
        *seq_out = seq;
    return pdm_store_put_alert(s, seq, asset, id, state, state == 3 ? 1 : 2, ts, payload,
                               strlen(payload));
}

/* ---- tests -------------------------------------------------------------------------------- */

static void test_seq_shared_and_monotonic(void)
{
    const char *dir = fresh_dir("seq");
    struct pdm_store *s = open_ok(dir);
    CHECK_INT(next_seq(s), 1);
    uint64_t a = 0, b = 0, c = 0, al = 0;
    CHECK_INT(pdm_store_put_row(s, PDM_ROW_READING, 1, 1000, 1.5, &a), 0);
    CHECK_INT(pdm_store_put_row(s, PDM_ROW_SCORE, 1, 1000, 0.25, &b), 0);
    CHECK_INT(put_alert(s, "pump-1", "pump-1/1", 1, 1001, &al), 0);
    CHECK_INT(pdm_store_put_row(s, PDM_ROW_READING, 2, 1002, 2.5, &c), 0);
    CHECK_INT(pdm_store_commit(s), 0);
    CHECK_INT(a, 1);
    CHECK_INT(b, 2);
    CHECK_INT(al, 3); /* the alert takes its seq from the same counter */
    CHECK_INT(c, 4);
    CHECK_INT(next_seq(s), 5);
    CHECK_INT(pdm_store_commit(s), 0); /* nothing pending: no-op */
    /* a put_alert with a seq that was never allocated is a caller bug */
    CHECK_INT(pdm_store_put_alert(s, 99, "pump-1", "x", 1, 1, 0, "p", 1), -EINVAL);
    /* the same seq twice is refused, not overwritten */
    CHECK(pdm_store_put_alert(s, al, "pump-1", "x", 1, 1, 0, "p", 1) < 0);
    CHECK_INT(pdm_store_put_row(s, 7, 1, 0, 0, NULL), -EINVAL);
    pdm_store_close(s);
}

static void test_seq_survives_reopen_and_prune(void)
{
    const char *dir = fresh_dir("reopen");
    struct pdm_store *s = open_ok(dir);
    uint64_t seq = 0;
    for (int i = 0; i < 10; i++)
        CHECK_INT(pdm_store_put_row(s, PDM_ROW_READING, 1, 1000 + i, i, &seq), 0);
    pdm_store_close(s); /* close commits what is pending */

    s = open_ok(dir);
    CHECK_INT(next_seq(s), 11);
    struct pdm_row rows[16];
    CHECK_INT(pdm_store_next_rows(s, 0, rows, 16), 10);
    CHECK_INT(pdm_store_mark_rows_delivered(s, 1, 10), 0);
    CHECK_INT(pdm_store_prune(s, 0), 0);
    pdm_store_close(s);
    CHECK_INT(db_int(dir, "SELECT COUNT(*) FROM rows"), 0);

    /* every row is gone: only seq_hw remembers where the counter was */
    s = open_ok(dir);
    CHECK_INT(next_seq(s), 11);
    CHECK_INT(pdm_store_put_row(s, PDM_ROW_READING, 1, 2000, 1, &seq), 0);
    CHECK_INT(seq, 11);
    /* a seq handed out for an alert that was then stored also survives a prune of all rows */
    uint64_t al = 0;
    CHECK_INT(put_alert(s, "a", "a/1", 1, 2001, &al), 0);
    CHECK_INT(al, 12);
    CHECK_INT(pdm_store_mark_rows_delivered(s, 11, 11), 0);
    CHECK_INT(pdm_store_prune(s, 0), 0);
    pdm_store_close(s);
    s = open_ok(dir);
    CHECK_INT(next_seq(s), 13);
    pdm_store_close(s);
}

/* A child stores rows and an alert and dies without closing (no commit of later rows, no
 * checkpoint). What put_alert committed must be there; the rest must not. */
static void test_crash_keeps_committed(void)
{
    const char *dir = fresh_dir("crash");
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        struct pdm_store *s = NULL;
        char err[256];
        if (pdm_store_open(&s, dir, err, sizeof(err)) != 0)
            _exit(3);
        int bad = 0;
        for (int i = 0; i < 5; i++) /* seq 1..5, committed on the "tick" */
            bad |= pdm_store_put_row(s, PDM_ROW_READING, 1, 100 + i, i, NULL);
        bad |= pdm_store_commit(s);
        bad |= pdm_store_mark_rows_delivered(s, 1, 2); /* outside a transaction: durable */
        for (int i = 0; i < 3; i++)                    /* seq 6..8, committed with the alert */
            bad |= pdm_store_put_row(s, PDM_ROW_READING, 1, 200 + i, i, NULL);
        bad |= put_alert(s, "pump-1", "pump-1/7", 1, 210, NULL); /* seq 9 */
        for (int i = 0; i < 4; i++)                              /* seq 10..13: never committed */
            bad |= pdm_store_put_row(s, PDM_ROW_READING, 1, 300 + i, i, NULL);
        bad |= pdm_store_mark_rows_delivered(s, 3, 3); /* joins the lost transaction */
        _exit(bad ? 4 : 0);
    }
    int status = 0;
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
    CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);

    struct pdm_store *s = open_ok(dir);
    struct pdm_row rows[32];
    int n = pdm_store_next_rows(s, 0, rows, 32);
    CHECK_INT(n, 6); /* 3..5 (3's mark was lost with its transaction) and 6..8 */
    if (n == 6) {
        CHECK_INT(rows[0].seq, 3);
        CHECK_INT(rows[2].seq, 5);
        CHECK_INT(rows[3].seq, 6);
        CHECK_INT(rows[5].seq, 8);
        CHECK_INT(rows[5].ts_ms, 202);
    }
    struct alert_seen a = {0};
    CHECK_INT(pdm_store_next_alerts(s, 0, 10, on_alert, &a), 1);
    CHECK_INT(a.seq[0], 9);
    CHECK_STR(a.payload[0], "alert-9");
    /* seqs 10..13 were never on disk nor published, so handing them out again is safe */
    CHECK_INT(next_seq(s), 10);
    pdm_store_close(s);
}

static void test_uncommitted_rows_not_published(void)
{
    const char *dir = fresh_dir("visible");
    struct pdm_store *s = open_ok(dir);
    struct pdm_row rows[8];
    CHECK_INT(pdm_store_put_row(s, PDM_ROW_READING, 1, 1, 1, NULL), 0);
    CHECK_INT(pdm_store_commit(s), 0);
    CHECK_INT(pdm_store_put_row(s, PDM_ROW_READING, 1, 2, 2, NULL), 0);
    CHECK_INT(pdm_store_next_rows(s, 0, rows, 8), 1); /* seq 2 is not on disk yet */
    CHECK_INT(pdm_store_commit(s), 0);
    CHECK_INT(pdm_store_next_rows(s, 0, rows, 8), 2);
    pdm_store_close(s);
}

static void test_delivery_order(void)
{
    const char *dir = fresh_dir("order");
    struct pdm_store *s = open_ok(dir);
    uint64_t alerts[3];
    /* rows 1..4, alert 5, rows 6..8, alert 9, row 10, alert 11 */
    for (int i = 1; i <= 4; i++)
        CHECK_INT(pdm_store_put_row(s, PDM_ROW_READING, 1, i * 10, i, NULL), 0);
    CHECK_INT(put_alert(s, "a", "a/1", 1, 50, &alerts[0]), 0);
    for (int i = 6; i <= 8; i++)
        CHECK_INT(pdm_store_put_row(s, PDM_ROW_SCORE, 2, i * 10, i / 10.0, NULL), 0);
    CHECK_INT(put_alert(s, "a", "a/1", 2, 90, &alerts[1]), 0);
    CHECK_INT(pdm_store_put_row(s, PDM_ROW_READING, 1, 100, 10, NULL), 0);
    CHECK_INT(put_alert(s, "a", "a/1", 3, 110, &alerts[2]), 0);
    CHECK_INT(alerts[0], 5);
    CHECK_INT(alerts[2], 11);

    struct pdm_row rows[16];
    int n = pdm_store_next_rows(s, 0, rows, 3);
    CHECK_INT(n, 3);
    CHECK_INT(rows[0].seq, 1);
    CHECK_INT(rows[2].seq, 3);
    CHECK_INT(rows[0].kind, PDM_ROW_READING);
    CHECK_INT(rows[0].ref, 1);
    CHECK_INT(rows[0].ts_ms, 10);
    CHECK_NEAR(rows[2].value, 3, 0);

    CHECK_INT(pdm_store_mark_rows_delivered(s, 2, 3), 0);
    CHECK_INT(pdm_store_mark_rows_delivered(s, 2, 3), 0); /* a repeated PUBACK is harmless */
    n = pdm_store_next_rows(s, 0, rows, 16);
    CHECK_INT(n, 6); /* 1, 4, 6, 7, 8, 10 */
    if (n == 6) {
        uint64_t want[] = {1, 4, 6, 7, 8, 10};
        for (int i = 0; i < 6; i++)
            CHECK_INT(rows[i].seq, want[i]);
        CHECK_INT(rows[2].kind, PDM_ROW_SCORE);
        CHECK_NEAR(rows[2].value, 0.6, 1e-12);
    }
    n = pdm_store_next_rows(s, 6, rows, 16); /* after_seq */
    CHECK_INT(n, 3);
    CHECK_INT(rows[0].seq, 7);
    CHECK_INT(pdm_store_next_rows(s, 10, rows, 16), 0);

    struct alert_seen a = {0};
    CHECK_INT(pdm_store_next_alerts(s, 0, 10, on_alert, &a), 3);
    CHECK_INT(a.seq[0], 5);
    CHECK_INT(a.seq[1], 9);
    CHECK_INT(a.seq[2], 11);
    CHECK_STR(a.payload[1], "alert-9");
    CHECK_INT(pdm_store_mark_alert_delivered(s, 9), 0);
    memset(&a, 0, sizeof(a));
    CHECK_INT(pdm_store_next_alerts(s, 0, 10, on_alert, &a), 2);
    CHECK_INT(a.seq[1], 11);
    memset(&a, 0, sizeof(a));
    CHECK_INT(pdm_store_next_alerts(s, 5, 10, on_alert, &a), 1);
    CHECK_INT(a.seq[0], 11);
    memset(&a, 0, sizeof(a));
    CHECK_INT(pdm_store_next_alerts(s, 0, 1, on_alert, &a), 1); /* max respected */
    CHECK_INT(a.n, 1);
    /* a callback that refuses (outbox full) stops the walk */
    memset(&a, 0, sizeof(a));
    a.stop_at = 1;
    CHECK_INT(pdm_store_next_alerts(s, 0, 10, on_alert, &a), 1);
    CHECK_INT(a.n, 1);
    pdm_store_close(s);

    /* delivery marks are durable */
    s = open_ok(dir);
    CHECK_INT(pdm_store_next_rows(s, 0, rows, 16), 6);
    memset(&a, 0, sizeof(a));
    CHECK_INT(pdm_store_next_alerts(s, 0, 10, on_alert, &a), 2);
    pdm_store_close(s);
}

struct open_seen {
    int n;
    struct pdm_stored_alert a[8];
};

static void on_open(void *ctx, const struct pdm_stored_alert *a)
{
    struct open_seen *o = ctx;
    if (o->n < 8)
        o->a[o->n] = *a;
    o->n++;
}

static void test_open_alerts(void)
{
    const char *dir = fresh_dir("open");
    struct pdm_store *s = open_ok(dir);
    struct open_seen o = {0};
    CHECK_INT(pdm_store_open_alerts(s, on_open, &o), 0);
    CHECK_INT(o.n, 0);
    uint64_t last_fan = 0;
    /* fan: RAISED, UPDATED -> open, as UPDATED; pump: RAISED, CLEARED -> closed;
     * motor: RAISED, CLEARED, RAISED again with a new id -> open with the new id */
    CHECK_INT(put_alert(s, "fan", "fan/1", 1, 10, NULL), 0);
    CHECK_INT(put_alert(s, "pump", "pump/1", 1, 11, NULL), 0);
    CHECK_INT(put_alert(s, "motor", "motor/1", 1, 12, NULL), 0);
    CHECK_INT(put_alert(s, "fan", "fan/1", 2, 13, &last_fan), 0);
    CHECK_INT(put_alert(s, "pump", "pump/1", 3, 14, NULL), 0);
    CHECK_INT(put_alert(s, "motor", "motor/1", 3, 15, NULL), 0);
    CHECK_INT(put_alert(s, "motor", "motor/2", 1, 16, NULL), 0);
    pdm_store_close(s);

    s = open_ok(dir);
    CHECK_INT(pdm_store_open_alerts(s, on_open, &o), 0);
    CHECK_INT(o.n, 2);
    int fan = -1, motor = -1;
    for (int i = 0; i < o.n && i < 8; i++) {
        if (strcmp(o.a[i].asset, "fan") == 0)
            fan = i;
        if (strcmp(o.a[i].asset, "motor") == 0)
            motor = i;
    }
    CHECK(fan >= 0 && motor >= 0);
    if (fan >= 0) {
        CHECK_STR(o.a[fan].alert_id, "fan/1");
        CHECK_INT(o.a[fan].state, 2);
        CHECK_INT(o.a[fan].severity, 2);
        CHECK_INT(o.a[fan].seq, last_fan);
    }
    if (motor >= 0) {
        CHECK_STR(o.a[motor].alert_id, "motor/2");
        CHECK_INT(o.a[motor].state, 1);
    }
    /* the fan clears: only the motor stays open */
    CHECK_INT(put_alert(s, "fan", "fan/1", 3, 20, NULL), 0);
    memset(&o, 0, sizeof(o));
    CHECK_INT(pdm_store_open_alerts(s, on_open, &o), 0);
    CHECK_INT(o.n, 1);
    CHECK_STR(o.a[0].asset, "motor");
    /* asset names and ids longer than pdm_stored_alert can hold are refused at put time */
    char long_asset[80];
    memset(long_asset, 'x', sizeof(long_asset) - 1);
    long_asset[sizeof(long_asset) - 1] = '\0';
    CHECK_INT(put_alert(s, long_asset, "x/1", 1, 30, NULL), -EINVAL);
    pdm_store_close(s);
}

static void test_stats(void)
{
    const char *dir = fresh_dir("stats");
    struct pdm_store *s = open_ok(dir);
    struct pdm_store_stats st;
    CHECK_INT(pdm_store_stats(s, &st), 0);
    CHECK_INT(st.rows_pending, 0);
    CHECK_INT(st.alerts_pending, 0);
    CHECK_INT(st.oldest_pending_ms, 0);
    CHECK_INT(st.next_seq, 1);

    for (int i = 0; i < 5; i++)
        CHECK_INT(pdm_store_put_row(s, PDM_ROW_READING, 1, 5000 + i, i, NULL), 0);
    CHECK_INT(put_alert(s, "a", "a/1", 1, 4000, NULL), 0); /* seq 6, stamped earlier */
    CHECK_INT(pdm_store_put_row(s, PDM_ROW_READING, 1, 6000, 0, NULL), 0); /* uncommitted */
    CHECK_INT(pdm_store_stats(s, &st), 0);
    CHECK_INT(st.rows_pending, 6); /* undelivered includes the open transaction */
    CHECK_INT(st.alerts_pending, 1);
    CHECK_INT(st.oldest_pending_ms, 4000);
    CHECK_INT(st.next_seq, 8);

    CHECK_INT(pdm_store_mark_alert_delivered(s, 6), 0);
    CHECK_INT(pdm_store_mark_rows_delivered(s, 1, 2), 0);
    CHECK_INT(pdm_store_stats(s, &st), 0);
    CHECK_INT(st.rows_pending, 4);
    CHECK_INT(st.alerts_pending, 0);
    CHECK_INT(st.oldest_pending_ms, 5002);
    pdm_store_close(s);

    /* the counters kept in memory agree with the file after a restart */
    s = open_ok(dir);
    CHECK_INT(pdm_store_stats(s, &st), 0);
    CHECK_INT(st.rows_pending, 4);
    CHECK_INT(st.alerts_pending, 0);
    CHECK_INT(st.oldest_pending_ms, 5002);
    CHECK_INT(pdm_store_mark_rows_delivered(s, 0, 100), 0);
    CHECK_INT(pdm_store_stats(s, &st), 0);
    CHECK_INT(st.rows_pending, 0);
    CHECK_INT(st.oldest_pending_ms, 0);
    pdm_store_close(s);
}

static void test_prune(void)
{
    const char *dir = fresh_dir("prune");
    struct pdm_store *s = open_ok(dir);
    for (int i = 1; i <= 20; i++)
        CHECK_INT(pdm_store_put_row(s, PDM_ROW_READING, 1, i, i, NULL), 0);
    CHECK_INT(pdm_store_commit(s), 0);
    CHECK_INT(pdm_store_mark_rows_delivered(s, 3, 12), 0); /* 1, 2 and 13..20 undelivered */
    CHECK_INT(pdm_store_prune(s, 4), 0);
    CHECK_INT(pdm_store_prune(s, 4), 0); /* idempotent */
    pdm_store_close(s);
    /* kept: the 4 newest delivered (9..12) and every undelivered row */
    CHECK_INT(db_int(dir, "SELECT COUNT(*) FROM rows"), 14);
    CHECK_INT(db_int(dir, "SELECT MIN(seq) FROM rows WHERE delivered = 1"), 9);
    CHECK_INT(db_int(dir, "SELECT COUNT(*) FROM rows WHERE delivered = 0"), 10);
    s = open_ok(dir);
    CHECK_INT(pdm_store_prune(s, 100), 0); /* fewer delivered than kept: nothing goes */
    pdm_store_close(s);
    CHECK_INT(db_int(dir, "SELECT COUNT(*) FROM rows"), 14);

    /* one call deletes at most 20,000 rows (a bounded pause), oldest first; repeated calls
     * finish the job */
    s = open_ok(dir);
    int put_errors = 0;
    for (int i = 0; i < 50000; i++) /* seq 21..50020 */
        put_errors += pdm_store_put_row(s, PDM_ROW_READING, 1, i, i, NULL) != 0;
    CHECK_INT(put_errors, 0);
    CHECK_INT(pdm_store_commit(s), 0);
    CHECK_INT(pdm_store_mark_rows_delivered(s, 21, 50020), 0);
    CHECK_INT(pdm_store_prune(s, 0), 0);
    CHECK_INT(pdm_store_commit(s), 0);
    pdm_store_close(s);
    CHECK_INT(db_int(dir, "SELECT COUNT(*) FROM rows WHERE delivered = 1"), 50004 - 20000);
    /* delivered were 9..12 and 21..50020; the oldest 20,000 of them went: 9..12, 21..20016 */
    CHECK_INT(db_int(dir, "SELECT MIN(seq) FROM rows WHERE delivered = 1"), 20017);
    s = open_ok(dir);
    CHECK_INT(pdm_store_prune(s, 0), 0);
    CHECK_INT(pdm_store_prune(s, 0), 0);
    CHECK_INT(pdm_store_commit(s), 0);
    pdm_store_close(s);
    CHECK_INT(db_int(dir, "SELECT COUNT(*) FROM rows WHERE delivered = 1"), 0);
    CHECK_INT(db_int(dir, "SELECT COUNT(*) FROM rows WHERE delivered = 0"), 10);
}

static void test_names(void)
{
    const char *dir = fresh_dir("names");
    struct pdm_store *s = open_ok(dir);
    uint32_t t = 0, p = 0, t2 = 0, asset = 0;
    CHECK_INT(pdm_store_name_id(s, PDM_ROW_READING, "temp", &t), 0);
    CHECK_INT(pdm_store_name_id(s, PDM_ROW_READING, "pressure", &p), 0);
    CHECK_INT(pdm_store_name_id(s, PDM_ROW_READING, "temp", &t2), 0);
    CHECK_INT(pdm_store_name_id(s, PDM_ROW_SCORE, "temp", &asset), 0); /* other kind */
    CHECK(t != 0 && p != 0 && t != p);
    CHECK_INT(t2, t);
    CHECK_STR(pdm_store_id_name(s, PDM_ROW_READING, p), "pressure");
    CHECK_STR(pdm_store_id_name(s, PDM_ROW_SCORE, asset), "temp");
    CHECK(pdm_store_id_name(s, PDM_ROW_READING, 999) == NULL);
    CHECK_INT(pdm_store_name_id(s, PDM_ROW_READING, "", &t2), -EINVAL);
    /* a name added while readings are pending does not lose them */
    CHECK_INT(pdm_store_put_row(s, PDM_ROW_READING, t, 1, 1, NULL), 0);
    uint32_t v = 0;
    CHECK_INT(pdm_store_name_id(s, PDM_ROW_READING, "vibration", &v), 0);
    CHECK_INT(pdm_store_put_row(s, PDM_ROW_READING, v, 2, 2, NULL), 0);
    pdm_store_close(s);

    s = open_ok(dir);
    uint32_t again = 0;
    CHECK_INT(pdm_store_name_id(s, PDM_ROW_READING, "pressure", &again), 0);
    CHECK_INT(again, p); /* stable across restarts */
    CHECK_STR(pdm_store_id_name(s, PDM_ROW_READING, v), "vibration");
    uint32_t fresh = 0;
    CHECK_INT(pdm_store_name_id(s, PDM_ROW_READING, "current", &fresh), 0);
    CHECK(fresh != t && fresh != p && fresh != v);
    struct pdm_row rows[4];
    CHECK_INT(pdm_store_next_rows(s, 0, rows, 4), 2);
    pdm_store_close(s);
}

static void test_newer_version_refused(void)
{
    const char *dir = fresh_dir("newer");
    struct pdm_store *s = open_ok(dir);
    CHECK_INT(pdm_store_put_row(s, PDM_ROW_READING, 1, 1, 1, NULL), 0);
    pdm_store_close(s);
    db_exec(dir, "PRAGMA user_version = 2");

    char err[512] = "";
    s = NULL;
    int rc = pdm_store_open(&s, dir, err, sizeof(err));
    CHECK_INT(rc, -EPROTO);
    CHECK(s == NULL);
    CHECK_MSG(strstr(err, dir) && strstr(err, "pdm-agent.db"), "err: %s", err);
    CHECK_MSG(strstr(err, "version 2") && strstr(err, "newer"), "err: %s", err);
    /* and it left the file alone */
    CHECK_INT(db_int(dir, "PRAGMA user_version"), 2);
    CHECK_INT(db_int(dir, "SELECT COUNT(*) FROM rows"), 1);
}

/* A file that is not a database at all is moved aside and a fresh buffer started. */
static void test_not_a_database(void)
{
    const char *dir = fresh_dir("garbage");
    char path[256];
    snprintf(path, sizeof(path), "%s/pdm-agent.db", dir);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (!f)
        return;
    for (int i = 0; i < 200; i++)
        fputs("this is not an SQLite database. ", f);
    fclose(f);
    struct pdm_store *s = open_ok(dir);
    struct pdm_store_stats st;
    CHECK_INT(pdm_store_stats(s, &st), 0);
    CHECK_INT(st.recovered, 1);
    CHECK_MSG(strstr(st.recovered_path, "pdm-agent.db.corrupt-") != NULL, "moved to %s",
              st.recovered_path);
    struct stat sb;
    CHECK(stat(st.recovered_path, &sb) == 0 && sb.st_size == 200 * 32); /* kept as it was */
    CHECK_INT(pdm_store_put_row(s, PDM_ROW_READING, 1, 1, 1, NULL), 0);
    CHECK_INT(pdm_store_commit(s), 0);
    pdm_store_close(s);
    CHECK_INT(db_int(dir, "SELECT COUNT(*) FROM rows"), 1);
}

/* Opens dir in a child running as an unprivileged user (root ignores permissions); returns the
 * open's result and copies its message into err. */
static int open_as_nobody(const char *dir, char *err, size_t errlen)
{
    int fds[2];
    if (pipe(fds) != 0)
        return -999;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0))
            _exit(99);
        struct pdm_store *s = NULL;
        char msg[512] = "";
        int rc = pdm_store_open(&s, dir, msg, sizeof(msg));
        if (s)
            pdm_store_close(s);
        if (write(fds[1], msg, strlen(msg)) < 0)
            _exit(98);
        _exit(rc < 0 ? -rc : 0);
    }
    close(fds[1]);
    ssize_t n = read(fds[0], err, errlen - 1);
    err[n > 0 ? n : 0] = '\0';
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? -WEXITSTATUS(status) : -998;
}

static void test_unwritable_dir(void)
{
    /* missing folder */
    char missing[128];
    snprintf(missing, sizeof(missing), "%s/does-not-exist", g_base);
    struct pdm_store *s = NULL;
    char err[512] = "";
    int rc = pdm_store_open(&s, missing, err, sizeof(err));
    CHECK_INT(rc, -ENOENT);
    CHECK(s == NULL);
    CHECK_MSG(strstr(err, missing) && strstr(err, "No such file"), "err: %s", err);

    /* a folder the agent's user may not write */
    const char *dir = fresh_dir("readonly");
    CHECK(chmod(g_base, 0755) == 0); /* let the unprivileged child reach it */
    CHECK(chmod(dir, 0555) == 0);
    rc = open_as_nobody(dir, err, sizeof(err));
    CHECK_INT(rc, -EACCES);
    CHECK_MSG(strstr(err, dir) && strstr(err, "pdm-agent.db") && strstr(err, "Permission denied"),
              "err: %s", err);
    CHECK(chmod(dir, 0755) == 0);
    CHECK(chmod(g_base, 0700) == 0);
}

/* Fault injection: a child caps its file size (RLIMIT_FSIZE) so the WAL cannot grow, keeps
 * writing until the store reports a failure, lifts the cap and goes on. The failure must be
 * reported (logged with the path), the counters must match the file afterwards and writing
 * must work again. Log lines go to a file the parent reads. */
static void test_write_failure_recovers(void)
{
    const char *dir = fresh_dir("efbig");
    char logpath[256];
    snprintf(logpath, sizeof(logpath), "%s/log.txt", dir);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0 || dup2(fd, 2) < 0)
            _exit(10);
        signal(SIGXFSZ, SIG_IGN); /* writes past the cap fail with EFBIG instead */
        struct pdm_store *s = NULL;
        char err[256];
        if (pdm_store_open(&s, dir, err, sizeof(err)) != 0)
            _exit(11);
        for (int i = 0; i < 1000; i++)
            pdm_store_put_row(s, PDM_ROW_READING, 1, i, i, NULL);
        if (pdm_store_commit(s) != 0)
            _exit(12);
        struct rlimit rl;
        getrlimit(RLIMIT_FSIZE, &rl);
        struct rlimit cap = {.rlim_cur = 256 * 1024, .rlim_max = rl.rlim_max};
        /* a delivery mark made while readings are staged rides on the next commit; when that
         * commit fails the mark is undone, and stats say so (the agent then re-sends) */
        struct pdm_store_stats st0;
        if (pdm_store_stats(s, &st0) != 0 || st0.marks_undone != 0)
            _exit(23);
        pdm_store_put_row(s, PDM_ROW_READING, 1, 5, 5, NULL);
        if (pdm_store_mark_rows_delivered(s, 1, 10) != 0)
            _exit(24);
        setrlimit(RLIMIT_FSIZE, &cap);
        for (int i = 0; i < 20000; i++) /* enough to outgrow the capped WAL */
            pdm_store_put_row(s, PDM_ROW_READING, 1, i, i, NULL);
        int undone_rc = pdm_store_commit(s);
        if (pdm_store_stats(s, &st0) != 0 || st0.marks_undone == 0)
            _exit(25); /* the commit failed but nobody is told the marks are gone */
        long long put = 1000 + 20001;
        if (undone_rc == 0)
            _exit(26); /* the cap did not bite on that commit: the check above proves nothing */
        long long marked = 0; /* rows 1..10 are undelivered again */
        int rc = 0;
        for (int i = 0; i < 100000 && rc == 0; i++) {
            rc = pdm_store_put_row(s, PDM_ROW_READING, 1, i, i, NULL);
            put += rc == 0;
            if (rc == 0 && i % 1000 == 999)
                rc = pdm_store_commit(s);
        }
        if (rc == 0)
            _exit(13); /* the cap never bit: the test proves nothing */
        struct pdm_store_stats st;
        if (pdm_store_stats(s, &st) != 0 || !st.write_failing || st.rows_held == 0)
            _exit(18);
        /* an alert raised while writes fail is held, and still reaches the outbox */
        uint64_t aseq = 0;
        if (put_alert(s, "pump-1", "pump-1/9", 1, 5, &aseq) == 0)
            _exit(19); /* must report that it is not on disk */
        struct alert_seen a = {0};
        if (pdm_store_stats(s, &st) != 0 || st.alerts_held != 1 ||
            pdm_store_next_alerts(s, 0, 10, on_alert, &a) != 1 || a.seq[0] != aseq)
            _exit(20);
        setrlimit(RLIMIT_FSIZE, &rl);
        if (pdm_store_commit(s) != 0) /* the retry writes everything held */
            _exit(21);
        if (pdm_store_stats(s, &st) != 0 || st.write_failing || st.rows_held || st.alerts_held)
            _exit(14);
        long long on_disk = db_int(dir, "SELECT COUNT(*) FROM rows WHERE delivered = 0");
        if (on_disk != put - marked || (long long)st.rows_pending != on_disk ||
            st.rows_dropped != 0)
            _exit(15); /* nothing lost */
        if (db_int(dir, "SELECT COUNT(*) FROM alerts WHERE delivered = 0") != 1)
            _exit(22);
        uint64_t seq = 0;
        if (pdm_store_put_row(s, PDM_ROW_READING, 1, 7, 7, &seq) != 0 || pdm_store_commit(s) != 0)
            _exit(16);
        if (seq < st.next_seq)
            _exit(17); /* seqs never go back, not even after a rollback */
        pdm_store_close(s);
        _exit(0);
    }
    int status = 0;
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
    CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d (exit %d)", status,
              WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    char log[4096] = "";
    FILE *f = fopen(logpath, "r");
    if (f) {
        size_t n = fread(log, 1, sizeof(log) - 1, f);
        log[n] = '\0';
        fclose(f);
    }
    char dbpath[256];
    snprintf(dbpath, sizeof(dbpath), "%s/pdm-agent.db", dir);
    CHECK_MSG(strstr(log, dbpath) && strstr(log, "I/O error"), "log: %s", log);
    CHECK_MSG(strstr(log, "writes succeed again"), "log: %s", log);
    struct pdm_store *s = open_ok(dir);
    struct pdm_store_stats st;
    CHECK_INT(pdm_store_stats(s, &st), 0);
    CHECK_INT(st.rows_pending, db_int(dir, "SELECT COUNT(*) FROM rows WHERE delivered = 0"));
    pdm_store_close(s);
}

/* An alert held in memory may be published before its seq is on disk. If the agent then dies
 * before the disk takes it, the next run must not hand that seq out again: the marker file
 * makes it continue above the reservation (a gap, never a seq used twice). */
static void test_held_alert_crash_no_seq_reuse(void)
{
    const char *dir = fresh_dir("heldcrash");
    char marker[256];
    snprintf(marker, sizeof(marker), "%s/seq.unsafe", dir);
    int pfd[2];
    CHECK(pipe(pfd) == 0);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open("/dev/null", O_WRONLY);
        if (fd >= 0)
            dup2(fd, 2);
        signal(SIGXFSZ, SIG_IGN);
        struct pdm_store *s = NULL;
        char err[256];
        if (pdm_store_open(&s, dir, err, sizeof(err)) != 0)
            _exit(11);
        for (int i = 0; i < 1000; i++)
            pdm_store_put_row(s, PDM_ROW_READING, 1, i, i, NULL);
        if (pdm_store_commit(s) != 0)
            _exit(12);
        close(pfd[0]);
        struct rlimit rl;
        getrlimit(RLIMIT_FSIZE, &rl);
        struct rlimit cap = {.rlim_cur = 1, .rlim_max = rl.rlim_max};
        setrlimit(RLIMIT_FSIZE, &cap);
        uint64_t aseq = 0;
        if (put_alert(s, "pump-1", "pump-1/77", 1, 5, &aseq) == 0)
            _exit(13); /* the cap did not bite */
        if (access(marker, F_OK) != 0)
            _exit(14);
        if (write(pfd[1], &aseq, sizeof(aseq)) != (ssize_t)sizeof(aseq))
            _exit(15);
        _exit(0); /* die with the alert held (published, in the agent) but not on disk */
    }
    int status = 0;
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
    CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child exit %d",
              WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    close(pfd[1]);
    uint64_t aseq = 0;
    CHECK(read(pfd[0], &aseq, sizeof(aseq)) == (ssize_t)sizeof(aseq) && aseq > 0);
    close(pfd[0]);
    struct pdm_store *s = open_ok(dir);
    uint64_t next = pdm_store_alloc_seq(s);
    CHECK_MSG(next > aseq, "seq %llu handed out again after a crash with a held alert %llu",
              (unsigned long long)next, (unsigned long long)aseq);
    CHECK(access(marker, F_OK) != 0); /* the skip is recorded */
    pdm_store_close(s);
    /* a clean restart afterwards stays above the skipped range */
    s = open_ok(dir);
    uint64_t again = pdm_store_alloc_seq(s);
    CHECK_MSG(again > aseq, "seq %llu after a clean restart is not above %llu",
              (unsigned long long)again, (unsigned long long)aseq);
    pdm_store_close(s);
}

/* ---- issue 3: cap, seq reservation, recovery, holding area -------------------------------- */

static uint64_t disk_bytes(const char *dir)
{
    char p[256];
    struct stat sb;
    uint64_t total = 0;
    snprintf(p, sizeof(p), "%s/pdm-agent.db", dir);
    if (stat(p, &sb) == 0)
        total += (uint64_t)sb.st_size;
    snprintf(p, sizeof(p), "%s/pdm-agent.db-wal", dir);
    if (stat(p, &sb) == 0)
        total += (uint64_t)sb.st_size;
    return total;
}

/* Delivers the oldest n undelivered rows as the outbox would; returns how many were marked. */
static uint64_t deliver(struct pdm_store *s, int n)
{
    static struct pdm_row rows[1000];
    int got = pdm_store_next_rows(s, 0, rows, n < 1000 ? n : 1000);
    if (got <= 0)
        return 0;
    CHECK_INT(pdm_store_mark_rows_delivered(s, rows[0].seq, rows[got - 1].seq), 0);
    return (uint64_t)got;
}

static void test_cap(void)
{
    const char *dir = fresh_dir("cap");
    const uint64_t cap = 1 << 20;
    struct pdm_store *s = open_ok(dir);
    CHECK_INT(pdm_store_set_limits(s, cap, 0), 0);
    uint64_t put = 0, delivered = 0, max_seen = 0, alerts = 0, last_seq = 0;
    int bad = 0;
    /* Phase 1: everything is delivered as it comes: only delivered rows make room. */
    for (int round = 0; round < 60; round++) {
        for (int i = 0; i < 1000; i++, put++)
            bad += pdm_store_put_row(s, PDM_ROW_READING, 1, (int64_t)put, (double)i, NULL) != 0;
        bad += pdm_store_commit(s) != 0;
        delivered += deliver(s, 1000);
        uint64_t b = disk_bytes(dir);
        max_seen = b > max_seen ? b : max_seen;
    }
    struct pdm_store_stats st;
    CHECK_INT(pdm_store_stats(s, &st), 0);
    CHECK_INT(st.rows_dropped, 0);
    CHECK(db_int(dir, "SELECT COUNT(*) FROM rows") < (long long)put); /* eviction did run */
    /* Phase 2: a long outage with alerts now and then: the oldest undelivered rows go. */
    for (int round = 0; round < 200; round++) {
        for (int i = 0; i < 1000; i++, put++)
            bad += pdm_store_put_row(s, PDM_ROW_READING, 1, (int64_t)put, (double)i, &last_seq);
        bad += pdm_store_commit(s) != 0;
        if (round % 10 == 0) {
            bad += put_alert(s, "pump-1", "pump-1/1", 1, (int64_t)put, NULL) != 0;
            alerts++;
        }
        if (round % 50 == 0)
            delivered += deliver(s, 300); /* a short reconnect now and then */
        uint64_t b = disk_bytes(dir);
        max_seen = b > max_seen ? b : max_seen;
    }
    CHECK_INT(bad, 0);
    CHECK_MSG(max_seen <= cap, "database + WAL reached %llu bytes, cap %llu",
              (unsigned long long)max_seen, (unsigned long long)cap);
    CHECK_INT(pdm_store_stats(s, &st), 0);
    CHECK(st.rows_dropped > 0);
    CHECK_INT(st.max_bytes, cap);
    CHECK(st.db_bytes > 0 && st.db_bytes <= cap);
    CHECK_INT(st.rows_delivered, delivered);
    pdm_store_close(s);
    long long present = db_int(dir, "SELECT COUNT(*) FROM rows WHERE delivered = 0");
    /* exact: every reading put is present, delivered, or counted as dropped */
    CHECK_INT(st.rows_dropped, (long long)put - present - (long long)delivered);
    CHECK_INT(db_int(dir, "SELECT COUNT(*) FROM alerts"), alerts); /* no alert evicted */
    CHECK_INT(db_int(dir, "SELECT MAX(seq) FROM rows"), last_seq); /* the newest stay */
    s = open_ok(dir); /* the totals survive a restart */
    struct pdm_store_stats again;
    CHECK_INT(pdm_store_stats(s, &again), 0);
    CHECK_INT(again.rows_dropped, st.rows_dropped);
    CHECK_INT(again.rows_delivered, delivered);
    /* a lower cap shrinks the file (incremental vacuum) */
    CHECK_INT(pdm_store_set_limits(s, cap / 2, 0), 0);
    CHECK_INT(pdm_store_put_row(s, PDM_ROW_READING, 1, 0, 0, NULL), 0);
    CHECK_INT(pdm_store_commit(s), 0);
    CHECK_MSG(disk_bytes(dir) <= cap / 2, "after lowering the cap: %llu bytes",
              (unsigned long long)disk_bytes(dir));
    CHECK_INT(pdm_store_set_limits(s, 1000, 0), -EINVAL); /* no room for anything */
    pdm_store_close(s);
}

static void test_delivered_totals(void)
{
    const char *dir = fresh_dir("totals");
    struct pdm_store *s = open_ok(dir);
    uint64_t al = 0;
    for (int i = 0; i < 10; i++)
        CHECK_INT(pdm_store_put_row(s, PDM_ROW_READING, 1, i, i, NULL), 0);
    CHECK_INT(put_alert(s, "a", "a/1", 1, 10, &al), 0);
    CHECK_INT(pdm_store_mark_rows_delivered(s, 1, 4), 0);
    CHECK_INT(pdm_store_mark_rows_delivered(s, 3, 6), 0); /* 3 and 4 count once */
    CHECK_INT(pdm_store_mark_alert_delivered(s, al), 0);
    CHECK_INT(pdm_store_mark_alert_delivered(s, al), 0);
    struct pdm_store_stats st;
    CHECK_INT(pdm_store_stats(s, &st), 0);
    CHECK_INT(st.rows_delivered, 6);
    CHECK_INT(st.alerts_delivered, 1);
    /* marks that join a transaction lost to a crash are not counted either */
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        pdm_store_put_row(s, PDM_ROW_READING, 1, 11, 11, NULL); /* opens a transaction */
        pdm_store_mark_rows_delivered(s, 7, 8);                 /* joins it */
        _exit(0);                                               /* no commit */
    }
    int status = 0;
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
    pdm_store_prune(s, 0); /* delivered rows go; the total stays */
    pdm_store_close(s);
    s = open_ok(dir);
    CHECK_INT(pdm_store_stats(s, &st), 0);
    CHECK_INT(st.rows_delivered, 6);
    CHECK_INT(st.alerts_delivered, 1);
    CHECK_INT(st.rows_pending, 4);
    pdm_store_close(s);
}

static void corrupt_file(const char *dir, long offset, size_t len)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/pdm-agent.db", dir);
    int fd = open(path, O_WRONLY);
    CHECK(fd >= 0);
    if (fd < 0)
        return;
    char junk[8192];
    for (size_t i = 0; i < sizeof(junk); i++)
        junk[i] = (char)(0xA5 ^ (i * 7));
    CHECK(pwrite(fd, junk, len < sizeof(junk) ? len : sizeof(junk), offset) > 0);
    close(fd);
}

static int count_corrupt_copies(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (strstr(e->d_name, "pdm-agent.db.corrupt-") == e->d_name &&
            !(len > 4 && (strcmp(e->d_name + len - 4, "-wal") == 0 ||
                          strcmp(e->d_name + len - 4, "-shm") == 0)))
            n++;
    }
    if (d)
        closedir(d);
    return n;
}

/* Fills a store, returns the highest seq handed out. */
static uint64_t fill(const char *dir, int rows)
{
    struct pdm_store *s = open_ok(dir);
    uint64_t seq = 0;
    for (int i = 0; i < rows; i++)
        pdm_store_put_row(s, PDM_ROW_READING, 1, i, i, &seq);
    CHECK_INT(put_alert(s, "a", "a/1", 1, rows, &seq), 0);
    pdm_store_close(s);
    return seq;
}

static void test_corrupt_recovery(void)
{
    const char *dir = fresh_dir("corrupt");
    char dbpath[256];
    snprintf(dbpath, sizeof(dbpath), "%s/pdm-agent.db", dir);
    uint64_t high = 0;
    for (int round = 0; round < 4; round++) {
        uint64_t top = fill(dir, 20000);
        high = top > high ? top : high;
        if (round % 2 == 0)
            corrupt_file(dir, 0, 100); /* the header */
        else
            corrupt_file(dir, 4096 * 6, 8192); /* b-tree pages in the middle */
        struct pdm_store *s = open_ok(dir);
        struct pdm_store_stats st;
        CHECK_INT(pdm_store_stats(s, &st), 0);
        CHECK_MSG(st.recovered == 1, "round %d: not detected", round);
        struct stat sb;
        CHECK(st.recovered_path[0] && stat(st.recovered_path, &sb) == 0);
        CHECK_INT(st.rows_pending, 0); /* a fresh buffer */
        /* every seq handed out before the damage stays unique */
        CHECK_MSG(st.next_seq > high, "round %d: next_seq %llu <= %llu", round,
                  (unsigned long long)st.next_seq, (unsigned long long)high);
        uint64_t seq = 0;
        CHECK_INT(pdm_store_put_row(s, PDM_ROW_READING, 1, 1, 1, &seq), 0);
        CHECK(seq > high);
        pdm_store_close(s);
        s = open_ok(dir); /* and the fresh file is fine */
        CHECK_INT(pdm_store_stats(s, &st), 0);
        CHECK_INT(st.recovered, 0);
        pdm_store_close(s);
    }
    CHECK_INT(count_corrupt_copies(dir), 3); /* the oldest of four went */
}

/* seq.reserve is written before a seq above it is handed out: a child allocating seqs as fast
 * as it can is killed at a random moment, and the file must cover what it handed out. */
static void test_seq_reservation_kill9(void)
{
    const char *dir = fresh_dir("reserve");
    volatile uint64_t *shared =
        mmap(NULL, sizeof(uint64_t), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(shared != MAP_FAILED);
    if (shared == MAP_FAILED)
        return;
    *shared = 0;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        struct pdm_store *s = NULL;
        char err[256];
        if (pdm_store_open(&s, dir, err, sizeof(err)) != 0)
            _exit(3);
        for (;;)
            *shared = pdm_store_alloc_seq(s); /* published only after alloc returned */
    }
    int64_t deadline = pdm_mono_ms() + 60000;
    while (*shared < 2500000 && pdm_mono_ms() < deadline)
        usleep(1000);
    kill(pid, SIGKILL);
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid && WIFSIGNALED(status));
    uint64_t handed = *shared;
    CHECK(handed >= 2500000);
    char path[256];
    snprintf(path, sizeof(path), "%s/seq.reserve", dir);
    FILE *f = fopen(path, "r");
    unsigned long long r = 0;
    CHECK(f && fscanf(f, "reserved up to %llu", &r) == 1);
    if (f)
        fclose(f);
    CHECK_MSG(r >= handed, "reserved %llu < handed out %llu", r, (unsigned long long)handed);
    /* the database is lost: the counter continues above everything handed out */
    static const char *const files[] = {"pdm-agent.db", "pdm-agent.db-wal", "pdm-agent.db-shm"};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
        unlink(path);
    }
    struct pdm_store *s = open_ok(dir);
    CHECK_INT(next_seq(s), r + 1);
    pdm_store_close(s);
    munmap((void *)shared, sizeof(uint64_t));

    /* a missing reservation file on an existing database is recreated from its high-water */
    const char *dir2 = fresh_dir("reserve2");
    uint64_t top = fill(dir2, 10);
    snprintf(path, sizeof(path), "%s/seq.reserve", dir2);
    CHECK(unlink(path) == 0);
    s = open_ok(dir2);
    CHECK_INT(next_seq(s), top + 1);
    pdm_store_close(s);
    f = fopen(path, "r");
    r = 0;
    CHECK(f && fscanf(f, "reserved up to %llu", &r) == 1 && r >= top);
    if (f)
        fclose(f);
}

/* A small tmpfs: 0 when mounted, else says why and returns -errno (the caller skips). */
static int mount_tmpfs(const char *dir, const char *size)
{
    char opts[32];
    snprintf(opts, sizeof(opts), "size=%s", size);
    if (mount("tmpfs", dir, "tmpfs", 0, opts) != 0) {
        int e = errno;
        printf("cannot mount a %s tmpfs on %s (%s): the disk-full cases need root\n", size, dir,
               strerror(e));
        return -e;
    }
    return 0;
}

/* Fills the filesystem with a ballast file until ENOSPC. */
static void ballast(const char *dir, size_t max)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/ballast", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CHECK(fd >= 0);
    static char block[65536];
    size_t done = 0;
    while (fd >= 0 && done < max) {
        ssize_t w = write(fd, block, sizeof(block));
        if (w <= 0)
            break;
        done += (size_t)w;
    }
    if (fd >= 0)
        close(fd);
}

/* 0 when it ran, -1 when it could not (no tmpfs) */
static int test_disk_full(void)
{
    const char *dir = fresh_dir("diskfull");
    if (mount_tmpfs(dir, "4m") != 0)
        return -1;
    struct pdm_store *s = open_ok(dir);
    for (int i = 0; i < 100; i++)
        CHECK_INT(pdm_store_put_row(s, PDM_ROW_READING, 1, i, i, NULL), 0);
    CHECK_INT(pdm_store_commit(s), 0);
    ballast(dir, SIZE_MAX); /* the filesystem is now full */
    for (int i = 0; i < 2000; i++)
        CHECK_INT(pdm_store_put_row(s, PDM_ROW_READING, 1, i, i, NULL), 0);
    CHECK_INT(pdm_store_commit(s), -ENOSPC);
    uint64_t a1 = 0, a2 = 0;
    CHECK(put_alert(s, "pump", "pump/1", 1, 50, &a1) < 0);
    CHECK(put_alert(s, "pump", "pump/1", 2, 51, &a2) < 0);
    struct pdm_store_stats st;
    CHECK_INT(pdm_store_stats(s, &st), 0);
    CHECK_INT(st.write_failing, 1);
    CHECK_INT(st.rows_held, 2000);
    CHECK_INT(st.alerts_held, 2);
    CHECK_INT(st.alerts_pending, 2);
    struct alert_seen a = {0};
    CHECK_INT(pdm_store_next_alerts(s, 0, 10, on_alert, &a), 2); /* served from memory */
    CHECK_INT(a.seq[0], a1);
    CHECK_INT(a.seq[1], a2);
    CHECK_STR(a.payload[1], a.payload[1][0] ? a.payload[1] : "missing");
    CHECK_INT(pdm_store_mark_alert_delivered(s, a1), 0); /* the broker took it */
    CHECK_INT(pdm_store_commit(s), -ENOSPC);             /* still full: retried, still held */
    char path[256];
    snprintf(path, sizeof(path), "%s/ballast", dir);
    CHECK(unlink(path) == 0); /* space again */
    CHECK_INT(pdm_store_commit(s), 0);
    CHECK_INT(pdm_store_stats(s, &st), 0);
    CHECK_INT(st.write_failing, 0);
    CHECK_INT(st.rows_held, 0);
    CHECK_INT(st.alerts_held, 0);
    CHECK_INT(st.alerts_pending, 1);
    CHECK_INT(st.alerts_delivered, 1);
    CHECK_INT(st.rows_pending, 2100);
    pdm_store_close(s);
    CHECK_INT(db_int(dir, "SELECT COUNT(*) FROM rows"), 2100);
    CHECK_INT(db_int(dir, "SELECT seq FROM alerts WHERE delivered = 0"), a2);
    CHECK(umount2(dir, MNT_DETACH) == 0);
    return 0;
}

static int test_disk_reserve(void)
{
    const char *dir = fresh_dir("reserve-disk");
    if (mount_tmpfs(dir, "16m") != 0)
        return -1;
    ballast(dir, 8u << 20);
    struct pdm_store *s = open_ok(dir);
    const uint64_t reserve = 4u << 20;
    CHECK_INT(pdm_store_set_limits(s, 0, reserve), 0); /* no cap: only the reserve */
    int bad = 0;
    uint64_t min_free = UINT64_MAX;
    for (int round = 0; round < 200; round++) {
        for (int i = 0; i < 1000; i++)
            bad += pdm_store_put_row(s, PDM_ROW_READING, 1, i, i, NULL) != 0;
        bad += pdm_store_commit(s) != 0;
        if (round % 20 == 0)
            bad += put_alert(s, "pump", "pump/1", 1, round, NULL) != 0;
        struct statvfs v;
        if (statvfs(dir, &v) == 0 && (uint64_t)v.f_bavail * v.f_frsize < min_free)
            min_free = (uint64_t)v.f_bavail * v.f_frsize;
    }
    CHECK_INT(bad, 0); /* never ran into the full disk */
    struct pdm_store_stats st;
    CHECK_INT(pdm_store_stats(s, &st), 0);
    CHECK_INT(st.write_failing, 0);
    CHECK(st.rows_dropped > 0);
    /* it stopped close to the reserve (one commit and the WAL allowance below it at most) */
    CHECK_MSG(min_free > reserve - (1u << 20), "free space fell to %llu",
              (unsigned long long)min_free);
    pdm_store_close(s);
    CHECK_INT(db_int(dir, "SELECT COUNT(*) FROM alerts"), 10);
    CHECK(umount2(dir, MNT_DETACH) == 0);
    return 0;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* test_store: every case but the disk-full ones; test_store diskfull: those, on small tmpfs
 * mounts (root only), exit 77 (CTest: skipped) where nothing can be mounted. */
int main(int argc, char **argv)
{
    int diskfull = argc > 1 && !strcmp(argv[1], "diskfull");
    snprintf(g_base, sizeof(g_base), "/tmp/test_store.XXXXXX");
    if (!mkdtemp(g_base)) {
        perror("mkdtemp");
        return 2;
    }
    if (diskfull) {
        int ran = (test_disk_full() == 0) + (test_disk_reserve() == 0);
        nftw(g_base, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        if (ran == 0) {
            printf("test_store diskfull: skipped: no tmpfs could be mounted\n");
            return 77;
        }
        return check_summary("test_store diskfull");
    }
    test_seq_shared_and_monotonic();
    test_seq_survives_reopen_and_prune();
    test_crash_keeps_committed();
    test_uncommitted_rows_not_published();
    test_delivery_order();
    test_open_alerts();
    test_stats();
    test_prune();
    test_names();
    test_newer_version_refused();
    test_not_a_database();
    test_unwritable_dir();
    test_write_failure_recovers();
    test_held_alert_crash_no_seq_reuse();
    test_cap();
    test_delivered_totals();
    test_corrupt_recovery();
    test_seq_reservation_kill9();
    nftw(g_base, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return check_summary("test_store");
}
