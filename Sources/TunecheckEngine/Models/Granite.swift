import Foundation
import TunecheckJSON

/// `granite`: Llama with four multipliers: embeddings × `embedding_multiplier`, each residual branch ×
/// `residual_multiplier`, attention scores × `attention_multiplier` (instead of 1/sqrt(head_dim)), and logits ÷
/// `logits_scaling`.
enum Granite: Architecture {
    static let modelTypes = ["granite"]

    struct Multipliers: SettingsCodable {
        var embedding: Double = 1
        var residual: Double = 1
        var attention: Double = 1
        var logitsScaling: Double = 1

        static var fields: [SettingsField<Self>] {
            [.field("embedding_multiplier", \.embedding), .field("residual_multiplier", \.residual),
             .field("attention_multiplier", \.attention), .field("logits_scaling", \.logitsScaling)]
        }
        /// config.json holds every other setting of the model too.
        static var rejectsUnknownKeys: Bool { false }

        /// Reads the four multipliers from `configJSON` into `spec` (Granite and Granite 4.0-H share them).
        static func apply(_ configJSON: JSONValue, to spec: inout TransformerSpec) throws {
            let multipliers = try JSONValueDecoder().decode(Multipliers.self, from: configJSON)
            guard multipliers.logitsScaling != 0 else { throw ConfigProblem("logits_scaling must not be 0") }
            spec.embeddingMultiplier = Float(multipliers.embedding)
            spec.residualMultiplier = Float(multipliers.residual)
            spec.attentionScale = Float(multipliers.attention)
            spec.logitsMultiplier = Float(1 / multipliers.logitsScaling)
        }

    }

    static func specification(configJSON: JSONValue, modelType: String) throws -> TransformerSpec {
        let config = try LlamaFamilyConfiguration.decode(configJSON)
        var spec = try config.baseSpecification(modelType: modelType)
        try Multipliers.apply(configJSON, to: &spec)
        return spec
    }

    static func loadWeights(from store: WeightStore, spec: TransformerSpec) throws -> DecoderWeights {
        try loadLlamaFamilyWeights(from: store, spec: spec, options: LlamaWeightOptions())
    }
}
