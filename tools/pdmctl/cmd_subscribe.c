/* pdmctl subscribe: connects to the broker like a backend would (TLS, client certificate),
 * subscribes to the agent's topics and prints every message decoded, one line each.
 *
 * Paho delivers messages on its own thread; that thread prints and saves them (one message at a
 * time, in arrival order). The main thread only waits for the end: --count reached, --timeout,
 * a signal, or a lost connection. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <MQTTAsync.h>

#include "lib/mqtt_uri.h"
#include "lib/paho.h"
#include "cli.h"
#include "pdmctl.h"
#include "print.h"

struct sub {
    const char *uri, *topic, *save_dir;
    char hostport[PDM_MQTT_HOST_MAX + 8]; /* HOST[:PORT], for messages */
    long count;                           /* 0: no limit */
    int json;
    int wake[2]; /* self-pipe: Paho threads and signal handlers wake the main thread */

    pthread_mutex_t mu; /* below */
    long received;
    int subscribed, done, failed;
    char reason[800];
    char tls_err[200];
};

static int wake_fd = -1; /* for the signal handler */
static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
    stop_signal = sig;
    if (wake_fd >= 0) {
        char c = 's';
        ssize_t w = write(wake_fd, &c, 1);
        (void)w;
    }
}

static void wake(struct sub *s)
{
    char c = 'w';
    ssize_t w = write(s->wake[1], &c, 1);
    (void)w;
}

static void fail(struct sub *s, const char *fmt, const char *a, const char *b)
{
    pthread_mutex_lock(&s->mu);
    if (!s->failed) {
        s->failed = 1;
        snprintf(s->reason, sizeof(s->reason), fmt, a, b);
    }
    pthread_mutex_unlock(&s->mu);
    wake(s);
}

/* OpenSSL's "...:error:<code>:<lib>:<func>:<reason>:..." -> "<reason>" */
static int on_ssl_error(const char *str, size_t len, void *ctx)
{
    struct sub *s = ctx;
    char tmp[512];
    snprintf(tmp, sizeof(tmp), "%.*s", (int)(len < sizeof(tmp) ? len : sizeof(tmp) - 1), str);
    tmp[strcspn(tmp, "\n")] = '\0';
    const char *p = strstr(tmp, ":error:");
    for (int i = 0; p && i < 4; i++) {
        p = strchr(p + 1, ':');
    }
    pthread_mutex_lock(&s->mu);
    if (!s->tls_err[0]) {
        if (p && p[1])
            snprintf(s->tls_err, sizeof(s->tls_err), "%.*s", (int)strcspn(p + 1, ":"), p + 1);
        else
            snprintf(s->tls_err, sizeof(s->tls_err), "%.199s", tmp);
    }
    pthread_mutex_unlock(&s->mu);
    return 0;
}

static int save_payload(struct sub *s, long n, enum pdm_msg_type t, const void *buf, size_t len)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%06ld-%s.pb", s->save_dir, n, pdm_msg_type_name(t));
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    const char *p = buf;
    while (len) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            close(fd);
            return -e;
        }
        p += w;
        len -= (size_t)w;
    }
    return close(fd) == 0 ? 0 : -errno;
}

static int on_message(void *ctx, char *topic, int topic_len, MQTTAsync_message *msg)
{
    struct sub *s = ctx;
    (void)topic_len;
    pthread_mutex_lock(&s->mu);
    long n = s->done || s->failed ? 0 : ++s->received;
    int last = s->count && n == s->count;
    pthread_mutex_unlock(&s->mu);
    if (n > 0) {
        enum pdm_msg_type t = pdm_msg_type_from_topic(topic);
        size_t len = msg->payloadlen > 0 ? (size_t)msg->payloadlen : 0;
        if (pdm_print_payload(stdout, t, topic, msg->payload, len,
                              s->json ? PDM_PRINT_JSON : PDM_PRINT_LINE) != 0) {
            /* still one line per message, so a reader counting lines stays in step */
            if (s->json) {
                fputs("{\"topic\":", stdout);
                pdm_json_fstr(stdout, topic);
                printf(",\"type\":\"%s\",\"error\":\"not a valid %s payload\",\"bytes\":%zu}\n",
                       pdm_msg_type_name(t), pdm_msg_proto_name(t), len);
            } else
                printf("INVALID  %s  not a valid %s payload (%zu bytes)\n", topic,
                       pdm_msg_proto_name(t), len);
        }
        fflush(stdout);
        if (s->save_dir) {
            int rc = save_payload(s, n, t, msg->payload, len);
            if (rc != 0)
                fail(s, "cannot save the payload in %s: %s", s->save_dir, strerror(-rc));
        }
        if (last) {
            pthread_mutex_lock(&s->mu);
            s->done = 1;
            pthread_mutex_unlock(&s->mu);
            wake(s);
        }
    }
    MQTTAsync_freeMessage(&msg);
    MQTTAsync_free(topic);
    return 1;
}

