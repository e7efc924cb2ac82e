/* moeflash convert HF_DIR OUT.img [--weights ENC] [--experts ENC|auto] [--resident ENC]
 *                  [--fallback ENC] [--page-size N] [--group N] [--max-seq N]
 *                  [--avg-bits B | --expert-budget BYTES] [--calib FILE]
 *                  [--calib-windows N] [--sensitivity proxy|direct]
 * Converts a Hugging Face MoE checkpoint folder into a moeflash image.
 * --weights sets both the resident and the expert encoding; --experts and
 * --resident override one of them.
 * --experts auto chooses each expert's encoding among q8/q4/q3/q2 to
 * minimise the predicted quality loss with all expert bytes (scales
 * included) <= the budget: --avg-bits B (bits per expert weight) or
 * --expert-budget BYTES. The loss per expert and encoding is measured on
 * --calib FILE (required: text from the training data, never the
 * evaluation text), cut into --calib-windows windows (default 16) of 256
 * tokens: by default the proxy (squared routing weight x squared weight
 * error, tools/lib/sensitivity.h; one calibration run), with
 * --sensitivity direct the measured loss of quantising each expert alone
 * (3 runs per expert: slow). See docs/quantization.md. Progress goes to stderr, one line per
 * layer, then a summary line. Exit status 0, 1 on a conversion error (one
 * line on stderr), 2 on a usage error. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../runtime/quant.h"
#include "../lib/convert.h"
#include "../lib/sensitivity.h"
#include "cli_common.h"
#include "commands.h"

static const char USAGE[] =
    "usage: moeflash convert HF_DIR OUT.img [--weights ENC] [--experts ENC] [--resident ENC]\n"
    "         [--fallback ENC] [--page-size N] [--group N] [--max-seq N] [--eos ID[,ID...]|none]\n"
    "         [--experts auto (--avg-bits B | --expert-budget BYTES) --calib FILE\n"
    "          [--calib-windows N] [--sensitivity proxy|direct]]\n"
    "       ENC: f32 bf16 f16 q8 q4 q3 q2\n";

static int usage(void)
{
    fputs(USAGE, stderr);
    return 2;
}

/* --eos: up to 4 comma-separated token ids, or "none". */
static int parse_eos(const char *v, mf_convert_options *o)
{
    o->n_eos = 0;
    if (!strcmp(v, "none")) return 0;
    const char *p = v;
    for (;;) {
        char *end;
        unsigned long long id = strtoull(p, &end, 10);
        if (!isdigit((unsigned char)*p) || id > 0xFFFFFFFEull || (*end && *end != ',') || o->n_eos == 4) {
            fprintf(stderr, "moeflash convert: --eos: expected 'none' or 1-4 token ids separated by commas, got '%s'\n", v);
            return -1;
        }
        o->eos[o->n_eos++] = (uint32_t)id;
        if (!*end) return 0;
        p = end + 1;
    }
}

static int parse_enc(const char *flag, const char *v, int *out)
{
    int e = mf_encoding_from_name(v);
    if (e < 0) {
        fprintf(stderr, "moeflash convert: %s: unknown encoding '%s'\n", flag, v);
        return -1;
    }
    *out = e;
    return 0;
}

static int parse_u32(const char *flag, const char *v, uint32_t *out)
{
    uint64_t n;
    if (cli_parse_u64(v, &n) || n == 0 || n > 0xFFFFFFFFu) {
        fprintf(stderr, "moeflash convert: %s: '%s' is not a positive integer\n", flag, v);
        return -1;
    }
    *out = (uint32_t)n;
    return 0;
}

