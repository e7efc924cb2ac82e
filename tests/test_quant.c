/*
 * Weight encodings and matrix-vector kernels (runtime/quant.c, kernels_x86.c,
 * kernels_neon.c)
 * against independent math:
 *  - f16/bf16 conversions against exhaustive round trips and nearest-value
 *    checks in double;
 *  - byte sizes against the formulas of docs/encodings.md;
 *  - decoding of bytes packed here, by this file, from the spec;
 *  - quantisation error per element within the bound of the stored scale,
 *    and per group no worse than plain max-abs quantisation done here;
 *  - matvec (f32 and q8 activations, portable and SIMD) against double
 *    sums, on shapes with cols < group and cols % group != 0;
 *  - the SIMD kernels (AVX2, NEON) against the portable ones bit for bit on
 *    random and extreme bytes, every group size, many widths;
 *  - on the tiny model's real expert weights: relative RMSE per encoding,
 *    and the expert outputs (f32 vs q8 activations) on the golden hidden
 *    states against float64 sums over the bf16 weights.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../bench/kernels/st_mini.h"
#include "../runtime/kernels_neon.h"
#include "../runtime/kernels_x86.h"
#include "../runtime/quant.h"
#include "../tools/lib/json.h"
#include "harness.h"

#define MODEL_DIR "models/tiny-shakespeare-moe/"

static uint32_t rng = 12345u;
static float frand(void) /* uniform in [-1, 1) */
{
    rng = rng * 1664525u + 1013904223u;
    return (float)((rng >> 8) & 0xffffffu) / 8388608.0f - 1.0f;
}
/* Roughly Gaussian, with occasional outliers like real weights. */
static float grand(void)
{
    float s = frand() + frand() + frand() + frand();
    if (((rng >> 3) & 63u) == 0) s *= 4.0f;
    return s * 0.5f;
}

static int bits_of(int enc)
{
    return enc == MF_ENC_Q4 ? 4 : enc == MF_ENC_Q3 ? 3 : enc == MF_ENC_Q2 ? 2 : 8;
}

/* ------------------------------------------------------------ spec, written here */

/* Bytes of one group of n values, from docs/encodings.md. */
static size_t spec_group_bytes(int enc, uint32_t n)
{
    switch (enc) {
    case MF_ENC_Q8: return 2 + n;
    case MF_ENC_Q4: return 2 + (n + 1) / 2;
    case MF_ENC_Q3: return 2 + (n + 3) / 4 + (n + 7) / 8;
    case MF_ENC_Q2: return 2 + (n + 3) / 4;
    }
    return 0;
}

static size_t spec_row_bytes(int enc, uint32_t cols, uint32_t group)
{
    size_t b = 0;
    uint32_t c;
    if (enc == MF_ENC_F32) return 4u * cols;
    if (enc == MF_ENC_BF16 || enc == MF_ENC_F16) return 2u * cols;
    for (c = 0; c < cols; c += group) b += spec_group_bytes(enc, cols - c < group ? cols - c : group);
    return b;
}

/* Reads level i of a low-bit group's level bytes, per the spec. */
static int spec_level(int enc, const uint8_t *p, uint32_t n, uint32_t i)
{
    if (enc == MF_ENC_Q4) {
        uint32_t h = (n + 1) / 2;
        return i < h ? p[i] & 15 : p[i - h] >> 4;
    } else {
        uint32_t h = (n + 3) / 4, h8 = (n + 7) / 8;
        int v = (p[i % h] >> (2 * (i / h))) & 3;
        if (enc == MF_ENC_Q3) v |= ((p[h + i % h8] >> (i / h8)) & 1) << 2;
        return v;
    }
}

/* Decodes a whole row per the spec (independent of quant.c's decoder). */
static void spec_decode_row(int enc, const uint8_t *p, uint32_t cols, uint32_t group, double *out)
{
    uint32_t c, i;
    for (c = 0; c < cols; c += group) {
        uint32_t n = cols - c < group ? cols - c : group;
        double d = mf_f16_to_f32((uint16_t)(p[0] | p[1] << 8));
        for (i = 0; i < n; i++) {
            if (enc == MF_ENC_Q8)
                out[c + i] = d * (int8_t)p[2 + i];
            else
                out[c + i] = d * (spec_level(enc, p + 2, n, i) - (1 << (bits_of(enc) - 1)));
        }
        p += spec_group_bytes(enc, n);
    }
}

/* ------------------------------------------------------------ f16 / bf16 */

static double f16_value(uint16_t h)
{
    int e = (h >> 10) & 31, m = h & 1023;
    double v = e == 0 ? ldexp(m, -24) : ldexp(1024 + m, e - 25);
    return (h & 0x8000) ? -v : v;
}

static void test_halves(void)
{
    uint32_t h, bad = 0, i;
    for (h = 0; h < 65536; h++) {
        float f;
        if (((h >> 10) & 31) == 31) continue;
        f = mf_f16_to_f32((uint16_t)h);
        if ((double)f != f16_value((uint16_t)h) || mf_f32_to_f16(f) != h) bad++;
    }
    CHECK(bad == 0, "%u f16 values do not round-trip", bad);
    CHECK(mf_f32_to_f16(65520.0f) == 0x7c00, "65520 -> inf");
    CHECK(mf_f32_to_f16(65519.0f) == 0x7bff, "65519 -> 65504");
    CHECK(mf_f32_to_f16(1e-9f) == 0, "tiny -> 0");
    /* Nearest-even on random values across the range, subnormals included. */
    bad = 0;
    for (i = 0; i < 200000; i++) {
        float f = ldexpf(frand(), (int)(rng % 44) - 28);
        uint16_t r = mf_f32_to_f16(f);
        double err = fabs(f16_value(r) - f);
        uint16_t up = (uint16_t)(r + 1), dn = (uint16_t)(r - 1);
        if (((up >> 10) & 31) != 31 && fabs(f16_value(up) - f) < err) bad++;
        if ((r & 0x7fff) != 0 && fabs(f16_value(dn) - f) < err) bad++;
        if ((r & 0x7fff) != 0 && ((f < 0) != ((r & 0x8000) != 0))) bad++;
    }
    CHECK(bad == 0, "%u f32->f16 conversions not nearest", bad);
    /* Exact ties (the midpoint of two neighbouring f16 values, exact in
     * f32) go to the even one: every positive finite pair, and negated. */
    bad = 0;
    for (h = 0; h < 0x7bff; h++) {
        float mid = (float)((f16_value((uint16_t)h) + f16_value((uint16_t)(h + 1))) / 2);
        uint16_t even = (uint16_t)((h & 1) ? h + 1 : h);
        bad += mf_f32_to_f16(mid) != even;
        bad += mf_f32_to_f16(-mid) != (uint16_t)(even | 0x8000);
    }
    CHECK(bad == 0, "%u f32->f16 ties not rounded to even", bad);
    bad = 0;
    for (i = 0; i < 200000; i++) {
        float f = ldexpf(frand(), (int)(rng % 60) - 30);
        uint16_t b = mf_f32_to_bf16(f);
        double err = fabs((double)mf_bf16_to_f32(b) - f);
        double ulp = ldexp(1.0, ilogb(f) - 7);
        if (err > ulp / 2) bad++;
        if (err == ulp / 2 && (b & 1)) bad++; /* ties to even */
    }
    CHECK(bad == 0, "%u f32->bf16 conversions not nearest-even", bad);
    CHECK(mf_bf16_to_f32(0x3f80) == 1.0f && mf_bf16_to_f32(0xc000) == -2.0f, "bf16 decode");
}

