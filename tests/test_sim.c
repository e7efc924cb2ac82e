/* The simulated flash: virtual-time formulas on hand-computed cases (see
 * port/sim/sim_port.h), compute/read overlap, data correctness, tickets,
 * fault injection rates and effects, determinism, profiles, memory port,
 * and the simulator over the POSIX file port. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../port/posix/posix_port.h"
#include "../port/sim/sim_port.h"
#include "../runtime/quant.h"
#include "harness.h"

#define BUF_SIZE (256 * 1024)
static uint8_t data[BUF_SIZE];

static uint64_t rs = 777;
static uint64_t rnd(void)
{
    uint64_t z = (rs += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static int near(double a, double b)
{
    return fabs(a - b) <= 1e-9 * (fabs(b) > 1 ? fabs(b) : 1);
}

/* A profile with round numbers: 1 byte/ns, 1000 ns latency, 256-byte pages. */
static mf_sim_profile test_profile(int on_bus)
{
    mf_sim_profile pr;
    memset(&pr, 0, sizeof pr);
    pr.name = "test";
    pr.summary = pr.core = pr.flash = "test";
    pr.core_mhz = 1000;
    pr.bandwidth = 1e9;
    pr.latency_ns = 1000;
    pr.latency_on_bus = on_bus;
    pr.page_size = 256;
    pr.queue_depth = 4;
    for (int e = 0; e < MF_SIM_ENC_COUNT; e++) pr.matvec_ns_per_byte[e] = 1.0 + e;
    for (int e = 0; e < MF_SIM_ENC_COUNT; e++) pr.attention_ns_per_byte[e] = 0.5 * (1 + e);
    pr.other_ns_per_byte = 0.25;
    pr.check_ns_per_byte = 0.125;
    return pr;
}

static void test_formulas(void)
{
    mf_sim_profile pr = test_profile(0);
    CHECK(mf_sim_device_bytes(&pr, 10, 100) == 256, "one page");
    CHECK(mf_sim_device_bytes(&pr, 250, 10) == 512, "straddle");
    CHECK(mf_sim_device_bytes(&pr, 256, 256) == 256, "aligned page");
    CHECK(mf_sim_device_bytes(&pr, 255, 258) == 768, "three pages");
    CHECK(mf_sim_device_bytes(&pr, 1000, 0) == 0, "empty");
    CHECK(near(mf_sim_transfer_ns(&pr, 250, 10), 512.0), "transfer");
    pr.bandwidth = 3e9;
    CHECK(near(mf_sim_transfer_ns(&pr, 0, 1), 256.0 / 3.0), "fractional ns");
    CHECK(near(mf_sim_compute_ns(&pr, MF_WORK_MATVEC, MF_ENC_Q4, 100), 500.0), "matvec q4");
    CHECK(near(mf_sim_compute_ns(&pr, MF_WORK_ATTENTION, 0, 100), 50.0), "attention");
    CHECK(near(mf_sim_compute_ns(&pr, MF_WORK_ATTENTION, MF_ENC_Q8, 100), 200.0), "attention q8 KV");
    CHECK(mf_sim_compute_ns(&pr, MF_WORK_ATTENTION, MF_SIM_ENC_COUNT, 100) == 0.0, "attention bad enc");
    CHECK(near(mf_sim_compute_ns(&pr, MF_WORK_OTHER, 0, 100), 25.0), "other");
    CHECK(near(mf_sim_compute_ns(&pr, MF_WORK_CHECK, 0, 100), 12.5), "check");
}

/* The simulator with profile pr over `data` (through the mem port *mem). */
static void open_sim(mf_port *mem, mf_mem_port_state *ms, mf_port *p, mf_sim_state *st,
                     const mf_sim_profile *pr)
{
    CHECK(mf_mem_port_open(mem, ms, data, BUF_SIZE) == MF_PORT_OK, "mem open");
    CHECK(mf_sim_port_open(p, st, mem, pr, NULL) == MF_PORT_OK, "sim open");
}

/* wait_part: the clock goes to the end of the page holding the last byte
 * asked for, those bytes (and no more) are in dst, the ticket stays held
 * and wait() still completes it; a faulty request is seen whole. */
