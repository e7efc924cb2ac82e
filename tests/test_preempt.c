/*
 * Demand reads overtaking speculative ones (store.h, port.h `cancel`), on
 * the tiny model over the simulated mcu-qspi flash:
 *  - logits bit-identical with and without preemption, and to an
 *    all-resident run, token by token over 300 tokens of text;
 *  - preemption really happens (speculative reads paused, the simulator
 *    saw cancels) and never with --no-preempt;
 *  - every byte the runtime counts as read is a byte the simulated device
 *    transferred (paused and abandoned reads count the part they moved);
 *  - the store driven by hand (test_store_unit): paused reads resume the
 *    soonest-needed layer first, a chosen prediction in flight is never
 *    paused, a used chosen expert is an ordinary LRU victim, a full queue of
 *    finished reads is reaped before a prediction, the bus admission rule
 *    p * min(R, W) > (1 - p) * R, and published probabilities merge by max.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../experts/store.h"
#include "../port/sim/sim_port.h"
#include "../runtime/image.h"
#include "../runtime/moeflash.h"
#include "../tools/lib/json.h"
#include "harness.h"
#include "store_fixture.h"
#include "image_fixture.h"

#define T 300
static uint8_t *img;
static size_t img_len;
static uint32_t ids[T];

typedef struct {
    int rc;
    mf_stats st;
    uint64_t sim_bytes, sim_cancels;
} result;

static result run(int sim, const mf_options *opt, float *out)
{
    result r;
    memset(&r, 0, sizeof r);
    mf_mem_port_state ms;
    mf_port mem, sp;
    mf_sim_state ss;
    mf_mem_port_open(&mem, &ms, img, img_len);
    const mf_port *port = &mem;
    if (sim) {
        mf_sim_port_open(&sp, &ss, &mem, mf_sim_profile_find("mcu-qspi"), NULL);
        port = &sp;
    }
    void *arena;
    mf_model *m;
    r.rc = mf_test_model(port, opt, &m, &arena);
    uint64_t b0 = sim ? ss.bytes : 0;
    for (uint32_t t = 0; t < T && !r.rc; t++) r.rc = mf_feed_all(m, ids + t, 1, out + (size_t)t * 256);
    if (m) mf_get_stats(m, &r.st);
    if (sim) {
        r.sim_bytes = ss.bytes - b0;
        r.sim_cancels = ss.cancels;
    }
    free(arena);
    return r;
}

/* The store on its own, over the simulated mcu-qspi flash with 2 requests
 * in flight, 4 slots, LRU, no predictor: the calls the forward pass makes,
 * by hand. The image's header is read through the memory port. */
typedef struct {
    mf_mem_port_state ms;
    mf_port mem, sp;
    mf_sim_state ss;
    mf_image_header h;
    mf_expert_store s;
    mf_stats st;
    void *arena;
} unit_store;

static int unit_open(unit_store *u, uint32_t slots, int predictor)
{
    memset(u, 0, sizeof *u);
    mf_mem_port_open(&u->mem, &u->ms, img, img_len);
    mf_sim_profile pr = *mf_sim_profile_find("mcu-qspi");
    pr.queue_depth = 2;
    if (mf_sim_port_open(&u->sp, &u->ss, &u->mem, &pr, NULL) != MF_PORT_OK) return -1;
    mf_options o;
    mf_options_default(&o);
    o.expert_slots = slots;
    o.policy = MF_POLICY_LRU;
    o.predictor = predictor;
    return mf_test_store_open(&u->mem, &u->sp, &o, &u->h, &u->s, &u->st, &u->arena);
}

static const mf_store_slot *unit_slot(const unit_store *u, uint32_t layer, uint32_t expert)
{
    int32_t w = u->s.where[(size_t)layer * u->h.n_experts + expert];
    return w >= 0 ? &u->s.slots[w] : NULL;
}