/* ------------------------------------------------------------ names, sizes */

static void test_sizes(void)
{
    static const uint32_t cols[] = {1, 5, 31, 32, 33, 70, 128, 256, 300};
    static const uint32_t groups[] = {32, 64};
    int enc;
    size_t k, g;
    for (enc = 0; enc < MF_ENC_COUNT; enc++) {
        CHECK(mf_encoding_from_name(mf_encoding_name(enc)) == enc, "name of %d", enc);
        for (k = 0; k < sizeof cols / sizeof cols[0]; k++)
            for (g = 0; g < 2; g++) {
                size_t want = spec_row_bytes(enc, cols[k], groups[g]);
                CHECK(mf_row_bytes(enc, cols[k], groups[g]) == want, "%s cols %u group %u: %zu != %zu",
                      mf_encoding_name(enc), cols[k], groups[g],
                      mf_row_bytes(enc, cols[k], groups[g]), want);
                CHECK(mf_matrix_bytes(enc, 7, cols[k], groups[g]) == 7 * want, "matrix bytes");
            }
    }
    CHECK(mf_encoding_from_name("q5") == -1 && mf_encoding_name(99) == NULL, "unknown names");
    CHECK(mf_row_bytes(99, 32, 32) == 0, "unknown encoding has no size");
    /* Hand-computed: cols 70, group 32 -> groups of 32, 32, 6. */
    CHECK(mf_row_bytes(MF_ENC_Q8, 70, 32) == 34 + 34 + 8, "q8 70");
    CHECK(mf_row_bytes(MF_ENC_Q4, 70, 32) == 18 + 18 + 5, "q4 70");
    CHECK(mf_row_bytes(MF_ENC_Q3, 70, 32) == 14 + 14 + 2 + 2 + 1, "q3 70");
    CHECK(mf_row_bytes(MF_ENC_Q2, 70, 32) == 10 + 10 + 2 + 2, "q2 70");
    CHECK(fabs(mf_encoding_bits(MF_ENC_Q8, 32) - 8.5) < 1e-9, "q8 bits");
    CHECK(fabs(mf_encoding_bits(MF_ENC_Q4, 32) - 4.5) < 1e-9, "q4 bits");
    CHECK(fabs(mf_encoding_bits(MF_ENC_Q3, 32) - 3.5) < 1e-9, "q3 bits");
    CHECK(fabs(mf_encoding_bits(MF_ENC_Q2, 64) - 2.25) < 1e-9, "q2 bits");
    CHECK(MF_QA_BYTES(70, 32) == 72 + 24 && mf_qa_bytes(70, 32) == 96, "activation bytes");
    /* Invalid groups: no size, and the kernels write zeros instead of
     * looping or overrunning. */
    {
        static float x[300] = {1.0f}, y[4] = {1, 1, 1, 1};
        static uint8_t w[4096], xq[MF_QA_BYTES(300, 1)];
        CHECK(mf_row_bytes(MF_ENC_Q4, 300, 300) == 0 && mf_row_bytes(MF_ENC_Q8, 32, 0) == 0,
              "invalid groups have no size");
        CHECK(mf_row_bytes(MF_ENC_Q8, 300, 300) == 302, "q8 takes any group");
        mf_matvec(MF_ENC_Q4, w, x, y, 4, 300, 300);
        CHECK(y[0] == 0 && y[3] == 0, "q4 group 300: zeros");
        y[0] = 1;
        mf_matvec(MF_ENC_Q8, w, x, y, 4, 32, 0);
        CHECK(y[0] == 0, "group 0: zeros");
        y[0] = 1;
        mf_quantize_activations(x, 300, 0, xq);
        mf_matvec_qa(MF_ENC_Q8, w, xq, y, 4, 300, 0);
        CHECK(y[0] == 0, "qa group 0: zeros");
    }
    /* Non-finite activations and weights: levels stay in range (no
     * undefined float-to-int conversion). */
    {
        static float x[64], W[64];
        static uint8_t xq[MF_QA_BYTES(64, 32)], w[64 * 2];
        const int8_t *q = (const int8_t *)xq;
        int i, ok = 1;
        for (i = 0; i < 64; i++) x[i] = W[i] = (float)(i - 32);
        x[3] = W[3] = NAN;
        x[40] = W[40] = INFINITY;
        mf_quantize_activations(x, 64, 32, xq);
        for (i = 0; i < 64; i++) ok &= q[i] != -128;
        CHECK(ok, "activation levels in range with NaN/inf");
        mf_quantize_matrix(MF_ENC_Q8, W, 1, 64, 32, w);
        for (i = 0; i < 64; i++) ok &= (int8_t)w[2 + i + (i >= 32 ? 2 : 0)] >= -127;
        CHECK(ok, "q8 levels in range with NaN/inf");
    }
}

/* ------------------------------------------------------------ decoding of spec bytes */

