/*
 * moeflash: run a Mixture-of-Experts language model whose experts live in
 * flash. The whole public C API is this header.
 *
 *   mf_port port = ...;                     // see port/port.h
 *   mf_options opt; mf_options_default(&opt);
 *   opt.context_len = 256;
 *   size_t need; mf_arena_bytes(&port, &opt, &need);
 *   static uint8_t arena[...];              // >= need
 *   mf_model *m; mf_init(&m, &port, &opt, arena, sizeof arena);
 *   mf_encode(m, text, len, ids, max_ids, &n);
 *   mf_feed(m, ids, n);                     // logits of the last id
 *   mf_sampler s; mf_sampler_init(&s, 0.0f, 1.0f, 0);  // greedy
 *   uint32_t next; mf_sample(m, &s, &next);
 *   mf_decode_token(m, next, out, sizeof out, &len);
 *
 * Every function returns MF_OK or a negative MF_E_* code (mf_strerror).
 * boards/host/minimal.c is a whole program: the image in a file, greedy text.
 *
 * No function allocates: every byte lives in the caller's arena, whose size
 * mf_arena_bytes() computes before anything is allocated.
 */
#ifndef MOEFLASH_H
#define MOEFLASH_H

#include <stddef.h>
#include <stdint.h>

#include "../port/port.h"

/* Error codes (negative). mf_strerror() names them. */
enum {
    MF_OK = 0,
    MF_E_ARG = -1,         /* NULL or out-of-range argument */
    MF_E_IO = -2,          /* the port failed to read */
    MF_E_FORMAT = -3,      /* not a moeflash image, or an inconsistent one */
    MF_E_VERSION = -4,     /* image format newer than this runtime */
    MF_E_CRC = -5,         /* checksum mismatch */
    MF_E_RANGE = -6,       /* offsets or sizes past the end of the image */
    MF_E_ARENA = -7,       /* arena too small */
    MF_E_CONTEXT = -8,     /* context length exhausted */
    MF_E_STATE = -9,       /* call out of order (e.g. sample before feed) */
    MF_E_UNSUPPORTED = -10,/* encoding/arch/feature not supported here */
    MF_E_FLASH = -11,      /* flash fault persisted after retries */
    MF_E_TOKEN = -12       /* token id outside the vocabulary */
};
const char *mf_strerror(int err);

/* Expert cache eviction policies (issue: streaming). */
typedef enum {
    MF_POLICY_NONE = 0, /* on demand, nothing kept between layers */
    MF_POLICY_LRU,
    MF_POLICY_LFU,
    MF_POLICY_EDGEMOE,
    MF_POLICY_BELADY    /* offline bound, needs a recorded trace */
} mf_policy;

typedef enum {
    MF_PREDICT_NONE = 0,
    MF_PREDICT_COOC,      /* co-occurrence tables from the image */
    MF_PREDICT_LOOKAHEAD, /* next layer's router on the current hidden state */
    MF_PREDICT_COMBINED,
    MF_PREDICT_ORACLE     /* reference, not a predictor: the experts the next
                             routing will choose, read from the recorded trace
                             (mf_set_future_trace); without one it predicts nothing */
} mf_predictor;

typedef struct {
    uint32_t context_len;   /* KV-cache positions; 0 = the image's max_seq */
    uint32_t expert_slots;  /* RAM slots for experts; 0 = top_k (the minimum) */
    int policy;             /* mf_policy */
    int predictor;          /* mf_predictor */
    int kv_encoding;        /* MF_ENC_F32 (default) or a smaller one where supported */
    int verify_experts;     /* CRC-check expert blobs: 0 never, 1 every read, 2 first read */
    uint32_t max_retries;   /* flash read retries before MF_E_FLASH */
    uint32_t prefill_batch; /* tokens per forward chunk in mf_feed (activations
                               for this many tokens live in the arena); 0 = 16 */
    uint32_t encode_scratch;/* arena bytes for mf_encode's scratch when the image
                               has a tokenizer section; 0 = 64 KiB */
    int float_activations;  /* quantised weights (q8..q2): 0 (default) = activations
                               quantised to int8 per group, integer kernels
                               (mf_matvec_qa, SIMD on MVE/DSP/AVX2); 1 = f32
                               activations (mf_matvec: slower, about half the
                               error with q8 weights) */
    uint32_t pin_experts;   /* keep the N most frequently routed experts of the
                               image's profile in slots once read (needs
                               `moeflash profile`; N + top_k <= expert_slots) */
    uint32_t prefetch_budget;/* most experts a predictor reads ahead per layer and
                               token; 0 = top_k (cooc, lookahead), 2*top_k (combined) */
    float prefetch_min_prob;/* lookahead/combined: a candidate whose predicted
                               router probability is below this is neither
                               predicted nor read (saves flash bandwidth on
                               flash-bound boards); 0 = no threshold */
    uint64_t fallback_stall_ns;/* dual precision (image with `convert --fallback`):
                               a demand read whose estimated stall (bytes queued
                               ahead + its own, times flash ns/byte) exceeds this
                               reads the expert's low-bit copy instead; the copy
                               is used once and dropped, never served as the
                               full expert. 0 = never (default). The output then
                               depends on timing (docs/quantization.md) */
    float flash_ns_per_byte;/* the estimate's flash speed; 0 = learned from the
                               reads completed so far (no fallback before one) */
    float oracle_miss_rate; /* MF_PREDICT_ORACLE: the chance that each guess is
                               replaced by an expert the layer does not choose
                               (a fixed-seed draw): how wrong a next-layer
                               predictor may be; 0 = always right */
    int no_preempt;         /* 1: a demand read waits behind speculative reads in
                               flight even when the port can cancel them (for
                               comparison); 0 (default): they give the bus up
                               and resume after it */
    int no_stream;          /* 1: an expert whose read is in flight is computed
                               only once all of it is in (for comparison); 0
                               (default): when the port can wait for part of a
                               read (port.h wait_part), its first rows compute
                               while the rest streams in. Outputs are the same */
} mf_options;

