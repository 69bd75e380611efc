import Foundation
import TunecheckJSON

/// One architecture: how its `config.json` becomes a `TransformerSpec`, and how its tensor names become
/// `DecoderWeights`. Each lives in its own file; `ModelRegistry` maps `model_type` to it.
public protocol Architecture: Sendable {
    /// The `model_type` values this architecture reads.
    static var modelTypes: [String] { get }
    static func specification(configJSON: JSONValue, modelType: String) throws -> TransformerSpec
    static func loadWeights(from store: WeightStore, spec: TransformerSpec) throws -> DecoderWeights
}

public enum ModelRegistry {
    static let architectures: [any Architecture.Type] = [Llama.self, Qwen2.self, Qwen3.self, Granite.self, GraniteMoeHybrid.self, Phi3.self, GPT2.self]

    public static var supportedModelTypes: [String] { architectures.flatMap { $0.modelTypes }.sorted() }

    public static func architecture(forModelType modelType: String) -> (any Architecture.Type)? {
        architectures.first { $0.modelTypes.contains(modelType) }
    }
}
