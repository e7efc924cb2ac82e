# mps2-an385: Cortex-M3 (no FPU, no DSP), QEMU -M mps2-an385.
# No memory-mapped flash: the image is a host file read by semihosting.
FW_CPU := -mcpu=cortex-m3 -mthumb -mfloat-abi=soft
FW_LDSCRIPT := boards/mps2-an385/link.ld.S
FW_BOARD_SRC := boards/common/board_qemu.c port/semihost/semihost.c
FW_ARENA ?= 999424
FW_STACK ?= 16384
FW_LDDEFS ?=
FW_CONVERT ?= --resident q8 --experts q4
FW_QEMU := -M mps2-an385 -nographic -monitor none -serial none \
  -semihosting-config enable=on,target=native
FW_QEMU_IMG =
FW_RUN_ARGS = image=$(FW_DIR)/model.img
include boards/common/firmware.mk
