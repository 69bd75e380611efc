import Foundation

/// Token-level comparison of two models' next-token distributions over the same sequences, as llama.cpp's
/// KL-divergence mode reports: at every scored position, KL(reference ‖ candidate) and whether both put the same
/// token on top. Both models must share a vocabulary.
public enum DistributionComparison {
    public struct Result: Sendable, Equatable {
        /// Per sequence, per position `i` (predicting token `i+1`): KL(reference ‖ candidate) in nats.
        public var kl: [[Double]]
        /// Per sequence, per position: whether the argmax tokens agree.
        public var sameTop: [[Bool]]

        public init(kl: [[Double]], sameTop: [[Bool]]) {
            self.kl = kl
            self.sameTop = sameTop
        }
    }

    public static func compare(reference: DecoderModel, candidate: DecoderModel, sequences: [[Int]], tokenBudget: Int = 1024) throws -> Result {
        guard reference.spec.vocabularySize == candidate.spec.vocabularySize else {
            throw EngineError.invalidInput("the models' vocabularies differ (\(reference.spec.vocabularySize) vs \(candidate.spec.vocabularySize))")
        }
        let vocabulary = reference.spec.vocabularySize
        let referenceContext = ForwardContext(model: reference)
        let candidateContext = ForwardContext(model: candidate)
        var result = Result(kl: [], sameTop: [])
        let rowsPerChunk = 16
        let referenceLogits = referenceContext.logits(rows: rowsPerChunk)
        let candidateLogits = candidateContext.logits(rows: rowsPerChunk)
        for (index, sequence) in sequences.enumerated() {
            guard sequence.count >= 2 else {
                throw EngineError.invalidInput("sequence \(index) has \(sequence.count) token(s); comparing distributions needs at least 2")
            }
            guard sequence.count <= max(tokenBudget, 1) * 64 else {
                throw EngineError.invalidInput("sequence \(index) is too long (\(sequence.count) tokens)")
            }
            let tokens = sequence.map { Int32($0) }
            let segments = [SequenceSegment(rowStart: 0, length: tokens.count)]
            try tokens.withUnsafeBufferPointer { buffer in
                try reference.forward(tokens: buffer, segments: segments, cache: nil, context: referenceContext)
                try candidate.forward(tokens: buffer, segments: segments, cache: nil, context: candidateContext)
            }
            let scored = tokens.count - 1
            var kl = [Double](repeating: 0, count: scored)
            var sameTop = [Bool](repeating: false, count: scored)
            var start = 0
            while start < scored {
                let rows = min(rowsPerChunk, scored - start)
                reference.logits(context: referenceContext, firstRow: start, rows: rows, into: referenceLogits)
                candidate.logits(context: candidateContext, firstRow: start, rows: rows, into: candidateLogits)
                for row in 0..<rows {
                    let p = referenceLogits + row * vocabulary
                    let q = candidateLogits + row * vocabulary
                    let (lseP, _) = LogSoftmaxKernels.logSumExp(p, count: vocabulary)
                    let (lseQ, _) = LogSoftmaxKernels.logSumExp(q, count: vocabulary)
                    var divergence = 0.0
                    var bestP = 0, bestQ = 0
                    for token in 0..<vocabulary {
                        let logP = Double(p[token]) - lseP
                        let logQ = Double(q[token]) - lseQ
                        divergence += exp(logP) * (logP - logQ)
                        if p[token] > p[bestP] { bestP = token }
                        if q[token] > q[bestQ] { bestQ = token }
                    }
                    kl[start + row] = max(divergence, 0)
                    sameTop[start + row] = bestP == bestQ
                }
                start += rows
            }
            result.kl.append(kl)
            result.sameTop.append(sameTop)
        }
        return result
    }
}
