/* agent/outbox.c with a real store (SQLite in a private temporary folder) and a fake uplink:
 * alerts go out before telemetry, the in-flight window is bounded, a PUBACK marks rows and
 * alerts delivered, a failed send or a lost connection makes them go out again, and the
 * backlog is replayed after a reconnect (live rows ahead of it, at most REPLAY_INFLIGHT
 * replay batches in flight). The store's own API is large and its transactions are part of
 * what the outbox relies on, so it is the real one rather than a fake. */
#define _XOPEN_SOURCE 700 /* nftw() for cleaning up the temporary folder */
#include "agent/outbox.h"
#include "agent/store.h"
#include "drivers/bus_config.h"
#include "check.h"

#include <errno.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- the fake uplink: records what it was handed ------------------------------------------- */

#define MAX_PUBS 4096

struct pub {
    char topic[128];
    uint64_t cookie;
    int retained;
};

static struct pub g_pubs[MAX_PUBS];
static int g_npubs;
static int g_refuse; /* 0: accept; else the -errno to return */

static int fake_publish(void *ctx, const char *topic, const void *payload, size_t len, int retained,
                        uint64_t cookie)
{
    (void)ctx;
    (void)payload;
    (void)len;
    if (g_refuse)
        return g_refuse;
    if (g_npubs >= MAX_PUBS)
        return -ENOSPC;
    struct pub *p = &g_pubs[g_npubs++];
    snprintf(p->topic, sizeof(p->topic), "%s", topic);
    p->cookie = cookie;
    p->retained = retained;
    return 0;
}

static int ends_with(const char *s, const char *tail)
{
    size_t n = strlen(s), m = strlen(tail);
    return n >= m && strcmp(s + n - m, tail) == 0;
}

static int is_alert(int i)
{
    return ends_with(g_pubs[i].topic, "/alert");
}

static int is_telemetry(int i)
{
    return ends_with(g_pubs[i].topic, "/telemetry");
}

/* The in-flight entry of a published message (the window is visible in outbox.h). */
static const struct pdm_outbox_inflight *slot_of(const struct pdm_outbox *o, uint64_t cookie)
{
    for (int i = 0; i < PDM_OUTBOX_MAX_INFLIGHT; i++)
        if (o->inflight[i].kind != PDM_OB_FREE && o->inflight[i].cookie == cookie)
            return &o->inflight[i];
    return NULL;
}

static int in_flight(const struct pdm_outbox *o)
{
    int n = 0;
    for (int i = 0; i < PDM_OUTBOX_MAX_INFLIGHT; i++)
        n += o->inflight[i].kind != PDM_OB_FREE;
    return n;
}

/* ---- the store ----------------------------------------------------------------------------- */

static char g_dir[64];
static uint8_t g_buf[256 * 1024];
static uint32_t g_ref;

static void put_rows(struct pdm_store *s, int n)
{
    int failed = 0;
    for (int i = 0; i < n; i++) {
        uint64_t seq;
        failed += pdm_store_put_row(s, PDM_ROW_READING, g_ref, 1700000000000 + i, i, &seq) != 0;
    }
    CHECK(failed == 0);
    CHECK(pdm_store_commit(s) == 0);
}

static uint64_t put_alert(struct pdm_store *s)
{
    uint64_t seq = pdm_store_alloc_seq(s);
    char id[32];
    snprintf(id, sizeof(id), "a-%llu", (unsigned long long)seq);
    uint8_t payload[8] = {0x08, 0x01}; /* opaque to the outbox */
    CHECK(pdm_store_put_alert(s, seq, "pump", id, 1, 2, 1700000000000, payload, 2) == 0);
    return seq;
}

static struct pdm_store_stats stats(struct pdm_store *s)
{
    struct pdm_store_stats st;
    memset(&st, 0, sizeof(st));
    CHECK(pdm_store_stats(s, &st) == 0);
    return st;
}

