/* Bounded multi-producer, single-consumer queue of samples from bus threads to the main loop.
 *
 * Memory: capacity * sizeof(struct pdm_sample) (72 bytes) allocated once at init; at the
 * default 4096 entries that is 288 KiB. Push never blocks and never allocates: when the queue is
 * full the sample is dropped and counted (the main loop reports the count). An eventfd becomes
 * readable when the queue goes from empty to non-empty, so the consumer can poll() it. */
#ifndef PDM_QUEUE_H
#define PDM_QUEUE_H

#include <pthread.h>
#include <stdint.h>

#include "sample.h"

struct pdm_queue {
    pthread_mutex_t lock;
    struct pdm_sample *ring;
    uint32_t cap, head, count;
    uint64_t dropped; /* samples lost because the queue was full */
    int efd;          /* eventfd, readable while samples are waiting */
};

int pdm_queue_init(struct pdm_queue *q, uint32_t capacity); /* 0 or -errno */
void pdm_queue_destroy(struct pdm_queue *q);
/* Returns 0, or -ENOBUFS when full (sample dropped and counted). Thread-safe. */
int pdm_queue_push(struct pdm_queue *q, const struct pdm_sample *s);
/* Moves up to max samples into out; returns how many. Clears the eventfd when emptied. */
uint32_t pdm_queue_pop(struct pdm_queue *q, struct pdm_sample *out, uint32_t max);

#endif
