/* mps2-an505 (Cortex-M33), see board_config.h for the map. The data region
 * is the whole 4 MiB of SSRAM2/3 so that the firmware tests' buffers fit;
 * tests/scripts/firmware_qemu.sh checks that moeflash.elf's writable
 * sections stay within the rp2350's 520 KiB. */
/* Text at SSRAM1's secure alias: QEMU reads the reset vector at the secure
 * VTOR (0x10000000) before the ELF's contents are copied into memory, from
 * the loaded blob that covers that address, so the ELF must be linked there. */
MEMORY
{
    SSRAM1  (rwx) : ORIGIN = 0x10000000, LENGTH = 4M
    SSRAM23 (rw)  : ORIGIN = 0x28000000, LENGTH = 4M
    PSRAM_HI (rw) : ORIGIN = 0x80400000, LENGTH = 12M /* above the image's 4 MiB */
}
REGION_ALIAS("REGION_TEXT", SSRAM1);
REGION_ALIAS("REGION_DATA", SSRAM23);
#if defined(ARENA_IN_DDR)
REGION_ALIAS("REGION_ARENA", PSRAM_HI); /* make fw-bench: every expert resident */
#else
REGION_ALIAS("REGION_ARENA", SSRAM23);
#endif
__stack_size = STACK_SIZE;
INCLUDE boards/common/sections.ld
