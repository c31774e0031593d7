/* Data quality: which readings are usable, when a SENSOR_FAULT is raised and cleared, and how
 * flagged readings and fault alerts travel (store quality column, SensorSeries.quality, Alert
 * kind SENSOR_FAULT). */
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "agent/encode.h"
#include "agent/store.h"
#include "models/quality.h"
#include "pdm/v1/pdm.pb-c.h"

struct events {
    int n;
    struct {
        uint32_t sensor;
        int raised;
        enum pdm_quality_cause cause;
        char reason[PDM_QUALITY_REASON_MAX];
        char alert_id[PDM_QUALITY_ID_MAX];
    } e[16];
};

static int next_id = 1;

static void on_event(void *ctx, const struct pdm_quality_event *ev)
{
    struct events *r = ctx;
    if (r->n >= 16)
        return;
    r->e[r->n].sensor = ev->sensor;
    r->e[r->n].raised = ev->raised;
    r->e[r->n].cause = ev->cause;
    snprintf(r->e[r->n].reason, sizeof(r->e[r->n].reason), "%s", ev->reason);
    if (ev->raised) /* what the agent does: name the alert */
        snprintf(ev->state->alert_id, sizeof(ev->state->alert_id), "s%u-fault-%d", ev->sensor,
                 next_id++);
    snprintf(r->e[r->n].alert_id, sizeof(r->e[r->n].alert_id), "%s", ev->state->alert_id);
    r->n++;
}

/* limits: 0..150, frozen after 60 s, stale after 12 s */
static void init_one(struct pdm_quality *q, int64_t t0)
{
    struct pdm_quality_limits lim = {
        .valid_min = 0, .valid_max = 150, .frozen_ms = 60000, .stale_ms = 12000};
    CHECK_INT(pdm_quality_init(q, &lim, 1, t0), 0);
}

static void test_reading_quality(void)
{
    struct pdm_quality q;
    init_one(&q, 0);
    CHECK_INT(pdm_quality_on_sample(&q, 0, 1, 45.0, 1000, NULL), PDM_Q_GOOD);
    CHECK_INT(pdm_quality_on_sample(&q, 0, 1, 150.0, 2000, NULL), PDM_Q_GOOD); /* inclusive */
    CHECK_INT(pdm_quality_on_sample(&q, 0, 1, 0.0, 2500, NULL), PDM_Q_GOOD);
    CHECK_INT(pdm_quality_on_sample(&q, 0, 1, 181.2, 3000, NULL), PDM_Q_OUT_OF_RANGE);
    CHECK_INT(pdm_quality_on_sample(&q, 0, 1, -0.5, 3500, NULL), PDM_Q_OUT_OF_RANGE);
    CHECK_INT(pdm_quality_on_sample(&q, 0, 1, NAN, 4000, NULL), PDM_Q_OUT_OF_RANGE);
    CHECK_INT(pdm_quality_on_sample(&q, 0, 0, 0, 5000, "timeout"), PDM_Q_MISSING);
    CHECK_INT(pdm_quality_on_sample(&q, 7, 1, 1.0, 5000, NULL), PDM_Q_MISSING); /* no sensor 7 */
    pdm_quality_free(&q);

    /* no limits configured: everything finite is usable, even huge values */
    struct pdm_quality_limits open = {.valid_min = -INFINITY, .valid_max = INFINITY};
    CHECK_INT(pdm_quality_init(&q, &open, 1, 0), 0);
    CHECK_INT(pdm_quality_on_sample(&q, 0, 1, 1e300, 100, NULL), PDM_Q_GOOD);
    CHECK_INT(pdm_quality_on_sample(&q, 0, 1, 1e300, 100000000, NULL), PDM_Q_GOOD); /* no frozen */
    pdm_quality_free(&q);
}

