import Foundation

/// Everything the engine can reject. Each case names the file (or folder) it is about and says what is wrong,
/// so that the CLI can print `errorDescription` as the one line a user needs.
public enum EngineError: Error, LocalizedError, Equatable {
    /// The file or folder could not be opened or read (missing, a directory where a file is expected, permissions).
    case unreadable(path: String, reason: String)
    /// A safetensors file whose bytes do not follow the format.
    case invalidSafetensors(path: String, reason: String)
    /// A config file (`config.json`, `generation_config.json`, an index) that is not valid JSON, misses a field or
    /// holds a value the engine cannot use.
    case invalidConfig(path: String, reason: String)
    /// `model_type` names an architecture this engine does not implement.
    case unsupportedModelType(path: String, modelType: String, supported: [String])
    /// The config asks for a feature of a supported architecture that is not implemented (e.g. a rope type).
    case unsupportedFeature(path: String, feature: String)
    /// A tensor the architecture needs is not in the weights.
    case missingTensor(path: String, name: String)
    /// A tensor exists but its shape does not fit the config.
    case tensorShapeMismatch(path: String, name: String, expected: [Int], actual: [Int])
    /// A tensor's dtype cannot be used as a weight.
    case unsupportedDType(path: String, name: String, dtype: String)
    /// An mlx affine-quantized weight whose packed codes, scales or biases do not fit the config's group size and bits
    /// or the module's shape.
    case invalidQuantizedWeights(path: String, name: String, reason: String)
    /// A weight holds NaN or infinity.
    case nonFiniteWeights(path: String, name: String)
    /// Input that is not about a file: token ids out of range, an empty sequence where one is needed.
    case invalidInput(String)
    /// Writing an output failed; nothing partial was left behind.
    case writeFailed(path: String, reason: String)
    /// The model would not fit in the memory available (checked before any weight is loaded).
    case insufficientMemory(path: String, needed: String, available: String)

    public var errorDescription: String? {
        switch self {
        case let .unreadable(path, reason):
            return "\(path): cannot read: \(reason)"
        case let .invalidSafetensors(path, reason):
            return "\(path): not a valid safetensors file: \(reason)"
        case let .invalidConfig(path, reason):
            return "\(path): invalid config: \(reason)"
        case let .unsupportedModelType(path, modelType, supported):
            return "\(path): unsupported model_type '\(modelType)' (supported: \(supported.joined(separator: ", ")))"
        case let .unsupportedFeature(path, feature):
            return "\(path): unsupported: \(feature)"
        case let .missingTensor(path, name):
            return "\(path): missing tensor '\(name)'"
        case let .tensorShapeMismatch(path, name, expected, actual):
            return "\(path): tensor '\(name)' has shape \(actual), expected \(expected)"
        case let .unsupportedDType(path, name, dtype):
            return "\(path): tensor '\(name)' has dtype \(dtype); weights must be F32, F16 or BF16"
        case let .invalidQuantizedWeights(path, name, reason):
            return "\(path): quantized tensor '\(name)': \(reason)"
        case let .nonFiniteWeights(path, name):
            return "\(path): tensor '\(name)' contains NaN or infinite values"
        case let .invalidInput(message):
            return message
        case let .writeFailed(path, reason):
            return "\(path): cannot write: \(reason)"
        case let .insufficientMemory(path, needed, available):
            return "\(path): the model needs about \(needed) but only \(available) of memory is available"
        }
    }
}
