/* tests/test_belady: the offline cache replay (tools/lib/belady.c) against
 * hand-worked sequences and an exhaustive search for the optimal eviction
 * schedule on small random traces. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../tools/lib/belady.h"
#include "harness.h"

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint32_t rnd(uint32_t n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng % n);
}

/* Minimum misses of a flat sequence with `slots` slots, by exhaustive
 * search over every eviction choice (memoised on position and cache set). */
static int popcount(unsigned x)
{
    int n = 0;
    for (; x; x &= x - 1) n++;
    return n;
}

#define MAXN 16
#define MAXI 8
static int memo[MAXN + 1][1 << MAXI];
static int opt_rec(const uint32_t *seq, int n, int i, unsigned set, int slots)
{
    if (i == n) return 0;
    if (memo[i][set] >= 0) return memo[i][set];
    unsigned bit = 1u << seq[i];
    int best;
    if (set & bit) {
        best = opt_rec(seq, n, i + 1, set, slots);
    } else if (popcount(set) < slots) {
        best = 1 + opt_rec(seq, n, i + 1, set | bit, slots);
    } else {
        best = 1 << 30;
        for (int v = 0; v < MAXI; v++)
            if (set & (1u << v)) {
                int r = 1 + opt_rec(seq, n, i + 1, (set & ~(1u << v)) | bit, slots);
                if (r < best) best = r;
            }
    }
    return memo[i][set] = best;
}
static int optimal_misses(const uint32_t *seq, int n, int slots)
{
    memset(memo, -1, sizeof memo);
    return opt_rec(seq, n, 0, 0, slots);
}

