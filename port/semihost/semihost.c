/*
 * A moeflash port over Arm semihosting file I/O: the image is a file on the
 * host (debugger or QEMU); reads are SYS_SEEK + SYS_READ. Synchronous only
 * (read_start == NULL): a semihosting call blocks the core until the host
 * answers, so there is nothing to overlap with.
 */
#include "semihost.h"

static int sh_read(const mf_port *p, uint64_t off, void *dst, size_t len)
{
    mf_semihost_ctx *c = (mf_semihost_ctx *)p->ctx;
    if (!c || c->fd < 0) return MF_PORT_EINVAL;
    if (off > c->size || len > c->size - off) return MF_PORT_ERANGE;
    if (off > 0xFFFFFFFFu) return MF_PORT_ERANGE; /* SYS_SEEK takes 32 bits */
    if (c->pos != off) {
        if (mf_sh_seek(c->fd, (uint32_t)off) != 0) {
            c->pos = ~(uint64_t)0;
            return MF_PORT_EIO;
        }
        c->seeks++;
        c->pos = off;
    }
    uint8_t *d = (uint8_t *)dst;
    size_t done = 0;
    while (done < len) {
        uint32_t chunk = (len - done) > 0x40000000u ? 0x40000000u : (uint32_t)(len - done);
        int32_t left = mf_sh_read(c->fd, d + done, chunk);
        if (left < 0 || (uint32_t)left > chunk) {
            c->pos = ~(uint64_t)0;
            return MF_PORT_EIO;
        }
        done += chunk - (uint32_t)left;
        c->pos += chunk - (uint32_t)left;
        if (left != 0) return MF_PORT_ESHORT;
    }
    c->reads++;
    c->bytes_read += len;
    return MF_PORT_OK;
}

uint64_t mf_semihost_now_ns(const mf_port *p)
{
    const mf_semihost_ctx *c = p ? (const mf_semihost_ctx *)p->ctx : 0;
    uint32_t f = c ? c->tickfreq : 0;
    if (!f) return 0;
    uint64_t t = mf_sh_elapsed();
    /* t / f seconds, in ns, without overflowing for realistic uptimes */
    return (t / f) * 1000000000ull + ((t % f) * 1000000000ull) / f;
}

static void sh_log(const mf_port *p, const char *line)
{
    (void)p;
    mf_sh_call(MF_SH_SYS_WRITE0, (void *)(uintptr_t)line);
    mf_sh_call(MF_SH_SYS_WRITE0, (void *)(uintptr_t)"\n");
}

int mf_semihost_port_open(mf_port *port, mf_semihost_ctx *ctx, const char *path,
                          uint32_t page_size)
{
    if (!port || !ctx || !path) return MF_PORT_EINVAL;
    int32_t fd = mf_sh_open(path, MF_SH_MODE_RB);
    if (fd < 0) return MF_PORT_EIO;
    int32_t len = mf_sh_flen(fd);
    if (len < 0) {
        mf_sh_close(fd);
        return MF_PORT_EIO;
    }
    ctx->fd = fd;
    ctx->size = (uint64_t)(uint32_t)len;
    ctx->pos = 0;
    ctx->tickfreq = mf_sh_tickfreq();
    ctx->reads = ctx->bytes_read = ctx->seeks = 0;

    port->ctx = ctx;
    port->size = ctx->size;
    port->page_size = page_size ? page_size : 4096u;
    port->queue_depth = 0;
    port->read = sh_read;
    port->read_start = 0;
    port->poll = 0;
    port->wait = 0;
    port->map = 0;
    port->now_ns = mf_semihost_now_ns;
    port->charge_compute = 0;
    port->log = sh_log;
    port->cancel = 0;
    port->wait_part = 0;
    return MF_PORT_OK;
}

void mf_semihost_port_close(mf_port *port)
{
    if (!port || !port->ctx) return;
    mf_semihost_ctx *c = (mf_semihost_ctx *)port->ctx;
    if (c->fd >= 0) mf_sh_close(c->fd);
    c->fd = -1;
}
