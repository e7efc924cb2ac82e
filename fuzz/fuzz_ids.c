/*
 * libFuzzer harness: tools/lib/idsfile.c (the `--ids FILE` token-id files
 * of generate, trace and ppl). The first 3 bytes set the vocabulary (1 to
 * 2^24), the rest is the file. The result is checked against a reference
 * written here: split on whitespace, each word all digits and, without its
 * leading zeros, a number below the vocabulary; accepted exactly when every
 * word is, with the same ids in order. A refusal has a one-line message.
 */
#include "fuzz_common.h"

#include "../tools/lib/idsfile.h"

static int ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

int FUZZ_ENTRY(const uint8_t *data, size_t size)
{
    if (size < 3) return 0;
    uint32_t vocab = 1u + ((uint32_t)data[0] | (uint32_t)data[1] << 8 | (uint32_t)data[2] << 16);
    const char *s = (const char *)data + 3;
    size_t len = size - 3;

    /* the reference */
    int want_ok = 1;
    size_t want_n = 0;
    for (size_t i = 0; i < len && want_ok;) {
        if (ws(s[i])) {
            i++;
            continue;
        }
        size_t j = i;
        while (j < len && !ws(s[j])) j++;
        size_t k = i;
        while (k < j && s[k] == '0') k++;
        uint64_t v = 0;
        int digits = 1;
        for (size_t t = i; t < j; t++)
            if (s[t] < '0' || s[t] > '9') digits = 0;
        if (!digits || j - k > 10) want_ok = 0;
        for (size_t t = k; want_ok && t < j; t++) v = v * 10 + (uint64_t)(s[t] - '0');
        if (v >= vocab) want_ok = 0;
        want_n++;
        i = j;
    }

    uint32_t *ids = NULL, n = 0;
    char err[128];
    memset(err, 0x5A, sizeof err);
    int rc = mf_ids_parse(s, len, vocab, &ids, &n, err, sizeof err);
    FUZZ_CHECK((rc == 0) == want_ok);
    if (rc == 0) {
        FUZZ_CHECK(n == want_n && (n == 0) == (ids == NULL));
        /* the same ids, word by word */
        size_t w = 0;
        for (size_t i = 0; i < len;) {
            if (ws(s[i])) {
                i++;
                continue;
            }
            uint64_t v = 0;
            while (i < len && !ws(s[i])) v = v * 10 + (uint64_t)(s[i++] - '0') % 10;
            /* (v wraps only for a refused word; accepted ones are < 2^24) */
            FUZZ_CHECK(w < n && ids[w] == (uint32_t)v && ids[w] < vocab);
            w++;
        }
    } else {
        FUZZ_CHECK(ids == NULL && n == 0);
        FUZZ_CHECK(memchr(err, '\0', sizeof err) != NULL && err[0] && !strchr(err, '\n'));
    }
    free(ids);
    return 0;
}
