/*
 * Helium (MVE) and DSP (SMLAD) matrix-vector kernels; see kernels_arm.h.
 * Compiles to nothing on other targets.
 */
#include "kernels_arm.h"

#if defined(MF_ARM_KERNEL_MVE) || defined(MF_ARM_KERNEL_DSP)

#include <math.h>
#include <string.h>

#include "ops.h"
#include "quant.h"

#if defined(MF_ARM_KERNEL_MVE)
#include <arm_mve.h>
#else
#include <arm_acle.h>
#endif

static inline uint16_t ld16(const uint8_t *p) { return (uint16_t)(p[0] | ((uint16_t)p[1] << 8)); }

/* An f16 (a group scale, an f16 weight, a KV row's scale) as f32 by VCVTB
 * in scalar VFP, which every FPU of these cores has (FPv4 on the M4, FPv5
 * on the M7/M33, the M55's): exact, as mf_f16_to_f32's bit steps, which
 * cost a call and about a dozen instructions. A signalling NaN comes out
 * quiet, which no product of it can tell. Without an FPU, those steps. */
static inline float f16_vfp(uint16_t h)
{
#if defined(__ARM_FP)
    float f;
    __asm__("vmov %0, %1\n\t"
            "vcvtb.f32.f16 %0, %0"
            : "=t"(f)
            : "r"((uint32_t)h));
    return f;
#else
    return mf_f16_to_f32(h);
#endif
}

/* An f16 (by f16_vfp) or bf16 (its bits moved up) weight as f32. */
static inline float half_to_f32(int bf16, uint16_t h)
{
    if (!bf16) return f16_vfp(h);
    float f;
    uint32_t u = (uint32_t)h << 16;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline const int8_t *qa_q(const void *xq) { return (const int8_t *)xq; }
static inline const float *qa_d(const void *xq, uint32_t cols)
{
    return (const float *)(const void *)((const uint8_t *)xq + ((cols + 3u) & ~3u));
}

/* ---- integer dot products of n int8 values ---- */

#if defined(MF_ARM_KERNEL_DSP)
static inline uint32_t ld32(const void *p)
{
    uint32_t v;
    memcpy(&v, p, 4); /* LDR allows unaligned addresses on v7E-M / v8-M Main */
    return v;
}

/* SXTB16 / UXTB16 of bytes 1 and 3: the instruction's own rotation (GCC 12
 * makes a separate ROR of __sxtb16 of a rotated word). */
static inline uint32_t sxtb16_ror8(uint32_t v)
{
    uint32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(v));
    return r;
}
static inline uint32_t uxtb16_ror8(uint32_t v)
{
    uint32_t r;
    __asm__("uxtb16 %0, %1, ror #8" : "=r"(r) : "r"(v));
    return r;
}

static int32_t dot_s8(const int8_t *a, const int8_t *b, uint32_t n)
{
    int32_t acc = 0;
    for (uint32_t k = n / 4u; k; k--, a += 4, b += 4) {
        uint32_t wa = ld32(a), xb = ld32(b);
        /* bytes 0,2 and 1,3 sign-extended to halfword pairs */
        acc = __smlad(__sxtb16(wa), __sxtb16(xb), acc);
        acc = __smlad(sxtb16_ror8(wa), sxtb16_ror8(xb), acc);
    }
    for (n %= 4u; n; n--) acc += (int32_t)*a++ * (int32_t)*b++;
    return acc;
}

/* levels u (unsigned nibbles, low half then high half) times x */
static int32_t dot_q4_s8(const uint8_t *p, const int8_t *x, uint32_t n)
{
    uint32_t h = (n + 1u) / 2u, j = 0;
    int32_t acc = 0;
    for (; j + 4u <= h && j + h + 4u <= n; j += 4u) {
        uint32_t v = ld32(p + j);
        uint32_t lo = v & 0x0F0F0F0Fu, hi = (v >> 4) & 0x0F0F0F0Fu;
        uint32_t xl = ld32(x + j), xh = ld32(x + h + j);
        /* levels are 0..15: UXTB16 suffices for them */
        acc = __smlad(__uxtb16(lo), __sxtb16(xl), acc);
        acc = __smlad(uxtb16_ror8(lo), sxtb16_ror8(xl), acc);
        acc = __smlad(__uxtb16(hi), __sxtb16(xh), acc);
        acc = __smlad(uxtb16_ror8(hi), sxtb16_ror8(xh), acc);
    }
    for (; j < h; j++) {
        acc += (int32_t)(p[j] & 15u) * (int32_t)x[j];
        if (j + h < n) acc += (int32_t)(p[j] >> 4) * (int32_t)x[j + h];
    }
    return acc;
}
#endif

#if defined(MF_ARM_KERNEL_DSP)
/* m & (v >> sh) in one instruction (AND with a shifted register): GCC
 * makes a shift and an AND of the immediate. */
