/* Usage counters (run time, starts with hysteresis and debounce) and the maintenance schedule
 * (hours, starts, calendar months since the last service). */
#include <errno.h>
#include <string.h>

#include <stdlib.h>

#include "agent/store.h"
#include "agent/usage.h"
#include "check.h"

/* Feeds value every step_ms from *t for dur_ms. */
static int feed(struct pdm_usage *u, double value, int64_t *t, int64_t dur_ms, int64_t step_ms)
{
    int starts = 0;
    for (int64_t end = *t + dur_ms; *t < end;) {
        *t += step_ms;
        starts += pdm_usage_sample(u, value, *t) == 1;
    }
    return starts;
}

static void test_run_time_and_starts(void)
{
    struct pdm_usage u;
    memset(&u, 0, sizeof(u));
    pdm_usage_init(&u, 50.0, 5.0, 2000, 10000);
    int64_t t = 1000;
    CHECK_INT(feed(&u, 10, &t, 10000, 500), 0);
    CHECK_INT(u.c.run_ms, 0);
    /* on for 60 s: one start once the 2 s debounce held, the debounce time is run time too */
    CHECK_INT(feed(&u, 80, &t, 60000, 500), 1);
    CHECK_INT(u.c.starts, 1);
    CHECK_INT(u.c.running, 1);
    CHECK_NEAR((double)u.c.run_ms, 60000, 500);
    /* 47 is inside the hysteresis band (off at <= 45): still running */
    CHECK_INT(feed(&u, 47, &t, 10000, 500), 0);
    CHECK_INT(u.c.running, 1);
    CHECK_NEAR((double)u.c.run_ms, 70000, 500);
    /* a 1 s dip below the band does not last the debounce: no stop, no start, time kept */
    CHECK_INT(feed(&u, 0, &t, 1000, 500), 0);
    CHECK_INT(feed(&u, 80, &t, 9000, 500), 0);
    CHECK_INT(u.c.starts, 1);
    CHECK_NEAR((double)u.c.run_ms, 80000, 500);
    /* off for good: the pending 2 s are off time */
    uint64_t before = u.c.run_ms;
    CHECK_INT(feed(&u, 0, &t, 30000, 500), 0);
    CHECK_INT(u.c.running, 0);
    CHECK_INT(u.c.run_ms, before);
    /* a flicker above the threshold shorter than the debounce is no start */
    CHECK_INT(feed(&u, 80, &t, 1000, 500), 0);
    CHECK_INT(feed(&u, 0, &t, 5000, 500), 0);
    CHECK_INT(u.c.starts, 1);
    CHECK_INT(u.c.run_ms, before);
    /* second real start */
    CHECK_INT(feed(&u, 80, &t, 5000, 500), 1);
    CHECK_INT(u.c.starts, 2);
}

static void test_gap_not_counted(void)
{
    struct pdm_usage u;
    memset(&u, 0, sizeof(u));
    pdm_usage_init(&u, 50.0, 0, 0, 5000);
    int64_t t = 1;
    feed(&u, 80, &t, 10000, 1000);
    uint64_t r = u.c.run_ms;
    t += 3600000; /* an hour without readings */
    pdm_usage_sample(&u, 80, t);
    CHECK_INT(u.c.run_ms, r);
    CHECK_INT(u.c.starts, 1);
}

static void test_restart_resumes_state(void)
{
    /* a restart while running: the persisted state says running, so no extra start */
    struct pdm_usage u;
    memset(&u, 0, sizeof(u));
    u.c.running = 1;
    u.c.starts = 7;
    pdm_usage_init(&u, 50.0, 0, 1000, 5000);
    int64_t t = 5;
    feed(&u, 80, &t, 5000, 500);
    CHECK_INT(u.c.starts, 7);
}

static void test_due(void)
{
    struct pdm_service_limits lim = {.every_hours = 100, .every_starts = 50, .every_months = 6};
    struct pdm_usage_counts c = {0};
    char why[512];
    int64_t now = 1735689600000LL; /* 2025-01-01 */
    c.run_ms = 99 * 3600000ULL;
    c.starts = 49;
    CHECK_INT(pdm_usage_due(&lim, &c, now, why, sizeof(why)), 0);
    c.run_ms = 100 * 3600000ULL;
    CHECK_INT(pdm_usage_due(&lim, &c, now, why, sizeof(why)), PDM_DUE_HOURS);
    CHECK(strstr(why, "100 run hours since service >= service_every_hours 100") != NULL);
    c.starts = 50;
    CHECK_INT(pdm_usage_due(&lim, &c, now, why, sizeof(why)), PDM_DUE_HOURS | PDM_DUE_STARTS);
    /* a service visit resets what counts */
    c.svc_run_ms = c.run_ms;
    c.svc_starts = c.starts;
    c.svc_wall_ms = now;
    CHECK_INT(pdm_usage_due(&lim, &c, now, why, sizeof(why)), 0);
    /* months: from the visit, calendar months */
    int64_t six = pdm_add_months(now / 1000, 6) * 1000;
    CHECK_INT(pdm_usage_due(&lim, &c, six - 1000, why, sizeof(why)), 0);
    CHECK_INT(pdm_usage_due(&lim, &c, six, why, sizeof(why)), PDM_DUE_MONTHS);
    /* without a visit, from the configured date; without either, months never fire */
    c.svc_wall_ms = 0;
    lim.since_s = now / 1000;
    CHECK_INT(pdm_usage_due(&lim, &c, six, why, sizeof(why)), PDM_DUE_MONTHS);
    lim.since_s = 0;
    CHECK_INT(pdm_usage_due(&lim, &c, six, why, sizeof(why)), 0);
    /* a small buffer is cut, never overrun */
    c.run_ms += 200 * 3600000ULL;
    char small[8];
    CHECK_INT(pdm_usage_due(&lim, &c, now, small, sizeof(small)), PDM_DUE_HOURS);
    CHECK_INT(strlen(small), 7);
}

