/*
 * The board layer for the QEMU Arm machines (mps3-an547, mps2-an385):
 * console, command line, clock and exit through Arm semihosting; the model
 * image either memory-mapped (board_config.h defines MF_IMAGE_BASE and
 * MF_IMAGE_WINDOW: QEMU's `-device loader,file=IMG,addr=BASE`) or read from a
 * host file by semihosting when an image path is given.
 */
#include <string.h>

#include "../../port/memmap/memmap.h"
#include "../../port/semihost/semihost.h"
#include "board.h"
#include "board_config.h"

static int32_t con_fd = -1;
static char cmdline[512];
static int have_cmdline;
static uint32_t tickfreq;

static mf_semihost_ctx sh_ctx;
#if defined(MF_IMAGE_BASE)
static mf_memmap_ctx mm_ctx;
#endif

void board_init(void)
{
    con_fd = mf_sh_open(":tt", MF_SH_MODE_W);
    have_cmdline = mf_sh_get_cmdline(cmdline, sizeof cmdline) == 0;
    tickfreq = mf_sh_tickfreq();
}

void board_write(const void *buf, size_t len)
{
    if (con_fd >= 0 && len) mf_sh_write(con_fd, buf, (uint32_t)len);
}

const char *board_cmdline(void) { return have_cmdline ? cmdline : NULL; }

uint64_t board_now_ns(void)
{
    if (!tickfreq) return 0;
    uint64_t t = mf_sh_elapsed();
    return (t / tickfreq) * 1000000000ull + ((t % tickfreq) * 1000000000ull) / tickfreq;
}

int board_open_image(mf_port *port, const char *path)
{
    if (path && path[0]) return mf_semihost_port_open(port, &sh_ctx, path, 4096);
#if defined(MF_IMAGE_BASE)
    const void *base = (const void *)(uintptr_t)MF_IMAGE_BASE;
    uint64_t n = mf_memmap_image_bytes(base, MF_IMAGE_WINDOW);
    if (!n) return MF_PORT_EIO; /* nothing loaded at the window */
    return mf_memmap_port_init(port, &mm_ctx, base, n, 4096, 4, NULL, board_now_ns);
#else
    return MF_PORT_EINVAL;
#endif
}

void board_exit(int status) { mf_sh_exit(status); }
