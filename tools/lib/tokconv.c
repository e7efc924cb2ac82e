/*
 * Tokenizer conversion (host only): reads a Hugging Face tokenizer.json
 * (BPE) or, when there is none, a SentencePiece tokenizer.model (BPE,
 * protobuf parsed here) and lays out the MF_SEC_TOKENIZER section described
 * in runtime/tokenizer_format.h / docs/tokenizer-format.md.
 */
#include "tokconv.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../runtime/tokenizer_format.h"
#include "../../runtime/unicode_nfc.h"
#include "json.h"

/* ---- Builder ------------------------------------------------------------ */

typedef struct {
    char *s; /* the token in the model's own spelling (byte-level chars, U+2581 ...) */
    size_t n;
    int present;
    uint8_t flags;
    uint8_t *dec; /* decoded bytes */
    size_t ndec;
    int mergeable;
} tok;

typedef struct {
    uint32_t l, r, rank, res;
} merge;

typedef struct {
    uint8_t *s;
    size_t n;
    uint32_t id, flags;
    size_t order;   /* position in the input */
    int normalized; /* tokenizer.json "normalized" (checked by check_normalized) */
} added;

typedef struct {
    const char *s;
    size_t n;
    uint32_t id;
} strkey;

typedef struct {
    char *err;
    size_t errlen;
    uint32_t hdr[MF_TOK_HEADER_WORDS];
    tok *toks;
    uint32_t nv, cap_v;
    merge *merges;
    size_t nm, cap_m;
    added *added;
    size_t na, cap_a;
    uint32_t byte_ids[256];
    strkey *index; /* model spelling -> id, sorted */
    size_t nindex;
} builder;

static int errf(builder *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b->err, b->errlen, fmt, ap);
    va_end(ap);
    mf_one_line(b->err); /* messages quote the file's own bytes */
    return -1;
}

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) {
        fprintf(stderr, "out of memory\n");
        abort();
    }
    return q;
}

static tok *tok_at(builder *b, uint32_t id)
{
    if (id >= b->cap_v) {
        uint32_t nc = b->cap_v ? b->cap_v : 1024;
        while (nc <= id) nc *= 2;
        b->toks = xrealloc(b->toks, nc * sizeof *b->toks);
        memset(b->toks + b->cap_v, 0, (nc - b->cap_v) * sizeof *b->toks);
        b->cap_v = nc;
    }
    if (id >= b->nv) b->nv = id + 1;
    return &b->toks[id];
}

static int set_tok(builder *b, uint32_t id, const char *s, size_t n)
{
    if (id >= 0x7FFFFFFFu) return errf(b, "token id %u too large", id);
    tok *t = tok_at(b, id);
    free(t->s);
    t->s = xrealloc(NULL, n + 1);
    memcpy(t->s, s, n);
    t->s[n] = 0;
    t->n = n;
    t->present = 1;
    return 0;
}

static void set_dec(tok *t, const void *d, size_t n)
{
    free(t->dec);
    t->dec = xrealloc(NULL, n);
    memcpy(t->dec, d, n);
    t->ndec = n;
}

static int cmp_bytes(const void *a, size_t an, const void *b, size_t bn)
{
    size_t m = an < bn ? an : bn;
    int c = memcmp(a, b, m);
    if (c) return c;
    return an < bn ? -1 : an > bn ? 1 : 0;
}