static void test_spec_decode(void)
{
    /* A q4 group of 5: d = 0.5, levels 0..4 -> (u - 8) * 0.5. Spec packing:
     * h = 3, byte j = u[j] | u[j+3] << 4. */
    static const uint8_t q4[] = {0x00, 0x38, 0x30, 0x41, 0x02};
    /* q3 group of 9, d = 0.25 (0x3400): u = 0..7, 7. 2-bit plane: h = 3,
     * byte j holds u[j], u[j+3], u[j+6] (u[j+9] absent); 1-bit plane: h8 = 2,
     * byte j bit k = bit 2 of u[j + 2k]. */
    uint8_t q3[2 + 3 + 2];
    static const int u3[9] = {0, 1, 2, 3, 4, 5, 6, 7, 7};
    /* q2 group of 6, d = 2 (0x4000): u = 3, 2, 1, 0, 1, 3; h = 2. */
    uint8_t q2[2 + 2];
    static const int u2[6] = {3, 2, 1, 0, 1, 3};
    static const uint8_t q8[] = {0x00, 0xbc, 0x81, 0x7f, 0x00}; /* d = -1 */
    float out[16];
    int j, k, ok;
    mf_dequantize_row(MF_ENC_Q4, q4, 0, 5, 32, out);
    ok = 1;
    for (j = 0; j < 5; j++) ok &= out[j] == 0.5f * (float)(j - 8);
    CHECK(ok, "q4 spec decode: %g %g %g %g %g", out[0], out[1], out[2], out[3], out[4]);
    memset(q3, 0, sizeof q3);
    q3[0] = 0x00;
    q3[1] = 0x34;
    for (j = 0; j < 9; j++) {
        q3[2 + j % 3] |= (uint8_t)((u3[j] & 3) << (2 * (j / 3)));
        q3[5 + j % 2] |= (uint8_t)(((u3[j] >> 2) & 1) << (j / 2));
    }
    mf_dequantize_row(MF_ENC_Q3, q3, 0, 9, 32, out);
    ok = 1;
    for (j = 0; j < 9; j++) ok &= out[j] == 0.25f * (float)(u3[j] - 4);
    CHECK(ok, "q3 spec decode");
    memset(q2, 0, sizeof q2);
    q2[1] = 0x40;
    for (j = 0; j < 6; j++) q2[2 + j % 2] |= (uint8_t)(u2[j] << (2 * (j / 2)));
    mf_dequantize_row(MF_ENC_Q2, q2, 0, 6, 32, out);
    ok = 1;
    for (j = 0; j < 6; j++) ok &= out[j] == 2.0f * (float)(u2[j] - 2);
    CHECK(ok, "q2 spec decode");
    mf_dequantize_row(MF_ENC_Q8, q8, 0, 3, 32, out);
    CHECK(out[0] == 127.0f && out[1] == -127.0f && out[2] == 0.0f, "q8 spec decode");
    /* Values on an exact grid (power-of-two scale, the most negative level
     * present) must come back exactly after quantisation. */
    for (k = MF_ENC_Q8; k <= MF_ENC_Q2; k++) {
        int L = 1 << bits_of(k), z = L / 2;
        float x[45], y[45];
        uint8_t buf[128];
        for (j = 0; j < 45; j++) x[j] = 0.125f * (float)((j % L) - z);
        if (k == MF_ENC_Q8)
            for (j = 0; j < 45; j++) x[j] = 0.125f * (float)(j % 32 == 0 ? -127 : (j * 37) % 255 - 127);
        mf_quantize_matrix(k, x, 1, 45, 32, buf);
        mf_dequantize_row(k, buf, 0, 45, 32, y);
        ok = memcmp(x, y, sizeof x) == 0;
        CHECK(ok, "%s: grid values not exact", mf_encoding_name(k));
    }
}

/* ------------------------------------------------------------ random matrices */

#define MAXR 9
#define MAXC 300

static void test_random(void)
{
    static const uint32_t cols_list[] = {1, 5, 31, 32, 33, 70, 128, 256, 300};
    static const uint32_t groups[] = {32, 64};
    static float W[MAXR * MAXC], x[MAXC], y[MAXR], yq[MAXR], ys[MAXR], row[MAXC];
    static double wd[MAXR][MAXC], xd[MAXC];
    static uint8_t buf[MAXR * MAXC * 4 + 64];
    static uint8_t xq[MF_QA_BYTES(MAXC, 32) + 64];
    const uint32_t rows = MAXR;
    int enc;
    size_t ci, gi;
    for (gi = 0; gi < 2; gi++)
        for (ci = 0; ci < sizeof cols_list / sizeof cols_list[0]; ci++) {
            uint32_t cols = cols_list[ci], group = groups[gi], r, c;
            uint32_t ng = (cols + group - 1) / group;
            float scale = ldexpf(1.0f, (int)(ci % 5) * 3 - 8); /* vary magnitudes */
            const float *qd;
            const int32_t *qs;
            const int8_t *qq;
            int bad_act = 0;
            for (r = 0; r < rows * cols; r++) W[r] = grand() * scale;
            for (r = 0; r < cols; r++) W[r] = 0.0f; /* an all-zero row */
            for (c = 0; c < cols; c++) x[c] = grand();
            if (cols > 40) x[3] = 0.0f, x[cols - 1] = 9.0f; /* an outlier */
            /* Activation quantisation, checked per the layout in quant.h. */
            mf_quantize_activations(x, cols, group, xq);
            qq = (const int8_t *)xq;
            qd = (const float *)(const void *)(xq + ((cols + 3) & ~3u));
            qs = (const int32_t *)(const void *)(qd + ng);
            for (c = 0; c < ng; c++) {
                uint32_t n = cols - c * group < group ? cols - c * group : group, i;
                double amax = 0;
                int32_t sum = 0;
                for (i = 0; i < n; i++) amax = fmax(amax, fabs(x[c * group + i]));
                if (fabs(qd[c] - amax / 127) > 1e-6 * amax) bad_act++;
                for (i = 0; i < n; i++) {
                    double xr = (double)qd[c] * qq[c * group + i];
                    sum += qq[c * group + i];
                    if (fabs(xr - x[c * group + i]) > 0.5001 * qd[c] + 1e-30) bad_act++;
                    xd[c * group + i] = xr;
                }
                if (sum != qs[c]) bad_act++;
            }
            CHECK(bad_act == 0, "activation quantisation cols %u group %u: %d bad", cols, group,
                  bad_act);
            for (enc = 0; enc < MF_ENC_COUNT; enc++) {
                double worst_f = 0, worst_q = 0, worst_simd = 0;
                int bad_elem = 0, bad_group = 0, bad_spec = 0;
                memset(buf, 0xee, sizeof buf);
                mf_quantize_matrix(enc, W, rows, cols, group, buf);
                CHECK(buf[mf_matrix_bytes(enc, rows, cols, group)] == 0xee, "%s writes past its size",
                      mf_encoding_name(enc));
                for (r = 0; r < rows; r++) {
                    const uint8_t *p = buf + r * mf_row_bytes(enc, cols, group);
                    mf_dequantize_row(enc, buf, r, cols, group, row);
                    if (enc >= MF_ENC_Q8) {
                        static double sd[MAXC];
                        spec_decode_row(enc, p, cols, group, sd);
                        for (c = 0; c < cols; c++) bad_spec += sd[c] != row[c];
                    }
                    for (c = 0; c < cols; c++) wd[r][c] = row[c];
                    /* Element and group error bounds. */
                    for (c = 0; c < cols; c += group) {
                        uint32_t n = cols - c < group ? cols - c : group, i;
                        const float *w = W + r * cols + c;
                        double amax = 0, d, e2 = 0, e2_plain = 0, dp;
                        int L = 1 << bits_of(enc), z = L / 2;
                        for (i = 0; i < n; i++) amax = fmax(amax, fabs(w[i]));
                        if (enc == MF_ENC_F32) {
                            for (i = 0; i < n; i++) bad_elem += row[c + i] != w[i];
                        } else if (enc == MF_ENC_BF16 || enc == MF_ENC_F16) {
                            for (i = 0; i < n; i++)
                                bad_elem += fabs(row[c + i] - w[i]) >
                                            (enc == MF_ENC_BF16 ? 0x1p-8 : 0x1p-11) * fabs(w[i]) + 0x1p-25;
                        } else {
                            d = fabs(mf_f16_to_f32((uint16_t)(p[0] | p[1] << 8)));
                            /* q8: round to nearest within d/2; low-bit: the searched
                             * scale may clip the extreme values, by < 2 steps. */
                            for (i = 0; i < n; i++) {
                                double e = fabs(row[c + i] - w[i]);
                                e2 += e * e;
                                bad_elem += e > (enc == MF_ENC_Q8 ? 0.5 : 2.0) * d * 1.0001 + 1e-30;
                            }
                            /* Plain max-abs quantisation, done here; the search must not
                             * be worse (small slack for float sums). */
                            if (enc != MF_ENC_Q8 && amax > 0) {
                                double vmax = 0;
                                for (i = 0; i < n; i++)
                                    if (fabs(w[i]) == amax) vmax = w[i];
                                dp = mf_f16_to_f32(mf_f32_to_f16((float)(-vmax / z)));
                                for (i = 0; i < n; i++) {
                                    double q = floor(w[i] / dp + z + 0.5), e;
                                    q = q < 0 ? 0 : q > L - 1 ? L - 1 : q;
                                    e = w[i] - dp * (q - z);
                                    e2_plain += e * e;
                                }
                                bad_group += e2 > e2_plain * (1 + 1e-5) + 1e-30;
                            }
                        }
                        if (enc >= MF_ENC_Q8) p += spec_group_bytes(enc, n);
                    }
                }
                CHECK(bad_spec == 0, "%s cols %u group %u: decoder disagrees with spec (%d)",
                      mf_encoding_name(enc), cols, group, bad_spec);
                CHECK(bad_elem == 0, "%s cols %u group %u: %d elements beyond bound",
                      mf_encoding_name(enc), cols, group, bad_elem);
                CHECK(bad_group == 0, "%s cols %u group %u: %d groups worse than max-abs",
                      mf_encoding_name(enc), cols, group, bad_group);
                /* matvec: f32 activations vs double over the decoded weights; q8
                 * activations vs double over decoded weights and activations. The
                 * bound is float rounding of the sums: 1e-5 * sum |w x|. */
                mf_matvec(enc, buf, x, y, rows, cols, group);
                mf_matvec_qa(enc, buf, xq, yq, rows, cols, group);
                for (r = 0; r < rows; r++) {
                    double ref = 0, refq = 0, mag = 0, magq = 0;
                    for (c = 0; c < cols; c++) {
                        ref += wd[r][c] * x[c];
                        refq += wd[r][c] * xd[c];
                        mag += fabs(wd[r][c] * x[c]);
                        magq += fabs(wd[r][c] * xd[c]);
                    }
                    worst_f = fmax(worst_f, fabs(y[r] - ref) / (mag + 1e-30));
                    worst_q = fmax(worst_q, fabs(yq[r] - refq) / (magq + 1e-30));
                }
                CHECK(worst_f < 1e-5, "%s cols %u group %u: f32 matvec rel err %g",
                      mf_encoding_name(enc), cols, group, worst_f);
                CHECK(worst_q < 1e-5, "%s cols %u group %u: q8-activation matvec rel err %g",
                      mf_encoding_name(enc), cols, group, worst_q);
                /* Portable kernels vs the SIMD ones (same bound). */
                mf_quant_use_simd(0);
                mf_matvec(enc, buf, x, ys, rows, cols, group);
                for (r = 0; r < rows; r++) {
                    double mag = 0;
                    for (c = 0; c < cols; c++) mag += fabs(wd[r][c] * x[c]);
                    worst_simd = fmax(worst_simd, fabs(ys[r] - y[r]) / (mag + 1e-30));
                }
                mf_matvec_qa(enc, buf, xq, ys, rows, cols, group);
                for (r = 0; r < rows; r++) {
                    double mag = 0;
                    for (c = 0; c < cols; c++) mag += fabs(wd[r][c] * xd[c]);
                    worst_simd = fmax(worst_simd, fabs(ys[r] - yq[r]) / (mag + 1e-30));
                }
                mf_quant_use_simd(1);
                /* documented bit-identical (kernels_x86.h, kernels_arm.h) */
                CHECK(worst_simd == 0, "%s cols %u group %u: SIMD vs portable rel diff %g",
                      mf_encoding_name(enc), cols, group, worst_simd);
            }
        }
}

