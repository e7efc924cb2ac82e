/*
 * The expert cache on the tiny model (converted and profiled here):
 *  - the logits never depend on the cache: bit-identical over 71 tokens
 *    (golden case 0's prompt and greedy continuation) for every slot count,
 *    policy, predictor, pinning, chunk size and port (memory: synchronous;
 *    simulated flash and POSIX file: asynchronous reads in flight), and the
 *    reference logits agree with transformers (golden.json);
 *  - counting against an independent replay of the routing trace: lookups
 *    = distinct chosen experts per token and layer; `none` misses every
 *    lookup; all slots + LRU misses each used expert exactly once; Belady
 *    (replaying the recorded trace) never misses more than LRU, LFU or
 *    EdgeMoE and never fewer than the compulsory misses;
 *  - predictor statistics are consistent (recall, precision in [0,1],
 *    useful <= issued), pinning needs a profile and room;
 *  - CRC accounting per opt.verify_experts, pinning's tie rule,
 *    prefetch_min_prob's filter, and a prediction never evicting another.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../experts/store.h"
#include "../port/posix/posix_port.h"
#include "../port/sim/sim_port.h"
#include "../runtime/image_format.h"
#include "../runtime/model.h"
#include "../runtime/moeflash.h"
#include "../tools/lib/json.h"
#include "port_fixture.h"
#include "harness.h"
#include "image_fixture.h"

static uint8_t *img;
static size_t img_len;
static char img_path[64];

#define MAXT 128
static uint32_t ids[MAXT], T;
static float *golden_logits; /* [7][V] */
static uint32_t golden_T;

typedef struct {
    uint32_t L, k, n;
    uint16_t trace[MAXT * 8 * 8]; /* [T][L][k] */
} rec_t;

static void observe(void *user, uint32_t layer, uint32_t pos, const uint32_t *e, const float *w,
                    uint32_t k)
{
    (void)w;
    rec_t *r = user;
    if (pos >= MAXT || layer >= r->L) return;
    for (uint32_t j = 0; j < k; j++) r->trace[((size_t)pos * r->L + layer) * r->k + j] = (uint16_t)e[j];
    if (pos + 1 > r->n) r->n = pos + 1;
}

enum { PORT_MEM = MF_TEST_PORT_MEM, PORT_SIM = MF_TEST_PORT_SIM, PORT_FILE = MF_TEST_PORT_FILE };

typedef struct {
    mf_stats st;
    int rc;
} result;

/* Runs the 71 tokens, chunk tokens per mf_feed call, logits after every
 * token into out[T][V]. */
static result run(int port_kind, const mf_options *opt, uint32_t chunk, float *out, rec_t *rec,
                  const uint16_t *future)
{
    result r;
    memset(&r, 0, sizeof r);
    mf_test_ports tp;
    if (mf_test_ports_open(&tp, port_kind, img, img_len, img_path, NULL) != MF_PORT_OK) {
        r.rc = MF_E_IO;
        return r;
    }
    const mf_port *port = tp.port;
    void *arena;
    mf_model *m;
    r.rc = mf_test_model(port, opt, &m, &arena);
    if (!r.rc) {
        if (rec) mf_set_route_observer(m, observe, rec);
        if (future) mf_set_future_trace(m, future, T);
        uint32_t V = mf_vocab_size(m);
        for (uint32_t done = 0; done < T && !r.rc;) {
            uint32_t n = T - done < chunk ? T - done : chunk;
            r.rc = mf_feed_all(m, ids + done, n, out + (size_t)done * V);
            done += n;
        }
        mf_get_stats(m, &r.st);
    }
    free(arena);
    mf_test_ports_close(&tp);
    return r;
}

static int load_golden(void)
{
    size_t len;
    char *text = mf_read_file("models/tiny-shakespeare-moe/golden.json", &len);
    if (!text) return -1;
    mf_json_doc doc;
    if (mf_json_parse(&doc, text, len)) return -1;
    const mf_json *c = mf_json_get(doc.root, "cases")->child;
    const mf_json *toks = mf_json_get(c, "tokens"), *cont = mf_json_get(c, "greedy_continuation");
    const mf_json *lg = mf_json_get(c, "logits");
    T = 0;
    for (const mf_json *x = toks->child; x && T < MAXT; x = x->next) ids[T++] = (uint32_t)x->number;
    golden_T = T;
    for (const mf_json *x = cont->child; x && T < MAXT; x = x->next) ids[T++] = (uint32_t)x->number;
    golden_logits = malloc(sizeof(float) * golden_T * 256);
    uint32_t t = 0;
    for (const mf_json *row = lg->child; row && t < golden_T; row = row->next, t++) {
        uint32_t j = 0;
        for (const mf_json *v = row->child; v && j < 256; v = v->next) golden_logits[t * 256 + j++] = (float)v->number;
    }
    mf_json_free(&doc);
    free(text);
    return 0;
}


