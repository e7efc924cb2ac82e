/* Option parsing and image opening shared by the run commands; --help for every command. */
#include "cli_common.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../runtime/quant.h"
#include "../lib/idsfile.h"
#include "../lib/json.h"

int cli_parse_u64(const char *s, uint64_t *out)
{
    /* strtoull skips leading spaces and takes a sign (" -1" is 2^64 - 1):
     * only digits here */
    if (!s || !isdigit((unsigned char)*s)) return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end) return -1;
    *out = (uint64_t)v;
    return 0;
}

int cli_parse_f(const char *s, double *out)
{
    if (!s || !*s || isspace((unsigned char)*s)) return -1;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || !isfinite(v)) return -1; /* inf and nan are no setting */
    *out = v;
    return 0;
}

const char *cli_value(const char *cmd, int argc, char **argv, int *i)
{
    if (*i + 1 >= argc) {
        fprintf(stderr, "moeflash %s: option %s needs a value\n", cmd, argv[*i]);
        return NULL;
    }
    return argv[++*i];
}

static int u32_opt(const char *cmd, const char *name, const char *v, uint32_t min, uint32_t *out)
{
    uint64_t x;
    if (cli_parse_u64(v, &x) || x < min || x > 0xFFFFFFFFu) {
        fprintf(stderr, "moeflash %s: %s: expected an integer >= %u, got '%s'\n", cmd, name, min, v);
        return -1;
    }
    *out = (uint32_t)x;
    return 0;
}

