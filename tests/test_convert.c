/* The converter's options and the image writer's layout, checked against
 * the documented contract (convert.h, imagewrite.h, docs/image-format.md),
 * every figure recomputed here from the image bytes or the checkpoint:
 *  - arch-qwen2-moe with resident q8, experts q4, per-expert overrides
 *    (one of them f32 = encoding 0, which is not "use the default"), q2
 *    fallback copies, page size 8192 and max_seq 100: the header carries the
 *    options; every resident tensor starts on a 64-byte boundary; every main
 *    and fallback blob on a page, sized 2 x gate + down by the encodings.md
 *    formula, zero-padded to the next page; EXPERT_DATA starts on a page and
 *    is a whole number of pages; RESIDENT_DATA's count is the tensor count;
 *    every CRC equals a CRC computed here over the documented range; the
 *    result's byte counts are the sums of the entries' bytes;
 *  - arch-mixtral with group 64 (hidden 64, expert_ffn 96: the down rows end
 *    in a partial group, so down's bytes differ from gate's): every matrix
 *    of a q8 blob dequantises to the checkpoint within half a step;
 *  - sensitivity (sensitivity.h) on arch-mixtral, 3 windows of 32 bytes:
 *    routing sums (count, w, w^2) and base bits/token replayed here; the
 *    weight error of each (expert, encoding) is sum over gate/up/down of
 *    ||W - Q(W)||^2 recomputed from the checkpoint; proxy = w^2 sum x error;
 *    a direct delta equals the bits of an image with that one expert
 *    changed minus the base bits, and 2 jobs give what 1 does; Spearman
 *    with ties against a hand computation; the --avg-bits budget rounds
 *    down; mf_sens_choose stays within the budget;
 *  - a tensor of more than 2^22 values is encoded a chunk of rows at a
 *    time (convert.c): a tied embedding of 65,600 x 64, resident q8,
 *    dequantises to the source within half a step in every row, the rows
 *    of both chunks and across their boundary;
 *  - resident q4 with group 33 (tensors of 1,184 bytes): every resident
 *    tensor still starts on a 64-byte boundary;
 *  - copy-with-section on an image whose section table is not in offset
 *    order keeps every section (the file is cut after the section ending
 *    last);
 *  - the writer: a section kind added twice keeps one section with the
 *    second data; exactly MF_MAX_SECTIONS sections fit and one more is
 *    refused; an expert index or layer equal to the count is refused. */
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
#include "../tools/lib/sensitivity.h"
#include "crc32_ref.h"
#include "harness.h"
#include "image_fixture.h"

static char tmpdir[256];

