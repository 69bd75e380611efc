import Foundation

/// One entry of `added_tokens` (or a special token named by `tokenizer_config.json`).
struct AddedToken: Sendable, Equatable {
    let id: Int
    let content: String
    let special: Bool
    let lstrip: Bool
    let rstrip: Bool
    let singleWord: Bool
    /// Whether the token is matched in the normalized text (true) or in the raw input (false).
    let normalized: Bool

    init(id: Int, content: String, special: Bool, lstrip: Bool = false, rstrip: Bool = false,
         singleWord: Bool = false, normalized: Bool) {
        self.id = id
        self.content = content
        self.special = special
        self.lstrip = lstrip
        self.rstrip = rstrip
        self.singleWord = singleWord
        self.normalized = normalized
    }

    init(_ node: JSONNode) throws {
        guard let id = node.value("id")?.int, id >= 0 else {
            throw node.has("id") ? node.invalid("id", "expected a non-negative integer")
                                 : TokenizerError.missingField(path: node.path, field: node.qualified("id"))
        }
        let content = try node.string("content")
        let special = try node.bool("special", default: false)
        self.init(id: id, content: content, special: special,
                  lstrip: try node.bool("lstrip", default: false),
                  rstrip: try node.bool("rstrip", default: false),
                  singleWord: try node.bool("single_word", default: false),
                  normalized: try node.bool("normalized", default: !special))
    }
}

/// A run of the input: either text still to be tokenized, or an added token already recognised.
enum InputSegment {
    case text(ArraySlice<Unicode.Scalar>, startsText: Bool)
    case addedToken(id: Int)
}

/// Finds added tokens in text: leftmost match first and, among matches starting at the same
/// place, the longest (the aho-corasick `LeftmostLongest` matching `tokenizers` uses), then applies
/// each token's `single_word`, `lstrip` and `rstrip` rules.
struct AddedTokenMatcher: Sendable {
    private struct Candidate: Sendable {
        let scalars: [Unicode.Scalar]
        let token: AddedToken
    }

    /// Candidates by first scalar, longest first.
    private let candidatesByFirstScalar: [UInt32: [Candidate]]
    /// Fast rejection for the common case of ASCII text with no token starting at this scalar.
    private let asciiStarts: [Bool]

    var isEmpty: Bool { candidatesByFirstScalar.isEmpty }

    /// - Parameter patterns: each token with the text to look for (its content, normalized when the
    ///   token is matched in normalized text).
    init(_ patterns: [(text: String, token: AddedToken)]) {
        var table = [UInt32: [Candidate]]()
        var asciiStarts = [Bool](repeating: false, count: 128)
        for (text, token) in patterns {
            let scalars = Array(text.unicodeScalars)
            guard let first = scalars.first else { continue }
            table[first.value, default: []].append(Candidate(scalars: scalars, token: token))
            if first.value < 128 { asciiStarts[Int(first.value)] = true }
        }
        for key in table.keys { table[key]?.sort { $0.scalars.count > $1.scalars.count } }
        candidatesByFirstScalar = table
        self.asciiStarts = asciiStarts
    }

    private func longestMatch(in s: ArraySlice<Unicode.Scalar>, at index: Int) -> Candidate? {
        let value = s[index].value
        if value < 128 && !asciiStarts[Int(value)] { return nil }
        guard let candidates = candidatesByFirstScalar[value] else { return nil }
        for candidate in candidates where index + candidate.scalars.count <= s.endIndex {
            if s[index..<(index + candidate.scalars.count)].elementsEqual(candidate.scalars) { return candidate }
        }
        return nil
    }

    /// Splits `s` into text and added-token segments. `startsText` says whether `s` itself begins the
    /// original input.
    func split(_ s: ArraySlice<Unicode.Scalar>, startsText: Bool) -> [InputSegment] {
        if isEmpty { return [.text(s, startsText: startsText)] }
        var segments: [InputSegment] = []
        var segmentStart = s.startIndex
        var index = s.startIndex
        while index < s.endIndex {
            guard let candidate = longestMatch(in: s, at: index) else { index += 1; continue }
            var start = index
            var stop = index + candidate.scalars.count
            let token = candidate.token
            if token.singleWord {
                let startIsBoundary = start == s.startIndex || !ScalarClass.isAlphanumeric(s[start - 1])
                let stopIsBoundary = stop == s.endIndex || !ScalarClass.isAlphanumeric(s[stop])
                // A rejected match still consumes its text: the aho-corasick iterator in
                // `tokenizers` resumes after it, so no shorter overlapping token is tried.
                if !startIsBoundary || !stopIsBoundary { index = stop; continue }
            }
            if token.lstrip {
                // Take the whitespace before the token, but never text already claimed.
                var newStart = start
                while newStart > segmentStart && ScalarClass.isWhitespace(s[newStart - 1]) { newStart -= 1 }
                start = newStart
            }
            if token.rstrip {
                while stop < s.endIndex && ScalarClass.isWhitespace(s[stop]) { stop += 1 }
            }
            if segmentStart < start {
                segments.append(.text(s[segmentStart..<start], startsText: startsText && segmentStart == s.startIndex))
            }
            segments.append(.addedToken(id: token.id))
            segmentStart = stop
            index = stop
        }
        if segmentStart < s.endIndex {
            segments.append(.text(s[segmentStart..<s.endIndex], startsText: startsText && segmentStart == s.startIndex))
        }
        return segments
    }
}