static int cmp_strkey(const void *a, const void *b)
{
    const strkey *x = a, *y = b;
    int c = cmp_bytes(x->s, x->n, y->s, y->n);
    if (c) return c;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* Index of the model vocabulary by spelling (only mergeable tokens when
 * mergeable_only). */
static void build_index(builder *b, int mergeable_only)
{
    free(b->index);
    b->index = xrealloc(NULL, (b->nv + 1) * sizeof *b->index);
    b->nindex = 0;
    for (uint32_t i = 0; i < b->nv; i++) {
        tok *t = &b->toks[i];
        if (!t->present || (mergeable_only && !t->mergeable)) continue;
        b->index[b->nindex++] = (strkey){t->s, t->n, i};
    }
    qsort(b->index, b->nindex, sizeof *b->index, cmp_strkey);
}

static uint32_t lookup(const builder *b, const char *s, size_t n)
{
    size_t lo = 0, hi = b->nindex;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = cmp_bytes(b->index[mid].s, b->index[mid].n, s, n);
        if (c == 0) {
            /* the lowest id of equal spellings */
            while (mid > 0 && cmp_bytes(b->index[mid - 1].s, b->index[mid - 1].n, s, n) == 0) mid--;
            return b->index[mid].id;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return MF_TOK_NONE;
}

static void add_merge(builder *b, uint32_t l, uint32_t r, uint32_t rank, uint32_t res)
{
    if (b->nm == b->cap_m) {
        b->cap_m = b->cap_m ? 2 * b->cap_m : 4096;
        b->merges = xrealloc(b->merges, b->cap_m * sizeof *b->merges);
    }
    b->merges[b->nm++] = (merge){l, r, rank, res};
}

static void add_added(builder *b, const char *s, size_t n, uint32_t id, uint32_t flags, int normalized)
{
    if (b->na == b->cap_a) {
        b->cap_a = b->cap_a ? 2 * b->cap_a : 64;
        b->added = xrealloc(b->added, b->cap_a * sizeof *b->added);
    }
    added *a = &b->added[b->na++];
    a->s = xrealloc(NULL, n);
    memcpy(a->s, s, n);
    a->n = n;
    a->id = id;
    a->flags = flags;
    a->order = b->na - 1;
    a->normalized = normalized;
}

static void builder_free(builder *b)
{
    for (uint32_t i = 0; i < b->cap_v; i++) {
        free(b->toks[i].s);
        free(b->toks[i].dec);
    }
    free(b->toks);
    free(b->merges);
    for (size_t i = 0; i < b->na; i++) free(b->added[i].s);
    free(b->added);
    free(b->index);
}

/* Ties (the same pair twice) by rank, i.e. by input order: qsort need not
 * be stable, and the later duplicate must come last to win. */
static int cmp_merge(const void *a, const void *b)
{
    const merge *x = a, *y = b;
    if (x->l != y->l) return x->l < y->l ? -1 : 1;
    if (x->r != y->r) return x->r < y->r ? -1 : 1;
    return x->rank < y->rank ? -1 : x->rank > y->rank;
}

static int cmp_added(const void *a, const void *b)
{
    const added *x = a, *y = b;
    int c = cmp_bytes(x->s, x->n, y->s, y->n);
    if (c) return c;
    return x->order < y->order ? -1 : x->order > y->order;
}

typedef struct {
    uint32_t cp, id;
} charent;

static int cmp_char(const void *a, const void *b)
{
    const charent *x = a, *y = b;
    if (x->cp != y->cp) return x->cp < y->cp ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

static const builder *sort_ctx;
static int cmp_vocab_dec(const void *a, const void *b)
{
    const tok *x = &sort_ctx->toks[*(const uint32_t *)a], *y = &sort_ctx->toks[*(const uint32_t *)b];
    return cmp_bytes(x->dec, x->ndec, y->dec, y->ndec);
}

/* One UTF-8 character: its length, or 0 when s is not one whole valid character. */
static size_t utf8_one(const char *s, size_t n, uint32_t *cp)
{
    const uint8_t *u = (const uint8_t *)s;
    if (n == 0) return 0;
    size_t l = u[0] < 0x80 ? 1 : (u[0] >> 5) == 6 ? 2 : (u[0] >> 4) == 14 ? 3 : (u[0] >> 3) == 30 ? 4 : 0;
    if (!l || l > n) return 0;
    uint32_t c = l == 1 ? u[0] : l == 2 ? u[0] & 0x1F : l == 3 ? u[0] & 0x0F : u[0] & 0x07;
    for (size_t k = 1; k < l; k++) {
        if ((u[k] & 0xC0) != 0x80) return 0;
        c = c << 6 | (u[k] & 0x3F);
    }
    *cp = c;
    return l;
}

static const char META[] = "\xE2\x96\x81"; /* U+2581 */

/* Does the spelling contain U+2581 right after another character? */
static int has_inner_meta(const char *s, size_t n)
{
    int prev_meta = 1; /* the first character may be U+2581 */
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t l = utf8_one(s + i, n - i, &cp);
        if (!l) l = 1, cp = 0;
        if (cp == 0x2581) {
            if (!prev_meta) return 1;
            prev_meta = 1;
        } else {
            prev_meta = 0;
        }
        i += l;
    }
    return 0;
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

#define ALIGN4(x) (((x) + 3) & ~(size_t)3)

/* Lays out the section. Char mode gets the chars table from the
 * single-character mergeable tokens. */
static int serialize(builder *b, uint8_t **out, size_t *len)
{
    uint32_t nv = b->nv, *h = b->hdr;
    if (nv == 0) return errf(b, "empty vocabulary");
    for (uint32_t i = 0; i < nv; i++) tok_at(b, i); /* make sure the array covers nv */
    /* merges: sort, and drop duplicate pairs keeping the last rank given */
    if (b->nm) qsort(b->merges, b->nm, sizeof *b->merges, cmp_merge);
    size_t w = 0;
    for (size_t i = 0; i < b->nm; i++) {
        if (w > 0 && b->merges[w - 1].l == b->merges[i].l && b->merges[w - 1].r == b->merges[i].r) {
            b->merges[w - 1] = b->merges[i];
            continue;
        }
        b->merges[w++] = b->merges[i];
    }
    b->nm = w;
    /* chars */
    charent *chars = xrealloc(NULL, (nv + 1) * sizeof *chars);
    size_t nc = 0;
    if (h[MF_TOKH_MODE] == MF_TOKMODE_CHAR) {
        for (uint32_t i = 0; i < nv; i++) {
            tok *t = &b->toks[i];
            uint32_t cp;
            if (!t->present || !t->mergeable) continue;
            if (utf8_one(t->s, t->n, &cp) != t->n) continue;
            chars[nc++] = (charent){cp, i};
        }
        if (nc) qsort(chars, nc, sizeof *chars, cmp_char);
        /* keep the lowest id per character */
        size_t k = 0;
        for (size_t i = 0; i < nc; i++)
            if (k == 0 || chars[k - 1].cp != chars[i].cp) chars[k++] = chars[i];
        nc = k;
    }
    if (b->na) qsort(b->added, b->na, sizeof *b->added, cmp_added);
    /* the same string twice: one entry, unless it names two ids (which of
     * them the text means is not decidable, and the library keeps the first) */
    for (size_t i = 1; i < b->na; i++) {
        const added *p = &b->added[i - 1], *a = &b->added[i];
        if (p->n == a->n && !memcmp(p->s, a->s, a->n) && p->id != a->id) {
            free(chars);
            return errf(b, "added token \"%.*s\" appears twice, with ids %u and %u", (int)(a->n < 40 ? a->n : 40),
                        (const char *)a->s, p->id, a->id);
        }
    }
    size_t na = 0;
    for (size_t i = 0; i < b->na; i++) {
        added *a = &b->added[i];
        if (na && b->added[na - 1].n == a->n && !memcmp(b->added[na - 1].s, a->s, a->n)) {
            free(a->s);
            continue;
        }
        b->added[na++] = *a;
    }
    b->na = na;
    size_t tb = 0, ab = 0;
    for (uint32_t i = 0; i < nv; i++) tb += b->toks[i].ndec;
    for (size_t i = 0; i < b->na; i++) ab += b->added[i].n;
    int sorted = (h[MF_TOKH_FLAGS] & MF_TOKF_IGNORE_MERGES) != 0;

    size_t off = MF_TOK_HEADER_WORDS * 4;
    h[MF_TOKH_OFF_BYTE_IDS] = (uint32_t)off;
    off += 1024;
    h[MF_TOKH_OFF_TOK_OFF] = (uint32_t)off;
    off += 4 * ((size_t)nv + 1);
    h[MF_TOKH_OFF_TOK_BYTES] = (uint32_t)off;
    h[MF_TOKH_N_TOK_BYTES] = (uint32_t)tb;
    off += ALIGN4(tb);
    h[MF_TOKH_OFF_TOK_FLAGS] = (uint32_t)off;
    off += ALIGN4(nv);
    h[MF_TOKH_OFF_MERGES] = (uint32_t)off;
    h[MF_TOKH_N_MERGES] = (uint32_t)b->nm;
    off += 16 * b->nm;
    h[MF_TOKH_OFF_MERGE_INDEX] = (uint32_t)off;
    off += 4 * ((size_t)nv + 1);
    h[MF_TOKH_OFF_CHARS] = (uint32_t)off;
    h[MF_TOKH_N_CHARS] = (uint32_t)nc;
    off += 8 * nc;
    h[MF_TOKH_OFF_ADDED] = (uint32_t)off;
    h[MF_TOKH_N_ADDED] = (uint32_t)b->na;
    off += 16 * b->na;
    h[MF_TOKH_OFF_ADDED_BYTES] = (uint32_t)off;
    h[MF_TOKH_N_ADDED_BYTES] = (uint32_t)ab;
    off += ALIGN4(ab);
    h[MF_TOKH_OFF_SORTED_VOCAB] = sorted ? (uint32_t)off : 0;
    if (sorted) off += 4 * (size_t)nv;
    if (off > 0xFFFFFFF0u) {
        free(chars);
        return errf(b, "tokenizer section too large (%zu bytes)", off);
    }
    h[MF_TOKH_MAGIC] = MF_TOK_MAGIC;
    h[MF_TOKH_VERSION] = MF_TOK_VERSION;
    h[MF_TOKH_HEADER_BYTES] = MF_TOK_HEADER_WORDS * 4;
    h[MF_TOKH_TOTAL_BYTES] = (uint32_t)off;
    h[MF_TOKH_N_VOCAB] = nv;

    uint8_t *o = xrealloc(NULL, off);
    memset(o, 0, off);
    for (uint32_t i = 0; i < MF_TOK_HEADER_WORDS; i++) put32(o + 4 * i, h[i]);
    for (int i = 0; i < 256; i++) put32(o + h[MF_TOKH_OFF_BYTE_IDS] + 4 * i, b->byte_ids[i]);
    size_t p = 0;
    for (uint32_t i = 0; i < nv; i++) {
        put32(o + h[MF_TOKH_OFF_TOK_OFF] + 4 * i, (uint32_t)p);
        if (b->toks[i].ndec) memcpy(o + h[MF_TOKH_OFF_TOK_BYTES] + p, b->toks[i].dec, b->toks[i].ndec);
        p += b->toks[i].ndec;
        o[h[MF_TOKH_OFF_TOK_FLAGS] + i] = b->toks[i].flags;
    }
    put32(o + h[MF_TOKH_OFF_TOK_OFF] + 4 * nv, (uint32_t)p);
    size_t m = 0;
    for (uint32_t l = 0; l <= nv; l++) {
        while (m < b->nm && b->merges[m].l < l) m++;
        put32(o + h[MF_TOKH_OFF_MERGE_INDEX] + 4 * l, (uint32_t)m);
    }
    for (size_t i = 0; i < b->nm; i++) {
        uint8_t *e = o + h[MF_TOKH_OFF_MERGES] + 16 * i;
        put32(e, b->merges[i].l);
        put32(e + 4, b->merges[i].r);
        put32(e + 8, b->merges[i].rank);
        put32(e + 12, b->merges[i].res);
    }
    for (size_t i = 0; i < nc; i++) {
        put32(o + h[MF_TOKH_OFF_CHARS] + 8 * i, chars[i].cp);
        put32(o + h[MF_TOKH_OFF_CHARS] + 8 * i + 4, chars[i].id);
    }
    p = 0;
    for (size_t i = 0; i < b->na; i++) {
        uint8_t *e = o + h[MF_TOKH_OFF_ADDED] + 16 * i;
        put32(e, (uint32_t)p);
        put32(e + 4, (uint32_t)b->added[i].n);
        put32(e + 8, b->added[i].id);
        put32(e + 12, b->added[i].flags);
        memcpy(o + h[MF_TOKH_OFF_ADDED_BYTES] + p, b->added[i].s, b->added[i].n);
        p += b->added[i].n;
    }
    if (sorted) {
        uint32_t *ids = xrealloc(NULL, nv * sizeof *ids);
        for (uint32_t i = 0; i < nv; i++) ids[i] = i;
        sort_ctx = b;
        qsort(ids, nv, sizeof *ids, cmp_vocab_dec);
        for (uint32_t i = 0; i < nv; i++) put32(o + h[MF_TOKH_OFF_SORTED_VOCAB] + 4 * i, ids[i]);
        free(ids);
    }
    free(chars);
    *out = o;
    *len = off;
    return 0;
}

/* ---- tokenizer.json ---------------------------------------------------- */

/* GPT-2's bytes_to_unicode: byte -> code point, and the inverse. */
static uint32_t bl_char[256];
static int bl_byte(uint32_t cp)
{
    for (int i = 0; i < 256; i++)
        if (bl_char[i] == cp) return i;
    return -1;
}
static void bl_init(void)
{
    uint32_t n = 0;
    for (int b = 0; b < 256; b++) {
        if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255))
            bl_char[b] = (uint32_t)b;
        else
            bl_char[b] = 256 + n++;
    }
}

/* Byte-level spelling -> bytes, as the ByteLevel decoder does: a token with
 * a character outside the table is kept as its UTF-8 bytes. */
static void bl_decode(tok *t)
{
    uint8_t *d = xrealloc(NULL, t->n + 1);
    size_t nd = 0;
    for (size_t i = 0; i < t->n;) {
        uint32_t cp;
        size_t l = utf8_one(t->s + i, t->n - i, &cp);
        int b = l ? bl_byte(cp) : -1;
        if (b < 0) {
            free(d);
            set_dec(t, t->s, t->n);
            return;
        }
        d[nd++] = (uint8_t)b;
        i += l;
    }
    set_dec(t, d, nd);
    free(d);
}

static const char *jtype(const mf_json *j)
{
    const char *s = NULL;
    if (j && j->type == MF_JSON_OBJECT) mf_json_get_string(j, "type", &s);
    return s ? s : "?";
}

static int jbool(const mf_json *o, const char *k, int def)
{
    int v;
    return mf_json_get_bool(o, k, &v) == 0 ? v : def;
}

static int jnull_or_absent(const mf_json *o, const char *k)
{
    const mf_json *v = mf_json_get(o, k);
    return !v || v->type == MF_JSON_NULL;
}

typedef struct {
    int bytelevel, bl_regex, split_kind, metaspace, ms_split, ms_scheme; /* scheme: 0 never 1 first 2 always */
    int prepend, replace_space, nfc;
    int dec_bytelevel, dec_replace, dec_bytefallback, dec_strip, dec_metaspace, dec_fuse;
} jconf;

static const char *QWEN2_RE =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char *LLAMA3_RE =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char *GPT2_RE = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

static int metaspace_conf(builder *b, const mf_json *p, int *scheme)
{
    const char *rep = NULL;
    if (mf_json_get_string(p, "replacement", &rep) || strcmp(rep, META) != 0)
        return errf(b, "unsupported Metaspace replacement (only U+2581)");
    const char *sch = NULL;
    if (mf_json_get_string(p, "prepend_scheme", &sch) == 0) {
        if (!strcmp(sch, "always"))
            *scheme = 2;
        else if (!strcmp(sch, "first"))
            *scheme = 1;
        else if (!strcmp(sch, "never"))
            *scheme = 0;
        else
            return errf(b, "unsupported Metaspace prepend_scheme \"%s\"", sch);
    } else {
        *scheme = jbool(p, "add_prefix_space", 1) ? 2 : 0;
    }
    return 0;
}

static int pretok_conf(builder *b, const mf_json *p, jconf *c)
{
    if (!p || p->type == MF_JSON_NULL) return 0;
    const char *ty = jtype(p);
    if (!strcmp(ty, "Sequence")) {
        const mf_json *l = mf_json_get(p, "pretokenizers");
        if (!l || l->type != MF_JSON_ARRAY) return errf(b, "pre_tokenizer Sequence without pretokenizers");
        for (const mf_json *x = l->child; x; x = x->next)
            if (pretok_conf(b, x, c)) return -1;
        return 0;
    }
    if (!strcmp(ty, "Split")) {
        const mf_json *pat = mf_json_get(p, "pattern");
        const char *re = NULL, *beh = NULL;
        if (!pat || mf_json_get_string(pat, "Regex", &re))
            return errf(b, "unsupported pre_tokenizer Split pattern (only a known Regex)");
        if (mf_json_get_string(p, "behavior", &beh) || strcmp(beh, "Isolated"))
            return errf(b, "unsupported pre_tokenizer Split behavior \"%s\"", beh ? beh : "?");
        if (jbool(p, "invert", 0)) return errf(b, "unsupported pre_tokenizer Split invert=true");
        if (c->split_kind) return errf(b, "unsupported: two Split pre_tokenizers");
        if (!strcmp(re, QWEN2_RE))
            c->split_kind = MF_TOKPRE_QWEN2;
        else if (!strcmp(re, LLAMA3_RE))
            c->split_kind = MF_TOKPRE_LLAMA3;
        else if (!strcmp(re, GPT2_RE))
            c->split_kind = MF_TOKPRE_GPT2;
        else
            return errf(b, "unsupported pre_tokenizer Split regex %.120s", re);
        return 0;
    }
    if (!strcmp(ty, "ByteLevel")) {
        if (jbool(p, "add_prefix_space", 0)) return errf(b, "unsupported pre_tokenizer ByteLevel add_prefix_space=true");
        c->bytelevel = 1;
        c->bl_regex = jbool(p, "use_regex", 1);
        return 0;
    }
    if (!strcmp(ty, "Metaspace")) {
        c->metaspace = 1;
        c->ms_split = jbool(p, "split", 1);
        return metaspace_conf(b, p, &c->ms_scheme);
    }
    return errf(b, "unsupported pre_tokenizer %s", ty);
}

static int norm_conf(builder *b, const mf_json *p, jconf *c)
{
    if (!p || p->type == MF_JSON_NULL) return 0;
    const char *ty = jtype(p);
    if (!strcmp(ty, "Sequence")) {
        const mf_json *l = mf_json_get(p, "normalizers");
        if (!l || l->type != MF_JSON_ARRAY) return errf(b, "normalizer Sequence without normalizers");
        for (const mf_json *x = l->child; x; x = x->next)
            if (norm_conf(b, x, c)) return -1;
        return 0;
    }
    if (!strcmp(ty, "Prepend")) {
        const char *s = NULL;
        if (mf_json_get_string(p, "prepend", &s) || strcmp(s, META))
            return errf(b, "unsupported normalizer Prepend (only U+2581)");
        if (c->replace_space) return errf(b, "unsupported normalizer order: Replace before Prepend");
        c->prepend = 1;
        return 0;
    }
    if (!strcmp(ty, "Replace")) {
        const mf_json *pat = mf_json_get(p, "pattern");
        const char *from = NULL, *to = NULL;
        if (!pat || mf_json_get_string(pat, "String", &from) || strcmp(from, " ") ||
            mf_json_get_string(p, "content", &to) || strcmp(to, META))
            return errf(b, "unsupported normalizer Replace (only \" \" -> U+2581)");
        c->replace_space = 1;
        return 0;
    }
    if (!strcmp(ty, "NFC")) {
        c->nfc = 1;
        return 0;
    }
    return errf(b, "unsupported normalizer %s", ty);
}

static int dec_conf(builder *b, const mf_json *p, jconf *c)
{
    if (!p || p->type == MF_JSON_NULL) return 0;
    const char *ty = jtype(p);
    if (!strcmp(ty, "Sequence")) {
        const mf_json *l = mf_json_get(p, "decoders");
        if (!l || l->type != MF_JSON_ARRAY) return errf(b, "decoder Sequence without decoders");
        for (const mf_json *x = l->child; x; x = x->next)
            if (dec_conf(b, x, c)) return -1;
        return 0;
    }
    if (!strcmp(ty, "ByteLevel")) {
        c->dec_bytelevel = 1;
        return 0;
    }
    if (!strcmp(ty, "ByteFallback")) {
        c->dec_bytefallback = 1;
        return 0;
    }
    if (!strcmp(ty, "Fuse")) {
        c->dec_fuse = 1;
        return 0;
    }
    if (!strcmp(ty, "Replace")) {
        const mf_json *pat = mf_json_get(p, "pattern");
        const char *from = NULL, *to = NULL;
        if (!pat || mf_json_get_string(pat, "String", &from) || strcmp(from, META) ||
            mf_json_get_string(p, "content", &to) || strcmp(to, " "))
            return errf(b, "unsupported decoder Replace (only U+2581 -> \" \")");
        c->dec_replace = 1;
        return 0;
    }
    if (!strcmp(ty, "Strip")) {
        const char *s = NULL;
        double start = 0, stop = 0;
        if (mf_json_get_string(p, "content", &s) || strcmp(s, " ") || mf_json_get_number(p, "start", &start) ||
            mf_json_get_number(p, "stop", &stop) || start > 1 || stop != 0)
            return errf(b, "unsupported decoder Strip (only content \" \", start <= 1, stop 0)");
        if (start && !c->dec_fuse) return errf(b, "unsupported decoder Strip without Fuse before it");
        c->dec_strip = (int)start;
        return 0;
    }
    if (!strcmp(ty, "Metaspace")) {
        int scheme;
        if (metaspace_conf(b, p, &scheme)) return -1;
        c->dec_metaspace = 1;
        c->dec_replace = 1;
        if (scheme) c->dec_strip = 1;
        return 0;
    }
    return errf(b, "unsupported decoder %s", ty);
}

/* "<0xAB>" -> 0xAB, else -1. */
static int byte_piece(const char *s, size_t n)
{
    if (n != 6 || s[0] != '<' || s[1] != '0' || s[2] != 'x' || s[5] != '>') return -1;
    int v = 0;
    for (int i = 3; i < 5; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0) return -1;
        v = v * 16 + d;
    }
    return v;
}

