/*
 * Safetensors reader (see safetensors.h). Headers are parsed with json.c and
 * checked completely at open time; data is read on demand with fseeko and
 * converted to f32 in fixed-size chunks so a tensor never needs two copies
 * of itself in memory.
 */
#include "safetensors.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "json.h"

/* The safetensors format caps the header at 100 MB; anything larger is a
 * corrupt length field, not a real header. */
#define ST_MAX_HEADER (100u * 1000u * 1000u)

static int st_fail(mf_safetensors *st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(st->err, sizeof st->err, fmt, ap);
    va_end(ap);
    mf_one_line(st->err); /* names come from the file */
    return -1;
}

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

static char *join_path(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (!p) return NULL;
    memcpy(p, dir, a);
    size_t n = a;
    if (a && dir[a - 1] != '/') p[n++] = '/';
    memcpy(p + n, name, b + 1);
    return p;
}

/* Element size of every dtype the safetensors format defines; 0 = a dtype
 * we do not know the size of (newer sub-byte formats): its byte range is
 * then only checked against the data area, and reading it fails. */
static void classify_dtype(const char *name, int *dtype, uint32_t *bytes)
{
    static const struct {
        const char *name;
        uint32_t bytes;
    } sizes[] = {{"BOOL", 1},    {"U8", 1},      {"I8", 1},  {"F8_E5M2", 1}, {"F8_E4M3", 1},
                 {"F8_E8M0", 1}, {"I16", 2},     {"U16", 2}, {"F16", 2},     {"BF16", 2},
                 {"I32", 4},     {"U32", 4},     {"F32", 4}, {"F64", 8},     {"I64", 8},
                 {"U64", 8},     {"C64", 8}};
    *bytes = 0;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        if (!strcmp(name, sizes[i].name)) *bytes = sizes[i].bytes;
    if (!strcmp(name, "F32")) *dtype = MF_ST_F32;
    else if (!strcmp(name, "F16")) *dtype = MF_ST_F16;
    else if (!strcmp(name, "BF16")) *dtype = MF_ST_BF16;
    else *dtype = MF_ST_OTHER;
}

/* A JSON number that is a non-negative integer exactly representable. */
static int json_u64(const mf_json *v, uint64_t *out)
{
    if (!v || v->type != MF_JSON_NUMBER) return -1;
    double d = v->number;
    if (!(d >= 0) || d > 9007199254740992.0 || d != (double)(uint64_t)d) return -1;
    *out = (uint64_t)d;
    return 0;
}

static int cmp_tensor(const void *a, const void *b)
{
    return strcmp(((const mf_st_tensor *)a)->name, ((const mf_st_tensor *)b)->name);
}

/* Parses one tensor entry of a header into t. */
static int parse_entry(mf_safetensors *st, const char *path, const mf_json *e, uint64_t data_bytes,
                       mf_st_tensor *t)
{
    const char *name = e->key;
    if (e->type != MF_JSON_OBJECT) return st_fail(st, "%s: tensor %s: entry is not an object", path, name);
    const char *dt;
    if (mf_json_get_string(e, "dtype", &dt))
        return st_fail(st, "%s: tensor %s: missing dtype", path, name);
    if (strlen(dt) >= sizeof t->dtype_name)
        return st_fail(st, "%s: tensor %s: unknown dtype %.20s", path, name, dt);
    strcpy(t->dtype_name, dt);
    classify_dtype(dt, &t->dtype, &t->elem_bytes);

    const mf_json *shape = mf_json_get(e, "shape");
    if (!shape || shape->type != MF_JSON_ARRAY)
        return st_fail(st, "%s: tensor %s: missing shape", path, name);
    if (shape->count > MF_ST_MAX_DIMS)
        return st_fail(st, "%s: tensor %s: %zu dimensions (at most %d)", path, name, shape->count,
                       MF_ST_MAX_DIMS);
    t->ndim = (uint32_t)shape->count;
    t->numel = 1;
    uint32_t i = 0;
    for (const mf_json *d = shape->child; d; d = d->next, i++) {
        if (json_u64(d, &t->shape[i]))
            return st_fail(st, "%s: tensor %s: shape entry %u is not a non-negative integer", path,
                           name, i);
        if (t->shape[i] && t->numel > UINT64_MAX / t->shape[i])
            return st_fail(st, "%s: tensor %s: shape too large", path, name);
        t->numel *= t->shape[i];
    }

    const mf_json *off = mf_json_get(e, "data_offsets");
    if (!off || off->type != MF_JSON_ARRAY || off->count != 2 ||
        json_u64(mf_json_at(off, 0), &t->begin) || json_u64(mf_json_at(off, 1), &t->end))
        return st_fail(st, "%s: tensor %s: data_offsets must be [begin, end]", path, name);
    if (t->begin > t->end || t->end > data_bytes)
        return st_fail(st,
                       "%s: tensor %s: data offsets [%llu, %llu] outside the data area (%llu bytes)",
                       path, name, (unsigned long long)t->begin, (unsigned long long)t->end,
                       (unsigned long long)data_bytes);
    if (t->elem_bytes) {
        if (t->numel > UINT64_MAX / t->elem_bytes || t->end - t->begin != t->numel * t->elem_bytes)
            return st_fail(st,
                           "%s: tensor %s: %llu bytes of data but shape x %s needs %llu", path,
                           name, (unsigned long long)(t->end - t->begin), t->dtype_name,
                           (unsigned long long)(t->numel * t->elem_bytes));
    }
    t->name = dup_str(name);
    if (!t->name) return st_fail(st, "out of memory");
    return 0;
}

