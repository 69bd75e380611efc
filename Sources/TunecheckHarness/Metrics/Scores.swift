import Foundation
import TunecheckEngine

/// Response log-probs of one preference pair under one model.
public struct PairScore: Sendable, Equatable {
    public var id: String
    public var chosen: SpanScore
    public var rejected: SpanScore

    public var gapSum: Double { chosen.sum - rejected.sum }
    public var gapMean: Double { chosen.mean - rejected.mean }
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
        var sequences: [[Int]] = []
        var tokenized: [(PromptResponseTokens, PromptResponseTokens)] = []
        for pair in pairs {
            let chosen = PromptResponseTokens(tokenizer: model.tokenizer, prompt: pair.prompt, response: pair.chosen, appendEOS: appendEOS)
            let rejected = PromptResponseTokens(tokenizer: model.tokenizer, prompt: pair.prompt, response: pair.rejected, appendEOS: appendEOS)
            try chosen.validate(context: "pair \"\(pair.id)\" (chosen)")
            try rejected.validate(context: "pair \"\(pair.id)\" (rejected)")
            tokenized.append((chosen, rejected))
            sequences += [chosen.ids, rejected.ids]
        }
        let scores = try Scorer(model: model.decoder).score(sequences)
        return pairs.indices.map { index in
            PairScore(id: pairs[index].id,
                      chosen: SpanScore(sequenceLogprobs: scores[2 * index], promptLength: tokenized[index].0.promptLength),
                      rejected: SpanScore(sequenceLogprobs: scores[2 * index + 1], promptLength: tokenized[index].1.promptLength))
        }
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
