/* The durable buffer (see store.h): one SQLite database in WAL mode, used from the main loop
 * only.
 *
 * Memory: SQLite's page cache is capped at 512 KiB per connection (PRAGMA cache_size=-512). The
 * process-wide ceiling, sqlite3_hard_heap_limit64(), is set by the agent at start-up and not
 * here: it is global to the process and a library module must not change it behind the
 * program's back. Our own allocations, all made at open or when a name is first seen:
 *  - the struct with its holding area (see below): about 3.2 MB of address space, calloc'd, so
 *    the kernel backs only the pages actually touched (a few KB while writes succeed);
 *  - one copy of each sensor/asset name (at most STORE_MAX_NAMES, each <= NAME_MAX_LEN bytes).
 * Putting, reading and marking rows allocates nothing here.
 *
 * Holding area: readings are staged in a ring of HOLD_ROWS rows (32 bytes each: 65,536 rows =
 * 2 MiB) and inserted into SQLite when the caller commits. If that commit fails (I/O error,
 * disk full) they stay in the ring and the next commit retries; when the ring is full the
 * oldest rows go (counted in rows_dropped). An alert that cannot be written is kept in one of
 * HOLD_ALERTS slots (256 x ~4.3 KB = 1.1 MB, payload <= HOLD_PAYLOAD) and served to the outbox
 * from memory with its seq until it can be written. Alerts are never dropped for rows.
 *
 * Durability and visibility:
 *  - Readings become visible to the outbox only when committed; an alert commits at once
 *    (together with staged readings). synchronous=FULL: a commit that returned is on disk.
 *  - seq_hw in the meta table is the highest seq allocated; it is written inside every
 *    transaction that stores something with a new seq, so it never lags the rows it covers and
 *    survives prune deleting every row.
 *  - seq.reserve (next to the database) holds "reserved up to R", written durably before any
 *    seq above R is handed out. When the database is lost or replaced the counter restarts at
 *    R + 1, so a seq never repeats for the device. An alert held in memory (writes failing)
 *    may be published before its seq is on disk; while any is held, the marker file
 *    seq.unsafe exists, and an open that finds it also continues above R: a crash in that
 *    window costs a gap in seq, never a seq used twice.
 *  - Delivered marks join the open transaction when readings are staged (a crash then loses
 *    the marks and the rows are sent again: at-least-once), and commit on their own otherwise.
 *    The delivered and dropped totals are written in the same transaction as the change.
 *
 * Cap (pdm_store_set_limits): after each commit, used bytes = (page_count - freelist_count) *
 * page_size are compared with the cap less a WAL allowance (O(1): header reads and a stat).
 * Above 90 % the oldest delivered rows go, then the oldest undelivered ones, in chunks of
 * EVICT_CHUNK rows, until under 80 %. Freed pages are reused; new databases use
 * auto_vacuum=INCREMENTAL so the file can also shrink when it is over the cap.
 *
 * The store is split over store.c (this file: the database itself), store_txn.c, store_cap.c
 * and store_service.c; store_int.h lists what they share. */
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

/* Schema version 1. The partial indexes keep only undelivered entries, so
 * "next undelivered" and "oldest undelivered" are index seeks however many delivered rows are
 * kept, and the index shrinks as rows are delivered. */
static const char SCHEMA_SQL[] =
    "CREATE TABLE IF NOT EXISTS names(kind INTEGER, id INTEGER, name TEXT,"
    " PRIMARY KEY(kind, id), UNIQUE(kind, name));"
    "CREATE TABLE IF NOT EXISTS rows(seq INTEGER PRIMARY KEY, kind INTEGER, ref INTEGER,"
    " ts_ms INTEGER, value REAL, delivered INTEGER NOT NULL DEFAULT 0,"
    " quality INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE IF NOT EXISTS alerts(seq INTEGER PRIMARY KEY, asset TEXT, alert_id TEXT,"
    " state INTEGER, severity INTEGER, ts_ms INTEGER, payload BLOB,"
    " delivered INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value INTEGER);"
    "CREATE INDEX IF NOT EXISTS rows_undelivered ON rows(seq) WHERE delivered = 0;"
    "CREATE INDEX IF NOT EXISTS alerts_undelivered ON alerts(seq) WHERE delivered = 0;"
    "CREATE INDEX IF NOT EXISTS alerts_by_asset ON alerts(asset, seq);"
    "PRAGMA user_version = " STR(SCHEMA_VERSION) ";";

