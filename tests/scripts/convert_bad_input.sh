#!/bin/sh
# The CLI on bad input: each case must exit non-zero without a signal
# (status < 128), print exactly one line on stderr, and that line must name
# the problem. Fixtures are made in a temporary folder from the shipped
# arch-mixtral checkpoint.
BUILD=${BUILD:-build}
BIN="$BUILD/moeflash"
pass=0; fail=0
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
SRC=tests/data/arch-mixtral

# expect NAME PATTERN CMD...: non-zero, < 128, exactly one error line on
# stderr (lines starting "moeflash"; convert's progress lines start
# "convert:"), which is the last line and matches PATTERN.
expect() {
    name=$1; pat=$2; shift 2
    "$@" >"$T/out" 2>"$T/err"
    rc=$?
    lines=$(grep -c '^moeflash' "$T/err")
    if [ $rc -eq 0 ] || [ $rc -ge 128 ]; then
        echo "FAIL $name: exit status $rc"; fail=$((fail + 1))
    elif [ "$lines" -ne 1 ]; then
        echo "FAIL $name: $lines error lines on stderr:"; cat "$T/err"; fail=$((fail + 1))
    elif ! tail -n 1 "$T/err" | grep -q -- "$pat"; then
        echo "FAIL $name: stderr lacks '$pat':"; cat "$T/err"; fail=$((fail + 1))
    else
        pass=$((pass + 1))
    fi
}

# A copy of the checkpoint with the config edited by sed.
model() {
    d="$T/$1"; mkdir -p "$d"
    cp "$SRC/config.json" "$SRC/model.safetensors" "$d/"
    echo "$d"
}

if [ ! -x "$BIN" ]; then
    echo "FAIL $BIN not built"; echo "convert_bad_input: 0 passed, 1 failed"; exit 1
fi

expect "missing HF dir" "no-such-dir" "$BIN" convert "$T/no-such-dir" "$T/x.img"

d=$(model broken)
printf '{"model_type": "mixtral", "hidden_size": 64,,}' >"$d/config.json"
expect "broken config.json" "config.json: bad JSON: line 1 column" "$BIN" convert "$d" "$T/x.img"

# Messages quote the file's own strings: control characters in them (an
# escape sequence, a newline) come out as '?', so the message stays one
# printable line.
d=$(model ctlchars)
sed 's/"model_type": "mixtral"/"model_type": "mix\\u001b[31mtral\\nX"/' "$SRC/config.json" >"$d/config.json"
expect "model_type with control characters" 'unsupported model_type "mix?\[31mtral?X"' "$BIN" convert "$d" "$T/x.img"
if [ "$(wc -l <"$T/err")" -eq 1 ] && ! grep -q "$(printf '\033')" "$T/err"; then pass=$((pass + 1)); else
    echo "FAIL model_type with control characters: not one printable line:"; cat -A "$T/err"; fail=$((fail + 1)); fi
d=$(model tokctl)
printf '{"model": {"type": "B\\u001bPE\\n"}}' >"$d/tokenizer.json"
expect "tokenizer model type with control characters" 'unsupported tokenizer model type B?PE?' "$BIN" convert "$d" "$T/x.img"
if [ "$(grep -vc '^convert:' "$T/err")" -eq 1 ] && ! grep -q "$(printf '\033')" "$T/err"; then pass=$((pass + 1)); else
    echo "FAIL tokenizer model type with control characters: not one printable line:"; cat -A "$T/err"; fail=$((fail + 1)); fi

# A vocab id far beyond the entries (a corrupt file) is refused, not
# allocated for (100 M ids took 17 GB and 33 s before).
d=$(model sparsevocab)
printf '{"model": {"type": "BPE", "vocab": {"a": 100000000, "b": 1}, "merges": []}}' >"$d/tokenizer.json"
expect "vocab id beyond the entries" 'id 100000000 of vocab entry "a" is beyond the 2 entries of vocab and added_tokens' \
    "$BIN" convert "$d" "$T/x.img"

