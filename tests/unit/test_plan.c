/* Request plans (drivers/plan.c): which requests go on the wire for a set of sensors, how a
 * refused request is split and remembered, the text shown to people, the frame gap. The
 * split path runs against a fake device with the two refusals met in the field: reads larger
 * than N registers (exception 3) and a hole in the register map (exception 2). */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "drivers/plan.h"

#define N_MAX 160

static struct pdm_plan_req g_reqs[N_MAX];
static uint32_t g_order[N_MAX];
static uint8_t g_cut[N_MAX];

static const struct pdm_plan_limits defaults = {
    .max_span = PDM_PLAN_SPAN, .max_span_bits = PDM_PLAN_SPAN_BITS, .max_gap = PDM_PLAN_GAP};

static struct pdm_plan_item item(const char *name, int unit, enum pdm_reg_table t, int addr,
                                 int count, int period)
{
    return (struct pdm_plan_item){.name = name,
                                  .unit_id = unit,
                                  .table = t,
                                  .address = addr,
                                  .count = count,
                                  .period_ms = period};
}

static int build(struct pdm_plan *p, const struct pdm_plan_item *items, uint32_t n,
                 const struct pdm_plan_limits *lim)
{
    return pdm_plan_build(p, items, n, lim, g_reqs, g_order, g_cut);
}

/* "unit table first..last n" for request r, to compare whole plans at a glance */
static const char *req_text(const struct pdm_plan *p, uint32_t r)
{
    static char buf[64];
    const struct pdm_plan_req *q = &p->reqs[r];
    snprintf(buf, sizeof(buf), "%d %s %d..%d n=%u", q->read.unit_id,
             pdm_reg_table_name(q->read.table), q->read.address,
             q->read.address + q->read.count - 1, q->n);
    return buf;
}

static void test_adjacent(void)
{
    struct pdm_plan_item it[3] = {
        item("comp_temp", 1, PDM_TABLE_HOLDING, 0, 2, 500),
        item("comp_vib", 1, PDM_TABLE_HOLDING, 2, 2, 500),
        item("comp_power", 1, PDM_TABLE_HOLDING, 4, 2, 500),
    };
    struct pdm_plan p;
    CHECK_INT(build(&p, it, 3, &defaults), 0);
    CHECK_INT(p.n_reqs, 1);
    CHECK_STR(req_text(&p, 0), "1 holding 0..5 n=3");
    CHECK_INT(p.max_count, 6);
    CHECK_INT(pdm_plan_reads(&p, 0), 1);
    char line[200];
    int len = pdm_plan_format(&p, 0, line, sizeof(line));
    CHECK_STR(line, "request 1: unit 1 holding 0..5 (3 sensors: comp_temp comp_vib comp_power) "
                    "every 500 ms");
    CHECK_INT(len, (int)strlen(line));
    /* cut short, still terminated, and the length needed is still reported */
    char small[20];
    CHECK_INT(pdm_plan_format(&p, 0, small, sizeof(small)), len);
    CHECK_STR(small, "request 1: unit 1 h");
}

static void test_gap(void)
{
    struct pdm_plan p;
    /* u16 at 0 and at 9: 8 registers unread between them, the default allows that */
    struct pdm_plan_item it[3] = {
        item("a", 1, PDM_TABLE_HOLDING, 0, 1, 1000), item("b", 1, PDM_TABLE_HOLDING, 9, 1, 1000),
        item("c", 1, PDM_TABLE_HOLDING, 19, 1, 1000), /* 9 unread after b: a new request */
    };
    CHECK_INT(build(&p, it, 3, &defaults), 0);
    CHECK_INT(p.n_reqs, 2);
    CHECK_STR(req_text(&p, 0), "1 holding 0..9 n=2");
    CHECK_STR(req_text(&p, 1), "1 holding 19..19 n=1");

    /* max_gap 0: only touching sensors share a request */
    struct pdm_plan_limits tight = defaults;
    tight.max_gap = 0;
    struct pdm_plan_item it2[3] = {
        item("a", 1, PDM_TABLE_INPUT, 10, 2, 1000),
        item("b", 1, PDM_TABLE_INPUT, 12, 1, 1000),
        item("c", 1, PDM_TABLE_INPUT, 14, 1, 1000),
    };
    CHECK_INT(build(&p, it2, 3, &tight), 0);
    CHECK_INT(p.n_reqs, 2);
    CHECK_STR(req_text(&p, 0), "1 input 10..12 n=2");
    CHECK_STR(req_text(&p, 1), "1 input 14..14 n=1");
}

