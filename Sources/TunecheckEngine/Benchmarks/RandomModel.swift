import Foundation

/// Shapes of well-known small models, for benchmarks: random-initialised llama-architecture folders written with
/// the project's own safetensors writer.
public struct ModelShape: Sendable, Equatable {
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

    /// stories15M (llama2.c): dim 288, 6 layers, 6 heads, ffn 768, vocab 32000.
    public static let stories15M = ModelShape(name: "s15m", hidden: 288, layers: 6, heads: 6, kvHeads: 6, intermediate: 768, vocabulary: 32000, tied: false)
    /// stories110M: dim 768, 12 layers, 12 heads, ffn 2048, vocab 32000.
    public static let stories110M = ModelShape(name: "s110m", hidden: 768, layers: 12, heads: 12, kvHeads: 12, intermediate: 2048, vocabulary: 32000, tied: false)
    /// Qwen2.5-0.5B's sizes on the llama architecture: dim 896, 24 layers, 14 heads / 2 KV heads, ffn 4864, vocab 151936, tied.
    public static let qwen05B = ModelShape(name: "q05b", hidden: 896, layers: 24, heads: 14, kvHeads: 2, intermediate: 4864, vocabulary: 151_936,
                                           tied: true, ropeTheta: 1_000_000, maxPositions: 32768)

    public static let all = [stories15M, stories110M, qwen05B]

    public var headDim: Int { hidden / heads }

    /// Parameters of the linear layers a token passes through (q, k, v, o, gate, up, down per layer, and the
    /// output projection), for FLOP counts: 2 FLOPs per parameter per token.
    public var linearParameters: Int {
        let kvDim = kvHeads * headDim
        let perLayer = hidden * hidden * 2 + hidden * kvDim * 2 + 3 * hidden * intermediate
        return layers * perLayer + vocabulary * hidden
    }

    public var parameterCount: Int {
        let kvDim = kvHeads * headDim
        let perLayer = hidden * hidden * 2 + hidden * kvDim * 2 + 3 * hidden * intermediate + 2 * hidden
        return layers * perLayer + vocabulary * hidden * (tied ? 1 : 2) + hidden
    }
}

public enum RandomModel {
    /// Writes `config.json` and `model.safetensors` with N(0, 0.02) weights (norms 1) for `shape` into `folder`.
    public static func write(_ shape: ModelShape, to folder: URL, seed: UInt64 = 1) throws {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let kvDim = shape.kvHeads * shape.headDim
        var tensors: [(String, [Int])] = [("model.embed_tokens.weight", [shape.vocabulary, shape.hidden]), ("model.norm.weight", [shape.hidden])]
        if !shape.tied { tensors.append(("lm_head.weight", [shape.vocabulary, shape.hidden])) }
        for layer in 0..<shape.layers {
            let prefix = "model.layers.\(layer)"
            tensors += [("\(prefix).input_layernorm.weight", [shape.hidden]), ("\(prefix).post_attention_layernorm.weight", [shape.hidden]),
                        ("\(prefix).self_attn.q_proj.weight", [shape.hidden, shape.hidden]), ("\(prefix).self_attn.k_proj.weight", [kvDim, shape.hidden]),
                        ("\(prefix).self_attn.v_proj.weight", [kvDim, shape.hidden]), ("\(prefix).self_attn.o_proj.weight", [shape.hidden, shape.hidden]),
                        ("\(prefix).mlp.gate_proj.weight", [shape.intermediate, shape.hidden]), ("\(prefix).mlp.up_proj.weight", [shape.intermediate, shape.hidden]),
                        ("\(prefix).mlp.down_proj.weight", [shape.hidden, shape.intermediate])]
        }
        var generator = SeededGenerator(seed: seed)
        var buffers: [UnsafeMutableBufferPointer<Float>] = []
        defer { buffers.forEach { $0.deallocate() } }
        var toWrite: [TensorToWrite] = []
        for (name, dims) in tensors {
            let count = dims.reduce(1, *)
            let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: count)
            buffers.append(buffer)
            if name.hasSuffix("norm.weight") {
                buffer.initialize(repeating: 1)
            } else {
                // Uniform with the standard deviation of N(0, 0.02): cheap and deterministic.
                let bound: Float = 0.02 * 3.0.squareRoot().float
                for index in 0..<count { buffer[index] = Float.random(in: -bound...bound, using: &generator) }
            }
            toWrite.append(TensorToWrite(name: name, dtype: .float32, shape: dims, values: UnsafeBufferPointer(buffer)))
        }
        try SafeTensorsWriter.write(toWrite, metadata: ["format": "pt"], to: folder.appendingPathComponent("model.safetensors"))
        let config = """
        {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": \(shape.hidden), "intermediate_size": \(shape.intermediate),
         "num_hidden_layers": \(shape.layers), "num_attention_heads": \(shape.heads), "num_key_value_heads": \(shape.kvHeads),
         "vocab_size": \(shape.vocabulary), "max_position_embeddings": \(shape.maxPositions), "rms_norm_eps": 1e-05,
         "rope_theta": \(shape.ropeTheta), "tie_word_embeddings": \(shape.tied), "hidden_act": "silu", "torch_dtype": "float32",
         "bos_token_id": 1, "eos_token_id": 2}
        """
        try AtomicWrite.write(Data(config.utf8), to: folder.appendingPathComponent("config.json"))
    }
}
