/* The commands the agent knows: one table (commands[] in commands.c) and a handler per command,
 * plus the control socket's requests with arguments (`pdmctl baseline`).
 *
 *   model     ota.c swaps the model; baselines and the inputs follow; Status at once
 *   baseline  baseline.c starts learning; the end of learning is a second answer (tick)
 *   ack       service.c: no more reminders of an alert
 *   service   service.c records a visit; Status at once
 *   status    Status now (status.c)
 *   report    a CheckupReport on {topic_prefix}/{device_id}/report
 *
 * command.c is the generic part (topics, refusals, request_id, the answer's encoding); a handler
 * decodes its payload and calls the module it acts on. The handlers never see struct agent:
 * they reach their modules through struct pdm_cmd_modules, each using only the pointers its
 * line above names (report: pipeline, service, store, outbox). Answers go to the outbox
 * (pdm_outbox_queue_result). Main loop only. */
#ifndef PDM_COMMANDS_H
#define PDM_COMMANDS_H

#include <stddef.h>
#include <stdint.h>

#include "uplink.h"

struct pdm_asset_cfg;
struct pdm_baselines;
struct pdm_control;
struct pdm_ota;
struct pdm_outbox;
struct pdm_pipeline;
struct pdm_sensor_cfg;
struct pdm_service;
struct pdm_status;
struct pdm_store;

/* The slice of the configuration the commands need (pointers into struct pdm_config). */
struct pdm_commands_cfg {
    const char *device_id;
    const char *topic_prefix;
    const struct pdm_sensor_cfg *sensors; /* report: sensor names */
    uint32_t n_sensors;
    const struct pdm_asset_cfg *assets; /* asset names and models */
    uint32_t n_assets;
};

/* The modules the handlers act on. */
struct pdm_cmd_modules {
    struct pdm_ota *ota;             /* model */
    struct pdm_baselines *baselines; /* model, baseline, control requests */
    struct pdm_pipeline *pipe;       /* the engine and inputs: model, baseline, report */
    struct pdm_service *service;     /* ack, service, report */
    struct pdm_status *status;       /* status; model and service publish it */
    struct pdm_store *store;         /* report: recent alerts */
    struct pdm_outbox *outbox;       /* every answer; the report */
    struct pdm_control *control;     /* refusals and failed baselines, for pdmctl status */
    uint8_t *buf;                    /* the agent's encode buffer (the report), shared */
    size_t buf_cap;
};

struct pdm_commands {
    /* private to commands.c */
    struct pdm_commands_cfg cfg;
    struct pdm_cmd_modules m;
    char topic_report[512];
};

/* Sets c up (zeroed first); keeps the pointers. No failure. */
void pdm_commands_init(struct pdm_commands *c, const struct pdm_commands_cfg *cfg,
                       const struct pdm_cmd_modules *m);
/* A MESSAGE event from the uplink: dispatch (command.c), then the answer to the outbox. */
void pdm_commands_handle(struct pdm_commands *c, const struct pdm_uplink_event *ev);
/* Every loop turn: learning that ended answers the cmd/baseline that started it. */
void pdm_commands_tick(struct pdm_commands *c, int64_t now);
/* The control socket's handler (pdm_control_request_cb, ctx = c): "baseline ASSET SECONDS
 * [force]" and "baseline-show ASSET". */
int pdm_commands_control_request(void *ctx, const char *req, char *out, size_t cap);

#endif
