/*
 * Demand reads overtaking speculative ones (store.h, port.h `cancel`), on
 * the tiny model over the simulated mcu-qspi flash:
 *  - logits bit-identical with and without preemption, and to an
 *    all-resident run, token by token over 300 tokens of text;
 *  - preemption really happens (speculative reads paused, the simulator
 *    saw cancels) and never with --no-preempt;
 *  - every byte the runtime counts as read is a byte the simulated device
 *    transferred (paused and abandoned reads count the part they moved).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../port/sim/sim_port.h"
#include "../runtime/moeflash.h"
#include "../tools/lib/json.h"
#include "harness.h"
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
