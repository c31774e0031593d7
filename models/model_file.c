/* Reading a model file (format at the top of model.h) into a struct pdm_model.
 *
 * Runs at start-up only: the file is read into a pdm_ini_doc (a few KB, freed before return)
 * and every value is checked, so one run lists every problem as FILE:LINE: section.key. */
#include "model.h"

#include <mbedtls/sha256.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#include "lib/ini_reader.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

static const char *const section_kinds[] = {"model", "input", "train"};
/* the first N_REQUIRED_MODEL_KEYS are required; baseline is optional (default fleet) */
static const char *const model_keys[] = {"id",      "version",        "intercept",
                                         "warning", "critical",       "clear",
                                         "hold",    "eval_period_ms", "baseline"};
#define N_REQUIRED_MODEL_KEYS 8
static const char *const input_keys[] = {"stat",   "window_s", "center", "scale",
                                         "weight", "derive",   "column"};
static const char *const train_keys[] = {"label", "l2",        "class_weight", "thresholds",
                                         "rows",  "positives", "iterations"};

static int stat_parse(const char *s, enum pdm_stat *out)
{
    static const struct {
        const char *name;
        enum pdm_stat stat;
    } names[] = {{"mean", PDM_STAT_MEAN}, {"rms", PDM_STAT_RMS}, {"max", PDM_STAT_MAX}};
    for (size_t i = 0; i < N_ELEMS(names); i++) {
        if (strcmp(s, names[i].name) == 0) {
            *out = names[i].stat;
            return 0;
        }
    }
    return -EINVAL;
}

static void missing(const struct pdm_ini_doc *doc, const struct pdm_ini_section *s, const char *key)
{
    pdm_ini_error(doc, s->line, s, key, "required key is missing");
}

/* A probability threshold: strictly between 0 and 1. */
static int threshold(const struct pdm_ini_doc *doc, const struct pdm_ini_section *s,
                     const struct pdm_ini_entry *e, double *out)
{
    double x;
    if (pdm_ini_double(doc, s, e, &x) < 0)
        return -EINVAL;
    if (!(x > 0.0 && x < 1.0)) {
        pdm_ini_error(doc, e->line, s, e->key,
                      "expected a probability between 0 and 1 (both excluded), got '%s'", e->value);
        return -EINVAL;
    }
    *out = x;
    return 0;
}

static void load_model_section(const struct pdm_ini_doc *doc, const struct pdm_ini_section *s,
                               struct pdm_model *m)
{
    int w_ok = 0, c_ok = 0, cl_ok = 0;
    long long v;
    for (size_t i = 0; i < s->n_entries; i++) {
        const struct pdm_ini_entry *e = &s->entries[i];
        const char *k = e->key;
        if (strcmp(k, "id") == 0) {
            if (pdm_ini_is_name(e->value, sizeof(m->id) - 1, 1))
                strcpy(m->id, e->value);
            else
                pdm_ini_error(doc, e->line, s, k,
                              "expected 1 to 64 characters from A-Z a-z 0-9 _ . -, got '%s'",
                              e->value);
        } else if (strcmp(k, "version") == 0) {
            if (pdm_ini_int(doc, s, e, 1, UINT32_MAX, &v) == 0)
                m->version = (uint32_t)v;
        } else if (strcmp(k, "intercept") == 0) {
            pdm_ini_double(doc, s, e, &m->intercept);
        } else if (strcmp(k, "warning") == 0) {
            w_ok = threshold(doc, s, e, &m->warning) == 0;
        } else if (strcmp(k, "critical") == 0) {
            c_ok = threshold(doc, s, e, &m->critical) == 0;
        } else if (strcmp(k, "clear") == 0) {
            cl_ok = threshold(doc, s, e, &m->clear) == 0;
        } else if (strcmp(k, "hold") == 0) {
            if (pdm_ini_int(doc, s, e, 1, 1000, &v) == 0)
                m->hold = (int)v;
        } else if (strcmp(k, "eval_period_ms") == 0) {
            if (pdm_ini_int(doc, s, e, 100, 3600000, &v) == 0)
                m->eval_period_ms = (int)v;
        } else if (strcmp(k, "baseline") == 0) {
            if (strcmp(e->value, "asset") == 0)
                m->baseline_asset = 1;
            else if (strcmp(e->value, "fleet") == 0)
                m->baseline_asset = 0;
            else
                pdm_ini_error(doc, e->line, s, k, "expected fleet or asset, got '%s'", e->value);
        } else {
            pdm_ini_unknown_key(doc, s, e, model_keys, N_ELEMS(model_keys));
        }
    }
    for (size_t i = 0; i < N_REQUIRED_MODEL_KEYS; i++)
        if (!pdm_ini_get(s, model_keys[i]))
            missing(doc, s, model_keys[i]);

