/* rp2350: Raspberry Pi Pico 2 (RP2350A, two Cortex-M33 with FPU and DSP;
 * 4 MiB QSPI NOR flash W25Q32RV, XIP-mapped at 0x10000000; 520 KiB SRAM at
 * 0x20000000). RP2350 datasheet (build 2024-08-08 and later), section 2.2
 * "Address map". Not run on hardware: see README.md. */
#ifndef MF_BOARD_CONFIG_H
#define MF_BOARD_CONFIG_H

#define MF_BOARD_NAME "rp2350 (Pico 2)"

/* Where `picotool load --offset` puts the model image, and how much flash
 * is left for it (4 MiB part). */
#define MF_IMAGE_FLASH_OFFSET 0x00040000u
#define MF_IMAGE_BASE (0x10000000u + MF_IMAGE_FLASH_OFFSET)
#define MF_IMAGE_WINDOW ((4u << 20) - MF_IMAGE_FLASH_OFFSET)

/* 520 KiB of SRAM: q4 resident weights and q4 experts (image: --resident
 * q4 --experts q4) with a 256-token KV cache in q8 (MF_ENC_Q8: 548 bytes
 * per position instead of f32's 2048) and the router lookahead need
 * 457,087 bytes of arena, as the mps2-an505 build measures under QEMU for
 * this image (455,615 without the lookahead); an f32 KV cache would fit
 * only 64 positions. */
#ifndef MF_ARENA_BYTES
#define MF_ARENA_BYTES (464u * 1024u)
#endif
#ifndef MF_CONTEXT_LEN
#define MF_CONTEXT_LEN 256
#endif
#ifndef MF_KV_ENCODING
#define MF_KV_ENCODING 3
#endif
/* LFU (the runtime's default) with the router lookahead: the fastest use
 * of this budget by `moeflash plan` (bench/results/plan_rp2350.txt: 26.95
 * simulated tokens/s against 26.29 without a predictor, for 1,472 bytes
 * of its scratch in the arena). */
#ifndef MF_PREDICTOR
#define MF_PREDICTOR 2 /* MF_PREDICT_LOOKAHEAD */
#endif
#define MF_DEFAULT_TOKENS 64
#define MF_DEFAULT_PROMPT "ROMEO:"

/* Clocks: 12 MHz crystal -> PLL_SYS 1500 MHz VCO / 5 / 2 = 150 MHz clk_sys;
 * clk_peri = clk_sys; UART0 115200 8N1 on GP0 (TX) / GP1 (RX). */
#define MF_XOSC_HZ 12000000u
#define MF_SYS_HZ 150000000u
#define MF_UART_BAUD 115200u

#endif