#define AND_LSR(name, sh)                                                              \
    static inline uint32_t name(uint32_t m, uint32_t v)                                \
    {                                                                                  \
        uint32_t r;                                                                    \
        __asm__("and %0, %1, %2, lsr #" #sh : "=r"(r) : "r"(m), "r"(v));               \
        return r;                                                                      \
    }
AND_LSR(and_lsr2, 2)
AND_LSR(and_lsr4, 4)
AND_LSR(and_lsr6, 6)
AND_LSR(and_lsr8, 8)
AND_LSR(and_lsr10, 10)
AND_LSR(and_lsr12, 12)
AND_LSR(and_lsr14, 14)
#undef AND_LSR
static inline uint32_t and_lsl2(uint32_t m, uint32_t v)
{
    uint32_t r;
    __asm__("and %0, %1, %2, lsl #2" : "=r"(r) : "r"(m), "r"(v));
    return r;
}

/* Two Q4 rows over whole groups of a multiple of 8 values (h = n / 2 a
 * multiple of 4: no tails). A level is 0..15, so one mask picks the
 * nibbles of bytes 0 and 2 (or, shifted, 1 and 3) straight into the
 * halfword pairs SMLAD takes, where UXTB16 needed an AND first; the two
 * rows share the activations' loads and sign extensions. */
static inline __attribute__((always_inline)) void dot2_q4_x8(const uint8_t *p0, const uint8_t *p1,
                                                             const int8_t *x, uint32_t h,
                                                             int32_t *a0, int32_t *a1)
{
    const uint32_t m = 0x000F000Fu;
    int32_t s0 = 0, s1 = 0;
    _Pragma("GCC unroll 4") for (uint32_t j = 0; j < h; j += 4u)
    {
        uint32_t v = ld32(p0 + j), u = ld32(p1 + j);
        uint32_t xl = ld32(x + j), xv = ld32(x + h + j), t;
        t = __sxtb16(xl);
        s0 = __smlad(v & m, t, s0);
        s1 = __smlad(u & m, t, s1);
        t = sxtb16_ror8(xl);
        s0 = __smlad(and_lsr8(m, v), t, s0);
        s1 = __smlad(and_lsr8(m, u), t, s1);
        t = __sxtb16(xv);
        s0 = __smlad(and_lsr4(m, v), t, s0);
        s1 = __smlad(and_lsr4(m, u), t, s1);
        t = sxtb16_ror8(xv);
        s0 = __smlad(and_lsr12(m, v), t, s0);
        s1 = __smlad(and_lsr12(m, u), t, s1);
    }
    *a0 = s0;
    *a1 = s1;
}

/* Two Q8 rows over whole groups of a multiple of 4 values, sharing the
 * activations' loads and sign extensions. */
static inline __attribute__((always_inline)) void dot2_q8_x4(const uint8_t *p0, const uint8_t *p1,
                                                             const int8_t *x, uint32_t n,
                                                             int32_t *a0, int32_t *a1)
{
    int32_t s0 = 0, s1 = 0;
    _Pragma("GCC unroll 8") for (uint32_t j = 0; j < n; j += 4u)
    {
        uint32_t v = ld32(p0 + j), u = ld32(p1 + j), xw = ld32(x + j), t;
        t = __sxtb16(xw);
        s0 = __smlad(__sxtb16(v), t, s0);
        s1 = __smlad(__sxtb16(u), t, s1);
        t = sxtb16_ror8(xw);
        s0 = __smlad(sxtb16_ror8(v), t, s0);
        s1 = __smlad(sxtb16_ror8(u), t, s1);
    }
    *a0 = s0;
    *a1 = s1;
}

/* row_q8's float work, in its order, for two rows rb bytes apart (n, the
 * group, a constant after inlining: see rows2_q4_groups). */
static inline __attribute__((always_inline)) void rows2_q8_groups(const uint8_t *p0, size_t rb,
                                                                  const int8_t *xq, const float *xd,
                                                                  uint32_t ngroups, uint32_t n,
                                                                  float *y0, float *y1)
{
    float sum0 = 0.0f, sum1 = 0.0f;
    for (uint32_t g = 0; g < ngroups; g++, p0 += 2u + n, xq += n) {
        int32_t a0, a1;
        dot2_q8_x4(p0 + 2, p0 + rb + 2, xq, n, &a0, &a1);
        sum0 += f16_vfp(ld16(p0)) * xd[g] * (float)a0;
        sum1 += f16_vfp(ld16(p0 + rb)) * xd[g] * (float)a1;
    }
    *y0 = sum0;
    *y1 = sum1;
}

__attribute__((noinline)) static void rows2_q8_dsp(const uint8_t *p0, size_t rb, const int8_t *xq,
                                                   const float *xd, uint32_t ngroups,
                                                   uint32_t group, float *y0, float *y1)
{
    if (group == 32u)
        rows2_q8_groups(p0, rb, xq, xd, ngroups, 32u, y0, y1);
    else
        rows2_q8_groups(p0, rb, xq, xd, ngroups, group, y0, y1);
}

/* row_q4's float work, in its order, for two rows rb bytes apart; h (half
 * the group) is a constant after inlining, so that a group of 32 is
 * unrolled whole and nothing is tested per group. */
static inline __attribute__((always_inline)) void rows2_q4_groups(const uint8_t *p0, size_t rb,
                                                                  const int8_t *xq, const float *xd,
                                                                  const int32_t *xs, uint32_t ngroups,
                                                                  uint32_t h, float *y0, float *y1)
{
    float sum0 = 0.0f, sum1 = 0.0f;
    for (uint32_t g = 0; g < ngroups; g++, p0 += 2u + h, xq += 2u * h) {
        int32_t a0, a1;
        dot2_q4_x8(p0 + 2, p0 + rb + 2, xq, h, &a0, &a1);
        float d0 = f16_vfp(ld16(p0)), d1 = f16_vfp(ld16(p0 + rb));
        sum0 += d0 * xd[g] * (float)(a0 - 8 * xs[g]);
        sum1 += d1 * xd[g] * (float)(a1 - 8 * xs[g]);
    }
    *y0 = sum0;
    *y1 = sum1;
}

__attribute__((noinline)) static void rows2_q4_dsp(const uint8_t *p0, size_t rb, const int8_t *xq,
                                                   const float *xd, const int32_t *xs,
                                                   uint32_t ngroups, uint32_t group, float *y0,
                                                   float *y1)
{
    if (group == 32u)
        rows2_q4_groups(p0, rb, xq, xd, xs, ngroups, 16u, y0, y1);
    else
        rows2_q4_groups(p0, rb, xq, xd, xs, ngroups, group / 2u, y0, y1);
}
#endif

#if defined(MF_ARM_KERNEL_MVE)
static int32_t dot_s8(const int8_t *a, const int8_t *b, uint32_t n)
{
    int32_t acc = 0;
    uint32_t i = 0;
    for (; i + 16u <= n; i += 16u) acc = vmladavaq_s8(acc, vldrbq_s8(a + i), vldrbq_s8(b + i));
    if (i < n) {
        mve_pred16_t p = vctp8q(n - i);
        acc = vmladavaq_p_s8(acc, vldrbq_z_s8(a + i, p), vldrbq_z_s8(b + i, p), p);
    }
    return acc;
}

static int32_t dot_q4_s8(const uint8_t *p, const int8_t *x, uint32_t n)
{
    uint32_t h = (n + 1u) / 2u, j = 0;
    int32_t acc = 0;
    if ((n & 1u) == 0) {
        for (; j + 16u <= h; j += 16u) {
            uint8x16_t v = vldrbq_u8(p + j);
            int8x16_t lo = vreinterpretq_s8_u8(vandq_u8(v, vdupq_n_u8(15)));
            int8x16_t hi = vreinterpretq_s8_u8(vshrq_n_u8(v, 4));
            acc = vmladavaq_s8(acc, lo, vldrbq_s8(x + j));
            acc = vmladavaq_s8(acc, hi, vldrbq_s8(x + h + j));
        }
        if (j < h) {
            mve_pred16_t pr = vctp8q(h - j);
            uint8x16_t v = vldrbq_z_u8(p + j, pr);
            int8x16_t lo = vreinterpretq_s8_u8(vandq_u8(v, vdupq_n_u8(15)));
            int8x16_t hi = vreinterpretq_s8_u8(vshrq_n_u8(v, 4));
            acc = vmladavaq_p_s8(acc, lo, vldrbq_z_s8(x + j, pr), pr);
            acc = vmladavaq_p_s8(acc, hi, vldrbq_z_s8(x + h + j, pr), pr);
        }
        return acc;
    }
    for (; j < h; j++) {
        acc += (int32_t)(p[j] & 15u) * (int32_t)x[j];
        if (j + h < n) acc += (int32_t)(p[j] >> 4) * (int32_t)x[j + h];
    }
    return acc;
}
#endif

/* ---- generic row loops (any shape), exact order of quant.c ---- */

static float row_q8(const uint8_t *p, const int8_t *xq, const float *xd, uint32_t cols,
                    uint32_t group)
{
    float sum = 0.0f;
    uint32_t c, g = 0;
    for (c = 0; c < cols; c += group, g++) {
        uint32_t n = cols - c < group ? cols - c : group;
        int32_t acc = dot_s8((const int8_t *)(p + 2), xq + c, n);
        sum += f16_vfp(ld16(p)) * xd[g] * (float)acc;
        p += 2u + n;
    }
    return sum;
}

static float row_q4(const uint8_t *p, const int8_t *xq, const float *xd, const int32_t *xs,
                    uint32_t cols, uint32_t group)
{
    float sum = 0.0f;
    uint32_t c, g = 0;
    for (c = 0; c < cols; c += group, g++) {
        uint32_t n = cols - c < group ? cols - c : group;
        float d = f16_vfp(ld16(p));
        int32_t acc = dot_q4_s8(p + 2, xq + c, n);
        sum += d * xd[g] * (float)(acc - 8 * xs[g]);
        p += 2u + (n + 1u) / 2u;
    }
    return sum;
}

#if defined(MF_ARM_KERNEL_MVE)
/* VCVTB.F32.F16 on a vector: the bottom half of each 32-bit lane, f16 -> f32.
 * Not vcvtbq_f32_f16(): GNU as 2.40 (Debian 12's binutils-arm-none-eabi)
 * encodes "vcvtb.f32.f16 qN, qN" with register 2N, so gcc's output for N > 0
 * is wrong (q3 became q6, or an undefined instruction). Pinning the operand
 * to q0, whose encoding is unaffected, sidesteps the bug. */
static inline float32x4_t cvtb_f32_f16(uint32x4_t h)
{
    register uint32x4_t r __asm__("q0") = h;
    __asm__("vcvtb.f32.f16 q0, q0" : "+w"(r));
    return vreinterpretq_f32_u32(r);
}

/* Two rows at once over full groups (a multiple of 16 values for Q8, of 32
 * for Q4): the activation vector is loaded once for both rows, the group
 * scales of four groups come in with one gather and one VCVTB, and the
 * per-group products (d_w * d_x) * acc are computed four lanes at a time;
 * only the running row sum is scalar, group after group, as in quant.c. */
__attribute__((always_inline)) static inline void
rows2_mve(int q4, const uint8_t *r0, const uint8_t *r1, const int8_t *xq, const float *xd,
          const int32_t *xs, uint32_t ngroups, uint32_t group, float *y0, float *y1)
{
    const uint32_t gs = 2u + (q4 ? group / 2u : group);
    const uint32_t off[4] = {0, gs, 2u * gs, 3u * gs};
    const uint32x4_t offv = vldrwq_u32(off);
    float s0 = 0.0f, s1 = 0.0f;
    for (uint32_t g = 0; g < ngroups; g += 4u) {
        uint32_t nb = ngroups - g < 4u ? ngroups - g : 4u;
        int32x4_t a0 = vdupq_n_s32(0), a1 = vdupq_n_s32(0);
        for (uint32_t j = 0; j < nb; j++) {
            const uint8_t *w0 = r0 + (g + j) * gs + 2u;
            const uint8_t *w1 = r1 + (g + j) * gs + 2u;
            const int8_t *x = xq + (g + j) * group;
            int32_t c0 = 0, c1 = 0;
            if (q4) {
                const uint32_t h = group / 2u;
                for (uint32_t k = 0; k < h; k += 16u) {
                    int8x16_t xl = vldrbq_s8(x + k), xh = vldrbq_s8(x + h + k);
                    uint8x16_t v0 = vldrbq_u8(w0 + k), v1 = vldrbq_u8(w1 + k);
                    c0 = vmladavaq_s8(c0, vreinterpretq_s8_u8(vandq_u8(v0, vdupq_n_u8(15))), xl);
                    c1 = vmladavaq_s8(c1, vreinterpretq_s8_u8(vandq_u8(v1, vdupq_n_u8(15))), xl);
                    c0 = vmladavaq_s8(c0, vreinterpretq_s8_u8(vshrq_n_u8(v0, 4)), xh);
                    c1 = vmladavaq_s8(c1, vreinterpretq_s8_u8(vshrq_n_u8(v1, 4)), xh);
                }
            } else {
                for (uint32_t k = 0; k < group; k += 16u) {
                    int8x16_t xv = vldrbq_s8(x + k);
                    c0 = vmladavaq_s8(c0, vldrbq_s8((const int8_t *)w0 + k), xv);
                    c1 = vmladavaq_s8(c1, vldrbq_s8((const int8_t *)w1 + k), xv);
                }
            }
            a0 = j == 0 ? vsetq_lane_s32(c0, a0, 0)
               : j == 1 ? vsetq_lane_s32(c0, a0, 1)
               : j == 2 ? vsetq_lane_s32(c0, a0, 2)
                        : vsetq_lane_s32(c0, a0, 3);
            a1 = j == 0 ? vsetq_lane_s32(c1, a1, 0)
               : j == 1 ? vsetq_lane_s32(c1, a1, 1)
               : j == 2 ? vsetq_lane_s32(c1, a1, 2)
                        : vsetq_lane_s32(c1, a1, 3);
        }
        mve_pred16_t pr = vctp32q(nb);
        if (q4) {
            /* acc - 8 * sum(q): the zero point of Q4, in integers */
            int32x4_t z = vshlq_n_s32(vldrwq_z_s32(xs + g, pr), 3);
            a0 = vsubq_s32(a0, z);
            a1 = vsubq_s32(a1, z);
        }
        float32x4_t xdv = vldrwq_z_f32(xd + g, pr);
        uint32x4_t h0 = vldrhq_gather_offset_z_u32((const uint16_t *)(const void *)(r0 + g * gs), offv, pr);
        uint32x4_t h1 = vldrhq_gather_offset_z_u32((const uint16_t *)(const void *)(r1 + g * gs), offv, pr);
        float32x4_t d0 = cvtb_f32_f16(h0);
        float32x4_t d1 = cvtb_f32_f16(h1);
        float32x4_t t0 = vmulq_f32(vmulq_f32(d0, xdv), vcvtq_f32_s32(a0));
        float32x4_t t1 = vmulq_f32(vmulq_f32(d1, xdv), vcvtq_f32_s32(a1));
        s0 += vgetq_lane_f32(t0, 0);
        s1 += vgetq_lane_f32(t1, 0);
        if (nb > 1) {
            s0 += vgetq_lane_f32(t0, 1);
            s1 += vgetq_lane_f32(t1, 1);
        }
        if (nb > 2) {
            s0 += vgetq_lane_f32(t0, 2);
            s1 += vgetq_lane_f32(t1, 2);
        }
        if (nb > 3) {
            s0 += vgetq_lane_f32(t0, 3);
            s1 += vgetq_lane_f32(t1, 3);
        }
    }
    *y0 = s0;
    *y1 = s1;
}

/* Sequential s += t[0]; s += t[1]; s += t[2]; s += t[3] (the order of
 * quant.c) with t pinned to q1 so its lanes are s4..s7. */
static inline float add4_in_order(float s, float32x4_t t)
{
    register float32x4_t v __asm__("q1") = t;
    __asm__("vadd.f32 %0, %0, s4\n\t"
            "vadd.f32 %0, %0, s5\n\t"
            "vadd.f32 %0, %0, s6\n\t"
            "vadd.f32 %0, %0, s7"
            : "+t"(s)
            : "w"(v));
    return s;
}

/* Q4 with groups of 256 or more, or more than MF_Q4_MAXG groups (the
 * common shapes take rows4_q4_g*): group a multiple of 32 and cols a
 * multiple of 4 * group, four rows at a time, four groups per block. Per 32 values of a group and row: two 16-byte weight loads and two
 * VMLADAVA (Q8) or one load, VAND, VSHR and two VMLADAVA (Q4); the two
 * activation loads are shared by the four rows; one store of each group's
 * integer sum. Per block and row: the four sums, the four scales (one
 * gather) and the float products as vectors, then four scalar VADDs in
 * group order. */
__attribute__((always_inline)) static inline void
rows4_all(int q4, const uint8_t *p, size_t rb, uint32_t rows, const int8_t *xq0,
          const float *xd0, const int32_t *xs0, uint32_t group, uint32_t nblocks, float *y)
{
    const uint32_t gs = 2u + (q4 ? group / 2u : group);
    const uint32_t off[4] = {0, gs, 2u * gs, 3u * gs};
    const uint32x4_t offv = vldrwq_u32(off);
    int32_t acc[16] __attribute__((aligned(16)));
    for (uint32_t r = 0; r + 4u <= rows; r += 4u, p += 4u * rb, y += 4) {
        const uint8_t *w0 = p + 2, *w1 = w0 + rb, *w2 = w1 + rb, *w3 = w2 + rb;
        const int8_t *xq = xq0;
        const float *xd = xd0;
        const int32_t *xs = xs0;
        float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
        for (uint32_t b = 0; b < nblocks; b++) {
            const uint8_t *h0 = w0 - 2, *h1 = w1 - 2, *h2 = w2 - 2, *h3 = w3 - 2;
            for (uint32_t j = 0; j < 4u; j++) {
                int32_t c0 = 0, c1 = 0, c2 = 0, c3 = 0;
                if (q4) {
                    /* packed: low nibbles = first half, high = second */
                    const uint32_t h = group / 2u;
                    const uint8x16_t m = vdupq_n_u8(15);
                    for (uint32_t k = 0; k < h; k += 16u) {
                        int8x16_t xl = vldrbq_s8(xq + k), xh = vldrbq_s8(xq + h + k);
                        uint8x16_t v0 = vldrbq_u8(w0), v1 = vldrbq_u8(w1);
                        uint8x16_t v2 = vldrbq_u8(w2), v3 = vldrbq_u8(w3);
                        w0 += 16;
                        w1 += 16;
                        w2 += 16;
                        w3 += 16;
#define MF_Q4_STEP(c, v)                                                                        \
    c = (k == 0 ? vmladavq_s8(vreinterpretq_s8_u8(vandq_u8(v, m)), xl)                          \
                : vmladavaq_s8(c, vreinterpretq_s8_u8(vandq_u8(v, m)), xl));                   \
    c = vmladavaq_s8(c, vreinterpretq_s8_u8(vshrq_n_u8(v, 4)), xh)
                        MF_Q4_STEP(c0, v0);
                        MF_Q4_STEP(c1, v1);
                        MF_Q4_STEP(c2, v2);
                        MF_Q4_STEP(c3, v3);
#undef MF_Q4_STEP
                    }
                } else {
                    for (uint32_t k = 0; k < group; k += 16u) {
                        int8x16_t x0 = vldrbq_s8(xq + k);
                        int8x16_t v0 = vldrbq_s8((const int8_t *)w0);
                        int8x16_t v1 = vldrbq_s8((const int8_t *)w1);
                        int8x16_t v2 = vldrbq_s8((const int8_t *)w2);
                        int8x16_t v3 = vldrbq_s8((const int8_t *)w3);
                        w0 += 16;
                        w1 += 16;
                        w2 += 16;
                        w3 += 16;
                        c0 = k == 0 ? vmladavq_s8(v0, x0) : vmladavaq_s8(c0, v0, x0);
                        c1 = k == 0 ? vmladavq_s8(v1, x0) : vmladavaq_s8(c1, v1, x0);
                        c2 = k == 0 ? vmladavq_s8(v2, x0) : vmladavaq_s8(c2, v2, x0);
                        c3 = k == 0 ? vmladavq_s8(v3, x0) : vmladavaq_s8(c3, v3, x0);
                    }
                }
                acc[j] = c0;
                acc[4 + j] = c1;
                acc[8 + j] = c2;
                acc[12 + j] = c3;
                xq += group;
                /* skip the next group's 2-byte scale */
                w0 += 2;
                w1 += 2;
                w2 += 2;
                w3 += 2;
            }
            float32x4_t xdv = vldrwq_f32(xd);
            xd += 4;
            int32x4_t a0 = vldrwq_s32(acc), a1 = vldrwq_s32(acc + 4);
            int32x4_t a2 = vldrwq_s32(acc + 8), a3 = vldrwq_s32(acc + 12);
            if (q4) {
                int32x4_t z = vshlq_n_s32(vldrwq_s32(xs), 3); /* zero point 8 x sum(q) */
                xs += 4;
                a0 = vsubq_s32(a0, z);
                a1 = vsubq_s32(a1, z);
                a2 = vsubq_s32(a2, z);
                a3 = vsubq_s32(a3, z);
            }
            float32x4_t t;
            t = vmulq_f32(vmulq_f32(cvtb_f32_f16(vldrhq_gather_offset_u32((const uint16_t *)(const void *)h0, offv)), xdv),
                          vcvtq_f32_s32(a0));
            s0 = add4_in_order(s0, t);
            t = vmulq_f32(vmulq_f32(cvtb_f32_f16(vldrhq_gather_offset_u32((const uint16_t *)(const void *)h1, offv)), xdv),
                          vcvtq_f32_s32(a1));
            s1 = add4_in_order(s1, t);
            t = vmulq_f32(vmulq_f32(cvtb_f32_f16(vldrhq_gather_offset_u32((const uint16_t *)(const void *)h2, offv)), xdv),
                          vcvtq_f32_s32(a2));
            s2 = add4_in_order(s2, t);
            t = vmulq_f32(vmulq_f32(cvtb_f32_f16(vldrhq_gather_offset_u32((const uint16_t *)(const void *)h3, offv)), xdv),
                          vcvtq_f32_s32(a3));
            s3 = add4_in_order(s3, t);
        }
        y[0] = s0;
        y[1] = s1;
        y[2] = s2;
        y[3] = s3;
    }
}

/* Four rows at once, one row per vector lane: lane i performs exactly the
 * scalar sequence of quant.c for its row (sum += (d_w * d_x) * (float)acc,
 * group after group), so the result is bit-identical with no in-order
 * reduction across lanes. Per group: the four rows' integer dots into four
 * general-purpose registers (hand-scheduled Helium), then the float work
 * of the group for the four rows in one vector (MF_ROW4_FLOAT). */

/* 32 int8 values of one group, four rows: two activation loads shared by
 * the rows, eight weight loads, eight VMLADAV(A). OP is vmladav for the
 * group's first 32 values (it starts the sums), vmladava after; INC is the
 * second weight load's post-increment, "18" at a group's end to also skip
 * the next group's 2-byte scale. */
#define MF_Q8_DOT32(OP, INC)                                                                    \
    "vldrb.s8 q0, [%[x]], #16\n\t"                                                              \
    "vldrb.s8 q1, [%[x]], #16\n\t"                                                              \
    "vldrb.s8 q2, [%[w0]], #16\n\t"                                                             \
    "vldrb.s8 q3, [%[w1]], #16\n\t"                                                             \
    OP ".s8 %[a0], q2, q0\n\t"                                                                  \
    "vldrb.s8 q2, [%[w0]], #" INC "\n\t"                                                        \
    OP ".s8 %[a1], q3, q0\n\t"                                                                  \
    "vldrb.s8 q3, [%[w1]], #" INC "\n\t"                                                        \
    "vmladava.s8 %[a0], q2, q1\n\t"                                                             \
    "vldrb.s8 q2, [%[w2]], #16\n\t"                                                             \
    "vmladava.s8 %[a1], q3, q1\n\t"                                                             \
    "vldrb.s8 q3, [%[w3]], #16\n\t"                                                             \
    OP ".s8 %[a2], q2, q0\n\t"                                                                  \
    "vldrb.s8 q2, [%[w2]], #" INC "\n\t"                                                        \
    OP ".s8 %[a3], q3, q0\n\t"                                                                  \
    "vldrb.s8 q3, [%[w3]], #" INC "\n\t"                                                        \
    "vmladava.s8 %[a2], q2, q1\n\t"                                                             \
    "vmladava.s8 %[a3], q3, q1\n\t"

/* Q4, 32 values of a group for one row of four: one 16-byte weight load
 * (INC "18" at the group's end skips the next scale), VAND, VSHR and two
 * VMLADAV(A): the low nibbles pair with the activations in q1, the high
 * nibbles with those in q2 (half a group further on). */
#define MF_Q4_ROW(OP, INC, W, A)                                                                \
    "vldrb.u8 q3, [%[" W "]], #" INC "\n\t"                                                      \
    "vand q0, q3, %q[m]\n\t"                                                                    \
    "vshr.u8 q3, q3, #4\n\t"                                                                    \
    OP ".s8 %[" A "], q0, q1\n\t"                                                               \
    "vmladava.s8 %[" A "], q3, q2\n\t"
/* ... for the four rows: H = half the group (bytes from a low-nibble
 * activation to its high-nibble one), XINC = x's post-increment (16, or
 * 16 + H at the group's end) */
#define MF_Q4_CHUNK(OP, INC, H, XINC)                                                           \
    "vldrb.s8 q2, [%[x], #" H "]\n\t"                                                           \
    "vldrb.s8 q1, [%[x]], #" XINC "\n\t"                                                        \
    MF_Q4_ROW(OP, INC, "w0", "a0") MF_Q4_ROW(OP, INC, "w1", "a1")                               \
    MF_Q4_ROW(OP, INC, "w2", "a2") MF_Q4_ROW(OP, INC, "w3", "a3")

/* The float work of one group for four rows, lane i = row i: the rows'
 * f16 scales with one gather relative to w0 (off[i] leads from w0, which
 * the dot left at the next group's weights, back to lane i's scale), the
 * integer sums into q1, LD: d_x into a0 (and for Q4 8 * xs[g] into a1 and
 * its subtraction: the zero point), then s + (d_w * d_x) * (float)acc in
 * quant.c's order: two multiplies, then the add, no fused multiply-add.
 * VMOV Qd[2], Qd[0], Rt, Rt2 puts Rt in lane 0 (as QEMU does and GCC's own
 * vcreateq now emits). The scales are in q0 because of the VCVTB assembler
 * bug (cvtb_f32_f16). */
#define MF_ROW4_FLOAT(LD)                                                                       \
    "vldrh.u32 q0, [%[w0], %q[off]]\n\t"                                                        \
    "vmov q1[2], q1[0], %[a0], %[a2]\n\t"                                                       \
    "vmov q1[3], q1[1], %[a1], %[a3]\n\t"                                                       \
    LD                                                                                          \
    "vcvtb.f32.f16 q0, q0\n\t"                                                                  \
    "vcvt.f32.s32 q1, q1\n\t"                                                                   \
    "vmul.f32 q0, q0, %[a0]\n\t"                                                                \
    "vmul.f32 q0, q0, q1\n\t"                                                                   \
    "vadd.f32 %q[s], %q[s], q0\n\t"

static inline float32x4_t zero_f32x4(void)
{
    float32x4_t z;
    __asm__("vmov.i32 %q0, #0" : "=w"(z));
    return z;
}

/* Offsets from w0 after a group (at the next group's weights) back to the
 * group's scale in each lane's row: wbytes + 4 bytes back (the group's
 * weights, its scale and the next scale), plus i lane strides. The gather's
 * address arithmetic is modulo 2^32, so the "negative" offsets are fine. */
static inline uint32x4_t row4_scale_offsets(size_t lane, uint32_t wbytes)
{
    return vaddq_n_u32(vmulq_n_u32(vidupq_n_u32(0u, 1), (uint32_t)lane), 0u - (wbytes + 4u));
}

/* Where the scatter store of a block's four sums goes: lane i writes y[r +
 * i * q] for block r; the store pre-increments the addresses by 4. */
static inline uint32x4_t row4_y_addresses(float *y, uint32_t q)
{
    return vaddq_n_u32(vmulq_n_u32(vidupq_n_u32(0u, 1), 4u * q), (uint32_t)(uintptr_t)y - 4u);
}

/* The loop over blocks of four rows, one asm statement. Lane i of block r
 * is row r + i * q (q = rows / 4), so each lane's weight pointer ends a row
 * where its next row begins and a block needs no pointer setup. BODY: the
 * integer dots and float work of `per` groups (one iteration of the
 * low-overhead loop over n = groups / per); per block also: zero the sums,
 * DLS, one scatter store of the four results, rewind x (XSH = log2 of the
 * activations per iteration) and xd (DSH = log2 of its bytes per
 * iteration), count. */
#define MF_ROWS4_LOOP(BODY, XSH, DSH)                                                           \
    "1:\n\t"                                                                                    \
    "vmov.i32 %q[s], #0\n\t"                                                                    \
    "dls lr, %[n]\n\t"                                                                          \
    "2:\n\t" BODY "le lr, 2b\n\t"                                                               \
    "vstrw.32 %q[s], [%q[ya], #4]!\n\t"                                                         \
    "sub %[x], %[x], %[n], lsl #" XSH "\n\t"                                                    \
    "sub %[xd], %[xd], %[n], lsl #" DSH "\n\t"                                                  \
    "subs %[nb], %[nb], #1\n\t"                                                                 \
    "bne 1b"
#define MF_ROWS4_OUTPUTS                                                                        \
    [x] "+r"(x), [xd] "+r"(xd), [w0] "+r"(w0), [w1] "+r"(w1), [w2] "+r"(w2), [w3] "+r"(w3),     \
        [nb] "+r"(nb), [ya] "+w"(ya), [s] "=&w"(s), [a0] "=&Te"(a0), [a1] "=&Te"(a1),           \
        [a2] "=&Te"(a2), [a3] "=&Te"(a3)
#define MF_ROWS4_CLOBBERS "q0", "q1", "q2", "q3", "lr", "memory", "cc"
#define MF_ROWS4_SETUP(WBYTES)                                                                  \
    const size_t lane = (size_t)q * rb;                                                         \
    const uint8_t *w0 = p + 2, *w1 = w0 + lane, *w2 = w1 + lane, *w3 = w2 + lane;               \
    const uint32x4_t off = row4_scale_offsets(lane, WBYTES);                                    \
    uint32x4_t ya = row4_y_addresses(y, q);                                                     \
    const int8_t *x = xq;                                                                       \
    uint32_t nb = q;                                                                            \
    int32_t a0, a1, a2, a3;                                                                     \
    float32x4_t s

/* Q8 groups: per 32 values the 18-instruction dot, per group the 9 of
 * MF_ROW4_FLOAT. */
#define MF_Q8_LD "ldr %[a0], [%[xd]], #4\n\t"
#define MF_Q8_G32 MF_Q8_DOT32("vmladav", "18") MF_ROW4_FLOAT(MF_Q8_LD)
#define MF_Q8_G64 MF_Q8_DOT32("vmladav", "16") MF_Q8_DOT32("vmladava", "18") MF_ROW4_FLOAT(MF_Q8_LD)
#define MF_Q8_G128                                                                              \
    MF_Q8_DOT32("vmladav", "16") MF_Q8_DOT32("vmladava", "16")                                  \
    MF_Q8_DOT32("vmladava", "16") MF_Q8_DOT32("vmladava", "18") MF_ROW4_FLOAT(MF_Q8_LD)

#define MF_DEFINE_ROWS4_Q8(NAME, GROUP, BODY, XSH, DSH)                                         \
    __attribute__((noinline)) static void NAME(const uint8_t *p, size_t rb, uint32_t q,         \
                                               const int8_t *xq, const float *xd, uint32_t n,   \
                                               float *y)                                        \
    {                                                                                           \
        MF_ROWS4_SETUP(GROUP);                                                                  \
        __asm__ volatile(MF_ROWS4_LOOP(BODY, XSH, DSH)                                          \
                         : MF_ROWS4_OUTPUTS                                                     \
                         : [n] "r"(n), [off] "w"(off)                                           \
                         : MF_ROWS4_CLOBBERS);                                                  \
    }
/* n = groups / 4 or / 2: one LE per four or two groups */
MF_DEFINE_ROWS4_Q8(rows4_q8_g32x4, 32u, MF_Q8_G32 MF_Q8_G32 MF_Q8_G32 MF_Q8_G32, "7", "4")
MF_DEFINE_ROWS4_Q8(rows4_q8_g32x2, 32u, MF_Q8_G32 MF_Q8_G32, "6", "3")
MF_DEFINE_ROWS4_Q8(rows4_q8_g32, 32u, MF_Q8_G32, "5", "2")
MF_DEFINE_ROWS4_Q8(rows4_q8_g64, 64u, MF_Q8_G64, "6", "2")
MF_DEFINE_ROWS4_Q8(rows4_q8_g128, 128u, MF_Q8_G128, "7", "2")

/* Q4, groups of 32, 64 or 128: per 32 values 22 instructions of dot, per
 * group 10 of float work. The zero point is acc - 8 * xs[g] in integers;
 * d_x and 8 * xs[g] come in with one LDRD from a copy made here (dz: d_x[g]
 * and 8 * xs[g] side by side). */
#define MF_Q4_MAXG 64
#define MF_Q4_LD "ldrd %[a0], %[a1], [%[xd]], #8\n\tvsub.i32 q1, q1, %[a1]\n\t"
#define MF_Q4_G32 MF_Q4_CHUNK("vmladav", "18", "16", "32") MF_ROW4_FLOAT(MF_Q4_LD)
#define MF_Q4_G64                                                                               \
    MF_Q4_CHUNK("vmladav", "16", "32", "16") MF_Q4_CHUNK("vmladava", "18", "32", "48")          \
    MF_ROW4_FLOAT(MF_Q4_LD)
#define MF_Q4_G128                                                                              \
    MF_Q4_CHUNK("vmladav", "16", "64", "16") MF_Q4_CHUNK("vmladava", "16", "64", "16")          \
    MF_Q4_CHUNK("vmladava", "16", "64", "16") MF_Q4_CHUNK("vmladava", "18", "64", "80")         \
    MF_ROW4_FLOAT(MF_Q4_LD)

/* Fills dz with d_x[g] and z * xs[g] side by side (z: the encoding's
 * zero point), for one LDRD per group in the low-bit loops. */
static inline void low_dz(float *dz, const float *xd, const int32_t *xs, uint32_t ng, int32_t z)
{
    for (uint32_t g = 0; g < ng; g++) {
        int32_t v = z * xs[g];
        dz[2u * g] = xd[g];
        memcpy(&dz[2u * g + 1u], &v, sizeof v);
    }
}

#define MF_DEFINE_ROWS4_Q4(NAME, GROUP, BODY, XSH, DSH, PER)                                    \
    __attribute__((noinline)) static void NAME(const uint8_t *p, size_t rb, uint32_t q,         \
                                               const int8_t *xq, const float *xd0,              \
                                               const int32_t *xs, uint32_t ng, float *y)        \
    {                                                                                           \
        float dz[2 * MF_Q4_MAXG] __attribute__((aligned(16)));                                  \
        low_dz(dz, xd0, xs, ng, 8);                                                             \
        const float *xd = dz;                                                                   \
        const uint8x16_t m = vdupq_n_u8(15);                                                    \
        const uint32_t n = ng / (PER);                                                          \
        MF_ROWS4_SETUP((GROUP) / 2u);                                                           \
        __asm__ volatile(MF_ROWS4_LOOP(BODY, XSH, DSH)                                          \
                         : MF_ROWS4_OUTPUTS                                                     \
                         : [n] "r"(n), [off] "w"(off), [m] "w"(m)                               \
                         : MF_ROWS4_CLOBBERS);                                                  \
    }
/* n = groups / 4 or / 2: one LE per four or two groups */
MF_DEFINE_ROWS4_Q4(rows4_q4_g32x4, 32u, MF_Q4_G32 MF_Q4_G32 MF_Q4_G32 MF_Q4_G32, "7", "5", 4u)
MF_DEFINE_ROWS4_Q4(rows4_q4_g32x2, 32u, MF_Q4_G32 MF_Q4_G32, "6", "4", 2u)
MF_DEFINE_ROWS4_Q4(rows4_q4_g32, 32u, MF_Q4_G32, "5", "3", 1u)
MF_DEFINE_ROWS4_Q4(rows4_q4_g64, 64u, MF_Q4_G64, "6", "3", 1u)
MF_DEFINE_ROWS4_Q4(rows4_q4_g128, 128u, MF_Q4_G128, "7", "3", 1u)

/* Q8, other groups (a multiple of 32, at least 64): the same lanes, the
 * loops in C around asm statements (per 32 values MF_Q8_DOT32, the group's
 * end also MF_ROW4_FLOAT). */
__attribute__((noinline)) static void rows4_q8(const uint8_t *p, size_t rb, uint32_t q,
                                               const int8_t *xq, const float *xd0,
                                               uint32_t ng, uint32_t group, float *y)
{
    const size_t lane = (size_t)q * rb;
    const uint8_t *w0 = p + 2, *w1 = w0 + lane, *w2 = w1 + lane, *w3 = w2 + lane;
    const uint32x4_t off = row4_scale_offsets(lane, group);
    uint32x4_t ya = row4_y_addresses(y, q);
    for (uint32_t r = 0; r < q; r++) {
        const int8_t *x = xq;
        const float *xd = xd0;
        float32x4_t s = zero_f32x4();
        for (uint32_t g = 0; g < ng; g++) {
            int32_t a0, a1, a2, a3;
            __asm__ volatile(MF_Q8_DOT32("vmladav", "16")
                             : [x] "+r"(x), [w0] "+r"(w0), [w1] "+r"(w1), [w2] "+r"(w2),
                               [w3] "+r"(w3), [a0] "=&Te"(a0), [a1] "=&Te"(a1), [a2] "=&Te"(a2),
                               [a3] "=&Te"(a3)
                             :
                             : "q0", "q1", "q2", "q3", "memory");
            for (uint32_t k = 64u; k < group; k += 32u)
                __asm__ volatile(MF_Q8_DOT32("vmladava", "16")
                                 : [x] "+r"(x), [w0] "+r"(w0), [w1] "+r"(w1), [w2] "+r"(w2),
                                   [w3] "+r"(w3), [a0] "+&Te"(a0), [a1] "+&Te"(a1),
                                   [a2] "+&Te"(a2), [a3] "+&Te"(a3)
                                 :
                                 : "q0", "q1", "q2", "q3", "memory");
            __asm__ volatile(MF_Q8_DOT32("vmladava", "18") MF_ROW4_FLOAT(MF_Q8_LD)
                             : [x] "+r"(x), [xd] "+r"(xd), [w0] "+r"(w0), [w1] "+r"(w1),
                               [w2] "+r"(w2), [w3] "+r"(w3), [s] "+w"(s), [a0] "+&Te"(a0),
                               [a1] "+&Te"(a1), [a2] "+&Te"(a2), [a3] "+&Te"(a3)
                             : [off] "w"(off)
                             : "q0", "q1", "q2", "q3", "memory");
        }
        __asm__ volatile("vstrw.32 %q[s], [%q[ya], #4]!" : [ya] "+w"(ya) : [s] "w"(s) : "memory");
    }
}

__attribute__((noinline)) static void rows4_q4(const uint8_t *p, size_t rb, uint32_t rows,
                                               const int8_t *xq, const float *xd,
                                               const int32_t *xs, uint32_t group,
                                               uint32_t nblocks, float *y)
{
    rows4_all(1, p, rb, rows, xq, xd, xs, group, nblocks, y);
}

__attribute__((noinline)) static void rows2_q8_mve(const uint8_t *r0, const uint8_t *r1,
                                                   const int8_t *xq, const float *xd,
                                                   uint32_t ngroups, uint32_t group, float *y0,
                                                   float *y1)
{
    rows2_mve(0, r0, r1, xq, xd, 0, ngroups, group, y0, y1);
}

__attribute__((noinline)) static void rows2_q4_mve(const uint8_t *r0, const uint8_t *r1,
                                                   const int8_t *xq, const float *xd,
                                                   const int32_t *xs, uint32_t ngroups,
                                                   uint32_t group, float *y0, float *y1)
{
    rows2_mve(1, r0, r1, xq, xd, xs, ngroups, group, y0, y1);
}
#endif

void mf_matvec_qa_q8_arm(const void *w, const void *xq, float *y, uint32_t rows, uint32_t cols,
                         uint32_t group)
{
    const uint8_t *p = (const uint8_t *)w;
    const int8_t *q = qa_q(xq);
    const float *xd = qa_d(xq, cols);
    size_t rb = mf_row_bytes(MF_ENC_Q8, cols, group);
    uint32_t r = 0;
#if defined(MF_ARM_KERNEL_MVE)
    if (group && group % 32u == 0 && cols % group == 0 && rows >= 4u) {
        /* rows4_*: lanes r, r + q, r + 2q, r + 3q for r < q = rows / 4 */
        uint32_t ng = cols / group;
        if (group == 32u && ng % 4u == 0) rows4_q8_g32x4(p, rb, rows / 4u, q, xd, ng / 4u, y);
        else if (group == 32u && ng % 2u == 0) rows4_q8_g32x2(p, rb, rows / 4u, q, xd, ng / 2u, y);
        else if (group == 32u) rows4_q8_g32(p, rb, rows / 4u, q, xd, ng, y);
        else if (group == 64u) rows4_q8_g64(p, rb, rows / 4u, q, xd, ng, y);
        else if (group == 128u) rows4_q8_g128(p, rb, rows / 4u, q, xd, ng, y);
        else rows4_q8(p, rb, rows / 4u, q, xd, ng, group, y);
        r = rows & ~3u;
        p += (size_t)r * rb;
    }
    if (group && group % 16u == 0 && cols % group == 0) {
        for (; r + 2u <= rows; r += 2u, p += 2u * rb)
            rows2_q8_mve(p, p + rb, q, xd, cols / group, group, &y[r], &y[r + 1]);
    }
#endif
#if defined(MF_ARM_KERNEL_DSP)
    if (group && group % 4u == 0 && cols % group == 0)
        for (; r + 2u <= rows; r += 2u, p += 2u * rb)
            rows2_q8_dsp(p, rb, q, xd, cols / group, group, &y[r], &y[r + 1]);
#endif
    for (; r < rows; r++, p += rb) y[r] = row_q8(p, q, xd, cols, group);
}

void mf_matvec_qa_q4_arm(const void *w, const void *xq, float *y, uint32_t rows, uint32_t cols,
                         uint32_t group)
{
    const uint8_t *p = (const uint8_t *)w;
    const int8_t *q = qa_q(xq);
    const float *xd = qa_d(xq, cols);
    const int32_t *xs = (const int32_t *)(const void *)(xd + (cols + group - 1u) / group);
    size_t rb = mf_row_bytes(MF_ENC_Q4, cols, group);
    uint32_t r = 0;
#if defined(MF_ARM_KERNEL_MVE)
    if ((group == 32u || group == 64u || group == 128u) && cols % group == 0 &&
        cols / group <= MF_Q4_MAXG && rows >= 4u) {
        /* rows4_*: lanes r, r + q, r + 2q, r + 3q for r < q = rows / 4 */
        uint32_t ng = cols / group, q4 = rows / 4u;
        if (group == 64u) rows4_q4_g64(p, rb, q4, q, xd, xs, ng, y);
        else if (group == 128u) rows4_q4_g128(p, rb, q4, q, xd, xs, ng, y);
        else if (ng % 4u == 0) rows4_q4_g32x4(p, rb, q4, q, xd, xs, ng, y);
        else if (ng % 2u == 0) rows4_q4_g32x2(p, rb, q4, q, xd, xs, ng, y);
        else rows4_q4_g32(p, rb, q4, q, xd, xs, ng, y);
        r = rows & ~3u;
        p += (size_t)r * rb;
    } else if (group && group % 32u == 0 && cols % (4u * group) == 0 && rows >= 4u) {
        rows4_q4(p, rb, rows, q, xd, xs, group, cols / (4u * group), y);
        r = rows & ~3u;
        p += (size_t)r * rb;
    }
    if (group && group % 32u == 0 && cols % group == 0) {
        for (; r + 2u <= rows; r += 2u, p += 2u * rb)
            rows2_q4_mve(p, p + rb, q, xd, xs, cols / group, group, &y[r], &y[r + 1]);
    }
#endif
#if defined(MF_ARM_KERNEL_DSP)
    if (group && group % 8u == 0 && cols % group == 0)
        for (; r + 2u <= rows; r += 2u, p += 2u * rb)
            rows2_q4_dsp(p, rb, q, xd, xs, cols / group, group, &y[r], &y[r + 1]);
#endif
    for (; r < rows; r++, p += rb) y[r] = row_q4(p, q, xd, xs, cols, group);
}

/* ---- Q3 and Q2 ----
 * A group of n values: f16 scale, the low plane of ceil(n/4) bytes (byte j,
 * bits 2k..2k+1: the low two bits of value j + k*h, h = ceil(n/4)) and for
 * Q3 the high plane of ceil(n/8) bytes (byte j, bit k: the third bit of
 * value j + k*h8). The dots below are sum(u * qx); the zero point comes off
 * as z * s[g] (z = 4 or 2) with the activation group sum, as for Q4. */

/* Any n (a partial last group, odd groups): the loops of unpack_levels. */
static int32_t dot_low_any(int q3, const uint8_t *p, const int8_t *x, uint32_t n)
{
    uint32_t h = (n + 3u) / 4u, h8 = (n + 7u) / 8u, j, k;
    int32_t acc = 0;
    for (k = 0; k < 4u; k++)
        for (j = 0; j < h && j + k * h < n; j++)
            acc += (int32_t)((p[j] >> (2u * k)) & 3u) * (int32_t)x[j + k * h];
    if (q3)
        for (k = 0; k < 8u; k++)
            for (j = 0; j < h8 && j + k * h8 < n; j++)
                if ((p[h + j] >> k) & 1u) acc += 4 * (int32_t)x[j + k * h8];
    return acc;
}

#if defined(MF_ARM_KERNEL_DSP)
/* n a multiple of 32, so h and h8 are multiples of 4: four low-plane bytes
 * v at a time; field k of bytes 0, 2 and of bytes 1, 3 masked straight into
 * halfword pairs (levels are small, no UXTB16 needed) against x[j + k*h ..
 * +3] as SXTB16 pairs. For Q3 the high bits of low byte j sit in high byte
 * j % h8 at bit 2k (j < h8) or 2k + 1 (j >= h8, since h = 2*h8); a whole
 * 4-byte word is on one side. */
#define MF_DSP_FIELD(K)                                                                         \
    do {                                                                                        \
        uint32_t xw = ld32(x + j + (K) * h);                                                    \
        uint32_t ue = (v >> (2 * (K))) & 0x00030003u, uo = (v >> (2 * (K) + 8)) & 0x00030003u;  \
        if (q3) {                                                                               \
            ue |= ((hw >> (2 * (K))) & 0x00010001u) << 2;                                       \
            uo |= ((hw >> (2 * (K) + 8)) & 0x00010001u) << 2;                                   \
        }                                                                                       \
        acc = __smlad(ue, __sxtb16(xw), acc);                                                   \
        acc = __smlad(uo, sxtb16_ror8(xw), acc);                                                \
    } while (0)
__attribute__((always_inline)) static inline int32_t dot_low_dsp(int q3, const uint8_t *p,
                                                                  const int8_t *x, uint32_t n)
{
    const uint32_t h = n / 4u, h8 = n / 8u;
    int32_t acc = 0;
    for (uint32_t j = 0; j < h; j += 4u) {
        uint32_t v = ld32(p + j), hw = 0;
        if (q3) hw = j < h8 ? ld32(p + h + j) : ld32(p + h + j - h8) >> 1;
        MF_DSP_FIELD(0);
        MF_DSP_FIELD(1);
        MF_DSP_FIELD(2);
        MF_DSP_FIELD(3);
    }
    return acc;
}
#undef MF_DSP_FIELD
__attribute__((noinline)) static int32_t dot_q3_dsp(const uint8_t *p, const int8_t *x, uint32_t n)
{
    return dot_low_dsp(1, p, x, n);
}
__attribute__((noinline)) static int32_t dot_q2_dsp(const uint8_t *p, const int8_t *x, uint32_t n)
{
    return dot_low_dsp(0, p, x, n);
}
static int32_t dot_low_s8(int q3, const uint8_t *p, const int8_t *x, uint32_t n)
{
    if (n % 32u) return dot_low_any(q3, p, x, n);
    return q3 ? dot_q3_dsp(p, x, n) : dot_q2_dsp(p, x, n);
}
#endif

#if defined(MF_ARM_KERNEL_DSP)
/* Two Q3 / Q2 rows over whole groups of a multiple of 32 values, as
 * dot_low_dsp, sharing each activation word's load and SXTB16s. Field k of
 * bytes 0, 2 (e) and 1, 3 (o) by one AND with a shifted register each; for
 * Q3 the high bit of the field, moved to bit 2, by one more. */
#define MF_DSP_FIELD2(K, LE, LO, HE, HO)                                          \
    do {                                                                          \
        uint32_t xw = ld32(x + j + (K) * h);                                      \
        uint32_t te = __sxtb16(xw), to = sxtb16_ror8(xw);                         \
        uint32_t ve = LE(m2, v), vo = LO(m2, v), ue = LE(m2, u), uo = LO(m2, u); \
        if (q3) {                                                                 \
            ve |= HE(m4, hv), vo |= HO(m4, hv);                                   \
            ue |= HE(m4, hu), uo |= HO(m4, hu);                                   \
        }                                                                         \
        s0 = __smlad(ve, te, s0);                                                 \
        s0 = __smlad(vo, to, s0);                                                 \
        s1 = __smlad(ue, te, s1);                                                 \
        s1 = __smlad(uo, to, s1);                                                 \
    } while (0)
static inline uint32_t and_lsr0(uint32_t m, uint32_t v) { return m & v; }
static inline __attribute__((always_inline)) void dot2_low_dsp(int q3, const uint8_t *p0,
                                                               const uint8_t *p1, const int8_t *x,
                                                               uint32_t n, int32_t *a0, int32_t *a1)
{
    const uint32_t h = n / 4u, h8 = n / 8u, m2 = 0x00030003u, m4 = 0x00040004u;
    int32_t s0 = 0, s1 = 0;
    _Pragma("GCC unroll 2") for (uint32_t j = 0; j < h; j += 4u)
    {
        uint32_t v = ld32(p0 + j), u = ld32(p1 + j), hv = 0, hu = 0;
        if (q3) {
            if (j < h8)
                hv = ld32(p0 + h + j), hu = ld32(p1 + h + j);
            else
                hv = ld32(p0 + h + j - h8) >> 1, hu = ld32(p1 + h + j - h8) >> 1;
        }
        /* field k: levels at bits 2k (e) and 2k + 8 (o); the high bits at
         * 2k and 2k + 8 of hv, wanted at bit 2 */
        MF_DSP_FIELD2(0, and_lsr0, and_lsr8, and_lsl2, and_lsr6);
        MF_DSP_FIELD2(1, and_lsr2, and_lsr10, and_lsr0, and_lsr8);
        MF_DSP_FIELD2(2, and_lsr4, and_lsr12, and_lsr2, and_lsr10);
        MF_DSP_FIELD2(3, and_lsr6, and_lsr14, and_lsr4, and_lsr12);
    }
    *a0 = s0;
    *a1 = s1;
}
#undef MF_DSP_FIELD2

/* row_qlow's float work, in its order, for two rows rb bytes apart (q3
 * and n, the group, constants after inlining: see rows2_q4_groups). */
static inline __attribute__((always_inline)) void rows2_low_groups(int q3, const uint8_t *p0,
                                                                   size_t rb, const int8_t *xq,
                                                                   const float *xd,
                                                                   const int32_t *xs,
                                                                   uint32_t ngroups, uint32_t n,
                                                                   float *y0, float *y1)
{
    const int32_t z = q3 ? 4 : 2;
    uint32_t pb = n / 4u + (q3 ? n / 8u : 0u);
    float sum0 = 0.0f, sum1 = 0.0f;
    for (uint32_t g = 0; g < ngroups; g++, p0 += 2u + pb, xq += n) {
        int32_t a0, a1;
        dot2_low_dsp(q3, p0 + 2, p0 + rb + 2, xq, n, &a0, &a1);
        float d0 = f16_vfp(ld16(p0)), d1 = f16_vfp(ld16(p0 + rb));
        sum0 += d0 * xd[g] * (float)(a0 - z * xs[g]);
        sum1 += d1 * xd[g] * (float)(a1 - z * xs[g]);
    }
    *y0 = sum0;
    *y1 = sum1;
}

__attribute__((noinline)) static void rows2_low_dsp(int q3, const uint8_t *p0, size_t rb,
                                                    const int8_t *xq, const float *xd,
                                                    const int32_t *xs, uint32_t ngroups,
                                                    uint32_t group, float *y0, float *y1)
{
    if (q3 && group == 32u)
        rows2_low_groups(1, p0, rb, xq, xd, xs, ngroups, 32u, y0, y1);
    else if (q3)
        rows2_low_groups(1, p0, rb, xq, xd, xs, ngroups, group, y0, y1);
    else if (group == 32u)
        rows2_low_groups(0, p0, rb, xq, xd, xs, ngroups, 32u, y0, y1);
    else
        rows2_low_groups(0, p0, rb, xq, xd, xs, ngroups, group, y0, y1);
}
#endif

#if defined(MF_ARM_KERNEL_MVE)
/* 32 values: low-plane bytes j..j+7 in halfword lanes (VLDRB.U16), then
 * VSLI #4 puts fields 0, 1 in the low byte and 2, 3 in the high byte of
 * each lane: & 3 gives values j and j+2h, >> 2 & 3 values j+h and j+3h.
 * The activations are paired the same way (low byte, high byte): */
static inline int8x16_t x_pair(const int8_t *lo, const int8_t *hi)
{
    uint16x8_t a = vldrbq_u16((const uint8_t *)lo), b = vldrbq_u16((const uint8_t *)hi);
    return vreinterpretq_s8_u16(vsliq_n_u16(a, b, 8));
}

__attribute__((always_inline)) static inline int32_t q2_dot32(int32_t acc, const uint8_t *w,
                                                               int8x16_t xa, int8x16_t xb)
{
    uint16x8_t v = vldrbq_u16(w);
    uint8x16_t l = vreinterpretq_u8_u16(vsliq_n_u16(v, v, 4));
    acc = vmladavaq_s8(acc, vreinterpretq_s8_u8(vandq_u8(l, vdupq_n_u8(3))), xa);
    acc = vmladavaq_s8(acc, vreinterpretq_s8_u8(vandq_u8(vshrq_n_u8(l, 2), vdupq_n_u8(3))), xb);
    return acc;
}

/* hv: lane i holds the high-plane byte of low byte j + i, shifted so that
 * the third bit of field k is at bit 2k; VSLI #4 on it lines the bits up
 * with the fields, VSLI.8 #2 puts them above the two low bits. */
__attribute__((always_inline)) static inline int32_t q3_dot32(int32_t acc, const uint8_t *w,
                                                               uint16x8_t hv, int8x16_t xa,
                                                               int8x16_t xb)
{
    uint16x8_t v = vldrbq_u16(w);
    uint8x16_t l = vreinterpretq_u8_u16(vsliq_n_u16(v, v, 4));
    uint8x16_t hh = vreinterpretq_u8_u16(vsliq_n_u16(hv, hv, 4));
    const uint8x16_t one = vdupq_n_u8(1);
    uint8x16_t a = vsliq_n_u8(l, vandq_u8(hh, one), 2);
    uint8x16_t b = vsliq_n_u8(vshrq_n_u8(l, 2), vandq_u8(vshrq_n_u8(hh, 2), one), 2);
    acc = vmladavaq_s8(acc, vreinterpretq_s8_u8(a), xa);
    acc = vmladavaq_s8(acc, vreinterpretq_s8_u8(b), xb);
    return acc;
}

/* Q3's hv for low bytes j..j+7 of a group at p (after the scale). Groups
 * of 64k: h8 is a multiple of 8, the eight bytes lie on one side of h8
 * (high bits at 2k, or 2k + 1 past h8). Groups of 32: h8 = 4, so lanes
 * 0-3 and 4-7 read the same four bytes, the latter shifted by one. */
static inline uint16x8_t q3_hv(const uint8_t *p, uint32_t j, uint32_t h, uint32_t h8,
                               uint16x8_t off32, int16x8_t sh32)
{
    if (h8 == 4u) return vshlq_u16(vldrbq_gather_offset_u16(p + h, off32), sh32);
    if (j < h8) return vldrbq_u16(p + h + j);
    return vshrq_n_u16(vldrbq_u16(p + h + j - h8), 1);
}

static inline uint16x8_t q3_off32(void)
{
    static const uint16_t o[8] = {0, 1, 2, 3, 0, 1, 2, 3};
    return vldrhq_u16(o);
}
static inline int16x8_t q3_sh32(void)
{
    static const int16_t s[8] = {0, 0, 0, 0, -1, -1, -1, -1};
    return vldrhq_s16(s);
}

/* One group, n a multiple of 32 (Q3: 32 or a multiple of 64). */
static int32_t dot_low_s8(int q3, const uint8_t *p, const int8_t *x, uint32_t n)
{
    if (n % 32u || (q3 && n != 32u && n % 64u)) return dot_low_any(q3, p, x, n);
    const uint32_t h = n / 4u, h8 = n / 8u;
    const uint16x8_t off32 = q3_off32();
    const int16x8_t sh32 = q3_sh32();
    int32_t acc = 0;
    for (uint32_t j = 0; j < h; j += 8u) {
        int8x16_t xa = x_pair(x + j, x + j + 2u * h), xb = x_pair(x + j + h, x + j + 3u * h);
        if (q3) acc = q3_dot32(acc, p + j, q3_hv(p, j, h, h8, off32, sh32), xa, xb);
        else acc = q2_dot32(acc, p + j, xa, xb);
    }
    return acc;
}

/* Four consecutive rows, one per vector lane, over full groups (the shape
 * conditions of dot_low_s8) where the asm kernels below do not apply
 * (groups other than 32, 64 and 128, or more than MF_Q4_MAXG groups),
 * in C: per 32 values the activation pairs are built
 * once for the four rows; per group the four integer sums, the four rows'
 * scales (one gather) and s += (d_w * d_x) * (float)acc lane by lane, i.e.
 * each row's sum in quant.c's order. */
__attribute__((always_inline)) static inline void
rows4_low(int q3, const uint8_t *p, size_t rb, uint32_t nblk, const int8_t *xq, const float *xd,
          const int32_t *xs, uint32_t ng, uint32_t group, float *y)
{
    const uint32_t h = group / 4u, h8 = group / 8u, gs = 2u + h + (q3 ? h8 : 0u);
    const int32_t z = q3 ? 4 : 2;
    const uint32_t off[4] = {0, (uint32_t)rb, 2u * (uint32_t)rb, 3u * (uint32_t)rb};
    const uint32x4_t offv = vldrwq_u32(off);
    const uint16x8_t off32 = q3_off32();
    const int16x8_t sh32 = q3_sh32();
    for (uint32_t b = 0; b < nblk; b++, p += 4u * rb, y += 4) {
        float32x4_t s = vdupq_n_f32(0.0f);
        const uint8_t *g0 = p;
        for (uint32_t g = 0; g < ng; g++, g0 += gs) {
            const int8_t *x = xq + g * group;
            const uint8_t *w0 = g0 + 2, *w1 = w0 + rb, *w2 = w1 + rb, *w3 = w2 + rb;
            int32_t c0 = 0, c1 = 0, c2 = 0, c3 = 0;
            for (uint32_t j = 0; j < h; j += 8u) {
                int8x16_t xa = x_pair(x + j, x + j + 2u * h);
                int8x16_t xb = x_pair(x + j + h, x + j + 3u * h);
                if (q3) {
                    c0 = q3_dot32(c0, w0 + j, q3_hv(w0, j, h, h8, off32, sh32), xa, xb);
                    c1 = q3_dot32(c1, w1 + j, q3_hv(w1, j, h, h8, off32, sh32), xa, xb);
                    c2 = q3_dot32(c2, w2 + j, q3_hv(w2, j, h, h8, off32, sh32), xa, xb);
                    c3 = q3_dot32(c3, w3 + j, q3_hv(w3, j, h, h8, off32, sh32), xa, xb);
                } else {
                    c0 = q2_dot32(c0, w0 + j, xa, xb);
                    c1 = q2_dot32(c1, w1 + j, xa, xb);
                    c2 = q2_dot32(c2, w2 + j, xa, xb);
                    c3 = q2_dot32(c3, w3 + j, xa, xb);
                }
            }
            int32x4_t a = vdupq_n_s32(0);
            a = vsetq_lane_s32(c0, a, 0);
            a = vsetq_lane_s32(c1, a, 1);
            a = vsetq_lane_s32(c2, a, 2);
            a = vsetq_lane_s32(c3, a, 3);
            a = vsubq_n_s32(a, z * xs[g]);
            float32x4_t d = cvtb_f32_f16(vldrhq_gather_offset_u32((const uint16_t *)(const void *)g0, offv));
            s = vaddq_f32(s, vmulq_f32(vmulq_n_f32(d, xd[g]), vcvtq_f32_s32(a)));
        }
        vstrwq_f32(y, s);
    }
}

/* Groups of 32 in the lanes of MF_ROWS4_LOOP (rows r + i*q), as Q4 does.
 * Q2: the activation pairs of the group (6 instructions for the four rows),
 * per row: load, VSLI, VAND, VMLADAV, VSHR, VAND, VMLADAVA (7), the weight
 * load skipping the next scale (8 + 2 bytes). */
#define MF_Q2_ROW(W, A)                                                                         \
    "vldrb.u16 q3, [%[" W "]], #10\n\t"                                                          \
    "vsli.16 q3, q3, #4\n\t"                                                                    \
    "vand q0, q3, %q[m]\n\t"                                                                    \
    "vmladav.s8 %[" A "], q0, q1\n\t"                                                            \
    "vshr.u8 q3, q3, #2\n\t"                                                                    \
    "vand q3, q3, %q[m]\n\t"                                                                    \
    "vmladava.s8 %[" A "], q3, q2\n\t"
#define MF_Q2_G32                                                                               \
    "vldrb.u16 q0, [%[x], #16]\n\t"                                                             \
    "vldrb.u16 q2, [%[x], #8]\n\t"                                                              \
    "vldrb.u16 q3, [%[x], #24]\n\t"                                                             \
    "vldrb.u16 q1, [%[x]], #32\n\t"                                                             \
    "vsli.16 q1, q0, #8\n\t"                                                                    \
    "vsli.16 q2, q3, #8\n\t"                                                                    \
    MF_Q2_ROW("w0", "a0") MF_Q2_ROW("w1", "a1") MF_Q2_ROW("w2", "a2") MF_Q2_ROW("w3", "a3")     \
    MF_ROW4_FLOAT(MF_Q4_LD)
/* Q3: the high plane has four bytes, low bytes m and m + 4 share high byte
 * m (bits 2k and 2k + 1). So each 32-bit lane m takes low bytes m, m + 4
 * (VLDRB.U32 twice, VSLI.32 #16) and high byte m as m, m >> 1 (VLDRB.U32,
 * VSLI.32 #15: bit 15 is junk that VSLI.16 #4 shifts out); VSLI.16 #4
 * then lines up both as in q2_dot32, VSLI.8 #2 and & 7 join the bits. The
 * activations are paired in the same lane order (14 instructions for the
 * four rows); per row 15 instructions. */
/* q0 = low fields (after VSLI.16 #4), q3 = their third bits likewise: the
 * 3-bit levels of the q1 pairs (VSLI.8 #2, & 7) and of the q2 pairs. */
#define MF_Q3_JOIN(OP, A)                                                                       \
    "vshr.u8 %q[t], q0, #2\n\t"                                                                 \
    "vsli.8 q0, q3, #2\n\t"                                                                     \
    "vand q0, q0, %q[m]\n\t"                                                                    \
    OP ".s8 %[" A "], q0, q1\n\t"                                                               \
    "vshr.u8 q3, q3, #2\n\t"                                                                    \
    "vsli.8 %q[t], q3, #2\n\t"                                                                  \
    "vand %q[t], %q[t], %q[m]\n\t"                                                              \
    "vmladava.s8 %[" A "], %q[t], q2\n\t"
#define MF_Q3_ROW(W, A)                                                                         \
    "vldrb.u32 q3, [%[" W "], #4]\n\t"                                                           \
    "vldrb.u32 q0, [%[" W "]], #8\n\t"                                                           \
    "vsli.32 q0, q3, #16\n\t"                                                                   \
    "vldrb.u32 q3, [%[" W "]], #6\n\t"                                                           \
    "vsli.32 q3, q3, #15\n\t"                                                                   \
    "vsli.16 q0, q0, #4\n\t"                                                                    \
    "vsli.16 q3, q3, #4\n\t"                                                                    \
    MF_Q3_JOIN("vmladav", A)
#define MF_Q3_G32                                                                               \
    "vldrb.u32 q2, [%[x], #8]\n\t"                                                              \
    "vldrb.u32 q0, [%[x], #12]\n\t"                                                             \
    "vsli.32 q2, q0, #16\n\t"                                                                   \
    "vldrb.u32 q0, [%[x], #24]\n\t"                                                             \
    "vldrb.u32 q3, [%[x], #28]\n\t"                                                             \
    "vsli.32 q0, q3, #16\n\t"                                                                   \
    "vsli.16 q2, q0, #8\n\t"                                                                    \
    "vldrb.u32 q0, [%[x], #16]\n\t"                                                             \
    "vldrb.u32 q3, [%[x], #20]\n\t"                                                             \
    "vsli.32 q0, q3, #16\n\t"                                                                   \
    "vldrb.u32 q3, [%[x], #4]\n\t"                                                              \
    "vldrb.u32 q1, [%[x]], #32\n\t"                                                             \
    "vsli.32 q1, q3, #16\n\t"                                                                   \
    "vsli.16 q1, q0, #8\n\t"                                                                    \
    MF_Q3_ROW("w0", "a0") MF_Q3_ROW("w1", "a1") MF_Q3_ROW("w2", "a2") MF_Q3_ROW("w3", "a3")     \
    MF_ROW4_FLOAT(MF_Q4_LD)

/* Groups of 64 and 128, 32 values (low bytes j .. j+7) at a time in the
 * lane order of q2_dot32 / q3_dot32. Activation pairs: x + j with x + j +
 * 2h, x + j + h with x + j + 3h (H, H2, H3 = h, 2h, 3h); XINC moves x on
 * by 8, or at the group's last chunk to the next group. */
#define MF_LOW_X(H, H2, H3, XINC)                                                               \
    "vldrb.u16 q0, [%[x], #" H2 "]\n\t"                                                         \
    "vldrb.u16 q2, [%[x], #" H "]\n\t"                                                          \
    "vldrb.u16 q3, [%[x], #" H3 "]\n\t"                                                         \
    "vldrb.u16 q1, [%[x]], #" XINC "\n\t"                                                       \
    "vsli.16 q1, q0, #8\n\t"                                                                    \
    "vsli.16 q2, q3, #8\n\t"
/* INC: 8, or at the group's last chunk 8 + 2 (Q2) or 8 + h8 + 2 (Q3) to
 * the next group's weights. */
#define MF_Q2N_ROW(OP, INC, W, A)                                                               \
    "vldrb.u16 q3, [%[" W "]], #" INC "\n\t"                                                     \
    "vsli.16 q3, q3, #4\n\t"                                                                    \
    "vand q0, q3, %q[m]\n\t"                                                                    \
    OP ".s8 %[" A "], q0, q1\n\t"                                                               \
    "vshr.u8 q3, q3, #2\n\t"                                                                    \
    "vand q3, q3, %q[m]\n\t"                                                                    \
    "vmladava.s8 %[" A "], q3, q2\n\t"
#define MF_Q2N_CHUNK(OP, INC, H, H2, H3, XINC)                                                  \
    MF_LOW_X(H, H2, H3, XINC)                                                                   \
    MF_Q2N_ROW(OP, INC, "w0", "a0") MF_Q2N_ROW(OP, INC, "w1", "a1")                             \
    MF_Q2N_ROW(OP, INC, "w2", "a2") MF_Q2N_ROW(OP, INC, "w3", "a3")
#define MF_Q2_G64                                                                               \
    MF_Q2N_CHUNK("vmladav", "8", "16", "32", "48", "8")                                         \
    MF_Q2N_CHUNK("vmladava", "10", "16", "32", "48", "56") MF_ROW4_FLOAT(MF_Q4_LD)
#define MF_Q2_G128                                                                              \
    MF_Q2N_CHUNK("vmladav", "8", "32", "64", "96", "8")                                         \
    MF_Q2N_CHUNK("vmladava", "8", "32", "64", "96", "8")                                        \
    MF_Q2N_CHUNK("vmladava", "8", "32", "64", "96", "8")                                        \
    MF_Q2N_CHUNK("vmladava", "10", "32", "64", "96", "104") MF_ROW4_FLOAT(MF_Q4_LD)
/* Q3: the high bytes of low bytes j < h8 are at j + h, of j >= h8 at
 * j - h8 + h, one bit further up: HOFF from the row pointer, SHR the
 * shift that puts them where q3_dot32 wants them. */
#define MF_Q3N_ROW(OP, INC, HOFF, SHR, W, A)                                                    \
    "vldrb.u16 q3, [%[" W "], #" HOFF "]\n\t"                                                    \
    SHR                                                                                         \
    "vldrb.u16 q0, [%[" W "]], #" INC "\n\t"                                                     \
    "vsli.16 q0, q0, #4\n\t"                                                                    \
    "vsli.16 q3, q3, #4\n\t"                                                                    \
    MF_Q3_JOIN(OP, A)
#define MF_Q3N_CHUNK(OP, INC, HOFF, SHR, H, H2, H3, XINC)                                       \
    MF_LOW_X(H, H2, H3, XINC)                                                                   \
    MF_Q3N_ROW(OP, INC, HOFF, SHR, "w0", "a0") MF_Q3N_ROW(OP, INC, HOFF, SHR, "w1", "a1")       \
    MF_Q3N_ROW(OP, INC, HOFF, SHR, "w2", "a2") MF_Q3N_ROW(OP, INC, HOFF, SHR, "w3", "a3")
#define MF_SHR1 "vshr.u16 q3, q3, #1\n\t"
#define MF_Q3_G64                                                                               \
    MF_Q3N_CHUNK("vmladav", "8", "16", "", "16", "32", "48", "8")                               \
    MF_Q3N_CHUNK("vmladava", "18", "8", MF_SHR1, "16", "32", "48", "56") MF_ROW4_FLOAT(MF_Q4_LD)
#define MF_Q3_G128                                                                              \
    MF_Q3N_CHUNK("vmladav", "8", "32", "", "32", "64", "96", "8")                               \
    MF_Q3N_CHUNK("vmladava", "8", "32", "", "32", "64", "96", "8")                              \
    MF_Q3N_CHUNK("vmladava", "8", "16", MF_SHR1, "32", "64", "96", "8")                         \
    MF_Q3N_CHUNK("vmladava", "26", "16", MF_SHR1, "32", "64", "96", "104")                      \
    MF_ROW4_FLOAT(MF_Q4_LD)

/* As MF_ROWS4_OUTPUTS, but the widening loads (VLDRB.U16, .U32) take only
 * r0-r7 as the base: x and the row pointers in low registers. */
#define MF_LOW_OUTPUTS                                                                          \
    [x] "+l"(x), [xd] "+r"(xd), [w0] "+l"(w0), [w1] "+l"(w1), [w2] "+l"(w2), [w3] "+l"(w3),     \
        [nb] "+r"(nb), [ya] "+w"(ya), [s] "=&w"(s), [a0] "=&Te"(a0), [a1] "=&Te"(a1),           \
        [a2] "=&Te"(a2), [a3] "=&Te"(a3)
#define MF_DEFINE_ROWS4_Q2(NAME, WBYTES, BODY, XSH, DSH, PER)                                           \
    __attribute__((noinline)) static void NAME(const uint8_t *p, size_t rb, uint32_t q,         \
                                               const int8_t *xq, const float *xd0,              \
                                               const int32_t *xs, uint32_t ng, float *y)        \
    {                                                                                           \
        float dz[2 * MF_Q4_MAXG] __attribute__((aligned(16)));                                  \
        low_dz(dz, xd0, xs, ng, 2);                                                             \
        const float *xd = dz;                                                                   \
        const uint8x16_t m = vdupq_n_u8(3);                                                     \
        const uint32_t n = ng / (PER);                                                          \
        MF_ROWS4_SETUP(WBYTES);                                                                 \
        __asm__ volatile(MF_ROWS4_LOOP(BODY, XSH, DSH)                                          \
                         : MF_LOW_OUTPUTS                                                       \
                         : [n] "r"(n), [off] "w"(off), [m] "w"(m)                               \
                         : MF_ROWS4_CLOBBERS);                                                  \
    }
MF_DEFINE_ROWS4_Q2(rows4_q2_g32x4, 8u, MF_Q2_G32 MF_Q2_G32 MF_Q2_G32 MF_Q2_G32, "7", "5", 4u)
MF_DEFINE_ROWS4_Q2(rows4_q2_g32x2, 8u, MF_Q2_G32 MF_Q2_G32, "6", "4", 2u)
MF_DEFINE_ROWS4_Q2(rows4_q2_g32, 8u, MF_Q2_G32, "5", "3", 1u)
MF_DEFINE_ROWS4_Q2(rows4_q2_g64, 16u, MF_Q2_G64, "6", "3", 1u)
MF_DEFINE_ROWS4_Q2(rows4_q2_g128, 32u, MF_Q2_G128, "7", "3", 1u)

/* Q3 needs one more vector register than MF_ROWS4_LOOP leaves (the
 * scatter store's addresses), so the loop over blocks is in C around one
 * asm loop over the groups, and the four sums go out with a C scatter
 * store. PER groups per iteration of the low-overhead loop. */
#define MF_DEFINE_ROWS4_Q3(NAME, WBYTES, BODY, PER)                                             \
    __attribute__((noinline)) static void NAME(const uint8_t *p, size_t rb, uint32_t q,         \
                                               const int8_t *xq, const float *xd0,              \
                                               const int32_t *xs, uint32_t ng, float *y)        \
    {                                                                                           \
        float dz[2 * MF_Q4_MAXG] __attribute__((aligned(16)));                                  \
        low_dz(dz, xd0, xs, ng, 4);                                                             \
        const uint8x16_t m = vdupq_n_u8(7);                                                     \
        const size_t lane = (size_t)q * rb;                                                     \
        const uint8_t *w0 = p + 2, *w1 = w0 + lane, *w2 = w1 + lane, *w3 = w2 + lane;           \
        const uint32x4_t off = row4_scale_offsets(lane, WBYTES);                                \
        const uint32x4_t yo = vmulq_n_u32(vidupq_n_u32(0u, 1), 4u * q);                         \
        const uint32_t n = ng / (PER);                                                          \
        for (uint32_t r = 0; r < q; r++) {                                                      \
            const int8_t *x = xq;                                                               \
            const float *xd = dz;                                                               \
            float32x4_t s;                                                                      \
            int32_t a0, a1, a2, a3;                                                             \
            uint8x16_t t;                                                                       \
            __asm__ volatile("vmov.i32 %q[s], #0\n\t"                                           \
                             "dls lr, %[n]\n\t"                                                 \
                             "2:\n\t" BODY "le lr, 2b"                                          \
                             : [x] "+l"(x), [xd] "+r"(xd), [w0] "+l"(w0), [w1] "+l"(w1),        \
                               [w2] "+l"(w2), [w3] "+l"(w3), [s] "=&w"(s), [a0] "=&Te"(a0),     \
                               [a1] "=&Te"(a1), [a2] "=&Te"(a2), [a3] "=&Te"(a3),               \
                               [t] "=&w"(t)                                                     \
                             : [n] "r"(n), [off] "w"(off), [m] "w"(m)                           \
                             : "q0", "q1", "q2", "q3", "lr", "memory", "cc");                   \
            vstrwq_scatter_offset_f32(y + r, yo, s);                                            \
        }                                                                                       \
    }
MF_DEFINE_ROWS4_Q3(rows4_q3_g32x4, 12u, MF_Q3_G32 MF_Q3_G32 MF_Q3_G32 MF_Q3_G32, 4u)
MF_DEFINE_ROWS4_Q3(rows4_q3_g32x2, 12u, MF_Q3_G32 MF_Q3_G32, 2u)
MF_DEFINE_ROWS4_Q3(rows4_q3_g32, 12u, MF_Q3_G32, 1u)
MF_DEFINE_ROWS4_Q3(rows4_q3_g64, 24u, MF_Q3_G64, 1u)
MF_DEFINE_ROWS4_Q3(rows4_q3_g128, 48u, MF_Q3_G128, 1u)

__attribute__((noinline)) static void rows4_q3(const uint8_t *p, size_t rb, uint32_t nblk,
                                               const int8_t *xq, const float *xd,
                                               const int32_t *xs, uint32_t ng, uint32_t group,
                                               float *y)
{
    rows4_low(1, p, rb, nblk, xq, xd, xs, ng, group, y);
}

__attribute__((noinline)) static void rows4_q2(const uint8_t *p, size_t rb, uint32_t nblk,
                                               const int8_t *xq, const float *xd,
                                               const int32_t *xs, uint32_t ng, uint32_t group,
                                               float *y)
{
    rows4_low(0, p, rb, nblk, xq, xd, xs, ng, group, y);
}
#endif

static float row_qlow(int q3, const uint8_t *p, const int8_t *xq, const float *xd,
                     const int32_t *xs, uint32_t cols, uint32_t group)
{
    const int32_t z = q3 ? 4 : 2;
    float sum = 0.0f;
    uint32_t c, g = 0;
    for (c = 0; c < cols; c += group, g++) {
        uint32_t n = cols - c < group ? cols - c : group;
        uint32_t pb = (n + 3u) / 4u + (q3 ? (n + 7u) / 8u : 0u);
        float d = f16_vfp(ld16(p));
        int32_t acc = dot_low_s8(q3, p + 2, xq + c, n);
        sum += d * xd[g] * (float)(acc - z * xs[g]);
        p += 2u + pb;
    }
    return sum;
}

static void mf_matvec_qa_low_arm(int q3, const void *w, const void *xq, float *y, uint32_t rows,
                           uint32_t cols, uint32_t group)
{
    const uint8_t *p = (const uint8_t *)w;
    const int8_t *q = qa_q(xq);
    const float *xd = qa_d(xq, cols);
    const int32_t *xs;
    size_t rb = mf_row_bytes(q3 ? MF_ENC_Q3 : MF_ENC_Q2, cols, group);
    uint32_t r = 0;
    if (group == 0) return;
    xs = (const int32_t *)(const void *)(xd + (cols + group - 1u) / group);
#if defined(MF_ARM_KERNEL_MVE)
    if ((group == 32u || group == 64u || group == 128u) && cols % group == 0 &&
        cols / group <= MF_Q4_MAXG && rows >= 4u) {
        /* lanes r, r + q, r + 2q, r + 3q for r < q = rows / 4 */
        uint32_t ng = cols / group, q4 = rows / 4u;
        if (q3 && group == 64u) rows4_q3_g64(p, rb, q4, q, xd, xs, ng, y);
        else if (q3 && group == 128u) rows4_q3_g128(p, rb, q4, q, xd, xs, ng, y);
        else if (q3 && ng % 4u == 0) rows4_q3_g32x4(p, rb, q4, q, xd, xs, ng, y);
        else if (q3 && ng % 2u == 0) rows4_q3_g32x2(p, rb, q4, q, xd, xs, ng, y);
        else if (q3) rows4_q3_g32(p, rb, q4, q, xd, xs, ng, y);
        else if (group == 64u) rows4_q2_g64(p, rb, q4, q, xd, xs, ng, y);
        else if (group == 128u) rows4_q2_g128(p, rb, q4, q, xd, xs, ng, y);
        else if (ng % 4u == 0) rows4_q2_g32x4(p, rb, q4, q, xd, xs, ng, y);
        else if (ng % 2u == 0) rows4_q2_g32x2(p, rb, q4, q, xd, xs, ng, y);
        else rows4_q2_g32(p, rb, q4, q, xd, xs, ng, y);
        r = rows & ~3u;
        p += (size_t)r * rb;
    } else if (group % 32u == 0 && (!q3 || group == 32u || group % 64u == 0) &&
               cols % group == 0 && rows >= 4u) {
        if (q3) rows4_q3(p, rb, rows / 4u, q, xd, xs, cols / group, group, y);
        else rows4_q2(p, rb, rows / 4u, q, xd, xs, cols / group, group, y);
        r = rows & ~3u;
        p += (size_t)r * rb;
    }
#endif
#if defined(MF_ARM_KERNEL_DSP)
    if (group % 32u == 0 && cols % group == 0)
        for (; r + 2u <= rows; r += 2u, p += 2u * rb)
            rows2_low_dsp(q3, p, rb, q, xd, xs, cols / group, group, &y[r], &y[r + 1]);
#endif
    for (; r < rows; r++, p += rb) y[r] = row_qlow(q3, p, q, xd, xs, cols, group);
}

void mf_matvec_qa_q3_arm(const void *w, const void *xq, float *y, uint32_t rows, uint32_t cols,
                         uint32_t group)
{
    mf_matvec_qa_low_arm(1, w, xq, y, rows, cols, group);
}

void mf_matvec_qa_q2_arm(const void *w, const void *xq, float *y, uint32_t rows, uint32_t cols,
                         uint32_t group)
{
    mf_matvec_qa_low_arm(0, w, xq, y, rows, cols, group);
}

#if defined(MF_ARM_KERNEL_F32)
/* ---- f32 matrix-vector product (one token) ----
 *
 * The order of ops.c's mf_dot_f32 for every row: lane j of lo/hi holds the
 * products at indices i % 8 == j (lo 0..3, hi 4..7) in increasing i, each
 * step a VMUL then a VADD (a fused VFMA would round once, not twice). A row
 * without a tail ends as comb_f32 below, one with a tail as finish_tail.
 * Two rows per pass share the loads of x. */

/* No tail: t = lo + hi (one VADD, as mf_dot_f32 does it), then
 * (t0 + t1) + (t2 + t3) = ((s0+s4)+(s1+s5))+((s2+s6)+(s3+s7)), on the lanes
 * as S registers (no moves through core registers). */
static inline float comb_f32(float32x4_t lo, float32x4_t hi)
{
    register float32x4_t t __asm__("q1") = vaddq_f32(lo, hi);
    float s;
    __asm__("vadd.f32 s0, s4, s5\n\t"
            "vadd.f32 s1, s6, s7\n\t"
            "vadd.f32 %0, s0, s1"
            : "=t"(s)
            : "w"(t)
            : "s0", "s1");
    return s;
}

/* A row with a tail (cols % 8 != 0): mf_dot_f32 (finish8) then works on
 * the eight lanes in memory with scalar VFP operations: the tail products
 * into their lanes, then ((s0+s4)+(s1+s5))+((s2+s6)+(s3+s7)). Done here with
 * the same scalar instructions, not with vector ones: MVE and scalar VFP
 * need not treat subnormals alike (QEMU flushes them in MVE only), and the
 * bits must be mf_dot_f32's on the target. The combination is in asm so
 * that the compiler cannot turn its four lane sums into one vector add. */
static float finish_tail(float32x4_t lo, float32x4_t hi, const float *a, const float *b,
                         uint32_t k)
{
    float s[8], r;
    vst1q_f32(s, lo);
    vst1q_f32(s + 4, hi);
    for (uint32_t j = 0; j < k; j++) {
        float p, v = s[j];
        __asm__("vmul.f32 %0, %1, %2" : "=t"(p) : "t"(a[j]), "t"(b[j]));
        __asm__("vadd.f32 %0, %0, %1" : "+t"(v) : "t"(p));
        s[j] = v;
    }
    __asm__("vldm %1, {s0-s7}\n\t"
            "vadd.f32 s0, s0, s4\n\t"
            "vadd.f32 s1, s1, s5\n\t"
            "vadd.f32 s2, s2, s6\n\t"
            "vadd.f32 s3, s3, s7\n\t"
            "vadd.f32 s0, s0, s1\n\t"
            "vadd.f32 s2, s2, s3\n\t"
            "vadd.f32 %0, s0, s2"
            : "=t"(r)
            : "r"(s), "m"(*(const float(*)[8])s)
            : "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7");
    return r;
}

/* n8 blocks of 8 values of two rows a, b against x: per block two x loads
 * shared by the rows, four weight loads, four VMUL and four VADD. */
#define MF_F32_ROWS2(la, ha, lb, hb, a, b, xp, n8)                                                 \
    __asm__ volatile("wls lr, %[n], 2f\n"                                                         \
                     "1:\n\t"                                                                     \
                     "vldrw.32 q4, [%[x]], #16\n\t"                                               \
                     "vldrw.32 q6, [%[a]], #16\n\t"                                               \
                     "vldrw.32 q5, [%[x]], #16\n\t"                                               \
                     "vmul.f32 q6, q6, q4\n\t"                                                    \
                     "vldrw.32 q7, [%[a]], #16\n\t"                                               \
                     "vadd.f32 %q[la], %q[la], q6\n\t"                                            \
                     "vmul.f32 q7, q7, q5\n\t"                                                    \
                     "vldrw.32 q6, [%[b]], #16\n\t"                                               \
                     "vadd.f32 %q[ha], %q[ha], q7\n\t"                                            \
                     "vmul.f32 q6, q6, q4\n\t"                                                    \
                     "vldrw.32 q7, [%[b]], #16\n\t"                                               \
                     "vadd.f32 %q[lb], %q[lb], q6\n\t"                                            \
                     "vmul.f32 q7, q7, q5\n\t"                                                    \
                     "vadd.f32 %q[hb], %q[hb], q7\n\t"                                            \
                     "le lr, 1b\n"                                                                \
                     "2:"                                                                         \
                     : [la] "+w"(la), [ha] "+w"(ha), [lb] "+w"(lb), [hb] "+w"(hb), [a] "+r"(a), \
                       [b] "+r"(b), [x] "+r"(xp)                                                  \
                     : [n] "r"(n8)                                                                \
                     : "q4", "q5", "q6", "q7", "lr", "memory")

void mf_matvec_f32_arm(const float *w, const float *x, float *y, uint32_t rows, uint32_t cols)
{
    const uint32_t n8 = cols / 8u, k = cols % 8u;
    uint32_t r = 0;
    for (; r + 2u <= rows; r += 2u) {
        const float *a = w + (size_t)r * cols, *b = a + cols, *xp = x;
        float32x4_t la = vdupq_n_f32(0.0f), ha = la, lb = la, hb = la;
        MF_F32_ROWS2(la, ha, lb, hb, a, b, xp, n8);
        if (k) {
            y[r] = finish_tail(la, ha, a, xp, k);
            y[r + 1] = finish_tail(lb, hb, b, xp, k);
        } else {
            y[r] = comb_f32(la, ha);
            y[r + 1] = comb_f32(lb, hb);
        }
    }
    if (r < rows) {
        const float *a = w + (size_t)r * cols, *xp = x;
        float32x4_t la = vdupq_n_f32(0.0f), ha = la;
        for (uint32_t m = n8; m > 0; m--) {
            la = vaddq_f32(la, vmulq_f32(vld1q_f32(a), vld1q_f32(xp)));
            ha = vaddq_f32(ha, vmulq_f32(vld1q_f32(a + 4), vld1q_f32(xp + 4)));
            a += 8, xp += 8;
        }
        y[r] = k ? finish_tail(la, ha, a, xp, k) : comb_f32(la, ha);
    }
}

/* ---- f16 / bf16 weights times f32 activations (quant.c mf_matvec) ----
 *
 * quant.c's dot_f16_f32 / dot_bf16_f32 keep four sums, s_j over the indices
 * i % 4 == j in increasing i (s_j += w_i * x_i, a multiply then an add),
 * put the tail products into s0 and return (s0 + s1) + (s2 + s3): here the
 * four sums are the lanes of one vector per row. A weight is widened
 * exactly (VLDRH.U32 then VCVTB.F32.F16 for f16, a shift by 16 for bf16);
 * the tail and the combination are scalar VFP, as finish_tail's. Two rows
 * per pass share the loads of x. VCVTB on q1 is written as its encoding:
 * GNU as 2.40 encodes the Q form's registers doubled (cvtb_f32_f16). */
#define MF_F16_ROWS2(WIDEN_A, WIDEN_B)                                                             \
    __asm__ volatile("wls lr, %[n], 2f\n"                                                         \
                     "1:\n\t"                                                                     \
                     "vldrh.u32 q0, [%[a]], #8\n\t"                                               \
                     "vldrh.u32 q1, [%[b]], #8\n\t"                                               \
                     "vldrw.32 q2, [%[x]], #16\n\t" WIDEN_A WIDEN_B                               \
                     "vmul.f32 q0, q0, q2\n\t"                                                    \
                     "vmul.f32 q1, q1, q2\n\t"                                                    \
                     "vadd.f32 %q[sa], %q[sa], q0\n\t"                                            \
                     "vadd.f32 %q[sb], %q[sb], q1\n\t"                                            \
                     "le lr, 1b\n"                                                                \
                     "2:"                                                                         \
                     : [sa] "+w"(sa), [sb] "+w"(sb), [a] "+r"(a), [b] "+r"(b), [x] "+r"(xp)      \
                     : [n] "r"(n4)                                                                \
                     : "q0", "q1", "q2", "lr", "memory")
#define MF_CVTB_Q0 "vcvtb.f32.f16 q0, q0\n\t"
#define MF_CVTB_Q1 ".inst.w 0xfe3f2e03\n\t" /* vcvtb.f32.f16 q1, q1 */
#define MF_BF16_Q0 "vshl.i32 q0, q0, #16\n\t"
#define MF_BF16_Q1 "vshl.i32 q1, q1, #16\n\t"

/* a weight as f32 in scalar VFP: f16 by VCVTB, bf16 by its bits moved up */
/* The k < 4 tail products into lane 0, then (s0 + s1) + (s2 + s3), all in
 * scalar VFP. */
static float finish_half(float32x4_t acc, int bf16, const uint16_t *w, const float *x, uint32_t k)
{
    float s[4], r;
    vst1q_f32(s, acc);
    float v = s[0];
    for (uint32_t j = 0; j < k; j++) {
        float p;
        __asm__("vmul.f32 %0, %1, %2" : "=t"(p) : "t"(half_to_f32(bf16, w[j])), "t"(x[j]));
        __asm__("vadd.f32 %0, %0, %1" : "+t"(v) : "t"(p));
    }
    s[0] = v;
    __asm__("vldm %1, {s0-s3}\n\t"
            "vadd.f32 s0, s0, s1\n\t"
            "vadd.f32 s2, s2, s3\n\t"
            "vadd.f32 %0, s0, s2"
            : "=t"(r)
            : "r"(s), "m"(*(const float(*)[4])s)
            : "s0", "s1", "s2", "s3");
    return r;
}

void mf_matvec_half_arm(int bf16, const uint16_t *w, const float *x, float *y, uint32_t rows,
                        uint32_t cols)
{
    const uint32_t n4 = cols / 4u, k = cols % 4u;
    uint32_t r = 0;
    for (; r + 2u <= rows; r += 2u) {
        const uint16_t *a = w + (size_t)r * cols, *b = a + cols;
        const float *xp = x;
        float32x4_t sa = vdupq_n_f32(0.0f), sb = sa;
        if (bf16)
            MF_F16_ROWS2(MF_BF16_Q0, MF_BF16_Q1);
        else
            MF_F16_ROWS2(MF_CVTB_Q0, MF_CVTB_Q1);
        y[r] = finish_half(sa, bf16, a, xp, k);
        y[r + 1] = finish_half(sb, bf16, b, xp, k);
    }
    if (r < rows) {
        const uint16_t *a = w + (size_t)r * cols;
        const float *xp = x;
        float32x4_t sa = vdupq_n_f32(0.0f);
        for (uint32_t m = n4; m > 0; m--, a += 4, xp += 4) {
            uint32x4_t h = vldrhq_u32(a);
            float32x4_t wv = bf16 ? vreinterpretq_f32_u32(vshlq_n_u32(h, 16)) : cvtb_f32_f16(h);
            sa = vaddq_f32(sa, vmulq_f32(wv, vld1q_f32(xp)));
        }
        y[r] = finish_half(sa, bf16, a, xp, k);
    }
}

/* ---- attention of one query head (ops.c mf_attention_head) ----
 *
 * The same bits as the portable code on this core, which GCC compiles to
 * Helium for its 4-lane vector expressions and to scalar VFP for the rest:
 * every operation here is done by the same kind of instruction as there
 * (MVE flushes subnormals, scalar VFP does not), in the same order. */

/* A K row's score: lo + hi (Helium), then ((0+1)+(2+3)) and the scaling in
 * scalar VFP, as mf_attention_head and mf_dot_f32 do them. */
static inline float score_f32(float32x4_t lo, float32x4_t hi, float scale)
{
    register float32x4_t t __asm__("q1") = vaddq_f32(lo, hi);
    float s;
    __asm__("vadd.f32 s0, s4, s5\n\t"
            "vadd.f32 s1, s6, s7\n\t"
            "vadd.f32 %0, s0, s1\n\t"
            "vmul.f32 %0, %0, %2"
            : "=&t"(s)
            : "w"(t), "t"(scale)
            : "s0", "s1");
    return s;
}

/* Three K rows a, b, c (kv_stride apart) against q per pass, np passes,
 * scores to att. Per half-block of 8 one q load (q6) shared by the rows,
 * each row's product in q7 and added to its lane sums (lo q0/q2/q4: indices
 * i % 8 < 4, hi q1/q3/q5); the first block's products are the lane sums
 * themselves (the portable code adds them to +0: only a product of -0
 * differs, and a score of -0 instead of +0 gives the same softmax). The
 * scores: lo + hi as a vector, then ((0+1)+(2+3)) * scale in scalar VFP,
 * and the three stored at once. adv = 3 rows minus the head_dim floats the
 * loads moved on, in bytes. */
__attribute__((noinline)) static void att_scores3_mve(const float *q, const float *a,
                                                      size_t kv_stride, uint32_t np,
                                                      uint32_t head_dim, float scale, float *att)
{
    const float *b = a + kv_stride, *c = b + kv_stride, *qp;
    const uint32_t adv = (uint32_t)((3u * kv_stride - head_dim) * sizeof(float));
    __asm__ volatile("1:\n\t"
                     "mov %[qp], %[q]\n\t"
                     "vldrw.32 q6, [%[qp]], #16\n\t"
                     "vldrw.32 q0, [%[a]], #16\n\t"
                     "vmul.f32 q0, q0, q6\n\t"
                     "vldrw.32 q2, [%[b]], #16\n\t"
                     "vmul.f32 q2, q2, q6\n\t"
                     "vldrw.32 q4, [%[c]], #16\n\t"
                     "vmul.f32 q4, q4, q6\n\t"
                     "vldrw.32 q6, [%[qp]], #16\n\t"
                     "vldrw.32 q1, [%[a]], #16\n\t"
                     "vmul.f32 q1, q1, q6\n\t"
                     "vldrw.32 q3, [%[b]], #16\n\t"
                     "vmul.f32 q3, q3, q6\n\t"
                     "vldrw.32 q5, [%[c]], #16\n\t"
                     "vmul.f32 q5, q5, q6\n\t"
                     "wls lr, %[n], 3f\n"
                     "2:\n\t"
                     "vldrw.32 q6, [%[qp]], #16\n\t"
                     "vldrw.32 q7, [%[a]], #16\n\t"
                     "vmul.f32 q7, q7, q6\n\t"
                     "vadd.f32 q0, q0, q7\n\t"
                     "vldrw.32 q7, [%[b]], #16\n\t"
                     "vmul.f32 q7, q7, q6\n\t"
                     "vadd.f32 q2, q2, q7\n\t"
                     "vldrw.32 q7, [%[c]], #16\n\t"
                     "vmul.f32 q7, q7, q6\n\t"
                     "vadd.f32 q4, q4, q7\n\t"
                     "vldrw.32 q6, [%[qp]], #16\n\t"
                     "vldrw.32 q7, [%[a]], #16\n\t"
                     "vmul.f32 q7, q7, q6\n\t"
                     "vadd.f32 q1, q1, q7\n\t"
                     "vldrw.32 q7, [%[b]], #16\n\t"
                     "vmul.f32 q7, q7, q6\n\t"
                     "vadd.f32 q3, q3, q7\n\t"
                     "vldrw.32 q7, [%[c]], #16\n\t"
                     "vmul.f32 q7, q7, q6\n\t"
                     "vadd.f32 q5, q5, q7\n\t"
                     "le lr, 2b\n"
                     "3:\n\t"
                     "vadd.f32 q0, q0, q1\n\t"
                     "vadd.f32 q2, q2, q3\n\t"
                     "vadd.f32 q4, q4, q5\n\t"
                     "vmov s31, %[sc]\n\t"
                     "vadd.f32 s0, s0, s1\n\t"
                     "vadd.f32 s1, s2, s3\n\t"
                     "vadd.f32 s0, s0, s1\n\t"
                     "vmul.f32 s0, s0, s31\n\t"
                     "vadd.f32 s1, s8, s9\n\t"
                     "vadd.f32 s2, s10, s11\n\t"
                     "vadd.f32 s1, s1, s2\n\t"
                     "vmul.f32 s1, s1, s31\n\t"
                     "vadd.f32 s2, s16, s17\n\t"
                     "vadd.f32 s3, s18, s19\n\t"
                     "vadd.f32 s2, s2, s3\n\t"
                     "vmul.f32 s2, s2, s31\n\t"
                     "vstmia %[att]!, {s0-s2}\n\t"
                     "add %[a], %[a], %[adv]\n\t"
                     "add %[b], %[b], %[adv]\n\t"
                     "add %[c], %[c], %[adv]\n\t"
                     "subs %[np], %[np], #1\n\t"
                     "bne 1b"
                     : [a] "+r"(a), [b] "+r"(b), [c] "+r"(c), [att] "+r"(att), [np] "+r"(np),
                       [qp] "=&r"(qp)
                     : [q] "r"(q), [n] "r"(head_dim / 8u - 1u), [adv] "r"(adv), [sc] "r"(scale)
                     : "q0", "q1", "q2", "q3", "q4", "q5", "q6", "q7", "lr", "memory", "cc");
}

/* att[t] = (q . k_t) * scale: three positions per pass, then the last one
 * or two. */
static void att_scores_mve(const float *q, const float *k, size_t kv_stride, uint32_t n_pos,
                           uint32_t head_dim, float scale, float *att)
{
    const uint32_t n8 = head_dim / 8u;
    uint32_t t = n_pos / 3u * 3u;
    if (t) att_scores3_mve(q, k, kv_stride, n_pos / 3u, head_dim, scale, att);
    if (t + 2u <= n_pos) {
        const float *a = k + t * kv_stride, *b = a + kv_stride, *xp = q;
        float32x4_t la = vdupq_n_f32(0.0f), ha = la, lb = la, hb = la;
        MF_F32_ROWS2(la, ha, lb, hb, a, b, xp, n8);
        att[t] = score_f32(la, ha, scale);
        att[t + 1] = score_f32(lb, hb, scale);
        t += 2u;
    }
    if (t < n_pos) {
        const float *a = k + t * kv_stride, *xp = q;
        float32x4_t la = vdupq_n_f32(0.0f), ha = la;
        for (uint32_t m = n8; m > 0; m--) {
            la = vaddq_f32(la, vmulq_f32(vld1q_f32(a), vld1q_f32(xp)));
            ha = vaddq_f32(ha, vmulq_f32(vld1q_f32(a + 4), vld1q_f32(xp + 4)));
            a += 8, xp += 8;
        }
        att[t] = score_f32(la, ha, scale);
    }
}

/* ops.c's mf_expf constants */
#define EXP_LOG2E 1.44269502f
#define EXP_SHIFT 0x1.8p23f
#define EXP_LN2_HI 0.693145751953125f
#define EXP_LN2_LO 1.42860677e-06f

static inline uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* x[0, 4 n4) = mf_expf(x - mx), four at a time, the steps of ops.c's
 * exp4_le0 (d = x - mx <= 0; |d| clamped to 104 on its bits, then the same
 * float operations in the same order), with every constant in a register;
 * chk += d as mf_softmax sums them (a NaN d shows there). */
__attribute__((noinline)) static float32x4_t exp_block_mve(float *x, uint32_t n4, float mx, float32x4_t chk)
{
    float32x4_t d, t, k, p;
    const int32x4_t lim = vdupq_n_s32(0x42D00000); /* 104.0f */
    const float32x4_t one = vdupq_n_f32(1.0f), half = vdupq_n_f32(0.5f);
    register uint32_t cnt __asm__("lr") = n4;
    __asm__ volatile("dls lr, lr\n"
                     "1:\n\t"
                     "vldrw.32 %q[d], [%[x]]\n\t"
                     "vsub.f32 %q[d], %q[d], %[mx]\n\t"
                     "vadd.f32 %q[chk], %q[chk], %q[d]\n\t"
                     "vbic.i32 %q[d], #0x80000000\n\t"
                     "vmin.s32 %q[d], %q[d], %q[lim]\n\t"
                     "vorr.i32 %q[d], #0x80000000\n\t"
                     "vmul.f32 %q[t], %q[d], %[l2e]\n\t"
                     "vadd.f32 %q[t], %q[t], %[sh]\n\t"
                     "vsub.f32 %q[k], %q[t], %[sh]\n\t"
                     "vmul.f32 %q[p], %q[k], %[hi]\n\t"
                     "vsub.f32 %q[d], %q[d], %q[p]\n\t"
                     "vmul.f32 %q[p], %q[k], %[lo]\n\t"
                     "vsub.f32 %q[d], %q[d], %q[p]\n\t"
                     "vmul.f32 %q[k], %q[d], %[c7]\n\t"
                     "vadd.f32 %q[k], %q[k], %[c6]\n\t"
                     "vmul.f32 %q[k], %q[k], %q[d]\n\t"
                     "vadd.f32 %q[k], %q[k], %[c5]\n\t"
                     "vmul.f32 %q[k], %q[k], %q[d]\n\t"
                     "vadd.f32 %q[k], %q[k], %[c4]\n\t"
                     "vmul.f32 %q[k], %q[k], %q[d]\n\t"
                     "vadd.f32 %q[k], %q[k], %[c3]\n\t"
                     "vmul.f32 %q[k], %q[k], %q[d]\n\t"
                     "vadd.f32 %q[k], %q[k], %q[half]\n\t"
                     "vmul.f32 %q[p], %q[d], %q[d]\n\t"
                     "vmul.f32 %q[p], %q[p], %q[k]\n\t"
                     "vadd.f32 %q[d], %q[d], %q[p]\n\t"
                     "vadd.f32 %q[d], %q[d], %q[one]\n\t"
                     "vadd.i32 %q[t], %q[t], %[e191]\n\t"
                     "vshl.i32 %q[t], %q[t], #23\n\t"
                     "vmul.f32 %q[d], %q[d], %q[t]\n\t"
                     "vmul.f32 %q[d], %q[d], %[m64]\n\t"
                     "vstrw.32 %q[d], [%[x]], #16\n\t"
                     "le lr, 1b"
                     : [chk] "+w"(chk), [d] "=&w"(d), [t] "=&w"(t), [k] "=&w"(k), [p] "=&w"(p),
                       [x] "+r"(x), "+r"(cnt)
                     : [lim] "w"(lim), [one] "w"(one), [half] "w"(half), [mx] "r"(f32_bits(mx)),
                       [l2e] "r"(f32_bits(EXP_LOG2E)), [sh] "r"(f32_bits(EXP_SHIFT)),
                       [hi] "r"(f32_bits(EXP_LN2_HI)), [lo] "r"(f32_bits(EXP_LN2_LO)),
                       [c7] "r"(f32_bits(1.0f / 5040.0f)), [c6] "r"(f32_bits(1.0f / 720.0f)),
                       [c5] "r"(f32_bits(1.0f / 120.0f)), [c4] "r"(f32_bits(1.0f / 24.0f)),
                       [c3] "r"(f32_bits(1.0f / 6.0f)), [e191] "r"(191u),
                       [m64] "r"(f32_bits(0x1p-64f))
                     : "memory");
    return chk;
}

/* ops.c's mf_softmax: the same max, exps, sum in double in index order,
 * and scaling, by the same kinds of instruction. */
void mf_softmax_arm(float *x, uint32_t n)
{
    if (n == 0) return;
    const uint32_t n4 = n / 4u, n8 = n / 8u;
    float mx = x[0];
    uint32_t i = 4u * n4;
    if (n4) {
        /* per lane "if (v > m) m = v" as mf_softmax's loop (a NaN never
         * wins, a NaN x[0] stays), then the lanes and the tail alike */
        float32x4_t m = vdupq_n_f32(mx), v;
        const float *p = x;
        __asm__("wls lr, %[n], 2f\n"
                "1:\n\t"
                "vldrw.32 %q[v], [%[p]], #16\n\t"
                "vcmp.f32 gt, %q[v], %q[m]\n\t"
                "vpsel %q[m], %q[v], %q[m]\n\t"
                "le lr, 1b\n"
                "2:"
                : [m] "+w"(m), [v] "=&w"(v), [p] "+r"(p)
                : [n] "r"(n4), "m"(*(const float(*)[n])x)
                : "lr");
        float l[4];
        vst1q_f32(l, m);
        mx = l[0];
        for (uint32_t j = 1; j < 4u; j++)
            if (l[j] > mx) mx = l[j];
    }
    for (uint32_t j = i; j < n; j++)
        if (x[j] > mx) mx = x[j];
    int nan = 0;
    if (n4) {
        float c[4];
        vst1q_f32(c, exp_block_mve(x, n4, mx, vdupq_n_f32(0.0f)));
        nan = c[0] != c[0] || c[1] != c[1] || c[2] != c[2] || c[3] != c[3];
    }
    for (; i < n; i++) x[i] = mf_expf(x[i] - mx);
    double sum = 0.0;
    const float *p = x;
    __asm__("wls lr, %[n], 2f\n"
            "1:\n\t"
            "vldmia %[p]!, {s0-s7}\n\t"
            "vcvt.f64.f32 d4, s0\n\t"
            "vadd.f64 %P[s], %P[s], d4\n\t"
            "vcvt.f64.f32 d4, s1\n\t"
            "vadd.f64 %P[s], %P[s], d4\n\t"
            "vcvt.f64.f32 d4, s2\n\t"
            "vadd.f64 %P[s], %P[s], d4\n\t"
            "vcvt.f64.f32 d4, s3\n\t"
            "vadd.f64 %P[s], %P[s], d4\n\t"
            "vcvt.f64.f32 d4, s4\n\t"
            "vadd.f64 %P[s], %P[s], d4\n\t"
            "vcvt.f64.f32 d4, s5\n\t"
            "vadd.f64 %P[s], %P[s], d4\n\t"
            "vcvt.f64.f32 d4, s6\n\t"
            "vadd.f64 %P[s], %P[s], d4\n\t"
            "vcvt.f64.f32 d4, s7\n\t"
            "vadd.f64 %P[s], %P[s], d4\n\t"
            "le lr, 1b\n"
            "2:"
            : [s] "+w"(sum), [p] "+r"(p)
            : [n] "r"(n8), "m"(*(const float(*)[n])x)
            : "q0", "q1", "q2", "lr");
    for (i = 8u * n8; i < n; i++) sum += x[i];
    float inv = nan ? NAN : (float)(1.0 / sum);
    for (i = 0; i + 4u <= n; i += 4u) vst1q_f32(x + i, vmulq_n_f32(vld1q_f32(x + i), inv));
    for (; i < n; i++) x[i] *= inv;
}

/* out[i0, i0 + 16) = sum_t att[t] v_t[i] in increasing t from +0, each
 * step a VMUL by the scalar att[t] then a VADD (as the portable vectors);
 * two positions per iteration (one LDRD of their weights). */
#define MF_ATT_V16(A)                                                                               \
    "vldrw.32 q4, [%[v]]\n\t"                                                                     \
    "vldrw.32 q5, [%[v], #16]\n\t"                                                                \
    "vmul.f32 q4, q4, " A "\n\t"                                                                  \
    "vldrw.32 q6, [%[v], #32]\n\t"                                                                \
    "vadd.f32 %q[o0], %q[o0], q4\n\t"                                                             \
    "vmul.f32 q5, q5, " A "\n\t"                                                                  \
    "vldrw.32 q7, [%[v], #48]\n\t"                                                                \
    "vadd.f32 %q[o1], %q[o1], q5\n\t"                                                             \
    "vmul.f32 q6, q6, " A "\n\t"                                                                  \
    "add %[v], %[v], %[sb]\n\t"                                                                   \
    "vadd.f32 %q[o2], %q[o2], q6\n\t"                                                             \
    "vmul.f32 q7, q7, " A "\n\t"                                                                  \
    "vadd.f32 %q[o3], %q[o3], q7\n\t"

__attribute__((noinline)) static void att_values16_mve(float *out, const float *v,
                                                       size_t kv_stride, uint32_t n_pos,
                                                       const float *att)
{
    float32x4_t o0 = vdupq_n_f32(0.0f), o1 = o0, o2 = o0, o3 = o0;
    const uint32_t sb = (uint32_t)(kv_stride * sizeof(float));
    uint32_t a0, a1;
    __asm__ volatile("wls lr, %[n], 2f\n"
                     "1:\n\t"
                     "ldrd %[a0], %[a1], [%[att]], #8\n\t"
                     MF_ATT_V16("%[a0]")
                     MF_ATT_V16("%[a1]")
                     "le lr, 1b\n"
                     "2:"
                     : [o0] "+w"(o0), [o1] "+w"(o1), [o2] "+w"(o2), [o3] "+w"(o3),
                       [v] "+r"(v), [att] "+r"(att), [a0] "=&r"(a0), [a1] "=&r"(a1)
                     : [n] "r"(n_pos / 2u), [sb] "r"(sb)
                     : "q4", "q5", "q6", "q7", "lr", "memory");
    if (n_pos & 1u) {
        o0 = vaddq_f32(o0, vmulq_n_f32(vld1q_f32(v), *att));
        o1 = vaddq_f32(o1, vmulq_n_f32(vld1q_f32(v + 4), *att));
        o2 = vaddq_f32(o2, vmulq_n_f32(vld1q_f32(v + 8), *att));
        o3 = vaddq_f32(o3, vmulq_n_f32(vld1q_f32(v + 12), *att));
    }
    vst1q_f32(out, o0);
    vst1q_f32(out + 4, o1);
    vst1q_f32(out + 8, o2);
    vst1q_f32(out + 12, o3);
}
#undef MF_ATT_V16

static void att_values8_mve(float *out, const float *v, size_t kv_stride, uint32_t n_pos,
                            const float *att)
{
    float32x4_t o0 = vdupq_n_f32(0.0f), o1 = o0;
    for (uint32_t t = 0; t < n_pos; t++, v += kv_stride) {
        o0 = vaddq_f32(o0, vmulq_n_f32(vld1q_f32(v), att[t]));
        o1 = vaddq_f32(o1, vmulq_n_f32(vld1q_f32(v + 4), att[t]));
    }
    vst1q_f32(out, o0);
    vst1q_f32(out + 4, o1);
}

void mf_attention_head_arm(float *out, const float *q, const float *k, const float *v,
                           size_t kv_stride, uint32_t n_pos, uint32_t head_dim, float scale,
                           float *att)
{
    att_scores_mve(q, k, kv_stride, n_pos, head_dim, scale, att);
    mf_softmax_arm(att, n_pos);
    uint32_t i = 0;
    for (; i + 16u <= head_dim; i += 16u) att_values16_mve(out + i, v + i, kv_stride, n_pos, att);
    if (i < head_dim) att_values8_mve(out + i, v + i, kv_stride, n_pos, att);
}

/* ---- attention over a q8, f16 or bf16 KV cache (ops.c mf_attention_head_kv) ----
 *
 * The portable code widens each row into an f32 scratch row, then runs
 * mf_dot_f32 on it (Helium products and sums, the lanes combined in scalar
 * VFP) and its vector AV loop (Helium). Here the values are widened in
 * registers and used at once: q8 by VLDRB.S32, VCVT (exact for int8) and a
 * VMUL by the row's scale (the one rounding of (float)int8 * scale; a
 * product of an int8 and an f16 scale is never subnormal, so Helium's
 * flushing cannot differ from the portable code's widening), f16 by
 * VLDRH.U32 and VCVTB (exact), bf16 by VLDRH.U32 and a shift by 16 (the
 * bits of mf_bf16_to_f32); the AV pass of f16/bf16 widens 8 values per
 * VLDRH.U16 into even and odd lanes (VCVTB/VCVTT, VSHLLB/VSHLLT), which an
 * element-wise sum allows. Everything after the widening is the portable
 * code's operations in its order, on the same kinds of instruction. */

/* VCVTB.F32.F16 q7, q7 as its encoding: binutils 2.40 encodes the
 * register numbers of the Q form twice over (q1 becomes q2, q4 an
 * undefined instruction), and so does vcvtbq_f32_f16. */
static inline float32x4_t cvtb_f16_q7(uint32x4_t h)
{
    register uint32x4_t r __asm__("q7") = h;
    __asm__(".inst.w 0xfe3fee0f" : "+w"(r));
    return vreinterpretq_f32_u32(r);
}

/* four values of a row from element p on, widened to f32 */
static inline __attribute__((always_inline)) float32x4_t kv_ld4(int enc, const void *p, float sc)
{
    if (enc == MF_ENC_Q8) return vmulq_n_f32(vcvtq_f32_s32(vldrbq_s32((const int8_t *)p)), sc);
    uint32x4_t h = vldrhq_u32((const uint16_t *)p);
    if (enc == MF_ENC_F16) return cvtb_f16_q7(h);
    return vreinterpretq_f32_u32(vshlq_n_u32(h, 16));
}

/* The f16 scales s[0], s[ss], ..., s[(n - 1) ss] as f32 into dst, four per
 * pass by a VLDRH.U32 gather and VCVTB (exact, as f16_vfp). */
static void kv_scales(float *dst, const uint16_t *s, uint32_t ss, uint32_t n)
{
    const uint32x4_t off = vmulq_n_u32(vidupq_n_u32(0u, 1), ss);
    uint32_t i = 0;
    for (; i + 4u <= n; i += 4u, s += 4u * ss)
        vst1q_f32(dst + i, cvtb_f16_q7(vldrhq_gather_shifted_offset_u32(s, off)));
    for (; i < n; i++, s += ss) dst[i] = f16_vfp(*s);
}

/* Four values of row P widened into q7, P moved on past them: q8 by
 * VLDRB.S32, VCVT and a VMUL by the row's scale S, f16 by VLDRH.U32 and
 * VCVTB.F32.F16 q7, q7 (by its encoding, see cvtb_f16_q7), bf16 by
 * VLDRH.U32 and a shift. */
#define KVW_Q8(P, S)                                                                               \
    "vldrb.s32 q7, [%[" #P "]], #4\n\t"                                                            \
    "vcvt.f32.s32 q7, q7\n\t"                                                                      \
    "vmul.f32 q7, q7, %[" #S "]\n\t"
#define KVW_F16(P, S) "vldrh.u32 q7, [%[" #P "]], #8\n\t.inst.w 0xfe3fee0f\n\t"
#define KVW_BF16(P, S) "vldrh.u32 q7, [%[" #P "]], #8\n\tvshl.i32 q7, q7, #16\n\t"

/* att_scores3_mve over widened rows: three K rows a, b = a + rb, c = b +
 * rb (rb bytes apart) against q per pass, np passes, scores to att. Per
 * half-block of 8 one q load (q6) shared by the three rows, each row
 * widened in q7 (W), the product q * row as mf_dot_f32's, added to its lane
 * sums (lo q0/q2/q4, hi q1/q3/q5; the first block's products are the lane
 * sums themselves, as in att_scores3_mve). LDSC loads the rows' scales
 * (q8: from att[0..2], which the pass then overwrites with the scores). adv
 * = 3 rows minus the bytes the loads moved on. */
#define KV_S3_HALF(W, A, B, C, OP)                                                                 \
    "vldrw.32 q6, [%[qp]], #16\n\t"                                                                \
    W(a, sa) OP(A) W(b, sb) OP(B) W(c, sc) OP(C)
#define KV_S3_SET(R) "vmul.f32 " R ", q6, q7\n\t"
#define KV_S3_ADD(R) "vmul.f32 q7, q6, q7\n\tvadd.f32 " R ", " R ", q7\n\t"
#define KV_SCORES3(NAME, W, LDSC)                                                                  \
    __attribute__((noinline)) static void NAME(const float *q, const uint8_t *a, size_t rb,       \
                                               uint32_t adv, uint32_t np, uint32_t head_dim,      \
                                               float scale, float *att)                           \
    {                                                                                              \
        const uint8_t *b = a + rb, *c = b + rb;                                                    \
        const float *qp;                                                                           \
        uint32_t sa, sb, sc;                                                                       \
        __asm__ volatile("1:\n\t" LDSC "mov %[qp], %[q]\n\t"                                       \
                         KV_S3_HALF(W, "q0", "q2", "q4", KV_S3_SET)                                \
                         KV_S3_HALF(W, "q1", "q3", "q5", KV_S3_SET)                                \
                         "wls lr, %[n], 3f\n"                                                      \
                         "2:\n\t"                                                                  \
                         KV_S3_HALF(W, "q0", "q2", "q4", KV_S3_ADD)                                \
                         KV_S3_HALF(W, "q1", "q3", "q5", KV_S3_ADD)                                \
                         "le lr, 2b\n"                                                             \
                         "3:\n\t"                                                                  \
                         "vadd.f32 q0, q0, q1\n\t"                                                 \
                         "vadd.f32 q2, q2, q3\n\t"                                                 \
                         "vadd.f32 q4, q4, q5\n\t"                                                 \
                         "vldr s31, %[scale]\n\t"                                                  \
                         "vadd.f32 s0, s0, s1\n\t"                                                 \
                         "vadd.f32 s1, s2, s3\n\t"                                                 \
                         "vadd.f32 s0, s0, s1\n\t"                                                 \
                         "vmul.f32 s0, s0, s31\n\t"                                                \
                         "vadd.f32 s1, s8, s9\n\t"                                                 \
                         "vadd.f32 s2, s10, s11\n\t"                                               \
                         "vadd.f32 s1, s1, s2\n\t"                                                 \
                         "vmul.f32 s1, s1, s31\n\t"                                                \
                         "vadd.f32 s2, s16, s17\n\t"                                               \
                         "vadd.f32 s3, s18, s19\n\t"                                               \
                         "vadd.f32 s2, s2, s3\n\t"                                                 \
                         "vmul.f32 s2, s2, s31\n\t"                                                \
                         "vstmia %[att]!, {s0-s2}\n\t"                                             \
                         "ldr %[sa], %[adv]\n\t"                                                   \
                         "add %[a], %[a], %[sa]\n\t"                                               \
                         "add %[b], %[b], %[sa]\n\t"                                               \
                         "add %[c], %[c], %[sa]\n\t"                                               \
                         "subs %[np], %[np], #1\n\t"                                               \
                         "bne 1b"                                                                  \
                         : [a] "+l"(a), [b] "+l"(b), [c] "+l"(c), [att] "+r"(att), [np] "+r"(np), \
                           [qp] "=&r"(qp), [sa] "=&r"(sa), [sb] "=&r"(sb), [sc] "=&r"(sc)         \
                         : [q] "r"(q), [n] "r"(head_dim / 8u - 1u), [adv] "m"(adv),               \
                           [scale] "Uv"(scale)                                                     \
                         : "q0", "q1", "q2", "q3", "q4", "q5", "q6", "q7", "lr", "memory", "cc"); \
    }
KV_SCORES3(att_kv_scores3_q8, KVW_Q8, "ldrd %[sa], %[sb], [%[att]]\n\tldr %[sc], [%[att], #8]\n\t")
KV_SCORES3(att_kv_scores3_f16, KVW_F16, "")
KV_SCORES3(att_kv_scores3_bf16, KVW_BF16, "")
#undef KV_SCORES3
#undef KV_S3_ADD
#undef KV_S3_SET
#undef KV_S3_HALF
#undef KVW_BF16
#undef KVW_F16
#undef KVW_Q8

/* o[0, 16) += att[t] * (q8 row t's values at v times vs[t]) for n positions
 * in increasing t, rows rb bytes apart: each step a VMUL by the weight and
 * a VADD, as the portable vector AV loop; two positions per iteration (one
 * LDRD of their weights, one of their scales). o is out[0, 16), loaded and
 * stored (the caller runs the positions in chunks). */
#define KV_AV16_Q8(A, S)                                                                           \
    "vldrb.s32 q4, [%[v]]\n\t"                                                                     \
    "vldrb.s32 q5, [%[v], #4]\n\t"                                                                 \
    "vcvt.f32.s32 q4, q4\n\t"                                                                      \
    "vldrb.s32 q6, [%[v], #8]\n\t"                                                                 \
    "vcvt.f32.s32 q5, q5\n\t"                                                                      \
    "vldrb.s32 q7, [%[v], #12]\n\t"                                                                \
    "vmul.f32 q4, q4, " S "\n\t"                                                                   \
    "vcvt.f32.s32 q6, q6\n\t"                                                                      \
    "vmul.f32 q5, q5, " S "\n\t"                                                                   \
    "vcvt.f32.s32 q7, q7\n\t"                                                                      \
    "vmul.f32 q4, q4, " A "\n\t"                                                                   \
    "vmul.f32 q6, q6, " S "\n\t"                                                                   \
    "vadd.f32 %q[o0], %q[o0], q4\n\t"                                                              \
    "vmul.f32 q5, q5, " A "\n\t"                                                                   \
    "vmul.f32 q7, q7, " S "\n\t"                                                                   \
    "vadd.f32 %q[o1], %q[o1], q5\n\t"                                                              \
    "vmul.f32 q6, q6, " A "\n\t"                                                                   \
    "add %[v], %[v], %[rb]\n\t"                                                                    \
    "vadd.f32 %q[o2], %q[o2], q6\n\t"                                                              \
    "vmul.f32 q7, q7, " A "\n\t"                                                                   \
    "vadd.f32 %q[o3], %q[o3], q7\n\t"

__attribute__((noinline)) static void att_kv_v16_q8(float *out, const uint8_t *v, size_t rb,
                                                    uint32_t n, const float *att, const float *vs)
{
    float32x4_t o0 = vld1q_f32(out), o1 = vld1q_f32(out + 4), o2 = vld1q_f32(out + 8),
                o3 = vld1q_f32(out + 12);
    uint32_t a0, a1, s0, s1;
    __asm__ volatile("lsrs %[a0], %[n], #1\n\t"
                     "wls lr, %[a0], 2f\n"
                     "1:\n\t"
                     "ldrd %[a0], %[a1], [%[att]], #8\n\t"
                     "ldrd %[s0], %[s1], [%[vs]], #8\n\t"
                     KV_AV16_Q8("%[a0]", "%[s0]")
                     KV_AV16_Q8("%[a1]", "%[s1]")
                     "le lr, 1b\n"
                     "2:\n\t"
                     "lsls %[a0], %[n], #31\n\t"
                     "beq 3f\n\t"
                     "ldr %[a0], [%[att]]\n\t"
                     "ldr %[s0], [%[vs]]\n\t"
                     KV_AV16_Q8("%[a0]", "%[s0]")
                     "3:"
                     : [o0] "+w"(o0), [o1] "+w"(o1), [o2] "+w"(o2), [o3] "+w"(o3), [v] "+l"(v),
                       [att] "+r"(att), [vs] "+r"(vs), [a0] "=&r"(a0), [a1] "=&r"(a1),
                       [s0] "=&r"(s0), [s1] "=&r"(s1)
                     : [n] "r"(n), [rb] "r"(rb)
                     : "q4", "q5", "q6", "q7", "lr", "memory", "cc");
    vst1q_f32(out, o0);
    vst1q_f32(out + 4, o1);
    vst1q_f32(out + 8, o2);
    vst1q_f32(out + 12, o3);
}
#undef KV_AV16_Q8

/* out[0, 16) = sum over n positions of att[t] * (f16 or bf16 row t's values
 * at v), in increasing t from +0, rows rb bytes apart; each step a VMUL by
 * the weight and a VADD, as the portable vector AV loop. A VLDRH.U16 of 8
 * values widens into the even-indexed ones (B: VCVTB, or VSHLLB by 16 for
 * bf16) and the odd-indexed ones (T): o0/o1 hold out[0, 8)'s even/odd
 * elements, o2/o3 out[8, 16)'s, stored interleaved (VST2). The
 * conversions go from q4/q7 to q5/q6, never in place. */
#define KV_AV16_H(A, B54, T64, B57, T67)                                                           \
    "vldrh.u16 q4, [%[v]]\n\t"                                                                     \
    "vldrh.u16 q7, [%[v], #16]\n\t"                                                                \
    B54 T64                                                                                        \
    "add %[v], %[v], %[rb]\n\t"                                                                    \
    "vmul.f32 q5, q5, " A "\n\t"                                                                   \
    "vmul.f32 q6, q6, " A "\n\t"                                                                   \
    "vadd.f32 %q[o0], %q[o0], q5\n\t"                                                              \
    B57                                                                                            \
    "vadd.f32 %q[o1], %q[o1], q6\n\t"                                                              \
    T67                                                                                            \
    "vmul.f32 q5, q5, " A "\n\t"                                                                   \
    "vmul.f32 q6, q6, " A "\n\t"                                                                   \
    "vadd.f32 %q[o2], %q[o2], q5\n\t"                                                              \
    "vadd.f32 %q[o3], %q[o3], q6\n\t"
/* VCVTB/VCVTT.F32.F16 by encoding (see cvtb_f16_q7): Qd in bits 15:13, T
 * in bit 12, Qm in bits 3:1 */
#define KV_AV16_F16(A)                                                                             \
    KV_AV16_H(A, ".inst.w 0xfe3fae09\n\t" /* vcvtb.f32.f16 q5, q4 */,                              \
              ".inst.w 0xfe3fde09\n\t" /* vcvtt.f32.f16 q6, q4 */,                                 \
              ".inst.w 0xfe3fae0f\n\t" /* vcvtb.f32.f16 q5, q7 */,                                 \
              ".inst.w 0xfe3fde0f\n\t" /* vcvtt.f32.f16 q6, q7 */)
#define KV_AV16_BF16(A)                                                                            \
    KV_AV16_H(A, "vshllb.u16 q5, q4, #16\n\t", "vshllt.u16 q6, q4, #16\n\t",                       \
              "vshllb.u16 q5, q7, #16\n\t", "vshllt.u16 q6, q7, #16\n\t")
#define KV_V16_H(NAME, AV)                                                                         \
    __attribute__((noinline)) static void NAME(float *out, const uint8_t *v, size_t rb,           \
                                               uint32_t n, const float *att)                      \
    {                                                                                              \
        float32x4_t o0 = vdupq_n_f32(0.0f), o1 = o0, o2 = o0, o3 = o0;                             \
        uint32_t a0, a1;                                                                           \
        __asm__ volatile("lsrs %[a0], %[n], #1\n\t"                                                \
                         "wls lr, %[a0], 2f\n"                                                     \
                         "1:\n\t"                                                                  \
                         "ldrd %[a0], %[a1], [%[att]], #8\n\t"                                     \
                         AV("%[a0]") AV("%[a1]")                                                   \
                         "le lr, 1b\n"                                                             \
                         "2:\n\t"                                                                  \
                         "lsls %[a0], %[n], #31\n\t"                                               \
                         "beq 3f\n\t"                                                              \
                         "ldr %[a0], [%[att]]\n\t"                                                 \
                         AV("%[a0]")                                                               \
                         "3:"                                                                      \
                         : [o0] "+w"(o0), [o1] "+w"(o1), [o2] "+w"(o2), [o3] "+w"(o3),             \
                           [v] "+r"(v), [att] "+r"(att), [a0] "=&r"(a0), [a1] "=&r"(a1)            \
                         : [n] "r"(n), [rb] "r"(rb)                                                \
                         : "q4", "q5", "q6", "q7", "lr", "memory", "cc");                          \
        float32x4x2_t lo = {{o0, o1}}, hi = {{o2, o3}};                                            \
        vst2q_f32(out, lo);                                                                        \
        vst2q_f32(out + 8, hi);                                                                    \
    }
KV_V16_H(att_kv_v16_f16, KV_AV16_F16)
KV_V16_H(att_kv_v16_bf16, KV_AV16_BF16)
#undef KV_V16_H
#undef KV_AV16_BF16
#undef KV_AV16_F16
#undef KV_AV16_H

/* positions per chunk of q8 V scales widened on the stack */
#define KV_CHUNK 128u

static inline __attribute__((always_inline)) void
att_kv_body(int enc, float *out, const float *q, const void *k, const void *v,
            const uint16_t *k_scale, const uint16_t *v_scale, size_t kv_stride, uint32_t n_pos,
            uint32_t head_dim, float scale, float *att)
{
    const size_t el = enc == MF_ENC_Q8 ? 1u : 2u; /* bytes per value */
    const size_t rb = kv_stride * el;
    const uint32_t ss = (uint32_t)(kv_stride / head_dim), n3 = n_pos / 3u;
    const uint8_t *kr = (const uint8_t *)k, *vr = (const uint8_t *)v;
    /* q8: the K rows' scales in att, each read before its score is stored */
    if (enc == MF_ENC_Q8) kv_scales(att, k_scale, ss, n_pos);
    if (n3) {
        const uint32_t adv = (uint32_t)(3u * rb - head_dim * el);
        if (enc == MF_ENC_Q8) att_kv_scores3_q8(q, kr, rb, adv, n3, head_dim, scale, att);
        else if (enc == MF_ENC_F16) att_kv_scores3_f16(q, kr, rb, adv, n3, head_dim, scale, att);
        else att_kv_scores3_bf16(q, kr, rb, adv, n3, head_dim, scale, att);
    }
    for (uint32_t t = 3u * n3; t < n_pos; t++) { /* the last one or two */
        float sc = enc == MF_ENC_Q8 ? att[t] : 0.0f;
        float32x4_t lo = vdupq_n_f32(0.0f), hi = lo;
        const float *qp = q;
        const uint8_t *p = kr + t * rb;
        for (uint32_t i = 0; i < head_dim; i += 8, qp += 8, p += 8u * el) {
            lo = vaddq_f32(lo, vmulq_f32(vld1q_f32(qp), kv_ld4(enc, p, sc)));
            hi = vaddq_f32(hi, vmulq_f32(vld1q_f32(qp + 4), kv_ld4(enc, p + 4u * el, sc)));
        }
        att[t] = score_f32(lo, hi, scale);
    }
    mf_softmax_arm(att, n_pos);
    const uint32_t h16 = head_dim & ~15u;
    if (enc != MF_ENC_Q8) {
        for (uint32_t i0 = 0; i0 < h16; i0 += 16u) {
            if (enc == MF_ENC_F16) att_kv_v16_f16(out + i0, vr + i0 * el, rb, n_pos, att);
            else att_kv_v16_bf16(out + i0, vr + i0 * el, rb, n_pos, att);
        }
        if (h16 < head_dim) {
            float32x4_t o0 = vdupq_n_f32(0.0f), o1 = o0;
            const uint8_t *p = vr + h16 * el;
            for (uint32_t t = 0; t < n_pos; t++, p += rb) {
                o0 = vaddq_f32(o0, vmulq_n_f32(kv_ld4(enc, p, 0.0f), att[t]));
                o1 = vaddq_f32(o1, vmulq_n_f32(kv_ld4(enc, p + 4u * el, 0.0f), att[t]));
            }
            vst1q_f32(out + h16, o0);
            vst1q_f32(out + h16 + 4, o1);
        }
        return;
    }
    /* q8: the V scales widened a chunk at a time, out accumulated over the
     * chunks from +0 (the portable code's memset) in increasing t */
    float vs[KV_CHUNK];
    memset(out, 0, sizeof(float) * head_dim);
    for (uint32_t t0 = 0; t0 < n_pos; t0 += KV_CHUNK) {
        const uint32_t n = n_pos - t0 < KV_CHUNK ? n_pos - t0 : KV_CHUNK;
        const uint8_t *vt = vr + t0 * rb;
        kv_scales(vs, v_scale + t0 * ss, ss, n);
        for (uint32_t i0 = 0; i0 < h16; i0 += 16u)
            att_kv_v16_q8(out + i0, vt + i0, rb, n, att + t0, vs);
        if (h16 < head_dim) {
            float32x4_t o0 = vld1q_f32(out + h16), o1 = vld1q_f32(out + h16 + 4);
            const uint8_t *p = vt + h16;
            for (uint32_t t = 0; t < n; t++, p += rb) {
                o0 = vaddq_f32(o0, vmulq_n_f32(kv_ld4(enc, p, vs[t]), att[t0 + t]));
                o1 = vaddq_f32(o1, vmulq_n_f32(kv_ld4(enc, p + 4, vs[t]), att[t0 + t]));
            }
            vst1q_f32(out + h16, o0);
            vst1q_f32(out + h16 + 4, o1);
        }
    }
}
#undef KV_CHUNK

__attribute__((noinline)) static void att_kv_q8(float *out, const float *q, const void *k,
                                                const void *v, const uint16_t *ks,
                                                const uint16_t *vs, size_t kv_stride,
                                                uint32_t n_pos, uint32_t head_dim, float scale,
                                                float *att)
{
    att_kv_body(MF_ENC_Q8, out, q, k, v, ks, vs, kv_stride, n_pos, head_dim, scale, att);
}

__attribute__((noinline)) static void att_kv_f16(float *out, const float *q, const void *k,
                                                 const void *v, size_t kv_stride, uint32_t n_pos,
                                                 uint32_t head_dim, float scale, float *att)
{
    att_kv_body(MF_ENC_F16, out, q, k, v, NULL, NULL, kv_stride, n_pos, head_dim, scale, att);
}

__attribute__((noinline)) static void att_kv_bf16(float *out, const float *q, const void *k,
                                                  const void *v, size_t kv_stride, uint32_t n_pos,
                                                  uint32_t head_dim, float scale, float *att)
{
    att_kv_body(MF_ENC_BF16, out, q, k, v, NULL, NULL, kv_stride, n_pos, head_dim, scale, att);
}

void mf_attention_head_kv_arm(float *out, const float *q, int enc, const void *k, const void *v,
                              const uint16_t *k_scale, const uint16_t *v_scale, size_t kv_stride,
                              uint32_t n_pos, uint32_t head_dim, float scale, float *att)
{
    if (enc == MF_ENC_Q8)
        att_kv_q8(out, q, k, v, k_scale, v_scale, kv_stride, n_pos, head_dim, scale, att);
    else if (enc == MF_ENC_F16)
        att_kv_f16(out, q, k, v, kv_stride, n_pos, head_dim, scale, att);
    else
        att_kv_bf16(out, q, k, v, kv_stride, n_pos, head_dim, scale, att);
}

/* ---- SwiGLU (ops.c mf_silu_mul) ---- */

/* e = mf_expf(x) for |x| <= 87 in every lane, by its operations in its
 * order (no fused multiply-adds: the build is ISO C, contraction off).
 * Helium flushes subnormals, which here can only be an x (then x log2e
 * and r round the same: 1 + r is 1 either way) or r * r (far below half
 * an ulp of r, which it is added to). */
static inline float32x4_t exp4_small(float32x4_t x)
{
    float32x4_t t = vaddq_n_f32(vmulq_n_f32(x, EXP_LOG2E), EXP_SHIFT);
    float32x4_t kf = vsubq_n_f32(t, EXP_SHIFT);
    float32x4_t r = vsubq_f32(vsubq_f32(x, vmulq_n_f32(kf, EXP_LN2_HI)), vmulq_n_f32(kf, EXP_LN2_LO));
    float32x4_t q = vaddq_n_f32(vmulq_n_f32(r, 1.0f / 5040.0f), 1.0f / 720.0f);
    q = vaddq_n_f32(vmulq_f32(q, r), 1.0f / 120.0f);
    q = vaddq_n_f32(vmulq_f32(q, r), 1.0f / 24.0f);
    q = vaddq_n_f32(vmulq_f32(q, r), 1.0f / 6.0f);
    q = vaddq_n_f32(vmulq_f32(q, r), 0.5f);
    float32x4_t y = vaddq_n_f32(vaddq_f32(r, vmulq_f32(vmulq_f32(r, r), q)), 1.0f);
    uint32x4_t sc = vshlq_n_u32(vaddq_n_u32(vreinterpretq_u32_f32(t), 127u), 23);
    return vmulq_f32(y, vreinterpretq_f32_u32(sc));
}

void mf_silu_mul_arm(float *g, const float *u, size_t n)
{
    size_t i = 0;
    for (; i + 4u <= n; i += 4u) {
        float32x4_t x = vnegq_f32(vld1q_f32(g + i));
        /* all four |x| <= 87 (a NaN fails the compare) */
        if (vcmpleq_n_f32(vabsq_f32(x), 87.0f) != 0xffff) {
            for (size_t j = i; j < i + 4u; j++) g[j] = mf_silu(g[j]) * u[j];
            continue;
        }
        float den[4];
        vst1q_f32(den, vaddq_n_f32(exp4_small(x), 1.0f));
        g[i] = g[i] / den[0] * u[i];
        g[i + 1] = g[i + 1] / den[1] * u[i + 1];
        g[i + 2] = g[i + 2] / den[2] * u[i + 2];
        g[i + 3] = g[i + 3] / den[3] * u[i + 3];
    }
    for (; i < n; i++) g[i] = mf_silu(g[i]) * u[i];
}

/* ---- int8 activations for the quantised matvecs (quant.c) ---- */

int mf_quantize_activations_arm(const float *x, uint32_t cols, uint32_t group, void *xq)
{
    int8_t *q = (int8_t *)xq;
    float *d = (float *)(void *)((uint8_t *)xq + ((cols + 3u) & ~3u));
    int32_t *s = (int32_t *)(void *)(d + cols / group);
    const uint32x4_t zero = vdupq_n_u32(0u);
    uint32_t g = 0;
    for (uint32_t c = 0; c < cols; c += group, g++) {
        const float *xg = x + c;
        /* |x| on the bits; a NaN (above +inf's bits) counts as 0, as the
         * portable `a > amax` skips it */
        uint32x4_t mx = zero;
        for (uint32_t i = 0; i < group; i += 4u) {
            uint32x4_t a = vandq_u32(vld1q_u32((const uint32_t *)(const void *)(xg + i)),
                                     vdupq_n_u32(0x7fffffffu));
            a = vpselq_u32(zero, a, vcmphiq_n_u32(a, 0x7f800000u));
            mx = vmaxq_u32(mx, a);
        }
        uint32_t bits = vmaxvq_u32(0u, mx);
        float amax, inv;
        memcpy(&amax, &bits, sizeof amax);
        if (amax > 0.0f && amax < 0x1p-100f) return -1;
        d[g] = amax / 127.0f;
        inv = amax > 0.0f ? 127.0f / amax : 0.0f;
        /* quant.c's round_int(v, -127, 127): +-(int)(|v| + 0.5f), capped
         * at 127 in magnitude, -127 for NaN */
        int32_t sum = 0;
        for (uint32_t i = 0; i < group; i += 4u) {
            float32x4_t v = vmulq_n_f32(vld1q_f32(xg + i), inv);
            int32x4_t t = vcvtq_s32_f32(vaddq_n_f32(vabsq_f32(v), 0.5f));
            t = vminq_s32(t, vdupq_n_s32(127));
            t = vpselq_s32(vnegq_s32(t), t, vcmpltq_n_f32(v, 0.0f));
            t = vpselq_s32(t, vdupq_n_s32(-127), vcmpeqq_f32(v, v));
            vstrbq_s32(q + c + i, t);
            sum = vaddvaq_s32(sum, t);
        }
        s[g] = sum;
    }
    return 0; /* cols % 4 == 0: no padding bytes after q */
}
#endif

#if defined(MF_ARM_KERNEL_MVE)
/* CRC-32 by folding with carry-less multiplies. Helium has no 32- or 64-bit
 * polynomial multiply, only 16 x 16 -> 32 (VMULLB/VMULLT.P16), so each of
 * the four lanes keeps a 48-bit remainder of its own stream (lane c takes
 * words 4i + c, which one 16-byte load gives) as three 16-bit pieces s0, s1
 * (the lane of `lo`) and s2 (the top half of `hi`). Reflected, as the CRC
 * register is: bit k of a lane is the coefficient of x^(47 - k), so a lane
 * is congruent to x^16 times its stream. A step multiplies the remainder by
 * x^128 modulo P: s_j times the 32-bit constant K_j = x^(159 - 16 j) mod P
 * (the -1 because a product of reflected operands comes out one degree up),
 * split into halves so every product is 16 x 16:
 * lo' = s0 K0lo ^ s1 K1lo ^ s2 K2lo ^ (hi' << 16) ^ next word and
 * hi' = s0 K0hi ^ s1 K1hi ^ s2 K2hi. Fifteen instructions per 16 bytes
 * with the LE, where the tables of image.c take 13 per 4. */
static void crc32_fold(const uint8_t *p, size_t blocks, uint32_t first, uint32_t lo_out[4],
                       uint32_t hi_out[4])
{
    /* K0 = 0xae689191, K1 = 0x9d0fe176, K2 = 0x9ba54c6f: bottom halves of
     * the lanes for VMULLB, top halves for VMULLT (unused halves 0). */
    static const uint16_t k_lo[8] = {0x9191, 0xe176, 0x9191, 0xe176, 0x9191, 0xe176, 0x9191, 0xe176};
    static const uint16_t k_hi[8] = {0xae68, 0x9d0f, 0xae68, 0x9d0f, 0xae68, 0x9d0f, 0xae68, 0x9d0f};
    static const uint16_t k2_lo[8] = {0, 0x4c6f, 0, 0x4c6f, 0, 0x4c6f, 0, 0x4c6f};
    static const uint16_t k2_hi[8] = {0, 0x9ba5, 0, 0x9ba5, 0, 0x9ba5, 0, 0x9ba5};
    const uint16x8_t klo = vld1q_u16(k_lo), khi = vld1q_u16(k_hi);
    const uint16x8_t k2lo = vld1q_u16(k2_lo), k2hi = vld1q_u16(k2_hi);
    uint32x4_t lo = vreinterpretq_u32_u8(vld1q_u8(p));
    uint32x4_t hi = vdupq_n_u32(0);
    lo = vsetq_lane_u32(vgetq_lane_u32(lo, 0) ^ first, lo, 0);
    if (blocks > 1) {
        /* eight Q registers: the four constants, lo, hi and two for the
         * products (GCC's allocation spilled a constant: 17 + LE) */
        uint32x4_t t, u;
        const uint8_t *q = p + 16;
        __asm__ volatile("dls lr, %[n]\n\t"
                         "1:\n\t"
                         "vmullb.p16 %q[t], %q[lo], %q[klo]\n\t" /* s0 K0lo */
                         "vmullt.p16 %q[u], %q[lo], %q[klo]\n\t" /* s1 K1lo */
                         "veor %q[t], %q[t], %q[u]\n\t"
                         "vmullt.p16 %q[u], %q[hi], %q[k2lo]\n\t" /* s2 K2lo */
                         "veor %q[t], %q[t], %q[u]\n\t"
                         "vmullb.p16 %q[u], %q[lo], %q[khi]\n\t" /* s0 K0hi */
                         "vmullt.p16 %q[lo], %q[lo], %q[khi]\n\t" /* s1 K1hi */
                         "veor %q[u], %q[u], %q[lo]\n\t"
                         "vmullt.p16 %q[lo], %q[hi], %q[k2hi]\n\t" /* s2 K2hi */
                         "veor %q[hi], %q[u], %q[lo]\n\t"
                         "vldrb.u8 %q[u], [%[q]], #16\n\t"
                         "vshl.i32 %q[lo], %q[hi], #16\n\t"
                         "veor %q[lo], %q[lo], %q[t]\n\t"
                         "veor %q[lo], %q[lo], %q[u]\n\t"
                         "le lr, 1b"
                         : [lo] "+w"(lo), [hi] "+w"(hi), [t] "=&w"(t), [u] "=&w"(u), [q] "+r"(q)
                         : [n] "r"(blocks - 1), [klo] "w"(klo), [khi] "w"(khi), [k2lo] "w"(k2lo),
                           [k2hi] "w"(k2hi)
                         : "lr", "memory");
    }
    vst1q_u32(lo_out, lo);
    vst1q_u32(hi_out, hi);
}

/* The register times x^4 modulo P, per entry of its low nibble: 64 bytes
 * instead of image.c's 4 KiB of tables, for the few steps after the fold. */
static const uint32_t crc_nibble[16] = {
    0x00000000, 0x1db71064, 0x3b6e20c8, 0x26d930ac, 0x76dc4190, 0x6b6b51f4, 0x4db26158, 0x5005713c,
    0xedb88320, 0xf00f9344, 0xd6d6a3e8, 0xcb61b38c, 0x9b64c2b0, 0x86d3d2d4, 0xa00ae278, 0xbdbdf21c,
};

static uint32_t crc_shift_bytes(uint32_t crc, unsigned nb)
{
    for (nb *= 2; nb; nb--) crc = crc_nibble[crc & 15u] ^ (crc >> 4);
    return crc;
}

/* The four lanes joined: lane c's words sit 32 (3 - c) bits before the end
 * of the blocks and the lane holds x^16 times its stream, so the register
 * is sum_c lane_c x^(112 - 32 c), in Horner's order four bytes apart. */
uint32_t mf_crc32_arm(uint32_t crc, const void *data, size_t n)
{
    const uint8_t *p = data;
    crc = ~crc;
    if (n >= 16) {
        size_t blocks = n / 16;
        uint32_t lo[4], hi[4], acc = 0;
        crc32_fold(p, blocks, crc, lo, hi);
        for (unsigned c = 0; c < 4; c++)
            acc = crc_shift_bytes(acc, 4) ^ crc_shift_bytes(lo[c], 2) ^ (hi[c] & 0xFFFF0000u);
        crc = crc_shift_bytes(acc, 2);
        p += blocks * 16;
        n -= blocks * 16;
    }
    while (n--) crc = crc_shift_bytes(crc ^ *p++, 1);
    return ~crc;
}
#endif

#if defined(MF_ARM_KERNEL_DSP) && defined(MF_ARM_KERNEL_HALF)
/* f16 / bf16 weights on cores with an FPU and no Helium (M4F, M7, M33):
 * quant.c's dot_f16_f32 / dot_bf16_f32 (four lane sums, a tail into the
 * first, (s0 + s1) + (s2 + s3)) in the same order, four rows per pass so
 * that each x value is loaded once for all four. What it saves is the
 * widening: an f16 pair by one VMOV and VCVTB / VCVTT (exact; a signalling
 * NaN comes out quiet, which no product of it can tell) where the portable
 * code makes a call of about a dozen instructions per weight; a bf16 pair
 * by a shift and a mask from one word load. */
static inline __attribute__((always_inline)) void half2(int bf16, uint32_t w, float *lo, float *hi)
{
    if (bf16) {
        uint32_t a = w << 16, b = w & 0xFFFF0000u;
        memcpy(lo, &a, sizeof a);
        memcpy(hi, &b, sizeof b);
        return;
    }
    float a, b;
    __asm__("vmov %1, %2\n\t"
            "vcvtb.f32.f16 %0, %1\n\t"
            "vcvtt.f32.f16 %1, %1"
            : "=&t"(a), "=&t"(b)
            : "r"(w));
    *lo = a;
    *hi = b;
}

/* The four lanes of w . x for four columns (8 bytes of w at p). */
#define HALF_STEP4(bf16, p, x0, x1, x2, x3, s0, s1, s2, s3) \
    do {                                                      \
        float w0_, w1_, w2_, w3_;                             \
        half2(bf16, ld32(p), &w0_, &w1_);                     \
        half2(bf16, ld32((p) + 4), &w2_, &w3_);               \
        s0 += w0_ * x0;                                       \
        s1 += w1_ * x1;                                       \
        s2 += w2_ * x2;                                       \
        s3 += w3_ * x3;                                       \
    } while (0)

/* nr rows (1, 2 or 4; a constant after inlining, so the sums stay in
 * registers) from w, rb bytes apart: each x value is loaded once for all. */
static inline __attribute__((always_inline)) void half_block(int bf16, uint32_t nr, const uint8_t *w,
                                                             size_t rb, const float *x, float *y,
                                                             uint32_t cols)
{
    float s[4][4] = {{0.0f}};
    uint32_t i = 0;
    for (; i + 4u <= cols; i += 4u, w += 8) {
        float x0 = x[i], x1 = x[i + 1u], x2 = x[i + 2u], x3 = x[i + 3u];
        _Pragma("GCC unroll 4") for (uint32_t k = 0; k < nr; k++)
            HALF_STEP4(bf16, w + k * rb, x0, x1, x2, x3, s[k][0], s[k][1], s[k][2], s[k][3]);
    }
    for (; i < cols; i++, w += 2)
        _Pragma("GCC unroll 4") for (uint32_t k = 0; k < nr; k++) s[k][0] += half_to_f32(bf16, ld16(w + k * rb)) * x[i];
    _Pragma("GCC unroll 4") for (uint32_t k = 0; k < nr; k++) y[k] = (s[k][0] + s[k][1]) + (s[k][2] + s[k][3]);
}

static inline __attribute__((always_inline)) void half_rows(int bf16, const uint8_t *w, size_t rb,
                                                            const float *x, float *y,
                                                            uint32_t rows, uint32_t cols)
{
    uint32_t r = 0;
    for (; r + 4u <= rows; r += 4u, w += 4u * rb) half_block(bf16, 4, w, rb, x, y + r, cols);
    if (r + 2u <= rows) half_block(bf16, 2, w, rb, x, y + r, cols), r += 2u, w += 2u * rb;
    if (r < rows) half_block(bf16, 1, w, rb, x, y + r, cols);
}
#undef HALF_STEP4

void mf_matvec_half_arm(int bf16, const uint16_t *w, const float *x, float *y, uint32_t rows,
                        uint32_t cols)
{
    size_t rb = 2u * (size_t)cols;
    if (bf16)
        half_rows(1, (const uint8_t *)w, rb, x, y, rows, cols);
    else
        half_rows(0, (const uint8_t *)w, rb, x, y, rows, cols);
}
#endif

#if defined(MF_ARM_KERNEL_DSP) && defined(MF_ARM_KERNEL_HALF)
/*
 * Attention over a q8, f16 or bf16 KV cache on DSP cores with a scalar FPU
 * (Cortex-M4/M7/M33). The portable code widens each K and V row into a
 * scratch row and runs mf_dot_f32 and the weighted sum over it: about 1400
 * instructions per position and query head on the M33 for head_dim 32.
 * Here each value is widened in a register where it is used: the score's
 * eight lanes, then eight outputs at a time over every position, in named
 * variables. Every value, product and sum is the portable code's in its
 * order (q8: the int8 as float times the row's f16 scale, one rounding;
 * f16 by VCVTB, bf16 by its bits moved up: both exact), so the bits are
 * its bits.
 */
static inline __attribute__((always_inline)) float kv_at(int enc, const void *c, size_t off,
                                                         float sc)
{
    if (enc == MF_ENC_Q8) return (float)((const int8_t *)c)[off] * sc;
    return half_to_f32(enc == MF_ENC_BF16, ((const uint16_t *)c)[off]);
}

static inline __attribute__((always_inline)) float kv_row_scale(int enc, const uint16_t *scales,
                                                                size_t off, uint32_t head_dim)
{
    return enc == MF_ENC_Q8 ? f16_vfp(scales[off / head_dim]) : 0.0f;
}

static inline __attribute__((always_inline)) void
head_kv_fpu(int enc, float *out, const float *q, const void *k, const void *v,
            const uint16_t *k_scale, const uint16_t *v_scale, size_t kv_stride, uint32_t n_pos,
            uint32_t head_dim, float scale, float *att)
{
    for (uint32_t t = 0; t < n_pos; t++) {
        size_t off = (size_t)t * kv_stride;
        float sc = kv_row_scale(enc, k_scale, off, head_dim);
        float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f, s4 = 0.0f, s5 = 0.0f, s6 = 0.0f, s7 = 0.0f;
        for (uint32_t i = 0; i < head_dim; i += 8, off += 8) {
            s0 += q[i] * kv_at(enc, k, off, sc);
            s1 += q[i + 1] * kv_at(enc, k, off + 1, sc);
            s2 += q[i + 2] * kv_at(enc, k, off + 2, sc);
            s3 += q[i + 3] * kv_at(enc, k, off + 3, sc);
            s4 += q[i + 4] * kv_at(enc, k, off + 4, sc);
            s5 += q[i + 5] * kv_at(enc, k, off + 5, sc);
            s6 += q[i + 6] * kv_at(enc, k, off + 6, sc);
            s7 += q[i + 7] * kv_at(enc, k, off + 7, sc);
        }
        att[t] = (((s0 + s4) + (s1 + s5)) + ((s2 + s6) + (s3 + s7))) * scale;
    }
    mf_softmax(att, n_pos);
    for (uint32_t i0 = 0; i0 < head_dim; i0 += 8) {
        float o0 = 0.0f, o1 = 0.0f, o2 = 0.0f, o3 = 0.0f, o4 = 0.0f, o5 = 0.0f, o6 = 0.0f, o7 = 0.0f;
        size_t off = i0;
        for (uint32_t t = 0; t < n_pos; t++, off += kv_stride) {
            float a = att[t];
            float sc = kv_row_scale(enc, v_scale, off - i0, head_dim);
            o0 += a * kv_at(enc, v, off, sc);
            o1 += a * kv_at(enc, v, off + 1, sc);
            o2 += a * kv_at(enc, v, off + 2, sc);
            o3 += a * kv_at(enc, v, off + 3, sc);
            o4 += a * kv_at(enc, v, off + 4, sc);
            o5 += a * kv_at(enc, v, off + 5, sc);
            o6 += a * kv_at(enc, v, off + 6, sc);
            o7 += a * kv_at(enc, v, off + 7, sc);
        }
        out[i0] = o0, out[i0 + 1] = o1, out[i0 + 2] = o2, out[i0 + 3] = o3;
        out[i0 + 4] = o4, out[i0 + 5] = o5, out[i0 + 6] = o6, out[i0 + 7] = o7;
    }
}

void mf_attention_head_kv_arm(float *out, const float *q, int enc, const void *k, const void *v,
                              const uint16_t *k_scale, const uint16_t *v_scale, size_t kv_stride,
                              uint32_t n_pos, uint32_t head_dim, float scale, float *att)
{
    if (enc == MF_ENC_Q8)
        head_kv_fpu(MF_ENC_Q8, out, q, k, v, k_scale, v_scale, kv_stride, n_pos, head_dim, scale, att);
    else if (enc == MF_ENC_BF16)
        head_kv_fpu(MF_ENC_BF16, out, q, k, v, k_scale, v_scale, kv_stride, n_pos, head_dim, scale,
                    att);
    else
        head_kv_fpu(MF_ENC_F16, out, q, k, v, k_scale, v_scale, kv_stride, n_pos, head_dim, scale,
                    att);
}
#endif

#else
typedef int mf_kernels_arm_unused; /* nothing to compile on this target */
#endif
