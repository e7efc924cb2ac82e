/* tools/lib/safetensors.c on the shipped checkpoints (values checked against
 * golden.json: hidden_states[0] is the embedding row of each prompt token,
 * computed by transformers) and on crafted files, good and bad, written to a
 * temporary folder at test time. The memory entry point must see exactly
 * what the file path sees, and the index parser alone (mf_st_index_parse)
 * must agree with the shards mf_st_open opens. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../tools/lib/json.h"
#include "../tools/lib/safetensors.h"
#include "harness.h"

static char tmpdir[256];

/* Writes a safetensors file: header text (length field = header_len, or the
 * real length when header_len == 0) followed by data. */
static void write_st(const char *name, const char *header, uint64_t header_len, const void *data,
                     size_t data_len)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        exit(1);
    }
    uint64_t n = header_len ? header_len : strlen(header);
    uint8_t lb[8];
    for (int i = 0; i < 8; i++) lb[i] = (uint8_t)(n >> (8 * i));
    if (fwrite(lb, 1, 8, f) != 8 || fwrite(header, 1, strlen(header), f) != strlen(header) ||
        (data_len && fwrite(data, 1, data_len, f) != data_len) || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
}

static char *tmp_path(const char *name)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    return path;
}

/* Embedding rows against golden hidden_states[0][t] for each prompt token. */
static void check_embeddings(const char *dir, uint32_t hidden)
{
    mf_safetensors st;
    int rc = mf_st_open(&st, dir);
    CHECK(rc == 0, "open %s: %s", dir, st.err);
    if (rc) return;
    const mf_st_tensor *emb = mf_st_find(&st, "model.embed_tokens.weight");
    CHECK(emb && emb->ndim == 2 && emb->shape[1] == hidden, "%s: embed shape", dir);
    char gpath[512];
    snprintf(gpath, sizeof gpath, "%s/golden.json", dir);
    size_t len;
    char *text = mf_read_file(gpath, &len);
    mf_json_doc doc;
    CHECK(text && mf_json_parse(&doc, text, len) == 0, "golden %s", gpath);
    free(text);
    if (!emb || !doc.root) {
        mf_st_close(&st);
        return;
    }
    const mf_json *c = mf_json_at(mf_json_get(doc.root, "cases"), 0);
    const mf_json *tokens = mf_json_get(c, "tokens");
    const mf_json *h0 = mf_json_at(mf_json_get(c, "hidden_states"), 0);
    float *row = malloc(hidden * sizeof *row);
    int bad = 0, checked = 0;
    for (size_t t = 0; t < tokens->count; t++) {
        uint64_t id = (uint64_t)mf_json_at(tokens, t)->number;
        if (mf_st_read_f32_range(&st, emb, id * hidden, hidden, row)) {
            bad++;
            continue;
        }
        const mf_json *want = mf_json_at(h0, t);
        for (uint32_t j = 0; j < hidden; j++, checked++)
            if (fabs(row[j] - mf_json_at(want, j)->number) > 1e-7) bad++;
    }
    CHECK(bad == 0 && checked > 0, "%s: %d of %d embedding values differ from golden", dir, bad, checked);
    free(row);
    mf_json_free(&doc);
    mf_st_close(&st);
}

static void test_shipped(void)
{
    mf_safetensors st;
    /* arch-mixtral: 2 layers x (8 experts x 3 + gate + 2 norms + 4 proj) + embed, norm, lm_head */
    CHECK(mf_st_open(&st, "tests/data/arch-mixtral") == 0, "%s", st.err);
    CHECK(st.n_tensors == 2 * (24 + 7) + 3, "mixtral tensors %zu", st.n_tensors);
    const mf_st_tensor *w = mf_st_find(&st, "model.layers.1.block_sparse_moe.experts.7.w2.weight");
    CHECK(w && w->ndim == 2 && w->shape[0] == 64 && w->shape[1] == 96 && w->dtype == MF_ST_BF16,
          "w2 shape");
    CHECK(mf_st_find(&st, "model.layers.2.input_layernorm.weight") == NULL, "absent tensor");
    char buf[64];
    CHECK(w && !strcmp(mf_st_shape_str(w, buf, sizeof buf), "[64, 96]"), "shape str %s", buf);
    mf_st_close(&st);

    /* Sharded: 6 layers x (32 x 3 + gate + 2 norms + 4 proj + q/k norm) + 3 */
    CHECK(mf_st_open(&st, "tests/data/small-qwen3-moe-bpe") == 0, "%s", st.err);
    CHECK(st.n_shards == 3, "shards %zu", st.n_shards);
    CHECK(st.n_tensors == 6 * (96 + 9) + 3, "bpe tensors %zu", st.n_tensors);
    mf_st_close(&st);

    CHECK(mf_st_open(&st, "tests/data/no-such-model") == -1 && strstr(st.err, "no-such-model"),
          "missing folder: %s", st.err);

    check_embeddings("tests/data/arch-mixtral", 64);
    check_embeddings("tests/data/arch-qwen2-moe", 64);
    check_embeddings("tests/data/small-qwen3-moe-bpe", 192); /* embed in shard 1 of 3 */
}

