/* Command-line options shared by the pdmctl subcommands that talk to a Modbus line directly
 * (read, scan): --tcp HOST[:PORT] | --rtu DEVICE [--baud N --parity N|E|O --data-bits 7|8
 * --stop-bits 1|2], parsed into a pdm_bus_cfg the drivers take as it is. */
#ifndef PDMCTL_BUSARGS_H
#define PDMCTL_BUSARGS_H

#include <getopt.h>

#include "agent/config.h"
#include "cli.h"

/* getopt_long values of the bus options; a subcommand numbers its own from PDMCTL_O_BUS_END. */
enum {
    PDMCTL_O_TCP = 256,
    PDMCTL_O_RTU,
    PDMCTL_O_BAUD,
    PDMCTL_O_PARITY,
    PDMCTL_O_DATA,
    PDMCTL_O_STOP,
    PDMCTL_O_BUS_END
};

#define PDMCTL_BUS_LONGOPTS                                                                        \
    {"tcp", required_argument, 0, PDMCTL_O_TCP}, {"rtu", required_argument, 0, PDMCTL_O_RTU},      \
        {"baud", required_argument, 0, PDMCTL_O_BAUD},                                             \
        {"parity", required_argument, 0, PDMCTL_O_PARITY},                                         \
        {"data-bits", required_argument, 0, PDMCTL_O_DATA},                                        \
    {                                                                                              \
        "stop-bits", required_argument, 0, PDMCTL_O_STOP                                           \
    }

struct pdmctl_bus_args {
    struct pdm_bus_cfg bc; /* about 1.4 KiB: keep the struct static in the caller */
    int have_tcp, have_rtu, serial_opt;
};

/* Defaults: 9600 8N1, the given response timeout, port 502 for --tcp without a port. */
void pdmctl_bus_args_init(struct pdmctl_bus_args *b, int timeout_ms);
/* Takes option opt with its argument. Returns 1 when it was a bus option and is stored, 0 when
 * opt is not a bus option, -1 when the value is wrong (the reason is printed, prefixed with
 * "pdmctl CMD: "). */
int pdmctl_bus_option(const char *cmd, int opt, const char *arg, struct pdmctl_bus_args *b);
/* After the options: NULL when they make one bus, else what is wrong (for a usage message). */
const char *pdmctl_bus_problem(const struct pdmctl_bus_args *b);

/* pdmctl_parse_int(): cli.h */
#endif
