/*
 * Experts computed while their read streams in (store.h mf_store_stream,
 * port.h wait_part), on the tiny model:
 *  - logits bit-identical to an all-resident run, token by token, with
 *    streaming on and off, over the simulated mcu-qspi flash: f32 and
 *    q4/q8 images, int8 and f32 activations, one token per chunk and
 *    chunks of 8 (the down projection split in parts, or not);
 *  - streaming really happens (experts counted as streamed) and never with
 *    opt.no_stream;
 *  - it overlaps: with no predictor the same reads are made, the same
 *    compute is charged to the simulator, and the time spent waiting for
 *    flash is smaller;
 *  - flipped bits and read errors: a streamed expert whose read fails its
 *    check is computed again, the logits stay the reference's;
 *  - the POSIX file port (I/O thread) streams too, with the same logits.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../runtime/moeflash.h"
#include "../tools/lib/json.h"
#include "harness.h"
#include "image_fixture.h"
#include "port_fixture.h"

#define T 200
#define V 256
static uint32_t ids[T];

typedef struct {
    int rc;
    mf_stats st;
    uint64_t sim_bytes;
    double compute_ns; /* the simulator's charged compute */
} result;

enum { PORT_MEM = MF_TEST_PORT_MEM, PORT_SIM = MF_TEST_PORT_SIM, PORT_POSIX = MF_TEST_PORT_FILE };

static result run(const uint8_t *img, size_t len, const char *path, int kind,
                  const mf_sim_faults *faults, const mf_options *opt, float *out)
{
    result r;
    memset(&r, 0, sizeof r);
    mf_test_ports tp;
    if (mf_test_ports_open(&tp, kind, img, len, path, NULL) != MF_PORT_OK) {
        r.rc = MF_E_IO;
        return r;
    }
    const mf_port *port = tp.port;
    mf_sim_state *ss = &tp.ss;
    void *arena;
    mf_model *m;
    r.rc = mf_test_model(port, opt, &m, &arena);
    if (kind == PORT_SIM && faults) { /* from here on: the resident weights were read whole */
        ss->faults = *faults;
        ss->rng = faults->seed;
    }
    uint64_t b0 = kind == PORT_SIM ? ss->bytes : 0;
    uint32_t B = opt->prefill_batch ? opt->prefill_batch : 1;
    for (uint32_t t = 0; t < T && !r.rc; t += B) {
        uint32_t n = T - t < B ? T - t : B;
        for (int tries = 0; tries < 50; tries++) { /* a failed chunk is fed again */
            r.rc = mf_feed_all(m, ids + t, n, out + (size_t)t * V);
            if (!faults || (r.rc != MF_E_FLASH && r.rc != MF_E_CRC)) break;
        }
    }
    if (m) mf_get_stats(m, &r.st);
    if (kind == PORT_SIM) {
        r.sim_bytes = ss->bytes - b0;
        r.compute_ns = ss->compute_ns;
    }
    mf_test_ports_close(&tp);
    free(arena);
    return r;
}

static int same(const float *a, const float *b)
{
    return memcmp(a, b, sizeof(float) * T * V) == 0;
}

