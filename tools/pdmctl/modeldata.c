/* Shared by pdmctl train and eval (see modeldata.h). */
#include "modeldata.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train/csv.h"
#include "train/fit.h"
#include "train/model_write.h"

int parse_input_item(const char *cmd, const char *item, struct input_map *out)
{
    const char *eq = strchr(item, '=');
    const char *col = eq ? eq + 1 : item;
    size_t name_len = eq ? (size_t)(eq - item) : strlen(item);
    if (!*col) {
        fprintf(stderr, "%s: '%s': no column name after '='\n", cmd, item);
        return -1;
    }
    if (name_len > PDM_MODEL_NAME_MAX) {
        fprintf(stderr, "%s: '%.*s': an input name has at most %d characters\n", cmd, (int)name_len,
                item, PDM_MODEL_NAME_MAX);
        return -1;
    }
    memcpy(out->name, item, name_len);
    out->name[name_len] = '\0';
    if (!pdm_model_name_ok(out->name)) {
        char hint[PDM_MODEL_NAME_MAX + 1];
        pdm_model_name_suggest(col, hint);
        if (eq)
            fprintf(stderr,
                    "%s: '%s': input name '%s' must be a lower-case letter followed by up to 31 "
                    "of a-z 0-9 _\n",
                    cmd, item, out->name);
        else
            fprintf(stderr,
                    "%s: column '%s' is not a valid input name ([a-z][a-z0-9_]{0,31}): name it, "
                    "e.g. %s=%s\n",
                    cmd, item, hint, item);
        return -1;
    }
    if (!pdm_model_column_ok(col)) {
        fprintf(stderr,
                "%s: column '%s' cannot be recorded in a model file (1 to %d bytes, no blank at "
                "either end, no ' ;')\n",
                cmd, col, PDM_MODEL_COLUMN_MAX);
        return -1;
    }
    snprintf(out->column, sizeof(out->column), "%s", col);
    return 0;
}

int parse_input_list(const char *cmd, const char *list, struct input_map *maps, int *n, int max)
{
    const char *p = list;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char item[PDM_MODEL_NAME_MAX + PDM_MODEL_COLUMN_MAX + 8];
        if (len == 0) {
            fprintf(stderr, "%s: empty item in '%s'\n", cmd, list);
            return -1;
        }
        if (len >= sizeof(item)) {
            fprintf(stderr, "%s: item '%.*s' is too long\n", cmd, (int)len, p);
            return -1;
        }
        if (*n >= max) {
            fprintf(stderr, "%s: too many inputs: a model has at most %d\n", cmd, max);
            return -1;
        }
        memcpy(item, p, len);
        item[len] = '\0';
        if (parse_input_item(cmd, item, &maps[*n]) < 0)
            return -1;
        for (int k = 0; k < *n; k++) {
            if (strcmp(maps[k].name, maps[*n].name) == 0) {
                fprintf(stderr, "%s: input '%s' is given twice\n", cmd, maps[k].name);
                return -1;
            }
        }
        (*n)++;
        if (!comma)
            return 0;
        p = comma + 1;
    }
}

int load_model_rows(const char *csv_path, const char *label, const struct pdm_model *m,
                    char col[][PDM_MODEL_COLUMN_MAX + 1], double **x, double **y, int **line,
                    size_t *n)
{
    struct pdm_csv_report rep = {.out = stderr};
    struct pdm_csv csv;
    struct pdm_dataset ds;
    const char *cols[PDM_MODEL_MAX_INPUTS];
    size_t d = 0;
    int rc = -1;

    *x = *y = NULL;
    *line = NULL;
    *n = 0;
    memset(&ds, 0, sizeof(ds));
    for (uint32_t k = 0; k < m->n_inputs; k++)
        if (m->inputs[k].derive == PDM_DERIVE_NONE)
            cols[d++] = col[k];
    /* the rows' values are checked even after a bad row, so one run lists every problem */
    if (pdm_csv_read(csv_path, &csv, &rep) == 0 &&
        pdm_dataset_from_csv(&csv, label, cols, d, &ds, &rep) == 0 && rep.errors == 0) {
        *x = pdm_model_rows(m, ds.x, ds.n, d);
        if (!*x) {
            fprintf(stderr, "%s: out of memory for %zu rows\n", csv_path, ds.n);
        } else {
            *y = ds.y;
            *line = ds.line;
            ds.y = NULL;
            ds.line = NULL;
            *n = ds.n;
            rc = 0;
        }
    }
    pdm_csv_report_end(&rep, csv_path);
    pdm_dataset_free(&ds);
    pdm_csv_free(&csv);
    return rc;
}
