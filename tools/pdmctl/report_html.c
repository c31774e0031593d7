/* The check-up report as one self-contained HTML page (see report.h).
 *
 * Plots are inline SVG drawn here rather than by a script in the page: the page then shows the
 * same thing in any browser, with scripts off, printed to PDF or attached to a ticket, and it
 * loads nothing (no network, no fonts, no libraries). Every string that comes from the
 * configuration, the model or the store goes through report_html_escape(). */
#include "report.h"

#include <inttypes.h>
#include <math.h>
#include <string.h>
#include <time.h>

#include "models/alert.h"
#include "pdm/v1/pdm.pb-c.h"

/* Geometry of one plot, in SVG user units (the page scales it to the width available). */
#define SVG_W     960
#define SVG_H     222
#define PLOT_X0   64 /* left edge of the data area; y tick labels to its left */
#define PLOT_X1   (PLOT_X0 + REPORT_COLS)
#define PLOT_Y0   12  /* top of the data area */
#define PLOT_Y1   176 /* bottom of the data area; time labels below */
#define MAX_TICKS 8

static const char *const COLORS[] = {"#1f77b4", "#2ca02c", "#9467bd", "#8c564b",
                                     "#17becf", "#7f7f7f", "#bcbd22", "#e377c2"};

/* ---- escaping ---------------------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at p (1..4), 0 if it is not one. */
static int utf8_len(const unsigned char *p)
{
    int n;
    uint32_t cp;
    if (p[0] < 0x80)
        return 1;
    if ((p[0] & 0xe0) == 0xc0) {
        n = 2;
        cp = p[0] & 0x1f;
    } else if ((p[0] & 0xf0) == 0xe0) {
        n = 3;
        cp = p[0] & 0x0f;
    } else if ((p[0] & 0xf8) == 0xf0) {
        n = 4;
        cp = p[0] & 0x07;
    } else {
        return 0;
    }
    for (int i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0; /* also stops at the NUL */
        cp = cp << 6 | (p[i] & 0x3f);
    }
    static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min_cp[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0; /* overlong, beyond Unicode, or a surrogate */
    return n;
}

void report_html_escape(FILE *f, const char *s)
{
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    while (*p) {
        switch (*p) {
        case '&':
            fputs("&amp;", f);
            break;
        case '<':
            fputs("&lt;", f);
            break;
        case '>':
            fputs("&gt;", f);
            break;
        case '"':
            fputs("&quot;", f);
            break;
        case '\'':
            fputs("&#39;", f);
            break;
        default:
            if (*p < 0x20 || *p == 0x7f) {
                fputs(*p == '\t' || *p == '\n' ? " " : "&#xFFFD;", f);
            } else {
                int n = utf8_len(p);
                if (n == 0) {
                    fputs("&#xFFFD;", f);
                } else {
                    fwrite(p, 1, (size_t)n, f);
                    p += n - 1;
                }
            }
        }
        p++;
    }
}

#define ESC(s) report_html_escape(f, (s))

/* ---- numbers and times ------------------------------------------------------------------- */

/* A value with as many digits as its size deserves. */
static const char *num(char *buf, size_t len, double v)
{
    double a = fabs(v);
    if (!isfinite(v))
        snprintf(buf, len, "-");
    else if (a >= 1000)
        snprintf(buf, len, "%.0f", v);
    else if (a >= 100)
        snprintf(buf, len, "%.1f", v);
    else if (a >= 1 || a == 0)
        snprintf(buf, len, "%.2f", v);
    else
        snprintf(buf, len, "%.3g", v);
    return buf;
}

static void local_tm(int64_t ms, struct tm *tm)
{
    time_t t = (time_t)(ms / 1000);
    if (!localtime_r(&t, tm))
        memset(tm, 0, sizeof(*tm));
}

/* "2024-11-22 13:38:05" in the device's local time, "-" for 0. */
static const char *when(char *buf, size_t len, int64_t ms)
{
    struct tm tm;
    if (ms <= 0) {
        snprintf(buf, len, "-");
        return buf;
    }
    local_tm(ms, &tm);
    strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm);
    return buf;
}

/* "3 min", "2.5 h", "4 days": a duration for a person. */
static const char *span(char *buf, size_t len, int64_t ms)
{
    double s = (double)ms / 1000.0;
    if (s < 1)
        snprintf(buf, len, "%.0f ms", s * 1000);
    else if (s < 10)
        snprintf(buf, len, "%.1f s", s);
    else if (s < 120)
        snprintf(buf, len, "%.0f s", s);
    else if (s < 7200)
        snprintf(buf, len, "%.0f min", s / 60);
    else if (s < 172800)
        snprintf(buf, len, "%.1f h", s / 3600);
    else
        snprintf(buf, len, "%.1f days", s / 86400);
    return buf;
}

/* ---- plots ------------------------------------------------------------------------------- */

struct yaxis {
    double lo, hi, step;
    int decimals;
};