static void on_connection_lost(void *ctx, char *cause)
{
    struct sub *s = ctx;
    fail(s, "connection to %s lost%s", s->hostport, cause && *cause ? " (broker closed it)" : "");
    if (cause)
        MQTTAsync_free(cause);
}

static void on_subscribed(void *ctx, MQTTAsync_successData *resp)
{
    struct sub *s = ctx;
    (void)resp;
    pthread_mutex_lock(&s->mu);
    s->subscribed = 1;
    pthread_mutex_unlock(&s->mu);
    fprintf(stderr, "pdmctl subscribe: subscribed to %s at %s\n", s->topic, s->uri);
    wake(s);
}

static void on_subscribe_failed(void *ctx, MQTTAsync_failureData *resp)
{
    struct sub *s = ctx;
    (void)resp;
    fail(s, "the broker refused the subscription to %s%s (is this certificate allowed to read it?)",
         s->topic, "");
}

/* Paho's client, made before connecting; the callbacks below run after that. */
static struct pdm_paho paho;

static void on_connected(void *ctx, MQTTAsync_successData *resp)
{
    struct sub *s = ctx;
    (void)resp;
    MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
    ro.onSuccess = on_subscribed;
    ro.onFailure = on_subscribe_failed;
    ro.context = s;
    int rc = MQTTAsync_subscribe(paho.client, s->topic, 1, &ro);
    if (rc != MQTTASYNC_SUCCESS)
        fail(s, "cannot subscribe to %s: %s", s->topic, MQTTAsync_strerror(rc));
}

static void on_connect_failed(void *ctx, MQTTAsync_failureData *resp)
{
    struct sub *s = ctx;
    char why[700];
    int code = resp ? resp->code : MQTTASYNC_FAILURE;
    const char *msg = resp && resp->message ? resp->message : "";
    pthread_mutex_lock(&s->mu);
    if (s->tls_err[0])
        snprintf(why, sizeof(why), "TLS handshake with %s failed: %s", s->hostport, s->tls_err);
    else if (code > 0)
        snprintf(why, sizeof(why), "broker at %s refused the connection (CONNACK %d%s)",
                 s->hostport, code, code == 5 ? ": not authorized" : "");
    else
        snprintf(why, sizeof(why), "cannot connect to %s: %s%s%s", s->hostport,
                 MQTTAsync_strerror(code) ? MQTTAsync_strerror(code) : "error", msg[0] ? ": " : "",
                 msg);
    pthread_mutex_unlock(&s->mu);
    fail(s, "%s%s", why, "");
}

