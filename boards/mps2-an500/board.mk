# mps2-an500: Cortex-M7 with the FPv5 double-precision FPU and the DSP
# extension, QEMU -M mps2-an500: the SMLAD kernels (runtime/kernels_arm.c) and
# hardware doubles on the STM32F7/H7 class of core. The image is read through
# semihosting as on mps2-an385.
FW_CPU := -mcpu=cortex-m7 -mthumb -mfloat-abi=hard -mfpu=fpv5-d16
FW_EXTRA_DEFS := -DMF_HAVE_ARM_KERNELS
FW_LDSCRIPT := boards/mps2-an500/link.ld.S
FW_BOARD_SRC := boards/common/board_qemu.c port/semihost/semihost.c
FW_ARENA ?= 999424
FW_STACK ?= 16384
FW_LDDEFS ?=
FW_CONVERT ?= --resident q8 --experts q4
FW_QEMU := -M mps2-an500 -nographic -monitor none -serial none \
  -semihosting-config enable=on,target=native
FW_QEMU_IMG =
FW_RUN_ARGS = image=$(FW_DIR)/model.img
include boards/common/firmware.mk
