/*
 * runtime/ops.c against independent double-precision math: RMSNorm,
 * mf_expf (max ulp error over a dense sweep), softmax, SiLU/sigmoid, RoPE (HF rotate_half, relative-position property),
 * dot products and matmul over encodings (and that batching tokens never
 * changes a bit), causal attention, top-k with torch's tie order.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../runtime/ops.h"
#include "../runtime/quant.h"
#include "harness.h"

static uint64_t rng = 88172645463325252ull;
static float frand(void) /* uniform in [-1, 1) */
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((double)(rng >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static void fill(float *x, size_t n, float scale)
{
    for (size_t i = 0; i < n; i++) x[i] = frand() * scale;
}

static double rel(double a, double b) { return fabs(a - b) / (fabs(b) > 1e-30 ? fabs(b) : 1e-30); }

static void test_rmsnorm(void)
{
    float x[100], w[100], y[100];
    fill(x, 100, 3.0f);
    fill(w, 100, 1.0f);
    mf_rmsnorm(y, x, w, 100, 1e-5f);
    double ss = 0;
    for (int i = 0; i < 100; i++) ss += (double)x[i] * x[i];
    double r = 1.0 / sqrt(ss / 100 + 1e-5);
    double worst = 0;
    for (int i = 0; i < 100; i++) {
        double e = rel(y[i], w[i] * x[i] * r);
        if (e > worst) worst = e;
    }
    CHECK(worst < 1e-6, "rmsnorm rel error %g", worst);
    /* in place, no weight: unit RMS */
    mf_rmsnorm(x, x, NULL, 100, 0.0f);
    ss = 0;
    for (int i = 0; i < 100; i++) ss += (double)x[i] * x[i];
    CHECK(fabs(ss / 100 - 1.0) < 1e-6, "rms after norm %g", ss / 100);
}

/* Error in units in the last place of the float nearest ref (the ulp of a
 * subnormal is 2^-149). */
static double ulps(float y, double ref)
{
    double u = 0x1p-149;
    if (ref >= 0x1p-126) {
        int e;
        frexp(ref, &e);
        u = ldexp(1.0, e - 24);
    }
    return fabs((double)y - ref) / u;
}

/* Every 61st float of [-104.5, 89] (3.7 million of the 2.2 billion; an
 * exhaustive run gave 1.02 ulp at 59.27), the boundaries, and the special
 * values. The reference is double exp, within 2^-52 of e^x. */
static void test_expf(void)
{
    double worst = 0;
    float wx = 0;
    int bad_range = 0;
    for (uint64_t u = 0; u < 0x100000000ull; u += 61) {
        uint32_t b = (uint32_t)u;
        float x;
        memcpy(&x, &b, sizeof x);
        if (!(x >= -104.5f && x <= 89.0f)) continue;
        double ref = exp((double)x);
        float y = mf_expf(x);
        if (isinf((float)ref) || isinf(y)) { /* overflow exactly where the float of e^x does */
            if (isinf((float)ref) != isinf(y)) bad_range++;
            continue;
        }
        double e = ulps(y, ref);
        if (e > worst) worst = e, wx = x;
    }
    CHECK(worst <= 2.0, "mf_expf max error %.3f ulp at %.9g", worst, (double)wx);
    CHECK(bad_range == 0, "mf_expf overflows where e^x does not (or not where it does): %d", bad_range);
    const float edge[] = {88.7228317f, 88.7228394f, -87.3365479f, -103.278931f, -103.972076f, -104.0f,
                          0x1p-149f, -0x1p-149f, 1e-30f, 0.0f, -0.0f, 0.5f * 0.693147182f};
    for (unsigned i = 0; i < sizeof edge / sizeof edge[0]; i++) {
        double ref = exp((double)edge[i]);
        float y = mf_expf(edge[i]);
        CHECK(isinf((float)ref) ? isinf(y) : ulps(y, ref) <= 2.0, "mf_expf(%a) = %a, e^x %a",
              (double)edge[i], (double)y, ref);
    }
    CHECK(mf_expf(0.0f) == 1.0f, "mf_expf(0) = %a", (double)mf_expf(0.0f));
    CHECK(mf_expf(-INFINITY) == 0.0f && mf_expf(-1000.0f) == 0.0f, "mf_expf(-inf), (-1000) not 0");
    CHECK(isinf(mf_expf(INFINITY)) && mf_expf(INFINITY) > 0 && isinf(mf_expf(1000.0f)),
          "mf_expf(+inf), (1000) not +inf");
    CHECK(isnan(mf_expf(NAN)), "mf_expf(NaN) not NaN");
}

static void test_softmax_silu(void)
{
    float x[37];
    double ref[37], sum = 0;
    fill(x, 37, 20.0f);
    for (int i = 0; i < 37; i++) sum += exp((double)x[i]);
    for (int i = 0; i < 37; i++) ref[i] = exp((double)x[i]) / sum;
    mf_softmax(x, 37);
    double worst = 0, s = 0;
    for (int i = 0; i < 37; i++) {
        double e = fabs(x[i] - ref[i]);
        if (e > worst) worst = e;
        s += x[i];
    }
    CHECK(worst < 1e-6, "softmax error %g", worst);
    CHECK(fabs(s - 1.0) < 1e-6, "softmax sum %g", s);
    /* the softmax's four-lane exp is mf_expf to the bit: e^(x - max), the
     * sum in double, times 1/sum (n = 37: nine groups of four and a tail) */
    float y[37], z[37];
    fill(y, 37, 60.0f);
    y[5] = -INFINITY;
    double zs = 0;
    float ymx = y[0];
    for (int i = 1; i < 37; i++)
        if (y[i] > ymx) ymx = y[i];
    for (int i = 0; i < 37; i++) zs += z[i] = mf_expf(y[i] - ymx);
    for (int i = 0; i < 37; i++) z[i] *= (float)(1.0 / zs);
    mf_softmax(y, 37);
    CHECK(memcmp(y, z, sizeof y) == 0, "softmax is not mf_expf's exp, bit for bit");
    float nan3[5] = {1.0f, NAN, 2.0f, 0.5f, 3.0f};
    mf_softmax(nan3, 5);
    CHECK(isnan(nan3[0]) && isnan(nan3[4]), "softmax of a NaN is not NaN");
    float big[3] = {1000.0f, 1000.0f, -1000.0f};
    mf_softmax(big, 3);
    CHECK(fabsf(big[0] - 0.5f) < 1e-6f && big[2] == 0.0f, "softmax overflow-safe");

    const float v[] = {-20.0f, -3.5f, -0.1f, 0.0f, 0.7f, 4.0f, 30.0f};
    for (int i = 0; i < 7; i++) {
        double sg = 1.0 / (1.0 + exp(-(double)v[i]));
        CHECK(fabs(mf_sigmoid(v[i]) - sg) < 1e-6, "sigmoid(%g)", v[i]);
        CHECK(fabs(mf_silu(v[i]) - v[i] * sg) < 1e-5 * (1 + fabs(v[i])), "silu(%g)", v[i]);
    }
    /* the SwiGLU product, every element (the Helium variant is checked
     * against the same loop in tests/firmware/test_kernels.c) */
    float g[9] = {-20.0f, -3.5f, -0.1f, 0.0f, 0.7f, 4.0f, 30.0f, 95.0f, NAN}, u[9];
    float want[9];
    for (int i = 0; i < 9; i++) u[i] = 0.25f * (float)(i - 4), want[i] = mf_silu(g[i]) * u[i];
    mf_silu_mul(g, u, 9);
    CHECK(memcmp(g, want, sizeof g) == 0, "silu_mul != silu * up");
}

static void test_rope(void)
{
    enum { HD = 16, HEADS = 3 };
    float cs[HD / 2], sn[HD / 2], x[HEADS * HD], orig[HEADS * HD];
    fill(orig, HEADS * HD, 1.0f);
    const float theta = 10000.0f;
    const uint32_t pos = 37;
    memcpy(x, orig, sizeof x);
    mf_rope_table(cs, sn, pos, HD, theta);
    mf_rope_apply(x, HEADS, HD, cs, sn);
    double worst = 0;
    for (int h = 0; h < HEADS; h++)
        for (int i = 0; i < HD; i++) {
            /* HF: q*cos + rotate_half(q)*sin, cos/sin over the duplicated freqs */
            int f = i % (HD / 2);
            double a = pos * pow(theta, -2.0 * f / HD);
            double rot = i < HD / 2 ? -orig[h * HD + i + HD / 2] : orig[h * HD + i - HD / 2];
            double ref = orig[h * HD + i] * cos(a) + rot * sin(a);
            double e = fabs(x[h * HD + i] - ref);
            if (e > worst) worst = e;
        }
    CHECK(worst < 1e-5, "rope vs rotate_half: %g", worst);

    /* position 0 is the identity */
    memcpy(x, orig, sizeof x);
    mf_rope_table(cs, sn, 0, HD, theta);
    mf_rope_apply(x, HEADS, HD, cs, sn);
    CHECK(memcmp(x, orig, sizeof x) == 0, "rope at position 0");

    /* q.k after rotation depends only on the distance */
    float q[HD], k[HD], q1[HD], k1[HD], q2[HD], k2[HD];
    fill(q, HD, 1.0f);
    fill(k, HD, 1.0f);
    memcpy(q1, q, sizeof q);
    memcpy(k1, k, sizeof k);
    memcpy(q2, q, sizeof q);
    memcpy(k2, k, sizeof k);
    mf_rope_table(cs, sn, 10, HD, theta), mf_rope_apply(q1, 1, HD, cs, sn);
    mf_rope_table(cs, sn, 3, HD, theta), mf_rope_apply(k1, 1, HD, cs, sn);
    mf_rope_table(cs, sn, 107, HD, theta), mf_rope_apply(q2, 1, HD, cs, sn);
    mf_rope_table(cs, sn, 100, HD, theta), mf_rope_apply(k2, 1, HD, cs, sn);
    CHECK(fabs(mf_dot_f32(q1, k1, HD) - mf_dot_f32(q2, k2, HD)) < 1e-4, "relative position");
}

static double dot_ref(const float *a, const float *b, uint32_t n)
{
    double s = 0;
    for (uint32_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

/* ops.c's documented order of every dot product: lane j sums the products
 * at i % 8 == j in increasing i, then ((s0+s4)+(s1+s5))+((s2+s6)+(s3+s7)).
 * Written out here in plain floats (ISO C: no contraction into FMAs) and
 * compared bit for bit, on every length to 41 (each tail length). */
static void test_dot_order(void)
{
    float a[41], b[41];
    int bad = 0;
    fill(a, 41, 1.0f);
    fill(b, 41, 3.0f);
    for (uint32_t n = 0; n <= 41; n++) {
        float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        for (uint32_t i = 0; i < n; i++) s[i % 8] += a[i] * b[i];
        float want = ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
        float got = mf_dot_f32(a, b, n);
        if (memcmp(&got, &want, sizeof got)) {
            if (++bad <= 3) fprintf(stderr, "  n %u: %a, the documented order %a\n", n, got, want);
        }
    }
    CHECK(bad == 0, "mf_dot_f32 not in the documented lane order on %d lengths", bad);
}

static void test_dot_matmul(void)
{
    float a[300], b[300];
    fill(a, 300, 1.0f);
    fill(b, 300, 1.0f);
    int ok = 1;
    for (uint32_t n = 0; n <= 300; n += (n < 20 ? 1 : 37)) {
        double r = dot_ref(a, b, n), g = mf_dot_f32(a, b, n);
        if (fabs(g - r) > 1e-5 * (1 + sqrt((double)n))) ok = 0;
    }
    CHECK(ok, "dot vs double");

    /* matmul for several encodings, shapes and token counts */
    const int encs[] = {MF_ENC_F32, MF_ENC_BF16, MF_ENC_F16, MF_ENC_Q8};
    const uint32_t shapes[][2] = {{13, 64}, {7, 100}, {33, 256}, {5, 19}};
    for (int e = 0; e < 4; e++)
        for (int s = 0; s < 4; s++) {
            uint32_t R = shapes[s][0], Cc = shapes[s][1], G = 32, T = 9;
            float *w = malloc(sizeof(float) * R * Cc), *x = malloc(sizeof(float) * T * Cc);
            float *y = malloc(sizeof(float) * T * R), *y1 = malloc(sizeof(float) * R);
            float *row = malloc(sizeof(float) * Cc);
            fill(w, (size_t)R * Cc, 0.5f);
            fill(x, (size_t)T * Cc, 1.0f);
            void *enc = malloc(mf_matrix_bytes(encs[e], R, Cc, G));
            mf_quantize_matrix(encs[e], w, R, Cc, G, enc);
            mf_matmul(encs[e], enc, R, Cc, G, x, Cc, y, R, T);
            double worst = 0;
            int same = 1;
            for (uint32_t t = 0; t < T; t++) {
                mf_matmul(encs[e], enc, R, Cc, G, x + t * Cc, Cc, y1, R, 1);
                if (memcmp(y1, y + t * R, sizeof(float) * R)) same = 0;
                for (uint32_t r = 0; r < R; r++) {
                    mf_dequantize_row(encs[e], enc, r, Cc, G, row);
                    double d = fabs(y[t * R + r] - dot_ref(row, x + t * Cc, Cc));
                    if (d > worst) worst = d;
                }
            }
            CHECK(worst < 1e-4, "matmul enc %d shape %ux%u: error %g vs dequantised weights", encs[e],
                  R, Cc, worst);
            CHECK(same, "matmul enc %d shape %ux%u: batching changed a result", encs[e], R, Cc);
            free(w), free(x), free(y), free(y1), free(row), free(enc);
        }
}

/* Int8 activations (mf_matmul_ex with a qa buffer): within the error of
 * quantising x per group (relative L2 error of the output vs double math
 * over the dequantised weights), and batching never changes a bit. */
static void test_matmul_qa(void)
{
    const int encs[] = {MF_ENC_Q8, MF_ENC_Q4};
    for (int e = 0; e < 2; e++) {
        uint32_t R = 48, Cc = 160, G = 32, T = 6;
        float *w = malloc(sizeof(float) * R * Cc), *x = malloc(sizeof(float) * T * Cc);
        float *y = malloc(sizeof(float) * T * R), *y1 = malloc(sizeof(float) * R);
        float *row = malloc(sizeof(float) * Cc), *yf = malloc(sizeof(float) * T * R);
        void *qa = malloc(mf_qa_bytes(Cc, G) + 16);
        fill(w, (size_t)R * Cc, 0.5f);
        fill(x, (size_t)T * Cc, 1.0f);
        void *enc = malloc(mf_matrix_bytes(encs[e], R, Cc, G));
        mf_quantize_matrix(encs[e], w, R, Cc, G, enc);
        mf_matmul_ex(encs[e], enc, R, Cc, G, x, Cc, y, R, T, qa);
        mf_matmul_ex(encs[e], enc, R, Cc, G, x, Cc, yf, R, T, NULL);
        double num = 0, den = 0;
        int same = 1, float_same = 1;
        for (uint32_t t = 0; t < T; t++) {
            mf_matmul_ex(encs[e], enc, R, Cc, G, x + t * Cc, Cc, y1, R, 1, qa);
            if (memcmp(y1, y + t * R, sizeof(float) * R)) same = 0;
            mf_matmul(encs[e], enc, R, Cc, G, x + t * Cc, Cc, y1, R, 1);
            if (memcmp(y1, yf + t * R, sizeof(float) * R)) float_same = 0;
            for (uint32_t r = 0; r < R; r++) {
                mf_dequantize_row(encs[e], enc, r, Cc, G, row);
                double ref = dot_ref(row, x + t * Cc, Cc);
                num += pow(y[t * R + r] - ref, 2);
                den += ref * ref;
            }
        }
        CHECK(sqrt(num / den) < 0.02, "int8 activations, enc %d: relative error %g", encs[e],
              sqrt(num / den));
        CHECK(sqrt(num / den) > 0, "int8 activations, enc %d: no quantisation happened", encs[e]);
        CHECK(same, "int8 activations, enc %d: batching changed a result", encs[e]);
        CHECK(float_same, "qa == NULL is not mf_matmul, enc %d", encs[e]);
        free(w), free(x), free(y), free(y1), free(row), free(yf), free(qa), free(enc);
    }
}

static void test_attention(void)
{
    enum { HD = 32, NP = 11, STRIDE = 64 };
    float q[HD], k[NP * STRIDE], v[NP * STRIDE], out[HD], att[NP];
    fill(q, HD, 1.0f);
    fill(k, NP * STRIDE, 1.0f);
    fill(v, NP * STRIDE, 1.0f);
    mf_attention_head(out, q, k + 8, v + 8, STRIDE, NP, HD, att);
    double s[NP], mx = -1e300, sum = 0;
    for (int t = 0; t < NP; t++) {
        s[t] = dot_ref(q, k + 8 + t * STRIDE, HD) / sqrt((double)HD);
        if (s[t] > mx) mx = s[t];
    }
    for (int t = 0; t < NP; t++) sum += (s[t] = exp(s[t] - mx));
    double worst = 0;
    for (int i = 0; i < HD; i++) {
        double r = 0;
        for (int t = 0; t < NP; t++) r += s[t] / sum * v[8 + t * STRIDE + i];
        if (fabs(out[i] - r) > worst) worst = fabs(out[i] - r);
    }
    CHECK(worst < 1e-5, "attention error %g", worst);
    /* the probabilities are softmax(mf_dot_f32 * scale) to the bit, for
     * every count of positions (pairs of positions, and the odd one) */
    for (uint32_t np = 1; np <= NP; np++) {
        float ref_att[NP];
        for (uint32_t t = 0; t < np; t++)
            ref_att[t] = mf_dot_f32(q, k + 8 + t * STRIDE, HD) * (float)(1.0 / sqrt((double)HD));
        mf_softmax(ref_att, np);
        mf_attention_head(out, q, k + 8, v + 8, STRIDE, np, HD, att);
        CHECK(memcmp(att, ref_att, sizeof(float) * np) == 0, "attention scores not mf_dot_f32's, n_pos %u", np);
    }
    /* one position: the output is that position's value */
    mf_attention_head(out, q, k, v, STRIDE, 1, HD, att);
    CHECK(memcmp(out, v, sizeof out) == 0, "attention over one position");
}

/* Naive attention of one head in double: softmax(q.k_t / sqrt(hd)) . v_t
 * over rows t of k and v (`stride` floats apart). */
static void attention_ref(double *out, const float *q, const double *k, const double *v,
                          size_t stride, uint32_t np, uint32_t hd)
{
    double s[16], mx = -1e300, sum = 0;
    for (uint32_t t = 0; t < np; t++) {
        double d = 0;
        for (uint32_t i = 0; i < hd; i++) d += (double)q[i] * k[t * stride + i];
        s[t] = d / sqrt((double)hd);
        if (s[t] > mx) mx = s[t];
    }
    for (uint32_t t = 0; t < np; t++) sum += (s[t] = exp(s[t] - mx));
    for (uint32_t i = 0; i < hd; i++) {
        out[i] = 0;
        for (uint32_t t = 0; t < np; t++) out[i] += s[t] / sum * v[t * stride + i];
    }
}

/* Head sizes the tiny model does not have: the vector loops of 16 and 8
 * outputs, their scalar tail (head_dim % 8 != 0) and the one-position
 * score loop (head_dim % 8 != 0), against double math; the f32 cache and
 * the widened f16 / bf16 / q8 caches (ops.h: q8 is int8 times its row's f16
 * scale, scales[off / head_dim] for element offset off), two KV heads
 * interleaved so that the stride and the scale index matter. */
static void test_attention_head_dims(void)
{
    static const uint32_t hds[] = {1, 3, 5, 8, 12, 20, 24, 40, 48};
    enum { NP = 9, MAXHD = 48, NKV = 2 };
    static float q[MAXHD], kf[NP * NKV * MAXHD], vf[NP * NKV * MAXHD], out[MAXHD], att[NP],
        row[MAXHD];
    static double kd[NP * NKV * MAXHD], vd[NP * NKV * MAXHD], ref[MAXHD];
    static uint16_t k16[NP * NKV * MAXHD], v16[NP * NKV * MAXHD], ks[NP * NKV], vs[NP * NKV];
    static int8_t k8[NP * NKV * MAXHD], v8[NP * NKV * MAXHD];
    const int encs[] = {MF_ENC_F32, MF_ENC_F16, MF_ENC_BF16, MF_ENC_Q8};
    for (size_t hi = 0; hi < sizeof hds / sizeof hds[0]; hi++)
        for (int e = 0; e < 4; e++) {
            uint32_t hd = hds[hi], stride = NKV * hd, head = 1, bad_out = 0, bad_att = 0;
            double worst = 0;
            fill(q, hd, 1.0f);
            fill(kf, (size_t)NP * stride, 1.0f);
            fill(vf, (size_t)NP * stride, 2.0f);
            /* the cache rows, encoded here, and their exact values in double */
            for (uint32_t t = 0; t < NP; t++)
                for (uint32_t h = 0; h < NKV; h++) {
                    size_t off = (size_t)t * stride + h * hd;
                    for (int kv = 0; kv < 2; kv++) {
                        const float *x = (kv ? vf : kf) + off;
                        double *xd = (kv ? vd : kd) + off;
                        if (encs[e] == MF_ENC_Q8) {
                            float amax = 0;
                            for (uint32_t i = 0; i < hd; i++) amax = fmaxf(amax, fabsf(x[i]));
                            uint16_t sh = mf_f32_to_f16(amax / 127.0f);
                            double sc = mf_f16_to_f32(sh);
                            (kv ? vs : ks)[off / hd] = sh;
                            for (uint32_t i = 0; i < hd; i++) {
                                long l = lround(x[i] / sc);
                                l = l > 127 ? 127 : l < -127 ? -127 : l;
                                (kv ? v8 : k8)[off + i] = (int8_t)l;
                                xd[i] = (double)(float)(l * sc);
                            }
                        } else {
                            for (uint32_t i = 0; i < hd; i++) {
                                uint16_t b = encs[e] == MF_ENC_F16   ? mf_f32_to_f16(x[i])
                                             : encs[e] == MF_ENC_BF16 ? mf_f32_to_bf16(x[i])
                                                                      : 0;
                                (kv ? v16 : k16)[off + i] = b;
                                xd[i] = encs[e] == MF_ENC_F16    ? mf_f16_to_f32(b)
                                        : encs[e] == MF_ENC_BF16 ? mf_bf16_to_f32(b)
                                                                 : x[i];
                            }
                        }
                    }
                }
            for (uint32_t np = 1; np <= NP; np++) {
                size_t o = (size_t)head * hd;
                attention_ref(ref, q, kd + o, vd + o, stride, np, hd);
                if (encs[e] == MF_ENC_F32)
                    mf_attention_head(out, q, kf + o, vf + o, stride, np, hd, att);
                else if (encs[e] == MF_ENC_Q8)
                    mf_attention_head_kv(out, q, MF_ENC_Q8, k8 + o, v8 + o, ks + head, vs + head,
                                         stride, np, hd, row, att);
                else
                    mf_attention_head_kv(out, q, encs[e], k16 + o, v16 + o, NULL, NULL, stride, np,
                                         hd, row, att);
                for (uint32_t i = 0; i < hd; i++) {
                    double d = fabs(out[i] - ref[i]);
                    if (d > worst) worst = d;
                    if (!(d < 1e-5)) bad_out++;
                }
                /* the scores: softmax of mf_dot_f32 * 1/sqrt(hd), to the bit */
                float ra[NP];
                for (uint32_t t = 0; t < np; t++) {
                    float kr[MAXHD];
                    for (uint32_t i = 0; i < hd; i++) kr[i] = (float)kd[o + t * stride + i];
                    ra[t] = mf_dot_f32(q, kr, hd) * (float)(1.0 / sqrt((double)hd));
                }
                mf_softmax(ra, np);
                bad_att += memcmp(ra, att, sizeof(float) * np) != 0;
            }
            CHECK(bad_out == 0, "attention %s head_dim %u: %u outputs off double math (worst %g)",
                  mf_encoding_name(encs[e]), hd, bad_out, worst);
            CHECK(bad_att == 0, "attention %s head_dim %u: scores not softmax(mf_dot_f32 * scale) on %u "
                  "position counts", mf_encoding_name(encs[e]), hd, bad_att);
        }
}

/* The model's RoPE tables (mf_rope_inv_freq once, mf_rope_angles per
 * position): inv_freq[i] = 1 / theta^(2i / head_dim) rounded to float as
 * transformers computes it, the angle pos * inv_freq in double. */
static void test_rope_tables(void)
{
    static const uint32_t hds[] = {2, 6, 16, 64, 128};
    static const float thetas[] = {10000.0f, 1000000.0f, 500.0f};
    static const uint32_t poss[] = {0, 1, 7, 255, 4095, 32767};
    float inv[64], cs[64], sn[64];
    int bad = 0, cases = 0;
    for (size_t h = 0; h < 5; h++)
        for (size_t th = 0; th < 3; th++) {
            uint32_t hd = hds[h], half = hd / 2;
            mf_rope_inv_freq(inv, hd, thetas[th]);
            for (size_t p = 0; p < 6; p++) {
                mf_rope_angles(cs, sn, poss[p], half, inv);
                for (uint32_t i = 0; i < half; i++) {
                    float invr = (float)(1.0 / pow((double)thetas[th], 2.0 * i / hd));
                    double a = (double)poss[p] * invr;
                    bad += inv[i] != invr || fabs(cs[i] - cos(a)) > 0x1p-24 ||
                           fabs(sn[i] - sin(a)) > 0x1p-24;
                    cases++;
                }
            }
        }
    CHECK(bad == 0, "rope inv_freq / angles: %d of %d off the formula", bad, cases);
}

static void test_topk(void)
{
    const float x[] = {0.1f, 0.5f, 0.3f, 0.5f, 0.9f, 0.3f, 0.0f, 0.9f};
    uint32_t idx[5];
    mf_topk(x, 8, 5, idx);
    const uint32_t want[] = {4, 7, 1, 3, 2};
    CHECK(memcmp(idx, want, sizeof want) == 0, "topk with ties: %u %u %u %u %u", idx[0], idx[1],
          idx[2], idx[3], idx[4]);
    /* random: against a brute-force rank count */
    float y[64];
    int ok = 1;
    for (int trial = 0; trial < 50; trial++) {
        for (int i = 0; i < 64; i++) y[i] = (float)(int)(frand() * 8); /* many ties */
        uint32_t k = 1 + trial % 8, got[8];
        mf_topk(y, 64, k, got);
        for (uint32_t j = 0; j < k; j++) {
            uint32_t rank = 0; /* elements ranking before got[j] */
            for (uint32_t i = 0; i < 64; i++)
                if (y[i] > y[got[j]] || (y[i] == y[got[j]] && i < got[j])) rank++;
            if (rank != j) ok = 0;
        }
    }
    CHECK(ok, "topk order vs rank count");
}

int main(void)
{
    test_rmsnorm();
    test_expf();
    test_softmax_silu();
    test_rope();
    test_dot_order();
    test_dot_matmul();
    test_matmul_qa();
    test_attention();
    test_attention_head_dims();
    test_rope_tables();
    test_topk();
    return mf_test_done("test_ops");
}
