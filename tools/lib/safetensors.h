/*
 * Reading Hugging Face safetensors checkpoints (host only).
 *
 * A checkpoint folder holds either one `model.safetensors` or a
 * `model.safetensors.index.json` whose `weight_map` names the shard file of
 * every tensor. Each file is: u64 little-endian header length N, N bytes of
 * JSON {"name": {"dtype", "shape", "data_offsets": [begin, end]}, ...,
 * "__metadata__": {...}}, then the data area the offsets are relative to.
 *
 * mf_st_open validates every header up front (lengths, JSON, offsets inside
 * the data area and consistent with shape x dtype size), so later reads only
 * fail on I/O errors or unsupported dtypes. Every failure leaves a one-line
 * message in st->err. The same header checks serve files and memory
 * buffers (mf_st_open_mem), and the index is parsed by a function of its
 * text alone (mf_st_index_parse), so both can be fuzzed without files.
 */
#ifndef MF_SAFETENSORS_H
#define MF_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define MF_ST_MAX_DIMS 8

typedef enum {
    MF_ST_F32 = 0,
    MF_ST_F16,
    MF_ST_BF16,
    MF_ST_OTHER /* a valid safetensors dtype we cannot convert (see dtype_name) */
} mf_st_dtype;

typedef struct {
    char *name;
    int dtype;            /* mf_st_dtype */
    char dtype_name[16];  /* as written in the file: "BF16", "I64", ... */
    uint32_t elem_bytes;
    uint32_t ndim;
    uint64_t shape[MF_ST_MAX_DIMS];
    uint64_t numel;
    uint64_t begin, end;  /* byte range inside the shard's data area */
    uint32_t shard;       /* index into mf_safetensors.shards */
} mf_st_tensor;

typedef struct {
    char *path;           /* "<memory>" for mf_st_open_mem */
    FILE *f;              /* NULL when the shard is a memory buffer */
    const uint8_t *mem;   /* the whole buffer (length file_bytes), not owned */
    uint64_t file_bytes;
    uint64_t data_start;  /* 8 + header length */
} mf_st_shard;

typedef struct {
    mf_st_tensor *tensors; /* sorted by name */
    size_t n_tensors;
    mf_st_shard *shards;
    size_t n_shards;
    char err[320];
} mf_safetensors;

/* Opens dir/model.safetensors.index.json if present, else
 * dir/model.safetensors. 0 on success; -1 with st->err set. */
int mf_st_open(mf_safetensors *st, const char *dir);
/* Opens one .safetensors file (used by tests and by mf_st_open). */
int mf_st_open_file(mf_safetensors *st, const char *path);
/* The same from a whole .safetensors file held in memory: one shard whose
 * reads copy from data, which must stay valid until mf_st_close. */
int mf_st_open_mem(mf_safetensors *st, const void *data, size_t len);
void mf_st_close(mf_safetensors *st);

/* The tensor of that name, or NULL. */
const mf_st_tensor *mf_st_find(const mf_safetensors *st, const char *name);

/* Reads elements [first, first + count) of a tensor (row-major order),
 * converted to f32. Only F32, F16 and BF16 are supported; any other dtype
 * fails with a message naming it. 0 or -1 with st->err set. */
int mf_st_read_f32_range(mf_safetensors *st, const mf_st_tensor *t, uint64_t first,
                         uint64_t count, float *out);
/* The whole tensor: out holds t->numel floats. */
int mf_st_read_f32(mf_safetensors *st, const mf_st_tensor *t, float *out);

/* A parsed model.safetensors.index.json: the distinct shard file names, in
 * order of first appearance, and the weight map sorted by tensor name.
 * mf_st_open opens the shards in this order, so entry.shard is also the
 * index into mf_safetensors.shards. */
typedef struct {
    char *tensor;
    uint32_t shard;       /* index into files */
} mf_st_index_entry;

typedef struct {
    char **files;         /* plain names: no '/', '\\', NUL, not "", "." or ".." */
    size_t n_files;
    mf_st_index_entry *entries;
    size_t n_entries;     /* >= 1, names unique */
    char err[320];
} mf_st_index;

/* Parses index JSON text (len bytes, no NUL needed); `what` names it in
 * messages. 0, or -1 with idx->err set and nothing left to free. */
int mf_st_index_parse(mf_st_index *idx, const char *text, size_t len, const char *what);
void mf_st_index_free(mf_st_index *idx);

/* "[96, 64]" into buf. */
const char *mf_st_shape_str(const mf_st_tensor *t, char *buf, size_t cap);

#endif
