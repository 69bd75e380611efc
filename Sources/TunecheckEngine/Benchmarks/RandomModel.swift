import Foundation

/// Shapes of well-known small models, for benchmarks: random-initialised llama-architecture folders written with
/// the project's own safetensors writer (or, with `hybrid`, Granite 4.0-H `granitemoehybrid` folders).
public struct ModelShape: Sendable, Equatable {
    /// The Mamba2 side of a Granite 4.0-H shape: which layers are attention (the rest are Mamba2) and the mixer's sizes.
    public struct Hybrid: Sendable, Equatable {
        public var attentionLayers: Set<Int>
        public var mambaHeads: Int
        public var mambaHeadDim: Int
        public var stateSize: Int
        public var groups: Int = 1
        public var convKernel: Int = 4
        public var chunkSize: Int = 256
    }

    public var name: String
    public var hidden: Int
    public var layers: Int
    public var heads: Int
    public var kvHeads: Int
    public var intermediate: Int
    public var vocabulary: Int
    public var tied: Bool
    public var ropeTheta: Double = 10_000
    public var maxPositions: Int = 2048
    public var hybrid: Hybrid? = nil
    /// The dtype the folder's weights are written in (the real-size shapes are published in bfloat16).
    public var dtype: DType = .float32

    /// stories15M (llama2.c): dim 288, 6 layers, 6 heads, ffn 768, vocab 32000.
    public static let stories15M = ModelShape(name: "s15m", hidden: 288, layers: 6, heads: 6, kvHeads: 6, intermediate: 768, vocabulary: 32000, tied: false)
    /// stories110M: dim 768, 12 layers, 12 heads, ffn 2048, vocab 32000.
    public static let stories110M = ModelShape(name: "s110m", hidden: 768, layers: 12, heads: 12, kvHeads: 12, intermediate: 2048, vocabulary: 32000, tied: false)
    /// Qwen2.5-0.5B's sizes on the llama architecture: dim 896, 24 layers, 14 heads / 2 KV heads, ffn 4864, vocab 151936, tied.
    public static let qwen05B = ModelShape(name: "q05b", hidden: 896, layers: 24, heads: 14, kvHeads: 2, intermediate: 4864, vocabulary: 151_936,
                                           tied: true, ropeTheta: 1_000_000, maxPositions: 32768)

    /// A 100M-class Granite 4.0-H-style hybrid beside stories110M: the same width, depth, MLP width and vocabulary, with
    /// ten of the twelve blocks Mamba2 (expand 2: 24 heads × 64, state 128, one group, chunk 256, as granite-4.0-h-micro
    /// per head) and attention in blocks 5 and 11 (no positions, as the Hub models).
    public static let hybrid110M = ModelShape(name: "h110m", hidden: 768, layers: 12, heads: 12, kvHeads: 4, intermediate: 2048, vocabulary: 32000,
                                              tied: false, hybrid: Hybrid(attentionLayers: [5, 11], mambaHeads: 24, mambaHeadDim: 64, stateSize: 128))

    /// Llama-3.2-3B: dim 3072, 28 layers, 24 heads / 8 KV heads, ffn 8192, vocab 128256, tied; bfloat16 (6.4 GB).
    public static let llama3B = ModelShape(name: "l3b", hidden: 3072, layers: 28, heads: 24, kvHeads: 8, intermediate: 8192, vocabulary: 128_256,
                                           tied: true, ropeTheta: 500_000, maxPositions: 131_072, dtype: .bfloat16)
    /// Mistral-7B: dim 4096, 32 layers, 32 heads / 8 KV heads, ffn 14336, vocab 32000, untied; bfloat16 (14.5 GB).
    public static let mistral7B = ModelShape(name: "m7b", hidden: 4096, layers: 32, heads: 32, kvHeads: 8, intermediate: 14336, vocabulary: 32000,
                                             tied: false, ropeTheta: 1_000_000, maxPositions: 32768, dtype: .bfloat16)

    public static let all = [stories15M, stories110M, qwen05B, hybrid110M, llama3B, mistral7B]

    public var headDim: Int { hidden / heads }

    func isAttention(_ layer: Int) -> Bool { hybrid.map { $0.attentionLayers.contains(layer) } ?? true }

