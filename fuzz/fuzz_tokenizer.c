/*
 * libFuzzer target for the tokenizer runtime.
 *
 *   clang -std=c11 -g -O1 -fsanitize=fuzzer,address,undefined -D_POSIX_C_SOURCE=200809L \
 *     fuzz/fuzz_tokenizer.c runtime/tokenizer.c runtime/unicode_tables.c runtime/unicode_nfc.c \
 *     tools/lib/tokconv.c tools/lib/json.c -o build/fuzz_tokenizer
 *   build/fuzz_tokenizer -max_total_time=60      (run from the repository root,
 *                                                 or set MF_TOK_DATA=<repo>/tests/data)
 *
 * The first input byte picks the case, the rest is the text:
 *   0..1  byte-level BPE (tests/data/tok-bytelevel), 2..3 SentencePiece BPE
 *         (tok-sentencepiece); odd = the smallest scratch (chunks cut).
 *         No crash; when the text is valid UTF-8, decode(encode(s)) == s
 *         (for SentencePiece only without U+2581, which it reads as a space).
 *   4     the text patches the byte-level section (pairs of offset, value):
 *         init must refuse it or encode/decode must stay in bounds.
 *   5..6  the byte-level tokenizer with the NFC normalizer (Qwen2, OLMoE);
 *         6 = a small scratch (NFC through a small window): for valid UTF-8
 *         decode(encode(s)) == NFC(s), and the ids equal those of NFC(s),
 *         where NFC(s) normalizes the pieces between added tokens one by one.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../runtime/tokenizer.h"
#include "../runtime/unicode_nfc.h"
#include "../tools/lib/json.h"
#include "../tools/lib/tokconv.h"

static uint8_t *sec[3];
static size_t sec_len[3];
static mf_tokenizer tok[3];

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *base = getenv("MF_TOK_DATA");
    if (!base) base = "tests/data";
    const char *names[2] = {"tok-bytelevel", "tok-sentencepiece"};
    for (int i = 0; i < 2; i++) {
        char dir[1024], err[256];
        snprintf(dir, sizeof dir, "%s/%s", base, names[i]);
        if (mf_tokconv_build(dir, &sec[i], &sec_len[i], err, sizeof err) || !sec[i]) {
            fprintf(stderr, "fuzz_tokenizer: %s: %s\n", dir, err);
            abort();
        }
        if (mf_tokenizer_init(&tok[i], sec[i], sec_len[i], 0)) abort();
    }
    /* the byte-level tokenizer with "normalizer": {"type": "NFC"} */
    char path[1024], tmp[] = "/tmp/mf_fuzz_tok_XXXXXX", err[256];
    snprintf(path, sizeof path, "%s/tok-bytelevel/tokenizer.json", base);
    size_t len;
    char *json = mf_read_file(path, &len);
    char *at = json ? strstr(json, "\"normalizer\": null") : NULL;
    if (!at || !mkdtemp(tmp)) abort();
    snprintf(path, sizeof path, "%s/tokenizer.json", tmp);
    FILE *f = fopen(path, "wb");
    fwrite(json, 1, (size_t)(at - json), f);
    fputs("\"normalizer\": {\"type\": \"NFC\"}", f);
    at += strlen("\"normalizer\": null");
    fwrite(at, 1, len - (size_t)(at - json), f);
    fclose(f);
    free(json);
    if (mf_tokconv_build(tmp, &sec[2], &sec_len[2], err, sizeof err) || !sec[2]) abort();
    remove(path);
    remove(tmp);
    if (mf_tokenizer_init(&tok[2], sec[2], sec_len[2], 0)) abort();
    return 0;
}

static int valid_utf8(const uint8_t *s, size_t n, int *has_meta)
{
    *has_meta = 0;
    for (size_t i = 0; i < n;) {
        uint8_t c = s[i];
        size_t l;
        uint32_t lo = 0x80, hi = 0xBF;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) {
            l = 2;
        } else if (c >= 0xE0 && c <= 0xEF) {
            l = 3;
            if (c == 0xE0) lo = 0xA0;
            if (c == 0xED) hi = 0x9F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            l = 4;
            if (c == 0xF0) lo = 0x90;
            if (c == 0xF4) hi = 0x8F;
        } else {
            return 0;
        }
        if (n - i < l) return 0;
        for (size_t k = 1; k < l; k++) {
            if (s[i + k] < lo || s[i + k] > hi) return 0;
            lo = 0x80;
            hi = 0xBF;
        }
        if (l == 3 && c == 0xE2 && s[i + 1] == 0x96 && s[i + 2] == 0x81) *has_meta = 1;
        i += l;
    }
    return 1;
}

/* NFC as Hugging Face tokenizers applies it: the added token
 * (normalized: false) is cut out of the raw text first and every piece
 * between is normalized on its own, so a combining mark after the token
 * does not compose with its last character ("<|endoftext|>" + U+0338 keeps
 * the U+0338; NFC of the whole text would make "|>" + U+0338 "|" U+226F). */
