/* pdmctl scan: which unit ids answer on a serial line or behind a Modbus TCP gateway.
 *
 * One small read (one register) per unit id, one at a time, through the agent's own driver.
 * A normal answer and a Modbus exception both mean a device is there (an exception says it
 * refused that address or function, not that it is absent); a timeout means nobody is. The
 * total time is bounded: at most (unit ids) x (timeout) plus a reconnect per silent unit on
 * TCP, and the bound is printed before the scan starts. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/config.h"
#include "drivers/driver.h"
#include "busargs.h"
#include "pdmctl.h"

#define MAX_UNIT_ID 255

static const char CMD[] = "scan"; /* in messages: "pdmctl scan: ..." */
static void usage(FILE *f)
{
    fprintf(f,
            "usage: pdmctl scan (--tcp HOST[:PORT] | --rtu DEVICE [--baud N] [--parity N|E|O]\n"
            "                    [--data-bits 7|8] [--stop-bits 1|2])\n"
            "                   [--units LIST] [--timeout-ms N] [--address A]\n"
            "                   [--table holding|input]\n\n"
            "Tries one read of one register per unit id and lists the ids that answer. A Modbus\n"
            "exception also means a device is there (the exception is named: for example an\n"
            "illegal data address says the device has no register A; try another --address).\n"
            "Progress goes to stderr, the list of answering ids to stdout.\n\n"
            "  --tcp HOST[:PORT]   Modbus TCP device or gateway (port default 502)\n"
            "  --rtu DEVICE        serial port, e.g. /dev/ttyUSB0 (default 9600 8N1)\n"
            "  --units LIST        unit ids to try: 1-247 (default), 1,2,5-9 ...\n"
            "                      (serial: 1..247; TCP: 0..255)\n"
            "  --timeout-ms N      wait per unit id, 10..10000 (default 200); the scan takes at\n"
            "                      most about ids x timeout\n"
            "  --address A         register to read, zero-based (default 0)\n"
            "  --table T           holding (function 3, default) or input (function 4)\n\n"
            "exit status: 0 at least one unit id answered, 1 none did (or the port or\n"
            "connection failed), 2 bad arguments\n");
}

static int parse_units(const char *s, unsigned char *on)
{
    memset(on, 0, MAX_UNIT_ID + 1);
    const char *p = s;
    int any = 0;
    while (*p) {
        char *end;
        errno = 0;
        long lo = strtol(p, &end, 10), hi;
        if (errno || end == p || lo < 0 || lo > MAX_UNIT_ID)
            goto bad;
        hi = lo;
        p = end;
        if (*p == '-') {
            const char *q = p + 1;
            hi = strtol(q, &end, 10);
            if (errno || end == q || hi < lo || hi > MAX_UNIT_ID)
                goto bad;
            p = end;
        }
        for (long u = lo; u <= hi; u++)
            on[u] = 1;
        any = 1;
        if (*p == ',' && p[1])
            p++;
        else if (*p)
            goto bad;
    }
    if (any)
        return 0;
bad:
    fprintf(stderr,
            "pdmctl scan: --units: expected ids or ranges like 1-247 or 1,2,5-9 (0..255), got "
            "'%s'\n",
            s);
    return -1;
}

/* The driver's reasons start with "unit N: "; the table already names the unit. */
static const char *strip_unit(const char *err)
{
    if (strncmp(err, "unit ", 5) == 0) {
        const char *p = strstr(err, ": ");
        if (p)
            return p + 2;
    }
    return err;
}

