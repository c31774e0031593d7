/* The store's cap and disk reserve (see store.c, "Cap", and store_int.h): eviction of the
 * oldest rows after a commit. */
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

/* ---- cap and disk reserve ---------------------------------------------------------------- */

uint64_t store_file_bytes(const char *path)
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
    int ret = store_exec_sql(s, sql, "applying the buffer limits");
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
    int ret = store_exec_stmt(s, s->st[ST_BEGIN], "starting an eviction");
    if (ret)
        return ret;
    sqlite3_bind_int(s->st[ST_EVICT_DELIVERED], 1, EVICT_CHUNK);
    ret = store_exec_stmt(s, s->st[ST_EVICT_DELIVERED], "deleting delivered rows for room");
    int n = ret == 0 ? sqlite3_changes(s->db) : 0, undelivered = 0;
    if (ret == 0 && n == 0) {
        sqlite3_bind_int(s->st[ST_EVICT_UNDELIVERED], 1, EVICT_CHUNK);
        ret =
            store_exec_stmt(s, s->st[ST_EVICT_UNDELIVERED], "dropping the oldest undelivered rows");
        n = undelivered = ret == 0 ? sqlite3_changes(s->db) : 0;
    }
    if (ret == 0 && n == 0) {
        store_rollback(s);
        return 0;
    }
    s->count[C_ROWS_DROPPED] += (uint64_t)undelivered; /* committed with the delete, or undone */
    if (ret == 0)
        ret = store_write_meta(s);
    if (ret == 0) {
        int rc = sqlite3_step(s->st[ST_COMMIT]);
        if (rc != SQLITE_DONE)
            ret = store_fail(s, rc, "committing an eviction");
        sqlite3_reset(s->st[ST_COMMIT]);
    }
    if (ret) {
        store_rollback(s);
        s->count[C_ROWS_DROPPED] -= (uint64_t)undelivered;
        return ret;
    }
    store_meta_written(s);
    s->rows_pending -= (uint64_t)undelivered;
    return n;
}

/* After each successful commit: keeps the file under the cap and out of the disk reserve.
 * Costs two header reads and one or two stat calls when there is nothing to do. */
void store_enforce_limits(struct pdm_store *s)
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
    uint64_t wal = store_file_bytes(s->wal_path);
    if (wal > wal_budget &&
        sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL) == SQLITE_OK)
        wal = store_file_bytes(s->wal_path);
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
        wal = store_file_bytes(s->wal_path);
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
