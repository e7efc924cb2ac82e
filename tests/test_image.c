/* The image format end to end: convert checkpoints with the library API,
 * read them back through runtime/image.c, and check
 *  - CRC-32 against the published check value;
 *  - header fields against config.json, weights against the checkpoint
 *    (embedding rows against golden.json; fused expert slices against the
 *    HF layout: gate rows, then up rows);
 *  - every CRC in the image (sections, tensors, expert blobs);
 *  - that corrupt copies fail with the right error code;
 *  - copy-with-section (add, replace, refuse structural kinds);
 *  - q8 expert weights within half a quantisation step of the originals;
 *  - sections at odd offsets (not the writer's 64-byte alignment) read and
 *    run exactly as the original image. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../port/posix/posix_port.h"
#include "../port/sim/sim_port.h"
#include "../runtime/image.h"
#include "../runtime/moeflash.h"
#include "../runtime/quant.h"
#include "../tools/lib/convert.h"
#include "../tools/lib/imagewrite.h"
#include "../tools/lib/json.h"
#include "../tools/lib/safetensors.h"
#include "harness.h"
#include "image_fixture.h"
#include "port_fixture.h"
#include "crc32_ref.h"

static char tmpdir[256];

static const char *tmp(const char *name)
{
    static char path[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(path[k], sizeof path[k], "%s/%s", tmpdir, name);
    return path[k];
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void fix_header_crc(uint8_t *img)
{
    put32(img + MF_HEADER_CRC_OFFSET, mf_crc32(0, img, MF_HEADER_CRC_OFFSET));
}

/* Header of an image in memory, through the memory port (map() available)
 * or, with nomap, through plain reads streamed via scratch. */
static int read_mem(const uint8_t *img, size_t len, mf_image_header *h, int nomap)
{
    mf_port p;
    mf_mem_port_state st;
    if (mf_mem_port_open(&p, &st, img, len) != MF_PORT_OK) return 999;
    if (nomap) p.map = NULL;
    uint8_t scratch[300];
    return mf_image_read_header(&p, h, 1, scratch, sizeof scratch);
}

static const mf_section *sec(const mf_image_header *h, uint32_t kind)
{
    const mf_section *s = mf_image_section(h, kind);
    if (!s) {
        fprintf(stderr, "section %u missing\n", kind);
        exit(1);
    }
    return s;
}

static void test_crc(void)
{
#if defined(MF_CRC32_A64)
    printf("mf_crc32: crc32x\n"); /* tests/scripts/aarch64_qemu.sh looks for it */
#endif
    CHECK(mf_crc32(0, "123456789", 9) == 0xCBF43926u, "check value %08x", mf_crc32(0, "123456789", 9));
    uint32_t c = mf_crc32(0, "1234", 4);
    CHECK(mf_crc32(c, "56789", 5) == 0xCBF43926u, "chained");
    CHECK(mf_crc32(0, "", 0) == 0, "empty");

    /* Slicing by 4 (or CRC32X) against the bit-at-a-time definition: every
     * length 0-40 at every alignment 0-7, chained at every split point, and 256 KiB of
     * pseudo-random bytes (each of the 4 x 256 table entries is looked up
     * thousands of times, so a wrong one cannot hide). */
    enum { BIG = 256 * 1024 };
    static uint8_t buf[BIG + 8];
    uint64_t x = 0x9E3779B97F4A7C15ull;
    for (size_t i = 0; i < sizeof buf; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        buf[i] = (uint8_t)(x >> 24);
    }
    int bad = 0;
    for (size_t off = 0; off < 8; off++)
        for (size_t n = 0; n <= 40; n++) {
            uint32_t want = crc32_bitwise(0, buf + off, n);
            if (mf_crc32(0, buf + off, n) != want) bad++;
            for (size_t k = 0; k <= n; k++)
                if (mf_crc32(mf_crc32(0, buf + off, k), buf + off + k, n - k) != want) bad++;
        }
    CHECK(bad == 0, "%d short CRCs differ from the bitwise definition", bad);
    for (size_t off = 0; off < 3; off++)
        CHECK(mf_crc32(0, buf + off, BIG) == crc32_bitwise(0, buf + off, BIG),
              "256 KiB at offset %zu", off);
}

/* Every CRC of the image verifies, and the header matches config.json. */
static void test_mixtral_readback(const char *path, uint8_t **img_out, size_t *len_out)
{
    mf_port port;
    mf_posix_port_state ps;
    CHECK(mf_posix_port_open(&port, &ps, path) == MF_PORT_OK, "open %s", path);
    mf_image_header h;
    uint8_t scratch[512];
    int rc = mf_image_read_header(&port, &h, 1, scratch, sizeof scratch);
    CHECK(rc == MF_OK, "read header: %d", rc);
    /* tests/data/arch-mixtral/config.json, by hand. */
    CHECK(h.version == 1 && h.arch == MF_ARCH_MIXTRAL, "version/arch");
    CHECK(h.vocab == 256 && h.hidden == 64 && h.n_layers == 2 && h.n_heads == 4 && h.n_kv_heads == 2 &&
              h.head_dim == 16 && h.expert_ffn == 96 && h.n_experts == 8 && h.top_k == 2 && h.shared_ffn == 0 &&
              h.max_seq == 131072,
          "dims");
    CHECK(h.rms_eps == 1e-5f && h.rope_theta == 10000.0f, "eps/theta");
    CHECK(h.flags == MF_FLAG_NORM_TOPK, "flags %u", h.flags);
    CHECK(h.page_size == 4096 && h.group_size == 32, "page/group");

    /* Section CRCs (expert data excepted: 0 by definition). */
    for (uint32_t i = 0; i < h.n_sections; i++) {
        const mf_section *s = &h.sections[i];
        uint8_t *b = malloc(s->bytes);
        CHECK(mf_port_read(&port, s->offset, b, s->bytes) == 0, "read section");
        uint32_t c = mf_crc32(0, b, s->bytes);
        CHECK(s->kind == MF_SEC_EXPERT_DATA ? s->crc32 == 0 : s->crc32 == c, "section %u crc", s->kind);
        free(b);
    }
    /* Resident tensors: 2 layers x (attn_norm, q, k, v, o, ffn_norm, router) + embed, norm, lm_head. */
    const mf_section *rt = sec(&h, MF_SEC_RESIDENT_TABLE);
    CHECK(rt->count == 2 * 7 + 3, "resident count %u", rt->count);
    int kinds_seen[32] = {0};
    for (uint32_t i = 0; i < rt->count; i++) {
        mf_resident_entry e;
        CHECK(mf_image_resident_entry(&port, &h, i, &e) == MF_OK, "entry %u", i);
        uint8_t *b = malloc(e.bytes);
        CHECK(mf_port_read(&port, e.offset, b, e.bytes) == 0, "read tensor");
        CHECK(mf_crc32(0, b, e.bytes) == e.crc32, "tensor %u crc", i);
        CHECK(e.encoding == MF_ENC_F32 && e.bytes == 4ull * e.rows * e.cols, "f32 size");
        if (e.kind < 32) kinds_seen[e.kind]++;
        free(b);
    }
    CHECK(kinds_seen[MF_T_EMBED] == 1 && kinds_seen[MF_T_LM_HEAD] == 1 && kinds_seen[MF_T_FINAL_NORM] == 1 &&
              kinds_seen[MF_T_WQ] == 2 && kinds_seen[MF_T_ROUTER] == 2 && kinds_seen[MF_T_ATTN_NORM] == 2,
          "kinds");
    CHECK(mf_image_resident_entry(&port, &h, rt->count, &(mf_resident_entry){0}) == MF_E_ARG, "index past table");

    /* Expert blobs: page aligned, CRC, size = 3 * 96 * 64 * 4. */
    for (uint32_t l = 0; l < 2; l++)
        for (uint32_t x = 0; x < 8; x++) {
            mf_expert_entry e;
            CHECK(mf_image_expert_entry(&port, &h, MF_SEC_EXPERT_DIR, l, x, &e) == MF_OK, "expert");
            CHECK(e.layer == l && e.expert == x && e.offset % 4096 == 0 && e.bytes == 3 * 96 * 64 * 4, "entry");
            uint8_t *b = malloc(e.bytes);
            CHECK(mf_port_read(&port, e.offset, b, e.bytes) == 0, "read blob");
            CHECK(mf_crc32(0, b, e.bytes) == e.crc32, "blob crc l%u e%u", l, x);
            free(b);
        }
    CHECK(mf_image_expert_entry(&port, &h, MF_SEC_FALLBACK_DIR, 0, 0, &(mf_expert_entry){0}) == MF_E_UNSUPPORTED,
          "no fallback");
    CHECK(mf_image_expert_entry(&port, &h, MF_SEC_EXPERT_DIR, 2, 0, &(mf_expert_entry){0}) == MF_E_ARG, "layer oob");

    /* The whole file into memory for the corruption tests. */
    size_t len = (size_t)port.size;
    uint8_t *img = malloc(len);
    CHECK(mf_port_read(&port, 0, img, len) == 0, "read all");
    CHECK(len == h.image_bytes, "file size %zu = image_bytes %llu", len, (unsigned long long)h.image_bytes);
    mf_posix_port_close(&port);
    *img_out = img;
    *len_out = len;
}

