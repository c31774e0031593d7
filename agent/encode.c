/* Encoding of the pdm.v1 messages with protobuf-c, into the caller's buffer.
 *
 * No heap allocation: protobuf_c_message_pack() writes into the buffer it is given, the message
 * structs live on the stack (or, for telemetry, in static scratch), and strings point at the
 * caller's memory.
 *
 * Repeated sub-messages (TelemetryBatch.series/scores, Status.models/sensors) are framed here:
 * each element is packed with one reused struct and written as tag + length + bytes, and the
 * scalar fields around them are packed from a struct holding only those fields (proto3 leaves
 * zero fields out). The bytes are exactly what protobuf-c would produce for the whole message
 * (fields in number order), but no array of element structs and pointers is needed: that saves
 * about 150 bytes per row of static memory for telemetry and any limit on sensors/models for
 * Status. */
#include "encode.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "pdm/v1/pdm.pb-c.h"

/* protobuf-c's structs take char *, our inputs are const: the packer only reads them. */
static char *str(const char *s)
{
    return (char *)(s ? s : "");
}

struct out {
    uint8_t *buf;
    size_t cap, len;
};

static int put_varint(struct out *o, uint64_t v)
{
    uint8_t tmp[10];
    size_t n = 0;
    do {
        tmp[n] = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v)
            tmp[n] |= 0x80;
        n++;
    } while (v);
    if (o->cap - o->len < n)
        return -ENOSPC;
    memcpy(o->buf + o->len, tmp, n);
    o->len += n;
    return 0;
}

/* Appends the fields of m (no framing). */
static int put_fields(struct out *o, const ProtobufCMessage *m)
{
    size_t sz = protobuf_c_message_get_packed_size(m);
    if (o->cap - o->len < sz)
        return -ENOSPC;
    o->len += protobuf_c_message_pack(m, o->buf + o->len);
    return 0;
}

/* Appends m as an element of the length-delimited field `field` of the enclosing message. */
static int put_sub(struct out *o, uint32_t field, const ProtobufCMessage *m)
{
    size_t sz = protobuf_c_message_get_packed_size(m);
    int rc;
    if ((rc = put_varint(o, (uint64_t)field << 3 | 2)) != 0 || (rc = put_varint(o, sz)) != 0)
        return rc;
    if (o->cap - o->len < sz)
        return -ENOSPC;
    o->len += protobuf_c_message_pack(m, o->buf + o->len);
    return 0;
}

/* One SensorHealth (in Status and in CheckupReport) as sub-message field of o. */
static int put_sensor_health(struct out *o, uint32_t field, const struct pdm_status_sensor *s)
{
    Pdm__V1__SensorHealth sh = PDM__V1__SENSOR_HEALTH__INIT;
    sh.sensor = str(s->sensor);
    sh.ok = s->ok ? 1 : 0;
    sh.reads = s->reads;
    sh.errors = s->errors;
    sh.last_error = str(s->last_error);
    sh.last_ok_ms = s->last_ok_ms;
    return put_sub(o, field, &sh.base);
}

static int finish(const struct out *o)
{
    return o->len > (size_t)INT32_MAX ? -EOVERFLOW : (int)o->len;
}

/* ---- Alert ----------------------------------------------------------------------------------- */

