/*
 * Tokenizer: conversion of tokenizer.json / tokenizer.model into the
 * section and the runtime's encode/decode over it, against the reference
 * libraries' ids (tests/data/tok-{bytelevel,sentencepiece}/tokenizer_golden.json, produced by
 * Hugging Face `tokenizers` and `sentencepiece`).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../runtime/moeflash.h"
#include "../runtime/tokenizer.h"
#include "../runtime/tokenizer_format.h"
#include "../runtime/unicode_nfc.h"
#include "../tools/lib/json.h"
#include "../tools/lib/tokconv.h"
#include "harness.h"

static size_t decode_all(mf_tokenizer *t, const uint32_t *ids, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    mf_tokenizer_decode_reset(t);
    for (size_t i = 0; i < n; i++) {
        size_t l = 0;
        if (cap - o < 64) return (size_t)-1;
        int rc = mf_tokenizer_decode(t, ids[i], out + o, cap - o, &l);
        if (rc) return (size_t)-1;
        o += l;
    }
    size_t l = 0;
    mf_tokenizer_decode_flush(t, out + o, cap - o, &l);
    return o + l;
}

static uint8_t *build(const char *dir, size_t *len)
{
    uint8_t *sec = NULL;
    char err[256];
    int rc = mf_tokconv_build(dir, &sec, len, err, sizeof err);
    CHECK(rc == 0 && sec, "%s: %s", dir, err);
    return rc == 0 ? sec : NULL;
}

/* Every golden case: same ids, and decoding gives the text back. */
static void golden_cases(const char *dir, mf_tokenizer *t, const mf_json *cases)
{
    /* HF's Metaspace prepends no U+2581 to a segment that starts with a
     * space, unlike sentencepiece: those golden cases do not apply */
    int skip_leading_space = t->hdr[MF_TOKH_FLAGS] & MF_TOKF_PREFIX_IF_NO_SPACE;
    size_t scratch_cap = 1 << 20;
    void *scratch = malloc(scratch_cap);
    uint32_t ids[4096];
    char out[16384];
    int n_ok = 0, n_cases = 0;
    for (const mf_json *c = cases ? cases->child : NULL; c; c = c->next) {
        const mf_json *text = mf_json_get(c, "text"), *gids = mf_json_get(c, "ids"), *dec = mf_json_get(c, "decoded");
        if (!text || !gids) continue;
        if (skip_leading_space && text->str_len && text->str[0] == ' ') continue;
        n_cases++;
        uint32_t n = 0;
        size_t need = mf_tokenizer_scratch_bytes(t, text->str_len);
        int rc = mf_tokenizer_encode(t, text->str, text->str_len, ids, 4096, &n, scratch,
                                     need < scratch_cap ? need : scratch_cap);
        int same = rc == 0 && n == gids->count;
        for (size_t i = 0; same && i < n; i++)
            if (ids[i] != (uint32_t)mf_json_at(gids, i)->number) same = 0;
        CHECK(same, "%s: encode \"%s\": rc %d, %u ids, want %zu", dir, text->str, rc, n, gids->count);
        if (!same) {
            fprintf(stderr, "  got:  ");
            for (uint32_t i = 0; i < n && i < 60; i++) fprintf(stderr, "%u ", ids[i]);
            fprintf(stderr, "\n  want: ");
            for (size_t i = 0; i < gids->count && i < 60; i++) fprintf(stderr, "%u ", (uint32_t)mf_json_at(gids, i)->number);
            fprintf(stderr, "\n");
        }
        /* decode the golden ids one token at a time */
        uint32_t gi[4096];
        for (size_t i = 0; i < gids->count && i < 4096; i++) gi[i] = (uint32_t)mf_json_at(gids, i)->number;
        size_t dl = decode_all(t, gi, gids->count, out, sizeof out);
        int dok = dec && dl == dec->str_len && memcmp(out, dec->str, dl) == 0;
        CHECK(dok, "%s: decode of \"%s\" gives \"%.*s\"", dir, text->str, (int)(dl == (size_t)-1 ? 0 : dl), out);
        CHECK(dec && dec->str_len == text->str_len && memcmp(dec->str, text->str, text->str_len) == 0,
              "golden decoded != text");
        n_ok += same && dok;
    }
    CHECK(n_cases >= (skip_leading_space ? 15 : 17), "%s: only %d golden cases", dir, n_cases);
    printf("%s: %d/%d golden cases exact\n", dir, n_ok, n_cases);
    free(scratch);
}

static mf_json_doc load_golden(const char *dir)
{
    char path[512];
    snprintf(path, sizeof path, "%s/tokenizer_golden.json", dir);
    size_t len;
    char *text = mf_read_file(path, &len);
    mf_json_doc doc;
    memset(&doc, 0, sizeof doc);
    CHECK(text && mf_json_parse(&doc, text, len) == 0, "%s: cannot parse", path);
    free(text);
    return doc;
}

