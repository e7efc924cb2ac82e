/* One-pass SGD for the learned lookahead (lookahead_fit.h). */
#include "lookahead_fit.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../../runtime/image_format.h"

int mf_lookahead_fit_init(mf_lookahead_fit *f, uint32_t L, uint32_t E, uint32_t H, float rate)
{
    memset(f, 0, sizeof *f);
    if (L < 2 || !E || !H) return -1;
    f->L = L;
    f->E = E;
    f->H = H;
    f->rate = rate;
    f->w = calloc((size_t)(L - 1) * E * H, sizeof(float));
    f->b = calloc((size_t)(L - 1) * E, sizeof(float));
    f->scratch = calloc((size_t)H + 2u * E, sizeof(float));
    if (!f->w || !f->b || !f->scratch) {
        mf_lookahead_fit_free(f);
        return -1;
    }
    return 0;
}

void mf_lookahead_fit_free(mf_lookahead_fit *f)
{
    free(f->w);
    free(f->b);
    free(f->scratch);
    f->w = f->b = f->scratch = NULL;
}

static void unit_rms(const float *x, uint32_t H, float *out)
{
    double ss = 0;
    for (uint32_t i = 0; i < H; i++) ss += (double)x[i] * x[i];
    float inv = 1.0f / sqrtf((float)(ss / H) + MF_LOOKAHEAD_EPS);
    for (uint32_t i = 0; i < H; i++) out[i] = x[i] * inv;
}

static void scores(const float *w, const float *b, uint32_t E, uint32_t H, const float *xh, float *z)
{
    for (uint32_t e = 0; e < E; e++) {
        const float *r = w + (size_t)e * H;
        float s = 0.0f;
        for (uint32_t i = 0; i < H; i++) s += r[i] * xh[i];
        z[e] = s + b[e];
    }
}

void mf_lookahead_scores(const float *w, const float *b, uint32_t E, uint32_t H, uint32_t l,
                         const float *x, float *z)
{
    float *xh = malloc(sizeof(float) * H);
    if (!xh) {
        memset(z, 0, sizeof(float) * E);
        return;
    }
    unit_rms(x, H, xh);
    scores(w + (size_t)l * E * H, b + (size_t)l * E, E, H, xh, z);
    free(xh);
}

void mf_lookahead_fit_step(mf_lookahead_fit *f, uint32_t l, const float *x, const uint32_t *next,
                           uint32_t k)
{
    if (l + 1 >= f->L || !k) return;
    uint32_t E = f->E, H = f->H;
    float *xh = f->scratch, *z = xh + H, *g = z + E;
    float *w = f->w + (size_t)l * E * H, *b = f->b + (size_t)l * E;
    unit_rms(x, H, xh);
    scores(w, b, E, H, xh, z);
    float mx = z[0];
    for (uint32_t e = 1; e < E; e++) mx = z[e] > mx ? z[e] : mx;
    double sum = 0;
    for (uint32_t e = 0; e < E; e++) sum += (z[e] = expf(z[e] - mx));
    for (uint32_t e = 0; e < E; e++) g[e] = (float)(z[e] / sum);
    for (uint32_t j = 0; j < k; j++)
        if (next[j] < E) g[next[j]] -= 1.0f / (float)k;
    for (uint32_t e = 0; e < E; e++) {
        float step = f->rate * g[e];
        float *r = w + (size_t)e * H;
        for (uint32_t i = 0; i < H; i++) r[i] -= step * xh[i];
        b[e] -= step;
    }
    f->steps++;
}

size_t mf_lookahead_section_bytes(uint32_t L, uint32_t E, uint32_t H)
{
    return L < 2 ? 0 : 32 + 4 * (size_t)(L - 1) * E * ((size_t)H + 1);
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static void putf(uint8_t *p, float v)
{
    uint32_t u;
    memcpy(&u, &v, 4);
    put32(p, u);
}

void mf_lookahead_encode(const mf_lookahead_fit *f, uint32_t tokens, uint8_t *out)
{
    size_t W = (size_t)(f->L - 1) * f->E * f->H, B = (size_t)(f->L - 1) * f->E;
    memset(out, 0, 32);
    memcpy(out, "MFLA", 4);
    put32(out + 4, 1);
    put32(out + 8, f->L);
    put32(out + 12, f->E);
    put32(out + 16, f->H);
    put32(out + 20, tokens);
    for (size_t i = 0; i < W; i++) putf(out + 32 + 4 * i, f->w[i]);
    for (size_t i = 0; i < B; i++) putf(out + 32 + 4 * (W + i), f->b[i]);
}
