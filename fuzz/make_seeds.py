#!/usr/bin/env python3
"""Writes the seed corpora in fuzz/corpus/<target>/ from small valid files of each kind (standard library only).

Seeds are committed; re-run this only to regenerate them: python3 fuzz/make_seeds.py
"""
import json, os, struct, shutil

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.dirname(here)
corpus = os.path.join(here, "corpus")


def put(target, name, data):
    folder = os.path.join(corpus, target)
    os.makedirs(folder, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


def read(path):
    with open(os.path.join(root, path), "rb") as f:
        return f.read()


def safetensors(tensors, metadata=None, pad=True):
    header, blobs, offset = {}, [], 0
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    if metadata is not None:
        header["__metadata__"] = metadata
    text = json.dumps(header, separators=(",", ":")).encode()
    if pad:
        text += b" " * ((8 - len(text) % 8) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


# safetensors: F32/F16/BF16 tensors, metadata, an unaligned header, an empty tensor, a real adapter file.
f32 = struct.pack("<6f", 0.5, -1.0, 2.0, 0.0, 3.25, -0.125)
f16 = struct.pack("<4e", 1.0, -2.0, 0.5, 65504.0)
bf16 = bytes.fromhex("803f00c0003f0000")
put("safetensors", "f32_f16_bf16", safetensors([("a", "F32", [2, 3], f32), ("b.weight", "F16", [4], f16), ("c", "BF16", [2, 2], bf16)],
                                               {"format": "pt", "step": "4"}))
put("safetensors", "unaligned", safetensors([("x", "F32", [1], struct.pack("<f", 1.0)), ("y", "I64", [1], struct.pack("<q", 7))], pad=False))
put("safetensors", "empty_tensor", safetensors([("e", "F32", [0, 4], b""), ("s", "F32", [], struct.pack("<f", 2.0))]))
put("safetensors", "rslora_adapter", read("Tests/Fixtures/adapters/peft-llama-rslora/adapter_model.safetensors"))

# config.json / generation_config.json / index.
for name in ["models/tiny-default", "Tests/Fixtures/models/llama-rope-llama3-old-schema", "Tests/Fixtures/models/gpt2-inner96",
             "Tests/Fixtures/models/phi3-partial-rotary", "Tests/Fixtures/models/granite", "Tests/Fixtures/models/mistral-sliding-window"]:
    put("model_config", os.path.basename(name) + "-config.json", read(name + "/config.json"))
put("model_config", "generation_config.json", read("models/tiny-default/generation_config.json"))
put("model_config", "index.json", read("Tests/Fixtures/models/llama-f16-sharded/model.safetensors.index.json"))

# tokenizer.json NUL text.
put("tokenizer", "tiny-default", read("models/tiny-default/tokenizer.json") + b"\0Question: How much water? Answer: caf\xc3\xa9 \xf0\x9f\x98\x80  \n\tend</s>")
for name in sorted(os.listdir(os.path.join(root, "Tests/Fixtures/tokenizers"))):
    path = os.path.join("Tests/Fixtures/tokenizers", name, "tokenizer.json")
    if os.path.exists(os.path.join(root, path)) and os.path.getsize(os.path.join(root, path)) < 70_000:
        put("tokenizer", name, read(path) + b"\0Hello world, it's 2024!  \xe2\x96\x81x <unk> <s>")

# adapter configs.
put("adapter_mlx", "mlx-llama", read("Tests/Fixtures/adapters/mlx-llama/adapter_config.json"))
for name in ["peft-llama", "peft-llama-rslora"]:
    put("adapter_peft", name, read(f"Tests/Fixtures/adapters/{name}/adapter_config.json"))

# evalset / answers JSONL.
for name in ["prompts", "pairs", "texts"]:
    lines = read(f"evalsets/default/{name}.jsonl").split(b"\n")[:3]
    put("evalset_jsonl", name, b"\n".join(lines) + b"\n")
put("evalset_jsonl", "answers", '{"id": "p1", "prompt": "Q?", "answer": "A.", "checkpoint": "base"}\n'
                                '{"id": "p1", "prompt": "Q?", "answer": "B.", "checkpoint": "0000100_adapters"}\n{"id": 2, "prompt": "R", "answer": "S"}\r\n\n')

# golden files.
put("golden", "golden", json.dumps({"suite": "default", "checkpoint": "base", "settings": {"max_tokens": "24", "seed": "0"},
                                    "outputs": [{"id": "p1", "prompt": "Q?", "prompt_ids": [0, 5, 9], "ids": [12, 13], "text": " ok"},
                                                {"id": "p2", "prompt": "R", "text": "answer text"}]}, indent=2))

# suite YAML.
put("suite_yaml", "default", read("evalsets/default/suite.yaml"))
put("suite_yaml", "full", """name: full
base: models/base
checkpoints: [runs/a/0000100_adapters.safetensors, "runs/b/checkpoint-*"]
fused:
  - path: models/fused
    adapter: runs/a
evalsets: {prompts: p.jsonl, pairs: pairs.jsonl, texts: t.jsonl, answers: answers.jsonl}
suites: [preference, golden, repetition, drift]
generation: {max_tokens: 16}
thresholds:
  preference: {beta: 0.1, min_accuracy: 0.6}
  golden: {min_similarity: 0.8}
golden_dir: golden
reports: {dir: out, formats: [junit, json, html]}
""")

# training YAML.
put("training_yaml", "lora_sft", """model: ../models/tiny-default
data: data
fine_tune_type: lora
num_layers: -1
lora_parameters: {rank: 4, scale: 20.0, dropout: 0.0, keys: [self_attn.q_proj, self_attn.v_proj]}
learning_rate: 1.0e-4
iters: 10
batch_size: 2
save_every: 5
adapter_path: adapters
lr_schedule: {name: cosine_decay, arguments: [1.0e-4, 10, 0.0], warmup: 2}
optimizer: adamw
optimizer_config: {adamw: {weight_decay: 0.01, betas: [0.9, 0.999]}}
max_grad_norm: 1.0
guards: {max_margin: 50, min_loss: 0.01, non_finite: true}
""")
put("training_yaml", "dpo", "model: m\ndata: d\nmode: dpo\nbeta: 0.1\nloss_type: ipo\nreference: base\niters: 2\ntrain: true\nseed: 3\n")

# chat templates: template NUL message NUL message ...
for name in ["chatml", "llama-3.1-8b-instruct", "mistral-7b-instruct-v0.3", "phi-3-mini-4k-instruct", "zephyr-7b-beta", "llama-2-7b-chat"]:
    template = json.loads(read(f"Tests/Fixtures/chat-templates/{name}.json"))["template"]
    put("chat_template", name, template.encode() + b"\0Sbe brief\0Hello, who are you?\0I am a model.\0Why?")
