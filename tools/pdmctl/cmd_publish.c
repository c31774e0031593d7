/* pdmctl publish: sends one message as the backend would (TLS, client certificate, QoS 1) and,
 * with --wait, prints the agent's CommandResult for it.
 *
 * Built on the agent's own uplink (agent/uplink.c): the same TLS checks, and the answers come
 * through its bounded message queue. The answer is matched to the command by request_id (field
 * 1 of the payload). On a device topic ({prefix}/{device}/cmd/{name}) it waits for that device's
 * answer; on the fleet topic it collects answers from every device until --wait runs out. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent/command.h"
#include "agent/config.h"
#include "agent/uplink.h"
#include "cli.h"
#include "keyfile.h"
#include "lib/fileio.h"
#include "pdm/v1/pdm.pb-c.h"
#include "pdmctl.h"
#include "print.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: pdmctl publish --uri mqtts://HOST:PORT --ca FILE --cert FILE --key FILE\n"
            "                      --topic TOPIC (--file FILE | --message TEXT) [--retain]\n"
            "                      [--wait SECONDS] [--json]\n"
            "  Publishes one message with QoS 1 (e.g. an update from pdmctl sign-model on\n"
            "  pdm/v1/gw-0001/cmd/model). --wait S: for a command topic ({prefix}/{device}/cmd/\n"
            "  NAME or {prefix}/fleet/cmd/NAME), subscribe to the answers first and print the\n"
            "  CommandResult with the payload's request_id: exit 0 when it says ok, 1 when\n"
            "  refused or when none came within S seconds. On the fleet topic every device's\n"
            "  answer within S seconds is printed. --retain: the broker keeps the message for\n"
            "  devices that connect later (useful for fleet model updates).\n");
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Next uplink event within the deadline: 1, or 0 when the time is up. */
static int next_event(struct pdm_uplink *u, int64_t deadline, struct pdm_uplink_event *ev)
{
    for (;;) {
        if (pdm_uplink_next_event(u, ev))
            return 1;
        int64_t left = deadline - mono_ms();
        if (left <= 0)
            return 0;
        struct pollfd p = {.fd = pdm_uplink_event_fd(u), .events = POLLIN};
        poll(&p, 1, left > 1000 ? 1000 : (int)left);
    }
}

/* {prefix}/{device}/cmd/NAME -> {prefix}/{device}/cmd_result; the fleet's -> {prefix}/+/...
 * Sets *fleet. 0, or -EINVAL when topic is not a command topic. */
static int result_filter(const char *topic, char *out, size_t len, int *fleet)
{
    const char *cmd = strstr(topic, "/cmd/");
    if (!cmd || cmd == topic || !cmd[5])
        return -EINVAL;
    const char *dev = cmd;
    while (dev > topic && dev[-1] != '/')
        dev--;
    *fleet = (size_t)(cmd - dev) == strlen(PDM_FLEET_ID) && !strncmp(dev, PDM_FLEET_ID, 5);
    int n = *fleet ? snprintf(out, len, "%.*s+/cmd_result", (int)(dev - topic), topic)
                   : snprintf(out, len, "%.*s/cmd_result", (int)(cmd - topic), topic);
    return n > 0 && (size_t)n < len ? 0 : -EINVAL;
}

