/*
 * libFuzzer harness: tools/lib/safetensors.c. The reader only opens files
 * (mf_st_open_file takes a path), so each input is written to one temporary
 * file (in /dev/shm when it exists: no disk I/O) that is reopened per input.
 * A memory entry point (mf_st_open_mem) would make this faster; see
 * docs/reliability.md.
 *
 * On success: tensors sorted and unique, every byte range inside the data
 * area and consistent with shape x dtype size, lookup finds each tensor,
 * and the first elements of every convertible tensor can be read.
 * On failure: a non-empty one-line message.
 */
#include "fuzz_common.h"

#include <unistd.h>

#include "../tools/lib/safetensors.h"

static char fuzz_st_path[64];

static void fuzz_st_cleanup(void)
{
    if (fuzz_st_path[0]) unlink(fuzz_st_path);
}

static const char *fuzz_st_file(const uint8_t *data, size_t size)
{
    if (!fuzz_st_path[0]) {
        const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        snprintf(fuzz_st_path, sizeof fuzz_st_path, "%s/mf_fuzz_st_XXXXXX", dir);
        int fd = mkstemp(fuzz_st_path);
        FUZZ_CHECK(fd >= 0);
        close(fd);
        atexit(fuzz_st_cleanup);
    }
    FILE *f = fopen(fuzz_st_path, "wb");
    FUZZ_CHECK(f != NULL);
    FUZZ_CHECK(fwrite(data, 1, size, f) == size);
    FUZZ_CHECK(fclose(f) == 0);
    return fuzz_st_path;
}

int FUZZ_ENTRY(const uint8_t *data, size_t size)
{
    const char *path = fuzz_st_file(data, size);
    mf_safetensors st;
    if (mf_st_open_file(&st, path) != 0) {
        FUZZ_CHECK(memchr(st.err, '\0', sizeof st.err) != NULL);
        FUZZ_CHECK(st.err[0] != '\0');
        FUZZ_CHECK(st.tensors == NULL && st.shards == NULL);
        return 0;
    }
    FUZZ_CHECK(st.n_shards == 1);
    uint64_t data_bytes = st.shards[0].file_bytes - st.shards[0].data_start;
    FUZZ_CHECK(st.shards[0].data_start <= st.shards[0].file_bytes);
    FUZZ_CHECK(st.shards[0].file_bytes == size);
    for (size_t i = 0; i < st.n_tensors; i++) {
        const mf_st_tensor *t = &st.tensors[i];
        FUZZ_CHECK(t->name != NULL);
        if (i) FUZZ_CHECK(strcmp(st.tensors[i - 1].name, t->name) < 0);
        FUZZ_CHECK(t->begin <= t->end && t->end <= data_bytes);
        FUZZ_CHECK(t->ndim <= MF_ST_MAX_DIMS);
        FUZZ_CHECK(memchr(t->dtype_name, '\0', sizeof t->dtype_name) != NULL);
        if (t->elem_bytes) FUZZ_CHECK(t->end - t->begin == t->numel * t->elem_bytes);
        FUZZ_CHECK(mf_st_find(&st, t->name) == t);
        char shape[64];
        mf_st_shape_str(t, shape, sizeof shape);
        FUZZ_CHECK(memchr(shape, '\0', sizeof shape) != NULL);
        char tiny[3];
        mf_st_shape_str(t, tiny, sizeof tiny);
        FUZZ_CHECK(memchr(tiny, '\0', sizeof tiny) != NULL);

        /* Read up to 64 elements from the start and from the end. */
        float out[64];
        uint64_t n = t->numel < 64 ? t->numel : 64;
        int rc = mf_st_read_f32_range(&st, t, 0, n, out);
        if (t->dtype == MF_ST_OTHER) FUZZ_CHECK(rc != 0);
        else FUZZ_CHECK(rc == 0);
        if (t->dtype != MF_ST_OTHER) FUZZ_CHECK(mf_st_read_f32_range(&st, t, t->numel - n, n, out) == 0);
        /* Past the end must fail cleanly. */
        FUZZ_CHECK(mf_st_read_f32_range(&st, t, t->numel, 1, out) != 0);
        FUZZ_CHECK(mf_st_read_f32_range(&st, t, UINT64_MAX, 2, out) != 0);
    }
    FUZZ_CHECK(mf_st_find(&st, "no such tensor \x01") == NULL);
    mf_st_close(&st);
    return 0;
}
