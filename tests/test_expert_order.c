/*
 * The order a layer's experts are computed in never shows in the logits.
 * moe() computes the chosen experts as they become available (cached ones
 * before those still streaming), and sums their outputs afterwards in
 * expert-index order. With top_k = 2 that order cannot show (a + b == b + a
 * in floating point), so this test uses small-qwen3-moe-bpe (top_k 4,
 * where ((a + b) + c) differs from ((a + c) + b)) and arch-qwen2-moe (a
 * shared expert: computed first, added last). On the simulated flash
 * (reads in flight while experts compute), for slot counts from top_k up,
 * LRU / LFU / EdgeMoE, with and without the combined predictor, one token
 * or 16 per chunk, the logits of every token must equal, bit for bit,
 * those of a run with every expert resident on the memory port. The test
 * also checks that the case arose: routings where a chosen expert was
 * cached while a chosen expert of lower index was in no slot (so that the
 * higher one computes first).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../port/sim/sim_port.h"
#include "../runtime/model.h"
#include "../runtime/moeflash.h"
#include "../tools/lib/json.h"
#include "harness.h"
#include "image_fixture.h"

#define T 96u

static uint8_t *img;
static size_t img_len;
static uint32_t ids[T];

/* Layers routed with a cached chosen expert above a missing one: seen by
 * the route observer, before the demand reads start. */
typedef struct {
    mf_model *m;
    uint64_t reordered;
} watch_t;

static void observe(void *user, uint32_t layer, uint32_t pos, const uint32_t *e, const float *w,
                    uint32_t k)
{
    (void)pos;
    (void)w;
    watch_t *wt = user;
    const mf_expert_store *s = &wt->m->store;
    size_t base = (size_t)layer * s->h->n_experts;
    for (uint32_t a = 0; a < k; a++)
        for (uint32_t b = 0; b < k; b++) {
            int32_t wb = s->where[base + e[b]];
            if (e[a] < e[b] && s->where[base + e[a]] < 0 && wb >= 0 &&
                s->slots[wb].state == MF_SLOT_READY) {
                wt->reordered++;
                return;
            }
        }
}

/* T tokens, chunk per mf_feed_all call, logits of every token into out. */
static int run(int sim, const mf_options *opt, uint32_t chunk, float *out, watch_t *wt)
{
    mf_mem_port_state ms;
    mf_port mem, sp;
    mf_sim_state ss;
    const mf_port *port = &mem;
    mf_mem_port_open(&mem, &ms, img, img_len);
    if (sim) {
        if (mf_sim_port_open(&sp, &ss, &mem, mf_sim_profile_find("mcu-qspi"), NULL) != MF_PORT_OK)
            return MF_E_IO;
        port = &sp;
    }
    mf_model *m;
    void *arena;
    int rc = mf_test_model(port, opt, &m, &arena);
    if (!rc) {
        if (wt) {
            wt->m = m;
            mf_set_route_observer(m, observe, wt);
        }
        uint32_t V = mf_vocab_size(m);
        for (uint32_t done = 0; done < T && !rc; done += chunk) {
            uint32_t n = T - done < chunk ? T - done : chunk;
            rc = mf_feed_all(m, ids + done, n, out + (size_t)done * V);
        }
    }
    free(arena);
    return rc;
}

static void check_model(const char *dir)
{
    img = mf_test_image(dir, NULL, NULL, &img_len, NULL);
    CHECK(img != NULL, "%s: convert and read the image", dir);
    if (!img) return;

    mf_mem_port_state ms;
    mf_port mem;
    mf_info info;
    mf_mem_port_open(&mem, &ms, img, img_len);
    int rc = mf_image_info(&mem, &info);
    CHECK(rc == MF_OK, "%s: image info", dir);
    if (rc) {
        free(img);
        return;
    }
    uint32_t LE = info.n_layers * info.n_experts, V = info.vocab, K = info.top_k;
    uint64_t x = 88172645463325252ull; /* xorshift: any tokens route somewhere */
    for (uint32_t i = 0; i < T; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        ids[i] = (uint32_t)(x % V);
    }

    float *ref = malloc(sizeof(float) * T * V), *got = malloc(sizeof(float) * T * V);
    mf_options opt;
    mf_options_default(&opt);
    opt.expert_slots = LE;
    opt.prefill_batch = 1;
    rc = run(0, &opt, 1, ref, NULL);
    CHECK(rc == MF_OK, "%s: reference run (every expert resident): %s", dir, mf_strerror(rc));

    const uint32_t slots[] = {K, LE / 4 > K ? LE / 4 : K + 1, LE / 2};
    const int policies[] = {MF_POLICY_LRU, MF_POLICY_LFU, MF_POLICY_EDGEMOE};
    const int preds[] = {MF_PREDICT_NONE, MF_PREDICT_COMBINED};
    const uint32_t chunks[] = {1, 16};
    int runs = 0, same = 0;
    uint64_t reordered = 0;
    for (int si = 0; si < 3 && !rc; si++)
        for (int pi = 0; pi < 3; pi++)
            for (int qi = 0; qi < 2; qi++)
                for (int ci = 0; ci < 2; ci++) {
                    mf_options o;
                    mf_options_default(&o);
                    o.expert_slots = slots[si];
                    o.policy = policies[pi];
                    o.predictor = preds[qi];
                    o.prefill_batch = chunks[ci];
                    watch_t wt = {0};
                    memset(got, 0, sizeof(float) * T * V);
                    int r = run(1, &o, chunks[ci], got, &wt);
                    int ok = r == MF_OK && !memcmp(got, ref, sizeof(float) * T * V);
                    if (!ok)
                        fprintf(stderr, "%s: slots %u policy %d predictor %d chunk %u: %s\n", dir,
                                slots[si], policies[pi], preds[qi], chunks[ci],
                                r ? mf_strerror(r) : "logits differ");
                    runs++;
                    same += ok;
                    reordered += wt.reordered;
                }
    CHECK(runs > 0 && same == runs, "%s: %d of %d runs bit-identical to every expert resident",
          dir, same, runs);
    CHECK(reordered > 0, "%s: a cached expert above a missing one (%llu routings)", dir,
          (unsigned long long)reordered);
    printf("%s: %d runs, %llu routings with a cached expert above a missing one\n", dir, runs,
           (unsigned long long)reordered);
    free(ref);
    free(got);
    free(img);
    img = NULL;
}

int main(void)
{
    check_model("tests/data/small-qwen3-moe-bpe");
    check_model("tests/data/arch-qwen2-moe");
    return mf_test_done("test_expert_order");
}