static const char *tmp(const char *name)
{
    static char path[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(path[k], sizeof path[k], "%s/%s", tmpdir, name);
    return path[k];
}

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Reads the header of an in-memory image (tables verified). */
static int read_mem(const uint8_t *img, size_t len, mf_image_header *h)
{
    mf_port p;
    mf_mem_port_state st;
    uint8_t scratch[4096];
    mf_mem_port_open(&p, &st, img, len);
    return mf_image_read_header(&p, h, 1, scratch, sizeof scratch);
}

static size_t blob_bytes(int enc, uint32_t H, uint32_t F, uint32_t G)
{
    return 2 * mf_matrix_bytes(enc, F, H, G) + mf_matrix_bytes(enc, H, F, G);
}

static void test_options_and_layout(void)
{
    enum { LAYERS = 2, EXPERTS = 8, H = 64, F = 48, PAGE = 8192 };
    int encs[LAYERS * EXPERTS];
    for (int i = 0; i < LAYERS * EXPERTS; i++) encs[i] = -1;
    encs[3] = MF_ENC_F32;            /* layer 0 expert 3: f32 is encoding 0 */
    encs[EXPERTS + 5] = MF_ENC_F16;  /* layer 1 expert 5 */
    encs[EXPERTS + 7] = MF_ENC_Q8;   /* layer 1 expert 7 */
    mf_convert_options o;
    mf_convert_options_default(&o);
    o.resident_encoding = MF_ENC_Q8;
    o.expert_encoding = MF_ENC_Q4;
    o.expert_encodings = encs;
    o.n_expert_encodings = LAYERS * EXPERTS;
    o.fallback_encoding = MF_ENC_Q2;
    o.page_size = PAGE;
    o.max_seq = 100;
    mf_convert_result r;
    char err[256];
    const char *path = tmp("qwen2.img");
    CHECK(mf_convert("tests/data/arch-qwen2-moe", path, &o, &r, err, sizeof err) == 0, "convert: %s", err);
    size_t len = 0;
    uint8_t *img = (uint8_t *)mf_read_file(path, &len);
    mf_image_header h;
    CHECK(img && read_mem(img, len, &h) == MF_OK, "the image verifies");
    if (!img) return;

    /* Header: the options, the size, the CRC over [0, 508). */
    CHECK(h.page_size == PAGE && h.group_size == 32 && h.max_seq == 100, "page %u group %u max_seq %u",
          h.page_size, h.group_size, h.max_seq);
    CHECK(h.n_layers == LAYERS && h.n_experts == EXPERTS && h.hidden == H && h.expert_ffn == F, "dims");
    CHECK(h.image_bytes == len && r.image_bytes == len, "image_bytes %llu, result %llu, file %zu",
          (unsigned long long)h.image_bytes, (unsigned long long)r.image_bytes, len);
    CHECK(rd32(img + MF_HEADER_CRC_OFFSET) == crc32_bitwise(0, img, MF_HEADER_CRC_OFFSET), "header crc");

    /* Sections: CRCs over each section's bytes, computed here. */
    int crc_bad = 0;
    for (uint32_t i = 0; i < h.n_sections; i++) {
        const mf_section *s = &h.sections[i];
        uint32_t want = s->kind == MF_SEC_EXPERT_DATA ? 0 : crc32_bitwise(0, img + s->offset, (size_t)s->bytes);
        if (s->offset + s->bytes > len || s->crc32 != want) crc_bad++;
    }
    CHECK(crc_bad == 0, "%d section CRCs differ from the CRC of their bytes", crc_bad);
    const mf_section *rt = mf_image_section(&h, MF_SEC_RESIDENT_TABLE);
    const mf_section *rd = mf_image_section(&h, MF_SEC_RESIDENT_DATA);
    const mf_section *xd = mf_image_section(&h, MF_SEC_EXPERT_DATA);
    CHECK(rt && rd && xd && mf_image_section(&h, MF_SEC_FALLBACK_DIR), "sections present");
    if (!rt || !rd || !xd) {
        free(img);
        return;
    }
    CHECK(rd->count == rt->count && rt->count == r.n_resident, "RESIDENT_DATA count %u, table %u, result %u",
          rd->count, rt->count, r.n_resident);
    CHECK(xd->offset % PAGE == 0 && xd->bytes % PAGE == 0, "EXPERT_DATA at %llu, %llu bytes: whole pages",
          (unsigned long long)xd->offset, (unsigned long long)xd->bytes);

    mf_port p;
    mf_mem_port_state ms;
    mf_mem_port_open(&p, &ms, img, len);
    /* Resident tensors: on 64-byte boundaries, own CRC, bytes summed. */
    uint64_t res_sum = 0;
    int res_bad = 0, res_misaligned = 0;
    for (uint32_t i = 0; i < rt->count; i++) {
        mf_resident_entry e;
        if (mf_image_resident_entry(&p, &h, i, &e) != MF_OK) {
            res_bad++;
            continue;
        }
        res_misaligned += e.offset % 64 != 0;
        res_bad += e.offset < rd->offset || e.offset + e.bytes > rd->offset + rd->bytes ||
                   crc32_bitwise(0, img + e.offset, (size_t)e.bytes) != e.crc32;
        res_sum += e.bytes;
    }
    CHECK(res_bad == 0, "%d resident entries bad", res_bad);
    CHECK(res_misaligned == 0, "%d resident tensors not on a 64-byte boundary", res_misaligned);
    CHECK(res_sum == r.resident_bytes, "resident bytes: entries %llu, result %llu", (unsigned long long)res_sum,
          (unsigned long long)r.resident_bytes);

    /* Expert blobs, main then fallback; each takes whole pages and no more
     * (image-format.md: a q8 blob of 104,448 bytes is stored in 26 pages). */
    uint64_t pages = 0;
    for (int fb = 0; fb < 2; fb++) {
        uint32_t kind = fb ? MF_SEC_FALLBACK_DIR : MF_SEC_EXPERT_DIR;
        uint64_t sum = 0;
        int bad_enc = 0, bad_size = 0, misaligned = 0, bad_crc = 0, dirty_pad = 0, outside = 0;
        for (uint32_t l = 0; l < LAYERS; l++)
            for (uint32_t x = 0; x < EXPERTS; x++) {
                mf_expert_entry e;
                if (mf_image_expert_entry(&p, &h, kind, l, x, &e) != MF_OK) {
                    bad_enc++;
                    continue;
                }
                int want = fb ? MF_ENC_Q2 : encs[l * EXPERTS + x] >= 0 ? encs[l * EXPERTS + x] : MF_ENC_Q4;
                bad_enc += e.encoding != want;
                bad_size += e.bytes != blob_bytes(e.encoding, H, F, 32);
                misaligned += e.offset % PAGE != 0;
                outside += e.offset < xd->offset || e.offset + e.bytes > xd->offset + xd->bytes;
                if (e.offset + e.bytes > len) continue;
                bad_crc += crc32_bitwise(0, img + e.offset, e.bytes) != e.crc32;
                uint64_t end = e.offset + e.bytes, next = (end + PAGE - 1) / PAGE * PAGE;
                for (uint64_t b = end; b < next && b < len; b++) dirty_pad += img[b] != 0;
                sum += e.bytes;
                pages += (e.bytes + PAGE - 1) / PAGE;
            }
        CHECK(bad_enc == 0, "%s: %d entries with the wrong encoding", fb ? "fallback" : "main", bad_enc);
        CHECK(bad_size == 0, "%s: %d blobs not 2 x gate + down bytes", fb ? "fallback" : "main", bad_size);
        CHECK(misaligned == 0, "%s: %d blobs not on a page of %u", fb ? "fallback" : "main", misaligned, PAGE);
        CHECK(outside == 0, "%s: %d blobs outside EXPERT_DATA", fb ? "fallback" : "main", outside);
        CHECK(bad_crc == 0, "%s: %d blob CRCs differ", fb ? "fallback" : "main", bad_crc);
        CHECK(dirty_pad == 0, "%s: %d non-zero padding bytes after blobs", fb ? "fallback" : "main", dirty_pad);
        uint64_t want_sum = fb ? r.fallback_bytes : r.expert_bytes;
        CHECK(sum == want_sum, "%s expert bytes: entries %llu, result %llu", fb ? "fallback" : "main",
              (unsigned long long)sum, (unsigned long long)want_sum);
    }
    CHECK(xd->bytes == pages * PAGE, "EXPERT_DATA %llu bytes, the blobs' pages %llu bytes",
          (unsigned long long)xd->bytes, (unsigned long long)(pages * PAGE));
    free(img);
}

/* Resident q4 with group 33: [32, 64] matrices take 1,184 bytes, so a
 * tensor after one starts on a 64-byte boundary only if the writer pads. */
static void test_resident_alignment(void)
{
    mf_convert_options o;
    mf_convert_options_default(&o);
    o.resident_encoding = MF_ENC_Q4;
    o.group_size = 33;
    mf_convert_result r;
    char err[256];
    const char *path = tmp("mixtral_g33.img");
    CHECK(mf_matrix_bytes(MF_ENC_Q4, 32, 64, 33) % 64 != 0, "the case needs a tensor of a size not a multiple of 64");
    CHECK(mf_convert("tests/data/arch-mixtral", path, &o, &r, err, sizeof err) == 0, "convert group 33: %s", err);
    size_t len = 0;
    uint8_t *img = (uint8_t *)mf_read_file(path, &len);
    mf_image_header h;
    CHECK(img && read_mem(img, len, &h) == MF_OK, "group-33 image verifies");
    if (!img) return;
    mf_port p;
    mf_mem_port_state ms;
    mf_mem_port_open(&p, &ms, img, len);
    int misaligned = 0, n = 0;
    for (uint32_t i = 0; i < mf_image_section(&h, MF_SEC_RESIDENT_TABLE)->count; i++) {
        mf_resident_entry e;
        if (mf_image_resident_entry(&p, &h, i, &e) == MF_OK) misaligned += e.offset % 64 != 0, n++;
    }
    CHECK(n == 17 && misaligned == 0, "%d of %d resident tensors not on a 64-byte boundary", misaligned, n);
    free(img);
}

/* copy-with-section keeps the file up to the end of the last section it
 * keeps (the one ending last, whatever its place in the table): an image
 * whose table lists RESIDENT_DATA last still has its expert data and
 * tables after a section is added. */
static void test_copy_unordered_table(void)
{
    const char *src = tmp("order.img"), *dst = tmp("order2.img");
    char err[256];
    CHECK(mf_convert("tests/data/arch-mixtral", src, NULL, NULL, err, sizeof err) == 0, "convert: %s", err);
    size_t len = 0;
    uint8_t *img = (uint8_t *)mf_read_file(src, &len);
    mf_image_header h;
    CHECK(img && read_mem(img, len, &h) == MF_OK && h.n_sections >= 2, "source");
    if (!img || h.n_sections < 2) {
        free(img);
        return;
    }
    /* Move the first table entry (the lowest offset) to the end. */
    uint8_t first[MF_SECTION_BYTES];
    uint8_t *tab = img + MF_H_SECTIONS;
    memcpy(first, tab, MF_SECTION_BYTES);
    memmove(tab, tab + MF_SECTION_BYTES, (size_t)(h.n_sections - 1) * MF_SECTION_BYTES);
    memcpy(tab + (size_t)(h.n_sections - 1) * MF_SECTION_BYTES, first, MF_SECTION_BYTES);
    uint32_t c = crc32_bitwise(0, img, MF_HEADER_CRC_OFFSET);
    for (int i = 0; i < 4; i++) img[MF_HEADER_CRC_OFFSET + i] = (uint8_t)(c >> (8 * i));
    CHECK(read_mem(img, len, &h) == MF_OK && h.sections[h.n_sections - 1].offset == MF_HEADER_BYTES,
          "reordered table verifies, lowest section last");
    FILE *f = fopen(src, "wb");
    CHECK(f && fwrite(img, 1, len, f) == len && fclose(f) == 0, "write reordered");
    free(img);
    const char pred[] = "predictor bytes";
    CHECK(mf_image_copy_with_section(src, dst, MF_SEC_PREDICTOR, 1, pred, sizeof pred, err, sizeof err) == 0,
          "copy: %s", err);
    img = (uint8_t *)mf_read_file(dst, &len);
    CHECK(img && read_mem(img, len, &h) == MF_OK, "the copy of a reordered image verifies");
    const mf_section *s = img ? mf_image_section(&h, MF_SEC_PREDICTOR) : NULL;
    CHECK(s && s->bytes == sizeof pred && s->offset + s->bytes <= len && !memcmp(img + s->offset, pred, sizeof pred),
          "added section");
    free(img);
}

/* Half a q8 step of each group (group max / 127 / 2, f16-rounded scale). */
static double worst_q8(const uint8_t *m, const float *w, uint32_t rows, uint32_t cols, uint32_t G)
{
    float row[128];
    double worst = 0;
    for (uint32_t r = 0; r < rows; r++) {
        mf_dequantize_row(MF_ENC_Q8, m, r, cols, G, row);
        for (uint32_t g = 0; g < cols; g += G) {
            uint32_t n = cols - g < G ? cols - g : G;
            float amax = 0;
            for (uint32_t j = 0; j < n; j++) amax = fmaxf(amax, fabsf(w[r * cols + g + j]));
            for (uint32_t j = 0; j < n; j++) {
                double e = fabs(row[g + j] - w[r * cols + g + j]) / (amax / 127.0 * 0.5 * 1.002 + 1e-12);
                if (e > worst) worst = e;
            }
        }
    }
    return worst;
}

static void test_group64(void)
{
    enum { H = 64, F = 96, G = 64 };
    mf_convert_options o;
    mf_convert_options_default(&o);
    o.expert_encoding = MF_ENC_Q8;
    o.group_size = G;
    mf_convert_result r;
    char err[256];
    const char *path = tmp("mixtral_g64.img");
    CHECK(mf_convert("tests/data/arch-mixtral", path, &o, &r, err, sizeof err) == 0, "convert group 64: %s", err);
    size_t len = 0;
    uint8_t *img = (uint8_t *)mf_read_file(path, &len);
    mf_image_header h;
    CHECK(img && read_mem(img, len, &h) == MF_OK && h.group_size == G, "group-64 image verifies");
    mf_safetensors st;
    CHECK(mf_st_open(&st, "tests/data/arch-mixtral") == 0, "%s", st.err);
    if (!img) {
        mf_st_close(&st);
        return;
    }
    mf_port p;
    mf_mem_port_state ms;
    mf_mem_port_open(&p, &ms, img, len);
    size_t gb = mf_matrix_bytes(MF_ENC_Q8, F, H, G), db = mf_matrix_bytes(MF_ENC_Q8, H, F, G);
    CHECK(gb != db, "the case needs gate and down of different sizes (%zu, %zu)", gb, db);
    static float w[F * H];
    static const char *const nm[3] = {"w1", "w3", "w2"};
    for (uint32_t l = 0; l < 2; l++)
        for (uint32_t x = 0; x < 8; x += 7) {
            mf_expert_entry e;
            CHECK(mf_image_expert_entry(&p, &h, MF_SEC_EXPERT_DIR, l, x, &e) == MF_OK && e.bytes == 2 * gb + db,
                  "layer %u expert %u entry", l, x);
            if (e.offset + 2 * gb + db > len) continue;
            for (int m = 0; m < 3; m++) {
                char name[128];
                snprintf(name, sizeof name, "model.layers.%u.block_sparse_moe.experts.%u.%s.weight", l, x, nm[m]);
                const mf_st_tensor *t = mf_st_find(&st, name);
                uint32_t rows = m < 2 ? F : H, cols = m < 2 ? H : F;
                CHECK(t && mf_st_read_f32(&st, t, w) == 0, "read %s", name);
                double worst = worst_q8(img + e.offset + (size_t)m * gb, w, rows, cols, G);
                CHECK(worst <= 1.0, "layer %u expert %u %s: q8 error %.3f half-steps", l, x, nm[m], worst);
            }
        }
    mf_st_close(&st);
    free(img);
}


/* ------------------------------------------------------------ big tensor */

static int put_json(FILE *f, const char *name, const mf_st_tensor *t, uint64_t rows, uint64_t cols,
                    uint64_t *off, int first)
{
    uint64_t n = t && t->ndim == 1 ? t->shape[0] : rows * cols;
    int r;
    if (t && t->ndim == 1)
        r = fprintf(f, "%s\"%s\":{\"dtype\":\"F32\",\"shape\":[%llu],\"data_offsets\":[%llu,%llu]}", first ? "" : ",",
                    name, (unsigned long long)n, (unsigned long long)*off, (unsigned long long)(*off + 4 * n));
    else
        r = fprintf(f, "%s\"%s\":{\"dtype\":\"F32\",\"shape\":[%llu,%llu],\"data_offsets\":[%llu,%llu]}",
                    first ? "" : ",", name, (unsigned long long)rows, (unsigned long long)cols,
                    (unsigned long long)*off, (unsigned long long)(*off + 4 * n));
    *off += 4 * n;
    return r < 0;
}

static float big_value(uint64_t i) { return sinf((float)(i % 1000003) * 0.37f) * (float)(1 + (i / 64) % 5); }

static void test_big_tensor(void)
{
    enum { V = 65600, HB = 64 };
    char dir[300], path[400];
    snprintf(dir, sizeof dir, "%s/big", tmpdir);
    CHECK(mkdir(dir, 0755) == 0, "mkdir");
    size_t len;
    char *cfg = mf_read_file("tests/data/arch-mixtral/config.json", &len);
    char *tie = cfg ? strstr(cfg, "\"tie_word_embeddings\": false") : NULL;
    char *voc = cfg ? strstr(cfg, "\"vocab_size\": 256") : NULL;
    CHECK(tie && voc, "fixture config");
    if (!tie || !voc) {
        free(cfg);
        return;
    }
    memcpy(tie, "\"tie_word_embeddings\": true ", 28);
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "wb");
    CHECK(f && fprintf(f, "%.*s\"vocab_size\": %u%s", (int)(voc - cfg), cfg, (unsigned)V,
                       voc + strlen("\"vocab_size\": 256")) > 0 && fclose(f) == 0,
          "write config");
    free(cfg);

    /* model.safetensors: every fixture tensor but lm_head as F32, the
     * embedding replaced by [V, 64]. */
    mf_safetensors st;
    CHECK(mf_st_open(&st, "tests/data/arch-mixtral") == 0, "%s", st.err);
    char hpath[400];
    snprintf(hpath, sizeof hpath, "%s/header.json", dir);
    FILE *hj = fopen(hpath, "w+b");
    uint64_t off = 0;
    int bad = !hj || fputc('{', hj) == EOF;
    int first = 1;
    for (size_t i = 0; i < st.n_tensors && !bad; i++) {
        const mf_st_tensor *t = &st.tensors[i];
        if (!strcmp(t->name, "lm_head.weight")) continue;
        int emb = !strcmp(t->name, "model.embed_tokens.weight");
        bad |= put_json(hj, t->name, emb ? NULL : t, emb ? V : t->shape[0], emb ? HB : t->ndim > 1 ? t->shape[1] : 1,
                        &off, first);
        first = 0;
    }
    long hl = hj && !bad && fputc('}', hj) != EOF ? ftell(hj) : -1;
    CHECK(hl > 0, "header");
    if (hl <= 0) {
        if (hj) fclose(hj);
        mf_st_close(&st);
        return;
    }
    size_t hpad = ((size_t)hl + 7) / 8 * 8;
    char *head = calloc(1, hpad + 1);
    rewind(hj);
    bad |= !head || fread(head, 1, (size_t)hl, hj) != (size_t)hl;
    fclose(hj);
    if (head) memset(head + hl, ' ', hpad - (size_t)hl);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    f = fopen(path, "wb");
    uint8_t n8[8];
    for (int i = 0; i < 8; i++) n8[i] = (uint8_t)((uint64_t)hpad >> (8 * i));
    bad |= !f || !head || fwrite(n8, 1, 8, f) != 8 || fwrite(head, 1, hpad, f) != hpad;
    free(head);
    float *buf = malloc(sizeof(float) * (size_t)V * HB);
    bad |= !buf;
    for (size_t i = 0; i < st.n_tensors && !bad; i++) {
        const mf_st_tensor *t = &st.tensors[i];
        if (!strcmp(t->name, "lm_head.weight")) continue;
        size_t n = (size_t)t->numel;
        if (!strcmp(t->name, "model.embed_tokens.weight")) {
            n = (size_t)V * HB;
            for (size_t j = 0; j < n; j++) buf[j] = big_value(j);
        } else {
            bad |= mf_st_read_f32(&st, t, buf) != 0;
        }
        bad |= fwrite(buf, sizeof(float), n, f) != n; /* little-endian host */
    }
    bad |= !f || fclose(f) != 0;
    mf_st_close(&st);
    CHECK(!bad, "write model.safetensors");
    if (bad) {
        free(buf);
        return;
    }

    mf_convert_options o;
    mf_convert_options_default(&o);
    o.resident_encoding = MF_ENC_Q8;
    char err[256];
    const char *img_path = tmp("big.img");
    CHECK(mf_convert(dir, img_path, &o, NULL, err, sizeof err) == 0, "convert the big embedding: %s", err);
    uint8_t *img = (uint8_t *)mf_read_file(img_path, &len);
    mf_image_header h;
    CHECK(img && read_mem(img, len, &h) == MF_OK && h.vocab == V, "big image verifies");
    if (img) {
        mf_port p;
        mf_mem_port_state ms;
        mf_mem_port_open(&p, &ms, img, len);
        mf_resident_entry e;
        int found = 0;
        for (uint32_t i = 0; i < mf_image_section(&h, MF_SEC_RESIDENT_TABLE)->count && !found; i++)
            found = mf_image_resident_entry(&p, &h, i, &e) == MF_OK && e.kind == MF_T_EMBED;
        CHECK(found && e.rows == V && e.cols == HB && e.encoding == MF_ENC_Q8, "embedding entry");
        if (found) {
            for (size_t j = 0; j < (size_t)V * HB; j++) buf[j] = big_value(j);
            double worst = worst_q8(img + e.offset, buf, V, HB, 32);
            CHECK(worst <= 1.0, "embedding of %u rows: q8 error %.3f half-steps", V, worst);
        }
    }
    free(img);
    free(buf);
}

