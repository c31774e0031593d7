/* The check-up report (tools/pdmctl/report*.c): HTML escaping, the min/max-per-pixel
 * downsampling against a brute-force reference, and a week of data in a real store read back
 * into a report, page and JSON. */
#define _XOPEN_SOURCE 700 /* nftw() for cleaning up the temporary folder */
#include "agent/store.h"
#include "agent/store_read.h"
#include "check.h"
#include "pdm/v1/pdm.pb-c.h"
#include "tools/pdmctl/report.h"

#include <errno.h>
#include <ftw.h>
#include <sqlite3.h>
#include <time.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define DAY_MS 86400000LL

static char g_base[64];

/* What report_html_escape writes for s. */
static const char *escaped(const char *s)
{
    static char out[512];
    out[0] = '\0';
    FILE *f = fmemopen(out, sizeof(out), "w");
    report_html_escape(f, s);
    fclose(f);
    return out;
}

static void test_escape(void)
{
    CHECK_STR(escaped("comp_temp"), "comp_temp");
    CHECK_STR(escaped("<b>W</b>&\"'"), "&lt;b&gt;W&lt;/b&gt;&amp;&quot;&#39;");
    CHECK_STR(escaped("</svg><script>x()</script>"),
              "&lt;/svg&gt;&lt;script&gt;x()&lt;/script&gt;");
    CHECK_STR(escaped("&amp;"), "&amp;amp;"); /* already escaped text is escaped again */
    CHECK_STR(escaped("a\tb\nc"), "a b c");
    CHECK_STR(escaped("a\x01"
                      "b\x7f"),
              "a&#xFFFD;b&#xFFFD;");
    /* valid UTF-8 stays as it is */
    CHECK_STR(escaped("\xc2\xb5m/s \xc2\xb0"
                      "C \xe2\x82\xac \xf0\x9f\x94\xa7"),
              "\xc2\xb5m/s \xc2\xb0"
              "C \xe2\x82\xac \xf0\x9f\x94\xa7");
    /* invalid UTF-8 becomes U+FFFD, byte by byte, and never swallows what follows */
    CHECK_STR(escaped("a\xff<"), "a&#xFFFD;&lt;");
    CHECK_STR(escaped("\xc0\x80"), "&#xFFFD;&#xFFFD;");                         /* overlong NUL */
    CHECK_STR(escaped("\xed\xa0\x80"), "&#xFFFD;&#xFFFD;&#xFFFD;");             /* surrogate */
    CHECK_STR(escaped("\xe2\x82<"), "&#xFFFD;&#xFFFD;&lt;");                    /* cut short */
    CHECK_STR(escaped("\xf4\x90\x80\x80"), "&#xFFFD;&#xFFFD;&#xFFFD;&#xFFFD;"); /* > U+10FFFF */
    CHECK_STR(escaped(NULL), "");
}

/* xorshift: reproducible noise */
static uint64_t rng = 88172645463325252ULL;
static double noise(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0 - 0.5;
}

/* A week at 1 Hz (604,800 values) with one spike and a 6-hour hole: every bucket must hold
 * exactly the first/last/min/max a brute-force pass finds, the spike must reach its pixel, the
 * line must break at the hole and nowhere else, and the line needs at most 4 points a column. */