/* Round numbers around lo..hi: about five ticks at 1, 2 or 5 x 10^k. */
static void nice_axis(double lo, double hi, struct yaxis *ax)
{
    if (!(hi > lo)) {
        double pad = fabs(lo) > 1e-9 ? fabs(lo) * 0.05 : 1.0;
        lo -= pad;
        hi += pad;
    }
    double pad = (hi - lo) * 0.05;
    lo -= pad;
    hi += pad;
    double raw = (hi - lo) / 5.0;
    double mag = pow(10.0, floor(log10(raw)));
    double m = raw / mag;
    double step = (m <= 1.0 ? 1.0 : m <= 2.0 ? 2.0 : m <= 5.0 ? 5.0 : 10.0) * mag;
    ax->step = step;
    ax->lo = floor(lo / step) * step;
    ax->hi = ceil(hi / step) * step;
    int d = (int)-floor(log10(step) + 1e-9);
    ax->decimals = d < 0 ? 0 : d > 6 ? 6 : d;
}

static double ymap(const struct yaxis *ax, double v)
{
    double y = PLOT_Y1 - (v - ax->lo) / (ax->hi - ax->lo) * (PLOT_Y1 - PLOT_Y0);
    return y < PLOT_Y0 - 2 ? PLOT_Y0 - 2 : y > PLOT_Y1 + 2 ? PLOT_Y1 + 2 : y;
}

static double xmap(const struct report_series *s, int64_t t)
{
    double x = PLOT_X0 + (double)(t - s->t0) / (double)(s->t1 - s->t0) * REPORT_COLS;
    return x < PLOT_X0 ? PLOT_X0 : x > PLOT_X1 ? PLOT_X1 : x;
}

/* The time axis: ticks at round local times, the time on one line and the date below it
 * where it changes (and on the first tick). */
static void time_axis(FILE *f, const struct report_series *s)
{
    static const int64_t steps_s[] = {
        1,      2,       5,       10,      15,      30,       60,       120,     300,    600,
        900,    1800,    3600,    7200,    10800,   21600,    43200,    86400,   172800, 345600,
        604800, 1209600, 2592000, 5184000, 7776000, 15552000, 31536000, 63072000};
    int64_t span_s = (s->t1 - s->t0) / 1000;
    int64_t step = steps_s[sizeof(steps_s) / sizeof(steps_s[0]) - 1];
    for (size_t i = 0; i < sizeof(steps_s) / sizeof(steps_s[0]); i++)
        if (span_s / steps_s[i] <= MAX_TICKS) {
            step = steps_s[i];
            break;
        }
    struct tm tm;
    local_tm(s->t0, &tm);
    int64_t off = (int64_t)tm.tm_gmtoff; /* align to local midnight/hours, not UTC */
    int64_t first = ((s->t0 / 1000 + off + step - 1) / step) * step - off;
    char last_date[16] = "";
    fprintf(f, "<g class=\"time-axis\">");
    for (int64_t t = first; t * 1000 <= s->t1; t += step) {
        int64_t ms = t * 1000;
        double x = xmap(s, ms);
        local_tm(ms, &tm);
        char hm[16], date[16];
        strftime(hm, sizeof(hm), step < 60 ? "%H:%M:%S" : "%H:%M", &tm);
        strftime(date, sizeof(date), "%Y-%m-%d", &tm);
        fprintf(f, "<line class=\"grid\" x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\"/>", x, PLOT_Y0,
                x, PLOT_Y1);
        fprintf(f, "<text class=\"tick\" x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">", x,
                PLOT_Y1 + 16);
        if (step < 86400)
            fprintf(f, "%s", hm);
        if (strcmp(date, last_date) != 0 || step >= 86400)
            fprintf(f, "<tspan x=\"%.1f\" dy=\"%d\">%s</tspan>", x, step < 86400 ? 14 : 0, date);
        fprintf(f, "</text>");
        snprintf(last_date, sizeof(last_date), "%s", date);
    }
    fprintf(f, "</g>");
}

static void y_axis(FILE *f, const struct yaxis *ax)
{
    fprintf(f, "<g class=\"y-axis\">");
    for (int i = 0; i <= 12; i++) {
        double v = ax->lo + i * ax->step;
        if (v > ax->hi + ax->step * 1e-6)
            break;
        double y = ymap(ax, v);
        fprintf(f, "<line class=\"grid\" x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\"/>", PLOT_X0, y,
                PLOT_X1, y);
        fprintf(f, "<text class=\"tick\" x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%.*f</text>",
                PLOT_X0 - 6, y + 4, ax->decimals, fabs(v) < ax->step * 1e-6 ? 0.0 : v);
    }
    fprintf(f, "</g>");
}

