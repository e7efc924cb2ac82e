/*
 * Instruction-count driver for the AArch64 NEON kernels (bench.sh here runs
 * it under qemu-aarch64 -singlestep -d exec,nochain and counts the executed
 * instructions between calls to mf_bench_mark). Per case: the portable
 * mf_matvec_qa (mf_quant_use_simd(0)) once and the NEON one once, each
 * between two marks; the two outputs must have the same bits (else exit 1).
 * Then mf_quantize_activations the same way (portable, NEON; same bytes).
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "../../../runtime/image.h"
#include "../../../runtime/kernels_neon.h"
#include "../../../runtime/quant.h"
#include "../../../tests/crc32_ref.h"

#define MAXRC (1024 * 1024)
#define MAXC 1024

static float x[MAXC], y0[MAXC], y1[MAXC];
static uint8_t wq[MAXRC + MAXRC / 8]; /* Q8 at group 32: 34 bytes per 32 */
static uint32_t xq[MF_QA_BYTES(MAXC, 32) / 4];

__attribute__((noinline, used)) void mf_bench_mark(int id)
{
    __asm__ volatile("" ::"r"(id) : "memory");
}

static uint32_t rng = 12345u;
static float frand(void)
{
    rng = rng * 1664525u + 1013904223u;
    return (float)((rng >> 8) & 0xffffffu) / 8388608.0f - 1.0f;
}

int main(void)
{
    static const struct {
        int enc;
        uint32_t rows, cols, group;
    } cs[] = {
        {MF_ENC_Q8, 128, 128, 32}, {MF_ENC_Q4, 128, 128, 32},  {MF_ENC_Q8, 64, 128, 32},
        {MF_ENC_Q4, 64, 128, 32},  {MF_ENC_Q8, 256, 128, 32},  {MF_ENC_Q4, 256, 128, 32},
        {MF_ENC_Q8, 128, 256, 32}, {MF_ENC_Q4, 128, 256, 32},  {MF_ENC_Q8, 16, 512, 128},
        {MF_ENC_Q4, 16, 512, 128}, {MF_ENC_Q8, 256, 1024, 32}, {MF_ENC_Q4, 256, 1024, 32},
        {MF_ENC_Q8, 256, 1024, 64}, {MF_ENC_Q4, 256, 1024, 64},
    };
    int bad = 0;
#if !defined(MF_HAVE_NEON_KERNELS)
    fprintf(stderr, "kbench: no NEON kernels in this build\n");
    return 1;
#else
    printf("kernel %s\n", MF_NEON_KERNEL_NAME);
    for (size_t c = 0; c < sizeof cs / sizeof cs[0]; c++) {
        uint32_t rows = cs[c].rows, cols = cs[c].cols, group = cs[c].group;
        size_t nb = mf_matrix_bytes(cs[c].enc, rows, cols, group), gb = 2 + group;
        /* random levels and normal f16 scales: the converter's scale search
         * would be most of the logged instructions; the kernels' counts do
         * not depend on the values */
        if (cs[c].enc == MF_ENC_Q4) gb = 2 + group / 2;
        for (size_t i = 0; i < nb; i++) wq[i] = (uint8_t)((rng = rng * 1664525u + 1013904223u) >> 24);
        for (size_t i = 0; i < nb; i += gb) wq[i] = 0, wq[i + 1] = 0x20 + (uint8_t)(i % 8); /* f16 ~2^-7 */
        for (uint32_t i = 0; i < cols; i++) x[i] = 3.0f * frand();
        mf_quantize_activations(x, cols, group, xq);
        mf_quant_use_simd(0);
        mf_bench_mark(0);
        mf_matvec_qa(cs[c].enc, wq, xq, y0, rows, cols, group);
        mf_bench_mark(1);
        mf_quant_use_simd(1);
        mf_bench_mark(2);
        mf_matvec_qa(cs[c].enc, wq, xq, y1, rows, cols, group);
        mf_bench_mark(3);
        int same = memcmp(y0, y1, rows * sizeof(float)) == 0;
        bad += !same;
        printf("case %zu %s %ux%u g%u %s\n", c, mf_encoding_name(cs[c].enc), rows, cols, group,
               same ? "same-bits" : "DIFFERENT");
    }
    /* the activation quantisation that feeds those calls (once per input
     * vector): portable and NEON, the same bytes; numbered after the cases */
    {
        static const uint32_t qc[] = {128, 256, 1024};
        static uint32_t xq1[MF_QA_BYTES(MAXC, 32) / 4];
        size_t c0 = sizeof cs / sizeof cs[0];
        for (size_t c = 0; c < sizeof qc / sizeof qc[0]; c++) {
            uint32_t cols = qc[c];
            for (uint32_t i = 0; i < cols; i++) x[i] = 3.0f * frand();
            mf_quant_use_simd(0);
            mf_bench_mark(0);
            mf_quantize_activations(x, cols, 32, xq);
            mf_bench_mark(1);
            mf_quant_use_simd(1);
            mf_bench_mark(2);
            mf_quantize_activations(x, cols, 32, xq1);
            mf_bench_mark(3);
            int same = memcmp(xq, xq1, MF_QA_BYTES(cols, 32)) == 0;
            bad += !same;
            printf("qcase %zu quantize %u g32 %s\n", c0 + c, cols, same ? "same-bits" : "DIFFERENT");
        }
    }
    /* the CRC-32 of every expert blob read from flash: the tables in the
     * ARMv8.0 build, CRC32X where the build has the CRC instructions
     * (bench.sh rebuilds image.c for ARMv8.2); numbered after the above */
    {
#if defined(MF_CRC32_A64)
        const char *impl = "crc32x";
#else
        const char *impl = "tables";
#endif
        static const uint32_t nc[] = {1024, 32768};
        static uint8_t buf[32768];
        size_t c0 = sizeof cs / sizeof cs[0] + 3;
        for (size_t i = 0; i < sizeof buf; i++) buf[i] = (uint8_t)((rng = rng * 1664525u + 1013904223u) >> 24);
        for (size_t c = 0; c < sizeof nc / sizeof nc[0]; c++) {
            uint32_t want = crc32_bitwise(0, buf, nc[c]), got[2];
            for (int k = 0; k < 2; k++) {
                mf_bench_mark(2 * k);
                got[k] = mf_crc32(0, buf, nc[c]);
                mf_bench_mark(2 * k + 1);
            }
            int same = got[0] == want && got[1] == want;
            bad += !same;
            printf("ccase %zu crc32 %u %s %s\n", c0 + c, nc[c], impl,
                   same ? "same-bits" : "DIFFERENT");
        }
    }
    return bad ? 1 : 0;
#endif
}
