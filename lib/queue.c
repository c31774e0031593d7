#include "queue.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

int pdm_queue_init(struct pdm_queue *q, uint32_t capacity)
{
    q->ring = calloc(capacity, sizeof(*q->ring));
    if (!q->ring)
        return -ENOMEM;
    q->cap = capacity;
    q->head = q->count = 0;
    q->dropped = 0;
    q->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (q->efd < 0) {
        int e = errno;
        free(q->ring);
        return -e;
    }
    pthread_mutex_init(&q->lock, NULL);
    return 0;
}

void pdm_queue_destroy(struct pdm_queue *q)
{
    if (q->efd >= 0)
        close(q->efd);
    q->efd = -1;
    free(q->ring);
    q->ring = NULL;
    pthread_mutex_destroy(&q->lock);
}

int pdm_queue_push(struct pdm_queue *q, const struct pdm_sample *s)
{
    int wake = 0, rc = 0;
    pthread_mutex_lock(&q->lock);
    if (q->count == q->cap) {
        q->dropped++;
        rc = -ENOBUFS;
    } else {
        q->ring[(q->head + q->count) % q->cap] = *s;
        wake = q->count++ == 0;
    }
    pthread_mutex_unlock(&q->lock);
    if (wake) {
        uint64_t one = 1;
        ssize_t w = write(q->efd, &one, sizeof(one));
        (void)w; /* EAGAIN only when the counter is saturated: it is readable anyway */
    }
    return rc;
}

uint32_t pdm_queue_pop(struct pdm_queue *q, struct pdm_sample *out, uint32_t max)
{
    uint32_t n = 0;
    pthread_mutex_lock(&q->lock);
    while (n < max && q->count > 0) {
        out[n++] = q->ring[q->head];
        q->head = (q->head + 1) % q->cap;
        q->count--;
    }
    if (q->count == 0) {
        uint64_t v;
        ssize_t r = read(q->efd, &v, sizeof(v));
        (void)r; /* EAGAIN when already clear */
    }
    pthread_mutex_unlock(&q->lock);
    return n;
}
