/* agent/encode.c: what the backend receives. Every message is encoded, then decoded with the
 * generated pdm__v1__*__unpack (the reference for the wire format) and checked field by field.
 * Encoding must not allocate: malloc is counted around each encode call (plain build: our own
 * malloc/calloc/realloc forwarding to glibc's; ASan build: ASan's allocation hook). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/encode.h"
#include "check.h"
#include "pdm/v1/pdm.pb-c.h"

#include "alloc_count.h"

static uint8_t buf[256 * 1024];

static void make_model(struct pdm_model *m)
{
    memset(m, 0, sizeof(*m));
    snprintf(m->id, sizeof(m->id), "compressor");
    m->version = 3;
    m->intercept = -4.0;
    const char *names[] = {"temperature", "vibration", "power", "age"};
    const double centers[] = {45, 2.5, 800, 0};
    for (int i = 0; i < 4; i++) {
        snprintf(m->inputs[i].name, sizeof(m->inputs[i].name), "%s", names[i]);
        m->inputs[i].is_age = i == 3;
        m->inputs[i].center = centers[i];
        m->inputs[i].scale = 1;
        m->inputs[i].weight = 1;
    }
    m->n_inputs = 4;
}

static void test_alert(void)
{
    struct pdm_model model;
    make_model(&model);
    /* contributions chosen so that model order != magnitude order, with a negative one */
    struct pdm_score sc = {
        .logit = 0.5, .probability = 0.6224593312018546, .health = 38, .n_inputs = 4};
    sc.in[0] = (struct pdm_score_input){56.1, 1.11, 0.95};
    sc.in[1] = (struct pdm_score_input){3.9, 1.4, -1.80};
    sc.in[2] = (struct pdm_score_input){850, 0.0625, 0.2};
    sc.in[3] = (struct pdm_score_input){7.5, 0.5, 1.10};
    const char *sensors[] = {"temp-1", "vib-1", "power-1", NULL};
    struct pdm_alert_msg m = {
        .device_id = "gw-0001",
        .asset = "compressor-1",
        .alert_id = "compressor-1-120",
        .seq = 120,
        .state = PDM_ALERT_RAISED,
        .severity = PDM_SEV_WARNING,
        .ts_ms = 1714567890123,
        .model = &model,
        .score = &sc,
        .input_sensors = sensors,
    };
    counting = 1;
    n_alloc = 0;
    int len = pdm_encode_alert(&m, buf, sizeof(buf));
    counting = 0;
    CHECK(len > 0);
    CHECK_INT(n_alloc, 0);

    Pdm__V1__Alert *a = pdm__v1__alert__unpack(NULL, (size_t)len, buf);
    CHECK(a != NULL);
    if (!a)
        return;
    CHECK_STR(a->device_id, "gw-0001");
    CHECK_STR(a->asset, "compressor-1");
    CHECK_STR(a->alert_id, "compressor-1-120");
    CHECK_INT(a->seq, 120);
    CHECK_INT(a->state, PDM__V1__ALERT_STATE__RAISED);
    CHECK_INT(a->severity, PDM__V1__SEVERITY__WARNING);
    CHECK_NEAR(a->probability, 0.6224593312018546, 0);
    CHECK_INT(a->health_score, 38);
    CHECK_STR(a->model_id, "compressor");
    CHECK_INT(a->model_version, 3);
    CHECK_INT(a->ts_ms, 1714567890123);
    CHECK_INT(a->kind, PDM__V1__ALERT_KIND__FAULT_RISK);
    CHECK_NEAR(a->logit, 0.5, 0);
    CHECK_INT(a->replay, 0);

    /* a stored alert re-sent from the backlog: same fields, replay = true */
    uint8_t rbuf[4096];
    memcpy(rbuf, buf, (size_t)len);
    int rlen = pdm_encode_mark_replay(rbuf, (size_t)len, sizeof(rbuf));
    CHECK_INT(rlen, len + 2);
    CHECK_INT(pdm_encode_mark_replay(rbuf, (size_t)len, (size_t)len + 1), -ENOSPC);
    Pdm__V1__Alert *r = rlen > 0 ? pdm__v1__alert__unpack(NULL, (size_t)rlen, rbuf) : NULL;
    CHECK(r != NULL);
    if (r) {
        CHECK_INT(r->replay, 1);
        CHECK_INT(r->seq, 120);
        CHECK_STR(r->alert_id, "compressor-1-120");
        CHECK_INT(r->n_inputs, a->n_inputs);
        pdm__v1__alert__free_unpacked(r, NULL);
    }
    CHECK_INT(a->n_inputs, 4);
    if (a->n_inputs == 4) {
        /* largest |contribution| first: vibration (-1.80), age (1.10), temperature, power */
        const char *want[] = {"vibration", "age", "temperature", "power"};
        const char *want_sensor[] = {"vib-1", "", "temp-1", "power-1"};
        const double want_c[] = {-1.80, 1.10, 0.95, 0.2};
        const double want_v[] = {3.9, 7.5, 56.1, 850};
        const double want_z[] = {1.4, 0.5, 1.11, 0.0625};
        const double want_center[] = {2.5, 0, 45, 800};
        for (int i = 0; i < 4; i++) {
            CHECK_STR(a->inputs[i]->name, want[i]);
            CHECK_STR(a->inputs[i]->sensor, want_sensor[i]);
            CHECK_NEAR(a->inputs[i]->contribution, want_c[i], 0);
            CHECK_NEAR(a->inputs[i]->value, want_v[i], 0);
            CHECK_NEAR(a->inputs[i]->z, want_z[i], 0);
            CHECK_NEAR(a->inputs[i]->center, want_center[i], 0);
        }
    }
    pdm__v1__alert__free_unpacked(a, NULL);

    /* CLEARED keeps the last active severity; NULL sensor table means no sensors */
    m.state = PDM_ALERT_CLEARED;
    m.severity = PDM_SEV_CRITICAL;
    m.input_sensors = NULL;
    len = pdm_encode_alert(&m, buf, sizeof(buf));
    a = len > 0 ? pdm__v1__alert__unpack(NULL, (size_t)len, buf) : NULL;
    CHECK(a != NULL);
    if (a) {
        CHECK_INT(a->state, PDM__V1__ALERT_STATE__CLEARED);
        CHECK_INT(a->severity, PDM__V1__SEVERITY__CRITICAL);
        CHECK_STR(a->inputs[0]->sensor, "");
        pdm__v1__alert__free_unpacked(a, NULL);
    }

    /* too small a buffer: -ENOSPC, for every size below the real one */
    int full = pdm_encode_alert(&m, buf, sizeof(buf));
    int nospc = 0;
    for (int cap = 0; cap < full; cap++)
        nospc += pdm_encode_alert(&m, buf, (size_t)cap) == -ENOSPC;
    CHECK_INT(nospc, full);
    CHECK_INT(pdm_encode_alert(&m, buf, (size_t)full), full);
}

