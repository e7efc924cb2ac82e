/*
 * Sampling from a logits vector (internal; mf_sample in moeflash.h is the
 * public entry). Deterministic for a seed: xorshift64* random numbers,
 * candidates visited in a fixed order.
 */
#ifndef MF_SAMPLER_H
#define MF_SAMPLER_H

#include <stdint.h>

#include "moeflash.h"

/* Next random number in [0, 1) with 24 random bits. */
float mf_sampler_random(mf_sampler *s);

/* Greedy when s->temperature <= 0: the largest logit, lowest id on ties.
 * Otherwise softmax(logits / temperature), restricted to the smallest set of
 * most probable ids whose probability reaches top_p (when 0 < top_p < 1;
 * order: probability, then lower id), and one draw from it. probs and idx
 * are n-entry scratch arrays. */
int mf_sample_logits(const float *logits, uint32_t n, mf_sampler *s, float *probs, uint32_t *idx,
                     uint32_t *token);

#endif
