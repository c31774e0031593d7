/* pdmctl train --csv FILE --label COLUMN --inputs ITEM[,ITEM...] -o MODEL [options]
 *
 * Fits the logistic fault model to a labelled CSV and writes a model file the agent loads as it
 * is. The fitting is train/fit.c; this is the command line around it. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/ini_reader.h"
#include "train/fit.h"
#include "train/metrics.h"
#include "train/model_write.h"
#include "cli.h"
#include "modeldata.h"
#include "pdmctl.h"

#define SUB "train"
#define CMD "pdmctl " SUB

static void usage(FILE *f)
{
    fprintf(f,
            "usage: pdmctl train --csv FILE --label COLUMN --inputs ITEM[,ITEM...] -o MODEL\n"
            "                    [--derive NAME=EXPR[,...]] [--l2 X] [--class-weight W]\n"
            "                    [--warning P] [--critical P] [--clear P] [--id ID]\n"
            "                    [--version N] [--stat mean|rms|max] [--window-s S] [--hold N]\n"
            "                    [--eval-period-ms MS] [--max-iter N]\n"
            "  Fits P = 1 / (1 + exp(-(intercept + sum weight * (x - center) / scale))) to the\n"
            "  rows of a CSV (header row; UTF-8 BOM and CRLF accepted) and writes MODEL.\n"
            "  --label COLUMN      the 0/1 column (1 = failure)\n"
            "  --inputs ITEMS      the model's inputs: NAME=COLUMN, or COLUMN alone when it is a\n"
            "                      valid input name ([a-z][a-z0-9_]{0,31}); e.g.\n"
            "                      --inputs 'torque=Torque [Nm],speed=Rotational speed [rpm]'\n"
            "  --input NAME=COLUMN one input (repeatable; for column names with commas)\n"
            "  --derive NAME=EXPR  a derived input the agent computes too: A * B, A - B or\n"
            "                      square(A) of other inputs (repeatable, or comma-separated)\n"
            "  --l2 X              L2 penalty on the weights (default 1, as scikit-learn's C=1)\n"
            "  --class-weight W    balanced (default: both classes weigh the same in total),\n"
            "                      none, or the weight of a failure row (e.g. 10)\n"
            "  --warning/--critical/--clear P  fixed thresholds instead of the chosen ones\n"
            "                      (warning: best F1; critical: best F0.5 at or over warning;\n"
            "                      clear: 0.75 x warning)\n"
            "  --id ID             model id (default: MODEL's file name without extension)\n"
            "  --version N         model version (default 1)\n"
            "  --stat, --window-s  statistic and window the agent computes for every sensor\n"
            "                      input (default mean over 60 s): the CSV's rows should be the\n"
            "                      same statistic\n"
            "  --hold N, --eval-period-ms MS   alert hold and evaluation period (3, 1000)\n"
            "  --max-iter N        Newton steps before giving up (default %d)\n"
            "  An input named 'age' is the asset's age in years on the agent.\n"
            "  Format, options and figures: docs/MODELS.md.\n"
            "exit status: 0 model written, 1 bad data or no fit (nothing written), 2 bad "
            "command line\n",
            PDM_FIT_DEFAULT_MAX_ITER);
}

struct derive_item {
    char name[PDM_MODEL_NAME_MAX + 1];
    char expr[128];
};

static int parse_derive_list(const char *list, struct derive_item *items, int *n, int max)
{
    const char *p = list;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        if (!eq) {
            fprintf(stderr, CMD ": --derive '%.*s': expected NAME=EXPR\n", (int)len, p);
            return -1;
        }
        if (*n >= max) {
            fprintf(stderr, CMD ": too many inputs: a model has at most %d\n", max);
            return -1;
        }
        struct derive_item *it = &items[*n];
        size_t nl = (size_t)(eq - p), el = len - nl - 1;
        if (nl > PDM_MODEL_NAME_MAX || el >= sizeof(it->expr)) {
            fprintf(stderr, CMD ": --derive '%.*s': too long\n", (int)len, p);
            return -1;
        }
        memcpy(it->name, p, nl);
        it->name[nl] = '\0';
        memcpy(it->expr, eq + 1, el);
        it->expr[el] = '\0';
        if (!pdm_model_name_ok(it->name)) {
            fprintf(stderr,
                    CMD ": --derive '%.*s': input name '%s' must be a lower-case letter followed "
                        "by up to 31 of a-z 0-9 _\n",
                    (int)len, p, it->name);
            return -1;
        }
        (*n)++;
        if (!comma)
            return 0;
        p = comma + 1;
    }
}

/* The model id from the output file's name: "models/ai4i.model" -> "ai4i". */
static int id_from_path(const char *path, char *id, size_t len)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *dot = strchr(base, '.');
    size_t n = dot && dot > base ? (size_t)(dot - base) : strlen(base);
    if (n == 0 || n >= len)
        return -1;
    memcpy(id, base, n);
    id[n] = '\0';
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return -1;
    }
    return 0;
}

