/* mps3-an547: Cortex-M55 (Helium/MVE, FPU) on Arm's SSE-300 subsystem.
 * Memory map (Arm AN547 application note, section "Memory map"; QEMU
 * hw/arm/mps2-tz.c): ITCM 512 KiB at 0x00000000 (secure alias 0x10000000),
 * DTCM 512 KiB at 0x20000000 (0x30000000), SRAM 2 MiB at 0x01000000,
 * ISRAM0/1 4 MiB at 0x21000000, QSPI flash 8 MiB at 0x28000000 (read-only
 * memory in QEMU), DDR at 0x60000000. */
#ifndef MF_BOARD_CONFIG_H
#define MF_BOARD_CONFIG_H

#define MF_BOARD_NAME "mps3-an547"
#define MF_IMAGE_BASE 0x28000000u
#define MF_IMAGE_WINDOW (8u << 20)

#ifndef MF_ARENA_BYTES
#define MF_ARENA_BYTES (448u * 1024u)
#endif
#ifndef MF_CONTEXT_LEN
#define MF_CONTEXT_LEN 256
#endif
#define MF_DEFAULT_TOKENS 64
#define MF_DEFAULT_PROMPT "ROMEO:"

#endif
