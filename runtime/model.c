/*
 * The model: arena layout, loading of resident weights, and the forward pass
 * (llama2.c style, one function per step). See docs/design.md.
 *
 * One code path runs every token: tokens go through the layers in chunks of
 * up to `batch` tokens. Within a layer, all tokens of a chunk are attended
 * and routed first; then each expert chosen by any of them is fetched once
 * from the expert store and applied to all its tokens, cached experts
 * first, and the outputs are summed in expert-index order (moe()). Every
 * per-token quantity is computed with the same arithmetic whatever the
 * chunk size (ops.h), so feeding one token at a time or many at once gives
 * bit-identical logits and routing.
 */
#include "model.h"

#include <math.h>
#include <string.h>

#include "../experts/predictor.h"
#include "arena.h"
#include "ops.h"
#include "quant.h"

#define DEFAULT_BATCH 16u
#define DEFAULT_ENCODE_SCRATCH (64u * 1024u)

void mf_options_default(mf_options *opt)
{
    if (!opt) return;
    memset(opt, 0, sizeof *opt);
    opt->context_len = 0;
    opt->expert_slots = 0;
    opt->policy = MF_POLICY_LFU; /* beats LRU at 23 of 24 bench points (docs/expert-cache.md) */
    opt->predictor = MF_PREDICT_NONE;
    opt->kv_encoding = MF_ENC_F32;
    opt->verify_experts = 2;
    opt->max_retries = 2;
    opt->prefill_batch = 0;
    opt->encode_scratch = 0;
}

/* ------------------------------------------------------------------ layout */

static int read_port(const mf_port *port, uint64_t off, void *dst, size_t len)
{
    int rc = mf_port_read(port, off, dst, len);
    if (rc == MF_PORT_OK) return MF_OK;
    return rc == MF_PORT_ERANGE ? MF_E_RANGE : MF_E_IO;
}

/* Where a resident tensor of this kind goes, and the shape it must have. */
static int tensor_slot(mf_model *m, const mf_resident_entry *e, mf_tensor **slot, uint32_t *rows,
                       uint32_t *cols)
{
    const mf_image_header *h = &m->h;
    mf_layer_weights *L = m->layers ? &m->layers[e->layer] : NULL;
    static mf_layer_weights dummy; /* counting mode: shapes only */
    if (!L) L = &dummy;
    uint32_t H = h->hidden;
    int full = (h->flags & MF_FLAG_QK_NORM_FULL) != 0;
    switch (e->kind) {
    case MF_T_EMBED: *slot = &m->embed; *rows = h->vocab; *cols = H; return MF_OK;
    case MF_T_FINAL_NORM: *slot = &m->final_norm; *rows = 1; *cols = H; return MF_OK;
    case MF_T_LM_HEAD: *slot = &m->lm_head; *rows = h->vocab; *cols = H; return MF_OK;
    case MF_T_ATTN_NORM: *slot = &L->attn_norm; *rows = 1; *cols = H; return MF_OK;
    case MF_T_WQ: *slot = &L->wq; *rows = m->q_dim; *cols = H; return MF_OK;
    case MF_T_WK: *slot = &L->wk; *rows = m->kv_dim; *cols = H; return MF_OK;
    case MF_T_WV: *slot = &L->wv; *rows = m->kv_dim; *cols = H; return MF_OK;
    case MF_T_WO: *slot = &L->wo; *rows = H; *cols = m->q_dim; return MF_OK;
    case MF_T_BQ: *slot = &L->bq; *rows = 1; *cols = m->q_dim; return MF_OK;
    case MF_T_BK: *slot = &L->bk; *rows = 1; *cols = m->kv_dim; return MF_OK;
    case MF_T_BV: *slot = &L->bv; *rows = 1; *cols = m->kv_dim; return MF_OK;
    case MF_T_Q_NORM: *slot = &L->q_norm; *rows = 1; *cols = full ? m->q_dim : h->head_dim; return MF_OK;
    case MF_T_K_NORM: *slot = &L->k_norm; *rows = 1; *cols = full ? m->kv_dim : h->head_dim; return MF_OK;
    case MF_T_FFN_NORM: *slot = &L->ffn_norm; *rows = 1; *cols = H; return MF_OK;
    case MF_T_ROUTER: *slot = &L->router; *rows = h->n_experts; *cols = H; return MF_OK;
    case MF_T_SHARED_GATE: *slot = &L->sh_gate; *rows = h->shared_ffn; *cols = H; return MF_OK;
    case MF_T_SHARED_UP: *slot = &L->sh_up; *rows = h->shared_ffn; *cols = H; return MF_OK;
    case MF_T_SHARED_DOWN: *slot = &L->sh_down; *rows = H; *cols = h->shared_ffn; return MF_OK;
    case MF_T_SHARED_EXPERT_GATE: *slot = &L->sh_expert_gate; *rows = 1; *cols = H; return MF_OK;
    default: return MF_E_FORMAT;
    }
}

static int is_vector_kind(uint32_t kind)
{
    return kind == MF_T_FINAL_NORM || kind == MF_T_ATTN_NORM || kind == MF_T_FFN_NORM ||
           kind == MF_T_BQ || kind == MF_T_BK || kind == MF_T_BV || kind == MF_T_Q_NORM ||
           kind == MF_T_K_NORM;
}

/* Every resident tensor: checked, allocated, and (for a real arena) read
 * and CRC-checked. */
