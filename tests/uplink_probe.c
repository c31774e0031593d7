/* Drives agent/uplink.c against a real broker for tests/integration/it_uplink.sh.
 *
 *   uplink_probe publish   URI CA CERT KEY N   N encoded Alerts (seq 1..N), QoS 1; every one
 *                                              must come back DELIVERED exactly once
 *   uplink_probe plaintext URI                 create() must refuse mqtt:// (-EPERM)
 *   uplink_probe refused   URI CA CERT KEY     the connection must fail (CONNECT_FAILED)
 *   uplink_probe lost      URI CA CERT KEY     prints READY once connected with messages in
 *                                              flight; the broker is then stopped: expects
 *                                              CONNECTION_LOST and a clean in-flight count
 *   uplink_probe will      URI CA CERT KEY     connects with an offline Status as Last Will,
 *                                              prints READY and waits to be killed
 *   uplink_probe inbox     URI CA CERT KEY     one client subscribes to a command topic and
 *                                              does not take events while a second one
 *                                              publishes 12 commands (the first 40000 bytes):
 *                                              the slots fill, the overflow slot counts the
 *                                              rest; then every message must be accounted for
 *
 * Prints what it saw on stdout (one line per fact, for grep) and exits 0 when the expectation
 * held, 1 otherwise. Every wait is bounded. */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent/command.h"
#include "agent/encode.h"
#include "agent/uplink.h"

#define TOPIC_ALERT  "pdm/v1/gw-test/alert"
#define TOPIC_STATUS "pdm/v1/gw-test/status"
#define MAX_INFLIGHT 16 /* small, so the -EAGAIN path is exercised */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Next event within timeout_ms: 1, or 0 on timeout. */
static int wait_event(struct pdm_uplink *u, int timeout_ms, struct pdm_uplink_event *ev)
{
    int64_t end = now_ms() + timeout_ms;
    for (;;) {
        if (pdm_uplink_next_event(u, ev))
            return 1;
        int64_t left = end - now_ms();
        if (left <= 0)
            return 0;
        struct pollfd p = {.fd = pdm_uplink_event_fd(u), .events = POLLIN};
        poll(&p, 1, (int)left);
    }
}

static const char *ev_name(enum pdm_uplink_event_type t)
{
    switch (t) {
    case PDM_UPLINK_CONNECTED:
        return "CONNECTED";
    case PDM_UPLINK_CONNECT_FAILED:
        return "CONNECT_FAILED";
    case PDM_UPLINK_CONNECTION_LOST:
        return "CONNECTION_LOST";
    case PDM_UPLINK_DELIVERED:
        return "DELIVERED";
    case PDM_UPLINK_SEND_FAILED:
        return "SEND_FAILED";
    case PDM_UPLINK_SUBSCRIBED:
        return "SUBSCRIBED";
    case PDM_UPLINK_SUBSCRIBE_FAILED:
        return "SUBSCRIBE_FAILED";
    case PDM_UPLINK_MESSAGE:
        return "MESSAGE";
    }
    return "?";
}

static const char *const inbox_subs[] = {"pdm/v1/probe-inbox/cmd/#"};

static struct pdm_uplink *make(const char *uri, char **argv, const char *client_id, int with_will)
{
    static uint8_t will[512];
    int wl = 0;
    if (with_will) {
        struct pdm_status_model models[] = {{"compressor-1", "compressor", 1, NULL}};
        struct pdm_status_msg st = {.device_id = "gw-test",
                                    .online = 0,
                                    .agent_version = "probe",
                                    .models = models,
                                    .n_models = 1};
        wl = pdm_encode_status(&st, will, sizeof(will));
        if (wl <= 0)
            return NULL;
    }
    struct pdm_uplink_cfg cfg = {
        .uri = uri,
        .client_id = client_id,
        .ca_file = argv[3],
        .cert_file = argv[4],
        .key_file = argv[5],
        .keepalive_s = 5,
        .will_topic = with_will ? TOPIC_STATUS : NULL,
        .will_payload = will,
        .will_len = (size_t)wl,
        .max_inflight = MAX_INFLIGHT,
        .subscriptions = inbox_subs,
        .n_subscriptions = strcmp(client_id, "probe-inbox") == 0,
    };
    struct pdm_uplink *u;
    char err[512];
    int rc = pdm_uplink_create(&u, &cfg, err, sizeof(err));
    if (rc != 0) {
        printf("create failed (%d): %s\n", rc, err);
        return NULL;
    }
    return u;
}