static void test_span(void)
{
    struct pdm_plan p;
    struct pdm_plan_limits lim = defaults;
    lim.max_span = 6;
    struct pdm_plan_item it[4] = {
        item("t", 1, PDM_TABLE_HOLDING, 0, 2, 1000),
        item("v", 1, PDM_TABLE_HOLDING, 2, 2, 1000),
        item("p", 1, PDM_TABLE_HOLDING, 4, 2, 1000),
        item("e", 1, PDM_TABLE_HOLDING, 6, 2, 1000),
    };
    CHECK_INT(build(&p, it, 4, &lim), 0);
    CHECK_INT(p.n_reqs, 2);
    CHECK_STR(req_text(&p, 0), "1 holding 0..5 n=3");
    CHECK_STR(req_text(&p, 1), "1 holding 6..7 n=1");

    /* 130 adjacent u16 at the hard limit: 125 + 5, never a read the protocol forbids */
    static struct pdm_plan_item many[130];
    lim.max_span = PDM_PLAN_MAX_REGS;
    for (int i = 0; i < 130; i++)
        many[i] = item("m", 3, PDM_TABLE_INPUT, i, 1, 1000);
    CHECK_INT(build(&p, many, 130, &lim), 0);
    CHECK_INT(p.n_reqs, 2);
    CHECK_STR(req_text(&p, 0), "3 input 0..124 n=125");
    CHECK_STR(req_text(&p, 1), "3 input 125..129 n=5");
    CHECK_INT(p.max_count, 125);

    /* 32 u32 = 64 registers with span 20: requests of at most 20 registers (10 sensors) */
    lim.max_span = 20;
    for (int i = 0; i < 32; i++)
        many[i] = item("m", 3, PDM_TABLE_INPUT, 100 + 2 * i, 2, 1000);
    CHECK_INT(build(&p, many, 32, &lim), 0);
    CHECK_INT(p.n_reqs, 4);
    CHECK_STR(req_text(&p, 0), "3 input 100..119 n=10");
    CHECK_STR(req_text(&p, 3), "3 input 160..163 n=2");
    for (uint32_t r = 0; r < p.n_reqs; r++)
        CHECK(p.reqs[r].read.count <= 20);
    CHECK_INT(p.max_count, 20);

    /* max_span 1 turns coalescing off */
    lim.max_span = 1;
    CHECK_INT(build(&p, it, 4, &lim), 0);
    CHECK_INT(p.n_reqs, 4);
}

static void test_never_merged(void)
{
    struct pdm_plan p;
    struct pdm_plan_item it[6] = {
        item("u1", 1, PDM_TABLE_HOLDING, 0, 1, 1000),
        item("u2", 2, PDM_TABLE_HOLDING, 1, 1, 1000),    /* other unit */
        item("in", 1, PDM_TABLE_INPUT, 1, 1, 1000),      /* other table */
        item("slow", 1, PDM_TABLE_HOLDING, 1, 1, 5000),  /* other period */
        item("coil", 1, PDM_TABLE_COIL, 1, 1, 1000),     /* bits */
        item("door", 1, PDM_TABLE_DISCRETE, 1, 1, 1000), /* other bits */
    };
    CHECK_INT(build(&p, it, 6, &defaults), 0);
    CHECK_INT(p.n_reqs, 6);
    for (uint32_t r = 0; r < p.n_reqs; r++)
        CHECK_INT(p.reqs[r].n, 1);
    /* sorted by unit, table, period */
    CHECK_STR(p.items[p.order[p.reqs[0].first]].name, "u1");
    CHECK_STR(p.items[p.order[p.reqs[1].first]].name, "slow");
    CHECK_STR(p.items[p.order[p.reqs[2].first]].name, "in");
    CHECK_STR(p.items[p.order[p.reqs[3].first]].name, "coil");
    CHECK_STR(p.items[p.order[p.reqs[4].first]].name, "door");
    CHECK_STR(p.items[p.order[p.reqs[5].first]].name, "u2");
    /* each sensor is read at its own period */
    CHECK_INT(p.reqs[0].period_ms, 1000);
    CHECK_INT(p.reqs[1].period_ms, 5000);
}

