/* Read-only access to the agent's database for tools (see store_read.h). The schema is the one
 * store.c writes; this side only reads it and copes with files from older agents. */
#include "store_read.h"
#include "store_row.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define BUSY_TIMEOUT_MS 2000 /* wait for a checkpoint the agent is running, ms */
#define TABLE_MAX_COLS  64   /* columns pdm_store_reader_table hands over */
#define SPAN_MAX_REFS   16   /* refs pdm_store_reader_span takes at once */

struct pdm_store_reader {
    sqlite3 *db;
    char path[1024];
};

/* "PATH: SQLite's reason" into err; -EIO. */
static int sql_fail(struct pdm_store_reader *r, int rc, char *err, size_t errlen)
{
    snprintf(err, errlen, "%s: %s%s", r->path, sqlite3_errmsg(r->db),
             (rc & 0xff) == SQLITE_ERROR ? " (not a pdm-agent database?)" : "");
    return -EIO;
}

int pdm_store_reader_open(struct pdm_store_reader **out, const char *path, char *err, size_t errlen)
{
    *out = NULL;
    struct stat sb;
    if (stat(path, &sb) != 0) {
        int e = errno;
        snprintf(err, errlen, "%s: %s", path, strerror(e));
        return -e;
    }
    if (!S_ISREG(sb.st_mode)) {
        snprintf(err, errlen, "%s: not a regular file", path);
        return -EINVAL;
    }
    struct pdm_store_reader *r = calloc(1, sizeof(*r));
    if (!r) {
        snprintf(err, errlen, "%s: out of memory", path);
        return -ENOMEM;
    }
    snprintf(r->path, sizeof(r->path), "%s", path);
    int rc = sqlite3_open_v2(path, &r->db, SQLITE_OPEN_READONLY, NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "%s: cannot open: %s", path,
                 r->db ? sqlite3_errmsg(r->db) : "out of memory");
        pdm_store_reader_close(r);
        return -EIO;
    }
    sqlite3_busy_timeout(r->db, BUSY_TIMEOUT_MS);
    /* BEGIN alone takes no snapshot; the first read does, and the transaction keeps it */
    rc = sqlite3_exec(r->db, "BEGIN; SELECT COUNT(*) FROM sqlite_master", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        sql_fail(r, rc, err, errlen);
        pdm_store_reader_close(r);
        return -EIO;
    }
    *out = r;
    return 0;
}

void pdm_store_reader_close(struct pdm_store_reader *r)
{
    if (!r)
        return;
    sqlite3_close(r->db); /* ends the read transaction */
    free(r);
}

/* One integer from a query; no row or NULL reads as 0 (a total never written yet). */
static int one_int(struct pdm_store_reader *r, const char *sql, int64_t *out, char *err,
                   size_t errlen)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(r->db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        *out = 0;
        if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
            *out = sqlite3_column_int64(st, 0);
        if (rc == SQLITE_ROW || rc == SQLITE_DONE)
            rc = SQLITE_OK;
    }
    int ret = rc == SQLITE_OK ? 0 : sql_fail(r, rc, err, errlen);
    sqlite3_finalize(st);
    return ret;
}

static uint64_t size_of(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && sb.st_size > 0 ? (uint64_t)sb.st_size : 0;
}

