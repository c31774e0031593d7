/* The durable buffer (see store.h): one SQLite database in WAL mode, used from the main loop
 * only.
 *
 * Memory: SQLite's page cache is capped at 512 KiB per connection (PRAGMA cache_size=-512). The
 * process-wide ceiling, sqlite3_hard_heap_limit64(), is set by the agent at start-up and not
 * here: it is global to the process and a library module must not change it behind the
 * program's back. Our own allocations: the struct, one copy of each sensor/asset name (at most
 * STORE_MAX_NAMES, a few hundred in practice, each <= NAME_MAX_LEN bytes), all made at open or
 * when a name is first seen. Putting, reading and marking rows allocates nothing here.
 *
 * Durability and visibility:
 *  - Readings go into one open transaction that the caller commits on a tick; an alert commits
 *    at once (together with pending readings). synchronous=FULL: a commit that returned is on
 *    disk.
 *  - Rows still in the open transaction are not handed to the outbox (next_rows/next_alerts
 *    stop below the first seq of the open transaction), so nothing is published that a crash
 *    could still take back, and a seq that was published is never reused.
 *  - seq_hw in the meta table is the highest seq allocated; it is written inside every
 *    transaction that stores something with a new seq, so it never lags the rows it covers and
 *    survives prune deleting every row.
 *  - Delivered marks join the open transaction when there is one (a crash then loses the marks
 *    and the rows are sent again: at-least-once), and commit on their own otherwise. */
#include "store.h"

#include <errno.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"

#define STORE_FILE       "pdm-agent.db"
#define SCHEMA_VERSION   1
#define CACHE_KIB        512     /* page cache per connection, KiB */
#define BUSY_TIMEOUT_MS  1000    /* wait for a lock held by e.g. a pdmctl reader, ms */
#define WAL_LIMIT_BYTES  4194304 /* WAL is truncated to this after a checkpoint, bytes */
#define STORE_MAX_NAMES  4096    /* names cached in memory, all kinds together */
#define NAME_MAX_LEN     255     /* bytes, without the NUL */
#define ASSET_MAX_LEN    64      /* bytes; struct pdm_stored_alert.asset has room for 64 + NUL */
#define ALERT_ID_MAX_LEN 95      /* bytes; struct pdm_stored_alert.alert_id is 96 */
#define STATE_CLEARED    3       /* enum pdm_alert_state PDM_ALERT_CLEARED */
#define NO_UPPER_BOUND   INT64_MAX
#define STR_(x)          #x
#define STR(x)           STR_(x)

/* Schema version 1. The partial indexes keep only undelivered entries, so
 * "next undelivered" and "oldest undelivered" are index seeks however many delivered rows are
 * kept, and the index shrinks as rows are delivered. */
static const char SCHEMA_SQL[] =
    "CREATE TABLE IF NOT EXISTS names(kind INTEGER, id INTEGER, name TEXT,"
    " PRIMARY KEY(kind, id), UNIQUE(kind, name));"
    "CREATE TABLE IF NOT EXISTS rows(seq INTEGER PRIMARY KEY, kind INTEGER, ref INTEGER,"
    " ts_ms INTEGER, value REAL, delivered INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE IF NOT EXISTS alerts(seq INTEGER PRIMARY KEY, asset TEXT, alert_id TEXT,"
    " state INTEGER, severity INTEGER, ts_ms INTEGER, payload BLOB,"
    " delivered INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value INTEGER);"
    "CREATE INDEX IF NOT EXISTS rows_undelivered ON rows(seq) WHERE delivered = 0;"
    "CREATE INDEX IF NOT EXISTS alerts_undelivered ON alerts(seq) WHERE delivered = 0;"
    "CREATE INDEX IF NOT EXISTS alerts_by_asset ON alerts(asset, seq);"
    "PRAGMA user_version = " STR(SCHEMA_VERSION) ";";

enum stmt_id {
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_SET_HW,
    ST_PUT_ROW,
    ST_PUT_ALERT,
    ST_PUT_NAME,
    ST_NEXT_ROWS,
    ST_NEXT_ALERTS,
    ST_MARK_ROWS,
    ST_MARK_ALERT,
    ST_OLDEST_ROW,
    ST_OLDEST_ALERT,
    ST_OPEN_ALERTS,
    ST_PRUNE,
    ST_COUNT
};

/* Prepared once at open, reset after every use. INDEXED BY pins the partial indexes: without it
 * the planner may prefer a rowid range scan, which walks over every delivered row. */
