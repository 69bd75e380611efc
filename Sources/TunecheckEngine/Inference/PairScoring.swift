import Foundation
import TunecheckTokenizers

/// One preference pair tokenized as TRL does (see `PromptResponseTokens`): the same prompt with the chosen and with
/// the rejected response.
public struct PreferencePairTokens: Sendable, Equatable {
    public var chosen: PromptResponseTokens
    public var rejected: PromptResponseTokens

    public init(chosen: PromptResponseTokens, rejected: PromptResponseTokens) {
        self.chosen = chosen
        self.rejected = rejected
    }

    /// Tokenizes and validates a pair; `context` names it in errors (`file:line`, `pair "id"`).
    public init(tokenizer: Tokenizer, prompt: String, chosen: String, rejected: String, appendEOS: Bool = false, context: String) throws {
        self.chosen = PromptResponseTokens(tokenizer: tokenizer, prompt: prompt, response: chosen, appendEOS: appendEOS)
        self.rejected = PromptResponseTokens(tokenizer: tokenizer, prompt: prompt, response: rejected, appendEOS: appendEOS)
        try self.chosen.validate(context: context + " (chosen)")
        try self.rejected.validate(context: context + " (rejected)")
    }
}

/// The response scores of one pair under one model.
public struct PairSpanScores: Sendable, Equatable {
    public var chosen: SpanScore
    public var rejected: SpanScore

    public init(chosen: SpanScore, rejected: SpanScore) {
        self.chosen = chosen
        self.rejected = rejected
    }

    /// Summed response log-prob gap, chosen − rejected.
    public var gapSum: Double { chosen.sum - rejected.sum }
    /// Per-token gap, chosen − rejected.
    public var gapMean: Double { chosen.mean - rejected.mean }
}

extension Scorer {
    /// The one scoring path for prompt/response data (`score`, the harness's evalsets, the trainer's reference):
    /// every sequence packed into few forward passes, then each response's span cut out.
    public func scoreResponses(_ items: [PromptResponseTokens]) throws -> [SpanScore] {
        let scores = try score(items.map(\.ids))
        return zip(items, scores).map { SpanScore(sequenceLogprobs: $1, promptLength: $0.promptLength) }
    }

    /// Both responses of every pair, in one batch (sequences ordered chosen₀, rejected₀, chosen₁, ...).
    public func scorePairs(_ pairs: [PreferencePairTokens]) throws -> [PairSpanScores] {
        let spans = try scoreResponses(pairs.flatMap { [$0.chosen, $0.rejected] })
        return pairs.indices.map { PairSpanScores(chosen: spans[2 * $0], rejected: spans[2 * $0 + 1]) }
    }
}
