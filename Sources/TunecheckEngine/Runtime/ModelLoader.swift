import Foundation
import TunecheckJSON

/// Loads a model folder's weights: `config.json` → `TransformerSpec` (through the architecture registry), then the
/// safetensors → `DecoderWeights`.
public enum ModelLoader {
    public static func loadDecoder(folder: URL) throws -> DecoderModel {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder.path, isDirectory: &isDirectory) else {
            throw EngineError.unreadable(path: folder.path, reason: "no such folder")
        }
        guard isDirectory.boolValue else {
            throw EngineError.unreadable(path: folder.path, reason: "expected a model folder, found a file")
        }
        let (spec, architecture) = try ModelConfigLoader.loadSpec(configURL: folder.appendingPathComponent("config.json"))
        try MemoryBudget.check(spec: spec, folder: folder)
        let store = try WeightStore(folder: folder)
        let weights = try architecture.loadWeights(from: store, spec: spec)
        return DecoderModel(spec: spec, weights: weights, store: store)
    }
}

/// Refuses a model whose float32 weights cannot fit in the memory the system has available, with a message, before
/// any weight is mapped or widened (otherwise the kernel's OOM killer ends the process without a word).
public enum MemoryBudget {
    /// Float32 parameter count implied by the config: embeddings (and an untied output projection), each block's
    /// attention or Mamba2 projections and MLP (with routed experts), learned positions. Norms and biases are left out (a fraction of a percent).
    public static func parameterCount(_ spec: TransformerSpec) -> Double {
        let hidden = Double(spec.hiddenSize), vocabulary = Double(spec.vocabularySize)
        let attention = spec.attention
        let queryWidth = Double(attention.heads * attention.headDim), keyValueWidth = Double(attention.kvHeads * attention.headDim)
        let attentionParameters = hidden * queryWidth * 2 + hidden * keyValueWidth * 2
        let matrices: Double
        switch spec.feedForward {
        case .gated: matrices = 3
        case .plain: matrices = 2
        }
        let mlpParameters = matrices * hidden * Double(spec.intermediateSize)
            + (spec.experts.map { Double($0.count) * (hidden + 3 * hidden * Double($0.width)) } ?? 0)
        var total = vocabulary * hidden * (spec.tiedEmbeddings ? 1 : 2)
        for layer in 0..<spec.layerCount {
            if spec.layerKind(layer) == .mamba, let mamba = spec.mamba {
                total += hidden * Double(mamba.projectionWidth) + Double(mamba.intermediate) * hidden + mlpParameters
            } else {
                total += attentionParameters + mlpParameters
            }
        }
        if case .learned(let count) = spec.positions { total += Double(count) * hidden }
        return total
    }

    /// `MemAvailable` from /proc/meminfo in bytes (nil where there is no /proc). `TUNECHECK_MEMORY_AVAILABLE`
    /// (bytes) overrides it, for machines whose cgroup limit is below what /proc reports.
    public static func availableBytes() -> Double? {
        if let override = ProcessInfo.processInfo.environment["TUNECHECK_MEMORY_AVAILABLE"], let bytes = Double(override) { return bytes }
        guard let data = try? BoundedFile.read(URL(fileURLWithPath: "/proc/meminfo"), limit: 1 << 20),
              let text = String(data: data, encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("MemAvailable:") {
            let fields = line.split(separator: " ")
            guard fields.count >= 2, let kilobytes = Double(fields[1]) else { return nil }
            return kilobytes * 1024
        }
        return nil
    }

    public static func check(spec: TransformerSpec, folder: URL, availableBytes available: Double? = availableBytes()) throws {
        let needed = parameterCount(spec) * 4
        guard let available, needed > available else { return }
        throw EngineError.insufficientMemory(path: folder.path, needed: formatBytes(needed), available: formatBytes(available))
    }

    static func formatBytes(_ bytes: Double) -> String {
        let gib = bytes / 1_073_741_824
        return gib >= 10 ? String(format: "%.0f GiB", gib) : gib >= 0.1 ? String(format: "%.1f GiB", gib) : String(format: "%.0f MiB", bytes / 1_048_576)
    }
}
