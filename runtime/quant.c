/*
 * Weight encodings and matrix-vector kernels: the portable C reference.
 * Byte layouts: docs/encodings.md. Runs on device: no heap, small frames,
 * only string.h / math.h / stdint.h.
 */
#include "quant.h"

#include <math.h>
#include <string.h>

#if defined(MF_HAVE_ARM_KERNELS)
#include "kernels_arm.h"
#endif
#if defined(__x86_64__)
#include "kernels_x86.h"
#endif
#if defined(__aarch64__)
#include "kernels_neon.h"
#endif

/* ---------------------------------------------------------------- helpers */

static inline uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)(p[0] | ((uint16_t)p[1] << 8));
}

static inline void wr16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v & 0xff);
    p[1] = (uint8_t)(v >> 8);
}

/* f32 from a possibly unaligned address. */
static inline float rdf32(const uint8_t *p)
{
    float f;
    memcpy(&f, p, 4);
    return f;
}

static inline uint32_t ngroups_of(uint32_t cols, uint32_t group)
{
    return (cols + group - 1u) / group;
}

/* Rounds half away from zero after clamping to [lo, hi] in float, so that
 * NaN (-> lo), infinities and huge values never reach the int conversion. */
static inline int round_int(float v, int lo, int hi)
{
    if (!(v > (float)lo)) return lo;
    if (v >= (float)hi) return hi;
    return v >= 0.0f ? (int)(v + 0.5f) : -(int)(-v + 0.5f);
}

float mf_f16_to_f32(uint16_t h)
{
    /* Move the f16 fields into a float and rescale by 2^112: exact for
     * normals and subnormals alike (the multiply normalises). */
    uint32_t bits = ((uint32_t)(h & 0x8000u) << 16) | ((uint32_t)(h & 0x7fffu) << 13);
    float f;
    if ((h & 0x7c00u) == 0x7c00u) bits |= 0x7f800000u; /* inf, NaN */
    memcpy(&f, &bits, 4);
    return (h & 0x7c00u) == 0x7c00u ? f : f * 0x1p112f;
}

uint16_t mf_f32_to_f16(float f)
{
    uint32_t x, ax;
    uint16_t sign;
    memcpy(&x, &f, 4);
    sign = (uint16_t)((x >> 16) & 0x8000u);
    ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u) return (uint16_t)(sign | 0x7e00u); /* NaN */
    if (ax >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u); /* >= 65520: inf */
    if (ax < 0x38800000u) {                                  /* below 2^-14: subnormal */
        uint32_t e = ax >> 23, m, shift;
        if (e < 102u) return sign; /* < 2^-25 */
        m = (ax & 0x7fffffu) | 0x800000u;
        shift = 126u - e; /* value in units of 2^-24 = m >> shift */
        m = (m + (1u << (shift - 1u)) - 1u + ((m >> shift) & 1u)) >> shift;
        return (uint16_t)(sign | m);
    }
    ax = ax + 0xfffu + ((ax >> 13) & 1u) - 0x38000000u;
    return (uint16_t)(sign | (ax >> 13));
}

