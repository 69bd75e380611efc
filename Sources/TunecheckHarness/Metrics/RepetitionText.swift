import CZlib
import Foundation

// The low-level passes of the repetition analysis: character classification, word tokens, run scanning,
// n-gram statistics and zlib. Everything here is linear in the answer's length times a small constant
// (unit length caps `RepetitionScan.maxUnitTokens`, `.maxUnitCharacters`, `.maxUnitSentences`).

/// One word token (see `RepetitionThresholds` for the splitting rules); offsets are `Character` offsets.
struct RepetitionToken {
    var id: Int
    var start: Int
    var end: Int
    /// Contains a letter (counts as a word of a unit).
    var hasLetter: Bool
    /// Contains a letter or digit (counts as a word of a sentence key).
    var isWordLike: Bool
    /// Sentence-final punctuation: `. ! ? … 。 ！ ？`.
    var isTerminal: Bool
    /// A newline lies between this token and the previous one.
    var newlineBefore: Bool
}

/// Per-character classes for the character-level loop detector.
enum RepetitionCharClass: UInt8 {
    case whitespace, letter, digit, layout, other
}

struct RepetitionScan {
    static let maxUnitTokens = 32       // word-level units: up to 32 tokens (in practice ≤ 12–16 words)
    static let maxUnitCharacters = 16   // character-level units: up to 16 characters
    static let maxUnitSentences = 4     // sentence-level units: up to 4 sentences
    static let keepRunsPerKind = 8

    let bytes: [UInt8]
    /// UTF-8 offset of each character, plus the end.
    var utf8Offsets: [Int] = []
    var charIds: [Int] = []
    var charClass: [RepetitionCharClass] = []
    var isNewline: [Bool] = []
    /// Prefix counts of whitespace characters (`wsPrefix[i]` = whitespace among the first i characters).
    var wsPrefix: [Int] = [0]
    var tokens: [RepetitionToken] = []
    var tokenTexts: [String] = []   // lowercased text per token id

    var characterCount: Int { charIds.count }

    init(_ text: String) {
        bytes = Array(text.utf8)
        let n = bytes.count
        var multiScalarIds: [String: Int] = [:]
        var utf8Offsets: [Int] = [], charIds: [Int] = [], charClass: [RepetitionCharClass] = [], isNewline: [Bool] = []
        var wsPrefix: [Int] = [0]
        utf8Offsets.reserveCapacity(n + 1)
        charIds.reserveCapacity(n)
        charClass.reserveCapacity(n)
        isNewline.reserveCapacity(n)
        wsPrefix.reserveCapacity(n + 1)
        let bytes = self.bytes
        var cjk: [Bool] = []
        var wordChar: [Bool] = []
        cjk.reserveCapacity(n)
        wordChar.reserveCapacity(n)
        var whitespace = 0
        let asciiClass = Self.asciiClass
        var offset = 0
        // Walk the UTF-8 bytes. An ASCII byte followed by another ASCII byte (other than CR LF) or by the end is a
        // Character of its own (every grapheme-extending or prepending scalar is non-ASCII); anything else goes
        // through the standard library's grapheme breaking, one Character at a time, from a known boundary.
        while offset < n {
            let b = bytes[offset]
            var v: UInt32
            var length = 1
            var id: Int
            var cls: RepetitionCharClass
            var isCJK = false
            if b < 0x80 && (offset + 1 == n || (bytes[offset + 1] < 0x80 && !(b == 0x0D && bytes[offset + 1] == 0x0A))) {
                v = UInt32(b)
                id = Int(b)
                cls = asciiClass[Int(b)]
            } else {
                let index = text.utf8.index(text.utf8.startIndex, offsetBy: offset)
                let ch = text[index]
                length = ch.utf8.count
                var it = ch.unicodeScalars.makeIterator()
                let first = it.next()!
                v = first.value
                if it.next() == nil {
                    id = Int(v)
                } else {
                    let key = String(ch)
                    if let known = multiScalarIds[key] { id = known } else {
                        id = 0x110000 + multiScalarIds.count
                        multiScalarIds[key] = id
                    }
                }
                if v < 0x80 {
                    cls = asciiClass[Int(v)]   // e.g. "\r\n", or a letter with combining marks
                } else if first.properties.isWhitespace {
                    cls = .whitespace
                } else if first.properties.isIdeographic || (0x3040...0x30FF).contains(v) || (0x31F0...0x31FF).contains(v) || (0xFF66...0xFF9F).contains(v) {
                    cls = .letter
                    isCJK = true
                } else if first.properties.isAlphabetic {
                    cls = .letter
                } else if first.properties.numericType != nil {
                    cls = .digit
                } else if Self.isLayout(v) {
                    cls = .layout
                } else {
                    cls = .other
                }
            }
            utf8Offsets.append(offset)
            offset += length
            charIds.append(id)
            charClass.append(cls)
            cjk.append(isCJK)
            wordChar.append(!isCJK && (cls == .letter || cls == .digit || v == 0x5F))
            isNewline.append(cls == .whitespace && (v == 0x0A || v == 0x0D || v == 0x0B || v == 0x0C || v == 0x85 || v == 0x2028 || v == 0x2029))
            if cls == .whitespace { whitespace += 1 }
            wsPrefix.append(whitespace)
        }
        utf8Offsets.append(offset)
        self.utf8Offsets = utf8Offsets
        self.charIds = charIds
        self.charClass = charClass
        self.isNewline = isNewline
        self.wsPrefix = wsPrefix
        tokenize(cjk: cjk, wordChar: wordChar)
    }

