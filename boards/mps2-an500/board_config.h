/* mps2-an500: Cortex-M7 with the FPv5 double-precision FPU and the DSP
 * extension (SMLAD), the core of the STM32F7/H7 and i.MX RT parts. QEMU
 * (hw/arm/mps2.c) gives it the AN385/AN386 memory map: ZBT SSRAM1 4 MiB at
 * 0x00000000 (code), ZBT SSRAM2/3 4 MiB at 0x20000000 (data), PSRAM 16 MiB
 * at 0x21000000. No memory-mapped flash: the image is read through
 * semihosting. Here to run the DSP kernels and the runtime's double sums
 * (rmsnorm, softmax) on a core that has them in hardware. */
#ifndef MF_BOARD_CONFIG_H
#define MF_BOARD_CONFIG_H

#define MF_BOARD_NAME "mps2-an500"

#ifndef MF_ARENA_BYTES
#define MF_ARENA_BYTES (1024u * 1024u)
#endif
#ifndef MF_CONTEXT_LEN
#define MF_CONTEXT_LEN 256
#endif
#define MF_DEFAULT_TOKENS 64
#define MF_DEFAULT_PROMPT "ROMEO:"

#endif