/* The special token a TemplateProcessing post-processor puts first, if any. */
static uint32_t post_bos(builder *b, const mf_json *p)
{
    if (!p || p->type != MF_JSON_OBJECT) return MF_TOK_NONE;
    const char *ty = jtype(p);
    if (!strcmp(ty, "Sequence")) {
        const mf_json *l = mf_json_get(p, "processors");
        for (const mf_json *x = l ? l->child : NULL; x; x = x->next) {
            uint32_t id = post_bos(b, x);
            if (id != MF_TOK_NONE) return id;
        }
        return MF_TOK_NONE;
    }
    if (strcmp(ty, "TemplateProcessing")) return MF_TOK_NONE;
    const mf_json *single = mf_json_get(p, "single");
    const mf_json *first = single ? mf_json_at(single, 0) : NULL;
    const mf_json *st = first ? mf_json_get(first, "SpecialToken") : NULL;
    const char *name = NULL;
    if (!st || mf_json_get_string(st, "id", &name)) return MF_TOK_NONE;
    const mf_json *sp = mf_json_get(p, "special_tokens");
    const mf_json *ent = sp ? mf_json_get(sp, name) : NULL;
    const mf_json *ids = ent ? mf_json_get(ent, "ids") : NULL;
    const mf_json *id0 = ids ? mf_json_at(ids, 0) : NULL;
    if (!id0 || id0->type != MF_JSON_NUMBER || id0->number < 0 || id0->number >= b->nv) return MF_TOK_NONE;
    return (uint32_t)id0->number;
}

