#!/bin/sh
# A short bounded libFuzzer pass over every fuzz/fuzz_*.c target (issue 6):
# FUZZ_SMOKE_SECONDS (default 8) per target, so the whole script stays
# well under 90 s. One check per target: passed when it ran without a crash.
# Before that, one check that fuzz/gen_seeds.c builds and writes exactly the
# committed seeds (nothing else compiles it; a change to tests/data it
# copies from needs `make fuzz-seeds`).
# The fuzzing is skipped (SKIP line) when clang with libFuzzer is not
# installed; everything is skipped inside the sanitizer/valgrind suites
# (MF_NESTED). `make fuzz FUZZ_SECONDS=N` is the long version.
name=fuzz_smoke
secs=${FUZZ_SMOKE_SECONDS:-8}
if [ -n "$MF_NESTED" ]; then
    echo "$name: 0 passed, 0 failed (SKIP: nested inside $MF_NESTED)"; exit 0
fi
cc=${FUZZ_CC:-clang}
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
pass=0; fail=0
if make -s build-fuzz/gen_seeds >"$probe/seeds.log" 2>&1 && build-fuzz/gen_seeds "$probe/seeds" >>"$probe/seeds.log" 2>&1; then
    stale=""
    for d in "$probe"/seeds/*; do
        t=$(basename "$d")
        diff -r "$d" "fuzz/corpus/$t" >/dev/null 2>&1 || stale="$stale $t"
    done
    if [ -z "$stale" ]; then
        pass=$((pass + 1))
    else
        echo "FAIL gen_seeds output differs from fuzz/corpus for:$stale (run make fuzz-seeds)"; fail=$((fail + 1))
    fi
else
    tail -n 20 "$probe/seeds.log"
    echo "FAIL fuzz/gen_seeds.c does not build or run"; fail=$((fail + 1))
fi
printf '#include <stdint.h>\n#include <stddef.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }\n' >"$probe/p.c"
if ! command -v "$cc" >/dev/null 2>&1 ||
   ! "$cc" -fsanitize=fuzzer,address,undefined "$probe/p.c" -o "$probe/p" >/dev/null 2>&1; then
    echo "$name: $pass passed, $fail failed (SKIP fuzzing: $cc with libFuzzer not available)"
    [ "$fail" -eq 0 ]; exit
fi
if ! make -s fuzz-build FUZZ_CC="$cc" >"$probe/build.log" 2>&1; then
    tail -n 20 "$probe/build.log"
    echo "FAIL fuzz targets do not build"
    echo "$name: $pass passed, $((fail + 1)) failed"; exit 1
fi
targets=$(ls fuzz/fuzz_*.c | sed 's|fuzz/||; s|\.c$||')
sh fuzz/run_fuzz.sh build-fuzz "$secs" $targets >"$probe/run.log" 2>&1
cat "$probe/run.log"
for t in $targets; do
    line=$(grep -E "^$t: [0-9]+ executions" "$probe/run.log")
    if [ -n "$line" ] && echo "$line" | grep -q ', 0 crashes'; then
        pass=$((pass + 1))
    else
        echo "FAIL $t: ${line:-did not run}"; fail=$((fail + 1))
    fi
done
echo "$name: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
