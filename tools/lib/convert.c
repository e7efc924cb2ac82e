/*
 * Checkpoint -> image conversion (see convert.h).
 *
 * Steps, one function each:
 *   1. read config.json (hfconfig.c) and open the safetensors (safetensors.c);
 *   2. find how this checkpoint names its MoE block (block_sparse_moe or mlp)
 *      and its experts (per expert w1/w2/w3 or gate/up/down_proj, or fused
 *      gate_up_proj [E, 2I, H] + down_proj [E, H, I]);
 *   3. write every resident tensor, checking its shape against the config;
 *   4. write every expert blob (gate, up, down), then the fallback copies;
 *   5. add the tokenizer and extra sections, finish the file;
 *   6. make sure no tensor of the checkpoint was left unused, and re-open the
 *      image through the runtime's own reader as a final check.
 */
#include "convert.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "../../port/posix/posix_port.h"
#include "../../runtime/image.h"
#include "../../runtime/moeflash.h"
#include "../../runtime/quant.h"
#include "hfconfig.h"
#include "imagewrite.h"
#include "json.h"
#include "safetensors.h"
#include "tokconv.h"

typedef struct {
    const mf_convert_options *o;
    mf_hf_config cfg;
    mf_safetensors st;
    uint8_t *used;          /* per tensor of st: consumed by the conversion */
    mf_image_writer w;
    int writer_open;
    mf_convert_result *res;
    char moe[24];           /* "block_sparse_moe" or "mlp" */
    int fused;              /* experts stored as fused [E, ...] tensors */
    int w123;               /* per-expert names w1 (gate) / w3 (up) / w2 (down) */
    float *fbuf;            /* f32 staging for a chunk of rows */
    size_t fcap;            /* floats */
    uint8_t *ebuf;          /* encoded tensor / expert blob */
    size_t ecap;
    char *err;
    size_t errlen;
} conv;

static int cv_fail(conv *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, c->errlen, fmt, ap);
    va_end(ap);
    mf_one_line(c->err);
    return -1;
}

void mf_convert_options_default(mf_convert_options *o)
{
    memset(o, 0, sizeof *o);
    o->resident_encoding = MF_ENC_F32;
    o->expert_encoding = MF_ENC_F32;
    o->fallback_encoding = -1;
    o->page_size = MF_DEFAULT_PAGE_SIZE;
    o->group_size = MF_DEFAULT_GROUP_SIZE;
    o->n_eos = -1;
}

static int ensure_ebuf(conv *c, size_t bytes)
{
    if (bytes <= c->ecap) return 0;
    uint8_t *b = realloc(c->ebuf, bytes);
    if (!b) return cv_fail(c, "out of memory (%zu bytes)", bytes);
    c->ebuf = b;
    c->ecap = bytes;
    return 0;
}

/* ------------------------------------------------------------ tensors */

static const mf_st_tensor *lookup(conv *c, const char *name)
{
    return mf_st_find(&c->st, name);
}

static void mark_used(conv *c, const mf_st_tensor *t)
{
    c->used[t - c->st.tensors] = 1;
}

/* The tensor `name`, which must exist with shape [d0] (d1 == 0) or [d0, d1]
 * (or [d0, d1, d2] when d2 != 0). */
static const mf_st_tensor *need(conv *c, const char *name, uint64_t d0, uint64_t d1, uint64_t d2)
{
    const mf_st_tensor *t = lookup(c, name);
    if (!t) {
        cv_fail(c, "tensor %s is missing from the checkpoint", name);
        return NULL;
    }
    uint64_t want[3] = {d0, d1, d2};
    uint32_t nd = d2 ? 3 : d1 ? 2 : 1;
    int ok = t->ndim == nd;
    for (uint32_t i = 0; ok && i < nd; i++) ok = t->shape[i] == want[i];
    if (!ok) {
        char got[96];
        mf_st_shape_str(t, got, sizeof got);
        if (nd == 1)
            cv_fail(c, "tensor %s has shape %s, expected [%llu]", name, got, (unsigned long long)d0);
        else if (nd == 2)
            cv_fail(c, "tensor %s has shape %s, expected [%llu, %llu]", name, got,
                    (unsigned long long)d0, (unsigned long long)d1);
        else
            cv_fail(c, "tensor %s has shape %s, expected [%llu, %llu, %llu]", name, got,
                    (unsigned long long)d0, (unsigned long long)d1, (unsigned long long)d2);
        return NULL;
    }
    if (t->dtype == MF_ST_OTHER) {
        cv_fail(c, "tensor %s has dtype %s; only F32, F16 and BF16 are supported", name, t->dtype_name);
        return NULL;
    }
    mark_used(c, t);
    return t;
}

