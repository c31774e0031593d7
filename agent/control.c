/* The control socket (see control.h for the protocol, bounds and memory). */
#define _GNU_SOURCE /* accept4 */
#include "control.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "lib/clock.h"
#include "lib/json.h"
#include "config.h"
#include "lib/log.h"

/* Response buffer per client slot, sized from the config. The worst case of each part, JSON
 * escaping included (names 64 bytes, reasons 48, numbers up to 24 characters: lib/json.h's
 * shortest round-trip digits; each number below has 16 bytes more than %.6g had). */
#define RESP_BASE       2048        /* header, buffer, broker */
#define RESP_PER_SENSOR (512 + 16)  /* one number */
#define RESP_PER_ASSET  (2048 + 96) /* 1 KiB + usage and maintenance (issue 6): 1 KiB; 6 numbers */
#define RESP_PER_INPUT  (256 + 80)  /* 5 numbers */
#define RESP_PER_ERROR  (2 * PDM_CONTROL_ERROR_LEN + 64)

struct client {
    int fd; /* -1 = free slot */
    int64_t deadline_ms;
    char req[PDM_CONTROL_REQ_MAX];
    size_t req_len;
    int responding; /* request read; writing out[off..len) */
    char *out;      /* this slot's response buffer (cap bytes), owned by pdm_control */
    size_t len, off;
};

struct pdm_control {
    int lfd;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    int64_t start_mono_ms;
    struct client cl[PDM_CONTROL_MAX_CLIENTS];
    char *bufs; /* PDM_CONTROL_MAX_CLIENTS * cap */
    size_t cap;
    struct pdm_ctl_snapshot snap;
    struct pdm_ctl_error errors[PDM_CONTROL_ERRORS]; /* newest replaces the oldest */
    pdm_control_request_cb req_fn;                   /* requests with arguments (control.h) */
    void *req_ctx;
};

/* ---- output into a fixed buffer ---------------------------------------------------------- */

struct out {
    char *p;
    size_t cap, len;
    int full; /* something did not fit */
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct out *o, const char *fmt, ...)
{
    if (o->full)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= o->cap - o->len) {
        o->full = 1;
        return;
    }
    o->len += (size_t)n;
}

/* JSON strings and numbers are lib/json.h's, written into the rest of the buffer. */
static void put_json(struct out *o, const char *str, double num)
{
    if (o->full)
        return;
    struct pdm_json j = pdm_json_buffer(o->p + o->len, o->cap - o->len);
    if (str)
        pdm_json_str(&j, str);
    else
        pdm_json_num(&j, num);
    o->len += j.len;
    o->full = j.full;
}

static void put_jstr(struct out *o, const char *s)
{
    put_json(o, s ? s : "", 0);
}

static void put_jnum(struct out *o, double v)
{
    put_json(o, NULL, v);
}

static const char *broker_state(const struct pdm_ctl_snapshot *s)
{
    return s->broker_connected ? "connected" : s->broker_connecting ? "connecting" : "disconnected";
}

/* Indexes of the used error slots, newest first; returns how many. */
static int newest_first(const struct pdm_ctl_error *errs, int *ord)
{
    int n = 0;
    for (int i = 0; i < PDM_CONTROL_ERRORS; i++) {
        if (!errs[i].count)
            continue;
        int k = n++;
        while (k > 0 && errs[ord[k - 1]].ts_ms < errs[i].ts_ms) {
            ord[k] = ord[k - 1];
            k--;
        }
        ord[k] = i;
    }
    return n;
}