    /* 0 < clear < warning <= critical < 1: an alert raised at warning must be able to end
     * below it (hysteresis), and critical is the stronger level */
    if (w_ok && cl_ok && !(m->clear < m->warning)) {
        const struct pdm_ini_entry *e = pdm_ini_get(s, "clear");
        pdm_ini_error(doc, e->line, s, e->key,
                      "clear (%g) must be below warning (%g), or an alert could never end",
                      m->clear, m->warning);
    }
    if (w_ok && c_ok && !(m->warning <= m->critical)) {
        const struct pdm_ini_entry *e = pdm_ini_get(s, "critical");
        pdm_ini_error(doc, e->line, s, e->key, "critical (%g) must not be below warning (%g)",
                      m->critical, m->warning);
    }
}

/* [a-z][a-z0-9_]{0,31} */
static int is_input_name(const char *s)
{
    if (!(*s >= 'a' && *s <= 'z'))
        return 0;
    size_t n = 1;
    for (; s[n]; n++) {
        char c = s[n];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
            return 0;
    }
    return n <= PDM_MODEL_NAME_MAX;
}

/* Loading state kept across sections: derive expressions are resolved once every input is
 * known, so an input may name one declared further down. */
struct load_ctx {
    const struct pdm_ini_doc *doc;
    struct pdm_model *m;
    struct pdm_model_train *t; /* NULL: checked, not kept */
    const struct pdm_ini_section *sec[PDM_MODEL_MAX_INPUTS];
    const struct pdm_ini_entry *derive[PDM_MODEL_MAX_INPUTS];
};

static void load_input_section(struct load_ctx *c, const struct pdm_ini_section *s)
{
    const struct pdm_ini_doc *doc = c->doc;
    struct pdm_model *m = c->m;
    if (!*s->arg) {
        pdm_ini_error(doc, s->line, s, NULL, "needs a name: [input NAME]");
        return;
    }
    if (!is_input_name(s->arg)) {
        pdm_ini_error(doc, s->line, s, NULL,
                      "input name must be a lower-case letter followed by up to 31 of a-z 0-9 _");
        return;
    }
    if (m->n_inputs == PDM_MODEL_MAX_INPUTS) {
        pdm_ini_error(doc, s->line, s, NULL, "too many inputs: a model has at most %d",
                      PDM_MODEL_MAX_INPUTS);
        return;
    }
    uint32_t idx = m->n_inputs++;
    struct pdm_model_input *in = &m->inputs[idx];
    strcpy(in->name, s->arg);
    in->is_age = strcmp(s->arg, "age") == 0;
    in->stat = PDM_STAT_MEAN;
    in->line = s->line;
    c->sec[idx] = s;
    const struct pdm_ini_entry *derive = pdm_ini_get(s, "derive");
    if (derive && in->is_age) {
        pdm_ini_error(doc, derive->line, s, "derive",
                      "'age' is the asset's age in years; it cannot be derived");
        derive = NULL;
    }
    c->derive[idx] = derive;
    if (derive)
        in->derive = PDM_DERIVE_PRODUCT; /* placeholder until resolve_derived() parses it */

    for (size_t i = 0; i < s->n_entries; i++) {
        const struct pdm_ini_entry *e = &s->entries[i];
        const char *k = e->key;
        if (derive &&
            (strcmp(k, "stat") == 0 || strcmp(k, "window_s") == 0 || strcmp(k, "column") == 0)) {
            pdm_ini_error(doc, e->line, s, k,
                          "a derived input has no %s of its own: it is computed from the inputs "
                          "it names, which have theirs",
                          strcmp(k, "column") == 0 ? "CSV column" : "sensor window");
        } else if (strcmp(k, "stat") == 0) {
            if (stat_parse(e->value, &in->stat) < 0)
                pdm_ini_error(doc, e->line, s, k, "expected mean, rms or max, got '%s'", e->value);
        } else if (strcmp(k, "window_s") == 0) {
            pdm_ini_double_range(doc, s, e, 1, 86400, &in->window_s);
        } else if (strcmp(k, "center") == 0) {
            pdm_ini_double(doc, s, e, &in->center);
        } else if (strcmp(k, "weight") == 0) {
            pdm_ini_double(doc, s, e, &in->weight);
        } else if (strcmp(k, "scale") == 0) {
            if (pdm_ini_double(doc, s, e, &in->scale) == 0 && !(in->scale > 0))
                pdm_ini_error(doc, e->line, s, k, "expected a number greater than 0, got '%s'",
                              e->value);
        } else if (strcmp(k, "derive") == 0) {
            /* parsed by resolve_derived() */
        } else if (strcmp(k, "column") == 0) {
            if (!*e->value || strlen(e->value) > PDM_MODEL_COLUMN_MAX)
                pdm_ini_error(doc, e->line, s, k, "expected a CSV column name of 1 to %d bytes",
                              PDM_MODEL_COLUMN_MAX);
            else if (c->t)
                strcpy(c->t->column[idx], e->value);
        } else {
            pdm_ini_unknown_key(doc, s, e, input_keys, N_ELEMS(input_keys));
        }
    }
    /* age is the asset's age in years, not a sensor statistic, and a derived input combines the
     * statistics of others: neither needs stat and window_s */
    for (size_t i = (in->is_age || derive) ? 2 : 0; i < 5; i++)
        if (!pdm_ini_get(s, input_keys[i]))
            missing(doc, s, input_keys[i]);
}