/* The line through the buckets; returns the number of points drawn. */
static int series_path(FILE *f, const struct report_series *s, const struct yaxis *ax,
                       int64_t gap_ms, const char *color, const char *cls)
{
    fprintf(f,
            "<path class=\"%s\" fill=\"none\" stroke=\"%s\" stroke-width=\"1.4\" "
            "stroke-linejoin=\"round\" stroke-linecap=\"round\" d=\"",
            cls, color);
    struct report_iter it = {0};
    struct report_point p;
    int n = 0, stroke_len = 0;
    double px = 0, py = 0;
    while (report_series_next_point(s, gap_ms, &it, &p)) {
        double x = PLOT_X0 + p.col + 0.5, y = ymap(ax, p.v);
        if (p.pen_up) {
            /* a lone point would not show: give the previous stroke a dot if it was one */
            if (stroke_len == 1)
                fprintf(f, "h0.01");
            fprintf(f, "%sM%.1f %.1f", n ? " " : "", x, y);
            stroke_len = 1;
        } else if (x != px || y != py) {
            fprintf(f, "L%.1f %.1f", x, y);
            stroke_len++;
        }
        px = x;
        py = y;
        n++;
    }
    if (stroke_len == 1)
        fprintf(f, "h0.01");
    fprintf(f, "\" data-points=\"%d\"/>", n);
    return n;
}

/* Red ticks along the bottom where readings were flagged. */
static void flagged_marks(FILE *f, const struct report_series *s)
{
    if (s->flagged == 0)
        return;
    fprintf(f, "<path class=\"flagged\" stroke=\"#d62728\" stroke-width=\"1.5\" d=\"");
    for (int c = 0; c < s->ncols; c++)
        if (s->b[c].flagged)
            fprintf(f, "M%d.5 %dv-9", PLOT_X0 + c, PLOT_Y1);
    fprintf(f,
            "\"><title>%" PRIu64 " flagged readings (not plotted, not used by the model)</title>"
            "</path>",
            s->flagged);
}

static void hline(FILE *f, const struct yaxis *ax, double v, const char *cls, const char *color,
                  const char *dash, const char *label)
{
    double y = ymap(ax, v);
    fprintf(f,
            "<g class=\"%s\" data-value=\"%g\"><line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" "
            "stroke=\"%s\" stroke-width=\"1.2\"%s%s%s/>"
            "<text class=\"line-label\" x=\"%d\" y=\"%.1f\" text-anchor=\"end\" fill=\"%s\">",
            cls, v, PLOT_X0, y, PLOT_X1, y, color, dash ? " stroke-dasharray=\"" : "",
            dash ? dash : "", dash ? "\"" : "", PLOT_X1 - 4, y - 3, color);
    ESC(label);
    fprintf(f, "</text></g>");
}

static void svg_open(FILE *f, const char *title)
{
    fprintf(f,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 %d %d\" role=\"img\" "
            "preserveAspectRatio=\"xMidYMid meet\"><title>",
            SVG_W, SVG_H);
    ESC(title);
    fprintf(f, "</title><rect class=\"frame\" x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\"/>",
            PLOT_X0, PLOT_Y0, REPORT_COLS, PLOT_Y1 - PLOT_Y0);
}

static void no_data(FILE *f, const char *what)
{
    fprintf(f, "<text class=\"no-data\" x=\"%d\" y=\"%d\" text-anchor=\"middle\">",
            (PLOT_X0 + PLOT_X1) / 2, (PLOT_Y0 + PLOT_Y1) / 2);
    ESC(what);
    fprintf(f, "</text>");
}

