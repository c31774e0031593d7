/* pdmctl status: asks the running agent over its control socket (agent/control.h) what it sees
 * now, and prints the answer as is: text tables, or one JSON object with --json. */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "lib/clock.h"
#include "agent/config.h"
#include "agent/control.h"
#include "cli.h"
#include "pdmctl.h"

#define DEFAULT_SOCKET "/var/lib/pdm-agent/" PDM_CONTROL_SOCK_NAME
#define IO_TIMEOUT_MS  5000      /* the agent answers from its loop: well under a second */
#define RESP_MAX       (1 << 20) /* bytes: far above what any config produces */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: pdmctl status [-c FILE | --socket PATH] [--json] [--watch [SECONDS]]\n\n"
            "Asks the running pdm-agent what it sees now, over its control socket\n"
            "({data_dir}/" PDM_CONTROL_SOCK_NAME ", owner-only: run as the agent's user or root):\n"
            "every sensor's last value and errors, each asset's model inputs (value, baseline\n"
            "center with its source, asset or fleet, z, contribution), fault probability,\n"
            "health and alert, the buffer, the broker\n"
            "connection and the recent errors.\n\n"
            "  -c, --config FILE   the agent's configuration: the socket is in its data_dir\n"
            "  --socket PATH       the socket itself (default " DEFAULT_SOCKET ")\n"
            "  --json              one JSON object instead of tables\n"
            "  --watch [SECONDS]   refresh in place every SECONDS (1..3600, default 2) until "
            "Ctrl-C\n\n"
            "exit status: 0 ok, 1 no agent answers (or it answered an error), 2 bad arguments,\n"
            "78 the configuration given with -c has errors\n");
}

/* One request, the whole response into buf (NUL-terminated). 0, or -1 with a message in err. */
static int query(const char *path, int json, char *buf, size_t cap, char *err, size_t errlen)
{
    return pdmctl_control_query(path, json ? "status json" : "status", buf, cap, err, errlen);
}

