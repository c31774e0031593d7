/* Decoding and printing of pdm.v1 payloads (see print.h).
 *
 * JSON and the full text form walk protobuf-c's descriptors, so a field added to pdm.proto
 * shows up here without code changes; the one-line form is written per message type because
 * it chooses what a person needs to see first. */
#include "print.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/modelsig.h"
#include "pdm/v1/pdm.pb-c.h"

static const struct {
    const char *name;
    const ProtobufCMessageDescriptor *desc;
} types[] = {
    [PDM_MSG_OTHER] = {"other", NULL},
    [PDM_MSG_ALERT] = {"alert", &pdm__v1__alert__descriptor},
    [PDM_MSG_TELEMETRY] = {"telemetry", &pdm__v1__telemetry_batch__descriptor},
    [PDM_MSG_STATUS] = {"status", &pdm__v1__status__descriptor},
    [PDM_MSG_CMD_RESULT] = {"cmd_result", &pdm__v1__command_result__descriptor},
    [PDM_MSG_MODEL_UPDATE] = {"model", &pdm__v1__model_update__descriptor},
    [PDM_MSG_REPORT] = {"report", &pdm__v1__checkup_report__descriptor},
    [PDM_MSG_ACK] = {"ack", &pdm__v1__ack_alert__descriptor},
    [PDM_MSG_SERVICE_VISIT] = {"service", &pdm__v1__service_visit__descriptor},
    [PDM_MSG_STATUS_REQUEST] = {"status_request", &pdm__v1__status_request__descriptor},
    [PDM_MSG_REPORT_REQUEST] = {"report_request", &pdm__v1__report_request__descriptor},
    [PDM_MSG_BASELINE] = {"baseline", &pdm__v1__baseline_request__descriptor},
};

enum pdm_msg_type pdm_msg_type_from_name(const char *name)
{
    for (int t = PDM_MSG_ALERT; t <= PDM_MSG_LAST; t++)
        if (name && strcmp(name, types[t].name) == 0)
            return (enum pdm_msg_type)t;
    return PDM_MSG_OTHER;
}

const char *pdm_msg_type_name(enum pdm_msg_type t)
{
    return (unsigned)t <= PDM_MSG_LAST ? types[t].name : "other";
}

const char *pdm_msg_proto_name(enum pdm_msg_type t)
{
    return (unsigned)t <= PDM_MSG_LAST && types[t].desc ? types[t].desc->name : NULL;
}

enum pdm_msg_type pdm_msg_type_from_topic(const char *topic)
{
    const char *last = topic ? strrchr(topic, '/') : NULL;
    /* a command's topic: .../cmd/NAME, where status and report name the requests */
    if (last && last - topic >= 4 && strncmp(last - 4, "/cmd", 4) == 0) {
        if (strcmp(last + 1, "status") == 0)
            return PDM_MSG_STATUS_REQUEST;
        if (strcmp(last + 1, "report") == 0)
            return PDM_MSG_REPORT_REQUEST;
    }
    return pdm_msg_type_from_name(last ? last + 1 : topic);
}

/* ---- values ---------------------------------------------------------------------------------- */

static const char *enum_name(const ProtobufCFieldDescriptor *fd, int v)
{
    const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(fd->descriptor, v);
    return ev ? ev->name : NULL;
}

static size_t elem_size(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_ENUM:
        return 4;
    case PROTOBUF_C_TYPE_FLOAT:
        return sizeof(float);
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        return 8;
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(void *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    }
    return 0;
}

static void print_message(FILE *f, const ProtobufCMessage *m, int json, int indent);