static void test_store_unit(void)
{
    static unit_store u;
    CHECK(unit_open(&u, 4, MF_PREDICT_NONE) == 0 && u.s.preempt && u.s.queue_depth == 2, "unit store");
    if (!u.arena || !u.s.preempt) {
        free(u.arena);
        return;
    }
    /* Layer 0 is next. Predictions for layers 3 and 2 are in flight (3's
     * issued first); layer 0 routes to expert 7, which no slot holds: its
     * demand read overtakes both (paused, nothing moved yet), and the one
     * free place in the queue goes to the soonest needed, layer 2 (1 layer
     * away from layer 0's end, layer 3 2 away). */
    mf_store_chunk_start(&u.s, 1);
    CHECK(mf_store_prefetch(&u.s, 3, 5) == 1 && mf_store_prefetch(&u.s, 2, 5) == 1,
          "two predictions in flight");
    uint8_t chosen[16] = {0};
    chosen[7] = 1;
    mf_store_routed(&u.s, 0, chosen);
    const mf_store_slot *d = unit_slot(&u, 0, 7), *p2 = unit_slot(&u, 2, 5), *p3 = unit_slot(&u, 3, 5);
    CHECK(d && d->state == MF_SLOT_LOADING && d->ticket >= 0 && d->demand, "demand read started");
    CHECK(u.st.paused_reads == 2 && u.ss.cancels == 2, "both predictions paused (%llu, %llu cancels)",
          (unsigned long long)u.st.paused_reads, (unsigned long long)u.ss.cancels);
    CHECK(p2 && p2->state == MF_SLOT_LOADING && p2->ticket >= 0,
          "layer 2's prediction resumed first (soonest needed)");
    CHECK(p3 && p3->state == MF_SLOT_LOADING && p3->ticket < 0 &&
              mf_store_ready_key(&u.s, 3, 5) == UINT64_MAX - 1u,
          "layer 3's waits, paused, for a place in the queue");
    mf_store_drain(&u.s);
    CHECK(d->state == MF_SLOT_READY && p2->state == MF_SLOT_READY && p3->state == MF_SLOT_READY,
          "drained: all three read");
    /* A prediction of the layer that now routes to it is needed at once:
     * a demand read never pauses it. */
    mf_store_chunk_start(&u.s, 1);
    uint64_t paused0 = u.st.paused_reads, cancels0 = u.ss.cancels;
    CHECK(mf_store_prefetch(&u.s, 0, 9) == 1, "prediction (0, 9) in flight");
    memset(chosen, 0, sizeof chosen);
    chosen[9] = 1;
    chosen[7] = 1;
    mf_store_routed(&u.s, 0, chosen);
    CHECK(u.st.paused_reads == paused0 && u.ss.cancels == cancels0,
          "a chosen prediction in flight is not paused (%llu paused, %llu cancels)",
          (unsigned long long)(u.st.paused_reads - paused0),
          (unsigned long long)(u.ss.cancels - cancels0));
    mf_store_drain(&u.s);
    free(u.arena);

    /* Policy: an expert the current layer chose is kept only until used.
     * (0, 1) is read on demand and used, then (1, 2..4) are used: (0, 1) is
     * the least recently used and goes first for (2, 0). */
    CHECK(unit_open(&u, 4, MF_PREDICT_NONE) == 0, "unit store again");
    if (!u.arena) return;
    mf_store_chunk_start(&u.s, 1);
    memset(chosen, 0, sizeof chosen);
    chosen[1] = 1;
    mf_store_routed(&u.s, 0, chosen);
    const uint8_t *blob;
    int enc, ok = 1;
    ok &= mf_store_get(&u.s, 0, 1, &blob, &enc) == MF_OK;
    mf_store_release(&u.s, 0, 1);
    for (uint32_t e = 2; e <= 4; e++) {
        ok &= mf_store_get(&u.s, 1, e, &blob, &enc) == MF_OK;
        mf_store_release(&u.s, 1, e);
    }
    ok &= mf_store_get(&u.s, 2, 0, &blob, &enc) == MF_OK;
    mf_store_release(&u.s, 2, 0);
    CHECK(ok && u.st.misses == 5 && u.st.hits == 0, "five reads (%llu misses)",
          (unsigned long long)u.st.misses);
    CHECK(!unit_slot(&u, 0, 1) && unit_slot(&u, 1, 2) && unit_slot(&u, 1, 3) && unit_slot(&u, 1, 4),
          "the used chosen expert (0, 1) was the LRU victim");
    /* A full queue whose reads the port has finished is no obstacle to a
     * prediction: they are completed first. */
    CHECK(mf_store_prefetch(&u.s, 3, 0) == 1 && mf_store_prefetch(&u.s, 3, 1) == 1 &&
              u.s.inflight == 2,
          "queue full (2 in flight)");
    for (int i = 0; i < 100000 && u.ss.now_ns <= u.ss.bus_free_ns; i++)
        mf_port_charge(&u.sp, MF_WORK_OTHER, 0, 1u << 16);
    CHECK(u.ss.now_ns > u.ss.bus_free_ns, "compute outlasted both reads");
    CHECK(mf_store_prefetch(&u.s, 3, 2) == 1, "a third prediction starts once they are done");
    mf_store_drain(&u.s);
    free(u.arena);

    /* With a predictor (LRU + lookahead): a speculative read of R ns with
     * probability p is started only when p * min(R, W) > (1 - p) * R, W the
     * compute window measured (here set by hand, after a layer's end). */
    CHECK(unit_open(&u, 4, MF_PREDICT_LOOKAHEAD) == 0 && u.s.lprob, "unit store, lookahead");
    if (!u.arena) return;
    mf_store_chunk_start(&u.s, 1);
    u.s.ns_per_byte = 10.0;
    double R = (double)u.s.dir[1 * u.h.n_experts + 0].bytes * 10.0;
    static const struct {
        double w; /* W / R */
        float p;
        int admit;
    } adm[] = {{0.25, 0.7f, 0}, {4.0, 0.4f, 0}, {4.0, 0.7f, 1}, {0.5, 0.8f, 1}, {0.5, 0.6f, 0}};
    for (uint32_t i = 0; i < sizeof adm / sizeof adm[0]; i++) {
        u.s.w_done = adm[i].w * R;
        int got = mf_store_prefetch_p(&u.s, 1, i, adm[i].p);
        CHECK(got == (adm[i].admit ? 1 : -1), "W = %.2f R, p = %.1f: %s (got %d)", adm[i].w,
              (double)adm[i].p, adm[i].admit ? "admitted" : "refused", got);
        mf_store_drain(&u.s);
    }
    /* The layer's published probabilities merge by maximum. */
    float pa[16], pb[16];
    for (uint32_t e = 0; e < 16; e++) {
        pa[e] = (float)e / 16.0f;
        pb[e] = (float)(15 - e) / 16.0f;
    }
    mf_store_set_probs(&u.s, 2, pa);
    mf_store_set_probs(&u.s, 2, pb);
    int bad = 0;
    for (uint32_t e = 0; e < 16; e++)
        bad += u.s.lprob[2 * 16 + e] != (pa[e] > pb[e] ? pa[e] : pb[e]);
    CHECK(u.s.lvalid[2] && bad == 0, "probabilities merged by max (%d differ)", bad);
    free(u.arena);
}