static void test_telemetry(void)
{
    /* interleaved sensors and scores, as the store hands them out */
    struct pdm_telemetry_row rows[] = {
        {100, 1000, 55.5, 0, "temp-1", "degC", 0},    {101, 1000, 3.25, 0, "vib-1", "mm/s", 0},
        {102, 1001, 0.62, 1, "compressor-1", "", 0},  {103, 2000, 56.0, 0, "temp-1", "degC", 0},
        {104, 2000, 3.5, 0, "vib-1", "mm/s", 0},      {105, 2000, 810, 0, "power-1", "", 0},
        {106, 2001, 0.004, 1, "compressor-1", "", 0}, {107, 2001, 0.995, 1, "pump-2", "", 0},
        {108, 3000, 56.5, 0, "temp-1", "degC", 0},
    };
    size_t n = sizeof(rows) / sizeof(rows[0]);
    counting = 1;
    n_alloc = 0;
    int len = pdm_encode_telemetry("gw-0001", 5000, rows, n, 0, buf, sizeof(buf));
    counting = 0;
    CHECK(len > 0);
    CHECK_INT(n_alloc, 0);
    Pdm__V1__TelemetryBatch *b =
        len > 0 ? pdm__v1__telemetry_batch__unpack(NULL, (size_t)len, buf) : NULL;
    CHECK(b != NULL);
    if (!b)
        return;
    CHECK_STR(b->device_id, "gw-0001");
    CHECK_INT(b->ts_ms, 5000);
    CHECK_INT(b->first_seq, 100);
    CHECK_INT(b->last_seq, 108);
    CHECK_INT(b->replay, 0);
    CHECK_INT(b->n_series, 3);
    if (b->n_series == 3) {
        Pdm__V1__SensorSeries *t = b->series[0], *v = b->series[1], *p = b->series[2];
        CHECK_STR(t->sensor, "temp-1");
        CHECK_STR(t->unit, "degC");
        CHECK_INT(t->n_ts_ms, 3);
        CHECK_INT(t->n_value, 3);
        CHECK_INT(t->n_seq, 3);
        if (t->n_seq == 3 && t->n_value == 3 && t->n_ts_ms == 3) {
            CHECK_INT(t->seq[0], 100);
            CHECK_INT(t->seq[1], 103);
            CHECK_INT(t->seq[2], 108);
            CHECK_NEAR(t->value[2], 56.5, 0);
            CHECK_INT(t->ts_ms[1], 2000);
        }
        CHECK_STR(v->sensor, "vib-1");
        CHECK_STR(v->unit, "mm/s");
        CHECK_INT(v->n_value, 2);
        if (v->n_value == 2 && v->n_seq == 2) {
            CHECK_NEAR(v->value[0], 3.25, 0);
            CHECK_INT(v->seq[1], 104);
        }
        CHECK_STR(p->sensor, "power-1");
        CHECK_STR(p->unit, "");
        CHECK_INT(p->n_value, 1);
    }
    CHECK_INT(b->n_scores, 3);
    if (b->n_scores == 3) {
        CHECK_STR(b->scores[0]->asset, "compressor-1");
        CHECK_INT(b->scores[0]->seq, 102);
        CHECK_INT(b->scores[0]->ts_ms, 1001);
        CHECK_NEAR(b->scores[0]->probability, 0.62, 0);
        CHECK_INT(b->scores[0]->health_score, 38);
        CHECK_INT(b->scores[1]->health_score, 100); /* 99.6 rounds up */
        CHECK_STR(b->scores[2]->asset, "pump-2");
        CHECK_INT(b->scores[2]->health_score, 1); /* 0.5 rounds away from zero */
    }
    pdm__v1__telemetry_batch__free_unpacked(b, NULL);

    /* the bytes are protobuf-c's own: packing the decoded message gives the same bytes */
    b = pdm__v1__telemetry_batch__unpack(NULL, (size_t)len, buf);
    static uint8_t again[sizeof(buf)];
    size_t l2 = b ? pdm__v1__telemetry_batch__pack(b, again) : 0;
    CHECK_INT(l2, len);
    CHECK(l2 == (size_t)len && memcmp(again, buf, l2) == 0);
    if (b)
        pdm__v1__telemetry_batch__free_unpacked(b, NULL);

    /* seq range even when rows are not sorted; an empty batch is still a valid message */
    struct pdm_telemetry_row unsorted[] = {
        {50, 1, 1, 0, "a", "", 0}, {40, 1, 1, 1, "x", "", 0}, {60, 1, 1, 0, "a", "", 0}};
    len = pdm_encode_telemetry("gw", 1, unsorted, 3, 1, buf, sizeof(buf));
    b = len > 0 ? pdm__v1__telemetry_batch__unpack(NULL, (size_t)len, buf) : NULL;
    CHECK(b && b->first_seq == 40 && b->last_seq == 60 && b->n_series == 1 && b->n_scores == 1);
    CHECK(b && b->replay == 1);
    if (b)
        pdm__v1__telemetry_batch__free_unpacked(b, NULL);
    len = pdm_encode_telemetry("gw", 1, NULL, 0, 0, buf, sizeof(buf));
    b = len > 0 ? pdm__v1__telemetry_batch__unpack(NULL, (size_t)len, buf) : NULL;
    CHECK(b && b->n_series == 0 && b->n_scores == 0 && b->first_seq == 0 && b->last_seq == 0);
    if (b)
        pdm__v1__telemetry_batch__free_unpacked(b, NULL);

    /* limits: more than PDM_TELEMETRY_MAX_ROWS is refused; too small a buffer is -ENOSPC */
    CHECK_INT(pdm_encode_telemetry("gw", 1, rows, PDM_TELEMETRY_MAX_ROWS + 1, 0, buf, sizeof(buf)),
              -EINVAL);
    int full = pdm_encode_telemetry("gw-0001", 5000, rows, n, 0, buf, sizeof(buf));
    int nospc = 0;
    for (int cap = 0; cap < full; cap++)
        nospc += pdm_encode_telemetry("gw-0001", 5000, rows, n, 0, buf, (size_t)cap) == -ENOSPC;
    CHECK_INT(nospc, full);
}

