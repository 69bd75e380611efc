"""llama.cpp (through llama-cpp-python) peer of `tunecheck bench`, on a GGUF conversion of the same folder.

    pip install llama-cpp-python gguf      # builds llama.cpp from source (~10 min on 2 cores)
    python ci/bench/bench_llamacpp.py score  --model .build-bench/models/s15m --dtype f32|bf16
    python ci/bench/bench_llamacpp.py decode --model .build-bench/models/s15m --dtype bf16
    python ci/bench/bench_llamacpp.py decode --model /work/bench-cache/l3b --dtype q4_0   # llama.cpp Q4_0 (gguf.quants)

The folder (a llama `config.json` + `model.safetensors`, as `tunecheck bench --shape` writes) is converted once to
`<folder>/bench-<dtype>.gguf` with the `gguf` package, the way llama.cpp's convert_hf_to_gguf.py does for llama:
q/k rows permuted to llama.cpp's rotary layout, 1-D norm weights kept in float32, the matrices in f32 or bf16.
The GGUF gets a placeholder SentencePiece vocabulary of the model's size (the benchmark feeds token ids, so no real
tokenizer is needed).

Tasks:
  score   B sequences of T tokens, each evaluated with logits_all=True (one llama_decode of T tokens), then
          log-softmax over the vocabulary and the next token's entry, as tunecheck and PyTorch do.
  decode  greedy (argmax) decoding of N tokens after a P-token prompt, KV cache on.
  train   not supported by llama.cpp: prints nothing and exits 0.
Prints one JSON line with the same fields as `tunecheck bench` and tool "llamacpp-f32" / "llamacpp-bf16".
"""

import os
import sys
import time

import json
import struct

import numpy as np

import common


def read_safetensors(path):
    """name -> (dtype, shape, raw bytes as a read-only memory map): nothing is read until used, so converting a 7B
    folder holds one tensor at a time (safetensors.numpy cannot load BF16, and loading a whole file would not fit)."""
    with open(path, "rb") as handle:
        length = struct.unpack("<Q", handle.read(8))[0]
        header = json.loads(handle.read(length))
    data = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + length)
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        tensors[name] = (info["dtype"], info["shape"], data[begin:end])
    return tensors


def as_float32(entry):
    dtype, shape, raw = entry
    if dtype == "F32":
        return raw.view(np.float32).reshape(shape)
    if dtype == "F16":
        return raw.view(np.float16).reshape(shape).astype(np.float32)
    if dtype == "BF16":
        return (raw.view(np.uint16).astype(np.uint32) << 16).view(np.float32).reshape(shape)
    raise SystemExit(f"unsupported dtype {dtype}")


def as_bfloat16_bits(entry):
    """bfloat16 bits (uint16) of a tensor: as stored for BF16, rounded to nearest even otherwise (as gguf does)."""
    dtype, shape, raw = entry
    if dtype == "BF16":
        return raw.view(np.uint16).reshape(shape)
    bits = as_float32(entry).view(np.uint32).astype(np.uint64)
    return ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)


