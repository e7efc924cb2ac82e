# Weight encodings: the host kernel benchmark and the encoding study
# (bench/kernels/). Not part of `all`.
#   make bench-kernels   -> bench/results/kernels.csv
#   make enc-study       -> bench/results/encodings_study.csv

$(BUILD)/bench/kernels_bench: bench/kernels/bench.c $(BUILD)/libmoeflash.a
	@mkdir -p $(dir $@)
	$(CC) $(HOST_CFLAGS) -o $@ $< $(BUILD)/libmoeflash.a $(HOST_LDLIBS)

$(BUILD)/bench/encstudy: bench/kernels/encstudy.c runtime/quant.c runtime/quant.h bench/kernels/st_mini.h
	@mkdir -p $(dir $@)
	$(CC) $(HOST_CFLAGS) -o $@ $< $(HOST_LDLIBS)

bench-kernels: $(BUILD)/bench/kernels_bench
	$(BUILD)/bench/kernels_bench > bench/results/kernels.csv
	@cat bench/results/kernels.csv

enc-study: $(BUILD)/bench/encstudy
	$(BUILD)/bench/encstudy > bench/results/encodings_study.csv
	@cat bench/results/encodings_study.csv

.PHONY: bench-kernels enc-study
