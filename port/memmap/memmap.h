/*
 * A moeflash port for memory-mapped (XIP) flash: the image sits at a fixed
 * bus address, `read` is a memcpy from it, `map` returns a pointer into it so
 * tables can be used in place, and asynchronous reads either complete at once
 * (memcpy inside read_start) or go to a board's DMA engine through the
 * optional mf_memmap_dma hooks. No heap; all state is in mf_memmap_ctx.
 */
#ifndef MF_MEMMAP_H
#define MF_MEMMAP_H

#include <stddef.h>
#include <stdint.h>

#include "../port.h"

#define MF_MEMMAP_MAX_QUEUE 8

/* A board's DMA engine (optional). start() begins copying len bytes from src
 * to dst on a channel and returns 0, or a negative MF_PORT_E* code; busy()
 * returns 1 while the transfer is running, 0 when done, < 0 on a bus error.
 * abort() (optional) stops the channel and sets *done to the bytes already
 * written to dst (0..len), 0 or < 0 on a bus error; with it the port can
 * cancel (port.h), so a demand read overtakes a speculative one.
 * written() (optional) sets *done to the bytes already in dst while the
 * transfer runs (a remaining-count register; never more than have landed)
 * and returns 0, or < 0 when it cannot say; with it the port can wait for
 * part of a read (port.h wait_part), so an expert computes as it arrives. */
typedef struct {
    void *ctx;
    int (*start)(void *ctx, uint32_t channel, void *dst, const void *src, size_t len);
    int (*busy)(void *ctx, uint32_t channel);
    uint32_t channels;
    int (*abort)(void *ctx, uint32_t channel, size_t *done);
    int (*written)(void *ctx, uint32_t channel, size_t *done);
} mf_memmap_dma;

typedef struct {
    const uint8_t *base;
    uint64_t size;
    const mf_memmap_dma *dma; /* NULL: memcpy */
    uint64_t (*clock_ns)(void); /* NULL: now_ns returns 0 */
    /* ticket bookkeeping: slot i in use when inflight[i] != 0 */
    uint8_t inflight[MF_MEMMAP_MAX_QUEUE];
    int8_t status[MF_MEMMAP_MAX_QUEUE];
    size_t len[MF_MEMMAP_MAX_QUEUE];
    uint64_t reads, bytes_read;
} mf_memmap_ctx;

/* Fills *port for `size` bytes mapped at `base`. queue_depth is capped at
 * MF_MEMMAP_MAX_QUEUE (and the DMA channel count when dma != NULL). */
int mf_memmap_port_init(mf_port *port, mf_memmap_ctx *ctx, const void *base, uint64_t size,
                        uint32_t page_size, uint32_t queue_depth, const mf_memmap_dma *dma,
                        uint64_t (*clock_ns)(void));

/* Image size from the header at `base` (u64 at offset 16 of a moeflash image),
 * or 0 when `base` does not start with the magic. Lets a board shrink the
 * port to the image actually flashed. */
uint64_t mf_memmap_image_bytes(const void *base, uint64_t window);

#endif
