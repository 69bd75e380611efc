import Foundation
import TunecheckTokenizers

extension LanguageModel {
    /// The one base + adapter loader: reads the adapter at `url` (mlx_lm or PEFT, folder or numbered file) and
    /// attaches it unfused to this model's decoder. Returns the model with the adapter and the adapter itself.
    /// Errors name the adapter's files.
    public func applyingAdapter(at url: URL) throws -> (model: LanguageModel, adapter: Adapter) {
        let adapter = try Adapter.load(path: url)
        return (replacingDecoder(try adapter.attach(to: decoder)), adapter)
    }
}

extension GenerationResult {
    /// The new ids that make the answer's text: without the stop token generation ended on (the stop token is
    /// kept in `ids`, as transformers' `generate` returns it, but is not part of what the model said).
    public var textIds: [Int] {
        guard finishReason == .stopToken, !ids.isEmpty else { return ids }
        return Array(ids.dropLast())
    }

    /// The answer as text, decoded without the stop token.
    public func text(tokenizer: Tokenizer) throws -> String {
        try tokenizer.decode(textIds)
    }
}
