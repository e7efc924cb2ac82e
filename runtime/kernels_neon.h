/*
 * AArch64 NEON kernels for the integer matrix-vector products of
 * runtime/quant.c: Q8 or Q4 weights times int8-quantised activations, for
 * the Cortex-A class targets (sbc-sdcard: Raspberry Pi 4's Cortex-A72;
 * phone-ufs).
 *
 * ARMv8.0 baseline (the A72 has no dot-product instructions): SMULL /
 * SMULL2 into 16-bit lanes, pairwise-added into 32-bit lanes by SADALP.
 * When the compiler targets the dot-product extension (__ARM_FEATURE_DOTPROD,
 * e.g. -march=armv8.2-a+dotprod) SDOT does the same sums, 16 products per
 * instruction.
 *
 * Bit-identical to the portable kernels: the integer sums per group are
 * exact for every byte value (a q8 product, up to 128 * 128, is alone in its
 * 16-bit lane until SADALP widens it; a q4 lane sums at most 16 products of
 * up to 15 * 128), and the float work per group is the same expression in
 * the same order ((d_w * d_x) * acc, added to the row sum group after
 * group), done for four rows at once in the lanes of one vector. NEON is part of every AArch64 core, so there is no
 * run-time check; mf_quant_use_simd(0) still selects the portable code.
 * On other targets kernels_neon.c compiles to nothing.
 */
#ifndef MF_KERNELS_NEON_H
#define MF_KERNELS_NEON_H

#include <stdint.h>

#if defined(__aarch64__) && defined(__ARM_NEON)
#define MF_HAVE_NEON_KERNELS 1
#if defined(__ARM_FEATURE_DOTPROD)
#define MF_NEON_KERNEL_NAME "neon-sdot"
#else
#define MF_NEON_KERNEL_NAME "neon"
#endif
/* Same contract as mf_matvec_qa for Q8 / Q4 weights, for group a multiple
 * of 32 and cols a multiple of group (quant.c checks; other shapes take the
 * portable path). */
void mf_matvec_qa_q8_neon(const void *w, const void *xq, float *y, uint32_t rows, uint32_t cols,
                          uint32_t group);
void mf_matvec_qa_q4_neon(const void *w, const void *xq, float *y, uint32_t rows, uint32_t cols,
                          uint32_t group);
/* quant.c's mf_quantize_activations with its bytes, four values a step:
 * the same |max| (a compare and select, as the portable `if (a > amax)`,
 * which skips NaN; FMAX would not), scale and inverse, and per value the
 * same multiply, add of 0.5 and truncation (Linux leaves FPCR.FZ off, so
 * subnormals are not flushed). Returns -1, and does nothing, unless group
 * % 4 == 0 and cols % group == 0; the caller then runs the portable code. */
int mf_quantize_activations_neon(const float *x, uint32_t cols, uint32_t group, void *xq);
#endif

#endif
