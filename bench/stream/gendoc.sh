#!/bin/sh
# bench/stream/gendoc.sh [DOC] [RESULTS]: refreshes the generated blocks of
# docs/benchmarks.md (between <!-- generated:NAME --> and <!-- end:NAME -->)
# from bench/results/stream_<profile>.md, which bench/stream/plot printed
# from the runs. Numbers are copied, never typed.
set -eu
DOC=${1:-docs/benchmarks.md}
RES=${2:-bench/results}
PROFILES=${PROFILES:-"mcu-qspi mcu-octal mcu-m33-qspi sbc-sdcard phone-ufs"}
T=$(mktemp -d "${TMPDIR:-/tmp}/mfdoc.XXXXXX")
trap 'rm -rf "$T"' EXIT INT TERM

{
    sed -n 1,2p "$RES/stream_$(echo $PROFILES | cut -d' ' -f1).md"
    for p in $PROFILES; do awk 'NR > 2 && /^\|/ { print; next } NR > 2 { exit }' "$RES/stream_$p.md"; done
} >"$T/summary"
{
    echo "| profile | expert RAM | tokens/s | x none | efficiency | flash bytes / Belady |"
    echo "|---|---|---|---|---|---|"
    for p in $PROFILES; do
        awk -v p="$p" '/^\*\*/ { match($0, /RAM [0-9.]+%/); fr = substr($0, RSTART + 4, RLENGTH - 4) }
            /^\| belady \|/ { split($0, c, "|"); printf "| %s | %s |%s|%s|%s|%s|\n", p, fr, c[3], c[4], c[5], c[7] }' \
            "$RES/stream_$p.md"
    done
} >"$T/oracle"
awk '/^\*\*mcu-qspi, expert RAM 25.0%/ { on = 1 } on && /^\*\*mcu-qspi, expert RAM 50/ { on = 0 } on' \
    "$RES/stream_mcu-qspi.md" | sed -e :a -e '/^\n*$/{$d;N;ba' -e '}' >"$T/qspi25"

awk -v dir="$T" '
    /^<!-- generated:/ { name = $0; sub(/^<!-- generated:/, "", name); sub(/[ -].*/, "", name)
                         print; while ((getline l < (dir "/" name)) > 0) print l; skip = 1; next }
    /^<!-- end:/ { skip = 0 }
    !skip' "$DOC" >"$T/doc"
cp "$T/doc" "$DOC"
echo "gendoc: refreshed $DOC from $RES" >&2
