import Foundation
import TunecheckJSON

/// `config.json`'s `quantization` (mlx_lm; `quantization_config` holds a copy) for mlx affine quantization
/// (docs/quantized-weights.md): a default group size and bit width, and per-module entries keyed by module path
/// (`model.layers.0.mlp.down_proj`) that override them (`{"group_size": 64, "bits": 6}`) or leave the module in
/// float (`false`), as mlx_lm's mixed recipes (`--quant-predicate mixed_3_6`) write.
///
/// Whether a module is quantized is read from the weights, as mlx_lm's loader does: `P.scales` present. The config
/// gives its group size and bits, against which the stored shapes are checked (`WeightStore.weightMatrix`).
public struct QuantizationConfig: Sendable, Equatable {
    public struct Parameters: Sendable, Equatable {
        public var groupSize: Int
        public var bits: Int

        public init(groupSize: Int, bits: Int) {
            self.groupSize = groupSize
            self.bits = bits
        }
    }

    public var defaults: Parameters
    /// Per-module overrides; a nil value is `false` (the module stays float).
    public var modules: [String: Parameters?]

    public init(defaults: Parameters, modules: [String: Parameters?] = [:]) {
        self.defaults = defaults
        self.modules = modules
    }

    /// The parameters of module `path` (`model.layers.0.self_attn.q_proj`), nil when the config leaves it float.
    public func parameters(forModule path: String) -> Parameters? {
        if let entry = modules[path] { return entry }
        return defaults
    }

    /// Reads the quantization of a config (nil when it has none). Modes other than `affine`, and quantization
    /// methods of other tools (GPTQ, AWQ, bitsandbytes, fp8, ...) are refused by name.
    static func parse(_ root: JSONObject, path: String) throws -> QuantizationConfig? {
        let entry = root["quantization"] ?? root["quantization_config"]
        guard let entry else { return nil }
        guard let object = entry.object else {
            throw EngineError.invalidConfig(path: path, reason: "\"quantization\" must be an object")
        }
        if root["quantization"] == nil, let method = object["quant_method"]?.string {
            throw EngineError.unsupportedFeature(
                path: path,
                feature: "quantization method '\(method)' (tunecheck reads mlx affine quantization, as mlx_lm.convert -q writes it; "
                    + "dequantize the model first, e.g. with the tool that made it)")
        }
        let defaults = try parameters(object, key: "quantization", path: path)
        var modules: [String: Parameters?] = [:]
        for (key, value) in zip(object.keys, object.values) where !["group_size", "bits", "mode", "quant_method"].contains(key) {
            switch value {
            case .bool(false):
                modules[key] = .some(nil)
            case .object(let module):
                modules[key] = try parameters(module, key: "quantization.\(key)", path: path)
            case .bool(true):
                modules[key] = defaults
            default:
                throw EngineError.invalidConfig(path: path, reason: "quantization.\(key) must be an object with group_size and bits, or false")
            }
        }
        return QuantizationConfig(defaults: defaults, modules: modules)
    }

    /// `group_size`, `bits` and `mode` of one entry, validated.
    private static func parameters(_ object: JSONObject, key: String, path: String) throws -> Parameters {
        if let mode = object["mode"] {
            guard let name = mode.string else { throw EngineError.invalidConfig(path: path, reason: "\(key).mode must be a string") }
            guard name == "affine" else {
                throw EngineError.unsupportedFeature(
                    path: path, feature: "quantization mode '\(name)' in \(key) (tunecheck reads mlx's 'affine' mode only)")
            }
        }
        guard let groupSize = object["group_size"]?.int, let bits = object["bits"]?.int else {
            throw EngineError.invalidConfig(path: path, reason: "\(key) needs integer \"group_size\" and \"bits\"")
        }
        guard AffineQuantization.supportedBits.contains(bits) else {
            throw EngineError.invalidConfig(path: path, reason: "\(key).bits is \(bits); mlx affine quantization uses 2, 3, 4, 5, 6 or 8")
        }
        guard AffineQuantization.supportedGroupSizes.contains(groupSize) else {
            throw EngineError.invalidConfig(path: path, reason: "\(key).group_size is \(groupSize); supported: 32, 64, 128")
        }
        return Parameters(groupSize: groupSize, bits: bits)
    }
}
