/* The offline side of the model: CSV reading (train/csv.c), metrics and folds
 * (train/metrics.c) and the fit (train/fit.c), against values worked out by hand or checked
 * independently here (the fitted weights must zero the gradient of the objective computed by
 * this test's own code). */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "train/csv.h"
#include "train/fit.h"
#include "train/metrics.h"

static char g_path[64];

static const char *write_tmp(const char *text, size_t len)
{
    snprintf(g_path, sizeof(g_path), "/tmp/test_train_XXXXXX");
    int fd = mkstemp(g_path);
    if (fd < 0 || write(fd, text, len) != (ssize_t)len) {
        perror("mkstemp");
        exit(2);
    }
    close(fd);
    return g_path;
}

/* Reads text as a CSV; the report's text lands in *msgs (caller frees). */
static int read_csv(const char *text, struct pdm_csv *csv, char **msgs, int *errors)
{
    const char *path = write_tmp(text, strlen(text));
    size_t len;
    FILE *ms = open_memstream(msgs, &len);
    struct pdm_csv_report r = {.out = ms};
    int rc = pdm_csv_read(path, csv, &r);
    fclose(ms);
    *errors = r.errors;
    return rc;
}

/* The message text with the temporary path replaced by "F". */
static char *unpath(const char *msgs)
{
    static char out[4096];
    size_t n = 0, pl = strlen(g_path);
    for (const char *p = msgs; *p && n + 2 < sizeof(out);) {
        if (strncmp(p, g_path, pl) == 0) {
            out[n++] = 'F';
            p += pl;
        } else {
            out[n++] = *p++;
        }
    }
    out[n] = '\0';
    return out;
}

static void test_csv_format(void)
{
    /* BOM, CRLF, a quoted header with a comma, quoted values with "" and a line break, blanks
     * around a header name, a blank line, no newline at the end */
    const char text[] = "\xEF\xBB\xBF"
                        "id,\"Temp, inlet [degC]\", note ,y\r\n"
                        "1,20.5,\"said \"\"hi\"\"\",0\r\n"
                        "\r\n"
                        "2,\"21.5\",\"two\r\nlines\",1\r\n"
                        "3,22.5,,0";
    struct pdm_csv csv;
    char *msgs = NULL;
    int errors;
    CHECK_INT(read_csv(text, &csv, &msgs, &errors), 0);
    CHECK_INT(errors, 0);
    CHECK_STR(msgs, "");
    CHECK_INT(csv.n_cols, 4);
    CHECK_INT(csv.n_rows, 3);
    CHECK_INT(pdm_csv_column(&csv, "Temp, inlet [degC]"), 1);
    CHECK_INT(pdm_csv_column(&csv, "note"), 2);
    CHECK_INT(pdm_csv_column(&csv, "id"), 0); /* the BOM is not part of the first name */
    CHECK_STR(pdm_csv_field(&csv, 0, 2), "said \"hi\"");
    CHECK_STR(pdm_csv_field(&csv, 1, 1), "21.5");
    CHECK_STR(pdm_csv_field(&csv, 1, 2), "two\r\nlines");
    CHECK_STR(pdm_csv_field(&csv, 2, 2), "");
    CHECK_STR(pdm_csv_field(&csv, 2, 3), "0");
    CHECK_INT(csv.line[0], 2);
    CHECK_INT(csv.line[1], 4);
    CHECK_INT(csv.line[2], 6); /* the quoted line break counts */

    const char *cols[] = {"Temp, inlet [degC]", "id"};
    struct pdm_dataset ds;
    struct pdm_csv_report r = {0};
    CHECK_INT(pdm_dataset_from_csv(&csv, "y", cols, 2, &ds, &r), 0);
    CHECK_INT(ds.n, 3);
    CHECK_NEAR(ds.x[0], 20.5, 0);
    CHECK_NEAR(ds.x[1], 1, 0);
    CHECK_NEAR(ds.x[2], 21.5, 0);
    CHECK_NEAR(ds.y[1], 1, 0);
    CHECK_INT(ds.line[2], 6);
    pdm_dataset_free(&ds);
    pdm_csv_free(&csv);
    free(msgs);
    unlink(g_path);
}

