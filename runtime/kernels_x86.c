/*
 * AVX2 kernels; see kernels_x86.h. Compiles to nothing off x86-64.
 */
#include "kernels_x86.h"

#if defined(MF_HAVE_X86_KERNELS)

#include <immintrin.h>
#include <string.h>

#include "quant.h"

#define AVX2 __attribute__((target("avx2")))

int mf_x86_have_avx2(void)
{
    static int have = -1;
    if (have < 0) {
        __builtin_cpu_init();
        have = __builtin_cpu_supports("avx2") ? 1 : 0;
    }
    return have;
}

static inline uint16_t ld16(const uint8_t *p)
{
    return (uint16_t)(p[0] | ((uint16_t)p[1] << 8));
}

/* Sum of the eight int32 lanes. */
AVX2 static inline int32_t hsum_i32(__m256i v)
{
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

/* 32 products of signed bytes (|values| <= 127) summed into 8 int32 lanes. */
AVX2 static inline __m256i dot32_s8(__m256i w, __m256i x)
{
    __m256i ax = _mm256_sign_epi8(x, x);
    __m256i sw = _mm256_sign_epi8(w, x);
    return _mm256_madd_epi16(_mm256_maddubs_epi16(ax, sw), _mm256_set1_epi16(1));
}

/* 32 products of unsigned levels (<= 15) and signed bytes. */
AVX2 static inline __m256i dot32_u4s8(__m256i u, __m256i x)
{
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, x), _mm256_set1_epi16(1));
}

AVX2 void mf_matvec_qa_q8_avx2(const void *w, const void *xq, float *y, uint32_t rows,
                               uint32_t cols, uint32_t group)
{
    const uint8_t *p = (const uint8_t *)w;
    const int8_t *q = (const int8_t *)xq;
    const float *xd = (const float *)(const void *)((const uint8_t *)xq + ((cols + 3u) & ~3u));
    uint32_t r, c, k, g;
    for (r = 0; r < rows; r++) {
        float sum = 0.0f;
        for (c = 0, g = 0; c < cols; c += group, g++) {
            __m256i acc = _mm256_setzero_si256();
            float d = mf_f16_to_f32(ld16(p));
            for (k = 0; k < group; k += 32u) {
                __m256i wv = _mm256_loadu_si256((const __m256i *)(const void *)(p + 2 + k));
                __m256i xv = _mm256_loadu_si256((const __m256i *)(const void *)(q + c + k));
                acc = _mm256_add_epi32(acc, dot32_s8(wv, xv));
            }
            sum += d * xd[g] * (float)hsum_i32(acc);
            p += 2u + group;
        }
        y[r] = sum;
    }
}

AVX2 void mf_matvec_qa_q4_avx2(const void *w, const void *xq, float *y, uint32_t rows,
                               uint32_t cols, uint32_t group)
{
    const uint8_t *p = (const uint8_t *)w;
    const int8_t *q = (const int8_t *)xq;
    const float *xd = (const float *)(const void *)((const uint8_t *)xq + ((cols + 3u) & ~3u));
    const int32_t *xs = (const int32_t *)(const void *)(xd + cols / group);
    const __m128i m4 = _mm_set1_epi8(0x0f);
    uint32_t r, c, k, g, h = group / 2u;
    for (r = 0; r < rows; r++) {
        float sum = 0.0f;
        for (c = 0, g = 0; c < cols; c += group, g++) {
            __m256i acc = _mm256_setzero_si256();
            float d = mf_f16_to_f32(ld16(p));
            /* byte j of the group holds level j (low nibble) and j + h (high) */
            for (k = 0; k < h; k += 16u) {
                __m128i b = _mm_loadu_si128((const __m128i *)(const void *)(p + 2 + k));
                __m256i u = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(b, 4), m4),
                                             _mm_and_si128(b, m4));
                __m256i xv = _mm256_set_m128i(
                    _mm_loadu_si128((const __m128i *)(const void *)(q + c + h + k)),
                    _mm_loadu_si128((const __m128i *)(const void *)(q + c + k)));
                acc = _mm256_add_epi32(acc, dot32_u4s8(u, xv));
            }
            sum += d * xd[g] * (float)(hsum_i32(acc) - 8 * xs[g]);
            p += 2u + h;
        }
        y[r] = sum;
    }
}

#else
typedef int mf_kernels_x86_unused; /* nothing to compile on this target */
#endif
