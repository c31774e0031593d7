/* Request plans: which Modbus reads a bus makes to read its sensors.
 *
 * Sensors of one unit id, one table and one period whose addresses are close together are read
 * with one request covering all of them ("coalescing"). A request never spans more than
 * max_span registers (max_span_bits for coils and discrete inputs) and never skips more than
 * max_gap unread registers (or bits) between two of its sensors. A single sensor is always its
 * own request, whatever the limits.
 *
 * Periods: sensors are grouped by (unit id, table, period), so each request has exactly one
 * period and the bus schedules requests, not sensors: every sensor is read at its own period,
 * and no read fetches a value nobody asked for yet. The price is that two neighbours with
 * different periods cost two requests; give them the same period to have them merged. (The
 * alternative, planning the set of sensors due at each moment, makes plans change from slot
 * to slot, and then a split learnt from the device could not be remembered per request.)
 *
 * Split on exception: a device that answers a request with exception 2 (illegal data
 * address: a hole in its map) or 3 (illegal data value: it rejects reads that large) gets that
 * request split in halves, then halves of halves, down to single sensors; the split is kept
 * for the life of the plan, so the next cycle goes straight to the pieces that work. A single
 * sensor that still gets the exception fails with that reason; its neighbours are read.
 *
 * Memory: the planner works in arrays the caller provides, all n_items long (at most one
 * request per sensor): requests about 40 bytes, order 4 bytes, cut 1 byte per sensor. It never
 * allocates; pdm_plan_for_bus() is the start-up convenience that allocates them in one block.
 * A plan is owned by one bus thread: pdm_plan_run() changes the remembered splits. */
#ifndef PDM_PLAN_H
#define PDM_PLAN_H

#include <stddef.h>
#include <stdint.h>

#include "driver.h"

#define PDM_PLAN_MAX_REGS    125  /* registers per read, functions 3 and 4 (Modbus limit) */
#define PDM_PLAN_MAX_BITS    2000 /* bits per read, functions 1 and 2 (Modbus limit) */
#define PDM_PLAN_SPAN        64   /* default max_span, registers */
#define PDM_PLAN_SPAN_BITS   2000 /* default max_span_bits */
#define PDM_PLAN_GAP         8    /* default max_gap, registers or bits */
#define PDM_FRAME_GAP_MAX_MS 1000 /* upper bound of frame_gap_ms */

struct pdm_bus_cfg;
struct pdm_sensor_cfg;

/* One sensor as the planner sees it. */
struct pdm_plan_item {
    const char *name; /* for pdm_plan_format(); not owned */
    uint32_t tag;     /* the caller's id for it (the bus uses the index into sensors[]) */
    int unit_id;
    enum pdm_reg_table table;
    int address; /* zero-based */
    int count;   /* registers (1, 2 or 4), or 1 bit */
    int period_ms;
};

struct pdm_plan_limits {
    int max_span;      /* registers per request, 1..125 */
    int max_span_bits; /* bits per request, 1..2000 */
    int max_gap;       /* unread registers or bits allowed between two sensors, >= 0 */
};

struct pdm_plan_req {
    struct pdm_read_req read; /* the whole request as first planned */
    int period_ms;
    uint32_t first; /* position in pdm_plan.order of its first sensor */
    uint32_t n;     /* its sensors: order[first .. first + n - 1], by address */
};

struct pdm_plan {
    const struct pdm_plan_item *items;
    uint32_t n_items;
    struct pdm_plan_req *reqs; /* n_reqs used, by (unit, table, period, address) */
    uint32_t n_reqs;
    uint32_t *order; /* item indexes, request after request */
    uint8_t *cut;    /* cut[k] = 1: a remembered split just before order[k] */
    int max_count;   /* largest request: the size of pdm_plan_run()'s buffer, in uint16_t */
    void *block;     /* pdm_plan_for_bus()'s allocation, else NULL */
};

