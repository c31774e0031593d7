/* MQTT uplink over Eclipse Paho MQTT C (async, OpenSSL). See uplink.h for the contract.
 *
 * Threads: Paho calls our callbacks from its own threads, with its global mutex held. The
 * callbacks only take u->mu, update a few fields and append an event to the ring; the main
 * loop never holds u->mu while calling into Paho (that order would deadlock against Paho's
 * mutex).
 *
 * Publishes: every message handed to Paho occupies a slot (allocated once, 2 x max_inflight
 * of them); the slot's address is the Paho callback context, so a 64-bit cookie needs no
 * allocation even where pointers are 32 bits. Paho calls exactly one of onSuccess (QoS 1: the
 * PUBACK came) or onFailure per accepted publish - on connection loss and on destroy it fails
 * whatever it still holds (MQTTASYNC_OPERATION_INCOMPLETE). A slot returns to the free list
 * only when the main loop has taken its event, so the ring can never hold more slot events
 * than there are slots.
 *
 * Ring size = slots + message slots + CONN_EVENTS. Slot events: at most one per slot (see
 * above), so they always fit; the same holds for message slots (a slot is queued at most once
 * until the loop has taken and released it). Connection events (connected, connect failed,
 * lost, subscribed, subscribe failed): at most three per connection attempt, and
 * pdm_uplink_connect refuses to start another attempt while one is running, so a caller that
 * drains the ring between attempts never comes close to CONN_EVENTS. If it ever did, the event
 * is dropped and counted in the reason of the next connection event.
 *
 * Incoming messages: MSG_SLOTS slots of MSG_MAX bytes plus one overflow slot of MSG_HEAD
 * bytes. Paho's callback fills a free slot (FREE -> QUEUED, one ring entry); the loop takes it
 * (QUEUED -> HELD) and it is released at the loop's next pdm_uplink_next_event() call. With
 * every slot taken the overflow slot keeps the head of the latest message and a count; while
 * the loop holds the overflow slot itself, the count waits in lost_msgs for the next one.
 *
 * Epochs: each connection has an epoch number; a slot remembers the epoch it was sent in.
 * pdm_uplink_inflight() counts only slots of the current epoch (Paho has failed or dropped the
 * others), and a SEND_FAILED that Paho reports for an older connection is not passed on: the
 * caller already knows from CONNECTION_LOST that nothing of that connection is in flight. A
 * late DELIVERED is passed on (the broker does have the message; marking it delivered twice is
 * harmless).
 *
 * Memory: 24 B per slot and 16 B per ring entry, plus 8 x 256 B of reason text: about 7 KB at
 * the default max_inflight of 64. Paho itself mallocs about 300 B per message in flight. */
#include "uplink.h"

#include "lib/clock.h"
#include "lib/mqtt_uri.h"
#include "lib/paho.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <MQTTAsync.h>

#define CONN_EVENTS     8  /* connection events the ring keeps room for, see above */
#define CONNECT_TIMEOUT 25 /* seconds for TCP + TLS + CONNACK */
#define DESTROY_WAIT_MS 500
#define MSG_SLOTS       PDM_UPLINK_MSG_SLOTS
#define OVERFLOW        MSG_SLOTS /* index of the overflow slot */

enum slot_state { SLOT_FREE = 0, SLOT_SENT, SLOT_DONE };

struct slot {
    struct pdm_uplink *u;
    uint64_t cookie;
    uint32_t epoch;
    uint16_t state;
    uint16_t next_free;
};

enum msg_state { MSG_FREE = 0, MSG_QUEUED, MSG_HELD };

struct msg_slot {
    uint8_t state; /* enum msg_state */
    uint8_t retained, too_large, topic_cut;
    uint32_t dropped; /* overflow slot: messages it stands for */
    size_t len, full_len, cap;
    uint8_t *payload; /* cap bytes, in msg_mem */
    char topic[PDM_UPLINK_TOPIC_MAX];
};

struct ev_entry {
    uint64_t cookie;
    uint8_t type;  /* enum pdm_uplink_event_type */
    uint8_t stale; /* SEND_FAILED from an earlier connection: not reported */
    uint16_t slot; /* slot events: index; connection events: reason index */
};

struct pdm_uplink {
    struct pdm_paho paho; /* the client; made and stopped by lib/paho.c only */
    char *uri;            /* as configured, for messages */
    char *paho_uri;       /* ssl:// or tcp:// */
    char *hostport;       /* for messages */
    char *client_id, *ca_file, *cert_file, *key_file, *will_topic;
    void *will_payload;
    size_t will_len;
    int tls, keepalive_s, max_inflight;
    int efd;
    char *subs[PDM_UPLINK_MAX_SUBS];
    int n_subs;
    uint8_t *msg_mem; /* payload space of the message slots */

