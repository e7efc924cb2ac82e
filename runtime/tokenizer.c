/*
 * Tokenizer: byte-level (id = byte) without tables; otherwise BPE over the
 * MF_SEC_TOKENIZER tables (tokenizer_format.h), read in place with
 * little-endian loads, no heap.
 *
 * Encode = split the text on added tokens (leftmost-longest), then each
 * segment into chunks (byte mode: the pre-tokenizer regex written out by
 * hand; char mode: SentencePiece-style normalization ' ' -> U+2581 with a
 * prefix, chunked only where no merge can cross), then BPE inside each
 * chunk: repeatedly merge the adjacent pair of lowest rank, leftmost first
 * (what both Hugging Face `tokenizers` and `sentencepiece` compute with
 * their priority queues). A chunk lives in the caller's scratch: 10 bytes
 * per symbol.
 */
#include "tokenizer.h"

#include <string.h>

#include "moeflash.h"
#include "tokenizer_format.h"
#include "unicode_nfc.h"
#include "unicode_tables.h"

static inline uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

#define HDR(t, f) ((t)->hdr[f])
#define UNKNOWN_BIT 0x80000000u
#define VIRTUAL_META 0xFFFFFFFEu /* the prefix U+2581 when it has no token */
#define META_CP 0x2581u

/* ---- Unicode ---------------------------------------------------------- */

/* Decodes one UTF-8 character at s[i] (i < len): returns its length and sets
 * *cp; an invalid or truncated sequence gives one byte and cp = NONE. */
static size_t utf8_dec(const uint8_t *s, size_t len, size_t i, uint32_t *cp)
{
    uint32_t c = s[i];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    size_t n;
    uint32_t lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
        c &= 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
        c &= 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
        c &= 0x07;
    } else {
        *cp = MF_TOK_NONE;
        return 1;
    }
    if (len - i < n) {
        *cp = MF_TOK_NONE;
        return 1;
    }
    for (size_t k = 1; k < n; k++) {
        uint32_t b = s[i + k];
        if (b < lo || b > hi) {
            *cp = MF_TOK_NONE;
            return 1;
        }
        lo = 0x80;
        hi = 0xBF;
        c = c << 6 | (b & 0x3F);
    }
    *cp = c;
    return n;
}

static const uint8_t ascii_class[128] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 3, 3, 3, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 0, 0, 0, 0, 0, 0,
    0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0,
    0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0};

static int uclass(uint32_t cp)
{
    if (cp < 128) return ascii_class[cp];
    if (cp > 0x10FFFF) return MF_UC_OTHER;
    uint32_t lo = 0, hi = mf_unicode_n_runs; /* last run starting <= cp */
    while (hi - lo > 1) {
        uint32_t mid = (lo + hi) / 2;
        if ((mf_unicode_runs[mid] >> 8) <= cp)
            lo = mid;
        else
            hi = mid;
    }
    return (int)(mf_unicode_runs[lo] & 0xFF);
}

/* ---- Pre-tokenizer regexes -------------------------------------------- */

typedef struct {
    const uint8_t *s;
    size_t len;
    size_t seen; /* one past the last byte looked at: seen >= len means more text could change the match */
} span;

static size_t ch(span *x, size_t i, uint32_t *cp, int *cls)
{
    size_t n = utf8_dec(x->s, x->len, i, cp);
    if (i + n > x->seen) x->seen = i + n;
    *cls = *cp == MF_TOK_NONE ? MF_UC_OTHER : uclass(*cp);
    return n;
}

/* End of a run of class `want` starting at i. */
static size_t run_of(span *x, size_t i, int want)
{
    while (i < x->len) {
        uint32_t cp;
        int c;
        size_t n = ch(x, i, &cp, &c);
        if (c != want) break;
        i += n;
    }
    return i;
}

static int is_punct(uint32_t cp, int cls)
{
    (void)cp;
    return cls == MF_UC_OTHER;
}

/* (?i:'s|'t|'re|'ve|'m|'ll|'d) (case-sensitive for GPT-2): the end or 0. */
static size_t match_contraction(span *x, size_t i, int icase)
{
    if (x->s[i] != '\'') return 0;
    if (i + 1 >= x->len) {
        x->seen = x->len;
        return 0;
    }
    const uint8_t *p = x->s + i + 1;
    size_t rest = x->len - i - 1;
    if (rest < 2) x->seen = x->len;
#define LOW(c) (icase && (c) >= 'A' && (c) <= 'Z' ? (c) + 32 : (c))
    int c1 = LOW(p[0]);
    if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') return i + 2;
    if (icase && rest >= 2 && p[0] == 0xC5 && p[1] == 0xBF) return i + 3; /* U+017F folds to s */
    if (rest >= 2) {
        int c2 = LOW(p[1]);
        if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l'))
            return i + 3;
    }
#undef LOW
    return 0;
}

/* Whitespace alternatives shared by the patterns, at i where a space starts:
 * qwen adds \s*[\r\n]+ first. Then \s+(?!\S) and \s+. */
