/*
 * Dual precision on a simulated flash (make quant-fallback):
 *   build/bench/quant_fallback IMG TEXT PROFILE SLOTS WINDOWS THRESHOLD_MS...
 * IMG must carry fallback copies (convert --fallback q2). The validation
 * split of TEXT (from int(0.9 len)) is fed one token at a time (decode-like:
 * prefill_batch 1), WINDOWS windows of 256 from an empty context, through
 * the sim port PROFILE with SLOTS expert slots (LRU), for each threshold
 * (0 = never fall back). Prints CSV: profile, slots, threshold_ms, tokens,
 * misses, fallback_reads, stall_ms_per_token, flash_kb_per_token, bits/byte.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../port/posix/posix_port.h"
#include "../../port/sim/sim_port.h"
#include "../../runtime/moeflash.h"
#include "../../tools/lib/sensitivity.h"

int main(int argc, char **argv)
{
    if (argc < 7) {
        fprintf(stderr, "usage: quant_fallback IMG TEXT PROFILE SLOTS WINDOWS THRESHOLD_MS...\n");
        return 2;
    }
    size_t len;
    unsigned char *text = mf_sens_read_file(argv[2], &len);
    const mf_sim_profile *prof = mf_sim_profile_find(argv[3]);
    uint32_t slots = (uint32_t)atoi(argv[4]), windows = (uint32_t)atoi(argv[5]);
    if (!text || !prof) {
        fprintf(stderr, "quant_fallback: bad text or profile\n");
        return 1;
    }
    size_t split = (size_t)((double)len * 0.9);
    printf("profile,slots,threshold_ms,tokens,misses,fallback_reads,stall_ms_per_token,"
           "flash_kb_per_token,val_bits_per_byte\n");
    static uint32_t tok[256];
    static float logits[256 * 256];
    for (int a = 6; a < argc; a++) {
        double thr_ms = atof(argv[a]);
        mf_port fp, sim;
        mf_posix_port_state ps;
        mf_sim_state ss;
        if (mf_posix_port_open(&fp, &ps, argv[1]) != MF_PORT_OK) return 1;
        mf_sim_port_open(&sim, &ss, &fp, prof, NULL);
        mf_options o;
        mf_options_default(&o);
        o.context_len = 256;
        o.prefill_batch = 1;
        o.expert_slots = slots;
        o.fallback_stall_ns = (uint64_t)(thr_ms * 1e6);
        size_t bytes;
        mf_model *m;
        void *arena = NULL;
        if (mf_arena_bytes(&sim, &o, &bytes) || !(arena = malloc(bytes)) ||
            mf_init(&m, &sim, &o, arena, bytes)) {
            fprintf(stderr, "quant_fallback: init failed\n");
            return 1;
        }
        double nats = 0;
        uint64_t n = 0;
        for (uint32_t w = 0; w < windows && split + (w + 1) * 256 <= len; w++) {
            for (int i = 0; i < 256; i++) tok[i] = text[split + (size_t)w * 256 + i];
            mf_reset(m);
            if (mf_feed_all(m, tok, 256, logits)) return 1;
            for (int i = 0; i + 1 < 256; i++) {
                const float *l = logits + (size_t)i * 256;
                double mx = l[0], s = 0;
                for (int j = 1; j < 256; j++) mx = l[j] > mx ? l[j] : mx;
                for (int j = 0; j < 256; j++) s += exp((double)l[j] - mx);
                nats += mx + log(s) - l[tok[i + 1]];
                n++;
            }
        }
        mf_stats st;
        mf_get_stats(m, &st);
        double toks = (double)windows * 256;
        printf("%s,%u,%g,%.0f,%llu,%llu,%.4f,%.2f,%.5f\n", prof->name, slots, thr_ms, toks,
               (unsigned long long)st.misses, (unsigned long long)st.fallback_reads,
               st.stall_ns / 1e6 / toks, st.flash_bytes / 1024.0 / toks, nats / (double)n / log(2.0));
        fflush(stdout);
        free(arena);
        mf_posix_port_close(&fp);
    }
    free(text);
    return 0;
}
