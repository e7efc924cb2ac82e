/*
 * Cortex-M kernels for the integer matrix-vector products of runtime/quant.c:
 * int8 (Q8), 4-bit (Q4), 3-bit (Q3) or 2-bit (Q2) weights times
 * int8-quantised activations, with the byte layouts of docs/encodings.md
 * (quant.h: mf_quantize_activations).
 *
 *  - Helium / MVE (__ARM_FEATURE_MVE, Cortex-M55/M85): VMLADAVA.S8 over 16
 *    bytes per instruction; four rows at a time, one per vector lane, sharing
 *    the activation loads: per group the four integer sums go into one
 *    vector, the four rows' scales come in with one gather (VLDRH, VCVTB) and
 *    each lane does its row's float work in quant.c's order. Q3 and Q2
 *    unpack 32 levels at a time into two byte vectors (VSLI, VAND, VSHR)
 *    against activation vectors paired the same way.
 *  - DSP extension (__ARM_FEATURE_DSP, Cortex-M4/M7/M33): SXTB16 + SMLAD,
 *    two 16-bit multiply-accumulates per instruction.
 *
 * Results are bit-identical to the portable kernels in quant.c: the integer
 * sums are exact and the float work per group is done with the same
 * operations in the same order ((d_w * d_x) * acc, then added to the row sum
 * group after group), so firmware and host produce the same text.
 *
 * With MVE floating point (M55) also the f32 product of ops.c's mf_matmul
 * for one token, in mf_dot_f32's order and so with its bits, the f16/bf16
 * product of quant.c's mf_matvec, attention, the activation quantisation
 * and SwiGLU; with MVE (integer) the CRC-32 of image.c.
 *
 * quant.c includes this header and dispatches here when the build defines
 * MF_HAVE_ARM_KERNELS (boards/NAME/board.mk adds -DMF_HAVE_ARM_KERNELS for
 * cores that have MVE or DSP).
 */
#ifndef MF_KERNELS_ARM_H
#define MF_KERNELS_ARM_H

#include <stddef.h>
#include <stdint.h>

#if defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 1)
#define MF_ARM_KERNEL_MVE 1
#define MF_ARM_KERNEL_NAME "mve"
#elif defined(__ARM_FEATURE_DSP)
#define MF_ARM_KERNEL_DSP 1
#define MF_ARM_KERNEL_NAME "dsp"
#else
#define MF_ARM_KERNEL_NAME "none"
#endif

/* MVE with floating point (M55/M85 with the FPU): the f32 kernel too. */
#if defined(MF_ARM_KERNEL_MVE) && (__ARM_FEATURE_MVE & 2)
#define MF_ARM_KERNEL_F32 1
#endif

/* f16 / bf16 weights: by Helium on MVE-float cores, by scalar VFP (VCVTB /
 * VCVTT) on DSP cores with an FPU (M4F, M7, M33). */
#if defined(MF_ARM_KERNEL_F32) || (defined(MF_ARM_KERNEL_DSP) && defined(__ARM_FP))
#define MF_ARM_KERNEL_HALF 1
#endif

#if defined(MF_HAVE_ARM_KERNELS) && !defined(MF_ARM_KERNEL_MVE) && !defined(MF_ARM_KERNEL_DSP)
#error "MF_HAVE_ARM_KERNELS needs a core with MVE or the DSP extension"
#endif

#if defined(MF_ARM_KERNEL_MVE) || defined(MF_ARM_KERNEL_DSP)
/* y[rows] = W . x, W Q8 [rows, cols] in groups of `group`, xq from
 * mf_quantize_activations(x, cols, group, xq). */
void mf_matvec_qa_q8_arm(const void *w, const void *xq, float *y, uint32_t rows, uint32_t cols,
                         uint32_t group);
/* Same for Q4 weights. */
void mf_matvec_qa_q4_arm(const void *w, const void *xq, float *y, uint32_t rows, uint32_t cols,
                         uint32_t group);
/* Same for Q3 and Q2 weights. */
void mf_matvec_qa_q3_arm(const void *w, const void *xq, float *y, uint32_t rows, uint32_t cols,
                         uint32_t group);
void mf_matvec_qa_q2_arm(const void *w, const void *xq, float *y, uint32_t rows, uint32_t cols,
                         uint32_t group);
#endif