static int connect_wait(struct pdm_uplink *u)
{
    struct pdm_uplink_event ev;
    if (pdm_uplink_connect(u) != 0)
        return -1;
    if (!wait_event(u, 15000, &ev)) {
        printf("no connection outcome within 15 s\n");
        return -1;
    }
    printf("%s%s%s\n", ev_name(ev.type), ev.reason[0] ? ": " : "", ev.reason);
    return ev.type == PDM_UPLINK_CONNECTED ? 0 : -1;
}

static int encode_alert(uint64_t seq, uint8_t *buf, size_t cap)
{
    static struct pdm_model model;
    if (!model.n_inputs) {
        snprintf(model.id, sizeof(model.id), "compressor");
        model.version = 1;
        snprintf(model.inputs[0].name, sizeof(model.inputs[0].name), "temperature");
        model.inputs[0].center = 45;
        snprintf(model.inputs[1].name, sizeof(model.inputs[1].name), "vibration");
        model.inputs[1].center = 2.5;
        model.n_inputs = 2;
    }
    struct pdm_score sc = {.logit = 0.5, .probability = 0.62, .health = 38, .n_inputs = 2};
    sc.in[0] = (struct pdm_score_input){56.1, 1.1, 1.8};
    sc.in[1] = (struct pdm_score_input){3.9, 1.4, 0.95};
    const char *sensors[] = {"temp-1", "vib-1"};
    char id[64];
    snprintf(id, sizeof(id), "compressor-1-%" PRIu64, seq);
    struct pdm_alert_msg m = {.device_id = "gw-test",
                              .asset = "compressor-1",
                              .alert_id = id,
                              .seq = seq,
                              .state = PDM_ALERT_RAISED,
                              .severity = PDM_SEV_WARNING,
                              .ts_ms = 1714567890000 + (int64_t)seq,
                              .model = &model,
                              .score = &sc,
                              .input_sensors = sensors};
    return pdm_encode_alert(&m, buf, cap);
}

static int run_publish(char **argv, long n)
{
    struct pdm_uplink *u = make(argv[2], argv, "probe-publish", 0);
    if (!u)
        return 1;
    uint8_t payload[1024];
    int rc = encode_alert(1, payload, sizeof(payload));
    int ok =
        rc > 0 && pdm_uplink_publish(u, TOPIC_ALERT, payload, (size_t)rc, 1, 0, 1) == -ENOTCONN;
    printf("publish before connect: %s\n", ok ? "-ENOTCONN" : "WRONG");
    if (!ok || connect_wait(u) != 0) {
        pdm_uplink_destroy(u);
        return 1;
    }

    unsigned char *delivered = calloc((size_t)n + 1, 1);
    long sent = 0, ndelivered = 0, dup = 0, failed = 0, eagain = 0, max_seen = 0;
    int64_t end = now_ms() + 60000;
    struct pdm_uplink_event ev;
    while (ndelivered < n && now_ms() < end) {
        while (sent < n) {
            int len = encode_alert((uint64_t)sent + 1, payload, sizeof(payload));
            rc = pdm_uplink_publish(u, TOPIC_ALERT, payload, (size_t)len, 1, 0, (uint64_t)sent + 1);
            if (rc == -EAGAIN) {
                eagain++;
                break;
            }
            if (rc != 0) {
                printf("publish %ld failed: %s\n", sent + 1, strerror(-rc));
                goto out;
            }
            sent++;
            int inflight = pdm_uplink_inflight(u);
            if (inflight > max_seen)
                max_seen = inflight;
        }
        if (!wait_event(u, 1000, &ev))
            continue;
        do {
            if (ev.type == PDM_UPLINK_DELIVERED && ev.cookie >= 1 && ev.cookie <= (uint64_t)n) {
                if (delivered[ev.cookie]++)
                    dup++;
                else
                    ndelivered++;
            } else if (ev.type == PDM_UPLINK_SEND_FAILED) {
                failed++;
            } else {
                printf("unexpected event %s %s\n", ev_name(ev.type), ev.reason);
                goto out;
            }
        } while (pdm_uplink_next_event(u, &ev));
    }
out:
    printf("sent %ld delivered %ld duplicates %ld failed %ld eagain %ld max_inflight_seen %ld "
           "inflight_now %d\n",
           sent, ndelivered, dup, failed, eagain, max_seen, pdm_uplink_inflight(u));
    ok = ndelivered == n && dup == 0 && failed == 0 && max_seen <= MAX_INFLIGHT &&
         pdm_uplink_inflight(u) == 0;
    pdm_uplink_disconnect(u, 2000);
    pdm_uplink_destroy(u);
    free(delivered);
    return ok ? 0 : 1;
}

