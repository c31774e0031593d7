/* Logistic model scoring: pure arithmetic on the caller's buffers, no allocation, no I/O.
 * Loading and validating model files lives in model_file.c. */
#include "model.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

int pdm_model_name_ok(const char *s)
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

void pdm_model_name_suggest(const char *text, char out[PDM_MODEL_NAME_MAX + 1])
{
    size_t n = 0;
    int gap = 0;
    for (const char *p = text; *p && n < PDM_MODEL_NAME_MAX; p++) {
        char c = *p;
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
            if (gap && n > 0 && n + 1 < PDM_MODEL_NAME_MAX)
                out[n++] = '_';
            if (n == 0 && c >= '0' && c <= '9')
                out[n++] = 'c'; /* a name starts with a letter */
            out[n++] = c;
            gap = 0;
        } else {
            gap = 1;
        }
    }
    if (n == 0)
        out[n++] = 'x';
    out[n] = '\0';
}

int pdm_model_input_index(const struct pdm_model *m, const char *name)
{
    for (uint32_t i = 0; i < m->n_inputs && i < PDM_MODEL_MAX_INPUTS; i++) {
        if (strcmp(m->inputs[i].name, name) == 0)
            return (int)i;
    }
    return -1;
}

/* 1 / (1 + exp(-logit)) without overflow: exp() is only ever taken of a non-positive number,
 * so it lies in [0, 1]; |logit| in the hundreds gives exactly 0 or 1 instead of inf/inf. */
static double logistic(double logit)
{
    if (logit >= 0.0)
        return 1.0 / (1.0 + exp(-logit));
    double e = exp(logit);
    return e / (1.0 + e);
}

void pdm_model_derive(const struct pdm_model *m, double *v)
{
    uint32_t n = m->n_inputs <= PDM_MODEL_MAX_INPUTS ? m->n_inputs : PDM_MODEL_MAX_INPUTS;
    uint32_t nd = m->n_derived <= PDM_MODEL_MAX_INPUTS ? m->n_derived : PDM_MODEL_MAX_INPUTS;

    for (uint32_t j = 0; j < nd; j++) {
        uint32_t i = m->derive_order[j];
        if (i >= n)
            continue;
        const struct pdm_model_input *in = &m->inputs[i];
        uint32_t a = in->arg[0], b = in->arg[1];
        if (a >= n || b >= n) {
            v[i] = NAN; /* pdm_model_link refuses this; never score a made-up value */
            continue;
        }
        switch (in->derive) {
        case PDM_DERIVE_PRODUCT:
            v[i] = v[a] * v[b];
            break;
        case PDM_DERIVE_DIFF:
            v[i] = v[a] - v[b];
            break;
        case PDM_DERIVE_NONE:
            break;
        }
    }
}

void pdm_model_score(const struct pdm_model *m, const double *x, struct pdm_score *out)
{
    uint32_t n = m->n_inputs <= PDM_MODEL_MAX_INPUTS ? m->n_inputs : PDM_MODEL_MAX_INPUTS;
    double logit = m->intercept;
    double v[PDM_MODEL_MAX_INPUTS];

    for (uint32_t i = 0; i < n; i++)
        v[i] = x[i];
    pdm_model_derive(m, v);
    out->n_inputs = n;
    for (uint32_t i = 0; i < n; i++) {
        const struct pdm_model_input *in = &m->inputs[i];
        struct pdm_score_input *s = &out->in[i];
        s->value = v[i];
        s->z = (v[i] - in->center) / in->scale;
        s->contribution = in->weight * s->z;
        logit += s->contribution;
    }
    out->logit = logit;
    out->probability = logistic(logit);

    out->health = pdm_health_score(out->probability);
}

uint32_t pdm_health_score(double p)
{
    /* Health is what a dashboard shows: 100 = no sign of a fault. A NaN probability (a NaN
     * input) reads as 0 health rather than as an arbitrary integer conversion. */
    double h = round(100.0 * (1.0 - p));
    if (!(h > 0.0))
        return 0;
    return h > 100.0 ? 100u : (uint32_t)h;
}

