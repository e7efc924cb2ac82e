/* Placeholder until tokenizer conversion lands: every model is byte-level. */
#include "tokconv.h"

int mf_tokconv_build(const char *hf_dir, uint8_t **out, size_t *len, char *err, size_t errlen)
{
    (void)hf_dir;
    (void)err;
    (void)errlen;
    *out = 0;
    *len = 0;
    return 0;
}