static void input_plot(FILE *f, const struct report_input *in, int idx)
{
    const struct report_series *s = &in->s;
    const char *unit = in->sensor->unit;
    char b1[32], b2[32], b3[32], title[256];
    fprintf(f, "<figure class=\"plot input\" id=\"plot-");
    ESC(in->model->name);
    fprintf(f, "\" data-input=\"");
    ESC(in->model->name);
    fprintf(f, "\" data-sensor=\"");
    ESC(in->sensor->name);
    fprintf(f, "\" data-unit=\"");
    ESC(unit);
    fprintf(f, "\" data-readings=\"%" PRIu64 "\"><figcaption><b>", s->n + s->flagged);
    ESC(in->model->name);
    fprintf(f, "</b> &mdash; sensor ");
    ESC(in->sensor->name);
    if (*unit) {
        fprintf(f, ", ");
        ESC(unit);
    }
    fprintf(f, " &middot; %s of %s over %.0f s feeds the model",
            in->model->stat == PDM_STAT_RMS   ? "rms"
            : in->model->stat == PDM_STAT_MAX ? "max"
                                              : "mean",
            *unit ? "readings" : "values", in->model->window_s);
    if (s->n > 0)
        fprintf(f, " &middot; range %s .. %s, last %s", num(b1, sizeof(b1), s->vmin),
                num(b2, sizeof(b2), s->vmax), num(b3, sizeof(b3), s->last_value));
    fprintf(f, "</figcaption>");
    snprintf(title, sizeof(title), "%s (%s%s%s) over time", in->model->name, in->sensor->name,
             *unit ? ", " : "", unit);
    svg_open(f, title);
    struct yaxis ax;
    double lo = s->n ? s->vmin : in->model->center, hi = s->n ? s->vmax : in->model->center;
    /* the model's baseline is where "normal" is: keep it in view */
    if (in->model->center < lo)
        lo = in->model->center;
    if (in->model->center > hi)
        hi = in->model->center;
    nice_axis(lo, hi, &ax);
    y_axis(f, &ax);
    time_axis(f, s);
    char label[96];
    snprintf(label, sizeof(label), "baseline %s%s%s", num(b1, sizeof(b1), in->model->center),
             *unit ? " " : "", unit);
    hline(f, &ax, in->model->center, "baseline", "#555", "2 3", label);
    /* a reading missing for 3 periods (or 2.5 pixels, whichever is longer) breaks the line */
    int64_t gap = 3LL * in->sensor->period_ms;
    int64_t col_ms = (s->t1 - s->t0) / s->ncols;
    if (gap < col_ms * 5 / 2)
        gap = col_ms * 5 / 2;
    series_path(f, s, &ax, gap, COLORS[idx % (int)(sizeof(COLORS) / sizeof(COLORS[0]))], "series");
    flagged_marks(f, s);
    if (s->n == 0)
        no_data(f, s->flagged   ? "only flagged readings in this period"
                   : in->stored ? "no readings in this period"
                                : "no readings of this sensor in the buffer");
    fprintf(f, "</svg></figure>\n");
}

static void prob_plot(FILE *f, const struct report *rep)
{
    const struct report_series *s = &rep->prob;
    const struct pdm_model *m = &rep->asset->model;
    char b1[32], b2[32], b3[32], title[160], label[96];
    fprintf(f,
            "<figure class=\"plot probability\" id=\"plot-probability\" data-scores=\"%" PRIu64
            "\"><figcaption><b>fault probability</b> P &middot; model ",
            s->n);
    ESC(m->id);
    fprintf(f, " v%u, evaluated every %s &middot; warning at %s, critical at %s", m->version,
            span(b1, sizeof(b1), m->eval_period_ms), num(b2, sizeof(b2), m->warning),
            num(b3, sizeof(b3), m->critical));
    fprintf(f, "</figcaption>");
    snprintf(title, sizeof(title), "fault probability of %s over time", rep->asset->name);
    svg_open(f, title);
    struct yaxis ax = {.lo = 0, .hi = 1, .step = 0.2, .decimals = 1};
    y_axis(f, &ax);
    time_axis(f, s);
    /* health < 60 <=> round(100 (1 - P)) <= 59 <=> P > 0.405 */
    hline(f, &ax, 1.0 - (REPORT_HEALTH_VISIT - 0.5) / 100.0, "health-line", "#777", "1 3",
          "health 60: preventive visit above this line");
    snprintf(label, sizeof(label), "warning %s", num(b1, sizeof(b1), m->warning));
    hline(f, &ax, m->warning, "threshold warning", "#e69f00", "6 3", label);
    snprintf(label, sizeof(label), "critical %s", num(b1, sizeof(b1), m->critical));
    hline(f, &ax, m->critical, "threshold critical", "#d62728", "6 3", label);
    /* alert events on the time line */
    for (int i = 0; i < rep->n_alerts; i++) {
        const struct report_alert *a = &rep->alerts[i];
        if (a->kind != PDM__V1__ALERT_KIND__FAULT_RISK || a->ts_ms < s->t0)
            continue;
        double x = xmap(s, a->ts_ms);
        const char *color = a->state == PDM_ALERT_CLEARED     ? "#2ca02c"
                            : a->severity == PDM_SEV_CRITICAL ? "#d62728"
                                                              : "#e69f00";
        fprintf(f,
                "<line class=\"alert-mark\" x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" "
                "stroke=\"%s\" stroke-width=\"1\" opacity=\"0.7\"><title>%s %s ",
                x, PLOT_Y0, x, PLOT_Y1, color, pdm_alert_state_name(a->state),
                pdm_severity_name(a->severity));
        ESC(when(b1, sizeof(b1), a->ts_ms));
        fprintf(f, "</title></line>");
    }
    int64_t gap = 3LL * m->eval_period_ms;
    int64_t col_ms = (s->t1 - s->t0) / s->ncols;
    if (gap < col_ms * 5 / 2)
        gap = col_ms * 5 / 2;
    series_path(f, s, &ax, gap, "#111", "series");
    if (s->n == 0)
        no_data(f, rep->asset_stored ? "no score in this period" : "the asset was never scored");
    fprintf(f, "</svg></figure>\n");
}

/* ---- sections ---------------------------------------------------------------------------- */