/* One value of field fd stored at p. json: JSON encoding; else protobuf text format. */
static void print_value(FILE *f, const ProtobufCFieldDescriptor *fd, const void *p, int json,
                        int indent)
{
    char num[40];
    switch (fd->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        fprintf(f, "%" PRId32, *(const int32_t *)p);
        break;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        fprintf(f, "%" PRIu32, *(const uint32_t *)p);
        break;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        fprintf(f, "%" PRId64, *(const int64_t *)p);
        break;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        fprintf(f, "%" PRIu64, *(const uint64_t *)p);
        break;
    case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_DOUBLE: {
        double v = fd->type == PROTOBUF_C_TYPE_FLOAT ? *(const float *)p : *(const double *)p;
        pdm_json_double_text(num, sizeof(num), v);
        if (json && !isfinite(v))
            fprintf(f, "\"%s\"", num); /* proto3 JSON mapping */
        else
            fputs(num, f);
        break;
    }
    case PROTOBUF_C_TYPE_BOOL:
        fputs(*(const protobuf_c_boolean *)p ? "true" : "false", f);
        break;
    case PROTOBUF_C_TYPE_ENUM: {
        int v = *(const int *)p;
        const char *name = enum_name(fd, v);
        if (!name)
            fprintf(f, "%d", v);
        else if (json)
            fprintf(f, "\"%s\"", name);
        else
            fputs(name, f);
        break;
    }
    case PROTOBUF_C_TYPE_STRING:
        pdm_json_fstr(f, *(char *const *)p);
        break;
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *b = p;
        fputc('"', f);
        for (size_t i = 0; i < b->len; i++)
            fprintf(f, json ? "%02x" : "\\x%02x", b->data[i]);
        fputc('"', f);
        break;
    }
    case PROTOBUF_C_TYPE_MESSAGE:
        print_message(f, *(ProtobufCMessage *const *)p, json, indent);
        break;
    }
}

/* "2024-05-01T12:00:00.000Z" for a wall-clock field (name ends in _ms, value > 0). */
static void time_comment(FILE *f, const ProtobufCFieldDescriptor *fd, const void *p)
{
    size_t n = strlen(fd->name);
    if (fd->type != PROTOBUF_C_TYPE_INT64 || n < 3 || strcmp(fd->name + n - 3, "_ms") != 0)
        return;
    int64_t ms = *(const int64_t *)p;
    if (ms <= 0)
        return;
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    char buf[32];
    if (gmtime_r(&s, &tm) && strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm))
        fprintf(f, "  # %s.%03dZ", buf, (int)(ms % 1000));
}

static void pad(FILE *f, int indent)
{
    fprintf(f, "%*s", indent, "");
}

/* The fields of m; JSON members get a leading comma when comma is set (or after the first). */
static void print_fields(FILE *f, const ProtobufCMessage *m, int json, int indent, int comma)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *fd = &d->fields[i];
        const char *base = (const char *)m;
        if ((fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
            *(const uint32_t *)(base + fd->quantifier_offset) != fd->id)
            continue;
        const char *sep = comma ? "," : "";
        comma = 1;
        if (fd->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)(base + fd->quantifier_offset);
            const char *arr = *(const char *const *)(base + fd->offset);
            size_t es = elem_size(fd->type);
            if (json) {
                fprintf(f, "%s\"%s\":[", sep, fd->name);
                for (size_t k = 0; k < n; k++) {
                    if (k)
                        fputc(',', f);
                    print_value(f, fd, arr + k * es, 1, 0);
                }
                fputc(']', f);
            } else if (fd->type == PROTOBUF_C_TYPE_MESSAGE) {
                for (size_t k = 0; k < n; k++) {
                    pad(f, indent);
                    fprintf(f, "%s ", fd->name);
                    print_value(f, fd, arr + k * es, 0, indent + 2);
                }
            } else {
                pad(f, indent);
                fprintf(f, "%s: [", fd->name);
                for (size_t k = 0; k < n; k++) {
                    if (k)
                        fputs(", ", f);
                    print_value(f, fd, arr + k * es, 0, 0);
                }
                fputs("]\n", f);
            }
            continue;
        }
        const void *p = base + fd->offset;
        if (json) {
            fprintf(f, "%s\"%s\":", sep, fd->name);
            print_value(f, fd, p, 1, 0);
        } else if (fd->type == PROTOBUF_C_TYPE_MESSAGE) {
            if (!*(ProtobufCMessage *const *)p)
                continue;
            pad(f, indent);
            fprintf(f, "%s ", fd->name);
            print_value(f, fd, p, 0, indent + 2);
        } else {
            pad(f, indent);
            fprintf(f, "%s: ", fd->name);
            print_value(f, fd, p, 0, 0);
            time_comment(f, fd, p);
            fputc('\n', f);
        }
    }
}