int cli_runtime_option(const char *cmd, int argc, char **argv, int *i, cli_model *cm)
{
    const char *a = argv[*i];
    const char *v;
    if ((!strcmp(a, "--slots") && cm->expert_ram) ||
        (!strcmp(a, "--expert-ram") && cm->opt.expert_slots)) {
        fprintf(stderr, "moeflash %s: give either --slots or --expert-ram, not both\n", cmd);
        return -1;
    }
    if (!strcmp(a, "--slots")) {
        if (!(v = cli_value(cmd, argc, argv, i))) return -1;
        return u32_opt(cmd, a, v, 1, &cm->opt.expert_slots) ? -1 : 1;
    }
    if (!strcmp(a, "--context")) {
        if (!(v = cli_value(cmd, argc, argv, i))) return -1;
        return u32_opt(cmd, a, v, 1, &cm->opt.context_len) ? -1 : 1;
    }
    if (!strcmp(a, "--kv")) {
        if (!(v = cli_value(cmd, argc, argv, i))) return -1;
        if (!strcmp(v, "f32")) cm->opt.kv_encoding = MF_ENC_F32;
        else if (!strcmp(v, "f16")) cm->opt.kv_encoding = MF_ENC_F16;
        else if (!strcmp(v, "bf16")) cm->opt.kv_encoding = MF_ENC_BF16;
        else if (!strcmp(v, "q8")) cm->opt.kv_encoding = MF_ENC_Q8;
        else {
            fprintf(stderr, "moeflash %s: --kv: expected f32, f16, bf16 or q8, got '%s'\n", cmd, v);
            return -1;
        }
        return 1;
    }
    if (!strcmp(a, "--batch")) {
        if (!(v = cli_value(cmd, argc, argv, i))) return -1;
        return u32_opt(cmd, a, v, 1, &cm->opt.prefill_batch) ? -1 : 1;
    }
    if (!strcmp(a, "--verify")) {
        uint32_t x;
        if (!(v = cli_value(cmd, argc, argv, i))) return -1;
        if (u32_opt(cmd, a, v, 0, &x)) return -1;
        if (x > 2) {
            fprintf(stderr, "moeflash %s: --verify: expected 0, 1 or 2, got '%s'\n", cmd, v);
            return -1;
        }
        cm->opt.verify_experts = (int)x;
        return 1;
    }
    if (!strcmp(a, "--policy")) {
        static const char *names[] = {"none", "lru", "lfu", "edgemoe", "belady"};
        if (!(v = cli_value(cmd, argc, argv, i))) return -1;
        for (int k = 0; k < 5; k++)
            if (!strcmp(v, names[k])) {
                cm->opt.policy = k; /* the order of mf_policy */
                return 1;
            }
        fprintf(stderr, "moeflash %s: --policy: expected none, lru, lfu, edgemoe or belady, got '%s'\n",
                cmd, v);
        return -1;
    }
    if (!strcmp(a, "--predictor")) {
        static const char *names[] = {"none", "cooc", "lookahead", "combined", "oracle"};
        if (!(v = cli_value(cmd, argc, argv, i))) return -1;
        for (int k = 0; k < 5; k++)
            if (!strcmp(v, names[k])) {
                cm->opt.predictor = k; /* the order of mf_predictor */
                return 1;
            }
        fprintf(stderr,
                "moeflash %s: --predictor: expected none, cooc, lookahead, combined or oracle, "
                "got '%s'\n",
                cmd, v);
        return -1;
    }
    if (!strcmp(a, "--pin")) {
        if (!(v = cli_value(cmd, argc, argv, i))) return -1;
        return u32_opt(cmd, a, v, 0, &cm->opt.pin_experts) ? -1 : 1;
    }
    if (!strcmp(a, "--prefetch")) {
        if (!(v = cli_value(cmd, argc, argv, i))) return -1;
        return u32_opt(cmd, a, v, 1, &cm->opt.prefetch_budget) ? -1 : 1;
    }
    if (!strcmp(a, "--no-preempt")) {
        cm->opt.no_preempt = 1;
        return 1;
    }
    if (!strcmp(a, "--no-stream")) {
        cm->opt.no_stream = 1;
        return 1;
    }
    if (!strcmp(a, "--float-activations")) {
        cm->opt.float_activations = 1;
        return 1;
    }
    if (!strcmp(a, "--prefetch-min") || !strcmp(a, "--oracle-accuracy")) {
        double x;
        if (!(v = cli_value(cmd, argc, argv, i))) return -1;
        if (cli_parse_f(v, &x) || x < 0 || x > 1) {
            fprintf(stderr, "moeflash %s: %s: expected a probability in [0,1], got '%s'\n", cmd, a, v);
            return -1;
        }
        if (!strcmp(a, "--prefetch-min")) cm->opt.prefetch_min_prob = (float)x;
        else cm->opt.oracle_miss_rate = (float)(1.0 - x);
        return 1;
    }
    if (!strcmp(a, "--fallback-stall-ms")) {
        double x;
        if (!(v = cli_value(cmd, argc, argv, i))) return -1;
        if (cli_parse_f(v, &x) || x < 0 || x > 1e6) {
            fprintf(stderr, "moeflash %s: --fallback-stall-ms: expected milliseconds >= 0, got '%s'\n",
                    cmd, v);
            return -1;
        }
        cm->opt.fallback_stall_ns = (uint64_t)(x * 1e6);
        return 1;
    }
    if (!strcmp(a, "--expert-ram")) {
        if (!(v = cli_value(cmd, argc, argv, i))) return -1;
        if (cli_parse_u64(v, &cm->expert_ram) || cm->expert_ram == 0) {
            fprintf(stderr, "moeflash %s: --expert-ram: expected a byte count > 0, got '%s'\n",
                    cmd, v);
            return -1;
        }
        return 1;
    }
    return 0;
}

int cli_check_options(const char *cmd, const mf_info *info, cli_model *cm)
{
    /* The oracle reads the future from a trace that only bench records. */
    if (cm->opt.predictor == MF_PREDICT_ORACLE && strcmp(cmd, "bench")) {
        fprintf(stderr,
                "moeflash %s: --predictor oracle needs the recorded routing of the text, which only "
                "`moeflash bench` records\n",
                cmd);
        return 1;
    }
    /* The runtime would say MF_E_ARG; name the option instead. */
    if (cm->opt.context_len > info->max_seq) {
        fprintf(stderr, "moeflash %s: --context %u exceeds the image's max_seq (%u)\n", cmd,
                cm->opt.context_len, info->max_seq);
        return 1;
    }
    if (cm->opt.expert_slots && cm->opt.expert_slots < info->top_k) {
        fprintf(stderr, "moeflash %s: --slots %u is fewer than the model's top_k (%u)\n", cmd,
                cm->opt.expert_slots, info->top_k);
        return 1;
    }
    if (cm->expert_ram) {
        uint64_t slots = info->expert_bytes ? cm->expert_ram / info->expert_bytes : 0;
        if (slots < info->top_k) {
            fprintf(stderr,
                    "moeflash %s: --expert-ram %llu holds %llu experts of %zu bytes; at least "
                    "top_k = %u are needed (%llu bytes)\n",
                    cmd, (unsigned long long)cm->expert_ram, (unsigned long long)slots,
                    info->expert_bytes, info->top_k,
                    (unsigned long long)info->top_k * info->expert_bytes);
            return 1;
        }
        cm->opt.expert_slots = slots > 0xFFFFFFFFu ? 0xFFFFFFFFu : (uint32_t)slots;
    }
    return 0;
}