static void test_bytelevel(void)
{
    const char *dir = "tests/data/tok-bytelevel";
    size_t len;
    uint8_t *sec = build(dir, &len);
    if (!sec) return;
    mf_tokenizer t;
    CHECK(mf_tokenizer_init(&t, sec, len, 1024) == MF_OK, "init");
    CHECK(t.hdr[MF_TOKH_MODE] == MF_TOKMODE_BYTE && t.hdr[MF_TOKH_PRETOK] == MF_TOKPRE_QWEN2, "byte mode, qwen2 regex");
    mf_json_doc doc = load_golden(dir);
    golden_cases(dir, &t, mf_json_get(doc.root, "cases"));

    /* the validation split, encoded whole */
    size_t flen;
    char *shakes = mf_read_file("tests/data/tinyshakespeare.txt", &flen);
    CHECK(shakes != NULL, "tinyshakespeare.txt");
    if (shakes) {
        size_t start = (size_t)((double)flen * 0.9);
        const char *val = shakes + start;
        size_t vlen = flen - start;
        double want_bytes = 0, want_tokens = 0;
        mf_json_get_number(doc.root, "val_text_bytes", &want_bytes);
        mf_json_get_number(doc.root, "val_text_tokens", &want_tokens);
        CHECK(vlen == (size_t)want_bytes, "val split %zu bytes, want %.0f", vlen, want_bytes);
        size_t sb = mf_tokenizer_scratch_bytes(&t, vlen);
        void *scratch = malloc(sb);
        uint32_t *ids = malloc(sizeof(uint32_t) * (vlen + 1));
        uint32_t n = 0;
        int rc = mf_tokenizer_encode(&t, val, vlen, ids, (uint32_t)vlen + 1, &n, scratch, sb);
        CHECK(rc == 0 && n == 46555 && n == (uint32_t)want_tokens, "val split: %u tokens, want 46555", n);
        const mf_json *first = mf_json_get(doc.root, "val_first_200_ids");
        CHECK(first && first->count == 200, "val_first_200_ids");
        int same = first != NULL;
        for (size_t i = 0; first && i < first->count && i < n; i++)
            if (ids[i] != (uint32_t)mf_json_at(first, i)->number) {
                same = 0;
                fprintf(stderr, "  val id %zu: %u want %u\n", i, ids[i], (uint32_t)mf_json_at(first, i)->number);
                break;
            }
        CHECK(same, "val split first 200 ids");
        /* decode it all back */
        char *back = malloc(vlen + 1024);
        size_t bl = decode_all(&t, ids, n, back, vlen + 1024);
        CHECK(bl == vlen && memcmp(back, val, vlen) == 0, "val split round trip (%zu bytes)", bl);
        /* the same with the smallest scratch: chunks cut, still round trips */
        uint32_t n2 = 0;
        static uint8_t small[MF_TOKENIZER_SCRATCH(16)];
        rc = mf_tokenizer_encode(&t, val, vlen, ids, (uint32_t)vlen + 1, &n2, small, sizeof small);
        CHECK(rc == 0 && n2 >= n, "small scratch encode rc %d n %u", rc, n2);
        bl = decode_all(&t, ids, n2, back, vlen + 1024);
        CHECK(bl == vlen && memcmp(back, val, vlen) == 0, "small scratch round trip");
        /* max_ids too small: counts anyway */
        uint32_t n3 = 0;
        rc = mf_tokenizer_encode(&t, val, vlen, ids, 10, &n3, scratch, sb);
        CHECK(rc == 0 && n3 == n, "truncated output still counts (%u)", n3);
        free(back);
        free(ids);
        free(scratch);
        free(shakes);
    }

    /* special token in text, and decoding held back for incomplete UTF-8 */
    {
        static uint8_t scratch[MF_TOKENIZER_SCRATCH(256)];
        uint32_t ids[64], n = 0;
        const char *s = "a<|endoftext|>b";
        mf_tokenizer_encode(&t, s, strlen(s), ids, 64, &n, scratch, sizeof scratch);
        CHECK(n == 3 && ids[0] == 65 && ids[1] == 0 && ids[2] == 66, "special token split: n %u", n);
        CHECK(mf_tokenizer_is_special(&t, 0) && !mf_tokenizer_is_special(&t, 65), "is_special");
        CHECK(mf_tokenizer_bos(&t) == 0xFFFFFFFFu, "no bos for the byte-level BPE");
        const char *e = "\xC3\xA9"; /* é = bytes C3 A9: two byte tokens */
        mf_tokenizer_encode(&t, e, 2, ids, 64, &n, scratch, sizeof scratch);
        CHECK(n == 2, "é as two byte tokens (%u)", n);
        char out[64];
        size_t l1 = 99, l2 = 99;
        mf_tokenizer_decode_reset(&t);
        mf_tokenizer_decode(&t, ids[0], out, sizeof out, &l1);
        CHECK(l1 == 0 && t.n_pending == 1, "first byte of é held back");
        mf_tokenizer_decode(&t, ids[1], out, sizeof out, &l2);
        CHECK(l2 == 2 && memcmp(out, e, 2) == 0, "é completed");
        /* a lone continuation byte -> U+FFFD; an unfinished one flushed -> U+FFFD */
        mf_tokenizer_decode_reset(&t);
        mf_tokenizer_decode(&t, ids[1], out, sizeof out, &l1);
        CHECK(l1 == 3 && memcmp(out, "\xEF\xBF\xBD", 3) == 0, "lone continuation byte");
        mf_tokenizer_decode(&t, ids[0], out, sizeof out, &l1);
        mf_tokenizer_decode_flush(&t, out, sizeof out, &l2);
        CHECK(l1 == 0 && l2 == 3, "flush of an unfinished sequence");
        CHECK(mf_tokenizer_decode(&t, 1024, out, sizeof out, &l1) == MF_E_TOKEN, "id out of range");
        {
            /* a model vocabulary padded beyond the tokenizer's: those ids decode to nothing */
            mf_tokenizer tp;
            CHECK(mf_tokenizer_init(&tp, t.tables, t.table_bytes, 1100) == MF_OK, "padded vocab init");
            CHECK(mf_tokenizer_decode(&tp, 1050, out, sizeof out, &l1) == MF_OK && l1 == 0, "padding id -> nothing");
            CHECK(mf_tokenizer_decode(&tp, 1100, out, sizeof out, &l1) == MF_E_TOKEN, "beyond the model vocab");
        }
        /* cap too small */
        mf_tokenizer_decode_reset(&t);
        CHECK(mf_tokenizer_decode(&t, 1006, out, 1, &l1) == MF_E_ARG && l1 > 1, "decode cap too small");
        /* too little scratch */
        CHECK(mf_tokenizer_encode(&t, "ab", 2, ids, 64, &n, scratch, 8) == MF_E_ARENA, "scratch too small");
    }

    /* small-qwen3-moe-bpe ships the same tokenizer: same section; its
     * golden.json prompts encode to its tokens, greedy ids decode to greedy_text */
    size_t len2;
    uint8_t *sec2 = build("tests/data/small-qwen3-moe-bpe", &len2);
    /* but the model folder's config.json names an end-of-sequence id */
    int one_eos = sec2 && len2 >= 4 * MF_TOK_HEADER_WORDS && sec2[4 * MF_TOKH_N_EOS] == 1;
    if (sec2 && len2 >= 4 * MF_TOK_HEADER_WORDS) memset(sec2 + 4 * MF_TOKH_N_EOS, 0, 4 * (1 + MF_TOK_MAX_EOS));
    CHECK(one_eos, "small-qwen3-moe-bpe: one eos id");
    CHECK(sec2 && len2 == len && memcmp(sec, sec2, len) == 0, "small-qwen3-moe-bpe tokenizer == tok-bytelevel");
    free(sec2);
    {
        size_t glen;
        char *gtext = mf_read_file("tests/data/small-qwen3-moe-bpe/golden.json", &glen);
        mf_json_doc g;
        memset(&g, 0, sizeof g);
        int parsed = gtext && mf_json_parse(&g, gtext, glen) == 0;
        CHECK(parsed, "small-qwen3-moe-bpe/golden.json");
        const mf_json *cases = parsed ? mf_json_get(g.root, "cases") : NULL;
        int n_cases = 0;
        for (const mf_json *c = cases ? cases->child : NULL; c; c = c->next) {
            const mf_json *prompt = mf_json_get(c, "prompt"), *toks = mf_json_get(c, "tokens");
            const mf_json *cont = mf_json_get(c, "greedy_continuation"), *gt = mf_json_get(c, "greedy_text");
            if (!prompt || !toks || !cont || !gt) continue;
            n_cases++;
            static uint8_t sc[MF_TOKENIZER_SCRATCH(1024)];
            uint32_t ids[512], n = 0;
            mf_tokenizer_encode(&t, prompt->str, prompt->str_len, ids, 512, &n, sc, sizeof sc);
            int same = n == toks->count;
            for (size_t i = 0; same && i < n; i++) same = ids[i] == (uint32_t)mf_json_at(toks, i)->number;
            CHECK(same, "small-qwen3-moe-bpe prompt %d tokens", n_cases);
            uint32_t gi[512];
            size_t ng = cont->count < 512 ? cont->count : 512;
            for (size_t i = 0; i < ng; i++) gi[i] = (uint32_t)mf_json_at(cont, i)->number;
            char out[4096];
            size_t ol = decode_all(&t, gi, ng, out, sizeof out);
            CHECK(ol == gt->str_len && memcmp(out, gt->str, ol) == 0, "small-qwen3-moe-bpe greedy_text %d", n_cases);
        }
        CHECK(n_cases >= 3, "small-qwen3-moe-bpe: %d cases", n_cases);
        if (parsed) mf_json_free(&g);
        free(gtext);
    }

    /* a corrupted section: init refuses, or encode/decode stay in bounds */
    {
        uint8_t *bad = malloc(len);
        mf_tokenizer tb;
        CHECK(mf_tokenizer_init(&tb, sec, 100, 1024) != MF_OK, "truncated section refused");
        CHECK(mf_tokenizer_init(&tb, sec, len, 512) != MF_OK, "vocab larger than the model's refused");
        memcpy(bad, sec, len);
        bad[0] ^= 1;
        CHECK(mf_tokenizer_init(&tb, bad, len, 1024) == MF_E_FORMAT, "bad magic refused");
        uint32_t seed = 12345;
        int refused = 0;
        for (int k = 0; k < 300; k++) {
            memcpy(bad, sec, len);
            for (int f = 0; f < 4; f++) {
                seed = seed * 1103515245u + 12345u;
                size_t pos = (seed >> 8) % (k < 150 ? 128 : len);
                seed = seed * 1103515245u + 12345u;
                bad[pos] = (uint8_t)(seed >> 16);
            }
            if (mf_tokenizer_init(&tb, bad, len, 1024) != MF_OK) {
                refused++;
                continue;
            }
            static uint8_t scratch[MF_TOKENIZER_SCRATCH(64)];
            uint32_t ids[256], n = 0;
            const char *s = "Hello, world! <|endoftext|> caf\xC3\xA9 123";
            mf_tokenizer_encode(&tb, s, strlen(s), ids, 256, &n, scratch, sizeof scratch);
            char out[256];
            for (uint32_t i = 0; i < n && i < 256; i++) {
                size_t l;
                mf_tokenizer_decode(&tb, ids[i], out, sizeof out, &l);
            }
        }
        CHECK(refused > 0, "some corruptions refused (%d)", refused);
        free(bad);
    }
    mf_json_free(&doc);
    free(sec);
}

