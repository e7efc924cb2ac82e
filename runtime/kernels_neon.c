/*
 * AArch64 NEON kernels; see kernels_neon.h. Compiles to nothing elsewhere.
 */
#include "kernels_neon.h"

#if defined(MF_HAVE_NEON_KERNELS)

#include <arm_neon.h>

#include "quant.h"

static inline uint16_t ld16(const uint8_t *p)
{
    return (uint16_t)(p[0] | ((uint16_t)p[1] << 8));
}

#if !defined(__ARM_FEATURE_DOTPROD)
/* acc + the 16 products w[i] * x[i], pairwise into the 4 int32 lanes. A
 * 16-bit lane holds one product (|w x| <= 128 * 128 fits, two might not). */
static inline int32x4_t dot16_s8(int32x4_t acc, int8x16_t w, int8x16_t x)
{
    acc = vpadalq_s16(acc, vmull_s8(vget_low_s8(w), vget_low_s8(x)));
    return vpadalq_s16(acc, vmull_high_s8(w, x));
}
#endif

void mf_matvec_qa_q8_neon(const void *w, const void *xq, float *y, uint32_t rows, uint32_t cols,
                          uint32_t group)
{
    const uint8_t *p = (const uint8_t *)w;
    const int8_t *q = (const int8_t *)xq;
    const float *xd = (const float *)(const void *)((const uint8_t *)xq + ((cols + 3u) & ~3u));
    uint32_t r, c, k, g;
    for (r = 0; r < rows; r++) {
        float sum = 0.0f;
        for (c = 0, g = 0; c < cols; c += group, g++) {
            const int8_t *wp = (const int8_t *)(p + 2);
            int32x4_t a0 = vdupq_n_s32(0), a1 = a0;
            float d = mf_f16_to_f32(ld16(p));
            /* two accumulators: independent chains for the two halves */
            for (k = 0; k < group; k += 32u) {
#if defined(__ARM_FEATURE_DOTPROD)
                a0 = vdotq_s32(a0, vld1q_s8(wp + k), vld1q_s8(q + c + k));
                a1 = vdotq_s32(a1, vld1q_s8(wp + k + 16), vld1q_s8(q + c + k + 16));
#else
                a0 = dot16_s8(a0, vld1q_s8(wp + k), vld1q_s8(q + c + k));
                a1 = dot16_s8(a1, vld1q_s8(wp + k + 16), vld1q_s8(q + c + k + 16));
#endif
            }
            sum += d * xd[g] * (float)vaddvq_s32(vaddq_s32(a0, a1));
            p += 2u + group;
        }
        y[r] = sum;
    }
}

void mf_matvec_qa_q4_neon(const void *w, const void *xq, float *y, uint32_t rows, uint32_t cols,
                          uint32_t group)
{
    const uint8_t *p = (const uint8_t *)w;
    const int8_t *q = (const int8_t *)xq;
    const float *xd = (const float *)(const void *)((const uint8_t *)xq + ((cols + 3u) & ~3u));
    const int32_t *xs = (const int32_t *)(const void *)(xd + cols / group);
    const uint8x16_t m4 = vdupq_n_u8(0x0f);
    uint32_t r, c, k, g, h = group / 2u;
    for (r = 0; r < rows; r++) {
        float sum = 0.0f;
        for (c = 0, g = 0; c < cols; c += group, g++) {
            const uint8_t *pl = p + 2;
            const int8_t *xl = q + c, *xh = q + c + h;
            int32x4_t acc = vdupq_n_s32(0);
            float d = mf_f16_to_f32(ld16(p));
            /* byte j of the group holds level j (low nibble) and j + h (high);
             * the levels u are 0..15, the zero point 8 comes off at the end
             * as 8 * s[g] (s = the group's activation sum) */
#if defined(__ARM_FEATURE_DOTPROD)
            for (k = 0; k < h; k += 16u) {
                uint8x16_t b = vld1q_u8(pl + k);
                acc = vdotq_s32(acc, vreinterpretq_s8_u8(vandq_u8(b, m4)), vld1q_s8(xl + k));
                acc = vdotq_s32(acc, vreinterpretq_s8_u8(vshrq_n_u8(b, 4)), vld1q_s8(xh + k));
            }
#else
            /* |u x| <= 15 * 128: a 16-bit lane takes 16 products (two per
             * 16 bytes, at most 8 x 16 bytes) before it goes to 32 bits */
            for (k = 0; k < h; k += 128u) {
                uint32_t e = h - k < 128u ? h : k + 128u, j;
                int16x8_t t0 = vdupq_n_s16(0), t1 = t0;
                for (j = k; j < e; j += 16u) {
                    uint8x16_t b = vld1q_u8(pl + j);
                    int8x16_t lo = vreinterpretq_s8_u8(vandq_u8(b, m4));
                    int8x16_t hi = vreinterpretq_s8_u8(vshrq_n_u8(b, 4));
                    int8x16_t x0 = vld1q_s8(xl + j), x1 = vld1q_s8(xh + j);
                    t0 = vmlal_s8(t0, vget_low_s8(lo), vget_low_s8(x0));
                    t0 = vmlal_s8(t0, vget_low_s8(hi), vget_low_s8(x1));
                    t1 = vmlal_high_s8(t1, lo, x0);
                    t1 = vmlal_high_s8(t1, hi, x1);
                }
                acc = vpadalq_s16(acc, t0);
                acc = vpadalq_s16(acc, t1);
            }
#endif
            sum += d * xd[g] * (float)(vaddvq_s32(acc) - 8 * xs[g]);
            p += 2u + h;
        }
        y[r] = sum;
    }
}

#else
typedef int mf_kernels_neon_unused; /* nothing to compile on this target */
#endif
