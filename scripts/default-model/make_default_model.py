#!/usr/bin/env python3
"""Makes models/tiny-default: the small model the README's first command runs on.

A byte-level BPE tokenizer (GPT-2 style, 512 entries) trained on the prompts and answers in evalsets/default,
and a 2-layer llama with random (seeded) weights. It is a placeholder that exercises every code path of the
engine; its answers are not meaningful text. Also writes reference.json: per-token log-probs and greedy ids
from transformers (float32, eager), so the CLI tests can check tunecheck's numbers without ../shared.

Usage: python3 scripts/default-model/make_default_model.py [--force]
Needs: torch, transformers, tokenizers (CPU). Runs in a few seconds.
"""
import argparse
import json
import pathlib
import shutil
import sys

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "models" / "tiny-default"
EVALSETS = ROOT / "evalsets" / "default"


def corpus():
    texts = []
    for name in ["texts.jsonl", "prompts.jsonl", "pairs.jsonl"]:
        for line in (EVALSETS / name).read_text().splitlines():
            if line.strip():
                record = json.loads(line)
                texts += [record[k] for k in ("text", "prompt", "chosen", "rejected") if k in record]
    return texts


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--force", action="store_true")
    args = parser.parse_args()
    if OUT.exists():
        if not args.force:
            sys.exit(f"{OUT} exists; pass --force to regenerate")
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=512, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tokenizer.train_from_iterator(corpus() * 4, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token="<|endoftext|>",
                                   eos_token="<|endoftext|>", unk_token="<|endoftext|>")
    fast.save_pretrained(OUT)

    torch.manual_seed(20261126)
    config = LlamaConfig(vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                         bos_token_id=0, eos_token_id=0, pad_token_id=None, tie_word_embeddings=False,
                         attn_implementation="eager")
    model = LlamaForCausalLM(config).eval()
    generator = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name.endswith("norm.weight"):
                parameter.copy_(1 + 0.1 * torch.randn(parameter.shape, generator=generator))
            else:
                parameter.copy_(0.2 * torch.randn(parameter.shape, generator=generator))
    model.save_pretrained(OUT, safe_serialization=True)

    model = LlamaForCausalLM.from_pretrained(OUT, dtype=torch.float32, attn_implementation="eager").eval()
    fast = PreTrainedTokenizerFast.from_pretrained(OUT)
    reference = {"texts": [], "generate": []}
    for line in (EVALSETS / "texts.jsonl").read_text().splitlines()[:3]:
        text = json.loads(line)["text"]
        ids = fast.encode(text)
        with torch.no_grad():
            logits = model(torch.tensor([ids])).logits[0].double()
        logprobs = torch.log_softmax(logits, dim=-1)
        reference["texts"].append({"text": text, "ids": ids,
                                   "logprobs": [logprobs[i, ids[i + 1]].item() for i in range(len(ids) - 1)]})
    for line in (EVALSETS / "prompts.jsonl").read_text().splitlines()[:2]:
        prompt = json.loads(line)["prompt"]
        ids = fast.encode(prompt)
        with torch.no_grad():
            out = model.generate(torch.tensor([ids]), do_sample=False, num_beams=1, max_new_tokens=12,
                                 min_new_tokens=12, repetition_penalty=1.0)
        new = out[0, len(ids):].tolist()
        reference["generate"].append({"prompt": prompt, "prompt_ids": ids, "greedy_ids": new,
                                      "greedy_text": fast.decode(new, skip_special_tokens=False)})
    (OUT / "reference.json").write_text(json.dumps(reference, indent=1) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