    /// Parameters of the linear layers a token passes through (q, k, v, o, gate, up, down per layer, and the
    /// output projection), for FLOP counts: 2 FLOPs per parameter per token.
    public var linearParameters: Int {
        (0..<layers).reduce(0) { $0 + mixerParameters(layer: $1) + 3 * hidden * intermediate } + vocabulary * hidden
    }

    public var parameterCount: Int {
        linearParameters + (tied ? 0 : vocabulary * hidden) + layers * 2 * hidden + hidden
    }

    /// Parameters of a block's attention projections or Mamba2 in/out projections.
    func mixerParameters(layer: Int) -> Int {
        if isAttention(layer) { return hidden * hidden * 2 + hidden * kvHeads * headDim * 2 }
        guard let hybrid else { return 0 }
        let inner = hybrid.mambaHeads * hybrid.mambaHeadDim
        let convDim = inner + 2 * hybrid.groups * hybrid.stateSize
        return hidden * (inner + convDim + hybrid.mambaHeads) + inner * hidden
    }
}

public enum RandomModel {
    /// Writes `config.json` and `model.safetensors` with N(0, 0.02) weights (norms 1) for `shape` into `folder`.
    public static func write(_ shape: ModelShape, to folder: URL, seed: UInt64 = 1) throws {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let kvDim = shape.kvHeads * shape.headDim
        var tensors: [(String, [Int])] = [("model.embed_tokens.weight", [shape.vocabulary, shape.hidden]), ("model.norm.weight", [shape.hidden])]
        if !shape.tied { tensors.append(("lm_head.weight", [shape.vocabulary, shape.hidden])) }
        let mlp = shape.hybrid == nil ? "mlp" : "shared_mlp"
        for layer in 0..<shape.layers {
            let prefix = "model.layers.\(layer)"
            tensors += [("\(prefix).input_layernorm.weight", [shape.hidden]), ("\(prefix).post_attention_layernorm.weight", [shape.hidden])]
            if shape.isAttention(layer) {
                tensors += [("\(prefix).self_attn.q_proj.weight", [shape.hidden, shape.hidden]), ("\(prefix).self_attn.k_proj.weight", [kvDim, shape.hidden]),
                            ("\(prefix).self_attn.v_proj.weight", [kvDim, shape.hidden]), ("\(prefix).self_attn.o_proj.weight", [shape.hidden, shape.hidden])]
            } else if let hybrid = shape.hybrid {
                let inner = hybrid.mambaHeads * hybrid.mambaHeadDim
                let convDim = inner + 2 * hybrid.groups * hybrid.stateSize
                tensors += [("\(prefix).mamba.in_proj.weight", [inner + convDim + hybrid.mambaHeads, shape.hidden]),
                            ("\(prefix).mamba.conv1d.weight", [convDim, 1, hybrid.convKernel]), ("\(prefix).mamba.conv1d.bias", [convDim]),
                            ("\(prefix).mamba.dt_bias", [hybrid.mambaHeads]), ("\(prefix).mamba.A_log", [hybrid.mambaHeads]),
                            ("\(prefix).mamba.D", [hybrid.mambaHeads]), ("\(prefix).mamba.norm.weight", [inner]),
                            ("\(prefix).mamba.out_proj.weight", [shape.hidden, inner])]
            }
            if shape.hybrid != nil {
                tensors += [("\(prefix).shared_mlp.input_linear.weight", [2 * shape.intermediate, shape.hidden]),
                            ("\(prefix).shared_mlp.output_linear.weight", [shape.hidden, shape.intermediate])]
            } else {
                tensors += [("\(prefix).\(mlp).gate_proj.weight", [shape.intermediate, shape.hidden]), ("\(prefix).\(mlp).up_proj.weight", [shape.intermediate, shape.hidden]),
                            ("\(prefix).\(mlp).down_proj.weight", [shape.hidden, shape.intermediate])]
            }
        }
        // Streamed a chunk at a time: writing a 7B folder holds 4 MB of values, not the model. The values come from
        // one generator in tensor order, chunk after chunk, so a shape's folder is the same whatever the chunk size.
        var generator = SeededGenerator(seed: seed)
        let chunk = 1 << 20
        let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: chunk)
        defer { buffer.deallocate() }
        let headers = tensors.map { TensorHeader(name: $0.0, dtype: shape.dtype, shape: $0.1) }
        try SafeTensorsWriter.write(streaming: headers, metadata: ["format": "pt"], to: folder.appendingPathComponent("model.safetensors")) { index, sink in
            let name = tensors[index].0
            let total = tensors[index].1.reduce(1, *)
            var start = 0
            while start < total {
                let count = min(chunk, total - start)
                if name.hasSuffix("norm.weight") || name.hasSuffix(".D") {
                    buffer.update(repeating: 1)
                } else if name.hasSuffix("A_log") {
                    // A = −exp(A_log) in [−16, −1], as mamba_ssm initialises it.
                    for index in 0..<count { buffer[index] = log(Float.random(in: 1...16, using: &generator)) }
                } else if name.hasSuffix("dt_bias") {
                    // softplus(dt_bias) = dt in [0.001, 0.1] (log-uniform), the inverse softplus of mamba_ssm's init.
                    for index in 0..<count {
                        let dt = exp(Float.random(in: log(Float(0.001))...log(Float(0.1)), using: &generator))
                        buffer[index] = dt + log(-expm1(-dt))
                    }
                } else {
                    // Uniform with the standard deviation of N(0, 0.02): cheap and deterministic.
                    let bound: Float = 0.02 * 3.0.squareRoot().float
                    for index in 0..<count { buffer[index] = Float.random(in: -bound...bound, using: &generator) }
                }
                try sink.write(UnsafeBufferPointer(rebasing: buffer[0..<count]))
                start += count
            }
        }
        let config = shape.hybrid.map { hybridConfig(shape, $0) } ?? """
        {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": \(shape.hidden), "intermediate_size": \(shape.intermediate),
         "num_hidden_layers": \(shape.layers), "num_attention_heads": \(shape.heads), "num_key_value_heads": \(shape.kvHeads),
         "vocab_size": \(shape.vocabulary), "max_position_embeddings": \(shape.maxPositions), "rms_norm_eps": 1e-05,
         "rope_theta": \(shape.ropeTheta), "tie_word_embeddings": \(shape.tied), "hidden_act": "silu", "torch_dtype": "\(shape.dtype.configName)",
         "bos_token_id": 1, "eos_token_id": 2}
        """
        try AtomicWrite.write(Data(config.utf8), to: folder.appendingPathComponent("config.json"))
    }

    /// `config.json` of a Granite 4.0-H shape (Hub schema: `layer_types` mamba/attention, `position_embedding_type` nope).
    static func hybridConfig(_ shape: ModelShape, _ hybrid: ModelShape.Hybrid) -> String {
        let layerTypes = (0..<shape.layers).map { shape.isAttention($0) ? "\"attention\"" : "\"mamba\"" }.joined(separator: ", ")
        return """
        {"architectures": ["GraniteMoeHybridForCausalLM"], "model_type": "granitemoehybrid", "hidden_size": \(shape.hidden),
         "intermediate_size": \(shape.intermediate), "shared_intermediate_size": \(shape.intermediate), "num_local_experts": 0,
         "num_experts_per_tok": 0, "num_hidden_layers": \(shape.layers), "num_attention_heads": \(shape.heads),
         "num_key_value_heads": \(shape.kvHeads), "vocab_size": \(shape.vocabulary), "max_position_embeddings": \(shape.maxPositions),
         "rms_norm_eps": 1e-05, "position_embedding_type": "nope", "rope_theta": \(shape.ropeTheta), "layer_types": [\(layerTypes)],
         "mamba_n_heads": \(hybrid.mambaHeads), "mamba_d_head": \(hybrid.mambaHeadDim), "mamba_n_groups": \(hybrid.groups),
         "mamba_d_state": \(hybrid.stateSize), "mamba_d_conv": \(hybrid.convKernel), "mamba_expand": \(hybrid.mambaHeads * hybrid.mambaHeadDim / shape.hidden),
         "mamba_chunk_size": \(hybrid.chunkSize), "mamba_conv_bias": true, "mamba_proj_bias": false,
         "embedding_multiplier": 1.0, "residual_multiplier": 1.0, "attention_multiplier": \(1 / Double(shape.headDim).squareRoot()),
         "logits_scaling": 1.0, "tie_word_embeddings": \(shape.tied), "hidden_act": "silu", "torch_dtype": "\(shape.dtype.configName)",
         "bos_token_id": 1, "eos_token_id": 2}
        """
    }
}