/* Appends a shard named path (for messages) with nothing open yet. */
static mf_st_shard *new_shard(mf_safetensors *st, const char *path)
{
    mf_st_shard *shards = realloc(st->shards, (st->n_shards + 1) * sizeof *shards);
    if (!shards) {
        st_fail(st, "out of memory");
        return NULL;
    }
    st->shards = shards;
    mf_st_shard *sh = &shards[st->n_shards++];
    memset(sh, 0, sizeof *sh);
    sh->path = dup_str(path);
    if (!sh->path) {
        st_fail(st, "out of memory");
        return NULL;
    }
    return sh;
}

/* Checks the length field lb (the first 8 bytes of a shard of
 * sh->file_bytes bytes) and sets sh->data_start; the header length in
 * *hlen. */
static int header_length(mf_safetensors *st, mf_st_shard *sh, const uint8_t lb[8], uint64_t *hlen)
{
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = (n << 8) | lb[i];
    if (n > sh->file_bytes - 8)
        return st_fail(st, "%s: header length %llu past the end of the file (%llu bytes)", sh->path,
                       (unsigned long long)n, (unsigned long long)sh->file_bytes);
    if (n > ST_MAX_HEADER)
        return st_fail(st, "%s: header length %llu exceeds the 100 MB limit", sh->path,
                       (unsigned long long)n);
    sh->data_start = 8 + n;
    *hlen = n;
    return 0;
}

/* Parses the JSON header (len bytes of text, no NUL needed) of the last
 * shard added and appends its tensors. Shared by files and memory. */
static int parse_header(mf_safetensors *st, const char *text, size_t len)
{
    uint32_t shard_index = (uint32_t)(st->n_shards - 1);
    const mf_st_shard *sh = &st->shards[shard_index];
    const char *path = sh->path;
    uint64_t data_bytes = sh->file_bytes - sh->data_start;
    mf_json_doc doc;
    if (mf_json_parse(&doc, text, len)) return st_fail(st, "%s: bad JSON header: %s", path, doc.error);
    int rc = 0;
    if (doc.root->type != MF_JSON_OBJECT) {
        rc = st_fail(st, "%s: header is not a JSON object", path);
    } else {
        size_t n_new = doc.root->count;
        mf_st_tensor *ts = realloc(st->tensors, (st->n_tensors + n_new + 1) * sizeof *ts);
        if (!ts) {
            rc = st_fail(st, "out of memory");
        } else {
            st->tensors = ts;
            for (const mf_json *e = doc.root->child; e && !rc; e = e->next) {
                if (!strcmp(e->key, "__metadata__")) continue;
                mf_st_tensor *t = &st->tensors[st->n_tensors];
                memset(t, 0, sizeof *t);
                rc = parse_entry(st, path, e, data_bytes, t);
                if (!rc) {
                    t->shard = shard_index;
                    st->n_tensors++;
                }
            }
        }
    }
    mf_json_free(&doc);
    return rc;
}

