/*
 * JSON parser for the host tools (see json.h).
 *
 * Two passes over the text with the same recursive-descent code: the first
 * validates and counts nodes and decoded string bytes, the second fills one
 * heap block sized exactly from those counts. One block means the tree's
 * pointers never move (no realloc) and mf_json_free is a single free().
 * Recursion depth is bounded by MF_JSON_MAX_DEPTH, so a hostile "[[[[..."
 * fails with an error instead of overflowing the stack.
 */
#include "json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *s;
    size_t len, pos;
    int build;          /* 0: count pass, 1: fill pass */
    size_t n_nodes;     /* nodes used so far */
    size_t n_str;       /* string bytes used so far (NULs included) */
    mf_json *nodes;     /* fill pass only */
    char *strs;         /* fill pass only */
    char *err;          /* doc->error */
    size_t err_len;
    int failed;
} parser;

/* Records the first error with the line and column of position pos. */
static int fail_at(parser *p, size_t pos, const char *what)
{
    if (p->failed) return -1;
    p->failed = 1;
    size_t line = 1, col = 1;
    for (size_t i = 0; i < pos && i < p->len; i++) {
        if (p->s[i] == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    snprintf(p->err, p->err_len, "line %zu column %zu: %s", line, col, what);
    return -1;
}

static int fail(parser *p, const char *what) { return fail_at(p, p->pos, what); }

static void skip_ws(parser *p)
{
    while (p->pos < p->len) {
        char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        p->pos++;
    }
}

static mf_json *new_node(parser *p, mf_json_type type)
{
    size_t i = p->n_nodes++;
    if (!p->build) return NULL;
    mf_json *n = &p->nodes[i];
    memset(n, 0, sizeof *n);
    n->type = type;
    return n;
}

static int hex4(parser *p, uint32_t *out)
{
    if (p->len - p->pos < 4) return fail(p, "truncated \\u escape");
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p->s[p->pos + i];
        int d;
        if (c >= '0' && c <= '9') d = c - '0';
        else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
        else return fail_at(p, p->pos + i, "bad hex digit in \\u escape");
        v = (v << 4) | (uint32_t)d;
    }
    p->pos += 4;
    *out = v;
    return 0;
}

/* Appends one byte to the string area (fill pass) and counts it (both). */
static void put_byte(parser *p, char **dst, char c)
{
    p->n_str++;
    if (p->build) *(*dst)++ = c;
}

static void put_utf8(parser *p, char **dst, uint32_t cp)
{
    if (cp < 0x80) {
        put_byte(p, dst, (char)cp);
    } else if (cp < 0x800) {
        put_byte(p, dst, (char)(0xC0 | (cp >> 6)));
        put_byte(p, dst, (char)(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
        put_byte(p, dst, (char)(0xE0 | (cp >> 12)));
        put_byte(p, dst, (char)(0x80 | ((cp >> 6) & 0x3F)));
        put_byte(p, dst, (char)(0x80 | (cp & 0x3F)));
    } else {
        put_byte(p, dst, (char)(0xF0 | (cp >> 18)));
        put_byte(p, dst, (char)(0x80 | ((cp >> 12) & 0x3F)));
        put_byte(p, dst, (char)(0x80 | ((cp >> 6) & 0x3F)));
        put_byte(p, dst, (char)(0x80 | (cp & 0x3F)));
    }
}

/* Parses a string starting at the opening quote; decodes it into the string
 * area. out and out_len are set in the fill pass. */
static int parse_string(parser *p, const char **out, size_t *out_len)
{
    size_t start = p->pos;
    p->pos++; /* opening quote */
    char *base = p->build ? p->strs + p->n_str : NULL;
    char *dst = base;
    size_t begin = p->n_str;
    for (;;) {
        if (p->pos >= p->len) return fail_at(p, start, "unterminated string");
        unsigned char c = (unsigned char)p->s[p->pos];
        if (c == '"') {
            p->pos++;
            break;
        }
        if (c < 0x20) return fail(p, "control character in string (must be escaped)");
        if (c != '\\') {
            put_byte(p, &dst, (char)c);
            p->pos++;
            continue;
        }
        p->pos++;
        if (p->pos >= p->len) return fail_at(p, start, "unterminated string");
        char e = p->s[p->pos++];
        switch (e) {
        case '"': put_byte(p, &dst, '"'); break;
        case '\\': put_byte(p, &dst, '\\'); break;
        case '/': put_byte(p, &dst, '/'); break;
        case 'b': put_byte(p, &dst, '\b'); break;
        case 'f': put_byte(p, &dst, '\f'); break;
        case 'n': put_byte(p, &dst, '\n'); break;
        case 'r': put_byte(p, &dst, '\r'); break;
        case 't': put_byte(p, &dst, '\t'); break;
        case 'u': {
            size_t esc = p->pos - 2;
            uint32_t cp;
            if (hex4(p, &cp)) return -1;
            if (cp >= 0xDC00 && cp <= 0xDFFF)
                return fail_at(p, esc, "lone low surrogate in \\u escape");
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                /* A high surrogate must be followed by \uDC00..\uDFFF. */
                uint32_t lo;
                if (p->len - p->pos < 2 || p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u')
                    return fail_at(p, esc, "high surrogate not followed by a low surrogate");
                p->pos += 2;
                if (hex4(p, &lo)) return -1;
                if (lo < 0xDC00 || lo > 0xDFFF)
                    return fail_at(p, esc, "high surrogate not followed by a low surrogate");
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            put_utf8(p, &dst, cp);
            break;
        }
        default:
            return fail_at(p, p->pos - 2, "invalid escape in string");
        }
    }
    size_t n = p->n_str - begin;
    put_byte(p, &dst, '\0');
    if (p->build) {
        *out = base;
        *out_len = n;
    }
    return 0;
}

/* Strict JSON number grammar, then strtod on a NUL-terminated copy (the
 * input is not NUL-terminated in general). */
static int parse_number(parser *p, double *out)
{
    size_t start = p->pos, i = p->pos;
    const char *s = p->s;
    if (i < p->len && s[i] == '-') i++;
    if (i >= p->len || s[i] < '0' || s[i] > '9') return fail_at(p, start, "invalid number");
    if (s[i] == '0') {
        i++;
    } else {
        while (i < p->len && s[i] >= '0' && s[i] <= '9') i++;
    }
    if (i < p->len && s[i] == '.') {
        i++;
        if (i >= p->len || s[i] < '0' || s[i] > '9')
            return fail_at(p, i, "invalid number: digit expected after '.'");
        while (i < p->len && s[i] >= '0' && s[i] <= '9') i++;
    }
    if (i < p->len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < p->len && (s[i] == '+' || s[i] == '-')) i++;
        if (i >= p->len || s[i] < '0' || s[i] > '9')
            return fail_at(p, i, "invalid number: digit expected in exponent");
        while (i < p->len && s[i] >= '0' && s[i] <= '9') i++;
    }
    size_t n = i - start;
    p->pos = i;
    if (!p->build) return 0;
    char buf[128];
    char *tmp = n < sizeof buf ? buf : malloc(n + 1);
    if (!tmp) return fail_at(p, start, "out of memory");
    memcpy(tmp, s + start, n);
    tmp[n] = '\0';
    *out = strtod(tmp, NULL); /* overflow gives +-HUGE_VAL, which we accept */
    if (tmp != buf) free(tmp);
    return 0;
}

static int literal(parser *p, const char *word)
{
    size_t n = strlen(word);
    if (p->len - p->pos < n || memcmp(p->s + p->pos, word, n) != 0)
        return fail(p, "invalid literal (expected a value)");
    p->pos += n;
    return 0;
}

static int parse_value(parser *p, mf_json **out, int depth);

static int parse_array(parser *p, mf_json *node, int depth)
{
    p->pos++; /* [ */
    skip_ws(p);
    mf_json **link = node ? &node->child : NULL;
    size_t count = 0;
    if (p->pos < p->len && p->s[p->pos] == ']') {
        p->pos++;
        return 0;
    }
    for (;;) {
        mf_json *child = NULL;
        if (parse_value(p, &child, depth + 1)) return -1;
        if (link) {
            *link = child;
            link = &child->next;
        }
        count++;
        skip_ws(p);
        if (p->pos >= p->len) return fail(p, "unterminated array (expected ',' or ']')");
        char c = p->s[p->pos];
        if (c == ']') {
            p->pos++;
            break;
        }
        if (c != ',') return fail(p, "expected ',' or ']' in array");
        p->pos++;
    }
    if (node) node->count = count;
    return 0;
}

static int parse_object(parser *p, mf_json *node, int depth)
{
    p->pos++; /* { */
    skip_ws(p);
    mf_json **link = node ? &node->child : NULL;
    size_t count = 0;
    if (p->pos < p->len && p->s[p->pos] == '}') {
        p->pos++;
        return 0;
    }
    for (;;) {
        skip_ws(p);
        if (p->pos >= p->len) return fail(p, "unterminated object (expected a key)");
        if (p->s[p->pos] != '"') return fail(p, "expected a string key in object");
        const char *key = NULL;
        size_t key_len = 0;
        if (parse_string(p, &key, &key_len)) return -1;
        skip_ws(p);
        if (p->pos >= p->len || p->s[p->pos] != ':') return fail(p, "expected ':' after key");
        p->pos++;
        mf_json *child = NULL;
        if (parse_value(p, &child, depth + 1)) return -1;
        if (link) {
            child->key = key;
            child->key_len = key_len;
            *link = child;
            link = &child->next;
        }
        count++;
        skip_ws(p);
        if (p->pos >= p->len) return fail(p, "unterminated object (expected ',' or '}')");
        char c = p->s[p->pos];
        if (c == '}') {
            p->pos++;
            break;
        }
        if (c != ',') return fail(p, "expected ',' or '}' in object");
        p->pos++;
    }
    if (node) node->count = count;
    return 0;
}

static int parse_value(parser *p, mf_json **out, int depth)
{
    if (depth > MF_JSON_MAX_DEPTH) return fail(p, "nesting deeper than MF_JSON_MAX_DEPTH");
    skip_ws(p);
    if (p->pos >= p->len) return fail(p, "unexpected end of input (expected a value)");
    char c = p->s[p->pos];
    mf_json *n;
    switch (c) {
    case '{':
        n = new_node(p, MF_JSON_OBJECT);
        *out = n;
        return parse_object(p, n, depth);
    case '[':
        n = new_node(p, MF_JSON_ARRAY);
        *out = n;
        return parse_array(p, n, depth);
    case '"': {
        n = new_node(p, MF_JSON_STRING);
        *out = n;
        const char *s = NULL;
        size_t l = 0;
        if (parse_string(p, &s, &l)) return -1;
        if (n) {
            n->str = s;
            n->str_len = l;
        }
        return 0;
    }
    case 't':
        *out = new_node(p, MF_JSON_TRUE);
        return literal(p, "true");
    case 'f':
        *out = new_node(p, MF_JSON_FALSE);
        return literal(p, "false");
    case 'n':
        *out = new_node(p, MF_JSON_NULL);
        return literal(p, "null");
    default:
        if (c == '-' || (c >= '0' && c <= '9')) {
            n = new_node(p, MF_JSON_NUMBER);
            *out = n;
            double v = 0;
            if (parse_number(p, &v)) return -1;
            if (n) n->number = v;
            return 0;
        }
        return fail(p, "unexpected character (expected a value)");
    }
}

static int parse_document(parser *p, mf_json **root)
{
    if (parse_value(p, root, 1)) return -1;
    skip_ws(p);
    if (p->pos != p->len) return fail(p, "trailing characters after the JSON value");
    return 0;
}

int mf_json_parse(mf_json_doc *doc, const char *text, size_t len)
{
    memset(doc, 0, sizeof *doc);
    if (!text) {
        snprintf(doc->error, sizeof doc->error, "no input");
        return -1;
    }
    parser p;
    memset(&p, 0, sizeof p);
    p.s = text;
    p.len = len;
    p.err = doc->error;
    p.err_len = sizeof doc->error;

    /* Pass 1: validate and count. */
    mf_json *dummy = NULL;
    if (parse_document(&p, &dummy)) return -1;
    size_t n_nodes = p.n_nodes, n_str = p.n_str;

    /* Pass 2: fill one block, nodes first (aligned by malloc), then strings. */
    if (n_nodes > (SIZE_MAX - n_str) / sizeof(mf_json)) {
        snprintf(doc->error, sizeof doc->error, "document too large");
        return -1;
    }
    size_t bytes = n_nodes * sizeof(mf_json) + n_str;
    void *block = malloc(bytes ? bytes : 1);
    if (!block) {
        snprintf(doc->error, sizeof doc->error, "out of memory (%zu bytes)", bytes);
        return -1;
    }
    p.pos = 0;
    p.build = 1;
    p.n_nodes = 0;
    p.n_str = 0;
    p.nodes = block;
    p.strs = (char *)block + n_nodes * sizeof(mf_json);
    mf_json *root = NULL;
    if (parse_document(&p, &root)) { /* cannot happen: pass 1 accepted it */
        free(block);
        return -1;
    }
    doc->root = root;
    doc->block = block;
    return 0;
}

void mf_json_free(mf_json_doc *doc)
{
    if (!doc) return;
    free(doc->block);
    doc->block = NULL;
    doc->root = NULL;
}

const mf_json *mf_json_get(const mf_json *obj, const char *key)
{
    if (!obj || obj->type != MF_JSON_OBJECT || !key) return NULL;
    /* With duplicate keys the last one wins, as in Python's json module
     * (which is how transformers reads the same files). */
    size_t n = strlen(key);
    const mf_json *found = NULL;
    for (const mf_json *c = obj->child; c; c = c->next)
        if (c->key_len == n && memcmp(c->key, key, n) == 0) found = c;
    return found;
}

const mf_json *mf_json_at(const mf_json *arr, size_t i)
{
    if (!arr || arr->type != MF_JSON_ARRAY || i >= arr->count) return NULL;
    const mf_json *c = arr->child;
    while (i-- && c) c = c->next;
    return c;
}

int mf_json_get_number(const mf_json *obj, const char *key, double *out)
{
    const mf_json *v = mf_json_get(obj, key);
    if (!v || v->type != MF_JSON_NUMBER) return -1;
    *out = v->number;
    return 0;
}

int mf_json_get_string(const mf_json *obj, const char *key, const char **out)
{
    const mf_json *v = mf_json_get(obj, key);
    if (!v || v->type != MF_JSON_STRING) return -1;
    *out = v->str;
    return 0;
}

int mf_json_get_bool(const mf_json *obj, const char *key, int *out)
{
    const mf_json *v = mf_json_get(obj, key);
    if (!v || (v->type != MF_JSON_TRUE && v->type != MF_JSON_FALSE)) return -1;
    *out = v->type == MF_JSON_TRUE;
    return 0;
}

char *mf_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    if (!buf) {
        fclose(f);
        return NULL;
    }
    for (;;) {
        if (n == cap) {
            size_t ncap = cap * 2;
            char *nb = realloc(buf, ncap + 1);
            if (!nb) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
            cap = ncap;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
    }
    int bad = ferror(f);
    if (fclose(f) != 0) bad = 1;
    if (bad) {
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    if (len) *len = n;
    return buf;
}

void mf_one_line(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7F) *s = '?';
}
