/* moeflash inspect IMG [--json] [--verify]
 * Prints an image's header, sections, resident tensors and expert
 * directory (and fallback directory), as text or as one JSON object.
 * --verify also reads every resident tensor and expert blob and checks its
 * CRC. The tokenizer line names its kind and the BOS and end-of-sequence
 * ids that generate uses. The image is read through the POSIX port and validated by the
 * runtime's own reader (runtime/image.c), so what inspect accepts is what
 * the runtime accepts. Exit status 0, 1 for an invalid image, 2 for usage. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../port/posix/posix_port.h"
#include "../../runtime/image.h"
#include "../../runtime/moeflash.h"
#include "../../runtime/quant.h"
#include "../../runtime/tokenizer.h"
#include "../../runtime/tokenizer_format.h"
#include "../lib/imagewrite.h"
#include "cli_common.h"
#include "commands.h"

static const char *arch_name(uint32_t a)
{
    switch (a) {
    case MF_ARCH_MIXTRAL: return "mixtral";
    case MF_ARCH_QWEN2_MOE: return "qwen2_moe";
    case MF_ARCH_QWEN3_MOE: return "qwen3_moe";
    case MF_ARCH_OLMOE: return "olmoe";
    default: return "unknown";
    }
}

static const char *section_name(uint32_t k)
{
    switch (k) {
    case MF_SEC_RESIDENT_TABLE: return "resident_table";
    case MF_SEC_RESIDENT_DATA: return "resident_data";
    case MF_SEC_EXPERT_DIR: return "expert_dir";
    case MF_SEC_EXPERT_DATA: return "expert_data";
    case MF_SEC_PREDICTOR: return "predictor";
    case MF_SEC_TOKENIZER: return "tokenizer";
    case MF_SEC_FALLBACK_DIR: return "fallback_dir";
    case MF_SEC_EXPERT_STATS: return "expert_stats";
    case MF_SEC_TOKEN_ROUTES: return "token_routes";
    case MF_SEC_LOOKAHEAD: return "lookahead";
    default: return "unknown";
    }
}

static const char *tensor_name(uint32_t k)
{
    switch (k) {
    case MF_T_EMBED: return "embed";
    case MF_T_FINAL_NORM: return "final_norm";
    case MF_T_LM_HEAD: return "lm_head";
    case MF_T_ATTN_NORM: return "attn_norm";
    case MF_T_WQ: return "wq";
    case MF_T_WK: return "wk";
    case MF_T_WV: return "wv";
    case MF_T_WO: return "wo";
    case MF_T_BQ: return "bq";
    case MF_T_BK: return "bk";
    case MF_T_BV: return "bv";
    case MF_T_Q_NORM: return "q_norm";
    case MF_T_K_NORM: return "k_norm";
    case MF_T_FFN_NORM: return "ffn_norm";
    case MF_T_ROUTER: return "router";
    case MF_T_SHARED_GATE: return "shared_gate";
    case MF_T_SHARED_UP: return "shared_up";
    case MF_T_SHARED_DOWN: return "shared_down";
    case MF_T_SHARED_EXPERT_GATE: return "shared_expert_gate";
    default: return "unknown";
    }
}

static const char *enc_name(int e)
{
    const char *n = mf_encoding_name(e);
    return n ? n : "unknown";
}

static void flag_names(uint32_t f, char *buf, size_t cap)
{
    static const char *names[] = {"qkv_bias", "qk_norm_head", "qk_norm_full", "shared_expert", "norm_topk"};
    size_t n = 0;
    buf[0] = 0;
    for (int i = 0; i < 5; i++)
        if (f & (1u << i)) n += (size_t)snprintf(buf + n, cap - n, "%s%s", n ? "," : "", names[i]);
    if (!n) snprintf(buf, cap, "none");
}

/* CRC of [off, off+len) read through the port. */
static int crc_range(const mf_port *p, uint64_t off, uint64_t len, uint32_t *crc)
{
    static uint8_t buf[1 << 16];
    uint32_t c = 0;
    while (len) {
        size_t k = len < sizeof buf ? (size_t)len : sizeof buf;
        if (mf_port_read(p, off, buf, k) != MF_PORT_OK) return -1;
        c = mf_crc32(c, buf, k);
        off += k;
        len -= k;
    }
    *crc = c;
    return 0;
}

