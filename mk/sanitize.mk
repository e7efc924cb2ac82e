# Sanitizers (issue 6).
#
#   make test-sanitize   the whole host suite (tests/run.sh) on a build in
#                        build-asan/ with AddressSanitizer + UBSan, every
#                        finding fatal (-fno-sanitize-recover=all)
#   make test-valgrind   the host test programs of build/ under valgrind
#                        memcheck (--error-exitcode=1 --leak-check=full);
#                        script tests (CLI, QEMU firmware) are not run
#
# The sanitized build keeps the default -O2: at -O1 the compute-bound
# tests (perplexity over the validation split, 10,000-token fault runs) take
# several times longer, and ASan/UBSan find the same errors.
#
# Both build through the top Makefile's BUILD and EXTRA_CFLAGS variables
# (EXTRA_CFLAGS reaches the compile and the link lines), so no rule is
# duplicated here. MF_NESTED tells the reliability scripts
# (fuzz_smoke, sanitize, valgrind, cppcheck) not to recurse.

SAN_BUILD ?= build-asan
SAN_CC ?= $(CC)
SAN_FLAGS = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
# Leak checking stays on: host tools free what they allocate.
SAN_ENV = ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:detect_stack_use_after_return=1:strict_string_checks=1 \
          UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

sanitize-build:
	$(MAKE) BUILD=$(SAN_BUILD) CC=$(SAN_CC) EXTRA_CFLAGS="$(SAN_FLAGS)" all

# The suite leaves out the QEMU firmware script
# (not host code; its board builds would relink host tools from the
# sanitized objects without the sanitizer runtime). MAKEFLAGS is cleared so
# that scripts which call make don't inherit the sanitizer flags.
test-sanitize: sanitize-build
	@env MAKEFLAGS= MFLAGS= MF_NESTED=sanitize $(SAN_ENV) MF_SKIP_SCRIPTS=firmware_qemu.sh sh tests/run.sh $(SAN_BUILD)

test-valgrind: all
	@MF_NESTED=valgrind sh mk/valgrind_run.sh $(BUILD)

.PHONY: sanitize-build test-sanitize test-valgrind
