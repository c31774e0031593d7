/* Usage counters and maintenance schedule (see usage.h). No allocation anywhere here. */
#include "usage.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define MS_PER_HOUR 3600000.0

void pdm_usage_init(struct pdm_usage *u, double above, double hysteresis, int64_t debounce_ms,
                    int64_t max_gap_ms)
{
    u->on_above = above;
    u->off_at = above - (hysteresis > 0 ? hysteresis : 0);
    u->debounce_ms = debounce_ms > 0 ? debounce_ms : 0;
    u->max_gap_ms = max_gap_ms > 0 ? max_gap_ms : 0;
    u->pending = 0;
    u->pend_since = u->pend_ms = 0;
    u->last_ms = 0;
}

int pdm_usage_sample(struct pdm_usage *u, double value, int64_t mono_ms)
{
    int64_t dt = 0;
    if (u->last_ms && mono_ms > u->last_ms) {
        dt = mono_ms - u->last_ms;
        /* a reading after an outage (bus down, agent stopped) says nothing about the gap */
        if (u->max_gap_ms && dt > u->max_gap_ms)
            dt = 0;
    }
    u->last_ms = mono_ms;
    int on = u->c.running ? value > u->off_at : value > u->on_above;
    if (on == u->c.running) {
        if (u->pending && u->c.running)
            u->c.run_ms += (uint64_t)u->pend_ms; /* a dip that did not last: it was running */
        u->pending = 0;
        if (u->c.running)
            u->c.run_ms += (uint64_t)dt;
        return 0;
    }
    if (!u->pending) {
        u->pending = 1;
        u->pend_since = mono_ms;
        u->pend_ms = 0;
    }
    u->pend_ms += dt;
    if (mono_ms - u->pend_since < u->debounce_ms)
        return 0;
    u->pending = 0;
    u->c.running = on;
    if (!on)
        return -1; /* the pending time was off time */
    u->c.run_ms += (uint64_t)u->pend_ms;
    u->c.starts++;
    return 1;
}

double pdm_usage_hours_since_service(const struct pdm_usage_counts *c)
{
    uint64_t ms = c->run_ms > c->svc_run_ms ? c->run_ms - c->svc_run_ms : 0;
    return (double)ms / MS_PER_HOUR;
}

uint64_t pdm_usage_starts_since_service(const struct pdm_usage_counts *c)
{
    return c->starts > c->svc_starts ? c->starts - c->svc_starts : 0;
}

/* Civil date <-> days since 1970-01-01 in int64, so dates after January 2038 work where time_t
 * is 32 bits (armhf); proleptic Gregorian, eras of 400 years (146097 days). */
static int64_t floor_div(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = floor_div(y, 400);
    int64_t yoe = y - era * 400;                                  /* 0..399 */
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1; /* from March 1 */
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;          /* 0..146096 */
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = floor_div(z, 146097);
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153; /* 0 = March */
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

int64_t pdm_add_months(int64_t t, uint32_t n)
{
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int64_t days = floor_div(t, 86400), secs = t - days * 86400;
    int64_t y;
    int mon, d;
    civil_from_days(days, &y, &mon, &d);
    int64_t m = (int64_t)(mon - 1) + n;
    y += m / 12;
    mon = (int)(m % 12) + 1;
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    int last = mdays[mon - 1] + (mon == 2 && leap);
    if (d > last)
        d = last;
    return days_from_civil(y, mon, d) * 86400 + secs;
}

/* Appends "; "-separated sentences to why[len]; *off stops at len (text cut, never overrun). */
static void add(char *why, size_t len, size_t *off, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void add(char *why, size_t len, size_t *off, const char *fmt, ...)
{
    if (*off >= len)
        return;
    if (*off) {
        int w = snprintf(why + *off, len - *off, "; ");
        *off += w > 0 ? (size_t)w : 0;
        if (*off >= len)
            return;
    }
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(why + *off, len - *off, fmt, ap);
    va_end(ap);
    *off += w > 0 ? (size_t)w : 0;
}

int pdm_usage_due(const struct pdm_service_limits *lim, const struct pdm_usage_counts *c,
                  int64_t now_wall_ms, char *why, size_t len)
{
    int due = 0;
    size_t off = 0;
    if (len)
        why[0] = '\0';
    double h = pdm_usage_hours_since_service(c);
    uint64_t st = pdm_usage_starts_since_service(c);
    if (lim->every_hours > 0 && h >= lim->every_hours) {
        due |= PDM_DUE_HOURS;
        add(why, len, &off, "%.4g run hours since service >= service_every_hours %.4g", h,
            lim->every_hours);
    }
    if (lim->every_starts > 0 && st >= lim->every_starts) {
        due |= PDM_DUE_STARTS;
        add(why, len, &off, "%" PRIu64 " starts since service >= service_every_starts %u", st,
            lim->every_starts);
    }
    int64_t since = c->svc_wall_ms ? c->svc_wall_ms / 1000 : lim->since_s;
    if (lim->every_months > 0 && since > 0 &&
        now_wall_ms / 1000 >= pdm_add_months(since, lim->every_months)) {
        due |= PDM_DUE_MONTHS;
        add(why, len, &off, "%u months since %s %.0f days ago (service_every_months %u)",
            lim->every_months, c->svc_wall_ms ? "the last service visit" : "last_service/installed",
            (double)(now_wall_ms / 1000 - since) / 86400.0, lim->every_months);
    }
    if (due)
        add(why, len, &off, "counters: %.4g run hours, %" PRIu64 " starts in total",
            (double)c->run_ms / MS_PER_HOUR, c->starts);
    return due;
}
