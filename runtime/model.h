/*
 * The model as it lives in the arena (internal; the public API is
 * moeflash.h). Resident weights are mf_tensor views into the arena; experts
 * come only from the expert store (experts/store.h).
 */
#ifndef MF_MODEL_H
#define MF_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "../experts/store.h"
#include "image.h"
#include "moeflash.h"
#include "tokenizer.h"

typedef struct {
    const void *data; /* NULL when the image has no such tensor */
    int enc;
    uint32_t rows, cols;
} mf_tensor;

typedef struct {
    mf_tensor attn_norm, wq, wk, wv, wo, bq, bk, bv, q_norm, k_norm;
    mf_tensor ffn_norm, router, sh_gate, sh_up, sh_down, sh_expert_gate;
} mf_layer_weights;

struct mf_model {
    const mf_port *port;
    mf_image_header h;
    mf_options opt;
    uint32_t ctx;     /* KV positions */
    uint32_t batch;   /* tokens per forward chunk */
    uint32_t q_dim, kv_dim, ffn_max;

    mf_tensor embed, final_norm, lm_head;
    mf_layer_weights *layers; /* [n_layers] */

    void *key_cache, *value_cache; /* [n_layers][ctx][kv_dim] of opt.kv_encoding (f32/f16/bf16/q8) */
    uint16_t *key_scale, *value_scale; /* q8 KV: f16 scale per [n_layers][ctx][n_kv_heads] */
    float *kv_row;                  /* [head_dim] one K/V row widened to f32 (non-f32 KV only) */

    /* Activations for a chunk of `batch` tokens, row t at t * width. */
    float *x, *xb, *xb2, *moe;     /* [batch][hidden] */
    float *q, *att_out;            /* [batch][q_dim] */
    float *k, *v;                  /* [batch][kv_dim] */
    float *router;                 /* [batch][n_experts] */
    uint32_t *topk_idx;            /* [batch][top_k] */
    float *topk_w;                 /* [batch][top_k] */
    float *gx, *gy;                /* [batch][hidden]: one expert's tokens in and out */
    float *h1, *h2;                /* [batch][ffn_max] */
    float *gate1;                  /* [batch] shared-expert gate logits */
    uint32_t *sel_tok;             /* [batch] top-k slots t*top_k+j routed to the current expert */
    float *ey;                     /* [batch][top_k][hidden] each chosen expert's output row */
    uint32_t *todo;                /* [n_experts] chosen experts of the layer not computed yet */
    float *rope_cos, *rope_sin;    /* [batch][head_dim/2]: the chunk's positions */
    float *rope_inv;               /* [head_dim/2] inv_freq */
    float *att;                    /* [ctx] attention scores */

    void *qa;                      /* int8 activations of one row (NULL: f32 activations) */
    float *logits;                 /* [vocab] after the last token */
    float *probs;                  /* [vocab] sampler scratch */
    uint32_t *prob_idx;            /* [vocab] sampler scratch */
    void *enc_scratch;
    size_t enc_scratch_bytes;

    mf_tokenizer tok;
    mf_expert_store store;
    mf_stats stats;

    uint32_t pos;
    int have_logits;
    mf_route_fn route_fn;
    void *route_user;
    mf_residual_fn residual_fn;
    void *residual_user;
    size_t arena_used;
};

#endif
