# The quantisation report (issue 4): per-expert sensitivity, adaptive
# bit-width allocation vs uniform, validation bits/byte of each image.
#   make quant-report  -> bench/results/quant.csv, quant.svg, quant_sensitivity.csv
# Slow (direct sensitivity: 256 calibration runs; ~20 images x the whole
# validation split). QUANT_JOBS processes in parallel.
QUANT_JOBS ?= 2
QUANT_ARGS ?=

$(BUILD)/bench/quant_report: bench/quant/report.c $(BUILD)/libmftools.a $(BUILD)/libmoeflash.a
	@mkdir -p $(dir $@)
	$(CC) $(HOST_CFLAGS) -o $@ $< $(BUILD)/libmftools.a $(BUILD)/libmoeflash.a $(HOST_LDLIBS)

quant-report: $(BUILD)/bench/quant_report
	$(BUILD)/bench/quant_report models/tiny-shakespeare-moe tests/data/tinyshakespeare.txt \
	    bench/results --jobs $(QUANT_JOBS) $(QUANT_ARGS) | tee bench/results/quant_report.txt

.PHONY: quant-report

# Dual precision on the simulated mcu-qspi flash: q8 experts + q2 copies
# (resident q8), 8 validation windows fed token by token, 4 LRU slots,
# stall thresholds 0 (never), 1.2 ms (about one q8 read less), 2, 4 ms.
#   make quant-fallback -> bench/results/quant_fallback.csv
$(BUILD)/bench/quant_fallback: bench/quant/fallback.c $(BUILD)/libmftools.a $(BUILD)/libmoeflash.a
	@mkdir -p $(dir $@)
	$(CC) $(HOST_CFLAGS) -o $@ $< $(BUILD)/libmftools.a $(BUILD)/libmoeflash.a $(HOST_LDLIBS)

quant-fallback: $(BUILD)/bench/quant_fallback $(BUILD)/moeflash
	$(BUILD)/moeflash convert models/tiny-shakespeare-moe $(BUILD)/bench/tiny_q8_fb2.img --resident q8 \
	    --experts q8 --fallback q2 >/dev/null 2>&1
	$(BUILD)/bench/quant_fallback $(BUILD)/bench/tiny_q8_fb2.img tests/data/tinyshakespeare.txt \
	    mcu-qspi 4 8 0 1.2 2 4 | tee bench/results/quant_fallback.csv

.PHONY: quant-fallback
