/*
 * Tokenizer rules that the fixtures' golden ids do not reach, each on a
 * small tokenizer written here (or a one-line change of a fixture). The
 * expected ids are worked out by hand from the rule as docs/tokenizer-format.md
 * states it and the reference library (named) implements it; neither
 * `tokenizers` nor `sentencepiece` was run to make them:
 *  - added tokens are cut leftmost-longest (tokenizers' LeftmostLongest);
 *  - tokenizer.json merges: a later duplicate pair wins (tokenizers' merge
 *    map); ignore_merges emits a pre-token that is a vocabulary token as is;
 *  - fuse_unk: consecutive unknowns of one pre-token give one unk id;
 *  - Prepend("▁") and Metaspace(prepend_scheme=always) put U+2581 before
 *    every segment between added tokens, Metaspace(first) only before the
 *    text's first; Metaspace's split defaults to true;
 *  - tokenizer.model: equal scores merge leftmost first (sentencepiece's
 *    SymbolPairComparator), the dummy prefix comes before a leading
 *    user-defined piece, a user-defined piece spelled with U+2581 matches
 *    spaces, a "▁▁" piece merges a run of spaces;
 *  - decode: invalid UTF-8 gives one U+FFFD per maximal invalid subpart
 *    (Python's bytes.decode(errors="replace"), Rust's from_utf8_lossy, as the
 *    ByteLevel decoder), reset forgets held-back bytes, flush empties them,
 *    a control token at the start of a text leaves the dummy-prefix strip
 *    to the next token (sentencepiece's decode).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../runtime/moeflash.h"
#include "../runtime/tokenizer.h"
#include "../runtime/tokenizer_format.h"
#include "../tools/lib/json.h"
#include "../tools/lib/tokconv.h"
#include "harness.h"

/* ---- helpers ----------------------------------------------------------- */

static uint8_t *conv(const char *json, size_t json_len, const uint8_t *spm, size_t spm_len, size_t *len,
                     const char *what)
{
    uint8_t *sec = NULL;
    char err[256] = "";
    int rc = mf_tokconv_build_mem(json, json_len, spm, spm_len, &sec, len, err, sizeof err);
    CHECK(rc == 0 && sec, "%s: %s", what, err);
    return rc == 0 ? sec : NULL;
}

/* base with the one occurrence of `from` replaced by `to` (heap), or NULL */
static char *replaced(const char *base, const char *from, const char *to, size_t *out_len)
{
    const char *p = base ? strstr(base, from) : NULL;
    CHECK(p != NULL && strstr(p + 1, from) == NULL, "\"%s\" once in the fixture", from);
    if (!p) return NULL;
    size_t bl = strlen(base), fl = strlen(from), tl = strlen(to), pre = (size_t)(p - base);
    char *m = malloc(bl - fl + tl + 1);
    memcpy(m, base, pre);
    memcpy(m + pre, to, tl);
    memcpy(m + pre + tl, p + fl, bl - pre - fl + 1);
    *out_len = bl - fl + tl;
    return m;
}

static uint32_t encode(const mf_tokenizer *t, const char *s, uint32_t *ids, uint32_t max)
{
    size_t sb = mf_tokenizer_scratch_bytes(t, strlen(s));
    void *sc = malloc(sb);
    uint32_t n = 0;
    int rc = mf_tokenizer_encode(t, s, strlen(s), ids, max, &n, sc, sb);
    free(sc);
    return rc ? 0xFFFFFFFFu : n;
}

/* encode(s) == want[0..nw) */
static int ids_are(const mf_tokenizer *t, const char *s, const uint32_t *want, uint32_t nw)
{
    uint32_t ids[64];
    uint32_t n = encode(t, s, ids, 64);
    int same = n == nw;
    for (uint32_t i = 0; same && i < n; i++) same = ids[i] == want[i];
    if (!same) {
        fprintf(stderr, "  \"%s\": got", s);
        for (uint32_t i = 0; n != 0xFFFFFFFFu && i < n && i < 64; i++) fprintf(stderr, " %u", ids[i]);
        fprintf(stderr, ", want");
        for (uint32_t i = 0; i < nw; i++) fprintf(stderr, " %u", want[i]);
        fprintf(stderr, "\n");
    }
    return same;
}

