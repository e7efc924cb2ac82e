#!/bin/sh
# Adds seeds generated from the repository's data to a target's run-time
# corpus directory (not committed: big or derived files).
#   sh fuzz/seed_runtime.sh TARGET DIR [BUILD]
t=$1; dir=$2; build=${3:-build}
mkdir -p "$dir"
case $t in
fuzz_json)
    for f in tests/data/small-qwen3-moe-bpe/model.safetensors.index.json \
             tests/data/tok-bytelevel/tokenizer.json models/*/routing_stats.json; do
        [ -f "$f" ] && cp "$f" "$dir/data-$(echo "$f" | tr / _)"
    done ;;
fuzz_config)
    for f in tests/data/*/config.json models/*/config.json; do
        [ -f "$f" ] && cp "$f" "$dir/data-$(echo "$f" | tr / _)"
    done ;;
fuzz_tokconv)
    # a prefix byte (0: tokenizer.json, 1: tokenizer.model), then the file
    for f in tests/data/*/tokenizer.json; do
        [ -f "$f" ] && { printf '\000'; cat "$f"; } >"$dir/data-$(echo "$f" | tr / _)"
    done
    for f in tests/data/*/tokenizer.model; do
        [ -f "$f" ] && { printf '\001'; cat "$f"; } >"$dir/data-$(echo "$f" | tr / _)"
    done ;;
fuzz_image|fuzz_model_init)
    # A converted small checkpoint, when the converter works and it is small.
    img=$dir/../../conv-arch-mixtral-q8-p64.img
    # Rebuilt when the converter is newer than the cached image.
    if [ -x "$build/moeflash" ] && { [ ! -f "$img" ] || [ "$build/moeflash" -nt "$img" ]; }; then
        "$build/moeflash" convert tests/data/arch-mixtral "$img" --weights q8 --page-size 64 >/dev/null 2>&1 || rm -f "$img"
    fi
    if [ -f "$img" ] && [ "$(wc -c <"$img")" -le 1048576 ]; then
        cp "$img" "$dir/conv-arch-mixtral-q8-p64.img"
        # the same profiled: predictor, token-routes and learned-lookahead
        # sections (20,000 tokens: the least that writes the lookahead)
        head -c 20000 tests/data/tinyshakespeare.txt >"$dir/../../profile-text.txt"
        "$build/moeflash" profile "$img" --text "$dir/../../profile-text.txt" --slots 64 \
            --out "$dir/conv-arch-mixtral-q8-p64-profiled.img" >/dev/null 2>&1 ||
            rm -f "$dir/conv-arch-mixtral-q8-p64-profiled.img"
    fi ;;
esac
exit 0
