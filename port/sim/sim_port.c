/* The simulated flash device and the memory port: see sim_port.h. */
#include "sim_port.h"

#include <string.h>

#define TICKET_GEN_MAX (0x7fffffffu / MF_SIM_MAX_QUEUE)

/* ------------------------------------------------------------ PRNG */

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [0,1) with 53 bits. */
static double rng_unit(uint64_t *s)
{
    return (double)(splitmix64(s) >> 11) * (1.0 / 9007199254740992.0);
}

/* Uniform integer in [0, n), n <= 2^53. */
static uint64_t rng_below(uint64_t *s, uint64_t n)
{
    uint64_t v = (uint64_t)(rng_unit(s) * (double)n);
    return v < n ? v : n - 1;
}

/* ------------------------------------------------------------ formulas */

uint64_t mf_sim_device_bytes(const mf_sim_profile *prof, uint64_t off, uint64_t len)
{
    if (!prof || !prof->page_size || len == 0) return 0;
    uint64_t P = prof->page_size;
    uint64_t first = off / P, last = (off + len - 1) / P;
    return (last - first + 1) * P;
}

double mf_sim_transfer_ns(const mf_sim_profile *prof, uint64_t off, uint64_t len)
{
    if (!prof || prof->bandwidth <= 0) return 0.0;
    uint64_t dev = mf_sim_device_bytes(prof, off, len);
    return (double)dev * 1e9 / prof->bandwidth;
}

double mf_sim_compute_ns(const mf_sim_profile *prof, mf_work_kind kind, int encoding,
                         uint64_t bytes)
{
    if (!prof) return 0.0;
    switch (kind) {
    case MF_WORK_MATVEC:
        if (encoding < 0 || encoding >= MF_SIM_ENC_COUNT) return 0.0;
        return (double)bytes * prof->matvec_ns_per_byte[encoding];
    case MF_WORK_ATTENTION:
        if (encoding < 0 || encoding >= MF_SIM_ENC_COUNT) return 0.0;
        return (double)bytes * prof->attention_ns_per_byte[encoding];
    case MF_WORK_OTHER: return (double)bytes * prof->other_ns_per_byte;
    case MF_WORK_CHECK: return (double)bytes * prof->check_ns_per_byte;
    default: return 0.0;
    }
}

/* ------------------------------------------------------------ sim port */

static int sim_read(const mf_port *p, uint64_t off, void *dst, size_t len);

mf_sim_state *mf_sim_state_of(const mf_port *p)
{
    if (!p || p->read != sim_read) return NULL;
    return (mf_sim_state *)p->ctx;
}

static double timeout_ns(const mf_sim_state *st)
{
    return st->faults.timeout_ns > 0 ? st->faults.timeout_ns : MF_SIM_DEFAULT_TIMEOUT_NS;
}

/* Places request r on the bus, which is free from bus_free: its data
 * phase lasts busy ns and starts after the per-request latency. */
static void schedule(mf_sim_state *st, mf_sim_request *r, double bus_free, double busy)
{
    const mf_sim_profile *pr = &st->prof;
    double t = r->issue_ns;
    if (pr->latency_on_bus) {
        r->bus_ns = t > bus_free ? t : bus_free;
        r->start_ns = r->bus_ns + pr->latency_ns;
    } else {
        r->start_ns = t + pr->latency_ns > bus_free ? t + pr->latency_ns : bus_free;
        r->bus_ns = r->start_ns;
    }
    r->done_ns = r->start_ns + busy;
    st->bus_free_ns = r->done_ns;
}