/* ------------------------------------------------------------ sensitivity */

#define SW 32u /* window */
#define SN 3u  /* windows */

typedef struct {
    double count[16], w[16], w2[16];
} routes;

static void on_route(void *user, uint32_t layer, uint32_t pos, const uint32_t *e, const float *w, uint32_t k)
{
    routes *r = user;
    (void)pos;
    for (uint32_t j = 0; j < k; j++) {
        size_t i = (size_t)layer * 8 + e[j];
        r->count[i] += 1;
        r->w[i] += w[j];
        r->w2[i] += (double)w[j] * w[j];
    }
}

/* Bits per token of an image on the calibration windows (each from an
 * empty context, predictions of tokens 1..SW-1), from a log-softmax here. */
static double image_bits(const char *path, const uint32_t *tok, routes *rt)
{
    mf_port port;
    mf_posix_port_state ps;
    mf_options opt;
    mf_options_default(&opt);
    opt.context_len = SW;
    opt.prefill_batch = SW;
    size_t bytes;
    void *arena = NULL;
    mf_model *m = NULL;
    double bits = -1;
    if (mf_posix_port_open(&port, &ps, path) != MF_PORT_OK) return -1;
    if (mf_arena_bytes(&port, &opt, &bytes) == MF_OK && (arena = malloc(bytes)) &&
        mf_init(&m, &port, &opt, arena, bytes) == MF_OK) {
        static float logits[SW * 256];
        double nats = 0;
        uint32_t n = 0;
        if (rt) mf_set_route_observer(m, on_route, rt);
        for (uint32_t k = 0; k < SN; k++) {
            if (mf_reset(m) != MF_OK || mf_feed_all(m, tok + k * SW, SW, logits) != MF_OK) {
                n = 0;
                break;
            }
            for (uint32_t i = 0; i + 1 < SW; i++) {
                const float *z = logits + (size_t)i * 256;
                double mx = z[0], sum = 0;
                for (int v = 1; v < 256; v++) mx = z[v] > mx ? z[v] : mx;
                for (int v = 0; v < 256; v++) sum += exp((double)z[v] - mx);
                nats += log(sum) + mx - z[tok[k * SW + i + 1]];
                n++;
            }
        }
        if (n) bits = nats / n / log(2.0);
    }
    free(arena);
    mf_posix_port_close(&port);
    return bits;
}

