/* moeflash trace IMG (--text FILE | --ids FILE) --out OUT.json [runtime options]
 * Teacher-forces FILE's tokens, after the BOS when the tokenizer has one (or
 * the ids listed in FILE, as given), and writes
 *   {"tokens": [T], "logits": [T][vocab], "experts": [L][T][k], "weights": [L][T][k]}
 * (experts ordered by weight, highest first, as the route observer sees them). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_common.h"
#include "commands.h"

static const char *USAGE = "usage: moeflash trace IMG (--text FILE | --ids FILE) --out OUT.json "
                           "[--slots N | --expert-ram BYTES] [--batch N]\n";

typedef struct {
    uint32_t T, k;
    uint32_t *experts; /* [L][T][k] */
    float *weights;
} trace_rec;

static void observe(void *user, uint32_t layer, uint32_t pos, const uint32_t *experts,
                    const float *weights, uint32_t k)
{
    trace_rec *r = user;
    size_t base = ((size_t)layer * r->T + pos) * r->k;
    for (uint32_t j = 0; j < k && j < r->k; j++) {
        r->experts[base + j] = experts[j];
        r->weights[base + j] = weights[j];
    }
}

int cmd_trace(int argc, char **argv)
{
    const char *C = "trace";
    static cli_model cm;
    memset(&cm, 0, sizeof cm);
    mf_options_default(&cm.opt);
    const char *img = NULL, *text_path = NULL, *ids_path = NULL, *out_path = NULL;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        int r = cli_runtime_option(C, argc, argv, &i, &cm);
        if (r < 0) return 2;
        if (r > 0) continue;
        if (!strcmp(a, "--text")) {
            if (!(text_path = cli_value(C, argc, argv, &i))) return 2;
        } else if (!strcmp(a, "--ids")) {
            if (!(ids_path = cli_value(C, argc, argv, &i))) return 2;
        } else if (!strcmp(a, "--out")) {
            if (!(out_path = cli_value(C, argc, argv, &i))) return 2;
        } else if ((r = cli_positional(C, a, &img, USAGE)) != CLI_GO_ON) {
            return r;
        }
    }
    if (!img || !(text_path || ids_path) || (text_path && ids_path) || !out_path) {
        fprintf(stderr, "moeflash trace: %s\n%s",
                !img                      ? "missing IMG"
                : !(text_path || ids_path) ? "missing --text or --ids"
                : text_path && ids_path    ? "--text and --ids exclude each other"
                                           : "missing --out",
                USAGE);
        return 2;
    }
    const char *input = ids_path ? ids_path : text_path;
    int status = 1, rc;
    uint32_t *ids = NULL;
    float *logits = NULL;
    trace_rec rec = {0, 0, NULL, NULL};
    FILE *f = NULL;
    if (cli_open(C, img, &cm)) goto done;
    mf_model *m = cm.m;
    mf_info info;
    mf_model_info(m, &info);
    uint32_t T = 0, V = info.vocab;
    if (cli_load_tokens(C, &cm, text_path, ids_path, &ids, &T)) goto done;
    /* one window of the whole text: the BOS first, as tokenizer(text) */
    if (text_path && cli_bos_windows(C, m, UINT32_MAX, &ids, &T)) goto done;
    if (T > info.context_len) {
        fprintf(stderr, "moeflash trace: '%s' has %u tokens, more than the context (%u; --context)\n",
                input, T, info.context_len);
        goto done;
    }
    rec.T = T;
    rec.k = info.top_k;
    rec.experts = calloc((size_t)info.n_layers * T * info.top_k, sizeof(uint32_t));
    rec.weights = calloc((size_t)info.n_layers * T * info.top_k, sizeof(float));
    logits = malloc(sizeof(float) * (size_t)T * V);
    if (!rec.experts || !rec.weights || !logits) goto oom;
    mf_set_route_observer(m, observe, &rec);
    rc = mf_feed_all(m, ids, T, logits);
    if (rc) {
        fprintf(stderr, "moeflash trace: %s\n", mf_strerror(rc));
        goto done;
    }
    f = fopen(out_path, "w");
    if (!f) {
        fprintf(stderr, "moeflash trace: cannot write '%s'\n", out_path);
        goto done;
    }
    fprintf(f, "{\"tokens\": [");
    for (uint32_t t = 0; t < T; t++) fprintf(f, "%s%u", t ? ", " : "", ids[t]);
    fprintf(f, "],\n\"logits\": [");
    for (uint32_t t = 0; t < T; t++) {
        fprintf(f, "%s[", t ? ",\n" : "");
        for (uint32_t j = 0; j < V; j++) fprintf(f, "%s%.9g", j ? ", " : "", logits[(size_t)t * V + j]);
        fputc(']', f);
    }
    for (int pass = 0; pass < 2; pass++) {
        fprintf(f, "],\n\"%s\": [", pass ? "weights" : "experts");
        for (uint32_t l = 0; l < info.n_layers; l++) {
            fprintf(f, "%s[", l ? ",\n" : "");
            for (uint32_t t = 0; t < T; t++) {
                fprintf(f, "%s[", t ? ", " : "");
                for (uint32_t j = 0; j < info.top_k; j++) {
                    size_t i = ((size_t)l * T + t) * info.top_k + j;
                    if (pass)
                        fprintf(f, "%s%.9g", j ? ", " : "", rec.weights[i]);
                    else
                        fprintf(f, "%s%u", j ? ", " : "", rec.experts[i]);
                }
                fputc(']', f);
            }
            fputc(']', f);
        }
    }
    fprintf(f, "]}\n");
    if (fclose(f) != 0) {
        f = NULL;
        fprintf(stderr, "moeflash trace: error writing '%s'\n", out_path);
        goto done;
    }
    f = NULL;
    fprintf(stderr, "trace: %u tokens, %u layers -> %s\n", T, info.n_layers, out_path);
    status = 0;
    goto done;
oom:
    fprintf(stderr, "moeflash trace: out of memory\n");
done:
    if (f) fclose(f);
    free(rec.experts);
    free(rec.weights);
    free(logits);
    free(ids);
    cli_close(&cm);
    return status;
}
