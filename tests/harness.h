/*
 * The test harness: a check counts as passed or failed, a failure prints
 * where and why, and mf_test_done() prints "NAME: N passed, N failed" and
 * returns the exit status. tests/run.sh adds up these lines.
 */
#ifndef MF_TEST_HARNESS_H
#define MF_TEST_HARNESS_H

#include <stdio.h>

static int mf_test_passed, mf_test_failed;

#define CHECK(cond, ...)                                                              \
    do {                                                                              \
        if (cond) {                                                                   \
            mf_test_passed++;                                                         \
        } else {                                                                      \
            mf_test_failed++;                                                         \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);           \
            fprintf(stderr, __VA_ARGS__);                                             \
            fputc('\n', stderr);                                                      \
        }                                                                             \
    } while (0)

static inline int mf_test_done(const char *name)
{
    printf("%s: %d passed, %d failed\n", name, mf_test_passed, mf_test_failed);
    fflush(stdout);
    return mf_test_failed ? 1 : 0;
}

#endif