static void test_out_of_range_fault_and_hysteresis(void)
{
    struct pdm_quality q;
    struct events ev = {0};
    init_one(&q, 0);
    pdm_quality_on_sample(&q, 0, 1, 45.0, 1000, NULL);
    /* one spike and two are not a fault */
    pdm_quality_on_sample(&q, 0, 1, 181.2, 2000, NULL);
    pdm_quality_on_sample(&q, 0, 1, 181.2, 3000, NULL);
    pdm_quality_tick(&q, 3000, on_event, &ev);
    CHECK_INT(ev.n, 0);
    pdm_quality_on_sample(&q, 0, 1, 46.0, 4000, NULL); /* breaks the run */
    pdm_quality_on_sample(&q, 0, 1, 181.2, 5000, NULL);
    pdm_quality_on_sample(&q, 0, 1, 182.0, 6000, NULL);
    pdm_quality_tick(&q, 6000, on_event, &ev);
    CHECK_INT(ev.n, 0);
    pdm_quality_on_sample(&q, 0, 1, 181.2, 7000, NULL);
    pdm_quality_tick(&q, 7000, on_event, &ev);
    CHECK_INT(ev.n, 1);
    CHECK_INT(ev.e[0].raised, 1);
    CHECK_INT(ev.e[0].cause, PDM_QC_OUT_OF_RANGE);
    CHECK_STR(ev.e[0].reason, "value 181.2 outside valid range 0..150");
    pdm_quality_tick(&q, 8000, on_event, &ev); /* no repeat while it stays faulted */
    CHECK_INT(ev.n, 1);

    /* recovery needs 3 good readings in a row: good, good, bad, good, good does not clear */
    pdm_quality_on_sample(&q, 0, 1, 45.0, 9000, NULL);
    pdm_quality_on_sample(&q, 0, 1, 45.1, 10000, NULL);
    pdm_quality_tick(&q, 10000, on_event, &ev);
    CHECK_INT(ev.n, 1);
    pdm_quality_on_sample(&q, 0, 1, 190.0, 11000, NULL);
    pdm_quality_on_sample(&q, 0, 1, 45.2, 12000, NULL);
    pdm_quality_on_sample(&q, 0, 1, 45.3, 13000, NULL);
    pdm_quality_tick(&q, 13000, on_event, &ev);
    CHECK_INT(ev.n, 1);
    pdm_quality_on_sample(&q, 0, 1, 45.4, 14000, NULL);
    pdm_quality_tick(&q, 14000, on_event, &ev);
    CHECK_INT(ev.n, 2);
    CHECK_INT(ev.e[1].raised, 0);
    CHECK_STR(ev.e[1].alert_id, ev.e[0].alert_id); /* the clear closes the same episode */
    CHECK_MSG(strstr(ev.e[1].reason, "good again after 7 s"), "reason: %s", ev.e[1].reason);
    pdm_quality_free(&q);
}

static void test_stale(void)
{
    struct pdm_quality q;
    struct events ev = {0};
    init_one(&q, 0);
    /* a sensor that never answers is stale stale_ms after start, not before */
    pdm_quality_on_sample(&q, 0, 0, 0, 500, "unit 2 at 127.0.0.1:1502: timed out");
    CHECK_INT(pdm_quality_tick(&q, 11999, on_event, &ev), 12000);
    CHECK_INT(ev.n, 0);
    pdm_quality_tick(&q, 12000, on_event, &ev);
    CHECK_INT(ev.n, 1);
    CHECK_INT(ev.e[0].cause, PDM_QC_STALE);
    CHECK_STR(ev.e[0].reason, "no good reading for 12 s: unit 2 at 127.0.0.1:1502: timed out");
    pdm_quality_free(&q);

    /* a good reading pushes the deadline; errors between good readings do not fault */
    ev.n = 0;
    init_one(&q, 0);
    for (int64_t t = 1000; t <= 60000; t += 1000) {
        if (t % 5000 == 0)
            pdm_quality_on_sample(&q, 0, 1, 40.0 + (double)t / 1e4, t, NULL);
        else
            pdm_quality_on_sample(&q, 0, 0, 0, t, "timeout");
        pdm_quality_tick(&q, t, on_event, &ev);
    }
    CHECK_INT(ev.n, 0);
    CHECK_INT(pdm_quality_tick(&q, 60000, NULL, NULL), 60000 + 12000);
    /* then it stops answering: fault 12 s after the last good reading, and back after 3 good */
    for (int64_t t = 61000; t <= 72000; t += 1000) {
        pdm_quality_on_sample(&q, 0, 0, 0, t, "bus down: Connection refused");
        pdm_quality_tick(&q, t, on_event, &ev);
    }
    CHECK_INT(ev.n, 1);
    CHECK_MSG(strstr(ev.e[0].reason, "no good reading for 12 s: bus down: Connection refused"),
              "reason: %s", ev.e[0].reason);
    for (int64_t t = 73000; t <= 75000; t += 1000)
        pdm_quality_on_sample(&q, 0, 1, 41.0 + (double)t / 1e5, t, NULL);
    pdm_quality_tick(&q, 75000, on_event, &ev);
    CHECK_INT(ev.n, 2);
    CHECK_INT(ev.e[1].raised, 0);
    pdm_quality_free(&q);

    CHECK_INT(pdm_quality_default_stale_ms(200), 10000);
    CHECK_INT(pdm_quality_default_stale_ms(5000), 15000);
}

