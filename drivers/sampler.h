/* The sampler thread shell: what every source's reading thread needs around its loop, written
 * once. agent/bus.c (Modbus TCP and RTU) and agent/onboard_bus.c (sysfs, iio) run their loops
 * in it, and so will the sources to come (CAN).
 *
 * It lives in drivers/ rather than agent/ because it belongs with the sources it runs: it knows
 * no configuration (a thread gets a name, a loop and the queue its samples go to) and includes
 * nothing from agent/, only lib/ (layering.sh). agent/ starts and stops the threads.
 *
 * What it does:
 *  - start: the thread is named "bus-NAME" (the kernel keeps 15 characters; top -H, ps -L show
 *    it) and starts with every signal blocked: signals are for the main loop;
 *  - stop: a flag under a mutex and a condition variable on CLOCK_MONOTONIC, so a loop that
 *    sleeps until its next due time wakes at once, then the join;
 *  - push: one sample to the queue, timestamped on both clocks. */
#ifndef PDM_SAMPLER_H
#define PDM_SAMPLER_H

#include <pthread.h>
#include <stdint.h>

#include "lib/queue.h"

struct pdm_sampler {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int stop; /* under lock */
    char name[16];
    void (*loop)(void *arg);
    void *arg;
};

/* Starts loop(arg) on a new thread named "bus-" + name. 0 or -errno (then there is nothing to
 * stop). s must stay at its address until pdm_sampler_stop has returned. */
int pdm_sampler_start(struct pdm_sampler *s, const char *name, void (*loop)(void *arg), void *arg);
/* Asks the loop to end, wakes it and joins the thread (the loop returns within its own bound:
 * one request timeout). */
void pdm_sampler_stop(struct pdm_sampler *s);
/* For the loop: 1 once pdm_sampler_stop was called. */
int pdm_sampler_stopping(struct pdm_sampler *s);
/* For the loop: sleeps until the monotonic time due_ns (INT64_MAX: until stopped) or until
 * pdm_sampler_stop; returns 1 when stopping. */
int pdm_sampler_wait_until_ns(struct pdm_sampler *s, int64_t due_ns);
/* The same with a due time in ms (INT64_MAX: until stopped). */
int pdm_sampler_wait_until_ms(struct pdm_sampler *s, int64_t due_ms);

/* Pushes one reading of sensor (an index into the caller's sensor table): value, already
 * scaled, when err is 0; otherwise a failure with err (negative errno style) and reason (cut
 * to the sample's 47 characters). A full queue drops the sample and counts it (queue.h); the
 * main loop reports that. */
void pdm_sampler_push(struct pdm_queue *q, uint32_t sensor, double value, int32_t err,
                      const char *reason);

#endif