    pthread_mutex_t mu; /* everything below */
    int connected, connecting;
    uint32_t epoch;
    struct slot *slots;
    uint16_t nslots, free_head;
    struct ev_entry *ring;
    uint32_t ring_cap, ring_head, ring_len;
    uint32_t conn_events; /* connection events in the ring */
    uint32_t dropped;     /* connection events lost to a full ring */
    char reasons[CONN_EVENTS][256];
    uint32_t next_reason;
    struct msg_slot msgs[MSG_SLOTS + 1]; /* + the overflow slot */
    int msg_held;                        /* slot the loop holds, -1 if none */
    uint32_t lost_msgs;                  /* dropped while the overflow slot was held; see the top */
    char tls_err[200];                   /* OpenSSL's text from the current connection attempt */
    int name_mismatch;                   /* Paho's host name check failed in the current attempt */
};

#define NO_SLOT 0xffff

/* ---- event ring (u->mu held) ----------------------------------------------------------------- */

static void ring_push(struct pdm_uplink *u, struct ev_entry e)
{
    uint32_t i = (u->ring_head + u->ring_len) % u->ring_cap;
    u->ring[i] = e;
    u->ring_len++;
    uint64_t one = 1;
    /* eventfd counter: cannot fail short of overflow at 2^64-2 */
    ssize_t w = write(u->efd, &one, sizeof(one));
    (void)w;
}

static void push_slot_event(struct pdm_uplink *u, struct slot *s, enum pdm_uplink_event_type type)
{
    s->state = SLOT_DONE;
    struct ev_entry e = {.cookie = s->cookie,
                         .type = (uint8_t)type,
                         .stale = type == PDM_UPLINK_SEND_FAILED && s->epoch != u->epoch,
                         .slot = (uint16_t)(s - u->slots)};
    ring_push(u, e); /* always fits: see the top of the file */
}

static void push_conn_event(struct pdm_uplink *u, enum pdm_uplink_event_type type, const char *fmt,
                            ...)
{
    if (u->conn_events >= CONN_EVENTS || u->ring_len >= u->ring_cap) {
        u->dropped++;
        return;
    }
    uint32_t r = u->next_reason++ % CONN_EVENTS;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(u->reasons[r], sizeof(u->reasons[r]), fmt, ap);
    va_end(ap);
    if (u->dropped && n >= 0 && (size_t)n < sizeof(u->reasons[r]))
        snprintf(u->reasons[r] + n, sizeof(u->reasons[r]) - (size_t)n,
                 " (%u earlier connection events were not collected in time)", u->dropped);
    u->dropped = 0;
    u->conn_events++;
    ring_push(u, (struct ev_entry){.type = (uint8_t)type, .slot = (uint16_t)r});
}

static int count_inflight(const struct pdm_uplink *u)
{
    int n = 0;
    for (uint16_t i = 0; i < u->nslots; i++)
        if (u->slots[i].state != SLOT_FREE && u->slots[i].epoch == u->epoch)
            n++;
    return n;
}

/* ---- Paho callbacks (Paho threads, Paho's mutex held) ---------------------------------------- */

static void on_publish_ok(void *ctx, MQTTAsync_successData *resp)
{
    (void)resp;
    struct slot *s = ctx;
    struct pdm_uplink *u = s->u;
    pthread_mutex_lock(&u->mu);
    if (s->state == SLOT_SENT)
        push_slot_event(u, s, PDM_UPLINK_DELIVERED);
    pthread_mutex_unlock(&u->mu);
}

static void on_publish_fail(void *ctx, MQTTAsync_failureData *resp)
{
    (void)resp;
    struct slot *s = ctx;
    struct pdm_uplink *u = s->u;
    pthread_mutex_lock(&u->mu);
    if (s->state == SLOT_SENT)
        push_slot_event(u, s, PDM_UPLINK_SEND_FAILED);
    pthread_mutex_unlock(&u->mu);
}

/* OpenSSL prints "<thread>:error:<code>:<library>:<function>:<reason>:<file>:<line>:<data>";
 * the reason is what a person needs ("certificate verify failed"). */
