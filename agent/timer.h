/* The main loop's timer table: a module registers a callback with its next due time on the
 * monotonic clock (pdm_mono_ms()); the loop (agent.c) runs what is due once per turn, in the
 * order the timers were registered, and sleeps until the earliest due time.
 *
 * Owned by agent.c (one table, filled at start-up); a module keeps the id it was given to move
 * or stop its own timer (pdm_timer_set). Fixed size, no allocation, main loop only. */
#ifndef PDM_TIMER_H
#define PDM_TIMER_H

#include <stdint.h>

#define PDM_TIMERS_MAX 12
#define PDM_TIMER_OFF  INT64_MAX /* a stopped timer: never due */

/* Runs a due timer; returns its next due time (monotonic ms) or PDM_TIMER_OFF. */
typedef int64_t (*pdm_timer_fn)(void *ctx, int64_t now);

struct pdm_timer {
    const char *name; /* for debugging */
    int64_t due;      /* monotonic ms, PDM_TIMER_OFF when stopped */
    pdm_timer_fn fn;
    void *ctx;
};

struct pdm_timers {
    struct pdm_timer t[PDM_TIMERS_MAX];
    int n;
};

/* Registers a timer first due at due. Returns its id (>= 0) or -ENOSPC. */
int pdm_timer_add(struct pdm_timers *ts, const char *name, int64_t due, pdm_timer_fn fn, void *ctx);
/* Moves timer id to due (PDM_TIMER_OFF stops it). ts NULL or id < 0: nothing (a module used
 * without a loop, as in the unit tests). */
void pdm_timer_set(struct pdm_timers *ts, int id, int64_t due);
/* Runs every timer with due <= now, in registration order, and stores the time it returns. */
void pdm_timers_run(struct pdm_timers *ts, int64_t now);
/* The earliest due time, or PDM_TIMER_OFF. */
int64_t pdm_timers_next(const struct pdm_timers *ts);

#endif