/* Embedding and lm_head rows (f32 in the image) equal the checkpoint:
 * embed against golden hidden_states[0], which transformers computed. */
static void test_weights_match_golden(const uint8_t *img, size_t len)
{
    mf_port p;
    mf_mem_port_state st;
    mf_mem_port_open(&p, &st, img, len);
    mf_image_header h;
    uint8_t scratch[256];
    CHECK(mf_image_read_header(&p, &h, 0, scratch, sizeof scratch) == MF_OK, "header");
    mf_resident_entry emb = {0};
    for (uint32_t i = 0; i < sec(&h, MF_SEC_RESIDENT_TABLE)->count; i++) {
        mf_resident_entry e;
        mf_image_resident_entry(&p, &h, i, &e);
        if (e.kind == MF_T_EMBED) emb = e;
    }
    CHECK(emb.rows == 256 && emb.cols == 64, "embed entry");
    size_t glen;
    char *text = mf_read_file("tests/data/arch-mixtral/golden.json", &glen);
    mf_json_doc doc;
    CHECK(text && mf_json_parse(&doc, text, glen) == 0, "golden");
    free(text);
    const mf_json *c = mf_json_at(mf_json_get(doc.root, "cases"), 0);
    const mf_json *toks = mf_json_get(c, "tokens");
    const mf_json *h0 = mf_json_at(mf_json_get(c, "hidden_states"), 0);
    int bad = 0;
    for (size_t t = 0; t < toks->count; t++) {
        uint32_t id = (uint32_t)mf_json_at(toks, t)->number;
        float row[64];
        mf_dequantize_row(MF_ENC_F32, img + emb.offset, id, 64, h.group_size, row);
        for (int j = 0; j < 64; j++)
            if (fabs(row[j] - mf_json_at(mf_json_at(h0, t), j)->number) > 1e-7) bad++;
    }
    CHECK(bad == 0, "%d embedding values differ from golden", bad);
    mf_json_free(&doc);
}