static void test_downsample(void)
{
    static struct report_series s;
    static double ref_min[REPORT_COLS], ref_max[REPORT_COLS];
    static int64_t ref_first_t[REPORT_COLS], ref_last_t[REPORT_COLS];
    static double ref_first[REPORT_COLS], ref_last[REPORT_COLS];
    static uint32_t ref_n[REPORT_COLS];
    const int64_t t0 = 1700000000000LL, t1 = t0 + 7 * DAY_MS;
    const int64_t hole_lo = t0 + 3 * DAY_MS, hole_hi = hole_lo + 6 * 3600000LL;
    const int64_t spike_t = t0 + 5 * DAY_MS + 12345000;
    report_series_init(&s, REPORT_COLS, t0, t1);
    CHECK_INT(s.ncols, REPORT_COLS);
    uint64_t flagged = 0, good = 0;
    for (int64_t t = t0; t < t1; t += 1000) {
        if (t >= hole_lo && t < hole_hi)
            continue;
        double v = 20.0 + 5.0 * sin((double)(t - t0) / 3.6e6) + noise();
        int q = 0;
        if (t == spike_t)
            v = 95.0;
        if ((t / 1000) % 9973 == 0) { /* now and then a flagged reading with an absurd value */
            q = 1;
            v = 1e6;
        }
        report_series_add(&s, t, v, q);
        /* the reference: the column computed here, independently */
        int c = (int)((t - t0) * REPORT_COLS / (t1 - t0));
        if (q) {
            flagged++;
            continue;
        }
        good++;
        if (ref_n[c] == 0 || v < ref_min[c])
            ref_min[c] = v;
        if (ref_n[c] == 0 || v > ref_max[c])
            ref_max[c] = v;
        if (ref_n[c] == 0) {
            ref_first[c] = v;
            ref_first_t[c] = t;
        }
        ref_last[c] = v;
        ref_last_t[c] = t;
        ref_n[c]++;
    }
    CHECK_INT(s.n, good);
    CHECK_INT(s.flagged, flagged);
    CHECK_INT(s.out_of_range, flagged);
    CHECK(s.vmax == 95.0);
    int bad = 0, empty = 0;
    for (int c = 0; c < REPORT_COLS; c++) {
        const struct report_bucket *b = &s.b[c];
        if (ref_n[c] == 0) {
            empty += b->n == 0;
            continue;
        }
        if (b->n != ref_n[c] || b->min != ref_min[c] || b->max != ref_max[c] ||
            b->first != ref_first[c] || b->last != ref_last[c] || b->t_first != ref_first_t[c] ||
            b->t_last != ref_last_t[c])
            bad++;
    }
    CHECK_INT(bad, 0);
    CHECK(empty >= 30); /* 6 h of 168 h is 31 columns */
    CHECK(s.b[report_series_col(&s, spike_t)].max == 95.0);

    /* the line: time-ordered points, the spike among them, one break at the hole */
    struct report_iter it = {0};
    struct report_point p;
    int n = 0, pen_ups = 0, ordered = 1, spike = 0, break_at_hole = 0;
    int64_t prev = INT64_MIN;
    int64_t col_ms = (t1 - t0) / REPORT_COLS;
    while (report_series_next_point(&s, 3 * col_ms, &it, &p)) {
        n++;
        ordered &= p.t >= prev;
        spike += p.v == 95.0 && p.t == spike_t;
        if (p.pen_up) {
            pen_ups++;
            break_at_hole += p.t >= hole_hi && p.t < hole_hi + col_ms;
        }
        prev = p.t;
    }
    printf("downsample: %llu values -> %d points in %d columns\n", (unsigned long long)good, n,
           REPORT_COLS);
    CHECK(n <= 4 * REPORT_COLS);
    CHECK(n >= 2 * (REPORT_COLS - 31)); /* noisy data: at least min and max per column */
    CHECK(ordered);
    CHECK_INT(spike, 1);
    CHECK_INT(pen_ups, 2); /* the start and after the hole */
    CHECK_INT(break_at_hole, 1);

    /* out-of-range times go to the edge columns; a degenerate range is widened */
    CHECK_INT(report_series_col(&s, t0 - 5), 0);
    CHECK_INT(report_series_col(&s, t1 + 5), REPORT_COLS - 1);
    report_series_init(&s, 5000, 10, 10);
    CHECK_INT(s.ncols, REPORT_COLS);
    CHECK(s.t1 > s.t0);
    report_series_add(&s, 10, 1.0, 0);
    report_series_add(&s, 10, NAN, 0); /* not a number: counted as flagged, not plotted */
    CHECK_INT(s.n, 1);
    CHECK_INT(s.flagged, 1);
    it = (struct report_iter){0};
    CHECK_INT(report_series_next_point(&s, 1000, &it, &p), 1);
    CHECK(p.pen_up && p.v == 1.0);
    CHECK_INT(report_series_next_point(&s, 1000, &it, &p), 0);
}