/* Added for the cap (issue 3), also to version-1 files made before it: eviction and prune find
 * the oldest delivered rows by a seek instead of walking an undelivered backlog. */
static const char DELIVERED_INDEX_SQL[] =
    "CREATE INDEX IF NOT EXISTS rows_delivered ON rows(seq) WHERE delivered = 1";

/* Added for data quality (issue 4), also to version-1 files made before it. An added column
 * with a default is what an older agent can still write (it names its columns and gets 0, good)
 * so this stays schema version 1: a downgrade keeps working instead of refusing the file. */
static const char HAS_QUALITY_SQL[] =
    "SELECT COUNT(*) FROM pragma_table_info('rows') WHERE name = 'quality'";
static const char ADD_QUALITY_SQL[] =
    "ALTER TABLE rows ADD COLUMN quality INTEGER NOT NULL DEFAULT 0";

/* Usage counters and service visits (issue 6), also added to version-1 files made before it:
 * new tables an older agent never touches. usage: one row per asset, rewritten with the
 * readings' commits when it changed. services: one row per recorded visit, with its outcome
 * once judged (0 pending, 1 fix confirmed, 2 fault persists). acks: acknowledged alert ids. */
static const char USAGE_SQL[] =
    "CREATE TABLE IF NOT EXISTS usage(asset TEXT PRIMARY KEY, run_ms INTEGER, starts INTEGER,"
    " running INTEGER, svc_run_ms INTEGER, svc_starts INTEGER, svc_ts_ms INTEGER,"
    " confirm_ts_ms INTEGER, obs_max_p REAL, obs_evals INTEGER, visit INTEGER);"
    "CREATE TABLE IF NOT EXISTS services(id INTEGER PRIMARY KEY, asset TEXT, ts_ms INTEGER,"
    " visit_ref TEXT, technician TEXT, note TEXT, run_ms INTEGER, starts INTEGER,"
    " outcome INTEGER NOT NULL DEFAULT 0, outcome_ts_ms INTEGER, max_p REAL);"
    "CREATE INDEX IF NOT EXISTS services_by_asset ON services(asset, id);"
    "CREATE TABLE IF NOT EXISTS acks(alert_id TEXT PRIMARY KEY, ts_ms INTEGER);"
    "CREATE INDEX IF NOT EXISTS alerts_by_id ON alerts(alert_id, seq);";

/* Prepared once at open, reset after every use. INDEXED BY pins the partial indexes: without it
 * the planner may prefer a rowid range scan, which walks over every delivered row. */
