/*
 * Board layer for the RP2350 (Raspberry Pi Pico 2), written against the
 * RP2350 datasheet (Raspberry Pi Ltd, build 2024-08-08+; section numbers
 * below are from that document). NOT RUN ON HARDWARE.
 *
 *  - boot: the bootrom needs an IMAGE_DEF block in the first 4 KiB of flash
 *    (section 5.9.5 "Minimum viable image metadata"); it then starts the
 *    image from the vector table at 0x10000000 with XIP already set up
 *    (section 5.1.8/5.2 boot sequence), so no flash driver is needed to
 *    read the memory-mapped model image.
 *  - clocks (section 8.1 Clocks, 8.2 XOSC, 8.6 PLL): XOSC 12 MHz ->
 *    clk_ref; PLL_SYS 12 MHz * 125 = 1500 MHz / 5 / 2 = 150 MHz -> clk_sys;
 *    clk_peri = clk_sys.
 *  - console (section 12.1 UART, an Arm PL011): UART0, GP0 TX / GP1 RX,
 *    115200 8N1 (IO_BANK0 FUNCSEL 2, section 9.4; pads section 9.8 - the
 *    RP2350 pads come out of reset isolated: PADS ISO must be cleared).
 *  - flash port: port/memmap over the XIP window, async reads on DMA
 *    channels 0..3 (section 12.6 DMA), unpaced (TREQ_SEL = 0x3f), byte
 *    transfers when unaligned, word transfers when both ends are aligned.
 *  - time: DWT CYCCNT at clk_sys, extended to 64 bits.
 */
#include <stdint.h>
#include <string.h>

#include "../../port/memmap/memmap.h"
#include "../common/board.h"
#include "board_config.h"

#define REG(a) (*(volatile uint32_t *)(uintptr_t)(a))
/* Atomic register aliases (section 2.1.3): +0x2000 set, +0x3000 clear. */
#define SET_ALIAS 0x2000u
#define CLR_ALIAS 0x3000u

/* Base addresses, section 2.2.4 "APB registers" / 2.2.5 "AHB registers". */
#define CLOCKS_BASE 0x40010000u
#define RESETS_BASE 0x40020000u
#define IO_BANK0_BASE 0x40028000u
#define PADS_BANK0_BASE 0x40038000u
#define XOSC_BASE 0x40048000u
#define PLL_SYS_BASE 0x40050000u
#define UART0_BASE 0x40070000u
#define DMA_BASE 0x50000000u

/* RESETS (section 7.5): RESET at 0x0, RESET_DONE at 0x8. */
#define RESETS_RESET (RESETS_BASE + 0x0u)
#define RESETS_DONE (RESETS_BASE + 0x8u)
#define RST_DMA (1u << 2)
#define RST_IO_BANK0 (1u << 6)
#define RST_PADS_BANK0 (1u << 9)
#define RST_PLL_SYS (1u << 14)
#define RST_UART0 (1u << 26)

/* XOSC (section 8.2.8 registers). */
#define XOSC_CTRL (XOSC_BASE + 0x00u)
#define XOSC_STATUS (XOSC_BASE + 0x04u)
#define XOSC_STARTUP (XOSC_BASE + 0x0cu)
#define XOSC_CTRL_RANGE_1_15MHZ 0xaa0u
#define XOSC_CTRL_ENABLE (0xfabu << 12)
#define XOSC_STATUS_STABLE (1u << 31)

/* PLL (section 8.6.5 registers). */
#define PLL_CS (PLL_SYS_BASE + 0x0u)
#define PLL_PWR (PLL_SYS_BASE + 0x4u)
#define PLL_FBDIV_INT (PLL_SYS_BASE + 0x8u)
#define PLL_PRIM (PLL_SYS_BASE + 0xcu)
#define PLL_CS_LOCK (1u << 31)
#define PLL_PWR_PD (1u << 0)
#define PLL_PWR_POSTDIVPD (1u << 3)
#define PLL_PWR_VCOPD (1u << 5)

/* CLOCKS (section 8.1.7 registers). */
#define CLK_REF_CTRL (CLOCKS_BASE + 0x30u)
#define CLK_REF_SELECTED (CLOCKS_BASE + 0x38u)
#define CLK_SYS_CTRL (CLOCKS_BASE + 0x3cu)
#define CLK_SYS_SELECTED (CLOCKS_BASE + 0x44u)
#define CLK_PERI_CTRL (CLOCKS_BASE + 0x48u)
#define CLK_PERI_DIV (CLOCKS_BASE + 0x4cu)
#define CLK_REF_SRC_XOSC 2u
#define CLK_SYS_SRC_AUX 1u
#define CLK_PERI_ENABLE (1u << 11)

