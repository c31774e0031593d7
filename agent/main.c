/* pdm-agent: the predictive-maintenance daemon. Command line only; the work is in agent.c. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "config.h"
#include "lib/log.h"

#define EX_OK     0
#define EX_USAGE  64 /* bad command line (sysexits.h) */
#define EX_CONFIG 78 /* bad configuration: systemd should not restart us (sysexits.h) */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: pdm-agent -c FILE [--check]\n"
            "\n"
            "Samples sensors over Modbus, scores a logistic fault-probability model per asset,\n"
            "buffers readings and alerts in SQLite and publishes them over mutual-TLS MQTT.\n"
            "\n"
            "  -c, --config FILE  configuration file (default /etc/pdm-agent/agent.conf)\n"
            "  -n, --check        validate the configuration, its model files and certificate\n"
            "                     files, print every problem as FILE:LINE: section.key: reason,\n"
            "                     and exit (0 = configuration OK, 78 = errors)\n"
            "  -h, --help         this text\n"
            "  -V, --version      print the version\n"
            "\n"
            "Runs in the foreground and logs to stderr with syslog priority prefixes (<3> error,\n"
            "<4> warning, <6> info, <7> debug). SIGTERM or SIGINT stop it cleanly.\n"
            "Exit status: 0 clean stop, 1 runtime failure, 64 bad command line, 78 bad "
            "configuration.\n");
}

int main(int argc, char **argv)
{
    const char *path = "/etc/pdm-agent/agent.conf";
    int check = 0;
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"check", no_argument, NULL, 'n'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "c:nhV", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            path = optarg;
            break;
        case 'n':
            check = 1;
            break;
        case 'h':
            usage(stdout);
            return EX_OK;
        case 'V':
            printf("pdm-agent %s\n", PDM_VERSION);
            return EX_OK;
        default:
            usage(stderr);
            return EX_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "pdm-agent: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return EX_USAGE;
    }

    static struct pdm_config cfg;
    /* --check is read by a person at a terminal; the daemon's stderr goes to journald, which
     * files a line without a priority prefix at info, out of sight of journalctl -p warning */
    struct pdm_diag diag = {.out = stderr, .errors = 0, .priority = check ? 0 : PDM_LOG_ERROR};
    int errors = pdm_config_load(path, &cfg, &diag);
    if (errors > 0) {
        if (check)
            fprintf(stderr, "%s: %d error%s in the configuration; not OK\n", path, errors,
                    errors == 1 ? "" : "s");
        else
            pdm_err("%s: %d error%s in the configuration; the agent does not start", path, errors,
                    errors == 1 ? "" : "s");
        pdm_config_free(&cfg);
        return EX_CONFIG;
    }
    if (check) {
        printf("configuration OK\n");
        pdm_config_free(&cfg);
        return EX_OK;
    }
    pdm_log_set_level(cfg.log_level);
    int status = pdm_agent_run(&cfg);
    pdm_config_free(&cfg);
    return status;
}