#if defined(MF_ARM_KERNEL_MVE)
/* image.c's mf_crc32 (CRC-32/IEEE, chainable), by folding 16-byte blocks
 * with Helium's 16-bit carry-less multiplies: about 1 instruction per byte
 * against 3.50 for the tables. Any alignment. */
uint32_t mf_crc32_arm(uint32_t crc, const void *data, size_t n);
#endif

#if defined(MF_ARM_KERNEL_HALF)
/* quant.c's mf_matvec for f16 (bf16 = 0) or bf16 weights, rows of cols
 * halves from w (2-byte aligned; x 4-byte aligned), with its bits: four
 * lane sums per row as dot_f16_f32 / dot_bf16_f32 keep them. */
void mf_matvec_half_arm(int bf16, const uint16_t *w, const float *x, float *y, uint32_t rows,
                        uint32_t cols);
#endif

/* Attention over a q8 / f16 / bf16 KV cache: Helium, or the scalar FPU of
 * the DSP cores (M4F/M7/M33). */
#if defined(MF_ARM_KERNEL_F32) || (defined(MF_ARM_KERNEL_DSP) && defined(MF_ARM_KERNEL_HALF))
#define MF_ARM_KERNEL_KV 1
/* ops.c's mf_attention_head_kv (q8, f16 or bf16 KV rows) for head_dim % 8
 * == 0 (q8: kv_stride % head_dim == 0 too), with the bits of the portable
 * code on this core; widens in registers, so no scratch row. */
void mf_attention_head_kv_arm(float *out, const float *q, int enc, const void *k, const void *v,
                              const uint16_t *k_scale, const uint16_t *v_scale, size_t kv_stride,
                              uint32_t n_pos, uint32_t head_dim, float scale, float *att);
/* The portable mf_attention_head_kv (ops.c), which the test compares
 * mf_attention_head_kv_arm with. */
void mf_attention_head_kv_portable(float *out, const float *q, int enc, const void *k,
                                   const void *v, const uint16_t *k_scale,
                                   const uint16_t *v_scale, size_t kv_stride, uint32_t n_pos,
                                   uint32_t head_dim, float *row, float *att);
#endif

#if defined(MF_ARM_KERNEL_F32)
/* y[rows] = W . x, W f32 [rows, cols] (4-byte aligned), with the same bits
 * as ops.c's mf_dot_f32 on each row. */
void mf_matvec_f32_arm(const float *w, const float *x, float *y, uint32_t rows, uint32_t cols);

/* ops.c's mf_attention_head for head_dim % 8 == 0 (scale = its
 * 1/sqrt(head_dim)), and its mf_softmax, with the bits of the portable code
 * on this core. */
void mf_attention_head_arm(float *out, const float *q, const float *k, const float *v,
                           size_t kv_stride, uint32_t n_pos, uint32_t head_dim, float scale,
                           float *att);
void mf_softmax_arm(float *x, uint32_t n);
/* The portable mf_attention_head (ops.c), which the firmware test compares
 * mf_attention_head_arm with. */
void mf_attention_head_portable(float *out, const float *q, const float *k, const float *v,
                                size_t kv_stride, uint32_t n_pos, uint32_t head_dim, float *att);
/* The portable mf_softmax (ops.c), which the test compares mf_softmax_arm
 * with. */
void mf_softmax_portable(float *x, uint32_t n);
/* quant.c's mf_quantize_activations for group % 4 == 0 and cols % group ==
 * 0, with its bytes: each group's |max| on the integer bits of the values
 * (Helium flushes subnormals to zero; integers are not flushed), the scale
 * and its inverse in scalar VFP as quant.c computes them, then four values
 * per step through the same multiply, add of 0.5 and truncation. Returns
 * -1, and the caller must run the portable code, when a group's |max| is
 * in (0, 2^-100): only there can a subnormal input, flushed here, quantise
 * to a non-zero level; below it every product rounds to level 0 either
 * way. */
/* ops.c's mf_silu_mul with its bits: mf_expf(-g) four lanes at a time by
 * its steps where |g| <= 87 in all four (its one-scaling branch; the scalar
 * mf_silu otherwise), then per lane in scalar VFP g / (1 + e) * u, since
 * Helium has no divide and would flush a subnormal product. */
void mf_silu_mul_arm(float *g, const float *u, size_t n);
/* The portable mf_silu_mul (ops.c). */
void mf_silu_mul_portable(float *g, const float *u, size_t n);
int mf_quantize_activations_arm(const float *x, uint32_t cols, uint32_t group, void *xq);
#endif

#endif