static void test_sentencepiece(void)
{
    const char *dir = "tests/data/tok-sentencepiece";
    size_t len;
    uint8_t *sec = build(dir, &len);
    if (!sec) return;
    mf_tokenizer t;
    CHECK(mf_tokenizer_init(&t, sec, len, 1024) == MF_OK, "init");
    CHECK(t.hdr[MF_TOKH_MODE] == MF_TOKMODE_CHAR && t.hdr[MF_TOKH_PREFIX] == MF_TOKPFX_TEXT &&
              (t.hdr[MF_TOKH_FLAGS] & MF_TOKF_BYTE_FALLBACK),
          "char mode, dummy prefix, byte fallback");
    mf_json_doc doc = load_golden(dir);
    golden_cases(dir, &t, mf_json_get(doc.root, "cases"));
    /* control tokens decode to nothing; <unk>=0 <s>=1 </s>=2 */
    char out[64];
    size_t l = 99;
    mf_tokenizer_decode_reset(&t);
    CHECK(mf_tokenizer_decode(&t, 1, out, sizeof out, &l) == 0 && l == 0, "<s> decodes to nothing");
    CHECK(mf_tokenizer_is_special(&t, 1) && mf_tokenizer_is_special(&t, 2), "<s> </s> special");
    CHECK(mf_tokenizer_bos(&t) == 1, "bos <s> = 1");
    /* the dummy-prefix space is dropped at the start of a text only */
    {
        static uint8_t sc[MF_TOKENIZER_SCRATCH(64)];
        uint32_t ids[8], n = 0;
        mf_tokenizer_encode(&t, "a", 1, ids, 8, &n, sc, sizeof sc); /* "▁a" */
        CHECK(n == 1, "\"a\" is one piece (%u)", n);
        mf_tokenizer_decode_reset(&t);
        CHECK(mf_tokenizer_decode(&t, ids[0], out, sizeof out, &l) == 0 && l == 1 && out[0] == 'a', "start: \"a\"");
        CHECK(mf_tokenizer_decode(&t, ids[0], out, sizeof out, &l) == 0 && l == 2 && !memcmp(out, " a", 2),
              "later: \" a\"");
        mf_tokenizer_decode_reset(&t);
        mf_tokenizer_decode_continue(&t);
        CHECK(mf_tokenizer_decode(&t, ids[0], out, sizeof out, &l) == 0 && l == 2, "after a prompt: \" a\"");
    }
    mf_json_free(&doc);
    free(sec);
}

/* tok-sentencepiece-hf/tokenizer.json is what transformers' LlamaConverter
 * makes of tok-sentencepiece/tokenizer.model (normalizers Prepend+Replace,
 * BPE with byte_fallback and fuse_unk, decoders Replace/ByteFallback/Fuse/
 * Strip); `tokenizers` gives sentencepiece's ids for it, so the same golden
 * ids must come out. Then the newer form: Metaspace pre-tokenizer
 * (prepend_scheme first, split false) and Metaspace decoder. */
static void test_sentencepiece_hf(void)
{
    const char *dir = "tests/data/tok-sentencepiece-hf";
    size_t len;
    uint8_t *sec = build(dir, &len);
    if (!sec) return;
    mf_tokenizer t;
    CHECK(mf_tokenizer_init(&t, sec, len, 1024) == MF_OK, "init");
    CHECK(t.hdr[MF_TOKH_MODE] == MF_TOKMODE_CHAR && t.hdr[MF_TOKH_PREFIX] == MF_TOKPFX_SEGMENT &&
              (t.hdr[MF_TOKH_FLAGS] & MF_TOKF_FUSE_UNK) && (t.hdr[MF_TOKH_FLAGS] & MF_TOKF_SPLIT_META),
          "hf char mode");
    CHECK(mf_tokenizer_bos(&t) == 1, "bos from the TemplateProcessing post-processor");
    mf_json_doc doc = load_golden("tests/data/tok-sentencepiece");
    golden_cases(dir, &t, mf_json_get(doc.root, "cases"));
    free(sec);

    char tmp[] = "/tmp/mf_tok_XXXXXX";
    if (mkdtemp(tmp)) {
        size_t blen;
        char *base = mf_read_file("tests/data/tok-sentencepiece-hf/tokenizer.json", &blen);
        const char *norm_from = strstr(base, "\"normalizer\":"), *norm_end = strstr(base, "\"pre_tokenizer\": null,");
        const char *dec_from = strstr(base, "\"decoder\":"), *dec_end = strstr(base, "\"model\":");
        CHECK(norm_from && norm_end && dec_from && dec_end && norm_end < dec_from, "layout of tokenizer.json");
        if (norm_from && norm_end && dec_from && dec_end && norm_end < dec_from) {
            char path[256];
            snprintf(path, sizeof path, "%s/tokenizer.json", tmp);
            FILE *f = fopen(path, "wb");
            fwrite(base, 1, (size_t)(norm_from - base), f);
            fputs("\"normalizer\": null, \"pre_tokenizer\": {\"type\": \"Metaspace\", \"replacement\": "
                  "\"\\u2581\", \"prepend_scheme\": \"first\", \"split\": false},\n",
                  f);
            const char *after = norm_end + strlen("\"pre_tokenizer\": null,");
            fwrite(after, 1, (size_t)(dec_from - after), f);
            fputs("\"decoder\": {\"type\": \"Sequence\", \"decoders\": [{\"type\": \"ByteFallback\"}, "
                  "{\"type\": \"Metaspace\", \"replacement\": \"\\u2581\", \"prepend_scheme\": \"first\", "
                  "\"split\": false}]},\n",
                  f);
            fwrite(dec_end, 1, blen - (size_t)(dec_end - base), f);
            fclose(f);
            uint8_t *sec2 = build(tmp, &len);
            if (sec2 && mf_tokenizer_init(&t, sec2, len, 1024) == MF_OK) {
                CHECK(t.hdr[MF_TOKH_PREFIX] == MF_TOKPFX_FIRST, "metaspace first");
                golden_cases("metaspace form", &t, mf_json_get(doc.root, "cases"));
                /* Metaspace adds no U+2581 to a text that starts with a space
                 * (sentencepiece does): " " is one U+2581 here */
                static uint8_t sc[MF_TOKENIZER_SCRATCH(64)];
                uint32_t ids[8], n = 0;
                mf_tokenizer_encode(&t, " ", 1, ids, 8, &n, sc, sizeof sc);
                CHECK(n == 1 && ids[0] == 965, "metaspace: \" \" -> [965], got %u ids", n);
            }
            free(sec2);
            unlink(path);
        }
        free(base);
        rmdir(tmp);
    }
    mf_json_free(&doc);
}

