#!/bin/sh
# Firmware in QEMU: builds the Cortex-M boards (mps3-an547 M55/Helium,
# mps2-an385 M3, mps2-an386 M4/DSP, mps2-an500 M7/DSP with a double FPU,
# mps2-an505 M33/DSP with the rp2350's budget) and the compile-only real board, runs the
# Arm kernel tests in QEMU (Helium/DSP kernels against the portable ones, bit
# for bit, and against float64), and checks that each QEMU firmware's greedy
# continuation of "ROMEO:" equals `moeflash generate` on the host on the same
# image, byte for byte (memory-mapped QSPI port and semihosting port).
# Needs qemu-system-arm and arm-none-eabi-gcc (+ libnewlib-arm-none-eabi);
# without them it prints SKIP and counts nothing.
name=firmware_qemu
BUILD=${BUILD:-build}
if ! command -v qemu-system-arm >/dev/null 2>&1 || ! command -v arm-none-eabi-gcc >/dev/null 2>&1; then
    echo "SKIP $name: needs qemu-system-arm and arm-none-eabi-gcc" \
         "(apt-get install qemu-system-arm gcc-arm-none-eabi libnewlib-arm-none-eabi)"
    echo "$name: 0 passed, 0 failed"
    exit 0
fi
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { echo "FAIL $name: $*"; fail=$((fail + 1)); }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
MAKE="make --no-print-directory -s BUILD=$BUILD"
QEMU_SH="-nographic -monitor none -serial none -semihosting-config enable=on,target=native"

[ -x "$BUILD/moeflash" ] || $MAKE -j2 "$BUILD/moeflash" >/dev/null 2>&1

# 1. build every board (firmware, image, firmware tests)
for b in mps3-an547 mps2-an385 mps2-an386 mps2-an500 mps2-an505; do
    if $MAKE -j2 BOARD=$b all fw-tests >"$tmp/build-$b.log" 2>&1; then ok; else
        bad "build BOARD=$b"; tail -n 20 "$tmp/build-$b.log"; fi
done

