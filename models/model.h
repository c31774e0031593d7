/* The logistic fault-probability model.
 *
 *   P = 1 / (1 + exp(-(intercept + sum_i weight_i * (x_i - center_i) / scale_i)))
 *
 * x_i is a windowed statistic (mean, rms or max over window_s seconds) of the sensor mapped to
 * input i by the asset's config, or for the input named "age" the asset's age in years (D, from
 * its `installed` date). A model file is INI:
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
 *
 * This is the one scoring code path: the agent and any offline tool call pdm_model_score(). */
#ifndef PDM_MODEL_H
#define PDM_MODEL_H

#include <stdint.h>

#include "../agent/diag.h"

#define PDM_MODEL_MAX_INPUTS 16
#define PDM_MODEL_NAME_MAX   32

enum pdm_stat {
    PDM_STAT_MEAN = 0,
    PDM_STAT_RMS = 1,
    PDM_STAT_MAX = 2,
};

struct pdm_model_input {
    char name[PDM_MODEL_NAME_MAX + 1];
    int is_age; /* name == "age" */
    enum pdm_stat stat;
    double window_s;
    double center;
    double scale;
    double weight;
    int line; /* line of the [input ...] header in the model file */
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
};

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

/* Index of the input called name, or -1. */
int pdm_model_input_index(const struct pdm_model *m, const char *name);

/* x[i] is the value of input i (model order). Pure arithmetic, no allocation. */
void pdm_model_score(const struct pdm_model *m, const double *x, struct pdm_score *out);

/* Fills order[0..n_inputs) with input indexes sorted by |contribution|, largest first. */
void pdm_score_rank(const struct pdm_score *s, uint32_t *order);

const char *pdm_stat_name(enum pdm_stat s);

#endif