static const char *const STMT_SQL[ST_COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_SET_HW] = "INSERT OR REPLACE INTO meta(key, value) VALUES('seq_hw', ?1)",
    [ST_PUT_ROW] = "INSERT INTO rows(seq, kind, ref, ts_ms, value) VALUES(?1, ?2, ?3, ?4, ?5)",
    [ST_PUT_ALERT] = "INSERT INTO alerts(seq, asset, alert_id, state, severity, ts_ms, payload)"
                     " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [ST_PUT_NAME] = "INSERT INTO names(kind, id, name) VALUES(?1, ?2, ?3)",
    [ST_NEXT_ROWS] = "SELECT seq, kind, ref, ts_ms, value FROM rows INDEXED BY rows_undelivered"
                     " WHERE delivered = 0 AND seq > ?1 AND seq < ?2 ORDER BY seq LIMIT ?3",
    [ST_NEXT_ALERTS] = "SELECT seq, payload FROM alerts INDEXED BY alerts_undelivered"
                       " WHERE delivered = 0 AND seq > ?1 AND seq < ?2 ORDER BY seq LIMIT ?3",
    [ST_MARK_ROWS] =
        "UPDATE rows SET delivered = 1 WHERE seq >= ?1 AND seq <= ?2 AND delivered = 0",
    [ST_MARK_ALERT] = "UPDATE alerts SET delivered = 1 WHERE seq = ?1 AND delivered = 0",
    [ST_OLDEST_ROW] = "SELECT ts_ms FROM rows INDEXED BY rows_undelivered WHERE delivered = 0"
                      " ORDER BY seq LIMIT 1",
    [ST_OLDEST_ALERT] = "SELECT ts_ms FROM alerts INDEXED BY alerts_undelivered"
                        " WHERE delivered = 0 ORDER BY seq LIMIT 1",
    /* SQLite takes the bare columns of a MAX() aggregate from the row holding the maximum:
     * one row per asset, its latest event. */
    [ST_OPEN_ALERTS] = "SELECT MAX(seq), asset, alert_id, state, severity FROM alerts"
                       " GROUP BY asset ORDER BY asset",
    /* The inner subquery finds the (keep+1)-th newest delivered row; it and everything
     * delivered before it go, oldest first, at most ?2 rows per call so that one prune after a
     * long backlog cannot stall the main loop (seconds on an SD card). NULL (fewer delivered
     * rows than that) deletes nothing. */
    [ST_PRUNE] = "DELETE FROM rows WHERE seq IN (SELECT seq FROM rows WHERE delivered = 1"
                 " AND seq <= (SELECT seq FROM rows WHERE delivered = 1 ORDER BY seq DESC"
                 " LIMIT 1 OFFSET ?1) ORDER BY seq LIMIT ?2)",
};

#define PRUNE_MAX_ROWS 20000 /* rows deleted per pdm_store_prune() call: ~5 ms here */

struct name_ent {
    char *name; /* owned; stays at this address until close (id_name hands it out) */
    uint32_t id;
    uint8_t kind;
};

struct pdm_store {
    sqlite3 *db;
    sqlite3_stmt *st[ST_COUNT];

    uint64_t next_seq;   /* next seq to hand out; seqs below it may be in use */
    uint64_t hw_on_disk; /* seq_hw as last committed */

    /* The open transaction (put_row opens it, commit or put_alert closes it). */
    int in_txn;
    uint64_t txn_first_seq; /* lowest seq stored in it, 0 if none: the outbox stops below it */
    uint64_t txn_rows_put, txn_rows_marked, txn_alerts_put, txn_alerts_marked;

    /* Undelivered counts including the open transaction: counted once at open, then kept up to
     * date, because COUNT(*) walks the whole partial index (cost grows with the backlog). */
    uint64_t rows_pending, alerts_pending;

    struct name_ent *names;
    size_t n_names, cap_names;
    uint32_t next_id[2]; /* per enum pdm_row_kind */

    int opening;                  /* errors go to the caller's err buffer, not the log */
    struct pdm_complaint failing; /* write failures: logged once, then at growing intervals */
    char msg[512];                /* last error, "store PATH: reason while doing what" */
    char path[];                  /* {dir}/pdm-agent.db */
};

/* ---- errors ------------------------------------------------------------------------------ */

static int errno_of(sqlite3 *db, int rc)
{
    int sys = db ? sqlite3_system_errno(db) : 0;
    switch (rc & 0xff) {
    case SQLITE_FULL:
        return -ENOSPC;
    case SQLITE_NOMEM:
        return -ENOMEM;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return -EBUSY;
    case SQLITE_READONLY:
        return -EROFS;
    case SQLITE_PERM:
    case SQLITE_AUTH:
        return -EACCES;
    case SQLITE_CANTOPEN:
        return sys > 0 ? -sys : -EACCES;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
        return -EBADMSG;
    case SQLITE_CONSTRAINT:
        return -EEXIST;
    case SQLITE_TOOBIG:
        return -EMSGSIZE;
    case SQLITE_MISUSE:
    case SQLITE_RANGE:
        return -EINVAL;
    case SQLITE_IOERR:
        return sys > 0 ? -sys : -EIO;
    default:
        return -EIO;
    }
}

