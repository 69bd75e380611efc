import Foundation

/// Lexing: source text → flat token list, with Jinja's whitespace control already applied to the text tokens.
///
/// Whitespace handling mirrors `jinja2.lexer.Lexer` configured the way transformers configures it
/// (`trim_blocks=True, lstrip_blocks=True`, default `keep_trailing_newline=False`), because a single stray
/// newline changes the tokens a model sees.

enum TokenKind: Equatable, Sendable {
    case text(String)
    case variableBegin, variableEnd, blockBegin, blockEnd
    case name(String)
    case string(String)
    case integer(Int)
    case float(Double)
    case op(String)
    case eof
}

struct Token: Sendable {
    var kind: TokenKind
    var location: SourceLocation
}

struct Lexer {
    private let src: [Unicode.Scalar]
    private var lineStarts: [Int] = [0]
    private var tokens: [Token] = []
    private var pos = 0
    /// Jinja's `line_starting`: did the previous tag's closing match end with a newline? lstrip_blocks also
    /// applies at such a position even when the text before the tag contains no newline of its own.
    private var lineStarting = true

    /// Longest operators first so that `//` wins over `/`, `**` over `*`, etc.
    private static let operators = ["//", "**", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~", "(", ")",
                                    "[", "]", "{", "}", "<", ">", "=", ".", ":", "|", ",", ";"]

    init(source: String) {
        // Jinja treats \r\n, \r and \n alike and, without keep_trailing_newline, drops one trailing newline.
        var scalars: [Unicode.Scalar] = []
        scalars.reserveCapacity(source.unicodeScalars.count)
        var it = Array(source.unicodeScalars)[...]
        while let c = it.popFirst() {
            if c == "\r" {
                if it.first == "\n" { it.removeFirst() }
                scalars.append("\n")
            } else {
                scalars.append(c)
            }
        }
        if scalars.last == "\n" { scalars.removeLast() }
        src = scalars
        for (i, c) in src.enumerated() where c == "\n" { lineStarts.append(i + 1) }
    }

