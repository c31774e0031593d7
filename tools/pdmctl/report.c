/* The check-up report's data: downsampling and gathering from the store (see report.h). */
#include "report.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <time.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "models/alert.h"
#include "models/quality.h"
#include "pdm/v1/pdm.pb-c.h"

#define MIN_SPAN_MS      10000LL /* a plot spans at least 10 s (a fresh installation) */
#define DAY_MS           86400000LL
#define SECONDS_PER_YEAR (365.2425 * 86400.0) /* as models/engine.c computes the age input */

const char *report_kind_name(int kind)
{
    const ProtobufCEnumValue *v =
        protobuf_c_enum_descriptor_get_value(&pdm__v1__alert_kind__descriptor, kind);
    return v ? v->name : "UNKNOWN";
}

/* ---- downsampling ------------------------------------------------------------------------ */

void report_series_init(struct report_series *s, int ncols, int64_t t0, int64_t t1)
{
    memset(s, 0, sizeof(*s));
    s->ncols = ncols < 1 ? 1 : ncols > REPORT_COLS ? REPORT_COLS : ncols;
    s->t0 = t0;
    s->t1 = t1 > t0 ? t1 : t0 + 1;
}

int report_series_col(const struct report_series *s, int64_t ts)
{
    if (ts <= s->t0)
        return 0;
    if (ts >= s->t1)
        return s->ncols - 1;
    /* (ts - t0) < span <= 10 years of ms, times ncols <= 880: far inside int64 */
    int64_t c = (ts - s->t0) * s->ncols / (s->t1 - s->t0);
    return c >= s->ncols ? s->ncols - 1 : (int)c;
}

void report_series_add(struct report_series *s, int64_t ts, double v, int quality)
{
    struct report_bucket *b = &s->b[report_series_col(s, ts)];
    if (quality != PDM_Q_GOOD || !isfinite(v)) {
        b->flagged++;
        s->flagged++;
        if (quality == PDM_Q_OUT_OF_RANGE)
            s->out_of_range++;
        else if (quality == PDM_Q_FROZEN)
            s->frozen++;
        return;
    }
    if (b->n == 0) {
        b->first = b->last = b->min = b->max = v;
        b->t_first = b->t_last = b->t_min = b->t_max = ts;
    } else {
        /* rows come in seq order, which is time order per sensor except after a clock step:
         * compare times rather than trust the order */
        if (ts < b->t_first) {
            b->first = v;
            b->t_first = ts;
        }
        if (ts >= b->t_last) {
            b->last = v;
            b->t_last = ts;
        }
        if (v < b->min) {
            b->min = v;
            b->t_min = ts;
        }
        if (v > b->max) {
            b->max = v;
            b->t_max = ts;
        }
    }
    b->n++;
    if (s->n == 0 || v < s->vmin)
        s->vmin = v;
    if (s->n == 0 || v > s->vmax)
        s->vmax = v;
    if (s->n == 0 || ts >= s->last_ts) {
        s->last_ts = ts;
        s->last_value = v;
    }
    s->n++;
}

/* The column's points in time order, repeats dropped; returns how many (0..4). */
static int column_points(const struct report_bucket *b, int64_t *t, double *v)
{
    if (b->n == 0)
        return 0;
    int64_t pt[4] = {b->t_first, b->t_min, b->t_max, b->t_last};
    double pv[4] = {b->first, b->min, b->max, b->last};
    /* min and max lie between first and last in time; put the earlier of the two first */
    if (pt[2] < pt[1]) {
        int64_t tt = pt[1];
        double tv = pv[1];
        pt[1] = pt[2];
        pv[1] = pv[2];
        pt[2] = tt;
        pv[2] = tv;
    }
    int n = 0;
    for (int i = 0; i < 4; i++) {
        if (n > 0 && pt[i] == t[n - 1] && pv[i] == v[n - 1])
            continue;
        t[n] = pt[i];
        v[n] = pv[i];
        n++;
    }
    return n;
}

int report_series_next_point(const struct report_series *s, int64_t gap_ms, struct report_iter *it,
                             struct report_point *p)
{
    for (; it->col < s->ncols; it->col++, it->k = 0) {
        int64_t t[4];
        double v[4];
        int n = column_points(&s->b[it->col], t, v);
        if (it->k >= n)
            continue;
        p->col = it->col;
        p->t = t[it->k];
        p->v = v[it->k];
        p->pen_up = !it->started || (it->k == 0 && p->t - it->prev_t > gap_ms);
        it->started = 1;
        it->prev_t = p->t;
        it->k++;
        return 1;
    }
    return 0;
}

/* ---- gathering --------------------------------------------------------------------------- */