static int load_resident(mf_model *m, mf_arena *a)
{
    const mf_section *t = mf_image_section(&m->h, MF_SEC_RESIDENT_TABLE);
    for (uint32_t i = 0; i < t->count; i++) {
        mf_resident_entry e;
        int rc = mf_image_resident_entry(m->port, &m->h, i, &e);
        if (rc) return rc;
        mf_tensor *slot;
        uint32_t rows, cols;
        rc = tensor_slot(m, &e, &slot, &rows, &cols);
        if (rc) return rc;
        if (e.rows != rows || e.cols != cols) return MF_E_FORMAT;
        if (is_vector_kind(e.kind) && e.encoding != MF_ENC_F32) return MF_E_FORMAT;
        if (e.bytes != mf_matrix_bytes((int)e.encoding, e.rows, e.cols, m->h.group_size))
            return MF_E_FORMAT;
        if (e.bytes > (size_t)-1) return MF_E_ARENA;
        uint8_t *p = mf_arena_alloc(a, (size_t)e.bytes);
        if (a->overflow) return MF_E_ARENA;
        if (!p) continue; /* counting */
        if (slot->data) return MF_E_FORMAT; /* the same tensor twice */
        rc = read_port(m->port, e.offset, p, (size_t)e.bytes);
        if (rc) return rc;
        if (mf_crc32(0, p, (size_t)e.bytes) != e.crc32) return MF_E_CRC;
        m->stats.resident_bytes += e.bytes;
        slot->data = p;
        slot->enc = (int)e.encoding;
        slot->rows = e.rows;
        slot->cols = e.cols;
    }
    return MF_OK;
}

/* Every tensor the architecture needs is there. */
static int check_complete(const mf_model *m)
{
    uint32_t f = m->h.flags;
    if (!m->embed.data || !m->final_norm.data) return MF_E_FORMAT;
    for (uint32_t l = 0; l < m->h.n_layers; l++) {
        const mf_layer_weights *L = &m->layers[l];
        if (!L->attn_norm.data || !L->wq.data || !L->wk.data || !L->wv.data || !L->wo.data ||
            !L->ffn_norm.data || !L->router.data)
            return MF_E_FORMAT;
        if ((f & MF_FLAG_QKV_BIAS) && (!L->bq.data || !L->bk.data || !L->bv.data))
            return MF_E_FORMAT;
        if ((f & (MF_FLAG_QK_NORM_HEAD | MF_FLAG_QK_NORM_FULL)) &&
            (!L->q_norm.data || !L->k_norm.data))
            return MF_E_FORMAT;
        if ((f & MF_FLAG_SHARED_EXPERT) && (!L->sh_gate.data || !L->sh_up.data ||
                                            !L->sh_down.data || !L->sh_expert_gate.data))
            return MF_E_FORMAT;
    }
    return MF_OK;
}

#define ALLOC_F(ptr, n) ((ptr) = mf_arena_alloc(a, sizeof(float) * (size_t)(n)))
#define ALLOC_U(ptr, n) ((ptr) = mf_arena_alloc(a, sizeof(uint32_t) * (size_t)(n)))

/* The whole layout, in order. Counting when a->base == NULL. Also used by
 * mf_arena_bytes, so that both agree byte for byte. */
static int build(mf_model *m, mf_arena *a, size_t max_blob)
{
    const mf_image_header *h = &m->h;
    int rc;
    m->layers = mf_arena_alloc(a, sizeof(mf_layer_weights) * h->n_layers);
    if (a->overflow) return MF_E_ARENA;

    rc = load_resident(m, a);
    if (rc) return rc;
    if (a->base) {
        if (!m->lm_head.data) m->lm_head = m->embed; /* tied embeddings */
        rc = check_complete(m);
        if (rc) return rc;
    }

    /* Tokenizer tables: in place when the flash is mapped, else a copy. */
    const mf_section *ts = mf_image_section(h, MF_SEC_TOKENIZER);
    const uint8_t *tables = NULL;
    size_t table_bytes = 0;
    if (ts) {
        if (ts->bytes > (size_t)-1) return MF_E_ARENA;
        table_bytes = (size_t)ts->bytes;
        tables = mf_port_map(m->port, ts->offset, table_bytes);
        if (!tables) {
            uint8_t *copy = mf_arena_alloc(a, table_bytes);
            if (copy) {
                rc = read_port(m->port, ts->offset, copy, table_bytes);
                if (rc) return rc;
                if (mf_crc32(0, copy, table_bytes) != ts->crc32) return MF_E_CRC;
            }
            tables = copy;
        }
    }

    size_t kv = (size_t)h->n_layers * m->ctx * m->kv_dim;
    if (m->opt.kv_encoding == MF_ENC_F32) {
        ALLOC_F(m->key_cache, kv);
        ALLOC_F(m->value_cache, kv);
    } else { /* 16-bit or q8 KV, plus one f32 row to widen into */
        size_t el = m->opt.kv_encoding == MF_ENC_Q8 ? 1u : sizeof(uint16_t);
        m->key_cache = mf_arena_alloc(a, el * kv);
        m->value_cache = mf_arena_alloc(a, el * kv);
        if (m->opt.kv_encoding == MF_ENC_Q8) {
            size_t ns = (size_t)h->n_layers * m->ctx * h->n_kv_heads;
            m->key_scale = mf_arena_alloc(a, sizeof(uint16_t) * ns);
            m->value_scale = mf_arena_alloc(a, sizeof(uint16_t) * ns);
        }
        ALLOC_F(m->kv_row, h->head_dim);
    }

    uint32_t B = m->batch, H = h->hidden;
    ALLOC_F(m->x, (size_t)B * H);
    ALLOC_F(m->xb, (size_t)B * H);
    ALLOC_F(m->xb2, (size_t)B * H);
    ALLOC_F(m->moe, (size_t)B * H);
    ALLOC_F(m->q, (size_t)B * m->q_dim);
    ALLOC_F(m->att_out, (size_t)B * m->q_dim);
    ALLOC_F(m->k, (size_t)B * m->kv_dim);
    ALLOC_F(m->v, (size_t)B * m->kv_dim);
    ALLOC_F(m->router, (size_t)B * h->n_experts);
    ALLOC_U(m->topk_idx, (size_t)B * h->top_k);
    ALLOC_F(m->topk_w, (size_t)B * h->top_k);
    ALLOC_F(m->gx, (size_t)B * H);
    ALLOC_F(m->gy, (size_t)B * H);
    ALLOC_F(m->h1, (size_t)B * m->ffn_max);
    ALLOC_F(m->h2, (size_t)B * m->ffn_max);
    ALLOC_F(m->gate1, B);
    ALLOC_U(m->sel_tok, B);
    ALLOC_F(m->ey, (size_t)B * h->top_k * H);
    ALLOC_U(m->todo, h->n_experts);
    ALLOC_F(m->rope_cos, (size_t)B * (h->head_dim / 2));
    ALLOC_F(m->rope_sin, (size_t)B * (h->head_dim / 2));
    ALLOC_F(m->rope_inv, h->head_dim / 2);
    ALLOC_F(m->att, m->ctx);

    if (!m->opt.float_activations) {
        uint32_t mc = H > m->q_dim ? H : m->q_dim;
        if (m->ffn_max > mc) mc = m->ffn_max;
        m->qa = mf_arena_alloc(a, mf_qa_bytes(mc, h->group_size));
    }
    ALLOC_F(m->logits, h->vocab);
    ALLOC_F(m->probs, h->vocab);
    ALLOC_U(m->prob_idx, h->vocab);

    m->enc_scratch_bytes = 0;
    if (ts) m->enc_scratch_bytes = m->opt.encode_scratch ? m->opt.encode_scratch : DEFAULT_ENCODE_SCRATCH;
    m->enc_scratch = m->enc_scratch_bytes ? mf_arena_alloc(a, m->enc_scratch_bytes) : NULL;
    if (a->overflow) return MF_E_ARENA;

    rc = mf_store_init(&m->store, a, m->port, &m->h, &m->opt, m->batch, max_blob, &m->stats);
    if (rc) return rc;
    if (a->overflow) return MF_E_ARENA;

    if (a->base) {
        rc = mf_tokenizer_init(&m->tok, tables, table_bytes, h->vocab);
        if (rc) return rc;
        mf_rope_inv_freq(m->rope_inv, h->head_dim, h->rope_theta);
    }
    return MF_OK;
}

