/*
 * Writes the committed seed corpora of the text and safetensors targets
 * (fuzz_json, fuzz_config, fuzz_safetensors, fuzz_safetensors_index) from
 * the repository's data; gen_image_seed writes the image ones. Run from the
 * repository root by `make fuzz-seeds`:
 *
 *   gen_seeds CORPUS_DIR        (fuzz/corpus)
 *
 * Seeds are small on purpose (libFuzzer mutates small inputs far faster,
 * and the structure is what matters, not the weights): real safetensors
 * headers keep their names and dtypes but get tiny shapes, and the real
 * sharded index keeps a few tensors of each shard. JSON is written the way
 * Python's json.dumps writes it, so the files match the ones committed
 * before this generator replaced fuzz/make_seeds.py. Host-only tool.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../tools/lib/json.h"

static const char *corpus;

typedef struct {
    char *p;
    size_t n, cap;
} buf;

static void put(buf *b, const void *s, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        b->cap = (b->n + n + 1) * 2;
        b->p = realloc(b->p, b->cap);
        if (!b->p) {
            fprintf(stderr, "gen_seeds: out of memory\n");
            exit(1);
        }
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

static void puts_(buf *b, const char *s) { put(b, s, strlen(s)); }

static void putf(buf *b, const char *fmt, unsigned long long v)
{
    char t[64];
    snprintf(t, sizeof t, fmt, v);
    puts_(b, t);
}

/* Python's json.dumps string, ensure_ascii: non-ASCII as \uXXXX (UTF-16). */
static void put_str(buf *b, const char *s, size_t len)
{
    puts_(b, "\"");
    for (size_t i = 0; i < len;) {
        unsigned char c = (unsigned char)s[i];
        uint32_t cp = c;
        size_t n = 1;
        if (c >= 0xF0) cp = c & 0x07, n = 4;
        else if (c >= 0xE0) cp = c & 0x0F, n = 3;
        else if (c >= 0xC0) cp = c & 0x1F, n = 2;
        for (size_t k = 1; k < n && i + k < len; k++) cp = (cp << 6) | ((unsigned char)s[i + k] & 0x3F);
        i += n;
        if (cp == '"') puts_(b, "\\\"");
        else if (cp == '\\') puts_(b, "\\\\");
        else if (cp == '\n') puts_(b, "\\n");
        else if (cp == '\r') puts_(b, "\\r");
        else if (cp == '\t') puts_(b, "\\t");
        else if (cp == '\b') puts_(b, "\\b");
        else if (cp == '\f') puts_(b, "\\f");
        else if (cp >= 0x20 && cp < 0x7F) put(b, &c, 1);
        else if (cp < 0x10000) putf(b, "\\u%04llx", cp);
        else {
            cp -= 0x10000;
            putf(b, "\\u%04llx", 0xD800 + (cp >> 10));
            putf(b, "\\u%04llx", 0xDC00 + (cp & 0x3FF));
        }
    }
    puts_(b, "\"");
}

/* json.dumps(v, separators=(item, key)); indent > 0 as json.dumps(indent=). */
static void put_json(buf *b, const mf_json *v, const char *item, const char *key, int indent, int depth)
{
    switch (v->type) {
    case MF_JSON_NULL: puts_(b, "null"); break;
    case MF_JSON_TRUE: puts_(b, "true"); break;
    case MF_JSON_FALSE: puts_(b, "false"); break;
    case MF_JSON_NUMBER: {
        char t[64];
        if (v->number == (double)(long long)v->number) snprintf(t, sizeof t, "%lld", (long long)v->number);
        else snprintf(t, sizeof t, "%.17g", v->number);
        puts_(b, t);
        break;
    }
    case MF_JSON_STRING: put_str(b, v->str, v->str_len); break;
    case MF_JSON_ARRAY:
    case MF_JSON_OBJECT: {
        int obj = v->type == MF_JSON_OBJECT;
        puts_(b, obj ? "{" : "[");
        for (const mf_json *c = v->child; c; c = c->next) {
            if (c != v->child) puts_(b, item);
            if (indent) {
                puts_(b, "\n");
                for (int i = 0; i < indent * (depth + 1); i++) puts_(b, " ");
            }
            if (obj) {
                put_str(b, c->key, c->key_len);
                puts_(b, key);
            }
            put_json(b, c, item, key, indent, depth + 1);
        }
        if (indent && v->child) {
            puts_(b, "\n");
            for (int i = 0; i < indent * depth; i++) puts_(b, " ");
        }
        puts_(b, obj ? "}" : "]");
        break;
    }
    }
}

