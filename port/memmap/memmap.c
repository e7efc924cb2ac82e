#include "memmap.h"

#include <string.h>

#if defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 1)
#include <arm_mve.h>
#endif

/* The copy out of the mapped window. On Helium cores 16 bytes per
 * load/store pair at any alignment: 0.23 executed instructions per byte in
 * the mps3-an547 bench, a third of newlib-nano's memcpy on the same reads
 * (0.45 against 1.36 when each read was copied twice, before poll stopped
 * releasing tickets); elsewhere memcpy. */
static void mm_copy(void *dst, const void *src, size_t n)
{
#if defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 1)
    uint8_t *d = (uint8_t *)dst;
    const uint8_t *s = (const uint8_t *)src;
    for (; n >= 16; n -= 16, d += 16, s += 16) vstrbq_u8(d, vldrbq_u8(s));
    if (n) {
        mve_pred16_t p = vctp8q((uint32_t)n);
        vstrbq_p_u8(d, vldrbq_z_u8(s, p), p);
    }
#else
    memcpy(dst, src, n);
#endif
}

static int mm_read(const mf_port *p, uint64_t off, void *dst, size_t len)
{
    mf_memmap_ctx *c = (mf_memmap_ctx *)p->ctx;
    if (!c || (!dst && len)) return MF_PORT_EINVAL;
    if (off > c->size || len > c->size - off) return MF_PORT_ERANGE;
    mm_copy(dst, c->base + off, len);
    c->reads++;
    c->bytes_read += len;
    return MF_PORT_OK;
}

static const void *mm_map(const mf_port *p, uint64_t off, size_t len)
{
    const mf_memmap_ctx *c = (const mf_memmap_ctx *)p->ctx;
    if (!c || off > c->size || len > c->size - off) return NULL;
    return c->base + off;
}

static int mm_read_start(const mf_port *p, uint64_t off, void *dst, size_t len, int *ticket)
{
    mf_memmap_ctx *c = (mf_memmap_ctx *)p->ctx;
    if (!c || !ticket || (!dst && len)) return MF_PORT_EINVAL;
    if (off > c->size || len > c->size - off) return MF_PORT_ERANGE;
    uint32_t n = p->queue_depth;
    for (uint32_t i = 0; i < n; i++) {
        if (c->inflight[i]) continue;
        if (c->dma) {
            int r = c->dma->start(c->dma->ctx, i, dst, c->base + off, len);
            if (r < 0) return r;
            c->status[i] = MF_PORT_EPENDING;
        } else {
            mm_copy(dst, c->base + off, len);
            c->status[i] = MF_PORT_OK;
        }
        c->inflight[i] = 1;
        c->len[i] = len;
        c->reads++;
        c->bytes_read += len;
        *ticket = (int)i;
        return MF_PORT_OK;
    }
    return MF_PORT_EBUSY;
}

/* Never releases the ticket (port.h): the runtime polls a read it will
 * wait for later. */
static int mm_poll(const mf_port *p, int ticket)
{
    mf_memmap_ctx *c = (mf_memmap_ctx *)p->ctx;
    if (!c || ticket < 0 || (uint32_t)ticket >= p->queue_depth || !c->inflight[ticket])
        return MF_PORT_EINVAL;
    if (c->status[ticket] == MF_PORT_EPENDING) {
        int b = c->dma->busy(c->dma->ctx, (uint32_t)ticket);
        if (b > 0) return MF_PORT_EPENDING;
        c->status[ticket] = (int8_t)(b < 0 ? MF_PORT_EIO : MF_PORT_OK);
    }
    return c->status[ticket];
}

static int mm_wait(const mf_port *p, int ticket)
{
    int r;
    while ((r = mm_poll(p, ticket)) == MF_PORT_EPENDING) {
    }
    if (r != MF_PORT_EINVAL) ((mf_memmap_ctx *)p->ctx)->inflight[ticket] = 0;
    return r;
}