/* Header, options and derived sizes into m (no arena needed). */
static int prepare(mf_model *m, const mf_port *port, const mf_options *opt, int verify_tables,
                   size_t *max_blob)
{
    uint8_t scratch[512];
    memset(m, 0, sizeof *m);
    m->port = port;
    if (opt)
        m->opt = *opt;
    else
        mf_options_default(&m->opt);
    int rc = mf_image_read_header(port, &m->h, verify_tables, scratch, sizeof scratch);
    if (rc) return rc;
    const mf_image_header *h = &m->h;
    if (m->opt.kv_encoding != MF_ENC_F32 && m->opt.kv_encoding != MF_ENC_F16 &&
        m->opt.kv_encoding != MF_ENC_BF16 && m->opt.kv_encoding != MF_ENC_Q8)
        return mf_port_refuse(port, MF_E_UNSUPPORTED,
                              "moeflash: opt.kv_encoding must be f32, f16, bf16 or q8");
    if (m->opt.verify_experts < 0 || m->opt.verify_experts > 2)
        return mf_port_refuse(port, MF_E_ARG, "moeflash: opt.verify_experts must be 0, 1 or 2");
    m->ctx = m->opt.context_len ? m->opt.context_len : h->max_seq;
    if (m->ctx > h->max_seq)
        return mf_port_refuse(port, MF_E_ARG,
                              "moeflash: opt.context_len exceeds the image's max_seq");
    uint32_t total = h->n_layers * h->n_experts;
    uint32_t slots = m->opt.expert_slots ? m->opt.expert_slots : h->top_k;
    if (slots < h->top_k)
        return mf_port_refuse(port, MF_E_ARG,
                              "moeflash: opt.expert_slots is fewer than the model's top_k");
    if (slots > total) slots = total;
    m->opt.expert_slots = slots;
    m->batch = m->opt.prefill_batch ? m->opt.prefill_batch : DEFAULT_BATCH;
    if (m->batch > m->ctx) m->batch = m->ctx;
    m->opt.prefill_batch = m->batch;
    m->q_dim = h->n_heads * h->head_dim;
    m->kv_dim = h->n_kv_heads * h->head_dim;
    m->ffn_max = h->expert_ffn > h->shared_ffn ? h->expert_ffn : h->shared_ffn;
    return mf_store_max_blob(port, h, max_blob);
}

int mf_arena_bytes(const mf_port *port, const mf_options *opt, size_t *bytes)
{
    if (!port || !bytes) return MF_E_ARG;
    mf_model tmp; /* counting needs only the sizes, not a real model */
    mf_model *m = &tmp;
    size_t max_blob;
    int rc = prepare(m, port, opt, 0, &max_blob);
    if (rc) return rc;
    mf_arena a;
    mf_arena_init_count(&a);
    mf_arena_alloc(&a, sizeof(mf_model));
    rc = build(m, &a, max_blob);
    if (rc) return rc;
    *bytes = mf_arena_total(a.used);
    return MF_OK;
}

int mf_init(mf_model **model, const mf_port *port, const mf_options *opt, void *arena,
            size_t arena_bytes)
{
    if (!model || !port || !arena) return MF_E_ARG;
    *model = NULL;
    size_t need;
    int rc = mf_arena_bytes(port, opt, &need);
    if (rc) return rc;
    if (arena_bytes < need) return MF_E_ARENA;

    mf_arena a;
    mf_arena_init(&a, arena, arena_bytes);
    mf_model *m = mf_arena_alloc(&a, sizeof(mf_model));
    if (!m) return MF_E_ARENA;
    size_t max_blob;
    rc = prepare(m, port, opt, 1, &max_blob);
    if (rc) return rc;
    rc = build(m, &a, max_blob);
    if (rc) return rc;
    m->arena_used = a.used;
    *model = m;
    return MF_OK;
}

