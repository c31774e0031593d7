/* Usage counters of one asset (run hours, starts) and its maintenance schedule (issue 6, the
 * closed service loop).
 *
 * An asset runs while its configured sensor reads above `running_above`; it stops when the
 * reading falls to `running_above - running_hysteresis` or below. A change of state counts only
 * once the new reading has held for `running_debounce_s`, so a value flickering around the
 * threshold is neither a start nor lost run time: time spent while a change is pending is
 * credited to the state that wins. An off -> on change is one start.
 *
 * The counters live in the store (one row per asset, written with the readings' commits), so a
 * power cut loses at most one commit interval. pdm_usage_sample() runs on the sample path and
 * allocates nothing (tests/unit/test_noalloc.c). */
#ifndef PDM_USAGE_H
#define PDM_USAGE_H

#include <stddef.h>
#include <stdint.h>

/* What is persisted per asset (the store's usage table). */
struct pdm_usage_counts {
    uint64_t run_ms;     /* total run time, ms */
    uint64_t starts;     /* off -> on transitions, ever */
    int32_t running;     /* debounced state when last written (a restart resumes it) */
    int32_t pad;         /* keeps the struct free of implicit padding (memcmp compares it) */
    uint64_t svc_run_ms; /* run_ms at the last recorded service visit */
    uint64_t svc_starts; /* starts at the last recorded service visit */
    int64_t svc_wall_ms; /* wall clock of the last recorded visit; 0 = none (config's date) */
    int64_t confirm_ms;  /* wall clock when the visit's outcome is due; 0 = none pending */
    double obs_max_p;    /* highest fault probability scored since the visit */
    uint64_t obs_evals;  /* scores seen since the visit */
    uint64_t visit;      /* id of the last visit in the store's service table, 0 = none */
};

struct pdm_usage {
    struct pdm_usage_counts c;
    double on_above, off_at; /* on when > on_above; off when <= off_at */
    int64_t debounce_ms;
    int64_t max_gap_ms; /* a longer gap between samples is not counted as run time */
    int pending;        /* the reading disagrees with c.running since pend_since */
    int64_t pend_since, pend_ms;
    int64_t last_ms; /* monotonic ms of the previous sample, 0 = none yet */
};

/* Sets the thresholds; keeps u->c (load it from the store before or after). */
void pdm_usage_init(struct pdm_usage *u, double above, double hysteresis, int64_t debounce_ms,
                    int64_t max_gap_ms);

/* One good reading of the running sensor. Returns 1 when it completes a start, -1 when it
 * completes a stop, else 0. No allocation. */
int pdm_usage_sample(struct pdm_usage *u, double value, int64_t mono_ms);

/* Run hours and starts since the last service visit. */
double pdm_usage_hours_since_service(const struct pdm_usage_counts *c);
uint64_t pdm_usage_starts_since_service(const struct pdm_usage_counts *c);

/* Maintenance limits of an asset; 0 = that limit is off. */
struct pdm_service_limits {
    double every_hours;
    uint32_t every_starts;
    uint32_t every_months;
    int64_t since_s; /* the date months count from when no visit is recorded (last_service, else
                      * installed); 0 = none */
};

enum pdm_due_limit { PDM_DUE_HOURS = 1, PDM_DUE_STARTS = 2, PDM_DUE_MONTHS = 4 };

/* Which limits are reached at now_wall_ms (bitmask of enum pdm_due_limit, 0 = none), and a
 * sentence saying so with the counters into why ("412.0 run hours since service >= 400"). */
int pdm_usage_due(const struct pdm_service_limits *lim, const struct pdm_usage_counts *c,
                  int64_t now_wall_ms, char *why, size_t len);

/* t (Unix seconds) plus n calendar months, the day clamped to the month's end (UTC). */
int64_t pdm_add_months(int64_t t, uint32_t n);

#endif