/* Parses every derive expression now that all inputs are known, then orders them. */
static void resolve_derived(struct load_ctx *c)
{
    struct pdm_model *m = c->m;
    int ok = 1;
    char err[512];
    for (uint32_t i = 0; i < m->n_inputs; i++) {
        const struct pdm_ini_entry *e = c->derive[i];
        if (!e)
            continue;
        struct pdm_model_input *in = &m->inputs[i];
        if (pdm_model_parse_derive(m, e->value, &in->derive, in->arg, err, sizeof(err)) < 0) {
            pdm_ini_error(c->doc, e->line, c->sec[i], e->key, "%s", err);
            /* linked as a base input, so the others are still checked for cycles */
            in->derive = PDM_DERIVE_NONE;
            ok = 0;
        }
    }
    int bad = -1;
    if (pdm_model_link(m, &bad, err, sizeof(err)) < 0 && bad >= 0 && (uint32_t)bad < m->n_inputs) {
        const struct pdm_ini_entry *e = c->derive[bad];
        pdm_ini_error(c->doc, e ? e->line : m->inputs[bad].line, c->sec[bad], "derive", "%s", err);
    }
    if (!ok)
        m->n_derived = 0; /* the load failed; score nothing derived from half a model */
}

static void load_train_section(struct load_ctx *c, const struct pdm_ini_section *s)
{
    const struct pdm_ini_doc *doc = c->doc;
    struct pdm_model_train scratch, *t = c->t ? c->t : &scratch;
    long long v;
    t->present = 1;
    for (size_t i = 0; i < s->n_entries; i++) {
        const struct pdm_ini_entry *e = &s->entries[i];
        const char *k = e->key;
        if (strcmp(k, "label") == 0) {
            if (!*e->value || strlen(e->value) > PDM_MODEL_COLUMN_MAX)
                pdm_ini_error(doc, e->line, s, k, "expected a CSV column name of 1 to %d bytes",
                              PDM_MODEL_COLUMN_MAX);
            else
                strcpy(t->label, e->value);
        } else if (strcmp(k, "l2") == 0) {
            pdm_ini_double_range(doc, s, e, 0, 1e12, &t->l2);
        } else if (strcmp(k, "class_weight") == 0) {
            if (pdm_class_weight_parse(e->value, &t->class_weight, &t->pos_weight) < 0)
                pdm_ini_error(doc, e->line, s, k,
                              "expected none, balanced or the weight of a positive row (a number "
                              "> 0), got '%s'",
                              e->value);
        } else if (strcmp(k, "thresholds") == 0) {
            if (strcmp(e->value, "auto") == 0 || strcmp(e->value, "fixed") == 0)
                t->fixed_thresholds = strcmp(e->value, "fixed") == 0;
            else
                pdm_ini_error(doc, e->line, s, k, "expected auto or fixed, got '%s'", e->value);
        } else if (strcmp(k, "rows") == 0 || strcmp(k, "positives") == 0 ||
                   strcmp(k, "iterations") == 0) {
            if (pdm_ini_int(doc, s, e, 0, 1000000000000LL, &v) == 0)
                *(k[0] == 'r' ? &t->rows : k[0] == 'p' ? &t->positives : &t->iterations) = v;
        } else {
            pdm_ini_unknown_key(doc, s, e, train_keys, N_ELEMS(train_keys));
        }
    }
}

