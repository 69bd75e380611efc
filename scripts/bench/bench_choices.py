#!/usr/bin/env python3
"""Items per second of the choices suite against lm-evaluation-harness 0.4.13 on the same data, in the same run.

For each model folder: `tunecheck eval --base DIR --choices FILE --suites choices` end to end (release build; model
load, tokenization, scoring, reports), then lm-eval's `hf` backend (float32, CPU) on the same items as a local
multiple_choice task, timing only its `loglikelihood` call (tokenization and scoring; model loading and dataset
preparation excluded, which favours lm-eval), at batch size 1 (its default) and 16 (`--batch-sizes`). Prints one JSON line per
measurement with the 1-minute load average before and after.

Usage: source /work/bench-cache/venv/bin/activate
       python3 scripts/bench/bench_choices.py MODEL_DIR [MODEL_DIR ...] [--choices evalsets/demo/choices.jsonl]
"""
import argparse
import json
import os
import pathlib
import subprocess
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]


def load():
    return os.getloadavg()[0]


def bench_tunecheck(model, choices, items):
    with tempfile.TemporaryDirectory() as out:
        before = load()
        started = time.time()
        subprocess.run([str(ROOT / ".build/release/tunecheck"), "eval", "--base", model, "--choices", choices, "--suites", "choices",
                        "--report-dir", out], check=True, capture_output=True)
        seconds = time.time() - started
    return {"tool": "tunecheck", "model": model, "items": items, "seconds": round(seconds, 3),
            "items_per_s": round(items / seconds, 2), "load_before": before, "load_after": load()}


def bench_lm_eval(model, choices, items, batch_size):
    import lm_eval
    from lm_eval.api.model import TemplateLM
    from lm_eval.tasks import TaskManager
    spent = []
    original = TemplateLM.loglikelihood

    def timed(self, requests, *args, **kwargs):
        started = time.time()
        result = original(self, requests, *args, **kwargs)
        spent.append(time.time() - started)
        return result

    TemplateLM.loglikelihood = timed
    with tempfile.TemporaryDirectory() as scratch:
        (pathlib.Path(scratch) / "bench_choices.yaml").write_text(
            f"task: bench_choices\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    test: {choices}\ntest_split: test\n"
            "output_type: multiple_choice\ndoc_to_text: context\ndoc_to_choice: choices\ndoc_to_target: answer\n"
            "metric_list:\n  - metric: acc\n  - metric: acc_norm\n")
        before = load()
        results = lm_eval.simple_evaluate(model="hf", model_args=f"pretrained={model},dtype=float32", tasks=["bench_choices"],
                                          device="cpu", batch_size=batch_size, task_manager=TaskManager(include_path=scratch))
    TemplateLM.loglikelihood = original
    seconds = sum(spent)
    return {"tool": f"lm-eval {lm_eval.__version__} hf batch {batch_size} (loglikelihood only)", "model": model, "items": items,
            "seconds": round(seconds, 3), "items_per_s": round(items / seconds, 2), "load_before": before, "load_after": load(),
            "acc": results["results"]["bench_choices"]["acc,none"]}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("models", nargs="+")
    parser.add_argument("--choices", default=str(ROOT / "evalsets/demo/choices.jsonl"))
    parser.add_argument("--batch-sizes", default="1,16", help="lm-eval batch sizes, comma separated")
    args = parser.parse_args()
    items = sum(1 for line in open(args.choices) if line.strip())
    for model in args.models:
        print(json.dumps(bench_tunecheck(model, args.choices, items)), flush=True)
        for batch_size in [int(x) for x in args.batch_sizes.split(",")]:
            print(json.dumps(bench_lm_eval(model, args.choices, items, batch_size)), flush=True)
        print(json.dumps(bench_tunecheck(model, args.choices, items)), flush=True)


if __name__ == "__main__":
    main()
