/*
 * libFuzzer harness: the sharded checkpoint index of tools/lib/safetensors.c
 * (model.safetensors.index.json text -> shard files and weight map, through
 * mf_st_index_parse, which mf_st_open uses before opening any shard).
 *
 * On success, checked against the input re-parsed with json.c: one entry
 * per weight_map member, found by name, naming the member's file; entries
 * sorted and unique; files distinct, plain names (nothing that leaves the
 * checkpoint folder), numbered in order of first appearance, each used.
 * On failure: a non-empty one-line message and nothing left allocated.
 */
#include "fuzz_common.h"

#include "../tools/lib/json.h"
#include "../tools/lib/safetensors.h"

static int fuzz_idx_cmp_entry(const void *a, const void *b)
{
    return strcmp(((const mf_st_index_entry *)a)->tensor, ((const mf_st_index_entry *)b)->tensor);
}

static int fuzz_idx_cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int FUZZ_ENTRY(const uint8_t *data, size_t size)
{
    mf_st_index idx;
    memset(&idx, 0x5A, sizeof idx); /* the parser must not rely on a zeroed struct */
    if (mf_st_index_parse(&idx, (const char *)data, size, "index") != 0) {
        FUZZ_CHECK(memchr(idx.err, '\0', sizeof idx.err) != NULL);
        FUZZ_CHECK(idx.err[0] != '\0');
        FUZZ_CHECK(!strchr(idx.err, '\n') && !strchr(idx.err, '\r'));
        FUZZ_CHECK(idx.files == NULL && idx.entries == NULL && !idx.n_files && !idx.n_entries);
        return 0;
    }
    FUZZ_CHECK(idx.n_entries >= 1 && idx.n_files >= 1 && idx.n_files <= idx.n_entries);
    for (size_t i = 0; i < idx.n_files; i++) {
        const char *f = idx.files[i];
        FUZZ_CHECK(f != NULL && f[0] != '\0');
        FUZZ_CHECK(!strchr(f, '/') && !strchr(f, '\\') && strcmp(f, ".") && strcmp(f, ".."));
    }
    char **sorted = malloc(idx.n_files * sizeof *sorted);
    FUZZ_CHECK(sorted != NULL);
    memcpy(sorted, idx.files, idx.n_files * sizeof *sorted);
    qsort(sorted, idx.n_files, sizeof *sorted, fuzz_idx_cmp_str);
    for (size_t i = 1; i < idx.n_files; i++) FUZZ_CHECK(strcmp(sorted[i - 1], sorted[i]) < 0);
    free(sorted);
    for (size_t i = 0; i < idx.n_entries; i++) {
        FUZZ_CHECK(idx.entries[i].tensor != NULL);
        FUZZ_CHECK(idx.entries[i].shard < idx.n_files);
        if (i) FUZZ_CHECK(strcmp(idx.entries[i - 1].tensor, idx.entries[i].tensor) < 0);
    }

    mf_json_doc doc;
    FUZZ_CHECK(mf_json_parse(&doc, (const char *)data, size) == 0);
    const mf_json *map = mf_json_get(doc.root, "weight_map");
    FUZZ_CHECK(map != NULL && map->count == idx.n_entries);
    size_t next_new = 0;
    for (const mf_json *m = map->child; m; m = m->next) {
        FUZZ_CHECK(m->type == MF_JSON_STRING);
        mf_st_index_entry key = {(char *)m->key, 0};
        const mf_st_index_entry *e =
            bsearch(&key, idx.entries, idx.n_entries, sizeof key, fuzz_idx_cmp_entry);
        FUZZ_CHECK(e != NULL);
        FUZZ_CHECK(!strcmp(idx.files[e->shard], m->str) && strlen(m->str) == m->str_len);
        FUZZ_CHECK(e->shard <= next_new);
        if (e->shard == next_new) next_new++;
    }
    FUZZ_CHECK(next_new == idx.n_files);
    mf_json_free(&doc);
    mf_st_index_free(&idx);
    FUZZ_CHECK(idx.files == NULL && idx.entries == NULL);
    return 0;
}
