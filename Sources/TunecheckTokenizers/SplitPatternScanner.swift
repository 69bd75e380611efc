import Foundation

/// Finds the non-overlapping matches of a split pattern in a run of Unicode scalars, as ranges of
/// scalar indices, leftmost first (the `find_iter` semantics `tokenizers` uses).
protocol SplitMatcher: Sendable {
    func matches(in scalars: [Unicode.Scalar]) -> [Range<Int>]
}

/// Hand-written scanners for the three split regexes nearly every byte-level BPE model uses.
///
/// Why not a regex engine: Swift `Regex` matches grapheme clusters unless told otherwise, Foundation's
/// ICU engine works in UTF-16, and both are several times slower than a direct scan. Each scanner
/// below tries the pattern's alternatives in order at the current position, exactly as a
/// backtracking engine would, and the comments give the alternative each branch implements.
struct KnownSplitPattern: SplitMatcher {
    enum Kind: Sendable {
        /// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
        case gpt2
        /// `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
        /// with `maxDigits` 3 (Llama 3) or 1 (Qwen2, `\p{N}`).
        case llama3(maxDigits: Int)
    }

    let kind: Kind

    static let gpt2Pattern =
        #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#
    static let llama3Pattern =
        #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    static let qwen2Pattern =
        #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

    /// The scanner for a regex string, or nil when the string is not one of the known patterns.
    init?(regex: String) {
        switch regex {
        case Self.gpt2Pattern: kind = .gpt2
        case Self.llama3Pattern: kind = .llama3(maxDigits: 3)
        case Self.qwen2Pattern: kind = .llama3(maxDigits: 1)
        default: return nil
        }
    }

    init(kind: Kind) { self.kind = kind }

    func matches(in scalars: [Unicode.Scalar]) -> [Range<Int>] {
        var result: [Range<Int>] = []
        result.reserveCapacity(scalars.count / 3 + 1)
        var position = 0
        while position < scalars.count {
            let length: Int
            switch kind {
            case .gpt2: length = Self.gpt2Match(scalars, at: position)
            case .llama3(let maxDigits): length = Self.llama3Match(scalars, at: position, maxDigits: maxDigits)
            }
            // Every scalar is a letter, number, whitespace or "other", and each has an alternative that
            // matches it, so `length` is at least 1; the `max` only guards against an infinite loop.
            let end = position + max(length, 1)
            result.append(position..<end)
            position = end
        }
        return result
    }

    // MARK: - Helpers over the scalar array

    @inline(__always)
    private static func run(_ s: [Unicode.Scalar], from start: Int, while predicate: (Unicode.Scalar) -> Bool) -> Int {
        var index = start
        while index < s.count && predicate(s[index]) { index += 1 }
        return index - start
    }

    @inline(__always)
    private static func isOther(_ scalar: Unicode.Scalar) -> Bool {
        ScalarClass.of(scalar) & (ScalarClass.letter | ScalarClass.number | ScalarClass.whitespace) == 0
    }

    @inline(__always)
    private static func isNewline(_ scalar: Unicode.Scalar) -> Bool { scalar == "\n" || scalar == "\r" }

    /// Length of `'s|'t|'re|'ve|'m|'ll|'d` at `i` (case-insensitively when asked), or 0.
    private static func contraction(_ s: [Unicode.Scalar], at i: Int, ignoringCase: Bool) -> Int {
        guard s[i] == "'", i + 1 < s.count else { return 0 }
        func folded(_ scalar: Unicode.Scalar) -> Unicode.Scalar {
            guard ignoringCase else { return scalar }
            if scalar == "\u{17F}" { return "s" }  // LATIN SMALL LETTER LONG S case-folds to "s"
            if ("A"..."Z").contains(scalar) { return Unicode.Scalar(scalar.value + 32)! }
            return scalar
        }
        let first = folded(s[i + 1])
        switch first {
        case "s", "t", "m", "d":
            return 2
        case "r", "v", "l":
            guard i + 2 < s.count else { return 0 }
            let second = folded(s[i + 2])
            if (first == "r" || first == "v") && second == "e" { return 3 }
            if first == "l" && second == "l" { return 3 }
            return 0
        default:
            return 0
        }
    }

    /// `\s+(?!\S)|\s+` at a whitespace scalar: the whole run at the end of the text, otherwise the
    /// run minus its last scalar (which then leads the next word), but at least one scalar.
    private static func whitespaceTail(_ s: [Unicode.Scalar], at i: Int) -> Int {
        let length = run(s, from: i, while: ScalarClass.isWhitespace)
        if i + length == s.count { return length }
        return length >= 2 ? length - 1 : length
    }

    // MARK: - GPT-2

    private static func gpt2Match(_ s: [Unicode.Scalar], at i: Int) -> Int {
        let c = s[i]
        let contractionLength = contraction(s, at: i, ignoringCase: false)
        if contractionLength > 0 { return contractionLength }
        let hasSpace = c == " " && i + 1 < s.count
        let head = hasSpace ? s[i + 1] : c
        let start = hasSpace ? i + 1 : i
        let leading = hasSpace ? 1 : 0
        // ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`
        if ScalarClass.isLetter(head) { return leading + run(s, from: start, while: ScalarClass.isLetter) }
        if ScalarClass.isNumber(head) { return leading + run(s, from: start, while: ScalarClass.isNumber) }
        if isOther(head) { return leading + run(s, from: start, while: isOther) }
        // A space followed by whitespace: the optional space did not help, fall through.
        if ScalarClass.isWhitespace(c) { return whitespaceTail(s, at: i) }
        return 1
    }