/* Opens one shard file, validates its header and appends its tensors. */
static int add_shard(mf_safetensors *st, const char *path)
{
    mf_st_shard *sh = new_shard(st, path);
    if (!sh) return -1;
    sh->f = fopen(path, "rb");
    if (!sh->f) return st_fail(st, "%s: cannot open", path);
    if (fseeko(sh->f, 0, SEEK_END) != 0) return st_fail(st, "%s: cannot seek", path);
    off_t size = ftello(sh->f);
    if (size < 0) return st_fail(st, "%s: cannot get size", path);
    sh->file_bytes = (uint64_t)size;
    if (sh->file_bytes < 8)
        return st_fail(st, "%s: file too short for a safetensors header (%llu bytes)", path,
                       (unsigned long long)sh->file_bytes);
    uint8_t lb[8];
    if (fseeko(sh->f, 0, SEEK_SET) != 0 || fread(lb, 1, 8, sh->f) != 8)
        return st_fail(st, "%s: cannot read the header length", path);
    uint64_t hlen;
    if (header_length(st, sh, lb, &hlen)) return -1;
    char *text = malloc(hlen + 1);
    if (!text) return st_fail(st, "out of memory");
    if (fread(text, 1, hlen, sh->f) != hlen) {
        free(text);
        return st_fail(st, "%s: cannot read the header", path);
    }
    int rc = parse_header(st, text, hlen);
    free(text);
    return rc;
}

/* Sorts the tensors for bsearch and rejects a name present twice. */
static int finish(mf_safetensors *st)
{
    if (st->n_tensors) qsort(st->tensors, st->n_tensors, sizeof *st->tensors, cmp_tensor);
    for (size_t i = 1; i < st->n_tensors; i++)
        if (!strcmp(st->tensors[i].name, st->tensors[i - 1].name))
            return st_fail(st, "tensor %s appears twice (in %s and %s)", st->tensors[i].name,
                           st->shards[st->tensors[i - 1].shard].path,
                           st->shards[st->tensors[i].shard].path);
    return 0;
}

/* Closes st after a failure, keeping its message. */
static int fail_close(mf_safetensors *st)
{
    char keep[sizeof st->err];
    memcpy(keep, st->err, sizeof keep);
    mf_st_close(st);
    memcpy(st->err, keep, sizeof keep);
    return -1;
}

int mf_st_open_file(mf_safetensors *st, const char *path)
{
    memset(st, 0, sizeof *st);
    if (add_shard(st, path) || finish(st)) return fail_close(st);
    return 0;
}

/* The header is parsed in place: json.c never reads past the length it is
 * given, so the buffer needs no terminating NUL and no copy. */
static int add_mem_shard(mf_safetensors *st, const uint8_t *data, size_t len)
{
    mf_st_shard *sh = new_shard(st, "<memory>");
    if (!sh) return -1;
    if (!data && len) return st_fail(st, "<memory>: no buffer");
    sh->mem = data;
    sh->file_bytes = len;
    if (len < 8)
        return st_fail(st, "<memory>: buffer too short for a safetensors header (%zu bytes)", len);
    uint64_t hlen;
    if (header_length(st, sh, data, &hlen)) return -1;
    return parse_header(st, (const char *)data + 8, (size_t)hlen);
}

int mf_st_open_mem(mf_safetensors *st, const void *data, size_t len)
{
    memset(st, 0, sizeof *st);
    if (add_mem_shard(st, data, len) || finish(st)) return fail_close(st);
    return 0;
}

static int idx_fail(mf_st_index *idx, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(idx->err, sizeof idx->err, fmt, ap);
    va_end(ap);
    mf_one_line(idx->err);
    return -1;
}

/* Shards live in the checkpoint folder itself: a name that could reach
 * elsewhere, or be cut short by a NUL, is refused. */
static int plain_file_name(const char *s, size_t len)
{
    return len && strlen(s) == len && !strchr(s, '/') && !strchr(s, '\\') && strcmp(s, ".") &&
           strcmp(s, "..");
}

static int cmp_entry(const void *a, const void *b)
{
    return strcmp(((const mf_st_index_entry *)a)->tensor, ((const mf_st_index_entry *)b)->tensor);
}