/* Parses the JSON file at path, or (mem != NULL) mem[0..mem_len) named path
 * in messages, into doc (mf_json_free it); -1 with a message. */
static int load_json(builder *b, const char *path, const char *mem, size_t mem_len, mf_json_doc *doc)
{
    if (mem) return mf_json_parse(doc, mem, mem_len) ? errf(b, "%s: %s", path, doc->error) : 0;
    size_t flen;
    char *text = mf_read_file(path, &flen);
    if (!text) return errf(b, "%s: cannot read", path);
    int bad = mf_json_parse(doc, text, flen) != 0;
    free(text);
    return bad ? errf(b, "%s: %s", path, doc->error) : 0;
}

/* ---- added tokens with "normalized": true ------------------------------
 * tokenizers cuts the normalized: false tokens out of the raw text, then
 * normalizes each piece and cuts the normalized: true tokens out of the
 * normalized piece, matching their normalized content. The runtime cuts
 * every added token out of the raw text (leftmost-longest) and normalizes
 * the pieces between: the same ids whenever normalizing neither changes a
 * token nor reaches across its ends, and no normalized token can take the
 * place of a non-normalized one. These say when that holds. */

static size_t utf8_put(uint32_t c, uint8_t *o)
{
    if (c < 0x80) return o[0] = (uint8_t)c, 1;
    if (c < 0x800) return o[0] = (uint8_t)(0xC0 | c >> 6), o[1] = (uint8_t)(0x80 | (c & 0x3F)), 2;
    if (c < 0x10000) {
        o[0] = (uint8_t)(0xE0 | c >> 12);
        o[1] = (uint8_t)(0x80 | (c >> 6 & 0x3F));
        o[2] = (uint8_t)(0x80 | (c & 0x3F));
        return 3;
    }
    o[0] = (uint8_t)(0xF0 | c >> 18);
    o[1] = (uint8_t)(0x80 | (c >> 12 & 0x3F));
    o[2] = (uint8_t)(0x80 | (c >> 6 & 0x3F));
    o[3] = (uint8_t)(0x80 | (c & 0x3F));
    return 4;
}

/* 1 when NFC leaves the token alone wherever it stands: it is NFC, nothing
 * before it composes with its first character, and no character after it
 * composes with (or reorders before) its last one. */
static int nfc_closed(const char *s, size_t n, uint32_t *memo_cp, int *memo_ok)
{
    const uint8_t *u = (const uint8_t *)s;
    uint8_t *out = xrealloc(NULL, 3 * n + 8);
    int ok = mf_unicode_nfc(u, n, out, 3 * n + 8) == n && !memcmp(out, u, n);
    free(out);
    uint32_t fc, lc = 0;
    if (!ok || !utf8_one(s, n, &fc) || !mf_unicode_nfc_boundary(fc)) return 0;
    for (size_t i = 0, l; i < n; i += l)
        if (!(l = utf8_one(s + i, n - i, &lc))) return 0;
    /* NFC(last c) must be last NFC(c) for every c that is not a boundary
     * (some, as U+0340, are not NFC themselves). */
    if (lc == *memo_cp) return *memo_ok; /* OLMoE has 25 runs of spaces */
    *memo_cp = lc;
    *memo_ok = 0;
    uint8_t pair[8], norm[32], alone[32];
    size_t a = utf8_put(lc, pair);
    memcpy(alone, pair, a);
    static uint32_t marks[4096]; /* the code points that are not boundaries (2,110) */
    static size_t n_marks;
    if (!n_marks)
        for (uint32_t c = 0; c <= 0x10FFFF && n_marks < sizeof marks / sizeof marks[0]; c++)
            if (!(c >= 0xD800 && c <= 0xDFFF) && !mf_unicode_nfc_boundary(c)) marks[n_marks++] = c;
    if (n_marks == sizeof marks / sizeof marks[0]) return 0; /* more than the tables have: refuse, not guess */
    for (size_t i = 0; i < n_marks; i++) {
        uint32_t c = marks[i];
        size_t m = a + utf8_put(c, pair + a);
        size_t k = a + mf_unicode_nfc(pair + a, m - a, alone + a, sizeof alone - a);
        if (mf_unicode_nfc(pair, m, norm, sizeof norm) != k || memcmp(norm, alone, k)) return 0;
    }
    return *memo_ok = 1;
}