/* Values written by hand in each dtype decode to the exact floats. */
static void test_dtypes(void)
{
    uint8_t data[4 * 4 + 2 * 5 + 2 * 3 + 8];
    float f32[4] = {1.0f, -2.5f, 3.14159274f, 1e-30f};
    memcpy(data, f32, 16); /* little-endian host */
    const uint16_t f16[5] = {0x3C00, 0xC000, 0x0001, 0x7BFF, 0x3555};
    const float f16_want[5] = {1.0f, -2.0f, 5.9604644775390625e-08f, 65504.0f, 0.333251953125f};
    const uint16_t bf16[3] = {0x3FC0, 0xBF80, 0x4049};
    const float bf16_want[3] = {1.5f, -1.0f, 3.140625f};
    for (int i = 0; i < 5; i++) {
        data[16 + 2 * i] = (uint8_t)f16[i];
        data[17 + 2 * i] = (uint8_t)(f16[i] >> 8);
    }
    for (int i = 0; i < 3; i++) {
        data[26 + 2 * i] = (uint8_t)bf16[i];
        data[27 + 2 * i] = (uint8_t)(bf16[i] >> 8);
    }
    memset(data + 32, 7, 8);
    const char *h = "{\"__metadata__\":{\"format\":\"pt\"},"
                    "\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]},"
                    "\"b\":{\"dtype\":\"F16\",\"shape\":[5],\"data_offsets\":[16,26]},"
                    "\"c\":{\"dtype\":\"BF16\",\"shape\":[1,3],\"data_offsets\":[26,32]},"
                    "\"d\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[32,40]},"
                    "\"e\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[40,40]}}";
    write_st("good.safetensors", h, 0, data, sizeof data);
    mf_safetensors st;
    CHECK(mf_st_open_file(&st, tmp_path("good.safetensors")) == 0, "%s", st.err);
    CHECK(st.n_tensors == 5, "n %zu", st.n_tensors);
    float out[8];
    const mf_st_tensor *t = mf_st_find(&st, "a");
    CHECK(t && mf_st_read_f32(&st, t, out) == 0 && !memcmp(out, f32, 16), "F32 values");
    t = mf_st_find(&st, "b");
    CHECK(t && mf_st_read_f32(&st, t, out) == 0, "F16 read");
    for (int i = 0; i < 5; i++) CHECK(out[i] == f16_want[i], "f16[%d] = %.9g", i, out[i]);
    t = mf_st_find(&st, "c");
    CHECK(t && mf_st_read_f32(&st, t, out) == 0, "BF16 read");
    for (int i = 0; i < 3; i++) CHECK(out[i] == bf16_want[i], "bf16[%d] = %.9g", i, out[i]);
    CHECK(t && mf_st_read_f32_range(&st, t, 1, 2, out) == 0 && out[0] == -1.0f && out[1] == 3.140625f,
          "range read");
    CHECK(t && mf_st_read_f32_range(&st, t, 2, 2, out) == -1, "range past the end");
    t = mf_st_find(&st, "d");
    CHECK(t && mf_st_read_f32(&st, t, out) == -1 && strstr(st.err, "I64") && strstr(st.err, "d"),
          "unsupported dtype named: %s", st.err);
    mf_st_close(&st);
}

/* Each malformed file fails at open with a message containing `want`. */
static void expect_open_error(const char *name, const char *want)
{
    mf_safetensors st;
    int rc = mf_st_open_file(&st, tmp_path(name));
    CHECK(rc == -1, "%s opened", name);
    CHECK(strstr(st.err, want) != NULL, "%s: message [%s] lacks [%s]", name, st.err, want);
    CHECK(strchr(st.err, '\n') == NULL, "one line");
    if (!rc) mf_st_close(&st);
}

