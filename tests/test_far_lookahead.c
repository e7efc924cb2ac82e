/*
 * Far lookahead (experts/predictor.c): with policy EdgeMoE and a router
 * predictor, the routers of layers l+2.. (and 1.. from the embedding) are
 * published to the store for eviction. On the tiny model (converted and
 * profiled here), 512 held-out tokens one at a time:
 *  - when layer 0 routes, layers 1..3 have a valid prediction from the
 *    embedding, every probability in [0, 1] (before, layers 2 and 3 had
 *    none: their last prediction was spent when they routed);
 *  - its top-2 finds more of each layer's true choices than the profile's
 *    two most frequent experts (measured 0.57-0.64 against 0.41-0.48 on
 *    the validation split; checked with a margin of 0.05);
 *  - with policy LFU nothing is published (no policy reads it, so the
 *    router matvecs are not spent);
 *  - a chunk of two tokens publishes, for layer 0, the larger of the two
 *    tokens' probabilities (each one alone in a fresh model).
 */
#include <math.h>
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

#define L 4
#define E 16
#define K 2
#define PROFILE_TOKENS 3000u
#define EVAL_TOKENS 512u

typedef struct {
    mf_model *m;
    float far[L][E];   /* published when layer 0 routed */
    int valid[L];
    uint64_t bad_range, missing, hit, hit_freq, total;
    uint32_t top_freq[L][2];
} obs_t;

static void top2(const float *p, uint32_t *a, uint32_t *b)
{
    *a = 0;
    for (uint32_t e = 1; e < E; e++)
        if (p[e] > p[*a]) *a = e;
    *b = *a == 0 ? 1 : 0;
    for (uint32_t e = 0; e < E; e++)
        if (e != *a && p[e] > p[*b]) *b = e;
}

static void observe(void *user, uint32_t layer, uint32_t pos, const uint32_t *idx, const float *w,
                    uint32_t k)
{
    (void)pos;
    (void)w;
    obs_t *o = user;
    const mf_expert_store *s = &o->m->store;
    if (k != K || layer >= L) return;
    if (layer == 0) {
        for (uint32_t j = 1; j < L; j++) {
            o->valid[j] = s->lvalid && s->lvalid[j];
            if (!o->valid[j]) continue;
            for (uint32_t e = 0; e < E; e++) {
                float p = s->lprob[(size_t)j * E + e];
                o->far[j][e] = p;
                o->bad_range += !(p >= 0.0f && p <= 1.0f);
            }
        }
        return;
    }
    if (!o->valid[layer]) {
        o->missing++;
        return;
    }
    uint32_t a, b;
    top2(o->far[layer], &a, &b);
    for (uint32_t i = 0; i < K; i++) {
        o->hit += idx[i] == a || idx[i] == b;
        o->hit_freq += idx[i] == o->top_freq[layer][0] || idx[i] == o->top_freq[layer][1];
        o->total++;
    }
}

static mf_model *open_model(mf_port *port, mf_mem_port_state *ms, const uint8_t *img,
                            size_t img_len, const mf_options *opt, void **arena)
{
    mf_mem_port_open(port, ms, img, img_len);
    mf_model *m;
    (void)mf_test_model(port, opt, &m, arena);
    return m;
}

/* Layer 0's probabilities published at the start of the one chunk of n
 * tokens fed to a fresh model (lookahead, LRU): nothing else writes them. */
static int chunk_probs(const uint8_t *img, size_t img_len, const uint32_t *ids, uint32_t n,
                       float *out)
{
    mf_options opt;
    mf_options_default(&opt);
    opt.expert_slots = E;
    opt.policy = MF_POLICY_LRU;
    opt.predictor = MF_PREDICT_LOOKAHEAD;
    opt.prefill_batch = 2;
    mf_mem_port_state ms;
    mf_port port;
    void *arena = NULL;
    mf_model *m = open_model(&port, &ms, img, img_len, &opt, &arena);
    int ok = m && m->store.lprob && mf_feed(m, ids, n) == MF_OK;
    if (ok) memcpy(out, m->store.lprob, sizeof(float) * E);
    free(arena);
    return ok;
}

