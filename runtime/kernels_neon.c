/*
 * AArch64 NEON kernels; see kernels_neon.h. Compiles to nothing elsewhere.
 *
 * Four rows at a time, one per vector lane (as the Helium kernels): the
 * activation loads are shared, the four integer sums of a group are reduced
 * into one vector by two pairwise adds, and each lane then does its row's
 * float work with the scalar operations of quant.c, in its order:
 * sum += (d_w * d_x) * (float)acc. AArch64 vector float arithmetic follows
 * FPCR like the scalar unit (no flush to zero unless asked: Linux leaves it
 * off), and ISO C mode compiles no fused multiply-adds, so each lane has
 * the portable kernel's bits. A last block of 1-3 rows repeats its last row
 * in the spare lanes and stores only its own.
 */
#include "kernels_neon.h"

#if defined(MF_HAVE_NEON_KERNELS)

#include <arm_neon.h>

#include "quant.h"

static inline uint16_t ld16(const uint8_t *p)
{
    return (uint16_t)(p[0] | ((uint16_t)p[1] << 8));
}

/* mf_f16_to_f32 (quant.c) on four lanes, the same steps: the f16 fields
 * moved into a float and rescaled by 2^112, inf and NaN only moved. */
static inline float32x4_t f16x4_to_f32(uint32x4_t h)
{
    uint32x4_t bits = vorrq_u32(vshlq_n_u32(vandq_u32(h, vdupq_n_u32(0x8000u)), 16),
                                vshlq_n_u32(vandq_u32(h, vdupq_n_u32(0x7fffu)), 13));
    uint32x4_t e = vandq_u32(h, vdupq_n_u32(0x7c00u));
    uint32x4_t special = vceqq_u32(e, vdupq_n_u32(0x7c00u));
    float32x4_t f = vreinterpretq_f32_u32(vorrq_u32(bits, vandq_u32(special, vdupq_n_u32(0x7f800000u))));
    return vbslq_f32(special, f, vmulq_f32(f, vdupq_n_f32(0x1p112f)));
}

/* The four rows' scales of the current group. */
static inline uint32x4_t scales4(const uint8_t *p0, const uint8_t *p1, const uint8_t *p2,
                                 const uint8_t *p3)
{
    uint32x4_t h = vdupq_n_u32(ld16(p0));
    h = vsetq_lane_u32(ld16(p1), h, 1);
    h = vsetq_lane_u32(ld16(p2), h, 2);
    return vsetq_lane_u32(ld16(p3), h, 3);
}

/* Lane i = the sum of a_i's four lanes (integer: exact in any order). */
static inline int32x4_t hsum4(int32x4_t a0, int32x4_t a1, int32x4_t a2, int32x4_t a3)
{
    return vpaddq_s32(vpaddq_s32(a0, a1), vpaddq_s32(a2, a3));
}

#if defined(__ARM_FEATURE_DOTPROD)
#define DOT16(acc, w, x) ((acc) = vdotq_s32((acc), (w), (x)))
#else
/* acc + the 16 products w[i] * x[i], pairwise into the 4 int32 lanes. A
 * 16-bit lane holds one product (|w x| <= 128 * 128 fits, two might not). */
static inline int32x4_t dot16_s8(int32x4_t acc, int8x16_t w, int8x16_t x)
{
    acc = vpadalq_s16(acc, vmull_s8(vget_low_s8(w), vget_low_s8(x)));
    return vpadalq_s16(acc, vmull_high_s8(w, x));
}
#define DOT16(acc, w, x) ((acc) = dot16_s8((acc), (w), (x)))
#endif

static inline void store_rows(float *y, float32x4_t v, uint32_t n)
{
    float t[4];
    uint32_t i;
    if (n == 4) {
        vst1q_f32(y, v);
        return;
    }
    vst1q_f32(t, v);
    for (i = 0; i < n; i++) y[i] = t[i];
}

/* Rows r..r+3 (one per lane), n = how many exist; a lane past the last
 * row reads the last row again and its sum is not stored (store_rows). */
