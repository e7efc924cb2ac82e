/*
 * API misuse (issue 6): every public function of runtime/moeflash.h given
 * NULL arguments, an arena too small (every size class down to 0, and a
 * misaligned one), a context run past its length, calls out of order,
 * options out of range, a broken port and bad images -- each must return
 * the error code moeflash.h documents for it (MF_E_ARG, MF_E_ARENA,
 * MF_E_CONTEXT, MF_E_STATE, MF_E_TOKEN, MF_E_FORMAT, MF_E_VERSION,
 * MF_E_CRC, MF_E_RANGE, MF_E_IO), never crash, and leave the model usable
 * where the error is the caller's (the next correct call succeeds).
 *
 * The image is fuzz/corpus/fuzz_model_init/gen-v256-h8-l2-e4-k2-p64: a
 * small complete Mixtral-layout image (vocab 256 byte-level, hidden 8,
 * 2 layers, 4 experts, top-2, max_seq 64) written by fuzz/gen_image_seed.c,
 * so this test is fast and needs no converter. Run from the repo root.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../port/sim/sim_port.h"
#include "../runtime/arena.h"
#include "../runtime/image.h"
#include "../runtime/moeflash.h"
#include "../tools/lib/json.h"
#include "harness.h"

#define IMAGE "fuzz/corpus/fuzz_model_init/gen-v256-h8-l2-e4-k2-p64"

static uint8_t *img;
static size_t img_len;

/* The last line the runtime logged through a port (why a call was refused). */
static char last_log[160];
static void keep_log(const mf_port *p, const char *line)
{
    (void)p;
    snprintf(last_log, sizeof last_log, "%s", line);
}

/* A fresh memory port over buf. */
static void mem_port(mf_port *p, mf_mem_port_state *st, const void *buf, size_t len)
{
    int rc = mf_mem_port_open(p, st, buf, len);
    if (rc != MF_PORT_OK) {
        fprintf(stderr, "mf_mem_port_open failed: %d\n", rc);
        exit(1);
    }
    p->log = keep_log;
}

/* The refusal was logged, naming the option. */
static int logged(const char *what)
{
    int ok = strstr(last_log, what) != NULL;
    last_log[0] = 0;
    return ok;
}

/* mf_arena_bytes + mf_init over a heap arena of exactly the size needed. */
typedef struct {
    mf_mem_port_state st;
    mf_port port;
    uint8_t *arena;
    size_t need;
    mf_model *m;
} model;

static int open_model(model *md, const uint8_t *buf, size_t len, const mf_options *opt)
{
    memset(md, 0, sizeof *md);
    mem_port(&md->port, &md->st, buf, len);
    int rc = mf_arena_bytes(&md->port, opt, &md->need);
    if (rc) return rc;
    md->arena = malloc(md->need);
    if (!md->arena) return MF_E_ARENA;
    return mf_init(&md->m, &md->port, opt, md->arena, md->need);
}

static void close_model(model *md)
{
    free(md->arena);
    memset(md, 0, sizeof *md);
}

