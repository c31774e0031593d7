/* What pdmctl train and pdmctl eval share: the NAME=COLUMN items of --inputs, and reading a
 * CSV into rows of a model's inputs. */
#ifndef PDMCTL_MODELDATA_H
#define PDMCTL_MODELDATA_H

#include <stddef.h>

#include "models/model.h"

struct input_map {
    char name[PDM_MODEL_NAME_MAX + 1];
    char column[PDM_MODEL_COLUMN_MAX + 1];
};

/* Adds the items of list ("NAME=COLUMN" or "COLUMN", separated by commas) to maps[*n..max).
 * A bare COLUMN must itself be a valid input name. Prints the reason prefixed with cmd and
 * returns -1 on a bad item. */
int parse_input_list(const char *cmd, const char *list, struct input_map *maps, int *n, int max);
/* One item, the whole string ("NAME=COLUMN", where COLUMN may hold commas). */
int parse_input_item(const char *cmd, const char *item, struct input_map *out);

/* Reads csv_path: rows of m's width (base input k from column col[k], derived slots 0), the
 * label column (0/1) and each row's line. Problems are printed as FILE:LINE: reason. Returns
 * 0 or -1; the caller frees *x, *y and *line in every case. */
int load_model_rows(const char *csv_path, const char *label, const struct pdm_model *m,
                    char col[][PDM_MODEL_COLUMN_MAX + 1], double **x, double **y, int **line,
                    size_t *n);

#endif
