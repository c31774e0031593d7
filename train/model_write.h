/* Writing a model file (format at the top of models/model.h), for pdmctl train and the tests.
 * Offline only: part of pdmtrain, not of the agent. */
#ifndef PDM_MODEL_WRITE_H
#define PDM_MODEL_WRITE_H

#include <stdio.h>

#include "models/model.h"

/* Writes m (and t, when not NULL) as a model file that pdm_model_load reads back bit for bit:
 * every number is printed with the fewest digits that round-trip. Returns 0 or -errno. */
int pdm_model_write(FILE *f, const struct pdm_model *m, const struct pdm_model_train *t,
                    const char *comment);

/* 1 if s can be written as a column or label value and read back unchanged (1..128 bytes, no
 * leading or trailing blank, no " ;" which starts a comment, no control character). */
int pdm_model_column_ok(const char *s);

#endif
