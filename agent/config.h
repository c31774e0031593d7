/* agent.conf: the agent's configuration, read with libinih.
 *
 * Every problem is reported as "FILE:LINE: section.key: reason" through struct pdm_diag and
 * loading goes on, so one run shows all of them. Relative paths (data_dir, ca_file, cert_file,
 * key_file, asset model) are resolved against the folder of the config file and stored
 * absolute. Unknown sections and keys, duplicate keys and duplicate section names are errors.
 *
 * A [device NAME] section (bus, unit_id, profile, period_ms, only) expands to one sensor per
 * register of its profile file, named NAME.REGISTER, after the [sensor] sections. Profiles are
 * read while loading and not kept.
 *
 * Memory: the arrays below are allocated while loading (start-up only) and freed by
 * pdm_config_free(); nothing here changes afterwards. */
#ifndef PDM_CONFIG_H
#define PDM_CONFIG_H

#include <stdint.h>

#include "lib/diag.h"
#include "lib/log.h"
#include "../drivers/registers.h"
#include "../models/model.h"

#define PDM_NAME_MAX           64 /* section names, device_id: [A-Za-z0-9_.-]{1,64} */
#define PDM_PATH_MAX           1024
#define PDM_ASSET_MAX_INPUTS   PDM_MODEL_MAX_INPUTS
#define PDM_ASSET_MAX_PROVIDES 32 /* `input = sensor` lines in one [asset] section */
/* {topic_prefix}/fleet/cmd/... is the fleet-wide command topic: no device may be called so */
#define PDM_FLEET_ID "fleet"

enum pdm_bus_driver {
    PDM_DRIVER_MODBUS_TCP = 0,
    PDM_DRIVER_MODBUS_RTU = 1,
    PDM_DRIVER_SYSFS = 2, /* on-board temperatures: hwmon, thermal zones (drivers/sysfs.c) */
    PDM_DRIVER_IIO = 3,   /* on-board accelerometer, window features (drivers/iio.c) */
};

enum pdm_iio_mode { PDM_IIO_BUFFERED = 0, PDM_IIO_POLLED = 1 };
enum pdm_sysfs_source { PDM_SYSFS_NONE = 0, PDM_SYSFS_HWMON, PDM_SYSFS_THERMAL, PDM_SYSFS_FILE };
enum pdm_vib_feature { PDM_FEAT_RMS = 0, PDM_FEAT_PEAK, PDM_FEAT_CREST, PDM_FEAT_KURTOSIS };

struct pdm_bus_cfg {
    char name[PDM_NAME_MAX + 1];
    enum pdm_bus_driver driver;
    int timeout_ms; /* response timeout per request, 10..60000, default 500 */
    /* modbus-tcp */
    char host[256];
    int port; /* default 502 */
    /* modbus-rtu */
    char device[PDM_PATH_MAX];
    int baud;      /* default 9600 */
    char parity;   /* 'N' | 'E' | 'O', default 'N' */
    int data_bits; /* 7 | 8, default 8 */
    int stop_bits; /* 1 | 2, default 1 */
    /* request plans (drivers/plan.h) */
    int max_span;      /* registers per coalesced request, 1..125, default 64 */
    int max_span_bits; /* coils/discrete inputs per request, 1..2000, default 2000 */
    int max_gap;       /* unread registers/bits allowed inside a request, 0..124, default 8 */
    int frame_gap_ms;  /* pause between transactions, 0..1000; -1 = not set (see
                        * pdm_frame_gap_us(): 0 on TCP, 3.5 characters on RTU) */
    /* sysfs and iio: prefix for /sys and /dev ("" = the real system; tests use a fake tree) */
    char root[256];
    /* iio: the device by name (iio_name) or by number (device = iio:deviceN -> iio_index) */
    char iio_name[64];
    int iio_index;          /* -1 = by name */
    int rate_hz;            /* sampling frequency asked of the device, 1..100000 */
    int window;             /* samples per feature window, 2..1048576, default 4096 */
    enum pdm_iio_mode mode; /* default buffered */
    int line;               /* line of the section header */
};

struct pdm_sensor_cfg {
    char name[PDM_NAME_MAX + 1];
    uint32_t bus;             /* index into pdm_config.buses */
    int unit_id;              /* 0..247 (0 = broadcast is rejected for reads; 1..247), default 1 */
    enum pdm_reg_table table; /* holding | input | coil | discrete */
    int address;              /* 0..65535, zero-based as on the wire */
    enum pdm_reg_type type;   /* bool for coil/discrete (the only type there; value 0 or 1) */
    enum pdm_word_order order;
    double scale;  /* default 1.0 */
    double offset; /* default 0.0 */
    int period_ms; /* 10..86400000, default 1000 */
    char unit[16]; /* optional engineering unit ("degC", "mm/s", "W"), default "" */
    /* data quality (models/quality.h): readings outside valid_min..valid_max (-/+INFINITY when
     * not set) or unchanged for frozen_s (0 = off) are flagged; stale_s without a good reading
     * raises a SENSOR_FAULT (0 = default: max(3 periods, 10 s)) */
    double valid_min, valid_max;
    int frozen_s, stale_s;
    /* sysfs bus: one of hwmon (+ label or index), thermal_zone, path */
    enum pdm_sysfs_source source;
    char hwmon[64]; /* hwmon `name`, or the thermal zone's `type` */
    char label[64]; /* hwmon tempM_label, optional */
    int index;      /* hwmon tempM, 1..; 0 = by label or temp1 */
    char path[256]; /* a millidegree file under root, absolute (e.g. /sys/...) */
    /* iio bus: one feature of one axis per sensor; period_ms is the bus's window / rate_hz */
    int axis;                     /* 0 x, 1 y, 2 z */
    enum pdm_vib_feature feature; /* rms | peak (m/s^2) | crest | kurtosis (no unit) */
    int line;
};