static void test_csv_errors(void)
{
    /* every problem in one run, each with its line */
    const char text[] = "a,b,y\n"      /* 1 */
                        "1,2,0\n"      /* 2 */
                        "1,2\n"        /* 3: a field short */
                        "x,2,1\n"      /* 4: not a number */
                        "1, ,0\n"      /* 5: empty */
                        "1,2,2\n"      /* 6: label 2 */
                        "\"1\"x,2,0\n" /* 7: junk after a quote */
                        "1,inf,yes\n"  /* 8: infinite, label yes */
                        "1e400,2,1\n"; /* 9: overflow */
    struct pdm_csv csv;
    char *msgs = NULL;
    int errors;
    CHECK_INT(read_csv(text, &csv, &msgs, &errors), 0); /* a table, with rows left out */
    CHECK_INT(csv.n_rows, 6);
    const char *cols[] = {"a", "b"};
    struct pdm_dataset ds;
    size_t len;
    char *more = NULL;
    FILE *ms = open_memstream(&more, &len);
    struct pdm_csv_report r = {.out = ms, .errors = errors};
    CHECK_INT(pdm_dataset_from_csv(&csv, "y", cols, 2, &ds, &r), -1);
    fclose(ms);
    char all[4096];
    snprintf(all, sizeof(all), "%s%s", msgs, more);
    CHECK_STR(unpath(all), "F:3: 2 fields, but the header has 3\n"
                           "F:7: unexpected 'x' after the closing quote of field 1\n"
                           "F:4: column 'a': 'x' is not a number\n"
                           "F:5: column 'b' is empty\n"
                           "F:6: label column 'y' must be 0 or 1, got '2'\n"
                           "F:8: column 'b': 'inf' is not a number\n"
                           "F:8: label column 'y' must be 0 or 1, got 'yes'\n"
                           "F:9: column 'a': '1e400' is not a number\n");
    CHECK_INT(r.errors, 8);
    pdm_dataset_free(&ds);
    free(more);
    free(msgs);

    /* a column that is not there, or there twice */
    const char *missing[] = {"c", "a"};
    msgs = NULL;
    ms = open_memstream(&msgs, &len);
    r = (struct pdm_csv_report){.out = ms};
    CHECK_INT(pdm_dataset_from_csv(&csv, "label", missing, 2, &ds, &r), -1);
    fclose(ms);
    CHECK_STR(unpath(msgs), "F:1: no column 'c' in the header (columns: 'a', 'b', 'y')\n"
                            "F:1: no column 'label' in the header (columns: 'a', 'b', 'y')\n");
    pdm_dataset_free(&ds);
    pdm_csv_free(&csv);
    free(msgs);

    CHECK_INT(read_csv("a,a,y\n1,2,0\n", &csv, &msgs, &errors), 0);
    CHECK_INT(pdm_csv_column(&csv, "a"), -2);
    pdm_csv_free(&csv);
    free(msgs);

    /* no table at all */
    CHECK_INT(read_csv("a,\"b\n1,2\n", &csv, &msgs, &errors), -1);
    CHECK_STR(unpath(msgs), "F:1: a quoted field is not closed\n");
    pdm_csv_free(&csv);
    free(msgs);
    CHECK_INT(read_csv("", &csv, &msgs, &errors), -1);
    CHECK_STR(unpath(msgs), "F: empty file: expected a header row naming the columns\n");
    pdm_csv_free(&csv);
    free(msgs);
    CHECK_INT(read_csv("a,b\r\n\r\n", &csv, &msgs, &errors), -1);
    CHECK_STR(unpath(msgs), "F: no data rows after the header\n");
    pdm_csv_free(&csv);
    free(msgs);
    unlink(g_path);

    /* more than PDM_CSV_MAX_PRINTED problems: the rest are counted */
    char big[4096] = "a\n";
    for (int i = 0; i < 30; i++)
        strcat(big, "x\n");
    CHECK_INT(read_csv(big, &csv, &msgs, &errors), 0);
    const char *only_a[] = {"a"};
    ms = open_memstream(&more, &len);
    r = (struct pdm_csv_report){.out = ms};
    CHECK_INT(pdm_dataset_from_csv(&csv, NULL, only_a, 1, &ds, &r), -1);
    pdm_csv_report_end(&r, "F");
    fclose(ms);
    CHECK_INT(r.errors, 30);
    CHECK(strstr(more, "F: ... and 10 more problems\n") != NULL);
    pdm_dataset_free(&ds);
    pdm_csv_free(&csv);
    free(more);
    free(msgs);
    unlink(g_path);
}

