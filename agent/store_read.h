/* Read-only access to the agent's database file (store.h), for tools: `pdmctl buffer` and
 * `pdmctl report`. Not used by the agent itself.
 *
 * The file is opened with SQLITE_OPEN_READONLY: nothing is written or created, and it works
 * while the agent runs (WAL lets a reader in beside the writer) as well as when it does not.
 * Every read of one reader comes from one snapshot: a read transaction starts at open and ends
 * at close, so all figures agree with each other. Keep a reader short-lived: while it is open
 * the agent's checkpoints cannot go past its snapshot and the WAL grows.
 *
 * Errors: functions return 0 or a negative errno and put a reason for a person into err
 * ("FILE: SQLite's reason"). Callbacks return 0 to go on, anything else to stop the walk
 * (that is not an error). */
#ifndef PDM_STORE_READ_H
#define PDM_STORE_READ_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

struct pdm_store_reader;

/* What `pdmctl buffer` shows: the buffer as a whole. */
struct pdm_store_summary {
    int64_t schema; /* PRAGMA user_version */
    uint64_t file_bytes, wal_bytes;
    int64_t pages, free_pages, page_size;
    int64_t rows, rows_undelivered;     /* readings + scores */
    int64_t alerts, alerts_undelivered; /* alert events */
    int64_t oldest_undelivered_ms;      /* ts_ms of the first undelivered entry, 0 if none */
    int64_t rows_delivered, alerts_delivered, rows_dropped; /* totals since the file was made */
    int64_t next_seq;
};

/* One stored alert event. Pointers are valid during the callback only. */
struct pdm_store_alert_row {
    uint64_t seq;
    int64_t ts_ms;
    const char *asset; /* an asset, or "sensor:NAME" for a sensor fault (store.h) */
    const char *alert_id;
    int state;    /* enum pdm_alert_state */
    int severity; /* enum pdm_severity */
    int delivered;
    const void *payload; /* the encoded pdm.v1.Alert as published */
    size_t len;
};

typedef int (*pdm_store_alert_cb)(void *ctx, const struct pdm_store_alert_row *a);
typedef int (*pdm_store_row_cb)(void *ctx, const struct pdm_row *row);
/* One row of a table, every column as text (NULL for SQL NULL). */
typedef int (*pdm_store_text_cb)(void *ctx, int ncol, const char *const *names,
                                 const char *const *values);

/* Opens path read-only and starts the snapshot. 0, or -errno with the reason in err
 * (-ENOENT no such file, -EINVAL not a regular file, -EIO SQLite refused it). */
int pdm_store_reader_open(struct pdm_store_reader **out, const char *path, char *err,
                          size_t errlen);
void pdm_store_reader_close(struct pdm_store_reader *r);

int pdm_store_reader_summary(struct pdm_store_reader *r, struct pdm_store_summary *s, char *err,
                             size_t errlen);

/* Alert events with ts_ms >= since_ms (INT64_MIN: all), newest first. */
int pdm_store_reader_alerts(struct pdm_store_reader *r, int64_t since_ms, pdm_store_alert_cb cb,
                            void *ctx, char *err, size_t errlen);

/* The id the store gave a sensor (kind READING) or asset (kind SCORE) name; -ENOENT when it
 * has never stored anything under that name. */
int pdm_store_reader_name_id(struct pdm_store_reader *r, enum pdm_row_kind kind, const char *name,
                             uint32_t *id, char *err, size_t errlen);

/* Readings and scores with from_ms <= ts_ms <= to_ms, in seq order (each sensor's readings in
 * the order they were taken). There is no index on ts_ms: this walks the whole rows table once
 * (about 0.5 s per 100 MB on the test machine), holding one row at a time. row->quality is 0 in
 * files made before quality flags existed. */
int pdm_store_reader_rows(struct pdm_store_reader *r, int64_t from_ms, int64_t to_ms,
                          pdm_store_row_cb cb, void *ctx, char *err, size_t errlen);

/* The oldest and newest ts_ms, within from_ms..to_ms, of the rows of one kind whose ref is one
 * of refs[0..n) (1..16 of them). -ENOENT when there is none. One pass over the rows table. */
int pdm_store_reader_span(struct pdm_store_reader *r, enum pdm_row_kind kind, const uint32_t *refs,
                          int n, int64_t from_ms, int64_t to_ms, int64_t *oldest, int64_t *newest,
                          char *err, size_t errlen);

/* Every row of a table, columns as text: for tables this module does not know (a later
 * agent's counters). table must be a plain identifier. -ENOENT when there is no such table. */
int pdm_store_reader_table(struct pdm_store_reader *r, const char *table, pdm_store_text_cb cb,
                           void *ctx, char *err, size_t errlen);

#endif
