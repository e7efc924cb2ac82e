# AArch64 (Raspberry Pi 4 / phone class, the sbc-sdcard and phone-ufs
# profiles): the host library, CLI and test programs cross-built with the
# top Makefile's rules into their own build folder, and the test programs
# run under qemu-user (tests/scripts/aarch64_qemu.sh, part of make test).
#
#   make aarch64-build                  build/aarch64/{moeflash,tests/*}
#   make aarch64-build AARCH64_FLAGS=-march=armv8.2-a+dotprod \
#        AARCH64_BUILD=build/aarch64-dotprod    the SDOT kernels
#   make test-aarch64                   the test programs under qemu-aarch64
#
# Needs gcc-aarch64-linux-gnu (+ libc6-dev-arm64-cross) and qemu-user.
AARCH64_CC ?= aarch64-linux-gnu-gcc
AARCH64_BUILD ?= build/aarch64
# +crc: mf_crc32 uses the CRC32 instructions, which every core of the
# profiles has (Cortex-A53/A72/X1; optional in ARMv8.0, mandatory from 8.1).
# AARCH64_FLAGS=-march=armv8-a builds for a core without them (the tables).
AARCH64_FLAGS ?= -march=armv8-a+crc

aarch64-build:
	$(MAKE) BUILD=$(AARCH64_BUILD) CC=$(AARCH64_CC) EXTRA_CFLAGS="$(AARCH64_FLAGS)" all

test-aarch64:
	@BUILD=$(BUILD) AARCH64_CC=$(AARCH64_CC) sh tests/scripts/aarch64_qemu.sh

# GCC 12 for AArch64 stops with an internal compiler error
# (vect_transform_reduction) vectorising a reduction in test_cache.c's main;
# the test has no need for vector code.
ifneq ($(filter aarch64%,$(shell $(CC) -dumpmachine 2>/dev/null)),)
$(OBJ)/tests/test_cache.o: HOST_CFLAGS += -fno-tree-loop-vectorize
endif

.PHONY: aarch64-build test-aarch64
