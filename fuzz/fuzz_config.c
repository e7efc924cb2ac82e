/*
 * libFuzzer harness: tools/lib/hfconfig.c (config.json -> hyper-parameters).
 * On success the result must be usable to build an image header: the sizes
 * are positive, top_k <= experts, heads divisible by kv heads, epsilons
 * positive. On failure the message must be a non-empty C string of one
 * printable line (it quotes the file's strings).
 */
#include "fuzz_common.h"

#include "../runtime/image_format.h"
#include "../tools/lib/hfconfig.h"

int FUZZ_ENTRY(const uint8_t *data, size_t size)
{
    mf_hf_config c;
    char err[256];
    memset(err, 0x5A, sizeof err);
    if (mf_hfconfig_parse(&c, (const char *)data, size, err, sizeof err) == 0) {
        FUZZ_CHECK(c.arch >= MF_ARCH_MIXTRAL && c.arch <= MF_ARCH_OLMOE);
        FUZZ_CHECK(memchr(c.model_type, '\0', sizeof c.model_type) != NULL);
        FUZZ_CHECK(c.vocab && c.hidden && c.n_layers && c.n_heads && c.n_kv_heads && c.head_dim);
        FUZZ_CHECK(c.expert_ffn && c.n_experts && c.top_k);
        FUZZ_CHECK(c.top_k <= c.n_experts);
        FUZZ_CHECK(c.n_kv_heads <= c.n_heads && c.n_heads % c.n_kv_heads == 0);
        FUZZ_CHECK(c.rms_eps > 0 && c.rope_theta > 0);
    } else {
        FUZZ_CHECK(memchr(err, '\0', sizeof err) != NULL);
        FUZZ_CHECK(err[0] != '\0');
        for (const char *c = err; *c; c++) FUZZ_CHECK((unsigned char)*c >= 0x20 && *c != 0x7f); /* one line */
    }
    return 0;
}