def convert(folder, dtype):
    """Writes `<folder>/bench-<dtype>.gguf` unless it is newer than the safetensors file; returns its path. Streamed:
    the tensor infos are written first, then one tensor's data at a time."""
    import gguf

    target = os.path.join(folder, f"bench-{dtype}.gguf")
    source = os.path.join(folder, "model.safetensors")
    if os.path.exists(target) and os.path.getmtime(target) >= os.path.getmtime(source):
        return target
    config = common.load_config(folder)
    hidden, heads = config["hidden_size"], config["num_attention_heads"]
    kv_heads = config.get("num_key_value_heads", heads)
    vocabulary = config["vocab_size"]
    tensors = read_safetensors(source)

    writer = gguf.GGUFWriter(target + ".partial", "llama")
    writer.add_name(os.path.basename(os.path.normpath(folder)))
    writer.add_context_length(config.get("max_position_embeddings", 2048))
    writer.add_embedding_length(hidden)
    writer.add_block_count(config["num_hidden_layers"])
    writer.add_feed_forward_length(config["intermediate_size"])
    writer.add_head_count(heads)
    writer.add_head_count_kv(kv_heads)
    writer.add_rope_dimension_count(hidden // heads)
    writer.add_rope_freq_base(float(config.get("rope_theta", 10000.0)))
    writer.add_layer_norm_rms_eps(float(config.get("rms_norm_eps", 1e-5)))
    writer.add_vocab_size(vocabulary)
    qtype = {"f32": gguf.GGMLQuantizationType.F32, "bf16": gguf.GGMLQuantizationType.BF16,
             "q4_0": gguf.GGMLQuantizationType.Q4_0}[dtype]
    writer.add_file_type({"f32": gguf.LlamaFileType.ALL_F32, "bf16": gguf.LlamaFileType.MOSTLY_BF16,
                          "q4_0": gguf.LlamaFileType.MOSTLY_Q4_0}[dtype])

    # Placeholder SentencePiece vocabulary: <unk> <s> </s>, the 256 byte tokens, then filler pieces.
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    types = [gguf.TokenType.UNKNOWN, gguf.TokenType.CONTROL, gguf.TokenType.CONTROL] + [gguf.TokenType.BYTE] * 256
    tokens += [f"\u2581t{i}" for i in range(vocabulary - len(tokens))]
    types += [gguf.TokenType.NORMAL] * (vocabulary - len(types))
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores([-float(i) for i in range(vocabulary)])
    writer.add_token_types(types)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_unk_token_id(0)
    writer.add_add_bos_token(False)

    def permute(weights, n_head):
        # HF stores each rotary head as two halves; llama.cpp rotates interleaved pairs.
        return weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:]).swapaxes(1, 2).reshape(weights.shape)

    # (gguf name, safetensors name, permutation heads or None) in file order.
    plan = [("token_embd.weight", "model.embed_tokens.weight", None), ("output_norm.weight", "model.norm.weight", None)]
    if "lm_head.weight" in tensors and not config.get("tie_word_embeddings", False):
        plan.append(("output.weight", "lm_head.weight", None))
    names = {"input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm", "self_attn.q_proj": "attn_q",
             "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output",
             "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down"}
    for layer in range(config["num_hidden_layers"]):
        for hf, ggml in names.items():
            count = heads if hf == "self_attn.q_proj" else kv_heads if hf == "self_attn.k_proj" else None
            plan.append((f"blk.{layer}.{ggml}.weight", f"model.layers.{layer}.{hf}.weight", count))

    def array(source, count):
        entry = tensors[source]
        if qtype == gguf.GGMLQuantizationType.Q4_0 and len(entry[1]) == 2:
            # Q4_0 (llama.cpp's own rounding, gguf.quants), a block of rows at a time to bound the float32 copy.
            from gguf import quants
            values = as_float32(entry)
            if count is not None:
                values = permute(values, count)
            return np.concatenate([quants.quantize(np.ascontiguousarray(values[start:start + 4096]), qtype)
                                   for start in range(0, values.shape[0], 4096)])
        if len(entry[1]) == 1 or qtype == gguf.GGMLQuantizationType.F32:
            values = as_float32(entry)
        else:
            values = as_bfloat16_bits(entry)  # norms stay float32, as llama.cpp's converter keeps them
        if count is not None:
            values = permute(values, count)
        return np.ascontiguousarray(values)

    for name, source, count in plan:
        shape = tensors[source][1]
        if len(shape) == 1 or qtype == gguf.GGMLQuantizationType.F32:
            writer.add_tensor_info(name, shape, np.dtype(np.float32), int(np.prod(shape)) * 4)
        elif qtype == gguf.GGMLQuantizationType.Q4_0:
            row_bytes = shape[1] // 32 * 18  # 32 weights per block: an f16 scale and 16 bytes of nibbles
            writer.add_tensor_info(name, [shape[0], row_bytes], np.dtype(np.uint8), shape[0] * row_bytes, raw_dtype=qtype)
        else:
            writer.add_tensor_info(name, [shape[0], shape[1] * 2], np.dtype(np.uint8), int(np.prod(shape)) * 2, raw_dtype=qtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    for name, source, count in plan:
        values = array(source, count)
        writer.write_tensor_data(values if values.dtype == np.float32 else values.view(np.uint8))
    writer.close()
    os.replace(target + ".partial", target)
    return target


def main():
    import argparse

    dtype = "f32"
    if "--dtype" in sys.argv:
        index = sys.argv.index("--dtype")
        dtype = sys.argv[index + 1]
        del sys.argv[index:index + 2]
    if dtype not in ("f32", "bf16", "q4_0"):
        raise SystemExit("--dtype is f32, bf16 or q4_0")
    args = common.parse_args(f"llamacpp-{dtype}")
    if args.task == "train":
        print(f"llamacpp-{dtype}: train is not supported by llama.cpp", file=sys.stderr)
        return
    config = common.load_config(args.model)
    vocabulary = config["vocab_size"]
    generator = common.rng()
    path = convert(args.model, dtype)

    import llama_cpp

    context = args.seq if args.task == "score" else args.prompt + args.tokens
    load_start = time.perf_counter()
    llm = llama_cpp.Llama(model_path=path, n_ctx=context, n_batch=context, n_ubatch=context, n_threads=args.threads,
                          n_threads_batch=args.threads, logits_all=args.task == "score", use_mmap=True, verbose=False)
    load_seconds = time.perf_counter() - load_start
    peak = args.sgemm_peak or measure_sgemm_peak()
    extra = {}
    sequences = 1
    if args.task == "score":
        batch = args.batch or 8
        ids = [common.random_ids(args.seq, vocabulary, generator) for _ in range(batch)]

        def score():
            results = []
            for sequence in ids:
                llm.reset()
                llm.eval(sequence)
                logits = llm.scores[: args.seq - 1]
                shift = logits.max(axis=-1, keepdims=True)
                log_sum = np.log(np.exp(logits - shift).sum(axis=-1)) + shift[:, 0]
                results.append(logits[np.arange(args.seq - 1), sequence[1:]] - log_sum)
            return results

        seconds = common.best_of(args.repeats, score)
        processed, sequences = batch * args.seq, batch
        extra = {"batch": batch, "seq": args.seq}
    else:
        prompt = common.random_ids(args.prompt, vocabulary, generator)

        def generate(count):
            llm.reset()
            llm.eval(prompt)
            out = []
            for _ in range(count):
                logits = np.ctypeslib.as_array(llm._ctx.get_logits_ith(-1), shape=(vocabulary,))
                token = int(logits.argmax())
                out.append(token)
                if len(out) < count:
                    llm.eval([token])
            return out

        prefill = common.best_of(args.repeats, lambda: generate(1))
        seconds = common.best_of(args.repeats, lambda: generate(args.tokens))
        processed = args.tokens
        extra = {"prompt": args.prompt, "tokens": args.tokens, "prefill_seconds": prefill,
                 "decode_only_tokens_per_s": (args.tokens - 1) / max(seconds - prefill, 1e-9)}
    common.emit(f"llamacpp-{dtype}", args, config, seconds, processed, sequences, peak, load_seconds, args.threads, extra)


def measure_sgemm_peak():
    """Best of a few 2048³ float32 matmuls through numpy, in GFLOP/s (run-all.sh passes tunecheck's instead)."""
    n = 2048
    a, b = np.full((n, n), 0.5, dtype=np.float32), np.full((n, n), 0.25, dtype=np.float32)
    best = float("inf")
    for _ in range(4):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


if __name__ == "__main__":
    main()
