#!/bin/sh
# Runs every test program (build/tests/test_*) and every script test
# (tests/scripts/*.sh), each of which prints lines "NAME: N passed, N failed".
# A program that exits non-zero without such a line counts as one failure.
# MF_SKIP_SCRIPTS names scripts to leave out (the sanitizer suite leaves out
# the firmware script: firmware is not host code).
# A program or script that runs longer than MF_TEST_TIMEOUT seconds (default
# 2400, well above the slowest, the nested sanitizer suite) is stopped and
# counted as a failure, so that a hang is reported, not waited on.
# The last line is the total: "N passed, N failed".
BUILD=${1:-build}
export BUILD
skip=${MF_SKIP_SCRIPTS-}
limit=${MF_TEST_TIMEOUT:-2400}
timeout_cmd=$(command -v timeout)
total_pass=0
total_fail=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT
run_one() {
    name=$1; shift
    start=$(date +%s)
    if [ -n "$timeout_cmd" ]; then $timeout_cmd "$limit" "$@" >"$log" 2>&1; else "$@" >"$log" 2>&1; fi
    rc=$?
    if [ -n "$timeout_cmd" ] && [ $rc -eq 124 ]; then
        echo "FAIL $name: stopped after $limit s (MF_TEST_TIMEOUT)" >>"$log"
    fi
    cat "$log"
    line=$(grep -E '[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
    p=0; f=0
    if [ -n "$line" ]; then
        p=$(echo "$line" | sed -E 's/(^|.*[^0-9])([0-9]+) passed, ([0-9]+) failed.*/\2/')
        f=$(echo "$line" | sed -E 's/(^|.*[^0-9])([0-9]+) passed, ([0-9]+) failed.*/\3/')
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
    b=$(basename "$s")
    case " $skip " in
        *" $b "*) echo "-- $b skipped in this suite"; continue ;;
    esac
    run_one "$b" sh "$s"
done
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
