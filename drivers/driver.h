/* A bus driver: one file behind this small ops table. A driver instance is owned by exactly one
 * bus thread; calls block for at most the configured timeout. Drivers return 0 or a negative
 * errno-style code and write a short human reason into err. */
#ifndef PDM_DRIVER_H
#define PDM_DRIVER_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#include "registers.h"

struct pdm_bus_cfg;

struct pdm_read_req {
    int unit_id;
    enum pdm_reg_table table;
    int address; /* zero-based, as on the wire */
    int count;   /* registers 1..125; for coil/discrete bits 1..2000, one 0/1 per uint16_t */
};

/* The device answered with a Modbus exception (it is alive; the request was refused). The codes
 * drivers return for exceptions; anything else means no useful answer or a transport failure:
 *   -EOPNOTSUPP (1), -ENXIO (2 illegal data address), -EINVAL (3 illegal data value),
 *   -EREMOTEIO (4, 7, 8), -EINPROGRESS (5), -EBUSY (6), -EMSGSIZE (request too large). */
static inline int pdm_drv_answered(int rc)
{
    return rc == -EOPNOTSUPP || rc == -ENXIO || rc == -EINVAL || rc == -EREMOTEIO ||
           rc == -EINPROGRESS || rc == -EBUSY || rc == -EMSGSIZE;
}

struct pdm_driver_ops {
    const char *name; /* "modbus-tcp", "modbus-rtu" */
    /* Creates the driver state and connects (TCP) or opens the port (RTU). On failure *ctx may
     * still be set and must be closed; connect() is retried later with backoff. */
    int (*open)(void **ctx, const struct pdm_bus_cfg *bus, char *err, size_t errlen);
    /* (Re)connects after a failure. */
    int (*connect)(void *ctx, char *err, size_t errlen);
    /* Reads req->count registers (or bits) into regs. On a transport error the driver drops the
     * connection itself; the next read or connect re-establishes it. */
    int (*read)(void *ctx, const struct pdm_read_req *req, uint16_t *regs, char *err,
                size_t errlen);
    void (*close)(void *ctx);
};

extern const struct pdm_driver_ops pdm_driver_modbus_tcp;
extern const struct pdm_driver_ops pdm_driver_modbus_rtu;

#endif