static void test_wait_part(void)
{
    mf_port mem, p;
    mf_mem_port_state ms;
    mf_sim_state st;
    mf_sim_profile pr = test_profile(1); /* 1 byte/ns, 1000 ns latency on the bus */
    open_sim(&mem, &ms, &p, &st, &pr);
    CHECK(p.wait_part != NULL, "sim can wait for part of a read");
    static uint8_t a[8192];
    memset(a, 0xAA, sizeof a);
    int ta;
    /* from offset 100: pages 0..32 (8448 bytes), data phase 1000..9448 */
    CHECK(p.read_start(&p, 100, a, sizeof a, &ta) == MF_PORT_OK, "start");
    CHECK(p.wait_part(&p, ta, 0) == MF_PORT_OK && near(st.now_ns, 0), "nothing asked: no wait");
    CHECK(p.wait_part(&p, ta, 1000) == MF_PORT_OK, "first 1000 bytes");
    /* bytes 100..1100 of the device lie in pages 0..4: 1280 bytes -> 2280 ns */
    CHECK(near(st.now_ns, 2280) && near(st.stall_ns, 2280), "clock at 2280: %.3f", st.now_ns);
    CHECK(memcmp(a, data + 100, 1000) == 0 && a[1000] == 0xAA, "those bytes, no more");
    CHECK(p.wait_part(&p, ta, 500) == MF_PORT_OK && near(st.now_ns, 2280), "fewer: at once");
    mf_port_charge(&p, MF_WORK_OTHER, 0, 4 * 1720); /* compute to 4000 */
    CHECK(p.wait_part(&p, ta, 2000) == MF_PORT_OK && near(st.now_ns, 4000),
          "already transferred: no stall (%.3f)", st.now_ns);
    CHECK(p.wait_part(&p, ta, sizeof a + 1) == MF_PORT_EINVAL, "more than the request");
    CHECK(p.wait(&p, ta) == MF_PORT_OK && near(st.now_ns, 9448) &&
              memcmp(a, data + 100, sizeof a) == 0, "wait completes it: all bytes at 9448");
    CHECK(p.wait_part(&p, ta, 1) == MF_PORT_EINVAL && p.wait_part(&p, -1, 1) == MF_PORT_EINVAL,
          "released or bad ticket");
    CHECK(st.part_waits == 3, "part waits counted: %llu", (unsigned long long)st.part_waits);

    /* Every request fails: a part wait returns the error at the request's end. */
    mf_sim_faults f;
    memset(&f, 0, sizeof f);
    f.eio_rate = 1.0;
    CHECK(mf_sim_port_open(&p, &st, &mem, &pr, &f) == MF_PORT_OK, "sim open, faults");
    memset(a, 0xAA, sizeof a);
    CHECK(p.read_start(&p, 0, a, sizeof a, &ta) == MF_PORT_OK, "start faulty");
    CHECK(p.wait_part(&p, ta, 10) == MF_PORT_EIO && near(st.now_ns, 9192) && a[0] == 0xAA,
          "faulty: error at its end, nothing delivered");
    CHECK(p.wait(&p, ta) == MF_PORT_EIO, "wait gives the same error");
}

/* Cancel: the part already transferred (whole pages) stays in dst, the
 * bus time given back moves the requests queued behind forward, a
 * completed request reports all its bytes, a released ticket is invalid. */
static void test_cancel(void)
{
    mf_port mem, p;
    mf_mem_port_state ms;
    mf_sim_state st;
    mf_sim_profile pr = test_profile(1); /* 1 byte/ns, 1000 ns latency on the bus */
    open_sim(&mem, &ms, &p, &st, &pr);
    CHECK(p.cancel != NULL, "sim can cancel");
    static uint8_t a[8192], b[1024];
    memset(a, 0xAA, sizeof a);
    memset(b, 0xBB, sizeof b);
    int ta, tb;
    /* A: bus 0..1000 latency, data 1000..9192; B: bus 9192.., data 10192..11216 */
    CHECK(p.read_start(&p, 0, a, sizeof a, &ta) == MF_PORT_OK, "start A");
    CHECK(p.read_start(&p, 16384, b, sizeof b, &tb) == MF_PORT_OK, "start B");
    mf_port_charge(&p, MF_WORK_OTHER, 0, 4 * 3700); /* 3700 ns: 2700 bytes of A moved */
    size_t done = 12345;
    CHECK(p.cancel(&p, ta, &done) == MF_PORT_OK, "cancel A");
    CHECK(done == 2560, "whole pages of A kept: %zu", done);
    CHECK(memcmp(a, data, done) == 0 && a[done] == 0xAA, "prefix delivered, nothing beyond");
    CHECK(st.bytes == 2560 + 1024 && st.cancels == 1 && st.cancelled_bytes == 8192 - 2560,
          "counters: %llu bytes", (unsigned long long)st.bytes);
    CHECK(p.wait(&p, ta) == MF_PORT_EINVAL, "cancelled ticket released");
    /* B moves up: its latency starts now (3700), data 4700..5724 */
    double stall0 = st.stall_ns;
    CHECK(p.wait(&p, tb) == MF_PORT_OK && memcmp(b, data + 16384, sizeof b) == 0, "B data");
    CHECK(near(st.now_ns, 5724), "B done at 5724: %.3f", st.now_ns);
    CHECK(near(st.stall_ns - stall0, 2024), "stall only B's own time");
    /* A request that has completed: cancel = wait without waiting. */
    CHECK(p.read_start(&p, 100, b, 200, &tb) == MF_PORT_OK, "start C");
    mf_port_charge(&p, MF_WORK_OTHER, 0, 4 * 5000);
    CHECK(p.cancel(&p, tb, &done) == MF_PORT_OK && done == 200 &&
              memcmp(b, data + 100, 200) == 0, "completed: all bytes");
    CHECK(p.cancel(&p, tb, &done) == MF_PORT_EINVAL, "twice");
    CHECK(p.cancel(&p, -1, &done) == MF_PORT_EINVAL && p.cancel(&p, 0, NULL) == MF_PORT_EINVAL,
          "bad arguments");
    /* Cancel before its turn: nothing moved, the bus is free again at once. */
    double busy0 = st.bus_busy_ns;
    CHECK(p.read_start(&p, 0, a, 4096, &ta) == MF_PORT_OK, "start D");
    CHECK(p.read_start(&p, 0, a, 4096, &tb) == MF_PORT_OK, "start E");
    CHECK(p.cancel(&p, tb, &done) == MF_PORT_OK && done == 0, "E never started");
    double t0 = st.now_ns;
    CHECK(p.wait(&p, ta) == MF_PORT_OK && near(st.now_ns, t0 + 5096), "D unaffected");
    CHECK(near(st.bus_free_ns, st.now_ns), "E's bus time given back");
    /* bus busy time: D's data phase (16 pages at 1 byte/ns) and none of E's,
     * its latency included (it never had the bus) */
    CHECK(near(st.bus_busy_ns - busy0, 4096), "busy: D's 4096 ns only (%.3f)", st.bus_busy_ns - busy0);
}

