/*
 * Predictors: which experts the next layer will choose, so that their reads
 * start while this layer computes (docs/expert-cache.md).
 *
 *   cooc       co-occurrence counts from the image's profile
 *              (MF_SEC_PREDICTOR, `moeflash profile`): for layer l+1, per
 *              token, sum over the experts a it chose at layer l of
 *              P(b at l+1 | a at l), plus half the same over layer l-1
 *              (two layers back); the top prefetch_budget experts. Layer 0:
 *              the most frequent experts of the profile.
 *   lookahead  layer l+1's router applied to the hidden state available
 *              when layer l routes (the residual after layer l's
 *              attention), normalised with layer l+1's post-attention norm
 *              weights; the top prefetch_budget experts. Layer 0: the same
 *              on the embedding.
 *   combined   two stages per layer, at most 2*top_k reads per layer and
 *              token: (A) when layer l routes, the top_k of layer l+1's
 *              router probabilities (as lookahead) plus half the
 *              co-occurrence probabilities when the image has a profile;
 *              (B) when layer l has finished, layer l+1's router on layer
 *              l's output (only layer l+1's attention is still missing),
 *              its top_k not already read. Layer 0: (B) on the embedding.
 *
 * The forward pass calls the three hooks below; each costs one router
 * matvec per token at most, charged to the port as compute.
 */
#ifndef MF_PREDICTOR_H
#define MF_PREDICTOR_H

#include <stdint.h>

#include "../runtime/model.h"

/* A chunk of n tokens was embedded (m->x holds the embeddings). */
void mf_predict_chunk_start(mf_model *m, uint32_t n);
/* Layer l routed (m->topk_idx), m->x is the residual after its attention.
 * Starts the demand reads of layer l, then the predictions for l+1. */
void mf_predict_routed(mf_model *m, uint32_t l, uint32_t n);
/* Layer l is done (m->x is its output). */
void mf_predict_layer_done(mf_model *m, uint32_t l, uint32_t n);

#endif