/* decode(encode(s)) == s for pseudo-random valid UTF-8 of both kinds. */
static void test_roundtrip(void)
{
    const char *dirs[2] = {"tests/data/tok-bytelevel", "tests/data/tok-sentencepiece"};
    static const uint32_t pool[] = {' ', ' ', ' ', '\n', '\r', '\t', 'a', 'b', 'Z', 'q', '0', '7', '\'', 's', 'l',
                                    '.', ',', '!', '<', '|', 0xE9, 0xDF, 0x3B1, 0x43F, 0x5929, 0x3053, 0xC548,
                                    0x1F642, 0x200D, 0x2581 /* bytelevel only */, 0xA0, 0x3000, 0x2028, 0x17F, 0x301, 0x10FFFF, 0x85};
    for (int d = 0; d < 2; d++) {
        size_t len;
        uint8_t *sec = build(dirs[d], &len);
        if (!sec) continue;
        mf_tokenizer t;
        mf_tokenizer_init(&t, sec, len, 1024);
        uint32_t seed = 99 + (uint32_t)d;
        int bad = 0;
        static uint8_t scratch[MF_TOKENIZER_SCRATCH(40)];
        for (int k = 0; k < 2000; k++) {
            char s[400];
            size_t n = 0;
            seed = seed * 1103515245u + 12345u;
            int chars = (seed >> 16) % 60;
            for (int c = 0; c < chars; c++) {
                seed = seed * 1103515245u + 12345u;
                uint32_t cp = pool[(seed >> 16) % (sizeof pool / sizeof pool[0])];
                /* SentencePiece writes spaces as U+2581: a U+2581 in the text comes back as a space */
                if (d == 1 && cp == 0x2581) cp = 'x';
                if (cp < 0x80)
                    s[n++] = (char)cp;
                else if (cp < 0x800) {
                    s[n++] = (char)(0xC0 | cp >> 6);
                    s[n++] = (char)(0x80 | (cp & 0x3F));
                } else if (cp < 0x10000) {
                    s[n++] = (char)(0xE0 | cp >> 12);
                    s[n++] = (char)(0x80 | ((cp >> 6) & 0x3F));
                    s[n++] = (char)(0x80 | (cp & 0x3F));
                } else {
                    s[n++] = (char)(0xF0 | cp >> 18);
                    s[n++] = (char)(0x80 | ((cp >> 12) & 0x3F));
                    s[n++] = (char)(0x80 | ((cp >> 6) & 0x3F));
                    s[n++] = (char)(0x80 | (cp & 0x3F));
                }
            }
            uint32_t ids[1024], ni = 0;
            int rc = mf_tokenizer_encode(&t, s, n, ids, 1024, &ni, scratch, sizeof scratch);
            char out[4096];
            size_t ol = rc ? (size_t)-1 : decode_all(&t, ids, ni, out, sizeof out);
            if (ol != n || memcmp(out, s, n) != 0) {
                if (bad++ < 3) fprintf(stderr, "  round trip failed for \"%.*s\"\n", (int)n, s);
            }
        }
        CHECK(bad == 0, "%s: %d of 2000 random strings do not round trip", dirs[d], bad);
        free(sec);
    }
}

static void write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f) return;
    fwrite(data, 1, n, f);
    fclose(f);
}

