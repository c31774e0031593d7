/* The check-up report as one JSON object: the data the page is drawn from (fields listed in
 * `pdmctl report --help`). Numbers as lib/json.h writes them (shortest round-trip digits;
 * null when not finite). */
#include "report.h"

#include <inttypes.h>
#include <math.h>

#include "models/alert.h"
#include "pdm/v1/pdm.pb-c.h"
#include "print.h"

static void jkey(FILE *f, const char *key, int *first)
{
    fprintf(f, "%s\"%s\":", *first ? "" : ",", key);
    *first = 0;
}

static void jstr_field(FILE *f, const char *key, const char *v, int *first)
{
    jkey(f, key, first);
    pdm_json_fstr(f, v);
}

/* The non-empty buckets as parallel arrays. */
static void columns(FILE *f, const struct report_series *s)
{
    static const char *const names[] = {"t_ms", "n", "flagged", "first", "min", "max", "last"};
    int64_t col_ms = (s->t1 - s->t0) / s->ncols;
    fprintf(f, "{\"col_ms\":%" PRId64, col_ms);
    for (int k = 0; k < 7; k++) {
        fprintf(f, ",\"%s\":[", names[k]);
        int n = 0;
        for (int c = 0; c < s->ncols; c++) {
            const struct report_bucket *b = &s->b[c];
            if (b->n == 0 && b->flagged == 0)
                continue;
            if (n++)
                fputc(',', f);
            switch (k) {
            case 0:
                fprintf(f, "%" PRId64, s->t0 + (s->t1 - s->t0) * c / s->ncols);
                break;
            case 1:
                fprintf(f, "%u", b->n);
                break;
            case 2:
                fprintf(f, "%u", b->flagged);
                break;
            default:
                if (b->n == 0)
                    fputs("null", f);
                else
                    pdm_json_fnum(f, k == 3   ? b->first
                                     : k == 4 ? b->min
                                     : k == 5 ? b->max
                                              : b->last);
            }
        }
        fputc(']', f);
    }
    fputc('}', f);
}

static void series_stats(FILE *f, const struct report_series *s)
{
    fprintf(f,
            ",\"readings\":%" PRIu64 ",\"flagged\":%" PRIu64 ",\"out_of_range\":%" PRIu64
            ",\"frozen\":%" PRIu64,
            s->n + s->flagged, s->flagged, s->out_of_range, s->frozen);
    if (s->n > 0) {
        fprintf(f, ",\"min\":");
        pdm_json_fnum(f, s->vmin);
        fprintf(f, ",\"max\":");
        pdm_json_fnum(f, s->vmax);
        fprintf(f, ",\"last\":");
        pdm_json_fnum(f, s->last_value);
        fprintf(f, ",\"last_ts_ms\":%" PRId64, s->last_ts);
    } else {
        fprintf(f, ",\"min\":null,\"max\":null,\"last\":null,\"last_ts_ms\":null");
    }
    fprintf(f, ",\"columns\":");
    columns(f, s);
}

