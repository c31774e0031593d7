/* pdmctl eval --csv FILE --label COLUMN --model MODEL [--folds K] [--seed N] [--json]
 *             [--scores FILE] [--inputs NAME=COLUMN,...] [--l2 X] [--class-weight W]
 *
 * Scores a labelled CSV with a model file, by the agent's own function (pdm_model_score), and
 * reports ROC-AUC, average precision, precision/recall/F1 at the model's warning and critical
 * thresholds and a calibration table. With --folds K it cross-validates instead: stratified
 * folds from a fixed seed, the model refitted on K-1 folds with the settings recorded in its
 * [train] section, scored on the fold held out. */
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/json.h"
#include "train/fit.h"
#include "train/metrics.h"
#include "cli.h"
#include "modeldata.h"
#include "pdmctl.h"

#define SUB          "eval"
#define CMD          "pdmctl " SUB
#define DEFAULT_SEED 20200601u /* the folds of the figures in docs/MODELS.md */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: pdmctl eval --csv FILE --label COLUMN --model MODEL [--folds K] [--seed N]\n"
            "                   [--json] [--scores FILE] [--inputs NAME=COLUMN,...]\n"
            "                   [--l2 X] [--class-weight W]\n"
            "  Scores every row of FILE with MODEL exactly as the agent does and prints ROC-AUC,\n"
            "  average precision, precision/recall/F1 at the model's warning and critical\n"
            "  thresholds, and a calibration table (predicted P against the observed rate).\n"
            "  --folds K      stratified K-fold cross-validation instead (2..20): the model is\n"
            "                 refitted on K-1 folds as its [train] section says (l2, class\n"
            "                 weights, thresholds) and scored on the fold left out; per fold and\n"
            "                 mean +- sd (sample standard deviation)\n"
            "  --seed N       the folds' shuffle (default %u; the same N gives the same folds)\n"
            "  --json         one JSON object (auc, ap, f1, precision, recall, ...)\n"
            "  --scores FILE  every row's probability as CSV: line,label,p[,fold]\n"
            "  --inputs ...   which column feeds an input, where the model's 'column' keys do\n"
            "                 not say or are wrong (default: the recorded column, else the\n"
            "                 input's name)\n"
            "  --l2, --class-weight   refit with these instead of the recorded settings\n"
            "exit status: 0 ok, 1 bad data or a fold that does not fit, 2 bad command line,\n"
            "  78 the model does not load\n",
            DEFAULT_SEED);
}

static void jnum(double v)
{
    pdm_json_fnum(stdout, v);
}

static void jstr(const char *s)
{
    pdm_json_fstr(stdout, s);
}

static void json_prf(const char *key, const struct pdm_prf *r)
{
    printf(",\"%s\":{\"threshold\":", key);
    jnum(r->threshold);
    printf(",\"precision\":");
    jnum(r->precision);
    printf(",\"recall\":");
    jnum(r->recall);
    printf(",\"f1\":");
    jnum(r->f1);
    printf(",\"tp\":%zu,\"fp\":%zu,\"fn\":%zu}", r->tp, r->fp, r->fn);
}

static void json_calib(const struct pdm_metrics *mt)
{
    printf(",\"calibration\":[");
    for (int b = 0; b < PDM_CALIB_BINS; b++) {
        const struct pdm_calib_bin *c = &mt->calib[b];
        printf("%s{\"lo\":", b ? "," : "");
        jnum(c->lo);
        printf(",\"hi\":");
        jnum(c->hi);
        printf(",\"rows\":%zu,\"positives\":%zu,\"mean_p\":", c->n, c->positives);
        jnum(c->n ? c->mean_p : NAN);
        printf(",\"observed\":");
        jnum(c->n ? (double)c->positives / (double)c->n : NAN);
        printf("}");
    }
    printf("]");
}

static void text_calib(const struct pdm_metrics *mt)
{
    printf("calibration (predicted P against the observed failure rate):\n");
    printf("  %-9s %8s %9s %8s %9s\n", "P", "rows", "failures", "mean P", "observed");
    for (int b = 0; b < PDM_CALIB_BINS; b++) {
        const struct pdm_calib_bin *c = &mt->calib[b];
        if (!c->n) {
            printf("  %.1f-%.1f %8s %9s %8s %9s\n", c->lo, c->hi, "0", "-", "-", "-");
            continue;
        }
        printf("  %.1f-%.1f %8zu %9zu %8.3f %9.3f\n", c->lo, c->hi, c->n, c->positives, c->mean_p,
               (double)c->positives / (double)c->n);
    }
}

