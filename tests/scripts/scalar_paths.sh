#!/bin/sh
# The scalar code of runtime/ops.c and runtime/quant.c on the host. On cores
# without NEON or Helium (Cortex-M3/M4/M7/M33) GCC's vector extension is not
# used (ops.c MF_SCALAR_FPU) and the dot products, attention and softmax run
# their scalar code: the same operations in the same order, so the same
# bits. The firmware tests check that end to end in QEMU; this builds the
# host CLI and test_ops with -DMF_NO_VECTOR_EXT (the same code) into
# $BUILD/scalar and checks
#  - test_ops passes there;
#  - `moeflash trace` writes the same logits (%.9g: every float exactly) as
#    the default build, on the f32 image (matmul, attention over an f32 KV
#    cache), a q4/q8 image with a q8, f16 or bf16 KV cache (the widening
#    attention) and with --batch 4 (four tokens per matmul row pass).
name=scalar_paths
BUILD=${BUILD:-build}
if [ -n "$MF_NESTED" ]; then # the sanitizer/valgrind suites build their own
    echo "$name: 0 passed, 0 failed (SKIP: nested)"; exit 0
fi
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { echo "FAIL $name: $*"; fail=$((fail + 1)); }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
SB=$BUILD/scalar
if ! make --no-print-directory -s -j2 BUILD="$SB" EXTRA_CFLAGS=-DMF_NO_VECTOR_EXT \
    "$SB/moeflash" "$SB/tests/test_ops" >"$tmp/build.log" 2>&1; then
    bad "build with -DMF_NO_VECTOR_EXT"; tail -n 20 "$tmp/build.log"
    echo "$name: $pass passed, $fail failed"; exit 1
fi
[ -x "$BUILD/moeflash" ] || make --no-print-directory -s -j2 BUILD="$BUILD" "$BUILD/moeflash" >/dev/null 2>&1

line=$("$SB/tests/test_ops" 2>&1 | tail -n 1)
case $line in *" 0 failed"*) ok ;; *) bad "test_ops (scalar build): $line" ;; esac

M=models/tiny-shakespeare-moe
"$BUILD/moeflash" convert "$M" "$tmp/f32.img" >/dev/null 2>&1 || bad "convert f32"
"$BUILD/moeflash" convert "$M" "$tmp/q4.img" --experts q4 --resident q8 >/dev/null 2>&1 || bad "convert q4/q8"
# 300 bytes of Shakespeare: enough positions for the attention loops'
# blocks of 8 and their tails
printf 'ROMEO:\nBut soft, what light through yonder window breaks?\nIt is the east, and Juliet is the sun.\nArise, fair sun, and kill the envious moon,\nWho is already sick and pale with grief,\nThat thou her maid art far more fair than she.\nBe not her maid, since she is envious;\nHer vestal livery is but sick and green\n' >"$tmp/text.txt"
for run in "f32.img" "f32.img --batch 4" "q4.img --kv q8" "q4.img --kv f16" "q4.img --kv bf16 --batch 4"; do
    set -- $run
    img=$1; shift
    for b in default scalar; do
        bin=$BUILD/moeflash; [ $b = scalar ] && bin=$SB/moeflash
        "$bin" trace "$tmp/$img" --text "$tmp/text.txt" --out "$tmp/$b.json" "$@" >/dev/null 2>"$tmp/err" ||
            { bad "trace $run ($b): $(cat "$tmp/err")"; continue 2; }
    done
    if grep -q '"logits"' "$tmp/default.json" && cmp -s "$tmp/default.json" "$tmp/scalar.json"; then ok; else
        bad "trace $run: the scalar build's logits differ from the default build's"; fi
done
echo "$name: $pass passed, $fail failed"
[ $fail -eq 0 ]
