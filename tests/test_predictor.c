/*
 * Predictors and `moeflash profile` on the tiny model.
 *  - The MF_SEC_PREDICTOR section written by `moeflash profile` (first 3000
 *    tokens of the training text, windows of 256) holds exactly the counts
 *    that an independent replay of the router's choices over the same
 *    windows gives (header, per-layer frequency, layer l-1 -> l and
 *    l-2 -> l co-occurrence), as docs/predictor-format.md lays them out;
 *    the same for the MF_SEC_TOKEN_ROUTES table (P(expert | input token,
 *    layer) as u8, recomputed from the replay's per-token counts).
 *  - On held-out text (the first 512 tokens of the validation split, one at
 *    a time), recall per layer of each predictor against the figures
 *    transformers gives (models/README: co-occurrence 0.56/0.52/0.55,
 *    router lookahead 0.73/0.72/0.81 for layers 1-3), the combined
 *    predictor's mean recall, and its budget of 2*top_k per layer and token.
 *  - The co-occurrence predictor's guesses for layer l are the top_k of
 *    sum over a chosen at l-1 of c1[l][a][b] / freq[l-1][a] plus half the
 *    same over l-2 with c2, recomputed from the replayed tables and the
 *    token's own choices at l-1 and l-2.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../port/sim/sim_port.h"
#include "../runtime/image.h"
#include "../runtime/image_format.h"
#include "../runtime/model.h"
#include "../runtime/moeflash.h"
#include "../tools/lib/json.h"
#include "harness.h"
#include "image_fixture.h"

#define L 4
#define E 16
#define K 2
#define PROFILE_TOKENS 3000u
#define WINDOW 256u
#define EVAL_TOKENS 512u

static uint8_t *img;
static size_t img_len;

typedef struct {
    uint16_t rows[WINDOW][L][K];
} rec_t;

static void observe(void *user, uint32_t layer, uint32_t pos, const uint32_t *e, const float *w,
                    uint32_t k)
{
    (void)w;
    rec_t *r = user;
    if (pos >= WINDOW || layer >= L || k != K) return;
    for (uint32_t j = 0; j < K; j++) r->rows[pos][layer][j] = (uint16_t)e[j];
}

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static mf_model *open_model(mf_port *port, mf_mem_port_state *ms, const mf_options *opt, void **arena)
{
    mf_mem_port_open(port, ms, img, img_len);
    size_t bytes;
    mf_model *m = NULL;
    if (mf_arena_bytes(port, opt, &bytes)) return NULL;
    *arena = malloc(bytes);
    if (mf_init(&m, port, opt, *arena, bytes)) return NULL;
    return m;
}

/* Checks, as each layer l >= 1 routes, the experts the co-occurrence
 * predictor flagged for it against the top_k of the score recomputed from
 * the replayed tables and the token's choices at l-1 and l-2 (chunks of one
 * token). Near-ties (2nd and 3rd score within 1e-5) are not counted. */
typedef struct {
    mf_model *m;
    const uint32_t (*freq)[E];
    const uint32_t (*c1)[E][E], (*c2)[E][E];
    uint32_t cur[L][K];
    uint64_t checked, wrong, ties;
} cooc_obs;

static void observe_cooc(void *user, uint32_t layer, uint32_t pos, const uint32_t *e, const float *w,
                         uint32_t k)
{
    (void)pos;
    (void)w;
    cooc_obs *o = user;
    if (layer >= L || k != K) return;
    for (uint32_t j = 0; j < K; j++) o->cur[layer][j] = e[j];
    if (layer == 0) return;
    double sc[E] = {0};
    for (uint32_t j = 0; j < K; j++) {
        uint32_t a = o->cur[layer - 1][j], fa = o->freq[layer - 1][a];
        for (uint32_t b = 0; fa && b < E; b++) sc[b] += (double)o->c1[layer][a][b] / fa;
        if (layer < 2) continue;
        a = o->cur[layer - 2][j];
        fa = o->freq[layer - 2][a];
        for (uint32_t b = 0; fa && b < E; b++) sc[b] += 0.5 * o->c2[layer][a][b] / fa;
    }
    uint32_t best[K + 1];
    uint8_t used[E] = {0};
    for (uint32_t r = 0; r <= K; r++) {
        best[r] = E;
        for (uint32_t b = 0; b < E; b++)
            if (!used[b] && (best[r] == E || sc[b] > sc[best[r]])) best[r] = b;
        used[best[r]] = 1;
    }
    if (sc[best[K - 1]] - sc[best[K]] <= 1e-5 * sc[best[K - 1]]) {
        o->ties++;
        return;
    }
    const uint8_t *pr = o->m->store.predicted + (size_t)layer * E;
    int same = 1;
    for (uint32_t b = 0; b < E; b++) {
        int want = 0;
        for (uint32_t r = 0; r < K; r++) want |= best[r] == b;
        same &= (pr[b] != 0) == want;
    }
    o->checked++;
    o->wrong += !same;
}