/* ---- a week in a real store -------------------------------------------------------------- */

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        exit(2);
    }
    fputs(text, f);
    fclose(f);
}

static int put_alert(struct pdm_store *s, const char *asset, const char *id, int state, int sev,
                     int kind, int64_t ts, double p)
{
    Pdm__V1__InputContribution in[2] = {PDM__V1__INPUT_CONTRIBUTION__INIT,
                                        PDM__V1__INPUT_CONTRIBUTION__INIT};
    Pdm__V1__InputContribution *ins[2] = {&in[0], &in[1]};
    in[0].name = "vibration";
    in[0].sensor = "v";
    in[0].value = 7.5;
    in[0].z = 2.5;
    in[0].contribution = 3.5;
    in[1].name = "temperature";
    in[1].sensor = "t";
    in[1].value = 57;
    in[1].z = 1.5;
    in[1].contribution = 2.4;
    Pdm__V1__Alert a = PDM__V1__ALERT__INIT;
    uint64_t seq = pdm_store_alloc_seq(s);
    a.asset = (char *)asset;
    a.alert_id = (char *)id;
    a.seq = seq;
    a.state = state;
    a.severity = sev;
    a.kind = kind;
    a.ts_ms = ts;
    if (kind == PDM__V1__ALERT_KIND__FAULT_RISK) {
        a.probability = p;
        a.health_score = pdm_health_score(p);
        a.model_id = "compressor";
        a.model_version = 1;
        a.n_inputs = 2;
        a.inputs = ins;
    } else {
        a.sensor = "v";
        a.reason = "value 181 outside valid range <0..150> & more";
    }
    uint8_t buf[1024];
    size_t len = pdm__v1__alert__pack(&a, buf);
    return pdm_store_put_alert(s, seq, asset, id, state, sev, ts, buf, len);
}

