#!/usr/bin/env bash
# Regenerates everything the bundled demo ships: the corpus and evalsets (evalsets/demo), the tokenizer, and the
# pretrained base model (models/demo-base), then the base's golden outputs (golden/demo/base.json) and the tests'
# collapsed checkpoint (Tests/Fixtures/demo/collapsed-adapter).
#
#   1. scripts/demo/make_corpus.py      corpus, pairs, prompts, texts (seeded; about a second)
#   2. scripts/demo/train_tokenizer.py  byte-level BPE, 1024 entries (a few seconds)
#   3. scripts/demo/init_model.py       random tiny llama, float32 (torch for the initialisation only)
#   4. tunecheck train --config scripts/demo/pretrain.yaml   full-parameter pretraining by tunecheck itself
#   5. scripts/demo/finish_model.py     float32 → float16 into models/demo-base
#   6. tunecheck eval --suite evalsets/demo/suite.yaml --suites repetition,golden --update-golden   (base only)
#   7. tunecheck train --config evalsets/demo/dpo-too-hot.yaml -> Tests/Fixtures/demo/collapsed-adapter
#
# Needs Python 3 with tokenizers, transformers, torch, numpy, safetensors (CPU), and a release build of tunecheck.
# Usage: bash scripts/demo/make_demo_model.sh     (work files go to tunecheck-out/demo-pretrain/)
set -euo pipefail
cd "$(dirname "$0")/../.."
tunecheck=${TUNECHECK:-.build/release/tunecheck}
[ -x "$tunecheck" ] || swift build -c release
work=tunecheck-out/demo-pretrain
rm -rf "$work"
mkdir -p "$work"
started=$(date +%s)

python3 scripts/demo/make_corpus.py
python3 scripts/demo/train_tokenizer.py --output "$work/tokenizer"
python3 scripts/demo/init_model.py --tokenizer "$work/tokenizer" --output "$work/init"
"$tunecheck" train --config scripts/demo/pretrain.yaml
python3 scripts/demo/finish_model.py --run "$work/run/model" --output models/demo-base
"$tunecheck" eval --suite evalsets/demo/suite.yaml --suites repetition,golden --update-golden --report-dir "$work/golden-report"
# The tests' collapsed checkpoint: the last one the too-hot DPO run saves before a guard stops it (exit 1).
"$tunecheck" train --config evalsets/demo/dpo-too-hot.yaml --set adapter_path="$PWD/$work/too-hot" || true
cp "$(ls "$work"/too-hot/*_adapters.safetensors | tail -1)" Tests/Fixtures/demo/collapsed-adapter/adapters.safetensors
echo "make_demo_model.sh: done in $(( $(date +%s) - started )) s"
