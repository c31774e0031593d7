/* pdmctl read: one read from a Modbus device, shown in every plausible interpretation.
 *
 * A field engineer rarely knows a device's word order for sure. This prints the raw registers
 * and, for every start address, each 32- and 64-bit type in the four orders side by side: the
 * plausible column (45.1 rather than 1.2e-38) names the order to put into agent.conf. It goes
 * through the agent's own driver, so errors read exactly as in the agent's log. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/config.h"
#include "drivers/driver.h"
#include "busargs.h"
#include "pdmctl.h"

#define MAX_COUNT 125  /* registers per Modbus read request */
#define MAX_BITS  2000 /* coils or discrete inputs per request */

static const char CMD[] = "read"; /* in messages: "pdmctl read: ..." */
static void usage(FILE *f)
{
    fprintf(f,
            "usage: pdmctl read (--tcp HOST[:PORT] | --rtu DEVICE [--baud N] [--parity N|E|O]\n"
            "                    [--data-bits 7|8] [--stop-bits 1|2])\n"
            "                   --unit N --address A [--count N]\n"
            "                   [--table holding|input|coil|discrete]\n"
            "                   [--timeout-ms N]\n\n"
            "Reads COUNT registers once and prints them raw (hex, u16, s16) and, from every start\n"
            "address, as u32 s32 float32 (and u64 s64 float64 when 4 registers remain) in the\n"
            "word orders ABCD CDAB BADC DCBA, side by side.\n\n"
            "  --tcp HOST[:PORT]   Modbus TCP device or gateway (port default 502)\n"
            "  --rtu DEVICE        serial port, e.g. /dev/ttyUSB0 (default 9600 8N1)\n"
            "  --unit N            unit (slave) id: 1..247 (TCP: 0..255)\n"
            "  --address A         first register, zero-based as on the wire (0..65535)\n"
            "  --count N           registers to read, 1..125 (default 2); bits: 1..2000\n"
            "  --table T           holding (function 3, default), input (function 4), coil\n"
            "                      (function 1) or discrete (function 2: discrete inputs)\n"
            "  --timeout-ms N      response timeout, 10..60000 (default 1000)\n\n"
            "exit status: 0 read ok, 1 the device did not answer or refused, 2 bad arguments\n");
}

static void print_value(enum pdm_reg_type t, enum pdm_word_order o, const uint16_t *regs)
{
    double v;
    int rc = pdm_reg_decode(t, o, regs, &v);
    char buf[40];
    if (rc == -ERANGE)
        snprintf(buf, sizeof(buf), "nan/inf");
    else if (rc < 0)
        snprintf(buf, sizeof(buf), "?");
    else if (t == PDM_TYPE_FLOAT32)
        snprintf(buf, sizeof(buf), "%.7g", v);
    else if (t == PDM_TYPE_FLOAT64)
        snprintf(buf, sizeof(buf), "%.15g", v);
    else
        snprintf(buf, sizeof(buf), "%.0f", v);
    printf(" %22s", buf);
}

static void print_result(const struct pdm_bus_cfg *bc, const struct pdm_read_req *req,
                         const uint16_t *regs)
{
    if (bc->driver == PDM_DRIVER_MODBUS_TCP)
        printf("%s:%d", bc->host, bc->port);
    else
        printf("%s", bc->device);
    if (pdm_reg_table_is_bits(req->table)) {
        printf(" unit %d, %s %d..%d (%d):\n\n", req->unit_id,
               req->table == PDM_TABLE_COIL ? "coils" : "discrete inputs", req->address,
               req->address + req->count - 1, req->count);
        printf("%7s  %s\n", "address", "value");
        for (int i = 0; i < req->count; i++)
            printf("%7d  %s\n", req->address + i, regs[i] ? "1 (on)" : "0 (off)");
        return;
    }
    printf(" unit %d, %s registers %d..%d (%d):\n\n", req->unit_id, pdm_reg_table_name(req->table),
           req->address, req->address + req->count - 1, req->count);
    printf("%7s %8s %8s %8s\n", "address", "hex", "u16", "s16");
    for (int i = 0; i < req->count; i++)
        printf("%7d   0x%04X %8u %8d\n", req->address + i, regs[i], regs[i], (int16_t)regs[i]);
    if (req->count < 2)
        return;

    static const enum pdm_reg_type types[] = {PDM_TYPE_U32, PDM_TYPE_S32, PDM_TYPE_FLOAT32,
                                              PDM_TYPE_U64, PDM_TYPE_S64, PDM_TYPE_FLOAT64};
    static const enum pdm_word_order orders[] = {PDM_ORDER_ABCD, PDM_ORDER_CDAB, PDM_ORDER_BADC,
                                                 PDM_ORDER_DCBA};
    printf("\nvalues from each start address in the four word orders:\n");
    printf("%7s  %-8s", "address", "type");
    for (size_t o = 0; o < 4; o++)
        printf(" %22s", pdm_word_order_name(orders[o]));
    printf("\n");
    for (int i = 0; i + 2 <= req->count; i++) {
        for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
            if (i + pdm_reg_words(types[t]) > req->count)
                continue;
            printf("%7d  %-8s", req->address + i, pdm_reg_type_name(types[t]));
            for (size_t o = 0; o < 4; o++)
                print_value(types[t], orders[o], regs + i);
            printf("\n");
        }
    }
}