/* Formats "store PATH: <reason> while <what>" into s->msg and logs it (rate-limited) unless the
 * store is still opening, in which case pdm_store_open hands it to its caller. */
static void note(struct pdm_store *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(struct pdm_store *s, const char *fmt, ...)
{
    int n = snprintf(s->msg, sizeof(s->msg), "store %s: ", s->path);
    if (n < 0 || (size_t)n >= sizeof(s->msg))
        n = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->msg + n, sizeof(s->msg) - (size_t)n, fmt, ap);
    va_end(ap);
    if (!s->opening)
        pdm_complain(&s->failing, pdm_mono_ms(), "%s", s->msg);
}

/* An SQLite failure: the message names the file, SQLite's reason, the OS reason when there is
 * one (ENOSPC, EIO, EACCES) and what we were doing. Returns -errno. */
static int fail(struct pdm_store *s, int rc, const char *what)
{
    int sys = sqlite3_system_errno(s->db);
    int ext = sqlite3_extended_errcode(s->db);
    const char *op = "";
    switch (ext) { /* which I/O call failed: tells a bad card (fsync, read) from a full one */
    case SQLITE_IOERR_READ:
    case SQLITE_IOERR_SHORT_READ:
        op = ", read failed";
        break;
    case SQLITE_IOERR_WRITE:
        op = ", write failed";
        break;
    case SQLITE_IOERR_FSYNC:
    case SQLITE_IOERR_DIR_FSYNC:
        op = ", fsync failed";
        break;
    case SQLITE_IOERR_TRUNCATE:
        op = ", truncate failed";
        break;
    case SQLITE_IOERR_SHMOPEN:
    case SQLITE_IOERR_SHMSIZE:
    case SQLITE_IOERR_SHMMAP:
        op = ", shared-memory (-shm) file failed";
        break;
    }
    int code = rc & 0xff;
    if (sys > 0 && (code == SQLITE_IOERR || code == SQLITE_CANTOPEN))
        note(s, "%s (%s%s) while %s", sqlite3_errmsg(s->db), strerror(sys), op, what);
    else if (*op)
        note(s, "%s (%s) while %s", sqlite3_errmsg(s->db), op + 2, what);
    else
        note(s, "%s while %s", sqlite3_errmsg(s->db), what);
    return errno_of(s->db, rc);
}

static void recovered(struct pdm_store *s)
{
    pdm_release(&s->failing, "store %s: writes succeed again", s->path);
}

/* ---- transactions ------------------------------------------------------------------------ */

static void txn_reset(struct pdm_store *s)
{
    s->in_txn = 0;
    s->txn_first_seq = 0;
    s->txn_rows_put = s->txn_rows_marked = 0;
    s->txn_alerts_put = s->txn_alerts_marked = 0;
}

/* The open transaction is gone (SQLite rolled it back after an error, or we did): undo its
 * effect on the counters and say what was lost. */
static void txn_lost(struct pdm_store *s)
{
    s->rows_pending = s->rows_pending + s->txn_rows_marked - s->txn_rows_put;
    s->alerts_pending = s->alerts_pending + s->txn_alerts_marked - s->txn_alerts_put;
    uint64_t marks = s->txn_rows_marked + s->txn_alerts_marked;
    if (s->txn_rows_put || s->txn_alerts_put || marks)
        pdm_err("store %s: transaction rolled back: %llu readings/scores and %llu alerts not "
                "stored%s",
                s->path, (unsigned long long)s->txn_rows_put, (unsigned long long)s->txn_alerts_put,
                marks ? "; delivery marks undone, those messages will be sent again" : "");
    txn_reset(s);
}

/* After a failed statement inside the transaction: did SQLite roll the whole thing back? */
static void check_txn_alive(struct pdm_store *s)
{
    if (s->in_txn && sqlite3_get_autocommit(s->db))
        txn_lost(s);
}

/* Runs a statement that returns no rows and resets it. */
static int exec_stmt(struct pdm_store *s, sqlite3_stmt *st, const char *what)
{
    int rc = sqlite3_step(st);
    int ret = 0;
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        ret = fail(s, rc, what);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return ret;
}

static int txn_begin(struct pdm_store *s)
{
    if (s->in_txn)
        return 0;
    int ret = exec_stmt(s, s->st[ST_BEGIN], "starting a transaction");
    if (ret == 0)
        s->in_txn = 1;
    return ret;
}

