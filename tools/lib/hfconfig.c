/*
 * config.json -> mf_hf_config (see hfconfig.h). Each family names its sizes
 * differently; this file is the one place that knows the spellings:
 *   routed expert width: mixtral, olmoe: intermediate_size;
 *                        qwen2_moe, qwen3_moe: moe_intermediate_size
 *   expert count:        num_local_experts or num_experts (both seen)
 *   rope theta:          rope_parameters.rope_theta (transformers 5) or
 *                        rope_theta (older files)
 */
#include "hfconfig.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../runtime/image_format.h"
#include "json.h"

static int cfg_fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = snprintf(err, errlen, "config.json: ");
    if (n > 0 && (size_t)n < errlen) vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
    va_end(ap);
    if (errlen) mf_one_line(err);
    return -1;
}

/* A positive integer that fits a u32; -1 when missing (absent or null),
 * -2 when present but not a positive integer. */
static int get_u32(const mf_json *root, const char *key, uint32_t *out)
{
    const mf_json *v = mf_json_get(root, key);
    if (!v || v->type == MF_JSON_NULL) return -1;
    if (v->type != MF_JSON_NUMBER) return -2;
    double d = v->number;
    if (!(d >= 1) || d > 4294967295.0 || d != (double)(uint32_t)d) return -2;
    *out = (uint32_t)d;
    return 0;
}

static int need_u32(const mf_json *root, const char *key, uint32_t *out, char *err, size_t errlen)
{
    int rc = get_u32(root, key, out);
    if (rc == -1) return cfg_fail(err, errlen, "missing %s", key);
    if (rc == -2) return cfg_fail(err, errlen, "%s must be a positive integer", key);
    return 0;
}

/* Optional boolean: absent/null -> dflt; anything but true/false is an error. */
static int opt_bool(const mf_json *root, const char *key, int dflt, int *out, char *err,
                    size_t errlen)
{
    const mf_json *v = mf_json_get(root, key);
    if (!v || v->type == MF_JSON_NULL) {
        *out = dflt;
        return 0;
    }
    if (v->type != MF_JSON_TRUE && v->type != MF_JSON_FALSE)
        return cfg_fail(err, errlen, "%s must be true or false", key);
    *out = v->type == MF_JSON_TRUE;
    return 0;
}

static int positive_float(const mf_json *v, float *out)
{
    /* Positive as a float too: 1e-55 is positive as a double but 0 once
     * stored in the image's f32 field. */
    if (!v || v->type != MF_JSON_NUMBER || !(v->number > 0) || v->number > 3.0e38) return -1;
    float f = (float)v->number;
    if (!(f > 0)) return -1;
    *out = f;
    return 0;
}

/* Features present in these families' configs that the runtime does not
 * implement. Each one rejected names its key. */