void pdm_score_rank(const struct pdm_score *s, uint32_t *order)
{
    uint32_t n = s->n_inputs <= PDM_MODEL_MAX_INPUTS ? s->n_inputs : PDM_MODEL_MAX_INPUTS;

    /* Insertion sort: at most 16 entries, and it is stable, so equal magnitudes keep the
     * model's input order. */
    for (uint32_t i = 0; i < n; i++) {
        double mag = fabs(s->in[i].contribution);
        uint32_t j = i;
        while (j > 0 && fabs(s->in[order[j - 1]].contribution) < mag) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = i;
    }
}

const char *pdm_stat_name(enum pdm_stat s)
{
    switch (s) {
    case PDM_STAT_MEAN:
        return "mean";
    case PDM_STAT_RMS:
        return "rms";
    case PDM_STAT_MAX:
        return "max";
    }
    return "?";
}

const char *pdm_model_input_kind(const struct pdm_model_input *in)
{
    if (in->is_age)
        return "age";
    if (in->derive != PDM_DERIVE_NONE)
        return "derived";
    return pdm_stat_name(in->stat);
}

/* ---- derived inputs: expressions and their evaluation order ---------------------------- */

int pdm_model_link(struct pdm_model *m, int *bad, char *err, size_t errlen)
{
    uint32_t n = m->n_inputs <= PDM_MODEL_MAX_INPUTS ? m->n_inputs : PDM_MODEL_MAX_INPUTS;
    int placed[PDM_MODEL_MAX_INPUTS] = {0};
    uint32_t want = 0;

    m->n_derived = 0;
    for (uint32_t i = 0; i < n; i++) {
        const struct pdm_model_input *in = &m->inputs[i];
        if (in->derive == PDM_DERIVE_NONE) {
            placed[i] = 1;
            continue;
        }
        want++;
        for (int k = 0; k < 2; k++) {
            if (in->arg[k] >= n) {
                *bad = (int)i;
                snprintf(err, errlen, "operand %u is not an input of this model (it has %u)",
                         (unsigned)in->arg[k], (unsigned)n);
                return -EINVAL;
            }
        }
    }
    /* Kahn's order: place an input once both operands are placed; at most n rounds */
    for (uint32_t round = 0; round < n && m->n_derived < want; round++) {
        for (uint32_t i = 0; i < n; i++) {
            const struct pdm_model_input *in = &m->inputs[i];
            if (!placed[i] && placed[in->arg[0]] && placed[in->arg[1]]) {
                placed[i] = 1;
                m->derive_order[m->n_derived++] = (uint8_t)i;
            }
        }
    }
    if (m->n_derived == want)
        return 0;

    /* A cycle: walk unplaced operands from an unplaced input until a node repeats; that node is
     * on the cycle, which is then printed from it. */
    uint32_t at = 0;
    while (placed[at])
        at++;
    int seen[PDM_MODEL_MAX_INPUTS] = {0};
    while (!seen[at]) {
        seen[at] = 1;
        const struct pdm_model_input *in = &m->inputs[at];
        at = placed[in->arg[0]] ? in->arg[1] : in->arg[0];
    }
    *bad = (int)at;
    size_t len =
        (size_t)snprintf(err, errlen, "derived inputs form a cycle: %s", m->inputs[at].name);
    uint32_t cur = at;
    for (uint32_t step = 0; step < n; step++) {
        const struct pdm_model_input *in = &m->inputs[cur];
        cur = placed[in->arg[0]] ? in->arg[1] : in->arg[0];
        if (len < errlen)
            len += (size_t)snprintf(err + len, errlen - len, " -> %s", m->inputs[cur].name);
        if (cur == at)
            break;
    }
    m->n_derived = 0; /* nothing is derived from a model that does not link */
    return -EINVAL;
}

