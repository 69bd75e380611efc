import Foundation
import TunecheckEngine

/// Response log-probs of one preference pair under one model, with the pair's id.
public struct PairScore: Sendable, Equatable {
    public var id: String
    public var spans: PairSpanScores

    public init(id: String, spans: PairSpanScores) {
        self.id = id
        self.spans = spans
    }

    public init(id: String, chosen: SpanScore, rejected: SpanScore) {
        self.init(id: id, spans: PairSpanScores(chosen: chosen, rejected: rejected))
    }

    public var chosen: SpanScore { spans.chosen }
    public var rejected: SpanScore { spans.rejected }
    public var gapSum: Double { spans.gapSum }
    public var gapMean: Double { spans.gapMean }
}

/// Per-token log-probs of one reference text under one model.
public struct TextScore: Sendable, Equatable {
    public var id: String
    public var ids: [Int]
    public var logprobs: [Double]
}

/// Scoring of evalsets through the engine, batched (all sequences packed into few forward passes).
public enum EvalsetScoring {
    /// Tokenizes as TRL does (prompt with special tokens, response without) and scores the responses.
    public static func scorePairs(_ pairs: [PairItem], model: LanguageModel, appendEOS: Bool = false) throws -> [PairScore] {
        let tokenized = try pairs.map { pair in
            try PreferencePairTokens(tokenizer: model.tokenizer, prompt: pair.prompt, chosen: pair.chosen, rejected: pair.rejected,
                                     appendEOS: appendEOS, context: "pair \"\(pair.id)\"")
        }
        let scores = try Scorer(model: model.decoder).scorePairs(tokenized)
        return zip(pairs, scores).map { PairScore(id: $0.id, spans: $1) }
    }

    public static func tokenizeTexts(_ texts: [TextItem], model: LanguageModel) throws -> [[Int]] {
        try texts.map { item in
            let ids = model.tokenizer.encode(item.text)
            guard ids.count >= 2 else {
                throw HarnessError.invalidEvalset(path: "texts", line: nil, reason: "text \"\(item.id)\" encodes to \(ids.count) token(s); at least 2 are needed")
            }
            return ids
        }
    }

    public static func scoreTexts(_ texts: [TextItem], model: LanguageModel) throws -> [TextScore] {
        let sequences = try tokenizeTexts(texts, model: model)
        let scores = try Scorer(model: model.decoder).score(sequences)
        return texts.indices.map { TextScore(id: texts[$0].id, ids: sequences[$0], logprobs: scores[$0]) }
    }
}

/// Small statistics helpers for metrics.
public enum Statistics {
    public static func mean(_ values: [Double]) -> Double {
        values.isEmpty ? 0 : values.reduce(0, +) / Double(values.count)
    }

    /// Linear-interpolated percentile (numpy's default), `fraction` in 0...1.
    public static func percentile(_ values: [Double], _ fraction: Double) -> Double {
        guard !values.isEmpty else { return 0 }
        let sorted = values.sorted()
        let position = fraction * Double(sorted.count - 1)
        let lower = Int(position.rounded(.down))
        let upper = min(lower + 1, sorted.count - 1)
        let weight = position - Double(lower)
        return sorted[lower] * (1 - weight) + sorted[upper] * weight
    }
}
