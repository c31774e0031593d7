/* pdm_model_score / pdm_score_rank against values worked out by hand. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "models/model.h"
#include "train/model_write.h"

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

/* A model with derived inputs declared out of order: power_sq depends on power, declared after
 * it; dt is a difference; everything linked by pdm_model_link. */
static void derived_model(struct pdm_model *m)
{
    memset(m, 0, sizeof(*m));
    m->intercept = 0.5;
    add_input(m, "power_sq", 100.0, 50.0, 0.5); /* 0: square(power) */
    add_input(m, "torque", 40.0, 10.0, 1.0);    /* 1 */
    add_input(m, "speed", 1500.0, 200.0, -1.0); /* 2 */
    add_input(m, "power", 60.0, 20.0, 2.0);     /* 3: torque * speed / 1000 would be nicer, but
                                                 * the expression language has no constants */
    add_input(m, "dt", 0.0, 1.0, 0.25);         /* 4: torque - speed */
    m->inputs[0].derive = PDM_DERIVE_PRODUCT;
    m->inputs[0].arg[0] = m->inputs[0].arg[1] = 3;
    m->inputs[3].derive = PDM_DERIVE_PRODUCT;
    m->inputs[3].arg[0] = 1;
    m->inputs[3].arg[1] = 2;
    m->inputs[4].derive = PDM_DERIVE_DIFF;
    m->inputs[4].arg[0] = 1;
    m->inputs[4].arg[1] = 2;
}

static void test_derived(void)
{
    struct pdm_model m;
    derived_model(&m);
    int bad = -1;
    char err[256] = "";
    CHECK_INT(pdm_model_link(&m, &bad, err, sizeof(err)), 0);
    CHECK_INT(m.n_derived, 3);
    /* power (3) before power_sq (0), whatever the declaration order */
    int pos_power = -1, pos_sq = -1;
    for (uint32_t j = 0; j < m.n_derived; j++) {
        if (m.derive_order[j] == 3)
            pos_power = (int)j;
        if (m.derive_order[j] == 0)
            pos_sq = (int)j;
    }
    CHECK(pos_power >= 0 && pos_sq > pos_power);

    /* derived slots in x are ignored: NaN there must not leak into the score */
    double x[] = {NAN, 45.0, 1200.0, NAN, NAN};
    struct pdm_score s;
    pdm_model_score(&m, x, &s);
    CHECK_NEAR(s.in[3].value, 45.0 * 1200.0, 0);
    CHECK_NEAR(s.in[0].value, (45.0 * 1200.0) * (45.0 * 1200.0), 0);
    CHECK_NEAR(s.in[4].value, 45.0 - 1200.0, 0);
    /* logit by hand: 0.5 + 0.5 (P^2 - 100)/50 + (45-40)/10 - (1200-1500)/200 + 2 (P - 60)/20
     *                + 0.25 (45 - 1200) */
    double pw = 45.0 * 1200.0;
    double want = 0.5 + 0.5 * (pw * pw - 100.0) / 50.0 + 1.0 * (45.0 - 40.0) / 10.0 +
                  -1.0 * (1200.0 - 1500.0) / 200.0 + 2.0 * (pw - 60.0) / 20.0 +
                  0.25 * (45.0 - 1200.0);
    CHECK_NEAR(s.logit, want, 1e-6 * fabs(want));

    /* pdm_model_derive alone gives the same values */
    double v[] = {0, 45.0, 1200.0, 0, 0};
    pdm_model_derive(&m, v);
    CHECK_NEAR(v[0], s.in[0].value, 0);
    CHECK_NEAR(v[4], -1155.0, 0);

    char text[64];
    pdm_model_format_derive(&m, &m.inputs[0], text, sizeof(text));
    CHECK_STR(text, "square(power)");
    pdm_model_format_derive(&m, &m.inputs[3], text, sizeof(text));
    CHECK_STR(text, "torque * speed");
    pdm_model_format_derive(&m, &m.inputs[4], text, sizeof(text));
    CHECK_STR(text, "torque - speed");
    CHECK_STR(pdm_model_input_kind(&m.inputs[0]), "derived");
    CHECK_STR(pdm_model_input_kind(&m.inputs[1]), "mean");

    /* a cycle: power = torque * power_sq, power_sq = square(power) */
    m.inputs[3].arg[1] = 0;
    CHECK_INT(pdm_model_link(&m, &bad, err, sizeof(err)), -EINVAL);
    CHECK_STR(err, "derived inputs form a cycle: power_sq -> power -> power_sq");
    CHECK_INT(m.n_derived, 0);
    /* an input defined by itself */
    derived_model(&m);
    m.inputs[4].arg[1] = 4;
    CHECK_INT(pdm_model_link(&m, &bad, err, sizeof(err)), -EINVAL);
    CHECK_INT(bad, 4);
    CHECK_STR(err, "derived inputs form a cycle: dt -> dt");
    /* an operand out of range */
    derived_model(&m);
    m.inputs[3].arg[0] = 9;
    CHECK_INT(pdm_model_link(&m, &bad, err, sizeof(err)), -EINVAL);
    CHECK_INT(bad, 3);
}