static void test_overlap_and_64bit(void)
{
    struct pdm_plan p;
    /* a u32 at 10..11 and the low word alone at 11: one read of 2 registers */
    struct pdm_plan_item it[4] = {
        item("low", 1, PDM_TABLE_HOLDING, 11, 1, 1000),
        item("both", 1, PDM_TABLE_HOLDING, 10, 2, 1000),
        item("energy", 1, PDM_TABLE_HOLDING, 12, 4, 1000), /* u64 / float64: 12..15 */
        item("inside", 1, PDM_TABLE_HOLDING, 13, 1, 1000), /* within energy */
    };
    CHECK_INT(build(&p, it, 4, &defaults), 0);
    CHECK_INT(p.n_reqs, 1);
    CHECK_STR(req_text(&p, 0), "1 holding 10..15 n=4");
    CHECK_STR(p.items[p.order[0]].name, "both");
    CHECK_STR(p.items[p.order[1]].name, "low");

    /* a 64-bit value is never cut, even with a span smaller than itself */
    struct pdm_plan_limits lim = defaults;
    lim.max_span = 2;
    struct pdm_plan_item big[2] = {
        item("f64", 1, PDM_TABLE_INPUT, 0, 4, 1000),
        item("u16", 1, PDM_TABLE_INPUT, 4, 1, 1000),
    };
    CHECK_INT(build(&p, big, 2, &lim), 0);
    CHECK_INT(p.n_reqs, 2);
    CHECK_STR(req_text(&p, 0), "1 input 0..3 n=1");
    CHECK_INT(p.max_count, 4);
    lim.max_span = 5;
    CHECK_INT(build(&p, big, 2, &lim), 0);
    CHECK_INT(p.n_reqs, 1);
    CHECK_STR(req_text(&p, 0), "1 input 0..4 n=2");
}

static void test_bits(void)
{
    struct pdm_plan p;
    struct pdm_plan_item it[4] = {
        item("running", 1, PDM_TABLE_COIL, 0, 1, 500),
        item("fan", 1, PDM_TABLE_COIL, 1, 1, 500),
        item("defrost", 1, PDM_TABLE_COIL, 9, 1, 500),
        item("far", 1, PDM_TABLE_COIL, 1500, 1, 500),
    };
    CHECK_INT(build(&p, it, 4, &defaults), 0);
    CHECK_INT(p.n_reqs, 2);
    CHECK_STR(req_text(&p, 0), "1 coil 0..9 n=3");
    /* a wide gap setting reaches 1500 bits: the bit span applies, not the register span */
    struct pdm_plan_limits lim = defaults;
    lim.max_gap = 1600;
    CHECK_INT(build(&p, it, 4, &lim), 0);
    CHECK_INT(p.n_reqs, 1);
    CHECK_STR(req_text(&p, 0), "1 coil 0..1500 n=4");
    lim.max_span_bits = 1000;
    CHECK_INT(build(&p, it, 4, &lim), 0);
    CHECK_INT(p.n_reqs, 2);
}

static void test_stable(void)
{
    /* shuffled input; two sensors at the same address keep their item order */
    struct pdm_plan_item it[5] = {
        item("d", 2, PDM_TABLE_HOLDING, 0, 1, 1000),  item("c", 1, PDM_TABLE_HOLDING, 4, 1, 1000),
        item("a", 1, PDM_TABLE_HOLDING, 0, 1, 1000),  item("b2", 1, PDM_TABLE_HOLDING, 2, 1, 1000),
        item("b1", 1, PDM_TABLE_HOLDING, 2, 1, 1000),
    };
    struct pdm_plan p;
    CHECK_INT(build(&p, it, 5, &defaults), 0);
    const char *want[5] = {"a", "b2", "b1", "c", "d"};
    for (int k = 0; k < 5; k++)
        CHECK_STR(p.items[p.order[k]].name, want[k]);
    uint32_t first[5];
    memcpy(first, g_order, sizeof(first));
    CHECK_INT(build(&p, it, 5, &defaults), 0);
    CHECK(memcmp(first, g_order, sizeof(first)) == 0);
    CHECK_INT(p.n_reqs, 2);
}

