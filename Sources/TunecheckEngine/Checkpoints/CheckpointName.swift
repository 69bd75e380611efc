import Foundation

/// The one owner of checkpoint names on disk: what tunecheck's trainer writes, what mlx_lm and the Hugging Face
/// Trainer write, and how a name is read back (step, kind). The trainer makes names with it; the watcher, globbing
/// and reports parse them with it.
///
/// | name | written by | what it is |
/// |---|---|---|
/// | `NNNNNNN_adapters.safetensors` | mlx_lm, tunecheck (LoRA) | a numbered LoRA checkpoint; `adapter_config.json` beside it |
/// | `NNNNNNN_model/` | tunecheck (full fine-tuning) | a numbered complete model folder |
/// | `checkpoint-N/` | Hugging Face Trainer / TRL / PEFT | a PEFT adapter or a full model folder |
/// | `adapters.safetensors` | mlx_lm, tunecheck | the latest adapter (not numbered) |
/// | `model/` | tunecheck (full fine-tuning) | the latest model folder (not numbered) |
public enum CheckpointName: Sendable, Hashable {
    case numberedAdapter(step: Int)
    case numberedModel(step: Int)
    case trainerFolder(step: Int)
    case latestAdapter
    case latestModel

    /// Digits in tunecheck's and mlx_lm's numbered names (`%07d`; longer numbers are written in full).
    public static let stepDigits = 7

    /// The file or folder name (no path).
    public var fileName: String {
        switch self {
        case .numberedAdapter(let step): return Self.paddedStep(step) + "_adapters.safetensors"
        case .numberedModel(let step): return Self.paddedStep(step) + "_model"
        case .trainerFolder(let step): return "checkpoint-\(step)"
        case .latestAdapter: return "adapters.safetensors"
        case .latestModel: return "model"
        }
    }

    /// The name reports use: the file name without `.safetensors`.
    public var displayName: String {
        let name = fileName
        return name.hasSuffix(".safetensors") ? String(name.dropLast(".safetensors".count)) : name
    }

    public var step: Int? {
        switch self {
        case .numberedAdapter(let step), .numberedModel(let step), .trainerFolder(let step): return step
        case .latestAdapter, .latestModel: return nil
        }
    }

    /// A numbered checkpoint (one a watcher evaluates), as opposed to the "latest" copies.
    public var isNumbered: Bool { step != nil }

    /// Whether the checkpoint is a folder (as opposed to one safetensors file).
    public var isFolder: Bool {
        switch self {
        case .numberedAdapter, .latestAdapter: return false
        case .numberedModel, .trainerFolder, .latestModel: return true
        }
    }

    /// Parses a file or folder name (no path): `0000100_adapters.safetensors`, `0000100_adapters` (display form),
    /// `0000100_model`, `checkpoint-500`, `adapters.safetensors`, `model`. Nil for anything else.
    public init?(fileName: String) {
        if fileName == Self.latestAdapter.fileName {
            self = .latestAdapter
            return
        }
        if fileName == Self.latestModel.fileName {
            self = .latestModel
            return
        }
        if fileName.hasPrefix("checkpoint-") {
            guard let step = Self.parseStep(fileName.dropFirst("checkpoint-".count)) else { return nil }
            self = .trainerFolder(step: step)
            return
        }
        let digits = fileName.prefix { $0.isASCII && $0.isNumber }
        guard !digits.isEmpty, let step = Self.parseStep(digits) else { return nil }
        switch fileName.dropFirst(digits.count) {
        case "_adapters.safetensors", "_adapters": self = .numberedAdapter(step: step)
        case "_model": self = .numberedModel(step: step)
        default: return nil
        }
    }

    /// The step a name carries (`0000100_adapters` → 100, `checkpoint-500` → 500), nil when it carries none.
    public static func step(in name: String) -> Int? { CheckpointName(fileName: name)?.step }

    static func paddedStep(_ step: Int) -> String {
        let digits = String(step)
        return String(repeating: "0", count: max(0, stepDigits - digits.count)) + digits
    }

    static func parseStep<S: StringProtocol>(_ text: S) -> Int? {
        guard !text.isEmpty, text.count <= 18, text.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        return Int(text)
    }
}