static void text_prf(const char *name, const struct pdm_prf *r)
{
    printf("at %-8s P >= %-8.4g precision %.4f  recall %.4f  F1 %.4f  (%zu true, %zu false "
           "alerts, %zu failures missed)\n",
           name, r->threshold, r->precision, r->recall, r->f1, r->tp, r->fp, r->fn);
}

struct fold_result {
    size_t n, positives;
    struct pdm_metrics mt;
    double warning, critical;
    int iterations;
};

static void mean_sd(const struct fold_result *fr, int k, size_t off, double *mean, double *sd)
{
    double s = 0, ss = 0;
    for (int f = 0; f < k; f++)
        s += *(const double *)((const char *)&fr[f] + off);
    *mean = s / k;
    for (int f = 0; f < k; f++) {
        double d = *(const double *)((const char *)&fr[f] + off) - *mean;
        ss += d * d;
    }
    *sd = k > 1 ? sqrt(ss / (k - 1)) : 0;
}

#define FR_OFF(field) offsetof(struct fold_result, field), 0, 0

/* Refits on every fold but f and scores fold f into p; fills fr. */
static int run_folds(const struct pdm_model *model, const struct pdm_model_train *t,
                     const double *x, const double *y, const int *line, size_t n, int k,
                     const int *fold, double *p, struct fold_result *fr)
{
    size_t w = model->n_inputs;
    double *xt = malloc(n * w * sizeof(*xt)), *yt = malloc(n * sizeof(*yt));
    double *xh = malloc(n * w * sizeof(*xh)), *yh = malloc(n * sizeof(*yh));
    double *ph = malloc(n * sizeof(*ph));
    int *lt = malloc(n * sizeof(*lt));
    size_t *hi = malloc(n * sizeof(*hi));
    static struct pdm_model m;
    int rc = -1;
    if (!xt || !yt || !xh || !yh || !ph || !lt || !hi) {
        fprintf(stderr, CMD ": out of memory for %zu rows\n", n);
        goto out;
    }
    for (int f = 0; f < k; f++) {
        size_t nt = 0, nh = 0;
        for (size_t i = 0; i < n; i++) {
            if (fold[i] == f) {
                memcpy(xh + nh * w, x + i * w, w * sizeof(double));
                yh[nh] = y[i];
                hi[nh++] = i;
            } else {
                memcpy(xt + nt * w, x + i * w, w * sizeof(double));
                yt[nt] = y[i];
                lt[nt++] = line[i];
            }
        }
        m = *model; /* inputs, derive expressions, fixed thresholds; the numbers are refitted */
        struct pdm_fit_info info;
        char err[512];
        if (pdm_fit(&m, t, xt, yt, lt, nt, PDM_FIT_DEFAULT_MAX_ITER, &info, err, sizeof(err)) < 0) {
            fprintf(stderr, CMD ": fold %d of %d: %s\n", f + 1, k, err);
            goto out;
        }
        pdm_score_rows(&m, xh, nh, ph);
        for (size_t j = 0; j < nh; j++)
            p[hi[j]] = ph[j];
        fr[f].n = nh;
        fr[f].warning = m.warning;
        fr[f].critical = m.critical;
        fr[f].iterations = info.iterations;
        if (pdm_metrics_compute(ph, yh, nh, m.warning, m.critical, &fr[f].mt) < 0) {
            fprintf(stderr, CMD ": out of memory\n");
            goto out;
        }
        fr[f].positives = fr[f].mt.positives;
    }
    rc = 0;
out:
    free(xt);
    free(yt);
    free(xh);
    free(yh);
    free(ph);
    free(lt);
    free(hi);
    return rc;
}

