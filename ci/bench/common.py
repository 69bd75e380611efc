"""Shared pieces of the peer benchmark scripts: arguments, FLOP counts and the JSON line.

The FLOP counts are the same formulas `tunecheck bench` uses (Sources/TunecheckCLI/Commands/BenchCommand.swift),
so `gflops` and `peak_ratio` compare like with like:
  linear layers: 2 · (q, k, v, o, gate, up, down per layer + output projection parameters) per token;
  causal attention: Q·Kᵀ and P·V over the visible keys only, 2 · T · (T + 1) · queryDim per layer per sequence.
"""

import argparse
import json
import os
import random
import resource
import time


def parse_args(tool):
    parser = argparse.ArgumentParser(description=f"{tool} peer of `tunecheck bench` (prints one JSON line)")
    parser.add_argument("task", choices=["score", "decode", "train"])
    parser.add_argument("--model", required=True, help="a llama model folder (config.json + model.safetensors)")
    parser.add_argument("--shape", help="name printed in the JSON line (default: the folder's name)")
    parser.add_argument("--batch", type=int, help="sequences per batch (score default 8, train default 2)")
    parser.add_argument("--seq", type=int, default=256)
    parser.add_argument("--prompt", type=int, default=32)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--mode", choices=["sft", "dpo"], default="sft")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--dtype", choices=["float32", "bfloat16", "f32", "bf16"], default=None,
                        help="pytorch: the dtype to compute in (float32 default; bfloat16 where float32 does not fit); "
                             "llamacpp: the GGUF conversion (f32 or bf16)")
    parser.add_argument("--sgemm-peak", type=float,
                        help="GFLOP/s to divide by (run-all.sh passes tunecheck's measured OpenBLAS peak); "
                             "default: measured here with a 2048³ float32 matmul")
    args = parser.parse_args()
    if args.shape is None:
        args.shape = os.path.basename(os.path.normpath(args.model))
    return args


def load_config(folder):
    with open(os.path.join(folder, "config.json")) as handle:
        return json.load(handle)


def linear_parameters(config):
    hidden = config["hidden_size"]
    heads = config["num_attention_heads"]
    kv_heads = config.get("num_key_value_heads", heads)
    head_dim = config.get("head_dim") or hidden // heads
    query_dim, kv_dim = heads * head_dim, kv_heads * head_dim
    per_layer = hidden * (query_dim + 2 * kv_dim) + query_dim * hidden + 3 * hidden * config["intermediate_size"]
    return config["num_hidden_layers"] * per_layer + config["vocab_size"] * hidden


def parameter_count(config):
    extra = 0 if config.get("tie_word_embeddings", False) else config["vocab_size"] * config["hidden_size"]
    return linear_parameters(config) + extra


def attention_flops(config, length):
    heads = config["num_attention_heads"]
    head_dim = config.get("head_dim") or config["hidden_size"] // heads
    return 2.0 * length * (length + 1) * heads * head_dim * config["num_hidden_layers"]


def weight_bytes_per_token(config, bytes_per_weight):
    """Weight bytes one decoded token reads (every linear weight once): tokens/s × this = achieved bandwidth."""
    return linear_parameters(config) * bytes_per_weight


def task_flops(config, args, processed, sequences):
    linear = linear_parameters(config)
    if args.task == "score":
        return 2.0 * linear * processed + attention_flops(config, args.seq) * sequences
    if args.task == "decode":
        return 2.0 * linear * (args.prompt + args.tokens)
    # train: forward 2·P·N + input-gradient backward 2·P·N (weight gradients are LoRA-only); attention ×3.
    return 4.0 * linear * processed + 3 * attention_flops(config, args.seq) * sequences


def random_ids(count, vocabulary, rng):
    return [rng.randrange(3, vocabulary) for _ in range(count)]


def rng():
    return random.Random(42)


def best_of(repeats, function):
    function()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best


def anonymous_peak_mb():
    """Peak anonymous memory is not reported by the kernel; the current RssAnon at the end is a lower bound, and
    the scripts sample it while they run (see `AnonymousSampler`)."""
    return AnonymousSampler.peak / 1048576


def rss_anon_bytes():
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    return 0


class AnonymousSampler:
    """Samples RssAnon every 5 ms on a daemon thread; `peak` is the largest value seen (like tunecheck's MemorySampler)."""
    peak = 0

    @classmethod
    def start(cls):
        import threading

        def run():
            while True:
                cls.peak = max(cls.peak, rss_anon_bytes())
                time.sleep(0.005)

        threading.Thread(target=run, daemon=True).start()


def emit(tool, args, config, seconds, processed, sequences, peak, load_seconds, threads, extra, bytes_per_weight=4):
    flops = task_flops(config, args, processed, sequences)
    line = {"tool": tool, "task": args.task, "shape": args.shape}
    line.update(extra)
    line.update({
        "seconds": seconds,
        "tokens_per_s": processed / seconds,
        "gflops": flops / seconds / 1e9,
        "sgemm_peak_gflops": peak,
        "peak_ratio": flops / seconds / 1e9 / peak,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "peak_anon_mb": max(AnonymousSampler.peak, rss_anon_bytes()) / 1048576,
        "weights_mb": parameter_count(config) * bytes_per_weight / 1048576,
        "load_seconds": load_seconds,
        "threads": threads,
    })
    print(json.dumps(line), flush=True)
