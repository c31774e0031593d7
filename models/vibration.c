/* Vibration window features; see vibration.h for the definitions and the choice of streaming
 * central moments. Cost: about 20 floating-point operations per sample, no memory beyond the
 * struct, no allocation. */
#include "vibration.h"

#include <errno.h>
#include <math.h>

int pdm_vib_init(struct pdm_vib *v, uint32_t window_n)
{
    v->window_n = 0;
    v->windows = 0;
    pdm_vib_reset(v);
    if (window_n < 2)
        return -EINVAL;
    v->window_n = window_n;
    return 0;
}

void pdm_vib_reset(struct pdm_vib *v)
{
    v->n = 0;
    v->mean = v->m2 = v->m3 = v->m4 = 0.0;
    v->min = INFINITY;
    v->max = -INFINITY;
}

static void features(const struct pdm_vib *v, struct pdm_vib_features *out)
{
    double n = (double)v->n;
    out->n = v->n;
    out->mean = v->mean;
    /* m2 is a sum of non-negative terms; m4 can round a hair below zero on a flat signal. */
    double var = v->m2 / n;
    out->rms = sqrt(var);
    /* peak about the mean from the extremes: max |x - mean| is at the max or at the min. */
    double up = v->max - v->mean, down = v->mean - v->min;
    out->peak = up > down ? up : down;
    if (out->peak < 0)
        out->peak = 0;
    if (var > 0) {
        out->crest = out->peak / out->rms;
        double m4 = v->m4 > 0 ? v->m4 : 0.0;
        out->kurtosis = (m4 / n) / (var * var);
    } else {
        out->crest = 0.0;
        out->kurtosis = 0.0;
    }
}

int pdm_vib_push(struct pdm_vib *v, double x, struct pdm_vib_features *out)
{
    /* One-sample merge of central moments (Pebay 2008, eq. 1.5 with n_B = 1). The order matters:
     * m4 uses the old m2 and m3, m3 the old m2. */
    double n0 = (double)v->n;
    double n = n0 + 1.0;
    double d = x - v->mean;
    double dn = d / n;
    double dn2 = dn * dn;
    double t = d * dn * n0;
    v->mean += dn;
    v->m4 += t * dn2 * (n * n - 3.0 * n + 3.0) + 6.0 * dn2 * v->m2 - 4.0 * dn * v->m3;
    v->m3 += t * dn * (n - 2.0) - 3.0 * dn * v->m2;
    v->m2 += t;
    if (x < v->min)
        v->min = x;
    if (x > v->max)
        v->max = x;
    v->n++;
    if (v->n < v->window_n)
        return 0;
    features(v, out);
    v->windows++;
    pdm_vib_reset(v);
    return 1;
}

size_t pdm_vib_push_block(struct pdm_vib *v, const double *x, size_t n,
                          struct pdm_vib_features *out, int *done)
{
    *done = 0;
    for (size_t i = 0; i < n; i++) {
        if (pdm_vib_push(v, x[i], out)) {
            *done = 1;
            return i + 1;
        }
    }
    return n;
}

int pdm_vib_peek(const struct pdm_vib *v, struct pdm_vib_features *out)
{
    if (v->n == 0)
        return -ENODATA;
    features(v, out);
    return 0;
}
