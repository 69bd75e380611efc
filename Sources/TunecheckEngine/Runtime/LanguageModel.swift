import Foundation
import TunecheckTokenizers

/// A model folder ready for text: the decoder, its tokenizer and its generation settings.
public final class LanguageModel: @unchecked Sendable {
    public let folder: URL
    public let decoder: DecoderModel
    public let tokenizer: Tokenizer
    public let generationConfig: GenerationConfig

    public init(folder: URL, decoder: DecoderModel, tokenizer: Tokenizer, generationConfig: GenerationConfig) {
        self.folder = folder
        self.decoder = decoder
        self.tokenizer = tokenizer
        self.generationConfig = generationConfig
    }

    public static func load(folder: URL) throws -> LanguageModel {
        let decoder = try ModelLoader.loadDecoder(folder: folder)
        let tokenizer = try Tokenizer.load(directory: folder)
        let generationConfig = try GenerationConfig.load(folder: folder)
        if tokenizer.vocabularySize > decoder.spec.vocabularySize {
            throw EngineError.invalidConfig(path: folder.appendingPathComponent("tokenizer.json").path,
                                            reason: "tokenizer has \(tokenizer.vocabularySize) tokens but the model's vocab_size is \(decoder.spec.vocabularySize)")
        }
        return LanguageModel(folder: folder, decoder: decoder, tokenizer: tokenizer, generationConfig: generationConfig)
    }

    /// The same folder with a different decoder (e.g. with an adapter attached).
    public func replacingDecoder(_ newDecoder: DecoderModel) -> LanguageModel {
        LanguageModel(folder: folder, decoder: newDecoder, tokenizer: tokenizer, generationConfig: generationConfig)
    }

    /// Tokens that end generation: generation_config's EOS ids, else the tokenizer's EOS.
    public var stopTokenIds: Set<Int> {
        if !generationConfig.eosTokenIds.isEmpty { return Set(generationConfig.eosTokenIds) }
        return tokenizer.eosTokenId.map { [$0] } ?? []
    }
}
