#!/bin/sh
# Runs every test program (build/tests/test_*) and every script test
# (tests/scripts/*.sh), each of which prints lines "NAME: N passed, N failed".
# A program that exits non-zero without such a line counts as one failure.
# The last line is the total: "N passed, N failed".
BUILD=${1:-build}
export BUILD
total_pass=0
total_fail=0
log=$(mktemp)
run_one() {
    name=$1; shift
    start=$(date +%s)
    "$@" >"$log" 2>&1
    rc=$?
    cat "$log"
    line=$(grep -E '[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
    if [ -n "$line" ]; then
        p=$(echo "$line" | sed -E 's/.* ?([0-9]+) passed, ([0-9]+) failed.*/\1/')
        f=$(echo "$line" | sed -E 's/.* ?([0-9]+) passed, ([0-9]+) failed.*/\2/')
    else
        p=0; f=0
    fi
    if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then
        echo "FAIL $name exited with status $rc"
        f=1
    fi
    total_pass=$((total_pass + p))
    total_fail=$((total_fail + f))
    echo "-- $name ($(( $(date +%s) - start ))s)"
}
for t in "$BUILD"/tests/test_*; do
    [ -x "$t" ] || continue
    run_one "$(basename "$t")" "$t"
done
for s in tests/scripts/*.sh; do
    [ -f "$s" ] || continue
    run_one "$(basename "$s")" sh "$s"
done
rm -f "$log"
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