static void test_timing(void)
{
    mf_port mem, p;
    mf_mem_port_state ms;
    mf_sim_state st;
    mf_sim_profile pr = test_profile(0);
    open_sim(&mem, &ms, &p, &st, &pr);
    CHECK(mf_sim_state_of(&p) == &st && mf_sim_state_of(&mem) == NULL, "state_of");
    CHECK(p.size == BUF_SIZE && p.page_size == 256 && p.queue_depth == 4 && p.map == NULL,
          "geometry");

    /* Synchronous read at t=0: done = 0 + 1000 + 256. */
    uint8_t buf[4096];
    CHECK(p.read(&p, 10, buf, 100) == MF_PORT_OK && memcmp(buf, data + 10, 100) == 0, "read");
    CHECK(near(st.now_ns, 1256) && near(st.stall_ns, 1256), "sync clock %.3f", st.now_ns);
    CHECK(p.now_ns(&p) == 1256, "now_ns");
    CHECK(st.reads == 1 && st.sync_reads == 1 && st.bytes == 100 && st.flash_bytes_device == 256,
          "counters");
    CHECK(near(st.bus_busy_ns, 256), "busy");

    /* Compute: q8 (4 ns/byte here) 300 bytes = 1200 ns. */
    mf_port_charge(&p, MF_WORK_MATVEC, MF_ENC_Q8, 300);
    CHECK(near(st.now_ns, 2456) && near(st.compute_ns, 1200), "compute %.3f", st.now_ns);
    CHECK(near(st.stall_ns, 1256), "compute is not stall");

    /* Overlapped latencies (latency_on_bus = 0), T0 = 2456:
     * A: 1024 bytes at 0   -> start T0+1000, done T0+2024
     * B: 300 bytes at 4100 -> 2 pages (4096..4607) = 512 bytes:
     *    start max(T0+1000, T0+2024) = T0+2024, done T0+2536. */
    double T0 = st.now_ns;
    static uint8_t a[1024], b[300];
    memset(a, 0xAA, sizeof a);
    memset(b, 0xBB, sizeof b);
    int ta, tb;
    CHECK(p.read_start(&p, 0, a, sizeof a, &ta) == MF_PORT_OK, "start A");
    CHECK(p.read_start(&p, 4100, b, sizeof b, &tb) == MF_PORT_OK, "start B");
    CHECK(near(st.now_ns, T0), "start does not move the clock");
    CHECK(a[0] == 0xAA && b[0] == 0xBB, "no data before completion");
    CHECK(p.poll(&p, ta) == MF_PORT_EPENDING && near(st.now_ns, T0), "poll pending, clock still");
    mf_port_charge(&p, MF_WORK_ATTENTION, 0, 2400); /* 1200 ns */
    CHECK(p.poll(&p, ta) == MF_PORT_EPENDING, "A pending at T0+1200");
    mf_port_charge(&p, MF_WORK_OTHER, 0, 4000); /* 1000 ns -> T0+2200 */
    CHECK(p.poll(&p, ta) == MF_PORT_OK && memcmp(a, data, sizeof a) == 0, "A done at T0+2200");
    CHECK(p.poll(&p, tb) == MF_PORT_EPENDING && b[0] == 0xBB, "B pending at T0+2200");
    double stall0 = st.stall_ns;
    CHECK(p.wait(&p, tb) == MF_PORT_OK && memcmp(b, data + 4100, sizeof b) == 0, "wait B");
    CHECK(near(st.now_ns, T0 + 2536), "B done at T0+2536: %.3f", st.now_ns - T0);
    CHECK(near(st.stall_ns - stall0, 336), "stall 336: %.3f", st.stall_ns - stall0);
    CHECK(p.wait(&p, ta) == MF_PORT_OK && near(st.now_ns, T0 + 2536), "wait A: no time");
    CHECK(near(st.stall_ns - stall0, 336), "no extra stall");
    CHECK(near(st.compute_ns_kind[MF_WORK_ATTENTION], 1200) &&
              near(st.compute_ns_kind[MF_WORK_OTHER], 1000) &&
              st.compute_bytes_kind[MF_WORK_MATVEC] == 300,
          "compute by kind");

    /* Issue after the bus is idle: t + latency + xfer. */
    double T1 = st.now_ns;
    CHECK(p.read_start(&p, 512, a, 256, &ta) == MF_PORT_OK && p.wait(&p, ta) == MF_PORT_OK,
          "idle issue");
    CHECK(near(st.now_ns, T1 + 1256), "idle: %.3f", st.now_ns - T1);

    /* A sync read queues behind an in-flight request on the bus. */
    double T2 = st.now_ns;
    CHECK(p.read_start(&p, 0, a, 1024, &ta) == MF_PORT_OK, "start");
    CHECK(p.read(&p, 2048, buf, 256) == MF_PORT_OK, "sync behind");
    CHECK(near(st.now_ns, T2 + 2024 + 256), "sync after async: %.3f", st.now_ns - T2);
    CHECK(p.poll(&p, ta) == MF_PORT_OK && p.wait(&p, ta) == MF_PORT_OK, "release");

    /* Compute entirely hides a read: no stall. */
    double s1 = st.stall_ns;
    CHECK(p.read_start(&p, 0, a, 1024, &ta) == MF_PORT_OK, "start");
    mf_port_charge(&p, MF_WORK_MATVEC, MF_ENC_F32, 5000); /* 5000 ns > 2024 */
    CHECK(p.wait(&p, ta) == MF_PORT_OK && near(st.stall_ns, s1), "hidden read");

    /* Bad charges change nothing. */
    double t3 = st.now_ns;
    mf_port_charge(&p, MF_WORK_MATVEC, 99, 1000);
    mf_port_charge(&p, MF_WORK_MATVEC, -1, 1000);
    mf_port_charge(&p, (mf_work_kind)7, 0, 1000);
    mf_port_charge(&p, (mf_work_kind)(MF_WORK_CHECK + 1), 0, 1000);
    CHECK(near(st.now_ns, t3) && st.bad_charges == 4, "bad charges");
    mf_port_charge(&p, MF_WORK_CHECK, 0, 800);
    CHECK(near(st.now_ns, t3 + 100) && near(st.compute_ns_kind[MF_WORK_CHECK], 100) &&
              st.compute_bytes_kind[MF_WORK_CHECK] == 800,
          "check charged on its own");

    /* Queue depth 4: the 5th start is EBUSY; a sync read still works. */
    int tk[5];
    for (int i = 0; i < 4; i++)
        CHECK(p.read_start(&p, (uint64_t)i * 300, buf + i * 300, 300, &tk[i]) == MF_PORT_OK,
              "start %d", i);
    CHECK(p.read_start(&p, 0, buf + 1200, 10, &tk[4]) == MF_PORT_EBUSY, "5th EBUSY");
    CHECK(st.max_held == 4, "max held %u", st.max_held);
    CHECK(p.read(&p, 3000, buf + 2000, 100) == MF_PORT_OK &&
              memcmp(buf + 2000, data + 3000, 100) == 0,
          "sync with a full queue");
    CHECK(p.wait(&p, tk[2]) == MF_PORT_OK, "wait 2");
    CHECK(p.read_start(&p, 0, buf + 1200, 10, &tk[4]) == MF_PORT_OK, "start after a wait");
    CHECK(p.wait(&p, tk[2]) == MF_PORT_EINVAL, "stale ticket");
    CHECK(p.wait(&p, -5) == MF_PORT_EINVAL && p.poll(&p, 1 << 30) == MF_PORT_EINVAL, "bad ticket");
    int order[4] = {4, 0, 3, 1};
    for (int k = 0; k < 4; k++) CHECK(p.wait(&p, tk[order[k]]) == MF_PORT_OK, "drain");
    for (int i = 0; i < 4; i++)
        if (i != 2) CHECK(memcmp(buf + i * 300, data + (size_t)i * 300, 300) == 0, "data %d", i);
    CHECK(memcmp(buf + 1200, data, 10) == 0, "data 4");
    CHECK(p.read(&p, BUF_SIZE - 1, buf, 2) == MF_PORT_ERANGE, "range");
    CHECK(p.read_start(&p, BUF_SIZE, buf, 1, &ta) == MF_PORT_ERANGE, "async range");
    CHECK(p.read(&p, 0, NULL, 1) == MF_PORT_EINVAL, "NULL dst");
    CHECK(p.read(&p, BUF_SIZE, buf, 0) == MF_PORT_OK, "empty read at the end");

    /* latency_on_bus = 1: B's latency waits for the bus.
     * A: start T+1000, done T+2024; B: start max(T, T+2024)+1000 = T+3024,
     * done T+3536. */
    pr = test_profile(1);
    CHECK(mf_sim_port_open(&p, &st, &mem, &pr, NULL) == MF_PORT_OK, "reopen");
    CHECK(st.now_ns == 0 && st.reads == 0, "fresh");
    CHECK(p.read_start(&p, 0, a, 1024, &ta) == MF_PORT_OK &&
              p.read_start(&p, 4100, b, 300, &tb) == MF_PORT_OK,
          "starts");
    CHECK(p.wait(&p, ta) == MF_PORT_OK && near(st.now_ns, 2024), "A %.3f", st.now_ns);
    CHECK(p.wait(&p, tb) == MF_PORT_OK && near(st.now_ns, 3536), "B %.3f", st.now_ns);
    CHECK(near(st.bus_busy_ns, 1536), "busy %.3f", st.bus_busy_ns);
    mf_sim_reset(&st);
    CHECK(st.now_ns == 0 && st.stall_ns == 0 && st.reads == 0 && st.held == 0 &&
              st.backing == &mem,
          "reset");

    /* Invalid profiles / fault settings. */
    mf_sim_profile bad = test_profile(0);
    bad.queue_depth = 0;
    CHECK(mf_sim_port_open(&p, &st, &mem, &bad, NULL) == MF_PORT_EINVAL, "qd 0");
    bad.queue_depth = MF_SIM_MAX_QUEUE + 1;
    CHECK(mf_sim_port_open(&p, &st, &mem, &bad, NULL) == MF_PORT_EINVAL, "qd too big");
    bad = test_profile(0);
    bad.bandwidth = 0;
    CHECK(mf_sim_port_open(&p, &st, &mem, &bad, NULL) == MF_PORT_EINVAL, "bandwidth 0");
    bad = test_profile(0);
    bad.page_size = 0;
    CHECK(mf_sim_port_open(&p, &st, &mem, &bad, NULL) == MF_PORT_EINVAL, "page 0");
    mf_sim_faults f = {1, 0.5, 0.3, 0.3, 0, 0};
    CHECK(mf_sim_port_open(&p, &st, &mem, &pr, &f) == MF_PORT_EINVAL, "rates > 1");
    f.eio_rate = -0.1;
    CHECK(mf_sim_port_open(&p, &st, &mem, &pr, &f) == MF_PORT_EINVAL, "negative rate");
    CHECK(mf_sim_port_open(&p, &st, NULL, &pr, NULL) == MF_PORT_EINVAL, "no backing");
}

