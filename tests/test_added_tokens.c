/* Added tokens with "normalized": true, in the converter (tools/lib/tokconv.c).
 *
 * tokenizers cuts the normalized: false added tokens out of the raw text
 * first, then normalizes each piece and cuts the normalized: true tokens
 * out of it, matching their normalized content. The runtime cuts every
 * added token out of the raw text. The converter must take a normalized
 * token only where both give the same ids, and refuse it with a message
 * naming it elsewhere:
 *  - under Prepend/Replace (Llama's converted tokenizer.json) a normalized
 *    token is matched as "▁<pad>" in the normalized text: refused;
 *  - under NFC (Qwen2, OLMoE): taken when NFC neither changes it nor joins
 *    it to its neighbours (OLMoE's runs of spaces), refused when it is not
 *    NFC, starts with a combining mark, or ends with a character that a
 *    following mark composes with (">" + U+0338 = U+226F);
 *  - a normalized token that contains a non-normalized one, or ends where
 *    one begins, would win a cut that tokenizers gives the other: refused.
 * "normalized" absent means !special, as tokenizers' AddedToken defaults.
 * A string listed twice is one added token when both name the same id, and
 * refused when they name two.
 * The same checks on a fixture without any normalized token keep every
 * existing tokenizer accepted. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../runtime/moeflash.h"
#include "../runtime/tokenizer.h"
#include "../tools/lib/json.h"
#include "../tools/lib/tokconv.h"
#include "harness.h"

static char *base_bl, *base_sp;
static size_t len_bl, len_sp;

/* base with its "added_tokens" array replaced by `added` (the JSON text of
 * the array), and, when nfc, the null normalizer replaced by NFC. */
static char *variant(const char *base, const char *added, int nfc)
{
    const char *a = strstr(base, "\"added_tokens\":");
    const char *open = a ? strchr(a, '[') : NULL, *close = open ? strchr(open, ']') : NULL;
    if (!close) return NULL;
    size_t n = strlen(base) + strlen(added) + 64;
    char *out = malloc(n), *o = out;
    o += sprintf(o, "%.*s%s", (int)(a - base), base, "\"added_tokens\": ");
    o += sprintf(o, "%s", added);
    const char *rest = close + 1;
    const char *nn = nfc ? strstr(rest, "\"normalizer\": null") : NULL;
    if (nfc && !nn) {
        free(out);
        return NULL;
    }
    if (nfc) {
        o += sprintf(o, "%.*s\"normalizer\": {\"type\": \"NFC\"}", (int)(nn - rest), rest);
        rest = nn + strlen("\"normalizer\": null");
    }
    sprintf(o, "%s", rest);
    return out;
}

/* Converts; 0 and the section, or -1 and the message in err. */
static int convert(const char *json, uint8_t **sec, size_t *len, char *err, size_t errlen)
{
    *sec = NULL;
    return mf_tokconv_build_mem(json, strlen(json), NULL, 0, sec, len, err, errlen);
}

#define EOT "{\"id\": 0, \"content\": \"<|endoftext|>\", \"normalized\": false, \"special\": true}"
#define TOK(id, content, norm) "{\"id\": " #id ", \"content\": \"" content "\", \"normalized\": " norm ", \"special\": false}"

typedef struct {
    const char *name, *added;
    int nfc, ok;
    const char *msg; /* a part of the error when refused */
} bl_case;

