/* moeflash convert HF_DIR OUT.img [--weights ENC] [--experts ENC] [--resident ENC]
 *                  [--fallback ENC] [--page-size N] [--group N] [--max-seq N]
 * Converts a Hugging Face MoE checkpoint folder into a moeflash image.
 * --weights sets both the resident and the expert encoding; --experts and
 * --resident override one of them. Progress goes to stderr, one line per
 * layer, then a summary line. Exit status 0, 1 on a conversion error (one
 * line on stderr), 2 on a usage error. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../runtime/quant.h"
#include "../lib/convert.h"
#include "commands.h"

static int usage(void)
{
    fprintf(stderr, "usage: moeflash convert HF_DIR OUT.img [--weights f32|bf16|f16|q8|q4|q3|q2] "
                    "[--experts ENC] [--resident ENC] [--fallback ENC] [--page-size N] [--group N] "
                    "[--max-seq N]\n");
    return 2;
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
    char *end;
    unsigned long n = strtoul(v, &end, 10);
    if (!*v || *end || n == 0 || n > 0xFFFFFFFFul) {
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
    int resident = -1, experts = -1;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
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
            } else if (!strcmp(a, "--experts")) bad = parse_enc(a, v, &experts);
            else if (!strcmp(a, "--resident")) bad = parse_enc(a, v, &resident);
            else if (!strcmp(a, "--fallback")) bad = parse_enc(a, v, &o.fallback_encoding);
            else if (!strcmp(a, "--page-size")) bad = parse_u32(a, v, &o.page_size);
            else if (!strcmp(a, "--group")) bad = parse_u32(a, v, &o.group_size);
            else if (!strcmp(a, "--max-seq")) bad = parse_u32(a, v, &o.max_seq);
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
    if (experts >= 0) o.expert_encoding = experts;
    if (resident >= 0) o.resident_encoding = resident;
    o.progress = stderr;

    mf_convert_result r;
    char err[512];
    if (mf_convert(pos[0], pos[1], &o, &r, err, sizeof err)) {
        fprintf(stderr, "moeflash convert: %s\n", err);
        return 1;
    }
    fprintf(stderr,
            "convert: wrote %s: resident %llu bytes (%u tensors), experts %llu bytes, "
            "fallback %llu bytes, tokenizer %llu bytes, image %llu bytes\n",
            pos[1], (unsigned long long)r.resident_bytes, r.n_resident, (unsigned long long)r.expert_bytes,
            (unsigned long long)r.fallback_bytes, (unsigned long long)r.tokenizer_bytes,
            (unsigned long long)r.image_bytes);
    return 0;
}