void mf_options_default(mf_options *opt);

typedef struct mf_model mf_model; /* lives inside the arena */

/* Bytes of arena that mf_init needs for this image and these options. */
int mf_arena_bytes(const mf_port *port, const mf_options *opt, size_t *bytes);

/* Validates the image, lays out the arena, reads resident weights into it. */
int mf_init(mf_model **model, const mf_port *port, const mf_options *opt, void *arena,
            size_t arena_bytes);

/* Bytes of the arena actually laid out by mf_init. */
size_t mf_arena_used_bytes(const mf_model *m);

/* Forget the context (position 0); experts stay cached. */
int mf_reset(mf_model *m);

/* Append n tokens to the context and compute the logits after the last.
 * Arguments are checked first (MF_E_ARG, MF_E_TOKEN, MF_E_CONTEXT: nothing
 * consumed). A flash/CRC error mid-way (MF_E_FLASH, MF_E_CRC, MF_E_IO)
 * leaves the chunks already done in the context (mf_position() says how
 * many tokens) and no logits until the next successful feed. */
int mf_feed(mf_model *m, const uint32_t *tokens, uint32_t n);

/* Like mf_feed, and also writes the logits after every one of the n tokens
 * to logits[n][vocab] (teacher forcing, perplexity). Tokens are processed
 * prefill_batch at a time: per layer all tokens of a chunk are routed, then
 * each chosen expert is fetched once and applied to all its tokens. The
 * results are bit-identical to feeding the tokens one by one. */
int mf_feed_all(mf_model *m, const uint32_t *tokens, uint32_t n, float *logits);

/* Logits [vocab] after the last fed token; NULL before the first feed. */
const float *mf_logits(const mf_model *m);

uint32_t mf_vocab_size(const mf_model *m);
uint32_t mf_position(const mf_model *m);  /* tokens in the context */
uint32_t mf_context_len(const mf_model *m);

/* What an image holds, read from its header without initialising a model
 * (mf_image_info) or from a model (mf_model_info). */
typedef struct {
    uint32_t arch, flags, vocab, hidden, n_layers, n_heads, n_kv_heads, head_dim;
    uint32_t n_experts, top_k, expert_ffn, shared_ffn, max_seq;
    size_t expert_bytes;    /* the largest expert blob (one slot) */
    int has_tokenizer;      /* the image carries a tokenizer section */
    uint32_t context_len, expert_slots, prefill_batch; /* mf_model_info only */
} mf_info;
int mf_image_info(const mf_port *port, mf_info *info);
void mf_model_info(const mf_model *m, mf_info *info);

/* Called once per layer and token with the chosen experts (ordered by
 * weight, highest first) and their routing weights. */
typedef void (*mf_route_fn)(void *user, uint32_t layer, uint32_t pos, const uint32_t *experts,
                            const float *weights, uint32_t k);
void mf_set_route_observer(mf_model *m, mf_route_fn fn, void *user);

/* Called once per layer and token, when the layer routes, with the
 * residual stream its router reads (after the layer's attention, before its
 * experts): `moeflash profile` fits the learned lookahead on these rows. */
typedef void (*mf_residual_fn)(void *user, uint32_t layer, uint32_t pos, const float *x,
                               uint32_t hidden);
void mf_set_residual_observer(mf_model *m, mf_residual_fn fn, void *user);

