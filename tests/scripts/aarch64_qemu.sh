#!/bin/sh
# AArch64 (the Cortex-A targets of the sbc-sdcard and phone-ufs profiles)
# under qemu-user: cross-builds the host library, CLI and test programs into
# $BUILD/aarch64 (make aarch64-build, mk/aarch64.mk) and runs on them
#  - test_quant (without the real-weights part, minutes under qemu): the NEON
#    kernels against the portable ones bit for bit, on random and extreme
#    bytes; again with the SDOT kernels (-march=armv8.2-a+dotprod);
#  - test_golden on the tiny model (logits, routing and greedy text against
#    golden.json), converting with the aarch64 CLI;
#  - the unit test programs that finish in seconds under qemu, test_image
#    with mf_crc32 on the CRC32 instructions (the others,
#    the long cache / fault / kernel runs, are left to the native suite);
#  - the CLI: a q8 image converted on aarch64 has the native image's bytes,
#    and greedy generation on q8 and q4 images gives the native text.
# The programs' counts are added to this script's. Needs aarch64-linux-gnu-gcc
# (gcc-aarch64-linux-gnu, libc6-dev-arm64-cross) and qemu-aarch64
# (qemu-user); without them it prints SKIP and counts nothing.
name=aarch64_qemu
BUILD=${BUILD:-build}
CC64=${AARCH64_CC:-aarch64-linux-gnu-gcc}
SYSROOT=${AARCH64_SYSROOT:-/usr/aarch64-linux-gnu}
if ! command -v "$CC64" >/dev/null 2>&1 || ! command -v qemu-aarch64 >/dev/null 2>&1 ||
    [ ! -f "$SYSROOT/lib/crt1.o" ]; then
    echo "SKIP $name: needs $CC64, qemu-aarch64 and $SYSROOT" \
         "(apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user)"
    echo "$name: 0 passed, 0 failed"
    exit 0
fi
if [ -n "$MF_NESTED" ]; then # the sanitizer/valgrind suites: not this build's code
    echo "$name: 0 passed, 0 failed (SKIP: nested)"; exit 0
fi
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { echo "FAIL $name: $*"; fail=$((fail + 1)); }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
start=$(date +%s)
A64=$BUILD/aarch64
QEMU="qemu-aarch64 -L $SYSROOT"
M=models/tiny-shakespeare-moe

# add a program's "NAME: N passed, N failed" to ours; no line or a bad exit
# status is a failure
count() { # label status log
    line=$(grep -E '[0-9]+ passed, [0-9]+ failed' "$3" | tail -n 1)
    p=$(echo "$line" | sed -nE 's/.*[^0-9]([0-9]+) passed, ([0-9]+) failed.*/\1/p')
    f=$(echo "$line" | sed -nE 's/.*[^0-9]([0-9]+) passed, ([0-9]+) failed.*/\2/p')
    grep '^FAIL' "$3" | head -n 5
    echo "  [aarch64] ${line:-$1: no result line} (exit $2)"
    if [ -z "$p" ]; then bad "$1 printed no result (exit $2)"; tail -n 5 "$3"; return; fi
    pass=$((pass + p))
    fail=$((fail + f))
    [ "$2" -eq 0 ] || [ "$f" -gt 0 ] || bad "$1 exited with status $2"
}

# 1. cross-build (MAKEFLAGS cleared: make test's flags are the native build's)
[ -x "$BUILD/moeflash" ] || make --no-print-directory -s -j2 BUILD="$BUILD" "$BUILD/moeflash" >/dev/null 2>&1
if env MAKEFLAGS= MFLAGS= make --no-print-directory -s -j2 aarch64-build AARCH64_BUILD="$A64" \
    AARCH64_CC="$CC64" >"$tmp/build.log" 2>&1; then ok; else
    bad "make aarch64-build"; tail -n 20 "$tmp/build.log"
    echo "$name: $pass passed, $fail failed"; exit 1
fi
# test_golden runs "$BUILD/moeflash convert": the aarch64 CLI, through qemu
mkdir -p "$tmp/bin"
printf '#!/bin/sh\nexec %s "%s" "$@"\n' "$QEMU" "$(cd "$A64" && pwd)/moeflash" >"$tmp/bin/moeflash"
chmod +x "$tmp/bin/moeflash"

# 2. test_golden (the longest, ~70 s) in the background while the rest runs
BUILD="$tmp/bin" timeout 600 $QEMU "$A64/tests/test_golden" tiny-shakespeare-moe \
    >"$tmp/golden.log" 2>&1 &
golden=$!

