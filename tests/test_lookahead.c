/*
 * The learned lookahead (MF_SEC_LOOKAHEAD, docs/predictor-format.md) on the
 * tiny model, profiled on the first 20,000 bytes of the text (the least
 * that gets one, MF_LOOKAHEAD_MIN_TOKENS):
 *  - the section's header and size; a profile of fewer tokens, or with
 *    --no-lookahead, writes none (and drops an earlier one);
 *  - its weights predict layer l+1's choices from layer l's residual on
 *    held-out text (the first 512 tokens of the validation split) better
 *    than chance by far, and at layer 1 better than co-occurrence;
 *  - the combined predictor loads it (its bytes in the arena), its layer-1
 *    recall rises, and the logits stay bit-identical (every policy, 2, 5
 *    and 16 slots, on the simulated flash);
 *  - a flipped bit is refused (MF_E_CRC), a NaN weight too (MF_E_FORMAT);
 *  - the fit itself (lookahead_fit.h), without a model: one SGD step from
 *    given weights equals the step recomputed here (x^ = x / sqrt(mean(x^2)
 *    + eps), softmax, gradient softmax - 1/k on each chosen expert, w -=
 *    rate g x^, b -= rate g), only layer l's weights move, a step at the
 *    last layer (no next layer) does nothing; scores of 200 apart still
 *    give finite weights; the section holds the header and every weight
 *    then every bias as f32, in the fit's order.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../port/sim/sim_port.h"
#include "../runtime/image.h"
#include "../runtime/image_format.h"
#include "../runtime/moeflash.h"
#include "../tools/lib/imagewrite.h"
#include "../tools/lib/json.h"
#include "../tools/lib/lookahead_fit.h"
#include "harness.h"
#include "image_fixture.h"

#define L 4
#define E 16
#define K 2
#define H 128
#define EVAL 512u
#define GRID 96u /* tokens per run of the slot/policy grid */

static float grid_ref[256];

typedef struct {
    float x[EVAL][L][H];
    uint32_t chosen[EVAL][L][K];
} eval_rec;

static eval_rec rec;

static void on_route(void *user, uint32_t layer, uint32_t pos, const uint32_t *e, const float *w,
                     uint32_t k)
{
    (void)user;
    (void)w;
    if (pos >= EVAL || layer >= L || k != K) return;
    for (uint32_t j = 0; j < K; j++) rec.chosen[pos][layer][j] = e[j];
}

static void on_residual(void *user, uint32_t layer, uint32_t pos, const float *x, uint32_t hidden)
{
    (void)user;
    if (pos >= EVAL || layer >= L || hidden != H) return;
    memcpy(rec.x[pos][layer], x, sizeof(float) * H);
}

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static const mf_section *section(const uint8_t *img, size_t len, mf_image_header *h)
{
    mf_mem_port_state ms;
    mf_port port;
    uint8_t scratch[4096];
    mf_mem_port_open(&port, &ms, img, len);
    if (mf_image_read_header(&port, h, 1, scratch, sizeof scratch) != MF_OK) return NULL;
    return mf_image_section(h, MF_SEC_LOOKAHEAD);
}

/* Feeds the held-out ids one at a time; the stats, the logits of the last
 * token into last[vocab], MF_OK or the error. */
static int run(const uint8_t *img, size_t len, const mf_options *o, const uint32_t *ids,
               mf_stats *st, float *last, size_t *arena_bytes)
{
    mf_mem_port_state ms;
    mf_port port;
    mf_mem_port_open(&port, &ms, img, len);
    void *arena;
    mf_model *m;
    int rc = mf_test_model(&port, o, &m, &arena);
    if (!rc) {
        mf_arena_bytes(&port, o, arena_bytes);
        mf_set_route_observer(m, on_route, NULL);
        mf_set_residual_observer(m, on_residual, NULL);
        for (uint32_t t = 0; t < EVAL && !rc; t++) rc = mf_feed(m, &ids[t], 1);
        if (!rc) {
            mf_get_stats(m, st);
            memcpy(last, mf_logits(m), sizeof(float) * mf_vocab_size(m));
        }
    }
    free(arena);
    return rc;
}