static void test_corruption(const uint8_t *img0, size_t len)
{
    uint8_t *img = malloc(len);
    mf_image_header h, h0;
    CHECK(read_mem(img0, len, &h0, 0) == MF_OK, "clean (map)");
    CHECK(read_mem(img0, len, &h, 1) == MF_OK, "clean (stream)");
    const mf_section *rt = sec(&h0, MF_SEC_RESIDENT_TABLE), *ed = sec(&h0, MF_SEC_EXPERT_DIR);

#define RESET() memcpy(img, img0, len)
    RESET();
    img[0] ^= 0x20;
    CHECK(read_mem(img, len, &h, 0) == MF_E_FORMAT, "wrong magic");

    RESET();
    put32(img + MF_H_VERSION, MF_FORMAT_VERSION + 1);
    fix_header_crc(img);
    CHECK(read_mem(img, len, &h, 0) == MF_E_VERSION, "version+1");
    put32(img + MF_H_VERSION, 0);
    fix_header_crc(img);
    CHECK(read_mem(img, len, &h, 0) == MF_E_FORMAT, "version 0");

    RESET();
    img[MF_H_HIDDEN] ^= 1; /* header changed, CRC not fixed */
    CHECK(read_mem(img, len, &h, 0) == MF_E_CRC, "header crc");

    RESET();
    img[rt->offset + 5] ^= 0x10; /* a byte of the resident table */
    CHECK(read_mem(img, len, &h, 0) == MF_E_CRC, "resident table crc (map)");
    CHECK(read_mem(img, len, &h, 1) == MF_E_CRC, "resident table crc (stream)");

    RESET();
    img[ed->offset + ed->bytes - 1] ^= 0x01; /* last byte of the expert directory */
    CHECK(read_mem(img, len, &h, 1) == MF_E_CRC, "expert dir crc");

    /* Truncated copies: the header promises more bytes than the device has. */
    CHECK(read_mem(img0, len - 1, &h, 0) == MF_E_RANGE, "truncated by one byte");
    CHECK(read_mem(img0, 300, &h, 0) == MF_E_RANGE, "truncated inside the header");
    CHECK(read_mem(img0, 4, &h, 0) == MF_E_FORMAT, "four bytes");

    /* A section pointing past the end of the image (CRC fixed). */
    RESET();
    uint32_t i_rt = 0;
    while (h0.sections[i_rt].kind != MF_SEC_RESIDENT_TABLE) i_rt++;
    put64(img + MF_H_SECTIONS + i_rt * MF_SECTION_BYTES + 8, len - 100);
    fix_header_crc(img);
    CHECK(read_mem(img, len, &h, 0) == MF_E_RANGE, "section past end");
    RESET();
    put64(img + MF_H_IMAGE_BYTES, len + 4096);
    fix_header_crc(img);
    CHECK(read_mem(img, len, &h, 0) == MF_E_RANGE, "image_bytes past the device");

    /* Inconsistent hyper-parameters and tables (CRC fixed each time). */
    struct {
        uint32_t off, val;
        int want;
        const char *what;
    } hp[] = {
        {MF_H_TOP_K, 9, MF_E_FORMAT, "top_k > experts"},
        {MF_H_HEADS, 0, MF_E_FORMAT, "zero heads"},
        {MF_H_KV_HEADS, 3, MF_E_FORMAT, "heads % kv_heads"},
        {MF_H_HEAD_DIM, 15, MF_E_FORMAT, "odd head_dim"},
        {MF_H_ARCH, 9, MF_E_UNSUPPORTED, "unknown arch"},
        {MF_H_FLAGS, 1u << 20, MF_E_UNSUPPORTED, "unknown flag"},
        {MF_H_SHARED_FFN, 32, MF_E_FORMAT, "shared_ffn without its flag"},
        {MF_H_PAGE_SIZE, 3000, MF_E_FORMAT, "page size not a power of two"},
        {MF_H_GROUP_SIZE, 0, MF_E_FORMAT, "group 0"},
        {MF_H_RMS_EPS, 0xBF800000u, MF_E_FORMAT, "negative eps"},
        {MF_H_ROPE_THETA, 0x7F800000u, MF_E_FORMAT, "infinite theta"},
        {MF_H_EXPERTS, 4, MF_E_FORMAT, "expert dir count != layers*experts"},
        {MF_H_N_SECTIONS, MF_MAX_SECTIONS + 1, MF_E_FORMAT, "too many sections"},
        {MF_H_HEADER_BYTES, 256, MF_E_FORMAT, "header_bytes"},
        /* docs/image-format.md "What a reader checks", step 7. */
        {MF_H_IMAGE_BYTES, 256, MF_E_FORMAT, "image_bytes below the header (step 5)"},
        {MF_H_VOCAB, (1u << 24) + 1, MF_E_FORMAT, "vocab above 2^24"},
        {MF_H_HIDDEN, (1u << 24) + 1, MF_E_FORMAT, "hidden above 2^24"},
        {MF_H_MAX_SEQ, (1u << 24) + 1, MF_E_FORMAT, "max_seq above 2^24"},
        {MF_H_EXPERT_FFN, (1u << 24) + 1, MF_E_FORMAT, "expert_ffn above 2^24"},
        {MF_H_HEAD_DIM, 1u << 23, MF_E_FORMAT, "heads * head_dim above 2^24"},
        {MF_H_GROUP_SIZE, (1u << 24) + 1, MF_E_FORMAT, "group_size above 2^24"},
        {MF_H_RMS_EPS, 0, MF_E_FORMAT, "zero eps"},
        {MF_H_ROPE_THETA, 0, MF_E_FORMAT, "zero theta"},
        {MF_H_FLAGS, MF_FLAG_NORM_TOPK | MF_FLAG_QK_NORM_HEAD | MF_FLAG_QK_NORM_FULL, MF_E_FORMAT,
         "both QK-norm flags"},
    };
    for (size_t i = 0; i < sizeof hp / sizeof hp[0]; i++) {
        RESET();
        put32(img + hp[i].off, hp[i].val);
        fix_header_crc(img);
        int rc = read_mem(img, len, &h, 0);
        CHECK(rc == hp[i].want, "%s: %d, want %d", hp[i].what, rc, hp[i].want);
    }
    /* Resident table's byte size not count * 48. */
    RESET();
    put32(img + MF_H_SECTIONS + i_rt * MF_SECTION_BYTES + 4, rt->count + 1);
    fix_header_crc(img);
    CHECK(read_mem(img, len, &h, 0) == MF_E_FORMAT, "table count/bytes");
    /* Two sections of the same kind. */
    RESET();
    put32(img + MF_H_SECTIONS + ((i_rt + 1) % h0.n_sections) * MF_SECTION_BYTES, MF_SEC_RESIDENT_TABLE);
    fix_header_crc(img);
    CHECK(read_mem(img, len, &h, 0) == MF_E_FORMAT, "duplicate section kind");

    /* Entries: decoded lazily, so checked by the entry functions. The table
     * CRC is not checked there (verify_tables did that at open). */
    mf_port p;
    mf_mem_port_state st;
    mf_resident_entry re;
    mf_expert_entry ee;
    RESET();
    mf_mem_port_open(&p, &st, img, len);
    put64(img + rt->offset + 16, len); /* tensor 0 offset past the data section */
    CHECK(mf_image_resident_entry(&p, &h0, 0, &re) == MF_E_RANGE, "tensor offset past data");
    RESET();
    put64(img + rt->offset + 24, 12); /* tensor 0 bytes inconsistent with its shape */
    CHECK(mf_image_resident_entry(&p, &h0, 0, &re) == MF_E_FORMAT, "tensor size vs shape");
    RESET();
    put32(img + rt->offset + 4, 77); /* encoding */
    CHECK(mf_image_resident_entry(&p, &h0, 0, &re) == MF_E_UNSUPPORTED, "tensor encoding");
    RESET();
    put64(img + ed->offset + 3 * MF_EXPERT_ENTRY_BYTES + 8, len + 4096 * 4);
    CHECK(mf_image_expert_entry(&p, &h0, MF_SEC_EXPERT_DIR, 0, 3, &ee) == MF_E_RANGE, "blob past end");
    RESET();
    put64(img + ed->offset + 3 * MF_EXPERT_ENTRY_BYTES + 8, sec(&h0, MF_SEC_EXPERT_DATA)->offset + 100);
    CHECK(mf_image_expert_entry(&p, &h0, MF_SEC_EXPERT_DIR, 0, 3, &ee) == MF_E_FORMAT, "blob misaligned");
    RESET();
    img[ed->offset + 3 * MF_EXPERT_ENTRY_BYTES + 2] = 5; /* entry names expert 5 at index 3 */
    CHECK(mf_image_expert_entry(&p, &h0, MF_SEC_EXPERT_DIR, 0, 3, &ee) == MF_E_FORMAT, "entry order");
    RESET();
    CHECK(mf_image_expert_entry(&p, &h0, MF_SEC_EXPERT_DIR, 0, 3, &ee) == MF_OK, "clean entry");
    img[ee.offset + 17] ^= 4; /* a weight byte: the blob CRC no longer matches */
    CHECK(mf_crc32(0, img + ee.offset, ee.bytes) != ee.crc32, "blob corruption detectable");
#undef RESET
    free(img);
}

