import CBLAS
import Foundation

/// Per-token log-probabilities of whole sequences: `logprobs[i] = log p(ids[i+1] | ids[0...i])`, so a sequence
/// of n tokens gets n−1 values (the first token is never scored), exactly as transformers' reference defines it.
public final class Scorer {
    public let model: DecoderModel
    /// Upper bound on packed tokens per forward pass (memory is linear in it).
    public let tokenBudget: Int
    /// Threads a packed pass of several sequences is split over (1: one pass, OpenBLAS threading inside).
    public let threads: Int
    var logitRows: Int { model.logitChunkRows }
    private let context: ForwardContext
    /// One single-threaded scorer per thread, made on first use.
    private var workers: [Scorer] = []

    /// The default `tokenBudget`.
    public static let defaultTokenBudget = 2048

    /// This scorer's forward state (for the scoring variants in other files).
    var forwardContext: ForwardContext { context }

    /// `count` single-threaded scorers for data-parallel passes, made on first use.
    func tailWorkers(_ count: Int) -> [Scorer] {
        while workers.count < count { workers.append(Scorer(model: model, tokenBudget: tokenBudget, threads: 1)) }
        return Array(workers.prefix(count))
    }

    /// `threads` defaults to the cores this process may use (`MatrixVectorKernels.threads`).
    public init(model: DecoderModel, tokenBudget: Int = Scorer.defaultTokenBudget, threads: Int? = nil) {
        self.model = model
        self.tokenBudget = max(tokenBudget, 1)
        self.threads = max(1, threads ?? MatrixVectorKernels.threads)
        context = ForwardContext(model: model)
    }

    /// Scores every sequence; sequences are packed into passes of at most `tokenBudget` tokens.
    /// - Throws: `EngineError.invalidInput` for an empty sequence or an id outside the vocabulary.
    public func score(_ sequences: [[Int]]) throws -> [[Double]] {
        var results = [[Double]](repeating: [], count: sequences.count)
        for (index, sequence) in sequences.enumerated() where sequence.isEmpty {
            throw EngineError.invalidInput("sequence \(index) is empty: nothing to score")
        }
        var start = 0
        while start < sequences.count {
            var end = start
            var tokens = 0
            while end < sequences.count && (end == start || tokens + sequences[end].count <= tokenBudget) {
                tokens += sequences[end].count
                end += 1
            }
            let batch = Array(start..<end)
            let scores = try scoreSplit(batch.map { sequences[$0] })
            for (offset, index) in batch.enumerated() { results[index] = scores[offset] }
            start = end
        }
        return results
    }

    /// Scores one packed batch, split over `threads` when it holds several sequences: each thread runs its share of
    /// the sequences through its own packed pass with OpenBLAS single-threaded inside. Data parallel over sequences
    /// rather than parallel inside each GEMM: no thread hand-off per GEMM (OpenBLAS' idle threads spin and
    /// sched_yield between calls), and the norms, activations, attention and log-softmax, which run on one thread in
    /// a pass, run on every core. The numbers are the same as one pass (each sequence's rows are computed alike).
    private func scoreSplit(_ sequences: [[Int]]) throws -> [[Double]] {
        let parts = min(threads, sequences.count)
        guard parts > 1 else { return try scorePacked(sequences) }
        while workers.count < parts { workers.append(Scorer(model: model, tokenBudget: tokenBudget, threads: 1)) }
        let groups = BatchSplit.contiguousGroups(tokenCounts: sequences.map(\.count), parts: parts)
        return try BatchSplit.run(groups.count) { part in try self.workers[part].scorePacked(Array(sequences[groups[part]])) }.flatMap { $0 }
    }

    /// One packed forward pass over `sequences`.
    private func scorePacked(_ sequences: [[Int]]) throws -> [[Double]] {
        let batch = try PackedBatch(sequences, vocabularySize: model.spec.vocabularySize)
        let tokens = batch.tokens
        let segments = batch.segments
        try tokens.withUnsafeBufferPointer { buffer in
            try model.forward(tokens: buffer, segments: segments, cache: nil, context: context)
        }
        return batch.tokenLogprobs(model: model, context: context, chunkRows: logitRows)
    }

    /// Full log-softmax rows for one sequence (rows × vocabulary); for inspection and tests (top-k checks).
    public func logSoftmaxRows(_ sequence: [Int]) throws -> [[Double]] {
        guard !sequence.isEmpty else { throw EngineError.invalidInput("empty sequence") }
        // Checked before the Int32 conversion, which traps for ids beyond Int32.
        for id in sequence where id < 0 || id >= model.spec.vocabularySize {
            throw EngineError.invalidInput("token id \(id) is outside the vocabulary (0..<\(model.spec.vocabularySize))")
        }
        let tokens = sequence.map { Int32($0) }
        try tokens.withUnsafeBufferPointer { buffer in
            try model.forward(tokens: buffer, segments: [SequenceSegment(rowStart: 0, length: tokens.count)], cache: nil, context: context)
        }
        let vocabulary = model.spec.vocabularySize
        let logits = context.logits(rows: 1)
        var rows: [[Double]] = []
        for row in 0..<tokens.count {
            model.logits(context: context, firstRow: row, rows: 1, into: logits)
            let (logSumExp, _) = LogSoftmaxKernels.logSumExp(logits, count: vocabulary)
            rows.append((0..<vocabulary).map { Double(logits[$0]) - logSumExp })
        }
        return rows
    }
}

/// Hands non-Sendable state to worker threads that use disjoint parts of it.
struct UncheckedSendable<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
