/*
 * Shared by the libFuzzer harnesses (fuzz/fuzz_*.c) and by
 * tests/test_fuzz_regressions.c, which #includes each harness with
 * FUZZ_ENTRY renamed so that every input in fuzz/regressions/<target>/ is
 * replayed through the same code without libFuzzer.
 *
 * FUZZ_CHECK(cond) is an invariant the code under test promises; a
 * violation aborts, which libFuzzer reports as a crash like any
 * sanitizer finding.
 */
#ifndef MF_FUZZ_COMMON_H
#define MF_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../port/port.h"

#ifndef FUZZ_ENTRY
#define FUZZ_ENTRY LLVMFuzzerTestOneInput
#endif

#define FUZZ_CHECK(cond)                                                                  \
    do {                                                                                  \
        if (!(cond)) {                                                                    \
            fprintf(stderr, "%s:%d: invariant violated: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                                      \
        }                                                                                 \
    } while (0)

/* A flash device backed by the fuzz input: reads are bounds-checked
 * against the input's length (never past it, so ASan sees any overread
 * by the caller of the port rather than by the port), map() optional. */
typedef struct {
    const uint8_t *data;
    size_t size;
    int allow_map;
    uint64_t reads;
} fuzz_mem;

static int fuzz_mem_read(const mf_port *p, uint64_t off, void *dst, size_t len)
{
    fuzz_mem *m = (fuzz_mem *)p->ctx;
    FUZZ_CHECK(dst != NULL || len == 0);
    if (off > m->size || len > m->size - off) return MF_PORT_ERANGE;
    if (len) memcpy(dst, m->data + off, len);
    m->reads++;
    return MF_PORT_OK;
}

static const void *fuzz_mem_map(const mf_port *p, uint64_t off, size_t len)
{
    fuzz_mem *m = (fuzz_mem *)p->ctx;
    if (!m->allow_map || off > m->size || len > m->size - off) return NULL;
    return m->data + off;
}

static inline void fuzz_mem_port(mf_port *port, fuzz_mem *m, const uint8_t *data, size_t size,
                                 int allow_map)
{
    memset(port, 0, sizeof *port);
    m->data = data;
    m->size = size;
    m->allow_map = allow_map;
    m->reads = 0;
    port->ctx = m;
    port->size = size;
    port->page_size = 4096;
    port->read = fuzz_mem_read;
    port->map = fuzz_mem_map;
}

#endif
