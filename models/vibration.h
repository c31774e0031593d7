/* Per-window vibration features of raw acceleration samples: RMS, peak, crest factor and
 * kurtosis, with the DC offset removed.
 *
 * Memory: the state is this struct (72 bytes); there is no sample buffer and nothing is
 * allocated, ever. Samples are folded into running central moments as they arrive (Welford's
 * update extended to the 3rd and 4th moments, after Pebay 2008). Why not two passes over a
 * buffer: a buffer costs 8 bytes per sample per axis (a 4096-sample window on three axes is
 * 96 KB) and puts the whole window's work into one burst at its end. Why it is still
 * numerically sound: every update works on the deviation from the running mean, so a large DC
 * offset (1 g of gravity on a 0.01 g signal) cancels before anything is squared, unlike sums of
 * x^2 and x^4; and the accumulators restart at every window, so rounding cannot build up beyond
 * one window. The unit test compares against a two-pass long-double reference.
 *
 * Definitions (all over the N samples of a window, population moments, divisor N):
 *   mean     DC offset, reported but removed from everything below;
 *   rms      sqrt(mean((x - mean)^2)), i.e. the standard deviation;
 *   peak     max |x - mean|;
 *   crest    peak / rms (sqrt(2) for a sine, 1 for a square wave);
 *   kurtosis mean((x - mean)^4) / rms^4, the plain 4th standardised moment, NOT the excess:
 *            3 for Gaussian noise, 1.5 for a sine, 1 for a square wave; bearing faults give
 *            impulsive signals with kurtosis well above 3.
 * A flat window (rms == 0, e.g. a stuck sensor) reports crest = kurtosis = 0.
 * Units: mean, rms and peak are in the units of the samples (m/s^2 from drivers/iio.c, g in the
 * CWRU recordings); crest and kurtosis have none. */
#ifndef PDM_VIBRATION_H
#define PDM_VIBRATION_H

#include <stddef.h>
#include <stdint.h>

struct pdm_vib_features {
    double mean, rms, peak, crest, kurtosis;
    uint32_t n; /* samples in the window */
};

struct pdm_vib {
    uint32_t window_n;       /* samples per window, fixed at init */
    uint32_t n;              /* samples in the window being filled */
    uint64_t windows;        /* windows completed since init */
    double mean, m2, m3, m4; /* running mean and sums of centred powers */
    double min, max;
};

/* window_n >= 2 samples per window; windows do not overlap. Returns 0 or -EINVAL. */
int pdm_vib_init(struct pdm_vib *v, uint32_t window_n);
/* Drops the partial window (e.g. after a gap in the stream). */
void pdm_vib_reset(struct pdm_vib *v);
/* Adds one sample. Returns 1 when it completed a window (out filled, next window started),
 * 0 otherwise (out untouched). */
int pdm_vib_push(struct pdm_vib *v, double x, struct pdm_vib_features *out);
/* Adds samples from x[0..n) until a window completes or x runs out; returns how many were
 * consumed and sets *done to 1 when out was filled. Call again with x + consumed for the rest. */
size_t pdm_vib_push_block(struct pdm_vib *v, const double *x, size_t n,
                          struct pdm_vib_features *out, int *done);
/* The features of the partial window so far (n >= 1 sample), without ending it; -ENODATA when
 * it is empty. */
int pdm_vib_peek(const struct pdm_vib *v, struct pdm_vib_features *out);

#endif