/* Issues a request at the current clock: timing, counters, fault draw. */
static void issue(mf_sim_state *st, mf_sim_request *r, uint64_t off, void *dst, size_t len)
{
    const mf_sim_profile *pr = &st->prof;
    r->off = off;
    r->dst = dst;
    r->len = len;
    r->delivered = 0;
    r->result = MF_PORT_OK;
    r->fault = MF_SIM_FAULT_NONE;
    r->fault_arg = 0;
    r->part = 0;

    /* Fault draw: one u per request, plus one for the short length / bit. */
    const mf_sim_faults *f = &st->faults;
    if (f->eio_rate > 0 || f->short_rate > 0 || f->timeout_rate > 0 || f->bitflip_rate > 0) {
        double u = rng_unit(&st->rng);
        double a = f->eio_rate, b = a + f->short_rate, c = b + f->timeout_rate,
               d = c + f->bitflip_rate;
        if (u < a) {
            r->fault = MF_SIM_FAULT_EIO;
        } else if (u < b) {
            if (len > 0) {
                r->fault = MF_SIM_FAULT_SHORT;
                r->fault_arg = rng_below(&st->rng, (uint64_t)len);
            }
        } else if (u < c) {
            r->fault = MF_SIM_FAULT_TIMEOUT;
        } else if (u < d) {
            if (len > 0) {
                r->fault = MF_SIM_FAULT_BITFLIP;
                r->fault_arg = rng_below(&st->rng, (uint64_t)len * 8u);
            }
        }
        switch (r->fault) {
        case MF_SIM_FAULT_EIO: st->faults_eio++; break;
        case MF_SIM_FAULT_SHORT: st->faults_short++; break;
        case MF_SIM_FAULT_TIMEOUT: st->faults_timeout++; break;
        case MF_SIM_FAULT_BITFLIP: st->faults_bitflip++; break;
        default: break;
        }
    }

    /* Timing. */
    r->issue_ns = st->now_ns;
    double busy = r->fault == MF_SIM_FAULT_TIMEOUT ? timeout_ns(st)
                                                   : mf_sim_transfer_ns(pr, off, len);
    schedule(st, r, st->bus_free_ns, busy);
    st->bus_busy_ns += busy;

    st->reads++;
    st->bytes += len;
    st->flash_bytes_device += mf_sim_device_bytes(pr, off, len);
}

/* Copies the data (with the fault applied) once; returns the result. */
static int deliver(mf_sim_state *st, mf_sim_request *r)
{
    if (r->delivered) return r->result;
    r->delivered = 1;
    int rc = MF_PORT_OK;
    switch (r->fault) {
    case MF_SIM_FAULT_EIO: rc = MF_PORT_EIO; break;
    case MF_SIM_FAULT_TIMEOUT: rc = MF_PORT_ETIMEOUT; break;
    case MF_SIM_FAULT_SHORT:
        if (r->fault_arg > 0) {
            int brc = mf_port_read(st->backing, r->off, r->dst, (size_t)r->fault_arg);
            if (brc != MF_PORT_OK) {
                rc = brc;
                break;
            }
        }
        rc = MF_PORT_ESHORT;
        break;
    default:
        rc = mf_port_read(st->backing, r->off, r->dst, r->len);
        if (rc == MF_PORT_OK && r->fault == MF_SIM_FAULT_BITFLIP) {
            uint8_t *d = (uint8_t *)r->dst;
            d[r->fault_arg >> 3] ^= (uint8_t)(1u << (r->fault_arg & 7u));
        }
        break;
    }
    r->result = rc;
    return rc;
}

static void advance_to(mf_sim_state *st, double t)
{
    if (t > st->now_ns) {
        st->stall_ns += t - st->now_ns;
        st->now_ns = t;
    }
}

static int check_args(const mf_port *p, uint64_t off, const void *dst, size_t len)
{
    if (!p || !p->ctx || (!dst && len)) return MF_PORT_EINVAL;
    const mf_sim_state *st = (const mf_sim_state *)p->ctx;
    uint64_t size = st->backing->size;
    if (off > size || len > size - off) return MF_PORT_ERANGE;
    return MF_PORT_OK;
}

