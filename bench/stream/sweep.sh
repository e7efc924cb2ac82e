#!/bin/sh
# bench/stream/sweep.sh: the streaming sweep behind `make bench`.
#
#   sweep.sh MOEFLASH PLOT IMG TEXT OUTDIR
#
# For every board profile ($PROFILES), runs `moeflash bench` over
#   - wide:     expert RAM from top_k slots up to all experts ($SLOTS, in
#               slots; clipped to the image) x every configuration ($CONFIGS:
#               policy/predictor[/prefetch-min]),
#               $WIDE_TOKENS tokens each;
#   - headline: 12.5 %, 25 % and 50 % of the image's expert bytes x every
#               configuration, $HEAD_TOKENS tokens each;
# $JOBS runs at a time, and writes OUTDIR/stream_<profile>.csv (header of
# `moeflash bench --csv-header` with a leading `sweep` column), then
# OUTDIR/stream_<profile>.svg and OUTDIR/stream_<profile>.md (headline tables)
# with PLOT ($MODEL_NAME names the model in the plot titles). Progress goes
# to stderr. Every number comes from the runs.
set -eu
MF=$1 PLOT=$2 IMG=$3 TEXT=$4 OUT=$5
PROFILES=${PROFILES:-"mcu-qspi mcu-octal mcu-m33-qspi sbc-sdcard phone-ufs"}
JOBS=${JOBS:-2}
WIDE_TOKENS=${WIDE_TOKENS:-256}
HEAD_TOKENS=${HEAD_TOKENS:-1024}
MODEL_NAME=${MODEL_NAME:-tiny model}
SLOTS=${SLOTS:-"2 3 4 6 8 12 16 24 32 48 64"}
CONFIGS=${CONFIGS:-"none/none lru/none lfu/none edgemoe/none lru/cooc lru/lookahead lru/combined lfu/lookahead edgemoe/lookahead edgemoe/combined lfu/combined/0.5 belady/none"}

TMP=$(mktemp -d "${TMPDIR:-/tmp}/mfsweep.XXXXXX")
trap 'rm -rf "$TMP"' EXIT INT TERM
mkdir -p "$OUT"
# A private copy of the binary: a concurrent `make` may relink the original.
cp "$MF" "$TMP/moeflash"
MF=$TMP/moeflash
export MF IMG TEXT

# The image's geometry from inspect --json is not needed: bench reports it.
probe=$("$MF" bench "$IMG" --text "$TEXT" --tokens 1 --profile mcu-qspi --csv)
hdr=$("$MF" bench --csv-header)
field() { # field NAME CSVROW
    echo "$hdr" | tr ',' '\n' | grep -n -x "$1" | cut -d: -f1 | {
        read -r i; echo "$2" | cut -d, -f"$i"; }
}
SLOT_BYTES=$(field slot_bytes "$probe")
TOTAL=$(field expert_bytes_total "$probe")
MAXSLOTS=$((TOTAL / SLOT_BYTES))
echo "sweep: $TOTAL expert bytes, $SLOT_BYTES per slot, up to $MAXSLOTS slots" >&2

for prof in $PROFILES; do
    jobs="$TMP/jobs.$prof"
    : >"$jobs"
    for cfg in $CONFIGS; do
        # policy/predictor[/prefetch-min]
        pol=$(echo "$cfg" | cut -d/ -f1) pred=$(echo "$cfg" | cut -d/ -f2)
        pmin=$(echo "$cfg" | cut -s -d/ -f3)
        extra=""
        [ -z "$pmin" ] || extra="--prefetch-min $pmin"
        for s in $SLOTS; do
            [ "$s" -le "$MAXSLOTS" ] || continue
            echo "wide $WIDE_TOKENS --slots $s --policy $pol --predictor $pred $extra" >>"$jobs"
        done
        for pct in 125 250 500; do
            ram=$((TOTAL * pct / 1000))
            echo "headline $HEAD_TOKENS --expert-ram $ram --policy $pol --predictor $pred $extra" >>"$jobs"
        done
    done
    n=$(wc -l <"$jobs")
    echo "sweep: $prof: $n runs, $JOBS at a time" >&2
    t0=$(date +%s)
    i=0
    mkdir -p "$TMP/rows.$prof"
    # One run per line; each writes its row to its own file (order restored below).
    while read -r sweep tokens rest; do
        i=$((i + 1))
        printf '%s %s %s %s\n' "$i" "$sweep" "$tokens" "$rest"
    done <"$jobs" | PROF=$prof ROWS="$TMP/rows.$prof" N=$n xargs -P "$JOBS" -L 1 sh -c '
        i=$1 sweep=$2 tokens=$3; shift 3
        row=$("$MF" bench "$IMG" --text "$TEXT" --tokens "$tokens" --profile "$PROF" --csv "$@") ||
            { echo "sweep: FAILED: $PROF $*" >&2; exit 255; }
        echo "$sweep,$row" >"$ROWS/$(printf %05d "$i")"
        echo "sweep: $PROF [$i/$N] $sweep $tokens tokens $*" >&2
    ' sh
    csv="$OUT/stream_$prof.csv"
    echo "sweep,$hdr" >"$csv"
    cat "$TMP/rows.$prof"/* >>"$csv"
    echo "sweep: $prof done in $(($(date +%s) - t0)) s -> $csv" >&2
    "$PLOT" "$csv" "$OUT/stream_$prof.svg" \
        "moeflash, $MODEL_NAME, $prof: tokens/s vs expert RAM" \
        >"$OUT/stream_$prof.md"
    cat "$OUT/stream_$prof.md"
done