size_t mf_arena_used_bytes(const mf_model *m) { return m ? mf_arena_total(m->arena_used) : 0; }

/* ------------------------------------------------------------------ forward pass */

/* The element-wise work a simulated port charges (MF_WORK_OTHER): 4 bytes
 * per activation value a step reads (norms, RoPE, softmax, SiLU, residual
 * adds, int8 quantisation of a matvec's input); docs/board-profiles.md
 * calibrates the cost per byte against executed instructions. */
static void charge_other(const mf_model *m, uint64_t values)
{
    mf_port_charge(m->port, MF_WORK_OTHER, MF_ENC_F32, values * 4u);
}

/* A quantised matvec quantises its input rows first (mf_matmul_ex). */
static void charge_quantize(const mf_model *m, int enc, uint32_t cols, uint32_t n)
{
    if (m->qa && enc >= MF_ENC_Q8 && enc < MF_ENC_COUNT) charge_other(m, (uint64_t)cols * n);
}

/* Y[n][rows] = W . X[n][cols] for a resident tensor, charged to the port. */
static void matmul(const mf_model *m, const mf_tensor *w, const float *x, float *y, uint32_t n)
{
    mf_matmul_ex(w->enc, w->data, w->rows, w->cols, m->h.group_size, x, w->cols, y, w->rows, n,
                 m->qa);
    mf_port_charge(m->port, MF_WORK_MATVEC, w->enc,
                   (uint64_t)mf_matrix_bytes(w->enc, w->rows, w->cols, m->h.group_size) * n);
    charge_quantize(m, w->enc, w->cols, n);
}

static void embed(mf_model *m, const uint32_t *tokens, uint32_t n)
{
    for (uint32_t t = 0; t < n; t++)
        mf_dequantize_row(m->embed.enc, m->embed.data, tokens[t], m->h.hidden, m->h.group_size,
                          m->x + (size_t)t * m->h.hidden);
}

static void add_bias(float *y, const mf_tensor *b, uint32_t width, uint32_t n)
{
    const float *bv = b->data;
    for (uint32_t t = 0; t < n; t++)
        for (uint32_t i = 0; i < width; i++) y[(size_t)t * width + i] += bv[i];
}

/* Qwen3: RMSNorm of each head over head_dim; OLMoE: over the whole projection. */
static void qk_norm(const mf_model *m, float *y, const mf_tensor *w, uint32_t heads, uint32_t n)
{
    uint32_t hd = m->h.head_dim, width = heads * hd;
    for (uint32_t t = 0; t < n; t++) {
        float *row = y + (size_t)t * width;
        if (m->h.flags & MF_FLAG_QK_NORM_FULL)
            mf_rmsnorm(row, row, w->data, width, m->h.rms_eps);
        else
            for (uint32_t i = 0; i < heads; i++)
                mf_rmsnorm(row + (size_t)i * hd, row + (size_t)i * hd, w->data, hd, m->h.rms_eps);
    }
}

/* Non-f32 KV cache. Element offsets `off` of a head's row are multiples of
 * head_dim; q8 keeps one f16 scale per row (index off / head_dim). */
static void kv_store(const mf_model *m, void *cache, uint16_t *scales, size_t off, const float *x)
{
    uint32_t hd = m->h.head_dim;
    int enc = m->opt.kv_encoding;
    if (enc == MF_ENC_Q8) {
        scales[off / hd] = mf_quantize_kv_q8(x, hd, (int8_t *)cache + off);
        return;
    }
    uint16_t *d = (uint16_t *)cache + off;
    for (uint32_t i = 0; i < hd; i++) d[i] = enc == MF_ENC_BF16 ? mf_f32_to_bf16(x[i]) : mf_f32_to_f16(x[i]);
}

/* mf_attention_head over a non-f32 KV cache (ops.c widens row by row). */
static void attention_head_kv(mf_model *m, float *out, const float *q, size_t off, uint32_t n_pos)
{
    uint32_t hd = m->h.head_dim;
    int q8 = m->opt.kv_encoding == MF_ENC_Q8; /* only q8 has scales */
    size_t el = q8 ? 1u : sizeof(uint16_t);
    mf_attention_head_kv(out, q, m->opt.kv_encoding, (const uint8_t *)m->key_cache + off * el,
                         (const uint8_t *)m->value_cache + off * el,
                         q8 ? m->key_scale + off / hd : NULL, q8 ? m->value_scale + off / hd : NULL,
                         m->kv_dim, n_pos, hd, m->kv_row, m->att);
}