typedef struct {
    const mf_port *port;
    const mf_image_header *h;
    int json, verify;
    unsigned bad_crc;
} ctx;

static void print_header(const ctx *c, const char *path)
{
    const mf_image_header *h = c->h;
    char flags[128];
    flag_names(h->flags, flags, sizeof flags);
    if (c->json) {
        printf("{\"path\": \"");
        for (const char *s = path; *s; s++) {
            if (*s == '"' || *s == '\\') printf("\\%c", *s);
            else if ((unsigned char)*s < 0x20) printf("\\u%04x", *s);
            else putchar(*s);
        }
        printf("\", \"version\": %u, \"image_bytes\": %llu, \"arch\": \"%s\", \"arch_id\": %u, "
               "\"flags\": %u, \"flag_names\": \"%s\", \"vocab\": %u, \"hidden\": %u, \"layers\": %u, "
               "\"heads\": %u, \"kv_heads\": %u, \"head_dim\": %u, \"expert_ffn\": %u, \"n_experts\": %u, "
               "\"top_k\": %u, \"shared_ffn\": %u, \"max_seq\": %u, \"rms_eps\": %.9g, \"rope_theta\": %.9g, "
               "\"page_size\": %u, \"group_size\": %u",
               h->version, (unsigned long long)h->image_bytes, arch_name(h->arch), h->arch, h->flags, flags,
               h->vocab, h->hidden, h->n_layers, h->n_heads, h->n_kv_heads, h->head_dim, h->expert_ffn,
               h->n_experts, h->top_k, h->shared_ffn, h->max_seq, (double)h->rms_eps, (double)h->rope_theta,
               h->page_size, h->group_size);
        printf(", \"sections\": [");
        for (uint32_t i = 0; i < h->n_sections; i++) {
            const mf_section *s = &h->sections[i];
            printf("%s{\"kind\": \"%s\", \"kind_id\": %u, \"count\": %u, \"offset\": %llu, \"bytes\": %llu, "
                   "\"crc32\": %u}",
                   i ? ", " : "", section_name(s->kind), s->kind, s->count, (unsigned long long)s->offset,
                   (unsigned long long)s->bytes, s->crc32);
        }
        printf("]");
        return;
    }
    printf("image %s: format version %u, %llu bytes\n", path, h->version, (unsigned long long)h->image_bytes);
    printf("  arch %s, flags %s\n", arch_name(h->arch), flags);
    printf("  vocab %u, hidden %u, layers %u, heads %u, kv_heads %u, head_dim %u\n", h->vocab, h->hidden,
           h->n_layers, h->n_heads, h->n_kv_heads, h->head_dim);
    printf("  experts %u (top %u), expert_ffn %u, shared_ffn %u, max_seq %u\n", h->n_experts, h->top_k,
           h->expert_ffn, h->shared_ffn, h->max_seq);
    printf("  rms_eps %g, rope_theta %g, page_size %u, group_size %u\n", (double)h->rms_eps,
           (double)h->rope_theta, h->page_size, h->group_size);
    printf("sections (%u):\n", h->n_sections);
    for (uint32_t i = 0; i < h->n_sections; i++) {
        const mf_section *s = &h->sections[i];
        printf("  %-14s count %-6u offset %-10llu bytes %-10llu crc32 %08x\n", section_name(s->kind), s->count,
               (unsigned long long)s->offset, (unsigned long long)s->bytes, s->crc32);
    }
}

/* A token's stored bytes, printable: "<s>", "\\n", "\\xe2". */
static void print_token(const mf_tokenizer *t, uint32_t id, int json)
{
    size_t len = 0;
    const uint8_t *b = mf_tokenizer_token_bytes(t, id, &len);
    putchar('"');
    for (size_t i = 0; b && i < len; i++) {
        if (b[i] == '"' || b[i] == '\\') printf("\\%c", b[i]);
        else if (b[i] == '\n') printf("\\n");
        else if (b[i] >= 0x20 && b[i] < 0x7f) putchar(b[i]);
        else if (json) printf("\\u%04x", b[i]);
        else printf("\\x%02x", b[i]);
    }
    putchar('"');
}

