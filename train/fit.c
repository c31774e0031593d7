/* Penalised logistic regression by Newton's method (objective and guarantees in fit.h). */
#include "fit.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

#define NP (PDM_MODEL_MAX_INPUTS + 1) /* coefficients: intercept + one per input */

static void fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

double *pdm_model_rows(const struct pdm_model *m, const double *base, size_t n, size_t d)
{
    size_t p = m->n_inputs;
    double *x = calloc(n * (p ? p : 1), sizeof(*x));
    if (!x)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        size_t j = 0;
        for (size_t k = 0; k < p; k++) {
            if (m->inputs[k].derive == PDM_DERIVE_NONE && j < d)
                x[i * p + k] = base[i * d + j++];
        }
    }
    return x;
}

void pdm_score_rows(const struct pdm_model *m, const double *x, size_t n, double *p)
{
    struct pdm_score s;
    for (size_t i = 0; i < n; i++) {
        pdm_model_score(m, x + i * m->n_inputs, &s);
        p[i] = s.probability;
    }
}

/* log(1 + exp(e)) without overflow */
static double log1pexp(double e)
{
    return e > 0 ? e + log1p(exp(-e)) : log1p(exp(e));
}

static double logistic(double e)
{
    if (e >= 0)
        return 1.0 / (1.0 + exp(-e));
    double x = exp(e);
    return x / (1.0 + x);
}

struct problem {
    const double *z; /* n * p standardised inputs */
    const double *y, *w;
    size_t n;
    int p; /* inputs; coefficients are p + 1 */
    double l2;
};

static double eta_of(const struct problem *pr, size_t i, const double *beta)
{
    double e = beta[0];
    for (int k = 0; k < pr->p; k++)
        e += beta[k + 1] * pr->z[i * (size_t)pr->p + (size_t)k];
    return e;
}

static double objective(const struct problem *pr, const double *beta)
{
    double f = 0;
    for (size_t i = 0; i < pr->n; i++) {
        double e = eta_of(pr, i, beta);
        f += pr->w[i] * (log1pexp(e) - pr->y[i] * e);
    }
    for (int k = 1; k <= pr->p; k++)
        f += 0.5 * pr->l2 * beta[k] * beta[k];
    return f;
}

/* Gradient and Hessian of the objective at beta (q = p + 1 coefficients). */
static void derivatives(const struct problem *pr, const double *beta, double *g, double h[NP][NP])
{
    int q = pr->p + 1;
    double xi[NP];
    memset(g, 0, sizeof(double) * (size_t)q);
    for (int a = 0; a < q; a++)
        memset(h[a], 0, sizeof(double) * (size_t)q);
    xi[0] = 1.0;
    for (size_t i = 0; i < pr->n; i++) {
        for (int k = 0; k < pr->p; k++)
            xi[k + 1] = pr->z[i * (size_t)pr->p + (size_t)k];
        double pi = logistic(eta_of(pr, i, beta));
        double r = pr->w[i] * (pi - pr->y[i]);
        double c = pr->w[i] * pi * (1.0 - pi);
        for (int a = 0; a < q; a++) {
            g[a] += r * xi[a];
            for (int b = 0; b <= a; b++)
                h[a][b] += c * xi[a] * xi[b];
        }
    }
    for (int a = 0; a < q; a++)
        for (int b = 0; b < a; b++)
            h[b][a] = h[a][b];
    for (int k = 1; k < q; k++) {
        g[k] += pr->l2 * beta[k];
        h[k][k] += pr->l2;
    }
}

/* Solves (h + mu I) d = -g by Cholesky. Returns 0, or -1 when the matrix is not positive
 * definite. */
static int solve(double h[NP][NP], const double *g, int q, double mu, double *d)
{
    double l[NP][NP];
    for (int a = 0; a < q; a++) {
        for (int b = 0; b <= a; b++) {
            double s = h[a][b] + (a == b ? mu : 0.0);
            for (int k = 0; k < b; k++)
                s -= l[a][k] * l[b][k];
            if (a == b) {
                if (!(s > 0.0))
                    return -1;
                l[a][a] = sqrt(s);
            } else {
                l[a][b] = s / l[b][b];
            }
        }
    }
    double t[NP];
    for (int a = 0; a < q; a++) {
        double s = -g[a];
        for (int k = 0; k < a; k++)
            s -= l[a][k] * t[k];
        t[a] = s / l[a][a];
    }
    for (int a = q - 1; a >= 0; a--) {
        double s = t[a];
        for (int k = a + 1; k < q; k++)
            s -= l[k][a] * d[k];
        d[a] = s / l[a][a];
    }
    return 0;
}

