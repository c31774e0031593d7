#include "agent.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "baseline.h"
#include "bus.h"
#include "lib/clock.h"
#include "command.h"
#include "commands.h"
#include "config.h"
#include "control.h"
#include "lib/log.h"
#include "lib/notify.h"
#include "ota.h"
#include "outbox.h"
#include "pipeline.h"
#include "service.h"
#include "status.h"
#include "store.h"
#include "timer.h"
#include "uplink.h"
#include "../models/engine.h"

#define RECONNECT_MIN_MS  1000               /* broker reconnect backoff: 1 s doubling ... */
#define RECONNECT_MAX_MS  60000              /* ... up to 60 s */
#define SQLITE_HEAP_LIMIT (16 * 1024 * 1024) /* bytes: bounds SQLite's own memory */

struct agent {
    struct pdm_config *cfg;
    struct pdm_bus **buses;
    struct pdm_pipeline pipe; /* samples -> quality -> engine -> store (pipeline.h) */
    struct pdm_store *store;
    struct pdm_uplink *uplink;
    int sigfd;
    int stop;
    /* systemd watchdog: "WATCHDOG=1" every watchdog_ms from the loop (0 = not asked for), so
     * a loop that hangs stops the pings and systemd restarts the agent */
    int64_t watchdog_ms;
    /* what the loop wakes up for besides samples, events and scoring (timer.h) */
    struct pdm_timers timers;
    int t_connect; /* stopped while connected or connecting */
    /* control socket (pdmctl status): see control.h */
    struct pdm_control *control;
    struct pdm_status status; /* the Status message and the control socket's snapshot */
    /* commands (command.h): the filters subscribed to */
    char topic_cmd_dev[512], topic_cmd_fleet[512];
    struct pdm_ota *ota;             /* cmd/model and the choice of model at start */
    struct pdm_baselines *baselines; /* per-asset baselines: cmd/baseline, pdmctl baseline */
    uint8_t will[512];
    size_t will_len;

    /* uplink state, all in monotonic ms; broker is what Status and the snapshot show */
    struct pdm_broker_state broker;
    int64_t backoff_ms;
    struct pdm_complaint broker_complaint;

    struct pdm_service svc;   /* closed service loop (service.h) */
    struct pdm_commands cmds; /* commands from the backend and the control socket (commands.h) */

    uint8_t *buf; /* encode buffer for one message, shared by the modules */
    size_t buf_cap;
    struct pdm_outbox outbox; /* everything published (outbox.h) */
};

/* ---- helpers -------------------------------------------------------------------------------- */

static int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