static void test_invalid(void)
{
    struct pdm_plan p;
    struct pdm_plan_item it = item("x", 1, PDM_TABLE_HOLDING, 65534, 4, 1000);
    CHECK_INT(build(&p, &it, 1, &defaults), -EINVAL); /* runs past 65535 */
    it = item("x", 1, PDM_TABLE_HOLDING, 0, 0, 1000);
    CHECK_INT(build(&p, &it, 1, &defaults), -EINVAL);
    it = item("x", 1, PDM_TABLE_COIL, 0, 2, 1000); /* a coil is one bit */
    CHECK_INT(build(&p, &it, 1, &defaults), -EINVAL);
    it = item("x", 1, PDM_TABLE_HOLDING, 65535, 1, 1000);
    CHECK_INT(build(&p, &it, 1, &defaults), 0);
    struct pdm_plan_limits lim = defaults;
    lim.max_span = 126;
    CHECK_INT(build(&p, &it, 1, &lim), -EINVAL);
    lim = defaults;
    lim.max_span_bits = 2001;
    CHECK_INT(build(&p, &it, 1, &lim), -EINVAL);
    CHECK_INT(build(&p, NULL, 0, &defaults), 0);
    CHECK_INT(p.n_reqs, 0);
}

/* ---- split on exception, against a fake device -------------------------------------------- */

struct fake {
    int max_read;         /* exception 3 above this many registers; 0 = no limit */
    int hole_lo, hole_hi; /* exception 2 for any read touching hole_lo..hole_hi */
    int fail_from;        /* reads from this one on time out (0 = never) */
    int exc4_at;          /* exception 4 for reads covering this address (-1 = never) */
    char reads[32][24];   /* "A..B" of every read, in order */
    int n_reads;
    double value[N_MAX]; /* by item: first register seen, or -1 */
    int rc[N_MAX];       /* by item */
    char why[N_MAX][64]; /* by item */
    int results[N_MAX];  /* by item: results per run */
    int splits;
};

static int fake_read(void *ctx, const struct pdm_read_req *rd, uint16_t *regs, char *err,
                     size_t errlen)
{
    struct fake *f = ctx;
    int lo = rd->address, hi = rd->address + rd->count - 1;
    if (f->n_reads < 32)
        snprintf(f->reads[f->n_reads], sizeof(f->reads[0]), "%d..%d", lo, hi);
    f->n_reads++;
    if (f->fail_from && f->n_reads >= f->fail_from) {
        snprintf(err, errlen, "unit %d: no answer within 100 ms", rd->unit_id);
        return -ETIMEDOUT;
    }
    if (f->max_read && rd->count > f->max_read) {
        snprintf(err, errlen, "unit %d: illegal data value (exception 3)", rd->unit_id);
        return -EINVAL;
    }
    if (hi >= f->hole_lo && lo <= f->hole_hi) {
        snprintf(err, errlen, "unit %d: illegal data address (exception 2)", rd->unit_id);
        return -ENXIO;
    }
    if (f->exc4_at >= lo && f->exc4_at <= hi) {
        snprintf(err, errlen, "unit %d: device failure (exception 4)", rd->unit_id);
        return -EREMOTEIO;
    }
    for (int i = 0; i < rd->count; i++)
        regs[i] = (uint16_t)(lo + i); /* each register holds its own address */
    return 0;
}

static void fake_result(void *ctx, uint32_t item, const uint16_t *regs, int rc, const char *err)
{
    struct fake *f = ctx;
    f->results[item]++;
    f->rc[item] = rc;
    f->value[item] = regs ? regs[0] : -1;
    snprintf(f->why[item], sizeof(f->why[0]), "%s", err);
}

static void fake_split(void *ctx, const struct pdm_read_req *was, const struct pdm_read_req *a,
                       const struct pdm_read_req *b, const char *why)
{
    struct fake *f = ctx;
    (void)why;
    CHECK(a->address == was->address && b->address + b->count == was->address + was->count);
    f->splits++;
}

static void fake_reset(struct fake *f)
{
    f->n_reads = 0;
    f->splits = 0;
    memset(f->results, 0, sizeof(f->results));
    memset(f->rc, 0, sizeof(f->rc));
}

static char g_reads[256];

