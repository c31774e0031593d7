/* The device check-up report (`pdmctl report ASSET`): what the agent's buffer says about one
 * asset over the last days, gathered once (report.c) and then written as a self-contained
 * HTML page (report_html.c) or as JSON (cmd_report.c).
 *
 * Memory is fixed by the constants below, whatever the length of the period or the size of the
 * buffer: the rows are read once, in order, and each lands in one of REPORT_COLS buckets per
 * series (one bucket per pixel column of a plot). A bucket keeps the first, last, lowest and
 * highest value (M4 aggregation), so a one-reading spike in a week of data still reaches its
 * pixel, and a line drawn through the buckets looks like the line through every reading. A
 * struct report is about 1.1 MB; keep it static. */
#ifndef PDMCTL_REPORT_H
#define PDMCTL_REPORT_H

#include <stdint.h>
#include <stdio.h>

#include "agent/config.h"
#include "agent/store_read.h"

#define REPORT_COLS         880 /* pixel columns of a plot's data area = buckets per series */
#define REPORT_MAX_SERIES   (PDM_ASSET_MAX_INPUTS + 1) /* inputs + the fault probability */
#define REPORT_MAX_ALERTS   200 /* newest alert events listed; older ones are only counted */
#define REPORT_TOP_INPUTS   3   /* contributing inputs listed per alert */
#define REPORT_MAX_COUNTER  32  /* maintenance counters listed */
#define REPORT_HEALTH_VISIT 60  /* a preventive visit is due below this health score */

/* One pixel column of one series. Values are the good readings only; flagged ones are counted. */
struct report_bucket {
    double first, last, min, max;
    int64_t t_first, t_last, t_min, t_max;
    uint32_t n;       /* good values in the column */
    uint32_t flagged; /* readings with a quality flag (out of range, frozen): not in the values */
};

/* A time series squeezed into REPORT_COLS buckets over [t0, t1]. */
struct report_series {
    int64_t t0, t1; /* ms; t1 > t0 */
    int ncols;      /* <= REPORT_COLS */
    struct report_bucket b[REPORT_COLS];
    uint64_t n, flagged;           /* totals */
    uint64_t out_of_range, frozen; /* flagged, by reason */
    double vmin, vmax;             /* over the good values; meaningful when n > 0 */
    int64_t last_ts;               /* newest good value */
    double last_value;
};

/* Sets the range and empties the buckets. ncols is clamped to 1..REPORT_COLS; t1 <= t0 is
 * widened to t0 + 1. */
void report_series_init(struct report_series *s, int ncols, int64_t t0, int64_t t1);
/* The column of a timestamp; times outside the range go to the first or the last column. */
int report_series_col(const struct report_series *s, int64_t ts);
/* Adds one value; quality is enum pdm_quality_flag (0 good). */
void report_series_add(struct report_series *s, int64_t ts, double v, int quality);
/* The points a line through the buckets needs, in time order: up to 4 per column (first, min,
 * max, last; repeats dropped). A new stroke starts (pen_up = 1) at the first point and where
 * no good value came for longer than gap_ms. Start with a zeroed iterator and call while it
 * returns 1. */
struct report_point {
    int col;
    int64_t t;
    double v;
    int pen_up; /* 1: start a new stroke here (no line from the previous point) */
};
struct report_iter {
    int col, k;     /* next column, next point within it */
    int started;    /* a point was returned */
    int64_t prev_t; /* time of the last point returned */
};
int report_series_next_point(const struct report_series *s, int64_t gap_ms, struct report_iter *it,
                             struct report_point *p);