#define IDS(t, s, ...)                                                                    \
    do {                                                                                  \
        static const uint32_t want_[] = {__VA_ARGS__};                                    \
        CHECK(ids_are((t), (s), want_, (uint32_t)(sizeof want_ / sizeof want_[0])), "encode \"%s\"", (s)); \
    } while (0)

/* ids of encode(s), appended at *n */
static void append(const mf_tokenizer *t, const char *s, uint32_t *ids, uint32_t *n)
{
    uint32_t k = encode(t, s, ids + *n, 16);
    CHECK(k != 0xFFFFFFFFu && k <= 16, "encode \"%s\"", s);
    if (k != 0xFFFFFFFFu && k <= 16) *n += k;
}

/* Decodes ids one by one from a reset, then flushes. */
static size_t decode_ids(mf_tokenizer *t, const uint32_t *ids, size_t n, char *out, size_t cap)
{
    size_t o = 0, l = 0;
    mf_tokenizer_decode_reset(t);
    for (size_t i = 0; i < n; i++) {
        if (cap - o < 64 || mf_tokenizer_decode(t, ids[i], out + o, cap - o, &l)) return (size_t)-1;
        o += l;
    }
    if (mf_tokenizer_decode_flush(t, out + o, cap - o, &l)) return (size_t)-1;
    return o + l;
}

/* ---- added tokens: leftmost-longest ------------------------------------ */

static void test_added_leftmost_longest(void)
{
    size_t blen, jl, len;
    char *base = mf_read_file("tests/data/tok-bytelevel/tokenizer.json", &blen);
#define ADDED(id, s) "{\"id\": " #id ", \"content\": \"" s "\", \"single_word\": false, \"lstrip\": false, " \
                     "\"rstrip\": false, \"normalized\": false, \"special\": true}, "
    char *json = replaced(base, "\"added_tokens\": [",
                          "\"added_tokens\": [" ADDED(1024, "<|x|>") ADDED(1025, "<|x|>y") ADDED(1026, "x|>y!"), &jl);
#undef ADDED
    uint8_t *sec = json ? conv(json, jl, NULL, 0, &len, "three more added tokens") : NULL;
    mf_tokenizer t;
    if (sec && mf_tokenizer_init(&t, sec, len, 0) == MF_OK) {
        /* at 0 both <|x|> and <|x|>y match: the longer; x|>y! starts later */
        uint32_t want[32], n = 0;
        want[n++] = 1025;
        append(&t, "!", want, &n);
        CHECK(ids_are(&t, "<|x|>y!", want, n), "leftmost-longest at the start");
        n = 0;
        append(&t, "a", want, &n);
        want[n++] = 1024;
        append(&t, "b", want, &n);
        CHECK(ids_are(&t, "a<|x|>b", want, n), "a<|x|>b");
        IDS(&t, "<|x|>y<|x|>", 1025, 1024);
        n = 0;
        append(&t, "<|x|", want, &n);
        want[n++] = 1025;
        CHECK(ids_are(&t, "<|x|<|x|>y", want, n), "a partial match before the leftmost one");
    }
    free(sec);
    free(json);
    free(base);
}

/* ---- tokenizer.json BPE: duplicate merges, ignore_merges ---------------- */

/* A byte-level tokenizer.json (GPT-2 pre-tokenizer) over a dozen tokens;
 * with_unk: <unk> 14 as unk_token, fuse_unk. */
static char *small_bl_json(const char *merges, int ignore_merges, int with_unk)
{
    static const char fmt[] =
        "{\"version\": \"1.0\", \"added_tokens\": [], \"normalizer\": null,\n"
        " \"pre_tokenizer\": {\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"trim_offsets\": true, "
        "\"use_regex\": true},\n"
        " \"post_processor\": null,\n"
        " \"decoder\": {\"type\": \"ByteLevel\", \"add_prefix_space\": true, \"trim_offsets\": true, "
        "\"use_regex\": true},\n"
        " \"model\": {\"type\": \"BPE\", \"dropout\": null, \"unk_token\": %s, \"continuing_subword_prefix\": null,"
        " \"end_of_word_suffix\": null, \"fuse_unk\": %s, \"byte_fallback\": false, \"ignore_merges\": %s,\n"
        "  \"vocab\": {\"a\": 0, \"b\": 1, \"c\": 2, \"d\": 3, \"\\u0120\": 4, \"ab\": 5, \"abc\": 6, \"abcd\": 7,"
        " \"\\u0120a\": 8, \"\\u0120ab\": 9, \"\\u0120abc\": 10, \"\\u0120abcd\": 11, \"bc\": 12, \"cd\": 13, \"<unk>\": 14},\n"
        "  \"merges\": %s}}\n";
    size_t n = sizeof fmt + strlen(merges) + 8;
    char *s = malloc(n);
    snprintf(s, n, fmt, with_unk ? "\"<unk>\"" : "null", with_unk ? "true" : "false", ignore_merges ? "true" : "false",
             merges);
    return s;
}

