/* Data quality per sensor: is a reading usable, and is the sensor faulted?
 *
 * A reading is usable when it is in the sensor's valid range and not frozen (the value has not
 * changed at all for frozen_ms). A sensor is faulted (a SENSOR_FAULT alert) when
 *   - PDM_QUALITY_RAISE_BAD readings in a row are out of range, or one reading is frozen, or
 *   - no usable reading arrived for stale_ms (the sensor does not answer, or only bad values).
 * A faulted sensor clears after PDM_QUALITY_CLEAR_GOOD usable readings in a row, so a sensor
 * that is good for one reading and bad for the next does not raise and clear on every read.
 *
 * Pure logic on the caller's clock (monotonic ms), no I/O. Memory: one struct
 * pdm_quality_sensor (about 0.4 KB) per sensor, allocated by pdm_quality_init(); on_sample and
 * tick do not allocate. Main loop only (not thread-safe). */
#ifndef PDM_QUALITY_H
#define PDM_QUALITY_H

#include <stddef.h>
#include <stdint.h>

#define PDM_QUALITY_RAISE_BAD  3 /* out-of-range readings in a row before a fault */
#define PDM_QUALITY_CLEAR_GOOD 3 /* usable readings in a row before a fault clears */
#define PDM_QUALITY_REASON_MAX 160
#define PDM_QUALITY_ID_MAX     96

/* Quality of one stored reading (TelemetryBatch SensorSeries.quality). */
enum pdm_quality_flag {
    PDM_Q_GOOD = 0,
    PDM_Q_OUT_OF_RANGE = 1,
    PDM_Q_FROZEN = 2,
    PDM_Q_MISSING = 3, /* the read failed: there is no value to store */
};

enum pdm_quality_cause {
    PDM_QC_NONE = 0,
    PDM_QC_STALE,        /* no usable reading for stale_ms */
    PDM_QC_OUT_OF_RANGE, /* readings outside valid_min..valid_max */
    PDM_QC_FROZEN,       /* the value has not changed for frozen_ms */
};

/* Limits of one sensor. valid_min/max: -INFINITY/INFINITY when not configured. */
struct pdm_quality_limits {
    double valid_min, valid_max;
    int64_t frozen_ms; /* 0 = frozen detection off */
    int64_t stale_ms;  /* > 0 */
};

struct pdm_quality_sensor {
    struct pdm_quality_limits lim;
    int has_value;
    double last_value;                       /* last value read (usable or not) */
    int64_t value_since_ms;                  /* when last_value was first seen unchanged */
    int64_t last_usable_ms;                  /* last usable reading (start time until the first) */
    uint32_t good_run;                       /* usable readings in a row */
    uint32_t range_run;                      /* out-of-range readings in a row */
    int frozen_seen;                         /* the last reading was frozen */
    int last_failed;                         /* the last read failed (not a flagged value) */
    char last_error[PDM_QUALITY_REASON_MAX]; /* reason of the last failed read */
    int faulted;
    enum pdm_quality_cause cause; /* of the open fault */
    int64_t fault_since_ms;
    char reason[PDM_QUALITY_REASON_MAX]; /* of the open fault, for logs and status */
    char alert_id[PDM_QUALITY_ID_MAX];   /* the caller's id for the open fault's alert */
};

struct pdm_quality {
    struct pdm_quality_sensor *s;
    uint32_t n;
};

/* One change of a sensor's fault state, from pdm_quality_tick(). */
struct pdm_quality_event {
    uint32_t sensor;
    int raised; /* 1 = fault raised, 0 = cleared */
    enum pdm_quality_cause cause;
    const char *reason;               /* raised: what is wrong; cleared: how it recovered */
    struct pdm_quality_sensor *state; /* set state->alert_id on raise; read it on clear */
};
typedef void (*pdm_quality_cb)(void *ctx, const struct pdm_quality_event *ev);

/* n sensors, all starting good at now_mono_ms with the given limits (copied). 0 or -errno. */
int pdm_quality_init(struct pdm_quality *q, const struct pdm_quality_limits *lim, uint32_t n,
                     int64_t now_mono_ms);
void pdm_quality_free(struct pdm_quality *q);

/* The default stale time for a sensor read every period_ms: max(3 periods, 10 s). */
int64_t pdm_quality_default_stale_ms(int period_ms);

/* One read of sensor: ok = the read succeeded (value valid), else err describes the failure.
 * Returns the reading's quality: PDM_Q_GOOD (usable: feed it to the model), OUT_OF_RANGE or
 * FROZEN (store it flagged, do not score on it), MISSING when !ok. */
enum pdm_quality_flag pdm_quality_on_sample(struct pdm_quality *q, uint32_t sensor, int ok,
                                            double value, int64_t mono_ms, const char *err);

/* Raises and clears faults due at now_mono_ms; calls cb for each change. Returns the monotonic
 * time of the next possible stale fault (for the caller's poll timeout). */
int64_t pdm_quality_tick(struct pdm_quality *q, int64_t now_mono_ms, pdm_quality_cb cb, void *ctx);

/* Marks sensor as faulted with an alert opened before a restart (id), so that its recovery
 * clears that alert rather than leaving it open. */
void pdm_quality_restore(struct pdm_quality *q, uint32_t sensor, const char *alert_id,
                         int64_t now_mono_ms);

const char *pdm_quality_cause_name(enum pdm_quality_cause c);

#endif
