#!/bin/sh
# Deterministic cost of the firmware on a QEMU Cortex-M board: exact
# executed-instruction counts from `qemu-system-arm -singlestep -d
# exec,nochain` (one log line per executed instruction), never -icount time
# (which is not an instruction count for Helium code, see shared NOTES).
#
#   sh boards/common/bench.sh MACHINE OUTDIR TEST_ELF FW_ELF IMAGE
#
# 1. kernels: test_kernels.elf "bench" mode, instructions between marks for
#    the portable and the Arm q8..q2 matvec on several shapes -> MAC/instr;
#    the runtime's f32 matvec; one head of attention at 64..1024 positions
#    (-> attention.txt, with the instructions split by function), and over
#    a q8, f16 or bf16 KV cache, portable and Arm.
# 2. per token: the firmware with its image in the QSPI window, greedy
#    generation, instructions between the per-token marks (mf_token_mark),
#    split by function into matvec kernels, flash reads (memcpy: the
#    memory-mapped port's read) and the rest, for several expert-slot counts
#    (2 = top_k = pure streaming ... 64 = every expert resident).
# Writes OUTDIR/kernels.txt, OUTDIR/attention.txt, OUTDIR/tokens.txt and OUTDIR/functions_slotsN.txt
# (instructions per token by function) and prints them.
M=$1; OUT=$2; TELF=$3; FELF=$4; IMG=$5
TOKENS=${BENCH_TOKENS:-5}
SLOTS=${BENCH_SLOTS-2 8 32 64}  # BENCH_SLOTS= (empty): kernels only
KERNELS=${BENCH_KERNELS:-1}     # BENCH_KERNELS=0: per token only (stage 1 takes most of the time)
mkdir -p "$OUT"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
QEMU="qemu-system-arm -M $M -nographic -monitor none -serial none -semihosting-config enable=on,target=native"

# Counts instructions per interval between executions of the mark function
# [lo, hi) (excluded), and per function class for the PCs given in the
# class file (lines "lo hi class", 8-digit hex; 8-digit lower-case hex
# strings compare like the numbers they spell).
# Addresses are compared as strings: the "x" prefix keeps awk from reading
# a hex address such as 0000e868 as the number 0e868 = 0.
# The file named vecfile lists the PCs of Helium (MVE) instructions: nv
# counts them per interval (the CPI convention below gives them 1.25).
cat >"$tmp/count.awk" <<'AWK'
BEGIN { lo = "x" lo; hi = "x" hi }
FNR == NR { clo[++nc] = "x" $1; chi[nc] = "x" $2; cname[nc] = $3; next }
FILENAME == vecfile { vec["x" $1] = 1; next }
/^Trace/ {
    split($4, a, "/"); pc = "x" a[2];
    if (pc == lo) { id++; next }
    if (pc > lo && pc < hi) next
    if (!id) next
    n[id]++
    if (pc in vec) nv[id]++
    if (!(pc in fn)) {
        fn[pc] = "?"
        for (i = 1; i <= nc; i++) if (pc >= clo[i] && pc < chi[i]) { fn[pc] = cname[i]; break }
    }
    byf[id, fn[pc]]++
    seen[fn[pc]] = 1
}
function cls(f) {
    if (f ~ /^(mf_matvec|rows[24]_|row_q|dot_)/) return "kernel"
    if (f ~ /^mm_/) return "flashread"
    return "other"
}
END {
    for (i = 1; i <= id; i++) {
        k = 0; fr = 0; o = 0
        for (f in seen) { c = cls(f); v = byf[i, f] + 0
            if (c == "kernel") k += v; else if (c == "flashread") fr += v; else o += v }
        print i, n[i] + 0, "kernel=" k, "flashread=" fr, "other=" o, "vec=" nv[i] + 0
    }
    # per function over the steady-state intervals 2 .. id-1
    for (f in seen) { t = 0; for (i = 2; i < id; i++) t += byf[i, f]; if (t) print "F", f, t }
    # per function and interval (kernels run: the attention split)
    if (perint) for (i = 1; i <= id; i++) for (f in seen) if (byf[i, f]) print "G", i, f, byf[i, f]
}
AWK

