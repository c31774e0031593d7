/* How good a fault model is on labelled rows (pdmctl train / eval; never the agent).
 *
 * p[i] is the predicted probability of row i, y[i] its label (0 or 1). Failures are rare, so
 * accuracy says nothing (always "no failure" is right 97 % of the time on AI4I): these are the
 * figures that do. An alert fires when P >= threshold, so "predicted positive" is p >= t here. */
#ifndef PDM_METRICS_H
#define PDM_METRICS_H

#include <stddef.h>
#include <stdint.h>

#define PDM_CALIB_BINS 10 /* equal-width bins of predicted P: [0, 0.1), ..., [0.9, 1] */

struct pdm_prf {
    double threshold;
    double precision, recall, f1; /* precision is 0 when nothing is predicted positive */
    size_t tp, fp, fn;
};

struct pdm_calib_bin {
    double lo, hi;
    size_t n, positives;
    double mean_p; /* mean predicted P of the rows in the bin (0 when empty) */
};

struct pdm_metrics {
    size_t n, positives;
    double auc; /* ROC-AUC, tied scores counted as half (Mann-Whitney); NaN with one class */
    double ap;  /* average precision: sum over thresholds of (R_k - R_k-1) * P_k, as
                 * scikit-learn computes it; NaN without positives */
    struct pdm_prf warning, critical;
    struct pdm_calib_bin calib[PDM_CALIB_BINS];
};

/* All of the above at the two thresholds. 0, or -ENOMEM (it sorts a copy). */
int pdm_metrics_compute(const double *p, const double *y, size_t n, double warning, double critical,
                        struct pdm_metrics *out);

/* Precision, recall and F1 of "p >= t". */
void pdm_prf_at(const double *p, const double *y, size_t n, double t, struct pdm_prf *out);

/* Alert thresholds from in-sample scores: warning maximises F1, critical maximises F0.5
 * (precision counts more: a critical alert should rarely be wrong) among thresholds at or over
 * warning, clear = 0.75 * warning. Each sits halfway between the lowest score it lets through
 * and the next lower score, and within [1e-6, 1 - 1e-6]. 0, -EINVAL without both classes, or
 * -ENOMEM. */
int pdm_choose_thresholds(const double *p, const double *y, size_t n, double *warning,
                          double *critical, double *clear);

/* Stratified k-fold split: fold[i] in 0..k-1, positives and negatives each shuffled with a
 * splitmix64 generator started from seed (so a seed gives the same folds on every machine) and
 * dealt round-robin, so fold sizes and positive counts differ by at most one. 0, -EINVAL (k < 2,
 * or fewer than k rows of a class), or -ENOMEM. */
int pdm_stratified_folds(const double *y, size_t n, int k, uint64_t seed, int *fold);

#endif
