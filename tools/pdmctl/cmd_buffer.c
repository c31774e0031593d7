/* pdmctl buffer --db FILE [--json]
 *
 * What the agent's store-and-forward buffer holds, read straight from its SQLite file: works
 * while the agent runs (WAL lets a reader in beside the writer) and when it does not. The file
 * is opened read-only; nothing is written or created. */
#include <errno.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "models/alert.h"
#include "pdmctl.h"
#include "print.h"

#define BUSY_TIMEOUT_MS 2000 /* wait for a checkpoint the agent is running, ms */
#define LAST_ALERTS     10   /* keep in step with the LIMIT in print_alerts */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: pdmctl buffer --db FILE [--json]\n"
            "  Shows the agent's buffer (e.g. --db /var/lib/pdm-agent/pdm-agent.db): rows and\n"
            "  bytes, undelivered readings and alerts, the oldest undelivered age, delivered\n"
            "  and dropped totals, the next seq, the schema version and the last %d alerts.\n"
            "  The file is opened read-only; the agent may keep running.\n",
            LAST_ALERTS);
}

struct buffer_info {
    int64_t rows, rows_undelivered, alerts, alerts_undelivered;
    int64_t oldest_ms; /* ts_ms of the first undelivered entry, 0 if none */
    int64_t rows_delivered, alerts_delivered, rows_dropped;
    int64_t next_seq, schema, pages, free_pages, page_size;
    uint64_t file_bytes, wal_bytes;
};

/* One integer from a query; 0 or an SQLite code, with the reason printed. */
static int one_int(sqlite3 *db, const char *sql, int64_t *out)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        *out = 0; /* no row (a total never written yet) or NULL reads as 0 */
        if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
            *out = sqlite3_column_int64(st, 0);
        if (rc == SQLITE_ROW || rc == SQLITE_DONE)
            rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    return rc;
}

static uint64_t size_of(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && sb.st_size > 0 ? (uint64_t)sb.st_size : 0;
}

static int gather(sqlite3 *db, const char *path, struct buffer_info *b)
{
    struct {
        const char *sql;
        int64_t *out;
    } q[] = {
        {"PRAGMA user_version", &b->schema},
        {"SELECT COUNT(*) FROM rows", &b->rows},
        {"SELECT COUNT(*) FROM rows WHERE delivered = 0", &b->rows_undelivered},
        {"SELECT COUNT(*) FROM alerts", &b->alerts},
        {"SELECT COUNT(*) FROM alerts WHERE delivered = 0", &b->alerts_undelivered},
        {"SELECT MIN(ts) FROM (SELECT (SELECT ts_ms FROM rows WHERE delivered = 0 ORDER BY seq"
         " LIMIT 1) AS ts UNION ALL SELECT (SELECT ts_ms FROM alerts WHERE delivered = 0"
         " ORDER BY seq LIMIT 1))",
         &b->oldest_ms},
        {"SELECT value FROM meta WHERE key = 'rows_delivered'", &b->rows_delivered},
        {"SELECT value FROM meta WHERE key = 'alerts_delivered'", &b->alerts_delivered},
        {"SELECT value FROM meta WHERE key = 'rows_dropped'", &b->rows_dropped},
        {"SELECT MAX(COALESCE((SELECT value FROM meta WHERE key = 'seq_hw'), 0),"
         " COALESCE((SELECT MAX(seq) FROM rows), 0), COALESCE((SELECT MAX(seq) FROM alerts), 0))"
         " + 1",
         &b->next_seq},
        {"PRAGMA page_count", &b->pages},
        {"PRAGMA freelist_count", &b->free_pages},
        {"PRAGMA page_size", &b->page_size},
    };
    for (size_t i = 0; i < sizeof(q) / sizeof(q[0]); i++) {
        int rc = one_int(db, q[i].sql, q[i].out);
        if (rc != SQLITE_OK) {
            fprintf(stderr, "pdmctl buffer: %s: %s%s\n", path, sqlite3_errmsg(db),
                    rc == SQLITE_ERROR ? " (not a pdm-agent database?)" : "");
            return -1;
        }
    }
    char wal[4200];
    snprintf(wal, sizeof(wal), "%s-wal", path);
    b->file_bytes = size_of(path);
    b->wal_bytes = size_of(wal);
    return 0;
}

