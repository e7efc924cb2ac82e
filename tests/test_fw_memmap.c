/*
 * port/memmap (the firmware's memory-mapped flash port) on the host: reads
 * are the bytes at base+off, map() points into the window, range checks,
 * the image-size probe from the header, and asynchronous reads both without
 * DMA (complete at start) and through a fake DMA engine that stays busy for
 * a few polls and can report a bus error.
 */
#include <string.h>

#include "../port/memmap/memmap.c"
#include "harness.h"

static uint8_t flash[8192];

/* fake DMA: copies at start, reports busy for `delay` polls */
typedef struct {
    int busy_left[4];
    int fail_channel;
    int starts;
    size_t abort_done; /* what abort() reports as written */
} fake_dma;

static int fd_start(void *ctx, uint32_t ch, void *dst, const void *src, size_t len)
{
    fake_dma *f = (fake_dma *)ctx;
    memcpy(dst, src, len);
    f->busy_left[ch] = 3;
    f->starts++;
    return 0;
}

static int fd_abort(void *ctx, uint32_t ch, size_t *done)
{
    fake_dma *f = (fake_dma *)ctx;
    f->busy_left[ch] = 0;
    *done = f->abort_done;
    return (int)ch == f->fail_channel ? -1 : 0;
}

static int fd_busy(void *ctx, uint32_t ch)
{
    fake_dma *f = (fake_dma *)ctx;
    if ((int)ch == f->fail_channel) return -1;
    if (f->busy_left[ch] > 0) {
        f->busy_left[ch]--;
        return 1;
    }
    return 0;
}

