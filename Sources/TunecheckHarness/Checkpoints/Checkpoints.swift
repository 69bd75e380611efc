import Foundation
#if canImport(Glibc)
import Glibc
#endif
import TunecheckEngine

/// What a checkpoint is on disk.
public enum CheckpointSource: Sendable, Equatable {
    /// The base model itself.
    case base
    /// A LoRA adapter on the base: an adapter folder, a Trainer `checkpoint-N` folder, or one numbered mlx_lm file.
    case adapter(URL)
    /// A complete model folder: fused, or fully fine-tuned.
    case modelFolder(URL)
}

/// A checkpoint to evaluate, with the name reports use and its training step when the name carries one.
public struct CheckpointSpec: Sendable, Equatable {
    public var name: String
    public var source: CheckpointSource
    public var step: Int?

    public init(name: String, source: CheckpointSource, step: Int? = nil) {
        self.name = name
        self.source = source
        self.step = step
    }

    public static let base = CheckpointSpec(name: "base", source: .base)

    /// Classifies a path: a folder with `config.json` and weights is a model; a folder or file with an
    /// `adapter_config.json` beside it is an adapter.
    public static func from(path: String) throws -> CheckpointSpec {
        let url = URL(fileURLWithPath: path).standardizedFileURL
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else {
            throw HarnessError.checkpointNotFound(path: path)
        }
        let fileManager = FileManager.default
        if isDirectory.boolValue {
            if fileManager.fileExists(atPath: url.appendingPathComponent("adapter_config.json").path) {
                return CheckpointSpec(name: displayName(url), source: .adapter(url), step: step(in: url.lastPathComponent))
            }
            if fileManager.fileExists(atPath: url.appendingPathComponent("config.json").path) {
                return CheckpointSpec(name: displayName(url), source: .modelFolder(url), step: step(in: url.lastPathComponent))
            }
            throw HarnessError.invalidCheckpoint(path: path, reason: "the folder has neither adapter_config.json (an adapter) nor config.json (a model)")
        }
        guard url.pathExtension == "safetensors" else {
            throw HarnessError.invalidCheckpoint(path: path, reason: "expected an adapter or model folder, or a .safetensors adapter file")
        }
        let name = url.deletingPathExtension().lastPathComponent
        return CheckpointSpec(name: name, source: .adapter(url), step: step(in: name))
    }

    /// `0000100_adapters` → 100; `0000100_model` → 100; `checkpoint-500` → 500; otherwise nil (see `CheckpointName`).
    static func step(in name: String) -> Int? { CheckpointName.step(in: name) }

    /// Folder names alone are ambiguous (`adapters`, `checkpoint-5`); keep the parent for adapter folders named
    /// generically.
    static func displayName(_ url: URL) -> String {
        let last = url.lastPathComponent
        if ["adapters", "adapter", "output", "lora"].contains(last) {
            return url.deletingLastPathComponent().lastPathComponent + "/" + last
        }
        return last
    }

    /// Expands paths and glob patterns (`*`, `?`, `[...]`) into checkpoints, sorted by step where known, and
    /// gives duplicate display names a numeric suffix.
    public static func resolve(_ patterns: [String]) throws -> [CheckpointSpec] {
        var specs: [CheckpointSpec] = []
        for pattern in patterns {
            if pattern.contains(where: { "*?[".contains($0) }) {
                let matches = expandGlob(pattern)
                guard !matches.isEmpty else { throw HarnessError.checkpointNotFound(path: pattern + " (no file matches the pattern)") }
                var group = try matches.map(from(path:))
                group.sort { ($0.step ?? Int.max, $0.name) < ($1.step ?? Int.max, $1.name) }
                specs += group
            } else {
                specs.append(try from(path: pattern))
            }
        }
        var seen: [String: Int] = [:]
        for index in specs.indices {
            let count = seen[specs[index].name, default: 0]
            seen[specs[index].name] = count + 1
            if count > 0 { specs[index].name += "#\(count + 1)" }
        }
        return specs
    }

    static func expandGlob(_ pattern: String) -> [String] {
        var result = glob_t()
        defer { globfree(&result) }
        guard glob(pattern, 0, nil, &result) == 0 else { return [] }
        return (0..<Int(result.gl_pathc)).compactMap { index in result.gl_pathv[index].map { String(cString: $0) } }
    }
}

/// A checkpoint loaded through the shared engine.
public final class LoadedCheckpoint: @unchecked Sendable {
    public let spec: CheckpointSpec
    public let model: LanguageModel
    public let adapter: Adapter?

    public init(spec: CheckpointSpec, model: LanguageModel, adapter: Adapter?) {
        self.spec = spec
        self.model = model
        self.adapter = adapter
    }

    /// Loads a checkpoint against `base` (required for adapters). Errors name the checkpoint's path.
    public static func load(_ spec: CheckpointSpec, base: LanguageModel?) throws -> LoadedCheckpoint {
        switch spec.source {
        case .base:
            guard let base else { throw HarnessError.missingInput("the base model is needed (give --base DIR)") }
            return LoadedCheckpoint(spec: spec, model: base, adapter: nil)
        case .adapter(let url):
            guard let base else {
                throw HarnessError.missingInput("\(url.path): an adapter checkpoint needs the base model (give --base DIR)")
            }
            let (model, adapter) = try base.applyingAdapter(at: url)
            return LoadedCheckpoint(spec: spec, model: model, adapter: adapter)
        case .modelFolder(let url):
            let model = try LanguageModel.load(folder: url)
            if let base, base.decoder.spec.vocabularySize != model.decoder.spec.vocabularySize {
                throw HarnessError.invalidCheckpoint(path: url.path, reason: "vocabulary size \(model.decoder.spec.vocabularySize) differs from the base's \(base.decoder.spec.vocabularySize)")
            }
            return LoadedCheckpoint(spec: spec, model: model, adapter: nil)
        }
    }
}
