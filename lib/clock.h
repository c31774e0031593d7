/* Time: monotonic milliseconds for scheduling and timeouts, wall-clock milliseconds for
 * timestamps that leave the device. The two are never mixed. */
#ifndef PDM_CLOCK_H
#define PDM_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline int64_t pdm_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Monotonic nanoseconds, for pacing below a millisecond (bus frame gaps, sample ticks). */
static inline int64_t pdm_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline int64_t pdm_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#endif
