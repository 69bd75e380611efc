import Foundation
import TunecheckJSON

/// The parts of `tokenizer_config.json` that change encoding or decoding in transformers.
struct TokenizerConfig {
    var bosToken: String?
    var eosToken: String?
    var padToken: String?
    var unknownToken: String?
    /// `additional_special_tokens` / `extra_special_tokens` given as plain strings or objects.
    var extraSpecialTokens: [String] = []
    /// Non-nil when the file sets `add_bos_token` / `add_eos_token` explicitly. transformers 5 then
    /// replaces the post-processor with a template `[bos] $A [eos]` built from these flags.
    var addBosToken: Bool?
    var addEosToken: Bool?
    var cleanUpTokenizationSpaces = false
    /// transformers 5 skips the clean-up for BPE models unless this opt-in is also set.
    var cleanUpForBPE = false
    var chatTemplate: String?
    /// `tokenizer_class`, `legacy` and `add_prefix_space`: transformers 5's `LlamaTokenizer` ignores
    /// the normalizer, pre-tokenizer and decoder of tokenizer.json and builds its own from these.
    var tokenizerClass: String?
    var legacy: Bool?
    var addPrefixSpace: Bool?

    init() {}

    /// Whether transformers 5 would rebuild the pipeline as `LlamaTokenizer` does.
    var usesLlamaTokenizerPipeline: Bool {
        tokenizerClass == "LlamaTokenizer" || tokenizerClass == "LlamaTokenizerFast"
    }

    init(_ node: JSONNode) throws {
        bosToken = try Self.tokenContent(node, "bos_token")
        eosToken = try Self.tokenContent(node, "eos_token")
        padToken = try Self.tokenContent(node, "pad_token")
        unknownToken = try Self.tokenContent(node, "unk_token")
        for key in ["additional_special_tokens", "extra_special_tokens"] {
            // `extra_special_tokens` may also be a name → token mapping.
            let values: [JSONValue]
            if let list = node.value(key)?.array {
                values = list
            } else if let mapping = node.value(key)?.object {
                values = mapping.values
            } else {
                values = []
            }
            for value in values {
                if let text = value.string ?? value.object?["content"]?.string { extraSpecialTokens.append(text) }
            }
        }
        if node.object["add_bos_token"] != nil { addBosToken = node.value("add_bos_token")?.bool ?? false }
        if node.object["add_eos_token"] != nil { addEosToken = node.value("add_eos_token")?.bool ?? false }
        tokenizerClass = try node.optionalString("tokenizer_class")
        legacy = try node.optionalBool("legacy")
        addPrefixSpace = try node.optionalBool("add_prefix_space")
        cleanUpTokenizationSpaces = try node.bool("clean_up_tokenization_spaces", default: false)
        cleanUpForBPE = try node.bool("clean_up_tokenization_spaces_for_bpe_even_though_it_will_corrupt_output", default: false)
        if let template = node.value("chat_template")?.string {
            chatTemplate = template
        } else if let templates = node.value("chat_template")?.array?.compactMap(\.object) {
            // Several named templates: transformers uses the one named "default".
            let named = templates.first { $0["name"]?.string == "default" } ?? templates.first
            chatTemplate = named?["template"]?.string
        }
    }

    /// A special token given as `"<s>"` or `{"content": "<s>", ...}`.
    private static func tokenContent(_ node: JSONNode, _ key: String) throws -> String? {
        guard let raw = node.value(key) else { return nil }
        if let text = raw.string ?? raw.object?["content"]?.string { return text }
        throw node.invalid(key, "expected a string or an object with 'content'")
    }
}