/* Section table entry i of an image in memory. */
static uint8_t *sec_entry(uint8_t *img, uint32_t i) { return img + MF_H_SECTIONS + i * MF_SECTION_BYTES; }

static uint32_t sec_index(const mf_image_header *h, uint32_t kind)
{
    uint32_t i = 0;
    while (i < h->n_sections && h->sections[i].kind != kind) i++;
    return i;
}

/* Sets entry i to (kind, count, offset, bytes) with the CRC of those bytes. */
static void set_section(uint8_t *img, uint32_t i, uint32_t kind, uint32_t count, uint64_t off, uint64_t bytes)
{
    uint8_t *e = sec_entry(img, i);
    put32(e, kind);
    put32(e + 4, count);
    put64(e + 8, off);
    put64(e + 16, bytes);
    put32(e + 24, kind == MF_SEC_EXPERT_DATA ? 0 : mf_crc32(0, img + off, (size_t)bytes));
}

/* The structural rules of docs/image-format.md (sections, resident and
 * expert entries) on copies of a good image that break one rule each, every
 * CRC made consistent so that only the rule can refuse them. */
static void test_structure(const uint8_t *img0, size_t len)
{
    uint8_t *img = malloc(len);
    mf_image_header h, h0;
    CHECK(read_mem(img0, len, &h0, 0) == MF_OK, "clean");
    const mf_section *rt = sec(&h0, MF_SEC_RESIDENT_TABLE), *ed = sec(&h0, MF_SEC_EXPERT_DIR);
    const mf_section *xd = sec(&h0, MF_SEC_EXPERT_DATA);
    const uint32_t n = h0.n_sections; /* the next free table entry */
    CHECK(n < MF_MAX_SECTIONS, "room for one more section");
#define RESET() memcpy(img, img0, len)
#define ADD(kind, off, bytes)                                 \
    do {                                                      \
        set_section(img, n, (kind), 0, (off), (bytes));       \
        put32(img + MF_H_N_SECTIONS, n + 1);                  \
        fix_header_crc(img);                                  \
    } while (0)
    /* An extra section of an unknown kind is ignored (Versioning). */
    RESET();
    ADD(11, rt->offset + rt->bytes - 48, 0);
    CHECK(read_mem(img, len, &h, 0) == MF_OK, "empty section of an unknown kind");
    /* "kind 0 is invalid". */
    RESET();
    ADD(0, 512, 0);
    CHECK(read_mem(img, len, &h, 0) == MF_E_FORMAT, "section of kind 0");
    /* Every section inside [512, image_bytes). */
    RESET();
    ADD(11, 0, 16);
    CHECK(read_mem(img, len, &h, 0) == MF_E_RANGE, "section at offset 0 (the header)");
    RESET();
    ADD(11, 500, 8);
    CHECK(read_mem(img, len, &h, 0) == MF_E_RANGE, "section inside the header");
    /* Sections do not overlap. */
    RESET();
    ADD(11, rt->offset, MF_RESIDENT_ENTRY_BYTES);
    CHECK(read_mem(img, len, &h, 0) == MF_E_FORMAT, "section overlapping the resident table");
    RESET();
    ADD(11, ed->offset + ed->bytes - 8, 8);
    CHECK(read_mem(img, len, &h, 0) == MF_E_FORMAT, "section overlapping the end of the expert dir");
    /* Kinds 1-4 are required: each renamed to an unknown kind. */
    const uint32_t required[] = {MF_SEC_EXPERT_DIR, MF_SEC_RESIDENT_DATA, MF_SEC_EXPERT_DATA, MF_SEC_RESIDENT_TABLE};
    for (size_t k = 0; k < 4; k++) {
        RESET();
        put32(sec_entry(img, sec_index(&h0, required[k])), 11);
        fix_header_crc(img);
        CHECK(read_mem(img, len, &h, 0) == MF_E_FORMAT, "required section %u missing", required[k]);
    }
    /* Table sizes: the resident table holds the tensors (EMBED always),
     * directories hold exactly n_layers * n_experts entries of 32 bytes. */
    RESET();
    set_section(img, sec_index(&h0, MF_SEC_RESIDENT_TABLE), MF_SEC_RESIDENT_TABLE, 0, rt->offset, 0);
    fix_header_crc(img);
    CHECK(read_mem(img, len, &h, 0) == MF_E_FORMAT, "empty resident table");
    RESET();
    set_section(img, sec_index(&h0, MF_SEC_EXPERT_DIR), MF_SEC_EXPERT_DIR, ed->count + 1, ed->offset, ed->bytes);
    fix_header_crc(img);
    CHECK(read_mem(img, len, &h, 0) == MF_E_FORMAT, "expert dir count != layers * experts");
    RESET();
    set_section(img, sec_index(&h0, MF_SEC_EXPERT_DIR), MF_SEC_EXPERT_DIR, ed->count, ed->offset,
                ed->bytes - MF_EXPERT_ENTRY_BYTES);
    fix_header_crc(img);
    CHECK(read_mem(img, len, &h, 0) == MF_E_FORMAT, "expert dir bytes != count * 32");
    /* EXPERT_DATA's offset is a multiple of page_size. */
    RESET();
    set_section(img, sec_index(&h0, MF_SEC_EXPERT_DATA), MF_SEC_EXPERT_DATA, 0, xd->offset + 64, xd->bytes - 64);
    fix_header_crc(img);
    CHECK(read_mem(img, len, &h, 0) == MF_E_FORMAT, "expert data not page aligned");
    /* The shared expert's width is bounded like the other dimensions. */
    RESET();
    put32(img + MF_H_FLAGS, MF_FLAG_NORM_TOPK | MF_FLAG_SHARED_EXPERT);
    put32(img + MF_H_SHARED_FFN, (1u << 24) + 1);
    fix_header_crc(img);
    CHECK(read_mem(img, len, &h, 0) == MF_E_FORMAT, "shared_ffn above 2^24");

    /* Resident entries (decoded on demand against the clean header). */
    mf_port p;
    mf_mem_port_state st;
    mf_resident_entry re;
    RESET();
    mf_mem_port_open(&p, &st, img, len);
    uint32_t i_embed = rt->count, i_wq1 = rt->count, i_norm0 = rt->count;
    for (uint32_t i = 0; i < rt->count; i++) {
        CHECK(mf_image_resident_entry(&p, &h0, i, &re) == MF_OK, "entry %u", i);
        if (re.kind == MF_T_EMBED) i_embed = i;
        if (re.kind == MF_T_WQ && re.layer == 1) i_wq1 = i;
        if (re.kind == MF_T_ATTN_NORM && re.layer == 0) i_norm0 = i;
    }
    CHECK(i_embed < rt->count && i_wq1 < rt->count && i_norm0 < rt->count, "entries found");
    if (i_embed < rt->count && i_wq1 < rt->count && i_norm0 < rt->count) {
        uint8_t *e_embed = img + rt->offset + i_embed * MF_RESIDENT_ENTRY_BYTES;
        uint8_t *e_wq1 = img + rt->offset + i_wq1 * MF_RESIDENT_ENTRY_BYTES;
        uint8_t *e_norm0 = img + rt->offset + i_norm0 * MF_RESIDENT_ENTRY_BYTES;
        /* a per-layer kind with layer >= n_layers, a global kind with layer != 0 */
        e_wq1[2] = 2;
        CHECK(mf_image_resident_entry(&p, &h0, i_wq1, &re) == MF_E_FORMAT, "per-layer tensor at layer n_layers");
        RESET();
        e_embed[2] = 1;
        CHECK(mf_image_resident_entry(&p, &h0, i_embed, &re) == MF_E_FORMAT, "global tensor at layer 1");
        /* a vector kind (one row, f32): in bf16 with the bf16 size, and as
         * [2, 32] f32 (the same 256 bytes) */
        RESET();
        put32(e_norm0 + 4, MF_ENC_BF16);
        put64(e_norm0 + 24, mf_matrix_bytes(MF_ENC_BF16, 1, h0.hidden, h0.group_size));
        CHECK(mf_image_resident_entry(&p, &h0, i_norm0, &re) == MF_E_FORMAT, "bf16 norm vector");
        RESET();
        put32(e_norm0 + 8, 2);
        put32(e_norm0 + 12, h0.hidden / 2);
        CHECK(mf_image_resident_entry(&p, &h0, i_norm0, &re) == MF_E_FORMAT, "norm vector of two rows");
    }

    /* Expert entries: layer 0 expert 3 names layer 1; its bytes differ
     * from 2 * gate + down by one f32 either way. */
    mf_expert_entry ee;
    uint8_t *x3 = img + ed->offset + 3 * MF_EXPERT_ENTRY_BYTES;
    RESET();
    x3[0] = 1;
    CHECK(mf_image_expert_entry(&p, &h0, MF_SEC_EXPERT_DIR, 0, 3, &ee) == MF_E_FORMAT, "entry names another layer");
    RESET();
    CHECK(mf_image_expert_entry(&p, &h0, MF_SEC_EXPERT_DIR, 0, 3, &ee) == MF_OK, "clean entry");
    uint32_t blob = ee.bytes;
    put32(x3 + 16, blob - 4);
    CHECK(mf_image_expert_entry(&p, &h0, MF_SEC_EXPERT_DIR, 0, 3, &ee) == MF_E_FORMAT, "blob 4 bytes short");
    put32(x3 + 16, blob + 4);
    CHECK(mf_image_expert_entry(&p, &h0, MF_SEC_EXPERT_DIR, 0, 3, &ee) == MF_E_FORMAT, "blob 4 bytes long");
#undef ADD
#undef RESET
    free(img);
}