    func location(_ index: Int) -> SourceLocation {
        // Binary search for the line containing `index`.
        var lo = 0, hi = lineStarts.count - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if lineStarts[mid] <= index { lo = mid } else { hi = mid - 1 }
        }
        return SourceLocation(line: lo + 1, column: index - lineStarts[lo] + 1)
    }

    private func at(_ i: Int) -> Unicode.Scalar? { i < src.count ? src[i] : nil }

    private func matches(_ s: String, at i: Int) -> Bool {
        var j = i
        for c in s.unicodeScalars {
            guard j < src.count, src[j] == c else { return false }
            j += 1
        }
        return true
    }

    static func isSpace(_ c: Unicode.Scalar) -> Bool {
        // Python's str.isspace(): Unicode White_Space plus the information separators \x1c-\x1f.
        c.properties.isWhitespace || (c.value >= 0x1C && c.value <= 0x1F)
    }

    private func syntax(_ message: String, _ i: Int) -> ChatTemplateError {
        let loc = location(i)
        return .syntax(message: message, line: loc.line, column: loc.column)
    }

    mutating func tokenize() throws -> [Token] {
        while pos < src.count {
            // Find the next tag opener.
            var i = pos
            var opener: Unicode.Scalar? = nil
            while i + 1 < src.count {
                if src[i] == "{", src[i + 1] == "{" || src[i + 1] == "%" || src[i + 1] == "#" {
                    opener = src[i + 1]
                    break
                }
                i += 1
            }
            guard let kind = opener else {
                emitText(pos, src.count)
                break
            }
            var sign: Unicode.Scalar? = nil
            if let s = at(i + 2), s == "-" || s == "+" { sign = s }
            var textEnd = i
            if sign == "-" {
                while textEnd > pos, Lexer.isSpace(src[textEnd - 1]) { textEnd -= 1 }
            } else if sign != "+", kind != "{" {
                // lstrip_blocks: drop spaces/tabs between the start of the line and a block or comment tag.
                var lineStart = textEnd
                while lineStart > pos, src[lineStart - 1] != "\n" { lineStart -= 1 }
                let hasNewline = lineStart > pos
                if (hasNewline || lineStarting), lineStart < textEnd,
                   src[lineStart..<textEnd].allSatisfy(Lexer.isSpace) {
                    textEnd = lineStart
                }
            }
            emitText(pos, textEnd)
            let tagStart = i + 2 + (sign == nil ? 0 : 1)
            switch kind {
            case "#":
                try lexComment(openAt: i, from: tagStart)
            case "%":
                if try lexRawIfPresent(openAt: i, from: tagStart) { continue }
                tokens.append(Token(kind: .blockBegin, location: location(i)))
                pos = tagStart
                try lexTag(block: true, openAt: i)
            default:
                tokens.append(Token(kind: .variableBegin, location: location(i)))
                pos = tagStart
                try lexTag(block: false, openAt: i)
            }
        }
        tokens.append(Token(kind: .eof, location: location(src.count)))
        return tokens
    }

    private mutating func emitText(_ from: Int, _ to: Int) {
        guard from < to else { return }
        var s = String.UnicodeScalarView()
        s.append(contentsOf: src[from..<to])
        tokens.append(Token(kind: .text(String(s)), location: location(from)))
    }

    /// Consumes what follows a closing `%}`/`#}`: `-` strips all whitespace, `+` nothing, and otherwise
    /// trim_blocks removes exactly one newline.
    private mutating func consumeAfterClose(sign: Unicode.Scalar?, trim: Bool) {
        let before = pos
        if sign == "-" {
            while pos < src.count, Lexer.isSpace(src[pos]) { pos += 1 }
        } else if sign == nil, trim, at(pos) == "\n" {
            pos += 1
        }
        lineStarting = pos > before && src[pos - 1] == "\n"
    }

    private mutating func lexComment(openAt: Int, from: Int) throws {
        var j = from
        while j + 1 < src.count, !(src[j] == "#" && src[j + 1] == "}") { j += 1 }
        guard j + 1 < src.count else { throw syntax("missing end of comment tag", openAt) }
        var sign: Unicode.Scalar? = nil
        if j - 1 >= from, src[j - 1] == "-" || src[j - 1] == "+" { sign = src[j - 1] }
        pos = j + 2
        consumeAfterClose(sign: sign, trim: true)
    }

    /// `{% raw %}…{% endraw %}` passes its body through untouched.
    private mutating func lexRawIfPresent(openAt: Int, from: Int) throws -> Bool {
        var j = from
        while let c = at(j), Lexer.isSpace(c) { j += 1 }
        guard matches("raw", at: j) else { return false }
        j += 3
        if let c = at(j), c.properties.isAlphabetic || c == "_" || c.properties.numericType != nil { return false }
        while let c = at(j), Lexer.isSpace(c) { j += 1 }
        var closeSign: Unicode.Scalar? = nil
        if let c = at(j), c == "-" || c == "+" { closeSign = c; j += 1 }
        guard matches("%}", at: j) else { throw syntax("expected '%}' after 'raw'", j) }
        pos = j + 2
        consumeAfterClose(sign: closeSign, trim: true)
        // Find {%[-+]? endraw [-+]?%}
        var k = pos
        while k + 1 < src.count {
            if src[k] == "{", src[k + 1] == "%" {
                var m = k + 2
                var openSign: Unicode.Scalar? = nil
                if let c = at(m), c == "-" || c == "+" { openSign = c; m += 1 }
                while let c = at(m), Lexer.isSpace(c) { m += 1 }
                if matches("endraw", at: m) {
                    m += 6
                    while let c = at(m), Lexer.isSpace(c) { m += 1 }
                    var endSign: Unicode.Scalar? = nil
                    if let c = at(m), c == "-" || c == "+" { endSign = c; m += 1 }
                    if matches("%}", at: m) {
                        var textEnd = k
                        if openSign == "-" {
                            while textEnd > pos, Lexer.isSpace(src[textEnd - 1]) { textEnd -= 1 }
                        } else if openSign != "+" {
                            var lineStart = textEnd
                            while lineStart > pos, src[lineStart - 1] != "\n" { lineStart -= 1 }
                            if (lineStart > pos || lineStarting), lineStart < textEnd,
                               src[lineStart..<textEnd].allSatisfy(Lexer.isSpace) {
                                textEnd = lineStart
                            }
                        }
                        emitText(pos, textEnd)
                        pos = m + 2
                        consumeAfterClose(sign: endSign, trim: true)
                        return true
                    }
                }
            }
            k += 1
        }
        throw syntax("missing end of raw directive", openAt)
    }

    private mutating func lexTag(block: Bool, openAt: Int) throws {
        var balance: [Unicode.Scalar] = []
        while true {
            guard pos < src.count else {
                throw syntax("unexpected end of template, expected '\(block ? "%}" : "}}")'", openAt)
            }
            if balance.isEmpty {
                // The closing delimiter is only recognised when brackets are balanced, as in Jinja.
                if block {
                    for (text, sign) in [("+%}", "+"), ("-%}", "-"), ("%}", "")] as [(String, String)]
                    where matches(text, at: pos) {
                        tokens.append(Token(kind: .blockEnd, location: location(pos)))
                        pos += text.unicodeScalars.count
                        consumeAfterClose(sign: sign.unicodeScalars.first, trim: true)
                        return
                    }
                } else {
                    if matches("-}}", at: pos) {
                        tokens.append(Token(kind: .variableEnd, location: location(pos)))
                        pos += 3
                        consumeAfterClose(sign: "-", trim: false)
                        return
                    }
                    if matches("}}", at: pos) {
                        tokens.append(Token(kind: .variableEnd, location: location(pos)))
                        pos += 2
                        lineStarting = false
                        return
                    }
                }
            }
            let c = src[pos]
            if Lexer.isSpace(c) { pos += 1; continue }
            let start = pos
            if c.properties.numericType != nil, c.isASCII {
                try lexNumber()
                continue
            }
            if c == "_" || c.properties.isAlphabetic {
                while let d = at(pos), d == "_" || d.properties.isAlphabetic || (d.isASCII && d.properties.numericType != nil) {
                    pos += 1
                }
                var s = String.UnicodeScalarView()
                s.append(contentsOf: src[start..<pos])
                tokens.append(Token(kind: .name(String(s)), location: location(start)))
                continue
            }
            if c == "'" || c == "\"" {
                try lexString(quote: c)
                continue
            }
            guard let op = Lexer.operators.first(where: { matches($0, at: pos) }) else {
                throw syntax("unexpected character '\(Character(c))'", pos)
            }
            switch op {
            case "(", "[", "{":
                balance.append(op.unicodeScalars.first!)
            case ")", "]", "}":
                let expected: Unicode.Scalar = op == ")" ? "(" : op == "]" ? "[" : "{"
                guard balance.last == expected else { throw syntax("unexpected '\(op)'", pos) }
                balance.removeLast()
            default:
                break
            }
            tokens.append(Token(kind: .op(op), location: location(start)))
            pos += op.unicodeScalars.count
        }
    }

    private mutating func lexNumber() throws {
        let start = pos
        func digits() {
            while let d = at(pos), (d.isASCII && d.properties.numericType != nil) || (d == "_" && at(pos + 1).map { $0.isASCII && $0.properties.numericType != nil } == true) {
                pos += 1
            }
        }
        digits()
        var isFloat = false
        // `x.0` is attribute access by index in Jinja; only treat `1.5` as a float when not right after a dot.
        let afterDot: Bool = {
            if case .op(".")? = tokens.last?.kind { return true }
            return false
        }()
        if !afterDot, at(pos) == ".", let d = at(pos + 1), d.isASCII, d.properties.numericType != nil {
            isFloat = true
            pos += 1
            digits()
        }
        if let e = at(pos), e == "e" || e == "E" {
            var k = pos + 1
            if let s = at(k), s == "+" || s == "-" { k += 1 }
            if let d = at(k), d.isASCII, d.properties.numericType != nil {
                isFloat = true
                pos = k
                digits()
            }
        }
        var s = String.UnicodeScalarView()
        s.append(contentsOf: src[start..<pos].filter { $0 != "_" })
        let text = String(s)
        if isFloat {
            guard let v = Double(text) else { throw syntax("invalid number '\(text)'", start) }
            tokens.append(Token(kind: .float(v), location: location(start)))
        } else {
            guard let v = Int(text) else { throw syntax("integer literal '\(text)' is too large", start) }
            tokens.append(Token(kind: .integer(v), location: location(start)))
        }
    }

    /// String literals are decoded like Python's `unicode_escape`, which is what Jinja does.
    private mutating func lexString(quote: Unicode.Scalar) throws {
        let start = pos
        pos += 1
        var out = String.UnicodeScalarView()
        while true {
            guard let c = at(pos) else { throw syntax("unterminated string literal", start) }
            if c == quote { pos += 1; break }
            if c != "\\" { out.append(c); pos += 1; continue }
            guard let e = at(pos + 1) else { throw syntax("unterminated string literal", start) }
            pos += 2
            switch e {
            case "\n": break // line continuation
            case "\\": out.append("\\")
            case "'": out.append("'")
            case "\"": out.append("\"")
            case "a": out.append("\u{07}")
            case "b": out.append("\u{08}")
            case "f": out.append("\u{0C}")
            case "n": out.append("\n")
            case "r": out.append("\r")
            case "t": out.append("\t")
            case "v": out.append("\u{0B}")
            case "0"..."7":
                var value = Int(e.value - 48)
                var count = 1
                while count < 3, let d = at(pos), ("0"..."7").contains(d) {
                    value = value * 8 + Int(d.value - 48); pos += 1; count += 1
                }
                guard let s = Unicode.Scalar(value) else { throw syntax("invalid octal escape", pos) }
                out.append(s)
            case "x", "u", "U":
                let width = e == "x" ? 2 : e == "u" ? 4 : 8
                var value: UInt32 = 0
                for _ in 0..<width {
                    guard let d = at(pos), let h = Int(String(Character(d)), radix: 16) else {
                        throw syntax("truncated \\\(Character(e)) escape in string literal", pos)
                    }
                    value = value * 16 + UInt32(h)
                    pos += 1
                }
                guard let s = Unicode.Scalar(value) else { throw syntax("invalid unicode escape", pos) }
                out.append(s)
            case "N":
                throw ChatTemplateError.unsupported(feature: "\\N{...} string escape", line: location(pos).line, column: location(pos).column)
            default:
                // Python keeps unknown escapes verbatim.
                out.append("\\")
                out.append(e)
            }
        }
        tokens.append(Token(kind: .string(String(out)), location: location(start)))
    }
}
