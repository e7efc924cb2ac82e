/* Numeric steps of the forward pass (see ops.h). */
#include "ops.h"

#include <math.h>
#include <string.h>

#include "quant.h"
#if defined(MF_HAVE_ARM_KERNELS)
#include "kernels_arm.h"
#endif

/* GCC/Clang vector extension: 4-float lanes (see the dot products below for
 * why they give the same bits as plain C). Not on 32-bit Arm cores without
 * NEON or Helium (Cortex-M3/M4/M7/M33): there GCC takes the vectors apart
 * lane by lane through the stack (10.8 instructions per f32 multiply-add on
 * the M33, bench/results/mps2-an505/), and the scalar code below, with the
 * lanes in named variables, gives the same bits in fewer instructions. */
#if defined(__arm__) && !defined(__ARM_NEON) && !defined(__ARM_FEATURE_MVE)
#define MF_SCALAR_FPU 1
#endif
#if defined(__GNUC__) && !defined(MF_NO_VECTOR_EXT) && !defined(MF_SCALAR_FPU)
typedef float v4f __attribute__((vector_size(16)));
static inline v4f ld4(const float *p)
{
    v4f v;
    memcpy(&v, p, sizeof v);
    return v;
}
#define MF_VEC 1
#endif

void mf_rmsnorm(float *out, const float *x, const float *w, uint32_t n, float eps)
{
    double ss = 0.0;
    for (uint32_t i = 0; i < n; i++) ss += (double)x[i] * x[i];
    float r = (float)(1.0 / sqrt(ss / n + (double)eps));
    for (uint32_t i = 0; i < n; i++) out[i] = (w ? w[i] : 1.0f) * (x[i] * r);
}

/*
 * exp in float arithmetic only, the same bits on every target (libm expf
 * differs between glibc and newlib, and newlib's goes through double, which
 * is software on cores without a double FPU). x = k ln2 + r with |r| <=
 * ln2/2: k = x log2e rounded to nearest by adding 1.5 * 2^23 (whose float
 * then holds k in its low mantissa bits), k ln2_hi is exact (ln2_hi has 16
 * significant bits, |k| <= 150), so r carries only the rounding of
 * k ln2_lo. e^r by its Taylor series to r^7 (truncation < 4e-9 relative),
 * summed as 1 + (r + r^2 q(r)) so the big terms are added last. Then times
 * 2^(k+64) (exact) and 2^-64, so that a subnormal result is rounded once
 * (2^(k-64) and 2^64 for k > 63). Max error 1.02 ulp (every float of
 * [-110, 90] against double exp; tests/test_ops.c sweeps a part of them).
 * The softmax runs the same steps four lanes at a time (exp4_le0).
 */
#define EXP_LOG2E 1.44269502f
#define EXP_SHIFT 0x1.8p23f
#define EXP_LN2_HI 0.693145751953125f
#define EXP_LN2_LO 1.42860677e-06f

static inline float exp_poly(float r)
{
    float q = 1.0f / 5040.0f;
    q = q * r + 1.0f / 720.0f;
    q = q * r + 1.0f / 120.0f;
    q = q * r + 1.0f / 24.0f;
    q = q * r + 1.0f / 6.0f;
    q = q * r + 0.5f;
    return 1.0f + (r + (r * r) * q);
}