static const char *skip_blanks(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

/* An input name at p: its index in m through *idx, the end through the return value, or NULL
 * with the reason in err. */
static const char *operand(const struct pdm_model *m, const char *p, uint8_t *idx, char *err,
                           size_t errlen)
{
    char name[PDM_MODEL_NAME_MAX + 2];
    size_t n = 0;
    if (!(*p >= 'a' && *p <= 'z')) {
        snprintf(err, errlen, "expected an input name at '%s'", p);
        return NULL;
    }
    while ((p[n] >= 'a' && p[n] <= 'z') || (p[n] >= '0' && p[n] <= '9') || p[n] == '_') {
        if (n > PDM_MODEL_NAME_MAX) {
            snprintf(err, errlen, "input name too long at '%.40s'", p);
            return NULL;
        }
        name[n] = p[n];
        n++;
    }
    name[n] = '\0';
    int i = pdm_model_input_index(m, name);
    if (i < 0) {
        size_t len = (size_t)snprintf(err, errlen, "no input '%s' in this model (inputs:", name);
        for (uint32_t k = 0; k < m->n_inputs && k < PDM_MODEL_MAX_INPUTS && len < errlen; k++)
            len += (size_t)snprintf(err + len, errlen - len, " %s", m->inputs[k].name);
        if (len < errlen)
            snprintf(err + len, errlen - len, ")");
        return NULL;
    }
    *idx = (uint8_t)i;
    return p + n;
}

int pdm_model_parse_derive(const struct pdm_model *m, const char *expr, enum pdm_derive_op *op,
                           uint8_t arg[2], char *err, size_t errlen)
{
    static const char usage[] = "expected 'A * B', 'A - B' or 'square(A)'";
    const char *p = skip_blanks(expr);

    if (strncmp(p, "square", 6) == 0 && *skip_blanks(p + 6) == '(') {
        p = skip_blanks(skip_blanks(p + 6) + 1);
        if (!(p = operand(m, p, &arg[0], err, errlen)))
            return -EINVAL;
        p = skip_blanks(p);
        if (*p != ')' || *skip_blanks(p + 1)) {
            snprintf(err, errlen, "%s, got '%s'", usage, expr);
            return -EINVAL;
        }
        arg[1] = arg[0];
        *op = PDM_DERIVE_PRODUCT;
        return 0;
    }
    if (!*p) {
        snprintf(err, errlen, "%s, got nothing", usage);
        return -EINVAL;
    }
    if (!(p = operand(m, p, &arg[0], err, errlen)))
        return -EINVAL;
    p = skip_blanks(p);
    if (*p == '*') {
        *op = PDM_DERIVE_PRODUCT;
    } else if (*p == '-') {
        *op = PDM_DERIVE_DIFF;
    } else {
        snprintf(err, errlen, "%s, got '%s'", usage, expr);
        return -EINVAL;
    }
    p = skip_blanks(p + 1);
    if (!(p = operand(m, p, &arg[1], err, errlen)))
        return -EINVAL;
    if (*skip_blanks(p)) {
        snprintf(err, errlen, "%s, got '%s'", usage, expr);
        return -EINVAL;
    }
    return 0;
}

void pdm_model_format_derive(const struct pdm_model *m, const struct pdm_model_input *in, char *out,
                             size_t outlen)
{
    const char *a = in->arg[0] < m->n_inputs ? m->inputs[in->arg[0]].name : "?";
    const char *b = in->arg[1] < m->n_inputs ? m->inputs[in->arg[1]].name : "?";
    switch (in->derive) {
    case PDM_DERIVE_PRODUCT:
        if (in->arg[0] == in->arg[1])
            snprintf(out, outlen, "square(%s)", a);
        else
            snprintf(out, outlen, "%s * %s", a, b);
        return;
    case PDM_DERIVE_DIFF:
        snprintf(out, outlen, "%s - %s", a, b);
        return;
    case PDM_DERIVE_NONE:
        break;
    }
    snprintf(out, outlen, "%s", "");
}
