# mps3-an547: Cortex-M55 with Helium (MVE) and FPU, QEMU -M mps3-an547.
# The image goes into the 8 MiB QSPI window at 0x28000000 (memory-mapped).
FW_CPU := -mcpu=cortex-m55 -mthumb -mfloat-abi=hard
FW_EXTRA_DEFS := -DMF_HAVE_ARM_KERNELS
FW_LDSCRIPT := boards/mps3-an547/link.ld.S
FW_BOARD_SRC := boards/common/board_qemu.c port/memmap/memmap.c port/semihost/semihost.c
FW_ARENA ?= 966656
FW_STACK ?= 16384
FW_LDDEFS ?=
FW_CONVERT ?= --resident q8 --experts q4
FW_MACHINE := mps3-an547
FW_QEMU := -M mps3-an547 -nographic -monitor none -serial none \
  -semihosting-config enable=on,target=native
FW_QEMU_IMG = -device loader,file=$(FW_DIR)/model.img,addr=0x28000000
include boards/common/firmware.mk
