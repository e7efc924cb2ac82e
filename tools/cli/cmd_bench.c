/* moeflash bench IMG --text FILE --tokens N --profile NAME
 *                [--expert-ram BYTES | --slots N] [--policy P] [--predictor Q]
 *                [--json | --csv] [--trace-out FILE] [runtime options]
 * moeflash bench --csv-header
 *
 * Runs the image through the flash simulator of board profile NAME
 * (port/sim over the POSIX file port), teacher-forcing the first N tokens of
 * FILE (windows of the context length, the context reset between windows,
 * each window after the BOS when the tokenizer has one (cli_bos_windows);
 * one token per forward chunk unless --batch says otherwise, as when
 * decoding), and prints one JSON object (or one CSV row) with the virtual
 * time, the streaming counters and the bound:
 *
 *   bound_seconds = max(compute time, time to read the experts Belady's
 *                   policy would still miss with the same slots)
 *   efficiency    = bound_seconds / virtual_seconds
 *
 * Belady's misses come from replaying the routing trace recorded during the
 * run (mf_set_route_observer) offline (tools/lib/belady.c); each miss is
 * priced with the simulator's own transfer time for that blob plus the
 * request latency when the profile puts it on the bus (one latency when
 * requests overlap). Time spent reading resident weights at init is not in
 * virtual_seconds (it is init_seconds).
 *
 * --trace-out FILE writes JSON lines {"pos": t, "layer": l, "experts": [...]}
 * (experts by routing weight, highest first), enough to recompute the bound.
 * Policy belady needs the future: a first pass (plain file port, no timing)
 * records the trace and the timed run replays it (mf_set_future_trace). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../port/sim/sim_port.h"
#include "../../runtime/image.h"
#include "../../runtime/image_format.h"
#include "../lib/belady.h"
#include "cli_common.h"
#include "commands.h"

static const char *USAGE =
    "usage: moeflash bench IMG --text FILE [--tokens N] [--profile NAME]\n"
    "         [--expert-ram BYTES | --slots N] [--policy none|lru|lfu|edgemoe|belady]\n"
    "         [--predictor none|cooc|lookahead|combined|oracle] [--oracle-accuracy R]\n"
    "         [--pin N] [--prefetch N] [--prefetch-min P]\n"
    "         [--batch N] [--json | --csv] [--trace-out FILE]\n"
    "       moeflash bench --csv-header\n";

static const char *const POLICY_NAMES[] = {"none", "lru", "lfu", "edgemoe", "belady"};
static const char *const PREDICTOR_NAMES[] = {"none", "cooc", "lookahead", "combined", "oracle"};

/* ---- the output record: one table drives both JSON and CSV ---- */
enum { F_STR, F_U64, F_NUM };
typedef struct {
    const char *name;
    int type;
    const char *s;
    uint64_t u;
    double d;
} field;

#define MAX_FIELDS 96
typedef struct {
    field f[MAX_FIELDS];
    int n;
    int overflow; /* a field did not fit: fill() is out of step with MAX_FIELDS */
} record;

static void put_s(record *r, const char *name, const char *s)
{
    if (r->n < MAX_FIELDS) r->f[r->n++] = (field){name, F_STR, s, 0, 0};
    else r->overflow = 1;
}
static void put_u(record *r, const char *name, uint64_t u)
{
    if (r->n < MAX_FIELDS) r->f[r->n++] = (field){name, F_U64, NULL, u, 0};
    else r->overflow = 1;
}
static void put_d(record *r, const char *name, double d)
{
    if (r->n < MAX_FIELDS) r->f[r->n++] = (field){name, F_NUM, NULL, 0, d};
    else r->overflow = 1;
}

static double ratio(double a, double b) { return b > 0 ? a / b : 0.0; }

/* Every field, in order, with placeholder values: the CSV header and the
 * JSON keys come from the same fill() so they cannot drift apart. */
