/*
 * Host x86-64 SIMD (AVX2) kernels for the integer matrix-vector products of
 * runtime/quant.c: Q8 or Q4 weights times int8-quantised activations.
 * Bit-identical to the portable kernels: the integer sums per group are
 * exact and the float work per group is the same expression in the same
 * order ((d_w * d_x) * acc, added to the row sum group after group).
 *
 * Compiled with function-level target attributes, so no per-file flags are
 * needed; quant.c calls them only when mf_x86_have_avx2() says the CPU has
 * AVX2. On other targets kernels_x86.c compiles to nothing.
 */
#ifndef MF_KERNELS_X86_H
#define MF_KERNELS_X86_H

#include <stdint.h>

#if defined(__x86_64__) && defined(__GNUC__)
#define MF_HAVE_X86_KERNELS 1
/* 1 when the CPU supports AVX2 (checked once). */
int mf_x86_have_avx2(void);
/* Same contract as mf_matvec_qa for Q8 / Q4 weights, for group a multiple
 * of 32 and cols a multiple of group (quant.c checks; other shapes take the
 * portable path). */
void mf_matvec_qa_q8_avx2(const void *w, const void *xq, float *y, uint32_t rows, uint32_t cols,
                          uint32_t group);
void mf_matvec_qa_q4_avx2(const void *w, const void *xq, float *y, uint32_t rows, uint32_t cols,
                          uint32_t group);
/* quant.c's mf_quantize_activations with its bytes, eight values a step:
 * the same |max| (NaN skipped as the portable comparison skips it), scale
 * and inverse, and per value the same multiply, add of 0.5 and truncation
 * (x86 does not flush subnormals unless MXCSR is set to, and nothing here
 * sets it). Returns -1, and does nothing, unless group % 8 == 0 and cols %
 * group == 0; the caller then runs the portable code. */
int mf_quantize_activations_avx2(const float *x, uint32_t cols, uint32_t group, void *xq);
#endif

#endif
