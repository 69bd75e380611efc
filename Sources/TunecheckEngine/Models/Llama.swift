import Foundation
import TunecheckJSON

/// The fields shared by the Llama family (`llama`, `mistral`, `qwen2`, `qwen3`, `granite`, `phi3`), with
/// transformers' defaults for the optional ones. Sizes that define the tensors are required: a config without
/// them is broken, and guessing would only move the error to a confusing shape mismatch.
struct LlamaFamilyConfiguration: SettingsCodable {
    var vocabSize = 0
    var hiddenSize = 0
    var intermediateSize = 0
    var layerCount = 0
    var headCount = 0
    var kvHeadCount: Int?
    var headDim: Int?
    var hiddenAct = "silu"
    var maxPositionEmbeddings = 2048
    var rmsNormEps = 1e-6
    var tieWordEmbeddings = false
    var attentionBias = false
    var mlpBias = false
    var slidingWindow: Int?
    var useSlidingWindow = false
    /// Read from either rope schema, and the declared dtype from `dtype` or `torch_dtype`, by `decode(_:)`.
    var rope = RopeConfiguration()
    var declaredDType: DType?

    static var fields: [SettingsField<Self>] {
        [.required("vocab_size", \.vocabSize), .required("hidden_size", \.hiddenSize),
         .required("intermediate_size", \.intermediateSize), .required("num_hidden_layers", \.layerCount),
         .required("num_attention_heads", \.headCount), .field("num_key_value_heads", \.kvHeadCount),
         .field("head_dim", \.headDim), .field("hidden_act", \.hiddenAct), .field("max_position_embeddings", \.maxPositionEmbeddings),
         .field("rms_norm_eps", \.rmsNormEps), .field("tie_word_embeddings", \.tieWordEmbeddings),
         .field("attention_bias", \.attentionBias), .field("mlp_bias", \.mlpBias), .field("sliding_window", \.slidingWindow),
         .field("use_sliding_window", \.useSlidingWindow)]
    }
    /// config.json holds every other setting of the model too.
    static var rejectsUnknownKeys: Bool { false }

    static func decode(_ config: JSONValue) throws -> LlamaFamilyConfiguration {
        let decoder = JSONValueDecoder()
        var result = try decoder.decode(LlamaFamilyConfiguration.self, from: config)
        result.rope = try decoder.decode(RopeConfiguration.self, from: config)
        result.declaredDType = try decoder.decode(DeclaredDType.self, from: config).dtype
        return result
    }

    /// The spec of a plain Llama block built from these fields; architectures adjust what differs.
    func baseSpecification(modelType: String) throws -> TransformerSpec {
        guard let activation = Activation(configName: hiddenAct) else {
            throw ConfigProblem("hidden_act '\(hiddenAct)' is not supported (silu, gelu, gelu_new, relu)")
        }
        guard headCount > 0 else { throw ConfigProblem("num_attention_heads must be positive") }
        let resolvedHeadDim = headDim ?? hiddenSize / headCount
        if headDim == nil, hiddenSize % headCount != 0 {
            throw ConfigProblem("hidden_size \(hiddenSize) is not divisible by num_attention_heads \(headCount) and no head_dim is given")
        }
        // Int(_:) traps on values it cannot represent, so an absurd partial_rotary_factor is checked first.
        let rotaryWidth = Double(resolvedHeadDim) * (rope.partialRotaryFactor ?? 1.0)
        guard rotaryWidth.isFinite, abs(rotaryWidth) < 1e15 else {
            throw ConfigProblem("partial_rotary_factor \(rope.partialRotaryFactor ?? 1.0) with head_dim \(resolvedHeadDim) gives no usable rotary dimension")
        }
        let rotaryDim = Int(rotaryWidth)
        let rotary = RotaryEmbedding(theta: rope.theta ?? 10_000, rotaryDim: rotaryDim, scaling: rope.scaling)
        return TransformerSpec(
            modelType: modelType,
            vocabularySize: vocabSize,
            hiddenSize: hiddenSize,
            layerCount: layerCount,
            attention: AttentionShape(heads: headCount, kvHeads: kvHeadCount ?? headCount, headDim: resolvedHeadDim),
            intermediateSize: intermediateSize,
            norm: .rms(epsilon: Float(rmsNormEps)),
            positions: .rotary(rotary),
            feedForward: .gated(activation),
            attentionScale: 1 / Float(resolvedHeadDim).squareRoot(),
            queryKeyValueBias: attentionBias,
            outputBias: attentionBias,
            mlpBias: mlpBias,
            tiedEmbeddings: tieWordEmbeddings,
            slidingWindow: nil,
            maxPositions: maxPositionEmbeddings,
            declaredDType: declaredDType
        )
    }
}

