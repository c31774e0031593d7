/* Line-counting front end to libinih, shared by agent.conf and model files.
 *
 * Debian's libinih is built with INI_HANDLER_LINENO=0, so its handler never learns the line
 * number. We feed inih through ini_parse_stream() with our own reader, which counts lines and
 * screens each one before inih sees it: over-long lines (inih would split them into two),
 * indented lines (inih would glue them onto the previous value), lines that are neither a
 * section, a key nor a comment, and stray bytes are reported here and handed to inih as blank
 * lines. Section headers are tracked here too, so empty sections and long names are seen.
 *
 * The file is read into a pdm_ini_doc (sections in file order, keys in file order with their
 * lines); the callers validate from that, so a key may refer to a section further down.
 * Duplicate keys and duplicate section names are reported here; a duplicate section's keys are
 * dropped. Memory: a few hundred bytes per key, allocated while loading and freed with
 * pdm_ini_free(); nothing here is used after start-up. */
#ifndef PDM_INI_READER_H
#define PDM_INI_READER_H

#include <stddef.h>

#include "diag.h"

struct pdm_ini_entry {
    char *key;
    char *value;
    int line;
};

struct pdm_ini_section {
    char *name;      /* "bus plant": kind and argument joined by one space (as diag prints it) */
    char *kind;      /* "bus" */
    const char *arg; /* "plant" (points into name), or "" */
    int line;        /* line of the [header] */
    struct pdm_ini_entry *entries;
    size_t n_entries, cap_entries;
};

struct pdm_ini_doc {
    const char *path; /* as given; used in every message */
    struct pdm_diag *diag;
    struct pdm_ini_section *sections;
    size_t n_sections, cap_sections;
};

/* Reads path into doc (zeroed first). Problems in the text are reported to diag and reading goes
 * on. Returns 0, -errno when the file cannot be read (nothing is reported: the caller knows the
 * context), or -ENOMEM. Call pdm_ini_free() in every case. */
int pdm_ini_load(const char *path, struct pdm_ini_doc *doc, struct pdm_diag *diag);
void pdm_ini_free(struct pdm_ini_doc *doc);

/* The entry for key in s, or NULL. */
const struct pdm_ini_entry *pdm_ini_get(const struct pdm_ini_section *s, const char *key);

/* Reports "FILE:LINE: section.key: reason" for doc's file; s and key may be NULL. */
void pdm_ini_error(const struct pdm_ini_doc *doc, int line, const struct pdm_ini_section *s,
                   const char *key, const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Strict value parsers: the whole value must be the number, with no junk and no overflow.
 * On failure they report "expected ..., got 'VALUE'" at the entry and return -EINVAL. */
int pdm_ini_int(const struct pdm_ini_doc *doc, const struct pdm_ini_section *s,
                const struct pdm_ini_entry *e, long long min, long long max, long long *out);
/* A finite number. */
int pdm_ini_double(const struct pdm_ini_doc *doc, const struct pdm_ini_section *s,
                   const struct pdm_ini_entry *e, double *out);
/* A finite number in [min, max]. */
int pdm_ini_double_range(const struct pdm_ini_doc *doc, const struct pdm_ini_section *s,
                         const struct pdm_ini_entry *e, double min, double max, double *out);

/* The closest of known[0..n) to word if it is a plausible typo of it, else NULL. */
const char *pdm_ini_suggest(const char *word, const char *const *known, size_t n);

/* Reports "unknown key 'k'" with a "did you mean" hint taken from known[0..n). */
void pdm_ini_unknown_key(const struct pdm_ini_doc *doc, const struct pdm_ini_section *s,
                         const struct pdm_ini_entry *e, const char *const *known, size_t n);

/* 1 if s matches [A-Za-z0-9_.-]{1,max} (dot allowed only when allow_dot). */
int pdm_ini_is_name(const char *s, size_t max, int allow_dot);

#endif
