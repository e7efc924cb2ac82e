/*
 * The POSIX file port: a model image in a regular file, read with pread().
 *
 * Synchronous reads call pread() directly (looping over short reads and
 * EINTR) from the calling thread. Asynchronous reads go to one I/O thread
 * that serves a fixed queue of MF_POSIX_QUEUE_DEPTH requests in the order
 * they were started. Everything lives in mf_posix_port_state (no heap).
 *
 * Ticket contract (same as port/sim):
 *  - read_start returns MF_PORT_EBUSY when MF_POSIX_QUEUE_DEPTH tickets are
 *    held; a ticket is held from read_start until wait() returns for it.
 *  - poll(ticket) returns MF_PORT_EPENDING while the request is queued or
 *    running, then its result (OK or an error) without releasing the ticket.
 *  - wait(ticket) blocks until the request is done, returns its result and
 *    releases the ticket (every ticket must be waited for exactly once,
 *    even after poll saw it complete). A released or never-issued ticket
 *    gives MF_PORT_EINVAL.
 *  - wait_part(ticket, need) blocks until the first need bytes are in dst
 *    (the I/O thread reads a request MF_POSIX_PART_BYTES at a time and
 *    says how far it got) or the request failed (its error), and keeps the
 *    ticket held.
 *  - Tickets carry a generation, so a stale ticket is detected rather than
 *    aliasing a newer request in the same queue slot.
 *  - The port's callbacks may be called from several threads at once.
 *  - mf_posix_port_close() (no other thread may use the port meanwhile)
 *    cancels requests not yet started (their dst is
 *    left untouched), lets the one in progress finish, joins the thread and
 *    closes the file. Outstanding tickets become invalid.
 */
#ifndef MF_POSIX_PORT_H
#define MF_POSIX_PORT_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "../port.h"

#define MF_POSIX_QUEUE_DEPTH 8
#define MF_POSIX_PAGE_SIZE 4096
#define MF_POSIX_PART_BYTES (64u * 1024u)

typedef struct {
    uint64_t off;
    void *dst;
    size_t len;
    uint64_t seq;    /* submission order */
    uint32_t gen;    /* generation of the ticket in this slot */
    int state;       /* MF_POSIX_REQ_* (see posix_port.c) */
    int result;      /* MF_PORT_OK or an error once done */
    size_t done;     /* leading bytes of dst already read (wait_part) */
} mf_posix_request;

typedef struct {
    int fd;
    uint64_t size;
    /* Asynchronous machinery. */
    pthread_mutex_t mu;
    pthread_cond_t cv_work; /* a request was queued, or stop */
    pthread_cond_t cv_done; /* a request completed */
    pthread_t thread;
    int thread_running;
    int stop;
    uint64_t next_seq;
    mf_posix_request req[MF_POSIX_QUEUE_DEPTH];
    /* Counters (under mu for async, atomic-free best effort for sync). */
    uint64_t async_reads;
    uint64_t async_bytes;
} mf_posix_port_state;

/* Opens path read-only and fills *p (ctx = st, size = file size, page_size
 * 4096, queue_depth MF_POSIX_QUEUE_DEPTH, read/read_start/poll/wait, map =
 * NULL, now_ns = CLOCK_MONOTONIC, log to stderr). Returns MF_PORT_OK,
 * MF_PORT_EINVAL (NULL argument) or MF_PORT_EIO (cannot open/stat, or the
 * I/O thread cannot start). *st must not hold an open port: its I/O thread
 * would still be using it (close it first; test_golden once deadlocked so). */
int mf_posix_port_open(mf_port *p, mf_posix_port_state *st, const char *path);

/* Stops the I/O thread (see above) and closes the file. Safe to call twice. */
void mf_posix_port_close(mf_port *p);

#endif
