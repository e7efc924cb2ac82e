/*
 * Replays, without libFuzzer, every input in fuzz/regressions/<target>/
 * (inputs that once crashed a harness or violated an invariant) and every
 * committed seed in fuzz/corpus/<target>/ through the same harness code
 * (fuzz/fuzz_<target>.c, #included here with its entry point renamed).
 * Each input runs in a child process, so one crash is one failed check
 * naming the file, and the other inputs still run. Under make
 * test-sanitize this also catches memory errors the plain build misses.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define FUZZ_ENTRY fuzz_one_json
#include "../fuzz/fuzz_json.c"
#undef FUZZ_ENTRY
#define FUZZ_ENTRY fuzz_one_config
#include "../fuzz/fuzz_config.c"
#undef FUZZ_ENTRY
#define FUZZ_ENTRY fuzz_one_safetensors
#include "../fuzz/fuzz_safetensors.c"
#undef FUZZ_ENTRY
#define FUZZ_ENTRY fuzz_one_safetensors_index
#include "../fuzz/fuzz_safetensors_index.c"
#undef FUZZ_ENTRY
#define FUZZ_ENTRY fuzz_one_image
#include "../fuzz/fuzz_image.c"
#undef FUZZ_ENTRY
#define FUZZ_ENTRY fuzz_one_model_init
#include "../fuzz/fuzz_model_init.c"
#undef FUZZ_ENTRY
#define FUZZ_ENTRY fuzz_one_fw_cmdline
#include "../fuzz/fuzz_fw_cmdline.c"
#undef FUZZ_ENTRY
#define FUZZ_ENTRY fuzz_one_ids
#include "../fuzz/fuzz_ids.c"
#undef FUZZ_ENTRY
#define FUZZ_ENTRY fuzz_one_tokconv
#include "../fuzz/fuzz_tokconv.c"
#undef FUZZ_ENTRY
#if defined(__has_include)
#if __has_include("../fuzz/fuzz_tokenizer.c")
/* The tokenizer engineer's harness names libFuzzer's entry points itself. */
#define LLVMFuzzerTestOneInput fuzz_one_tokenizer
#define LLVMFuzzerInitialize fuzz_init_tokenizer
#include "../fuzz/fuzz_tokenizer.c"
#undef LLVMFuzzerTestOneInput
#undef LLVMFuzzerInitialize
#define HAVE_FUZZ_TOKENIZER 1
#endif
#endif

typedef int (*fuzz_fn)(const uint8_t *, size_t);

static const struct {
    const char *name;
    fuzz_fn fn;
} targets[] = {
    {"fuzz_json", fuzz_one_json},
    {"fuzz_config", fuzz_one_config},
    {"fuzz_safetensors", fuzz_one_safetensors},
    {"fuzz_safetensors_index", fuzz_one_safetensors_index},
    {"fuzz_image", fuzz_one_image},
    {"fuzz_model_init", fuzz_one_model_init},
    {"fuzz_fw_cmdline", fuzz_one_fw_cmdline},
    {"fuzz_ids", fuzz_one_ids},
    {"fuzz_tokconv", fuzz_one_tokconv},
#ifdef HAVE_FUZZ_TOKENIZER
    {"fuzz_tokenizer", fuzz_one_tokenizer},
#endif
};

/* Runs fn on the file's bytes in a child; 1 when it returned normally. */
static int replay(fuzz_fn fn, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    size_t cap = 1 << 16, n = 0;
    uint8_t *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            uint8_t *b = realloc(buf, cap *= 2);
            if (!b) {
                free(buf);
                buf = NULL;
            }
            buf = b;
        }
    }
    fclose(f);
    if (!buf) return 0;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        /* An exact-size copy, so reads past the input's end are caught. */
        uint8_t *exact = malloc(n ? n : 1);
        if (exact) memcpy(exact, buf, n);
        int rc = exact ? fn(exact, n) : 1;
        free(exact);
        free(buf);
        _exit(rc == 0 ? 0 : 3);
    }
    free(buf);
    if (pid < 0) return 0;
    int status;
    if (waitpid(pid, &status, 0) != pid) return 0;
    if (WIFSIGNALED(status)) fprintf(stderr, "  %s: killed by signal %d\n", path, WTERMSIG(status));
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Every regular file in dir, in name order; returns the count replayed. */
static int replay_dir(fuzz_fn fn, const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return 0;
    char *names[4096];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 4096) {
        if (e->d_name[0] == '.') continue;
        size_t len = strlen(dir) + strlen(e->d_name) + 2;
        names[n] = malloc(len);
        if (!names[n]) break;
        snprintf(names[n], len, "%s/%s", dir, e->d_name);
        n++;
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof names[0], cmp_str);
    for (int i = 0; i < n; i++) {
        int ok = replay(fn, names[i]);
        CHECK(ok, "%s crashes or violates an invariant (reproduce: build-fuzz/%s %s)", names[i],
              strrchr(dir, '/') + 1, names[i]);
        free(names[i]);
    }
    return n;
}

int main(void)
{
    int regressions = 0, seeds = 0;
#ifdef HAVE_FUZZ_TOKENIZER
    fuzz_init_tokenizer(NULL, NULL); /* loads tests/data; inherited by every child */
#endif
    for (size_t t = 0; t < sizeof targets / sizeof targets[0]; t++) {
        char dir[256];
        snprintf(dir, sizeof dir, "fuzz/regressions/%s", targets[t].name);
        regressions += replay_dir(targets[t].fn, dir);
        snprintf(dir, sizeof dir, "fuzz/corpus/%s", targets[t].name);
        seeds += replay_dir(targets[t].fn, dir);
    }
    printf("replayed %d regression inputs and %d seeds through %zu harnesses\n", regressions, seeds,
           sizeof targets / sizeof targets[0]);
    CHECK(seeds > 0, "no seeds found (run from the repository root)");
    return mf_test_done("test_fuzz_regressions");
}