static int newton(const struct problem *pr, double *beta, int max_iter, struct pdm_fit_info *info,
                  char *err, size_t errlen)
{
    int q = pr->p + 1;
    double g[NP], d[NP], trial[NP];
    double h[NP][NP];
    double f = objective(pr, beta);

    for (int it = 1; it <= max_iter; it++) {
        derivatives(pr, beta, g, h);
        /* Levenberg damping: only when the Hessian is singular (collinear inputs, l2 = 0) */
        double trace = 0;
        for (int a = 0; a < q; a++)
            trace += h[a][a];
        double mu = 0;
        while (solve(h, g, q, mu, d) < 0) {
            mu = mu ? mu * 10 : 1e-10 * (trace > 0 ? trace : 1.0);
            if (!(mu < 1e10 * (trace > 0 ? trace : 1.0))) {
                fail(err, errlen, "the Newton system stays singular at step %d", it);
                return -1;
            }
        }
        double slope = 0; /* directional derivative along d: negative for a descent step */
        for (int a = 0; a < q; a++)
            slope += g[a] * d[a];
        /* backtracking line search (Armijo): halve the step until the loss falls enough */
        double step = 1.0, ft = f;
        int ok = 0;
        for (int ls = 0; ls < 60; ls++) {
            for (int a = 0; a < q; a++)
                trial[a] = beta[a] + step * d[a];
            ft = objective(pr, trial);
            if (isfinite(ft) && ft <= f + 1e-4 * step * slope) {
                ok = 1;
                break;
            }
            step *= 0.5;
        }
        double moved = 0, big = 0;
        for (int a = 0; a < q; a++) {
            double dm = fabs(step * d[a]);
            if (dm > moved)
                moved = dm;
            if (fabs(beta[a]) > big)
                big = fabs(beta[a]);
        }
        info->iterations = it;
        info->last_step = moved;
        if (!ok) {
            /* no decrease at all along a Newton direction: the loss is flat to rounding here */
            if (-slope <= 1e-12 * (1.0 + fabs(f)))
                break;
            fail(err, errlen, "the line search found no lower loss at step %d (loss %g)", it, f);
            return -1;
        }
        memcpy(beta, trial, sizeof(double) * (size_t)q);
        f = ft;
        if (big > 1e8 || !isfinite(f)) {
            fail(err, errlen,
                 "the weights grow without bound (largest %.3g after %d steps): the classes are "
                 "separable by these inputs; regularise with l2 > 0",
                 big, it);
            return -1;
        }
        if (moved <= 1e-9 * (1.0 + big))
            break;
        if (it == max_iter) {
            fail(err, errlen,
                 "did not converge in %d Newton steps (the last moved a weight by %.3g, the "
                 "largest weight is %.3g): the classes may be separable by these inputs; use "
                 "l2 > 0 or allow more steps",
                 max_iter, moved, big);
            return -1;
        }
    }
    /* A weight of a thousand per standard deviation is no model: without l2 on separable
     * classes the loss runs to zero and Newton "converges" on numbers that only grow with the
     * data's precision. */
    double big = 0;
    for (int a = 0; a < q; a++)
        if (fabs(beta[a]) > big)
            big = fabs(beta[a]);
    if (big > PDM_FIT_MAX_WEIGHT) {
        fail(err, errlen,
             "the fit ran to weights of %.3g (loss %.3g): the classes are separable by these "
             "inputs, so without regularisation there is no finite answer; use l2 > 0",
             big, f);
        return -1;
    }
    derivatives(pr, beta, g, h);
    info->grad_max = 0;
    for (int a = 0; a < q; a++)
        if (fabs(g[a]) > info->grad_max)
            info->grad_max = fabs(g[a]);
    info->objective = f;
    return 0;
}

