/*
 * The simulated flash device, and a memory-buffer port.
 *
 * The simulator wraps a backing port (a file, a memory buffer...) that holds
 * the bytes, and adds a deterministic *virtual clock*: every read costs the
 * time a board's flash would take, every chunk of compute the runtime reports
 * through charge_compute() costs the time the board's core would take, and
 * now_ns() returns the virtual time. Reads really copy the bytes from the
 * backing port, so the runtime computes real outputs. Faults (read errors,
 * short reads, timeouts, flipped bits) can be injected at given rates with a
 * seed. Plain C: string.h/stdint.h/math.h only, no heap, no threads (the
 * simulator is single-threaded: call it from one thread at a time).
 *
 * Timing model (all times in nanoseconds, kept as IEEE-754 doubles; the
 * operations are +, *, / and max only, so a run is bit-reproducible on any
 * platform with FLT_EVAL_METHOD == 0):
 *
 *   pages(off, len)  = 0 if len == 0, else
 *                      floor((off+len-1)/P) - floor(off/P) + 1   (P = page_size)
 *   dev_bytes        = pages * P              (added to flash_bytes_device)
 *   xfer             = dev_bytes * 1e9 / bandwidth               (bus time)
 *
 *   A request issued at virtual time t (the clock when read_start/read is
 *   called), with bus_free = when the bus finishes the previous transfer:
 *     latency_on_bus == 0 (command queueing: latencies overlap, e.g. UFS):
 *        start = max(t + latency, bus_free)
 *     latency_on_bus == 1 (one command at a time: command/address/dummy
 *        phases or the card's access time occupy the bus, e.g. SPI NOR, SD):
 *        start = max(t, bus_free) + latency
 *     done     = start + xfer
 *     bus_free = done;  bus_busy_ns += done - start
 *   An injected timeout replaces xfer by the fault's timeout_ns (the bus is
 *   held until the controller gives up) and the request fails with
 *   MF_PORT_ETIMEOUT at `done`.
 *
 *   wait(ticket): if done > now: stall_ns += done - now; now = done.
 *                 Then the data is delivered (copied) and the ticket released.
 *   wait_part(ticket, need): the first need bytes are in dst once the
 *                 pages holding them have crossed the bus:
 *                 t = min(done, start + device_bytes(off, need) * 1e9 / bandwidth);
 *                 if t > now: stall_ns += t - now; now = t. Those bytes are
 *                 copied; the ticket stays held. A faulty request is seen
 *                 whole: as wait (clock to done, fault delivered) without
 *                 the release.
 *   poll(ticket): never moves the clock. done <= now: the data is delivered
 *                 (once) and the result returned (the ticket stays held until
 *                 wait); otherwise MF_PORT_EPENDING.
 *   read():       exactly read_start + wait, except that it needs no free
 *                 queue slot (it is the caller's one synchronous command).
 *   charge_compute(kind, enc, bytes): now += bytes * cost, with cost =
 *                 matvec_ns_per_byte[enc] (kind MF_WORK_MATVEC),
 *                 attention_ns_per_byte[enc] (enc = the KV cache's),
 *                 other_ns_per_byte or check_ns_per_byte;
 *                 compute_ns += the same amount.
 *
 *   So the clock only moves in charge_compute and in waits/synchronous
 *   reads; a loop that polls without charging compute never sees progress.
 *   Data reaches dst only when the completion is observed (poll or wait),
 *   as with a DMA that the caller may not look at before completion.
 *
 * Tickets: as in port/posix/posix_port.h — up to queue_depth held at once
 * (then MF_PORT_EBUSY), each released by exactly one wait, generation-tagged
 * so that a stale ticket gives MF_PORT_EINVAL.
 *
 * Faults: for every read (synchronous or not), in issue order, one draw u in
 * [0,1) from a splitmix64 stream seeded by faults.seed picks at most one
 * fault: u < eio -> MF_PORT_EIO (nothing copied); < eio+short ->
 * MF_PORT_ESHORT (a uniformly drawn prefix of n < len bytes copied);
 * < eio+short+timeout -> MF_PORT_ETIMEOUT (nothing copied, timing above);
 * < eio+short+timeout+bitflip -> success, but one uniformly drawn bit of dst
 * is inverted. Short reads and bit flips need len > 0 (otherwise no fault).
 * Faulty requests cost the same bus time as good ones (except timeouts), and
 * their pages count in flash_bytes_device. The same seed, rates and sequence
 * of calls give the same faults.
 *
 * map() is NULL: every byte goes through a timed read.
 */
#ifndef MF_SIM_PORT_H
#define MF_SIM_PORT_H

#include <stddef.h>
#include <stdint.h>

#include "../port.h"

#define MF_SIM_ENC_COUNT 7     /* = MF_ENC_COUNT of runtime/quant.h */
#define MF_SIM_MAX_QUEUE 32    /* largest queue_depth a profile may ask */
#define MF_SIM_DEFAULT_TIMEOUT_NS 10e6 /* 10 ms */

