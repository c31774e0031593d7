/* pdmctl decode TYPE [FILE|-] [--json]
 *
 * Prints one payload (the raw protobuf bytes of an MQTT message, e.g. saved by
 * `pdmctl subscribe --save`) field by field, or as one JSON object. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "pdmctl.h"
#include "print.h"

#define DECODE_MAX_BYTES (64u << 20) /* refuse anything larger than any agent message */

static void usage(FILE *f)
{
    fprintf(f, "usage: pdmctl decode TYPE [FILE|-] [--json]\n"
               "  Reads one payload (raw protobuf bytes) from FILE, or stdin when FILE is - or\n"
               "  missing, and prints every field (protobuf text format), or with --json one\n"
               "  compact JSON object. TYPE is the topic's last part:\n"
               "    from the agent: alert, telemetry, status, cmd_result (an answer to a\n"
               "      command), report (a check-up report)\n"
               "    commands to it (.../cmd/NAME): model (a signed model update from pdmctl\n"
               "      sign-model), baseline, ack, service, status_request (cmd/status),\n"
               "      report_request (cmd/report)\n");
}

/* Reads all of f into a malloc'd buffer. 0 or -errno (-EFBIG beyond DECODE_MAX_BYTES). */
static int slurp(FILE *f, uint8_t **out, size_t *len)
{
    size_t cap = 4096, n = 0;
    uint8_t *buf = malloc(cap);
    if (!buf)
        return -ENOMEM;
    for (;;) {
        if (n == cap) {
            if (cap >= DECODE_MAX_BYTES) {
                free(buf);
                return -EFBIG;
            }
            uint8_t *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                return -ENOMEM;
            }
            buf = nb;
            cap *= 2;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0) {
            if (ferror(f)) {
                int e = errno ? errno : EIO;
                free(buf);
                return -e;
            }
            break;
        }
    }
    *out = buf;
    *len = n;
    return 0;
}

int cmd_decode(int argc, char **argv)
{
    const char *type = NULL, *path = NULL;
    int json = 0;
    enum { O_JSON = 256, O_HELP };
    static const struct option longopts[] = {
        {"json", no_argument, 0, O_JSON},
        {"help", no_argument, 0, O_HELP},
        {0, 0, 0, 0},
    };
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (c) {
        case O_JSON:
            json = 1;
            break;
        case 'h':
        case O_HELP:
            usage(stdout);
            return PDMCTL_EXIT_OK;
        default: /* ':' a value is missing, '?' unknown */
            return pdmctl_cli_bad_option("decode", c, argv, usage);
        }
    }
    for (int i = optind; i < argc; i++) {
        if (!type) {
            type = argv[i];
        } else if (!path) {
            path = argv[i];
        } else {
            fprintf(stderr, "pdmctl decode: unexpected argument '%s'\n", argv[i]);
            usage(stderr);
            return PDMCTL_EXIT_USAGE;
        }
    }
    if (!type) {
        fprintf(stderr, "pdmctl decode: which message type? (TYPE below)\n");
        usage(stderr);
        return PDMCTL_EXIT_USAGE;
    }
    enum pdm_msg_type t = pdm_msg_type_from_name(type);
    if (t == PDM_MSG_OTHER) {
        fprintf(stderr, "pdmctl decode: unknown message type '%s'\n", type);
        usage(stderr);
        return PDMCTL_EXIT_USAGE;
    }

    FILE *in = stdin;
    const char *name = "stdin";
    if (path && strcmp(path, "-") != 0) {
        in = fopen(path, "rb");
        if (!in) {
            fprintf(stderr, "pdmctl decode: cannot open %s: %s\n", path, strerror(errno));
            return PDMCTL_EXIT_FAIL;
        }
        name = path;
    }
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = slurp(in, &buf, &len);
    if (in != stdin)
        fclose(in);
    if (rc != 0) {
        fprintf(stderr, "pdmctl decode: cannot read %s: %s\n", name, strerror(-rc));
        return PDMCTL_EXIT_FAIL;
    }
    if (len == 0) {
        fprintf(stderr, "pdmctl decode: %s is empty: not a valid %s payload (0 bytes)\n", name,
                pdm_msg_proto_name(t));
        free(buf);
        return PDMCTL_EXIT_FAIL;
    }
    rc = pdm_print_payload(stdout, t, NULL, buf, len, json ? PDM_PRINT_JSON : PDM_PRINT_FULL);
    free(buf);
    if (rc != 0) {
        fprintf(stderr, "pdmctl decode: %s: not a valid %s payload (%zu bytes)\n", name,
                pdm_msg_proto_name(t), len);
        return PDMCTL_EXIT_FAIL;
    }
    return fflush(stdout) == 0 ? PDMCTL_EXIT_OK : PDMCTL_EXIT_FAIL;
}
