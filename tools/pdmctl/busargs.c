#include "busargs.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* HOST, HOST:PORT, [V6], [V6]:PORT; a bare IPv6 literal (several colons) has no port. */
static int parse_host(const char *cmd, const char *s, struct pdm_bus_cfg *bc)
{
    const char *host = s, *port = NULL;
    size_t hlen;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || (close[1] && close[1] != ':'))
            goto bad;
        host = s + 1;
        hlen = (size_t)(close - host);
        if (close[1] == ':')
            port = close + 2;
    } else {
        const char *colon = strchr(s, ':');
        if (colon && !strchr(colon + 1, ':')) {
            hlen = (size_t)(colon - s);
            port = colon + 1;
        } else {
            hlen = strlen(s);
        }
    }
    if (hlen == 0 || hlen >= sizeof(bc->host))
        goto bad;
    memcpy(bc->host, host, hlen);
    bc->host[hlen] = '\0';
    if (port && pdmctl_parse_int(cmd, "--tcp port", port, 1, 65535, &bc->port) < 0)
        return -1;
    return 0;
bad:
    fprintf(stderr, "pdmctl %s: --tcp: expected HOST[:PORT], got '%s'\n", cmd, s);
    return -1;
}

void pdmctl_bus_args_init(struct pdmctl_bus_args *b, int timeout_ms)
{
    memset(b, 0, sizeof(*b));
    snprintf(b->bc.name, sizeof(b->bc.name), "pdmctl");
    pdm_config_bus_defaults(&b->bc); /* the defaults of agent.conf's [bus] */
    b->bc.timeout_ms = timeout_ms;
}

int pdmctl_bus_option(const char *cmd, int opt, const char *arg, struct pdmctl_bus_args *b)
{
    struct pdm_bus_cfg *bc = &b->bc;
    switch (opt) {
    case PDMCTL_O_TCP:
        if (parse_host(cmd, arg, bc) < 0)
            return -1;
        b->have_tcp = 1;
        return 1;
    case PDMCTL_O_RTU:
        if (!arg[0] || strlen(arg) >= sizeof(bc->device)) {
            fprintf(stderr, "pdmctl %s: --rtu: expected a serial device path\n", cmd);
            return -1;
        }
        snprintf(bc->device, sizeof(bc->device), "%s", arg);
        b->have_rtu = 1;
        return 1;
    case PDMCTL_O_BAUD:
        b->serial_opt = 1;
        return pdmctl_parse_int(cmd, "--baud", arg, 50, 4000000, &bc->baud) < 0 ? -1 : 1;
    case PDMCTL_O_PARITY:
        if (strlen(arg) != 1 || !strchr("NEOneo", arg[0])) {
            fprintf(stderr, "pdmctl %s: --parity: expected N, E or O, got '%s'\n", cmd, arg);
            return -1;
        }
        bc->parity = (char)(arg[0] & ~0x20); /* upper case */
        b->serial_opt = 1;
        return 1;
    case PDMCTL_O_DATA:
        b->serial_opt = 1;
        return pdmctl_parse_int(cmd, "--data-bits", arg, 7, 8, &bc->data_bits) < 0 ? -1 : 1;
    case PDMCTL_O_STOP:
        b->serial_opt = 1;
        return pdmctl_parse_int(cmd, "--stop-bits", arg, 1, 2, &bc->stop_bits) < 0 ? -1 : 1;
    default:
        return 0;
    }
}

const char *pdmctl_bus_problem(const struct pdmctl_bus_args *b)
{
    if (b->have_tcp == b->have_rtu)
        return "give exactly one of --tcp HOST[:PORT] or --rtu DEVICE";
    if (b->have_tcp && b->serial_opt)
        return "--baud, --parity, --data-bits and --stop-bits apply to --rtu only";
    return NULL;
}