static int reject_unsupported(const mf_json *root, int arch, char *err, size_t errlen)
{
    const char *s;
    if (!mf_json_get_string(root, "hidden_act", &s) && strcmp(s, "silu"))
        return cfg_fail(err, errlen, "hidden_act \"%s\" is not supported (only silu)", s);

    const mf_json *v = mf_json_get(root, "rope_scaling");
    if (v && v->type != MF_JSON_NULL)
        return cfg_fail(err, errlen, "rope_scaling is not supported (must be null)");
    const mf_json *rp = mf_json_get(root, "rope_parameters");
    if (rp && !mf_json_get_string(rp, "rope_type", &s) && strcmp(s, "default"))
        return cfg_fail(err, errlen, "rope_parameters.rope_type \"%s\" is not supported (only default)", s);

    /* Sliding-window attention: Mixtral switches it on with a number in
     * sliding_window; the Qwen families with use_sliding_window. */
    int on = 0;
    if (opt_bool(root, "use_sliding_window", 0, &on, err, errlen)) return -1;
    if (on) return cfg_fail(err, errlen, "use_sliding_window=true is not supported");
    v = mf_json_get(root, "sliding_window");
    if (arch == MF_ARCH_MIXTRAL && v && v->type != MF_JSON_NULL)
        return cfg_fail(err, errlen, "sliding_window is not supported (must be null)");
    v = mf_json_get(root, "layer_types");
    if (v && v->type == MF_JSON_ARRAY)
        for (const mf_json *e = v->child; e; e = e->next)
            if (e->type != MF_JSON_STRING || strcmp(e->str, "full_attention"))
                return cfg_fail(err, errlen, "layer_types: only full_attention layers are supported");

    /* Every layer must be an MoE layer. */
    v = mf_json_get(root, "mlp_only_layers");
    if (v && v->type != MF_JSON_NULL && !(v->type == MF_JSON_ARRAY && v->count == 0))
        return cfg_fail(err, errlen, "mlp_only_layers must be empty (dense layers are not supported)");
    uint32_t step = 1;
    if (get_u32(root, "decoder_sparse_step", &step) == -2 || step != 1)
        return cfg_fail(err, errlen, "decoder_sparse_step must be 1 (every layer MoE)");

    v = mf_json_get(root, "clip_qkv");
    if (v && v->type != MF_JSON_NULL) return cfg_fail(err, errlen, "clip_qkv is not supported (must be null)");

    /* attention_bias adds an o_proj bias too, which the image has no slot for
     * (Qwen2-MoE's q/k/v biases come from qkv_bias instead). */
    if (arch != MF_ARCH_QWEN2_MOE) {
        if (opt_bool(root, "attention_bias", 0, &on, err, errlen)) return -1;
        if (on) return cfg_fail(err, errlen, "attention_bias=true is not supported");
    }
    return 0;
}

