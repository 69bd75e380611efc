import Foundation
import TunecheckJSON

/// Refuses, before any weight is read, a model that cannot fit, with the numbers (otherwise the kernel's OOM killer
/// ends the process without a word).
///
/// Two kinds of memory are counted apart. Weights are used in place from the memory-mapped files: they live in the
/// page cache, which the kernel can drop and re-read, so they are checked against the machine's total memory.
/// Working memory (activations, logits, the KV cache, float32 copies of small tensors; adapters and optimizer
/// state come on top when training) is anonymous: it must fit in what is available now.
public enum MemoryBudget {
    /// Rows the working-memory estimate assumes in one pass (`Scorer`'s default token budget).
    public static let estimatedRows = 2048

    /// Bytes of anonymous memory one inference pass over `rows` packed tokens uses: the shared layer buffers
    /// (residual stream, normed input, q/k/v, attention output, MLP), attention scores of one sequence, rotary tables,
    /// and one chunk of logits (`logitChunkRows` × vocabulary), for the calling thread and one data-parallel worker.
    public static func workingBytes(_ spec: TransformerSpec, rows: Int = estimatedRows) -> Double {
        let attention = spec.attention
        var floatsPerRow = 3 * spec.hiddenSize + attention.queryDim + 2 * attention.kvDim + attention.queryDim
        if case .gated = spec.feedForward { floatsPerRow += 2 * spec.intermediateSize } else { floatsPerRow += spec.intermediateSize }
        if let mamba = spec.mamba { floatsPerRow += mamba.projectionWidth + mamba.convDim + 2 * mamba.intermediate }
        let logitRows = max(32, min(512, 16_777_216 / max(spec.vocabularySize, 1)))
        let perContext = Double(rows) * Double(floatsPerRow) + Double(rows) * Double(rows) + Double(logitRows) * Double(spec.vocabularySize)
        return 2 * perContext * 4
    }

    /// `MemAvailable` from /proc/meminfo in bytes (nil where there is no /proc). `TUNECHECK_MEMORY_AVAILABLE`
    /// (bytes) overrides it, for machines whose cgroup limit is below what /proc reports.
    public static func availableBytes() -> Double? {
        if let override = ProcessInfo.processInfo.environment["TUNECHECK_MEMORY_AVAILABLE"], let bytes = Double(override) { return bytes }
        return meminfo("MemAvailable:")
    }

    /// `MemTotal` from /proc/meminfo in bytes; `TUNECHECK_MEMORY_AVAILABLE` overrides it too (a cgroup limit caps the
    /// page cache a process can keep as well).
    public static func totalBytes() -> Double? {
        if let override = ProcessInfo.processInfo.environment["TUNECHECK_MEMORY_AVAILABLE"], let bytes = Double(override) { return bytes }
        return meminfo("MemTotal:")
    }

    static func meminfo(_ key: String) -> Double? {
        guard let data = try? BoundedFile.read(URL(fileURLWithPath: "/proc/meminfo"), limit: 1 << 20),
              let text = String(data: data, encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix(key) {
            let fields = line.split(separator: " ")
            guard fields.count >= 2, let kilobytes = Double(fields[1]) else { return nil }
            return kilobytes * 1024
        }
        return nil
    }

    /// Throws `insufficientMemory` when the working memory exceeds what is available, or the weights as stored
    /// (`storedBytesPerWeight`: 4 for F32, 2 for BF16/F16) plus the working memory exceed the machine's memory.
    /// A quantized model passes its weights' stored bytes (`storedWeightBytes`: packed codes, scales, biases and the
    /// float tensors, all mapped), since a parameter count times a dtype size does not describe it.
    public static func check(spec: TransformerSpec, folder: URL, storedBytesPerWeight: Int = 4, storedWeightBytes: Double? = nil,
                             availableBytes available: Double? = availableBytes(), totalBytes total: Double? = nil) throws {
        let weights = storedWeightBytes ?? Double(ModelArithmetic.parameterCount(spec)) * Double(storedBytesPerWeight)
        let working = workingBytes(spec)
        let total = total ?? totalBytes() ?? available
        let dtype = storedWeightBytes != nil ? "quantized" : storedBytesPerWeight == 4 ? "F32" : "BF16/F16"
        if let total, weights + working > total {
            throw EngineError.insufficientMemory(
                path: folder.path,
                needed: "\(formatBytes(weights)) for its weights (\(dtype) as stored, memory-mapped) and \(formatBytes(working)) of working memory",
                available: formatBytes(total))
        }
        if let available, working > available {
            throw EngineError.insufficientMemory(path: folder.path, needed: "\(formatBytes(working)) of working memory (activations, logits)",
                                                 available: formatBytes(available))
        }
    }

    /// Throws `insufficientMemory` when full fine-tuning's float32 state (`bytes`, anonymous) exceeds what is
    /// available.
    public static func checkTraining(bytes: Double, folder: URL, availableBytes available: Double? = availableBytes()) throws {
        guard let available, bytes > available else { return }
        throw EngineError.insufficientMemory(
            path: folder.path, needed: "\(formatBytes(bytes)) for full fine-tuning (float32 weights, gradients and AdamW state; LoRA needs far less)",
            available: formatBytes(available))
    }

    public static func formatBytes(_ bytes: Double) -> String {
        let gib = bytes / 1_073_741_824
        return gib >= 10 ? String(format: "%.0f GiB", gib) : gib >= 0.1 ? String(format: "%.1f GiB", gib) : String(format: "%.0f MiB", bytes / 1_048_576)
    }
}