/* Builds the plan of n items into the caller's arrays (each n long); p->items points at items,
 * which must stay valid. Stable: the same items give the same plan; ties in address are kept in
 * item order. Returns 0, or -EINVAL for limits out of range or an item whose count is out of
 * 1..125 registers / 1 bit or which runs past address 65535. O(n^2) comparisons at start-up. */
int pdm_plan_build(struct pdm_plan *p, const struct pdm_plan_item *items, uint32_t n,
                   const struct pdm_plan_limits *lim, struct pdm_plan_req *reqs, uint32_t *order,
                   uint8_t *cut);

/* The plan of bus bc, with its limits, for the sensors[0 .. n_sensors) whose .bus is bus (bc's
 * index; the others are skipped), in one allocation (about 48 bytes per sensor of the bus);
 * free with pdm_plan_free(). 0, -ENOMEM or -EINVAL. In a config made by hand (zeroed), max_span
 * and max_span_bits 0 mean the defaults; max_gap 0 means 0. */
int pdm_plan_for_bus(struct pdm_plan *p, const struct pdm_bus_cfg *bc, uint32_t bus,
                     const struct pdm_sensor_cfg *sensors, uint32_t n_sensors);
void pdm_plan_free(struct pdm_plan *p);

/* The piece of request r that starts at order position k (k must be the request's first
 * position or just after a cut): fills *rd with the read covering its sensors and returns the
 * position after its last sensor. */
uint32_t pdm_plan_piece(const struct pdm_plan *p, uint32_t r, uint32_t k, struct pdm_read_req *rd);
/* Number of reads request r costs now (1 + its remembered splits). */
uint32_t pdm_plan_reads(const struct pdm_plan *p, uint32_t r);

/* What pdm_plan_run() does on the wire and with the results. */
struct pdm_plan_io {
    void *ctx;
    /* A driver read (driver.h conventions): 0, or a negative errno with the reason in err. */
    int (*read)(void *ctx, const struct pdm_read_req *rd, uint16_t *regs, char *err, size_t errlen);
    /* Once per sensor and run: regs points at the item's own registers (bits: one 0/1 per
     * uint16_t) when rc == 0, else NULL and err says why. */
    void (*result)(void *ctx, uint32_t item, const uint16_t *regs, int rc, const char *err);
    /* Optional: a piece was split after answer `why`; it is read as `a` and `b` from now on. */
    void (*split)(void *ctx, const struct pdm_read_req *was, const struct pdm_read_req *a,
                  const struct pdm_read_req *b, const char *why);
};

/* Reads request r piece by piece into buf (p->max_count long), splitting on exceptions 2 and 3
 * as described above. Any other exception fails only that piece's sensors. A failure where the
 * device did not answer (timeout, garbled frame, transport) ends the run: the remaining sensors
 * get that failure too, it is copied into err and returned, so the caller can back off the unit
 * or the bus. Returns 0 when the device answered every piece (with values or exceptions). */
int pdm_plan_run(struct pdm_plan *p, uint32_t r, uint16_t *buf, const struct pdm_plan_io *io,
                 char *err, size_t errlen);

/* "request 1: unit 1 holding 0..5 (3 sensors: comp_temp comp_vib comp_power) every 500 ms",
 * plus ", split into N reads" once the device made it split. Like snprintf: returns the length
 * the whole text needs; out is always terminated (cut short if outlen is too small). */
int pdm_plan_format(const struct pdm_plan *p, uint32_t r, char *out, size_t outlen);

/* The pause between two transactions on a bus, in microseconds: configured_ms (-1 = not set)
 * on TCP (default 0), and on RTU at least the 3.5 character times that end a frame: a character
 * is start + data + parity + stop bits (10 or 11 bits for 8N1 / 8E1), so 3.5 characters take
 * 3.5 * bits * 1e6 / baud us: 3646 us at 9600 8N1, 1823 us at 19200. Above 19200 baud the spec
 * fixes it at 1750 us (a UART cannot time shorter gaps reliably). */
int64_t pdm_frame_gap_us(int rtu, int baud, int data_bits, char parity, int stop_bits,
                         int configured_ms);

#endif