/* A nested message: {...} in JSON, "{\n fields }\n" in text format. */
static void print_message(FILE *f, const ProtobufCMessage *m, int json, int indent)
{
    if (!m) {
        fputs(json ? "null" : "{\n}\n", f);
        return;
    }
    fputs(json ? "{" : "{\n", f);
    print_fields(f, m, json, indent, 0);
    if (json) {
        fputc('}', f);
    } else {
        pad(f, indent - 2);
        fputs("}\n", f);
    }
}

/* ---- one line per message -------------------------------------------------------------------- */

static const char *plural(uint64_t n, const char *one, const char *many)
{
    return n == 1 ? one : many;
}

static void line_alert(FILE *f, const Pdm__V1__Alert *a)
{
    const ProtobufCEnumValue *st =
        protobuf_c_enum_descriptor_get_value(&pdm__v1__alert_state__descriptor, a->state);
    const ProtobufCEnumValue *sv =
        protobuf_c_enum_descriptor_get_value(&pdm__v1__severity__descriptor, a->severity);
    if (a->kind == PDM__V1__ALERT_KIND__SENSOR_FAULT) {
        /* no model, no probability: which sensor and what is wrong with it */
        fprintf(f, "ALERT  %s/%s  SENSOR_FAULT %s%s  %s  sensor=%s  id=%s seq=%" PRIu64 "  %s%s\n",
                a->device_id, a->asset, st ? st->name : "?", a->reminder ? " (reminder)" : "",
                sv ? sv->name : "?", a->sensor, a->alert_id, a->seq, a->reason,
                a->replay ? "  (replay)" : "");
        return;
    }
    if (a->kind == PDM__V1__ALERT_KIND__MAINTENANCE_DUE ||
        a->kind == PDM__V1__ALERT_KIND__SERVICE_OUTCOME) {
        /* the counters and the reason, no model */
        const ProtobufCEnumValue *k =
            protobuf_c_enum_descriptor_get_value(&pdm__v1__alert_kind__descriptor, a->kind);
        fprintf(f, "ALERT  %s/%s  %s %s%s  id=%s seq=%" PRIu64, a->device_id, a->asset,
                k ? k->name : "?", st ? st->name : "?", a->reminder ? " (reminder)" : "",
                a->alert_id, a->seq);
        if (a->usage)
            fprintf(f, "  run %.2f h, %" PRIu64 " starts (since service %.2f h, %" PRIu64 ")",
                    a->usage->run_hours, a->usage->starts, a->usage->run_hours_since_service,
                    a->usage->starts_since_service);
        fprintf(f, "  %s%s\n", a->reason, a->replay ? "  (replay)" : "");
        return;
    }
    fprintf(f,
            "ALERT  %s/%s  %s%s  %s  P=%.2f health=%" PRIu32 "  id=%s seq=%" PRIu64
            " model=%s v%" PRIu32,
            a->device_id, a->asset, st ? st->name : "?", a->reminder ? " (reminder)" : "",
            sv ? sv->name : "?", a->probability, a->health_score, a->alert_id, a->seq, a->model_id,
            a->model_version);
    /* The inputs come largest |contribution| first: the first few are what drove the score. */
    size_t n = a->n_inputs < 3 ? a->n_inputs : 3;
    for (size_t i = 0; i < n; i++) {
        const Pdm__V1__InputContribution *c = a->inputs[i];
        /* value against the baseline it was scored with, and where that baseline came from */
        fprintf(f, "%s%s %+.2f (%.4g vs %.4g %s)", i ? ", " : "  drivers: ", c->name,
                c->contribution, c->value, c->center,
                c->baseline_source == PDM__V1__BASELINE_SOURCE__BASELINE_ASSET ? "asset" : "fleet");
    }
    fputc('\n', f);
}

