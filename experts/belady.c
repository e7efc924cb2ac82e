/*
 * Belady's optimal policy needs the future: the experts every layer will
 * choose for every coming token, recorded by an earlier run (the route
 * observer, `moeflash trace`, or bench's --trace-out) and handed over with
 * mf_set_future_trace(). The next use of an expert is counted in steps of
 * token * n_layers + layer from the token the trace was set at.
 */
#include <stdint.h>

#include "../runtime/model.h"
#include "store.h"

static int in_row(const uint16_t *row, uint32_t k, uint32_t expert)
{
    for (uint32_t j = 0; j < k; j++)
        if (row[j] == expert) return 1;
    return 0;
}

uint64_t mf_belady_next_use(const mf_expert_store *s, uint32_t layer, uint32_t expert)
{
    if (!s->future) return UINT64_MAX;
    const uint32_t L = s->h->n_layers, k = s->h->top_k;
    uint64_t t0 = s->token, t1 = (uint64_t)s->token + s->n_chunk;
    if (layer > s->layer)
        for (uint64_t p = t0; p < t1 && p < s->future_n; p++)
            if (in_row(s->future + (p * L + layer) * k, k, expert)) return t0 * L + layer;
    for (uint64_t p = t1; p < s->future_n; p++)
        if (in_row(s->future + (p * L + layer) * k, k, expert)) return p * L + layer;
    return UINT64_MAX;
}

int mf_set_future_trace(mf_model *m, const uint16_t *ids, uint32_t npos)
{
    if (!m || (!ids && npos)) return MF_E_ARG;
    m->store.future = npos ? ids : NULL;
    m->store.future_n = npos;
    m->store.token = 0;
    return MF_OK;
}
