/* Fixed-capacity sample window.
 *
 * Memory: cap * (8 + 8) bytes, allocated once by pdm_window_init(); push and stat never
 * allocate. The statistics scan every stored sample (O(cap)); with caps in the tens to
 * thousands and one evaluation per second per asset that is cheaper than keeping running sums,
 * which would also drift under floating-point cancellation. */
#include "window.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>

int pdm_window_init(struct pdm_window *w, uint32_t cap, int64_t span_ms)
{
    w->ts_ms = NULL;
    w->v = NULL;
    w->cap = w->head = w->count = 0;
    w->span_ms = span_ms;
    if (cap == 0)
        return -EINVAL;
    w->ts_ms = calloc(cap, sizeof(*w->ts_ms));
    w->v = calloc(cap, sizeof(*w->v));
    if (!w->ts_ms || !w->v) {
        pdm_window_free(w);
        return -ENOMEM;
    }
    w->cap = cap;
    return 0;
}

void pdm_window_free(struct pdm_window *w)
{
    free(w->ts_ms);
    free(w->v);
    w->ts_ms = NULL;
    w->v = NULL;
    w->cap = w->head = w->count = 0;
}

void pdm_window_push(struct pdm_window *w, int64_t ts_ms, double v)
{
    if (w->cap == 0)
        return;
    /* head is the next slot to write; when full it is also the oldest sample. */
    w->ts_ms[w->head] = ts_ms;
    w->v[w->head] = v;
    w->head = w->head + 1 == w->cap ? 0 : w->head + 1;
    if (w->count < w->cap)
        w->count++;
}

uint32_t pdm_window_stat(const struct pdm_window *w, enum pdm_stat stat, int64_t now_ms,
                         double *out)
{
    int64_t after = now_ms - w->span_ms; /* samples at or before this are too old */
    uint32_t n = 0;
    double acc = 0.0;

    /* Until the ring wraps, slots 0..count-1 are filled; after, all cap slots are. None of the
     * statistics depends on the order, so the scan goes by slot. */
    for (uint32_t i = 0; i < w->count; i++) {
        if (w->ts_ms[i] <= after)
            continue;
        double v = w->v[i];
        switch (stat) {
        case PDM_STAT_MEAN:
            acc += v;
            break;
        case PDM_STAT_RMS:
            acc += v * v;
            break;
        case PDM_STAT_MAX:
            if (n == 0 || v > acc)
                acc = v;
            break;
        }
        n++;
    }
    if (n == 0)
        return 0;
    switch (stat) {
    case PDM_STAT_MEAN:
        *out = acc / n;
        break;
    case PDM_STAT_RMS:
        *out = sqrt(acc / n);
        break;
    case PDM_STAT_MAX:
        *out = acc;
        break;
    }
    return n;
}
