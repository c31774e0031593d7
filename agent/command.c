/* Commands from the backend: topics, generic answers, dispatch (see command.h). Main loop only. */
#include "command.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "lib/log.h"
#include "pdm/v1/pdm.pb-c.h"

#define FLEET_LEVEL "fleet"

void pdm_cmd_set(struct pdm_cmd_result *res, enum pdm_cmd_reason reason, const char *fmt, ...)
{
    res->reason = reason;
    res->ok = reason == PDM_CMD_OK || reason == PDM_CMD_NOT_APPLICABLE;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(res->text, sizeof(res->text), fmt, ap);
    va_end(ap);
}

const char *pdm_cmd_reason_name(enum pdm_cmd_reason r)
{
    const ProtobufCEnumValue *v =
        protobuf_c_enum_descriptor_get_value(&pdm__v1__command_reason__descriptor, (int)r);
    return v ? v->name : "?";
}

int pdm_cmd_topics(const char *prefix, const char *device_id, char *dev, char *fleet, size_t len)
{
    int a = snprintf(dev, len, "%s/%s/cmd/#", prefix, device_id);
    int b = snprintf(fleet, len, "%s/" FLEET_LEVEL "/cmd/#", prefix);
    return a < 0 || b < 0 || (size_t)a >= len || (size_t)b >= len ? -ENAMETOOLONG : 0;
}

int pdm_cmd_result_topic(const char *prefix, const char *device_id, char *out, size_t len)
{
    int n = snprintf(out, len, "%s/%s/cmd_result", prefix, device_id);
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* "level/" at *p: advances past it. */
static int eat(const char **p, const char *level)
{
    size_t n = strlen(level);
    if (strncmp(*p, level, n) != 0 || (*p)[n] != '/')
        return 0;
    *p += n + 1;
    return 1;
}

int pdm_cmd_parse_topic(const char *topic, const char *prefix, const char *device_id, char *name,
                        size_t namelen, int *fleet)
{
    const char *p = topic;
    if (!eat(&p, prefix))
        return -EINVAL;
    if (eat(&p, device_id))
        *fleet = 0;
    else if (eat(&p, FLEET_LEVEL))
        *fleet = 1;
    else
        return -EINVAL;
    if (!eat(&p, "cmd") || !*p)
        return -EINVAL;
    snprintf(name, namelen, "%s", p);
    return 0;
}

/* A base-128 varint at p[*i]; 0 or -1 when it runs past len or over 64 bits. */
static int varint(const uint8_t *p, size_t len, size_t *i, uint64_t *out)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (*i >= len)
            return -1;
        uint8_t b = p[(*i)++];
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return 0;
        }
    }
    return -1;
}

void pdm_cmd_request_id(const uint8_t *p, size_t len, char *out, size_t outlen)
{
    size_t i = 0;
    out[0] = '\0';
    /* every field takes at least one byte, so this ends after at most len fields */
    while (i < len) {
        uint64_t key, v;
        if (varint(p, len, &i, &key) != 0)
            return;
        uint32_t wire = (uint32_t)(key & 7);
        uint64_t field = key >> 3;
        switch (wire) {
        case 0:
            if (varint(p, len, &i, &v) != 0)
                return;
            break;
        case 1:
        case 5: {
            size_t n = wire == 1 ? 8 : 4;
            if (len - i < n)
                return;
            i += n;
            break;
        }
        case 2:
            if (varint(p, len, &i, &v) != 0 || v > len - i)
                return;
            if (field == 1) {
                size_t n = (size_t)v < outlen - 1 ? (size_t)v : outlen - 1;
                for (size_t k = 0; k < n; k++)
                    out[k] = p[i + k] >= 0x20 && p[i + k] < 0x7f ? (char)p[i + k] : '?';
                out[n] = '\0';
                return;
            }
            i += (size_t)v;
            break;
        default:
            return; /* groups or garbage: nothing more can be read safely */
        }
    }
}

int pdm_cmd_dispatch(const struct pdm_cmd_def *table, size_t n, void *ctx, const char *prefix,
                     const char *device_id, const struct pdm_uplink_event *ev, struct pdm_cmd *cmd,
                     struct pdm_cmd_result *res)
{
    memset(cmd, 0, sizeof(*cmd));
    memset(res, 0, sizeof(*res));
    if (pdm_cmd_parse_topic(ev->topic, prefix, device_id, cmd->name, sizeof(cmd->name),
                            &cmd->fleet) != 0) {
        pdm_warn("command: a message on %s, which is not a command topic; ignored", ev->topic);
        return -EINVAL;
    }
    if (ev->full_len == 0 && !ev->dropped) {
        /* how a backend deletes a retained command: the empty message reaches us too */
        pdm_debug("command %s: empty message (a retained command being cleared); ignored",
                  cmd->name);
        return -ENODATA;
    }
    cmd->retained = ev->retained;
    cmd->payload = ev->payload;
    cmd->len = ev->len;
    pdm_cmd_request_id(ev->payload, ev->len, cmd->request_id, sizeof(cmd->request_id));