/* Malformed and unsupported files give an error that names the problem. */
static void test_malformed(void)
{
    char dir[] = "/tmp/mf_tok_XXXXXX";
    if (!mkdtemp(dir)) {
        CHECK(0, "mkdtemp");
        return;
    }
    char path[256], err[256];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    size_t blen;
    char *base = mf_read_file("tests/data/tok-bytelevel/tokenizer.json", &blen);
    struct {
        const char *from, *to, *want;
    } cases[] = {
        {"\"type\": \"BPE\"", "\"type\": \"Unigram\"", "Unigram"},
        {"\"type\": \"Split\"", "\"type\": \"Whitespace\"", "Whitespace"},
        {"\\\\p{N}|", "\\\\p{N}+|", "regex"},
        {"\"behavior\": \"Isolated\"", "\"behavior\": \"Removed\"", "Removed"},
        {"\"decoder\": {\n    \"type\": \"ByteLevel\"", "\"decoder\": {\"type\": \"WordPiece\"", "WordPiece"},
        {"\"normalizer\": null", "\"normalizer\": {\"type\": \"NFKC\"}", "NFKC"},
        {"\"merges\": [", "\"merges\": [[\"zzzq\", \"t\"], ", "not in vocab"},
        {"\"vocab\": {", "\"vocab\": [", "line"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *p = base ? strstr(base, cases[i].from) : NULL;
        CHECK(p != NULL, "pattern %s in tokenizer.json", cases[i].from);
        if (!p) continue;
        size_t fl = strlen(cases[i].from), tl = strlen(cases[i].to);
        char *m = malloc(blen + tl + 1);
        size_t pre = (size_t)(p - base);
        memcpy(m, base, pre);
        memcpy(m + pre, cases[i].to, tl);
        memcpy(m + pre + tl, p + fl, blen - pre - fl);
        write_file(path, m, blen - fl + tl);
        free(m);
        uint8_t *out = NULL;
        size_t ol = 0;
        err[0] = 0;
        int rc = mf_tokconv_build(dir, &out, &ol, err, sizeof err);
        CHECK(rc == -1 && out == NULL && strstr(err, cases[i].want), "case %zu: rc %d err \"%s\" (want %s)", i, rc,
              err, cases[i].want);
        free(out);
    }
    free(base);
    unlink(path);
    /* tokenizer.model: truncated, garbage, a unigram model */
    snprintf(path, sizeof path, "%s/tokenizer.model", dir);
    size_t mlen;
    char *model = mf_read_file("tests/data/tok-sentencepiece/tokenizer.model", &mlen);
    if (model) {
        uint8_t *out = NULL;
        size_t ol;
        write_file(path, model, mlen / 2);
        int rc = mf_tokconv_build(dir, &out, &ol, err, sizeof err);
        CHECK(rc == -1 && strstr(err, "malformed"), "truncated model: %s", err);
        write_file(path, "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", 11);
        rc = mf_tokconv_build(dir, &out, &ol, err, sizeof err);
        CHECK(rc == -1, "garbage model: %s", err);
        /* flip model_type BPE (field 3 = 2 in the trainer spec) to UNIGRAM: find bytes 0x18 0x02 */
        char *m2 = malloc(mlen);
        memcpy(m2, model, mlen);
        int done = 0;
        /* the trainer spec is field 2 of the top message: walk to it */
        size_t p = 0;
        while (p < mlen && !done) {
            uint8_t key = (uint8_t)m2[p++];
            uint64_t l = 0;
            int sh = 0;
            while (p < mlen) {
                uint8_t c = (uint8_t)m2[p++];
                l |= (uint64_t)(c & 0x7F) << sh;
                sh += 7;
                if (!(c & 0x80)) break;
            }
            if (key == 0x12) {
                for (size_t q = p; q + 1 < p + l; q++)
                    if (m2[q] == 0x18 && m2[q + 1] == 0x02) {
                        m2[q + 1] = 0x01;
                        done = 1;
                        break;
                    }
            }
            p += l;
        }
        CHECK(done, "found model_type in the trainer spec");
        write_file(path, m2, mlen);
        rc = mf_tokconv_build(dir, &out, &ol, err, sizeof err);
        CHECK(rc == -1 && strstr(err, "UNIGRAM"), "unigram model: %s", err);
        free(m2);
        free(model);
        unlink(path);
    }
    /* an added token with lstrip/rstrip absorbs the whitespace beside it */
    {
        size_t blen2;
        char *b2 = mf_read_file("tests/data/tok-bytelevel/tokenizer.json", &blen2);
        char *q = b2 ? strstr(b2, "\"lstrip\": false,\n      \"rstrip\": false") : NULL;
        CHECK(q != NULL, "lstrip/rstrip in tokenizer.json");
        if (q) {
            memcpy(q, "\"lstrip\": true ,\n      \"rstrip\": true ", strlen("\"lstrip\": true ,\n      \"rstrip\": true "));
            snprintf(path, sizeof path, "%s/tokenizer.json", dir);
            write_file(path, b2, blen2);
            uint8_t *sec = NULL;
            size_t sl = 0;
            CHECK(mf_tokconv_build(dir, &sec, &sl, err, sizeof err) == 0, "lstrip tokenizer: %s", err);
            mf_tokenizer t2;
            if (sec && mf_tokenizer_init(&t2, sec, sl, 1024) == 0) {
                static uint8_t sc[MF_TOKENIZER_SCRATCH(64)];
                uint32_t ids[16], n = 0;
                mf_tokenizer_encode(&t2, "a  <|endoftext|> b", 18, ids, 16, &n, sc, sizeof sc);
                CHECK(n == 3 && ids[0] == 65 && ids[1] == 0 && ids[2] == 66, "lstrip/rstrip: %u ids", n);
                /* tabs, newlines, CR, VT, FF are whitespace too */
                const char *ws = "a\t\n\v<|endoftext|>\r\n\f b";
                mf_tokenizer_encode(&t2, ws, strlen(ws), ids, 16, &n, sc, sizeof sc);
                CHECK(n == 3 && ids[0] == 65 && ids[1] == 0 && ids[2] == 66, "lstrip/rstrip over \\t\\n\\r: %u ids", n);
            }
            free(sec);
            unlink(path);
        }
        free(b2);
    }
    /* no tokenizer file at all: byte-level, no section */
    uint8_t *out = (uint8_t *)1;
    size_t ol = 1;
    CHECK(mf_tokconv_build(dir, &out, &ol, err, sizeof err) == 0 && out == NULL && ol == 0, "no tokenizer file");
    rmdir(dir);
    /* byte-level runtime (no tables) keeps id = byte */
    mf_tokenizer t;
    mf_tokenizer_init(&t, NULL, 0, 256);
    uint32_t ids[4], n;
    mf_tokenizer_encode(&t, "Hi", 2, ids, 4, &n, NULL, 0);
    CHECK(n == 2 && ids[0] == 'H' && ids[1] == 'i', "byte-level encode");
    char c;
    size_t l;
    CHECK(mf_tokenizer_decode(&t, 'x', &c, 1, &l) == 0 && l == 1 && c == 'x', "byte-level decode");
}

static size_t utf8_of(const char *hex, uint8_t *o)
{
    size_t n = 0;
    char *e;
    const char *p = hex;
    for (;;) {
        while (*p == ' ') p++;
        if (!*p || *p == ';') break;
        unsigned long c = strtoul(p, &e, 16);
        if (e == p) break;
        p = e;
        if (c < 0x80) {
            o[n++] = (uint8_t)c;
        } else if (c < 0x800) {
            o[n++] = (uint8_t)(0xC0 | c >> 6);
            o[n++] = (uint8_t)(0x80 | (c & 63));
        } else if (c < 0x10000) {
            o[n++] = (uint8_t)(0xE0 | c >> 12);
            o[n++] = (uint8_t)(0x80 | ((c >> 6) & 63));
            o[n++] = (uint8_t)(0x80 | (c & 63));
        } else {
            o[n++] = (uint8_t)(0xF0 | c >> 18);
            o[n++] = (uint8_t)(0x80 | ((c >> 12) & 63));
            o[n++] = (uint8_t)(0x80 | ((c >> 6) & 63));
            o[n++] = (uint8_t)(0x80 | (c & 63));
        }
    }
    return n;
}

/* The hand-written pre-tokenizers against Python's regex engine
 * (tests/data/tok-pretok/pretok_vectors.txt: Qwen2, Llama 3 and GPT-2
 * patterns over random strings of ASCII and Unicode letters, numbers,
 * spaces, marks, emoji). */
static void test_pretok(void)
{
    FILE *f = fopen("tests/data/tok-pretok/pretok_vectors.txt", "r");
    CHECK(f != NULL, "pretok_vectors.txt");
    if (!f) return;
    static char line[8192];
    int n = 0, bad = 0, kinds[4] = {0};
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#') continue;
        char *hex = strchr(line, '\t');
        char *ends = hex ? strchr(hex + 1, '\t') : NULL;
        if (!ends) continue;
        int kind = atoi(line);
        char text[1024];
        size_t len = 0;
        for (char *p = hex + 1; p + 1 < ends && len < sizeof text; p += 2) {
            unsigned v;
            sscanf(p, "%2x", &v);
            text[len++] = (char)v;
        }
        char got[2048];
        size_t gl = 0, i = 0;
        while (i < len) {
            size_t j = mf_tokenizer_pretok_next(kind, text, len, i);
            if (j <= i) break;
            gl += (size_t)snprintf(got + gl, sizeof got - gl, "%s%zu", gl ? "," : "", j);
            i = j;
        }
        char *want = ends + 1;
        want[strcspn(want, "\r\n")] = 0;
        n++;
        if (kind >= 1 && kind <= 3) kinds[kind]++;
        if (strcmp(got, want) != 0 && bad++ < 3)
            fprintf(stderr, "  pretok kind %d text %.*s: got %s want %s\n", kind, (int)(ends - hex - 1), hex + 1, got, want);
    }
    fclose(f);
    CHECK(n >= 4500 && kinds[1] && kinds[2] && kinds[3], "pretok vectors: %d", n);
    /* U+001C..U+001F are not \s for Oniguruma (Python's re counts them, so
     * the vectors, made with the classes spelled out, leave them out):
     * punctuation in all three patterns */
    for (int kind = 1; kind <= 3; kind++) {
        static const struct {
            const char *s;
            size_t e[3];
        } sep[] = {{"a\x1c\x1c" "b", {1, 3, 4}}, {"a \x1f" "b", {1, 3, 4}}, {"x \x1d\x1e ", {1, 4, 5}}};
        for (size_t c = 0; c < sizeof sep / sizeof sep[0]; c++) {
            size_t i = 0, k = 0, len = strlen(sep[c].s);
            int same = 1;
            while (i < len && k < 3) {
                i = mf_tokenizer_pretok_next(kind, sep[c].s, len, i);
                same &= i == sep[c].e[k++];
            }
            CHECK(same && i == len, "pretok kind %d: U+001C..1F case %zu", kind, c);
        }
    }
    CHECK(bad == 0, "pretok: %d of %d splits differ from the regex engine's", bad, n);
}

