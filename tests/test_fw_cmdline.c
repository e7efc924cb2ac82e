/*
 * The firmware's command line (boards/common/cmdline.c) against its
 * documented contract (boards/common/main.c's header, boards/README.md):
 * the program name is skipped; every key sets its field and only it; a
 * policy or predictor is a name or its number; counts that do not fit 32
 * bits, decimals of more than 15 digits, top_p outside (0, 1], unknown keys,
 * empty values and arguments without '=' are errors that name the argument;
 * prompt= takes the rest of the line, spaces included, with \n and \\
 * unescaped, and at most MF_MAX_PROMPT bytes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../boards/common/cmdline.c"
#include "harness.h"

static fw_args defaults(void)
{
    fw_args a;
    memset(&a, 0, sizeof a);
    a.tokens = 111;
    a.ctx = 222;
    a.slots = 3;
    a.batch = 4;
    a.slide = 5;
    a.policy = -1;
    a.predictor = -1;
    a.temperature = 0.25;
    a.top_p = 0.5;
    a.seed = 6;
    strcpy(a.prompt, "DEFAULT");
    a.prompt_len = 7;
    return a;
}

static int same(const fw_args *x, const fw_args *y)
{
    return x->tokens == y->tokens && x->ctx == y->ctx && x->slots == y->slots && x->batch == y->batch &&
           x->slide == y->slide && x->policy == y->policy && x->predictor == y->predictor &&
           x->temperature == y->temperature && x->top_p == y->top_p && x->seed == y->seed &&
           x->quiet == y->quiet && x->prompt_len == y->prompt_len && !strcmp(x->prompt, y->prompt) &&
           !strcmp(x->image, y->image);
}

/* parses cl over the defaults; returns the status */
static int parse(const char *cl, fw_args *a, const char **why, const char **at, size_t *at_len)
{
    *a = defaults();
    return fw_args_parse(a, cl, why, at, at_len);
}

/* cl must fail, naming exactly `arg` (a part of cl) */
static void expect_bad(const char *cl, const char *arg)
{
    fw_args a;
    const char *why = NULL, *at = NULL;
    size_t n = 0;
    int rc = parse(cl, &a, &why, &at, &n);
    CHECK(rc == 2 && why && at >= cl && at + n <= cl + strlen(cl) && n == strlen(arg) && !memcmp(at, arg, n),
          "'%s': status %d, why %s, at '%.*s' (want '%s')", cl, rc, why ? why : "-", (int)n, at ? at : "",
          arg);
}

