/* Predictors and the forward-pass hooks of the expert cache (predictor.h). */
#include "predictor.h"

#include <math.h>
#include <string.h>

#include "../runtime/image_format.h"
#include "../runtime/ops.h"
#include "../runtime/quant.h"

static int in_row16(const uint16_t *row, uint32_t k, uint32_t e)
{
    for (uint32_t j = 0; j < k; j++)
        if (row[j] == e) return 1;
    return 0;
}

#ifndef COMBINED_LATE_COOC
#define COMBINED_LATE_COOC 0.07f /* tuned on the first 1024 validation tokens */
#endif
/* Odds scale of the far-layer probabilities (far_lookahead). A logistic
 * fit on the first 1024 validation tokens gives odds = e^2.9 r^0.95 q^0.92
 * (19 r q); flash bytes on those tokens are the same for 30..150 and 0.1-0.3 %
 * higher at 10-19: the policy gains from somewhat overconfident far
 * predictions. */
#ifndef FAR_ODDS
#define FAR_ODDS 60.0f
#endif

/* Router probabilities of layer `layer` for the n rows of x, into s->ps:
 * rows normalised with that layer's post-attention norm weights. */
static void lookahead_probs(mf_model *m, uint32_t layer, const float *x, uint32_t n)
{
    mf_expert_store *s = &m->store;
    const mf_image_header *h = &m->h;
    const mf_layer_weights *L = &m->layers[layer];
    uint32_t H = h->hidden, E = h->n_experts;
    for (uint32_t t = 0; t < n; t++)
        mf_rmsnorm(s->px + (size_t)t * H, x + (size_t)t * H, L->ffn_norm.data, H, h->rms_eps);
    const mf_tensor *r = &L->router;
    mf_matmul(r->enc, r->data, r->rows, r->cols, h->group_size, s->px, H, s->ps, E, n);
    mf_port_charge(m->port, MF_WORK_MATVEC, r->enc,
                   (uint64_t)mf_matrix_bytes(r->enc, r->rows, r->cols, h->group_size) * n);
    for (uint32_t t = 0; t < n; t++) mf_softmax(s->ps + (size_t)t * E, E);
}

/* Probabilities of layer l+1's experts for the n rows of x (layer l's
 * residual at its routing) from the learned lookahead (MF_SEC_LOOKAHEAD,
 * written by `moeflash profile`), into s->ps. */
static void learned_probs(mf_model *m, uint32_t l, const float *x, uint32_t n)
{
    mf_expert_store *s = &m->store;
    const mf_image_header *h = &m->h;
    uint32_t H = h->hidden, E = h->n_experts;
    for (uint32_t t = 0; t < n; t++) {
        const float *r = x + (size_t)t * H;
        float ss = 0.0f;
        for (uint32_t i = 0; i < H; i++) ss += r[i] * r[i];
        float inv = 1.0f / sqrtf(ss / (float)H + MF_LOOKAHEAD_EPS);
        for (uint32_t i = 0; i < H; i++) s->px[(size_t)t * H + i] = r[i] * inv;
    }
    const float *w = s->la_w + (size_t)l * E * H, *b = s->la_b + (size_t)l * E;
    mf_matmul(MF_ENC_F32, w, E, H, h->group_size, s->px, H, s->ps, E, n);
    mf_port_charge(m->port, MF_WORK_MATVEC, MF_ENC_F32, (uint64_t)E * H * 4u * n);
    for (uint32_t t = 0; t < n; t++) {
        float *p = s->ps + (size_t)t * E;
        for (uint32_t e = 0; e < E; e++) p[e] += b[e];
        mf_softmax(p, E);
    }
}

/* Adds beta * P(b at `layer` | chosen experts of the two layers before) to
 * row t of s->ps (normalised to sum 1 before scaling). cur: the top_k
 * chosen at layer-1; prev (may be NULL): at layer-2. */
static void add_cooc(mf_model *m, uint32_t layer, const uint32_t *cur, const uint32_t *prev,
                     float *row, float beta)
{
    mf_expert_store *s = &m->store;
    uint32_t E = m->h.n_experts, k = m->h.top_k;
    float *sc = s->pscore;
    memset(sc, 0, sizeof(float) * E);
    const uint32_t *c1 = s->prof.c1 + (size_t)layer * E * E;
    const uint32_t *c2 = s->prof.c2 + (size_t)layer * E * E;
    for (uint32_t j = 0; j < k; j++) {
        uint32_t a = cur[j];
        uint32_t fa = s->prof.freq[(size_t)(layer - 1) * E + a];
        if (!fa) continue;
        for (uint32_t b = 0; b < E; b++) sc[b] += (float)c1[(size_t)a * E + b] / (float)fa;
    }
    if (prev)
        for (uint32_t j = 0; j < k; j++) {
            uint32_t a = prev[j];
            uint32_t fa = s->prof.freq[(size_t)(layer - 2) * E + a];
            if (!fa) continue;
            for (uint32_t b = 0; b < E; b++)
                sc[b] += 0.5f * (float)c2[(size_t)a * E + b] / (float)fa;
        }
    float sum = 0.0f;
    for (uint32_t b = 0; b < E; b++) sum += sc[b];
    if (sum > 0.0f)
        for (uint32_t b = 0; b < E; b++) row[b] += beta * sc[b] / sum;
}