int pdm_encode_alert(const struct pdm_alert_msg *m, uint8_t *buf, size_t cap)
{
    if (!m || !m->model || !m->score || (!buf && cap))
        return -EINVAL;
    Pdm__V1__InputContribution ic[PDM_MODEL_MAX_INPUTS];
    Pdm__V1__InputContribution *icp[PDM_MODEL_MAX_INPUTS];
    uint32_t order[PDM_MODEL_MAX_INPUTS];
    uint32_t n = m->model->n_inputs;
    if (m->score->n_inputs < n)
        n = m->score->n_inputs;
    if (n > PDM_MODEL_MAX_INPUTS)
        n = PDM_MODEL_MAX_INPUTS;

    struct pdm_score ranked = *m->score;
    ranked.n_inputs = n;
    pdm_score_rank(&ranked, order);
    for (uint32_t k = 0; k < n; k++) {
        uint32_t i = order[k];
        const struct pdm_model_input *in = &m->model->inputs[i];
        Pdm__V1__InputContribution c = PDM__V1__INPUT_CONTRIBUTION__INIT;
        c.name = str(in->name);
        c.value = m->score->in[i].value;
        c.z = m->score->in[i].z;
        c.contribution = m->score->in[i].contribution;
        c.sensor = str(m->input_sensors ? m->input_sensors[i] : NULL);
        c.center = in->center; /* the center used: the asset's when from_asset */
        c.baseline_source = in->from_asset ? PDM__V1__BASELINE_SOURCE__BASELINE_ASSET
                                           : PDM__V1__BASELINE_SOURCE__BASELINE_FLEET;
        c.scale = in->scale;
        ic[k] = c;
        icp[k] = &ic[k];
    }

    Pdm__V1__Alert a = PDM__V1__ALERT__INIT;
    a.device_id = str(m->device_id);
    a.asset = str(m->asset);
    a.alert_id = str(m->alert_id);
    a.seq = m->seq;
    a.state = (Pdm__V1__AlertState)m->state;
    a.severity = (Pdm__V1__Severity)m->severity;
    a.probability = m->score->probability;
    a.health_score = m->score->health;
    a.model_id = str(m->model->id);
    a.model_version = m->model->version;
    a.ts_ms = m->ts_ms;
    a.n_inputs = n;
    a.inputs = icp;
    a.kind = PDM__V1__ALERT_KIND__FAULT_RISK;
    a.logit = m->score->logit;
    a.reminder = m->reminder ? 1 : 0;

    struct out o = {buf, cap, 0};
    int rc = put_fields(&o, &a.base);
    return rc ? rc : finish(&o);
}

/* ---- SENSOR_FAULT Alert ------------------------------------------------------------------- */

int pdm_encode_sensor_fault(const struct pdm_sensor_fault_msg *m, uint8_t *buf, size_t cap)
{
    if (!m || (!buf && cap))
        return -EINVAL;
    Pdm__V1__Alert a = PDM__V1__ALERT__INIT;
    a.device_id = str(m->device_id);
    a.asset = str(m->asset);
    a.alert_id = str(m->alert_id);
    a.seq = m->seq;
    a.state = (Pdm__V1__AlertState)m->state;
    a.severity = PDM__V1__SEVERITY__WARNING;
    a.model_id = str(NULL);
    a.ts_ms = m->ts_ms;
    a.kind = PDM__V1__ALERT_KIND__SENSOR_FAULT;
    a.sensor = str(m->sensor);
    a.reason = str(m->reason);
    a.reminder = m->reminder ? 1 : 0;

    struct out o = {buf, cap, 0};
    int rc = put_fields(&o, &a.base);
    return rc ? rc : finish(&o);
}

/* ---- TelemetryBatch -------------------------------------------------------------------------- */

/* Scratch for grouping rows by sensor, main loop only. Cost at PDM_TELEMETRY_MAX_ROWS = 4096:
 * values 3 x 8 B + quality 4 B + series index 2 B + series table 32 B per row, plus an
 * 8192-entry hash table of 2 B: about 270 KB of .bss, touched only as far as the batch sizes
 * reach. */
#define SERIES_HASH 8192 /* power of two, >= 2 x PDM_TELEMETRY_MAX_ROWS: load <= 0.5 */
#define NO_SERIES   0xffff

struct series_slot {
    const char *name, *unit;
    uint32_t count, start, fill;
    uint32_t flagged; /* readings with quality != 0: the quality array is sent only then */
};