static void render_json(struct out *o, const struct pdm_ctl_snapshot *s,
                        const struct pdm_ctl_error *errs)
{
    put(o, "{\"device_id\":");
    put_jstr(o, s->device_id);
    put(o, ",\"agent_version\":\"%s\",\"ts_ms\":%lld,\"uptime_s\":%lld,\"sensors\":[", PDM_VERSION,
        (long long)s->now_ms, (long long)s->uptime_s);
    for (uint32_t i = 0; i < s->n_sensors; i++) {
        const struct pdm_ctl_sensor *x = &s->sensors[i];
        put(o, "%s{\"name\":", i ? "," : "");
        put_jstr(o, x->name);
        put(o, ",\"bus\":");
        put_jstr(o, x->bus);
        put(o, ",\"unit_id\":%d,\"value\":", x->unit_id);
        if (x->has_value)
            put_jnum(o, x->value);
        else
            put(o, "null");
        put(o, ",\"unit\":");
        put_jstr(o, x->unit);
        put(o, ",\"value_ts_ms\":%lld,\"ok\":%s,\"reads\":%llu,\"errors\":%llu,\"last_error\":",
            (long long)x->value_ms, x->ok ? "true" : "false", (unsigned long long)x->reads,
            (unsigned long long)x->errors);
        put_jstr(o, x->last_error);
        put(o, "}");
    }
    put(o, "],\"assets\":[");
    for (uint32_t i = 0; i < s->n_assets; i++) {
        const struct pdm_ctl_asset *x = &s->assets[i];
        put(o, "%s{\"name\":", i ? "," : "");
        put_jstr(o, x->name);
        put(o, ",\"model_id\":");
        put_jstr(o, x->model->id);
        put(o, ",\"model_version\":%u,\"model_sha256\":\"%s\",\"scored\":%s,\"probability\":",
            x->model->version, x->model->sha256, x->scored ? "true" : "false");
        if (x->scored)
            put_jnum(o, x->score.probability);
        else
            put(o, "null");
        put(o, ",\"health\":");
        if (x->scored)
            put(o, "%u", x->score.health);
        else
            put(o, "null");
        put(o, ",\"score_ts_ms\":%lld,\"evals\":%llu,\"skipped_stale\":%llu",
            (long long)x->score_ms, (unsigned long long)x->evals,
            (unsigned long long)x->skipped_stale);
        put(o, ",\"alert\":{\"active\":%s,\"severity\":\"%s\",\"alert_id\":",
            x->severity != PDM_SEV_NONE ? "true" : "false", pdm_severity_name(x->severity));
        put_jstr(o, x->severity != PDM_SEV_NONE ? x->alert_id : "");
        put(o, "}");
        if (x->has_usage) { /* issue 6: usage counters and maintenance */
            const struct pdm_ctl_usage *u = &x->usage;
            put(o, ",\"usage\":{\"run_hours\":");
            put_jnum(o, u->run_hours);
            put(o, ",\"starts\":%llu,\"running\":%s,\"run_hours_since_service\":",
                (unsigned long long)u->starts, u->running ? "true" : "false");
            put_jnum(o, u->hours_since_service);
            put(o,
                ",\"starts_since_service\":%llu,\"last_service_ms\":%lld,"
                "\"outcome_due_ms\":%lld,\"maintenance_alert_id\":",
                (unsigned long long)u->starts_since_service, (long long)u->last_service_ms,
                (long long)u->outcome_due_ms);
            put_jstr(o, u->alert_id);
            put(o, ",\"maintenance_due\":");
            put_jstr(o, u->due);
            put(o, "}");
        }
        put(o, ",\"thresholds\":{\"warning\":");
        put_jnum(o, x->model->warning);
        put(o, ",\"critical\":");
        put_jnum(o, x->model->critical);
        put(o, ",\"clear\":");
        put_jnum(o, x->model->clear);
        put(o, "},\"inputs\":[");
        for (uint32_t k = 0; k < x->model->n_inputs; k++) {
            put(o, "%s{\"name\":", k ? "," : "");
            put_jstr(o, x->model->inputs[k].name);
            put(o, ",\"sensor\":");
            if (x->input_sensor[k])
                put_jstr(o, x->input_sensor[k]);
            else
                put(o, "null");
            put(o, ",\"stat\":\"%s\",\"samples\":%u", pdm_model_input_kind(&x->model->inputs[k]),
                x->input_samples[k]);
            put(o, ",\"center\":");
            put_jnum(o, x->model->inputs[k].center);
            put(o, ",\"scale\":");
            put_jnum(o, x->model->inputs[k].scale);
            put(o, ",\"baseline\":\"%s\"", x->model->inputs[k].from_asset ? "asset" : "fleet");
            if (x->scored && k < x->score.n_inputs) {
                put(o, ",\"value\":");
                put_jnum(o, x->score.in[k].value);
                put(o, ",\"z\":");
                put_jnum(o, x->score.in[k].z);
                put(o, ",\"contribution\":");
                put_jnum(o, x->score.in[k].contribution);
            }
            put(o, "}");
        }
        put(o, "]}");
    }
    const struct pdm_store_stats *b = &s->store;
    put(o, "],\"buffer\":{\"ok\":%s", s->store_ok ? "true" : "false");
    if (s->store_ok)
        put(o,
            ",\"readings\":%llu,\"alerts\":%llu,\"oldest_undelivered_ms\":%lld,\"bytes\":%llu,"
            "\"max_bytes\":%llu,\"delivered_readings\":%llu,\"delivered_alerts\":%llu,"
            "\"dropped_readings\":%llu,\"held_in_memory\":%llu,\"write_failing\":%s,"
            "\"recovered\":%s",
            (unsigned long long)b->rows_pending, (unsigned long long)b->alerts_pending,
            (long long)b->oldest_pending_ms, (unsigned long long)b->db_bytes,
            (unsigned long long)b->max_bytes, (unsigned long long)b->rows_delivered,
            (unsigned long long)b->alerts_delivered, (unsigned long long)b->rows_dropped,
            (unsigned long long)(b->rows_held + b->alerts_held),
            b->write_failing ? "true" : "false", b->recovered ? "true" : "false");
    put(o, ",\"queue_dropped\":%llu},\"broker\":{\"uri\":", (unsigned long long)s->queue_dropped);
    put_jstr(o, s->broker_uri);
    put(o, ",\"state\":\"%s\",\"last_error\":", broker_state(s));
    put_jstr(o, s->broker_error);
    put(o, "},\"recent_errors\":[");
    int first = 1;
    int ord[PDM_CONTROL_ERRORS];
    int ne = newest_first(errs, ord);
    for (int j = 0; j < ne; j++) {
        int i = ord[j];
        put(o, "%s{\"ts_ms\":%lld,\"count\":%llu,\"text\":", first ? "" : ",",
            (long long)errs[i].ts_ms, (unsigned long long)errs[i].count);
        put_jstr(o, errs[i].text);
        put(o, "}");
        first = 0;
    }
    put(o, "]}\n");
}

