/* The logistic fault-probability model.
 *
 *   P = 1 / (1 + exp(-(intercept + sum_i weight_i * (x_i - center_i) / scale_i)))
 *
 * x_i is a windowed statistic (mean, rms or max over window_s seconds) of the sensor mapped to
 * input i by the asset's config, or for the input named "age" the asset's age in years (D, from
 * its `installed` date), or for a derived input a square, product or difference of other inputs'
 * values (computed from their window statistics at each evaluation). A model file is INI:
 *
 *   [model]
 *   id = compressor        ; [A-Za-z0-9_.-]{1,64}
 *   version = 1            ; 1..4294967295
 *   intercept = -4.0
 *   warning = 0.5          ; 0 < clear < warning <= critical < 1
 *   critical = 0.8
 *   clear = 0.4
 *   hold = 3               ; 1..1000 consecutive evaluations at or over a threshold
 *   eval_period_ms = 1000  ; 100..3600000
 *
 *   [input temperature]    ; name [a-z][a-z0-9_]{0,31}; "age" is the asset's age in years
 *   stat = mean            ; mean | rms | max (ignored for age)
 *   window_s = 30          ; 1..86400 (ignored for age)
 *   center = 45
 *   scale = 10             ; > 0
 *   weight = 1.5
 *   column = Temp [degC]   ; optional, for pdmctl train/eval: the CSV column of this input
 *
 *   [input power]          ; a derived input: no sensor, no stat, no window of its own
 *   derive = torque * speed  ; A * B | A - B | square(A), A and B other inputs of this model
 *   center = 40000           ; (base or derived, in any order, without cycles)
 *   scale = 9000
 *   weight = 0.8
 *
 *   [train]                ; optional: how pdmctl train fitted the model (pdmctl eval --folds
 *   label = failed         ;   refits with it); checked but not used by the agent
 *   l2 = 1                 ; >= 0
 *   class_weight = balanced  ; none | balanced | W (weight of a positive row, > 0)
 *   thresholds = auto      ; auto (chosen from the data) | fixed (given on the command line)
 *   rows = 10000           ; informational: training rows, positives, Newton iterations
 *   positives = 339
 *   iterations = 8
 *
 * The asset's config maps a sensor to every input except age and derived inputs.
 *
 * This is the one scoring code path: the agent and any offline tool call pdm_model_score(),
 * which computes derived inputs too (pdm_model_derive()). */
#ifndef PDM_MODEL_H
#define PDM_MODEL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "lib/diag.h"

#define PDM_MODEL_MAX_INPUTS 16
#define PDM_MODEL_NAME_MAX   32
#define PDM_MODEL_COLUMN_MAX 128 /* bytes of a CSV column name recorded in a model file */

enum pdm_stat {
    PDM_STAT_MEAN = 0,
    PDM_STAT_RMS = 1,
    PDM_STAT_MAX = 2,
};

/* How a derived input is computed from the values of two (or one) other inputs. */
enum pdm_derive_op {
    PDM_DERIVE_NONE = 0, /* a base input: a sensor's window statistic, or age */
    PDM_DERIVE_PRODUCT,  /* x[a] * x[b]; "square(A)" is the product with a == b */
    PDM_DERIVE_DIFF,     /* x[a] - x[b] */
};

struct pdm_model_input {
    char name[PDM_MODEL_NAME_MAX + 1];
    int is_age; /* name == "age" */
    enum pdm_derive_op derive;
    uint8_t arg[2]; /* operand input indexes of a derived input */
    enum pdm_stat stat;
    double window_s;
    double center;
    double scale;
    double weight;
    int line; /* line of the [input ...] header in the model file */
    /* Per-asset baseline (models/moments.c): when from_asset, center/scale above are the
     * asset's learned ones and fleet_center/fleet_scale keep the model file's constants. */
    int from_asset;
    double fleet_center, fleet_scale;
};

