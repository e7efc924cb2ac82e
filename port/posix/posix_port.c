/* The POSIX file port: see posix_port.h. */
#include "posix_port.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum {
    MF_POSIX_REQ_FREE = 0,
    MF_POSIX_REQ_QUEUED,
    MF_POSIX_REQ_RUNNING,
    MF_POSIX_REQ_DONE
};

/* Ticket = gen * QUEUE_DEPTH + slot, kept non-negative. */
#define TICKET_GEN_MAX (0x7fffffffu / MF_POSIX_QUEUE_DEPTH)

static int pread_full(int fd, uint64_t off, void *dst, size_t len)
{
    unsigned char *d = (unsigned char *)dst;
    while (len > 0) {
        size_t chunk = len > (size_t)1 << 30 ? (size_t)1 << 30 : len;
        ssize_t n = pread(fd, d, chunk, (off_t)off);
        if (n < 0) {
            if (errno == EINTR) continue;
            return MF_PORT_EIO;
        }
        if (n == 0) return MF_PORT_ESHORT; /* the file shrank under us */
        d += n;
        off += (uint64_t)n;
        len -= (size_t)n;
    }
    return MF_PORT_OK;
}

static int check_range(const mf_posix_port_state *st, uint64_t off, size_t len)
{
    if (off > st->size || len > st->size - off) return MF_PORT_ERANGE;
    return MF_PORT_OK;
}

static int posix_read(const mf_port *p, uint64_t off, void *dst, size_t len)
{
    if (!p || !p->ctx || (!dst && len)) return MF_PORT_EINVAL;
    mf_posix_port_state *st = (mf_posix_port_state *)p->ctx;
    if (st->fd < 0) return MF_PORT_EINVAL;
    int rc = check_range(st, off, len);
    if (rc) return rc;
    return pread_full(st->fd, off, dst, len);
}

static void *io_thread(void *arg)
{
    mf_posix_port_state *st = (mf_posix_port_state *)arg;
    pthread_mutex_lock(&st->mu);
    for (;;) {
        int pick = -1;
        for (int i = 0; i < MF_POSIX_QUEUE_DEPTH; i++)
            if (st->req[i].state == MF_POSIX_REQ_QUEUED &&
                (pick < 0 || st->req[i].seq < st->req[pick].seq))
                pick = i;
        if (pick < 0) {
            if (st->stop) break;
            pthread_cond_wait(&st->cv_work, &st->mu);
            continue;
        }
        mf_posix_request *r = &st->req[pick];
        r->state = MF_POSIX_REQ_RUNNING;
        uint64_t off = r->off;
        void *dst = r->dst;
        size_t len = r->len;
        int rc = MF_PORT_OK;
        for (size_t at = 0; at < len && rc == MF_PORT_OK;) {
            size_t n = len - at > MF_POSIX_PART_BYTES ? MF_POSIX_PART_BYTES : len - at;
            pthread_mutex_unlock(&st->mu);
            rc = pread_full(st->fd, off + at, (unsigned char *)dst + at, n);
            pthread_mutex_lock(&st->mu);
            at += n;
            if (rc == MF_PORT_OK && at < len) { /* wait_part may be waiting for these */
                r->done = at;
                pthread_cond_broadcast(&st->cv_done);
            }
        }
        r->done = rc == MF_PORT_OK ? len : r->done;
        r->result = rc;
        r->state = MF_POSIX_REQ_DONE;
        st->async_reads++;
        if (rc == MF_PORT_OK) st->async_bytes += len;
        pthread_cond_broadcast(&st->cv_done);
    }
    pthread_mutex_unlock(&st->mu);
    return NULL;
}