/* Encodes `rows` rows of `cols` values, starting at element `first` of t,
 * into dst. Rows are read and quantised a chunk at a time so that a large
 * tensor never sits in memory as f32 all at once. */
static int encode_rows(conv *c, const mf_st_tensor *t, uint64_t first, uint32_t rows, uint32_t cols,
                       int enc, uint8_t *dst)
{
    size_t row_bytes = mf_row_bytes(enc, cols, c->o->group_size);
    uint32_t per = (uint32_t)((1u << 22) / cols);
    if (per == 0) per = 1;
    if (per > rows) per = rows;
    size_t need_f = (size_t)per * cols;
    if (need_f > c->fcap) {
        float *f = realloc(c->fbuf, need_f * sizeof *f);
        if (!f) return cv_fail(c, "out of memory");
        c->fbuf = f;
        c->fcap = need_f;
    }
    float *back = malloc(sizeof(float) * cols);
    if (!back) return cv_fail(c, "out of memory");
    int rc = 0;
    for (uint32_t r = 0; r < rows && !rc; r += per) {
        uint32_t n = rows - r < per ? rows - r : per;
        if (mf_st_read_f32_range(&c->st, t, first + (uint64_t)r * cols, (uint64_t)n * cols, c->fbuf)) {
            rc = cv_fail(c, "%s", c->st.err);
            break;
        }
        for (size_t i = 0; i < (size_t)n * cols; i++)
            if (!isfinite(c->fbuf[i])) {
                rc = cv_fail(c, "tensor %s: element %llu is %s; a checkpoint's weights must be finite", t->name,
                             (unsigned long long)(first + (uint64_t)r * cols + i), isnan(c->fbuf[i]) ? "NaN" : "infinite");
                break;
            }
        if (rc) break;
        uint8_t *w = dst + (size_t)r * row_bytes;
        mf_quantize_matrix(enc, c->fbuf, n, cols, c->o->group_size, w);
        /* An encoding with f16 values or scales has a range: a weight
         * beyond it would decode as inf or NaN on the device. */
        for (uint32_t k = 0; k < n && !rc; k++) {
            mf_dequantize_row(enc, w, k, cols, c->o->group_size, back);
            for (uint32_t i = 0; i < cols; i++)
                if (!isfinite(back[i])) {
                    float amax = 0;
                    for (uint32_t j = 0; j < cols; j++)
                        if (fabsf(c->fbuf[(size_t)k * cols + j]) > amax) amax = fabsf(c->fbuf[(size_t)k * cols + j]);
                    rc = cv_fail(c, "tensor %s: row %llu (|x| up to %g) does not fit %s, whose f16 values or scales "
                                 "overflow; store it as bf16 or f32 (--resident / --experts)",
                                 t->name, (unsigned long long)(first / cols + r + k), (double)amax,
                                 mf_encoding_name(enc));
                    break;
                }
        }
    }
    free(back);
    return rc;
}

/* One resident tensor: a matrix [rows, cols] or, with vector != 0, a
 * vector [cols] (rows = 1, always f32). */
static int put_resident(conv *c, uint32_t kind, uint32_t layer, const char *name, uint32_t rows,
                        uint32_t cols, int vector, int enc)
{
    const mf_st_tensor *t = vector ? need(c, name, cols, 0, 0) : need(c, name, rows, cols, 0);
    if (!t) return -1;
    if (vector) {
        rows = 1;
        enc = MF_ENC_F32;
    }
    size_t bytes = mf_matrix_bytes(enc, rows, cols, c->o->group_size);
    if (!bytes) return cv_fail(c, "encoding %s cannot store tensor %s with group %u",
                               mf_encoding_name(enc) ? mf_encoding_name(enc) : "?", name, c->o->group_size);
    if (ensure_ebuf(c, bytes) || encode_rows(c, t, 0, rows, cols, enc, c->ebuf)) return -1;
    if (mf_iw_add_resident(&c->w, kind, layer, (uint32_t)enc, rows, cols, c->ebuf, bytes))
        return cv_fail(c, "%s", c->w.err);
    c->res->n_resident++;
    c->res->resident_bytes += bytes;
    return 0;
}