static void test_frozen(void)
{
    struct pdm_quality q;
    struct events ev = {0};
    init_one(&q, 0);
    /* the same value bit for bit for 60 s: frozen; changing values never are */
    for (int64_t t = 1000; t < 61000; t += 1000) {
        CHECK_INT(pdm_quality_on_sample(&q, 0, 1, 45.0, t, NULL), PDM_Q_GOOD);
        pdm_quality_tick(&q, t, on_event, &ev);
    }
    CHECK_INT(ev.n, 0);
    CHECK_INT(pdm_quality_on_sample(&q, 0, 1, 45.0, 61000, NULL), PDM_Q_FROZEN);
    pdm_quality_tick(&q, 61000, on_event, &ev);
    CHECK_INT(ev.n, 1);
    CHECK_INT(ev.e[0].cause, PDM_QC_FROZEN);
    CHECK_STR(ev.e[0].reason, "value unchanged (45.000) for 60 s");
    /* moving again: the first changed value is good, clear after 3 */
    CHECK_INT(pdm_quality_on_sample(&q, 0, 1, 45.01, 62000, NULL), PDM_Q_GOOD);
    CHECK_INT(pdm_quality_on_sample(&q, 0, 1, 45.02, 63000, NULL), PDM_Q_GOOD);
    CHECK_INT(pdm_quality_on_sample(&q, 0, 1, 45.03, 64000, NULL), PDM_Q_GOOD);
    pdm_quality_tick(&q, 64000, on_event, &ev);
    CHECK_INT(ev.n, 2);
    CHECK_INT(ev.e[1].raised, 0);
    pdm_quality_free(&q);
}

static void test_restore(void)
{
    struct pdm_quality q;
    struct events ev = {0};
    init_one(&q, 0);
    pdm_quality_restore(&q, 0, "comp_temp-fault-41", 0);
    /* still bad after the restart: no second RAISED */
    pdm_quality_on_sample(&q, 0, 1, 200.0, 1000, NULL);
    pdm_quality_on_sample(&q, 0, 1, 200.0, 2000, NULL);
    pdm_quality_on_sample(&q, 0, 1, 200.0, 3000, NULL);
    pdm_quality_tick(&q, 30000, on_event, &ev);
    CHECK_INT(ev.n, 0);
    for (int64_t t = 31000; t <= 33000; t += 1000)
        pdm_quality_on_sample(&q, 0, 1, 45.0 + (double)t / 1e5, t, NULL);
    pdm_quality_tick(&q, 33000, on_event, &ev);
    CHECK_INT(ev.n, 1);
    CHECK_INT(ev.e[0].raised, 0);
    CHECK_STR(ev.e[0].alert_id, "comp_temp-fault-41");
    pdm_quality_free(&q);
}

