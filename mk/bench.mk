# make bench: the expert-streaming sweep (bench/stream/sweep.sh) on the tiny
# model for every board profile -> bench/results/stream_<profile>.{csv,svg,md}.
#   make bench                          full sweep (all profiles)
#   make bench BENCH_PROFILES=mcu-qspi  one profile
#   make bench BENCH_JOBS=2 BENCH_WIDE_TOKENS=256 BENCH_HEAD_TOKENS=1024
#   make bench-q4                       the deployable q4/q8 image -> bench/results/q4/
#   make bench-bpe                      a second model -> bench/results/bpe/
#   make bench-plan                     moeflash plan on the rp2350's budget (also run by make bench)
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
BENCH_PROFILES ?= mcu-qspi mcu-octal mcu-m33-qspi sbc-sdcard phone-ufs
BENCH_JOBS ?= 2
BENCH_WIDE_TOKENS ?= 256
BENCH_HEAD_TOKENS ?= 1024
BENCH_RESULTS ?= bench/results

$(BUILD)/bench/stream_plot: bench/stream/plot.c $(BUILD)/libmftools.a
	@mkdir -p $(dir $@)
	$(CC) $(HOST_CFLAGS) -o $@ $< $(BUILD)/libmftools.a -lm

# Split point: int(len * 0.9), as the Python reference does (sets $$cut).
BENCH_SPLIT = n=$$(wc -c < $(BENCH_TEXT)); cut=$$((n * 9 / 10))

$(BENCH_DIR)/train.txt $(BENCH_DIR)/valid.txt: $(BENCH_TEXT)
	@mkdir -p $(BENCH_DIR)
	@$(BENCH_SPLIT); \
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

# make bench-bpe: the same sweep on a second model, small-qwen3-moe-bpe (a
# BPE vocabulary of 1024, top-4 of 32 experts, 6 layers; 57 MB of f32
# experts), shipped in tests/data/; BENCH_BPE_MODEL=DIR names another
# checkpoint folder. Profiled on the same training bytes; the runs read the
# first BENCH_BPE_VALID_BYTES of the validation split (1,024 tokens need
# about 3,000 bytes). Results in bench/results/bpe/.
BENCH_BPE_MODEL ?= tests/data/small-qwen3-moe-bpe
BENCH_BPE_VALID_BYTES ?= 4096
BENCH_BPE_SLOTS ?= 4 6 8 12 16 24 32 48 64 96 128 192
BENCH_BPE_IMG = $(BENCH_DIR)/bpe-profiled.img

$(BENCH_DIR)/valid-bpe.txt: $(BENCH_TEXT)
	@mkdir -p $(BENCH_DIR)
	@$(BENCH_SPLIT); \
	tail -c +$$((cut + 1)) $(BENCH_TEXT) | head -c $(BENCH_BPE_VALID_BYTES) > $@

