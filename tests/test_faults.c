/*
 * Flash faults (issue 6 item 2) on arch-mixtral: 10,000 tokens under each
 * fault kind of the simulated flash (read errors, short reads, timeouts,
 * flipped bits; seeded), with asynchronous prefetch (combined predictor),
 * few slots (reads all the time), 2 retries, CRC on every read for the
 * bit-flip run (on first read for the others: their faults are reported by
 * the port). Checks:
 *  - every call either completes with logits bit-identical to a fault-free
 *    run in lockstep, or fails with MF_E_FLASH / MF_E_CRC, the position not
 *    advanced and no logits exposed; feeding the same token again works;
 *  - every fault the simulator injected was detected by the runtime
 *    (flash_errors + crc_failures = injected, minus those still in flight);
 *  - each kind really exercised the failure path (some tokens failed).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../experts/store.h"
#include "../port/sim/sim_port.h"
#include "../runtime/moeflash.h"
#include "../tools/lib/json.h"
#include "harness.h"
#include "store_fixture.h"
#include "image_fixture.h"

#ifndef N_TOKENS
#define N_TOKENS 10000u
#endif
#define WINDOW 100u

static uint8_t *img;
static size_t img_len;

static mf_model *open_model(const mf_port *port, const mf_options *opt, void **arena)
{
    mf_model *m;
    (void)mf_test_model(port, opt, &m, arena);
    return m;
}

static void run_kind(int kind, const uint32_t *ids, const float *ref_logits)
{
    static const char *names[] = {"", "read error", "short read", "timeout", "bit flip"};
    mf_mem_port_state ms;
    mf_port mem, sim;
    mf_sim_state ss;
    mf_mem_port_open(&mem, &ms, img, img_len);
    mf_sim_port_open(&sim, &ss, &mem, mf_sim_profile_find("mcu-qspi"), NULL);

    mf_options fo;
    mf_options_default(&fo);
    fo.expert_slots = 8;
    fo.policy = MF_POLICY_LRU;
    fo.predictor = MF_PREDICT_COMBINED;
    /* CRC on every read where bits flip; elsewhere the port reports the
     * fault itself, and CRC on first read keeps the test fast */
    fo.verify_experts = kind == 4 ? 1 : 2;
    fo.max_retries = 2;
    void *fa = NULL;
    mf_model *m = open_model(&sim, &fo, &fa);
    CHECK(m != NULL, "%s: init", names[kind]);
    if (!m) goto out;

    /* Faults from now on (the resident weights were read fault-free). */
    mf_sim_faults f;
    memset(&f, 0, sizeof f);
    f.seed = 1000u + (uint64_t)kind;
    double rate = 0.15;
    if (kind == 1) f.eio_rate = rate;
    if (kind == 2) f.short_rate = rate;
    if (kind == 3) f.timeout_rate = rate;
    if (kind == 4) f.bitflip_rate = rate;
    ss.faults = f;
    ss.rng = f.seed;

    uint32_t V = mf_vocab_size(m);
    uint64_t failures = 0, bad_code = 0, moved = 0, exposed = 0, mismatches = 0, stuck = 0;
    uint32_t completed = 0;
    for (uint32_t t = 0; t < N_TOKENS; t++) {
        if (t % WINDOW == 0) mf_reset(m);
        int rc, tries = 0;
        for (;;) {
            uint32_t pos = mf_position(m);
            rc = mf_feed(m, ids + t, 1);
            if (rc == MF_OK) break;
            failures++;
            if (rc != MF_E_FLASH && rc != MF_E_CRC && !bad_code++)
                fprintf(stderr, "%s: token %u failed with %d (%s)\n", names[kind], t, rc,
                        mf_strerror(rc));
            if (mf_position(m) != pos) moved++;
            if (mf_logits(m) != NULL) exposed++;
            if (++tries > 100) break;
        }
        if (rc != MF_OK) {
            stuck++;
            break;
        }
        completed++;
        if (memcmp(mf_logits(m), ref_logits + (size_t)t * V, sizeof(float) * V)) mismatches++;
    }
    mf_stats st;
    mf_get_stats(m, &st);
    uint64_t injected = ss.faults_eio + ss.faults_short + ss.faults_timeout + ss.faults_bitflip;
    uint64_t pending = 0;
    for (int i = 0; i < MF_SIM_MAX_QUEUE; i++)
        if (ss.req[i].held && ss.req[i].fault != MF_SIM_FAULT_NONE) pending++;
    uint64_t detected = st.flash_errors + st.crc_failures;
    printf("%-10s: %u tokens, %llu reads, %llu faults injected, %llu detected (+%llu in flight), "
           "%llu retries, %llu tokens failed and were fed again\n",
           names[kind], completed, (unsigned long long)ss.reads, (unsigned long long)injected,
           (unsigned long long)detected, (unsigned long long)pending,
           (unsigned long long)st.retries, (unsigned long long)failures);
    CHECK(completed == N_TOKENS && !stuck, "%s: %u of %u tokens completed", names[kind], completed,
          N_TOKENS);
    CHECK(mismatches == 0, "%s: %llu completed tokens with logits different from the fault-free run",
          names[kind], (unsigned long long)mismatches);
    CHECK(bad_code == 0, "%s: %llu failures with another code than MF_E_FLASH/MF_E_CRC", names[kind],
          (unsigned long long)bad_code);
    CHECK(moved == 0 && exposed == 0, "%s: a failed token moved the position (%llu) or left logits (%llu)",
          names[kind], (unsigned long long)moved, (unsigned long long)exposed);
    CHECK(failures > 0, "%s: no token failed: the failure path was not exercised", names[kind]);
    CHECK(injected > 1000, "%s: only %llu faults injected", names[kind], (unsigned long long)injected);
    CHECK(detected + pending == injected, "%s: %llu faults injected, %llu detected, %llu in flight",
          names[kind], (unsigned long long)injected, (unsigned long long)detected,
          (unsigned long long)pending);
    if (kind == 4)
        CHECK(st.crc_failures == ss.faults_bitflip, "every flipped bit caught by the CRC");