/* Random reads (sync and async mixed, out-of-order waits) with the data
 * checked; returns a digest of the run (clock, counters, results). */
typedef struct {
    int ok, eio, shrt, tmo, flip, other, bad_effect;
    uint64_t digest;
} run_result;

static uint64_t mix(uint64_t h, uint64_t v)
{
    h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    return h;
}

static int popcount8(uint8_t x)
{
    int n = 0;
    while (x) {
        n += x & 1;
        x >>= 1;
    }
    return n;
}

/* Classifies one completed read against the truth; dst was prefilled with
 * the complement of the truth so every untouched byte differs. */
static void classify(run_result *r, int rc, const uint8_t *dst, const uint8_t *truth, size_t len)
{
    size_t i, k;
    int flips;
    switch (rc) {
    case MF_PORT_OK:
        flips = 0;
        for (i = 0; i < len; i++) flips += popcount8((uint8_t)(dst[i] ^ truth[i]));
        if (flips == 0) r->ok++;
        else if (flips == 1) r->flip++;
        else r->bad_effect++;
        break;
    case MF_PORT_EIO:
    case MF_PORT_ETIMEOUT:
        for (i = 0; i < len; i++)
            if ((dst[i] ^ truth[i]) != 0xff) break;
        if (i != len) r->bad_effect++;
        if (rc == MF_PORT_EIO) r->eio++;
        else r->tmo++;
        break;
    case MF_PORT_ESHORT:
        for (k = 0; k < len && dst[k] == truth[k]; k++) {
        }
        for (i = k; i < len; i++)
            if ((dst[i] ^ truth[i]) != 0xff) break;
        if (k >= len || i != len) r->bad_effect++;
        r->shrt++;
        break;
    default: r->other++; break;
    }
}