/* The tokenizer section, validated by the runtime's own init: its kind,
 * sizes, and the BOS and end-of-sequence ids generate uses. */
static int print_tokenizer(ctx *c)
{
    const mf_section *s = mf_image_section(c->h, MF_SEC_TOKENIZER);
    if (!s) {
        if (c->json) printf(", \"tokenizer\": null");
        else printf("tokenizer: none: each token id is a byte; no BOS, no end-of-sequence token\n");
        return 0;
    }
    uint8_t *tables = malloc(s->bytes ? (size_t)s->bytes : 1);
    if (!tables) {
        fprintf(stderr, "moeflash inspect: out of memory for the tokenizer section\n");
        return -1;
    }
    static mf_tokenizer t;
    int rc = mf_port_read(c->port, s->offset, tables, (size_t)s->bytes);
    if (rc) {
        fprintf(stderr, "moeflash inspect: cannot read the tokenizer section\n");
        free(tables);
        return -1;
    }
    rc = mf_tokenizer_init(&t, tables, (size_t)s->bytes, c->h->vocab);
    if (rc) {
        fprintf(stderr, "moeflash inspect: invalid tokenizer section: %s\n", mf_strerror(rc));
        free(tables);
        return -1;
    }
    int byte_mode = t.hdr[MF_TOKH_MODE] == MF_TOKMODE_BYTE;
    const char *kind = byte_mode ? "byte-level BPE" : "SentencePiece-style BPE";
    uint32_t bos = mf_tokenizer_bos(&t);
    if (c->json) {
        printf(", \"tokenizer\": {\"kind\": \"%s\", \"vocab\": %u, \"merges\": %u, \"added_tokens\": %u, \"bos\": ",
               byte_mode ? "byte_bpe" : "char_bpe", t.hdr[MF_TOKH_N_VOCAB], t.hdr[MF_TOKH_N_MERGES],
               t.hdr[MF_TOKH_N_ADDED]);
        if (bos == MF_TOK_NONE) printf("null");
        else printf("%u", bos);
        printf(", \"eos\": [");
        for (uint32_t id = 0, n = 0; id < c->h->vocab; id++)
            if (mf_tokenizer_is_eos(&t, id)) printf("%s%u", n++ ? ", " : "", id);
        printf("]}");
    } else {
        printf("tokenizer: %s, %u tokens, %u merges, %u added tokens; BOS ", kind, t.hdr[MF_TOKH_N_VOCAB],
               t.hdr[MF_TOKH_N_MERGES], t.hdr[MF_TOKH_N_ADDED]);
        if (bos == MF_TOK_NONE) printf("none");
        else {
            printf("%u ", bos);
            print_token(&t, bos, 0);
        }
        printf("; end of sequence:");
        uint32_t n = 0;
        for (uint32_t id = 0; id < c->h->vocab; id++)
            if (mf_tokenizer_is_eos(&t, id)) {
                printf(" %u ", id);
                print_token(&t, id, 0);
                n++;
            }
        printf("%s\n", n ? "" : " none");
    }
    free(tables);
    return 0;
}