/* NFC against a few hand-checked cases and, when the Unicode Character
 * Database is installed (Debian unicode-data), every line of its
 * NormalizationTest.txt: NFC(c1) = NFC(c2) = NFC(c3) = c2, NFC(c4) = NFC(c5) = c4. */
static void test_nfc(void)
{
    static const char *cases[][2] = {
        {"0065 0301", "00E9"},                /* e + acute -> é */
        {"0041 030A 0301", "01FA"},           /* A ring acute */
        {"0061 0323 0302", "1EAD"},           /* reordering not needed, composes both */
        {"0061 0302 0323", "1EAD"},           /* marks out of order */
        {"1100 1161 11A8", "AC01"},           /* Hangul L V T */
        {"212B", "00C5"},                     /* Angstrom sign (singleton) */
        {"0958", "0915 093C"},                /* composition exclusion */
        {"0301 0065", "0301 0065"},           /* leading combining mark */
        {"0048 0069", "0048 0069"},
        {"1100 1176", "1100 1176"},           /* U+1176 is not one of the 21 modern vowels */
        {"AC00 11A7", "AC00 11A7"},           /* U+11A7 (T base) is not a trailing consonant */
        {"AC00", "AC00"},                     /* LV syllable: L V, no T */
        {"AC00 11A8", "AC01"},                /* LV + T */
        {"0061 0301 0300", "00E1 0300"},      /* equal classes keep their order */
        {"0061 0305 0301", "0061 0305 0301"}, /* U+0301 blocked by U+0305 of the same class */
        {"00C0 0323", "1EA0 0300"},           /* decomposed, reordered, composed again */
        {"0061 0300 0323", "1EA1 0300"},      /* U+0300 has class 230 */
        {"0041 0308 0304", "01DE"},           /* two steps of composition */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t in[64], want[64], out[256];
        size_t ni = utf8_of(cases[i][0], in), nw = utf8_of(cases[i][1], want);
        size_t n = mf_unicode_nfc(in, ni, out, sizeof out);
        CHECK(n == nw && memcmp(out, want, n) == 0, "NFC(%s) != %s", cases[i][0], cases[i][1]);
    }
    uint8_t out[8];
    CHECK(mf_unicode_nfc((const uint8_t *)"abcdefghijkl", 12, out, sizeof out) == (size_t)-1, "NFC cap too small");
    /* the quick check: marks out of canonical order are not NFC (U+0305 230,
     * U+0316 220, both NFC_QC=Yes); in order they are */
    CHECK(!mf_unicode_nfc_quick((const uint8_t *)"a\xCC\x85\xCC\x96", 5), "quick check: marks out of order");
    CHECK(mf_unicode_nfc_quick((const uint8_t *)"a\xCC\x96\xCC\x85", 5), "quick check: marks in order");
    FILE *f = popen("bzcat /usr/share/unicode/NormalizationTest.txt.bz2 2>/dev/null", "r");
    char line[4096];
    long ok = 0, bad = 0, quick_wrong = 0;
    while (f && fgets(line, sizeof line, f)) {
        if (line[0] == '#' || line[0] == '@') continue;
        char *col[6];
        int nc = 0;
        char *p = line;
        col[nc++] = p;
        while (*p && nc < 6) {
            if (*p == ';') {
                *p = 0;
                col[nc++] = p + 1;
            }
            p++;
        }
        if (nc < 6) continue;
        uint8_t c[5][256];
        size_t cl[5];
        for (int i = 0; i < 5; i++) cl[i] = utf8_of(col[i], c[i]);
        static const int want[5] = {1, 1, 1, 3, 3};
        for (int i = 0; i < 5; i++) {
            uint8_t o[1024];
            size_t n = mf_unicode_nfc(c[i], cl[i], o, sizeof o);
            int w = want[i];
            if (n == cl[w] && !memcmp(o, c[w], n))
                ok++;
            else if (bad++ < 5)
                fprintf(stderr, "  NFC wrong for %s (column %d)\n", col[0], i + 1);
            if (mf_unicode_nfc_quick(c[i], cl[i]) && !(n == cl[i] && !memcmp(o, c[i], n))) quick_wrong++;
        }
    }
    if (f) pclose(f);
    if (ok + bad == 0)
        printf("SKIP test_tokenizer: NFC against NormalizationTest.txt: needs /usr/share/unicode/NormalizationTest.txt.bz2 and bzcat (apt-get install unicode-data bzip2)\n");
    else
        printf("test_tokenizer: NormalizationTest.txt: %ld NFC checks\n", ok + bad);
    CHECK(bad == 0 && quick_wrong == 0, "NormalizationTest: %ld wrong, %ld quick-check wrong", bad, quick_wrong);

    /* a byte-level tokenizer with the NFC normalizer (Qwen2, OLMoE): a
     * decomposed é encodes like the precomposed one */
    char dir[] = "/tmp/mf_tok_XXXXXX";
    if (!mkdtemp(dir)) return;
    char path[256];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    size_t blen;
    char *base = mf_read_file("tests/data/tok-bytelevel/tokenizer.json", &blen);
    char *p = base ? strstr(base, "\"normalizer\": null") : NULL;
    CHECK(p != NULL, "normalizer in tokenizer.json");
    if (p) {
        const char *rep = "\"normalizer\": {\"type\": \"NFC\"}";
        size_t fl = strlen("\"normalizer\": null"), tl = strlen(rep), pre = (size_t)(p - base);
        char *m = malloc(blen + tl);
        memcpy(m, base, pre);
        memcpy(m + pre, rep, tl);
        memcpy(m + pre + tl, p + fl, blen - pre - fl);
        FILE *w = fopen(path, "wb");
        if (w) {
            fwrite(m, 1, blen - fl + tl, w);
            fclose(w);
        }
        free(m);
        uint8_t *sec = NULL;
        size_t len = 0;
        char err[256];
        CHECK(mf_tokconv_build(dir, &sec, &len, err, sizeof err) == 0 && sec, "NFC tokenizer: %s", err);
        mf_tokenizer t;
        if (sec && mf_tokenizer_init(&t, sec, len, 1024) == 0) {
            CHECK(t.hdr[MF_TOKH_FLAGS] & MF_TOKF_NFC, "NFC flag");
            const char *dcmp = "caf" "e\xCC\x81 Ange\xCC\x81lique", *pre_c = "caf\xC3\xA9 Ang\xC3\xA9lique";
            uint32_t a[64], bb[64], na = 0, nb = 0;
            size_t sb = mf_tokenizer_scratch_bytes(&t, strlen(dcmp));
            void *scratch = malloc(sb);
            int r1 = mf_tokenizer_encode(&t, dcmp, strlen(dcmp), a, 64, &na, scratch, sb);
            int r2 = mf_tokenizer_encode(&t, pre_c, strlen(pre_c), bb, 64, &nb, scratch, sb);
            CHECK(r1 == 0 && r2 == 0 && na == nb && memcmp(a, bb, na * 4) == 0, "NFC: decomposed == precomposed");
            char o[256];
            size_t ol = decode_all(&t, a, na, o, sizeof o);
            CHECK(ol == strlen(pre_c) && memcmp(o, pre_c, ol) == 0, "NFC: decodes to the composed text");
            /* a lone combining mark with the scratch scratch_bytes asks for (fuzz case) */
            {
                const char *cm = "\xCC\x8C";
                size_t sb3 = mf_tokenizer_scratch_bytes(&t, 2);
                void *s3 = malloc(sb3);
                uint32_t i3[8], n3 = 0;
                CHECK(mf_tokenizer_encode(&t, cm, 2, i3, 8, &n3, s3, sb3) == 0 && n3 == 2, "lone U+030C: %u ids", n3);
                free(s3);
            }
            /* a long text, NFC'd through a small window: the ids of its precomposed form */
            {
                const char *unit_d = "Ange\xCC\x81lique  cafe\xCC\x81\n\n 'RE 12 \xE1\x84\x80\xE1\x85\xA1 e\xCC\xA3\xCC\x82 ",
                           *unit_c = "Ang\xC3\xA9lique  caf\xC3\xA9\n\n 'RE 12 \xEA\xB0\x80 \xE1\xBB\x87 ";
                size_t ud = strlen(unit_d), uc = strlen(unit_c), reps = 300;
                char *td = malloc(ud * reps + 1), *tc = malloc(uc * reps + 1);
                for (size_t r = 0; r < reps; r++) {
                    memcpy(td + r * ud, unit_d, ud);
                    memcpy(tc + r * uc, unit_c, uc);
                }
                uint32_t *i1 = malloc(4 * uc * reps), *i2 = malloc(4 * uc * reps), n1 = 0, n2 = 0;
                size_t sb2 = mf_tokenizer_scratch_bytes(&t, uc * reps);
                void *big = malloc(sb2);
                int q1 = mf_tokenizer_encode(&t, tc, uc * reps, i1, (uint32_t)(uc * reps), &n1, big, sb2);
                for (int sz = 0; sz < 3; sz++) {
                    static uint8_t small[MF_TOKENIZER_SCRATCH(200)];
                    size_t ss = sz == 0 ? sizeof small : sz == 1 ? MF_TOKENIZER_SCRATCH(60) : sb2;
                    void *buf = sz == 2 ? big : small;
                    int q2 = mf_tokenizer_encode(&t, td, ud * reps, i2, (uint32_t)(uc * reps), &n2, buf, ss);
                    CHECK(q1 == 0 && q2 == 0 && n1 == n2 && memcmp(i1, i2, 4 * n1) == 0,
                          "NFC through a %zu-byte scratch: rc %d %d, %u vs %u ids", ss, q1, q2, n1, n2);
                }
                free(big);
                free(i1);
                free(i2);
                free(td);
                free(tc);
            }
            free(scratch);
        }
        free(sec);
    }
    free(base);
    unlink(path);
    rmdir(dir);
}