static int run_plaintext(const char *uri)
{
    struct pdm_uplink_cfg cfg = {.uri = uri, .client_id = "probe-plain"};
    struct pdm_uplink *u = NULL;
    char err[512] = "";
    int rc = pdm_uplink_create(&u, &cfg, err, sizeof(err));
    printf("create: %d (%s): %s\n", rc, rc == -EPERM ? "EPERM" : "?", err);
    if (u)
        pdm_uplink_destroy(u);
    return rc == -EPERM && u == NULL ? 0 : 1;
}

static int run_refused(char **argv)
{
    struct pdm_uplink *u = make(argv[2], argv, "probe-refused", 0);
    if (!u)
        return 1;
    int ok = connect_wait(u) != 0;
    uint8_t payload[1024];
    int len = encode_alert(1, payload, sizeof(payload));
    int rc = pdm_uplink_publish(u, TOPIC_ALERT, payload, (size_t)len, 1, 0, 1);
    printf("publish after failure: %s\n", rc == -ENOTCONN ? "-ENOTCONN" : strerror(-rc));
    ok = ok && rc == -ENOTCONN && !pdm_uplink_is_connected(u);
    pdm_uplink_destroy(u);
    return ok ? 0 : 1;
}

static int run_lost(char **argv)
{
    struct pdm_uplink *u = make(argv[2], argv, "probe-lost", 0);
    if (!u || connect_wait(u) != 0) {
        pdm_uplink_destroy(u);
        return 1;
    }
    printf("READY\n");
    fflush(stdout);
    /* keep publishing until the broker goes away, so messages are in flight when it does */
    uint8_t payload[1024];
    struct pdm_uplink_event ev;
    int64_t end = now_ms() + 30000;
    uint64_t cookie = 0;
    long delivered = 0, failed = 0;
    int lost = 0;
    while (!lost && now_ms() < end) {
        int len = encode_alert(cookie + 1, payload, sizeof(payload));
        if (pdm_uplink_publish(u, TOPIC_ALERT, payload, (size_t)len, 1, 0, cookie + 1) == 0)
            cookie++;
        while (wait_event(u, 20, &ev)) {
            if (ev.type == PDM_UPLINK_CONNECTION_LOST) {
                printf("CONNECTION_LOST: %s\n", ev.reason);
                lost = 1;
                break;
            }
            delivered += ev.type == PDM_UPLINK_DELIVERED;
            failed += ev.type == PDM_UPLINK_SEND_FAILED;
        }
    }
    int inflight = pdm_uplink_inflight(u);
    uint8_t p1[8] = {0};
    int rc = pdm_uplink_publish(u, TOPIC_ALERT, p1, sizeof(p1), 1, 0, 999999);
    printf("published %" PRIu64
           " delivered %ld failed %ld inflight_after_loss %d publish_after_loss %s "
           "connected %d\n",
           cookie, delivered, failed, inflight, rc == -ENOTCONN ? "-ENOTCONN" : strerror(-rc),
           pdm_uplink_is_connected(u));
    int ok = lost && inflight == 0 && rc == -ENOTCONN && !pdm_uplink_is_connected(u);
    pdm_uplink_destroy(u);
    return ok ? 0 : 1;
}

static int run_will(char **argv)
{
    struct pdm_uplink *u = make(argv[2], argv, "probe-will", 1);
    if (!u || connect_wait(u) != 0) {
        pdm_uplink_destroy(u);
        return 1;
    }
    printf("READY\n");
    fflush(stdout);
    sleep(60); /* killed by the test long before */
    pdm_uplink_destroy(u);
    return 1;
}

#define INBOX_SENT 12

