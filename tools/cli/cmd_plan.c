/* moeflash plan IMG --ram BYTES [--profile NAME] [--text FILE [--tokens N]] [runtime options]
 *
 * How to spend a RAM budget on an image. The runtime needs one arena
 * (mf_arena_bytes); whatever the resident weights, the KV cache and the
 * activations leave of the budget goes to expert slots. For each
 * configuration of `make bench`'s sweep (policy + predictor: a predictor's
 * tables take arena too) this prints how many slots fit and the arena they
 * make; with --text it also runs each one on the simulated flash of board
 * profile NAME, decoding token by token exactly as `moeflash bench` does,
 * ranks them by tokens/s and prints the options of the fastest.
 *
 * The budget is the arena's: a firmware adds its stack and static data
 * (a few KiB; boards/<name>/README.md gives them per board). --slots,
 * --expert-ram, --policy and --predictor are what plan chooses, so they
 * are refused; the other runtime options (--context, --kv, --batch,
 * --verify, --float-activations, ...) are the deployment's and are kept. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../port/sim/sim_port.h"
#include "../../runtime/image.h"
#include "../../runtime/image_format.h"
#include "../../runtime/quant.h"
#include "cli_common.h"
#include "commands.h"

static const char *USAGE =
    "usage: moeflash plan IMG --ram BYTES [--profile NAME] [--text FILE [--tokens N]]\n"
    "         [--context N] [--kv f32|f16|bf16|q8] [--batch N] [other runtime options]\n"
    "  The expert slots each policy + predictor gets from an arena of BYTES; with --text\n"
    "  each one decoded on the simulated flash of NAME (default mcu-qspi) and ranked.\n";

typedef struct {
    int policy, predictor;
    const char *name, *flags;
} config;

/* `make bench`'s configurations (bench/stream/sweep.sh) */
static const config CONFIGS[] = {
    {MF_POLICY_NONE, MF_PREDICT_NONE, "none", "--policy none"},
    {MF_POLICY_LRU, MF_PREDICT_NONE, "lru", "--policy lru"},
    {MF_POLICY_LFU, MF_PREDICT_NONE, "lfu", "--policy lfu"},
    {MF_POLICY_EDGEMOE, MF_PREDICT_NONE, "edgemoe", "--policy edgemoe"},
    {MF_POLICY_LFU, MF_PREDICT_LOOKAHEAD, "lfu+lookahead", "--policy lfu --predictor lookahead"},
    {MF_POLICY_EDGEMOE, MF_PREDICT_LOOKAHEAD, "edgemoe+lookahead",
     "--policy edgemoe --predictor lookahead"},
    {MF_POLICY_EDGEMOE, MF_PREDICT_COMBINED, "edgemoe+combined",
     "--policy edgemoe --predictor combined"},
};
#define N_CONFIGS (sizeof CONFIGS / sizeof CONFIGS[0])

typedef struct {
    uint32_t slots;      /* 0: not even top_k slots fit */
    size_t arena;        /* mf_arena_bytes at those slots */
    int ran;
    double tokens_per_second, flash_bytes_per_token, stall_share;
} plan_row;

static int arena_at(const mf_port *port, mf_options o, uint32_t slots, size_t *bytes)
{
    o.expert_slots = slots;
    return mf_arena_bytes(port, &o, bytes);
}

/* The most slots (top_k .. every expert) whose arena fits in ram; 0 when
 * top_k slots do not fit. The arena grows with the slots, so a bisection. */
static int most_slots(const mf_port *port, const mf_options *o, const mf_info *info, uint64_t ram,
                      uint32_t *slots, size_t *bytes)
{
    uint32_t lo = info->top_k, hi = info->n_layers * info->n_experts;
    size_t b;
    int rc = arena_at(port, *o, lo, &b);
    *slots = 0;
    *bytes = b;
    if (rc || b > ram) return rc;
    if (o->policy == MF_POLICY_NONE) hi = lo; /* nothing is kept: more slots are unused RAM */
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo + 1) / 2;
        if ((rc = arena_at(port, *o, mid, &b))) return rc;
        if (b <= ram) lo = mid;
        else hi = mid - 1;
    }
    *slots = lo;
    return arena_at(port, *o, lo, bytes);
}

