/* MQTT uplink: Eclipse Paho MQTT C (async, OpenSSL) behind a thread boundary.
 *
 * Paho runs its own threads. Its callbacks never touch agent state: they only append events
 * (connected, connection lost, delivered, failed) to a bounded, mutex-protected queue and make
 * an eventfd readable; the main loop drains the queue with pdm_uplink_next_event(). Paho's own
 * persistence is off (it does not fsync): the store is the durable record, so a message that
 * was not acknowledged is published again from the store after a reconnect.
 *
 * Incoming messages (commands from the backend): the caller names topic filters in the config
 * and calls pdm_uplink_subscribe() after every CONNECTED (the session is clean, so a
 * reconnection has no subscriptions). Paho's message callback copies each message into one of
 * PDM_UPLINK_MSG_SLOTS preallocated slots and queues a MESSAGE event; it never waits for the
 * main loop. A payload over PDM_UPLINK_MSG_MAX keeps only its first PDM_UPLINK_MSG_HEAD bytes
 * (too_large); when every slot is taken the message is not kept either: one overflow slot
 * holds the head of the latest such message and the count (dropped), so the caller can still
 * answer it. Memory: PDM_UPLINK_MSG_SLOTS x (PDM_UPLINK_MSG_MAX + PDM_UPLINK_TOPIC_MAX), about
 * 130 KiB, allocated by pdm_uplink_create().
 *
 * TLS: mqtts:// verifies the broker certificate against ca_file, including the host name, and
 * presents cert_file/key_file. mqtt:// is refused unless allow_plaintext is set.
 * Reconnection is the caller's decision (pdm_uplink_connect again after a backoff). */
#ifndef PDM_UPLINK_H
#define PDM_UPLINK_H

#include <stddef.h>
#include <stdint.h>

struct pdm_uplink;

struct pdm_uplink_cfg {
    const char *uri;       /* mqtts://host:port or mqtt://host:port */
    const char *client_id; /* the device_id */
    const char *ca_file, *cert_file, *key_file;
    int allow_plaintext;
    int keepalive_s; /* default 30 when 0 */
    /* Last Will: retained, QoS 1 */
    const char *will_topic;
    const void *will_payload;
    size_t will_len;
    int max_inflight; /* messages handed to Paho and not yet acknowledged; default 64 when 0 */
    /* topic filters pdm_uplink_subscribe() subscribes to (QoS 1); copied */
    const char *const *subscriptions;
    int n_subscriptions; /* 0..PDM_UPLINK_MAX_SUBS */
};

#define PDM_UPLINK_MAX_SUBS  4
#define PDM_UPLINK_MSG_SLOTS 4           /* incoming messages waiting for the main loop */
#define PDM_UPLINK_MSG_MAX   (32 * 1024) /* bytes of payload kept; larger: only the head */
#define PDM_UPLINK_MSG_HEAD  256         /* bytes kept of a message too large or dropped */
#define PDM_UPLINK_TOPIC_MAX 384         /* bytes of topic kept, with the NUL */

enum pdm_uplink_event_type {
    PDM_UPLINK_CONNECTED = 1,
    PDM_UPLINK_CONNECT_FAILED,   /* reason set */
    PDM_UPLINK_CONNECTION_LOST,  /* reason set */
    PDM_UPLINK_DELIVERED,        /* cookie: the broker acknowledged the message (PUBACK) */
    PDM_UPLINK_SEND_FAILED,      /* cookie: will not be acknowledged in this connection */
    PDM_UPLINK_SUBSCRIBED,       /* reason: what was subscribed */
    PDM_UPLINK_SUBSCRIBE_FAILED, /* reason set */
    PDM_UPLINK_MESSAGE,          /* topic, payload, ... below */
};

struct pdm_uplink_event {
    enum pdm_uplink_event_type type;
    uint64_t cookie;
    char reason[256];
    /* MESSAGE: valid until the next pdm_uplink_next_event() call */
    const char *topic;      /* NUL-terminated; cut at PDM_UPLINK_TOPIC_MAX - 1 (topic_cut) */
    const uint8_t *payload; /* len bytes */
    size_t len;
    size_t full_len; /* the message's size; > len when only the head was kept */
    int too_large;   /* full_len > PDM_UPLINK_MSG_MAX: payload is its head */
    int topic_cut;
    int retained;
    /* > 0: every slot was taken; this message (its head) and dropped - 1 earlier ones were not
     * kept */
    uint32_t dropped;
};

/* Validates the URI scheme (refuses mqtt:// without allow_plaintext, with a reason in err) and
 * creates the client. Does not connect. 0 or -errno (-EPERM for refused plaintext). */
int pdm_uplink_create(struct pdm_uplink **out, const struct pdm_uplink_cfg *cfg, char *err,
                      size_t errlen);
void pdm_uplink_destroy(struct pdm_uplink *u);
/* Starts an asynchronous connection attempt; the outcome arrives as an event. */
int pdm_uplink_connect(struct pdm_uplink *u);
/* Disconnects cleanly (waits up to timeout_ms for in-flight messages). */
void pdm_uplink_disconnect(struct pdm_uplink *u, int timeout_ms);
int pdm_uplink_is_connected(struct pdm_uplink *u);
/* Messages handed to Paho and not yet acknowledged or failed. */
int pdm_uplink_inflight(struct pdm_uplink *u);
/* Queues a publish. cookie comes back in the DELIVERED/SEND_FAILED event. Returns 0, -ENOTCONN
 * when not connected, -EAGAIN when max_inflight is reached, other -errno on failure. The
 * payload is copied (by Paho). */
int pdm_uplink_publish(struct pdm_uplink *u, const char *topic, const void *payload, size_t len,
                       int qos, int retained, uint64_t cookie);
/* Subscribes to cfg->subscriptions with QoS 1; the outcome arrives as SUBSCRIBED or
 * SUBSCRIBE_FAILED. Call after each CONNECTED event. 0, -ENOTCONN, or -EIO (event queued). */
int pdm_uplink_subscribe(struct pdm_uplink *u);
/* File descriptor that is readable while events are waiting. */
int pdm_uplink_event_fd(struct pdm_uplink *u);
/* Takes the next event; returns 1, or 0 when none is waiting. */
int pdm_uplink_next_event(struct pdm_uplink *u, struct pdm_uplink_event *ev);

#endif
