/* Logistic model scoring: pure arithmetic on the caller's buffers, no allocation, no I/O.
 * Loading and validating model files lives in model_file.c. */
#include "model.h"

#include <math.h>
#include <string.h>

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

void pdm_model_score(const struct pdm_model *m, const double *x, struct pdm_score *out)
{
    uint32_t n = m->n_inputs <= PDM_MODEL_MAX_INPUTS ? m->n_inputs : PDM_MODEL_MAX_INPUTS;
    double logit = m->intercept;

    out->n_inputs = n;
    for (uint32_t i = 0; i < n; i++) {
        const struct pdm_model_input *in = &m->inputs[i];
        struct pdm_score_input *s = &out->in[i];
        s->value = x[i];
        s->z = (x[i] - in->center) / in->scale;
        s->contribution = in->weight * s->z;
        logit += s->contribution;
    }
    out->logit = logit;
    out->probability = logistic(logit);

    /* Health is what a dashboard shows: 100 = no sign of a fault. A NaN probability (a NaN
     * input) reads as 0 health rather than as an arbitrary integer conversion. */
    double h = round(100.0 * (1.0 - out->probability));
    if (!(h > 0.0))
        h = 0.0;
    if (h > 100.0)
        h = 100.0;
    out->health = (uint32_t)h;
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