/* Decodes ids[0..T) at o on a fresh simulator over file_port. */
static int run_config(const mf_port *file_port, const mf_sim_profile *prof, const mf_options *o,
                      const uint32_t *ids, uint32_t T, uint32_t V, plan_row *row)
{
    static mf_sim_state sst;
    mf_port sim;
    void *arena = NULL;
    float *logits = NULL;
    int rc;
    memset(&sst, 0, sizeof sst);
    if (mf_sim_port_open(&sim, &sst, file_port, prof, NULL) != MF_PORT_OK) return MF_E_IO;
    size_t bytes;
    if ((rc = mf_arena_bytes(&sim, o, &bytes))) return rc;
    mf_model *m;
    mf_info mi;
    uint32_t window, sub;
    if (!(arena = malloc(bytes))) return MF_E_ARENA;
    if ((rc = mf_init(&m, &sim, o, arena, bytes))) goto done;
    mf_model_info(m, &mi);
    if (cli_feed_windows("plan", &mi, &window, &sub)) {
        rc = MF_E_ARG;
        goto done;
    }
    if (!(logits = malloc(sizeof *logits * (size_t)sub * V))) {
        rc = MF_E_ARENA;
        goto done;
    }
    mf_stats s0, s1;
    mf_get_stats(m, &s0);
    double t0 = sst.now_ns, stall0 = sst.stall_ns, nll = 0;
    uint64_t nll_n = 0;
    if ((rc = cli_teacher_force(m, ids, T, window, sub, V, logits, NULL, &nll, &nll_n))) goto done;
    mf_get_stats(m, &s1);
    double vt = sst.now_ns - t0;
    row->ran = 1;
    row->tokens_per_second = vt > 0 ? T / (vt * 1e-9) : 0;
    row->flash_bytes_per_token = (double)(s1.flash_bytes - s0.flash_bytes) / T;
    row->stall_share = vt > 0 ? (sst.stall_ns - stall0) / vt : 0;
done:
    free(arena);
    free(logits);
    return rc;
}

static const char *kv_name(int enc)
{
    switch (enc) {
    case MF_ENC_F16: return "f16";
    case MF_ENC_BF16: return "bf16";
    case MF_ENC_Q8: return "q8";
    default: return "f32";
    }
}

/* Slots of the best configuration under other options, for the hints. */
static uint32_t best_slots(const mf_port *port, mf_options o, const mf_info *info, uint64_t ram)
{
    uint32_t best = 0, s;
    size_t b;
    for (size_t i = 1; i < N_CONFIGS; i++) {
        o.policy = CONFIGS[i].policy;
        o.predictor = CONFIGS[i].predictor;
        if (!most_slots(port, &o, info, ram, &s, &b) && s > best) best = s;
    }
    return best;
}

