import Foundation

/// The `decoder` stage: turns a list of token strings back into text.
///
/// Like `tokenizers`, each decoder maps a list of tokens to a new list (`decode_chain`), so a
/// `Sequence` can hand per-token results on (e.g. `Strip` after `Fuse` strips the fused string, but
/// `Strip` before `Fuse` would strip every token). The final text is the concatenation.
indirect enum Decoder: Sendable {
    case sequence([Decoder])
    case byteLevel
    case metaspace(replacement: Unicode.Scalar, stripsFirstToken: Bool)
    case replace(pattern: String, content: String)
    case byteFallback
    case fuse
    case strip(content: Unicode.Scalar, start: Int, stop: Int)
    case wordPiece(prefix: String, cleanup: Bool)

    static func parse(_ node: JSONNode) throws -> Decoder {
        let type = try node.type()
        switch type {
        case "Sequence":
            return .sequence(try node.objects("decoders").map(parse))
        case "ByteLevel":
            return .byteLevel
        case "Metaspace":
            let replacement = Array((try node.optionalString("replacement") ?? "\u{2581}").unicodeScalars)
            guard replacement.count == 1 else { throw node.invalid("replacement", "must be a single character") }
            let strips: Bool
            if let scheme = try node.optionalString("prepend_scheme") {
                strips = scheme != "never"
            } else {
                strips = try node.bool("add_prefix_space", default: true)
            }
            return .metaspace(replacement: replacement[0], stripsFirstToken: strips)
        case "Replace":
            switch try node.pattern("pattern") {
            case .literal(let literal):
                return .replace(pattern: literal, content: try node.string("content"))
            case .regex(let regex):
                throw TokenizerError.unsupported(path: node.path, component: "decoder Replace regex", type: regex)
            }
        case "ByteFallback":
            return .byteFallback
        case "Fuse":
            return .fuse
        case "Strip":
            let content = Array(try node.string("content").unicodeScalars)
            guard content.count == 1 else { throw node.invalid("content", "must be a single character") }
            return .strip(content: content[0], start: try node.int("start", default: 0), stop: try node.int("stop", default: 0))
        case "WordPiece":
            return .wordPiece(prefix: try node.optionalString("prefix") ?? "##", cleanup: try node.bool("cleanup", default: true))
        default:
            throw TokenizerError.unsupported(path: node.path, component: "decoder", type: type)
        }
    }

    func decode(_ tokens: [String]) -> String {
        decodeChain(tokens).joined()
    }

    func decodeChain(_ tokens: [String]) -> [String] {
        switch self {
        case .sequence(let steps):
            return steps.reduce(tokens) { $1.decodeChain($0) }

        case .byteLevel:
            // A token whose scalars are not all byte-level characters (an added token such as
            // "é☃") contributes its own UTF-8 bytes. Invalid UTF-8 becomes U+FFFD per maximal
            // invalid subsequence, as Rust's `from_utf8_lossy` and Swift's decoding both do.
            var bytes: [UInt8] = []
            let table = ByteLevelTables.byteForScalar
            for token in tokens {
                let start = bytes.count
                var mapped = true
                for scalar in token.unicodeScalars {
                    guard let byte = table[scalar.value] else { mapped = false; break }
                    bytes.append(byte)
                }
                if !mapped {
                    bytes.removeSubrange(start...)
                    bytes += Array(token.utf8)
                }
            }
            return [String(decoding: bytes, as: UTF8.self)]

        case .metaspace(let replacement, let stripsFirstToken):
            return tokens.enumerated().map { index, token in
                var output = String.UnicodeScalarView()
                for scalar in token.unicodeScalars {
                    if scalar == replacement {
                        // `tokenizers` drops every `▁` of the first token here, not only the leading one.
                        if index == 0 && stripsFirstToken { continue }
                        output.append(" ")
                    } else {
                        output.append(scalar)
                    }
                }
                return String(output)
            }

        case .replace(let pattern, let content):
            return tokens.map { Normalizer.replaceScalars($0, pattern: pattern, content: content) }

        case .byteFallback:
            var output: [String] = []
            output.reserveCapacity(tokens.count)
            var pendingBytes: [UInt8] = []
            func flush() {
                guard !pendingBytes.isEmpty else { return }
                if let text = String(validating: pendingBytes, as: UTF8.self) {
                    output.append(text)
                } else {
                    // One replacement character per byte token, as `tokenizers` does (not per
                    // maximal subsequence).
                    output += Array(repeating: "\u{FFFD}", count: pendingBytes.count)
                }
                pendingBytes.removeAll(keepingCapacity: true)
            }
            for token in tokens {
                if let byte = Self.fallbackByte(token) {
                    pendingBytes.append(byte)
                } else {
                    flush()
                    output.append(token)
                }
            }
            flush()
            return output

        case .fuse:
            return [tokens.joined()]

        case .strip(let content, let start, let stop):
            return tokens.map { token in
                let scalars = Array(token.unicodeScalars)
                var lower = 0
                while lower < min(start, scalars.count) && scalars[lower] == content { lower += 1 }
                var upper = scalars.count
                while scalars.count - upper < stop && upper > lower && scalars[upper - 1] == content { upper -= 1 }
                var output = String.UnicodeScalarView()
                output.append(contentsOf: scalars[lower..<upper])
                return String(output)
            }

        case .wordPiece(let prefix, let cleanup):
            return tokens.enumerated().map { index, token in
                var text = token
                if index != 0 {
                    if text.hasPrefix(prefix) { text = String(text.dropFirst(prefix.count)) } else { text = " " + text }
                }
                return cleanup ? Self.cleanUpTokenization(text) : text
            }
        }
    }

    /// The byte of a `<0xXX>` token, or nil for any other token.
    private static func fallbackByte(_ token: String) -> UInt8? {
        let utf8 = Array(token.utf8)
        guard utf8.count == 6, utf8[0] == UInt8(ascii: "<"), utf8[1] == UInt8(ascii: "0"),
              utf8[2] == UInt8(ascii: "x"), utf8[5] == UInt8(ascii: ">") else { return nil }
        return UInt8(String(decoding: utf8[3..<5], as: UTF8.self), radix: 16)
    }

    /// transformers' `clean_up_tokenization` (also the WordPiece decoder's `cleanup`): removes the
    /// space a word-level tokenizer leaves before punctuation and English contractions.
    static func cleanUpTokenization(_ text: String) -> String {
        var output = text
        for (from, to) in [(" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"),
                           (" n't", "n't"), (" 'm", "'m"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re")] {
            output = Normalizer.replaceScalars(output, pattern: from, content: to)
        }
        return output
    }
}