/* 1 when a normalized token N could win, in the runtime's leftmost-longest
 * cut, where tokenizers cuts the non-normalized M first: N contains M, or
 * ends with a proper prefix of M. */
static int steals(const char *nt, size_t nn, const char *mt, size_t mn)
{
    for (size_t i = 0; i + mn <= nn; i++)
        if (!memcmp(nt + i, mt, mn)) return 1;
    for (size_t k = 1; k < mn && k < nn; k++)
        if (!memcmp(nt + nn - k, mt, k)) return 1;
    return 0;
}

/* The added tokens with "normalized": true that the runtime would cut
 * where tokenizers does not: -1 with a message naming the first. */
static int check_normalized(builder *b, const jconf *c)
{
    uint32_t memo_cp = UINT32_MAX;
    int memo_ok = 0;
    for (size_t i = 0; i < b->na; i++) {
        const added *n = &b->added[i];
        const char *ns = (const char *)n->s;
        int nl = n->n < 40 ? (int)n->n : 40;
        if (!n->normalized) continue;
        if (c->prepend || c->replace_space)
            return errf(b, "unsupported added token \"%.*s\" with \"normalized\": true under the Prepend/Replace "
                           "normalizer (transformers matches it in the normalized text)",
                        nl, ns);
        if (c->nfc && !nfc_closed(ns, n->n, &memo_cp, &memo_ok))
            return errf(b, "unsupported added token \"%.*s\" with \"normalized\": true under NFC: NFC changes it "
                           "or can join it to the text beside it",
                        nl, ns);
        for (size_t j = 0; j < b->na; j++) {
            const added *m = &b->added[j];
            if (!m->normalized && steals(ns, n->n, (const char *)m->s, m->n))
                return errf(b, "unsupported added tokens \"%.*s\" (\"normalized\": true) and \"%.*s\" (false): "
                               "they overlap, and transformers cuts the second out first",
                            nl, ns, m->n < 40 ? (int)m->n : 40, (const char *)m->s);
        }
    }
    return 0;
}

