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

/* mf_f16_to_f32 (quant.c) on four lanes, the same steps: the f16 fields
 * moved into a float and rescaled by 2^112, inf and NaN only moved. (F16C
 * would quieten a signalling NaN; these are the portable bits.) */
AVX2 static inline __m128 f16x4_to_f32(__m128i h)
{
    __m128i bits = _mm_or_si128(_mm_slli_epi32(_mm_and_si128(h, _mm_set1_epi32(0x8000)), 16),
                                _mm_slli_epi32(_mm_and_si128(h, _mm_set1_epi32(0x7fff)), 13));
    __m128i special = _mm_cmpeq_epi32(_mm_and_si128(h, _mm_set1_epi32(0x7c00)),
                                      _mm_set1_epi32(0x7c00));
    __m128 f = _mm_castsi128_ps(
        _mm_or_si128(bits, _mm_and_si128(special, _mm_set1_epi32(0x7f800000))));
    return _mm_blendv_ps(_mm_mul_ps(f, _mm_set1_ps(0x1p112f)), f, _mm_castsi128_ps(special));
}

/* 32 bytes from p, any alignment. */
AVX2 static inline __m256i load32(const void *p)
{
    return _mm256_loadu_si256((const __m256i *)p);
}

/* The four rows' scales of the current group. */
AVX2 static inline __m128 scales4(const uint8_t *p0, const uint8_t *p1, const uint8_t *p2,
                                  const uint8_t *p3)
{
    return f16x4_to_f32(_mm_set_epi32(ld16(p3), ld16(p2), ld16(p1), ld16(p0)));
}

/* Lane i = the sum of a_i's eight lanes (integer: exact in any order). */
AVX2 static inline __m128i hsum4_i32(__m256i a0, __m256i a1, __m256i a2, __m256i a3)
{
    __m256i s = _mm256_hadd_epi32(_mm256_hadd_epi32(a0, a1), _mm256_hadd_epi32(a2, a3));
    return _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
}

/* Rows are done four at a time, one per lane of the float work, so the
 * activation loads and the reductions are shared; each lane does its
 * row's float work with quant.c's scalar operations in its order, sum +=
 * (d_w * d_x) * (float)acc (ISO C mode contracts nothing into an FMA).
 * The last 1-3 rows take the one-row loop. */
AVX2 void mf_matvec_qa_q8_avx2(const void *w, const void *xq, float *y, uint32_t rows,
                               uint32_t cols, uint32_t group)
{
    const uint8_t *p = (const uint8_t *)w;
    const int8_t *q = (const int8_t *)xq;
    const float *xd = (const float *)(const void *)((const uint8_t *)xq + ((cols + 3u) & ~3u));
    const size_t rb = (size_t)(cols / group) * (2u + group);
    uint32_t r, c, k, g;
    for (r = 0; r + 4u <= rows; r += 4u) {
        const uint8_t *p0 = p, *p1 = p + rb, *p2 = p + 2 * rb, *p3 = p + 3 * rb;
        __m128 sum = _mm_setzero_ps();
        for (c = 0, g = 0; c < cols; c += group, g++) {
            __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
            __m128 d = scales4(p0, p1, p2, p3);
            for (k = 0; k < group; k += 32u) {
                __m256i xv = _mm256_loadu_si256((const __m256i *)(const void *)(q + c + k));
                a0 = _mm256_add_epi32(a0, dot32_s8(load32(p0 + 2 + k), xv));
                a1 = _mm256_add_epi32(a1, dot32_s8(load32(p1 + 2 + k), xv));
                a2 = _mm256_add_epi32(a2, dot32_s8(load32(p2 + 2 + k), xv));
                a3 = _mm256_add_epi32(a3, dot32_s8(load32(p3 + 2 + k), xv));
            }
            sum = _mm_add_ps(sum, _mm_mul_ps(_mm_mul_ps(d, _mm_set1_ps(xd[g])),
                                             _mm_cvtepi32_ps(hsum4_i32(a0, a1, a2, a3))));
            p0 += 2u + group, p1 += 2u + group, p2 += 2u + group, p3 += 2u + group;
        }
        _mm_storeu_ps(y + r, sum);
        p += 4 * rb;
    }
    for (; r < rows; r++) {
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

/* Bytes k..k+15 of a Q4 group hold levels k.. (low nibbles) and k+h..
 * (high): as 32 unsigned levels in the order of x[k..k+15], x[k+h..]. */
AVX2 static inline __m256i levels32(const uint8_t *b)
{
    const __m128i m4 = _mm_set1_epi8(0x0f);
    __m128i v = _mm_loadu_si128((const __m128i *)(const void *)b);
    return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(v, 4), m4), _mm_and_si128(v, m4));
}