static inline uint32_t four_rows(const uint8_t *base, uint32_t r, uint32_t rows, size_t rb,
                                 const uint8_t **p0, const uint8_t **p1, const uint8_t **p2,
                                 const uint8_t **p3)
{
    uint32_t n = rows - r < 4u ? rows - r : 4u;
    *p0 = base + r * rb;
    *p1 = *p0 + (n > 1 ? rb : 0);
    *p2 = *p0 + (n > 2 ? 2 * rb : (n - 1) * rb);
    *p3 = *p0 + (n - 1) * rb;
    return n;
}

void mf_matvec_qa_q8_neon(const void *w, const void *xq, float *y, uint32_t rows, uint32_t cols,
                          uint32_t group)
{
    const uint8_t *base = (const uint8_t *)w;
    const int8_t *q = (const int8_t *)xq;
    const float *xd = (const float *)(const void *)((const uint8_t *)xq + ((cols + 3u) & ~3u));
    const size_t rb = (size_t)(cols / group) * (2u + group);
    uint32_t r, c, k, g;
    for (r = 0; r < rows; r += 4) {
        const uint8_t *p0, *p1, *p2, *p3;
        uint32_t n = four_rows(base, r, rows, rb, &p0, &p1, &p2, &p3);
        float32x4_t sum = vdupq_n_f32(0.0f);
        for (c = 0, g = 0; c < cols; c += group, g++) {
            const int8_t *w0 = (const int8_t *)(p0 + 2), *w1 = (const int8_t *)(p1 + 2);
            const int8_t *w2 = (const int8_t *)(p2 + 2), *w3 = (const int8_t *)(p3 + 2);
            const int8_t *xc = q + c;
            int32x4_t a0 = vdupq_n_s32(0), a1 = a0, a2 = a0, a3 = a0;
            float32x4_t d = f16x4_to_f32(scales4(p0, p1, p2, p3));
            /* 32 values a step (group is a multiple of 32): half the loop
             * overhead of a group of 32 */
            for (k = 0; k < group; k += 32u) {
                int8x16_t xv = vld1q_s8(xc + k), xw = vld1q_s8(xc + k + 16);
                DOT16(a0, vld1q_s8(w0 + k), xv);
                DOT16(a1, vld1q_s8(w1 + k), xv);
                DOT16(a2, vld1q_s8(w2 + k), xv);
                DOT16(a3, vld1q_s8(w3 + k), xv);
                DOT16(a0, vld1q_s8(w0 + k + 16), xw);
                DOT16(a1, vld1q_s8(w1 + k + 16), xw);
                DOT16(a2, vld1q_s8(w2 + k + 16), xw);
                DOT16(a3, vld1q_s8(w3 + k + 16), xw);
            }
            sum = vaddq_f32(sum, vmulq_f32(vmulq_n_f32(d, xd[g]),
                                           vcvtq_f32_s32(hsum4(a0, a1, a2, a3))));
            p0 += 2u + group, p1 += 2u + group, p2 += 2u + group, p3 += 2u + group;
        }
        store_rows(y + r, sum, n);
    }
}

/* Q4 groups are at most MF_QMAX_GROUP values, so the 16-bit sums below
 * take at most 16 products each. */
_Static_assert(MF_QMAX_GROUP <= 256u, "kernels_neon.c: Q4 16-bit lanes sized for groups <= 256");

