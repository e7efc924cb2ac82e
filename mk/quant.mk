# Weight encodings: the host kernel benchmark and the encoding study
# (bench/kernels/). Not part of `all`.
#   make bench-kernels   -> bench/results/kernels.csv
#   make enc-study       -> bench/results/encodings_study.csv
#   make e2e-ppl         -> bench/results/encodings_e2e.csv (slow: minutes)
#   make imatrix-study   -> bench/results/encodings_imatrix.csv

$(BUILD)/bench/kernels_bench: bench/kernels/bench.c $(BUILD)/libmoeflash.a
	@mkdir -p $(dir $@)
	$(CC) $(HOST_CFLAGS) -o $@ $< $(BUILD)/libmoeflash.a $(HOST_LDLIBS)

$(BUILD)/bench/encstudy: bench/kernels/encstudy.c runtime/quant.c runtime/quant.h runtime/kernels_x86.c bench/kernels/st_mini.h
	@mkdir -p $(dir $@)
	$(CC) $(HOST_CFLAGS) -o $@ $< runtime/kernels_x86.c $(HOST_LDLIBS)

bench-kernels: $(BUILD)/bench/kernels_bench
	$(BUILD)/bench/kernels_bench > bench/results/kernels.csv
	@cat bench/results/kernels.csv

enc-study: $(BUILD)/bench/encstudy
	$(BUILD)/bench/encstudy > bench/results/encodings_study.csv
	@cat bench/results/encodings_study.csv

.PHONY: bench-kernels enc-study

# End-to-end: validation bits/byte of the tiny model with its experts in each
# encoding (resident bf16), q8 vs f32 activations, first E2E_WINDOWS windows.
E2E_WINDOWS ?= 100
$(BUILD)/bench/e2e_ppl: bench/kernels/e2e_ppl.c $(BUILD)/libmoeflash.a
	@mkdir -p $(dir $@)
	$(CC) $(HOST_CFLAGS) -o $@ $< $(BUILD)/libmoeflash.a $(HOST_LDLIBS)

e2e-ppl: $(BUILD)/bench/e2e_ppl $(BUILD)/moeflash
	@echo "image,windows,bits_per_byte_q8_activations,bits_per_byte_f32_activations" > bench/results/encodings_e2e.csv
	for e in bf16 q8 q4 q3 q2; do \
	    $(BUILD)/moeflash convert models/tiny-shakespeare-moe $(BUILD)/bench/tiny_$$e.img --experts $$e --resident bf16 >/dev/null 2>&1 && \
	    $(BUILD)/bench/e2e_ppl $(BUILD)/bench/tiny_$$e.img tests/data/tinyshakespeare.txt $(E2E_WINDOWS) >> bench/results/encodings_e2e.csv || exit 1; \
	done
	@cat bench/results/encodings_e2e.csv

.PHONY: e2e-ppl

# Importance-weighted quantisation vs plain on expert outputs.
$(BUILD)/bench/imatrix_study: bench/kernels/imatrix_study.c $(LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(HOST_CFLAGS) -o $@ $< $(LIBS) $(HOST_LDLIBS)

imatrix-study: $(BUILD)/bench/imatrix_study
	$(BUILD)/bench/imatrix_study > bench/results/encodings_imatrix.csv
	@cat bench/results/encodings_imatrix.csv

.PHONY: imatrix-study