/* Victim choice on a hand-made store: 4 layers x 4 experts, 6 slots. */
static void test_policy_unit(void)
{
    static mf_image_header h;
    static mf_expert_store s;
    static mf_store_slot slots[6];
    static int32_t where[16];
    static uint32_t uses[16];
    static uint8_t hot[16], chosen[16];
    static mf_stats st;
    memset(&s, 0, sizeof s);
    h.n_layers = 4;
    h.n_experts = 4;
    h.top_k = 1;
    s.h = &h;
    s.slots = slots;
    s.n_slots = 6;
    s.where = where;
    s.uses = uses;
    s.hot = hot;
    s.chosen = chosen;
    s.stats = &st;
    s.epoch = 5;
    s.layer = 1; /* the current layer I = 1 of S = 4 */
    /* (layer, expert, uses, last_use) */
    static const int cfg[6][4] = {{0, 0, 9, 50}, {1, 1, 1, 10}, {2, 2, 2, 40},
                                  {3, 3, 6, 20}, {0, 1, 3, 30}, {2, 0, 1, 60}};
    for (int i = 0; i < 6; i++) {
        memset(&slots[i], 0, sizeof slots[i]);
        slots[i].layer = cfg[i][0];
        slots[i].expert = cfg[i][1];
        slots[i].state = MF_SLOT_READY;
        slots[i].last_use = (uint64_t)cfg[i][3];
        uses[cfg[i][0] * 4 + cfg[i][1]] = (uint32_t)cfg[i][2];
    }
    memset(hot, 0, sizeof hot);
    memset(chosen, 0, sizeof chosen);
    s.policy = MF_POLICY_LRU;
    CHECK(mf_policy_victim(&s, 0, 2, 0) == 1, "LRU: oldest (slot 1)");
    slots[1].pins = 1;
    CHECK(mf_policy_victim(&s, 0, 2, 0) == 3, "LRU skips a pinned slot");
    slots[1].pins = 0;
    slots[1].state = MF_SLOT_LOADING;
    CHECK(mf_policy_victim(&s, 0, 2, 0) == 3, "LRU skips a slot being read");
    slots[1].state = MF_SLOT_READY;
    hot[1 * 4 + 1] = 1;
    CHECK(mf_policy_victim(&s, 0, 2, 0) == 3, "LRU skips a hot-pinned expert");
    hot[1 * 4 + 1] = 0;
    chosen[1 * 4 + 1] = 1; /* chosen by the current layer, not used yet */
    CHECK(mf_policy_victim(&s, 0, 2, 0) == 3, "a chosen, unused expert of this layer is kept");
    CHECK(mf_policy_victim(&s, 0, 2, 1) == 3, "... and never evicted by a prediction");
    chosen[1 * 4 + 1] = 0;
    /* every slot protected (predictions not used yet): a prediction finds
     * no victim, a demand read takes the least recently used */
    for (int i = 0; i < 6; i++) slots[i].prefetched = 1;
    CHECK(mf_policy_victim(&s, 0, 2, 1) == -1, "a prediction never evicts another one");
    CHECK(mf_policy_victim(&s, 0, 2, 0) == 1, "demand: LRU among the protected (slot 1)");
    for (int i = 0; i < 6; i++) slots[i].prefetched = 0;
    s.policy = MF_POLICY_LFU;
    /* uses 1 at slots 1 and 5: tie broken by LRU -> slot 1 (last use 10) */
    CHECK(mf_policy_victim(&s, 0, 2, 0) == 1, "LFU: fewest uses, ties to LRU");
    s.policy = MF_POLICY_EDGEMOE;
    /* keep = (uses+1) / d, d = ((i - 1 - 1) mod 4) + 1: layer 2 -> 1, 3 -> 2, 0 -> 3, 1 -> 4 */
    double best = 1e30;
    int want = -1;
    for (int i = 0; i < 6; i++) {
        int d = ((cfg[i][0] - 2 + 8) % 4) + 1;
        double keep = (cfg[i][2] + 1.0) / d;
        if (keep < best) {
            best = keep;
            want = i;
        }
    }
    CHECK(want == 1 && mf_policy_victim(&s, 0, 2, 0) == want,
          "EdgeMoE: lowest f/d (slot %d, got %d)", want, mf_policy_victim(&s, 0, 2, 0));
    uses[1 * 4 + 1] = 20; /* now the layer just computed but frequent */
    best = 1e30;
    for (int i = 0; i < 6; i++) {
        int d = ((cfg[i][0] - 2 + 8) % 4) + 1;
        double keep = ((i == 1 ? 20 : cfg[i][2]) + 1.0) / d;
        if (keep < best) {
            best = keep;
            want = i;
        }
    }
    CHECK(want == 4 && mf_policy_victim(&s, 0, 2, 0) == want, "EdgeMoE after uses change (slot %d)",
          want);
    uses[1 * 4 + 1] = 1;
    /* Belady: future rows [token][layer][k=1]; now: token 0, layer 1. */
    static uint16_t fut[3][4] = {{0, 1, 2, 3}, {1, 0, 2, 3}, {0, 0, 0, 1}};
    s.policy = MF_POLICY_BELADY;
    s.future = &fut[0][0];
    s.future_n = 3;
    s.token = 0;
    s.n_chunk = 1;
    /* next uses (token*4+layer): (0,0)->? (2,0)=8; (1,1)->(2,3)=11? no: layer 1 rows: t0 1, t1 0, t2 0
     * -> (1,1) next after t0 = never; (2,2) t0 layer 2 = 2; (3,3) t0 = 3; (0,1): layer 0 rows t1=1 -> 4;
     * (2,0): layer 2 rows t2=0 -> 10; (0,0): layer 0 t2=0 -> 8 */
    CHECK(mf_belady_next_use(&s, 2, 2) == 2 && mf_belady_next_use(&s, 0, 1) == 4 &&
              mf_belady_next_use(&s, 2, 0) == 10 && mf_belady_next_use(&s, 1, 1) == UINT64_MAX,
          "Belady next uses");
    CHECK(mf_policy_victim(&s, 0, 2, 0) == 1, "Belady: never used again (slot 1)");
    slots[1].state = MF_SLOT_LOADING;
    CHECK(mf_policy_victim(&s, 0, 2, 0) == 5, "Belady: farthest next use (slot 5, at 10)");
    /* a prediction of (3,3)? it is held; predict (1,0): next use t1 layer 1 = 5 < 10: evicts */
    CHECK(mf_policy_victim(&s, 1, 0, 1) == 5, "Belady prediction evicts a later-needed expert");
    /* predict (1,2): never needed: nothing held is needed later -> refused */
    CHECK(mf_policy_victim(&s, 1, 2, 1) == -1, "Belady refuses a prediction needed last");
    slots[2].state = MF_SLOT_EMPTY;
    CHECK(mf_policy_victim(&s, 1, 2, 1) == 2, "an empty slot is always taken");
}