static int posix_read_start(const mf_port *p, uint64_t off, void *dst, size_t len, int *ticket)
{
    if (!p || !p->ctx || !ticket || (!dst && len)) return MF_PORT_EINVAL;
    mf_posix_port_state *st = (mf_posix_port_state *)p->ctx;
    int rc = check_range(st, off, len);
    if (rc) return rc;
    pthread_mutex_lock(&st->mu);
    if (!st->thread_running || st->stop) {
        pthread_mutex_unlock(&st->mu);
        return MF_PORT_EINVAL;
    }
    int slot = -1;
    for (int i = 0; i < MF_POSIX_QUEUE_DEPTH; i++)
        if (st->req[i].state == MF_POSIX_REQ_FREE) {
            slot = i;
            break;
        }
    if (slot < 0) {
        pthread_mutex_unlock(&st->mu);
        return MF_PORT_EBUSY;
    }
    mf_posix_request *r = &st->req[slot];
    r->off = off;
    r->dst = dst;
    r->len = len;
    r->seq = st->next_seq++;
    r->gen = (r->gen + 1) % TICKET_GEN_MAX;
    r->result = MF_PORT_OK;
    r->done = 0;
    r->state = MF_POSIX_REQ_QUEUED;
    *ticket = (int)(r->gen * MF_POSIX_QUEUE_DEPTH + (uint32_t)slot);
    pthread_cond_signal(&st->cv_work);
    pthread_mutex_unlock(&st->mu);
    return MF_PORT_OK;
}

/* Looks up a held ticket; caller holds mu. */
static mf_posix_request *find_ticket(mf_posix_port_state *st, int ticket)
{
    if (ticket < 0) return NULL;
    uint32_t t = (uint32_t)ticket;
    mf_posix_request *r = &st->req[t % MF_POSIX_QUEUE_DEPTH];
    if (r->state == MF_POSIX_REQ_FREE || r->gen != t / MF_POSIX_QUEUE_DEPTH) return NULL;
    return r;
}

static int posix_poll(const mf_port *p, int ticket)
{
    if (!p || !p->ctx) return MF_PORT_EINVAL;
    mf_posix_port_state *st = (mf_posix_port_state *)p->ctx;
    pthread_mutex_lock(&st->mu);
    mf_posix_request *r = find_ticket(st, ticket);
    int rc = !r ? MF_PORT_EINVAL : r->state == MF_POSIX_REQ_DONE ? r->result : MF_PORT_EPENDING;
    pthread_mutex_unlock(&st->mu);
    return rc;
}

/* Locks mu and looks the ticket up; on NULL the lock is already released. */
static mf_posix_request *lock_ticket(mf_posix_port_state *st, int ticket)
{
    pthread_mutex_lock(&st->mu);
    mf_posix_request *r = find_ticket(st, ticket);
    if (!r) pthread_mutex_unlock(&st->mu);
    return r;
}

static int posix_wait(const mf_port *p, int ticket)
{
    if (!p || !p->ctx) return MF_PORT_EINVAL;
    mf_posix_port_state *st = (mf_posix_port_state *)p->ctx;
    mf_posix_request *r = lock_ticket(st, ticket);
    if (!r) return MF_PORT_EINVAL;
    uint32_t gen = r->gen;
    while (r->state != MF_POSIX_REQ_DONE) {
        pthread_cond_wait(&st->cv_done, &st->mu);
        /* Another thread may have waited for (and released) this ticket. */
        if (r->state == MF_POSIX_REQ_FREE || r->gen != gen) {
            pthread_mutex_unlock(&st->mu);
            return MF_PORT_EINVAL;
        }
    }
    int rc = r->result;
    r->state = MF_POSIX_REQ_FREE;
    pthread_mutex_unlock(&st->mu);
    return rc;
}

static int posix_wait_part(const mf_port *p, int ticket, size_t need)
{
    if (!p || !p->ctx) return MF_PORT_EINVAL;
    mf_posix_port_state *st = (mf_posix_port_state *)p->ctx;
    mf_posix_request *r = lock_ticket(st, ticket);
    if (!r) return MF_PORT_EINVAL;
    if (need > r->len) {
        pthread_mutex_unlock(&st->mu);
        return MF_PORT_EINVAL;
    }
    uint32_t gen = r->gen;
    while (r->state != MF_POSIX_REQ_DONE && r->done < need) {
        pthread_cond_wait(&st->cv_done, &st->mu);
        if (r->state == MF_POSIX_REQ_FREE || r->gen != gen) {
            pthread_mutex_unlock(&st->mu);
            return MF_PORT_EINVAL;
        }
    }
    int rc = r->done >= need ? MF_PORT_OK : r->result;
    pthread_mutex_unlock(&st->mu);
    return rc;
}

/* A queued request is dropped before the I/O thread takes it (nothing
 * read); one already running is waited for (pread cannot be interrupted
 * part-way with a byte count we could trust), then reports all its bytes. */
