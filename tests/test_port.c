/* The POSIX file port: synchronous and asynchronous reads against the bytes
 * written to a temporary file, range errors, queue limits, concurrency,
 * close with requests pending. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../port/posix/posix_port.h"
#include "harness.h"

static uint64_t rng_state = 12345;
static uint64_t rnd(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static int write_file(const char *path, const uint8_t *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = n ? fwrite(data, 1, n, f) : 0;
    fclose(f);
    return w == n ? 0 : -1;
}

static char tmpdir[64];
static void tmp_path(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", tmpdir, name);
}

/* ---- concurrency ---- */
#define N_THREADS 6
#define PER_THREAD 1500
typedef struct {
    mf_port *p;
    const uint8_t *data;
    size_t size;
    uint64_t seed;
    int errors;
    int busy_seen;
    int done;
} worker_arg;

static uint64_t wrnd(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void *worker(void *v)
{
    worker_arg *a = (worker_arg *)v;
    static _Thread_local uint8_t bufs[3][8192];
    for (int i = 0; i < PER_THREAD; i++) {
        int t[3];
        uint64_t off[3];
        size_t len[3];
        int k = 1 + (int)(wrnd(&a->seed) % 3);
        int started = 0;
        for (int j = 0; j < k; j++) {
            len[j] = 1 + (size_t)(wrnd(&a->seed) % 8192);
            off[j] = wrnd(&a->seed) % (a->size - len[j] + 1);
            int rc;
            /* Back-pressure: with tickets of our own held, wait for them
             * first (spinning while holding them could deadlock). */
            while ((rc = a->p->read_start(a->p, off[j], bufs[j], len[j], &t[j])) == MF_PORT_EBUSY) {
                a->busy_seen++;
                if (started > 0) break;
                sched_yield();
            }
            if (rc == MF_PORT_EBUSY) break;
            if (rc != MF_PORT_OK) {
                a->errors++;
                break;
            }
            started++;
        }
        /* Wait in reverse order (out of order). */
        for (int j = started - 1; j >= 0; j--) {
            if (a->p->wait(a->p, t[j]) != MF_PORT_OK) a->errors++;
            else if (memcmp(bufs[j], a->data + off[j], len[j]) != 0) a->errors++;
            else a->done++;
        }
    }
    return NULL;
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/mf_test_port_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    char path[128], path_short[128], path_empty[128];
    tmp_path(path, sizeof path, "img.bin");
    tmp_path(path_short, sizeof path_short, "short.bin");
    tmp_path(path_empty, sizeof path_empty, "empty.bin");

    const size_t size = 3 * 1024 * 1024 + 777; /* not a multiple of the page */
    uint8_t *data = malloc(size);
    for (size_t i = 0; i < size; i++) data[i] = (uint8_t)(rnd() >> 56);
    CHECK(write_file(path, data, size) == 0, "write %s", path);
    CHECK(write_file(path_short, data, 5) == 0, "write short");
    CHECK(write_file(path_empty, data, 0) == 0, "write empty");

    mf_port p;
    mf_posix_port_state st;

    /* Open errors. */
    CHECK(mf_posix_port_open(NULL, &st, path) == MF_PORT_EINVAL, "NULL port");
    CHECK(mf_posix_port_open(&p, NULL, path) == MF_PORT_EINVAL, "NULL state");
    CHECK(mf_posix_port_open(&p, &st, NULL) == MF_PORT_EINVAL, "NULL path");
    CHECK(mf_posix_port_open(&p, &st, "/nonexistent/moeflash.img") == MF_PORT_EIO, "missing file");
    CHECK(mf_posix_port_open(&p, &st, tmpdir) == MF_PORT_EIO, "directory");

    /* Synchronous reads. */
    int rc = mf_posix_port_open(&p, &st, path);
    CHECK(rc == MF_PORT_OK, "open rc=%d", rc);
    CHECK(p.ctx == &st && st.fd >= 0, "ctx/fd");
    CHECK(p.size == size, "size %llu", (unsigned long long)p.size);
    CHECK(p.page_size == 4096 && p.queue_depth == MF_POSIX_QUEUE_DEPTH, "geometry");
    CHECK(p.read && p.read_start && p.poll && p.wait && p.now_ns && p.log, "callbacks");
    uint8_t *buf = malloc(size + 16);
    int bad = 0;
    for (int i = 0; i < 2000; i++) {
        size_t len = (size_t)(rnd() % 20000);
        uint64_t off = rnd() % (size - len + 1);
        if (p.read(&p, off, buf, len) != MF_PORT_OK || memcmp(buf, data + off, len) != 0) bad++;
    }
    CHECK(bad == 0, "%d random sync reads wrong", bad);
    memset(buf, 0, size);
    CHECK(mf_port_read(&p, 0, buf, size) == MF_PORT_OK && memcmp(buf, data, size) == 0,
          "whole file in one read");
    CHECK(p.read(&p, size - 1, buf, 1) == MF_PORT_OK && buf[0] == data[size - 1], "last byte");
    CHECK(p.read(&p, size, buf, 0) == MF_PORT_OK, "empty read at the end");
    CHECK(p.read(&p, size - 1, buf, 2) == MF_PORT_ERANGE, "one past the end");
    CHECK(p.read(&p, size + 1, buf, 0) == MF_PORT_ERANGE, "offset past the end");
    CHECK(p.read(&p, UINT64_MAX, buf, 2) == MF_PORT_ERANGE, "offset overflow");
    CHECK(p.read(&p, 1, buf, SIZE_MAX) == MF_PORT_ERANGE, "length overflow");
    CHECK(mf_port_read(&p, size - 1, buf, 2) == MF_PORT_ERANGE, "helper range");
    CHECK(p.read(&p, 0, NULL, 4) == MF_PORT_EINVAL, "NULL dst");

    uint64_t t0 = p.now_ns(&p), t1 = p.now_ns(&p);
    CHECK(t0 > 0 && t1 >= t0, "monotonic clock");
    p.log(&p, "test_port: log line to stderr");

    /* Asynchronous basics. */
    int tk[MF_POSIX_QUEUE_DEPTH + 1];
    static uint8_t abuf[MF_POSIX_QUEUE_DEPTH + 1][65536];
    uint64_t aoff[MF_POSIX_QUEUE_DEPTH];
    int ok_start = 1;
    for (int i = 0; i < MF_POSIX_QUEUE_DEPTH; i++) {
        aoff[i] = rnd() % (size - 65536);
        if (p.read_start(&p, aoff[i], abuf[i], 65536, &tk[i]) != MF_PORT_OK) ok_start = 0;
    }
    CHECK(ok_start, "%d requests start", MF_POSIX_QUEUE_DEPTH);
    CHECK(p.read_start(&p, 0, abuf[MF_POSIX_QUEUE_DEPTH], 16, &tk[MF_POSIX_QUEUE_DEPTH]) ==
              MF_PORT_EBUSY,
          "queue full -> EBUSY");
    int distinct = 1;
    for (int i = 0; i < MF_POSIX_QUEUE_DEPTH; i++)
        for (int j = 0; j < i; j++)
            if (tk[i] == tk[j]) distinct = 0;
    CHECK(distinct, "tickets distinct");
    /* Poll one until done (no release), then waits in a scrambled order. */
    int pr;
    while ((pr = p.poll(&p, tk[3])) == MF_PORT_EPENDING) sched_yield();
    CHECK(pr == MF_PORT_OK, "poll result %d", pr);
    CHECK(p.poll(&p, tk[3]) == MF_PORT_OK, "poll again still OK (ticket held)");
    const int order[MF_POSIX_QUEUE_DEPTH] = {5, 3, 7, 0, 6, 1, 4, 2};
    bad = 0;
    for (int k = 0; k < MF_POSIX_QUEUE_DEPTH; k++) {
        int i = order[k];
        if (p.wait(&p, tk[i]) != MF_PORT_OK || memcmp(abuf[i], data + aoff[i], 65536) != 0) bad++;
    }
    CHECK(bad == 0, "%d out-of-order waits wrong", bad);
    CHECK(p.wait(&p, tk[5]) == MF_PORT_EINVAL, "second wait -> EINVAL");
    CHECK(p.poll(&p, tk[5]) == MF_PORT_EINVAL, "poll released -> EINVAL");
    CHECK(p.wait(&p, -1) == MF_PORT_EINVAL && p.poll(&p, 12345) == MF_PORT_EINVAL, "bad tickets");
    /* A new request reusing slot 0 must not be reachable through the old ticket. */
    int tnew;
    CHECK(p.read_start(&p, 0, abuf[0], 100, &tnew) == MF_PORT_OK, "restart");
    CHECK(tnew != tk[0] && p.wait(&p, tk[0]) == MF_PORT_EINVAL, "stale ticket rejected");
    CHECK(p.wait(&p, tnew) == MF_PORT_OK && memcmp(abuf[0], data, 100) == 0, "new ticket ok");
    /* Cancel: either dropped before the I/O thread took it (0 bytes) or
     * waited for (every byte); the ticket is released either way. */
    {
        int tc[MF_POSIX_QUEUE_DEPTH];
        int ok_cancel = 1;
        for (int i = 0; i < MF_POSIX_QUEUE_DEPTH; i++) {
            memset(abuf[i], 0xEE, 65536);
            if (p.read_start(&p, aoff[i], abuf[i], 65536, &tc[i]) != MF_PORT_OK) ok_cancel = 0;
        }
        for (int i = MF_POSIX_QUEUE_DEPTH - 1; i >= 0; i--) {
            size_t done = 7;
            if (p.cancel(&p, tc[i], &done) != MF_PORT_OK) ok_cancel = 0;
            if (done == 65536 ? memcmp(abuf[i], data + aoff[i], 65536) != 0 : done != 0)
                ok_cancel = 0;
            if (p.wait(&p, tc[i]) != MF_PORT_EINVAL) ok_cancel = 0;
        }
        size_t d;
        CHECK(ok_cancel, "cancel: 0 or all bytes, ticket released");
        CHECK(p.cancel(&p, tc[0], &d) == MF_PORT_EINVAL && p.cancel(&p, -1, &d) == MF_PORT_EINVAL,
              "cancel of a released ticket");
        /* A request queued behind a whole-file read is cancelled before the
         * I/O thread takes it: released at once, and its dst never written. */
        int dropped = 0, ok_q = 1;
        for (int k = 0; k < 20; k++) {
            int tb, tq;
            memset(abuf[1], 0xEE, 4096);
            if (p.read_start(&p, 0, buf, size, &tb) != MF_PORT_OK ||
                p.read_start(&p, 4096, abuf[1], 4096, &tq) != MF_PORT_OK) {
                ok_q = 0;
                break;
            }
            size_t dq = 7;
            if (p.cancel(&p, tq, &dq) != MF_PORT_OK || p.wait(&p, tq) != MF_PORT_EINVAL) ok_q = 0;
            if (p.wait(&p, tb) != MF_PORT_OK) ok_q = 0;
            int untouched = 1;
            for (int j = 0; j < 4096; j++)
                if (abuf[1][j] != 0xEE) untouched = 0;
            if (dq == 0) dropped++;
            if (dq == 0 ? !untouched : dq != 4096 || memcmp(abuf[1], data + 4096, 4096) != 0) ok_q = 0;
        }
        CHECK(ok_q, "cancel behind a long read: released, 0 bytes (untouched) or all");
        printf("test_port: %d of 20 requests cancelled while queued\n", dropped);
    }
    /* wait_part: the first bytes of a request are in before the rest, the
     * ticket stays held; the last request of a full queue included. */
    {
        static uint8_t pb[2][1 << 20];
        int tp[2], ok_part = 1;
        for (int i = 0; i < 2; i++) {
            memset(pb[i], 0xEE, sizeof pb[i]);
            if (p.read_start(&p, (uint64_t)i * 65536 + 3, pb[i], sizeof pb[i], &tp[i]) != MF_PORT_OK)
                ok_part = 0;
        }
        CHECK(ok_part && p.wait_part != NULL, "two 1 MiB reads started");
        static const size_t need[] = {1, 4096, 65537, 300000, 300000, 1 << 20};
        for (int i = 1; i >= 0; i--)
            for (size_t k = 0; k < sizeof need / sizeof need[0]; k++)
                if (p.wait_part(&p, tp[i], need[k]) != MF_PORT_OK ||
                    memcmp(pb[i], data + (size_t)i * 65536 + 3, need[k]) != 0)
                    ok_part = 0;
        CHECK(ok_part, "each part in when wait_part returns");
        CHECK(p.wait_part(&p, tp[0], (1 << 20) + 1) == MF_PORT_EINVAL, "more than the request");
        CHECK(p.wait(&p, tp[0]) == MF_PORT_OK && p.wait(&p, tp[1]) == MF_PORT_OK &&
                  memcmp(pb[1], data + 65536 + 3, sizeof pb[1]) == 0,
              "wait still releases each");
        CHECK(p.wait_part(&p, tp[0], 1) == MF_PORT_EINVAL && p.wait_part(&p, -1, 1) == MF_PORT_EINVAL,
              "released or bad ticket");
    }
    CHECK(p.read_start(&p, size - 10, abuf[0], 11, &tnew) == MF_PORT_ERANGE, "async range");
    CHECK(p.read_start(&p, 0, abuf[0], 1, NULL) == MF_PORT_EINVAL, "NULL ticket");
    CHECK(st.async_reads >= MF_POSIX_QUEUE_DEPTH + 1, "async counter %llu",
          (unsigned long long)st.async_reads);

    /* Many threads, many requests in flight, EBUSY back-pressure. */
    pthread_t th[N_THREADS];
    worker_arg wa[N_THREADS];
    for (int i = 0; i < N_THREADS; i++) {
        memset(&wa[i], 0, sizeof wa[i]);
        wa[i].p = &p;
        wa[i].data = data;
        wa[i].size = size;
        wa[i].seed = 1000 + (uint64_t)i;
        pthread_create(&th[i], NULL, worker, &wa[i]);
    }
    int errors = 0, done = 0, busy = 0;
    for (int i = 0; i < N_THREADS; i++) {
        pthread_join(th[i], NULL);
        errors += wa[i].errors;
        done += wa[i].done;
        busy += wa[i].busy_seen;
    }
    CHECK(errors == 0, "%d errors in concurrent reads", errors);
    CHECK(done >= N_THREADS * PER_THREAD, "%d concurrent requests verified", done);
    printf("test_port: %d concurrent async reads verified, EBUSY seen %d times\n", done, busy);

    /* Close with requests pending: must not hang; every buffer is either
     * untouched (cancelled) or complete (finished). */
    static uint8_t big[MF_POSIX_QUEUE_DEPTH][1 << 20];
    for (int i = 0; i < MF_POSIX_QUEUE_DEPTH; i++)
        for (size_t j = 0; j < sizeof big[i]; j++) big[i][j] = (uint8_t)(0xffu ^ data[j + (size_t)i * 4096]);
    for (int i = 0; i < MF_POSIX_QUEUE_DEPTH; i++) {
        CHECK(p.read_start(&p, (uint64_t)i * 4096, big[i], sizeof big[i], &tk[i]) == MF_PORT_OK,
              "big start %d", i);
    }
    mf_posix_port_close(&p);
    int mixed = 0, complete = 0;
    for (int i = 0; i < MF_POSIX_QUEUE_DEPTH; i++) {
        int same = memcmp(big[i], data + (size_t)i * 4096, sizeof big[i]) == 0;
        int untouched = 1;
        for (size_t j = 0; j < sizeof big[i] && untouched; j++) {
            uint8_t inv = (uint8_t)(0xffu ^ data[j + (size_t)i * 4096]);
            if (big[i][j] != inv) untouched = 0;
        }
        if (same) complete++;
        else if (!untouched) mixed++;
    }
    CHECK(mixed == 0, "%d buffers half-written after close", mixed);
    printf("test_port: close with %d pending: %d completed, %d cancelled\n", MF_POSIX_QUEUE_DEPTH,
           complete, MF_POSIX_QUEUE_DEPTH - complete);
    CHECK(p.ctx == NULL && p.read == NULL && p.read_start == NULL, "closed port cleared");
    CHECK(mf_port_read(&p, 0, buf, 1) == MF_PORT_EINVAL, "read after close");
    mf_posix_port_close(&p); /* twice is harmless */

    /* Short and empty files. */
    CHECK(mf_posix_port_open(&p, &st, path_short) == MF_PORT_OK && p.size == 5, "short open");
    memset(buf, 0, 8);
    CHECK(p.read(&p, 0, buf, 5) == MF_PORT_OK && memcmp(buf, data, 5) == 0, "short whole");
    CHECK(p.read(&p, 0, buf, 6) == MF_PORT_ERANGE, "short past end");
    CHECK(p.read(&p, 4, buf, 2) == MF_PORT_ERANGE, "short straddle");
    CHECK(p.read_start(&p, 3, buf, 3, &tnew) == MF_PORT_ERANGE, "short async past end");
    /* The file shrinks under an open port: the read fails short. */
    CHECK(truncate(path_short, 2) == 0, "truncate");
    CHECK(p.read(&p, 0, buf, 5) == MF_PORT_ESHORT, "shrunk file -> ESHORT");
    CHECK(p.read_start(&p, 0, buf, 5, &tnew) == MF_PORT_OK && p.wait(&p, tnew) == MF_PORT_ESHORT,
          "shrunk file async -> ESHORT");
    /* port.h: poll gives a completed request's error, and so does wait_part
     * (the bytes are not in dst), the same error wait then gives. */
    {
        int tf, pf;
        CHECK(p.read_start(&p, 0, buf, 5, &tf) == MF_PORT_OK, "start a read of the shrunk file");
        while ((pf = p.poll(&p, tf)) == MF_PORT_EPENDING) sched_yield();
        CHECK(pf == MF_PORT_ESHORT, "poll of the failed read -> ESHORT, got %d", pf);
        pf = p.wait_part(&p, tf, 5);
        CHECK(pf == MF_PORT_ESHORT, "wait_part of the failed read -> ESHORT, got %d", pf);
        CHECK(p.wait(&p, tf) == MF_PORT_ESHORT, "wait -> the same error");
    }
    mf_posix_port_close(&p);

    CHECK(mf_posix_port_open(&p, &st, path_empty) == MF_PORT_OK && p.size == 0, "empty open");
    CHECK(p.read(&p, 0, buf, 0) == MF_PORT_OK, "empty read of empty file");
    CHECK(p.read(&p, 0, buf, 1) == MF_PORT_ERANGE, "read of empty file");
    mf_posix_port_close(&p);

    /* Open/close cycles do not leak threads or descriptors. */
    int cyc_ok = 1;
    for (int i = 0; i < 200; i++) {
        if (mf_posix_port_open(&p, &st, path) != MF_PORT_OK) cyc_ok = 0;
        int t;
        if (p.read_start(&p, 0, abuf[0], 10, &t) != MF_PORT_OK) cyc_ok = 0;
        mf_posix_port_close(&p);
    }
    CHECK(cyc_ok, "200 open/close cycles");

    unlink(path);
    unlink(path_short);
    unlink(path_empty);
    rmdir(tmpdir);
    free(buf);
    free(data);
    return mf_test_done("test_port");
}
