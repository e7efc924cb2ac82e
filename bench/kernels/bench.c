/*
 * Host kernel benchmark: ns per multiply-accumulate and GMAC/s of
 * mf_matvec (f32 activations) and mf_matvec_qa (q8 activations, the
 * activation quantisation timed separately) for every encoding, portable C
 * and SIMD (AVX2 where quant.c dispatches to it), on a few shapes.
 *   make bench-kernels      -> bench/results/kernels.csv (see mk/quant.mk)
 *   build/bench/kernels_bench [seconds_per_case] > out.csv
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../runtime/quant.h"

/* Thread CPU time: the machine is shared, so wall time would count the
 * time other processes hold the core. */
static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static uint32_t rng = 1;
static float frand(void)
{
    rng = rng * 1664525u + 1013904223u;
    return (float)((rng >> 8) & 0xffffffu) / 8388608.0f - 1.0f;
}

static volatile float sink;

/* CPU seconds per call of the chosen kernel, best of 5 runs of >= min_s/5. */
static double time_kernel(int qa, int enc, const void *w, const float *x, const void *xq, float *y,
                          uint32_t rows, uint32_t cols, uint32_t group, double min_s)
{
    double best = 1e30;
    int run;
    for (run = 0; run < 5; run++) {
        long n = 0;
        double t0 = now(), t;
        do {
            if (qa == 2)
                mf_quantize_activations(x, cols, group, (void *)xq);
            else if (qa)
                mf_matvec_qa(enc, w, xq, y, rows, cols, group);
            else
                mf_matvec(enc, w, x, y, rows, cols, group);
            sink = y[0];
            n++;
            t = now() - t0;
        } while (t < min_s / 5);
        if (t / (double)n < best) best = t / (double)n;
    }
    return best;
}

int main(int argc, char **argv)
{
    static const uint32_t shapes[][2] = {{256, 128}, {128, 256}, {1024, 1024}, {4096, 1024}};
    const uint32_t group = 32;
    double min_s = argc > 1 ? atof(argv[1]) : 0.3;
    size_t si;
    printf("rows,cols,group,encoding,activations,kernel,ns_per_call,ns_per_mac,gmac_per_s,"
           "weight_bytes\n");
    for (si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        uint32_t rows = shapes[si][0], cols = shapes[si][1], i;
        float *W = malloc((size_t)rows * cols * sizeof(float));
        float *x = malloc(cols * sizeof(float)), *y = malloc(rows * sizeof(float));
        void *xq = malloc(mf_qa_bytes(cols, group));
        void *buf = malloc(mf_matrix_bytes(MF_ENC_F32, rows, cols, group));
        int enc, simd, qa;
        double t;
        for (i = 0; i < rows * cols; i++) W[i] = frand() * 0.1f;
        for (i = 0; i < cols; i++) x[i] = frand();
        for (simd = 0; simd <= 1; simd++) {
            mf_quant_use_simd(simd);
            mf_quantize_activations(x, cols, group, xq);
            t = time_kernel(2, 0, NULL, x, xq, y, rows, cols, group, min_s);
            printf("%u,%u,%u,-,quantize_activations,%s,%.1f,%.4f,,\n", rows, cols, group,
                   simd ? "avx2" : "portable", 1e9 * t, 1e9 * t / cols);
        }
        for (enc = 0; enc < MF_ENC_COUNT; enc++) {
            mf_quantize_matrix(enc, W, rows, cols, group, buf);
            for (qa = 0; qa <= 1; qa++)
                for (simd = 0; simd <= 1; simd++) {
                    /* SIMD kernels exist for q8/q4 with q8 activations only */
                    if (simd && !(qa && (enc == MF_ENC_Q8 || enc == MF_ENC_Q4))) continue;
                    mf_quant_use_simd(simd);
                    t = time_kernel(qa, enc, buf, x, xq, y, rows, cols, group, min_s);
                    printf("%u,%u,%u,%s,%s,%s,%.1f,%.4f,%.3f,%zu\n", rows, cols, group,
                           mf_encoding_name(enc), qa ? "q8" : "f32", simd ? "avx2" : "portable",
                           1e9 * t, 1e9 * t / ((double)rows * cols),
                           (double)rows * cols / t * 1e-9, mf_matrix_bytes(enc, rows, cols, group));
                    fflush(stdout);
                }
            mf_quant_use_simd(1);
        }
        free(W);
        free(x);
        free(y);
        free(xq);
        free(buf);
    }
    return 0;
}