struct report_alert {
    uint64_t seq;
    int64_t ts_ms;
    char alert_id[96];
    int kind;     /* pdm.v1 AlertKind: 0 FAULT_RISK, 1 SENSOR_FAULT, ... (-1 payload undecodable) */
    int state;    /* enum pdm_alert_state */
    int severity; /* enum pdm_severity */
    int delivered;
    double probability; /* FAULT_RISK only */
    uint32_t health;
    char sensor[72];  /* SENSOR_FAULT: the sensor */
    char reason[200]; /* SENSOR_FAULT: what is wrong / how it recovered */
    char model_id[65];
    uint32_t model_version;
    uint32_t n_top;
    struct report_top {
        char name[PDM_MODEL_NAME_MAX + 1];
        char sensor[PDM_NAME_MAX + 1];
        double value, z, contribution;
    } top[REPORT_TOP_INPUTS];
};

/* One model input of the asset. */
struct report_input {
    const struct pdm_model_input *model; /* in the asset's model */
    const struct pdm_sensor_cfg *sensor; /* NULL for age */
    int stored;                          /* the store knows the sensor's name */
    uint32_t ref;                        /* its id in the store */
    int sensor_first;  /* first input fed by this sensor: its row in the quality table */
    int faults_raised; /* SENSOR_FAULT episodes raised in the period */
    int fault_open;    /* the sensor's last fault event is not CLEARED */
    char fault_reason[200];
    int64_t fault_since_ms;
    double age_years; /* age input: years since `installed` at the end of the period */
    struct report_series s;
};

struct report_counter {
    char name[96];
    char value[96];
};

struct report {
    /* what was asked */
    const struct pdm_config *cfg;
    const struct pdm_asset_cfg *asset;
    const char *db_path;
    int days;
    int64_t generated_ms;   /* wall clock when the report was made */
    int64_t from_ms, to_ms; /* the period asked: the last `days` days up to generated_ms */
    int64_t t0, t1;         /* the plotted range: from the first stored value in the period */
    /* inputs and probability */
    struct report_input in[PDM_ASSET_MAX_INPUTS];
    uint32_t n_in;
    int asset_stored; /* the store knows the asset (it has been scored at least once) */
    uint32_t asset_ref;
    struct report_series prob;
    /* health: from the newest stored score */
    int has_score;
    int64_t score_ts;
    double score_p;
    uint32_t health;
    /* alerts about the asset and its sensors, newest first */
    struct report_alert alerts[REPORT_MAX_ALERTS];
    int n_alerts;                  /* listed */
    int alerts_total;              /* in the period */
    int risk_open;                 /* the asset's last fault-risk event is not CLEARED */
    struct report_alert risk_last; /* that event (when risk_open) */
    int64_t risk_since_ms;         /* when that episode was RAISED (0: not stored) */
    /* buffer and maintenance */
    struct pdm_store_summary buf;
    const char *maint_source; /* "usage and services tables" or NULL (none stored) */
    struct report_counter counters[REPORT_MAX_COUNTER];
    int n_counters;
};

/* Health score of a probability: round(100 * (1 - P)), clamped to 0..100 (as models/model.c). */

/* Reads everything the report shows from the open store. asset must be one of cfg's assets.
 * 0 or -errno with the reason in err. */
int report_gather(struct report *rep, const struct pdm_config *cfg,
                  const struct pdm_asset_cfg *asset, struct pdm_store_reader *r,
                  const char *db_path, int days, int64_t now_ms, char *err, size_t errlen);

/* The asset's usage counters and last service visit (the agent's usage and services tables);
 * none for a store made before them or an asset without counters. */
int report_read_maintenance(struct report *rep, struct pdm_store_reader *r, char *err,
                            size_t errlen);

/* The page: one self-contained HTML document (no scripts, no network), plots as inline SVG. */
int report_write_html(FILE *f, const struct report *rep);
/* The same data as one JSON object (fields in `pdmctl report --help`). */
int report_write_json(FILE *f, const struct report *rep);

/* s with & < > " ' escaped, control characters and invalid UTF-8 shown as U+FFFD: safe as HTML
 * text and inside a quoted attribute. */
void report_html_escape(FILE *f, const char *s);

/* Names for the page and the JSON. */
const char *report_kind_name(int kind);

#endif