int pdmctl_control_query(const char *path, const char *request, char *buf, size_t cap, char *err,
                         size_t errlen)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path)) {
        snprintf(err, errlen, "%.200s: path too long for a UNIX socket", path);
        return -1;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        int e = errno;
        if (e == ECONNREFUSED || e == ENOENT)
            snprintf(err, errlen, "no agent answers on %s: is pdm-agent running? (%s)", path,
                     e == ENOENT ? "no such socket" : "connection refused");
        else if (e == EACCES || e == EPERM)
            snprintf(err, errlen,
                     "%s: permission denied: the socket is owner-only (0600); run pdmctl as the "
                     "agent's user or as root",
                     path);
        else
            snprintf(err, errlen, "cannot connect to %s: %s", path, strerror(e));
        close(fd);
        return -1;
    }
    char req[PDM_CONTROL_REQ_MAX];
    int rl = snprintf(req, sizeof(req), "%s\n", request);
    if (rl < 0 || (size_t)rl >= sizeof(req)) {
        snprintf(err, errlen, "request longer than %d bytes", PDM_CONTROL_REQ_MAX - 1);
        close(fd);
        return -1;
    }
    if (send(fd, req, (size_t)rl, MSG_NOSIGNAL) != (ssize_t)rl) {
        snprintf(err, errlen, "%s: cannot send the request: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    size_t len = 0;
    int64_t deadline = pdm_mono_ms() + IO_TIMEOUT_MS;
    for (;;) {
        int64_t left = deadline - pdm_mono_ms();
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (left <= 0 || poll(&p, 1, (int)left) == 0) {
            snprintf(err, errlen, "%s: the agent did not answer within %d ms", path, IO_TIMEOUT_MS);
            close(fd);
            return -1;
        }
        if (len + 1 >= cap) {
            snprintf(err, errlen, "%s: answer longer than %zu bytes", path, cap);
            close(fd);
            return -1;
        }
        ssize_t r = recv(fd, buf + len, cap - 1 - len, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            snprintf(err, errlen, "%s: %s", path, strerror(errno));
            close(fd);
            return -1;
        }
        if (r == 0)
            break;
        len += (size_t)r;
    }
    close(fd);
    buf[len] = '\0';
    if (len == 0) {
        snprintf(err, errlen, "%s: the agent closed the connection without an answer", path);
        return -1;
    }
    if (strncmp(buf, "error: ", 7) == 0) {
        char *nl = strchr(buf, '\n');
        if (nl)
            *nl = '\0';
        snprintf(err, errlen, "the agent answered: %.200s", buf + 7);
        return -1;
    }
    return 0;
}

int pdmctl_socket_path(const char *conf, const char *sock, char *path, size_t len)
{
    snprintf(path, len, "%s", sock ? sock : DEFAULT_SOCKET);
    if (conf) {
        static struct pdm_config cfg; /* large; once */
        struct pdm_diag diag = {.out = stderr};
        int errors = pdm_config_load(conf, &cfg, &diag);
        if (errors > 0) {
            fprintf(stderr, "%s: %d error%s in the configuration; cannot find the agent's socket\n",
                    conf, errors, errors == 1 ? "" : "s");
            pdm_config_free(&cfg);
            return -1;
        }
        snprintf(path, len, "%s/%s", cfg.data_dir, PDM_CONTROL_SOCK_NAME);
        pdm_config_free(&cfg);
    }
    return 0;
}

int cmd_status(int argc, char **argv)
{
    enum { O_SOCKET = 256, O_JSON, O_WATCH, O_HELP };
    static const struct option longopts[] = {
        {"config", required_argument, 0, 'c'}, {"socket", required_argument, 0, O_SOCKET},
        {"json", no_argument, 0, O_JSON},      {"watch", optional_argument, 0, O_WATCH},
        {"help", no_argument, 0, O_HELP},      {0, 0, 0, 0},
    };
    const char *conf = NULL, *sock = NULL;
    int json = 0, watch = 0, c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":c:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'c':
            conf = optarg;
            break;
        case O_SOCKET:
            sock = optarg;
            break;
        case O_JSON:
            json = 1;
            break;
        case O_WATCH:
            watch = 2;
            /* "--watch 5" as well as "--watch=5": take a following number as the interval */
            if (!optarg && optind < argc && argv[optind][0] >= '0' && argv[optind][0] <= '9')
                optarg = argv[optind++];
            if (optarg) {
                int64_t v;
                if (pdmctl_parse_i64("status", "--watch", "seconds", optarg, 1, 3600, &v) < 0)
                    return PDMCTL_EXIT_USAGE;
                watch = (int)v;
            }
            break;
        case 'h':
        case O_HELP:
            usage(stdout);
            return PDMCTL_EXIT_OK;
        default: /* ':' a value is missing, '?' unknown */
            return pdmctl_cli_bad_option("status", c, argv, usage);
        }
    }
    if (optind < argc)
        return pdmctl_cli_extra_arg("status", argv[optind], usage);
    if (conf && sock) {
        fprintf(stderr, "pdmctl status: give -c FILE or --socket PATH, not both\n");
        return PDMCTL_EXIT_USAGE;
    }

    static char path[PDM_PATH_MAX + 32];
    if (pdmctl_socket_path(conf, sock, path, sizeof(path)) != 0)
        return PDMCTL_EXIT_CONFIG;

    static char buf[RESP_MAX];
    char err[PDM_PATH_MAX + 256];
    if (!watch) {
        if (query(path, json, buf, sizeof(buf), err, sizeof(err)) != 0) {
            fprintf(stderr, "pdmctl status: %s\n", err);
            return PDMCTL_EXIT_FAIL;
        }
        fputs(buf, stdout);
        return PDMCTL_EXIT_OK;
    }
    for (;;) { /* until Ctrl-C; an agent that goes away is retried, not fatal */
        int rc = query(path, json, buf, sizeof(buf), err, sizeof(err));
        /* cursor home + clear: one screen, redrawn in place */
        fputs("\033[H\033[2J", stdout);
        if (rc == 0)
            fputs(buf, stdout);
        else
            printf("pdmctl status: %s\n", err);
        printf("\n(refreshing every %d s; Ctrl-C to stop)\n", watch);
        fflush(stdout);
        struct timespec ts = {.tv_sec = watch};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
            ;
    }
}