# function table from the ELF's symbols: "lo hi name" (8-digit hex)
classes() {
    arm-none-eabi-nm -S "$1" | awk '
        NF == 4 && ($3 == "T" || $3 == "t" || $3 == "W") {
            printf "%s %08x %s\n", $1, hex($1) + hex($2), $4
        }
        function hex(h,   i, v) {
            v = 0; h = tolower(h)
            for (i = 1; i <= length(h); i++) v = v * 16 + index("0123456789abcdef", substr(h, i, 1)) - 1
            return v
        }'
}

# PCs (8-digit hex) of Helium instructions: those with a Q register operand
# (-m armv8.1-m.main: else objdump shows MVE as coprocessor instructions).
vecpcs() {
    arm-none-eabi-objdump -d --no-show-raw-insn -m armv8.1-m.main "$1" | awk -F'\t' '
        NF >= 3 && $1 ~ /^ *[0-9a-f]+:$/ {
            a = $1; gsub(/[ :]/, "", a); while (length(a) < 8) a = "0" a
            o = $3; sub(/[<@].*/, "", o) # not symbols or comments
            if (o ~ /(^|[^a-z0-9])q[0-7]([^0-9]|$)/) print a
        }'
}

markrange() {
    arm-none-eabi-nm -S "$1" | awk -v s="$2" '$4 == s { print $1, $2 }' | head -n 1 |
        while read a n; do printf '%s %08x\n' "$a" $((0x$a + 0x$n)); done
}

traced() { # elf append-args stdout-file extra-qemu-args... (PERINT=1: G lines)
    elf=$1; args=$2; out=$3; shift 3
    set -- $(markrange "$elf" "$MARK") "$@"
    lo=$1; hi=$2; shift 2
    classes "$elf" >"$tmp/classes"
    vecpcs "$elf" >"$tmp/vec"
    mkfifo "$tmp/log"
    awk -v lo="$lo" -v hi="$hi" -v perint="${PERINT:-0}" -v vecfile="$tmp/vec" -f "$tmp/count.awk" \
        "$tmp/classes" "$tmp/vec" "$tmp/log" >"$tmp/awk.out" &
    timeout 3600 $QEMU -kernel "$elf" "$@" -append "$args" \
        -singlestep -d exec,nochain -D "$tmp/log" >"$out" 2>&1
    rc=$?
    wait
    rm -f "$tmp/log"
    return $rc
}

# Case c's two intervals (portable 3c+1, Arm 3c+2): their instructions p, a
# and Helium instructions pv, av.
pair_counts() {
    p=$(awk -v i=$((3 * $1 + 1)) '$1 == i { print $2 }' "$tmp/awk.out")
    a=$(awk -v i=$((3 * $1 + 2)) '$1 == i { print $2 }' "$tmp/awk.out")
    pv=$(awk -v i=$((3 * $1 + 1)) '$1 == i { sub("vec=", "", $6); print $6 }' "$tmp/awk.out")
    av=$(awk -v i=$((3 * $1 + 2)) '$1 == i { sub("vec=", "", $6); print $6 }' "$tmp/awk.out")
}

