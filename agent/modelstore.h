/* Accepted model updates on disk, in {data_dir}/models/ (agent/ota.c decides what is
 * accepted; this module only keeps it durably). Per asset NAME:
 *
 *   NAME.model       the accepted model the asset runs (the update's bytes, as signed)
 *   NAME.model.prev  the model accepted before it: the fallback when NAME.model does not load
 *   NAME.highest     "VERSION SHA256\n", the highest version ever accepted for the asset
 *                    (anti-rollback); a file of its own, so that a damaged or removed model
 *                    file cannot reopen a rollback
 *
 * Every write is durable before it counts: a temporary file, fsync, rename over the old name,
 * fsync of the folder. A power cut leaves the old or the new content under each name, and the
 * order of the renames (model first, highest last) means a crash in between leaves a model
 * whose version is above the recorded highest: ota.c takes the larger of the two at start. */
#ifndef PDM_MODELSTORE_H
#define PDM_MODELSTORE_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

enum pdm_ms_file { PDM_MS_CURRENT, PDM_MS_PREV, PDM_MS_HIGHEST, PDM_MS_SCRATCH };

struct pdm_modelstore {
    char dir[PDM_PATH_MAX]; /* {data_dir}/models */
};

/* Creates the folder (0750) if needed. 0 or -errno with the reason in err. */
int pdm_modelstore_open(struct pdm_modelstore *ms, const char *data_dir, char *err, size_t errlen);
/* The file's path for asset (PDM_MS_SCRATCH: the one scratch file, asset ignored). */
int pdm_modelstore_path(const struct pdm_modelstore *ms, const char *asset, enum pdm_ms_file f,
                        char *out, size_t len);
/* Writes buf to path durably: path.tmp, fsync, rename, fsync of the folder. 0 or -errno. */
int pdm_write_durable(const char *path, const void *buf, size_t len);
/* Writes buf to the scratch file (no fsync: it is read back at once and never trusted after a
 * restart), for the model loader to validate an update. 0 or -errno. */
int pdm_modelstore_scratch(const struct pdm_modelstore *ms, const void *buf, size_t len);
/* The recorded highest accepted version: 0, -ENOENT (none yet), -EBADMSG (damaged). */
int pdm_modelstore_read_highest(const struct pdm_modelstore *ms, const char *asset,
                                uint32_t *version, char sha[65]);
/* Installs an accepted model for asset: with rotate, a copy of the current NAME.model becomes
 * NAME.model.prev; the new bytes become NAME.model and (version, sha) NAME.highest. Durable
 * when it returns 0; on failure -errno with the reason in err, and NAME.model is either the
 * old or the new file: *installed says which (1: the new one, e.g. NAME.highest or the folder
 * sync failed after it; the next start then runs it, see ota.c). */
int pdm_modelstore_install(const struct pdm_modelstore *ms, const char *asset, const void *model,
                           size_t len, uint32_t version, const char *sha, int rotate,
                           int *installed, char *err, size_t errlen);

#endif