int pdm_store_reader_summary(struct pdm_store_reader *r, struct pdm_store_summary *s, char *err,
                             size_t errlen)
{
    memset(s, 0, sizeof(*s));
    struct {
        const char *sql;
        int64_t *out;
    } q[] = {
        {"PRAGMA user_version", &s->schema},
        {"SELECT COUNT(*) FROM rows", &s->rows},
        {"SELECT COUNT(*) FROM rows WHERE delivered = 0", &s->rows_undelivered},
        {"SELECT COUNT(*) FROM alerts", &s->alerts},
        {"SELECT COUNT(*) FROM alerts WHERE delivered = 0", &s->alerts_undelivered},
        {"SELECT MIN(ts) FROM (SELECT (SELECT ts_ms FROM rows WHERE delivered = 0 ORDER BY seq"
         " LIMIT 1) AS ts UNION ALL SELECT (SELECT ts_ms FROM alerts WHERE delivered = 0"
         " ORDER BY seq LIMIT 1))",
         &s->oldest_undelivered_ms},
        {"SELECT value FROM meta WHERE key = 'rows_delivered'", &s->rows_delivered},
        {"SELECT value FROM meta WHERE key = 'alerts_delivered'", &s->alerts_delivered},
        {"SELECT value FROM meta WHERE key = 'rows_dropped'", &s->rows_dropped},
        {"SELECT MAX(COALESCE((SELECT value FROM meta WHERE key = 'seq_hw'), 0),"
         " COALESCE((SELECT MAX(seq) FROM rows), 0), COALESCE((SELECT MAX(seq) FROM alerts), 0))"
         " + 1",
         &s->next_seq},
        {"PRAGMA page_count", &s->pages},
        {"PRAGMA freelist_count", &s->free_pages},
        {"PRAGMA page_size", &s->page_size},
    };
    for (size_t i = 0; i < sizeof(q) / sizeof(q[0]); i++) {
        int ret = one_int(r, q[i].sql, q[i].out, err, errlen);
        if (ret != 0)
            return ret;
    }
    char wal[sizeof(r->path) + 8];
    snprintf(wal, sizeof(wal), "%s-wal", r->path);
    s->file_bytes = size_of(r->path);
    s->wal_bytes = size_of(wal);
    return 0;
}

int pdm_store_reader_alerts(struct pdm_store_reader *r, int64_t since_ms, pdm_store_alert_cb cb,
                            void *ctx, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(r->db,
                                "SELECT seq, ts_ms, asset, alert_id, state, severity, delivered,"
                                " payload FROM alerts WHERE ts_ms >= ?1 ORDER BY seq DESC",
                                -1, &st, NULL);
    if (rc != SQLITE_OK)
        return sql_fail(r, rc, err, errlen);
    sqlite3_bind_int64(st, 1, since_ms);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *asset = (const char *)sqlite3_column_text(st, 2);
        const char *id = (const char *)sqlite3_column_text(st, 3);
        struct pdm_store_alert_row a = {
            .seq = (uint64_t)sqlite3_column_int64(st, 0),
            .ts_ms = sqlite3_column_int64(st, 1),
            .asset = asset ? asset : "",
            .alert_id = id ? id : "",
            .state = sqlite3_column_int(st, 4),
            .severity = sqlite3_column_int(st, 5),
            .delivered = sqlite3_column_int(st, 6) != 0,
            .payload = sqlite3_column_blob(st, 7),
        };
        a.len = (size_t)sqlite3_column_bytes(st, 7);
        if (cb(ctx, &a) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    }
    int ret = rc == SQLITE_DONE ? 0 : sql_fail(r, rc, err, errlen);
    sqlite3_finalize(st);
    return ret;
}

int pdm_store_reader_name_id(struct pdm_store_reader *r, enum pdm_row_kind kind, const char *name,
                             uint32_t *id, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(r->db, "SELECT id FROM names WHERE kind = ?1 AND name = ?2", -1,
                                &st, NULL);
    if (rc != SQLITE_OK)
        return sql_fail(r, rc, err, errlen);
    sqlite3_bind_int(st, 1, (int)kind);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    int ret = -ENOENT;
    if (rc == SQLITE_ROW) {
        *id = (uint32_t)sqlite3_column_int64(st, 0);
        ret = 0;
    } else if (rc != SQLITE_DONE) {
        ret = sql_fail(r, rc, err, errlen);
    }
    sqlite3_finalize(st);
    return ret;
}

