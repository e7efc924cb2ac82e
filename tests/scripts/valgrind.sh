#!/bin/sh
# Host test programs under valgrind memcheck (make test-valgrind,
# mk/valgrind_run.sh): one check per program. Slow, so it only runs in CI
# (MF_RELIABILITY=1, set by .ci/run, or CI=true); otherwise SKIP.
name=valgrind
if [ -n "$MF_NESTED" ]; then echo "$name: 0 passed, 0 failed (SKIP: nested)"; exit 0; fi
if [ "$MF_RELIABILITY" != 1 ] && [ "$CI" != true ]; then
    echo "$name: 0 passed, 0 failed (SKIP: set MF_RELIABILITY=1 or run make test-valgrind)"; exit 0
fi
if ! command -v valgrind >/dev/null 2>&1; then
    echo "FAIL $name: valgrind not installed"; echo "$name: 0 passed, 1 failed"; exit 1
fi
MF_NESTED=valgrind sh mk/valgrind_run.sh "${BUILD:-build}"