/* One step of the fit against the same step written out from the header's
 * definition, in double. */
static void test_fit_step(void)
{
    enum { FL = 3, FE = 4, FH = 5 };
    const float rate = 0.25f;
    mf_lookahead_fit f;
    CHECK(mf_lookahead_fit_init(&f, FL, FE, FH, rate) == 0, "init");
    size_t nw = (size_t)(FL - 1) * FE * FH, nb = (size_t)(FL - 1) * FE;
    for (size_t i = 0; i < nw; i++) f.w[i] = (float)((int)(i * 7 % 11) - 5) * 0.05f;
    for (size_t i = 0; i < nb; i++) f.b[i] = (float)((int)(i * 3 % 5) - 2) * 0.1f;
    static float w0[FL * FE * FH], b0[FL * FE];
    memcpy(w0, f.w, sizeof(float) * nw);
    memcpy(b0, f.b, sizeof(float) * nb);
    const float x[FH] = {3.0f, -1.0f, 0.5f, 2.0f, -4.0f};
    const uint32_t next[2] = {2, 0};
    const uint32_t l = 1;
    mf_lookahead_fit_step(&f, l, x, next, 2);
    double ss = 0, xh[FH], z[FE], mx = -1e300, sum = 0;
    for (int i = 0; i < FH; i++) ss += (double)x[i] * x[i];
    for (int i = 0; i < FH; i++) xh[i] = x[i] / sqrt(ss / FH + MF_LOOKAHEAD_EPS);
    for (int e = 0; e < FE; e++) {
        z[e] = b0[l * FE + e];
        for (int i = 0; i < FH; i++) z[e] += (double)w0[(l * FE + e) * FH + i] * xh[i];
        mx = z[e] > mx ? z[e] : mx;
    }
    for (int e = 0; e < FE; e++) sum += exp(z[e] - mx);
    double worst = 0;
    int others = 0;
    for (int e = 0; e < FE; e++) {
        double g = exp(z[e] - mx) / sum - ((e == 2 || e == 0) ? 0.5 : 0.0);
        worst = fmax(worst, fabs(f.b[l * FE + e] - (b0[l * FE + e] - rate * g)));
        for (int i = 0; i < FH; i++)
            worst = fmax(worst, fabs(f.w[(l * FE + e) * FH + i] - (w0[(l * FE + e) * FH + i] - rate * g * xh[i])));
    }
    for (size_t i = 0; i < FE * FH; i++) others += f.w[i] != w0[i]; /* layer 0 untouched */
    for (size_t i = 0; i < FE; i++) others += f.b[i] != b0[i];
    CHECK(worst < 1e-5, "one step differs from the definition by %g", worst);
    CHECK(others == 0 && f.steps == 1, "%d of layer 0's parameters moved, %llu steps", others,
          (unsigned long long)f.steps);

    /* The last layer has no next layer: nothing moves. */
    memcpy(w0, f.w, sizeof(float) * nw);
    memcpy(b0, f.b, sizeof(float) * nb);
    mf_lookahead_fit_step(&f, FL - 1, x, next, 2);
    CHECK(f.steps == 1 && !memcmp(w0, f.w, sizeof(float) * nw) && !memcmp(b0, f.b, sizeof(float) * nb),
          "a step at the last layer changes nothing");

    /* Scores 200 apart: the softmax must not overflow. */
    for (size_t i = 0; i < FE; i++) f.b[i] = i == 1 ? 200.0f : 0.0f;
    mf_lookahead_fit_step(&f, 0, x, next, 2);
    int finite = 1;
    for (size_t i = 0; i < nw; i++) finite &= isfinite(f.w[i]);
    for (size_t i = 0; i < nb; i++) finite &= isfinite(f.b[i]);
    CHECK(finite, "weights finite after a step with scores 200 apart");

    /* The section: header, then w [L-1][E][H], then b [L-1][E], f32 LE. */
    size_t bytes = mf_lookahead_section_bytes(FL, FE, FH);
    CHECK(bytes == 32 + 4 * (nw + nb), "section bytes %zu", bytes);
    uint8_t *sec = malloc(bytes);
    if (sec) {
        mf_lookahead_encode(&f, 12345, sec);
        int bad = memcmp(sec, "MFLA", 4) != 0 || rd32(sec + 4) != 1 || rd32(sec + 8) != FL ||
                  rd32(sec + 12) != FE || rd32(sec + 16) != FH || rd32(sec + 20) != 12345;
        for (size_t i = 0; i < nw + nb; i++) {
            uint32_t u = rd32(sec + 32 + 4 * i), v;
            memcpy(&v, i < nw ? &f.w[i] : &f.b[i - nw], 4);
            bad += u != v;
        }
        CHECK(bad == 0, "%d fields of the section differ from the fit", bad);
        free(sec);
    }
    mf_lookahead_fit_free(&f);
}

