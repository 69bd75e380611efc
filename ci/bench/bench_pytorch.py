"""PyTorch + transformers (+ PEFT for train) peer of `tunecheck bench`, on CPU in float32 (`--dtype bfloat16` for
shapes whose float32 copy does not fit: m7b on a 24 GiB machine).

    pip install torch transformers peft   # CPU wheels are enough
    python ci/bench/bench_pytorch.py score  --model .build-bench/models/s15m [--batch 8 --seq 256]
    python ci/bench/bench_pytorch.py decode --model .build-bench/models/s15m [--prompt 32 --tokens 64]
    python ci/bench/bench_pytorch.py train  --model .build-bench/models/s15m [--mode sft|dpo --batch 2 --seq 256]

Tasks, as tunecheck runs them:
  score   per-token log-probs of B random sequences of T tokens, one forward over the (B, T) batch,
          log_softmax over the vocabulary and a gather of the next token's entry.
  decode  greedy KV-cache `generate` of N new tokens after a P-token prompt (batch 1, EOS ignored).
  train   one LoRA step (rank 8 on every linear layer of the blocks, AdamW): forward, loss, backward, update.
          sft: mean next-token cross-entropy over B sequences; dpo: sigmoid DPO over B (chosen, rejected) pairs
          (2·B sequences, response = second half) with fixed reference log-probs, as tunecheck's benchmark does.
Prints one JSON line with the same fields as `tunecheck bench` and tool "pytorch".
"""

import time

import torch

import common


def main():
    args = common.parse_args("pytorch")
    common.AnonymousSampler.start()
    torch.set_num_threads(args.threads)
    dtype = torch.bfloat16 if args.dtype in ("bfloat16", "bf16") else torch.float32
    tool = "pytorch-bf16" if dtype == torch.bfloat16 else "pytorch"
    config = common.load_config(args.model)
    vocabulary = config["vocab_size"]
    generator = common.rng()

    from transformers import AutoModelForCausalLM

    load_start = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=dtype)
    model.eval()
    load_seconds = time.perf_counter() - load_start
    peak = args.sgemm_peak or measure_sgemm_peak()

    extra = {}
    sequences = 1
    if args.task == "score":
        batch = args.batch or 8
        ids = torch.tensor([common.random_ids(args.seq, vocabulary, generator) for _ in range(batch)])

        def score():
            with torch.inference_mode():
                logits = model(input_ids=ids, use_cache=False).logits[:, :-1]
                return torch.log_softmax(logits, dim=-1).gather(-1, ids[:, 1:, None]).squeeze(-1)

        seconds = common.best_of(args.repeats, score)
        processed, sequences = batch * args.seq, batch
        extra = {"batch": batch, "seq": args.seq}
    elif args.task == "decode":
        prompt = torch.tensor([common.random_ids(args.prompt, vocabulary, generator)])
        mask = torch.ones_like(prompt)

        def generate(count):
            with torch.inference_mode():
                out = model.generate(input_ids=prompt, attention_mask=mask, max_new_tokens=count, min_new_tokens=count,
                                     do_sample=False, use_cache=True, pad_token_id=0, eos_token_id=None)
            assert out.shape[1] == args.prompt + count

        prefill = common.best_of(args.repeats, lambda: generate(1))
        seconds = common.best_of(args.repeats, lambda: generate(args.tokens))
        processed = args.tokens
        rate = (args.tokens - 1) / max(seconds - prefill, 1e-9)
        extra = {"prompt": args.prompt, "tokens": args.tokens, "prefill_seconds": prefill, "decode_only_tokens_per_s": rate,
                 "decode_gb_per_s": rate * common.weight_bytes_per_token(config, 2 if dtype == torch.bfloat16 else 4) / 1e9}
    else:
        from peft import LoraConfig, get_peft_model

        batch = args.batch or 2
        count = 2 * batch if args.mode == "dpo" else batch
        ids = torch.tensor([common.random_ids(args.seq, vocabulary, generator) for _ in range(count)])
        model.train()
        lora = get_peft_model(model, LoraConfig(r=8, lora_alpha=160, lora_dropout=0.0, target_modules="all-linear"))
        optimizer = torch.optim.AdamW([p for p in lora.parameters() if p.requires_grad], lr=1e-4)
        response_start = args.seq // 2
        reference = torch.tensor([-100.0, -110.0])

        def step():
            optimizer.zero_grad(set_to_none=True)
            logits = lora(input_ids=ids, use_cache=False).logits[:, :-1]
            logprobs = torch.log_softmax(logits, dim=-1).gather(-1, ids[:, 1:, None]).squeeze(-1)
            if args.mode == "sft":
                loss = -logprobs.mean()
            else:
                summed = logprobs[:, response_start - 1:].sum(-1)
                chosen, rejected = summed[0::2], summed[1::2]
                margin = (chosen - reference[0]) - (rejected - reference[1])
                loss = -torch.nn.functional.logsigmoid(0.1 * margin).mean()
            loss.backward()
            optimizer.step()

        seconds = common.best_of(args.repeats, step)
        processed, sequences = count * args.seq, count
        extra = {"batch": batch, "seq": args.seq, "mode": args.mode, "lora_rank": 8}
    common.emit(tool, args, config, seconds, processed, sequences, peak, load_seconds, torch.get_num_threads(), extra,
                bytes_per_weight=2 if dtype == torch.bfloat16 else 4)


def measure_sgemm_peak():
    """Best of a few 2048³ float32 matmuls through torch, in GFLOP/s."""
    n = 2048
    a, b = torch.full((n, n), 0.5), torch.full((n, n), 0.25)
    best = float("inf")
    for _ in range(4):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


if __name__ == "__main__":
    main()
