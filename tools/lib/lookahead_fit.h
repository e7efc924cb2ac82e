/*
 * The learned lookahead that `moeflash profile` stores as MF_SEC_LOOKAHEAD
 * (docs/predictor-format.md): per layer l < L-1 a softmax regression from
 * layer l's residual at its routing (scaled to unit RMS) to the experts
 * layer l+1 chooses, fitted by one pass of stochastic gradient descent over
 * the calibration tokens (cross-entropy against 1/k on each chosen expert).
 * The runtime uses it as the combined predictor's early guess for layer l+1
 * (experts/predictor.c), where layer l+1's own router, applied before layer
 * l's experts have added their output, guesses worse.
 */
#ifndef MF_LOOKAHEAD_FIT_H
#define MF_LOOKAHEAD_FIT_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint32_t L, E, H;
    float rate;      /* SGD step size */
    float *w;        /* [L-1][E][H] */
    float *b;        /* [L-1][E] */
    float *scratch;  /* [H + 2E] */
    uint64_t steps;
} mf_lookahead_fit;

/* 0, or -1 when out of memory. */
int mf_lookahead_fit_init(mf_lookahead_fit *f, uint32_t L, uint32_t E, uint32_t H, float rate);
void mf_lookahead_fit_free(mf_lookahead_fit *f);

/* One step: x = layer l's residual row (H floats), next = the k experts
 * layer l+1 chose for the same token. */
void mf_lookahead_fit_step(mf_lookahead_fit *f, uint32_t l, const float *x, const uint32_t *next,
                           uint32_t k);

/* Bytes of the section, and the section itself into out (that many bytes). */
size_t mf_lookahead_section_bytes(uint32_t L, uint32_t E, uint32_t H);
void mf_lookahead_encode(const mf_lookahead_fit *f, uint32_t tokens, uint8_t *out);

/* Scores of layer l+1's experts from layer l's residual with the weights of
 * a decoded section (w [L-1][E][H], b [L-1][E]): z[e] = w[l][e] . x^ + b[l][e],
 * x^ = x / sqrt(mean(x^2) + MF_LOOKAHEAD_EPS). For tests and tools. */
void mf_lookahead_scores(const float *w, const float *b, uint32_t E, uint32_t H, uint32_t l,
                         const float *x, float *z);

#endif
