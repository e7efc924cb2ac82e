/*
 * Reading a Hugging Face config.json into the hyper-parameters moeflash
 * needs (host only). Only the four MoE families the runtime implements are
 * accepted, and a config that switches on a feature the runtime does not
 * implement (sliding windows, dense layers between MoE layers, q/k/v
 * clipping, rope scaling, ...) is rejected with a message naming the key, so
 * a conversion never produces an image that silently computes something else.
 */
#ifndef MF_HFCONFIG_H
#define MF_HFCONFIG_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int arch;              /* mf_arch */
    char model_type[32];
    uint32_t vocab, hidden, n_layers, n_heads, n_kv_heads, head_dim;
    uint32_t expert_ffn;   /* intermediate size of one routed expert */
    uint32_t n_experts, top_k;
    uint32_t shared_ffn;   /* Qwen2-MoE shared expert; 0 = none */
    uint32_t max_seq;      /* max_position_embeddings */
    float rms_eps, rope_theta;
    int norm_topk;         /* renormalise the top-k weights */
    int qkv_bias;          /* q/k/v projections have biases */
    int qk_norm;           /* 0 none, 1 per head (Qwen3), 2 whole projection (OLMoE) */
    int tie_embeddings;    /* lm_head = embed_tokens */
    uint32_t flags;        /* MF_FLAG_* for the image header */
} mf_hf_config;

/* Reads hf_dir/config.json. 0 on success; -1 with a one-line message in err. */
int mf_hfconfig_load(mf_hf_config *c, const char *hf_dir, char *err, size_t errlen);

/* Same, from JSON text already in memory (tests). */
int mf_hfconfig_parse(mf_hf_config *c, const char *text, size_t len, char *err, size_t errlen);

#endif
