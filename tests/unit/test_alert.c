/* The alert state machine, step by step. Policy used throughout unless said otherwise:
 * warning 0.5, critical 0.8, clear 0.4, hold 3. */
#include <string.h>

#include "check.h"
#include "models/alert.h"

static const struct pdm_alert_policy pol = {
    .warning = 0.5, .critical = 0.8, .clear = 0.4, .hold = 3};

/* Feeds P and expects no event. */
#define QUIET(f, P)                                                                                \
    do {                                                                                           \
        struct pdm_alert_event ev_;                                                                \
        CHECK_MSG(pdm_alert_step((f), &pol, (P), &ev_) == 0, "unexpected event at P=%g", (P));     \
    } while (0)

/* Feeds P and expects one event with the given state, severity and previous severity. */
#define EVENT(f, P, st, sev, prev)                                                                 \
    do {                                                                                           \
        struct pdm_alert_event ev_;                                                                \
        memset(&ev_, 0, sizeof(ev_));                                                              \
        CHECK_MSG(pdm_alert_step((f), &pol, (P), &ev_) == 1, "no event at P=%g", (P));             \
        CHECK_STR(pdm_alert_state_name(ev_.state), pdm_alert_state_name(st));                      \
        CHECK_STR(pdm_severity_name(ev_.severity), pdm_severity_name(sev));                        \
        CHECK_STR(pdm_severity_name(ev_.previous), pdm_severity_name(prev));                       \
    } while (0)

static void test_hold(void)
{
    struct pdm_alert_fsm f;
    pdm_alert_fsm_init(&f);
    CHECK_INT(f.active, PDM_SEV_NONE);

    QUIET(&f, 0.6);
    QUIET(&f, 0.6);
    QUIET(&f, 0.3); /* dip resets the count */
    QUIET(&f, 0.6);
    QUIET(&f, 0.6);
    QUIET(&f, 0.49); /* just under warning also resets (0.49 is above clear, irrelevant here) */
    QUIET(&f, 0.5);  /* at the threshold counts */
    QUIET(&f, 0.7);
    CHECK_INT(f.active, PDM_SEV_NONE);
    EVENT(&f, 0.55, PDM_ALERT_RAISED, PDM_SEV_WARNING, PDM_SEV_NONE);
    CHECK_INT(f.active, PDM_SEV_WARNING);
    QUIET(&f, 0.6); /* an open episode is not re-raised */
    QUIET(&f, 0.6);
    QUIET(&f, 0.6);
}

static void test_direct_critical(void)
{
    struct pdm_alert_fsm f;
    pdm_alert_fsm_init(&f);
    QUIET(&f, 0.9);
    QUIET(&f, 0.95);
    EVENT(&f, 0.8, PDM_ALERT_RAISED, PDM_SEV_CRITICAL, PDM_SEV_NONE);
    CHECK_INT(f.active, PDM_SEV_CRITICAL);

    /* mixed: warning count reaches hold before the critical count does -> WARNING first */
    pdm_alert_fsm_init(&f);
    QUIET(&f, 0.6);
    QUIET(&f, 0.9);
    EVENT(&f, 0.9, PDM_ALERT_RAISED, PDM_SEV_WARNING, PDM_SEV_NONE);
    /* third consecutive P >= critical: escalate */
    EVENT(&f, 0.9, PDM_ALERT_UPDATED, PDM_SEV_CRITICAL, PDM_SEV_WARNING);
}

static void test_escalation(void)
{
    struct pdm_alert_fsm f;
    pdm_alert_fsm_init(&f);
    QUIET(&f, 0.6);
    QUIET(&f, 0.6);
    EVENT(&f, 0.6, PDM_ALERT_RAISED, PDM_SEV_WARNING, PDM_SEV_NONE);
    snprintf(f.alert_id, sizeof(f.alert_id), "pump1-7");
    QUIET(&f, 0.85);
    QUIET(&f, 0.85);
    QUIET(&f, 0.7); /* dip below critical resets the escalation count */
    QUIET(&f, 0.85);
    QUIET(&f, 0.85);
    CHECK_INT(f.active, PDM_SEV_WARNING);
    EVENT(&f, 0.99, PDM_ALERT_UPDATED, PDM_SEV_CRITICAL, PDM_SEV_WARNING);
    CHECK_INT(f.active, PDM_SEV_CRITICAL);
    CHECK_STR(f.alert_id, "pump1-7"); /* same episode */
}