/* Streaming statistics since init. */
typedef struct {
    uint64_t flash_bytes;     /* expert bytes read from flash */
    uint64_t resident_bytes;  /* resident bytes read at init */
    uint64_t hits, misses;    /* expert lookups served from a slot / read on demand */
    uint64_t prefetches, useful_prefetches;
    uint64_t predicted_needed, needed; /* for recall: needed experts already fetched/in flight */
    uint64_t stall_ns;        /* time waiting for flash */
    uint64_t crc_failures, retries, flash_errors;
    uint64_t crc_bytes;       /* expert bytes CRC-checked (opt.verify_experts) */
    uint64_t fallback_reads;  /* low-precision copies read instead */
    uint64_t paused_reads;    /* speculative reads paused for a demand read */
    uint64_t streamed_experts;/* experts computed while their read streamed in */
    uint64_t stream_redone;   /* ... and computed again: the read failed its check */
    /* Prediction (docs/expert-cache.md). Per chunk and layer, the experts the
     * router chose (`needed`, distinct per chunk) are compared with the set
     * the predictor named for that layer (`predicted`): recall =
     * predicted_needed / needed, precision of the prediction =
     * predicted_needed / predicted. ready_needed: chosen experts already in a
     * slot or in flight when the router decided (cache + prefetch).
     * prefetches: reads started for a prediction; useful_prefetches: those
     * whose expert was used before its slot was reused. */
    uint64_t predicted, ready_needed;
#define MF_STATS_LAYERS 64 /* per-layer counters for layers below this */
    uint64_t layer_needed[MF_STATS_LAYERS], layer_predicted[MF_STATS_LAYERS];
    uint64_t layer_predicted_needed[MF_STATS_LAYERS], layer_ready_needed[MF_STATS_LAYERS];
    uint64_t layer_prefetches[MF_STATS_LAYERS], layer_useful_prefetches[MF_STATS_LAYERS];
} mf_stats;

/* Belady's policy (MF_POLICY_BELADY) replays a recorded future: ids holds,
 * for each of the next npos tokens fed (from this call on) and each layer,
 * the top_k experts the router will choose, as uint16 [npos][n_layers][top_k]
 * (any order within a row) -- e.g. recorded by a first run through
 * mf_set_route_observer. The array must outlive its use. Without a trace
 * (or past its end) Belady sees no future use and falls back to LRU order.
 * ids == NULL, npos == 0 forgets the trace. */
int mf_set_future_trace(mf_model *m, const uint16_t *ids, uint32_t npos);
void mf_get_stats(const mf_model *m, mf_stats *s);

/* Sampling. temperature 0 = greedy (argmax, lowest id on ties). */
typedef struct {
    float temperature;
    float top_p;      /* 1 = off */
    uint64_t state;   /* xorshift state */
} mf_sampler;
void mf_sampler_init(mf_sampler *s, float temperature, float top_p, uint64_t seed);
/* -log softmax(logits)[target] in nats: the loss of predicting target.
 * NAN when vocab is 0 or target is outside it. */
double mf_token_nats(const float *logits, uint32_t vocab, uint32_t target);

/* Samples from mf_logits(m), using scratch space inside the arena. */
int mf_sample(mf_model *m, mf_sampler *s, uint32_t *token);

/* Tokenizer: byte-level (vocab 256) unless the image has a tokenizer section.
 * mf_encode writes at most max_ids ids; *n_ids gets the count needed. */
int mf_encode(mf_model *m, const char *text, size_t len, uint32_t *ids, uint32_t max_ids,
              uint32_t *n_ids);
/* Bytes of one token, with an incomplete UTF-8 sequence held back in the
 * model until the next call; *len receives the bytes written to out. */
int mf_decode_token(mf_model *m, uint32_t id, char *out, size_t cap, size_t *len);
/* Ends a generation: bytes still held back (an incomplete UTF-8 sequence)
 * come out as U+FFFD (cap >= 3 suffices); *len may be 0. */
int mf_decode_flush(mf_model *m, char *out, size_t cap, size_t *len);

#define MF_NO_TOKEN 0xFFFFFFFFu
/* The id transformers puts before a text (Mixtral/Llama <s>), or
 * MF_NO_TOKEN when the model has none; mf_encode never adds it. */
uint32_t mf_token_bos(const mf_model *m);
/* 1 for special tokens (<|endoftext|>, <s>, ...), which printers skip. */
int mf_token_is_special(const mf_model *m, uint32_t id);
/* 1 when id ends a generation: one of the image's end-of-sequence ids
 * (eos_token_id of the checkpoint's generation_config.json or config.json,
 * stored with the tokenizer; none in an image without a tokenizer). */
int mf_token_is_eos(const mf_model *m, uint32_t id);

#endif