static int close_rel(double a, double b, double tol) { return fabs(a - b) <= tol * (fabs(b) + 1e-30); }

/* Weight errors of every (expert, encoding) of s that differ from
 * sum over gate/up/down of ||W - Q(W)||^2 with group G, recomputed from the
 * checkpoint; *proxy_bad gets how many proxies differ from w2 x that. */
static int werr_mismatch(const mf_sens *s, uint32_t G, const double *w2, int *proxy_bad)
{
    enum { H = 64, F = 96 };
    mf_safetensors st;
    if (mf_st_open(&st, "tests/data/arch-mixtral")) return -1;
    static float w[F * H], row[F];
    static uint8_t q[F * H * 4];
    int bad = 0;
    static const char *const nm[3] = {"w1", "w3", "w2"};
    *proxy_bad = 0;
    for (uint32_t j = 0; j < 16; j++)
        for (size_t k = 0; k < s->n_enc; k++) {
            double e = 0;
            for (int mi = 0; mi < 3; mi++) {
                char name[128];
                snprintf(name, sizeof name, "model.layers.%u.block_sparse_moe.experts.%u.%s.weight", j / 8, j % 8,
                         nm[mi]);
                const mf_st_tensor *t = mf_st_find(&st, name);
                uint32_t rows = mi < 2 ? F : H, cols = mi < 2 ? H : F;
                if (!t || mf_st_read_f32(&st, t, w)) {
                    bad++;
                    continue;
                }
                mf_quantize_matrix(s->enc[k], w, rows, cols, G, q);
                for (uint32_t r = 0; r < rows; r++) {
                    mf_dequantize_row(s->enc[k], q, r, cols, G, row);
                    for (uint32_t c = 0; c < cols; c++) {
                        double d = (double)row[c] - w[r * cols + c];
                        e += d * d;
                    }
                }
            }
            bad += !close_rel(s->werr[j * s->n_enc + k], e, 1e-9);
            *proxy_bad += !close_rel(s->proxy[j * s->n_enc + k], w2[j] * e, 1e-9);
        }
    mf_st_close(&st);
    return bad;
}