static size_t match_space(span *x, size_t i, int with_newline_rule)
{
    size_t j = i, last_start = i, last_nl = 0;
    int have_nl = 0;
    while (j < x->len) {
        uint32_t cp;
        int c;
        size_t n = ch(x, j, &cp, &c);
        if (c != MF_UC_SPACE) break;
        if (cp == '\r' || cp == '\n') {
            have_nl = 1;
            last_nl = j;
        }
        last_start = j;
        j += n;
    }
    if (j == i) return 0;
    if (with_newline_rule && have_nl) return last_nl + 1;
    if (j == x->len) return j;
    if (last_start > i) return last_start; /* \s+(?!\S): leave the last space */
    return j;                              /* \s+ */
}

/* End of the pre-token starting at i (< len). */
static size_t pretok_next(span *x, size_t i, int kind)
{
    uint32_t cp0, cp1 = MF_TOK_NONE;
    int c0, c1 = -1;
    size_t n0 = ch(x, i, &cp0, &c0), n1 = 0;
    if (i + n0 < x->len) n1 = ch(x, i + n0, &cp1, &c1);
    size_t e;
    if (kind == MF_TOKPRE_GPT2) {
        if ((e = match_contraction(x, i, 0))) return e;
        int sp = cp0 == ' ' && n1;
        if (c0 == MF_UC_LETTER) return run_of(x, i, MF_UC_LETTER);
        if (sp && c1 == MF_UC_LETTER) return run_of(x, i + 1, MF_UC_LETTER);
        if (c0 == MF_UC_NUMBER) return run_of(x, i, MF_UC_NUMBER);
        if (sp && c1 == MF_UC_NUMBER) return run_of(x, i + 1, MF_UC_NUMBER);
        size_t k = is_punct(cp0, c0) ? i : (sp && is_punct(cp1, c1)) ? i + 1 : (size_t)-1;
        if (k != (size_t)-1) {
            while (k < x->len) {
                uint32_t cp;
                int c;
                size_t n = ch(x, k, &cp, &c);
                if (!is_punct(cp, c)) break;
                k += n;
            }
            return k;
        }
        if ((e = match_space(x, i, 0))) return e;
        return i + n0;
    }
    /* Qwen2 / Llama 3 */
    if ((e = match_contraction(x, i, 1))) return e;
    /* [^\r\n\p{L}\p{N}]?\p{L}+ */
    if (c0 == MF_UC_LETTER) return run_of(x, i, MF_UC_LETTER);
    if (cp0 != '\r' && cp0 != '\n' && c0 != MF_UC_NUMBER && c1 == MF_UC_LETTER)
        return run_of(x, i + n0, MF_UC_LETTER);
    /* \p{N} or \p{N}{1,3} */
    if (c0 == MF_UC_NUMBER) {
        size_t j = i + n0;
        if (kind == MF_TOKPRE_LLAMA3) {
            for (int k = 1; k < 3 && j < x->len; k++) {
                uint32_t cp;
                int c;
                size_t n = ch(x, j, &cp, &c);
                if (c != MF_UC_NUMBER) break;
                j += n;
            }
        }
        return j;
    }
    /* ' ?[^\s\p{L}\p{N}]+[\r\n]*' */
    {
        size_t k = is_punct(cp0, c0) ? i : (cp0 == ' ' && n1 && is_punct(cp1, c1)) ? i + 1 : (size_t)-1;
        if (k != (size_t)-1) {
            while (k < x->len) {
                uint32_t cp;
                int c;
                size_t n = ch(x, k, &cp, &c);
                if (!is_punct(cp, c)) break;
                k += n;
            }
            while (k < x->len && (x->s[k] == '\r' || x->s[k] == '\n')) k++;
            if (k >= x->len) x->seen = x->len;
            return k;
        }
    }
    if ((e = match_space(x, i, 1))) return e;
    return i + n0;
}

size_t mf_tokenizer_pretok_next(int kind, const char *s, size_t len, size_t i)
{
    if (!s || i >= len || kind < MF_TOKPRE_GPT2 || kind > MF_TOKPRE_LLAMA3) return len;
    span x = {(const uint8_t *)s, len, 0};
    return pretok_next(&x, i, kind);
}

/* ---- Tables ------------------------------------------------------------ */

static int region_ok(uint32_t total, uint32_t off, uint64_t bytes)
{
    return off % 4 == 0 && off >= MF_TOK_HEADER_WORDS * 4 && (uint64_t)off + bytes <= total;
}

