/* Modbus TCP and RTU drivers over libmodbus 3.1.6.
 *
 * libmodbus reports failures through errno, with its own codes above MODBUS_ENOBASE for Modbus
 * exceptions and framing errors. They are translated here, at the boundary, into a negative
 * errno and a short reason naming the unit, so nothing above this file sees libmodbus codes.
 *
 * Recovery, so that one bad answer never stalls the bus:
 *  - transport errors (refused, reset, broken pipe, serial port gone) close the connection;
 *    the next read reconnects (one connect attempt, bounded by the response timeout);
 *  - a timeout on TCP also closes the connection: a late answer would otherwise be taken as
 *    the answer to the next request (libmodbus rejects it as a bad transaction id, costing a
 *    second failure). Reconnecting over TCP costs one round trip;
 *  - a timeout or a garbled frame on RTU flushes the port, discarding a late or partial frame.
 *
 * Memory: one libmodbus context per bus (about 1 KiB), allocated in open(). */
#include "driver.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <modbus.h>

#include "bus_config.h"

struct mb_ctx {
    modbus_t *mb;
    int rtu;
    int connected;
    int timeout_ms;
    char where[PDM_PATH_MAX]; /* "127.0.0.1:1502" or "/dev/ttyUSB0", for messages */
};

static void set_timeouts(struct mb_ctx *c)
{
    uint32_t sec = (uint32_t)(c->timeout_ms / 1000);
    uint32_t usec = (uint32_t)(c->timeout_ms % 1000) * 1000;
    modbus_set_response_timeout(c->mb, sec, usec);
    /* The gap allowed between bytes of one frame: on TCP a frame normally arrives whole, on RTU
     * at 9600 baud a byte takes about 1 ms. Bounded by the response timeout so a stuck frame
     * never costs more than about two timeouts. */
    modbus_set_byte_timeout(c->mb, sec, usec);
}

static int do_connect(struct mb_ctx *c, char *err, size_t errlen)
{
    if (c->connected)
        return 0;
    if (modbus_connect(c->mb) != 0) {
        int e = errno ? errno : EIO;
        if (e >= MODBUS_ENOBASE)
            e = EIO;
        if (c->rtu)
            snprintf(err, errlen, "cannot open %s: %s", c->where, strerror(e));
        else
            snprintf(err, errlen, "cannot connect to %s: %s", c->where, strerror(e));
        modbus_close(c->mb);
        return -e;
    }
    c->connected = 1;
    return 0;
}

static int mb_connect(void *ctx, char *err, size_t errlen)
{
    return do_connect(ctx, err, errlen);
}

static int mb_open_common(struct mb_ctx *c, void **ctx, char *err, size_t errlen)
{
    *ctx = c;
    modbus_set_error_recovery(c->mb, MODBUS_ERROR_RECOVERY_NONE);
    set_timeouts(c);
    return do_connect(c, err, errlen);
}

static int mb_open_tcp(void **ctx, const struct pdm_bus_cfg *bus, char *err, size_t errlen)
{
    *ctx = NULL;
    struct mb_ctx *c = calloc(1, sizeof(*c));
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    char port[16];
    snprintf(port, sizeof(port), "%d", bus->port);
    /* the _pi variant resolves host names (getaddrinfo); plain modbus_new_tcp takes IPv4
     * literals only */
    c->mb = modbus_new_tcp_pi(bus->host, port);
    if (!c->mb) {
        int e = errno ? errno : EINVAL;
        snprintf(err, errlen, "modbus-tcp %s:%d: %s", bus->host, bus->port, strerror(e));
        free(c);
        return -e;
    }
    c->timeout_ms = bus->timeout_ms;
    snprintf(c->where, sizeof(c->where), "%s:%d", bus->host, bus->port);
    return mb_open_common(c, ctx, err, errlen);
}

static int mb_open_rtu(void **ctx, const struct pdm_bus_cfg *bus, char *err, size_t errlen)
{
    *ctx = NULL;
    struct mb_ctx *c = calloc(1, sizeof(*c));
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    /* the serial settings and the timeout come with their defaults from the configuration
     * (agent/config_sections.c: pdm_config_bus_defaults()) */
    char parity = bus->parity;
    int data_bits = bus->data_bits, stop_bits = bus->stop_bits, baud = bus->baud;
    c->mb = modbus_new_rtu(bus->device, baud, parity, data_bits, stop_bits);
    if (!c->mb) {
        int e = errno ? errno : EINVAL;
        snprintf(err, errlen, "modbus-rtu %s %d %c%d%d: invalid serial settings", bus->device, baud,
                 parity, data_bits, stop_bits);
        free(c);
        return -e;
    }
    c->rtu = 1;
    c->timeout_ms = bus->timeout_ms;
    snprintf(c->where, sizeof(c->where), "%s", bus->device);
    return mb_open_common(c, ctx, err, errlen);
}

static void drop(struct mb_ctx *c)
{
    modbus_close(c->mb);
    c->connected = 0;
}

/* Modbus exception or framing code -> (negative errno, text). The codes are chosen so that a
 * caller can tell three cases apart without knowing Modbus (see agent/bus.c):
 *   the device answered with an exception: -EOPNOTSUPP -ENXIO -EINVAL -EREMOTEIO -EINPROGRESS
 *                                           -EBUSY -EMSGSIZE
 *   the unit did not answer usefully:       -ETIMEDOUT -EBADMSG -EPROTO -ENOLINK
 *   anything else is the transport (socket, serial port). */
