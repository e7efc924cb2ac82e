/*
 * Offline replay of an expert-routing trace through a cache of `slots`
 * equal slots: Belady's optimal policy (MIN: on a miss with every slot
 * full, evict the expert whose next use is farthest in the future) and LRU
 * for comparison. Pure: no I/O, no global state (allocates its scratch).
 *
 * The trace is ids[npos][n_layers][k]: for every token and layer the k
 * experts the router chose (any order). The accesses replayed are the ones
 * the runtime performs when it feeds `batch` tokens per forward chunk
 * (chunks aligned to position 0), step by step - a step is one (chunk,
 * layer): each distinct expert chosen by any token of the chunk - and in
 * the order the forward pass uses them within a step: the experts already
 * in a slot first, then the others in ascending index (runtime/model.c
 * computes what is available first). With batch = 1 a step is one token's
 * layer. Belady's next use is counted in steps, ties go to the least
 * recently used (as experts/policy.c does).
 *
 * Every access needs its expert in a slot (there is no bypass), and slots
 * are as large as the largest expert. On a plain sequence MIN is the least
 * any policy can miss; with a step's experts used in any order it is what
 * Belady's rule gives in that order (tiny cases exist where another victim
 * choice saves a miss), the reference `moeflash bench` reports. (With
 * unequal sizes MIN minimises misses, not strictly bytes.)
 */
#ifndef MF_TOOLS_BELADY_H
#define MF_TOOLS_BELADY_H

#include <stddef.h>
#include <stdint.h>

/* LFU: fewest accesses so far first (then least recent). The two ORACLE
 * policies bound what a predictor could buy: they know the future accesses
 * up to the end of the current chunk (ORACLE_CHUNK: the rest of the current
 * token's layers, a perfect multi-layer lookahead) or of the next chunk too
 * (ORACLE_NEXT: also the whole next token's routing). A slot whose next use
 * falls inside that horizon is kept while another exists (the farthest such
 * use goes first); the others are ranked as LFU. */
enum {
    MF_REPLAY_BELADY = 0,
    MF_REPLAY_LRU = 1,
    MF_REPLAY_LFU = 2,
    MF_REPLAY_ORACLE_CHUNK = 3,
    MF_REPLAY_ORACLE_NEXT = 4
};

typedef struct {
    uint64_t accesses; /* distinct (chunk, layer, expert) requests */
    uint64_t hits, misses;
    uint64_t bytes;    /* sum of expert_bytes[] over the misses */
} mf_replay_result;

/* Replays the trace. expert_bytes: [n_layers*n_experts] (layer-major) or
 * NULL (then bytes counts 0). miss_count: [n_layers*n_experts] or NULL;
 * when given it receives the misses per expert (so that a caller can price
 * each read, e.g. with the flash simulator's page-aligned timing).
 * Returns 0, or -1 for bad arguments (zero sizes, slots 0, an expert id
 * >= n_experts) or out of memory. */
int mf_replay(int policy, const uint32_t *ids, uint32_t npos, uint32_t n_layers, uint32_t k,
              uint32_t n_experts, uint32_t batch, uint32_t slots, const uint64_t *expert_bytes,
              uint32_t *miss_count, mf_replay_result *out);

/* The access sequence alone: writes up to cap keys (layer*n_experts+expert)
 * and returns how many there are (call with cap 0 to size), or -1. */
long mf_replay_sequence(const uint32_t *ids, uint32_t npos, uint32_t n_layers, uint32_t k,
                        uint32_t n_experts, uint32_t batch, uint32_t *keys, size_t cap);

#endif
