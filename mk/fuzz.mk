# Fuzzing (issue 6): libFuzzer harnesses in fuzz/fuzz_*.c, built with clang
# into build-fuzz/ (its own objects: libFuzzer needs coverage
# instrumentation in the code under test, so the gcc libraries in build/
# can't be reused).
#
#   make fuzz                 build every target and run each FUZZ_SECONDS (60)
#   make fuzz FUZZ_SECONDS=N  ... N seconds each; prints executions and crashes
#   make fuzz-build           build only
#   make fuzz-seeds           regenerate the committed seeds (gen_seeds: JSON,
#                             config, safetensors, index; gen_image_seed: images)
#
# Every fuzz/fuzz_*.c is a target (fuzz/fuzz_tokenizer.c included once it
# exists). Corpora: fuzz/corpus/<target>/ (committed seeds) plus
# build-fuzz/corpus/<target>/ (generated from tests/data and models/ at run
# time, and where libFuzzer writes what it finds). Crashes land in
# build-fuzz/crashes/<target>/; minimise one and copy it to
# fuzz/regressions/<target>/ so tests/test_fuzz_regressions.c replays it.

FUZZ_CC ?= clang
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_JOBS ?= 1
FUZZ_SAN = -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
# Others' sources are compiled without -Werror: clang may warn where gcc
# doesn't, and a warning must not stop the fuzzer from building.
FUZZ_CFLAGS = -std=c11 -Wall -Wextra -g -O1 -D_POSIX_C_SOURCE=200809L $(FUZZ_SAN)
FUZZ_LIB_SRC := $(CORE_SRC) $(HOST_PORT_SRC) $(TOOLLIB_SRC)
FUZZ_LIB_OBJ := $(FUZZ_LIB_SRC:%.c=$(FUZZ_BUILD)/obj/%.o)
FUZZ_SRC := $(sort $(wildcard fuzz/fuzz_*.c))
FUZZ_TARGETS := $(notdir $(FUZZ_SRC:.c=))
FUZZ_BIN := $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/%)

$(FUZZ_BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c $< -o $@

$(FUZZ_BUILD)/libfuzzdeps.a: $(FUZZ_LIB_OBJ)
	rm -f $@ && ar rcs $@ $^

$(FUZZ_BUILD)/fuzz_%: fuzz/fuzz_%.c fuzz/fuzz_common.h fuzz/fuzz_image_crc.h $(FUZZ_BUILD)/libfuzzdeps.a
	$(FUZZ_CC) $(FUZZ_CFLAGS) -Werror -fsanitize=fuzzer -o $@ $< $(FUZZ_BUILD)/libfuzzdeps.a $(HOST_LDLIBS)
# (the firmware's command-line parser is not in a library: the harness
# includes it)
$(FUZZ_BUILD)/fuzz_fw_cmdline: boards/common/cmdline.c boards/common/cmdline.h

# The seed generators are ordinary host programs.
$(FUZZ_BUILD)/gen_image_seed: fuzz/gen_image_seed.c $(BUILD)/libmoeflash.a
	@mkdir -p $(dir $@)
	$(CC) $(HOST_CFLAGS) -o $@ fuzz/gen_image_seed.c $(BUILD)/libmoeflash.a $(HOST_LDLIBS)

$(FUZZ_BUILD)/gen_seeds: fuzz/gen_seeds.c $(BUILD)/libmftools.a
	@mkdir -p $(dir $@)
	$(CC) $(HOST_CFLAGS) -o $@ fuzz/gen_seeds.c $(BUILD)/libmftools.a $(HOST_LDLIBS)

fuzz-build: $(FUZZ_BIN)

fuzz-seeds: $(FUZZ_BUILD)/gen_image_seed $(FUZZ_BUILD)/gen_seeds
	$(FUZZ_BUILD)/gen_seeds fuzz/corpus
	mkdir -p fuzz/corpus/fuzz_image fuzz/corpus/fuzz_model_init
	$(FUZZ_BUILD)/gen_image_seed fuzz/corpus/fuzz_image/gen-v16-h8-l2-e4-k2-p64 16 8 2 4 2 64
	$(FUZZ_BUILD)/gen_image_seed fuzz/corpus/fuzz_image/gen-v4-h4-l1-e2-k1-p16 4 4 1 2 1 16
	$(FUZZ_BUILD)/gen_image_seed fuzz/corpus/fuzz_model_init/gen-v256-h8-l2-e4-k2-p64 256 8 2 4 2 64

fuzz: fuzz-build
	@sh fuzz/run_fuzz.sh $(FUZZ_BUILD) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

.PHONY: fuzz fuzz-build fuzz-seeds
-include $(shell find $(FUZZ_BUILD)/obj -name '*.d' 2>/dev/null)
