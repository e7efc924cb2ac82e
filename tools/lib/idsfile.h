/* Token-id files (`--ids FILE` of generate, trace and ppl): decimal ids
 * separated by whitespace, each below the vocabulary. */
#ifndef MF_TOOLS_IDSFILE_H
#define MF_TOOLS_IDSFILE_H

#include <stddef.h>
#include <stdint.h>

/* Parses s[0..len) (not NUL-terminated). On success returns 0 with *ids a
 * malloc'd array of *n ids (free it; NULL when *n is 0). On failure returns
 * -1, *ids NULL, and a one-line message in err: which id (1-based) is not an
 * integer below the vocabulary, or out of memory. */
int mf_ids_parse(const char *s, size_t len, uint32_t vocab, uint32_t **ids, uint32_t *n, char *err,
                 size_t errlen);

#endif