# A weight the encoding cannot hold: element 0 of layer 0's expert 0 w1
# (bf16, at data offset 65536 in the shipped checkpoint) set to 1e10
# (bf16 0x5015) or NaN (0x7FC0). The converter names the tensor instead of
# writing an expert that decodes to inf or NaN.
poke_w1() { # poke_w1 DIR BYTE0 BYTE1
    f="$1/model.safetensors"
    hl=$(od -An -tu8 -N8 "$f" | tr -d ' ')
    printf "\\$(printf %o "$2")\\$(printf %o "$3")" |
        dd of="$f" bs=1 seek=$((8 + hl + 65536)) conv=notrunc 2>/dev/null
}
if grep -q '"model.layers.0.block_sparse_moe.experts.0.w1.weight":{"dtype":"BF16","shape":\[96,64\],"data_offsets":\[65536,' \
    "$SRC/model.safetensors"; then pass=$((pass + 1)); else
    echo "FAIL the fixture's offset of experts.0.w1 no longer holds"; fail=$((fail + 1)); fi
d=$(model hugeweight)
poke_w1 "$d" 21 80
for enc in q8 q4 f16; do
    expect "a 1e10 weight at $enc" "experts.0.w1.weight: row 0 (|x| up to 9.99922e+09) does not fit $enc" \
        "$BIN" convert "$d" "$T/x.img" --weights $enc
done
"$BIN" convert "$d" "$T/x.img" --weights bf16 >/dev/null 2>&1 && pass=$((pass + 1)) ||
    { echo "FAIL a 1e10 weight at bf16 should convert"; fail=$((fail + 1)); }
d=$(model nanweight)
poke_w1 "$d" 192 127
expect "a NaN weight" "experts.0.w1.weight: element 0 is NaN" "$BIN" convert "$d" "$T/x.img" --weights f32

d=$(model llama)
sed 's/"model_type": "mixtral"/"model_type": "llama"/' "$SRC/config.json" >"$d/config.json"
expect "unsupported model_type" 'unsupported model_type "llama"' "$BIN" convert "$d" "$T/x.img"

d=$(model sliding)
sed 's/"sliding_window": null/"sliding_window": 4096/' "$SRC/config.json" >"$d/config.json"
expect "unsupported feature" "sliding_window" "$BIN" convert "$d" "$T/x.img"

d=$(model nohidden)
grep -v '"hidden_size"' "$SRC/config.json" >"$d/config.json"
expect "missing config key" "missing hidden_size" "$BIN" convert "$d" "$T/x.img"

# A missing tensor: rename one in the header (same length keeps the offsets).
d=$(model missing)
LC_ALL=C sed 's/model.layers.1.block_sparse_moe.experts.3.w2.weight/model.layers.1.block_sparse_moe.experts.3.w9.weight/' \
    "$SRC/model.safetensors" >"$d/model.safetensors"
expect "missing tensor" "tensor model.layers.1.block_sparse_moe.experts.3.w2.weight is missing" \
    "$BIN" convert "$d" "$T/x.img"

# An unsupported dtype (same length edit: "dtype":"BF16" -> "dtype": "I16").
d=$(model dtype)
LC_ALL=C sed 's/"model.embed_tokens.weight":{"dtype":"BF16"/"model.embed_tokens.weight":{"dtype": "I16"/' \
    "$SRC/model.safetensors" >"$d/model.safetensors"
expect "unsupported dtype" "model.embed_tokens.weight has dtype I16" "$BIN" convert "$d" "$T/x.img"

# A tensor the converter does not know: with tied embeddings lm_head is not
# needed, so a renamed copy of it is an unused, unknown tensor.
d=$(model extra)
sed 's/"tie_word_embeddings": false/"tie_word_embeddings": true/' "$SRC/config.json" >"$d/config.json"
LC_ALL=C sed 's/"lm_head.weight"/"lm_heax.weight"/' "$SRC/model.safetensors" >"$d/model.safetensors"
expect "unknown tensor" "tensor lm_heax.weight is not used by the mixtral converter" "$BIN" convert "$d" "$T/x.img"
LC_ALL=C sed 's/"lm_head.weight"/"model.norm.weight"/' "$SRC/model.safetensors" >"$d/model.safetensors"
expect "duplicate tensor" "model.norm.weight appears twice" "$BIN" convert "$d" "$T/x.img"

