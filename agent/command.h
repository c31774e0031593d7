/* Commands from the backend (pdm.proto, "Commands"): which command a topic names, the answers
 * every command gets whatever happens to it, and dispatch by name to the command's handler.
 *
 * A command arrives on {topic_prefix}/{device_id}/cmd/{name} or {topic_prefix}/fleet/cmd/{name}
 * through the uplink's message queue (uplink.h) and is handled in the main loop. The generic
 * refusals happen here, before any handler runs: a message too large, one dropped because
 * commands came faster than the loop took them (BUSY), an unknown name, a device-only command
 * on the fleet topic. Handlers are listed in a table (struct pdm_cmd_def): a new command is
 * one entry and one function, and it gets the same answers, request_id handling and logging.
 *
 * Every command message has `string request_id = 1`: it is read here from the raw bytes, so
 * even a payload that does not decode is answered with its request_id. */
#ifndef PDM_COMMAND_H
#define PDM_COMMAND_H

#include <stddef.h>
#include <stdint.h>

#include "encode.h"
#include "uplink.h"

/* Values are pdm.v1.CommandReason (command.c checks it at compile time). */
enum pdm_cmd_reason {
    PDM_CMD_OK = 0,
    PDM_CMD_UNKNOWN_COMMAND = 1,
    PDM_CMD_BAD_PAYLOAD = 2,
    PDM_CMD_PAYLOAD_TOO_LARGE = 3,
    PDM_CMD_BUSY = 4,
    PDM_CMD_NOT_ON_FLEET_TOPIC = 5,
    PDM_CMD_NOT_APPLICABLE = 6,
    PDM_CMD_INTERNAL_ERROR = 7,
    PDM_CMD_NO_VERIFY_KEY = 10,
    PDM_CMD_UNKNOWN_KEY = 11,
    PDM_CMD_BAD_SIGNATURE = 12,
    PDM_CMD_VERSION_NOT_NEWER = 13,
    PDM_CMD_MODEL_INVALID = 14,
    PDM_CMD_INPUTS_UNAVAILABLE = 15,
    PDM_CMD_UNKNOWN_ASSET = 16,
    PDM_CMD_MODEL_ID_MISMATCH = 17,
    PDM_CMD_STORAGE_FAILED = 18,
    /* per-asset baselines (agent/baseline.c); numbered from 40 to leave room for others */
    PDM_CMD_BASELINE_RUNNING = 40,
    PDM_CMD_ASSET_ALERTING = 41,
    PDM_CMD_NO_INPUT_DATA = 42,
    PDM_CMD_BASELINE_DURATION = 43,
    PDM_CMD_BASELINE_LEARNED = 44,
    PDM_CMD_BASELINE_FAILED = 45,
    PDM_CMD_UNKNOWN_ALERT = 50, /* cmd/ack, cmd/service (40-49: cmd/baseline) */
    PDM_CMD_ALERT_NOT_ACTIVE = 51,
    PDM_CMD_MISSING_FIELD = 52,
    PDM_CMD_RETAINED_REFUSED = 53, /* a once-only command arrived as a retained message */
};

#define PDM_CMD_NAME_MAX       32  /* command names: [a-z_]{1,32} */
#define PDM_CMD_REQUEST_ID_MAX 128 /* bytes of request_id echoed back */
#define PDM_CMD_TEXT_MAX       1024
#define PDM_CMD_MAX_MODELS     16 /* ModelInfo entries in one answer */

/* One command as the handler sees it. */
struct pdm_cmd {
    char name[PDM_CMD_NAME_MAX + 1];
    int fleet;    /* came on the fleet topic */
    int retained; /* the broker kept it (published retained) */
    const uint8_t *payload;
    size_t len;
    char request_id[PDM_CMD_REQUEST_ID_MAX + 1]; /* "" when field 1 could not be read */
};

/* What the handler reports; the dispatcher turns it into the CommandResult and a log line. */
struct pdm_cmd_result {
    int ok;
    enum pdm_cmd_reason reason;
    char text[PDM_CMD_TEXT_MAX];
    struct pdm_status_model models[PDM_CMD_MAX_MODELS]; /* strings borrowed from the caller */
    size_t n_models;
};

typedef void (*pdm_cmd_fn)(void *ctx, const struct pdm_cmd *cmd, struct pdm_cmd_result *res);

struct pdm_cmd_def {
    const char *name; /* the last topic level: "model" */
    int fleet_ok;     /* also accepted on {topic_prefix}/fleet/cmd/{name} */
    pdm_cmd_fn fn;
    int once; /* not idempotent: refused when retained, since the broker hands a retained
               * command over again at every reconnect (a new visit, learning restarted) */
};

/* Fills res (printf-style text) and returns it, for handlers: ok when reason is OK or
 * NOT_APPLICABLE. */
void pdm_cmd_set(struct pdm_cmd_result *res, enum pdm_cmd_reason reason, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* "BAD_SIGNATURE", ... (the proto's names). */
const char *pdm_cmd_reason_name(enum pdm_cmd_reason r);

/* The topic filters the agent subscribes to: {prefix}/{device_id}/cmd/# and
 * {prefix}/fleet/cmd/#. 0 or -ENAMETOOLONG. */
int pdm_cmd_topics(const char *prefix, const char *device_id, char *dev, char *fleet, size_t len);

/* The command name of topic if it is one of those ({prefix}/{device_id}/cmd/NAME or
 * {prefix}/fleet/cmd/NAME), into name; NULL-free: returns 0, or -EINVAL for any other topic.
 * A name longer than PDM_CMD_NAME_MAX or with levels below it is returned cut/whole, for the
 * UNKNOWN_COMMAND answer. */
int pdm_cmd_parse_topic(const char *topic, const char *prefix, const char *device_id, char *name,
                        size_t namelen, int *fleet);

/* Reads field 1 (a string) of a protobuf payload without decoding the rest; only the bytes
 * present are needed (a head of a larger message will do). Bytes outside printable ASCII
 * become '?'. out is "" when there is no such field. */
void pdm_cmd_request_id(const uint8_t *p, size_t len, char *out, size_t outlen);

/* Handles one MESSAGE event: fills cmd and res. Calls the table's handler for the name unless
 * a generic refusal applies. Logs one line for the outcome. Returns 0 (answer res), -EINVAL
 * when the topic is not a command topic (logged), or -ENODATA for an empty payload: that is how
 * a backend clears a retained command, and it is not answered. */
int pdm_cmd_dispatch(const struct pdm_cmd_def *table, size_t n, void *ctx, const char *prefix,
                     const char *device_id, const struct pdm_uplink_event *ev, struct pdm_cmd *cmd,
                     struct pdm_cmd_result *res);

/* The answer's topic: {prefix}/{device_id}/cmd_result. */
int pdm_cmd_result_topic(const char *prefix, const char *device_id, char *out, size_t len);

/* Encodes res as a pdm.v1.CommandResult. Returns the length or -ENOSPC. */
int pdm_cmd_encode_result(const struct pdm_cmd *cmd, const struct pdm_cmd_result *res,
                          const char *device_id, int64_t ts_ms, uint8_t *buf, size_t cap);

#endif
