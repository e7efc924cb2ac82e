/*
 * An expert store on its own, as mf_init builds one inside a model, for the
 * tests that make the forward pass's calls to it by hand (test_preempt,
 * test_faults, test_fallback). The header and the largest blob are read
 * through `image`; the store reads through `port` (the same port, or a
 * simulated or failing one wrapped around it). Laid out as mf_init does:
 * counted first, then placed in a heap block of exactly that size, so that
 * AddressSanitizer sees a write past it.
 */
#ifndef MF_TEST_STORE_FIXTURE_H
#define MF_TEST_STORE_FIXTURE_H

#include <stdlib.h>
#include <string.h>

#include "../experts/store.h"
#include "../runtime/arena.h"
#include "../runtime/image.h"

/* Reads the header into *h and lays the store *s (statistics into *st)
 * out in a new heap block *arena (free() it). 0, or -1 when the image or
 * the options are refused. */
static inline int mf_test_store_open(const mf_port *image, const mf_port *port, const mf_options *o,
                                     mf_image_header *h, mf_expert_store *s, mf_stats *st,
                                     void **arena)
{
    uint8_t scratch[512];
    size_t max_blob = 0;
    *arena = NULL;
    if (mf_image_read_header(image, h, 1, scratch, sizeof scratch) != MF_OK ||
        mf_store_max_blob(image, h, &max_blob) != MF_OK)
        return -1;
    mf_arena a;
    mf_arena_init_count(&a);
    if (mf_store_init(s, &a, port, h, o, 1, max_blob, st) != MF_OK) return -1;
    size_t bytes = mf_arena_total(a.used);
    if (!(*arena = calloc(1, bytes))) return -1;
    mf_arena_init(&a, *arena, bytes);
    return mf_store_init(s, &a, port, h, o, 1, max_blob, st) == MF_OK ? 0 : -1;
}

#endif