static void test_encode(void)
{
    uint8_t buf[4096];
    struct pdm_sensor_fault_msg m = {
        .device_id = "gw-1",
        .asset = "compressor-1",
        .alert_id = "comp_temp-fault-7",
        .sensor = "comp_temp",
        .reason = "value 181.2 outside valid range 0..150",
        .seq = 7,
        .state = PDM_ALERT_RAISED,
        .ts_ms = 1700000000000,
    };
    int len = pdm_encode_sensor_fault(&m, buf, sizeof(buf));
    CHECK(len > 0);
    len = pdm_encode_mark_replay(buf, (size_t)len, sizeof(buf)); /* replay works on it too */
    Pdm__V1__Alert *a = pdm__v1__alert__unpack(NULL, (size_t)len, buf);
    CHECK(a != NULL);
    if (a) {
        CHECK_INT(a->kind, PDM__V1__ALERT_KIND__SENSOR_FAULT);
        CHECK_INT(a->state, PDM__V1__ALERT_STATE__RAISED);
        CHECK_INT(a->severity, PDM__V1__SEVERITY__WARNING);
        CHECK_STR(a->sensor, "comp_temp");
        CHECK_STR(a->reason, "value 181.2 outside valid range 0..150");
        CHECK_STR(a->asset, "compressor-1");
        CHECK_STR(a->alert_id, "comp_temp-fault-7");
        CHECK_INT(a->seq, 7);
        CHECK_INT(a->replay, 1);
        pdm__v1__alert__free_unpacked(a, NULL);
    }

    /* quality travels per reading, and only for series that have a flagged one */
    struct pdm_telemetry_row rows[] = {
        {.seq = 1, .ts_ms = 10, .value = 45.0, .kind = 0, .name = "t", .unit = "degC"},
        {.seq = 2, .ts_ms = 10, .value = 2.0, .kind = 0, .name = "v", .unit = ""},
        {.seq = 3,
         .ts_ms = 20,
         .value = 181.2,
         .kind = 0,
         .name = "t",
         .unit = "degC",
         .quality = PDM_Q_OUT_OF_RANGE},
        {.seq = 4, .ts_ms = 20, .value = 2.1, .kind = 0, .name = "v", .unit = ""},
        {.seq = 5,
         .ts_ms = 30,
         .value = 45.0,
         .kind = 0,
         .name = "t",
         .unit = "degC",
         .quality = PDM_Q_FROZEN},
    };
    len = pdm_encode_telemetry("gw-1", 99, rows, 5, 0, buf, sizeof(buf));
    CHECK(len > 0);
    Pdm__V1__TelemetryBatch *b = pdm__v1__telemetry_batch__unpack(NULL, (size_t)len, buf);
    CHECK(b != NULL);
    if (b) {
        CHECK_INT(b->n_series, 2);
        if (b->n_series == 2) {
            CHECK_STR(b->series[0]->sensor, "t");
            CHECK_INT(b->series[0]->n_quality, 3);
            if (b->series[0]->n_quality == 3) {
                CHECK_INT(b->series[0]->quality[0], 0);
                CHECK_INT(b->series[0]->quality[1], 1);
                CHECK_INT(b->series[0]->quality[2], 2);
            }
            CHECK_STR(b->series[1]->sensor, "v");
            CHECK_INT(b->series[1]->n_quality, 0);
        }
        pdm__v1__telemetry_batch__free_unpacked(b, NULL);
    }
}

static char g_dir[256];

static void db_exec(const char *sql)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/pdm-agent.db", g_dir);
    sqlite3 *db = NULL;
    CHECK_INT(sqlite3_open(path, &db), SQLITE_OK);
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    CHECK_MSG(rc == SQLITE_OK, "%s: %s", sql, msg ? msg : "?");
    sqlite3_free(msg);
    sqlite3_close(db);
}