static struct {
    int64_t ts[PDM_TELEMETRY_MAX_ROWS];
    double value[PDM_TELEMETRY_MAX_ROWS];
    uint64_t seq[PDM_TELEMETRY_MAX_ROWS];
    uint32_t quality[PDM_TELEMETRY_MAX_ROWS];
    uint16_t row_series[PDM_TELEMETRY_MAX_ROWS];
    struct series_slot series[PDM_TELEMETRY_MAX_ROWS];
    uint16_t hash[SERIES_HASH];
} tscratch;

static uint32_t name_hash(const char *s)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    return h;
}

int pdm_encode_telemetry(const char *device_id, int64_t now_ms,
                         const struct pdm_telemetry_row *rows, size_t n, int replay, uint8_t *buf,
                         size_t cap)
{
    if (n > PDM_TELEMETRY_MAX_ROWS || (n && !rows) || (!buf && cap))
        return -EINVAL;
    _Static_assert(PDM_TELEMETRY_MAX_ROWS < NO_SERIES, "series index is 16 bits");
    _Static_assert(SERIES_HASH >= 2 * PDM_TELEMETRY_MAX_ROWS, "hash table too small");

    uint32_t nseries = 0;
    uint64_t first = UINT64_MAX, last = 0;
    memset(tscratch.hash, 0xff, sizeof(tscratch.hash));

    /* Pass 1: one series per distinct sensor name, in order of first appearance. */
    for (size_t i = 0; i < n; i++) {
        const struct pdm_telemetry_row *r = &rows[i];
        if (r->seq < first)
            first = r->seq;
        if (r->seq > last)
            last = r->seq;
        tscratch.row_series[i] = NO_SERIES;
        if (r->kind != 0) /* PDM_ROW_SCORE */
            continue;
        const char *name = r->name ? r->name : "";
        uint32_t h = name_hash(name) & (SERIES_HASH - 1);
        while (tscratch.hash[h] != NO_SERIES &&
               strcmp(tscratch.series[tscratch.hash[h]].name, name))
            h = (h + 1) & (SERIES_HASH - 1);
        if (tscratch.hash[h] == NO_SERIES) {
            tscratch.hash[h] = (uint16_t)nseries;
            tscratch.series[nseries] = (struct series_slot){name, r->unit, 0, 0, 0, 0};
            nseries++;
        }
        tscratch.row_series[i] = tscratch.hash[h];
        tscratch.series[tscratch.hash[h]].count++;
    }
    if (n == 0)
        first = 0;

    /* Pass 2: each series' readings contiguous, in row order. */
    uint32_t at = 0;
    for (uint32_t s = 0; s < nseries; s++) {
        tscratch.series[s].start = at;
        at += tscratch.series[s].count;
    }
    for (size_t i = 0; i < n; i++) {
        if (tscratch.row_series[i] == NO_SERIES)
            continue;
        struct series_slot *s = &tscratch.series[tscratch.row_series[i]];
        uint32_t k = s->start + s->fill++;
        tscratch.ts[k] = rows[i].ts_ms;
        tscratch.value[k] = rows[i].value;
        tscratch.seq[k] = rows[i].seq;
        tscratch.quality[k] = rows[i].quality;
        s->flagged += rows[i].quality != 0;
    }

    struct out o = {buf, cap, 0};
    int rc;
    Pdm__V1__TelemetryBatch head = PDM__V1__TELEMETRY_BATCH__INIT;
    head.device_id = str(device_id);
    head.ts_ms = now_ms;
    if ((rc = put_fields(&o, &head.base)) != 0)
        return rc;

    for (uint32_t s = 0; s < nseries; s++) {
        const struct series_slot *sl = &tscratch.series[s];
        Pdm__V1__SensorSeries ss = PDM__V1__SENSOR_SERIES__INIT;
        ss.sensor = str(sl->name);
        ss.n_ts_ms = ss.n_value = ss.n_seq = sl->count;
        ss.ts_ms = &tscratch.ts[sl->start];
        ss.value = &tscratch.value[sl->start];
        ss.seq = &tscratch.seq[sl->start];
        ss.unit = str(sl->unit);
        if (sl->flagged) {
            ss.n_quality = sl->count;
            ss.quality = &tscratch.quality[sl->start];
        }
        if ((rc = put_sub(&o, 3, &ss.base)) != 0)
            return rc;
    }

    for (size_t i = 0; i < n; i++) {
        const struct pdm_telemetry_row *r = &rows[i];
        if (r->kind != 1) /* PDM_ROW_SCORE */
            continue;
        Pdm__V1__AssetScore sc = PDM__V1__ASSET_SCORE__INIT;
        sc.asset = str(r->name);
        sc.ts_ms = r->ts_ms;
        sc.probability = r->value;
        double h = 100.0 * (1.0 - r->value);
        sc.health_score = !(h > 0.0) ? 0 : h >= 100.0 ? 100 : (uint32_t)lround(h);
        sc.seq = r->seq;
        if ((rc = put_sub(&o, 4, &sc.base)) != 0)
            return rc;
    }

    Pdm__V1__TelemetryBatch tail = PDM__V1__TELEMETRY_BATCH__INIT;
    tail.device_id = str(NULL);
    tail.first_seq = first;
    tail.last_seq = last;
    tail.replay = replay ? 1 : 0;
    if ((rc = put_fields(&o, &tail.base)) != 0)
        return rc;
    return finish(&o);
}