int cmd_convert(int argc, char **argv)
{
    mf_convert_options o;
    mf_convert_options_default(&o);
    const char *pos[2] = {NULL, NULL};
    int npos = 0;
    int resident = -1, experts = -1, autox = 0, direct = 0;
    double avg_bits = 0;
    uint64_t budget = 0;
    uint32_t calib_windows = 16;
    const char *calib = NULL;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (cli_help(a, USAGE)) return 0;
        if (a[0] == '-' && a[1] == '-') {
            if (i + 1 >= argc) {
                fprintf(stderr, "moeflash convert: %s needs a value\n", a);
                return usage();
            }
            const char *v = argv[++i];
            int bad;
            if (!strcmp(a, "--weights")) {
                bad = parse_enc(a, v, &o.expert_encoding);
                o.resident_encoding = o.expert_encoding;
            } else if (!strcmp(a, "--experts")) {
                autox = !strcmp(v, "auto");
                bad = autox ? 0 : parse_enc(a, v, &experts);
            } else if (!strcmp(a, "--avg-bits")) {
                bad = cli_parse_f(v, &avg_bits) || !(avg_bits > 0 && avg_bits <= 64);
                if (bad) fprintf(stderr, "moeflash convert: --avg-bits: '%s' is not a number in (0, 64]\n", v);
            } else if (!strcmp(a, "--expert-budget")) {
                bad = cli_parse_u64(v, &budget) || budget == 0;
                if (bad) fprintf(stderr, "moeflash convert: --expert-budget: '%s' is not a positive integer\n", v);
            } else if (!strcmp(a, "--calib")) {
                calib = v;
                bad = 0;
            } else if (!strcmp(a, "--calib-windows")) bad = parse_u32(a, v, &calib_windows);
            else if (!strcmp(a, "--sensitivity")) {
                direct = !strcmp(v, "direct");
                bad = !direct && strcmp(v, "proxy");
                if (bad) fprintf(stderr, "moeflash convert: --sensitivity: expected proxy or direct\n");
            }
            else if (!strcmp(a, "--resident")) bad = parse_enc(a, v, &resident);
            else if (!strcmp(a, "--fallback")) bad = parse_enc(a, v, &o.fallback_encoding);
            else if (!strcmp(a, "--page-size")) bad = parse_u32(a, v, &o.page_size);
            else if (!strcmp(a, "--group")) bad = parse_u32(a, v, &o.group_size);
            else if (!strcmp(a, "--max-seq")) bad = parse_u32(a, v, &o.max_seq);
            else if (!strcmp(a, "--eos")) bad = parse_eos(v, &o);
            else {
                fprintf(stderr, "moeflash convert: unknown option %s\n", a);
                return usage();
            }
            if (bad) return 2;
        } else if (npos < 2) {
            pos[npos++] = a;
        } else {
            fprintf(stderr, "moeflash convert: unexpected argument '%s'\n", a);
            return usage();
        }
    }
    if (npos != 2) return usage();
    if (!autox && (avg_bits > 0 || budget || calib)) {
        fprintf(stderr, "moeflash convert: --avg-bits, --expert-budget and --calib need --experts auto\n");
        return 2;
    }
    if (autox && (avg_bits > 0) == (budget > 0)) {
        fprintf(stderr, "moeflash convert: --experts auto needs exactly one of --avg-bits or --expert-budget\n");
        return 2;
    }
    if (autox && !calib) {
        fprintf(stderr, "moeflash convert: --experts auto needs --calib FILE (calibration text from the "
                        "training data, e.g. the first 90%% of tests/data/tinyshakespeare.txt)\n");
        return 2;
    }
    if (experts >= 0) o.expert_encoding = experts;
    if (resident >= 0) o.resident_encoding = resident;
    o.progress = stderr;

    mf_convert_result r;
    char err[512];
    int *encs = NULL;
    if (autox) {
        size_t clen;
        unsigned char *text = mf_sens_read_file(calib, &clen);
        if (!text) {
            fprintf(stderr, "moeflash convert: --calib: cannot read %s\n", calib);
            return 1;
        }
        mf_sens_options so;
        mf_sens s;
        mf_sens_options_default(&so);
        so.group_size = o.group_size;
        so.windows = calib_windows;
        so.direct = direct;
        so.direct_zero_enc = MF_ENC_Q8;
        so.jobs = 2;
        so.progress = direct ? stderr : NULL;
        int rc = mf_sens_compute(pos[0], text, clen, &so, &s, err, sizeof err);
        free(text);
        if (rc) {
            fprintf(stderr, "moeflash convert: %s\n", err);
            return 1;
        }
        size_t NE = (size_t)s.n_layers * s.n_experts;
        if (avg_bits > 0) budget = mf_sens_budget_for_bits(&s, avg_bits);
        encs = malloc(NE * sizeof *encs);
        double pred;
        uint64_t got;
        if (!encs || mf_sens_choose(&s, direct ? s.direct : s.proxy, budget, encs, &pred, &got)) {
            fprintf(stderr, "moeflash convert: expert budget %llu bytes is below every expert at %s "
                            "(%llu bytes)\n", (unsigned long long)budget, mf_encoding_name(s.enc[s.n_enc - 1]),
                    (unsigned long long)(s.enc_bytes[s.n_enc - 1] * NE));
            free(encs);
            mf_sens_free(&s);
            return 1;
        }
        unsigned cnt[MF_ENC_COUNT] = {0};
        for (size_t j = 0; j < NE; j++) cnt[encs[j]]++;
        fprintf(stderr, "convert: auto: budget %llu bytes, chose q8 %u q4 %u q3 %u q2 %u: %llu bytes, "
                        "%.3f bits per expert weight (%s sensitivity, %llu calibration tokens)\n",
                (unsigned long long)budget, cnt[MF_ENC_Q8], cnt[MF_ENC_Q4], cnt[MF_ENC_Q3], cnt[MF_ENC_Q2],
                (unsigned long long)got, 8.0 * (double)got / ((double)s.expert_weights * (double)NE),
                direct ? "direct" : "proxy", (unsigned long long)s.calib_tokens);
        o.expert_encodings = encs;
        o.n_expert_encodings = NE;
        mf_sens_free(&s);
    }
    if (mf_convert(pos[0], pos[1], &o, &r, err, sizeof err)) {
        fprintf(stderr, "moeflash convert: %s\n", err);
        free(encs);
        return 1;
    }
    free(encs);
    fprintf(stderr,
            "convert: wrote %s: resident %llu bytes (%u tensors), experts %llu bytes, "
            "fallback %llu bytes, tokenizer %llu bytes, image %llu bytes\n",
            pos[1], (unsigned long long)r.resident_bytes, r.n_resident, (unsigned long long)r.expert_bytes,
            (unsigned long long)r.fallback_bytes, (unsigned long long)r.tokenizer_bytes,
            (unsigned long long)r.image_bytes);
    return 0;
}
