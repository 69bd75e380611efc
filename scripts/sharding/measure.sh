#!/usr/bin/env bash
# Wall time of an evaluation unsharded vs. split into 2 and 4 shards run one after another (plus the merge), and with a
# warm base-result cache. Prints one line per run with its CPU time (user + system: less sensitive than wall time to
# other work on a shared machine) and the 1-minute load average beside it.
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
seconds() { # runs a command, prints "wall cpu" in seconds; exit codes 0 and 1 are results, not errors
    local status=0
    /usr/bin/time -o "$work/time" -f "%e %U %S" "$@" > "$work/last.log" 2>&1 || status=$?
    if [ "$status" -gt 1 ]; then cat "$work/last.log" >&2; exit "$status"; fi
    read -r wall user system < <(tail -1 "$work/time")
    echo "$wall $(echo "$user + $system" | bc)"
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

run_shards() { # N CACHE_FLAGS... -> prints "wall-sum cpu-sum merge-wall report"
    local n=$1; shift; local wall=0 cpu=0 w c dir="$work/n$n-$RANDOM"
    for i in $(seq 1 "$n"); do
        read -r w c < <(seconds "$tunecheck" eval "${EVAL[@]}" "$@" --shard "$i/$n" --report-dir "$dir/parts/$i")
        wall=$(echo "$wall + $w" | bc); cpu=$(echo "$cpu + $c" | bc)
    done
    read -r w c < <(seconds "$tunecheck" merge --report-dir "$dir/merged" "$@" "$dir/parts")
    printf '%s %s %s %s\n' "$wall" "$cpu" "$w" "$dir/merged/report.json"
}
line() { # LABEL WALL CPU [REFERENCE_WALL REFERENCE_CPU] MERGE VERDICT
    printf '| %s | %s | %.2f s%s | %.2f s%s | %s | %s | %s |\n' "$label" "$1" "$2" \
        "$( [ -n "$4" ] && printf ' (%+.0f%%)' "$(echo "100 * ($2 - $4) / $4" | bc -l)")" "$3" \
        "$( [ -n "$5" ] && printf ' (%+.0f%%)' "$(echo "100 * ($3 - $5) / $5" | bc -l)")" "$6" "$(load)" "$7"
}

EVAL=("$@")
status=0
echo "| evaluation | run | wall | CPU (user + sys) | merge | load (1 min) | merged report |"
echo "|---|---|---|---|---|---|---|"
read -r full_wall full_cpu < <(seconds "$tunecheck" eval "${EVAL[@]}" --report-dir "$work/full")
line "unsharded" "$full_wall" "$full_cpu" "" "" "–" ""
for n in 2 4; do
    read -r wall cpu merge report < <(run_shards "$n")
    verdict=$(same "$work/full/report.json" "$report") || status=1
    line "$n shards, one after another" "$wall" "$cpu" "$full_wall" "$full_cpu" "$(printf '%.2f s' "$merge")" "$verdict"
done
# Warm cache: an unsharded run fills it; then an unsharded and a 4-shard run read it.
cache="$work/cache"
seconds "$tunecheck" eval "${EVAL[@]}" --cache-dir "$cache" --report-dir "$work/fill" > /dev/null
read -r wall cpu < <(seconds "$tunecheck" eval "${EVAL[@]}" --cache-dir "$cache" --report-dir "$work/warm")
line "unsharded, warm cache" "$wall" "$cpu" "$full_wall" "$full_cpu" "–" "$(same "$work/full/report.json" "$work/warm/report.json" || status=1)"
read -r wall cpu merge report < <(run_shards 4 --cache-dir "$cache")
verdict=$(same "$work/full/report.json" "$report") || status=1
line "4 shards, warm cache" "$wall" "$cpu" "$full_wall" "$full_cpu" "$(printf '%.2f s' "$merge")" "$verdict"
exit "$status"