/* ---- Status ---------------------------------------------------------------------------------- */

int pdm_encode_status(const struct pdm_status_msg *m, uint8_t *buf, size_t cap)
{
    if (!m || (m->n_models && !m->models) || (m->n_sensors && !m->sensors) || (!buf && cap))
        return -EINVAL;
    struct out o = {buf, cap, 0};
    int rc;

    Pdm__V1__Status st = PDM__V1__STATUS__INIT; /* fields 1-4 */
    st.device_id = str(m->device_id);
    st.online = m->online ? 1 : 0;
    st.agent_version = str(m->agent_version);
    st.ts_ms = m->ts_ms;
    if ((rc = put_fields(&o, &st.base)) != 0)
        return rc;

    for (size_t i = 0; i < m->n_models; i++) {
        Pdm__V1__ModelInfo mi = PDM__V1__MODEL_INFO__INIT;
        mi.asset = str(m->models[i].asset);
        mi.model_id = str(m->models[i].model_id);
        mi.model_version = m->models[i].version;
        mi.sha256 = str(m->models[i].sha256);
        if ((rc = put_sub(&o, 5, &mi.base)) != 0)
            return rc;
    }

    Pdm__V1__Status mid = PDM__V1__STATUS__INIT; /* fields 6-7 */
    mid.device_id = mid.agent_version = str(NULL);
    mid.buffer_readings = m->buffer_readings;
    mid.buffer_alerts = m->buffer_alerts;
    if ((rc = put_fields(&o, &mid.base)) != 0)
        return rc;

    for (size_t i = 0; i < m->n_sensors; i++)
        if ((rc = put_sensor_health(&o, 8, &m->sensors[i])) != 0)
            return rc;

    Pdm__V1__Status end = PDM__V1__STATUS__INIT; /* fields 9.. */
    end.device_id = end.agent_version = str(NULL);
    end.seq = m->seq;
    end.buffer_bytes = m->buffer_bytes;
    end.buffer_max_bytes = m->buffer_max_bytes;
    end.oldest_undelivered_ms = m->oldest_undelivered_ms;
    end.delivered_readings = m->delivered_readings;
    end.delivered_alerts = m->delivered_alerts;
    end.dropped_readings = m->dropped_readings;
    end.store_recovered = m->store_recovered ? 1 : 0;
    end.store_write_failing = m->store_write_failing ? 1 : 0;
    if ((rc = put_fields(&o, &end.base)) != 0)
        return rc;
    return finish(&o);
}

/* ---- replay flag ------------------------------------------------------------------------------
 */

