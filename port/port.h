/*
 * The hardware abstraction layer: everything moeflash needs from a device.
 *
 * Modelled on littlefs's `struct lfs_config`: a flash device is a set of
 * callbacks plus its geometry, and the runtime never touches the device any
 * other way. Every byte of a model image reaches RAM through `read` (or the
 * asynchronous `read_start`/`poll`/`wait` trio), so a port is the single place
 * where a board decides between memory-mapped flash, DMA, SPI commands, a file
 * or a simulator.
 *
 * Contract:
 *  - All callbacks return MF_PORT_OK (0) or a negative MF_PORT_E* code.
 *  - `read` copies exactly `len` bytes or fails; a short read is an error.
 *  - Asynchronous reads are optional (read_start == NULL means the runtime
 *    falls back to synchronous reads). A port accepts up to `queue_depth`
 *    requests in flight; `dst` must stay valid until the request completes.
 *    `poll` never releases a ticket; exactly one `wait` releases it, even
 *    after `poll` has seen the request complete. A released ticket is
 *    invalid (MF_PORT_EINVAL), never a newer request's.
 *  - `cancel` (optional, NULL = requests cannot be cancelled) releases a
 *    ticket without waiting for the rest of its transfer: *done receives
 *    how many leading bytes of dst hold the data (0..len; len when the
 *    request had already completed; a request that had completed with an
 *    error returns that error, ticket released). The bus is free for the next request
 *    at once. The runtime uses it to let a read needed now overtake a
 *    speculative one, then asks for the rest with a new request, so a
 *    port may only report bytes that are really in dst (a DMA engine's
 *    remaining-count register, say).
 *  - `wait_part` (optional, NULL = a request is seen whole) blocks until
 *    the first `need` bytes of the request's dst hold the data (need <=
 *    len) and leaves the ticket held: `wait` still releases it. It returns
 *    MF_PORT_OK, or the request's error once it has completed with one (the
 *    same error `wait` will give). The runtime computes an expert's first
 *    rows while its last ones are still on the bus; like `cancel`, a port
 *    may only report bytes that are really in dst.
 *  - `now_ns` is monotonic; the simulator returns virtual time.
 *  - `charge_compute` (optional) lets a simulated port advance its virtual
 *    clock by the cost of the compute the runtime just did.
 *  - `log` writes one line (no trailing newline needed).
 */
#ifndef MF_PORT_H
#define MF_PORT_H

#include <stddef.h>
#include <stdint.h>

enum {
    MF_PORT_OK = 0,
    MF_PORT_EIO = -1,       /* the device reported a read error */
    MF_PORT_ESHORT = -2,    /* fewer bytes than asked */
    MF_PORT_ETIMEOUT = -3,  /* the request did not complete in time */
    MF_PORT_ERANGE = -4,    /* offset/length outside the device */
    MF_PORT_EBUSY = -5,     /* queue full: wait for a request first */
    MF_PORT_EINVAL = -6,    /* bad argument (ticket, NULL, ...) */
    MF_PORT_EPENDING = -7   /* poll: the request is still in flight */
};

/* What kind of compute the runtime is reporting to charge_compute(). */
typedef enum {
    MF_WORK_MATVEC = 0, /* bytes = weight bytes streamed through a kernel */
    MF_WORK_ATTENTION,  /* bytes = KV-cache bytes touched */
    MF_WORK_OTHER,      /* bytes = activations touched (norms, softmax...) */
    MF_WORK_CHECK       /* bytes = bytes integrity-checked (CRC-32 of an expert) */
} mf_work_kind;

typedef struct mf_port mf_port;

struct mf_port {
    void *ctx; /* the port's own state */

    /* Geometry. */
    uint64_t size;        /* bytes addressable (the image must fit) */
    uint32_t page_size;   /* preferred read alignment/granularity */
    uint32_t queue_depth; /* max asynchronous requests in flight (0 = none) */

    /* Synchronous read of len bytes at off into dst. */
    int (*read)(const mf_port *p, uint64_t off, void *dst, size_t len);

    /* Asynchronous reads: start returns a ticket >= 0 in *ticket. */
    int (*read_start)(const mf_port *p, uint64_t off, void *dst, size_t len, int *ticket);
    int (*poll)(const mf_port *p, int ticket); /* OK, EPENDING or an error */
    int (*wait)(const mf_port *p, int ticket); /* blocks; OK or an error */

    /* Optional: a pointer to len bytes at off when the flash is memory-mapped
     * (XIP), so tables can be used in place; NULL when it is not. */
    const void *(*map)(const mf_port *p, uint64_t off, size_t len);

    uint64_t (*now_ns)(const mf_port *p);
    void (*charge_compute)(const mf_port *p, mf_work_kind kind, int encoding, uint64_t bytes);
    void (*log)(const mf_port *p, const char *line);

    /* Optional: see the contract above. */
    int (*cancel)(const mf_port *p, int ticket, size_t *done);
    int (*wait_part)(const mf_port *p, int ticket, size_t need);
};

/* Helpers the runtime uses so that optional callbacks may be NULL. */
static inline int mf_port_read(const mf_port *p, uint64_t off, void *dst, size_t len)
{
    if (!p || !p->read) return MF_PORT_EINVAL;
    if (off > p->size || len > p->size - off) return MF_PORT_ERANGE;
    return p->read(p, off, dst, len);
}

static inline const void *mf_port_map(const mf_port *p, uint64_t off, size_t len)
{
    if (!p || !p->map || off > p->size || len > p->size - off) return NULL;
    return p->map(p, off, len);
}

static inline uint64_t mf_port_now_ns(const mf_port *p)
{
    return (p && p->now_ns) ? p->now_ns(p) : 0;
}

static inline void mf_port_log(const mf_port *p, const char *line)
{
    if (p && p->log) p->log(p, line);
}

/* Logs why a call is refused, then gives its status: MF_E_ARG alone does not
 * say which option was out of range. */
static inline int mf_port_refuse(const mf_port *p, int status, const char *why)
{
    mf_port_log(p, why);
    return status;
}

static inline void mf_port_charge(const mf_port *p, mf_work_kind kind, int encoding, uint64_t bytes)
{
    if (p && p->charge_compute) p->charge_compute(p, kind, encoding, bytes);
}

#endif