static void test_parse_derive(void)
{
    struct pdm_model m;
    derived_model(&m);
    enum pdm_derive_op op;
    uint8_t arg[2];
    char err[256];
    CHECK_INT(pdm_model_parse_derive(&m, " torque*speed ", &op, arg, err, sizeof(err)), 0);
    CHECK_INT(op, PDM_DERIVE_PRODUCT);
    CHECK_INT(arg[0], 1);
    CHECK_INT(arg[1], 2);
    CHECK_INT(pdm_model_parse_derive(&m, "square ( power )", &op, arg, err, sizeof(err)), 0);
    CHECK_INT(op, PDM_DERIVE_PRODUCT);
    CHECK_INT(arg[0], 3);
    CHECK_INT(arg[1], 3);
    CHECK_INT(pdm_model_parse_derive(&m, "speed - torque", &op, arg, err, sizeof(err)), 0);
    CHECK_INT(op, PDM_DERIVE_DIFF);
    CHECK_INT(arg[0], 2);
    CHECK_INT(arg[1], 1);

    CHECK_INT(pdm_model_parse_derive(&m, "torque * rpm", &op, arg, err, sizeof(err)), -EINVAL);
    CHECK_STR(err, "no input 'rpm' in this model (inputs: power_sq torque speed power dt)");
    CHECK_INT(pdm_model_parse_derive(&m, "torque / speed", &op, arg, err, sizeof(err)), -EINVAL);
    CHECK_STR(err, "expected 'A * B', 'A - B' or 'square(A)', got 'torque / speed'");
    CHECK_INT(pdm_model_parse_derive(&m, "torque * speed * dt", &op, arg, err, sizeof(err)),
              -EINVAL);
    CHECK_INT(pdm_model_parse_derive(&m, "square(torque", &op, arg, err, sizeof(err)), -EINVAL);
    CHECK_INT(pdm_model_parse_derive(&m, "", &op, arg, err, sizeof(err)), -EINVAL);
    CHECK_INT(pdm_model_parse_derive(&m, "2 * torque", &op, arg, err, sizeof(err)), -EINVAL);
    CHECK_STR(err, "expected an input name at '2 * torque'");
}

