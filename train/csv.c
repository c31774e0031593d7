/* CSV for pdmctl train / eval (format and memory in csv.h). */
#include "csv.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

void pdm_csv_error(struct pdm_csv_report *r, const char *path, int line, const char *fmt, ...)
{
    r->errors++;
    if (!r->out || r->errors > PDM_CSV_MAX_PRINTED)
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (line > 0)
        fprintf(r->out, "%s:%d: %s\n", path, line, msg);
    else
        fprintf(r->out, "%s: %s\n", path, msg);
}

void pdm_csv_report_end(struct pdm_csv_report *r, const char *path)
{
    if (r->out && r->errors > PDM_CSV_MAX_PRINTED)
        fprintf(r->out, "%s: ... and %d more problems\n", path, r->errors - PDM_CSV_MAX_PRINTED);
}

/* The whole file, NUL-terminated, or NULL after reporting why. */
static char *slurp(const char *path, size_t *len, struct pdm_csv_report *r)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        pdm_csv_error(r, path, 0, "cannot open: %s", strerror(errno));
        return NULL;
    }
    struct stat sb;
    if (fstat(fileno(f), &sb) == 0 && S_ISREG(sb.st_mode) &&
        (uint64_t)sb.st_size > PDM_CSV_MAX_BYTES) {
        pdm_csv_error(r, path, 0, "the file has %lld bytes; at most %u are read",
                      (long long)sb.st_size, PDM_CSV_MAX_BYTES);
        fclose(f);
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (n + 1 == cap) {
            if (cap > PDM_CSV_MAX_BYTES) {
                pdm_csv_error(r, path, 0, "more than %u bytes; not read", PDM_CSV_MAX_BYTES);
                free(buf);
                buf = NULL;
                break;
            }
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - 1 - n, f);
        n += got;
        if (got == 0) {
            if (ferror(f)) {
                pdm_csv_error(r, path, 0, "read error: %s", strerror(errno));
                free(buf);
                buf = NULL;
            }
            break;
        }
    }
    if (!buf && r->errors == 0)
        pdm_csv_error(r, path, 0, "out of memory reading the file");
    fclose(f);
    if (buf)
        buf[n] = '\0';
    *len = n;
    return buf;
}

static int push_cell(struct pdm_csv *csv, size_t *n_cells, size_t *cap, char *cell)
{
    if (*n_cells == *cap) {
        if (*cap >= PDM_CSV_MAX_CELLS)
            return -E2BIG;
        size_t nc = *cap ? *cap * 2 : 1024;
        char **c = realloc(csv->cell, nc * sizeof(*c));
        if (!c)
            return -ENOMEM;
        csv->cell = c;
        *cap = nc;
    }
    csv->cell[(*n_cells)++] = cell;
    return 0;
}

static int push_line(struct pdm_csv *csv, size_t *cap, int line)
{
    if (csv->n_rows == *cap) {
        size_t nc = *cap ? *cap * 2 : 1024;
        int *l = realloc(csv->line, nc * sizeof(*l));
        if (!l)
            return -ENOMEM;
        csv->line = l;
        *cap = nc;
    }
    csv->line[csv->n_rows++] = line;
    return 0;
}

static int is_eol(const char *p, const char *end)
{
    return *p == '\n' || (*p == '\r' && (p + 1 == end || p[1] == '\n'));
}

/* Header names without surrounding blanks: "Torque [Nm] " is "Torque [Nm]". */
static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = '\0';
    return s;
}

int pdm_csv_read(const char *path, struct pdm_csv *csv, struct pdm_csv_report *r)
{
    memset(csv, 0, sizeof(*csv));
    csv->path = path;
    int before = r->errors;
    size_t len;
    csv->buf = slurp(path, &len, r);
    if (!csv->buf)
        return -1;

    char *p = csv->buf, *end = csv->buf + len;
    if (len >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0)
        p += 3; /* UTF-8 byte order mark */
    int line = 1, have_header = 0;
    size_t n_cells = 0, cap_cells = 0, cap_lines = 0;
    int rc = 0;

    while (p < end && rc == 0) {
        if (*p == '\n' || (*p == '\r' && p + 1 < end && p[1] == '\n')) {
            p += *p == '\r' ? 2 : 1; /* blank line */
            line++;
            continue;
        }
        int rec_line = line, bad = 0;
        size_t first = n_cells;
        for (;;) {
            char *start = p, *w = p;
            if (*p == '"') {
                int closed = 0;
                start = w = ++p;
                while (p < end) {
                    if (*p == '"') {
                        if (p + 1 < end && p[1] == '"') {
                            *w++ = '"';
                            p += 2;
                            continue;
                        }
                        p++;
                        closed = 1;
                        break;
                    }
                    if (*p == '\n')
                        line++;
                    *w++ = *p++;
                }
                if (!closed) {
                    pdm_csv_error(r, path, rec_line, "a quoted field is not closed");
                    rc = -1;
                    break;
                }
                if (p < end && *p != ',' && !is_eol(p, end)) {
                    if (!bad)
                        pdm_csv_error(r, path, line,
                                      "unexpected '%c' after the closing quote of field %zu", *p,
                                      n_cells - first + 1);
                    bad = 1;
                    while (p < end && *p != ',' && !is_eol(p, end))
                        p++;
                }
            } else {
                while (p < end && *p != ',' && !is_eol(p, end))
                    p++;
                w = p;
            }
            char sep = p < end ? *p : '\0';
            int prc = push_cell(csv, &n_cells, &cap_cells, start);
            if (prc < 0) {
                pdm_csv_error(r, path, rec_line,
                              prc == -E2BIG ? "too many fields (at most %u in a file)"
                                            : "out of memory (%u fields)",
                              PDM_CSV_MAX_CELLS);
                rc = -1;
                break;
            }
            *w = '\0';
            if (sep == ',') {
                p++;
                continue;
            }
            if (sep == '\r')
                p += p + 1 < end ? 2 : 1;
            else if (sep == '\n')
                p++;
            if (sep)
                line++;
            break;
        }
        if (rc != 0)
            break;
        size_t nf = n_cells - first;
        if (!have_header) {
            csv->n_cols = nf;
            have_header = 1;
            for (size_t c = 0; c < nf; c++)
                csv->cell[c] = trim(csv->cell[c]);
            continue;
        }
        if (nf != csv->n_cols && !bad) {
            pdm_csv_error(r, path, rec_line, "%zu fields, but the header has %zu", nf, csv->n_cols);
            bad = 1;
        }
        if (bad) {
            n_cells = first; /* the row is dropped; the error is counted */
            continue;
        }
        if (push_line(csv, &cap_lines, rec_line) < 0) {
            pdm_csv_error(r, path, rec_line, "out of memory");
            rc = -1;
        }
    }
    if (rc == 0 && !have_header) {
        pdm_csv_error(r, path, 0, "empty file: expected a header row naming the columns");
        rc = -1;
    } else if (rc == 0 && csv->n_rows == 0 && r->errors == before) {
        pdm_csv_error(r, path, 0, "no data rows after the header");
        rc = -1;
    }
    return rc;
}

