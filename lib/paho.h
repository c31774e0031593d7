/* One way to start and stop an Eclipse Paho MQTT C (async) client, shared by the agent's
 * uplink and pdmctl.
 *
 * Why this exists (issue 17). Paho runs two detached threads. MQTTAsync_destroy() of the last
 * client returns once those threads have marked themselves stopped, not once they have exited:
 * each thread still runs its thread-specific-data destructors afterwards, among them OpenSSL's
 * per-thread state. A program that returns from main() then runs OpenSSL's atexit handler
 * (OPENSSL_cleanup), which frees the same state from the main thread: glibc aborts with "double
 * free or corruption (fasttop)" (core dumps under qemu arm64 show exactly these two stacks:
 * exit -> OPENSSL_cleanup -> OPENSSL_LH_free, and start_thread -> __nptl_deallocate_tsd -> free).
 * The threads are detached, so nobody can join them. The root fix is to keep OpenSSL from
 * tearing itself down at exit (OPENSSL_INIT_NO_ATEXIT, OpenSSL's documented option for this):
 * pdm_paho_create() asks for it before Paho initialises OpenSSL. The process's memory is
 * returned by the kernel as it is for every other library.
 *
 * Stopping: pdm_paho_disconnect() sends DISCONNECT and waits for Paho's own answer (the
 * disconnect's onSuccess or onFailure), never a fixed sleep; pdm_paho_destroy() does that and
 * then MQTTAsync_destroy(), after which no callback of this client runs (Paho fails what it
 * still holds through the callbacks during the call, so their contexts must still be alive).
 *
 * Threads: call these from one thread; Paho's callbacks here touch only mu, cond, stop_pending. */
#ifndef PDM_LIB_PAHO_H
#define PDM_LIB_PAHO_H

#include <pthread.h>
#include <stddef.h>

#include <MQTTAsync.h>

struct pdm_paho {
    MQTTAsync client; /* NULL until created and after destroy */
    int live;         /* created: mu and cond are initialised */
    int mqtt5;        /* created for MQTT 5: callbacks take the v5 shapes */
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int stop_pending; /* a DISCONNECT is queued and Paho has not answered it yet */
};

/* Makes p->client (MQTTAsync_createWithOptions with co). 0, or a negative errno with the reason
 * in err (-EPROTONOSUPPORT: this Paho has no TLS, -EINVAL otherwise). */
int pdm_paho_create(struct pdm_paho *p, const char *paho_uri, const char *client_id,
                    MQTTAsync_createOptions *co, char *err, size_t errlen);

/* If connected: DISCONNECT, letting Paho wait up to drain_ms for acknowledgements still due,
 * then waits for Paho's answer (at most drain_ms + 5 s). 0 when Paho answered or there was no
 * connection, -ETIMEDOUT if it did not answer in time (the answer may still come: p stays
 * valid until pdm_paho_destroy). */
int pdm_paho_disconnect(struct pdm_paho *p, int drain_ms);

/* pdm_paho_disconnect(p, drain_ms), then MQTTAsync_destroy; safe on a client never created. */
void pdm_paho_destroy(struct pdm_paho *p, int drain_ms);

#endif
