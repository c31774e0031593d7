/* Signed model updates over the air: the cmd/model command and, at start, which model each
 * asset runs. The contract (what is signed, the checks and their order, the answers) is in
 * proto/pdm/v1/pdm.proto, ModelUpdate; files on disk in modelstore.h; signatures in
 * modelsig.h; the live swap in models/engine.h.
 *
 * Anti-rollback: per asset, the highest version ever accepted (and its SHA-256) is kept in
 * data_dir; an update must be newer than it and than the running model. The one exception is
 * the exact model recorded as the highest (same version and SHA-256) when the asset does not
 * run it (its file was damaged and the asset fell back): it may be sent again to reinstall it.
 *
 * At start (pdm_ota_select), per asset, before the engine is built: the accepted model
 * NAME.model replaces the configuration's model when it loads, has the same model id, is newer
 * than the configuration's and the asset has a sensor for each of its inputs; if it does not
 * load, NAME.model.prev (the one accepted before) is tried, then the configuration's file. Each
 * step is logged. Main loop only. */
#ifndef PDM_OTA_H
#define PDM_OTA_H

#include <stddef.h>
#include <stdint.h>

#include "command.h"
#include "config.h"
#include "../models/engine.h"

struct pdm_ota;

/* Reads the public keys of [agent] model_pubkey (none configured: updates are refused with
 * NO_VERIFY_KEY) and opens {data_dir}/models. 0 or -errno with the reason in err. */
int pdm_ota_open(struct pdm_ota **out, struct pdm_config *cfg, char *err, size_t errlen);
void pdm_ota_close(struct pdm_ota *o);

/* Chooses each asset's model at start (see above) and writes it into cfg->assets[i]. */
void pdm_ota_select(struct pdm_ota *o);

/* cmd/model. Returns the number of assets whose model was swapped (Status should go out). */
int pdm_ota_handle(struct pdm_ota *o, struct pdm_engine *e, const struct pdm_cmd *cmd,
                   struct pdm_cmd_result *res, int64_t now_mono_ms);

/* For each input of m, the sensor of asset a that feeds it (-1 for age) into sensor[]. Returns
 * 0, or -ENOENT with the inputs a cannot provide named in why. */
int pdm_ota_map_inputs(const struct pdm_asset_cfg *a, const struct pdm_model *m, int32_t *sensor,
                       char *why, size_t len);

#endif