int pdm_encode_mark_replay(uint8_t *buf, size_t len, size_t cap)
{
    /* Protobuf merges concatenated encodings field by field, and for a scalar the last value
     * wins: appending "field 15, varint 1" sets Alert.replay without decoding the stored
     * payload. Tag = (15 << 3) | wire type 0 = 0x78. */
    if (len + 2 > cap)
        return -ENOSPC;
    buf[len] = 0x78;
    buf[len + 1] = 0x01;
    return (int)(len + 2);
}

/* ---- closed service loop (issue 6) --------------------------------------------------------- */

static void usage_msg(const struct pdm_usage_view *u, Pdm__V1__AssetUsage *m)
{
    pdm__v1__asset_usage__init(m);
    m->asset = str(u->asset);
    m->run_hours = u->run_hours;
    m->starts = u->starts;
    m->running = u->running ? 1 : 0;
    m->run_hours_since_service = u->hours_since_service;
    m->starts_since_service = u->starts_since_service;
    m->last_service_ms = u->last_service_ms;
    m->maintenance_due = str(u->maintenance_due);
    m->outcome_due_ms = u->outcome_due_ms;
    m->maintenance_alert_id = str(u->alert_id);
}

int pdm_encode_service_alert(const struct pdm_service_alert_msg *m, uint8_t *buf, size_t cap)
{
    if (!m || (!buf && cap))
        return -EINVAL;
    Pdm__V1__AssetUsage u;
    Pdm__V1__Alert a = PDM__V1__ALERT__INIT;
    a.device_id = str(m->device_id);
    a.asset = str(m->asset);
    a.alert_id = str(m->alert_id);
    a.seq = m->seq;
    a.state = (Pdm__V1__AlertState)m->state;
    a.severity = (Pdm__V1__Severity)m->severity;
    a.model_id = str(NULL);
    a.ts_ms = m->ts_ms;
    a.kind = (Pdm__V1__AlertKind)m->kind;
    a.sensor = str(NULL);
    a.reason = str(m->reason);
    a.probability = m->probability;
    if (m->usage) {
        usage_msg(m->usage, &u);
        a.usage = &u;
    }
    a.outcome = (Pdm__V1__ServiceOutcome)m->outcome;
    a.visit_id = m->visit_id;
    a.reminder = m->reminder ? 1 : 0;
    struct out o = {buf, cap, 0};
    int rc = put_fields(&o, &a.base);
    return rc ? rc : finish(&o);
}

int pdm_encode_status_usage(const struct pdm_usage_view *u, size_t n, uint8_t *buf, size_t len,
                            size_t cap)
{
    struct out o = {buf, cap, len};
    for (size_t i = 0; i < n; i++) {
        Pdm__V1__AssetUsage m;
        usage_msg(&u[i], &m);
        int rc = put_sub(&o, 18, &m.base);
        if (rc)
            return rc;
    }
    return finish(&o);
}

static void summary_msg(const struct pdm_report_alert *r, Pdm__V1__AlertSummary *m)
{
    pdm__v1__alert_summary__init(m);
    m->alert_id = str(r->alert_id);
    m->kind = (Pdm__V1__AlertKind)r->kind;
    m->state = (Pdm__V1__AlertState)r->state;
    m->severity = (Pdm__V1__Severity)r->severity;
    m->ts_ms = r->ts_ms;
    m->seq = r->seq;
    m->acknowledged = r->acknowledged ? 1 : 0;
}

/* Each asset is packed on its own (framed with put_sub), so only one asset's element structs
 * are needed at a time: 2 x 64 alert summaries and 32 inputs, on the stack. */
#define REPORT_ALERTS_MAX 64

