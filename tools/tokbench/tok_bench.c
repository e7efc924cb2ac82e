/*
 * Encode throughput of the tokenizer on the host, and the RAM it needs.
 *   make tokenizer-bench      (runs build/tok_bench on tests/data/tinyshakespeare.txt)
 *   build/tok_bench HF_DIR TEXT_FILE [repeats]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../runtime/tokenizer.h"
#include "../lib/json.h"
#include "../lib/tokconv.h"

/* CPU time of this process: steadier than wall time on a shared machine. */
static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s HF_DIR TEXT_FILE [repeats]\n", argv[0]);
        return 2;
    }
    int reps = argc > 3 ? atoi(argv[3]) : 5;
    uint8_t *sec;
    size_t sec_len, len;
    char err[256];
    if (mf_tokconv_build(argv[1], &sec, &sec_len, err, sizeof err) || !sec) {
        fprintf(stderr, "%s: %s\n", argv[1], err[0] ? err : "no tokenizer");
        return 1;
    }
    char *text = mf_read_file(argv[2], &len);
    if (!text) return 1;
    mf_tokenizer t;
    if (mf_tokenizer_init(&t, sec, sec_len, 0)) return 1;
    uint32_t *ids = malloc(sizeof(uint32_t) * (len + 1));
    size_t scratch_sizes[2] = {mf_tokenizer_scratch_bytes(&t, len), MF_TOKENIZER_SCRATCH(1024)};
    const char *names[2] = {"exact scratch", "1024-symbol scratch"};
    uint32_t n_exact = 0;
    for (int s = 0; s < 2; s++) {
        void *scratch = malloc(scratch_sizes[s]);
        uint32_t n = 0;
        double best = 1e30;
        for (int r = 0; r < reps; r++) {
            double t0 = now();
            mf_tokenizer_encode(&t, text, len, ids, (uint32_t)len + 1, &n, scratch, scratch_sizes[s]);
            double dt = now() - t0;
            if (dt < best) best = dt;
        }
        if (s == 0) n_exact = n;
        printf("%s: %s: %zu bytes -> %u tokens, %.1f MB/s of CPU time (best of %d), scratch %zu bytes%s\n", argv[1], names[s],
               len, n, (double)len / best / 1e6, reps, scratch_sizes[s],
               s == 1 && n != n_exact ? " (ids differ from exact)" : "");
        free(scratch);
    }
    /* decode throughput */
    {
        char out[256];
        double t0 = now();
        size_t total = 0;
        mf_tokenizer_decode_reset(&t);
        for (uint32_t i = 0; i < n_exact; i++) {
            size_t l;
            mf_tokenizer_decode(&t, ids[i], out, sizeof out, &l);
            total += l;
        }
        double dt = now() - t0;
        printf("%s: decode %u tokens -> %zu bytes, %.1f MB/s of CPU time\n", argv[1], n_exact, total, (double)total / dt / 1e6);
    }
    printf("%s: section %zu bytes (flash), struct mf_tokenizer %zu bytes (RAM)\n", argv[1], sec_len,
           sizeof(mf_tokenizer));
    free(ids);
    free(text);
    free(sec);
    return 0;
}