/* EdgeMoE with a predictor (approximate Belady) on a hand-made store:
 * victim = farthest expected next use d + S (1 - p) / q, computed here
 * independently; q = (uses + 8 k/E) / (chunks + 8), p = the predicted
 * probability for the layer's next run (q without one). */
static double exp_next(int layer, int I, double uses, double chunks, const float *lp,
                       const uint8_t *lv, int e)
{
    const int S = 4, E = 4, K = 1;
    int d = ((layer - I - 1 + 2 * S) % S) + 1;
    double q = (uses + 8.0 * K / E) / (chunks + 8.0);
    double p = lv[layer] ? lp[layer * E + e] : q;
    return d + S * (1.0 - p) / q;
}

static void test_predictive_unit(void)
{
    static mf_image_header h;
    static mf_expert_store s;
    static mf_store_slot slots[5];
    static int32_t where[16];
    static uint32_t uses[16];
    static uint8_t hot[16], chosen[16], lvalid[4];
    static float lprob[16];
    static mf_stats st;
    memset(&s, 0, sizeof s);
    h.n_layers = 4;
    h.n_experts = 4;
    h.top_k = 1;
    s.h = &h;
    s.slots = slots;
    s.n_slots = 5;
    s.where = where;
    s.uses = uses;
    s.hot = hot;
    s.chosen = chosen;
    s.stats = &st;
    s.lprob = lprob;
    s.lvalid = lvalid;
    s.epoch = 20;
    s.layer = 1;
    s.routed_cur = 1; /* layer 1 has routed: layer 2 is next */
    s.policy = MF_POLICY_EDGEMOE;
    s.predictor = MF_PREDICT_LOOKAHEAD;
    /* (layer, expert, uses) */
    static const int cfg[5][3] = {{2, 0, 2}, {2, 1, 12}, {3, 2, 6}, {0, 3, 9}, {1, 0, 4}};
    memset(hot, 0, sizeof hot);
    memset(chosen, 0, sizeof chosen);
    memset(lvalid, 0, sizeof lvalid);
    memset(lprob, 0, sizeof lprob);
    for (int i = 0; i < 5; i++) {
        memset(&slots[i], 0, sizeof slots[i]);
        slots[i].layer = cfg[i][0];
        slots[i].expert = cfg[i][1];
        slots[i].state = MF_SLOT_READY;
        slots[i].last_use = (uint64_t)(10 + i);
        uses[cfg[i][0] * 4 + cfg[i][1]] = (uint32_t)cfg[i][2];
    }
    for (int round = 0; round < 3; round++) {
        if (round == 1) { /* the lookahead says (2,0) is coming, (2,1) is not */
            lvalid[2] = 1;
            lprob[2 * 4 + 0] = 0.95f;
            lprob[2 * 4 + 1] = 0.01f;
        }
        if (round == 2) s.layer = 2; /* (2,x) just ran: d = S */
        int want = -1;
        double far = -1;
        for (int i = 0; i < 5; i++) {
            double d = exp_next(cfg[i][0], (int)s.layer, cfg[i][2], 20, lprob, lvalid, cfg[i][1]);
            CHECK(fabs(d - mf_policy_expected_next(&s, (uint32_t)cfg[i][0], (uint32_t)cfg[i][1])) <
                      1e-6 * d,
                  "expected next use of slot %d (round %d)", i, round);
            if (d > far) {
                far = d;
                want = i;
            }
        }
        CHECK(mf_policy_victim(&s, 0, 2, 0) == want, "predictive EdgeMoE: farthest expected next "
              "use (round %d: slot %d, got %d)", round, want, mf_policy_victim(&s, 0, 2, 0));
    }
    s.layer = 1;
    /* round 1's state: the victim is (1,0): 4 + 4 (1 - 6/28) / (6/28) = 18.7
     * ((2,1), predicted at p 0.01: 8.9). A prediction is admitted only when
     * the victim is expected later than the predicted expert. */
    CHECK(mf_policy_victim(&s, 0, 2, 0) == 4, "victim (1,0)");
    s.pf_prob = 0.9f; /* (2,3), next layer, p 0.9, q = 2/28: 1 + 4 * 0.1 / q = 6.6 */
    CHECK(mf_policy_victim(&s, 2, 3, 1) == 4, "a likely prediction evicts the far victim");
    s.pf_prob = 0.5f; /* (0,2): 3 + 4 * 0.5 / (2/28) = 31 */
    CHECK(mf_policy_victim(&s, 0, 2, 1) == -1,
          "a prediction expected later than every victim is refused");
    s.pf_prob = 0.0f; /* demand (not a prediction): never refused */
    CHECK(mf_policy_victim(&s, 0, 2, 1) == 4, "a demand read is not subject to admission");
    /* With decayed frequencies (ufreq / uweight) q comes from them instead. */
    static float uf[16], uw[4];
    for (int i = 0; i < 16; i++) uf[i] = (float)uses[i];
    for (int l = 0; l < 4; l++) uw[l] = 20.0f;
    s.ufreq = uf;
    s.uweight = uw;
    double d0 = exp_next(3, 1, 6, 20, lprob, lvalid, 2);
    CHECK(fabs(mf_policy_expected_next(&s, 3, 2) - d0) < 1e-6 * d0, "ufreq = uses: same q");
    uf[3 * 4 + 2] = 1.5f; /* decayed: (3,2) used 1.5 times over a weight of 20 */
    double d1 = exp_next(3, 1, 1.5, 20, lprob, lvalid, 2);
    CHECK(d1 > d0 && fabs(mf_policy_expected_next(&s, 3, 2) - d1) < 1e-6 * d1,
          "decayed frequency: expected next use %.3f (want %.3f)", mf_policy_expected_next(&s, 3, 2),
          d1);
    CHECK(mf_policy_victim(&s, 0, 2, 0) == 2, "the decayed expert (3,2) is now the victim");
}

