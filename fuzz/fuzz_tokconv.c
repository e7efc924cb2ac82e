/*
 * libFuzzer harness: tools/lib/tokconv.c, the converter's reader of a
 * checkpoint's tokenizer (tokenizer.json through json.c, tokenizer.model
 * through the protobuf reader written there). The first byte picks the
 * file (even: tokenizer.json, odd: tokenizer.model), the rest is its bytes.
 * The converter must refuse with a one-line message or build a section
 * that the runtime accepts (mf_tokenizer_init): what convert writes into an
 * image must never be what the device then refuses. The accepted section
 * then encodes a text of every kind of character, and every id decodes.
 */
#include "fuzz_common.h"

#include "../runtime/tokenizer.h"
#include "../runtime/tokenizer_format.h"
#include "../tools/lib/tokconv.h"

int FUZZ_ENTRY(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    int spm = data[0] & 1;
    const uint8_t *body = data + 1;
    size_t n = size - 1;
    uint8_t *sec = NULL;
    size_t len = 0;
    char err[256];
    memset(err, 0x5A, sizeof err);
    int rc = spm ? mf_tokconv_build_mem(NULL, 0, body, n, &sec, &len, err, sizeof err)
                 : mf_tokconv_build_mem((const char *)body, n, NULL, 0, &sec, &len, err, sizeof err);
    if (rc) {
        FUZZ_CHECK(sec == NULL);
        FUZZ_CHECK(memchr(err, '\0', sizeof err) != NULL && err[0] && !strchr(err, '\n'));
        return 0;
    }
    FUZZ_CHECK(sec != NULL && len >= 4u * MF_TOKH_COUNT);
    uint32_t vocab;
    memcpy(&vocab, sec + 4 * MF_TOKH_N_VOCAB, 4);
    static mf_tokenizer t;
    int irc = mf_tokenizer_init(&t, sec, len, vocab);
    if (irc) fprintf(stderr, "converted section refused by the runtime: %d\n", irc);
    FUZZ_CHECK(irc == 0);
    static const char text[] = "ROMEO: Hello,  world!\n\t123 4567 caf\xC3\xA9 \xE2\x96\x81x \xF0\x9F\x99\x82 <s></s>";
    static uint8_t scratch[MF_TOKENIZER_SCRATCH(128)];
    uint32_t ids[256], nid = 0;
    if (mf_tokenizer_encode(&t, text, sizeof text - 1, ids, 256, &nid, scratch, sizeof scratch) == 0) {
        for (uint32_t i = 0; i < nid && i < 256; i++) {
            FUZZ_CHECK(ids[i] < vocab);
            char out[64];
            size_t ol;
            (void)mf_tokenizer_decode(&t, ids[i], out, sizeof out, &ol);
        }
    }
    free(sec);
    return 0;
}