/* Probability that an expert scored v (a router probability, plus a
 * co-occurrence share) is among a token's top_k. */
static float use_prob(const mf_model *m, float v)
{
    float p = v * (float)m->h.top_k;
    return p > 1.0f ? 1.0f : p;
}

/* Hands the store the chunk's probabilities for `layer` (max over rows). */
static void publish_probs(mf_model *m, uint32_t layer, uint32_t n)
{
    mf_expert_store *s = &m->store;
    uint32_t E = m->h.n_experts;
    for (uint32_t e = 0; e < E; e++) {
        float mx = 0.0f;
        for (uint32_t t = 0; t < n; t++) {
            float v = use_prob(m, s->ps[(size_t)t * E + e]);
            if (v > mx) mx = v;
        }
        s->pscore[e] = mx;
    }
    mf_store_set_probs(s, layer, s->pscore);
}

/* Per-token frequency of (layer, e) as the policy estimates it (est_q in
 * policy.c): decayed counts, the profile's frequency as a prior of 8. */
static float freq_q(const mf_expert_store *s, uint32_t layer, uint32_t e)
{
    const uint32_t E = s->h->n_experts, k = s->h->top_k;
    size_t idx = (size_t)layer * E + e;
    float q0 = (float)k / (float)E;
    if (s->have_profile && s->prof.tokens)
        q0 = ((float)s->prof.freq[idx] + 1.0f) / ((float)s->prof.tokens + (float)E / (float)k);
    float q = s->ufreq ? (s->ufreq[idx] + 8.0f * q0) / (s->uweight[layer] + 8.0f) : q0;
    return q > 1.0f ? 1.0f : q;
}

/* The token-routes table's P(e at layer | the chunk's token t) as odds,
 * and the odds of the layer frequency q it refines: the table is the
 * likelihood of the token's identity, so it multiplies the router's odds by
 * its own over q's (a naive Bayes update; measured in predict_token_routes). */
static float clamp_p(float p) { return p < 0.002f ? 0.002f : p > 0.998f ? 0.998f : p; }
static float prior_odds(float q) { q = clamp_p(q); return q / (1.0f - q); }
static float route_p(const mf_expert_store *s, uint32_t t, uint32_t layer, uint32_t e)
{
    uint32_t w = s->chunk_tokens[t];
    if (w >= s->troutes_vocab) return 0.0f;
    return (float)s->troutes[((size_t)w * s->h->n_layers + layer) * s->h->n_experts + e] / 255.0f;
}
static float route_odds(const mf_expert_store *s, uint32_t t, uint32_t layer, uint32_t e)
{
    return prior_odds(route_p(s, t, layer, e));
}