int main(void)
{
    fw_args a, d = defaults();
    const char *why, *at;
    size_t n;

    /* Nothing given: the defaults stay. */
    CHECK(parse(NULL, &a, &why, &at, &n) == 0 && same(&a, &d), "NULL command line");
    CHECK(parse("", &a, &why, &at, &n) == 0 && same(&a, &d), "empty command line");
    CHECK(parse("moeflash.elf", &a, &why, &at, &n) == 0 && same(&a, &d), "program name only");
    CHECK(parse("moeflash.elf   ", &a, &why, &at, &n) == 0 && same(&a, &d), "program name and spaces");
    /* argv[0] is skipped even when it looks like an argument */
    CHECK(parse("tokens=9", &a, &why, &at, &n) == 0 && a.tokens == 111, "argv[0] read as an argument");

    /* Each key sets its own field and no other. */
    fw_args w;
    w = d, w.tokens = 4294967295u;
    CHECK(parse("x tokens=4294967295", &a, &why, &at, &n) == 0 && same(&a, &w), "tokens=UINT32_MAX");
    w = d, w.ctx = 16;
    CHECK(parse("x ctx=16", &a, &why, &at, &n) == 0 && same(&a, &w), "ctx");
    w = d, w.slots = 0;
    CHECK(parse("x slots=0", &a, &why, &at, &n) == 0 && same(&a, &w), "slots=0");
    w = d, w.batch = 16;
    CHECK(parse("x batch=016", &a, &why, &at, &n) == 0 && same(&a, &w), "batch with a leading zero");
    w = d, w.slide = 200;
    CHECK(parse("x slide=200", &a, &why, &at, &n) == 0 && same(&a, &w), "slide");
    w = d, w.quiet = 1;
    CHECK(parse("x quiet=1", &a, &why, &at, &n) == 0 && same(&a, &w), "quiet");
    w = d, w.seed = 18446744073709551615ull;
    CHECK(parse("x seed=18446744073709551615", &a, &why, &at, &n) == 0 && same(&a, &w), "seed=UINT64_MAX");
    w = d, strcpy(w.image, "/tmp/model.img");
    CHECK(parse("x image=/tmp/model.img", &a, &why, &at, &n) == 0 && same(&a, &w), "image");

    /* Policies and predictors by name, in mf_policy / mf_predictor order, or
     * by number. */
    const char *policies[] = {"none", "lru", "lfu", "edgemoe"};
    const char *predictors[] = {"none", "cooc", "lookahead", "combined"};
    for (int i = 0; i < 4; i++) {
        char cl[64];
        snprintf(cl, sizeof cl, "x policy=%s predictor=%s", policies[i], predictors[3 - i]);
        w = d, w.policy = i, w.predictor = 3 - i;
        CHECK(parse(cl, &a, &why, &at, &n) == 0 && same(&a, &w), "%s", cl);
        snprintf(cl, sizeof cl, "x policy=%d predictor=%d", i, 3 - i);
        CHECK(parse(cl, &a, &why, &at, &n) == 0 && same(&a, &w), "%s", cl);
    }

    /* Decimals: the double nearest the decimal, as strtod gives. */
    const char *decs[] = {"0.8", "1", "0.95", "1.0", ".5", "2.", "0.12345678901234", "123456789012345", "0000"};
    for (size_t i = 0; i < sizeof decs / sizeof decs[0]; i++) {
        char cl[64];
        snprintf(cl, sizeof cl, "x temperature=%s", decs[i]);
        w = d, w.temperature = strtod(decs[i], NULL);
        CHECK(parse(cl, &a, &why, &at, &n) == 0 && same(&a, &w), "%s: got %.17g", cl, a.temperature);
    }
    w = d, w.top_p = 1.0;
    CHECK(parse("x top_p=1", &a, &why, &at, &n) == 0 && same(&a, &w), "top_p=1");
    w = d, w.top_p = 0.001;
    CHECK(parse("x top_p=0.001", &a, &why, &at, &n) == 0 && same(&a, &w), "top_p=0.001");

    /* Several keys, any spacing, the last of a repeated key wins. */
    w = d, w.tokens = 7, w.ctx = 8, w.policy = 2;
    CHECK(parse("fw  tokens=3   ctx=8 policy=lfu tokens=7 ", &a, &why, &at, &n) == 0 && same(&a, &w),
          "several keys");

    /* prompt=: the rest of the line, spaces kept, \n and \\ unescaped, other
     * backslashes kept; keys after it are prompt text. */
    w = d, w.tokens = 2;
    strcpy(w.prompt, "ROMEO: a b  tokens=9\nx\\y\\z");
    w.prompt_len = strlen(w.prompt);
    CHECK(parse("fw tokens=2 prompt=ROMEO: a b  tokens=9\\nx\\\\y\\z", &a, &why, &at, &n) == 0 && same(&a, &w),
          "prompt: got '%s'", a.prompt);
    w = d, w.prompt[0] = 0, w.prompt_len = 0;
    CHECK(parse("fw prompt=", &a, &why, &at, &n) == 0 && same(&a, &w), "empty prompt");
    w = d, strcpy(w.prompt, "a\\"), w.prompt_len = 2;
    CHECK(parse("fw prompt=a\\", &a, &why, &at, &n) == 0 && same(&a, &w), "prompt ending in a backslash");
    {
        static char cl[MF_MAX_PROMPT + 64];
        strcpy(cl, "fw prompt=");
        size_t base = strlen(cl);
        memset(cl + base, 'p', MF_MAX_PROMPT);
        cl[base + MF_MAX_PROMPT] = 0;
        CHECK(parse(cl, &a, &why, &at, &n) == 0 && a.prompt_len == MF_MAX_PROMPT &&
                  a.prompt[MF_MAX_PROMPT] == 0 && a.prompt[MF_MAX_PROMPT - 1] == 'p',
              "a prompt of MF_MAX_PROMPT bytes");
        /* escapes count once: MF_MAX_PROMPT - 1 bytes and a \n fit */
        strcpy(cl + base + MF_MAX_PROMPT - 1, "\\n");
        CHECK(parse(cl, &a, &why, &at, &n) == 0 && a.prompt_len == MF_MAX_PROMPT &&
                  a.prompt[MF_MAX_PROMPT - 1] == '\n',
              "a prompt of MF_MAX_PROMPT bytes ending in an escape");
        strcpy(cl + base + MF_MAX_PROMPT, "q");
        expect_bad(cl, cl + 3);
        CHECK(parse(cl, &a, &why, &at, &n) == 2 && !strcmp(why, "prompt too long"), "why: %s", why);
    }

    /* Errors name the argument and leave the status 2. */
    expect_bad("x tokens=4294967296", "tokens=4294967296");
    expect_bad("x tokens=99999999999999999999999", "tokens=99999999999999999999999");
    expect_bad("x ctx=", "ctx=");
    expect_bad("x ctx=-1", "ctx=-1");
    expect_bad("x ctx=1e3", "ctx=1e3");
    expect_bad("x slots=+2", "slots=+2");
    expect_bad("x seed=18446744073709551616", "seed=18446744073709551616");
    expect_bad("x policy=4", "policy=4");
    expect_bad("x policy=belady", "policy=belady");
    expect_bad("x policy=LFU", "policy=LFU");
    expect_bad("x predictor=oracle", "predictor=oracle");
    expect_bad("x predictor=4", "predictor=4");
    expect_bad("x temperature=", "temperature=");
    expect_bad("x temperature=.", "temperature=.");
    expect_bad("x temperature=1.2.3", "temperature=1.2.3");
    expect_bad("x temperature=-1", "temperature=-1");
    expect_bad("x temperature=1e-3", "temperature=1e-3");
    expect_bad("x temperature=0.123456789012345", "temperature=0.123456789012345"); /* 16 digits */
    expect_bad("x temperature=1234567890123456", "temperature=1234567890123456");
    expect_bad("x top_p=0", "top_p=0");
    expect_bad("x top_p=1.01", "top_p=1.01");
    expect_bad("x quiet=yes", "quiet=yes");
    expect_bad("x bogus=1", "bogus=1");
    expect_bad("x =1", "=1");
    expect_bad("x Tokens=1", "Tokens=1");
    expect_bad("x tokens", "tokens");
    expect_bad("x tokens 5 prompt=hi", "tokens");
    expect_bad("x ctx=16 slots=two tokens=3", "slots=two");
    expect_bad("x image=", "image=");
    {
        static char cl[400];
        strcpy(cl, "x image=");
        memset(cl + 8, 'f', 256);
        cl[8 + 256] = 0;
        expect_bad(cl, cl + 2);
        cl[8 + 255] = 0;
        CHECK(parse(cl, &a, &why, &at, &n) == 0 && strlen(a.image) == 255, "a 255-byte image path");
    }
    /* what is set before a bad argument may stay set, but a failed parse
     * never writes past a field: the prompt stays NUL-terminated */
    CHECK(parse("x tokens=5 ctx=bad", &a, &why, &at, &n) == 2 && a.prompt[a.prompt_len] == 0, "partial parse");
    return mf_test_done("test_fw_cmdline");
}