/* ------------------------------------------------------------ SIMD kernels, bit for bit */

static uint32_t urand(void)
{
    rng = rng * 1664525u + 1013904223u;
    return rng >> 8;
}

/* y of one SIMD kernel vs the portable mf_matvec_qa, on the bytes in w/xq. */
typedef void (*qa_kernel)(const void *w, const void *xq, float *y, uint32_t rows, uint32_t cols,
                          uint32_t group);

#define SX_ROWS 13
#define SX_COLS 2048

/* Random rows of `enc` (Q8 or Q4): scales are any finite f16 of either sign
 * (subnormals too), levels any byte (Q8 in [lo, 127], Q4 any nibble).
 * mode 1: every level and activation extreme, of random sign; modes 2 and 3:
 * the largest sums of one sign (all activations lo, the levels all lo /
 * 127 for Q8, 0 / 15 for Q4), which overflow any too-narrow lane. */
static void sx_fill(int enc, uint8_t *w, uint8_t *xq, uint32_t rows, uint32_t cols,
                    uint32_t group, int q8_lo, int mode)
{
    static const uint8_t ext4[4] = {0x00, 0x0f, 0xf0, 0xff}; /* levels 0 / 15 in each nibble */
    int8_t *q = (int8_t *)xq;
    float *d = (float *)(void *)(xq + cols);
    int32_t *s = (int32_t *)(void *)(d + cols / group);
    size_t rb = mf_row_bytes(enc, cols, group), i;
    uint32_t r, c, g;
    for (r = 0; r < rows; r++) {
        uint8_t *p = w + r * rb;
        for (c = 0; c < cols; c += group) {
            uint16_t h = (uint16_t)((urand() % 31u) << 10 | (urand() & 0x83ffu));
            uint32_t nb = enc == MF_ENC_Q8 ? group : group / 2;
            p[0] = (uint8_t)(h & 0xff), p[1] = (uint8_t)(h >> 8);
            for (i = 0; i < nb; i++) {
                if (mode >= 2)
                    p[2 + i] = enc == MF_ENC_Q4 ? (mode == 2 ? 0x00 : 0xff)
                                                : (uint8_t)(int8_t)(mode == 2 ? q8_lo : 127);
                else if (enc == MF_ENC_Q4)
                    p[2 + i] = mode ? ext4[urand() % 4u] : (uint8_t)urand();
                else if (mode)
                    p[2 + i] = (uint8_t)(int8_t)(urand() & 1u ? 127 : q8_lo);
                else
                    p[2 + i] = (uint8_t)(int8_t)(q8_lo + (int)(urand() % (uint32_t)(128 - q8_lo)));
            }
            p += 2 + nb;
        }
    }
    for (c = 0; c < cols; c++)
        q[c] = mode >= 2 ? (int8_t)q8_lo
               : mode   ? (int8_t)(urand() & 1u ? 127 : q8_lo)
                        : (int8_t)((int)(urand() % 255u) - 127);
    for (g = 0; g < cols / group; g++) {
        d[g] = ldexpf(1.0f + (float)(urand() & 0xffffu) / 65536.0f, (int)(urand() % 40u) - 30);
        s[g] = 0;
        for (c = 0; c < group; c++) s[g] += q[g * group + c];
    }
}

