/*
 * Tokenizer used by the runtime: byte-level (id = byte) when the image has
 * no tokenizer section, otherwise BPE over tables used in place (from
 * memory-mapped flash or a copy in the arena). No heap: encode takes a
 * caller scratch buffer, mf_tokenizer_scratch_bytes() says how large.
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
} mf_tokenizer;

/* tables == NULL gives the byte-level tokenizer over `vocab` (256) ids.
 * Returns 0 (MF_OK) or a negative MF_E_* code when the tables are invalid. */
int mf_tokenizer_init(mf_tokenizer *t, const uint8_t *tables, size_t table_bytes, uint32_t vocab);

/* Scratch bytes encode needs for an input of len bytes. */
size_t mf_tokenizer_scratch_bytes(const mf_tokenizer *t, size_t len);

/* Encodes text; writes at most max_ids ids and sets *n_ids to the count needed. */
int mf_tokenizer_encode(const mf_tokenizer *t, const char *text, size_t len, uint32_t *ids,
                        uint32_t max_ids, uint32_t *n_ids, void *scratch, size_t scratch_bytes);

/* Bytes of one token; an incomplete UTF-8 sequence is held back in *t. */
int mf_tokenizer_decode(mf_tokenizer *t, uint32_t id, char *out, size_t cap, size_t *len);

#endif