static int add_row(void *ctx, const struct pdm_row *row)
{
    struct report *rep = ctx;
    if (row->kind == PDM_ROW_SCORE) {
        if (!rep->asset_stored || row->ref != rep->asset_ref)
            return 0;
        report_series_add(&rep->prob, row->ts_ms, row->value, PDM_Q_GOOD);
        if (isfinite(row->value) && (!rep->has_score || row->ts_ms >= rep->score_ts)) {
            rep->has_score = 1;
            rep->score_ts = row->ts_ms;
            rep->score_p = row->value;
        }
        return 0;
    }
    if (row->kind != PDM_ROW_READING)
        return 0;
    for (uint32_t i = 0; i < rep->n_in; i++)
        if (rep->in[i].stored && rep->in[i].ref == row->ref)
            report_series_add(&rep->in[i].s, row->ts_ms, row->value, row->quality);
    return 0;
}

static void copy_str(char *dst, size_t len, const char *src)
{
    snprintf(dst, len, "%s", src ? src : "");
}

/* Decodes what the list shows from the alert as published; kind -1 when it does not decode. */
static void decode_alert(const struct pdm_store_alert_row *a, struct report_alert *out)
{
    memset(out, 0, sizeof(*out));
    out->seq = a->seq;
    out->ts_ms = a->ts_ms;
    copy_str(out->alert_id, sizeof(out->alert_id), a->alert_id);
    out->state = a->state;
    out->severity = a->severity;
    out->delivered = a->delivered;
    out->kind = -1;
    Pdm__V1__Alert *m =
        a->len > 0 ? pdm__v1__alert__unpack(NULL, a->len, (const uint8_t *)a->payload) : NULL;
    if (!m)
        return;
    out->kind = (int)m->kind;
    out->probability = m->probability;
    out->health = m->health_score;
    copy_str(out->sensor, sizeof(out->sensor), m->sensor);
    copy_str(out->reason, sizeof(out->reason), m->reason);
    copy_str(out->model_id, sizeof(out->model_id), m->model_id);
    out->model_version = m->model_version;
    /* the agent sends inputs largest |contribution| first */
    for (size_t i = 0; i < m->n_inputs && out->n_top < REPORT_TOP_INPUTS; i++) {
        const Pdm__V1__InputContribution *in = m->inputs[i];
        struct report_top *t = &out->top[out->n_top++];
        copy_str(t->name, sizeof(t->name), in->name);
        copy_str(t->sensor, sizeof(t->sensor), in->sensor);
        t->value = in->value;
        t->z = in->z;
        t->contribution = in->contribution;
    }
    pdm__v1__alert__free_unpacked(m, NULL);
}

struct alerts_ctx {
    struct report *rep;
    int risk_seen;      /* the asset's newest fault-risk event was looked at */
    char risk_open[96]; /* its alert_id while the episode's RAISED is still to be found */
    int fault_seen[PDM_ASSET_MAX_INPUTS]; /* the same per input, for its sensor's faults */
    char fault_open[PDM_ASSET_MAX_INPUTS][96];
};

static int add_alert(void *ctx, const struct pdm_store_alert_row *a)
{
    struct alerts_ctx *c = ctx;
    struct report *rep = c->rep;
    int input = -1; /* a sensor fault of this input's sensor (its first input) */
    if (strncmp(a->asset, "sensor:", 7) == 0) {
        for (uint32_t i = 0; i < rep->n_in && input < 0; i++)
            if (rep->in[i].sensor && rep->in[i].sensor_first == (int)i &&
                strcmp(rep->in[i].sensor->name, a->asset + 7) == 0)
                input = (int)i;
        if (input < 0)
            return 0;
    } else if (strcmp(a->asset, rep->asset->name) != 0) {
        return 0;
    }
    int *seen = input >= 0 ? &c->fault_seen[input] : &c->risk_seen;
    char *open_id = input >= 0 ? c->fault_open[input] : c->risk_open;
    int in_period = a->ts_ms >= rep->from_ms;
    int newest = !*seen;
    if (!in_period && !newest && !open_id[0])
        return 0;
    struct report_alert al;
    decode_alert(a, &al);
    if (newest) { /* newest first: the first event seen tells whether the episode is open */
        *seen = 1;
        int open = a->state != PDM_ALERT_CLEARED;
        if (open)
            copy_str(open_id, 96, a->alert_id);
        if (input >= 0) {
            rep->in[input].fault_open = open;
            if (open)
                copy_str(rep->in[input].fault_reason, sizeof(rep->in[input].fault_reason),
                         al.reason);
        } else {
            rep->risk_open = open;
            if (open)
                rep->risk_last = al;
        }
    }
    if (open_id[0] && a->state == PDM_ALERT_RAISED && strcmp(a->alert_id, open_id) == 0) {
        /* the start of the open episode */
        if (input >= 0)
            rep->in[input].fault_since_ms = a->ts_ms;
        else
            rep->risk_since_ms = a->ts_ms;
        open_id[0] = '\0';
    }
    if (!in_period)
        return 0;
    rep->alerts_total++;
    if (input >= 0 && a->state == PDM_ALERT_RAISED)
        rep->in[input].faults_raised++;
    if (rep->n_alerts < REPORT_MAX_ALERTS)
        rep->alerts[rep->n_alerts++] = al;
    return 0;
}