static run_result run_reads(const mf_sim_profile *pr, const mf_sim_faults *f, int n, uint64_t seed,
                            mf_sim_state *st_out)
{
    mf_port mem, p;
    mf_mem_port_state ms;
    static mf_sim_state st;
    run_result r;
    memset(&r, 0, sizeof r);
    mf_mem_port_open(&mem, &ms, data, BUF_SIZE);
    if (mf_sim_port_open(&p, &st, &mem, pr, f) != MF_PORT_OK) {
        r.other = -1;
        return r;
    }
    uint64_t s = seed;
    static uint8_t bufs[4][512];
    uint64_t offs[4];
    size_t lens[4];
    int tk[4];
    for (int i = 0; i < n;) {
        uint64_t z = (s += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 31)) * 0xbf58476d1ce4e5b9ull;
        z ^= z >> 29;
        int k = 1 + (int)(z % 4);
        if (k > n - i) k = n - i;
        for (int j = 0; j < k; j++) {
            z = z * 6364136223846793005ull + 1442695040888963407ull;
            lens[j] = 1 + (size_t)((z >> 33) % 512);
            offs[j] = (z >> 7) % (BUF_SIZE - lens[j] + 1);
            for (size_t b = 0; b < lens[j]; b++) bufs[j][b] = (uint8_t)(0xffu ^ data[offs[j] + b]);
        }
        if (k == 1) {
            int rc = p.read(&p, offs[0], bufs[0], lens[0]);
            classify(&r, rc, bufs[0], data + offs[0], lens[0]);
            r.digest = mix(r.digest, (uint64_t)(rc + 100));
        } else {
            for (int j = 0; j < k; j++)
                if (p.read_start(&p, offs[j], bufs[j], lens[j], &tk[j]) != MF_PORT_OK) r.other++;
            mf_port_charge(&p, MF_WORK_MATVEC, (int)(z % 7), lens[0] * 8);
            for (int j = k - 1; j >= 0; j--) {
                int rc = p.wait(&p, tk[j]);
                classify(&r, rc, bufs[j], data + offs[j], lens[j]);
                r.digest = mix(r.digest, (uint64_t)(rc + 100));
            }
        }
        for (int j = 0; j < k; j++)
            for (size_t b = 0; b < lens[j]; b += 37) r.digest = mix(r.digest, bufs[j][b]);
        i += k;
    }
    uint64_t bits;
    memcpy(&bits, &st.now_ns, sizeof bits);
    r.digest = mix(r.digest, bits);
    r.digest = mix(r.digest, st.flash_bytes_device);
    if (st_out) *st_out = st;
    return r;
}