struct pdm_model {
    char id[65];
    uint32_t version;
    char sha256[65]; /* hex SHA-256 of the model file as loaded (mbed TLS): its fingerprint */
    double intercept;
    double warning, critical, clear;
    int hold;
    int eval_period_ms;
    struct pdm_model_input inputs[PDM_MODEL_MAX_INPUTS];
    uint32_t n_inputs;
    /* derived inputs in an order where operands come first; filled by pdm_model_link() */
    uint8_t derive_order[PDM_MODEL_MAX_INPUTS];
    uint32_t n_derived;
    /* [model] baseline = asset: use the asset's learned baseline when one matches (else the
     * fleet constants of the file); 0 = fleet (the default) */
    int baseline_asset;
};

/* What pdmctl train recorded in a model file ([train] and the inputs' `column` keys), so that
 * pdmctl eval finds the columns and refits the same way. The agent does not use it. */
enum pdm_class_weight { PDM_CW_NONE = 0, PDM_CW_BALANCED, PDM_CW_FIXED };

struct pdm_model_train {
    int present; /* a [train] section was there */
    char label[PDM_MODEL_COLUMN_MAX + 1];
    char column[PDM_MODEL_MAX_INPUTS][PDM_MODEL_COLUMN_MAX + 1]; /* "" = not recorded */
    double l2;
    enum pdm_class_weight class_weight;
    double pos_weight; /* PDM_CW_FIXED: weight of a positive row (negatives weigh 1) */
    int fixed_thresholds;
    long long rows, positives, iterations;
};

#define PDM_TRAIN_DEFAULT_L2 1.0 /* the same penalty as scikit-learn's default C = 1 */

/* l2 = PDM_TRAIN_DEFAULT_L2, class_weight = balanced, automatic thresholds, nothing else. */
void pdm_model_train_defaults(struct pdm_model_train *t);
/* "none" | "balanced" | a positive number (the weight of a positive row). 0 or -EINVAL. */
int pdm_class_weight_parse(const char *s, enum pdm_class_weight *cw, double *pos_weight);

struct pdm_score_input {
    double value;        /* x_i */
    double z;            /* (x_i - center_i) / scale_i */
    double contribution; /* weight_i * z */
};

struct pdm_score {
    double logit;       /* intercept + sum of contributions */
    double probability; /* 1 / (1 + exp(-logit)), computed without overflow */
    uint32_t health;    /* round(100 * (1 - probability)) */
    uint32_t n_inputs;
    struct pdm_score_input in[PDM_MODEL_MAX_INPUTS]; /* in model input order */
};

/* Loads and validates a model file; errors go to diag as FILE:LINE: section.key: reason.
 * Returns the number of errors (0 = good). m is zeroed first. */
int pdm_model_load(const char *path, struct pdm_model *m, struct pdm_diag *diag);
/* The same, also filling t (zeroed first) from [train] and the `column` keys; t may be NULL. */
int pdm_model_load_ex(const char *path, struct pdm_model *m, struct pdm_model_train *t,
                      struct pdm_diag *diag);

/* Writing a model file (pdm_model_write) is offline work: train/model_write.h. */

/* Checks the derived inputs' operands (in range, no cycle) and fills derive_order/n_derived.
 * Call it after building a model with derived inputs by hand (the loader does). Returns 0, or
 * -EINVAL with the reason in err naming the input at fault (*bad = its index). */
int pdm_model_link(struct pdm_model *m, int *bad, char *err, size_t errlen);

/* Parses a derive expression ("A * B", "A - B", "square(A)") naming inputs of m (derived or
 * not). Returns 0, or -EINVAL with the reason in err. */
int pdm_model_parse_derive(const struct pdm_model *m, const char *expr, enum pdm_derive_op *op,
                           uint8_t arg[2], char *err, size_t errlen);
/* The expression back as text ("torque * speed", "square(power)"). */
void pdm_model_format_derive(const struct pdm_model *m, const struct pdm_model_input *in, char *out,
                             size_t outlen);

/* 1 if s is a valid input name: [a-z][a-z0-9_]{0,31}. */
int pdm_model_name_ok(const char *s);
/* A valid input name made from free text ("Process temperature [K]" -> process_temperature_k),
 * for suggestions. */
void pdm_model_name_suggest(const char *text, char out[PDM_MODEL_NAME_MAX + 1]);

/* Index of the input called name, or -1. */
int pdm_model_input_index(const struct pdm_model *m, const char *name);