static void test_metrics(void)
{
    /* scores with ties; positives at 0.9, 0.7 (tied with a negative), 0.2
     *   p: 0.9 0.8 0.7 0.7 0.4 0.2 0.1
     *   y:  1   0   1   0   0   1   0
     * AUC: pairs (pos, neg) = 3 * 4 = 12; pos 0.9 beats 4; pos 0.7 beats 0.4 and 0.1, ties
     * 0.7 (1/2), loses to 0.8: 2.5; pos 0.2 beats 0.1: 1. AUC = 7.5 / 12 = 0.625.
     * AP: thresholds 0.9 (P 1/1, R 1/3), 0.8 (no new positive), 0.7 (tp 2, fp 2: P 2/4, R 2/3),
     * 0.4, 0.2 (tp 3 of 6: P 1/2, R 1): AP = 1/3 * 1 + 1/3 * 1/2 + 1/3 * 1/2 = 2/3. */
    double p[] = {0.9, 0.8, 0.7, 0.7, 0.4, 0.2, 0.1};
    double y[] = {1, 0, 1, 0, 0, 1, 0};
    struct pdm_metrics mt;
    CHECK_INT(pdm_metrics_compute(p, y, 7, 0.7, 0.85, &mt), 0);
    CHECK_INT(mt.n, 7);
    CHECK_INT(mt.positives, 3);
    CHECK_NEAR(mt.auc, 0.625, 1e-15);
    CHECK_NEAR(mt.ap, 2.0 / 3.0, 1e-15);
    /* at 0.7: predicted 0.9 0.8 0.7 0.7 -> tp 2, fp 2, fn 1: P 0.5, R 2/3, F1 4/7 */
    CHECK_INT(mt.warning.tp, 2);
    CHECK_INT(mt.warning.fp, 2);
    CHECK_INT(mt.warning.fn, 1);
    CHECK_NEAR(mt.warning.f1, 4.0 / 7.0, 1e-15);
    /* at 0.85: only 0.9 -> P 1, R 1/3, F1 0.5 */
    CHECK_NEAR(mt.critical.precision, 1.0, 0);
    CHECK_NEAR(mt.critical.f1, 0.5, 1e-15);
    /* calibration: 0.7 0.7 in [0.7, 0.8), 0.9 in the last bin */
    CHECK_INT(mt.calib[7].n, 2);
    CHECK_INT(mt.calib[7].positives, 1);
    CHECK_NEAR(mt.calib[7].mean_p, 0.7, 1e-15);
    CHECK_INT(mt.calib[9].n, 1);
    CHECK_INT(mt.calib[3].n, 0);
    double one = 1.0, yes = 1.0;
    CHECK_INT(pdm_metrics_compute(&one, &yes, 1, 0.5, 0.5, &mt), 0);
    CHECK_INT(mt.calib[9].n, 1); /* P = 1 is in the last bin */
    CHECK(isnan(mt.auc));        /* one class: no ranking to judge */

    /* all tied: AUC one half */
    double flat[] = {0.3, 0.3, 0.3, 0.3};
    double fy[] = {1, 0, 0, 1};
    CHECK_INT(pdm_metrics_compute(flat, fy, 4, 0.5, 0.5, &mt), 0);
    CHECK_NEAR(mt.auc, 0.5, 0);
    CHECK_NEAR(mt.ap, 0.5, 0);
    CHECK_NEAR(mt.warning.precision, 0, 0); /* nothing predicted positive */
    CHECK_NEAR(mt.warning.f1, 0, 0);

    /* thresholds, walking down the groups: F1 is 0.5 (at 0.9), 0.4 (0.8), 4/7 (0.7), 0.5 (0.4),
     * 2/3 (0.2: tp 3, fp 3), 0.6 (0.1). Best at "0.2 and over", halfway to 0.1: 0.15. F0.5 at or
     * over it is best for "only 0.9" (1.25 * 1/3 / (0.25 + 1/3) = 0.714), halfway to 0.8: 0.85. */
    double w, c, cl;
    CHECK_INT(pdm_choose_thresholds(p, y, 7, &w, &c, &cl), 0);
    CHECK_NEAR(w, 0.15, 1e-15);
    CHECK_NEAR(c, 0.85, 1e-15);
    CHECK_NEAR(cl, 0.75 * 0.15, 1e-15);
    CHECK_INT(pdm_choose_thresholds(p, fy, 0, &w, &c, &cl), -EINVAL);
    double zeros[] = {0, 0, 0};
    CHECK_INT(pdm_choose_thresholds(p, zeros, 3, &w, &c, &cl), -EINVAL);
}

