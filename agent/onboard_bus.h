/* The bus thread for on-board sensors (driver = sysfs or iio), behind agent/bus.c: pdm_bus_start
 * and pdm_bus_stop pick this body by the bus's driver. Same contract as bus.h: one thread per
 * bus, every reading (good or failed) pushed to the queue as a pdm_sample. */
#ifndef PDM_ONBOARD_BUS_H
#define PDM_ONBOARD_BUS_H

#include <stdint.h>

#include "lib/queue.h"

struct pdm_config;
struct pdm_onboard_bus;

/* Starts the thread for bus index `bus` (driver sysfs or iio). 0 or -errno. */
int pdm_onboard_bus_start(struct pdm_onboard_bus **out, const struct pdm_config *cfg, uint32_t bus,
                          struct pdm_queue *q);
/* Stops and joins the thread (within the bus's timeout_ms), frees everything. NULL-safe. */
void pdm_onboard_bus_stop(struct pdm_onboard_bus *b);

struct pdm_bus_cfg;
struct pdm_sensor_cfg;
struct pdm_onboard_cfg;
/* The sysfs driver's view of a sensor of a sysfs bus (for pdmctl check's one-off read). */
void pdm_onboard_sysfs_cfg(const struct pdm_bus_cfg *bc, const struct pdm_sensor_cfg *sc,
                           struct pdm_onboard_cfg *oc);

#endif