int main(void)
{
    size_t tlen;
    char *text = mf_read_file("tests/data/tinyshakespeare.txt", &tlen);
    CHECK(text != NULL, "read text");
    if (!text) return mf_test_done("test_predictor");
    size_t split = (size_t)((double)tlen * 0.9);
    char train[] = "/tmp/mf_pred_train_XXXXXX", args[128];
    int fd = mkstemp(train);
    if (fd >= 0) {
        if (write(fd, text, PROFILE_TOKENS) != (ssize_t)PROFILE_TOKENS) fprintf(stderr, "write\n");
        close(fd);
    }
    snprintf(args, sizeof args, "--text %s --window %u --slots 64", train, WINDOW);
    img = mf_test_image("models/tiny-shakespeare-moe", "--weights f32", args, &img_len, NULL);
    unlink(train);
    int rc = img ? 0 : 1;
    CHECK(rc == 0, "convert + profile");
    if (rc || !img) return mf_test_done("test_predictor");

    /* The section, found through the header. */
    mf_mem_port_state ms;
    mf_port port;
    mf_mem_port_open(&port, &ms, img, img_len);
    mf_image_header h;
    uint8_t scratch[512];
    CHECK(mf_image_read_header(&port, &h, 1, scratch, sizeof scratch) == MF_OK, "header + CRCs");
    const mf_section *sec = mf_image_section(&h, MF_SEC_PREDICTOR);
    size_t words = L * E + 2 * L * E * E;
    CHECK(sec && sec->bytes == 32 + 4 * words, "predictor section present, %zu bytes",
          32 + 4 * words);
    if (!sec || sec->bytes != 32 + 4 * words) return mf_test_done("test_predictor");
    const uint8_t *p = img + sec->offset;
    CHECK(!memcmp(p, "MFPR", 4) && rd32(p + 4) == 1 && rd32(p + 8) == L && rd32(p + 12) == E &&
              rd32(p + 16) == K && rd32(p + 20) == PROFILE_TOKENS,
          "section header");

    /* Independent replay of the routing over the same windows. */
    static uint32_t freq[L][E], c1[L][E][E], c2[L][E][E], tcount[256], troute[256][L][E];
    static rec_t rec;
    mf_options opt;
    mf_options_default(&opt);
    opt.expert_slots = L * E;
    void *arena = NULL;
    mf_model *m = open_model(&port, &ms, &opt, &arena);
    CHECK(m != NULL, "model");
    if (!m) return mf_test_done("test_predictor");
    mf_set_route_observer(m, observe, &rec);
    uint32_t ids[WINDOW];
    for (uint32_t done = 0; done < PROFILE_TOKENS; done += WINDOW) {
        uint32_t n = PROFILE_TOKENS - done < WINDOW ? PROFILE_TOKENS - done : WINDOW;
        for (uint32_t i = 0; i < n; i++) ids[i] = (uint8_t)text[done + i];
        mf_reset(m);
        CHECK(mf_feed(m, ids, n) == MF_OK, "feed");
        for (uint32_t t = 0; t < n; t++)
            for (uint32_t l = 0; l < L; l++)
                for (uint32_t j = 0; j < K; j++) {
                    uint32_t b = rec.rows[t][l][j];
                    freq[l][b]++;
                    troute[ids[t]][l][b]++;
                    if (l == 0 && j == 0) tcount[ids[t]]++;
                    for (uint32_t i = 0; l >= 1 && i < K; i++) c1[l][rec.rows[t][l - 1][i]][b]++;
                    for (uint32_t i = 0; l >= 2 && i < K; i++) c2[l][rec.rows[t][l - 2][i]][b]++;
                }
    }
    free(arena);
    size_t bad = 0, at = 0;
    const uint8_t *w = p + 32;
    for (uint32_t l = 0; l < L; l++)
        for (uint32_t e = 0; e < E; e++) bad += rd32(w + 4 * at++) != freq[l][e];
    for (uint32_t l = 0; l < L; l++)
        for (uint32_t a = 0; a < E; a++)
            for (uint32_t b = 0; b < E; b++) bad += rd32(w + 4 * at++) != c1[l][a][b];
    for (uint32_t l = 0; l < L; l++)
        for (uint32_t a = 0; a < E; a++)
            for (uint32_t b = 0; b < E; b++) bad += rd32(w + 4 * at++) != c2[l][a][b];
    CHECK(bad == 0, "%zu of %zu counts differ from the replay", bad, words);
    uint64_t total = 0;
    for (uint32_t e = 0; e < E; e++) total += freq[1][e];
    CHECK(total == (uint64_t)PROFILE_TOKENS * K, "layer 1 frequencies sum to tokens * k");

    /* Token routes: u8 round(255 * (count + 4 q) / (tokens of w + 4)),
     * q = freq / PROFILE_TOKENS (docs/predictor-format.md). */
    const mf_section *trs = mf_image_section(&h, MF_SEC_TOKEN_ROUTES);
    CHECK(trs && trs->bytes == 32 + 256 * L * E, "token-routes section present");
    if (trs && trs->bytes == 32 + 256 * L * E) {
        const uint8_t *tr = img + trs->offset;
        CHECK(!memcmp(tr, "MFTR", 4) && rd32(tr + 4) == 1 && rd32(tr + 8) == 256 &&
                  rd32(tr + 12) == L && rd32(tr + 16) == E && rd32(tr + 20) == PROFILE_TOKENS,
              "token-routes header");
        size_t tbad = 0, off = 0;
        for (uint32_t v = 0; v < 256; v++)
            for (uint32_t l = 0; l < L; l++)
                for (uint32_t e = 0; e < E; e++) {
                    double q = (double)freq[l][e] / PROFILE_TOKENS;
                    double pr = ((double)troute[v][l][e] + 4.0 * q) / ((double)tcount[v] + 4.0);
                    long want = (long)(pr * 255.0 + 0.5);
                    long got = tr[32 + off++];
                    tbad += got != want;
                }
        CHECK(tbad == 0, "%zu of %u token-route probabilities differ from the replay", tbad,
              256u * L * E);
        uint32_t seen = 0;
        for (uint32_t v = 0; v < 256; v++) seen += tcount[v] > 0;
        CHECK(seen > 30, "the calibration text has %u distinct tokens", seen);
        /* the store keeps the table in the arena for EdgeMoE + combined only */
        mf_options oe, ol;
        mf_options_default(&oe);
        oe.predictor = MF_PREDICT_COMBINED;
        oe.policy = MF_POLICY_EDGEMOE;
        ol = oe;
        ol.policy = MF_POLICY_LFU;
        size_t be = 0, bl = 0;
        mf_mem_port_open(&port, &ms, img, img_len);
        CHECK(mf_arena_bytes(&port, &oe, &be) == MF_OK && mf_arena_bytes(&port, &ol, &bl) == MF_OK,
              "arena bytes");
        CHECK(be >= bl + 32 + 256 * L * E, "EdgeMoE + combined holds the table: %zu vs %zu bytes",
              be, bl);
        /* one flipped bit in the table: refused at init, not used */
        uint8_t *bad = malloc(img_len);
        if (bad) {
            memcpy(bad, img, img_len);
            bad[trs->offset + 32 + 1000] ^= 0x10;
            mf_port bp;
            mf_mem_port_state bs;
            mf_mem_port_open(&bp, &bs, bad, img_len);
            void *ba = malloc(be);
            mf_model *bm = NULL;
            int brc = ba ? mf_init(&bm, &bp, &oe, ba, be) : MF_E_ARENA;
            CHECK(brc == MF_E_CRC, "corrupt token-routes table: %s", mf_strerror(brc));
            free(ba);
            free(bad);
        }
    }

    /* Recall on held-out text. */
    static const double ref_cooc[L] = {0, 0.56, 0.52, 0.55}, ref_look[L] = {0, 0.73, 0.72, 0.81};
    double mean[4] = {0};
    for (int pred = MF_PREDICT_COOC; pred <= MF_PREDICT_COMBINED; pred++) {
        mf_options o;
        mf_options_default(&o);
        o.expert_slots = L * E;
        o.predictor = pred;
        o.prefill_batch = 1;
        mf_mem_port_state ms2;
        mf_port port2;
        void *a2 = NULL;
        mf_model *m2 = open_model(&port2, &ms2, &o, &a2);
        CHECK(m2 != NULL, "model with predictor %d", pred);
        if (!m2) continue;
        static cooc_obs co;
        memset(&co, 0, sizeof co);
        co.m = m2;
        co.freq = (const uint32_t(*)[E])freq;
        co.c1 = (const uint32_t(*)[E][E])c1;
        co.c2 = (const uint32_t(*)[E][E])c2;
        if (pred == MF_PREDICT_COOC) mf_set_route_observer(m2, observe_cooc, &co);
        int ok = 1;
        for (uint32_t t = 0; t < EVAL_TOKENS && ok; t++) {
            uint32_t id = (uint8_t)text[split + t];
            ok = mf_feed(m2, &id, 1) == MF_OK;
        }
        CHECK(ok, "feed held-out text");
        if (pred == MF_PREDICT_COOC)
            CHECK(co.checked > EVAL_TOKENS * (L - 1) * 9 / 10 && co.wrong == 0,
                  "cooc guesses = top-%u of the recomputed score: %llu of %llu differ (%llu ties)",
                  K, (unsigned long long)co.wrong, (unsigned long long)co.checked,
                  (unsigned long long)co.ties);
        mf_stats st;
        mf_get_stats(m2, &st);
        printf("predictor %d recall per layer:", pred);
        for (uint32_t l = 0; l < L; l++) {
            double r = (double)st.layer_predicted_needed[l] / (double)st.layer_needed[l];
            mean[pred] += r / L;
            printf(" %.3f", r);
            if (l >= 1 && pred == MF_PREDICT_COOC)
                CHECK(r > ref_cooc[l] - 0.12 && r < ref_cooc[l] + 0.12,
                      "cooc layer %u recall %.3f vs transformers %.2f", l, r, ref_cooc[l]);
            if (l >= 1 && pred == MF_PREDICT_LOOKAHEAD)
                CHECK(r > ref_look[l] - 0.08 && r < ref_look[l] + 0.08,
                      "lookahead layer %u recall %.3f vs transformers %.2f", l, r, ref_look[l]);
        }
        printf("  mean %.3f, precision %.3f\n", mean[pred],
               (double)st.predicted_needed / (double)st.predicted);
        uint32_t per = pred == MF_PREDICT_COMBINED ? 2 * K : K;
        CHECK(st.predicted <= (uint64_t)per * L * EVAL_TOKENS, "predictor %d: at most %u per layer",
              pred, per);
        CHECK(st.needed == st.layer_needed[0] + st.layer_needed[1] + st.layer_needed[2] +
                               st.layer_needed[3],
              "per-layer counters add up");
        free(a2);
    }
    CHECK(mean[MF_PREDICT_COMBINED] >= 0.88, "combined mean recall %.3f >= 0.88",
          mean[MF_PREDICT_COMBINED]);
    CHECK(mean[MF_PREDICT_COMBINED] > mean[MF_PREDICT_LOOKAHEAD] &&
              mean[MF_PREDICT_LOOKAHEAD] > mean[MF_PREDICT_COOC],
          "combined > lookahead > cooc");

    free(img);
    free(text);
    return mf_test_done("test_predictor");
}