static void put_word(uint8_t *sec, uint32_t word, uint32_t v)
{
    for (int i = 0; i < 4; i++) sec[4 * word + i] = (uint8_t)(v >> (8 * i));
}

/* End-of-sequence ids: read from generation_config.json before
 * config.json (a number or a list), none without either, bad values
 * refused by the converter and by the reader. */
static void test_eos(void)
{
    char dir[] = "/tmp/mf_eos_XXXXXX", path[256], err[256];
    if (!mkdtemp(dir)) {
        CHECK(0, "mkdtemp");
        return;
    }
    size_t blen;
    char *base = mf_read_file("tests/data/tok-bytelevel/tokenizer.json", &blen);
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    if (base) write_file(path, base, blen);
    free(base);
    size_t len = 0;
    uint8_t *sec = build(dir, &len);
    mf_tokenizer t;
    CHECK(sec && mf_tokenizer_init(&t, sec, len, 0) == MF_OK, "no config: init");
    uint32_t nv = sec ? t.hdr[MF_TOKH_N_VOCAB] : 0;
    CHECK(sec && t.hdr[MF_TOKH_N_EOS] == 0 && !mf_tokenizer_is_eos(&t, 0), "no config: no eos");
    free(sec);

    struct {
        const char *gen, *conf;
        uint32_t n, ids[4];
        const char *err;
    } cases[] = {
        {NULL, "{\"eos_token_id\": 7}", 1, {7}, NULL},
        {"{\"eos_token_id\": [3, 9]}", "{\"eos_token_id\": 7}", 2, {3, 9}, NULL},
        {"{\"do_sample\": false}", "{\"eos_token_id\": 5}", 1, {5}, NULL},
        {"{\"eos_token_id\": null}", "{\"eos_token_id\": null}", 0, {0}, NULL},
        {NULL, "{\"eos_token_id\": [1, 2, 3, 4]}", 4, {1, 2, 3, 4}, NULL},
        {NULL, "{\"eos_token_id\": [1, 2, 3, 4, 5]}", 0, {0}, "at most 4"},
        {NULL, "{\"eos_token_id\": 1.5}", 0, {0}, "below the vocabulary"},
        {NULL, "{\"eos_token_id\": 100000}", 0, {0}, "below the vocabulary"},
        {"{\"eos_token_id\": [\"x\"]}", NULL, 0, {0}, "below the vocabulary"},
        {"{\"eos_token_id\": ", NULL, 0, {0}, "generation_config.json"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(path, sizeof path, "%s/generation_config.json", dir);
        remove(path);
        if (cases[i].gen) write_file(path, cases[i].gen, strlen(cases[i].gen));
        snprintf(path, sizeof path, "%s/config.json", dir);
        remove(path);
        if (cases[i].conf) write_file(path, cases[i].conf, strlen(cases[i].conf));
        uint8_t *out = NULL;
        size_t ol = 0;
        err[0] = 0;
        int rc = mf_tokconv_build(dir, &out, &ol, err, sizeof err);
        if (cases[i].err) {
            CHECK(rc == -1 && !out && strstr(err, cases[i].err), "case %zu: rc %d \"%s\"", i, rc, err);
            free(out);
            continue;
        }
        CHECK(rc == 0 && out && mf_tokenizer_init(&t, out, ol, 0) == MF_OK, "case %zu: %s", i, err);
        if (rc || !out) continue;
        int same = t.hdr[MF_TOKH_N_EOS] == cases[i].n;
        for (uint32_t k = 0; k < cases[i].n; k++) same &= mf_tokenizer_is_eos(&t, cases[i].ids[k]);
        CHECK(same && !mf_tokenizer_is_eos(&t, 8), "case %zu: %u eos ids", i, t.hdr[MF_TOKH_N_EOS]);

        /* convert --eos replaces them; the reader refuses what it cannot hold */
        uint32_t ids[5] = {nv - 1, 0, 0, 0, 0};
        CHECK(mf_tokconv_set_eos(out, ol, ids, 1, err, sizeof err) == 0 &&
                  mf_tokenizer_init(&t, out, ol, 0) == MF_OK && mf_tokenizer_is_eos(&t, nv - 1) &&
                  !mf_tokenizer_is_eos(&t, cases[i].ids[0] == nv - 1 ? 0 : cases[i].ids[0]),
              "case %zu: set_eos", i);
        ids[0] = nv;
        CHECK(mf_tokconv_set_eos(out, ol, ids, 1, err, sizeof err) == -1 && strstr(err, "vocabulary"),
              "case %zu: set_eos past the vocabulary", i);
        CHECK(mf_tokconv_set_eos(out, ol, ids, 5, err, sizeof err) == -1, "case %zu: 5 ids", i);
        put_word(out, MF_TOKH_N_EOS, 1);
        put_word(out, MF_TOKH_EOS, nv);
        CHECK(mf_tokenizer_init(&t, out, ol, 0) == MF_E_FORMAT, "case %zu: reader takes eos = n_vocab", i);
        put_word(out, MF_TOKH_EOS, 0);
        put_word(out, MF_TOKH_N_EOS, MF_TOK_MAX_EOS + 1);
        CHECK(mf_tokenizer_init(&t, out, ol, 0) == MF_E_FORMAT, "case %zu: reader takes 5 eos ids", i);
        free(out);
    }
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd)) fprintf(stderr, "warning: could not remove %s\n", dir);
}