    const struct pdm_cmd_def *def = NULL;
    for (size_t i = 0; i < n && !ev->topic_cut; i++)
        if (strcmp(table[i].name, cmd->name) == 0)
            def = &table[i];
    if (ev->dropped)
        pdm_cmd_set(res, PDM_CMD_BUSY,
                    "%u command%s arrived while %d were waiting to be handled and %s not kept "
                    "(this is the last of them); send again",
                    ev->dropped, ev->dropped == 1 ? "" : "s", PDM_UPLINK_MSG_SLOTS,
                    ev->dropped == 1 ? "was" : "were");
    else if (ev->too_large)
        pdm_cmd_set(res, PDM_CMD_PAYLOAD_TOO_LARGE, "%zu bytes: commands are limited to %d bytes",
                    ev->full_len, PDM_UPLINK_MSG_MAX);
    else if (!def)
        pdm_cmd_set(res, PDM_CMD_UNKNOWN_COMMAND, "no command '%s' on this agent (pdm-agent %s)",
                    cmd->name, PDM_VERSION);
    else if (cmd->fleet && !def->fleet_ok)
        pdm_cmd_set(res, PDM_CMD_NOT_ON_FLEET_TOPIC,
                    "'%s' is accepted only on %s/%s/cmd/%s, not on the fleet topic", cmd->name,
                    prefix, device_id, cmd->name);
    else if (cmd->retained && def->once)
        pdm_cmd_set(res, PDM_CMD_RETAINED_REFUSED,
                    "'%s' is not done again from a retained message (the broker delivers it at "
                    "every reconnect); publish it without retain and clear the retained one",
                    cmd->name);
    else
        def->fn(ctx, cmd, res);

    const char *rid = cmd->request_id[0] ? cmd->request_id : "-";
    const char *where = cmd->fleet ? " (fleet topic)" : "";
    if (res->ok)
        pdm_info("command %s, request %s%s: %s: %s", cmd->name, rid, where,
                 pdm_cmd_reason_name(res->reason), res->text);
    else
        pdm_warn("command %s, request %s%s: refused, %s: %s", cmd->name, rid, where,
                 pdm_cmd_reason_name(res->reason), res->text);
    return 0;
}

/* protobuf-c's structs take char *, the strings here are only read by the packer. */
static char *str(const char *s)
{
    return (char *)(s ? s : "");
}

int pdm_cmd_encode_result(const struct pdm_cmd *cmd, const struct pdm_cmd_result *res,
                          const char *device_id, int64_t ts_ms, uint8_t *buf, size_t cap)
{
    Pdm__V1__CommandResult m = PDM__V1__COMMAND_RESULT__INIT;
    Pdm__V1__ModelInfo info[PDM_CMD_MAX_MODELS];
    Pdm__V1__ModelInfo *infos[PDM_CMD_MAX_MODELS];
    size_t nm = res->n_models < PDM_CMD_MAX_MODELS ? res->n_models : PDM_CMD_MAX_MODELS;
    for (size_t i = 0; i < nm; i++) {
        pdm__v1__model_info__init(&info[i]);
        info[i].asset = str(res->models[i].asset);
        info[i].model_id = str(res->models[i].model_id);
        info[i].model_version = res->models[i].version;
        info[i].sha256 = str(res->models[i].sha256);
        infos[i] = &info[i];
    }
    m.request_id = str(cmd->request_id);
    m.command = str(cmd->name);
    m.ok = res->ok;
    m.reason = (Pdm__V1__CommandReason)res->reason;
    m.text = str(res->text);
    m.device_id = str(device_id);
    m.ts_ms = ts_ms;
    m.fleet = cmd->fleet;
    m.n_models = nm;
    m.models = nm ? infos : NULL;
    size_t sz = protobuf_c_message_get_packed_size(&m.base);
    if (sz > cap)
        return -ENOSPC;
    return (int)protobuf_c_message_pack(&m.base, buf);
}

/* pdm_cmd_reason mirrors the proto enum, value by value. */
#define SAME(c, p) ((int)PDM_CMD_##c == (int)PDM__V1__COMMAND_REASON__##p)
_Static_assert(
    SAME(OK, COMMAND_OK) && SAME(UNKNOWN_COMMAND, UNKNOWN_COMMAND) &&
        SAME(BAD_PAYLOAD, BAD_PAYLOAD) && SAME(PAYLOAD_TOO_LARGE, PAYLOAD_TOO_LARGE) &&
        SAME(BUSY, BUSY) && SAME(NOT_ON_FLEET_TOPIC, NOT_ON_FLEET_TOPIC) &&
        SAME(NOT_APPLICABLE, NOT_APPLICABLE) && SAME(INTERNAL_ERROR, INTERNAL_ERROR) &&
        SAME(NO_VERIFY_KEY, NO_VERIFY_KEY) && SAME(UNKNOWN_KEY, UNKNOWN_KEY) &&
        SAME(BAD_SIGNATURE, BAD_SIGNATURE) && SAME(VERSION_NOT_NEWER, VERSION_NOT_NEWER) &&
        SAME(MODEL_INVALID, MODEL_INVALID) && SAME(INPUTS_UNAVAILABLE, INPUTS_UNAVAILABLE) &&
        SAME(UNKNOWN_ASSET, UNKNOWN_ASSET) && SAME(MODEL_ID_MISMATCH, MODEL_ID_MISMATCH) &&
        SAME(STORAGE_FAILED, STORAGE_FAILED) && SAME(BASELINE_RUNNING, BASELINE_RUNNING) &&
        SAME(ASSET_ALERTING, ASSET_ALERTING) && SAME(NO_INPUT_DATA, NO_INPUT_DATA) &&
        SAME(BASELINE_DURATION, BASELINE_DURATION) && SAME(BASELINE_LEARNED, BASELINE_LEARNED) &&
        SAME(BASELINE_FAILED, BASELINE_FAILED) && SAME(UNKNOWN_ALERT, UNKNOWN_ALERT) &&
        SAME(ALERT_NOT_ACTIVE, ALERT_NOT_ACTIVE) && SAME(MISSING_FIELD, MISSING_FIELD) &&
        SAME(RETAINED_REFUSED, RETAINED_REFUSED),
    "enum pdm_cmd_reason differs from pdm.v1.CommandReason");
