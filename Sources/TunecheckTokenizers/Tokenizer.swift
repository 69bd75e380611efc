import Foundation
import TunecheckJSON

/// A Hugging Face `tokenizer.json` tokenizer that reproduces `tokenizers` / transformers ids and
/// decoded text exactly.
///
/// Encoding runs the same stages as `tokenizers`:
/// 1. added tokens matched in the raw text (those with `normalized: false`, which includes
///    specials), then the normalizer on the text between them, then added tokens matched in the
///    normalized text;
/// 2. the pre-tokenizer on each remaining run;
/// 3. BPE on each pre-token;
/// 4. the post-processor when `addSpecialTokens` is true.
///
/// The tokenizer is immutable after loading (the BPE word cache is lock-protected), so one
/// instance can encode from many threads.
public final class Tokenizer: @unchecked Sendable {
    private let model: BPEModel
    private let normalizer: Normalizer?
    private let preTokenizer: PreTokenizer?
    private let postProcessor: PostProcessor?
    private let decoder: Decoder?
    private let addedTokensById: [Int: AddedToken]
    private let addedTokenIdsByContent: [ExactString: Int]
    private let rawTextMatcher: AddedTokenMatcher
    private let normalizedTextMatcher: AddedTokenMatcher
    private let config: TokenizerConfig

    public let bosTokenId: Int?
    public let eosTokenId: Int?
    public let padTokenId: Int?
    public let specialTokenIds: Set<Int>
    public let vocabularySize: Int
    public let addsBosToken: Bool
    public var chatTemplate: String? { config.chatTemplate }

    /// Loads `tokenizer.json` (required) and `tokenizer_config.json` (optional) from a model folder.
    /// A chat template kept in `chat_template.jinja` (transformers 5 layout) is picked up when the
    /// config has none.
    public static func load(directory: URL) throws -> Tokenizer {
        let configURL = directory.appendingPathComponent("tokenizer_config.json")
        let tokenizer = try Tokenizer(
            tokenizerJSONAt: directory.appendingPathComponent("tokenizer.json"),
            configAt: FileManager.default.fileExists(atPath: configURL.path) ? configURL : nil,
            chatTemplateFile: directory.appendingPathComponent("chat_template.jinja"))
        return tokenizer
    }

    public convenience init(tokenizerJSONAt url: URL, configAt configURL: URL?) throws {
        try self.init(tokenizerJSONAt: url, configAt: configURL, chatTemplateFile: nil)
    }

    private init(tokenizerJSONAt url: URL, configAt configURL: URL?, chatTemplateFile: URL?) throws {
        let root = try JSONNode.load(fileAt: url)
        var config = try configURL.map { try TokenizerConfig(JSONNode.load(fileAt: $0)) } ?? TokenizerConfig()
        if config.chatTemplate == nil, let chatTemplateFile {
            do {
                config.chatTemplate = try BoundedFile.readText(chatTemplateFile, limit: BoundedFile.Limit.index)
            } catch where !error.isMissing {
                throw TokenizerError.unreadable(path: chatTemplateFile.path, reason: error.reason)
            } catch {}
        }
        self.config = config

        if config.usesLlamaTokenizerPipeline {
            // transformers 5 keeps only the vocabulary, merges, added tokens and post-processor of
            // tokenizer.json for `LlamaTokenizer` and rebuilds the rest (tokenization_llama.py), so a
            // hub file in the legacy Prepend+Replace layout encodes like the non-legacy Metaspace one.
            let addPrefixSpace = config.addPrefixSpace ?? true
            let scheme: PrependScheme = addPrefixSpace ? (config.legacy == true ? .always : .first) : .never
            model = try BPEModel(root.object("model"), sentencePieceDefaults: true)
            normalizer = nil
            preTokenizer = .metaspace(replacement: "\u{2581}", prependScheme: scheme, split: false)
            var steps: [Decoder] = [.replace(pattern: "\u{2581}", content: " "), .byteFallback, .fuse]
            if addPrefixSpace { steps.append(.strip(content: " ", start: 1, stop: 0)) }
            decoder = .sequence(steps)
        } else {
            model = try BPEModel(root.object("model"))
            normalizer = try root.optionalObject("normalizer").map(Normalizer.parse)
            preTokenizer = try root.optionalObject("pre_tokenizer").map(PreTokenizer.parse)
            decoder = try root.optionalObject("decoder").map(Decoder.parse)
        }
        if root.has("truncation") || root.has("padding") {
            // Ignored on purpose: `encode` of one text is never truncated or padded by transformers'
            // `encode` unless asked, and this API does not ask.
        }

        var addedTokens = root.has("added_tokens") ? try root.objects("added_tokens").map(AddedToken.init) : []
        // transformers registers the named special tokens of tokenizer_config.json as special added
        // tokens when tokenizer.json lacks them, so they are matched in text like the others.
        let namedSpecials = [config.bosToken, config.eosToken, config.unknownToken, config.padToken].compactMap { $0 }
            + config.extraSpecialTokens
        var nextNewId = max(model.tokensById.count, (addedTokens.map(\.id).max() ?? -1) + 1)
        for content in namedSpecials where !addedTokens.contains(where: { $0.content.utf8.elementsEqual(content.utf8) }) {
            let id: Int
            if let existing = model.vocabulary[ExactString(content)] {
                id = existing
            } else {
                id = nextNewId
                nextNewId += 1
            }
            addedTokens.append(AddedToken(id: id, content: content, special: true, normalized: false))
        }

        var byId: [Int: AddedToken] = [:]
        var byContent: [ExactString: Int] = [:]
        for token in addedTokens {
            byId[token.id] = token
            byContent[ExactString(token.content)] = token.id
        }
        addedTokensById = byId
        addedTokenIdsByContent = byContent
        rawTextMatcher = AddedTokenMatcher(addedTokens.filter { !$0.normalized }.map { ($0.content, $0) })
        let normalizer = self.normalizer
        normalizedTextMatcher = AddedTokenMatcher(addedTokens.filter(\.normalized).map { token in
            (normalizer?.normalize(token.content) ?? token.content, token)
        })
        specialTokenIds = Set(addedTokens.filter(\.special).map(\.id))
        vocabularySize = max(model.tokensById.count, (addedTokens.map(\.id).max() ?? -1) + 1)

        let modelVocabulary = model.vocabulary
        let lookUp = { (token: String?) -> Int? in
            guard let token else { return nil }
            return byContent[ExactString(token)] ?? modelVocabulary[ExactString(token)]
        }
        let bosId = lookUp(config.bosToken)
        let eosId = lookUp(config.eosToken)
        bosTokenId = bosId
        eosTokenId = eosId
        padTokenId = lookUp(config.padToken)

        let parsedPostProcessor = try root.optionalObject("post_processor").map(PostProcessor.parse)
        if config.addBosToken != nil || config.addEosToken != nil || parsedPostProcessor == nil {
            // transformers 5 (`TokenizersBackend.update_post_processor`) rebuilds the template from
            // the flags when either is set in the config, or when tokenizer.json has none.
            var pieces: [PostProcessor.TemplatePiece] = []
            if config.addBosToken == true, let bosId { pieces.append(.ids([bosId])) }
            pieces.append(.sequence)
            if config.addEosToken == true, let eosId { pieces.append(.ids([eosId])) }
            postProcessor = .template(pieces)
        } else {
            postProcessor = parsedPostProcessor
        }
        let emptyEncoding = postProcessor?.process([]) ?? []
        addsBosToken = bosId != nil && emptyEncoding.first == bosId
    }