int report_gather(struct report *rep, const struct pdm_config *cfg,
                  const struct pdm_asset_cfg *asset, struct pdm_store_reader *r,
                  const char *db_path, int days, int64_t now_ms, char *err, size_t errlen)
{
    memset(rep, 0, sizeof(*rep));
    rep->cfg = cfg;
    rep->asset = asset;
    rep->db_path = db_path;
    rep->days = days;
    rep->generated_ms = now_ms;
    rep->to_ms = now_ms;
    rep->from_ms = now_ms - (int64_t)days * DAY_MS;

    int ret;
    rep->n_in = asset->model.n_inputs;
    for (uint32_t i = 0; i < rep->n_in; i++) {
        struct report_input *in = &rep->in[i];
        in->model = &asset->model.inputs[i];
        int32_t si = asset->inputs[i].sensor;
        in->sensor_first = (int)i;
        if (in->model->is_age || si < 0 || (uint32_t)si >= cfg->n_sensors) {
            if (asset->installed_s > 0)
                in->age_years =
                    ((double)now_ms / 1000.0 - (double)asset->installed_s) / SECONDS_PER_YEAR;
            continue;
        }
        in->sensor = &cfg->sensors[si];
        for (uint32_t k = 0; k < i; k++)
            if (rep->in[k].sensor == in->sensor) {
                in->sensor_first = (int)k;
                break;
            }
        ret = pdm_store_reader_name_id(r, PDM_ROW_READING, in->sensor->name, &in->ref, err, errlen);
        if (ret != 0 && ret != -ENOENT)
            return ret;
        in->stored = ret == 0;
    }
    ret = pdm_store_reader_name_id(r, PDM_ROW_SCORE, asset->name, &rep->asset_ref, err, errlen);
    if (ret != 0 && ret != -ENOENT)
        return ret;
    rep->asset_stored = ret == 0;

    /* The plot starts at the first stored value of the period, so a buffer holding two hours
     * shows two hours across the page, not a sliver at the right end of a week. */
    rep->t0 = rep->to_ms;
    rep->t1 = rep->to_ms;
    uint32_t refs[PDM_ASSET_MAX_INPUTS];
    int n_refs = 0;
    for (uint32_t i = 0; i < rep->n_in; i++)
        if (rep->in[i].stored && rep->in[i].sensor_first == (int)i)
            refs[n_refs++] = rep->in[i].ref;
    int64_t lo, hi;
    if (n_refs > 0) {
        ret = pdm_store_reader_span(r, PDM_ROW_READING, refs, n_refs, rep->from_ms, rep->to_ms, &lo,
                                    &hi, err, errlen);
        if (ret != 0 && ret != -ENOENT)
            return ret;
        if (ret == 0 && lo < rep->t0)
            rep->t0 = lo;
    }
    if (rep->asset_stored) {
        ret = pdm_store_reader_span(r, PDM_ROW_SCORE, &rep->asset_ref, 1, rep->from_ms, rep->to_ms,
                                    &lo, &hi, err, errlen);
        if (ret != 0 && ret != -ENOENT)
            return ret;
        if (ret == 0 && lo < rep->t0)
            rep->t0 = lo;
    }
    if (rep->t0 == rep->to_ms) /* nothing stored in the period: show all of it, empty */
        rep->t0 = rep->from_ms;
    if (rep->t1 - rep->t0 < MIN_SPAN_MS)
        rep->t0 = rep->t1 - MIN_SPAN_MS;

    for (uint32_t i = 0; i < rep->n_in; i++)
        report_series_init(&rep->in[i].s, REPORT_COLS, rep->t0, rep->t1);
    report_series_init(&rep->prob, REPORT_COLS, rep->t0, rep->t1);
    ret = pdm_store_reader_rows(r, rep->from_ms, rep->to_ms, add_row, rep, err, errlen);
    if (ret != 0)
        return ret;
    if (rep->has_score)
        rep->health = pdm_health_score(rep->score_p);

    struct alerts_ctx ac = {.rep = rep};
    ret = pdm_store_reader_alerts(r, INT64_MIN, add_alert, &ac, err, errlen);
    if (ret != 0)
        return ret;
    ret = pdm_store_reader_summary(r, &rep->buf, err, errlen);
    if (ret != 0)
        return ret;
    return report_read_maintenance(rep, r, err, errlen);
}

