# mps2-an386: Cortex-M4 with FPU and the DSP extension, QEMU -M mps2-an386.
# Here mainly to run the SMLAD kernels (runtime/kernels_arm.c) in QEMU; the
# image is read through semihosting as on mps2-an385.
FW_CPU := -mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16
FW_EXTRA_DEFS := -DMF_HAVE_ARM_KERNELS
FW_LDSCRIPT := boards/mps2-an386/link.ld.S
FW_BOARD_SRC := boards/common/board_qemu.c port/semihost/semihost.c
FW_ARENA ?= 999424
FW_STACK ?= 16384
FW_LDDEFS ?=
FW_CONVERT ?= --resident q8 --experts q4
FW_QEMU := -M mps2-an386 -nographic -monitor none -serial none \
  -semihosting-config enable=on,target=native
FW_QEMU_IMG =
FW_RUN_ARGS = image=$(FW_DIR)/model.img
include boards/common/firmware.mk