static void line_telemetry(FILE *f, const Pdm__V1__TelemetryBatch *b)
{
    uint64_t readings = 0;
    for (size_t i = 0; i < b->n_series; i++)
        readings += b->series[i]->n_value;
    fprintf(f, "TELEMETRY %s  %" PRIu64 " %s from %zu %s, %zu %s, seq %" PRIu64 "..%" PRIu64 "\n",
            b->device_id, readings, plural(readings, "reading", "readings"), b->n_series,
            plural(b->n_series, "sensor", "sensors"), b->n_scores,
            plural(b->n_scores, "score", "scores"), b->first_seq, b->last_seq);
}

static void line_status(FILE *f, const Pdm__V1__Status *s)
{
    fprintf(f, "STATUS %s  %s agent %s buffer %" PRIu64 " readings / %" PRIu64 " alerts",
            s->device_id, s->online ? "online" : "offline",
            s->agent_version[0] ? s->agent_version : "?", s->buffer_readings, s->buffer_alerts);
    size_t bad = 0;
    for (size_t i = 0; i < s->n_sensors; i++)
        if (!s->sensors[i]->ok)
            bad++;
    if (s->n_sensors)
        fprintf(f, "  sensors %zu/%zu ok", s->n_sensors - bad, s->n_sensors);
    for (size_t i = 0, shown = 0; i < s->n_sensors && shown < 3; i++)
        if (!s->sensors[i]->ok) {
            fprintf(f, "%s%s: %s", shown++ ? ", " : " (", s->sensors[i]->sensor,
                    s->sensors[i]->last_error[0] ? s->sensors[i]->last_error : "failing");
            if (shown == 3 || shown == bad)
                fputc(')', f);
        }
    fputc('\n', f);
}

/* The answer to a command: which, whether it was carried out and why (not). */
static void line_cmd_result(FILE *f, const Pdm__V1__CommandResult *r)
{
    const ProtobufCEnumValue *why =
        protobuf_c_enum_descriptor_get_value(&pdm__v1__command_reason__descriptor, r->reason);
    fprintf(f, "CMD_RESULT %s  %s  request=%s%s  %s %s  %s", r->device_id, r->command,
            r->request_id[0] ? r->request_id : "-", r->fleet ? " (fleet)" : "",
            r->ok ? "OK" : "REFUSED", why ? why->name : "?", r->text);
    for (size_t i = 0; i < r->n_models; i++)
        fprintf(f, "%s%s=%s v%" PRIu32, i ? ", " : "  now: ", r->models[i]->asset,
                r->models[i]->model_id, r->models[i]->model_version);
    fputc('\n', f);
}

/* A model update as sent: what it targets, which bytes, which key (not the model text). */
static void line_model_update(FILE *f, const Pdm__V1__ModelUpdate *u)
{
    char sha[65];
    pdm_sha256_hex(u->model.data, u->model.len, sha);
    fprintf(f,
            "MODEL_UPDATE  asset=%s  version=%" PRIu32
            "  model %zu bytes sha256 %.16s...  key %s  signature %zu bytes  request=%s\n",
            u->asset[0] ? u->asset : "(every asset running its model id)", u->version, u->model.len,
            sha, u->key_id[0] ? u->key_id : "-", u->signature.len,
            u->request_id[0] ? u->request_id : "-");
}

/* A check-up report: per asset its health, usage and alerts in one line each. */
static void line_report(FILE *f, const Pdm__V1__CheckupReport *r)
{
    fprintf(f, "REPORT %s  request=%s  %zu %s, %zu %s\n", r->device_id,
            r->request_id[0] ? r->request_id : "-", r->n_assets,
            plural(r->n_assets, "asset", "assets"), r->n_sensors,
            plural(r->n_sensors, "sensor", "sensors"));
    for (size_t i = 0; i < r->n_assets; i++) {
        const Pdm__V1__AssetCheckup *a = r->assets[i];
        fprintf(f, "  %s  model %s v%" PRIu32, a->asset, a->model_id, a->model_version);
        if (a->scored)
            fprintf(f, "  P=%.2f health=%" PRIu32, a->probability, a->health_score);
        else
            fputs("  not scored yet", f);
        if (a->usage)
            fprintf(f, "  run %.2f h, %" PRIu64 " starts", a->usage->run_hours, a->usage->starts);
        fprintf(f, "  %zu open %s, %zu recent\n", a->n_open_alerts,
                plural(a->n_open_alerts, "alert", "alerts"), a->n_recent_alerts);
    }
}