typedef struct {
    const char *image, *profile, *policy, *predictor;
    uint64_t tokens, batch, slots, slot_bytes, expert_ram, expert_bytes_total, pin, prefetch_budget;
    double prefetch_min, oracle_accuracy;
    double virtual_ns, compute_ns, stall_ns, init_ns, bound_ns, belady_read_ns;
    double compute_kind_ns[4];   /* matvec, attention, other, check (mf_work_kind) */
    uint64_t compute_kind_bytes[4];
    uint64_t flash_bytes, flash_bytes_device;
    mf_stats st;
    mf_replay_result bel, lru, lfu, oracle_chunk, oracle_next;
    double nll, host_seconds;
    const mf_sim_profile *prof;
} result;

static void fill(record *r, const result *x)
{
    double vs = x->virtual_ns * 1e-9;
    put_s(r, "image", x->image);
    put_s(r, "profile", x->profile);
    put_s(r, "policy", x->policy);
    put_s(r, "predictor", x->predictor);
    /* The profile's flash, so that the bound can be recomputed from --trace-out. */
    put_d(r, "flash_bandwidth", x->prof ? x->prof->bandwidth : 0);
    put_d(r, "flash_latency_ns", x->prof ? x->prof->latency_ns : 0);
    put_u(r, "flash_latency_on_bus", x->prof ? (uint64_t)x->prof->latency_on_bus : 0);
    put_u(r, "flash_page_size", x->prof ? x->prof->page_size : 0);
    put_u(r, "tokens", x->tokens);
    put_u(r, "batch", x->batch);
    put_u(r, "slots", x->slots);
    put_u(r, "slot_bytes", x->slot_bytes);
    put_u(r, "expert_ram", x->expert_ram);
    put_u(r, "expert_bytes_total", x->expert_bytes_total);
    put_d(r, "expert_ram_fraction", ratio((double)x->expert_ram, (double)x->expert_bytes_total));
    put_u(r, "pin", x->pin);
    put_u(r, "prefetch_budget", x->prefetch_budget);
    put_d(r, "prefetch_min", x->prefetch_min);
    put_d(r, "oracle_accuracy", x->oracle_accuracy);
    put_d(r, "virtual_seconds", vs);
    put_d(r, "compute_seconds", x->compute_ns * 1e-9);
    /* The compute by kind, as the profile charges it (docs/board-profiles.md). */
    put_d(r, "compute_matvec_seconds", x->compute_kind_ns[MF_WORK_MATVEC] * 1e-9);
    put_d(r, "compute_attention_seconds", x->compute_kind_ns[MF_WORK_ATTENTION] * 1e-9);
    put_d(r, "compute_other_seconds", x->compute_kind_ns[MF_WORK_OTHER] * 1e-9);
    put_u(r, "compute_matvec_bytes", x->compute_kind_bytes[MF_WORK_MATVEC]);
    put_u(r, "compute_attention_bytes", x->compute_kind_bytes[MF_WORK_ATTENTION]);
    put_u(r, "compute_other_bytes", x->compute_kind_bytes[MF_WORK_OTHER]);
    put_d(r, "compute_check_seconds", x->compute_kind_ns[MF_WORK_CHECK] * 1e-9);
    put_u(r, "compute_check_bytes", x->compute_kind_bytes[MF_WORK_CHECK]);
    put_d(r, "stall_seconds", x->stall_ns * 1e-9);
    put_d(r, "init_seconds", x->init_ns * 1e-9);
    put_d(r, "tokens_per_second", ratio((double)x->tokens, vs));
    put_u(r, "flash_bytes", x->flash_bytes);
    put_u(r, "flash_bytes_device", x->flash_bytes_device);
    put_u(r, "hits", x->st.hits);
    put_u(r, "misses", x->st.misses);
    put_u(r, "prefetches", x->st.prefetches);
    put_u(r, "useful_prefetches", x->st.useful_prefetches);
    put_u(r, "needed", x->st.needed);
    put_u(r, "ready_needed", x->st.ready_needed);
    put_u(r, "predicted", x->st.predicted);
    put_u(r, "predicted_needed", x->st.predicted_needed);
    /* recall: chosen experts already in a slot or in flight when the router
     * decided; precision: prefetches used before their slot was reused. */
    put_d(r, "prefetch_recall", ratio((double)x->st.ready_needed, (double)x->st.needed));
    put_d(r, "prefetch_precision",
          ratio((double)x->st.useful_prefetches, (double)x->st.prefetches));
    put_d(r, "predictor_recall", ratio((double)x->st.predicted_needed, (double)x->st.needed));
    put_d(r, "predictor_precision",
          ratio((double)x->st.predicted_needed, (double)x->st.predicted));
    put_u(r, "belady_misses", x->bel.misses);
    put_u(r, "belady_flash_bytes", x->bel.bytes);
    put_d(r, "belady_read_seconds", x->belady_read_ns * 1e-9);
    put_u(r, "lru_replay_misses", x->lru.misses);
    put_u(r, "lru_replay_flash_bytes", x->lru.bytes);
    /* What knowing the future would buy (tools/lib/belady.h): LFU knows
     * nothing; the oracles know the rest of the token, or the next one too. */
    put_u(r, "lfu_replay_misses", x->lfu.misses);
    put_u(r, "oracle_token_misses", x->oracle_chunk.misses);
    put_u(r, "oracle_next_token_misses", x->oracle_next.misses);
    put_d(r, "flash_bytes_over_belady", ratio((double)x->flash_bytes, (double)x->bel.bytes));
    put_d(r, "bound_seconds", x->bound_ns * 1e-9);
    put_d(r, "efficiency", ratio(x->bound_ns, x->virtual_ns));
    put_u(r, "crc_bytes", x->st.crc_bytes);
    /* Integrity cost: the expert CRCs at the profile's per-byte cost of
     * "other" compute (already inside compute_seconds). */
    put_d(r, "crc_seconds", x->prof ? (double)x->st.crc_bytes * x->prof->check_ns_per_byte * 1e-9 : 0);
    put_u(r, "crc_failures", x->st.crc_failures);
    put_u(r, "retries", x->st.retries);
    put_u(r, "flash_errors", x->st.flash_errors);
    put_u(r, "fallback_reads", x->st.fallback_reads);
    put_u(r, "paused_reads", x->st.paused_reads);
    put_u(r, "streamed_experts", x->st.streamed_experts);
    put_u(r, "stream_redone", x->st.stream_redone);
    put_d(r, "nll_bits_per_token", x->nll);
    put_d(r, "host_seconds", x->host_seconds);
}

