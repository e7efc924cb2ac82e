# mps2-an505: Cortex-M33 with FPU and the DSP extension, QEMU -M mps2-an505:
# the rp2350's core, compiler flags and memory budget (q4/q4 image, 464 KiB
# arena, 256-token q8 KV cache), with the image memory-mapped as the
# rp2350's XIP flash is. The board layer is QEMU's (semihosting), not the
# rp2350's: its clocks, UART and DMA are still untested.
FW_CPU := -mcpu=cortex-m33 -mthumb -mfloat-abi=hard -mfpu=fpv5-sp-d16
FW_EXTRA_DEFS := -DMF_HAVE_ARM_KERNELS
FW_LDSCRIPT := boards/mps2-an505/link.ld.S
FW_BOARD_SRC := boards/common/board_qemu.c port/memmap/memmap.c port/semihost/semihost.c
FW_ARENA ?= 475136
FW_STACK ?= 16384
FW_LDDEFS ?=
FW_CONVERT ?= --resident q4 --experts q4
FW_MACHINE := mps2-an505
FW_QEMU := -M mps2-an505 -nographic -monitor none -serial none \
  -semihosting-config enable=on,target=native
FW_QEMU_IMG = -device loader,file=$(FW_DIR)/model.img,addr=0x80000000
include boards/common/firmware.mk
