#!/bin/sh
# moeflash plan end to end on the tiny model:
#  - the slots it gives each configuration fit the budget and one more does
#    not: the arena `moeflash generate` reports for the same options is <=
#    --ram at those slots and > --ram at one slot more;
#  - each configuration's arena column is that arena;
#  - the tokens/s of the fastest configuration are those `moeflash bench`
#    reports for the same options (the same simulator, token by token);
#  - rows are ranked by tokens/s, `none` is the 1.00x baseline at top_k slots;
#  - too little RAM, refused and bad arguments exit non-zero with a message.
BUILD=${BUILD:-build}
MF="$BUILD/moeflash"
pass=0; fail=0
ok() { pass=$((pass + 1)); }
bad() { echo "FAIL plan_cli: $*"; fail=$((fail + 1)); }
check() { d=$1; shift; if "$@"; then ok; else bad "$d"; fi; }
le() { [ -n "$1" ] && [ -n "$2" ] && [ "$1" -le "$2" ]; } # integers, both given
gt() { [ -n "$1" ] && [ -n "$2" ] && [ "$1" -gt "$2" ]; }
T=$(mktemp -d /tmp/mf_plan_XXXXXX)
trap 'rm -rf "$T"' EXIT

if ! "$MF" convert models/tiny-shakespeare-moe "$T/tiny.img" >/dev/null 2>"$T/conv.err"; then
    bad "convert failed: $(cat "$T/conv.err")"
    echo "plan_cli: $pass passed, $fail failed"; exit 1
fi
len=$(wc -c < tests/data/tinyshakespeare.txt)
tail -c +$((len * 9 / 10 + 1)) tests/data/tinyshakespeare.txt | head -c 512 > "$T/val.txt"

RAM=4000000
OPTS="--context 256 --kv q8"
# shellcheck disable=SC2086
"$MF" plan "$T/tiny.img" --ram $RAM $OPTS --text "$T/val.txt" --tokens 48 >"$T/plan.out" 2>"$T/plan.err"
check "plan exits 0 ($(cat "$T/plan.err"))" [ $? -eq 0 ]
check "progress on stderr, one line per configuration" [ "$(grep -c '^plan: \[[1-7]/7\]' "$T/plan.err")" -eq 7 ]
# rows: NAME SLOTS PCT ARENA TOK/S XNONE BYTES STALL
awk '$1 ~ /^(none|lru|lfu|edgemoe|lfu\+lookahead|edgemoe\+lookahead|edgemoe\+combined)$/ && NF == 8' \
    "$T/plan.out" >"$T/rows"
check "seven configuration rows" [ "$(wc -l < "$T/rows")" -eq 7 ]
check "ranked by tokens/s" awk 'NR > 1 && $5 + 0 > prev + 0 { exit 1 } { prev = $5 }' "$T/rows"
check "none: top_k slots, 1.00x" awk '$1 == "none" { f = ($2 == 2 && $6 == "1.00") } END { exit !f }' "$T/rows"
check "the unprofiled image is said to be" grep -q 'has no profile' "$T/plan.out"