static int index_fill(mf_st_index *idx, const mf_json *root, const char *what)
{
    const mf_json *map = mf_json_get(root, "weight_map");
    if (!map || map->type != MF_JSON_OBJECT || map->count == 0)
        return idx_fail(idx, "%s: no weight_map object", what);
    idx->entries = calloc(map->count, sizeof *idx->entries);
    if (!idx->entries) return idx_fail(idx, "out of memory");
    for (const mf_json *e = map->child; e; e = e->next) {
        if (strlen(e->key) != e->key_len)
            return idx_fail(idx, "%s: weight_map has a tensor name with a NUL byte", what);
        if (e->type != MF_JSON_STRING)
            return idx_fail(idx, "%s: weight_map entry %s is not a file name", what, e->key);
        if (!plain_file_name(e->str, e->str_len))
            return idx_fail(idx, "%s: shard name \"%s\" of tensor %s is not a plain file name", what,
                            e->str, e->key);
        /* Consecutive entries mostly share a shard: try the last one first. */
        size_t f = idx->n_entries ? idx->entries[idx->n_entries - 1].shard : 0;
        if (f >= idx->n_files || strcmp(idx->files[f], e->str))
            for (f = 0; f < idx->n_files && strcmp(idx->files[f], e->str); f++) {}
        if (f == idx->n_files) {
            char **files = realloc(idx->files, (idx->n_files + 1) * sizeof *files);
            if (!files) return idx_fail(idx, "out of memory");
            idx->files = files;
            if (!(files[idx->n_files] = dup_str(e->str))) return idx_fail(idx, "out of memory");
            idx->n_files++;
        }
        mf_st_index_entry *en = &idx->entries[idx->n_entries];
        if (!(en->tensor = dup_str(e->key))) return idx_fail(idx, "out of memory");
        en->shard = (uint32_t)f;
        idx->n_entries++;
    }
    qsort(idx->entries, idx->n_entries, sizeof *idx->entries, cmp_entry);
    for (size_t i = 1; i < idx->n_entries; i++)
        if (!strcmp(idx->entries[i].tensor, idx->entries[i - 1].tensor))
            return idx_fail(idx, "%s: tensor %s is listed twice in weight_map", what,
                            idx->entries[i].tensor);
    return 0;
}

int mf_st_index_parse(mf_st_index *idx, const char *text, size_t len, const char *what)
{
    memset(idx, 0, sizeof *idx);
    mf_json_doc doc;
    if (mf_json_parse(&doc, text, len)) return idx_fail(idx, "%s: bad JSON: %s", what, doc.error);
    int rc = index_fill(idx, doc.root, what);
    mf_json_free(&doc);
    if (rc) {
        char keep[sizeof idx->err];
        memcpy(keep, idx->err, sizeof keep);
        mf_st_index_free(idx);
        memcpy(idx->err, keep, sizeof keep);
    }
    return rc;
}

void mf_st_index_free(mf_st_index *idx)
{
    for (size_t i = 0; i < idx->n_files; i++) free(idx->files[i]);
    for (size_t i = 0; i < idx->n_entries; i++) free(idx->entries[i].tensor);
    free(idx->files);
    free(idx->entries);
    memset(idx, 0, sizeof *idx);
}

/* Sharded checkpoint: open the index's files in its order (so shard i of
 * st is file i of the index), then make sure each listed tensor is in the
 * shard the index says. */
static int open_index(mf_safetensors *st, const char *dir, const char *index_path)
{
    size_t len;
    char *text = mf_read_file(index_path, &len);
    if (!text) return st_fail(st, "%s: cannot read", index_path);
    mf_st_index idx;
    int rc = mf_st_index_parse(&idx, text, len, index_path);
    free(text);
    if (rc) return st_fail(st, "%s", idx.err);
    for (size_t i = 0; i < idx.n_files && !rc; i++) {
        char *path = join_path(dir, idx.files[i]);
        rc = path ? add_shard(st, path) : st_fail(st, "out of memory");
        free(path);
    }
    if (!rc) rc = finish(st);
    for (size_t i = 0; i < idx.n_entries && !rc; i++) {
        const mf_st_index_entry *e = &idx.entries[i];
        const mf_st_tensor *t = mf_st_find(st, e->tensor);
        if (!t)
            rc = st_fail(st, "%s: tensor %s is missing from shard %s", index_path, e->tensor,
                         idx.files[e->shard]);
        else if (t->shard != e->shard)
            rc = st_fail(st, "%s: tensor %s is in %s, not in %s as the index says", index_path,
                         e->tensor, idx.files[t->shard], idx.files[e->shard]);
    }
    mf_st_index_free(&idx);
    return rc;
}

int mf_st_open(mf_safetensors *st, const char *dir)
{
    memset(st, 0, sizeof *st);
    char *index = join_path(dir, "model.safetensors.index.json");
    char *single = join_path(dir, "model.safetensors");
    int rc;
    if (!index || !single) {
        rc = st_fail(st, "out of memory");
    } else {
        FILE *f = fopen(index, "rb");
        if (f) {
            fclose(f);
            rc = open_index(st, dir, index);
        } else {
            f = fopen(single, "rb");
            if (f) {
                fclose(f);
                rc = add_shard(st, single);
                if (!rc) rc = finish(st);
            } else {
                rc = st_fail(st, "%s: no model.safetensors or model.safetensors.index.json", dir);
            }
        }
    }
    free(index);
    free(single);
    return rc ? fail_close(st) : 0;
}

