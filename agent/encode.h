/* Encoding of the pdm.v1 messages (proto/pdm/v1/pdm.proto) with protobuf-c, into caller
 * buffers: the message structs are built on the stack and packed without heap allocation. */
#ifndef PDM_ENCODE_H
#define PDM_ENCODE_H

#include <stddef.h>
#include <stdint.h>

#include "../models/alert.h"
#include "../models/model.h"

struct pdm_alert_msg {
    const char *device_id, *asset, *alert_id;
    uint64_t seq;
    enum pdm_alert_state state;
    enum pdm_severity severity;
    int64_t ts_ms;
    const struct pdm_model *model;
    const struct pdm_score *score;
    const char *const *input_sensors; /* per model input: sensor name, or NULL (age) */
    int reminder;                     /* UPDATED re-sent for renotify_h (Alert.reminder) */
};

/* Returns the packed length, or -ENOSPC if cap is too small. Inputs are written largest
 * |contribution| first. */
int pdm_encode_alert(const struct pdm_alert_msg *m, uint8_t *buf, size_t cap);

/* A SENSOR_FAULT alert (kind SENSOR_FAULT, severity WARNING; no model fields). */
struct pdm_sensor_fault_msg {
    const char *device_id, *asset, *alert_id, *sensor, *reason;
    uint64_t seq;
    enum pdm_alert_state state; /* RAISED or CLEARED (UPDATED with reminder) */
    int64_t ts_ms;
    int reminder;
};
int pdm_encode_sensor_fault(const struct pdm_sensor_fault_msg *m, uint8_t *buf, size_t cap);

/* Telemetry: rows are grouped into one SensorSeries per sensor and one AssetScore per score. */
struct pdm_telemetry_row {
    uint64_t seq;
    int64_t ts_ms;
    double value;
    uint8_t kind;     /* enum pdm_row_kind: 0 reading, 1 score */
    const char *name; /* sensor or asset name */
    const char *unit; /* sensor unit or "" */
    uint8_t quality;  /* readings: enum pdm_quality_flag, 0 = good (SensorSeries.quality) */
};
/* n <= PDM_TELEMETRY_MAX_ROWS. Uses static scratch space: main loop only (not thread-safe). */
#define PDM_TELEMETRY_MAX_ROWS 4096
/* replay: sets TelemetryBatch.replay (backlog from before the current connection). */
int pdm_encode_telemetry(const char *device_id, int64_t now_ms,
                         const struct pdm_telemetry_row *rows, size_t n, int replay, uint8_t *buf,
                         size_t cap);

struct pdm_status_model {
    const char *asset, *model_id;
    uint32_t version;
    const char *sha256; /* hex, or NULL */
};
struct pdm_status_sensor {
    const char *sensor;
    int ok;
    uint64_t reads, errors;
    const char *last_error;
    int64_t last_ok_ms;
};
struct pdm_status_msg {
    const char *device_id;
    int online;
    const char *agent_version;
    int64_t ts_ms;
    const struct pdm_status_model *models;
    size_t n_models;
    const struct pdm_status_sensor *sensors;
    size_t n_sensors;
    uint64_t buffer_readings, buffer_alerts, seq;
    uint64_t buffer_bytes, buffer_max_bytes;
    int64_t oldest_undelivered_ms;
    uint64_t delivered_readings, delivered_alerts, dropped_readings;
    int store_recovered, store_write_failing;
};
int pdm_encode_status(const struct pdm_status_msg *m, uint8_t *buf, size_t cap);

/* ---- closed service loop (issue 6) ---- */

/* pdm.v1.AssetUsage */
struct pdm_usage_view {
    const char *asset;
    double run_hours, hours_since_service;
    uint64_t starts, starts_since_service;
    int running;
    int64_t last_service_ms, outcome_due_ms;
    const char *maintenance_due, *alert_id; /* "" when none */
};

/* A MAINTENANCE_DUE or SERVICE_OUTCOME alert (kind: enum values of pdm.v1.AlertKind). */
enum { PDM_KIND_MAINTENANCE_DUE = 2, PDM_KIND_SERVICE_OUTCOME = 3 };
struct pdm_service_alert_msg {
    const char *device_id, *asset, *alert_id, *reason;
    uint64_t seq;
    int kind;
    enum pdm_alert_state state;
    enum pdm_severity severity;
    int64_t ts_ms;
    const struct pdm_usage_view *usage;
    int outcome; /* pdm.v1.ServiceOutcome */
    uint64_t visit_id;
    double probability; /* SERVICE_OUTCOME: highest since the visit */
    int reminder;
};
int pdm_encode_service_alert(const struct pdm_service_alert_msg *m, uint8_t *buf, size_t cap);

/* Status.usage (field 18): appended to an encoded Status of len bytes. Returns the new length
 * or -ENOSPC. */
int pdm_encode_status_usage(const struct pdm_usage_view *u, size_t n, uint8_t *buf, size_t len,
                            size_t cap);

/* pdm.v1.CheckupReport, built from these (main loop only: static scratch). */
struct pdm_report_alert {
    const char *alert_id;
    int kind, state, severity, acknowledged;
    int64_t ts_ms;
    uint64_t seq;
};
struct pdm_report_asset {
    const char *asset;
    const struct pdm_model *model;
    int scored;
    const struct pdm_score *score;    /* when scored */
    const char *const *input_sensors; /* per model input */
    int64_t score_ts_ms;
    const struct pdm_usage_view *usage; /* NULL without running_sensor */
    const struct pdm_report_alert *open, *recent;
    size_t n_open, n_recent;
};
struct pdm_report_msg {
    const char *device_id, *request_id, *agent_version;
    int64_t ts_ms;
    const struct pdm_report_asset *assets;
    size_t n_assets;
    const struct pdm_status_sensor *sensors;
    size_t n_sensors;
};
int pdm_encode_report(const struct pdm_report_msg *m, uint8_t *buf, size_t cap);

/* Turns an encoded Alert of len bytes in buf into one with replay = true (appends 2 bytes).
 * Returns the new length or -ENOSPC. */
int pdm_encode_mark_replay(uint8_t *buf, size_t len, size_t cap);

/* Why an encode into a buffer of cap bytes failed, for a log line: its -ENOSPC means the message
 * did not fit (strerror's "No space left on device" would send a field engineer looking for a
 * full disk); other codes are strerror's text. Returns buf or a static string. */
const char *pdm_encode_why(int rc, size_t cap, char *buf, size_t n);

#endif
