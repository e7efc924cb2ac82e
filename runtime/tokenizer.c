/* Byte-level tokenizer; the BPE tables of the tokenizer section extend it. */
#include "tokenizer.h"

#include <string.h>

#include "moeflash.h"

int mf_tokenizer_init(mf_tokenizer *t, const uint8_t *tables, size_t table_bytes, uint32_t vocab)
{
    if (!t) return MF_E_ARG;
    memset(t, 0, sizeof *t);
    if (tables) return MF_E_UNSUPPORTED;
    (void)table_bytes;
    t->vocab = vocab;
    return MF_OK;
}

size_t mf_tokenizer_scratch_bytes(const mf_tokenizer *t, size_t len)
{
    (void)t;
    (void)len;
    return 0;
}

int mf_tokenizer_encode(const mf_tokenizer *t, const char *text, size_t len, uint32_t *ids,
                        uint32_t max_ids, uint32_t *n_ids, void *scratch, size_t scratch_bytes)
{
    (void)scratch;
    (void)scratch_bytes;
    if (!t || (!text && len) || !n_ids || (!ids && max_ids)) return MF_E_ARG;
    for (size_t i = 0; i < len && i < max_ids; i++) ids[i] = (uint8_t)text[i];
    *n_ids = (uint32_t)len;
    return MF_OK;
}

int mf_tokenizer_decode(mf_tokenizer *t, uint32_t id, char *out, size_t cap, size_t *len)
{
    if (!t || !out || !len) return MF_E_ARG;
    if (id >= 256 || id >= t->vocab) return MF_E_TOKEN;
    if (cap < 1) return MF_E_ARG;
    out[0] = (char)id;
    *len = 1;
    return MF_OK;
}