void mf_st_close(mf_safetensors *st)
{
    for (size_t i = 0; i < st->n_tensors; i++) free(st->tensors[i].name);
    for (size_t i = 0; i < st->n_shards; i++) {
        if (st->shards[i].f) fclose(st->shards[i].f);
        free(st->shards[i].path);
    }
    free(st->tensors);
    free(st->shards);
    memset(st, 0, sizeof *st);
}

const mf_st_tensor *mf_st_find(const mf_safetensors *st, const char *name)
{
    if (!st->n_tensors) return NULL;
    mf_st_tensor key;
    memset(&key, 0, sizeof key);
    key.name = (char *)name;
    return bsearch(&key, st->tensors, st->n_tensors, sizeof key, cmp_tensor);
}

/* IEEE half to float, exact for every value (subnormals included). */
static float half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1Fu, man = h & 0x3FFu, u;
    if (exp == 0x1F) {
        u = sign | 0x7F800000u | (man << 13);
    } else if (exp) {
        u = sign | ((exp + 112) << 23) | (man << 13);
    } else if (man) {
        /* Subnormal: shift the mantissa up until its leading one is implicit. */
        int e = -1;
        do {
            man <<= 1;
            e++;
        } while (!(man & 0x400u));
        u = sign | ((uint32_t)(112 - e) << 23) | ((man & 0x3FFu) << 13);
    } else {
        u = sign;
    }
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

int mf_st_read_f32_range(mf_safetensors *st, const mf_st_tensor *t, uint64_t first,
                         uint64_t count, float *out)
{
    if (t->dtype == MF_ST_OTHER)
        return st_fail(st, "tensor %s has dtype %s; only F32, F16 and BF16 are supported", t->name,
                       t->dtype_name);
    if (first > t->numel || count > t->numel - first)
        return st_fail(st, "tensor %s: elements [%llu, +%llu) outside its %llu elements", t->name,
                       (unsigned long long)first, (unsigned long long)count,
                       (unsigned long long)t->numel);
    const mf_st_shard *sh = &st->shards[t->shard];
    uint64_t off = sh->data_start + t->begin + first * t->elem_bytes;
    if (!sh->mem && fseeko(sh->f, (off_t)off, SEEK_SET) != 0)
        return st_fail(st, "%s: cannot seek to tensor %s", sh->path, t->name);
    uint8_t buf[1 << 16];
    size_t per = sizeof buf / t->elem_bytes;
    for (uint64_t done = 0; done < count;) {
        size_t n = count - done < per ? (size_t)(count - done) : per;
        size_t bytes = n * t->elem_bytes;
        /* A memory shard's ranges were checked against its length at open. */
        const uint8_t *src = sh->mem ? sh->mem + off + done * t->elem_bytes : buf;
        if (!sh->mem && fread(buf, 1, bytes, sh->f) != bytes)
            return st_fail(st, "%s: short read in tensor %s (file truncated?)", sh->path, t->name);
        float *o = out + done;
        for (size_t i = 0; i < n; i++) {
            const uint8_t *p = src + i * t->elem_bytes;
            if (t->dtype == MF_ST_F32) {
                uint32_t u = (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
                             ((uint32_t)p[3] << 24);
                memcpy(&o[i], &u, 4);
            } else if (t->dtype == MF_ST_BF16) {
                uint32_t u = ((uint32_t)p[0] << 16) | ((uint32_t)p[1] << 24);
                memcpy(&o[i], &u, 4);
            } else {
                o[i] = half_to_float((uint16_t)(p[0] | (p[1] << 8)));
            }
        }
        done += n;
    }
    return 0;
}

int mf_st_read_f32(mf_safetensors *st, const mf_st_tensor *t, float *out)
{
    return mf_st_read_f32_range(st, t, 0, t->numel, out);
}

const char *mf_st_shape_str(const mf_st_tensor *t, char *buf, size_t cap)
{
    size_t n = 0;
    if (cap == 0) return buf;
    buf[0] = 0;
    n += (size_t)snprintf(buf + n, cap - n, "[");
    for (uint32_t i = 0; i < t->ndim && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%llu", i ? ", " : "", (unsigned long long)t->shape[i]);
    if (n < cap) snprintf(buf + n, cap - n, "]");
    return buf;
}
