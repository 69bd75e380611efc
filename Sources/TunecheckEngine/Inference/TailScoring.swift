import Foundation

/// One request of `Scorer.scoreTails`: a token sequence and how many of its last tokens are scored.
public struct TailRequest: Sendable, Equatable {
    /// Context then continuation (n ≥ 2 tokens).
    public var tokens: [Int]
    /// The last `scoredCount` tokens are scored (1 ≤ scoredCount ≤ n − 1).
    public var scoredCount: Int

    public init(tokens: [Int], scoredCount: Int) {
        self.tokens = tokens
        self.scoredCount = scoredCount
    }
}

extension Scorer {
    /// `log p(tokens[i] | tokens[0..<i])` for the last `scoredCount` positions of each request, as lm-eval's
    /// `_loglikelihood_tokens` computes a continuation's log-likelihood: the model runs on every token but the last
    /// (`(context + continuation)[:-1]`), so a window of the model's positions + 1 tokens fits a model with learned
    /// positions, and logits are computed only for the scored rows (a multiple-choice item's context rows, most of
    /// the batch, never reach the (vocabulary, hidden) output projection).
    ///
    /// Requests are packed into passes of at most `tokenBudget` tokens and split over `threads` like `score`; the
    /// numbers are those of one request at a time. Result: per request, `scoredCount` values in token order.
    /// - Throws: `EngineError.invalidInput` for a request with fewer than 2 tokens, a scored count outside
    ///   1...n−1, or an id outside the vocabulary.
    public func scoreTails(_ requests: [TailRequest]) throws -> [[Double]] {
        for (index, request) in requests.enumerated() {
            guard request.tokens.count >= 2, (1...(request.tokens.count - 1)).contains(request.scoredCount) else {
                throw EngineError.invalidInput("request \(index): \(request.scoredCount) scored token(s) of \(request.tokens.count); "
                                               + "needs at least one context token and one scored token")
            }
            // The last token is only a target (never fed to the model), so the forward pass does not check it.
            for id in request.tokens where id < 0 || id >= model.spec.vocabularySize {
                throw EngineError.invalidInput("request \(index): token id \(id) is outside the vocabulary (0..<\(model.spec.vocabularySize))")
            }
        }
        var results = [[Double]](repeating: [], count: requests.count)
        var start = 0
        while start < requests.count {
            var end = start
            var tokens = 0
            while end < requests.count && (end == start || tokens + requests[end].tokens.count - 1 <= tokenBudget) {
                tokens += requests[end].tokens.count - 1
                end += 1
            }
            let batch = Array(requests[start..<end])
            let parts = min(threads, batch.count)
            let scores: [[Double]]
            if parts > 1 {
                let groups = BatchSplit.contiguousGroups(tokenCounts: batch.map { $0.tokens.count - 1 }, parts: parts)
                let workers = tailWorkers(groups.count)
                scores = try BatchSplit.run(groups.count) { part in try workers[part].scoreTailsPacked(Array(batch[groups[part]])) }
                    .flatMap { $0 }
            } else {
                scores = try scoreTailsPacked(batch)
            }
            for (offset, values) in scores.enumerated() { results[start + offset] = values }
            start = end
        }
        return results
    }

    /// One packed pass over the requests' inputs (each request's tokens but the last), then the logits of the
    /// scored rows only: the rows are first gathered to the front of the final-norm buffer (rows, hidden), in
    /// order, so the output projection runs as few large GEMMs.
    func scoreTailsPacked(_ requests: [TailRequest]) throws -> [[Double]] {
        let batch = try PackedBatch(requests.map { Array($0.tokens.dropLast()) }, vocabularySize: model.spec.vocabularySize)
        try batch.tokens.withUnsafeBufferPointer { buffer in
            try model.forward(tokens: buffer, segments: batch.segments, cache: nil, context: forwardContext)
        }
        let hidden = model.spec.hiddenSize
        let vocabulary = model.spec.vocabularySize
        let normed = forwardContext.workspace.normed!
        // Gather: scored rows move forward (destination ≤ source, so a forward pass never overwrites a row to come).
        var gathered = 0
        for (segment, request) in zip(batch.segments, requests) {
            let first = segment.rowStart + segment.length - request.scoredCount
            if first != gathered {
                (normed + gathered * hidden).update(from: normed + first * hidden, count: request.scoredCount * hidden)
            }
            gathered += request.scoredCount
        }
        // Targets in gathered order: the row for input position p predicts tokens[p + 1].
        var targets: [Int] = []
        targets.reserveCapacity(gathered)
        for request in requests { targets += request.tokens.suffix(request.scoredCount) }
        let chunkRows = logitRows
        let logits = forwardContext.logits(rows: chunkRows)
        var values = [Double](repeating: 0, count: gathered)
        var chunkStart = 0
        while chunkStart < gathered {
            let rows = min(chunkRows, gathered - chunkStart)
            model.logits(context: forwardContext, firstRow: chunkStart, rows: rows, into: logits)
            for offset in 0..<rows {
                let row = logits + offset * vocabulary
                let (logSumExp, _) = LogSoftmaxKernels.logSumExp(row, count: vocabulary)
                values[chunkStart + offset] = Double(row[targets[chunkStart + offset]]) - logSumExp
            }
            chunkStart += rows
        }
        var results: [[Double]] = []
        var cursor = 0
        for request in requests {
            results.append(Array(values[cursor..<(cursor + request.scoredCount)]))
            cursor += request.scoredCount
        }
        return results
    }
}
