/* Decoding and printing of pdm.v1 payloads, shared by `pdmctl decode` and `pdmctl subscribe`. */
#ifndef PDMCTL_PRINT_H
#define PDMCTL_PRINT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "lib/json.h" /* pdm_json_fstr, for the --json outputs built on these */

enum pdm_msg_type {
    PDM_MSG_OTHER = 0, /* not one of ours: printed as length and hex */
    PDM_MSG_ALERT,
    PDM_MSG_TELEMETRY,
    PDM_MSG_STATUS,
    PDM_MSG_CMD_RESULT,   /* {prefix}/{device}/cmd_result: pdm.v1.CommandResult */
    PDM_MSG_MODEL_UPDATE, /* {prefix}/{device|fleet}/cmd/model: pdm.v1.ModelUpdate */
    /* closed service loop (issue 6) */
    PDM_MSG_REPORT,         /* {prefix}/{device}/report: pdm.v1.CheckupReport */
    PDM_MSG_ACK,            /* .../cmd/ack: pdm.v1.AckAlert */
    PDM_MSG_SERVICE_VISIT,  /* .../cmd/service: pdm.v1.ServiceVisit */
    PDM_MSG_STATUS_REQUEST, /* .../cmd/status: pdm.v1.StatusRequest */
    PDM_MSG_REPORT_REQUEST, /* .../cmd/report: pdm.v1.ReportRequest */
    PDM_MSG_BASELINE,       /* .../cmd/baseline: pdm.v1.BaselineRequest */
    PDM_MSG_LAST = PDM_MSG_BASELINE,
};

enum pdm_print_style {
    PDM_PRINT_LINE, /* one line for people: what happened, where, why */
    PDM_PRINT_FULL, /* every field, protobuf text format with readable times */
    PDM_PRINT_JSON, /* one compact JSON object: proto field names in field order */
};

/* "alert" | "telemetry" | "status" | "cmd_result" | "model" -> type; anything else ->
 * PDM_MSG_OTHER. */
enum pdm_msg_type pdm_msg_type_from_name(const char *name);
/* "alert", "telemetry", "status", "cmd_result", "model", "other" */
const char *pdm_msg_type_name(enum pdm_msg_type t);
/* "pdm.v1.Alert", "pdm.v1.TelemetryBatch", "pdm.v1.Status", NULL for OTHER */
const char *pdm_msg_proto_name(enum pdm_msg_type t);
/* Message type from a topic's last level ({prefix}/{device}/alert -> ALERT,
 * .../cmd/model -> MODEL_UPDATE; below cmd/: ack, service, status, report are the commands). */
enum pdm_msg_type pdm_msg_type_from_topic(const char *topic);

/* Decodes buf as type t and prints it to f in the given style, ending with a newline. topic may
 * be NULL (then it is not printed). Returns 0, or -EBADMSG when the bytes are not a valid
 * message of that type (nothing is printed then). */
int pdm_print_payload(FILE *f, enum pdm_msg_type t, const char *topic, const uint8_t *buf,
                      size_t len, enum pdm_print_style style);

#endif