int main(void)
{
    for (size_t i = 0; i < sizeof flash; i++) flash[i] = (uint8_t)(i * 7u + 3u);
    mf_port p;
    mf_memmap_ctx c;
    uint8_t buf[300];

    CHECK(mf_memmap_port_init(&p, &c, flash, sizeof flash, 0, 4, NULL, NULL) == MF_PORT_OK, "init");
    CHECK(p.page_size == 4096 && p.size == sizeof flash && p.queue_depth == 4, "geometry");
    CHECK(mf_port_read(&p, 1000, buf, 300) == MF_PORT_OK, "read");
    CHECK(memcmp(buf, flash + 1000, 300) == 0, "read bytes");
    CHECK(mf_port_read(&p, sizeof flash - 10, buf, 11) == MF_PORT_ERANGE, "read past end");
    CHECK(p.read(&p, sizeof flash - 10, buf, 11) == MF_PORT_ERANGE, "callback checks range too");
    CHECK(mf_port_map(&p, 4096, 100) == flash + 4096, "map in place");
    CHECK(mf_port_map(&p, 8190, 3) == NULL, "map past end");
    CHECK(mf_port_now_ns(&p) == 0, "no clock");

    /* async without DMA: complete at start; tickets recycle; queue full */
    int t[5];
    for (int i = 0; i < 4; i++)
        CHECK(p.read_start(&p, (uint64_t)(100 * i), buf + 10 * i, 10, &t[i]) == MF_PORT_OK, "start %d", i);
    CHECK(p.read_start(&p, 0, buf, 1, &t[4]) == MF_PORT_EBUSY, "queue full");
    CHECK(p.poll(&p, t[2]) == MF_PORT_OK, "poll done");
    CHECK(p.poll(&p, t[2]) == MF_PORT_EINVAL, "ticket is freed after completion");
    CHECK(p.wait(&p, t[0]) == MF_PORT_OK && p.wait(&p, t[1]) == MF_PORT_OK && p.wait(&p, t[3]) == MF_PORT_OK,
          "wait");
    for (int i = 0; i < 4; i++) CHECK(memcmp(buf + 10 * i, flash + 100 * i, 10) == 0, "async bytes %d", i);
    CHECK(p.read_start(&p, 8000, buf, 500, &t[0]) == MF_PORT_ERANGE, "async range");

    /* async through the fake DMA */
    fake_dma f = {{0, 0, 0, 0}, -1, 0, 0};
    mf_memmap_dma dma = {&f, fd_start, fd_busy, 2, NULL};
    CHECK(mf_memmap_port_init(&p, &c, flash, sizeof flash, 512, 8, &dma, NULL) == MF_PORT_OK, "init dma");
    CHECK(p.queue_depth == 2, "queue depth capped by channels");
    memset(buf, 0, sizeof buf);
    CHECK(p.read_start(&p, 2000, buf, 64, &t[0]) == MF_PORT_OK, "dma start");
    CHECK(p.poll(&p, t[0]) == MF_PORT_EPENDING, "dma pending");
    CHECK(p.wait(&p, t[0]) == MF_PORT_OK, "dma wait");
    CHECK(memcmp(buf, flash + 2000, 64) == 0, "dma bytes");
    f.fail_channel = 0;
    CHECK(p.read_start(&p, 0, buf, 8, &t[1]) == MF_PORT_OK, "dma start 2");
    CHECK(p.wait(&p, t[1]) == MF_PORT_EIO, "bus error reported");

    /* cancel: memcpy reads are complete (all bytes); a DMA with abort()
     * reports what it wrote and frees the channel; without abort() the
     * transfer is waited for. */
    {
        mf_memmap_ctx c2;
        uint8_t b2[256];
        size_t done = 99;
        int t2;
        CHECK(mf_memmap_port_init(&p, &c2, flash, sizeof flash, 0, 2, NULL, NULL) == MF_PORT_OK &&
                  p.cancel != NULL, "memcpy port can cancel");
        CHECK(p.read_start(&p, 10, b2, 100, &t2) == MF_PORT_OK &&
                  p.cancel(&p, t2, &done) == MF_PORT_OK && done == 100 &&
                  memcmp(b2, flash + 10, 100) == 0,
              "memcpy cancel: all bytes");
        CHECK(p.cancel(&p, t2, &done) == MF_PORT_EINVAL && p.cancel(&p, t2, NULL) == MF_PORT_EINVAL,
              "released ticket, NULL done");
        fake_dma f2 = {{0, 0, 0, 0}, -1, 0, 48};
        mf_memmap_dma d2 = {&f2, fd_start, fd_busy, 2, fd_abort};
        CHECK(mf_memmap_port_init(&p, &c2, flash, sizeof flash, 0, 2, &d2, NULL) == MF_PORT_OK,
              "init dma+abort");
        CHECK(p.read_start(&p, 0, b2, 200, &t2) == MF_PORT_OK &&
                  p.cancel(&p, t2, &done) == MF_PORT_OK && done == 48,
              "abort: bytes written %zu", done);
        CHECK(p.poll(&p, t2) == MF_PORT_EINVAL, "aborted ticket released");
        f2.fail_channel = 0;
        CHECK(p.read_start(&p, 0, b2, 200, &t2) == MF_PORT_OK && t2 == 0 &&
                  p.cancel(&p, t2, &done) == MF_PORT_EIO && done == 0,
              "abort with a bus error");
        d2.abort = NULL;
        f2.fail_channel = -1;
        CHECK(mf_memmap_port_init(&p, &c2, flash, sizeof flash, 0, 2, &d2, NULL) == MF_PORT_OK &&
                  p.read_start(&p, 0, b2, 200, &t2) == MF_PORT_OK &&
                  p.cancel(&p, t2, &done) == MF_PORT_OK && done == 200,
              "no abort(): waited, all bytes");
    }

    /* image size probe */
    uint8_t img[64] = {'M', 'O', 'E', 'F', 'L', 'S', 'H', '1'};
    img[16] = 0x00;
    img[17] = 0x10; /* 4096 */
    CHECK(mf_memmap_image_bytes(img, 8192) == 4096, "image bytes");
    CHECK(mf_memmap_image_bytes(img, 1000) == 0, "image larger than the window");
    img[0] = 'X';
    CHECK(mf_memmap_image_bytes(img, 8192) == 0, "no magic");
    return mf_test_done("test_fw_memmap");
}
