/* pdmctl baseline: makes the running agent learn an asset's healthy baseline (agent/baseline.h)
 * over its control socket, waits for the end and prints what it learned. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/baseline.h"
#include "lib/clock.h"
#include "agent/config.h"
#include "agent/control.h"
#include "cli.h"
#include "pdmctl.h"

#define POLL_MS  500   /* how often the learning state is asked for */
#define GRACE_MS 30000 /* beyond the learning time: the agent's loop may be late, not more */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: pdmctl baseline ASSET (--minutes N | --seconds N) [--force] [--no-wait]\n"
            "                      [-c FILE | --socket PATH]\n"
            "       pdmctl baseline ASSET --show [-c FILE | --socket PATH]\n\n"
            "Makes the running pdm-agent learn, over the next N minutes, the healthy center\n"
            "(mean) and scale (standard deviation, at least %g x the model file's scale) of each\n"
            "windowed input of ASSET's model, from the window statistics the model scores. The\n"
            "agent stores it in {data_dir}/baselines/ASSET.baseline, bound to the model id and\n"
            "inputs, and uses it when the model file says `baseline = asset`. Learn while the\n"
            "machine runs normally: an asset with an open alert is refused unless --force, and\n"
            "an alert raised while learning discards it.\n\n"
            "  --minutes N       learning time, may be fractional (0.5 = 30 s); 1 s to 7 days\n"
            "  --seconds N       the same in seconds\n"
            "  --force           learn even though the asset has an open alert\n"
            "  --no-wait         return once learning started (see it later with --show)\n"
            "  --show            print the asset's baseline state and stored values\n"
            "  -c, --config FILE the agent's configuration: the socket is in its data_dir\n"
            "  --socket PATH     the control socket itself (default "
            "/var/lib/pdm-agent/" PDM_CONTROL_SOCK_NAME ")\n\n"
            "exit status: 0 learned (or started, with --no-wait), 1 refused or failed (the reason\n"
            "is printed), 2 bad arguments, 78 the configuration given with -c has errors\n",
            PDM_BASELINE_FLOOR);
}

/* The value of "key rest" in the describe answer, or NULL. */
static const char *field(const char *buf, const char *key, char *out, size_t len)
{
    size_t kl = strlen(key);
    for (const char *p = buf; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        if (strncmp(p, key, kl) == 0 && p[kl] == ' ') {
            const char *e = strchr(p, '\n');
            size_t n = e ? (size_t)(e - p - kl - 1) : strlen(p + kl + 1);
            if (n >= len)
                n = len - 1;
            memcpy(out, p + kl + 1, n);
            out[n] = '\0';
            return out;
        }
    }
    return NULL;
}

static void print_state(const char *buf)
{
    char v[1100], model[80] = "?", asset[80] = "?", used[16] = "?", mode[16] = "?";
    field(buf, "asset", asset, sizeof(asset));
    field(buf, "model", model, sizeof(model));
    field(buf, "in_use", used, sizeof(used));
    field(buf, "model_baseline", mode, sizeof(mode));
    printf("asset %s, model %s (baseline = %s): scoring with the %s constants\n", asset, model,
           mode, strcmp(used, "asset") == 0 ? "asset's learned" : "fleet");
    if (field(buf, "note", v, sizeof(v)))
        printf("  %s\n", v);
    if (field(buf, "learned_s", v, sizeof(v)))
        printf("stored baseline, learned over %s s:\n", v);
    int header = 0;
    for (const char *p = buf; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        if (strncmp(p, "input ", 6) != 0)
            continue;
        char name[40], stat[16];
        double win, center, scale, sd, fc, fs;
        unsigned long long n;
        if (sscanf(p + 6, "%39s %15s %lf %lf %lf %lf %llu %lf %lf", name, stat, &win, &center,
                   &scale, &sd, &n, &fc, &fs) != 9)
            continue;
        if (!header++)
            printf("  %-16s %-5s %8s %12s %12s %12s %6s %12s %12s\n", "input", "stat", "window_s",
                   "center", "scale", "sd", "evals", "fleet center", "fleet scale");
        printf("  %-16s %-5s %8g %12.6g %12.6g %12.4g %6llu %12.6g %12.6g%s\n", name, stat, win,
               center, scale, sd, n, fc, fs, scale > sd ? "  (scale floor)" : "");
    }
}