# ---- 1. kernels ----
if [ "$KERNELS" != 0 ]; then
MARK=mf_bench_mark PERINT=1 traced "$TELF" bench "$tmp/k.stdout"
{
    echo "# Executed instructions per matvec call (QEMU $M, -singlestep -d exec,nochain),"
    echo "# from $(basename "$TELF") bench mode; MAC = rows x cols multiply-accumulates."
    echo "# case enc rows x cols group MACs | portable: instr MAC/instr | arm ($(grep -o 'kernel [a-z]*' "$tmp/k.stdout" | head -n 1 | cut -d' ' -f2)): instr MAC/instr | speed-up"
    grep '^bench case' "$tmp/k.stdout" | while read _ _ c enc shape _ g _ macs _ _; do
        p=$(awk -v i=$((3 * c + 1)) '$1 == i { print $2 }' "$tmp/awk.out")
        a=$(awk -v i=$((3 * c + 2)) '$1 == i { print $2 }' "$tmp/awk.out")
        awk -v c="$c" -v e="$enc" -v s="$shape" -v g="$g" -v m="$macs" -v p="$p" -v a="$a" 'BEGIN {
            printf "%2d %s %-8s g%-4d %7d | %8d %5.3f | %7d %5.3f | %5.1fx\n", c, e, s, g, m, p, m / p, a, m / a, p / a }'
    done
    echo "#"
    echo "# f32 matvec: runtime/ops.c mf_matmul(MF_ENC_F32), one token (Helium: mf_matvec_f32_arm, two rows per pass, bit-identical to mf_dot_f32)"
    echo "# vec = Helium instructions among them; cycles = 1.25 x vec + 1.0 x the rest (the CPI convention of README.md)"
    echo "# case f32 rows x cols MACs | instr MAC/instr instr/MAC | vec | cycles/MAC"
    grep '^bench f32 case' "$tmp/k.stdout" | while read _ _ _ c shape _ macs; do
        p=$(awk -v i=$((3 * c + 1)) '$1 == i { print $2 }' "$tmp/awk.out")
        vv=$(awk -v i=$((3 * c + 1)) '$1 == i { sub("vec=", "", $6); print $6 }' "$tmp/awk.out")
        awk -v c="$c" -v s="$shape" -v m="$macs" -v p="$p" -v vv="$vv" 'BEGIN {
            printf "%2d f32 %-8s %7d | %8d %5.3f %5.3f | %8d | %5.3f\n", c, s, m, p, m / p, p / m, vv, (p + 0.25 * vv) / m }'
    done
    echo "#"
    echo "# CRC-32 (expert blobs are checked with it): runtime/image.c mf_crc32, slicing by 4 through 4 KiB of tables,"
    echo "# against the Arm kernel (Helium: mf_crc32_arm, folding with VMULL.P16; none on cores without MVE)."
    echo "# cycles = 1.25 x vec + 1.0 x the rest"
    echo "# case bytes | tables: instr instr/byte cycles/byte | arm: instr instr/byte vec cycles/byte | speed-up (cycles)"
    grep '^bench crc case' "$tmp/k.stdout" | while read _ _ _ c _ n _; do
        pair_counts $c
        awk -v c="$c" -v n="$n" -v p="$p" -v a="$a" -v pv="$pv" -v av="$av" 'BEGIN {
            pc = p + 0.25 * pv; ac = a + 0.25 * av
            if (a + 0 == 0) { printf "%2d %6d | %7d %5.3f %5.3f | none\n", c, n, p, p / n, pc / n; exit }
            printf "%2d %6d | %7d %5.3f %5.3f | %7d %5.3f %6d %5.3f | %4.2fx\n", c, n, p, p / n, pc / n, a, a / n, av, ac / n, pc / ac }'
    done
    echo "#"
    echo "# f16 / bf16 weights times f32 activations (runtime/quant.c mf_matvec, one token): the portable code"
    echo "# (each weight widened in scalar code, four lane sums) against the Arm kernel (Helium-float cores:"
    echo "# mf_matvec_half_arm, widening in registers, two rows per pass; none elsewhere). cycles as above."
    echo "# case enc rows x cols MACs | portable: instr instr/MAC vec cycles/MAC | arm: instr instr/MAC vec cycles/MAC | speed-up (cycles)"
    grep '^bench half case' "$tmp/k.stdout" | while read _ _ _ c enc shape _ macs; do
        pair_counts $c
        awk -v c="$c" -v e="$enc" -v s="$shape" -v m="$macs" -v p="$p" -v a="$a" -v pv="$pv" -v av="$av" 'BEGIN {
            pc = p + 0.25 * pv; ac = a + 0.25 * av
            if (a + 0 == 0) { printf "%2d %-4s %-8s %6d | %7d %5.3f %6d %5.3f | none\n", c, e, s, m, p, p / m, pv, pc / m; exit }
            printf "%2d %-4s %-8s %6d | %7d %5.3f %6d %5.3f | %7d %5.3f %6d %5.3f | %4.1fx\n", c, e, s, m, p, p / m, pv, pc / m, a, a / m, av, ac / m, pc / ac }'
    done
} >"$OUT/kernels.txt"
cat "$OUT/kernels.txt"