int mf_hfconfig_parse(mf_hf_config *c, const char *text, size_t len, char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    mf_json_doc doc;
    if (mf_json_parse(&doc, text, len)) return cfg_fail(err, errlen, "bad JSON: %s", doc.error);
    const mf_json *root = doc.root;
    int rc = -1;
    const char *mt;
    if (root->type != MF_JSON_OBJECT) {
        cfg_fail(err, errlen, "not a JSON object");
        goto done;
    }
    if (mf_json_get_string(root, "model_type", &mt)) {
        cfg_fail(err, errlen, "missing model_type");
        goto done;
    }
    if (!strcmp(mt, "mixtral")) c->arch = MF_ARCH_MIXTRAL;
    else if (!strcmp(mt, "qwen2_moe")) c->arch = MF_ARCH_QWEN2_MOE;
    else if (!strcmp(mt, "qwen3_moe")) c->arch = MF_ARCH_QWEN3_MOE;
    else if (!strcmp(mt, "olmoe")) c->arch = MF_ARCH_OLMOE;
    else {
        cfg_fail(err, errlen, "unsupported model_type \"%.64s\" (supported: mixtral, qwen2_moe, qwen3_moe, olmoe)", mt);
        goto done;
    }
    snprintf(c->model_type, sizeof c->model_type, "%s", mt);
    if (reject_unsupported(root, c->arch, err, errlen)) goto done;

    if (need_u32(root, "vocab_size", &c->vocab, err, errlen) ||
        need_u32(root, "hidden_size", &c->hidden, err, errlen) ||
        need_u32(root, "num_hidden_layers", &c->n_layers, err, errlen) ||
        need_u32(root, "num_attention_heads", &c->n_heads, err, errlen) ||
        need_u32(root, "num_experts_per_tok", &c->top_k, err, errlen) ||
        need_u32(root, "max_position_embeddings", &c->max_seq, err, errlen))
        goto done;
    /* Grouped-query attention is optional in these configs. */
    int r = get_u32(root, "num_key_value_heads", &c->n_kv_heads);
    if (r == -1) c->n_kv_heads = c->n_heads;
    else if (r == -2) {
        cfg_fail(err, errlen, "num_key_value_heads must be a positive integer");
        goto done;
    }
    r = get_u32(root, "head_dim", &c->head_dim);
    if (r == -2) {
        cfg_fail(err, errlen, "head_dim must be a positive integer or null");
        goto done;
    }
    if (r == -1) {
        if (c->hidden % c->n_heads) {
            cfg_fail(err, errlen, "hidden_size %u not divisible by num_attention_heads %u (and no head_dim)",
                     c->hidden, c->n_heads);
            goto done;
        }
        c->head_dim = c->hidden / c->n_heads;
    }
    const char *ffn_key = (c->arch == MF_ARCH_MIXTRAL || c->arch == MF_ARCH_OLMOE)
                              ? "intermediate_size" : "moe_intermediate_size";
    if (need_u32(root, ffn_key, &c->expert_ffn, err, errlen)) goto done;
    if (get_u32(root, "num_local_experts", &c->n_experts) &&
        get_u32(root, "num_experts", &c->n_experts)) {
        cfg_fail(err, errlen, "missing num_local_experts / num_experts");
        goto done;
    }
    if (c->arch == MF_ARCH_QWEN2_MOE &&
        need_u32(root, "shared_expert_intermediate_size", &c->shared_ffn, err, errlen))
        goto done;

    if (c->top_k > c->n_experts) {
        cfg_fail(err, errlen, "num_experts_per_tok %u > number of experts %u", c->top_k, c->n_experts);
        goto done;
    }
    if (c->n_kv_heads > c->n_heads || c->n_heads % c->n_kv_heads) {
        cfg_fail(err, errlen, "num_attention_heads %u not a multiple of num_key_value_heads %u",
                 c->n_heads, c->n_kv_heads);
        goto done;
    }
    if (c->head_dim % 2) {
        cfg_fail(err, errlen, "head_dim %u is odd (rotary embedding needs pairs)", c->head_dim);
        goto done;
    }
    if (positive_float(mf_json_get(root, "rms_norm_eps"), &c->rms_eps)) {
        cfg_fail(err, errlen, "missing or invalid rms_norm_eps");
        goto done;
    }
    const mf_json *rp = mf_json_get(root, "rope_parameters");
    const mf_json *theta = rp ? mf_json_get(rp, "rope_theta") : NULL;
    if (!theta) theta = mf_json_get(root, "rope_theta");
    if (positive_float(theta, &c->rope_theta)) {
        cfg_fail(err, errlen, "missing or invalid rope_parameters.rope_theta / rope_theta");
        goto done;
    }

    /* Mixtral always renormalises its top-k weights; the others say so. */
    if (c->arch == MF_ARCH_MIXTRAL) c->norm_topk = 1;
    else if (opt_bool(root, "norm_topk_prob", 0, &c->norm_topk, err, errlen)) goto done;
    /* Qwen2-MoE's attention has q/k/v biases unless qkv_bias says false. */
    if (c->arch == MF_ARCH_QWEN2_MOE && opt_bool(root, "qkv_bias", 1, &c->qkv_bias, err, errlen))
        goto done;
    c->qk_norm = c->arch == MF_ARCH_QWEN3_MOE ? 1 : c->arch == MF_ARCH_OLMOE ? 2 : 0;
    if (opt_bool(root, "tie_word_embeddings", 0, &c->tie_embeddings, err, errlen)) goto done;

    c->flags = (c->qkv_bias ? MF_FLAG_QKV_BIAS : 0) | (c->qk_norm == 1 ? MF_FLAG_QK_NORM_HEAD : 0) |
               (c->qk_norm == 2 ? MF_FLAG_QK_NORM_FULL : 0) |
               (c->shared_ffn ? MF_FLAG_SHARED_EXPERT : 0) | (c->norm_topk ? MF_FLAG_NORM_TOPK : 0);
    rc = 0;
done:
    mf_json_free(&doc);
    return rc;
}

int mf_hfconfig_load(mf_hf_config *c, const char *hf_dir, char *err, size_t errlen)
{
    size_t n = strlen(hf_dir) + 16;
    char *path = malloc(n);
    if (!path) return cfg_fail(err, errlen, "out of memory");
    snprintf(path, n, "%s/config.json", hf_dir);
    size_t len;
    char *text = mf_read_file(path, &len);
    if (!text) {
        snprintf(err, errlen, "%s: cannot read", path);
        free(path);
        memset(c, 0, sizeof *c);
        return -1;
    }
    free(path);
    int rc = mf_hfconfig_parse(c, text, len, err, errlen);
    free(text);
    return rc;
}
