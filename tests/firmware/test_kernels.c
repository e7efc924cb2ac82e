/*
 * Runs on the Cortex-M boards in QEMU: the Arm kernels (runtime/kernels_arm.c,
 * Q8, Q4, Q3 and Q2; Helium on the M55, SMLAD on the M4) against the portable kernels of
 * runtime/quant.c (compiled here without MF_HAVE_ARM_KERNELS), bit for bit,
 * and both against a double-precision dot product of the dequantised
 * operands (independent math). Then the f32 matvec: mf_matmul for one token
 * (on the M55 the Helium mf_matvec_f32_arm) against mf_dot_f32 per row, bit
 * for bit.
 *
 * With "bench" on the command line it instead runs each kernel once on a
 * fixed shape between calls to mf_bench_mark(); tests/scripts/firmware_bench.sh
 * counts the instructions executed between the marks from a QEMU
 * -singlestep -d exec,nochain log. After the quantised kernels it counts the
 * runtime's f32 matmul (runtime/ops.c, one token) and one query head of
 * attention (mf_attention_head) at several context lengths, which the
 * simulator's M55 profile is calibrated from.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "../../runtime/image.h"
#include "../crc32_ref.h"
#include "../../runtime/kernels_arm.h"
#include "../../runtime/ops.h"
#include "../../runtime/quant.h"
#include "board.h"

#define MAXR 256   /* rows */
#define MAXC 1024  /* cols (the f16 / bf16 test has a 1000-value row) */
#define MAXRC 32768 /* rows x cols */
#define MAXG 256

static float wf[MAXRC];
static float x[MAXC];
static float xdq[MAXC];
static float row[MAXC];
static uint8_t wq[MAXRC + MAXRC / 8 + 16 * MAXR] __attribute__((aligned(4)));
static uint8_t xq[MF_QA_BYTES(MAXC, 1)] __attribute__((aligned(4)));
static float y_ref[MAXR + 1], y_arm[MAXR + 1];

static int passed, failed;
static uint64_t rng = 0x9E3779B97F4A7C15ull;