arena_of() { # arena_of SLOTS POLICY PREDICTOR -> the arena generate lays out
    # shellcheck disable=SC2086
    "$MF" generate "$T/tiny.img" --prompt R --tokens 1 --slots "$1" --policy "$2" --predictor "$3" \
        $OPTS 2>&1 >/dev/null | sed -n 's/.*arena \([0-9]*\) bytes.*/\1/p'
}
for cfg in lfu:none edgemoe+combined:combined lfu+lookahead:lookahead; do
    name=${cfg%%:*}; pred=${cfg#*:}; pol=${name%%+*}
    slots=$(awk -v n="$name" '$1 == n { print $2 }' "$T/rows")
    col=$(awk -v n="$name" '$1 == n { print $4 }' "$T/rows")
    a=$(arena_of "$slots" "$pol" "$pred")
    a1=$(arena_of $((slots + 1)) "$pol" "$pred")
    check "$name: $slots slots fit ($a <= $RAM)" le "$a" $RAM
    check "$name: one slot more does not ($a1 > $RAM)" gt "$a1" $RAM
    check "$name: the arena column is generate's ($col = $a)" [ "$col" = "$a" ]
done

# An arena of exactly the bytes N slots take holds N slots (and, at the
# bytes of top_k slots, top_k).
a6=$(arena_of 6 lfu none)
# shellcheck disable=SC2086
"$MF" plan "$T/tiny.img" --ram "$a6" $OPTS >"$T/eq.out" 2>"$T/eq.err"
check "--ram $a6, the arena of 6 lfu slots: exit status ($(cat "$T/eq.err"))" [ $? -eq 0 ]
check "--ram $a6, the arena of 6 lfu slots: lfu gets 6 slots, arena $a6" \
    awk -v a="$a6" '$1 == "lfu" { f = ($2 == 6 && $4 == a) } END { exit !f }' "$T/eq.out"
a2=$(arena_of 2 none none)
# shellcheck disable=SC2086
"$MF" plan "$T/tiny.img" --ram "$a2" $OPTS >"$T/eq.out" 2>"$T/eq.err"
check "--ram $a2, the arena of top_k slots: exit status ($(cat "$T/eq.err"))" [ $? -eq 0 ]
check "--ram $a2, the arena of top_k slots: none gets 2" \
    awk -v a="$a2" '$1 == "none" { f = ($2 == 2 && $4 == a) } END { exit !f }' "$T/eq.out"
# RAM for everything: every expert of the 4 x 16 gets a slot, 100%.
# shellcheck disable=SC2086
"$MF" plan "$T/tiny.img" --ram 100000000 $OPTS >"$T/all.out" 2>/dev/null
check "--ram 100000000: lfu gets all 64 experts, 100.0%" \
    awk '$1 == "lfu" { f = ($2 == 64 && $3 == "100.0%") } END { exit !f }' "$T/all.out"
# The percentage column is slots / 64.
check "% experts is slots / 64" \
    awk '{ p = sprintf("%.1f%%", 100 * $2 / 64); if ($3 != p) bad = 1 } END { exit bad }' "$T/rows"
# x none: tokens/s over none's (two decimals).
check "x none is tokens/s / none's tokens/s" \
    awk 'NR == FNR { if ($1 == "none") n = $5; next }
         { d = $6 - $5 / n; if (d < 0) d = -d; if (!(n > 0) || d > 0.006) bad = 1 } END { exit bad }' "$T/rows" "$T/rows"

best=$(sed -n 's/^fastest: \(.*\), with the other.*/\1/p' "$T/plan.out")
check "a fastest line ($best)" [ -n "$best" ]
# shellcheck disable=SC2086
"$MF" bench "$T/tiny.img" --text "$T/val.txt" --tokens 48 $OPTS $best --json >"$T/bench.json" 2>/dev/null
tps=$(grep -o '"tokens_per_second": *[0-9.eE+-]*' "$T/bench.json" | sed 's/.*: *//')
first=$(head -n 1 "$T/rows" | awk '{ print $5 }')
check "the fastest row's tokens/s ($first) is bench's ($tps)" \
    awk -v a="$tps" -v b="$first" 'BEGIN { exit !(sprintf("%.2f", a) == b) }'

# Without --text: the layout alone, and the hint of what q8 KV would free.
"$MF" plan "$T/tiny.img" --ram 6000000 --context 256 >"$T/layout.out" 2>&1
check "layout only exits 0" [ $? -eq 0 ]
check "layout only: no tokens/s column" sh -c "! grep -q 'tokens/s' '$T/layout.out'"
check "layout only: the rows in the order of the sweep" \
    [ "$(awk '$1 ~ /^(none|lru|lfu|edgemoe|lfu\+lookahead|edgemoe\+lookahead|edgemoe\+combined)$/ { printf "%s ", $1 }' "$T/layout.out")" = \
      "none lru lfu edgemoe lfu+lookahead edgemoe+lookahead edgemoe+combined " ]
q8=$(sed -n 's/^with --kv q8.*up to \([0-9]*\) slots/\1/p' "$T/layout.out")
f32=$(awk '$1 == "lfu" { print $2 }' "$T/layout.out")
check "q8 KV frees slots ($f32 -> $q8)" gt "$q8" "$f32"

# Too little RAM: what it would take.
"$MF" plan "$T/tiny.img" --ram 100000 >/dev/null 2>"$T/small.err"
check "too little RAM exits 1" [ $? -eq 1 ]
check "too little RAM says what is needed" grep -q 'do not hold even top_k = 2 slots: the arena needs' "$T/small.err"

expect_rc() { # expect_rc RC DESC ARGS...
    want=$1; d=$2; shift 2
    "$MF" plan "$@" >/dev/null 2>"$T/err"
    rc=$?
    check "$d exits $want (got $rc)" [ $rc -eq "$want" ]
    check "$d prints a message" [ -s "$T/err" ]
}
expect_rc 2 "--slots" "$T/tiny.img" --ram 4000000 --slots 4
expect_rc 2 "--policy" "$T/tiny.img" --ram 4000000 --policy lru
expect_rc 2 "no --ram" "$T/tiny.img"
expect_rc 2 "--ram 0" "$T/tiny.img" --ram 0
expect_rc 2 "--ram x" "$T/tiny.img" --ram 12x
expect_rc 2 "unknown profile" "$T/tiny.img" --ram 4000000 --profile nope
expect_rc 1 "missing image" "$T/none.img" --ram 4000000
expect_rc 1 "missing text" "$T/tiny.img" --ram 4000000 --text "$T/none.txt"
expect_rc 1 "context beyond max_seq" "$T/tiny.img" --ram 4000000 --context 100000

echo "plan_cli: $pass passed, $fail failed"
[ $fail -eq 0 ]