int cmd_plan(int argc, char **argv)
{
    const char *C = "plan";
    static cli_model cm; /* options only */
    memset(&cm, 0, sizeof cm);
    mf_options_default(&cm.opt);
    const char *img = NULL, *text_path = NULL, *prof_name = "mcu-qspi";
    uint64_t ram = 0, want_tokens = 256;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--slots") || !strcmp(a, "--expert-ram") || !strcmp(a, "--policy") ||
            !strcmp(a, "--predictor")) {
            fprintf(stderr, "moeflash plan: %s is what plan chooses; give the RAM with --ram\n", a);
            return 2;
        }
        int r = cli_runtime_option(C, argc, argv, &i, &cm);
        if (r < 0) return 2;
        if (r > 0) continue;
        if (!strcmp(a, "--ram") || !strcmp(a, "--tokens")) {
            const char *v = cli_value(C, argc, argv, &i);
            uint64_t *dst = !strcmp(a, "--ram") ? &ram : &want_tokens;
            if (!v) return 2;
            if (cli_parse_u64(v, dst) || *dst == 0 || *dst > 0x7FFFFFFFFFFFull ||
                (dst == &want_tokens && *dst > 0x7FFFFFFF)) {
                fprintf(stderr, "moeflash plan: %s: expected a count >= 1, got '%s'\n", a, v);
                return 2;
            }
        } else if (!strcmp(a, "--text")) {
            if (!(text_path = cli_value(C, argc, argv, &i))) return 2;
        } else if (!strcmp(a, "--profile")) {
            if (!(prof_name = cli_value(C, argc, argv, &i))) return 2;
        } else if ((r = cli_positional(C, a, &img, USAGE)) != CLI_GO_ON) {
            return r;
        }
    }
    if (!img || !ram) {
        fprintf(stderr, "moeflash plan: %s\n%s", !img ? "missing IMG" : "missing --ram BYTES", USAGE);
        return 2;
    }
    const mf_sim_profile *prof = cli_profile(C, prof_name);
    if (!prof) return 2;

    int status = 1, rc;
    static mf_posix_port_state pst;
    mf_port port;
    char *text = NULL;
    uint32_t *ids = NULL;
    if (mf_posix_port_open(&port, &pst, img) != MF_PORT_OK) {
        fprintf(stderr, "moeflash plan: cannot open image '%s'\n", img);
        return 1;
    }
    mf_info info;
    static mf_image_header h;
    if ((rc = mf_image_info(&port, &info)) || (rc = mf_image_read_header(&port, &h, 0, NULL, 0))) {
        fprintf(stderr, "moeflash plan: %s: %s\n", img, mf_strerror(rc));
        goto done;
    }
    if (cli_check_options(C, &info, &cm)) goto done;
    mf_options base = cm.opt;
    uint32_t n_all = info.n_layers * info.n_experts;
    uint64_t all_bytes = 0;
    for (uint32_t l = 0; l < info.n_layers; l++)
        for (uint32_t e = 0; e < info.n_experts; e++) {
            mf_expert_entry ent;
            if ((rc = mf_image_expert_entry(&port, &h, MF_SEC_EXPERT_DIR, l, e, &ent))) {
                fprintf(stderr, "moeflash plan: %s: expert directory: %s\n", img, mf_strerror(rc));
                goto done;
            }
            all_bytes += ent.bytes;
        }
    int profiled = mf_image_section(&h, MF_SEC_PREDICTOR) != NULL;

    plan_row rows[N_CONFIGS];
    memset(rows, 0, sizeof rows);
    int any = 0;
    for (size_t i = 0; i < N_CONFIGS; i++) {
        mf_options o = base;
        o.policy = CONFIGS[i].policy;
        o.predictor = CONFIGS[i].predictor;
        if ((rc = most_slots(&port, &o, &info, ram, &rows[i].slots, &rows[i].arena))) {
            fprintf(stderr, "moeflash plan: %s: %s\n", img, mf_strerror(rc));
            goto done;
        }
        any |= rows[i].slots != 0;
    }
    size_t slot_more, at_min;
    {
        size_t b1;
        mf_options o = base;
        if ((rc = arena_at(&port, o, info.top_k, &at_min)) ||
            (rc = arena_at(&port, o, info.top_k + 1, &b1))) {
            fprintf(stderr, "moeflash plan: %s: %s\n", img, mf_strerror(rc));
            goto done;
        }
        slot_more = b1 - at_min;
    }
    uint32_t ctx = base.context_len ? base.context_len : info.max_seq;
    printf("image %s: %u layers x %u experts (top %u), %llu expert bytes in flash; a slot holds "
           "the largest blob, %zu bytes\n",
           img, info.n_layers, info.n_experts, info.top_k, (unsigned long long)all_bytes,
           info.expert_bytes);
    printf("options: context %u, KV %s, prefill batch %u%s; budget %llu bytes of arena (a "
           "firmware adds its stack and static data; its 4-byte pointers make its arena a little "
           "smaller than this 64-bit host's)\n",
           ctx, kv_name(base.kv_encoding), base.prefill_batch ? base.prefill_batch : 16,
           base.prefill_batch ? "" : " (the runtime's default; the boards' firmware uses --batch 1)",
           (unsigned long long)ram);
    printf("arena with top_k = %u slots (the least that runs): %zu bytes; each further slot: %zu "
           "bytes\n",
           info.top_k, at_min, slot_more);
    if (!profiled)
        printf("the image has no profile: `moeflash profile` adds the tables of the co-occurrence "
               "and combined predictors (combined runs as the router lookahead alone without them)\n");
    if (!any) {
        fprintf(stderr,
                "moeflash plan: %llu bytes do not hold even top_k = %u slots: the arena needs %zu "
                "bytes (%zu more)",
                (unsigned long long)ram, info.top_k, at_min, at_min - (size_t)ram);
        mf_options o = base;
        size_t b;
        if (base.kv_encoding != MF_ENC_Q8) {
            o.kv_encoding = MF_ENC_Q8;
            if (!arena_at(&port, o, info.top_k, &b)) fprintf(stderr, "; with --kv q8, %zu", b);
            o.kv_encoding = base.kv_encoding;
        }
        if (ctx > 64) {
            o.context_len = ctx / 2;
            if (!arena_at(&port, o, info.top_k, &b))
                fprintf(stderr, "; with --context %u, %zu", ctx / 2, b);
        }
        fprintf(stderr, "; smaller experts (convert --experts q4) shrink every slot\n");
        goto done;
    }

    uint32_t T = 0;
    if (text_path) {
        size_t text_len;
        if (!(text = cli_read_file(C, text_path, &text_len))) goto done;
        /* tokenised by a model with the fewest slots: the tokenizer is the image's */
        cli_model tm;
        memset(&tm, 0, sizeof tm);
        tm.opt = base;
        tm.opt.expert_slots = info.top_k;
        if (cli_open(C, img, &tm)) {
            cli_close(&tm);
            goto done;
        }
        if ((rc = mf_encode(tm.m, text, text_len, NULL, 0, &T)) == MF_OK && T &&
            (ids = malloc(sizeof *ids * (size_t)T)))
            rc = mf_encode(tm.m, text, text_len, ids, T, &T);
        if (rc || !T || !ids) {
            fprintf(stderr, "moeflash plan: encoding %s: %s\n", text_path,
                    rc ? mf_strerror(rc) : !T ? "no tokens" : "out of memory");
            cli_close(&tm);
            goto done;
        }
        /* the windows run_config feeds (decoding: batch 1 unless given) */
        mf_info ti;
        mf_model_info(tm.m, &ti);
        if (!base.prefill_batch) ti.prefill_batch = 1;
        uint32_t window, sub;
        int bad = cli_feed_windows(C, &ti, &window, &sub) || cli_bos_windows(C, tm.m, window, &ids, &T);
        cli_close(&tm);
        if (bad) goto done;
        if (T > want_tokens) T = (uint32_t)want_tokens;
        for (size_t i = 0; i < N_CONFIGS; i++) {
            if (!rows[i].slots) continue;
            mf_options o = base;
            o.policy = CONFIGS[i].policy;
            o.predictor = CONFIGS[i].predictor;
            o.expert_slots = rows[i].slots;
            if (!o.prefill_batch) o.prefill_batch = 1; /* decoding: token by token, as bench */
            double t0 = cli_now();
            if ((rc = run_config(&port, prof, &o, ids, T, info.vocab, &rows[i]))) {
                fprintf(stderr, "moeflash plan: %s, %s: %s\n", img, CONFIGS[i].name, mf_strerror(rc));
                goto done;
            }
            fprintf(stderr, "plan: [%zu/%zu] %s, %u slots: %.2f tokens/s (%.1f s)\n", i + 1,
                    (size_t)N_CONFIGS, CONFIGS[i].name, rows[i].slots, rows[i].tokens_per_second,
                    cli_now() - t0);
        }
    }

    /* The table, fastest first when runs were made (else in sweep order). */
    size_t order[N_CONFIGS];
    for (size_t i = 0; i < N_CONFIGS; i++) order[i] = i;
    for (size_t i = 1; i < N_CONFIGS; i++)
        for (size_t j = i; j > 0 && rows[order[j]].tokens_per_second >
                                        rows[order[j - 1]].tokens_per_second; j--) {
            size_t t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    const plan_row *none = &rows[0];
    if (text_path)
        printf("\n%u tokens of %s decoded one at a time on %s (%s), as `moeflash bench`:\n", T,
               text_path, prof->name, prof->summary);
    printf("\n%-18s %6s %9s %12s", "configuration", "slots", "% experts", "arena bytes");
    if (text_path) printf(" %10s %7s %13s %7s", "tokens/s", "x none", "flash B/token", "stall");
    putchar('\n');
    for (size_t k = 0; k < N_CONFIGS; k++) {
        const plan_row *r = &rows[order[k]];
        printf("%-18s ", CONFIGS[order[k]].name);
        if (!r->slots) {
            printf("%6s   (top_k slots need %zu bytes)\n", "-", r->arena);
            continue;
        }
        printf("%6u %8.1f%% %12zu", r->slots, 100.0 * r->slots / n_all, r->arena);
        if (r->ran)
            printf(" %10.2f %7.2f %13.0f %6.1f%%", r->tokens_per_second,
                   none->ran && none->tokens_per_second > 0
                       ? r->tokens_per_second / none->tokens_per_second
                       : 0.0,
                   r->flash_bytes_per_token, 100.0 * r->stall_share);
        putchar('\n');
    }
    const plan_row *best = &rows[order[0]];
    if (text_path && best->ran)
        printf("\nfastest: --slots %u %s, with the other runtime options given here (arena %zu "
               "bytes)\n",
               best->slots, CONFIGS[order[0]].flags, best->arena);
    else
        printf("\n--text FILE runs each on the simulated flash of --profile %s and ranks them\n",
               prof->name);
    /* What the other options the RAM is spent on would give the slots. */
    if (base.kv_encoding != MF_ENC_Q8) {
        mf_options o = base;
        o.kv_encoding = MF_ENC_Q8;
        printf("with --kv q8 (+0.02%% bits/byte on the tiny model): up to %u slots\n",
               best_slots(&port, o, &info, ram));
    }
    if (ctx > 64) {
        mf_options o = base;
        o.context_len = ctx / 2;
        printf("with --context %u: up to %u slots\n", ctx / 2, best_slots(&port, o, &info, ram));
    }
    status = fflush(stdout) ? 1 : 0;
done:
    mf_posix_port_close(&port);
    free(text);
    free(ids);
    return status;
}
