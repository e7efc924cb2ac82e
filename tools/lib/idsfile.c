#include "idsfile.h"

#include <stdio.h>
#include <stdlib.h>

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

int mf_ids_parse(const char *s, size_t len, uint32_t vocab, uint32_t **ids, uint32_t *n, char *err,
                 size_t errlen)
{
    *ids = NULL;
    *n = 0;
    /* every id but the last is followed by a space: at most len / 2 + 1 */
    size_t cap = len / 2 + 1, count = 0, i = 0;
    if (cap > UINT32_MAX) cap = UINT32_MAX;
    uint32_t *out = malloc(sizeof(uint32_t) * cap);
    if (!out) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    while (i < len) {
        if (is_space(s[i])) {
            i++;
            continue;
        }
        uint64_t v = 0;
        size_t start = i;
        while (i < len && s[i] >= '0' && s[i] <= '9' && v < vocab) v = v * 10 + (uint64_t)(s[i++] - '0');
        if (i == start || (i < len && !is_space(s[i])) || v >= vocab || count == cap) {
            snprintf(err, errlen, "id %zu is not an integer below the vocabulary (%u)", count + 1, vocab);
            free(out);
            return -1;
        }
        out[count++] = (uint32_t)v;
    }
    if (count == 0) {
        free(out);
        out = NULL;
    }
    *ids = out;
    *n = (uint32_t)count;
    return 0;
}
