/* Usage counters and maintenance schedule (see usage.h). No allocation anywhere here. */
#include "usage.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

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

int64_t pdm_add_months(int64_t t, uint32_t n)
{
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    time_t tt = (time_t)t;
    struct tm tm;
    if (!gmtime_r(&tt, &tm))
        return t;
    int64_t m = (int64_t)tm.tm_mon + n;
    int y = tm.tm_year + 1900 + (int)(m / 12);
    tm.tm_year = y - 1900;
    tm.tm_mon = (int)(m % 12);
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    int last = mdays[tm.tm_mon] + (tm.tm_mon == 1 && leap);
    if (tm.tm_mday > last)
        tm.tm_mday = last;
    return (int64_t)timegm(&tm);
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