static void attention(mf_model *m, uint32_t l, uint32_t n)
{
    const mf_image_header *h = &m->h;
    const mf_layer_weights *L = &m->layers[l];
    uint32_t H = h->hidden, hd = h->head_dim;
    for (uint32_t t = 0; t < n; t++)
        mf_rmsnorm(m->xb + (size_t)t * H, m->x + (size_t)t * H, L->attn_norm.data, H, h->rms_eps);
    if (L->wq.enc == L->wk.enc && L->wq.enc == L->wv.enc && L->wq.cols == L->wk.cols &&
        L->wq.cols == L->wv.cols) {
        const mf_matmul_job qkv[3] = {{L->wq.data, L->wq.rows, m->q, L->wq.rows},
                                      {L->wk.data, L->wk.rows, m->k, L->wk.rows},
                                      {L->wv.data, L->wv.rows, m->v, L->wv.rows}};
        mf_matmul_shared(L->wq.enc, L->wq.cols, h->group_size, m->xb, L->wq.cols, n, m->qa, qkv, 3);
        charge_quantize(m, L->wq.enc, L->wq.cols, n);
        for (int i = 0; i < 3; i++) {
            const mf_tensor *w = i == 0 ? &L->wq : i == 1 ? &L->wk : &L->wv;
            mf_port_charge(m->port, MF_WORK_MATVEC, w->enc,
                           (uint64_t)mf_matrix_bytes(w->enc, w->rows, w->cols, h->group_size) * n);
        }
    } else {
        matmul(m, &L->wq, m->xb, m->q, n);
        matmul(m, &L->wk, m->xb, m->k, n);
        matmul(m, &L->wv, m->xb, m->v, n);
    }
    if (h->flags & MF_FLAG_QKV_BIAS) {
        add_bias(m->q, &L->bq, m->q_dim, n);
        add_bias(m->k, &L->bk, m->kv_dim, n);
        add_bias(m->v, &L->bv, m->kv_dim, n);
    }
    if (h->flags & (MF_FLAG_QK_NORM_HEAD | MF_FLAG_QK_NORM_FULL)) {
        qk_norm(m, m->q, &L->q_norm, h->n_heads, n);
        qk_norm(m, m->k, &L->k_norm, h->n_kv_heads, n);
    }
    int kv16 = m->opt.kv_encoding != MF_ENC_F32; /* widened row by row */
    size_t kv_el = !kv16 ? sizeof(float) : m->opt.kv_encoding == MF_ENC_Q8 ? 1u : sizeof(uint16_t);
    size_t layer_off = (size_t)l * m->ctx * m->kv_dim;
    for (uint32_t t = 0; t < n; t++) {
        const float *rc = m->rope_cos + (size_t)t * (hd / 2), *rs = m->rope_sin + (size_t)t * (hd / 2);
        mf_rope_apply(m->q + (size_t)t * m->q_dim, h->n_heads, hd, rc, rs);
        mf_rope_apply(m->k + (size_t)t * m->kv_dim, h->n_kv_heads, hd, rc, rs);
        size_t off = layer_off + (size_t)(m->pos + t) * m->kv_dim;
        const float *ks = m->k + (size_t)t * m->kv_dim, *vs = m->v + (size_t)t * m->kv_dim;
        if (!kv16) {
            memcpy((float *)m->key_cache + off, ks, sizeof(float) * m->kv_dim);
            memcpy((float *)m->value_cache + off, vs, sizeof(float) * m->kv_dim);
        } else {
            for (uint32_t j = 0; j < m->kv_dim; j += hd) {
                kv_store(m, m->key_cache, m->key_scale, off + j, ks + j);
                kv_store(m, m->value_cache, m->value_scale, off + j, vs + j);
            }
        }
    }
    uint32_t group = h->n_heads / h->n_kv_heads;
    for (uint32_t t = 0; t < n; t++) {
        uint32_t n_pos = m->pos + t + 1;
        for (uint32_t i = 0; i < h->n_heads; i++) {
            uint32_t kvh = i / group;
            float *out = m->att_out + (size_t)t * m->q_dim + (size_t)i * hd;
            const float *q = m->q + (size_t)t * m->q_dim + (size_t)i * hd;
            if (!kv16)
                mf_attention_head(out, q, (const float *)m->key_cache + layer_off + (size_t)kvh * hd,
                                  (const float *)m->value_cache + layer_off + (size_t)kvh * hd,
                                  m->kv_dim, n_pos, hd, m->att);
            else
                attention_head_kv(m, out, q, layer_off + (size_t)kvh * hd, n_pos);
        }
        mf_port_charge(m->port, MF_WORK_ATTENTION, m->opt.kv_encoding,
                       (uint64_t)n_pos * m->kv_dim * 2u * kv_el);
    }
    matmul(m, &L->wo, m->att_out, m->xb2, n);
    for (size_t i = 0; i < (size_t)n * H; i++) m->x[i] += m->xb2[i];
}

/* Router: softmax over the experts, top-k (largest first, ties to the lower
 * index), renormalised when the image says so. */
static void route(mf_model *m, uint32_t l, uint32_t n)
{
    const mf_image_header *h = &m->h;
    uint32_t E = h->n_experts, k = h->top_k;
    matmul(m, &m->layers[l].router, m->xb, m->router, n);
    for (uint32_t t = 0; t < n; t++) {
        float *p = m->router + (size_t)t * E;
        uint32_t *idx = m->topk_idx + (size_t)t * k;
        float *w = m->topk_w + (size_t)t * k;
        mf_softmax(p, E);
        mf_topk(p, E, k, idx);
        float sum = 0.0f;
        for (uint32_t j = 0; j < k; j++) sum += (w[j] = p[idx[j]]);
        if (h->flags & MF_FLAG_NORM_TOPK)
            for (uint32_t j = 0; j < k; j++) w[j] /= sum;
        if (m->route_fn) m->route_fn(m->route_user, l, m->pos + t, idx, w, k);
        if (m->residual_fn)
            m->residual_fn(m->residual_user, l, m->pos + t, m->x + (size_t)t * h->hidden, h->hidden);
    }
}

/* The down projection's rows are computed in this many parts as an
 * expert streams in; only the last part's compute is left once its read
 * has completed. */
#define MF_STREAM_DOWN_PARTS 4

/* An expert whose read is in flight (mf_store_stream): swiglu() waits for
 * each step's bytes before computing it. */
typedef struct {
    uint32_t layer, expert;
} mf_streaming_expert;

/* Returns once the first `need` bytes of gate | up | down are in RAM:
 * at once for weights already there. */
static int wait_bytes(mf_model *m, const mf_streaming_expert *st, size_t need)
{
    return st ? mf_store_stream_wait(&m->store, st->layer, st->expert, need) : MF_OK;
}

