/* Data quality per sensor (see quality.h). */
#include "quality.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STALE_MIN_MS  10000 /* default stale time is at least this, ms */
#define STALE_PERIODS 3     /* ... and at least this many read periods */
#define NO_DEADLINE   INT64_MAX

int pdm_quality_init(struct pdm_quality *q, const struct pdm_quality_limits *lim, uint32_t n,
                     int64_t now_mono_ms)
{
    memset(q, 0, sizeof(*q));
    if (n == 0)
        return 0;
    if (!lim)
        return -EINVAL;
    q->s = calloc(n, sizeof(*q->s));
    if (!q->s)
        return -ENOMEM;
    q->n = n;
    for (uint32_t i = 0; i < n; i++) {
        q->s[i].lim = lim[i];
        if (q->s[i].lim.stale_ms <= 0)
            q->s[i].lim.stale_ms = STALE_MIN_MS;
        q->s[i].last_usable_ms = now_mono_ms;
    }
    return 0;
}

void pdm_quality_free(struct pdm_quality *q)
{
    free(q->s);
    q->s = NULL;
    q->n = 0;
}

int64_t pdm_quality_default_stale_ms(int period_ms)
{
    int64_t p = (int64_t)period_ms * STALE_PERIODS;
    return p > STALE_MIN_MS ? p : STALE_MIN_MS;
}

enum pdm_quality_flag pdm_quality_on_sample(struct pdm_quality *q, uint32_t sensor, int ok,
                                            double value, int64_t mono_ms, const char *err)
{
    if (sensor >= q->n)
        return PDM_Q_MISSING;
    struct pdm_quality_sensor *s = &q->s[sensor];
    if (!ok) {
        s->last_failed = 1;
        s->good_run = 0;
        snprintf(s->last_error, sizeof(s->last_error), "%s", err && *err ? err : "read failed");
        return PDM_Q_MISSING;
    }
    s->last_failed = 0;
    /* Exactly equal, on purpose: a live analogue value carries noise in its last bits; a value
     * that repeats bit for bit comes from a device that stopped updating. */
    if (!s->has_value || value != s->last_value) {
        s->has_value = 1;
        s->last_value = value;
        s->value_since_ms = mono_ms;
    }
    enum pdm_quality_flag qual = PDM_Q_GOOD;
    /* !(in range) also catches NaN */
    if (!(value >= s->lim.valid_min && value <= s->lim.valid_max))
        qual = PDM_Q_OUT_OF_RANGE;
    else if (s->lim.frozen_ms > 0 && mono_ms - s->value_since_ms >= s->lim.frozen_ms)
        qual = PDM_Q_FROZEN;
    s->range_run = qual == PDM_Q_OUT_OF_RANGE ? s->range_run + 1 : 0;
    s->frozen_seen = qual == PDM_Q_FROZEN;
    if (qual == PDM_Q_GOOD) {
        s->good_run++;
        s->last_usable_ms = mono_ms;
    } else {
        s->good_run = 0;
    }
    return qual;
}

static void describe(const struct pdm_quality_sensor *s, enum pdm_quality_cause c, int64_t now,
                     char *out, size_t len)
{
    switch (c) {
    case PDM_QC_OUT_OF_RANGE:
        if (isinf(s->lim.valid_min))
            snprintf(out, len, "value %.1f above valid_max %g", s->last_value, s->lim.valid_max);
        else if (isinf(s->lim.valid_max))
            snprintf(out, len, "value %.1f below valid_min %g", s->last_value, s->lim.valid_min);
        else
            snprintf(out, len, "value %.1f outside valid range %g..%g", s->last_value,
                     s->lim.valid_min, s->lim.valid_max);
        break;
    case PDM_QC_FROZEN:
        snprintf(out, len, "value unchanged (%.3f) for %lld s", s->last_value,
                 (long long)((now - s->value_since_ms) / 1000));
        break;
    case PDM_QC_STALE:
    case PDM_QC_NONE: {
        long long secs = (long long)((now - s->last_usable_ms) / 1000);
        if (s->last_failed || !s->has_value)
            snprintf(out, len, "no good reading for %lld s: %.100s", secs,
                     s->last_error[0] ? s->last_error : "no reading yet");
        else
            snprintf(out, len, "no good reading for %lld s: last value %.3f flagged", secs,
                     s->last_value);
        break;
    }
    }
}

int64_t pdm_quality_tick(struct pdm_quality *q, int64_t now_mono_ms, pdm_quality_cb cb, void *ctx)
{
    int64_t next = NO_DEADLINE;
    for (uint32_t i = 0; i < q->n; i++) {
        struct pdm_quality_sensor *s = &q->s[i];
        struct pdm_quality_event ev = {.sensor = i, .state = s};
        if (s->faulted) {
            if (s->good_run < PDM_QUALITY_CLEAR_GOOD)
                continue;
            s->faulted = 0;
            ev.raised = 0;
            ev.cause = s->cause;
            snprintf(s->reason, sizeof(s->reason), "good again after %lld s (%u good readings)",
                     (long long)((now_mono_ms - s->fault_since_ms) / 1000), s->good_run);
            ev.reason = s->reason;
            s->cause = PDM_QC_NONE;
            if (cb)
                cb(ctx, &ev);
            s->alert_id[0] = '\0';
            s->reason[0] = '\0';
            continue;
        }
        enum pdm_quality_cause c = PDM_QC_NONE;
        if (s->range_run >= PDM_QUALITY_RAISE_BAD)
            c = PDM_QC_OUT_OF_RANGE;
        else if (s->frozen_seen)
            c = PDM_QC_FROZEN;
        else if (now_mono_ms - s->last_usable_ms >= s->lim.stale_ms)
            c = PDM_QC_STALE;
        if (c == PDM_QC_NONE) {
            int64_t due = s->last_usable_ms + s->lim.stale_ms;
            if (due < next)
                next = due;
            continue;
        }
        s->faulted = 1;
        s->cause = c;
        s->fault_since_ms = now_mono_ms;
        s->alert_id[0] = '\0';
        describe(s, c, now_mono_ms, s->reason, sizeof(s->reason));
        ev.raised = 1;
        ev.cause = c;
        ev.reason = s->reason;
        if (cb)
            cb(ctx, &ev);
    }
    return next;
}

void pdm_quality_restore(struct pdm_quality *q, uint32_t sensor, const char *alert_id,
                         int64_t now_mono_ms)
{
    if (sensor >= q->n)
        return;
    struct pdm_quality_sensor *s = &q->s[sensor];
    s->faulted = 1;
    s->cause = PDM_QC_NONE;
    s->fault_since_ms = now_mono_ms;
    s->good_run = 0;
    snprintf(s->reason, sizeof(s->reason), "open from before the restart");
    snprintf(s->alert_id, sizeof(s->alert_id), "%s", alert_id ? alert_id : "");
}

const char *pdm_quality_cause_name(enum pdm_quality_cause c)
{
    switch (c) {
    case PDM_QC_STALE:
        return "stale";
    case PDM_QC_OUT_OF_RANGE:
        return "out of range";
    case PDM_QC_FROZEN:
        return "frozen";
    case PDM_QC_NONE:
        break;
    }
    return "none";
}
