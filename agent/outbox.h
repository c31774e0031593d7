/* The outbox: everything the agent publishes goes through here, and it is the only caller of the
 * store's next_alerts/next_rows/mark_*_delivered functions.
 *
 * It owns the in-flight window (messages handed to the uplink and not yet acknowledged), the
 * delivery cursors of the current connection (alerts, replay of the backlog, live rows), the
 * command answers waiting for room (queue_result) and the timers that commit the store, make
 * telemetry due and prune delivered rows. Order: command answers, then alerts, then live
 * telemetry, then replay of what was stored before the connection came up (REPLAY_INFLIGHT
 * batches at most), so a backlog never delays an alert or current data.
 *
 * Called by: agent.c (connection events, PUBACKs, the timers it registers), pipeline.c and
 * service.c (pump after storing an alert), commands.c (queue_result, the report), status.c
 * (the retained Status). It reaches the broker through a publish callback (pdm_uplink_publish
 * in the agent, a fake in tests/unit/test_outbox.c). Main loop only; no allocation after
 * pdm_outbox_init. */
#ifndef PDM_OUTBOX_H
#define PDM_OUTBOX_H

#include <stddef.h>
#include <stdint.h>

#include "command.h"
#include "encode.h"
#include "lib/log.h"
#include "lib/names.h"
#include "models/model.h"
#include "store.h"
#include "timer.h"

#define PDM_OUTBOX_MAX_INFLIGHT 32   /* messages handed to the uplink and not yet acknowledged */
#define PDM_OUTBOX_BATCH_ROWS   2000 /* readings per TelemetryBatch (about 40 KB encoded) */
/* Replay batches in flight at once. With a local broker 8 keep the link busy (the bench
 * delivers 720k rows in about a second); on a slow uplink they bound how much backlog a live
 * alert can find queued ahead of it in the connection: 8 x 40 KB. */
#define PDM_OUTBOX_REPLAY_INFLIGHT 8
/* Command answers waiting for room in the in-flight window (they are not stored: a backend
 * that misses one sends the command again). 8 x 4.6 KiB. */
#define PDM_OUTBOX_PENDING_RESULTS 8

/* The largest CommandResult (pdm.proto) pdm_cmd_encode_result can make, so that no answer is
 * ever too big to queue: every string at its longest, 16 ModelInfo. A string field costs its
 * tag (1 byte), its length (up to 2 bytes below 16 KiB) and its bytes; a varint up to 10. */
#define PDM_PB_STR(n)    (1 + 2 + (n))
#define PDM_PB_VARINT    (1 + 10)
#define PDM_MODEL_ID_MAX (sizeof(((struct pdm_model *)0)->id) - 1)
#define PDM_MODEL_INFO_MAX                                                                         \
    (PDM_PB_STR(PDM_NAME_MAX) + PDM_PB_STR(PDM_MODEL_ID_MAX) + PDM_PB_VARINT +                     \
     PDM_PB_STR(64)) /* sha256 in hex */
#define PDM_RESULT_MAX_BYTES                                                                       \
    (PDM_PB_STR(PDM_CMD_REQUEST_ID_MAX) + PDM_PB_STR(PDM_CMD_NAME_MAX) + PDM_PB_VARINT /* ok */ +  \
     PDM_PB_VARINT /* reason */ + PDM_PB_STR(PDM_CMD_TEXT_MAX - 1) +                               \
     PDM_PB_STR(PDM_NAME_MAX) /* device */ + PDM_PB_VARINT /* ts_ms */ +                           \
     PDM_PB_VARINT /* fleet */ + PDM_CMD_MAX_MODELS * PDM_PB_STR(PDM_MODEL_INFO_MAX))

struct pdm_control;
struct pdm_sensor_cfg;

/* Hands one message to the broker (QoS 1); cookie comes back with pdm_outbox_delivered or
 * pdm_outbox_send_failed. 0, -ENOTCONN, -EAGAIN (window full) or another -errno. */
typedef int (*pdm_outbox_publish_fn)(void *ctx, const char *topic, const void *payload, size_t len,
                                     int retained, uint64_t cookie);

/* The outbox's slice of the configuration (pointers into struct pdm_config). */
struct pdm_outbox_cfg {
    const char *device_id;
    const char *topic_prefix;
    const struct pdm_sensor_cfg *sensors; /* the units of readings in telemetry */
    uint32_t n_sensors;
    int commit_interval_ms;
    int telemetry_interval_s;
};

/* Everything below is private to outbox.c (in the header so the agent can hold it without an
 * allocation). */
enum pdm_outbox_kind { PDM_OB_FREE = 0, PDM_OB_ALERT, PDM_OB_ROWS, PDM_OB_MESSAGE };