static void openssl_reason(const char *line, size_t len, char *out, size_t outlen)
{
    char tmp[512];
    if (len >= sizeof(tmp))
        len = sizeof(tmp) - 1;
    memcpy(tmp, line, len);
    tmp[len] = '\0';
    tmp[strcspn(tmp, "\n")] = '\0';
    const char *p = strstr(tmp, ":error:");
    if (p) {
        p += 7;
        for (int colons = 0; colons < 3 && p; colons++) {
            p = strchr(p, ':');
            if (p)
                p++;
        }
    }
    if (p && *p) {
        size_t n = strcspn(p, ":");
        snprintf(out, outlen, "%.*s", (int)n, p);
    } else {
        size_t n = strlen(tmp);
        if (n >= outlen)
            n = outlen - 1; /* a long OpenSSL line is cut, not an error */
        memcpy(out, tmp, n);
        out[n] = '\0';
    }
}

static int on_ssl_error(const char *str, size_t len, void *ctx)
{
    struct pdm_uplink *u = ctx;
    pthread_mutex_lock(&u->mu);
    if (!u->tls_err[0]) /* the first error is the cause; later ones are consequences */
        openssl_reason(str, len, u->tls_err, sizeof(u->tls_err));
    pthread_mutex_unlock(&u->mu);
    return 0;
}

/* Paho checks the broker certificate's host name itself, after the handshake, and tells only
 * its trace about a mismatch; the failure then reads "TCP/TLS connect failure". To say what
 * happened, Paho's trace is switched on (level MINIMUM: a few dozen lines) while a connection
 * attempt runs and off when its outcome arrives. The trace is process-wide; trace_owner is
 * the uplink whose attempt is traced (the agent has one). Lock order: trace_mu, then u->mu. */
static pthread_mutex_t trace_mu = PTHREAD_MUTEX_INITIALIZER;
static struct pdm_uplink *trace_owner;

static void on_trace(enum MQTTASYNC_TRACE_LEVELS level, char *message)
{
    (void)level;
    int check_host = strstr(message, "X509_check_host for hostname") != NULL;
    int check_ip = strncmp(message, "rc from X509_check_ip_asc is ", 29) == 0;
    if (!check_host && !check_ip)
        return;
    pthread_mutex_lock(&trace_mu);
    struct pdm_uplink *u = trace_owner;
    if (u) {
        pthread_mutex_lock(&u->mu);
        /* a failed name check is retried as an IP address check, where 1 means a match */
        u->name_mismatch = check_host ? 1 : atoi(message + 29) != 1;
        pthread_mutex_unlock(&u->mu);
    }
    pthread_mutex_unlock(&trace_mu);
}

static void trace_stop(struct pdm_uplink *u)
{
    pthread_mutex_lock(&trace_mu);
    int mine = trace_owner == u;
    if (mine)
        trace_owner = NULL;
    pthread_mutex_unlock(&trace_mu);
    /* outside trace_mu: Paho may take its log mutex here, and it holds that one while it
     * calls on_trace */
    if (mine)
        MQTTAsync_setTraceLevel(MQTTASYNC_TRACE_FATAL);
}

static const char *connack_text(int code)
{
    switch (code) {
    case 1:
        return "unacceptable protocol version";
    case 2:
        return "client identifier rejected";
    case 3:
        return "server unavailable";
    case 4:
        return "bad user name or password";
    case 5:
        return "not authorized (is this device's certificate allowed on the broker?)";
    default:
        return "refused";
    }
}

static void on_connect_ok(void *ctx, MQTTAsync_successData *resp)
{
    (void)resp;
    struct pdm_uplink *u = ctx;
    trace_stop(u);
    pthread_mutex_lock(&u->mu);
    u->connected = 1;
    u->connecting = 0;
    push_conn_event(u, PDM_UPLINK_CONNECTED, "connected to %s", u->hostport);
    pthread_mutex_unlock(&u->mu);
}

static void on_connect_fail(void *ctx, MQTTAsync_failureData *resp)
{
    struct pdm_uplink *u = ctx;
    int code = resp ? resp->code : MQTTASYNC_FAILURE;
    const char *msg = resp && resp->message ? resp->message : "";
    trace_stop(u);
    pthread_mutex_lock(&u->mu);
    u->connecting = 0;
    u->connected = 0;
    if (u->tls_err[0])
        push_conn_event(u, PDM_UPLINK_CONNECT_FAILED,
                        "TLS handshake with %s failed: %s (Paho %d%s%s)", u->hostport, u->tls_err,
                        code, msg[0] ? ": " : "", msg);
    else if (u->name_mismatch && code == MQTTASYNC_FAILURE)
        push_conn_event(u, PDM_UPLINK_CONNECT_FAILED,
                        "TLS handshake with %s failed: the broker's certificate is not issued for "
                        "this host name or address (Paho %d%s%s)",
                        u->hostport, code, msg[0] ? ": " : "", msg);
    else if (code > 0)
        push_conn_event(u, PDM_UPLINK_CONNECT_FAILED,
                        "broker at %s refused the connection: %s (CONNACK %d)", u->hostport,
                        connack_text(code), code);
    else
        push_conn_event(u, PDM_UPLINK_CONNECT_FAILED,
                        "cannot connect to %s: %s (Paho %d; is the broker running and reachable?)",
                        u->hostport,
                        msg[0]                     ? msg
                        : MQTTAsync_strerror(code) ? MQTTAsync_strerror(code)
                                                   : "error",
                        code);
    pthread_mutex_unlock(&u->mu);
}