/* Far lookahead, for eviction only: the routers of layers first..L-1
 * applied to m->x (the embedding at the chunk start, layer l's output after
 * layer l), published as the probability that each expert is chosen at that
 * layer's next run. Only eviction uses them; nothing is prefetched for them
 * (not tried).
 *
 * Why: predictive EdgeMoE evicts the expert with the farthest expected next
 * use, and without this only layer l+1 had a prediction; layers l+2.. fell
 * back on their frequency q. An offline oracle that knows the rest of the
 * token's routing reads 1.317x Belady's bytes against LFU's 1.405x; through
 * this policy, exact far choices would give -3.8 % bytes (measured by
 * publishing the recorded trace instead, before the store's preemption of
 * speculative reads). The router on a residual that still lacks
 * some layers is weak (top-2 recall of the true choices 0.51-0.56 from the
 * embedding, 0.69-0.74 from two or three layers back), so it is combined
 * with q as odds = FAR_ODDS * r * q (r: the router probability), the form a
 * logistic fit chose: its ranking finds 0.57-0.64 of the choices from the
 * embedding (q alone 0.41-0.48), log loss 1.97 summed over the nine
 * source/target layer pairs on validation tokens 8192.. against 2.42 for q
 * alone and 2.18 for 0.5 min(1, k r) + 0.5 q.
 *
 * Measured (bench, tiny model, mcu-qspi, edgemoe, 12.5/25/50 % expert RAM,
 * combined and lookahead, 1024 tokens): flash bytes over Belady, mean of
 * the six runs, 1.4450 -> 1.4324 on the first validation tokens (tuned
 * there), 1.4467 -> 1.4193, 1.3868 -> 1.3801 and 1.4227 -> 1.4141 on
 * validation tokens 8192.., 32768.. and 65536.. (-0.9, -1.9, -0.5, -0.6 %); tokens/s +0.4..+2.3 % at
 * 12.5 and 25 %, -0.8..+0.3 % at 50 % (few misses left to save; the router
 * matvecs cost 1 % of compute). Tried and not kept, no measurable gain:
 * the same at routing time (the residual after attention), co-occurrence
 * (c2) for l+2, replacing rather than max-merging earlier far predictions,
 * the same calibration for the next layer's published probabilities, and a
 * persistence prior for layers <= l (an expert chosen at a layer for token
 * t is chosen again for t+1 with p 0.25-0.36, but the decayed frequency q
 * already carries that: a logistic fit gives the chosen flag weight ~0).
 *
 * Cost: one router matvec per far layer and chunk token, L-1 at the chunk
 * start and L-2-l after layer l (6 per token for 4 layers), charged to the
 * port by lookahead_probs. */
static void far_lookahead(mf_model *m, uint32_t first, uint32_t n)
{
    mf_expert_store *s = &m->store;
    uint32_t E = m->h.n_experts;
    if (!s->lprob || s->policy != MF_POLICY_EDGEMOE) return; /* no other policy reads them */
    if (s->n_slots >= m->h.n_layers * E) return;               /* nothing is ever evicted */
    for (uint32_t j = first; j < m->h.n_layers; j++) {
        lookahead_probs(m, j, m->x, n);
        for (uint32_t e = 0; e < E; e++) {
            float q = freq_q(s, j, e), mx = 0.0f;
            for (uint32_t t = 0; t < n; t++) {
                float o = FAR_ODDS * s->ps[(size_t)t * E + e] * q;
                if (s->troutes) o *= route_odds(s, t, j, e) / prior_odds(q);
                float v = o / (1.0f + o);
                if (v > mx) mx = v;
            }
            s->pscore[e] = mx;
        }
        mf_store_set_probs(s, j, s->pscore);
    }
}

/* Prefetches, for each of n rows of scores s->ps, its top `per_token`
 * experts of `layer`, rank by rank across the tokens (the likeliest first). */
static void prefetch_top(mf_model *m, uint32_t layer, uint32_t n, uint32_t per_token)
{
    mf_expert_store *s = &m->store;
    uint32_t E = m->h.n_experts;
    if (per_token > E) per_token = E;
    if (!per_token) return;
    publish_probs(m, layer, n);
    /* top-per_token indices of each row, kept in the row's own scores
     * buffer order: write them to ps rows as a ranking pass */
    for (uint32_t rank = 0; rank < per_token; rank++)
        for (uint32_t t = 0; t < n; t++) {
            mf_topk(s->ps + (size_t)t * E, E, rank + 1, s->pidx);
            if (rank > 0 && s->ps[(size_t)t * E + s->pidx[rank]] < s->min_prob) continue;
            (void)mf_store_prefetch_p(s, layer, s->pidx[rank],
                                      use_prob(m, s->ps[(size_t)t * E + s->pidx[rank]]));
        }
}

static void late_lookahead(mf_model *m, uint32_t layer, uint32_t n, uint32_t total);

