# Rules shared by the firmware boards; included from boards/NAME/board.mk
# after it sets:
#   FW_CPU        compiler flags for the core (-mcpu=... -mfloat-abi=...)
#   FW_LDSCRIPT   boards/NAME/link.ld.S (preprocessed with FW_LDDEFS)
#   FW_BOARD_SRC  the board's own C files (board layer, ports)
#   FW_ARENA      arena bytes (-> MF_ARENA_BYTES)
#   FW_STACK      stack bytes
#   FW_CONVERT    extra flags for `moeflash convert` (image encodings)
#   FW_QEMU       the qemu-system-arm command line before -kernel
# Targets: all (elf + image), size, qemu-run, fw-tests.

FW_CC ?= arm-none-eabi-gcc
FW_SIZE ?= arm-none-eabi-size
FW_NM ?= arm-none-eabi-nm
FW_OBJDUMP ?= arm-none-eabi-objdump
FW_DIR ?= $(BUILD)/$(BOARD)
FW_OPT ?= -O2
FW_SPECS ?= --specs=nano.specs
FW_STACK ?= 16384
FW_MODEL ?= models/tiny-shakespeare-moe
PROMPT ?= ROMEO:
TOKENS ?= 64
QEMU ?= qemu-system-arm
QEMU_TIMEOUT ?= 300

FW_DEFS := -DMF_ARENA_BYTES=$(FW_ARENA)u $(FW_EXTRA_DEFS)
FW_CFLAGS := $(CFLAGS_WARN) $(FW_OPT) -g $(FW_CPU) -ffunction-sections -fdata-sections \
    -fno-common -Iboards/$(BOARD) -Iboards/common $(FW_DEFS)
FW_LDFLAGS := $(FW_CPU) -nostartfiles $(FW_SPECS) -Wl,--gc-sections \
    -Wl,-Map=$(FW_DIR)/moeflash.map -Wl,--print-memory-usage

FW_CORE_SRC := $(CORE_SRC)
FW_COMMON_SRC := boards/common/startup.c boards/common/console.c boards/common/cmdline.c boards/common/main.c
FW_SRC := $(FW_CORE_SRC) $(FW_COMMON_SRC) $(FW_BOARD_SRC)
FW_OBJ := $(FW_SRC:%.c=$(FW_DIR)/obj/%.o)

all: $(FW_DIR)/moeflash.elf $(FW_DIR)/model.img

# Stamps that change when the flags do, so a different FW_ARENA, FW_LDDEFS
# or FW_CONVERT on the command line rebuilds what depends on it.
fw_stamp = @mkdir -p $(dir $(1)); echo '$(2)' | cmp -s - $(1) 2>/dev/null || echo '$(2)' > $(1)
$(FW_DIR)/cflags.stamp: FORCE
	$(call fw_stamp,$@,$(FW_CC) $(FW_CFLAGS))
$(FW_DIR)/ldflags.stamp: FORCE
	$(call fw_stamp,$@,$(FW_STACK) $(FW_LDDEFS))
$(FW_DIR)/convert.stamp: FORCE
	$(call fw_stamp,$@,$(FW_MODEL) $(FW_CONVERT))
FORCE:

$(FW_DIR)/obj/%.o: %.c $(FW_DIR)/cflags.stamp
	@mkdir -p $(dir $@)
	$(FW_CC) $(FW_CFLAGS) -MMD -MP -c $< -o $@

$(FW_DIR)/link.ld: $(FW_LDSCRIPT) boards/common/sections.ld $(FW_DIR)/ldflags.stamp
	@mkdir -p $(dir $@)
	$(FW_CC) -E -P -x c -DSTACK_SIZE=$(FW_STACK) $(FW_LDDEFS) $(FW_LDSCRIPT) -o $@

$(FW_DIR)/moeflash.elf: $(FW_OBJ) $(FW_DIR)/link.ld
	$(FW_CC) $(FW_LDFLAGS) -T $(FW_DIR)/link.ld -o $@ $(FW_OBJ) -lm

