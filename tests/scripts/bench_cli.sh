#!/bin/sh
# moeflash bench end to end on the tiny model (128 validation tokens):
#  - the JSON object has every field the issue names, and sane values;
#  - efficiency = bound / actual is in (0, 1] for several policies,
#    predictors and profiles (latency on the bus and overlapped);
#  - Belady's misses, recomputed here in awk from --trace-out (independent
#    of tools/lib/belady.c), equal the reported belady_misses, are <= the
#    misses of the runtime's LRU and of the LRU replay on the same trace, and
#    the bound recomputed from them with the profile's flash figures equals
#    bound_seconds;
#  - the trace has one line per token and layer;
#  - the loss does not depend on the cache configuration;
#  - bad arguments exit non-zero with a message.
BUILD=${BUILD:-build}
MF="$BUILD/moeflash"
pass=0; fail=0
ok() { pass=$((pass + 1)); }
bad() { echo "FAIL bench_cli: $*"; fail=$((fail + 1)); }
check() { d=$1; shift; if "$@"; then ok; else bad "$d"; fi; }
T=$(mktemp -d /tmp/mf_bench_XXXXXX)
trap 'rm -rf "$T"' EXIT
N=128

if ! "$MF" convert models/tiny-shakespeare-moe "$T/tiny.img" >/dev/null 2>"$T/conv.err"; then
    bad "convert failed: $(cat "$T/conv.err")"
    echo "bench_cli: $pass passed, $fail failed"; exit 1
fi
len=$(wc -c < tests/data/tinyshakespeare.txt)
off=$((len * 9 / 10))
tail -c +$((off + 1)) tests/data/tinyshakespeare.txt | head -c 1024 > "$T/val.txt"

num() { # num KEY JSONFILE -> the number after "KEY":
    grep -o "\"$1\": *[-0-9.eE+a-z]*" "$2" | head -n 1 | sed 's/.*: *//'
}
# awk_le A B: A <= B (floating point)
le() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 <= b + 0) }'; }
close_to() { awk -v a="$1" -v b="$2" 'BEGIN { d = a - b; if (d < 0) d = -d; m = (a < 0 ? -a : a); exit !(d <= 1e-6 * m + 1e-12) }'; }