static void alert_obj(FILE *f, const struct report_alert *a)
{
    int first = 1;
    fputc('{', f);
    jkey(f, "seq", &first);
    fprintf(f, "%" PRIu64, a->seq);
    jkey(f, "ts_ms", &first);
    fprintf(f, "%" PRId64, a->ts_ms);
    jstr_field(f, "alert_id", a->alert_id, &first);
    jstr_field(f, "kind", a->kind >= 0 ? report_kind_name(a->kind) : "UNDECODED", &first);
    jstr_field(f, "state",
               a->state >= PDM_ALERT_RAISED && a->state <= PDM_ALERT_CLEARED
                   ? pdm_alert_state_name(a->state)
                   : "?",
               &first);
    jstr_field(f, "severity",
               a->severity >= PDM_SEV_NONE && a->severity <= PDM_SEV_CRITICAL
                   ? pdm_severity_name(a->severity)
                   : "?",
               &first);
    if (a->kind == PDM__V1__ALERT_KIND__FAULT_RISK) {
        jkey(f, "probability", &first);
        pdm_json_fnum(f, a->probability);
        jkey(f, "health_score", &first);
        fprintf(f, "%u", a->health);
        jstr_field(f, "model_id", a->model_id, &first);
        jkey(f, "model_version", &first);
        fprintf(f, "%u", a->model_version);
    }
    if (a->sensor[0] || a->reason[0]) {
        jstr_field(f, "sensor", a->sensor, &first);
        jstr_field(f, "reason", a->reason, &first);
    }
    jkey(f, "top_inputs", &first);
    fputc('[', f);
    for (uint32_t k = 0; k < a->n_top; k++) {
        const struct report_top *t = &a->top[k];
        fprintf(f, "%s{\"name\":", k ? "," : "");
        pdm_json_fstr(f, t->name);
        fprintf(f, ",\"sensor\":");
        pdm_json_fstr(f, t->sensor);
        fprintf(f, ",\"value\":");
        pdm_json_fnum(f, t->value);
        fprintf(f, ",\"z\":");
        pdm_json_fnum(f, t->z);
        fprintf(f, ",\"contribution\":");
        pdm_json_fnum(f, t->contribution);
        fputc('}', f);
    }
    fputc(']', f);
    jkey(f, "delivered", &first);
    fputs(a->delivered ? "true" : "false", f);
    fputc('}', f);
}