static void test_merges_json(void)
{
    mf_tokenizer t;
    size_t len;
    /* (a b) rank 0, (b c) rank 1: "abc" = ab c */
    char *j = small_bl_json("[\"a b\", \"b c\"]", 0, 0);
    uint8_t *sec = conv(j, strlen(j), NULL, 0, &len, "small byte-level");
    if (sec && mf_tokenizer_init(&t, sec, len, 0) == MF_OK) IDS(&t, "abc", 5, 2);
    free(sec);
    free(j);
    /* "a b" again at the end: the later one wins, rank 2 > rank of (b c) */
    j = small_bl_json("[\"a b\", \"b c\", \"a b\"]", 0, 0);
    sec = conv(j, strlen(j), NULL, 0, &len, "duplicate merge");
    if (sec && mf_tokenizer_init(&t, sec, len, 0) == MF_OK) {
        IDS(&t, "abc", 0, 12);
        IDS(&t, "ab", 5);
    }
    free(sec);
    free(j);

    /* ignore_merges: a pre-token that is a token is emitted as is, the rest
     * goes through the merges (Llama 3) */
    const char *text = "abc abcd ab bc";
    j = small_bl_json("[\"a b\", \"\\u0120 a\"]", 0, 0);
    sec = conv(j, strlen(j), NULL, 0, &len, "merges used");
    if (sec && mf_tokenizer_init(&t, sec, len, 0) == MF_OK) IDS(&t, text, 5, 2, 4, 5, 2, 3, 4, 5, 4, 1, 2);
    free(sec);
    free(j);
    j = small_bl_json("[\"a b\", \"\\u0120 a\"]", 1, 0);
    sec = conv(j, strlen(j), NULL, 0, &len, "ignore_merges");
    if (sec && mf_tokenizer_init(&t, sec, len, 0) == MF_OK) {
        CHECK(t.hdr[MF_TOKH_FLAGS] & MF_TOKF_IGNORE_MERGES, "IGNORE_MERGES flag");
        IDS(&t, text, 6, 11, 9, 4, 1, 2);
        IDS(&t, "abcd cd d a", 7, 4, 2, 3, 4, 3, 8);
        char out[256];
        uint32_t ids[] = {6, 11, 9};
        size_t ol = decode_ids(&t, ids, 3, out, sizeof out);
        CHECK(ol == 11 && !memcmp(out, "abc abcd ab", 11), "ignore_merges decode");
    }
    free(sec);
    free(j);

    /* fuse_unk fuses the unknown bytes of one pre-token (tokenizers'
     * BPE::merge_word works on one word), never those of two */
    j = small_bl_json("[\"a b\"]", 0, 1);
    sec = conv(j, strlen(j), NULL, 0, &len, "unk_token, fuse_unk");
    if (sec && mf_tokenizer_init(&t, sec, len, 0) == MF_OK) {
        IDS(&t, "xy", 14);
        IDS(&t, "xyab", 14, 5);
        IDS(&t, "x!y", 14, 14, 14);
        IDS(&t, "abx zw", 5, 14, 4, 14);
        IDS(&t, "xa", 14, 0);
    }
    free(sec);
    free(j);
}

/* ---- char mode tokenizer.json: fuse_unk, Prepend, Metaspace ------------- */

