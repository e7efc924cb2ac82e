/* Bump allocator over the caller's arena (see arena.h). */
#include "arena.h"

#include <string.h>

static size_t round_up(size_t n) { return (n + MF_ARENA_ALIGN - 1u) & ~(size_t)(MF_ARENA_ALIGN - 1u); }

void mf_arena_init(mf_arena *a, void *mem, size_t bytes)
{
    uintptr_t p = (uintptr_t)mem;
    uintptr_t q = (p + MF_ARENA_ALIGN - 1u) & ~(uintptr_t)(MF_ARENA_ALIGN - 1u);
    size_t skip = (size_t)(q - p);
    a->base = (uint8_t *)mem + skip;
    a->cap = bytes > skip ? bytes - skip : 0;
    a->used = 0;
    a->overflow = (mem == NULL);
}

void mf_arena_init_count(mf_arena *a)
{
    a->base = NULL;
    a->cap = 0;
    a->used = 0;
    a->overflow = 0;
}

void *mf_arena_alloc(mf_arena *a, size_t bytes)
{
    size_t n = round_up(bytes);
    if (n < bytes || a->used + n < a->used) { /* size_t overflow */
        a->overflow = 1;
        a->used = (size_t)-1;
        return NULL;
    }
    size_t off = a->used;
    a->used += n;
    if (!a->base) return NULL;
    if (a->used > a->cap) {
        a->overflow = 1;
        return NULL;
    }
    memset(a->base + off, 0, n);
    return a->base + off;
}