static void test_sensitivity(void)
{
    enum { LE = 16, K = 4, H = 64, F = 96 };
    size_t tlen;
    char *text = mf_read_file("tests/data/tinyshakespeare.txt", &tlen);
    CHECK(text && tlen > SW * SN, "text");
    if (!text) return;
    uint32_t tok[SW * SN];
    for (uint32_t i = 0; i < SW * SN; i++) tok[i] = (uint8_t)text[i];
    mf_sens_options so;
    mf_sens_options_default(&so);
    so.window = SW;
    so.windows = SN;
    so.direct = 1;
    so.tmp_dir = tmpdir;
    mf_sens s, s2;
    char err[256];
    int rc = mf_sens_compute("tests/data/arch-mixtral", (const unsigned char *)text, tlen, &so, &s, err, sizeof err);
    CHECK(rc == 0, "sensitivity: %s", err);
    so.jobs = 2;
    int rc2 = mf_sens_compute("tests/data/arch-mixtral", (const unsigned char *)text, tlen, &so, &s2, err,
                              sizeof err);
    CHECK(rc2 == 0, "sensitivity, 2 jobs: %s", err);
    free(text);
    if (rc) {
        if (!rc2) mf_sens_free(&s2);
        return;
    }
    CHECK(s.n_layers == 2 && s.n_experts == 8 && s.n_enc == K && s.calib_tokens == SN * (SW - 1) &&
              s.expert_weights == 3u * H * F,
          "shape: %u x %u, %zu encodings, %llu tokens", s.n_layers, s.n_experts, s.n_enc,
          (unsigned long long)s.calib_tokens);
    for (size_t k = 0; k < K; k++)
        CHECK(s.enc_bytes[k] == 2 * mf_matrix_bytes(s.enc[k], F, H, 32) + mf_matrix_bytes(s.enc[k], H, F, 32),
              "enc_bytes[%zu]", k);

    /* The base image and its routing, replayed. */
    const char *base = tmp("sens_base.img"), *one = tmp("sens_one.img");
    CHECK(mf_convert("tests/data/arch-mixtral", base, NULL, NULL, err, sizeof err) == 0, "convert: %s", err);
    static routes rt;
    memset(&rt, 0, sizeof rt);
    double bb = image_bits(base, tok, &rt);
    CHECK(bb > 0 && close_rel(s.base_bits, bb, 1e-6), "base bits %.9f, replayed %.9f", s.base_bits, bb);
    int route_bad = 0;
    for (size_t j = 0; j < LE; j++)
        route_bad += !close_rel(s.route_count[j], rt.count[j], 1e-12) || !close_rel(s.route_w[j], rt.w[j], 1e-9) ||
                     !close_rel(s.route_w2[j], rt.w2[j], 1e-9);
    CHECK(route_bad == 0, "%d experts' routing sums differ from the replay", route_bad);

    /* Weight errors from the checkpoint; the proxy. */
    int proxy_bad = 0, werr_bad = werr_mismatch(&s, 32, rt.w2, &proxy_bad);
    CHECK(werr_bad == 0, "%d weight errors differ from sum ||W - Q(W)||^2", werr_bad);
    CHECK(proxy_bad == 0, "%d proxies differ from sum w^2 x weight error", proxy_bad);

    /* Direct: layer 1 expert 3 at q2 (k = 3) and layer 0 expert 6 at q4 (k = 1). */
    static const uint32_t pick[2][2] = {{11, 3}, {6, 1}};
    for (int i = 0; i < 2; i++) {
        uint32_t j = pick[i][0], k = pick[i][1];
        int encs[LE];
        for (int x = 0; x < LE; x++) encs[x] = -1;
        encs[j] = s.enc[k];
        mf_convert_options o;
        mf_convert_options_default(&o);
        o.expert_encodings = encs;
        o.n_expert_encodings = LE;
        CHECK(mf_convert("tests/data/arch-mixtral", one, &o, NULL, err, sizeof err) == 0, "convert: %s", err);
        double b1 = image_bits(one, tok, NULL);
        CHECK(s.direct && fabs(s.direct[j * K + k] - (b1 - bb)) <= 1e-6 * bb,
              "direct delta of expert %u at %s: %.9f, replayed %.9f", j, mf_encoding_name(s.enc[k]),
              s.direct ? s.direct[j * K + k] : 0.0, b1 - bb);
    }
    if (!rc2) {
        int same = s2.direct != NULL;
        for (size_t i = 0; same && i < LE * K; i++) same = s2.direct[i] == s.direct[i];
        CHECK(same, "direct deltas with 2 jobs differ from 1 job");
        mf_sens_free(&s2);
    }

    /* Choosing under the budget of all-q3. */
    uint64_t budget = LE * s.enc_bytes[2], got = 0;
    int enc[LE];
    double pred = 0;
    CHECK(mf_sens_choose(&s, s.proxy, budget, enc, &pred, &got) == 0, "choose");
    uint64_t sum = 0;
    double ls = 0;
    int bad = 0;
    for (size_t j = 0; j < LE; j++) {
        size_t k = 0;
        while (k < K && s.enc[k] != enc[j]) k++;
        if (k == K) {
            bad++;
            continue;
        }
        sum += s.enc_bytes[k];
        ls += s.proxy[j * K + k];
    }
    CHECK(bad == 0 && sum == got && sum <= budget && close_rel(pred, ls, 1e-12), "chosen %llu of %llu bytes",
          (unsigned long long)sum, (unsigned long long)budget);
    mf_sens_free(&s);

    /* Group 64: the down rows (96 values) end in a partial group, so the
     * down matrix's error depends on its shape [hidden, expert_ffn]. */
    so.group_size = 64;
    so.direct = 0;
    so.jobs = 0;
    text = mf_read_file("tests/data/tinyshakespeare.txt", &tlen);
    rc = text ? mf_sens_compute("tests/data/arch-mixtral", (const unsigned char *)text, tlen, &so, &s, err, sizeof err)
              : -1;
    free(text);
    CHECK(rc == 0, "sensitivity, group 64: %s", err);
    if (rc) return;
    int pb = 0;
    CHECK(werr_mismatch(&s, 64, s.route_w2, &pb) == 0 && pb == 0, "group 64: weight errors or proxies differ");
    mf_sens_free(&s);
}