static void test_char_json(void)
{
    size_t blen, jl, len;
    char *base = mf_read_file("tests/data/tok-sentencepiece-hf/tokenizer.json", &blen);
    mf_tokenizer t;
    /* ids in the fixture's vocabulary: <unk> 0, </s> 2, "▁a" 261, "a" 969 */
    /* fuse_unk (the fixture has it), byte_fallback off: 天地 is one <unk> */
    char *json = replaced(base, "\"byte_fallback\": true", "\"byte_fallback\": false", &jl);
    uint8_t *sec = json ? conv(json, jl, NULL, 0, &len, "no byte_fallback") : NULL;
    if (sec && mf_tokenizer_init(&t, sec, len, 0) == MF_OK) {
        IDS(&t, "a\xE5\xA4\xA9\xE5\x9C\xB0", 261, 0);
        IDS(&t, "\xE5\xA4\xA9\xE5\x9C\xB0\xE7\x8E\x84" "a", 965, 0, 969);
    }
    free(sec);
    char *json2 = json ? replaced(json, "\"fuse_unk\": true", "\"fuse_unk\": false", &jl) : NULL;
    sec = json2 ? conv(json2, jl, NULL, 0, &len, "no fuse_unk") : NULL;
    if (sec && mf_tokenizer_init(&t, sec, len, 0) == MF_OK) IDS(&t, "a\xE5\xA4\xA9\xE5\x9C\xB0", 261, 0, 0);
    free(sec);
    free(json2);
    free(json);

    /* Prepend("▁") normalizes each segment between added tokens */
    sec = conv(base, blen, NULL, 0, &len, "tok-sentencepiece-hf");
    if (sec && mf_tokenizer_init(&t, sec, len, 0) == MF_OK) {
        IDS(&t, "a</s>a", 261, 2, 261);
        IDS(&t, "</s>", 2);
    }
    free(sec);

    /* Metaspace pre-tokenizer instead of the normalizers */
    const char *nf = base ? strstr(base, "\"normalizer\":") : NULL;
    const char *ne = base ? strstr(base, "\"pre_tokenizer\": null,") : NULL;
    CHECK(nf && ne && nf < ne, "normalizer before pre_tokenizer in the fixture");
    if (nf && ne && nf < ne) {
        static const char *const pt[3] = {
            "\"prepend_scheme\": \"always\", \"split\": false",
            "\"prepend_scheme\": \"first\", \"split\": false",
            "\"prepend_scheme\": \"first\"",
        };
        for (int k = 0; k < 3; k++) {
            char mid[256];
            snprintf(mid, sizeof mid,
                     "\"normalizer\": null, \"pre_tokenizer\": {\"type\": \"Metaspace\", \"replacement\": "
                     "\"\\u2581\", %s},",
                     pt[k]);
            size_t pre = (size_t)(nf - base), post = blen - (size_t)(ne + strlen("\"pre_tokenizer\": null,") - base);
            char *m = malloc(pre + strlen(mid) + post + 1);
            memcpy(m, base, pre);
            memcpy(m + pre, mid, strlen(mid));
            memcpy(m + pre + strlen(mid), ne + strlen("\"pre_tokenizer\": null,"), post);
            m[pre + strlen(mid) + post] = 0;
            sec = conv(m, pre + strlen(mid) + post, NULL, 0, &len, pt[k]);
            if (sec && mf_tokenizer_init(&t, sec, len, 0) == MF_OK) {
                if (k == 0) {
                    CHECK(t.hdr[MF_TOKH_PREFIX] == MF_TOKPFX_SEGMENT, "Metaspace always: prefix before every segment");
                    IDS(&t, "a</s>a", 261, 2, 261);
                } else {
                    CHECK(t.hdr[MF_TOKH_PREFIX] == MF_TOKPFX_FIRST, "Metaspace first");
                    IDS(&t, "a</s>a", 261, 2, 969);
                }
                /* tokenizers' Metaspace splits unless told split=false */
                int each = (t.hdr[MF_TOKH_FLAGS] & MF_TOKF_SPLIT_META_EACH) != 0;
                CHECK(each == (k == 2), "%s: SPLIT_META_EACH %d", pt[k], each);
            }
            free(sec);
            free(m);
        }
    }
    free(base);
}

/* ---- tokenizer.model written here ---------------------------------------- */

typedef struct {
    uint8_t b[2048];
    size_t n;
} pbuf;