/* copy-with-section: add, replace (the image does not grow), refuse. */
static void test_copy_with_section(const char *src)
{
    char err[256];
    const char *dst = tmp("copy.img");
    uint8_t pred[1000];
    for (int i = 0; i < 1000; i++) pred[i] = (uint8_t)(i * 7);
    CHECK(mf_image_copy_with_section(src, dst, MF_SEC_PREDICTOR, 10, pred, sizeof pred, err, sizeof err) == 0,
          "add: %s", err);
    size_t len;
    uint8_t *img = (uint8_t *)mf_read_file(dst, &len);
    mf_image_header h;
    CHECK(img && read_mem(img, len, &h, 0) == MF_OK, "copy verifies");
    const mf_section *s = mf_image_section(&h, MF_SEC_PREDICTOR);
    CHECK(s && s->count == 10 && s->bytes == 1000 && !memcmp(img + s->offset, pred, 1000), "section content");
    uint64_t first_len = len;
    free(img);
    /* Replace in place (same path), twice, with a smaller section. */
    for (int k = 0; k < 2; k++)
        CHECK(mf_image_copy_with_section(dst, dst, MF_SEC_PREDICTOR, 3, pred + 1, 300, err, sizeof err) == 0,
              "replace: %s", err);
    img = (uint8_t *)mf_read_file(dst, &len);
    CHECK(img && read_mem(img, len, &h, 1) == MF_OK, "replaced copy verifies");
    s = mf_image_section(&h, MF_SEC_PREDICTOR);
    CHECK(s && s->count == 3 && s->bytes == 300 && !memcmp(img + s->offset, pred + 1, 300), "replaced content");
    CHECK(len == first_len - 700, "replacing the last section shrinks the file: %zu vs %llu", len,
          (unsigned long long)first_len);
    int n_pred = 0;
    for (uint32_t i = 0; i < h.n_sections; i++) n_pred += h.sections[i].kind == MF_SEC_PREDICTOR;
    CHECK(n_pred == 1, "one predictor section");
    free(img);
    /* Two sections at once (as moeflash profile writes them), replaced
     * twice: the file does not grow, both read back. */
    mf_extra_section two[2] = {{MF_SEC_PREDICTOR, 2, pred, 500}, {MF_SEC_TOKEN_ROUTES, 1, pred + 7, 77}};
    uint64_t two_len = 0;
    for (int k = 0; k < 3; k++) {
        CHECK(mf_image_copy_with_sections(k ? dst : src, dst, two, 2, err, sizeof err) == 0,
              "two sections: %s", err);
        img = (uint8_t *)mf_read_file(dst, &len);
        CHECK(img && read_mem(img, len, &h, 1) == MF_OK, "two-section copy verifies");
        const mf_section *a = img ? mf_image_section(&h, MF_SEC_PREDICTOR) : NULL;
        const mf_section *b = img ? mf_image_section(&h, MF_SEC_TOKEN_ROUTES) : NULL;
        CHECK(a && b && a->bytes == 500 && b->bytes == 77 && !memcmp(img + a->offset, pred, 500) &&
                  !memcmp(img + b->offset, pred + 7, 77),
              "both sections' content");
        if (k == 0) two_len = len;
        CHECK(len == two_len, "replacing both again keeps %zu bytes (first %llu)", len,
              (unsigned long long)two_len);
        free(img);
    }
    mf_extra_section dup[2] = {{MF_SEC_PREDICTOR, 1, pred, 4}, {MF_SEC_PREDICTOR, 1, pred, 4}};
    CHECK(mf_image_copy_with_sections(src, dst, dup, 2, err, sizeof err) == -1 && strstr(err, "twice"),
          "one kind twice is refused: %s", err);
    CHECK(mf_image_copy_with_section(src, dst, MF_SEC_EXPERT_DIR, 1, pred, 32, err, sizeof err) == -1, "refuse");
    CHECK(access(tmp("copy.img.tmp"), F_OK) != 0, "no temp left");
    /* A broken source is refused. */
    FILE *f = fopen(tmp("junk.img"), "wb");
    CHECK(f && fwrite(pred, 1, 1000, f) == 1000 && fclose(f) == 0, "junk");
    CHECK(mf_image_copy_with_section(tmp("junk.img"), dst, MF_SEC_PREDICTOR, 1, pred, 1, err, sizeof err) == -1 &&
              strstr(err, "not a valid image"),
          "junk source: %s", err);
}