static void fmt_time(int64_t ms, char *out, size_t len)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (ms <= 0 || !gmtime_r(&t, &tm)) {
        snprintf(out, len, "-");
        return;
    }
    size_t n = strftime(out, len, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, len - n, ".%03dZ", (int)(ms % 1000));
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void print_text(const struct buffer_info *b, const char *path)
{
    char when[40];
    fmt_time(b->oldest_ms, when, sizeof(when));
    printf("database            %s (schema version %" PRId64 ")\n", path, b->schema);
    printf("on disk             %.1f MB (file %" PRIu64 " + WAL %" PRIu64 " bytes; %.1f MB in "
           "free pages)\n",
           (double)(b->file_bytes + b->wal_bytes) / 1048576.0, b->file_bytes, b->wal_bytes,
           (double)(b->free_pages * b->page_size) / 1048576.0);
    printf("rows                %" PRId64 " (%" PRId64 " undelivered)\n", b->rows,
           b->rows_undelivered);
    printf("alerts              %" PRId64 " (%" PRId64 " undelivered)\n", b->alerts,
           b->alerts_undelivered);
    if (b->oldest_ms > 0)
        printf("oldest undelivered  %s (%.0f s ago)\n", when,
               (double)(now_ms() - b->oldest_ms) / 1000.0);
    else
        printf("oldest undelivered  - (nothing waiting)\n");
    printf("delivered           %" PRId64 " rows, %" PRId64 " alerts (since the file was made)\n",
           b->rows_delivered, b->alerts_delivered);
    printf("dropped             %" PRId64 " undelivered rows (buffer cap, disk reserve, memory)\n",
           b->rows_dropped);
    printf("next seq            %" PRId64 "\n", b->next_seq);
}

static const char *state_name(int s)
{
    return s >= PDM_ALERT_RAISED && s <= PDM_ALERT_CLEARED
               ? pdm_alert_state_name((enum pdm_alert_state)s)
               : "?";
}

static const char *severity_name(int s)
{
    return s >= PDM_SEV_NONE && s <= PDM_SEV_CRITICAL ? pdm_severity_name((enum pdm_severity)s)
                                                      : "?";
}

static int print_alerts(sqlite3 *db, const char *path, int json)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db,
                                "SELECT seq, ts_ms, asset, alert_id, state, severity, delivered"
                                " FROM alerts ORDER BY seq DESC LIMIT 10",
                                -1, &st, NULL);
    if (rc != SQLITE_OK) {
        fprintf(stderr, "pdmctl buffer: %s: %s\n", path, sqlite3_errmsg(db));
        return -1;
    }
    if (json)
        printf(",\"last_alerts\":[");
    else
        printf("\nlast %d alerts (newest first):\n  %-10s %-24s %-16s %-24s %-8s %-8s %s\n",
               LAST_ALERTS, "seq", "time", "asset", "alert_id", "state", "severity", "delivered");
    int n = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        char when[40];
        fmt_time(sqlite3_column_int64(st, 1), when, sizeof(when));
        const char *asset = (const char *)sqlite3_column_text(st, 2);
        const char *id = (const char *)sqlite3_column_text(st, 3);
        int state = sqlite3_column_int(st, 4), sev = sqlite3_column_int(st, 5);
        int delivered = sqlite3_column_int(st, 6) != 0;
        if (json) {
            printf("%s{\"seq\":%" PRId64 ",\"ts_ms\":%" PRId64 ",\"asset\":", n ? "," : "",
                   (int64_t)sqlite3_column_int64(st, 0), (int64_t)sqlite3_column_int64(st, 1));
            pdm_print_json_str(stdout, asset ? asset : "");
            printf(",\"alert_id\":");
            pdm_print_json_str(stdout, id ? id : "");
            printf(",\"state\":\"%s\",\"severity\":\"%s\",\"delivered\":%s}", state_name(state),
                   severity_name(sev), delivered ? "true" : "false");
        } else {
            printf("  %-10" PRId64 " %-24s %-16s %-24s %-8s %-8s %s\n",
                   (int64_t)sqlite3_column_int64(st, 0), when, asset ? asset : "", id ? id : "",
                   state_name(state), severity_name(sev), delivered ? "yes" : "no");
        }
        n++;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        fprintf(stderr, "pdmctl buffer: %s: %s\n", path, sqlite3_errmsg(db));
        return -1;
    }
    if (json)
        printf("]");
    else if (n == 0)
        printf("  (none)\n");
    return 0;
}

