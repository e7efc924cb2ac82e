/*
 * Importance-weighted quantisation (mf_quantize_matrix_weighted) vs plain,
 * measured on expert outputs of the tiny model: calibration = golden cases 0
 * and 2 (the mean square of every input element of w1/w3 over all their
 * tokens' RMS-normalised hidden states, and of w2's input computed in
 * float64 for every expert on those tokens; importance = the square root
 * of that, which measured best among powers 0.5, 1, 2), evaluation = case 1 through
 * the experts the router chose (as in tests/test_quant.c).
 *   make imatrix-study   (mk/quant.mk)
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../runtime/quant.h"
#include "../../tools/lib/json.h"
#include "st_mini.h"

#define DIR "models/tiny-shakespeare-moe/"
#define NL 4
#define NE 16
#define H 128
#define F 256

static float *W[NL][NE][3], *normw[NL];
static double imp13[NL][H], imp2[NL][NE][F];

static void norm_in(const mf_json *ht, const float *nw, double *x)
{
    double ms = 0;
    int i;
    for (i = 0; i < H; i++) ms += mf_json_at(ht, i)->number * mf_json_at(ht, i)->number;
    ms = 1.0 / sqrt(ms / H + 1e-5);
    for (i = 0; i < H; i++) x[i] = mf_json_at(ht, i)->number * ms * nw[i];
}

static void expert_ref(int l, int e, const double *x, double *h, double *out)
{
    int i, j;
    for (j = 0; j < F; j++) {
        double a = 0, b = 0;
        for (i = 0; i < H; i++) {
            a += (double)W[l][e][0][j * H + i] * x[i];
            b += (double)W[l][e][2][j * H + i] * x[i];
        }
        h[j] = a / (1 + exp(-a)) * b;
    }
    if (out)
        for (i = 0; i < H; i++) {
            double a = 0;
            for (j = 0; j < F; j++) a += (double)W[l][e][1][i * F + j] * h[j];
            out[i] = a;
        }
}

int main(void)
{
    mf_json_doc doc;
    size_t len;
    char *text = mf_read_file(DIR "golden.json", &len);
    const mf_json *cases;
    static uint8_t buf[2][NE][3][F * H];
    static float imp_f[F];
    int l, e, k, c, enc, weighted;
    uint32_t r, cc;
    double x[H], h[F], out[H];
    if (!text || mf_json_parse(&doc, text, len)) return 1;
    cases = mf_json_get(doc.root, "cases");
    for (l = 0; l < NL; l++) {
        char name[96];
        snprintf(name, sizeof name, "model.layers.%d.post_attention_layernorm.weight", l);
        normw[l] = st_mini_read(DIR "model.safetensors", name, &r, &cc);
        for (e = 0; e < NE; e++)
            for (k = 0; k < 3; k++) {
                snprintf(name, sizeof name, "model.layers.%d.block_sparse_moe.experts.%d.w%d.weight", l,
                         e, k + 1);
                W[l][e][k] = st_mini_read(DIR "model.safetensors", name, &r, &cc);
                if (!W[l][e][k]) return 1;
            }
    }
    /* calibration statistics */
    for (c = 0; c < 3; c += 2) {
        const mf_json *hs = mf_json_get(mf_json_at(cases, c), "hidden_states");
        for (l = 0; l < NL; l++) {
            const mf_json *hl = mf_json_at(hs, l);
            size_t t;
            for (t = 0; t < hl->count; t++) {
                int i;
                norm_in(mf_json_at(hl, t), normw[l], x);
                for (i = 0; i < H; i++) imp13[l][i] += x[i] * x[i];
                for (e = 0; e < NE; e++) {
                    expert_ref(l, e, x, h, NULL);
                    for (i = 0; i < F; i++) imp2[l][e][i] += h[i] * h[i];
                }
            }
        }
    }
    printf("encoding,weighted,weight_rel_rmse,expert_out_rel_err_case1\n");
    for (enc = MF_ENC_Q4; enc <= MF_ENC_Q2; enc++)
        for (weighted = 0; weighted <= 1; weighted++) {
            double se = 0, sx = 0, err = 0, n = 0;
            const mf_json *cs = mf_json_at(cases, 1);
            const mf_json *hs = mf_json_get(cs, "hidden_states"), *te = mf_json_get(cs, "topk_experts");
            for (l = 0; l < NL; l++) {
                const mf_json *hl = mf_json_at(hs, l), *tl = mf_json_at(te, l);
                size_t t;
                for (e = 0; e < NE; e++)
                    for (k = 0; k < 3; k++) {
                        uint32_t rows = k == 1 ? H : F, cols = k == 1 ? F : H, i;
                        double mean = 0;
                        const double *src = k == 1 ? imp2[l][e] : imp13[l];
                        for (i = 0; i < cols; i++) mean += src[i] / cols;
                        for (i = 0; i < cols; i++) imp_f[i] = (float)sqrt(src[i] + 1e-3 * mean);
                        mf_quantize_matrix_weighted(enc, W[l][e][k], rows, cols, 32,
                                                    weighted ? imp_f : NULL, buf[0][e][k]);
                        for (r = 0; r < rows; r++) {
                            float row[F];
                            mf_dequantize_row(enc, buf[0][e][k], r, cols, 32, row);
                            for (i = 0; i < cols; i++) {
                                double d = row[i] - W[l][e][k][r * cols + i];
                                se += d * d;
                                sx += (double)W[l][e][k][r * cols + i] * W[l][e][k][r * cols + i];
                            }
                        }
                    }
                for (t = 0; t < hl->count; t++) {
                    const mf_json *tt = mf_json_at(tl, t);
                    float xf[H], y1[F], y3[F], hf[F], yo[H];
                    size_t kk;
                    int i;
                    norm_in(mf_json_at(hl, t), normw[l], x);
                    for (i = 0; i < H; i++) xf[i] = (float)x[i];
                    for (kk = 0; kk < tt->count; kk++) {
                        int ex = (int)mf_json_at(tt, kk)->number;
                        double num = 0, den = 0;
                        expert_ref(l, ex, x, h, out);
                        mf_matvec(enc, buf[0][ex][0], xf, y1, F, H, 32);
                        mf_matvec(enc, buf[0][ex][2], xf, y3, F, H, 32);
                        for (i = 0; i < F; i++) hf[i] = y1[i] / (1.0f + expf(-y1[i])) * y3[i];
                        mf_matvec(enc, buf[0][ex][1], hf, yo, H, F, 32);
                        for (i = 0; i < H; i++) {
                            num += (yo[i] - out[i]) * (yo[i] - out[i]);
                            den += out[i] * out[i];
                        }
                        err += num / den;
                        n++;
                    }
                }
            }
            printf("%s,%d,%.5f,%.5f\n", mf_encoding_name(enc), weighted, sqrt(se / sx), sqrt(err / n));
            fflush(stdout);
        }
    (void)buf[1];
    return 0;
}
