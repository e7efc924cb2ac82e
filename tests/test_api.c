/*
 * The public API's contract on a real (converted) model, arch-mixtral:
 * error codes (NULL arguments, arena too small, context exhausted, sample
 * before feed, token outside the vocabulary, corrupt expert blob, failing
 * flash), the exact arena size, and that the logits do not depend on the
 * number of expert slots, the prefill batch, or the port (file vs mapped
 * memory): bit for bit.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../port/posix/posix_port.h"
#include "../port/sim/sim_port.h"
#include "../runtime/image.h"
#include "../runtime/moeflash.h"
#include "../tools/lib/json.h"
#include "harness.h"
#include "image_fixture.h"

static uint8_t *img;
static size_t img_len;

/* A model over a memory port (copy of the image), arena from the heap. */
typedef struct {
    mf_mem_port_state st;
    mf_port port;
    void *arena;
    size_t bytes;
    mf_model *m;
} mem_model;

static int open_mem(mem_model *mm, const uint8_t *buf, size_t len, const mf_options *opt)
{
    memset(mm, 0, sizeof *mm);
    if (mf_mem_port_open(&mm->port, &mm->st, buf, len) != MF_PORT_OK) return MF_E_IO;
    int rc = mf_arena_bytes(&mm->port, opt, &mm->bytes);
    if (rc) return rc;
    mm->arena = malloc(mm->bytes);
    return mf_init(&mm->m, &mm->port, opt, mm->arena, mm->bytes);
}

static void close_mem(mem_model *mm)
{
    free(mm->arena);
    memset(mm, 0, sizeof *mm);
}

/* The test text: 40 bytes of Shakespeare. */
static const char *TEXT = "First Citizen:\nBefore we proceed any fur";

static void text_ids(uint32_t *ids, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) ids[i] = (uint8_t)TEXT[i];
}

/* Logits after each of the 40 tokens: the first 30 through mf_feed_all,
 * then 10 one at a time through mf_feed. */
static int run_logits(mf_model *m, float *out)
{
    uint32_t ids[40];
    text_ids(ids, 40);
    uint32_t V = mf_vocab_size(m);
    mf_reset(m);
    int rc = mf_feed_all(m, ids, 30, out);
    for (uint32_t i = 30; i < 40 && !rc; i++) {
        rc = mf_feed(m, ids + i, 1);
        if (!rc) memcpy(out + (size_t)i * V, mf_logits(m), sizeof(float) * V);
    }
    return rc;
}

/* A port that fails every read inside [bad_lo, bad_hi). */
typedef struct {
    mf_port inner;
    uint64_t bad_lo, bad_hi;
    int reads_failed;
} failing_ctx;

static int failing_read(const mf_port *p, uint64_t off, void *dst, size_t len)
{
    failing_ctx *c = p->ctx;
    if (off < c->bad_hi && off + len > c->bad_lo) {
        c->reads_failed++;
        return MF_PORT_EIO;
    }
    return c->inner.read(&c->inner, off, dst, len);
}