/// Fused projections distinguish Phi-3's weight layout from the rest of the Llama family.
struct LlamaWeightOptions {
    var fusedQueryKeyValue = false
    var fusedGateUp = false
}

/// `llama` and `mistral` (Mistral is Llama with an optional sliding window).
enum Llama: Architecture {
    static let modelTypes = ["llama", "mistral"]

    static func specification(configJSON: JSONValue, modelType: String) throws -> TransformerSpec {
        let config = try LlamaFamilyConfiguration.decode(configJSON)
        var spec = try config.baseSpecification(modelType: modelType)
        if modelType == "mistral" { spec.slidingWindow = config.slidingWindow }
        return spec
    }

    static func loadWeights(from store: WeightStore, spec: TransformerSpec) throws -> DecoderWeights {
        try loadLlamaFamilyWeights(from: store, spec: spec, options: LlamaWeightOptions())
    }
}

/// Loads the `model.layers.N.{self_attn,mlp}` layout shared by the Llama family.
func loadLlamaFamilyWeights(from store: WeightStore, spec: TransformerSpec, options: LlamaWeightOptions) throws -> DecoderWeights {
    let hidden = spec.hiddenSize
    let attention = spec.attention
    let intermediate = spec.intermediateSize
    let embedding = try store.weightMatrix("model.embed_tokens.weight", shape: [spec.vocabularySize, hidden])
    var layers: [DecoderLayerWeights] = []
    layers.reserveCapacity(spec.layerCount)
    for layer in 0..<spec.layerCount {
        let prefix = "model.layers.\(layer)"
        let projection: AttentionWeights.Projection
        if options.fusedQueryKeyValue {
            projection = .fused(try store.linear("\(prefix).self_attn.qkv_proj", inFeatures: hidden,
                                                 outFeatures: attention.queryDim + 2 * attention.kvDim, bias: spec.queryKeyValueBias))
        } else {
            projection = .separate(
                query: try store.linear("\(prefix).self_attn.q_proj", inFeatures: hidden, outFeatures: attention.queryDim, bias: spec.queryKeyValueBias),
                key: try store.linear("\(prefix).self_attn.k_proj", inFeatures: hidden, outFeatures: attention.kvDim, bias: spec.queryKeyValueBias),
                value: try store.linear("\(prefix).self_attn.v_proj", inFeatures: hidden, outFeatures: attention.kvDim, bias: spec.queryKeyValueBias))
        }
        var attentionWeights = AttentionWeights(
            projection: projection,
            output: try store.linear("\(prefix).self_attn.o_proj", inFeatures: attention.queryDim, outFeatures: hidden, bias: spec.outputBias))
        if spec.queryKeyNorm {
            attentionWeights.queryNorm = try store.norm("\(prefix).self_attn.q_norm", dim: attention.headDim, bias: false)
            attentionWeights.keyNorm = try store.norm("\(prefix).self_attn.k_norm", dim: attention.headDim, bias: false)
        }
        let feedForwardProjection: FeedForwardWeights.Projection
        if options.fusedGateUp {
            feedForwardProjection = .fused(try store.linear("\(prefix).mlp.gate_up_proj", inFeatures: hidden, outFeatures: 2 * intermediate, bias: spec.mlpBias))
        } else {
            feedForwardProjection = .separate(
                gate: try store.linear("\(prefix).mlp.gate_proj", inFeatures: hidden, outFeatures: intermediate, bias: spec.mlpBias),
                up: try store.linear("\(prefix).mlp.up_proj", inFeatures: hidden, outFeatures: intermediate, bias: spec.mlpBias))
        }
        layers.append(DecoderLayerWeights(
            attentionNorm: try store.norm("\(prefix).input_layernorm", dim: hidden, bias: false),
            attention: attentionWeights,
            feedForwardNorm: try store.norm("\(prefix).post_attention_layernorm", dim: hidden, bias: false),
            feedForward: FeedForwardWeights(
                projection: feedForwardProjection,
                down: try store.linear("\(prefix).mlp.down_proj", inFeatures: intermediate, outFeatures: hidden, bias: spec.mlpBias))))
    }
    let output = spec.tiedEmbeddings ? embedding : try store.weightMatrix("lm_head.weight", shape: [spec.vocabularySize, hidden])
    return DecoderWeights(tokenEmbedding: embedding, positionEmbedding: nil, layers: layers,
                          finalNorm: try store.norm("model.norm", dim: hidden, bias: false), outputProjection: output)
}
