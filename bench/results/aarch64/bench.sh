#!/bin/sh
# Executed-instruction counts of the q8 / q4 quantised-activation matvecs (and of
# the activation quantisation that feeds them, and of the CRC-32 of expert blobs) on
# AArch64: portable C (runtime/quant.c) against the NEON kernels
# (runtime/kernels_neon.c), ARMv8.0 (SMULL/SADALP, the Pi 4's A72) and
# ARMv8.2 + dotprod (SDOT). Under qemu-user wall time means nothing, so
# QEMU -singlestep -d exec,nochain logs one line per executed instruction
# and awk counts the lines between calls to mf_bench_mark() (kbench.c; the
# mark's own instruction excluded, as boards/common/kcount.sh does).
# Deterministic: the same binary gives the same counts.
#   sh bench/results/aarch64/bench.sh > bench/results/aarch64/kernels.txt
# Needs aarch64-linux-gnu-gcc (+ libc6-dev-arm64-cross) and qemu-aarch64,
# and the cross-built library: make aarch64-build.
set -e
CC64=${AARCH64_CC:-aarch64-linux-gnu-gcc}
A64=${AARCH64_BUILD:-build/aarch64}
D=bench/results/aarch64
CF="-std=c11 -Wall -Wextra -Werror -O2 -D_POSIX_C_SOURCE=200809L -static"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
[ -f "$A64/libmoeflash.a" ] || make -s -j2 aarch64-build >/dev/null
# image.c for plain ARMv8.0 (the library may be built with +crc): the tables
$CC64 $CF -march=armv8-a -o "$tmp/kb_neon" $D/kbench.c runtime/image.c "$A64/libmoeflash.a" -lm
# SDOT: quant.c and kernels_neon.c rebuilt for ARMv8.2 + dotprod, linked
# ahead of the library (whose copies are then not pulled in)
# (image.c too: ARMv8.2 has the CRC32 instructions, which mf_crc32 then uses)
$CC64 $CF -march=armv8.2-a+dotprod -o "$tmp/kb_sdot" $D/kbench.c runtime/quant.c \
    runtime/kernels_neon.c runtime/image.c "$A64/libmoeflash.a" -lm

count() { # binary -> "interval instructions" lines, and the program's stdout in $1.out
    set -- "$1" $(aarch64-linux-gnu-nm -S "$1" | awk '$4 == "mf_bench_mark" { print $1, $2 }')
    lo=$2
    hi=$(printf '%016x' $((0x$2 + 0x$3)))
    mkfifo "$tmp/log"
    awk -v lo="$lo" -v hi="$hi" '
        BEGIN { lo = "x" lo; hi = "x" hi } # compare as strings: same-width hex
        /^Trace/ {
            split($4, a, "/"); pc = "x" a[2];
            if (pc == lo) { if (inside) print id, n; id++; n = 0; inside = 1; next } # interval i: marks i-1 to i
            if (pc > lo && pc < hi) next
            n++
        }' "$tmp/log" >"$1.counts" &
    qemu-aarch64 -singlestep -d exec,nochain -D "$tmp/log" "$1" >"$1.out"
    wait
    rm -f "$tmp/log"
}
count "$tmp/kb_neon"
count "$tmp/kb_sdot"

echo "# Executed instructions per mf_matvec_qa call on AArch64 (qemu-aarch64 7.2 -singlestep -d exec,nochain),"
echo "# from bench/results/aarch64/kbench.c built with $($CC64 --version | head -n 1), -O2;"
echo "# MAC = rows x cols multiply-accumulates. portable = runtime/quant.c (mf_quant_use_simd(0)),"
echo "# neon = runtime/kernels_neon.c for ARMv8.0 (SMULL/SADALP), sdot = the same built with"
echo "# -march=armv8.2-a+dotprod (SDOT). Every case's outputs have the bits of the portable ones."
echo "# Reproduce: make aarch64-build && sh bench/results/aarch64/bench.sh"
echo "# case enc rows x cols group MACs | portable: instr MAC/instr | neon: instr MAC/instr speed-up | sdot: instr MAC/instr speed-up"
grep '^case' "$tmp/kb_neon.out" >"$tmp/cases"
grep -q DIFFERENT "$tmp/kb_neon.out" "$tmp/kb_sdot.out" && { echo "bits differ" >&2; exit 1; }
awk '
    FILENAME == ARGV[1] { cnt_n[$1] = $2; next }
    FILENAME == ARGV[2] { cnt_s[$1] = $2; next }
    {
        split($4, rc, "x"); g = substr($5, 2); mac = rc[1] * rc[2]; c = $2
        p = cnt_n[4 * c + 1]; n = cnt_n[4 * c + 3]; s = cnt_s[4 * c + 3]
        printf "%2d %s %-9s g%-4s %7d | %8d %5.3f | %7d %5.3f %5.1fx | %7d %5.3f %5.1fx\n",
            c, $3, $4, g, mac, p, mac / p, n, mac / n, p / n, s, mac / s, p / s
    }' "$tmp/kb_neon.counts" "$tmp/kb_sdot.counts" "$tmp/cases"
echo "# mf_quantize_activations (int8 per group of 32, once per input vector): instructions per call"
echo "# case cols group | portable: instr per value | neon: instr per value speed-up"
grep '^qcase' "$tmp/kb_neon.out" >"$tmp/qcases"
awk '
    FILENAME == ARGV[1] { cnt_n[$1] = $2; next }
    {
        c = $2; cols = $4; p = cnt_n[4 * c + 1]; n = cnt_n[4 * c + 3]
        printf "%2d %5d %s | %7d %6.2f | %6d %5.2f %5.1fx\n", c, cols, $5, p, p / cols, n, n / cols, p / n
    }' "$tmp/kb_neon.counts" "$tmp/qcases"
echo "# mf_crc32 (runtime/image.c) over pseudo-random bytes: instructions per call; tables = the"
echo "# ARMv8.0 build (slicing by 4), crc32x = the ARMv8.2 build (CRC32X, 8 bytes each)"
echo "# case bytes | tables: instr per byte | crc32x: instr per byte fewer"
grep '^ccase' "$tmp/kb_neon.out" >"$tmp/ccases"
grep -q 'tables same-bits' "$tmp/ccases" && grep -q 'crc32x same-bits' "$tmp/kb_sdot.out" ||
    { echo "the CRC cases did not run as tables and crc32x" >&2; exit 1; }
awk '
    FILENAME == ARGV[1] { cnt_n[$1] = $2; next }
    FILENAME == ARGV[2] { cnt_s[$1] = $2; next }
    {
        c = $2; n = $4; t = cnt_n[4 * c + 1]; a = cnt_s[4 * c + 1]
        printf "%2d %5d | %6d %5.3f | %5d %5.3f %5.1fx\n", c, n, t, t / n, a, a / n, t / a
    }' "$tmp/kb_neon.counts" "$tmp/kb_sdot.counts" "$tmp/ccases"