float mf_bf16_to_f32(uint16_t b)
{
    uint32_t bits = (uint32_t)b << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t mf_f32_to_bf16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40u);
    return (uint16_t)((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

static int use_simd = 1;

int mf_quant_use_simd(int on)
{
    int old = use_simd;
    use_simd = on;
    return old;
}

/* ---------------------------------------------------------------- names, sizes */

static const char *const enc_names[MF_ENC_COUNT] = {"f32", "bf16", "f16", "q8", "q4", "q3", "q2"};

const char *mf_encoding_name(int enc)
{
    return (enc >= 0 && enc < MF_ENC_COUNT) ? enc_names[enc] : NULL;
}

int mf_encoding_from_name(const char *name)
{
    int i;
    if (!name) return -1;
    for (i = 0; i < MF_ENC_COUNT; i++)
        if (strcmp(name, enc_names[i]) == 0) return i;
    return -1;
}

/* Low-bit encodings (Q4, Q3, Q2): per group an f16 scale d, then the
 * packed levels u in [0, 2^bits); a value decodes as d*(u - 2^(bits-1)).
 * The study build (bench/kernels/encstudy.c) can switch an encoding to
 * mode 1, an offset form (f16 d, f16 m, value d*u + m), or mode 2, a
 * mid-rise zero point (2^bits - 1)/2: both were measured and not adopted
 * (see docs/encodings.md). Only quantisation and mf_dequantize_row follow
 * the modes; the matvec kernels know mode 0 only. */
#ifdef MF_QUANT_STUDY
static int enc_offset[MF_ENC_COUNT] = {0, 0, 0, 0, 0, 0, 0};
#else
static const int enc_offset[MF_ENC_COUNT] = {0, 0, 0, 0, 0, 0, 0};
#endif

static inline int enc_bits(int enc)
{
    return enc == MF_ENC_Q4 ? 4 : enc == MF_ENC_Q3 ? 3 : enc == MF_ENC_Q2 ? 2 : 8;
}

/* Zero point z of a symmetric encoding: value = d*(u - z). */
static inline float enc_zero(int enc)
{
    int L = 1 << enc_bits(enc);
#ifdef MF_QUANT_STUDY
    if (enc_offset[enc] == 2) return 0.5f * (float)(L - 1);
#endif
    return 0.5f * (float)L;
}

/* Bytes of the packed levels of a group of n values. */
static inline uint32_t plane_bytes(int enc, uint32_t n)
{
    switch (enc) {
    case MF_ENC_Q4: return (n + 1u) / 2u;
    case MF_ENC_Q3: return (n + 3u) / 4u + (n + 7u) / 8u;
    case MF_ENC_Q2: return (n + 3u) / 4u;
    default: return n;
    }
}

static inline uint32_t header_bytes(int enc)
{
    return enc_offset[enc] == 1 ? 4u : 2u;
}

/* Bytes of one group of n values (n <= group), header included. */
static size_t group_bytes(int enc, uint32_t n)
{
    switch (enc) {
    case MF_ENC_Q8: return 2u + n;
    case MF_ENC_Q4:
    case MF_ENC_Q3:
    case MF_ENC_Q2: return header_bytes(enc) + plane_bytes(enc, n);
    default: return 0;
    }
}

/* Packs levels u[n] of a low-bit group (layouts in docs/encodings.md). */
static void pack_levels(int enc, const uint8_t *u, uint32_t n, uint8_t *p)
{
    uint32_t j, k, h;
    switch (enc) {
    case MF_ENC_Q4:
        h = (n + 1u) / 2u;
        for (j = 0; j < h; j++)
            p[j] = (uint8_t)((u[j] & 15u) | (j + h < n ? (u[j + h] & 15u) << 4 : 0u));
        return;
    case MF_ENC_Q3:
    case MF_ENC_Q2:
        h = (n + 3u) / 4u;
        for (j = 0; j < h; j++) {
            uint8_t b = 0;
            for (k = 0; k < 4u; k++)
                if (j + k * h < n) b |= (uint8_t)((u[j + k * h] & 3u) << (2u * k));
            p[j] = b;
        }
        if (enc == MF_ENC_Q3) {
            uint32_t h8 = (n + 7u) / 8u;
            uint8_t *hp = p + h;
            for (j = 0; j < h8; j++) {
                uint8_t b = 0;
                for (k = 0; k < 8u; k++)
                    if (j + k * h8 < n) b |= (uint8_t)(((u[j + k * h8] >> 2) & 1u) << k);
                hp[j] = b;
            }
        }
        return;
    default: return;
    }
}

/* Unpacks the levels of a low-bit group into u[n]. */
static void unpack_levels(int enc, const uint8_t *p, uint32_t n, uint8_t *u)
{
    uint32_t j, k, h;
    switch (enc) {
    case MF_ENC_Q4:
        h = (n + 1u) / 2u;
        for (j = 0; j + h < n; j++) {
            u[j] = p[j] & 15u;
            u[j + h] = p[j] >> 4;
        }
        for (; j < h; j++) u[j] = p[j] & 15u;
        return;
    case MF_ENC_Q3:
    case MF_ENC_Q2:
        h = (n + 3u) / 4u;
        for (k = 0; k < 4u; k++)
            for (j = 0; j < h && j + k * h < n; j++) u[j + k * h] = (p[j] >> (2u * k)) & 3u;
        if (enc == MF_ENC_Q3) {
            uint32_t h8 = (n + 7u) / 8u;
            const uint8_t *hp = p + h;
            for (k = 0; k < 8u; k++)
                for (j = 0; j < h8 && j + k * h8 < n; j++)
                    u[j + k * h8] |= (uint8_t)(((hp[j] >> k) & 1u) << 2);
        }
        return;
    default: return;
    }
}

/* Reads a low-bit group header: d and m such that value = d*u + m. */
static inline const uint8_t *read_header(int enc, const uint8_t *p, float *d, float *m)
{
    *d = mf_f16_to_f32(rd16(p));
    if (enc_offset[enc] == 1) {
        *m = mf_f16_to_f32(rd16(p + 2));
        return p + 4;
    }
    *m = -enc_zero(enc) * *d;
    return p + 2;
}

size_t mf_row_bytes(int enc, uint32_t cols, uint32_t group)
{
    uint32_t full, rest;
    switch (enc) {
    case MF_ENC_F32: return 4u * (size_t)cols;
    case MF_ENC_BF16:
    case MF_ENC_F16: return 2u * (size_t)cols;
    default: break;
    }
    if (group == 0 || enc < 0 || enc >= MF_ENC_COUNT) return 0;
    if (enc != MF_ENC_Q8 && group > MF_QMAX_GROUP) return 0;
    full = cols / group;
    rest = cols % group;
    return (size_t)full * group_bytes(enc, group) + (rest ? group_bytes(enc, rest) : 0u);
}

size_t mf_matrix_bytes(int enc, uint32_t rows, uint32_t cols, uint32_t group)
{
    return (size_t)rows * mf_row_bytes(enc, cols, group);
}

double mf_encoding_bits(int enc, uint32_t group)
{
    switch (enc) {
    case MF_ENC_F32: return 32.0;
    case MF_ENC_BF16:
    case MF_ENC_F16: return 16.0;
    default: break;
    }
    if (group == 0) return 0.0;
    return 8.0 * (double)group_bytes(enc, group) / (double)group;
}

/* ---------------------------------------------------------------- quantize */

static uint8_t *quantize_group_q8(const float *x, uint32_t n, uint8_t *p)
{
    float amax = 0.0f, d, inv;
    uint32_t i;
    uint16_t dh;
    for (i = 0; i < n; i++) {
        float a = fabsf(x[i]);
        if (a > amax) amax = a;
    }
    dh = mf_f32_to_f16(amax / 127.0f);
    /* A scale rounded down (notably an f16 subnormal) must not clip the
     * largest value by more than half a step: take the next f16 up. */
    if (mf_f16_to_f32(dh) * 127.5f < amax) dh++;
    d = mf_f16_to_f32(dh);
    inv = d > 0.0f ? 1.0f / d : 0.0f;
    wr16(p, dh);
    for (i = 0; i < n; i++) {
        int q = round_int(x[i] * inv, -127, 127);
        p[2 + i] = (uint8_t)(int8_t)q;
    }
    return p + 2 + n;
}

uint16_t mf_quantize_kv_q8(const float *x, uint32_t n, int8_t *q)
{
    float amax = 0;
    for (uint32_t i = 0; i < n; i++) {
        float v = x[i] < 0 ? -x[i] : x[i];
        if (v > amax) amax = v;
    }
    uint16_t sh = mf_f32_to_f16(amax / 127.0f);
    if (sh >= 0x7C00u) sh = 0x7BFFu;
    else if (mf_f16_to_f32(sh) * 127.5f < amax) sh++; /* (at most 0x7BFF here: 127.5 x 65504 > amax) */
    float sc = mf_f16_to_f32(sh);
    for (uint32_t i = 0; i < n; i++) {
        float r = sc > 0 ? x[i] / sc : 0.0f;
        q[i] = (int8_t)(r >= 127.0f ? 127 : r <= -127.0f ? -127 : r == r ? (int)(r + (r >= 0 ? 0.5f : -0.5f)) : 0);
    }
    return sh;
}

/* Search widths (0 = no search), measured in docs/encodings.md. */
#ifdef MF_QUANT_STUDY
static int quant_nstep = 9, quant_nstep_off = 10;
#else
static const int quant_nstep = 9, quant_nstep_off = 10;
#endif

/* Squared error of x against d*u + m, weighted by imp[i] (NULL: 1), with u
 * chosen optimally in [0, L-1] for the stored (f16) d and m; writes u. */
static float assign_levels(const float *x, const float *imp, uint32_t n, int L, float d, float m,
                           uint8_t *u)
{
    float err = 0.0f, inv = d != 0.0f ? 1.0f / d : 0.0f;
    uint32_t i;
    for (i = 0; i < n; i++) {
        int q = round_int((x[i] - m) * inv, 0, L - 1);
        float e;
        u[i] = (uint8_t)q;
        e = x[i] - (d * (float)q + m);
        err += imp ? imp[i] * e * e : e * e;
    }
    return err;
}

/* Symmetric fit: x ~ d*(u - z), z = the encoding's zero point. Tries
 * scales that map the largest-magnitude value to the far end of the levels
 * widened by 0.1*is, refits d by least squares for each, and keeps the
 * lowest error after f16 rounding (the rmse search of llama.cpp's
 * make_qx_quants). nstep = 0: plain max-abs scale. */
static uint16_t fit_sym(const float *x, const float *imp, uint32_t n, int L, float z, int nstep,
                        uint8_t *u)
{
    uint8_t t[MF_QMAX_GROUP];
    float amax = 0.0f, vmax = 0.0f, best = -1.0f;
    uint16_t bestd = 0;
    int is;
    uint32_t i;
    for (i = 0; i < n; i++)
        if (fabsf(x[i]) > amax) {
            amax = fabsf(x[i]);
            vmax = x[i];
        }
    if (amax == 0.0f) {
        for (i = 0; i < n; i++) u[i] = (uint8_t)(int)z;
        return 0;
    }
    /* is = nstep + 1 is the plain max-abs scale, so the search is never
     * worse than it. */
    for (is = nstep > 0 ? -nstep : 1; is <= nstep + 1; is++) {
        int plain = is == nstep + 1;
        float iscale = -(z + (plain ? 0.0f : 0.1f * (float)is)) / vmax, d, df, err;
        float sqx = 0.0f, sq2 = 0.0f;
        uint16_t dh;
        if (z + 0.1f * (float)is <= 0.5f) continue;
        for (i = 0; i < n && !plain; i++) {
            int q = round_int(iscale * x[i] + z, 0, L - 1);
            float v;
            v = (float)q - z;
            sqx += (imp ? imp[i] : 1.0f) * v * x[i];
            sq2 += (imp ? imp[i] : 1.0f) * v * v;
        }
        d = (!plain && sq2 > 0.0f) ? sqx / sq2 : 1.0f / iscale;
        dh = mf_f32_to_f16(d);
        df = mf_f16_to_f32(dh);
        err = assign_levels(x, imp, n, L, df, -z * df, t);
        if (best < 0.0f || err < best) {
            best = err;
            bestd = dh;
            memcpy(u, t, n);
        }
    }
    return bestd;
}

/* Offset fit: x ~ d*u + m. Tries scales (L-1 + 0.1*is)/(max-min) from the
 * minimum, refits d and m by least squares for each, keeps the lowest error
 * after f16 rounding (llama.cpp's make_qkx2_quants search). nstep = 0:
 * plain min/max. */
static void fit_offset(const float *x, uint32_t n, int L, int nstep, uint8_t *u, uint16_t *dh,
                       uint16_t *mh)
{
    uint8_t t[MF_QMAX_GROUP];
    float mn = x[0], mx = x[0], best = -1.0f;
    int is;
    uint32_t i;
    for (i = 1; i < n; i++) {
        if (x[i] < mn) mn = x[i];
        if (x[i] > mx) mx = x[i];
    }
    if (mx == mn) {
        *dh = 0;
        *mh = mf_f32_to_f16(mn);
        memset(u, 0, n);
        return;
    }
    for (is = -nstep; is <= nstep; is++) {
        float iscale = ((float)(L - 1) + 0.1f * (float)is) / (mx - mn), d, m, err;
        uint16_t dc, mc;
        if (iscale <= 0.0f) continue;
        d = 1.0f / iscale;
        m = mn;
        if (nstep > 0) {
            float sq = 0.0f, sq2 = 0.0f, sx = 0.0f, sqx = 0.0f, det;
            for (i = 0; i < n; i++) {
                int q = round_int(iscale * (x[i] - mn), 0, L - 1);
                sq += (float)q;
                sq2 += (float)(q * q);
                sx += x[i];
                sqx += (float)q * x[i];
            }
            det = (float)n * sq2 - sq * sq;
            if (det > 0.0f) {
                d = ((float)n * sqx - sq * sx) / det;
                m = (sq2 * sx - sq * sqx) / det;
            }
        }
        dc = mf_f32_to_f16(d);
        mc = mf_f32_to_f16(m);
        err = assign_levels(x, NULL, n, L, mf_f16_to_f32(dc), mf_f16_to_f32(mc), t);
        if (best < 0.0f || err < best) {
            best = err;
            *dh = dc;
            *mh = mc;
            memcpy(u, t, n);
        }
    }
}


static uint8_t *quantize_group_low(int enc, const float *x, const float *imp, uint32_t n,
                                   uint8_t *p)
{
    uint8_t u[MF_QMAX_GROUP];
    int L = 1 << enc_bits(enc);
    if (enc_offset[enc] == 1) {
        uint16_t dh = 0, mh = 0;
        fit_offset(x, n, L, quant_nstep_off, u, &dh, &mh);
        wr16(p, dh);
        wr16(p + 2, mh);
    } else {
        wr16(p, fit_sym(x, imp, n, L, enc_zero(enc), quant_nstep, u));
    }
    p += header_bytes(enc);
    pack_levels(enc, u, n, p);
    return p + plane_bytes(enc, n);
}

/* The encoding exists and the group suits it (quantised encodings need
 * group >= 1; Q4/Q3/Q2 at most MF_QMAX_GROUP). Everything below does
 * nothing (or writes zeros) otherwise, rather than loop or overrun. */
static int valid(int enc, uint32_t group)
{
    if (enc < 0 || enc >= MF_ENC_COUNT) return 0;
    if (enc < MF_ENC_Q8) return 1;
    return group >= 1u && (enc == MF_ENC_Q8 || group <= MF_QMAX_GROUP);
}

void mf_quantize_matrix(int enc, const float *src, uint32_t rows, uint32_t cols, uint32_t group,
                        void *dst)
{
    mf_quantize_matrix_weighted(enc, src, rows, cols, group, NULL, dst);
}

void mf_quantize_matrix_weighted(int enc, const float *src, uint32_t rows, uint32_t cols,
                                 uint32_t group, const float *importance, void *dst)
{
    uint8_t *p = (uint8_t *)dst;
    uint32_t r, c;
    if (!valid(enc, group)) return;
    for (r = 0; r < rows; r++) {
        const float *x = src + (size_t)r * cols;
        switch (enc) {
        case MF_ENC_F32: memcpy(p, x, 4u * (size_t)cols); p += 4u * (size_t)cols; break;
        case MF_ENC_BF16:
            for (c = 0; c < cols; c++, p += 2) wr16(p, mf_f32_to_bf16(x[c]));
            break;
        case MF_ENC_F16:
            for (c = 0; c < cols; c++, p += 2) wr16(p, mf_f32_to_f16(x[c]));
            break;
        case MF_ENC_Q8:
            for (c = 0; c < cols; c += group)
                p = quantize_group_q8(x + c, cols - c < group ? cols - c : group, p);
            break;
        case MF_ENC_Q4:
        case MF_ENC_Q3:
        case MF_ENC_Q2:
            if (group > MF_QMAX_GROUP) return;
            for (c = 0; c < cols; c += group)
                p = quantize_group_low(enc, x + c, importance ? importance + c : NULL,
                                       cols - c < group ? cols - c : group, p);
            break;
        default: return;
        }
    }
}

/* ---------------------------------------------------------------- dequantize */

void mf_dequantize_row(int enc, const void *w, uint32_t row, uint32_t cols, uint32_t group,
                       float *out)
{
    const uint8_t *p = (const uint8_t *)w + (size_t)row * mf_row_bytes(enc, cols, group);
    uint32_t c, i;
    if (!valid(enc, group)) {
        memset(out, 0, sizeof(float) * cols);
        return;
    }
    switch (enc) {
    case MF_ENC_F32: memcpy(out, p, 4u * (size_t)cols); return;
    case MF_ENC_BF16:
        for (c = 0; c < cols; c++) out[c] = mf_bf16_to_f32(rd16(p + 2u * c));
        return;
    case MF_ENC_F16:
        for (c = 0; c < cols; c++) out[c] = mf_f16_to_f32(rd16(p + 2u * c));
        return;
    case MF_ENC_Q8:
        for (c = 0; c < cols; c += group) {
            uint32_t n = cols - c < group ? cols - c : group;
            float d = mf_f16_to_f32(rd16(p));
            for (i = 0; i < n; i++) out[c + i] = d * (float)(int8_t)p[2 + i];
            p += 2 + n;
        }
        return;
    case MF_ENC_Q4:
    case MF_ENC_Q3:
    case MF_ENC_Q2:
        for (c = 0; c < cols; c += group) {
            uint32_t n = cols - c < group ? cols - c : group;
            uint8_t u[MF_QMAX_GROUP];
            float d, m;
            p = read_header(enc, p, &d, &m);
            unpack_levels(enc, p, n, u);
            for (i = 0; i < n; i++) out[c + i] = d * (float)u[i] + m;
            p += plane_bytes(enc, n);
        }
        return;
    default: return;
    }
}

/* ---------------------------------------------------------------- f32-activation matvec */

/* Dot products with four partial sums, so compilers can keep them in SIMD
 * lanes without reassociating (no -ffast-math needed). */
#define DOT4(n, W)                                                     \
    do {                                                               \
        float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;              \
        uint32_t i_ = 0;                                               \
        for (; i_ + 4u <= (n); i_ += 4u) {                             \
            s0 += W(i_) * x[i_];                                       \
            s1 += W(i_ + 1u) * x[i_ + 1u];                             \
            s2 += W(i_ + 2u) * x[i_ + 2u];                             \
            s3 += W(i_ + 3u) * x[i_ + 3u];                             \
        }                                                              \
        for (; i_ < (n); i_++) s0 += W(i_) * x[i_];                    \
        return (s0 + s1) + (s2 + s3);                                  \
    } while (0)

static float dot_f32_f32(const uint8_t *p, const float *x, uint32_t n)
{
#define W_F32(i) rdf32(p + 4u * (i))
    DOT4(n, W_F32);
#undef W_F32
}

/* DOT4 with its four sums as the lanes of one vector (GCC/Clang vector
 * extension): the same operations in the same order, so the same bits on
 * every core that keeps subnormals. On Helium, where GCC makes MVE code of
 * it and MVE flushes subnormals, it is then what the Arm kernel
 * (mf_matvec_half_arm) computes, as ops.c's mf_dot_f32 is for the f32 one. */
#if defined(__GNUC__) && !defined(MF_NO_VECTOR_EXT)
typedef float dot_v4f __attribute__((vector_size(16)));
#define DOT4V(n, W)                                                                                \
    do {                                                                                           \
        dot_v4f acc_ = {0.0f, 0.0f, 0.0f, 0.0f};                                                   \
        uint32_t i_ = 0;                                                                           \
        for (; i_ + 4u <= (n); i_ += 4u) {                                                         \
            dot_v4f w_ = {W(i_), W(i_ + 1u), W(i_ + 2u), W(i_ + 3u)}, x_;                          \
            memcpy(&x_, x + i_, sizeof x_);                                                        \
            acc_ += w_ * x_;                                                                       \
        }                                                                                          \
        float s0 = acc_[0], s1 = acc_[1], s2 = acc_[2], s3 = acc_[3];                              \
        for (; i_ < (n); i_++) s0 += W(i_) * x[i_];                                                \
        return (s0 + s1) + (s2 + s3);                                                              \
    } while (0)
#else
#define DOT4V DOT4
#endif

static float dot_bf16_f32(const uint8_t *p, const float *x, uint32_t n)
{
#define W_BF16(i) mf_bf16_to_f32(rd16(p + 2u * (i)))
    DOT4V(n, W_BF16);
#undef W_BF16
}

static float dot_f16_f32(const uint8_t *p, const float *x, uint32_t n)
{
#define W_F16(i) mf_f16_to_f32(rd16(p + 2u * (i)))
    DOT4V(n, W_F16);
#undef W_F16
}

static float dot_s8_f32(const int8_t *q, const float *x, uint32_t n)
{
#define W_S8(i) (float)q[i]
    DOT4(n, W_S8);
#undef W_S8
}

static float dot_q8_f32(const uint8_t *p, const float *x, uint32_t cols, uint32_t group)
{
    float sum = 0.0f;
    uint32_t c;
    for (c = 0; c < cols; c += group) {
        uint32_t n = cols - c < group ? cols - c : group;
        sum += mf_f16_to_f32(rd16(p)) * dot_s8_f32((const int8_t *)(p + 2), x + c, n);
        p += 2 + n;
    }
    return sum;
}

/* Signed levels (u - z) of one low-bit group, the generic way. */
static void group_levels(int enc, const uint8_t *p, uint32_t n, int8_t *v)
{
    uint8_t *u = (uint8_t *)v;
    int z = 1 << (enc_bits(enc) - 1);
    uint32_t i;
    unpack_levels(enc, p, n, u);
    for (i = 0; i < n; i++) v[i] = (int8_t)((int)u[i] - z);
}

/* sum over a low-bit group of (u - z) * x, for float x (X = float) or int8
 * x (X = int32_t); direct loops for the common full groups, the generic
 * unpack for odd sizes. */
#define LOW_GROUP_DOT(X, enc, p, x, n, out)                                                    \
    do {                                                                                       \
        X s_ = 0;                                                                              \
        uint32_t j_;                                                                           \
        if ((enc) == MF_ENC_Q4 && ((n) & 1u) == 0) {                                           \
            uint32_t h_ = (n) / 2u;                                                            \
            for (j_ = 0; j_ < h_; j_++)                                                        \
                s_ += (X)((int)(p[j_] & 15u) - 8) * (X)x[j_] +                                 \
                      (X)((int)(p[j_] >> 4) - 8) * (X)x[j_ + h_];                              \
        } else if ((enc) == MF_ENC_Q2 && ((n) & 3u) == 0) {                                    \
            uint32_t h_ = (n) / 4u;                                                            \
            for (j_ = 0; j_ < h_; j_++) {                                                      \
                uint32_t b_ = p[j_];                                                           \
                s_ += (X)((int)(b_ & 3u) - 2) * (X)x[j_] +                                     \
                      (X)((int)((b_ >> 2) & 3u) - 2) * (X)x[j_ + h_] +                         \
                      (X)((int)((b_ >> 4) & 3u) - 2) * (X)x[j_ + 2u * h_] +                    \
                      (X)((int)(b_ >> 6) - 2) * (X)x[j_ + 3u * h_];                            \
            }                                                                                  \
        } else if ((enc) == MF_ENC_Q3 && ((n) & 7u) == 0) {                                    \
            uint32_t h_ = (n) / 4u, h8_ = (n) / 8u;                                            \
            for (j_ = 0; j_ < h_; j_++) {                                                      \
                uint32_t b_ = p[j_], hb_ = (uint32_t)(p[h_ + j_ % h8_] >> (j_ / h8_)) << 2;    \
                s_ += (X)((int)((b_ & 3u) | (hb_ & 4u)) - 4) * (X)x[j_] +                      \
                      (X)((int)(((b_ >> 2) & 3u) | ((hb_ >> 2) & 4u)) - 4) * (X)x[j_ + h_] +   \
                      (X)((int)(((b_ >> 4) & 3u) | ((hb_ >> 4) & 4u)) - 4) *                   \
                          (X)x[j_ + 2u * h_] +                                                 \
                      (X)((int)((b_ >> 6) | ((hb_ >> 6) & 4u)) - 4) * (X)x[j_ + 3u * h_];      \
            }                                                                                  \
        } else {                                                                               \
            int8_t v_[MF_QMAX_GROUP];                                                          \
            group_levels((enc), p, (n), v_);                                                   \
            for (j_ = 0; j_ < (n); j_++) s_ += (X)v_[j_] * (X)x[j_];                           \
        }                                                                                      \
        (out) = s_;                                                                            \
    } while (0)

/* Low-bit row . x: per group d * sum((u - z) * x). */
static float dot_low_f32(int enc, const uint8_t *p, const float *x, uint32_t cols, uint32_t group)
{
    float sum = 0.0f;
    uint32_t c;
    for (c = 0; c < cols; c += group) {
        uint32_t n = cols - c < group ? cols - c : group;
        const float *xc = x + c;
        const uint8_t *pl = p + 2;
        float s;
        LOW_GROUP_DOT(float, enc, pl, xc, n, s);
        sum += mf_f16_to_f32(rd16(p)) * s;
        p += 2u + plane_bytes(enc, n);
    }
    return sum;
}

void mf_matvec(int enc, const void *w, const float *x, float *y, uint32_t rows, uint32_t cols,
               uint32_t group)
{
    const uint8_t *p = (const uint8_t *)w;
    size_t rb = mf_row_bytes(enc, cols, group);
    uint32_t r;
    if (!valid(enc, group)) {
        memset(y, 0, sizeof(float) * rows);
        return;
    }
#if defined(MF_HAVE_ARM_KERNELS) && defined(MF_ARM_KERNEL_HALF)
    /* Helium or scalar VFP, the same bits; VLDRH and VLDRW need their
     * element alignment */
    if ((enc == MF_ENC_F16 || enc == MF_ENC_BF16) && ((uintptr_t)w & 1u) == 0 &&
        ((uintptr_t)x & 3u) == 0) {
        mf_matvec_half_arm(enc == MF_ENC_BF16, (const uint16_t *)w, x, y, rows, cols);
        return;
    }
#endif
    for (r = 0; r < rows; r++, p += rb) {
        float s = 0.0f;
        switch (enc) {
        case MF_ENC_F32: s = dot_f32_f32(p, x, cols); break;
        case MF_ENC_BF16: s = dot_bf16_f32(p, x, cols); break;
        case MF_ENC_F16: s = dot_f16_f32(p, x, cols); break;
        case MF_ENC_Q8: s = dot_q8_f32(p, x, cols, group); break;
        case MF_ENC_Q4:
        case MF_ENC_Q3:
        case MF_ENC_Q2: s = dot_low_f32(enc, p, x, cols, group); break;
        default: break;
        }
        y[r] = s;
    }
}

/* ---------------------------------------------------------------- quantised activations */

size_t mf_qa_bytes(uint32_t cols, uint32_t group)
{
    return group ? MF_QA_BYTES(cols, group) : 0;
}

/* Pointers into an activation buffer. */
static inline const int8_t *qa_q(const void *xq)
{
    return (const int8_t *)xq;
}
static inline const float *qa_d(const void *xq, uint32_t cols)
{
    return (const float *)(const void *)((const uint8_t *)xq + ((cols + 3u) & ~3u));
}

void mf_quantize_activations(const float *x, uint32_t cols, uint32_t group, void *xq)
{
#if defined(MF_HAVE_ARM_KERNELS) && defined(MF_ARM_KERNEL_F32)
    if (group % 4u == 0 && group && cols % group == 0 &&
        mf_quantize_activations_arm(x, cols, group, xq) == 0)
        return;
#endif
#if defined(MF_HAVE_X86_KERNELS)
    if (use_simd && mf_x86_have_avx2() && mf_quantize_activations_avx2(x, cols, group, xq) == 0)
        return;
#endif
#if defined(MF_HAVE_NEON_KERNELS)
    if (use_simd && mf_quantize_activations_neon(x, cols, group, xq) == 0) return;
#endif
    int8_t *q = (int8_t *)xq;
    float *d = (float *)(void *)((uint8_t *)xq + ((cols + 3u) & ~3u));
    int32_t *s;
    uint32_t c, i, g = 0;
    if (group == 0) return;
    s = (int32_t *)(void *)(d + ngroups_of(cols, group));
    for (c = cols; c < ((cols + 3u) & ~3u); c++) q[c] = 0;
    for (c = 0; c < cols; c += group, g++) {
        uint32_t n = cols - c < group ? cols - c : group;
        float amax = 0.0f, inv;
        int32_t sum = 0;
        for (i = 0; i < n; i++) {
            float a = fabsf(x[c + i]);
            if (a > amax) amax = a;
        }
        d[g] = amax / 127.0f;
        inv = amax > 0.0f ? 127.0f / amax : 0.0f;
        for (i = 0; i < n; i++) {
            int v = round_int(x[c + i] * inv, -127, 127);
            q[c + i] = (int8_t)v;
            sum += v;
        }
        s[g] = sum;
    }
}

static float dot_q8_q8(const uint8_t *p, const int8_t *xq, const float *xd, uint32_t cols,
                       uint32_t group)
{
    float sum = 0.0f;
    uint32_t c, i, g = 0;
    for (c = 0; c < cols; c += group, g++) {
        uint32_t n = cols - c < group ? cols - c : group;
        const int8_t *q = (const int8_t *)(p + 2);
        int32_t acc = 0;
        for (i = 0; i < n; i++) acc += (int32_t)q[i] * (int32_t)xq[c + i];
        sum += mf_f16_to_f32(rd16(p)) * xd[g] * (float)acc;
        p += 2 + n;
    }
    return sum;
}

/* Low-bit row . quantised x: per group (d*dx) * sum((u - z)*qx). The
 * integer sum is exact, so any SIMD version gets the same bits as long as
 * it keeps this float expression and order (kernels_arm.h, kernels_x86.h
 * compute it as sum(u*qx) - z*s[g]). */
static float dot_low_q8(int enc, const uint8_t *p, const int8_t *xq, const float *xd,
                        uint32_t cols, uint32_t group)
{
    float sum = 0.0f;
    uint32_t c, g = 0;
    for (c = 0; c < cols; c += group, g++) {
        uint32_t n = cols - c < group ? cols - c : group;
        const int8_t *xc = xq + c;
        const uint8_t *pl = p + 2;
        int32_t acc;
        LOW_GROUP_DOT(int32_t, enc, pl, xc, n, acc);
        sum += mf_f16_to_f32(rd16(p)) * xd[g] * (float)acc;
        p += 2u + plane_bytes(enc, n);
    }
    return sum;
}

void mf_matvec_qa(int enc, const void *w, const void *xq, float *y, uint32_t rows, uint32_t cols,
                  uint32_t group)
{
    const uint8_t *p = (const uint8_t *)w;
    const int8_t *q = qa_q(xq);
    const float *xd = qa_d(xq, cols);
    size_t rb = mf_row_bytes(enc, cols, group);
    uint32_t r, c;
    if (!valid(enc, group) || group == 0) {
        memset(y, 0, sizeof(float) * rows);
        return;
    }
#if defined(MF_HAVE_X86_KERNELS)
    if (use_simd && (enc == MF_ENC_Q8 || enc == MF_ENC_Q4) && group % 32u == 0 &&
        cols % group == 0 && mf_x86_have_avx2()) {
        if (enc == MF_ENC_Q8)
            mf_matvec_qa_q8_avx2(w, xq, y, rows, cols, group);
        else
            mf_matvec_qa_q4_avx2(w, xq, y, rows, cols, group);
        return;
    }
#endif
#if defined(MF_HAVE_NEON_KERNELS)
    if (use_simd && (enc == MF_ENC_Q8 || enc == MF_ENC_Q4) && group % 32u == 0 &&
        cols % group == 0) {
        if (enc == MF_ENC_Q8)
            mf_matvec_qa_q8_neon(w, xq, y, rows, cols, group);
        else
            mf_matvec_qa_q4_neon(w, xq, y, rows, cols, group);
        return;
    }
#endif
#if defined(MF_HAVE_ARM_KERNELS)
    if (enc == MF_ENC_Q8) {
        mf_matvec_qa_q8_arm(w, xq, y, rows, cols, group);
        return;
    }
    if (enc == MF_ENC_Q4) {
        mf_matvec_qa_q4_arm(w, xq, y, rows, cols, group);
        return;
    }
    if (enc == MF_ENC_Q3) {
        mf_matvec_qa_q3_arm(w, xq, y, rows, cols, group);
        return;
    }
    if (enc == MF_ENC_Q2) {
        mf_matvec_qa_q2_arm(w, xq, y, rows, cols, group);
        return;
    }
#endif
    for (r = 0; r < rows; r++, p += rb) {
        float s = 0.0f;
        switch (enc) {
        case MF_ENC_Q8: s = dot_q8_q8(p, q, xd, cols, group); break;
        case MF_ENC_Q4:
        case MF_ENC_Q3:
        case MF_ENC_Q2: s = dot_low_q8(enc, p, q, xd, cols, group); break;
        case MF_ENC_F32:
        case MF_ENC_BF16:
        case MF_ENC_F16:
            for (c = 0; c < cols; c++) {
                float wv = enc == MF_ENC_F32    ? rdf32(p + 4u * c)
                           : enc == MF_ENC_BF16 ? mf_bf16_to_f32(rd16(p + 2u * c))
                                                : mf_f16_to_f32(rd16(p + 2u * c));
                s += wv * (xd[c / group] * (float)q[c]);
            }
            break;
        default: break;
        }
        y[r] = s;
    }
}