static const char CSS[] =
    "body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;"
    "color:#222;margin:0;background:#f4f5f7}"
    "main{max-width:1000px;margin:0 auto;padding:16px 20px 40px}"
    "h1{font-size:22px;margin:8px 0 2px}h2{font-size:17px;margin:22px 0 8px}"
    ".sub{color:#555;margin:0 0 10px}"
    "section{background:#fff;border:1px solid #dde;border-radius:6px;padding:12px 16px;"
    "margin:12px 0}"
    ".health{display:flex;gap:24px;align-items:center;flex-wrap:wrap}"
    ".score{font-size:64px;font-weight:700;line-height:1;min-width:120px;text-align:center;"
    "padding:10px 14px;border-radius:8px;color:#fff}"
    ".score.good{background:#2e7d32}.score.low{background:#c62828}.score.none{background:#888}"
    ".score small{display:block;font-size:13px;font-weight:400}"
    ".rule{padding:6px 10px;border-left:4px solid #888;background:#f6f6f6}"
    ".rule.low{border-color:#c62828;background:#fdecea}.rule.good{border-color:#2e7d32}"
    "figure{margin:10px 0 18px}figcaption{margin:0 0 4px}svg{width:100%;height:auto;"
    "display:block}"
    "svg text{font-size:11px;fill:#444}"
    "svg .line-label{font-size:10.5px;paint-order:stroke;stroke:#fcfcfd;stroke-width:3px}"
    "svg .no-data{font-size:14px;fill:#999}"
    "svg .frame{fill:#fcfcfd;stroke:#ccd}svg .grid{stroke:#e6e6ea;stroke-width:1}"
    "table{border-collapse:collapse;width:100%;font-size:13px}"
    "th,td{border-bottom:1px solid #e3e3e8;padding:4px 6px;text-align:left;vertical-align:top}"
    "th{background:#f0f1f4}td.n{text-align:right;font-variant-numeric:tabular-nums}"
    "tr.RAISED td.state{font-weight:700}.sev-CRITICAL{color:#c62828;font-weight:600}"
    ".sev-WARNING{color:#b26a00;font-weight:600}.bad{color:#c62828;font-weight:600}"
    ".muted{color:#777}footer{color:#777;font-size:12px;margin-top:20px}"
    "@media print{body{background:#fff}section{border:none;padding:0}}";

static void header(FILE *f, const struct report *rep)
{
    const struct pdm_config *cfg = rep->cfg;
    char b1[40], b2[40], b3[40], tz[16];
    struct tm tm;
    local_tm(rep->generated_ms, &tm);
    strftime(tz, sizeof(tz), "%z", &tm);
    fprintf(f, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
               "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
               "<title>Check-up: ");
    ESC(rep->asset->name);
    fprintf(f, " (");
    ESC(cfg->device_id);
    fprintf(f, ")</title><style>%s</style></head>\n<body><main>\n", CSS);
    fprintf(f, "<h1 id=\"title\">Device check-up: ");
    ESC(rep->asset->name);
    fprintf(f, "</h1><p class=\"sub\">gateway <b>");
    ESC(cfg->device_id);
    fprintf(f, "</b> &middot; model <b>");
    ESC(rep->asset->model.id);
    fprintf(f, "</b> v%u", rep->asset->model.version);
    if (rep->asset->installed_s > 0) {
        fprintf(f, " &middot; installed ");
        time_t t = (time_t)rep->asset->installed_s;
        struct tm itm;
        if (gmtime_r(&t, &itm)) {
            strftime(b1, sizeof(b1), "%Y-%m-%d", &itm);
            fprintf(f, "%s", b1);
        }
    }
    fprintf(f,
            "<br>period: the last %d day%s, %s to %s (times are the gateway's local time, "
            "UTC%s)",
            rep->days, rep->days == 1 ? "" : "s", when(b1, sizeof(b1), rep->from_ms),
            when(b2, sizeof(b2), rep->to_ms), tz);
    if (rep->t0 > rep->from_ms)
        fprintf(f, "; the buffer holds data from %s (%s)", when(b3, sizeof(b3), rep->t0),
                span(b1, sizeof(b1), rep->t1 - rep->t0));
    fprintf(f, "</p>\n");
}