int cmd_scan(int argc, char **argv)
{
    enum { O_UNITS = PDMCTL_O_BUS_END, O_ADDR, O_TABLE, O_TIMEOUT, O_HELP };
    static const struct option longopts[] = {
        PDMCTL_BUS_LONGOPTS,
        {"units", required_argument, 0, O_UNITS},
        {"address", required_argument, 0, O_ADDR},
        {"table", required_argument, 0, O_TABLE},
        {"timeout-ms", required_argument, 0, O_TIMEOUT},
        {"help", no_argument, 0, O_HELP},
        {0, 0, 0, 0},
    };
    static struct pdmctl_bus_args ba; /* about 1.4 KiB; once */
    pdmctl_bus_args_init(&ba, 200);
    unsigned char on[MAX_UNIT_ID + 1];
    memset(on, 0, sizeof(on));
    for (int u = 1; u <= 247; u++)
        on[u] = 1;
    struct pdm_read_req req = {.table = PDM_TABLE_HOLDING, .address = 0, .count = 1};
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
        case O_UNITS:
            if (parse_units(optarg, on) < 0)
                return PDMCTL_EXIT_USAGE;
            break;
        case O_ADDR:
            if (pdmctl_parse_int(CMD, "--address", optarg, 0, 65535, &req.address) < 0)
                return PDMCTL_EXIT_USAGE;
            break;
        case O_TABLE:
            if (pdm_reg_table_parse(optarg, &req.table) < 0 ||
                (req.table != PDM_TABLE_HOLDING && req.table != PDM_TABLE_INPUT)) {
                fprintf(stderr, "pdmctl scan: --table: expected holding or input, got '%s'\n",
                        optarg);
                return PDMCTL_EXIT_USAGE;
            }
            break;
        case O_TIMEOUT:
            if (pdmctl_parse_int(CMD, "--timeout-ms", optarg, 10, 10000, &ba.bc.timeout_ms) < 0)
                return PDMCTL_EXIT_USAGE;
            break;
        case 'h':
        case O_HELP:
            usage(stdout);
            return PDMCTL_EXIT_OK;
        default: /* ':' a value is missing, '?' unknown */
            return pdmctl_cli_bad_option("scan", c, argv, usage);
        }
    }
    const char *problem = NULL;
    if (optind < argc)
        problem = "unexpected argument";
    else if (pdmctl_bus_problem(&ba))
        problem = pdmctl_bus_problem(&ba);
    else if (ba.have_rtu && (on[0] || memchr(on + 248, 1, sizeof(on) - 248)))
        problem = "--units: serial unit ids are 1..247 (0 is broadcast, which never answers)";
    if (problem) {
        if (optind < argc)
            fprintf(stderr, "pdmctl scan: %s '%s' (try: pdmctl scan --help)\n", problem,
                    argv[optind]);
        else
            fprintf(stderr, "pdmctl scan: %s (try: pdmctl scan --help)\n", problem);
        return PDMCTL_EXIT_USAGE;
    }
    ba.bc.driver = ba.have_rtu ? PDM_DRIVER_MODBUS_RTU : PDM_DRIVER_MODBUS_TCP;
    const struct pdm_driver_ops *ops =
        ba.have_rtu ? &pdm_driver_modbus_rtu : &pdm_driver_modbus_tcp;
    char where[PDM_PATH_MAX + 16];
    if (ba.have_tcp)
        snprintf(where, sizeof(where), "%s:%d", ba.bc.host, ba.bc.port);
    else
        snprintf(where, sizeof(where), "%s %d %c%d%d", ba.bc.device, ba.bc.baud, ba.bc.parity,
                 ba.bc.data_bits, ba.bc.stop_bits);

    int total = 0;
    for (int u = 0; u <= MAX_UNIT_ID; u++)
        total += on[u];
    /* TCP: a silent unit costs the timeout plus a reconnect (the driver drops the connection so
     * a late answer is never taken for the next unit's): count one more timeout for safety */
    long bound_ms = (long)total * ba.bc.timeout_ms * (ba.have_tcp ? 2 : 1);
    fprintf(stderr, "scan: %d unit id%s on %s, %s register %d, %d ms each: at most %.0f s\n", total,
            total == 1 ? "" : "s", where, pdm_reg_table_name(req.table), req.address,
            ba.bc.timeout_ms, (double)bound_ms / 1000.0 + 1);

    char err[256] = "";
    void *drv = NULL;
    if (ops->open(&drv, &ba.bc, err, sizeof(err)) != 0) {
        fprintf(stderr, "pdmctl scan: %s\n", err);
        if (drv)
            ops->close(drv);
        return PDMCTL_EXIT_FAIL;
    }

    static char found_text[MAX_UNIT_ID + 1][160];
    int found[MAX_UNIT_ID + 1], nfound = 0, garbled = 0, done = 0;
    int tty = isatty(STDERR_FILENO);
    int status = PDMCTL_EXIT_OK;
    for (int u = 0; u <= MAX_UNIT_ID; u++) {
        if (!on[u])
            continue;
        req.unit_id = u;
        uint16_t reg = 0;
        err[0] = '\0';
        int rc = ops->read(drv, &req, &reg, err, sizeof(err));
        done++;
        if (rc == 0 || pdm_drv_answered(rc)) {
            if (rc == 0)
                snprintf(found_text[u], sizeof(found_text[u]),
                         "answers: %s register %d = 0x%04X (%u)", pdm_reg_table_name(req.table),
                         req.address, reg, reg);
            else
                snprintf(found_text[u], sizeof(found_text[u]), "answers with an exception: %s",
                         strip_unit(err));
            found[nfound++] = u;
            fprintf(stderr, "%sscan: unit %d %s\n", tty ? "\r\033[K" : "", u, found_text[u]);
        } else if (rc == -EBADMSG) {
            garbled++; /* something answered, unreadably: wrong speed or parity, or two talkers */
        } else if (rc != -ETIMEDOUT && rc != -EPROTO && rc != -ENOLINK) {
            /* the port or the connection itself failed: the remaining ids cannot be tried */
            fprintf(stderr, "%spdmctl scan: %s; stopped after %d of %d unit ids\n",
                    tty ? "\r\033[K" : "", err, done, total);
            status = PDMCTL_EXIT_FAIL;
            break;
        }
        if (tty)
            fprintf(stderr, "\r\033[Kscan: unit %d (%d/%d), %d found", u, done, total, nfound);
        else if (done % 25 == 0 && done < total)
            fprintf(stderr, "scan: %d/%d unit ids tried, %d found\n", done, total, nfound);
    }
    ops->close(drv);
    if (tty)
        fprintf(stderr, "\r\033[K");

    if (nfound) {
        printf("%4s  %s\n", "unit", "answer");
        for (int i = 0; i < nfound; i++)
            printf("%4d  %s\n", found[i], found_text[found[i]]);
        printf("%d of %d unit ids answered on %s:", nfound, done, where);
        for (int i = 0; i < nfound; i++)
            printf(" %d", found[i]);
        printf("\n");
    } else if (status == PDMCTL_EXIT_OK) {
        fprintf(stderr,
                "pdmctl scan: no unit id answered on %s (%d tried, %d ms each): check %s and "
                "the --units range\n",
                where, done, ba.bc.timeout_ms,
                ba.have_rtu ? "the wiring (A/B, termination), baud rate, parity, stop bits"
                            : "the gateway's address and port");
    }
    if (garbled)
        fprintf(stderr, "scan: %d unit id%s got a garbled answer (bad CRC or framing): %s\n",
                garbled, garbled == 1 ? "" : "s",
                ba.have_rtu ? "check baud rate and parity, and that nothing else polls this line"
                            : "the gateway may speak Modbus RTU over TCP, not Modbus TCP");
    return nfound ? PDMCTL_EXIT_OK : PDMCTL_EXIT_FAIL;
}