static int posix_cancel(const mf_port *p, int ticket, size_t *done)
{
    if (!p || !p->ctx || !done) return MF_PORT_EINVAL;
    mf_posix_port_state *st = (mf_posix_port_state *)p->ctx;
    mf_posix_request *r = lock_ticket(st, ticket);
    if (!r) return MF_PORT_EINVAL;
    *done = 0;
    if (r->state == MF_POSIX_REQ_QUEUED) {
        r->state = MF_POSIX_REQ_FREE;
        pthread_mutex_unlock(&st->mu);
        return MF_PORT_OK;
    }
    size_t len = r->len;
    pthread_mutex_unlock(&st->mu);
    int rc = posix_wait(p, ticket);
    if (rc == MF_PORT_OK) *done = len;
    return rc;
}

static uint64_t posix_now_ns(const mf_port *p)
{
    (void)p;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void posix_log(const mf_port *p, const char *line)
{
    (void)p;
    fprintf(stderr, "%s\n", line ? line : "");
}

int mf_posix_port_open(mf_port *p, mf_posix_port_state *st, const char *path)
{
    if (!p || !st || !path) return MF_PORT_EINVAL;
    memset(p, 0, sizeof *p);
    memset(st, 0, sizeof *st);
    st->fd = -1;
    int fd;
    do {
        fd = open(path, O_RDONLY);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) return MF_PORT_EIO;
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return MF_PORT_EIO;
    }
    st->fd = fd;
    st->size = (uint64_t)sb.st_size;
    if (pthread_mutex_init(&st->mu, NULL) != 0) goto fail_fd;
    if (pthread_cond_init(&st->cv_work, NULL) != 0) goto fail_mu;
    if (pthread_cond_init(&st->cv_done, NULL) != 0) goto fail_cw;
    if (pthread_create(&st->thread, NULL, io_thread, st) != 0) goto fail_cd;
    st->thread_running = 1;

    p->ctx = st;
    p->size = st->size;
    p->page_size = MF_POSIX_PAGE_SIZE;
    p->queue_depth = MF_POSIX_QUEUE_DEPTH;
    p->read = posix_read;
    p->read_start = posix_read_start;
    p->cancel = posix_cancel;
    p->wait_part = posix_wait_part;
    p->poll = posix_poll;
    p->wait = posix_wait;
    p->map = NULL;
    p->now_ns = posix_now_ns;
    p->charge_compute = NULL;
    p->log = posix_log;
    return MF_PORT_OK;

fail_cd:
    pthread_cond_destroy(&st->cv_done);
fail_cw:
    pthread_cond_destroy(&st->cv_work);
fail_mu:
    pthread_mutex_destroy(&st->mu);
fail_fd:
    close(fd);
    st->fd = -1;
    return MF_PORT_EIO;
}

void mf_posix_port_close(mf_port *p)
{
    if (!p || !p->ctx) return;
    mf_posix_port_state *st = (mf_posix_port_state *)p->ctx;
    if (st->thread_running) {
        pthread_mutex_lock(&st->mu);
        st->stop = 1;
        /* Cancel what has not started; the running request finishes. */
        for (int i = 0; i < MF_POSIX_QUEUE_DEPTH; i++)
            if (st->req[i].state == MF_POSIX_REQ_QUEUED) {
                st->req[i].state = MF_POSIX_REQ_DONE;
                st->req[i].result = MF_PORT_EIO;
            }
        pthread_cond_broadcast(&st->cv_work);
        pthread_cond_broadcast(&st->cv_done);
        pthread_mutex_unlock(&st->mu);
        pthread_join(st->thread, NULL);
        st->thread_running = 0;
        for (int i = 0; i < MF_POSIX_QUEUE_DEPTH; i++) st->req[i].state = MF_POSIX_REQ_FREE;
        pthread_cond_destroy(&st->cv_done);
        pthread_cond_destroy(&st->cv_work);
        pthread_mutex_destroy(&st->mu);
    }
    if (st->fd >= 0) close(st->fd);
    st->fd = -1;
    p->ctx = NULL;
    p->read = NULL;
    p->read_start = NULL;
    p->poll = NULL;
    p->wait = NULL;
    p->cancel = NULL;
    p->wait_part = NULL;
    p->size = 0;
}
