# make bench: the expert-streaming sweep (bench/stream/sweep.sh) on the tiny
# model for every board profile -> bench/results/stream_<profile>.{csv,svg,md}.
#   make bench                          full sweep (all profiles)
#   make bench BENCH_PROFILES=mcu-qspi  one profile
#   make bench BENCH_JOBS=2 BENCH_WIDE_TOKENS=256 BENCH_HEAD_TOKENS=1024
# The image is converted from models/tiny-shakespeare-moe and profiled
# (co-occurrence tables) on the first BENCH_TRAIN_BYTES of the training split
# (the first 90 % of tests/data/tinyshakespeare.txt); the runs read the first
# BENCH_VALID_BYTES of the validation split (the last 10 %).

# Host only: on a firmware board `make BOARD=NAME bench` is the board's
# instruction-count bench (boards/common/firmware.mk).
ifeq ($(BOARD),host)
BENCH_DIR = $(BUILD)/bench
BENCH_IMG = $(BENCH_DIR)/tiny-profiled.img
BENCH_TEXT = tests/data/tinyshakespeare.txt
BENCH_TRAIN_BYTES ?= 300000
BENCH_VALID_BYTES ?= 1024
BENCH_PROFILES ?= mcu-qspi mcu-octal sbc-sdcard phone-ufs
BENCH_JOBS ?= 2
BENCH_WIDE_TOKENS ?= 256
BENCH_HEAD_TOKENS ?= 1024
BENCH_RESULTS ?= bench/results

$(BUILD)/bench/stream_plot: bench/stream/plot.c $(BUILD)/libmftools.a
	@mkdir -p $(dir $@)
	$(CC) $(HOST_CFLAGS) -o $@ $< $(BUILD)/libmftools.a -lm

# Split points: int(len * 0.9), as the Python reference does.
$(BENCH_DIR)/train.txt $(BENCH_DIR)/valid.txt: $(BENCH_TEXT)
	@mkdir -p $(BENCH_DIR)
	@n=$$(wc -c < $(BENCH_TEXT)); cut=$$((n * 9 / 10)); \
	head -c $$cut $(BENCH_TEXT) | head -c $(BENCH_TRAIN_BYTES) > $(BENCH_DIR)/train.txt; \
	tail -c +$$((cut + 1)) $(BENCH_TEXT) | head -c $(BENCH_VALID_BYTES) > $(BENCH_DIR)/valid.txt; \
	echo "bench: train split bytes 0..$$cut (using $(BENCH_TRAIN_BYTES)), validation from $$cut (using $(BENCH_VALID_BYTES))" >&2

$(BENCH_IMG): $(BENCH_DIR)/train.txt $(wildcard models/tiny-shakespeare-moe/*) | $(BUILD)/moeflash
	@mkdir -p $(BENCH_DIR)
	$(BUILD)/moeflash convert models/tiny-shakespeare-moe $(BENCH_DIR)/tiny.img
	$(BUILD)/moeflash profile $(BENCH_DIR)/tiny.img --text $(BENCH_DIR)/train.txt --out $@

bench: $(BUILD)/moeflash $(BUILD)/bench/stream_plot $(BENCH_IMG) $(BENCH_DIR)/valid.txt
	@mkdir -p $(BENCH_RESULTS)
	PROFILES="$(BENCH_PROFILES)" JOBS=$(BENCH_JOBS) WIDE_TOKENS=$(BENCH_WIDE_TOKENS) \
	HEAD_TOKENS=$(BENCH_HEAD_TOKENS) \
	sh bench/stream/sweep.sh $(BUILD)/moeflash $(BUILD)/bench/stream_plot $(BENCH_IMG) \
	    $(BENCH_DIR)/valid.txt $(BENCH_RESULTS)

.PHONY: bench
endif

# Redraw the plots and tables from the committed CSVs (no runs).
bench-plot: $(BUILD)/bench/stream_plot
	@for c in $(BENCH_RESULTS)/stream_*.csv; do \
	    [ -f $$c ] || continue; p=$$(basename $$c .csv); p=$${p#stream_}; \
	    $(BUILD)/bench/stream_plot $$c $(BENCH_RESULTS)/stream_$$p.svg \
	        "moeflash, tiny model, $$p: tokens/s vs expert RAM" \
	        > $(BENCH_RESULTS)/stream_$$p.md && echo "bench-plot: $$p"; \
	done

.PHONY: bench-plot
