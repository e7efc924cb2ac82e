/* moeflash profile IMG --text FILE [--out OUT.img] [--max-tokens N] [--window N]
 *   Runs the model over calibration text and stores in the image's
 *   MF_SEC_PREDICTOR section (docs/predictor-format.md): how often each
 *   expert is chosen per layer, and how often expert b is chosen at layer l
 *   together with expert a at layer l-1 (and at l-2) for the same token.
 *   The text is fed in windows of --window tokens (default: the context,
 *   at most 256), the context reset between windows, each window after the
 *   BOS when the tokenizer has one (cli_bos_windows). --out defaults to IMG
 *   (rewritten in place).
 *
 * moeflash profile IMG --eval FILE [--tokens N] [--window N]
 *   Measures, over the first N tokens of FILE (default 1024) fed one at a
 *   time: recall and precision per layer of every predictor (with all
 *   experts' worth of slots, so that only prediction counts), and hits,
 *   misses and flash bytes of every policy at 12.5 %, 25 % and 50 % of the
 *   image's expert bytes (predictor none, then combined). Belady replays the
 *   trace of the first run. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../runtime/image_format.h"
#include "../lib/imagewrite.h"
#include "../lib/lookahead_fit.h"
#include "cli_common.h"
#include "commands.h"

static const char *USAGE =
    "usage: moeflash profile IMG --text FILE [--out OUT.img] [--max-tokens N] [--window N]\n"
    "                            [--no-lookahead]\n"
    "       moeflash profile IMG --eval FILE [--tokens N] [--window N]\n";

typedef struct {
    uint32_t L, E, k, W, H;
    uint16_t *rows; /* [W][L][k] experts of the current window */
    float *resid;   /* [W][L][H] residual rows at each routing (learned lookahead) */
    uint16_t *all;  /* optional [T][L][k] whole trace (eval) */
    uint32_t base;  /* tokens before this window (eval trace) */
} rec_t;

static void observe(void *user, uint32_t layer, uint32_t pos, const uint32_t *experts,
                    const float *weights, uint32_t k)
{
    (void)weights;
    rec_t *r = user;
    if (pos >= r->W || layer >= r->L) return;
    for (uint32_t j = 0; j < k && j < r->k; j++) {
        r->rows[((size_t)pos * r->L + layer) * r->k + j] = (uint16_t)experts[j];
        if (r->all) r->all[(((size_t)r->base + pos) * r->L + layer) * r->k + j] = (uint16_t)experts[j];
    }
}