/* "12 s ago", "3 min ago", "2.5 h ago", for a wall-clock time relative to now */
static const char *ago(char *buf, size_t n, int64_t now_ms, int64_t ts_ms)
{
    if (ts_ms <= 0) {
        snprintf(buf, n, "never");
        return buf;
    }
    double s = (double)(now_ms - ts_ms) / 1000.0;
    if (s < 0)
        s = 0;
    if (s < 120)
        snprintf(buf, n, "%.0f s ago", s);
    else if (s < 7200)
        snprintf(buf, n, "%.0f min ago", s / 60);
    else
        snprintf(buf, n, "%.1f h ago", s / 3600);
    return buf;
}

static void render_text(struct out *o, const struct pdm_ctl_snapshot *s,
                        const struct pdm_ctl_error *errs)
{
    char t[32];
    put(o, "pdm-agent %s, device %s, up %lld s\n\n", PDM_VERSION, s->device_id,
        (long long)s->uptime_s);
    put(o, "SENSORS\n%-20s %-12s %4s %14s %-8s %-5s %9s %7s  %s\n", "sensor", "bus", "unit",
        "value", "unit", "state", "reads", "errors", "last error");
    for (uint32_t i = 0; i < s->n_sensors; i++) {
        const struct pdm_ctl_sensor *x = &s->sensors[i];
        char v[32];
        if (x->has_value)
            snprintf(v, sizeof(v), "%.6g", x->value);
        else
            snprintf(v, sizeof(v), "-");
        put(o, "%-20s %-12s %4d %14s %-8s %-5s %9llu %7llu  %s\n", x->name, x->bus, x->unit_id, v,
            x->unit[0] ? x->unit : "-", x->ok ? "ok" : "ERROR", (unsigned long long)x->reads,
            (unsigned long long)x->errors, x->last_error);
    }
    for (uint32_t i = 0; i < s->n_assets; i++) {
        const struct pdm_ctl_asset *x = &s->assets[i];
        put(o, "\nASSET %s (model %s v%u)\n", x->name, x->model->id, x->model->version);
        put(o, "  model file sha256 %s\n", x->model->sha256);
        if (x->scored)
            put(o,
                "  P = %.3f, health %u, scored %s (%llu evaluations, %llu skipped on stale "
                "inputs)\n",
                x->score.probability, x->score.health, ago(t, sizeof(t), s->now_ms, x->score_ms),
                (unsigned long long)x->evals, (unsigned long long)x->skipped_stale);
        else
            put(o, "  not scored yet (%llu evaluations skipped on stale inputs)\n",
                (unsigned long long)x->skipped_stale);
        if (x->severity != PDM_SEV_NONE)
            put(o, "  alert: %s, alert_id %s\n", pdm_severity_name(x->severity), x->alert_id);
        else
            put(o, "  alert: none\n");
        if (x->has_usage) {
            const struct pdm_ctl_usage *u = &x->usage;
            put(o,
                "  usage: %s, %.2f run hours, %llu starts; since service: %.2f h, %llu "
                "starts%s%s\n",
                u->running ? "running" : "stopped", u->run_hours, (unsigned long long)u->starts,
                u->hours_since_service, (unsigned long long)u->starts_since_service,
                u->last_service_ms ? ", last visit " : "",
                u->last_service_ms ? ago(t, sizeof(t), s->now_ms, u->last_service_ms) : "");
            if (u->alert_id[0])
                put(o, "  maintenance due: alert_id %s: %s\n", u->alert_id, u->due);
            if (u->outcome_due_ms)
                put(o, "  service outcome due in %.1f h\n",
                    (double)(u->outcome_due_ms - s->now_ms) / 3600000.0);
        }
        put(o, "  thresholds: WARNING at P >= %.2f, CRITICAL at P >= %.2f, clears below %.2f\n",
            x->model->warning, x->model->critical, x->model->clear);
        put(o, "  %-16s %-20s %-7s %12s %18s %9s %13s\n", "input", "sensor", "stat", "value",
            "baseline", "z", "contribution");
        for (uint32_t k = 0; k < x->model->n_inputs; k++) {
            const struct pdm_model_input *in = &x->model->inputs[k];
            put(o, "  %-16s %-20s %-7s", in->name, x->input_sensor[k] ? x->input_sensor[k] : "-",
                pdm_model_input_kind(in));
            char bl[40];
            snprintf(bl, sizeof(bl), "%.4g (%s)", in->center, in->from_asset ? "asset" : "fleet");
            if (x->scored && k < x->score.n_inputs)
                put(o, " %12.4g %18s %+9.3f %+13.3f\n", x->score.in[k].value, bl, x->score.in[k].z,
                    x->score.in[k].contribution);
            else
                put(o, " %12s %18s %9s %13s\n", "-", bl, "-", "-");
        }
    }
    put(o, "\nBUFFER\n");
    if (s->store_ok) {
        const struct pdm_store_stats *b = &s->store;
        put(o, "  undelivered: %llu readings/scores, %llu alerts; oldest %s\n",
            (unsigned long long)b->rows_pending, (unsigned long long)b->alerts_pending,
            b->oldest_pending_ms ? ago(t, sizeof(t), s->now_ms, b->oldest_pending_ms) : "-");
        put(o,
            "  on disk: %.1f MiB of %.1f MiB cap; delivered %llu rows, %llu alerts; dropped %llu\n",
            (double)b->db_bytes / 1048576.0, (double)b->max_bytes / 1048576.0,
            (unsigned long long)b->rows_delivered, (unsigned long long)b->alerts_delivered,
            (unsigned long long)b->rows_dropped);
        if (b->write_failing)
            put(o, "  WRITES FAILING: %llu rows and %llu alerts held in memory\n",
                (unsigned long long)b->rows_held, (unsigned long long)b->alerts_held);
    } else {
        put(o, "  cannot read the store's figures\n");
    }
    if (s->queue_dropped)
        put(o, "  samples dropped before scoring (loop too slow): %llu\n",
            (unsigned long long)s->queue_dropped);
    put(o, "\nBROKER %s: %s\n", s->broker_uri, broker_state(s));
    if (s->broker_error[0])
        put(o, "  last error: %s\n", s->broker_error);
    put(o, "\nRECENT ERRORS\n");
    int ord[PDM_CONTROL_ERRORS];
    int any = newest_first(errs, ord);
    for (int j = 0; j < any; j++) {
        int i = ord[j];
        put(o, "  %-12s x%-4llu %s\n", ago(t, sizeof(t), s->now_ms, errs[i].ts_ms),
            (unsigned long long)errs[i].count, errs[i].text);
    }
    if (!any)
        put(o, "  none\n");
}