void mf_matvec_qa_q4_neon(const void *w, const void *xq, float *y, uint32_t rows, uint32_t cols,
                          uint32_t group)
{
    const uint8_t *base = (const uint8_t *)w;
    const int8_t *q = (const int8_t *)xq;
    const float *xd = (const float *)(const void *)((const uint8_t *)xq + ((cols + 3u) & ~3u));
    const int32_t *xs = (const int32_t *)(const void *)(xd + cols / group);
    const uint8x16_t m4 = vdupq_n_u8(0x0f);
    const uint32_t h = group / 2u;
    const size_t rb = (size_t)(cols / group) * (2u + h);
    uint32_t r, c, k, g;
    for (r = 0; r < rows; r += 4) {
        const uint8_t *p0, *p1, *p2, *p3;
        uint32_t n = four_rows(base, r, rows, rb, &p0, &p1, &p2, &p3);
        float32x4_t sum = vdupq_n_f32(0.0f);
        for (c = 0, g = 0; c < cols; c += group, g++) {
            const uint8_t *l0 = p0 + 2, *l1 = p1 + 2, *l2 = p2 + 2, *l3 = p3 + 2;
            const int8_t *xl = q + c, *xh = q + c + h;
            int32x4_t a0, a1, a2, a3;
            float32x4_t d = f16x4_to_f32(scales4(p0, p1, p2, p3));
            /* byte j of a group holds level j (low nibble) and j + h (high);
             * the levels u are 0..15, the zero point 8 comes off at the end
             * as 8 * s[g] (s = the group's activation sum). Named
             * accumulators, not arrays: GCC keeps arrays on the stack. */
#if defined(__ARM_FEATURE_DOTPROD)
            a0 = a1 = a2 = a3 = vdupq_n_s32(0);
#define Q4ROW(a, l)                                                          \
    do {                                                                     \
        uint8x16_t b_ = vld1q_u8((l) + k);                                   \
        DOT16(a, vreinterpretq_s8_u8(vandq_u8(b_, m4)), x0);                 \
        DOT16(a, vreinterpretq_s8_u8(vshrq_n_u8(b_, 4)), x1);                \
    } while (0)
            for (k = 0; k < h; k += 16u) {
                int8x16_t x0 = vld1q_s8(xl + k), x1 = vld1q_s8(xh + k);
                Q4ROW(a0, l0);
                Q4ROW(a1, l1);
                Q4ROW(a2, l2);
                Q4ROW(a3, l3);
            }
#else
            /* |u x| <= 15 * 128: a 16-bit lane takes two products per 16
             * bytes of a group's h <= 128, 16 in all, <= 30720 */
            int16x8_t t00, t01, t10, t11, t20, t21, t30, t31;
            t00 = t01 = t10 = t11 = t20 = t21 = t30 = t31 = vdupq_n_s16(0);
#define Q4ROW(t0, t1, l)                                                     \
    do {                                                                     \
        uint8x16_t b_ = vld1q_u8((l) + k);                                   \
        int8x16_t lo_ = vreinterpretq_s8_u8(vandq_u8(b_, m4));               \
        int8x16_t hi_ = vreinterpretq_s8_u8(vshrq_n_u8(b_, 4));              \
        t0 = vmlal_s8(t0, vget_low_s8(lo_), vget_low_s8(x0));                \
        t0 = vmlal_s8(t0, vget_low_s8(hi_), vget_low_s8(x1));                \
        t1 = vmlal_high_s8(t1, lo_, x0);                                     \
        t1 = vmlal_high_s8(t1, hi_, x1);                                     \
    } while (0)
            for (k = 0; k < h; k += 16u) {
                int8x16_t x0 = vld1q_s8(xl + k), x1 = vld1q_s8(xh + k);
                Q4ROW(t00, t01, l0);
                Q4ROW(t10, t11, l1);
                Q4ROW(t20, t21, l2);
                Q4ROW(t30, t31, l3);
            }
            a0 = vpadalq_s16(vpaddlq_s16(t00), t01);
            a1 = vpadalq_s16(vpaddlq_s16(t10), t11);
            a2 = vpadalq_s16(vpaddlq_s16(t20), t21);
            a3 = vpadalq_s16(vpaddlq_s16(t30), t31);
#endif
#undef Q4ROW
            sum = vaddq_f32(sum, vmulq_f32(vmulq_n_f32(d, xd[g]),
                                           vcvtq_f32_s32(vsubq_s32(hsum4(a0, a1, a2, a3),
                                                                   vdupq_n_s32(8 * xs[g])))));
            p0 += 2u + h, p1 += 2u + h, p2 += 2u + h, p3 += 2u + h;
        }
        store_rows(y + r, sum, n);
    }
}

