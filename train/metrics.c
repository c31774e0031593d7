/* Ranking and threshold metrics (definitions in metrics.h). */
#include "metrics.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

struct scored {
    double p, y;
};

static int by_p_desc(const void *a, const void *b)
{
    double pa = ((const struct scored *)a)->p, pb = ((const struct scored *)b)->p;
    return pa < pb ? 1 : pa > pb ? -1 : 0;
}

/* A copy of (p, y) sorted by p, highest first; NULL when out of memory. */
static struct scored *sorted_desc(const double *p, const double *y, size_t n)
{
    struct scored *s = malloc((n ? n : 1) * sizeof(*s));
    if (!s)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        s[i].p = p[i];
        s[i].y = y[i];
    }
    qsort(s, n, sizeof(*s), by_p_desc);
    return s;
}

void pdm_prf_at(const double *p, const double *y, size_t n, double t, struct pdm_prf *out)
{
    memset(out, 0, sizeof(*out));
    out->threshold = t;
    for (size_t i = 0; i < n; i++) {
        int pos = p[i] >= t;
        if (pos && y[i] > 0.5)
            out->tp++;
        else if (pos)
            out->fp++;
        else if (y[i] > 0.5)
            out->fn++;
    }
    out->precision = out->tp + out->fp ? (double)out->tp / (double)(out->tp + out->fp) : 0.0;
    out->recall = out->tp + out->fn ? (double)out->tp / (double)(out->tp + out->fn) : 0.0;
    out->f1 = out->precision + out->recall > 0
                  ? 2 * out->precision * out->recall / (out->precision + out->recall)
                  : 0.0;
}

int pdm_metrics_compute(const double *p, const double *y, size_t n, double warning, double critical,
                        struct pdm_metrics *out)
{
    memset(out, 0, sizeof(*out));
    out->n = n;
    struct scored *s = sorted_desc(p, y, n);
    if (!s)
        return -ENOMEM;
    size_t pos = 0;
    for (size_t i = 0; i < n; i++)
        pos += s[i].y > 0.5;
    size_t neg = n - pos;
    out->positives = pos;

    /* One pass over groups of tied scores, highest first. AUC: each negative in a group
     * outranks the positives seen in earlier groups and ties with those in its own (half).
     * AP: precision at each group's end, weighted by the recall that group adds. */
    double auc_num = 0, ap = 0;
    size_t tp = 0, fp = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i, gp = 0, gn = 0;
        while (j < n && s[j].p == s[i].p) {
            if (s[j].y > 0.5)
                gp++;
            else
                gn++;
            j++;
        }
        auc_num += (double)gn * ((double)tp + 0.5 * (double)gp);
        tp += gp;
        fp += gn;
        if (gp && pos)
            ap += ((double)gp / (double)pos) * ((double)tp / (double)(tp + fp));
        i = j;
    }
    out->auc = pos && neg ? auc_num / ((double)pos * (double)neg) : NAN;
    out->ap = pos ? ap : NAN;
    free(s);

    pdm_prf_at(p, y, n, warning, &out->warning);
    pdm_prf_at(p, y, n, critical, &out->critical);

    for (int b = 0; b < PDM_CALIB_BINS; b++) {
        out->calib[b].lo = (double)b / PDM_CALIB_BINS;
        out->calib[b].hi = (double)(b + 1) / PDM_CALIB_BINS;
    }
    for (size_t i = 0; i < n; i++) {
        int b = (int)(p[i] * PDM_CALIB_BINS);
        if (!(b >= 0)) /* NaN */
            continue;
        if (b >= PDM_CALIB_BINS)
            b = PDM_CALIB_BINS - 1; /* P = 1 belongs to the last bin */
        out->calib[b].n++;
        out->calib[b].positives += y[i] > 0.5;
        out->calib[b].mean_p += p[i];
    }
    for (int b = 0; b < PDM_CALIB_BINS; b++)
        if (out->calib[b].n)
            out->calib[b].mean_p /= (double)out->calib[b].n;
    return 0;
}

static double clamp_threshold(double t)
{
    return t < 1e-6 ? 1e-6 : t > 1 - 1e-6 ? 1 - 1e-6 : t;
}

int pdm_choose_thresholds(const double *p, const double *y, size_t n, double *warning,
                          double *critical, double *clear)
{
    size_t pos = 0;
    for (size_t i = 0; i < n; i++)
        pos += y[i] > 0.5;
    if (pos == 0 || pos == n)
        return -EINVAL;
    struct scored *s = sorted_desc(p, y, n);
    if (!s)
        return -ENOMEM;

    /* Walk the groups of tied scores from the top: "alert at or over this group" lets through
     * tp true and fp false alerts. The best F1 group gives warning; the best F0.5 group at or
     * before it gives critical. */
    double best_f1 = -1, t_warn = 0.5, t_crit = 0.5;
    double f05_at[2] = {-1, 0}; /* best F0.5 so far: value, threshold */
    size_t tp = 0, fp = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && s[j].p == s[i].p) {
            if (s[j].y > 0.5)
                tp++;
            else
                fp++;
            j++;
        }
        double lower = j < n ? s[j].p : s[i].p;
        double t = 0.5 * (s[i].p + lower);
        double prec = (double)tp / (double)(tp + fp), rec = (double)tp / (double)pos;
        double f1 = prec + rec > 0 ? 2 * prec * rec / (prec + rec) : 0;
        double f05 = prec + rec > 0 ? 1.25 * prec * rec / (0.25 * prec + rec) : 0;
        if (f05 > f05_at[0]) {
            f05_at[0] = f05;
            f05_at[1] = t;
        }
        if (f1 > best_f1) {
            best_f1 = f1;
            t_warn = t;
            t_crit = f05_at[1];
        }
        i = j;
    }
    free(s);
    *warning = clamp_threshold(t_warn);
    *critical = clamp_threshold(t_crit);
    if (*critical < *warning)
        *critical = *warning;
    *clear = 0.75 * *warning;
    return 0;
}

/* splitmix64 (Steele, Lea, Flood 2014): a tiny generator with a fixed, portable sequence. */
static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Fisher-Yates with an unbiased bound (rejection of the short last range). */
static void shuffle(size_t *a, size_t n, uint64_t *state)
{
    for (size_t i = n; i > 1; i--) {
        uint64_t bound = (uint64_t)i, limit = UINT64_MAX - UINT64_MAX % bound, r;
        do
            r = splitmix64(state);
        while (r >= limit);
        size_t j = (size_t)(r % bound), tmp = a[i - 1];
        a[i - 1] = a[j];
        a[j] = tmp;
    }
}

int pdm_stratified_folds(const double *y, size_t n, int k, uint64_t seed, int *fold)
{
    if (k < 2)
        return -EINVAL;
    size_t pos = 0;
    for (size_t i = 0; i < n; i++)
        pos += y[i] > 0.5;
    if (pos < (size_t)k || n - pos < (size_t)k)
        return -EINVAL;
    size_t *idx = malloc(n * sizeof(*idx));
    if (!idx)
        return -ENOMEM;
    size_t np = 0, nn = pos;
    for (size_t i = 0; i < n; i++) {
        if (y[i] > 0.5)
            idx[np++] = i;
        else
            idx[nn++] = i;
    }
    uint64_t state = seed;
    shuffle(idx, pos, &state);
    shuffle(idx + pos, n - pos, &state);
    /* dealt round-robin across both classes in turn, so fold sizes differ by at most one */
    for (size_t r = 0; r < n; r++)
        fold[idx[r]] = (int)(r % (size_t)k);
    free(idx);
    return 0;
}