static const char *const STMT_SQL[ST_COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_SET_META] = "INSERT OR REPLACE INTO meta(key, value) VALUES(?1, ?2)",
    [ST_PUT_ROW] = "INSERT INTO rows(seq, kind, ref, ts_ms, value, quality)"
                   " VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
    [ST_PUT_ALERT] = "INSERT INTO alerts(seq, asset, alert_id, state, severity, ts_ms, payload)"
                     " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [ST_PUT_NAME] = "INSERT INTO names(kind, id, name) VALUES(?1, ?2, ?3)",
    [ST_NEXT_ROWS] = "SELECT " STORE_ROW_COLUMNS " FROM rows"
                     " INDEXED BY rows_undelivered"
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
    [ST_PRUNE] = "DELETE FROM rows WHERE seq IN (SELECT seq FROM rows INDEXED BY rows_delivered"
                 " WHERE delivered = 1 AND seq <= (SELECT seq FROM rows INDEXED BY rows_delivered"
                 " WHERE delivered = 1 ORDER BY seq DESC LIMIT 1 OFFSET ?1) ORDER BY seq"
                 " LIMIT ?2)",
    [ST_EVICT_DELIVERED] = "DELETE FROM rows WHERE seq IN (SELECT seq FROM rows INDEXED BY"
                           " rows_delivered WHERE delivered = 1 ORDER BY seq LIMIT ?1)",
    [ST_EVICT_UNDELIVERED] = "DELETE FROM rows WHERE seq IN (SELECT seq FROM rows INDEXED BY"
                             " rows_undelivered WHERE delivered = 0 ORDER BY seq LIMIT ?1)",
    /* both read the database header: O(1) */
    [ST_PAGE_COUNT] = "PRAGMA page_count",
    [ST_FREELIST] = "PRAGMA freelist_count",
    [ST_PUT_USAGE] = "INSERT OR REPLACE INTO usage(asset, run_ms, starts, running, svc_run_ms,"
                     " svc_starts, svc_ts_ms, confirm_ts_ms, obs_max_p, obs_evals, visit)"
                     " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    [ST_GET_USAGE] = "SELECT run_ms, starts, running, svc_run_ms, svc_starts, svc_ts_ms,"
                     " confirm_ts_ms, obs_max_p, obs_evals, visit FROM usage WHERE asset = ?1",
    [ST_PUT_VISIT] = "INSERT INTO services(asset, ts_ms, visit_ref, technician, note, run_ms,"
                     " starts) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [ST_SET_OUTCOME] = "UPDATE services SET outcome = ?2, outcome_ts_ms = ?3, max_p = ?4"
                       " WHERE id = ?1",
    [ST_PUT_ACK] = "INSERT OR REPLACE INTO acks(alert_id, ts_ms) VALUES(?1, ?2)",
    [ST_GET_ACK] = "SELECT ts_ms FROM acks WHERE alert_id = ?1",
    [ST_ALERT_STATE] = "SELECT state FROM alerts WHERE alert_id = ?1 ORDER BY seq DESC LIMIT 1",
    [ST_RECENT_ALERTS] = "SELECT seq, asset, alert_id, state, severity, ts_ms FROM alerts"
                         " WHERE asset IN (?1, 'maint:' || ?1, 'service:' || ?1)"
                         " ORDER BY seq DESC LIMIT ?2",
};

const char *const STORE_COUNTER_KEY[C_COUNT] = {
    [C_ROWS_DELIVERED] = "rows_delivered",
    [C_ALERTS_DELIVERED] = "alerts_delivered",
    [C_ROWS_DROPPED] = "rows_dropped",
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
int store_fail(struct pdm_store *s, int rc, const char *what)
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
    if (sys > 0 && (code == SQLITE_IOERR || code == SQLITE_CANTOPEN || code == SQLITE_FULL))
        note(s, "%s (%s%s) while %s", sqlite3_errmsg(s->db), strerror(sys), op, what);
    else if (*op)
        note(s, "%s (%s) while %s", sqlite3_errmsg(s->db), op + 2, what);
    else
        note(s, "%s while %s", sqlite3_errmsg(s->db), what);
    return errno_of(s->db, rc);
}

/* Runs a statement that returns no rows and resets it. */
int store_exec_stmt(struct pdm_store *s, sqlite3_stmt *st, const char *what)
{
    int rc = sqlite3_step(st);
    int ret = 0;
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        ret = store_fail(s, rc, what);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return ret;
}

/* ---- decoding stored rows ------------------------------------------------------------------ */

void store_decode_row(sqlite3_stmt *st, struct pdm_row *row)
{
    *row = (struct pdm_row){
        .seq = (uint64_t)sqlite3_column_int64(st, 0),
        .kind = (uint8_t)sqlite3_column_int(st, 1),
        .ref = (uint32_t)sqlite3_column_int64(st, 2),
        .ts_ms = sqlite3_column_int64(st, 3),
        .value = sqlite3_column_double(st, 4),
        .quality = (uint8_t)sqlite3_column_int(st, 5),
    };
}

void store_decode_alert(sqlite3_stmt *st, struct pdm_stored_alert *a)
{
    *a = (struct pdm_stored_alert){
        .seq = (uint64_t)sqlite3_column_int64(st, 0),
        .state = sqlite3_column_int(st, 3),
        .severity = sqlite3_column_int(st, 4),
    };
    const char *asset = (const char *)sqlite3_column_text(st, 1);
    const char *id = (const char *)sqlite3_column_text(st, 2);
    snprintf(a->asset, sizeof(a->asset), "%s", asset ? asset : "");
    snprintf(a->alert_id, sizeof(a->alert_id), "%s", id ? id : "");
}

