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
 * auto_vacuum=INCREMENTAL so the file can also shrink when it is over the cap. */
#include "store.h"

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

#define STORE_FILE      "pdm-agent.db"
#define RESERVE_FILE    "seq.reserve"
#define UNSAFE_FILE     "seq.unsafe" /* exists while seqs may be published but not on disk */
#define CORRUPT_TAG     ".corrupt-"
#define CORRUPT_KEEP    3 /* damaged copies kept for diagnosis; older ones are deleted */
#define SCHEMA_VERSION  1
#define CACHE_KIB       512     /* page cache per connection, KiB */
#define BUSY_TIMEOUT_MS 1000    /* wait for a lock held by e.g. a pdmctl reader, ms */
#define WAL_LIMIT_BYTES 4194304 /* WAL is truncated to this after a checkpoint, bytes */
#define WAL_MIN_BYTES   65536   /* smallest WAL allowance under a small cap, bytes */
#define STORE_MAX_NAMES 4096    /* names cached in memory, all kinds together */
#define NAME_MAX_LEN    255     /* bytes, without the NUL */
#define ASSET_MAX_LEN                                                                              \
    72                           /* bytes; struct pdm_stored_alert.asset has room for 72 + NUL:    \
                                  * an asset name or "sensor:" + a sensor name (64) */
#define ALERT_ID_MAX_LEN 95      /* bytes; struct pdm_stored_alert.alert_id is 96 */
#define STATE_CLEARED    3       /* enum pdm_alert_state PDM_ALERT_CLEARED */
#define HOLD_ROWS        65536   /* staged/held readings; power of two */
#define HOLD_ALERTS      256     /* alerts held in memory while writes fail */
#define HOLD_PAYLOAD     4096    /* bytes of encoded alert a slot can hold */
#define SEQ_RESERVE_STEP 1000000 /* seqs reserved per write of seq.reserve */
#define SEQ_RETRY_STEP   10000   /* seqs handed out before retrying a failed reservation */
#define EVICT_CHUNK      2000    /* rows deleted per eviction transaction: a few ms */
#define EVICT_MAX_ROWS   100000  /* rows deleted per commit at most; the rest at the next */
#define FULL_LOG_MS      60000   /* "buffer full" is logged at most this often, ms */
#define PRUNE_MAX_ROWS   20000   /* rows deleted per pdm_store_prune() call: ~5 ms here */
#define DIR_MAX          900     /* data folder path, bytes: leaves room in recovered_path[1024] */
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

enum stmt_id {
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_SET_META,
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
    ST_EVICT_DELIVERED,
    ST_EVICT_UNDELIVERED,
    ST_PAGE_COUNT,
    ST_FREELIST,
    ST_PUT_USAGE,
    ST_GET_USAGE,
    ST_PUT_VISIT,
    ST_SET_OUTCOME,
    ST_PUT_ACK,
    ST_GET_ACK,
    ST_ALERT_STATE,
    ST_RECENT_ALERTS,
    ST_COUNT
};

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
    [ST_NEXT_ROWS] = "SELECT seq, kind, ref, ts_ms, value, quality FROM rows"
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

/* Totals kept in the meta table, each written in the transaction that changes it. */
enum counter_id { C_ROWS_DELIVERED, C_ALERTS_DELIVERED, C_ROWS_DROPPED, C_COUNT };
static const char *const COUNTER_KEY[C_COUNT] = {
    [C_ROWS_DELIVERED] = "rows_delivered",
    [C_ALERTS_DELIVERED] = "alerts_delivered",
    [C_ROWS_DROPPED] = "rows_dropped",
};

struct name_ent {
    char *name; /* owned; stays at this address until close (id_name hands it out) */
    uint32_t id;
    uint8_t kind;
};

struct held_row { /* 32 bytes */
    uint64_t seq;
    int64_t ts_ms;
    double value;
    uint32_t ref;
    uint8_t kind;
    uint8_t quality; /* enum pdm_quality_flag, readings only */
};

