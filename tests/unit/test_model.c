/* pdm_model_score / pdm_score_rank against values worked out by hand. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "models/model.h"

static void add_input(struct pdm_model *m, const char *name, double center, double scale,
                      double weight)
{
    struct pdm_model_input *in = &m->inputs[m->n_inputs++];
    memset(in, 0, sizeof(*in));
    snprintf(in->name, sizeof(in->name), "%s", name);
    in->is_age = strcmp(name, "age") == 0;
    in->stat = PDM_STAT_MEAN;
    in->window_s = 10;
    in->center = center;
    in->scale = scale;
    in->weight = weight;
}

/* A one-input model whose logit equals x (intercept 0, center 0, scale 1, weight 1), to drive
 * the probability and health mapping directly. */
static void identity_model(struct pdm_model *m)
{
    memset(m, 0, sizeof(*m));
    add_input(m, "x", 0.0, 1.0, 1.0);
}

static void test_three_inputs(void)
{
    struct pdm_model m;
    memset(&m, 0, sizeof(m));
    m.intercept = -2.0;
    add_input(&m, "temperature", 10.0, 2.0, 0.5); /* x = 13: z = 3/2 = 1.5, c = 0.75 */
    add_input(&m, "vibration", 0.0, 4.0, -1.25);  /* x = 2:  z = 2/4 = 0.5, c = -0.625 */
    add_input(&m, "power", 100.0, 50.0, 2.0);     /* x = 75: z = -25/50 = -0.5, c = -1.0 */
    double x[] = {13.0, 2.0, 75.0};
    struct pdm_score s;
    memset(&s, 0xff, sizeof(s)); /* every field must be written */
    pdm_model_score(&m, x, &s);

    CHECK_INT(s.n_inputs, 3);
    CHECK_NEAR(s.in[0].value, 13.0, 0);
    CHECK_NEAR(s.in[0].z, 1.5, 1e-15);
    CHECK_NEAR(s.in[0].contribution, 0.75, 1e-15);
    CHECK_NEAR(s.in[1].z, 0.5, 1e-15);
    CHECK_NEAR(s.in[1].contribution, -0.625, 1e-15);
    CHECK_NEAR(s.in[2].z, -0.5, 1e-15);
    CHECK_NEAR(s.in[2].contribution, -1.0, 1e-15);
    /* logit = -2 + 0.75 - 0.625 - 1.0 = -2.875 */
    CHECK_NEAR(s.logit, -2.875, 1e-12);
    /* P = 1 / (1 + e^2.875); e^2.875 = 17.725424121461643, so P = 1 / 18.725424121461643
     *   = 0.05340332979982423 */
    CHECK_NEAR(s.probability, 0.05340332979982423, 1e-12);
    /* health = round(100 * (1 - 0.0534033...)) = round(94.66) = 95 */
    CHECK_INT(s.health, 95);

    /* rank by |contribution|: power 1.0 > temperature 0.75 > vibration 0.625 */
    uint32_t order[PDM_MODEL_MAX_INPUTS];
    pdm_score_rank(&s, order);
    CHECK_INT(order[0], 2);
    CHECK_INT(order[1], 0);
    CHECK_INT(order[2], 1);

    CHECK_INT(pdm_model_input_index(&m, "temperature"), 0);
    CHECK_INT(pdm_model_input_index(&m, "power"), 2);
    CHECK_INT(pdm_model_input_index(&m, "pressure"), -1);
    CHECK_INT(pdm_model_input_index(&m, "temp"), -1);
}

static void test_known_logits(void)
{
    struct pdm_model m;
    struct pdm_score s;
    identity_model(&m);

    double x = 0.0; /* P = 1/2 exactly, health = 50 */
    pdm_model_score(&m, &x, &s);
    CHECK_NEAR(s.probability, 0.5, 0);
    CHECK_INT(s.health, 50);

    x = 1.0; /* P = 1/(1 + e^-1) = 1/1.3678794411714423 = 0.7310585786300049 */
    pdm_model_score(&m, &x, &s);
    CHECK_NEAR(s.probability, 0.7310585786300049, 1e-12);
    CHECK_INT(s.health, 27); /* 26.894 -> 27 */

    x = -4.0; /* P = 1/(1 + e^4) = 1/55.598150033144236 = 0.01798620996209156 */
    pdm_model_score(&m, &x, &s);
    CHECK_NEAR(s.probability, 0.01798620996209156, 1e-12);
    CHECK_INT(s.health, 98); /* 98.20 -> 98 */

    /* Far in the tail the naive 1 - 1/(1+e^-l) form loses all digits; the stable form keeps
     * the relative precision: P(-40) = e^-40 / (1 + e^-40) = 4.248354255291589e-18. */
    x = -40.0;
    pdm_model_score(&m, &x, &s);
    CHECK_MSG(fabs(s.probability / 4.248354255291589e-18 - 1.0) < 1e-12, "P(-40) = %.17g",
              s.probability);
    CHECK_INT(s.health, 100);
}

