/*
 * End-to-end effect of the weight encoding and of q8 vs f32 activations:
 * bits per byte on the validation split of tinyshakespeare (golden
 * val_protocol: 256-byte windows from offset int(0.9 * len), each scored
 * from an empty context) with mf_options.float_activations 0 and 1.
 *   build/bench/e2e_ppl IMG tests/data/tinyshakespeare.txt [windows]
 * (mk/quant.mk: make e2e-ppl converts the images and runs it.)
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../port/posix/posix_port.h"
#include "../../runtime/moeflash.h"

static double val_bits(const char *img, const unsigned char *val, size_t n_val, uint32_t windows,
                       int float_act)
{
    mf_port port;
    mf_posix_port_state st;
    mf_options opt;
    mf_model *m;
    size_t arena_bytes;
    void *arena;
    static uint32_t tok[256];
    static float logits[256 * 256];
    double nats = 0;
    uint64_t count = 0;
    uint32_t w, i, j;
    if (mf_posix_port_open(&port, &st, img) != MF_PORT_OK) return -1;
    mf_options_default(&opt);
    opt.float_activations = float_act;
    opt.context_len = 256;
    opt.prefill_batch = 256;
    if (mf_arena_bytes(&port, &opt, &arena_bytes) != MF_OK) return -1;
    arena = malloc(arena_bytes);
    if (!arena || mf_init(&m, &port, &opt, arena, arena_bytes) != MF_OK) return -1;
    for (w = 0; w < windows && (size_t)(w + 1) * 256 <= n_val; w++) {
        for (i = 0; i < 256; i++) tok[i] = val[(size_t)w * 256 + i];
        mf_reset(m);
        if (mf_feed_all(m, tok, 256, logits) != MF_OK) return -1;
        for (i = 0; i + 1 < 256; i++) {
            const float *l = logits + (size_t)i * 256;
            double mx = l[0], s = 0;
            for (j = 1; j < 256; j++)
                if (l[j] > mx) mx = l[j];
            for (j = 0; j < 256; j++) s += exp((double)l[j] - mx);
            nats += mx + log(s) - (double)l[tok[i + 1]];
            count++;
        }
    }
    free(arena);
    mf_posix_port_close(&port);
    return nats / (double)count / log(2.0);
}

int main(int argc, char **argv)
{
    FILE *f;
    long len;
    unsigned char *text;
    uint32_t windows = argc > 3 ? (uint32_t)atoi(argv[3]) : 435;
    size_t start;
    double b0, b1;
    if (argc < 3) {
        fprintf(stderr, "usage: e2e_ppl IMG TEXT [windows]\n");
        return 2;
    }
    f = fopen(argv[2], "rb");
    if (!f || fseek(f, 0, SEEK_END) || (len = ftell(f)) <= 0 || fseek(f, 0, SEEK_SET)) return 1;
    text = malloc((size_t)len);
    if (!text || fread(text, 1, (size_t)len, f) != (size_t)len) return 1;
    fclose(f);
    start = (size_t)((double)len * 0.9);
    b0 = val_bits(argv[1], text + start, (size_t)len - start, windows, 0);
    b1 = val_bits(argv[1], text + start, (size_t)len - start, windows, 1);
    printf("%s,%u,%.5f,%.5f\n", argv[1], windows, b0, b1);
    free(text);
    return b0 < 0 || b1 < 0;
}
