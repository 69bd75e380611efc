#!/usr/bin/env bash
# Checks one fine-tuned checkpoint in CI and publishes the results as JUnit.
#
# Usage: ci/tunecheck-ci.sh CHECKPOINT [SUITE] [OUT]
#   CHECKPOINT  an adapter folder or numbered mlx_lm file, a PEFT checkpoint-N folder, or a model folder
#   SUITE       suite file naming the base and evalsets (default: evalsets/default/suite.yaml)
#   OUT         report folder (default: tunecheck-report); junit.xml, report.json and report.html go there
#
# Uses `tunecheck` from PATH when there is one (or $TUNECHECK), otherwise builds it (release) from this clone.
# Extra `tunecheck eval` flags can be passed in $TUNECHECK_FLAGS (e.g. "--max-tokens 32 --suites repetition,preference").
# Exit code: tunecheck's own — 0 all checks passed, 1 a check failed, 2 bad input. junit.xml is written for 0 and 1.
set -euo pipefail
if [ $# -lt 1 ]; then
    sed -n '2,11p' "$0" >&2
    exit 2
fi
checkpoint=$1
suite=${2:-evalsets/default/suite.yaml}
out=${3:-tunecheck-report}
root="$(cd "$(dirname "$0")/.." && pwd)"

tunecheck=${TUNECHECK:-$(command -v tunecheck || true)}
if [ -z "$tunecheck" ]; then
    echo "== building tunecheck (release)" >&2
    (cd "$root" && swift build -c release >&2)
    tunecheck="$root/.build/release/tunecheck"
fi

echo "== tunecheck eval --suite $suite --checkpoint $checkpoint" >&2
status=0
# shellcheck disable=SC2086  # TUNECHECK_FLAGS is a list of flags
"$tunecheck" eval --suite "$suite" --checkpoint "$checkpoint" --report-dir "$out" ${TUNECHECK_FLAGS:-} || status=$?

if [ -f "$out/junit.xml" ]; then
    echo "== JUnit report: $out/junit.xml (HTML: $out/report.html)" >&2
fi
exit "$status"