static void test_errors(void)
{
    mf_options opt;
    mf_options_default(&opt);
    mf_port port;
    mf_mem_port_state st;
    mf_mem_port_open(&port, &st, img, img_len);
    size_t need = 0;
    mf_model *m = NULL;

    CHECK(mf_arena_bytes(NULL, &opt, &need) == MF_E_ARG, "NULL port");
    CHECK(mf_arena_bytes(&port, &opt, NULL) == MF_E_ARG, "NULL bytes");
    CHECK(mf_init(NULL, &port, &opt, img, 10) == MF_E_ARG, "NULL model");
    CHECK(mf_init(&m, NULL, &opt, img, 10) == MF_E_ARG, "NULL port");
    CHECK(mf_init(&m, &port, &opt, NULL, 10) == MF_E_ARG, "NULL arena");
    CHECK(mf_feed(NULL, (const uint32_t[]){1}, 1) == MF_E_ARG, "feed NULL model");
    CHECK(mf_logits(NULL) == NULL, "logits of NULL");
    CHECK(mf_reset(NULL) == MF_E_ARG, "reset NULL");

    opt.context_len = 8;
    CHECK(mf_arena_bytes(&port, &opt, &need) == MF_OK, "arena bytes");
    uint8_t *arena = malloc(need);
    int rc = mf_init(&m, &port, &opt, arena, need - 1);
    CHECK(rc == MF_E_ARENA, "arena one byte short: %s", mf_strerror(rc));
    rc = mf_init(&m, &port, &opt, arena, need);
    CHECK(rc == MF_OK, "arena exactly the size: %s", mf_strerror(rc));
    if (rc) {
        free(arena);
        return;
    }
    CHECK(mf_arena_used_bytes(m) == need, "used %zu != computed %zu", mf_arena_used_bytes(m), need);
    CHECK(mf_context_len(m) == 8, "context %u", mf_context_len(m));

    uint32_t tok;
    mf_sampler s;
    mf_sampler_init(&s, 0.0f, 1.0f, 1);
    CHECK(mf_sample(m, &s, &tok) == MF_E_STATE, "sample before feed");
    CHECK(mf_logits(m) == NULL, "logits before feed");
    CHECK(mf_sample(NULL, &s, &tok) == MF_E_ARG, "sample NULL model");
    CHECK(mf_sample(m, NULL, &tok) == MF_E_ARG, "sample NULL sampler");
    CHECK(mf_feed(m, NULL, 1) == MF_E_ARG, "feed NULL tokens");
    CHECK(mf_feed(m, (const uint32_t[]){1}, 0) == MF_E_ARG, "feed zero tokens");
    CHECK(mf_feed_all(m, (const uint32_t[]){1}, 1, NULL) == MF_E_ARG, "feed_all NULL logits");

    uint32_t ids[9];
    text_ids(ids, 9);
    uint32_t bad[2] = {ids[0], mf_vocab_size(m)};
    CHECK(mf_feed(m, bad, 2) == MF_E_TOKEN, "token == vocab");
    CHECK(mf_position(m) == 0, "a rejected feed consumed tokens: %u", mf_position(m));
    CHECK(mf_decode_token(m, mf_vocab_size(m), (char[8]){0}, 8, &need) == MF_E_TOKEN, "decode");

    CHECK(mf_feed(m, ids, 9) == MF_E_CONTEXT, "9 tokens into a context of 8");
    CHECK(mf_position(m) == 0, "position %u", mf_position(m));
    CHECK(mf_feed(m, ids, 8) == MF_OK, "8 tokens");
    CHECK(mf_position(m) == 8, "position %u", mf_position(m));
    CHECK(mf_sample(m, &s, &tok) == MF_OK && tok < mf_vocab_size(m), "sample after feed");
    CHECK(mf_feed(m, ids, 1) == MF_E_CONTEXT, "feed past the context");
    CHECK(mf_reset(m) == MF_OK && mf_position(m) == 0, "reset");
    CHECK(mf_sample(m, &s, &tok) == MF_E_STATE, "sample after reset");
    CHECK(mf_feed(m, ids, 1) == MF_OK, "feed after reset");

    /* Tokens through the byte-level tokenizer. */
    uint32_t enc[16], n = 0;
    CHECK(mf_encode(m, "Hi!", 3, enc, 16, &n) == MF_OK && n == 3 && enc[0] == 'H' && enc[2] == '!',
          "encode");
    char out[8];
    size_t len = 0;
    CHECK(mf_decode_token(m, 'x', out, sizeof out, &len) == MF_OK && len == 1 && out[0] == 'x',
          "decode");

    /* Fewer slots than top_k. */
    mf_options o2;
    mf_options_default(&o2);
    o2.expert_slots = 1;
    CHECK(mf_arena_bytes(&port, &o2, &need) == MF_E_ARG, "1 slot < top_k");
    mf_options_default(&o2);
    o2.context_len = 1u << 30;
    CHECK(mf_arena_bytes(&port, &o2, &need) == MF_E_ARG, "context beyond max_seq");
    free(arena);

    /* The computed size is exact for every combination of options: init
     * succeeds with it and fails one byte short. */
    {
        mf_info info;
        mf_image_info(&port, &info);
        const uint32_t ctxs[] = {1, 33, 0}, batches[] = {1, 5, 64},
                       slots[] = {0, 3, info.n_layers * info.n_experts};
        int exact = 1, short_fails = 1;
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 3; j++)
                for (int k = 0; k < 3; k++) {
                    mf_options_default(&o2);
                    o2.context_len = ctxs[i];
                    o2.prefill_batch = batches[j];
                    o2.expert_slots = slots[k];
                    o2.float_activations = (i + j + k) & 1;
                    size_t b = 0;
                    if (mf_arena_bytes(&port, &o2, &b) != MF_OK) {
                        exact = 0;
                        continue;
                    }
                    uint8_t *ar = malloc(b + 1);
                    mf_model *mm2;
                    /* an odd start address exercises the alignment slack */
                    if (mf_init(&mm2, &port, &o2, ar + 1, b) != MF_OK || mf_arena_used_bytes(mm2) != b)
                        exact = 0;
                    if (mf_init(&mm2, &port, &o2, ar + 1, b - 1) != MF_E_ARENA) short_fails = 0;
                    free(ar);
                }
        CHECK(exact, "arena size not exact for some options");
        CHECK(short_fails, "one byte short did not give MF_E_ARENA for some options");
    }

    /* Error strings: one per code, distinct. */
    int codes[] = {MF_OK,    MF_E_ARG,     MF_E_IO,    MF_E_FORMAT, MF_E_VERSION,
                   MF_E_CRC, MF_E_RANGE,   MF_E_ARENA, MF_E_CONTEXT, MF_E_STATE,
                   MF_E_UNSUPPORTED, MF_E_FLASH, MF_E_TOKEN};
    int nc = (int)(sizeof codes / sizeof codes[0]), distinct = 1;
    for (int i = 0; i < nc; i++)
        for (int j = 0; j < i; j++)
            if (!strcmp(mf_strerror(codes[i]), mf_strerror(codes[j]))) distinct = 0;
    CHECK(distinct, "mf_strerror strings not distinct");
    CHECK(strcmp(mf_strerror(-999), mf_strerror(MF_E_ARG)) != 0, "unknown code");
}