/* down(silu(gate x) * up x) for the n rows of gx into gy. When the expert
 * is still streaming in (`st`), gate, up and then each part of down
 * compute as soon as their bytes are in the slot, so most of the expert's
 * compute overlaps its own read. Row by row the arithmetic is the same either way (a matvec's rows
 * do not depend on how many are computed together), and so is the work:
 * with int8 activations one token's input is quantised once for gate and
 * up and once for down; a batch's would be quantised again per call, so
 * its gate and up wait for each other and down is one part. 0, or the
 * read's error. */
static int swiglu(mf_model *m, int enc, const uint8_t *gate, const uint8_t *up,
                  const uint8_t *down, uint32_t ffn, uint32_t n, const mf_streaming_expert *st)
{
    uint32_t H = m->h.hidden, g = m->h.group_size;
    size_t mb = mf_matrix_bytes(enc, ffn, H, g), rb = mf_row_bytes(enc, ffn, g);
    int int8 = m->qa && enc >= MF_ENC_Q8 && enc < MF_ENC_COUNT;
    int batch8 = int8 && n > 1;
    int rc;
    /* each step is charged as it is done: the simulated clock must see the
     * compute before the next wait for bytes */
    if (batch8) {
        if ((rc = wait_bytes(m, st, 2u * mb))) return rc;
        const mf_matmul_job gu[2] = {{gate, ffn, m->h1, ffn}, {up, ffn, m->h2, ffn}};
        mf_matmul_shared(enc, H, g, m->gx, H, n, m->qa, gu, 2);
        mf_port_charge(m->port, MF_WORK_MATVEC, enc, (uint64_t)mb * 2u * n);
        charge_quantize(m, enc, H, n);
    } else {
        if (int8) mf_quantize_activations(m->gx, H, g, m->qa);
        charge_quantize(m, enc, H, n);
        for (uint32_t i = 0; i < 2; i++) { /* gate, then up */
            if ((rc = wait_bytes(m, st, (i + 1u) * mb))) return rc;
            float *y = i ? m->h2 : m->h1;
            const uint8_t *wm = i ? up : gate;
            if (int8) mf_matvec_qa(enc, wm, m->qa, y, ffn, H, g);
            else mf_matmul_ex(enc, wm, ffn, H, g, m->gx, H, y, ffn, n, NULL);
            mf_port_charge(m->port, MF_WORK_MATVEC, enc, (uint64_t)mb * n);
        }
    }
    mf_silu_mul(m->h1, m->h2, (size_t)n * ffn);
    charge_other(m, (uint64_t)ffn * n * 2u);
    uint32_t parts = st && !batch8 ? MF_STREAM_DOWN_PARTS : 1u;
    if (int8 && !batch8) {
        mf_quantize_activations(m->h1, ffn, g, m->qa);
        charge_quantize(m, enc, ffn, n);
    }
    for (uint32_t p = 0; p < parts; p++) {
        uint32_t r0 = H * p / parts, r1 = H * (p + 1u) / parts;
        if ((rc = wait_bytes(m, st, 2u * mb + r1 * rb))) return rc;
        const uint8_t *wd = down + r0 * rb;
        if (int8 && !batch8) mf_matvec_qa(enc, wd, m->qa, m->gy + r0, r1 - r0, ffn, g);
        else mf_matmul_ex(enc, wd, r1 - r0, ffn, g, m->h1, ffn, m->gy + r0, H, n, m->qa);
        mf_port_charge(m->port, MF_WORK_MATVEC, enc, (uint64_t)(r1 - r0) * rb * n);
    }
    if (batch8) charge_quantize(m, enc, ffn, n);
    return MF_OK;
}

/* swiglu() on an expert's blob: gate, up and down one after the other. */
static int swiglu_expert(mf_model *m, int enc, const uint8_t *blob, uint32_t n,
                         const mf_streaming_expert *st)
{
    uint32_t F = m->h.expert_ffn;
    size_t mb = mf_matrix_bytes(enc, F, m->h.hidden, m->h.group_size);
    return swiglu(m, enc, blob, blob + mb, blob + 2 * mb, F, n, st);
}

/* The chosen expert of todo[0..nd) to compute next: the one whose read
 * completes first (a cached one before one in flight before one not yet
 * read; ties to the lower index, as todo is ascending). The key is asked
 * again each time because reads complete while experts compute. */
static uint32_t next_expert(mf_model *m, uint32_t l, uint32_t nd)
{
    uint32_t best = 0;
    uint64_t best_key = UINT64_MAX;
    for (uint32_t i = 0; i < nd; i++) {
        uint64_t key = mf_store_ready_key(&m->store, l, m->todo[i]);
        if (i == 0 || key < best_key) {
            best = i;
            best_key = key;
        }
        if (key == 0) break;
    }
    return best;
}

/* Applies expert e to the tokens that chose it; each output row goes to
 * ey[t * top_k + j] (j: the token's top-k slot holding e). */
static int apply_expert(mf_model *m, uint32_t l, uint32_t e, uint32_t n)
{
    const mf_image_header *h = &m->h;
    uint32_t H = h->hidden, k = h->top_k;
    uint32_t cnt = 0;
    for (uint32_t t = 0; t < n; t++)
        for (uint32_t j = 0; j < k; j++)
            if (m->topk_idx[(size_t)t * k + j] == e) {
                m->sel_tok[cnt] = t * k + j;
                memcpy(m->gx + (size_t)cnt * H, m->xb + (size_t)t * H, sizeof(float) * H);
                cnt++;
            }
    const uint8_t *blob;
    int enc;
    const mf_streaming_expert st = {l, e};
    int began = mf_store_stream(&m->store, l, e, &blob, &enc);
    int streamed = began && swiglu_expert(m, enc, blob, cnt, &st) == MF_OK;
    int rc = mf_store_get(&m->store, l, e, &blob, &enc);
    if (rc) return rc;
    streamed = streamed && !m->store.refilled; /* else its bytes failed: read again */
    if (began) {
        if (streamed) m->stats.streamed_experts++;
        else m->stats.stream_redone++;
    }
    if (!streamed) (void)swiglu_expert(m, enc, blob, cnt, NULL); /* nothing to wait for */
    mf_store_release(&m->store, l, e);
    for (uint32_t i = 0; i < cnt; i++)
        memcpy(m->ey + (size_t)m->sel_tok[i] * H, m->gy + (size_t)i * H, sizeof(float) * H);
    return MF_OK;
}

