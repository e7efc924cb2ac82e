#!/bin/sh
# Runs every host test program BUILD/tests/test_* under valgrind memcheck
# (make test-valgrind, mk/sanitize.mk). One check per program: passed when
# valgrind reports no error (exit status not 99) and the program itself
# passed. Script tests are not run (they drive the CLI or QEMU).
# VALGRIND_TIMEOUT (seconds per program, default 240) bounds a run: a
# program still running then is stopped; memcheck errors it reported before
# that still fail it, otherwise it is listed as "not finished" (not a
# failure: those long-running tests are covered by make test-sanitize).
BUILD=${1:-build}
export BUILD
vg=${VALGRIND:-valgrind}
name=valgrind
if ! command -v "$vg" >/dev/null 2>&1; then
    echo "$name: 0 passed, 0 failed (SKIP: valgrind not installed)"; exit 0
fi
tmo=${VALGRIND_TIMEOUT:-240}
# VALGRIND_BUDGET (default 900 s) bounds the whole run for CI's time
# budget: programs left when it is spent are listed as not run.
budget=${VALGRIND_BUDGET:-1500}
# The programs that run for minutes under memcheck go last, so that the
# budget covers every quick one first (they are also run in full under
# ASan+UBSan by make test-sanitize).
slow="test_golden test_expert_order test_cache test_faults test_fallback test_bpe_model test_far_lookahead test_lookahead test_kv"
progs=""
for t in "$BUILD"/tests/test_*; do
    case " $slow " in *" $(basename "$t") "*) ;; *) progs="$progs $t" ;; esac
done
# test_golden runs once per model ("test_golden:NAME"): all six take
# longer than one program's limit under memcheck, each alone far less.
for n in $slow; do
    if [ "$n" = test_kv ]; then
        progs="$progs $BUILD/tests/test_kv:--windows=6" # 50 windows take ~8x the limit
    elif [ "$n" = test_golden ] && [ -x "$BUILD/tests/test_golden" ]; then
        for g in $("$BUILD/tests/test_golden" --list); do progs="$progs $BUILD/tests/test_golden:$g"; done
    else
        progs="$progs $BUILD/tests/$n"
    fi
done
t0=$(date +%s); notrun=""
pass=0; fail=0; unfinished=""
errpat='^==[0-9]+== (Invalid|Conditional|Use of|Syscall|Mismatched|Source and|Argument|[0-9,]+ bytes in [0-9,]+ blocks are (definitely|indirectly))'
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for t in $progs; do
    arg=${t#*:}; [ "$arg" = "$t" ] && arg=""
    t=${t%%:*}
    [ -x "$t" ] || continue
    n=$(basename "$t")${arg:+:$arg}
    start=$(date +%s)
    left=$((budget - (start - t0)))
    if [ "$left" -le 10 ]; then notrun="$notrun $n"; continue; fi
    this=$tmo; [ "$left" -lt "$this" ] && this=$left
    timeout "$this" "$vg" --error-exitcode=99 --leak-check=full \
        --errors-for-leak-kinds=definite,indirect --track-origins=yes \
        "$t" $arg >"$log" 2>&1
    rc=$?
    secs=$(( $(date +%s) - start ))
    if [ $rc -eq 0 ]; then
        pass=$((pass + 1)); echo "ok   $n (${secs}s)"
    elif [ $rc -eq 124 ] && ! grep -qE "$errpat" "$log" && ! grep -q '^FAIL ' "$log"; then
        unfinished="$unfinished $n"; echo "---- $n: no error in the first ${secs}s, not finished"
    else
        fail=$((fail + 1))
        case $rc in
            99) why="memcheck errors" ;;
            124) why="timed out after ${secs}s" ;;
            *) why="exit status $rc" ;;
        esac
        echo "FAIL $n: $why (${secs}s)"
        grep -E "$errpat|^FAIL " "$log" | head -n 12
    fi
done
[ -n "$unfinished" ] && echo "not finished under valgrind in ${tmo}s (no error seen):$unfinished"
[ -n "$notrun" ] && echo "not run (VALGRIND_BUDGET ${budget}s spent):$notrun"
echo "$name: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
