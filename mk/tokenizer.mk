# Tokenizer: the Unicode class tables are generated from the Unicode
# Character Database (Debian package unicode-data) and committed;
# `make unicode-tables` regenerates runtime/unicode_tables.{c,h}.
UNICODE_DIR ?= /usr/share/unicode

$(BUILD)/gen_unicode_tables: tools/unicode/gen_unicode_tables.c
	@mkdir -p $(dir $@)
	$(CC) $(HOST_CFLAGS) -o $@ $<

unicode-tables: $(BUILD)/gen_unicode_tables
	$(BUILD)/gen_unicode_tables $(UNICODE_DIR)/UnicodeData.txt $(UNICODE_DIR)/DerivedNormalizationProps.txt \
		runtime/unicode_tables.c runtime/unicode_tables.h

.PHONY: unicode-tables

# Encode/decode throughput on the host and the tokenizer's RAM.
$(BUILD)/tok_bench: tools/tokbench/tok_bench.c $(LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(HOST_CFLAGS) -o $@ $< $(LIBS) $(HOST_LDLIBS)

tokenizer-bench: $(BUILD)/tok_bench
	$(BUILD)/tok_bench tests/data/tok-bytelevel tests/data/tinyshakespeare.txt
	$(BUILD)/tok_bench tests/data/tok-sentencepiece tests/data/tinyshakespeare.txt

.PHONY: tokenizer-bench
