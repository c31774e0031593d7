#include "timer.h"

#include <errno.h>
#include <stddef.h>

int pdm_timer_add(struct pdm_timers *ts, const char *name, int64_t due, pdm_timer_fn fn, void *ctx)
{
    if (ts->n >= PDM_TIMERS_MAX)
        return -ENOSPC;
    ts->t[ts->n] = (struct pdm_timer){.name = name, .due = due, .fn = fn, .ctx = ctx};
    return ts->n++;
}

void pdm_timer_set(struct pdm_timers *ts, int id, int64_t due)
{
    if (ts && id >= 0 && id < ts->n)
        ts->t[id].due = due;
}

void pdm_timers_run(struct pdm_timers *ts, int64_t now)
{
    for (int i = 0; i < ts->n; i++)
        if (ts->t[i].due <= now)
            ts->t[i].due = ts->t[i].fn(ts->t[i].ctx, now);
}

int64_t pdm_timers_next(const struct pdm_timers *ts)
{
    int64_t due = PDM_TIMER_OFF;
    for (int i = 0; i < ts->n; i++)
        if (ts->t[i].due < due)
            due = ts->t[i].due;
    return due;
}