/* A full batch: PDM_TELEMETRY_MAX_ROWS rows over many sensors, all accounted for. */
static void test_telemetry_full(void)
{
    static struct pdm_telemetry_row rows[PDM_TELEMETRY_MAX_ROWS];
    static char names[300][16];
    for (int i = 0; i < 300; i++)
        snprintf(names[i], sizeof(names[i]), "s%d", i);
    for (int i = 0; i < PDM_TELEMETRY_MAX_ROWS; i++)
        rows[i] = (struct pdm_telemetry_row){
            (uint64_t)(1000 + i), 1000 + i, i, (uint8_t)(i % 7 == 0), names[i % 300], "", 0};
    int len = pdm_encode_telemetry("gw", 1, rows, PDM_TELEMETRY_MAX_ROWS, 0, buf, sizeof(buf));
    CHECK(len > 0);
    Pdm__V1__TelemetryBatch *b =
        len > 0 ? pdm__v1__telemetry_batch__unpack(NULL, (size_t)len, buf) : NULL;
    CHECK(b != NULL);
    if (!b)
        return;
    size_t readings = 0;
    int ordered = 1;
    for (size_t s = 0; s < b->n_series; s++) {
        readings += b->series[s]->n_seq;
        for (size_t k = 1; k < b->series[s]->n_seq; k++)
            ordered &= b->series[s]->seq[k] > b->series[s]->seq[k - 1];
    }
    size_t scores = (PDM_TELEMETRY_MAX_ROWS + 6) / 7;
    CHECK_INT(b->n_scores, scores);
    CHECK_INT(readings, PDM_TELEMETRY_MAX_ROWS - scores);
    CHECK(ordered);
    CHECK_INT(b->first_seq, 1000);
    CHECK_INT(b->last_seq, 1000 + PDM_TELEMETRY_MAX_ROWS - 1);
    pdm__v1__telemetry_batch__free_unpacked(b, NULL);
}

