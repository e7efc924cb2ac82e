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
# FW_PROFILE=bpe: the BPE model tests/data/small-qwen3-moe-bpe (6 layers, 32
# experts, top-4, 1024-token BPE vocabulary) from a text prompt. q8 resident
# + q3 experts make a 7.5 MB image that fits the 8 MiB QSPI window (q4
# experts alone are 7.96 MB: with the resident weights 8.6 MB, too big); the
# tokenizer section is read in place from the window (mf_port_map), only its
# encode scratch is in the arena. Resident weights are 1.2 MB, so the arena
# is in DDR. Built in build/mps3-an547-bpe/.
ifeq ($(FW_PROFILE),bpe)
FW_DIR := $(BUILD)/$(BOARD)-bpe
FW_MODEL := tests/data/small-qwen3-moe-bpe
FW_LDDEFS := -DARENA_IN_DDR
FW_ARENA := 2162688
FW_CONVERT := --resident q8 --experts q3
endif
# FW_PROFILE=half: f16 experts and bf16 resident weights (the Helium
# mf_matvec_half_arm path). The image is 13.2 MB, more than the QSPI
# window, so it is read from the host file through semihosting; resident
# weights are 0.56 MB and an f16 expert slot 192 KiB, so the arena is in
# DDR. Built in build/mps3-an547-half/.
ifeq ($(FW_PROFILE),half)
FW_DIR := $(BUILD)/$(BOARD)-half
FW_LDDEFS := -DARENA_IN_DDR
FW_ARENA := 3407872
FW_CONVERT := --resident bf16 --experts f16
FW_QEMU_IMG =
FW_RUN_ARGS ?= image=$(FW_DIR)/model.img
endif
include boards/common/firmware.mk
