import Foundation

/// `granite`: Llama with four multipliers: embeddings × `embedding_multiplier`, each residual branch ×
/// `residual_multiplier`, attention scores × `attention_multiplier` (instead of 1/sqrt(head_dim)), and logits ÷
/// `logits_scaling`.
enum Granite: Architecture {
    static let modelTypes = ["granite"]

    struct Multipliers: Decodable {
        var embedding: Double
        var residual: Double
        var attention: Double
        var logitsScaling: Double

        enum CodingKeys: String, CodingKey {
            case embedding = "embedding_multiplier", residual = "residual_multiplier"
            case attention = "attention_multiplier", logitsScaling = "logits_scaling"
        }

        /// Reads the four multipliers from `configData` into `spec` (Granite and Granite 4.0-H share them).
        static func apply(_ configData: Data, to spec: inout TransformerSpec) throws {
            let multipliers = try JSONDecoder().decode(Multipliers.self, from: configData)
            guard multipliers.logitsScaling != 0 else { throw ConfigProblem("logits_scaling must not be 0") }
            spec.embeddingMultiplier = Float(multipliers.embedding)
            spec.residualMultiplier = Float(multipliers.residual)
            spec.attentionScale = Float(multipliers.attention)
            spec.logitsMultiplier = Float(1 / multipliers.logitsScaling)
        }

        init(from decoder: Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            embedding = try container.decodeIfPresent(Double.self, forKey: .embedding) ?? 1
            residual = try container.decodeIfPresent(Double.self, forKey: .residual) ?? 1
            attention = try container.decodeIfPresent(Double.self, forKey: .attention) ?? 1
            logitsScaling = try container.decodeIfPresent(Double.self, forKey: .logitsScaling) ?? 1
        }
    }

    static func specification(configData: Data, modelType: String) throws -> TransformerSpec {
        let config = try LlamaFamilyConfiguration.decode(configData)
        var spec = try config.baseSpecification(modelType: modelType)
        try Multipliers.apply(configData, to: &spec)
        return spec
    }

    static func loadWeights(from store: WeightStore, spec: TransformerSpec) throws -> DecoderWeights {
        try loadLlamaFamilyWeights(from: store, spec: spec, options: LlamaWeightOptions())
    }
}
