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
#include "lib/names.h"
#include "drivers/bus_config.h"
#include "models/asset_config.h"

/* {topic_prefix}/fleet/cmd/... is the fleet-wide command topic: no device may be called so */
#define PDM_FLEET_ID "fleet"

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

/* Every default of the [bus], [sensor] and [asset] key tables (agent/config_sections.c), for
 * a section's struct made elsewhere (pdmctl's --tcp/--rtu buses, tests). */
void pdm_config_bus_defaults(struct pdm_bus_cfg *b);
void pdm_config_sensor_defaults(struct pdm_sensor_cfg *sn);
void pdm_config_asset_defaults(struct pdm_asset_cfg *a);

/* The installed folder of device profiles (NAME.profile), searched after the `profiles/`
 * folder next to the configuration file. */
const char *pdm_config_profile_dir(void);

/* Index of a sensor/asset/bus by name, or -1. A [device NAME] section's registers are sensors
 * named NAME.REGISTER. */
int pdm_config_sensor_index(const struct pdm_config *cfg, const char *name);
int pdm_config_asset_index(const struct pdm_config *cfg, const char *name);
int pdm_config_bus_index(const struct pdm_config *cfg, const char *name);

#endif