struct pdm_outbox_inflight {
    enum pdm_outbox_kind kind;
    uint64_t cookie;
    uint64_t lo, hi; /* alert: lo = seq; rows: seq range */
    uint32_t rows;   /* rows in the batch */
};

struct pdm_outbox_result {
    size_t len; /* 0 = free */
    uint8_t buf[PDM_RESULT_MAX_BYTES];
};

struct pdm_outbox {
    struct pdm_outbox_cfg cfg;
    struct pdm_store *store;
    pdm_outbox_publish_fn publish;
    void *publish_ctx;
    struct pdm_control *control; /* may be NULL */
    uint8_t *buf;                /* the agent's encode buffer, shared (one message at a time) */
    size_t buf_cap;
    char topic_alert[512], topic_telemetry[512], topic_cmd_result[512];

    int connected;
    struct pdm_complaint store_complaint; /* commits that fail */
    /* Delivery runs as two streams of rows per connection: the replay of everything stored
     * before the connection came up (seq <= replay_end, oldest first, flagged replay), and live
     * rows (seq > replay_end) sent at each telemetry tick. Live batches go ahead of replay
     * batches, alerts ahead of both, so hours of backlog never delay current data. */
    uint64_t replay_end;    /* highest seq that existed when this connection came up */
    uint64_t alert_cursor;  /* highest alert seq handed to the uplink in this connection */
    uint64_t replay_cursor; /* highest replay row seq handed to the uplink */
    uint64_t live_cursor;   /* highest live row seq handed to the uplink */
    uint64_t rows_upto;     /* live rows up to this seq are due (set at telemetry ticks) */
    int replaying;          /* replay batches still to hand over (for the log) */
    uint64_t marks_undone;  /* last seen pdm_store_stats().marks_undone */
    uint64_t backlog_rows;  /* undelivered rows when this connection came up */
    uint64_t backlog_acked; /* replay rows acknowledged since */
    int64_t backlog_t0;     /* monotonic ms when the replay started */
    struct pdm_outbox_inflight inflight[PDM_OUTBOX_MAX_INFLIGHT];
    uint64_t next_cookie;
    struct pdm_outbox_result results[PDM_OUTBOX_PENDING_RESULTS];
    uint32_t results_head, results_len; /* FIFO over results[] */
    struct pdm_row *rows;               /* PDM_OUTBOX_BATCH_ROWS each: one batch */
    struct pdm_telemetry_row *trows;
};

/* Sets o up (zeroed first) and allocates one batch of rows (about 100 KiB). buf/buf_cap: the
 * encode buffer it shares with the other modules. control may be NULL. 0 or -errno (logged). */
int pdm_outbox_init(struct pdm_outbox *o, const struct pdm_outbox_cfg *cfg, struct pdm_store *store,
                    pdm_outbox_publish_fn publish, void *publish_ctx, struct pdm_control *control,
                    uint8_t *buf, size_t buf_cap);
void pdm_outbox_free(struct pdm_outbox *o);
/* Registers the commit and telemetry timers; the prune timer separately, so the loop keeps the
 * order in which its timers run (timer.h). 0 or -ENOSPC. */
int pdm_outbox_add_timers(struct pdm_outbox *o, struct pdm_timers *t, int64_t now);
int pdm_outbox_add_prune_timer(struct pdm_outbox *o, struct pdm_timers *t, int64_t now);

/* The connection came up: commits, notes the backlog to replay, forgets the in-flight window. */
void pdm_outbox_connected(struct pdm_outbox *o, int64_t now);
/* The connection is gone: forgets the in-flight window; what was not acknowledged goes out
 * again from the store after the next connection. */
void pdm_outbox_disconnected(struct pdm_outbox *o);
/* PUBACK of cookie: marks its alert or rows delivered in the store. */
void pdm_outbox_delivered(struct pdm_outbox *o, uint64_t cookie);
/* cookie will not be acknowledged in this connection: its alert or rows go out again. */
void pdm_outbox_send_failed(struct pdm_outbox *o, uint64_t cookie);

/* Hands undelivered messages to the uplink while the window has room: command answers, alerts,
 * then due telemetry. Call after storing an alert, and after events. */
void pdm_outbox_pump(struct pdm_outbox *o);
/* The telemetry tick: every row stored so far is due. */
void pdm_outbox_rows_due(struct pdm_outbox *o);
/* Publishes a message that is not in the store (Status, a report); it takes a window slot
 * until acknowledged. 0, -EAGAIN (window full), -ENOTCONN or another -errno. */
int pdm_outbox_send(struct pdm_outbox *o, const char *topic, const void *payload, size_t len,
                    int retained);
/* Queues the answer to cmd on cmd_result (sent by the pump; the oldest dropped when full). */
void pdm_outbox_queue_result(struct pdm_outbox *o, const struct pdm_cmd *cmd,
                             const struct pdm_cmd_result *res);

#endif