static void pb_var(pbuf *p, uint64_t v)
{
    while (v >= 0x80) {
        p->b[p->n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p->b[p->n++] = (uint8_t)v;
}

static void pb_len(pbuf *p, uint32_t field, const void *d, size_t n)
{
    pb_var(p, (uint64_t)field << 3 | 2);
    pb_var(p, n);
    memcpy(p->b + p->n, d, n);
    p->n += n;
}

static void pb_int(pbuf *p, uint32_t field, uint64_t v)
{
    pb_var(p, (uint64_t)field << 3);
    pb_var(p, v);
}

/* ModelProto: pieces (piece 1, score 2, type 3), trainer_spec (model_type 3
 * = BPE), normalizer_spec (name 1 identity, add_dummy_prefix 3,
 * remove_extra_whitespaces 4, escape_whitespaces 5). */
static size_t spm_model(pbuf *m, int with_meta_piece)
{
    static const struct {
        const char *s;
        float score;
        int type; /* 1 normal 2 unknown 3 control 4 user-defined */
    } pieces[] = {
        {"<unk>", 0, 2},  {"<s>", 0, 3},  {"</s>", 0, 3},     {"bc", -1, 1}, {"ab", -1, 1},
        {"<u>", 0, 4},    {"\xE2\x96\x81\xE2\x96\x81", -0.5f, 1}, {"\xE2\x96\x81", -2, 1},
        {"a", -3, 1},     {"b", -4, 1},   {"c", -5, 1},       {"c\xE2\x96\x81" "c", 0, 4},
    };
    m->n = 0;
    size_t np = sizeof pieces / sizeof pieces[0] - (with_meta_piece ? 0 : 1);
    for (size_t i = 0; i < np; i++) {
        pbuf p = {{0}, 0};
        pb_len(&p, 1, pieces[i].s, strlen(pieces[i].s));
        uint32_t u;
        memcpy(&u, &pieces[i].score, 4);
        pb_var(&p, 2 << 3 | 5);
        for (int k = 0; k < 4; k++) p.b[p.n++] = (uint8_t)(u >> (8 * k));
        pb_int(&p, 3, (uint64_t)pieces[i].type);
        pb_len(m, 1, p.b, p.n);
    }
    pbuf ts = {{0}, 0}, ns = {{0}, 0};
    pb_int(&ts, 3, 2);
    pb_len(m, 2, ts.b, ts.n);
    pb_len(&ns, 1, "identity", 8);
    pb_int(&ns, 3, 1);
    pb_int(&ns, 4, 0);
    pb_int(&ns, 5, 1);
    pb_len(m, 3, ns.b, ns.n);
    return np;
}

static void test_spm_model(void)
{
    /* ids: <unk> 0 <s> 1 </s> 2 bc 3 ab 4 <u> 5 ▁▁ 6 ▁ 7 a 8 b 9 c 10 c▁c 11 */
    for (int v = 0; v < 2; v++) {
        pbuf m;
        spm_model(&m, v);
        size_t len;
        uint8_t *sec = conv(NULL, 0, m.b, m.n, &len, v ? "tokenizer.model with c\xE2\x96\x81" "c" : "tokenizer.model");
        mf_tokenizer t;
        if (!sec || mf_tokenizer_init(&t, sec, len, 0) != MF_OK) {
            CHECK(0, "handmade tokenizer.model");
            free(sec);
            continue;
        }
        /* "▁abc": (a b) and (b c) have the same score: the leftmost first */
        IDS(&t, "abc", 7, 4, 10);
        IDS(&t, "bcab", 7, 3, 4);
        /* the dummy prefix is there before a user-defined piece at the start */
        IDS(&t, "<u>c", 7, 5, 10);
        IDS(&t, "c<u>", 7, 10, 5);
        /* "▁▁c": the two U+2581 merge */
        IDS(&t, " c", 6, 10);
        IDS(&t, "a  b", 7, 8, 6, 9);
        if (v) {
            CHECK(!(t.hdr[MF_TOKH_FLAGS] & MF_TOKF_SPLIT_META), "a piece with an inner U+2581: no SPLIT_META");
            /* a user-defined piece spelled with U+2581 stands for a space */
            IDS(&t, "c c", 7, 11);
            IDS(&t, "ac c", 7, 8, 11);
        } else {
            CHECK(t.hdr[MF_TOKH_FLAGS] & MF_TOKF_SPLIT_META, "SPLIT_META");
            IDS(&t, "c c", 7, 10, 7, 10);
        }
        char out[256];
        uint32_t ids[] = {1, 7, 4, 10, 2};
        size_t ol = decode_ids(&t, ids, 5, out, sizeof out);
        CHECK(ol == 3 && !memcmp(out, "abc", 3), "<s> ▁ ab c </s> decodes to \"abc\" (%zu bytes)", ol);
        free(sec);
    }
}

/* ---- decode: invalid UTF-8, reset, flush, control tokens ---------------- */

static uint32_t byte_token(const mf_tokenizer *t, uint8_t b)
{
    const uint8_t *p = t->tables + t->hdr[MF_TOKH_OFF_BYTE_IDS] + 4 * b;
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void test_decode_utf8(void)
{
    uint8_t *sec = NULL;
    size_t len = 0;
    char err[256];
    CHECK(mf_tokconv_build("tests/data/tok-bytelevel", &sec, &len, err, sizeof err) == 0 && sec, "%s", err);
    mf_tokenizer t;
    if (!sec || mf_tokenizer_init(&t, sec, len, 0) != MF_OK) {
        free(sec);
        return;
    }
    /* bytes, one byte token each -> bytes.decode("utf-8", "replace") */
#define FFFD "\xEF\xBF\xBD"
    static const struct {
        const char *in, *want;
    } cases[] = {
        {"\xC0\x80", FFFD FFFD},                    /* C0 never starts a sequence */
        {"\xC1\xBF", FFFD FFFD},
        {"\xE0\x80\x80", FFFD FFFD FFFD},           /* overlong */
        {"\xE0\xA0\x80", "\xE0\xA0\x80"},           /* U+0800 */
        {"\xED\xA0\x80", FFFD FFFD FFFD},           /* surrogate */
        {"\xF0\x8F\xBF\xBF", FFFD FFFD FFFD FFFD},  /* overlong */
        {"\xF4\x90\x80\x80", FFFD FFFD FFFD FFFD},  /* beyond U+10FFFF */
        {"\xF5\x80", FFFD FFFD},
        {"\xC3" "A", FFFD "A"},                     /* the byte that breaks a sequence is kept */
        {"\xE2\x82" "A\xE2\x82\xAC", FFFD "A\xE2\x82\xAC"},
        {"\xF0\x9F\x99\x82", "\xF0\x9F\x99\x82"},
        {"\xE2\x82", FFFD},                         /* unfinished at the end: flush */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint32_t ids[8];
        size_t n = strlen(cases[i].in);
        for (size_t k = 0; k < n; k++) ids[k] = byte_token(&t, (uint8_t)cases[i].in[k]);
        char out[256];
        size_t ol = decode_ids(&t, ids, n, out, sizeof out);
        CHECK(ol == strlen(cases[i].want) && !memcmp(out, cases[i].want, ol), "decode case %zu: %zu bytes", i, ol);
    }
    /* reset forgets a held-back byte; flush empties them */
    char out[256];
    size_t l = 99, l2 = 99;
    mf_tokenizer_decode_reset(&t);
    mf_tokenizer_decode(&t, byte_token(&t, 0xC3), out, sizeof out, &l);
    CHECK(l == 0, "C3 held back");
    mf_tokenizer_decode_reset(&t);
    mf_tokenizer_decode(&t, byte_token(&t, 'a'), out, sizeof out, &l);
    mf_tokenizer_decode_flush(&t, out + 1, sizeof out - 1, &l2);
    CHECK(l == 1 && out[0] == 'a' && l2 == 0, "after reset: \"a\" then nothing (%zu, %zu)", l, l2);
    mf_tokenizer_decode(&t, byte_token(&t, 0xE2), out, sizeof out, &l);
    mf_tokenizer_decode_flush(&t, out, sizeof out, &l);
    mf_tokenizer_decode_flush(&t, out, sizeof out, &l2);
    CHECK(l == 3 && l2 == 0, "second flush: nothing (%zu)", l2);
#undef FFFD
    free(sec);

    /* sentencepiece: decode([<s>, ▁a]) = "a", control tokens are invisible */
    sec = NULL;
    CHECK(mf_tokconv_build("tests/data/tok-sentencepiece", &sec, &len, err, sizeof err) == 0 && sec, "%s", err);
    if (sec && mf_tokenizer_init(&t, sec, len, 0) == MF_OK) {
        uint32_t ids[] = {1, 261, 261, 2};
        size_t ol = decode_ids(&t, ids, 4, out, sizeof out);
        CHECK(ol == 3 && !memcmp(out, "a a", 3), "<s> ▁a ▁a </s> -> \"a a\" (%zu bytes)", ol);
    }
    free(sec);
}

int main(void)
{
    test_added_leftmost_longest();
    test_merges_json();
    test_char_json();
    test_spm_model();
    test_decode_utf8();
    return mf_test_done("test_tokenizer_rules");
}