static void print_json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c < 0x20) fprintf(f, "\\u%04x", c);
        else fputc(c, f);
    }
    fputc('"', f);
}

static void print_num(FILE *f, double d)
{
    if (!isfinite(d)) fputs("null", f);
    else fprintf(f, "%.9g", d);
}

static void print_json(FILE *f, const record *r)
{
    fputs("{", f);
    for (int i = 0; i < r->n; i++) {
        fprintf(f, "%s\"%s\": ", i ? ", " : "", r->f[i].name);
        if (r->f[i].type == F_STR) print_json_string(f, r->f[i].s);
        else if (r->f[i].type == F_U64) fprintf(f, "%llu", (unsigned long long)r->f[i].u);
        else print_num(f, r->f[i].d);
    }
    fputs("}\n", f);
}

static void print_csv(FILE *f, const record *r, int header)
{
    for (int i = 0; i < r->n; i++) {
        if (i) fputc(',', f);
        if (header) fputs(r->f[i].name, f);
        else if (r->f[i].type == F_STR) {
            for (const char *s = r->f[i].s; *s; s++) fputc(*s == ',' ? ';' : *s, f);
        } else if (r->f[i].type == F_U64) fprintf(f, "%llu", (unsigned long long)r->f[i].u);
        else print_num(f, r->f[i].d);
    }
    fputc('\n', f);
}

