import Foundation
import TunecheckJSON

/// `granitemoehybrid` (Granite 4.0-H): Granite's multipliers on a stack that interleaves Mamba2 layers with attention
/// layers (`layer_types`), a shared gated MLP in every block and, when `num_local_experts > 0`, a top-k mixture of
/// experts added to it. The computation is written down in docs/granitemoehybrid.md.
enum GraniteMoeHybrid: Architecture {
    static let modelTypes = ["granitemoehybrid"]

    /// The keys beyond the Llama family's, with transformers' defaults (`GraniteMoeHybridConfig`).
    struct HybridConfiguration: Decodable {
        var layerTypes: [String]?
        var positionEmbeddingType: String?
        var localExperts: Int
        var expertsPerToken: Int
        var sharedIntermediateSize: Int
        var mambaHeads: Int
        var mambaHeadDim: Int?
        var mambaGroups: Int
        var mambaStateSize: Int
        var mambaConvKernel: Int
        var mambaExpand: Int
        var mambaChunkSize: Int
        var mambaConvBias: Bool
        var mambaProjectionBias: Bool
        var timeStepLimit: [TaggedFloat]?

        enum CodingKeys: String, CodingKey {
            case layerTypes = "layer_types", layersBlockType = "layers_block_type"
            case positionEmbeddingType = "position_embedding_type"
            case localExperts = "num_local_experts", expertsPerToken = "num_experts_per_tok"
            case sharedIntermediateSize = "shared_intermediate_size"
            case mambaHeads = "mamba_n_heads", mambaHeadDim = "mamba_d_head", mambaGroups = "mamba_n_groups"
            case mambaStateSize = "mamba_d_state", mambaConvKernel = "mamba_d_conv", mambaExpand = "mamba_expand"
            case mambaChunkSize = "mamba_chunk_size", mambaConvBias = "mamba_conv_bias", mambaProjectionBias = "mamba_proj_bias"
            case timeStepLimit = "time_step_limit"
        }

        init(from decoder: Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            layerTypes = try container.decodeIfPresent([String].self, forKey: .layerTypes)
                ?? container.decodeIfPresent([String].self, forKey: .layersBlockType)
            positionEmbeddingType = try container.decodeIfPresent(String.self, forKey: .positionEmbeddingType)
            localExperts = try container.decodeIfPresent(Int.self, forKey: .localExperts) ?? 8
            expertsPerToken = try container.decodeIfPresent(Int.self, forKey: .expertsPerToken) ?? 2
            sharedIntermediateSize = try container.decodeIfPresent(Int.self, forKey: .sharedIntermediateSize) ?? 1024
            mambaHeads = try container.decodeIfPresent(Int.self, forKey: .mambaHeads) ?? 128
            // "auto" (the default) means intermediate / heads.
            if (try? container.decode(String.self, forKey: .mambaHeadDim)) != nil {
                mambaHeadDim = nil
            } else {
                mambaHeadDim = try container.decodeIfPresent(Int.self, forKey: .mambaHeadDim)
            }
            mambaGroups = try container.decodeIfPresent(Int.self, forKey: .mambaGroups) ?? 1
            mambaStateSize = try container.decodeIfPresent(Int.self, forKey: .mambaStateSize) ?? 256
            mambaConvKernel = try container.decodeIfPresent(Int.self, forKey: .mambaConvKernel) ?? 4
            mambaExpand = try container.decodeIfPresent(Int.self, forKey: .mambaExpand) ?? 2
            mambaChunkSize = try container.decodeIfPresent(Int.self, forKey: .mambaChunkSize) ?? 256
            mambaConvBias = try container.decodeIfPresent(Bool.self, forKey: .mambaConvBias) ?? true
            mambaProjectionBias = try container.decodeIfPresent(Bool.self, forKey: .mambaProjectionBias) ?? false
            timeStepLimit = try container.decodeIfPresent([TaggedFloat].self, forKey: .timeStepLimit)
        }
    }

    /// A number, or transformers 5's tagged non-finite float `{"__float__": "Infinity"}`.
    struct TaggedFloat: Decodable {
        var value: Double