    // MARK: - Encoding

    public func encode(_ text: String, addSpecialTokens: Bool = true) -> [Int] {
        var ids: [Int] = []
        ids.reserveCapacity(text.utf8.count / 3 + 4)
        let scalars = Array(text.unicodeScalars)
        for segment in rawTextMatcher.split(scalars[...], startsText: true) {
            switch segment {
            case .addedToken(let id):
                ids.append(id)
            case .text(let raw, let startsText):
                let normalized: [Unicode.Scalar]
                if let normalizer {
                    var view = String.UnicodeScalarView()
                    view.append(contentsOf: raw)
                    normalized = Array(normalizer.normalize(String(view)).unicodeScalars)
                } else {
                    normalized = Array(raw)
                }
                for inner in normalizedTextMatcher.split(normalized[...], startsText: startsText) {
                    switch inner {
                    case .addedToken(let id):
                        ids.append(id)
                    case .text(let run, let runStartsText):
                        let piece = PreTokenizedPiece(scalars: Array(run), startsText: runStartsText)
                        let pieces = preTokenizer?.preTokenize([piece]) ?? [piece]
                        for piece in pieces { model.tokenize(piece.scalars, into: &ids) }
                    }
                }
            }
        }
        if addSpecialTokens, let postProcessor { ids = postProcessor.process(ids) }
        return ids
    }

    // MARK: - Decoding

    /// The text of `ids`. An id the tokenizer does not cover (the padded embedding rows of published models: Qwen2.5
    /// has 151936 rows for 151665 tokens) is skipped, as `tokenizers` does (`filter_map` over `id_to_token`), so a
    /// collapsed checkpoint that generates one still decodes. A negative id is no token id at all and throws
    /// (transformers raises converting it to u32).
    public func decode(_ ids: [Int], skipSpecialTokens: Bool = false) throws -> String {
        var tokens: [String] = []
        tokens.reserveCapacity(ids.count)
        for id in ids {
            guard id >= 0 else { throw TokenizerError.unknownTokenId(id) }
            guard let token = token(forId: id) else { continue }
            if skipSpecialTokens && specialTokenIds.contains(id) { continue }
            tokens.append(token)
        }
        // Added tokens go through the decoder with the rest, as in `tokenizers`.
        let text = decoder?.decode(tokens) ?? tokens.joined(separator: " ")
        // transformers 5 only applies the clean-up to BPE models (all models here) on explicit opt-in.
        if config.cleanUpTokenizationSpaces && config.cleanUpForBPE {
            return Decoder.cleanUpTokenization(text)
        }
        return text
    }

    // MARK: - Vocabulary

    public func token(forId id: Int) -> String? {
        if let added = addedTokensById[id] { return added.content }
        guard id >= 0 && id < model.tokensById.count else { return nil }
        return model.tokensById[id]
    }

    public func id(forToken token: String) -> Int? {
        addedTokenIdsByContent[ExactString(token)] ?? model.vocabulary[ExactString(token)]
    }
}