int mf_tokenizer_init(mf_tokenizer *t, const uint8_t *tables, size_t table_bytes, uint32_t vocab)
{
    if (!t) return MF_E_ARG;
    memset(t, 0, sizeof *t);
    t->vocab = vocab;
    t->at_start = 1;
    if (!tables) return MF_OK;
    if (table_bytes < MF_TOK_HEADER_WORDS * 4 || table_bytes > 0xFFFFFFFFu) return MF_E_FORMAT;
    for (uint32_t i = 0; i < MF_TOK_HEADER_WORDS; i++) t->hdr[i] = rd32(tables + 4 * i);
    const uint32_t *h = t->hdr;
    if (h[MF_TOKH_MAGIC] != MF_TOK_MAGIC) return MF_E_FORMAT;
    if (h[MF_TOKH_VERSION] != MF_TOK_VERSION) return MF_E_VERSION;
    uint32_t total = h[MF_TOKH_TOTAL_BYTES];
    if (h[MF_TOKH_HEADER_BYTES] != MF_TOK_HEADER_WORDS * 4 || total > table_bytes) return MF_E_FORMAT;
    uint32_t mode = h[MF_TOKH_MODE], nv = h[MF_TOKH_N_VOCAB];
    if (mode != MF_TOKMODE_BYTE && mode != MF_TOKMODE_CHAR) return MF_E_UNSUPPORTED;
    if (h[MF_TOKH_PRETOK] > MF_TOKPRE_LLAMA3 || h[MF_TOKH_PREFIX] > MF_TOKPFX_FIRST) return MF_E_UNSUPPORTED;
    if (nv == 0 || nv >= UNKNOWN_BIT || (vocab && nv > vocab)) return MF_E_FORMAT;
    if (h[MF_TOKH_UNK] != MF_TOK_NONE && h[MF_TOKH_UNK] >= nv) return MF_E_FORMAT;
    if (h[MF_TOKH_STRIP] > 1) return MF_E_FORMAT;
    if (h[MF_TOKH_N_EOS] > MF_TOK_MAX_EOS) return MF_E_FORMAT;
    for (uint32_t i = 0; i < h[MF_TOKH_N_EOS]; i++)
        if (h[MF_TOKH_EOS + i] >= nv) return MF_E_FORMAT;
    uint32_t nm = h[MF_TOKH_N_MERGES], nc = h[MF_TOKH_N_CHARS], na = h[MF_TOKH_N_ADDED];
    if (!region_ok(total, h[MF_TOKH_OFF_BYTE_IDS], 1024) ||
        !region_ok(total, h[MF_TOKH_OFF_TOK_OFF], 4ull * nv + 4) ||
        !region_ok(total, h[MF_TOKH_OFF_TOK_BYTES], h[MF_TOKH_N_TOK_BYTES]) ||
        !region_ok(total, h[MF_TOKH_OFF_TOK_FLAGS], nv) ||
        !region_ok(total, h[MF_TOKH_OFF_MERGES], 16ull * nm) ||
        !region_ok(total, h[MF_TOKH_OFF_MERGE_INDEX], 4ull * nv + 4) ||
        !region_ok(total, h[MF_TOKH_OFF_CHARS], 8ull * nc) ||
        !region_ok(total, h[MF_TOKH_OFF_ADDED], 16ull * na) ||
        !region_ok(total, h[MF_TOKH_OFF_ADDED_BYTES], h[MF_TOKH_N_ADDED_BYTES]))
        return MF_E_RANGE;
    if ((h[MF_TOKH_FLAGS] & MF_TOKF_IGNORE_MERGES) &&
        (!h[MF_TOKH_OFF_SORTED_VOCAB] || !region_ok(total, h[MF_TOKH_OFF_SORTED_VOCAB], 4ull * nv)))
        return MF_E_RANGE;
    /* Offsets tables must be monotonic so lookups stay inside. */
    const uint8_t *to = tables + h[MF_TOKH_OFF_TOK_OFF];
    const uint8_t *mi = tables + h[MF_TOKH_OFF_MERGE_INDEX];
    uint32_t prev_t = 0, prev_m = 0;
    for (uint32_t i = 0; i <= nv; i++) {
        uint32_t a = rd32(to + 4 * i), b = rd32(mi + 4 * i);
        if (a < prev_t || b < prev_m) return MF_E_FORMAT;
        prev_t = a;
        prev_m = b;
    }
    if (rd32(to) != 0 || prev_t != h[MF_TOKH_N_TOK_BYTES] || rd32(mi) != 0 || prev_m != nm)
        return MF_E_FORMAT;
    const uint8_t *ad = tables + h[MF_TOKH_OFF_ADDED];
    for (uint32_t i = 0; i < na; i++) {
        uint32_t off = rd32(ad + 16 * i), len = rd32(ad + 16 * i + 4), id = rd32(ad + 16 * i + 8);
        if (len == 0 || off > h[MF_TOKH_N_ADDED_BYTES] || len > h[MF_TOKH_N_ADDED_BYTES] - off || id >= nv)
            return MF_E_FORMAT;
        uint8_t b = tables[h[MF_TOKH_OFF_ADDED_BYTES] + off];
        t->added_first[b >> 3] |= (uint8_t)(1u << (b & 7));
    }
    t->tables = tables;
    t->table_bytes = table_bytes;
    return MF_OK;
}

static int pair_find(const mf_tokenizer *t, uint32_t l, uint32_t r, uint32_t *rank, uint32_t *res)
{
    uint32_t nv = HDR(t, MF_TOKH_N_VOCAB);
    if (l >= nv || r >= nv) return 0;
    const uint8_t *mi = t->tables + HDR(t, MF_TOKH_OFF_MERGE_INDEX);
    const uint8_t *m = t->tables + HDR(t, MF_TOKH_OFF_MERGES);
    uint32_t lo = rd32(mi + 4 * l), hi = rd32(mi + 4 * l + 4);
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        uint32_t rr = rd32(m + 16 * mid + 4);
        if (rr == r) {
            const uint8_t *e = m + 16 * mid;
            if (rd32(e) != l) return 0;
            *rank = rd32(e + 8);
            *res = rd32(e + 12);
            return *res < nv && *rank != MF_TOK_NONE;
        }
        if (rr < r)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

static uint32_t char_id(const mf_tokenizer *t, uint32_t cp)
{
    const uint8_t *c = t->tables + HDR(t, MF_TOKH_OFF_CHARS);
    uint32_t lo = 0, hi = HDR(t, MF_TOKH_N_CHARS);
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        uint32_t v = rd32(c + 8 * mid);
        if (v == cp) {
            uint32_t id = rd32(c + 8 * mid + 4);
            return id < HDR(t, MF_TOKH_N_VOCAB) ? id : MF_TOK_NONE;
        }
        if (v < cp)
            lo = mid + 1;
        else
            hi = mid;
    }
    return MF_TOK_NONE;
}