static void test_week_in_store(void)
{
    char dir[128], path[1100], conf[4096];
    snprintf(dir, sizeof(dir), "%s/week", g_base);
    CHECK(mkdir(dir, 0755) == 0);
    snprintf(path, sizeof(path), "%s/data", dir);
    CHECK(mkdir(path, 0755) == 0);
    const char *names[] = {"ca.pem", "dev.pem", "dev.key"};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        write_file(path, "-\n");
    }
    snprintf(conf, sizeof(conf),
             "[agent]\ndevice_id = gw-unit\ndata_dir = data\n"
             "[mqtt]\nuri = mqtts://127.0.0.1:8883\nca_file = ca.pem\ncert_file = dev.pem\n"
             "key_file = dev.key\n"
             "[bus b]\ndriver = modbus-tcp\nhost = 127.0.0.1\nport = 1502\n"
             "[sensor t]\nbus = b\naddress = 0\ntype = float32\nunit = degC\nperiod_ms = 60000\n"
             "[sensor v]\nbus = b\naddress = 2\ntype = float32\nunit = mm/s\nperiod_ms = 60000\n"
             "[sensor p]\nbus = b\naddress = 4\ntype = float32\nunit = <W>\nperiod_ms = 60000\n"
             "[asset pump-1]\nmodel = %s/examples/models/compressor.model\ntemperature = t\n"
             "vibration = v\npower = p\ninstalled = 2019-06-01\n",
             PDM_SOURCE_DIR);
    snprintf(path, sizeof(path), "%s/agent.conf", dir);
    write_file(path, conf);
    static struct pdm_config cfg;
    struct pdm_diag diag = {.out = stderr};
    CHECK_INT(pdm_config_load(path, &cfg, &diag), 0);
    if (cfg.n_assets != 1)
        return;

    /* a week of one reading a minute per sensor and one score a minute, a 6-hour hole, a
     * vibration spike, flagged readings; alerts before and within the period */
    const int64_t now = 1700000000000LL, start = now - 7 * DAY_MS + 600000;
    const int64_t hole_lo = now - 2 * DAY_MS, hole_hi = hole_lo + 6 * 3600000LL;
    const int64_t spike_t = now - 4 * DAY_MS + 3 * 60000;
    struct pdm_store *s = NULL;
    char err[512] = "";
    CHECK_INT(pdm_store_open(&s, cfg.data_dir, err, sizeof(err)), 0);
    if (!s)
        return;
    uint32_t id[3], aid;
    CHECK_INT(pdm_store_name_id(s, PDM_ROW_READING, "t", &id[0]), 0);
    CHECK_INT(pdm_store_name_id(s, PDM_ROW_READING, "v", &id[1]), 0);
    CHECK_INT(pdm_store_name_id(s, PDM_ROW_READING, "p", &id[2]), 0);
    CHECK_INT(pdm_store_name_id(s, PDM_ROW_SCORE, "pump-1", &aid), 0);
    /* older than the period: not plotted, not counted */
    uint64_t seq;
    CHECK_INT(pdm_store_put_row(s, PDM_ROW_READING, id[0], now - 9 * DAY_MS, 999.0, &seq), 0);
    CHECK_INT(put_alert(s, "pump-1", "pump-1-7", 1, 1, 0, now - 8 * DAY_MS, 0.6), 0);
    int rows = 0, flagged = 0;
    double last_p = 0;
    for (int64_t t = start; t <= now - 60000; t += 60000) {
        if (t >= hole_lo && t < hole_hi)
            continue;
        double v = t == spike_t ? 42.0 : 2.5 + noise();
        int q = (t / 60000) % 997 == 0;
        flagged += q;
        CHECK_INT(pdm_store_put_row(s, PDM_ROW_READING, id[0], t, 45 + noise(), &seq), 0);
        CHECK_INT(
            pdm_store_put_row_q(s, PDM_ROW_READING, id[1], t, q ? 500.0 : v, (uint8_t)q, &seq), 0);
        CHECK_INT(pdm_store_put_row(s, PDM_ROW_READING, id[2], t, 800 + noise(), &seq), 0);
        last_p = 0.02 + 0.01 * noise();
        CHECK_INT(pdm_store_put_row(s, PDM_ROW_SCORE, aid, t, last_p, &seq), 0);
        if (++rows % 1000 == 0)
            CHECK_INT(pdm_store_commit(s), 0);
    }
    CHECK_INT(put_alert(s, "pump-1", "pump-1-7", 2, 2, 0, now - 3 * DAY_MS, 0.93), 0);
    CHECK_INT(put_alert(s, "sensor:v", "v-fault-9", 1, 1, 1, now - DAY_MS, 0), 0);
    CHECK_INT(put_alert(s, "other", "other-3", 1, 1, 0, now - DAY_MS, 0.7), 0); /* not ours */
    CHECK_INT(pdm_store_commit(s), 0);

    /* read it back while the writer still has the file open, as with a running agent */
    snprintf(path, sizeof(path), "%s/pdm-agent.db", cfg.data_dir);
    struct pdm_store_reader *r = NULL;
    CHECK_INT(pdm_store_reader_open(&r, path, err, sizeof(err)), 0);
    static struct report rep;
    CHECK_INT(report_gather(&rep, &cfg, &cfg.assets[0], r, path, 7, now, err, sizeof(err)), 0);
    pdm_store_reader_close(r);
    pdm_store_close(s);

    CHECK_INT(rep.n_in, 4);
    CHECK(rep.t0 == start && rep.t1 == now); /* plotted from the first value of the period */
    CHECK_INT(rep.in[0].s.n, rows);
    CHECK(rep.in[0].s.vmax < 100); /* the reading older than the period stays out */
    CHECK_INT(rep.in[1].s.flagged, flagged);
    CHECK_INT(rep.in[1].s.out_of_range, flagged);
    CHECK(rep.in[1].s.vmax == 42.0);
    CHECK(rep.in[1].s.b[report_series_col(&rep.in[1].s, spike_t)].max == 42.0);
    CHECK_INT(rep.prob.n, rows);
    CHECK(rep.has_score && rep.score_p == last_p);
    CHECK_INT(rep.health, pdm_health_score(last_p));
    CHECK(rep.health >= 96);
    CHECK(rep.in[3].model->is_age && rep.in[3].sensor == NULL && rep.in[3].age_years > 4);
    /* alerts: the UPDATED and the sensor fault are in the period; the episode is open since
     * its RAISED 8 days ago */
    CHECK_INT(rep.alerts_total, 2);
    CHECK_INT(rep.n_alerts, 2);
    CHECK(rep.risk_open);
    CHECK(rep.risk_since_ms == now - 8 * DAY_MS);
    CHECK_INT(rep.alerts[0].kind, PDM__V1__ALERT_KIND__SENSOR_FAULT);
    CHECK_INT(rep.alerts[1].kind, PDM__V1__ALERT_KIND__FAULT_RISK);
    CHECK_INT(rep.alerts[1].n_top, 2);
    CHECK_STR(rep.alerts[1].top[0].name, "vibration");
    CHECK(rep.in[1].fault_open && rep.in[1].faults_raised == 1);
    CHECK(rep.in[1].fault_since_ms == now - DAY_MS);
    CHECK_INT(rep.n_counters, 0);
    CHECK(rep.maint_source == NULL);
    CHECK(rep.buf.rows == 4 * rows + 1);

    /* the page: every plot drawn, the line broken at the hole, a date on the axis per day */
    char *html = NULL;
    size_t html_len = 0;
    FILE *f = open_memstream(&html, &html_len);
    CHECK_INT(report_write_html(f, &rep), 0);
    fclose(f);
    printf("week: %d rows per series, page %zu bytes\n", rows, html_len);
    CHECK(html_len < 400000);
    const char *keep = getenv("PDM_REPORT_KEEP"); /* a file to look at the page in a browser */
    if (keep && (f = fopen(keep, "w"))) {
        fwrite(html, 1, html_len, f);
        fclose(f);
    }
    int paths = 0, breaks = 0;
    for (const char *p = html; (p = strstr(p, "<path class=\"series\"")); p++) {
        paths++;
        const char *d = strstr(p, " d=\""), *e = d ? strchr(d + 4, '"') : NULL;
        for (const char *m = d ? d + 5 : p; e && m < e; m++)
            breaks += *m == 'M';
    }
    CHECK_INT(paths, 4);
    CHECK_INT(breaks, 4); /* each of the four lines breaks once, at the hole */
    CHECK(strstr(html, "data-unit=\"&lt;W&gt;\"") != NULL);
    CHECK(strstr(html, "<W>") == NULL);
    CHECK(strstr(html, "outside valid range &lt;0..150&gt; &amp; more") != NULL);
    CHECK(strstr(html, "id=\"no-counters\"") != NULL);
    CHECK(strstr(html, "<script") == NULL);
    int dates = 0;
    for (int d = 0; d <= 7; d++) {
        char day[32];
        time_t t = (time_t)((start + d * DAY_MS) / 1000);
        struct tm tm;
        localtime_r(&t, &tm);
        strftime(day, sizeof(day), ">%Y-%m-%d<", &tm);
        dates += strstr(html, day) != NULL;
    }
    CHECK(dates >= 7);
    free(html);

    /* the JSON: one object, the same numbers */
    char *json = NULL;
    size_t json_len = 0;
    f = open_memstream(&json, &json_len);
    CHECK_INT(report_write_json(f, &rep), 0);
    fclose(f);
    CHECK(json_len > 2 && json[0] == '{' && json[json_len - 2] == '}');
    int depth = 0, min_depth = 1, in_str = 0;
    for (size_t i = 0; i + 1 < json_len; i++) {
        char c = json[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = 0;
        } else if (c == '"') {
            in_str = 1;
        } else if (c == '{' || c == '[') {
            depth++;
        } else if (c == '}' || c == ']') {
            depth--;
            if (i + 2 < json_len && depth < min_depth)
                min_depth = depth;
        }
    }
    CHECK_INT(depth, 0);
    CHECK_INT(min_depth, 1); /* nothing after the top object closes */
    char want[64];
    snprintf(want, sizeof(want), "\"score\":%u,", rep.health);
    CHECK(strstr(json, want) != NULL);
    CHECK(strstr(json, "\"unit\":\"<W>\"") != NULL);
    CHECK(strstr(json, "\"state\":\"UPDATED\"") != NULL);
    CHECK(strstr(json, "\"maintenance\":{\"source\":null,\"counters\":[]}") != NULL);
    free(json);
    pdm_config_free(&cfg);
}

