/* mps3-an547 (Cortex-M55, SSE-300), see board_config.h for the map.
 * Preprocessed with cpp: by default the arena goes to ISRAM (4 MiB) and
 * .data/.bss/stack to DTCM; ARENA_IN_DTCM puts the arena in the 512 KiB
 * DTCM too (a build that fits 512 KiB); ARENA_IN_DDR in DDR (bench builds
 * with every expert resident). */
MEMORY
{
    ITCM  (rwx) : ORIGIN = 0x00000000, LENGTH = 512K
    DTCM  (rw)  : ORIGIN = 0x20000000, LENGTH = 512K
    ISRAM (rw)  : ORIGIN = 0x21000000, LENGTH = 4M
    DDR   (rw)  : ORIGIN = 0x60000000, LENGTH = 256M
}
REGION_ALIAS("REGION_TEXT", ITCM);
REGION_ALIAS("REGION_DATA", DTCM);
#if defined(ARENA_IN_DTCM)
REGION_ALIAS("REGION_ARENA", DTCM);
#elif defined(ARENA_IN_DDR)
REGION_ALIAS("REGION_ARENA", DDR); /* bench builds: every expert resident */
#else
REGION_ALIAS("REGION_ARENA", ISRAM);
#endif
__stack_size = STACK_SIZE;
INCLUDE boards/common/sections.ld