/* the reads of the last run, "0..5 0..1 2..5" */
static const char *reads(const struct fake *f)
{
    g_reads[0] = '\0';
    for (int i = 0; i < f->n_reads && i < 32; i++) {
        if (i)
            strcat(g_reads, " ");
        strcat(g_reads, f->reads[i]);
    }
    return g_reads;
}

static void test_split_max_read(void)
{
    /* four float32: 0..7; the device takes at most 2 registers per read */
    struct pdm_plan_item it[4] = {
        item("t", 1, PDM_TABLE_HOLDING, 0, 2, 1000),
        item("v", 1, PDM_TABLE_HOLDING, 2, 2, 1000),
        item("p", 1, PDM_TABLE_HOLDING, 4, 2, 1000),
        item("e", 1, PDM_TABLE_HOLDING, 6, 2, 1000),
    };
    struct pdm_plan p;
    CHECK_INT(build(&p, it, 4, &defaults), 0);
    CHECK_INT(p.n_reqs, 1);
    static struct fake f = {.max_read = 2, .hole_lo = -1, .hole_hi = -1, .exc4_at = -1};
    struct pdm_plan_io io = {
        .ctx = &f, .read = fake_read, .result = fake_result, .split = fake_split};
    uint16_t buf[8];
    char err[160] = "";

    CHECK_INT(pdm_plan_run(&p, 0, buf, &io, err, sizeof(err)), 0);
    /* halves, then halves of halves, at once in the first cycle */
    CHECK_STR(reads(&f), "0..7 0..3 0..1 2..3 4..7 4..5 6..7");
    CHECK_INT(f.splits, 3);
    for (int i = 0; i < 4; i++) {
        CHECK_INT(f.results[i], 1);
        CHECK_INT(f.rc[i], 0);
        CHECK_NEAR(f.value[i], it[i].address, 0); /* its own registers, not the piece's first */
    }
    CHECK_INT(pdm_plan_reads(&p, 0), 4);

    /* remembered: the next cycle goes straight to the pieces that work */
    fake_reset(&f);
    CHECK_INT(pdm_plan_run(&p, 0, buf, &io, err, sizeof(err)), 0);
    CHECK_STR(reads(&f), "0..1 2..3 4..5 6..7");
    CHECK_INT(f.splits, 0);
    char line[200];
    pdm_plan_format(&p, 0, line, sizeof(line));
    CHECK_STR(line, "request 1: unit 1 holding 0..7 (4 sensors: t v p e) every 1000 ms, split "
                    "into 4 reads");

    /* a rebuilt plan (agent restart) starts whole again */
    CHECK_INT(build(&p, it, 4, &defaults), 0);
    CHECK_INT(pdm_plan_reads(&p, 0), 1);
}

static void test_split_hole(void)
{
    /* five u16 at 0, 2, 4, 6, 8; register 4 is not mapped: only that sensor fails */
    struct pdm_plan_item it[5] = {
        item("a", 2, PDM_TABLE_INPUT, 0, 1, 1000), item("b", 2, PDM_TABLE_INPUT, 2, 1, 1000),
        item("c", 2, PDM_TABLE_INPUT, 4, 1, 1000), item("d", 2, PDM_TABLE_INPUT, 6, 1, 1000),
        item("e", 2, PDM_TABLE_INPUT, 8, 1, 1000),
    };
    struct pdm_plan p;
    CHECK_INT(build(&p, it, 5, &defaults), 0);
    static struct fake f = {.hole_lo = 4, .hole_hi = 4, .exc4_at = -1};
    struct pdm_plan_io io = {.ctx = &f, .read = fake_read, .result = fake_result}; /* no split cb */
    uint16_t buf[16];
    char err[160] = "";
    CHECK_INT(pdm_plan_run(&p, 0, buf, &io, err, sizeof(err)), 0);
    /* 0..8 -> [a b] [c d e] -> [c] [d e] */
    CHECK_STR(reads(&f), "0..8 0..2 4..8 4..4 6..8");
    CHECK_INT(f.rc[2], -ENXIO);
    CHECK_STR(f.why[2], "unit 2: illegal data address (exception 2)");
    CHECK_NEAR(f.value[2], -1, 0);
    for (int i = 0; i < 5; i++) {
        CHECK_INT(f.results[i], 1);
        if (i != 2) {
            CHECK_INT(f.rc[i], 0);
            CHECK_NEAR(f.value[i], it[i].address, 0);
        }
    }
    fake_reset(&f);
    CHECK_INT(pdm_plan_run(&p, 0, buf, &io, err, sizeof(err)), 0);
    CHECK_STR(reads(&f), "0..2 4..4 6..8");
    CHECK_INT(f.rc[2], -ENXIO);
}