static int sim_read(const mf_port *p, uint64_t off, void *dst, size_t len)
{
    int rc = check_args(p, off, dst, len);
    if (rc) return rc;
    mf_sim_state *st = (mf_sim_state *)p->ctx;
    mf_sim_request r;
    memset(&r, 0, sizeof r);
    issue(st, &r, off, dst, len);
    st->sync_reads++;
    advance_to(st, r.done_ns);
    return deliver(st, &r);
}

static int sim_read_start(const mf_port *p, uint64_t off, void *dst, size_t len, int *ticket)
{
    if (!ticket) return MF_PORT_EINVAL;
    int rc = check_args(p, off, dst, len);
    if (rc) return rc;
    mf_sim_state *st = (mf_sim_state *)p->ctx;
    if (st->held >= st->prof.queue_depth) return MF_PORT_EBUSY;
    uint32_t slot = 0;
    while (slot < MF_SIM_MAX_QUEUE && st->req[slot].held) slot++;
    if (slot >= MF_SIM_MAX_QUEUE) return MF_PORT_EBUSY;
    mf_sim_request *r = &st->req[slot];
    uint32_t gen = (r->gen + 1u) % TICKET_GEN_MAX;
    issue(st, r, off, dst, len);
    r->gen = gen;
    r->held = 1;
    st->held++;
    if (st->held > st->max_held) st->max_held = st->held;
    st->async_reads++;
    *ticket = (int)(gen * MF_SIM_MAX_QUEUE + slot);
    return MF_PORT_OK;
}

static mf_sim_request *find_ticket(mf_sim_state *st, int ticket)
{
    if (ticket < 0) return NULL;
    uint32_t t = (uint32_t)ticket;
    mf_sim_request *r = &st->req[t % MF_SIM_MAX_QUEUE];
    if (!r->held || r->gen != t / MF_SIM_MAX_QUEUE) return NULL;
    return r;
}

static int sim_poll(const mf_port *p, int ticket)
{
    if (!p || !p->ctx) return MF_PORT_EINVAL;
    mf_sim_state *st = (mf_sim_state *)p->ctx;
    mf_sim_request *r = find_ticket(st, ticket);
    if (!r) return MF_PORT_EINVAL;
    if (r->done_ns > st->now_ns) return MF_PORT_EPENDING;
    return deliver(st, r);
}

static int sim_wait(const mf_port *p, int ticket)
{
    if (!p || !p->ctx) return MF_PORT_EINVAL;
    mf_sim_state *st = (mf_sim_state *)p->ctx;
    mf_sim_request *r = find_ticket(st, ticket);
    if (!r) return MF_PORT_EINVAL;
    advance_to(st, r->done_ns);
    int rc = deliver(st, r);
    r->held = 0;
    st->held--;
    return rc;
}

/* The first `need` bytes, as the pages holding them cross the bus. */
static int sim_wait_part(const mf_port *p, int ticket, size_t need)
{
    if (!p || !p->ctx) return MF_PORT_EINVAL;
    mf_sim_state *st = (mf_sim_state *)p->ctx;
    mf_sim_request *r = find_ticket(st, ticket);
    if (!r || need > r->len) return MF_PORT_EINVAL;
    if (need == r->len || r->delivered || r->fault != MF_SIM_FAULT_NONE) {
        advance_to(st, r->done_ns);
        return deliver(st, r);
    }
    if (need == 0) return MF_PORT_OK;
    double t = r->start_ns + mf_sim_transfer_ns(&st->prof, r->off, need);
    advance_to(st, t < r->done_ns ? t : r->done_ns);
    if (need > r->part) {
        int rc = mf_port_read(st->backing, r->off + r->part, (uint8_t *)r->dst + r->part,
                              need - r->part);
        if (rc != MF_PORT_OK) return rc;
        r->part = need;
    }
    st->part_waits++;
    return MF_PORT_OK;
}

/* Cancel: the part of the transfer already done stays in dst (page by
 * page, as a DMA engine's remaining count would say); the bus time it no
 * longer needs goes to the requests queued behind it, rescheduled in
 * their order. */