static int txn_commit(struct pdm_store *s, const char *what)
{
    if (!s->in_txn)
        return 0;
    uint64_t hw = s->next_seq - 1;
    int ret = 0;
    if (hw > s->hw_on_disk) {
        sqlite3_bind_int64(s->st[ST_SET_HW], 1, (sqlite3_int64)hw);
        ret = exec_stmt(s, s->st[ST_SET_HW], "recording the sequence number");
    }
    if (ret == 0) {
        int rc = sqlite3_step(s->st[ST_COMMIT]);
        if (rc != SQLITE_DONE)
            ret = fail(s, rc, what);
        sqlite3_reset(s->st[ST_COMMIT]);
    }
    if (ret == 0) {
        s->hw_on_disk = hw > s->hw_on_disk ? hw : s->hw_on_disk;
        txn_reset(s);
        recovered(s);
        return 0;
    }
    if (sqlite3_get_autocommit(s->db)) {
        txn_lost(s); /* SQLite already rolled back */
    } else if (ret != -EBUSY) {
        /* BUSY leaves the transaction intact for the next try; anything else may have left it
         * half-written, so give it up cleanly rather than commit it later. */
        sqlite3_step(s->st[ST_ROLLBACK]);
        sqlite3_reset(s->st[ST_ROLLBACK]);
        txn_lost(s);
    }
    return ret;
}

/* For writes that need no transaction of their own (marks, prune): they ride along in the open
 * transaction, or commit by themselves. */
static int after_write(struct pdm_store *s, int ret)
{
    if (ret != 0)
        check_txn_alive(s);
    else if (!s->in_txn)
        recovered(s);
    return ret;
}

/* ---- open / close ------------------------------------------------------------------------ */

static int exec_sql(struct pdm_store *s, const char *sql, const char *what)
{
    int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? 0 : fail(s, rc, what);
}

/* One-off query returning a single integer (open time only). */
static int query_int(struct pdm_store *s, const char *sql, int64_t *out, const char *what)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return fail(s, rc, what);
    rc = sqlite3_step(st);
    int ret = 0;
    if (rc == SQLITE_ROW)
        *out = sqlite3_column_int64(st, 0);
    else
        ret = fail(s, rc == SQLITE_DONE ? SQLITE_CORRUPT : rc, what);
    sqlite3_finalize(st);
    return ret;
}

static int add_name(struct pdm_store *s, enum pdm_row_kind kind, uint32_t id, const char *name)
{
    if (s->n_names == s->cap_names) {
        size_t cap = s->cap_names ? s->cap_names * 2 : 32;
        struct name_ent *n = realloc(s->names, cap * sizeof(*n));
        if (!n)
            return -ENOMEM;
        s->names = n;
        s->cap_names = cap;
    }
    char *copy = strdup(name);
    if (!copy)
        return -ENOMEM;
    s->names[s->n_names++] = (struct name_ent){.name = copy, .id = id, .kind = (uint8_t)kind};
    if (id >= s->next_id[kind])
        s->next_id[kind] = id + 1;
    return 0;
}

static int load_names(struct pdm_store *s)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, "SELECT kind, id, name FROM names ORDER BY kind, id", -1,
                                &st, NULL);
    if (rc != SQLITE_OK)
        return fail(s, rc, "reading the sensor and asset names");
    int ret = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t kind = sqlite3_column_int64(st, 0), id = sqlite3_column_int64(st, 1);
        const char *name = (const char *)sqlite3_column_text(st, 2);
        if ((kind != PDM_ROW_READING && kind != PDM_ROW_SCORE) || id < 1 || id > UINT32_MAX - 1 ||
            !name || s->n_names >= STORE_MAX_NAMES) {
            note(s, "names table holds an entry this agent cannot use (kind %lld, id %lld)",
                 (long long)kind, (long long)id);
            ret = -EBADMSG;
            break;
        }
        ret = add_name(s, (enum pdm_row_kind)kind, (uint32_t)id, name);
        if (ret) {
            note(s, "out of memory while reading the sensor and asset names");
            break;
        }
    }
    if (ret == 0 && rc != SQLITE_DONE)
        ret = fail(s, rc, "reading the sensor and asset names");
    sqlite3_finalize(st);
    return ret;
}

/* After a permission-like failure at open. SQLite's reason is often misleading: CANTOPEN carries
 * the errno of its last attempt (a read-only retry: ENOENT), and a folder where the -wal/-shm
 * files cannot be created shows up as "readonly database". Name what a field engineer can fix:
 * the folder is missing, not a folder, or not writable for the agent's user. Returns -errno with
 * s->msg rewritten, or 0 when the folder looks fine (SQLite's message stands). */
