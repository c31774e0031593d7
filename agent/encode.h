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
};

/* Returns the packed length, or -ENOSPC if cap is too small. Inputs are written largest
 * |contribution| first. */
int pdm_encode_alert(const struct pdm_alert_msg *m, uint8_t *buf, size_t cap);

/* A SENSOR_FAULT alert (kind SENSOR_FAULT, severity WARNING; no model fields). */
struct pdm_sensor_fault_msg {
    const char *device_id, *asset, *alert_id, *sensor, *reason;
    uint64_t seq;
    enum pdm_alert_state state; /* RAISED or CLEARED */
    int64_t ts_ms;
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

/* Turns an encoded Alert of len bytes in buf into one with replay = true (appends 2 bytes).
 * Returns the new length or -ENOSPC. */
int pdm_encode_mark_replay(uint8_t *buf, size_t len, size_t cap);

#endif