static void test_no_split(void)
{
    struct pdm_plan_item it[3] = {
        item("a", 1, PDM_TABLE_HOLDING, 0, 1, 1000),
        item("b", 1, PDM_TABLE_HOLDING, 1, 1, 1000),
        item("c", 1, PDM_TABLE_HOLDING, 2, 1, 1000),
    };
    struct pdm_plan p;
    uint16_t buf[4];
    char err[160] = "";

    /* exception 4 is not about the request's size: those sensors fail, nothing is split */
    CHECK_INT(build(&p, it, 3, &defaults), 0);
    static struct fake f4 = {.hole_lo = -1, .hole_hi = -1, .exc4_at = 1};
    struct pdm_plan_io io = {.ctx = &f4, .read = fake_read, .result = fake_result};
    CHECK_INT(pdm_plan_run(&p, 0, buf, &io, err, sizeof(err)), 0);
    CHECK_STR(reads(&f4), "0..2");
    for (int i = 0; i < 3; i++)
        CHECK_INT(f4.rc[i], -EREMOTEIO);
    CHECK_INT(pdm_plan_reads(&p, 0), 1);

    /* no answer: the run ends, every sensor gets the failure once, the caller gets it too */
    CHECK_INT(build(&p, it, 3, &defaults), 0);
    static struct fake ft = {
        .max_read = 1, .hole_lo = -1, .hole_hi = -1, .exc4_at = -1, .fail_from = 3};
    io.ctx = &ft;
    CHECK_INT(pdm_plan_run(&p, 0, buf, &io, err, sizeof(err)), -ETIMEDOUT);
    CHECK_STR(err, "unit 1: no answer within 100 ms");
    /* 0..2 refused -> [a] ok -> [b c] times out: b and c fail, nothing more is asked */
    CHECK_STR(reads(&ft), "0..2 0..0 1..2");
    CHECK_INT(ft.rc[0], 0);
    CHECK_INT(ft.rc[1], -ETIMEDOUT);
    CHECK_INT(ft.rc[2], -ETIMEDOUT);
    for (int i = 0; i < 3; i++)
        CHECK_INT(ft.results[i], 1);
}

static void test_frame_gap(void)
{
    /* TCP: only what is configured */
    CHECK_INT(pdm_frame_gap_us(0, 0, 0, 0, 0, -1), 0);
    CHECK_INT(pdm_frame_gap_us(0, 0, 0, 0, 0, 5), 5000);
    /* RTU: 3.5 characters of 10 bits (8N1) or 11 bits (8E1, 8N2), rounded up */
    CHECK_INT(pdm_frame_gap_us(1, 9600, 8, 'N', 1, -1), 3646);
    CHECK_INT(pdm_frame_gap_us(1, 9600, 8, 'E', 1, -1), 4011);
    CHECK_INT(pdm_frame_gap_us(1, 9600, 8, 'N', 2, -1), 4011);
    CHECK_INT(pdm_frame_gap_us(1, 1200, 8, 'N', 1, -1), 29167);
    CHECK_INT(pdm_frame_gap_us(1, 19200, 8, 'N', 1, -1), 1823);
    CHECK_INT(pdm_frame_gap_us(1, 115200, 8, 'N', 1, -1), 1750); /* fixed above 19200 */
    /* configured: more is kept, less is raised to the minimum */
    CHECK_INT(pdm_frame_gap_us(1, 9600, 8, 'N', 1, 20), 20000);
    CHECK_INT(pdm_frame_gap_us(1, 9600, 8, 'N', 1, 0), 3646);
}

int main(void)
{
    test_adjacent();
    test_gap();
    test_span();
    test_never_merged();
    test_overlap_and_64bit();
    test_bits();
    test_stable();
    test_invalid();
    test_split_max_read();
    test_split_hole();
    test_no_split();
    test_frame_gap();
    return check_summary("test_plan");
}