/* IO_BANK0 / PADS_BANK0 (sections 9.11.1, 9.11.3). */
#define GPIO_CTRL(n) (IO_BANK0_BASE + 0x004u + 8u * (n))
#define PADS_GPIO(n) (PADS_BANK0_BASE + 0x004u + 4u * (n))
#define FUNCSEL_UART 2u
#define PADS_IE (1u << 6)
#define PADS_OD (1u << 7)
#define PADS_ISO (1u << 8)

/* PL011 UART (section 12.1.8 registers). */
#define UART_DR (UART0_BASE + 0x000u)
#define UART_FR (UART0_BASE + 0x018u)
#define UART_IBRD (UART0_BASE + 0x024u)
#define UART_FBRD (UART0_BASE + 0x028u)
#define UART_LCR_H (UART0_BASE + 0x02cu)
#define UART_CR (UART0_BASE + 0x030u)
#define UART_FR_TXFF (1u << 5)
#define UART_FR_BUSY (1u << 3)

/* DMA channel registers (section 12.6.10): channel n at n * 0x40. */
#define DMA_READ_ADDR(n) (DMA_BASE + 0x40u * (n) + 0x00u)
#define DMA_WRITE_ADDR(n) (DMA_BASE + 0x40u * (n) + 0x04u)
#define DMA_TRANS_COUNT(n) (DMA_BASE + 0x40u * (n) + 0x08u)
#define DMA_CTRL_TRIG(n) (DMA_BASE + 0x40u * (n) + 0x0cu)
#define DMA_CTRL_EN (1u << 0)
#define DMA_CTRL_SIZE_BYTE (0u << 2)
#define DMA_CTRL_SIZE_WORD (2u << 2)
#define DMA_CTRL_INCR_READ (1u << 4)
#define DMA_CTRL_INCR_WRITE (1u << 6)
#define DMA_CTRL_CHAIN_TO(n) ((uint32_t)(n) << 13)
#define DMA_CTRL_TREQ_UNPACED (0x3fu << 17)
#define DMA_CTRL_BUSY (1u << 26)
#define DMA_CTRL_ERRORS ((1u << 29) | (1u << 30) | (1u << 31))
#define DMA_CHAN_ABORT (DMA_BASE + 0x464u) /* section 12.6.10: one bit per channel */
#define DMA_CHANNELS 4u
#define DMA_MAX_COUNT 0x0fffffffu /* TRANS_COUNT bits 27:0 (31:28 = MODE) */

/* Cortex-M33 DWT cycle counter (Armv8-M ARM, DWT). */
#define DEMCR 0xE000EDFCu
#define DWT_CTRL 0xE0001000u
#define DWT_CYCCNT 0xE0001004u

/* ---- boot metadata: IMAGE_DEF "Arm Secure executable, RP2350" ----
 * Section 5.9.5: start marker, IMAGE_TYPE item (size 1 word, flags =
 * EXE | security S | CPU ARM | chip RP2350), LAST item, link to itself
 * (0 = this block only), end marker. Placed right after the vectors. */
__attribute__((section(".vectors_extra"), used)) static const uint32_t rp2350_image_def[5] = {
    0xffffded3u,  /* PICOBIN_BLOCK_MARKER_START */
    0x10210142u,  /* IMAGE_TYPE: 0x42, size 1, flags 0x1021 */
    0x000001ffu,  /* LAST item, total size of the items = 1 */
    0x00000000u,  /* relative link to the next block: none (loop to self) */
    0xab123579u}; /* PICOBIN_BLOCK_MARKER_END */

static void unreset(uint32_t bits)
{
    REG(RESETS_RESET + CLR_ALIAS) = bits;
    while ((REG(RESETS_DONE) & bits) != bits) {
    }
}