struct pdm_asset_input_cfg {
    char input[PDM_NAME_MAX + 1]; /* model input name, e.g. "temperature" */
    int32_t sensor;               /* index into pdm_config.sensors; -1 for age */
    int line;
};

struct pdm_asset_cfg {
    char name[PDM_NAME_MAX + 1];
    char model_path[PDM_PATH_MAX]; /* absolute */
    /* The model the asset runs: loaded and validated from model_path, or (agent/ota.c) an
     * accepted model update from data_dir, which replaces it and inputs[] while running. */
    struct pdm_model model;
    struct pdm_asset_input_cfg inputs[PDM_ASSET_MAX_INPUTS]; /* per model input, model order */
    uint32_t n_inputs;
    /* Every `input = sensor` line of the section, also for inputs the model does not use (yet):
     * a model update may use them. age is not listed (it comes from installed_s). */
    struct pdm_asset_input_cfg provides[PDM_ASSET_MAX_PROVIDES];
    uint32_t n_provides;
    int64_t installed_s; /* "installed = YYYY-MM-DD" as Unix seconds (UTC midnight); 0 = unset */
    int line;
    /* Usage counters and maintenance (agent/usage.h, issue 6). The asset runs while
     * running_sensor reads > running_above; it stops at <= running_above - running_hysteresis;
     * either change counts after running_debounce_s. */
    int has_running;           /* running_sensor is set */
    int32_t running_sensor;    /* index into sensors */
    double running_above;      /* required with running_sensor */
    double running_hysteresis; /* >= 0, default 0 */
    int running_debounce_s;    /* 0..3600, default 5 */
    int age_from_run_hours; /* age_from = run_hours: the model's age (years) = run hours / 8766 */
    double service_every_hours; /* run hours between services, 0 = off */
    int service_every_starts;   /* starts between services, 0 = off */
    int service_every_months;   /* calendar months between services, 0 = off */
    int64_t last_service_s;     /* "last_service = YYYY-MM-DD" (Unix s, UTC), 0 = unset */
};

struct pdm_config {
    char path[PDM_PATH_MAX]; /* as given */
    char dir[PDM_PATH_MAX];  /* absolute folder of the config file */

    /* [agent] */
    char device_id[PDM_NAME_MAX + 1];
    char data_dir[PDM_PATH_MAX];
    enum pdm_log_level log_level; /* default info */
    int commit_interval_ms;       /* readings reach the disk at least this often: 50..60000, 1000 */
    int buffer_max_mb;            /* cap of the store on disk: 1..65536, default 64 */
    int disk_reserve_mb;          /* keep this much of the filesystem free: 0..65536, default 8 */
    /* PEM file of the public key(s) that sign model updates (agent/modelsig.h); "" = model
     * updates are refused. Checked at load: readable, 1..4 EC P-256 public keys. */
    char model_pubkey[PDM_PATH_MAX];
    /* closed service loop (issue 6): an unacknowledged open alert is sent again as UPDATED every
     * renotify_h hours (0 = never; default 24); a recorded service visit is judged
     * confirm_after_h hours later (default 72). Both 0..8760, fractions allowed. */
    double renotify_h;
    double confirm_after_h;

    /* [mqtt] */
    char uri[512]; /* mqtts://host:port (or mqtt:// with allow_plaintext) */
    char ca_file[PDM_PATH_MAX];
    char cert_file[PDM_PATH_MAX];
    char key_file[PDM_PATH_MAX];
    char topic_prefix[256];   /* default "pdm/v1" */
    int telemetry_interval_s; /* 1..3600, default 10 */
    int allow_plaintext;      /* default 0 */

    struct pdm_bus_cfg *buses;
    uint32_t n_buses;
    struct pdm_sensor_cfg *sensors;
    uint32_t n_sensors;
    struct pdm_asset_cfg *assets;
    uint32_t n_assets;
};

/* Loads and validates path into cfg (zeroed first). Checks values and ranges, references
 * between sections, loads every asset's model file, and checks that ca_file, cert_file and
 * key_file can be opened for reading. Returns the number of errors (0 = good). On errors cfg
 * may be partly filled; call pdm_config_free() in every case. */
int pdm_config_load(const char *path, struct pdm_config *cfg, struct pdm_diag *diag);
void pdm_config_free(struct pdm_config *cfg);

/* The installed folder of device profiles (NAME.profile), searched after the `profiles/`
 * folder next to the configuration file. */
const char *pdm_config_profile_dir(void);

/* Index of a sensor/asset/bus by name, or -1. A [device NAME] section's registers are sensors
 * named NAME.REGISTER. */
int pdm_config_sensor_index(const struct pdm_config *cfg, const char *name);
int pdm_config_asset_index(const struct pdm_config *cfg, const char *name);
int pdm_config_bus_index(const struct pdm_config *cfg, const char *name);

#endif
