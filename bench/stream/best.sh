#!/bin/sh
# bench/stream/best.sh: the "Every profile" table of docs/expert-cache.md,
# from the CSVs `make bench` and `make bench-q4` wrote. For each image,
# profile and headline expert RAM (12.5 / 25 / 50 %): the fastest
# configuration that does not know the future, its x none, efficiency,
# bytes over Belady's, recall and precision, and `lfu` and the Belady
# oracle for reference. Numbers are copied from the runs, never typed.
#   sh bench/stream/best.sh [RESULTS]        (RESULTS = bench/results)
set -eu
RES=${1:-bench/results}
PROFILES=${PROFILES:-"mcu-qspi mcu-octal mcu-m33-qspi sbc-sdcard phone-ufs"}
echo "| image | profile | expert RAM | best online | tokens/s | x none | efficiency | bytes / Belady | recall | precision | lfu tokens/s | belady tokens/s (eff) |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
for img in f32 q4; do
    dir=$RES
    name=f32
    [ $img = q4 ] && { dir=$RES/q4; name=q4/q8; }
    for p in $PROFILES; do
        csv=$dir/stream_$p.csv
        [ -f "$csv" ] || { echo "best.sh: $csv missing (make bench / make bench-q4)" >&2; exit 1; }
        awk -F, -v img="$name" -v prof="$p" '
            NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
            $c["sweep"] != "headline" { next }
            { f = $c["expert_ram_fraction"]; pol = $c["policy"]; pred = $c["predictor"]
              tps = $c["tokens_per_second"] + 0; fr[f] = 1
              if (pol == "none") none[f] = tps
              if (pol == "lfu" && pred == "none") lfu[f] = tps
              if (pol == "belady") { bel[f] = tps; beleff[f] = $c["efficiency"] }
              if (pol == "belady" || pol == "none" || pred == "oracle") next
              if (!(f in best) || tps > best[f]) {
                  best[f] = tps
                  label = pol (pred == "none" ? "" : "+" pred)
                  if ($c["prefetch_min"] + 0 > 0) label = label " (min p " $c["prefetch_min"] + 0 ")"
                  lab[f] = label; eff[f] = $c["efficiency"]; ob[f] = $c["flash_bytes_over_belady"]
                  rec[f] = $c["prefetch_recall"]
                  prec[f] = pred == "none" ? "-" : sprintf("%.3f", $c["prefetch_precision"])
              } }
            END { n = split("0.125 0.25 0.5", fs, " ")
                  for (k = 1; k <= n; k++) { f = fs[k]; if (!(f in best)) continue
                      printf "| %s | %s | %s%% | %s | %.2f | %.2f | %.3f | %.2f | %.3f | %s | %.2f | %.2f (%.3f) |\n",
                          img, prof, f * 100, lab[f], best[f], best[f] / none[f], eff[f], ob[f], rec[f],
                          prec[f], lfu[f], bel[f], beleff[f] } }' "$csv"
    done
done
