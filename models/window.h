/* A fixed-capacity time window of samples for one model input.
 *
 * Memory: cap * 16 bytes, allocated once by pdm_window_init(). Pushing into a full window
 * overwrites the oldest sample; samples older than span_ms are ignored by the statistics. */
#ifndef PDM_WINDOW_H
#define PDM_WINDOW_H

#include <stdint.h>

#include "model.h"

struct pdm_window {
    int64_t *ts_ms; /* monotonic ms of each sample */
    double *v;
    uint32_t cap, head, count;
    int64_t span_ms;
};

int pdm_window_init(struct pdm_window *w, uint32_t cap, int64_t span_ms); /* 0 or -ENOMEM */
void pdm_window_free(struct pdm_window *w);
void pdm_window_push(struct pdm_window *w, int64_t ts_ms, double v);
/* Statistic over samples with ts > now_ms - span_ms. Returns the number of samples used, or
 * 0 when there are none (out untouched). */
uint32_t pdm_window_stat(const struct pdm_window *w, enum pdm_stat stat, int64_t now_ms,
                         double *out);

#endif
