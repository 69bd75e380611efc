/// Unicode classes the split patterns and pre-tokenizers need, per Unicode scalar (never per
/// `Character`: `tokenizers` matches scalars, so "e\u{301}" is a letter followed by a mark).
///
/// `\p{L}` is general category L*, `\p{N}` is N* (Nd, Nl, No), and `\s` is the White_Space property,
/// which is what Oniguruma (used by `tokenizers` for split regexes) and Rust's `char::is_whitespace`
/// use. Classifying a scalar through `Unicode.Scalar.Properties` costs a table walk, so the Basic
/// Multilingual Plane is classified once into a 64 KiB table.
enum ScalarClass {
    static let letter: UInt8 = 1
    static let number: UInt8 = 2
    static let whitespace: UInt8 = 4
    static let mark: UInt8 = 8
    static let punctuation: UInt8 = 16
    static let connectorPunctuation: UInt8 = 32
    static let alphabetic: UInt8 = 64

    private static let basicPlane: [UInt8] = (0..<0x10000).map { value in
        guard let scalar = Unicode.Scalar(UInt32(value)) else { return 0 }  // surrogates
        return compute(scalar)
    }

    private static func compute(_ scalar: Unicode.Scalar) -> UInt8 {
        let properties = scalar.properties
        var bits: UInt8 = 0
        switch properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
            bits |= letter
        case .decimalNumber, .letterNumber, .otherNumber:
            bits |= number
        case .nonspacingMark, .spacingMark, .enclosingMark:
            bits |= mark
        case .connectorPunctuation:
            bits |= punctuation | connectorPunctuation
        case .dashPunctuation, .openPunctuation, .closePunctuation, .initialPunctuation,
             .finalPunctuation, .otherPunctuation:
            bits |= punctuation
        default:
            break
        }
        if properties.isWhitespace { bits |= whitespace }
        if properties.isAlphabetic { bits |= alphabetic }
        return bits
    }

    @inline(__always)
    static func of(_ scalar: Unicode.Scalar) -> UInt8 {
        let value = scalar.value
        return value < 0x10000 ? basicPlane[Int(value)] : compute(scalar)
    }

    @inline(__always) static func isLetter(_ s: Unicode.Scalar) -> Bool { of(s) & letter != 0 }
    @inline(__always) static func isNumber(_ s: Unicode.Scalar) -> Bool { of(s) & number != 0 }
    @inline(__always) static func isWhitespace(_ s: Unicode.Scalar) -> Bool { of(s) & whitespace != 0 }

    /// Rust's `char::is_alphanumeric` (Alphabetic or Numeric), used by added tokens' `single_word`.
    @inline(__always) static func isAlphanumeric(_ s: Unicode.Scalar) -> Bool {
        of(s) & (alphabetic | number) != 0
    }

    /// `tokenizers`' `is_punctuation`: ASCII punctuation or a Unicode P* category.
    static func isPunctuation(_ s: Unicode.Scalar) -> Bool {
        if s.isASCII {
            let v = s.value
            return (0x21...0x2F).contains(v) || (0x3A...0x40).contains(v)
                || (0x5B...0x60).contains(v) || (0x7B...0x7E).contains(v)
        }
        return of(s) & punctuation != 0
    }

    /// Oniguruma's `\w`: letters, marks, decimal numbers and connector punctuation.
    static func isWordCharacter(_ s: Unicode.Scalar) -> Bool {
        let bits = of(s)
        if bits & (letter | mark | connectorPunctuation | alphabetic) != 0 { return true }
        return s.properties.generalCategory == .decimalNumber
    }
}
