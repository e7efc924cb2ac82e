#!/bin/sh
# Exact executed-instruction counts between calls to mf_bench_mark() in a
# firmware test ELF run under QEMU -singlestep -d exec,nochain (one log line
# per executed instruction; the PC is the 2nd field of [..../PC/..../....]).
# usage: kcount.sh MACHINE ELF [CMDLINE]  -> prints "interval instructions" lines
# (CMDLINE, default "bench", is the firmware's -append: test_kernels takes
# "bench-half" for its f16 / bf16 cases alone)
# (interval i = between the i-th and (i+1)-th call; the mark function's own
# instructions are excluded, the caller's few argument moves are not).
m=$1; elf=$2; cmdline=${3:-bench}
set -- $(arm-none-eabi-nm -S "$elf" | awk '$4 == "mf_bench_mark" { print $1, $2 }')
lo=$1
hi=$(printf '%08x' $((0x$1 + 0x$2)))
dir=$(mktemp -d)
mkfifo "$dir/log"
# 8-digit lower-case hex strings compare like the numbers they spell
awk -v lo="$lo" -v hi="$hi" '
    BEGIN { lo = "x" lo; hi = "x" hi } # strings: 0000e868 is not the number 0
    /^Trace/ {
        split($4, a, "/"); pc = "x" a[2];
        if (pc == lo) { if (inside) print id, n; id++; n = 0; inside = 1; next }
        if (pc > lo && pc < hi) next
        n++
    }' "$dir/log" &
timeout 600 qemu-system-arm -M "$m" -nographic -monitor none -serial none \
    -semihosting-config enable=on,target=native -kernel "$elf" -append "$cmdline" \
    -singlestep -d exec,nochain -D "$dir/log" >/dev/null
wait
rm -rf "$dir"