int cmd_publish(int argc, char **argv)
{
    const char *uri = NULL, *ca = NULL, *cert = NULL, *key = NULL, *topic = NULL;
    const char *file = NULL, *message = NULL;
    long wait_s = 0;
    int retain = 0, json = 0, c;
    enum {
        O_URI = 256,
        O_CA,
        O_CERT,
        O_KEY,
        O_TOPIC,
        O_FILE,
        O_MESSAGE,
        O_RETAIN,
        O_WAIT,
        O_JSON,
        O_HELP
    };
    static const struct option longopts[] = {
        {"uri", required_argument, 0, O_URI},
        {"ca", required_argument, 0, O_CA},
        {"cert", required_argument, 0, O_CERT},
        {"key", required_argument, 0, O_KEY},
        {"topic", required_argument, 0, O_TOPIC},
        {"file", required_argument, 0, O_FILE},
        {"message", required_argument, 0, O_MESSAGE},
        {"retain", no_argument, 0, O_RETAIN},
        {"wait", required_argument, 0, O_WAIT},
        {"json", no_argument, 0, O_JSON},
        {"help", no_argument, 0, O_HELP},
        {0, 0, 0, 0},
    };
    optind = 1;
    opterr = 0;
    /* a value may start with '-' (--message -1): getopt takes the next word as it is */
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (c) {
        case O_URI:
            uri = optarg;
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
            topic = optarg;
            break;
        case O_FILE:
            file = optarg;
            break;
        case O_MESSAGE:
            message = optarg;
            break;
        case O_RETAIN:
            retain = 1;
            break;
        case O_WAIT: {
            int64_t v;
            if (pdmctl_parse_i64("publish", "--wait", "seconds", optarg, 1, 3600, &v) < 0)
                return PDMCTL_EXIT_USAGE;
            wait_s = (long)v;
            break;
        }
        case O_JSON:
            json = 1;
            break;
        case 'h':
        case O_HELP:
            usage(stdout);
            return PDMCTL_EXIT_OK;
        default: /* ':' a value is missing, '?' unknown */
            return pdmctl_cli_bad_option("publish", c, argv, usage);
        }
    }
    if (optind < argc)
        return pdmctl_cli_extra_arg("publish", argv[optind], usage);
    if (!uri || !topic || !file == !message) {
        fprintf(stderr, "pdmctl publish: --uri, --topic and one of --file or --message are "
                        "required\n");
        usage(stderr);
        return PDMCTL_EXIT_USAGE;
    }
    char filter[512];
    int fleet = 0;
    if (wait_s && result_filter(topic, filter, sizeof(filter), &fleet) != 0) {
        fprintf(stderr,
                "pdmctl publish: --wait: %s is not a command topic ({prefix}/{device}/cmd/"
                "NAME or {prefix}/fleet/cmd/NAME)\n",
                topic);
        return PDMCTL_EXIT_USAGE;
    }
    unsigned char *payload = NULL;
    size_t len = 0;
    if (file) {
        int rc = pdm_read_file(file, 64u << 20, &payload, &len);
        if (rc != 0) {
            fprintf(stderr, "pdmctl publish: cannot read %s: %s\n", file, strerror(-rc));
            return PDMCTL_EXIT_FAIL;
        }
    }
    const void *data = file ? (const void *)payload : (const void *)message;
    if (message)
        len = strlen(message);
    char rid[PDM_CMD_REQUEST_ID_MAX + 1];
    pdm_cmd_request_id(data, len, rid, sizeof(rid));

    char client_id[64];
    snprintf(client_id, sizeof(client_id), "pdmctl-pub-%ld", (long)getpid());
    const char *subs[] = {filter};
    struct pdm_uplink_cfg cfg = {
        .uri = uri,
        .client_id = client_id,
        .ca_file = ca,
        .cert_file = cert,
        .key_file = key,
        .max_inflight = 4,
        .subscriptions = subs,
        .n_subscriptions = wait_s ? 1 : 0,
    };
    struct pdm_uplink *u = NULL;
    char err[512];
    int code = PDMCTL_EXIT_FAIL;
    if (pdm_uplink_create(&u, &cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "pdmctl publish: %s\n", err);
        free(payload);
        return PDMCTL_EXIT_USAGE;
    }
    struct pdm_uplink_event ev;
    int64_t deadline = mono_ms() + 30000;
    pdm_uplink_connect(u);
    if (!next_event(u, deadline, &ev) || ev.type != PDM_UPLINK_CONNECTED) {
        fprintf(stderr, "pdmctl publish: %s\n", ev.reason[0] ? ev.reason : "no connection");
        goto out;
    }
    if (wait_s) {
        pdm_uplink_subscribe(u);
        if (!next_event(u, deadline, &ev) || ev.type != PDM_UPLINK_SUBSCRIBED) {
            fprintf(stderr, "pdmctl publish: %s\n", ev.reason[0] ? ev.reason : "not subscribed");
            goto out;
        }
    }
    int rc = pdm_uplink_publish(u, topic, data, len, 1, retain, 1);
    if (rc != 0) {
        fprintf(stderr, "pdmctl publish: cannot publish on %s: %s\n", topic, strerror(-rc));
        goto out;
    }
    int acked = 0, answers = 0, refused = 0;
    int64_t wait_end = 0;
    while (next_event(u, wait_end ? wait_end : deadline, &ev)) {
        if (ev.type == PDM_UPLINK_DELIVERED) {
            acked = 1;
            fprintf(stderr, "pdmctl publish: %zu bytes on %s%s, acknowledged by the broker\n", len,
                    topic, retain ? " (retained)" : "");
            if (!wait_s)
                break;
            wait_end = mono_ms() + wait_s * 1000;
        } else if (ev.type == PDM_UPLINK_SEND_FAILED || ev.type == PDM_UPLINK_CONNECTION_LOST) {
            fprintf(stderr, "pdmctl publish: not acknowledged: %s\n",
                    ev.reason[0] ? ev.reason : "the broker did not take it");
            break;
        } else if (ev.type == PDM_UPLINK_MESSAGE) {
            Pdm__V1__CommandResult *r =
                pdm__v1__command_result__unpack(NULL, ev.len, (const uint8_t *)ev.payload);
            int mine = r && strcmp(r->request_id, rid) == 0;
            if (mine) {
                answers++;
                refused += !r->ok;
                pdm_print_payload(stdout, PDM_MSG_CMD_RESULT, json ? ev.topic : NULL, ev.payload,
                                  ev.len, json ? PDM_PRINT_JSON : PDM_PRINT_LINE);
                fflush(stdout);
            }
            if (r)
                pdm__v1__command_result__free_unpacked(r, NULL);
            if (mine && !fleet)
                break;
        }
    }
    if (!acked)
        goto out;
    if (wait_s && !answers) {
        fprintf(stderr, "pdmctl publish: no answer with request_id '%s' within %ld s%s\n", rid,
                wait_s,
                rid[0] ? "" : " (the payload has no request_id: answers cannot be matched)");
        goto out;
    }
    code = refused ? PDMCTL_EXIT_FAIL : PDMCTL_EXIT_OK;
out:
    pdm_uplink_destroy(u);
    free(payload);
    return code;
}
