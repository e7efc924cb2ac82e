/*
 * Encoding study: relative RMSE of each low-bit encoding on the tiny model's
 * real expert weights, symmetric vs offset (min + scale), with and without
 * the scale search, at group 32 and 64. Builds quant.c with MF_QUANT_STUDY
 * so the choices can be flipped at run time.
 *   make enc-study   (mk/quant.mk) -> bench/results/encodings_study.csv
 */
#define MF_QUANT_STUDY 1
#include "../../runtime/quant.c"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "st_mini.h"

#define MODEL "models/tiny-shakespeare-moe/model.safetensors"

int main(int argc, char **argv)
{
    const char *path = argc > 1 ? argv[1] : MODEL;
    static float *W[4 * 16 * 3];
    uint32_t R[4 * 16 * 3], C[4 * 16 * 3];
    int nt = 0, l, e, k, enc, off, search, gi;
    static const uint32_t groups[2] = {32, 64};
    float *tmp;
    uint8_t *buf;
    for (l = 0; l < 4; l++)
        for (e = 0; e < 16; e++)
            for (k = 1; k <= 3; k++) {
                char name[128];
                snprintf(name, sizeof name, "model.layers.%d.block_sparse_moe.experts.%d.w%d.weight", l,
                         e, k);
                W[nt] = st_mini_read(path, name, &R[nt], &C[nt]);
                if (!W[nt]) {
                    fprintf(stderr, "cannot read %s from %s\n", name, path);
                    return 1;
                }
                nt++;
            }
    tmp = malloc(256 * 256 * sizeof(float));
    buf = malloc(256 * 256 * 4);
    printf("encoding,group,offset,search,bits_per_weight,rel_rmse\n");
    for (enc = MF_ENC_BF16; enc <= MF_ENC_Q2; enc++)
        for (gi = 0; gi < 2; gi++)
            for (off = 0; off <= 2; off++)
                for (search = 0; search <= 2; search++) {
                    double se = 0, sx = 0;
                    int t;
                    uint32_t r, c;
                    if (enc < MF_ENC_Q4 && (off || search || (enc != MF_ENC_Q8 && gi))) continue;
                    enc_offset[enc] = off;
                    quant_nstep = search == 0 ? 0 : search == 2 ? 20 : 9;
                    quant_nstep_off = search ? 10 : 0;
                    for (t = 0; t < nt; t++) {
                        mf_quantize_matrix(enc, W[t], R[t], C[t], groups[gi], buf);
                        for (r = 0; r < R[t]; r++) {
                            mf_dequantize_row(enc, buf, r, C[t], groups[gi], tmp);
                            for (c = 0; c < C[t]; c++) {
                                double x = W[t][(size_t)r * C[t] + c], d = tmp[c] - x;
                                se += d * d;
                                sx += x * x;
                            }
                        }
                    }
                    printf("%s,%u,%d,%d,%.3f,%.5f\n", mf_encoding_name(enc), groups[gi], off, search,
                           mf_encoding_bits(enc, groups[gi]), sqrt(se / sx));
                }
    return 0;
}