static void health_section(FILE *f, const struct report *rep)
{
    char b1[40], b2[40], b3[40];
    int low = rep->has_score && rep->health < REPORT_HEALTH_VISIT;
    const char *cls = !rep->has_score ? "none" : low ? "low" : "good";
    fprintf(f, "<section id=\"health\"><h2>Health</h2><div class=\"health\">");
    if (rep->has_score)
        fprintf(f,
                "<div class=\"score %s\" id=\"health-score\" data-health=\"%u\">%u"
                "<small>of 100</small></div>",
                cls, rep->health, rep->health);
    else
        fprintf(f, "<div class=\"score none\" id=\"health-score\" data-health=\"\">&ndash;"
                   "<small>no score</small></div>");
    fprintf(f, "<div>");
    if (rep->has_score)
        fprintf(f,
                "<p>Health score = round(100 &times; (1 &minus; P)) with the fault probability "
                "P = <b>%.3f</b>, last evaluated %s (%s ago).</p>",
                rep->score_p, when(b1, sizeof(b1), rep->score_ts),
                span(b2, sizeof(b2), rep->generated_ms - rep->score_ts));
    else
        fprintf(f, "<p>No score was stored in this period: the asset was not evaluated (the "
                   "agent was not running, or a sensor it needs was faulted).</p>");
    fprintf(f,
            "<p class=\"rule %s\" id=\"visit-rule\" data-visit=\"%s\">Rule: a "
            "<b>preventive visit</b> is due when the health score is <b>below %d</b>. ",
            cls,
            low              ? "due"
            : rep->has_score ? "not-due"
                             : "unknown",
            REPORT_HEALTH_VISIT);
    if (!rep->has_score)
        fprintf(f, "No current score to apply it to.");
    else if (low)
        fprintf(f, "<b class=\"bad\">Now %u: schedule a preventive visit.</b>", rep->health);
    else
        fprintf(f, "Now %u: no visit needed.", rep->health);
    fprintf(f, "</p>");
    if (rep->risk_open) {
        const struct report_alert *a = &rep->risk_last;
        fprintf(f, "<p id=\"open-alert\">Open alert <b class=\"sev-%s\">%s</b> ",
                pdm_severity_name(a->severity), pdm_severity_name(a->severity));
        ESC(a->alert_id);
        if (rep->risk_since_ms)
            fprintf(f, ", raised %s", when(b3, sizeof(b3), rep->risk_since_ms));
        fprintf(f, ".</p>");
    }
    for (uint32_t i = 0; i < rep->n_in; i++) {
        const struct report_input *in = &rep->in[i];
        if (!in->sensor || in->sensor_first != (int)i || !in->fault_open)
            continue;
        fprintf(f, "<p class=\"bad\">Sensor ");
        ESC(in->sensor->name);
        fprintf(f, " is faulted");
        if (in->fault_since_ms)
            fprintf(f, " since %s", when(b1, sizeof(b1), in->fault_since_ms));
        if (in->fault_reason[0]) {
            fprintf(f, ": ");
            ESC(in->fault_reason);
        }
        fprintf(f, "; the asset is not scored until it reads good values again.</p>");
    }
    fprintf(f, "</div></div></section>\n");
}

static void plots_section(FILE *f, const struct report *rep)
{
    char b1[40];
    fprintf(f,
            "<section id=\"plots\"><h2>Readings and fault probability</h2>"
            "<p class=\"muted\">Each pixel column shows the lowest and highest value in its "
            "%s, so short spikes stay visible; flagged readings (out of range, frozen) are "
            "marked in red at the bottom instead of plotted. Dashed: the model's baseline "
            "for the input.</p>\n",
            span(b1, sizeof(b1), (rep->t1 - rep->t0) / REPORT_COLS));
    int k = 0;
    for (uint32_t i = 0; i < rep->n_in; i++) {
        const struct report_input *in = &rep->in[i];
        if (in->sensor)
            input_plot(f, in, k++);
    }
    prob_plot(f, rep);
    for (uint32_t i = 0; i < rep->n_in; i++) {
        const struct report_input *in = &rep->in[i];
        if (!in->model->is_age)
            continue;
        fprintf(f,
                "<p id=\"age\">Input <b>age</b>: %.1f years since the installation date "
                "(baseline %.1f years).</p>",
                in->age_years, in->model->center);
    }
    fprintf(f, "</section>\n");
}

/* The unit of a sensor by name, "" if it has none or is not in the configuration. */
static const char *unit_of(const struct pdm_config *cfg, const char *sensor)
{
    int i = *sensor ? pdm_config_sensor_index(cfg, sensor) : -1;
    return i >= 0 ? cfg->sensors[i].unit : "";
}

