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