static void on_connection_lost(void *ctx, char *cause)
{
    struct pdm_uplink *u = ctx;
    pthread_mutex_lock(&u->mu);
    int was = u->connected;
    u->connected = 0;
    u->epoch++;
    if (was)
        push_conn_event(u, PDM_UPLINK_CONNECTION_LOST, "connection to %s lost%s%s", u->hostport,
                        cause && *cause ? ": " : "", cause ? cause : "");
    pthread_mutex_unlock(&u->mu);
    if (cause)
        MQTTAsync_free(cause);
}

/* Copies topic and payload (or its head) into m. */
static void fill_msg(struct msg_slot *m, const char *topic, size_t tlen,
                     const MQTTAsync_message *msg)
{
    size_t plen = msg->payloadlen > 0 ? (size_t)msg->payloadlen : 0;
    m->topic_cut = tlen >= sizeof(m->topic);
    if (m->topic_cut)
        tlen = sizeof(m->topic) - 1;
    memcpy(m->topic, topic, tlen);
    m->topic[tlen] = '\0';
    m->full_len = plen;
    m->too_large = plen > PDM_UPLINK_MSG_MAX;
    m->len = plen < m->cap ? plen : m->cap;
    if (m->len)
        memcpy(m->payload, msg->payload, m->len);
    m->retained = msg->retained != 0;
}

/* Paho thread: copy and queue, never wait for the loop (see the top of the file). Returning
 * 1 tells Paho the message is taken; it acknowledges QoS 1 to the broker. */
static int on_message(void *ctx, char *topic, int topic_len, MQTTAsync_message *msg)
{
    struct pdm_uplink *u = ctx;
    size_t tlen = topic_len > 0 ? (size_t)topic_len : strlen(topic);
    pthread_mutex_lock(&u->mu);
    int i = 0;
    while (i < MSG_SLOTS && u->msgs[i].state != MSG_FREE)
        i++;
    struct msg_slot *m = &u->msgs[i]; /* i == OVERFLOW when every slot is taken */
    if (i < MSG_SLOTS || m->state == MSG_FREE) {
        fill_msg(m, topic, tlen, msg);
        m->dropped = i == OVERFLOW ? 1 + u->lost_msgs : 0;
        if (i == OVERFLOW)
            u->lost_msgs = 0;
        m->state = MSG_QUEUED;
        ring_push(u, (struct ev_entry){.type = PDM_UPLINK_MESSAGE, .slot = (uint16_t)i});
    } else if (m->state == MSG_QUEUED) {
        fill_msg(m, topic, tlen, msg); /* the latest one is answered, the count says the rest */
        m->dropped++;
    } else {
        u->lost_msgs++;
    }
    pthread_mutex_unlock(&u->mu);
    MQTTAsync_freeMessage(&msg);
    MQTTAsync_free(topic);
    return 1;
}

static void on_subscribe_ok(void *ctx, MQTTAsync_successData *resp)
{
    struct pdm_uplink *u = ctx;
    pthread_mutex_lock(&u->mu);
    /* MQTT 3.1.1: the broker grants a QoS per filter, or 0x80 when it refuses one */
    int refused = -1;
    for (int i = 0; resp && i < u->n_subs && refused < 0; i++) {
        int q = u->n_subs == 1 ? resp->alt.qos : resp->alt.qosList ? resp->alt.qosList[i] : 0;
        if (q == MQTT_BAD_SUBSCRIBE)
            refused = i;
    }
    if (refused >= 0)
        push_conn_event(u, PDM_UPLINK_SUBSCRIBE_FAILED,
                        "broker %s refused the subscription to %s (is this device allowed to "
                        "subscribe to it?)",
                        u->hostport, u->subs[refused]);
    else
        push_conn_event(u, PDM_UPLINK_SUBSCRIBED, "subscribed to %s%s%s", u->subs[0],
                        u->n_subs > 1 ? " and " : "", u->n_subs > 1 ? u->subs[1] : "");
    pthread_mutex_unlock(&u->mu);
}