/* The agent's usage counters and service visits (written by the store itself) are shown, this
 * asset's only. */
static void test_maintenance_table(void)
{
    char dir[256], path[300], err[512];
    snprintf(dir, sizeof(dir), "%s/usage", g_base);
    mkdir(dir, 0700);
    struct pdm_store *st = NULL;
    CHECK_INT(pdm_store_open(&st, dir, err, sizeof(err)), 0);
    if (!st)
        return;
    CHECK_INT(pdm_store_usage_slots(st, 2), 0);
    struct pdm_usage_counts c;
    CHECK_INT(pdm_store_usage_load(st, 0, "pump-1", &c), 0);
    c.run_ms = 1234ULL * 3600000;
    c.starts = 56;
    c.running = 1;
    uint64_t visit = 0;
    CHECK_INT(
        pdm_store_add_visit(st, "pump-1", 1735689600000LL, "WO-1", "ann", "new seal", &c, &visit),
        0);
    c.svc_run_ms = 1200ULL * 3600000;
    c.svc_starts = 50;
    c.svc_wall_ms = 1735689600000LL;
    c.visit = visit;
    pdm_store_usage_put(st, 0, &c);
    struct pdm_usage_counts other;
    CHECK_INT(pdm_store_usage_load(st, 1, "other", &other), 0);
    other.run_ms = 9;
    pdm_store_usage_put(st, 1, &other);
    CHECK_INT(pdm_store_commit(st), 0);
    CHECK_INT(pdm_store_set_visit_outcome(st, visit, 1, 1735700000000LL, 0.1), 0);
    pdm_store_close(st);

    snprintf(path, sizeof(path), "%s/pdm-agent.db", dir);
    struct pdm_store_reader *r = NULL;
    CHECK_INT(pdm_store_reader_open(&r, path, err, sizeof(err)), 0);
    static struct report rep;
    static struct pdm_asset_cfg asset = {.name = "pump-1"};
    rep.asset = &asset;
    CHECK_INT(report_read_maintenance(&rep, r, err, sizeof(err)), 0);
    pdm_store_reader_close(r);
    CHECK_STR(rep.maint_source ? rep.maint_source : "", "usage and services tables");
    CHECK_INT(rep.n_counters, 7);
    CHECK_STR(rep.counters[0].name, "run hours");
    CHECK_STR(rep.counters[0].value, "1234.0");
    CHECK_STR(rep.counters[1].value, "56");
    CHECK_STR(rep.counters[3].name, "run hours since service");
    CHECK_STR(rep.counters[3].value, "34.0");
    CHECK_STR(rep.counters[4].value, "6");
    CHECK_STR(rep.counters[5].value, "2025-01-01 00:00 UTC");
    CHECK_STR(rep.counters[6].name, "last visit");
    CHECK_STR(rep.counters[6].value, "2025-01-01 00:00 UTC, ann, new seal: fix confirmed");
}

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

int main(void)
{
    snprintf(g_base, sizeof(g_base), "/tmp/pdm-test-report-XXXXXX");
    if (!mkdtemp(g_base)) {
        perror("mkdtemp");
        return 2;
    }
    test_escape();
    test_downsample();
    test_week_in_store();
    test_maintenance_table();
    nftw(g_base, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    return check_summary("test_report");
}
