#!/usr/bin/env python3
"""Writes the demo model's untrained starting point: a tiny llama with seeded random weights (transformers'
default initialisation, normal with std 0.02) and the demo tokenizer, in float32. Torch is used for the
initialisation only; `tunecheck train` (fine_tune_type full) does the pretraining.

Usage: python3 scripts/demo/init_model.py --tokenizer models/demo-base --output DIR [--seed 2026]
"""
import argparse
import pathlib
import shutil

import torch
from transformers import LlamaConfig, LlamaForCausalLM

SHAPE = dict(hidden_size=128, intermediate_size=320, num_hidden_layers=4, num_attention_heads=4,
             num_key_value_heads=2, max_position_embeddings=512, tie_word_embeddings=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokenizer", required=True, help="folder with tokenizer.json and tokenizer_config.json")
    parser.add_argument("--output", required=True)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    tokenizer_folder = pathlib.Path(args.tokenizer)
    output = pathlib.Path(args.output)
    if output.exists():
        shutil.rmtree(output)
    output.mkdir(parents=True)
    vocab_size = len(__import__("json").loads((tokenizer_folder / "tokenizer.json").read_text())["model"]["vocab"])
    torch.manual_seed(args.seed)
    config = LlamaConfig(vocab_size=vocab_size, bos_token_id=0, eos_token_id=0, pad_token_id=None, rms_norm_eps=1e-5,
                         rope_theta=10000.0, **SHAPE)
    model = LlamaForCausalLM(config)
    model.generation_config.do_sample = False
    model.save_pretrained(output, safe_serialization=True)
    for name in ["tokenizer.json", "tokenizer_config.json"]:
        shutil.copy(tokenizer_folder / name, output / name)
    count = sum(p.numel() for p in model.parameters())
    print(f"wrote {output}: {count} parameters ({count * 4 / 1e6:.2f} MB float32)")


if __name__ == "__main__":
    main()