/* Token routes (combined, images profiled with MF_SEC_TOKEN_ROUTES): at the
 * chunk start, each token's top_k likeliest experts of every later layer by
 * the table alone, offered as prefetches, the likeliest first (the store
 * admits each only when it pays for its victim). The input token alone
 * names layer l's experts about as well as the router one layer back
 * (top-2 recall 0.80 / 0.73 / 0.73 at layers 1-3 on 13,000 validation
 * tokens, lookahead 0.72 / 0.73 / 0.79), and a whole token earlier, so
 * the read has layers of compute to hide behind instead of one attention.
 *
 * Measured (bench, tiny model, mcu-qspi, edgemoe + combined, 1024
 * validation tokens, images profiled as `make bench` does): f32 image
 * 12.5 / 25 / 50 % expert RAM 29.60 -> 30.21, 49.43 -> 50.06, 115.73 ->
 * 117.07 tokens/s; q4/q8 image 153.57 -> 157.52, 191.97 -> 193.81,
 * 248.13 -> 248.90. With a table from 30,000 training tokens the whole
 * gave 30.53 / 50.39 / 116.56 (f32), the far-lookahead update alone (no
 * prefetch) 29.99 / 49.83 / 116.06, and it with the prefetch for layer 1
 * only 30.45 / 50.04 / 116.15. Only with EdgeMoE (the store loads the
 * table for it alone): under LFU it moved tokens/s by +0.4 / +0.6 % at
 * 12.5 / 25 %, under LRU by -1.2 / +1.8 %.
 *
 * top_k candidates per layer, not one: on small-qwen3-moe-bpe (top-4 of 32
 * experts, 6 layers, f32, 1024 validation tokens at two offsets) 15.50 ->
 * 15.61, 26.46 -> 27.19, 55.58 -> 56.73 and 15.93 -> 16.01, 27.14 ->
 * 27.70, 55.77 -> 56.81 tokens/s at 12.5 / 25 / 50 %; on the tiny model
 * (top-2) -0.1 to +0.05 %. */
static void predict_token_routes(mf_model *m, uint32_t n)
{
    mf_expert_store *s = &m->store;
    uint32_t E = m->h.n_experts;
    for (uint32_t j = 1; j < m->h.n_layers; j++) {
        for (uint32_t t = 0; t < n; t++)
            for (uint32_t e = 0; e < E; e++)
                s->ps[(size_t)t * E + e] = route_p(s, t, j, e) / (float)m->h.top_k;
        prefetch_top(m, j, n, m->h.top_k);
    }
}

/* A draw in [0, 1) from the oracle's generator. */
static float oracle_draw(mf_expert_store *s)
{
    s->oracle_rng = s->oracle_rng * 1664525u + 1013904223u;
    return (float)(s->oracle_rng >> 8) * (1.0f / 16777216.0f);
}

/* MF_PREDICT_ORACLE: the experts the recorded trace says `layer` chooses
 * for each token of the chunk, each replaced at the rate
 * opt.oracle_miss_rate by a uniformly drawn expert outside the token's row
 * (a wrong guess that costs what a predictor's would). A reference for the
 * predictors: what a perfect next-layer guess, or one right at a given
 * rate, would buy with the same slots and policy (docs/expert-cache.md). */
static void predict_oracle(mf_model *m, uint32_t layer)
{
    mf_expert_store *s = &m->store;
    uint32_t L = m->h.n_layers, E = m->h.n_experts, k = m->h.top_k;
    for (uint32_t t = 0; t < s->n_chunk; t++) {
        uint64_t p = (uint64_t)s->token + t;
        if (!s->future || p >= s->future_n) return;
        const uint16_t *row = s->future + (p * L + layer) * k;
        for (uint32_t j = 0; j < k; j++) {
            uint32_t e = row[j];
            if (s->oracle_miss_rate > 0.0f && oracle_draw(s) < s->oracle_miss_rate) {
                uint32_t outside = 0;
                for (uint32_t c = 0; c < E; c++) outside += !in_row16(row, k, c);
                if (!outside) continue;
                uint32_t pick = (uint32_t)(oracle_draw(s) * (float)outside);
                if (pick >= outside) pick = outside - 1u;
                for (e = 0; e < E; e++)
                    if (!in_row16(row, k, e) && pick-- == 0) break;
            }
            (void)mf_store_prefetch(s, layer, e);
        }
    }
}

static void predict_layer0(mf_model *m, uint32_t n)
{
    mf_expert_store *s = &m->store;
    uint32_t E = m->h.n_experts;
    switch (s->predictor) {
    case MF_PREDICT_LOOKAHEAD:
    case MF_PREDICT_COMBINED:
        late_lookahead(m, 0, n, s->prefetch_budget);
        far_lookahead(m, 1, n);
        if (s->troutes) predict_token_routes(m, n);
        break;
    case MF_PREDICT_COOC:
        for (uint32_t e = 0; e < E; e++)
            s->ps[e] = (float)s->prof.freq[e] / ((float)s->prof.tokens + 1.0f) / (float)m->h.top_k;
        prefetch_top(m, 0, 1, s->prefetch_budget);
        break;
    case MF_PREDICT_ORACLE: predict_oracle(m, 0); break;
    default: break;
    }
}

void mf_predict_chunk_start(mf_model *m, const uint32_t *tokens, uint32_t n)
{
    m->store.chunk_tokens = tokens;
    mf_store_chunk_start(&m->store, n);
    if (m->store.predictor != MF_PREDICT_NONE) predict_layer0(m, n);
}

