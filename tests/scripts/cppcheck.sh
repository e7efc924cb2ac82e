#!/bin/sh
# Static analysis (make cppcheck, mk/analysis.mk) as one check. Runs in CI
# (MF_RELIABILITY=1, set by .ci/run, or CI=true); otherwise SKIP, so that a
# work-in-progress file elsewhere doesn't fail everyone's local make test.
name=cppcheck
if [ -n "$MF_NESTED" ]; then echo "$name: 0 passed, 0 failed (SKIP: nested)"; exit 0; fi
if [ "$MF_RELIABILITY" != 1 ] && [ "$CI" != true ]; then
    echo "$name: 0 passed, 0 failed (SKIP: set MF_RELIABILITY=1 or run make cppcheck)"; exit 0
fi
if ! command -v cppcheck >/dev/null 2>&1; then
    echo "FAIL $name: cppcheck not installed"; echo "$name: 0 passed, 1 failed"; exit 1
fi
if make -s cppcheck 2>&1; then
    echo "$name: 1 passed, 0 failed"
else
    echo "FAIL $name: findings above (fix them, or suppress inline with a justification)"
    echo "$name: 0 passed, 1 failed"; exit 1
fi
