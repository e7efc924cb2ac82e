/*
 * Flash faults (issue 6 item 2) on arch-mixtral: 10,000 tokens under each
 * fault kind of the simulated flash (read errors, short reads, timeouts,
 * flipped bits; seeded), with asynchronous prefetch (combined predictor),
 * few slots (reads all the time), 2 retries, CRC on every read for the
 * bit-flip run (on first read for the others: their faults are reported by
 * the port). Checks:
 *  - every call either completes with logits bit-identical to a fault-free
 *    run in lockstep, or fails with MF_E_FLASH / MF_E_CRC, the position not
 *    advanced and no logits exposed; feeding the same token again works;
 *  - every fault the simulator injected was detected by the runtime
 *    (flash_errors + crc_failures = injected, minus those still in flight);
 *  - each kind really exercised the failure path (some tokens failed).
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

#ifndef N_TOKENS
#define N_TOKENS 10000u
#endif
#define WINDOW 100u

static uint8_t *img;
static size_t img_len;

static mf_model *open_model(const mf_port *port, const mf_options *opt, void **arena)
{
    mf_model *m;
    (void)mf_test_model(port, opt, &m, arena);
    return m;
}

static void run_kind(int kind, const uint32_t *ids, const float *ref_logits)
{
    static const char *names[] = {"", "read error", "short read", "timeout", "bit flip"};
    mf_mem_port_state ms;
    mf_port mem, sim;
    mf_sim_state ss;
    mf_mem_port_open(&mem, &ms, img, img_len);
    mf_sim_port_open(&sim, &ss, &mem, mf_sim_profile_find("mcu-qspi"), NULL);

    mf_options fo;
    mf_options_default(&fo);
    fo.expert_slots = 8;
    fo.policy = MF_POLICY_LRU;
    fo.predictor = MF_PREDICT_COMBINED;
    /* CRC on every read where bits flip; elsewhere the port reports the
     * fault itself, and CRC on first read keeps the test fast */
    fo.verify_experts = kind == 4 ? 1 : 2;
    fo.max_retries = 2;
    void *fa = NULL;
    mf_model *m = open_model(&sim, &fo, &fa);
    CHECK(m != NULL, "%s: init", names[kind]);
    if (!m) goto out;

    /* Faults from now on (the resident weights were read fault-free). */
    mf_sim_faults f;
    memset(&f, 0, sizeof f);
    f.seed = 1000u + (uint64_t)kind;
    double rate = 0.15;
    if (kind == 1) f.eio_rate = rate;
    if (kind == 2) f.short_rate = rate;
    if (kind == 3) f.timeout_rate = rate;
    if (kind == 4) f.bitflip_rate = rate;
    ss.faults = f;
    ss.rng = f.seed;

    uint32_t V = mf_vocab_size(m);
    uint64_t failures = 0, bad_code = 0, moved = 0, exposed = 0, mismatches = 0, stuck = 0;
    uint32_t completed = 0;
    for (uint32_t t = 0; t < N_TOKENS; t++) {
        if (t % WINDOW == 0) mf_reset(m);
        int rc, tries = 0;
        for (;;) {
            uint32_t pos = mf_position(m);
            rc = mf_feed(m, ids + t, 1);
            if (rc == MF_OK) break;
            failures++;
            if (rc != MF_E_FLASH && rc != MF_E_CRC && !bad_code++)
                fprintf(stderr, "%s: token %u failed with %d (%s)\n", names[kind], t, rc,
                        mf_strerror(rc));
            if (mf_position(m) != pos) moved++;
            if (mf_logits(m) != NULL) exposed++;
            if (++tries > 100) break;
        }
        if (rc != MF_OK) {
            stuck++;
            break;
        }
        completed++;
        if (memcmp(mf_logits(m), ref_logits + (size_t)t * V, sizeof(float) * V)) mismatches++;
    }
    mf_stats st;
    mf_get_stats(m, &st);
    uint64_t injected = ss.faults_eio + ss.faults_short + ss.faults_timeout + ss.faults_bitflip;
    uint64_t pending = 0;
    for (int i = 0; i < MF_SIM_MAX_QUEUE; i++)
        if (ss.req[i].held && ss.req[i].fault != MF_SIM_FAULT_NONE) pending++;
    uint64_t detected = st.flash_errors + st.crc_failures;
    printf("%-10s: %u tokens, %llu reads, %llu faults injected, %llu detected (+%llu in flight), "
           "%llu retries, %llu tokens failed and were fed again\n",
           names[kind], completed, (unsigned long long)ss.reads, (unsigned long long)injected,
           (unsigned long long)detected, (unsigned long long)pending,
           (unsigned long long)st.retries, (unsigned long long)failures);
    CHECK(completed == N_TOKENS && !stuck, "%s: %u of %u tokens completed", names[kind], completed,
          N_TOKENS);
    CHECK(mismatches == 0, "%s: %llu completed tokens with logits different from the fault-free run",
          names[kind], (unsigned long long)mismatches);
    CHECK(bad_code == 0, "%s: %llu failures with another code than MF_E_FLASH/MF_E_CRC", names[kind],
          (unsigned long long)bad_code);
    CHECK(moved == 0 && exposed == 0, "%s: a failed token moved the position (%llu) or left logits (%llu)",
          names[kind], (unsigned long long)moved, (unsigned long long)exposed);
    CHECK(failures > 0, "%s: no token failed: the failure path was not exercised", names[kind]);
    CHECK(injected > 1000, "%s: only %llu faults injected", names[kind], (unsigned long long)injected);
    CHECK(detected + pending == injected, "%s: %llu faults injected, %llu detected, %llu in flight",
          names[kind], (unsigned long long)injected, (unsigned long long)detected,
          (unsigned long long)pending);
    if (kind == 4)
        CHECK(st.crc_failures == ss.faults_bitflip, "every flipped bit caught by the CRC");
