/*
 * libFuzzer harness: the firmware's command line (boards/common/cmdline.c),
 * the one parser of outside input on a board besides the image. The input
 * is the command line (cut at its first NUL, as semihosting gives a C
 * string). A parse either succeeds with every field in its documented
 * range (prompt and image NUL-terminated and within their buffers, top_p in
 * (0, 1], policy and predictor -1 or a known one) or fails with status 2, a
 * reason and the argument at fault inside the input; and the same input
 * parses the same way twice.
 */
#include "fuzz_common.h"

#include <math.h>

#include "../boards/common/cmdline.c"

static void fw_defaults(fw_args *a)
{
    memset(a, 0, sizeof *a);
    a->tokens = 64;
    a->policy = -1;
    a->predictor = -1;
    a->top_p = 1.0;
    memcpy(a->prompt, "ROMEO:", 7);
    a->prompt_len = 6;
}

int FUZZ_ENTRY(const uint8_t *data, size_t size)
{
    char *cl = malloc(size + 1);
    if (!cl) return 0;
    memcpy(cl, data, size);
    cl[size] = 0;
    size_t len = strlen(cl);
    static fw_args a, b;
    fw_defaults(&a);
    fw_defaults(&b);
    const char *why, *at, *why2, *at2;
    size_t at_len, at_len2;
    int rc = fw_args_parse(&a, cl, &why, &at, &at_len);
    int rc2 = fw_args_parse(&b, cl, &why2, &at2, &at_len2);
    FUZZ_CHECK(rc == 0 || rc == 2);
    FUZZ_CHECK(rc == rc2);
    if (rc == 0) {
        FUZZ_CHECK(a.prompt_len <= MF_MAX_PROMPT && a.prompt[a.prompt_len] == 0);
        FUZZ_CHECK(strlen(a.prompt) == a.prompt_len);
        FUZZ_CHECK(memchr(a.image, 0, sizeof a.image) != NULL);
        FUZZ_CHECK(a.top_p > 0.0 && a.top_p <= 1.0);
        FUZZ_CHECK(a.temperature >= 0.0 && isfinite(a.temperature));
        FUZZ_CHECK(a.policy >= -1 && a.policy <= 3 && a.predictor >= -1 && a.predictor <= 3);
        FUZZ_CHECK(a.tokens == b.tokens && a.ctx == b.ctx && a.slots == b.slots && a.batch == b.batch &&
                   a.slide == b.slide && a.seed == b.seed && a.quiet == b.quiet && a.policy == b.policy &&
                   a.predictor == b.predictor && a.temperature == b.temperature && a.top_p == b.top_p &&
                   !strcmp(a.prompt, b.prompt) && !strcmp(a.image, b.image));
    } else {
        FUZZ_CHECK(why && why[0] && why == why2);
        FUZZ_CHECK(at >= cl && at + at_len <= cl + len && at == at2 && at_len == at_len2);
    }
    free(cl);
    return 0;
}