static void test_spearman_and_budget(void)
{
    /* ranks of b with a tie: 1, 2, 3.5, 5, 3.5; rho = 8 / sqrt(10 x 9.5) */
    const double a[5] = {1, 2, 3, 4, 5}, b[5] = {5, 6, 7, 8, 7}, rev[5] = {9, 7, 5, 3, 1};
    double rho = mf_spearman(a, b, 5);
    CHECK(fabs(rho - 8.0 / sqrt(95.0)) < 1e-12, "spearman with a tie %.12f", rho);
    CHECK(fabs(mf_spearman(a, rev, 5) + 1.0) < 1e-12, "reversed: -1");
    CHECK(fabs(mf_spearman(b, b, 5) - 1.0) < 1e-12, "itself: 1");
    /* 3 weights at 3 bits = 9 bits: 1 byte, not 2 (the budget is a ceiling). */
    mf_sens s;
    memset(&s, 0, sizeof s);
    s.expert_weights = 3;
    s.n_layers = 1;
    s.n_experts = 1;
    CHECK(mf_sens_budget_for_bits(&s, 3.0) == 1, "3 bits x 3 weights: %llu bytes",
          (unsigned long long)mf_sens_budget_for_bits(&s, 3.0));
    s.expert_weights = 3 * 128 * 256;
    s.n_layers = 4;
    s.n_experts = 16;
    CHECK(mf_sens_budget_for_bits(&s, 3.0) == 2359296, "tiny model at 3 bits: %llu bytes",
          (unsigned long long)mf_sens_budget_for_bits(&s, 3.0));
}

