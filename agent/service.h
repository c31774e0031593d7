/* The closed service loop (issue 6): usage counters, maintenance limits, service visits and
 * their outcomes, reminders of open alerts nobody acknowledged.
 *
 * Per asset: run time and starts from its running_sensor (usage.h), staged into the store on
 * every sample and written with the readings' commits; MAINTENANCE_DUE when a limit is reached,
 * open until a service visit is recorded (cmd/service); after a visit, confirm_after_h hours of
 * observation and then a SERVICE_OUTCOME alert. Reminders: every open alert that nobody
 * acknowledged (cmd/ack) is sent again as UPDATED (reminder = true) every renotify_h hours.
 *
 * Owns the usage counters and maintenance state of every asset and the reminder state of every
 * source of open alerts (each asset's FAULT_RISK and MAINTENANCE_DUE, each sensor's
 * SENSOR_FAULT). Counts through the pipeline's hooks (pipeline.h), reads the engine and quality
 * state of the pipeline for reminders and outcomes, stores and encodes its alerts and hands
 * them to the outbox. Runs one timer (checks every second). Called by agent.c (set-up, restore
 * of open alerts), commands.c (cmd/ack, cmd/service, cmd/report) and status.c (the usage view).
 *
 * Memory, at start-up: one struct pdm_service_asset per asset (about 0.5 KB) and one struct
 * pdm_reminder (about 110 bytes) per asset twice and per sensor once. The sample and score
 * hooks copy a few numbers and allocate nothing (test_noalloc). Main loop only. */
#ifndef PDM_SERVICE_H
#define PDM_SERVICE_H

#include <stddef.h>
#include <stdint.h>

#include "command.h"
#include "encode.h"
#include "timer.h"

struct pdm_asset_cfg;
struct pdm_outbox;
struct pdm_pipeline;
struct pdm_sensor_cfg;
struct pdm_store;
struct pdm_stored_alert;

/* The service loop's slice of the configuration (pointers into struct pdm_config). */
struct pdm_service_cfg {
    const char *device_id;
    const struct pdm_sensor_cfg *sensors; /* names, and the period of a running_sensor */
    uint32_t n_sensors;
    const struct pdm_asset_cfg *assets; /* running_sensor, service limits, names, models */
    uint32_t n_assets;
    double renotify_h;      /* reminders of unacknowledged alerts; 0 = none */
    double confirm_after_h; /* observation after a service visit */
};

struct pdm_service_asset; /* private to service.c */
struct pdm_reminder;

struct pdm_service {
    /* private to service.c */
    struct pdm_service_cfg cfg;
    struct pdm_store *store;
    struct pdm_outbox *outbox;
    struct pdm_pipeline *pipe; /* engine, quality, input names; run_years is written here */
    uint8_t *buf;              /* the agent's encode buffer, shared */
    size_t buf_cap;
    struct pdm_service_asset *assets; /* per asset */
    struct pdm_reminder *rem; /* per open-alert source: assets, then sensors, then maintenance */
    uint32_t n_rem;
};

/* After the store is open and the pipeline set up: loads the counters, sets the engine's run
 * hours (age_from = run_hours) and installs the pipeline's usage hooks. 0 or -errno (logged,
 * except an allocation failure). Call pdm_service_free in every case. */
int pdm_service_init(struct pdm_service *s, const struct pdm_service_cfg *cfg,
                     struct pdm_store *store, struct pdm_outbox *outbox, struct pdm_pipeline *pipe,
                     uint8_t *buf, size_t buf_cap);
void pdm_service_free(struct pdm_service *s);
/* Registers the check of limits, outcomes and reminders (first due at once). Its id or
 * -ENOSPC. */
int pdm_service_add_timer(struct pdm_service *s, struct pdm_timers *t);

/* An open alert from before a restart: a MAINTENANCE_DUE ("maint:ASSET") is resumed. Returns 1
 * if the stored alert belongs to the service loop (MAINTENANCE_DUE or SERVICE_OUTCOME), else 0. */
int pdm_service_restore(struct pdm_service *s, const struct pdm_stored_alert *sa);

/* The usage view of asset i (Status, report, control socket). Returns 1 when the asset has
 * usage to show (a running_sensor or a maintenance limit, or a recorded visit), else 0. */
int pdm_service_usage(const struct pdm_service *s, uint32_t i, struct pdm_usage_view *v);
/* The open alerts of asset i for a report: its FAULT_RISK, faults of the sensors whose first
 * asset it is, its MAINTENANCE_DUE, each with whether it is acknowledged. out has room for
 * n_sensors + 2. Returns how many. */
size_t pdm_service_open_alerts(struct pdm_service *s, uint32_t i, int64_t now,
                               struct pdm_report_alert *out);
/* The kind (pdm.v1.AlertKind) of a stored alert, from its store key. */
int pdm_service_alert_kind(const char *key);

/* cmd/ack: alert_id acknowledged by `by` (no more reminders); fills res. */
void pdm_service_ack(struct pdm_service *s, const char *alert_id, const char *by,
                     struct pdm_cmd_result *res);
/* cmd/service: a visit to asset i; resets its maintenance counters, clears its MAINTENANCE_DUE
 * and starts the observation. Fills res; 0 when the visit is recorded, else -errno. */
int pdm_service_visit(struct pdm_service *s, uint32_t i, const char *visit_ref,
                      const char *technician, const char *note, struct pdm_cmd_result *res);

#endif