int cmd_baseline(int argc, char **argv)
{
    enum { O_SOCKET = 256, O_MIN, O_SEC, O_FORCE, O_NOWAIT, O_SHOW, O_HELP };
    static const struct option longopts[] = {
        {"config", required_argument, 0, 'c'},
        {"socket", required_argument, 0, O_SOCKET},
        {"minutes", required_argument, 0, O_MIN},
        {"seconds", required_argument, 0, O_SEC},
        {"force", no_argument, 0, O_FORCE},
        {"no-wait", no_argument, 0, O_NOWAIT},
        {"show", no_argument, 0, O_SHOW},
        {"help", no_argument, 0, O_HELP},
        {0, 0, 0, 0},
    };
    const char *conf = NULL, *sock = NULL;
    double seconds = NAN;
    int force = 0, nowait = 0, show = 0, c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":c:h", longopts, NULL)) != -1) {
        double v;
        switch (c) {
        case 'c':
            conf = optarg;
            break;
        case O_SOCKET:
            sock = optarg;
            break;
        case O_MIN:
        case O_SEC:
            if (pdmctl_parse_positive("baseline", c == O_MIN ? "--minutes" : "--seconds", optarg,
                                      &v) != 0)
                return PDMCTL_EXIT_USAGE;
            seconds = c == O_MIN ? v * 60.0 : v;
            break;
        case O_FORCE:
            force = 1;
            break;
        case O_NOWAIT:
            nowait = 1;
            break;
        case O_SHOW:
            show = 1;
            break;
        case 'h':
        case O_HELP:
            usage(stdout);
            return PDMCTL_EXIT_OK;
        default: /* ':' a value is missing, '?' unknown */
            return pdmctl_cli_bad_option("baseline", c, argv, usage);
        }
    }
    if (optind + 1 != argc) {
        fprintf(stderr, "pdmctl baseline: %s (try: pdmctl baseline --help)\n",
                optind >= argc ? "name the asset" : "one asset at a time");
        return PDMCTL_EXIT_USAGE;
    }
    const char *asset = argv[optind];
    if (strlen(asset) > PDM_NAME_MAX || strpbrk(asset, " \t\r\n")) {
        fprintf(stderr, "pdmctl baseline: '%s' is not an asset name\n", asset);
        return PDMCTL_EXIT_USAGE;
    }
    if (!show && isnan(seconds)) {
        fprintf(stderr, "pdmctl baseline: give --minutes N or --seconds N (or --show)\n");
        return PDMCTL_EXIT_USAGE;
    }
    if (conf && sock) {
        fprintf(stderr, "pdmctl baseline: give -c FILE or --socket PATH, not both\n");
        return PDMCTL_EXIT_USAGE;
    }
    static char path[PDM_PATH_MAX + 32];
    if (pdmctl_socket_path(conf, sock, path, sizeof(path)) != 0)
        return PDMCTL_EXIT_CONFIG;

    static char buf[16384];
    char req[PDM_CONTROL_REQ_MAX], err[PDM_PATH_MAX + 512];
    if (!show) {
        snprintf(req, sizeof(req), "baseline %s %.17g%s", asset, seconds, force ? " force" : "");
        if (pdmctl_control_query(path, req, buf, sizeof(buf), err, sizeof(err)) != 0) {
            fprintf(stderr, "pdmctl baseline: %s\n", err);
            return PDMCTL_EXIT_FAIL;
        }
        fputs(strncmp(buf, "ok: ", 4) == 0 ? buf + 4 : buf, stdout);
        fflush(stdout);
        if (nowait)
            return PDMCTL_EXIT_OK;
    }

    snprintf(req, sizeof(req), "baseline-show %s", asset);
    int64_t deadline = pdm_mono_ms() + (show ? 0 : (int64_t)(seconds * 1000.0)) + GRACE_MS;
    char state[32] = "";
    for (;;) {
        if (pdmctl_control_query(path, req, buf, sizeof(buf), err, sizeof(err)) != 0) {
            fprintf(stderr, "pdmctl baseline: %s\n", err);
            return PDMCTL_EXIT_FAIL;
        }
        field(buf, "state", state, sizeof(state));
        if (show || strcmp(state, "learning") != 0)
            break;
        if (pdm_mono_ms() > deadline) {
            fprintf(stderr,
                    "pdmctl baseline: the agent still reports learning %.0f s after the end; "
                    "see pdmctl baseline %s --show later\n",
                    GRACE_MS / 1000.0, asset);
            return PDMCTL_EXIT_FAIL;
        }
        struct timespec ts = {.tv_sec = 0, .tv_nsec = POLL_MS * 1000000L};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
            ;
    }
    char msg[1100];
    if (strcmp(state, "failed") == 0) {
        fprintf(stderr, "pdmctl baseline: learning failed: %s\n",
                field(buf, "message", msg, sizeof(msg)) ? msg : "(no reason given)");
        if (!show)
            return PDMCTL_EXIT_FAIL;
    }
    if (strcmp(state, "learning") == 0) {
        char prog[64];
        double done, total;
        if (field(buf, "progress", prog, sizeof(prog)) &&
            sscanf(prog, "%lf %lf", &done, &total) == 2)
            printf("learning: %.0f of %.0f s done\n", done, total);
    }
    print_state(buf);
    return PDMCTL_EXIT_OK;
}
