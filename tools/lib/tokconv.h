/*
 * Tokenizer conversion (host only): builds the bytes of an image's
 * MF_SEC_TOKENIZER section from a Hugging Face checkpoint folder's
 * tokenizer.json, or tokenizer.model when there is no tokenizer.json.
 */
#ifndef MF_TOKCONV_H
#define MF_TOKCONV_H

#include <stddef.h>
#include <stdint.h>

/* Returns 0 and sets *out (heap, caller frees) / *len; *out = NULL and
 * *len = 0 when the folder has no tokenizer file (byte-level model).
 * Returns -1 with a one-line message in err on an invalid or unsupported
 * tokenizer (the message names the unsupported component). */
int mf_tokconv_build(const char *hf_dir, uint8_t **out, size_t *len, char *err, size_t errlen);

/* The same from the bytes of a tokenizer.json (json != NULL) or of a
 * tokenizer.model (spm != NULL), one of them; no end-of-sequence ids (they
 * come from the folder's config files). For the fuzzer. */
int mf_tokconv_build_mem(const char *json, size_t json_len, const uint8_t *spm, size_t spm_len, uint8_t **out,
                         size_t *len, char *err, size_t errlen);

/* Replaces the end-of-sequence ids of a built section (convert --eos): n
 * ids (0 = none, at most MF_TOK_MAX_EOS), each below its vocabulary size.
 * -1 with a message otherwise. */
int mf_tokconv_set_eos(uint8_t *sec, size_t len, const uint32_t *ids, uint32_t n, char *err,
                       size_t errlen);

#endif
