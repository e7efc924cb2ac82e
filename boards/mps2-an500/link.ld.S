/* mps2-an500 (Cortex-M7, FPv5 double precision), see board_config.h for the map. */
MEMORY
{
    SSRAM1  (rwx) : ORIGIN = 0x00000000, LENGTH = 4M
    SSRAM23 (rw)  : ORIGIN = 0x20000000, LENGTH = 4M
}
REGION_ALIAS("REGION_TEXT", SSRAM1);
REGION_ALIAS("REGION_DATA", SSRAM23);
REGION_ALIAS("REGION_ARENA", SSRAM23);
__stack_size = STACK_SIZE;
INCLUDE boards/common/sections.ld