/* ---- open / close ------------------------------------------------------------------------ */

int store_exec_sql(struct pdm_store *s, const char *sql, const char *what)
{
    int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? 0 : store_fail(s, rc, what);
}

/* One-off query returning a single integer (open time only). */
static int query_int(struct pdm_store *s, const char *sql, int64_t *out, const char *what)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return store_fail(s, rc, what);
    rc = sqlite3_step(st);
    int ret = 0;
    if (rc == SQLITE_ROW)
        *out = sqlite3_column_int64(st, 0);
    else
        ret = store_fail(s, rc == SQLITE_DONE ? SQLITE_CORRUPT : rc, what);
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
        return store_fail(s, rc, "reading the sensor and asset names");
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
        ret = store_fail(s, rc, "reading the sensor and asset names");
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
    struct stat sb;
    int e = 0;
    if (stat(s->dir, &sb) != 0)
        e = errno;
    else if (!S_ISDIR(sb.st_mode))
        e = ENOTDIR;
    else if (access(s->dir, W_OK | X_OK) != 0)
        e = errno;
    if (e == 0)
        return 0;
    note(s,
         "data directory %s: %s (the agent creates the database and its -wal and -shm files "
         "there)",
         s->dir, strerror(e));
    return -e;
}

/* PRAGMA quick_check: O(size of the file), about a second per 100 MB on an SD card; run once
 * at open. Returns 0 when "ok", -EBADMSG with s->damage set when damaged, else -errno. */
static int quick_check(struct pdm_store *s)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, "PRAGMA quick_check(1)", -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    int ret = 0;
    if (rc == SQLITE_ROW) {
        const char *r = (const char *)sqlite3_column_text(st, 0);
        if (!r || strcmp(r, "ok") != 0) {
            snprintf(s->damage, sizeof(s->damage), "%s", r ? r : "no answer");
            for (char *c = s->damage; *c; c++) /* one log line */
                if (*c == '\n')
                    *c = ' ';
            ret = -EBADMSG;
        }
    } else {
        ret = store_fail(s, rc, "checking the database (quick_check)");
        if (ret == -EBADMSG)
            snprintf(s->damage, sizeof(s->damage), "%s", sqlite3_errmsg(s->db));
    }
    sqlite3_finalize(st);
    return ret;
}