static void usage(FILE *f)
{
    fprintf(
        f, "usage: pdmctl subscribe --uri mqtts://HOST:PORT --ca FILE --cert FILE --key FILE\n"
           "                        [--topic FILTER] [--count N] [--timeout S] [--json]\n"
           "                        [--save DIR] [--client-id ID] [--keep-session]\n"
           "                        [--allow-plaintext]\n"
           "  Prints each message on the agent's topics as one line (or one JSON object with\n"
           "  --json). --topic defaults to pdm/v1/+/#. --count N: exit 0 after N messages;\n"
           "  --timeout S: exit 1 if they did not arrive within S seconds. --save DIR writes each\n"
           "  raw payload to DIR/NNNNNN-<type>.pb (for pdmctl decode). mqtt:// (no TLS) needs\n"
           "  --allow-plaintext. --keep-session (needs --client-id): a persistent session, so\n"
           "  the broker keeps QoS 1 messages for this subscriber while it is away.\n");
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int cmd_subscribe(int argc, char **argv)
{
    struct sub s = {.topic = "pdm/v1/+/#", .wake = {-1, -1}};
    const char *ca = NULL, *cert = NULL, *key = NULL, *client_id = NULL;
    long timeout_s = 0;
    int allow_plaintext = 0, keep_session = 0, c;

    enum {
        O_URI = 256,
        O_CA,
        O_CERT,
        O_KEY,
        O_TOPIC,
        O_COUNT,
        O_TIMEOUT,
        O_SAVE,
        O_CLIENT_ID,
        O_JSON,
        O_ALLOW_PLAINTEXT,
        O_KEEP_SESSION,
        O_HELP
    };
    static const struct option longopts[] = {
        {"uri", required_argument, 0, O_URI},
        {"ca", required_argument, 0, O_CA},
        {"cert", required_argument, 0, O_CERT},
        {"key", required_argument, 0, O_KEY},
        {"topic", required_argument, 0, O_TOPIC},
        {"count", required_argument, 0, O_COUNT},
        {"timeout", required_argument, 0, O_TIMEOUT},
        {"save", required_argument, 0, O_SAVE},
        {"client-id", required_argument, 0, O_CLIENT_ID},
        {"json", no_argument, 0, O_JSON},
        {"allow-plaintext", no_argument, 0, O_ALLOW_PLAINTEXT},
        {"keep-session", no_argument, 0, O_KEEP_SESSION},
        {"help", no_argument, 0, O_HELP},
        {0, 0, 0, 0},
    };
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        int64_t v;
        switch (c) {
        case O_URI:
            s.uri = optarg;
            break;
        case O_CA:
            ca = optarg;
            break;
        case O_CERT:
            cert = optarg;
            break;
        case O_KEY:
            key = optarg;
            break;
        case O_TOPIC:
            s.topic = optarg;
            break;
        case O_COUNT:
        case O_TIMEOUT:
            /* within a 32-bit long (armhf) */
            if (pdmctl_parse_i64("subscribe", c == O_COUNT ? "--count" : "--timeout",
                                 c == O_COUNT ? NULL : "seconds", optarg, 1, INT32_MAX, &v) < 0)
                return PDMCTL_EXIT_USAGE;
            *(c == O_COUNT ? &s.count : &timeout_s) = (long)v;
            break;
        case O_SAVE:
            s.save_dir = optarg;
            break;
        case O_CLIENT_ID:
            client_id = optarg;
            break;
        case O_JSON:
            s.json = 1;
            break;
        case O_ALLOW_PLAINTEXT:
            allow_plaintext = 1;
            break;
        case O_KEEP_SESSION:
            keep_session = 1;
            break;
        case 'h':
        case O_HELP:
            usage(stdout);
            return PDMCTL_EXIT_OK;
        default: /* ':' a value is missing, '?' unknown */
            return pdmctl_cli_bad_option("subscribe", c, argv, usage);
        }
    }
    if (optind < argc)
        return pdmctl_cli_extra_arg("subscribe", argv[optind], usage);
    if (keep_session && !client_id) {
        fprintf(stderr, "pdmctl subscribe: --keep-session needs --client-id: the broker keeps "
                        "the session under that id\n");
        return PDMCTL_EXIT_USAGE;
    }
    if (!s.uri) {
        fprintf(stderr, "pdmctl subscribe: --uri mqtts://HOST:PORT is required\n");
        usage(stderr);
        return PDMCTL_EXIT_USAGE;
    }
    struct pdm_mqtt_uri mu;
    char uri_why[160];
    if (pdm_mqtt_uri_parse(s.uri, &mu, uri_why, sizeof(uri_why)) != 0) {
        fprintf(stderr, "pdmctl subscribe: --uri %s: %s (expected mqtts://HOST:PORT)\n", s.uri,
                uri_why);
        return PDMCTL_EXIT_USAGE;
    }
    if (!mu.tls && !allow_plaintext) {
        fprintf(stderr,
                "pdmctl subscribe: plain-text MQTT refused for URI %s: use mqtts:// or add "
                "--allow-plaintext\n",
                s.uri);
        return PDMCTL_EXIT_USAGE;
    }
    int tls = mu.tls;
    const char *paho_uri = mu.paho;
    snprintf(s.hostport, sizeof(s.hostport), "%s", mu.hostport);
    if (tls) {
        const char *files[][2] = {{"--ca", ca}, {"--cert", cert}, {"--key", key}};
        for (int k = 0; k < 3; k++) {
            if (!files[k][1]) {
                fprintf(stderr, "pdmctl subscribe: %s FILE is required for mqtts://\n",
                        files[k][0]);
                return PDMCTL_EXIT_USAGE;
            }
            if (access(files[k][1], R_OK) != 0) {
                fprintf(stderr, "pdmctl subscribe: %s %s: %s\n", files[k][0], files[k][1],
                        strerror(errno));
                return PDMCTL_EXIT_USAGE;
            }
        }
    }
    if (s.save_dir) {
        struct stat st;
        if (stat(s.save_dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
            fprintf(stderr, "pdmctl subscribe: --save %s: not a directory\n", s.save_dir);
            return PDMCTL_EXIT_USAGE;
        }
    }
    char default_id[64];
    if (!client_id) {
        snprintf(default_id, sizeof(default_id), "pdmctl-sub-%ld", (long)getpid());
        client_id = default_id;
    }

    if (pipe(s.wake) != 0) {
        fprintf(stderr, "pdmctl subscribe: pipe: %s\n", strerror(errno));
        return PDMCTL_EXIT_FAIL;
    }
    fcntl(s.wake[0], F_SETFL, O_NONBLOCK);
    fcntl(s.wake[1], F_SETFL, O_NONBLOCK);
    pthread_mutex_init(&s.mu, NULL);
    wake_fd = s.wake[1];
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    int exit_code = PDMCTL_EXIT_FAIL;
    MQTTAsync_createOptions cro = MQTTAsync_createOptions_initializer;
    cro.MQTTVersion = MQTTVERSION_3_1_1;
    char why[200];
    if (pdm_paho_create(&paho, paho_uri, client_id, &cro, why, sizeof(why)) != 0) {
        fprintf(stderr, "pdmctl subscribe: MQTT client for %s: %s\n", s.uri, why);
        goto out;
    }
    MQTTAsync_setCallbacks(paho.client, &s, on_connection_lost, on_message, NULL);

    MQTTAsync_connectOptions co = MQTTAsync_connectOptions_initializer;
    MQTTAsync_SSLOptions ssl = MQTTAsync_SSLOptions_initializer;
    co.keepAliveInterval = 30;
    co.cleansession = keep_session ? 0 : 1;
    co.connectTimeout = 10;
    co.MQTTVersion = MQTTVERSION_3_1_1;
    co.onSuccess = on_connected;
    co.onFailure = on_connect_failed;
    co.context = &s;
    if (tls) {
        ssl.trustStore = ca;
        ssl.keyStore = cert;
        ssl.privateKey = key;
        ssl.enableServerCertAuth = 1;
        ssl.verify = 1;
        ssl.disableDefaultTrustStore = 1;
        ssl.ssl_error_cb = on_ssl_error;
        ssl.ssl_error_context = &s;
        co.ssl = &ssl;
    }
    int rc = MQTTAsync_connect(paho.client, &co);
    if (rc != MQTTASYNC_SUCCESS) {
        fprintf(stderr, "pdmctl subscribe: cannot start connecting to %s: %s\n", s.uri,
                MQTTAsync_strerror(rc));
        goto out;
    }

    /* in 64 bits: long is 32-bit on armhf, and 2147484 s (24.9 days) of ms overflow it */
    int64_t deadline = timeout_s ? mono_ms() + (int64_t)timeout_s * 1000 : 0;
    for (;;) {
        pthread_mutex_lock(&s.mu);
        int done = s.done, failed = s.failed;
        long got = s.received;
        pthread_mutex_unlock(&s.mu);
        if (failed) {
            fprintf(stderr, "pdmctl subscribe: %s\n", s.reason);
            break;
        }
        if (done) {
            exit_code = PDMCTL_EXIT_OK;
            break;
        }
        if (stop_signal) {
            fprintf(stderr, "pdmctl subscribe: stopped by signal %d after %ld messages\n",
                    (int)stop_signal, got);
            exit_code = PDMCTL_EXIT_OK;
            break;
        }
        int wait_ms = -1;
        if (deadline) {
            int64_t left = deadline - mono_ms();
            if (left <= 0) {
                if (s.count)
                    fprintf(
                        stderr,
                        "pdmctl subscribe: timed out after %ld s: %ld of %ld messages received\n",
                        timeout_s, got, s.count);
                else
                    fprintf(stderr, "pdmctl subscribe: %ld s are up: %ld messages received\n",
                            timeout_s, got);
                exit_code = s.count ? PDMCTL_EXIT_FAIL : PDMCTL_EXIT_OK;
                break;
            }
            wait_ms = left > INT_MAX ? INT_MAX : (int)left;
        }
        struct pollfd pfd = {.fd = s.wake[0], .events = POLLIN};
        if (poll(&pfd, 1, wait_ms) > 0) {
            char buf[64];
            while (read(s.wake[0], buf, sizeof(buf)) > 0) {
            }
        }
    }

out:
    /* a clean DISCONNECT (the broker logs no unexpected loss), Paho's answer awaited, then the
     * client destroyed: no callback runs after this, and none can race the exit (lib/paho.h) */
    pdm_paho_destroy(&paho, 1000);
    wake_fd = -1;
    close(s.wake[0]);
    close(s.wake[1]);
    pthread_mutex_destroy(&s.mu);
    fflush(stdout);
    return exit_code;
}
