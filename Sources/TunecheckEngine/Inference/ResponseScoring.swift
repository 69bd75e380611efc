import Foundation
import TunecheckTokenizers

/// A prompt + response tokenized as TRL does for preference data: the prompt with the tokenizer's special tokens
/// (BOS), the response without, concatenated; optionally followed by EOS (TRL's DPO appends it).
public struct PromptResponseTokens: Sendable, Equatable {
    public var ids: [Int]
    public var promptLength: Int
    public var responseLength: Int { ids.count - promptLength }

    public init(ids: [Int], promptLength: Int) {
        self.ids = ids
        self.promptLength = promptLength
    }

    public init(tokenizer: Tokenizer, prompt: String, response: String, appendEOS: Bool = false) {
        let promptIds = tokenizer.encode(prompt, addSpecialTokens: true)
        var responseIds = tokenizer.encode(response, addSpecialTokens: false)
        if appendEOS, let eos = tokenizer.eosTokenId { responseIds.append(eos) }
        self.init(ids: promptIds + responseIds, promptLength: promptIds.count)
    }
}

/// Log-probabilities of a scored span: the per-token values, their sum and mean.
public struct SpanScore: Sendable, Equatable {
    public var tokenLogprobs: [Double]
    public var sum: Double { tokenLogprobs.reduce(0, +) }
    public var mean: Double { tokenLogprobs.isEmpty ? 0 : sum / Double(tokenLogprobs.count) }

    public init(tokenLogprobs: [Double]) { self.tokenLogprobs = tokenLogprobs }

    /// The response part of a whole sequence's log-probs: tokens at positions `promptLength ..< n`, i.e.
    /// `logprobs[promptLength-1 ..< n-1]`.
    public init(sequenceLogprobs: [Double], promptLength: Int) {
        tokenLogprobs = Array(sequenceLogprobs[max(promptLength - 1, 0)...])
    }
}

extension PromptResponseTokens {
    /// Checks that the response can be scored: a non-empty prompt (the first response token needs a context)
    /// and a non-empty response.
    public func validate(context: String) throws {
        guard promptLength > 0 else {
            throw EngineError.invalidInput("\(context): the prompt encodes to no tokens, so the first response token has no context to be scored in")
        }
        guard responseLength > 0 else {
            throw EngineError.invalidInput("\(context): the response encodes to no tokens")
        }
    }
}