static int diagnose_dir(struct pdm_store *s)
{
    size_t dlen = strlen(s->path) - strlen("/" STORE_FILE);
    char dir[PATH_MAX];
    if (dlen == 0 || dlen >= sizeof(dir))
        return 0;
    memcpy(dir, s->path, dlen);
    dir[dlen] = '\0';
    struct stat sb;
    int e = 0;
    if (stat(dir, &sb) != 0)
        e = errno;
    else if (!S_ISDIR(sb.st_mode))
        e = ENOTDIR;
    else if (access(dir, W_OK | X_OK) != 0)
        e = errno;
    if (e == 0)
        return 0;
    note(s,
         "data directory %s: %s (the agent creates the database and its -wal and -shm files "
         "there)",
         dir, strerror(e));
    return -e;
}

static int open_db(struct pdm_store *s)
{
    int rc = sqlite3_open_v2(
        s->path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        if (!s->db)
            return (note(s, "out of memory while opening the database"), -ENOMEM);
        return fail(s, rc, "opening the database");
    }
    sqlite3_extended_result_codes(s->db, 1);
    /* SQLite falls back to read-only when the file exists but cannot be written. */
    if (sqlite3_db_readonly(s->db, "main") == 1) {
        note(s, "the database file is not writable by the agent; fix its owner or permissions");
        return -EROFS;
    }
    sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);

    int64_t version = 0;
    int ret = query_int(s, "PRAGMA user_version", &version, "reading the schema version");
    if (ret)
        return ret;
    if (version > SCHEMA_VERSION) {
        note(s,
             "schema version %lld was written by a newer pdm-agent; this one understands "
             "version %d and will not touch it. Install the newer agent, or move the file aside "
             "to start with an empty store",
             (long long)version, SCHEMA_VERSION);
        return -EPROTO;
    }

    /* journal_mode answers with the mode now in force; anything but "wal" means it refused. */
    sqlite3_stmt *st = NULL;
    rc = sqlite3_prepare_v2(s->db, "PRAGMA journal_mode=WAL", -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        ret = fail(s, rc, "switching to WAL mode");
        sqlite3_finalize(st);
        return ret;
    }
    const char *mode = (const char *)sqlite3_column_text(st, 0);
    if (!mode || strcmp(mode, "wal") != 0) {
        note(s, "could not switch to WAL mode (journal mode is %s)", mode ? mode : "unknown");
        sqlite3_finalize(st);
        return -EIO;
    }
    sqlite3_finalize(st);

    /* synchronous=FULL: fsync the WAL on every commit, so a committed alert survives a power
     * cut. Debian's build default differs between modes; we say what we mean. */
    static const char PRAGMAS[] =
        "PRAGMA synchronous=FULL;"
        "PRAGMA foreign_keys=OFF;"
        "PRAGMA cache_size=-" STR(CACHE_KIB) ";"
                                             "PRAGMA journal_size_limit=" STR(WAL_LIMIT_BYTES) ";";
    ret = exec_sql(s, PRAGMAS, "setting up the connection");
    if (ret)
        return ret;

    if (version < SCHEMA_VERSION) {
        ret = exec_sql(s, "BEGIN IMMEDIATE", "creating the tables");
        if (ret == 0)
            ret = exec_sql(s, SCHEMA_SQL, "creating the tables");
        if (ret == 0)
            ret = exec_sql(s, "COMMIT", "committing the new tables");
        if (ret) {
            if (!sqlite3_get_autocommit(s->db))
                sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
            return ret;
        }
    }

    for (int i = 0; i < ST_COUNT; i++) {
        rc = sqlite3_prepare_v3(s->db, STMT_SQL[i], -1, SQLITE_PREPARE_PERSISTENT, &s->st[i], NULL);
        if (rc != SQLITE_OK)
            return fail(s, rc, "preparing statements (is the file damaged?)");
    }

    ret = load_names(s);
    if (ret)
        return ret;

    int64_t hw = 0, max_row = 0, max_alert = 0, rows = 0, alerts = 0;
    ret = query_int(s, "SELECT COALESCE((SELECT value FROM meta WHERE key = 'seq_hw'), 0)", &hw,
                    "reading the sequence number");
    if (ret == 0)
        ret = query_int(s, "SELECT COALESCE(MAX(seq), 0) FROM rows", &max_row,
                        "reading the sequence number");
    if (ret == 0)
        ret = query_int(s, "SELECT COALESCE(MAX(seq), 0) FROM alerts", &max_alert,
                        "reading the sequence number");
    if (ret == 0)
        ret = query_int(s,
                        "SELECT COUNT(*) FROM rows INDEXED BY rows_undelivered"
                        " WHERE delivered = 0",
                        &rows, "counting undelivered rows");
    if (ret == 0)
        ret = query_int(s,
                        "SELECT COUNT(*) FROM alerts INDEXED BY alerts_undelivered"
                        " WHERE delivered = 0",
                        &alerts, "counting undelivered alerts");
    if (ret)
        return ret;
    if (hw < 0 || max_row < 0 || max_alert < 0) {
        note(s, "negative sequence number in the database (damaged file?)");
        return -EBADMSG;
    }
    int64_t top = hw;
    top = max_row > top ? max_row : top;
    top = max_alert > top ? max_alert : top;
    s->next_seq = (uint64_t)top + 1;
    s->hw_on_disk = (uint64_t)hw;
    s->rows_pending = (uint64_t)rows;
    s->alerts_pending = (uint64_t)alerts;
    return 0;
}

