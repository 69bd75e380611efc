#!/usr/bin/env bash
# The main job on the bundled default model and evalset: installs what is needed, builds tunecheck (release),
# scores the default texts and preference pairs, and generates answers to the default prompts.
set -euo pipefail
cd "$(dirname "$0")/.."
bash ci/setup.sh
swift build -c release
tunecheck=.build/release/tunecheck
model=models/tiny-default
out=${TUNECHECK_OUT:-tunecheck-out}
mkdir -p "$out"

echo "== score: reference texts"
$tunecheck score --model "$model" --input evalsets/default/texts.jsonl --output "$out/texts.scored.jsonl"
echo "== score: preference pairs (chosen vs rejected log-prob gap)"
$tunecheck score --model "$model" --input evalsets/default/pairs.jsonl --output "$out/pairs.scored.jsonl"
python3 - "$out/pairs.scored.jsonl" <<'PY' 2>/dev/null || head -c 400 "$out/pairs.scored.jsonl"
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    print(f"  {r['id']}: gap_sum {r['gap_sum']:9.2f}   gap_mean {r['gap_mean']:7.3f}")
PY
echo "== generate: greedy answers"
$tunecheck generate --model "$model" --input evalsets/default/prompts.jsonl --output "$out/answers.jsonl" --max-tokens 24
$tunecheck generate --model "$model" --prompt "Question: Which foods are rich in fibre?
Answer:" --max-tokens 24
echo "== outputs in $out/"
