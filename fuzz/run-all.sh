#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 60) and prints executions and coverage per target.
#
#   bash fuzz/run-all.sh 1200                 # the issue's bar: 20 minutes each (or 10^6 executions, see MAX_RUNS)
#   FUZZ_TARGETS="safetensors tokenizer" bash fuzz/run-all.sh 30
#   FUZZ_PARALLEL=2 bash fuzz/run-all.sh 600  # two targets at a time
#
# Limits per the issue: -rss_limit_mb=1024 (memory), -timeout=1 (any input slower than 1 s is a failure),
# -max_total_time=SECONDS; MAX_RUNS (default 1000000) stops a target early once it reached that many executions.
# Seeds come from fuzz/corpus/<target> (read only); new inputs go to .build-fuzz/corpus/<target>, crash
# reproducers to fuzz/artifacts/<target>/ (crash-*, timeout-*, oom-*, leak-*). Exit status 1 when any target
# failed. Build first with fuzz/build.sh.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
seconds="${1:-60}"
max_runs="${MAX_RUNS:-1000000}"
parallel="${FUZZ_PARALLEL:-1}"
targets="${FUZZ_TARGETS:-$(ls "$here/corpus")}"
logs="$root/.build-fuzz/logs"
mkdir -p "$logs"
export TUNECHECK_ROOT="$root"
# Leak reports are off (the Swift runtime's process-lifetime caches would be reported); a real leak still shows
# up as memory growing past -rss_limit_mb.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0:allocator_may_return_null=1}"

run_one() {
    local target="$1"
    local binary="$here/bin/$target"
    if [ ! -x "$binary" ]; then echo "$target: not built (run fuzz/build.sh)" > "$logs/$target.summary"; return 1; fi
    mkdir -p "$root/.build-fuzz/corpus/$target" "$here/artifacts/$target"
    local start=$SECONDS
    "$binary" -max_total_time="$seconds" -runs="$max_runs" -rss_limit_mb=1024 -malloc_limit_mb=1024 -timeout=1 \
        -print_final_stats=1 -artifact_prefix="$here/artifacts/$target/" \
        "$root/.build-fuzz/corpus/$target" "$here/corpus/$target" > "$logs/$target.log" 2>&1
    local status=$?
    local elapsed=$((SECONDS - start))
    local execs cov ft
    execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$logs/$target.log" | tail -1 | awk '{print $2}')
    cov=$(grep -o 'cov: [0-9]*' "$logs/$target.log" | tail -1 | awk '{print $2}')
    ft=$(grep -o 'ft: [0-9]*' "$logs/$target.log" | tail -1 | awk '{print $2}')
    local verdict=ok
    [ $status -eq 0 ] || verdict="FAILED (exit $status; see $logs/$target.log and fuzz/artifacts/$target/)"
    printf '%-14s execs %-9s cov %-6s ft %-6s %5ss  %s\n' "$target" "${execs:-?}" "${cov:-?}" "${ft:-?}" "$elapsed" "$verdict" \
        > "$logs/$target.summary"
    return $status
}

failed=0
running=0
for target in $targets; do
    run_one "$target" &
    running=$((running + 1))
    if [ "$running" -ge "$parallel" ]; then wait -n || failed=1; running=$((running - 1)); fi
done
while [ "$running" -gt 0 ]; do wait -n || failed=1; running=$((running - 1)); done
for target in $targets; do cat "$logs/$target.summary"; done
exit $failed