static void on_subscribe_fail(void *ctx, MQTTAsync_failureData *resp)
{
    struct pdm_uplink *u = ctx;
    int code = resp ? resp->code : MQTTASYNC_FAILURE;
    pthread_mutex_lock(&u->mu);
    push_conn_event(u, PDM_UPLINK_SUBSCRIBE_FAILED, "broker %s: subscribing to %s failed (%s%s%d)",
                    u->hostport, u->subs[0], resp && resp->message ? resp->message : "",
                    resp && resp->message ? ", " : "code ", code);
    pthread_mutex_unlock(&u->mu);
}

/* ---- API ------------------------------------------------------------------------------------- */

static char *dup_or_null(const char *s, int *oom)
{
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        *oom = 1;
    return d;
}

static void free_uplink(struct pdm_uplink *u)
{
    if (u->efd >= 0)
        close(u->efd);
    pthread_mutex_destroy(&u->mu);
    free(u->uri);
    free(u->paho_uri);
    free(u->hostport);
    free(u->client_id);
    free(u->ca_file);
    free(u->cert_file);
    free(u->key_file);
    free(u->will_topic);
    free(u->will_payload);
    free(u->slots);
    free(u->ring);
    for (int i = 0; i < u->n_subs; i++)
        free(u->subs[i]);
    free(u->msg_mem);
    free(u);
}

static int check_readable(const char *what, const char *path, const char *uri, char *err,
                          size_t errlen)
{
    if (!path || !*path) {
        snprintf(err, errlen, "%s: TLS needs a %s file (mqtts://), none is configured", uri, what);
        return -EINVAL;
    }
    if (access(path, R_OK) != 0) {
        int e = errno;
        snprintf(err, errlen, "%s: cannot read the %s file %s: %s", uri, what, path, strerror(e));
        return -e;
    }
    return 0;
}

