#!/bin/sh
# The run commands of build/moeflash end to end on the tiny model:
#  - ppl of the f32 image over the validation split (bytes from int(len*0.9)
#    of tests/data/tinyshakespeare.txt) within 0.1% of golden.json's
#    val_bits_per_byte_fp32, over golden's number of windows;
#  - generate writes exactly N bytes, is deterministic for a seed, and does
#    not depend on the number of expert slots;
#  - generate --slide continues as a plain run of the kept window, also on
#    a model with a BOS token (--ids, --print-ids);
#  - trace writes the three arrays;
#  - bad arguments and bad files give a non-zero exit and a message;
#  - every command's --help and -h print its usage on stdout and exit 0.
BUILD=${BUILD:-build}
MF="$BUILD/moeflash"
GOLDEN=models/tiny-shakespeare-moe/golden.json
pass=0; fail=0
ok() { pass=$((pass + 1)); }
bad() { echo "FAIL cli_run: $*"; fail=$((fail + 1)); }
check() { # check "description" command...
    d=$1; shift
    if "$@"; then ok; else bad "$d"; fi
}
T=$(mktemp -d /tmp/mf_cli_XXXXXX)
trap 'rm -rf "$T"' EXIT

if ! "$MF" convert models/tiny-shakespeare-moe "$T/tiny.img" --weights f32 >/dev/null 2>"$T/conv.err"; then
    bad "convert failed: $(cat "$T/conv.err")"
    echo "cli_run: $pass passed, $fail failed"; exit 1
fi

# Validation split.
len=$(wc -c < tests/data/tinyshakespeare.txt)
off=$((len * 9 / 10))
tail -c +$((off + 1)) tests/data/tinyshakespeare.txt > "$T/val.txt"
check "validation split size" [ "$(wc -c < "$T/val.txt")" -eq $((len - off)) ]

want=$(grep -o '"val_bits_per_byte_fp32": *[0-9.eE+-]*' "$GOLDEN" | sed 's/.*: *//')
windows=$(grep -o '"val_windows": *[0-9]*' "$GOLDEN" | sed 's/.*: *//')
check "golden figures found" [ -n "$want" ] && [ -n "$windows" ]
start=$(date +%s)
out=$("$MF" ppl "$T/tiny.img" --text "$T/val.txt" --window 256 --quiet 2>"$T/ppl.err")
rc=$?
echo "ppl: $out ($(( $(date +%s) - start )) s; golden $want)"
check "ppl exit status $rc: $(cat "$T/ppl.err")" [ $rc -eq 0 ]
got=$(echo "$out" | awk '{print $1}')
check "ppl $got not within 0.1% of golden $want" \
    awk -v g="$got" -v w="$want" 'BEGIN { d = g - w; if (d < 0) d = -d; exit !(g != "" && d <= 0.001 * w) }'
check "ppl windows: $out (want $windows)" sh -c "echo '$out' | grep -q '($windows windows'"
predictions=$(grep -o '"val_predictions": *[0-9]*' "$GOLDEN" | sed 's/.*: *//')
check "ppl predictions: $out (want golden's $predictions)" \
    sh -c "echo '$out' | grep -q '($windows windows of 256, $predictions predictions)'"

# ppl by the protocol, against golden.json's float64 logits: the bytes of
# the case "First Citizen:..." (61 tokens) in windows of 30 are two windows
# (0..29, 30..59; the tail, byte 60, dropped), each scored from an empty
# context on its 29 next-byte predictions. The first window's figure is
# the reference's: -log2 softmax(logits[i])[tokens[i + 1]], i < 29, averaged.
tr '{' '\n' < "$GOLDEN" | grep '^"prompt": "First Citizen' > "$T/case"
sed 's/.*"tokens": \[\([0-9, ]*\)\].*/\1/' "$T/case" | tr -d ',' > "$T/case.ids"
sed 's/.*"logits": \[\[//; s/\]\].*//; s/\], \[/\n/g' "$T/case" > "$T/case.logits"
awk '{ for (i = 1; i <= NF; i++) printf "%c", $i }' "$T/case.ids" > "$T/case.txt"
check "golden case: 61 bytes and 61 rows of logits" \
    [ "$(wc -c < "$T/case.txt")" -eq 61 -a "$(wc -l < "$T/case.logits")" -eq 61 ]
