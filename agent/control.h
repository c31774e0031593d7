/* The control socket: `pdmctl status` asks the running agent what it sees right now.
 *
 * A UNIX stream socket at {data_dir}/pdm-agent.sock, owner-only (0600): the status names
 * devices, values and broker errors, so only the agent's user (and root) may read it. It also
 * serves as the agent's lock on data_dir: a second agent finds the first one answering there
 * and refuses to start; a socket file left by a crashed agent (nobody answers) is replaced.
 *
 * Protocol: the client sends one line ("status" or "status json", at most
 * PDM_CONTROL_REQ_MAX bytes with the newline), the agent writes one response and closes.
 * Responses are plain text tables or one JSON object; an unknown request gets a line
 * starting with "error: ". Requests with arguments are words separated by blanks, VERB ARG...;
 * the agent answers those it registered with pdm_control_set_request_handler (today
 * `baseline ASSET SECONDS [force]` and `baseline-show ASSET`, commands.c), one response each,
 * "error: REASON" on failure.
 *
 * Served from the agent's poll() loop, never blocking it: every socket is non-blocking, at most
 * PDM_CONTROL_MAX_CLIENTS clients at once (more are told "error: busy" and closed), and a
 * client that has not sent its request or taken its response within PDM_CONTROL_CLIENT_MS is
 * dropped.
 *
 * Memory, all allocated by pdm_control_open() and never per request: a snapshot (about 100
 * bytes per sensor and 900 bytes per asset) and one response buffer per client slot, sized from
 * the config for the worst case of JSON escaping: 2 KiB + 512 B per sensor + per asset 1 KiB
 * and 256 B for each of the 16 inputs a model may have (a model update may bring more inputs
 * than the configuration's model) + 3 KiB for the recent errors. For the example config (3
 * sensors, 1 asset) that is 11.5 KiB per slot, 46 KiB in all. */
#ifndef PDM_CONTROL_H
#define PDM_CONTROL_H

#include <poll.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"
#include "../models/alert.h"
#include "../models/model.h"

struct pdm_config;

#define PDM_CONTROL_SOCK_NAME   "pdm-agent.sock"
#define PDM_CONTROL_MAX_CLIENTS 4
#define PDM_CONTROL_REQ_MAX     256  /* bytes, request line with its newline */
#define PDM_CONTROL_CLIENT_MS   2000 /* a client must be done within this, or it is dropped */
#define PDM_CONTROL_POLLFDS     (1 + PDM_CONTROL_MAX_CLIENTS) /* listener + clients */
#define PDM_CONTROL_ERRORS      8                             /* recent distinct errors kept */
#define PDM_CONTROL_ERROR_LEN   160

/* What the agent knows about one sensor. */
struct pdm_ctl_sensor {
    const char *name, *unit, *bus; /* borrowed from the config */
    int unit_id;
    int ok;           /* last read succeeded */
    int has_value;    /* at least one good read since start */
    double value;     /* last good value (scaled) */
    int64_t value_ms; /* wall clock of that value */
    uint64_t reads, errors;
    char last_error[48]; /* the last failure's reason ("" if none) */
};

/* Usage counters and maintenance of an asset (issue 6, agent/usage.h). */
struct pdm_ctl_usage {
    double run_hours, hours_since_service;
    uint64_t starts, starts_since_service;
    int running;
    int64_t last_service_ms, outcome_due_ms; /* wall clock, 0 = none */
    char alert_id[PDM_ALERT_ID_MAX];         /* open MAINTENANCE_DUE, "" if none */
    char due[256];                           /* why it is due */
};

/* One asset: the last evaluation's inputs and the alert state. */
struct pdm_ctl_asset {
    const char *name;                               /* borrowed from the config */
    const struct pdm_model *model;                  /* borrowed: input names, thresholds */
    const char *input_sensor[PDM_MODEL_MAX_INPUTS]; /* sensor feeding each input, NULL for age */
    uint32_t input_samples[PDM_MODEL_MAX_INPUTS];   /* samples held in each input's window */
    uint64_t evals, skipped_stale;
    int scored;                 /* score is valid (evals > 0) */
    struct pdm_score score;     /* each input's value, z, contribution; probability, health */
    int64_t score_ms;           /* wall clock of the score */
    enum pdm_severity severity; /* NONE when no alert is open */
    char alert_id[PDM_ALERT_ID_MAX];
    int has_usage; /* running_sensor or a maintenance limit configured, or a visit recorded */
    struct pdm_ctl_usage usage;
};

struct pdm_ctl_error {
    int64_t ts_ms;  /* wall clock of the latest occurrence */
    uint64_t count; /* occurrences of exactly this text */
    char text[PDM_CONTROL_ERROR_LEN];
};

/* Filled by the agent (status.c) for each request; the arrays are owned by the control module
 * and sized n_sensors / n_assets of the config. */
struct pdm_ctl_snapshot {
    const char *device_id;
    int64_t now_ms; /* wall clock */
    int64_t uptime_s;
    struct pdm_ctl_sensor *sensors;
    uint32_t n_sensors;
    struct pdm_ctl_asset *assets;
    uint32_t n_assets;
    int store_ok; /* store stats could be read */
    struct pdm_store_stats store;
    const char *broker_uri;
    int broker_connected, broker_connecting;
    char broker_error[256]; /* last connect failure or loss reason, "" if none */
    uint64_t queue_dropped; /* samples dropped between bus threads and the loop */
};

typedef void (*pdm_control_fill_cb)(void *ctx, struct pdm_ctl_snapshot *snap);

struct pdm_control;

/* Creates the socket. Returns 0, -EADDRINUSE when an agent already answers on it (err says
 * so: the caller must not touch data_dir), or another -errno with a reason in err. */
int pdm_control_open(struct pdm_control **out, const struct pdm_config *cfg, char *err,
                     size_t errlen);
/* Closes every client and the listener and removes the socket file. NULL is fine. */
void pdm_control_close(struct pdm_control *c);
/* A request other than status: writes its response (NUL-terminated, at most cap bytes) into out
 * and returns 0, or returns -ENOENT when it does not know the verb (the client is then told the
 * request is unknown). Runs in the loop: it must not block. */
typedef int (*pdm_control_request_cb)(void *ctx, const char *req, char *out, size_t cap);
void pdm_control_set_request_handler(struct pdm_control *c, pdm_control_request_cb fn, void *ctx);

/* Fills up to PDM_CONTROL_POLLFDS entries for the caller's poll(); returns how many. */
int pdm_control_pollfds(struct pdm_control *c, struct pollfd *pfd);
/* After poll(): accepts, reads requests, answers (calling fill once per request), writes and
 * drops slow clients. pfd/n as filled by pdm_control_pollfds (revents set by poll). Call it
 * on every loop turn, whether or not poll reported anything, so timeouts are enforced. */
void pdm_control_handle(struct pdm_control *c, const struct pollfd *pfd, int n, int64_t now_mono_ms,
                        pdm_control_fill_cb fill, void *ctx);

/* Remembers an error for the status's "recent errors" (printf-style, truncated to
 * PDM_CONTROL_ERROR_LEN). The same text again only updates its time and count. NULL c is
 * fine. */
void pdm_control_note_error(struct pdm_control *c, int64_t wall_ms, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