/* ------------------------------------------------------------ layout */

/* Step 2: how this checkpoint names its MoE tensors (decided on layer 0,
 * then required of every layer by the lookups). */
static int detect_layout(conv *c)
{
    char name[160];
    snprintf(name, sizeof name, "model.layers.0.block_sparse_moe.gate.weight");
    snprintf(c->moe, sizeof c->moe, "%s", lookup(c, name) ? "block_sparse_moe" : "mlp");
    snprintf(name, sizeof name, "model.layers.0.%s.experts.gate_up_proj", c->moe);
    c->fused = lookup(c, name) != NULL;
    snprintf(name, sizeof name, "model.layers.0.%s.experts.0.w1.weight", c->moe);
    c->w123 = lookup(c, name) != NULL;
    return 0;
}

/* ------------------------------------------------------------ resident */

static int put_layer_resident(conv *c, uint32_t l)
{
    const mf_hf_config *g = &c->cfg;
    int enc = c->o->resident_encoding;
    uint32_t H = g->hidden, Q = g->n_heads * g->head_dim, KV = g->n_kv_heads * g->head_dim;
    char n[200];
#define NAME(...) (snprintf(n, sizeof n, __VA_ARGS__), n)
    if (put_resident(c, MF_T_ATTN_NORM, l, NAME("model.layers.%u.input_layernorm.weight", l), 1, H, 1, 0) ||
        put_resident(c, MF_T_WQ, l, NAME("model.layers.%u.self_attn.q_proj.weight", l), Q, H, 0, enc) ||
        put_resident(c, MF_T_WK, l, NAME("model.layers.%u.self_attn.k_proj.weight", l), KV, H, 0, enc) ||
        put_resident(c, MF_T_WV, l, NAME("model.layers.%u.self_attn.v_proj.weight", l), KV, H, 0, enc) ||
        put_resident(c, MF_T_WO, l, NAME("model.layers.%u.self_attn.o_proj.weight", l), H, Q, 0, enc))
        return -1;
    if (g->qkv_bias &&
        (put_resident(c, MF_T_BQ, l, NAME("model.layers.%u.self_attn.q_proj.bias", l), 1, Q, 1, 0) ||
         put_resident(c, MF_T_BK, l, NAME("model.layers.%u.self_attn.k_proj.bias", l), 1, KV, 1, 0) ||
         put_resident(c, MF_T_BV, l, NAME("model.layers.%u.self_attn.v_proj.bias", l), 1, KV, 1, 0)))
        return -1;
    if (g->qk_norm) {
        /* Qwen3 normalises each head over head_dim; OLMoE the whole projection. */
        uint32_t qn = g->qk_norm == 1 ? g->head_dim : Q, kn = g->qk_norm == 1 ? g->head_dim : KV;
        if (put_resident(c, MF_T_Q_NORM, l, NAME("model.layers.%u.self_attn.q_norm.weight", l), 1, qn, 1, 0) ||
            put_resident(c, MF_T_K_NORM, l, NAME("model.layers.%u.self_attn.k_norm.weight", l), 1, kn, 1, 0))
            return -1;
    }
    if (put_resident(c, MF_T_FFN_NORM, l, NAME("model.layers.%u.post_attention_layernorm.weight", l), 1, H, 1, 0) ||
        put_resident(c, MF_T_ROUTER, l, NAME("model.layers.%u.%s.gate.weight", l, c->moe), g->n_experts, H, 0,
                     MF_ENC_F32))
        return -1;
    if (g->shared_ffn) {
        uint32_t S = g->shared_ffn;
        if (put_resident(c, MF_T_SHARED_GATE, l, NAME("model.layers.%u.mlp.shared_expert.gate_proj.weight", l), S, H, 0, enc) ||
            put_resident(c, MF_T_SHARED_UP, l, NAME("model.layers.%u.mlp.shared_expert.up_proj.weight", l), S, H, 0, enc) ||
            put_resident(c, MF_T_SHARED_DOWN, l, NAME("model.layers.%u.mlp.shared_expert.down_proj.weight", l), H, S, 0, enc) ||
            put_resident(c, MF_T_SHARED_EXPERT_GATE, l, NAME("model.layers.%u.mlp.shared_expert_gate.weight", l), 1, H, 0,
                         MF_ENC_F32))
            return -1;
    }
#undef NAME
    return 0;
}