out:
    free(fa);
}

/* ---- The store's fault paths, one read at a time (docs/expert-cache.md
 * "Flash faults", experts/store.h): a port wrapping the simulated flash
 * fails, on request, the reads of expert data: synchronous reads (EIO),
 * read_start (EIO), or asynchronous reads (wait, poll, wait_part and
 * cancel report EIO once the request is done); or flips a bit of a read
 * that completed before it was cancelled, with a poll that never reports
 * completion (a port may leave it to wait). */
typedef struct {
    const mf_port *inner;
    uint64_t lo, hi; /* the expert data section */
    int fail_sync, fail_start, fail_async, slow_poll, flip_cancelled;
    uint32_t sync_reads, async_reads; /* of expert data, failed or not */
    struct {
        int ticket, fail;
        uint8_t *dst;
        size_t len;
    } req[32]; /* asynchronous reads of expert data in flight */
    int n_req;
} flaky_ctx;

static int flaky_in(const flaky_ctx *c, uint64_t off, size_t len)
{
    return off < c->hi && off + len > c->lo;
}

/* The entry of an asynchronous read of expert data, or -1. */
static int flaky_find(const flaky_ctx *c, int ticket)
{
    for (int i = 0; i < c->n_req; i++)
        if (c->req[i].ticket == ticket) return i;
    return -1;
}

static void flaky_drop(flaky_ctx *c, int i)
{
    if (i >= 0) c->req[i] = c->req[--c->n_req];
}

static int flaky_read(const mf_port *p, uint64_t off, void *dst, size_t len)
{
    flaky_ctx *c = (flaky_ctx *)p->ctx;
    if (flaky_in(c, off, len)) {
        c->sync_reads++;
        if (c->fail_sync) return MF_PORT_EIO;
    }
    return c->inner->read(c->inner, off, dst, len);
}

static int flaky_read_start(const mf_port *p, uint64_t off, void *dst, size_t len, int *ticket)
{
    flaky_ctx *c = (flaky_ctx *)p->ctx;
    int in = flaky_in(c, off, len);
    if (in) {
        c->async_reads++;
        if (c->fail_start) return MF_PORT_EIO;
    }
    int rc = c->inner->read_start(c->inner, off, dst, len, ticket);
    if (rc == MF_PORT_OK && in && c->n_req < 32) {
        c->req[c->n_req].ticket = *ticket;
        c->req[c->n_req].fail = c->fail_async;
        c->req[c->n_req].dst = (uint8_t *)dst;
        c->req[c->n_req].len = len;
        c->n_req++;
    }
    return rc;
}