static void observe_residual(void *user, uint32_t layer, uint32_t pos, const float *x,
                             uint32_t hidden)
{
    rec_t *r = user;
    if (pos >= r->W || layer >= r->L || hidden != r->H || !r->resid) return;
    memcpy(r->resid + ((size_t)pos * r->L + layer) * r->H, x, sizeof(float) * hidden);
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static int encode_text(const char *C, mf_model *m, const char *path, uint32_t **ids, uint32_t *T)
{
    size_t len;
    char *text = cli_read_file(C, path, &len);
    if (!text) return 1;
    int rc = mf_encode(m, text, len, NULL, 0, T);
    if (!rc) {
        *ids = malloc(sizeof(uint32_t) * ((size_t)*T + 1));
        if (!*ids) rc = MF_E_ARENA;
        else rc = mf_encode(m, text, len, *ids, *T, T);
    }
    free(text);
    if (rc) {
        fprintf(stderr, "moeflash %s: cannot encode '%s': %s\n", C, path, mf_strerror(rc));
        return 1;
    }
    if (*T == 0) {
        fprintf(stderr, "moeflash %s: '%s' is empty\n", C, path);
        return 1;
    }
    return 0;
}

/* ---------------------------------------------------------------- profile */

/* The MF_SEC_TOKEN_ROUTES section (docs/predictor-format.md): for each
 * input token w and layer l, the share of w's occurrences that chose each
 * expert, pulled towards the layer's frequency by a prior worth 4 tokens
 * (rare tokens say little), as u8 = round(255 p). */
static void encode_token_routes(uint8_t *out, const uint32_t *troute, const uint32_t *tcount,
                                const uint32_t *freq, uint32_t T, uint32_t V, uint32_t L,
                                uint32_t E)
{
    memset(out, 0, 32);
    memcpy(out, "MFTR", 4);
    put32(out + 4, 1);
    put32(out + 8, V);
    put32(out + 12, L);
    put32(out + 16, E);
    put32(out + 20, T);
    for (uint32_t w = 0; w < V; w++)
        for (uint32_t l = 0; l < L; l++)
            for (uint32_t e = 0; e < E; e++) {
                size_t i = ((size_t)w * L + l) * E + e;
                double q = T ? (double)freq[(size_t)l * E + e] / (double)T : 0.0;
                double p = ((double)troute[i] + 4.0 * q) / ((double)tcount[w] + 4.0);
                if (p > 1.0) p = 1.0;
                out[32 + i] = (uint8_t)(p * 255.0 + 0.5);
            }
}

/* SGD rate of the learned lookahead: one pass at 0.01 over 60,000 tokens
 * gave the tiny model's layers 1-3 top-2 recall 0.791 / 0.773 / 0.800 on
 * held-out text; eight passes, 0.798 / 0.772 / 0.800; one at 0.03, 0.762 /
 * 0.741 / 0.744 (docs/expert-cache.md, lever 11). */
#define LOOKAHEAD_RATE 0.01f

static int do_profile(const char *img, const char *text_path, const char *out_path,
                      uint64_t max_tokens, uint32_t window, int no_lookahead, cli_model *cm)
{
    const char *C = "profile";
    int status = 1;
    uint32_t *ids = NULL;
    uint8_t *sec = NULL, *routes = NULL, *lsec = NULL;
    mf_lookahead_fit fit;
    memset(&fit, 0, sizeof fit);
    uint32_t *tcount = NULL, *troute = NULL;
    rec_t rec;
    memset(&rec, 0, sizeof rec);
    if (cli_open(C, img, cm)) goto done;
    mf_model *m = cm->m;
    mf_info info;
    mf_model_info(m, &info);
    uint32_t T;
    if (encode_text(C, m, text_path, &ids, &T)) goto done;
    uint32_t L = info.n_layers, E = info.n_experts, k = info.top_k;
    uint32_t W = window ? window : (info.context_len < 256 ? info.context_len : 256);
    if (W > info.context_len) W = info.context_len;
    if (cli_bos_windows(C, m, W, &ids, &T)) goto done;
    if (max_tokens && T > max_tokens) T = (uint32_t)max_tokens;
    rec.L = L;
    rec.E = E;
    rec.k = k;
    rec.W = W;
    rec.rows = malloc(sizeof(uint16_t) * (size_t)W * L * k);
    size_t n_words = (size_t)L * E + 2 * (size_t)L * E * E;
    size_t bytes = 32 + 4 * n_words;
    uint32_t *cnt = calloc(n_words, sizeof(uint32_t));
    sec = malloc(bytes);
    if (!rec.rows || !cnt || !sec) {
        free(cnt);
        fprintf(stderr, "moeflash profile: out of memory\n");
        goto done;
    }
    uint32_t *freq = cnt, *c1 = cnt + (size_t)L * E, *c2 = c1 + (size_t)L * E * E;
    /* token routes: per input token, how often each layer chose each expert */
    uint32_t V = info.vocab;
    size_t VLE = (size_t)V * L * E;
    int want_routes = VLE <= MF_TOKEN_ROUTES_MAX_BYTES;
    if (want_routes) {
        tcount = calloc(V, sizeof(uint32_t));
        troute = calloc(VLE, sizeof(uint32_t));
        routes = malloc(32 + VLE);
        if (!tcount || !troute || !routes) {
            free(cnt);
            fprintf(stderr, "moeflash profile: out of memory\n");
            goto done;
        }
    }
    /* learned lookahead: enough tokens, weights small enough for the arena */
    size_t lbytes = mf_lookahead_section_bytes(L, E, info.hidden);
    const char *no_la = no_lookahead ? "--no-lookahead"
                        : L < 2     ? "one layer"
                        : T < MF_LOOKAHEAD_MIN_TOKENS ? "fewer calibration tokens than "
                                                        "MF_LOOKAHEAD_MIN_TOKENS (20000)"
                        : lbytes - 32 > MF_LOOKAHEAD_MAX_BYTES ? "weights above 1 MiB"
                                                               : NULL;
    if (!no_la) {
        rec.H = info.hidden;
        rec.resid = malloc(sizeof(float) * (size_t)W * L * rec.H);
        lsec = malloc(lbytes);
        if (!rec.resid || !lsec || mf_lookahead_fit_init(&fit, L, E, rec.H, LOOKAHEAD_RATE)) {
            free(cnt);
            fprintf(stderr, "moeflash profile: out of memory\n");
            goto done;
        }
        mf_set_residual_observer(m, observe_residual, &rec);
    }
    mf_set_route_observer(m, observe, &rec);
    double t0 = cli_now();
    for (uint32_t done = 0; done < T;) {
        uint32_t n = T - done < W ? T - done : W;
        mf_reset(m);
        int rc = mf_feed(m, ids + done, n);
        if (rc) {
            fprintf(stderr, "moeflash profile: %s\n", mf_strerror(rc));
            free(cnt);
            goto done;
        }
        for (uint32_t t = 0; t < n; t++) {
            const uint16_t *r = rec.rows + (size_t)t * L * k;
            if (troute) {
                uint32_t w = ids[done + t];
                tcount[w]++;
                for (uint32_t l = 0; l < L; l++)
                    for (uint32_t j = 0; j < k; j++) troute[((size_t)w * L + l) * E + r[l * k + j]]++;
            }
            if (rec.resid)
                for (uint32_t l = 0; l + 1 < L; l++) {
                    uint32_t next[64];
                    uint32_t kk = k < 64 ? k : 64;
                    for (uint32_t j = 0; j < kk; j++) next[j] = r[(l + 1) * k + j];
                    mf_lookahead_fit_step(&fit, l, rec.resid + ((size_t)t * L + l) * rec.H, next, kk);
                }
            for (uint32_t l = 0; l < L; l++)
                for (uint32_t j = 0; j < k; j++) {
                    uint32_t b = r[l * k + j];
                    freq[(size_t)l * E + b]++;
                    if (l >= 1)
                        for (uint32_t i = 0; i < k; i++)
                            c1[((size_t)l * E + r[(l - 1) * k + i]) * E + b]++;
                    if (l >= 2)
                        for (uint32_t i = 0; i < k; i++)
                            c2[((size_t)l * E + r[(l - 2) * k + i]) * E + b]++;
                }
        }
        done += n;
        if (T >= 20000 && (done / W) % 64 == 0)
            fprintf(stderr, "profile: %u / %u tokens (%.0f s)\n", done, T, cli_now() - t0);
    }
    memcpy(sec, "MFPR", 4);
    put32(sec + 4, 1);
    put32(sec + 8, L);
    put32(sec + 12, E);
    put32(sec + 16, k);
    put32(sec + 20, T);
    put32(sec + 24, 0);
    put32(sec + 28, 0);
    for (size_t i = 0; i < n_words; i++) put32(sec + 32 + 4 * i, cnt[i]);
    if (want_routes) encode_token_routes(routes, troute, tcount, freq, T, V, L, E);
    if (lsec) mf_lookahead_encode(&fit, T, lsec);
    free(cnt);
    cli_close(cm);
    char err[256];
    mf_extra_section out[3] = {{MF_SEC_PREDICTOR, 3, sec, bytes}};
    int n_out = 1;
    /* a section this profile does not write is dropped: an earlier
     * profile's would no longer match the counts */
    out[n_out++] = want_routes ? (mf_extra_section){MF_SEC_TOKEN_ROUTES, 1, routes, 32 + VLE}
                               : (mf_extra_section){MF_SEC_TOKEN_ROUTES, 0, NULL, 0};
    out[n_out++] = lsec ? (mf_extra_section){MF_SEC_LOOKAHEAD, 1, lsec, lbytes}
                        : (mf_extra_section){MF_SEC_LOOKAHEAD, 0, NULL, 0};
    if (mf_image_copy_with_sections(img, out_path, out, n_out, err, sizeof err)) {
        fprintf(stderr, "moeflash profile: %s\n", err);
        goto done;
    }
    if (!want_routes)
        fprintf(stderr, "profile: no token-routes table (vocab x layers x experts = %zu bytes > %u)\n",
                VLE, (unsigned)MF_TOKEN_ROUTES_MAX_BYTES);
    if (no_la) fprintf(stderr, "profile: no learned lookahead (%s)\n", no_la);
    fprintf(stderr, "profile: %u tokens in %.1f s, %u layers x %u experts -> %s\n", T,
            cli_now() - t0, L, E, out_path);
    status = 0;
done:
    mf_lookahead_fit_free(&fit);
    free(lsec);
    free(rec.resid);
    free(tcount);
    free(troute);
    free(routes);
    free(rec.rows);
    free(sec);
    free(ids);
    cli_close(cm);
    return status;
}

/* ---------------------------------------------------------------- eval */

typedef struct {
    mf_stats st;
    int ok;
} run_result;

/* Feeds ids one at a time (windows of W, reset between) with the options. */
static run_result run_once(const char *img, const mf_options *opt, const uint32_t *ids, uint32_t T,
                           uint32_t W, rec_t *rec, const uint16_t *future)
{
    static cli_model cm;
    run_result r;
    memset(&r, 0, sizeof r);
    memset(&cm, 0, sizeof cm);
    cm.opt = *opt;
    if (cli_open("profile", img, &cm)) {
        cli_close(&cm);
        return r;
    }
    if (rec) mf_set_route_observer(cm.m, observe, rec);
    if (future) mf_set_future_trace(cm.m, future, T);
    for (uint32_t done = 0; done < T; done += W) {
        uint32_t n = T - done < W ? T - done : W;
        mf_reset(cm.m);
        if (rec) rec->base = done;
        for (uint32_t t = 0; t < n; t++) {
            int rc = mf_feed(cm.m, ids + done + t, 1);
            if (rc) {
                fprintf(stderr, "moeflash profile: %s\n", mf_strerror(rc));
                cli_close(&cm);
                return r;
            }
        }
    }
    mf_get_stats(cm.m, &r.st);
    r.ok = 1;
    cli_close(&cm);
    return r;
}

static double ratio(uint64_t a, uint64_t b) { return b ? (double)a / (double)b : 0.0; }

static int do_eval(const char *img, const char *text_path, uint64_t tokens, uint32_t window,
                   cli_model *base)
{
    const char *C = "profile";
    int status = 1;
    uint32_t *ids = NULL;
    rec_t rec;
    memset(&rec, 0, sizeof rec);
    if (cli_open(C, img, base)) goto done;
    mf_info info;
    mf_model_info(base->m, &info);
    uint32_t T;
    if (encode_text(C, base->m, text_path, &ids, &T)) goto done;
    uint32_t L = info.n_layers, E = info.n_experts, k = info.top_k;
    uint32_t W = window ? window : (info.context_len < 256 ? info.context_len : 256);
    if (W > info.context_len) W = info.context_len;
    int bad = cli_bos_windows(C, base->m, W, &ids, &T);
    cli_close(base);
    if (bad) goto done;
    if (T > tokens) T = (uint32_t)tokens;
    rec.L = L;
    rec.E = E;
    rec.k = k;
    rec.W = W;
    rec.rows = malloc(sizeof(uint16_t) * (size_t)W * L * k);
    rec.all = malloc(sizeof(uint16_t) * (size_t)T * L * k);
    if (!rec.rows || !rec.all) goto done;

    mf_options opt = base->opt;
    opt.prefill_batch = 1;
    opt.expert_slots = L * E;
    static const char *pnames[] = {"none", "cooc", "lookahead", "combined"};
    printf("# predictors: %u tokens of %s, one at a time, %u slots (all experts)\n", T, text_path,
           opt.expert_slots);
    printf("predictor  layer  recall  precision  prefetches/token  useful\n");
    run_result trace_run;
    memset(&trace_run, 0, sizeof trace_run);
    for (int p = 0; p <= MF_PREDICT_COMBINED; p++) {
        opt.predictor = p;
        opt.policy = MF_POLICY_LRU;
        run_result r = run_once(img, &opt, ids, T, W, p == 0 ? &rec : NULL, NULL);
        if (!r.ok) goto done;
        if (p == 0) {
            trace_run = r;
            continue;
        }
        double sr = 0;
        for (uint32_t l = 0; l < L && l < MF_STATS_LAYERS; l++) {
            double rc = ratio(r.st.layer_predicted_needed[l], r.st.layer_needed[l]);
            sr += rc;
            printf("%-10s %5u  %6.3f  %9.3f  %16.2f  %6.3f\n", pnames[p], l, rc,
                   ratio(r.st.layer_predicted_needed[l], r.st.layer_predicted[l]),
                   ratio(r.st.layer_prefetches[l], T),
                   ratio(r.st.layer_useful_prefetches[l], r.st.layer_prefetches[l]));
        }
        printf("%-10s  mean  %6.3f  %9.3f  (layers 1..%u: recall %.3f)\n", pnames[p], sr / L,
               ratio(r.st.predicted_needed, r.st.predicted), L - 1,
               L > 1 ? (sr - ratio(r.st.layer_predicted_needed[0], r.st.layer_needed[0])) / (L - 1)
                     : 0.0);
    }
    (void)trace_run;

    static const char *polnames[] = {"none", "lru", "lfu", "edgemoe", "belady"};
    static const double fracs[] = {0.125, 0.25, 0.5};
    printf("\n# policies: hits / lookups, flash MB, %u tokens\n", T);
    printf("expert_ram  slots  predictor  policy   hit_rate  flash_MB  recall_ready\n");
    for (int fi = 0; fi < 3; fi++) {
        uint32_t slots = (uint32_t)(fracs[fi] * L * E + 0.5);
        if (slots < k) slots = k;
        for (int pred = 0; pred <= MF_PREDICT_COMBINED; pred += MF_PREDICT_COMBINED)
            for (int pol = 0; pol <= MF_POLICY_BELADY; pol++) {
                opt.expert_slots = slots;
                opt.policy = pol;
                opt.predictor = pred;
                run_result r = run_once(img, &opt, ids, T, W, NULL,
                                        pol == MF_POLICY_BELADY ? rec.all : NULL);
                if (!r.ok) goto done;
                printf("%8.1f%%  %5u  %-9s  %-7s  %8.3f  %8.1f  %12.3f\n", fracs[fi] * 100.0,
                       slots, pnames[pred], polnames[pol],
                       ratio(r.st.hits, r.st.hits + r.st.misses), r.st.flash_bytes / 1e6,
                       ratio(r.st.ready_needed, r.st.needed));
                fflush(stdout);
            }
    }
    status = 0;
done:
    free(rec.rows);
    free(rec.all);
    free(ids);
    cli_close(base);
    return status;
}

int cmd_profile(int argc, char **argv)
{
    const char *C = "profile";
    static cli_model cm;
    memset(&cm, 0, sizeof cm);
    mf_options_default(&cm.opt);
    const char *img = NULL, *text_path = NULL, *out_path = NULL, *eval_path = NULL;
    uint64_t max_tokens = 0, tokens = 1024, window = 0;
    int no_lookahead = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        int r = cli_runtime_option(C, argc, argv, &i, &cm);
        if (r < 0) return 2;
        if (r > 0) continue;
        const char *v;
        if (!strcmp(a, "--text")) {
            if (!(text_path = cli_value(C, argc, argv, &i))) return 2;
        } else if (!strcmp(a, "--out")) {
            if (!(out_path = cli_value(C, argc, argv, &i))) return 2;
        } else if (!strcmp(a, "--no-lookahead")) {
            no_lookahead = 1;
        } else if (!strcmp(a, "--eval")) {
            if (!(eval_path = cli_value(C, argc, argv, &i))) return 2;
        } else if (!strcmp(a, "--max-tokens") || !strcmp(a, "--tokens") || !strcmp(a, "--window")) {
            if (!(v = cli_value(C, argc, argv, &i))) return 2;
            uint64_t x;
            if (cli_parse_u64(v, &x) || x == 0 || x > 0xFFFFFFFFu) {
                fprintf(stderr, "moeflash profile: %s: expected an integer > 0, got '%s'\n", a, v);
                return 2;
            }
            if (!strcmp(a, "--max-tokens")) max_tokens = x;
            else if (!strcmp(a, "--tokens")) tokens = x;
            else window = x;
        } else if ((r = cli_positional(C, a, &img, USAGE)) != CLI_GO_ON) {
            return r;
        }
    }
    if (!img || (!text_path && !eval_path) || (text_path && eval_path)) {
        fprintf(stderr, "moeflash profile: %s\n%s",
                !img ? "missing IMG" : (text_path && eval_path) ? "--text and --eval exclude each other"
                                                                : "missing --text",
                USAGE);
        return 2;
    }
    if (eval_path) return do_eval(img, eval_path, tokens, (uint32_t)window, &cm);
    /* profiling needs neither prediction nor pinning (the image may have no profile yet) */
    cm.opt.predictor = MF_PREDICT_NONE;
    cm.opt.pin_experts = 0;
    return do_profile(img, text_path, out_path ? out_path : img, max_tokens, (uint32_t)window,
                      no_lookahead, &cm);
}
