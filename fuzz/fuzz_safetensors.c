/*
 * libFuzzer harness: tools/lib/safetensors.c. Each input is a whole
 * .safetensors file opened from memory (mf_st_open_mem, the same header
 * checks as mf_st_open_file), so reads of tensor data come straight from
 * the input and ASan sees any access past its end.
 *
 * On success: tensors sorted and unique, every byte range inside the data
 * area and consistent with shape x dtype size, lookup finds each tensor,
 * and the first elements of every convertible tensor can be read.
 * On failure: a non-empty one-line message, nothing left allocated.
 */
#include "fuzz_common.h"

#include "../tools/lib/safetensors.h"

int FUZZ_ENTRY(const uint8_t *data, size_t size)
{
    mf_safetensors st;
    if (mf_st_open_mem(&st, data, size) != 0) {
        FUZZ_CHECK(memchr(st.err, '\0', sizeof st.err) != NULL);
        FUZZ_CHECK(st.err[0] != '\0');
        FUZZ_CHECK(!strchr(st.err, '\n') && !strchr(st.err, '\r'));
        FUZZ_CHECK(st.tensors == NULL && st.shards == NULL);
        return 0;
    }
    FUZZ_CHECK(st.n_shards == 1 && st.shards[0].mem == data && st.shards[0].f == NULL);
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
        if (t->dtype == MF_ST_OTHER) FUZZ_CHECK(rc != 0 && !strchr(st.err, '\n'));
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