/* The header rules of docs/tokenizer-format.md, one broken at a time on a
 * copy of a converted section: mf_tokenizer_init refuses each. */
static uint32_t get_word(const uint8_t *sec, uint32_t byte_off)
{
    return (uint32_t)sec[byte_off] | (uint32_t)sec[byte_off + 1] << 8 | (uint32_t)sec[byte_off + 2] << 16 |
           (uint32_t)sec[byte_off + 3] << 24;
}

static void put_at(uint8_t *sec, uint32_t byte_off, uint32_t v)
{
    for (int i = 0; i < 4; i++) sec[byte_off + i] = (uint8_t)(v >> (8 * i));
}

static void test_header_rules(void)
{
    size_t len;
    uint8_t *sec = build("tests/data/tok-bytelevel", &len);
    if (!sec) return;
    uint8_t *bad = malloc(len);
    mf_tokenizer t;
    CHECK(mf_tokenizer_init(&t, sec, len, 0) == MF_OK, "clean");
    uint32_t nv = t.hdr[MF_TOKH_N_VOCAB], nm = t.hdr[MF_TOKH_N_MERGES], na = t.hdr[MF_TOKH_N_ADDED];
    uint32_t total = t.hdr[MF_TOKH_TOTAL_BYTES], ntb = t.hdr[MF_TOKH_N_TOK_BYTES];
    uint32_t to = t.hdr[MF_TOKH_OFF_TOK_OFF], ad = t.hdr[MF_TOKH_OFF_ADDED];
    CHECK(nm > 1 && na > 0 && nv > 2, "the fixture has merges and added tokens");
    struct {
        uint32_t word, val;
        int want;
        const char *what;
    } hw[] = {
        {MF_TOKH_VERSION, MF_TOK_VERSION + 1, MF_E_VERSION, "version 2"},
        {MF_TOKH_PRETOK, MF_TOKPRE_LLAMA3 + 1, MF_E_UNSUPPORTED, "unknown pretok"},
        {MF_TOKH_PREFIX, MF_TOKPFX_FIRST + 1, MF_E_UNSUPPORTED, "unknown prefix"},
        {MF_TOKH_UNK, nv, MF_E_FORMAT, "unk = n_vocab"},
        {MF_TOKH_STRIP, 2, MF_E_FORMAT, "strip 2"},
        /* merges table: n_merges x 16 bytes cannot start 16 bytes before the end */
        {MF_TOKH_OFF_MERGES, (total - 16) & ~3u, MF_E_RANGE, "merges past the end"},
        {MF_TOKH_OFF_ADDED, (total - 8) & ~3u, MF_E_RANGE, "added table past the end"},
    };
    for (size_t i = 0; i < sizeof hw / sizeof hw[0]; i++) {
        memcpy(bad, sec, len);
        put_word(bad, hw[i].word, hw[i].val);
        int rc = mf_tokenizer_init(&t, bad, len, 0);
        CHECK(rc == hw[i].want, "%s: %d, want %d", hw[i].what, rc, hw[i].want);
    }
    /* A section shorter than its 128-byte header (its total_bytes too). */
    memcpy(bad, sec, len);
    put_word(bad, MF_TOKH_TOTAL_BYTES, 127);
    CHECK(mf_tokenizer_init(&t, bad, 127, 0) == MF_E_FORMAT, "127-byte section");
    /* tok_off: monotonic, from 0 to n_tok_bytes. Token 1 made to end
     * before it starts; the last token made to end past tok_bytes. */
    memcpy(bad, sec, len);
    put_at(bad, to + 4, get_word(sec, to + 8) + 1);
    CHECK(mf_tokenizer_init(&t, bad, len, 0) == MF_E_FORMAT, "tok_off decreasing");
    memcpy(bad, sec, len);
    put_at(bad, to + 4 * nv, ntb + 4);
    CHECK(mf_tokenizer_init(&t, bad, len, 0) == MF_E_FORMAT, "tok_off[n_vocab] != n_tok_bytes");
    /* Added tokens: their bytes inside added_bytes, their id < n_vocab. */
    memcpy(bad, sec, len);
    put_at(bad, ad + 4, t.hdr[MF_TOKH_N_ADDED_BYTES] + 1);
    CHECK(mf_tokenizer_init(&t, bad, len, 0) == MF_E_FORMAT, "added token longer than added_bytes");
    memcpy(bad, sec, len);
    put_at(bad, ad + 8, nv);
    CHECK(mf_tokenizer_init(&t, bad, len, 0) == MF_E_FORMAT, "added token id = n_vocab");
    free(bad);
    free(sec);

    /* Char mode: a chars entry whose id is not below n_vocab is not a
     * token, so its character is unknown and goes through byte fallback
     * (the section has BYTE_FALLBACK): "aqq q" gives <0x71> for each q. */
    sec = build("tests/data/tok-sentencepiece", &len);
    if (!sec) return;
    CHECK(mf_tokenizer_init(&t, sec, len, 0) == MF_OK, "sentencepiece clean");
    nv = t.hdr[MF_TOKH_N_VOCAB];
    uint32_t oc = t.hdr[MF_TOKH_OFF_CHARS], found = 0;
    for (uint32_t i = 0; i < t.hdr[MF_TOKH_N_CHARS]; i++)
        if (get_word(sec, oc + 8 * i) == 'q') {
            put_at(sec, oc + 8 * i + 4, nv);
            found = 1;
        }
    CHECK(found, "'q' in the chars table");
    if (mf_tokenizer_init(&t, sec, len, 0) == MF_OK) {
        static uint8_t scratch[MF_TOKENIZER_SCRATCH(64)];
        uint32_t ids[64], n = 0;
        CHECK(mf_tokenizer_encode(&t, "aqq q", 5, ids, 64, &n, scratch, sizeof scratch) == MF_OK, "encode");
        uint32_t q_byte = get_word(sec, t.hdr[MF_TOKH_OFF_BYTE_IDS] + 4 * 'q');
        int out = 0, q = 0;
        for (uint32_t i = 0; i < n && i < 64; i++) {
            out += ids[i] >= nv;
            q += ids[i] == q_byte;
        }
        CHECK((t.hdr[MF_TOKH_FLAGS] & MF_TOKF_BYTE_FALLBACK) && q_byte < nv, "byte fallback for 'q'");
        CHECK(n > 0 && out == 0 && q == 3, "%d of %u ids not below n_vocab %u; %d of <0x71>, want 3", out, n, nv, q);
    }
    free(sec);
}

int main(void)
{
    test_bytelevel();
    test_eos();
    test_sentencepiece();
    test_sentencepiece_hf();
    test_roundtrip();
    test_malformed();
    test_nfc();
    test_pretok();
    test_header_rules();
    return mf_test_done("test_tokenizer");
}