/* Every SIMD kernel built in (AVX2 when the CPU has it, NEON on AArch64)
 * against the portable kernel, and mf_matvec_qa's dispatch against both:
 * the outputs must have the same bits (kernels_x86.h, kernels_neon.h), on
 * all group sizes and many widths, rows and random bytes. */
static void test_simd_exact(void)
{
    /* sizes: Q8 rows of SX_COLS weights and 2-byte scales per group of 32 */
    static const uint32_t groups[] = {32, 64, 128, 256, 512}; /* Q8 has no largest group */
    static const uint32_t mults[] = {1, 2, 3, 5, 8};
    static uint8_t w[SX_ROWS * (SX_COLS + 2 * SX_COLS / 32)];
    static uint32_t xq_words[MF_QA_BYTES(SX_COLS, 32) / 4]; /* the layout needs 4-byte alignment */
    uint8_t *xq = (uint8_t *)xq_words;
    static float yp[SX_ROWS], ys[SX_ROWS], yd[SX_ROWS];
    struct {
        const char *name;
        int enc;
        qa_kernel f;
        int q8_lo; /* smallest int8 weight the kernel takes (AVX2's sign trick: -127) */
    } k[4];
    int nk = 0, i, mode;
    char names[64] = "";
    memset(k, 0, sizeof k);
#if defined(MF_HAVE_X86_KERNELS)
    if (mf_x86_have_avx2()) {
        k[nk].name = "q8 avx2", k[nk].enc = MF_ENC_Q8, k[nk].f = mf_matvec_qa_q8_avx2;
        k[nk++].q8_lo = -127;
        k[nk].name = "q4 avx2", k[nk].enc = MF_ENC_Q4, k[nk].f = mf_matvec_qa_q4_avx2;
        k[nk++].q8_lo = -127;
    }
#endif
#if defined(MF_HAVE_NEON_KERNELS)
    k[nk].name = "q8 " MF_NEON_KERNEL_NAME, k[nk].enc = MF_ENC_Q8, k[nk].f = mf_matvec_qa_q8_neon;
    k[nk++].q8_lo = -128;
    k[nk].name = "q4 " MF_NEON_KERNEL_NAME, k[nk].enc = MF_ENC_Q4, k[nk].f = mf_matvec_qa_q4_neon;
    k[nk++].q8_lo = -128;
#endif
    for (i = 0; i < nk; i++) {
        int bad = 0, bad_dispatch = 0, cases = 0, nonzero = 0;
        size_t gi, mi;
        for (mode = 0; mode < 4; mode++)
            for (gi = 0; gi < sizeof groups / sizeof groups[0]; gi++)
                for (mi = 0; mi < sizeof mults / sizeof mults[0]; mi++) {
                    uint32_t group = groups[gi], cols = group * mults[mi], r;
                    uint32_t rows = 1 + (uint32_t)(cases % SX_ROWS);
                    if (cols > SX_COLS || (k[i].enc == MF_ENC_Q4 && group > MF_QMAX_GROUP))
                        continue;
                    sx_fill(k[i].enc, w, xq, rows, cols, group, k[i].q8_lo, mode);
                    mf_quant_use_simd(0);
                    mf_matvec_qa(k[i].enc, w, xq, yp, rows, cols, group);
                    mf_quant_use_simd(1);
                    k[i].f(w, xq, ys, rows, cols, group);
                    mf_matvec_qa(k[i].enc, w, xq, yd, rows, cols, group);
                    if (memcmp(yp, ys, rows * sizeof(float))) {
                        bad++;
                        for (r = 0; r < rows && yp[r] == ys[r]; r++) {}
                        if (bad <= 3)
                            fprintf(stderr, "  %s cols %u group %u row %u: %a vs portable %a\n",
                                    k[i].name, cols, group, r, (double)ys[r], (double)yp[r]);
                    }
                    bad_dispatch += memcmp(yp, yd, rows * sizeof(float)) != 0;
                    for (r = 0; r < rows; r++) nonzero += yp[r] != 0.0f;
                    cases++;
                }
        CHECK(bad == 0, "%s: %d of %d shapes differ from the portable kernel", k[i].name, bad,
              cases);
        CHECK(bad_dispatch == 0, "%s: mf_matvec_qa differs from portable on %d of %d shapes",
              k[i].name, bad_dispatch, cases);
        /* the data must exercise the sums: all-zero outputs would hide a broken kernel */
        CHECK(nonzero > cases, "%s: only %d nonzero outputs", k[i].name, nonzero);
        snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s (%d shapes)",
                 i ? ", " : "", k[i].name, cases);
    }
    printf("SIMD kernels checked bit for bit against the portable ones: %s\n",
           nk ? names : "none built in / supported here");
}

/* The activation buffer's padding: quant.h documents q[cols] zero-padded
 * to a multiple of 4 bytes (the scales follow, 4-byte aligned). */
static void test_qa_padding(void)
{
    static uint32_t words[MF_QA_BYTES(64, 32) / 4 + 4];
    float x[40];
    int bad = 0;
    uint32_t cols, c;
    for (c = 0; c < 40; c++) x[c] = grand();
    for (cols = 1; cols <= 39; cols++) {
        const uint8_t *b = (const uint8_t *)words;
        memset(words, 0xa5, sizeof words);
        mf_quantize_activations(x, cols, 32, words);
        for (c = cols; c < ((cols + 3u) & ~3u); c++) bad += b[c] != 0;
    }
    CHECK(bad == 0, "activation levels not zero-padded to 4 bytes (%d bytes)", bad);
}

/* Q8 / Q4 rows whose f16 group scale is inf, -inf or a NaN: the SIMD
 * kernels move those bits as mf_f16_to_f32 does (kernels_x86.c
 * f16x4_to_f32: "inf and NaN only moved") and give the portable bits. */