static int translate_modbus(int e, const char **what)
{
    switch (e) {
    case EMBXILFUN:
        *what = "illegal function (exception 1)";
        return -EOPNOTSUPP;
    case EMBXILADD:
        *what = "illegal data address (exception 2)";
        return -ENXIO;
    case EMBXILVAL:
        *what = "illegal data value (exception 3)";
        return -EINVAL;
    case EMBXSFAIL:
        *what = "device failure (exception 4)";
        return -EREMOTEIO;
    case EMBXACK:
        *what = "acknowledged, still processing (exception 5)";
        return -EINPROGRESS;
    case EMBXSBUSY:
        *what = "device busy (exception 6)";
        return -EBUSY;
    case EMBXNACK:
        *what = "negative acknowledge (exception 7)";
        return -EREMOTEIO;
    case EMBXMEMPAR:
        *what = "memory parity error (exception 8)";
        return -EREMOTEIO;
    case EMBXGPATH:
        *what = "gateway path unavailable (exception 10)";
        return -ENOLINK;
    case EMBXGTAR:
        *what = "gateway target did not respond (exception 11)";
        return -ETIMEDOUT;
    case EMBBADCRC:
        *what = "bad CRC in answer";
        return -EBADMSG;
    case EMBBADDATA:
        *what = "malformed answer";
        return -EBADMSG;
    case EMBBADEXC:
        *what = "malformed exception answer";
        return -EBADMSG;
    case EMBUNKEXC:
        *what = "unknown exception code";
        return -EPROTO;
    case EMBMDATA:
        *what = "too many registers requested";
        return -EMSGSIZE;
    case EMBBADSLAVE:
        *what = "answer from another unit id";
        return -EBADMSG;
    }
    *what = "unknown Modbus error";
    return -EPROTO;
}

static int mb_read(void *ctx, const struct pdm_read_req *req, uint16_t *regs, char *err,
                   size_t errlen)
{
    struct mb_ctx *c = ctx;
    int rc = do_connect(c, err, errlen);
    if (rc < 0)
        return rc;
    if (modbus_set_slave(c->mb, req->unit_id) != 0) {
        snprintf(err, errlen, "unit %d: invalid unit id", req->unit_id);
        return -EINVAL;
    }
    errno = 0;
    int n;
    switch (req->table) {
    case PDM_TABLE_INPUT:
        n = modbus_read_input_registers(c->mb, req->address, req->count, regs);
        break;
    case PDM_TABLE_COIL:
    case PDM_TABLE_DISCRETE:
        /* libmodbus gives one byte per bit; they land in the first bytes of regs (which holds
         * 2 * count bytes) and are widened in place from the last, so no byte is overwritten
         * before it is read */
        n = req->table == PDM_TABLE_COIL
                ? modbus_read_bits(c->mb, req->address, req->count, (uint8_t *)regs)
                : modbus_read_input_bits(c->mb, req->address, req->count, (uint8_t *)regs);
        for (int i = n - 1; i >= 0; i--)
            regs[i] = ((const uint8_t *)regs)[i] ? 1 : 0;
        break;
    default:
        n = modbus_read_registers(c->mb, req->address, req->count, regs);
        break;
    }
    if (n == req->count)
        return 0;
    if (n >= 0) { /* libmodbus checks the count; kept as a guard */
        snprintf(err, errlen, "unit %d: short answer (%d of %d %s)", req->unit_id, n, req->count,
                 pdm_reg_table_is_bits(req->table) ? "bits" : "registers");
        if (c->rtu)
            modbus_flush(c->mb);
        return -EBADMSG;
    }

    int e = errno ? errno : EIO;
    if (e == ETIMEDOUT) {
        snprintf(err, errlen, "unit %d: no answer within %d ms", req->unit_id, c->timeout_ms);
        if (c->rtu)
            modbus_flush(c->mb);
        else
            drop(c);
        return -ETIMEDOUT;
    }
    if (e >= MODBUS_ENOBASE) {
        const char *what;
        int code = translate_modbus(e, &what);
        snprintf(err, errlen, "unit %d: %s", req->unit_id, what);
        /* An exception is a well-formed answer: the line is in sync. A garbled frame is not. */
        if (e > EMBXGTAR) {
            if (c->rtu)
                modbus_flush(c->mb);
            else
                drop(c);
        }
        return code;
    }
    /* Everything else is the transport: reset, refused, broken pipe, serial I/O error. */
    snprintf(err, errlen, "%s: %s", c->where, strerror(e));
    drop(c);
    return -e;
}

static void mb_close(void *ctx)
{
    struct mb_ctx *c = ctx;
    if (!c)
        return;
    if (c->mb) {
        modbus_close(c->mb);
        modbus_free(c->mb);
    }
    free(c);
}

const struct pdm_driver_ops pdm_driver_modbus_tcp = {
    .name = "modbus-tcp",
    .open = mb_open_tcp,
    .connect = mb_connect,
    .read = mb_read,
    .close = mb_close,
};

const struct pdm_driver_ops pdm_driver_modbus_rtu = {
    .name = "modbus-rtu",
    .open = mb_open_rtu,
    .connect = mb_connect,
    .read = mb_read,
    .close = mb_close,
};