        init(from decoder: Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let number = try? container.decode(Double.self) {
                value = number
                return
            }
            let tagged = try container.decode([String: String].self)
            switch tagged["__float__"] {
            case "Infinity", "inf": value = .infinity
            case "-Infinity", "-inf": value = -.infinity
            default: throw ConfigProblem("time_step_limit: expected a number or {\"__float__\": \"Infinity\"}")
            }
        }
    }

    static func specification(configJSON: JSONValue, modelType: String) throws -> TransformerSpec {
        let config = try LlamaFamilyConfiguration.decode(configJSON)
        let hybrid = try JSONValueDecoder().decode(HybridConfiguration.self, from: configJSON)
        var spec = try config.baseSpecification(modelType: modelType)
        try Granite.Multipliers.apply(configJSON, to: &spec)
        // RoPE only for exactly "rope"; the Hub's "nope" (with a leftover rope_theta) means no positions at all.
        if hybrid.positionEmbeddingType != "rope" { spec.positions = .none }

        let kinds: [TransformerSpec.LayerKind] = try (hybrid.layerTypes ?? Array(repeating: "mamba", count: config.layerCount)).map {
            switch $0 {
            case "mamba", "linear_attention": return .mamba
            case "attention", "full_attention": return .attention
            default: throw ConfigProblem("layer_types: unknown layer type '\($0)' (mamba, linear_attention, attention, full_attention)")
            }
        }
        guard kinds.count == config.layerCount else {
            throw ConfigProblem("layer_types has \(kinds.count) entries but num_hidden_layers is \(config.layerCount)")
        }
        spec.layerKinds = kinds

        // The shared MLP is the block's MLP; intermediate_size is the width of each routed expert.
        spec.intermediateSize = hybrid.sharedIntermediateSize
        if hybrid.localExperts > 0 {
            guard hybrid.expertsPerToken > 0, hybrid.expertsPerToken <= hybrid.localExperts, hybrid.localExperts <= 4096 else {
                throw ConfigProblem("num_experts_per_tok \(hybrid.expertsPerToken) must be between 1 and num_local_experts \(hybrid.localExperts)")
            }
            guard config.intermediateSize > 0, config.intermediateSize <= 1_048_576 else {
                throw ConfigProblem("intermediate_size \(config.intermediateSize) is out of range")
            }
            spec.experts = ExpertShape(count: hybrid.localExperts, topK: hybrid.expertsPerToken, width: config.intermediateSize)
        } else if hybrid.localExperts < 0 {
            throw ConfigProblem("num_local_experts must not be negative")
        }

        if kinds.contains(.mamba) { spec.mamba = try mambaShape(hybrid, hiddenSize: config.hiddenSize, epsilon: Float(config.rmsNormEps)) }
        return spec
    }