static void test_bytelevel(void)
{
    static const bl_case cases[] = {
        {"no normalized token (as shipped)", "[" EOT "]", 1, 1, NULL},
        {"runs of spaces under NFC (OLMoE)", "[" EOT ", " TOK(1024, "  ", "true") ", " TOK(1025, "   ", "true") "]", 1,
         1, NULL},
        {"ASCII word ending in a letter under NFC", "[" EOT ", " TOK(1024, "<pad>x", "true") "]", 1, 0,
         "can join it"},
        {"ends with > under NFC (> + U+0338 = U+226F)", "[" EOT ", " TOK(1024, "<pad>", "true") "]", 1, 0,
         "\"<pad>\" with \"normalized\": true under NFC"},
        {"ends with > without a normalizer", "[" EOT ", " TOK(1024, "<pad>", "true") "]", 0, 1, NULL},
        {"ends with > and not normalized, under NFC", "[" EOT ", " TOK(1024, "<pad>", "false") "]", 1, 1, NULL},
        {"not NFC (e + U+0301)", "[" EOT ", " TOK(1024, "  e\\u0301 ", "true") "]", 1, 0, "NFC changes it"},
        {"starts with a combining mark", "[" EOT ", " TOK(1024, "\\u0301  ", "true") "]", 1, 0, "NFC changes it"},
        {"ends with a combining mark", "[" EOT ", " TOK(1024, "  \\u00e9\\u0323", "true") "]", 1, 0, "NFC"},
        {"Hangul L jamo last (L + V compose)", "[" EOT ", " TOK(1024, "  \\u1100", "true") "]", 1, 0, "NFC"},
        {"contains the non-normalized <|endoftext|>", "[" EOT ", " TOK(1024, "<|endoftext|>!", "true") "]", 0, 0,
         "overlap"},
        {"ends with the start of <|endoftext|>", "[" EOT ", " TOK(1024, "ab<|", "true") "]", 0, 0, "overlap"},
        {"inside <|endoftext|> (which tokenizers cuts first too)", "[" EOT ", " TOK(1024, "endof", "true") "]", 0,
         1, NULL},
        {"starts with the end of <|endoftext|>", "[" EOT ", " TOK(1024, "|>ab", "true") "]", 0, 1, NULL},
        {"\"normalized\" absent, not special = normalized", "[" EOT ", {\"id\": 1024, \"content\": \"<pad>\"}]", 1, 0,
         "\"<pad>\" with \"normalized\": true"},
        {"\"normalized\" absent, special = not normalized",
         "[" EOT ", {\"id\": 1024, \"content\": \"<pad>\", \"special\": true}]", 1, 1, NULL},
        {"empty and normalized", "[" EOT ", " TOK(1024, "", "true") "]", 1, 0, "bad added token"},
        /* the same string twice: the same id is one token, two ids are refused */
        {"<|endoftext|> twice as id 0", "[" EOT ", " EOT "]", 0, 1, NULL},
        {"<pad> as ids 1024 and 1025", "[" EOT ", " TOK(1024, "<pad>", "false") ", " TOK(1025, "<pad>", "false") "]",
         0, 0, "\"<pad>\" appears twice, with ids 1024 and 1025"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const bl_case *c = &cases[i];
        char *json = variant(base_bl, c->added, c->nfc);
        CHECK(json != NULL, "%s: fixture", c->name);
        if (!json) continue;
        uint8_t *sec;
        size_t len;
        char err[300] = "";
        int rc = convert(json, &sec, &len, err, sizeof err);
        if (c->ok)
            CHECK(rc == 0 && sec, "%s: refused: %s", c->name, err);
        else
            CHECK(rc == -1 && strstr(err, c->msg), "%s: rc %d, message \"%s\" (wanted \"%s\")", c->name, rc, err,
                  c->msg);
        free(sec);
        free(json);
    }

    /* The OLMoE-like runs of spaces: cut out as tokenizers cuts them from
     * the normalized text (NFC leaves spaces alone), longest first. */
    char *json = variant(base_bl, "[" EOT ", " TOK(1024, "  ", "true") ", " TOK(1025, "   ", "true") "]", 1);
    uint8_t *sec = NULL;
    size_t len;
    char err[300];
    mf_tokenizer t;
    if (json && convert(json, &sec, &len, err, sizeof err) == 0 && mf_tokenizer_init(&t, sec, len, 0) == MF_OK) {
        static uint8_t scratch[MF_TOKENIZER_SCRATCH(64)];
        uint32_t ids[16], n = 0;
        const char *text = "a   b  c";
        CHECK(mf_tokenizer_encode(&t, text, strlen(text), ids, 16, &n, scratch, sizeof scratch) == MF_OK && n == 5 &&
                  ids[1] == 1025 && ids[3] == 1024,
              "\"a   b  c\" -> a, <3 spaces>, b, <2 spaces>, c: %u ids, [1] %u [3] %u", n, n > 1 ? ids[1] : 0,
              n > 3 ? ids[3] : 0);
    } else {
        CHECK(0, "spaces tokenizer: %s", json ? err : "fixture");
    }
    free(sec);
    free(json);
}

static void test_sentencepiece_hf(void)
{
    static const char *sp_base = "{\"id\": 0, \"content\": \"<unk>\", \"normalized\": false, \"special\": true}, "
                                 "{\"id\": 1, \"content\": \"<s>\", \"normalized\": false, \"special\": true}, "
                                 "{\"id\": 2, \"content\": \"</s>\", \"normalized\": false, \"special\": true}";
    struct {
        const char *name, *extra;
        int ok;
    } cases[] = {
        {"as shipped", "", 1},
        {"<pad> not normalized", ", " TOK(1024, "<pad>", "false"), 1},
        {"<pad> normalized (matched as \\u2581<pad> by tokenizers)", ", " TOK(1024, "<pad>", "true"), 0},
        {"\"normalized\" absent, not special", ", {\"id\": 1024, \"content\": \"<pad>\"}", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char added[600];
        snprintf(added, sizeof added, "[%s%s]", sp_base, cases[i].extra);
        char *json = variant(base_sp, added, 0);
        CHECK(json != NULL, "%s: fixture", cases[i].name);
        if (!json) continue;
        uint8_t *sec;
        size_t len;
        char err[300] = "";
        int rc = convert(json, &sec, &len, err, sizeof err);
        if (cases[i].ok)
            CHECK(rc == 0 && sec, "sentencepiece-hf, %s: refused: %s", cases[i].name, err);
        else
            CHECK(rc == -1 && strstr(err, "\"<pad>\" with \"normalized\": true under the Prepend/Replace"),
                  "sentencepiece-hf, %s: rc %d, message \"%s\"", cases[i].name, rc, err);
        free(sec);
        free(json);
    }
}

int main(void)
{
    base_bl = mf_read_file("tests/data/tok-bytelevel/tokenizer.json", &len_bl);
    base_sp = mf_read_file("tests/data/tok-sentencepiece-hf/tokenizer.json", &len_sp);
    CHECK(base_bl && base_sp, "fixtures");
    if (base_bl && base_sp) {
        test_bytelevel();
        test_sentencepiece_hf();
    }
    free(base_bl);
    free(base_sp);
    return mf_test_done("test_added_tokens");
}
