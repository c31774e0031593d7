/* Request plans: coalescing, remembered splits, the frame gap. See plan.h for the contract. */
#include "plan.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus_config.h"

static int item_end(const struct pdm_plan_item *it)
{
    return it->address + it->count;
}

/* Order of the plan: requests grouped by (unit, table, period), sensors by address inside;
 * equal keys keep item order (the caller's order is the tie-break, so plans are stable). */
static int before(const struct pdm_plan_item *items, uint32_t a, uint32_t b)
{
    const struct pdm_plan_item *x = &items[a], *y = &items[b];
    if (x->unit_id != y->unit_id)
        return x->unit_id < y->unit_id;
    if (x->table != y->table)
        return x->table < y->table;
    if (x->period_ms != y->period_ms)
        return x->period_ms < y->period_ms;
    if (x->address != y->address)
        return x->address < y->address;
    return a < b;
}

static int same_group(const struct pdm_plan_item *x, const struct pdm_plan_item *y)
{
    return x->unit_id == y->unit_id && x->table == y->table && x->period_ms == y->period_ms;
}

int pdm_plan_build(struct pdm_plan *p, const struct pdm_plan_item *items, uint32_t n,
                   const struct pdm_plan_limits *lim, struct pdm_plan_req *reqs, uint32_t *order,
                   uint8_t *cut)
{
    memset(p, 0, sizeof(*p));
    if (lim->max_span < 1 || lim->max_span > PDM_PLAN_MAX_REGS || lim->max_span_bits < 1 ||
        lim->max_span_bits > PDM_PLAN_MAX_BITS || lim->max_gap < 0)
        return -EINVAL;
    for (uint32_t i = 0; i < n; i++) {
        const struct pdm_plan_item *it = &items[i];
        int bits = pdm_reg_table_is_bits(it->table);
        if (it->count < 1 || it->count > (bits ? 1 : PDM_PLAN_MAX_REGS) || it->address < 0 ||
            item_end(it) > 65536)
            return -EINVAL;
    }
    p->items = items;
    p->n_items = n;
    p->reqs = reqs;
    p->order = order;
    p->cut = cut;

    /* insertion sort: start-up only, and n is the sensors of one bus */
    for (uint32_t i = 0; i < n; i++) {
        uint32_t k = i;
        while (k > 0 && before(items, i, order[k - 1])) {
            order[k] = order[k - 1];
            k--;
        }
        order[k] = i;
        cut[i] = 0;
    }

    /* One pass: a sensor joins the open request when it is in the same group, starts at most
     * max_gap past the request's end (overlaps are fine) and the request stays within the span.
     * A sensor inside the request already read adds nothing but itself. */
    struct pdm_plan_req *cur = NULL;
    for (uint32_t k = 0; k < n; k++) {
        const struct pdm_plan_item *it = &items[order[k]];
        if (cur) {
            const struct pdm_plan_item *head = &items[order[cur->first]];
            int start = cur->read.address, end = start + cur->read.count;
            int span = pdm_reg_table_is_bits(it->table) ? lim->max_span_bits : lim->max_span;
            int new_end = item_end(it) > end ? item_end(it) : end;
            if (same_group(head, it) && it->address - end <= lim->max_gap &&
                new_end - start <= span) {
                cur->read.count = new_end - start;
                cur->n++;
                continue;
            }
        }
        cur = &reqs[p->n_reqs++];
        *cur = (struct pdm_plan_req){
            .read = {.unit_id = it->unit_id,
                     .table = it->table,
                     .address = it->address,
                     .count = it->count},
            .period_ms = it->period_ms,
            .first = k,
            .n = 1,
        };
    }
    for (uint32_t r = 0; r < p->n_reqs; r++)
        if (reqs[r].read.count > p->max_count)
            p->max_count = reqs[r].read.count;
    return 0;
}

int pdm_plan_for_bus(struct pdm_plan *p, const struct pdm_bus_cfg *bc, uint32_t bus,
                     const struct pdm_sensor_cfg *sensors, uint32_t n_sensors)
{
    memset(p, 0, sizeof(*p));
    if (!bc)
        return -EINVAL;
    uint32_t n = 0;
    for (uint32_t i = 0; i < n_sensors; i++)
        n += sensors[i].bus == bus;
    size_t per = sizeof(struct pdm_plan_item) + sizeof(struct pdm_plan_req) + sizeof(uint32_t) +
                 sizeof(uint8_t);
    /* items and requests first: they need the strictest alignment */
    char *block = calloc(n ? n : 1, per);
    if (!block)
        return -ENOMEM;
    struct pdm_plan_item *items = (struct pdm_plan_item *)block;
    struct pdm_plan_req *reqs = (struct pdm_plan_req *)(items + n);
    uint32_t *order = (uint32_t *)(reqs + n);
    uint8_t *cut = (uint8_t *)(order + n);
    uint32_t k = 0;
    for (uint32_t i = 0; i < n_sensors; i++) {
        const struct pdm_sensor_cfg *sc = &sensors[i];
        if (sc->bus != bus)
            continue;
        items[k++] = (struct pdm_plan_item){
            .name = sc->name,
            .tag = i,
            .unit_id = sc->unit_id,
            .table = sc->table,
            .address = sc->address,
            .count = pdm_reg_table_is_bits(sc->table) ? 1 : pdm_reg_words(sc->type),
            .period_ms = sc->period_ms,
        };
    }
    /* zero in a hand-made config (tests, tools) means "not set": the defaults */
    struct pdm_plan_limits lim = {
        .max_span = bc->max_span > 0 ? bc->max_span : PDM_PLAN_SPAN,
        .max_span_bits = bc->max_span_bits > 0 ? bc->max_span_bits : PDM_PLAN_SPAN_BITS,
        .max_gap = bc->max_gap >= 0 ? bc->max_gap : PDM_PLAN_GAP,
    };
    int rc = pdm_plan_build(p, items, n, &lim, reqs, order, cut);
    if (rc < 0) {
        free(block);
        memset(p, 0, sizeof(*p));
        return rc;
    }
    p->block = block;
    return 0;
}

