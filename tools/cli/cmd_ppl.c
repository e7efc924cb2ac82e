/* moeflash ppl IMG (--text FILE | --ids FILE) [--window 256] [--windows N] [runtime options]
 * Perplexity by the golden val_protocol: the text's tokens cut into
 * non-overlapping windows from offset 0 (the tail that does not fill a
 * window is dropped), each window scored from an empty context on its
 * window-1 next-token predictions; prints total nats / count / ln 2 as bits
 * per byte (byte vocabulary) or bits per token (BPE). Progress on stderr. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_common.h"
#include "commands.h"

static const char *USAGE = "usage: moeflash ppl IMG (--text FILE | --ids FILE) [--window 256] [--windows N] "
                           "[--slots N | --expert-ram BYTES] [--batch N] [--quiet]\n";

int cmd_ppl(int argc, char **argv)
{
    const char *C = "ppl";
    static cli_model cm;
    memset(&cm, 0, sizeof cm);
    mf_options_default(&cm.opt);
    const char *img = NULL, *text_path = NULL, *ids_path = NULL;
    uint64_t window = 256, max_windows = 0;
    int quiet = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v;
        int r = cli_runtime_option(C, argc, argv, &i, &cm);
        if (r < 0) return 2;
        if (r > 0) continue;
        if (!strcmp(a, "--text")) {
            if (!(text_path = cli_value(C, argc, argv, &i))) return 2;
        } else if (!strcmp(a, "--ids")) {
            if (!(ids_path = cli_value(C, argc, argv, &i))) return 2;
        } else if (!strcmp(a, "--window") || !strcmp(a, "--windows")) {
            uint64_t *dst = !strcmp(a, "--window") ? &window : &max_windows;
            if (!(v = cli_value(C, argc, argv, &i))) return 2;
            if (cli_parse_u64(v, dst) || *dst > 0xFFFFFFFFu || (dst == &window && *dst < 2)) {
                fprintf(stderr, "moeflash ppl: %s: expected an integer%s, got '%s'\n", a,
                        dst == &window ? " >= 2" : "", v);
                return 2;
            }
        } else if (!strcmp(a, "--quiet")) {
            quiet = 1;
        } else if ((r = cli_positional(C, a, &img, USAGE)) != CLI_GO_ON) {
            return r;
        }
    }
    if (!img || !(text_path || ids_path) || (text_path && ids_path)) {
        fprintf(stderr, "moeflash ppl: %s\n%s",
                !img                       ? "missing IMG"
                : !(text_path || ids_path) ? "missing --text or --ids"
                                           : "--text and --ids exclude each other",
                USAGE);
        return 2;
    }
    const char *input = ids_path ? ids_path : text_path;
    if (!cm.opt.context_len) cm.opt.context_len = (uint32_t)window;
    if (!cm.opt.prefill_batch) cm.opt.prefill_batch = (uint32_t)window;
    int status = 1, rc;
    uint32_t *ids = NULL;
    float *logits = NULL;
    if (cli_open(C, img, &cm)) goto done;
    mf_model *m = cm.m;
    uint32_t n_ids = 0, V = mf_vocab_size(m);
    mf_info info;
    mf_model_info(m, &info);
    if (window > info.context_len) {
        fprintf(stderr, "moeflash ppl: --window %llu exceeds the context (%u)\n",
                (unsigned long long)window, info.context_len);
        goto done;
    }
    if (cli_load_tokens(C, &cm, text_path, ids_path, &ids, &n_ids)) goto done;
    uint64_t n_win = n_ids / window;
    if (max_windows && n_win > max_windows) n_win = max_windows;
    if (n_win == 0) {
        fprintf(stderr, "moeflash ppl: '%s' has %u tokens, fewer than one window of %llu\n",
                input, n_ids, (unsigned long long)window);
        goto done;
    }
    logits = malloc(sizeof(float) * (size_t)window * V);
    if (!logits) {
        fprintf(stderr, "moeflash ppl: out of memory\n");
        goto done;
    }
    double nats = 0.0, t0 = cli_now();
    uint64_t count = 0;
    for (uint64_t w = 0; w < n_win; w++) {
        const uint32_t *tok = ids + w * window;
        mf_reset(m);
        rc = mf_feed_all(m, tok, (uint32_t)window, logits);
        if (rc) {
            fprintf(stderr, "moeflash ppl: window %llu: %s\n", (unsigned long long)w, mf_strerror(rc));
            goto done;
        }
        for (uint32_t i = 0; i + 1 < window; i++) {
            nats += mf_token_nats(logits + (size_t)i * V, V, tok[i + 1]);
            count++;
        }
        if (!quiet && (w % 25 == 24 || w + 1 == n_win))
            fprintf(stderr, "ppl: %llu/%llu windows, %.5f bits so far, %.1f s\n",
                    (unsigned long long)(w + 1), (unsigned long long)n_win,
                    nats / (double)count / log(2.0), cli_now() - t0);
    }
    int bytes = !info.has_tokenizer && V == 256;
    printf("%.6f bits/%s (%llu windows of %llu, %llu predictions)\n", nats / (double)count / log(2.0),
           bytes ? "byte" : "token", (unsigned long long)n_win, (unsigned long long)window,
           (unsigned long long)count);
    status = 0;
done:
    free(logits);
    free(ids);
    cli_close(&cm);
    return status;
}