void pdm_csv_free(struct pdm_csv *csv)
{
    free(csv->buf);
    free(csv->cell);
    free(csv->line);
    memset(csv, 0, sizeof(*csv));
}

int pdm_csv_column(const struct pdm_csv *csv, const char *name)
{
    int found = -1;
    for (size_t c = 0; c < csv->n_cols; c++) {
        if (strcmp(csv->cell[c], name) == 0) {
            if (found >= 0)
                return -2;
            found = (int)c;
        }
    }
    return found;
}

const char *pdm_csv_field(const struct pdm_csv *csv, size_t r, size_t c)
{
    return csv->cell[(r + 1) * csv->n_cols + c];
}

static int is_blank_field(const char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    return *s == '\0';
}

/* A finite number filling the whole field (blanks around it allowed). */
static int parse_number(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno == ERANGE || !isfinite(v))
        return -EINVAL;
    while (*end == ' ' || *end == '\t')
        end++;
    if (*end)
        return -EINVAL;
    *out = v;
    return 0;
}

static int find_column(const struct pdm_csv *csv, const char *name, struct pdm_csv_report *r)
{
    int c = pdm_csv_column(csv, name);
    if (c == -2) {
        pdm_csv_error(r, csv->path, 1, "two columns are called '%s'", name);
    } else if (c < 0) {
        char list[600];
        size_t len = 0;
        list[0] = '\0';
        for (size_t k = 0; k < csv->n_cols && len < sizeof(list); k++)
            len += (size_t)snprintf(list + len, sizeof(list) - len, "%s'%s'", k ? ", " : "",
                                    csv->cell[k]);
        pdm_csv_error(r, csv->path, 1, "no column '%s' in the header (columns: %s)", name, list);
    }
    return c;
}

int pdm_dataset_from_csv(const struct pdm_csv *csv, const char *label, const char *const *cols,
                         size_t d, struct pdm_dataset *ds, struct pdm_csv_report *r)
{
    memset(ds, 0, sizeof(*ds));
    int before = r->errors;
    int idx[64];
    if (d > sizeof(idx) / sizeof(idx[0])) {
        pdm_csv_error(r, csv->path, 0, "too many columns asked for (%zu)", d);
        return -1;
    }
    for (size_t j = 0; j < d; j++)
        idx[j] = find_column(csv, cols[j], r);
    int lab = label ? find_column(csv, label, r) : -1;
    if (r->errors != before)
        return -1;

    size_t n = csv->n_rows;
    ds->n = n;
    ds->d = d;
    ds->x = calloc(n * (d ? d : 1), sizeof(double));
    ds->y = calloc(n, sizeof(double));
    ds->line = calloc(n, sizeof(int));
    if (!ds->x || !ds->y || !ds->line) {
        pdm_csv_error(r, csv->path, 0, "out of memory for %zu rows", n);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        int line = csv->line[i];
        ds->line[i] = line;
        for (size_t j = 0; j < d; j++) {
            const char *f = pdm_csv_field(csv, i, (size_t)idx[j]);
            if (parse_number(f, &ds->x[i * d + j]) < 0) {
                if (is_blank_field(f))
                    pdm_csv_error(r, csv->path, line, "column '%s' is empty", cols[j]);
                else
                    pdm_csv_error(r, csv->path, line, "column '%s': '%s' is not a number", cols[j],
                                  f);
            }
        }
        if (label) {
            const char *f = pdm_csv_field(csv, i, (size_t)lab);
            double y;
            if (parse_number(f, &y) < 0 || !(y == 0.0 || y == 1.0))
                pdm_csv_error(r, csv->path, line, "label column '%s' must be 0 or 1, got '%s'",
                              label, f);
            else
                ds->y[i] = y;
        }
    }
    return r->errors == before ? 0 : -1;
}

void pdm_dataset_free(struct pdm_dataset *ds)
{
    free(ds->x);
    free(ds->y);
    free(ds->line);
    memset(ds, 0, sizeof(*ds));
}