    static func mambaShape(_ hybrid: HybridConfiguration, hiddenSize: Int, epsilon: Float) throws -> MambaShape {
        func check(_ condition: Bool, _ message: @autoclosure () -> String) throws {
            if !condition { throw ConfigProblem(message()) }
        }
        // Ranges first, so the products below cannot overflow (a hostile config must give an error, not a trap).
        try check(hiddenSize > 0 && hiddenSize <= 65_536, "hidden size \(hiddenSize) is out of range (1 ... 65,536)")
        try check(hybrid.mambaExpand > 0 && hybrid.mambaExpand <= 64, "mamba_expand \(hybrid.mambaExpand) is out of range")
        let intermediate = hybrid.mambaExpand * hiddenSize
        try check(hybrid.mambaHeads > 0 && hybrid.mambaHeads <= intermediate, "mamba_n_heads \(hybrid.mambaHeads) is out of range")
        let headDim = hybrid.mambaHeadDim ?? intermediate / hybrid.mambaHeads
        try check(headDim > 0 && headDim <= intermediate && headDim * hybrid.mambaHeads == intermediate,
                  "mamba_n_heads \(hybrid.mambaHeads) × mamba_d_head \(headDim) must equal mamba_expand × hidden_size = \(intermediate)")
        try check(hybrid.mambaGroups > 0 && hybrid.mambaGroups <= hybrid.mambaHeads && hybrid.mambaHeads % hybrid.mambaGroups == 0,
                  "mamba_n_groups \(hybrid.mambaGroups) must divide mamba_n_heads \(hybrid.mambaHeads)")
        try check(hybrid.mambaStateSize > 0 && hybrid.mambaStateSize <= 65_536, "mamba_d_state \(hybrid.mambaStateSize) is out of range")
        try check(hybrid.mambaConvKernel > 0 && hybrid.mambaConvKernel <= 64, "mamba_d_conv \(hybrid.mambaConvKernel) is out of range")
        try check(hybrid.mambaChunkSize > 0 && hybrid.mambaChunkSize <= 65_536, "mamba_chunk_size \(hybrid.mambaChunkSize) is out of range")
        var limits = (Float(0), Float.infinity)
        if let limit = hybrid.timeStepLimit {
            try check(limit.count == 2, "time_step_limit must have two entries")
            limits = (Float(limit[0].value), Float(limit[1].value))
            try check(!limits.0.isNaN && !limits.1.isNaN && limits.0 <= limits.1, "time_step_limit must be an ordered pair")
        }
        return MambaShape(heads: hybrid.mambaHeads, headDim: headDim, groups: hybrid.mambaGroups, stateSize: hybrid.mambaStateSize,
                          convKernel: hybrid.mambaConvKernel, chunkSize: hybrid.mambaChunkSize, convBias: hybrid.mambaConvBias,
                          projectionBias: hybrid.mambaProjectionBias, timeStepMin: limits.0, timeStepMax: limits.1, normEpsilon: epsilon)
    }

    static func loadWeights(from store: WeightStore, spec: TransformerSpec) throws -> DecoderWeights {
        let hidden = spec.hiddenSize
        let attention = spec.attention
        let shared = spec.intermediateSize
        let embedding = try store.weightMatrix("model.embed_tokens.weight", shape: [spec.vocabularySize, hidden])
        var layers: [DecoderLayerWeights] = []
        layers.reserveCapacity(spec.layerCount)
        for layer in 0..<spec.layerCount {
            let prefix = "model.layers.\(layer)"
            let mixer: MixerWeights
            switch spec.layerKind(layer) {
            case .attention:
                mixer = .attention(AttentionWeights(
                    projection: .separate(
                        query: try store.linear("\(prefix).self_attn.q_proj", inFeatures: hidden, outFeatures: attention.queryDim, bias: spec.queryKeyValueBias),
                        key: try store.linear("\(prefix).self_attn.k_proj", inFeatures: hidden, outFeatures: attention.kvDim, bias: spec.queryKeyValueBias),
                        value: try store.linear("\(prefix).self_attn.v_proj", inFeatures: hidden, outFeatures: attention.kvDim, bias: spec.queryKeyValueBias)),
                    output: try store.linear("\(prefix).self_attn.o_proj", inFeatures: attention.queryDim, outFeatures: hidden, bias: spec.outputBias)))
            case .mamba:
                guard let shape = spec.mamba else { preconditionFailure("a Mamba layer without a MambaShape") }
                let heads = shape.heads
                mixer = .mamba(MambaWeights(
                    inProjection: try store.linear("\(prefix).mamba.in_proj", inFeatures: hidden, outFeatures: shape.projectionWidth, bias: shape.projectionBias),
                    convWeight: try convWeight("\(prefix).mamba.conv1d.weight", shape: shape, store: store),
                    convBias: shape.convBias ? try store.floatTensor("\(prefix).mamba.conv1d.bias", shape: [shape.convDim]).pointer : nil,
                    timeStepBias: try store.floatTensor("\(prefix).mamba.dt_bias", shape: [heads]).pointer,
                    logDecay: try store.floatTensor("\(prefix).mamba.A_log", shape: [heads]).pointer,
                    skip: try store.floatTensor("\(prefix).mamba.D", shape: [heads]).pointer,
                    normWeight: try store.floatTensor("\(prefix).mamba.norm.weight", shape: [shape.intermediate]).pointer,
                    outProjection: try store.linear("\(prefix).mamba.out_proj", inFeatures: shape.intermediate, outFeatures: hidden, bias: shape.projectionBias)))
            }
            var feedForward: FeedForwardWeights
            if spec.experts == nil, store.contains("\(prefix).mlp.gate_proj.weight") {
                // mlx_lm's names for a dense model's shared MLP (its `sanitize` splits `input_linear` into halves).
                feedForward = FeedForwardWeights(
                    projection: .separate(gate: try store.linear("\(prefix).mlp.gate_proj", inFeatures: hidden, outFeatures: shared, bias: false),
                                          up: try store.linear("\(prefix).mlp.up_proj", inFeatures: hidden, outFeatures: shared, bias: false)),
                    down: try store.linear("\(prefix).mlp.down_proj", inFeatures: shared, outFeatures: hidden, bias: false))
            } else {
                feedForward = FeedForwardWeights(
                    projection: .fused(try store.linear("\(prefix).shared_mlp.input_linear", inFeatures: hidden, outFeatures: 2 * shared, bias: false)),
                    down: try store.linear("\(prefix).shared_mlp.output_linear", inFeatures: shared, outFeatures: hidden, bias: false))
            }
            if let experts = spec.experts {
                feedForward.experts = try expertWeights(prefix: "\(prefix).block_sparse_moe", experts: experts, hidden: hidden, store: store)
            }
            layers.append(DecoderLayerWeights(
                attentionNorm: try store.norm("\(prefix).input_layernorm", dim: hidden, bias: false),
                mixer: mixer,
                feedForwardNorm: try store.norm("\(prefix).post_attention_layernorm", dim: hidden, bias: false),
                feedForward: feedForward))
        }
        let output = spec.tiedEmbeddings ? embedding : try store.weightMatrix("lm_head.weight", shape: [spec.vocabularySize, hidden])
        return DecoderWeights(tokenEmbedding: embedding, positionEmbedding: nil, layers: layers,
                              finalNorm: try store.norm("model.norm", dim: hidden, bias: false), outputProjection: output)
    }