int pdm_store_reader_rows(struct pdm_store_reader *r, int64_t from_ms, int64_t to_ms,
                          pdm_store_row_cb cb, void *ctx, char *err, size_t errlen)
{
    int64_t has_quality = 0;
    int ret = one_int(r, "SELECT COUNT(*) FROM pragma_table_info('rows') WHERE name = 'quality'",
                      &has_quality, err, errlen);
    if (ret != 0)
        return ret;
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(r->db,
                                has_quality ? "SELECT " STORE_ROW_COLUMNS " FROM rows"
                                              " WHERE ts_ms BETWEEN ?1 AND ?2 ORDER BY seq"
                                            : "SELECT seq, kind, ref, ts_ms, value, 0 FROM rows"
                                              " WHERE ts_ms BETWEEN ?1 AND ?2 ORDER BY seq",
                                -1, &st, NULL);
    if (rc != SQLITE_OK)
        return sql_fail(r, rc, err, errlen);
    sqlite3_bind_int64(st, 1, from_ms);
    sqlite3_bind_int64(st, 2, to_ms);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct pdm_row row;
        store_decode_row(st, &row);
        if (cb(ctx, &row) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    }
    ret = rc == SQLITE_DONE ? 0 : sql_fail(r, rc, err, errlen);
    sqlite3_finalize(st);
    return ret;
}

int pdm_store_reader_span(struct pdm_store_reader *r, enum pdm_row_kind kind, const uint32_t *refs,
                          int n, int64_t from_ms, int64_t to_ms, int64_t *oldest, int64_t *newest,
                          char *err, size_t errlen)
{
    if (n < 1 || n > SPAN_MAX_REFS) {
        snprintf(err, errlen, "%s: %d names asked for at once (1..%d)", r->path, n, SPAN_MAX_REFS);
        return -EINVAL;
    }
    char sql[256];
    int len = snprintf(sql, sizeof(sql),
                       "SELECT MIN(ts_ms), MAX(ts_ms) FROM rows WHERE ts_ms BETWEEN ?1 AND ?2"
                       " AND kind = ?3 AND ref IN (?4");
    for (int i = 1; i < n; i++)
        len += snprintf(sql + len, sizeof(sql) - (size_t)len, ",?%d", i + 4);
    snprintf(sql + len, sizeof(sql) - (size_t)len, ")");
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(r->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return sql_fail(r, rc, err, errlen);
    sqlite3_bind_int64(st, 1, from_ms);
    sqlite3_bind_int64(st, 2, to_ms);
    sqlite3_bind_int(st, 3, (int)kind);
    for (int i = 0; i < n; i++)
        sqlite3_bind_int64(st, i + 4, refs[i]);
    int ret = -ENOENT;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
        *oldest = sqlite3_column_int64(st, 0);
        *newest = sqlite3_column_int64(st, 1);
        ret = 0;
    } else if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        ret = sql_fail(r, rc, err, errlen);
    }
    sqlite3_finalize(st);
    return ret;
}

static int plain_identifier(const char *s)
{
    if (!*s || strlen(s) > 64 || (*s >= '0' && *s <= '9'))
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_'))
            return 0;
    return 1;
}

int pdm_store_reader_table(struct pdm_store_reader *r, const char *table, pdm_store_text_cb cb,
                           void *ctx, char *err, size_t errlen)
{
    if (!plain_identifier(table)) {
        snprintf(err, errlen, "%s: '%s' is not a table name", r->path, table);
        return -EINVAL;
    }
    char sql[200];
    snprintf(sql, sizeof(sql),
             "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND "
             "name = '%s'",
             table);
    int64_t exists = 0;
    int ret = one_int(r, sql, &exists, err, errlen);
    if (ret != 0)
        return ret;
    if (!exists)
        return -ENOENT;
    snprintf(sql, sizeof(sql), "SELECT * FROM \"%s\"", table);
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(r->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return sql_fail(r, rc, err, errlen);
    int ncol = sqlite3_column_count(st);
    if (ncol > TABLE_MAX_COLS)
        ncol = TABLE_MAX_COLS;
    const char *names[TABLE_MAX_COLS], *values[TABLE_MAX_COLS];
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        /* names after the step: a re-prepare inside the first step invalidates earlier ones */
        for (int i = 0; i < ncol; i++) {
            values[i] = (const char *)sqlite3_column_text(st, i);
            names[i] = sqlite3_column_name(st, i);
        }
        if (cb(ctx, ncol, names, values) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    }
    ret = rc == SQLITE_DONE ? 0 : sql_fail(r, rc, err, errlen);
    sqlite3_finalize(st);
    return ret;
}