static void test_simd_special_scales(void)
{
    static uint8_t w[SX_ROWS * (SX_COLS + 2 * SX_COLS / 32)];
    static uint32_t xq_words[MF_QA_BYTES(SX_COLS, 32) / 4];
    static float yp[SX_ROWS], ys[SX_ROWS];
    static const uint16_t special[] = {0x7c00, 0xfc00, 0x7e00, 0x7c01, 0xfe55};
    uint8_t *xq = (uint8_t *)xq_words;
    int bad = 0, cases = 0, nonfinite = 0, e;
    for (e = 0; e < 2; e++) {
        int enc = e ? MF_ENC_Q4 : MF_ENC_Q8;
        uint32_t group = 64, cols = 256, rows = SX_ROWS, r;
        size_t rb = mf_row_bytes(enc, cols, group);
        uint32_t gb = (uint32_t)(rb / (cols / group));
        sx_fill(enc, w, xq, rows, cols, group, -127, 0);
        /* one group of some rows gets a special scale (rows 0-3 are the
         * four-row pass, 12 the one-row tail) */
        for (r = 0; r < rows; r += 3) {
            uint16_t h = special[(r / 3) % 5];
            uint8_t *p = w + r * rb + (size_t)((r / 3) % (cols / group)) * gb;
            p[0] = (uint8_t)(h & 0xff), p[1] = (uint8_t)(h >> 8);
        }
        mf_quant_use_simd(0);
        mf_matvec_qa(enc, w, xq, yp, rows, cols, group);
        mf_quant_use_simd(1);
        mf_matvec_qa(enc, w, xq, ys, rows, cols, group);
        for (r = 0; r < rows; r++) {
            nonfinite += !isfinite(yp[r]);
            if (memcmp(&yp[r], &ys[r], sizeof(float))) {
                if (++bad <= 3)
                    fprintf(stderr, "  %s row %u: %a vs portable %a\n", mf_encoding_name(enc), r,
                            (double)ys[r], (double)yp[r]);
            }
            cases++;
        }
    }
    CHECK(bad == 0, "special f16 scales: %d of %d rows differ from the portable kernel", bad, cases);
    CHECK(nonfinite >= 8, "special f16 scales: only %d non-finite rows", nonfinite);
}

/* One value of the activation test: mostly ordinary, with the cases
 * where a lane could differ from the scalar code - NaN, infinities, zeros
 * of both signs, subnormals, and rounding ties (v + 0.5 exactly, and one
 * ulp either side: with |max| = 127 the scale is 1, so x is the level). */
static float qa_value(int mode)
{
    static const float special[] = {NAN, -NAN, INFINITY, -INFINITY, 0.0f, -0.0f,
                                    0x1p-149f, -0x1p-140f, 0x1p-127f, 127.0f, -127.0f};
    uint32_t r = urand() % 16u;
    float t = (float)((int)(urand() % 254u) - 127) + 0.5f;
    if (mode == 0 || r < 8) return grand() * ldexpf(1.0f, (int)(urand() % 20u) - 10);
    if (r < 11) return special[urand() % (sizeof special / sizeof special[0])];
    if (r < 13) return t;
    return nextafterf(t, r & 1u ? 1e9f : -1e9f);
}

/* The SIMD activation quantisation (AVX2 / NEON) against the portable code:
 * the whole buffer - levels, padding, scales and sums - byte for byte. */
static void test_simd_quantize_exact(void)
{
    enum { QC = 256 * 5 }; /* the largest group times the largest multiple */
    static const uint32_t groups[] = {4, 8, 12, 16, 24, 32, 64, 128, 256};
    static const uint32_t mults[] = {1, 2, 3, 4, 5};
    static float x[QC];
    static uint32_t a_words[MF_QA_BYTES(QC, 4) / 4], b_words[MF_QA_BYTES(QC, 4) / 4];
    const char *name = NULL;
    uint32_t step = 0; /* values per vector step: groups not a multiple are declined */
    int (*f)(const float *, uint32_t, uint32_t, void *) = NULL;
    int bad = 0, bad_dispatch = 0, cases = 0, taken = 0, expect_taken = 0, levels = 0, mode;
    size_t gi, mi;
#if defined(MF_HAVE_X86_KERNELS)
    if (mf_x86_have_avx2()) name = "avx2", step = 8, f = mf_quantize_activations_avx2;
#endif
#if defined(MF_HAVE_NEON_KERNELS)
    name = "neon", step = 4, f = mf_quantize_activations_neon;
#endif
    if (!f) {
        printf("SIMD activation quantisation: none built in / supported here\n");
        return;
    }
    for (mode = 0; mode < 3; mode++)
        for (gi = 0; gi < sizeof groups / sizeof groups[0]; gi++)
            for (mi = 0; mi < sizeof mults / sizeof mults[0]; mi++) {
                uint32_t group = groups[gi], cols = group * mults[mi], c;
                size_t n = MF_QA_BYTES(cols, group);
                const int8_t *lv = (const int8_t *)(const void *)a_words;
                for (c = 0; c < cols; c++) x[c] = qa_value(mode);
                /* mode 2: one group of all NaN and one whose |max| is inf */
                if (mode == 2) {
                    for (c = 0; c < group; c++) x[c] = NAN;
                    if (cols > group) x[group + 1] = -INFINITY;
                }
                memset(a_words, 0xa5, sizeof a_words);
                memset(b_words, 0x5a, sizeof b_words);
                mf_quant_use_simd(0);
                mf_quantize_activations(x, cols, group, a_words);
                mf_quant_use_simd(1);
                if (f(x, cols, group, b_words) == 0) {
                    taken++;
                    if (memcmp(a_words, b_words, n)) {
                        size_t k;
                        const uint8_t *a = (const uint8_t *)a_words, *b = (const uint8_t *)b_words;
                        for (k = 0; k < n && a[k] == b[k]; k++) {}
                        if (++bad <= 3)
                            fprintf(stderr, "  %s cols %u group %u: byte %zu is %02x, portable %02x\n",
                                    name, cols, group, k, b[k], a[k]);
                    }
                }
                memset(b_words, 0x5a, sizeof b_words);
                mf_quantize_activations(x, cols, group, b_words);
                bad_dispatch += memcmp(a_words, b_words, n) != 0;
                expect_taken += group % step == 0;
                for (c = 0; c < cols; c++) levels += lv[c] != 0 && lv[c] != -127 && lv[c] != 127;
                cases++;
            }
    CHECK(bad == 0, "%s activation quantisation: %d of %d shapes differ from the portable code",
          name, bad, taken);
    CHECK(bad_dispatch == 0, "mf_quantize_activations (%s) differs from portable on %d of %d shapes",
          name, bad_dispatch, cases);
    CHECK(taken == expect_taken, "%s took %d of %d shapes, expected %d", name, taken, cases,
          expect_taken);
    CHECK(levels > cases * 4, "only %d interior levels: the data misses the rounding", levels);
    printf("SIMD activation quantisation checked byte for byte: %s (%d of %d shapes)\n", name, taken,
           cases);
}

/* Importance-weighted quantisation: uniform importance gives the same bytes
 * as none; with skewed importance the weighted error of every group is no
 * worse than plain max-abs quantisation's (computed here). */
