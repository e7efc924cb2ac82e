# mps3-an547: Cortex-M55 with Helium (MVE) and FPU, QEMU -M mps3-an547.
# The image goes into the 8 MiB QSPI window at 0x28000000 (memory-mapped).
FW_CPU := -mcpu=cortex-m55 -mthumb -mfloat-abi=hard
FW_EXTRA_DEFS := -DMF_HAVE_ARM_KERNELS
FW_LDSCRIPT := boards/mps3-an547/link.ld.S
FW_BOARD_SRC := boards/common/board_qemu.c port/memmap/memmap.c port/semihost/semihost.c
FW_ARENA ?= 999424
FW_STACK ?= 16384
FW_LDDEFS ?=
FW_CONVERT ?= --resident q8 --experts q4
FW_MACHINE := mps3-an547
FW_QEMU := -M mps3-an547 -nographic -monitor none -serial none \
  -semihosting-config enable=on,target=native
FW_QEMU_IMG = -device loader,file=$(FW_DIR)/model.img,addr=0x28000000

# FW_PROFILE=dtcm: everything writable in the 512 KiB DTCM (the moonshot
# budget): q4 resident weights and experts, a 256-token q8 KV cache
# (MF_KV_ENCODING 3 = MF_ENC_Q8; host: --kv q8), arena 448 KiB.
# Built in build/mps3-an547-dtcm/.
ifeq ($(FW_PROFILE),dtcm)
FW_DIR := $(BUILD)/$(BOARD)-dtcm
FW_LDDEFS := -DARENA_IN_DTCM
FW_ARENA := 458752
FW_CONVERT := --resident q4 --experts q4
FW_EXTRA_DEFS += -DMF_CONTEXT_LEN=256 -DMF_KV_ENCODING=3
endif
include boards/common/firmware.mk
