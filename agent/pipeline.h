/* The pipeline: samples from the bus threads -> data quality -> engine (windows, score, alert
 * policy), and what each step leaves behind: every reading and score into the store, SENSOR_FAULT
 * and FAULT_RISK alerts encoded, stored and handed to the outbox.
 *
 * Owns the sample queue (the bus threads push, pdm_pipeline_drain pops), the engine and the
 * quality state, the health of every sensor (what Status, the report and `pdmctl status` show),
 * the store ids of sensors and assets, the sensor names per model input, and the damping of
 * "sample queue full" and refused readings.
 *
 * Called by agent.c (drain when the queue's eventfd is readable, tick every loop turn, restore
 * open alerts at start); read by status.c, service.c and commands.c through the public fields
 * engine, quality, health and input_names. Usage counting is a hook (service.c), so this module
 * does not know the service loop. The path sample -> alert allocates nothing (test_noalloc). */
#ifndef PDM_PIPELINE_H
#define PDM_PIPELINE_H

#include <stddef.h>
#include <stdint.h>

#include "lib/log.h"
#include "lib/queue.h"
#include "models/engine.h"
#include "models/quality.h"

struct pdm_baselines;
struct pdm_control;
struct pdm_outbox;
struct pdm_store;
struct pdm_stored_alert;
struct pdm_bus_cfg;

/* The pipeline's slice of the configuration (pointers into struct pdm_config; assets are not
 * const: a model update swaps an asset's model in place, ota.c). */
struct pdm_pipeline_cfg {
    const char *device_id;
    const struct pdm_bus_cfg *buses; /* for the text of a failed read */
    const struct pdm_sensor_cfg *sensors;
    uint32_t n_sensors;
    struct pdm_asset_cfg *assets;
    uint32_t n_assets;
};

/* What the service loop counts (service.c): a good reading, a score. */
struct pdm_pipeline_hooks {
    void *ctx;
    void (*on_good_sample)(void *ctx, uint32_t sensor, int64_t mono_ms, double value);
    void (*on_score)(void *ctx, uint32_t asset, double probability);
};

struct pdm_sensor_health {
    int ok;
    uint64_t reads, errors;
    char last_error[48];
    int64_t last_ok_ms;
    double last_value; /* control socket: the last good reading */
};

struct pdm_pipeline {
    /* read by other modules */
    struct pdm_queue queue;
    struct pdm_engine engine;
    struct pdm_quality quality;       /* per sensor: flagged readings and SENSOR_FAULT alerts */
    struct pdm_sensor_health *health; /* per sensor */
    const char **input_names;         /* per asset, per model input: sensor name or NULL */

    /* private */
    struct pdm_pipeline_cfg cfg;
    struct pdm_store *store;
    struct pdm_outbox *outbox;
    struct pdm_control *control;
    struct pdm_baselines *baselines;
    struct pdm_pipeline_hooks hooks;
    uint8_t *buf; /* the agent's encode buffer, shared */
    size_t buf_cap;
    uint32_t *sensor_ref;                 /* store id per config sensor */
    uint32_t *asset_ref;                  /* store id per config asset */
    uint64_t queue_dropped_seen;          /* queue.dropped at the last drain */
    int64_t queue_drop_mono_ms;           /* when the last new drop was seen */
    struct pdm_complaint queue_complaint; /* samples dropped by a full queue */
    struct pdm_complaint put_complaint;   /* readings the store refused */
};

/* Registers the sensor and asset names in the store, sets up the engine, quality and queue.
 * Memory (start-up only): the engine's windows, the queue (288 KiB), and per sensor about 100
 * bytes. 0 or -errno (logged). Call pdm_pipeline_free in every case. */
int pdm_pipeline_init(struct pdm_pipeline *p, const struct pdm_pipeline_cfg *cfg,
                      struct pdm_store *store, struct pdm_outbox *outbox,
                      struct pdm_control *control, struct pdm_baselines *baselines, uint8_t *buf,
                      size_t buf_cap, int64_t now);
void pdm_pipeline_set_hooks(struct pdm_pipeline *p, const struct pdm_pipeline_hooks *hooks);
void pdm_pipeline_free(struct pdm_pipeline *p);

/* Takes every waiting sample off the queue: quality, engine, usage hook, store. */
void pdm_pipeline_drain(struct pdm_pipeline *p);
/* Stale sensors first (a sensor that just faulted is not scored in this turn), then due
 * scores. Returns the monotonic time of the next one due. */
int64_t pdm_pipeline_tick(struct pdm_pipeline *p, int64_t now);
/* An open SENSOR_FAULT or FAULT_RISK alert from before a restart: resumed (same alert_id). */
void pdm_pipeline_restore_alert(struct pdm_pipeline *p, const struct pdm_stored_alert *sa);
/* After a model swap: the sensor names per model input. */
void pdm_pipeline_refresh_inputs(struct pdm_pipeline *p);
/* The first asset a sensor feeds (the Alert's asset), or "" if none. */
const char *pdm_pipeline_sensor_asset(const struct pdm_pipeline *p, uint32_t sensor);

#endif