# attention: one mf_attention_head call (interval 3c+1) and the softmax it
# runs alone on the same scores (3c+2); the call's instructions by function
{
    echo "# Executed instructions for one query head of attention, runtime/ops.c mf_attention_head"
    echo "# (on Helium-float cores runtime/kernels_arm.c mf_attention_head_arm)"
    echo "# (QEMU $M, -singlestep -d exec,nochain, $(basename "$TELF") bench mode), head_dim 32,"
    echo "# KV rows of 64 floats (the tiny model: 4 heads, 2 KV heads), f32 K and V. softmax = the call's"
    echo "# softmax (mf_softmax_arm there, else mf_softmax) alone on the same n_pos scores (exp included);"
    echo "# dot+AV = the rest of the call (QK dots, scaling, the weighted sum of V rows, call overhead)."
    echo "# vec = Helium instructions of the call per position; cycles = 1.25 x vec + 1.0 x the rest."
    echo "# per charged byte = 4 heads x cycles/pos / 512 (runtime/model.c charges n_pos x kv_dim 64 x 2 x 4 bytes"
    echo "# per layer for the 4 query heads; two heads share each KV head)."
    echo "# case n_pos | instr instr/pos | softmax instr/pos | dot+AV instr/pos | vec/pos | cycles/pos | cycles per charged KV byte"
    grep '^bench att case' "$tmp/k.stdout" | while read _ _ _ c _ n _ hd _ _; do
        p=$(awk -v i=$((3 * c + 1)) '$1 == i { print $2 }' "$tmp/awk.out")
        s=$(awk -v i=$((3 * c + 2)) '$1 == i { print $2 }' "$tmp/awk.out")
        vv=$(awk -v i=$((3 * c + 1)) '$1 == i { sub("vec=", "", $6); print $6 }' "$tmp/awk.out")
        awk -v c="$c" -v n="$n" -v p="$p" -v s="$s" -v vv="$vv" 'BEGIN {
            cy = p + 0.25 * vv
            printf "%2d %5d | %8d %7.1f | %7.1f | %7.1f | %6.1f | %7.1f | %6.3f\n", c, n, p, p / n, s / n, (p - s) / n, vv / n, cy / n, 4 * cy / (n * 512) }'
    done
    echo "# by function, instructions per position in the mf_attention_head call:"
    grep '^bench att case' "$tmp/k.stdout" | while read _ _ _ c _ n _; do
        awk -v i=$((3 * c + 1)) -v n="$n" -v c="$c" '$1 == "G" && $2 == i { printf "%2d %5d %9.2f %s\n", c, n, $4 / n, $3 }' \
            "$tmp/awk.out" | sort -k1,1n -k3,3nr
    done
    # attention over a q8, f16 or bf16 KV cache: portable (3c+1) vs Arm (3c+2)
    echo "#"
    echo "# KV cache in q8 / f16 / bf16 (--kv): runtime/ops.c mf_attention_head_kv, the same head and shapes."
    echo "# portable = mf_attention_head_kv_portable (each row widened into a scratch row, mf_dot_f32, the vector AV loop);"
    echo "# arm = mf_attention_head_kv (on Helium-float cores mf_attention_head_kv_arm: widening in registers), bit-identical."
    echo "# per KV value = 4 heads x cycles/pos / 128 (n_pos x kv_dim 64 x 2 values per layer; cycles as above)."
    echo "# case enc n_pos | portable instr/pos vec/pos cycles/pos | arm instr/pos vec/pos cycles/pos | speed-up | arm cycles per KV value"
    grep '^bench attkv case' "$tmp/k.stdout" | while read _ _ _ c enc _ n _; do
        pair_counts $c
        awk -v c="$c" -v e="$enc" -v n="$n" -v p="$p" -v a="$a" -v pv="$pv" -v av="$av" 'BEGIN {
            pc = p + 0.25 * pv; ac = a + 0.25 * av
            printf "%2d %-4s %5d | %7.1f %6.1f %7.1f | %7.1f %6.1f %7.1f | %4.2fx | %6.3f\n", c, e, n, p / n, pv / n, pc / n, a / n, av / n, ac / n, pc / ac, 4 * ac / (n * 128) }'
    done
} >"$OUT/attention.txt"
cat "$OUT/attention.txt"
fi