static void hand_cases(void)
{
    mf_replay_result r;
    /* A B C A B, 2 slots: Belady evicts B at C (A is needed sooner), then
     * misses B: 4 misses. LRU evicts A at C, B at A, then misses B: 5. */
    const uint32_t s1[] = {0, 1, 2, 0, 1};
    CHECK(mf_replay(MF_REPLAY_BELADY, s1, 5, 1, 1, 3, 1, 2, NULL, NULL, &r) == 0, "rc");
    CHECK(r.misses == 4 && r.hits == 1 && r.accesses == 5, "belady %llu/%llu",
          (unsigned long long)r.misses, (unsigned long long)r.hits);
    CHECK(mf_replay(MF_REPLAY_LRU, s1, 5, 1, 1, 3, 1, 2, NULL, NULL, &r) == 0, "rc");
    CHECK(r.misses == 5 && r.hits == 0, "lru %llu", (unsigned long long)r.misses);
    /* A A B C B, 2 slots. LFU evicts B (1 use) for C, then C for B: 4
     * misses. ORACLE_CHUNK knows only the current token (one access here):
     * the same 4. ORACLE_NEXT sees B coming at C and evicts A: 3. */
    const uint32_t s4[] = {0, 0, 1, 2, 1};
    CHECK(mf_replay(MF_REPLAY_LFU, s4, 5, 1, 1, 3, 1, 2, NULL, NULL, &r) == 0 && r.misses == 4,
          "lfu %llu", (unsigned long long)r.misses);
    CHECK(mf_replay(MF_REPLAY_ORACLE_CHUNK, s4, 5, 1, 1, 3, 1, 2, NULL, NULL, &r) == 0 &&
              r.misses == 4,
          "oracle chunk %llu", (unsigned long long)r.misses);
    CHECK(mf_replay(MF_REPLAY_ORACLE_NEXT, s4, 5, 1, 1, 3, 1, 2, NULL, NULL, &r) == 0 &&
              r.misses == 3,
          "oracle next %llu", (unsigned long long)r.misses);
    CHECK(mf_replay(MF_REPLAY_LRU, s4, 5, 1, 1, 3, 1, 2, NULL, NULL, &r) == 0 && r.misses == 3,
          "lru %llu", (unsigned long long)r.misses);
    /* Two layers, one token per chunk: at token 1 layer 0 (expert 2 of
     * layer 0 = key 2), ORACLE_CHUNK knows layer 1 of this token wants
     * key 3+0 and keeps it. Trace: t0: L0 e0, L1 e0; t1: L0 e2, L1 e0. */
    const uint32_t s5[] = {0, 0, 2, 0};
    CHECK(mf_replay(MF_REPLAY_ORACLE_CHUNK, s5, 2, 2, 1, 3, 1, 2, NULL, NULL, &r) == 0 &&
              r.misses == 3,
          "oracle chunk keeps this token's next layer: %llu", (unsigned long long)r.misses);
    /* Belady's ties go to the least recently used (as policy.c). k = 2, 3
     * slots: t0 {0,1} t1 {2} t2 {3} t3 {2} t4 {0,1}. At t2, 0 and 1 are both
     * next needed at t4 (2 at t3): 0, used before 1, is evicted, so t4
     * misses 0 and hits 1. */
    {
        const uint32_t s6[] = {0, 1, 2, 2, 3, 3, 2, 2, 0, 1};
        uint32_t mc6[5];
        CHECK(mf_replay(MF_REPLAY_BELADY, s6, 5, 1, 2, 5, 1, 3, NULL, mc6, &r) == 0 &&
                  r.misses == 5 && r.hits == 2,
              "tie case: %llu misses", (unsigned long long)r.misses);
        CHECK(mc6[0] == 2 && mc6[1] == 1 && mc6[2] == 1 && mc6[3] == 1,
              "Belady tie: the least recently used goes (misses of 0: %u, of 1: %u)", mc6[0], mc6[1]);
    }
    /* Enough slots: only compulsory misses. */
    CHECK(mf_replay(MF_REPLAY_BELADY, s1, 5, 1, 1, 3, 1, 3, NULL, NULL, &r) == 0 && r.misses == 3,
          "compulsory %llu", (unsigned long long)r.misses);
    /* One slot: every change of expert is a miss. */
    const uint32_t s2[] = {1, 1, 2, 2, 1, 0, 0};
    CHECK(mf_replay(MF_REPLAY_BELADY, s2, 7, 1, 1, 3, 1, 1, NULL, NULL, &r) == 0 && r.misses == 4,
          "one slot %llu", (unsigned long long)r.misses);

    /* Layers and top-k: 2 tokens, 2 layers, k = 2, 3 experts per layer.
     * Keys are layer*3+expert; with 4 slots Belady only misses compulsorily:
     * t0: l0 {0,1} l1 {0,2}; t1: l0 {1,2} l1 {0,2} -> distinct keys
     * {0,1,3,5,2} = 5 misses, 3 hits. */
    const uint32_t s3[] = {1, 0, 2, 0, 2, 1, 0, 2};
    uint64_t bytes[6] = {10, 20, 30, 40, 50, 60};
    uint32_t mc[6];
    CHECK(mf_replay(MF_REPLAY_BELADY, s3, 2, 2, 2, 3, 1, 5, bytes, mc, &r) == 0, "rc");
    CHECK(r.accesses == 8 && r.misses == 5 && r.hits == 3, "k=2 %llu %llu",
          (unsigned long long)r.accesses, (unsigned long long)r.misses);
    CHECK(r.bytes == 10 + 20 + 30 + 40 + 60, "bytes %llu", (unsigned long long)r.bytes);
    CHECK(mc[0] == 1 && mc[1] == 1 && mc[2] == 1 && mc[3] == 1 && mc[4] == 0 && mc[5] == 1,
          "miss counts");
    /* batch = 2: one chunk; per layer the union of both tokens, each expert
     * once: l0 {0,1,2}, l1 {0,2} = 5 accesses, all misses. */
    CHECK(mf_replay(MF_REPLAY_BELADY, s3, 2, 2, 2, 3, 2, 5, bytes, NULL, &r) == 0, "rc");
    CHECK(r.accesses == 5 && r.misses == 5 && r.hits == 0, "batch 2: %llu accesses",
          (unsigned long long)r.accesses);
    uint32_t keys[8];
    long n = mf_replay_sequence(s3, 2, 2, 2, 3, 2, keys, 8);
    CHECK(n == 5 && keys[0] == 0 && keys[1] == 1 && keys[2] == 2 && keys[3] == 3 && keys[4] == 5,
          "sequence n=%ld", n);

    /* Bad input. */
    const uint32_t bad[] = {0, 7};
    CHECK(mf_replay(MF_REPLAY_BELADY, bad, 2, 1, 1, 3, 1, 2, NULL, NULL, &r) == -1, "id range");
    CHECK(mf_replay(MF_REPLAY_BELADY, s1, 5, 1, 1, 3, 1, 0, NULL, NULL, &r) == -1, "slots 0");
    CHECK(mf_replay(MF_REPLAY_BELADY, s1, 5, 1, 1, 3, 0, 2, NULL, NULL, &r) == -1, "batch 0");
    CHECK(mf_replay(7, s1, 5, 1, 1, 3, 1, 2, NULL, NULL, &r) == -1, "policy");
    CHECK(mf_replay(MF_REPLAY_LRU, NULL, 0, 1, 1, 3, 1, 2, NULL, NULL, &r) == 0 && r.accesses == 0,
          "empty trace");
}