int cli_open(const char *cmd, const char *path, cli_model *cm)
{
    if (mf_posix_port_open(&cm->port, &cm->st, path) != MF_PORT_OK) {
        fprintf(stderr, "moeflash %s: cannot open image '%s': %s\n", cmd, path, strerror(errno));
        return 1;
    }
    cm->open = 1;
    mf_info info;
    int rc = mf_image_info(&cm->port, &info);
    if (rc) {
        fprintf(stderr, "moeflash %s: %s: %s\n", cmd, path, mf_strerror(rc));
        return 1;
    }
    if (cli_check_options(cmd, &info, cm)) return 1;
    rc = mf_arena_bytes(&cm->port, &cm->opt, &cm->arena_bytes);
    if (rc) {
        fprintf(stderr, "moeflash %s: %s: %s\n", cmd, path, mf_strerror(rc));
        return 1;
    }
    cm->arena = malloc(cm->arena_bytes);
    if (!cm->arena) {
        fprintf(stderr, "moeflash %s: cannot allocate an arena of %zu bytes\n", cmd, cm->arena_bytes);
        return 1;
    }
    rc = mf_init(&cm->m, &cm->port, &cm->opt, cm->arena, cm->arena_bytes);
    if (rc) {
        fprintf(stderr, "moeflash %s: %s: %s\n", cmd, path, mf_strerror(rc));
        return 1;
    }
    return 0;
}

void cli_close(cli_model *cm)
{
    if (cm->open) mf_posix_port_close(&cm->port);
    cm->open = 0;
    free(cm->arena);
    cm->arena = NULL;
    cm->m = NULL;
}

char *cli_read_file(const char *cmd, const char *path, size_t *len)
{
    char *s = mf_read_file(path, len);
    if (!s) fprintf(stderr, "moeflash %s: cannot read '%s': %s\n", cmd, path, strerror(errno));
    return s;
}

double cli_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int cli_load_tokens(const char *cmd, cli_model *cm, const char *text_path, const char *ids_path,
                    uint32_t **ids, uint32_t *n)
{
    const char *path = ids_path ? ids_path : text_path;
    size_t len;
    *ids = NULL;
    *n = 0;
    char *text = cli_read_file(cmd, path, &len);
    if (!text) return -1;
    int rc = 0;
    if (ids_path) {
        char err[128];
        rc = mf_ids_parse(text, len, mf_vocab_size(cm->m), ids, n, err, sizeof err);
        if (rc) fprintf(stderr, "moeflash %s: '%s': %s\n", cmd, path, err);
    } else {
        uint32_t count = 0;
        int err = mf_encode(cm->m, text, len, NULL, 0, &count);
        if (!err) {
            *ids = malloc(sizeof(uint32_t) * ((size_t)count + 1));
            err = *ids ? mf_encode(cm->m, text, len, *ids, count, &count) : MF_E_ARG;
        }
        if (err) {
            fprintf(stderr, "moeflash %s: cannot encode '%s': %s\n", cmd, path,
                    *ids ? mf_strerror(err) : "out of memory");
            free(*ids);
            *ids = NULL;
            rc = -1;
        } else {
            *n = count;
        }
    }
    if (!rc && *n == 0) {
        fprintf(stderr, "moeflash %s: '%s' holds no tokens\n", cmd, path);
        free(*ids);
        *ids = NULL;
        rc = -1;
    }
    free(text);
    return rc;
}