/* Fused Qwen3 experts: blob = gate rows [e][0:I], up rows [e][I:2I], down [e]. */
static void test_fused_layout(void)
{
    const char *path = tmp("qwen3.img");
    char err[256];
    mf_convert_options o;
    mf_convert_options_default(&o);
    mf_convert_result r;
    CHECK(mf_convert("tests/data/arch-qwen3-moe-fused", path, &o, &r, err, sizeof err) == 0, "convert: %s", err);
    size_t len;
    uint8_t *img = (uint8_t *)mf_read_file(path, &len);
    mf_image_header h;
    CHECK(img && read_mem(img, len, &h, 0) == MF_OK, "verify");
    CHECK(h.arch == MF_ARCH_QWEN3_MOE && h.flags == (MF_FLAG_QK_NORM_HEAD | MF_FLAG_NORM_TOPK), "flags %u", h.flags);
    CHECK(r.image_bytes == len && r.expert_bytes == 16ull * 3 * 48 * 64 * 4, "result sizes");
    mf_safetensors st;
    CHECK(mf_st_open(&st, "tests/data/arch-qwen3-moe-fused") == 0, "%s", st.err);
    const mf_st_tensor *gu = mf_st_find(&st, "model.layers.1.mlp.experts.gate_up_proj");
    const mf_st_tensor *dn = mf_st_find(&st, "model.layers.1.mlp.experts.down_proj");
    float *all_gu = malloc(gu->numel * 4), *all_dn = malloc(dn->numel * 4);
    CHECK(mf_st_read_f32(&st, gu, all_gu) == 0 && mf_st_read_f32(&st, dn, all_dn) == 0, "read");
    mf_port p;
    mf_mem_port_state ms;
    mf_mem_port_open(&p, &ms, img, len);
    int bad = 0;
    for (uint32_t e = 0; e < 8; e++) {
        mf_expert_entry x;
        CHECK(mf_image_expert_entry(&p, &h, MF_SEC_EXPERT_DIR, 1, e, &x) == MF_OK, "entry");
        const float *b = (const float *)(img + x.offset); /* f32, little-endian host */
        for (uint32_t i = 0; i < 2 * 48 * 64; i++) bad += b[i] != all_gu[e * 96 * 64 + i];
        for (uint32_t i = 0; i < 64 * 48; i++) bad += b[2 * 48 * 64 + i] != all_dn[e * 64 * 48 + i];
    }
    CHECK(bad == 0, "%d fused values misplaced", bad);
    free(all_gu);
    free(all_dn);
    mf_st_close(&st);
    free(img);
}

/* q8 experts, q2 fallback, per-expert override, extra section; every q8
 * weight within half a step (group max / 127, f16-rounded) of the original. */
static void test_encodings(void)
{
    const char *path = tmp("q8.img");
    char err[256];
    int encs[2 * 8];
    for (int i = 0; i < 16; i++) encs[i] = -1;
    encs[8 + 5] = MF_ENC_F16; /* layer 1 expert 5 */
    const char stats[] = "expert stats";
    mf_extra_section extra = {MF_SEC_EXPERT_STATS, 1, stats, sizeof stats};
    mf_convert_options o;
    mf_convert_options_default(&o);
    o.expert_encoding = MF_ENC_Q8;
    o.resident_encoding = MF_ENC_BF16;
    o.fallback_encoding = MF_ENC_Q2;
    o.expert_encodings = encs;
    o.n_expert_encodings = 16;
    o.extra = &extra;
    o.n_extra = 1;
    mf_convert_result r;
    CHECK(mf_convert("tests/data/arch-qwen2-moe", path, &o, &r, err, sizeof err) == 0, "convert: %s", err);
    size_t len;
    uint8_t *img = (uint8_t *)mf_read_file(path, &len);
    mf_image_header h;
    CHECK(img && read_mem(img, len, &h, 0) == MF_OK, "verify");
    CHECK(h.flags == (MF_FLAG_QKV_BIAS | MF_FLAG_SHARED_EXPERT) && h.shared_ffn == 96, "qwen2 flags");
    const mf_section *xs = mf_image_section(&h, MF_SEC_EXPERT_STATS);
    CHECK(xs && xs->bytes == sizeof stats && !memcmp(img + xs->offset, stats, sizeof stats), "extra section");
    mf_port p;
    mf_mem_port_state ms;
    mf_mem_port_open(&p, &ms, img, len);
    mf_expert_entry x, fb;
    CHECK(mf_image_expert_entry(&p, &h, MF_SEC_EXPERT_DIR, 1, 5, &x) == MF_OK && x.encoding == MF_ENC_F16, "override");
    CHECK(mf_image_expert_entry(&p, &h, MF_SEC_FALLBACK_DIR, 1, 5, &fb) == MF_OK && fb.encoding == MF_ENC_Q2 &&
              fb.bytes < x.bytes && fb.offset != x.offset,
          "fallback");
    CHECK(mf_crc32(0, img + fb.offset, fb.bytes) == fb.crc32, "fallback crc");
    CHECK(mf_image_expert_entry(&p, &h, MF_SEC_EXPERT_DIR, 0, 2, &x) == MF_OK && x.encoding == MF_ENC_Q8, "q8");

    /* Layer 0 expert 2's gate (48 x 64) dequantised against the checkpoint. */
    mf_safetensors st;
    CHECK(mf_st_open(&st, "tests/data/arch-qwen2-moe") == 0, "%s", st.err);
    const mf_st_tensor *t = mf_st_find(&st, "model.layers.0.mlp.experts.2.gate_proj.weight");
    float w[48 * 64], row[64];
    CHECK(t && mf_st_read_f32(&st, t, w) == 0, "read gate");
    double worst = 0;
    for (uint32_t rr = 0; rr < 48; rr++) {
        mf_dequantize_row(MF_ENC_Q8, img + x.offset, rr, 64, 32, row);
        for (uint32_t g = 0; g < 64; g += 32) {
            float amax = 0;
            for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(w[rr * 64 + g + j]));
            for (int j = 0; j < 32; j++) {
                double e = fabs(row[g + j] - w[rr * 64 + g + j]) / (amax / 127.0 * 0.5 * 1.002 + 1e-12);
                if (e > worst) worst = e;
            }
        }
    }
    CHECK(worst <= 1.0, "q8 error %.3f half-steps", worst);
    /* Resident bf16: bf16 checkpoint values survive exactly. */
    mf_resident_entry re;
    int found = 0;
    for (uint32_t i = 0; i < sec(&h, MF_SEC_RESIDENT_TABLE)->count && !found; i++) {
        mf_image_resident_entry(&p, &h, i, &re);
        found = re.kind == MF_T_WO && re.layer == 1;
    }
    CHECK(found && re.encoding == MF_ENC_BF16, "wo bf16");
    t = mf_st_find(&st, "model.layers.1.self_attn.o_proj.weight");
    float wo[64 * 64];
    CHECK(mf_st_read_f32(&st, t, wo) == 0, "read wo");
    int bad = 0;
    for (uint32_t rr = 0; rr < 64; rr++) {
        mf_dequantize_row(MF_ENC_BF16, img + re.offset, rr, 64, 32, row);
        for (int j = 0; j < 64; j++) bad += row[j] != wo[rr * 64 + j];
    }
    CHECK(bad == 0, "%d bf16 values differ", bad);
    mf_st_close(&st);
    free(img);

    /* Options refused with a message. */
    o.n_expert_encodings = 3;
    CHECK(mf_convert("tests/data/arch-qwen2-moe", path, &o, &r, err, sizeof err) == -1 && strstr(err, "per-expert"),
          "bad encodings array: %s", err);
    mf_convert_options_default(&o);
    o.page_size = 1000;
    CHECK(mf_convert("tests/data/arch-qwen2-moe", path, &o, &r, err, sizeof err) == -1 && strstr(err, "page size"),
          "bad page: %s", err);
}