static int flaky_poll(const mf_port *p, int ticket)
{
    flaky_ctx *c = (flaky_ctx *)p->ctx;
    int i = flaky_find(c, ticket);
    if (i >= 0 && c->slow_poll) return MF_PORT_EPENDING;
    int rc = c->inner->poll(c->inner, ticket);
    return rc == MF_PORT_OK && i >= 0 && c->req[i].fail ? MF_PORT_EIO : rc;
}

static int flaky_wait(const mf_port *p, int ticket)
{
    flaky_ctx *c = (flaky_ctx *)p->ctx;
    int i = flaky_find(c, ticket);
    int rc = c->inner->wait(c->inner, ticket);
    if (rc == MF_PORT_OK && i >= 0 && c->req[i].fail) rc = MF_PORT_EIO;
    flaky_drop(c, i);
    return rc;
}

static int flaky_wait_part(const mf_port *p, int ticket, size_t need)
{
    flaky_ctx *c = (flaky_ctx *)p->ctx;
    int i = flaky_find(c, ticket);
    if (i >= 0 && c->req[i].fail) { /* it fails: seen once it has ended */
        while (c->inner->poll(c->inner, ticket) == MF_PORT_EPENDING)
            mf_port_charge(c->inner, MF_WORK_OTHER, 0, 1u << 16);
        return MF_PORT_EIO;
    }
    return c->inner->wait_part(c->inner, ticket, need);
}

static int flaky_cancel(const mf_port *p, int ticket, size_t *done)
{
    flaky_ctx *c = (flaky_ctx *)p->ctx;
    int i = flaky_find(c, ticket);
    int rc = c->inner->cancel(c->inner, ticket, done);
    if (rc == MF_PORT_OK && i >= 0) {
        if (c->req[i].fail) {
            *done = 0;
            rc = MF_PORT_EIO;
        } else if (c->flip_cancelled && *done == c->req[i].len) {
            c->req[i].dst[c->req[i].len / 2] ^= 0x10; /* a bit flipped on the bus */
        }
    }
    if (rc != MF_PORT_EINVAL) flaky_drop(c, i);
    return rc;
}

static uint64_t flaky_now(const mf_port *p)
{
    const flaky_ctx *c = (const flaky_ctx *)p->ctx;
    return mf_port_now_ns(c->inner);
}

static void flaky_charge(const mf_port *p, mf_work_kind kind, int encoding, uint64_t bytes)
{
    const flaky_ctx *c = (const flaky_ctx *)p->ctx;
    mf_port_charge(c->inner, kind, encoding, bytes);
}

typedef struct {
    mf_mem_port_state ms;
    mf_port mem, sim, port;
    mf_sim_state ss;
    flaky_ctx fc;
    mf_image_header h;
    mf_expert_store s;
    mf_stats st;
    void *arena;
} flaky_store;

/* The store over the wrapped mcu-qspi flash: 4 slots, LRU, no predictor,
 * CRC on first read, 2 retries. */
static int flaky_open(flaky_store *u)
{
    memset(u, 0, sizeof *u);
    uint8_t scratch[512];
    if (mf_mem_port_open(&u->mem, &u->ms, img, img_len) != MF_PORT_OK ||
        mf_sim_port_open(&u->sim, &u->ss, &u->mem, mf_sim_profile_find("mcu-qspi"), NULL) !=
            MF_PORT_OK ||
        mf_image_read_header(&u->mem, &u->h, 1, scratch, sizeof scratch) != MF_OK)
        return -1;
    const mf_section *ed = mf_image_section(&u->h, MF_SEC_EXPERT_DATA);
    if (!ed) return -1;
    u->fc.inner = &u->sim;
    u->fc.lo = ed->offset;
    u->fc.hi = ed->offset + ed->bytes;
    u->port = u->sim;
    u->port.ctx = &u->fc;
    u->port.map = NULL;
    u->port.log = NULL;
    u->port.read = flaky_read;
    u->port.read_start = flaky_read_start;
    u->port.poll = flaky_poll;
    u->port.wait = flaky_wait;
    u->port.wait_part = flaky_wait_part;
    u->port.cancel = flaky_cancel;
    u->port.now_ns = flaky_now;
    u->port.charge_compute = flaky_charge;
    mf_options o;
    mf_options_default(&o);
    o.expert_slots = 4;
    o.policy = MF_POLICY_LRU;
    o.verify_experts = 2;
    o.max_retries = 2;
    if (mf_test_store_open(&u->mem, &u->port, &o, &u->h, &u->s, &u->st, &u->arena)) return -1;
    return u->s.queue_depth > 0 && u->s.stream ? 0 : -1;
}

