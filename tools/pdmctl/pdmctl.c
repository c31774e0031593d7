/* pdmctl: the field engineer's and the backend developer's tool for pdm-agent. */
#include <stdio.h>
#include <string.h>

#include "pdmctl.h"

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} commands[] = {
    {"baseline", cmd_baseline,
     "make the running agent learn an asset's healthy baseline (center/scale per input)"},
    {"buffer", cmd_buffer,
     "show the agent's buffer (rows, alerts, delivered and dropped totals) from its database"},
    {"check", cmd_check,
     "check a site: the config, one read of every sensor, the broker's TLS certificates"},
    {"decode", cmd_decode,
     "decode an alert, telemetry, status, cmd_result or model payload as text or JSON"},
    {"eval", cmd_eval,
     "score a labelled CSV with a model: ROC-AUC, AP, F1, calibration; k-fold cross-validation"},
    {"enroll", cmd_enroll,
     "on the device: make its EC key (owner-only) and a certificate request for its CA"},
    {"keygen", cmd_keygen, "make the backend's key pair for signing model updates"},
    {"publish", cmd_publish, "publish a message (a command) over TLS and print the agent's answer"},
    {"read", cmd_read, "read registers once from a Modbus device, decoded in every word order"},
    {"report", cmd_report,
     "a check-up report of one asset from the buffer: HTML page with plots, or JSON"},
    {"scan", cmd_scan, "find the unit ids that answer on a serial line or Modbus TCP gateway"},
    {"sign-model", cmd_sign_model,
     "check and sign a model file: the ModelUpdate to publish on .../cmd/model"},
    {"status", cmd_status,
     "ask the running agent: values, model inputs, probability, alerts, buffer, broker"},
    {"subscribe", cmd_subscribe,
     "subscribe to the agent's topics over TLS and print decoded messages"},
    {"train", cmd_train, "fit a fault model to a labelled CSV and write a model file"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: pdmctl COMMAND [ARGS...]\n"
               "       pdmctl COMMAND --help\n\n"
               "commands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(f, "  %-11s %s\n", commands[i].name, commands[i].summary);
    fprintf(f,
            "\nexit status: 0 ok, 1 operation failed, 2 bad command line, 78 bad configuration\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return PDMCTL_EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return PDMCTL_EXIT_OK;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("pdmctl %s\n", PDM_VERSION);
        return PDMCTL_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "pdmctl: unknown command '%s' (try: pdmctl --help)\n", argv[1]);
    return PDMCTL_EXIT_USAGE;
}
