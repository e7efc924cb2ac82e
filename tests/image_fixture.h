/*
 * Test images made the way a user makes them: `$BUILD/moeflash convert
 * MODEL FILE FLAGS`, then `moeflash profile FILE ARGS` when ARGS is given,
 * read into memory (free() it). The file is removed, unless keep_path (64
 * bytes) asks for its name. NULL with *len = 0 when anything fails; the
 * caller CHECKs that.
 */
#ifndef MF_TEST_IMAGE_FIXTURE_H
#define MF_TEST_IMAGE_FIXTURE_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../runtime/image.h"
#include "../runtime/moeflash.h"
#include "../tools/lib/json.h"

static inline uint8_t *mf_test_image(const char *model, const char *convert_flags,
                              const char *profile_args, size_t *len, char *keep_path)
{
    const char *build = getenv("BUILD");
    if (!build || !*build) build = "build";
    char path[64] = "/tmp/mf_test_img_XXXXXX", cmd[1024];
    *len = 0;
    int fd = mkstemp(path);
    if (fd < 0) return NULL;
    close(fd);
    int n = snprintf(cmd, sizeof cmd, "%s/moeflash convert %s %s %s >/dev/null 2>&1", build, model,
                     path, convert_flags ? convert_flags : "");
    if (n > 0 && (size_t)n < sizeof cmd && profile_args)
        n += snprintf(cmd + n, sizeof cmd - (size_t)n,
                      " && %s/moeflash profile %s %s >/dev/null 2>&1", build, path, profile_args);
    uint8_t *img = NULL;
    if (n > 0 && (size_t)n < sizeof cmd && system(cmd) == 0)
        img = (uint8_t *)mf_read_file(path, len);
    if (keep_path && img) snprintf(keep_path, 64, "%s", path);
    else unlink(path);
    if (!img) *len = 0;
    return img;
}

/* mf_arena_bytes, a heap arena of exactly that size, mf_init: the model in
 * *m (NULL on failure) and MF_OK or the error. free(*arena) afterwards, in
 * either case. */
static inline int mf_test_model(const mf_port *port, const mf_options *opt, mf_model **m, void **arena)
{
    size_t bytes;
    *m = NULL;
    *arena = NULL;
    int rc = mf_arena_bytes(port, opt, &bytes);
    if (rc) return rc;
    *arena = malloc(bytes);
    if (!*arena) return MF_E_ARENA;
    rc = mf_init(m, port, opt, *arena, bytes);
    if (rc) *m = NULL;
    return rc;
}

/* The header of a 1-layer, 2-expert Mixtral-like model small enough to
 * write by hand (test_image's writer errors, test_convert's writer). */
static inline void mf_test_small_header(mf_image_header *p)
{
    memset(p, 0, sizeof *p);
    p->arch = MF_ARCH_MIXTRAL;
    p->vocab = 16;
    p->hidden = 8;
    p->n_layers = 1;
    p->n_heads = 2;
    p->n_kv_heads = 1;
    p->head_dim = 4;
    p->expert_ffn = 8;
    p->n_experts = 2;
    p->top_k = 1;
    p->max_seq = 8;
    p->rms_eps = 1e-5f;
    p->rope_theta = 1e4f;
    p->page_size = 256;
    p->group_size = 8;
}

#endif
