/*
 * Layout of the MF_SEC_TOKENIZER section (docs/tokenizer-format.md is the
 * prose version). Everything is little-endian u32 unless said otherwise, no
 * pointers: offsets are byte offsets from the start of the section, each a
 * multiple of 4, so the section is used in place from memory-mapped flash.
 *
 *   header            MF_TOK_HEADER_WORDS u32 (field indices below)
 *   byte_ids          256 u32: byte mode: the id of the symbol of each byte;
 *                     char mode: the byte-fallback token <0xXX> (or NONE)
 *   tok_off           n_vocab+1 u32: token i decodes to tok_bytes[tok_off[i] .. tok_off[i+1])
 *   tok_bytes         the decoded bytes of every token (padded to 4)
 *   tok_flags         n_vocab u8 MF_TOKF_* (padded to 4)
 *   merges            n_merges x {left, right, rank, result} sorted by (left, right);
 *                     lower rank merges first, equal ranks leftmost first
 *   merge_index       n_vocab+1 u32: merges with left == L are [merge_index[L], merge_index[L+1])
 *   chars             char mode: n_chars x {code point, id} sorted by code point
 *   added             n_added x {offset, length, id, flags} sorted by their bytes
 *                     (memcmp, then shorter first): strings matched in the raw text
 *   added_bytes       the added tokens' strings (padded to 4)
 *   sorted_vocab      n_vocab u32 ids sorted by their tok_bytes (only with MF_TOKF_IGNORE_MERGES)
 */
#ifndef MF_TOKENIZER_FORMAT_H
#define MF_TOKENIZER_FORMAT_H

#define MF_TOK_MAGIC 0x4B54464Du /* "MFTK" */
#define MF_TOK_VERSION 1u
#define MF_TOK_HEADER_WORDS 32u
#define MF_TOK_NONE 0xFFFFFFFFu

/* Header word indices. */
enum {
    MF_TOKH_MAGIC = 0,
    MF_TOKH_VERSION,
    MF_TOKH_HEADER_BYTES,
    MF_TOKH_TOTAL_BYTES,
    MF_TOKH_MODE,        /* MF_TOKMODE_* */
    MF_TOKH_FLAGS,       /* MF_TOKF_* */
    MF_TOKH_PRETOK,      /* byte mode: MF_TOKPRE_* */
    MF_TOKH_PREFIX,      /* char mode: MF_TOKPFX_* */
    MF_TOKH_N_VOCAB,
    MF_TOKH_UNK,         /* unknown token id or MF_TOK_NONE */
    MF_TOKH_N_MERGES,
    MF_TOKH_N_CHARS,
    MF_TOKH_N_ADDED,
    MF_TOKH_STRIP,       /* decode: leading spaces removed from the start of the text (0/1) */
    MF_TOKH_OFF_BYTE_IDS,
    MF_TOKH_OFF_TOK_OFF,
    MF_TOKH_OFF_TOK_BYTES,
    MF_TOKH_N_TOK_BYTES,
    MF_TOKH_OFF_TOK_FLAGS,
    MF_TOKH_OFF_MERGES,
    MF_TOKH_OFF_MERGE_INDEX,
    MF_TOKH_OFF_CHARS,
    MF_TOKH_OFF_ADDED,
    MF_TOKH_OFF_ADDED_BYTES,
    MF_TOKH_N_ADDED_BYTES,
    MF_TOKH_OFF_SORTED_VOCAB, /* 0 when absent */
    MF_TOKH_BOS,              /* the id transformers puts before a text (post-processor), or MF_TOK_NONE */
    MF_TOKH_N_EOS,            /* 0..MF_TOK_MAX_EOS ids that end a generation (generation_config.json /
                                 config.json eos_token_id); 0 in images written before it existed */
    MF_TOKH_EOS,              /* MF_TOK_MAX_EOS words, the first N_EOS used */
    MF_TOKH_COUNT = MF_TOKH_EOS + 4
};
#define MF_TOK_MAX_EOS 4u
_Static_assert(MF_TOKH_COUNT <= MF_TOK_HEADER_WORDS, "the tokenizer header has 32 words");

enum {
    MF_TOKMODE_BYTE = 1, /* byte-level BPE: symbols are bytes, regex pre-tokenizer */
    MF_TOKMODE_CHAR = 2  /* SentencePiece-style BPE: symbols are characters */
};

enum {
    MF_TOKPRE_NONE = 0,   /* the whole segment is one chunk */
    MF_TOKPRE_GPT2 = 1,   /* ByteLevel(use_regex=true) */
    MF_TOKPRE_QWEN2 = 2,  /* Split with Qwen2's pattern (\p{N} one at a time) */
    MF_TOKPRE_LLAMA3 = 3  /* the same with \p{N}{1,3} */
};

enum {
    MF_TOKPFX_NONE = 0,
    MF_TOKPFX_TEXT = 1,   /* SentencePiece dummy prefix: U+2581 before a non-empty text */
    MF_TOKPFX_SEGMENT = 2,/* before every non-empty segment between added tokens (Prepend, Metaspace always) */
    MF_TOKPFX_FIRST = 3   /* before the segment that starts the text (Metaspace first) */
};

/* Header flags. */
enum {
    MF_TOKF_SPACE_TO_META = 1u << 0,  /* char mode: ' ' becomes U+2581 */
    MF_TOKF_BYTE_FALLBACK = 1u << 1,  /* unknown characters become <0xXX> tokens */
    MF_TOKF_FUSE_UNK = 1u << 2,       /* consecutive unknowns give one unk id */
    MF_TOKF_IGNORE_MERGES = 1u << 3,  /* a chunk that is a whole token is not merged */
    MF_TOKF_SPLIT_META = 1u << 4,     /* char mode: chunk before a U+2581 that follows another character
                                         (exact: no mergeable piece contains X U+2581) */
    MF_TOKF_SPLIT_META_EACH = 1u << 5,/* char mode: chunk before every U+2581 (Metaspace split=true) */
    MF_TOKF_PREFIX_IF_NO_SPACE = 1u << 6, /* the prefix is not added when the segment starts with a space */
    MF_TOKF_NFC = 1u << 7              /* byte mode: segments are put in Unicode NFC first */
};

/* Per-token flags (tok_flags) and added-token flags. */
enum {
    MF_TOKT_SPECIAL = 1u << 0, /* a special (added) token */
    MF_TOKT_CONTROL = 1u << 1, /* decodes to nothing (<s>, </s>) */
    MF_TOKT_BYTE = 1u << 2,    /* a byte-fallback token */
    MF_TOKT_UNKNOWN = 1u << 3,
    MF_TOKT_ADDED = 1u << 4,
    MF_TOKT_LSTRIP = 1u << 5,  /* added: absorbs the whitespace on its left */
    MF_TOKT_RSTRIP = 1u << 6   /* added: absorbs the whitespace on its right */
};

#endif