struct held_alert {
    uint64_t seq;
    int64_t ts_ms;
    int state, severity;
    uint32_t len;
    char asset[ASSET_MAX_LEN + 1];
    char alert_id[ALERT_ID_MAX_LEN + 1];
    uint8_t payload[HOLD_PAYLOAD];
};

struct pdm_store {
    sqlite3 *db;
    sqlite3_stmt *st[ST_COUNT];

    uint64_t next_seq;      /* next seq to hand out; seqs below it may be in use */
    uint64_t hw_on_disk;    /* seq_hw as last committed */
    uint64_t reserved;      /* seq.reserve: every seq handed out is <= this */
    uint64_t reserve_retry; /* after a failed reservation write, retry from this seq on */
    int unsafe_marked;      /* UNSAFE_FILE exists (alerts held in memory) */
    uint64_t marks_undone;  /* delivery marks lost with a failed commit (stats.marks_undone) */

    /* A transaction opened by delivery marks while readings are staged; closed by the next
     * commit. Its marks are undone if that commit fails. */
    int in_txn;
    uint64_t txn_rows_marked, txn_alerts_marked;

    /* Undelivered counts including staged and held entries: counted once at open, then kept
     * up to date, because COUNT(*) walks the whole partial index (cost grows with the backlog). */
    uint64_t rows_pending, alerts_pending;
    uint64_t count[C_COUNT], count_on_disk[C_COUNT];

    /* Holding area (see the top of the file). ring: rows[(head + i) % HOLD_ROWS], i < n_rows. */
    struct held_row *ring;
    size_t ring_head, ring_n;
    struct held_alert *held; /* unordered; n_held used */
    size_t n_held;
    int write_failing;

    /* Cap and disk reserve. */
    uint64_t max_bytes, reserve_bytes, wal_budget, frozen_bytes;
    int64_t page_size;
    int evicting, low_disk, alerts_only;
    int64_t full_logged_ms;
    uint64_t dropped_logged;

    /* Usage counters (pdm_store_usage_*): per asset slot, the staged copy and the copy last
     * committed; a slot is written when they differ. Allocated once by pdm_store_usage_slots. */
    struct pdm_usage_counts *usage, *usage_disk;
    char (*usage_asset)[ASSET_MAX_LEN + 1];
    uint32_t n_usage;

    struct name_ent *names;
    size_t n_names, cap_names;
    uint32_t next_id[2]; /* per enum pdm_row_kind */

    int opening; /* errors go to the caller's err buffer, not the log */
    int recovered;
    struct pdm_complaint failing; /* write failures: logged once, then at growing intervals */
    struct pdm_complaint reserve_failing;
    char msg[512];    /* last error, "store PATH: reason while doing what" */
    char damage[256]; /* quick_check's first complaint, when the file is damaged */
    char recovered_path[DIR_MAX + 64];
    char dir[DIR_MAX];
    char path[DIR_MAX + 16]; /* {dir}/pdm-agent.db */
    char wal_path[DIR_MAX + 24];
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
    if (sys > 0 && (code == SQLITE_IOERR || code == SQLITE_CANTOPEN || code == SQLITE_FULL))
        note(s, "%s (%s%s) while %s", sqlite3_errmsg(s->db), strerror(sys), op, what);
    else if (*op)
        note(s, "%s (%s) while %s", sqlite3_errmsg(s->db), op + 2, what);
    else
        note(s, "%s while %s", sqlite3_errmsg(s->db), what);
    return errno_of(s->db, rc);
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
static int write_reserve(struct pdm_store *s, uint64_t r)
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
static int read_reserve(struct pdm_store *s, uint64_t *r)
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
        if (write_reserve(s, n - 1 + SEQ_RESERVE_STEP) != 0)
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
static void check_txn_alive(struct pdm_store *s)
{
    if (s->in_txn && sqlite3_get_autocommit(s->db))
        txn_lost(s);
}

static void rollback(struct pdm_store *s)
{
    if (!sqlite3_get_autocommit(s->db)) {
        sqlite3_step(s->st[ST_ROLLBACK]);
        sqlite3_reset(s->st[ST_ROLLBACK]);
    }
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

static int set_meta(struct pdm_store *s, const char *key, uint64_t v)
{
    sqlite3_stmt *st = s->st[ST_SET_META];
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)v);
    return exec_stmt(s, st, "recording counters");
}

