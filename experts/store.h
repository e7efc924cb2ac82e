/*
 * The expert cache: the only way the forward pass gets expert weights.
 *
 *   const uint8_t *blob; int enc;
 *   rc = mf_store_get(s, layer, expert, &blob, &enc);  // pins the slot
 *   ... use gate/up/down inside blob ...
 *   mf_store_release(s, layer, expert);                 // unpins it
 *
 * A fixed number of RAM slots (opt.expert_slots, each as large as the
 * largest expert blob) live in the arena. A slot is EMPTY, LOADING (an
 * asynchronous read through the port is in flight into it) or READY (its
 * bytes are the blob, CRC-checked as opt.verify_experts says). A LOADING
 * slot is never handed out, evicted or reused until its read completed and
 * was checked; a read that fails or does not verify leaves the slot EMPTY.
 *
 * Reads come from three places, soonest-needed first:
 *  1. demand: when a layer has routed, the chosen experts that are in no
 *     slot are started at once (expert index order); the forward pass
 *     computes the layer's experts in the order they become available
 *     (mf_store_ready_key: cached ones first), so the missing ones stream
 *     while the others compute; get() waits for its own read only, and
 *     with a port that can wait for part of a read the expert's rows
 *     compute as they arrive (mf_store_stream);
 *  2. prediction: experts predicted for the next layer (experts/predictor.c)
 *     are started after the demand reads, while this layer computes;
 *  3. retries: a failed read is retried synchronously up to
 *     opt.max_retries times; then get() returns MF_E_FLASH (or MF_E_CRC).
 * When the port can cancel (port.h), a demand read overtakes speculative
 * reads in flight: they are paused (the bytes already read stay in the
 * slot) and resumed behind it, the next layer's first (opt.no_preempt
 * turns this off). A wrong prediction is not dropped: its slot becomes an
 * ordinary eviction candidate once the read has completed.
 *
 * The victim is chosen by opt.policy (experts/policy.c): LRU, LFU, EdgeMoE
 * (frequency weighted by layer distance), Belady (farthest next use in a
 * recorded future trace, mf_set_future_trace) or NONE (nothing survives
 * from one layer to the next: the on-demand baseline). opt.pin_experts
 * keeps the N most frequently routed experts of the profile (image section
 * MF_SEC_PREDICTOR) in their slots once read.
 *
 * The contents of a slot are the bytes of the blob, so the result of the
 * forward pass never depends on slots, policy or predictor.
 */
#ifndef MF_EXPERT_STORE_H
#define MF_EXPERT_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "../port/port.h"
#include "../runtime/arena.h"
#include "../runtime/image.h"
#include "../runtime/moeflash.h"

enum { MF_SLOT_EMPTY = 0, MF_SLOT_LOADING, MF_SLOT_READY };

/* Per-chunk decay of the frequencies predictive EdgeMoE ranks by (an
 * effective window of ~200 chunks). Measured on the tiny model, f32,
 * mcu-qspi, 12.5/25/50 % expert RAM: plain counts (1.0) read 0.4-5.5 %
 * more bytes; 0.98 is between the two (docs/expert-cache.md). */
#define MF_FREQ_DECAY 0.995f

typedef struct {
    int32_t layer, expert; /* -1 when empty */
    uint8_t state;         /* MF_SLOT_* */
    uint8_t encoding;
    uint8_t prefetched;    /* read by a prediction and not used yet */
    uint8_t check;         /* CRC-check when the read completes */
    uint8_t demand;        /* read on demand when the layer routed, not got yet */
    uint8_t fallback;      /* holds the low-bit copy (opt.fallback_stall_ns): served
                              to the get() it was read for, dropped on release */
    int ticket;            /* LOADING: the port's ticket; -1 while paused */
    uint32_t loaded;       /* bytes already in data from a cancelled earlier
                              part of this read (a paused speculative read) */
    uint32_t req_bytes;    /* LOADING: bytes of the request in flight */
    uint32_t pins;
    uint32_t expected_crc, bytes;
    uint32_t crc, crc_done; /* CRC-32 of data[0, crc_done): a checked read
                              streamed in is folded in as its parts arrive */
    uint64_t last_use;     /* tick of the last get (or of the read) */
    uint64_t epoch;        /* chunk counter when read (policy NONE) */
    uint64_t t_start;      /* LOADING: port time the read started */
    uint64_t used_epoch;   /* chunk counter of the last get */
    uint8_t *data;
} mf_store_slot;

/* The profile (image section MF_SEC_PREDICTOR, docs/predictor-format.md),
 * decoded in the arena. */