static int print_resident(ctx *c, uint64_t *total)
{
    const mf_section *t = mf_image_section(c->h, MF_SEC_RESIDENT_TABLE);
    *total = 0;
    if (c->json) printf(", \"resident\": [");
    else printf("resident tensors (%u):\n", t->count);
    for (uint32_t i = 0; i < t->count; i++) {
        mf_resident_entry e;
        int rc = mf_image_resident_entry(c->port, c->h, i, &e);
        if (rc) {
            if (c->json) printf("]}\n");
            fprintf(stderr, "moeflash inspect: resident entry %u: %s\n", i, mf_iw_error_name(rc));
            return -1;
        }
        *total += e.bytes;
        const char *ok = "";
        if (c->verify) {
            uint32_t crc;
            if (crc_range(c->port, e.offset, e.bytes, &crc)) {
                fprintf(stderr, "moeflash inspect: cannot read resident tensor %u\n", i);
                return -1;
            }
            ok = crc == e.crc32 ? "ok" : "BAD";
            if (crc != e.crc32) c->bad_crc++;
        }
        if (c->json)
            printf("%s{\"kind\": \"%s\", \"kind_id\": %u, \"layer\": %u, \"encoding\": \"%s\", \"rows\": %u, "
                   "\"cols\": %u, \"offset\": %llu, \"bytes\": %llu, \"crc32\": %u%s%s%s}",
                   i ? ", " : "", tensor_name(e.kind), e.kind, e.layer, enc_name((int)e.encoding), e.rows, e.cols,
                   (unsigned long long)e.offset, (unsigned long long)e.bytes, e.crc32,
                   c->verify ? ", \"crc_ok\": " : "", c->verify ? (*ok == 'o' ? "true" : "false") : "", "");
        else
            printf("  %-18s layer %-3u %-5s [%u, %u] %llu bytes at %llu %s\n", tensor_name(e.kind), e.layer,
                   enc_name((int)e.encoding), e.rows, e.cols, (unsigned long long)e.bytes,
                   (unsigned long long)e.offset, ok);
    }
    if (c->json) printf("]");
    return 0;
}

static int print_dir(ctx *c, uint32_t kind, const char *key, uint64_t *total)
{
    const mf_image_header *h = c->h;
    *total = 0;
    if (c->json) printf(", \"%s\": [", key);
    else printf("%s (%u layers x %u experts):\n", kind == MF_SEC_EXPERT_DIR ? "expert directory" : "fallback directory",
                h->n_layers, h->n_experts);
    for (uint32_t l = 0; l < h->n_layers; l++)
        for (uint32_t x = 0; x < h->n_experts; x++) {
            mf_expert_entry e;
            int rc = mf_image_expert_entry(c->port, h, kind, l, x, &e);
            if (rc) {
                if (c->json) printf("]}\n");
                fprintf(stderr, "moeflash inspect: %s entry layer %u expert %u: %s\n", key, l, x,
                        mf_iw_error_name(rc));
                return -1;
            }
            *total += e.bytes;
            const char *ok = "";
            if (c->verify) {
                uint32_t crc;
                if (crc_range(c->port, e.offset, e.bytes, &crc)) {
                    fprintf(stderr, "moeflash inspect: cannot read expert %u of layer %u\n", x, l);
                    return -1;
                }
                ok = crc == e.crc32 ? "ok" : "BAD";
                if (crc != e.crc32) c->bad_crc++;
            }
            if (c->json)
                printf("%s{\"layer\": %u, \"expert\": %u, \"offset\": %llu, \"bytes\": %u, \"encoding\": \"%s\", "
                       "\"crc32\": %u%s%s}",
                       (l || x) ? ", " : "", l, x, (unsigned long long)e.offset, e.bytes, enc_name(e.encoding),
                       e.crc32, c->verify ? ", \"crc_ok\": " : "", c->verify ? (*ok == 'o' ? "true" : "false") : "");
            else
                printf("  layer %-3u expert %-4u %-5s %u bytes at %llu crc32 %08x %s\n", l, x, enc_name(e.encoding),
                       e.bytes, (unsigned long long)e.offset, e.crc32, ok);
        }
    if (c->json) printf("]");
    return 0;
}

/* Text mode: the encoding of every expert as a layer x expert grid (rows of
 * at most 32 experts), a count per encoding and the average bits per expert
 * weight (all expert bytes, scales included). */