static void test_extreme_logits(void)
{
    struct pdm_model m;
    struct pdm_score s;
    identity_model(&m);

    /* exp(800) overflows a double (max ~ e^709.78): a naive formula gives inf/inf = NaN. */
    double x = 800.0;
    pdm_model_score(&m, &x, &s);
    CHECK(!isnan(s.probability));
    CHECK_NEAR(s.probability, 1.0, 0);
    CHECK_INT(s.health, 0);

    x = -800.0; /* e^-800 underflows to 0 */
    pdm_model_score(&m, &x, &s);
    CHECK(!isnan(s.probability));
    CHECK_NEAR(s.probability, 0.0, 0);
    CHECK_INT(s.health, 100);

    /* A huge contribution from a tiny scale must not turn into NaN either. */
    struct pdm_model m2;
    memset(&m2, 0, sizeof(m2));
    m2.intercept = -4.0;
    add_input(&m2, "vibration", 0.0, 1e-3, 1.0); /* x = 1: z = 1000, logit = 996 */
    x = 1.0;
    pdm_model_score(&m2, &x, &s);
    CHECK_NEAR(s.logit, 996.0, 1e-9);
    CHECK_NEAR(s.probability, 1.0, 0);
}

static void test_health_rounding(void)
{
    struct pdm_model m;
    struct pdm_score s;
    identity_model(&m);

    /* P = 0.124 -> 100 * 0.876 = 87.6 -> 88;  P = 0.126 -> 87.4 -> 87.
     * logit = ln(P / (1 - P)). */
    double x = log(0.124 / 0.876);
    pdm_model_score(&m, &x, &s);
    CHECK_NEAR(s.probability, 0.124, 1e-12);
    CHECK_INT(s.health, 88);
    x = log(0.126 / 0.874);
    pdm_model_score(&m, &x, &s);
    CHECK_NEAR(s.probability, 0.126, 1e-12);
    CHECK_INT(s.health, 87);
    /* P = 0.996 -> 0.4 -> 0;  P = 0.994 -> 0.6 -> 1 */
    x = log(0.996 / 0.004);
    pdm_model_score(&m, &x, &s);
    CHECK_INT(s.health, 0);
    x = log(0.994 / 0.006);
    pdm_model_score(&m, &x, &s);
    CHECK_INT(s.health, 1);
    /* P = 0.004 -> 99.6 -> 100 (never above 100) */
    x = log(0.004 / 0.996);
    pdm_model_score(&m, &x, &s);
    CHECK_INT(s.health, 100);
}

static void test_rank_ties(void)
{
    struct pdm_score s;
    memset(&s, 0, sizeof(s));
    s.n_inputs = 5;
    /* |c| = 0.5, 2, 0.5, 2, 1: the two 2s keep input order (1, 3), then 1 (4), then the two
     * 0.5s in input order (0, 2); sign does not matter. */
    s.in[0].contribution = 0.5;
    s.in[1].contribution = -2.0;
    s.in[2].contribution = -0.5;
    s.in[3].contribution = 2.0;
    s.in[4].contribution = 1.0;
    uint32_t order[PDM_MODEL_MAX_INPUTS];
    pdm_score_rank(&s, order);
    uint32_t want[] = {1, 3, 4, 0, 2};
    for (int i = 0; i < 5; i++)
        CHECK_MSG(order[i] == want[i], "order[%d] = %u, expected %u", i, order[i], want[i]);

    /* all equal: identity order */
    for (int i = 0; i < 5; i++)
        s.in[i].contribution = (i % 2) ? 0.25 : -0.25;
    pdm_score_rank(&s, order);
    for (uint32_t i = 0; i < 5; i++)
        CHECK_INT(order[i], i);
}

static void test_names(void)
{
    CHECK_STR(pdm_stat_name(PDM_STAT_MEAN), "mean");
    CHECK_STR(pdm_stat_name(PDM_STAT_RMS), "rms");
    CHECK_STR(pdm_stat_name(PDM_STAT_MAX), "max");
}

int main(void)
{
    test_three_inputs();
    test_known_logits();
    test_extreme_logits();
    test_health_rounding();
    test_rank_ties();
    test_names();
    return check_summary("test_model");
}