static void test_add_months(void)
{
    /* 2024-01-31 + 1 month = 2024-02-29 (leap), + 13 = 2025-02-28 */
    int64_t jan31 = 1706659200; /* 2024-01-31T00:00:00Z */
    CHECK_INT(pdm_add_months(jan31, 1), 1709164800);
    CHECK_INT(pdm_add_months(jan31, 13), 1740700800);
    CHECK_INT(pdm_add_months(jan31, 0), jan31);
    /* past January 2038 (beyond a 32-bit time_t, armhf): 2025-06-01 + 156 months =
     * 2038-06-01, + 1200 = 2125-06-01; the time of day is kept, a year 2100 February has 28 */
    int64_t jun1 = 1748736000; /* 2025-06-01T00:00:00Z */
    CHECK_INT(pdm_add_months(jun1, 156), 2158963200LL);
    CHECK_INT(pdm_add_months(jun1, 1200), 4904409600LL);
    CHECK_INT(pdm_add_months(jan31 + 3723, 913), 4107456000LL + 3723); /* 2100-02-28 */
    /* a schedule due after 2038 is not due in 2026 */
    struct pdm_service_limits lim = {.every_months = 156, .since_s = jun1};
    struct pdm_usage_counts c;
    memset(&c, 0, sizeof(c));
    char why[64];
    CHECK_INT(pdm_usage_due(&lim, &c, 1780000000000LL, why, sizeof(why)), 0);
    CHECK_INT(pdm_usage_due(&lim, &c, 2158963200000LL, why, sizeof(why)), PDM_DUE_MONTHS);
}

/* The store's usage table: what was staged and committed is read back after a reopen, per
 * asset name (slots may be bound in another order), and a visit with its outcome is kept. */
static void test_store_round_trip(void)
{
    char dir[] = "/tmp/pdm-test-usage-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char err[256];
    struct pdm_store *st = NULL;
    CHECK_INT(pdm_store_open(&st, dir, err, sizeof(err)), 0);
    if (!st)
        return;
    CHECK_INT(pdm_store_usage_slots(st, 2), 0);
    struct pdm_usage_counts a, b;
    CHECK_INT(pdm_store_usage_load(st, 0, "a", &a), 0);
    CHECK_INT(pdm_store_usage_load(st, 1, "b", &b), 0);
    CHECK_INT(a.run_ms, 0);
    a.run_ms = 123456789;
    a.starts = 42;
    a.running = 1;
    a.obs_max_p = 0.25;
    a.confirm_ms = 1735689600000LL;
    b.starts = 7;
    uint64_t visit = 0;
    CHECK_INT(pdm_store_add_visit(st, "a", 1735600000000LL, "WO-9", "ann", "", &a, &visit), 0);
    CHECK(visit > 0);
    a.visit = visit;
    pdm_store_usage_put(st, 0, &a);
    pdm_store_usage_put(st, 1, &b);
    CHECK_INT(pdm_store_commit(st), 0);
    CHECK_INT(pdm_store_set_visit_outcome(st, visit, 2, 1735700000000LL, 0.9), 0);
    CHECK_INT(pdm_store_put_ack(st, "a-maint-5", 1735700000000LL), 0);
    pdm_store_close(st);

    st = NULL;
    CHECK_INT(pdm_store_open(&st, dir, err, sizeof(err)), 0);
    if (!st)
        return;
    CHECK_INT(pdm_store_usage_slots(st, 2), 0);
    struct pdm_usage_counts a2, b2;
    CHECK_INT(pdm_store_usage_load(st, 0, "b", &b2), 0);
    CHECK_INT(pdm_store_usage_load(st, 1, "a", &a2), 0);
    CHECK(memcmp(&a, &a2, sizeof(a)) == 0);
    CHECK_INT(b2.starts, 7);
    int64_t when = 0;
    CHECK_INT(pdm_store_acked(st, "a-maint-5", &when), 1);
    CHECK_INT(when, 1735700000000LL);
    CHECK_INT(pdm_store_acked(st, "a-maint-6", NULL), 0);
    int state = 0;
    CHECK_INT(pdm_store_alert_state(st, "nosuch", &state), -ENOENT);
    pdm_store_close(st);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    CHECK_INT(system(cmd), 0);
}

int main(void)
{
    test_run_time_and_starts();
    test_gap_not_counted();
    test_restart_resumes_state();
    test_due();
    test_add_months();
    test_store_round_trip();
    return check_summary("test_usage");
}
