/* Alert policy: a small state machine per asset, driven by one probability per evaluation.
 *
 *  - Not active: WARNING is RAISED after `hold` consecutive evaluations with P >= warning;
 *    CRITICAL is RAISED directly after `hold` consecutive evaluations with P >= critical.
 *  - Active WARNING: UPDATED to CRITICAL after `hold` consecutive evaluations with P >= critical.
 *  - Active CRITICAL: UPDATED to WARNING after `hold` consecutive evaluations with
 *    clear <= P < critical (de-escalation is debounced like escalation).
 *  - Active (either): CLEARED at the first evaluation with P < clear (hysteresis: between clear
 *    and warning nothing changes).
 * Counters reset whenever their condition is broken. No allocation. */
#ifndef PDM_ALERT_H
#define PDM_ALERT_H

#include <stdint.h>

enum pdm_severity {
    PDM_SEV_NONE = 0,
    PDM_SEV_WARNING = 1, /* values match pdm.v1.Severity */
    PDM_SEV_CRITICAL = 2,
};

enum pdm_alert_state {
    PDM_ALERT_RAISED = 1, /* values match pdm.v1.AlertState */
    PDM_ALERT_UPDATED = 2,
    PDM_ALERT_CLEARED = 3,
};

struct pdm_alert_policy {
    double warning, critical, clear;
    int hold;
};

#define PDM_ALERT_ID_MAX 96

struct pdm_alert_fsm {
    enum pdm_severity active; /* NONE when no episode is open */
    int n_warn;               /* consecutive evaluations with P >= warning */
    int n_crit;               /* consecutive evaluations with P >= critical */
    int n_down; /* consecutive evaluations with clear <= P < critical (when CRITICAL) */
    char alert_id[PDM_ALERT_ID_MAX]; /* set by the caller on RAISED; kept until CLEARED */
};

struct pdm_alert_event {
    enum pdm_alert_state state;
    enum pdm_severity severity; /* after the event (on CLEARED: the last active severity) */
    enum pdm_severity previous; /* before the event (NONE on RAISED) */
};

void pdm_alert_fsm_init(struct pdm_alert_fsm *f);
/* Feeds one probability; returns 1 and fills ev when the episode changes, else 0. On RAISED the
 * caller sets f->alert_id. On CLEARED f->alert_id still holds the id until the next RAISED. */
int pdm_alert_step(struct pdm_alert_fsm *f, const struct pdm_alert_policy *p, double probability,
                   struct pdm_alert_event *ev);
const char *pdm_severity_name(enum pdm_severity s);
const char *pdm_alert_state_name(enum pdm_alert_state s);

#endif
