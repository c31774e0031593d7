/* Writing a model file (format at the top of model.h), as pdmctl train does.
 *
 * Every number is printed with the fewest significant digits (up to 17) that strtod() reads back
 * as the same double, so a written model scores exactly like the one in memory: the trainer's
 * figures and the agent's scores agree to the last bit. */
#include "model_write.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COMMENT_MAX 160 /* characters of a comment line (the reader takes lines up to 200) */

/* Shortest %.Ng (N = 1..17) that round-trips; %.17g always does for a finite double. */
static void num(char *out, size_t len, double x)
{
    if (x == (double)(long long)x && x > -1e15 && x < 1e15) {
        snprintf(out, len, "%.0f", x); /* 60, not 6e+01 */
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(out, len, "%.*g", prec, x);
        if (strtod(out, NULL) == x)
            return;
    }
    snprintf(out, len, "%.17g", x);
}

/* What the INI reader gives back unchanged: no leading/trailing blank (inih trims), no
 * " ;" (an inline comment), no line break, nothing over PDM_MODEL_COLUMN_MAX. */
int pdm_model_column_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > PDM_MODEL_COLUMN_MAX)
        return 0;
    if (s[0] == ' ' || s[0] == '\t' || s[n - 1] == ' ' || s[n - 1] == '\t')
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f)
            return 0;
        if (c == ';' && i > 0 && (s[i - 1] == ' ' || s[i - 1] == '\t'))
            return 0;
    }
    return 1;
}

static const char *class_weight_text(const struct pdm_model_train *t, char *buf, size_t len)
{
    switch (t->class_weight) {
    case PDM_CW_NONE:
        return "none";
    case PDM_CW_BALANCED:
        return "balanced";
    case PDM_CW_FIXED:
        num(buf, len, t->pos_weight);
        return buf;
    }
    return "balanced";
}

int pdm_model_write(FILE *f, const struct pdm_model *m, const struct pdm_model_train *t,
                    const char *comment)
{
    char a[32], b[32], c[32];

    if (t) {
        if (*t->label && !pdm_model_column_ok(t->label))
            return -EINVAL;
        for (uint32_t i = 0; i < m->n_inputs; i++)
            if (*t->column[i] && !pdm_model_column_ok(t->column[i]))
                return -EINVAL;
    }
    /* the comment, one "; " line per line of text, each cut to what the reader takes */
    for (const char *p = comment; p && *p;) {
        const char *nl = strchr(p, '\n');
        int n = nl ? (int)(nl - p) : (int)strlen(p);
        fprintf(f, ";%s%.*s\n", n ? " " : "", n < COMMENT_MAX ? n : COMMENT_MAX, p);
        p = nl ? nl + 1 : p + n;
    }
    if (comment && *comment)
        fputc('\n', f);

    fprintf(f, "[model]\nid = %s\nversion = %u\n", m->id, (unsigned)m->version);
    num(a, sizeof(a), m->intercept);
    fprintf(f, "intercept = %s\n", a);
    num(a, sizeof(a), m->warning);
    num(b, sizeof(b), m->critical);
    num(c, sizeof(c), m->clear);
    fprintf(f, "warning = %s\ncritical = %s\nclear = %s\n", a, b, c);
    fprintf(f, "hold = %d\neval_period_ms = %d\n", m->hold, m->eval_period_ms);
    if (m->baseline_asset)
        fprintf(f, "baseline = asset\n");

    for (uint32_t i = 0; i < m->n_inputs && i < PDM_MODEL_MAX_INPUTS; i++) {
        const struct pdm_model_input *in = &m->inputs[i];
        fprintf(f, "\n[input %s]\n", in->name);
        if (in->derive != PDM_DERIVE_NONE) {
            char expr[2 * PDM_MODEL_NAME_MAX + 16];
            pdm_model_format_derive(m, in, expr, sizeof(expr));
            fprintf(f, "derive = %s\n", expr);
        } else if (!in->is_age) {
            num(a, sizeof(a), in->window_s);
            fprintf(f, "stat = %s\nwindow_s = %s\n", pdm_stat_name(in->stat), a);
        }
        /* the model file's own constants, also when a per-asset baseline is applied */
        num(a, sizeof(a), in->from_asset ? in->fleet_center : in->center);
        num(b, sizeof(b), in->from_asset ? in->fleet_scale : in->scale);
        num(c, sizeof(c), in->weight);
        fprintf(f, "center = %s\nscale = %s\nweight = %s\n", a, b, c);
        if (t && *t->column[i] && in->derive == PDM_DERIVE_NONE)
            fprintf(f, "column = %s\n", t->column[i]);
    }

    if (t) {
        fprintf(f, "\n[train]\n");
        if (*t->label)
            fprintf(f, "label = %s\n", t->label);
        num(a, sizeof(a), t->l2);
        fprintf(f, "l2 = %s\nclass_weight = %s\nthresholds = %s\n", a,
                class_weight_text(t, b, sizeof(b)), t->fixed_thresholds ? "fixed" : "auto");
        fprintf(f, "rows = %lld\npositives = %lld\niterations = %lld\n", t->rows, t->positives,
                t->iterations);
    }
    return ferror(f) ? -EIO : 0;
}
