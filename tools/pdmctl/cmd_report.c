/* pdmctl report ASSET -c FILE [--db FILE] [--days N] [-o FILE] [--json]
 *
 * The device check-up report: from the agent's buffer (read-only, the agent may keep running)
 * and its configuration, one self-contained HTML page about one asset (report_html.c), or the
 * same data as JSON (report_json.c). Gathering is in report.c. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/clock.h"
#include "agent/config.h"
#include "agent/store_read.h"
#include "cli.h"
#include "pdmctl.h"
#include "report.h"

#define DAYS_MAX 3660

static void usage(FILE *f)
{
    fprintf(f,
            "usage: pdmctl report ASSET -c FILE [--db FILE] [--days N] [-o FILE] [--json]\n\n"
            "A check-up report of one asset from the agent's buffer: plots of every model\n"
            "input's sensor and of the fault probability (warning and critical thresholds\n"
            "drawn), the health score and the preventive-visit rule (below %d), the alert\n"
            "history with the inputs that drove each alert, data quality, maintenance counters\n"
            "and the buffer. The page is one HTML file with nothing to load (no scripts, no\n"
            "network): open it in any browser, print it, attach it to a ticket.\n"
            "The database is opened read-only; the agent may keep running.\n\n"
            "  -c, --config FILE  the agent's configuration (sensors, units, the asset's model)\n"
            "  --db FILE          the buffer (default {data_dir}/pdm-agent.db)\n"
            "  --days N           the period: the last N days (1..%d, default 7)\n"
            "  -o, --output FILE  write to FILE (default: standard output)\n"
            "  --json             the same data as one JSON object instead of HTML\n\n"
            "JSON fields: asset, device_id, config, db, generated_ms, days, from_ms, to_ms\n"
            "  (the period), plot_from_ms, plot_to_ms (plotted: from the first stored value);\n"
            "  model {id, version, sha256, path, warning, critical, clear, hold,\n"
            "    eval_period_ms};\n"
            "  health {visit_below, score (0..100 or null), probability, ts_ms, visit_due,\n"
            "    open_alert (an alert event or null), open_since_ms};\n"
            "  inputs [{input, center, scale, weight, and for the age input: sensor null,\n"
            "    age_years; else sensor, unit, stat, window_s, stored, readings, flagged,\n"
            "    out_of_range, frozen, min, max, last, last_ts_ms, columns}];\n"
            "  probability {scores, columns};\n"
            "  alerts {total, listed (the newest %d at most), events [{seq, ts_ms, alert_id,\n"
            "    kind, state, severity, probability, health_score, model_id, model_version\n"
            "    (fault risk), sensor, reason (sensor faults), top_inputs [{name, sensor,\n"
            "    value, z, contribution}], delivered}]} newest first;\n"
            "  quality [{sensor, readings, out_of_range, frozen, faults_raised, fault_open,\n"
            "    fault_reason, fault_since_ms}];\n"
            "  buffer {schema_version, db_bytes, max_bytes, rows, rows_undelivered, alerts,\n"
            "    alerts_undelivered, oldest_undelivered_ms, rows_delivered, alerts_delivered,\n"
            "    rows_dropped, next_seq};\n"
            "  maintenance {source (null: none stored), counters [{name, value}]}.\n"
            "  columns: the downsampled series, one entry per non-empty pixel column of %d:\n"
            "    {col_ms, t_ms[] (column start), n[], flagged[], first[], min[], max[],\n"
            "    last[]} (good values only in first..last; null where a column holds only\n"
            "    flagged readings).\n"
            "  Times are ms since the Unix epoch (UTC); the page shows local time.\n\n"
            "exit status: 0 ok, 1 the buffer cannot be read or the output not written,\n"
            "2 bad arguments, 78 the configuration has errors\n",
            REPORT_HEALTH_VISIT, DAYS_MAX, REPORT_MAX_ALERTS, REPORT_COLS);
}

/* Writes to path.tmp and renames, so a reader never sees half a report. */
static int write_out(const struct report *rep, int json, const char *path)
{
    if (!path) {
        int rc = json ? report_write_json(stdout, rep) : report_write_html(stdout, rep);
        if (rc != 0 || fflush(stdout) != 0) {
            fprintf(stderr, "pdmctl report: writing to standard output failed: %s\n",
                    strerror(errno));
            return -1;
        }
        return 0;
    }
    size_t n = strlen(path) + 16;
    char *tmp = malloc(n);
    if (!tmp)
        return -1;
    snprintf(tmp, n, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    int rc = -1;
    if (!f) {
        fprintf(stderr, "pdmctl report: %s: %s\n", tmp, strerror(errno));
    } else {
        rc = json ? report_write_json(f, rep) : report_write_html(f, rep);
        int e = errno;
        if (fclose(f) != 0 || rc != 0) {
            fprintf(stderr, "pdmctl report: writing %s failed: %s\n", tmp,
                    strerror(rc != 0 ? e : errno));
            rc = -1;
        } else if (rename(tmp, path) != 0) {
            fprintf(stderr, "pdmctl report: %s: %s\n", path, strerror(errno));
            rc = -1;
        }
        if (rc != 0)
            unlink(tmp);
    }
    if (rc == 0) {
        struct stat sb;
        fprintf(stderr, "pdmctl report: wrote %s (%.0f KB)\n", path,
                stat(path, &sb) == 0 ? (double)sb.st_size / 1024.0 : 0.0);
    }
    free(tmp);
    return rc;
}

int cmd_report(int argc, char **argv)
{
    enum { O_DB = 256, O_DAYS, O_JSON, O_HELP };
    static const struct option longopts[] = {
        {"config", required_argument, 0, 'c'},
        {"db", required_argument, 0, O_DB},
        {"days", required_argument, 0, O_DAYS},
        {"output", required_argument, 0, 'o'},
        {"json", no_argument, 0, O_JSON},
        {"help", no_argument, 0, O_HELP},
        {0, 0, 0, 0},
    };
    const char *conf = NULL, *db = NULL, *out = NULL, *asset_name = NULL;
    int json = 0, days = 7, c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":c:o:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'c':
            conf = optarg;
            break;
        case 'o':
            out = optarg;
            break;
        case O_DB:
            db = optarg;
            break;
        case O_DAYS:
            if (pdmctl_parse_int("report", "--days", optarg, 1, DAYS_MAX, &days) < 0)
                return PDMCTL_EXIT_USAGE;
            break;
        case O_JSON:
            json = 1;
            break;
        case 'h':
        case O_HELP:
            usage(stdout);
            return PDMCTL_EXIT_OK;
        default: /* ':' a value is missing, '?' unknown */
            return pdmctl_cli_bad_option("report", c, argv, usage);
        }
    }
    if (optind < argc)
        asset_name = argv[optind++];
    if (optind < argc) {
        fprintf(stderr, "pdmctl report: unexpected argument '%s' (one asset per report)\n",
                argv[optind]);
        return PDMCTL_EXIT_USAGE;
    }
    if (!asset_name || !conf) {
        fprintf(stderr, "pdmctl report: %s (try: pdmctl report --help)\n",
                !asset_name ? "which asset? pdmctl report ASSET -c FILE"
                            : "the agent's configuration is needed: -c FILE");
        return PDMCTL_EXIT_USAGE;
    }

    static struct pdm_config cfg; /* large; once */
    struct pdm_diag diag = {.out = stderr};
    int errors = pdm_config_load(conf, &cfg, &diag);
    if (errors > 0) {
        fprintf(stderr, "%s: %d error%s in the configuration; no report\n", conf, errors,
                errors == 1 ? "" : "s");
        pdm_config_free(&cfg);
        return PDMCTL_EXIT_CONFIG;
    }
    const struct pdm_asset_cfg *asset = NULL;
    for (uint32_t i = 0; i < cfg.n_assets; i++)
        if (strcmp(cfg.assets[i].name, asset_name) == 0)
            asset = &cfg.assets[i];
    if (!asset) {
        fprintf(stderr, "pdmctl report: %s has no [asset %s]; its assets:", conf, asset_name);
        for (uint32_t i = 0; i < cfg.n_assets; i++)
            fprintf(stderr, " %s", cfg.assets[i].name);
        fprintf(stderr, "%s\n", cfg.n_assets ? "" : " none");
        pdm_config_free(&cfg);
        return PDMCTL_EXIT_USAGE;
    }
    static char db_path[PDM_PATH_MAX + 32];
    snprintf(db_path, sizeof(db_path), "%s", db ? db : "");
    if (!db)
        snprintf(db_path, sizeof(db_path), "%s/pdm-agent.db", cfg.data_dir);

    int ret = PDMCTL_EXIT_FAIL;
    char err[PDM_PATH_MAX + 512];
    struct pdm_store_reader *r = NULL;
    static struct report rep; /* about 1.2 MB: fixed, whatever the period */
    if (pdm_store_reader_open(&r, db_path, err, sizeof(err)) != 0) {
        fprintf(stderr, "pdmctl report: %s\n", err);
    } else if (report_gather(&rep, &cfg, asset, r, db_path, days, pdm_wall_ms(), err,
                             sizeof(err)) != 0) {
        fprintf(stderr, "pdmctl report: %s\n", err);
    } else {
        pdm_store_reader_close(r); /* the snapshot is not needed while writing */
        r = NULL;
        if (write_out(&rep, json, out) == 0)
            ret = PDMCTL_EXIT_OK;
    }
    pdm_store_reader_close(r);
    pdm_config_free(&cfg);
    return ret;
}
