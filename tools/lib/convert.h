/*
 * Hugging Face MoE checkpoint -> moeflash image (host only).
 *
 *   mf_convert_options o; mf_convert_options_default(&o);
 *   o.expert_encoding = MF_ENC_Q8;
 *   mf_convert_result r; char err[256];
 *   if (mf_convert("models/x", "x.img", &o, &r, err, sizeof err)) puts(err);
 *
 * Every tensor of the checkpoint must be used (an unknown one is an error
 * naming it) and every expected one must be present with the expected
 * shape, so a conversion either produces an image that computes what the
 * checkpoint computes, or fails with one line saying why.
 *
 * Encodings:
 *  - resident matrices (embedding, attention projections, lm_head, shared
 *    expert) take resident_encoding;
 *  - router weights and every vector (norms, biases, the 1-row
 *    shared-expert gate) stay f32: they are small and routing decisions
 *    are sensitive to them;
 *  - expert blobs take expert_encoding, or expert_encodings[layer *
 *    n_experts + expert] when that array is given and the entry is >= 0;
 *  - with fallback_encoding >= 0 every expert is written a second time in
 *    that encoding and listed in a MF_SEC_FALLBACK_DIR.
 */
#ifndef MF_CONVERT_H
#define MF_CONVERT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "imagewrite.h" /* mf_extra_section */

typedef struct {
    int resident_encoding;        /* MF_ENC_*; default f32 */
    int expert_encoding;          /* default for every expert; default f32 */
    const int *expert_encodings;  /* optional [n_layers * n_experts], < 0 = default */
    size_t n_expert_encodings;    /* its length, checked against the model */
    int fallback_encoding;        /* < 0: no fallback copies (default) */
    uint32_t page_size;           /* expert blob alignment; default 4096 */
    uint32_t group_size;          /* quantisation group; default 32 */
    uint32_t max_seq;             /* 0: max_position_embeddings of config.json */
    int n_eos;                    /* < 0 (default): eos ids from the checkpoint's
                                     generation_config.json / config.json; else
                                     eos[0..n_eos) (0 = none). Needs a tokenizer */
    uint32_t eos[4];
    const mf_extra_section *extra;/* more sections to store (predictor, stats...) */
    size_t n_extra;
    FILE *progress;               /* per-layer progress lines; NULL = quiet */
} mf_convert_options;

typedef struct {
    uint32_t n_resident;          /* resident tensors written */
    uint64_t resident_bytes;      /* their bytes (no padding) */
    uint64_t expert_bytes;        /* main expert blobs (no padding) */
    uint64_t fallback_bytes;      /* fallback blobs (no padding) */
    uint64_t tokenizer_bytes;     /* 0 = byte-level model */
    uint64_t image_bytes;         /* the file */
} mf_convert_result;

void mf_convert_options_default(mf_convert_options *o);

/* 0 on success; -1 with a one-line message in err (the partial output file
 * is removed). */
int mf_convert(const char *hf_dir, const char *out_path, const mf_convert_options *opt,
               mf_convert_result *res, char *err, size_t errlen);

#endif