static const uint8_t *tok_bytes(const mf_tokenizer *t, uint32_t id, uint32_t *n)
{
    const uint8_t *to = t->tables + HDR(t, MF_TOKH_OFF_TOK_OFF);
    uint32_t a = rd32(to + 4 * id), b = rd32(to + 4 * id + 4);
    *n = b - a;
    return t->tables + HDR(t, MF_TOKH_OFF_TOK_BYTES) + a;
}

/* ---- Encode ------------------------------------------------------------ */

typedef struct {
    const mf_tokenizer *t;
    const uint8_t *text;
    size_t len;
    uint32_t *ids, max_ids, n;
    uint32_t *sym, *rank;
    uint16_t *nxt;
    uint32_t cap, nsym;
    int last_unk;
    uint32_t *cache; /* optional pair cache: MF_TOK_CACHE entries of {left, right, rank, result} */
    uint8_t *nfc;    /* NFC of a segment that is not NFC already */
    size_t nfc_cap;
} enc;

#define MF_TOK_NFC_WINDOW 65536u /* NFC window wanted by scratch_bytes (any size works) */
#define MF_TOK_CACHE 512u
#define MF_TOK_CACHE_BYTES (MF_TOK_CACHE * 16u)

/* pair_find through the cache when there is one. */
static int pair_get(enc *e, uint32_t l, uint32_t r, uint32_t *rank, uint32_t *res)
{
    if (!e->cache) return pair_find(e->t, l, r, rank, res);
    uint32_t *c = e->cache + 4 * ((l * 0x9E3779B1u ^ r * 0x85EBCA77u) >> 23 & (MF_TOK_CACHE - 1));
    if (c[0] == l && c[1] == r) {
        *rank = c[2];
        *res = c[3];
        return c[2] != MF_TOK_NONE;
    }
    int found = pair_find(e->t, l, r, rank, res);
    c[0] = l;
    c[1] = r;
    c[2] = found ? *rank : MF_TOK_NONE;
    c[3] = found ? *res : 0;
    return found;
}

static void emit(enc *e, uint32_t id)
{
    if (e->n < e->max_ids) e->ids[e->n] = id;
    e->n++;
    e->last_unk = 0;
}

static void emit_unk(enc *e)
{
    uint32_t unk = HDR(e->t, MF_TOKH_UNK);
    if (unk == MF_TOK_NONE) return;
    if ((HDR(e->t, MF_TOKH_FLAGS) & MF_TOKF_FUSE_UNK) && e->last_unk) return;
    emit(e, unk);
    e->last_unk = 1;
}

/* An unknown symbol: byte fallback over its (normalized) bytes, else unk. */
static void emit_unknown(enc *e, uint32_t s)
{
    const mf_tokenizer *t = e->t;
    uint8_t b[4];
    size_t n;
    if (s == VIRTUAL_META || (HDR(t, MF_TOKH_MODE) == MF_TOKMODE_CHAR &&
                              (HDR(t, MF_TOKH_FLAGS) & MF_TOKF_SPACE_TO_META) &&
                              e->text[s & ~UNKNOWN_BIT] == ' ')) {
        b[0] = 0xE2;
        b[1] = 0x96;
        b[2] = 0x81;
        n = 3;
    } else if (HDR(t, MF_TOKH_MODE) == MF_TOKMODE_CHAR) {
        size_t pos = s & ~UNKNOWN_BIT;
        uint32_t cp;
        n = utf8_dec(e->text, e->len, pos, &cp);
        memcpy(b, e->text + pos, n);
    } else {
        b[0] = (uint8_t)s; /* byte mode: the byte itself */
        n = 1;
    }
    if (HDR(t, MF_TOKH_FLAGS) & MF_TOKF_BYTE_FALLBACK) {
        const uint8_t *bi = t->tables + HDR(t, MF_TOKH_OFF_BYTE_IDS);
        int all = 1;
        for (size_t k = 0; k < n; k++)
            if (rd32(bi + 4 * b[k]) >= HDR(t, MF_TOKH_N_VOCAB)) all = 0;
        if (all) {
            for (size_t k = 0; k < n; k++) emit(e, rd32(bi + 4 * b[k]));
            return;
        }
    }
    emit_unk(e);
}

static uint32_t pair_rank(enc *e, uint32_t l, uint32_t r)
{
    uint32_t rank, res;
    return pair_get(e, l, r, &rank, &res) ? rank : MF_TOK_NONE;
}

