#!/bin/sh
# convert --experts auto on the tiny model (calibration: training split):
#  - --avg-bits 3: every expert's bytes equal the size its encoding gives a
#    3 x 128 x 256 expert by the docs/encodings.md formula (computed here),
#    their sum is <= the budget 3/8 x 64 x 98304 bytes, the widths are mixed;
#  - --expert-budget BYTES: sum <= BYTES;
#  - ppl runs on the image and lies between the f32 image's and the
#    uniform-q2 image's on the same validation windows;
#  - usage errors: auto without --calib or budget, budget below all-q2.
BUILD=${BUILD:-build}
MF="$BUILD/moeflash"
M=models/tiny-shakespeare-moe
pass=0; fail=0
ok() { pass=$((pass + 1)); }
bad() { echo "FAIL quant_cli: $*"; fail=$((fail + 1)); }
check() { d=$1; shift; if "$@"; then ok; else bad "$d"; fi; }
T=$(mktemp -d /tmp/mf_qcli_XXXXXX)
trap 'rm -rf "$T"' EXIT

len=$(wc -c < tests/data/tinyshakespeare.txt)
off=$((len * 9 / 10))
head -c "$off" tests/data/tinyshakespeare.txt > "$T/train.txt"
tail -c +$((off + 1)) tests/data/tinyshakespeare.txt > "$T/val.txt"

# Expected blob size per encoding for rows x cols matrices, group 32:
# bytes per group of 32 = 2 + 32*bits/8.
size() { # size GROUP_BYTES -> bytes of gate+up [256,128] + down [128,256]
    echo $(( 2 * 256 * (128 / 32) * $1 + 128 * (256 / 32) * $1 ))
}
Q8=$(size 34); Q4=$(size 18); Q3=$(size 14); Q2=$(size 10)
W=$((3 * 128 * 256))            # weights per expert
BUDGET3=$((3 * W * 64 / 8))

if "$MF" convert $M "$T/a3.img" --resident f32 --experts auto --avg-bits 3 --calib "$T/train.txt" \
        --calib-windows 4 >/dev/null 2>"$T/conv.err"; then ok; else bad "convert auto: $(tail -1 "$T/conv.err")"; fi
"$MF" inspect "$T/a3.img" > "$T/insp.txt" 2>&1
check "inspect" [ -s "$T/insp.txt" ]
sum=$(awk -v q8=$Q8 -v q4=$Q4 -v q3=$Q3 -v q2=$Q2 '
    $1 == "layer" && $3 == "expert" {
        want = ($5 == "q8") ? q8 : ($5 == "q4") ? q4 : ($5 == "q3") ? q3 : ($5 == "q2") ? q2 : -1
        if ($6 != want) badsz++
        s += $6; n++ }
    END { if (badsz || n != 64) print -1; else print s }' "$T/insp.txt")
check "64 expert sizes match their encodings (got sum $sum)" [ "$sum" -gt 0 ]
check "expert bytes $sum <= budget $BUDGET3" [ "$sum" -le "$BUDGET3" ]
check "budget nearly used ($sum vs $BUDGET3)" [ $((BUDGET3 - sum)) -lt $((Q8 - Q2)) ]
nenc=$(awk '$1 == "layer" && $3 == "expert" { e[$5] = 1 } END { n = 0; for (k in e) n++; print n }' "$T/insp.txt")
check "mixed widths ($nenc encodings)" [ "$nenc" -ge 2 ]
check "inspect grid" grep -q "^expert encodings (layer x expert):" "$T/insp.txt"
check "inspect average bits" grep -q "average 3.000 bits per expert weight" "$T/insp.txt"

B=2600000
if "$MF" convert $M "$T/b.img" --experts auto --expert-budget $B --calib "$T/train.txt" --calib-windows 2 \
        >/dev/null 2>"$T/convb.err"; then ok; else bad "convert --expert-budget: $(tail -1 "$T/convb.err")"; fi
eb=$("$MF" inspect "$T/b.img" 2>/dev/null | sed -n 's/.*expert_bytes \([0-9]*\),.*/\1/p')
check "expert-budget respected ($eb <= $B)" [ -n "$eb" ] && [ "$eb" -le $B ]

"$MF" convert $M "$T/f32.img" --weights f32 >/dev/null 2>&1
"$MF" convert $M "$T/q2.img" --resident f32 --experts q2 >/dev/null 2>&1
p() { "$MF" ppl "$1" --text "$T/val.txt" --windows 6 --quiet 2>/dev/null | awk '{print $1}'; }
pf=$(p "$T/f32.img"); pa=$(p "$T/a3.img"); p2=$(p "$T/q2.img")
echo "quant_cli: 6 validation windows: f32 $pf, auto 3 bits $pa, uniform q2 $p2"
check "ppl ran ($pf $pa $p2)" [ -n "$pf" ] && [ -n "$pa" ] && [ -n "$p2" ]
check "f32 <= auto3 <= q2" awk -v f="$pf" -v a="$pa" -v q="$p2" 'BEGIN { exit !(f <= a + 1e-3 && a < q) }'

"$MF" convert $M "$T/x.img" --experts auto --avg-bits 3 >/dev/null 2>&1
check "auto without --calib is a usage error" [ $? -eq 2 ]
"$MF" convert $M "$T/x.img" --experts auto --calib "$T/train.txt" >/dev/null 2>&1
check "auto without a budget is a usage error" [ $? -eq 2 ]
"$MF" convert $M "$T/x.img" --experts auto --avg-bits 2 --calib "$T/train.txt" --calib-windows 1 >/dev/null 2>"$T/e.err"
check "budget below all-q2 fails" [ $? -eq 1 ] && grep -q "below" "$T/e.err"

echo "quant_cli: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