static void free_store(struct pdm_store *s)
{
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(s->st[i]);
    if (s->db)
        sqlite3_close(s->db);
    for (size_t i = 0; i < s->n_names; i++)
        free(s->names[i].name);
    free(s->names);
    free(s);
}

int pdm_store_open(struct pdm_store **out, const char *dir, char *err, size_t errlen)
{
    *out = NULL;
    if (!dir || !*dir) {
        snprintf(err, errlen, "store: no data directory given");
        return -EINVAL;
    }
    size_t dlen = strlen(dir);
    while (dlen > 1 && dir[dlen - 1] == '/')
        dlen--;
    size_t plen = dlen + 1 + sizeof(STORE_FILE);
    struct pdm_store *s = calloc(1, sizeof(*s) + plen);
    if (!s) {
        snprintf(err, errlen, "store %s: out of memory", dir);
        return -ENOMEM;
    }
    snprintf(s->path, plen, "%.*s%s%s", (int)dlen, dir, dir[dlen - 1] == '/' ? "" : "/",
             STORE_FILE);
    s->next_id[0] = s->next_id[1] = 1;
    s->opening = 1;
    int ret = open_db(s);
    if (ret == -ENOENT || ret == -EACCES || ret == -EPERM || ret == -EROFS || ret == -ENOTDIR) {
        int why = diagnose_dir(s);
        ret = why ? why : ret;
    }
    if (ret) {
        snprintf(err, errlen, "%s", s->msg);
        free_store(s);
        return ret;
    }
    s->opening = 0;
    *out = s;
    return 0;
}

void pdm_store_close(struct pdm_store *s)
{
    if (!s)
        return;
    if (s->in_txn && txn_commit(s, "committing at shutdown") != 0)
        pdm_err("%s", s->msg);
    for (int i = 0; i < ST_COUNT; i++) {
        sqlite3_finalize(s->st[i]);
        s->st[i] = NULL;
    }
    /* TRUNCATE leaves a zero-length WAL: the next start has nothing to replay. */
    int rc = sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
    if (rc != SQLITE_OK)
        pdm_warn("store %s: final checkpoint failed (%s); the WAL is replayed at the next start",
                 s->path, sqlite3_errmsg(s->db));
    rc = sqlite3_close(s->db);
    if (rc != SQLITE_OK)
        pdm_warn("store %s: close failed (%s)", s->path, sqlite3_errmsg(s->db));
    s->db = NULL;
    free_store(s);
}

/* ---- names ------------------------------------------------------------------------------- */

static int kind_ok(int kind)
{
    return kind == PDM_ROW_READING || kind == PDM_ROW_SCORE;
}

int pdm_store_name_id(struct pdm_store *s, enum pdm_row_kind kind, const char *name, uint32_t *id)
{
    if (!kind_ok((int)kind) || !name || !*name || strlen(name) > NAME_MAX_LEN)
        return -EINVAL;
    for (size_t i = 0; i < s->n_names; i++) {
        if (s->names[i].kind == kind && strcmp(s->names[i].name, name) == 0) {
            *id = s->names[i].id;
            return 0;
        }
    }
    if (s->n_names >= STORE_MAX_NAMES) {
        note(s, "more than %d sensor and asset names; \"%s\" gets no id", STORE_MAX_NAMES, name);
        return -ENOSPC;
    }
    /* A new name is committed on its own and at once: if it rode in the readings' transaction
     * and that were rolled back, later rows would point at an id with no name. It happens once
     * per name in the life of the store, so the extra commit is cheap. */
    int ret = txn_commit(s, "committing before adding a name");
    if (ret)
        return ret;
    uint32_t new_id = s->next_id[kind];
    sqlite3_stmt *st = s->st[ST_PUT_NAME];
    sqlite3_bind_int(st, 1, (int)kind);
    sqlite3_bind_int64(st, 2, new_id);
    sqlite3_bind_text(st, 3, name, -1, SQLITE_STATIC);
    ret = exec_stmt(s, st, "adding a sensor or asset name");
    if (ret)
        return ret;
    ret = add_name(s, kind, new_id, name);
    if (ret) {
        note(s, "out of memory while adding the name \"%s\"", name);
        return ret;
    }
    *id = new_id;
    return 0;
}