static inline uint32_t f2u(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline float u2f(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

float mf_expf(float x)
{
    float t = x * EXP_LOG2E + EXP_SHIFT;
    float kf = t - EXP_SHIFT;
    float r = (x - kf * EXP_LN2_HI) - kf * EXP_LN2_LO;
    float y = exp_poly(r);
    /* t's bits are 0x4B400000 + k: shifted left by 23, only k + c remains.
     * |x| <= 87: |k| <= 126, the result is normal and one scaling exact
     * (the same bits as the two below, which only differ when rounding) */
    if (fabsf(x) <= 87.0f) return y * u2f((f2u(t) + 127u) << 23);
    if (x > 88.8f) return x * 0x1p127f * 0x1p127f; /* +inf (above ln FLT_MAX) */
    if (x < -104.0f) return 0.0f;                 /* e^-104 < 2^-150: rounds to 0; -inf */
    if (x != x) return x + x;
    if (kf > 63.0f) return y * u2f((f2u(t) + 63u) << 23) * 0x1p64f;
    return y * u2f((f2u(t) + 191u) << 23) * 0x1p-64f;
}

#ifdef MF_VEC
typedef uint32_t v4u __attribute__((vector_size(16)));
typedef int32_t v4i __attribute__((vector_size(16)));

/* mf_expf of four d <= 0 (not NaN), lane by lane the same operations: no
 * comparisons (GCC scalarises vector compares on Helium); -|d| is clamped
 * to -104 on its bits (an integer min), where the steps give 0 as
 * mf_expf does below -104. */
static inline v4f exp4_le0(v4f d)
{
    const v4i lim = {0x42D00000, 0x42D00000, 0x42D00000, 0x42D00000}; /* 104.0f */
    v4i m = (v4i)d & 0x7fffffff;
    v4i e = m - lim;
    m = lim + (e & (e >> 31));
    v4f x = (v4f)((v4u)m | 0x80000000u);
    v4f t = x * EXP_LOG2E + EXP_SHIFT;
    v4f kf = t - EXP_SHIFT;
    v4f r = (x - kf * EXP_LN2_HI) - kf * EXP_LN2_LO;
    v4f q = r * (1.0f / 5040.0f) + 1.0f / 720.0f;
    q = q * r + 1.0f / 120.0f;
    q = q * r + 1.0f / 24.0f;
    q = q * r + 1.0f / 6.0f;
    q = q * r + 0.5f;
    v4f y = 1.0f + (r + (r * r) * q);
    return y * (v4f)(((v4u)t + 191u) << 23) * 0x1p-64f;
}
#endif

#if defined(MF_HAVE_ARM_KERNELS) && defined(MF_ARM_KERNEL_F32)
/* Helium, the same bits (router, predictor and non-f32 KV attention use it
 * too); the portable code below is then named mf_softmax_portable (the
 * firmware test compares the two), and the name stays on for the rest of
 * this file so that the portable attentions are portable throughout. */
void mf_softmax(float *x, uint32_t n) { mf_softmax_arm(x, n); }
#define mf_softmax mf_softmax_portable
#endif

void mf_softmax(float *x, uint32_t n)
{
    if (n == 0) return;
    float mx = x[0];
    for (uint32_t i = 1; i < n; i++)
        if (x[i] > mx) mx = x[i];
    uint32_t i = 0;
    int nan = 0;
#ifdef MF_VEC
    /* d = x - mx <= 0 unless NaN (a NaN x, or inf - inf): the lanes' sum
     * tells, and then every output is NaN as mf_expf would make it. */
    v4f mxv = {mx, mx, mx, mx}, chk = {0, 0, 0, 0};
    for (; i + 4 <= n; i += 4) {
        v4f d = ld4(x + i) - mxv;
        chk += d;
        v4f e = exp4_le0(d);
        memcpy(x + i, &e, sizeof e);
    }
    float c[4];
    memcpy(c, &chk, sizeof c);
    nan = c[0] != c[0] || c[1] != c[1] || c[2] != c[2] || c[3] != c[3];
#endif
    for (; i < n; i++) x[i] = mf_expf(x[i] - mx);
    double sum = 0.0;
    for (i = 0; i < n; i++) sum += x[i];
    float inv = nan ? NAN : (float)(1.0 / sum);
    i = 0;
#ifdef MF_VEC
    v4f iv = {inv, inv, inv, inv};
    for (; i + 4 <= n; i += 4) {
        v4f e = ld4(x + i) * iv;
        memcpy(x + i, &e, sizeof e);
    }
#endif
    for (; i < n; i++) x[i] *= inv;
}

float mf_silu(float x) { return x / (1.0f + mf_expf(-x)); }

#if defined(MF_HAVE_ARM_KERNELS) && defined(MF_ARM_KERNEL_F32)
/* Helium, the same bits; the portable loop is mf_silu_mul_portable (the
 * firmware test compares the two). */
void mf_silu_mul(float *g, const float *u, size_t n) { mf_silu_mul_arm(g, u, n); }
#define mf_silu_mul mf_silu_mul_portable
#endif

void mf_silu_mul(float *g, const float *u, size_t n)
{
    for (size_t i = 0; i < n; i++) g[i] = mf_silu(g[i]) * u[i];
}
float mf_sigmoid(float x) { return 1.0f / (1.0f + mf_expf(-x)); }

/* inv_freq in float32 as transformers computes it, the angle in double. */
void mf_rope_inv_freq(float *inv, uint32_t head_dim, float theta)
{
    for (uint32_t i = 0; i < head_dim / 2; i++)
        inv[i] = (float)(1.0 / pow((double)theta, (double)(2 * i) / (double)head_dim));
}

void mf_rope_angles(float *cosv, float *sinv, uint32_t pos, uint32_t half, const float *inv)
{
    for (uint32_t i = 0; i < half; i++) {
        double a = (double)pos * (double)inv[i];
        cosv[i] = (float)cos(a);
        sinv[i] = (float)sin(a);
    }
}

void mf_rope_table(float *cosv, float *sinv, uint32_t pos, uint32_t head_dim, float theta)
{
    for (uint32_t i = 0; i < head_dim / 2; i++) {
        float inv = (float)(1.0 / pow((double)theta, (double)(2 * i) / (double)head_dim));
        mf_rope_angles(cosv + i, sinv + i, pos, 1, &inv);
    }
}

void mf_rope_apply(float *x, uint32_t n_heads, uint32_t head_dim, const float *cosv,
                   const float *sinv)
{
    uint32_t half = head_dim / 2;
    for (uint32_t h = 0; h < n_heads; h++) {
        float *v = x + (size_t)h * head_dim;
        for (uint32_t i = 0; i < half; i++) {
            float a = v[i], b = v[i + half];
            v[i] = a * cosv[i] - b * sinv[i];
            v[i + half] = b * cosv[i] + a * sinv[i];
        }
    }
}

/*
 * Dot products keep eight partial sums: lane j accumulates the products at
 * indices i with i % 8 == j, in increasing i; the lanes are then combined as
 * ((s0+s4)+(s1+s5))+((s2+s6)+(s3+s7)). With GCC/Clang the lanes are two
 * 4-float vectors (the same IEEE operations lane by lane: ISO C mode keeps
 * -ffp-contract=off, so no fused multiply-adds), else plain arrays. Either
 * way every dot product has this one order, whatever kernel computes it.
 */

/* Tail (n % 8 values from i) into the lanes, then the fixed combination. */
static inline float finish8(float s[8], const float *a, const float *b, uint32_t i, uint32_t n)
{
    for (uint32_t j = 0; i + j < n; j++) s[j] += a[i + j] * b[i + j];
    return ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
}

float mf_dot_f32(const float *a, const float *b, uint32_t n)
{
    float s[8];
    uint32_t i = 0;
#ifdef MF_VEC
    v4f lo = {0, 0, 0, 0}, hi = {0, 0, 0, 0};
    for (; i + 8 <= n; i += 8) {
        lo += ld4(a + i) * ld4(b + i);
        hi += ld4(a + i + 4) * ld4(b + i + 4);
    }
    if (i == n) { /* no tail: finish8's combination in the lanes, no stack */
        lo += hi;
        return (lo[0] + lo[1]) + (lo[2] + lo[3]);
    }
    memcpy(s, &lo, sizeof lo);
    memcpy(s + 4, &hi, sizeof hi);
#else
    /* the lanes in registers: an array would live on the stack */
    float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f, s4 = 0.0f, s5 = 0.0f, s6 = 0.0f, s7 = 0.0f;
    for (; i + 8 <= n; i += 8) {
        const float *ai = a + i, *bi = b + i;
        s0 += ai[0] * bi[0];
        s1 += ai[1] * bi[1];
        s2 += ai[2] * bi[2];
        s3 += ai[3] * bi[3];
        s4 += ai[4] * bi[4];
        s5 += ai[5] * bi[5];
        s6 += ai[6] * bi[6];
        s7 += ai[7] * bi[7];
    }
    if (i == n) return ((s0 + s4) + (s1 + s5)) + ((s2 + s6) + (s3 + s7));
    s[0] = s0, s[1] = s1, s[2] = s2, s[3] = s3, s[4] = s4, s[5] = s5, s[6] = s6, s[7] = s7;
#endif
    return finish8(s, a, b, i, n);
}

/* One row against four tokens: the row is loaded once for all four, and each
 * sum follows exactly the order of mf_dot_f32. */
static void dot4_f32(const float *w, const float *x0, const float *x1, const float *x2,
                     const float *x3, uint32_t n, float *out)
{
#ifdef MF_VEC
    v4f a0 = {0, 0, 0, 0}, b0 = a0, a1 = a0, b1 = a0, a2 = a0, b2 = a0, a3 = a0, b3 = a0;
    uint32_t i = 0;
    for (; i + 8 <= n; i += 8) {
        v4f wl = ld4(w + i), wh = ld4(w + i + 4);
        a0 += wl * ld4(x0 + i);
        b0 += wh * ld4(x0 + i + 4);
        a1 += wl * ld4(x1 + i);
        b1 += wh * ld4(x1 + i + 4);
        a2 += wl * ld4(x2 + i);
        b2 += wh * ld4(x2 + i + 4);
        a3 += wl * ld4(x3 + i);
        b3 += wh * ld4(x3 + i + 4);
    }
    float s[8];
    memcpy(s, &a0, 16), memcpy(s + 4, &b0, 16), out[0] = finish8(s, w, x0, i, n);
    memcpy(s, &a1, 16), memcpy(s + 4, &b1, 16), out[1] = finish8(s, w, x1, i, n);
    memcpy(s, &a2, 16), memcpy(s + 4, &b2, 16), out[2] = finish8(s, w, x2, i, n);
    memcpy(s, &a3, 16), memcpy(s + 4, &b3, 16), out[3] = finish8(s, w, x3, i, n);
#else
    out[0] = mf_dot_f32(w, x0, n);
    out[1] = mf_dot_f32(w, x1, n);
    out[2] = mf_dot_f32(w, x2, n);
    out[3] = mf_dot_f32(w, x3, n);
#endif
}

void mf_matmul_ex(int enc, const void *w, uint32_t rows, uint32_t cols, uint32_t group,
                  const float *x, size_t x_stride, float *y, size_t y_stride, uint32_t n_tok,
                  void *qa)
{
    if (qa && enc >= MF_ENC_Q8 && enc < MF_ENC_COUNT) {
        for (uint32_t t = 0; t < n_tok; t++) {
            mf_quantize_activations(x + t * x_stride, cols, group, qa);
            mf_matvec_qa(enc, w, qa, y + t * y_stride, rows, cols, group);
        }
        return;
    }
    mf_matmul(enc, w, rows, cols, group, x, x_stride, y, y_stride, n_tok);
}

void mf_matmul_shared(int enc, uint32_t cols, uint32_t group, const float *x, size_t x_stride,
                      uint32_t n_tok, void *qa, const mf_matmul_job *jobs, uint32_t n_jobs)
{
    if (qa && enc >= MF_ENC_Q8 && enc < MF_ENC_COUNT) {
        for (uint32_t t = 0; t < n_tok; t++) {
            mf_quantize_activations(x + t * x_stride, cols, group, qa);
            for (uint32_t j = 0; j < n_jobs; j++)
                mf_matvec_qa(enc, jobs[j].w, qa, jobs[j].y + t * jobs[j].y_stride, jobs[j].rows,
                             cols, group);
        }
        return;
    }
    for (uint32_t j = 0; j < n_jobs; j++)
        mf_matmul(enc, jobs[j].w, jobs[j].rows, cols, group, x, x_stride, jobs[j].y,
                  jobs[j].y_stride, n_tok);
}

void mf_matmul(int enc, const void *w, uint32_t rows, uint32_t cols, uint32_t group,
               const float *x, size_t x_stride, float *y, size_t y_stride, uint32_t n_tok)
{
    if (enc != MF_ENC_F32) {
        for (uint32_t t = 0; t < n_tok; t++)
            mf_matvec(enc, w, x + t * x_stride, y + t * y_stride, rows, cols, group);
        return;
    }
    const float *wf = (const float *)w; /* arena and slots keep f32 rows 4-byte aligned */
    /* Blocks of rows so that the block stays in L1 while all tokens pass. */
    const uint32_t rb = cols ? (uint32_t)(8192u / cols) + 1u : 1u;
    for (uint32_t r0 = 0; r0 < rows; r0 += rb) {
        uint32_t r1 = r0 + rb < rows ? r0 + rb : rows;
        uint32_t t = 0;
        for (; t + 4 <= n_tok; t += 4) {
            const float *x0 = x + t * x_stride;
            for (uint32_t r = r0; r < r1; r++) {
                float o[4];
                dot4_f32(wf + (size_t)r * cols, x0, x0 + x_stride, x0 + 2 * x_stride,
                         x0 + 3 * x_stride, cols, o);
                for (uint32_t j = 0; j < 4; j++) y[(t + j) * y_stride + r] = o[j];
            }
        }
        for (; t < n_tok; t++) {
#if defined(MF_HAVE_ARM_KERNELS) && defined(MF_ARM_KERNEL_F32)
            /* Helium, two rows per pass; the same bits as mf_dot_f32 */
            mf_matvec_f32_arm(wf + (size_t)r0 * cols, x + t * x_stride, y + t * y_stride + r0,
                              r1 - r0, cols);
#else
            for (uint32_t r = r0; r < r1; r++)
                y[t * y_stride + r] = mf_dot_f32(wf + (size_t)r * cols, x + t * x_stride, cols);
#endif
        }
    }
}

/* The scores' 1/sqrt(head_dim), one rounding to float, for every kernel. */
static float att_scale(uint32_t head_dim) { return (float)(1.0 / sqrt((double)head_dim)); }

#if defined(MF_HAVE_ARM_KERNELS) && defined(MF_ARM_KERNEL_F32)
/* Helium where head_dim allows it, with the same bits; the portable code
 * below is then named mf_attention_head_portable (the firmware test
 * compares the two). */
void mf_attention_head(float *out, const float *q, const float *k, const float *v,
                       size_t kv_stride, uint32_t n_pos, uint32_t head_dim, float *att)
{
    if (head_dim % 8 == 0 && head_dim > 0 && n_pos > 0) {
        float scale = att_scale(head_dim);
        mf_attention_head_arm(out, q, k, v, kv_stride, n_pos, head_dim, scale, att);
        return;
    }
    mf_attention_head_portable(out, q, k, v, kv_stride, n_pos, head_dim, att);
}
#define mf_attention_head mf_attention_head_portable
#endif

void mf_attention_head(float *out, const float *q, const float *k, const float *v,
                       size_t kv_stride, uint32_t n_pos, uint32_t head_dim, float *att)
{
    float scale = att_scale(head_dim);
    uint32_t t = 0;
#ifdef MF_VEC
    /* Two positions per pass over q (loaded once for both), no call per
     * position; each score in mf_dot_f32's order, so the same bits. */
    if (head_dim % 8 == 0)
        for (; t + 2 <= n_pos; t += 2) {
            const float *k0 = k + t * kv_stride, *k1 = k0 + kv_stride;
            v4f a0 = {0, 0, 0, 0}, b0 = a0, a1 = a0, b1 = a0;
            for (uint32_t i = 0; i < head_dim; i += 8) {
                v4f ql = ld4(q + i), qh = ld4(q + i + 4);
                a0 += ql * ld4(k0 + i);
                b0 += qh * ld4(k0 + i + 4);
                a1 += ql * ld4(k1 + i);
                b1 += qh * ld4(k1 + i + 4);
            }
            a0 += b0; /* lane j + lane j + 4, then ((0)+(1))+((2)+(3)) */
            a1 += b1;
            att[t] = ((a0[0] + a0[1]) + (a0[2] + a0[3])) * scale;
            att[t + 1] = ((a1[0] + a1[1]) + (a1[2] + a1[3])) * scale;
        }
#else
    /* The same two positions per pass with the lanes in named variables:
     * each q value loaded once for both rows. */
    if (head_dim % 8 == 0)
        for (; t + 2 <= n_pos; t += 2) {
            const float *k0 = k + t * kv_stride, *k1 = k0 + kv_stride;
            float a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f, a4 = 0.0f, a5 = 0.0f, a6 = 0.0f, a7 = 0.0f;
            float b0 = 0.0f, b1 = 0.0f, b2 = 0.0f, b3 = 0.0f, b4 = 0.0f, b5 = 0.0f, b6 = 0.0f, b7 = 0.0f;
            for (uint32_t i = 0; i < head_dim; i += 8) {
                const float *qi = q + i, *x = k0 + i, *y = k1 + i;
                float qv = qi[0];
                a0 += qv * x[0], b0 += qv * y[0];
                qv = qi[1], a1 += qv * x[1], b1 += qv * y[1];
                qv = qi[2], a2 += qv * x[2], b2 += qv * y[2];
                qv = qi[3], a3 += qv * x[3], b3 += qv * y[3];
                qv = qi[4], a4 += qv * x[4], b4 += qv * y[4];
                qv = qi[5], a5 += qv * x[5], b5 += qv * y[5];
                qv = qi[6], a6 += qv * x[6], b6 += qv * y[6];
                qv = qi[7], a7 += qv * x[7], b7 += qv * y[7];
            }
            att[t] = (((a0 + a4) + (a1 + a5)) + ((a2 + a6) + (a3 + a7))) * scale;
            att[t + 1] = (((b0 + b4) + (b1 + b5)) + ((b2 + b6) + (b3 + b7))) * scale;
        }
#endif
    for (; t < n_pos; t++) att[t] = mf_dot_f32(q, k + t * kv_stride, head_dim) * scale;
    mf_softmax(att, n_pos);
    memset(out, 0, sizeof(float) * head_dim);
    uint32_t i0 = 0;
#ifdef MF_VEC
    /* Element-wise (no reduction), so vector lanes give the same bits; 16
     * outputs per pass over att (four vectors: the M55 has eight). */
    for (; i0 + 16 <= head_dim; i0 += 16) {
        v4f o0 = ld4(out + i0), o1 = ld4(out + i0 + 4), o2 = ld4(out + i0 + 8), o3 = ld4(out + i0 + 12);
        const float *vt = v + i0;
        for (uint32_t t = 0; t < n_pos; t++, vt += kv_stride) {
            v4f a = {att[t], att[t], att[t], att[t]};
            o0 += a * ld4(vt);
            o1 += a * ld4(vt + 4);
            o2 += a * ld4(vt + 8);
            o3 += a * ld4(vt + 12);
        }
        memcpy(out + i0, &o0, sizeof o0);
        memcpy(out + i0 + 4, &o1, sizeof o1);
        memcpy(out + i0 + 8, &o2, sizeof o2);
        memcpy(out + i0 + 12, &o3, sizeof o3);
    }
    for (; i0 + 8 <= head_dim; i0 += 8) {
        v4f lo = ld4(out + i0), hi = ld4(out + i0 + 4);
        for (uint32_t t = 0; t < n_pos; t++) {
            const float *vt = v + t * kv_stride + i0;
            v4f a = {att[t], att[t], att[t], att[t]};
            lo += a * ld4(vt);
            hi += a * ld4(vt + 4);
        }
        memcpy(out + i0, &lo, sizeof lo);
        memcpy(out + i0 + 4, &hi, sizeof hi);
    }
#else
    /* eight outputs in registers over all positions, the same operations
     * per output in the same order as the loop below */
    for (; i0 + 8 <= head_dim; i0 += 8) {
        float o0 = 0.0f, o1 = 0.0f, o2 = 0.0f, o3 = 0.0f, o4 = 0.0f, o5 = 0.0f, o6 = 0.0f, o7 = 0.0f;
        const float *vt = v + i0;
        for (uint32_t t = 0; t < n_pos; t++, vt += kv_stride) {
            float a = att[t];
            o0 += a * vt[0];
            o1 += a * vt[1];
            o2 += a * vt[2];
            o3 += a * vt[3];
            o4 += a * vt[4];
            o5 += a * vt[5];
            o6 += a * vt[6];
            o7 += a * vt[7];
        }
        out[i0] = o0, out[i0 + 1] = o1, out[i0 + 2] = o2, out[i0 + 3] = o3;
        out[i0 + 4] = o4, out[i0 + 5] = o5, out[i0 + 6] = o6, out[i0 + 7] = o7;
    }
#endif
    for (uint32_t t = 0; t < n_pos; t++) {
        const float *vt = v + t * kv_stride;
        float a = att[t];
        for (uint32_t i = i0; i < head_dim; i++) out[i] += a * vt[i];
    }
}
#undef mf_attention_head

#if defined(MF_HAVE_ARM_KERNELS) && defined(MF_ARM_KERNEL_KV)
/* Helium (or the DSP cores' scalar FPU) where head_dim allows it, with the
 * same bits; the portable code below is then named mf_attention_head_kv_portable (the firmware test
 * compares the two). */
void mf_attention_head_kv(float *out, const float *q, int enc, const void *k, const void *v,
                          const uint16_t *k_scale, const uint16_t *v_scale, size_t kv_stride,
                          uint32_t n_pos, uint32_t head_dim, float *row, float *att)
{
    /* (q8: the kernel steps the scales by kv_stride / head_dim per row) */
    if (head_dim % 8 == 0 && head_dim > 0 && n_pos > 0 &&
        ((enc == MF_ENC_Q8 && kv_stride % head_dim == 0) || enc == MF_ENC_F16 ||
         enc == MF_ENC_BF16)) {
        float scale = att_scale(head_dim);
        mf_attention_head_kv_arm(out, q, enc, k, v, k_scale, v_scale, kv_stride, n_pos, head_dim,
                                 scale, att);
        return;
    }
    mf_attention_head_kv_portable(out, q, enc, k, v, k_scale, v_scale, kv_stride, n_pos, head_dim,
                                  row, att);
}
#define mf_attention_head_kv mf_attention_head_kv_portable
#endif

/* Row t of a non-f32 KV cache as f32: q8 is int8 times its row's f16 scale
 * (one rounding), f16 and bf16 convert exactly. */
static void kv_widen(int enc, const void *c, const uint16_t *scales, size_t kv_stride,
                     uint32_t head_dim, uint32_t t, float *row)
{
    size_t off = (size_t)t * kv_stride;
    if (enc == MF_ENC_Q8) {
        const int8_t *s = (const int8_t *)c + off;
        float sc = mf_f16_to_f32(scales[off / head_dim]);
        for (uint32_t i = 0; i < head_dim; i++) row[i] = (float)s[i] * sc;
        return;
    }
    const uint16_t *s = (const uint16_t *)c + off;
    if (enc == MF_ENC_BF16)
        for (uint32_t i = 0; i < head_dim; i++) row[i] = mf_bf16_to_f32(s[i]);
    else
        for (uint32_t i = 0; i < head_dim; i++) row[i] = mf_f16_to_f32(s[i]);
}

void mf_attention_head_kv(float *out, const float *q, int enc, const void *k, const void *v,
                          const uint16_t *k_scale, const uint16_t *v_scale, size_t kv_stride,
                          uint32_t n_pos, uint32_t head_dim, float *row, float *att)
{
    float scale = att_scale(head_dim);
    for (uint32_t t = 0; t < n_pos; t++) {
        kv_widen(enc, k, k_scale, kv_stride, head_dim, t, row);
        att[t] = mf_dot_f32(q, row, head_dim) * scale;
    }
    mf_softmax(att, n_pos);
    memset(out, 0, sizeof(float) * head_dim);
    for (uint32_t t = 0; t < n_pos; t++) {
        kv_widen(enc, v, v_scale, kv_stride, head_dim, t, row);
        float a = att[t];
        uint32_t i = 0;
#ifdef MF_VEC
        /* element-wise, so the same bits as the scalar loop; vectors so
         * that a core whose vector and scalar FPU treat subnormals
         * differently (the M55) does what its Helium kernel does */
        v4f av = {a, a, a, a};
        for (; i + 4 <= head_dim; i += 4) {
            v4f o = ld4(out + i) + av * ld4(row + i);
            memcpy(out + i, &o, sizeof o);
        }
#endif
        for (; i < head_dim; i++) out[i] += a * row[i];
    }
}
#undef mf_attention_head_kv

void mf_topk(const float *x, uint32_t n, uint32_t k, uint32_t *idx)
{
    /* Selection by repeated scans: k is small (2..8). A value ranks before
     * another when larger, or equal with a lower index. */
    for (uint32_t j = 0; j < k; j++) {
        uint32_t best = n;
        for (uint32_t i = 0; i < n; i++) {
            int taken = 0;
            for (uint32_t p = 0; p < j; p++)
                if (idx[p] == i) taken = 1;
            if (taken) continue;
            if (best == n || x[i] > x[best]) best = i;
        }
        idx[j] = best;
    }
}
