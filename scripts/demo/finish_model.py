#!/usr/bin/env python3
"""Copies the pretrained demo model out of the training run into models/demo-base, with its weights converted
from float32 to float16 (half the size; tunecheck computes in float32 either way) and `dtype` updated in
config.json. Conversion only: the weights were trained by `tunecheck train`.

Usage: python3 scripts/demo/finish_model.py --run tunecheck-out/demo-pretrain/run/model --output models/demo-base
Needs: numpy, safetensors.
"""
import argparse
import json
import pathlib
import shutil

import numpy as np
from safetensors.numpy import load_file, save_file


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--run", required=True, help="the model folder the trainer wrote (<adapter_path>/model)")
    parser.add_argument("--output", required=True)
    args = parser.parse_args()
    run, output = pathlib.Path(args.run), pathlib.Path(args.output)
    tensors = load_file(run / "model.safetensors")
    largest = max(float(np.abs(t).max()) for t in tensors.values())
    assert largest < 60000, f"a weight of magnitude {largest} does not fit float16"
    staging = output.with_name(output.name + ".staging")
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    save_file({name: tensors[name].astype(np.float16) for name in sorted(tensors)}, staging / "model.safetensors",
              metadata={"format": "pt"})
    config = json.loads((run / "config.json").read_text())
    config["dtype"] = "float16"
    config.pop("torch_dtype", None)
    (staging / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    for name in ["generation_config.json", "tokenizer.json", "tokenizer_config.json"]:
        if (run / name).exists():
            shutil.copy(run / name, staging / name)
    if output.exists():
        shutil.rmtree(output)
    staging.rename(output)
    size = sum(p.stat().st_size for p in output.iterdir())
    print(f"wrote {output}: {sum(t.size for t in tensors.values())} parameters, float16, {size / 1e6:.2f} MB in total")


if __name__ == "__main__":
    main()
