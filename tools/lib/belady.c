/* Offline cache replay: Belady's MIN and LRU over a routing trace. */
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

int mf_replay(int policy, const uint32_t *ids, uint32_t npos, uint32_t n_layers, uint32_t k,
              uint32_t n_experts, uint32_t batch, uint32_t slots, const uint64_t *expert_bytes,
              uint32_t *miss_count, mf_replay_result *out)
{
    if (!out || !slots || (policy != MF_REPLAY_BELADY && policy != MF_REPLAY_LRU)) return -1;
    memset(out, 0, sizeof *out);
    long n = mf_replay_sequence(ids, npos, n_layers, k, n_experts, batch, NULL, 0);
    if (n < 0) return -1;
    size_t N = (size_t)n, K = (size_t)n_layers * n_experts;
    uint32_t *seq = malloc(sizeof *seq * (N ? N : 1));
    size_t *next = malloc(sizeof *next * (N ? N : 1));
    size_t *last = malloc(sizeof *last * K);
    int32_t *where = malloc(sizeof *where * K);
    uint32_t *skey = malloc(sizeof *skey * slots);
    size_t *sval = malloc(sizeof *sval * slots); /* Belady: next use; LRU: last use */
    int rc = -1;
    if (!seq || !next || !last || !where || !skey || !sval) goto done;
    mf_replay_sequence(ids, npos, n_layers, k, n_experts, batch, seq, N);
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
        size_t val = policy == MF_REPLAY_BELADY ? next[i] : i;
        out->accesses++;
        if (where[key] >= 0) {
            out->hits++;
            sval[where[key]] = val;
            continue;
        }
        out->misses++;
        if (expert_bytes) out->bytes += expert_bytes[key];
        if (miss_count) miss_count[key]++;
        uint32_t s;
        if (used < slots) {
            s = used++;
        } else {
            s = 0; /* Belady: farthest next use; LRU: least recent (first on ties) */
            for (uint32_t j = 1; j < slots; j++)
                if (policy == MF_REPLAY_BELADY ? sval[j] > sval[s] : sval[j] < sval[s]) s = j;
            where[skey[s]] = -1;
        }
        skey[s] = key;
        sval[s] = val;
        where[key] = (int32_t)s;
    }
    rc = 0;
done:
    free(seq);
    free(next);
    free(last);
    free(where);
    free(skey);
    free(sval);
    return rc;
}
