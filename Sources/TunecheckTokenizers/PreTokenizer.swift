import Foundation

/// One pre-token: a run of scalars the model tokenizes on its own.
struct PreTokenizedPiece {
    var scalars: [Unicode.Scalar]
    /// Whether the piece begins at offset 0 of the original input. `Metaspace` with
    /// `prepend_scheme: "first"` prepends `▁` only to such a piece, so text following a special
    /// token (or a leading split that was removed) gets no prefix.
    var startsText: Bool
}

/// What `Split` does with the pieces matched by its pattern (`SplitDelimiterBehavior` in `tokenizers`).
enum SplitBehavior: String, Sendable {
    case removed = "Removed"
    case isolated = "Isolated"
    case mergedWithPrevious = "MergedWithPrevious"
    case mergedWithNext = "MergedWithNext"
    case contiguous = "Contiguous"
}

/// `Metaspace`'s `prepend_scheme`.
enum PrependScheme: String, Sendable {
    case always, first, never
}

/// The `pre_tokenizer` stage: splits normalized text into pieces and rewrites them (byte-level
/// mapping, `▁` for spaces).
indirect enum PreTokenizer: Sendable {
    case sequence([PreTokenizer])
    case byteLevel(addPrefixSpace: Bool, splitter: SplitMatcher?)
    case split(SplitMatcher, behavior: SplitBehavior, invert: Bool)
    case metaspace(replacement: Unicode.Scalar, prependScheme: PrependScheme, split: Bool)

    static func parse(_ node: JSONNode) throws -> PreTokenizer {
        let type = try node.type()
        switch type {
        case "Sequence":
            return .sequence(try node.objects("pretokenizers").map(parse))
        case "ByteLevel":
            let useRegex = try node.bool("use_regex", default: true)
            return .byteLevel(
                addPrefixSpace: try node.bool("add_prefix_space", default: true),
                splitter: useRegex ? KnownSplitPattern(kind: .gpt2) : nil)
        case "Split":
            let matcher: SplitMatcher
            switch try node.pattern("pattern") {
            case .literal(let literal):
                matcher = LiteralMatcher(needle: Array(literal.unicodeScalars))
            case .regex(let regex):
                if let known = KnownSplitPattern(regex: regex) {
                    matcher = known
                } else {
                    do {
                        matcher = try FoundationRegexMatcher(pattern: regex)
                    } catch {
                        throw TokenizerError.unsupported(path: node.path, component: "pre-tokenizer pattern", type: regex)
                    }
                }
            }
            return .split(matcher, behavior: try behavior(node), invert: try node.bool("invert", default: false))
        case "Metaspace":
            let replacementString = try node.optionalString("replacement") ?? "\u{2581}"
            let replacementScalars = Array(replacementString.unicodeScalars)
            guard replacementScalars.count == 1 else {
                throw node.invalid("replacement", "must be a single character")
            }
            let scheme: PrependScheme
            if let raw = try node.optionalString("prepend_scheme") {
                guard let parsed = PrependScheme(rawValue: raw) else {
                    throw node.invalid("prepend_scheme", "expected always, first or never, got '\(raw)'")
                }
                scheme = parsed
            } else {
                // Files written before `prepend_scheme` existed use `add_prefix_space`.
                scheme = try node.bool("add_prefix_space", default: true) ? .always : .never
            }
            return .metaspace(replacement: replacementScalars[0], prependScheme: scheme, split: try node.bool("split", default: true))
        case "Digits":
            let individual = try node.bool("individual_digits", default: false)
            return .split(ScalarPredicateMatcher { ScalarClass.isNumber($0) },
                          behavior: individual ? .isolated : .contiguous, invert: false)
        case "Punctuation":
            return .split(ScalarPredicateMatcher { ScalarClass.isPunctuation($0) },
                          behavior: try node.has("behavior") ? behavior(node) : .isolated, invert: false)
        case "WhitespaceSplit":
            return .split(ScalarPredicateMatcher { ScalarClass.isWhitespace($0) }, behavior: .removed, invert: false)
        case "Whitespace":
            // `\w+|[^\w\s]+` with the matches kept and everything between them dropped.
            return .split(WordOrSymbolRunMatcher(), behavior: .removed, invert: true)
        default:
            throw TokenizerError.unsupported(path: node.path, component: "pre-tokenizer", type: type)
        }
    }

    private static func behavior(_ node: JSONNode) throws -> SplitBehavior {
        let raw = try node.string("behavior")
        guard let behavior = SplitBehavior(rawValue: raw) else {
            throw TokenizerError.unsupported(path: node.path, component: "split behavior", type: raw)
        }
        return behavior
    }

    func preTokenize(_ pieces: [PreTokenizedPiece]) -> [PreTokenizedPiece] {
        switch self {
        case .sequence(let steps):
            return steps.reduce(pieces) { $1.preTokenize($0) }

        case .byteLevel(let addPrefixSpace, let splitter):
            var output: [PreTokenizedPiece] = []
            output.reserveCapacity(pieces.count * 2)
            let table = ByteLevelTables.scalarForByte
            for var piece in pieces {
                if addPrefixSpace, let first = piece.scalars.first, first != " " {
                    piece.scalars.insert(" ", at: 0)
                }
                let parts = splitter.map { Self.split(piece, matches: $0.matches(in: piece.scalars), behavior: .isolated, invert: false) } ?? [piece]
                for part in parts {
                    var mapped: [Unicode.Scalar] = []
                    mapped.reserveCapacity(part.scalars.count)
                    for scalar in part.scalars {
                        UTF8.encode(scalar) { byte in mapped.append(table[Int(byte)]) }
                    }
                    output.append(PreTokenizedPiece(scalars: mapped, startsText: part.startsText))
                }
            }
            return output

        case .split(let matcher, let behavior, let invert):
            return pieces.flatMap { Self.split($0, matches: matcher.matches(in: $0.scalars), behavior: behavior, invert: invert) }

        case .metaspace(let replacement, let prependScheme, let split):
            var output: [PreTokenizedPiece] = []
            for var piece in pieces {
                for index in piece.scalars.indices where piece.scalars[index] == " " {
                    piece.scalars[index] = replacement
                }
                let prepend: Bool
                switch prependScheme {
                case .always: prepend = true
                case .first: prepend = piece.startsText
                case .never: prepend = false
                }
                if prepend, let first = piece.scalars.first, first != replacement {
                    piece.scalars.insert(replacement, at: 0)
                }
                if split {
                    let matches = piece.scalars.indices.filter { piece.scalars[$0] == replacement }.map { $0..<($0 + 1) }
                    output += Self.split(piece, matches: matches, behavior: .mergedWithNext, invert: false)
                } else {
                    output.append(piece)
                }
            }
            return output
        }
    }

    /// Cuts a piece at the given match ranges, then applies the delimiter behaviour the way
    /// `NormalizedString::split` does. Empty pieces are dropped.
    static func split(_ piece: PreTokenizedPiece, matches: [Range<Int>], behavior: SplitBehavior, invert: Bool) -> [PreTokenizedPiece] {
        let count = piece.scalars.count
        // Cover the whole piece with alternating (range, isMatch) spans.
        var spans: [(range: Range<Int>, isMatch: Bool)] = []
        spans.reserveCapacity(matches.count * 2 + 1)
        var previous = 0
        for match in matches {
            if previous < match.lowerBound { spans.append((previous..<match.lowerBound, invert)) }
            spans.append((match, !invert))
            previous = match.upperBound
        }
        if previous < count { spans.append((previous..<count, invert)) }

        var kept: [Range<Int>] = []
        switch behavior {
        case .removed:
            kept = spans.filter { !$0.isMatch }.map(\.range)
        case .isolated:
            kept = spans.map(\.range)
        case .mergedWithPrevious:
            var previousWasMatch = false
            for span in spans {
                if span.isMatch && !previousWasMatch, let last = kept.last {
                    kept[kept.count - 1] = last.lowerBound..<span.range.upperBound
                } else {
                    kept.append(span.range)
                }
                previousWasMatch = span.isMatch
            }
        case .mergedWithNext:
            var previousWasMatch = false
            var reversed: [Range<Int>] = []
            for span in spans.reversed() {
                if span.isMatch && !previousWasMatch, let last = reversed.last {
                    reversed[reversed.count - 1] = span.range.lowerBound..<last.upperBound
                } else {
                    reversed.append(span.range)
                }
                previousWasMatch = span.isMatch
            }
            kept = reversed.reversed()
        case .contiguous:
            var previousWasMatch = false
            for (index, span) in spans.enumerated() {
                if index > 0 && span.isMatch == previousWasMatch, let last = kept.last {
                    kept[kept.count - 1] = last.lowerBound..<span.range.upperBound
                } else {
                    kept.append(span.range)
                }
                previousWasMatch = span.isMatch
            }
        }
        return kept.compactMap { range in
            guard !range.isEmpty else { return nil }
            return PreTokenizedPiece(scalars: Array(piece.scalars[range]), startsText: piece.startsText && range.lowerBound == 0)
        }
    }
}
