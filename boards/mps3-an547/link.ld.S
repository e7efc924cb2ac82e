/* mps3-an547 (Cortex-M55, SSE-300), see board_config.h for the map.
 * Preprocessed with cpp: ARENA_IN_DTCM puts the arena in the 512 KiB DTCM
 * next to .data/.bss/stack (the 512 KiB build); otherwise it goes to ISRAM. */
MEMORY
{
    ITCM  (rwx) : ORIGIN = 0x00000000, LENGTH = 512K
    DTCM  (rw)  : ORIGIN = 0x20000000, LENGTH = 512K
    ISRAM (rw)  : ORIGIN = 0x21000000, LENGTH = 4M
}
REGION_ALIAS("REGION_TEXT", ITCM);
REGION_ALIAS("REGION_DATA", DTCM);
#if defined(ARENA_IN_DTCM)
REGION_ALIAS("REGION_ARENA", DTCM);
#else
REGION_ALIAS("REGION_ARENA", ISRAM);
#endif
__stack_size = STACK_SIZE;
INCLUDE boards/common/sections.ld