int cmd_buffer(int argc, char **argv)
{
    const char *path = NULL;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return PDMCTL_EXIT_OK;
        } else if (strcmp(argv[i], "--json") == 0) {
            json = 1;
        } else if (strcmp(argv[i], "--db") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "pdmctl buffer: --db needs the database file\n");
                usage(stderr);
                return PDMCTL_EXIT_USAGE;
            }
            path = argv[++i];
        } else {
            fprintf(stderr, "pdmctl buffer: unexpected argument '%s'\n", argv[i]);
            usage(stderr);
            return PDMCTL_EXIT_USAGE;
        }
    }
    if (!path) {
        fprintf(stderr, "pdmctl buffer: which database? --db FILE (e.g. "
                        "/var/lib/pdm-agent/pdm-agent.db)\n");
        usage(stderr);
        return PDMCTL_EXIT_USAGE;
    }
    struct stat sb;
    if (stat(path, &sb) != 0) {
        fprintf(stderr, "pdmctl buffer: %s: %s\n", path, strerror(errno));
        return PDMCTL_EXIT_FAIL;
    }
    if (!S_ISREG(sb.st_mode)) {
        fprintf(stderr, "pdmctl buffer: %s: not a regular file\n", path);
        return PDMCTL_EXIT_FAIL;
    }
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL);
    if (rc != SQLITE_OK) {
        fprintf(stderr, "pdmctl buffer: %s: cannot open: %s\n", path,
                db ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close(db);
        return PDMCTL_EXIT_FAIL;
    }
    sqlite3_busy_timeout(db, BUSY_TIMEOUT_MS);
    /* one snapshot for every number below */
    int ret = PDMCTL_EXIT_FAIL;
    struct buffer_info b = {0};
    if (sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
        fprintf(stderr, "pdmctl buffer: %s: %s\n", path, sqlite3_errmsg(db));
    } else if (gather(db, path, &b) == 0) {
        if (json) {
            printf("{\"db\":");
            pdm_print_json_str(stdout, path);
            printf(",\"schema_version\":%" PRId64 ",\"db_bytes\":%" PRIu64
                   ",\"file_bytes\":%" PRIu64 ",\"wal_bytes\":%" PRIu64 ",\"rows\":%" PRId64
                   ",\"rows_undelivered\":%" PRId64 ",\"alerts\":%" PRId64
                   ",\"alerts_undelivered\":%" PRId64 ",\"oldest_undelivered_ms\":%" PRId64
                   ",\"oldest_undelivered_age_s\":%.3f"
                   ",\"rows_delivered\":%" PRId64 ",\"alerts_delivered\":%" PRId64
                   ",\"rows_dropped\":%" PRId64 ",\"next_seq\":%" PRId64,
                   b.schema, b.file_bytes + b.wal_bytes, b.file_bytes, b.wal_bytes, b.rows,
                   b.rows_undelivered, b.alerts, b.alerts_undelivered, b.oldest_ms,
                   b.oldest_ms > 0 ? (double)(now_ms() - b.oldest_ms) / 1000.0 : 0.0,
                   b.rows_delivered, b.alerts_delivered, b.rows_dropped, b.next_seq);
        } else {
            print_text(&b, path);
        }
        if (print_alerts(db, path, json) == 0) {
            if (json)
                printf("}\n");
            ret = fflush(stdout) == 0 ? PDMCTL_EXIT_OK : PDMCTL_EXIT_FAIL;
        }
    }
    sqlite3_close(db);
    return ret;
}
