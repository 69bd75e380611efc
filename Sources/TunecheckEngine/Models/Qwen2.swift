import Foundation
import TunecheckJSON

/// `qwen2`: Llama with biases on the q, k and v projections (never on o_proj or the MLP).
enum Qwen2: Architecture {
    static let modelTypes = ["qwen2"]

    static func specification(configJSON: JSONValue, modelType: String) throws -> TransformerSpec {
        let config = try LlamaFamilyConfiguration.decode(configJSON)
        if config.useSlidingWindow {
            throw ConfigProblem("use_sliding_window: true (per-layer sliding windows) is not supported")
        }
        var spec = try config.baseSpecification(modelType: modelType)
        spec.queryKeyValueBias = true
        spec.outputBias = false
        spec.mlpBias = false
        return spec
    }

    static func loadWeights(from store: WeightStore, spec: TransformerSpec) throws -> DecoderWeights {
        try loadLlamaFamilyWeights(from: store, spec: spec, options: LlamaWeightOptions())
    }
}