/* The writer refuses inconsistent input. */
static void test_writer_errors(void)
{
    mf_image_header p;
    mf_test_small_header(&p);
    mf_image_writer w;
    const char *path = tmp("w.img");
    float data[3 * 8 * 8] = {0};
    CHECK(mf_iw_open(&w, path, &p, 0) == 0, "open");
    CHECK(mf_iw_add_resident(&w, MF_T_EMBED, 0, MF_ENC_F32, 16, 8, data, 100) == -1, "wrong size");
    CHECK(mf_iw_add_resident(&w, MF_T_EMBED, 0, MF_ENC_F32, 1, 8, data, 32) == 0, "ok: %s", w.err);
    CHECK(mf_iw_add_expert(&w, 0, 0, 0, MF_ENC_F32, data, sizeof data) == 0, "expert: %s", w.err);
    CHECK(mf_iw_add_expert(&w, 0, 0, 0, MF_ENC_F32, data, sizeof data) == -1, "twice");
    CHECK(mf_iw_add_resident(&w, MF_T_LM_HEAD, 0, MF_ENC_F32, 1, 8, data, 32) == -1, "resident after experts");
    CHECK(mf_iw_finish(&w) == -1 && strstr(w.err, "expert 1 of layer 0 was never added"), "missing: %s", w.err);
    CHECK(access(path, F_OK) != 0, "partial file removed");
}

/* Tied embeddings: no LM_HEAD entry (the runtime uses EMBED); a stored
 * lm_head.weight copy is accepted and skipped. */
static void test_tied(void)
{
    char dir[300];
    snprintf(dir, sizeof dir, "%s/tied", tmpdir);
    CHECK(mkdir(dir, 0755) == 0, "mkdir");
    size_t len;
    char *cfg = mf_read_file("tests/data/arch-mixtral/config.json", &len);
    char *st = NULL;
    size_t st_len = 0;
    st = mf_read_file("tests/data/arch-mixtral/model.safetensors", &st_len);
    char *pos = cfg ? strstr(cfg, "\"tie_word_embeddings\": false") : NULL;
    CHECK(pos && st, "fixtures");
    if (!pos || !st) return;
    memcpy(pos, "\"tie_word_embeddings\": true ", 28);
    char path[400];
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "wb");
    CHECK(f && fwrite(cfg, 1, len, f) == len && fclose(f) == 0, "write config");
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    f = fopen(path, "wb");
    CHECK(f && fwrite(st, 1, st_len, f) == st_len && fclose(f) == 0, "write safetensors");
    free(cfg);
    free(st);
    char err[256];
    mf_convert_result r;
    const char *img_path = tmp("tied.img");
    CHECK(mf_convert(dir, img_path, NULL, &r, err, sizeof err) == 0, "convert tied: %s", err);
    CHECK(r.n_resident == 16, "16 tensors without lm_head: %u", r.n_resident);
    uint8_t *img = (uint8_t *)mf_read_file(img_path, &len);
    mf_image_header h;
    CHECK(img && read_mem(img, len, &h, 0) == MF_OK, "verify");
    mf_port p;
    mf_mem_port_state ms;
    mf_mem_port_open(&p, &ms, img, len);
    int lm = 0;
    for (uint32_t i = 0; i < sec(&h, MF_SEC_RESIDENT_TABLE)->count; i++) {
        mf_resident_entry e;
        CHECK(mf_image_resident_entry(&p, &h, i, &e) == MF_OK, "entry");
        lm += e.kind == MF_T_LM_HEAD;
    }
    CHECK(lm == 0, "no LM_HEAD entry");
    free(img);
}

/* The same image with its sections moved to odd offsets (EXPERT_DATA to
 * another page boundary), the tables' offsets and CRCs rewritten: readers
 * must not need the reference writer's 64-byte alignment
 * (docs/image-format.md). Mapped (tokenizer tables in place at odd
 * addresses) and read through the simulated flash (tables copied), the
 * relocated image must give the original's token ids and logits bit for
 * bit, with the profile's sections and the fallback directory in use. */
