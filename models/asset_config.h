/* The [asset] sections of agent.conf as the scoring engine uses them: the model an asset runs
 * and which sensor feeds each of its inputs. agent/config.c reads, defaults and validates them
 * (struct pdm_config holds the array). */
#ifndef PDM_ASSET_CONFIG_H
#define PDM_ASSET_CONFIG_H

#include <stdint.h>

#include "lib/names.h"
#include "model.h"

#define PDM_ASSET_MAX_INPUTS   PDM_MODEL_MAX_INPUTS
#define PDM_ASSET_MAX_PROVIDES 32 /* `input = sensor` lines in one [asset] section */

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

#endif