static void test_null_arguments(void)
{
    mf_options opt;
    mf_options_default(&opt);
    mf_options_default(NULL); /* documented as a no-op: must not crash */
    model md;
    CHECK(open_model(&md, img, img_len, &opt) == MF_OK, "the test image opens");
    mf_model *m = md.m;
    uint32_t ids[2] = {'a', 'b'}, n = 0, tok = 0;
    size_t need = 0, len = 0;
    char out[16];
    float logits[2 * 256];
    mf_sampler s;
    mf_sampler_init(&s, 0.0f, 1.0f, 1);
    mf_sampler_init(NULL, 0.0f, 1.0f, 1);
    mf_info info;
    mf_stats st;

    CHECK(mf_arena_bytes(NULL, &opt, &need) == MF_E_ARG, "arena_bytes NULL port");
    CHECK(mf_arena_bytes(&md.port, &opt, NULL) == MF_E_ARG, "arena_bytes NULL bytes");
    /* opt NULL means the defaults (mf_options_default). */
    CHECK(mf_arena_bytes(&md.port, NULL, &need) == MF_OK, "arena_bytes NULL options");

    mf_model *m2 = (mf_model *)&md; /* must be overwritten with NULL on failure */
    CHECK(mf_init(NULL, &md.port, &opt, md.arena, md.need) == MF_E_ARG, "init NULL model");
    CHECK(mf_init(&m2, NULL, &opt, md.arena, md.need) == MF_E_ARG, "init NULL port");
    CHECK(mf_init(&m2, &md.port, &opt, NULL, md.need) == MF_E_ARG, "init NULL arena");

    CHECK(mf_arena_used_bytes(NULL) == 0, "used_bytes NULL");
    CHECK(mf_reset(NULL) == MF_E_ARG, "reset NULL");
    CHECK(mf_feed(NULL, ids, 2) == MF_E_ARG, "feed NULL model");
    CHECK(mf_feed(m, NULL, 2) == MF_E_ARG, "feed NULL tokens");
    CHECK(mf_feed(m, ids, 0) == MF_E_ARG, "feed 0 tokens");
    CHECK(mf_feed_all(NULL, ids, 2, logits) == MF_E_ARG, "feed_all NULL model");
    CHECK(mf_feed_all(m, NULL, 2, logits) == MF_E_ARG, "feed_all NULL tokens");
    CHECK(mf_feed_all(m, ids, 2, NULL) == MF_E_ARG, "feed_all NULL logits");
    CHECK(mf_position(m) == 0, "failed feeds leave the position at 0, got %u", mf_position(m));
    CHECK(mf_logits(NULL) == NULL, "logits NULL");
    CHECK(mf_vocab_size(NULL) == 0, "vocab NULL");
    CHECK(mf_position(NULL) == 0, "position NULL");
    CHECK(mf_context_len(NULL) == 0, "context_len NULL");
    mf_set_route_observer(NULL, NULL, NULL);
    mf_set_route_observer(m, NULL, NULL);
    /* A trace of npos > 0 positions needs its array; NULL, 0 forgets it. */
    const uint16_t trace[2 * 2] = {0, 1, 2, 3};
    CHECK(mf_set_future_trace(NULL, trace, 1) == MF_E_ARG, "future trace NULL model");
    CHECK(mf_set_future_trace(m, NULL, 5) == MF_E_ARG, "future trace NULL ids, 5 positions");
    CHECK(mf_set_future_trace(m, NULL, 0) == MF_OK, "future trace forgotten (NULL, 0)");
    memset(&st, 0xFF, sizeof st);
    mf_get_stats(NULL, &st);
    CHECK(st.flash_bytes == 0 && st.hits == 0, "stats of NULL model are zero");
    mf_get_stats(m, NULL);
    CHECK(mf_sample(NULL, &s, &tok) == MF_E_ARG, "sample NULL model");
    CHECK(mf_sample(m, NULL, &tok) == MF_E_ARG, "sample NULL sampler");
    CHECK(mf_sample(m, &s, NULL) == MF_E_ARG, "sample NULL token");
    CHECK(mf_encode(NULL, "ab", 2, ids, 2, &n) == MF_E_ARG, "encode NULL model");
    CHECK(mf_encode(m, NULL, 2, ids, 2, &n) == MF_E_ARG, "encode NULL text, len 2");
    CHECK(mf_encode(m, "ab", 2, NULL, 2, &n) == MF_E_ARG, "encode NULL ids, max 2");
    CHECK(mf_encode(m, "ab", 2, ids, 2, NULL) == MF_E_ARG, "encode NULL n_ids");
    /* Counting only: no ids buffer, max_ids 0, the count comes back. */
    n = 0;
    CHECK(mf_encode(m, "abc", 3, NULL, 0, &n) == MF_OK && n == 3, "encode count only: n=%u", n);
    CHECK(mf_encode(m, NULL, 0, ids, 2, &n) == MF_OK && n == 0, "encode empty text");
    CHECK(mf_decode_token(NULL, 'a', out, sizeof out, &len) == MF_E_ARG, "decode NULL model");
    CHECK(mf_decode_token(m, 'a', NULL, sizeof out, &len) == MF_E_ARG, "decode NULL out");
    CHECK(mf_decode_token(m, 'a', out, sizeof out, NULL) == MF_E_ARG, "decode NULL len");
    CHECK(mf_image_info(NULL, &info) == MF_E_ARG, "image_info NULL port");
    CHECK(mf_image_info(&md.port, NULL) == MF_E_ARG, "image_info NULL info");
    mf_model_info(NULL, &info);
    mf_model_info(m, NULL);

    /* After all that, the model still works. */
    CHECK(mf_feed(m, ids, 2) == MF_OK, "feed after misuse");
    CHECK(mf_sample(m, &s, &tok) == MF_OK && tok < 256, "sample after misuse");

    /* mf_strerror names every code, and something for unknown ones. */
    for (int c = 0; c >= MF_E_TOKEN; c--)
        CHECK(mf_strerror(c) && mf_strerror(c)[0], "strerror(%d)", c);
    CHECK(mf_strerror(1) != NULL && mf_strerror(-1000) != NULL && mf_strerror(INT32_MIN) != NULL,
          "strerror of unknown codes");
    close_model(&md);
}

