import Foundation

/// Problems with a LoRA adapter; each names the file and, where there is one, the tensor.
public enum AdapterError: Error, LocalizedError, Equatable {
    /// Not an adapter directory or file we recognise.
    case notAnAdapter(path: String, reason: String)
    case invalidConfig(path: String, reason: String)
    /// A config field or adapter kind that is not supported (DoRA, modules_to_save, ...).
    case unsupported(path: String, feature: String)
    /// A tensor that does not belong to the base model or does not fit it.
    case doesNotFitBase(path: String, tensor: String, reason: String)
    /// The config targets a module but the weights hold no LoRA tensors for it.
    case missingTensors(path: String, module: String)

    public var errorDescription: String? {
        switch self {
        case let .notAnAdapter(path, reason): return "\(path): not a LoRA adapter: \(reason)"
        case let .invalidConfig(path, reason): return "\(path): invalid adapter config: \(reason)"
        case let .unsupported(path, feature): return "\(path): unsupported adapter: \(feature)"
        case let .doesNotFitBase(path, tensor, reason): return "\(path): tensor '\(tensor)' does not fit the base model: \(reason)"
        case let .missingTensors(path, module): return "\(path): adapter config targets '\(module)' but the weights have no LoRA tensors for it"
        }
    }
}