static int sim_cancel(const mf_port *p, int ticket, size_t *done)
{
    if (!p || !p->ctx || !done) return MF_PORT_EINVAL;
    mf_sim_state *st = (mf_sim_state *)p->ctx;
    mf_sim_request *r = find_ticket(st, ticket);
    if (!r) return MF_PORT_EINVAL;
    *done = 0;
    if (r->done_ns <= st->now_ns) { /* already complete: as wait, without waiting */
        int rc = deliver(st, r);
        r->held = 0;
        st->held--;
        if (rc == MF_PORT_OK) *done = r->len;
        return rc;
    }
    const mf_sim_profile *pr = &st->prof;
    size_t n = 0;
    if (st->now_ns > r->start_ns) {
        double b = (st->now_ns - r->start_ns) * pr->bandwidth / 1e9;
        n = b >= (double)r->len ? r->len : (size_t)b;
        n -= n % pr->page_size;
    }
    /* A faulty request that is cancelled delivers nothing, and its fault
     * never reaches the runtime: the counters stay the faults a caller
     * could have seen (tests/test_faults.c matches them one for one). */
    if (r->fault != MF_SIM_FAULT_NONE) n = 0;
    switch (r->fault) {
    case MF_SIM_FAULT_EIO: st->faults_eio--; break;
    case MF_SIM_FAULT_SHORT: st->faults_short--; break;
    case MF_SIM_FAULT_TIMEOUT: st->faults_timeout--; break;
    case MF_SIM_FAULT_BITFLIP: st->faults_bitflip--; break;
    default: break;
    }
    if (n && mf_port_read(st->backing, r->off, r->dst, n) != MF_PORT_OK) n = 0;
    /* bus time given back: from now (or the request's turn) to its end */
    double from = st->now_ns > r->bus_ns ? st->now_ns : r->bus_ns;
    double data_from = st->now_ns > r->start_ns ? st->now_ns : r->start_ns;
    if (r->done_ns > data_from) st->bus_busy_ns -= r->done_ns - data_from;
    double end = r->done_ns;
    st->bytes -= r->len - n;
    st->flash_bytes_device -= mf_sim_device_bytes(pr, r->off, r->len) -
                              (n ? mf_sim_device_bytes(pr, r->off, n) : 0);
    st->cancels++;
    st->cancelled_bytes += r->len - n;
    r->held = 0;
    r->delivered = 1;
    st->held--;
    /* everything scheduled after it moves up, in the order it was queued */
    double bus = from;
    for (;;) {
        mf_sim_request *next = NULL;
        for (uint32_t i = 0; i < MF_SIM_MAX_QUEUE; i++) {
            mf_sim_request *q = &st->req[i];
            if (q->held && q->bus_ns >= end && (!next || q->bus_ns < next->bus_ns)) next = q;
        }
        if (!next) break;
        double busy = next->done_ns - next->start_ns;
        end = next->done_ns;
        schedule(st, next, bus, busy);
        bus = next->done_ns;
    }
    st->bus_free_ns = bus;
    *done = n;
    return MF_PORT_OK;
}

static uint64_t sim_now_ns(const mf_port *p)
{
    if (!p || !p->ctx) return 0;
    const mf_sim_state *st = (const mf_sim_state *)p->ctx;
    return (uint64_t)st->now_ns;
}

static void sim_charge(const mf_port *p, mf_work_kind kind, int encoding, uint64_t bytes)
{
    if (!p || !p->ctx) return;
    mf_sim_state *st = (mf_sim_state *)p->ctx;
    if ((unsigned)kind > (unsigned)MF_WORK_CHECK ||
        (kind == MF_WORK_MATVEC && (encoding < 0 || encoding >= MF_SIM_ENC_COUNT))) {
        st->bad_charges++;
        return;
    }
    double ns = mf_sim_compute_ns(&st->prof, kind, encoding, bytes);
    st->now_ns += ns;
    st->compute_ns += ns;
    st->compute_ns_kind[kind] += ns;
    st->compute_bytes_kind[kind] += bytes;
}