static int put_all_resident(conv *c)
{
    const mf_hf_config *g = &c->cfg;
    int enc = c->o->resident_encoding;
    if (put_resident(c, MF_T_EMBED, 0, "model.embed_tokens.weight", g->vocab, g->hidden, 0, enc)) return -1;
    for (uint32_t l = 0; l < g->n_layers; l++)
        if (put_layer_resident(c, l)) return -1;
    if (put_resident(c, MF_T_FINAL_NORM, 0, "model.norm.weight", 1, g->hidden, 1, 0)) return -1;
    if (g->tie_embeddings) {
        /* Tied: no LM_HEAD entry, the runtime uses the embedding. A stored
         * copy (some checkpoints keep one) is the same matrix. */
        const mf_st_tensor *t = lookup(c, "lm_head.weight");
        if (t) mark_used(c, t);
        return 0;
    }
    return put_resident(c, MF_T_LM_HEAD, 0, "lm_head.weight", g->vocab, g->hidden, 0, enc);
}

/* ------------------------------------------------------------ experts */

static int expert_encoding(const conv *c, uint32_t l, uint32_t e, int fallback)
{
    if (fallback) return c->o->fallback_encoding;
    size_t i = (size_t)l * c->cfg.n_experts + e;
    if (c->o->expert_encodings && i < c->o->n_expert_encodings && c->o->expert_encodings[i] >= 0)
        return c->o->expert_encodings[i];
    return c->o->expert_encoding;
}

/* Encodes expert e of layer l as gate | up | down into c->ebuf. */
static int build_blob(conv *c, uint32_t l, uint32_t e, int enc, size_t *bytes)
{
    const mf_hf_config *g = &c->cfg;
    uint32_t H = g->hidden, F = g->expert_ffn, G = c->o->group_size;
    size_t gb = mf_matrix_bytes(enc, F, H, G), db = mf_matrix_bytes(enc, H, F, G);
    if (!gb || !db)
        return cv_fail(c, "encoding %s cannot store experts with group %u",
                       mf_encoding_name(enc) ? mf_encoding_name(enc) : "?", G);
    *bytes = 2 * gb + db;
    if (ensure_ebuf(c, *bytes)) return -1;
    char n[200];
    if (c->fused) {
        /* gate_up_proj[e] = [2F, H] with the gate rows first, then up;
         * down_proj[e] = [H, F]. */
        snprintf(n, sizeof n, "model.layers.%u.%s.experts.gate_up_proj", l, c->moe);
        const mf_st_tensor *gu = need(c, n, g->n_experts, 2ull * F, H);
        if (!gu) return -1;
        snprintf(n, sizeof n, "model.layers.%u.%s.experts.down_proj", l, c->moe);
        const mf_st_tensor *dn = need(c, n, g->n_experts, H, F);
        if (!dn) return -1;
        uint64_t base = (uint64_t)e * 2 * F * H;
        if (encode_rows(c, gu, base, F, H, enc, c->ebuf) ||
            encode_rows(c, gu, base + (uint64_t)F * H, F, H, enc, c->ebuf + gb) ||
            encode_rows(c, dn, (uint64_t)e * H * F, H, F, enc, c->ebuf + 2 * gb))
            return -1;
        return 0;
    }
    static const char *const names[2][3] = {{"gate_proj", "up_proj", "down_proj"}, {"w1", "w3", "w2"}};
    const char *const *nm = names[c->w123];
    size_t off = 0;
    for (int m = 0; m < 3; m++) {
        uint32_t rows = m < 2 ? F : H, cols = m < 2 ? H : F;
        snprintf(n, sizeof n, "model.layers.%u.%s.experts.%u.%s.weight", l, c->moe, e, nm[m]);
        const mf_st_tensor *t = need(c, n, rows, cols, 0);
        if (!t || encode_rows(c, t, 0, rows, cols, enc, c->ebuf + off)) return -1;
        off += m < 2 ? gb : db;
    }
    return 0;
}