static void test_weighted(void)
{
    enum { R = 6, C = 96, G = 32 };
    static float W[R * C], imp[C], ones[C], dq[C];
    static uint8_t a[R * C * 2], b[R * C * 2];
    int enc, i, r;
    for (i = 0; i < R * C; i++) W[i] = grand();
    for (i = 0; i < C; i++) {
        ones[i] = 1.0f;
        imp[i] = (i % 7 == 0) ? 50.0f : 0.1f + (float)(i % 5);
    }
    for (enc = MF_ENC_Q8; enc <= MF_ENC_Q2; enc++) {
        int bad = 0, L = 1 << bits_of(enc), z = L / 2;
        size_t nb = mf_matrix_bytes(enc, R, C, G);
        mf_quantize_matrix(enc, W, R, C, G, a);
        mf_quantize_matrix_weighted(enc, W, R, C, G, ones, b);
        CHECK(memcmp(a, b, nb) == 0, "%s: uniform importance changes the bytes", mf_encoding_name(enc));
        mf_quantize_matrix_weighted(enc, W, R, C, G, NULL, b);
        CHECK(memcmp(a, b, nb) == 0, "%s: NULL importance changes the bytes", mf_encoding_name(enc));
        if (enc == MF_ENC_Q8) continue;
        mf_quantize_matrix_weighted(enc, W, R, C, G, imp, b);
        for (r = 0; r < R; r++) {
            int g;
            mf_dequantize_row(enc, b, (uint32_t)r, C, G, dq);
            for (g = 0; g < C / G; g++) {
                const float *w = W + r * C + g * G;
                double amax = 0, vmax = 0, dp, e2 = 0, e2p = 0;
                for (i = 0; i < G; i++)
                    if (fabs(w[i]) > amax) amax = fabs(w[i]), vmax = w[i];
                dp = mf_f16_to_f32(mf_f32_to_f16((float)(-vmax / z)));
                for (i = 0; i < G; i++) {
                    double q = floor(w[i] / dp + z + 0.5), e;
                    q = q < 0 ? 0 : q > L - 1 ? L - 1 : q;
                    e = w[i] - dp * (q - z);
                    e2p += imp[g * G + i] * e * e;
                    e = w[i] - dq[g * G + i];
                    e2 += imp[g * G + i] * e * e;
                }
                bad += e2 > e2p * (1 + 1e-5);
            }
        }
        CHECK(bad == 0, "%s: %d groups with weighted error above max-abs", mf_encoding_name(enc), bad);
    }
}

/* ------------------------------------------------------------ real weights */

#define NL 4
#define NE 16
#define HID 128
#define FFN 256

static float *expert_w[NL][NE][3]; /* w1 [FFN,HID], w2 [HID,FFN], w3 [FFN,HID] */

static int load_experts(void)
{
    int l, e, k;
    for (l = 0; l < NL; l++)
        for (e = 0; e < NE; e++)
            for (k = 0; k < 3; k++) {
                char name[128];
                uint32_t r, c;
                snprintf(name, sizeof name, "model.layers.%d.block_sparse_moe.experts.%d.w%d.weight",
                         l, e, k + 1);
                expert_w[l][e][k] = st_mini_read(MODEL_DIR "model.safetensors", name, &r, &c);
                if (!expert_w[l][e][k] || r * c != FFN * HID) return -1;
            }
    return 0;
}

/* Per-encoding rel RMSE bounds at group 32: measured value + ~10%
 * (docs/encodings.md has the measurements). */
static const double rmse_bound[MF_ENC_COUNT] = {0, 0.0025, 0.0005, 0.006, 0.09, 0.18, 0.37};

static void test_real_weights(void)
{
    static uint8_t enc_buf[NE][3][FFN * HID * 4];
    static float row[FFN];
    static float x[HID], y1[FFN], y3[FFN], h[FFN], hq_in[FFN], yo[HID];
    static double x_d[HID], h_d[FFN], out_d[HID];
    static uint8_t xq[MF_QA_BYTES(FFN, 32)];
    mf_json_doc doc;
    size_t len;
    char *text;
    const mf_json *cs;
    float *norm_w[NL];
    int enc, l, e, k;
    const uint32_t group = 32;
    if (load_experts() != 0) {
        CHECK(0, "cannot read the expert weights of %s", MODEL_DIR);
        return;
    }
    for (l = 0; l < NL; l++) {
        char name[96];
        uint32_t r, c;
        snprintf(name, sizeof name, "model.layers.%d.post_attention_layernorm.weight", l);
        norm_w[l] = st_mini_read(MODEL_DIR "model.safetensors", name, &r, &c);
        CHECK(norm_w[l] && r * c == HID, "%s", name);
        if (!norm_w[l]) return;
    }
    text = mf_read_file(MODEL_DIR "golden.json", &len);
    CHECK(text && mf_json_parse(&doc, text, len) == 0, "golden.json");
    if (!text) return;
    cs = mf_json_at(mf_json_get(doc.root, "cases"), 1);
    printf("encoding  bits/w  rel_rmse  expert_out_rel_err(f32 act)  (q8 act)\n");
    for (enc = MF_ENC_BF16; enc < MF_ENC_COUNT; enc++) {
        double se = 0, sx = 0, ef = 0, eq = 0, en = 0, rm;
        const mf_json *hs = mf_json_get(cs, "hidden_states");
        const mf_json *te = mf_json_get(cs, "topk_experts");
        for (l = 0; l < NL; l++) {
            const mf_json *hl = mf_json_at(hs, (size_t)l), *tl = mf_json_at(te, (size_t)l);
            size_t t, T = hl->count;
            for (e = 0; e < NE; e++)
                for (k = 0; k < 3; k++) {
                    uint32_t rows = k == 1 ? HID : FFN, cols = k == 1 ? FFN : HID, r, c;
                    const float *w = expert_w[l][e][k];
                    mf_quantize_matrix(enc, w, rows, cols, group, enc_buf[e][k]);
                    for (r = 0; r < rows; r++) {
                        mf_dequantize_row(enc, enc_buf[e][k], r, cols, group, row);
                        for (c = 0; c < cols; c++) {
                            double d = (double)row[c] - w[r * cols + c];
                            se += d * d;
                            sx += (double)w[r * cols + c] * w[r * cols + c];
                        }
                    }
                }
            /* Expert outputs on the golden hidden states of this layer's input,
             * RMS-normalised with the post-attention norm weight (real-ish MoE
             * inputs), for the experts the router chose. */
            for (t = 0; t < T; t++) {
                const mf_json *ht = mf_json_at(hl, t), *tt = mf_json_at(tl, t);
                double ms = 0;
                uint32_t i, j, kk;
                for (i = 0; i < HID; i++) ms += mf_json_at(ht, i)->number * mf_json_at(ht, i)->number;
                ms = 1.0 / sqrt(ms / HID + 1e-5);
                for (i = 0; i < HID; i++) {
                    x_d[i] = mf_json_at(ht, i)->number * ms * norm_w[l][i];
                    x[i] = (float)x_d[i];
                }
                for (kk = 0; kk < tt->count; kk++) {
                    int ex = (int)mf_json_at(tt, kk)->number, pass;
                    const float *w1 = expert_w[l][ex][0], *w2 = expert_w[l][ex][1],
                                *w3 = expert_w[l][ex][2];
                    /* float64 reference with the bf16 weights */
                    for (j = 0; j < FFN; j++) {
                        double a = 0, b = 0;
                        for (i = 0; i < HID; i++) {
                            a += (double)w1[j * HID + i] * x_d[i];
                            b += (double)w3[j * HID + i] * x_d[i];
                        }
                        h_d[j] = a / (1 + exp(-a)) * b;
                    }
                    for (i = 0; i < HID; i++) {
                        double a = 0;
                        for (j = 0; j < FFN; j++) a += (double)w2[i * FFN + j] * h_d[j];
                        out_d[i] = a;
                    }
                    for (pass = 0; pass < 2; pass++) {
                        double num = 0, den = 0;
                        if (pass == 0) {
                            mf_matvec(enc, enc_buf[ex][0], x, y1, FFN, HID, group);
                            mf_matvec(enc, enc_buf[ex][2], x, y3, FFN, HID, group);
                        } else {
                            mf_quantize_activations(x, HID, group, xq);
                            mf_matvec_qa(enc, enc_buf[ex][0], xq, y1, FFN, HID, group);
                            mf_matvec_qa(enc, enc_buf[ex][2], xq, y3, FFN, HID, group);
                        }
                        for (j = 0; j < FFN; j++) h[j] = y1[j] / (1.0f + expf(-y1[j])) * y3[j];
                        if (pass == 0) {
                            mf_matvec(enc, enc_buf[ex][1], h, yo, HID, FFN, group);
                        } else {
                            memcpy(hq_in, h, sizeof h);
                            mf_quantize_activations(hq_in, FFN, group, xq);
                            mf_matvec_qa(enc, enc_buf[ex][1], xq, yo, HID, FFN, group);
                        }
                        for (i = 0; i < HID; i++) {
                            num += (yo[i] - out_d[i]) * (yo[i] - out_d[i]);
                            den += out_d[i] * out_d[i];
                        }
                        if (pass == 0) ef += num / den;
                        else eq += num / den;
                    }
                    en += 1;
                }
            }
        }
        rm = sqrt(se / sx);
        ef = sqrt(ef / en);
        eq = sqrt(eq / en);
        printf("%-8s  %6.3f  %8.5f  %12.5f  %12.5f\n", mf_encoding_name(enc),
               mf_encoding_bits(enc, group), rm, ef, eq);
        CHECK(rm <= rmse_bound[enc], "%s: weight rel RMSE %g > %g", mf_encoding_name(enc), rm,
              rmse_bound[enc]);
        /* The expert output error follows the weight error (x ~2 through two
         * layers and the nonlinearity); q8 activations add at most a little
         * on top: sqrt(ef^2 + 0.02^2). */
        CHECK(ef <= 2.0 * rm + 2e-3, "%s: expert output rel err %g (f32 activations)",
              mf_encoding_name(enc), ef);
        CHECK(eq <= sqrt(ef * ef + 0.02 * 0.02), "%s: expert output rel err %g (q8 activations)",
              mf_encoding_name(enc), eq);
    }
    mf_json_free(&doc);
    free(text);
    for (l = 0; l < NL; l++) {
        free(norm_w[l]);
        for (e = 0; e < NE; e++)
            for (k = 0; k < 3; k++) free(expert_w[l][e][k]);
    }
}

