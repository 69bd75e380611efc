import Foundation
import TunecheckJSON

/// `gpt2`: learned positions, pre-LayerNorm blocks with biases, a plain GELU MLP, tied embeddings, and
/// `Conv1D` weights stored `(in, out)`. Tensor names carry a `transformer.` prefix when written by
/// `GPT2LMHeadModel.save_pretrained`, and none in the original hub files; both are read.
enum GPT2: Architecture {
    static let modelTypes = ["gpt2"]

    /// transformers' `GPT2Config` defaults for the optional keys; the sizes are required.
    struct Configuration: SettingsCodable {
        var vocabSize = 0
        var positionCount = 1024
        var embeddingSize = 0
        var layerCount = 0
        var headCount = 0
        var innerSize: Int?
        var activationFunction = "gelu_new"
        var layerNormEpsilon = 1e-5
        var scaleAttentionWeights = true
        var scaleAttentionByInverseLayerIndex = false
        var reorderAndUpcastAttention = false

        static var fields: [SettingsField<Self>] {
            [.required("vocab_size", \.vocabSize), .field("n_positions", \.positionCount), .required("n_embd", \.embeddingSize),
             .required("n_layer", \.layerCount), .required("n_head", \.headCount), .field("n_inner", \.innerSize),
             .field("activation_function", \.activationFunction), .field("layer_norm_epsilon", \.layerNormEpsilon),
             .field("scale_attn_weights", \.scaleAttentionWeights),
             .field("scale_attn_by_inverse_layer_idx", \.scaleAttentionByInverseLayerIndex),
             .field("reorder_and_upcast_attn", \.reorderAndUpcastAttention)]
        }
        /// config.json holds every other setting of the model too.
        static var rejectsUnknownKeys: Bool { false }
    }

    static func specification(configJSON: JSONValue, modelType: String) throws -> TransformerSpec {
        let config = try JSONValueDecoder().decode(Configuration.self, from: configJSON)
        let declaredDType = try JSONValueDecoder().decode(DeclaredDType.self, from: configJSON).dtype
        guard let activation = Activation(configName: config.activationFunction) else {
            throw ConfigProblem("activation_function '\(config.activationFunction)' is not supported")
        }
        guard config.headCount > 0, config.embeddingSize % config.headCount == 0 else {
            throw ConfigProblem("n_embd \(config.embeddingSize) is not divisible by n_head \(config.headCount)")
        }
        let headDim = config.embeddingSize / config.headCount
        // transformers' default n_inner is 4·n_embd; an absurd n_embd must not overflow (and trap) here.
        let (defaultInnerSize, overflow) = config.embeddingSize.multipliedReportingOverflow(by: 4)
        guard config.innerSize != nil || !overflow else { throw ConfigProblem("n_embd \(config.embeddingSize) is out of range") }
        // reorder_and_upcast_attn only changes the order of float32 operations; the result is the same.
        return TransformerSpec(
            modelType: modelType,
            vocabularySize: config.vocabSize,
            hiddenSize: config.embeddingSize,
            layerCount: config.layerCount,
            attention: AttentionShape(heads: config.headCount, kvHeads: config.headCount, headDim: headDim),
            intermediateSize: config.innerSize ?? defaultInnerSize,
            norm: .layer(epsilon: Float(config.layerNormEpsilon)),
            positions: .learned(count: config.positionCount),
            feedForward: .plain(activation),
            attentionScale: config.scaleAttentionWeights ? 1 / Float(headDim).squareRoot() : 1,
            scaleAttentionByInverseLayerIndex: config.scaleAttentionByInverseLayerIndex,
            queryKeyValueBias: true,
            outputBias: true,
            mlpBias: true,
            tiedEmbeddings: true,
            slidingWindow: nil,
            maxPositions: config.positionCount,
            declaredDType: declaredDType
        )
    }

    /// `transformer.` (save_pretrained) or nothing (original hub files).
    static func prefix(in store: WeightStore) -> String {
        store.contains("transformer.wte.weight") ? "transformer." : ""
    }

    static func loadWeights(from store: WeightStore, spec: TransformerSpec) throws -> DecoderWeights {
        let root = prefix(in: store)
        let hidden = spec.hiddenSize
        let inner = spec.intermediateSize
        let embedding = try store.weightMatrix("\(root)wte.weight", shape: [spec.vocabularySize, hidden])
        let positions = try store.floatTensor("\(root)wpe.weight", shape: [spec.maxPositions, hidden])
        var layers: [DecoderLayerWeights] = []
        for layer in 0..<spec.layerCount {
            let prefix = "\(root)h.\(layer)"
            layers.append(DecoderLayerWeights(
                attentionNorm: try store.norm("\(prefix).ln_1", dim: hidden, bias: true),
                attention: AttentionWeights(
                    projection: .fused(try store.linear("\(prefix).attn.c_attn", inFeatures: hidden, outFeatures: 3 * hidden, bias: true, layout: .inOut)),
                    output: try store.linear("\(prefix).attn.c_proj", inFeatures: hidden, outFeatures: hidden, bias: true, layout: .inOut)),
                feedForwardNorm: try store.norm("\(prefix).ln_2", dim: hidden, bias: true),
                feedForward: FeedForwardWeights(
                    projection: .single(try store.linear("\(prefix).mlp.c_fc", inFeatures: hidden, outFeatures: inner, bias: true, layout: .inOut)),
                    down: try store.linear("\(prefix).mlp.c_proj", inFeatures: inner, outFeatures: hidden, bias: true, layout: .inOut))))
        }
        return DecoderWeights(tokenEmbedding: embedding, positionEmbedding: positions.pointer, layers: layers,
                              finalNorm: try store.norm("\(root)ln_f", dim: hidden, bias: true), outputProjection: embedding)
    }
}
