import Foundation
import TunecheckJSON

/// The rotary settings of a config, read once from either schema into a typed value:
/// transformers 5 writes `rope_parameters {rope_theta, rope_type, factor, ...}`; older checkpoints (most published
/// ones) write top-level `rope_theta` and `rope_scaling {type|rope_type, factor, ...}`.
struct RopeConfiguration: Decodable {
    var theta: Double?
    var scaling: RopeScaling = .none
    /// `partial_rotary_factor`, when the config gives one (here or inside `rope_parameters`).
    var partialRotaryFactor: Double?

    init() {}

    init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: SettingsKey.self)
        theta = try container.decodeIfPresent(Double.self, forKey: SettingsKey("rope_theta"))
        partialRotaryFactor = try container.decodeIfPresent(Double.self, forKey: SettingsKey("partial_rotary_factor"))
        var parameters: RopeParameters?
        if let modern = try container.decodeIfPresent(RopeParameters.self, forKey: SettingsKey("rope_parameters")) {
            parameters = modern
        }
        if let legacy = try container.decodeIfPresent(RopeParameters.self, forKey: SettingsKey("rope_scaling")) {
            parameters = parameters ?? legacy
        }
        guard let parameters else { return }
        theta = parameters.ropeTheta ?? theta
        partialRotaryFactor = parameters.partialRotaryFactor ?? partialRotaryFactor
        scaling = try parameters.scaling(codingPath: decoder.codingPath)
    }

    struct RopeParameters: Decodable {
        var ropeType: String?
        var legacyType: String?
        var ropeTheta: Double?
        var factor: Double?
        var lowFreqFactor: Double?
        var highFreqFactor: Double?
        var originalMaxPositionEmbeddings: Double?
        var partialRotaryFactor: Double?

        enum CodingKeys: String, CodingKey {
            case ropeType = "rope_type", legacyType = "type", ropeTheta = "rope_theta", factor
            case lowFreqFactor = "low_freq_factor", highFreqFactor = "high_freq_factor"
            case originalMaxPositionEmbeddings = "original_max_position_embeddings"
            case partialRotaryFactor = "partial_rotary_factor"
        }

        func scaling(codingPath: [CodingKey]) throws -> RopeScaling {
            let type = ropeType ?? legacyType ?? "default"
            switch type {
            case "default":
                return .none
            case "linear":
                guard let factor, factor > 0 else { throw RopeError.missing("linear rope scaling needs a positive 'factor'") }
                return .linear(factor: factor)
            case "llama3":
                guard let factor, factor > 0, let lowFreqFactor, let highFreqFactor, let originalMaxPositionEmbeddings,
                      highFreqFactor > lowFreqFactor, originalMaxPositionEmbeddings > 0 else {
                    throw RopeError.missing("llama3 rope scaling needs factor, low_freq_factor < high_freq_factor and original_max_position_embeddings")
                }
                return .llama3(factor: factor, lowFrequencyFactor: lowFreqFactor, highFrequencyFactor: highFreqFactor,
                               originalMaxPositions: originalMaxPositionEmbeddings)
            default:
                throw RopeError.unsupported(type)
            }
        }
    }

    enum RopeError: Error {
        case missing(String)
        case unsupported(String)
    }
}

/// Reads `config.json` for any supported architecture: the `model_type` picks the architecture, which decodes
/// its own typed configuration. Decoding errors become one-line messages naming the file and the field.
public enum ModelConfigLoader {
    public static func loadSpec(configURL: URL) throws -> (spec: TransformerSpec, architecture: any Architecture.Type) {
        let path = configURL.path
        let data: Data
        do { data = try BoundedFile.read(configURL, limit: BoundedFile.Limit.config) } catch {
            throw EngineError.unreadable(path: path, reason: error.reason)
        }
        let root: JSONValue
        do { root = try JSONParser.parse([UInt8](data)) } catch {
            throw EngineError.invalidConfig(path: path, reason: "not valid JSON (\(error))")
        }
        guard let dictionary = root.object else {
            throw EngineError.invalidConfig(path: path, reason: "expected a JSON object")
        }
        guard let modelType = dictionary["model_type"]?.string else {
            throw EngineError.invalidConfig(path: path, reason: "missing \"model_type\"")
        }
        let quantization = try QuantizationConfig.parse(dictionary, path: path)
        guard let architecture = ModelRegistry.architecture(forModelType: modelType) else {
            throw EngineError.unsupportedModelType(path: path, modelType: modelType, supported: ModelRegistry.supportedModelTypes)
        }
        var spec: TransformerSpec
        do {
            spec = try architecture.specification(configJSON: root, modelType: modelType)
        } catch let error as EngineError {
            throw error
        } catch let error as ConfigProblem {
            throw EngineError.invalidConfig(path: path, reason: error.message)
        } catch let error as RopeConfiguration.RopeError {
            switch error {
            case .missing(let message): throw EngineError.invalidConfig(path: path, reason: message)
            case .unsupported(let type): throw EngineError.unsupportedFeature(path: path, feature: "rope scaling type '\(type)'")
            }
        } catch let error as DecodingError {
            throw EngineError.invalidConfig(path: path, reason: describe(error))
        }
        spec.quantization = quantization
        try validate(spec, path: path)
        return (spec, architecture)
    }