static void test_invariance(void)
{
    mf_port port;
    mf_mem_port_state st;
    mf_mem_port_open(&port, &st, img, img_len);
    mf_info info;
    CHECK(mf_image_info(&port, &info) == MF_OK, "image info");
    uint32_t V = info.vocab, K = info.top_k, all = info.n_layers * info.n_experts;
    size_t n = (size_t)40 * V;
    float *ref = malloc(sizeof(float) * n), *got = malloc(sizeof(float) * n);

    mf_options opt;
    mf_options_default(&opt);
    opt.context_len = 64;
    mem_model mm;
    int rc = open_mem(&mm, img, img_len, &opt);
    CHECK(rc == MF_OK, "init: %s", mf_strerror(rc));
    if (rc) goto out;
    CHECK(run_logits(mm.m, ref) == MF_OK, "run");
    mf_stats s0;
    mf_get_stats(mm.m, &s0);
    CHECK(s0.misses > 0 && s0.flash_bytes >= s0.misses * 1, "stats counted misses");
    close_mem(&mm);

    const uint32_t slots[] = {K, 2 * K, all};
    for (int i = 0; i < 3; i++) {
        opt.expert_slots = slots[i];
        rc = open_mem(&mm, img, img_len, &opt);
        CHECK(rc == MF_OK, "init with %u slots: %s", slots[i], mf_strerror(rc));
        if (rc) continue;
        CHECK(run_logits(mm.m, got) == MF_OK, "run");
        CHECK(memcmp(ref, got, sizeof(float) * n) == 0, "logits differ with %u slots", slots[i]);
        mf_stats s;
        mf_get_stats(mm.m, &s);
        if (slots[i] == all) {
            CHECK(s.misses <= all && s.hits > 0, "all slots: misses %llu hits %llu",
                  (unsigned long long)s.misses, (unsigned long long)s.hits);
            CHECK(s.flash_bytes <= (uint64_t)all * info.expert_bytes, "all slots: flash bytes");
        }
        close_mem(&mm);
    }
    opt.expert_slots = 0;
    const uint32_t batches[] = {1, 7, 64};
    for (int i = 0; i < 3; i++) {
        opt.prefill_batch = batches[i];
        rc = open_mem(&mm, img, img_len, &opt);
        CHECK(rc == MF_OK, "init with batch %u", batches[i]);
        if (rc) continue;
        CHECK(run_logits(mm.m, got) == MF_OK, "run");
        CHECK(memcmp(ref, got, sizeof(float) * n) == 0, "logits differ with prefill batch %u",
              batches[i]);
        close_mem(&mm);
    }
    /* A q8 image (int8 activations by default): slots and batch change no bit. */
    {
        size_t qlen = 0;
        uint8_t *q8 = mf_test_image("tests/data/arch-mixtral", "--weights q8", NULL, &qlen, NULL);
        CHECK(q8 != NULL, "q8 image");
        float *q_ref = malloc(sizeof(float) * n);
        const uint32_t cfg[][2] = {{0, 0}, {all, 1}, {2 * K, 64}};
        for (int i = 0; q8 && i < 3; i++) {
            mf_options_default(&opt);
            opt.context_len = 64;
            opt.expert_slots = cfg[i][0];
            opt.prefill_batch = cfg[i][1];
            rc = open_mem(&mm, q8, qlen, &opt);
            CHECK(rc == MF_OK, "q8 init: %s", mf_strerror(rc));
            if (rc) continue;
            CHECK(run_logits(mm.m, i ? got : q_ref) == MF_OK, "q8 run");
            if (i) CHECK(memcmp(q_ref, got, sizeof(float) * n) == 0, "q8 logits differ (config %d)", i);
            close_mem(&mm);
        }
        free(q_ref);
        free(q8);
        mf_options_default(&opt);
        opt.context_len = 64;
    }
    /* The same through the file port (no map()). */
    {
        char path[] = "/tmp/mf_api_XXXXXX";
        int fd = mkstemp(path);
        FILE *f = fd >= 0 ? fdopen(fd, "wb") : NULL;
        CHECK(f && fwrite(img, 1, img_len, f) == img_len, "temp copy");
        if (f) fclose(f);
        mf_posix_port_state pst;
        mf_port pp;
        CHECK(mf_posix_port_open(&pp, &pst, path) == MF_PORT_OK, "posix open");
        opt.prefill_batch = 0;
        size_t need;
        mf_arena_bytes(&pp, &opt, &need);
        void *arena = malloc(need);
        mf_model *m;
        rc = mf_init(&m, &pp, &opt, arena, need);
        CHECK(rc == MF_OK, "init over the file port: %s", mf_strerror(rc));
        if (!rc) {
            CHECK(run_logits(m, got) == MF_OK, "run");
            CHECK(memcmp(ref, got, sizeof(float) * n) == 0, "logits differ over the file port");
        }
        mf_posix_port_close(&pp);
        free(arena);
        unlink(path);
    }
out:
    free(ref);
    free(got);
}

