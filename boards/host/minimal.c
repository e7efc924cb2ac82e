/*
 * The whole C API in one page: a model image in a file, one arena, greedy
 * text. What `moeflash generate IMG --prompt TEXT --tokens N` does, without
 * its options and statistics (tests/scripts/cli_run.sh checks that the two
 * print the same bytes).
 *
 *   build/minimal IMG TEXT N
 *
 * On a board, the port is the board's flash (see boards/common/main.c) and
 * the arena a static array; nothing else changes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../port/posix/posix_port.h"
#include "../../runtime/moeflash.h"

static int fail(const char *what, int err)
{
    fprintf(stderr, "minimal: %s: %s\n", what, mf_strerror(err));
    return 1;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: minimal IMG TEXT N\n");
        return 2;
    }
    const char *text = argv[2];
    uint32_t n_tokens = (uint32_t)strtoul(argv[3], NULL, 10);

    /* 1. The device the image is on: here a file. */
    static mf_posix_port_state file;
    mf_port port;
    if (mf_posix_port_open(&port, &file, argv[1]) != MF_PORT_OK) {
        fprintf(stderr, "minimal: cannot open %s\n", argv[1]);
        return 1;
    }

    /* 2. The arena: its size is known before anything is laid out. */
    mf_options opt;
    mf_options_default(&opt);
    size_t need = 0;
    int rc = mf_arena_bytes(&port, &opt, &need);
    if (rc != MF_OK) return fail("mf_arena_bytes", rc);
    void *arena = malloc(need);
    if (!arena) return fail("arena", MF_E_ARENA);
    mf_model *m = NULL;
    rc = mf_init(&m, &port, &opt, arena, need);
    if (rc != MF_OK) return fail("mf_init", rc);

    /* 3. The prompt, as transformers sees it: BOS first if the model has one. */
    uint32_t ids[256], n = 0;
    uint32_t bos = mf_token_bos(m);
    if (bos != MF_NO_TOKEN) ids[n++] = bos;
    uint32_t n_text = 0;
    rc = mf_encode(m, text, strlen(text), ids + n, 256 - n, &n_text);
    if (rc != MF_OK) return fail("mf_encode", rc);
    if (n_text > 256 - n) return fail("prompt longer than 256 tokens", MF_E_ARG);
    n += n_text;
    rc = mf_feed(m, ids, n);
    if (rc != MF_OK) return fail("mf_feed", rc);

    /* 4. Generate: sample, print, feed back. */
    mf_sampler greedy;
    mf_sampler_init(&greedy, 0.0f, 1.0f, 0);
    for (uint32_t i = 0; i < n_tokens; i++) {
        uint32_t id;
        rc = mf_sample(m, &greedy, &id);
        if (rc != MF_OK) return fail("mf_sample", rc);
        if (mf_token_is_eos(m, id)) break;
        char out[64];
        size_t len = 0;
        rc = mf_decode_token(m, id, out, sizeof out, &len);
        if (rc != MF_OK) return fail("mf_decode_token", rc);
        if (!mf_token_is_special(m, id)) fwrite(out, 1, len, stdout);
        if (i + 1 < n_tokens && (rc = mf_feed(m, &id, 1)) != MF_OK) return fail("mf_feed", rc);
    }
    char tail[8];
    size_t len = 0;
    if (mf_decode_flush(m, tail, sizeof tail, &len) == MF_OK) fwrite(tail, 1, len, stdout);

    free(arena);
    mf_posix_port_close(&port);
    return 0;
}
