#!/bin/sh
# Dual precision through `moeflash bench` (issue 4 item 4): an image with a
# q2 fallback copy, benched on the simulated mcu-qspi flash with 4 slots.
# With --fallback-stall-ms 0 no copy is read; with 2 ms some are, the run
# gets faster in virtual time and the loss changes a little.
BUILD=${BUILD:-build}
M=$BUILD/moeflash
pass=0; fail=0
ok() { pass=$((pass + 1)); }
bad() { echo "FAIL bench_fallback: $*"; fail=$((fail + 1)); }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if ! $M convert models/tiny-shakespeare-moe "$tmp/fb.img" --experts q8 --fallback q2 2>"$tmp/err"; then
    bad "convert --fallback q2: $(tail -n 1 "$tmp/err")"
    echo "bench_fallback: $pass passed, $fail failed"; exit 1
fi
head -c 200000 tests/data/tinyshakespeare.txt | tail -c 20000 > "$tmp/text.txt"
field() { tr ',{}' '\n\n\n' < "$1" | grep "\"$2\"" | sed 's/.*: *//'; }
for ms in 0 2; do
    if $M bench "$tmp/fb.img" --text "$tmp/text.txt" --tokens 128 --profile mcu-qspi --slots 4 \
        --fallback-stall-ms $ms --json > "$tmp/b$ms.json" 2>"$tmp/err"; then ok; else bad "bench at $ms ms: $(tail -n 1 "$tmp/err")"; fi
done
f0=$(field "$tmp/b0.json" fallback_reads); f2=$(field "$tmp/b2.json" fallback_reads)
t0=$(field "$tmp/b0.json" tokens_per_second); t2=$(field "$tmp/b2.json" tokens_per_second)
n0=$(field "$tmp/b0.json" nll_bits_per_token); n2=$(field "$tmp/b2.json" nll_bits_per_token)
[ "$f0" = 0 ] && ok || bad "threshold 0 read $f0 fallback copies"
[ -n "$f2" ] && [ "$f2" -gt 0 ] && ok || bad "threshold 2 ms read no fallback copy ($f2)"
awk -v a="$t0" -v b="$t2" 'BEGIN { exit !(b > a) }' && ok || bad "tokens/s with fallback $t2 not above $t0"
# The copies change the weights used, so the loss moves (either way on a
# short text), but by little: q2 costs ~5% over a whole split.
awk -v a="$n0" -v b="$n2" 'BEGIN { d = (b - a) / a; if (d < 0) d = -d; exit !(b != a && d < 0.1) }' \
    && ok || bad "loss with fallback $n2 vs full precision $n0: unchanged or off by 10% or more"
echo "bench_fallback: fallback reads $f2, tokens/s $t0 -> $t2, bits/token $n0 -> $n2"
echo "bench_fallback: $pass passed, $fail failed"