static void test_folds(void)
{
    enum { N = 1003 };
    static double y[N];
    static int fold[N], again[N], other[N];
    int pos = 0;
    for (int i = 0; i < N; i++) {
        y[i] = (i % 29 == 3) ? 1 : 0;
        pos += (int)y[i];
    }
    CHECK_INT(pdm_stratified_folds(y, N, 5, 42, fold), 0);
    CHECK_INT(pdm_stratified_folds(y, N, 5, 42, again), 0);
    CHECK_INT(pdm_stratified_folds(y, N, 5, 43, other), 0);
    CHECK(memcmp(fold, again, sizeof(fold)) == 0); /* a seed gives the same folds */
    CHECK(memcmp(fold, other, sizeof(fold)) != 0);
    int size[5] = {0}, fp[5] = {0};
    for (int i = 0; i < N; i++) {
        CHECK(fold[i] >= 0 && fold[i] < 5);
        size[fold[i]]++;
        fp[fold[i]] += (int)y[i];
    }
    for (int f = 0; f < 5; f++) {
        CHECK_MSG(size[f] == 200 || size[f] == 201, "fold %d has %d rows", f, size[f]);
        CHECK_MSG(fp[f] == pos / 5 || fp[f] == pos / 5 + 1, "fold %d has %d positives of %d", f,
                  fp[f], pos);
    }
    /* the order is shuffled, not the first rows in fold 0 */
    int same = 0;
    for (int i = 0; i < 50; i++)
        same += fold[i] == fold[0];
    CHECK(same < 40);
    CHECK_INT(pdm_stratified_folds(y, N, 1, 42, fold), -EINVAL);
    CHECK_INT(pdm_stratified_folds(y, 10, 5, 42, fold), -EINVAL); /* 1 positive in 10 */
}

/* ---- the fit -------------------------------------------------------------------------------- */

static uint64_t rng_state = 12345;
static double uniform(void)
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return ((rng_state >> 11) + 0.5) / 9007199254740992.0;
}
static double gauss(void)
{
    return sqrt(-2 * log(uniform())) * cos(2 * M_PI * uniform());
}

/* inputs a, b (base) and ab = a * b (derived); truth: logit = -2 + 1.5 a - 1 b + 0.8 a b */
static void synth_model(struct pdm_model *m)
{
    memset(m, 0, sizeof(*m));
    snprintf(m->id, sizeof(m->id), "synth");
    const char *names[] = {"a", "b", "ab"};
    for (int k = 0; k < 3; k++) {
        snprintf(m->inputs[k].name, sizeof(m->inputs[k].name), "%s", names[k]);
        m->inputs[k].window_s = 10;
    }
    m->inputs[2].derive = PDM_DERIVE_PRODUCT;
    m->inputs[2].arg[0] = 0;
    m->inputs[2].arg[1] = 1;
    m->n_inputs = 3;
    int bad;
    char err[64];
    pdm_model_link(m, &bad, err, sizeof(err));
}

