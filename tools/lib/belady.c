/* Offline cache replay over a routing trace: Belady's MIN, LRU, LFU and
 * the horizon oracles (belady.h). */
#include "belady.h"

#include <stdlib.h>
#include <string.h>

/* The access sequence; step_start (may be NULL) receives the index of the
 * first key of every step (chunk, layer). */
static long build_sequence(const uint32_t *ids, uint32_t npos, uint32_t n_layers, uint32_t k,
                           uint32_t n_experts, uint32_t batch, uint32_t *keys, size_t cap,
                           size_t *step_start)
{
    if ((!ids && npos) || !n_layers || !k || !n_experts || !batch) return -1;
    unsigned char *mark = calloc(n_experts, 1);
    if (!mark) return -1;
    size_t n = 0, st = 0;
    for (uint32_t c = 0; c < npos; c += batch) {
        uint32_t end = npos - c < batch ? npos : c + batch;
        for (uint32_t l = 0; l < n_layers; l++) {
            if (step_start) step_start[st] = n;
            st++;
            memset(mark, 0, n_experts);
            for (uint32_t t = c; t < end; t++)
                for (uint32_t j = 0; j < k; j++) {
                    uint32_t e = ids[((size_t)t * n_layers + l) * k + j];
                    if (e >= n_experts) {
                        free(mark);
                        return -1;
                    }
                    mark[e] = 1;
                }
            for (uint32_t e = 0; e < n_experts; e++)
                if (mark[e]) {
                    if (n < cap) keys[n] = l * n_experts + e;
                    n++;
                }
        }
    }
    if (step_start) step_start[st] = n;
    free(mark);
    return (long)n;
}

long mf_replay_sequence(const uint32_t *ids, uint32_t npos, uint32_t n_layers, uint32_t k,
                        uint32_t n_experts, uint32_t batch, uint32_t *keys, size_t cap)
{
    return build_sequence(ids, npos, n_layers, k, n_experts, batch, keys, cap, NULL);
}

int mf_replay(int policy, const uint32_t *ids, uint32_t npos, uint32_t n_layers, uint32_t k,
              uint32_t n_experts, uint32_t batch, uint32_t slots, const uint64_t *expert_bytes,
              uint32_t *miss_count, mf_replay_result *out)
{
    if (!out || !slots || policy < MF_REPLAY_BELADY || policy > MF_REPLAY_ORACLE_NEXT) return -1;
    memset(out, 0, sizeof *out);
    long n = mf_replay_sequence(ids, npos, n_layers, k, n_experts, batch, NULL, 0);
    if (n < 0) return -1;
    size_t N = (size_t)n, K = (size_t)n_layers * n_experts;
    size_t n_chunks = npos ? ((size_t)npos + batch - 1) / batch : 0, S = n_chunks * n_layers;
    uint32_t *seq = malloc(sizeof *seq * (N ? N : 1));
    size_t *step_start = malloc(sizeof *step_start * (S + 1));
    size_t *next = malloc(sizeof *next * (N ? N : 1)); /* step of the key's next access */
    size_t *last = malloc(sizeof *last * K);
    int32_t *where = malloc(sizeof *where * K);
    uint64_t *count = calloc(K, sizeof *count);
    uint32_t *skey = malloc(sizeof *skey * slots);
    size_t *snext = malloc(sizeof *snext * slots); /* next step using the slot's expert */
    uint64_t *sprev = malloc(sizeof *sprev * slots); /* tick of its last use */
    uint8_t *hit = calloc(N ? N : 1, 1);                /* access i was a hit */
    int rc = -1;
    if (!seq || !step_start || !next || !last || !where || !count || !skey || !snext || !sprev ||
        !hit)
        goto done;
    build_sequence(ids, npos, n_layers, k, n_experts, batch, seq, N, step_start);
    for (size_t x = 0; x < K; x++) last[x] = S;
    for (size_t st = S; st-- > 0;)
        for (size_t i = step_start[st]; i < step_start[st + 1]; i++) {
            next[i] = last[seq[i]];
            last[seq[i]] = st;
        }
    for (size_t x = 0; x < K; x++) where[x] = -1;
    if (miss_count) memset(miss_count, 0, sizeof *miss_count * K);
    uint32_t used = 0;
    uint64_t tick = 0;
    const size_t ahead = policy == MF_REPLAY_ORACLE_NEXT ? 1 : 0;
    for (size_t st = 0; st < S; st++) {
        /* The forward pass computes cached experts first (model.c), so a
         * step's hits are used before any of its misses can evict them. */
        for (size_t i = step_start[st]; i < step_start[st + 1]; i++) {
            uint32_t key = seq[i];
            if (where[key] < 0) continue;
            hit[i] = 1;
            out->accesses++;
            out->hits++;
            count[key]++;
            snext[where[key]] = next[i];
            sprev[where[key]] = ++tick;
        }
        size_t horizon = (st / n_layers + 1 + ahead) * n_layers; /* first step not known */
        for (size_t i = step_start[st]; i < step_start[st + 1]; i++) {
            uint32_t key = seq[i];
            if (hit[i]) continue;
            out->accesses++;
            out->misses++;
            count[key]++;
            if (expert_bytes) out->bytes += expert_bytes[key];
            if (miss_count) miss_count[key]++;
            uint32_t s;
            if (used < slots) {
                s = used++;
            } else {
                s = 0; /* the victim; first on ties */
                for (uint32_t j = 1; j < slots; j++) {
                    int worse; /* slot j goes before slot s */
                    switch (policy) {
                    case MF_REPLAY_BELADY: /* ties: least recently used, as policy.c */
                        worse = snext[j] > snext[s] || (snext[j] == snext[s] && sprev[j] < sprev[s]);
                        break;
                    case MF_REPLAY_LRU: worse = sprev[j] < sprev[s]; break;
                    default: {
                        int kj = policy != MF_REPLAY_LFU && snext[j] < horizon;
                        int ks = policy != MF_REPLAY_LFU && snext[s] < horizon;
                        uint64_t cj = count[skey[j]], cs = count[skey[s]];
                        if (kj != ks) worse = ks;
                        else if (kj) worse = snext[j] > snext[s];
                        else if (cj != cs) worse = cj < cs;
                        else worse = sprev[j] < sprev[s];
                        break;
                    }
                    }
                    if (worse) s = j;
                }
                where[skey[s]] = -1;
            }
            skey[s] = key;
            snext[s] = next[i];
            sprev[s] = ++tick;
            where[key] = (int32_t)s;
        }
    }
    rc = 0;
done:
    free(seq);
    free(step_start);
    free(next);
    free(last);
    free(where);
    free(count);
    free(skey);
    free(snext);
    free(sprev);
    free(hit);
    return rc;
}