static void write_seed(const char *target, const char *name, const void *data, size_t len)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", corpus, target);
    mkdir(corpus, 0755);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/%s/%s", corpus, target, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len || fclose(f)) {
        fprintf(stderr, "gen_seeds: cannot write %s\n", path);
        exit(1);
    }
}

static char *must_read(const char *path, size_t *len)
{
    char *t = mf_read_file(path, len);
    if (!t) {
        fprintf(stderr, "gen_seeds: cannot read %s\n", path);
        exit(1);
    }
    return t;
}

static void copy_seed(const char *target, const char *name, const char *path)
{
    size_t len;
    char *t = must_read(path, &len);
    write_seed(target, name, t, len);
    free(t);
}

static int cmp_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The sub-folders of dir that hold a config.json, sorted (as Python's
 * sorted(glob("dir/ * /config.json"))). */
static size_t config_dirs(const char *dir, char **out, size_t cap)
{
    DIR *d = opendir(dir);
    size_t n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) && n < cap) {
        if (e->d_name[0] == '.') continue;
        char p[1024];
        snprintf(p, sizeof p, "%s/%s/config.json", dir, e->d_name);
        FILE *f = fopen(p, "rb");
        if (!f) continue;
        fclose(f);
        out[n] = malloc(strlen(e->d_name) + 1);
        if (out[n]) strcpy(out[n++], e->d_name);
    }
    if (d) closedir(d);
    qsort(out, n, sizeof *out, cmp_name);
    return n;
}

/* A safetensors file: u64 length, header JSON padded with spaces to a
 * multiple of 8, data. */
static void write_st(const char *target, const char *name, const buf *hdr, const void *data, size_t len)
{
    buf f = {0};
    uint64_t hl = (hdr->n + 7) / 8 * 8;
    uint8_t lb[8];
    for (int i = 0; i < 8; i++) lb[i] = (uint8_t)(hl >> (8 * i));
    put(&f, lb, 8);
    put(&f, hdr->p, hdr->n);
    for (size_t i = hdr->n; i < hl; i++) puts_(&f, " ");
    put(&f, data, len);
    write_seed(target, name, f.p, f.n);
    free(f.p);
}

static mf_json_doc st_header(const char *path)
{
    size_t len;
    char *t = must_read(path, &len);
    uint64_t hl = 0;
    for (int i = 7; i >= 0 && len >= 8; i--) hl = (hl << 8) | (unsigned char)t[i];
    mf_json_doc doc;
    if (len < 8 || hl > len - 8 || mf_json_parse(&doc, t + 8, hl)) {
        fprintf(stderr, "gen_seeds: %s: bad header\n", path);
        exit(1);
    }
    free(t);
    return doc;
}

static uint32_t dtype_bytes(const char *dt)
{
    static const struct { const char *n; uint32_t b; } s[] = {
        {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"I64", 8}, {"I32", 4}, {"U8", 1}, {"BOOL", 1}, {"F64", 8}};
    for (size_t i = 0; i < sizeof s / sizeof s[0]; i++)
        if (!strcmp(dt, s[i].n)) return s[i].b;
    return 4;
}

/* The first six tensors of a real header, same names and dtypes, shapes
 * [2, 3] and [4] in turn, consistent offsets, the __metadata__ last. */
static void shrunk_st(const char *path, const char *name)
{
    mf_json_doc doc = st_header(path);
    buf h = {0}, data = {0};
    puts_(&h, "{");
    int i = 0;
    for (const mf_json *e = doc.root->child; e && i < 6; e = e->next) {
        if (!strcmp(e->key, "__metadata__")) continue;
        const char *dt = "F32";
        mf_json_get_string(e, "dtype", &dt);
        uint64_t numel = i % 2 == 0 ? 6 : 4, nb = numel * dtype_bytes(dt), off = data.n;
        if (i) puts_(&h, ",");
        put_str(&h, e->key, e->key_len);
        puts_(&h, ":{\"dtype\":");
        put_str(&h, dt, strlen(dt));
        puts_(&h, i % 2 == 0 ? ",\"shape\":[2,3]" : ",\"shape\":[4]");
        putf(&h, ",\"data_offsets\":[%llu,", off);
        putf(&h, "%llu]}", off + nb);
        for (uint64_t j = 0; j < nb; j++) {
            uint8_t c = (uint8_t)((j * 37 + (uint64_t)i) & 0xFF);
            put(&data, &c, 1);
        }
        i++;
    }
    const mf_json *meta = mf_json_get(doc.root, "__metadata__");
    if (meta) {
        puts_(&h, ",\"__metadata__\":");
        put_json(&h, meta, ",", ":", 0, 0);
    }
    puts_(&h, "}");
    write_st("fuzz_safetensors", name, &h, data.p, data.n);
    free(h.p);
    free(data.p);
    mf_json_free(&doc);
}

