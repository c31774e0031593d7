/* The durable buffer: one SQLite database (WAL) at {data_dir}/pdm-agent.db.
 *
 * Only the main loop touches it (SQLite is used from one thread). Every reading, every asset
 * score and every alert is written here before it is published; a row becomes "delivered" only
 * when the broker has acknowledged (PUBACK) the message carrying it.
 *
 * seq: one per-device counter shared by readings, scores and alerts. It only grows and survives
 * restarts: the high-water mark is kept in the meta table and written in every transaction.
 *
 * Durability: readings are inserted into an open transaction that the caller commits on a tick
 * (pdm_store_commit); an alert commits immediately, together with any pending readings, with
 * synchronous=FULL, so an alert that was put is on disk. */
#ifndef PDM_STORE_H
#define PDM_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "usage.h"

enum pdm_row_kind {
    PDM_ROW_READING = 0, /* ref = sensor id, value = scaled sensor value */
    PDM_ROW_SCORE = 1,   /* ref = asset id, value = probability */
};

struct pdm_store;

struct pdm_row {
    uint64_t seq;
    int64_t ts_ms;
    double value;
    uint32_t ref;    /* sensor or asset id, see pdm_store_name_id() */
    uint8_t kind;    /* enum pdm_row_kind */
    uint8_t quality; /* readings: enum pdm_quality_flag (models/quality.h), 0 = good */
};

struct pdm_store_stats {
    uint64_t rows_pending;     /* readings + scores not yet delivered */
    uint64_t alerts_pending;   /* alerts not yet delivered */
    int64_t oldest_pending_ms; /* ts_ms of the oldest undelivered row or alert, 0 if none */
    uint64_t next_seq;
    /* issue 3: visibility */
    uint64_t db_bytes;         /* database + WAL on disk, bytes */
    uint64_t max_bytes;        /* the cap (pdm_store_set_limits), 0 = none */
    uint64_t rows_delivered;   /* rows acknowledged by the broker, since the database was made */
    uint64_t alerts_delivered; /* alerts acknowledged, since the database was made */
    uint64_t rows_dropped;     /* undelivered rows given up (cap, disk, memory), ever; persisted */
    uint64_t marks_undone;     /* times delivery marks were rolled back with a failed commit:
                                  when it changes, re-send from the start (those rows and alerts
                                  are undelivered again) */
    uint64_t rows_held;        /* rows kept in memory because the last write failed */
    uint64_t alerts_held;      /* alerts kept in memory because the last write failed */
    int write_failing;         /* 1 while writes to the database fail (I/O error, disk full) */
    int recovered;             /* 1 when a damaged database was moved aside at open */
    char recovered_path[1024]; /* where it was moved, when recovered */
};

struct pdm_stored_alert {
    uint64_t seq;
    char asset[73]; /* an asset, or "sensor:NAME" for a SENSOR_FAULT alert */
    char alert_id[96];
    int state;    /* enum pdm_alert_state */
    int severity; /* enum pdm_severity */
};

/* Opens (creating if needed) {dir}/pdm-agent.db. err gets a reason on failure. 0 or -errno. */
int pdm_store_open(struct pdm_store **out, const char *dir, char *err, size_t errlen);
/* Caps the database: when database + WAL would exceed max_bytes, or the filesystem's free
 * space falls below reserve_bytes, delivered rows are deleted first, then the oldest
 * undelivered rows (counted in rows_dropped); alerts are never evicted for rows.
 * 0 = no limit. */
int pdm_store_set_limits(struct pdm_store *s, uint64_t max_bytes, uint64_t reserve_bytes);

/* Commits pending rows and closes. */
void pdm_store_close(struct pdm_store *s);

/* Stable small id for a sensor (kind READING) or asset (kind SCORE) name; created on first use. */
int pdm_store_name_id(struct pdm_store *s, enum pdm_row_kind kind, const char *name, uint32_t *id);
/* Name for an id (for building messages); NULL if unknown. Valid until the store is closed. */
const char *pdm_store_id_name(struct pdm_store *s, enum pdm_row_kind kind, uint32_t id);

/* Allocates the next seq (for an alert, before encoding it). */
uint64_t pdm_store_alloc_seq(struct pdm_store *s);

/* Adds a reading or score to the open transaction; assigns and returns its seq. The row is
 * staged in memory (65,536 at most) and written at the next commit; while writes fail it stays
 * there and the oldest staged rows are dropped when it is full (counted in rows_dropped). */
int pdm_store_put_row(struct pdm_store *s, enum pdm_row_kind kind, uint32_t ref, int64_t ts_ms,
                      double value, uint64_t *seq);
/* The same with a quality flag (enum pdm_quality_flag: 0 good, 1 out of range, 2 frozen), stored in
 * the row's quality column and returned by next_rows; put_row stores 0. */
int pdm_store_put_row_q(struct pdm_store *s, enum pdm_row_kind kind, uint32_t ref, int64_t ts_ms,
                        double value, uint8_t quality, uint64_t *seq);
/* Commits the open transaction (no-op when nothing is pending). */
int pdm_store_commit(struct pdm_store *s);