static int open_db(struct pdm_store *s, int64_t *hw_out, int64_t *top_out)
{
    int rc = sqlite3_open_v2(
        s->path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        if (!s->db)
            return (note(s, "out of memory while opening the database"), -ENOMEM);
        return store_fail(s, rc, "opening the database");
    }
    sqlite3_extended_result_codes(s->db, 1);
    /* SQLite falls back to read-only when the file exists but cannot be written. */
    if (sqlite3_db_readonly(s->db, "main") == 1) {
        note(s, "the database file is not writable by the agent; fix its owner or permissions");
        return -EROFS;
    }
    sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);

    int ret = quick_check(s);
    if (ret)
        return ret;
    int64_t version = 0;
    ret = query_int(s, "PRAGMA user_version", &version, "reading the schema version");
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
    /* Must come before the first table: lets incremental_vacuum give freed pages back to the
     * filesystem when the buffer is over its cap. A no-op on files made before issue 3. */
    if (version == 0) {
        ret = store_exec_sql(s, "PRAGMA auto_vacuum=INCREMENTAL", "setting up a new database");
        if (ret)
            return ret;
    }

    /* journal_mode answers with the mode now in force; anything but "wal" means it refused. */
    sqlite3_stmt *st = NULL;
    rc = sqlite3_prepare_v2(s->db, "PRAGMA journal_mode=WAL", -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        ret = store_fail(s, rc, "switching to WAL mode");
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
    ret = store_exec_sql(s, PRAGMAS, "setting up the connection");
    if (ret)
        return ret;

    ret = store_exec_sql(s, "BEGIN IMMEDIATE", "creating the tables");
    if (ret == 0 && version < SCHEMA_VERSION)
        ret = store_exec_sql(s, SCHEMA_SQL, "creating the tables");
    if (ret == 0)
        ret = store_exec_sql(s, DELIVERED_INDEX_SQL, "creating the tables");
    if (ret == 0)
        ret = store_exec_sql(s, USAGE_SQL, "creating the usage and service tables");
    int64_t has_quality = 0;
    if (ret == 0)
        ret = query_int(s, HAS_QUALITY_SQL, &has_quality, "checking the rows table");
    if (ret == 0 && !has_quality)
        ret = store_exec_sql(s, ADD_QUALITY_SQL, "adding the quality column");
    if (ret == 0)
        ret = store_exec_sql(s, "COMMIT", "committing the new tables");
    if (ret) {
        if (!sqlite3_get_autocommit(s->db))
            sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        return ret;
    }

    for (int i = 0; i < ST_COUNT; i++) {
        rc = sqlite3_prepare_v3(s->db, STMT_SQL[i], -1, SQLITE_PREPARE_PERSISTENT, &s->st[i], NULL);
        if (rc != SQLITE_OK)
            return store_fail(s, rc, "preparing statements (is the file damaged?)");
    }

    ret = load_names(s);
    if (ret)
        return ret;

    int64_t hw = 0, max_row = 0, max_alert = 0, rows = 0, alerts = 0, page_size = 0;
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
    if (ret == 0)
        ret = query_int(s, "PRAGMA page_size", &page_size, "reading the page size");
    for (int i = 0; ret == 0 && i < C_COUNT; i++) {
        char sql[128];
        int64_t v = 0;
        snprintf(sql, sizeof(sql), "SELECT COALESCE((SELECT value FROM meta WHERE key = '%s'), 0)",
                 STORE_COUNTER_KEY[i]);
        ret = query_int(s, sql, &v, "reading the delivered and dropped totals");
        s->count[i] = s->count_on_disk[i] = v > 0 ? (uint64_t)v : 0;
    }
    if (ret)
        return ret;
    if (hw < 0 || max_row < 0 || max_alert < 0) {
        note(s, "negative sequence number in the database (damaged file?)");
        return -EBADMSG;
    }
    int64_t top = hw;
    top = max_row > top ? max_row : top;
    top = max_alert > top ? max_alert : top;
    *hw_out = hw;
    *top_out = top;
    s->next_seq = (uint64_t)top + 1;
    s->hw_on_disk = (uint64_t)hw;
    s->rows_pending = (uint64_t)rows;
    s->alerts_pending = (uint64_t)alerts;
    s->page_size = page_size > 0 ? page_size : 4096;
    return 0;
}

/* Finalizes and closes without a checkpoint; the names go too (a fresh file has none). */
static void close_db(struct pdm_store *s)
{
    for (int i = 0; i < ST_COUNT; i++) {
        sqlite3_finalize(s->st[i]);
        s->st[i] = NULL;
    }
    if (s->db)
        sqlite3_close(s->db);
    s->db = NULL;
    for (size_t i = 0; i < s->n_names; i++)
        free(s->names[i].name);
    s->n_names = 0;
    s->next_id[0] = s->next_id[1] = 1;
}

static void free_store(struct pdm_store *s)
{
    close_db(s);
    free(s->names);
    free(s->ring);
    free(s->held);
    free(s->usage);
    free(s->usage_disk);
    free(s->usage_asset);
    free(s);
}

/* Deletes the oldest moved-aside copies (and their -wal/-shm) beyond CORRUPT_KEEP. The names
 * carry the time, so name order is age order. */