int pdm_uplink_create(struct pdm_uplink **out, const struct pdm_uplink_cfg *cfg, char *err,
                      size_t errlen)
{
    char dummy[8];
    if (!err) {
        err = dummy;
        errlen = sizeof(dummy);
    }
    if (errlen)
        err[0] = '\0';
    *out = NULL;
    if (!cfg || !cfg->uri || !cfg->client_id || !*cfg->client_id) {
        snprintf(err, errlen, "MQTT uplink: the broker URI and the client id are required");
        return -EINVAL;
    }

    struct pdm_mqtt_uri mu;
    char uri_why[160];
    int rc = pdm_mqtt_uri_parse(cfg->uri, &mu, uri_why, sizeof(uri_why));
    if (rc != 0) {
        snprintf(err, errlen, "MQTT URI %s: %s (expected mqtts://HOST:PORT)", cfg->uri, uri_why);
        return rc;
    }
    if (!mu.tls && !cfg->allow_plaintext) {
        snprintf(err, errlen,
                 "plain-text MQTT refused for URI %s: use mqtts:// or set allow_plaintext = true",
                 cfg->uri);
        return -EPERM;
    }
    if (mu.tls &&
        ((rc = check_readable("CA", cfg->ca_file, cfg->uri, err, errlen)) != 0 ||
         (rc = check_readable("certificate", cfg->cert_file, cfg->uri, err, errlen)) != 0 ||
         (rc = check_readable("key", cfg->key_file, cfg->uri, err, errlen)) != 0))
        return rc;
    if (cfg->n_subscriptions < 0 || cfg->n_subscriptions > PDM_UPLINK_MAX_SUBS ||
        (cfg->n_subscriptions && !cfg->subscriptions)) {
        snprintf(err, errlen, "MQTT uplink: at most %d subscriptions", PDM_UPLINK_MAX_SUBS);
        return -EINVAL;
    }
    if (cfg->max_inflight < 0 || cfg->max_inflight > 16384 || cfg->keepalive_s < 0) {
        snprintf(err, errlen, "MQTT uplink: max_inflight must be 1..16384 and keepalive >= 0");
        return -EINVAL;
    }

    struct pdm_uplink *u = calloc(1, sizeof(*u));
    if (!u) {
        snprintf(err, errlen, "MQTT uplink: out of memory");
        return -ENOMEM;
    }
    u->efd = -1;
    pthread_mutex_init(&u->mu, NULL);
    u->tls = mu.tls;
    u->keepalive_s = cfg->keepalive_s ? cfg->keepalive_s : 30;
    u->max_inflight = cfg->max_inflight ? cfg->max_inflight : 64;
    u->nslots = (uint16_t)(2 * u->max_inflight);
    u->ring_cap = u->nslots + MSG_SLOTS + 1 + CONN_EVENTS;
    u->msg_held = -1;

    int oom = 0;
    u->uri = dup_or_null(cfg->uri, &oom);
    u->hostport = dup_or_null(mu.hostport, &oom);
    u->client_id = dup_or_null(cfg->client_id, &oom);
    u->ca_file = dup_or_null(cfg->ca_file, &oom);
    u->cert_file = dup_or_null(cfg->cert_file, &oom);
    u->key_file = dup_or_null(cfg->key_file, &oom);
    u->will_topic = cfg->will_topic && *cfg->will_topic ? dup_or_null(cfg->will_topic, &oom) : NULL;
    size_t plen = strlen(mu.paho) + 1;
    u->paho_uri = malloc(plen);
    u->slots = calloc(u->nslots, sizeof(*u->slots));
    u->ring = calloc(u->ring_cap, sizeof(*u->ring));
    for (int i = 0; i < cfg->n_subscriptions; i++)
        u->subs[u->n_subs++] = dup_or_null(cfg->subscriptions[i], &oom);
    u->msg_mem = malloc((size_t)MSG_SLOTS * PDM_UPLINK_MSG_MAX + PDM_UPLINK_MSG_HEAD);
    for (int i = 0; u->msg_mem && i <= MSG_SLOTS; i++) {
        u->msgs[i].cap = i < MSG_SLOTS ? PDM_UPLINK_MSG_MAX : PDM_UPLINK_MSG_HEAD;
        u->msgs[i].payload = u->msg_mem + (size_t)i * PDM_UPLINK_MSG_MAX;
    }
    if (u->will_topic && cfg->will_len) {
        if (cfg->will_len > INT32_MAX || !cfg->will_payload) {
            snprintf(err, errlen, "MQTT uplink: invalid Last Will payload");
            free_uplink(u);
            return -EINVAL;
        }
        u->will_payload = malloc(cfg->will_len);
        if (u->will_payload)
            memcpy(u->will_payload, cfg->will_payload, cfg->will_len);
        u->will_len = cfg->will_len;
    }
    if (oom || !u->paho_uri || !u->slots || !u->ring || !u->msg_mem ||
        (u->will_len && !u->will_payload)) {
        snprintf(err, errlen, "MQTT uplink: out of memory");
        free_uplink(u);
        return -ENOMEM;
    }
    memcpy(u->paho_uri, mu.paho, plen);
    for (uint16_t i = 0; i < u->nslots; i++) {
        u->slots[i].u = u;
        u->slots[i].next_free = (uint16_t)(i + 1 < u->nslots ? i + 1 : NO_SLOT);
    }
    u->free_head = 0;

    u->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (u->efd < 0) {
        int e = errno;
        snprintf(err, errlen, "MQTT uplink: eventfd: %s", strerror(e));
        free_uplink(u);
        return -e;
    }

    MQTTAsync_createOptions co = MQTTAsync_createOptions_initializer;
    co.sendWhileDisconnected = 0;
    co.maxBufferedMessages = u->nslots; /* never Paho's limit before ours */
    co.MQTTVersion = MQTTVERSION_3_1_1;
    char why[200];
    rc = pdm_paho_create(&u->paho, u->paho_uri, u->client_id, &co, why, sizeof(why));
    if (rc != 0) {
        snprintf(err, errlen, "MQTT uplink for %s: %s", cfg->uri, why);
        free_uplink(u);
        return rc;
    }
    rc = MQTTAsync_setCallbacks(u->paho.client, u, on_connection_lost, on_message, NULL);
    if (rc != MQTTASYNC_SUCCESS) {
        snprintf(err, errlen, "MQTT uplink for %s: cannot set Paho callbacks (%d)", cfg->uri, rc);
        pdm_paho_destroy(&u->paho, 0);
        free_uplink(u);
        return -EINVAL;
    }
    *out = u;
    return 0;
}