/* BPE over sym[0..nsym), then emits the result. */
static void bpe_flush(enc *e)
{
    const mf_tokenizer *t = e->t;
    uint32_t n = e->nsym, *sym = e->sym, *rank = e->rank;
    uint16_t *nxt = e->nxt;
    if (n == 0) return;
    e->last_unk = 0; /* unknowns fuse within a word only */
    for (uint32_t i = 0; i < n; i++) {
        nxt[i] = (uint16_t)(i + 1);
        rank[i] = i + 1 < n ? pair_rank(e, sym[i], sym[i + 1]) : MF_TOK_NONE;
    }
    for (;;) {
        uint32_t best = MF_TOK_NONE, bestr = MF_TOK_NONE, bestprev = MF_TOK_NONE, prev = MF_TOK_NONE;
        for (uint32_t i = 0; i < n; i = nxt[i]) {
            if (rank[i] < bestr) {
                bestr = rank[i];
                best = i;
                bestprev = prev;
            }
            prev = i;
        }
        if (best == MF_TOK_NONE) break;
        uint32_t j = nxt[best], r, res;
        if (!pair_get(e, sym[best], sym[j], &r, &res)) break; /* cannot happen */
        sym[best] = res;
        nxt[best] = nxt[j];
        rank[best] = nxt[best] < n ? pair_rank(e, res, sym[nxt[best]]) : MF_TOK_NONE;
        if (bestprev != MF_TOK_NONE) rank[bestprev] = pair_rank(e, sym[bestprev], res);
    }
    for (uint32_t i = 0; i < n; i = nxt[i]) {
        if (sym[i] < HDR(t, MF_TOKH_N_VOCAB))
            emit(e, sym[i]);
        else
            emit_unknown(e, sym[i]);
    }
    e->nsym = 0;
}

static void push_sym(enc *e, uint32_t s)
{
    if (e->nsym == e->cap) bpe_flush(e); /* chunk longer than the scratch: cut */
    e->sym[e->nsym++] = s;
}