static void prune_corrupt_copies(struct pdm_store *s)
{
    static const char prefix[] = STORE_FILE CORRUPT_TAG;
    for (;;) {
        DIR *d = opendir(s->dir);
        if (!d)
            return;
        int n = 0;
        char oldest[256] = "";
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            size_t len = strlen(e->d_name);
            if (strncmp(e->d_name, prefix, sizeof(prefix) - 1) != 0 || len >= sizeof(oldest) ||
                (len > 4 && (strcmp(e->d_name + len - 4, "-wal") == 0 ||
                             strcmp(e->d_name + len - 4, "-shm") == 0)))
                continue;
            n++;
            if (!oldest[0] || strcmp(e->d_name, oldest) < 0)
                snprintf(oldest, sizeof(oldest), "%s", e->d_name);
        }
        closedir(d);
        if (n <= CORRUPT_KEEP)
            return;
        static const char *const sfx[] = {"", "-wal", "-shm"};
        for (int i = 0; i < 3; i++) {
            char p[PATH_MAX + 300];
            snprintf(p, sizeof(p), "%s/%s%s", s->dir, oldest, sfx[i]);
            if (unlink(p) != 0 && errno != ENOENT && i == 0)
                return; /* cannot delete: do not loop forever */
        }
        pdm_info("store: deleted the old damaged copy %s/%s (keeping the newest %d)", s->dir,
                 oldest, CORRUPT_KEEP);
    }
}

/* Renames the damaged database and its -wal and -shm to pdm-agent.db.corrupt-YYYYmmdd-HHMMSS
 * (with -NN when that exists). 0 or -errno with s->msg set. */
static int move_aside(struct pdm_store *s)
{
    char stamp[32];
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", &tm);
    char dst[sizeof(s->recovered_path)];
    struct stat sb;
    int i;
    for (i = 1; i < 100; i++) {
        if (i == 1)
            snprintf(dst, sizeof(dst), "%s" CORRUPT_TAG "%s", s->path, stamp);
        else
            snprintf(dst, sizeof(dst), "%s" CORRUPT_TAG "%s-%02d", s->path, stamp, i);
        if (lstat(dst, &sb) != 0)
            break;
    }
    if (i == 100) {
        note(s, "the database is damaged and too many copies were moved aside this second");
        return -EEXIST;
    }
    if (rename(s->path, dst) != 0) {
        int e = errno;
        note(s, "the database is damaged (%s) and cannot be moved aside to %s: %s", s->damage, dst,
             strerror(e));
        return -e;
    }
    static const char *const sfx[] = {"-wal", "-shm"};
    for (int k = 0; k < 2; k++) {
        char from[sizeof(s->path) + 8], to[sizeof(dst) + 8];
        snprintf(from, sizeof(from), "%s%s", s->path, sfx[k]);
        snprintf(to, sizeof(to), "%s%s", dst, sfx[k]);
        if (rename(from, to) != 0 && errno != ENOENT)
            unlink(from); /* a stale -wal/-shm must not be applied to the fresh file */
    }
    snprintf(s->recovered_path, sizeof(s->recovered_path), "%s", dst);
    return 0;
}

/* Allocates the struct and its holding area (the only large allocation: see the top). */
static struct pdm_store *alloc_store(void)
{
    struct pdm_store *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->ring = calloc(HOLD_ROWS, sizeof(*s->ring));
    s->held = calloc(HOLD_ALERTS, sizeof(*s->held));
    if (!s->ring || !s->held) {
        free(s->ring);
        free(s->held);
        free(s);
        return NULL;
    }
    s->next_id[0] = s->next_id[1] = 1;
    s->wal_budget = WAL_LIMIT_BYTES;
    return s;
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
    if (dlen >= DIR_MAX) {
        snprintf(err, errlen, "store %.*s: path too long", (int)dlen, dir);
        return -ENAMETOOLONG;
    }
    struct pdm_store *s = alloc_store();
    if (!s) {
        snprintf(err, errlen, "store %s: out of memory (the holding area needs about 3.2 MB)", dir);
        return -ENOMEM;
    }
    snprintf(s->dir, sizeof(s->dir), "%.*s", (int)dlen, dir);
    snprintf(s->path, sizeof(s->path), "%s%s%s", s->dir, dlen == 1 && dir[0] == '/' ? "" : "/",
             STORE_FILE);
    snprintf(s->wal_path, sizeof(s->wal_path), "%s-wal", s->path);
    s->opening = 1;
    int64_t hw = 0, top = 0;
    int ret = open_db(s, &hw, &top);
    if (ret == -EBADMSG) {
        /* Damaged: keep it for diagnosis and start afresh rather than refuse to run. */
        char why[sizeof(s->msg)];
        snprintf(why, sizeof(why), "%s", s->damage[0] ? s->damage : s->msg);
        close_db(s);
        ret = move_aside(s);
        if (ret == 0) {
            pdm_err("store %s is damaged (quick_check: %s); moved it to %s and started a fresh "
                    "buffer; undelivered data in the old file is not sent",
                    s->path, why, s->recovered_path);
            s->recovered = 1;
            prune_corrupt_copies(s);
            s->damage[0] = '\0';
            ret = open_db(s, &hw, &top);
        }
    }
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

