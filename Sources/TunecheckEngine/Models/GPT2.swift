import Foundation
import TunecheckJSON

/// `gpt2`: learned positions, pre-LayerNorm blocks with biases, a plain GELU MLP, tied embeddings, and
/// `Conv1D` weights stored `(in, out)`. Tensor names carry a `transformer.` prefix when written by
/// `GPT2LMHeadModel.save_pretrained`, and none in the original hub files; both are read.
enum GPT2: Architecture {
    static let modelTypes = ["gpt2"]

    struct Configuration: Decodable {
        var vocabSize: Int
        var positionCount: Int
        var embeddingSize: Int
        var layerCount: Int
        var headCount: Int
        var innerSize: Int?
        var activationFunction: String
        var layerNormEpsilon: Double
        var scaleAttentionWeights: Bool
        var scaleAttentionByInverseLayerIndex: Bool
        var reorderAndUpcastAttention: Bool
        var declaredDType: DType?

        enum CodingKeys: String, CodingKey {
            case vocabSize = "vocab_size", positionCount = "n_positions", embeddingSize = "n_embd", layerCount = "n_layer"
            case headCount = "n_head", innerSize = "n_inner", activationFunction = "activation_function"
            case layerNormEpsilon = "layer_norm_epsilon", scaleAttentionWeights = "scale_attn_weights"
            case scaleAttentionByInverseLayerIndex = "scale_attn_by_inverse_layer_idx"
            case reorderAndUpcastAttention = "reorder_and_upcast_attn"
        }

        init(from decoder: Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            vocabSize = try container.decode(Int.self, forKey: .vocabSize)
            positionCount = try container.decodeIfPresent(Int.self, forKey: .positionCount) ?? 1024
            embeddingSize = try container.decode(Int.self, forKey: .embeddingSize)
            layerCount = try container.decode(Int.self, forKey: .layerCount)
            headCount = try container.decode(Int.self, forKey: .headCount)
            innerSize = try container.decodeIfPresent(Int.self, forKey: .innerSize)
            activationFunction = try container.decodeIfPresent(String.self, forKey: .activationFunction) ?? "gelu_new"
            layerNormEpsilon = try container.decodeIfPresent(Double.self, forKey: .layerNormEpsilon) ?? 1e-5
            scaleAttentionWeights = try container.decodeIfPresent(Bool.self, forKey: .scaleAttentionWeights) ?? true
            scaleAttentionByInverseLayerIndex = try container.decodeIfPresent(Bool.self, forKey: .scaleAttentionByInverseLayerIndex) ?? false
            reorderAndUpcastAttention = try container.decodeIfPresent(Bool.self, forKey: .reorderAndUpcastAttention) ?? false
            declaredDType = try DeclaredDType(from: decoder).dtype
        }
    }

    static func specification(configJSON: JSONValue, modelType: String) throws -> TransformerSpec {
        let config = try JSONValueDecoder().decode(Configuration.self, from: configJSON)
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
            declaredDType: config.declaredDType
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
        let embedding = try store.floatTensor("\(root)wte.weight", shape: [spec.vocabularySize, hidden])
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
        return DecoderWeights(tokenEmbedding: embedding.pointer, positionEmbedding: positions.pointer, layers: layers,
                              finalNorm: try store.norm("\(root)ln_f", dim: hidden, bias: true), outputProjection: embedding.pointer)
    }
}
