/* Alert policy state machine (semantics in alert.h). One struct per asset, no allocation.
 *
 * A NaN probability satisfies no comparison: it breaks every counter and clears nothing, so a
 * broken input can neither raise nor silently end an episode. */
#include "alert.h"

#include <string.h>

void pdm_alert_fsm_init(struct pdm_alert_fsm *f)
{
    memset(f, 0, sizeof(*f));
    f->active = PDM_SEV_NONE;
}

/* Counters only need to reach `hold`; saturating keeps a months-long episode from overflowing. */
static int bump(int n, int hold)
{
    return n < hold ? n + 1 : n;
}

static int emit(struct pdm_alert_event *ev, enum pdm_alert_state state, enum pdm_severity sev,
                enum pdm_severity prev)
{
    if (ev) {
        ev->state = state;
        ev->severity = sev;
        ev->previous = prev;
    }
    return 1;
}

int pdm_alert_step(struct pdm_alert_fsm *f, const struct pdm_alert_policy *p, double probability,
                   struct pdm_alert_event *ev)
{
    double P = probability;
    int hold = p->hold > 0 ? p->hold : 1;

    f->n_warn = P >= p->warning ? bump(f->n_warn, hold) : 0;
    f->n_crit = P >= p->critical ? bump(f->n_crit, hold) : 0;
    /* De-escalation evidence only counts while CRITICAL is open. */
    f->n_down = (f->active == PDM_SEV_CRITICAL && P >= p->clear && P < p->critical)
                    ? bump(f->n_down, hold)
                    : 0;

    switch (f->active) {
    case PDM_SEV_NONE:
        if (f->n_crit >= hold) {
            f->active = PDM_SEV_CRITICAL;
            return emit(ev, PDM_ALERT_RAISED, PDM_SEV_CRITICAL, PDM_SEV_NONE);
        }
        if (f->n_warn >= hold) {
            f->active = PDM_SEV_WARNING;
            return emit(ev, PDM_ALERT_RAISED, PDM_SEV_WARNING, PDM_SEV_NONE);
        }
        return 0;
    case PDM_SEV_WARNING:
    case PDM_SEV_CRITICAL:
        if (P < p->clear) {
            enum pdm_severity last = f->active;
            f->active = PDM_SEV_NONE;
            f->n_warn = f->n_crit = f->n_down = 0;
            /* alert_id stays: the caller reports the CLEARED event under it. */
            return emit(ev, PDM_ALERT_CLEARED, last, last);
        }
        if (f->active == PDM_SEV_WARNING && f->n_crit >= hold) {
            f->active = PDM_SEV_CRITICAL;
            return emit(ev, PDM_ALERT_UPDATED, PDM_SEV_CRITICAL, PDM_SEV_WARNING);
        }
        if (f->active == PDM_SEV_CRITICAL && f->n_down >= hold) {
            f->active = PDM_SEV_WARNING;
            f->n_down = 0;
            return emit(ev, PDM_ALERT_UPDATED, PDM_SEV_WARNING, PDM_SEV_CRITICAL);
        }
        return 0;
    }
    return 0;
}

const char *pdm_severity_name(enum pdm_severity s)
{
    switch (s) {
    case PDM_SEV_NONE:
        return "NONE";
    case PDM_SEV_WARNING:
        return "WARNING";
    case PDM_SEV_CRITICAL:
        return "CRITICAL";
    }
    return "?";
}

const char *pdm_alert_state_name(enum pdm_alert_state s)
{
    switch (s) {
    case PDM_ALERT_RAISED:
        return "RAISED";
    case PDM_ALERT_UPDATED:
        return "UPDATED";
    case PDM_ALERT_CLEARED:
        return "CLEARED";
    }
    return "?";
}
