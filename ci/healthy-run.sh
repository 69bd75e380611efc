#!/usr/bin/env bash
# The README's second command: the same DPO data with gentle settings (evalsets/demo/dpo-healthy.yaml: a learning
# rate 50x lower than the too-hot run, clipped gradients, a short run). Every saved checkpoint is evaluated with
# the same demo suite as it is written and passes it; then `tunecheck eval` compares the base and the checkpoints.
# Exits 0 when every check passes. Run after ci/quickstart.sh (or after `swift build -c release`).
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)
tunecheck=.build/release/tunecheck
[ -x "$tunecheck" ] || { bash ci/setup.sh; swift build -c release; }
export TUNECHECK_NO_PROGRESS=1 COLUMNS=${COLUMNS:-120}
run=tunecheck-out/demo-healthy      # adapter_path in evalsets/demo/dpo-healthy.yaml
report=tunecheck-out/demo-healthy-report
rm -rf "$run" "$report"
echo "== DPO with gentle settings (evalsets/demo/dpo-healthy.yaml)"
"$tunecheck" train --config evalsets/demo/dpo-healthy.yaml
echo
echo "== tunecheck eval: the base against the healthy checkpoints"
"$tunecheck" eval --suite evalsets/demo/suite.yaml --checkpoint "$run/*_adapters.safetensors" --report-dir "$report"
echo "healthy-run: every checkpoint passes the demo suite ($(( $(date +%s) - started )) s); reports in $report/"