/* Writes the seq high-water and the totals that changed, inside the open transaction. */
static int write_meta(struct pdm_store *s)
{
    int ret = 0;
    uint64_t hw = s->next_seq - 1;
    if (hw > s->hw_on_disk)
        ret = set_meta(s, "seq_hw", hw);
    for (int i = 0; ret == 0 && i < C_COUNT; i++)
        if (s->count[i] != s->count_on_disk[i])
            ret = set_meta(s, COUNTER_KEY[i], s->count[i]);
    return ret;
}

static void meta_written(struct pdm_store *s)
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
    return exec_stmt(s, st, "storing an alert");
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
    return exec_stmt(s, st, "storing a reading");
}

static int usage_dirty(const struct pdm_store *s)
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
        ret = exec_stmt(s, st, "storing usage counters");
    }
    return ret;
}

/* Writes everything staged or held (alerts first, then rows, then seq_hw and totals) and
 * commits. On failure nothing is lost from memory: the rows stay staged, the alerts held, and
 * the next call retries. */
static int write_pending(struct pdm_store *s, const char *what)
{
    int ret = txn_begin(s);
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
        ret = write_meta(s);
    if (ret == 0) {
        int rc = sqlite3_step(s->st[ST_COMMIT]);
        if (rc != SQLITE_DONE)
            ret = fail(s, rc, what);
        sqlite3_reset(s->st[ST_COMMIT]);
    }
    if (ret != 0) {
        /* Give the transaction up whatever the reason (even BUSY): the staged rows would be
         * inserted twice by a retry that found them still in it. */
        rollback(s);
        txn_lost(s);
        s->write_failing = 1;
        return ret;
    }
    size_t rows = s->ring_n, alerts = s->n_held;
    meta_written(s);
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
        check_txn_alive(s);
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
        ret = fail(s, rc, "checking the database (quick_check)");
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
        return fail(s, rc, "opening the database");
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
        ret = exec_sql(s, "PRAGMA auto_vacuum=INCREMENTAL", "setting up a new database");
        if (ret)
            return ret;
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

    ret = exec_sql(s, "BEGIN IMMEDIATE", "creating the tables");
    if (ret == 0 && version < SCHEMA_VERSION)
        ret = exec_sql(s, SCHEMA_SQL, "creating the tables");
    if (ret == 0)
        ret = exec_sql(s, DELIVERED_INDEX_SQL, "creating the tables");
    if (ret == 0)
        ret = exec_sql(s, USAGE_SQL, "creating the usage and service tables");
    int64_t has_quality = 0;
    if (ret == 0)
        ret = query_int(s, HAS_QUALITY_SQL, &has_quality, "checking the rows table");
    if (ret == 0 && !has_quality)
        ret = exec_sql(s, ADD_QUALITY_SQL, "adding the quality column");
    if (ret == 0)
        ret = exec_sql(s, "COMMIT", "committing the new tables");
    if (ret) {
        if (!sqlite3_get_autocommit(s->db))
            sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        return ret;
    }

    for (int i = 0; i < ST_COUNT; i++) {
        rc = sqlite3_prepare_v3(s->db, STMT_SQL[i], -1, SQLITE_PREPARE_PERSISTENT, &s->st[i], NULL);
        if (rc != SQLITE_OK)
            return fail(s, rc, "preparing statements (is the file damaged?)");
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
                 COUNTER_KEY[i]);
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
    int rr = read_reserve(s, &r);
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
        write_reserve(s, s->next_seq - 1 + SEQ_RESERVE_STEP);
    if (unsafe && s->reserved >= s->next_seq) {
        /* Record the skip in the database too, or the next clean start would resume at the
         * old high-water; only then may the marker go. */
        int w = exec_sql(s, "BEGIN", "recording the seq skip");
        if (w == 0)
            w = set_meta(s, "seq_hw", s->next_seq - 1);
        if (w == 0)
            w = exec_sql(s, "COMMIT", "recording the seq skip");
        if (w == 0) {
            s->hw_on_disk = s->next_seq - 1;
            unlink(unsafe_path);
        } else {
            exec_sql(s, "ROLLBACK", "recording the seq skip");
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
    if ((s->in_txn || s->ring_n || s->n_held) && write_pending(s, "committing at shutdown") != 0)
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

/* ---- cap and disk reserve ---------------------------------------------------------------- */

static uint64_t file_bytes(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && sb.st_size > 0 ? (uint64_t)sb.st_size : 0;
}

static int64_t pragma_int(struct pdm_store *s, enum stmt_id id)
{
    sqlite3_stmt *st = s->st[id];
    int64_t v = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    sqlite3_reset(st);
    return v;
}

/* Pages in use and in the file, in bytes. 0 on success. O(1): both come from the header. */
static int db_usage(struct pdm_store *s, uint64_t *used, uint64_t *file)
{
    int64_t pages = pragma_int(s, ST_PAGE_COUNT), free_pages = pragma_int(s, ST_FREELIST);
    if (pages < 0 || free_pages < 0 || free_pages > pages)
        return -EIO;
    *used = (uint64_t)(pages - free_pages) * (uint64_t)s->page_size;
    *file = (uint64_t)pages * (uint64_t)s->page_size;
    return 0;
}

int pdm_store_set_limits(struct pdm_store *s, uint64_t max_bytes, uint64_t reserve_bytes)
{
    if (!s)
        return -EINVAL;
    /* The WAL lives beside the file and counts against the cap: it gets a tenth of it (at most
     * the usual 4 MiB), is checkpointed when it passes that and truncated back to it. */
    uint64_t wal = max_bytes ? max_bytes / 10 : WAL_LIMIT_BYTES;
    wal = wal > WAL_LIMIT_BYTES ? WAL_LIMIT_BYTES : wal < WAL_MIN_BYTES ? WAL_MIN_BYTES : wal;
    if (max_bytes && max_bytes < 4 * WAL_MIN_BYTES)
        return -EINVAL; /* below 256 KiB there is no room for rows beside the WAL */
    char sql[128];
    snprintf(sql, sizeof(sql), "PRAGMA journal_size_limit=%llu; PRAGMA wal_autocheckpoint=%llu;",
             (unsigned long long)wal, (unsigned long long)(wal / 2 / (uint64_t)s->page_size + 1));
    int ret = exec_sql(s, sql, "applying the buffer limits");
    if (ret)
        return ret;
    s->max_bytes = max_bytes;
    s->reserve_bytes = reserve_bytes;
    s->wal_budget = wal;
    s->frozen_bytes = 0;
    s->evicting = 0;
    return 0;
}

/* Logs the drop total at most once a minute while rows are being dropped. */
static void log_full(struct pdm_store *s, uint64_t used, uint64_t cap, uint64_t free_bytes)
{
    uint64_t dropped = s->count[C_ROWS_DROPPED];
    int64_t now = pdm_mono_ms();
    if (dropped == s->dropped_logged ||
        (s->full_logged_ms && now - s->full_logged_ms < FULL_LOG_MS))
        return;
    s->full_logged_ms = now;
    s->dropped_logged = dropped;
    if (s->low_disk)
        pdm_warn("store: filesystem of %s nearly full (%.1f MB free, reserve %.1f MB): buffer "
                 "held at %.1f of %.1f MB: dropped %llu oldest undelivered readings so far to keep "
                 "alerts and recent data",
                 s->dir, free_bytes / 1048576.0, s->reserve_bytes / 1048576.0, used / 1048576.0,
                 cap / 1048576.0, (unsigned long long)dropped);
    else
        pdm_warn("store: buffer full (%.1f of %.1f MB): dropped %llu oldest undelivered readings "
                 "so far to keep alerts and recent data",
                 used / 1048576.0, cap / 1048576.0, (unsigned long long)dropped);
}

/* One eviction transaction: up to EVICT_CHUNK delivered rows, else as many undelivered ones.
 * Returns rows deleted (0: only alerts left) or -errno. */
static int evict_chunk(struct pdm_store *s)
{
    int ret = exec_stmt(s, s->st[ST_BEGIN], "starting an eviction");
    if (ret)
        return ret;
    sqlite3_bind_int(s->st[ST_EVICT_DELIVERED], 1, EVICT_CHUNK);
    ret = exec_stmt(s, s->st[ST_EVICT_DELIVERED], "deleting delivered rows for room");
    int n = ret == 0 ? sqlite3_changes(s->db) : 0, undelivered = 0;
    if (ret == 0 && n == 0) {
        sqlite3_bind_int(s->st[ST_EVICT_UNDELIVERED], 1, EVICT_CHUNK);
        ret = exec_stmt(s, s->st[ST_EVICT_UNDELIVERED], "dropping the oldest undelivered rows");
        n = undelivered = ret == 0 ? sqlite3_changes(s->db) : 0;
    }
    if (ret == 0 && n == 0) {
        rollback(s);
        return 0;
    }
    s->count[C_ROWS_DROPPED] += (uint64_t)undelivered; /* committed with the delete, or undone */
    if (ret == 0)
        ret = write_meta(s);
    if (ret == 0) {
        int rc = sqlite3_step(s->st[ST_COMMIT]);
        if (rc != SQLITE_DONE)
            ret = fail(s, rc, "committing an eviction");
        sqlite3_reset(s->st[ST_COMMIT]);
    }
    if (ret) {
        rollback(s);
        s->count[C_ROWS_DROPPED] -= (uint64_t)undelivered;
        return ret;
    }
    meta_written(s);
    s->rows_pending -= (uint64_t)undelivered;
    return n;
}

/* After each successful commit: keeps the file under the cap and out of the disk reserve.
 * Costs two header reads and one or two stat calls when there is nothing to do. */
static void enforce_limits(struct pdm_store *s)
{
    if (!s->max_bytes && !s->reserve_bytes)
        return;
    uint64_t used, file;
    if (db_usage(s, &used, &file) != 0)
        return;

    uint64_t cap = s->max_bytes ? s->max_bytes - s->wal_budget : UINT64_MAX;
    uint64_t free_bytes = 0;
    if (s->reserve_bytes) {
        struct statvfs v;
        if (statvfs(s->dir, &v) == 0) {
            free_bytes = (uint64_t)v.f_bavail * (uint64_t)v.f_frsize;
            if (free_bytes < s->reserve_bytes && !s->frozen_bytes) {
                /* Stop growing: the file keeps the size it has and reuses its free pages. */
                s->frozen_bytes = file > 0 ? file : (uint64_t)s->page_size;
                pdm_warn("store: filesystem of %s has %.1f MB free, below the reserve of %.1f MB: "
                         "the buffer stops growing at %.1f MB and drops its oldest readings "
                         "instead",
                         s->dir, free_bytes / 1048576.0, s->reserve_bytes / 1048576.0,
                         s->frozen_bytes / 1048576.0);
            } else if (s->frozen_bytes && free_bytes > s->reserve_bytes + s->reserve_bytes / 4) {
                pdm_info("store: filesystem of %s has %.1f MB free again; the buffer may grow to "
                         "its cap",
                         s->dir, free_bytes / 1048576.0);
                s->frozen_bytes = 0;
            }
        }
        s->low_disk = s->frozen_bytes && s->frozen_bytes < cap;
        if (s->low_disk)
            cap = s->frozen_bytes;
    }
    /* Short of disk, the WAL gets the smallest allowance too. */
    uint64_t wal_budget = s->low_disk ? WAL_MIN_BYTES : s->wal_budget;
    uint64_t wal = file_bytes(s->wal_path);
    if (wal > wal_budget &&
        sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL) == SQLITE_OK)
        wal = file_bytes(s->wal_path);
    if (cap == UINT64_MAX)
        return;

    uint64_t high = cap / 10 * 9, low = cap / 10 * 8;
    if (used > high)
        s->evicting = 1;
    if (s->evicting) {
        int deleted = 0;
        while (used > low && deleted < EVICT_MAX_ROWS) {
            int n = evict_chunk(s);
            if (n <= 0) {
                if (n == 0 && !s->alerts_only)
                    pdm_warn("store %s: buffer full of undelivered alerts (%.1f of %.1f MB); "
                             "alerts are never dropped, so the file grows past its cap",
                             s->path, used / 1048576.0, cap / 1048576.0);
                s->alerts_only = n == 0;
                break;
            }
            s->alerts_only = 0;
            deleted += n;
            if (db_usage(s, &used, &file) != 0)
                break;
        }
        if (used <= low)
            s->evicting = 0;
        log_full(s, used + wal, cap + wal_budget, free_bytes);
        wal = file_bytes(s->wal_path);
        if (wal > wal_budget)
            sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
    }
    /* Over the cap on disk (the cap was lowered, or alerts pushed it): hand free pages back. */
    if (file > cap && file > used) {
        char sql[64];
        snprintf(sql, sizeof(sql), "PRAGMA incremental_vacuum(%llu)",
                 (unsigned long long)((file - used) / (uint64_t)s->page_size));
        if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) == SQLITE_OK)
            sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
    }
}