/* ------------------------------------------------------------ writer */

/* A writer for a 1-layer, 2-expert model with one resident vector. */
static int small_writer(mf_image_writer *w, const char *path)
{
    mf_image_header p;
    mf_test_small_header(&p);
    return mf_iw_open(w, path, &p, 0);
}

static void test_writer(void)
{
    static float data[3 * 8 * 8];
    for (int i = 0; i < 3 * 8 * 8; i++) data[i] = (float)i;
    const char *path = tmp("w.img");
    mf_image_writer w;

    /* Out-of-range expert and layer (equal to the count) are refused. */
    CHECK(small_writer(&w, path) == 0, "open");
    CHECK(mf_iw_add_resident(&w, MF_T_EMBED, 0, MF_ENC_F32, 1, 8, data, 32) == 0, "resident: %s", w.err);
    CHECK(mf_iw_add_expert(&w, 0, 0, 2, MF_ENC_F32, data, sizeof data) == -1, "expert == n_experts refused");
    CHECK(mf_iw_add_expert(&w, 0, 1, 0, MF_ENC_F32, data, sizeof data) == -1, "layer == n_layers refused");
    mf_iw_abort(&w);

    /* A kind given twice replaces the earlier one; MF_MAX_SECTIONS fit. */
    CHECK(small_writer(&w, path) == 0, "open");
    CHECK(mf_iw_add_resident(&w, MF_T_EMBED, 0, MF_ENC_F32, 1, 8, data, 32) == 0, "resident: %s", w.err);
    for (uint32_t x = 0; x < 2; x++)
        CHECK(mf_iw_add_expert(&w, 0, 0, x, MF_ENC_F32, data, sizeof data) == 0, "expert %u: %s", x, w.err);
    const char a[] = "first", b[] = "second!";
    CHECK(mf_iw_add_section(&w, MF_SEC_EXPERT_STATS, 1, a, sizeof a) == 0, "section: %s", w.err);
    CHECK(mf_iw_add_section(&w, MF_SEC_EXPERT_STATS, 2, b, sizeof b) == 0, "same kind again: %s", w.err);
    uint32_t room = MF_MAX_SECTIONS - 4 - 1; /* the four structural sections, EXPERT_STATS */
    for (uint32_t k = 0; k < room; k++)
        CHECK(mf_iw_add_section(&w, 20 + k, k, &k, sizeof k) == 0, "section %u of %u: %s", 6 + k,
              MF_MAX_SECTIONS, w.err);
    CHECK(mf_iw_add_section(&w, 40, 0, a, 1) == -1, "a section past MF_MAX_SECTIONS is refused");
    CHECK(mf_iw_finish(&w) == 0, "finish: %s", w.err);
    size_t len = 0;
    uint8_t *img = (uint8_t *)mf_read_file(path, &len);
    mf_image_header h;
    CHECK(img && read_mem(img, len, &h) == MF_OK, "image with %u sections verifies", MF_MAX_SECTIONS);
    if (img) {
        CHECK(h.n_sections == MF_MAX_SECTIONS, "%u sections", h.n_sections);
        int n = 0;
        for (uint32_t i = 0; i < h.n_sections; i++) n += h.sections[i].kind == MF_SEC_EXPERT_STATS;
        const mf_section *s = mf_image_section(&h, MF_SEC_EXPERT_STATS);
        CHECK(n == 1 && s && s->count == 2 && s->bytes == sizeof b && !memcmp(img + s->offset, b, sizeof b),
              "one EXPERT_STATS section, the second one");
    }
    free(img);
}

int main(void)
{
    const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(tmpdir, sizeof tmpdir, "%s/mf_conv_XXXXXX", base);
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_options_and_layout();
    test_group64();
    test_resident_alignment();
    test_copy_unordered_table();
    test_big_tensor();
    test_writer();
    test_spearman_and_budget();
    test_sensitivity();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    return mf_test_done("test_convert");
}
