/* pdmctl buffer --db FILE [--json]
 *
 * What the agent's store-and-forward buffer holds, read straight from its SQLite file: works
 * while the agent runs (WAL lets a reader in beside the writer) and when it does not. The file
 * is opened read-only; nothing is written or created. */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "agent/store_read.h"
#include "models/alert.h"
#include "cli.h"
#include "pdmctl.h"
#include "print.h"

#define LAST_ALERTS 10

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

static void print_text(const struct pdm_store_summary *b, const char *path)
{
    char when[40];
    fmt_time(b->oldest_undelivered_ms, when, sizeof(when));
    printf("database            %s (schema version %" PRId64 ")\n", path, b->schema);
    printf("on disk             %.1f MB (file %" PRIu64 " + WAL %" PRIu64 " bytes; %.1f MB in "
           "free pages)\n",
           (double)(b->file_bytes + b->wal_bytes) / 1048576.0, b->file_bytes, b->wal_bytes,
           (double)(b->free_pages * b->page_size) / 1048576.0);
    printf("rows                %" PRId64 " (%" PRId64 " undelivered)\n", b->rows,
           b->rows_undelivered);
    printf("alerts              %" PRId64 " (%" PRId64 " undelivered)\n", b->alerts,
           b->alerts_undelivered);
    if (b->oldest_undelivered_ms > 0)
        printf("oldest undelivered  %s (%.0f s ago)\n", when,
               (double)(now_ms() - b->oldest_undelivered_ms) / 1000.0);
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

struct alerts_ctx {
    int json, n;
};

static int print_alert(void *ctx, const struct pdm_store_alert_row *a)
{
    struct alerts_ctx *c = ctx;
    char when[40];
    fmt_time(a->ts_ms, when, sizeof(when));
    if (c->json) {
        printf("%s{\"seq\":%" PRIu64 ",\"ts_ms\":%" PRId64 ",\"asset\":", c->n ? "," : "", a->seq,
               a->ts_ms);
        pdm_json_fstr(stdout, a->asset);
        printf(",\"alert_id\":");
        pdm_json_fstr(stdout, a->alert_id);
        printf(",\"state\":\"%s\",\"severity\":\"%s\",\"delivered\":%s}", state_name(a->state),
               severity_name(a->severity), a->delivered ? "true" : "false");
    } else {
        printf("  %-10" PRIu64 " %-24s %-16s %-24s %-8s %-8s %s\n", a->seq, when, a->asset,
               a->alert_id, state_name(a->state), severity_name(a->severity),
               a->delivered ? "yes" : "no");
    }
    return ++c->n >= LAST_ALERTS;
}

static int print_alerts(struct pdm_store_reader *r, int json, char *err, size_t errlen)
{
    if (json)
        printf(",\"last_alerts\":[");
    else
        printf("\nlast %d alerts (newest first):\n  %-10s %-24s %-16s %-24s %-8s %-8s %s\n",
               LAST_ALERTS, "seq", "time", "asset", "alert_id", "state", "severity", "delivered");
    struct alerts_ctx c = {.json = json};
    if (pdm_store_reader_alerts(r, INT64_MIN, print_alert, &c, err, errlen) != 0)
        return -1;
    if (json)
        printf("]");
    else if (c.n == 0)
        printf("  (none)\n");
    return 0;
}

int cmd_buffer(int argc, char **argv)
{
    const char *path = NULL;
    int json = 0;
    enum { O_JSON = 256, O_DB, O_HELP };
    static const struct option longopts[] = {
        {"json", no_argument, 0, O_JSON},
        {"db", required_argument, 0, O_DB},
        {"help", no_argument, 0, O_HELP},
        {0, 0, 0, 0},
    };
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (c) {
        case O_JSON:
            json = 1;
            break;
        case O_DB:
            path = optarg;
            break;
        case 'h':
        case O_HELP:
            usage(stdout);
            return PDMCTL_EXIT_OK;
        default: /* ':' a value is missing, '?' unknown */
            return pdmctl_cli_bad_option("buffer", c, argv, usage);
        }
    }
    if (optind < argc) {
        fprintf(stderr, "pdmctl buffer: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return PDMCTL_EXIT_USAGE;
    }
    if (!path) {
        fprintf(stderr, "pdmctl buffer: which database? --db FILE (e.g. "
                        "/var/lib/pdm-agent/pdm-agent.db)\n");
        usage(stderr);
        return PDMCTL_EXIT_USAGE;
    }
    char err[1400];
    struct pdm_store_reader *r = NULL;
    if (pdm_store_reader_open(&r, path, err, sizeof(err)) != 0) {
        fprintf(stderr, "pdmctl buffer: %s\n", err);
        return PDMCTL_EXIT_FAIL;
    }
    int ret = PDMCTL_EXIT_FAIL;
    struct pdm_store_summary b;
    if (pdm_store_reader_summary(r, &b, err, sizeof(err)) != 0) {
        fprintf(stderr, "pdmctl buffer: %s\n", err);
    } else {
        if (json) {
            printf("{\"db\":");
            pdm_json_fstr(stdout, path);
            printf(",\"schema_version\":%" PRId64 ",\"db_bytes\":%" PRIu64
                   ",\"file_bytes\":%" PRIu64 ",\"wal_bytes\":%" PRIu64 ",\"rows\":%" PRId64
                   ",\"rows_undelivered\":%" PRId64 ",\"alerts\":%" PRId64
                   ",\"alerts_undelivered\":%" PRId64 ",\"oldest_undelivered_ms\":%" PRId64
                   ",\"oldest_undelivered_age_s\":",
                   b.schema, b.file_bytes + b.wal_bytes, b.file_bytes, b.wal_bytes, b.rows,
                   b.rows_undelivered, b.alerts, b.alerts_undelivered, b.oldest_undelivered_ms);
            /* whole milliseconds: the shortest digits are at most three decimals */
            pdm_json_fnum(stdout, b.oldest_undelivered_ms > 0
                                      ? (double)(now_ms() - b.oldest_undelivered_ms) / 1000.0
                                      : 0.0);
            printf(",\"rows_delivered\":%" PRId64 ",\"alerts_delivered\":%" PRId64
                   ",\"rows_dropped\":%" PRId64 ",\"next_seq\":%" PRId64,
                   b.rows_delivered, b.alerts_delivered, b.rows_dropped, b.next_seq);
        } else {
            print_text(&b, path);
        }
        if (print_alerts(r, json, err, sizeof(err)) == 0) {
            if (json)
                printf("}\n");
            ret = fflush(stdout) == 0 ? PDMCTL_EXIT_OK : PDMCTL_EXIT_FAIL;
        } else {
            fprintf(stderr, "pdmctl buffer: %s\n", err);
        }
    }
    pdm_store_reader_close(r);
    return ret;
}