static uint8_t *relocate_odd(const uint8_t *img, size_t len, size_t *out_len)
{
    mf_image_header h;
    if (read_mem(img, len, &h, 0) != MF_OK) return NULL;
    size_t cap = len + 16 * (size_t)h.page_size + 4096;
    uint8_t *out = calloc(1, cap);
    if (!out) return NULL;
    memcpy(out, img, MF_HEADER_BYTES);
    uint64_t pos = MF_HEADER_BYTES, delta_res = 0, delta_exp = 0;
    for (uint32_t i = 0; i < h.n_sections; i++) {
        const mf_section *s = &h.sections[i];
        if (s->kind == MF_SEC_EXPERT_DATA) pos = (pos + 2u * h.page_size - 1) / h.page_size * h.page_size;
        else pos = ((pos + 3) & ~(uint64_t)3) + 1 + 2 * (i & 1); /* offset 1 or 3 mod 4 */
        if (s->kind == MF_SEC_RESIDENT_DATA) delta_res = pos - s->offset;
        if (s->kind == MF_SEC_EXPERT_DATA) delta_exp = pos - s->offset;
        memcpy(out + pos, img + s->offset, (size_t)s->bytes);
        put64(sec_entry(out, i) + 8, pos);
        pos += s->bytes;
    }
    /* Absolute offsets inside the tables move with the data they name. */
    for (uint32_t i = 0; i < h.n_sections; i++) {
        const mf_section *s = &h.sections[i];
        uint8_t *e = out + mf_le64(sec_entry(out, i) + 8);
        uint32_t step = s->kind == MF_SEC_RESIDENT_TABLE ? MF_RESIDENT_ENTRY_BYTES : MF_EXPERT_ENTRY_BYTES;
        uint32_t at = s->kind == MF_SEC_RESIDENT_TABLE ? 16 : 8;
        uint64_t d = s->kind == MF_SEC_RESIDENT_TABLE ? delta_res : delta_exp;
        if (s->kind != MF_SEC_RESIDENT_TABLE && s->kind != MF_SEC_EXPERT_DIR && s->kind != MF_SEC_FALLBACK_DIR)
            continue;
        for (uint32_t k = 0; k < s->count; k++) put64(e + k * step + at, mf_le64(e + k * step + at) + d);
        put32(sec_entry(out, i) + 24, mf_crc32(0, e, (size_t)s->bytes));
    }
    put64(out + MF_H_IMAGE_BYTES, pos);
    fix_header_crc(out);
    *out_len = (size_t)pos;
    return out;
}

/* Token ids of `text` and the logits after each of them, on `port`. */
static int run_ids_logits(const mf_port *port, const char *text, uint32_t *ids, uint32_t *n_ids, float *logits,
                          uint32_t max_ids)
{
    mf_options opt;
    mf_options_default(&opt);
    opt.context_len = 64;
    opt.expert_slots = 8;
    opt.policy = MF_POLICY_EDGEMOE;
    opt.predictor = MF_PREDICT_COMBINED;
    opt.fallback_stall_ns = 1; /* every demand read that would wait takes the fallback copy */
    opt.flash_ns_per_byte = 1.0f;
    mf_model *m;
    void *arena;
    int rc = mf_test_model(port, &opt, &m, &arena);
    if (!rc) rc = mf_encode(m, text, strlen(text), ids, max_ids, n_ids);
    if (!rc) rc = mf_feed_all(m, ids, *n_ids, logits);
    free(arena);
    return rc;
}

static void test_unaligned_sections(void)
{
    size_t len = 0, rlen = 0;
    uint8_t *img = mf_test_image("tests/data/small-qwen3-moe-bpe", "--weights q4 --fallback q2",
                                 "--text tests/data/tinyshakespeare.txt --max-tokens 1500", &len, NULL);
    CHECK(img != NULL, "convert + profile small-qwen3-moe-bpe");
    if (!img) return;
    uint8_t *rel = relocate_odd(img, len, &rlen);
    mf_image_header h, hr;
    CHECK(rel && read_mem(rel, rlen, &hr, 0) == MF_OK && read_mem(rel, rlen, &hr, 1) == MF_OK,
          "the relocated image verifies, mapped and read");
    int odd = 0;
    uint32_t kinds = 0;
    if (rel && read_mem(img, len, &h, 0) == MF_OK) {
        for (uint32_t i = 0; i < hr.n_sections; i++) {
            kinds |= 1u << hr.sections[i].kind;
            odd += hr.sections[i].kind != MF_SEC_EXPERT_DATA && (hr.sections[i].offset & 3) != 0;
        }
        CHECK(odd == (int)hr.n_sections - 1, "%d of %u sections at odd offsets", odd, hr.n_sections - 1);
        uint32_t want = 1u << MF_SEC_TOKENIZER | 1u << MF_SEC_PREDICTOR | 1u << MF_SEC_TOKEN_ROUTES |
                        1u << MF_SEC_FALLBACK_DIR;
        CHECK((kinds & want) == want, "tokenizer, profile and fallback sections present (%#x)", kinds);
        mf_resident_entry e;
        mf_port p;
        mf_mem_port_state st;
        CHECK(mf_mem_port_open(&p, &st, rel, rlen) == MF_PORT_OK &&
                  mf_image_resident_entry(&p, &hr, 0, &e) == MF_OK && (e.offset & 3) != 0,
              "a resident tensor at an odd offset");
    }
    enum { MAX_IDS = 48 };
    static const char text[] = "ROMEO:\nWhat light through yonder window breaks? It is the east.";
    static float la[MAX_IDS * 1024], lb[MAX_IDS * 1024];
    uint32_t ia[MAX_IDS], ib[MAX_IDS], na = 0, nb = 0;
    for (int kind = MF_TEST_PORT_MEM; rel && kind <= MF_TEST_PORT_SIM; kind++) {
        mf_test_ports a, b;
        int ra = mf_test_ports_open(&a, kind, img, len, NULL, NULL);
        int rb = mf_test_ports_open(&b, kind, rel, rlen, NULL, NULL);
        CHECK(ra == MF_PORT_OK && rb == MF_PORT_OK, "ports");
        if (ra || rb) continue;
        ra = run_ids_logits(a.port, text, ia, &na, la, MAX_IDS);
        rb = run_ids_logits(b.port, text, ib, &nb, lb, MAX_IDS);
        CHECK(ra == MF_OK && rb == MF_OK, "%s: runs: %s / %s", kind == MF_TEST_PORT_MEM ? "mapped" : "sim",
              mf_strerror(ra), mf_strerror(rb));
        CHECK(na > 8 && na == nb && !memcmp(ia, ib, na * sizeof ia[0]), "%s: the same %u token ids",
              kind == MF_TEST_PORT_MEM ? "mapped" : "sim", na);
        CHECK(na == nb && !memcmp(la, lb, (size_t)na * 1024 * sizeof la[0]), "%s: bit-identical logits",
              kind == MF_TEST_PORT_MEM ? "mapped" : "sim");
    }
    free(rel);
    free(img);
}

int main(void)
{
    const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(tmpdir, sizeof tmpdir, "%s/mf_img_XXXXXX", base);
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_crc();
    const char *path = tmp("mixtral.img");
    char err[256];
    mf_convert_result r;
    int rc = mf_convert("tests/data/arch-mixtral", path, NULL, &r, err, sizeof err);
    CHECK(rc == 0, "convert arch-mixtral: %s", err);
    if (rc == 0) {
        uint8_t *img;
        size_t len;
        test_mixtral_readback(path, &img, &len);
        CHECK(r.n_resident == 17 && r.expert_bytes == 16ull * 3 * 96 * 64 * 4 && r.image_bytes == len, "result");
        test_weights_match_golden(img, len);
        test_corruption(img, len);
        test_structure(img, len);
        free(img);
        test_copy_with_section(path);
    }
    test_fused_layout();
    test_encodings();
    test_writer_errors();
    test_tied();
    test_unaligned_sections();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    return mf_test_done("test_image");
}
