/*
 * Weight encodings and the matrix-vector kernels over them.
 *
 * A matrix [rows, cols] is stored row after row. Quantised encodings split
 * each row into groups of `group` values along the input (column) dimension;
 * the last group of a row may be shorter when cols % group != 0. The exact
 * byte layout of each encoding is specified in docs/image-format.md and is
 * what mf_quantize_matrix writes and the kernels read.
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

/* Decodes row `row` of an encoded matrix into out[cols]. */
void mf_dequantize_row(int enc, const void *w, uint32_t row, uint32_t cols, uint32_t group,
                       float *out);

/* y[rows] = W[rows, cols] . x[cols] with f32 activations. */
void mf_matvec(int enc, const void *w, const float *x, float *y, uint32_t rows, uint32_t cols,
               uint32_t group);

/* f16 / bf16 helpers. */
float mf_f16_to_f32(uint16_t h);
uint16_t mf_f32_to_f16(float f);
float mf_bf16_to_f32(uint16_t b);

#endif
