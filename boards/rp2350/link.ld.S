/* rp2350 (Pico 2): code and read-only data execute in place from QSPI flash
 * (XIP window at 0x10000000, cached); the model image sits in the same flash
 * at MF_IMAGE_FLASH_OFFSET (board_config.h), after at most 256 KiB of
 * program. SRAM0-7 (512 KiB, striped) + SRAM8/9 (2 x 4 KiB) at 0x20000000.
 * RP2350 datasheet section 2.2 "Address map". */
MEMORY
{
    FLASH (rx) : ORIGIN = 0x10000000, LENGTH = 256K
    SRAM  (rw) : ORIGIN = 0x20000000, LENGTH = 520K
}
REGION_ALIAS("REGION_TEXT", FLASH);
REGION_ALIAS("REGION_DATA", SRAM);
REGION_ALIAS("REGION_ARENA", SRAM);
__stack_size = STACK_SIZE;
INCLUDE boards/common/sections.ld
