/* Fitting the logistic model (model.h) to labelled rows: pdmctl train, and pdmctl eval --folds
 * which refits on k-1 folds. Offline only; never linked into the agent's scoring path.
 *
 * Rows are full model width: x[i * n_inputs + k] is input k of row i for base inputs (a sensor
 * statistic or age); derived inputs' slots are ignored and computed by pdm_model_derive(), the
 * function the agent scores with.
 *
 * Each input is standardised with the mean and the population standard deviation of the
 * training rows (center, scale). The weights and intercept minimise
 *
 *   sum_i w_i * (log(1 + exp(eta_i)) - y_i * eta_i) + l2 / 2 * sum_k weight_k^2
 *
 * (eta_i the logit of row i; the intercept is not penalised; w_i = 1 for negatives and the class
 * weight for positives, or n / (2 n_class) for both classes when balanced: scikit-learn's
 * LogisticRegression with C = 1 / l2 minimises the same). The solver is Newton's method (IRLS)
 * with a Cholesky solve, Levenberg damping when the Hessian is not positive definite, and a
 * backtracking line search; it stops when a step moves no coefficient by more than 1e-9 of the
 * largest, and fails with a reason after max_iter steps, or when a coefficient passes
 * PDM_FIT_MAX_WEIGHT per standard deviation (both mean separable classes and l2 = 0, typically).
 *
 * Memory: 8 * n * n_inputs bytes for the standardised rows plus n doubles, freed on return. */
#ifndef PDM_FIT_H
#define PDM_FIT_H

#include <stddef.h>

#include "models/model.h"

#define PDM_FIT_DEFAULT_MAX_ITER 100
#define PDM_FIT_MAX_WEIGHT       1000.0 /* a larger |coefficient| means separable classes */

struct pdm_fit_info {
    size_t n, positives;
    double w_neg, w_pos; /* weight of a negative / positive row */
    int iterations;      /* Newton steps taken */
    double objective;    /* the penalised loss at the end */
    double last_step;    /* largest coefficient change of the last step */
    double grad_max;     /* largest gradient component at the end */
};

/* Fits center, scale, weight of every input and the intercept of m (whose inputs, derive
 * expressions, stat and window are set and linked). t gives l2 and the class weights, and
 * unless t->fixed_thresholds the thresholds are chosen from the fitted scores
 * (pdm_choose_thresholds). line[i] (may be NULL) is row i's line in the source, for messages.
 * Returns 0, or -1 with the reason in err. */
int pdm_fit(struct pdm_model *m, const struct pdm_model_train *t, const double *x, const double *y,
            const int *line, size_t n, int max_iter, struct pdm_fit_info *info, char *err,
            size_t errlen);

/* p[i] = pdm_model_score(m, row i).probability for every row. */
void pdm_score_rows(const struct pdm_model *m, const double *x, size_t n, double *p);

/* Full-width rows from base columns: base[i * d + j] is the j-th base input (inputs that are
 * neither derived, in model order) of row i. Returns a malloc'd n * n_inputs array or NULL. */
double *pdm_model_rows(const struct pdm_model *m, const double *base, size_t n, size_t d);

#endif
