import Foundation
import TunecheckJSON

/// `qwen3`: Llama with a per-head RMSNorm on queries and keys (before the rotation), an explicit `head_dim`
/// that need not equal hidden/heads, and `attention_bias` for q, k, v and o.
enum Qwen3: Architecture {
    static let modelTypes = ["qwen3"]

    static func specification(configJSON: JSONValue, modelType: String) throws -> TransformerSpec {
        let config = try LlamaFamilyConfiguration.decode(configJSON)
        if config.useSlidingWindow {
            throw ConfigProblem("use_sliding_window: true (per-layer sliding windows) is not supported")
        }
        var spec = try config.baseSpecification(modelType: modelType)
        spec.queryKeyNorm = true
        spec.mlpBias = false
        return spec
    }

    static func loadWeights(from store: WeightStore, spec: TransformerSpec) throws -> DecoderWeights {
        try loadLlamaFamilyWeights(from: store, spec: spec, options: LlamaWeightOptions())
    }
}