void mf_predict_routed(mf_model *m, uint32_t l, uint32_t n)
{
    mf_expert_store *s = &m->store;
    const mf_image_header *h = &m->h;
    uint32_t E = h->n_experts, k = h->top_k;
    /* the chosen set of this chunk (the router's scores are free now) */
    uint8_t chosen_buf[256];
    uint8_t *chosen = E <= sizeof chosen_buf ? chosen_buf : (uint8_t *)m->router;
    memset(chosen, 0, E);
    for (size_t i = 0; i < (size_t)n * k; i++) chosen[m->topk_idx[i]] = 1;
    mf_store_routed(s, l, chosen);

    if (s->predictor == MF_PREDICT_NONE || l + 1 >= h->n_layers) goto keep;
    switch (s->predictor) {
    case MF_PREDICT_COOC:
        for (uint32_t t = 0; t < n; t++) {
            float *row = s->ps + (size_t)t * E;
            memset(row, 0, sizeof(float) * E);
            add_cooc(m, l + 1, m->topk_idx + (size_t)t * k,
                     l >= 1 ? s->prev_topk + (size_t)t * k : NULL, row, 1.0f);
        }
        prefetch_top(m, l + 1, n, s->prefetch_budget);
        break;
    case MF_PREDICT_COMBINED: {
        /* stage A: early, from the residual after this layer's attention;
         * the learned lookahead when the image has one (it replaces the
         * router and the co-occurrence mix: docs/expert-cache.md, lever 11) */
        if (s->la_w) {
            learned_probs(m, l, m->x, n);
            uint32_t a = s->prefetch_budget / 2u;
            prefetch_top(m, l + 1, n, a ? a : 1u);
            break;
        }
        lookahead_probs(m, l + 1, m->x, n);
        if (s->have_profile)
            for (uint32_t t = 0; t < n; t++)
                add_cooc(m, l + 1, m->topk_idx + (size_t)t * k,
                         l >= 1 ? s->prev_topk + (size_t)t * k : NULL, s->ps + (size_t)t * E,
                         0.5f);
        uint32_t a = s->prefetch_budget / 2u;
        prefetch_top(m, l + 1, n, a ? a : 1u);
        break;
    }
    case MF_PREDICT_ORACLE: predict_oracle(m, l + 1); break;
    default: break;
    }
keep:
    if (s->prev_topk) memcpy(s->prev_topk, m->topk_idx, sizeof(uint32_t) * (size_t)n * k);
}

/* Experts of `layer` predicted so far in this chunk. */
static uint32_t n_predicted(const mf_expert_store *s, uint32_t layer)
{
    uint32_t c = 0, E = s->h->n_experts;
    for (uint32_t e = 0; e < E; e++) c += s->predicted[(size_t)layer * E + e] != 0;
    return c;
}

/* Late lookahead for layer `layer` from m->x, topping the layer's predicted
 * set up to `total` experts per token (rank by rank across the tokens). */
static void late_lookahead(mf_model *m, uint32_t layer, uint32_t n, uint32_t total)
{
    mf_expert_store *s = &m->store;
    uint32_t E = m->h.n_experts;
    lookahead_probs(m, layer, m->x, n);
    if (s->predictor == MF_PREDICT_COMBINED && s->have_profile && layer >= 1)
        for (uint32_t t = 0; t < n; t++)
            add_cooc(m, layer, m->topk_idx + (size_t)t * m->h.top_k, NULL, s->ps + (size_t)t * E,
                     COMBINED_LATE_COOC);
    uint64_t cap = (uint64_t)total * n;
    publish_probs(m, layer, n);
    for (uint32_t rank = 0; rank < E; rank++)
        for (uint32_t t = 0; t < n; t++) {
            if (n_predicted(s, layer) >= cap) return;
            mf_topk(s->ps + (size_t)t * E, E, rank + 1, s->pidx);
            if (rank > 0 && s->ps[(size_t)t * E + s->pidx[rank]] < s->min_prob) continue;
            (void)mf_store_prefetch_p(s, layer, s->pidx[rank],
                                      use_prob(m, s->ps[(size_t)t * E + s->pidx[rank]]));
        }
}

void mf_predict_layer_done(mf_model *m, uint32_t l, uint32_t n)
{
    mf_expert_store *s = &m->store;
    mf_store_layer_done(s, l);
    if ((s->predictor == MF_PREDICT_COMBINED || s->predictor == MF_PREDICT_LOOKAHEAD) &&
        l + 1 < m->h.n_layers) {
        late_lookahead(m, l + 1, n, s->prefetch_budget);
        far_lookahead(m, l + 2, n);
    }
    if (l + 1 == m->h.n_layers) mf_store_chunk_done(s, n);
}
