/* Reading training and evaluation data from CSV files (pdmctl train / eval; never the agent).
 *
 * A header row names the columns; rows follow, separated by LF or CRLF. A UTF-8 byte order
 * mark is skipped. Fields are separated by commas; a field in double quotes may hold commas,
 * line breaks and "" for a quote. Blank lines are skipped. Every problem is printed as
 * FILE:LINE: reason (at most PDM_CSV_MAX_PRINTED of them, then a count) and counted.
 *
 * Memory: the file is read whole (at most PDM_CSV_MAX_BYTES) and fields are cut in place, plus
 * one pointer per field and one int per row (about 1.5 MB for 10,000 rows of 14 columns);
 * a dataset takes 8 bytes per value used, all freed by the _free functions. */
#ifndef PDM_CSV_H
#define PDM_CSV_H

#include <stddef.h>
#include <stdio.h>

#define PDM_CSV_MAX_BYTES   (512u * 1024u * 1024u) /* refuse larger files */
#define PDM_CSV_MAX_CELLS   (64u * 1024u * 1024u)  /* fields, header included */
#define PDM_CSV_MAX_PRINTED 20                     /* errors printed before "and N more" */

/* Where problems go, and how many there were. */
struct pdm_csv_report {
    FILE *out; /* NULL: count only */
    int errors;
};

/* printf-like: "FILE:LINE: reason" (or "FILE: reason" for line <= 0). */
void pdm_csv_error(struct pdm_csv_report *r, const char *path, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Prints "... and N more" when errors were left out. */
void pdm_csv_report_end(struct pdm_csv_report *r, const char *path);

struct pdm_csv {
    const char *path;
    char *buf;
    char **cell; /* (n_rows + 1) * n_cols: the header row, then the data rows */
    size_t n_cols, n_rows;
    int *line; /* line where each data row starts */
};

/* Reads and splits path. A row with the wrong number of fields or junk after a closing quote
 * is reported, counted in r->errors and left out, and reading goes on (so one run lists every
 * problem: check r->errors). Returns 0 when there is a table, or -1 after reporting why there
 * is none (unreadable, too large, empty, an unterminated quote). Call pdm_csv_free() always. */
int pdm_csv_read(const char *path, struct pdm_csv *csv, struct pdm_csv_report *r);
void pdm_csv_free(struct pdm_csv *csv);

/* Index of the column called name, -1 if there is none, -2 if two columns have that name. */
int pdm_csv_column(const struct pdm_csv *csv, const char *name);
/* The field at data row r (0-based), column c. */
const char *pdm_csv_field(const struct pdm_csv *csv, size_t r, size_t c);

/* Numbers for a model: x[row * d + j] is column cols[j] of each data row, y[row] the label
 * (0 or 1). Missing or duplicate columns, empty or non-numeric values, labels other than 0/1
 * are reported with their line. */
struct pdm_dataset {
    size_t n, d;
    double *x;
    double *y;
    int *line;
};

/* Returns 0, or -1 after reporting every problem. label may be NULL (no y). Call
 * pdm_dataset_free() always. */
int pdm_dataset_from_csv(const struct pdm_csv *csv, const char *label, const char *const *cols,
                         size_t d, struct pdm_dataset *ds, struct pdm_csv_report *r);
void pdm_dataset_free(struct pdm_dataset *ds);

#endif