const char *pdm_store_id_name(struct pdm_store *s, enum pdm_row_kind kind, uint32_t id)
{
    for (size_t i = 0; i < s->n_names; i++)
        if (s->names[i].kind == kind && s->names[i].id == id)
            return s->names[i].name;
    return NULL;
}

/* ---- writing ----------------------------------------------------------------------------- */

uint64_t pdm_store_alloc_seq(struct pdm_store *s)
{
    return s->next_seq++;
}

static void txn_saw_seq(struct pdm_store *s, uint64_t seq)
{
    if (s->txn_first_seq == 0 || seq < s->txn_first_seq)
        s->txn_first_seq = seq;
}

int pdm_store_put_row(struct pdm_store *s, enum pdm_row_kind kind, uint32_t ref, int64_t ts_ms,
                      double value, uint64_t *seq)
{
    if (!kind_ok((int)kind))
        return -EINVAL;
    int ret = txn_begin(s);
    if (ret)
        return ret;
    uint64_t n = s->next_seq++; /* a failed insert leaves a gap, never a reused seq */
    sqlite3_stmt *st = s->st[ST_PUT_ROW];
    sqlite3_bind_int64(st, 1, (sqlite3_int64)n);
    sqlite3_bind_int(st, 2, (int)kind);
    sqlite3_bind_int64(st, 3, ref);
    sqlite3_bind_int64(st, 4, ts_ms);
    sqlite3_bind_double(st, 5, value);
    ret = exec_stmt(s, st, "storing a reading");
    if (ret) {
        check_txn_alive(s);
        return ret;
    }
    txn_saw_seq(s, n);
    s->txn_rows_put++;
    s->rows_pending++;
    if (seq)
        *seq = n;
    return 0;
}

int pdm_store_commit(struct pdm_store *s)
{
    return txn_commit(s, "committing");
}

int pdm_store_put_alert(struct pdm_store *s, uint64_t seq, const char *asset, const char *alert_id,
                        int state, int severity, int64_t ts_ms, const void *payload, size_t len)
{
    if (seq == 0 || seq >= s->next_seq || !asset || strlen(asset) > ASSET_MAX_LEN || !alert_id ||
        strlen(alert_id) > ALERT_ID_MAX_LEN || (!payload && len) || len > INT_MAX)
        return -EINVAL;
    int ret = txn_begin(s);
    if (ret)
        return ret;
    sqlite3_stmt *st = s->st[ST_PUT_ALERT];
    sqlite3_bind_int64(st, 1, (sqlite3_int64)seq);
    sqlite3_bind_text(st, 2, asset, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, alert_id, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 4, state);
    sqlite3_bind_int(st, 5, severity);
    sqlite3_bind_int64(st, 6, ts_ms);
    sqlite3_bind_blob(st, 7, payload ? payload : "", (int)len, SQLITE_STATIC);
    ret = exec_stmt(s, st, "storing an alert");
    if (ret) {
        check_txn_alive(s);
        return ret;
    }
    txn_saw_seq(s, seq);
    s->txn_alerts_put++;
    s->alerts_pending++;
    return txn_commit(s, "committing an alert");
}

int pdm_store_mark_alert_delivered(struct pdm_store *s, uint64_t seq)
{
    sqlite3_stmt *st = s->st[ST_MARK_ALERT];
    sqlite3_bind_int64(st, 1, (sqlite3_int64)(seq > INT64_MAX ? INT64_MAX : seq));
    int ret = exec_stmt(s, st, "marking an alert delivered");
    if (ret == 0) {
        uint64_t n = (uint64_t)sqlite3_changes(s->db);
        s->alerts_pending -= n;
        if (s->in_txn)
            s->txn_alerts_marked += n;
    }
    return after_write(s, ret);
}

int pdm_store_mark_rows_delivered(struct pdm_store *s, uint64_t lo, uint64_t hi)
{
    if (lo > hi)
        return 0;
    sqlite3_stmt *st = s->st[ST_MARK_ROWS];
    sqlite3_bind_int64(st, 1, (sqlite3_int64)(lo > INT64_MAX ? INT64_MAX : lo));
    sqlite3_bind_int64(st, 2, (sqlite3_int64)(hi > INT64_MAX ? INT64_MAX : hi));
    int ret = exec_stmt(s, st, "marking rows delivered");
    if (ret == 0) {
        uint64_t n = (uint64_t)sqlite3_changes(s->db);
        s->rows_pending -= n;
        if (s->in_txn)
            s->txn_rows_marked += n;
    }
    return after_write(s, ret);
}