/* A chunk that is a whole token (ignore_merges). */
static int whole_token(enc *e, const uint8_t *s, size_t n)
{
    const mf_tokenizer *t = e->t;
    const uint8_t *sv = t->tables + HDR(t, MF_TOKH_OFF_SORTED_VOCAB);
    uint32_t lo = 0, hi = HDR(t, MF_TOKH_N_VOCAB);
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2, id = rd32(sv + 4 * mid), tn;
        if (id >= HDR(t, MF_TOKH_N_VOCAB)) return 0;
        const uint8_t *tb = tok_bytes(t, id, &tn);
        size_t m = tn < n ? tn : n;
        int c = memcmp(tb, s, m);
        if (c == 0) c = tn < n ? -1 : tn > n ? 1 : 0;
        if (c == 0) {
            emit(e, id);
            return 1;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

static void encode_byte_chunk(enc *e, const uint8_t *s, size_t n)
{
    const mf_tokenizer *t = e->t;
    if ((HDR(t, MF_TOKH_FLAGS) & MF_TOKF_IGNORE_MERGES) && whole_token(e, s, n)) return;
    const uint8_t *bi = t->tables + HDR(t, MF_TOKH_OFF_BYTE_IDS);
    for (size_t k = 0; k < n; k++) {
        uint32_t id = rd32(bi + 4 * s[k]);
        if (id >= HDR(t, MF_TOKH_N_VOCAB)) id = UNKNOWN_BIT | s[k];
        push_sym(e, id);
    }
    bpe_flush(e);
}

/* Where NFC of src[p..) may stop, at most `take` bytes on: before a
 * character that is an NFC_QC=Yes starter (nothing composes across it);
 * p when there is none. */
static size_t nfc_cut(const uint8_t *src, size_t n, size_t p, size_t take)
{
    size_t q = p + take;
    if (q >= n) return n;
    for (size_t k = q; k > p; k--) {
        if (src[k] < 0x80) return k;
        if ((src[k] & 0xC0) == 0x80) continue;
        uint32_t cp;
        utf8_dec(src, n, k, &cp);
        if (cp == MF_TOK_NONE || mf_unicode_nfc_boundary(cp)) return k;
    }
    return p;
}

/* A segment that is not NFC already: normalized piece by piece into the
 * window e->nfc, pre-tokenized there; a pre-token that reaches the end of
 * the window waits for the next piece (moved to the window's start). */
static int encode_segment_nfc(enc *e, const uint8_t *src, size_t n)
{
    uint8_t *w = e->nfc;
    size_t cap = e->nfc_cap, wl = 0, p = 0;
    int kind = (int)HDR(e->t, MF_TOKH_PRETOK);
    if (cap < 16) return MF_E_ARENA;
    for (;;) {
        size_t before = wl;
        while (p < n && (cap - wl) / 3 > 0) {
            size_t q = nfc_cut(src, n, p, (cap - wl) / 3);
            if (q == p) {
                if (wl > 0) break; /* room for this piece after the window drains */
                /* a run of combining marks longer than the window: cut it anyway */
                q = p + (cap - wl) / 3;
                while (q > p + 1 && (src[q] & 0xC0) == 0x80) q--;
            }
            size_t m = mf_unicode_nfc(src + p, q - p, w + wl, cap - wl);
            if (m == (size_t)-1) return MF_E_ARENA; /* cannot happen: NFC is at most 3x */
            wl += m;
            p = q;
        }
        int more = p < n, stuck = wl == before && before > 0;
        span x = {w, wl, 0};
        size_t i = 0;
        while (i < wl) {
            x.seen = 0;
            size_t j = kind == MF_TOKPRE_NONE ? wl : pretok_next(&x, i, kind);
            if (more && x.seen >= wl && !(i == 0 && stuck)) break;
            encode_byte_chunk(e, w + i, j - i);
            i = j;
        }
        if (!more && i >= wl) return MF_OK;
        memmove(w, w + i, wl - i);
        wl -= i;
    }
}

static int encode_segment_bytes(enc *e, size_t a, size_t b)
{
    span x = {e->text + a, b - a, 0};
    if ((HDR(e->t, MF_TOKH_FLAGS) & MF_TOKF_NFC) && !mf_unicode_nfc_quick(x.s, x.len))
        return encode_segment_nfc(e, x.s, x.len);
    int kind = (int)HDR(e->t, MF_TOKH_PRETOK);
    size_t i = 0;
    while (i < x.len) {
        size_t j = kind == MF_TOKPRE_NONE ? x.len : pretok_next(&x, i, kind);
        encode_byte_chunk(e, x.s + i, j - i);
        i = j;
    }
    return MF_OK;
}

static void encode_segment_chars(enc *e, size_t a, size_t b)
{
    const mf_tokenizer *t = e->t;
    uint32_t flags = HDR(t, MF_TOKH_FLAGS), pfx = HDR(t, MF_TOKH_PREFIX);
    int s2m = (flags & MF_TOKF_SPACE_TO_META) != 0;
    int prefix = 0;
    if (pfx == MF_TOKPFX_TEXT)
        prefix = a == 0 && e->len > 0;
    else if (pfx == MF_TOKPFX_SEGMENT)
        prefix = b > a;
    else if (pfx == MF_TOKPFX_FIRST)
        prefix = a == 0 && b > a;
    if (prefix && (flags & MF_TOKF_PREFIX_IF_NO_SPACE) && b > a) {
        uint32_t cp;
        utf8_dec(e->text, b, a, &cp);
        if ((s2m && cp == ' ') || cp == META_CP) prefix = 0;
    }
    uint32_t meta_id = char_id(t, META_CP);
    int prev_meta = 0;
    if (prefix) {
        push_sym(e, meta_id != MF_TOK_NONE ? meta_id : VIRTUAL_META);
        prev_meta = 1;
    }
    size_t i = a;
    while (i < b) {
        uint32_t cp;
        size_t n = utf8_dec(e->text, b, i, &cp);
        if (s2m && cp == ' ') cp = META_CP;
        int is_meta = cp == META_CP;
        if (is_meta && e->nsym > 0 &&
            ((flags & MF_TOKF_SPLIT_META_EACH) || ((flags & MF_TOKF_SPLIT_META) && !prev_meta)))
            bpe_flush(e);
        uint32_t id = cp == MF_TOK_NONE ? MF_TOK_NONE : char_id(t, cp);
        push_sym(e, id != MF_TOK_NONE ? id : UNKNOWN_BIT | (uint32_t)i);
        prev_meta = is_meta;
        i += n;
    }
    bpe_flush(e);
}

/* Leftmost-longest added token at or after `from`: sets [*ms, *me) and *id. */
static int next_added(const mf_tokenizer *t, const uint8_t *s, size_t len, size_t from, size_t *ms,
                      size_t *me, uint32_t *id)
{
    uint32_t na = HDR(t, MF_TOKH_N_ADDED);
    if (na == 0) return 0;
    const uint8_t *ad = t->tables + HDR(t, MF_TOKH_OFF_ADDED);
    const uint8_t *ab = t->tables + HDR(t, MF_TOKH_OFF_ADDED_BYTES);
    for (size_t p = from; p < len; p++) {
        uint8_t c = s[p];
        if (!(t->added_first[c >> 3] & (1u << (c & 7)))) continue;
        /* first entry whose first byte >= c */
        uint32_t lo = 0, hi = na;
        while (lo < hi) {
            uint32_t mid = lo + (hi - lo) / 2;
            if (ab[rd32(ad + 16 * mid)] < c)
                lo = mid + 1;
            else
                hi = mid;
        }
        uint32_t best_len = 0, best = 0;
        for (uint32_t k = lo; k < na; k++) {
            const uint8_t *en = ad + 16 * k;
            uint32_t off = rd32(en), l = rd32(en + 4);
            if (ab[off] != c) break;
            if (l <= len - p && l > best_len && memcmp(ab + off, s + p, l) == 0) {
                best_len = l;
                best = k;
            }
        }
        if (best_len) {
            const uint8_t *en = ad + 16 * best;
            uint32_t fl = rd32(en + 12);
            size_t a = p, b = p + best_len;
            if (fl & MF_TOKT_LSTRIP)
                while (a > from && (s[a - 1] == ' ' || (s[a - 1] >= 9 && s[a - 1] <= 13))) a--;
            if (fl & MF_TOKT_RSTRIP)
                while (b < len && (s[b] == ' ' || (s[b] >= 9 && s[b] <= 13))) b++;
            *ms = a;
            *me = b;
            *id = rd32(en + 8);
            return 1;
        }
    }
    return 0;
}

size_t mf_tokenizer_scratch_bytes(const mf_tokenizer *t, size_t len)
{
    if (!t || !t->tables) return 0;
    size_t n = len + 1;
    if (n > MF_TOKENIZER_MAX_CHUNK) n = MF_TOKENIZER_MAX_CHUNK;
    if (n < 256) n = 256;
    size_t nfc = (HDR(t, MF_TOKH_FLAGS) & MF_TOKF_NFC) ? (3 * len + 7) & ~(size_t)3 : 0;
    if (nfc > MF_TOK_NFC_WINDOW) nfc = MF_TOK_NFC_WINDOW;
    if (nfc && nfc < 256) nfc = 256;
    return MF_TOKENIZER_SCRATCH(n) + nfc + MF_TOK_CACHE_BYTES; /* + a pair cache */
}

int mf_tokenizer_encode(const mf_tokenizer *t, const char *text, size_t len, uint32_t *ids,
                        uint32_t max_ids, uint32_t *n_ids, void *scratch, size_t scratch_bytes)
{
    if (!t || (!text && len) || !n_ids || (!ids && max_ids)) return MF_E_ARG;
    if (!t->tables) {
        for (size_t i = 0; i < len && i < max_ids; i++) ids[i] = (uint8_t)text[i];
        *n_ids = (uint32_t)len;
        return MF_OK;
    }
    if (len >= UNKNOWN_BIT - 2) return MF_E_ARG;
    /* scratch: sym u32[cap], rank u32[cap], nxt u16[cap] */
    uintptr_t p = (uintptr_t)scratch, al = (p + 3) & ~(uintptr_t)3;
    if (!scratch || scratch_bytes < MF_TOKENIZER_SCRATCH(16) || scratch_bytes < (al - p)) return MF_E_ARENA;
    size_t avail = scratch_bytes - (al - p);
    enc e;
    memset(&e, 0, sizeof e);
    /* Scratch beyond what the chunks need holds a pair cache (host speed). */
    size_t want = len + 1 < MF_TOKENIZER_MAX_CHUNK ? len + 1 : MF_TOKENIZER_MAX_CHUNK;
    size_t nfc_want = (HDR(t, MF_TOKH_FLAGS) & MF_TOKF_NFC) ? (3 * len + 7) & ~(size_t)3 : 0;
    if (nfc_want > MF_TOK_NFC_WINDOW) nfc_want = MF_TOK_NFC_WINDOW;
    if (nfc_want && nfc_want < 256) nfc_want = 256;
    if (avail >= MF_TOK_CACHE_BYTES + nfc_want + MF_TOKENIZER_SCRATCH(want < 256 ? 256 : want)) {
        e.cache = (uint32_t *)al;
        for (uint32_t i = 0; i < MF_TOK_CACHE; i++) e.cache[4 * i] = MF_TOK_NONE;
        al += MF_TOK_CACHE_BYTES;
        avail -= MF_TOK_CACHE_BYTES;
    }
    if (nfc_want) {
        /* the NFC buffer: what it needs, or half of a smaller scratch */
        size_t nb = avail >= nfc_want + MF_TOKENIZER_SCRATCH(16) ? nfc_want : (avail / 2) & ~(size_t)3;
        e.nfc = (uint8_t *)al;
        e.nfc_cap = nb;
        al += nb;
        avail -= nb;
    }
    size_t cap = avail / MF_TOKENIZER_SYMBOL_BYTES;
    if (cap > MF_TOKENIZER_MAX_CHUNK) cap = MF_TOKENIZER_MAX_CHUNK;
    if (cap < 16) return MF_E_ARENA;
    e.t = t;
    e.text = (const uint8_t *)text;
    e.len = len;
    e.ids = ids;
    e.max_ids = max_ids;
    e.cap = (uint32_t)cap;
    e.sym = (uint32_t *)al;
    e.rank = e.sym + cap;
    e.nxt = (uint16_t *)(e.rank + cap);
    int charmode = HDR(t, MF_TOKH_MODE) == MF_TOKMODE_CHAR;
    size_t pos = 0;
    for (;;) {
        size_t ms = len, me = len;
        uint32_t aid = MF_TOK_NONE;
        int found = next_added(t, e.text, len, pos, &ms, &me, &aid);
        if (charmode) {
            encode_segment_chars(&e, pos, ms);
        } else {
            int rc = encode_segment_bytes(&e, pos, ms);
            if (rc) return rc;
        }
        if (!found) break;
        emit(&e, aid);
        pos = me;
    }
    *n_ids = e.n;
    return MF_OK;
}

/* ---- Decode ------------------------------------------------------------ */

/* Feeds bytes through the UTF-8 assembler. With out == NULL only counts. */
static size_t utf8_feed(uint8_t *pending, uint32_t *np, const uint8_t *b, size_t n, char *out)
{
    size_t o = 0;
#define PUT(c)                                   \
    do {                                         \
        if (out) out[o] = (char)(c);             \
        o++;                                     \
    } while (0)
#define FFFD() \
    do {       \
        PUT(0xEF); \
        PUT(0xBF); \
        PUT(0xBD); \
    } while (0)
    for (size_t k = 0; k < n;) {
        uint32_t x = b[k];
        if (*np == 0) {
            if (x < 0x80)
                PUT(x);
            else if (x >= 0xC2 && x <= 0xF4)
                pending[(*np)++] = (uint8_t)x;
            else
                FFFD();
            k++;
            continue;
        }
        uint32_t lead = pending[0], need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2;
        uint32_t lo = 0x80, hi = 0xBF;
        if (*np == 1) {
            if (lead == 0xE0) lo = 0xA0;
            if (lead == 0xED) hi = 0x9F;
            if (lead == 0xF0) lo = 0x90;
            if (lead == 0xF4) hi = 0x8F;
        }
        if (x < lo || x > hi) {
            FFFD(); /* the maximal invalid subpart; x is looked at again */
            *np = 0;
            continue;
        }
        pending[(*np)++] = (uint8_t)x;
        k++;
        if (*np == need) {
            for (uint32_t q = 0; q < need; q++) PUT(pending[q]);
            *np = 0;
        }
    }
#undef PUT
#undef FFFD
    return o;
}

int mf_tokenizer_decode(mf_tokenizer *t, uint32_t id, char *out, size_t cap, size_t *len)
{
    if (!t || !out || !len) return MF_E_ARG;
    if (!t->tables) {
        if (id >= 256 || id >= t->vocab) return MF_E_TOKEN;
        if (cap < 1) return MF_E_ARG;
        out[0] = (char)id;
        *len = 1;
        return MF_OK;
    }
    if (id >= HDR(t, MF_TOKH_N_VOCAB)) {
        /* padding rows of the model's vocabulary: no text (as `tokenizers`) */
        if (t->vocab && id < t->vocab) {
            *len = 0;
            return MF_OK;
        }
        return MF_E_TOKEN;
    }
    uint32_t n;
    const uint8_t *b = tok_bytes(t, id, &n);
    uint8_t fl = t->tables[HDR(t, MF_TOKH_OFF_TOK_FLAGS) + id];
    if (fl & MF_TOKT_CONTROL) {
        *len = 0;
        return MF_OK;
    }
    int strip = t->at_start && HDR(t, MF_TOKH_STRIP) && n > 0 && b[0] == ' ';
    if (strip) {
        b++;
        n--;
    }
    uint8_t pend[8];
    uint32_t np = t->n_pending;
    memcpy(pend, t->pending, sizeof pend);
    size_t need = utf8_feed(pend, &np, b, n, NULL);
    if (need > cap) {
        *len = need;
        return MF_E_ARG;
    }
    *len = utf8_feed(t->pending, &t->n_pending, b, n, out);
    t->at_start = 0;
    return MF_OK;
}

void mf_tokenizer_decode_reset(mf_tokenizer *t)
{
    if (!t) return;
    t->n_pending = 0;
    t->at_start = 1;
}

void mf_tokenizer_decode_continue(mf_tokenizer *t)
{
    if (t) t->at_start = 0;
}

int mf_tokenizer_decode_flush(mf_tokenizer *t, char *out, size_t cap, size_t *len)
{
    if (!t || !out || !len) return MF_E_ARG;
    *len = 0;
    if (t->n_pending == 0) return MF_OK;
    if (cap < 3) {
        *len = 3;
        return MF_E_ARG;
    }
    out[0] = (char)0xEF;
    out[1] = (char)0xBF;
    out[2] = (char)0xBD;
    *len = 3;
    t->n_pending = 0;
    return MF_OK;
}

int mf_tokenizer_is_special(const mf_tokenizer *t, uint32_t id)
{
    if (!t || !t->tables || id >= HDR(t, MF_TOKH_N_VOCAB)) return 0;
    return (t->tables[HDR(t, MF_TOKH_OFF_TOK_FLAGS) + id] & (MF_TOKT_SPECIAL | MF_TOKT_CONTROL)) != 0;
}

int mf_tokenizer_is_eos(const mf_tokenizer *t, uint32_t id)
{
    if (!t || !t->tables) return 0;
    for (uint32_t i = 0; i < HDR(t, MF_TOKH_N_EOS); i++)
        if (HDR(t, MF_TOKH_EOS + i) == id) return 1;
    return 0;
}

uint32_t mf_tokenizer_bos(const mf_tokenizer *t)
{
    if (!t || !t->tables) return MF_TOK_NONE;
    uint32_t b = HDR(t, MF_TOKH_BOS);
    return b < HDR(t, MF_TOKH_N_VOCAB) ? b : MF_TOK_NONE;
}

const uint8_t *mf_tokenizer_token_bytes(const mf_tokenizer *t, uint32_t id, size_t *len)
{
    if (!t || !len) return NULL;
    if (!t->tables) {
        static const uint8_t bytes[256] = {
#define B4(i) (i), (i) + 1, (i) + 2, (i) + 3
#define B16(i) B4(i), B4((i) + 4), B4((i) + 8), B4((i) + 12)
#define B64(i) B16(i), B16((i) + 16), B16((i) + 32), B16((i) + 48)
            B64(0), B64(64), B64(128), B64(192)
#undef B4
#undef B16
#undef B64
        };
        if (id >= 256) return NULL;
        *len = 1;
        return bytes + id;
    }
    if (id >= HDR(t, MF_TOKH_N_VOCAB)) return NULL;
    uint32_t n;
    const uint8_t *b = tok_bytes(t, id, &n);
    *len = n;
    return b;
}