static void test_arena_too_small(void)
{
    mf_options opt;
    mf_options_default(&opt);
    mf_port port;
    mf_mem_port_state st;
    mem_port(&port, &st, img, img_len);
    size_t need = 0;
    CHECK(mf_arena_bytes(&port, &opt, &need) == MF_OK && need > 0, "arena_bytes");
    uint8_t *buf = malloc(need + 2 * 64);
    if (!buf) return;
    /* Every size from 0 to need-1 that a caller might plausibly pass. */
    size_t sizes[] = {0, 1, 63, 64, 1000, need / 4, need / 2, need - 64, need - 1};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        mf_model *m = (mf_model *)buf;
        int rc = mf_init(&m, &port, &opt, buf, sizes[i]);
        CHECK(rc == MF_E_ARENA, "arena of %zu < %zu bytes: %s", sizes[i], need, mf_strerror(rc));
        CHECK(m == NULL, "no model handed out after a failed init (%zu bytes)", sizes[i]);
    }
    /* Exactly need: fine; and mf_arena_used_bytes never exceeds it. */
    mf_model *m = NULL;
    CHECK(mf_init(&m, &port, &opt, buf, need) == MF_OK, "arena of exactly %zu bytes", need);
    CHECK(m && mf_arena_used_bytes(m) <= need, "used %zu <= %zu", mf_arena_used_bytes(m), need);
    /* A misaligned arena of exactly need bytes either works or reports
     * MF_E_ARENA (alignment padding comes out of it), never crashes; with
     * 64 spare bytes it works. */
    int rc = mf_init(&m, &port, &opt, buf + 1, need);
    CHECK(rc == MF_OK || rc == MF_E_ARENA, "misaligned arena of need bytes: %s", mf_strerror(rc));
    rc = mf_init(&m, &port, &opt, buf + 1, need + 64);
    CHECK(rc == MF_OK, "misaligned arena with 64 spare bytes: %s", mf_strerror(rc));
    uint32_t ids[3] = {'x', 'y', 'z'};
    if (rc == MF_OK) CHECK(mf_feed(m, ids, 3) == MF_OK, "feed in a misaligned arena");
    free(buf);
}

static void test_context(void)
{
    mf_options opt;
    mf_options_default(&opt);
    opt.context_len = 8;
    model md;
    CHECK(open_model(&md, img, img_len, &opt) == MF_OK, "open with context 8");
    mf_model *m = md.m;
    CHECK(mf_context_len(m) == 8, "context_len %u", mf_context_len(m));
    uint32_t ids[16];
    for (int i = 0; i < 16; i++) ids[i] = (uint32_t)('a' + i);
    CHECK(mf_feed(m, ids, 9) == MF_E_CONTEXT, "9 tokens into a context of 8");
    CHECK(mf_position(m) == 0, "position unchanged after MF_E_CONTEXT");
    CHECK(mf_feed(m, ids, 5) == MF_OK, "5 tokens");
    CHECK(mf_feed(m, ids, 4) == MF_E_CONTEXT, "5 + 4 > 8");
    CHECK(mf_position(m) == 5, "position still 5, got %u", mf_position(m));
    CHECK(mf_logits(m) != NULL, "logits of the last good feed still there");
    CHECK(mf_feed(m, ids, 3) == MF_OK, "5 + 3 == 8 fits");
    CHECK(mf_position(m) == 8, "position 8");
    CHECK(mf_feed(m, ids, 1) == MF_E_CONTEXT, "one past the end");
    float all[256];
    CHECK(mf_feed_all(m, ids, 1, all) == MF_E_CONTEXT, "feed_all past the end");
    CHECK(mf_position(m) == 8, "position stays 8");
    /* Reset makes room again. */
    CHECK(mf_reset(m) == MF_OK && mf_position(m) == 0, "reset");
    CHECK(mf_feed(m, ids, 8) == MF_OK, "8 tokens after reset");
    close_model(&md);

    /* Context options out of range. */
    mf_port port;
    mf_mem_port_state st;
    mem_port(&port, &st, img, img_len);
    size_t need;
    opt.context_len = 65; /* max_seq is 64 */
    CHECK(mf_arena_bytes(&port, &opt, &need) == MF_E_ARG, "context beyond max_seq");
    CHECK(logged("context_len"), "context refusal logged: '%s'", last_log);
    opt.context_len = UINT32_MAX;
    CHECK(mf_arena_bytes(&port, &opt, &need) == MF_E_ARG, "context UINT32_MAX");
}