/* ---- socket --------------------------------------------------------------------------------- */

static int make_addr(const char *path, struct sockaddr_un *sa)
{
    memset(sa, 0, sizeof(*sa));
    sa->sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sa->sun_path))
        return -ENAMETOOLONG;
    memcpy(sa->sun_path, path, strlen(path) + 1);
    return 0;
}

int pdm_control_open(struct pdm_control **out, const struct pdm_config *cfg, char *err,
                     size_t errlen)
{
    *out = NULL;
    struct pdm_control *c = calloc(1, sizeof(*c));
    if (!c) {
        snprintf(err, errlen, "control socket: out of memory");
        return -ENOMEM;
    }
    c->lfd = -1;
    for (int i = 0; i < PDM_CONTROL_MAX_CLIENTS; i++)
        c->cl[i].fd = -1;
    int rc;
    struct sockaddr_un sa;
    int w = snprintf(c->path, sizeof(c->path), "%s/%s", cfg->data_dir, PDM_CONTROL_SOCK_NAME);
    if (w < 0 || (size_t)w >= sizeof(c->path) || make_addr(c->path, &sa) != 0) {
        snprintf(err, errlen,
                 "control socket: %s/%s is longer than a UNIX socket path may be (%zu bytes); "
                 "choose a shorter data_dir",
                 cfg->data_dir, PDM_CONTROL_SOCK_NAME, sizeof(sa.sun_path) - 1);
        rc = -ENAMETOOLONG;
        goto fail;
    }

    /* Is an agent already here? A socket nobody answers on was left by a crash: replace it.
     * Anything else at that path is not ours to delete. */
    struct stat st;
    if (lstat(c->path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            snprintf(err, errlen,
                     "control socket: %s exists and is not a socket; remove it or fix data_dir",
                     c->path);
            rc = -EEXIST;
            goto fail;
        }
        int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (probe < 0) {
            rc = -errno;
            snprintf(err, errlen, "control socket: %s", strerror(errno));
            goto fail;
        }
        int r = connect(probe, (struct sockaddr *)&sa, sizeof(sa));
        int e = errno;
        close(probe);
        if (r == 0) {
            snprintf(err, errlen,
                     "another pdm-agent is already running with data_dir %s (it answers on %s); "
                     "two agents must not share a buffer: this one stops",
                     cfg->data_dir, c->path);
            rc = -EADDRINUSE;
            goto fail;
        }
        if (e != ECONNREFUSED) {
            snprintf(err, errlen, "control socket: cannot probe %s (%s)", c->path, strerror(e));
            rc = -e;
            goto fail;
        }
        if (unlink(c->path) != 0 && errno != ENOENT) {
            rc = -errno;
            snprintf(err, errlen, "control socket: cannot remove the stale %s (%s)", c->path,
                     strerror(errno));
            goto fail;
        }
        pdm_info("control socket: replaced %s, left by an agent that did not stop cleanly",
                 c->path);
    }

    c->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->lfd < 0) {
        rc = -errno;
        snprintf(err, errlen, "control socket: %s", strerror(errno));
        goto fail;
    }
    /* owner-only from the moment it exists: no window in which others could connect */
    mode_t old = umask(0177);
    int r = bind(c->lfd, (struct sockaddr *)&sa, sizeof(sa));
    int e = errno;
    umask(old);
    if (r != 0) {
        rc = -e;
        if (e == EADDRINUSE)
            snprintf(err, errlen,
                     "another pdm-agent is starting with data_dir %s (%s was just created); "
                     "this one stops",
                     cfg->data_dir, c->path);
        else
            snprintf(err, errlen, "control socket: cannot create %s (%s)", c->path, strerror(e));
        close(c->lfd);
        c->lfd = -1;
        goto fail;
    }
    if (chmod(c->path, 0600) != 0 || listen(c->lfd, PDM_CONTROL_MAX_CLIENTS) != 0) {
        rc = -errno;
        snprintf(err, errlen, "control socket: cannot set up %s (%s)", c->path, strerror(errno));
        goto fail_unlink;
    }

    c->cap = RESP_BASE + (size_t)cfg->n_sensors * RESP_PER_SENSOR +
             PDM_CONTROL_ERRORS * (size_t)RESP_PER_ERROR;
    for (uint32_t i = 0; i < cfg->n_assets; i++)
        c->cap += RESP_PER_ASSET + (size_t)PDM_MODEL_MAX_INPUTS * RESP_PER_INPUT;
    c->bufs = malloc(c->cap * PDM_CONTROL_MAX_CLIENTS);
    c->snap.sensors = calloc(cfg->n_sensors + 1, sizeof(*c->snap.sensors));
    c->snap.assets = calloc(cfg->n_assets + 1, sizeof(*c->snap.assets));
    if (!c->bufs || !c->snap.sensors || !c->snap.assets) {
        snprintf(err, errlen, "control socket: out of memory");
        rc = -ENOMEM;
        goto fail_unlink;
    }
    for (int i = 0; i < PDM_CONTROL_MAX_CLIENTS; i++)
        c->cl[i].out = c->bufs + (size_t)i * c->cap;
    c->snap.n_sensors = cfg->n_sensors;
    c->snap.n_assets = cfg->n_assets;
    c->start_mono_ms = pdm_mono_ms();
    pdm_debug("control socket: %s (0600), %zu bytes per response, %d clients at most", c->path,
              c->cap, PDM_CONTROL_MAX_CLIENTS);
    *out = c;
    return 0;