/* v[0..n_inputs): base inputs' values in, derived inputs' values filled in (in derive_order).
 * Pure arithmetic, no allocation; the trainer builds its data with it, so training and scoring
 * derive exactly alike. */
void pdm_model_derive(const struct pdm_model *m, double *v);

/* x[i] is the value of input i (model order); the values of derived inputs in x are ignored and
 * computed from the others (out->in[i].value has them). Pure arithmetic, no allocation. */
void pdm_model_score(const struct pdm_model *m, const double *x, struct pdm_score *out);

/* round(100 * (1 - p)) clamped to 0..100; a NaN p gives 0. The health score of alerts,
 * telemetry and reports. */
uint32_t pdm_health_score(double p);

/* Fills order[0..n_inputs) with input indexes sorted by |contribution|, largest first. */
void pdm_score_rank(const struct pdm_score *s, uint32_t *order);

const char *pdm_stat_name(enum pdm_stat s);
/* Whether an input is read from a sensor through a window (1), or computed: age from the asset's
 * installed date, derived inputs from other inputs (0). */
static inline int pdm_model_input_has_sensor(const struct pdm_model_input *in)
{
    return !in->is_age && in->derive == PDM_DERIVE_NONE;
}

/* What feeds an input, for displays: "age", "derived" or its statistic's name. */
const char *pdm_model_input_kind(const struct pdm_model_input *in);

/* ---- per-asset baselines (models/moments.c) -----------------------------------------------
 *
 * A baseline is the healthy center and scale of each windowed input of one asset, learned by the
 * running agent from the same window statistics the model scores (agent/baseline.c). It is bound
 * to the model id and to the windowed inputs (name, stat, window_s) it was learned for; age and
 * derived inputs keep the model file's constants.
 *
 * Scale floor: scale = max(sd, PDM_BASELINE_FLOOR * the model file's scale). The weights were
 * fitted for the fleet's scale; a very steady input (a temperature held to 0.1 degC) would
 * otherwise turn sensor noise into large z values. With 0.25 an asset baseline makes an input
 * at most 4 times as sensitive as the fleet constants do. */
#define PDM_BASELINE_FLOOR 0.25

struct pdm_baseline_input {
    char name[PDM_MODEL_NAME_MAX + 1];
    enum pdm_stat stat;
    double window_s;
    double center, scale; /* what the model uses: mean and max(sd, floor) */
    double sd;            /* the standard deviation measured */
    uint64_t n;           /* evaluations it was learned from */
};

struct pdm_baseline {
    char model_id[65];
    uint32_t n_inputs; /* the model's windowed inputs, in model order */
    struct pdm_baseline_input in[PDM_MODEL_MAX_INPUTS];
    int64_t learned_ms; /* wall clock when learning finished */
    double seconds;     /* how long it learned */
};

/* Running mean and variance (Welford): no allocation, numerically stable. */
struct pdm_moments {
    uint64_t n;
    double mean, m2;
};
void pdm_moments_add(struct pdm_moments *mo, double x);
double pdm_moments_sd(const struct pdm_moments *mo); /* sample sd (n - 1); 0 when n < 2 */

/* max(sd, PDM_BASELINE_FLOOR * fleet_scale), and > 0 even for a zero fleet scale. */
double pdm_baseline_scale(double sd, double fleet_scale);

/* 0 if b was learned for m's id and exactly m's windowed inputs (name, stat, window_s);
 * -EINVAL with the reason in err otherwise. */
int pdm_baseline_match(const struct pdm_model *m, const struct pdm_baseline *b, char *err,
                       size_t errlen);
/* Makes m the effective model: center/scale of every windowed input from b (from_asset = 1,
 * the file's constants kept in fleet_center/fleet_scale). Checks pdm_baseline_match first;
 * on mismatch m is unchanged. Scoring stays pdm_model_score on the result. */
int pdm_model_apply_baseline(struct pdm_model *m, const struct pdm_baseline *b, char *err,
                             size_t errlen);
/* Back to the model file's constants (undoes pdm_model_apply_baseline). */
void pdm_model_use_fleet(struct pdm_model *m);
/* 1 if any input's center/scale comes from an asset baseline. */
int pdm_model_uses_asset_baseline(const struct pdm_model *m);

#endif