static int write_model(const char *path, const struct pdm_model *m, const struct pdm_model_train *t,
                       const char *comment)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) {
        fprintf(stderr, CMD ": %s: path too long\n", path);
        return -1;
    }
    FILE *f = fopen(tmp, "w");
    if (!f) {
        fprintf(stderr, CMD ": cannot write %s: %s\n", tmp, strerror(errno));
        return -1;
    }
    int rc = pdm_model_write(f, m, t, comment);
    if (fclose(f) != 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -errno;
    if (rc != 0) {
        fprintf(stderr, CMD ": cannot write %s: %s\n", path, strerror(-rc));
        remove(tmp);
        return -1;
    }
    return 0;
}

int cmd_train(int argc, char **argv)
{
    const char *csv = NULL, *label = NULL, *out = NULL, *id = NULL;
    struct input_map maps[PDM_MODEL_MAX_INPUTS];
    struct derive_item derived[PDM_MODEL_MAX_INPUTS];
    int n_maps = 0, n_derived = 0;
    struct pdm_model_train t;
    pdm_model_train_defaults(&t);
    double thr[3] = {-1, -1, -1}; /* warning, critical, clear given on the command line */
    int64_t version = 1;
    int hold = 3, period = 1000, max_iter = PDM_FIT_DEFAULT_MAX_ITER;
    double window_s = 60;
    enum pdm_stat stat = PDM_STAT_MEAN;

    enum {
        O_CSV = 256,
        O_LABEL,
        O_INPUTS,
        O_INPUT,
        O_DERIVE,
        O_L2,
        O_CLASS_WEIGHT,
        O_WARNING,
        O_CRITICAL,
        O_CLEAR,
        O_ID,
        O_VERSION,
        O_STAT,
        O_WINDOW_S,
        O_HOLD,
        O_EVAL_PERIOD_MS,
        O_MAX_ITER,
        O_HELP
    };
    static const struct option longopts[] = {
        {"csv", required_argument, 0, O_CSV},
        {"label", required_argument, 0, O_LABEL},
        {"output", required_argument, 0, 'o'},
        {"inputs", required_argument, 0, O_INPUTS},
        {"input", required_argument, 0, O_INPUT},
        {"derive", required_argument, 0, O_DERIVE},
        {"l2", required_argument, 0, O_L2},
        {"class-weight", required_argument, 0, O_CLASS_WEIGHT},
        {"warning", required_argument, 0, O_WARNING},
        {"critical", required_argument, 0, O_CRITICAL},
        {"clear", required_argument, 0, O_CLEAR},
        {"id", required_argument, 0, O_ID},
        {"version", required_argument, 0, O_VERSION},
        {"stat", required_argument, 0, O_STAT},
        {"window-s", required_argument, 0, O_WINDOW_S},
        {"hold", required_argument, 0, O_HOLD},
        {"eval-period-ms", required_argument, 0, O_EVAL_PERIOD_MS},
        {"max-iter", required_argument, 0, O_MAX_ITER},
        {"help", no_argument, 0, O_HELP},
        {0, 0, 0, 0},
    };
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":ho:", longopts, NULL)) != -1) {
        const char *v = optarg;
        int bad = 0;
        switch (c) {
        case O_CSV:
            csv = v;
            break;
        case O_LABEL:
            label = v;
            break;
        case 'o':
            out = v;
            break;
        case O_INPUTS:
            bad = parse_input_list(CMD, v, maps, &n_maps, PDM_MODEL_MAX_INPUTS);
            break;
        case O_INPUT:
            if (n_maps >= PDM_MODEL_MAX_INPUTS) {
                fprintf(stderr, CMD ": too many inputs: a model has at most %d\n",
                        PDM_MODEL_MAX_INPUTS);
                bad = -1;
            } else if ((bad = parse_input_item(CMD, v, &maps[n_maps])) == 0) {
                n_maps++;
            }
            break;
        case O_DERIVE:
            bad = parse_derive_list(v, derived, &n_derived, PDM_MODEL_MAX_INPUTS);
            break;
        case O_L2:
            bad = pdmctl_parse_double(SUB, "--l2", v, 0, 1e12, &t.l2);
            break;
        case O_CLASS_WEIGHT:
            if ((bad = pdm_class_weight_parse(v, &t.class_weight, &t.pos_weight)) < 0)
                fprintf(stderr,
                        CMD ": --class-weight: expected none, balanced or a weight > 0, got "
                            "'%s'\n",
                        v);
            break;
        case O_WARNING:
        case O_CRITICAL:
        case O_CLEAR: {
            static const char *const names[] = {"--warning", "--critical", "--clear"};
            int k = c - O_WARNING;
            bad = pdmctl_parse_double(SUB, names[k], v, 1e-9, 1 - 1e-9, &thr[k]);
            break;
        }
        case O_ID:
            id = v;
            break;
        case O_VERSION:
            bad = pdmctl_parse_i64(SUB, "--version", NULL, v, 1, UINT32_MAX, &version);
            break;
        case O_STAT:
            stat = strcmp(v, "mean") == 0  ? PDM_STAT_MEAN
                   : strcmp(v, "rms") == 0 ? PDM_STAT_RMS
                   : strcmp(v, "max") == 0 ? PDM_STAT_MAX
                                           : (enum pdm_stat) - 1;
            if ((int)stat < 0) {
                fprintf(stderr, CMD ": --stat: expected mean, rms or max, got '%s'\n", v);
                bad = -1;
            }
            break;
        case O_WINDOW_S:
            bad = pdmctl_parse_double(SUB, "--window-s", v, 1, 86400, &window_s);
            break;
        case O_HOLD:
            bad = pdmctl_parse_int(SUB, "--hold", v, 1, 1000, &hold);
            break;
        case O_EVAL_PERIOD_MS:
            bad = pdmctl_parse_int(SUB, "--eval-period-ms", v, 100, 3600000, &period);
            break;
        case O_MAX_ITER:
            bad = pdmctl_parse_int(SUB, "--max-iter", v, 1, 100000, &max_iter);
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
    if (!csv || !label || !out || n_maps == 0) {
        fprintf(stderr, CMD ": --csv, --label, --inputs and -o are required\n");
        usage(stderr);
        return PDMCTL_EXIT_USAGE;
    }
    if (!pdm_model_column_ok(label)) {
        fprintf(stderr, CMD ": label column '%s' cannot be recorded in a model file\n", label);
        return PDMCTL_EXIT_USAGE;
    }

    /* the model's skeleton: base inputs in the order given, then derived ones */
    static struct pdm_model m;
    memset(&m, 0, sizeof(m));
    char idbuf[65];
    if (id) {
        if (!pdm_ini_is_name(id, 64, 1)) {
            fprintf(stderr, CMD ": --id '%s': expected 1 to 64 of A-Z a-z 0-9 _ . -\n", id);
            return PDMCTL_EXIT_USAGE;
        }
        snprintf(m.id, sizeof(m.id), "%s", id);
    } else if (id_from_path(out, idbuf, sizeof(idbuf)) == 0) {
        snprintf(m.id, sizeof(m.id), "%s", idbuf);
    } else {
        fprintf(stderr, CMD ": cannot make a model id from '%s': give --id ID\n", out);
        return PDMCTL_EXIT_USAGE;
    }
    m.version = (uint32_t)version;
    m.hold = hold;
    m.eval_period_ms = period;
    if (n_maps + n_derived > PDM_MODEL_MAX_INPUTS) {
        fprintf(stderr, CMD ": %d inputs and %d derived: a model has at most %d\n", n_maps,
                n_derived, PDM_MODEL_MAX_INPUTS);
        return PDMCTL_EXIT_USAGE;
    }
    for (int k = 0; k < n_maps; k++) {
        struct pdm_model_input *in = &m.inputs[m.n_inputs];
        memcpy(in->name, maps[k].name, sizeof(in->name));
        in->is_age = strcmp(in->name, "age") == 0;
        in->stat = stat;
        in->window_s = window_s;
        snprintf(t.column[m.n_inputs], sizeof(t.column[0]), "%s", maps[k].column);
        m.n_inputs++;
    }
    for (int k = 0; k < n_derived; k++) {
        if (pdm_model_input_index(&m, derived[k].name) >= 0) {
            fprintf(stderr, CMD ": input '%s' is given twice\n", derived[k].name);
            return PDMCTL_EXIT_USAGE;
        }
        memcpy(m.inputs[m.n_inputs++].name, derived[k].name, sizeof(m.inputs[0].name));
    }
    char err[512];
    for (int k = 0; k < n_derived; k++) {
        struct pdm_model_input *in = &m.inputs[n_maps + k];
        if (pdm_model_parse_derive(&m, derived[k].expr, &in->derive, in->arg, err, sizeof(err)) <
            0) {
            fprintf(stderr, CMD ": --derive %s=%s: %s\n", derived[k].name, derived[k].expr, err);
            return PDMCTL_EXIT_USAGE;
        }
    }
    int bad_in = -1;
    if (pdm_model_link(&m, &bad_in, err, sizeof(err)) < 0) {
        fprintf(stderr, CMD ": --derive %s: %s\n", bad_in >= 0 ? m.inputs[bad_in].name : "?", err);
        return PDMCTL_EXIT_USAGE;
    }
    snprintf(t.label, sizeof(t.label), "%s", label);
    t.fixed_thresholds = thr[0] > 0 || thr[1] > 0 || thr[2] > 0;

    double *x = NULL, *y = NULL, *p = NULL;
    int *line = NULL;
    size_t n = 0;
    int rc = PDMCTL_EXIT_FAIL;
    if (load_model_rows(csv, label, &m, t.column, &x, &y, &line, &n) < 0)
        goto out;

    struct pdm_fit_info info;
    if (t.fixed_thresholds) {
        /* the chosen values stand in for any not given, then the given ones apply */
        struct pdm_model_train auto_t = t;
        auto_t.fixed_thresholds = 0;
        if (pdm_fit(&m, &auto_t, x, y, line, n, max_iter, &info, err, sizeof(err)) < 0) {
            fprintf(stderr, CMD ": %s: %s\n", csv, err);
            goto out;
        }
        if (thr[0] > 0)
            m.warning = thr[0];
        if (thr[1] > 0)
            m.critical = thr[1];
        if (thr[2] > 0)
            m.clear = thr[2];
        if (!(m.clear < m.warning && m.warning <= m.critical)) {
            fprintf(stderr,
                    CMD ": thresholds must satisfy clear < warning <= critical; with the "
                        "chosen ones filled in they are clear %g, warning %g, critical %g\n",
                    m.clear, m.warning, m.critical);
            rc = PDMCTL_EXIT_USAGE;
            goto out;
        }
    } else if (pdm_fit(&m, &t, x, y, line, n, max_iter, &info, err, sizeof(err)) < 0) {
        fprintf(stderr, CMD ": %s: %s\n", csv, err);
        goto out;
    }
    t.rows = (long long)n;
    t.positives = (long long)info.positives;
    t.iterations = info.iterations;

    char comment[1024];
    snprintf(comment, sizeof(comment),
             "Fault-probability model (format: models/model.h), written by pdmctl train\n"
             "from %zu rows (%zu failures) of %s, label '%s'.\n"
             "Refit the same way: pdmctl eval --folds 5 --model THIS --csv FILE --label COLUMN",
             n, info.positives, strrchr(csv, '/') ? strrchr(csv, '/') + 1 : csv, label);
    for (char *c = comment; *c; c++)
        if ((unsigned char)*c < 0x20 && *c != '\n')
            *c = '?';
    if (write_model(out, &m, &t, comment) < 0)
        goto out;

    /* Read back what was written, as the agent will, and check it scores every row exactly
     * as the fitted model: the file is the model, not an approximation of it. */
    static struct pdm_model back;
    struct pdm_diag diag = {.out = stderr};
    if (pdm_model_load(out, &back, &diag) != 0) {
        fprintf(stderr, CMD ": %s does not load back; this is a bug in pdmctl train\n", out);
        goto out;
    }
    p = malloc(n * sizeof(*p));
    double *pb = malloc(n * sizeof(*pb));
    if (!p || !pb) {
        free(pb);
        fprintf(stderr, CMD ": out of memory\n");
        goto out;
    }
    pdm_score_rows(&m, x, n, p);
    pdm_score_rows(&back, x, n, pb);
    size_t differ = 0;
    for (size_t i = 0; i < n; i++)
        differ += memcmp(&p[i], &pb[i], sizeof(double)) != 0;
    free(pb);
    if (differ) {
        fprintf(stderr, CMD ": %s scores %zu rows differently once reloaded; a bug\n", out, differ);
        goto out;
    }

    struct pdm_metrics mt;
    if (pdm_metrics_compute(p, y, n, m.warning, m.critical, &mt) < 0) {
        fprintf(stderr, CMD ": out of memory\n");
        goto out;
    }
    printf("%s: %zu rows, %zu failures (label '%s')\n", csv, n, info.positives, label);
    printf("class weights: negative %.4g, positive %.4g (%s); l2 = %g\n", info.w_neg, info.w_pos,
           t.class_weight == PDM_CW_BALANCED ? "balanced"
           : t.class_weight == PDM_CW_NONE   ? "none"
                                             : "given",
           t.l2);
    printf("Newton: converged in %d steps (last step %.2g, largest gradient %.2g, loss %.6g)\n",
           info.iterations, info.last_step, info.grad_max, info.objective);
    printf("  %-16s %-8s %-28s %12s %12s %10s\n", "input", "kind", "column / expression", "center",
           "scale", "weight");
    for (uint32_t k = 0; k < m.n_inputs; k++) {
        const struct pdm_model_input *in = &m.inputs[k];
        char what[PDM_MODEL_COLUMN_MAX + 1];
        if (in->derive != PDM_DERIVE_NONE)
            pdm_model_format_derive(&m, in, what, sizeof(what));
        else
            snprintf(what, sizeof(what), "%s", t.column[k]);
        printf("  %-16s %-8s %-28s %12.6g %12.6g %+10.4f\n", in->name, pdm_model_input_kind(in),
               what, in->center, in->scale, in->weight);
    }
    printf("  intercept %+.4f\n", m.intercept);
    printf("thresholds (%s): warning %.4g, critical %.4g, clear %.4g\n",
           t.fixed_thresholds ? "given" : "chosen: best F1, best F0.5, 0.75 x warning", m.warning,
           m.critical, m.clear);
    printf("on the training rows (optimistic; pdmctl eval --folds for honest figures): AUC %.4f, "
           "AP %.4f, F1 %.4f at warning, %.4f at critical\n",
           mt.auc, mt.ap, mt.warning.f1, mt.critical.f1);
    printf("wrote %s (id %s, version %u)\n", out, m.id, (unsigned)m.version);
    rc = PDMCTL_EXIT_OK;
out:
    free(x);
    free(y);
    free(line);
    free(p);
    return rc;
}