/* ---- routing trace ---- */
typedef struct {
    uint32_t L, k, T;
    uint32_t base; /* tokens fed before the current window */
    uint32_t *ids; /* [T][L][k] */
    uint32_t seen; /* observer calls (sanity) */
} rec_t;

static void observe(void *user, uint32_t layer, uint32_t pos, const uint32_t *experts,
                    const float *weights, uint32_t k)
{
    (void)weights;
    rec_t *r = user;
    uint32_t t = r->base + pos;
    if (t >= r->T || layer >= r->L) return;
    for (uint32_t j = 0; j < r->k && j < k; j++) r->ids[((size_t)t * r->L + layer) * r->k + j] = experts[j];
    r->seen++;
}

static int write_trace(const char *path, const rec_t *r)
{
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    for (uint32_t t = 0; t < r->T; t++)
        for (uint32_t l = 0; l < r->L; l++) {
            fprintf(f, "{\"pos\": %u, \"layer\": %u, \"experts\": [", t, l);
            for (uint32_t j = 0; j < r->k; j++)
                fprintf(f, "%s%u", j ? ", " : "", r->ids[((size_t)t * r->L + l) * r->k + j]);
            fputs("]}\n", f);
        }
    return fclose(f) ? -1 : 0;
}

int cmd_bench(int argc, char **argv)
{
    const char *C = "bench";
    static cli_model cm; /* options only: the ports are opened here */
    memset(&cm, 0, sizeof cm);
    mf_options_default(&cm.opt);
    const char *img = NULL, *text_path = NULL, *trace_path = NULL, *prof_name = "mcu-qspi";
    uint64_t want_tokens = 1024;
    int csv = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        int r = cli_runtime_option(C, argc, argv, &i, &cm);
        if (r < 0) return 2;
        if (r > 0) continue;
        if (!strcmp(a, "--text")) {
            if (!(text_path = cli_value(C, argc, argv, &i))) return 2;
        } else if (!strcmp(a, "--trace-out")) {
            if (!(trace_path = cli_value(C, argc, argv, &i))) return 2;
        } else if (!strcmp(a, "--profile")) {
            if (!(prof_name = cli_value(C, argc, argv, &i))) return 2;
        } else if (!strcmp(a, "--tokens")) {
            const char *v = cli_value(C, argc, argv, &i);
            if (!v) return 2;
            if (cli_parse_u64(v, &want_tokens) || want_tokens == 0 || want_tokens > 0x7FFFFFFF) {
                fprintf(stderr, "moeflash bench: --tokens: expected a count >= 1, got '%s'\n", v);
                return 2;
            }
        } else if (!strcmp(a, "--json")) {
            csv = 0;
        } else if (!strcmp(a, "--csv")) {
            csv = 1;
        } else if (!strcmp(a, "--csv-header")) {
            record rec = {.n = 0};
            result x;
            memset(&x, 0, sizeof x);
            x.image = x.profile = x.policy = x.predictor = "";
            fill(&rec, &x);
            if (rec.overflow) {
                fprintf(stderr, "moeflash bench: internal error: more than %d fields\n", MAX_FIELDS);
                return 1;
            }
            print_csv(stdout, &rec, 1);
            return 0;
        } else if ((r = cli_positional(C, a, &img, USAGE)) != CLI_GO_ON) {
            return r;
        }
    }
    if (!img || !text_path) {
        fprintf(stderr, "moeflash bench: %s\n%s", !img ? "missing IMG" : "missing --text", USAGE);
        return 2;
    }
    const mf_sim_profile *prof = cli_profile(C, prof_name);
    if (!prof) return 2;
    if (cm.opt.policy < 0 || cm.opt.policy > MF_POLICY_BELADY || cm.opt.predictor < 0 ||
        cm.opt.predictor > MF_PREDICT_ORACLE) {
        fprintf(stderr, "moeflash bench: bad policy/predictor\n");
        return 2;
    }
    if (!cm.opt.prefill_batch) cm.opt.prefill_batch = 1; /* decode-like: token by token */

    int status = 1, rc;
    double host0 = cli_now();
    size_t text_len;
    char *text = cli_read_file(C, text_path, &text_len);
    if (!text) return 1;
    static mf_posix_port_state pst;
    static mf_sim_state sst;
    mf_port file_port, sim_port;
    int file_open = 0;
    void *arena = NULL, *arena0 = NULL;
    uint32_t *ids = NULL;
    float *logits = NULL;
    uint64_t *blob_bytes = NULL;
    double *blob_read_ns = NULL;
    uint32_t *miss_count = NULL;
    uint16_t *future = NULL;
    rec_t rec = {0, 0, 0, 0, NULL, 0};
    result x;
    memset(&x, 0, sizeof x);

    if (mf_posix_port_open(&file_port, &pst, img) != MF_PORT_OK) {
        fprintf(stderr, "moeflash bench: cannot open image '%s'\n", img);
        goto done;
    }
    file_open = 1;
    mf_info info;
    static mf_image_header h;
    if ((rc = mf_image_info(&file_port, &info)) ||
        (rc = mf_image_read_header(&file_port, &h, 0, NULL, 0))) {
        fprintf(stderr, "moeflash bench: %s: %s\n", img, mf_strerror(rc));
        goto done;
    }
    uint32_t L = info.n_layers, E = info.n_experts, K = info.top_k;
    if (cli_check_options("bench", &info, &cm)) goto done;
    /* Expert blob sizes and their simulated read cost, for the bound. */
    blob_bytes = calloc((size_t)L * E, sizeof *blob_bytes);
    blob_read_ns = calloc((size_t)L * E, sizeof *blob_read_ns);
    miss_count = calloc((size_t)L * E, sizeof *miss_count);
    if (!blob_bytes || !blob_read_ns || !miss_count) goto oom;
    for (uint32_t l = 0; l < L; l++)
        for (uint32_t e = 0; e < E; e++) {
            mf_expert_entry ent;
            if ((rc = mf_image_expert_entry(&file_port, &h, MF_SEC_EXPERT_DIR, l, e, &ent))) {
                fprintf(stderr, "moeflash bench: %s: expert directory: %s\n", img, mf_strerror(rc));
                goto done;
            }
            size_t i = (size_t)l * E + e;
            blob_bytes[i] = ent.bytes;
            x.expert_bytes_total += ent.bytes;
            blob_read_ns[i] = mf_sim_transfer_ns(prof, ent.offset, ent.bytes) +
                              (prof->latency_on_bus ? prof->latency_ns : 0.0);
        }

    /* The timed model: sim over the file. */
    if (mf_sim_port_open(&sim_port, &sst, &file_port, prof, NULL) != MF_PORT_OK) {
        fprintf(stderr, "moeflash bench: cannot open the simulator for profile %s\n", prof->name);
        goto done;
    }
    size_t arena_bytes;
    if ((rc = mf_arena_bytes(&sim_port, &cm.opt, &arena_bytes))) {
        fprintf(stderr, "moeflash bench: %s: %s\n", img, mf_strerror(rc));
        goto done;
    }
    if (!(arena = malloc(arena_bytes))) goto oom;
    mf_model *m;
    if ((rc = mf_init(&m, &sim_port, &cm.opt, arena, arena_bytes))) {
        fprintf(stderr, "moeflash bench: %s: %s\n", img, mf_strerror(rc));
        goto done;
    }
    mf_info mi;
    mf_model_info(m, &mi);
    uint32_t batch = mi.prefill_batch ? mi.prefill_batch : 1, window, sub;
    if (cli_feed_windows(C, &mi, &window, &sub)) goto done;

    uint32_t T = 0;
    if ((rc = mf_encode(m, text, text_len, NULL, 0, &T))) {
        fprintf(stderr, "moeflash bench: encoding %s: %s\n", text_path, mf_strerror(rc));
        goto done;
    }
    if (!(ids = malloc(sizeof *ids * ((size_t)T + 1)))) goto oom;
    if ((rc = mf_encode(m, text, text_len, ids, T, &T))) {
        fprintf(stderr, "moeflash bench: encoding %s: %s\n", text_path, mf_strerror(rc));
        goto done;
    }
    if (T == 0) {
        fprintf(stderr, "moeflash bench: %s has no tokens\n", text_path);
        goto done;
    }
    if (cli_bos_windows(C, m, window, &ids, &T)) goto done;
    if (T > want_tokens) T = (uint32_t)want_tokens;
    else if (T < want_tokens)
        fprintf(stderr, "moeflash bench: %s has %u tokens, fewer than --tokens %llu\n", text_path, T,
                (unsigned long long)want_tokens);
    rec.L = L;
    rec.k = K;
    rec.T = T;
    if (!(rec.ids = calloc((size_t)T * L * K, sizeof *rec.ids))) goto oom;
    if (!(logits = malloc(sizeof *logits * (size_t)sub * info.vocab))) goto oom;
    double nll = 0;
    uint64_t nll_n = 0;

    if (cm.opt.policy == MF_POLICY_BELADY || cm.opt.predictor == MF_PREDICT_ORACLE) {
        /* First pass without timing to learn the future. */
        mf_options o0 = cm.opt;
        o0.policy = MF_POLICY_LRU;
        o0.predictor = MF_PREDICT_NONE;
        o0.pin_experts = 0;
        size_t a0b;
        mf_model *m0;
        if ((rc = mf_arena_bytes(&file_port, &o0, &a0b))) goto rt_err;
        if (!(arena0 = malloc(a0b))) goto oom;
        if ((rc = mf_init(&m0, &file_port, &o0, arena0, a0b))) goto rt_err;
        mf_set_route_observer(m0, observe, &rec);
        double nll0 = 0;
        uint64_t n0 = 0;
        if ((rc = cli_teacher_force(m0, ids, T, window, sub, info.vocab, logits, &rec.base, &nll0, &n0)))
            goto rt_err;
        free(arena0);
        arena0 = NULL;
        if (!(future = malloc(sizeof *future * (size_t)T * L * K))) goto oom;
        for (size_t i = 0; i < (size_t)T * L * K; i++) future[i] = (uint16_t)rec.ids[i];
        if ((rc = mf_set_future_trace(m, future, T))) goto rt_err;
        memset(rec.ids, 0, sizeof *rec.ids * (size_t)T * L * K);
        rec.seen = 0;
    }

    mf_set_route_observer(m, observe, &rec);
    mf_stats s0, s1;
    mf_get_stats(m, &s0);
    mf_sim_state *ss = mf_sim_state_of(&sim_port);
    double t0 = ss->now_ns, stall0 = ss->stall_ns, comp0 = ss->compute_ns;
    double kind0[4];
    uint64_t kbytes0[4];
    for (int k = 0; k < 4; k++) {
        kind0[k] = ss->compute_ns_kind[k];
        kbytes0[k] = ss->compute_bytes_kind[k];
    }
    uint64_t dev0 = ss->flash_bytes_device;
    x.init_ns = t0;
    if ((rc = cli_teacher_force(m, ids, T, window, sub, info.vocab, logits, &rec.base, &nll, &nll_n)))
        goto rt_err;
    mf_get_stats(m, &s1);
    if (rec.seen != (uint64_t)T * L) {
        fprintf(stderr, "moeflash bench: the route observer saw %u of %llu (token, layer) pairs\n",
                rec.seen, (unsigned long long)T * L);
        goto done;
    }

    x.virtual_ns = ss->now_ns - t0;
    x.stall_ns = ss->stall_ns - stall0;
    x.compute_ns = ss->compute_ns - comp0;
    for (int k = 0; k < 4; k++) {
        x.compute_kind_ns[k] = ss->compute_ns_kind[k] - kind0[k];
        x.compute_kind_bytes[k] = ss->compute_bytes_kind[k] - kbytes0[k];
    }
    x.flash_bytes_device = ss->flash_bytes_device - dev0;
    x.flash_bytes = s1.flash_bytes - s0.flash_bytes;
    x.st = s1;