/* The shared expert (always resident) and then the chosen experts run in
 * the order their weights become available, so that whatever is in RAM
 * computes while missing experts stream in. The routed outputs are then
 * summed per token in ascending expert index and the shared one added last,
 * the order of a single-slot run, so the logits never depend on slots,
 * policy, predictor or flash timing. */
static int moe(mf_model *m, uint32_t l, uint32_t n)
{
    const mf_image_header *h = &m->h;
    const mf_layer_weights *L = &m->layers[l];
    uint32_t H = h->hidden, k = h->top_k;
    for (uint32_t t = 0; t < n; t++)
        mf_rmsnorm(m->xb + (size_t)t * H, m->x + (size_t)t * H, L->ffn_norm.data, H, h->rms_eps);
    route(m, l, n);
    mf_predict_routed(m, l, n); /* demand reads of layer l, predictions for l+1 */

    int shared = (h->flags & MF_FLAG_SHARED_EXPERT) != 0;
    if (shared) { /* resident: computed while the routed experts' reads stream */
        memcpy(m->gx, m->xb, sizeof(float) * (size_t)n * H);
        (void)swiglu(m, L->sh_gate.enc, L->sh_gate.data, L->sh_up.data, L->sh_down.data,
                     h->shared_ffn, n, NULL);
        memcpy(m->xb2, m->gy, sizeof(float) * (size_t)n * H); /* xb2 is free until the next attention */
        matmul(m, &L->sh_expert_gate, m->xb, m->gate1, n);
    }

    uint32_t nd = 0;
    for (uint32_t e = 0; e < h->n_experts; e++)
        for (size_t i = 0; i < (size_t)n * k; i++)
            if (m->topk_idx[i] == e) {
                m->todo[nd++] = e;
                break;
            }
    while (nd) {
        uint32_t i = next_expert(m, l, nd);
        uint32_t e = m->todo[i];
        memmove(m->todo + i, m->todo + i + 1, sizeof(uint32_t) * (nd - i - 1));
        nd--;
        int rc = apply_expert(m, l, e, n);
        if (rc) return rc;
    }

    memset(m->moe, 0, sizeof(float) * (size_t)n * H);
    for (uint32_t t = 0; t < n; t++) {
        float *o = m->moe + (size_t)t * H;
        const uint32_t *idx = m->topk_idx + (size_t)t * k;
        uint32_t prev = 0;
        for (uint32_t r = 0; r < k; r++) { /* the token's slots by ascending expert */
            uint32_t j = k;
            for (uint32_t c = 0; c < k; c++)
                if ((r == 0 || idx[c] > prev) && (j == k || idx[c] < idx[j])) j = c;
            prev = idx[j];
            const float *y = m->ey + ((size_t)t * k + j) * H;
            float w = m->topk_w[(size_t)t * k + j];
            for (uint32_t i = 0; i < H; i++) o[i] += w * y[i];
        }
    }

    if (shared) /* added after the routed sum, as it always was */
        for (uint32_t t = 0; t < n; t++) {
            float s = mf_sigmoid(m->gate1[t]);
            float *o = m->moe + (size_t)t * H;
            const float *y = m->xb2 + (size_t)t * H;
            for (uint32_t i = 0; i < H; i++) o[i] += s * y[i];
        }
    for (size_t i = 0; i < (size_t)n * H; i++) m->x[i] += m->moe[i];
    return MF_OK;
}

/* Final norm and lm_head for rows [from, n) of the chunk into out[][vocab]. */
static void head(mf_model *m, uint32_t from, uint32_t n, float *out)
{
    uint32_t H = m->h.hidden;
    for (uint32_t t = from; t < n; t++)
        mf_rmsnorm(m->xb + (size_t)t * H, m->x + (size_t)t * H, m->final_norm.data, H, m->h.rms_eps);
    matmul(m, &m->lm_head, m->xb + (size_t)from * H, out, n - from);
}

/* One chunk of n <= batch tokens at positions pos..pos+n-1. */
static int forward(mf_model *m, const uint32_t *tokens, uint32_t n, float *all_logits)
{
    embed(m, tokens, n);
    uint32_t half = m->h.head_dim / 2;
    for (uint32_t t = 0; t < n; t++) /* every layer rotates by the same angles */
        mf_rope_angles(m->rope_cos + (size_t)t * half, m->rope_sin + (size_t)t * half, m->pos + t,
                       half, m->rope_inv);
    mf_predict_chunk_start(m, tokens, n);
    const mf_image_header *h = &m->h;
    /* per token and layer: two norms and two residual adds (hidden each),
     * RoPE on q and k, the router's softmax, each chosen expert's output
     * weighted into the sum */
    uint64_t per_layer = 4ull * h->hidden + m->q_dim + m->kv_dim + h->n_experts +
                         (uint64_t)h->top_k * h->hidden;
    charge_other(m, (uint64_t)h->hidden * n); /* the embedding row */
    for (uint32_t l = 0; l < m->h.n_layers; l++) {
        attention(m, l, n);
        int rc = moe(m, l, n);
        if (rc) return rc; /* m->pos not advanced: the chunk can be fed again */
        charge_other(m, per_layer * n);
        mf_predict_layer_done(m, l, n);
    }
    charge_other(m, (uint64_t)h->hidden + h->vocab); /* final norm, logits to the sampler */
    if (all_logits) {
        head(m, 0, n, all_logits);
        memcpy(m->logits, all_logits + (size_t)(n - 1) * m->h.vocab, sizeof(float) * m->h.vocab);
    } else {
        head(m, n - 1, n, m->logits);
    }
    m->pos += n;
    return MF_OK;
}