/* Acknowledges everything in flight, in the order it was handed over. */
static void ack_all(struct pdm_outbox *o)
{
    for (int i = 0; i < g_npubs; i++)
        pdm_outbox_delivered(o, g_pubs[i].cookie); /* unknown cookies are ignored */
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

int main(void)
{
    snprintf(g_dir, sizeof(g_dir), "/tmp/test_outbox.XXXXXX");
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        return 2;
    }
    struct pdm_store *s = NULL;
    char err[512] = "";
    if (pdm_store_open(&s, g_dir, err, sizeof(err)) != 0) {
        fprintf(stderr, "store: %s\n", err);
        return 1;
    }
    CHECK(pdm_store_name_id(s, PDM_ROW_READING, "p1", &g_ref) == 0);
    static struct pdm_sensor_cfg sensor = {.name = "p1", .unit = "bar"};
    struct pdm_outbox_cfg cfg = {.device_id = "dev1",
                                 .topic_prefix = "pdm/v1",
                                 .sensors = &sensor,
                                 .n_sensors = 1,
                                 .commit_interval_ms = 1000,
                                 .telemetry_interval_s = 10};
    static struct pdm_outbox o;
    CHECK(pdm_outbox_init(&o, &cfg, s, fake_publish, NULL, NULL, g_buf, sizeof(g_buf)) == 0);

    /* 1. Nothing goes out while disconnected. */
    put_rows(s, 3);
    uint64_t a1 = put_alert(s); /* after the rows: a higher seq */
    pdm_outbox_pump(&o);
    CHECK(g_npubs == 0);

    /* 2. Connected with a backlog: the alert first, then the rows (one replay batch). */
    pdm_outbox_connected(&o, 0);
    pdm_outbox_pump(&o);
    CHECK_MSG(g_npubs == 2, "published %d", g_npubs);
    CHECK_MSG(g_npubs >= 1 && is_alert(0), "first message on %s", g_pubs[0].topic);
    CHECK_MSG(g_npubs >= 2 && is_telemetry(1), "second message on %s", g_pubs[1].topic);
    const struct pdm_outbox_inflight *f = g_npubs >= 1 ? slot_of(&o, g_pubs[0].cookie) : NULL;
    CHECK(f && f->lo == a1);
    f = g_npubs >= 2 ? slot_of(&o, g_pubs[1].cookie) : NULL;
    CHECK(f && f->lo == 1 && f->hi == 3 && f->rows == 3);

    /* 3. Nothing is delivered until the PUBACK; then the store says so. */
    struct pdm_store_stats st = stats(s);
    CHECK(st.alerts_pending == 1 && st.rows_pending == 3);
    ack_all(&o);
    st = stats(s);
    CHECK_MSG(st.alerts_pending == 0 && st.rows_pending == 0, "%llu alerts, %llu rows pending",
              (unsigned long long)st.alerts_pending, (unsigned long long)st.rows_pending);
    CHECK(in_flight(&o) == 0);
    pdm_outbox_pump(&o);
    CHECK(g_npubs == 2); /* delivered: not sent again */

    /* 4. Live rows wait for the telemetry tick; a new alert goes out at once and ahead. */
    g_npubs = 0;
    put_rows(s, 2);
    pdm_outbox_pump(&o);
    CHECK(g_npubs == 0);
    put_alert(s);
    pdm_outbox_rows_due(&o);
    pdm_outbox_pump(&o);
    CHECK_MSG(g_npubs == 2 && is_alert(0) && is_telemetry(1), "%d published", g_npubs);
    ack_all(&o);

    /* 5. The in-flight window: 40 alerts, at most PDM_OUTBOX_MAX_INFLIGHT handed over; each
     * PUBACK lets one more go. */
    g_npubs = 0;
    uint64_t first = 0;
    for (int i = 0; i < 40; i++) {
        uint64_t seq = put_alert(s);
        first = first ? first : seq;
    }
    pdm_outbox_pump(&o);
    CHECK_MSG(g_npubs == PDM_OUTBOX_MAX_INFLIGHT, "%d handed over", g_npubs);
    CHECK(in_flight(&o) == PDM_OUTBOX_MAX_INFLIGHT);
    pdm_outbox_delivered(&o, g_pubs[0].cookie);
    pdm_outbox_pump(&o);
    CHECK(g_npubs == PDM_OUTBOX_MAX_INFLIGHT + 1);
    CHECK(stats(s).alerts_pending == 39);

    /* 6. A send that failed goes out again, and only it. */
    uint64_t failed_cookie = g_pubs[1].cookie;
    f = slot_of(&o, failed_cookie);
    uint64_t failed_seq = f ? f->lo : 0;
    CHECK(failed_seq == first + 1);
    pdm_outbox_send_failed(&o, failed_cookie);
    int before = g_npubs;
    pdm_outbox_pump(&o);
    CHECK_MSG(g_npubs == before + 1, "%d re-sent", g_npubs - before);
    f = g_npubs > before ? slot_of(&o, g_pubs[before].cookie) : NULL;
    CHECK(f && f->lo == failed_seq);
    /* pump again: the window is full, and what is in flight is not sent twice */
    pdm_outbox_pump(&o);
    CHECK(g_npubs == before + 1);

    /* 7. The connection is lost: the window is forgotten, nothing is marked delivered, and the
     * store keeps everything for the next connection. A PUBACK from the old connection is
     * ignored. */
    uint64_t stale = g_pubs[2].cookie;
    pdm_outbox_disconnected(&o);
    CHECK(in_flight(&o) == 0);
    pdm_outbox_delivered(&o, stale);
    CHECK(stats(s).alerts_pending == 39);
    put_rows(s, 5); /* stored while offline */
    g_npubs = 0;
    pdm_outbox_pump(&o);
    CHECK(g_npubs == 0);

    /* 8. Reconnected: the undelivered alerts first (oldest first, the window full), then, as
     * they are acknowledged, the rows stored meanwhile as a replay. */
    pdm_outbox_connected(&o, 0);
    pdm_outbox_pump(&o);
    CHECK(g_npubs == PDM_OUTBOX_MAX_INFLIGHT);
    int alerts_first = 1;
    for (int i = 0; i < g_npubs; i++)
        alerts_first &= is_alert(i);
    CHECK(alerts_first);
    f = slot_of(&o, g_pubs[0].cookie);
    CHECK(f && f->lo == first + 1);
    for (int round = 0; round < 4 && stats(s).alerts_pending + stats(s).rows_pending > 0; round++) {
        ack_all(&o);
        pdm_outbox_pump(&o);
    }
    ack_all(&o);
    st = stats(s);
    CHECK_MSG(st.alerts_pending == 0 && st.rows_pending == 0,
              "after replay: %llu alerts, %llu rows pending", (unsigned long long)st.alerts_pending,
              (unsigned long long)st.rows_pending);
    int last_alert = -1, first_rows = -1;
    for (int i = 0; i < g_npubs; i++) {
        if (is_alert(i))
            last_alert = i;
        else if (is_telemetry(i) && first_rows < 0)
            first_rows = i;
    }
    CHECK_MSG(first_rows > last_alert, "telemetry at %d before the alert at %d", first_rows,
              last_alert);

    /* 9. A large backlog: at most PDM_OUTBOX_REPLAY_INFLIGHT replay batches in flight, and live
     * rows stored after the connection came up go ahead of the rest of the replay. */
    pdm_outbox_disconnected(&o);
    put_rows(s, 12 * PDM_OUTBOX_BATCH_ROWS);
    pdm_outbox_connected(&o, 0);
    g_npubs = 0;
    pdm_outbox_pump(&o);
    CHECK_MSG(g_npubs == PDM_OUTBOX_REPLAY_INFLIGHT, "%d replay batches in flight", g_npubs);
    put_rows(s, 10); /* live */
    pdm_outbox_rows_due(&o);
    pdm_outbox_delivered(&o, g_pubs[0].cookie);
    pdm_outbox_pump(&o);
    CHECK_MSG(g_npubs == PDM_OUTBOX_REPLAY_INFLIGHT + 2, "%d published", g_npubs);
    f = g_npubs > PDM_OUTBOX_REPLAY_INFLIGHT
            ? slot_of(&o, g_pubs[PDM_OUTBOX_REPLAY_INFLIGHT].cookie)
            : NULL;
    CHECK_MSG(f && f->rows == 10 && f->lo > o.replay_end, "the live batch goes first");
    f = g_npubs > PDM_OUTBOX_REPLAY_INFLIGHT + 1
            ? slot_of(&o, g_pubs[PDM_OUTBOX_REPLAY_INFLIGHT + 1].cookie)
            : NULL;
    CHECK(f && f->hi <= o.replay_end && f->rows == PDM_OUTBOX_BATCH_ROWS);

    /* 10. A refused publish leaves the rows undelivered and the window as it was. */
    g_refuse = -ENOTCONN;
    int n0 = in_flight(&o);
    for (int i = 0; i < g_npubs; i++)
        pdm_outbox_delivered(&o, g_pubs[i].cookie);
    pdm_outbox_pump(&o);
    CHECK(in_flight(&o) == 0 && n0 > 0);
    CHECK(stats(s).rows_pending > 0);
    g_refuse = 0;

    pdm_outbox_free(&o);
    pdm_store_close(s);
    nftw(g_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return check_summary("test_outbox");
}