int pdm_encode_report(const struct pdm_report_msg *m, uint8_t *buf, size_t cap)
{
    if (!m || (!buf && cap))
        return -EINVAL;
    struct out o = {buf, cap, 0};
    int rc;
    Pdm__V1__CheckupReport head = PDM__V1__CHECKUP_REPORT__INIT;
    head.device_id = str(m->device_id);
    head.request_id = str(m->request_id);
    head.ts_ms = m->ts_ms;
    head.agent_version = str(m->agent_version);
    if ((rc = put_fields(&o, &head.base)) != 0)
        return rc;
    for (size_t i = 0; i < m->n_assets; i++) {
        const struct pdm_report_asset *ra = &m->assets[i];
        Pdm__V1__AssetCheckup ac = PDM__V1__ASSET_CHECKUP__INIT;
        Pdm__V1__InputContribution ic[PDM_MODEL_MAX_INPUTS], *icp[PDM_MODEL_MAX_INPUTS];
        Pdm__V1__AlertSummary op[REPORT_ALERTS_MAX], re[REPORT_ALERTS_MAX];
        Pdm__V1__AlertSummary *opp[REPORT_ALERTS_MAX], *rep[REPORT_ALERTS_MAX];
        Pdm__V1__AssetUsage u;
        ac.asset = str(ra->asset);
        ac.model_id = str(ra->model ? ra->model->id : NULL);
        ac.model_version = ra->model ? ra->model->version : 0;
        ac.scored = ra->scored ? 1 : 0;
        if (ra->scored && ra->score && ra->model) {
            ac.probability = ra->score->probability;
            ac.health_score = ra->score->health;
            ac.score_ts_ms = ra->score_ts_ms;
            uint32_t order[PDM_MODEL_MAX_INPUTS];
            struct pdm_score ranked = *ra->score;
            uint32_t n =
                ra->model->n_inputs < ranked.n_inputs ? ra->model->n_inputs : ranked.n_inputs;
            n = n > PDM_MODEL_MAX_INPUTS ? PDM_MODEL_MAX_INPUTS : n;
            ranked.n_inputs = n;
            pdm_score_rank(&ranked, order);
            for (uint32_t k = 0; k < n; k++) {
                uint32_t j = order[k];
                pdm__v1__input_contribution__init(&ic[k]);
                ic[k].name = str(ra->model->inputs[j].name);
                ic[k].value = ra->score->in[j].value;
                ic[k].z = ra->score->in[j].z;
                ic[k].contribution = ra->score->in[j].contribution;
                ic[k].sensor = str(ra->input_sensors ? ra->input_sensors[j] : NULL);
                ic[k].center = ra->model->inputs[j].center;
                icp[k] = &ic[k];
            }
            ac.n_inputs = n;
            ac.inputs = icp;
        }
        if (ra->usage) {
            usage_msg(ra->usage, &u);
            ac.usage = &u;
        }
        size_t no = ra->n_open < REPORT_ALERTS_MAX ? ra->n_open : REPORT_ALERTS_MAX;
        size_t nr = ra->n_recent < REPORT_ALERTS_MAX ? ra->n_recent : REPORT_ALERTS_MAX;
        for (size_t k = 0; k < no; k++) {
            summary_msg(&ra->open[k], &op[k]);
            opp[k] = &op[k];
        }
        for (size_t k = 0; k < nr; k++) {
            summary_msg(&ra->recent[k], &re[k]);
            rep[k] = &re[k];
        }
        ac.n_open_alerts = no;
        ac.open_alerts = no ? opp : NULL;
        ac.n_recent_alerts = nr;
        ac.recent_alerts = nr ? rep : NULL;
        if ((rc = put_sub(&o, 5, &ac.base)) != 0)
            return rc;
    }
    for (size_t i = 0; i < m->n_sensors; i++)
        if ((rc = put_sensor_health(&o, 6, &m->sensors[i])) != 0)
            return rc;
    return finish(&o);
}

const char *pdm_encode_why(int rc, size_t cap, char *buf, size_t n)
{
    if (rc != -ENOSPC)
        return strerror(-rc);
    snprintf(buf, n, "message larger than %zu bytes", cap);
    return buf;
}