/* With the DMA engine's written(): returns once the first `need` bytes
 * have landed, or the transfer has ended (its result). */
static int mm_wait_part(const mf_port *p, int ticket, size_t need)
{
    mf_memmap_ctx *c = (mf_memmap_ctx *)p->ctx;
    if (!c || ticket < 0 || (uint32_t)ticket >= p->queue_depth || !c->inflight[ticket] ||
        need > c->len[ticket])
        return MF_PORT_EINVAL;
    for (;;) {
        int r = mm_poll(p, ticket);
        if (r != MF_PORT_EPENDING) return r;
        size_t done = 0;
        if (c->dma->written(c->dma->ctx, (uint32_t)ticket, &done) == 0 && done >= need)
            return MF_PORT_OK;
    }
}

/* With the DMA engine's abort: stop the channel, report what it wrote.
 * Without: the copy has happened (memcpy) or is waited for. */
static int mm_cancel(const mf_port *p, int ticket, size_t *done)
{
    mf_memmap_ctx *c = (mf_memmap_ctx *)p->ctx;
    if (!c || !done || ticket < 0 || (uint32_t)ticket >= p->queue_depth || !c->inflight[ticket])
        return MF_PORT_EINVAL;
    *done = 0;
    if (c->status[ticket] == MF_PORT_EPENDING && c->dma->abort) {
        size_t d = 0;
        int r = c->dma->abort(c->dma->ctx, (uint32_t)ticket, &d);
        c->inflight[ticket] = 0;
        if (r < 0) return MF_PORT_EIO;
        *done = d < c->len[ticket] ? d : c->len[ticket];
        return MF_PORT_OK;
    }
    int r = mm_wait(p, ticket);
    if (r == MF_PORT_OK) *done = c->len[ticket];
    return r;
}

static uint64_t mm_now(const mf_port *p)
{
    const mf_memmap_ctx *c = (const mf_memmap_ctx *)p->ctx;
    return (c && c->clock_ns) ? c->clock_ns() : 0;
}

uint64_t mf_memmap_image_bytes(const void *base, uint64_t window)
{
    const uint8_t *b = (const uint8_t *)base;
    static const char magic[8] = {'M', 'O', 'E', 'F', 'L', 'S', 'H', '1'};
    if (!b || window < 24 || memcmp(b, magic, 8) != 0) return 0;
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = (n << 8) | b[16 + i];
    return n <= window ? n : 0;
}

int mf_memmap_port_init(mf_port *port, mf_memmap_ctx *ctx, const void *base, uint64_t size,
                        uint32_t page_size, uint32_t queue_depth, const mf_memmap_dma *dma,
                        uint64_t (*clock_ns)(void))
{
    if (!port || !ctx || !base) return MF_PORT_EINVAL;
    if (dma && (!dma->start || !dma->busy)) return MF_PORT_EINVAL;
    memset(ctx, 0, sizeof *ctx);
    ctx->base = (const uint8_t *)base;
    ctx->size = size;
    ctx->dma = dma;
    ctx->clock_ns = clock_ns;
    if (queue_depth > MF_MEMMAP_MAX_QUEUE) queue_depth = MF_MEMMAP_MAX_QUEUE;
    if (dma && queue_depth > dma->channels) queue_depth = dma->channels;

    memset(port, 0, sizeof *port);
    port->ctx = ctx;
    port->size = size;
    port->page_size = page_size ? page_size : 4096u;
    port->queue_depth = queue_depth;
    port->read = mm_read;
    if (queue_depth) {
        port->read_start = mm_read_start;
        port->poll = mm_poll;
        port->wait = mm_wait;
        port->cancel = mm_cancel;
        if (dma && dma->written) port->wait_part = mm_wait_part;
    }
    port->map = mm_map;
    port->now_ns = mm_now;
    return MF_PORT_OK;
}