    /// Rejects sizes that cannot be right before anything is allocated from them.
    static func validate(_ spec: TransformerSpec, path: String) throws {
        func check(_ condition: Bool, _ message: @autoclosure () -> String) throws {
            if !condition { throw EngineError.invalidConfig(path: path, reason: message()) }
        }
        let attention = spec.attention
        try check(spec.vocabularySize > 0 && spec.vocabularySize <= 4_000_000, "vocab_size \(spec.vocabularySize) is out of range (1 ... 4,000,000)")
        try check(spec.hiddenSize > 0 && spec.hiddenSize <= 65_536, "hidden size \(spec.hiddenSize) is out of range (1 ... 65,536)")
        try check(spec.layerCount > 0 && spec.layerCount <= 1_024, "layer count \(spec.layerCount) is out of range (1 ... 1,024)")
        try check(attention.heads > 0 && attention.heads <= 1_024, "attention head count \(attention.heads) is out of range")
        try check(attention.kvHeads > 0 && attention.heads % attention.kvHeads == 0,
                  "num_key_value_heads \(attention.kvHeads) must divide num_attention_heads \(attention.heads)")
        try check(attention.headDim > 0 && attention.headDim <= 4_096, "head_dim \(attention.headDim) is out of range")
        try check(spec.intermediateSize > 0 && spec.intermediateSize <= 1_048_576, "intermediate size \(spec.intermediateSize) is out of range")
        try check(spec.maxPositions > 0 && spec.maxPositions <= 16_777_216, "max positions \(spec.maxPositions) is out of range")
        try check(spec.attentionScale.isFinite && spec.attentionScale > 0, "attention scale must be a positive number")
        try check(spec.embeddingMultiplier.isFinite && spec.residualMultiplier.isFinite && spec.logitsMultiplier.isFinite && spec.logitsMultiplier != 0,
                  "multipliers must be finite and logits_scaling non-zero")
        if case .rotary(let rotary) = spec.positions {
            try check(rotary.theta > 0 && rotary.theta.isFinite, "rope_theta must be positive")
            try check(rotary.rotaryDim > 0 && rotary.rotaryDim <= attention.headDim && rotary.rotaryDim % 2 == 0,
                      "rotary dimension \(rotary.rotaryDim) must be even and at most head_dim \(attention.headDim)")
        }
        if case .rms(let epsilon) = spec.norm { try check(epsilon >= 0 && epsilon.isFinite, "norm epsilon must be non-negative") }
        if case .layer(let epsilon) = spec.norm { try check(epsilon >= 0 && epsilon.isFinite, "norm epsilon must be non-negative") }
        if let window = spec.slidingWindow { try check(window > 0, "sliding_window must be positive") }
    }

    static func describe(_ error: DecodingError) -> String {
        func keyPath(_ path: [CodingKey]) -> String {
            path.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
        }
        switch error {
        case let .keyNotFound(key, context):
            let parent = keyPath(context.codingPath)
            return "missing field \"\(parent.isEmpty ? "" : parent + ".")\(key.stringValue)\""
        case let .typeMismatch(type, context):
            return "field \"\(keyPath(context.codingPath))\" should be \(typeName(type))"
        case let .valueNotFound(type, context):
            return "field \"\(keyPath(context.codingPath))\" is null, expected \(typeName(type))"
        case let .dataCorrupted(context):
            return "field \"\(keyPath(context.codingPath))\": \(context.debugDescription)"
        @unknown default:
            return "\(error)"
        }
    }

    private static func typeName(_ type: Any.Type) -> String {
        switch type {
        case is Int.Type: return "an integer"
        case is Double.Type, is Float.Type: return "a number"
        case is String.Type: return "a string"
        case is Bool.Type: return "true or false"
        // Everything else the configs decode is a nested object (e.g. rope_parameters) or an array of them; the Swift
        // type name ("RopeParameters") means nothing to the person editing config.json.
        case is [String: Any].Type: return "an object"
        case is [Any].Type: return "an array"
        default: return "an object"
        }
    }
}

/// A semantic problem in an otherwise well-formed config (e.g. an unknown activation).
struct ConfigProblem: Error {
    let message: String
    init(_ message: String) { self.message = message }
}

/// Reads the `dtype` (transformers 5) or `torch_dtype` (older) field.
struct DeclaredDType: Decodable {
    var dtype: DType?
    init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: SettingsKey.self)
        let name = (try? container.decodeIfPresent(String.self, forKey: SettingsKey("dtype")))
            ?? (try? container.decodeIfPresent(String.self, forKey: SettingsKey("torch_dtype")))
        dtype = name.flatMap { DType(configName: $0) }
    }
}