typedef struct {
    uint32_t tokens;  /* calibration tokens */
    uint32_t *freq;   /* [L][E] times chosen */
    uint32_t *c1;     /* [L][E][E] c1[l][a][b]: a chosen at l-1 and b at l */
    uint32_t *c2;     /* [L][E][E] c2[l][a][b]: a chosen at l-2 and b at l */
} mf_profile_tables;

typedef struct {
    const mf_port *port;
    const mf_image_header *h;
    uint32_t n_slots;
    size_t slot_bytes;     /* the largest expert blob, rounded up */
    mf_store_slot *slots;
    mf_expert_entry *dir;  /* [L*E] the expert directory, read once at init */
    int32_t *where;        /* [L*E] slot holding (l, e), or -1 */
    uint32_t *uses;        /* [L*E] times used since init (LFU, EdgeMoE) */
    uint8_t *verified;     /* one bit per (layer, expert) for verify mode 2 */
    uint8_t *hot;          /* [L*E] 1 = pinned hot expert (opt.pin_experts) */
    uint8_t *chosen;       /* [L*E] chosen by the router in the current chunk */
    uint8_t *predicted;    /* [L*E] predicted for the current chunk */
    mf_expert_entry *fb_dir;/* [L*E] fallback directory; NULL when unused */
    uint64_t fallback_stall_ns;
    double ns_per_byte;    /* flash speed estimate for the fallback decision */
    uint64_t inflight_bytes, last_done_ns;
    /* Predictor-aware eviction and prefetch admission (policy.c, store.c):
     * lprob[l*E+e] = predicted probability that e is chosen at layer l's
     * next run, valid while lvalid[l]; routed_cur: s->layer has routed in
     * this chunk; w_routed / w_done = moving averages of the compute time (port clock
     * minus stall) from a layer's routing / end to the next routing. */
    float *lprob;          /* [L*E], NULL without a predictor */
    float *ufreq;          /* [L*E] times chosen, decayed by MF_FREQ_DECAY per
                              chunk (predictive EdgeMoE's q); NULL without */
    float *uweight;        /* [L] sum of the decay weights of layer l's chunks */
    uint8_t *lvalid;       /* [L] */
    uint8_t routed_cur;
    double w_routed, w_done;
    uint64_t hook_t[2], hook_stall[2]; /* at the last routing [0] / layer end [1] */
    uint8_t hook_ok[2];
    int hook_kind;         /* the last hook: 0 routing, 1 layer end */
    float pf_prob;         /* the prediction being admitted (claim) */
    uint64_t tick, epoch;
    int verify, policy, predictor;
    uint32_t max_retries, inflight, queue_depth, prefetch_budget;
    int preempt;           /* the port can cancel: a demand read overtakes
                              speculative reads (paused, then resumed) */
    int stream;            /* the port can wait for part of a read and
                              opt.no_stream is 0 (mf_store_stream) */
    uint8_t refilled;      /* the last get() read its expert again (its read
                              in flight failed, or there was none) */
    uint32_t n_paused;     /* slots paused by pause_speculative, not resumed */
    uint32_t batch;
    float min_prob;        /* opt.prefetch_min_prob */
    uint32_t layer;        /* the layer being computed */
    uint32_t n_chunk;      /* tokens in the current chunk */
    mf_stats *stats;

    /* Belady: the recorded future (mf_set_future_trace). */
    const uint16_t *future; /* [future_n][L][top_k] */
    uint32_t future_n;
    uint32_t token;         /* tokens completed since the trace was set */

    /* Predictor state (experts/predictor.c). */
    mf_profile_tables prof;
    int have_profile;
    float *px;              /* [batch][hidden] scratch */
    float *ps;              /* [batch][n_experts] scratch */
    float *pscore;          /* [n_experts] */
    uint32_t *pidx;         /* [n_experts] */
    uint32_t *prev_topk;    /* [batch][top_k] chosen at the layer before */
    /* MF_SEC_TOKEN_ROUTES (combined predictor): u8 255 * P(e at l | token
     * w) at troutes[(w*L + l)*E + e]; NULL when the image has none. */
    const uint8_t *troutes;
    uint32_t troutes_vocab;
    const uint32_t *chunk_tokens; /* the chunk being computed (valid during it) */
    /* MF_SEC_LOOKAHEAD (combined predictor's stage A): layer l+1's scores
     * from layer l's unit-RMS residual, la_w[l][e][hidden] . x + la_b[l][e];
     * NULL when the image has none. */
    const float *la_w, *la_b;
    float oracle_miss_rate;       /* MF_PREDICT_ORACLE (opt.oracle_miss_rate) */
    uint32_t oracle_rng;          /* its draws: a fixed-seed LCG, so runs repeat */
} mf_expert_store;

/* The largest expert blob in the image (bytes), for sizing slots. */
int mf_store_max_blob(const mf_port *port, const mf_image_header *h, size_t *bytes);

