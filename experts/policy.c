/*
 * Eviction policies: which slot a new read may reuse (store.h).
 *
 * Never a candidate: a slot with a read in flight (LOADING), a slot pinned
 * by get(), a hot expert (opt.pin_experts). An EMPTY slot is always taken
 * first. Among READY slots, the experts the current layer has chosen and
 * not used yet are kept while another candidate exists (a prediction never
 * evicts them, nor another prediction not yet used). Then, lowest first:
 *
 *   LRU      last use (tick)
 *   LFU      number of uses since init, then last use
 *   EDGEMOE  f / d: f = uses + 1, d = layers until the expert's layer runs
 *            again, ((i - I - 1) mod S) + 1 for an expert of layer i when
 *            the current layer is I of S (the next layer: d = 1; the
 *            current one: d = S). Frequency weighted by layer distance, as
 *            in EdgeMoE: an expert of a layer that has just run is not
 *            needed for almost a whole token and goes first unless it is
 *            much more frequent. (The issue writes the score as
 *            -f/((S - i + I) mod S) with the opposite sign convention; see
 *            docs/expert-cache.md.)
 *   BELADY   farthest next use in the recorded future (belady.c); a
 *            prediction only evicts an expert needed later than itself
 *   NONE     as LRU (the store empties other layers' slots itself)
 */
#include <stdint.h>

#include "store.h"

static double edgemoe_keep(const mf_expert_store *s, const mf_store_slot *sl)
{
    uint32_t S = s->h->n_layers, I = s->layer, i = (uint32_t)sl->layer;
    uint32_t d = ((i + S - I - 1u) % S) + 1u;
    double f = (double)s->uses[(size_t)i * s->h->n_experts + (size_t)sl->expert] + 1.0;
    return f / (double)d;
}

/* Estimated probability per chunk that expert idx is chosen: its uses per
 * chunk so far (decayed by MF_FREQ_DECAY per chunk when the store keeps
 * ufreq, i.e. with a predictor), with the profile's frequency (or k/E) as a prior worth 8
 * chunks. */
static double est_q(const mf_expert_store *s, size_t idx)
{
    const uint32_t E = s->h->n_experts, k = s->h->top_k;
    double q0 = (double)k / (double)E;
    if (s->have_profile && s->prof.tokens)
        q0 = ((double)s->prof.freq[idx] + 1.0) / ((double)s->prof.tokens + (double)E / k);
    const double a = 8.0;
    double q = s->ufreq ? ((double)s->ufreq[idx] + a * q0) /
                              ((double)s->uweight[idx / E] + a)
                        : ((double)s->uses[idx] + a * q0) / ((double)s->epoch + a);
    if (q > 1.0) q = 1.0;
    if (q < 1e-4) q = 1e-4;
    return q;
}

double mf_policy_expected_next(const mf_expert_store *s, uint32_t layer, uint32_t expert)
{
    const uint32_t S = s->h->n_layers, E = s->h->n_experts;
    /* before the current layer routes, it is the next to run */
    uint32_t I = s->routed_cur ? s->layer : (s->layer + S - 1u) % S;
    uint32_t d = ((layer + S - I - 1u) % S) + 1u;
    size_t idx = (size_t)layer * E + expert;
    double q = est_q(s, idx);
    double p = q;
    if (s->lprob && s->lvalid[layer]) {
        p = s->lprob[idx];
        if (p > 1.0) p = 1.0;
    }
    return (double)d + (double)S * (1.0 - p) / q;
}

/* EdgeMoE with a predictor: the victim is the expert with the farthest
 * expected next use (mf_policy_expected_next), an approximate Belady. */
static int predictive(const mf_expert_store *s)
{
    return s->policy == MF_POLICY_EDGEMOE && s->predictor != MF_PREDICT_NONE && s->lprob;
}

/* 1 when slot a should be evicted before slot b. */
static int before(const mf_expert_store *s, const mf_store_slot *a, uint64_t na,
                  const mf_store_slot *b, uint64_t nb)
{
    switch (s->policy) {
    case MF_POLICY_LFU: {
        uint32_t ua = s->uses[(size_t)a->layer * s->h->n_experts + (size_t)a->expert];
        uint32_t ub = s->uses[(size_t)b->layer * s->h->n_experts + (size_t)b->expert];
        if (ua != ub) return ua < ub;
        break;
    }
    case MF_POLICY_EDGEMOE: {
        if (predictive(s)) {
            double da = mf_policy_expected_next(s, (uint32_t)a->layer, (uint32_t)a->expert);
            double db = mf_policy_expected_next(s, (uint32_t)b->layer, (uint32_t)b->expert);
            if (da != db) return da > db;
            break;
        }
        double ka = edgemoe_keep(s, a), kb = edgemoe_keep(s, b);
        if (ka != kb) return ka < kb;
        break;
    }
    case MF_POLICY_BELADY:
        if (na != nb) return na > nb;
        break;
    default: break;
    }
    return a->last_use < b->last_use;
}

int mf_policy_victim(mf_expert_store *s, uint32_t layer, uint32_t expert, int prefetch)
{
    const uint32_t E = s->h->n_experts;
    int best = -1, best_prot = -1;
    uint64_t nbest = 0, nbest_prot = 0;
    int belady = s->policy == MF_POLICY_BELADY && s->future;
    for (uint32_t i = 0; i < s->n_slots; i++) {
        mf_store_slot *sl = &s->slots[i];
        if (sl->state == MF_SLOT_EMPTY) return (int)i;
        if (sl->state != MF_SLOT_READY || sl->pins) continue;
        size_t idx = (size_t)sl->layer * E + (size_t)sl->expert;
        if (s->hot[idx]) continue;
        int prot = sl->prefetched || sl->demand ||
                   (sl->layer == (int32_t)s->layer && s->chosen[idx] &&
                    sl->used_epoch != s->epoch);
        uint64_t nu = belady ? mf_belady_next_use(s, (uint32_t)sl->layer, (uint32_t)sl->expert) : 0;
        if (prot) {
            if (prefetch) continue;
            if (best_prot < 0 || before(s, sl, nu, &s->slots[best_prot], nbest_prot)) {
                best_prot = (int)i;
                nbest_prot = nu;
            }
            continue;
        }
        if (best < 0 || before(s, sl, nu, &s->slots[best], nbest)) {
            best = (int)i;
            nbest = nu;
        }
    }
    if (best >= 0 && prefetch && belady &&
        nbest <= mf_belady_next_use(s, layer, expert))
        return -1; /* everything held is needed sooner than this prediction */
    if (best >= 0 && prefetch && s->pf_prob > 0.0f && predictive(s)) {
        /* admission: the victim must be expected later than the prediction */
        const uint32_t S = s->h->n_layers;
        uint32_t I = s->routed_cur ? s->layer : (s->layer + S - 1u) % S;
        double dc = (double)(((layer + S - I - 1u) % S) + 1u);
        double p = s->pf_prob > 1.0f ? 1.0 : (double)s->pf_prob;
        const mf_store_slot *v = &s->slots[best];
        double dv = mf_policy_expected_next(s, (uint32_t)v->layer, (uint32_t)v->expert);
        double q = est_q(s, (size_t)layer * s->h->n_experts + expert);
        if (dv <= dc + (double)S * (1.0 - p) / q) return -1;
    }
    (void)layer;
    (void)expert;
    return best >= 0 ? best : best_prot;
}