# Belady's MIN in awk over the trace lines (token-major, layer, experts):
# per (token, layer) the distinct experts in ascending order, key layer*E+e.
belady_awk() { # belady_awk TRACE SLOTS E: MIN over the steps (token, layer), hits first, ties to the least recently used
    awk -v S="$2" -v E="$3" '
    BEGIN { n = 0; ns = 0; tick = 0 }
    {
        line = $0; gsub(/[{}\[\]":,]/, " ", line); m = split(line, f, " ")
        layer = -1; ne = 0
        for (i = 1; i <= m; i++) {
            if (f[i] == "layer") layer = f[i + 1] + 0
            if (f[i] == "experts") { for (j = i + 1; j <= m; j++) x[ne++] = f[j] + 0; break }
        }
        for (a = 0; a < ne; a++) for (b = a + 1; b < ne; b++) if (x[b] < x[a]) { t = x[a]; x[a] = x[b]; x[b] = t }
        first[ns] = n
        for (a = 0; a < ne; a++) if (a == 0 || x[a] != x[a - 1]) { seq[n] = layer * E + x[a]; stp[n] = ns; n++ }
        ns++
    }
    END {
        first[ns] = n
        for (i = n - 1; i >= 0; i--) { k = seq[i]; nxt[i] = (k in last) ? last[k] : ns; last[k] = stp[i] }
        miss = 0; cnt = 0
        for (s = 0; s < ns; s++) {
            for (i = first[s]; i < first[s + 1]; i++) { k = seq[i]; h[i] = (k in inc); if (h[i]) { nu[k] = nxt[i]; lu[k] = ++tick } }
            for (i = first[s]; i < first[s + 1]; i++) {
                if (h[i]) continue
                k = seq[i]; miss++
                if (cnt < S) cnt++
                else {
                    v = -1; far = -1
                    for (c in inc) if (nu[c] > far || (nu[c] == far && lu[c] < lu[v])) { far = nu[c]; v = c }
                    delete inc[v]; delete nu[v]
                }
                inc[k] = 1; nu[k] = nxt[i]; lu[k] = ++tick
            }
        }
        print miss
    }' "$1"
}

FIELDS="tokens virtual_seconds compute_seconds stall_seconds flash_bytes hits misses
prefetch_recall prefetch_precision bound_seconds efficiency tokens_per_second"
nll_ref=""
run=0
for cfg in "mcu-qspi 8 lru none" "mcu-qspi 8 none none" "mcu-qspi 16 lru lookahead" \
           "mcu-qspi 4 belady none" "phone-ufs 8 edgemoe combined" "sbc-sdcard 32 lfu lookahead" \
           "mcu-m33-qspi 8 edgemoe combined"; do
    set -- $cfg
    prof=$1 slots=$2 pol=$3 pred=$4
    run=$((run + 1))
    J="$T/run$run.json"
    if ! "$MF" bench "$T/tiny.img" --text "$T/val.txt" --tokens $N --profile "$prof" --slots "$slots" \
        --policy "$pol" --predictor "$pred" --json --trace-out "$T/trace$run.jsonl" >"$J" 2>"$T/err"; then
        bad "bench $cfg failed: $(cat "$T/err")"
        continue
    fi
    check "$cfg: one JSON line" [ "$(wc -l < "$J")" -eq 1 ]
    missing=""
    for k in $FIELDS; do [ -n "$(num "$k" "$J")" ] || missing="$missing $k"; done
    check "$cfg: fields present (missing:$missing)" [ -z "$missing" ]
    check "$cfg: tokens = $N" [ "$(num tokens "$J")" = "$N" ]
    eff=$(num efficiency "$J")
    check "$cfg: efficiency $eff in (0, 1]" le "$eff" 1
    check "$cfg: efficiency $eff > 0" le 1e-9 "$eff"
    v=$(num virtual_seconds "$J"); c=$(num compute_seconds "$J"); s=$(num stall_seconds "$J")
    check "$cfg: virtual $v = compute $c + stall $s" close_to "$v" "$(awk -v a="$c" -v b="$s" 'BEGIN { printf "%.9g", a + b }')"
    tps=$(num tokens_per_second "$J")
    check "$cfg: tokens/s = tokens / virtual" close_to "$tps" "$(awk -v v="$v" -v n=$N 'BEGIN { printf "%.9g", n / v }')"
    check "$cfg: recall in [0,1]" le "$(num prefetch_recall "$J")" 1
    check "$cfg: precision in [0,1]" le "$(num prefetch_precision "$J")" 1

    # The trace and the bound, recomputed.
    check "$cfg: trace lines" [ "$(wc -l < "$T/trace$run.jsonl")" -eq $((N * 4)) ]
    check "$cfg: trace line format" grep -q -x '{"pos": 0, "layer": 0, "experts": \[[0-9]*, [0-9]*\]}' "$T/trace$run.jsonl"
    bm=$(belady_awk "$T/trace$run.jsonl" "$slots" 16)
    check "$cfg: Belady misses from the trace $bm = reported $(num belady_misses "$J")" [ "$bm" = "$(num belady_misses "$J")" ]
    check "$cfg: Belady $bm <= LRU replay $(num lru_replay_misses "$J")" le "$bm" "$(num lru_replay_misses "$J")"
    check "$cfg: Belady bytes <= flash bytes read" le "$(num belady_flash_bytes "$J")" "$(num flash_bytes "$J")"
    if [ "$pol" = lru ] && [ "$pred" = none ]; then
        check "$cfg: Belady $bm <= runtime LRU misses" le "$bm" "$(num misses "$J")"
    fi
    bound=$(awk -v m="$bm" -v sb="$(num slot_bytes "$J")" -v bw="$(num flash_bandwidth "$J")" \
        -v lat="$(num flash_latency_ns "$J")" -v onbus="$(num flash_latency_on_bus "$J")" \
        -v pg="$(num flash_page_size "$J")" -v comp="$c" 'BEGIN {
            pages = int((sb + pg - 1) / pg)   # blobs are page-aligned in the image
            r = m * (pages * pg * 1e9 / bw + (onbus ? lat : 0)) + (!onbus && m > 0 ? lat : 0)
            r /= 1e9; printf "%.9g", (r > comp ? r : comp) }')
    check "$cfg: bound from the trace $bound = reported $(num bound_seconds "$J")" close_to "$bound" "$(num bound_seconds "$J")"
    nll=$(num nll_bits_per_token "$J")
    if [ -z "$nll_ref" ]; then nll_ref=$nll; fi
    check "$cfg: loss $nll independent of the cache ($nll_ref)" [ "$nll" = "$nll_ref" ]
done

# More slots never make Belady worse; enough slots leave only compulsory misses.
"$MF" bench "$T/tiny.img" --text "$T/val.txt" --tokens $N --slots 64 --policy lru --json --trace-out "$T/all.jsonl" >"$T/all.json" 2>/dev/null
distinct=$(sed 's/.*"layer": \([0-9]*\), "experts": \[\(.*\)\]}/\1 \2/; s/,//g' "$T/all.jsonl" |
    awk '{ for (i = 2; i <= NF; i++) print $1 * 16 + $i }' | sort -u | wc -l)
check "64 slots: Belady misses = distinct experts ($distinct)" [ "$(num belady_misses "$T/all.json")" = "$distinct" ]
check "64 slots: LRU misses = distinct experts" [ "$(num misses "$T/all.json")" = "$distinct" ]

# The oracle predictor (a reference): every chosen expert was predicted,
# none when every guess is wrong, and the loss does not change.
for acc in 1 0; do
    J="$T/oracle$acc.json"
    if "$MF" bench "$T/tiny.img" --text "$T/val.txt" --tokens $N --slots 8 --policy edgemoe \
        --predictor oracle --oracle-accuracy $acc --json >"$J" 2>"$T/err"; then
        check "oracle $acc: predictor field" grep -q '"predictor": "oracle"' "$J"
        check "oracle $acc: accuracy field $(num oracle_accuracy "$J")" close_to "$(num oracle_accuracy "$J")" $acc
        check "oracle $acc: predictor recall $(num predictor_recall "$J")" close_to "$(num predictor_recall "$J")" $acc
        check "oracle $acc: loss $(num nll_bits_per_token "$J") independent ($nll_ref)" [ "$(num nll_bits_per_token "$J")" = "$nll_ref" ]
    else
        bad "bench --predictor oracle --oracle-accuracy $acc failed: $(cat "$T/err")"
    fi
done
"$MF" bench "$T/tiny.img" --text "$T/val.txt" --predictor oracle --oracle-accuracy 1.5 >/dev/null 2>"$T/e6"; rc=$?
check "--oracle-accuracy 1.5 fails" [ $rc -ne 0 ] && check "--oracle-accuracy message" grep -q -- "--oracle-accuracy: expected a probability" "$T/e6"
"$MF" generate "$T/tiny.img" --prompt R --tokens 2 --predictor oracle >/dev/null 2>"$T/e7"; rc=$?
check "generate --predictor oracle fails" [ $rc -ne 0 ] && check "oracle outside bench message" grep -q "only .moeflash bench. records" "$T/e7"

# --no-stream: no expert computed while it streams in, the same reads
# (LRU, no predictor), the same loss, more stall.
if "$MF" bench "$T/tiny.img" --text "$T/val.txt" --tokens $N --slots 4 --policy lru --json \
        >"$T/st1.json" 2>"$T/err" &&
   "$MF" bench "$T/tiny.img" --text "$T/val.txt" --tokens $N --slots 4 --policy lru --no-stream --json \
        >"$T/st0.json" 2>>"$T/err"; then
    check "streaming: experts streamed ($(num streamed_experts "$T/st1.json"))" le 1 "$(num streamed_experts "$T/st1.json")"
    check "--no-stream: none streamed" [ "$(num streamed_experts "$T/st0.json")" = 0 ]
    check "--no-stream: same flash bytes" [ "$(num flash_bytes "$T/st0.json")" = "$(num flash_bytes "$T/st1.json")" ]
    check "--no-stream: same loss" [ "$(num nll_bits_per_token "$T/st0.json")" = "$(num nll_bits_per_token "$T/st1.json")" ]
    check "--no-stream: more stall" le "$(num stall_seconds "$T/st1.json")" "$(num stall_seconds "$T/st0.json")"
else
    bad "bench --no-stream failed: $(cat "$T/err")"
fi

# Argument errors.
"$MF" bench "$T/tiny.img" --text "$T/val.txt" --profile no-such-board >/dev/null 2>"$T/e1"; rc=$?
check "unknown profile exits 2" [ $rc -eq 2 ] && check "unknown profile message" grep -q "unknown profile" "$T/e1"
"$MF" bench "$T/tiny.img" >/dev/null 2>"$T/e2"; rc=$?
check "missing --text exits 2" [ $rc -eq 2 ]
"$MF" bench "$T/tiny.img" --text "$T/val.txt" --expert-ram 1000 >/dev/null 2>"$T/e3"; rc=$?
check "too little expert RAM fails" [ $rc -ne 0 ] && check "expert RAM message" grep -q "top_k" "$T/e3"
"$MF" bench "$T/tiny.img" --text "$T/val.txt" --slots 1 >/dev/null 2>"$T/e4"; rc=$?
check "--slots below top_k fails" [ $rc -ne 0 ] && check "--slots message names the option" grep -q -- "--slots 1 is fewer than the model's top_k" "$T/e4"
"$MF" bench "$T/tiny.img" --text "$T/val.txt" --context 100000 >/dev/null 2>"$T/e5"; rc=$?
check "--context above max_seq fails" [ $rc -ne 0 ] && check "--context message names the option" grep -q -- "--context 100000 exceeds" "$T/e5"
"$MF" bench "$T/tiny.img" --text "$T/val.txt" --policy bogus >/dev/null 2>&1; rc=$?
check "bad policy exits 2" [ $rc -eq 2 ]
# Every field fill() puts is printed: host_seconds is the last one (a
# fixed-size record once dropped it silently).
"$MF" bench "$T/tiny.img" --text "$T/val.txt" --tokens 4 --json > "$T/last.json" 2>/dev/null
check "json ends with host_seconds" grep -q '"host_seconds": [0-9.e+-]*}$' "$T/last.json"
check "csv header ends with host_seconds" sh -c '"$1" bench --csv-header | grep -q "host_seconds\$"' _ "$MF"
check "csv header matches a csv row" [ "$("$MF" bench --csv-header | tr ',' '\n' | wc -l)" -eq \
    "$("$MF" bench "$T/tiny.img" --text "$T/val.txt" --tokens 4 --csv | tr ',' '\n' | wc -l)" ]

echo "bench_cli: $pass passed, $fail failed"
[ $fail -eq 0 ]