static void test_order(void)
{
    mf_options opt;
    mf_options_default(&opt);
    model md;
    CHECK(open_model(&md, img, img_len, &opt) == MF_OK, "open");
    mf_model *m = md.m;
    mf_sampler s;
    mf_sampler_init(&s, 0.7f, 0.9f, 7);
    uint32_t tok = 12345, ids[2] = {'h', 'i'};
    CHECK(mf_logits(m) == NULL, "no logits before the first feed");
    CHECK(mf_sample(m, &s, &tok) == MF_E_STATE, "sample before feed");
    CHECK(tok == 12345, "token untouched by a refused sample");
    CHECK(mf_reset(m) == MF_OK, "reset before any feed is harmless");
    CHECK(mf_sample(m, &s, &tok) == MF_E_STATE, "sample after reset before feed");
    CHECK(mf_feed(m, ids, 2) == MF_OK, "feed");
    CHECK(mf_sample(m, &s, &tok) == MF_OK && tok < 256, "sample after feed");
    CHECK(mf_sample(m, &s, &tok) == MF_OK, "sampling twice from the same logits is allowed");
    CHECK(mf_reset(m) == MF_OK && mf_logits(m) == NULL, "reset forgets the logits");
    CHECK(mf_sample(m, &s, &tok) == MF_E_STATE, "sample after reset");
    /* Token ids outside the vocabulary: refused, nothing consumed. */
    uint32_t bad[3] = {'a', 256, 'b'};
    CHECK(mf_feed(m, bad, 3) == MF_E_TOKEN, "token 256 in a vocabulary of 256");
    CHECK(mf_position(m) == 0, "nothing consumed by a refused feed");
    bad[1] = UINT32_MAX;
    CHECK(mf_feed(m, bad, 3) == MF_E_TOKEN, "token UINT32_MAX");
    char out[8];
    size_t len;
    CHECK(mf_decode_token(m, 256, out, sizeof out, &len) == MF_E_TOKEN, "decode 256");
    CHECK(mf_decode_token(m, 'q', out, 0, &len) != MF_OK, "decode into 0 bytes");
    close_model(&md);
}