static void json_seeds(void)
{
    char *dirs[64];
    size_t n = config_dirs("tests/data", dirs, 64);
    for (size_t i = 0; i < n; i++) {
        char p[1024], name[300];
        snprintf(p, sizeof p, "tests/data/%s/config.json", dirs[i]);
        snprintf(name, sizeof name, "config-%s", dirs[i]);
        copy_seed("fuzz_json", name, p);
        free(dirs[i]);
    }
    copy_seed("fuzz_json", "tok-bytelevel-tokenizer_config.json", "tests/data/tok-bytelevel/tokenizer_config.json");
    copy_seed("fuzz_json", "small-qwen3-moe-bpe-routing_stats.json",
              "tests/data/small-qwen3-moe-bpe/routing_stats.json");
    copy_seed("fuzz_json", "tok-sentencepiece-tokenizer_golden.json",
              "tests/data/tok-sentencepiece/tokenizer_golden.json");
    mf_json_doc doc = st_header("tests/data/arch-qwen3-moe-fused/model.safetensors");
    buf h = {0};
    put_json(&h, doc.root, ", ", ": ", 0, 0);
    write_seed("fuzz_json", "st-header-qwen3", h.p, h.n);
    free(h.p);
    mf_json_free(&doc);

    static const struct { const char *name, *text; } edge[] = {
        {"edge-escapes", "{\"a\":\"\\u00e9\\ud83d\\ude00\\n\\t\\\"\\\\\\/\\b\\f\\r\",\"b\":\"\\u0000x\"}"},
        {"edge-numbers", "[0,-0,1e308,-1e-308,1.5E+3,123456789012345678901234567890,-0.0e0,2e-400]"},
        {"edge-literals", "{\"t\":true,\"f\":false,\"n\":null,\"e\":[],\"o\":{},\"s\":\"\"}"},
        {"edge-dupkeys", "{\"k\":1,\"k\":2,\"\":3}"},
        {"edge-ws", " \t\r\n{ \"x\" : [ 1 , 2 ] } \n"},
        {"edge-lone-surrogate", "[\"\\ud800\",\"\\udc00x\"]"},
    };
    for (size_t i = 0; i < sizeof edge / sizeof edge[0]; i++)
        write_seed("fuzz_json", edge[i].name, edge[i].text, strlen(edge[i].text));
    char nest[100];
    memset(nest, '[', 40);
    memcpy(nest + 40, "{}", 2);
    memset(nest + 42, ']', 40);
    write_seed("fuzz_json", "edge-nesting", nest, 82);
}

static void config_seeds(void)
{
    const char *roots[2] = {"tests/data", "models"};
    for (int r = 0; r < 2; r++) {
        char *dirs[64];
        size_t n = config_dirs(roots[r], dirs, 64);
        for (size_t i = 0; i < n; i++) {
            char p[1024];
            snprintf(p, sizeof p, "%s/%s/config.json", roots[r], dirs[i]);
            copy_seed("fuzz_config", dirs[i], p);
            free(dirs[i]);
        }
    }
}

static void safetensors_seeds(void)
{
    shrunk_st("tests/data/arch-mixtral/model.safetensors", "shrunk-arch-mixtral");
    shrunk_st("tests/data/arch-qwen3-moe-fused/model.safetensors", "shrunk-arch-qwen3-moe-fused");
    shrunk_st("tests/data/arch-qwen2-moe/model.safetensors", "shrunk-arch-qwen2-moe");
    shrunk_st("tests/data/small-qwen3-moe-bpe/model-00003-of-00003.safetensors",
              "shrunk-small-qwen3-moe-bpe");

    /* Every dtype the reader converts, one it does not, an empty tensor. */
    buf h = {0};
    puts_(&h, "{\"a\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[0,6]},"
              "\"b\":{\"dtype\":\"BF16\",\"shape\":[1,2],\"data_offsets\":[6,10]},"
              "\"c\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[10,14]},"
              "\"d\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[14,22]},"
              "\"e\":{\"dtype\":\"F32\",\"shape\":[0,5],\"data_offsets\":[22,22]},"
              "\"__metadata__\":{\"format\":\"pt\"}}");
    const uint8_t d[22] = {0x00, 0x3c, 0x01, 0x00, 0xff, 0x7b, 0x80, 0x3f, 0x00, 0xc0, 0, 0, 0x80, 0x3f};
    write_st("fuzz_safetensors", "dtypes", &h, d, sizeof d);
    h.n = 0;
    puts_(&h, "{}");
    write_st("fuzz_safetensors", "empty-header", &h, NULL, 0);
    free(h.p);
}