int pdm_store_prune(struct pdm_store *s, uint64_t keep_rows)
{
    sqlite3_stmt *st = s->st[ST_PRUNE];
    sqlite3_bind_int64(st, 1, (sqlite3_int64)(keep_rows > INT64_MAX ? INT64_MAX : keep_rows));
    sqlite3_bind_int(st, 2, PRUNE_MAX_ROWS);
    return after_write(s, exec_stmt(s, st, "pruning delivered rows"));
}

/* ---- reading ----------------------------------------------------------------------------- */

/* The outbox sees only committed data: stop below the open transaction's first seq. */
static sqlite3_int64 visible_below(const struct pdm_store *s)
{
    return s->txn_first_seq ? (sqlite3_int64)s->txn_first_seq : NO_UPPER_BOUND;
}

int pdm_store_next_alerts(struct pdm_store *s, uint64_t after_seq, int max, pdm_alert_row_cb cb,
                          void *ctx)
{
    if (!cb)
        return -EINVAL;
    if (max <= 0)
        return 0;
    sqlite3_stmt *st = s->st[ST_NEXT_ALERTS];
    sqlite3_bind_int64(st, 1, (sqlite3_int64)(after_seq > INT64_MAX ? INT64_MAX : after_seq));
    sqlite3_bind_int64(st, 2, visible_below(s));
    sqlite3_bind_int(st, 3, max);
    int n = 0, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        uint64_t seq = (uint64_t)sqlite3_column_int64(st, 0);
        const void *p = sqlite3_column_blob(st, 1);
        size_t len = (size_t)sqlite3_column_bytes(st, 1);
        n++;
        if (cb(ctx, seq, p, len) != 0)
            break;
    }
    int ret = n;
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        ret = fail(s, rc, "reading undelivered alerts");
    /* reset ends the read snapshot; a statement left open would stall WAL checkpoints */
    sqlite3_reset(st);
    return ret;
}

int pdm_store_next_rows(struct pdm_store *s, uint64_t after_seq, struct pdm_row *rows, int max)
{
    if (max <= 0)
        return 0;
    if (!rows)
        return -EINVAL;
    sqlite3_stmt *st = s->st[ST_NEXT_ROWS];
    sqlite3_bind_int64(st, 1, (sqlite3_int64)(after_seq > INT64_MAX ? INT64_MAX : after_seq));
    sqlite3_bind_int64(st, 2, visible_below(s));
    sqlite3_bind_int(st, 3, max);
    int n = 0, rc;
    while (n < max && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        rows[n] = (struct pdm_row){
            .seq = (uint64_t)sqlite3_column_int64(st, 0),
            .kind = (uint8_t)sqlite3_column_int(st, 1),
            .ref = (uint32_t)sqlite3_column_int64(st, 2),
            .ts_ms = sqlite3_column_int64(st, 3),
            .value = sqlite3_column_double(st, 4),
        };
        n++;
    }
    int ret = n;
    if (n < max && rc != SQLITE_DONE)
        ret = fail(s, rc, "reading undelivered rows");
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
        ret = fail(s, rc, "reading the oldest undelivered entry");
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
    st->rows_pending = s->rows_pending;
    st->alerts_pending = s->alerts_pending;
    st->next_seq = s->next_seq;
    /* "Oldest" is the first undelivered entry in seq (storage) order, found by an index seek;
     * timestamps follow that order except across a wall-clock step. */
    if (have_row && have_alert)
        st->oldest_pending_ms = row_ts < alert_ts ? row_ts : alert_ts;
    else if (have_row)
        st->oldest_pending_ms = row_ts;
    else if (have_alert)
        st->oldest_pending_ms = alert_ts;
    else
        st->oldest_pending_ms = 0;
    return 0;
}

int pdm_store_open_alerts(struct pdm_store *s, pdm_open_alert_cb cb, void *ctx)
{
    if (!cb)
        return -EINVAL;
    sqlite3_stmt *st = s->st[ST_OPEN_ALERTS];
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct pdm_stored_alert a = {
            .seq = (uint64_t)sqlite3_column_int64(st, 0),
            .state = sqlite3_column_int(st, 3),
            .severity = sqlite3_column_int(st, 4),
        };
        if (a.state == STATE_CLEARED)
            continue;
        const char *asset = (const char *)sqlite3_column_text(st, 1);
        const char *id = (const char *)sqlite3_column_text(st, 2);
        snprintf(a.asset, sizeof(a.asset), "%s", asset ? asset : "");
        snprintf(a.alert_id, sizeof(a.alert_id), "%s", id ? id : "");
        cb(ctx, &a);
    }
    int ret = 0;
    if (rc != SQLITE_DONE)
        ret = fail(s, rc, "reading open alerts");
    sqlite3_reset(st);
    return ret;
}
