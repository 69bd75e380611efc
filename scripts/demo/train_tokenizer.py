#!/usr/bin/env python3
"""Trains the demo tokenizer: byte-level BPE (GPT-2 style) on the demo pretraining corpus.

Writes models/demo-base/tokenizer.json and tokenizer_config.json, with `<|endoftext|>` (id 0) as BOS, EOS and UNK
and no post-processor (no BOS is added to encoded text, like GPT-2). The vocabulary is small (1024 entries) and
learned from a corpus where the specialised answer style is rare, so specialised words split into many pieces.

Usage: python3 scripts/demo/train_tokenizer.py [--vocab-size 1024] [--output models/demo-base]
Needs: tokenizers, transformers (CPU). Runs in a few seconds; the same corpus gives the same files.
"""
import argparse
import json
import pathlib

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

ROOT = pathlib.Path(__file__).resolve().parents[2]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--vocab-size", type=int, default=1024)
    parser.add_argument("--corpus", default=str(ROOT / "evalsets" / "demo" / "corpus" / "train.jsonl"))
    parser.add_argument("--output", default=str(ROOT / "models" / "demo-base"))
    args = parser.parse_args()
    texts = [json.loads(line)["text"] for line in open(args.corpus, encoding="utf-8") if line.strip()]

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=args.vocab_size, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tokenizer.train_from_iterator(texts, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token="<|endoftext|>",
                                   eos_token="<|endoftext|>", unk_token="<|endoftext|>")
    output = pathlib.Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(output)
    lengths = [len(tokenizer.encode(t).ids) for t in texts]
    print(f"wrote {output}/tokenizer.json: {tokenizer.get_vocab_size()} entries; corpus {sum(lengths)} tokens, "
          f"{sum(lengths) / len(lengths):.1f} per line, longest {max(lengths)}")


if __name__ == "__main__":
    main()