int pdm_fit(struct pdm_model *m, const struct pdm_model_train *t, const double *x, const double *y,
            const int *line, size_t n, int max_iter, struct pdm_fit_info *info, char *err,
            size_t errlen)
{
    int p = (int)m->n_inputs;
    memset(info, 0, sizeof(*info));
    info->n = n;
    if (p < 1 || p > PDM_MODEL_MAX_INPUTS) {
        fail(err, errlen, "a model needs 1 to %d inputs, this one has %d", PDM_MODEL_MAX_INPUTS, p);
        return -1;
    }
    size_t pos = 0;
    for (size_t i = 0; i < n; i++)
        pos += y[i] > 0.5;
    info->positives = pos;
    if (pos == 0 || pos == n) {
        fail(err, errlen, "the label is %d on all %zu rows: training needs both 0 and 1",
             pos ? 1 : 0, n);
        return -1;
    }
    if (!(t->l2 >= 0) || !isfinite(t->l2)) {
        fail(err, errlen, "l2 must be a finite number >= 0");
        return -1;
    }

    double *z = malloc((size_t)p * n * sizeof(*z));
    double *w = malloc(n * sizeof(*w));
    double *prob = malloc(n * sizeof(*prob));
    int rc = -1;
    if (!z || !w || !prob) {
        fail(err, errlen, "out of memory for %zu rows", n);
        goto out;
    }

    /* the inputs' values, derived ones by the agent's own function */
    for (size_t i = 0; i < n; i++) {
        double *v = z + i * (size_t)p;
        memcpy(v, x + i * (size_t)p, sizeof(double) * (size_t)p);
        pdm_model_derive(m, v);
        for (int k = 0; k < p; k++) {
            if (!isfinite(v[k])) {
                fail(err, errlen, "%s%d%sinput '%s' is %g (derived values must stay finite)",
                     line ? "line " : "row ", line ? line[i] : (int)i + 1, ": ", m->inputs[k].name,
                     v[k]);
                goto out;
            }
        }
    }
    /* standardise: mean and population standard deviation (two passes, for accuracy) */
    for (int k = 0; k < p; k++) {
        struct pdm_model_input *in = &m->inputs[k];
        double sum = 0, ss = 0;
        for (size_t i = 0; i < n; i++)
            sum += z[i * (size_t)p + (size_t)k];
        double c = sum / (double)n;
        for (size_t i = 0; i < n; i++) {
            double dv = z[i * (size_t)p + (size_t)k] - c;
            ss += dv * dv;
        }
        double s = sqrt(ss / (double)n);
        if (!(s > 1e-12 * (1.0 + fabs(c)))) {
            fail(err, errlen,
                 "input '%s' is constant (%g) in the training rows: it cannot be standardised "
                 "and tells nothing; leave it out",
                 in->name, c);
            goto out;
        }
        in->center = c;
        in->scale = s;
        for (size_t i = 0; i < n; i++)
            z[i * (size_t)p + (size_t)k] = (z[i * (size_t)p + (size_t)k] - c) / s;
    }

    switch (t->class_weight) {
    case PDM_CW_NONE:
        info->w_neg = info->w_pos = 1.0;
        break;
    case PDM_CW_BALANCED:
        info->w_pos = (double)n / (2.0 * (double)pos);
        info->w_neg = (double)n / (2.0 * (double)(n - pos));
        break;
    case PDM_CW_FIXED:
        info->w_neg = 1.0;
        info->w_pos = t->pos_weight;
        break;
    }
    for (size_t i = 0; i < n; i++)
        w[i] = y[i] > 0.5 ? info->w_pos : info->w_neg;

    /* start from the weighted base rate: intercept only */
    double beta[NP] = {0}, sw1 = 0, sw0 = 0;
    for (size_t i = 0; i < n; i++) {
        if (y[i] > 0.5)
            sw1 += w[i];
        else
            sw0 += w[i];
    }
    beta[0] = log(sw1 / sw0);
    struct problem pr = {.z = z, .y = y, .w = w, .n = n, .p = p, .l2 = t->l2};
    if (newton(&pr, beta, max_iter > 0 ? max_iter : PDM_FIT_DEFAULT_MAX_ITER, info, err, errlen) <
        0)
        goto out;
    m->intercept = beta[0];
    for (int k = 0; k < p; k++)
        m->inputs[k].weight = beta[k + 1];

    if (!t->fixed_thresholds) {
        pdm_score_rows(m, x, n, prob);
        int trc = pdm_choose_thresholds(prob, y, n, &m->warning, &m->critical, &m->clear);
        if (trc < 0) {
            fail(err, errlen, "cannot choose thresholds: %s", strerror(-trc));
            goto out;
        }
    }
    rc = 0;
out:
    free(z);
    free(w);
    free(prob);
    return rc;
}