# ---- 2. per token ----
[ -n "$SLOTS" ] || exit 0
# the image: in the QSPI window on mps3-an547, memory-mapped at 0x80000000 on
# mps2-an505 (the rp2350 budget build), read through semihosting
# (image=PATH) on the other mps2 boards, whose firmware has no memory-mapped flash
case $M in
mps3-*) IMGARG= ; where="in the QSPI window"; set -- -device loader,file="$IMG",addr=0x28000000 ;;
mps2-an505) IMGARG= ; where="memory-mapped at 0x80000000 (the rp2350's XIP window)"; set -- -device loader,file="$IMG",addr=0x80000000 ;;
*) IMGARG=" image=$IMG"; where="read through semihosting (the host copies it: flashread ~0)"; set -- ;;
esac
{
    echo "# Executed instructions per generated token (QEMU $M, image $(basename "$IMG") $where,"
    echo "# greedy, prompt R, $TOKENS tokens; the first token after the prompt is dropped from the mean)."
    echo "# kernel = matvec kernels; flashread = port/memmap copying out of the memory-mapped flash (expert reads);"
    echo "# other = everything else (attention, norms, activation quantisation, routing, sampling, bookkeeping)."
    echo "# Only $TOKENS tokens run (singlestep logging is slow), so even 64 slots (every expert) still miss on"
    echo "# first use: kernel + other is the per-token compute, flashread scales with the bytes read."
    echo "# No predictor (predictor=0, whatever the board's default): these counts calibrate the"
    echo "# simulator's per-value cost of the forward pass itself (port/sim/profiles.c)."
    echo "# slots | instr/token | kernel | flashread | other | flash bytes/token"
} >"$OUT/tokens.txt"
for s in $SLOTS; do
    MARK=mf_token_mark traced "$FELF" "tokens=$TOKENS slots=$s predictor=0$IMGARG prompt=R" "$tmp/f.stdout" "$@" || { echo "run slots=$s failed"; cat "$tmp/f.stdout"; continue; }
    fb=$(sed -n 's/.* flash_bytes \([0-9]*\).*/\1/p' "$tmp/f.stdout")
    ntok=$(awk '$1 != "F"' "$tmp/awk.out" | wc -l)
    awk -v s="$s" -v nt="$ntok" '$1 == "F" { printf "%10d  %s\n", $3 / (nt - 2), $2 }' "$tmp/awk.out" |
        sort -rn | head -n 25 >"$OUT/functions_slots$s.txt"
    awk -v s="$s" -v T="$TOKENS" -v fb="$fb" '
        $1 == "F" { next }
        { for (i = 3; i <= NF; i++) { split($i, kv, "="); v[$1, kv[1]] = kv[2] } tot[$1] = $2; n = $1 }
        END {
            # intervals 1..n: token k generated between mark k-1 and mark k;
            # skip interval 1 (its expert misses are not steady state) and the
            # last (from the last mark to the exit: final sample, statistics)
            c = 0; t = 0; k = 0; f = 0; o = 0
            for (i = 2; i < n; i++) { c++; t += tot[i]; k += v[i, "kernel"]; f += v[i, "flashread"]; o += v[i, "other"] }
            if (!c) { print s " no data"; exit }
            printf "%5d | %11d | %9d | %9d | %9d | %d (whole run incl. prompt: %d bytes)\n", s, t / c, k / c, f / c, o / c, fb / (T + 1), fb
        }' "$tmp/awk.out" >>"$OUT/tokens.txt"
done
cat "$OUT/tokens.txt"
echo "# top functions, instructions per token (slots 2):"
cat "$OUT/functions_slots2.txt" 2>/dev/null
