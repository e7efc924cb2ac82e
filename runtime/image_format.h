/*
 * On-flash layout of a moeflash image (format version 1).
 * docs/image-format.md is the normative description; this header is the
 * same thing in C. All fields little-endian, fixed width, no pointers:
 * offsets are absolute byte offsets from the start of the image.
 *
 *   [header 512 B][section ...][section ...] ...
 *
 * Readers must not cast flash bytes to these structs on big-endian hosts;
 * runtime/image.c decodes field by field.
 */
#ifndef MF_IMAGE_FORMAT_H
#define MF_IMAGE_FORMAT_H

#include <stdint.h>

#define MF_MAGIC "MOEFLSH1" /* 8 bytes, no terminator stored */
#define MF_FORMAT_VERSION 1u
#define MF_HEADER_BYTES 512u
#define MF_MAX_SECTIONS 11u
#define MF_HEADER_CRC_OFFSET 508u /* CRC32 of bytes [0, 508) */
#define MF_DEFAULT_PAGE_SIZE 4096u
#define MF_DEFAULT_GROUP_SIZE 32u

/* Header field offsets. */
enum {
    MF_H_MAGIC = 0,        /* char[8] */
    MF_H_VERSION = 8,      /* u32 */
    MF_H_HEADER_BYTES = 12,/* u32 */
    MF_H_IMAGE_BYTES = 16, /* u64: total bytes of the image */
    MF_H_ARCH = 24,        /* u32 mf_arch */
    MF_H_FLAGS = 28,       /* u32 MF_FLAG_* */
    MF_H_VOCAB = 32,
    MF_H_HIDDEN = 36,
    MF_H_LAYERS = 40,
    MF_H_HEADS = 44,
    MF_H_KV_HEADS = 48,
    MF_H_HEAD_DIM = 52,
    MF_H_EXPERT_FFN = 56,
    MF_H_EXPERTS = 60,
    MF_H_TOP_K = 64,
    MF_H_SHARED_FFN = 68,  /* 0 when there is no shared expert */
    MF_H_MAX_SEQ = 72,
    MF_H_RMS_EPS = 76,     /* f32 */
    MF_H_ROPE_THETA = 80,  /* f32 */
    MF_H_PAGE_SIZE = 84,
    MF_H_GROUP_SIZE = 88,  /* quantisation group along the input dimension */
    MF_H_N_SECTIONS = 92,
    MF_H_RESERVED = 96,    /* 32 bytes, zero */
    MF_H_SECTIONS = 128    /* MF_MAX_SECTIONS entries of MF_SECTION_BYTES */
};

#define MF_SECTION_BYTES 32u
/* Section entry: u32 kind, u32 count, u64 offset, u64 bytes, u32 crc32, u32 reserved.
 * crc32 covers the section's bytes; 0 for MF_SEC_EXPERT_DATA, whose blobs
 * each carry a CRC in the expert directory. */

typedef enum {
    MF_ARCH_MIXTRAL = 1,
    MF_ARCH_QWEN2_MOE = 2,
    MF_ARCH_QWEN3_MOE = 3,
    MF_ARCH_OLMOE = 4
} mf_arch;

enum {
    MF_FLAG_QKV_BIAS = 1u << 0,       /* q/k/v projections have biases */
    MF_FLAG_QK_NORM_HEAD = 1u << 1,   /* RMSNorm per head over head_dim (Qwen3) */
    MF_FLAG_QK_NORM_FULL = 1u << 2,   /* RMSNorm over the whole projection (OLMoE) */
    MF_FLAG_SHARED_EXPERT = 1u << 3,  /* sigmoid-gated shared expert (Qwen2-MoE) */
    MF_FLAG_NORM_TOPK = 1u << 4       /* renormalise top-k weights to sum 1 */
};