/* Written and read back, a model scores bit for bit as in memory, however awkward its numbers. */
static void test_write_reload(void)
{
    static struct pdm_model m, back;
    static struct pdm_model_train t, tb;
    derived_model(&m);
    int bad;
    char err[256];
    CHECK_INT(pdm_model_link(&m, &bad, err, sizeof(err)), 0);
    snprintf(m.id, sizeof(m.id), "roundtrip");
    m.version = 42;
    m.intercept = -1.0 / 3.0;
    m.warning = 0.1 + 0.2;
    m.critical = 0.9;
    m.clear = 1e-7;
    m.hold = 2;
    m.eval_period_ms = 500;
    for (uint32_t k = 0; k < m.n_inputs; k++) {
        m.inputs[k].center = 1e-300 * (k + 1) + 1.0 / (k + 3);
        m.inputs[k].scale = 1e5 / 7.0 + k;
        m.inputs[k].weight = -2.0 / 9.0 * (k + 1);
        m.inputs[k].window_s = 60;
    }
    m.inputs[2].stat = PDM_STAT_MAX;
    m.inputs[2].window_s = 12.5;
    pdm_model_train_defaults(&t);
    snprintf(t.label, sizeof(t.label), "Machine failure");
    snprintf(t.column[1], sizeof(t.column[1]), "Torque [Nm]");
    snprintf(t.column[2], sizeof(t.column[2]), "Speed; rpm");
    t.l2 = 0.125;
    t.class_weight = PDM_CW_FIXED;
    t.pos_weight = 12.5;
    t.rows = 10000;
    t.positives = 339;
    t.iterations = 8;

    char path[] = "/tmp/test_model_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    FILE *f = fdopen(fd, "w");
    CHECK_INT(pdm_model_write(f, &m, &t, "a comment\nover two lines"), 0);
    fclose(f);
    struct pdm_diag d = {.out = stderr};
    CHECK_INT(pdm_model_load_ex(path, &back, &tb, &d), 0);
    CHECK_STR(back.id, "roundtrip");
    CHECK_INT(back.version, 42);
    CHECK(memcmp(&back.intercept, &m.intercept, sizeof(double)) == 0);
    CHECK(back.warning == m.warning && back.critical == m.critical && back.clear == m.clear);
    CHECK_INT(back.n_inputs, m.n_inputs);
    CHECK_INT(back.n_derived, 3);
    for (uint32_t k = 0; k < m.n_inputs; k++) {
        CHECK(back.inputs[k].center == m.inputs[k].center);
        CHECK(back.inputs[k].scale == m.inputs[k].scale);
        CHECK(back.inputs[k].weight == m.inputs[k].weight);
        CHECK_INT(back.inputs[k].derive, m.inputs[k].derive);
    }
    CHECK_INT(back.inputs[2].stat, PDM_STAT_MAX);
    CHECK_NEAR(back.inputs[2].window_s, 12.5, 0);
    double x[] = {0, 41.5, 1456.25, 0, 0};
    struct pdm_score s1, s2;
    pdm_model_score(&m, x, &s1);
    pdm_model_score(&back, x, &s2);
    CHECK(memcmp(&s1.probability, &s2.probability, sizeof(double)) == 0);
    CHECK(memcmp(&s1.logit, &s2.logit, sizeof(double)) == 0);
    CHECK_INT(tb.present, 1);
    CHECK_STR(tb.label, "Machine failure");
    CHECK_STR(tb.column[1], "Torque [Nm]");
    CHECK_STR(tb.column[2], "Speed; rpm");
    CHECK_STR(tb.column[0], ""); /* derived: no column */
    CHECK(tb.l2 == 0.125);
    CHECK_INT(tb.class_weight, PDM_CW_FIXED);
    CHECK(tb.pos_weight == 12.5);
    CHECK_INT(tb.rows, 10000);
    CHECK_INT(tb.positives, 339);
    CHECK_INT(tb.iterations, 8);
    CHECK_INT(tb.fixed_thresholds, 0);

    /* a column the INI reader would cut is refused, not written wrong */
    snprintf(t.column[1], sizeof(t.column[1]), "Torque ;Nm");
    f = fopen(path, "w");
    CHECK_INT(pdm_model_write(f, &m, &t, NULL), -EINVAL);
    fclose(f);
    unlink(path);
    CHECK_INT(pdm_model_column_ok("Torque [Nm]"), 1);
    CHECK_INT(pdm_model_column_ok(" padded"), 0);
    CHECK_INT(pdm_model_column_ok(""), 0);

    char name[PDM_MODEL_NAME_MAX + 1];
    pdm_model_name_suggest("Process temperature [K]", name);
    CHECK_STR(name, "process_temperature_k");
    pdm_model_name_suggest("2nd stage (bar)", name);
    CHECK_STR(name, "c2nd_stage_bar");
    CHECK_INT(pdm_model_name_ok(name), 1);
    CHECK_INT(pdm_model_name_ok("Torque"), 0);
}

int main(void)
{
    test_three_inputs();
    test_known_logits();
    test_extreme_logits();
    test_health_rounding();
    test_rank_ties();
    test_names();
    test_derived();
    test_parse_derive();
    test_write_reload();
    return check_summary("test_model");
}