static void test_bad(void)
{
    uint8_t data[64] = {0};
    const char *ok = "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}";
    write_st("hlen.safetensors", ok, 1000, data, 16);
    expect_open_error("hlen.safetensors", "past the end");
    write_st("json.safetensors", "{\"a\":{\"dtype\":\"F32\",,}}", 0, data, 16);
    expect_open_error("json.safetensors", "bad JSON");
    write_st("off.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,32]}}", 0, data, 16);
    expect_open_error("off.safetensors", "outside the data area");
    write_st("rev.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}", 0, data, 16);
    expect_open_error("rev.safetensors", "outside the data area");
    write_st("shape.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,16]}}", 0, data, 16);
    expect_open_error("shape.safetensors", "needs 12");
    write_st("neg.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[-4],\"data_offsets\":[0,16]}}", 0, data, 16);
    expect_open_error("neg.safetensors", "shape");
    write_st("nodt.safetensors", "{\"a\":{\"shape\":[4],\"data_offsets\":[0,16]}}", 0, data, 16);
    expect_open_error("nodt.safetensors", "dtype");
    write_st("arr.safetensors", "[1,2]", 0, data, 16);
    expect_open_error("arr.safetensors", "not a JSON object");
    FILE *f = fopen(tmp_path("short.safetensors"), "wb");
    CHECK(f && fwrite("abc", 1, 3, f) == 3 && fclose(f) == 0, "write short");
    expect_open_error("short.safetensors", "too short");

    /* A truncated copy of a real file: its header now points past the data. */
    size_t len;
    char *whole = mf_read_file("tests/data/arch-mixtral/model.safetensors", &len);
    CHECK(whole != NULL, "read mixtral");
    if (whole) {
        f = fopen(tmp_path("trunc.safetensors"), "wb");
        CHECK(f && fwrite(whole, 1, len / 2, f) == len / 2 && fclose(f) == 0, "write trunc");
        free(whole);
        expect_open_error("trunc.safetensors", "outside the data area");
    }

    /* Sharded index naming a tensor its shard does not hold, and a shard
     * name that tries to leave the folder. */
    char dir[300];
    snprintf(dir, sizeof dir, "%s/sharded", tmpdir);
    CHECK(mkdir(dir, 0755) == 0, "mkdir %s", dir);
    write_st("sharded/s1.safetensors", ok, 0, data, 16);
    f = fopen(tmp_path("sharded/model.safetensors.index.json"), "wb");
    const char *idx = "{\"weight_map\": {\"a\": \"s1.safetensors\", \"b\": \"s1.safetensors\"}}";
    CHECK(f && fwrite(idx, 1, strlen(idx), f) == strlen(idx) && fclose(f) == 0, "write index");
    mf_safetensors st;
    CHECK(mf_st_open(&st, dir) == -1 && strstr(st.err, "tensor b is missing from shard s1.safetensors"),
          "index: %s", st.err);
    f = fopen(tmp_path("sharded/model.safetensors.index.json"), "wb");
    idx = "{\"weight_map\": {\"a\": \"../s1.safetensors\"}}";
    CHECK(f && fwrite(idx, 1, strlen(idx), f) == strlen(idx) && fclose(f) == 0, "write index");
    CHECK(mf_st_open(&st, dir) == -1 && strstr(st.err, "not a plain file name"), "index: %s", st.err);
    f = fopen(tmp_path("sharded/model.safetensors.index.json"), "wb");
    idx = "{\"weight_map\": {\"a\": \"s1.safetensors\"}}";
    CHECK(f && fwrite(idx, 1, strlen(idx), f) == strlen(idx) && fclose(f) == 0, "write index");
    CHECK(mf_st_open(&st, dir) == 0 && st.n_tensors == 1, "good index: %s", st.err);
    mf_st_close(&st);
    /* Each tensor in another shard than the index says. */
    write_st("sharded/s2.safetensors", "{\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 0,
             data, 16);
    f = fopen(tmp_path("sharded/model.safetensors.index.json"), "wb");
    idx = "{\"weight_map\": {\"a\": \"s2.safetensors\", \"b\": \"s1.safetensors\"}}";
    CHECK(f && fwrite(idx, 1, strlen(idx), f) == strlen(idx) && fclose(f) == 0, "write index");
    CHECK(mf_st_open(&st, dir) == -1 && strstr(st.err, "as the index says"), "swapped index: %s", st.err);
}