static void test_deescalation(void)
{
    struct pdm_alert_fsm f;
    pdm_alert_fsm_init(&f);
    QUIET(&f, 0.9);
    QUIET(&f, 0.9);
    EVENT(&f, 0.9, PDM_ALERT_RAISED, PDM_SEV_CRITICAL, PDM_SEV_NONE);
    QUIET(&f, 0.7);
    QUIET(&f, 0.7);
    QUIET(&f, 0.85); /* back at critical: the de-escalation count restarts */
    QUIET(&f, 0.7);
    QUIET(&f, 0.45); /* between clear and warning still counts as "below critical" */
    CHECK_INT(f.active, PDM_SEV_CRITICAL);
    EVENT(&f, 0.6, PDM_ALERT_UPDATED, PDM_SEV_WARNING, PDM_SEV_CRITICAL);
    CHECK_INT(f.active, PDM_SEV_WARNING);
    /* and back up needs a full hold again */
    QUIET(&f, 0.9);
    QUIET(&f, 0.9);
    EVENT(&f, 0.9, PDM_ALERT_UPDATED, PDM_SEV_CRITICAL, PDM_SEV_WARNING);
}

static void test_hysteresis_and_clear(void)
{
    struct pdm_alert_fsm f;
    pdm_alert_fsm_init(&f);
    QUIET(&f, 0.6);
    QUIET(&f, 0.6);
    EVENT(&f, 0.6, PDM_ALERT_RAISED, PDM_SEV_WARNING, PDM_SEV_NONE);
    snprintf(f.alert_id, sizeof(f.alert_id), "fan-1");
    /* below warning but not below clear: the alert stays, however long */
    for (int i = 0; i < 50; i++)
        QUIET(&f, i % 2 ? 0.45 : 0.4);
    CHECK_INT(f.active, PDM_SEV_WARNING);
    /* first evaluation under clear ends it, no hold */
    EVENT(&f, 0.39, PDM_ALERT_CLEARED, PDM_SEV_WARNING, PDM_SEV_WARNING);
    CHECK_INT(f.active, PDM_SEV_NONE);
    CHECK_STR(f.alert_id, "fan-1"); /* kept for the CLEARED report */
    QUIET(&f, 0.1);

    /* a new episode needs a full hold again */
    QUIET(&f, 0.6);
    QUIET(&f, 0.6);
    EVENT(&f, 0.6, PDM_ALERT_RAISED, PDM_SEV_WARNING, PDM_SEV_NONE);

    /* CRITICAL clears directly too, reporting its last severity */
    pdm_alert_fsm_init(&f);
    QUIET(&f, 0.9);
    QUIET(&f, 0.9);
    EVENT(&f, 0.9, PDM_ALERT_RAISED, PDM_SEV_CRITICAL, PDM_SEV_NONE);
    QUIET(&f, 0.7);
    EVENT(&f, 0.05, PDM_ALERT_CLEARED, PDM_SEV_CRITICAL, PDM_SEV_CRITICAL);
    /* counters do not survive the episode: two highs after the clear are not enough */
    QUIET(&f, 0.9);
    QUIET(&f, 0.9);
    EVENT(&f, 0.9, PDM_ALERT_RAISED, PDM_SEV_CRITICAL, PDM_SEV_NONE);
}

static void test_nan_and_hold1(void)
{
    struct pdm_alert_fsm f;
    pdm_alert_fsm_init(&f);
    QUIET(&f, 0.6);
    QUIET(&f, 0.6);
    QUIET(&f, NAN); /* a broken score breaks the run ... */
    QUIET(&f, 0.6);
    QUIET(&f, 0.6);
    EVENT(&f, 0.6, PDM_ALERT_RAISED, PDM_SEV_WARNING, PDM_SEV_NONE);
    QUIET(&f, NAN); /* ... and does not clear an open alert */
    CHECK_INT(f.active, PDM_SEV_WARNING);

    struct pdm_alert_policy p1 = pol;
    p1.hold = 1;
    struct pdm_alert_event ev;
    pdm_alert_fsm_init(&f);
    CHECK_INT(pdm_alert_step(&f, &p1, 0.95, &ev), 1);
    CHECK_INT(ev.state, PDM_ALERT_RAISED);
    CHECK_INT(ev.severity, PDM_SEV_CRITICAL);
    CHECK_INT(pdm_alert_step(&f, &p1, 0.6, &ev), 1);
    CHECK_INT(ev.state, PDM_ALERT_UPDATED);
    CHECK_INT(ev.severity, PDM_SEV_WARNING);
    CHECK_INT(pdm_alert_step(&f, &p1, 0.2, &ev), 1);
    CHECK_INT(ev.state, PDM_ALERT_CLEARED);
}

static void test_names(void)
{
    CHECK_STR(pdm_severity_name(PDM_SEV_NONE), "NONE");
    CHECK_STR(pdm_severity_name(PDM_SEV_WARNING), "WARNING");
    CHECK_STR(pdm_severity_name(PDM_SEV_CRITICAL), "CRITICAL");
    CHECK_STR(pdm_alert_state_name(PDM_ALERT_RAISED), "RAISED");
    CHECK_STR(pdm_alert_state_name(PDM_ALERT_UPDATED), "UPDATED");
    CHECK_STR(pdm_alert_state_name(PDM_ALERT_CLEARED), "CLEARED");
}

int main(void)
{
    test_hold();
    test_direct_critical();
    test_escalation();
    test_deescalation();
    test_hysteresis_and_clear();
    test_nan_and_hold1();
    test_names();
    return check_summary("test_alert");
}