ref=$(awk 'NR == FNR { split($0, t, " "); next }
    FNR < 30 { m = -1e300; for (i = 1; i <= NF; i++) if ($i + 0 > m) m = $i + 0
        z = 0; for (i = 1; i <= NF; i++) z += exp($i - m)
        nats += log(z) + m - $(t[FNR + 1] + 1) }
    END { printf "%.6f", nats / 29 / log(2) }' "$T/case.ids" FS=', ' "$T/case.logits")
ppl1=$("$MF" ppl "$T/tiny.img" --text "$T/case.txt" --window 30 --windows 1 --quiet 2>&1)
check "ppl of the first window of 30: '$ppl1', want golden's $ref bits/byte over 29 predictions" \
    sh -c "echo '$ppl1' | grep -q '(1 windows of 30, 29 predictions)\$' &&
        awk -v g='${ppl1%% *}' -v w='$ref' 'BEGIN { d = g - w; exit !(g != \"\" && d < 1e-3 && d > -1e-3) }'"
head -c 30 "$T/case.txt" > "$T/case1.txt"; tail -c +31 "$T/case.txt" | head -c 30 > "$T/case2.txt"
pa=$("$MF" ppl "$T/tiny.img" --text "$T/case1.txt" --window 30 --quiet 2>/dev/null | awk '{ print $1 }')
pb=$("$MF" ppl "$T/tiny.img" --text "$T/case2.txt" --window 30 --quiet 2>/dev/null | awk '{ print $1 }')
ppl2=$("$MF" ppl "$T/tiny.img" --text "$T/case.txt" --window 30 --quiet 2>&1)
check "ppl of two windows of 30: '$ppl2', want the mean of each window's alone ($pa, $pb), 58 predictions" \
    sh -c "echo '$ppl2' | grep -q '(2 windows of 30, 58 predictions)\$' &&
        awk -v g='${ppl2%% *}' -v a='$pa' -v b='$pb' 'BEGIN { d = g - (a + b) / 2; exit !(a != \"\" && b != \"\" && d < 2e-6 && d > -2e-6) }'"
ppl9=$("$MF" ppl "$T/tiny.img" --text "$T/case.txt" --window 30 --windows 9 --quiet 2>&1)
check "ppl --windows 9 of a text of 2 windows: '$ppl9', want '$ppl2'" [ "$ppl9" = "$ppl2" ]

# generate: exactly N bytes, greedy by default, deterministic with a seed.
prompt=$(printf 'ROMEO:\nx'); prompt=${prompt%x}
"$MF" generate "$T/tiny.img" --prompt "$prompt" --tokens 50 > "$T/g1" 2>"$T/g.err"
check "generate exit status: $(cat "$T/g.err")" [ $? -eq 0 ]
check "generate wrote $(wc -c < "$T/g1") bytes, not 50" [ "$(wc -c < "$T/g1")" -eq 50 ]
"$MF" generate "$T/tiny.img" --prompt "$prompt" --tokens 50 --slots 64 > "$T/g2" 2>/dev/null
check "greedy output depends on the slot count" cmp -s "$T/g1" "$T/g2"
"$MF" generate "$T/tiny.img" --prompt "$prompt" --tokens 50 --expert-ram 2000000 > "$T/g2" 2>/dev/null
check "greedy output depends on --expert-ram" cmp -s "$T/g1" "$T/g2"
"$MF" generate "$T/tiny.img" --prompt "$prompt" --tokens 64 --temperature 0.8 --top-p 0.95 --seed 7 > "$T/s1" 2>/dev/null
"$MF" generate "$T/tiny.img" --prompt "$prompt" --tokens 64 --temperature 0.8 --top-p 0.95 --seed 7 > "$T/s2" 2>/dev/null
"$MF" generate "$T/tiny.img" --prompt "$prompt" --tokens 64 --temperature 0.8 --top-p 0.95 --seed 8 > "$T/s3" 2>/dev/null
check "sampled output is not 64 bytes" [ "$(wc -c < "$T/s1")" -eq 64 ]
check "same seed, different output" cmp -s "$T/s1" "$T/s2"
check "different seeds, same output" sh -c "! cmp -s '$T/s1' '$T/s3'"
"$MF" generate "$T/tiny.img" --prompt "$prompt" --tokens 0 > "$T/g0" 2>/dev/null
check "--tokens 0 writes nothing" [ $? -eq 0 ] && [ ! -s "$T/g0" ]

# boards/host/minimal.c, the API on one page, prints generate's text.
"$BUILD/minimal" "$T/tiny.img" "$prompt" 50 > "$T/min" 2>"$T/min.err"
check "build/minimal exit status: $(cat "$T/min.err")" [ $? -eq 0 ]
check "build/minimal's text differs from generate's" cmp -s "$T/min" "$T/g1"
"$BUILD/minimal" "$T/nonexistent.img" x 1 > "$T/min" 2>"$T/min.err"
check "build/minimal on a missing file: want exit 1 and a message" \
    sh -c "[ $? -eq 1 ] && grep -q 'cannot open' '$T/min.err'"

# generate --slide: past the context by starting it again from the last
# KEEP tokens. The tiny model's tokens are its bytes, so the continuation
# after each slide must equal a plain run prompted with those KEEP bytes.
# A short window, so that a window one byte off changes the greedy text:
# context 16, KEEP 4, prompt 7 bytes. The first slide comes with byte 17 of
# prompt + output (the window is bytes 14..17), then every 13 bytes.
"$MF" generate "$T/tiny.img" --prompt "$prompt" --tokens 70 --context 16 --slide 4 \
    > "$T/sl" 2>"$T/sl.err"
check "generate --slide exit status: $(cat "$T/sl.err")" [ $? -eq 0 ]
check "generate --slide wrote $(wc -c < "$T/sl") bytes, not 70" [ "$(wc -c < "$T/sl")" -eq 70 ]
check "generate --slide: no 'context slid 5 times' in: $(cat "$T/sl.err")" grep -q 'context slid 5 times' "$T/sl.err"
{ printf '%s' "$prompt"; cat "$T/sl"; } > "$T/seq"
"$MF" generate "$T/tiny.img" --prompt "$prompt" --tokens 10 --context 16 > "$T/g10" 2>/dev/null
check "generate --slide: before the first slide, not the plain run's text" \
    sh -c "head -c 10 '$T/sl' | cmp -s - '$T/g10'"
for w in 14 27 40 53; do  # 1-based first byte of each window
    win=$(tail -c +$w "$T/seq" | head -c 4; printf x); win=${win%x}
    "$MF" generate "$T/tiny.img" --prompt "$win" --tokens 13 --context 16 > "$T/gw" 2>/dev/null
    check "generate --slide: after the slide at byte $((w + 3)), not the text of a run prompted with bytes $w..$((w + 3))" \
        sh -c "tail -c +$((w + 4)) '$T/seq' | head -c 13 | cmp -s - '$T/gw'"
done

# A prompt that fills the context is allowed with --slide: the first token
# is that of a plain run of the prompt, then the context slides to the
# last 4 bytes (15, 16 of the prompt and the new byte, ... : bytes 14..17).
full=$(head -c 16 tests/data/tinyshakespeare.txt; printf x); full=${full%x}
"$MF" generate "$T/tiny.img" --prompt "$full" --tokens 5 --context 16 --slide 4 > "$T/fs" 2>"$T/fs.err"
check "generate --slide, a prompt of the whole context: exit status: $(cat "$T/fs.err")" [ $? -eq 0 ]
"$MF" generate "$T/tiny.img" --prompt "$full" --tokens 1 --context 16 > "$T/f1" 2>/dev/null
check "generate --slide, a prompt of the whole context: the first byte is not the plain run's" \
    sh -c "head -c 1 '$T/fs' | cmp -s - '$T/f1'"
{ printf '%s' "$full"; cat "$T/fs"; } > "$T/fseq"
win=$(tail -c +14 "$T/fseq" | head -c 4; printf x); win=${win%x}
"$MF" generate "$T/tiny.img" --prompt "$win" --tokens 4 --context 16 > "$T/fw" 2>/dev/null
check "generate --slide, a prompt of the whole context: after the slide, not the run of bytes 14..17" \
    sh -c "tail -c +2 '$T/fs' | cmp -s - '$T/fw'"

# generate --slide on a model with a BOS token: the weights of
# small-qwen3-moe-bpe with the SentencePiece tokenizer of
# tok-sentencepiece-hf, whose post-processor puts <s> (id 1) first. Token
# ids (--print-ids) rather than bytes, as a SentencePiece token is not a
# byte. After a slide the model must see <s> and the last KEEP tokens, so
# the continuation must equal a plain run given those ids (--ids).
mkdir "$T/bos"
for f in config.json model.safetensors.index.json model-00001-of-00003.safetensors \
         model-00002-of-00003.safetensors model-00003-of-00003.safetensors; do
    ln -s "$PWD/tests/data/small-qwen3-moe-bpe/$f" "$T/bos/$f"
done
ln -s "$PWD/tests/data/tok-sentencepiece-hf/tokenizer.json" "$T/bos/tokenizer.json"
"$MF" convert "$T/bos" "$T/bos.img" --weights q8 >/dev/null 2>"$T/bos.err"
check "convert with a BOS tokenizer: $(cat "$T/bos.err")" [ $? -eq 0 ]
# inspect names the tokenizer's BOS and end-of-sequence ids (--eos 2: </s>)
"$MF" convert "$T/bos" "$T/bos2.img" --weights q8 --eos 2 >/dev/null 2>&1
"$MF" inspect "$T/bos2.img" > "$T/insp" 2>&1
check "inspect: no SentencePiece tokenizer line with BOS 1 <s> and end of sequence 2 </s>: $(grep tokenizer "$T/insp")" \
    grep -qx 'tokenizer: SentencePiece-style BPE, 1024 tokens, [0-9]* merges, 3 added tokens; BOS 1 "<s>"; end of sequence: 2 "</s>"' "$T/insp"
"$MF" inspect "$T/bos2.img" --json > "$T/insp" 2>&1
check "inspect --json: no tokenizer object with bos 1 and eos [2]" \
    grep -q '"tokenizer": {"kind": "char_bpe", "vocab": 1024, "merges": [0-9]*, "added_tokens": 3, "bos": 1, "eos": \[2\]}' "$T/insp"
"$MF" inspect "$T/tiny.img" > "$T/insp" 2>&1
check "inspect of the tiny model: its tokens are bytes" grep -q '^tokenizer: none: each token id is a byte' "$T/insp"
BOSRUN="--context 16 --slide 4 --ignore-eos --print-ids"
# ids_range FILE FIRST LAST: lines FIRST..LAST of FILE on one line
ids_range() { sed -n "$2,$3p" "$1" | tr '\n' ' '; }
# bos_slides NAME PERIOD FIRST PREFIX PROMPT_ARGS...: after the slides at
# generated tokens FIRST, FIRST + PERIOD, ... (of 40), the next tokens must
# be those of a plain run fed PREFIX and the window's 4 ids.
bos_slides() {
    name=$1 period=$2 k=$3 prefix=$4
    shift 4
    # shellcheck disable=SC2086
    "$MF" generate "$T/bos.img" "$@" --tokens 40 $BOSRUN > "$T/bs" 2>"$T/bs.err"
    check "$name: exit status: $(cat "$T/bs.err")" [ $? -eq 0 ]
    check "$name: $(wc -l < "$T/bs") ids, not 40" [ "$(wc -l < "$T/bs")" -eq 40 ]
    n=0
    while [ "$k" -lt 40 ]; do
        more=$((40 - k)); [ "$more" -gt "$period" ] && more=$period
        printf '%s %s\n' "$prefix" "$(ids_range "$T/bs" $((k - 3)) "$k")" > "$T/bw.ids"
        "$MF" generate "$T/bos.img" --ids "$T/bw.ids" --tokens "$more" --context 16 --ignore-eos \
            --print-ids --quiet > "$T/bw" 2>&1
        check "$name: after the slide at generated token $k, not the ids of a run given '$(cat "$T/bw.ids")'" \
            [ "$(ids_range "$T/bs" $((k + 1)) $((k + more)))" = "$(ids_range "$T/bw" 1 "$more")" ]
        k=$((k + period)); n=$((n + 1))
    done
    check "$name: not 'context slid $n times' in: $(cat "$T/bs.err")" grep -q "context slid $n times" "$T/bs.err"
}
prompt_b="ROMEO: my lord"
"$MF" generate "$T/bos.img" --prompt "$prompt_b" --tokens 12 --context 16 --ignore-eos --print-ids \
    > "$T/b11" 2>"$T/b11.err"
check "BOS model: the prompt is not 5 tokens with the BOS: $(cat "$T/b11.err")" grep -q 'prompt 5 tokens' "$T/b11.err"
# The BOS and the prompt take 5 of the 16 positions, as do the BOS and
# KEEP after a slide: the slides come with generated tokens 12, 24 and 36
# (without a BOS, every 13 tokens).
bos_slides "BOS model, --slide 4, text prompt" 12 12 1 --prompt "$prompt_b"
check "BOS model: before the first slide, not the plain run's ids" \
    [ "$(ids_range "$T/bs" 1 12)" = "$(ids_range "$T/b11" 1 12)" ]
# The same window without the BOS continues differently: the check above
# can tell whether the slide fed the BOS.
printf '%s\n' "$(ids_range "$T/bs" 9 12)" > "$T/bw.ids"
"$MF" generate "$T/bos.img" --ids "$T/bw.ids" --tokens 12 --context 16 --ignore-eos --print-ids \
    --quiet > "$T/bw" 2>&1
check "BOS model: a window without the BOS continues as with it; the slide checks prove nothing" \
    [ "$(ids_range "$T/bs" 13 24)" != "$(ids_range "$T/bw" 1 12)" ]
# --ids: fed as given. Starting with the BOS, a slide keeps it; starting
# without, there is no BOS to keep and the slides come every 13 tokens.
printf '1 %s\n' "$(ids_range "$T/bs" 1 4)" > "$T/bp.ids"
bos_slides "BOS model, --slide 4, --ids with the BOS" 12 12 1 --ids "$T/bp.ids"
printf '%s\n' "$(ids_range "$T/bs" 1 4)" > "$T/bp.ids"
bos_slides "BOS model, --slide 4, --ids without the BOS" 13 13 "" --ids "$T/bp.ids"
# KEEP and the BOS must leave room in the context, as KEEP alone must
# without a BOS (--slide 64 at --context 64 is refused below).
expect_fail_bos() { # the pattern, args: as expect_fail (defined below)
    pat=$1; shift
    "$MF" "$@" >"$T/o" 2>"$T/e"; rc=$?
    check "moeflash $* -> rc $rc, stderr '$(cat "$T/e")' (expected /$pat/)" \
        sh -c "[ $rc -ne 0 ] && grep -q -- '$pat' '$T/e' && [ ! -s '$T/o' ]"
}
expect_fail_bos "must be less than the context of 16 minus the BOS token" \
    generate "$T/bos.img" --prompt "$prompt_b" --tokens 3 --context 16 --slide 15
printf '1 %s\n' "$(ids_range "$T/bs" 1 4)" > "$T/bp1.ids"
expect_fail_bos "must be less than the context of 16 minus the BOS token" \
    generate "$T/bos.img" --ids "$T/bp1.ids" --tokens 3 --context 16 --slide 15
"$MF" generate "$T/bos.img" --prompt "$prompt_b" --tokens 3 --context 16 --slide 14 --quiet >/dev/null 2>"$T/e"
check "BOS model: --slide 14 at --context 16: $(cat "$T/e")" [ $? -eq 0 ]

# End of sequence: an image whose end-of-sequence id is the third id the
# greedy run makes stops there (transformers' generate() does), after the
# first two; with --ignore-eos it makes the same 12 ids as the run above.
eos=$(sed -n 3p "$T/b11")
"$MF" convert "$T/bos" "$T/bos3.img" --weights q8 --eos "$eos" >/dev/null 2>"$T/bos3.err"
check "convert --eos $eos: $(cat "$T/bos3.err")" [ $? -eq 0 ]
check "the third greedy id $eos is also among the first two" [ "$(sed -n 1,2p "$T/b11" | grep -cx "$eos")" -eq 0 ]
"$MF" generate "$T/bos3.img" --prompt "$prompt_b" --tokens 12 --context 16 --print-ids > "$T/e3" 2>"$T/e3.err"
check "end of sequence: exit status $(cat "$T/e3.err")" [ $? -eq 0 ]
check "end of sequence: ids '$(ids_range "$T/e3" 1 12)', want '$(ids_range "$T/b11" 1 2)' (and at most the end-of-sequence id $eos)" \
    sh -c "[ \"\$(sed -n 1,2p '$T/e3')\" = \"\$(sed -n 1,2p '$T/b11')\" ] &&
        [ \"\$(sed -n '3,\$p' '$T/e3' | grep -cvx '$eos')\" -eq 0 ] && [ \$(wc -l < '$T/e3') -le 3 ]"
check "end of sequence: no 'stopped at end-of-sequence' in: $(cat "$T/e3.err")" grep -q 'stopped at end-of-sequence' "$T/e3.err"
"$MF" generate "$T/bos3.img" --prompt "$prompt_b" --tokens 12 --context 16 --print-ids --ignore-eos > "$T/e3" 2>/dev/null
check "--ignore-eos: ids '$(ids_range "$T/e3" 1 12)', want the 12 of the run without an end of sequence" \
    [ "$(ids_range "$T/e3" 1 12)" = "$(ids_range "$T/b11" 1 12)" ]

# ppl adds no BOS (README): ppl --text of the BOS model equals ppl --ids of
# the text's ids without it (trace --text's tokens after the BOS).
printf '%s' "$prompt_b" > "$T/pb.txt"
"$MF" trace "$T/bos.img" --text "$T/pb.txt" --out "$T/pb.json" 2>/dev/null
sed -n 's/^{"tokens": \[1, \([0-9, ]*\)\],$/\1/p' "$T/pb.json" | tr -d ',' > "$T/pb.ids"
pt=$("$MF" ppl "$T/bos.img" --text "$T/pb.txt" --window 4 --quiet 2>&1)
pi=$("$MF" ppl "$T/bos.img" --ids "$T/pb.ids" --window 4 --quiet 2>&1)
check "BOS model: ppl --text '$pt' is not ppl --ids of its ids without the BOS ($(cat "$T/pb.ids")): '$pi'" \
    sh -c "[ -s '$T/pb.ids' ] && [ '$pt' = '$pi' ] && echo '$pt' | grep -q 'bits/token (1 windows of 4, 3 predictions)'"

# bench and profile feed windows from an empty context; on a BOS model each
# starts with the BOS, as a generation does. In bench's trace the window
# starts (positions 0 and 16 with --context 16) are then the same input at
# the same position: the same experts at every layer.
head -c 2000 "$T/val.txt" > "$T/bv.txt"
"$MF" bench "$T/bos.img" --text "$T/bv.txt" --tokens 24 --context 16 --json --trace-out "$T/bv.jsonl" \
    >"$T/bv.json" 2>"$T/bv.err"
check "BOS model: bench: $(cat "$T/bv.err")" [ $? -eq 0 ]
for l in 0 1 2 3 4 5; do
    e0=$(grep "\"pos\": 0, \"layer\": $l," "$T/bv.jsonl" | sed 's/.*experts//')
    e16=$(grep "\"pos\": 16, \"layer\": $l," "$T/bv.jsonl" | sed 's/.*experts//')
    check "BOS model: bench windows do not both start with the BOS: layer $l experts '$e0' at 0, '$e16' at 16" \
        [ -n "$e0" -a "$e0" = "$e16" ]
done
# profile: the BOS's row of the token-routes table (section token_routes:
# 32 bytes of header, then u8 [vocab][layers 6][experts 32]) is not the
# prior every token never seen gets (<unk>, id 0, is not in the text).
cp "$T/bos.img" "$T/bosp.img"
"$MF" profile "$T/bosp.img" --text "$T/bv.txt" --window 16 >/dev/null 2>"$T/bp.err"
check "BOS model: profile: $(cat "$T/bp.err")" [ $? -eq 0 ]
tr_off=$("$MF" inspect "$T/bosp.img" | sed -n 's/^ *token_routes .* offset \([0-9]*\) .*/\1/p')
row_bos=$(od -An -tu1 -v -j $((tr_off + 32 + 192)) -N 192 "$T/bosp.img" | tr -s ' \n' ' ')
row_unk=$(od -An -tu1 -v -j $((tr_off + 32)) -N 192 "$T/bosp.img" | tr -s ' \n' ' ')
check "BOS model: profile: no routes counted for the BOS (id 1, section at '$tr_off'): its row is the prior" \
    [ -n "$tr_off" -a "$row_bos" != "$row_unk" ]
# trace --text puts the BOS first, as transformers' tokenizer(text) does:
# the same file as trace --ids of 1 and the prompt's ids.
printf '%s' "$prompt_b" > "$T/bt.txt"
"$MF" trace "$T/bos.img" --text "$T/bt.txt" --out "$T/bt.json" 2>"$T/bt.err"
check "BOS model: trace --text: $(cat "$T/bt.err")" [ $? -eq 0 ]
check "BOS model: trace --text does not start with the BOS: $(head -c 40 "$T/bt.json")" \
    grep -q '^{"tokens": \[1, [0-9]*, [0-9]*, [0-9]*, [0-9]*\],' "$T/bt.json"
sed -n 's/^{"tokens": \[\([0-9, ]*\)\],$/\1/p' "$T/bt.json" | tr -d ',' > "$T/bt.ids"
"$MF" trace "$T/bos.img" --ids "$T/bt.ids" --out "$T/bi.json" 2>/dev/null
check "BOS model: trace --text and trace --ids of the BOS and the prompt's ids differ" \
    cmp -s "$T/bt.json" "$T/bi.json"

# trace
printf 'ROMEO:\n' > "$T/p.txt"
"$MF" trace "$T/tiny.img" --text "$T/p.txt" --out "$T/tr.json" 2>/dev/null
check "trace exit status" [ $? -eq 0 ]
for key in logits experts weights; do
    check "trace has no \"$key\"" grep -q "\"$key\": \[" "$T/tr.json"
done

# Errors: non-zero exit and one line naming the problem.
expect_fail() { # expect_fail "pattern" args...
    pat=$1; shift
    "$MF" "$@" >"$T/o" 2>"$T/e"
    rc=$?
    if [ $rc -ne 0 ] && grep -qi -- "$pat" "$T/e" && [ ! -s "$T/o" ]; then ok; else
        bad "moeflash $* -> rc $rc, stderr '$(cat "$T/e")' (expected /$pat/)"; fi
}
# expect_fail1: as expect_fail, and the message is one line (README: errors
# print one line), the CLI's own, not the runtime's refusal after it.
expect_fail1() {
    expect_fail "$@"
    shift
    check "moeflash $*: $(wc -l < "$T/e") lines on stderr, not 1: $(cat "$T/e")" [ "$(wc -l < "$T/e")" -eq 1 ]
}
expect_fail "missing --prompt" generate "$T/tiny.img" --tokens 5
expect_fail "missing --tokens" generate "$T/tiny.img" --prompt hi
expect_fail "tokens" generate "$T/tiny.img" --prompt hi --tokens abc
expect_fail "unknown option" generate "$T/tiny.img" --prompt hi --tokens 5 --bogus
expect_fail "needs a value" generate "$T/tiny.img" --prompt hi --tokens
expect_fail "temperature" generate "$T/tiny.img" --prompt hi --tokens 5 --temperature -1
expect_fail "temperature" generate "$T/tiny.img" --prompt hi --tokens 5 --temperature inf
expect_fail "temperature" generate "$T/tiny.img" --prompt hi --tokens 5 --temperature nan
expect_fail "top-p" generate "$T/tiny.img" --prompt hi --tokens 5 --top-p 1.5
expect_fail "cannot open" generate "$T/nonexistent.img" --prompt hi --tokens 5
expect_fail "not a moeflash image" generate "$T/val.txt" --prompt hi --tokens 5
expect_fail "expert-ram" generate "$T/tiny.img" --prompt hi --tokens 5 --expert-ram 1000
expect_fail "slots" generate "$T/tiny.img" --prompt hi --tokens 5 --slots 0
expect_fail "not both" generate "$T/tiny.img" --prompt hi --tokens 5 --slots 4 --expert-ram 2000000
expect_fail "context" generate "$T/tiny.img" --prompt hi --tokens 50 --context 20
expect_fail "or --slide" generate "$T/tiny.img" --prompt hi --tokens 50 --context 20
expect_fail "slide" generate "$T/tiny.img" --prompt hi --tokens 5 --slide 0
expect_fail "slide" generate "$T/tiny.img" --prompt hi --tokens 5 --slide x
expect_fail "must be less than the context of 64" generate "$T/tiny.img" --prompt hi --tokens 5 --context 64 --slide 64
expect_fail "give one of them" generate "$T/bos.img" --prompt x --ids "$T/bp.ids" --tokens 3
printf '1 2 1024\n' > "$T/bad.ids"
expect_fail "id 3 is not an integer below the vocabulary (1024)" generate "$T/bos.img" --ids "$T/bad.ids" --tokens 3
: > "$T/empty.ids"
expect_fail "holds no tokens" generate "$T/bos.img" --ids "$T/empty.ids" --tokens 3
expect_fail "prompt (8 tokens) exceeds the context of 6" generate "$T/tiny.img" --prompt "$prompt"x --tokens 5 --context 6 --slide 2
expect_fail "exceeds the image's max_seq" generate "$T/tiny.img" --prompt hi --tokens 5 --context 100000
expect_fail "fewer than the model's top_k" generate "$T/tiny.img" --prompt hi --tokens 5 --slots 1
expect_fail "window" ppl "$T/tiny.img" --text "$T/val.txt" --window 1
expect_fail "cannot read" ppl "$T/tiny.img" --text "$T/nonexistent.txt"
expect_fail "fewer than one window" ppl "$T/tiny.img" --text "$T/p.txt"
# The prompt must fit the context also when no token is made.
expect_fail "prompt (7 tokens) + generated tokens exceed the context of 6" generate "$T/tiny.img" --prompt "$prompt" --tokens 0 --context 6
# Numbers: the whole argument, in range; no negatives, no wrap-around.
expect_fail "temperature" generate "$T/tiny.img" --prompt hi --tokens 5 --temperature 0.5x
expect_fail "expert-ram" generate "$T/tiny.img" --prompt hi --tokens 5 --expert-ram 0
expect_fail "expert-ram" generate "$T/tiny.img" --prompt hi --tokens 5 --expert-ram -1
# strtoull would skip the space and read " -1" as 2^64 - 1
expect_fail "expert-ram" generate "$T/tiny.img" --prompt hi --tokens 5 --expert-ram " -1"
expect_fail "seed" generate "$T/tiny.img" --prompt hi --tokens 5 --seed " -1"
expect_fail "slots" generate "$T/tiny.img" --prompt hi --tokens 5 --slots " 4"
expect_fail "temperature" generate "$T/tiny.img" --prompt hi --tokens 5 --temperature " 0.5"
expect_fail "slots: expected" generate "$T/tiny.img" --prompt hi --tokens 5 --slots 4294967298
expect_fail1 "verify" generate "$T/tiny.img" --prompt hi --tokens 5 --verify 3
expect_fail "prefetch-min" generate "$T/tiny.img" --prompt hi --tokens 5 --prefetch-min -0.5
expect_fail "fallback-stall-ms" generate "$T/tiny.img" --prompt hi --tokens 5 --fallback-stall-ms -1
expect_fail "not both" generate "$T/tiny.img" --prompt hi --tokens 5 --expert-ram 2000000 --slots 4
# --context up to the image's max_seq (inspect's), inclusive.
maxseq=$("$MF" inspect "$T/tiny.img" | sed -n 's/.*max_seq \([0-9]*\).*/\1/p')
"$MF" generate "$T/tiny.img" --prompt hi --tokens 2 --context "$maxseq" --quiet >/dev/null 2>"$T/e"
rc=$?
check "generate --context '$maxseq' (the image's max_seq): $(cat "$T/e")" [ -n "$maxseq" -a $rc -eq 0 ]
# --expert-ram BYTES holds BYTES / (bytes of an expert) experts, rounded
# down: an f32 expert of the tiny model is 3 x 128 x 256 x 4 bytes.
XB=$((3 * 128 * 256 * 4))
"$MF" generate "$T/tiny.img" --prompt hi --tokens 1 --expert-ram $((3 * XB - 1)) >/dev/null 2>"$T/e"
check "--expert-ram 3 experts less a byte: want 2 expert slots: $(cat "$T/e")" grep -q ' 2 expert slots' "$T/e"
"$MF" generate "$T/tiny.img" --prompt hi --tokens 1 --expert-ram $((3 * XB)) >/dev/null 2>"$T/e"
check "--expert-ram 3 experts: want 3 expert slots: $(cat "$T/e")" grep -q ' 3 expert slots' "$T/e"
expect_fail1 "holds 1 experts" generate "$T/tiny.img" --prompt hi --tokens 1 --expert-ram $((2 * XB - 1))
# --ids: whitespace-separated integers below the vocabulary.
printf '18446744073709551617\n' > "$T/big.ids"
expect_fail "id 1 is not an integer below the vocabulary (1024)" generate "$T/bos.img" --ids "$T/big.ids" --tokens 1
printf '5x 6\n' > "$T/x.ids"
expect_fail "id 1 is not an integer below the vocabulary (1024)" generate "$T/bos.img" --ids "$T/x.ids" --tokens 1
printf '7' > "$T/one.ids"
"$MF" generate "$T/bos.img" --ids "$T/one.ids" --tokens 1 --quiet >/dev/null 2>"$T/e"
check "--ids of one id and no newline: $(cat "$T/e")" [ $? -eq 0 ]
printf '7\t8\r\n9\v10\f11' > "$T/ws.ids"
"$MF" generate "$T/bos.img" --ids "$T/ws.ids" --tokens 1 >/dev/null 2>"$T/e"
check "--ids separated by tab, CR, VT, FF: want a 5-token prompt: $(cat "$T/e")" grep -q 'prompt 5 tokens' "$T/e"
expect_fail "missing --out" trace "$T/tiny.img" --text "$T/p.txt"
expect_fail "more than the context" trace "$T/tiny.img" --text "$T/val.txt" --out "$T/x.json"

# --help and -h: a request, not a mistake, so the usage on stdout and exit
# status 0, for every command and also after other arguments.
for cmd in convert inspect generate trace ppl profile bench; do
    for h in --help -h; do
        "$MF" $cmd $h >"$T/o" 2>"$T/e"
        rc=$?
        if [ $rc -eq 0 ] && grep -q "^usage: moeflash $cmd " "$T/o" && [ ! -s "$T/e" ]; then ok; else
            bad "moeflash $cmd $h -> rc $rc, stdout '$(head -1 "$T/o")', stderr '$(cat "$T/e")'"; fi
    done
done
"$MF" generate "$T/tiny.img" --prompt hi --help >"$T/o" 2>/dev/null
rc=$?
if [ $rc -eq 0 ] && grep -q "^usage: moeflash generate " "$T/o"; then ok; else
    bad "moeflash generate IMG --prompt hi --help -> rc $rc"; fi
"$MF" --help >"$T/o" 2>/dev/null
for opt in --eos --calib-windows --sensitivity --ignore-eos --quiet --no-lookahead --csv-header; do
    check "moeflash --help does not name $opt" grep -q -- "$opt" "$T/o"
done

echo "cli_run: $pass passed, $fail failed"
[ $fail -eq 0 ]