# 3. test_quant: the NEON kernels must have been compared (not skipped)
timeout 300 $QEMU "$A64/tests/test_quant" --no-real-weights >"$tmp/q.log" 2>&1
count test_quant $? "$tmp/q.log"
grep -E '^SIMD kernels checked' "$tmp/q.log" | sed 's/^/  [aarch64] /'
grep -q 'q8 neon (.*q4 neon (' "$tmp/q.log" && ok || bad "test_quant did not check the NEON kernels"

# 3b. the SDOT kernels: quant.c, kernels_neon.c and the test built for
# ARMv8.2 + dotprod (the library's other objects are target-neutral);
# qemu's default CPU has SDOT
if $CC64 -std=c11 -Wall -Wextra -Werror -O2 -D_POSIX_C_SOURCE=200809L -march=armv8.2-a+dotprod \
    -o "$tmp/test_quant_sdot" tests/test_quant.c runtime/quant.c runtime/kernels_neon.c \
    "$A64/libmftools.a" "$A64/libmoeflash.a" -lm -lpthread >"$tmp/sdot.log" 2>&1; then
    ok
    timeout 300 $QEMU "$tmp/test_quant_sdot" --no-real-weights >"$tmp/qs.log" 2>&1
    count "test_quant (sdot)" $? "$tmp/qs.log"
    grep -E '^SIMD kernels checked' "$tmp/qs.log" | sed 's/^/  [aarch64] /'
    grep -q 'q8 neon-sdot (.*q4 neon-sdot (' "$tmp/qs.log" && ok ||
        bad "test_quant (sdot) did not check the SDOT kernels"
else
    bad "building test_quant with -march=armv8.2-a+dotprod"; tail -n 10 "$tmp/sdot.log"
fi

# 4. the unit tests that take seconds under qemu
for t in test_allocate test_api test_belady test_fuzz_regressions test_fw_memmap test_hfconfig \
    test_image test_json test_misuse test_port test_safetensors test_sampler test_sim \
    test_svgplot test_tokenizer; do
    [ -x "$A64/tests/$t" ] || { bad "no $A64/tests/$t"; continue; }
    BUILD="$tmp/bin" timeout 120 $QEMU "$A64/tests/$t" >"$tmp/t.log" 2>&1
    count "$t" $? "$tmp/t.log"
    # the build is -march=armv8-a+crc (mk/aarch64.mk): CRC32X, not the tables
    if [ $t = test_image ]; then
        grep -q '^mf_crc32: crc32x' "$tmp/t.log" && ok || bad "test_image did not check the CRC32X path"
    fi
done

# 5. the CLI: image bytes and generated text equal to the native build's
# (q8: the NEON kernels in every matvec; q4's converter search is native:
# ~25 s under qemu)
"$BUILD/moeflash" convert $M "$tmp/n_q8.img" --weights q8 >/dev/null 2>&1
timeout 120 $QEMU "$A64/moeflash" convert $M "$tmp/a_q8.img" --weights q8 >/dev/null 2>"$tmp/c.err"
rc=$?
if [ $rc -eq 0 ] && [ -s "$tmp/a_q8.img" ] && cmp -s "$tmp/n_q8.img" "$tmp/a_q8.img"; then ok; else
    bad "q8 image converted on aarch64 differs from the native one (exit $rc)"; tail -n 3 "$tmp/c.err"; fi
"$BUILD/moeflash" convert $M "$tmp/n_q4.img" --weights q4 >/dev/null 2>&1
for e in q8 q4; do
    "$BUILD/moeflash" generate "$tmp/n_$e.img" --prompt "ROMEO:" --tokens 64 >"$tmp/n_$e.txt" 2>/dev/null
    timeout 120 $QEMU "$A64/moeflash" generate "$tmp/n_$e.img" --prompt "ROMEO:" --tokens 64 \
        >"$tmp/a_$e.txt" 2>"$tmp/g.err"
    rc=$?
    echo "  [aarch64] generate $e: $(head -c 60 "$tmp/a_$e.txt" | tr '\n' ' ')"
    if [ $rc -eq 0 ] && [ "$(wc -c <"$tmp/a_$e.txt")" -ge 64 ] && cmp -s "$tmp/n_$e.txt" "$tmp/a_$e.txt"; then
        ok
    else
        bad "$e greedy text on aarch64 differs from native (exit $rc)"; tail -n 3 "$tmp/g.err"
    fi
done

wait $golden
count "test_golden tiny-shakespeare-moe" $? "$tmp/golden.log"
grep -E 'greedy|bits/byte' "$tmp/golden.log" | sed 's/^/  [aarch64] /'

echo "($name took $(( $(date +%s) - start )) s)"
echo "$name: $pass passed, $fail failed"
[ $fail -eq 0 ]