int main(void)
{
    test_fit_step();
    size_t tlen;
    char *text = mf_read_file("tests/data/tinyshakespeare.txt", &tlen);
    CHECK(text != NULL && tlen > 200000, "read text");
    if (!text || tlen <= 200000) return mf_test_done("test_lookahead");
    char train[] = "/tmp/mf_la_train_XXXXXX", few[] = "/tmp/mf_la_few_XXXXXX", args[256];
    int fd = mkstemp(train), fd2 = mkstemp(few);
    int wrote = fd >= 0 && fd2 >= 0 &&
                write(fd, text, MF_LOOKAHEAD_MIN_TOKENS) == (ssize_t)MF_LOOKAHEAD_MIN_TOKENS &&
                write(fd2, text, 3000) == 3000;
    if (fd >= 0) close(fd);
    if (fd2 >= 0) close(fd2);
    CHECK(wrote, "training text");

    char path[64];
    size_t len = 0, len_off = 0, len_few = 0;
    snprintf(args, sizeof args, "--text %s --window 256 --slots 64", train);
    uint8_t *img = mf_test_image("models/tiny-shakespeare-moe", "--weights f32", args, &len, path);
    snprintf(args, sizeof args, "--text %s --window 256 --slots 64 --no-lookahead", train);
    uint8_t *off = mf_test_image("models/tiny-shakespeare-moe", "--weights f32", args, &len_off, NULL);
    snprintf(args, sizeof args, "--text %s --window 256 --slots 64", few);
    uint8_t *img_few = mf_test_image("models/tiny-shakespeare-moe", "--weights f32", args, &len_few, NULL);
    CHECK(img && off && img_few, "convert + profile (20000, 20000 --no-lookahead, 3000 tokens)");
    if (!img || !off || !img_few) goto out;

    mf_image_header h;
    const mf_section *sec = section(img, len, &h);
    size_t want = mf_lookahead_section_bytes(L, E, H);
    CHECK(sec && sec->bytes == want && want == 32 + 4 * 3 * 16 * 129,
          "section present, %zu bytes", want);
    if (!sec) goto out;
    const uint8_t *p = img + sec->offset;
    CHECK(!memcmp(p, "MFLA", 4) && rd32(p + 4) == 1 && rd32(p + 8) == L && rd32(p + 12) == E &&
              rd32(p + 16) == H && rd32(p + 20) == MF_LOOKAHEAD_MIN_TOKENS,
          "header: magic, version, layers, experts, hidden, tokens");
    mf_image_header h2;
    CHECK(section(off, len_off, &h2) == NULL, "--no-lookahead: no section");
    CHECK(section(img_few, len_few, &h2) == NULL, "3000 tokens: no section");
    {
        /* re-profiling with --no-lookahead drops the one an image has */
        char cmd[256];
        const char *b = getenv("BUILD");
        snprintf(cmd, sizeof cmd, "%s/moeflash profile %s --text %s --no-lookahead >/dev/null 2>&1",
                 b && *b ? b : "build", path, few);
        size_t l2 = 0;
        uint8_t *again = system(cmd) == 0 ? (uint8_t *)mf_read_file(path, &l2) : NULL;
        CHECK(again && section(again, l2, &h2) == NULL, "re-profiled with --no-lookahead: dropped");
        free(again);
    }

    /* The weights, decoded as the format says. */
    size_t nw = 3 * E * H, nb = 3 * E;
    float *w = malloc(sizeof(float) * (nw + nb));
    if (!w) goto out;
    for (size_t i = 0; i < nw + nb; i++) {
        uint32_t u = rd32(p + 32 + 4 * i);
        memcpy(&w[i], &u, 4);
    }

    /* Held-out text, combined predictor with every expert in RAM (only the
     * prediction counts); with and without the section. */
    size_t split = (size_t)((double)tlen * 0.9);
    uint32_t ids[EVAL];
    for (uint32_t t = 0; t < EVAL; t++) ids[t] = (uint8_t)text[split + t];
    mf_options o;
    mf_options_default(&o);
    o.expert_slots = L * E;
    o.predictor = MF_PREDICT_COMBINED;
    o.policy = MF_POLICY_EDGEMOE;
    o.prefill_batch = 1;
    mf_stats st_on, st_off;
    static float last_on[256], last_off[256], last_plain[256];
    size_t ab_on = 0, ab_off = 0, ab_plain = 0;
    int rc_off = run(off, len_off, &o, ids, &st_off, last_off, &ab_off);
    int rc_on = run(img, len, &o, ids, &st_on, last_on, &ab_on); /* rec: from this run */
    mf_options plain;
    mf_options_default(&plain);
    {
        mf_mem_port_state ms;
        mf_port mem;
        mf_mem_port_open(&mem, &ms, img, len);
        void *arena;
        mf_model *m;
        int rc = mf_test_model(&mem, &plain, &m, &arena);
        for (uint32_t t = 0; t < GRID && !rc; t++) rc = mf_feed(m, &ids[t], 1);
        if (!rc) memcpy(grid_ref, mf_logits(m), sizeof grid_ref);
        free(arena);
        CHECK(rc == MF_OK, "grid reference run");
    }
    mf_stats st_plain;
    int rc_plain = run(img, len, &plain, ids, &st_plain, last_plain, &ab_plain);
    CHECK(rc_on == MF_OK && rc_off == MF_OK && rc_plain == MF_OK, "runs: %s %s %s",
          mf_strerror(rc_on), mf_strerror(rc_off), mf_strerror(rc_plain));
    CHECK(ab_on >= ab_off + want, "the arena holds the weights: %zu vs %zu bytes", ab_on, ab_off);
    CHECK(!memcmp(last_on, last_plain, sizeof last_on) && !memcmp(last_off, last_plain, sizeof last_on),
          "logits bit-identical with and without the learned lookahead");

    /* Bit-identical under every policy and a few slot counts, on the
     * simulated flash (reads in flight while the learned stage A predicts). */
    {
        static const uint32_t slots[] = {2, 5, 16};
        int same = 0, runs = 0;
        for (int si = 0; si < 3; si++)
            for (int pol = MF_POLICY_NONE; pol <= MF_POLICY_BELADY; pol++) {
                mf_options g = o;
                g.expert_slots = slots[si];
                g.policy = pol;
                mf_mem_port_state ms;
                mf_port mem, sim;
                mf_sim_state ss;
                mf_mem_port_open(&mem, &ms, img, len);
                mf_sim_port_open(&sim, &ss, &mem, mf_sim_profile_find("mcu-qspi"), NULL);
                void *arena;
                mf_model *m;
                int rc = mf_test_model(&sim, &g, &m, &arena);
                for (uint32_t t = 0; t < GRID && !rc; t++) rc = mf_feed(m, &ids[t], 1);
                static float lg[256];
                if (!rc) memcpy(lg, mf_logits(m), sizeof lg);
                free(arena);
                runs++;
                same += !rc && !memcmp(lg, grid_ref, sizeof lg);
            }
        CHECK(same == runs, "%d of %d slot/policy runs with the learned lookahead bit-identical",
              same, runs);
    }

    /* Top-2 recall of the weights themselves, and of co-occurrence's
     * reference figure at layer 1 (transformers: 0.56). */
    double recall[L] = {0};
    for (uint32_t l = 0; l + 1 < L; l++) {
        uint32_t hit = 0;
        for (uint32_t t = 0; t < EVAL; t++) {
            float z[E];
            mf_lookahead_scores(w, w + nw, E, H, l, rec.x[t][l], z);
            uint32_t a = 0, b = 1;
            if (z[b] > z[a]) a = 1, b = 0;
            for (uint32_t e = 2; e < E; e++) {
                if (z[e] > z[a]) b = a, a = e;
                else if (z[e] > z[b]) b = e;
            }
            for (uint32_t j = 0; j < K; j++) hit += rec.chosen[t][l + 1][j] == a || rec.chosen[t][l + 1][j] == b;
        }
        recall[l + 1] = (double)hit / (EVAL * K);
        printf("learned lookahead: layer %u top-2 recall %.3f\n", l + 1, recall[l + 1]);
        CHECK(recall[l + 1] > 0.6, "layer %u recall %.3f > 0.6 (chance: 0.125)", l + 1, recall[l + 1]);
    }
    CHECK(recall[1] > 0.56 + 0.1, "layer 1 recall %.3f beats co-occurrence's 0.56", recall[1]);
    double r_on = (double)st_on.layer_predicted_needed[1] / (double)st_on.layer_needed[1];
    double r_off = (double)st_off.layer_predicted_needed[1] / (double)st_off.layer_needed[1];
    printf("combined, layer 1 recall: %.3f with the learned lookahead, %.3f without\n", r_on, r_off);
    CHECK(r_on > r_off, "combined layer-1 recall rises with it: %.3f vs %.3f", r_on, r_off);

    /* A flipped bit: refused by the CRC. */
    uint8_t *bad = malloc(len);
    if (bad) {
        memcpy(bad, img, len);
        bad[sec->offset + 32 + 999] ^= 0x04;
        mf_stats st;
        static float lg[256];
        size_t ab;
        CHECK(run(bad, len, &o, ids, &st, lg, &ab) == MF_E_CRC, "flipped bit: MF_E_CRC");
        free(bad);
    }
    /* A NaN weight with a valid CRC (rewritten as `moeflash profile` would). */
    {
        uint8_t *secb = malloc(want);
        char err[128], nan_path[80];
        snprintf(nan_path, sizeof nan_path, "%s.nan", path);
        if (secb) {
            memcpy(secb, p, want);
            float q = NAN;
            memcpy(secb + 32 + 4 * 77, &q, 4);
            int wr = mf_image_copy_with_section(path, nan_path, MF_SEC_LOOKAHEAD, 1, secb, want, err,
                                                sizeof err);
            size_t ln = 0;
            uint8_t *nimg = wr == 0 ? (uint8_t *)mf_read_file(nan_path, &ln) : NULL;
            mf_stats st;
            static float lg[256];
            size_t ab;
            CHECK(nimg && run(nimg, ln, &o, ids, &st, lg, &ab) == MF_E_FORMAT, "NaN weight: MF_E_FORMAT");
            free(nimg);
            unlink(nan_path);
            free(secb);
        }
    }
    free(w);
out:
    unlink(path);
    unlink(train);
    unlink(few);
    free(img);
    free(off);
    free(img_few);
    free(text);
    return mf_test_done("test_lookahead");
}