# The image: converted by the host CLI (built with the host compiler).
$(FW_DIR)/model.img: $(BUILD)/moeflash $(wildcard $(FW_MODEL)/*) $(FW_DIR)/convert.stamp
	@mkdir -p $(dir $@)
	$(BUILD)/moeflash convert $(FW_MODEL) $@ $(FW_CONVERT)

# RAM = every writable section (.data .bss .stack .arena); flash = what must
# be stored (.text .ARM.* .init/.fini arrays + the .data load image).
size: $(FW_DIR)/moeflash.elf
	@$(FW_SIZE) -A -x $< | grep -vE '^\.debug|^\.ARM\.attributes|^\.comment'
	@$(FW_SIZE) -A $< | awk ' \
	  /^\.(data|bss|stack|arena)[ \t]/ { ram += $$2; printf "  RAM   %-12s %8d\n", $$1, $$2 } \
	  /^\.(text|ARM\.extab|ARM\.exidx|init_array|fini_array|data)[ \t]/ { fl += $$2; printf "  flash %-12s %8d\n", $$1, $$2 } \
	  END { printf "RAM total %d bytes (%.1f KiB), code+rodata flash %d bytes (%.1f KiB)\n", ram, ram/1024, fl, fl/1024 }'
	@echo "arena (MF_ARENA_BYTES) $(FW_ARENA) bytes; model image $$(stat -c %s $(FW_DIR)/model.img 2>/dev/null || echo '?') bytes in external flash"
	@$(FW_NM) -S -t d $< | awk '$$4 == "prompt_ids" { b += $$2 + 257 } \
	  END { printf "tokenizer RAM (BPE images): tables read in place from flash (mf_port_map); encode scratch %d B in the arena (MF_TOKENIZER_SCRATCH(256) rounded to 64) + the mf_tokenizer state (220 B, in the arena) + prompt text (257 B of fw_args) and ids %d B in .bss = %.1f KiB\n", 2624, b, (2624 + 220 + b) / 1024 }'

qemu-run: $(FW_DIR)/moeflash.elf $(FW_DIR)/model.img
	timeout $(QEMU_TIMEOUT) $(QEMU) $(FW_QEMU) -kernel $(FW_DIR)/moeflash.elf \
	  $(FW_QEMU_IMG) -append 'tokens=$(TOKENS) $(FW_RUN_ARGS) prompt=$(PROMPT)'

.PHONY: all size qemu-run FORCE
-include $(shell find $(FW_DIR)/obj -name '*.d' 2>/dev/null)

# Firmware unit tests (tests/firmware/*.c), each linked with the board's
# startup/console/ports and runtime/quant.c and runtime/image.c (mf_crc32)
# compiled WITHOUT the Arm dispatch (so the portable kernels are there to
# compare with) plus kernels_arm.c,
# and runtime/ops.c (the f32 matmul and attention the bench mode counts).
FW_TEST_SRC := $(wildcard tests/firmware/test_*.c)
FW_TEST_ELF := $(FW_TEST_SRC:tests/firmware/%.c=$(FW_DIR)/tests/%.elf)
FW_TEST_LIB_SRC := boards/common/startup.c boards/common/console.c $(FW_BOARD_SRC) \
    runtime/kernels_arm.c runtime/ops.c
FW_TEST_LIB_OBJ := $(FW_TEST_LIB_SRC:%.c=$(FW_DIR)/obj/%.o) $(FW_DIR)/tests/obj/quant_portable.o \
    $(FW_DIR)/tests/obj/image_portable.o

$(FW_DIR)/tests/obj/%_portable.o: runtime/%.c $(FW_DIR)/cflags.stamp
	@mkdir -p $(dir $@)
	$(FW_CC) $(filter-out -DMF_HAVE_ARM_KERNELS,$(FW_CFLAGS)) -MMD -MP -c $< -o $@

$(FW_DIR)/tests/obj/%.o: tests/firmware/%.c $(FW_DIR)/cflags.stamp
	@mkdir -p $(dir $@)
	$(FW_CC) $(FW_CFLAGS) -MMD -MP -c $< -o $@

$(FW_DIR)/tests/%.elf: $(FW_DIR)/tests/obj/%.o $(FW_TEST_LIB_OBJ) $(FW_DIR)/link.ld
	$(FW_CC) $(FW_CPU) -nostartfiles --specs=nano.specs -Wl,--gc-sections -T $(FW_DIR)/link.ld \
	  -o $@ $< $(FW_TEST_LIB_OBJ) -lm

fw-tests: $(FW_TEST_ELF)

# Runs each firmware test in QEMU (exit status = the test's).
fw-test-run: $(FW_TEST_ELF)
	@for t in $(FW_TEST_ELF); do \
	  timeout $(QEMU_TIMEOUT) $(QEMU) $(FW_QEMU) -kernel $$t || exit 1; done

.PHONY: fw-tests fw-test-run

# make BOARD=mps3-an547 fw-bench: exact instruction counts (see bench.sh),
# written under bench/results/BOARD/. The per-token runs use a build with the
# arena in DDR so that every expert can be resident (slots up to 64).
# `make BOARD=... bench` is the same (mk/bench.mk's sweep is host-only).
FW_BENCH_DIR ?= bench/results/$(BOARD)
fw-bench: $(FW_DIR)/tests/test_kernels.elf $(FW_DIR)/model.img
	$(MAKE) --no-print-directory BOARD=$(BOARD) FW_DIR=$(BUILD)/$(BOARD)-bench \
	  FW_ARENA=8388608 FW_LDDEFS=-DARENA_IN_DDR $(BUILD)/$(BOARD)-bench/moeflash.elf
	sh boards/common/bench.sh $(FW_MACHINE) $(FW_BENCH_DIR) $(FW_DIR)/tests/test_kernels.elf \
	  $(BUILD)/$(BOARD)-bench/moeflash.elf $(FW_DIR)/model.img

bench: fw-bench

.PHONY: bench fw-bench
