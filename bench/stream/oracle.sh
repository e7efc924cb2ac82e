#!/bin/sh
# bench/stream/oracle.sh: the "perfect next-layer predictor" table of
# docs/expert-cache.md. For the f32 and q4/q8 images at 12.5 / 25 / 50 %
# of their expert bytes on mcu-qspi (first 1024 validation tokens), runs
# the best online configuration (edgemoe+combined), the next-layer oracle
# right with probability 0.75 / 0.9 / 1 under edgemoe, and lfu+oracle 1,
# belady+none and belady+oracle 1, and prints one markdown row each (x none
# is over --policy none at the same expert RAM). Numbers are printed by the
# runs, never typed. Needs `make bench` and `make bench-q4`'s images:
#   make build/bench/tiny-profiled.img build/bench/tiny-q4-profiled.img build/bench/valid.txt
#   sh bench/stream/oracle.sh > /tmp/oracle.md      (about a minute)
set -eu
B=${BUILD:-build}
MF="$B/moeflash"
TEXT="$B/bench/valid.txt"
field() { # json key -> value
    tr ',' '\n' | sed -n "s/^ *\"$1\": *//p" | head -n 1
}
run() { # image ram policy predictor accuracy -> json line
    "$MF" bench "$1" --text "$TEXT" --tokens 1024 --profile mcu-qspi --expert-ram "$2" \
        --policy "$3" --predictor "$4" --oracle-accuracy "$5" --json
}
echo "| image | expert RAM | configuration | tokens/s | x none | efficiency | bytes / Belady | recall |"
echo "|---|---|---|---|---|---|---|---|"
for img in f32 q4; do
    if [ $img = f32 ]; then file="$B/bench/tiny-profiled.img"; name=f32; total=25165824
    else file="$B/bench/tiny-q4-profiled.img"; name=q4/q8; total=3538944; fi
    [ -f "$file" ] || { echo "oracle.sh: $file missing (make bench / make bench-q4 builds it)" >&2; exit 1; }
    for frac in 12.5 25 50; do
        ram=$(awk -v t=$total -v f=$frac 'BEGIN { printf "%d", t * f / 100 }')
        base=$(run "$file" $ram none none 1 | field tokens_per_second)
        for cfg in "edgemoe combined 1" "edgemoe oracle 0.75" "edgemoe oracle 0.9" "edgemoe oracle 1" \
                   "lfu oracle 1" "belady none 1" "belady oracle 1"; do
            set -- $cfg
            j=$(run "$file" $ram $1 $2 $3)
            label="$1+$2"
            [ $2 = oracle ] && label="$label $3"
            echo "$j" | awk -v img=$name -v frac=$frac -v label="$label" -v base="$base" '
                { n = split($0, kv, ", \"")
                  for (i = 1; i <= n; i++) { split(kv[i], p, "\": "); gsub(/[{"]/, "", p[1]); v[p[1]] = p[2] } }
                END { printf "| %s | %s%% | %s | %.2f | %.2f | %.3f | %.2f | %.3f |\n", img, frac, label,
                      v["tokens_per_second"], v["tokens_per_second"] / base, v["efficiency"],
                      v["flash_bytes_over_belady"], v["prefetch_recall"] }'
        done
    done
done