/* Belady equals the exhaustive optimum; LRU is never better. */
static void optimal_cases(void)
{
    int bad_opt = 0, bad_lru = 0, runs = 0;
    for (int trial = 0; trial < 300; trial++) {
        int n = 6 + (int)rnd(MAXN - 5), items = 2 + (int)rnd(MAXI - 1);
        uint32_t seq[MAXN];
        for (int i = 0; i < n; i++) seq[i] = rnd((uint32_t)items);
        for (int slots = 1; slots <= items; slots++) {
            mf_replay_result b, l;
            if (mf_replay(MF_REPLAY_BELADY, seq, (uint32_t)n, 1, 1, (uint32_t)items, 1,
                          (uint32_t)slots, NULL, NULL, &b) ||
                mf_replay(MF_REPLAY_LRU, seq, (uint32_t)n, 1, 1, (uint32_t)items, 1,
                          (uint32_t)slots, NULL, NULL, &l)) {
                bad_opt++;
                continue;
            }
            for (int pol = MF_REPLAY_LFU; pol <= MF_REPLAY_ORACLE_NEXT; pol++) {
                mf_replay_result x;
                if (mf_replay(pol, seq, (uint32_t)n, 1, 1, (uint32_t)items, 1, (uint32_t)slots,
                              NULL, NULL, &x) ||
                    x.misses < b.misses)
                    bad_lru++;
            }
            int o = optimal_misses(seq, n, slots);
            if ((int)b.misses != o) bad_opt++;
            if (l.misses < b.misses) bad_lru++;
            runs++;
        }
    }
    CHECK(bad_opt == 0, "%d of %d replays differ from the exhaustive optimum", bad_opt, runs);
    CHECK(bad_lru == 0, "%d replays where LRU, LFU or an oracle beat Belady", bad_lru);
    CHECK(runs > 1000, "runs %d", runs);

    /* A routing-like trace: 4 layers, 16 experts, top-2, 500 tokens with
     * skewed choices; at every slot count Belady <= LRU, both >= the
     * compulsory misses, and misses fall as slots grow. */
    enum { T = 500, L = 4, E = 16, K = 2 };
    static uint32_t ids[T * L * K];
    for (int t = 0; t < T; t++)
        for (int l = 0; l < L; l++) {
            uint32_t a = rnd(4) ? rnd(5) : rnd(E), b;
            do b = rnd(3) ? rnd(8) : rnd(E);
            while (b == a);
            ids[(t * L + l) * K] = a;
            ids[(t * L + l) * K + 1] = b;
        }
    uint64_t prev = UINT64_MAX;
    int ok_order = 1, ok_lru = 1;
    mf_replay_result all;
    mf_replay(MF_REPLAY_BELADY, ids, T, L, K, E, 1, L * E, NULL, NULL, &all);
    for (uint32_t s = K; s <= L * E; s++) {
        mf_replay_result b, l;
        mf_replay(MF_REPLAY_BELADY, ids, T, L, K, E, 1, s, NULL, NULL, &b);
        mf_replay(MF_REPLAY_LRU, ids, T, L, K, E, 1, s, NULL, NULL, &l);
        if (b.misses > l.misses) ok_lru = 0;
        if (b.misses > prev || b.misses < all.misses) ok_order = 0;
        prev = b.misses;
    }
    CHECK(ok_lru, "Belady > LRU somewhere");
    CHECK(ok_order, "Belady misses not monotone in slots");
    CHECK(all.accesses == (uint64_t)T * L * K && all.misses <= L * E, "all slots: %llu misses",
          (unsigned long long)all.misses);
}

int main(void)
{
    hand_cases();
    optimal_cases();
    return mf_test_done("test_belady");
}