#define D(f) x.st.f = s1.f - s0.f
    D(hits); D(misses); D(prefetches); D(useful_prefetches); D(needed); D(ready_needed);
    D(predicted); D(predicted_needed); D(crc_failures); D(retries); D(flash_errors);
    D(fallback_reads); D(paused_reads); D(streamed_experts); D(stream_redone);
#undef D

    /* The bound: Belady over the recorded trace with the same slots. */
    if (mf_replay(MF_REPLAY_BELADY, rec.ids, T, L, K, E, batch, mi.expert_slots, blob_bytes,
                  miss_count, &x.bel) ||
        mf_replay(MF_REPLAY_LRU, rec.ids, T, L, K, E, batch, mi.expert_slots, blob_bytes, NULL,
                  &x.lru) ||
        mf_replay(MF_REPLAY_LFU, rec.ids, T, L, K, E, batch, mi.expert_slots, blob_bytes, NULL,
                  &x.lfu) ||
        mf_replay(MF_REPLAY_ORACLE_CHUNK, rec.ids, T, L, K, E, batch, mi.expert_slots,
                  blob_bytes, NULL, &x.oracle_chunk) ||
        mf_replay(MF_REPLAY_ORACLE_NEXT, rec.ids, T, L, K, E, batch, mi.expert_slots,
                  blob_bytes, NULL, &x.oracle_next)) {
        fprintf(stderr, "moeflash bench: replay failed\n");
        goto done;
    }
    for (size_t i = 0; i < (size_t)L * E; i++) x.belady_read_ns += miss_count[i] * blob_read_ns[i];
    if (!prof->latency_on_bus && x.bel.misses) x.belady_read_ns += prof->latency_ns;
    x.bound_ns = x.compute_ns > x.belady_read_ns ? x.compute_ns : x.belady_read_ns;

    if (trace_path && write_trace(trace_path, &rec)) {
        fprintf(stderr, "moeflash bench: cannot write '%s'\n", trace_path);
        goto done;
    }
    x.image = img;
    x.profile = prof->name;
    x.prof = prof;
    x.policy = POLICY_NAMES[cm.opt.policy];
    x.predictor = PREDICTOR_NAMES[cm.opt.predictor];
    x.tokens = T;
    x.batch = batch;
    x.slots = mi.expert_slots;
    x.slot_bytes = info.expert_bytes;
    x.expert_ram = (uint64_t)mi.expert_slots * info.expert_bytes;
    x.pin = cm.opt.pin_experts;
    x.prefetch_budget = cm.opt.prefetch_budget;
    x.prefetch_min = cm.opt.prefetch_min_prob;
    /* 0 unless the predictor is the oracle (the predictor field says which) */
    x.oracle_accuracy =
        cm.opt.predictor == MF_PREDICT_ORACLE ? 1.0 - (double)cm.opt.oracle_miss_rate : 0.0;
    x.nll = nll_n ? nll / (double)nll_n : 0.0;
    x.host_seconds = cli_now() - host0;
    record out = {.n = 0};
    fill(&out, &x);
    if (out.overflow) {
        fprintf(stderr, "moeflash bench: internal error: more than %d fields\n", MAX_FIELDS);
        status = 1;
        goto done;
    }
    if (csv) print_csv(stdout, &out, 0);
    else print_json(stdout, &out);
    status = fflush(stdout) ? 1 : 0;
    goto done;
rt_err:
    fprintf(stderr, "moeflash bench: %s: %s\n", img, mf_strerror(rc));
    goto done;
oom:
    fprintf(stderr, "moeflash bench: out of memory\n");
done:
    if (file_open) mf_posix_port_close(&file_port);
    free(text);
    free(arena);
    free(arena0);
    free(ids);
    free(logits);
    free(blob_bytes);
    free(blob_read_ns);
    free(miss_count);
    free(future);
    free(rec.ids);
    return status;
}