# A shape that disagrees with config.json.
d=$(model shape)
sed 's/"intermediate_size": 96/"intermediate_size": 80/' "$SRC/config.json" >"$d/config.json"
expect "wrong shape" "has shape \[96, 64\], expected \[80, 64\]" "$BIN" convert "$d" "$T/x.img"

d=$(model trunc)
size=$(wc -c <"$SRC/model.safetensors")
head -c $((size / 2)) "$SRC/model.safetensors" >"$d/model.safetensors"
expect "truncated safetensors" "outside the data area" "$BIN" convert "$d" "$T/x.img"
head -c 5 "$SRC/model.safetensors" >"$d/model.safetensors"
expect "five-byte safetensors" "too short" "$BIN" convert "$d" "$T/x.img"
[ ! -e "$T/x.img" ] && pass=$((pass + 1)) || { echo "FAIL a failed conversion left $T/x.img"; fail=$((fail + 1)); }

expect "bad encoding flag" "unknown encoding 'q5'" "$BIN" convert "$SRC" "$T/x.img" --weights q5
# Numbers are the whole argument, digits only: no sign, no leading space
# (strtoull reads " -1" as 2^64 - 1 and "-1" as well).
expect "negative budget" "--expert-budget: '-1' is not a positive integer" \
    "$BIN" convert "$SRC" "$T/x.img" --experts auto --expert-budget -1
expect "spaced budget" "--expert-budget: ' 100' is not a positive integer" \
    "$BIN" convert "$SRC" "$T/x.img" --experts auto --expert-budget " 100"
expect "spaced calib windows" "--calib-windows: ' -4294967295' is not a positive integer" \
    "$BIN" convert "$SRC" "$T/x.img" --calib-windows " -4294967295"
expect "spaced avg bits" "--avg-bits: ' 4' is not a number" "$BIN" convert "$SRC" "$T/x.img" --experts auto --avg-bits " 4"
expect "spaced eos id" "--eos: expected 'none' or 1-4 token ids" "$BIN" convert "$SRC" "$T/x.img" --eos "1, 2"
expect "unwritable output" "cannot create" "$BIN" convert "$SRC" "$T/no/such/dir/x.img"

# inspect on garbage and on damaged images.
head -c 5000 /dev/urandom >"$T/garbage.img"
expect "garbage image" "invalid image: not a moeflash image" "$BIN" inspect "$T/garbage.img"
expect "missing image" "cannot open" "$BIN" inspect "$T/none.img"
: >"$T/empty.img"
expect "empty image" "invalid image" "$BIN" inspect "$T/empty.img"
if "$BIN" convert "$SRC" "$T/good.img" 2>/dev/null; then
    pass=$((pass + 1))
    size=$(wc -c <"$T/good.img")
    head -c $((size - 10)) "$T/good.img" >"$T/cut.img"
    expect "truncated image" "offset past the end" "$BIN" inspect "$T/cut.img"
    # One byte of an expert blob flipped (expert data starts after ~235 KB
    # of resident f32 weights): plain inspect reads only the tables and
    # passes, --verify reads the blobs and fails.
    cp "$T/good.img" "$T/flip.img"
    printf '\377' | dd of="$T/flip.img" bs=1 seek=300000 conv=notrunc 2>/dev/null
    "$BIN" inspect "$T/flip.img" >/dev/null 2>&1 && pass=$((pass + 1)) ||
        { echo "FAIL inspect without --verify on a blob-damaged image"; fail=$((fail + 1)); }
    expect "flipped expert byte" "1 CRC mismatches" "$BIN" inspect "$T/flip.img" --verify
    "$BIN" inspect "$T/good.img" --verify >/dev/null 2>&1 && pass=$((pass + 1)) ||
        { echo "FAIL inspect --verify on a good image"; fail=$((fail + 1)); }
else
    echo "FAIL converting $SRC"; fail=$((fail + 1))
fi
echo "convert_bad_input: $pass passed, $fail failed"
[ $fail -eq 0 ]