    static let asciiClass: [RepetitionCharClass] = (0..<128).map { v -> RepetitionCharClass in
        let s = Unicode.Scalar(UInt8(v))
        if s.properties.isWhitespace { return .whitespace }
        if s.properties.isAlphabetic { return .letter }
        if s.properties.numericType != nil { return .digit }
        return isLayout(UInt32(v)) ? .layout : .other
    }

    /// Characters used for layout and data rather than speech: rules, tables, leaders, brackets.
    static func isLayout(_ v: UInt32) -> Bool {
        switch v {
        case 0x2D, 0x3D, 0x5F, 0x2A, 0x7E, 0x23, 0x2B, 0x2E, 0xB7, 0x7C, 0x3A, 0x2F, 0x5C, 0x3C, 0x3E, 0x5E,
             0x27, 0x22, 0x60, 0x28, 0x29, 0x5B, 0x5D, 0x7B, 0x7D, 0x2026, 0x2013, 0x2014, 0x2015, 0x2022, 0x30FB:
            return true
        case 0x2500...0x259F: return true   // box drawing, block elements
        default: return false
        }
    }

    func text(_ chars: Range<Int>) -> String {
        let lo = utf8Offsets[chars.lowerBound], hi = utf8Offsets[chars.upperBound]
        return String(decoding: bytes[lo..<hi], as: UTF8.self)
    }

    /// The lowercased text of a character range (ASCII without allocating an intermediate string).
    func lowercasedText(_ chars: Range<Int>) -> String {
        let lo = utf8Offsets[chars.lowerBound], hi = utf8Offsets[chars.upperBound]
        var ascii = true
        for k in lo..<hi where bytes[k] >= 0x80 { ascii = false; break }
        guard ascii else { return String(decoding: bytes[lo..<hi], as: UTF8.self).lowercased() }
        return String(unsafeUninitializedCapacity: hi - lo) { buffer in
            for k in lo..<hi {
                let b = bytes[k]
                buffer[k - lo] = (b >= 0x41 && b <= 0x5A) ? b + 0x20 : b
            }
            return hi - lo
        }
    }

    private mutating func tokenize(cjk: [Bool], wordChar: [Bool]) {
        var ids: [String: Int] = [:]
        let n = charIds.count
        var i = 0
        var sawNewline = false
        func intern(_ s: String) -> Int {
            if let id = ids[s] { return id }
            let id = ids.count
            ids[s] = id
            tokenTexts.append(s)
            return id
        }
        while i < n {
            let cls = charClass[i]
            if cls == .whitespace {
                if isNewline[i] { sawNewline = true }
                i += 1
                continue
            }
            let start = i
            var hasLetter = false
            var wordLike = false
            if wordChar[i] {
                var j = i
                while j < n {
                    if wordChar[j] {
                        if charClass[j] == .letter { hasLetter = true }
                        if charClass[j] != .layout { wordLike = true }
                        j += 1
                        continue
                    }
                    // Inner apostrophe between letters (don't, l'homme); '.' or ',' between digits (3.14, 10,000).
                    if j + 1 < n, wordChar[j + 1], j > start {
                        let c = charIds[j]
                        if (c == 0x27 || c == 0x2019) && charClass[j - 1] == .letter && charClass[j + 1] == .letter { j += 1; continue }
                        if (c == 0x2E || c == 0x2C) && charClass[j - 1] == .digit && charClass[j + 1] == .digit { j += 1; continue }
                    }
                    break
                }
                i = j
            } else {
                hasLetter = cjk[i]
                wordLike = cjk[i]
                i += 1
            }
            let s = lowercasedText(start..<i)
            let c0 = charIds[start]
            // Sentence ends: CJK 。！？ always; . ! ? … only before whitespace, the end or more punctuation (not in
            // example.com, 3.x, file.py).
            var terminal = false
            if i - start == 1 {
                switch c0 {
                case 0x3002, 0xFF01, 0xFF1F: terminal = true
                case 0x2E, 0x21, 0x3F, 0x2026: terminal = i == n || charClass[i] == .whitespace || charClass[i] == .other || charClass[i] == .layout
                default: break
                }
            }
            tokens.append(RepetitionToken(id: intern(s), start: start, end: i, hasLetter: hasLetter, isWordLike: wordLike,
                                          isTerminal: terminal, newlineBefore: sawNewline))
            sawNewline = false
        }
    }

