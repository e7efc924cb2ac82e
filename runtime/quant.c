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

static inline int round_int(float v)
{
    return v >= 0.0f ? (int)(v + 0.5f) : -(int)(-v + 0.5f);
}

float mf_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu, man = h & 0x3ffu, bits;
    float f;
    if (exp == 0) {
        f = (float)man * (1.0f / 16777216.0f); /* man * 2^-24, exact */
        return sign ? -f : f;
    }
    if (exp == 31)
        bits = sign | 0x7f800000u | (man << 13);
    else
        bits = sign | ((exp + 112u) << 23) | (man << 13);
    memcpy(&f, &bits, 4);
    return f;
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

/* Bytes of one group of n values (n <= group), header included. */
static size_t group_bytes(int enc, uint32_t n)
{
    switch (enc) {
    case MF_ENC_Q8: return 2u + n;
    default: return 0;
    }
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
    d = mf_f16_to_f32(dh);
    inv = d > 0.0f ? 1.0f / d : 0.0f;
    wr16(p, dh);
    for (i = 0; i < n; i++) {
        int q = round_int(x[i] * inv);
        if (q > 127) q = 127;
        if (q < -127) q = -127;
        p[2 + i] = (uint8_t)(int8_t)q;
    }
    return p + 2 + n;
}

void mf_quantize_matrix(int enc, const float *src, uint32_t rows, uint32_t cols, uint32_t group,
                        void *dst)
{
    uint8_t *p = (uint8_t *)dst;
    uint32_t r, c;
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
    default: return;
    }
}

/* ---------------------------------------------------------------- f32-activation matvec */

static float dot_q8_f32(const uint8_t *p, const float *x, uint32_t cols, uint32_t group)
{
    float sum = 0.0f;
    uint32_t c, i;
    for (c = 0; c < cols; c += group) {
        uint32_t n = cols - c < group ? cols - c : group;
        const int8_t *q = (const int8_t *)(p + 2);
        float s = 0.0f;
        for (i = 0; i < n; i++) s += (float)q[i] * x[c + i];
        sum += mf_f16_to_f32(rd16(p)) * s;
        p += 2 + n;
    }
    return sum;
}

void mf_matvec(int enc, const void *w, const float *x, float *y, uint32_t rows, uint32_t cols,
               uint32_t group)
{
    const uint8_t *p = (const uint8_t *)w;
    size_t rb = mf_row_bytes(enc, cols, group);
    uint32_t r, c;
    for (r = 0; r < rows; r++, p += rb) {
        float s = 0.0f;
        switch (enc) {
        case MF_ENC_F32:
            for (c = 0; c < cols; c++) s += rdf32(p + 4u * c) * x[c];
            break;
        case MF_ENC_BF16:
            for (c = 0; c < cols; c++) s += mf_bf16_to_f32(rd16(p + 2u * c)) * x[c];
            break;
        case MF_ENC_F16:
            for (c = 0; c < cols; c++) s += mf_f16_to_f32(rd16(p + 2u * c)) * x[c];
            break;
        case MF_ENC_Q8: s = dot_q8_f32(p, x, cols, group); break;
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
    int8_t *q = (int8_t *)xq;
    float *d = (float *)(void *)((uint8_t *)xq + ((cols + 3u) & ~3u));
    float *s = d + ngroups_of(cols, group);
    uint32_t c, i, g = 0;
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
            int v = round_int(x[c + i] * inv);
            if (v > 127) v = 127;
            if (v < -127) v = -127;
            q[c + i] = (int8_t)v;
            sum += v;
        }
        s[g] = d[g] * (float)sum;
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

void mf_matvec_qa(int enc, const void *w, const void *xq, float *y, uint32_t rows, uint32_t cols,
                  uint32_t group)
{
    const uint8_t *p = (const uint8_t *)w;
    const int8_t *q = qa_q(xq);
    const float *xd = qa_d(xq, cols);
    size_t rb = mf_row_bytes(enc, cols, group);
    uint32_t r, c;
#if defined(MF_HAVE_ARM_KERNELS)
    if (enc == MF_ENC_Q8) {
        mf_matvec_qa_q8_arm(w, xq, y, rows, cols, group);
        return;
    }
#endif
    for (r = 0; r < rows; r++, p += rb) {
        float s = 0.0f;
        switch (enc) {
        case MF_ENC_Q8: s = dot_q8_q8(p, q, xd, cols, group); break;
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