typedef enum {
    MF_SEC_RESIDENT_TABLE = 1, /* count = tensors, MF_RESIDENT_ENTRY_BYTES each */
    MF_SEC_RESIDENT_DATA = 2,  /* the resident tensors' bytes */
    MF_SEC_EXPERT_DIR = 3,     /* count = layers*experts, MF_EXPERT_ENTRY_BYTES each, layer-major */
    MF_SEC_EXPERT_DATA = 4,    /* expert blobs, each aligned to page_size */
    MF_SEC_PREDICTOR = 5,      /* predictor tables (co-occurrence counts) */
    MF_SEC_TOKENIZER = 6,      /* tokenizer tables, used in place */
    MF_SEC_FALLBACK_DIR = 7,   /* low-bit copies of experts, same entry layout as EXPERT_DIR */
    MF_SEC_EXPERT_STATS = 8,   /* calibration statistics (routing frequency, sensitivity) */
    MF_SEC_TOKEN_ROUTES = 9,   /* P(expert | input token, layer) as u8 (docs/predictor-format.md) */
    MF_SEC_LOOKAHEAD = 10      /* learned next-layer lookahead weights (docs/predictor-format.md) */
} mf_section_kind;

/* moeflash profile writes MF_SEC_TOKEN_ROUTES only up to this size
 * (vocab x layers x experts bytes): the runtime keeps it in the arena, and
 * a large-vocabulary model's table would not pay for its RAM. */
#define MF_TOKEN_ROUTES_MAX_BYTES (1u << 20)

/* The learned lookahead (MF_SEC_LOOKAHEAD): written when its weights,
 * (n_layers - 1) x n_experts x (hidden + 1) f32, fit in this many bytes
 * (the runtime keeps them in the arena) and the profile saw at least
 * MF_LOOKAHEAD_MIN_TOKENS tokens (one pass of SGD needs that many to beat
 * the router it replaces). Its input row is x / sqrt(mean(x^2) + EPS). */
#define MF_LOOKAHEAD_MAX_BYTES (1u << 20)
#define MF_LOOKAHEAD_MIN_TOKENS 20000u
#define MF_LOOKAHEAD_EPS 1e-5f

/* Resident tensor entry (48 bytes):
 *   u16 kind, u16 layer, u32 encoding, u32 rows, u32 cols,
 *   u64 offset, u64 bytes, u32 crc32, u32 reserved[3]
 * Vectors (norm weights, biases) have rows = 1 and are always f32. */
#define MF_RESIDENT_ENTRY_BYTES 48u

typedef enum {
    MF_T_EMBED = 1,          /* [vocab, hidden] */
    MF_T_FINAL_NORM = 2,     /* [hidden] */
    MF_T_LM_HEAD = 3,        /* [vocab, hidden] */
    MF_T_ATTN_NORM = 10,     /* [hidden] per layer */
    MF_T_WQ = 11,            /* [heads*head_dim, hidden] */
    MF_T_WK = 12,            /* [kv_heads*head_dim, hidden] */
    MF_T_WV = 13,            /* [kv_heads*head_dim, hidden] */
    MF_T_WO = 14,            /* [hidden, heads*head_dim] */
    MF_T_BQ = 15,            /* [heads*head_dim] */
    MF_T_BK = 16,
    MF_T_BV = 17,
    MF_T_Q_NORM = 18,        /* [head_dim] (per head) or [heads*head_dim] (full) */
    MF_T_K_NORM = 19,        /* [head_dim] or [kv_heads*head_dim] */
    MF_T_FFN_NORM = 20,      /* [hidden] post-attention norm */
    MF_T_ROUTER = 21,        /* [experts, hidden] */
    MF_T_SHARED_GATE = 22,   /* [shared_ffn, hidden] */
    MF_T_SHARED_UP = 23,     /* [shared_ffn, hidden] */
    MF_T_SHARED_DOWN = 24,   /* [hidden, shared_ffn] */
    MF_T_SHARED_EXPERT_GATE = 25 /* [1, hidden] */
} mf_tensor_kind;

/* Expert directory entry (32 bytes):
 *   u16 layer, u16 expert, u8 encoding, u8 reserved[3],
 *   u64 offset, u32 bytes, u32 crc32, u64 reserved
 * The blob is gate [ffn, hidden], up [ffn, hidden], down [hidden, ffn], each
 * encoded with `encoding` (see runtime/quant.h for byte sizes), back to back.
 * `bytes` excludes the padding up to the next page. */
#define MF_EXPERT_ENTRY_BYTES 32u

#endif