/* A whole file opened from memory gives the same tensors, offsets and
 * values as the same file opened by path. */
static void check_mem_same_as_file(const char *path)
{
    size_t len;
    char *whole = mf_read_file(path, &len);
    CHECK(whole != NULL, "read %s", path);
    if (!whole) return;
    mf_safetensors fs, ms;
    int frc = mf_st_open_file(&fs, path), mrc = mf_st_open_mem(&ms, whole, len);
    CHECK(frc == 0 && mrc == 0, "%s: file [%s] memory [%s]", path, fs.err, ms.err);
    if (frc || mrc) {
        if (!frc) mf_st_close(&fs);
        if (!mrc) mf_st_close(&ms);
        free(whole);
        return;
    }
    CHECK(ms.n_shards == 1 && ms.shards[0].f == NULL && ms.shards[0].file_bytes == len, "%s: mem shard",
          path);
    CHECK(ms.shards[0].data_start == fs.shards[0].data_start, "%s: data_start %llu vs %llu", path,
          (unsigned long long)ms.shards[0].data_start, (unsigned long long)fs.shards[0].data_start);
    CHECK(ms.n_tensors == fs.n_tensors && fs.n_tensors > 0, "%s: %zu vs %zu tensors", path, ms.n_tensors,
          fs.n_tensors);
    int differ = 0, values = 0;
    for (size_t i = 0; i < fs.n_tensors && i < ms.n_tensors; i++) {
        const mf_st_tensor *a = &fs.tensors[i], *b = &ms.tensors[i];
        if (strcmp(a->name, b->name) || a->dtype != b->dtype || strcmp(a->dtype_name, b->dtype_name) ||
            a->ndim != b->ndim || memcmp(a->shape, b->shape, sizeof a->shape) || a->numel != b->numel ||
            a->begin != b->begin || a->end != b->end) {
            differ++;
            continue;
        }
        if (a->dtype == MF_ST_OTHER) continue;
        float *fa = malloc((a->numel + 1) * sizeof *fa), *fb = malloc((a->numel + 1) * sizeof *fb);
        if (fa && fb && !mf_st_read_f32(&fs, a, fa) && !mf_st_read_f32(&ms, b, fb) &&
            !memcmp(fa, fb, a->numel * sizeof *fa))
            values++;
        else
            differ++;
        free(fa);
        free(fb);
    }
    CHECK(differ == 0 && values > 0, "%s: %d tensors differ between file and memory (%d equal)", path,
          differ, values);
    mf_st_close(&fs);
    mf_st_close(&ms);
    free(whole);
}

/* Each bad buffer fails at open with a one-line message naming the buffer
 * and containing `want`, and leaves nothing allocated. */
static void expect_mem_error(const char *what, const void *data, size_t len, const char *want)
{
    mf_safetensors st;
    int rc = mf_st_open_mem(&st, data, len);
    CHECK(rc == -1, "%s opened", what);
    CHECK(strstr(st.err, want) != NULL && !strncmp(st.err, "<memory>", 8), "%s: message [%s] lacks [%s]",
          what, st.err, want);
    CHECK(strchr(st.err, '\n') == NULL, "%s: one line", what);
    CHECK(st.tensors == NULL && st.shards == NULL && st.n_tensors == 0, "%s: left allocated", what);
    if (!rc) mf_st_close(&st);
}