const char CLI_RUN_OPTIONS[] =
    "RUN options: [--context N] [--kv f32|f16|bf16|q8] [--slots N | --expert-ram BYTES] [--batch N]\n"
    "  [--policy none|lru|lfu|edgemoe|belady] [--predictor none|cooc|lookahead|combined]\n"
    "  [--pin N] [--prefetch N] [--prefetch-min P] [--verify 0|1|2] [--float-activations]\n"
    "  [--fallback-stall-ms MS] (read the image's low-bit copy when a miss would stall longer)\n"
    "  [--no-preempt] (demand reads wait behind speculative ones even if the port can cancel)\n"
    "  [--no-stream] (an expert computes only once its whole read is in, even if the port can\n"
    "   wait for part of it)\n"
    "  bench only: [--predictor oracle [--oracle-accuracy R]] (the true next routing from the\n"
    "  text's recorded trace, each guess right with probability R: a reference for predictors)\n";

int cli_help(const char *a, const char *usage)
{
    if (strcmp(a, "--help") && strcmp(a, "-h")) return 0;
    fputs(usage, stdout);
    return 1;
}

int cli_positional(const char *cmd, const char *a, const char **img, const char *usage)
{
    if (cli_help(a, usage)) {
        fputs(CLI_RUN_OPTIONS, stdout);
        return 0;
    }
    if (a[0] == '-' && a[1]) {
        fprintf(stderr, "moeflash %s: unknown option '%s'\n%s", cmd, a, usage);
        return 2;
    }
    if (*img) {
        fprintf(stderr, "moeflash %s: unexpected argument '%s'\n%s", cmd, a, usage);
        return 2;
    }
    *img = a;
    return CLI_GO_ON;
}

int cli_feed_windows(const char *cmd, const mf_info *mi, uint32_t *window, uint32_t *sub)
{
    uint32_t batch = mi->prefill_batch ? mi->prefill_batch : 1;
    *window = mi->context_len - mi->context_len % batch;
    *sub = batch * ((64 + batch - 1) / batch);
    if (!*window) {
        fprintf(stderr, "moeflash %s: context %u shorter than --batch %u\n", cmd, mi->context_len,
                batch);
        return 1;
    }
    return 0;
}

int cli_bos_windows(const char *cmd, const mf_model *m, uint32_t W, uint32_t **ids, uint32_t *T)
{
    uint32_t bos = mf_token_bos(m);
    if (bos == MF_NO_TOKEN || *T == 0) return 0;
    if (W < 2) {
        fprintf(stderr, "moeflash %s: windows of %u token hold only the BOS; give a longer --context\n", cmd, W);
        return 1;
    }
    uint64_t n = (uint64_t)*T + (*T + (uint64_t)W - 2) / (W - 1);
    uint32_t *out = n <= UINT32_MAX ? malloc(sizeof *out * (size_t)n) : NULL;
    if (!out) {
        fprintf(stderr, "moeflash %s: out of memory\n", cmd);
        return 1;
    }
    size_t o = 0;
    for (uint32_t i = 0; i < *T;) {
        out[o++] = bos;
        for (uint32_t k = 0; k + 1 < W && i < *T; k++) out[o++] = (*ids)[i++];
    }
    free(*ids);
    *ids = out;
    *T = (uint32_t)o;
    return 0;
}

int cli_teacher_force(mf_model *m, const uint32_t *ids, uint32_t T, uint32_t window, uint32_t sub,
                      uint32_t V, float *logits, uint32_t *window_base, double *nll_bits,
                      uint64_t *nll_n)
{
    for (uint32_t w = 0; w < T; w += window) {
        uint32_t wend = T - w < window ? T : w + window;
        if (w) {
            int rc = mf_reset(m);
            if (rc) return rc;
        }
        if (window_base) *window_base = w;
        for (uint32_t c = w; c < wend; c += sub) {
            uint32_t n = wend - c < sub ? wend - c : sub;
            int rc = mf_feed_all(m, ids + c, n, logits);
            if (rc) return rc;
            for (uint32_t t = 0; t < n; t++) {
                if (c + t + 1 >= wend) break;
                *nll_bits += mf_token_nats(logits + (size_t)t * V, V, ids[c + t + 1]) / log(2.0);
                (*nll_n)++;
            }
        }
    }
    return MF_OK;
}

const mf_sim_profile *cli_profile(const char *cmd, const char *name)
{
    const mf_sim_profile *prof = mf_sim_profile_find(name);
    if (prof) return prof;
    fprintf(stderr, "moeflash %s: unknown profile '%s'; known:", cmd, name);
    for (int i = 0; mf_sim_profile_at(i); i++) fprintf(stderr, " %s", mf_sim_profile_at(i)->name);
    fputc('\n', stderr);
    return NULL;
}