void pdm_model_train_defaults(struct pdm_model_train *t)
{
    memset(t, 0, sizeof(*t));
    t->l2 = PDM_TRAIN_DEFAULT_L2;
    t->class_weight = PDM_CW_BALANCED;
    t->pos_weight = 1.0;
}

int pdm_class_weight_parse(const char *s, enum pdm_class_weight *cw, double *pos_weight)
{
    if (strcmp(s, "none") == 0) {
        *cw = PDM_CW_NONE;
        *pos_weight = 1.0;
        return 0;
    }
    if (strcmp(s, "balanced") == 0) {
        *cw = PDM_CW_BALANCED;
        *pos_weight = 1.0;
        return 0;
    }
    char *end;
    errno = 0;
    double w = strtod(s, &end);
    if (end == s || *end || errno || !(w > 0.0) || !isfinite(w))
        return -EINVAL;
    *cw = PDM_CW_FIXED;
    *pos_weight = w;
    return 0;
}

/* The file's SHA-256 as lowercase hex: the backend sees exactly which bytes score. */
static int file_sha256(const char *path, char hex[65])
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -errno;
    mbedtls_sha256_context ctx;
    mbedtls_sha256_init(&ctx);
    int rc = mbedtls_sha256_starts_ret(&ctx, 0) == 0 ? 0 : -EIO;
    unsigned char buf[4096];
    size_t n;
    while (rc == 0 && (n = fread(buf, 1, sizeof(buf), f)) > 0)
        if (mbedtls_sha256_update_ret(&ctx, buf, n) != 0)
            rc = -EIO;
    if (rc == 0 && ferror(f))
        rc = -EIO;
    unsigned char d[32];
    if (rc == 0 && mbedtls_sha256_finish_ret(&ctx, d) != 0)
        rc = -EIO;
    mbedtls_sha256_free(&ctx);
    fclose(f);
    for (int i = 0; rc == 0 && i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", d[i]);
    return rc;
}

int pdm_model_load(const char *path, struct pdm_model *m, struct pdm_diag *diag)
{
    return pdm_model_load_ex(path, m, NULL, diag);
}

int pdm_model_load_ex(const char *path, struct pdm_model *m, struct pdm_model_train *t,
                      struct pdm_diag *diag)
{
    struct pdm_diag count_only = {0};
    if (!diag)
        diag = &count_only;
    memset(m, 0, sizeof(*m));
    if (t)
        pdm_model_train_defaults(t);
    int before = diag->errors;

    struct pdm_ini_doc doc;
    int rc = pdm_ini_load(path, &doc, diag);
    if (rc < 0) {
        pdm_diag_error(diag, path, 0, "model", NULL, "cannot read the model file: %s",
                       strerror(-rc));
        pdm_ini_free(&doc);
        return diag->errors - before;
    }
    int have_model = 0;
    struct load_ctx c = {.doc = &doc, .m = m, .t = t};
    for (size_t i = 0; i < doc.n_sections; i++) {
        const struct pdm_ini_section *s = &doc.sections[i];
        if (strcmp(s->kind, "model") == 0) {
            if (*s->arg) {
                pdm_ini_error(&doc, s->line, s, NULL, "[model] takes no name");
                continue;
            }
            have_model = 1;
            load_model_section(&doc, s, m);
        } else if (strcmp(s->kind, "input") == 0) {
            load_input_section(&c, s);
        } else if (strcmp(s->kind, "train") == 0) {
            if (*s->arg)
                pdm_ini_error(&doc, s->line, s, NULL, "[train] takes no name");
            else
                load_train_section(&c, s);
        } else {
            const char *hint = pdm_ini_suggest(s->kind, section_kinds, N_ELEMS(section_kinds));
            if (hint)
                pdm_ini_error(&doc, s->line, s, NULL,
                              "unknown section kind '%s' (did you mean '%s'?)", s->kind, hint);
            else
                pdm_ini_error(&doc, s->line, s, NULL,
                              "unknown section kind '%s' (expected [model], [input NAME] or "
                              "[train])",
                              s->kind);
        }
    }
    if (!have_model)
        pdm_diag_error(diag, path, 0, "model", NULL, "required section [model] is missing");
    if (m->n_inputs == 0)
        pdm_diag_error(diag, path, 0, "input", NULL,
                       "no [input NAME] section: a model needs at least one input");
    resolve_derived(&c);
    pdm_ini_free(&doc);
    rc = file_sha256(path, m->sha256);
    if (rc != 0)
        pdm_diag_error(diag, path, 0, "model", NULL, "cannot compute the file's SHA-256: %s",
                       strerror(-rc));
    return diag->errors - before;
}