fail_unlink:
    unlink(c->path);
fail:
    if (c->lfd >= 0)
        close(c->lfd);
    free(c->bufs);
    free(c->snap.sensors);
    free(c->snap.assets);
    free(c);
    return rc;
}

static void drop_client(struct client *cl)
{
    if (cl->fd >= 0)
        close(cl->fd);
    cl->fd = -1;
    cl->req_len = 0;
    cl->responding = 0;
    cl->len = cl->off = 0;
}

void pdm_control_close(struct pdm_control *c)
{
    if (!c)
        return;
    for (int i = 0; i < PDM_CONTROL_MAX_CLIENTS; i++)
        drop_client(&c->cl[i]);
    if (c->lfd >= 0) {
        close(c->lfd);
        unlink(c->path);
    }
    free(c->bufs);
    free(c->snap.sensors);
    free(c->snap.assets);
    free(c);
}

int pdm_control_pollfds(struct pdm_control *c, struct pollfd *pfd)
{
    int n = 0;
    if (!c)
        return 0;
    pfd[n++] = (struct pollfd){.fd = c->lfd, .events = POLLIN};
    for (int i = 0; i < PDM_CONTROL_MAX_CLIENTS; i++)
        if (c->cl[i].fd >= 0)
            pfd[n++] = (struct pollfd){.fd = c->cl[i].fd,
                                       .events = c->cl[i].responding ? POLLOUT : POLLIN};
    return n;
}

