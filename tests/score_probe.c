/* score_probe MODEL CSV SCORES [MAX_DIFF]
 *
 * The trainer/agent agreement check (run by integration/it_train*.sh): loads MODEL with the
 * agent's loader, feeds every row of CSV through the agent's scoring engine (one reading per
 * base input per row, each row in a window of its own, derived inputs computed by the engine)
 * and compares each evaluation's probability with the p that `pdmctl eval --scores` wrote for
 * that line in SCORES. Prints the number of rows and the largest difference; exits 0 when every
 * row was scored and differs by less than MAX_DIFF (default 1e-9), 1 otherwise, 2 on bad use.
 *
 * Rows are window statistics; with one reading per window mean and max return it unchanged
 * (and rms its magnitude), so the probe refuses rms inputs with negative values, and models
 * with an age input (age comes from the wall clock, not from a column). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/config.h"
#include "train/csv.h"
#include "models/engine.h"
#include "train/fit.h"

static struct pdm_config cfg;
static struct pdm_sensor_cfg sensors[PDM_MODEL_MAX_INPUTS];
static struct pdm_asset_cfg asset;

struct seen {
    int evaluated;
    double p;
};

static void on_eval(void *ctx, const struct pdm_eval *ev)
{
    struct seen *s = ctx;
    s->evaluated++;
    s->p = ev->score->probability;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: score_probe MODEL CSV SCORES [MAX_DIFF]\n");
        return 2;
    }
    double max_allowed = argc > 4 ? strtod(argv[4], NULL) : 1e-9;
    static struct pdm_model_train t;
    struct pdm_diag diag = {.out = stderr};
    if (pdm_model_load_ex(argv[1], &asset.model, &t, &diag) != 0)
        return 2;
    const struct pdm_model *m = &asset.model;

    /* one sensor per base input, read once a second */
    const char *cols[PDM_MODEL_MAX_INPUTS];
    size_t d = 0;
    double span_ms = 0;
    snprintf(asset.name, sizeof(asset.name), "probe");
    for (uint32_t k = 0; k < m->n_inputs; k++) {
        const struct pdm_model_input *in = &m->inputs[k];
        snprintf(asset.inputs[k].input, sizeof(asset.inputs[k].input), "%s", in->name);
        asset.inputs[k].sensor = -1;
        if (in->is_age) {
            fprintf(stderr, "score_probe: models with an age input are not supported\n");
            return 2;
        }
        if (in->derive != PDM_DERIVE_NONE)
            continue;
        cols[d] = *t.column[k] ? t.column[k] : in->name;
        snprintf(sensors[d].name, sizeof(sensors[d].name), "s%zu", d);
        sensors[d].period_ms = 1000;
        sensors[d].scale = 1.0;
        asset.inputs[k].sensor = (int32_t)d;
        if (in->window_s * 1000.0 > span_ms)
            span_ms = in->window_s * 1000.0;
        d++;
    }
    asset.n_inputs = m->n_inputs;
    cfg.sensors = sensors;
    cfg.n_sensors = (uint32_t)d;
    cfg.assets = &asset;
    cfg.n_assets = 1;

    struct pdm_csv_report rep = {.out = stderr};
    struct pdm_csv csv, sc;
    struct pdm_dataset ds, sd;
    const char *score_cols[] = {"line", "p"};
    if (pdm_csv_read(argv[2], &csv, &rep) < 0 ||
        pdm_dataset_from_csv(&csv, NULL, cols, d, &ds, &rep) < 0 ||
        pdm_csv_read(argv[3], &sc, &rep) < 0 ||
        pdm_dataset_from_csv(&sc, NULL, score_cols, 2, &sd, &rep) < 0 || rep.errors)
        return 2;
    if (sd.n != ds.n) {
        fprintf(stderr, "score_probe: %zu rows in %s but %zu scores in %s\n", ds.n, argv[2], sd.n,
                argv[3]);
        return 1;
    }
    for (uint32_t k = 0, j = 0; k < m->n_inputs; k++) {
        if (m->inputs[k].derive != PDM_DERIVE_NONE)
            continue;
        for (size_t i = 0; m->inputs[k].stat == PDM_STAT_RMS && i < ds.n; i++)
            if (ds.x[i * d + j] < 0) {
                fprintf(stderr, "score_probe: %s:%d: negative value for rms input %s\n", argv[2],
                        ds.line[i], m->inputs[k].name);
                return 2;
            }
        j++;
    }

    struct pdm_engine e;
    if (pdm_engine_init(&e, cfg.assets, cfg.n_assets, cfg.sensors, cfg.n_sensors, 0) != 0) {
        fprintf(stderr, "score_probe: the engine does not start\n");
        return 2;
    }
    /* each row a window of its own: rows further apart than the longest window, on the
     * evaluation grid */
    int64_t period = m->eval_period_ms;
    int64_t step = ((int64_t)ceil(span_ms) / period + 2) * period;
    double worst = 0;
    size_t bad = 0, missing = 0;
    for (size_t i = 0; i < ds.n; i++) {
        int64_t now = (int64_t)(i + 1) * step;
        for (size_t j = 0; j < d; j++)
            pdm_engine_on_sample(&e, (uint32_t)j, now, ds.x[i * d + j]);
        struct seen s = {0};
        pdm_engine_tick(&e, now, 1700000000000LL + now, on_eval, &s);
        if (s.evaluated != 1) {
            missing++;
            continue;
        }
        if ((int)sd.x[i * 2] != ds.line[i]) {
            fprintf(stderr, "score_probe: row %zu: line %d in %s but %d in %s\n", i + 1, ds.line[i],
                    argv[2], (int)sd.x[i * 2], argv[3]);
            return 1;
        }
        double diff = fabs(s.p - sd.x[i * 2 + 1]);
        if (!(diff < max_allowed)) {
            if (bad++ < 5)
                fprintf(stderr, "score_probe: %s:%d: agent P = %.17g, pdmctl eval P = %.17g\n",
                        argv[2], ds.line[i], s.p, sd.x[i * 2 + 1]);
        }
        if (diff > worst || isnan(diff))
            worst = isnan(diff) ? INFINITY : diff;
    }
    printf("score_probe: %zu rows scored by the agent's engine, %zu not evaluated, largest "
           "difference from pdmctl eval %.3g, %zu at or over %g\n",
           ds.n - missing, missing, worst, bad, max_allowed);
    pdm_engine_free(&e);
    pdm_dataset_free(&ds);
    pdm_dataset_free(&sd);
    pdm_csv_free(&csv);
    pdm_csv_free(&sc);
    return bad || missing ? 1 : 0;
}
