/*
 * Arm semihosting (Arm "Semihosting for AArch32 and AArch64", version 3):
 * the debugger or emulator (QEMU with -semihosting-config enable=on) services
 * operations requested with BKPT 0xAB on M-profile cores. r0 = operation,
 * r1 = pointer to a parameter block; the result comes back in r0.
 *
 * The low-level calls are inline here; semihost.c builds a moeflash port
 * (port/port.h) on SYS_OPEN/SYS_READ/SYS_SEEK/SYS_FLEN/SYS_CLOSE with time
 * from SYS_ELAPSED/SYS_TICKFREQ. Nothing allocates.
 */
#ifndef MF_SEMIHOST_H
#define MF_SEMIHOST_H

#include <stddef.h>
#include <stdint.h>

#include "../port.h"

enum {
    MF_SH_SYS_OPEN = 0x01,
    MF_SH_SYS_CLOSE = 0x02,
    MF_SH_SYS_WRITE0 = 0x04,
    MF_SH_SYS_WRITE = 0x05,
    MF_SH_SYS_READ = 0x06,
    MF_SH_SYS_SEEK = 0x0A,
    MF_SH_SYS_FLEN = 0x0C,
    MF_SH_SYS_GET_CMDLINE = 0x15,
    MF_SH_SYS_EXIT = 0x18,
    MF_SH_SYS_EXIT_EXTENDED = 0x20,
    MF_SH_SYS_ELAPSED = 0x30,
    MF_SH_SYS_TICKFREQ = 0x31
};

/* SYS_OPEN modes (ISO C fopen modes in the order the spec lists them). */
enum { MF_SH_MODE_RB = 1, MF_SH_MODE_W = 4 };

/* ADP_Stopped_ApplicationExit: the reason code SYS_EXIT_EXTENDED reports. */
#define MF_SH_ADP_APPLICATION_EXIT 0x20026u

static inline int32_t mf_sh_call(uint32_t op, void *arg)
{
#if defined(__arm__)
    register uint32_t r0 __asm__("r0") = op;
    register void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return (int32_t)r0;
#else
    (void)op;
    (void)arg;
    return -1;
#endif
}

static inline int32_t mf_sh_open(const char *path, uint32_t mode)
{
    uint32_t len = 0;
    while (path[len]) len++;
    uint32_t blk[3] = {(uint32_t)(uintptr_t)path, mode, len};
    return mf_sh_call(MF_SH_SYS_OPEN, blk);
}

static inline int32_t mf_sh_close(int32_t fd)
{
    uint32_t blk[1] = {(uint32_t)fd};
    return mf_sh_call(MF_SH_SYS_CLOSE, blk);
}

/* Returns the number of bytes NOT written (0 = all). */
static inline int32_t mf_sh_write(int32_t fd, const void *buf, uint32_t len)
{
    uint32_t blk[3] = {(uint32_t)fd, (uint32_t)(uintptr_t)buf, len};
    return mf_sh_call(MF_SH_SYS_WRITE, blk);
}

/* Returns the number of bytes NOT read (0 = all). */
static inline int32_t mf_sh_read(int32_t fd, void *buf, uint32_t len)
{
    uint32_t blk[3] = {(uint32_t)fd, (uint32_t)(uintptr_t)buf, len};
    return mf_sh_call(MF_SH_SYS_READ, blk);
}

static inline int32_t mf_sh_seek(int32_t fd, uint32_t pos)
{
    uint32_t blk[2] = {(uint32_t)fd, pos};
    return mf_sh_call(MF_SH_SYS_SEEK, blk);
}

static inline int32_t mf_sh_flen(int32_t fd)
{
    uint32_t blk[1] = {(uint32_t)fd};
    return mf_sh_call(MF_SH_SYS_FLEN, blk);
}

/* Fills buf with the command line (NUL-terminated); returns 0 on success. */
static inline int32_t mf_sh_get_cmdline(char *buf, uint32_t cap)
{
    uint32_t blk[2] = {(uint32_t)(uintptr_t)buf, cap};
    int32_t r = mf_sh_call(MF_SH_SYS_GET_CMDLINE, blk);
    if (r == 0 && blk[1] < cap) buf[blk[1]] = 0;
    return r;
}

/* Ticks since the program started (64-bit); 0 when unsupported. */
static inline uint64_t mf_sh_elapsed(void)
{
    uint32_t blk[2] = {0, 0};
    if (mf_sh_call(MF_SH_SYS_ELAPSED, blk) != 0) return 0;
    return (uint64_t)blk[0] | ((uint64_t)blk[1] << 32);
}

static inline uint32_t mf_sh_tickfreq(void)
{
    int32_t r = mf_sh_call(MF_SH_SYS_TICKFREQ, NULL);
    return r > 0 ? (uint32_t)r : 0;
}

/* Ends the program; the emulator exits with `status`. */
__attribute__((noreturn)) static inline void mf_sh_exit(int status)
{
    uint32_t blk[2] = {MF_SH_ADP_APPLICATION_EXIT, (uint32_t)status};
    mf_sh_call(MF_SH_SYS_EXIT_EXTENDED, blk);
    /* Fallback for hosts without SYS_EXIT_EXTENDED: on AArch32 SYS_EXIT takes
     * the reason in r1 and cannot carry a status beyond success/failure. */
    mf_sh_call(MF_SH_SYS_EXIT, (void *)(uintptr_t)(status == 0 ? MF_SH_ADP_APPLICATION_EXIT
                                                               : 0x20023u /* RunTimeErrorUnknown */));
    for (;;) {
    }
}

/* ---- the port ---- */

typedef struct {
    int32_t fd;
    uint64_t size;
    uint64_t pos;        /* where the host file position is, to skip SYS_SEEKs */
    uint32_t tickfreq;   /* SYS_TICKFREQ answer, 0 if unsupported */
    uint64_t reads, bytes_read, seeks;
} mf_semihost_ctx;

/* Opens `path` on the host read-only and fills *port. page_size 0 = 4096.
 * Returns MF_PORT_OK or MF_PORT_EIO. */
int mf_semihost_port_open(mf_port *port, mf_semihost_ctx *ctx, const char *path,
                          uint32_t page_size);
void mf_semihost_port_close(mf_port *port);

/* Monotonic time from SYS_ELAPSED/SYS_TICKFREQ (0 when unsupported). */
uint64_t mf_semihost_now_ns(const mf_port *p);

#endif
