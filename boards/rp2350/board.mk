# rp2350: Raspberry Pi Pico 2 (Cortex-M33 with FPU and DSP). Compile-only
# here (not run on hardware): see boards/rp2350/README.md for flashing.
# The image lives in the on-board QSPI flash, read through the XIP window
# with the DMA engine (port/memmap + the board's DMA hooks).
FW_CPU := -mcpu=cortex-m33 -mthumb -mfloat-abi=hard -mfpu=fpv5-sp-d16
FW_EXTRA_DEFS := -DMF_HAVE_ARM_KERNELS
FW_LDSCRIPT := boards/rp2350/link.ld.S
FW_BOARD_SRC := boards/rp2350/board.c port/memmap/memmap.c
FW_ARENA ?= 475136
FW_STACK ?= 16384
FW_LDDEFS ?=
FW_CONVERT ?= --resident q4 --experts q4
FW_QEMU := false
FW_QEMU_IMG =
include boards/common/firmware.mk

# UF2 is not produced here; picotool loads ELF and BIN files directly.
