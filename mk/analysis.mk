# Static analysis (issue 6).
#
#   make cppcheck    cppcheck over runtime/ experts/ port/ tools/ and the
#                    firmware command-line parser; any
#                    finding fails (exit 1). Only inline suppressions
#                    (// cppcheck-suppress <id>) are honoured, and each must
#                    carry its justification on the same or previous line.
CPPCHECK ?= cppcheck
CPPCHECK_DIRS = runtime experts port tools boards/common/cmdline.c
CPPCHECK_FLAGS = --enable=warning,portability,performance --error-exitcode=1 --inline-suppr \
                 --std=c11 --quiet -D_POSIX_C_SOURCE=200809L -j2

cppcheck:
	@command -v $(CPPCHECK) >/dev/null 2>&1 || { echo "cppcheck: not installed (apt-get install cppcheck)"; exit 1; }
	$(CPPCHECK) $(CPPCHECK_FLAGS) $(CPPCHECK_DIRS)
	@echo "cppcheck: clean ($(CPPCHECK_DIRS))"

.PHONY: cppcheck
