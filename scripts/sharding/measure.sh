#!/usr/bin/env bash
# Wall time of an evaluation unsharded vs. split into 2 and 4 shards run one after another (plus the merge), and with a
# warm base-result cache. Prints one line per run with the 1-minute load average beside it (the machine may be shared).
#
# Usage: scripts/sharding/measure.sh LABEL WORK_DIR -- EVAL_ARGS...
#   e.g. scripts/sharding/measure.sh demo /tmp/shard-demo -- --suite evalsets/demo/suite.yaml \
#            --checkpoint 'Tests/Fixtures/runs/tunecheck-lr1e-4/*_adapters.safetensors'
# Uses .build/release/tunecheck (or $TUNECHECK). Each configuration's merged report.json is compared with the
# unsharded one (timings removed); a difference is reported and the script exits 1.
set -euo pipefail
label=$1; work=$2; shift 2; [ "$1" = "--" ] && shift
tunecheck=${TUNECHECK:-.build/release/tunecheck}
rm -rf "$work"; mkdir -p "$work"
export TUNECHECK_NO_PROGRESS=1

load() { cut -d' ' -f1 /proc/loadavg; }
seconds() { # runs a command, prints its wall time in seconds; exit codes 0 and 1 are results, not errors
    local start end status=0
    start=$(date +%s.%N); "$@" > "$work/last.log" 2>&1 || status=$?
    end=$(date +%s.%N)
    if [ "$status" -gt 1 ]; then cat "$work/last.log" >&2; exit "$status"; fi
    echo "$end - $start" | bc
}
same() {
    python3 - "$1" "$2" <<'PY'
import json, sys
def strip(v):
    if isinstance(v, dict): return {k: strip(x) for k, x in v.items() if k not in ("started_at", "duration_seconds")}
    if isinstance(v, list): return [strip(x) for x in v]
    return v
a, b = (strip(json.load(open(p))) for p in sys.argv[1:3])
print("same report" if a == b else "REPORT DIFFERS"); sys.exit(0 if a == b else 1)
PY
}

run_shards() { # N CACHE_FLAGS... -> prints "sum merge" times
    local n=$1; shift; local total=0 t dir="$work/n$n-$RANDOM"
    for i in $(seq 1 "$n"); do
        t=$(seconds "$tunecheck" eval "${EVAL[@]}" "$@" --shard "$i/$n" --report-dir "$dir/parts/$i")
        total=$(echo "$total + $t" | bc)
    done
    t=$(seconds "$tunecheck" merge --report-dir "$dir/merged" "$@" "$dir/parts")
    printf '%s %s %s\n' "$total" "$t" "$dir/merged/report.json"
}

EVAL=("$@")
full=$(seconds "$tunecheck" eval "${EVAL[@]}" --report-dir "$work/full"); l=$(load)
printf '%-6s unsharded            %7.2f s                      load %s\n' "$label" "$full" "$l"
status=0
for n in 2 4; do
    read -r sum merge report < <(run_shards "$n"); l=$(load)
    verdict=$(same "$work/full/report.json" "$report") || status=1
    printf '%-6s %d shards in turn     %7.2f s (%+.0f%%), merge %.2f s  load %s  %s\n' "$label" "$n" "$sum" \
        "$(echo "100 * ($sum - $full) / $full" | bc -l)" "$merge" "$l" "$verdict"
done
# Warm cache: an unsharded run fills it; then an unsharded and a 4-shard run read it.
cache="$work/cache"
seconds "$tunecheck" eval "${EVAL[@]}" --cache-dir "$cache" --report-dir "$work/fill" > /dev/null
warm=$(seconds "$tunecheck" eval "${EVAL[@]}" --cache-dir "$cache" --report-dir "$work/warm"); l=$(load)
printf '%-6s unsharded, warm cache %7.2f s                      load %s\n' "$label" "$warm" "$l"
read -r sum merge report < <(run_shards 4 --cache-dir "$cache"); l=$(load)
verdict=$(same "$work/full/report.json" "$report") || status=1
printf '%-6s 4 shards, warm cache  %7.2f s, merge %.2f s          load %s  %s\n' "$label" "$sum" "$merge" "$l" "$verdict"
exit "$status"