/* ---- maintenance counters ------------------------------------------------------------------
 * The agent's usage counters (agent/usage.h, issue 6): the `usage` table, one row per asset,
 * and the `services` table, one row per recorded service visit. Stores made by agents before
 * them have neither: the section then says none are stored. */

static void add_counter(struct report *rep, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void add_counter(struct report *rep, const char *name, const char *fmt, ...)
{
    if (rep->n_counters >= REPORT_MAX_COUNTER)
        return;
    struct report_counter *c = &rep->counters[rep->n_counters++];
    copy_str(c->name, sizeof(c->name), name);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->value, sizeof(c->value), fmt, ap);
    va_end(ap);
}

/* The column named name of a row, or "" */
static const char *col(int ncol, const char *const *names, const char *const *values,
                       const char *name)
{
    for (int i = 0; i < ncol; i++)
        if (strcmp(names[i], name) == 0)
            return values[i] ? values[i] : "";
    return "";
}

static void fmt_date(char *out, size_t len, long long ms)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (ms <= 0 || !gmtime_r(&t, &tm))
        snprintf(out, len, "-");
    else
        strftime(out, len, "%Y-%m-%d %H:%M UTC", &tm);
}

static int usage_row(void *ctx, int ncol, const char *const *names, const char *const *values)
{
    struct report *rep = ctx;
    if (strcmp(col(ncol, names, values, "asset"), rep->asset->name) != 0)
        return 0;
    double run_ms = atof(col(ncol, names, values, "run_ms"));
    double svc_ms = atof(col(ncol, names, values, "svc_run_ms"));
    long long starts = atoll(col(ncol, names, values, "starts"));
    long long svc_starts = atoll(col(ncol, names, values, "svc_starts"));
    long long svc_ts = atoll(col(ncol, names, values, "svc_ts_ms"));
    long long confirm = atoll(col(ncol, names, values, "confirm_ts_ms"));
    char d[40];
    add_counter(rep, "run hours", "%.1f", run_ms / 3600000.0);
    add_counter(rep, "starts", "%lld", starts);
    add_counter(rep, "running at the last commit", "%s",
                atoi(col(ncol, names, values, "running")) ? "yes" : "no");
    add_counter(rep, "run hours since service", "%.1f",
                (run_ms > svc_ms ? run_ms - svc_ms : 0) / 3600000.0);
    add_counter(rep, "starts since service", "%lld", starts > svc_starts ? starts - svc_starts : 0);
    fmt_date(d, sizeof(d), svc_ts);
    add_counter(rep, "last service visit", "%s", svc_ts > 0 ? d : "none recorded");
    if (confirm > 0) {
        fmt_date(d, sizeof(d), confirm);
        add_counter(rep, "service outcome due", "%s", d);
    }
    return 0;
}

/* The newest visit of the asset (rows come in id order: the last one wins). */
static int service_row(void *ctx, int ncol, const char *const *names, const char *const *values)
{
    struct report *rep = ctx;
    if (strcmp(col(ncol, names, values, "asset"), rep->asset->name) != 0)
        return 0;
    static const char *const outcome[] = {"pending", "fix confirmed", "fault persists"};
    int o = atoi(col(ncol, names, values, "outcome"));
    char d[40];
    fmt_date(d, sizeof(d), atoll(col(ncol, names, values, "ts_ms")));
    /* replaces the previous visit's entry, which is the last counter */
    if (rep->n_counters > 0 && strcmp(rep->counters[rep->n_counters - 1].name, "last visit") == 0)
        rep->n_counters--;
    const char *tech = col(ncol, names, values, "technician");
    const char *note = col(ncol, names, values, "note");
    add_counter(rep, "last visit", "%s%s%.24s%s%.32s: %s", d, *tech ? ", " : "", tech,
                *note ? ", " : "", note, o >= 0 && o <= 2 ? outcome[o] : "?");
    return 0;
}

int report_read_maintenance(struct report *rep, struct pdm_store_reader *r, char *err,
                            size_t errlen)
{
    rep->n_counters = 0;
    rep->maint_source = NULL;
    int ret = pdm_store_reader_table(r, "usage", usage_row, rep, err, errlen);
    if (ret == -ENOENT)
        return 0; /* a store from before the usage counters */
    if (ret != 0)
        return ret;
    ret = pdm_store_reader_table(r, "services", service_row, rep, err, errlen);
    if (ret != 0 && ret != -ENOENT)
        return ret;
    if (rep->n_counters > 0)
        rep->maint_source = "usage and services tables";
    return 0;
}