static void test_data_no_faults(void)
{
    mf_sim_profile pr = test_profile(0);
    mf_sim_state st;
    run_result r = run_reads(&pr, NULL, 20000, 5, &st);
    CHECK(r.ok == 20000 && r.bad_effect == 0 && r.other == 0 && r.eio + r.shrt + r.tmo + r.flip == 0,
          "no faults: ok %d", r.ok);
    CHECK(st.reads == 20000 && st.sync_reads + st.async_reads == 20000, "read counts");
    CHECK(st.faults_eio + st.faults_short + st.faults_timeout + st.faults_bitflip == 0, "none");
    /* Zero rates with a seed: identical to no faults at all. */
    mf_sim_faults f0 = {42, 0, 0, 0, 0, 0};
    run_result r0 = run_reads(&pr, &f0, 20000, 5, NULL);
    CHECK(r0.digest == r.digest, "zero rates == no faults");
}

/* |x - n p| <= 5 sigma of a binomial. */
static int within(long x, long n, double p)
{
    double mu = (double)n * p, sd = sqrt((double)n * p * (1 - p));
    return fabs((double)x - mu) <= 5 * sd + 1;
}

static void test_faults(void)
{
    mf_sim_profile pr = test_profile(0);
    const int N = 100000;
    mf_sim_state st;

    /* Each kind alone, then all at once. */
    const double rate = 0.03;
    for (int kind = 0; kind < 4; kind++) {
        mf_sim_faults f = {1000 + (uint64_t)kind, 0, 0, 0, 0, 0};
        double *rp[4] = {&f.eio_rate, &f.short_rate, &f.timeout_rate, &f.bitflip_rate};
        *rp[kind] = rate;
        run_result r = run_reads(&pr, &f, N, 9, &st);
        int got[4] = {r.eio, r.shrt, r.tmo, r.flip};
        uint64_t cnt[4] = {st.faults_eio, st.faults_short, st.faults_timeout, st.faults_bitflip};
        CHECK(within(got[kind], N, rate), "kind %d: %d of %d at rate %.2f", kind, got[kind], N,
              rate);
        CHECK(cnt[kind] == (uint64_t)got[kind], "kind %d counter %llu vs seen %d", kind,
              (unsigned long long)cnt[kind], got[kind]);
        CHECK(r.bad_effect == 0 && r.other == 0, "kind %d: effects wrong %d", kind, r.bad_effect);
        CHECK(r.ok + got[kind] == N, "kind %d: only that kind", kind);
        printf("test_sim: fault kind %d alone at %.2f: %d / %d\n", kind, rate, got[kind], N);
    }
    mf_sim_faults fa = {77, 0.01, 0.02, 0.005, 0.04, 2000};
    run_result r = run_reads(&pr, &fa, N, 11, &st);
    CHECK(within(r.eio, N, 0.01) && within(r.shrt, N, 0.02) && within(r.tmo, N, 0.005) &&
              within(r.flip, N, 0.04),
          "mixed: eio %d short %d timeout %d flip %d", r.eio, r.shrt, r.tmo, r.flip);
    CHECK(st.faults_eio == (uint64_t)r.eio && st.faults_short == (uint64_t)r.shrt &&
              st.faults_timeout == (uint64_t)r.tmo && st.faults_bitflip == (uint64_t)r.flip,
          "mixed counters");
    CHECK(r.bad_effect == 0 && r.other == 0 && r.ok + r.eio + r.shrt + r.tmo + r.flip == N,
          "mixed effects");
    printf("test_sim: mixed faults over %d reads: eio %d short %d timeout %d bitflip %d\n", N, r.eio,
           r.shrt, r.tmo, r.flip);

    /* Determinism: same seed, same everything; another seed differs. */
    run_result r2 = run_reads(&pr, &fa, N, 11, NULL);
    CHECK(r2.digest == r.digest && r2.eio == r.eio && r2.flip == r.flip, "same seed, same run");
    mf_sim_faults fb = fa;
    fb.seed = 78;
    run_result r3 = run_reads(&pr, &fb, N, 11, NULL);
    CHECK(r3.digest != r.digest, "other seed, other run");
    /* mf_sim_reset replays the same fault stream. */
    {
        mf_port mem, p;
        mf_mem_port_state ms;
        static mf_sim_state s2;
        mf_mem_port_open(&mem, &ms, data, BUF_SIZE);
        mf_sim_faults ff = {5, 0.25, 0.25, 0.25, 0.25, 0};
        mf_sim_port_open(&p, &s2, &mem, &pr, &ff);
        uint8_t b[64];
        int seq1[200], seq2[200], same = 1;
        for (int i = 0; i < 200; i++) seq1[i] = p.read(&p, (uint64_t)i * 64, b, 64);
        double t1 = s2.now_ns;
        mf_sim_reset(&s2);
        for (int i = 0; i < 200; i++) seq2[i] = p.read(&p, (uint64_t)i * 64, b, 64);
        for (int i = 0; i < 200; i++) same &= seq1[i] == seq2[i];
        CHECK(same && s2.now_ns == t1, "reset replays");
    }

    /* Timeout timing: held bus for timeout_ns after the latency. */
    {
        mf_port mem, p;
        mf_mem_port_state ms;
        static mf_sim_state s3;
        mf_mem_port_open(&mem, &ms, data, BUF_SIZE);
        mf_sim_faults ft = {1, 0, 0, 1.0, 0, 5000};
        mf_sim_port_open(&p, &s3, &mem, &pr, &ft);
        uint8_t b[100];
        CHECK(p.read(&p, 0, b, 100) == MF_PORT_ETIMEOUT, "timeout");
        CHECK(near(s3.now_ns, 6000), "timeout at latency+5000: %.3f", s3.now_ns);
        int t;
        CHECK(p.read_start(&p, 0, b, 100, &t) == MF_PORT_OK, "start");
        CHECK(p.poll(&p, t) == MF_PORT_EPENDING, "timeout pending");
        mf_port_charge(&p, MF_WORK_OTHER, 0, 4 * 6000);
        CHECK(p.poll(&p, t) == MF_PORT_ETIMEOUT && p.wait(&p, t) == MF_PORT_ETIMEOUT,
              "timeout via poll then wait");
        ft.timeout_ns = 0; /* default */
        mf_sim_port_open(&p, &s3, &mem, &pr, &ft);
        CHECK(p.read(&p, 0, b, 100) == MF_PORT_ETIMEOUT &&
                  near(s3.now_ns, 1000 + MF_SIM_DEFAULT_TIMEOUT_NS),
              "default timeout");
        /* Short reads and flips need bytes: a zero-length read stays clean. */
        mf_sim_faults fz = {1, 0, 0.5, 0, 0.5, 0};
        mf_sim_port_open(&p, &s3, &mem, &pr, &fz);
        int clean = 1;
        for (int i = 0; i < 100; i++) clean &= p.read(&p, 10, b, 0) == MF_PORT_OK;
        CHECK(clean && s3.faults_short == 0 && s3.faults_bitflip == 0, "empty reads clean");
        /* Every flip is exactly one bit, at every position over time. */
        mf_sim_faults fl = {3, 0, 0, 0, 1.0, 0};
        mf_sim_port_open(&p, &s3, &mem, &pr, &fl);
        int hist[8] = {0}, one = 1, all_ok = 1;
        uint32_t byte_seen = 0;
        for (int i = 0; i < 4000; i++) {
            uint8_t x[4];
            all_ok &= p.read(&p, 100, x, 4) == MF_PORT_OK;
            int nb = 0;
            for (int j = 0; j < 4; j++) {
                uint8_t d = (uint8_t)(x[j] ^ data[100 + j]);
                nb += popcount8(d);
                for (int bit = 0; bit < 8; bit++)
                    if (d & (1u << bit)) {
                        hist[bit]++;
                        byte_seen |= 1u << j;
                    }
            }
            one &= nb == 1;
        }
        int spread = 1;
        for (int bit = 0; bit < 8; bit++) spread &= hist[bit] > 300;
        CHECK(all_ok && one && spread && byte_seen == 15, "one flipped bit per read, all bits hit");
    }
}