static void alert_cells(FILE *f, const struct pdm_config *cfg, const struct report_alert *a)
{
    char b1[40], b2[40];
    const char *state = a->state >= PDM_ALERT_RAISED && a->state <= PDM_ALERT_CLEARED
                            ? pdm_alert_state_name(a->state)
                            : "?";
    const char *sev = a->severity >= PDM_SEV_NONE && a->severity <= PDM_SEV_CRITICAL
                          ? pdm_severity_name(a->severity)
                          : "?";
    fprintf(f, "<tr class=\"%s\" data-state=\"%s\" data-kind=\"%s\" data-seq=\"%" PRIu64 "\">",
            state, state, a->kind >= 0 ? report_kind_name(a->kind) : "UNDECODED", a->seq);
    fprintf(f, "<td>%s</td><td class=\"state\">%s</td><td class=\"sev-%s\">%s</td><td>%s</td>",
            when(b1, sizeof(b1), a->ts_ms), state, sev, sev,
            a->kind >= 0 ? report_kind_name(a->kind) : "(payload not readable)");
    if (a->kind == PDM__V1__ALERT_KIND__FAULT_RISK)
        fprintf(f, "<td class=\"n\">%.3f</td><td class=\"n\">%u</td>", a->probability, a->health);
    else
        fprintf(f, "<td class=\"n muted\">-</td><td class=\"n muted\">-</td>");
    fprintf(f, "<td>");
    if (a->kind == PDM__V1__ALERT_KIND__SENSOR_FAULT || a->sensor[0]) {
        fprintf(f, "sensor <b>");
        ESC(a->sensor);
        fprintf(f, "</b>");
        if (a->reason[0]) {
            fprintf(f, ": ");
            ESC(a->reason);
        }
    } else {
        for (uint32_t k = 0; k < a->n_top; k++) {
            const struct report_top *t = &a->top[k];
            fprintf(f, "%s<span class=\"top-input\"><b>", k ? "<br>" : "");
            ESC(t->name);
            fprintf(f, "</b> %s", num(b2, sizeof(b2), t->value));
            const char *unit = unit_of(cfg, t->sensor);
            if (*unit) {
                fprintf(f, " ");
                ESC(unit);
            }
            fprintf(f, ", z %+.1f, share %+.2f</span>", t->z, t->contribution);
        }
    }
    fprintf(f, "</td><td>");
    ESC(a->alert_id);
    fprintf(f, "</td><td>%s</td></tr>\n", a->delivered ? "yes" : "<b>not yet</b>");
}

static void alerts_section(FILE *f, const struct report *rep)
{
    fprintf(f, "<section id=\"alerts\"><h2>Alert history</h2>");
    if (rep->alerts_total == 0) {
        fprintf(f, "<p id=\"no-alerts\">No alert about this asset or its sensors in the "
                   "period.</p></section>\n");
        return;
    }
    fprintf(f, "<p class=\"muted\">%d alert event%s in the period, newest first", rep->alerts_total,
            rep->alerts_total == 1 ? "" : "s");
    if (rep->alerts_total > rep->n_alerts)
        fprintf(f, " (the newest %d shown)", rep->n_alerts);
    fprintf(f, ". Top contributing inputs: the input's windowed value, z = its distance from "
               "the model's baseline in the model's scales, and its share of the logit "
               "(what pushed P up).</p>");
    fprintf(f, "<table id=\"alert-table\"><thead><tr><th>time</th><th>event</th>"
               "<th>severity</th><th>kind</th><th>P</th><th>health</th>"
               "<th>top contributing inputs / sensor</th><th>alert id</th><th>sent</th></tr>"
               "</thead><tbody>\n");
    for (int i = 0; i < rep->n_alerts; i++)
        alert_cells(f, rep->cfg, &rep->alerts[i]);
    fprintf(f, "</tbody></table></section>\n");
}

static void quality_section(FILE *f, const struct report *rep)
{
    char b1[40], b2[40];
    fprintf(f, "<section id=\"quality\"><h2>Data quality</h2>"
               "<table id=\"quality-table\"><thead><tr><th>sensor</th><th>input</th>"
               "<th>readings</th><th>out of range</th><th>frozen</th><th>fault episodes</th>"
               "<th>now</th><th>last good reading</th></tr></thead><tbody>\n");
    for (uint32_t i = 0; i < rep->n_in; i++) {
        const struct report_input *in = &rep->in[i];
        if (!in->sensor || in->sensor_first != (int)i)
            continue;
        const struct report_series *s = &in->s;
        fprintf(f, "<tr data-sensor=\"");
        ESC(in->sensor->name);
        fprintf(f, "\" data-flagged=\"%" PRIu64 "\"><td>", s->flagged);
        ESC(in->sensor->name);
        fprintf(f, "</td><td>");
        for (uint32_t k = i; k < rep->n_in; k++)
            if (rep->in[k].sensor_first == (int)i) {
                fprintf(f, "%s", k != i ? ", " : "");
                ESC(rep->in[k].model->name);
            }
        fprintf(f,
                "</td><td class=\"n\">%" PRIu64 "</td><td class=\"n%s\">%" PRIu64 "</td>"
                "<td class=\"n%s\">%" PRIu64 "</td><td class=\"n%s\">%d</td>",
                s->n + s->flagged, s->out_of_range ? " bad" : "", s->out_of_range,
                s->frozen ? " bad" : "", s->frozen, in->faults_raised ? " bad" : "",
                in->faults_raised);
        if (in->fault_open) {
            fprintf(f, "<td class=\"bad\">faulted");
            if (in->fault_reason[0]) {
                fprintf(f, ": ");
                ESC(in->fault_reason);
            }
            fprintf(f, "</td>");
        } else {
            fprintf(f, "<td>%s</td>",
                    in->stored ? "ok"
                               : "<span class=\"muted\">never stored"
                                 "</span>");
        }
        if (s->n > 0) {
            fprintf(f, "<td>%s ", when(b1, sizeof(b1), s->last_ts));
            fprintf(f, "(%s", num(b2, sizeof(b2), s->last_value));
            if (in->sensor->unit[0]) {
                fprintf(f, " ");
                ESC(in->sensor->unit);
            }
            fprintf(f, ")</td>");
        } else {
            fprintf(f, "<td class=\"muted\">none in the period</td>");
        }
        fprintf(f, "</tr>\n");
    }
    fprintf(f, "</tbody></table><p class=\"muted\">Out of range: outside the sensor's "
               "valid_min..valid_max; frozen: unchanged for its frozen_s. Flagged readings are "
               "stored and sent but never scored. A fault episode is a SENSOR_FAULT alert "
               "(three bad readings in a row, a frozen value, or no good reading for stale_s)."
               "</p></section>\n");
}

