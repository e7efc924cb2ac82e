/*
 * A minimal reader for one bf16/f32 tensor of a .safetensors file (host
 * only; used by the kernel bench, the encoding study and tests/test_quant.c
 * so they do not depend on tools/lib). Returns a malloc'd float array of
 * the tensor, or NULL; *rows, *cols from a 2-D shape.
 */
#ifndef MF_ST_MINI_H
#define MF_ST_MINI_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static float *st_mini_read(const char *path, const char *name, uint32_t *rows, uint32_t *cols)
{
    FILE *f = fopen(path, "rb");
    unsigned char len8[8];
    uint64_t hlen = 0, b0, b1, n, i;
    char *hdr = NULL, key[256], *p, *q;
    float *out = NULL;
    unsigned char *raw = NULL;
    int bf16;
    if (!f) return NULL;
    if (fread(len8, 1, 8, f) != 8) goto done;
    for (i = 0; i < 8; i++) hlen |= (uint64_t)len8[i] << (8 * i);
    if (hlen > (1u << 26)) goto done;
    hdr = malloc(hlen + 1);
    if (!hdr || fread(hdr, 1, hlen, f) != hlen) goto done;
    hdr[hlen] = 0;
    snprintf(key, sizeof key, "\"%s\":", name);
    p = strstr(hdr, key);
    if (!p) goto done;
    q = strchr(p, '}');
    if (!q) goto done;
    *q = 0;
    bf16 = strstr(p, "\"BF16\"") != NULL;
    if (!bf16 && !strstr(p, "\"F32\"")) goto done;
    p = strstr(p, "\"shape\":[");
    if (!p) goto done;
    switch (sscanf(p, "\"shape\":[%u,%u]", rows, cols)) {
    case 1: *cols = *rows; *rows = 1; break; /* 1-D: one row */
    case 2: break;
    default: goto done;
    }
    p = strstr(p, "\"data_offsets\":[");
    if (!p || sscanf(p, "\"data_offsets\":[%lu,%lu]", (unsigned long *)&b0, (unsigned long *)&b1) != 2)
        goto done;
    n = (uint64_t)*rows * *cols;
    if (b1 - b0 != n * (bf16 ? 2u : 4u)) goto done;
    raw = malloc(b1 - b0);
    out = malloc(n * sizeof(float));
    if (!raw || !out || fseek(f, (long)(8 + hlen + b0), SEEK_SET) != 0 ||
        fread(raw, 1, b1 - b0, f) != b1 - b0) {
        free(out);
        out = NULL;
        goto done;
    }
    for (i = 0; i < n; i++) {
        uint32_t bits = bf16 ? (uint32_t)(raw[2 * i] | raw[2 * i + 1] << 8) << 16
                             : (uint32_t)(raw[4 * i] | raw[4 * i + 1] << 8 | raw[4 * i + 2] << 16 |
                                          (uint32_t)raw[4 * i + 3] << 24);
        memcpy(&out[i], &bits, 4);
    }
done:
    free(raw);
    free(hdr);
    fclose(f);
    return out;
}

#endif