static void test_options(void)
{
    mf_port port;
    mf_mem_port_state st;
    mem_port(&port, &st, img, img_len);
    size_t need;
    mf_options opt;
    mf_options_default(&opt);
    opt.verify_experts = 3;
    CHECK(mf_arena_bytes(&port, &opt, &need) == MF_E_ARG, "verify_experts 3");
    CHECK(logged("verify_experts"), "verify_experts refusal logged: '%s'", last_log);
    mf_options_default(&opt);
    opt.verify_experts = -1;
    CHECK(mf_arena_bytes(&port, &opt, &need) == MF_E_ARG, "verify_experts -1");
    mf_options_default(&opt);
    opt.expert_slots = 1; /* < top_k = 2 */
    CHECK(mf_arena_bytes(&port, &opt, &need) == MF_E_ARG, "1 slot < top_k");
    CHECK(logged("expert_slots"), "slots refusal logged: '%s'", last_log);
    mf_options_default(&opt);
    opt.policy = 99;
    CHECK(mf_arena_bytes(&port, &opt, &need) == MF_E_ARG, "policy 99");
    CHECK(logged("opt.policy"), "policy refusal logged: '%s'", last_log);
    mf_options_default(&opt);
    opt.policy = -1;
    CHECK(mf_arena_bytes(&port, &opt, &need) == MF_E_ARG, "policy -1");
    mf_options_default(&opt);
    opt.predictor = 99;
    CHECK(mf_arena_bytes(&port, &opt, &need) == MF_E_ARG, "predictor 99");
    CHECK(logged("opt.predictor"), "predictor refusal logged: '%s'", last_log);
    mf_options_default(&opt);
    opt.predictor = MF_PREDICT_ORACLE;
    opt.oracle_miss_rate = -0.5f;
    CHECK(mf_arena_bytes(&port, &opt, &need) == MF_E_ARG, "oracle miss rate -0.5");
    CHECK(logged("oracle_miss_rate"), "oracle miss rate refusal logged: '%s'", last_log);
    opt.oracle_miss_rate = NAN;
    CHECK(mf_arena_bytes(&port, &opt, &need) == MF_E_ARG, "oracle miss rate NaN");
    opt.oracle_miss_rate = 1.5f; /* a chance: [0, 1] */
    CHECK(mf_arena_bytes(&port, &opt, &need) == MF_E_ARG, "oracle miss rate 1.5");
    CHECK(logged("oracle_miss_rate"), "oracle miss rate 1.5 refusal logged: '%s'", last_log);
    opt.oracle_miss_rate = 1.0f;
    CHECK(mf_arena_bytes(&port, &opt, &need) == MF_OK, "oracle miss rate 1 (always wrong) is allowed");
    /* One past the last enum value (not only far out of range). */
    mf_options_default(&opt);
    opt.predictor = MF_PREDICT_ORACLE + 1;
    CHECK(mf_arena_bytes(&port, &opt, &need) == MF_E_ARG, "predictor one past MF_PREDICT_ORACLE");
    CHECK(logged("opt.predictor"), "predictor refusal logged: '%s'", last_log);
    mf_options_default(&opt);
    opt.policy = MF_POLICY_BELADY + 1;
    CHECK(mf_arena_bytes(&port, &opt, &need) == MF_E_ARG, "policy one past MF_POLICY_BELADY");
    CHECK(logged("opt.policy"), "policy refusal logged: '%s'", last_log);
    mf_options_default(&opt);
    opt.kv_encoding = 99;
    int rc = mf_arena_bytes(&port, &opt, &need);
    CHECK(rc == MF_E_ARG || rc == MF_E_UNSUPPORTED, "kv_encoding 99: %s", mf_strerror(rc));
    CHECK(logged("kv_encoding"), "kv_encoding refusal logged: '%s'", last_log);
    /* More slots than experts is allowed (capped), and works. */
    mf_options_default(&opt);
    opt.expert_slots = 1000;
    last_log[0] = 0;
    model md;
    CHECK(open_model(&md, img, img_len, &opt) == MF_OK, "1000 slots for 8 experts");
    uint32_t ids[2] = {'o', 'k'};
    CHECK(md.m && mf_feed(md.m, ids, 2) == MF_OK, "feed with capped slots");
    CHECK(last_log[0] == 0, "nothing logged by a valid run: '%s'", last_log);
    close_model(&md);
}

/* Ports that break their contract. */
static int read_eio(const mf_port *p, uint64_t off, void *dst, size_t len)
{
    (void)p, (void)off, (void)dst, (void)len;
    return MF_PORT_EIO;
}

static void test_ports(void)
{
    mf_options opt;
    mf_options_default(&opt);
    size_t need;
    mf_port port;
    mf_mem_port_state st;
    mem_port(&port, &st, img, img_len);

    mf_port noread = port;
    noread.read = NULL;
    int rc = mf_arena_bytes(&noread, &opt, &need);
    CHECK(rc == MF_E_ARG || rc == MF_E_IO, "port without read(): %s", mf_strerror(rc));
    mf_port eio = port;
    eio.read = read_eio;
    eio.map = NULL;
    CHECK(mf_arena_bytes(&eio, &opt, &need) == MF_E_IO, "port whose reads fail");
    mf_port small = port;
    small.size = img_len - 1; /* the device is smaller than the image says */
    CHECK(mf_arena_bytes(&small, &opt, &need) == MF_E_RANGE, "device smaller than the image");
    small.size = 0;
    rc = mf_arena_bytes(&small, &opt, &need);
    CHECK(rc == MF_E_FORMAT || rc == MF_E_RANGE, "empty device: %s", mf_strerror(rc));
}

