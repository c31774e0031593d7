/* See paho.h: why Paho clients are made and stopped here, and nowhere else. */
#include "paho.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#define ANSWER_GRACE_MS 5000 /* beyond drain_ms: Paho answers a DISCONNECT after at most that */

static void stop_answered(struct pdm_paho *p)
{
    pthread_mutex_lock(&p->mu);
    p->stop_pending = 0;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->mu);
}

static void on_stop_ok(void *ctx, MQTTAsync_successData *resp)
{
    (void)resp;
    stop_answered(ctx);
}

static void on_stop_fail(void *ctx, MQTTAsync_failureData *resp)
{
    (void)resp;
    stop_answered(ctx);
}

static void on_stop_ok5(void *ctx, MQTTAsync_successData5 *resp)
{
    (void)resp;
    stop_answered(ctx);
}

static void on_stop_fail5(void *ctx, MQTTAsync_failureData5 *resp)
{
    (void)resp;
    stop_answered(ctx);
}

int pdm_paho_create(struct pdm_paho *p, const char *paho_uri, const char *client_id,
                    MQTTAsync_createOptions *co, char *err, size_t errlen)
{
    memset(p, 0, sizeof(*p));
    /* Before Paho's first call into OpenSSL: the first initialisation decides whether OpenSSL
     * registers its atexit cleanup (see paho.h for the crash it causes). */
    if (!OPENSSL_init_crypto(OPENSSL_INIT_NO_ATEXIT, NULL)) {
        snprintf(err, errlen, "cannot initialise OpenSSL for the MQTT client");
        return -EINVAL;
    }
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(&p->cond, &ca);
    pthread_condattr_destroy(&ca);
    if (rc != 0) {
        snprintf(err, errlen, "cannot make a condition variable: %s", strerror(rc));
        return -rc;
    }
    pthread_mutex_init(&p->mu, NULL);
    p->mqtt5 = co && co->MQTTVersion >= MQTTVERSION_5;
    rc = MQTTAsync_createWithOptions(&p->client, paho_uri, client_id, MQTTCLIENT_PERSISTENCE_NONE,
                                     NULL, co);
    if (rc != MQTTASYNC_SUCCESS) {
        const char *why = MQTTAsync_strerror(rc);
        snprintf(err, errlen, "cannot create the Paho client: %s (%d)", why ? why : "error", rc);
        p->client = NULL;
        pthread_cond_destroy(&p->cond);
        pthread_mutex_destroy(&p->mu);
        return rc == MQTTASYNC_SSL_NOT_SUPPORTED ? -EPROTONOSUPPORT : -EINVAL;
    }
    p->live = 1;
    return 0;
}

int pdm_paho_disconnect(struct pdm_paho *p, int drain_ms)
{
    if (!p->live || !p->client)
        return 0;
    if (drain_ms < 0)
        drain_ms = 0;
    pthread_mutex_lock(&p->mu);
    int pending = p->stop_pending;
    pthread_mutex_unlock(&p->mu);
    if (!pending) {
        MQTTAsync_disconnectOptions o = MQTTAsync_disconnectOptions_initializer;
        o.timeout = drain_ms;
        o.context = p;
        if (p->mqtt5) {
            o.onSuccess5 = on_stop_ok5;
            o.onFailure5 = on_stop_fail5;
        } else {
            o.onSuccess = on_stop_ok;
            o.onFailure = on_stop_fail;
        }
        pthread_mutex_lock(&p->mu);
        p->stop_pending = 1;
        pthread_mutex_unlock(&p->mu);
        if (MQTTAsync_disconnect(p->client, &o) != MQTTASYNC_SUCCESS) {
            /* not connected (MQTTASYNC_DISCONNECTED): nothing to wait for */
            pthread_mutex_lock(&p->mu);
            p->stop_pending = 0;
            pthread_mutex_unlock(&p->mu);
            return 0;
        }
    }
    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    int64_t ns = dl.tv_nsec + ((int64_t)drain_ms + ANSWER_GRACE_MS) * 1000000;
    dl.tv_sec += (time_t)(ns / 1000000000);
    dl.tv_nsec = (long)(ns % 1000000000);
    int rc = 0;
    pthread_mutex_lock(&p->mu);
    while (p->stop_pending && rc == 0)
        rc = pthread_cond_timedwait(&p->cond, &p->mu, &dl);
    int answered = !p->stop_pending;
    pthread_mutex_unlock(&p->mu);
    return answered ? 0 : -ETIMEDOUT;
}

void pdm_paho_destroy(struct pdm_paho *p, int drain_ms)
{
    if (!p->live)
        return;
    pdm_paho_disconnect(p, drain_ms);
    /* Fails, through the callbacks, whatever Paho still holds; none runs after it returns. */
    MQTTAsync_destroy(&p->client);
    p->client = NULL;
    pthread_cond_destroy(&p->cond);
    pthread_mutex_destroy(&p->mu);
    p->live = 0;
}
