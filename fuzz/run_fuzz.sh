#!/bin/sh
# Runs libFuzzer targets for a fixed time each and reports, per target,
# executions, crashes (distinct crashing inputs) and corpus size.
#   sh fuzz/run_fuzz.sh BUILD_DIR SECONDS TARGET...
# Used by `make fuzz` (mk/fuzz.mk) and tests/scripts/fuzz_smoke.sh.
# A crash does not end the target's time: libFuzzer is restarted on the
# remaining time (at most 20 times), so one shallow bug doesn't hide others.
# Exit status 1 when any target crashed.
FB=$1; secs=$2; shift 2
[ -n "$FB" ] && [ -n "$secs" ] || { echo "usage: $0 BUILD_DIR SECONDS TARGET..."; exit 2; }
total_exec=0; total_crash=0; status=0
for t in "$@"; do
    bin=$FB/$t
    [ -x "$bin" ] || { echo "$t: not built"; status=1; continue; }
    gen=$FB/corpus/$t; crashes=$FB/crashes/$t
    mkdir -p "$gen" "$crashes"
    sh fuzz/seed_runtime.sh "$t" "$gen" "${BUILD:-build}" 2>/dev/null
    seeds=""
    [ -d "fuzz/corpus/$t" ] && seeds="fuzz/corpus/$t"
    # Bigger inputs for the image targets (a whole small image).
    case $t in
        fuzz_image|fuzz_model_init|fuzz_tokconv) maxlen="" ;; # default: the largest seed
        *) maxlen=-max_len=16384 ;;
    esac
    start=$(date +%s); execs=0; runs=0; crash_runs=0
    before=$(ls "$crashes" | wc -l)
    log=$FB/$t.log
    : >"$log"
    while :; do
        left=$((secs - ($(date +%s) - start)))
        [ "$left" -gt 0 ] && [ "$runs" -lt 20 ] || break
        runs=$((runs + 1))
        "$bin" -max_total_time="$left" -timeout=10 -rss_limit_mb=2048 $maxlen \
            -print_final_stats=1 -artifact_prefix="$crashes/" "$gen" $seeds >"$log.run" 2>&1
        rc=$?
        cat "$log.run" >>"$log"
        n=$(grep -E '^stat::number_of_executed_units' "$log.run" | awk '{print $2}')
        # After a crash libFuzzer prints no stats: take the last "#N" status line.
        [ -n "$n" ] || n=$(grep -oE '^#[0-9]+' "$log.run" | tail -n 1 | tr -d '#')
        execs=$((execs + ${n:-0}))
        if [ $rc -ne 0 ]; then
            crash_runs=$((crash_runs + 1))
            grep -E 'ERROR: |SUMMARY: |invariant violated|Test unit written' "$log.run" | head -n 4 | sed "s/^/  $t: /"
        fi
    done
    rm -f "$log.run"
    after=$(ls "$crashes" | wc -l)
    new=$((after - before))
    corpus=$(ls "$gen" | wc -l)
    echo "$t: $execs executions in $(( $(date +%s) - start )) s, $crash_runs crashes ($new new inputs in $crashes), corpus $corpus"
    total_exec=$((total_exec + execs)); total_crash=$((total_crash + crash_runs))
    [ $crash_runs -eq 0 ] || status=1
done
echo "fuzz total: $total_exec executions, $total_crash crashes"
exit $status