static int print_grid(ctx *c, uint32_t kind, uint64_t total)
{
    const mf_image_header *h = c->h;
    uint64_t count[MF_ENC_COUNT + 1] = {0};
    printf("%s encodings (layer x expert):\n", kind == MF_SEC_EXPERT_DIR ? "expert" : "fallback");
    for (uint32_t l = 0; l < h->n_layers; l++)
        for (uint32_t x0 = 0; x0 < h->n_experts; x0 += 32) {
            if (x0 == 0) printf("  L%-4u", l);
            else printf("  %-5s", "");
            printf("%4u:", x0);
            for (uint32_t x = x0; x < h->n_experts && x < x0 + 32; x++) {
                mf_expert_entry e;
                if (mf_image_expert_entry(c->port, h, kind, l, x, &e)) return -1;
                printf(" %-4s", enc_name(e.encoding));
                count[e.encoding < MF_ENC_COUNT ? e.encoding : MF_ENC_COUNT]++;
            }
            printf("\n");
        }
    printf("  counts:");
    for (int e = 0; e < MF_ENC_COUNT; e++)
        if (count[e]) printf(" %s %llu", enc_name(e), (unsigned long long)count[e]);
    double weights = 3.0 * h->hidden * h->expert_ffn * h->n_layers * h->n_experts;
    printf("; average %.3f bits per expert weight\n", weights > 0 ? 8.0 * (double)total / weights : 0.0);
    return 0;
}

int cmd_inspect(int argc, char **argv)
{
    const char *path = NULL;
    ctx c;
    memset(&c, 0, sizeof c);
    static const char USAGE[] = "usage: moeflash inspect IMG [--json] [--verify]\n";
    for (int i = 0; i < argc; i++) {
        if (cli_help(argv[i], USAGE)) return 0;
        if (!strcmp(argv[i], "--json")) c.json = 1;
        else if (!strcmp(argv[i], "--verify")) c.verify = 1;
        else if (argv[i][0] == '-' || path) {
            fputs(USAGE, stderr);
            return 2;
        } else path = argv[i];
    }
    if (!path) {
        fputs(USAGE, stderr);
        return 2;
    }
    mf_port port;
    mf_posix_port_state st;
    if (mf_posix_port_open(&port, &st, path) != MF_PORT_OK) {
        fprintf(stderr, "moeflash inspect: %s: cannot open\n", path);
        return 1;
    }
    mf_image_header h;
    static uint8_t scratch[1 << 16];
    int rc = mf_image_read_header(&port, &h, 1, scratch, sizeof scratch);
    if (rc) {
        fprintf(stderr, "moeflash inspect: %s: invalid image: %s\n", path, mf_iw_error_name(rc));
        mf_posix_port_close(&port);
        return 1;
    }
    c.port = &port;
    c.h = &h;
    uint64_t res_bytes = 0, exp_bytes = 0, fb_bytes = 0;
    int has_fb = mf_image_section(&h, MF_SEC_FALLBACK_DIR) != NULL;
    print_header(&c, path);
    int bad = print_tokenizer(&c) || print_resident(&c, &res_bytes) || print_dir(&c, MF_SEC_EXPERT_DIR, "experts", &exp_bytes) ||
              (has_fb && print_dir(&c, MF_SEC_FALLBACK_DIR, "fallback", &fb_bytes));
    if (!bad && !c.json)
        bad = print_grid(&c, MF_SEC_EXPERT_DIR, exp_bytes) || (has_fb && print_grid(&c, MF_SEC_FALLBACK_DIR, fb_bytes));
    if (!bad) {
        if (c.json) {
            printf(", \"resident_bytes\": %llu, \"expert_bytes\": %llu, \"fallback_bytes\": %llu",
                   (unsigned long long)res_bytes, (unsigned long long)exp_bytes, (unsigned long long)fb_bytes);
            if (c.verify) printf(", \"crc_failures\": %u", c.bad_crc);
            printf("}\n");
        } else {
            printf("resident_bytes %llu, expert_bytes %llu, fallback_bytes %llu\n", (unsigned long long)res_bytes,
                   (unsigned long long)exp_bytes, (unsigned long long)fb_bytes);
            if (c.verify) printf("crc failures: %u\n", c.bad_crc);
        }
    }
    mf_posix_port_close(&port);
    if (bad) return 1;
    if (c.bad_crc) {
        fprintf(stderr, "moeflash inspect: %s: %u CRC mismatches\n", path, c.bad_crc);
        return 1;
    }
    return 0;
}