/* round_int(v, -127, 127) of quant.c on four lanes: sign(v) * (int)(|v| +
 * 0.5f) with v first clamped to [-127, 127], which gives 127 for v >= 127
 * and -127 for v <= -127. FMAXNM takes the number when the other operand
 * is a quiet NaN, so NaN becomes -127 as in round_int; v is a product, so
 * it is never a signalling NaN (which FMAXNM would pass on). Rounding to
 * nearest is symmetric in sign and FCVTZS truncates toward zero, so
 * (int)(v + copysign(0.5f, v)) is that value (-0 gives 0). */
static inline int32x4_t levels4(float32x4_t v)
{
    uint32x4_t half;
    v = vminnmq_f32(vmaxnmq_f32(v, vdupq_n_f32(-127.0f)), vdupq_n_f32(127.0f));
    half = vorrq_u32(vandq_u32(vreinterpretq_u32_f32(v), vdupq_n_u32(0x80000000u)),
                     vdupq_n_u32(0x3f000000u)); /* copysign(0.5f, v) */
    return vcvtq_s32_f32(vaddq_f32(v, vreinterpretq_f32_u32(half)));
}

/* The larger of m and |v| per lane as the portable `if (a > amax)`: a
 * compare and select, which never takes a NaN (FMAX would). */
static inline float32x4_t absmax4(float32x4_t m, float32x4_t v)
{
    float32x4_t a = vabsq_f32(v);
    return vbslq_f32(vcgtq_f32(a, m), a, m);
}

int mf_quantize_activations_neon(const float *x, uint32_t cols, uint32_t group, void *xq)
{
    int8_t *q = (int8_t *)xq;
    float *d;
    int32_t *s;
    uint32_t c, g = 0;
    if (group == 0 || group % 4u || cols % group) return -1;
    d = (float *)(void *)((uint8_t *)xq + ((cols + 3u) & ~3u));
    s = (int32_t *)(void *)(d + cols / group);
    for (c = 0; c < cols; c += group, g++) {
        /* pointer loops: with 32-bit indices gcc spends five instructions
         * a step on widening them */
        const float *xg = x + c, *x8 = xg + (group & ~7u), *xp;
        int8_t *qp = q + c;
        float32x4_t m0 = vdupq_n_f32(0.0f), m1 = m0, vinv;
        int32x4_t vsum = vdupq_n_s32(0);
        float amax, inv;
        for (xp = xg; xp < x8; xp += 8) {
            m0 = absmax4(m0, vld1q_f32(xp));
            m1 = absmax4(m1, vld1q_f32(xp + 4));
        }
        if (group & 4u) m0 = absmax4(m0, vld1q_f32(x8));
        /* no NaN in the lanes: any max of them gives the portable |max| */
        amax = vmaxvq_f32(vmaxq_f32(m0, m1));
        d[g] = amax / 127.0f;
        inv = amax > 0.0f ? 127.0f / amax : 0.0f;
        vinv = vdupq_n_f32(inv);
        for (xp = xg; xp < x8; xp += 8, qp += 8) {
            int32x4_t lo = levels4(vmulq_f32(vld1q_f32(xp), vinv));
            int32x4_t hi = levels4(vmulq_f32(vld1q_f32(xp + 4), vinv));
            vsum = vaddq_s32(vsum, vaddq_s32(lo, hi));
            vst1_s8(qp, vmovn_s16(vcombine_s16(vmovn_s32(lo), vmovn_s32(hi))));
        }
        if (group & 4u) { /* the last four */
            int32x4_t t = levels4(vmulq_f32(vld1q_f32(x8), vinv));
            int16x4_t t16 = vmovn_s32(t);
            vsum = vaddq_s32(vsum, t);
            qp[0] = (int8_t)vget_lane_s16(t16, 0);
            qp[1] = (int8_t)vget_lane_s16(t16, 1);
            qp[2] = (int8_t)vget_lane_s16(t16, 2);
            qp[3] = (int8_t)vget_lane_s16(t16, 3);
        }
        s[g] = vaddvq_s32(vsum);
    }
    return 0;
}

#else
typedef int mf_kernels_neon_unused; /* nothing to compile on this target */
#endif
