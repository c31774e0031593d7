/* One thread per bus: it owns the bus's driver instance and reads that bus's sensors.
 *
 * Sensors are scheduled at absolute next-due times on the monotonic clock (no drift, no
 * catch-up bursts: a missed slot is skipped, not replayed). A failed read is retried with
 * backoff for that unit id (doubling from the sensor period up to 30 s, reset on success), so a
 * dead device never delays other devices' reads beyond one timeout. Every read, good or failed,
 * is pushed to the queue as a pdm_sample (failures with err/reason set), so the main loop
 * always knows when a sensor stops answering. */
#ifndef PDM_BUS_H
#define PDM_BUS_H

#include <pthread.h>
#include <stdint.h>

#include "lib/queue.h"

struct pdm_config;

struct pdm_bus; /* opaque */

/* Starts the thread for bus index `bus` of cfg. Samples go to q. 0 or -errno. */
int pdm_bus_start(struct pdm_bus **out, const struct pdm_config *cfg, uint32_t bus,
                  struct pdm_queue *q);
/* Asks the thread to stop and joins it (returns within one request timeout). */
void pdm_bus_stop(struct pdm_bus *b);

#endif
