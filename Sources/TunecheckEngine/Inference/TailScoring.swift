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
        // lm-eval's one-token-continuation cache, generalised: requests with the same input (all tokens but the last)
        // and the same scored count differ only in their last target, so one set of rows serves them all (the
        // choices " A" / " B" / " C" / " D" after one context cost one context).
        var distinct: [TailRequest] = []
        var lastTargets: [[Int]] = []
        var served: [(distinct: Int, target: Int)] = []
        var distinctIndex: [[Int]: Int] = [:]
        for request in requests {
            var key = Array(request.tokens.dropLast())
            key.append(-request.scoredCount)
            let last = request.tokens[request.tokens.count - 1]
            if let index = distinctIndex[key] {
                if let target = lastTargets[index].firstIndex(of: last) {
                    served.append((index, target))
                } else {
                    lastTargets[index].append(last)
                    served.append((index, lastTargets[index].count - 1))
                }
            } else {
                distinctIndex[key] = distinct.count
                distinct.append(request)
                lastTargets.append([last])
                served.append((distinct.count - 1, 0))
            }
        }
        var scores: [(shared: [Double], last: [Double])] = []
        scores.reserveCapacity(distinct.count)
        var start = 0
        while start < distinct.count {
            var end = start
            var tokens = 0
            while end < distinct.count && (end == start || tokens + distinct[end].tokens.count - 1 <= tokenBudget) {
                tokens += distinct[end].tokens.count - 1
                end += 1
            }
            let batch = Array(distinct[start..<end]), targets = Array(lastTargets[start..<end])
            let parts = min(threads, batch.count)
            if parts > 1 {
                let groups = BatchSplit.contiguousGroups(tokenCounts: batch.map { $0.tokens.count - 1 }, parts: parts)
                let workers = tailWorkers(groups.count)
                scores += try BatchSplit.run(groups.count) { part in
                    try workers[part].scoreTailsPacked(Array(batch[groups[part]]), lastTargets: Array(targets[groups[part]]))
                }.flatMap { $0 }
            } else {
                scores += try scoreTailsPacked(batch, lastTargets: targets)
            }
            start = end
        }
        return served.map { scores[$0.distinct].shared + [scores[$0.distinct].last[$0.target]] }
    }

    /// One packed pass over the requests' inputs (each request's tokens but the last), then the logits of the
    /// scored rows only: the rows are first gathered to the front of the final-norm buffer (rows, hidden), in
    /// order, so the output projection runs as few large GEMMs. Per request: the log-probs of its scored tokens but
    /// the last (`shared`), and of each of `lastTargets[r]` at its last scored row (`last`).
    func scoreTailsPacked(_ requests: [TailRequest], lastTargets: [[Int]]) throws -> [(shared: [Double], last: [Double])] {
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
        // Targets in gathered order: the row for input position p predicts tokens[p + 1]; a request's last scored row
        // has its `lastTargets` instead.
        var targets: [Int] = []
        var lastRowOwner = [Int](repeating: -1, count: gathered)
        targets.reserveCapacity(gathered)
        for (index, request) in requests.enumerated() {
            targets += request.tokens.suffix(request.scoredCount)
            lastRowOwner[targets.count - 1] = index
        }
        let chunkRows = logitRows
        let logits = forwardContext.logits(rows: chunkRows)
        var values = [Double](repeating: 0, count: gathered)
        var lastValues = lastTargets.map { [Double](repeating: 0, count: $0.count) }
        var chunkStart = 0
        while chunkStart < gathered {
            let rows = min(chunkRows, gathered - chunkStart)
            model.logits(context: forwardContext, firstRow: chunkStart, rows: rows, into: logits)
            for offset in 0..<rows {
                let row = logits + offset * vocabulary
                let (logSumExp, _) = LogSoftmaxKernels.logSumExp(row, count: vocabulary)
                values[chunkStart + offset] = Double(row[targets[chunkStart + offset]]) - logSumExp
                let owner = lastRowOwner[chunkStart + offset]
                if owner >= 0 {
                    for (slot, target) in lastTargets[owner].enumerated() { lastValues[owner][slot] = Double(row[target]) - logSumExp }
                }
            }
            chunkStart += rows
        }
        var results: [(shared: [Double], last: [Double])] = []
        var cursor = 0
        for (index, request) in requests.enumerated() {
            results.append((Array(values[cursor..<(cursor + request.scoredCount - 1)]), lastValues[index]))
            cursor += request.scoredCount
        }
        return results
    }
}
