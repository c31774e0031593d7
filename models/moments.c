/* Per-asset baselines: the learning arithmetic and the effective model (see model.h). Pure
 * functions, no allocation: learning runs beside the scoring path. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "model.h"

void pdm_moments_add(struct pdm_moments *mo, double x)
{
    mo->n++;
    double d = x - mo->mean;
    mo->mean += d / (double)mo->n;
    mo->m2 += d * (x - mo->mean);
}

double pdm_moments_sd(const struct pdm_moments *mo)
{
    if (mo->n < 2 || !(mo->m2 > 0))
        return 0.0;
    return sqrt(mo->m2 / (double)(mo->n - 1));
}

double pdm_baseline_scale(double sd, double fleet_scale)
{
    double floor = PDM_BASELINE_FLOOR * fabs(fleet_scale);
    if (!(floor > 0))
        floor = 1e-9; /* a model always has scale > 0; this only keeps the division defined */
    return sd > floor ? sd : floor;
}

int pdm_baseline_match(const struct pdm_model *m, const struct pdm_baseline *b, char *err,
                       size_t errlen)
{
    if (strcmp(m->id, b->model_id) != 0) {
        snprintf(err, errlen, "learned for model %s, the asset runs model %s", b->model_id, m->id);
        return -EINVAL;
    }
    uint32_t windowed = 0;
    for (uint32_t k = 0; k < m->n_inputs; k++) {
        const struct pdm_model_input *in = &m->inputs[k];
        if (!pdm_model_input_has_sensor(in))
            continue;
        windowed++;
        const struct pdm_baseline_input *bi = NULL;
        for (uint32_t j = 0; j < b->n_inputs && !bi; j++)
            if (strcmp(b->in[j].name, in->name) == 0)
                bi = &b->in[j];
        if (!bi) {
            snprintf(err, errlen, "input %s of model %s has no learned baseline", in->name, m->id);
            return -EINVAL;
        }
        if (bi->stat != in->stat || bi->window_s != in->window_s) {
            snprintf(err, errlen,
                     "input %s was learned as %s over %g s, the model takes %s over %g s", in->name,
                     pdm_stat_name(bi->stat), bi->window_s, pdm_stat_name(in->stat), in->window_s);
            return -EINVAL;
        }
        if (!(bi->scale > 0) || !isfinite(bi->center)) {
            snprintf(err, errlen, "input %s: learned center %g / scale %g are not usable", in->name,
                     bi->center, bi->scale);
            return -EINVAL;
        }
    }
    if (windowed != b->n_inputs) {
        snprintf(err, errlen, "learned for %u windowed inputs, model %s has %u", b->n_inputs, m->id,
                 windowed);
        return -EINVAL;
    }
    return 0;
}

int pdm_model_apply_baseline(struct pdm_model *m, const struct pdm_baseline *b, char *err,
                             size_t errlen)
{
    int rc = pdm_baseline_match(m, b, err, errlen);
    if (rc != 0)
        return rc;
    pdm_model_use_fleet(m);
    for (uint32_t k = 0; k < m->n_inputs; k++) {
        struct pdm_model_input *in = &m->inputs[k];
        if (!pdm_model_input_has_sensor(in))
            continue;
        for (uint32_t j = 0; j < b->n_inputs; j++) {
            if (strcmp(b->in[j].name, in->name) != 0)
                continue;
            in->fleet_center = in->center;
            in->fleet_scale = in->scale;
            in->center = b->in[j].center;
            in->scale = b->in[j].scale;
            in->from_asset = 1;
            break;
        }
    }
    return 0;
}

void pdm_model_use_fleet(struct pdm_model *m)
{
    for (uint32_t k = 0; k < m->n_inputs && k < PDM_MODEL_MAX_INPUTS; k++) {
        struct pdm_model_input *in = &m->inputs[k];
        if (!in->from_asset)
            continue;
        in->center = in->fleet_center;
        in->scale = in->fleet_scale;
        in->from_asset = 0;
    }
}

int pdm_model_uses_asset_baseline(const struct pdm_model *m)
{
    for (uint32_t k = 0; k < m->n_inputs && k < PDM_MODEL_MAX_INPUTS; k++)
        if (m->inputs[k].from_asset)
            return 1;
    return 0;
}