/* ---- names ------------------------------------------------------------------------------- */

static int kind_ok(int kind)
{
    return kind == PDM_ROW_READING || kind == PDM_ROW_SCORE;
}

static int commit_all(struct pdm_store *s, const char *what)
{
    if (!s->in_txn && !s->ring_n && !s->n_held && !usage_dirty(s))
        return 0;
    int ret = write_pending(s, what);
    if (ret == 0)
        enforce_limits(s);
    return ret;
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
    int ret = commit_all(s, "committing before adding a name");
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
    if (!kind_ok((int)kind))
        return -EINVAL;
    if (s->ring_n == HOLD_ROWS) {
        /* Staging is full: a caller that never commits gets an automatic commit; while writes
         * fail, the oldest held reading makes room (counted, persisted with the next commit). */
        if (s->write_failing || commit_all(s, "committing a full staging area") != 0) {
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
    return commit_all(s, "committing");
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
    int ret = txn_begin(s);
    if (ret == 0) {
        ret = insert_alert(s, seq, asset, alert_id, state, severity, ts_ms, payload, len);
        if (ret == -EEXIST || ret == -EINVAL || ret == -EMSGSIZE)
            return ret; /* a caller bug, not a write failure: the transaction goes on */
    }
    if (ret == 0) {
        s->alerts_pending++;
        ret = write_pending(s, "committing an alert");
        if (ret == 0) {
            enforce_limits(s);
            return 0;
        }
        s->alerts_pending--; /* rolled back with the transaction; counted again if held */
    } else {
        check_txn_alive(s);
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
    int ret = txn_begin(s);
    if (ret)
        return ret;
    sqlite3_stmt *st = s->st[ST_MARK_ALERT];
    sqlite3_bind_int64(st, 1, (sqlite3_int64)(seq > INT64_MAX ? INT64_MAX : seq));
    ret = exec_stmt(s, st, "marking an alert delivered");
    if (ret) {
        check_txn_alive(s);
        return ret;
    }
    uint64_t n = (uint64_t)sqlite3_changes(s->db);
    s->alerts_pending -= n;
    s->count[C_ALERTS_DELIVERED] += n;
    s->txn_alerts_marked += n;
    return own ? write_pending(s, "committing a delivery mark") : 0;
}

int pdm_store_mark_rows_delivered(struct pdm_store *s, uint64_t lo, uint64_t hi)
{
    if (lo > hi)
        return 0;
    int own = !s->in_txn && !s->ring_n;
    int ret = txn_begin(s);
    if (ret)
        return ret;
    sqlite3_stmt *st = s->st[ST_MARK_ROWS];
    sqlite3_bind_int64(st, 1, (sqlite3_int64)(lo > INT64_MAX ? INT64_MAX : lo));
    sqlite3_bind_int64(st, 2, (sqlite3_int64)(hi > INT64_MAX ? INT64_MAX : hi));
    ret = exec_stmt(s, st, "marking rows delivered");
    if (ret) {
        check_txn_alive(s);
        return ret;
    }
    uint64_t n = (uint64_t)sqlite3_changes(s->db);
    s->rows_pending -= n;
    s->count[C_ROWS_DELIVERED] += n;
    s->txn_rows_marked += n;
    return own ? write_pending(s, "committing delivery marks") : 0;
}

int pdm_store_prune(struct pdm_store *s, uint64_t keep_rows)
{
    sqlite3_stmt *st = s->st[ST_PRUNE];
    sqlite3_bind_int64(st, 1, (sqlite3_int64)(keep_rows > INT64_MAX ? INT64_MAX : keep_rows));
    sqlite3_bind_int(st, 2, PRUNE_MAX_ROWS);
    return after_write(s, exec_stmt(s, st, "pruning delivered rows"));
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
        ret = fail(s, rc, "reading undelivered alerts");
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
        rows[n] = (struct pdm_row){
            .seq = (uint64_t)sqlite3_column_int64(st, 0),
            .kind = (uint8_t)sqlite3_column_int(st, 1),
            .ref = (uint32_t)sqlite3_column_int64(st, 2),
            .ts_ms = sqlite3_column_int64(st, 3),
            .value = sqlite3_column_double(st, 4),
            .quality = (uint8_t)sqlite3_column_int(st, 5),
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
    st->db_bytes = file_bytes(s->path) + file_bytes(s->wal_path);
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
        ret = fail(s, rc, "reading usage counters");
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
    int ret = txn_begin(s);
    if (ret == 0)
        ret = exec_stmt(s, st, what);
    if (ret == 0)
        return write_pending(s, what);
    check_txn_alive(s);
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
    int ret = txn_begin(s);
    if (ret == 0)
        ret = exec_stmt(s, st, "recording a service visit");
    if (ret != 0) {
        check_txn_alive(s);
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
        ret = fail(s, rc, "reading acknowledgements");
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
        ret = fail(s, rc, "looking up an alert");
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
        struct pdm_stored_alert a = {
            .seq = (uint64_t)sqlite3_column_int64(st, 0),
            .state = sqlite3_column_int(st, 3),
            .severity = sqlite3_column_int(st, 4),
        };
        const char *k = (const char *)sqlite3_column_text(st, 1);
        const char *id = (const char *)sqlite3_column_text(st, 2);
        snprintf(a.asset, sizeof(a.asset), "%s", k ? k : "");
        snprintf(a.alert_id, sizeof(a.alert_id), "%s", id ? id : "");
        cb(ctx, &a, sqlite3_column_int64(st, 5));
        n++;
    }
    int ret = rc == SQLITE_DONE ? n : fail(s, rc, "reading recent alerts");
    sqlite3_reset(st);
    return ret;
}