    /* seq: every seq ever handed out is <= the reservation. A fresh file (recovered, or
     * replaced by hand) has no high-water of its own: continue above the reservation. */
    uint64_t r = 0;
    int rr = store_read_reserve(s, &r);
    if (rr == -EBADMSG)
        pdm_warn("store %s/" RESERVE_FILE ": unreadable; recreated from the database", s->dir);
    s->reserved = rr == 0 ? r : 0;
    char unsafe_path[PATH_MAX + 32];
    snprintf(unsafe_path, sizeof(unsafe_path), "%s/" UNSAFE_FILE, s->dir);
    int unsafe = access(unsafe_path, F_OK) == 0;
    if (unsafe)
        pdm_warn("store %s: the last run ended while alerts were held in memory; seq continues "
                 "above %llu so that none is used twice",
                 s->dir, (unsigned long long)s->reserved);
    if ((s->recovered || top == 0 || unsafe) && s->next_seq <= s->reserved)
        s->next_seq = s->reserved + 1;
    if (rr != 0 || s->next_seq > s->reserved)
        store_write_reserve(s, s->next_seq - 1 + SEQ_RESERVE_STEP);
    if (unsafe && s->reserved >= s->next_seq) {
        /* Record the skip in the database too, or the next clean start would resume at the
         * old high-water; only then may the marker go. */
        int w = store_exec_sql(s, "BEGIN", "recording the seq skip");
        if (w == 0)
            w = store_set_meta(s, "seq_hw", s->next_seq - 1);
        if (w == 0)
            w = store_exec_sql(s, "COMMIT", "recording the seq skip");
        if (w == 0) {
            s->hw_on_disk = s->next_seq - 1;
            unlink(unsafe_path);
        } else {
            store_exec_sql(s, "ROLLBACK", "recording the seq skip");
        }
    }
    (void)hw;
    *out = s;
    return 0;
}

void pdm_store_close(struct pdm_store *s)
{
    if (!s)
        return;
    if ((s->in_txn || s->ring_n || s->n_held) &&
        store_write_pending(s, "committing at shutdown") != 0)
        pdm_err("%s; %zu readings and %zu alerts held in memory are lost", s->msg, s->ring_n,
                s->n_held);
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

int store_kind_ok(int kind)
{
    return kind == PDM_ROW_READING || kind == PDM_ROW_SCORE;
}

int store_commit_all(struct pdm_store *s, const char *what)
{
    if (!s->in_txn && !s->ring_n && !s->n_held && !store_usage_dirty(s))
        return 0;
    int ret = store_write_pending(s, what);
    if (ret == 0)
        store_enforce_limits(s);
    return ret;
}

int pdm_store_name_id(struct pdm_store *s, enum pdm_row_kind kind, const char *name, uint32_t *id)
{
    if (!store_kind_ok((int)kind) || !name || !*name || strlen(name) > NAME_MAX_LEN)
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
    int ret = store_commit_all(s, "committing before adding a name");
    if (ret)
        return ret;
    uint32_t new_id = s->next_id[kind];
    sqlite3_stmt *st = s->st[ST_PUT_NAME];
    sqlite3_bind_int(st, 1, (int)kind);
    sqlite3_bind_int64(st, 2, new_id);
    sqlite3_bind_text(st, 3, name, -1, SQLITE_STATIC);
    ret = store_exec_stmt(s, st, "adding a sensor or asset name");
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
