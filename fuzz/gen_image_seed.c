/*
 * Writes a small but complete moeflash image (format version 1, arch
 * Mixtral, f32 weights drawn from a fixed xorshift sequence) for seeding
 * fuzz_image and fuzz_model_init without depending on the converter:
 *
 *   gen_image_seed OUT VOCAB HIDDEN LAYERS EXPERTS TOP_K PAGE_SIZE
 *
 * The layout follows runtime/image_format.h: header, resident table,
 * expert directory, resident data, expert data (blobs page aligned).
 * Host-only tool, built and run by mk/fuzz.mk.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../runtime/image.h"
#include "../runtime/image_format.h"
#include "../runtime/quant.h"

static void put16(uint8_t *p, uint32_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static void put64(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static void putf(uint8_t *p, float f) { uint32_t u; memcpy(&u, &f, 4); put32(p, u); }

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static float rnd(void)
{
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return (float)((double)(rng >> 40) / (double)(1ull << 24) - 0.5) * 0.2f;
}

static uint64_t align(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

typedef struct { uint32_t kind, layer, rows, cols; int ones; } tspec;

int main(int argc, char **argv)
{
    if (argc != 8) {
        fprintf(stderr, "usage: %s OUT VOCAB HIDDEN LAYERS EXPERTS TOP_K PAGE_SIZE\n", argv[0]);
        return 2;
    }
    uint32_t vocab = (uint32_t)atoi(argv[2]), hidden = (uint32_t)atoi(argv[3]);
    uint32_t layers = (uint32_t)atoi(argv[4]), experts = (uint32_t)atoi(argv[5]);
    uint32_t top_k = (uint32_t)atoi(argv[6]), page = (uint32_t)atoi(argv[7]);
    uint32_t heads = 2, kv_heads = 1, head_dim = hidden / heads, ffn = hidden, max_seq = 64;

    tspec ts[3 + 7 * 64];
    uint32_t nt = 0;
    ts[nt++] = (tspec){MF_T_EMBED, 0, vocab, hidden, 0};
    for (uint32_t l = 0; l < layers; l++) {
        ts[nt++] = (tspec){MF_T_ATTN_NORM, l, 1, hidden, 1};
        ts[nt++] = (tspec){MF_T_WQ, l, heads * head_dim, hidden, 0};
        ts[nt++] = (tspec){MF_T_WK, l, kv_heads * head_dim, hidden, 0};
        ts[nt++] = (tspec){MF_T_WV, l, kv_heads * head_dim, hidden, 0};
        ts[nt++] = (tspec){MF_T_WO, l, hidden, heads * head_dim, 0};
        ts[nt++] = (tspec){MF_T_FFN_NORM, l, 1, hidden, 1};
        ts[nt++] = (tspec){MF_T_ROUTER, l, experts, hidden, 0};
    }
    ts[nt++] = (tspec){MF_T_FINAL_NORM, 0, 1, hidden, 1};
    ts[nt++] = (tspec){MF_T_LM_HEAD, 0, vocab, hidden, 0};

    uint64_t rt_off = MF_HEADER_BYTES, rt_bytes = (uint64_t)nt * MF_RESIDENT_ENTRY_BYTES;
    uint64_t nx = (uint64_t)layers * experts;
    uint64_t xd_off = rt_off + rt_bytes, xd_bytes = nx * MF_EXPERT_ENTRY_BYTES;
    uint64_t rd_off = align(xd_off + xd_bytes, 64), rd_bytes = 0;
    for (uint32_t i = 0; i < nt; i++) rd_bytes += (uint64_t)ts[i].rows * ts[i].cols * 4;
    uint64_t blob = 3ull * ffn * hidden * 4, blob_pad = align(blob, page);
    uint64_t xdata_off = align(rd_off + rd_bytes, page), xdata_bytes = nx * blob_pad;
    uint64_t total = xdata_off + xdata_bytes;

    uint8_t *img = calloc(1, total);
    if (!img) return 1;
    /* Resident tensors. */
    uint64_t off = rd_off;
    for (uint32_t i = 0; i < nt; i++) {
        uint8_t *e = img + rt_off + (uint64_t)i * MF_RESIDENT_ENTRY_BYTES;
        uint64_t n = (uint64_t)ts[i].rows * ts[i].cols;
        for (uint64_t j = 0; j < n; j++) putf(img + off + 4 * j, ts[i].ones ? 1.0f : rnd());
        put16(e, ts[i].kind);
        put16(e + 2, ts[i].layer);
        put32(e + 4, MF_ENC_F32);
        put32(e + 8, ts[i].rows);
        put32(e + 12, ts[i].cols);
        put64(e + 16, off);
        put64(e + 24, n * 4);
        put32(e + 32, mf_crc32(0, img + off, n * 4));
        off += n * 4;
    }
    /* Experts, layer-major. */
    for (uint32_t l = 0; l < layers; l++) {
        for (uint32_t x = 0; x < experts; x++) {
            uint64_t i = (uint64_t)l * experts + x;
            uint64_t bo = xdata_off + i * blob_pad;
            for (uint64_t j = 0; j < blob / 4; j++) putf(img + bo + 4 * j, rnd());
            uint8_t *e = img + xd_off + i * MF_EXPERT_ENTRY_BYTES;
            put16(e, l);
            put16(e + 2, x);
            e[4] = MF_ENC_F32;
            put64(e + 8, bo);
            put32(e + 16, (uint32_t)blob);
            put32(e + 20, mf_crc32(0, img + bo, blob));
        }
    }
    /* Header. */
    uint8_t *h = img;
    memcpy(h, MF_MAGIC, 8);
    put32(h + MF_H_VERSION, MF_FORMAT_VERSION);
    put32(h + MF_H_HEADER_BYTES, MF_HEADER_BYTES);
    put64(h + MF_H_IMAGE_BYTES, total);
    put32(h + MF_H_ARCH, MF_ARCH_MIXTRAL);
    put32(h + MF_H_FLAGS, MF_FLAG_NORM_TOPK);
    put32(h + MF_H_VOCAB, vocab);
    put32(h + MF_H_HIDDEN, hidden);
    put32(h + MF_H_LAYERS, layers);
    put32(h + MF_H_HEADS, heads);
    put32(h + MF_H_KV_HEADS, kv_heads);
    put32(h + MF_H_HEAD_DIM, head_dim);
    put32(h + MF_H_EXPERT_FFN, ffn);
    put32(h + MF_H_EXPERTS, experts);
    put32(h + MF_H_TOP_K, top_k);
    put32(h + MF_H_SHARED_FFN, 0);
    put32(h + MF_H_MAX_SEQ, max_seq);
    putf(h + MF_H_RMS_EPS, 1e-5f);
    putf(h + MF_H_ROPE_THETA, 10000.0f);
    put32(h + MF_H_PAGE_SIZE, page);
    put32(h + MF_H_GROUP_SIZE, MF_DEFAULT_GROUP_SIZE);
    put32(h + MF_H_N_SECTIONS, 4);
    const struct { uint32_t kind, count; uint64_t off, bytes; int crc; } sec[4] = {
        {MF_SEC_RESIDENT_TABLE, nt, rt_off, rt_bytes, 1},
        {MF_SEC_EXPERT_DIR, (uint32_t)nx, xd_off, xd_bytes, 1},
        {MF_SEC_RESIDENT_DATA, nt, rd_off, rd_bytes, 1},
        {MF_SEC_EXPERT_DATA, (uint32_t)nx, xdata_off, xdata_bytes, 0}};
    for (int i = 0; i < 4; i++) {
        uint8_t *s = h + MF_H_SECTIONS + i * MF_SECTION_BYTES;
        put32(s, sec[i].kind);
        put32(s + 4, sec[i].count);
        put64(s + 8, sec[i].off);
        put64(s + 16, sec[i].bytes);
        put32(s + 24, sec[i].crc ? mf_crc32(0, img + sec[i].off, sec[i].bytes) : 0);
    }
    put32(h + MF_HEADER_CRC_OFFSET, mf_crc32(0, h, MF_HEADER_CRC_OFFSET));

    FILE *f = fopen(argv[1], "wb");
    if (!f || fwrite(img, 1, total, f) != total || fclose(f)) {
        fprintf(stderr, "%s: cannot write\n", argv[1]);
        return 1;
    }
    free(img);
    return 0;
}