/* The gradient of the objective in fit.h, computed here from the fitted model through
 * pdm_model_score: at the optimum every component is ~0. */
static double max_gradient(const struct pdm_model *m, const struct pdm_model_train *t,
                           const double *x, const double *y, size_t n, double wpos, double wneg)
{
    double g[PDM_MODEL_MAX_INPUTS + 1] = {0};
    struct pdm_score s;
    for (size_t i = 0; i < n; i++) {
        pdm_model_score(m, x + i * m->n_inputs, &s);
        double r = (y[i] > 0.5 ? wpos : wneg) * (s.probability - y[i]);
        g[0] += r;
        for (uint32_t k = 0; k < m->n_inputs; k++)
            g[k + 1] += r * s.in[k].z;
    }
    double worst = 0;
    for (uint32_t k = 0; k <= m->n_inputs; k++) {
        if (k > 0)
            g[k] += t->l2 * m->inputs[k - 1].weight;
        if (fabs(g[k]) > worst)
            worst = fabs(g[k]);
    }
    return worst;
}

static void test_fit(void)
{
    enum { N = 20000 };
    static double x[N * 3], y[N];
    static struct pdm_model m;
    synth_model(&m);
    size_t pos = 0;
    for (size_t i = 0; i < N; i++) {
        double a = gauss(), b = gauss();
        x[i * 3] = 50 + 10 * a; /* center 50, scale 10: the fit must find these */
        x[i * 3 + 1] = b;
        double logit = -2 + 1.5 * a - 1.0 * b + 0.8 * a * b;
        y[i] = uniform() < 1 / (1 + exp(-logit)) ? 1 : 0;
        pos += (size_t)y[i];
    }
    struct pdm_model_train t;
    pdm_model_train_defaults(&t);
    t.l2 = 0;
    t.class_weight = PDM_CW_NONE;
    struct pdm_fit_info info;
    char err[256] = "";
    CHECK_INT(pdm_fit(&m, &t, x, y, NULL, N, 0, &info, err, sizeof(err)), 0);
    CHECK_STR(err, "");
    CHECK_INT(info.positives, pos);
    CHECK_MSG(info.iterations >= 3 && info.iterations <= 15, "%d Newton steps", info.iterations);
    CHECK_NEAR(m.inputs[0].center, 50, 0.3);
    CHECK_NEAR(m.inputs[0].scale, 10, 0.2);
    /* the weights are per standard deviation of each input (ab = (50 + 10 a) b mixes a and b),
     * so compare logits with the truth at two points instead */
    struct pdm_score s;
    double probe[] = {60, 1, 0}; /* a = 1, b = 1: true logit -2 + 1.5 - 1 + 0.8 = -0.7 */
    pdm_model_score(&m, probe, &s);
    CHECK_NEAR(s.logit, -0.7, 0.15);
    double probe2[] = {40, -1, 0}; /* a = -1, b = -1: -2 - 1.5 + 1 + 0.8 = -1.7 */
    pdm_model_score(&m, probe2, &s);
    CHECK_NEAR(s.logit, -1.7, 0.15);
    double gmax = max_gradient(&m, &t, x, y, N, 1, 1);
    CHECK_MSG(gmax < 1e-9 * N, "gradient %g at the fitted weights", gmax);
    /* thresholds chosen and valid for the loader */
    CHECK(m.clear > 0 && m.clear < m.warning && m.warning <= m.critical && m.critical < 1);

    /* balanced class weights and L2: still the optimum of that objective */
    t.l2 = 3;
    t.class_weight = PDM_CW_BALANCED;
    CHECK_INT(pdm_fit(&m, &t, x, y, NULL, N, 0, &info, err, sizeof(err)), 0);
    CHECK_NEAR(info.w_pos, (double)N / (2.0 * pos), 1e-12);
    CHECK_NEAR(info.w_neg, (double)N / (2.0 * (N - pos)), 1e-12);
    gmax = max_gradient(&m, &t, x, y, N, info.w_pos, info.w_neg);
    CHECK_MSG(gmax < 1e-9 * N, "gradient %g at the fitted weights (balanced, l2 3)", gmax);
    /* balanced weights (and an unpenalised intercept): the class-weighted mean of P is one
     * half, not the base rate */
    double mean_p = 0;
    for (size_t i = 0; i < N; i++) {
        pdm_model_score(&m, x + i * 3, &s);
        mean_p += (y[i] > 0.5 ? info.w_pos : info.w_neg) * s.probability / N;
    }
    CHECK_NEAR(mean_p, 0.5, 1e-9);

    /* fixed thresholds stay as they are */
    m.warning = 0.6;
    m.critical = 0.9;
    m.clear = 0.3;
    t.fixed_thresholds = 1;
    CHECK_INT(pdm_fit(&m, &t, x, y, NULL, N, 0, &info, err, sizeof(err)), 0);
    CHECK(m.warning == 0.6 && m.critical == 0.9 && m.clear == 0.3);
    t.fixed_thresholds = 0;

    /* separable without L2: refused with a reason; with L2: a finite model */
    for (size_t i = 0; i < 200; i++)
        y[i] = x[i * 3] > 50 ? 1 : 0;
    t.l2 = 0;
    CHECK_INT(pdm_fit(&m, &t, x, y, NULL, 200, 0, &info, err, sizeof(err)), -1);
    CHECK_MSG(strstr(err, "separable") != NULL, "%s", err);
    t.l2 = 1;
    CHECK_INT(pdm_fit(&m, &t, x, y, NULL, 200, 0, &info, err, sizeof(err)), 0);
    CHECK(fabs(m.inputs[0].weight) < 100);

    /* too few steps allowed: a clear failure, not a half-fitted model */
    CHECK_INT(pdm_fit(&m, &t, x, y, NULL, N, 1, &info, err, sizeof(err)), -1);
    CHECK_MSG(strstr(err, "did not converge in 1 Newton steps") != NULL, "%s", err);

    /* a constant input, or one class only */
    static double xc[100 * 3], yc[100];
    for (int i = 0; i < 100; i++) {
        xc[i * 3] = 7;
        xc[i * 3 + 1] = i;
        yc[i] = i % 2;
    }
    CHECK_INT(pdm_fit(&m, &t, xc, yc, NULL, 100, 0, &info, err, sizeof(err)), -1);
    CHECK_STR(err, "input 'a' is constant (7) in the training rows: it cannot be standardised and "
                   "tells nothing; leave it out");
    for (int i = 0; i < 100; i++)
        yc[i] = 0;
    CHECK_INT(pdm_fit(&m, &t, x, yc, NULL, 100, 0, &info, err, sizeof(err)), -1);
    CHECK_STR(err, "the label is 0 on all 100 rows: training needs both 0 and 1");
    /* a derived value that overflows names the row's line */
    int line[2] = {10, 11};
    double xo[] = {1e200, 1e200, 0, 2, 3, 0};
    double yo[] = {0, 1};
    CHECK_INT(pdm_fit(&m, &t, xo, yo, line, 2, 0, &info, err, sizeof(err)), -1);
    CHECK_STR(err, "line 10: input 'ab' is inf (derived values must stay finite)");

    /* pdm_model_rows puts base columns in model order, derived slots zero */
    struct pdm_model rows_m;
    synth_model(&rows_m);
    double base[] = {1, 2, 3, 4};
    double *full = pdm_model_rows(&rows_m, base, 2, 2);
    CHECK(full != NULL);
    if (full) {
        CHECK_NEAR(full[0], 1, 0);
        CHECK_NEAR(full[1], 2, 0);
        CHECK_NEAR(full[2], 0, 0);
        CHECK_NEAR(full[3], 3, 0);
        CHECK_NEAR(full[4], 4, 0);
    }
    free(full);
}

int main(void)
{
    test_csv_format();
    test_csv_errors();
    test_metrics();
    test_folds();
    test_fit();
    return check_summary("test_train");
}