AVX2 void mf_matvec_qa_q4_avx2(const void *w, const void *xq, float *y, uint32_t rows,
                               uint32_t cols, uint32_t group)
{
    const uint8_t *p = (const uint8_t *)w;
    const int8_t *q = (const int8_t *)xq;
    const float *xd = (const float *)(const void *)((const uint8_t *)xq + ((cols + 3u) & ~3u));
    const int32_t *xs = (const int32_t *)(const void *)(xd + cols / group);
    uint32_t r, c, k, g, h = group / 2u;
    const size_t rb = (size_t)(cols / group) * (2u + h);
    for (r = 0; r + 4u <= rows; r += 4u) {
        const uint8_t *p0 = p, *p1 = p + rb, *p2 = p + 2 * rb, *p3 = p + 3 * rb;
        __m128 sum = _mm_setzero_ps();
        for (c = 0, g = 0; c < cols; c += group, g++) {
            __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
            __m128 d = scales4(p0, p1, p2, p3);
            for (k = 0; k < h; k += 16u) {
                __m256i xv = _mm256_set_m128i(
                    _mm_loadu_si128((const __m128i *)(const void *)(q + c + h + k)),
                    _mm_loadu_si128((const __m128i *)(const void *)(q + c + k)));
                a0 = _mm256_add_epi32(a0, dot32_u4s8(levels32(p0 + 2 + k), xv));
                a1 = _mm256_add_epi32(a1, dot32_u4s8(levels32(p1 + 2 + k), xv));
                a2 = _mm256_add_epi32(a2, dot32_u4s8(levels32(p2 + 2 + k), xv));
                a3 = _mm256_add_epi32(a3, dot32_u4s8(levels32(p3 + 2 + k), xv));
            }
            sum = _mm_add_ps(
                sum, _mm_mul_ps(_mm_mul_ps(d, _mm_set1_ps(xd[g])),
                                _mm_cvtepi32_ps(_mm_sub_epi32(hsum4_i32(a0, a1, a2, a3),
                                                              _mm_set1_epi32(8 * xs[g])))));
            p0 += 2u + h, p1 += 2u + h, p2 += 2u + h, p3 += 2u + h;
        }
        _mm_storeu_ps(y + r, sum);
        p += 4 * rb;
    }
    for (; r < rows; r++) {
        float sum = 0.0f;
        for (c = 0, g = 0; c < cols; c += group, g++) {
            __m256i acc = _mm256_setzero_si256();
            float d = mf_f16_to_f32(ld16(p));
            for (k = 0; k < h; k += 16u) {
                __m256i xv = _mm256_set_m128i(
                    _mm_loadu_si128((const __m128i *)(const void *)(q + c + h + k)),
                    _mm_loadu_si128((const __m128i *)(const void *)(q + c + k)));
                acc = _mm256_add_epi32(acc, dot32_u4s8(levels32(p + 2 + k), xv));
            }
            sum += d * xd[g] * (float)(hsum_i32(acc) - 8 * xs[g]);
            p += 2u + h;
        }
        y[r] = sum;
    }
}

/* |x| on the bits (and with the sign bit cleared): NaN stays NaN. */
AVX2 static inline __m256 abs8(__m256 v)
{
    return _mm256_and_ps(v, _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff)));
}

AVX2 int mf_quantize_activations_avx2(const float *x, uint32_t cols, uint32_t group, void *xq)
{
    int8_t *q = (int8_t *)xq;
    float *d;
    int32_t *s;
    uint32_t c, i, g = 0;
    if (group == 0 || group % 8u || cols % group) return -1;
    d = (float *)(void *)((uint8_t *)xq + ((cols + 3u) & ~3u));
    s = (int32_t *)(void *)(d + cols / group);
    for (c = 0; c < cols; c += group, g++) {
        __m256 vmax = _mm256_setzero_ps(), vinv;
        __m256i vsum = _mm256_setzero_si256();
        __m128 m;
        float amax, inv;
        /* max(a, b) returns b when a is NaN: NaN never enters the lanes,
         * as the portable `if (a > amax)` never takes it */
        for (i = 0; i < group; i += 8u) vmax = _mm256_max_ps(abs8(_mm256_loadu_ps(x + c + i)), vmax);
        m = _mm_max_ps(_mm256_castps256_ps128(vmax), _mm256_extractf128_ps(vmax, 1));
        m = _mm_max_ps(m, _mm_movehl_ps(m, m));
        m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
        amax = _mm_cvtss_f32(m);
        d[g] = amax / 127.0f;
        inv = amax > 0.0f ? 127.0f / amax : 0.0f;
        vinv = _mm256_set1_ps(inv);
        for (i = 0; i < group; i += 8u) {
            /* round_int(v, -127, 127): sign(v) * (int)(|v| + 0.5f) with v
             * first clamped to [-127, 127] (127 for v >= 127, -127 for v <=
             * -127); max(v, -127) returns -127 when v is NaN, as round_int */
            __m256 v = _mm256_mul_ps(_mm256_loadu_ps(x + c + i), vinv);
            __m256i t;
            __m128i w16;
            v = _mm256_min_ps(_mm256_max_ps(v, _mm256_set1_ps(-127.0f)), _mm256_set1_ps(127.0f));
            t = _mm256_cvttps_epi32(_mm256_add_ps(abs8(v), _mm256_set1_ps(0.5f)));
            t = _mm256_sign_epi32(t, _mm256_castps_si256(v));
            vsum = _mm256_add_epi32(vsum, t);
            w16 = _mm_packs_epi32(_mm256_castsi256_si128(t), _mm256_extracti128_si256(t, 1));
            _mm_storel_epi64((__m128i *)(void *)(q + c + i), _mm_packs_epi16(w16, w16));
        }
        s[g] = hsum_i32(vsum);
    }
    return 0; /* cols is a multiple of 8: no padding bytes after the levels */
}

#else
typedef int mf_kernels_x86_unused; /* nothing to compile on this target */
#endif
