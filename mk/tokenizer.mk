# Tokenizer: the Unicode class tables are generated from the Unicode
# Character Database (Debian package unicode-data) and committed;
# `make unicode-tables` regenerates runtime/unicode_tables.{c,h}.
UNICODE_DATA ?= /usr/share/unicode/UnicodeData.txt

$(BUILD)/gen_unicode_tables: tools/unicode/gen_unicode_tables.c
	@mkdir -p $(dir $@)
	$(CC) $(HOST_CFLAGS) -o $@ $<

unicode-tables: $(BUILD)/gen_unicode_tables
	$(BUILD)/gen_unicode_tables $(UNICODE_DATA) runtime/unicode_tables.c runtime/unicode_tables.h

.PHONY: unicode-tables
