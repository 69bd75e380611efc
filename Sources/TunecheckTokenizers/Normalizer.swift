import Foundation

/// The `normalizer` stage: rewrites the text between added tokens before pre-tokenization.
///
/// Operations that prepend (`Prepend`) leave an empty string empty, as `tokenizers`' `prepend` does;
/// this is why an empty input to a SentencePiece-style tokenizer produces no `▁` token.
indirect enum Normalizer: Sendable {
    case sequence([Normalizer])
    case prepend(String)
    case replaceLiteral(pattern: String, content: String)
    case replaceRegex(FoundationRegexMatcher, content: String)
    case nfc, nfd, nfkc, nfkd
    case lowercase
    case strip(left: Bool, right: Bool)

    static func parse(_ node: JSONNode) throws -> Normalizer {
        let type = try node.type()
        switch type {
        case "Sequence":
            return .sequence(try node.objects("normalizers").map(parse))
        case "Prepend":
            return .prepend(try node.string("prepend"))
        case "Replace":
            let content = try node.string("content")
            switch try node.pattern("pattern") {
            case .literal(let literal):
                return .replaceLiteral(pattern: literal, content: content)
            case .regex(let regex):
                do {
                    return .replaceRegex(try FoundationRegexMatcher(pattern: regex), content: content)
                } catch {
                    throw TokenizerError.unsupported(path: node.path, component: "normalizer Replace pattern", type: regex)
                }
            }
        case "NFC": return .nfc
        case "NFD": return .nfd
        case "NFKC": return .nfkc
        case "NFKD": return .nfkd
        case "Lowercase": return .lowercase
        case "Strip":
            return .strip(left: try node.bool("strip_left", default: true), right: try node.bool("strip_right", default: true))
        default:
            throw TokenizerError.unsupported(path: node.path, component: "normalizer", type: type)
        }
    }

    func normalize(_ text: String) -> String {
        switch self {
        case .sequence(let steps):
            return steps.reduce(text) { $1.normalize($0) }
        case .prepend(let prefix):
            return text.isEmpty ? text : prefix + text
        case .replaceLiteral(let pattern, let content):
            return Self.replaceScalars(text, pattern: pattern, content: content)
        case .replaceRegex(let matcher, let content):
            let scalars = Array(text.unicodeScalars)
            var result = String.UnicodeScalarView()
            var previous = 0
            for range in matcher.matches(in: scalars) {
                result.append(contentsOf: scalars[previous..<range.lowerBound])
                result.append(contentsOf: content.unicodeScalars)
                previous = range.upperBound
            }
            result.append(contentsOf: scalars[previous...])
            return String(result)
        case .nfc: return text.precomposedStringWithCanonicalMapping
        case .nfd: return text.decomposedStringWithCanonicalMapping
        case .nfkc: return text.precomposedStringWithCompatibilityMapping
        case .nfkd: return text.decomposedStringWithCompatibilityMapping
        case .lowercase:
            // Per scalar, like Rust's `char::to_lowercase`: no context-dependent final sigma.
            var result = String.UnicodeScalarView()
            for scalar in text.unicodeScalars { result.append(contentsOf: scalar.properties.lowercaseMapping.unicodeScalars) }
            return String(result)
        case .strip(let left, let right):
            let scalars = Array(text.unicodeScalars)
            var start = 0
            var end = scalars.count
            if left { while start < end && ScalarClass.isWhitespace(scalars[start]) { start += 1 } }
            if right { while end > start && ScalarClass.isWhitespace(scalars[end - 1]) { end -= 1 } }
            var result = String.UnicodeScalarView()
            result.append(contentsOf: scalars[start..<end])
            return String(result)
        }
    }

    /// Literal replacement over scalars (not `Character`s, so a pattern " " still matches the space
    /// in " \u{301}", which Swift's grapheme-based `replacingOccurrences` would not).
    static func replaceScalars(_ text: String, pattern: String, content: String) -> String {
        let needle = Array(pattern.unicodeScalars)
        let scalars = Array(text.unicodeScalars)
        let ranges = LiteralMatcher(needle: needle).matches(in: scalars)
        if ranges.isEmpty { return text }
        var result = String.UnicodeScalarView()
        var previous = 0
        for range in ranges {
            result.append(contentsOf: scalars[previous..<range.lowerBound])
            result.append(contentsOf: content.unicodeScalars)
            previous = range.upperBound
        }
        result.append(contentsOf: scalars[previous...])
        return String(result)
    }
}