/* ---- entry point ----------------------------------------------------------------------------- */

static void print_other(FILE *f, const char *topic, const uint8_t *buf, size_t len,
                        enum pdm_print_style style)
{
    size_t show = len < 32 ? len : 32;
    if (style == PDM_PRINT_JSON) {
        fputc('{', f);
        if (topic) {
            fputs("\"topic\":", f);
            pdm_json_fstr(f, topic);
            fputc(',', f);
        }
        fprintf(f, "\"type\":\"other\",\"bytes\":%zu,\"hex\":\"", len);
        for (size_t i = 0; i < len; i++)
            fprintf(f, "%02x", buf[i]);
        fputs("\"}\n", f);
        return;
    }
    fprintf(f, "OTHER  %s  %zu bytes  ", topic ? topic : "-", len);
    for (size_t i = 0; i < show; i++)
        fprintf(f, "%02x", buf[i]);
    fputs(show < len ? "...\n" : "\n", f);
}

int pdm_print_payload(FILE *f, enum pdm_msg_type t, const char *topic, const uint8_t *buf,
                      size_t len, enum pdm_print_style style)
{
    /* Empty payloads are not messages (a retained message being cleared, for one). */
    if ((unsigned)t > PDM_MSG_LAST || t == PDM_MSG_OTHER || len == 0) {
        print_other(f, topic, buf, len, style);
        return 0;
    }
    ProtobufCMessage *m = protobuf_c_message_unpack(types[t].desc, NULL, len, buf);
    if (!m)
        return -EBADMSG;
    switch (style) {
    case PDM_PRINT_JSON:
        /* the envelope first, then the message's own fields */
        fputc('{', f);
        if (topic) {
            /* a message off the wire: its topic and when it arrived (wall clock, ms) */
            struct timespec now;
            clock_gettime(CLOCK_REALTIME, &now);
            fputs("\"topic\":", f);
            pdm_json_fstr(f, topic);
            fprintf(f, ",\"rx_ms\":%lld,",
                    (long long)now.tv_sec * 1000 + (long long)(now.tv_nsec / 1000000));
        }
        fprintf(f, "\"type\":\"%s\"", types[t].name);
        print_fields(f, m, 1, 0, 1);
        fputs("}\n", f);
        break;
    case PDM_PRINT_FULL:
        if (topic)
            fprintf(f, "# topic %s\n", topic);
        fprintf(f, "# %s, %zu bytes\n", types[t].desc->name, len);
        print_fields(f, m, 0, 0, 0);
        break;
    case PDM_PRINT_LINE:
        if (t == PDM_MSG_ALERT)
            line_alert(f, (const Pdm__V1__Alert *)m);
        else if (t == PDM_MSG_TELEMETRY)
            line_telemetry(f, (const Pdm__V1__TelemetryBatch *)m);
        else if (t == PDM_MSG_CMD_RESULT)
            line_cmd_result(f, (const Pdm__V1__CommandResult *)m);
        else if (t == PDM_MSG_MODEL_UPDATE)
            line_model_update(f, (const Pdm__V1__ModelUpdate *)m);
        else if (t == PDM_MSG_REPORT)
            line_report(f, (const Pdm__V1__CheckupReport *)m);
        else if (t >= PDM_MSG_ACK) { /* a command as sent: every field on one line */
            fprintf(f, "COMMAND %s ", types[t].name);
            print_fields(f, m, 1, 0, 0);
            fputc('\n', f);
        } else
            line_status(f, (const Pdm__V1__Status *)m);
        break;
    }
    protobuf_c_message_free_unpacked(m, NULL);
    return 0;
}