static int put_experts(conv *c, int fallback)
{
    const mf_hf_config *g = &c->cfg;
    for (uint32_t l = 0; l < g->n_layers; l++) {
        uint64_t layer_bytes = 0;
        for (uint32_t e = 0; e < g->n_experts; e++) {
            int enc = expert_encoding(c, l, e, fallback);
            size_t bytes = 0;
            if (build_blob(c, l, e, enc, &bytes)) return -1;
            if (mf_iw_add_expert(&c->w, fallback, l, e, (uint32_t)enc, c->ebuf, (uint32_t)bytes))
                return cv_fail(c, "%s", c->w.err);
            layer_bytes += bytes;
        }
        if (fallback) c->res->fallback_bytes += layer_bytes;
        else c->res->expert_bytes += layer_bytes;
        if (c->o->progress)
            fprintf(c->o->progress, "convert: layer %u/%u: %u %sexperts, %llu bytes\n", l + 1, g->n_layers,
                    g->n_experts, fallback ? "fallback " : "", (unsigned long long)layer_bytes);
    }
    return 0;
}

/* ------------------------------------------------------------ checks */

static int check_options(conv *c)
{
    const mf_convert_options *o = c->o;
    if (!mf_encoding_name(o->resident_encoding)) return cv_fail(c, "invalid resident encoding %d", o->resident_encoding);
    if (!mf_encoding_name(o->expert_encoding)) return cv_fail(c, "invalid expert encoding %d", o->expert_encoding);
    if (o->fallback_encoding >= 0 && !mf_encoding_name(o->fallback_encoding))
        return cv_fail(c, "invalid fallback encoding %d", o->fallback_encoding);
    if (o->page_size < 64 || (o->page_size & (o->page_size - 1)))
        return cv_fail(c, "page size %u must be a power of two >= 64", o->page_size);
    if (o->group_size == 0) return cv_fail(c, "group size must be positive");
    if (o->n_extra > MF_MAX_SECTIONS) return cv_fail(c, "too many extra sections");
    return 0;
}

static int check_all_used(conv *c)
{
    for (size_t i = 0; i < c->st.n_tensors; i++)
        if (!c->used[i])
            return cv_fail(c, "tensor %s is not used by the %s converter (unsupported feature?)",
                           c->st.tensors[i].name, c->cfg.model_type);
    return 0;
}

/* Re-opens the image with the runtime's reader: header, tables, every
 * expert entry. */
static int verify_image(conv *c, const char *path)
{
    mf_port port;
    mf_posix_port_state ps;
    if (mf_posix_port_open(&port, &ps, path) != MF_PORT_OK) return cv_fail(c, "%s: cannot re-open", path);
    mf_image_header h;
    uint8_t scratch[4096];
    int rc = mf_image_read_header(&port, &h, 1, scratch, sizeof scratch);
    for (uint32_t l = 0; !rc && l < h.n_layers; l++)
        for (uint32_t e = 0; !rc && e < h.n_experts; e++) {
            mf_expert_entry x;
            rc = mf_image_expert_entry(&port, &h, MF_SEC_EXPERT_DIR, l, e, &x);
            if (!rc && mf_image_section(&h, MF_SEC_FALLBACK_DIR))
                rc = mf_image_expert_entry(&port, &h, MF_SEC_FALLBACK_DIR, l, e, &x);
        }
    for (uint32_t i = 0; !rc && i < mf_image_section(&h, MF_SEC_RESIDENT_TABLE)->count; i++) {
        mf_resident_entry r;
        rc = mf_image_resident_entry(&port, &h, i, &r);
    }
    mf_posix_port_close(&port);
    if (rc) return cv_fail(c, "%s: the written image does not verify (%s)", path, mf_iw_error_name(rc));
    c->res->image_bytes = h.image_bytes;
    return 0;
}

/* ------------------------------------------------------------ driver */