static void test_mem(void)
{
    check_mem_same_as_file("tests/data/arch-mixtral/model.safetensors");
    check_mem_same_as_file("tests/data/arch-olmoe/model.safetensors");
    check_mem_same_as_file("tests/data/arch-qwen2-moe/model.safetensors");
    check_mem_same_as_file("tests/data/arch-qwen3-moe-fused/model.safetensors");
    check_mem_same_as_file("tests/data/small-qwen3-moe-bpe/model-00003-of-00003.safetensors");
    check_mem_same_as_file(tmp_path("good.safetensors")); /* F16, BF16, I64, empty (test_dtypes) */

    size_t len;
    uint8_t *whole = (uint8_t *)mf_read_file("tests/data/arch-mixtral/model.safetensors", &len);
    CHECK(whole != NULL && len > 64, "read mixtral");
    if (!whole) return;
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | whole[i];
    expect_mem_error("empty", whole, 0, "too short");
    expect_mem_error("NULL", NULL, 0, "too short");
    expect_mem_error("5 bytes", whole, 5, "too short");
    expect_mem_error("length field only", whole, 8, "past the end");
    expect_mem_error("header cut", whole, (size_t)(8 + hlen - 1), "past the end");
    expect_mem_error("data cut in half", whole, len / 2, "outside the data area");
    expect_mem_error("last byte missing", whole, len - 1, "outside the data area");

    /* Garbage: a random length field, then a plausible length over junk. */
    uint8_t junk[256];
    uint32_t x = 2463534242u;
    for (size_t i = 0; i < sizeof junk; i++) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        junk[i] = (uint8_t)x;
    }
    expect_mem_error("random bytes", junk, sizeof junk, "past the end");
    static const char nl[] = "\x24\0\0\0\0\0\0\0{\"x\\ny\":{\"dtype\":\"F32\",\"shape\":[1]}}";
    expect_mem_error("newline in a name", nl, sizeof nl - 1, "tensor x?y: data_offsets");

    /* Header entries the safetensors format does not allow: shape entries
     * are non-negative integers, data_offsets is exactly [begin, end], the
     * byte size is numel x element size with no wrap-around, dtype is one
     * of the format's names. */
    static const struct {
        const char *header, *want;
    } bad_hdr[] = {
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,8]}}", "shape entry 0"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8,8]}}", "data_offsets must be"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", "data_offsets must be"},
        /* 2^32 x 2^32 elements: numel wraps to 0 in 64 bits */
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,0]}}", "shape too large"},
        /* 2^31 x 2^31 F32 elements: 2^64 bytes, which wraps to 0 */
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2147483648,2147483648],\"data_offsets\":[0,0]}}", "needs"},
        {"{\"a\":{\"dtype\":\"F32_BUT_A_VERY_LONG_NAME_INDEED\",\"shape\":[2],\"data_offsets\":[0,8]}}",
         "unknown dtype"},
    };
    for (size_t i = 0; i < sizeof bad_hdr / sizeof bad_hdr[0]; i++) {
        size_t hl = strlen(bad_hdr[i].header);
        uint8_t *buf = calloc(1, 8 + hl + 16);
        CHECK(buf != NULL, "alloc");
        if (!buf) continue;
        for (int b = 0; b < 8; b++) buf[b] = (uint8_t)((uint64_t)hl >> (8 * b));
        memcpy(buf + 8, bad_hdr[i].header, hl);
        expect_mem_error(bad_hdr[i].header, buf, 8 + hl + 16, bad_hdr[i].want);
        free(buf);
    }
    junk[0] = 100;
    memset(junk + 1, 0, 7);
    expect_mem_error("junk header", junk, sizeof junk, "bad JSON header");
    whole[0] ^= 1; /* header length off by one: a data byte, or no closing brace */
    expect_mem_error("length off by one", whole, len, "bad JSON header");
    whole[0] ^= 1;

    /* Ranged reads from memory stop at the tensor's end as file reads do. */
    mf_safetensors st;
    CHECK(mf_st_open_mem(&st, whole, len) == 0, "%s", st.err);
    const mf_st_tensor *w = mf_st_find(&st, "model.layers.1.block_sparse_moe.experts.7.w2.weight");
    float out[4];
    CHECK(w && mf_st_read_f32_range(&st, w, w->numel - 4, 4, out) == 0, "read last elements: %s", st.err);
    CHECK(w && mf_st_read_f32_range(&st, w, w->numel - 3, 4, out) == -1 && strstr(st.err, "outside"),
          "range past the end: %s", st.err);
    mf_st_close(&st);
    free(whole);
}

/* The index parser alone, on the shipped index and on broken ones. */
static void expect_index_error(const char *text, const char *want)
{
    mf_st_index idx;
    int rc = mf_st_index_parse(&idx, text, strlen(text), "idx.json");
    CHECK(rc == -1, "index %s accepted", text);
    CHECK(strstr(idx.err, want) && !strncmp(idx.err, "idx.json: ", 10), "index %s: message [%s] lacks [%s]",
          text, idx.err, want);
    CHECK(strchr(idx.err, '\n') == NULL, "index %s: one line", text);
    CHECK(idx.files == NULL && idx.entries == NULL, "index %s: left allocated", text);
    if (!rc) mf_st_index_free(&idx);
}