/* Pinning picks the n most frequent experts of the profile, ties to the
 * lower index: recomputed here from the MF_SEC_PREDICTOR frequencies, with
 * n chosen so that the n-th and (n+1)-th hottest have the same count (the
 * tie rule decides). */
static void test_pin_ties(void)
{
    enum { PL = 4, PE = 16, PK = 2 };
    mf_mem_port_state ms;
    mf_port port;
    mf_mem_port_open(&port, &ms, img, img_len);
    mf_image_header h;
    uint8_t scratch[512];
    CHECK(mf_image_read_header(&port, &h, 1, scratch, sizeof scratch) == MF_OK, "pin: header");
    const mf_section *sec = mf_image_section(&h, MF_SEC_PREDICTOR);
    CHECK(sec && sec->offset + 32 + 4 * PL * PE <= img_len, "pin: profile section");
    if (!sec || sec->offset + 32 + 4 * PL * PE > img_len) return;
    uint32_t freq[PL * PE];
    for (int i = 0; i < PL * PE; i++) {
        const uint8_t *w = img + sec->offset + 32 + 4 * i;
        freq[i] = (uint32_t)w[0] | (uint32_t)w[1] << 8 | (uint32_t)w[2] << 16 | (uint32_t)w[3] << 24;
    }
    /* rank: descending frequency, ascending index */
    int order[PL * PE];
    for (int i = 0; i < PL * PE; i++) order[i] = i;
    for (int i = 1; i < PL * PE; i++)
        for (int j = i; j > 0 && (freq[order[j]] > freq[order[j - 1]] ||
                                  (freq[order[j]] == freq[order[j - 1]] && order[j] < order[j - 1]));
             j--) {
            int t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    int n = 0;
    for (int i = 1; i + PK < PL * PE && !n; i++)
        if (freq[order[i - 1]] == freq[order[i]]) n = i; /* pin i: the tie straddles the cut */
    CHECK(n > 0, "pin: the profile has two experts with equal counts");
    if (!n) return;
    mf_options o;
    mf_options_default(&o);
    o.expert_slots = PL * PE;
    o.pin_experts = (uint32_t)n;
    void *arena;
    mf_model *m;
    int rc = mf_test_model(&port, &o, &m, &arena);
    CHECK(rc == MF_OK && m, "pin: init (%d)", rc);
    if (rc == MF_OK && m) {
        uint8_t want[PL * PE] = {0};
        for (int i = 0; i < n; i++) want[order[i]] = 1;
        int bad = 0, pinned = 0;
        for (int i = 0; i < PL * PE; i++) {
            bad += (m->store.hot[i] != 0) != want[i];
            pinned += m->store.hot[i] != 0;
        }
        CHECK(bad == 0 && pinned == n, "pin %d: the hottest, ties to the lower index (%d differ)", n,
              bad);
    }
    free(arena);
}

int main(void)
{
    test_policy_unit();
    test_predictive_unit();
    img = mf_test_image("models/tiny-shakespeare-moe", "--weights f32",
                        "--text tests/data/tinyshakespeare.txt --max-tokens 3000 --slots 64",
                        &img_len, img_path);
    int rc = img ? 0 : 1;
    CHECK(img != NULL, "convert + profile the tiny model");
    CHECK(load_golden() == 0, "golden.json");
    if (rc || !img || !golden_logits) {
        unlink(img_path);
        return mf_test_done("test_cache");
    }
    const uint32_t V = 256, L = 4, E = 16, K = 2;
    float *ref = malloc(sizeof(float) * T * V), *got = malloc(sizeof(float) * T * V);
    static rec_t rec;
    rec.L = L;
    rec.k = K;

    /* Reference: all experts resident, LRU, no prediction, one token at a time. */
    mf_options opt;
    mf_options_default(&opt);
    opt.expert_slots = L * E;
    opt.prefill_batch = 1;
    result rr = run(PORT_MEM, &opt, 1, ref, &rec, NULL);
    CHECK(rr.rc == 0 && rec.n == T, "reference run (%d, %u tokens traced)", rr.rc, rec.n);
    double maxd = 0, maxl = 0;
    for (uint32_t i = 0; i < golden_T * V; i++) {
        maxd = fmax(maxd, fabs((double)ref[i] - golden_logits[i]));
        maxl = fmax(maxl, fabs((double)golden_logits[i]));
    }
    CHECK(maxd <= 1e-4 * maxl, "reference vs golden: max |d| %.3g (max |logit| %.3g)", maxd, maxl);

    /* Independent replay of the trace. */
    uint64_t lookups = 0, distinct_pairs = 0;
    uint8_t seen[4 * 16] = {0};
    for (uint32_t t = 0; t < T; t++)
        for (uint32_t l = 0; l < L; l++) {
            const uint16_t *row = rec.trace + ((size_t)t * L + l) * K;
            lookups += (row[0] != row[1]) ? 2 : 1;
            for (uint32_t j = 0; j < K; j++)
                if (!seen[l * E + row[j]]++) distinct_pairs++;
        }
    CHECK(rr.st.hits + rr.st.misses == lookups, "lookups %llu vs trace %llu",
          (unsigned long long)(rr.st.hits + rr.st.misses), (unsigned long long)lookups);
    CHECK(rr.st.misses == distinct_pairs, "all slots, LRU: misses %llu = distinct experts %llu",
          (unsigned long long)rr.st.misses, (unsigned long long)distinct_pairs);

    /* Every combination on the memory port (synchronous reads). */
    static const uint32_t slot_counts[] = {2, 5, 16, 64};
    uint64_t miss[4][5];
    int combos = 0, identical = 0;
    for (int si = 0; si < 4; si++)
        for (int pol = MF_POLICY_NONE; pol <= MF_POLICY_BELADY; pol++)
            for (int pred = MF_PREDICT_NONE; pred <= MF_PREDICT_ORACLE; pred++) {
                mf_options o;
                mf_options_default(&o);
                o.expert_slots = slot_counts[si];
                o.policy = pol;
                o.predictor = pred;
                o.prefill_batch = 1;
                int future = pol == MF_POLICY_BELADY || pred == MF_PREDICT_ORACLE;
                result r = run(PORT_MEM, &o, 1, got, NULL, future ? rec.trace : NULL);
                combos++;
                int same = r.rc == 0 && !memcmp(got, ref, sizeof(float) * T * V);
                identical += same;
                if (!same)
                    fprintf(stderr, "differs: slots %u policy %d predictor %d rc %d\n",
                            slot_counts[si], pol, pred, r.rc);
                if (pred == MF_PREDICT_NONE) {
                    miss[si][pol] = r.st.misses;
                    CHECK(r.st.hits + r.st.misses == lookups, "lookups (slots %u policy %d)",
                          slot_counts[si], pol);
                    if (pol == MF_POLICY_NONE)
                        CHECK(r.st.misses == lookups && r.st.hits == 0,
                              "none reads every chosen expert (slots %u: %llu misses)",
                              slot_counts[si], (unsigned long long)r.st.misses);
                } else {
                    CHECK(r.st.needed == lookups, "needed %llu", (unsigned long long)r.st.needed);
                    CHECK(r.st.predicted_needed <= r.st.needed &&
                              r.st.predicted_needed <= r.st.predicted &&
                              r.st.useful_prefetches <= r.st.prefetches,
                          "prediction counters (slots %u policy %d predictor %d)", slot_counts[si],
                          pol, pred);
                    if (pred == MF_PREDICT_LOOKAHEAD || pred == MF_PREDICT_COMBINED)
                        CHECK(r.st.predicted_needed * 2 >= r.st.needed,
                              "predictor %d recall %.2f below 0.5", pred,
                              (double)r.st.predicted_needed / (double)r.st.needed);
                    if (pred == MF_PREDICT_ORACLE)
                        CHECK(r.st.predicted_needed == r.st.needed &&
                                  r.st.predicted == r.st.needed,
                              "oracle (slots %u policy %d): predicted %llu, of them needed %llu, "
                              "needed %llu",
                              slot_counts[si], pol, (unsigned long long)r.st.predicted,
                              (unsigned long long)r.st.predicted_needed,
                              (unsigned long long)r.st.needed);
                    /* budget: at most 2k (combined) or k predicted per layer and token */
                    uint32_t per = pred == MF_PREDICT_COMBINED ? 2 * K : K;
                    CHECK(r.st.predicted <= (uint64_t)per * L * T, "predicted %llu > budget",
                          (unsigned long long)r.st.predicted);
                }
            }
    CHECK(identical == combos, "%d of %d slot/policy/predictor combinations bit-identical",
          identical, combos);
    for (int si = 0; si < 4; si++) {
        for (int pol = MF_POLICY_LRU; pol < MF_POLICY_BELADY; pol++)
            CHECK(miss[si][MF_POLICY_BELADY] <= miss[si][pol],
                  "slots %u: Belady %llu misses > policy %d's %llu", slot_counts[si],
                  (unsigned long long)miss[si][MF_POLICY_BELADY], pol,
                  (unsigned long long)miss[si][pol]);
        CHECK(miss[si][MF_POLICY_BELADY] >= distinct_pairs, "Belady below compulsory misses");
    }
    CHECK(miss[1][MF_POLICY_BELADY] < miss[1][MF_POLICY_LRU], "Belady beats LRU at 5 slots");

    /* The oracle's accuracy: at 0 every guess is an expert the layer does
     * not choose, at 0.5 about half are right; on the simulated flash its
     * right guesses are read ahead (as many as a perfect predictor can
     * have in flight), and the logits stay the same. */
    {
        static const float miss_rates[] = {1.0f, 0.5f, 0.0f};
        uint64_t useful[3] = {0, 0, 0};
        for (int i = 0; i < 3; i++) {
            mf_options o;
            mf_options_default(&o);
            o.expert_slots = 5;
            o.policy = MF_POLICY_EDGEMOE;
            o.predictor = MF_PREDICT_ORACLE;
            o.oracle_miss_rate = miss_rates[i];
            o.prefill_batch = 1;
            result r = run(PORT_SIM, &o, 1, got, NULL, rec.trace);
            CHECK(r.rc == 0 && !memcmp(got, ref, sizeof(float) * T * V),
                  "oracle miss rate %.1f: rc %d, logits %s", miss_rates[i], r.rc,
                  r.rc ? "-" : "differ");
            double recall = r.st.needed ? (double)r.st.predicted_needed / (double)r.st.needed : 0;
            if (i == 0) CHECK(r.st.predicted_needed == 0, "oracle always wrong: recall %.3f", recall);
            if (i == 1)
                CHECK(recall > 0.35 && recall < 0.65, "oracle half wrong: recall %.3f", recall);
            if (i == 2) CHECK(recall == 1.0, "oracle always right: recall %.3f", recall);
            useful[i] = r.st.useful_prefetches;
        }
        CHECK(useful[0] == 0 && useful[1] < useful[2],
              "useful prefetches grow with the oracle's accuracy: %llu %llu %llu",
              (unsigned long long)useful[0], (unsigned long long)useful[1],
              (unsigned long long)useful[2]);
    }

    /* Asynchronous ports, chunked feeding, pinning. */
    struct {
        int port;
        uint32_t slots, chunk;
        int pol, pred;
        uint32_t pin;
    } cases[] = {
        {PORT_SIM, 2, 1, MF_POLICY_LRU, MF_PREDICT_COMBINED, 0},
        {PORT_SIM, 5, 1, MF_POLICY_NONE, MF_PREDICT_NONE, 0},
        {PORT_SIM, 5, 1, MF_POLICY_LRU, MF_PREDICT_LOOKAHEAD, 0},
        {PORT_SIM, 5, 1, MF_POLICY_EDGEMOE, MF_PREDICT_COOC, 0},
        /* predictive EdgeMoE + prefetch admission with asynchronous reads */
        {PORT_SIM, 5, 1, MF_POLICY_EDGEMOE, MF_PREDICT_COMBINED, 0},
        {PORT_SIM, 8, 16, MF_POLICY_EDGEMOE, MF_PREDICT_LOOKAHEAD, 0},
        {PORT_SIM, 8, 1, MF_POLICY_BELADY, MF_PREDICT_COMBINED, 0},
        {PORT_SIM, 8, 16, MF_POLICY_LFU, MF_PREDICT_COMBINED, 0},
        {PORT_SIM, 16, 7, MF_POLICY_BELADY, MF_PREDICT_LOOKAHEAD, 0},
        {PORT_SIM, 8, 1, MF_POLICY_LRU, MF_PREDICT_COMBINED, 4},
        {PORT_MEM, 8, 1, MF_POLICY_LFU, MF_PREDICT_NONE, 6},
        {PORT_MEM, 3, 16, MF_POLICY_EDGEMOE, MF_PREDICT_COMBINED, 0},
        {PORT_FILE, 3, 1, MF_POLICY_LRU, MF_PREDICT_COMBINED, 0},
        {PORT_FILE, 16, 5, MF_POLICY_BELADY, MF_PREDICT_COMBINED, 2},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mf_options o;
        mf_options_default(&o);
        o.expert_slots = cases[i].slots;
        o.policy = cases[i].pol;
        o.predictor = cases[i].pred;
        o.pin_experts = cases[i].pin;
        o.prefill_batch = cases[i].chunk;
        memset(got, 0, sizeof(float) * T * V);
        result r = run(cases[i].port, &o, cases[i].chunk, got, NULL,
                       cases[i].pol == MF_POLICY_BELADY ? rec.trace : NULL);
        CHECK(r.rc == 0 && !memcmp(got, ref, sizeof(float) * T * V),
              "case %zu (port %d slots %u chunk %u policy %d predictor %d pin %u): rc %d, logits %s",
              i, cases[i].port, cases[i].slots, cases[i].chunk, cases[i].pol, cases[i].pred,
              cases[i].pin, r.rc, r.rc ? "-" : "differ");
        if (cases[i].port != PORT_MEM && cases[i].pred != MF_PREDICT_NONE)
            CHECK(r.st.prefetches > 0, "case %zu: prefetches were issued", i);
    }

    /* CRC accounting on synchronous reads (5 slots, LRU: experts are read
     * again): verify 0 checks nothing, 1 every byte read, 2 each expert's
     * first read only, i.e. the bytes of the distinct experts, which the
     * all-slots reference read exactly once each. */
    {
        result rv[3];
        for (int v = 0; v < 3; v++) {
            mf_options o;
            mf_options_default(&o);
            o.expert_slots = 5;
            o.policy = MF_POLICY_LRU;
            o.prefill_batch = 1;
            o.verify_experts = v;
            rv[v] = run(PORT_MEM, &o, 1, got, NULL, NULL);
            CHECK(rv[v].rc == 0 && rv[v].st.hits + rv[v].st.misses == lookups &&
                      rv[v].st.crc_failures == 0,
                  "verify %d: run (%d)", v, rv[v].rc);
        }
        CHECK(rv[0].st.crc_bytes == 0, "verify 0: %llu bytes checked",
              (unsigned long long)rv[0].st.crc_bytes);
        CHECK(rv[1].st.crc_bytes == rv[1].st.flash_bytes && rv[1].st.flash_bytes > rr.st.flash_bytes,
              "verify 1: every byte read is checked (%llu of %llu)",
              (unsigned long long)rv[1].st.crc_bytes, (unsigned long long)rv[1].st.flash_bytes);
        CHECK(rv[2].st.flash_bytes == rv[1].st.flash_bytes &&
                  rv[2].st.crc_bytes == rr.st.flash_bytes && rr.st.crc_bytes == rr.st.flash_bytes,
              "verify 2: each distinct expert checked once (%llu, distinct %llu)",
              (unsigned long long)rv[2].st.crc_bytes, (unsigned long long)rr.st.flash_bytes);
    }
    test_pin_ties();

    /* prefetch_min_prob: a candidate below it is never predicted, except
     * each token's likeliest. Co-occurrence scores are shares summing to 1
     * (the second likeliest <= 0.5), so at 0.99 exactly one expert per
     * layer and token is predicted. */
    {
        mf_options o;
        mf_options_default(&o);
        o.expert_slots = 5;
        o.policy = MF_POLICY_LRU;
        o.predictor = MF_PREDICT_COOC;
        o.prefill_batch = 1;
        o.prefetch_min_prob = 0.99f;
        result r = run(PORT_MEM, &o, 1, got, NULL, NULL);
        CHECK(r.rc == 0 && r.st.predicted == (uint64_t)L * T,
              "min prob 0.99: %llu predicted, want one per layer and token (%u)",
              (unsigned long long)r.st.predicted, L * T);
    }

    /* Pinning: needs room for top_k beside the pinned experts. */
    mf_options o;
    mf_options_default(&o);
    o.expert_slots = 4;
    o.pin_experts = 3;
    size_t bytes;
    mf_mem_port_state ms;
    mf_port mem;
    mf_mem_port_open(&mem, &ms, img, img_len);
    CHECK(mf_arena_bytes(&mem, &o, &bytes) == MF_E_ARG, "pin 3 of 4 slots with top_k 2 rejected");
    o.pin_experts = 0;
    o.policy = 7;
    CHECK(mf_arena_bytes(&mem, &o, &bytes) == MF_E_ARG, "unknown policy rejected");

    free(ref);
    free(got);
    free(golden_logits);
    free(img);
    unlink(img_path);
    return mf_test_done("test_cache");
}