int main(void)
{
    img = mf_test_image("models/tiny-shakespeare-moe", "--weights f32",
                        "--text tests/data/tinyshakespeare.txt --max-tokens 3000 --slots 64",
                        &img_len, NULL);
    int rc = img ? 0 : 1;
    CHECK(rc == 0, "convert + profile the tiny model");
    size_t tlen;
    char *text = mf_read_file("tests/data/tinyshakespeare.txt", &tlen);
    CHECK(img && text && tlen > 200000 + T, "image and text");
    if (rc || !img || !text || tlen <= 200000 + T) return mf_test_done("test_preempt");
    for (uint32_t t = 0; t < T; t++) ids[t] = (uint8_t)text[200000 + t];
    test_store_unit();
    free(text);

    float *ref = malloc(sizeof(float) * T * 256), *a = malloc(sizeof(float) * T * 256),
          *b = malloc(sizeof(float) * T * 256);
    mf_options opt;
    mf_options_default(&opt);
    opt.prefill_batch = 1;
    opt.expert_slots = 64;
    result rr = run(0, &opt, ref);
    CHECK(rr.rc == 0, "all-resident reference (%d)", rr.rc);

    static const uint32_t slots[] = {4, 16};
    for (int i = 0; i < 2; i++) {
        opt.expert_slots = slots[i];
        opt.policy = MF_POLICY_EDGEMOE;
        opt.predictor = MF_PREDICT_COMBINED;
        opt.no_preempt = 0;
        result ra = run(1, &opt, a);
        opt.no_preempt = 1;
        result rb = run(1, &opt, b);
        CHECK(ra.rc == 0 && rb.rc == 0, "%u slots: runs (%d, %d)", slots[i], ra.rc, rb.rc);
        CHECK(memcmp(a, ref, sizeof(float) * T * 256) == 0, "%u slots, preempt: logits == reference",
              slots[i]);
        CHECK(memcmp(b, ref, sizeof(float) * T * 256) == 0,
              "%u slots, no preempt: logits == reference", slots[i]);
        CHECK(ra.st.paused_reads > 0 && ra.sim_cancels > 0,
              "%u slots: demand reads overtook speculative ones (%llu paused, %llu cancels)",
              slots[i], (unsigned long long)ra.st.paused_reads,
              (unsigned long long)ra.sim_cancels);
        CHECK(rb.st.paused_reads == 0 && rb.sim_cancels == 0, "%u slots: --no-preempt never cancels",
              slots[i]);
        CHECK(ra.st.flash_bytes == ra.sim_bytes && rb.st.flash_bytes == rb.sim_bytes,
              "%u slots: bytes counted == bytes the device moved (%llu/%llu, %llu/%llu)", slots[i],
              (unsigned long long)ra.st.flash_bytes, (unsigned long long)ra.sim_bytes,
              (unsigned long long)rb.st.flash_bytes, (unsigned long long)rb.sim_bytes);
    }
    free(ref);
    free(a);
    free(b);
    free(img);
    return mf_test_done("test_preempt");
}
