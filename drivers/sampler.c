/* The sampler thread shell (see sampler.h). */
#include "sampler.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>

#include "lib/clock.h"
#include "lib/sample.h"

static void set_text(char *dst, size_t n, const char *src)
{
    size_t len = strnlen(src, n - 1);
    memcpy(dst, src, len);
    dst[len] = '\0';
}

static void *sampler_main(void *arg)
{
    struct pdm_sampler *s = arg;
    prctl(PR_SET_NAME, s->name, 0, 0, 0);
    s->loop(s->arg);
    return NULL;
}

int pdm_sampler_start(struct pdm_sampler *s, const char *name, void (*loop)(void *arg), void *arg)
{
    s->stop = 0;
    memcpy(s->name, "bus-", 4);
    set_text(s->name + 4, sizeof(s->name) - 4, name);
    s->loop = loop;
    s->arg = arg;

    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cond, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&s->lock, NULL);

    /* Signals are for the main loop: the thread starts with all of them blocked. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&s->thread, NULL, sampler_main, s);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        pthread_cond_destroy(&s->cond);
        pthread_mutex_destroy(&s->lock);
        return -rc;
    }
    return 0;
}

void pdm_sampler_stop(struct pdm_sampler *s)
{
    pthread_mutex_lock(&s->lock);
    s->stop = 1;
    pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&s->lock);
    pthread_join(s->thread, NULL);
    pthread_cond_destroy(&s->cond);
    pthread_mutex_destroy(&s->lock);
}

int pdm_sampler_stopping(struct pdm_sampler *s)
{
    pthread_mutex_lock(&s->lock);
    int stop = s->stop;
    pthread_mutex_unlock(&s->lock);
    return stop;
}

int pdm_sampler_wait_until_ns(struct pdm_sampler *s, int64_t due_ns)
{
    pthread_mutex_lock(&s->lock);
    while (!s->stop) {
        if (due_ns == INT64_MAX) {
            pthread_cond_wait(&s->cond, &s->lock);
            continue;
        }
        if (pdm_mono_ns() >= due_ns)
            break;
        struct timespec ts = {.tv_sec = due_ns / 1000000000, .tv_nsec = due_ns % 1000000000};
        if (pthread_cond_timedwait(&s->cond, &s->lock, &ts) == ETIMEDOUT)
            break;
    }
    int stop = s->stop;
    pthread_mutex_unlock(&s->lock);
    return stop;
}

int pdm_sampler_wait_until_ms(struct pdm_sampler *s, int64_t due_ms)
{
    return pdm_sampler_wait_until_ns(s, due_ms == INT64_MAX ? INT64_MAX : due_ms * 1000000);
}

void pdm_sampler_push(struct pdm_queue *q, uint32_t sensor, double value, int32_t err,
                      const char *reason)
{
    struct pdm_sample smp = {
        .ts_ms = pdm_wall_ms(),
        .mono_ms = pdm_mono_ms(),
        .value = err ? 0.0 : value,
        .sensor = sensor,
        .err = err,
    };
    if (err)
        set_text(smp.reason, sizeof(smp.reason), reason);
    /* -ENOBUFS: dropped and counted by the queue; the main loop reports it */
    (void)pdm_queue_push(q, &smp);
}