static int read_json(builder *b, const char *path, const char *mem, size_t mem_len)
{
    mf_json_doc doc;
    if (load_json(b, path, mem, mem_len, &doc)) return -1;
    int rc = -1;
    const mf_json *root = doc.root, *model = mf_json_get(root, "model");
    jconf c;
    memset(&c, 0, sizeof c);
    bl_init();
    if (!root || root->type != MF_JSON_OBJECT || !model) {
        errf(b, "%s: no \"model\"", path);
        goto done;
    }
    const char *mt = jtype(model);
    if (strcmp(mt, "BPE")) {
        errf(b, "unsupported tokenizer model type %s", mt);
        goto done;
    }
    double dropout = 0;
    if (!jnull_or_absent(model, "dropout") && (mf_json_get_number(model, "dropout", &dropout) || dropout != 0)) {
        errf(b, "unsupported BPE dropout");
        goto done;
    }
    const char *s = NULL;
    if ((mf_json_get_string(model, "continuing_subword_prefix", &s) == 0 && s[0]) ||
        (mf_json_get_string(model, "end_of_word_suffix", &s) == 0 && s[0])) {
        errf(b, "unsupported BPE continuing_subword_prefix/end_of_word_suffix");
        goto done;
    }
    if (norm_conf(b, mf_json_get(root, "normalizer"), &c) || pretok_conf(b, mf_json_get(root, "pre_tokenizer"), &c) ||
        dec_conf(b, mf_json_get(root, "decoder"), &c))
        goto done;
    uint32_t *h = b->hdr, flags = 0;
    int byte_fallback = jbool(model, "byte_fallback", 0);
    if (byte_fallback) flags |= MF_TOKF_BYTE_FALLBACK;
    if (jbool(model, "fuse_unk", 0)) flags |= MF_TOKF_FUSE_UNK;
    if (jbool(model, "ignore_merges", 0)) flags |= MF_TOKF_IGNORE_MERGES;
    if (c.bytelevel) {
        if (c.nfc) flags |= MF_TOKF_NFC;
        if (c.metaspace || c.prepend || c.replace_space) {
            errf(b, "unsupported: ByteLevel together with Metaspace/Prepend/Replace");
            goto done;
        }
        if (c.split_kind && c.bl_regex) {
            errf(b, "unsupported: Split followed by ByteLevel(use_regex=true)");
            goto done;
        }
        if (!c.dec_bytelevel) {
            errf(b, "unsupported: ByteLevel pre-tokenizer without the ByteLevel decoder");
            goto done;
        }
        h[MF_TOKH_MODE] = MF_TOKMODE_BYTE;
        h[MF_TOKH_PRETOK] = c.split_kind ? (uint32_t)c.split_kind : c.bl_regex ? MF_TOKPRE_GPT2 : MF_TOKPRE_NONE;
    } else {
        if (c.nfc) {
            errf(b, "unsupported normalizer NFC without the ByteLevel pre-tokenizer");
            goto done;
        }
        if (c.split_kind) {
            errf(b, "unsupported: Split pre-tokenizer without ByteLevel");
            goto done;
        }
        if (c.dec_bytelevel) {
            errf(b, "unsupported: ByteLevel decoder without the ByteLevel pre-tokenizer");
            goto done;
        }
        h[MF_TOKH_MODE] = MF_TOKMODE_CHAR;
        if (c.replace_space || c.metaspace) flags |= MF_TOKF_SPACE_TO_META;
        if (c.prepend) {
            h[MF_TOKH_PREFIX] = MF_TOKPFX_SEGMENT;
        } else if (c.metaspace && c.ms_scheme) {
            h[MF_TOKH_PREFIX] = c.ms_scheme == 2 ? MF_TOKPFX_SEGMENT : MF_TOKPFX_FIRST;
            flags |= MF_TOKF_PREFIX_IF_NO_SPACE;
        }
        if (c.metaspace && c.ms_split) flags |= MF_TOKF_SPLIT_META_EACH;
        h[MF_TOKH_STRIP] = (uint32_t)c.dec_strip;
        if (flags & MF_TOKF_IGNORE_MERGES) {
            errf(b, "unsupported: ignore_merges without ByteLevel");
            goto done;
        }
    }
    /* vocabulary */
    const mf_json *vocab = mf_json_get(model, "vocab");
    if (!vocab || vocab->type != MF_JSON_OBJECT) {
        errf(b, "%s: model.vocab is not an object", path);
        goto done;
    }
    /* Ids are dense over vocab and added_tokens together: one far beyond
     * their count is a corrupt file, not a reason to allocate gigabytes. */
    double max_ids = 0;
    for (const mf_json *v = vocab->child; v; v = v->next) max_ids++;
    const mf_json *added = mf_json_get(root, "added_tokens");
    if (added && added->type == MF_JSON_ARRAY)
        for (const mf_json *a = added->child; a; a = a->next) max_ids++;
    for (const mf_json *v = vocab->child; v; v = v->next) {
        if (v->type != MF_JSON_NUMBER || v->number < 0 || v->number >= 0x7FFFFFFF || v->number != (uint32_t)v->number) {
            errf(b, "%s: bad id for vocab entry \"%.40s\"", path, v->key);
            goto done;
        }
        if (v->number >= max_ids) {
            errf(b, "%s: id %.0f of vocab entry \"%.40s\" is beyond the %.0f entries of vocab and added_tokens",
                 path, v->number, v->key, max_ids);
            goto done;
        }
        uint32_t id = (uint32_t)v->number;
        if (b->toks && id < b->nv && b->toks[id].present) {
            errf(b, "%s: id %u given twice in vocab", path, id);
            goto done;
        }
        if (set_tok(b, id, v->key, v->key_len)) goto done;
        b->toks[id].mergeable = 1;
    }
    build_index(b, 0);
    for (int i = 0; i < 256; i++) b->byte_ids[i] = MF_TOK_NONE;
    h[MF_TOKH_UNK] = MF_TOK_NONE;
    const char *unk = NULL;
    if (mf_json_get_string(model, "unk_token", &unk) == 0) {
        h[MF_TOKH_UNK] = lookup(b, unk, strlen(unk));
        if (h[MF_TOKH_UNK] == MF_TOK_NONE) {
            errf(b, "%s: unk_token \"%s\" not in vocab", path, unk);
            goto done;
        }
    }
    for (uint32_t i = 0; i < b->nv; i++) {
        tok *t = &b->toks[i];
        if (!t->present) continue;
        if (h[MF_TOKH_MODE] == MF_TOKMODE_BYTE) {
            bl_decode(t);
            uint32_t cp;
            if (utf8_one(t->s, t->n, &cp) == t->n) {
                int by = bl_byte(cp);
                if (by >= 0 && b->byte_ids[by] == MF_TOK_NONE) b->byte_ids[by] = i;
            }
        } else {
            int by = byte_piece(t->s, t->n);
            if (by >= 0 && byte_fallback) {
                b->byte_ids[by] = i;
                t->flags |= MF_TOKT_BYTE;
            }
            if (by >= 0 && c.dec_bytefallback) {
                uint8_t x = (uint8_t)by;
                set_dec(t, &x, 1);
            } else if (c.dec_replace) {
                char *d = xrealloc(NULL, t->n + 1);
                size_t nd = 0;
                for (size_t k = 0; k < t->n;) {
                    if (k + 3 <= t->n && !memcmp(t->s + k, META, 3)) {
                        d[nd++] = ' ';
                        k += 3;
                    } else {
                        d[nd++] = t->s[k++];
                    }
                }
                set_dec(t, d, nd);
                free(d);
            } else {
                set_dec(t, t->s, t->n);
            }
        }
    }
    if (h[MF_TOKH_UNK] != MF_TOK_NONE) b->toks[h[MF_TOKH_UNK]].flags |= MF_TOKT_UNKNOWN;
    /* merges */
    const mf_json *merges = mf_json_get(model, "merges");
    if (!merges || merges->type != MF_JSON_ARRAY) {
        errf(b, "%s: model.merges is not an array", path);
        goto done;
    }
    uint32_t rank = 0;
    int inner_meta = 0;
    for (const mf_json *m = merges->child; m; m = m->next, rank++) {
        const char *a, *bb;
        size_t an, bn;
        if (m->type == MF_JSON_STRING) {
            const char *sp = memchr(m->str, ' ', m->str_len);
            if (!sp || memchr(sp + 1, ' ', m->str_len - (size_t)(sp + 1 - m->str))) {
                errf(b, "%s: merge %u \"%.40s\" is not \"a b\"", path, rank, m->str);
                goto done;
            }
            a = m->str;
            an = (size_t)(sp - m->str);
            bb = sp + 1;
            bn = m->str_len - an - 1;
        } else if (m->type == MF_JSON_ARRAY && m->count == 2 && m->child->type == MF_JSON_STRING &&
                   m->child->next->type == MF_JSON_STRING) {
            a = m->child->str;
            an = m->child->str_len;
            bb = m->child->next->str;
            bn = m->child->next->str_len;
        } else {
            errf(b, "%s: merge %u is neither \"a b\" nor [a, b]", path, rank);
            goto done;
        }
        uint32_t l = lookup(b, a, an), r = lookup(b, bb, bn);
        char *cat = xrealloc(NULL, an + bn + 1);
        memcpy(cat, a, an);
        memcpy(cat + an, bb, bn);
        uint32_t res = lookup(b, cat, an + bn);
        if (h[MF_TOKH_MODE] == MF_TOKMODE_CHAR && has_inner_meta(cat, an + bn)) inner_meta = 1;
        free(cat);
        if (l == MF_TOK_NONE || r == MF_TOK_NONE || res == MF_TOK_NONE) {
            errf(b, "%s: merge %u \"%.30s\" + \"%.30s\": %s not in vocab", path, rank, a, bb,
                 res == MF_TOK_NONE && l != MF_TOK_NONE && r != MF_TOK_NONE ? "the result" : "a part");
            goto done;
        }
        add_merge(b, l, r, rank, res);
    }
    if (h[MF_TOKH_MODE] == MF_TOKMODE_CHAR && !(flags & MF_TOKF_SPLIT_META_EACH) && !inner_meta &&
        (flags & MF_TOKF_SPACE_TO_META))
        flags |= MF_TOKF_SPLIT_META;
    /* added tokens */
    const mf_json *at = mf_json_get(root, "added_tokens");
    if (at && at->type == MF_JSON_ARRAY) {
        for (const mf_json *a = at->child; a; a = a->next) {
            double idd;
            const mf_json *content = mf_json_get(a, "content");
            if (mf_json_get_number(a, "id", &idd) || idd < 0 || idd >= max_ids || !content ||
                content->type != MF_JSON_STRING || content->str_len == 0) {
                errf(b, "%s: bad added token", path);
                goto done;
            }
            if (jbool(a, "single_word", 0)) {
                errf(b, "unsupported added token single_word=true (\"%.40s\")", content->str);
                goto done;
            }
            uint32_t id = (uint32_t)idd, fl = MF_TOKT_ADDED;
            if (jbool(a, "special", 0)) fl |= MF_TOKT_SPECIAL;
            if (jbool(a, "lstrip", 0)) fl |= MF_TOKT_LSTRIP;
            if (jbool(a, "rstrip", 0)) fl |= MF_TOKT_RSTRIP;
            tok *t = tok_at(b, id);
            if (!t->present || t->n != content->str_len || memcmp(t->s, content->str, t->n)) {
                if (set_tok(b, id, content->str, content->str_len)) goto done;
                t = &b->toks[id];
                if (h[MF_TOKH_MODE] == MF_TOKMODE_BYTE)
                    bl_decode(t);
                else
                    set_dec(t, t->s, t->n);
            }
            t->flags |= (uint8_t)(fl & (MF_TOKT_SPECIAL | MF_TOKT_ADDED));
            add_added(b, content->str, content->str_len, id, fl, jbool(a, "normalized", !(fl & MF_TOKT_SPECIAL)));
        }
        if (check_normalized(b, &c)) goto done;
    }
    h[MF_TOKH_FLAGS] = flags;
    h[MF_TOKH_BOS] = post_bos(b, mf_json_get(root, "post_processor"));
    rc = 0;
done:
    mf_json_free(&doc);
    return rc;
}

/* ---- tokenizer.model (SentencePiece ModelProto) ------------------------ */

typedef struct {
    const uint8_t *p, *end;
} pb;

static int pb_varint(pb *x, uint64_t *v)
{
    uint64_t r = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (x->p >= x->end) return -1;
        uint8_t c = *x->p++;
        r |= (uint64_t)(c & 0x7F) << shift;
        if (!(c & 0x80)) {
            *v = r;
            return 0;
        }
    }
    return -1;
}

/* Next field: *field, *wt; for wire type 2 sets *sub to the bytes, for 0 *v,
 * for 5 *v = the 32 bits. Returns 1 at the end, -1 when malformed. */
static int pb_next(pb *x, uint32_t *field, int *wt, uint64_t *v, pb *sub)
{
    if (x->p >= x->end) return 1;
    uint64_t key;
    if (pb_varint(x, &key)) return -1;
    *field = (uint32_t)(key >> 3);
    *wt = (int)(key & 7);
    switch (*wt) {
    case 0:
        return pb_varint(x, v) ? -1 : 0;
    case 1:
        if (x->end - x->p < 8) return -1;
        x->p += 8;
        return 0;
    case 2: {
        uint64_t n;
        if (pb_varint(x, &n) || n > (uint64_t)(x->end - x->p)) return -1;
        sub->p = x->p;
        sub->end = x->p + n;
        x->p += n;
        return 0;
    }
    case 5:
        if (x->end - x->p < 4) return -1;
        *v = (uint64_t)x->p[0] | (uint64_t)x->p[1] << 8 | (uint64_t)x->p[2] << 16 | (uint64_t)x->p[3] << 24;
        x->p += 4;
        return 0;
    default:
        return -1;
    }
}