static float frand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((double)(rng >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

/* Counts a check; says whether to print its failure (the first ten). */
static int nprinted;
static int tally(int ok)
{
    if (ok) {
        passed++;
        return 0;
    }
    failed++;
    return ++nprinted <= 10;
}

static void check(int ok, const char *what, uint32_t enc, uint32_t rows, uint32_t cols,
                  uint32_t group, uint32_t r)
{
    if (!tally(ok)) return;
    con_puts("FAIL ");
    con_puts(what);
    con_puts(" enc=");
    con_putu(enc);
    con_puts(" rows=");
    con_putu(rows);
    con_puts(" cols=");
    con_putu(cols);
    con_puts(" group=");
    con_putu(group);
    con_puts(" row=");
    con_putu(r);
    con_puts(" ref=");
    con_putf(y_ref[r], 6);
    con_puts(" arm=");
    con_putf(y_arm[r], 6);
    con_puts("\n");
}

__attribute__((noinline, used)) void mf_bench_mark(int id)
{
    __asm__ volatile("" ::"r"(id) : "memory");
}

static void setup(int enc, uint32_t rows, uint32_t cols, uint32_t group, float scale)
{
    for (uint32_t i = 0; i < rows * cols; i++) wf[i] = frand() * scale;
    for (uint32_t i = 0; i < cols; i++) x[i] = frand() * 3.0f;
    mf_quantize_matrix(enc, wf, rows, cols, group, wq);
    mf_quantize_activations(x, cols, group, xq);
}

#if defined(MF_ARM_KERNEL_MVE) || defined(MF_ARM_KERNEL_DSP)
static void run_arm(int enc, uint32_t rows, uint32_t cols, uint32_t group)
{
    if (enc == MF_ENC_Q8) mf_matvec_qa_q8_arm(wq, xq, y_arm, rows, cols, group);
    else if (enc == MF_ENC_Q4) mf_matvec_qa_q4_arm(wq, xq, y_arm, rows, cols, group);
    else if (enc == MF_ENC_Q3) mf_matvec_qa_q3_arm(wq, xq, y_arm, rows, cols, group);
    else mf_matvec_qa_q2_arm(wq, xq, y_arm, rows, cols, group);
}
#endif

static void run_case(int enc, uint32_t rows, uint32_t cols, uint32_t group)
{
    setup(enc, rows, cols, group, 0.5f);
    mf_matvec_qa(enc, wq, xq, y_ref, rows, cols, group);
#if defined(MF_ARM_KERNEL_MVE) || defined(MF_ARM_KERNEL_DSP)
    run_arm(enc, rows, cols, group);
#else
    /* no Arm kernels on this core: check the portable kernel alone */
    memcpy(y_arm, y_ref, sizeof(float) * rows);
#endif

    /* dequantised activations: q * d per group */
    const int8_t *q = (const int8_t *)xq;
    const float *d = (const float *)(const void *)(xq + ((cols + 3u) & ~3u));
    for (uint32_t c = 0; c < cols; c++) xdq[c] = d[c / group] * (float)q[c];

    for (uint32_t r = 0; r < rows; r++) {
        check(memcmp(&y_ref[r], &y_arm[r], sizeof(float)) == 0, "arm != portable (bits)", (uint32_t)enc,
              rows, cols, group, r);
        mf_dequantize_row(enc, wq, r, cols, group, row);
        double s = 0.0, mag = 0.0;
        for (uint32_t c = 0; c < cols; c++) {
            s += (double)row[c] * (double)xdq[c];
            mag += fabs((double)row[c] * (double)xdq[c]);
        }
        check(fabs((double)y_arm[r] - s) <= 1e-5 * mag + 1e-6, "arm != float64 dot", (uint32_t)enc,
              rows, cols, group, r);
    }
}

static void bench_line(unsigned c, const char *enc, uint32_t rows, uint32_t cols, uint32_t group)
{
    con_puts("bench case ");
    con_putu(c);
    con_puts(enc);
    con_putu(rows);
    con_puts("x");
    con_putu(cols);
    con_puts(" group ");
    con_putu(group);
    con_puts(" macs ");
    con_putu((uint64_t)rows * cols);
    con_puts(" kernel " MF_ARM_KERNEL_NAME "\n");
}

/* The tiny model's KV cache for one layer: 2 KV heads of 32, so rows of
 * kv_stride 64 floats; K and V of the longest context the bench runs. In
 * the arena region (ISRAM), which has the room the DTCM has not. */
#define ATT_MAXPOS 1024
#define ATT_STRIDE 64
#define ATT_HD 32
static float kc[ATT_MAXPOS * ATT_STRIDE] __attribute__((section(".arena")));
static float vc[ATT_MAXPOS * ATT_STRIDE] __attribute__((section(".arena")));
static float att[ATT_MAXPOS + 1] __attribute__((section(".arena")));
static float att2[ATT_MAXPOS + 1] __attribute__((section(".arena")));

/* "ROWSxCOLS macs N" and the end of a bench line */
static void put_shape_macs(uint32_t rows, uint32_t cols)
{
    con_putu(rows);
    con_puts("x");
    con_putu(cols);
    con_puts(" macs ");
    con_putu((uint64_t)rows * cols);
    con_puts("\n");
}

static void bench_f32(unsigned c, uint32_t rows, uint32_t cols)
{
    for (uint32_t i = 0; i < rows * cols; i++) wf[i] = frand() * 0.5f;
    for (uint32_t i = 0; i < cols; i++) x[i] = frand() * 3.0f;
    mf_bench_mark(1);
    mf_matmul(MF_ENC_F32, wf, rows, cols, 32, x, cols, y_ref, rows, 1);
    mf_bench_mark(2);
    mf_bench_mark(3);
    con_puts("bench f32 case ");
    con_putu(c);
    con_puts(" ");
    put_shape_macs(rows, cols);
}

/* One query head (head 1 of 4: its KV head 0) over n_pos positions; then
 * mf_softmax alone on the same scores, so that the softmax share of the
 * call is known. q is scaled so that the scores spread over a few units as
 * a trained model's do (the expf path does not depend on it much). */
static void bench_att(unsigned c, uint32_t n_pos)
{
    for (uint32_t i = 0; i < n_pos * ATT_STRIDE; i++) kc[i] = frand(), vc[i] = frand();
    for (uint32_t i = 0; i < ATT_HD; i++) x[i] = frand() * 4.0f;
    float scale = (float)(1.0 / sqrt((double)ATT_HD));
    for (uint32_t t = 0; t < n_pos; t++) att2[t] = mf_dot_f32(x, kc + t * ATT_STRIDE, ATT_HD) * scale;
    mf_bench_mark(1);
    mf_attention_head(y_ref, x, kc, vc, ATT_STRIDE, n_pos, ATT_HD, att);
    mf_bench_mark(2);
#if defined(MF_ARM_KERNEL_F32)
    mf_softmax_arm(att2, n_pos); /* the softmax mf_attention_head runs here */
#else
    mf_softmax(att2, n_pos);
#endif
    mf_bench_mark(3);
    con_puts("bench att case ");
    con_putu(c);
    con_puts(" n_pos ");
    con_putu(n_pos);
    con_puts(" head_dim 32 kv_stride 64\n");
}

/* The same K and V (the values as the tiny model's, over a few units) in a
 * q8, f16 or bf16 cache; the portable mf_attention_head_kv (widening each
 * row into a scratch row) in one interval, mf_attention_head_kv (on the
 * M55 the Helium kernel) in the next. */
static uint16_t ksc[ATT_MAXPOS * 2 + 1] __attribute__((section(".arena")));
static uint16_t vsc[ATT_MAXPOS * 2 + 1] __attribute__((section(".arena")));
/* Row t of a KV cache in enc from the floats f[stride] (all its heads):
 * q8 per head_dim values with an f16 scale amax/127 (as model.c stores
 * them), f16/bf16 rounded. */
static void kv_fill(int enc, void *c, uint16_t *sc, const float *f, uint32_t t, uint32_t hd,
                    uint32_t stride)
{
    if (enc == MF_ENC_Q8) {
        int8_t *d = (int8_t *)c + (size_t)t * stride;
        for (uint32_t h = 0; h < stride / hd; h++) {
            float amax = 0.0f;
            for (uint32_t i = 0; i < hd; i++) amax = fabsf(f[h * hd + i]) > amax ? fabsf(f[h * hd + i]) : amax;
            uint16_t s16 = mf_f32_to_f16(amax / 127.0f);
            float s = mf_f16_to_f32(s16);
            sc[t * (stride / hd) + h] = s16;
            for (uint32_t i = 0; i < hd; i++) {
                float r = s > 0.0f ? f[h * hd + i] / s : 0.0f;
                int v = (int)(r + (r >= 0.0f ? 0.5f : -0.5f));
                d[h * hd + i] = (int8_t)(v > 127 ? 127 : v < -127 ? -127 : v);
            }
        }
        return;
    }
    uint16_t *d = (uint16_t *)c + (size_t)t * stride;
    for (uint32_t i = 0; i < stride; i++)
        d[i] = enc == MF_ENC_BF16 ? mf_f32_to_bf16(f[i]) : mf_f32_to_f16(f[i]);
}

static const char *kv_name(int enc)
{
    return enc == MF_ENC_Q8 ? "q8" : enc == MF_ENC_F16 ? "f16" : "bf16";
}

static void bench_att_kv(unsigned c, int enc, uint32_t n_pos)
{
    static float fk[ATT_STRIDE], fv[ATT_STRIDE]; /* one row's floats, then encoded */
    for (uint32_t t = 0; t < n_pos; t++) {
        for (uint32_t i = 0; i < ATT_STRIDE; i++) fk[i] = frand(), fv[i] = frand();
        kv_fill(enc, kc, ksc, fk, t, ATT_HD, ATT_STRIDE);
        kv_fill(enc, vc, vsc, fv, t, ATT_HD, ATT_STRIDE);
    }
    for (uint32_t i = 0; i < ATT_HD; i++) x[i] = frand() * 4.0f;
    mf_bench_mark(1);
#if defined(MF_ARM_KERNEL_KV)
    mf_attention_head_kv_portable(y_ref, x, enc, kc, vc, ksc, vsc, ATT_STRIDE, n_pos, ATT_HD, row,
                                  att2);
#else
    mf_attention_head_kv(y_ref, x, enc, kc, vc, ksc, vsc, ATT_STRIDE, n_pos, ATT_HD, row, att2);
#endif
    mf_bench_mark(2);
    mf_attention_head_kv(y_arm, x, enc, kc, vc, ksc, vsc, ATT_STRIDE, n_pos, ATT_HD, row, att);
    mf_bench_mark(3);
    con_puts("bench attkv case ");
    con_putu(c);
    con_puts(" ");
    con_puts(kv_name(enc));
    con_puts(" n_pos ");
    con_putu(n_pos);
    con_puts(" head_dim 32 kv_stride 64\n");
}

/* CRC-32 of n bytes (an expert blob is checked this way): image.c's tables
 * (linked here without the Arm dispatch) in one interval, on Helium cores
 * the folding kernel mf_crc32_arm in the next. */
static void bench_crc(unsigned c, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) wq[i] = (uint8_t)(frand() * 127.0f);
    mf_bench_mark(1);
    uint32_t a = mf_crc32(0, wq, n);
    mf_bench_mark(2);
#if defined(MF_ARM_KERNEL_MVE)
    a ^= mf_crc32_arm(0, wq, n);
#endif
    mf_bench_mark(3);
    con_puts("bench crc case ");
    con_putu(c);
    con_puts(" bytes ");
    con_putu(n);
    con_puts(a ? " differs\n" : "\n");
}

/* f16 or bf16 weights times f32 activations (mf_matvec, one token):
 * quant.c's portable code in one interval, on Helium-float cores
 * mf_matvec_half_arm in the next. */
static void bench_half(unsigned c, int bf16, uint32_t rows, uint32_t cols)
{
    uint16_t *w = (uint16_t *)(void *)wf; /* up to 64 KiB of halves: more than wq holds */
    for (uint32_t i = 0; i < rows * cols; i++) w[i] = bf16 ? mf_f32_to_bf16(frand()) : mf_f32_to_f16(frand());
    for (uint32_t i = 0; i < cols; i++) x[i] = frand() * 3.0f;
    mf_bench_mark(1);
    mf_matvec(bf16 ? MF_ENC_BF16 : MF_ENC_F16, w, x, y_ref, rows, cols, 32);
    mf_bench_mark(2);
#if defined(MF_ARM_KERNEL_HALF)
    mf_matvec_half_arm(bf16, w, x, y_arm, rows, cols);
#endif
    mf_bench_mark(3);
    con_puts("bench half case ");
    con_putu(c);
    con_puts(bf16 ? " bf16 " : " f16 ");
    put_shape_macs(rows, cols);
}

/* Each case: mark, portable kernel, mark, Arm kernel, mark (setup of the
 * next case follows). Interval 3i+1 is the portable kernel of case i,
 * 3i+2 the Arm kernel (1-based, as boards/common/kcount.sh numbers them).
 * The f32 cases (20-22) have the matmul in 3i+1 and nothing in 3i+2; the
 * attention cases (23-25) mf_attention_head in 3i+1 and mf_softmax alone
 * in 3i+2; the KV-cache attention cases (26-34: q8, f16, bf16 at 64, 256,
 * 1024 positions) the portable code in 3i+1 and the Arm one in 3i+2; the
 * CRC cases (35-36) and the f16 / bf16 matvec cases (37-40) likewise. */
static void bench_halves(unsigned c)
{
    for (int bf16 = 0; bf16 < 2; bf16++) {
        bench_half(c++, bf16, 256, 128); /* expert gate/up */
        bench_half(c++, bf16, 128, 256); /* expert down */
    }
}

/* Cases 20-34: the f32 matvec, attention over an f32 KV cache and over a
 * q8 / f16 / bf16 one; returns the next case number. */
static unsigned bench_float(unsigned c)
{
    static const uint32_t f32_shapes[][2] = {{128, 128}, {256, 128}, {128, 256}};
    for (unsigned i = 0; i < 3; i++, c++) bench_f32(c, f32_shapes[i][0], f32_shapes[i][1]);
    static const uint32_t att_pos[] = {64, 256, 1024};
    for (unsigned i = 0; i < 3; i++, c++) bench_att(c, att_pos[i]);
    static const int kv_encs[] = {MF_ENC_Q8, MF_ENC_F16, MF_ENC_BF16};
    for (unsigned e = 0; e < 3; e++)
        for (unsigned i = 0; i < 3; i++, c++) bench_att_kv(c, kv_encs[e], att_pos[i]);
    return c;
}

static int bench(void)
{
    /* the tiny model: wq/wo 128x128, wk/wv 64x128, expert gate/up 256x128,
     * down 128x256; and a longer row at group 128 */
    static const uint32_t shapes[][3] = {{128, 128, 32}, {64, 128, 32}, {256, 128, 32}, {128, 256, 32}, {16, 512, 128}};
    enum { NS = sizeof shapes / sizeof shapes[0] };
    /* q8/q4 first, then q3/q2 (added later: the numbers of the first cases stay) */
    static const int encs[2][2] = {{MF_ENC_Q8, MF_ENC_Q4}, {MF_ENC_Q3, MF_ENC_Q2}};
    static const char *const names[2][2] = {{" q8 ", " q4 "}, {" q3 ", " q2 "}};
    for (unsigned pass = 0; pass < 2; pass++)
        for (unsigned i = 0; i < NS; i++)
            for (unsigned e = 0; e < 2; e++) {
                int enc = encs[pass][e];
                uint32_t rows = shapes[i][0], cols = shapes[i][1], group = shapes[i][2];
                setup(enc, rows, cols, group, 0.5f);
                mf_bench_mark(1);
                mf_matvec_qa(enc, wq, xq, y_ref, rows, cols, group);
                mf_bench_mark(2);
#if defined(MF_ARM_KERNEL_MVE) || defined(MF_ARM_KERNEL_DSP)
                switch (enc) {
                case MF_ENC_Q8: mf_matvec_qa_q8_arm(wq, xq, y_arm, rows, cols, group); break;
                case MF_ENC_Q4: mf_matvec_qa_q4_arm(wq, xq, y_arm, rows, cols, group); break;
                case MF_ENC_Q3: mf_matvec_qa_q3_arm(wq, xq, y_arm, rows, cols, group); break;
                default: mf_matvec_qa_q2_arm(wq, xq, y_arm, rows, cols, group); break;
                }
#endif
                mf_bench_mark(3);
                bench_line(pass * 2u * NS + i * 2u + e, names[pass][e], rows, cols, group);
            }
    unsigned c = bench_float(4u * NS);
    bench_crc(c++, 1024);
    bench_crc(c++, 32768);
    bench_halves(c);
    return 0;
}

/* f32: mf_matmul (1 token; on MVE-float cores the Helium kernel) and
 * mf_matvec_f32_arm itself against mf_dot_f32 row by row, bit for bit.
 * Values over many magnitudes, both signs, exact zeros of both signs and
 * tiny (subnormal) values. */
static float frand_wide(void)
{
    float v = frand();
    uint32_t sel = (uint32_t)(rng >> 40) % 16u;
    if (sel == 0) return 0.0f;
    if (sel == 1) return -0.0f;
    if (sel == 2) return v * 1e-39f; /* subnormal */
    if (sel == 3) return v * 1e-20f;
    if (sel == 4) return v * 1e6f;
    return v * 3.0f;
}

static void run_f32(uint32_t rows, uint32_t cols)
{
    for (uint32_t i = 0; i < rows * cols; i++) wf[i] = frand_wide();
    for (uint32_t i = 0; i < cols; i++) x[i] = frand_wide();
    for (uint32_t r = 0; r < rows; r++) y_ref[r] = mf_dot_f32(wf + (size_t)r * cols, x, cols);
    mf_matmul(MF_ENC_F32, wf, rows, cols, 32, x, cols, y_arm, rows, 1);
    for (uint32_t r = 0; r < rows; r++)
        check(memcmp(&y_ref[r], &y_arm[r], sizeof(float)) == 0, "f32 matmul != mf_dot_f32 (bits)",
              0, rows, cols, 0, r);
#if defined(MF_ARM_KERNEL_F32)
    for (uint32_t r = 0; r < rows + 1; r++) y_arm[r] = 12345.0f; /* a write past rows shows */
    mf_matvec_f32_arm(wf, x, y_arm, rows, cols);
    for (uint32_t r = 0; r < rows; r++)
        check(memcmp(&y_ref[r], &y_arm[r], sizeof(float)) == 0, "f32 arm != mf_dot_f32 (bits)",
              0, rows, cols, 0, r);
    check(y_arm[rows] == 12345.0f, "f32 arm wrote past rows", 0, rows, cols, 0, rows);
#endif
}

#if defined(MF_ARM_KERNEL_HALF)
/* f16 / bf16 weights: mf_matvec_half_arm against quant.c's mf_matvec
 * (linked here without the Arm dispatch), bit for bit, NaN rows included.
 * kind 0: values over a few units;
 * 1: frand_wide weights and activations (zeros of both signs, subnormal
 * f32 activations, f16-subnormal weights, 1e6); 2: one weight +-inf or
 * NaN per row. */
static void run_half(int bf16, uint32_t rows, uint32_t cols, unsigned kind)
{
    uint16_t *w = (uint16_t *)(void *)wf; /* up to 64 KiB of halves: more than wq holds */
    for (uint32_t i = 0; i < rows * cols; i++) {
        float v = kind == 1 ? frand_wide() : frand() * 3.0f;
        w[i] = bf16 ? mf_f32_to_bf16(v) : mf_f32_to_f16(v);
    }
    if (kind == 2)
        for (uint32_t r = 0; r < rows; r++) {
            uint32_t at = (uint32_t)(rng >> 40) % cols;
            static const float sp[3] = {INFINITY, -INFINITY, NAN};
            float v = sp[(r + at) % 3];
            w[(size_t)r * cols + at] = bf16 ? mf_f32_to_bf16(v) : mf_f32_to_f16(v);
            frand();
        }
    for (uint32_t i = 0; i < cols; i++) x[i] = kind == 1 ? frand_wide() : frand() * 3.0f;
    int enc = bf16 ? MF_ENC_BF16 : MF_ENC_F16;
    mf_matvec(enc, w, x, y_ref, rows, cols, 32);
    for (uint32_t r = 0; r < rows + 1; r++) y_arm[r] = 12345.0f; /* a write past rows shows */
    mf_matvec_half_arm(bf16, w, x, y_arm, rows, cols);
    for (uint32_t r = 0; r < rows; r++)
        check(memcmp(&y_ref[r], &y_arm[r], sizeof(float)) == 0, bf16 ? "bf16 arm != portable (bits)" : "f16 arm != portable (bits)", (uint32_t)kind, rows,
              cols, 0, r);
    check(y_arm[rows] == 12345.0f, "half arm wrote past rows", (uint32_t)kind, rows, cols, 0, rows);
}

static void test_half(void)
{
    for (int bf16 = 0; bf16 < 2; bf16++)
        for (unsigned kind = 0; kind < 3; kind++) {
            for (uint32_t rows = 1; rows <= 7; rows++)
                for (uint32_t cols = 1; cols <= 41; cols++) run_half(bf16, rows, cols, kind);
            run_half(bf16, 256, 128, kind); /* the tiny model's expert shapes */
            run_half(bf16, 128, 256, kind);
            run_half(bf16, 3, 1000, kind);
        }
}
#endif

#if defined(MF_ARM_KERNEL_F32)
/* Helium attention (mf_attention_head, which dispatches to it) against
 * mf_attention_head_portable, bit for bit: the output and the scratch
 * scores, and nothing written past either. kind 0: scores over a few units;
 * 1: over hundreds, so that most weights underflow (in the vector and the
 * scalar exp alike); 2: every K row the same (equal scores); 3: q = 0 (all
 * scores 0); 4: K rows over many magnitudes, zeros of both signs; 5: one K
 * value NaN, +inf, -inf, or 1e30 with one V value NaN (NaN outputs too). */
static void run_att(uint32_t n_pos, uint32_t hd, uint32_t stride, unsigned kind)
{
    float qs = kind == 1 ? 60.0f : 4.0f;
    for (uint32_t i = 0; i < n_pos * stride; i++) {
        kc[i] = kind == 4 ? frand_wide() : frand();
        vc[i] = frand();
    }
    if (kind == 2)
        for (uint32_t t = 1; t < n_pos; t++) memcpy(kc + t * stride, kc, sizeof(float) * hd);
    if (kind == 5) {
        uint32_t sel = (uint32_t)(rng >> 33) % 4u;
        uint32_t at = (uint32_t)(rng >> 40) % (n_pos * stride);
        kc[at] = sel == 0 ? NAN : sel == 1 ? INFINITY : sel == 2 ? -INFINITY : 1e30f;
        if (sel == 3) vc[at] = NAN;
    }
    for (uint32_t i = 0; i < hd; i++) x[i] = kind == 3 ? 0.0f : frand() * qs;
    for (uint32_t i = 0; i <= hd; i++) y_ref[i] = 777.0f, y_arm[i] = 777.0f;
    att[n_pos] = 555.0f, att2[n_pos] = 555.0f;
    mf_attention_head_portable(y_ref, x, kc, vc, stride, n_pos, hd, att2);
    mf_attention_head(y_arm, x, kc, vc, stride, n_pos, hd, att);
    for (uint32_t i = 0; i < hd; i++)
        check(memcmp(&y_ref[i], &y_arm[i], sizeof(float)) == 0, "attention arm != portable (bits)",
              kind, n_pos, hd, stride, i);
    check(y_arm[hd] == 777.0f, "attention arm wrote past head_dim", kind, n_pos, hd, stride, hd);
    check(memcmp(att, att2, sizeof(float) * n_pos) == 0 && att[n_pos] == 555.0f,
          "attention arm scores != portable (bits)", kind, n_pos, hd, stride, 0);
}

/* mf_softmax (Helium here) against mf_softmax_portable, bit for bit, on
 * the lengths the router (E experts) and the non-f32 KV attention give it:
 * kind as run_att's scores (0: units, 1: hundreds, 2: all equal, 3: a NaN,
 * +inf or -inf among them), and nothing written past n. */
static void run_softmax(uint32_t n, unsigned kind)
{
    for (uint32_t i = 0; i < n; i++) att[i] = kind == 2 ? 1.5f : frand() * (kind == 1 ? 300.0f : 4.0f);
    if (kind == 3) {
        uint32_t sel = (uint32_t)(rng >> 33) % 3u;
        att[(uint32_t)(rng >> 40) % n] = sel == 0 ? NAN : sel == 1 ? INFINITY : -INFINITY;
    }
    memcpy(att2, att, sizeof(float) * n);
    att[n] = 555.0f, att2[n] = 555.0f;
    mf_softmax_portable(att2, n);
    mf_softmax(att, n);
    for (uint32_t i = 0; i < n; i++)
        check(memcmp(&att[i], &att2[i], sizeof(float)) == 0, "softmax arm != portable (bits)", kind,
              n, 0, 0, i);
    check(att[n] == 555.0f, "softmax arm wrote past n", kind, n, 0, 0, n);
}

#endif

#if defined(MF_ARM_KERNEL_KV)
/* mf_attention_head_kv (Helium, or the scalar FPU of the DSP cores, for
 * head_dim % 8 == 0) against
 * mf_attention_head_kv_portable, bit for bit: output and scores, nothing
 * written past either. kind as run_att's: 0 scores over a few units; 1
 * over hundreds; 2 every K row the same; 3 q = 0; 4 values over many
 * magnitudes (f16/bf16 subnormals, zeros of both signs; q8: a zero scale
 * on some rows and int8 of both extremes); 5 f16/bf16: a NaN (quiet or
 * signalling), +inf or -inf in K or a NaN in V; q8: scales up to the
 * largest f16 (65504), products near 8e6. */
static void run_att_kv(int enc, uint32_t n_pos, uint32_t hd, uint32_t stride, unsigned kind)
{
    static float fk[2 * 64], fv[2 * 64];
    float qs = kind == 1 ? 60.0f : 4.0f;
    for (uint32_t t = 0; t < n_pos; t++) {
        for (uint32_t i = 0; i < stride; i++) {
            fk[i] = kind == 4 ? frand_wide() : frand();
            fv[i] = kind == 4 ? frand_wide() : frand();
            if (kind == 5 && enc == MF_ENC_Q8) fk[i] *= 8.3e6f, fv[i] *= 8.3e6f;
        }
        kv_fill(enc, kc, ksc, fk, t, hd, stride);
        kv_fill(enc, vc, vsc, fv, t, hd, stride);
        if (kind == 4 && enc == MF_ENC_Q8 && (rng >> 60) == 0) ksc[t * (stride / hd)] = 0;
        if (kind == 4 && enc == MF_ENC_Q8 && (rng >> 59) == 1) vsc[t * (stride / hd)] = 0x8000;
    }
    if (kind == 2) { /* every K row as the first */
        size_t rb = (size_t)stride * (enc == MF_ENC_Q8 ? 1u : 2u);
        for (uint32_t t = 1; t < n_pos; t++) {
            memcpy((uint8_t *)kc + t * rb, kc, rb);
            ksc[t * (stride / hd)] = ksc[0];
        }
    }
    if (kind == 5 && enc != MF_ENC_Q8) {
        static const uint16_t f16s[] = {0x7e00, 0x7c01, 0x7c00, 0xfc00, 0xfe00};
        static const uint16_t bf16s[] = {0x7fc0, 0x7f81, 0x7f80, 0xff80, 0xffc0};
        uint32_t sel = (uint32_t)(rng >> 33) % 5u;
        uint32_t at = (uint32_t)(rng >> 40) % n_pos * stride + (uint32_t)(rng >> 20) % hd;
        uint16_t bits = enc == MF_ENC_F16 ? f16s[sel] : bf16s[sel];
        if (sel == 4) ((uint16_t *)vc)[at] = bits;
        else ((uint16_t *)kc)[at] = bits;
    }
    for (uint32_t i = 0; i < hd; i++) x[i] = kind == 3 ? 0.0f : frand() * qs;
    for (uint32_t i = 0; i <= hd; i++) y_ref[i] = 777.0f, y_arm[i] = 777.0f;
    att[n_pos] = 555.0f, att2[n_pos] = 555.0f;
    mf_attention_head_kv_portable(y_ref, x, enc, kc, vc, ksc, vsc, stride, n_pos, hd, row, att2);
    mf_attention_head_kv(y_arm, x, enc, kc, vc, ksc, vsc, stride, n_pos, hd, row, att);
    for (uint32_t i = 0; i < hd; i++)
        check(memcmp(&y_ref[i], &y_arm[i], sizeof(float)) == 0, "kv attention arm != portable (bits)",
              (uint32_t)enc * 10u + kind, n_pos, hd, stride, i);
    check(y_arm[hd] == 777.0f, "kv attention arm wrote past head_dim", (uint32_t)enc * 10u + kind,
          n_pos, hd, stride, hd);
    check(memcmp(att, att2, sizeof(float) * n_pos) == 0 && att[n_pos] == 555.0f,
          "kv attention arm scores != portable (bits)", (uint32_t)enc * 10u + kind, n_pos, hd,
          stride, 0);
}

static void test_attention_kv(void)
{
    static const int encs[] = {MF_ENC_Q8, MF_ENC_F16, MF_ENC_BF16};
    static const uint32_t hds[] = {8, 16, 24, 32, 40, 64};
    for (unsigned e = 0; e < 3; e++)
        for (unsigned h = 0; h < sizeof hds / sizeof hds[0]; h++)
            for (uint32_t s = 1; s <= 2; s++)
                for (unsigned kind = 0; kind < 6; kind++) {
                    for (uint32_t n = 1; n <= 70; n++) run_att_kv(encs[e], n, hds[h], s * hds[h], kind);
                    run_att_kv(encs[e], 257, hds[h], s * hds[h], kind);
                    if (s * hds[h] <= ATT_STRIDE) run_att_kv(encs[e], ATT_MAXPOS, hds[h], s * hds[h], kind);
                }
    /* head_dim 128 (eight 16-wide AV blocks, 15 inner score blocks): fewer
     * lengths, around the kernels' steps (3 rows, 2 positions, 4 scales) */
    static const uint32_t ns128[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 13, 31, 64, 129, 130};
    for (unsigned e = 0; e < 3; e++)
        for (unsigned kind = 0; kind < 6; kind++)
            for (unsigned i = 0; i < sizeof ns128 / sizeof ns128[0]; i++)
                run_att_kv(encs[e], ns128[i], 128, 128, kind);
    /* head_dim not a multiple of 8: the portable code */
    run_att_kv(MF_ENC_Q8, 5, 12, 12, 0);
    run_att_kv(MF_ENC_F16, 9, 36, 72, 1);
}

#endif

#if defined(MF_ARM_KERNEL_F32)
static void test_attention(void)
{
    for (unsigned kind = 0; kind < 4; kind++) {
        for (uint32_t n = 1; n <= 70; n++) run_softmax(n, kind);
        run_softmax(257, kind);
    }
    static const uint32_t hds[] = {8, 16, 24, 32, 64};
    for (unsigned h = 0; h < sizeof hds / sizeof hds[0]; h++)
        for (uint32_t s = 1; s <= 2; s++)
            for (unsigned kind = 0; kind < 6; kind++) {
                for (uint32_t n = 1; n <= 70; n++) run_att(n, hds[h], s * hds[h], kind);
                run_att(257, hds[h], s * hds[h], kind);
                if (s * hds[h] <= ATT_STRIDE) run_att(ATT_MAXPOS, hds[h], s * hds[h], kind);
            }
    /* head_dim not a multiple of 8: the portable code */
    run_att(5, 12, 12, 0);
    run_att(9, 36, 40, 1);
}
#endif

#if defined(MF_ARM_KERNEL_F32)
/* mf_quantize_activations_arm against the portable mf_quantize_activations
 * (quant_portable.o), byte for byte over the whole buffer and nothing
 * written past it. kind 0: values over a few units; 1: over many
 * magnitudes (frand_wide: zeros of both signs, subnormals); 2: one group
 * all zeros, another all -0; 3: a NaN, +inf or -inf in one group, or a
 * group of NaNs; 4: values on the rounding boundaries (k + 0.5) / inv and
 * one ulp either side; 5: one group's |max| in (0, 2^-100) (the kernel
 * must decline, -1) or exactly 2^-100 with subnormals beside it (it must
 * not). */
static uint8_t xq_ref[MF_QA_BYTES(MAXC, 4) + 4] __attribute__((aligned(4)));
static uint8_t xq_arm[MF_QA_BYTES(MAXC, 4) + 4] __attribute__((aligned(4)));

static void run_quantize(uint32_t cols, uint32_t group, unsigned kind)
{
    const uint32_t ng = cols / group, gsel = (uint32_t)(rng >> 35) % ng;
    int expect_decline = 0;
    for (uint32_t i = 0; i < cols; i++) x[i] = kind == 1 ? frand_wide() : frand() * 3.0f;
    if (kind == 2) {
        for (uint32_t i = 0; i < group; i++) x[gsel * group + i] = 0.0f;
        for (uint32_t i = 0; i < group; i++) x[((gsel + 1) % ng) * group + i] = -0.0f;
    }
    if (kind == 3) {
        uint32_t sel = (uint32_t)(rng >> 33) % 4u, at = (uint32_t)(rng >> 40) % cols;
        if (sel == 3)
            for (uint32_t i = 0; i < group; i++) x[gsel * group + i] = NAN;
        else
            x[at] = sel == 0 ? NAN : sel == 1 ? INFINITY : -INFINITY;
    }
    if (kind == 4)
        for (uint32_t g = 0; g < ng; g++) {
            float amax = 2.0f + (float)g;
            float inv = 127.0f / amax;
            x[g * group] = (g & 1u) ? -amax : amax;
            for (uint32_t i = 1; i < group; i++) {
                float b = ((float)((int)(rng >> 41) % 127) + 0.5f) / inv;
                uint32_t u;
                memcpy(&u, &b, 4);
                u += (uint32_t)(i % 3u) - 1u; /* one ulp below, on, above */
                memcpy(&b, &u, 4);
                x[g * group + i] = (i & 2u) ? -b : b;
                frand();
            }
        }
    if (kind == 5) { /* a group that must decline, or one just above the line */
        int decline = (rng >> 50) & 1u;
        for (uint32_t i = 0; i < group; i++) x[gsel * group + i] = frand() * 1e-39f;
        x[gsel * group] = decline ? 3e-31f : 0x1p-100f;
    }
    /* any kind may decline: frand_wide can fill a small group with zeros and
     * subnormals alone */
    for (uint32_t g = 0; g < ng && !expect_decline; g++) {
        float amax = 0.0f;
        for (uint32_t i = 0; i < group; i++)
            if (fabsf(x[g * group + i]) > amax) amax = fabsf(x[g * group + i]);
        expect_decline = amax > 0.0f && amax < 0x1p-100f;
    }
    size_t nb = MF_QA_BYTES(cols, group);
    memset(xq_ref, 0xA5, sizeof xq_ref);
    memset(xq_arm, 0xA5, sizeof xq_arm);
    mf_quantize_activations(x, cols, group, xq_ref);
    int r = mf_quantize_activations_arm(x, cols, group, xq_arm);
    check(r == (expect_decline ? -1 : 0), "quantize arm: wrong decline", kind, cols, group, 0,
          (uint32_t)-r);
    if (r != 0) return;
    size_t i = 0;
    while (i < nb && xq_ref[i] == xq_arm[i]) i++;
    check(i == nb, "quantize arm != portable (bytes)", kind, cols, group, 0, (uint32_t)i);
    check(xq_arm[nb] == 0xA5, "quantize arm wrote past the buffer", kind, cols, group, 0,
          (uint32_t)nb);
}

/* mf_silu_mul (Helium here) against mf_silu_mul_portable, bit for bit,
 * nothing written past n. kind 0: gates over a few units; 1: over
 * hundreds (lanes past |87| take the scalar path, alone or beside vector
 * lanes); 2: frand_wide gates and ups (zeros of both signs, subnormals,
 * 1e6); 3: a NaN, +inf or -inf gate; 4: gates near +-87 and ups so small
 * that the products are subnormal. */
static void run_silu(uint32_t n, unsigned kind)
{
    for (uint32_t i = 0; i < n; i++) {
        float gv = kind == 1 ? frand() * 300.0f : kind == 2 ? frand_wide() : frand() * 4.0f;
        if (kind == 4) gv = (frand() > 0.0f ? 1.0f : -1.0f) * (86.9f + frand() * 0.2f);
        att[i] = gv;
        x[i] = kind == 2 ? frand_wide() : kind == 4 ? frand() * 1e-30f : frand() * 2.0f;
    }
    if (kind == 3) {
        uint32_t sel = (uint32_t)(rng >> 33) % 3u;
        att[(uint32_t)(rng >> 40) % n] = sel == 0 ? NAN : sel == 1 ? INFINITY : -INFINITY;
    }
    memcpy(att2, att, sizeof(float) * n);
    att[n] = 555.0f, att2[n] = 555.0f;
    mf_silu_mul_portable(att2, x, n);
    mf_silu_mul(att, x, n);
    uint32_t i = 0;
    while (i < n && memcmp(&att[i], &att2[i], sizeof(float)) == 0) i++;
    check(i == n, "silu_mul arm != portable (bits)", kind, n, 0, 0, i);
    check(att[n] == 555.0f, "silu_mul arm wrote past n", kind, n, 0, 0, n);
}

static void test_silu(void)
{
    for (unsigned kind = 0; kind < 5; kind++) {
        for (uint32_t n = 1; n <= 40; n++) run_silu(n, kind);
        for (unsigned rep = 0; rep < 16; rep++) run_silu(512, kind);
    }
}

static void test_quantize(void)
{
    static const uint32_t shapes[][2] = {
        /* cols, group: the models' groups and the smallest the kernel takes */
        {32, 32}, {128, 32}, {256, 32}, {256, 64}, {512, 128}, {512, 256},
        {4, 4},   {16, 4},   {64, 16},  {96, 32},  {136, 8},   {500, 4},
    };
    for (unsigned i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        for (unsigned kind = 0; kind < 6; kind++)
            for (unsigned rep = 0; rep < 8; rep++) run_quantize(shapes[i][0], shapes[i][1], kind);
}
#endif

#if defined(MF_ARM_KERNEL_MVE)
static uint8_t rand_byte(void)
{
    (void)frand(); /* moves rng on */
    return (uint8_t)(rng >> 56);
}

static void crc_check(int ok, const char *what, size_t off, size_t n, uint32_t got, uint32_t want)
{
    if (!tally(ok)) return;
    con_puts("FAIL crc32 ");
    con_puts(what);
    con_puts(" off=");
    con_putu(off);
    con_puts(" n=");
    con_putu(n);
    con_puts(" got=");
    con_putu(got);
    con_puts(" want=");
    con_putu(want);
    con_puts("\n");
}

/* mf_crc32_arm against the tables of image.c (mf_crc32, linked here without
 * the Arm dispatch) and bit by bit: every length to 300 at four alignments,
 * chained from other registers, split at every point of a 100-byte buffer,
 * on random bytes, all zeros and all ones (the products' extremes), and a
 * 32 KiB buffer (an expert's size) whole and in two pieces. */
static void test_crc32(void)
{
    uint8_t *buf = wq; /* MAXRC + ... bytes */
    static const uint32_t starts[] = {0, 0xFFFFFFFFu, 0x12345678u};
    for (unsigned kind = 0; kind < 3; kind++) {
        for (size_t i = 0; i < 400; i++) buf[i] = kind == 0 ? rand_byte() : kind == 1 ? 0x00 : 0xFF;
        for (size_t off = 0; off < 4; off++)
            for (size_t n = 0; n <= 300; n++) {
                uint32_t s = starts[(n + off) % 3];
                uint32_t want = mf_crc32(s, buf + off, n), got = mf_crc32_arm(s, buf + off, n);
                crc_check(got == want, "vs tables", off, n, got, want);
                if (n % 7 == 0) crc_check(want == crc32_bitwise(s, buf + off, n), "tables vs bits", off, n, want,
                                          crc32_bitwise(s, buf + off, n));
            }
        uint32_t whole = mf_crc32(0, buf, 100);
        for (size_t cut = 0; cut <= 100; cut++) {
            uint32_t got = mf_crc32_arm(mf_crc32_arm(0, buf, cut), buf + cut, 100 - cut);
            crc_check(got == whole, "chained", cut, 100, got, whole);
        }
    }
    const size_t big = 32768;
    for (size_t i = 0; i < big; i++) buf[i] = rand_byte();
    uint32_t want = mf_crc32(0, buf, big);
    crc_check(mf_crc32_arm(0, buf, big) == want, "32 KiB", 0, big, mf_crc32_arm(0, buf, big), want);
    crc_check(mf_crc32_arm(mf_crc32_arm(0, buf, 12345), buf + 12345, big - 12345) == want, "32 KiB split",
              12345, big, mf_crc32_arm(mf_crc32_arm(0, buf, 12345), buf + 12345, big - 12345), want);
    static const uint8_t check[] = "123456789"; /* the CRC catalogue's check value */
    crc_check(mf_crc32_arm(0, check, 9) == 0xCBF43926u, "check", 0, 9, mf_crc32_arm(0, check, 9), 0xCBF43926u);
}
#endif

int main(void)
{
    const char *cl = board_cmdline();
    /* "bench-half": the f16 / bf16 cases (37-40) alone, intervals 3k+1 and
     * 3k+2 for case 37+k: on the M4 the whole bench does not reach them in
     * kcount.sh's time under -singlestep */
    if (cl && strstr(cl, "bench-half")) return bench_halves(37), 0;
    /* "bench-float": cases 20-34 alone (intervals 3k+1, 3k+2 for case 20+k) */
    if (cl && strstr(cl, "bench-float")) return bench_float(20), 0;
    if (cl && strstr(cl, "bench")) return bench();
    static const uint32_t shapes[][3] = {
        /* rows, cols, group */
        {1, 32, 32},   {2, 128, 32},  {3, 128, 32},  {16, 128, 32}, {7, 256, 32},
        {5, 256, 64},  {4, 256, 128}, {6, 512, 256}, {3, 100, 32},  {2, 48, 16},
        {3, 40, 16},   {5, 96, 32},   {9, 160, 32},  {2, 30, 10},   {4, 33, 33},
        {64, 128, 32}, {2, 136, 32},  {8, 192, 96},  {5, 128, 64}, {4, 64, 32},
        /* four rows per vector lane set, lanes q = rows / 4 rows apart */
        {8, 256, 64},  {12, 384, 128}, {13, 64, 32},
    };
    static const int encs[] = {MF_ENC_Q8, MF_ENC_Q4, MF_ENC_Q3, MF_ENC_Q2};
    for (unsigned e = 0; e < 4; e++) {
        int enc = encs[e];
        for (unsigned i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
            run_case(enc, shapes[i][0], shapes[i][1], shapes[i][2]);
    }
    for (uint32_t rows = 1; rows <= 17; rows++)
        for (uint32_t cols = 1; cols <= 70; cols++) run_f32(rows, cols);
    static const uint32_t f32_shapes[][2] = {{128, 128}, {256, 128}, {128, 256}, {3, 512}};
    for (unsigned i = 0; i < sizeof f32_shapes / sizeof f32_shapes[0]; i++)
        run_f32(f32_shapes[i][0], f32_shapes[i][1]);
#if defined(MF_ARM_KERNEL_MVE)
    test_crc32();
#endif
#if defined(MF_ARM_KERNEL_HALF)
    test_half();
#endif
#if defined(MF_ARM_KERNEL_KV)
    test_attention_kv();
#endif
#if defined(MF_ARM_KERNEL_F32)
    test_attention();
    test_quantize();
    test_silu();
#endif
    con_puts("test_kernels_" MF_ARM_KERNEL_NAME ": ");
    con_putu((uint64_t)passed);
    con_puts(" passed, ");
    con_putu((uint64_t)failed);
    con_puts(" failed\n");
    return failed ? 1 : 0;
}