static void test_profiles(void)
{
    const char *names[] = {"mcu-qspi", "mcu-octal", "mcu-m33-qspi", "sbc-sdcard", "phone-ufs"};
    CHECK(mf_sim_profile_count() >= 5, "count");
    CHECK(mf_sim_profile_find("nope") == NULL && mf_sim_profile_find(NULL) == NULL, "unknown");
    CHECK(mf_sim_profile_at(-1) == NULL && mf_sim_profile_at(mf_sim_profile_count()) == NULL, "at");
    mf_port mem, p;
    mf_mem_port_state ms;
    static mf_sim_state st;
    mf_mem_port_open(&mem, &ms, data, BUF_SIZE);
    for (int i = 0; i < 5; i++) {
        const mf_sim_profile *pr = mf_sim_profile_find(names[i]);
        CHECK(pr && strcmp(pr->name, names[i]) == 0, "find %s", names[i]);
        if (!pr) continue;
        CHECK(mf_sim_port_open(&p, &st, &mem, pr, NULL) == MF_PORT_OK, "open %s", names[i]);
        int pos = pr->other_ns_per_byte > 0 && pr->core_mhz > 0;
        for (int e = 0; e < MF_SIM_ENC_COUNT; e++)
            pos &= pr->matvec_ns_per_byte[e] > 0 && pr->attention_ns_per_byte[e] > 0;
        /* a KV value costs no less in a smaller encoding (it is widened) */
        pos &= pr->attention_ns_per_byte[MF_ENC_Q8] >= 4 * pr->attention_ns_per_byte[MF_ENC_F32] &&
               pr->attention_ns_per_byte[MF_ENC_F16] >= 2 * pr->attention_ns_per_byte[MF_ENC_F32] &&
               pr->attention_ns_per_byte[MF_ENC_BF16] >= 2 * pr->attention_ns_per_byte[MF_ENC_F32];
        CHECK(pos, "%s costs positive", names[i]);
        /* Reading 1 MiB sequentially in 64 KiB requests approaches the
         * bandwidth: (latency + xfer) per request, serial. */
        uint8_t b[4096];
        double t0 = st.now_ns;
        CHECK(p.read(&p, 0, b, sizeof b) == MF_PORT_OK && memcmp(b, data, sizeof b) == 0,
              "%s read", names[i]);
        double expect = pr->latency_ns + mf_sim_transfer_ns(pr, 0, sizeof b);
        CHECK(near(st.now_ns - t0, expect), "%s: %.1f ns", names[i], st.now_ns - t0);
    }
    for (int i = 0; i < mf_sim_profile_count(); i++) {
        const mf_sim_profile *pr = mf_sim_profile_at(i);
        CHECK(mf_sim_profile_find(pr->name) == pr, "lookup");
        /* The figures quoted in docs/board-profiles.md. */
        double rd = pr->latency_ns + mf_sim_transfer_ns(pr, 0, 1u << 20);
        printf("test_sim: %-10s 1 MiB read %.2f ms, q4 matvec over 1 MiB %.2f ms, q8 %.2f ms\n",
               pr->name, rd / 1e6, mf_sim_compute_ns(pr, MF_WORK_MATVEC, MF_ENC_Q4, 1u << 20) / 1e6,
               mf_sim_compute_ns(pr, MF_WORK_MATVEC, MF_ENC_Q8, 1u << 20) / 1e6);
    }
    /* The two MCU profiles differ only in the flash. */
    const mf_sim_profile *q = mf_sim_profile_find("mcu-qspi"), *o = mf_sim_profile_find("mcu-octal");
    CHECK(q && o && q->bandwidth < o->bandwidth &&
              memcmp(q->matvec_ns_per_byte, o->matvec_ns_per_byte, sizeof q->matvec_ns_per_byte) == 0,
          "mcu profiles");
}