    // MARK: n-gram statistics

    /// seq-rep-n and distinct-n for n = 1...4 over `ids`, and the most repeated n-gram (n = 2...4, occurring at
    /// least twice, covering the most positions `count × n`, larger n on ties). With no n-grams of some length:
    /// seq-rep 0, distinct 1 (nothing repeated). n-grams are interned incrementally: the id of the n-gram at i is
    /// the id of the pair (id of the (n−1)-gram at i, ids[i + n − 1]), so every step hashes one Int.
    static func ngramStats(_ ids: [Int]) -> (seqRep: [Double], distinct: [Double], top: (start: Int, n: Int, count: Int)?) {
        var seqRep: [Double] = []
        var distinct: [Double] = []
        var top: (start: Int, n: Int, count: Int)?
        // Dense unigram ids first.
        var unigram: [Int: Int] = [:]
        let dense = ids.map { id -> Int in
            if let u = unigram[id] { return u }
            let u = unigram.count
            unigram[id] = u
            return u
        }
        let radix = unigram.count + 1
        var current = dense
        var vocabulary = unigram.count
        for n in 1...4 {
            let total = ids.count - n + 1
            guard total > 0 else { seqRep.append(0); distinct.append(1); continue }
            if n > 1 {
                // Extend the (n−1)-gram ids by one element.
                var table: [Int: Int] = [:]
                table.reserveCapacity(total)
                var next = [Int](repeating: 0, count: total)
                for i in 0..<total {
                    let key = current[i] &* radix &+ dense[i + n - 1]
                    if let v = table[key] { next[i] = v } else { let v = table.count; table[key] = v; next[i] = v }
                }
                current = next
                vocabulary = table.count
            }
            var count = [Int](repeating: 0, count: vocabulary)
            var first = [Int](repeating: -1, count: vocabulary)
            for i in 0..<total {
                let g = current[i]
                count[g] += 1
                if first[g] < 0 { first[g] = i }
            }
            distinct.append(Double(vocabulary) / Double(total))
            seqRep.append(1 - Double(vocabulary) / Double(total))
            guard n >= 2 else { continue }
            for g in 0..<vocabulary where count[g] > 1 {
                let cover = count[g] * n
                if let t = top {
                    let tCover = t.count * t.n
                    guard cover > tCover || (cover == tCover && (n > t.n || (n == t.n && first[g] < t.start))) else { continue }
                }
                top = (first[g], n, count[g])
            }
        }
        return (seqRep, distinct, top)
    }

    /// zlib ratio of uncompressed to compressed bytes (level 6, zlib's default: a third of level 9's time on long
    /// answers, ratios within a few percent); 0 for empty input.
    static func compressionRatio(_ bytes: [UInt8]) -> Double {
        guard !bytes.isEmpty else { return 0 }
        var destLen = compressBound(uLong(bytes.count))
        var dest = [UInt8](repeating: 0, count: Int(destLen))
        let status = bytes.withUnsafeBufferPointer { src in
            dest.withUnsafeMutableBufferPointer { dst in
                compress2(dst.baseAddress, &destLen, src.baseAddress, uLong(src.count), 6)
            }
        }
        guard status == Z_OK, destLen > 0 else { return 1 }
        return Double(bytes.count) / Double(destLen)
    }

    // MARK: runs

    /// Maximal runs of `seq[i] == seq[i - p]` for p in 1...maxPeriod: calls `found(p, start, length)` once per
    /// maximal run of at least `minLength(p)` elements, for primitive units only (a unit that is itself periodic
    /// is reported at its own period). O(n · maxPeriod).
    static func periodicRuns(_ seq: [Int], maxPeriod: Int, minLength: (Int) -> Int,
                             _ found: (_ period: Int, _ start: Int, _ length: Int) -> Void) {
        let n = seq.count
        guard n >= 2 else { return }
        seq.withUnsafeBufferPointer { buf in
            let b = buf.baseAddress!
            for p in 1...min(maxPeriod, n / 2) {
                let need = minLength(p)
                var i = p
                while i < n {
                    if b[i] != b[i - p] { i += 1; continue }
                    var j = i + 1
                    while j < n && b[j] == b[j - p] { j += 1 }
                    let start = i - p
                    if j - start >= need && isPrimitive(seq, start, p) { found(p, start, j - start) }
                    i = j
                }
            }
        }
    }

    static func isPrimitive(_ seq: [Int], _ start: Int, _ p: Int) -> Bool {
        guard p > 1 else { return true }
        for q in 1..<p where p % q == 0 {
            var periodic = true
            for k in start..<(start + p - q) where seq[k] != seq[k + q] { periodic = false; break }
            if periodic { return false }
        }
        return true
    }
}