static int run(conv *c, const char *hf_dir, const char *out_path)
{
    if (check_options(c)) return -1;
    if (mf_hfconfig_load(&c->cfg, hf_dir, c->err, c->errlen)) return -1;
    if (mf_st_open(&c->st, hf_dir)) return cv_fail(c, "%s", c->st.err);
    c->used = calloc(c->st.n_tensors + 1, 1);
    if (!c->used) return cv_fail(c, "out of memory");
    const mf_hf_config *g = &c->cfg;
    if (c->o->expert_encodings && c->o->n_expert_encodings != (size_t)g->n_layers * g->n_experts)
        return cv_fail(c, "per-expert encodings: %zu entries for %u layers x %u experts",
                       c->o->n_expert_encodings, g->n_layers, g->n_experts);
    if (detect_layout(c)) return -1;

    mf_image_header p;
    memset(&p, 0, sizeof p);
    p.arch = (uint32_t)g->arch;
    p.flags = g->flags;
    p.vocab = g->vocab;
    p.hidden = g->hidden;
    p.n_layers = g->n_layers;
    p.n_heads = g->n_heads;
    p.n_kv_heads = g->n_kv_heads;
    p.head_dim = g->head_dim;
    p.expert_ffn = g->expert_ffn;
    p.n_experts = g->n_experts;
    p.top_k = g->top_k;
    p.shared_ffn = g->shared_ffn;
    p.max_seq = c->o->max_seq ? c->o->max_seq : g->max_seq;
    p.rms_eps = g->rms_eps;
    p.rope_theta = g->rope_theta;
    p.page_size = c->o->page_size;
    p.group_size = c->o->group_size;
    if (mf_iw_open(&c->w, out_path, &p, c->o->fallback_encoding >= 0)) return cv_fail(c, "%s", c->w.err);
    c->writer_open = 1;

    if (c->o->progress)
        fprintf(c->o->progress, "convert: %s, %u layers, %u experts (top %u), resident %s, experts %s%s%s\n",
                g->model_type, g->n_layers, g->n_experts, g->top_k, mf_encoding_name(c->o->resident_encoding),
                mf_encoding_name(c->o->expert_encoding), c->o->fallback_encoding >= 0 ? ", fallback " : "",
                c->o->fallback_encoding >= 0 ? mf_encoding_name(c->o->fallback_encoding) : "");
    if (put_all_resident(c)) return -1;
    if (put_experts(c, 0)) return -1;
    if (c->o->fallback_encoding >= 0 && put_experts(c, 1)) return -1;
    if (check_all_used(c)) return -1;

    uint8_t *tok = NULL;
    size_t tok_len = 0;
    if (mf_tokconv_build(hf_dir, &tok, &tok_len, c->err, c->errlen)) return -1;
    if (c->o->n_eos >= 0) {
        if (!tok) return cv_fail(c, "--eos: %s has no tokenizer (tokenizer.json or tokenizer.model)", hf_dir);
        if (mf_tokconv_set_eos(tok, tok_len, c->o->eos, (uint32_t)c->o->n_eos, c->err, c->errlen)) {
            free(tok);
            return -1;
        }
    }
    if (tok) {
        int rc = mf_iw_add_section(&c->w, MF_SEC_TOKENIZER, 0, tok, tok_len);
        free(tok);
        if (rc) return cv_fail(c, "%s", c->w.err);
        c->res->tokenizer_bytes = tok_len;
    }
    for (size_t i = 0; i < c->o->n_extra; i++) {
        const mf_extra_section *x = &c->o->extra[i];
        if (mf_iw_add_section(&c->w, x->kind, x->count, x->data, x->bytes)) return cv_fail(c, "%s", c->w.err);
    }
    c->writer_open = 0;
    if (mf_iw_finish(&c->w)) return cv_fail(c, "%s", c->w.err);
    if (verify_image(c, out_path)) {
        remove(out_path);
        return -1;
    }
    return 0;
}

int mf_convert(const char *hf_dir, const char *out_path, const mf_convert_options *opt,
               mf_convert_result *res, char *err, size_t errlen)
{
    conv c;
    memset(&c, 0, sizeof c);
    mf_convert_options dflt;
    if (!opt) {
        mf_convert_options_default(&dflt);
        opt = &dflt;
    }
    mf_convert_result dummy = {0};
    c.o = opt;
    c.res = res ? res : &dummy;
    memset(c.res, 0, sizeof *c.res);
    c.err = err;
    c.errlen = errlen;
    int rc = run(&c, hf_dir, out_path);
    if (c.writer_open) mf_iw_abort(&c.w);
    mf_st_close(&c.st);
    free(c.used);
    free(c.fbuf);
    free(c.ebuf);
    return rc;
}