static int mkdir_p(const char *path)
{
    char tmp[PDM_PATH_MAX];
    snprintf(tmp, sizeof(tmp), "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0750) != 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(tmp, 0750) != 0 && errno != EEXIST)
        return -errno;
    return 0;
}

/* ---- uplink events ----------------------------------------------------------------------------
 */

static void schedule_reconnect(struct agent *a, int64_t now)
{
    a->broker.connecting = 0;
    pdm_timer_set(&a->timers, a->t_connect, now + a->backoff_ms);
    a->backoff_ms = a->backoff_ms * 2 > RECONNECT_MAX_MS ? RECONNECT_MAX_MS : a->backoff_ms * 2;
}

static void handle_uplink(struct agent *a)
{
    struct pdm_uplink_event ev;
    int64_t now = pdm_mono_ms();
    while (pdm_uplink_next_event(a->uplink, &ev)) {
        switch (ev.type) {
        case PDM_UPLINK_CONNECTED: {
            a->broker.connected = 1;
            a->broker.connecting = 0;
            a->backoff_ms = RECONNECT_MIN_MS;
            pdm_release(&a->broker_complaint, "broker %s: connected again", a->cfg->uri);
            pdm_info("broker %s: connected; sending undelivered alerts, then telemetry",
                     a->cfg->uri);
            pdm_notifyf("STATUS=connected to broker %s", a->cfg->uri);
            pdm_outbox_connected(&a->outbox, now);
            /* the session is clean: subscriptions are made again on every connection */
            if (pdm_uplink_subscribe(a->uplink) != 0)
                pdm_debug("commands: subscribing failed at once (reported as an event)");
            pdm_status_publish(&a->status, 1);
            pdm_status_timer_restart(&a->status, now);
            break;
        }
        case PDM_UPLINK_SUBSCRIBED:
            pdm_info("commands: %s", ev.reason);
            break;
        case PDM_UPLINK_SUBSCRIBE_FAILED:
            pdm_err("commands: %s; model updates and other commands cannot reach this device "
                    "until the next connection",
                    ev.reason);
            pdm_control_note_error(a->control, pdm_wall_ms(), "commands: %s", ev.reason);
            break;
        case PDM_UPLINK_MESSAGE:
            pdm_commands_handle(&a->cmds, &ev);
            break;
        case PDM_UPLINK_CONNECT_FAILED:
            snprintf(a->broker.error, sizeof(a->broker.error), "cannot connect: %.200s", ev.reason);
            pdm_control_note_error(a->control, pdm_wall_ms(), "broker: cannot connect: %s",
                                   ev.reason);
            pdm_complain(&a->broker_complaint, now,
                         "broker %s: cannot connect: %s; retrying in %lld s", a->cfg->uri,
                         ev.reason, (long long)(a->backoff_ms / 1000));
            pdm_notifyf("STATUS=buffering: broker unreachable (%.200s)", ev.reason);
            schedule_reconnect(a, now);
            break;
        case PDM_UPLINK_CONNECTION_LOST:
            a->broker.connected = 0;
            snprintf(a->broker.error, sizeof(a->broker.error), "connection lost: %.200s",
                     ev.reason);
            pdm_control_note_error(a->control, pdm_wall_ms(), "broker: connection lost: %s",
                                   ev.reason);
            pdm_outbox_disconnected(&a->outbox);
            pdm_status_timer_stop(&a->status); /* no Status while offline */
            pdm_warn(
                "broker %s: connection lost (%s); buffering in the store, reconnecting in %lld s",
                a->cfg->uri, ev.reason, (long long)(a->backoff_ms / 1000));
            pdm_notifyf("STATUS=buffering: broker connection lost (%.200s)", ev.reason);
            schedule_reconnect(a, now);
            break;
        case PDM_UPLINK_DELIVERED:
            pdm_outbox_delivered(&a->outbox, ev.cookie);
            break;
        case PDM_UPLINK_SEND_FAILED:
            pdm_outbox_send_failed(&a->outbox, ev.cookie);
            break;
        }
    }
    pdm_outbox_pump(&a->outbox);
}

static void handle_signals(struct agent *a)
{
    struct signalfd_siginfo si;
    while (read(a->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) {
            pdm_info("signal %s: stopping", si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
            /* before the flush and the broker goodbye, which can take a few seconds */
            if (!a->stop)
                pdm_notify("STOPPING=1\nSTATUS=stopping: flushing the store");
            a->stop = 1;
        } else if (si.ssi_signo == SIGHUP) {
            pdm_info("SIGHUP: configuration reload is not supported yet; restart the agent to "
                     "apply changes");
        }
    }
}

/* ---- timers (timer.h) ------------------------------------------------------------------- */

/* Running while neither connected nor connecting (schedule_reconnect starts it). */
static int64_t connect_timer(void *ctx, int64_t now)
{
    struct agent *a = ctx;
    int rc = pdm_uplink_connect(a->uplink);
    if (rc == 0) {
        a->broker.connecting = 1;
        return PDM_TIMER_OFF;
    }
    pdm_complain(&a->broker_complaint, now, "broker %s: cannot start connecting (%s)", a->cfg->uri,
                 strerror(-rc));
    int64_t next = now + a->backoff_ms;
    schedule_reconnect(a, now);
    return next;
}

static int64_t watchdog_timer(void *ctx, int64_t now)
{
    struct agent *a = ctx;
    pdm_notify("WATCHDOG=1");
    return now + a->watchdog_ms;
}

/* ---- start-up and shutdown --------------------------------------------------------------------
 */

static void restore_alert(void *ctx, const struct pdm_stored_alert *sa)
{
    struct agent *a = ctx;
    if (pdm_service_restore(&a->svc, sa))
        return;
    pdm_pipeline_restore_alert(&a->pipe, sa);
}

/* The outbox's way to the broker (outbox.h): QoS 1 through Paho. */
static int uplink_publish(void *ctx, const char *topic, const void *payload, size_t len,
                          int retained, uint64_t cookie)
{
    struct agent *a = ctx;
    return pdm_uplink_publish(a->uplink, topic, payload, len, 1, retained, cookie);
}

static int setup(struct agent *a)
{
    struct pdm_config *cfg = a->cfg;
    char err[512];
    int rc;

    sqlite3_hard_heap_limit64(SQLITE_HEAP_LIMIT);
    if ((rc = mkdir_p(cfg->data_dir)) != 0) {
        pdm_err("data_dir %s: cannot create it (%s); the agent cannot buffer and stops",
                cfg->data_dir, strerror(-rc));
        return rc;
    }
    /* control socket first: it is also the lock that keeps a second agent off this data_dir */
    if ((rc = pdm_control_open(&a->control, cfg, err, sizeof(err))) != 0) {
        pdm_err("%s", err);
        return rc;
    }
    if ((rc = pdm_store_open(&a->store, cfg->data_dir, err, sizeof(err))) != 0) {
        pdm_err("%s; the agent stops", err);
        return rc;
    }

    rc = pdm_store_set_limits(a->store, (uint64_t)cfg->buffer_max_mb << 20,
                              (uint64_t)cfg->disk_reserve_mb << 20);
    if (rc != 0) {
        pdm_err("store: cannot apply buffer_max_mb = %d (%s); the agent stops", cfg->buffer_max_mb,
                strerror(-rc));
        return rc;
    }

    /* before anything reads the assets' models: an accepted update may replace them */
    if ((rc = pdm_ota_open(&a->ota, cfg, err, sizeof(err))) != 0) {
        pdm_err("%s; the agent stops", err);
        return rc;
    }
    pdm_ota_select(a->ota);
    /* after the choice of model: a stored baseline binds to the model the asset runs */
    if ((rc = pdm_baselines_open(&a->baselines, cfg, err, sizeof(err))) != 0) {
        pdm_err("%s; the agent stops", err);
        return rc;
    }

    a->buf_cap = 256 * 1024;
    a->buf = malloc(a->buf_cap);
    if (!a->buf) {
        pdm_err("out of memory at start-up");
        return -ENOMEM;
    }
    int64_t now = pdm_mono_ms();
    struct pdm_pipeline_cfg pcfg = {
        .device_id = cfg->device_id,
        .buses = cfg->buses,
        .sensors = cfg->sensors,
        .n_sensors = cfg->n_sensors,
        .assets = cfg->assets,
        .n_assets = cfg->n_assets,
    };
    if ((rc = pdm_pipeline_init(&a->pipe, &pcfg, a->store, &a->outbox, a->control, a->baselines,
                                a->buf, a->buf_cap, now)) != 0)
        return rc;
    struct pdm_service_cfg scfg = {
        .device_id = cfg->device_id,
        .sensors = cfg->sensors,
        .n_sensors = cfg->n_sensors,
        .assets = cfg->assets,
        .n_assets = cfg->n_assets,
        .renotify_h = cfg->renotify_h,
        .confirm_after_h = cfg->confirm_after_h,
    };
    if ((rc = pdm_service_init(&a->svc, &scfg, a->store, &a->outbox, &a->pipe, a->buf,
                               a->buf_cap)) != 0)
        return rc;
    struct pdm_commands_cfg ccfg = {
        .device_id = cfg->device_id,
        .topic_prefix = cfg->topic_prefix,
        .sensors = cfg->sensors,
        .n_sensors = cfg->n_sensors,
        .assets = cfg->assets,
        .n_assets = cfg->n_assets,
    };
    struct pdm_cmd_modules mods = {
        .ota = a->ota,
        .baselines = a->baselines,
        .pipe = &a->pipe,
        .service = &a->svc,
        .status = &a->status,
        .store = a->store,
        .outbox = &a->outbox,
        .control = a->control,
        .buf = a->buf,
        .buf_cap = a->buf_cap,
    };
    pdm_commands_init(&a->cmds, &ccfg, &mods);
    pdm_control_set_request_handler(a->control, pdm_commands_control_request, &a->cmds);
    pdm_store_open_alerts(a->store, restore_alert, a);
    for (uint32_t i = 0; i < cfg->n_assets; i++) {
        const struct pdm_asset_cfg *as = &cfg->assets[i];
        pdm_info("asset %s: model %s v%u (sha256 %.16s...)", as->name, as->model.id,
                 as->model.version, as->model.sha256);
        for (uint32_t p = 0; p < as->n_provides; p++)
            if (pdm_model_input_index(&as->model, as->provides[p].input) < 0)
                pdm_info("asset %s: input %s (sensor %s) is not used by model %s v%u; kept for "
                         "model updates",
                         as->name, as->provides[p].input, cfg->sensors[as->provides[p].sensor].name,
                         as->model.id, as->model.version);
    }

    struct pdm_status_cfg stcfg = {
        .device_id = cfg->device_id,
        .topic_prefix = cfg->topic_prefix,
        .uri = cfg->uri,
        .buses = cfg->buses,
        .sensors = cfg->sensors,
        .n_sensors = cfg->n_sensors,
        .assets = cfg->assets,
        .n_assets = cfg->n_assets,
    };
    pdm_status_init(&a->status, &stcfg, &a->pipe, &a->svc, a->store, &a->outbox, &a->broker, a->buf,
                    a->buf_cap);
    if (pdm_cmd_topics(cfg->topic_prefix, cfg->device_id, a->topic_cmd_dev, a->topic_cmd_fleet,
                       sizeof(a->topic_cmd_dev)) != 0) {
        pdm_err("topic_prefix %s: command topics too long", cfg->topic_prefix);
        return -ENAMETOOLONG;
    }
    const char *subs[] = {a->topic_cmd_dev, a->topic_cmd_fleet};
    int wl = pdm_status_encode(&a->status, 0, a->will, sizeof(a->will));
    if (wl < 0) {
        pdm_err("cannot encode the Last Will status (%s)", strerror(-wl));
        return wl;
    }
    a->will_len = (size_t)wl;
    struct pdm_uplink_cfg ucfg = {
        .uri = cfg->uri,
        .client_id = cfg->device_id,
        .ca_file = cfg->ca_file,
        .cert_file = cfg->cert_file,
        .key_file = cfg->key_file,
        .allow_plaintext = cfg->allow_plaintext,
        .will_topic = pdm_status_topic(&a->status),
        .will_payload = a->will,
        .will_len = a->will_len,
        .max_inflight = PDM_OUTBOX_MAX_INFLIGHT,
        .subscriptions = subs,
        .n_subscriptions = 2,
    };
    if ((rc = pdm_uplink_create(&a->uplink, &ucfg, err, sizeof(err))) != 0) {
        pdm_err("%s", err);
        return rc;
    }
    struct pdm_outbox_cfg ocfg = {
        .device_id = cfg->device_id,
        .topic_prefix = cfg->topic_prefix,
        .sensors = cfg->sensors,
        .n_sensors = cfg->n_sensors,
        .commit_interval_ms = cfg->commit_interval_ms,
        .telemetry_interval_s = cfg->telemetry_interval_s,
    };
    if ((rc = pdm_outbox_init(&a->outbox, &ocfg, a->store, uplink_publish, a, a->control, a->buf,
                              a->buf_cap)) != 0)
        return rc;

    a->buses = calloc(cfg->n_buses + 1, sizeof(*a->buses));
    if (!a->buses)
        return -ENOMEM;
    for (uint32_t i = 0; i < cfg->n_buses; i++) {
        if ((rc = pdm_bus_start(&a->buses[i], cfg, i, &a->pipe.queue)) != 0) {
            pdm_err("bus %s: cannot start its thread (%s)", cfg->buses[i].name, strerror(-rc));
            return rc;
        }
    }

    a->backoff_ms = RECONNECT_MIN_MS;
    /* in the order they run when due together */
    struct pdm_timers *t = &a->timers;
    pdm_outbox_add_timers(&a->outbox, t, now);
    pdm_status_add_timer(&a->status, t);
    pdm_service_add_timer(&a->svc, t);
    pdm_outbox_add_prune_timer(&a->outbox, t, now);
    a->t_connect = pdm_timer_add(t, "connect", now, connect_timer, a);
    return 0;
}

static void teardown(struct agent *a)
{
    if (a->buses) {
        for (uint32_t i = 0; i < a->cfg->n_buses; i++)
            if (a->buses[i])
                pdm_bus_stop(a->buses[i]);
        free(a->buses);
    }
    if (a->pipe.queue.ring)
        pdm_pipeline_drain(&a->pipe); /* what the buses read last still goes to the store */
    if (a->uplink) {
        if (a->broker.connected) {
            /* goodbye: a retained offline Status, like the Last Will but without the delay */
            pdm_status_publish(&a->status, 0);
            pdm_uplink_disconnect(a->uplink, 2000);
            handle_uplink(a); /* record what was acknowledged meanwhile */
        }
        pdm_uplink_destroy(a->uplink);
    }
    pdm_pipeline_free(&a->pipe);
    pdm_ota_close(a->ota);
    pdm_baselines_close(a->baselines);
    if (a->store)
        pdm_store_close(a->store);
    pdm_control_close(a->control); /* last: the data_dir stays locked until the store is closed */
    pdm_service_free(&a->svc);
    free(a->buf);
    pdm_outbox_free(&a->outbox);
}

int pdm_agent_run(struct pdm_config *cfg)
{
    static struct agent a; /* static: the loop's state is large and lives for the whole run */
    memset(&a, 0, sizeof(a));
    a.cfg = cfg;
    a.sigfd = -1;

    /* Signals are taken through a signalfd in the loop; block them before any thread starts so
     * that only the main loop sees them. */
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &mask, NULL);
    signal(SIGPIPE, SIG_IGN);
    a.sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (a.sigfd < 0) {
        pdm_err("signalfd: %s", strerror(errno));
        return 1;
    }

    pdm_info("pdm-agent %s starting: device %s, %u buses, %u sensors, %u assets, data in %s",
             PDM_VERSION, cfg->device_id, cfg->n_buses, cfg->n_sensors, cfg->n_assets,
             cfg->data_dir);
    int status = 0;
    if (setup(&a) != 0) {
        pdm_notify("STATUS=start-up failed; see the log");
        status = 1;
        goto out;
    }
    pdm_info("running; broker %s", cfg->uri);
    /* config, store and buses are up: only now may systemd start what depends on us */
    pdm_notifyf("READY=1\nSTATUS=running; connecting to broker %s", cfg->uri);
    a.watchdog_ms = pdm_notify_watchdog_ms();
    if (a.watchdog_ms > 0)
        pdm_timer_add(&a.timers, "watchdog", pdm_mono_ms(), watchdog_timer, &a);

    while (!a.stop) {
        int64_t now = pdm_mono_ms();
        int64_t next_eval = pdm_pipeline_tick(&a.pipe, now);
        pdm_commands_tick(&a.cmds, now);
        pdm_timers_run(&a.timers, now);
        int64_t due = min64(next_eval, pdm_timers_next(&a.timers));
        int64_t wait = due - pdm_mono_ms();
        if (wait < 0)
            wait = 0;
        if (wait > 1000)
            wait = 1000;

        struct pollfd pfd[3 + PDM_CONTROL_POLLFDS] = {
            {.fd = a.pipe.queue.efd, .events = POLLIN},
            {.fd = pdm_uplink_event_fd(a.uplink), .events = POLLIN},
            {.fd = a.sigfd, .events = POLLIN},
        };
        int nctl = pdm_control_pollfds(a.control, pfd + 3); /* control socket (pdmctl status) */
        int n = poll(pfd, (nfds_t)(3 + nctl), (int)wait);
        if (n < 0 && errno != EINTR) {
            pdm_err("poll: %s", strerror(errno));
            status = 1;
            break;
        }
        if (pfd[2].revents & POLLIN)
            handle_signals(&a);
        if (pfd[0].revents & POLLIN)
            pdm_pipeline_drain(&a.pipe);
        if (pfd[1].revents & POLLIN)
            handle_uplink(&a);
        pdm_control_handle(a.control, pfd + 3, n > 0 ? nctl : 0, pdm_mono_ms(),
                           pdm_status_fill_snapshot, &a.status);
    }

out:
    teardown(&a);
    close(a.sigfd);
    pdm_info("stopped");
    return status;
}
