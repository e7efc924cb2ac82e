/*
 * port/memmap (the firmware's memory-mapped flash port) on the host: reads
 * are the bytes at base+off, map() points into the window, range checks,
 * the image-size probe from the header, and asynchronous reads both without
 * DMA (complete at start) and through a fake DMA engine that stays busy for
 * a few polls and can report a bus error. Then the tiny model over the
 * port as the QEMU boards (memcpy) and the rp2350 (DMA) open it: logits
 * equal to the in-memory port's, every expert read once, no flash errors.
 */
#include <string.h>

#include "../port/memmap/memmap.c"
#include "../port/sim/sim_port.h"
#include "harness.h"
#include "image_fixture.h"

static uint8_t flash[8192];

/* fake DMA: copies at start, reports busy for `delay` polls */
typedef struct {
    int busy_left[4];
    int fail_channel;
    int starts;
    size_t abort_done; /* what abort() reports as written */
} fake_dma;

static size_t fd_len[4]; /* bytes asked per channel */

static int fd_start(void *ctx, uint32_t ch, void *dst, const void *src, size_t len)
{
    fake_dma *f = (fake_dma *)ctx;
    memcpy(dst, src, len);
    fd_len[ch] = len;
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

/* the fake copies at start; it says half the bytes have landed while busy */
static int fd_written(void *ctx, uint32_t ch, size_t *done)
{
    fake_dma *f = (fake_dma *)ctx;
    *done = f->busy_left[ch] > 0 ? fd_len[ch] / 2 : fd_len[ch];
    return 0;
}

/* a DMA engine whose start fails (a bus error when programming it) */
static int fd_start_fail(void *ctx, uint32_t ch, void *dst, const void *src, size_t len)
{
    (void)ctx, (void)ch, (void)dst, (void)src, (void)len;
    return MF_PORT_EIO;
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

/* 300 tokens over port p (4 slots, LFU): logits into out; the expert
 * bytes the port copied after init into *expert_reads. */
static int run_model(const mf_port *p, const mf_memmap_ctx *c, const uint32_t *ids, float *out,
                     mf_stats *st, uint64_t *expert_reads)
{
    mf_options o;
    mf_options_default(&o);
    o.expert_slots = 4;
    o.prefill_batch = 1;
    void *arena;
    mf_model *m;
    int rc = mf_test_model(p, &o, &m, &arena);
    uint64_t b0 = c ? c->bytes_read : 0;
    for (uint32_t t = 0; t < 300 && !rc; t++) rc = mf_feed_all(m, ids + t, 1, out + (size_t)t * 256);
    if (m) mf_get_stats(m, st);
    *expert_reads = c ? c->bytes_read - b0 : 0;
    free(arena);
    return rc;
}

static void model_over_memmap(void)
{
    size_t len, tlen;
    uint8_t *img = mf_test_image("models/tiny-shakespeare-moe", "--experts q4 --resident q8", NULL,
                                 &len, NULL);
    char *text = mf_read_file("tests/data/tinyshakespeare.txt", &tlen);
    CHECK(img && text && tlen > 1300, "tiny model image and text");
    if (!img || !text || tlen <= 1300) {
        free(img);
        free(text);
        return;
    }
    uint32_t ids[300];
    for (int i = 0; i < 300; i++) ids[i] = (uint8_t)text[1000 + i];
    float *ref = malloc(sizeof(float) * 300 * 256), *got = malloc(sizeof(float) * 300 * 256);
    mf_port p;
    mf_mem_port_state ms;
    mf_stats st;
    uint64_t reads;
    mf_mem_port_open(&p, &ms, img, len);
    CHECK(run_model(&p, NULL, ids, ref, &st, &reads) == MF_OK, "reference over the memory port");
    static const char *names[] = {"memcpy", "DMA", "DMA + written()"};
    for (int with_dma = 0; with_dma < 3; with_dma++) {
        mf_memmap_ctx c;
        fake_dma f = {{0, 0, 0, 0}, -1, 0, 0};
        mf_memmap_dma dma = {&f, fd_start, fd_busy, 4, fd_abort, with_dma == 2 ? fd_written : NULL};
        CHECK(mf_memmap_port_init(&p, &c, img, len, 4096, 4, with_dma ? &dma : NULL, NULL) ==
                  MF_PORT_OK, "memmap port (%s)", names[with_dma]);
        CHECK((p.wait_part != NULL) == (with_dma == 2), "%s: wait_part only with written()",
              names[with_dma]);
        int rc = run_model(&p, &c, ids, got, &st, &reads);
        CHECK(rc == MF_OK && memcmp(got, ref, sizeof(float) * 300 * 256) == 0,
              "%s: logits == the memory port's (%d)", names[with_dma], rc);
        CHECK((st.streamed_experts > 0) == (with_dma == 2), "%s: %llu experts computed as they arrived",
              names[with_dma], (unsigned long long)st.streamed_experts);
        CHECK(st.flash_errors == 0 && st.retries == 0 && reads == st.flash_bytes,
              "%s: each expert read once (%llu flash errors, %llu bytes copied for %llu read)",
              names[with_dma], (unsigned long long)st.flash_errors,
              (unsigned long long)reads, (unsigned long long)st.flash_bytes);
    }
    free(ref);
    free(got);
    free(img);
    free(text);
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
    CHECK(p.poll(&p, t[2]) == MF_PORT_OK, "poll again: still held (only wait releases)");
    CHECK(p.read_start(&p, 0, buf, 1, &t[4]) == MF_PORT_EBUSY, "a polled ticket keeps its entry");
    CHECK(p.wait(&p, t[0]) == MF_PORT_OK && p.wait(&p, t[1]) == MF_PORT_OK && p.wait(&p, t[3]) == MF_PORT_OK,
          "wait");
    CHECK(p.wait(&p, t[2]) == MF_PORT_OK, "wait after poll saw it complete");
    CHECK(p.wait(&p, t[2]) == MF_PORT_EINVAL && p.poll(&p, t[2]) == MF_PORT_EINVAL,
          "released by its wait");
    for (int i = 0; i < 4; i++) CHECK(memcmp(buf + 10 * i, flash + 100 * i, 10) == 0, "async bytes %d", i);
    CHECK(p.read_start(&p, 8000, buf, 500, &t[0]) == MF_PORT_ERANGE, "async range");

    /* async through the fake DMA */
    fake_dma f = {{0, 0, 0, 0}, -1, 0, 0};
    mf_memmap_dma dma = {&f, fd_start, fd_busy, 2, NULL, NULL};
    CHECK(mf_memmap_port_init(&p, &c, flash, sizeof flash, 512, 8, &dma, NULL) == MF_PORT_OK, "init dma");
    CHECK(p.queue_depth == 2, "queue depth capped by channels");
    memset(buf, 0, sizeof buf);
    CHECK(p.read_start(&p, 2000, buf, 64, &t[0]) == MF_PORT_OK, "dma start");
    CHECK(p.poll(&p, t[0]) == MF_PORT_EPENDING, "dma pending");
    while (p.poll(&p, t[0]) == MF_PORT_EPENDING) {
    }
    CHECK(p.poll(&p, t[0]) == MF_PORT_OK, "dma done, ticket still held");
    CHECK(p.wait(&p, t[0]) == MF_PORT_OK, "dma wait");
    CHECK(p.poll(&p, t[0]) == MF_PORT_EINVAL, "released by its wait");
    CHECK(memcmp(buf, flash + 2000, 64) == 0, "dma bytes");
    {
        mf_memmap_ctx cw;
        mf_port pw;
        mf_memmap_dma dw = {&f, fd_start, fd_busy, 2, NULL, fd_written};
        CHECK(mf_memmap_port_init(&pw, &cw, flash, sizeof flash, 512, 2, &dw, NULL) == MF_PORT_OK &&
                  pw.wait_part != NULL, "init dma+written: can wait for part of a read");
        int tw;
        CHECK(pw.read_start(&pw, 100, buf, 200, &tw) == MF_PORT_OK &&
                  pw.wait_part(&pw, tw, 100) == MF_PORT_OK && f.busy_left[tw] > 0,
              "first half: returned while the transfer runs");
        CHECK(pw.wait_part(&pw, tw, 150) == MF_PORT_OK && f.busy_left[tw] == 0 &&
                  pw.poll(&pw, tw) == MF_PORT_OK, "more than has landed: waited for the end, still held");
        CHECK(pw.wait_part(&pw, tw, 201) == MF_PORT_EINVAL, "more than the request");
        CHECK(pw.wait(&pw, tw) == MF_PORT_OK && pw.wait_part(&pw, tw, 1) == MF_PORT_EINVAL,
              "released by its wait");
    }
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
        mf_memmap_dma d2 = {&f2, fd_start, fd_busy, 2, fd_abort, NULL};
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

    /* Arguments and engines that break the contract (port.h): a negative
     * code, never a crash, never a ticket for a read that did not start,
     * never more bytes than asked reported. */
    {
        mf_memmap_ctx c3;
        mf_port p3;
        uint8_t b3[256];
        int t3;
        size_t done = 0;
        CHECK(mf_memmap_port_init(&p3, &c3, flash, sizeof flash, 0, 2, NULL, NULL) == MF_PORT_OK,
              "init for the argument checks");
        CHECK(p3.read(&p3, 0, NULL, 4) == MF_PORT_EINVAL, "read into NULL");
        CHECK(p3.read(&p3, sizeof flash + 1, b3, 1) == MF_PORT_ERANGE,
              "callback: offset past the end");
        CHECK(p3.read_start(&p3, sizeof flash + 1, b3, 1, &t3) == MF_PORT_ERANGE,
              "read_start: offset past the end");
        CHECK(p3.read_start(&p3, 0, b3, 8, &t3) == MF_PORT_OK && p3.cancel(&p3, t3, NULL) == MF_PORT_EINVAL,
              "cancel with NULL done");
        CHECK(p3.wait(&p3, t3) == MF_PORT_OK, "the ticket is still held after the refused cancel");
        CHECK(mf_memmap_port_init(&p3, &c3, flash, sizeof flash, 0, 1000, NULL, NULL) == MF_PORT_OK &&
                  p3.queue_depth == MF_MEMMAP_MAX_QUEUE,
              "queue depth capped at %d: %u", MF_MEMMAP_MAX_QUEUE, p3.queue_depth);
        fake_dma f3 = {{0, 0, 0, 0}, -1, 0, 1000};
        mf_memmap_dma d3 = {&f3, fd_start, NULL, 2, fd_abort, NULL};
        CHECK(mf_memmap_port_init(&p3, &c3, flash, sizeof flash, 0, 2, &d3, NULL) == MF_PORT_EINVAL,
              "a DMA engine without busy()");
        d3.busy = fd_busy;
        d3.start = NULL;
        CHECK(mf_memmap_port_init(&p3, &c3, flash, sizeof flash, 0, 2, &d3, NULL) == MF_PORT_EINVAL,
              "a DMA engine without start()");
        d3.start = fd_start_fail;
        d3.channels = 1;
        CHECK(mf_memmap_port_init(&p3, &c3, flash, sizeof flash, 0, 2, &d3, NULL) == MF_PORT_OK,
              "init, one channel");
        CHECK(p3.read_start(&p3, 0, b3, 200, &t3) == MF_PORT_EIO, "the DMA start fails: its error");
        d3.start = fd_start;
        CHECK(p3.read_start(&p3, 0, b3, 200, &t3) == MF_PORT_OK,
              "the failed start did not keep the channel");
        /* abort() says it wrote more than the request: at most len reported */
        CHECK(p3.cancel(&p3, t3, &done) == MF_PORT_OK && done <= 200, "abort reports %zu of 200 bytes",
              done);
    }

    /* image size probe */
    uint8_t img[64] = {'M', 'O', 'E', 'F', 'L', 'S', 'H', '1'};
    img[16] = 0x00;
    img[17] = 0x10; /* 4096 */
    CHECK(mf_memmap_image_bytes(img, 8192) == 4096, "image bytes");
    CHECK(mf_memmap_image_bytes(img, 1000) == 0, "image larger than the window");
    img[0] = 'X';
    CHECK(mf_memmap_image_bytes(img, 8192) == 0, "no magic");
    model_over_memmap();
    return mf_test_done("test_fw_memmap");
}
