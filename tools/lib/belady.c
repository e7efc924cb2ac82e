/* Offline cache replay over a routing trace: Belady's MIN, LRU, LFU and
 * the horizon oracles (belady.h). */
#include "belady.h"

#include <stdlib.h>
#include <string.h>

long mf_replay_sequence(const uint32_t *ids, uint32_t npos, uint32_t n_layers, uint32_t k,
                        uint32_t n_experts, uint32_t batch, uint32_t *keys, size_t cap)
{
    if ((!ids && npos) || !n_layers || !k || !n_experts || !batch) return -1;
    unsigned char *mark = calloc(n_experts, 1);
    if (!mark) return -1;
    size_t n = 0;
    for (uint32_t c = 0; c < npos; c += batch) {
        uint32_t end = npos - c < batch ? npos : c + batch;
        for (uint32_t l = 0; l < n_layers; l++) {
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
    free(mark);
    return (long)n;
}

/* horizon[i]: index of the first access after the chunk of access i
 * (ahead = 0) or after the chunk that follows it (ahead = 1). */
static int chunk_horizons(const uint32_t *ids, uint32_t npos, uint32_t n_layers, uint32_t k,
                          uint32_t n_experts, uint32_t batch, uint32_t ahead, size_t *horizon,
                          size_t N)
{
    size_t i = 0;
    for (uint32_t c = 0; c < npos; c += batch) {
        uint32_t len = npos - c < batch ? npos - c : batch;
        long n = mf_replay_sequence(ids + (size_t)c * n_layers * k, len, n_layers, k, n_experts,
                                    batch, NULL, 0);
        if (n < 0) return -1;
        size_t end = i + (size_t)n;
        for (uint32_t a = 0; a < ahead && (size_t)c + (size_t)(a + 1) * batch < npos; a++) {
            uint32_t c2 = c + (a + 1) * batch;
            uint32_t len2 = npos - c2 < batch ? npos - c2 : batch;
            long n2 = mf_replay_sequence(ids + (size_t)c2 * n_layers * k, len2, n_layers, k,
                                         n_experts, batch, NULL, 0);
            if (n2 < 0) return -1;
            end += (size_t)n2;
        }
        for (size_t j = i; j < i + (size_t)n && j < N; j++) horizon[j] = end;
        i += (size_t)n;
    }
    return 0;
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
    uint32_t *seq = malloc(sizeof *seq * (N ? N : 1));
    size_t *next = malloc(sizeof *next * (N ? N : 1));
    size_t *horizon = malloc(sizeof *horizon * (N ? N : 1));
    size_t *last = malloc(sizeof *last * K);
    int32_t *where = malloc(sizeof *where * K);
    uint64_t *count = calloc(K, sizeof *count);
    uint32_t *skey = malloc(sizeof *skey * slots);
    size_t *snext = malloc(sizeof *snext * slots); /* next use of the slot's expert */
    size_t *sprev = malloc(sizeof *sprev * slots); /* last use */
    int rc = -1;
    if (!seq || !next || !horizon || !last || !where || !count || !skey || !snext || !sprev)
        goto done;
    mf_replay_sequence(ids, npos, n_layers, k, n_experts, batch, seq, N);
    if (policy == MF_REPLAY_ORACLE_CHUNK || policy == MF_REPLAY_ORACLE_NEXT) {
        if (chunk_horizons(ids, npos, n_layers, k, n_experts, batch,
                           policy == MF_REPLAY_ORACLE_NEXT ? 1u : 0u, horizon, N))
            goto done;
    }
    /* next[i]: index of the next access to seq[i], N when none. */
    for (size_t x = 0; x < K; x++) last[x] = N;
    for (size_t i = N; i-- > 0;) {
        next[i] = last[seq[i]];
        last[seq[i]] = i;
    }
    for (size_t x = 0; x < K; x++) where[x] = -1;
    if (miss_count) memset(miss_count, 0, sizeof *miss_count * K);
    uint32_t used = 0;
    for (size_t i = 0; i < N; i++) {
        uint32_t key = seq[i];
        out->accesses++;
        count[key]++;
        if (where[key] >= 0) {
            out->hits++;
            snext[where[key]] = next[i];
            sprev[where[key]] = i;
            continue;
        }
        out->misses++;
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
                case MF_REPLAY_BELADY: worse = snext[j] > snext[s]; break;
                case MF_REPLAY_LRU: worse = sprev[j] < sprev[s]; break;
                default: {
                    int kj = policy != MF_REPLAY_LFU && snext[j] < horizon[i];
                    int ks = policy != MF_REPLAY_LFU && snext[s] < horizon[i];
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
        sprev[s] = i;
        where[key] = (int32_t)s;
    }
    rc = 0;
done:
    free(seq);
    free(next);
    free(horizon);
    free(last);
    free(where);
    free(count);
    free(skey);
    free(snext);
    free(sprev);
    return rc;
}