/* Through the API: the image defects of issue 6 item 3. */
static void test_bad_images(void)
{
    mf_options opt;
    mf_options_default(&opt);
    uint8_t *b = malloc(img_len);
    if (!b) return;
    model md;

    memcpy(b, img, img_len);
    CHECK(open_model(&md, b, img_len / 2, &opt) == MF_E_RANGE, "truncated to half");
    close_model(&md);

    const char text[] = "First Citizen: Before we proceed any further, hear me speak.";
    memset(b, 0, img_len);
    memcpy(b, text, sizeof text);
    CHECK(open_model(&md, b, img_len, &opt) == MF_E_FORMAT, "garbage");
    close_model(&md);

    /* Version 2 with a correct header CRC. */
    memcpy(b, img, img_len);
    b[MF_H_VERSION] = 2;
    uint32_t crc = mf_crc32(0, b, MF_HEADER_CRC_OFFSET);
    for (int i = 0; i < 4; i++) b[MF_HEADER_CRC_OFFSET + i] = (uint8_t)(crc >> (8 * i));
    CHECK(open_model(&md, b, img_len, &opt) == MF_E_VERSION, "format version 2");
    close_model(&md);

    /* One header byte changed, CRC not updated. */
    memcpy(b, img, img_len);
    b[MF_H_HIDDEN] ^= 1;
    CHECK(open_model(&md, b, img_len, &opt) == MF_E_CRC, "header byte flipped");
    close_model(&md);

    /* A byte of every expert blob flipped: init succeeds (experts are
     * checked when read), the feed fails with MF_E_CRC and leaves no
     * logits, and the failure is counted. */
    memcpy(b, img, img_len);
    mf_port port;
    mf_mem_port_state st;
    mem_port(&port, &st, b, img_len);
    mf_image_header h;
    uint8_t scratch[256];
    if (mf_image_read_header(&port, &h, 1, scratch, sizeof scratch) == MF_OK) {
        for (uint32_t l = 0; l < h.n_layers; l++)
            for (uint32_t e = 0; e < h.n_experts; e++) {
                mf_expert_entry ent;
                if (mf_image_expert_entry(&port, &h, MF_SEC_EXPERT_DIR, l, e, &ent) == MF_OK)
                    b[ent.offset + ent.bytes / 2] ^= 0x40;
            }
        CHECK(open_model(&md, b, img_len, &opt) == MF_OK, "corrupt experts: init still succeeds");
        uint32_t ids[2] = {'a', 'b'};
        if (md.m) {
            CHECK(mf_feed(md.m, ids, 2) == MF_E_CRC, "corrupt experts: feed fails with MF_E_CRC");
            CHECK(mf_logits(md.m) == NULL, "no logits from corrupt weights");
            mf_sampler s;
            mf_sampler_init(&s, 0.0f, 1.0f, 1);
            uint32_t tok;
            CHECK(mf_sample(md.m, &s, &tok) == MF_E_STATE, "no sample from corrupt weights");
            mf_stats stats;
            mf_get_stats(md.m, &stats);
            CHECK(stats.crc_failures > 0, "crc failure counted");
            /* The caller may try again: same error, no crash. */
            CHECK(mf_reset(md.m) == MF_OK, "reset after a failed feed");
            CHECK(mf_feed(md.m, ids, 2) == MF_E_CRC, "second try fails the same way");
        }
        close_model(&md);
    } else {
        CHECK(0, "cannot read the test image's header");
    }
    free(b);
}

/* The bump allocator on sizes whose rounding up to MF_ARENA_ALIGN wraps
 * around size_t: refused and recorded as an overflow, in a real arena and
 * in a counting one, never a pointer to fewer bytes than asked. */
static void test_arena_wrap(void)
{
    static uint8_t mem[4096];
    const size_t huge[] = {SIZE_MAX, SIZE_MAX - 1, SIZE_MAX - MF_ARENA_ALIGN + 2};
    for (size_t i = 0; i < sizeof huge / sizeof huge[0]; i++) {
        mf_arena a;
        mf_arena_init(&a, mem, sizeof mem);
        CHECK(mf_arena_alloc(&a, huge[i]) == NULL && a.overflow, "real arena, %zu bytes", huge[i]);
        mf_arena_init_count(&a);
        mf_arena_alloc(&a, 100);
        mf_arena_alloc(&a, huge[i]);
        CHECK(a.overflow && a.used == SIZE_MAX, "counting arena, %zu bytes: used %zu", huge[i], a.used);
    }
}

int main(void)
{
    img = (uint8_t *)mf_read_file(IMAGE, &img_len);
    if (!img) {
        fprintf(stderr, "cannot read %s (run from the repository root)\n", IMAGE);
        CHECK(0, "test image missing");
        return mf_test_done("test_misuse");
    }
    test_null_arguments();
    test_arena_too_small();
    test_arena_wrap();
    test_context();
    test_order();
    test_options();
    test_ports();
    test_bad_images();
    free(img);
    return mf_test_done("test_misuse");
}