static void clocks_init(void)
{
    /* clk_sys back to clk_ref (glitchless mux) before touching the PLL. */
    REG(CLK_SYS_CTRL + CLR_ALIAS) = 1u; /* SRC = clk_ref */
    while ((REG(CLK_SYS_SELECTED) & 1u) == 0) {
    }

    /* XOSC: 1-15 MHz range, startup delay ~1 ms * 64 (as the SDK does). */
    REG(XOSC_CTRL) = XOSC_CTRL_RANGE_1_15MHZ;
    REG(XOSC_STARTUP) = ((MF_XOSC_HZ / 1000u + 128u) / 256u) * 64u;
    REG(XOSC_CTRL) = XOSC_CTRL_RANGE_1_15MHZ | XOSC_CTRL_ENABLE;
    while ((REG(XOSC_STATUS) & XOSC_STATUS_STABLE) == 0) {
    }

    /* clk_ref = XOSC */
    REG(CLK_REF_CTRL) = CLK_REF_SRC_XOSC;
    while ((REG(CLK_REF_SELECTED) & (1u << CLK_REF_SRC_XOSC)) == 0) {
    }

    /* PLL_SYS: REFDIV 1, FBDIV 125 (VCO 1500 MHz), POSTDIV 5 * 2. */
    REG(RESETS_RESET + SET_ALIAS) = RST_PLL_SYS;
    unreset(RST_PLL_SYS);
    REG(PLL_CS) = 1u;
    REG(PLL_FBDIV_INT) = 125u;
    REG(PLL_PWR + CLR_ALIAS) = PLL_PWR_PD | PLL_PWR_VCOPD;
    while ((REG(PLL_CS) & PLL_CS_LOCK) == 0) {
    }
    REG(PLL_PRIM) = (5u << 16) | (2u << 12);
    REG(PLL_PWR + CLR_ALIAS) = PLL_PWR_POSTDIVPD;

    /* clk_sys = clksrc_clk_sys_aux = clksrc_pll_sys (AUXSRC 0) */
    REG(CLK_SYS_CTRL) = (0u << 5) | CLK_SYS_SRC_AUX;
    while ((REG(CLK_SYS_SELECTED) & 2u) == 0) {
    }

    /* clk_peri = clk_sys (AUXSRC 0), divider 1 */
    REG(CLK_PERI_CTRL) = 0;
    REG(CLK_PERI_DIV) = 1u << 16;
    REG(CLK_PERI_CTRL) = CLK_PERI_ENABLE | (0u << 5);
}

static void uart_init(void)
{
    unreset(RST_IO_BANK0 | RST_PADS_BANK0 | RST_UART0);
    /* GP0 = UART0 TX, GP1 = UART0 RX; un-isolate the pads, input on RX. */
    REG(GPIO_CTRL(0)) = FUNCSEL_UART;
    REG(GPIO_CTRL(1)) = FUNCSEL_UART;
    REG(PADS_GPIO(0)) = (REG(PADS_GPIO(0)) & ~(PADS_ISO | PADS_OD)) | PADS_IE;
    REG(PADS_GPIO(1)) = (REG(PADS_GPIO(1)) & ~(PADS_ISO | PADS_OD)) | PADS_IE;
    /* Baud divisor = clk_peri / (16 * baud) in 16.6 fixed point. */
    uint32_t div = 8u * MF_SYS_HZ / MF_UART_BAUD + 1u;
    REG(UART_IBRD) = div >> 7;
    REG(UART_FBRD) = (div & 0x7fu) >> 1;
    REG(UART_LCR_H) = (3u << 5) | (1u << 4); /* 8 bits, FIFOs on; latches the divisor */
    REG(UART_CR) = (1u << 0) | (1u << 8) | (1u << 9); /* UARTEN, TXE, RXE */
}

static uint32_t cyc_last, cyc_high;

void board_init(void)
{
    clocks_init();
    uart_init();
    unreset(RST_DMA);
    REG(DEMCR) |= 1u << 24; /* TRCENA */
    REG(DWT_CYCCNT) = 0;
    REG(DWT_CTRL) |= 1u;    /* CYCCNTENA */
}

void board_write(const void *buf, size_t len)
{
    const uint8_t *p = (const uint8_t *)buf;
    for (size_t i = 0; i < len; i++) {
        if (p[i] == '\n') {
            while (REG(UART_FR) & UART_FR_TXFF) {
            }
            REG(UART_DR) = '\r';
        }
        while (REG(UART_FR) & UART_FR_TXFF) {
        }
        REG(UART_DR) = p[i];
    }
}

const char *board_cmdline(void) { return NULL; }

uint64_t board_now_ns(void)
{
    uint32_t c = REG(DWT_CYCCNT);
    if (c < cyc_last) cyc_high++; /* called at least once per 28 s wrap */
    cyc_last = c;
    uint64_t cycles = ((uint64_t)cyc_high << 32) | c;
    return cycles * 1000u / (MF_SYS_HZ / 1000000u);
}

/* ---- DMA hooks for port/memmap ---- */

/* Per channel: transfers asked and bytes per transfer, for abort(). */
static uint32_t dma_count[DMA_CHANNELS], dma_unit[DMA_CHANNELS];

