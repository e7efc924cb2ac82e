/* mps2-an505: Cortex-M33 with FPU (single precision) and the DSP extension
 * on Arm's IoT kit subsystem: the core of the rp2350 (Pico 2), run in QEMU
 * with the rp2350's image, arena, context and KV encoding, so that the
 * configuration that board is built with runs somewhere (boards/rp2350 is
 * compile-only).
 * Memory map (Arm AN505 application note, "Memory map"; QEMU
 * hw/arm/mps2-tz.c): ZBT SSRAM1 4 MiB at 0x00000000 (code; secure alias
 * 0x10000000, where the text is linked), SSRAM2/3 4 MiB at 0x28000000
 * (data), PSRAM 16 MiB at 0x80000000, which stands in for the rp2350's XIP
 * flash: QEMU's `-device loader,file=IMG,addr=0x80000000` puts the image
 * there and port/memmap reads it as memory. With the SAU disabled every
 * address is Secure, so the non-secure aliases are used as they are. */
#ifndef MF_BOARD_CONFIG_H
#define MF_BOARD_CONFIG_H

#define MF_BOARD_NAME "mps2-an505"
#define MF_IMAGE_BASE 0x80000000u
/* The rp2350's flash after its 256 KiB of program: an image that does not
 * fit the Pico 2 is refused here too. */
#define MF_IMAGE_WINDOW ((4u << 20) - 0x00040000u)

/* The rp2350's budget (boards/rp2350/board_config.h): q4 resident weights
 * and experts, a 256-token q8 KV cache, the router lookahead. */
#ifndef MF_ARENA_BYTES
#define MF_ARENA_BYTES (464u * 1024u)
#endif
#ifndef MF_CONTEXT_LEN
#define MF_CONTEXT_LEN 256
#endif
#ifndef MF_KV_ENCODING
#define MF_KV_ENCODING 3
#endif
#ifndef MF_PREDICTOR
#define MF_PREDICTOR 2 /* MF_PREDICT_LOOKAHEAD */
#endif
#define MF_DEFAULT_TOKENS 64
#define MF_DEFAULT_PROMPT "ROMEO:"

#endif