/* The usage counters as report_read_maintenance() found them (run hours, starts, service). */
static void maintenance_section(FILE *f, const struct report *rep)
{
    fprintf(f, "<section id=\"maintenance\"><h2>Maintenance counters</h2>");
    if (rep->n_counters == 0) {
        fprintf(f, "<p id=\"no-counters\" class=\"muted\">None stored: run hours and starts are "
                   "counted for assets with <code>running_sensor</code> in the agent's "
                   "configuration, and service visits once one is recorded.</p></section>\n");
        return;
    }
    fprintf(f, "<p class=\"muted\">From the buffer's ");
    ESC(rep->maint_source);
    fprintf(f, ".</p><table id=\"counter-table\"><thead><tr><th>counter</th><th>value</th></tr>"
               "</thead><tbody>");
    for (int i = 0; i < rep->n_counters; i++) {
        fprintf(f, "<tr><td>");
        ESC(rep->counters[i].name);
        fprintf(f, "</td><td>");
        ESC(rep->counters[i].value);
        fprintf(f, "</td></tr>");
    }
    fprintf(f, "</tbody></table></section>\n");
}

static void buffer_section(FILE *f, const struct report *rep)
{
    const struct pdm_store_summary *b = &rep->buf;
    char b1[40], b2[40];
    fprintf(f, "<section id=\"buffer\"><h2>Buffer</h2><table id=\"buffer-table\"><tbody>");
    fprintf(f, "<tr><th>database</th><td>");
    ESC(rep->db_path);
    fprintf(f, " (schema %" PRId64 ")</td></tr>", b->schema);
    fprintf(f, "<tr><th>on disk</th><td>%.1f MB of %d MB allowed (buffer_max_mb)</td></tr>",
            (double)(b->file_bytes + b->wal_bytes) / 1048576.0, rep->cfg->buffer_max_mb);
    fprintf(f,
            "<tr><th>readings and scores</th><td>%" PRId64 " stored, %" PRId64
            " not yet sent</td></tr>",
            b->rows, b->rows_undelivered);
    fprintf(f,
            "<tr><th>alert events</th><td>%" PRId64 " stored, %" PRId64 " not yet sent</td></tr>",
            b->alerts, b->alerts_undelivered);
    if (b->oldest_undelivered_ms > 0)
        fprintf(f, "<tr><th>oldest unsent</th><td class=\"bad\">%s (%s ago)</td></tr>",
                when(b1, sizeof(b1), b->oldest_undelivered_ms),
                span(b2, sizeof(b2), rep->generated_ms - b->oldest_undelivered_ms));
    else
        fprintf(f, "<tr><th>oldest unsent</th><td>nothing waiting</td></tr>");
    fprintf(f,
            "<tr><th>sent (ever)</th><td>%" PRId64 " readings and scores, %" PRId64
            " alerts</td></tr>",
            b->rows_delivered, b->alerts_delivered);
    fprintf(f,
            "<tr><th>dropped (ever)</th><td%s>%" PRId64 " unsent readings given up (buffer "
            "cap, disk reserve)</td></tr>",
            b->rows_dropped ? " class=\"bad\"" : "", b->rows_dropped);
    fprintf(f, "</tbody></table></section>\n");
}

int report_write_html(FILE *f, const struct report *rep)
{
    char b1[40];
    header(f, rep);
    health_section(f, rep);
    plots_section(f, rep);
    alerts_section(f, rep);
    quality_section(f, rep);
    maintenance_section(f, rep);
    buffer_section(f, rep);
    fprintf(f, "<footer>Made by pdmctl %s report on %s from the configuration ", PDM_VERSION,
            when(b1, sizeof(b1), rep->generated_ms));
    ESC(rep->cfg->path);
    fprintf(f, " and the model file ");
    ESC(rep->asset->model_path);
    fprintf(f,
            " (SHA-256 %s). Self-contained: no scripts, nothing loaded from the network."
            "</footer>\n</main></body></html>\n",
            rep->asset->model.sha256);
    return ferror(f) ? -1 : 0;
}