out:
    free(fa);
}

int main(void)
{
    img = mf_test_image("tests/data/arch-mixtral", "--weights f32", NULL, &img_len, NULL);
    int rc = img ? 0 : 1;
    CHECK(rc == 0, "convert arch-mixtral");
    size_t tlen;
    char *text = mf_read_file("tests/data/tinyshakespeare.txt", &tlen);
    CHECK(img && text && tlen > N_TOKENS, "inputs");
    if (rc || !img || !text || tlen <= N_TOKENS) return mf_test_done("test_faults");
    uint32_t *ids = malloc(sizeof(uint32_t) * N_TOKENS);
    for (uint32_t i = 0; i < N_TOKENS; i++) ids[i] = (uint8_t)text[i];
    /* The fault-free run: all experts in RAM, memory port. */
    float *ref = malloc(sizeof(float) * 256 * N_TOKENS);
    mf_mem_port_state ms;
    mf_port mem;
    mf_mem_port_open(&mem, &ms, img, img_len);
    mf_options ro;
    mf_options_default(&ro);
    ro.expert_slots = 16;
    void *ra = NULL;
    mf_model *rm = open_model(&mem, &ro, &ra);
    CHECK(rm && mf_vocab_size(rm) == 256, "reference model");
    if (!rm) return mf_test_done("test_faults");
    int ok = 1;
    for (uint32_t t = 0; t < N_TOKENS && ok; t++) {
        if (t % WINDOW == 0) mf_reset(rm);
        ok = mf_feed(rm, ids + t, 1) == MF_OK;
        if (ok) memcpy(ref + (size_t)t * 256, mf_logits(rm), sizeof(float) * 256);
    }
    CHECK(ok, "reference run");
    free(ra);
    for (int kind = 1; kind <= 4 && ok; kind++) run_kind(kind, ids, ref);
    free(ref);
    free(ids);
    free(text);
    free(img);
    return mf_test_done("test_faults");
}