/* A KV-cache row at q8 (mf_quantize_kv_q8, docs/encodings.md "q8 KV rows"):
 * levels in [-127, 127]; every value within half a step of its level for
 * rows of normal, tiny (subnormal scale) and near-overflow magnitude; a row
 * beyond f16's range saturates at the largest finite scale (widened values
 * finite, the largest clipped to 127 x 65504) instead of an inf scale that
 * widens to NaN; inf levels clamp, NaN levels are 0; all-zero rows give 0. */
static void test_kv_q8_rows(void)
{
    const float mags[] = {1.0f, 0.3f, 1e-3f, 1e-5f, 3e-7f, 1e4f, 8.0e6f};
    for (size_t m = 0; m < sizeof mags / sizeof mags[0]; m++) {
        float x[32];
        int8_t q[32];
        for (int i = 0; i < 32; i++) x[i] = mags[m] * (float)((i * 37 % 65) - 32) / 32.0f;
        double amax = 0;
        for (int i = 0; i < 32; i++)
            if (fabs(x[i]) > amax) amax = fabs(x[i]);
        uint16_t sh = mf_quantize_kv_q8(x, 32, q);
        double d = mf_f16_to_f32(sh);
        int bad = 0;
        /* (one value at a time: aarch64 GCC 12's vectoriser crashed on this
         * loop written as a reduction of || terms) */
        for (int i = 0; i < 32; i++) {
            if (q[i] < -127) bad++;
            else if (!(fabs(x[i] - d * q[i]) <= 0.5 * d * (1 + 1e-6))) bad++;
        }
        CHECK(bad == 0 && sh < 0x7C00, "kv q8 row of max %g: scale %g, %d values off by more than half a step",
              amax, d, bad);
        /* the scale is f16(max|x| / 127) or, when that clips, the next f16 */
        uint16_t base = mf_f32_to_f16((float)amax / 127.0f);
        CHECK(sh == base || (sh == base + 1 && mf_f16_to_f32(base) * 127.5 < amax),
              "kv q8 row of max %g: scale 0x%04x, f16(max/127) 0x%04x", amax, sh, base);
    }
    float big[8] = {1e7f, -2e7f, 3.0f, 0, 0, 0, 0, 0}, w;
    int8_t q[8];
    uint16_t sh = mf_quantize_kv_q8(big, 8, q);
    w = (float)q[1] * mf_f16_to_f32(sh);
    CHECK(sh == 0x7BFF && q[1] == -127 && q[0] > 0 && w == -127.0f * 65504.0f,
          "kv q8 row beyond f16's range: scale 0x%04x, levels %d %d, widened %g", sh, q[0], q[1], (double)w);
    float odd[4] = {INFINITY, -1.0f, NAN, 0.5f};
    sh = mf_quantize_kv_q8(odd, 4, q);
    CHECK(sh == 0x7BFF && q[0] == 127 && q[2] == 0, "kv q8 row with inf and NaN: scale 0x%04x, levels %d %d",
          sh, q[0], q[2]);
    float zero[4] = {0, 0, -0.0f, 0};
    sh = mf_quantize_kv_q8(zero, 4, q);
    CHECK(sh == 0 && !q[0] && !q[1] && !q[2] && !q[3], "kv q8 zero row: scale 0x%04x", sh);
}

int main(int argc, char **argv)
{
    /* --no-real-weights: the aarch64 suite under qemu-user, where the real
     * weights' quantisation search takes minutes (tests/scripts/aarch64_qemu.sh) */
    int real = !(argc > 1 && !strcmp(argv[1], "--no-real-weights"));
    test_halves();
    test_sizes();
    test_kv_q8_rows();
    test_spec_decode();
    test_random();
    test_simd_exact();
    test_simd_quantize_exact();
    test_simd_special_scales();
    test_qa_padding();
    test_weighted();
    if (real)
        test_real_weights();
    else
        printf("test_real_weights left out (--no-real-weights)\n");
    return mf_test_done("test_quant");
}
