/*
 * Tokenizer used by the runtime: byte-level (id = byte) when the image has
 * no tokenizer section, otherwise BPE over tables used in place (from
 * memory-mapped flash or a copy in the arena; layout in tokenizer_format.h
 * and docs/tokenizer-format.md). No heap: encode takes a caller scratch
 * buffer, mf_tokenizer_scratch_bytes() says how large.
 */
#ifndef MF_TOKENIZER_H
#define MF_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    const uint8_t *tables; /* NULL = byte-level */
    size_t table_bytes;
    uint32_t vocab;
    /* decode state: bytes of an incomplete UTF-8 sequence held back */
    uint8_t pending[8];
    uint32_t n_pending;
    uint32_t reserved[8];
    /* BPE: the section header (decoded once by init), decode state, and
     * which bytes start an added token. */
    uint32_t hdr[32];
    uint32_t at_start;     /* decode: nothing output yet (leading-space strip) */
    uint8_t added_first[32];
} mf_tokenizer;

/* Bytes of encode scratch that bound a pre-tokenized chunk to max_symbols
 * symbols (bytes in byte-level BPE, characters in SentencePiece-style BPE);
 * for a static buffer: static uint8_t s[MF_TOKENIZER_SCRATCH(1024)]. */
#define MF_TOKENIZER_SYMBOL_BYTES 10u
#define MF_TOKENIZER_SCRATCH(max_symbols) ((size_t)(max_symbols) * MF_TOKENIZER_SYMBOL_BYTES + 8u)
#define MF_TOKENIZER_MAX_CHUNK 65535u

/* tables == NULL gives the byte-level tokenizer over `vocab` (256) ids.
 * Returns 0 (MF_OK) or a negative MF_E_* code when the tables are invalid. */
int mf_tokenizer_init(mf_tokenizer *t, const uint8_t *tables, size_t table_bytes, uint32_t vocab);

/* Scratch bytes with which encode of an input of len bytes is exact (every
 * chunk fits). A smaller scratch (at least MF_TOKENIZER_SCRATCH(16)) works
 * too: a chunk longer than the scratch holds is then encoded in pieces,
 * which still decode to the same text but may differ from the reference
 * library's ids. */
size_t mf_tokenizer_scratch_bytes(const mf_tokenizer *t, size_t len);

/* Encodes text; writes at most max_ids ids and sets *n_ids to the count needed. */
int mf_tokenizer_encode(const mf_tokenizer *t, const char *text, size_t len, uint32_t *ids,
                        uint32_t max_ids, uint32_t *n_ids, void *scratch, size_t scratch_bytes);

/* Bytes of one token; an incomplete UTF-8 sequence is held back in *t (an
 * invalid one becomes U+FFFD). *len is set to the bytes written; when cap is
 * too small nothing is written, *len is the size needed and MF_E_ARG
 * returned. 4 + 3 * (the token's length + 8) bytes always suffice. */
int mf_tokenizer_decode(mf_tokenizer *t, uint32_t id, char *out, size_t cap, size_t *len);

/* Starts a new text: forgets held-back bytes; the next token is at the start
 * (SentencePiece drops the dummy-prefix space of the first token). */
void mf_tokenizer_decode_reset(mf_tokenizer *t);

/* The next token continues a text already under way (e.g. the first
 * generated token after a prompt): SentencePiece's leading-space strip, which
 * only applies at the start of a text, is not done. Held-back bytes kept. */
void mf_tokenizer_decode_continue(mf_tokenizer *t);

/* Ends a text: held-back bytes of an incomplete sequence become U+FFFD
 * (cap >= 3 suffices). */
int mf_tokenizer_decode_flush(mf_tokenizer *t, char *out, size_t cap, size_t *len);

/* 1 for special tokens (<|endoftext|>, <s>, ...), which callers may skip
 * when printing; 0 otherwise or for an id out of range. */
int mf_tokenizer_is_special(const mf_tokenizer *t, uint32_t id);

/* The id that transformers' tokenizer puts before a text (Llama/Mixtral
 * <s>; from the post-processor or SentencePiece's bos), or 0xFFFFFFFF when
 * none (Qwen, OLMoE, byte-level). mf_tokenizer_encode never adds it. */
uint32_t mf_tokenizer_bos(const mf_tokenizer *t);

/* 1 when id ends a generation (the image's eos ids; none without a
 * tokenizer section). */
int mf_tokenizer_is_eos(const mf_tokenizer *t, uint32_t id);

/* End of the pre-token that starts at s[i] (i < len) under pre-tokenizer
 * `kind` (MF_TOKPRE_GPT2/QWEN2/LLAMA3 of tokenizer_format.h); for tests. */
size_t mf_tokenizer_pretok_next(int kind, const char *s, size_t len, size_t i);

/* The token's decoded bytes as stored (no UTF-8 assembly), or NULL. */
const uint8_t *mf_tokenizer_token_bytes(const mf_tokenizer *t, uint32_t id, size_t *len);

#endif