    /// The routed experts of one block, in place in their stored form (float or mlx-quantized), under transformers'
    /// names (`input_linear` (E, 2F, H) with `[gate | up]` rows, `output_linear` (E, H, F), `router.layer`) or mlx_lm's
    /// (`switch_mlp.gate_proj` / `up_proj` (E, F, H), `switch_mlp.down_proj` (E, H, F), the same router), as
    /// `mlx_lm.convert` writes them after its `sanitize`. The router (E × H) is small: widened when float, read in
    /// place when quantized (mlx_lm quantizes it to 8 bits).
    static func expertWeights(prefix: String, experts: ExpertShape, hidden: Int, store: WeightStore) throws -> ExpertWeights {
        let count = experts.count, width = experts.width
        let projection: ExpertWeights.Projection
        if store.contains("\(prefix).switch_mlp.gate_proj.weight") {
            projection = .separate(gate: try store.expertStack("\(prefix).switch_mlp.gate_proj.weight", shape: [count, width, hidden]),
                                   up: try store.expertStack("\(prefix).switch_mlp.up_proj.weight", shape: [count, width, hidden]))
        } else {
            projection = .fused(try store.expertStack("\(prefix).input_linear.weight", shape: [count, 2 * width, hidden]))
        }
        let downName = store.contains("\(prefix).switch_mlp.down_proj.weight") ? "\(prefix).switch_mlp.down_proj.weight" : "\(prefix).output_linear.weight"
        return ExpertWeights(router: try store.smallMatrix("\(prefix).router.layer.weight", rows: count, columns: hidden),
                             projection: projection, down: try store.expertStack(downName, shape: [count, hidden, width]),
                             hidden: hidden, width: width)
    }

    /// The depthwise conv taps (convDim, K) as float32: transformers stores (convDim, 1, K), mlx_lm (convDim, K, 1) (its
    /// `sanitize` moves the axis for its channels-last conv); with a dimension of 1 both are the same bytes.
    static func convWeight(_ name: String, shape: MambaShape, store: WeightStore) throws -> UnsafePointer<Float> {
        let mlxLayout = [shape.convDim, shape.convKernel, 1]
        let stored = store.info(name)?.shape
        return try store.floatTensor(name, shape: stored == mlxLayout ? mlxLayout : [shape.convDim, 1, shape.convKernel]).pointer
    }
}