/* Layer `layer` routes to `expert` alone (its demand read starts). */
static void flaky_route(flaky_store *u, uint32_t layer, uint32_t expert)
{
    uint8_t chosen[256] = {0};
    chosen[expert] = 1;
    mf_store_chunk_start(&u->s, 1);
    mf_store_routed(&u->s, layer, chosen);
}

/* get(): MF_OK only with the image's bytes of (layer, expert); released. */
static int flaky_get(flaky_store *u, uint32_t layer, uint32_t expert)
{
    const uint8_t *blob;
    int enc;
    int rc = mf_store_get(&u->s, layer, expert, &blob, &enc);
    if (rc != MF_OK) return rc;
    const mf_expert_entry *e = &u->s.dir[(size_t)layer * u->h.n_experts + expert];
    int same = memcmp(blob, img + e->offset, e->bytes) == 0;
    mf_store_release(&u->s, layer, expert);
    return same ? MF_OK : 99;
}

/* No slot holds a read in flight or an expert (after failures only). */
static int flaky_all_empty(const flaky_store *u)
{
    if (u->s.inflight) return 0;
    for (uint32_t i = 0; i < u->s.n_slots; i++)
        if (u->s.slots[i].state != MF_SLOT_EMPTY || u->s.slots[i].layer >= 0) return 0;
    return 1;
}

static void store_faults(void)
{
    static flaky_store u;
    /* A failed asynchronous read waited for by get() is the first attempt:
     * 1 + max_retries reads in all, then MF_E_FLASH, every slot EMPTY. */
    CHECK(flaky_open(&u) == 0, "store over the failing port");
    if (!u.arena) return;
    u.fc.fail_async = u.fc.fail_sync = 1;
    flaky_route(&u, 0, 3);
    CHECK(u.fc.async_reads == 1 && u.s.inflight == 1, "the demand read of (0, 3) started");
    int rc = flaky_get(&u, 0, 3);
    CHECK(rc == MF_E_FLASH, "failing reads: get -> %s", mf_strerror(rc));
    CHECK(u.fc.async_reads + u.fc.sync_reads == 1 + 2,
          "1 + max_retries attempts: %u asynchronous + %u synchronous", u.fc.async_reads,
          u.fc.sync_reads);
    CHECK(u.st.flash_errors == 3 && u.st.retries == 2, "%llu flash errors, %llu retries",
          (unsigned long long)u.st.flash_errors, (unsigned long long)u.st.retries);
    CHECK(flaky_all_empty(&u), "the failed reads left every slot EMPTY");
    u.fc.fail_async = u.fc.fail_sync = 0;
    CHECK(flaky_get(&u, 0, 3) == MF_OK, "the flash works again: the right bytes");

    /* wait_part reports the read's error (store.h: "MF_OK, or the read's
     * error"); get() then reads the expert again. */
    u.fc.fail_async = 1;
    flaky_route(&u, 1, 2);
    const uint8_t *data;
    int enc;
    uint32_t bytes = u.s.dir[1 * u.h.n_experts + 2].bytes;
    CHECK(mf_store_stream(&u.s, 1, 2, &data, &enc) == 1, "(1, 2) streams");
    rc = mf_store_stream_wait(&u.s, 1, 2, bytes);
    CHECK(rc == MF_E_FLASH, "stream_wait on a failing read: %s", mf_strerror(rc));
    u.fc.fail_async = 0;
    CHECK(flaky_get(&u, 1, 2) == MF_OK && u.s.refilled, "read again by get(): the right bytes");
    mf_store_drain(&u.s);
    free(u.arena);

    /* read_start fails: the slot it was to fill is not left assigned, and
     * get() reads the expert (a miss), never hands out the slot's old bytes. */
    CHECK(flaky_open(&u) == 0, "store again");
    if (!u.arena) return;
    u.fc.fail_start = 1;
    flaky_route(&u, 0, 5);
    CHECK(u.fc.async_reads == 1 && u.s.inflight == 0, "the demand read of (0, 5) could not start");
    CHECK(flaky_all_empty(&u), "no slot assigned by the demand read that did not start");
    CHECK(flaky_get(&u, 0, 5) == MF_OK, "(0, 5): the right bytes");
    CHECK(mf_store_prefetch(&u.s, 1, 6) == -1, "a prediction that cannot start: -1");
    CHECK(u.s.where[1 * u.h.n_experts + 6] < 0 && u.s.inflight == 0,
          "no slot assigned by the prediction that did not start");
    u.fc.fail_start = 0;
    CHECK(flaky_get(&u, 1, 6) == MF_OK, "(1, 6): the right bytes");
    CHECK(u.st.misses == 2 && u.st.hits == 0, "two misses (%llu), no hit (%llu)",
          (unsigned long long)u.st.misses, (unsigned long long)u.st.hits);
    free(u.arena);

    /* A prediction whose read has completed (with a flipped bit) when layer
     * 1 routes elsewhere and stops it: the cancel reports every byte, the
     * blob is checked (CRC on first read) and dropped, never kept READY. */
    CHECK(flaky_open(&u) == 0, "store once more");
    if (!u.arena) return;
    u.fc.slow_poll = u.fc.flip_cancelled = 1;
    mf_store_chunk_start(&u.s, 1);
    CHECK(mf_store_prefetch(&u.s, 1, 4) == 1, "prediction (1, 4) in flight");
    for (int i = 0; i < 100000 && u.ss.now_ns <= u.ss.bus_free_ns; i++)
        mf_port_charge(&u.sim, MF_WORK_OTHER, 0, 1u << 16);
    CHECK(u.ss.now_ns > u.ss.bus_free_ns, "its read has completed");
    flaky_route(&u, 1, 2);
    CHECK(u.st.crc_failures == 1 && u.s.where[1 * u.h.n_experts + 4] < 0,
          "the cancelled corrupt read failed its CRC (%llu) and left no slot",
          (unsigned long long)u.st.crc_failures);
    u.fc.slow_poll = u.fc.flip_cancelled = 0;
    CHECK(flaky_get(&u, 1, 2) == MF_OK && flaky_get(&u, 1, 4) == MF_OK,
          "(1, 2) and then (1, 4): the right bytes");
    mf_store_drain(&u.s);
    free(u.arena);
}