static int write_scores(const char *path, const double *p, const double *y, const int *line,
                        const int *fold, size_t n)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, CMD ": cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    fprintf(f, "line,label,p%s\n", fold ? ",fold" : "");
    for (size_t i = 0; i < n; i++) {
        fprintf(f, "%d,%d,%.17g", line[i], y[i] > 0.5, p[i]);
        if (fold)
            fprintf(f, ",%d", fold[i] + 1);
        fputc('\n', f);
    }
    if (fclose(f) != 0) {
        fprintf(stderr, CMD ": cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

int cmd_eval(int argc, char **argv)
{
    const char *csv = NULL, *label = NULL, *model_path = NULL, *scores = NULL;
    const char *cw_arg = NULL;
    int json = 0, have_l2 = 0;
    double l2 = 0;
    long k = 0;
    unsigned long long seed = DEFAULT_SEED;
    struct input_map maps[PDM_MODEL_MAX_INPUTS];
    int n_maps = 0;

    enum {
        O_CSV = 256,
        O_LABEL,
        O_SCORES,
        O_L2,
        O_CLASS_WEIGHT,
        O_INPUTS,
        O_FOLDS,
        O_SEED,
        O_JSON,
        O_HELP
    };
    static const struct option longopts[] = {
        {"csv", required_argument, 0, O_CSV},
        {"label", required_argument, 0, O_LABEL},
        {"model", required_argument, 0, 'm'},
        {"scores", required_argument, 0, O_SCORES},
        {"l2", required_argument, 0, O_L2},
        {"class-weight", required_argument, 0, O_CLASS_WEIGHT},
        {"inputs", required_argument, 0, O_INPUTS},
        {"folds", required_argument, 0, O_FOLDS},
        {"seed", required_argument, 0, O_SEED},
        {"json", no_argument, 0, O_JSON},
        {"help", no_argument, 0, O_HELP},
        {0, 0, 0, 0},
    };
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":hm:", longopts, NULL)) != -1) {
        const char *v = optarg;
        int bad = 0;
        switch (c) {
        case O_CSV:
            csv = v;
            break;
        case O_LABEL:
            label = v;
            break;
        case 'm':
            model_path = v;
            break;
        case O_SCORES:
            scores = v;
            break;
        case O_L2:
            /* applied over the model's [train] l2 once the model is loaded */
            bad = pdmctl_parse_double(SUB, "--l2", v, 0, 1e12, &l2);
            have_l2 = 1;
            break;
        case O_CLASS_WEIGHT:
            cw_arg = v;
            break;
        case O_INPUTS:
            bad = parse_input_list(CMD, v, maps, &n_maps, PDM_MODEL_MAX_INPUTS);
            break;
        case O_FOLDS: {
            int folds;
            if ((bad = pdmctl_parse_int(SUB, "--folds", v, 2, 20, &folds)) == 0)
                k = folds;
            break;
        }
        case O_SEED: {
            uint64_t u;
            if ((bad = pdmctl_parse_u64(SUB, "--seed", v, UINT64_MAX, &u)) == 0)
                seed = u;
            break;
        }
        case O_JSON:
            json = 1;
            break;
        case 'h':
        case O_HELP:
            usage(stdout);
            return PDMCTL_EXIT_OK;
        default: /* ':' a value is missing, '?' unknown */
            return pdmctl_cli_bad_option(SUB, c, argv, usage);
        }
        if (bad)
            return PDMCTL_EXIT_USAGE;
    }
    if (optind < argc)
        return pdmctl_cli_extra_arg(SUB, argv[optind], usage);
    if (!csv || !label || !model_path) {
        fprintf(stderr, CMD ": --csv, --label and --model are required\n");
        usage(stderr);
        return PDMCTL_EXIT_USAGE;
    }

    static struct pdm_model m;
    static struct pdm_model_train t;
    struct pdm_diag diag = {.out = stderr};
    if (pdm_model_load_ex(model_path, &m, &t, &diag) != 0) {
        fprintf(stderr, CMD ": %s: the model does not load (errors above)\n", model_path);
        return PDMCTL_EXIT_CONFIG;
    }
    /* a model written by hand has no [train]: its thresholds were set on purpose, keep them */
    if (!t.present)
        t.fixed_thresholds = 1;
    if (have_l2)
        t.l2 = l2;
    if (cw_arg && pdm_class_weight_parse(cw_arg, &t.class_weight, &t.pos_weight) < 0) {
        fprintf(stderr, CMD ": --class-weight: expected none, balanced or a weight > 0, got '%s'\n",
                cw_arg);
        return PDMCTL_EXIT_USAGE;
    }
    /* columns: --inputs, else the model's record, else the input's own name */
    for (uint32_t i = 0; i < m.n_inputs; i++)
        if (!*t.column[i])
            snprintf(t.column[i], sizeof(t.column[i]), "%s", m.inputs[i].name);
    for (int j = 0; j < n_maps; j++) {
        int i = pdm_model_input_index(&m, maps[j].name);
        if (i < 0 || m.inputs[i].derive != PDM_DERIVE_NONE) {
            fprintf(stderr, CMD ": --inputs: model %s has no %s input '%s'\n", m.id,
                    i < 0 ? "such" : "non-derived", maps[j].name);
            return PDMCTL_EXIT_USAGE;
        }
        snprintf(t.column[i], sizeof(t.column[i]), "%s", maps[j].column);
    }

    double *x = NULL, *y = NULL, *p = NULL;
    int *line = NULL, *fold = NULL;
    size_t n = 0;
    struct fold_result *fr = NULL;
    int rc = PDMCTL_EXIT_FAIL;
    if (load_model_rows(csv, label, &m, t.column, &x, &y, &line, &n) < 0)
        goto out;
    p = malloc(n * sizeof(*p));
    if (!p) {
        fprintf(stderr, CMD ": out of memory\n");
        goto out;
    }

    struct pdm_metrics mt;
    if (k) {
        fold = malloc(n * sizeof(*fold));
        fr = calloc((size_t)k, sizeof(*fr));
        if (!fold || !fr) {
            fprintf(stderr, CMD ": out of memory\n");
            goto out;
        }
        int frc = pdm_stratified_folds(y, n, (int)k, seed, fold);
        if (frc == -EINVAL) {
            fprintf(stderr,
                    CMD ": %s: %ld folds need at least %ld rows with label 0 and %ld with "
                        "label 1\n",
                    csv, k, k, k);
            goto out;
        } else if (frc < 0) {
            fprintf(stderr, CMD ": out of memory\n");
            goto out;
        }
        if (run_folds(&m, &t, x, y, line, n, (int)k, fold, p, fr) < 0)
            goto out;
        /* pooled out-of-fold figures: ranking and calibration over every row once */
        if (pdm_metrics_compute(p, y, n, m.warning, m.critical, &mt) < 0)
            goto out;
    } else {
        pdm_score_rows(&m, x, n, p);
        if (pdm_metrics_compute(p, y, n, m.warning, m.critical, &mt) < 0) {
            fprintf(stderr, CMD ": out of memory\n");
            goto out;
        }
    }
    if (scores && write_scores(scores, p, y, line, fold, n) < 0)
        goto out;

    char cw[32];
    if (t.class_weight == PDM_CW_FIXED)
        snprintf(cw, sizeof(cw), "%g", t.pos_weight);
    else
        snprintf(cw, sizeof(cw), "%s", t.class_weight == PDM_CW_NONE ? "none" : "balanced");

    if (k) {
        struct {
            const char *name;
            size_t off;
            double mean, sd;
        } agg[] = {
            {"auc", FR_OFF(mt.auc)},
            {"ap", FR_OFF(mt.ap)},
            {"f1", FR_OFF(mt.warning.f1)},
            {"precision", FR_OFF(mt.warning.precision)},
            {"recall", FR_OFF(mt.warning.recall)},
            {"f1_critical", FR_OFF(mt.critical.f1)},
            {"precision_critical", FR_OFF(mt.critical.precision)},
            {"recall_critical", FR_OFF(mt.critical.recall)},
        };
        size_t na = sizeof(agg) / sizeof(agg[0]);
        for (size_t a = 0; a < na; a++)
            mean_sd(fr, (int)k, agg[a].off, &agg[a].mean, &agg[a].sd);
        if (json) {
            printf("{\"model\":");
            jstr(m.id);
            printf(",\"version\":%u,\"rows\":%zu,\"positives\":%zu,\"folds\":%ld,\"seed\":%llu,"
                   "\"l2\":",
                   (unsigned)m.version, n, mt.positives, k, seed);
            jnum(t.l2);
            printf(",\"class_weight\":\"%s\",\"thresholds\":\"%s\"", cw,
                   t.fixed_thresholds ? "fixed" : "auto");
            for (size_t a = 0; a < na; a++) {
                printf(",\"%s\":", agg[a].name);
                jnum(agg[a].mean);
                printf(",\"%s_sd\":", agg[a].name);
                jnum(agg[a].sd);
            }
            printf(",\"pooled\":{\"auc\":");
            jnum(mt.auc);
            printf(",\"ap\":");
            jnum(mt.ap);
            printf("},\"fold_results\":[");
            for (long f = 0; f < k; f++) {
                const struct fold_result *r = &fr[f];
                printf("%s{\"fold\":%ld,\"rows\":%zu,\"positives\":%zu,\"iterations\":%d,\"auc\":",
                       f ? "," : "", f + 1, r->n, r->positives, r->iterations);
                jnum(r->mt.auc);
                printf(",\"ap\":");
                jnum(r->mt.ap);
                printf(",\"f1\":");
                jnum(r->mt.warning.f1);
                json_prf("warning", &r->mt.warning);
                json_prf("critical", &r->mt.critical);
                printf("}");
            }
            printf("]");
            json_calib(&mt);
            printf("}\n");
        } else {
            printf("model %s version %u on %s: %zu rows, %zu failures\n", m.id, (unsigned)m.version,
                   csv, n, mt.positives);
            printf("%ld-fold stratified cross-validation (seed %llu): refitted with l2 = %g, "
                   "class weights %s, thresholds %s\n",
                   k, seed, t.l2, cw, t.fixed_thresholds ? "fixed" : "chosen per fold");
            printf("  %-4s %6s %8s %7s %7s %9s %7s %7s %9s %8s %8s %5s\n", "fold", "rows",
                   "failures", "AUC", "AP", "F1(warn)", "prec", "recall", "F1(crit)", "warning",
                   "critical", "steps");
            for (long f = 0; f < k; f++) {
                const struct fold_result *r = &fr[f];
                printf("  %-4ld %6zu %8zu %7.4f %7.4f %9.4f %7.4f %7.4f %9.4f %8.4g %8.4g %5d\n",
                       f + 1, r->n, r->positives, r->mt.auc, r->mt.ap, r->mt.warning.f1,
                       r->mt.warning.precision, r->mt.warning.recall, r->mt.critical.f1, r->warning,
                       r->critical, r->iterations);
            }
            printf("  mean +- sd: AUC %.4f +- %.4f, AP %.4f +- %.4f, F1 %.4f +- %.4f (warning), "
                   "%.4f +- %.4f (critical)\n",
                   agg[0].mean, agg[0].sd, agg[1].mean, agg[1].sd, agg[2].mean, agg[2].sd,
                   agg[5].mean, agg[5].sd);
            printf("pooled out-of-fold: AUC %.4f, AP %.4f\n", mt.auc, mt.ap);
            text_calib(&mt);
        }
    } else if (json) {
        printf("{\"model\":");
        jstr(m.id);
        printf(",\"version\":%u,\"rows\":%zu,\"positives\":%zu,\"folds\":0,\"auc\":",
               (unsigned)m.version, n, mt.positives);
        jnum(mt.auc);
        printf(",\"ap\":");
        jnum(mt.ap);
        printf(",\"f1\":");
        jnum(mt.warning.f1);
        printf(",\"precision\":");
        jnum(mt.warning.precision);
        printf(",\"recall\":");
        jnum(mt.warning.recall);
        printf(",\"f1_critical\":");
        jnum(mt.critical.f1);
        json_prf("warning", &mt.warning);
        json_prf("critical", &mt.critical);
        json_calib(&mt);
        printf("}\n");
    } else {
        printf("model %s version %u on %s: %zu rows, %zu failures\n", m.id, (unsigned)m.version,
               csv, n, mt.positives);
        printf("ROC-AUC %.4f, average precision %.4f\n", mt.auc, mt.ap);
        text_prf("warning", &mt.warning);
        text_prf("critical", &mt.critical);
        text_calib(&mt);
    }
    rc = PDMCTL_EXIT_OK;
out:
    free(x);
    free(y);
    free(line);
    free(p);
    free(fold);
    free(fr);
    return rc;
}