int cmd_read(int argc, char **argv)
{
    enum { O_UNIT = PDMCTL_O_BUS_END, O_ADDR, O_COUNT, O_TABLE, O_TIMEOUT, O_HELP };
    static const struct option longopts[] = {
        PDMCTL_BUS_LONGOPTS,
        {"unit", required_argument, 0, O_UNIT},
        {"address", required_argument, 0, O_ADDR},
        {"count", required_argument, 0, O_COUNT},
        {"table", required_argument, 0, O_TABLE},
        {"timeout-ms", required_argument, 0, O_TIMEOUT},
        {"help", no_argument, 0, O_HELP},
        {0, 0, 0, 0},
    };
    /* static: about 1.4 KiB, and this runs once */
    static struct pdmctl_bus_args ba; /* about 1.4 KiB; once */
    pdmctl_bus_args_init(&ba, 1000);
    struct pdm_read_req req = {.unit_id = -1, .address = -1, .count = 2};
    int c;

    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        int bus = pdmctl_bus_option(CMD, c, optarg, &ba);
        if (bus < 0)
            return PDMCTL_EXIT_USAGE;
        if (bus > 0)
            continue;
        switch (c) {
        case O_UNIT:
            if (pdmctl_parse_int(CMD, "--unit", optarg, 0, 255, &req.unit_id) < 0)
                return PDMCTL_EXIT_USAGE;
            break;
        case O_ADDR:
            if (pdmctl_parse_int(CMD, "--address", optarg, 0, 65535, &req.address) < 0)
                return PDMCTL_EXIT_USAGE;
            break;
        case O_COUNT:
            if (pdmctl_parse_int(CMD, "--count", optarg, 1, MAX_BITS, &req.count) < 0)
                return PDMCTL_EXIT_USAGE;
            break;
        case O_TABLE:
            if (pdm_reg_table_parse(optarg, &req.table) < 0) {
                fprintf(stderr,
                        "pdmctl read: --table: expected holding, input, coil or discrete, got "
                        "'%s'\n",
                        optarg);
                return PDMCTL_EXIT_USAGE;
            }
            break;
        case O_TIMEOUT:
            if (pdmctl_parse_int(CMD, "--timeout-ms", optarg, 10, 60000, &ba.bc.timeout_ms) < 0)
                return PDMCTL_EXIT_USAGE;
            break;
        case 'h':
        case O_HELP:
            usage(stdout);
            return PDMCTL_EXIT_OK;
        default: /* ':' a value is missing, '?' unknown */
            return pdmctl_cli_bad_option("read", c, argv, usage);
        }
    }

    const char *problem = NULL;
    if (optind < argc)
        problem = "unexpected argument";
    else if (pdmctl_bus_problem(&ba))
        problem = pdmctl_bus_problem(&ba);
    else if (req.unit_id < 0)
        problem = "--unit is required";
    else if (ba.have_rtu && (req.unit_id < 1 || req.unit_id > 247))
        problem = "--unit: a serial unit id is 1..247 (0 is broadcast, which never answers)";
    else if (req.address < 0)
        problem = "--address is required";
    else if (!pdm_reg_table_is_bits(req.table) && req.count > MAX_COUNT)
        problem = "--count: at most 125 registers in one read (2000 for coils and discrete inputs)";
    else if (req.address + req.count > 65536)
        problem = "--address + --count goes past register 65535";
    if (problem) {
        if (optind < argc)
            fprintf(stderr, "pdmctl read: %s '%s' (try: pdmctl read --help)\n", problem,
                    argv[optind]);
        else
            fprintf(stderr, "pdmctl read: %s (try: pdmctl read --help)\n", problem);
        return PDMCTL_EXIT_USAGE;
    }
    ba.bc.driver = ba.have_rtu ? PDM_DRIVER_MODBUS_RTU : PDM_DRIVER_MODBUS_TCP;
    const struct pdm_driver_ops *ops =
        ba.have_rtu ? &pdm_driver_modbus_rtu : &pdm_driver_modbus_tcp;

    char err[256] = "";
    void *drv = NULL;
    uint16_t regs[MAX_BITS];
    int rc = ops->open(&drv, &ba.bc, err, sizeof(err));
    if (rc == 0)
        rc = ops->read(drv, &req, regs, err, sizeof(err));
    if (drv)
        ops->close(drv);
    if (rc < 0) {
        fprintf(stderr, "pdmctl read: %s\n", err);
        return PDMCTL_EXIT_FAIL;
    }
    print_result(&ba.bc, &req, regs);
    return PDMCTL_EXIT_OK;
}