static size_t nfc_pieces(const uint8_t *s, size_t n, uint8_t *out, size_t cap)
{
    static const char added[] = "<|endoftext|>";
    const size_t al = sizeof added - 1;
    size_t o = 0, start = 0;
    for (size_t i = 0; i <= n; i++) {
        int at_token = i + al <= n && !memcmp(s + i, added, al);
        if (!at_token && i < n) continue;
        size_t l = mf_unicode_nfc(s + start, i - start, out + o, cap - o);
        if (l == (size_t)-1) return l;
        o += l;
        if (!at_token) break;
        if (cap - o < al) return (size_t)-1;
        memcpy(out + o, added, al);
        o += al;
        start = i + al;
        i = start - 1;
    }
    return o;
}

static uint8_t scratch[MF_TOKENIZER_SCRATCH(8192)];
static uint32_t ids[70000];
static char out[1 << 20];

static size_t decode_all(mf_tokenizer *t, uint32_t n)
{
    size_t o = 0;
    mf_tokenizer_decode_reset(t);
    for (uint32_t i = 0; i < n; i++) {
        size_t l = 0;
        if (mf_tokenizer_decode(t, ids[i], out + o, sizeof out - o, &l)) abort();
        o += l;
    }
    size_t l = 0;
    mf_tokenizer_decode_flush(t, out + o, sizeof out - o, &l);
    return o + l;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 60000) return 0;
    uint8_t sel = data[0] % 7;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    uint32_t n = 0;
    if (sel < 4) {
        mf_tokenizer *t = &tok[sel / 2];
        size_t sb = (sel & 1) ? MF_TOKENIZER_SCRATCH(16) : mf_tokenizer_scratch_bytes(t, len);
        if (sb > sizeof scratch) sb = sizeof scratch;
        if (mf_tokenizer_encode(t, text, len, ids, sizeof ids / sizeof ids[0], &n, scratch, sb)) abort();
        if (n > sizeof ids / sizeof ids[0]) abort();
        int meta;
        size_t ol = decode_all(t, n);
        if (valid_utf8((const uint8_t *)text, len, &meta) && !(sel >= 2 && meta)) {
            if (ol != len || memcmp(out, text, len) != 0) {
                fprintf(stderr, "round trip differs: %zu bytes in, %zu out\n", len, ol);
                abort();
            }
        }
        return 0;
    }
    if (sel >= 5) {
        static uint8_t norm[3 * 60000 + 16];
        static uint32_t ids2[70000];
        mf_tokenizer *t = &tok[2];
        size_t sb = sel == 6 ? MF_TOKENIZER_SCRATCH(100) : mf_tokenizer_scratch_bytes(t, len);
        if (sb > sizeof scratch) sb = sizeof scratch;
        if (mf_tokenizer_encode(t, text, len, ids, sizeof ids / sizeof ids[0], &n, scratch, sb)) abort();
        int meta;
        if (!valid_utf8((const uint8_t *)text, len, &meta)) return 0;
        size_t nl = nfc_pieces((const uint8_t *)text, len, norm, sizeof norm);
        if (nl == (size_t)-1) abort();
        size_t ol = decode_all(t, n);
        if (ol != nl || memcmp(out, norm, nl) != 0) {
            fprintf(stderr, "NFC round trip differs\n");
            abort();
        }
        if (sel == 5) { /* ids of s == ids of NFC(s) encoded without a normalizer */
            uint32_t n2 = 0;
            if (mf_tokenizer_encode(&tok[0], (const char *)norm, nl, ids2, sizeof ids2 / sizeof ids2[0], &n2, scratch,
                                    sizeof scratch))
                abort();
            if (n2 != n || memcmp(ids, ids2, 4 * (n < 70000 ? n : 70000)) != 0) {
                fprintf(stderr, "NFC ids differ\n");
                abort();
            }
        }
        return 0;
    }
    /* corrupt the section */
    uint8_t *bad = malloc(sec_len[0]);
    memcpy(bad, sec[0], sec_len[0]);
    size_t k = 0;
    for (; k + 3 <= len && k < 48; k += 3) {
        size_t off = ((size_t)(uint8_t)text[k] | (size_t)(uint8_t)text[k + 1] << 8) % sec_len[0];
        if ((uint8_t)text[k] & 1) off %= 128; /* header more often */
        bad[off] = (uint8_t)text[k + 2];
    }
    mf_tokenizer t;
    if (mf_tokenizer_init(&t, bad, sec_len[0], 0) == 0) {
        if (mf_tokenizer_encode(&t, text + k, len - k, ids, sizeof ids / sizeof ids[0], &n, scratch,
                                MF_TOKENIZER_SCRATCH(64)) == 0) {
            uint32_t m = n < sizeof ids / sizeof ids[0] ? n : sizeof ids / sizeof ids[0];
            char buf[4096];
            for (uint32_t i = 0; i < m; i++) {
                size_t l;
                mf_tokenizer_decode(&t, ids[i], buf, sizeof buf, &l);
            }
        }
    }
    free(bad);
    return 0;
}