int main(void)
{
    size_t tlen, img_len = 0;
    char *text = mf_read_file("tests/data/tinyshakespeare.txt", &tlen);
    CHECK(text != NULL, "read text");
    if (!text) return mf_test_done("test_far_lookahead");
    size_t split = (size_t)((double)tlen * 0.9);
    char train[] = "/tmp/mf_far_train_XXXXXX", args[128];
    int fd = mkstemp(train);
    if (fd >= 0) {
        if (write(fd, text, PROFILE_TOKENS) != (ssize_t)PROFILE_TOKENS) fprintf(stderr, "write\n");
        close(fd);
    }
    snprintf(args, sizeof args, "--text %s", train);
    uint8_t *img = mf_test_image("models/tiny-shakespeare-moe", "--weights f32", args, &img_len, NULL);
    unlink(train);
    int rc = img ? 0 : 1;
    CHECK(rc == 0, "convert + profile");
    if (rc || !img) return mf_test_done("test_far_lookahead");

    for (int pol = 0; pol < 2; pol++) {
        mf_options opt;
        mf_options_default(&opt);
        opt.expert_slots = E; /* a quarter of the experts: eviction matters */
        opt.policy = pol ? MF_POLICY_LFU : MF_POLICY_EDGEMOE;
        opt.predictor = MF_PREDICT_COMBINED; /* reads the profile */
        opt.prefill_batch = 1;
        mf_mem_port_state ms;
        mf_port port;
        void *arena = NULL;
        mf_model *m = open_model(&port, &ms, img, img_len, &opt, &arena);
        CHECK(m != NULL, "model (policy %d)", opt.policy);
        if (!m) {
            free(arena);
            continue;
        }
        static obs_t o;
        memset(&o, 0, sizeof o);
        o.m = m;
        const mf_profile_tables *pr = &m->store.prof;
        CHECK(m->store.have_profile, "the image has a profile");
        for (uint32_t j = 0; j < L && m->store.have_profile; j++) {
            float f[E];
            for (uint32_t e = 0; e < E; e++) f[e] = (float)pr->freq[(size_t)j * E + e];
            top2(f, &o.top_freq[j][0], &o.top_freq[j][1]);
        }
        mf_set_route_observer(m, observe, &o);
        int ok = 1;
        for (uint32_t t = 0; t < EVAL_TOKENS && ok; t++) {
            uint32_t id = (uint8_t)text[split + t];
            ok = mf_feed(m, &id, 1) == MF_OK;
        }
        CHECK(ok, "feed held-out text");
        if (pol == 0) {
            CHECK(o.missing == 0, "layers 1..3 predicted when layer 0 routes (%llu missing)",
                  (unsigned long long)o.missing);
            CHECK(o.bad_range == 0, "probabilities in [0, 1] (%llu outside)",
                  (unsigned long long)o.bad_range);
            double r = o.total ? (double)o.hit / (double)o.total : 0.0;
            double rf = o.total ? (double)o.hit_freq / (double)o.total : 1.0;
            printf("far lookahead from the embedding, layers 1-3: top-2 recall %.3f, "
                   "profile frequency %.3f\n", r, rf);
            CHECK(o.total == (uint64_t)EVAL_TOKENS * (L - 1) * K, "every choice counted");
            CHECK(r > rf + 0.05, "far recall %.3f beats frequency %.3f by 0.05", r, rf);
        } else {
            CHECK(o.missing == (uint64_t)EVAL_TOKENS * (L - 1),
                  "LFU: no far prediction for layers 1..3 (%llu of %u missing)",
                  (unsigned long long)o.missing, EVAL_TOKENS * (L - 1));
        }
        free(arena);
    }
    {
        uint32_t ab[2] = {(uint8_t)text[split], (uint8_t)text[split + 1]};
        float pa[E], pb[E], pab[E];
        int ok = ab[0] != ab[1] && chunk_probs(img, img_len, ab, 1, pa) &&
                 chunk_probs(img, img_len, ab + 1, 1, pb) && chunk_probs(img, img_len, ab, 2, pab);
        CHECK(ok, "chunk runs");
        int bad = 0, differ = 0;
        for (uint32_t e = 0; ok && e < E; e++) {
            bad += fabsf(pab[e] - fmaxf(pa[e], pb[e])) > 1e-6f;
            differ += fabsf(pa[e] - pb[e]) > 1e-3f;
        }
        CHECK(ok && differ > 0 && bad == 0,
              "a chunk publishes the max over its tokens (%d of %d differ, tokens differ at %d)", bad,
              E, differ);
        /* each is min(1, top_k * router probability): over a distribution
         * they add up to top_k when none reaches 1, else to (1, top_k] */
        for (int i = 0; ok && i < 2; i++) {
            const float *q = i ? pb : pa;
            double sum = 0, mx = 0;
            for (uint32_t e = 0; e < E; e++) {
                sum += q[e];
                mx = q[e] > mx ? q[e] : mx;
            }
            CHECK(mx < 1.0 ? fabs(sum - K) < 1e-4 : sum > 1.001 && sum <= K + 1e-4,
                  "token %d: published probabilities = min(1, k p): sum %.5f, max %.4f", i, sum, mx);
        }
    }
    free(img);
    free(text);
    return mf_test_done("test_far_lookahead");
}
