# moeflash — top-level build.
#   make              build the host library, the CLI (build/moeflash), the API
#                     example (build/minimal) and the tests
#   make run          convert the shipped tiny model and generate 200 bytes from "ROMEO:"
#   make test         run every test; the last line is "N passed, N failed"
#   make BOARD=NAME   build a firmware board (see boards/NAME/board.mk)
#
# Sources are picked up by folder, so adding a file to runtime/, experts/,
# port/posix/, tools/lib/ or tests/test_*.c needs no edit here.

BOARD ?= host
BUILD ?= build
CC ?= cc
OPT ?= -O2
CFLAGS_WARN = -std=c11 -Wall -Wextra -Werror
CFLAGS ?= $(OPT) -g
HOST_CFLAGS = $(CFLAGS_WARN) $(CFLAGS) -D_POSIX_C_SOURCE=200809L $(EXTRA_CFLAGS)
HOST_LDLIBS = -lm -lpthread

# The core: what goes into firmware too. No heap, no OS.
CORE_SRC := $(sort $(wildcard runtime/*.c experts/*.c))
# Host ports: a file (posix) and the simulated flash (sim).
HOST_PORT_SRC := $(sort $(wildcard port/posix/*.c port/sim/*.c))
# Host-only tools: JSON, safetensors, converter (may allocate).
TOOLLIB_SRC := $(sort $(wildcard tools/lib/*.c))
CLI_SRC := $(sort $(wildcard tools/cli/*.c))
TEST_SRC := $(sort $(wildcard tests/test_*.c))

OBJ = $(BUILD)/obj
CORE_OBJ := $(CORE_SRC:%.c=$(OBJ)/%.o)
HOST_PORT_OBJ := $(HOST_PORT_SRC:%.c=$(OBJ)/%.o)
TOOLLIB_OBJ := $(TOOLLIB_SRC:%.c=$(OBJ)/%.o)
CLI_OBJ := $(CLI_SRC:%.c=$(OBJ)/%.o)
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
LIBS := $(BUILD)/libmftools.a $(BUILD)/libmoeflash.a

ifeq ($(BOARD),host)
all: $(BUILD)/moeflash $(BUILD)/minimal $(TEST_BIN)
else
include boards/$(BOARD)/board.mk
endif

-include $(wildcard mk/*.mk)

$(OBJ)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(HOST_CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/libmoeflash.a: $(CORE_OBJ) $(HOST_PORT_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/libmftools.a: $(TOOLLIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/moeflash: $(CLI_OBJ) $(LIBS)
	$(CC) $(HOST_CFLAGS) -o $@ $(CLI_OBJ) $(LIBS) $(HOST_LDLIBS)

# the C API in one page (boards/host/minimal.c)
$(BUILD)/minimal: $(OBJ)/boards/host/minimal.o $(LIBS)
	$(CC) $(HOST_CFLAGS) -o $@ $< $(LIBS) $(HOST_LDLIBS)

$(BUILD)/tests/%: $(OBJ)/tests/%.o $(LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(HOST_CFLAGS) -o $@ $< $(LIBS) $(HOST_LDLIBS)

TINY_IMG = $(BUILD)/tiny.img
$(TINY_IMG): $(BUILD)/moeflash $(wildcard models/tiny-shakespeare-moe/*)
	$(BUILD)/moeflash convert models/tiny-shakespeare-moe $@

run: $(TINY_IMG)
	$(BUILD)/moeflash generate $(TINY_IMG) --prompt "ROMEO:" --tokens 200 --temperature 0.8 --top-p 0.95 --seed 42
	@echo

test: all
	@sh tests/run.sh $(BUILD)

clean:
	rm -rf $(BUILD)

.PHONY: all run test clean
.SECONDARY:
-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