static int run_inbox(char **argv)
{
    struct pdm_uplink *in = make(argv[2], argv, "probe-inbox", 0);
    struct pdm_uplink *out = make(argv[2], argv, "probe-sender", 0);
    struct pdm_uplink_event ev;
    int ok = 0;
    if (!in || !out || connect_wait(in) != 0 || connect_wait(out) != 0)
        goto done;
    pdm_uplink_subscribe(in);
    if (!wait_event(in, 10000, &ev) || ev.type != PDM_UPLINK_SUBSCRIBED) {
        printf("no subscription: %s %s\n", ev_name(ev.type), ev.reason);
        goto done;
    }
    printf("%s: %s\n", ev_name(ev.type), ev.reason);
    static uint8_t big[40000];
    memset(big, 'x', sizeof(big));
    big[0] = 0x0a; /* field 1, a string: the request id "big" */
    big[1] = 3;
    memcpy(big + 2, "big", 3);
    for (int i = 0; i < INBOX_SENT; i++) {
        char small[32];
        int n = snprintf(small + 2, sizeof(small) - 2, "r%d", i);
        small[0] = 0x0a;
        small[1] = (char)n;
        int rc = i == 0 ? pdm_uplink_publish(out, "pdm/v1/probe-inbox/cmd/model", big, sizeof(big),
                                             1, 0, (uint64_t)i + 1)
                        : pdm_uplink_publish(out, "pdm/v1/probe-inbox/cmd/model", small,
                                             (size_t)n + 2, 1, 0, (uint64_t)i + 1);
        if (rc != 0) {
            printf("publish %d: %s\n", i, strerror(-rc));
            goto done;
        }
    }
    /* Wait, without taking events, until the inbox has queued its 4 slots and the overflow one
     * (each queued message makes the eventfd count once). */
    uint64_t queued = 0;
    int64_t end = now_ms() + 15000;
    while (queued < PDM_UPLINK_MSG_SLOTS + 1 && now_ms() < end) {
        struct pollfd p = {.fd = pdm_uplink_event_fd(in), .events = POLLIN};
        if (poll(&p, 1, 100) > 0) {
            uint64_t v;
            if (read(p.fd, &v, sizeof(v)) == (ssize_t)sizeof(v))
                queued += v;
        }
    }
    printf("queued events before taking any: %" PRIu64 "\n", queued);
    long seen = 0, dropped = 0, too_large = 0, overflow_events = 0;
    end = now_ms() + 15000;
    while (seen + dropped < INBOX_SENT && now_ms() < end) {
        if (!wait_event(in, 200, &ev) || ev.type != PDM_UPLINK_MESSAGE)
            continue;
        char rid[64];
        pdm_cmd_request_id(ev.payload, ev.len, rid, sizeof(rid));
        printf("MESSAGE %s request %s len %zu full_len %zu too_large %d dropped %u\n", ev.topic,
               rid, ev.len, ev.full_len, ev.too_large, ev.dropped);
        if (ev.dropped) {
            overflow_events++;
            dropped += ev.dropped;
        } else {
            seen++;
        }
        too_large += ev.too_large && ev.full_len == sizeof(big) && ev.len == PDM_UPLINK_MSG_MAX &&
                     strcmp(rid, "big") == 0;
    }
    printf("kept %ld dropped %ld (in %ld overflow events) too_large %ld\n", seen, dropped,
           overflow_events, too_large);
    ok = seen + dropped == INBOX_SENT && overflow_events >= 1 && too_large == 1;
done:
    pdm_uplink_destroy(in);
    pdm_uplink_destroy(out);
    return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc >= 3 && strcmp(argv[1], "plaintext") == 0)
        return run_plaintext(argv[2]);
    if (argc < 6) {
        fprintf(stderr, "usage: uplink_probe publish|refused|lost|will URI CA CERT KEY [N]\n"
                        "       uplink_probe plaintext URI\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (strcmp(argv[1], "publish") == 0)
        return run_publish(argv, argc > 6 ? atol(argv[6]) : 200);
    if (strcmp(argv[1], "refused") == 0)
        return run_refused(argv);
    if (strcmp(argv[1], "lost") == 0)
        return run_lost(argv);
    if (strcmp(argv[1], "will") == 0)
        return run_will(argv);
    if (strcmp(argv[1], "inbox") == 0)
        return run_inbox(argv);
    fprintf(stderr, "uplink_probe: unknown mode %s\n", argv[1]);
    return 2;
}
