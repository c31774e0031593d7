/* Private to the store's files (see store.c for the design: holding area, durability, cap).
 *
 *   store.c          the database: open, schema, recovery, close, errors, names, row decoding
 *   store_txn.c      transactions: seq reservation, holding area, writes, delivery marks and
 *                    the outbox's reads
 *   store_cap.c      the cap and the disk reserve: eviction
 *   store_service.c  usage counters, service visits, acknowledgements, recent alerts
 *   store_read.c     the same file read-only, for pdmctl: shares only store_row.h
 *
 * Functions shared between them are named store_* (public ones pdm_store_*). */
#ifndef PDM_STORE_INT_H
#define PDM_STORE_INT_H

#include <sqlite3.h>
#include <stdint.h>

#include "lib/log.h"
#include "store.h"
#include "store_row.h"

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

/* Totals kept in the meta table, each written in the transaction that changes it. */
enum counter_id { C_ROWS_DELIVERED, C_ALERTS_DELIVERED, C_ROWS_DROPPED, C_COUNT };
extern const char *const STORE_COUNTER_KEY[C_COUNT];

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

/* ---- store.c -------------------------------------------------------------------------------- */

int store_commit_all(struct pdm_store *s, const char *what);
int store_exec_sql(struct pdm_store *s, const char *sql, const char *what);
/* Runs a statement that returns no rows and resets it. */
int store_exec_stmt(struct pdm_store *s, sqlite3_stmt *st, const char *what);
/* An SQLite failure: the message names the file, SQLite's reason, the OS reason when there is
 * one (ENOSPC, EIO, EACCES) and what we were doing. Returns -errno. */
int store_fail(struct pdm_store *s, int rc, const char *what);
int store_kind_ok(int kind);

/* ---- store_txn.c ---------------------------------------------------------------------------- */

/* After a failed statement inside the transaction: did SQLite roll the whole thing back? */
void store_check_txn_alive(struct pdm_store *s);
void store_meta_written(struct pdm_store *s);
/* 0 and *r when the file holds a reservation, -ENOENT when there is none, -EBADMSG when it
 * cannot be read as one. */
int store_read_reserve(struct pdm_store *s, uint64_t *r);
void store_rollback(struct pdm_store *s);
int store_set_meta(struct pdm_store *s, const char *key, uint64_t v);
int store_txn_begin(struct pdm_store *s);
int store_usage_dirty(const struct pdm_store *s);
/* Writes the seq high-water and the totals that changed, inside the open transaction. */
int store_write_meta(struct pdm_store *s);
/* Writes everything staged or held (alerts first, then rows, then seq_hw and totals) and
 * commits. On failure nothing is lost from memory: the rows stay staged, the alerts held, and
 * the next call retries. */
int store_write_pending(struct pdm_store *s, const char *what);
/* Writes "reserved up to R" durably: temp file, fsync, rename, fsync of the folder, so that
 * after a power cut the file holds either the old or the new value, never a torn one. */
int store_write_reserve(struct pdm_store *s, uint64_t r);

/* ---- store_cap.c ---------------------------------------------------------------------------- */

/* After each successful commit: keeps the file under the cap and out of the disk reserve.
 * Costs two header reads and one or two stat calls when there is nothing to do. */
void store_enforce_limits(struct pdm_store *s);
uint64_t store_file_bytes(const char *path);

#endif