static void test_mem_port(void)
{
    mf_port p;
    mf_mem_port_state ms;
    CHECK(mf_mem_port_open(&p, &ms, data, 1000) == MF_PORT_OK && p.size == 1000, "open");
    uint8_t b[16];
    CHECK(mf_port_read(&p, 990, b, 10) == MF_PORT_OK && memcmp(b, data + 990, 10) == 0, "read");
    CHECK(mf_port_read(&p, 991, b, 10) == MF_PORT_ERANGE && p.read(&p, 991, b, 10) == MF_PORT_ERANGE,
          "range");
    CHECK(mf_port_map(&p, 10, 20) == data + 10 && mf_port_map(&p, 990, 11) == NULL, "map");
    CHECK(p.read_start == NULL && mf_port_now_ns(&p) == 0, "sync only");
    CHECK(mf_mem_port_open(&p, &ms, NULL, 10) == MF_PORT_EINVAL, "NULL buffer");
}

/* The simulator over the POSIX file port. */
static void test_over_posix(void)
{
    char path[] = "/tmp/mf_test_sim_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0, "mkstemp");
    if (fd < 0) return;
    CHECK(write(fd, data, BUF_SIZE) == BUF_SIZE, "write");
    close(fd);
    mf_port fp, p;
    mf_posix_port_state fs;
    static mf_sim_state st;
    CHECK(mf_posix_port_open(&fp, &fs, path) == MF_PORT_OK, "posix open");
    CHECK(mf_sim_port_open(&p, &st, &fp, mf_sim_profile_find("sbc-sdcard"), NULL) == MF_PORT_OK,
          "sim over posix");
    static uint8_t b[3][20000];
    int t[3], ok = 1;
    for (int round = 0; round < 50; round++) {
        uint64_t off[3];
        for (int j = 0; j < 3; j++) {
            off[j] = rnd() % (BUF_SIZE - 20000);
            ok &= p.read_start(&p, off[j], b[j], 20000, &t[j]) == MF_PORT_OK;
        }
        for (int j = 2; j >= 0; j--)
            ok &= p.wait(&p, t[j]) == MF_PORT_OK && memcmp(b[j], data + off[j], 20000) == 0;
    }
    CHECK(ok, "150 async reads through sim+posix");
    mf_posix_port_close(&fp);
    unlink(path);
}

int main(void)
{
    for (size_t i = 0; i < BUF_SIZE; i++) data[i] = (uint8_t)(rnd() >> 56);
    test_formulas();
    test_timing();
    test_cancel();
    test_wait_part();
    test_data_no_faults();
    test_faults();
    test_profiles();
    test_mem_port();
    test_over_posix();
    return mf_test_done("test_sim");
}