static int dma_start(void *ctx, uint32_t ch, void *dst, const void *src, size_t len)
{
    (void)ctx;
    if (ch >= DMA_CHANNELS || len > DMA_MAX_COUNT) return MF_PORT_EINVAL;
    dma_count[ch] = 0;
    if (len == 0) return MF_PORT_OK; /* nothing to move; busy() reads 0 */
    uint32_t size = DMA_CTRL_SIZE_BYTE, count = (uint32_t)len;
    dma_unit[ch] = 1;
    if ((((uintptr_t)dst | (uintptr_t)src | len) & 3u) == 0) {
        size = DMA_CTRL_SIZE_WORD;
        count = (uint32_t)(len / 4u);
        dma_unit[ch] = 4;
    }
    dma_count[ch] = count;
    REG(DMA_READ_ADDR(ch)) = (uint32_t)(uintptr_t)src;
    REG(DMA_WRITE_ADDR(ch)) = (uint32_t)(uintptr_t)dst;
    REG(DMA_TRANS_COUNT(ch)) = count; /* MODE 0: normal */
    __asm__ volatile("dsb" ::: "memory");
    REG(DMA_CTRL_TRIG(ch)) = DMA_CTRL_EN | size | DMA_CTRL_INCR_READ | DMA_CTRL_INCR_WRITE |
                             DMA_CTRL_CHAIN_TO(ch) | DMA_CTRL_TREQ_UNPACED;
    return MF_PORT_OK;
}

static int dma_busy(void *ctx, uint32_t ch)
{
    (void)ctx;
    uint32_t c = REG(DMA_CTRL_TRIG(ch));
    if (c & DMA_CTRL_ERRORS) return -1;
    if (c & DMA_CTRL_BUSY) return 1;
    __asm__ volatile("dsb" ::: "memory"); /* the data is in RAM before we use it */
    return 0;
}

/* Section 12.6.8 "Aborting transfers": set the channel's CHAN_ABORT bit;
 * on RP2350 the bit reads 1 until the transfers in flight have finished
 * (erratum RP2040-E13 fixed), then TRANS_COUNT holds the transfers not
 * done. Written from the datasheet; not run on hardware. */
static int dma_abort(void *ctx, uint32_t ch, size_t *done)
{
    (void)ctx;
    *done = 0;
    if (ch >= DMA_CHANNELS) return MF_PORT_EINVAL;
    if (!dma_count[ch]) return MF_PORT_OK;
    REG(DMA_CHAN_ABORT) = 1u << ch;
    while (REG(DMA_CHAN_ABORT) & (1u << ch)) {
    }
    __asm__ volatile("dsb" ::: "memory");
    if (REG(DMA_CTRL_TRIG(ch)) & DMA_CTRL_ERRORS) return -1;
    uint32_t left = REG(DMA_TRANS_COUNT(ch)) & DMA_MAX_COUNT;
    if (left > dma_count[ch]) left = dma_count[ch];
    *done = (size_t)(dma_count[ch] - left) * dma_unit[ch];
    return 0;
}

/* Bytes already in dst while the channel runs: TRANS_COUNT is live and
 * counts down "each time a write transfer completes" (section 12.6.2), so
 * what it no longer counts has landed. Lets the runtime compute an
 * expert's first rows while the DMA still moves the rest. Written from the
 * datasheet; not run on hardware. */
static int dma_written(void *ctx, uint32_t ch, size_t *done)
{
    (void)ctx;
    *done = 0;
    if (ch >= DMA_CHANNELS) return MF_PORT_EINVAL;
    uint32_t left = REG(DMA_TRANS_COUNT(ch)) & DMA_MAX_COUNT;
    if (left > dma_count[ch]) left = dma_count[ch];
    __asm__ volatile("dsb" ::: "memory");
    *done = (size_t)(dma_count[ch] - left) * dma_unit[ch];
    return 0;
}

static const mf_memmap_dma rp2350_dma = {NULL,      dma_start, dma_busy, DMA_CHANNELS,
                                         dma_abort, dma_written};
static mf_memmap_ctx mm_ctx;

static uint64_t clock_ns(void) { return board_now_ns(); }

int board_open_image(mf_port *port, const char *path)
{
    (void)path;
    const void *base = (const void *)(uintptr_t)MF_IMAGE_BASE;
    uint64_t n = mf_memmap_image_bytes(base, MF_IMAGE_WINDOW);
    if (!n) return MF_PORT_EIO; /* no image flashed at MF_IMAGE_FLASH_OFFSET */
    return mf_memmap_port_init(port, &mm_ctx, base, n, 4096, DMA_CHANNELS, &rp2350_dma, clock_ns);
}

void board_exit(int status)
{
    con_puts("\n[moeflash exited with status ");
    con_puti(status);
    con_puts("]\n");
    while (REG(UART_FR) & UART_FR_BUSY) {
    }
    for (;;) __asm__ volatile("wfi");
}