int pdm_uplink_connect(struct pdm_uplink *u)
{
    pthread_mutex_lock(&u->mu);
    if (u->connected || u->connecting) {
        int busy = u->connected ? -EISCONN : -EALREADY;
        pthread_mutex_unlock(&u->mu);
        return busy;
    }
    u->connecting = 1;
    u->tls_err[0] = '\0';
    u->name_mismatch = 0;
    pthread_mutex_unlock(&u->mu);
    /* MQTT_C_CLIENT_TRACE set by a person debugging: leave Paho's tracing to them */
    if (u->tls && !getenv("MQTT_C_CLIENT_TRACE")) {
        pthread_mutex_lock(&trace_mu);
        trace_owner = u;
        pthread_mutex_unlock(&trace_mu);
        MQTTAsync_setTraceCallback(on_trace);
        MQTTAsync_setTraceLevel(MQTTASYNC_TRACE_MINIMUM);
    }

    MQTTAsync_connectOptions co = MQTTAsync_connectOptions_initializer;
    MQTTAsync_SSLOptions ssl = MQTTAsync_SSLOptions_initializer;
    MQTTAsync_willOptions will = MQTTAsync_willOptions_initializer;
    co.keepAliveInterval = u->keepalive_s;
    co.cleansession = 1;
    co.maxInflight = u->nslots;
    co.connectTimeout = CONNECT_TIMEOUT;
    co.retryInterval = 0;
    co.MQTTVersion = MQTTVERSION_3_1_1;
    co.automaticReconnect = 0;
    co.onSuccess = on_connect_ok;
    co.onFailure = on_connect_fail;
    co.context = u;
    if (u->will_topic) {
        will.topicName = u->will_topic;
        will.message = NULL; /* binary payload below */
        will.payload.data = u->will_payload;
        will.payload.len = (int)u->will_len;
        will.retained = 1;
        will.qos = 1;
        co.will = &will;
    }
    if (u->tls) {
        ssl.trustStore = u->ca_file;
        ssl.keyStore = u->cert_file;
        ssl.privateKey = u->key_file;
        ssl.enableServerCertAuth = 1;
        ssl.verify = 1; /* host name / IP address must match the broker's certificate */
        ssl.ssl_error_cb = on_ssl_error;
        ssl.ssl_error_context = u;
        ssl.disableDefaultTrustStore = 1; /* only our CA, not the system's */
        co.ssl = &ssl;
    }
    /* Paho copies the options, will and TLS settings during this call. */
    int rc = MQTTAsync_connect(u->paho.client, &co);
    if (rc != MQTTASYNC_SUCCESS) {
        trace_stop(u);
        pthread_mutex_lock(&u->mu);
        u->connecting = 0;
        push_conn_event(u, PDM_UPLINK_CONNECT_FAILED, "cannot start connecting to %s: %s (Paho %d)",
                        u->hostport, MQTTAsync_strerror(rc) ? MQTTAsync_strerror(rc) : "error", rc);
        pthread_mutex_unlock(&u->mu);
    }
    return 0;
}

void pdm_uplink_disconnect(struct pdm_uplink *u, int timeout_ms)
{
    if (!u)
        return;
    if (timeout_ms < 0)
        timeout_ms = 0;
    pthread_mutex_lock(&u->mu);
    int live = u->connected || u->connecting;
    pthread_mutex_unlock(&u->mu);
    if (!live)
        return;

    /* Paho waits up to timeout_ms for PUBACKs, closes, and answers; we wait for its answer, so
     * the disconnect is over when this returns (the caller's thread is the only one that
     * connects) */
    pdm_paho_disconnect(&u->paho, timeout_ms);

    pthread_mutex_lock(&u->mu);
    u->connected = 0;
    u->connecting = 0;
    u->epoch++;
    pthread_mutex_unlock(&u->mu);
}

void pdm_uplink_destroy(struct pdm_uplink *u)
{
    if (!u)
        return;
    pdm_uplink_disconnect(u, DESTROY_WAIT_MS);
    trace_stop(u);
    /* Fails whatever Paho still holds through our callbacks, so u must still be alive. */
    pdm_paho_destroy(&u->paho, DESTROY_WAIT_MS);
    free_uplink(u);
}

int pdm_uplink_is_connected(struct pdm_uplink *u)
{
    pthread_mutex_lock(&u->mu);
    int c = u->connected;
    pthread_mutex_unlock(&u->mu);
    return c;
}

int pdm_uplink_inflight(struct pdm_uplink *u)
{
    pthread_mutex_lock(&u->mu);
    int n = count_inflight(u);
    pthread_mutex_unlock(&u->mu);
    return n;
}