static void test_status(void)
{
    struct pdm_status_model models[] = {{"compressor-1", "compressor", 3, "ab12"},
                                        {"pump-2", "pump", 1, NULL}};
    struct pdm_status_sensor sensors[] = {
        {"temp-1", 1, 1000, 0, "", 1714567890000},
        {"vib-1", 0, 10, 5, "timeout: device 7 on bus rs485-1 did not answer", 0},
    };
    struct pdm_status_msg m = {
        .device_id = "gw-0001",
        .online = 1,
        .agent_version = "0.1.0",
        .ts_ms = 1714567890999,
        .models = models,
        .n_models = 2,
        .sensors = sensors,
        .n_sensors = 2,
        .buffer_readings = 12345,
        .buffer_alerts = 2,
        .seq = 9876543210ull,
        .buffer_bytes = 5 << 20,
        .buffer_max_bytes = 64 << 20,
        .oldest_undelivered_ms = 1714567000000,
        .delivered_readings = 777,
        .delivered_alerts = 7,
        .dropped_readings = 42,
        .store_recovered = 1,
        .store_write_failing = 0,
    };
    counting = 1;
    n_alloc = 0;
    int len = pdm_encode_status(&m, buf, sizeof(buf));
    counting = 0;
    CHECK(len > 0);
    CHECK_INT(n_alloc, 0);
    Pdm__V1__Status *s = len > 0 ? pdm__v1__status__unpack(NULL, (size_t)len, buf) : NULL;
    CHECK(s != NULL);
    if (!s)
        return;
    CHECK_STR(s->device_id, "gw-0001");
    CHECK(s->online);
    CHECK_STR(s->agent_version, "0.1.0");
    CHECK_INT(s->ts_ms, 1714567890999);
    CHECK_INT(s->buffer_readings, 12345);
    CHECK_INT(s->buffer_alerts, 2);
    CHECK_INT(s->seq, 9876543210ull);
    CHECK_INT(s->buffer_bytes, 5 << 20);
    CHECK_INT(s->buffer_max_bytes, 64 << 20);
    CHECK_INT(s->oldest_undelivered_ms, 1714567000000);
    CHECK_INT(s->delivered_readings, 777);
    CHECK_INT(s->delivered_alerts, 7);
    CHECK_INT(s->dropped_readings, 42);
    CHECK(s->store_recovered);
    CHECK(!s->store_write_failing);
    CHECK_INT(s->n_models, 2);
    if (s->n_models == 2) {
        CHECK_STR(s->models[1]->asset, "pump-2");
        CHECK_STR(s->models[1]->model_id, "pump");
        CHECK_INT(s->models[0]->model_version, 3);
        CHECK_STR(s->models[0]->sha256, "ab12");
        CHECK_STR(s->models[1]->sha256, "");
    }
    CHECK_INT(s->n_sensors, 2);
    if (s->n_sensors == 2) {
        CHECK_STR(s->sensors[0]->sensor, "temp-1");
        CHECK(s->sensors[0]->ok);
        CHECK_INT(s->sensors[0]->reads, 1000);
        CHECK_INT(s->sensors[0]->last_ok_ms, 1714567890000);
        CHECK(!s->sensors[1]->ok);
        CHECK_INT(s->sensors[1]->errors, 5);
        CHECK_STR(s->sensors[1]->last_error, "timeout: device 7 on bus rs485-1 did not answer");
    }
    pdm__v1__status__free_unpacked(s, NULL);

    /* canonical bytes, as for telemetry */
    s = pdm__v1__status__unpack(NULL, (size_t)len, buf);
    static uint8_t again[4096];
    size_t l2 = s ? pdm__v1__status__pack(s, again) : 0;
    CHECK(l2 == (size_t)len && memcmp(again, buf, l2) == 0);
    if (s)
        pdm__v1__status__free_unpacked(s, NULL);

    /* the Last Will: offline, no sensors, seq 0 */
    struct pdm_status_msg will = {.device_id = "gw-0001",
                                  .online = 0,
                                  .agent_version = "0.1.0",
                                  .models = models,
                                  .n_models = 2};
    len = pdm_encode_status(&will, buf, sizeof(buf));
    s = len > 0 ? pdm__v1__status__unpack(NULL, (size_t)len, buf) : NULL;
    CHECK(s && !s->online && s->n_sensors == 0 && s->seq == 0 && s->n_models == 2);
    if (s)
        pdm__v1__status__free_unpacked(s, NULL);

    int full = pdm_encode_status(&m, buf, sizeof(buf));
    int nospc = 0;
    for (int cap = 0; cap < full; cap++)
        nospc += pdm_encode_status(&m, buf, (size_t)cap) == -ENOSPC;
    CHECK_INT(nospc, full);
}

/* The counter is not blind: an allocation while counting is seen. */
static void test_counter(void)
{
    counting = 1;
    n_alloc = 0;
    void *volatile p = malloc(64);
    counting = 0;
    free(p);
    CHECK_INT(n_alloc, 1);
}

int main(void)
{
    install_counter();
    test_counter();
    test_alert();
    test_telemetry();
    test_telemetry_full();
    test_status();
    return check_summary("test_encode");
}