$(BENCH_BPE_IMG): $(BENCH_DIR)/train.txt $(wildcard $(BENCH_BPE_MODEL)/*) | $(BUILD)/moeflash
	@[ -f $(BENCH_BPE_MODEL)/config.json ] || { \
	    echo "bench-bpe: no checkpoint in $(BENCH_BPE_MODEL); set BENCH_BPE_MODEL=DIR" >&2; exit 1; }
	$(BUILD)/moeflash convert $(BENCH_BPE_MODEL) $(BENCH_DIR)/bpe.img
	$(BUILD)/moeflash profile $(BENCH_DIR)/bpe.img --text $(BENCH_DIR)/train.txt --out $@

bench-bpe: $(BUILD)/moeflash $(BUILD)/bench/stream_plot $(BENCH_BPE_IMG) $(BENCH_DIR)/valid-bpe.txt
	@mkdir -p $(BENCH_RESULTS)/bpe
	PROFILES="$(BENCH_PROFILES)" JOBS=$(BENCH_JOBS) WIDE_TOKENS=$(BENCH_WIDE_TOKENS) \
	HEAD_TOKENS=$(BENCH_HEAD_TOKENS) SLOTS="$(BENCH_BPE_SLOTS)" MODEL_NAME=small-qwen3-moe-bpe \
	sh bench/stream/sweep.sh $(BUILD)/moeflash $(BUILD)/bench/stream_plot $(BENCH_BPE_IMG) \
	    $(BENCH_DIR)/valid-bpe.txt $(BENCH_RESULTS)/bpe

# make bench-q4: the same sweep on the deployable image of the tiny model
# (q4 experts, q8 resident weights: 64 experts of 55,296 bytes), profiled on
# the same training bytes. Results in bench/results/q4/.
BENCH_Q4_IMG = $(BENCH_DIR)/tiny-q4-profiled.img

$(BENCH_Q4_IMG): $(BENCH_DIR)/train.txt $(wildcard models/tiny-shakespeare-moe/*) | $(BUILD)/moeflash
	@mkdir -p $(BENCH_DIR)
	$(BUILD)/moeflash convert models/tiny-shakespeare-moe $(BENCH_DIR)/tiny-q4.img --experts q4 --resident q8
	$(BUILD)/moeflash profile $(BENCH_DIR)/tiny-q4.img --text $(BENCH_DIR)/train.txt --out $@

bench-q4: $(BUILD)/moeflash $(BUILD)/bench/stream_plot $(BENCH_Q4_IMG) $(BENCH_DIR)/valid.txt
	@mkdir -p $(BENCH_RESULTS)/q4
	PROFILES="$(BENCH_PROFILES)" JOBS=$(BENCH_JOBS) WIDE_TOKENS=$(BENCH_WIDE_TOKENS) \
	HEAD_TOKENS=$(BENCH_HEAD_TOKENS) MODEL_NAME="tiny model, q4/q8 image" \
	sh bench/stream/sweep.sh $(BUILD)/moeflash $(BUILD)/bench/stream_plot $(BENCH_Q4_IMG) \
	    $(BENCH_DIR)/valid.txt $(BENCH_RESULTS)/q4

# make bench-plan (part of make bench): `moeflash plan` on the rp2350's
# budget - its q4/q4 image (as boards/rp2350/board.mk converts it, not
# profiled), its arena (FW_ARENA), 256-token q8 KV cache, prefill batch 1 -
# on its profile mcu-m33-qspi -> bench/results/plan_rp2350.txt.
BENCH_PLAN_IMG = $(BENCH_DIR)/tiny-q4q4.img
BENCH_PLAN_RAM = $(shell sed -n 's/^FW_ARENA ?= *//p' boards/rp2350/board.mk)

$(BENCH_PLAN_IMG): $(wildcard models/tiny-shakespeare-moe/*) | $(BUILD)/moeflash
	@mkdir -p $(BENCH_DIR)
	$(BUILD)/moeflash convert models/tiny-shakespeare-moe $@ --resident q4 --experts q4

bench-plan: $(BUILD)/moeflash $(BENCH_PLAN_IMG) $(BENCH_DIR)/valid.txt
	@mkdir -p $(BENCH_RESULTS)
	$(BUILD)/moeflash plan $(BENCH_PLAN_IMG) --ram $(BENCH_PLAN_RAM) --context 256 --kv q8 --batch 1 \
	    --profile mcu-m33-qspi --text $(BENCH_DIR)/valid.txt --tokens $(BENCH_HEAD_TOKENS) \
	    > $(BENCH_RESULTS)/plan_rp2350.txt
	@cat $(BENCH_RESULTS)/plan_rp2350.txt

bench: bench-plan

.PHONY: bench bench-bpe bench-q4 bench-plan
endif

# Redraw the plots and tables from the committed CSVs (no runs): the tiny
# model's f32 image, small-qwen3-moe-bpe, the tiny model's q4/q8 image
# (folder|name in the titles, as sweep.sh writes them).
bench-plot: $(BUILD)/bench/stream_plot
	@for set in ".|tiny model" "bpe|small-qwen3-moe-bpe" "q4|tiny model, q4/q8 image"; do \
	    d=$(BENCH_RESULTS)/$${set%%|*}; name=$${set#*|}; \
	    for c in $$d/stream_*.csv; do \
	        [ -f $$c ] || continue; p=$$(basename $$c .csv); p=$${p#stream_}; \
	        $(BUILD)/bench/stream_plot $$c $$d/stream_$$p.svg \
	            "moeflash, $$name, $$p: tokens/s vs expert RAM" \
	            > $$d/stream_$$p.md && echo "bench-plot: $$d/$$p"; \
	    done; \
	done

.PHONY: bench-plot