/* Lays the cache out in the arena (counting when the arena counts) and,
 * for a real arena, reads the profile when the options need it. opt has
 * expert_slots >= 1 already resolved. stats must outlive the store. */
int mf_store_init(mf_expert_store *s, mf_arena *a, const mf_port *port, const mf_image_header *h,
                  const mf_options *opt, uint32_t batch, size_t max_blob, mf_stats *stats);

/* The encoded blob of (layer, expert) in a RAM slot, pinned until release. */
int mf_store_get(mf_expert_store *s, uint32_t layer, uint32_t expert, const uint8_t **blob,
                 int *encoding);
void mf_store_release(mf_expert_store *s, uint32_t layer, uint32_t expert);

/* Computing an expert while it streams in (port.h wait_part; opt.no_stream
 * = 0). When (layer, expert)'s read is in flight, mf_store_stream() gives
 * the slot's bytes and encoding and returns 1 (else 0: use get() alone);
 * mf_store_stream_wait() then returns once the blob's first `need` bytes
 * are in the slot (MF_OK, or the read's error). Those bytes are not
 * trusted until get() has completed and checked the whole read: when it
 * had to read the expert again (s->refilled), the caller computes the
 * expert again from get()'s blob. */
int mf_store_stream(mf_expert_store *s, uint32_t layer, uint32_t expert, const uint8_t **data,
                    int *encoding);
int mf_store_stream_wait(mf_expert_store *s, uint32_t layer, uint32_t expert, size_t need);

/* When get(layer, expert) could return without waiting: 0 = now (READY,
 * or its read has completed), 1 + the port time its read started (in
 * flight: earlier starts finish first on a bus that serves in order),
 * UINT64_MAX - 1 = paused (it resumes behind the reads in flight),
 * UINT64_MAX = in no slot (a read would still have to start). The forward
 * pass computes its chosen experts in this order so that a cached expert
 * runs while a missing one streams in. */
uint64_t mf_store_ready_key(mf_expert_store *s, uint32_t layer, uint32_t expert);

/* A chunk of n tokens starts (before layer 0). */
void mf_store_chunk_start(mf_expert_store *s, uint32_t n);
/* The chunk completed every layer (the token counter for Belady moves). */
void mf_store_chunk_done(mf_expert_store *s, uint32_t n);

/* Layer `layer` routed; chosen[e] != 0 for the experts it uses. Counts
 * recall, drops what policy NONE must drop, starts the demand reads. */
void mf_store_routed(mf_expert_store *s, uint32_t layer, const uint8_t *chosen);

/* Starts a read of (layer, expert) ahead of need (a prediction). Returns 1
 * when a read was started, 0 when the expert is already in a slot or in
 * flight, -1 when no slot or queue entry could be had. */
int mf_store_prefetch(mf_expert_store *s, uint32_t layer, uint32_t expert);

/* The same with the predicted probability p that the expert is chosen at
 * the layer's next run. With a predictor and policy LRU/LFU/EdgeMoE the read
 * is admitted only when it pays: its expected overlap gain p * min(read,
 * compute window) exceeds the expected bus time wasted (1 - p) * read, and
 * (EdgeMoE) the victim's expected next use is later than this expert's. */
int mf_store_prefetch_p(mf_expert_store *s, uint32_t layer, uint32_t expert, float p);

/* Predicted probabilities p[e] (max over the chunk's tokens) that layer
 * `layer` chooses e at its next run; used by eviction until it routes. */
void mf_store_set_probs(mf_expert_store *s, uint32_t layer, const float *p);

/* Layer `layer` finished (its experts computed). */
void mf_store_layer_done(mf_expert_store *s, uint32_t layer);

/* Expected distance to the next use of slot sl's expert, in layer steps
 * (policy.c): d + S (1 - p) / q, d = layers until its layer runs again,
 * q = its estimated frequency per token, p = the predicted probability for
 * the next run (q without a prediction). */
double mf_policy_expected_next(const mf_expert_store *s, uint32_t layer, uint32_t expert);

/* Completes every read in flight (waiting for each). */
void mf_store_drain(mf_expert_store *s);

/* Belady's next use of (layer, expert) after the current point, in units
 * of token*n_layers+layer; UINT64_MAX when never (experts/belady.c). */
uint64_t mf_belady_next_use(const mf_expert_store *s, uint32_t layer, uint32_t expert);

/* The victim among slots (policy.c): index of the slot to reuse for a read
 * of (layer, expert), or -1. `prefetch` != 0: the read is a prediction (it
 * may not evict a chosen expert of the current layer, and under Belady only
 * a slot whose next use is later than this expert's). */
int mf_policy_victim(mf_expert_store *s, uint32_t layer, uint32_t expert, int prefetch);

#endif