int pdm_uplink_publish(struct pdm_uplink *u, const char *topic, const void *payload, size_t len,
                       int qos, int retained, uint64_t cookie)
{
    if (!topic || !*topic || (len && !payload) || len > INT32_MAX || qos < 0 || qos > 2)
        return -EINVAL;
    pthread_mutex_lock(&u->mu);
    if (!u->connected) {
        pthread_mutex_unlock(&u->mu);
        return -ENOTCONN;
    }
    if (u->free_head == NO_SLOT || count_inflight(u) >= u->max_inflight) {
        pthread_mutex_unlock(&u->mu);
        return -EAGAIN;
    }
    struct slot *s = &u->slots[u->free_head];
    u->free_head = s->next_free;
    s->state = SLOT_SENT;
    s->cookie = cookie;
    s->epoch = u->epoch;
    pthread_mutex_unlock(&u->mu);

    MQTTAsync_message msg = MQTTAsync_message_initializer;
    msg.payload = (void *)payload; /* Paho copies it */
    msg.payloadlen = (int)len;
    msg.qos = qos;
    msg.retained = retained ? 1 : 0;
    MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
    ro.onSuccess = on_publish_ok;
    ro.onFailure = on_publish_fail;
    ro.context = s;
    int rc = MQTTAsync_sendMessage(u->paho.client, topic, &msg, &ro);
    if (rc == MQTTASYNC_SUCCESS)
        return 0;

    /* Not accepted: Paho will not call back for it. */
    pthread_mutex_lock(&u->mu);
    s->state = SLOT_FREE;
    s->next_free = u->free_head;
    u->free_head = (uint16_t)(s - u->slots);
    pthread_mutex_unlock(&u->mu);
    switch (rc) {
    case MQTTASYNC_DISCONNECTED:
        return -ENOTCONN;
    case MQTTASYNC_MAX_MESSAGES_INFLIGHT:
    case MQTTASYNC_MAX_BUFFERED_MESSAGES:
    case MQTTASYNC_NO_MORE_MSGIDS:
        return -EAGAIN;
    case MQTTASYNC_BAD_UTF8_STRING:
    case MQTTASYNC_BAD_QOS:
    case MQTTASYNC_NULL_PARAMETER:
    case MQTTASYNC_TOPICNAME_TRUNCATED:
        return -EINVAL;
    default:
        return -EIO;
    }
}

int pdm_uplink_subscribe(struct pdm_uplink *u)
{
    if (u->n_subs == 0)
        return 0;
    if (!pdm_uplink_is_connected(u))
        return -ENOTCONN;
    int qos[PDM_UPLINK_MAX_SUBS];
    for (int i = 0; i < u->n_subs; i++)
        qos[i] = 1;
    MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
    ro.onSuccess = on_subscribe_ok;
    ro.onFailure = on_subscribe_fail;
    ro.context = u;
    int rc = MQTTAsync_subscribeMany(u->paho.client, u->n_subs, u->subs, qos, &ro);
    if (rc == MQTTASYNC_SUCCESS)
        return 0;
    pthread_mutex_lock(&u->mu);
    push_conn_event(u, PDM_UPLINK_SUBSCRIBE_FAILED, "cannot subscribe to %s: %s (Paho %d)",
                    u->subs[0], MQTTAsync_strerror(rc) ? MQTTAsync_strerror(rc) : "error", rc);
    pthread_mutex_unlock(&u->mu);
    return rc == MQTTASYNC_DISCONNECTED ? -ENOTCONN : -EIO;
}

int pdm_uplink_event_fd(struct pdm_uplink *u)
{
    return u->efd;
}

int pdm_uplink_next_event(struct pdm_uplink *u, struct pdm_uplink_event *ev)
{
    int got = 0;
    pthread_mutex_lock(&u->mu);
    if (u->msg_held >= 0) { /* the caller is done with the message it took last time */
        u->msgs[u->msg_held].state = MSG_FREE;
        u->msg_held = -1;
    }
    while (!got && u->ring_len) {
        struct ev_entry e = u->ring[u->ring_head];
        u->ring_head = (u->ring_head + 1) % u->ring_cap;
        u->ring_len--;
        memset(ev, 0, sizeof(*ev));
        ev->type = (enum pdm_uplink_event_type)e.type;
        if (e.type == PDM_UPLINK_DELIVERED || e.type == PDM_UPLINK_SEND_FAILED) {
            struct slot *s = &u->slots[e.slot];
            s->state = SLOT_FREE;
            s->next_free = u->free_head;
            u->free_head = e.slot;
            ev->cookie = e.cookie;
            got = !e.stale;
        } else if (e.type == PDM_UPLINK_MESSAGE) {
            struct msg_slot *m = &u->msgs[e.slot];
            m->state = MSG_HELD;
            u->msg_held = e.slot;
            ev->topic = m->topic;
            ev->payload = m->payload;
            ev->len = m->len;
            ev->full_len = m->full_len;
            ev->too_large = m->too_large;
            ev->topic_cut = m->topic_cut;
            ev->retained = m->retained;
            ev->dropped = m->dropped;
            got = 1;
        } else {
            u->conn_events--;
            snprintf(ev->reason, sizeof(ev->reason), "%s", u->reasons[e.slot]);
            got = 1;
        }
    }
    if (u->ring_len == 0) {
        uint64_t v;
        ssize_t r = read(u->efd, &v, sizeof(v)); /* EAGAIN when already clear */
        (void)r;
    }
    pthread_mutex_unlock(&u->mu);
    return got;
}