static long long db_int(const char *sql)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/pdm-agent.db", g_dir);
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    long long v = -1;
    if (sqlite3_open(path, &db) == SQLITE_OK &&
        sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

/* A buffer made before the quality column existed gains it at open: its undelivered rows come
 * back good, new rows keep their flag, and open alerts of sensors are grouped apart. */
static void test_store(void)
{
    snprintf(g_dir, sizeof(g_dir), "/tmp/pdm-test-quality-%d", (int)getpid());
    mkdir(g_dir, 0700);
    char path[512];
    snprintf(path, sizeof(path), "%s/pdm-agent.db", g_dir);
    unlink(path);
    db_exec("PRAGMA journal_mode=WAL;"
            "CREATE TABLE names(kind INTEGER, id INTEGER, name TEXT,"
            " PRIMARY KEY(kind, id), UNIQUE(kind, name));"
            "CREATE TABLE rows(seq INTEGER PRIMARY KEY, kind INTEGER, ref INTEGER,"
            " ts_ms INTEGER, value REAL, delivered INTEGER NOT NULL DEFAULT 0);"
            "CREATE TABLE alerts(seq INTEGER PRIMARY KEY, asset TEXT, alert_id TEXT,"
            " state INTEGER, severity INTEGER, ts_ms INTEGER, payload BLOB,"
            " delivered INTEGER NOT NULL DEFAULT 0);"
            "CREATE TABLE meta(key TEXT PRIMARY KEY, value INTEGER);"
            "CREATE INDEX rows_undelivered ON rows(seq) WHERE delivered = 0;"
            "CREATE INDEX alerts_undelivered ON alerts(seq) WHERE delivered = 0;"
            "CREATE INDEX alerts_by_asset ON alerts(asset, seq);"
            "INSERT INTO names VALUES(0, 1, 'comp_temp');"
            "INSERT INTO rows(seq, kind, ref, ts_ms, value) VALUES(1, 0, 1, 100, 44.5);"
            "INSERT INTO meta VALUES('seq_hw', 1);"
            "PRAGMA user_version = 1;");
    struct pdm_store *s = NULL;
    char err[512] = "";
    int rc = pdm_store_open(&s, g_dir, err, sizeof(err));
    CHECK_MSG(rc == 0, "open: %s", err);
    if (rc != 0)
        return;
    uint64_t seq = 0;
    CHECK_INT(pdm_store_put_row_q(s, PDM_ROW_READING, 1, 200, 181.2, PDM_Q_OUT_OF_RANGE, &seq), 0);
    CHECK_INT(pdm_store_put_row(s, PDM_ROW_READING, 1, 300, 45.0, NULL), 0);
    CHECK_INT(pdm_store_commit(s), 0);
    struct pdm_row rows[4];
    CHECK_INT(pdm_store_next_rows(s, 0, rows, 4), 3);
    CHECK_INT(rows[0].seq, 1);
    CHECK_INT(rows[0].quality, 0);
    CHECK_INT(rows[1].seq, seq);
    CHECK_INT(rows[1].quality, PDM_Q_OUT_OF_RANGE);
    CHECK_NEAR(rows[1].value, 181.2, 1e-9);
    CHECK_INT(rows[2].quality, 0);
    /* a 64-character sensor name fits the alert key */
    char key[80] = "sensor:";
    memset(key + 7, 's', 64);
    key[71] = '\0';
    uint64_t aseq = pdm_store_alloc_seq(s);
    CHECK_INT(pdm_store_put_alert(s, aseq, key, "x-fault-1", 1, 1, 400, "p", 1), 0);
    pdm_store_close(s);

    /* it stays schema version 1 (an older agent can still open it) and now has the column */
    CHECK_INT(db_int("PRAGMA user_version"), 1);
    CHECK_INT(db_int("SELECT COUNT(*) FROM rows WHERE quality = 1"), 1);
    s = NULL;
    CHECK_INT(pdm_store_open(&s, g_dir, err, sizeof(err)), 0); /* a second open does not re-add */
    if (s)
        pdm_store_close(s);
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_dir);
    CHECK_INT(system(cmd), 0);
}

int main(void)
{
    test_reading_quality();
    test_out_of_range_fault_and_hysteresis();
    test_stale();
    test_frozen();
    test_restore();
    test_encode();
    test_store();
    return check_summary("test_quality");
}
