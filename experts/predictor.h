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
 *   lookahead  when layer l has finished: layer l+1's router applied to
 *              layer l's output normalised with layer l+1's post-attention
 *              norm weights (only layer l+1's attention is still missing);
 *              the top prefetch_budget experts. The reads overlap layer
 *              l+1's attention. Layer 0: the same on the embedding.
 *   combined   two stages per layer, at most prefetch_budget (2*top_k)
 *              experts per layer and token: (A) when layer l routes (reads
 *              overlap layer l's expert compute): layer l+1's router on the
 *              residual after layer l's attention (normalised as above),
 *              plus half the co-occurrence probabilities when the image has
 *              a profile, its top budget/2; (B) when layer l has finished:
 *              the lookahead probabilities plus 0.07 x co-occurrence with
 *              layer l's choices, topping the layer's predicted set up to
 *              the budget. Layer 0: (B) on the embedding.
 *
 * With policy EdgeMoE, lookahead and combined also publish (for eviction,
 * never read) far-lookahead probabilities for the token's later layers:
 * their routers on the embedding at the chunk start and on layer l's output
 * for layers l+2.., combined with the expert's frequency (predictor.c).
 *
 * Combined with EdgeMoE, when the image has a token-routes table (MF_SEC_TOKEN_ROUTES,
 * `moeflash profile`): at the chunk start each token's likeliest expert of
 * every later layer is offered as a prefetch, and the far-lookahead odds
 * are updated with the table's P(expert | token, layer).
 *
 * opt.prefetch_min_prob: beyond each token's first candidate, candidates
 * scored below it are neither predicted nor read.
 *
 * The forward pass calls the three hooks below; each costs one router
 * matvec per token at most, charged to the port as compute.
 */
#ifndef MF_PREDICTOR_H
#define MF_PREDICTOR_H

#include <stdint.h>

#include "../runtime/model.h"

/* A chunk of n tokens was embedded (m->x holds the embeddings); tokens
 * stays valid until the chunk is done. */
void mf_predict_chunk_start(mf_model *m, const uint32_t *tokens, uint32_t n);
/* Layer l routed (m->topk_idx), m->x is the residual after its attention.
 * Starts the demand reads of layer l, then the predictions for l+1. */
void mf_predict_routed(mf_model *m, uint32_t l, uint32_t n);
/* Layer l is done (m->x is its output). */
void mf_predict_layer_done(mf_model *m, uint32_t l, uint32_t n);

#endif