/* A board: its flash and its core. See docs/board-profiles.md. */
typedef struct {
    const char *name;        /* "mcu-qspi", ... */
    const char *summary;     /* one line */
    const char *core;        /* "Cortex-M55 + Helium", ... */
    double core_mhz;
    const char *flash;       /* "quad-SPI NOR (W25Q128JV class)", ... */
    double bandwidth;        /* sustained data-phase bandwidth, bytes/s */
    double latency_ns;       /* per-request latency */
    int latency_on_bus;      /* 1: latency occupies the bus (see above) */
    uint32_t page_size;      /* timing granularity, bytes */
    uint32_t queue_depth;    /* requests in flight, 1..MF_SIM_MAX_QUEUE */
    /* Compute: ns per weight byte streamed through the matvec kernel of each
     * encoding (index = MF_ENC_*), ns per KV-cache byte of attention for
     * each KV encoding (index = MF_ENC_*: a q8 byte is a whole value to
     * widen, so it costs more than an f32 byte; only f32, bf16, f16 and q8
     * are KV encodings), ns per activation byte of other work (norms,
     * softmax, rope...). */
    double matvec_ns_per_byte[MF_SIM_ENC_COUNT];
    double attention_ns_per_byte[MF_SIM_ENC_COUNT];
    double other_ns_per_byte;
    double check_ns_per_byte; /* CRC-32 of expert blobs (MF_WORK_CHECK) */
} mf_sim_profile;

/* Profile table (port/sim/profiles.c). */
int mf_sim_profile_count(void);
const mf_sim_profile *mf_sim_profile_at(int i); /* NULL when out of range */
const mf_sim_profile *mf_sim_profile_find(const char *name); /* NULL: unknown */

typedef struct {
    uint64_t seed;
    double eio_rate;     /* each in [0,1]; their sum must be <= 1 */
    double short_rate;
    double timeout_rate;
    double bitflip_rate;
    double timeout_ns;   /* bus time of a timed-out request; 0 = default */
} mf_sim_faults;

typedef struct {
    uint64_t off;
    void *dst;
    size_t len;
    double done_ns;
    double issue_ns;  /* clock when issued */
    double bus_ns;    /* the bus is this request's from here (latency on bus) */
    double start_ns;  /* data phase starts */
    uint32_t gen;
    int held;        /* ticket issued, not yet waited */
    int delivered;   /* data copied / result fixed */
    int fault;       /* MF_SIM_FAULT_* */
    uint64_t fault_arg; /* short: bytes copied; bitflip: bit index */
    int result;
    size_t part;     /* leading bytes already copied by wait_part */
} mf_sim_request;

enum { MF_SIM_FAULT_NONE = 0, MF_SIM_FAULT_EIO, MF_SIM_FAULT_SHORT, MF_SIM_FAULT_TIMEOUT,
       MF_SIM_FAULT_BITFLIP };

typedef struct {
    const mf_port *backing;
    mf_sim_profile prof; /* a copy: callers may tweak fields after open */
    mf_sim_faults faults;
    uint64_t rng;
    double now_ns;
    double bus_free_ns;
    mf_sim_request req[MF_SIM_MAX_QUEUE];
    uint32_t held;       /* tickets held now */

    /* Counters (reset by mf_sim_reset). */
    uint64_t reads;              /* requests issued (sync + async) */
    uint64_t sync_reads;
    uint64_t async_reads;
    uint64_t bytes;              /* bytes requested */
    uint64_t flash_bytes_device; /* bytes the device transferred (pages) */
    double stall_ns;             /* clock advanced by waits / sync reads */
    double bus_busy_ns;          /* time the bus was transferring */
    double compute_ns;           /* clock advanced by charge_compute */
    double compute_ns_kind[4];   /* by mf_work_kind */
    uint64_t compute_bytes_kind[4];
    uint64_t bad_charges;        /* charge_compute with an unknown kind/encoding */
    uint32_t max_held;           /* most tickets held at once */
    uint64_t cancels;            /* requests cancelled before they completed */
    uint64_t cancelled_bytes;    /* bytes those requests did not transfer */
    uint64_t part_waits;         /* wait_part calls that returned part of a request */
    uint64_t faults_eio, faults_short, faults_timeout, faults_bitflip;
} mf_sim_state;

/* Fills *p with a simulated device over `backing` (which must outlive it):
 * size = backing->size, page_size and queue_depth from the profile. faults
 * may be NULL (none). Returns MF_PORT_OK or MF_PORT_EINVAL (NULL argument,
 * queue_depth outside 1..MF_SIM_MAX_QUEUE, bandwidth <= 0, page_size 0,
 * negative latency or rates, or rates summing above 1). */
int mf_sim_port_open(mf_port *p, mf_sim_state *st, const mf_port *backing,
                     const mf_sim_profile *prof, const mf_sim_faults *faults);

/* Clock to 0, counters to 0, PRNG re-seeded, all tickets dropped. */
void mf_sim_reset(mf_sim_state *st);

/* The formulas above, for tools (e.g. a bench's lower bound). */
uint64_t mf_sim_device_bytes(const mf_sim_profile *prof, uint64_t off, uint64_t len);
double mf_sim_transfer_ns(const mf_sim_profile *prof, uint64_t off, uint64_t len);
double mf_sim_compute_ns(const mf_sim_profile *prof, mf_work_kind kind, int encoding,
                         uint64_t bytes);

/* The state behind a port made by mf_sim_port_open (NULL otherwise). */
mf_sim_state *mf_sim_state_of(const mf_port *p);

/* ---- Memory port: a read-only byte buffer as a device. ----
 * Synchronous reads (memcpy) and map() (XIP-like); no asynchronous reads,
 * no clock (now_ns == NULL), no log. */
typedef struct {
    const uint8_t *buf;
    size_t len;
} mf_mem_port_state;

int mf_mem_port_open(mf_port *p, mf_mem_port_state *st, const void *buf, size_t len);

#endif
