/*
 * Weight encodings and the matrix-vector kernels over them.
 *
 * A matrix [rows, cols] is stored row after row. Quantised encodings split
 * each row into groups of `group` values along the input (column) dimension;
 * the last group of a row may be shorter when cols % group != 0. The exact
 * byte layout of each encoding is specified in docs/encodings.md and is
 * what mf_quantize_matrix writes and the kernels read. Encoded rows are
 * byte-packed (no alignment); kernels read them with byte loads.
 *
 * Every kernel has a portable C reference (quant.c); SIMD variants
 * (runtime/kernels_*.c) must produce results within the bound stated in
 * tests/test_quant.c of that reference.
 */
#ifndef MF_QUANT_H
#define MF_QUANT_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    MF_ENC_F32 = 0,
    MF_ENC_BF16 = 1,
    MF_ENC_F16 = 2,
    MF_ENC_Q8 = 3, /* symmetric int8, f16 scale per group */
    MF_ENC_Q4 = 4,
    MF_ENC_Q3 = 5,
    MF_ENC_Q2 = 6,
    MF_ENC_COUNT
} mf_encoding;

/* Largest group the low-bit encodings (Q4, Q3, Q2) accept; Q8 takes any. */
#define MF_QMAX_GROUP 256u

/* "f32", "q8", ...; NULL for an unknown value. */
const char *mf_encoding_name(int enc);
/* Parses a name; returns -1 when unknown. */
int mf_encoding_from_name(const char *name);
/* Nominal bits per weight, scales included, for a full group. */
double mf_encoding_bits(int enc, uint32_t group);

/* Bytes of one encoded row / one encoded matrix. 0 for an invalid encoding. */
size_t mf_row_bytes(int enc, uint32_t cols, uint32_t group);
size_t mf_matrix_bytes(int enc, uint32_t rows, uint32_t cols, uint32_t group);

/* Encodes a row-major float matrix. dst must hold mf_matrix_bytes(). */
void mf_quantize_matrix(int enc, const float *src, uint32_t rows, uint32_t cols, uint32_t group,
                        void *dst);

/* Same, with the Q4/Q3/Q2 scale search minimising the squared error
 * weighted by importance[cols] (e.g. the mean square of each input
 * element over calibration activations; NULL = uniform). Same layout:
 * readers do not know the difference. Q8 and float encodings ignore it. */
void mf_quantize_matrix_weighted(int enc, const float *src, uint32_t rows, uint32_t cols,
                                 uint32_t group, const float *importance, void *dst);

/* Decodes row `row` of an encoded matrix into out[cols]. */
void mf_dequantize_row(int enc, const void *w, uint32_t row, uint32_t cols, uint32_t group,
                       float *out);

/* y[rows] = W[rows, cols] . x[cols] with f32 activations. */
void mf_matvec(int enc, const void *w, const float *x, float *y, uint32_t rows, uint32_t cols,
               uint32_t group);

/*
 * Activations quantised per group to int8 (symmetric, scale = max|x|/127)
 * for the integer kernels. Layout of the buffer (must be 4-byte aligned):
 *   int8  q[cols], zero-padded to a multiple of 4 bytes;
 *   float   d[ngroups]  scale of each group (x ~ d * q);
 *   int32_t s[ngroups]  sum of the group's q (for zero-point encodings).
 * ngroups = ceil(cols / group). MF_QA_BYTES gives the size for static buffers.
 */
#define MF_QA_BYTES(cols, group) \
    ((((size_t)(cols) + 3u) & ~(size_t)3u) + 8u * (((size_t)(cols) + (group) - 1u) / (group)))
size_t mf_qa_bytes(uint32_t cols, uint32_t group);
void mf_quantize_activations(const float *x, uint32_t cols, uint32_t group, void *xq);

/* y[rows] = W . x where x was quantised by mf_quantize_activations with the
 * same group. Q8..Q2 use integer dot products per group (int32 accumulate,
 * then scale); float encodings multiply by the dequantised activations. */
void mf_matvec_qa(int enc, const void *w, const void *xq, float *y, uint32_t rows, uint32_t cols,
                  uint32_t group);

/* Host SIMD kernels (runtime/kernels_x86.c AVX2, runtime/kernels_neon.c
 * NEON on AArch64) are used when built in and the CPU has them;
 * mf_quant_use_simd(0) forces the portable C kernels (tests compare both).
 * Returns the previous setting. No effect on the Cortex-M kernels. */
int mf_quant_use_simd(int on);

/* f16 / bf16 helpers (round to nearest even). */
float mf_f16_to_f32(uint16_t h);
uint16_t mf_f32_to_f16(float f);

/* One KV-cache row at q8 (docs/encodings.md, "q8 KV rows"): n int8 levels
 * in [-127, 127] into q, the f16 scale returned. The scale follows the
 * weights' q8 rule (f16(max|x| / 127), one f16 up if that clips the largest
 * value by more than half a step) and saturates at the largest finite f16
 * instead of becoming inf (which would widen to NaN); a level is x / scale
 * rounded half away from zero, an infinite one clamped, a NaN one 0. */
uint16_t mf_quantize_kv_q8(const float *x, uint32_t n, int8_t *q);
float mf_bf16_to_f32(uint16_t b);
uint16_t mf_f32_to_bf16(float f);

#endif