/* Stores an encoded alert (seq from pdm_store_alloc_seq) and commits durably before returning.
 * asset is the key open_alerts groups by: the asset of a fault-risk alert, "sensor:NAME" for a
 * sensor fault (asset names cannot contain ':'), at most 72 bytes.
 * When the write fails (-EIO, -ENOSPC, ...) the alert is not on disk but held in memory (up to
 * 256 alerts, payload <= 4 KB): next_alerts serves it, mark_alert_delivered works on it, and
 * each later commit retries writing it. -EEXIST: that seq is already stored. */
int pdm_store_put_alert(struct pdm_store *s, uint64_t seq, const char *asset, const char *alert_id,
                        int state, int severity, int64_t ts_ms, const void *payload, size_t len);

/* Undelivered alerts with seq > after_seq, oldest first: calls cb for up to max of them.
 * Returns how many were passed to cb, or -errno.
 * cb returns 0 to go on; any other value stops the walk (that alert still counts). The
 * payload pointer is valid during the call only. Like next_rows, nothing from the still open
 * transaction is returned (only what is on disk is published). */
typedef int (*pdm_alert_row_cb)(void *ctx, uint64_t seq, const void *payload, size_t len);
int pdm_store_next_alerts(struct pdm_store *s, uint64_t after_seq, int max, pdm_alert_row_cb cb,
                          void *ctx);

/* Up to max undelivered rows with seq > after_seq, oldest first, into rows. Returns the count.
 * Rows still in the open transaction are not returned until pdm_store_commit. */
int pdm_store_next_rows(struct pdm_store *s, uint64_t after_seq, struct pdm_row *rows, int max);

int pdm_store_mark_alert_delivered(struct pdm_store *s, uint64_t seq);
/* Marks every row with lo <= seq <= hi delivered. Marks join the open transaction if there is
 * one (committed with it), else they commit at once. */
int pdm_store_mark_rows_delivered(struct pdm_store *s, uint64_t lo, uint64_t hi);

int pdm_store_stats(struct pdm_store *s, struct pdm_store_stats *st);

/* The last stored alert event of each asset whose episode is still open (state != CLEARED),
 * so the agent can resume the episode (same alert_id) after a restart. Calls cb per asset. */
typedef void (*pdm_open_alert_cb)(void *ctx, const struct pdm_stored_alert *a);
int pdm_store_open_alerts(struct pdm_store *s, pdm_open_alert_cb cb, void *ctx);

/* Deletes delivered rows beyond the newest keep_rows delivered ones (bounds the file), oldest
 * first and at most 20,000 per call so that one call stays short; call it periodically. */
int pdm_store_prune(struct pdm_store *s, uint64_t keep_rows);

/* ---- usage counters, service visits, acknowledgements (issue 6) ----------------------------
 * Tables usage (one row per asset), services (one row per recorded visit) and acks. */

/* Allocates n usage slots (once, at start-up). */
int pdm_store_usage_slots(struct pdm_store *s, uint32_t n);
/* Binds slot to asset and reads its stored counters into out (zero when none). */
int pdm_store_usage_load(struct pdm_store *s, uint32_t slot, const char *asset,
                         struct pdm_usage_counts *out);
/* Stages the slot's counters: written (if changed) with the next commit, the readings' or an
 * alert's. Copies only: no SQL, no allocation (sample path). */
void pdm_store_usage_put(struct pdm_store *s, uint32_t slot, const struct pdm_usage_counts *c);
/* Inserts a service visit (c: the counters at the visit) into the open transaction and returns
 * its id; the caller stages the reset counters and calls pdm_store_commit, so the visit and the
 * reset reach the disk together or not at all. */
int pdm_store_add_visit(struct pdm_store *s, const char *asset, int64_t ts_ms, const char *ref,
                        const char *technician, const char *note, const struct pdm_usage_counts *c,
                        uint64_t *id);
/* outcome: 1 fix confirmed, 2 fault persists. Commits durably. */
int pdm_store_set_visit_outcome(struct pdm_store *s, uint64_t id, int outcome, int64_t ts_ms,
                                double max_p);
/* Records an acknowledgement durably. */
int pdm_store_put_ack(struct pdm_store *s, const char *alert_id, int64_t ts_ms);
/* 1 if alert_id was acknowledged (ts_ms: when), 0 if not, or -errno. */
int pdm_store_acked(struct pdm_store *s, const char *alert_id, int64_t *ts_ms);
/* The state of alert_id's newest stored event: 0, or -ENOENT when no such alert was stored. */
int pdm_store_alert_state(struct pdm_store *s, const char *alert_id, int *state);
/* The newest max alert events of asset (its FAULT_RISK, "maint:" and "service:" keys), newest
 * first (what is on disk). Returns how many, or -errno. */
typedef void (*pdm_recent_alert_cb)(void *ctx, const struct pdm_stored_alert *a, int64_t ts_ms);
int pdm_store_recent_alerts(struct pdm_store *s, const char *asset, int max, pdm_recent_alert_cb cb,
                            void *ctx);

#endif
