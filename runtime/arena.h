/*
 * A bump allocator over the caller's arena. The same code lays out the
 * arena for real (mf_init) and counts it without writing (mf_arena_bytes):
 * in counting mode base is NULL, every allocation returns NULL and only
 * `used` advances, so both walk exactly the same sequence of sizes and
 * alignments.
 */
#ifndef MF_ARENA_H
#define MF_ARENA_H

#include <stddef.h>
#include <stdint.h>

#define MF_ARENA_ALIGN 64u /* cache line; every allocation starts on one */

typedef struct {
    uint8_t *base;   /* NULL = counting only */
    size_t cap;      /* bytes available from base (ignored when counting) */
    size_t used;     /* bytes laid out so far (offset of the next allocation) */
    int overflow;    /* an allocation did not fit */
} mf_arena;

/* Real arena over [mem, mem+bytes): base is mem rounded up to MF_ARENA_ALIGN. */
void mf_arena_init(mf_arena *a, void *mem, size_t bytes);
/* Counting arena. */
void mf_arena_init_count(mf_arena *a);

/* Allocates bytes (rounded up to MF_ARENA_ALIGN) and zeroes them; NULL when
 * counting or when the arena is full (then a->overflow is set). */
void *mf_arena_alloc(mf_arena *a, size_t bytes);

/* Total bytes the caller must provide for a layout of `used` bytes: the
 * layout plus the worst-case alignment slack at the start. */
static inline size_t mf_arena_total(size_t used) { return used + MF_ARENA_ALIGN - 1u; }

#endif
