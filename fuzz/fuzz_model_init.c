/*
 * libFuzzer harness: the public API on a hostile image. The input is the
 * flash device (a memory port). mf_arena_bytes sizes the arena; the arena
 * is a heap block of exactly that size (so AddressSanitizer sees any write
 * past its end); mf_init with one byte less must fail with MF_E_ARENA; then
 * mf_init for real, one mf_feed of two tokens, a sample, and an
 * out-of-vocabulary token that must be refused with MF_E_TOKEN. All of it
 * twice: with the default options, then with the combined predictor, which
 * also parses the profile sections (MF_SEC_PREDICTOR, MF_SEC_TOKEN_ROUTES,
 * MF_SEC_LOOKAHEAD).
 * Each input runs as it is and again with its checksums made right
 * (fuzz_image_crc.h), so that the checks behind them are reached.
 * Seeds: fuzz/corpus/fuzz_model_init (a generated tiny Mixtral image) and,
 * at run time, tests/data/arch-mixtral converted with small pages.
 */
#include "fuzz_common.h"
#include "fuzz_image_crc.h"

#include "../runtime/moeflash.h"

#define FUZZ_ARENA_MAX (16u << 20)

static int run(const uint8_t *data, size_t size, int predictor)
{
    mf_port port;
    fuzz_mem mem;
    fuzz_mem_port(&port, &mem, data, size, 0);

    mf_options opt;
    mf_options_default(&opt);
    opt.context_len = 8;
    opt.verify_experts = 1;
    opt.max_retries = 1;
    opt.predictor = predictor;

    size_t need = 0;
    int rc = mf_arena_bytes(&port, &opt, &need);
    FUZZ_CHECK(rc <= 0);
    if (rc) return 0;
    FUZZ_CHECK(need > 0);
    if (need > FUZZ_ARENA_MAX) return 0; /* a legal but too big model */

    uint8_t *arena = malloc(need);
    FUZZ_CHECK(arena != NULL);
    mf_model *m = (mf_model *)(uintptr_t)1;
    rc = mf_init(&m, &port, &opt, arena, need - 1);
    FUZZ_CHECK(rc == MF_E_ARENA);
    rc = mf_init(&m, &port, &opt, arena, need);
    FUZZ_CHECK(rc <= 0);
    if (rc == MF_OK) {
        FUZZ_CHECK(m != NULL);
        FUZZ_CHECK(mf_arena_used_bytes(m) <= need);
        FUZZ_CHECK(mf_logits(m) == NULL);
        uint32_t vocab = mf_vocab_size(m);
        FUZZ_CHECK(vocab > 0);
        uint32_t ids[2] = {0, 1u % vocab};
        rc = mf_feed(m, ids, 2);
        FUZZ_CHECK(rc <= 0);
        if (rc == MF_OK) {
            FUZZ_CHECK(mf_logits(m) != NULL);
            FUZZ_CHECK(mf_position(m) == 2);
            mf_sampler s;
            mf_sampler_init(&s, 0.8f, 0.9f, 42);
            uint32_t tok = UINT32_MAX;
            rc = mf_sample(m, &s, &tok);
            FUZZ_CHECK(rc <= 0);
            if (rc == MF_OK) FUZZ_CHECK(tok < vocab);
        }
        uint32_t bad = vocab;
        FUZZ_CHECK(mf_feed(m, &bad, 1) == MF_E_TOKEN);
        mf_stats st;
        mf_get_stats(m, &st);
    } else {
        FUZZ_CHECK(mf_strerror(rc) != NULL);
    }
    free(arena);
    return 0;
}

int FUZZ_ENTRY(const uint8_t *data, size_t size)
{
    run(data, size, MF_PREDICT_NONE);
    run(data, size, MF_PREDICT_COMBINED);
    uint8_t *fixed = malloc(size ? size : 1);
    FUZZ_CHECK(fixed != NULL);
    memcpy(fixed, data, size);
    fuzz_fix_crcs(fixed, size);
    run(fixed, size, MF_PREDICT_NONE);
    run(fixed, size, MF_PREDICT_COMBINED);
    free(fixed);
    return 0;
}