static void test_index(void)
{
    const char *dir = "tests/data/small-qwen3-moe-bpe";
    size_t len;
    char *text = mf_read_file("tests/data/small-qwen3-moe-bpe/model.safetensors.index.json", &len);
    CHECK(text != NULL, "read index");
    if (!text) return;
    mf_st_index idx;
    int rc = mf_st_index_parse(&idx, text, len, "index");
    free(text);
    CHECK(rc == 0, "%s", idx.err);
    if (rc) return;
    CHECK(idx.n_files == 3 && !strcmp(idx.files[0], "model-00001-of-00003.safetensors") &&
              !strcmp(idx.files[1], "model-00002-of-00003.safetensors") &&
              !strcmp(idx.files[2], "model-00003-of-00003.safetensors"),
          "files %zu", idx.n_files);
    CHECK(idx.n_entries == 6 * (96 + 9) + 3, "entries %zu", idx.n_entries);
    int unsorted = 0;
    for (size_t i = 1; i < idx.n_entries; i++) unsorted += strcmp(idx.entries[i - 1].tensor, idx.entries[i].tensor) >= 0;
    CHECK(unsorted == 0, "%d entries out of order", unsorted);
    /* mf_st_open opens the files in index order: same shard numbers. */
    mf_safetensors st;
    CHECK(mf_st_open(&st, dir) == 0, "%s", st.err);
    int wrong = 0;
    for (size_t i = 0; i < idx.n_entries && st.n_tensors; i++) {
        const mf_st_tensor *t = mf_st_find(&st, idx.entries[i].tensor);
        wrong += !t || t->shard != idx.entries[i].shard;
    }
    CHECK(wrong == 0 && st.n_tensors == idx.n_entries, "%d tensors in another shard than the index says", wrong);
    mf_st_close(&st);
    mf_st_index_free(&idx);

    expect_index_error("{\"weight_map\": {\"a\": \"s1\",}}", "bad JSON");
    expect_index_error("[1, 2]", "no weight_map object");
    expect_index_error("{\"metadata\": {}}", "no weight_map object");
    expect_index_error("{\"weight_map\": {}}", "no weight_map object");
    expect_index_error("{\"weight_map\": [\"s1\"]}", "no weight_map object");
    expect_index_error("{\"weight_map\": {\"a\": 3}}", "entry a is not a file name");
    expect_index_error("{\"weight_map\": {\"a\\nb\": 3}}", "entry a?b is not a file name");
    expect_index_error("{\"weight_map\": {\"a\": \"s1\", \"b\": \"../s1\"}}", "\"../s1\" of tensor b is not a plain file name");
    expect_index_error("{\"weight_map\": {\"a\": \"/etc/passwd\"}}", "not a plain file name");
    expect_index_error("{\"weight_map\": {\"a\": \"..\"}}", "not a plain file name");
    expect_index_error("{\"weight_map\": {\"a\": \".\"}}", "not a plain file name");
    expect_index_error("{\"weight_map\": {\"a\": \"\"}}", "not a plain file name");
    expect_index_error("{\"weight_map\": {\"a\": \"x\\\\y\"}}", "not a plain file name");
    expect_index_error("{\"weight_map\": {\"a\": \"s1\\u0000/x\"}}", "not a plain file name");
    expect_index_error("{\"weight_map\": {\"a\\u0000b\": \"s1\"}}", "NUL byte");
    expect_index_error("{\"weight_map\": {\"b\": \"s1\", \"a\": \"s2\", \"b\": \"s2\"}}", "tensor b is listed twice");

    /* Text need not be NUL-terminated: only len bytes are read. */
    const char *two = "{\"weight_map\": {\"z\": \"s2\", \"y\": \"s1\", \"x\": \"s2\"}}trailing";
    rc = mf_st_index_parse(&idx, two, strlen(two) - 8, "idx.json");
    CHECK(rc == 0 && idx.n_files == 2 && !strcmp(idx.files[0], "s2") && !strcmp(idx.files[1], "s1") &&
              idx.n_entries == 3 && !strcmp(idx.entries[0].tensor, "x") && idx.entries[0].shard == 0 &&
              !strcmp(idx.entries[1].tensor, "y") && idx.entries[1].shard == 1,
          "small index: %s", idx.err);
    if (!rc) mf_st_index_free(&idx);
}

int main(void)
{
    const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(tmpdir, sizeof tmpdir, "%s/mf_st_XXXXXX", base);
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_shipped();
    test_dtypes();
    test_mem();
    test_index();
    test_bad();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    return mf_test_done("test_safetensors");
}