/* Index seeds: the real sharded index cut to four tensors per shard (in
 * transformers' format: indent 2), and hand-written ones for what real
 * indexes rarely show. */
static void index_seeds(void)
{
    size_t len;
    char *t = must_read("tests/data/small-qwen3-moe-bpe/model.safetensors.index.json", &len);
    mf_json_doc doc;
    if (mf_json_parse(&doc, t, len)) {
        fprintf(stderr, "gen_seeds: bad index: %s\n", doc.error);
        exit(1);
    }
    free(t);
    mf_json *map = (mf_json *)mf_json_get(doc.root, "weight_map");
    if (!map || map->type != MF_JSON_OBJECT) {
        fprintf(stderr, "gen_seeds: index without weight_map\n");
        exit(1);
    }
    /* Unlink the members beyond four per file (the tree is ours to edit). */
    const char *files[16];
    int per[16] = {0}, nf = 0;
    mf_json **link = &map->child;
    map->count = 0;
    while (*link) {
        int f = 0;
        while (f < nf && strcmp(files[f], (*link)->str)) f++;
        if (f == nf && nf < 16) files[nf++] = (*link)->str;
        if (f < 16 && per[f] < 4) {
            per[f]++;
            map->count++;
            link = &(*link)->next;
        } else {
            *link = (*link)->next;
        }
    }
    buf b = {0};
    put_json(&b, doc.root, ",", ": ", 2, 0);
    puts_(&b, "\n");
    write_seed("fuzz_safetensors_index", "shrunk-small-qwen3-moe-bpe", b.p, b.n);
    free(b.p);
    mf_json_free(&doc);

    static const struct { const char *name, *text; } hand[] = {
        {"mixtral-19-shards",
         "{\n  \"metadata\": {\n    \"total_size\": 93405585408\n  },\n  \"weight_map\": {\n"
         "    \"lm_head.weight\": \"model-00019-of-00019.safetensors\",\n"
         "    \"model.embed_tokens.weight\": \"model-00001-of-00019.safetensors\",\n"
         "    \"model.layers.0.block_sparse_moe.experts.0.w1.weight\": \"model-00001-of-00019.safetensors\",\n"
         "    \"model.layers.0.block_sparse_moe.gate.weight\": \"model-00001-of-00019.safetensors\",\n"
         "    \"model.layers.15.block_sparse_moe.experts.7.w3.weight\": \"model-00010-of-00019.safetensors\",\n"
         "    \"model.layers.15.self_attn.q_proj.weight\": \"model-00009-of-00019.safetensors\",\n"
         "    \"model.layers.31.post_attention_layernorm.weight\": \"model-00019-of-00019.safetensors\",\n"
         "    \"model.norm.weight\": \"model-00019-of-00019.safetensors\"\n  }\n}\n"},
        {"minimal", "{\"weight_map\":{\"a\":\"s.safetensors\"}}"},
        {"escapes", "{\"weight_map\":{\"\\u00e9\\t\\\"q\\\"\":\"mod\\u00e8le-1.safetensors\","
                    "\"b\\ud83d\\ude00\":\"mod\\u00e8le-1.safetensors\",\"c\":\"s 2.safetensors\"},"
                    "\"metadata\":null}"},
        {"dup-weight-map", "{\"weight_map\":{\"a\":\"s1\"},\"weight_map\":{\"b\":\"s2\",\"c\":\"s1\"}}"},
        {"reject-traversal", "{\"weight_map\":{\"a\":\"s1\",\"b\":\"../s1\",\"c\":\"..\\\\s2\"}}"},
        {"reject-twice", "{\"weight_map\":{\"a\":\"s1\",\"b\":\"s2\",\"a\":\"s2\"}}"},
        {"reject-nul", "{\"weight_map\":{\"a\":\"s1\\u0000.safetensors\",\"b\\u0000\":\"s1\"}}"},
    };
    for (size_t i = 0; i < sizeof hand / sizeof hand[0]; i++)
        write_seed("fuzz_safetensors_index", hand[i].name, hand[i].text, strlen(hand[i].text));
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR   (run from the repository root)\n", argv[0]);
        return 2;
    }
    corpus = argv[1];
    json_seeds();
    config_seeds();
    safetensors_seeds();
    index_seeds();
    return 0;
}