static int feed(mf_model *m, const uint32_t *tokens, uint32_t n, float *logits)
{
    if (!m || !tokens || n == 0) return MF_E_ARG;
    for (uint32_t i = 0; i < n; i++)
        if (tokens[i] >= m->h.vocab) return MF_E_TOKEN;
    if (n > m->ctx - m->pos) return MF_E_CONTEXT;
    for (uint32_t done = 0; done < n;) {
        uint32_t c = n - done < m->batch ? n - done : m->batch;
        int rc = forward(m, tokens + done, c, logits ? logits + (size_t)done * m->h.vocab : NULL);
        if (rc) {
            m->have_logits = 0; /* the context is now inconsistent: reset before reuse */
            return rc;
        }
        done += c;
    }
    m->have_logits = 1;
    /* What is decoded next continues the fed text, so SentencePiece keeps
     * the leading space of the first generated token. */
    mf_tokenizer_decode_continue(&m->tok);
    return MF_OK;
}

int mf_feed(mf_model *m, const uint32_t *tokens, uint32_t n) { return feed(m, tokens, n, NULL); }

int mf_feed_all(mf_model *m, const uint32_t *tokens, uint32_t n, float *logits)
{
    if (!logits) return MF_E_ARG;
    return feed(m, tokens, n, logits);
}

/* ------------------------------------------------------------------ small API */

int mf_reset(mf_model *m)
{
    if (!m) return MF_E_ARG;
    m->pos = 0;
    m->have_logits = 0;
    mf_tokenizer_decode_reset(&m->tok);
    return MF_OK;
}

const float *mf_logits(const mf_model *m) { return m && m->have_logits ? m->logits : NULL; }
uint32_t mf_vocab_size(const mf_model *m) { return m ? m->h.vocab : 0; }
uint32_t mf_position(const mf_model *m) { return m ? m->pos : 0; }
uint32_t mf_context_len(const mf_model *m) { return m ? m->ctx : 0; }

void mf_set_route_observer(mf_model *m, mf_route_fn fn, void *user)
{
    if (!m) return;
    m->route_fn = fn;
    m->route_user = user;
}

void mf_set_residual_observer(mf_model *m, mf_residual_fn fn, void *user)
{
    if (!m) return;
    m->residual_fn = fn;
    m->residual_user = user;
}

void mf_get_stats(const mf_model *m, mf_stats *s)
{
    if (!s) return;
    if (!m) {
        memset(s, 0, sizeof *s);
        return;
    }
    *s = m->stats;
}

static void fill_info(const mf_image_header *h, mf_info *info)
{
    memset(info, 0, sizeof *info);
    info->arch = h->arch;
    info->flags = h->flags;
    info->vocab = h->vocab;
    info->hidden = h->hidden;
    info->n_layers = h->n_layers;
    info->n_heads = h->n_heads;
    info->n_kv_heads = h->n_kv_heads;
    info->head_dim = h->head_dim;
    info->n_experts = h->n_experts;
    info->top_k = h->top_k;
    info->expert_ffn = h->expert_ffn;
    info->shared_ffn = h->shared_ffn;
    info->max_seq = h->max_seq;
    info->has_tokenizer = mf_image_section(h, MF_SEC_TOKENIZER) != NULL;
}

int mf_image_info(const mf_port *port, mf_info *info)
{
    if (!port || !info) return MF_E_ARG;
    mf_image_header h;
    int rc = mf_image_read_header(port, &h, 0, NULL, 0);
    if (rc) return rc;
    fill_info(&h, info);
    return mf_store_max_blob(port, &h, &info->expert_bytes);
}

void mf_model_info(const mf_model *m, mf_info *info)
{
    if (!m || !info) return;
    fill_info(&m->h, info);
    info->expert_bytes = m->store.slot_bytes;
    info->context_len = m->ctx;
    info->expert_slots = m->store.n_slots;
    info->prefill_batch = m->batch;
}

int mf_encode(mf_model *m, const char *text, size_t len, uint32_t *ids, uint32_t max_ids,
              uint32_t *n_ids)
{
    if (!m || !n_ids) return MF_E_ARG;
    /* The scratch bounds the longest pre-tokenized chunk, not the text: the
     * tokenizer encodes any length with it (see tokenizer.h). */
    return mf_tokenizer_encode(&m->tok, text, len, ids, max_ids, n_ids, m->enc_scratch,
                               m->enc_scratch_bytes);
}

int mf_decode_token(mf_model *m, uint32_t id, char *out, size_t cap, size_t *len)
{
    if (!m) return MF_E_ARG;
    if (id >= m->h.vocab) return MF_E_TOKEN;
    return mf_tokenizer_decode(&m->tok, id, out, cap, len);
}

uint32_t mf_token_bos(const mf_model *m) { return m ? mf_tokenizer_bos(&m->tok) : MF_NO_TOKEN; }

int mf_token_is_special(const mf_model *m, uint32_t id)
{
    return m ? mf_tokenizer_is_special(&m->tok, id) : 0;
}

int mf_token_is_eos(const mf_model *m, uint32_t id)
{
    return m ? mf_tokenizer_is_eos(&m->tok, id) : 0;
}

int mf_decode_flush(mf_model *m, char *out, size_t cap, size_t *len)
{
    if (!m) return MF_E_ARG;
    return mf_tokenizer_decode_flush(&m->tok, out, cap, len);
}
