/* Per-asset baselines in the running agent: learning them, storing them, applying them.
 *
 * `pdmctl baseline ASSET` (control socket) or the backend's `cmd/baseline` starts learning: for
 * the given seconds, every evaluation of the asset adds each windowed input's window statistic
 * (the value the model scores) to a running mean and variance. At the end the baseline
 * (center = mean, scale = max(sd, PDM_BASELINE_FLOOR * the file's scale), model.h) is written to
 * {data_dir}/baselines/ASSET.baseline (temp + fsync + rename) and, when the model says
 * `baseline = asset`, applied at once; at start-up a stored baseline is applied to a model with
 * `baseline = asset` if it matches the model's id and windowed inputs, else the fleet constants
 * stay, and the log says which.
 *
 * Applying a baseline rewrites center/scale in the asset's model (pdm_model_apply_baseline):
 * scoring stays pdm_model_score on that model, nothing changes in the hot path.
 *
 * Memory: n_assets * ~1.6 KB at open (the stored baseline per asset); while an asset learns,
 * 24 bytes per model input (allocated when learning starts, freed when it ends). Learning one
 * evaluation is arithmetic only. */
#ifndef PDM_BASELINE_H
#define PDM_BASELINE_H

#include <stddef.h>
#include <stdint.h>

#include "../models/engine.h"
#include "../models/model.h"
#include "command.h"

struct pdm_config;
struct pdm_baselines;

#define PDM_BASELINE_MIN_S   1.0      /* learning duration bounds, seconds */
#define PDM_BASELINE_MAX_S   604800.0 /* one week */
#define PDM_BASELINE_MIN_N   3        /* evaluations needed for a usable mean and sd */
#define PDM_BASELINE_REQ_MAX 129      /* request_id bytes kept for the finishing message */

/* Loads the stored baselines and applies those that the models ask for and match. Returns 0 or
 * -errno with a reason in err (cannot create the folder, out of memory). */
int pdm_baselines_open(struct pdm_baselines **out, struct pdm_config *cfg, char *err,
                       size_t errlen);
void pdm_baselines_close(struct pdm_baselines *b);

/* Starts learning. Refuses (returns the reason code, text in res) on an unknown asset, a
 * duration out of range, learning already running for it, an open alert (unless force), or a
 * windowed input without data. request_id ("" from pdmctl) is echoed when it finishes. */
enum pdm_cmd_reason pdm_baselines_start(struct pdm_baselines *b, const struct pdm_engine *e,
                                        const char *asset, double seconds, int force,
                                        const char *request_id, int from_backend,
                                        int64_t now_mono_ms, char *text, size_t textlen);

/* One evaluation (from the engine's callback): adds it to a running learning. No allocation. */
void pdm_baselines_on_eval(struct pdm_baselines *b, const struct pdm_eval *ev);

/* What finished learning reports (pdm_baselines_tick). */
struct pdm_baseline_done {
    uint32_t asset;
    int ok;
    int from_backend;
    char request_id[PDM_BASELINE_REQ_MAX];
    char text[PDM_CMD_TEXT_MAX];
};

/* Finishes a learning whose time is up (stores, applies); returns 1 and fills done when one
 * finished (call again: there may be another), else 0. */
int pdm_baselines_tick(struct pdm_baselines *b, struct pdm_engine *e, int64_t now_mono_ms,
                       struct pdm_baseline_done *done);

/* After model updates: for every asset whose model was replaced (its sha256 changed), ends a
 * learning in progress (its inputs may be gone) and applies the stored baseline again if the
 * new model asks for it and it matches, with the same log line as at start. */
void pdm_baselines_sync(struct pdm_baselines *b);

/* The asset's baseline state as "key value" lines, for `pdmctl baseline` (control socket).
 * Returns 0, or -ENOENT for an unknown asset. */
int pdm_baselines_describe(const struct pdm_baselines *b, const char *asset, int64_t now_mono_ms,
                           char *out, size_t cap);

/* Storing and loading one baseline file (also for tests). 0 or -errno (err says why). */
int pdm_baseline_save(const char *path, const char *asset, const struct pdm_baseline *bl, char *err,
                      size_t errlen);
int pdm_baseline_load(const char *path, struct pdm_baseline *bl, char *err, size_t errlen);

#endif