enum { SP_NORMAL = 1, SP_UNKNOWN = 2, SP_CONTROL = 3, SP_USER_DEFINED = 4, SP_UNUSED = 5, SP_BYTE = 6 };

typedef struct {
    float score;
    uint32_t id;
} scored;

static int cmp_scored(const void *a, const void *b)
{
    const scored *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

static int read_spm(builder *b, const char *path, const uint8_t *mem, size_t mem_len)
{
    size_t flen = mem_len;
    char *file = mem ? NULL : mf_read_file(path, &flen);
    if (!mem && !file) return errf(b, "%s: cannot read", path);
    if (mem) file = (char *)(uintptr_t)mem; /* read only; not freed below */
    int rc = -1;
    pb top = {(const uint8_t *)file, (const uint8_t *)file + flen}, sub;
    uint32_t field, npieces = 0;
    int wt, r;
    uint64_t v;
    /* TrainerSpec / NormalizerSpec with their defaults */
    uint64_t model_type = 1, byte_fallback = 0, ws_suffix = 0, bos_id = 1;
    uint64_t dummy_prefix = 1, extra_ws = 1, escape_ws = 1;
    char norm_name[64] = "";
    int have_charsmap = 0;
    const char *unk_surface = " \xE2\x81\x87 ";
    size_t unk_surface_n = strlen(unk_surface);
    float *scores = NULL;
    int *types = NULL;
    size_t cap = 0;
    while ((r = pb_next(&top, &field, &wt, &v, &sub)) == 0) {
        if (field == 1 && wt == 2) { /* SentencePiece */
            const char *piece = NULL;
            size_t pn = 0;
            float score = 0;
            int type = SP_NORMAL;
            pb q = sub, s2;
            uint32_t f2;
            int w2, r2;
            uint64_t v2;
            while ((r2 = pb_next(&q, &f2, &w2, &v2, &s2)) == 0) {
                if (f2 == 1 && w2 == 2) {
                    piece = (const char *)s2.p;
                    pn = (size_t)(s2.end - s2.p);
                } else if (f2 == 2 && w2 == 5) {
                    uint32_t u = (uint32_t)v2;
                    memcpy(&score, &u, 4);
                } else if (f2 == 3 && w2 == 0) {
                    type = (int)v2;
                }
            }
            if (r2 < 0 || !piece) {
                errf(b, "%s: malformed piece %u", path, npieces);
                goto done;
            }
            if (set_tok(b, npieces, piece, pn)) goto done;
            if (npieces >= cap) {
                cap = cap ? 2 * cap : 1024;
                scores = xrealloc(scores, cap * sizeof *scores);
                types = xrealloc(types, cap * sizeof *types);
            }
            scores[npieces] = score;
            types[npieces] = type;
            npieces++;
        } else if (field == 2 && wt == 2) { /* TrainerSpec */
            pb q = sub, s2;
            uint32_t f2;
            int w2, r2;
            uint64_t v2;
            while ((r2 = pb_next(&q, &f2, &w2, &v2, &s2)) == 0) {
                if (f2 == 3 && w2 == 0) model_type = v2;
                if (f2 == 35 && w2 == 0) byte_fallback = v2;
                if (f2 == 24 && w2 == 0) ws_suffix = v2;
                if (f2 == 41 && w2 == 0) bos_id = v2;
                if (f2 == 44 && w2 == 2) {
                    unk_surface = (const char *)s2.p;
                    unk_surface_n = (size_t)(s2.end - s2.p);
                }
            }
            if (r2 < 0) {
                errf(b, "%s: malformed trainer_spec", path);
                goto done;
            }
        } else if (field == 3 && wt == 2) { /* NormalizerSpec */
            pb q = sub, s2;
            uint32_t f2;
            int w2, r2;
            uint64_t v2;
            while ((r2 = pb_next(&q, &f2, &w2, &v2, &s2)) == 0) {
                if (f2 == 1 && w2 == 2) {
                    size_t n = (size_t)(s2.end - s2.p);
                    if (n >= sizeof norm_name) n = sizeof norm_name - 1;
                    memcpy(norm_name, s2.p, n);
                    norm_name[n] = 0;
                }
                if (f2 == 2 && w2 == 2 && s2.end > s2.p) have_charsmap = 1;
                if (f2 == 3 && w2 == 0) dummy_prefix = v2;
                if (f2 == 4 && w2 == 0) extra_ws = v2;
                if (f2 == 5 && w2 == 0) escape_ws = v2;
            }
            if (r2 < 0) {
                errf(b, "%s: malformed normalizer_spec", path);
                goto done;
            }
        }
    }
    if (r < 0) {
        errf(b, "%s: not a SentencePiece model (malformed protobuf)", path);
        goto done;
    }
    if (npieces == 0) {
        errf(b, "%s: no pieces", path);
        goto done;
    }
    static const char *const mtypes[] = {"?", "UNIGRAM", "BPE", "WORD", "CHAR"};
    if (model_type != 2) {
        errf(b, "unsupported SentencePiece model type %s", model_type <= 4 ? mtypes[model_type] : "?");
        goto done;
    }
    if (have_charsmap || (norm_name[0] && strcmp(norm_name, "identity"))) {
        errf(b, "unsupported SentencePiece normalizer %s", norm_name[0] ? norm_name : "(precompiled charsmap)");
        goto done;
    }
    if (extra_ws) {
        errf(b, "unsupported SentencePiece normalizer option remove_extra_whitespaces");
        goto done;
    }
    if (ws_suffix) {
        errf(b, "unsupported SentencePiece option treat_whitespace_as_suffix");
        goto done;
    }
    uint32_t *h = b->hdr, flags = 0;
    h[MF_TOKH_MODE] = MF_TOKMODE_CHAR;
    h[MF_TOKH_UNK] = MF_TOK_NONE;
    if (escape_ws) flags |= MF_TOKF_SPACE_TO_META;
    if (byte_fallback) flags |= MF_TOKF_BYTE_FALLBACK;
    h[MF_TOKH_PREFIX] = dummy_prefix ? MF_TOKPFX_TEXT : MF_TOKPFX_NONE;
    h[MF_TOKH_STRIP] = dummy_prefix ? 1 : 0;
    for (int i = 0; i < 256; i++) b->byte_ids[i] = MF_TOK_NONE;
    for (uint32_t i = 0; i < npieces; i++) {
        tok *t = &b->toks[i];
        switch (types[i]) {
        case SP_NORMAL:
        case SP_USER_DEFINED: {
            t->mergeable = 1;
            char *d = xrealloc(NULL, t->n + 1);
            size_t nd = 0;
            for (size_t k = 0; k < t->n;) {
                if (k + 3 <= t->n && !memcmp(t->s + k, META, 3)) {
                    d[nd++] = ' ';
                    k += 3;
                } else {
                    d[nd++] = t->s[k++];
                }
            }
            set_dec(t, d, nd);
            if (types[i] == SP_USER_DEFINED) {
                /* matched in the raw text before anything else */
                add_added(b, escape_ws ? d : t->s, escape_ws ? nd : t->n, i, MF_TOKT_ADDED, 0);
                t->flags |= MF_TOKT_ADDED;
            }
            free(d);
            break;
        }
        case SP_UNKNOWN:
            if (h[MF_TOKH_UNK] == MF_TOK_NONE) h[MF_TOKH_UNK] = i;
            t->flags |= MF_TOKT_UNKNOWN;
            set_dec(t, unk_surface, unk_surface_n);
            break;
        case SP_CONTROL:
            t->flags |= MF_TOKT_CONTROL;
            break;
        case SP_BYTE: {
            int by = byte_piece(t->s, t->n);
            if (by < 0) {
                errf(b, "%s: byte piece %u \"%.20s\" is not <0xXX>", path, i, t->s);
                goto done;
            }
            if (!byte_fallback) {
                errf(b, "%s: byte piece without byte_fallback", path);
                goto done;
            }
            b->byte_ids[by] = i;
            t->flags |= MF_TOKT_BYTE;
            uint8_t x = (uint8_t)by;
            set_dec(t, &x, 1);
            break;
        }
        case SP_UNUSED:
            errf(b, "unsupported SentencePiece piece type UNUSED (piece %u)", i);
            goto done;
        default:
            errf(b, "%s: unknown piece type %d (piece %u)", path, types[i], i);
            goto done;
        }
    }
    if (h[MF_TOKH_UNK] == MF_TOK_NONE) {
        errf(b, "%s: no unknown piece", path);
        goto done;
    }
    /* Merge ranks from scores: higher score first, equal scores equal rank
     * (sentencepiece then takes the leftmost). Every split of a mergeable
     * piece into two mergeable pieces is a merge. */
    build_index(b, 1);
    scored *sc = xrealloc(NULL, npieces * sizeof *sc);
    uint32_t *rank = xrealloc(NULL, npieces * sizeof *rank);
    for (uint32_t i = 0; i < npieces; i++) sc[i] = (scored){scores[i], i};
    qsort(sc, npieces, sizeof *sc, cmp_scored);
    uint32_t rk = 0;
    for (uint32_t i = 0; i < npieces; i++) {
        if (i > 0 && sc[i].score != sc[i - 1].score) rk++;
        rank[sc[i].id] = rk;
    }
    free(sc);
    int inner_meta = 0;
    for (uint32_t i = 0; i < npieces; i++) {
        tok *t = &b->toks[i];
        if (!t->mergeable) continue;
        if (has_inner_meta(t->s, t->n)) inner_meta = 1;
        for (size_t k = 1; k < t->n; k++) {
            if (((uint8_t)t->s[k] & 0xC0) == 0x80) continue;
            uint32_t l = lookup(b, t->s, k), rr = lookup(b, t->s + k, t->n - k);
            if (l != MF_TOK_NONE && rr != MF_TOK_NONE) add_merge(b, l, rr, rank[i], i);
        }
    }
    free(rank);
    if (!inner_meta && escape_ws) flags |= MF_TOKF_SPLIT_META;
    h[MF_TOKH_FLAGS] = flags;
    /* transformers' Llama tokenizer puts <s> first (add_bos_token) */
    h[MF_TOKH_BOS] = bos_id < npieces && types[bos_id] == SP_CONTROL ? (uint32_t)bos_id : MF_TOK_NONE;
    rc = 0;
done:
    free(scores);
    free(types);
    if (!mem) free(file);
    return rc;
}

/* ---- Entry point ------------------------------------------------------- */

/* eos_token_id as JSON (a number or a list of numbers) into the header. */
static int set_eos_json(builder *b, const char *path, const mf_json *e)
{
    size_t n = e->type == MF_JSON_ARRAY ? e->count : 1;
    if (n > MF_TOK_MAX_EOS)
        return errf(b, "%s: eos_token_id has %zu ids; an image holds at most %u", path, n,
                    MF_TOK_MAX_EOS);
    for (size_t i = 0; i < n; i++) {
        const mf_json *v = e->type == MF_JSON_ARRAY ? mf_json_at(e, i) : e;
        if (!v || v->type != MF_JSON_NUMBER || v->number < 0 || v->number >= b->nv ||
            v->number != (double)(uint32_t)v->number)
            return errf(b, "%s: eos_token_id: expected token ids below the vocabulary size %u", path,
                        b->nv);
        b->hdr[MF_TOKH_EOS + i] = (uint32_t)v->number;
    }
    b->hdr[MF_TOKH_N_EOS] = (uint32_t)n;
    return 0;
}

static int file_exists(const char *p);

/* The ids that end a generation: eos_token_id of generation_config.json
 * (what transformers' generate() stops at), else of config.json; none
 * when neither names one. */
static int read_eos(builder *b, const char *hf_dir)
{
    static const char *const files[] = {"generation_config.json", "config.json"};
    for (int f = 0; f < 2; f++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", hf_dir, files[f]);
        if (!file_exists(path)) continue;
        mf_json_doc doc;
        if (load_json(b, path, NULL, 0, &doc)) return -1;
        const mf_json *e = doc.root && doc.root->type == MF_JSON_OBJECT
                               ? mf_json_get(doc.root, "eos_token_id")
                               : NULL;
        int found = e && e->type != MF_JSON_NULL;
        int rc = found ? set_eos_json(b, path, e) : 0;
        mf_json_free(&doc);
        if (rc || found) return rc;
    }
    return 0;
}

int mf_tokconv_set_eos(uint8_t *sec, size_t len, const uint32_t *ids, uint32_t n, char *err,
                       size_t errlen)
{
    if (!sec || len < MF_TOK_HEADER_WORDS * 4) {
        if (err && errlen) snprintf(err, errlen, "no tokenizer section to store eos ids in");
        return -1;
    }
    uint32_t nv = (uint32_t)sec[4 * MF_TOKH_N_VOCAB] | (uint32_t)sec[4 * MF_TOKH_N_VOCAB + 1] << 8 |
                  (uint32_t)sec[4 * MF_TOKH_N_VOCAB + 2] << 16 |
                  (uint32_t)sec[4 * MF_TOKH_N_VOCAB + 3] << 24;
    if (n > MF_TOK_MAX_EOS) {
        if (err && errlen) snprintf(err, errlen, "%u eos ids; an image holds at most %u", n, MF_TOK_MAX_EOS);
        return -1;
    }
    for (uint32_t i = 0; i < MF_TOK_MAX_EOS; i++) {
        if (i < n && ids[i] >= nv) {
            if (err && errlen) snprintf(err, errlen, "eos id %u is not below the vocabulary size %u", ids[i], nv);
            return -1;
        }
        put32(sec + 4 * (MF_TOKH_EOS + i), i < n ? ids[i] : 0);
    }
    put32(sec + 4 * MF_TOKH_N_EOS, n);
    return 0;
}

static int file_exists(const char *p)
{
    FILE *f = fopen(p, "rb");
    if (!f) return 0;
    fclose(f);
    return 1;
}

/* Both entry points: clear the outputs, point the builder's messages at err
 * (or at a scratch buffer), then serialize what was read. */
static void builder_start(builder *b, char *dummy, size_t dummy_len, uint8_t **out, size_t *len, char *err,
                          size_t errlen)
{
    *out = NULL;
    *len = 0;
    if (err && errlen) err[0] = 0;
    memset(b, 0, sizeof *b);
    b->err = err && errlen ? err : dummy;
    b->errlen = err && errlen ? errlen : dummy_len;
}

static int builder_finish(builder *b, int rc, uint8_t **out, size_t *len)
{
    if (rc == 0) rc = serialize(b, out, len);
    builder_free(b);
    return rc;
}

int mf_tokconv_build(const char *hf_dir, uint8_t **out, size_t *len, char *err, size_t errlen)
{
    char path[4096], dummy[8];
    builder b;
    builder_start(&b, dummy, sizeof dummy, out, len, err, errlen);
    int rc;
    snprintf(path, sizeof path, "%s/tokenizer.json", hf_dir);
    if (file_exists(path)) {
        rc = read_json(&b, path, NULL, 0);
    } else {
        snprintf(path, sizeof path, "%s/tokenizer.model", hf_dir);
        if (!file_exists(path)) return 0; /* byte-level model */
        rc = read_spm(&b, path, NULL, 0);
    }
    if (rc == 0) rc = read_eos(&b, hf_dir);
    return builder_finish(&b, rc, out, len);
}

int mf_tokconv_build_mem(const char *json, size_t json_len, const uint8_t *spm, size_t spm_len, uint8_t **out,
                         size_t *len, char *err, size_t errlen)
{
    char dummy[8];
    builder b;
    builder_start(&b, dummy, sizeof dummy, out, len, err, errlen);
    if (!json == !spm) return errf(&b, "give tokenizer.json or tokenizer.model bytes, one of them");
    int rc = json ? read_json(&b, "tokenizer.json", json, json_len) : read_spm(&b, "tokenizer.model", spm, spm_len);
    return builder_finish(&b, rc, out, len);
}
