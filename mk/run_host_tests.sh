#!/bin/sh
# tests/run.sh for the sanitizer suite (make test-sanitize): the same loop
# over BUILD/tests/test_* and tests/scripts/*.sh with the same
# "NAME: N passed, N failed" accounting, minus the scripts named in
# MF_SKIP_SCRIPTS (default: firmware_qemu.sh -- firmware is not host code,
# and its board builds would link host tools from the sanitized objects
# without the sanitizer runtime). Last line: "N passed, N failed".
BUILD=${1:-build}
export BUILD
skip=${MF_SKIP_SCRIPTS-firmware_qemu.sh}
total_pass=0
total_fail=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT
run_one() {
    name=$1; shift
    start=$(date +%s)
    "$@" >"$log" 2>&1
    rc=$?
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