static void one_image(const char *name, const uint8_t *img, size_t len, const char *path)
{
    float *ref = malloc(sizeof(float) * T * V), *a = malloc(sizeof(float) * T * V),
          *b = malloc(sizeof(float) * T * V), *ref_f = malloc(sizeof(float) * T * V);
    mf_options opt;
    mf_options_default(&opt);
    opt.prefill_batch = 1;
    opt.expert_slots = 64;
    result rr = run(img, len, NULL, PORT_MEM, NULL, &opt, ref);
    CHECK(rr.rc == 0 && rr.st.streamed_experts == 0, "%s: all-resident reference (%d)", name, rr.rc);

    static const struct {
        uint32_t slots, batch;
        int policy, predictor, float_act, verify;
    } cases[] = {
        {4, 1, MF_POLICY_LFU, MF_PREDICT_NONE, 0, 2},
        {16, 1, MF_POLICY_EDGEMOE, MF_PREDICT_COMBINED, 0, 2},
        {4, 1, MF_POLICY_NONE, MF_PREDICT_NONE, 1, 2},
        {8, 8, MF_POLICY_LFU, MF_PREDICT_LOOKAHEAD, 0, 2},
        {8, 1, MF_POLICY_LFU, MF_PREDICT_NONE, 0, 1}, /* every read checked, part by part */
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        mf_options_default(&opt);
        opt.expert_slots = cases[c].slots;
        opt.prefill_batch = cases[c].batch;
        opt.policy = cases[c].policy;
        opt.predictor = cases[c].predictor;
        opt.float_activations = cases[c].float_act;
        opt.verify_experts = cases[c].verify;
        float *want = ref;
        if (opt.float_activations) { /* another reference: f32 activations */
            mf_options ro = opt;
            ro.expert_slots = 64;
            ro.prefill_batch = 1;
            result rf = run(img, len, NULL, PORT_MEM, NULL, &ro, b);
            CHECK(rf.rc == 0, "%s case %zu: its reference", name, c);
            memcpy(ref_f, b, sizeof(float) * T * V);
            want = ref_f;
        }
        opt.no_stream = 0;
        result ra = run(img, len, NULL, PORT_SIM, NULL, &opt, a);
        opt.no_stream = 1;
        result rb = run(img, len, NULL, PORT_SIM, NULL, &opt, b);
        CHECK(ra.rc == 0 && rb.rc == 0, "%s case %zu: runs (%d, %d)", name, c, ra.rc, rb.rc);
        CHECK(same(a, want), "%s case %zu, streaming: logits == reference", name, c);
        CHECK(same(b, want), "%s case %zu, no streaming: logits == reference", name, c);
        CHECK(ra.st.streamed_experts > 0 && ra.st.stream_redone == 0 && ra.st.crc_failures == 0,
              "%s case %zu: experts computed as they streamed in (%llu), none redone, no CRC "
              "failure (%llu)", name, c, (unsigned long long)ra.st.streamed_experts,
              (unsigned long long)ra.st.crc_failures);
        CHECK(ra.st.crc_bytes == rb.st.crc_bytes || cases[c].predictor != MF_PREDICT_NONE,
              "%s case %zu: the same bytes checked, streamed or not (%llu, %llu)", name, c,
              (unsigned long long)ra.st.crc_bytes, (unsigned long long)rb.st.crc_bytes);
        CHECK(rb.st.streamed_experts == 0, "%s case %zu: opt.no_stream streams nothing", name, c);
        CHECK(ra.st.flash_bytes == ra.sim_bytes, "%s case %zu: bytes counted == bytes moved", name,
              c);
        if (cases[c].predictor == MF_PREDICT_NONE)
            CHECK(fabs(ra.compute_ns - rb.compute_ns) <= 1e-9 * rb.compute_ns,
                  "%s case %zu: the same compute charged, streamed or not (%.0f vs %.0f ns)", name, c,
                  ra.compute_ns, rb.compute_ns);
        if (cases[c].predictor == MF_PREDICT_NONE)
            CHECK(ra.st.flash_bytes == rb.st.flash_bytes && ra.st.misses == rb.st.misses &&
                      ra.st.stall_ns < rb.st.stall_ns,
                  "%s case %zu: same reads, less stall (%llu vs %llu ns)", name, c,
                  (unsigned long long)ra.st.stall_ns, (unsigned long long)rb.st.stall_ns);
    }

    /* Faults: every read CRC-checked; a failed streamed expert is redone. */
    mf_options_default(&opt);
    opt.prefill_batch = 1;
    opt.expert_slots = 4;
    opt.verify_experts = 1;
    opt.max_retries = 4;
    mf_sim_faults f;
    memset(&f, 0, sizeof f);
    f.seed = 7;
    f.bitflip_rate = 0.1;
    f.eio_rate = 0.05;
    result rf = run(img, len, NULL, PORT_SIM, &f, &opt, a);
    CHECK(rf.rc == 0 && same(a, ref), "%s: flipped bits and read errors: logits == reference (%d)",
          name, rf.rc);
    CHECK(rf.st.stream_redone > 0 && rf.st.streamed_experts > 0 && rf.st.crc_failures > 0,
          "%s: faulty streamed experts computed again (%llu redone, %llu streamed, %llu CRC failures)",
          name, (unsigned long long)rf.st.stream_redone, (unsigned long long)rf.st.streamed_experts,
          (unsigned long long)rf.st.crc_failures);

    if (path) { /* the I/O thread's reads, part by part */
        mf_options_default(&opt);
        opt.prefill_batch = 1;
        opt.expert_slots = 4;
        result rp = run(img, len, path, PORT_POSIX, NULL, &opt, a);
        CHECK(rp.rc == 0 && same(a, ref) && rp.st.streamed_experts > 0,
              "%s: POSIX port streams, logits == reference (%d, %llu streamed)", name, rp.rc,
              (unsigned long long)rp.st.streamed_experts);
    }
    free(ref);
    free(ref_f);
    free(a);
    free(b);
}

int main(void)
{
    size_t tlen;
    char *text = mf_read_file("tests/data/tinyshakespeare.txt", &tlen);
    CHECK(text && tlen > 200000 + T, "text");
    if (!text || tlen <= 200000 + T) return mf_test_done("test_stream");
    for (uint32_t t = 0; t < T; t++) ids[t] = (uint8_t)text[200000 + t];
    free(text);

    static const struct {
        const char *name, *flags;
    } images[] = {{"f32", "--weights f32"}, {"q4/q8", "--experts q4 --resident q8"}};
    for (int i = 0; i < 2; i++) {
        char path[64];
        size_t len;
        uint8_t *img = mf_test_image("models/tiny-shakespeare-moe", images[i].flags,
                                     "--text tests/data/tinyshakespeare.txt --max-tokens 3000 --slots 64",
                                     &len, path);
        CHECK(img != NULL, "%s: convert + profile the tiny model", images[i].name);
        if (!img) continue;
        one_image(images[i].name, img, len, i == 0 ? path : NULL);
        unlink(path);
        free(img);
    }
    return mf_test_done("test_stream");
}