static void answer(struct pdm_control *c, struct client *cl, pdm_control_fill_cb fill, void *ctx)
{
    /* the request: one line, trailing CR/LF and blanks ignored */
    cl->req[cl->req_len < sizeof(cl->req) ? cl->req_len : sizeof(cl->req) - 1] = '\0';
    char *nl = strpbrk(cl->req, "\r\n");
    if (nl)
        *nl = '\0';
    size_t l = strlen(cl->req);
    while (l && (cl->req[l - 1] == ' ' || cl->req[l - 1] == '\t'))
        cl->req[--l] = '\0';

    struct out o = {.p = cl->out, .cap = c->cap};
    int json = strcmp(cl->req, "status json") == 0;
    if (json || strcmp(cl->req, "status") == 0) {
        struct pdm_ctl_snapshot *s = &c->snap;
        s->now_ms = pdm_wall_ms();
        s->uptime_s = (pdm_mono_ms() - c->start_mono_ms) / 1000;
        fill(ctx, s);
        if (json)
            render_json(&o, s, c->errors);
        else
            render_text(&o, s, c->errors);
        if (o.full) {
            o = (struct out){.p = cl->out, .cap = c->cap};
            put(&o, "error: the status does not fit in the agent's %zu-byte response buffer\n",
                c->cap);
            pdm_warn("control socket: a status response did not fit in %zu bytes; the client was "
                     "told so",
                     c->cap);
        }
    } else if (!c->req_fn || c->req_fn(c->req_ctx, cl->req, cl->out, c->cap) != 0) {
        put(&o,
            "error: unknown request '%.64s' (expected: status | status json | baseline ASSET "
            "SECONDS [force] | baseline-show ASSET)\n",
            cl->req);
    } else {
        o.len = strnlen(cl->out, c->cap - 1);
    }
    cl->len = o.len;
    cl->off = 0;
    cl->responding = 1;
}