static void sim_log(const mf_port *p, const char *line)
{
    if (!p || !p->ctx) return;
    const mf_sim_state *st = (const mf_sim_state *)p->ctx;
    mf_port_log(st->backing, line);
}

void mf_sim_reset(mf_sim_state *st)
{
    if (!st) return;
    const mf_port *backing = st->backing;
    mf_sim_profile prof = st->prof;
    mf_sim_faults faults = st->faults;
    memset(st, 0, sizeof *st);
    st->backing = backing;
    st->prof = prof;
    st->faults = faults;
    st->rng = faults.seed;
}

int mf_sim_port_open(mf_port *p, mf_sim_state *st, const mf_port *backing,
                     const mf_sim_profile *prof, const mf_sim_faults *faults)
{
    if (!p || !st || !backing || !backing->read || !prof) return MF_PORT_EINVAL;
    if (prof->queue_depth < 1 || prof->queue_depth > MF_SIM_MAX_QUEUE) return MF_PORT_EINVAL;
    if (!(prof->bandwidth > 0) || prof->page_size == 0 || !(prof->latency_ns >= 0))
        return MF_PORT_EINVAL;
    if (faults) {
        if (!(faults->eio_rate >= 0) || !(faults->short_rate >= 0) ||
            !(faults->timeout_rate >= 0) || !(faults->bitflip_rate >= 0) ||
            !(faults->timeout_ns >= 0))
            return MF_PORT_EINVAL;
        if (faults->eio_rate + faults->short_rate + faults->timeout_rate + faults->bitflip_rate >
            1.0)
            return MF_PORT_EINVAL;
    }
    memset(st, 0, sizeof *st);
    st->backing = backing;
    st->prof = *prof;
    if (faults) st->faults = *faults;
    st->rng = st->faults.seed;

    memset(p, 0, sizeof *p);
    p->ctx = st;
    p->size = backing->size;
    p->page_size = prof->page_size;
    p->queue_depth = prof->queue_depth;
    p->read = sim_read;
    p->read_start = sim_read_start;
    p->cancel = sim_cancel;
    p->wait_part = sim_wait_part;
    p->poll = sim_poll;
    p->wait = sim_wait;
    p->map = NULL;
    p->now_ns = sim_now_ns;
    p->charge_compute = sim_charge;
    p->log = sim_log;
    return MF_PORT_OK;
}

/* ------------------------------------------------------------ memory port */

static int mem_read(const mf_port *p, uint64_t off, void *dst, size_t len)
{
    if (!p || !p->ctx || (!dst && len)) return MF_PORT_EINVAL;
    const mf_mem_port_state *st = (const mf_mem_port_state *)p->ctx;
    if (off > st->len || len > st->len - off) return MF_PORT_ERANGE;
    if (len) memcpy(dst, st->buf + off, len);
    return MF_PORT_OK;
}

static const void *mem_map(const mf_port *p, uint64_t off, size_t len)
{
    if (!p || !p->ctx) return NULL;
    const mf_mem_port_state *st = (const mf_mem_port_state *)p->ctx;
    if (off > st->len || len > st->len - off) return NULL;
    return st->buf + off;
}

int mf_mem_port_open(mf_port *p, mf_mem_port_state *st, const void *buf, size_t len)
{
    if (!p || !st || (!buf && len)) return MF_PORT_EINVAL;
    st->buf = (const uint8_t *)buf;
    st->len = len;
    memset(p, 0, sizeof *p);
    p->ctx = st;
    p->size = len;
    p->page_size = 1;
    p->queue_depth = 0;
    p->read = mem_read;
    p->map = mem_map;
    return MF_PORT_OK;
}
