"""Reads the JSON lines of `tunecheck bench` and the peer scripts (stdin or files) and prints a Markdown table:
tokens/s per tool for each shape × task, and tunecheck's ratios to each peer.

    python ci/bench/table.py results.jsonl
"""

import fileinput
import json

TOOLS = ["tunecheck", "tunecheck-bf16", "pytorch", "pytorch-bf16", "llamacpp-f32", "llamacpp-bf16"]
SHAPES = ["s15m", "s110m", "q05b", "h110m", "l3b", "m7b"]


def rate(value):
    return f"{value:.0f}" if value >= 100 else f"{value:.1f}"


def main():
    rows = {}
    loads = []
    for line in fileinput.input():
        line = line.strip()
        if not line.startswith("{"):
            continue
        record = json.loads(line)
        if "load_average" in record:
            loads.append(record["load_average"])
            continue
        task = record["task"] + (f" {record['mode']}" if record["task"] == "train" else "")
        rows.setdefault((record["shape"], task), {})[record["tool"]] = record
    present = [tool for tool in TOOLS if any(tool in entry for entry in rows.values())]
    header = ["shape", "task"] + [f"{tool} tok/s" for tool in present]
    ratios = [peer for peer in present if peer not in ("tunecheck", "tunecheck-bf16")]
    header += [f"÷ {peer}" for peer in ratios]
    header += ["tunecheck-bf16 ÷ llamacpp-bf16"] if "tunecheck-bf16" in present and "llamacpp-bf16" in present else []
    header += ["tunecheck % sgemm peak", "tunecheck RSS MB", "tunecheck anon MB", "tunecheck load s", "tunecheck decode GB/s"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))

    def order(key):
        shape, task = key
        return (SHAPES.index(shape) if shape in SHAPES else 99, ["score", "decode", "train sft", "train dpo"].index(task) if task in
                ["score", "decode", "train sft", "train dpo"] else 99)

    for key in sorted(rows, key=order):
        entry = rows[key]
        cells = list(key)
        cells += [rate(entry[tool]["tokens_per_s"]) if tool in entry else "–" for tool in present]
        ours = entry.get("tunecheck")
        for peer in ratios:
            cells.append(f"{ours['tokens_per_s'] / entry[peer]['tokens_per_s']:.2f}×" if ours and peer in entry else "–")
        if "tunecheck-bf16" in present and "llamacpp-bf16" in present:
            fast, peer = entry.get("tunecheck-bf16"), entry.get("llamacpp-bf16")
            cells.append(f"{fast['tokens_per_s'] / peer['tokens_per_s']:.2f}×" if fast and peer else "–")
        cells.append(f"{100 * ours['peak_ratio']:.0f}%" if ours else "–")
        cells.append(f"{ours['peak_rss_mb']:.0f}" if ours else "–")
        cells.append(f"{ours['peak_anon_mb']:.0f}" if ours and "peak_anon_mb" in ours else "–")
        cells.append(f"{ours['load_seconds']:.2f}" if ours else "–")
        cells.append(f"{ours['decode_gb_per_s']:.1f}" if ours and "decode_gb_per_s" in ours else "–")
        print("| " + " | ".join(cells) + " |")
    if loads:
        print(f"\nLoad average (1 min) during the run: {min(loads):.2f}–{max(loads):.2f}.")


if __name__ == "__main__":
    main()
