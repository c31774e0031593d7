/* What the agent says about itself: the retained Status message on
 * {topic_prefix}/{device_id}/status (models, sensor health, the store's figures, usage per asset;
 * the offline Status is also the Last Will) and the snapshot the control socket serves to `pdmctl
 * status`.
 *
 * Owns the Status topic and the Status timer (a refresh every minute while connected). Reads
 * the other modules and changes none of them: the pipeline's public fields (sensor health,
 * engine, model inputs, queue drops), the service loop's usage view (pdm_service_usage), the
 * store's figures (pdm_store_stats) and the broker state agent.c keeps in struct
 * pdm_broker_state. Publishes through the outbox. Called by agent.c (connection events, the
 * Last Will, the control socket) and commands.c (cmd/status, and after cmd/model and
 * cmd/service). Main loop only; no allocation (a few KiB of stack while encoding). */
#ifndef PDM_STATUS_H
#define PDM_STATUS_H

#include <stddef.h>
#include <stdint.h>

#include "timer.h"

struct pdm_asset_cfg;
struct pdm_bus_cfg;
struct pdm_ctl_snapshot;
struct pdm_outbox;
struct pdm_pipeline;
struct pdm_sensor_cfg;
struct pdm_service;
struct pdm_store;

/* The broker connection as the snapshot shows it; written by agent.c only. */
struct pdm_broker_state {
    int connected, connecting;
    char error[256]; /* last connect failure or loss */
};

/* The slice of the configuration Status and the snapshot show (pointers into struct
 * pdm_config; an asset's model can change in place, ota.c). */
struct pdm_status_cfg {
    const char *device_id;
    const char *topic_prefix;
    const char *uri;
    const struct pdm_bus_cfg *buses; /* bus names of sensors */
    const struct pdm_sensor_cfg *sensors;
    uint32_t n_sensors;
    const struct pdm_asset_cfg *assets;
    uint32_t n_assets;
};

struct pdm_status {
    /* private to status.c */
    struct pdm_status_cfg cfg;
    const struct pdm_pipeline *pipe;
    const struct pdm_service *service; /* NULL: no usage in Status */
    struct pdm_store *store;
    struct pdm_outbox *outbox;
    const struct pdm_broker_state *broker;
    uint8_t *buf; /* the agent's encode buffer, shared */
    size_t buf_cap;
    char topic[512];
    struct pdm_timers *timers;
    int t_status; /* stopped while disconnected */
};

/* Sets st up (zeroed first); keeps the pointers. No failure. */
void pdm_status_init(struct pdm_status *st, const struct pdm_status_cfg *cfg,
                     const struct pdm_pipeline *pipe, const struct pdm_service *service,
                     struct pdm_store *store, struct pdm_outbox *outbox,
                     const struct pdm_broker_state *broker, uint8_t *buf, size_t buf_cap);
/* Registers the Status timer, stopped. Its id or -ENOSPC. */
int pdm_status_add_timer(struct pdm_status *st, struct pdm_timers *t);
/* The next refresh one interval after now (connected, or a Status just sent on request). */
void pdm_status_timer_restart(struct pdm_status *st, int64_t now);
/* No refresh while offline. */
void pdm_status_timer_stop(struct pdm_status *st);

/* Encodes the Status into buf: online (everything) or offline (device, models: the Last Will
 * and the goodbye). Returns the length or -ENOSPC. */
int pdm_status_encode(struct pdm_status *st, int online, uint8_t *buf, size_t cap);
/* Publishes the Status, retained (failures are logged). */
void pdm_status_publish(struct pdm_status *st, int online);
/* {topic_prefix}/{device_id}/status */
const char *pdm_status_topic(const struct pdm_status *st);

/* The control socket's fill callback (pdm_control_fill_cb, ctx = st): copies the loop's view
 * into the snapshot (arrays sized at start: no allocation). */
void pdm_status_fill_snapshot(void *ctx, struct pdm_ctl_snapshot *s);

#endif
