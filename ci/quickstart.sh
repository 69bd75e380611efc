#!/usr/bin/env bash
# The README's first command: what tunecheck is for, on the bundled demo model (models/demo-base, pretrained by
# tunecheck on evalsets/demo/corpus), without downloading anything but the Swift packages of the build.
#
#   1. the bundled base answers the demo prompts; its own suite (repetition, golden outputs) passes
#   2. preflight on the DPO pairs: the preferred answers are far less likely under the base -> a warning
#   3. DPO with a learning rate far too high (evalsets/demo/dpo-too-hot.yaml); every saved checkpoint is
#      evaluated and a guard stops the run (exit 1 is the expected outcome here)
#   4. tunecheck eval: base against every saved checkpoint -> JUnit, JSON and HTML in tunecheck-out/demo-report/
#   5. a summary: the guard that stopped the run, a collapsed checkpoint's answer, where the reports are
#
# Exits 0 when the demo behaved as expected (the bad run was caught and its checkpoints fail the suite), 1 when
# something unexpected happened (for example the bad run was not caught). 2½-4 minutes on 2 cores from a
# fresh clone, most of it the release build.
set -uo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)
bash ci/setup.sh || exit 1
out=tunecheck-out
mkdir -p "$out"
echo "== building tunecheck (swift build -c release; 2-4 minutes on 2 cores the first time, log in $out/build.log)"
if ! swift build -c release > "$out/build.log" 2>&1; then
  tail -40 "$out/build.log"
  echo "quickstart: the release build failed" >&2
  exit 1
fi
tail -1 "$out/build.log"
tunecheck=.build/release/tunecheck
export TUNECHECK_NO_PROGRESS=1 COLUMNS=${COLUMNS:-120}
run=$out/demo-too-hot          # adapter_path in evalsets/demo/dpo-too-hot.yaml
report=$out/demo-report        # reports.dir in evalsets/demo/suite.yaml
rm -rf "$run" "$report" "$out/demo-base-report"
unexpected=()
section() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
sample_prompt=$'Question: Which foods are rich in iron?\nAnswer:'

section "1/4 The bundled base model (models/demo-base): greedy answers, and its own suite"
echo "Q: Which foods are rich in iron?"
echo "A:$("$tunecheck" generate --model models/demo-base --prompt "$sample_prompt" --max-tokens 48)"
if "$tunecheck" eval --suite evalsets/demo/suite.yaml --suites repetition,golden --report-dir "$out/demo-base-report" \
    > "$out/demo-base.log" 2>&1; then
  echo "base: repetition and golden checks pass on the 8 demo prompts (golden/demo/base.json)"
else
  cat "$out/demo-base.log"
  unexpected+=("the bundled base failed its own suite (see $out/demo-base.log)")
fi

section "2/4 Preflight: how hard will DPO have to push on these pairs?"
preflight=$("$tunecheck" preflight --model models/demo-base --pairs evalsets/demo/pairs.train.jsonl --json "$out/preflight.json")
preflight_status=$?
echo "$preflight"
grep -q "verdict WARN\|verdict LIKELY-FAIL" <<<"$preflight" || unexpected+=("preflight did not warn (status $preflight_status)")

section "3/4 DPO with a learning rate far too high (evalsets/demo/dpo-too-hot.yaml), every checkpoint evaluated"
"$tunecheck" train --config evalsets/demo/dpo-too-hot.yaml > "$out/demo-too-hot.log" 2>&1
train_status=$?
cat "$out/demo-too-hot.log"
guard=$(grep -o "guard '[^']*' stopped the run at .*" "$out/demo-too-hot.log" | head -1)
if [ "$train_status" -ne 1 ] || [ -z "$guard" ]; then
  unexpected+=("the too-hot run was not stopped by a guard (exit status $train_status)")
fi

section "4/4 tunecheck eval: the base against every saved checkpoint"
"$tunecheck" eval --suite evalsets/demo/suite.yaml --checkpoint "$run/*_adapters.safetensors" --report-dir "$report" \
  > "$out/demo-report.log" 2>&1
eval_status=$?
cat "$out/demo-report.log"
[ "$eval_status" -eq 1 ] || unexpected+=("tunecheck eval did not report failing checkpoints (exit status $eval_status)")

# Answers the repetition suite flagged: "  ✘ <checkpoint> › repetition › prompt <id>: <message>".
flagged=$(grep -o "[0-9]*_adapters › repetition › prompt [^:]*" "$out/demo-report.log" | head -2)
section "Summary"
[ -n "$guard" ] && echo "The guard that stopped the bad run: $guard"
[ -n "$flagged" ] || unexpected+=("no checkpoint's answers were flagged as repetitive")
while read -r line; do
  [ -n "$line" ] || continue
  checkpoint=${line%% ›*}
  prompt_id=${line##*prompt }
  question=$(grep "\"id\": \"$prompt_id\"" evalsets/demo/prompts.jsonl | sed 's/.*"Question: \(.*\)\\nAnswer:".*/\1/')
  prompt="Question: $question"$'\nAnswer:'
  base_answer=$("$tunecheck" generate --model models/demo-base --prompt "$prompt" --max-tokens 48)
  collapsed_answer=$("$tunecheck" generate --model models/demo-base --adapter "$run/$checkpoint.safetensors" --prompt "$prompt" --max-tokens 48)
  echo "Asked \"$question\" ($prompt_id):"
  collapsed_answer=${collapsed_answer# }
  printf '  %-17s "%s"\n' "base:" "${base_answer# }" "$checkpoint:" "${collapsed_answer//$'\n'/\\n}"
done <<<"$flagged"
echo "Reports: $report/report.html (open in a browser), $report/junit.xml, $report/report.json"
echo "         per checkpoint during training: $run/eval/; preflight numbers: $out/preflight.json"
echo "A healthy run on the same data passes the same suite: bash ci/healthy-run.sh"
echo "quickstart: $(( $(date +%s) - started )) s"
if ((${#unexpected[@]})); then
  printf 'quickstart: UNEXPECTED: %s\n' "${unexpected[@]}" >&2
  exit 1
fi
echo "quickstart: the demo behaved as expected (the bad run was caught)."