static void test_faults(void)
{
    mf_port port;
    mf_mem_port_state st;
    mf_mem_port_open(&port, &st, img, img_len);
    mf_image_header h;
    CHECK(mf_image_read_header(&port, &h, 0, NULL, 0) == MF_OK, "header");
    uint32_t ids[16];
    text_ids(ids, 16);

    /* A flipped byte in every layer-0 expert: CRC error with verification,
     * none without. */
    uint8_t *bad = malloc(img_len);
    memcpy(bad, img, img_len);
    for (uint32_t e = 0; e < h.n_experts; e++) {
        mf_expert_entry ent;
        mf_image_expert_entry(&port, &h, MF_SEC_EXPERT_DIR, 0, e, &ent);
        bad[ent.offset + ent.bytes / 2] ^= 0x40;
    }
    mf_options opt;
    mf_options_default(&opt);
    opt.context_len = 32;
    opt.verify_experts = 1;
    mem_model mm;
    int rc = open_mem(&mm, bad, img_len, &opt);
    CHECK(rc == MF_OK, "init: %s", mf_strerror(rc));
    if (!rc) {
        rc = mf_feed(mm.m, ids, 16);
        CHECK(rc == MF_E_CRC, "corrupt expert: %s", mf_strerror(rc));
        mf_stats s;
        mf_get_stats(mm.m, &s);
        CHECK(s.crc_failures == 1 + opt.max_retries, "crc failures %llu",
              (unsigned long long)s.crc_failures);
        CHECK(s.retries == opt.max_retries, "retries %llu", (unsigned long long)s.retries);
    }
    close_mem(&mm);
    opt.verify_experts = 0;
    rc = open_mem(&mm, bad, img_len, &opt);
    CHECK(rc == MF_OK && mf_feed(mm.m, ids, 16) == MF_OK, "no verification: no error");
    close_mem(&mm);
    free(bad);

    /* Reads of expert data fail: MF_E_FLASH after the retries. */
    failing_ctx fc;
    fc.inner = port;
    const mf_section *ed = mf_image_section(&h, MF_SEC_EXPERT_DATA);
    fc.bad_lo = ed->offset;
    fc.bad_hi = ed->offset + ed->bytes;
    fc.reads_failed = 0;
    mf_port fp = port;
    fp.ctx = &fc;
    fp.read = failing_read;
    fp.map = NULL;
    opt.verify_experts = 2;
    opt.max_retries = 3;
    size_t need;
    CHECK(mf_arena_bytes(&fp, &opt, &need) == MF_OK, "arena bytes over the failing port");
    void *arena = malloc(need);
    mf_model *m;
    rc = mf_init(&m, &fp, &opt, arena, need);
    CHECK(rc == MF_OK, "init reads no expert: %s", mf_strerror(rc));
    if (!rc) {
        rc = mf_feed(m, ids, 4);
        CHECK(rc == MF_E_FLASH, "failing flash: %s", mf_strerror(rc));
        CHECK(fc.reads_failed == 4, "tried %d times, expected 1 + 3 retries", fc.reads_failed);
        uint32_t tok;
        mf_sampler s;
        mf_sampler_init(&s, 0, 1, 0);
        CHECK(mf_sample(m, &s, &tok) == MF_E_STATE, "no logits after a failed feed");
    }
    free(arena);

    /* A corrupt header is reported, not trusted. */
    uint8_t *b2 = malloc(img_len);
    memcpy(b2, img, img_len);
    b2[0] ^= 1;
    mf_port p2;
    mf_mem_port_state st2;
    mf_mem_port_open(&p2, &st2, b2, img_len);
    CHECK(mf_arena_bytes(&p2, &opt, &need) == MF_E_FORMAT, "bad magic");
    free(b2);
}

int main(void)
{
    img = mf_test_image("tests/data/arch-mixtral", "--weights f32", NULL, &img_len, NULL);
    int rc = img ? 0 : 1;
    CHECK(img != NULL, "convert arch-mixtral and read the image");
    if (!rc && img) {
        test_errors();
        test_invariance();
        test_faults();
    }
    free(img);
    return mf_test_done("test_api");
}
