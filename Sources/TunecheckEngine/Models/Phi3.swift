import Foundation
import TunecheckJSON

/// `phi3`: Llama with a fused `qkv_proj` (`[q | k | v]` rows) and a fused `gate_up_proj` (`[gate | up]`),
/// an optional `partial_rotary_factor` and an optional sliding window. Long-context `longrope` scaling is
/// rejected with a clear message.
enum Phi3: Architecture {
    static let modelTypes = ["phi3"]

    static func specification(configJSON: JSONValue, modelType: String) throws -> TransformerSpec {
        let config = try LlamaFamilyConfiguration.decode(configJSON)
        var spec = try config.baseSpecification(modelType: modelType)
        // Phi-3 never has projection biases, whatever attention_bias says.
        spec.queryKeyValueBias = false
        spec.outputBias = false
        spec.mlpBias = false
        spec.slidingWindow = config.slidingWindow
        return spec
    }

    static func loadWeights(from store: WeightStore, spec: TransformerSpec) throws -> DecoderWeights {
        try loadLlamaFamilyWeights(from: store, spec: spec,
                                   options: LlamaWeightOptions(fusedQueryKeyValue: true, fusedGateUp: true))
    }
}