# 2. kernel tests in QEMU
for bm in mps3-an547:mps3-an547 mps2-an386:mps2-an386 mps2-an385:mps2-an385 mps2-an500:mps2-an500 \
    mps2-an505:mps2-an505; do
    b=${bm%%:*}; m=${bm#*:}
    elf=$BUILD/$b/tests/test_kernels.elf
    [ -f "$elf" ] || { bad "no $elf"; continue; }
    timeout 120 qemu-system-arm -M "$m" $QEMU_SH -kernel "$elf" >"$tmp/k.out" 2>&1
    rc=$?
    cat "$tmp/k.out" | grep -v '^FAIL' | sed "s/^/  [$b] /"
    grep '^FAIL' "$tmp/k.out" | head -5
    line=$(grep -E '[0-9]+ passed, [0-9]+ failed' "$tmp/k.out" | tail -n 1)
    p=$(echo "$line" | sed -nE 's/.* ([0-9]+) passed, ([0-9]+) failed.*/\1/p')
    f=$(echo "$line" | sed -nE 's/.* ([0-9]+) passed, ([0-9]+) failed.*/\2/p')
    if [ -n "$p" ] && [ "$rc" -eq 0 ] && [ "$f" -eq 0 ]; then pass=$((pass + p)); else
        bad "kernel tests on $b (exit $rc, $line)"; fi
done

# 3. firmware text == host text, byte for byte
run_fw() { # board machine extra-qemu-args append-args
    timeout 300 qemu-system-arm -M "$2" $QEMU_SH -kernel "$BUILD/$1/moeflash.elf" $3 \
        -append "quiet=1 tokens=$TOKENS $4 prompt=ROMEO:"
}
for b in mps3-an547 mps2-an385 mps2-an386 mps2-an500; do
    # the M3 has no FPU: soft-float makes it ~10x slower in QEMU, so fewer tokens
    # (the M4 runs the DSP and scalar-VFP kernels: their bits end to end)
    if [ $b = mps2-an385 ]; then TOKENS=16; else TOKENS=32; fi
    img=$BUILD/$b/model.img
    [ -f "$img" ] || { bad "no $img"; continue; }
    if ! "$BUILD/moeflash" generate "$img" --prompt "ROMEO:" --tokens $TOKENS >"$tmp/host-$b.txt" 2>"$tmp/host.err"; then
        bad "host generate on $img"; cat "$tmp/host.err"; continue; fi
    [ "$(wc -c <"$tmp/host-$b.txt")" -ge $TOKENS ] && ok || bad "host generate gave $(wc -c <"$tmp/host-$b.txt") bytes"
    # port: qspi = image in the memory-mapped QSPI window, semihost = host file
    for port in qspi semihost; do
        if [ $port = qspi ]; then
            [ $b = mps3-an547 ] || continue
            qargs="-device loader,file=$img,addr=0x28000000"; aargs=""
        else
            qargs=""; aargs="image=$img"
        fi
        start=$(date +%s)
        run_fw "$b" "$b" "$qargs" "$aargs" >"$tmp/fw.txt" 2>"$tmp/fw.err"
        rc=$?
        echo "  [$b/$port] exit $rc in $(( $(date +%s) - start ))s: $(od -An -c "$tmp/fw.txt" | tr -d '\n' | tr -s ' ' | head -c 100)"
        [ $rc -eq 0 ] && ok || { bad "$b/$port firmware exit status $rc"; head -5 "$tmp/fw.err"; }
        if cmp -s "$tmp/fw.txt" "$tmp/host-$b.txt"; then ok; else
            bad "$b/$port firmware text differs from host"
            echo "  host: $(od -An -c "$tmp/host-$b.txt" | tr -d '\n' | tr -s ' ' | head -c 100)"
        fi
    done
done

# 3a. the statistics line of a run over the memory-mapped port: experts were
# read (misses > 0) and no read failed, so none was read twice (a port
# whose poll released tickets made every polled read fail its wait).
d=$BUILD/mps3-an547
timeout 300 qemu-system-arm -M mps3-an547 $QEMU_SH -kernel "$d/moeflash.elf" \
    -device loader,file=$d/model.img,addr=0x28000000 -append "tokens=16 prompt=ROMEO:" \
    >"$tmp/stats.txt" 2>&1
stats=$(grep '^# tokens' "$tmp/stats.txt")
misses=$(echo "$stats" | sed -n 's/.* misses \([0-9]*\).*/\1/p')
errors=$(echo "$stats" | sed -n 's/.* flash_errors \([0-9]*\).*/\1/p')
retries=$(echo "$stats" | sed -n 's/.* retries \([0-9]*\).*/\1/p')
echo "  [mps3-an547 stats] $stats"
if [ "${misses:-0}" -gt 0 ] && [ "$errors" = 0 ] && [ "$retries" = 0 ]; then ok; else
    bad "mps3-an547 qspi: misses ${misses:-?}, flash_errors ${errors:-?}, retries ${retries:-?} (want > 0, 0, 0)"; fi

# The firmware's greedy text against the host's on the same image, byte for
# byte: two checks (exit status 0, same text).
#   fw_vs_host LABEL MACHINE DIR TOKENS "QEMU-ARGS" "APPEND-ARGS" [HOST-GENERATE-ARGS...]
fw_vs_host() {
    label=$1 machine=$2 dir=$3 n=$4 qargs=$5 aargs=$6
    shift 6
    "$BUILD/moeflash" generate "$dir/model.img" --prompt "ROMEO:" --tokens "$n" "$@" \
        >"$tmp/host.txt" 2>/dev/null
    timeout 300 qemu-system-arm -M "$machine" $QEMU_SH -kernel "$dir/moeflash.elf" $qargs \
        -append "quiet=1 tokens=$n $aargs prompt=ROMEO:" >"$tmp/fw.txt" 2>&1
    rc=$?
    [ $rc -eq 0 ] && ok || { bad "$label firmware exit status $rc"; head -3 "$tmp/fw.txt"; }
    if [ -s "$tmp/host.txt" ] && cmp -s "$tmp/fw.txt" "$tmp/host.txt"; then ok; else
        bad "$label firmware text differs from host"; fi
    echo "  [$label] $(tr '\n' ' ' <"$tmp/fw.txt" | head -c 60)"
}
# RAM of a firmware: every writable section
ram_of() {
    arm-none-eabi-size -A "$1" | awk '/^\.(data|bss|stack|arena)[ \t]/ { s += $2 } END { print s + 0 }'
}

# 3b. the 512 KiB build: everything writable in the AN547's DTCM, a 256-token
# context with a q8 KV cache; 240 generated tokens fill most of the context
# (prompt 6 + 240 = 246 positions), the host runs with the same options.
if $MAKE -j2 BOARD=mps3-an547 FW_PROFILE=dtcm all >"$tmp/build-dtcm.log" 2>&1; then ok; else
    bad "build BOARD=mps3-an547 FW_PROFILE=dtcm"; tail -n 20 "$tmp/build-dtcm.log"; fi
d=$BUILD/mps3-an547-dtcm
if [ -f "$d/moeflash.elf" ]; then
    ram=$(ram_of "$d/moeflash.elf")
    echo "  [mps3-an547 dtcm] RAM $ram bytes"
    [ "$ram" -le 524288 ] && ok || bad "dtcm build uses $ram bytes of RAM (> 512 KiB)"
    fw_vs_host "mps3-an547 dtcm" mps3-an547 "$d" 240 "-device loader,file=$d/model.img,addr=0x28000000" "" \
        --context 256 --kv q8
fi

# 3b'. the rp2350's configuration on its core (Cortex-M33, mps2-an505): q4
# resident weights and experts, a 256-token q8 KV cache, the image read as
# memory (the rp2350's XIP window; here QEMU's PSRAM at 0x80000000), and all
# of it within the Pico 2's 520 KiB of SRAM. 240 tokens fill most of the
# context; the host runs with the same options.
# (the two boards must keep one budget: the same arena, encodings, context)
budget() {
    grep -hE '^FW_(ARENA|CONVERT) ' "boards/$1/board.mk" | sed 's/ *#.*//'
    grep -hE '^#define MF_(ARENA_BYTES|CONTEXT_LEN|KV_ENCODING|PREDICTOR) ' "boards/$1/board_config.h"
}
[ "$(budget mps2-an505)" = "$(budget rp2350)" ] && ok ||
    bad "boards/mps2-an505 and boards/rp2350 differ in arena, encodings, context or KV encoding"
d=$BUILD/mps2-an505
if [ -f "$d/moeflash.elf" ] && [ -f "$d/model.img" ]; then
    ram=$(ram_of "$d/moeflash.elf")
    echo "  [mps2-an505 rp2350 budget] RAM $ram bytes, image $(stat -c %s "$d/model.img") bytes"
    [ "$ram" -le 532480 ] && ok || bad "mps2-an505 (rp2350 budget) uses $ram bytes of RAM (> 520 KiB)"
    [ "$(stat -c %s "$d/model.img")" -le $((4194304 - 262144)) ] && ok || bad "rp2350 image larger than its 3.75 MiB of flash"
    # (its default: LFU with the router lookahead, MF_PREDICTOR 2, what
    # `moeflash plan` finds fastest on this budget)
    fw_vs_host mps2-an505 mps2-an505 "$d" 240 "-device loader,file=$d/model.img,addr=0x80000000" "" \
        --context 256 --kv q8 --policy lfu --predictor lookahead
    # reads started ahead of need by default; none with predictor=0, and the
    # same text
    for pr in "" 0; do
        timeout 300 qemu-system-arm -M mps2-an505 $QEMU_SH -kernel "$d/moeflash.elf" \
            -device loader,file=$d/model.img,addr=0x80000000 \
            -append "tokens=16 ${pr:+predictor=$pr }prompt=ROMEO:" >"$tmp/stats$pr.txt" 2>&1
        pf=$(grep '^# tokens' "$tmp/stats$pr.txt" | sed -n 's/.* prefetches \([0-9]*\).*/\1/p')
        if [ -z "$pr" ]; then [ "${pf:-0}" -gt 0 ] && ok || bad "mps2-an505: prefetches ${pf:-?} (want > 0)"
        else [ "$pf" = 0 ] && ok || bad "mps2-an505 predictor=0: prefetches ${pf:-?} (want 0)"; fi
    done
    [ "$(grep -v '^#' "$tmp/stats.txt")" = "$(grep -v '^#' "$tmp/stats0.txt")" ] && ok ||
        bad "mps2-an505: the text depends on the predictor"
    fw_vs_host "mps2-an505 predictor=none" mps2-an505 "$d" 48 \
        "-device loader,file=$d/model.img,addr=0x80000000" "predictor=none" --context 256 --kv q8
    fw_vs_host "mps2-an505 policy=edgemoe predictor=combined" mps2-an505 "$d" 48 \
        "-device loader,file=$d/model.img,addr=0x80000000" "policy=edgemoe predictor=combined" \
        --context 256 --kv q8 --policy edgemoe --predictor combined
    # sampled: the same seed gives the host's text (the sampler's exp is
    # mf_expf, the same bits on both; its sums are doubles, in software here)
    fw_vs_host "mps2-an505 temperature=0.8 top_p=0.95 seed=7" mps2-an505 "$d" 120 \
        "-device loader,file=$d/model.img,addr=0x80000000" "temperature=0.8 top_p=0.95 seed=7" \
        --context 256 --kv q8 --policy lfu --predictor lookahead --temperature 0.8 --top-p 0.95 --seed 7
    # past the context: slide=N as the host's --slide N (a 16-token context,
    # slid 5 times in 70 tokens), and without it a note that it stopped
    fw_vs_host "mps2-an505 ctx=16 slide=4" mps2-an505 "$d" 70 \
        "-device loader,file=$d/model.img,addr=0x80000000" "ctx=16 slide=4" \
        --context 16 --slide 4 --kv q8 --policy lfu --predictor lookahead
    timeout 300 qemu-system-arm -M mps2-an505 $QEMU_SH -kernel "$d/moeflash.elf" \
        -device loader,file=$d/model.img,addr=0x80000000 \
        -append "tokens=70 ctx=16 prompt=ROMEO:" >"$tmp/full.txt" 2>&1
    rc=$?
    if [ $rc -eq 0 ] && grep -q '^# context full' "$tmp/full.txt" &&
        grep -q '^# tokens 11 .* slides 0 ' "$tmp/full.txt"; then ok; else
        bad "mps2-an505 ctx=16 without slide: exit $rc, $(grep '^#' "$tmp/full.txt" | tr '\n' ' ')"; fi
fi

# 3c. a BPE image from a text prompt: small-qwen3-moe-bpe (q8 resident, q3
# experts: 7.5 MB in the 8 MiB QSPI window), tokenizer tables read in place
# from the window; the text must equal the host's generate on that image.
if $MAKE -j2 BOARD=mps3-an547 FW_PROFILE=bpe all >"$tmp/build-bpe.log" 2>&1; then ok; else
    bad "build BOARD=mps3-an547 FW_PROFILE=bpe"; tail -n 20 "$tmp/build-bpe.log"; fi
d=$BUILD/mps3-an547-bpe
if [ -f "$d/moeflash.elf" ] && [ -f "$d/model.img" ]; then
    [ "$(stat -c %s "$d/model.img")" -le 8388608 ] && ok || bad "bpe image larger than the 8 MiB window"
    fw_vs_host "mps3-an547 bpe" mps3-an547 "$d" 24 "-device loader,file=$d/model.img,addr=0x28000000" "" \
        --context 256
    # A model with a BOS token: these weights with the SentencePiece
    # tokenizer of tok-sentencepiece-hf (<s> first). After each slide the
    # firmware must feed the BOS again, as the host does (cli_run.sh checks
    # the host against plain runs); 40 tokens of a 16-token context, slid 3 times.
    mkdir "$tmp/bosm" "$tmp/bosfw"
    for f in config.json model.safetensors.index.json model-00001-of-00003.safetensors \
             model-00002-of-00003.safetensors model-00003-of-00003.safetensors; do
        ln -s "$PWD/tests/data/small-qwen3-moe-bpe/$f" "$tmp/bosm/$f"
    done
    ln -s "$PWD/tests/data/tok-sentencepiece-hf/tokenizer.json" "$tmp/bosm/tokenizer.json"
    ln -s "$PWD/$d/moeflash.elf" "$tmp/bosfw/moeflash.elf"
    if "$BUILD/moeflash" convert "$tmp/bosm" "$tmp/bosfw/model.img" --resident q8 --experts q3 \
        >/dev/null 2>"$tmp/bos.err"; then ok; else bad "convert the BOS model: $(cat "$tmp/bos.err")"; fi
    "$BUILD/moeflash" generate "$tmp/bosfw/model.img" --prompt "ROMEO:" --tokens 40 --context 16 --slide 4 \
        >/dev/null 2>"$tmp/bos.err"
    grep -q 'prompt 3 tokens.*context slid 3 times' "$tmp/bos.err" && ok ||
        bad "BOS model on the host: want a 3-token prompt (with the BOS) and 3 slides: $(cat "$tmp/bos.err")"
    fw_vs_host "mps3-an547 BOS model ctx=16 slide=4" mps3-an547 "$tmp/bosfw" 40 \
        "-device loader,file=$tmp/bosfw/model.img,addr=0x28000000" "ctx=16 slide=4" --context 16 --slide 4
fi

# 3c'. f16 experts and bf16 resident weights (the Helium f16/bf16 matvec),
# the image read through semihosting: the text must equal the host's.
if $MAKE -j2 BOARD=mps3-an547 FW_PROFILE=half all >"$tmp/build-half.log" 2>&1; then ok; else
    bad "build BOARD=mps3-an547 FW_PROFILE=half"; tail -n 20 "$tmp/build-half.log"; fi
d=$BUILD/mps3-an547-half
if [ -f "$d/moeflash.elf" ] && [ -f "$d/model.img" ]; then
    fw_vs_host "mps3-an547 half (f16/bf16)" mps3-an547 "$d" 24 "" "image=$d/model.img"
fi

# 3d. bad flash: one flipped byte in the middle of every layer-0 expert blob
# (where the Helium CRC kernel folds it, not in the table-driven tail). The
# first token needs two of them, so the firmware must stop with the CRC
# error (exit 5) and print no text.
img=$BUILD/mps3-an547/model.img
if [ -f "$img" ]; then
    cp "$img" "$tmp/bad.img"
    "$BUILD/moeflash" inspect "$img" --json | tr '{' '\n' |
        sed -n 's/.*"layer": 0, "expert": [0-9]*, "offset": \([0-9]*\), "bytes": \([0-9]*\).*/\1 \2/p' >"$tmp/l0"
    nflip=0
    while read off len; do
        at=$((off + len / 2 + 5))
        b=$(od -An -tu1 -j $at -N1 "$tmp/bad.img" | tr -d ' ')
        printf "\\$(printf %o $((b ^ 16)))" | dd of="$tmp/bad.img" bs=1 seek=$at conv=notrunc 2>/dev/null
        nflip=$((nflip + 1))
    done <"$tmp/l0"
    [ $nflip -eq 16 ] && ok || bad "flipped $nflip layer-0 experts, expected 16"
    timeout 60 qemu-system-arm -M mps3-an547 $QEMU_SH -kernel "$BUILD/mps3-an547/moeflash.elf" \
        -device loader,file="$tmp/bad.img",addr=0x28000000 \
        -append "quiet=1 tokens=4 prompt=ROMEO:" >"$tmp/fw.txt" 2>&1
    rc=$?
    echo "  [mps3-an547 bad flash] exit $rc: $(tr '\n' ' ' <"$tmp/fw.txt" | head -c 100)"
    [ $rc -eq 5 ] && ok || bad "corrupt experts: exit $rc, want 5"
    grep -q 'mf_feed (prompt).*checksum mismatch' "$tmp/fw.txt" && ok || bad "corrupt experts: no CRC error from mf_feed"
fi

# 4. exit status reaches the shell: a bad argument must exit 2, a missing image 3
timeout 60 qemu-system-arm -M mps3-an547 $QEMU_SH -kernel "$BUILD/mps3-an547/moeflash.elf" \
    -append "bogus=1" >/dev/null 2>&1
rc=$?; [ $rc -eq 2 ] && ok || bad "bad argument: exit $rc, want 2"
timeout 60 qemu-system-arm -M mps3-an547 $QEMU_SH -kernel "$BUILD/mps3-an547/moeflash.elf" \
    -append "policy=lfx" >"$tmp/o.txt" 2>&1
rc=$?; [ $rc -eq 2 ] && grep -q "bad argument 'policy=lfx'" "$tmp/o.txt" && ok ||
    bad "policy=lfx: exit $rc, want 2 and the argument named: $(cat "$tmp/o.txt")"
for arg in top_p=1.5 top_p=0 temperature=0.8.1 temperature=x seed=18446744073709551616 tokens=4294967296 policy=4; do
    timeout 60 qemu-system-arm -M mps3-an547 $QEMU_SH -kernel "$BUILD/mps3-an547/moeflash.elf" \
        -append "$arg" >"$tmp/o.txt" 2>&1
    rc=$?; [ $rc -eq 2 ] && grep -q "bad argument '$arg'" "$tmp/o.txt" && ok ||
        bad "$arg: exit $rc, want 2 and the argument named: $(cat "$tmp/o.txt")"
done
timeout 60 qemu-system-arm -M mps3-an547 $QEMU_SH -kernel "$BUILD/mps3-an547/moeflash.elf" \
    -append "tokens=1 prompt=R" >/dev/null 2>&1
rc=$?; [ $rc -eq 3 ] && ok || bad "no image in the QSPI window: exit $rc, want 3"

# 5. a board a user can flash: compile-only
for b in $(ls boards | grep -vE '^(common|host|mps[23]-an[0-9]+)$'); do
    [ -f "boards/$b/board.mk" ] || continue
    if $MAKE -j2 BOARD=$b "$BUILD/$b/moeflash.elf" >"$tmp/build-$b.log" 2>&1; then ok; else
        bad "build BOARD=$b"; tail -n 20 "$tmp/build-$b.log"; fi
done

# 6. no heap in any firmware: no malloc/free/_sbrk linked
for b in mps3-an547 mps2-an385 mps2-an386 mps2-an500 mps2-an505; do
    elf=$BUILD/$b/moeflash.elf
    [ -f "$elf" ] || continue
    if arm-none-eabi-nm "$elf" | grep -qwE 'malloc|_malloc_r|free|_free_r|_sbrk|calloc|realloc'; then
        bad "$b links heap functions"; else ok; fi
done

echo "$name: $pass passed, $fail failed"
[ $fail -eq 0 ]
