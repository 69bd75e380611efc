import Foundation

public struct GenerationOptions: Sendable, Equatable {
    public var maxNewTokens: Int
    public var sampling: SamplingSettings
    /// Seed for sampling; nil draws one from the system.
    public var seed: UInt64?
    /// Tokens that end generation (EOS). Ignored, and never generated, when `ignoreEOS` is set
    /// (transformers' `min_new_tokens` masks them the same way).
    public var stopTokenIds: Set<Int>
    public var ignoreEOS: Bool

    public init(maxNewTokens: Int = 64, sampling: SamplingSettings = SamplingSettings(), seed: UInt64? = nil,
                stopTokenIds: Set<Int> = [], ignoreEOS: Bool = false) {
        self.maxNewTokens = maxNewTokens
        self.sampling = sampling
        self.seed = seed
        self.stopTokenIds = stopTokenIds
        self.ignoreEOS = ignoreEOS
    }
}

public struct GenerationResult: Sendable, Equatable {
    public enum FinishReason: String, Sendable {
        case stopToken = "eos"
        case length
    }
    public var promptIds: [Int]
    /// New tokens only; includes the stop token when generation ended on one.
    public var ids: [Int]
    public var finishReason: FinishReason
}

/// KV-cache generation: the prompt is prefilled in one pass (GEMMs over all its rows), then one token per step.
public final class Generator {
    public let model: DecoderModel
    private let context: ForwardContext

    public init(model: DecoderModel) {
        self.model = model
        context = ForwardContext(model: model)
    }

    public func generate(promptIds: [Int], options: GenerationOptions) throws -> GenerationResult {
        guard !promptIds.isEmpty else { throw EngineError.invalidInput("the prompt is empty: generation needs at least one token") }
        guard options.maxNewTokens >= 0 else { throw EngineError.invalidInput("max new tokens must not be negative") }
        let vocabulary = model.spec.vocabularySize
        for id in promptIds where id < 0 || id >= vocabulary {
            throw EngineError.invalidInput("prompt token id \(id) is outside the vocabulary (0..<\(vocabulary))")
        }
        let (capacity, capacityOverflow) = promptIds.count.addingReportingOverflow(options.maxNewTokens)
        if case .learned(let count) = model.spec.positions, capacityOverflow || capacity > count {
            throw EngineError.invalidInput("prompt (\(promptIds.count)) + new tokens (\(options.maxNewTokens)) exceed the model's \(count) positions")
        }
        // The cache is allocated up front for every position; a count that cannot fit in memory (or in Int) is an
        // input error, not a crash.
        let cacheFloats = capacityOverflow ? nil : KVCache.floatCount(spec: model.spec, capacity: capacity)
        guard let cacheFloats, UInt64(cacheFloats) <= ProcessInfo.processInfo.physicalMemory / UInt64(MemoryLayout<Float>.size) else {
            throw EngineError.invalidInput("prompt (\(promptIds.count)) + new tokens (\(options.maxNewTokens)) need a KV cache larger than this machine's memory")
        }
        let cache = KVCache(spec: model.spec, capacity: capacity)
        var sampler = Sampler(settings: options.sampling, seed: options.seed ?? UInt64.random(in: 0...UInt64.max))
        let banned = options.ignoreEOS ? options.stopTokenIds : []
        let logits = context.logits(rows: 1)
        var generated: [Int] = []
        var pending = promptIds.map { Int32($0) }
        while generated.count < options.maxNewTokens {
            try pending.withUnsafeBufferPointer { buffer in
                try model.forward(tokens: buffer, segments: [SequenceSegment(rowStart: 0, length: buffer.count)], cache: cache, context: context)
            }
            model.logits(context: context, firstRow: pending.count - 1, rows: 1, into: logits)
            let next = sampler.next(logits, count: vocabulary, banned: banned)
            generated.append(next)
            if !options.ignoreEOS && options.stopTokenIds.contains(next) {
                return GenerationResult(promptIds: promptIds, ids: generated, finishReason: .stopToken)
            }
            pending = [Int32(next)]
        }
        return GenerationResult(promptIds: promptIds, ids: generated, finishReason: .length)
    }
}