/* Writes what the socket takes now; 1 when the response is complete, 0 to wait, -1 on error. */
static int flush_client(struct client *cl)
{
    while (cl->off < cl->len) {
        ssize_t w = send(cl->fd, cl->out + cl->off, cl->len - cl->off, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
        cl->off += (size_t)w;
    }
    return 1;
}

/* Reads what is there; 1 when a request is complete (newline, EOF or full), 0 to wait, -1 on
 * error. */
static int read_client(struct client *cl)
{
    for (;;) {
        if (cl->req_len >= sizeof(cl->req) - 1)
            return 1; /* too long: answered as an unknown request */
        ssize_t r = recv(cl->fd, cl->req + cl->req_len, sizeof(cl->req) - 1 - cl->req_len, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
        if (r == 0)
            return cl->req_len ? 1 : -1;
        if (memchr(cl->req + cl->req_len, '\n', (size_t)r)) {
            cl->req_len += (size_t)r;
            return 1;
        }
        cl->req_len += (size_t)r;
    }
}

static void accept_clients(struct pdm_control *c, int64_t now)
{
    for (;;) {
        int fd = accept4(c->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return; /* EAGAIN: no more; anything else: the next poll retries */
        struct client *cl = NULL;
        for (int i = 0; i < PDM_CONTROL_MAX_CLIENTS && !cl; i++)
            if (c->cl[i].fd < 0)
                cl = &c->cl[i];
        if (!cl) {
            static const char busy[] = "error: busy (too many status clients); try again\n";
            ssize_t ignored = send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
            (void)ignored;
            close(fd);
            continue;
        }
        cl->fd = fd;
        cl->deadline_ms = now + PDM_CONTROL_CLIENT_MS;
        cl->req_len = 0;
        cl->responding = 0;
    }
}

void pdm_control_handle(struct pdm_control *c, const struct pollfd *pfd, int n, int64_t now_mono_ms,
                        pdm_control_fill_cb fill, void *ctx)
{
    if (!c)
        return;
    for (int i = 0; i < n; i++) {
        if (!pfd[i].revents || pfd[i].fd < 0)
            continue;
        if (pfd[i].fd == c->lfd) {
            accept_clients(c, now_mono_ms);
            continue;
        }
        struct client *cl = NULL;
        for (int k = 0; k < PDM_CONTROL_MAX_CLIENTS && !cl; k++)
            if (c->cl[k].fd == pfd[i].fd)
                cl = &c->cl[k];
        if (!cl)
            continue;
        if (!cl->responding) {
            int r = read_client(cl);
            if (r < 0) {
                drop_client(cl);
                continue;
            }
            if (r == 0)
                continue;
            answer(c, cl, fill, ctx);
        }
        /* try at once: a local socket usually takes the whole response in one send */
        int r = flush_client(cl);
        if (r != 0)
            drop_client(cl);
    }
    for (int k = 0; k < PDM_CONTROL_MAX_CLIENTS; k++) {
        struct client *cl = &c->cl[k];
        if (cl->fd >= 0 && now_mono_ms >= cl->deadline_ms) {
            pdm_debug("control socket: dropped a client that did not %s within %d ms",
                      cl->responding ? "take its response" : "send a request",
                      PDM_CONTROL_CLIENT_MS);
            drop_client(cl);
        }
    }
}

void pdm_control_set_request_handler(struct pdm_control *c, pdm_control_request_cb fn, void *ctx)
{
    if (c) {
        c->req_fn = fn;
        c->req_ctx = ctx;
    }
}

void pdm_control_note_error(struct pdm_control *c, int64_t wall_ms, const char *fmt, ...)
{
    if (!c)
        return;
    char text[PDM_CONTROL_ERROR_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    struct pdm_ctl_error *slot = NULL, *oldest = &c->errors[0];
    for (int i = 0; i < PDM_CONTROL_ERRORS; i++) {
        struct pdm_ctl_error *e = &c->errors[i];
        if (e->count && strcmp(e->text, text) == 0) {
            slot = e;
            break;
        }
        if (!e->count || (oldest->count && e->ts_ms < oldest->ts_ms))
            oldest = e;
    }
    if (!slot) {
        slot = oldest;
        slot->count = 0;
        memcpy(slot->text, text, sizeof(text));
    }
    slot->count++;
    slot->ts_ms = wall_ms;
}