int report_write_json(FILE *f, const struct report *rep)
{
    const struct pdm_model *m = &rep->asset->model;
    int first = 1;
    fputc('{', f);
    jstr_field(f, "asset", rep->asset->name, &first);
    jstr_field(f, "device_id", rep->cfg->device_id, &first);
    jstr_field(f, "config", rep->cfg->path, &first);
    jstr_field(f, "db", rep->db_path, &first);
    fprintf(f,
            ",\"generated_ms\":%" PRId64 ",\"days\":%d,\"from_ms\":%" PRId64 ",\"to_ms\":%" PRId64
            ",\"plot_from_ms\":%" PRId64 ",\"plot_to_ms\":%" PRId64,
            rep->generated_ms, rep->days, rep->from_ms, rep->to_ms, rep->t0, rep->t1);

    fprintf(f, ",\"model\":{\"id\":");
    pdm_json_fstr(f, m->id);
    fprintf(f, ",\"version\":%u,\"sha256\":\"%s\",\"path\":", m->version, m->sha256);
    pdm_json_fstr(f, rep->asset->model_path);
    fprintf(f, ",\"warning\":");
    pdm_json_fnum(f, m->warning);
    fprintf(f, ",\"critical\":");
    pdm_json_fnum(f, m->critical);
    fprintf(f, ",\"clear\":");
    pdm_json_fnum(f, m->clear);
    fprintf(f, ",\"hold\":%d,\"eval_period_ms\":%d}", m->hold, m->eval_period_ms);

    fprintf(f, ",\"health\":{\"visit_below\":%d", REPORT_HEALTH_VISIT);
    if (rep->has_score) {
        fprintf(f, ",\"score\":%u,\"probability\":", rep->health);
        pdm_json_fnum(f, rep->score_p);
        fprintf(f, ",\"ts_ms\":%" PRId64 ",\"visit_due\":%s", rep->score_ts,
                rep->health < REPORT_HEALTH_VISIT ? "true" : "false");
    } else {
        fprintf(f, ",\"score\":null,\"probability\":null,\"ts_ms\":null,\"visit_due\":null");
    }
    fprintf(f, ",\"open_alert\":");
    if (rep->risk_open) {
        alert_obj(f, &rep->risk_last);
        fprintf(f, ",\"open_since_ms\":%" PRId64, rep->risk_since_ms);
    } else {
        fprintf(f, "null");
    }
    fputc('}', f);

    fprintf(f, ",\"inputs\":[");
    for (uint32_t i = 0; i < rep->n_in; i++) {
        const struct report_input *in = &rep->in[i];
        fprintf(f, "%s{\"input\":", i ? "," : "");
        pdm_json_fstr(f, in->model->name);
        fprintf(f, ",\"center\":");
        pdm_json_fnum(f, in->model->center);
        fprintf(f, ",\"scale\":");
        pdm_json_fnum(f, in->model->scale);
        fprintf(f, ",\"weight\":");
        pdm_json_fnum(f, in->model->weight);
        if (!in->sensor) {
            fprintf(f, ",\"sensor\":null,\"age_years\":");
            pdm_json_fnum(f, in->age_years);
            fputc('}', f);
            continue;
        }
        fprintf(f, ",\"sensor\":");
        pdm_json_fstr(f, in->sensor->name);
        fprintf(f, ",\"unit\":");
        pdm_json_fstr(f, in->sensor->unit);
        fprintf(f, ",\"stat\":\"%s\",\"window_s\":", pdm_stat_name(in->model->stat));
        pdm_json_fnum(f, in->model->window_s);
        fprintf(f, ",\"stored\":%s", in->stored ? "true" : "false");
        series_stats(f, &in->s);
        fputc('}', f);
    }
    fprintf(f, "]");

    fprintf(f, ",\"probability\":{\"scores\":%" PRIu64, rep->prob.n);
    fprintf(f, ",\"columns\":");
    columns(f, &rep->prob);
    fputc('}', f);

    fprintf(f, ",\"alerts\":{\"total\":%d,\"listed\":%d,\"events\":[", rep->alerts_total,
            rep->n_alerts);
    for (int i = 0; i < rep->n_alerts; i++) {
        if (i)
            fputc(',', f);
        alert_obj(f, &rep->alerts[i]);
    }
    fprintf(f, "]}");

    fprintf(f, ",\"quality\":[");
    int n = 0;
    for (uint32_t i = 0; i < rep->n_in; i++) {
        const struct report_input *in = &rep->in[i];
        if (!in->sensor || in->sensor_first != (int)i)
            continue;
        fprintf(f, "%s{\"sensor\":", n++ ? "," : "");
        pdm_json_fstr(f, in->sensor->name);
        fprintf(f,
                ",\"readings\":%" PRIu64 ",\"out_of_range\":%" PRIu64 ",\"frozen\":%" PRIu64
                ",\"faults_raised\":%d,\"fault_open\":%s,\"fault_reason\":",
                in->s.n + in->s.flagged, in->s.out_of_range, in->s.frozen, in->faults_raised,
                in->fault_open ? "true" : "false");
        pdm_json_fstr(f, in->fault_open ? in->fault_reason : "");
        fprintf(f, ",\"fault_since_ms\":%" PRId64 "}", in->fault_open ? in->fault_since_ms : 0);
    }
    fprintf(f, "]");

    const struct pdm_store_summary *b = &rep->buf;
    fprintf(
        f,
        ",\"buffer\":{\"schema_version\":%" PRId64 ",\"db_bytes\":%" PRIu64
        ",\"max_bytes\":%" PRIu64 ",\"rows\":%" PRId64 ",\"rows_undelivered\":%" PRId64
        ",\"alerts\":%" PRId64 ",\"alerts_undelivered\":%" PRId64
        ",\"oldest_undelivered_ms\":%" PRId64 ",\"rows_delivered\":%" PRId64
        ",\"alerts_delivered\":%" PRId64 ",\"rows_dropped\":%" PRId64 ",\"next_seq\":%" PRId64 "}",
        b->schema, b->file_bytes + b->wal_bytes, (uint64_t)rep->cfg->buffer_max_mb * 1048576u,
        b->rows, b->rows_undelivered, b->alerts, b->alerts_undelivered, b->oldest_undelivered_ms,
        b->rows_delivered, b->alerts_delivered, b->rows_dropped, b->next_seq);

    fprintf(f, ",\"maintenance\":{\"source\":");
    if (rep->maint_source)
        pdm_json_fstr(f, rep->maint_source);
    else
        fputs("null", f);
    fprintf(f, ",\"counters\":[");
    for (int i = 0; i < rep->n_counters; i++) {
        fprintf(f, "%s{\"name\":", i ? "," : "");
        pdm_json_fstr(f, rep->counters[i].name);
        fprintf(f, ",\"value\":");
        pdm_json_fstr(f, rep->counters[i].value);
        fputc('}', f);
    }
    fprintf(f, "]}}\n");
    return ferror(f) ? -1 : 0;
}
