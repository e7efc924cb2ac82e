#!/bin/sh
# The whole suite again under AddressSanitizer + UBSan (make test-sanitize,
# mk/sanitize.mk), as one script test: its counts are the nested suite's
# total. Slow (a second build and run), so it only runs in CI
# (MF_RELIABILITY=1, set by .ci/run, or CI=true); otherwise SKIP.
name=sanitize
if [ -n "$MF_NESTED" ]; then echo "$name: 0 passed, 0 failed (SKIP: nested)"; exit 0; fi
if [ "$MF_RELIABILITY" != 1 ] && [ "$CI" != true ]; then
    echo "$name: 0 passed, 0 failed (SKIP: set MF_RELIABILITY=1 or run make test-sanitize)"; exit 0
fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT
start=$(date +%s)
make -s -j2 test-sanitize >"$log" 2>&1
rc=$?
grep -E '^FAIL|ERROR: (Address|Leak)Sanitizer|runtime error:|^SUMMARY: ' "$log" | head -n 40
line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1)
if [ -z "$line" ]; then
    tail -n 20 "$log"
    echo "FAIL $name: the sanitizer build or run did not finish (status $rc)"
    echo "$name: 0 passed, 1 failed"; exit 1
fi
echo "($name took $(( $(date +%s) - start )) s)"
echo "$name: $line"
[ $rc -eq 0 ]