int main(void)
{
    img = mf_test_image("tests/data/arch-mixtral", "--weights f32", NULL, &img_len, NULL);
    int rc = img ? 0 : 1;
    CHECK(rc == 0, "convert arch-mixtral");
    size_t tlen;
    char *text = mf_read_file("tests/data/tinyshakespeare.txt", &tlen);
    CHECK(img && text && tlen > N_TOKENS, "inputs");
    if (rc || !img || !text || tlen <= N_TOKENS) return mf_test_done("test_faults");
    uint32_t *ids = malloc(sizeof(uint32_t) * N_TOKENS);
    for (uint32_t i = 0; i < N_TOKENS; i++) ids[i] = (uint8_t)text[i];
    /* The fault-free run: all experts in RAM, memory port. */
    float *ref = malloc(sizeof(float) * 256 * N_TOKENS);
    mf_mem_port_state ms;
    mf_port mem;
    mf_mem_port_open(&mem, &ms, img, img_len);
    mf_options ro;
    mf_options_default(&ro);
    ro.expert_slots = 16;
    void *ra = NULL;
    mf_model *rm = open_model(&mem, &ro, &ra);
    CHECK(rm && mf_vocab_size(rm) == 256, "reference model");
    if (!rm) return mf_test_done("test_faults");
    int ok = 1;
    for (uint32_t t = 0; t < N_TOKENS && ok; t++) {
        if (t % WINDOW == 0) mf_reset(rm);
        ok = mf_feed(rm, ids + t, 1) == MF_OK;
        if (ok) memcpy(ref + (size_t)t * 256, mf_logits(rm), sizeof(float) * 256);
    }
    CHECK(ok, "reference run");
    free(ra);
    store_faults();
    for (int kind = 1; kind <= 4 && ok; kind++) run_kind(kind, ids, ref);
    free(ref);
    free(ids);
    free(text);
    free(img);
    return mf_test_done("test_faults");
}