    // MARK: - Llama 3 / Qwen2

    private static func llama3Match(_ s: [Unicode.Scalar], at i: Int, maxDigits: Int) -> Int {
        let c = s[i]
        // (?i:'s|'t|'re|'ve|'m|'ll|'d)
        let contractionLength = contraction(s, at: i, ignoringCase: true)
        if contractionLength > 0 { return contractionLength }
        let classes = ScalarClass.of(c)
        // [^\r\n\p{L}\p{N}]?\p{L}+
        if classes & ScalarClass.letter != 0 { return run(s, from: i, while: ScalarClass.isLetter) }
        if classes & ScalarClass.number == 0 && !isNewline(c) && i + 1 < s.count && ScalarClass.isLetter(s[i + 1]) {
            return 1 + run(s, from: i + 1, while: ScalarClass.isLetter)
        }
        // \p{N}{1,maxDigits}
        if classes & ScalarClass.number != 0 {
            return min(run(s, from: i, while: ScalarClass.isNumber), maxDigits)
        }
        // ` ?[^\s\p{L}\p{N}]+[\r\n]*`
        let otherStart = (c == " " && i + 1 < s.count && isOther(s[i + 1])) ? i + 1 : i
        if isOther(s[otherStart]) {
            let othersEnd = otherStart + run(s, from: otherStart, while: isOther)
            return othersEnd + run(s, from: othersEnd, while: isNewline) - i
        }
        // Only whitespace is left.
        // \s*[\r\n]+ : the whitespace run up to and including its last newline.
        let whitespaceLength = run(s, from: i, while: ScalarClass.isWhitespace)
        var lastNewline = -1
        for index in i..<(i + whitespaceLength) where isNewline(s[index]) { lastNewline = index }
        if lastNewline >= 0 { return lastNewline + 1 - i }
        // \s+(?!\S)|\s+
        return whitespaceTail(s, at: i)
    }
}

/// Fallback for split patterns that are not recognised: Foundation's ICU regex engine, run over the
/// scalars and mapped back from UTF-16 offsets to scalar indices. ICU's `\s`, `\p{L}` and `\p{N}`
/// agree with Oniguruma's for the patterns seen in practice, but this path is not golden-tested.
struct FoundationRegexMatcher: SplitMatcher, @unchecked Sendable {
    // NSRegularExpression is immutable and documented thread-safe.
    let regex: NSRegularExpression

    init(pattern: String) throws {
        regex = try NSRegularExpression(pattern: pattern, options: [])
    }

    func matches(in scalars: [Unicode.Scalar]) -> [Range<Int>] {
        guard !scalars.isEmpty else { return [] }
        var string = String.UnicodeScalarView()
        string.append(contentsOf: scalars)
        let text = String(string)
        // UTF-16 offset → scalar index, so ICU's ranges can be mapped back.
        var scalarIndexForUTF16 = [Int](repeating: 0, count: text.utf16.count + 1)
        var utf16Offset = 0
        for (index, scalar) in scalars.enumerated() {
            let width = scalar.value > 0xFFFF ? 2 : 1
            for k in 0..<width { scalarIndexForUTF16[utf16Offset + k] = index }
            utf16Offset += width
        }
        scalarIndexForUTF16[utf16Offset] = scalars.count
        let found = regex.matches(in: text, options: [], range: NSRange(location: 0, length: utf16Offset))
        return found.compactMap { match in
            let lower = scalarIndexForUTF16[match.range.location]
            let upper = scalarIndexForUTF16[match.range.location + match.range.length]
            return lower < upper ? lower..<upper : nil
        }
    }
}

/// A literal split pattern (`{"String": ...}`): every non-overlapping occurrence, left to right.
struct LiteralMatcher: SplitMatcher {
    let needle: [Unicode.Scalar]

    func matches(in scalars: [Unicode.Scalar]) -> [Range<Int>] {
        guard !needle.isEmpty, scalars.count >= needle.count else { return [] }
        var result: [Range<Int>] = []
        var index = 0
        while index + needle.count <= scalars.count {
            if scalars[index] == needle[0] && scalars[index..<(index + needle.count)].elementsEqual(needle) {
                result.append(index..<(index + needle.count))
                index += needle.count
            } else {
                index += 1
            }
        }
        return result
    }
}

/// Matches single scalars satisfying a predicate (`Digits`, `Punctuation`, `WhitespaceSplit`).
struct ScalarPredicateMatcher: SplitMatcher {
    let predicate: @Sendable (Unicode.Scalar) -> Bool

    func matches(in scalars: [Unicode.Scalar]) -> [Range<Int>] {
        var result: [Range<Int>] = []
        for (index, scalar) in scalars.enumerated() where predicate(scalar) { result.append(index..<(index + 1)) }
        return result
    }
}

/// The `Whitespace` pre-tokenizer's `\w+|[^\w\s]+`.
struct WordOrSymbolRunMatcher: SplitMatcher {
    func matches(in scalars: [Unicode.Scalar]) -> [Range<Int>] {
        var result: [Range<Int>] = []
        var index = 0
        while index < scalars.count {
            let scalar = scalars[index]
            if ScalarClass.isWhitespace(scalar) { index += 1; continue }
            let isWord = ScalarClass.isWordCharacter(scalar)
            var end = index + 1
            while end < scalars.count {
                let next = scalars[end]
                if ScalarClass.isWhitespace(next) || ScalarClass.isWordCharacter(next) != isWord { break }
                end += 1
            }
            result.append(index..<end)
            index = end
        }
        return result
    }
}