void pdm_plan_free(struct pdm_plan *p)
{
    if (!p)
        return;
    free(p->block);
    memset(p, 0, sizeof(*p));
}

uint32_t pdm_plan_piece(const struct pdm_plan *p, uint32_t r, uint32_t k, struct pdm_read_req *rd)
{
    const struct pdm_plan_req *q = &p->reqs[r];
    uint32_t end = q->first + q->n;
    const struct pdm_plan_item *it = &p->items[p->order[k]];
    int lo = it->address, hi = item_end(it);
    uint32_t j = k + 1;
    for (; j < end && !p->cut[j]; j++) {
        it = &p->items[p->order[j]];
        if (it->address < lo)
            lo = it->address;
        if (item_end(it) > hi)
            hi = item_end(it);
    }
    *rd = q->read;
    rd->address = lo;
    rd->count = hi - lo;
    return j;
}

uint32_t pdm_plan_reads(const struct pdm_plan *p, uint32_t r)
{
    const struct pdm_plan_req *q = &p->reqs[r];
    uint32_t n = 1;
    for (uint32_t k = q->first + 1; k < q->first + q->n; k++)
        n += p->cut[k];
    return n;
}

int pdm_plan_run(struct pdm_plan *p, uint32_t r, uint16_t *buf, const struct pdm_plan_io *io,
                 char *err, size_t errlen)
{
    const struct pdm_plan_req *q = &p->reqs[r];
    uint32_t end = q->first + q->n;
    uint32_t k = q->first;
    char why[160];
    while (k < end) {
        struct pdm_read_req rd;
        uint32_t next = pdm_plan_piece(p, r, k, &rd);
        why[0] = '\0';
        int rc = io->read(io->ctx, &rd, buf, why, sizeof(why));
        if (rc == 0) {
            for (uint32_t j = k; j < next; j++) {
                uint32_t item = p->order[j];
                io->result(io->ctx, item, buf + (p->items[item].address - rd.address), 0, "");
            }
            k = next;
            continue;
        }
        /* exception 2 or 3 on more than one sensor: halve, remember, read the halves now */
        if ((rc == -ENXIO || rc == -EINVAL) && next - k > 1) {
            uint32_t mid = k + (next - k) / 2;
            p->cut[mid] = 1;
            if (io->split) {
                struct pdm_read_req a, b;
                pdm_plan_piece(p, r, k, &a);
                pdm_plan_piece(p, r, mid, &b);
                io->split(io->ctx, &rd, &a, &b, why);
            }
            continue; /* k unchanged: its piece is now the first half */
        }
        if (pdm_drv_answered(rc)) {
            for (uint32_t j = k; j < next; j++)
                io->result(io->ctx, p->order[j], NULL, rc, why);
            k = next;
            continue;
        }
        /* no useful answer: the rest of this request would go the same way */
        for (uint32_t j = k; j < end; j++)
            io->result(io->ctx, p->order[j], NULL, rc, why);
        snprintf(err, errlen, "%s", why);
        return rc;
    }
    return 0;
}

/* Appends to out like snprintf, keeping the total length needed in *len. */
static void append(char *out, size_t outlen, int *len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void append(char *out, size_t outlen, int *len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t at = (size_t)*len < outlen ? (size_t)*len : outlen ? outlen - 1 : 0;
    int n = vsnprintf(outlen ? out + at : NULL, outlen ? outlen - at : 0, fmt, ap);
    va_end(ap);
    if (n > 0)
        *len += n;
}

int pdm_plan_format(const struct pdm_plan *p, uint32_t r, char *out, size_t outlen)
{
    const struct pdm_plan_req *q = &p->reqs[r];
    int len = 0;
    if (outlen)
        out[0] = '\0';
    append(out, outlen, &len, "request %u: unit %d %s %d..%d (%u sensor%s:", r + 1, q->read.unit_id,
           pdm_reg_table_name(q->read.table), q->read.address, q->read.address + q->read.count - 1,
           q->n, q->n == 1 ? "" : "s");
    for (uint32_t k = q->first; k < q->first + q->n; k++) {
        const char *name = p->items[p->order[k]].name;
        append(out, outlen, &len, " %s", name ? name : "?");
    }
    append(out, outlen, &len, ") every %d ms", q->period_ms);
    uint32_t reads = pdm_plan_reads(p, r);
    if (reads > 1)
        append(out, outlen, &len, ", split into %u reads", reads);
    return len;
}

int64_t pdm_frame_gap_us(int rtu, int baud, int data_bits, char parity, int stop_bits,
                         int configured_ms)
{
    int64_t want = configured_ms > 0 ? (int64_t)configured_ms * 1000 : 0;
    if (!rtu)
        return want;
    if (baud <= 0)
        baud = 9600;
    int bits = 1 + (data_bits ? data_bits : 8) + (parity == 'E' || parity == 'O') +
               (stop_bits ? stop_bits : 1);
    /* rounded up: a gap a microsecond short is no gap for the device */
    int64_t t35 = baud > 19200 ? 1750 : ((int64_t)bits * 3500000 + baud - 1) / baud;
    return want > t35 ? want : t35;
}
