#!/usr/bin/env bash
# Runs tunecheck, PyTorch (+PEFT) and llama.cpp (f32, bf16) on the same random-initialised model folders, every
# task × shape, in one go, and prints a Markdown table with tunecheck's ratios to each peer.
#
#   pip install torch transformers peft llama-cpp-python gguf   # once; llama-cpp-python builds llama.cpp (~10 min)
#   bash ci/bench/run-all.sh                       # all shapes (s15m s110m q05b h110m), all tasks
#   SHAPES="s15m s110m" TASKS="score decode" bash ci/bench/run-all.sh
#   SHAPES="l3b m7b" MODELS=$HOME/bench-cache bash ci/bench/run-all.sh   # real sizes: 6.4 / 14.5 GB bf16 folders
#
# The real-size shapes (l3b, m7b) are bfloat16 folders: tunecheck reads them as stored (no tunecheck-bf16 or
# llamacpp-f32 column), score is 4 × 128 tokens and decode 32 tokens after a 32-token prompt, one repetition,
# no train task; PyTorch computes in float32 where that fits (l3b) and in bfloat16 where it does not (m7b).
# Keep MODELS outside the repository for them (git never sees it).
#
# Environment: SHAPES, TASKS (score decode train), TOOLS (tunecheck tunecheck-bf16 pytorch llamacpp-f32
# llamacpp-bf16), THREADS (default: all cores), REPEATS (default 3), OUT (JSON lines, default
# .build-bench/results.jsonl), SCRATCH (swift --scratch-path, default .build-bench-release).
# Timings are only meaningful on a quiet machine: the load average is recorded before every measurement and
# printed under the table.
set -euo pipefail
cd "$(dirname "$0")/../.."

SHAPES=${SHAPES:-"s15m s110m q05b h110m"}
TASKS=${TASKS:-"score decode train"}
TOOLS=${TOOLS:-"tunecheck tunecheck-bf16 pytorch llamacpp-f32 llamacpp-bf16"}
THREADS=${THREADS:-$(nproc)}
REPEATS=${REPEATS:-3}
OUT=${OUT:-.build-bench/results.jsonl}
SCRATCH=${SCRATCH:-.build-bench-release}
MODELS=${MODELS:-.build-bench/models}

swift build -c release --scratch-path "$SCRATCH" --product tunecheck >&2
TUNECHECK="$SCRATCH/release/tunecheck"
export OPENBLAS_NUM_THREADS=$THREADS
mkdir -p "$(dirname "$OUT")"
: > "$OUT"

load() { printf '{"load_average": %s}\n' "$(cut -d' ' -f1 /proc/loadavg)" >> "$OUT"; }

# One sgemm peak for every tool's peak_ratio (tunecheck's OpenBLAS 2048³ measurement).
PEAK=""

for shape in $SHAPES; do
    # Writes the folder once (cached under .build-bench/models/<shape>).
    "$TUNECHECK" bench score --shape "$shape" --batch 1 --seq 8 --repeats 1 --models-dir "$MODELS" > /dev/null
    sizes=()
    shape_tasks=$TASKS
    shape_repeats=$REPEATS
    torch_dtype=float32
    case $shape in
        l3b|m7b)
            sizes=(--batch 4 --seq 128 --prompt 32 --tokens 32)
            shape_tasks=${TASKS/train/}
            shape_repeats=1
            [ "$shape" = m7b ] && torch_dtype=bfloat16 ;;
    esac
    for task in $shape_tasks; do
        modes="none"
        [ "$task" = train ] && modes="sft dpo"
        for mode in $modes; do
            extra=()
            [ "$mode" != none ] && extra=(--mode "$mode")
            for tool in $TOOLS; do
                # The GGUF conversion in bench_llamacpp.py writes llama-architecture files only: no peer for the
                # Granite 4.0-H hybrid (h110m) there; PyTorch runs it (transformers' torch path of Mamba2).
                case "$shape:$tool" in h*:llamacpp-*|l3b:tunecheck-bf16|m7b:tunecheck-bf16|l3b:llamacpp-f32|m7b:llamacpp-f32) continue ;; esac
                echo "== $shape $task $mode $tool (load $(cut -d' ' -f1 /proc/loadavg))" >&2
                load
                case $tool in
                    tunecheck)
                        line=$("$TUNECHECK" bench "$task" --shape "$shape" --repeats "$shape_repeats" --models-dir "$MODELS" "${sizes[@]}" "${extra[@]}") ;;
                    tunecheck-bf16)
                        [ "$task" = train ] && continue
                        line=$("$TUNECHECK" bench "$task" --shape "$shape" --repeats "$REPEATS" --models-dir "$MODELS" --bf16-weights "${extra[@]}") ;;
                    pytorch)
                        line=$(python3 ci/bench/bench_pytorch.py "$task" --model "$MODELS/$shape" --shape "$shape" --threads "$THREADS" \
                            --repeats "$shape_repeats" --dtype "$torch_dtype" ${PEAK:+--sgemm-peak "$PEAK"} "${sizes[@]}" "${extra[@]}" 2>/dev/null) ;;
                    llamacpp-f32|llamacpp-bf16)
                        [ "$task" = train ] && continue
                        line=$(python3 ci/bench/bench_llamacpp.py "$task" --dtype "${tool#llamacpp-}" --model "$MODELS/$shape" --shape "$shape" \
                            --threads "$THREADS" --repeats "$shape_repeats" ${PEAK:+--sgemm-peak "$PEAK"} "${sizes[@]}" 2>/dev/null) ;;
                    *) echo "unknown tool $tool" >&2; exit 2 ;;
                esac
                echo "$line" >> "$OUT"
                echo "$line" >&2
                if [ -z "$PEAK" ] && [ "$tool" = tunecheck ]; then
                    PEAK=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["sgemm_peak_gflops"])' "$line")
                fi
            done
        done
    done
done
load
python3 ci/bench/table.py "$OUT"
