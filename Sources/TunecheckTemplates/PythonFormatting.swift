import Foundation

/// How Python would print values: `str()` for `{{ }}` output and `|string`, `repr()` inside containers, and
/// `json.dumps` for transformers' `tojson`. Prompts embed these strings, so they must match exactly.
enum PythonFormatting {
    static func str(_ v: TemplateValue) -> String {
        switch v {
        case .undefined: return ""
        case let .string(s): return s
        default: return repr(v)
        }
    }

    static func repr(_ v: TemplateValue) -> String {
        switch v {
        case .undefined: return ""
        case .none: return "None"
        case let .bool(b): return b ? "True" : "False"
        case let .int(i): return String(i)
        case let .double(d): return floatRepr(d)
        case let .string(s): return stringRepr(s)
        case let .array(a): return "[" + a.map(repr).joined(separator: ", ") + "]"
        case let .dictionary(d):
            return "{" + d.pairs.map { stringRepr($0.key) + ": " + repr($0.value) }.joined(separator: ", ") + "}"
        case let .namespace(ns):
            return "<Namespace " + repr(.dictionary(ns.attributes)) + ">"
        case let .callable(c): return "<function \(c.name)>"
        }
    }

    /// Python's float repr: shortest round-trip digits, exponent form outside 1e-4 ≤ |x| < 1e16.
    static func floatRepr(_ d: Double) -> String {
        if d.isNaN { return "nan" }
        if d.isInfinite { return d < 0 ? "-inf" : "inf" }
        if d == 0 { return d.sign == .minus ? "-0.0" : "0.0" }
        // Swift's description is also shortest round-trip; normalise its layout to Python's.
        let desc = "\(d)"
        var mantissa = desc
        var exponent = 0
        if let e = desc.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            mantissa = String(desc[..<e])
            exponent = Int(desc[desc.index(after: e)...]) ?? 0
        }
        let negative = mantissa.hasPrefix("-")
        if negative { mantissa.removeFirst() }
        var intPart = mantissa
        var fracPart = ""
        if let dot = mantissa.firstIndex(of: ".") {
            intPart = String(mantissa[..<dot])
            fracPart = String(mantissa[mantissa.index(after: dot)...])
        }
        var digits = intPart + fracPart
        var pointPos = intPart.count + exponent // position of decimal point within digits
        while digits.hasPrefix("0"), digits.count > 1 { digits.removeFirst(); pointPos -= 1 }
        while digits.hasSuffix("0"), digits.count > 1 { digits.removeLast() }
        let decimalExponent = pointPos - 1
        var out: String
        if decimalExponent < -4 || decimalExponent >= 16 {
            out = String(digits.first!)
            if digits.count > 1 { out += "." + digits.dropFirst() }
            out += "e" + (decimalExponent < 0 ? "-" : "+") + (abs(decimalExponent) < 10 ? "0" : "") + String(abs(decimalExponent))
        } else if pointPos <= 0 {
            out = "0." + String(repeating: "0", count: -pointPos) + digits
        } else if pointPos >= digits.count {
            out = digits + String(repeating: "0", count: pointPos - digits.count) + ".0"
        } else {
            let idx = digits.index(digits.startIndex, offsetBy: pointPos)
            out = digits[..<idx] + "." + digits[idx...]
        }
        return negative ? "-" + out : out
    }

    static func stringRepr(_ s: String) -> String {
        let useDouble = s.contains("'") && !s.contains("\"")
        let quote: Unicode.Scalar = useDouble ? "\"" : "'"
        var out = String.UnicodeScalarView()
        out.append(quote)
        for c in s.unicodeScalars {
            switch c {
            case "\\": out.append(contentsOf: "\\\\".unicodeScalars)
            case "\n": out.append(contentsOf: "\\n".unicodeScalars)
            case "\r": out.append(contentsOf: "\\r".unicodeScalars)
            case "\t": out.append(contentsOf: "\\t".unicodeScalars)
            case quote: out.append("\\"); out.append(c)
            default:
                if c.value < 0x20 || (c.value >= 0x7F && c.value < 0xA0) {
                    out.append(contentsOf: String(format: "\\x%02x", c.value).unicodeScalars)
                } else {
                    out.append(c)
                }
            }
        }
        out.append(quote)
        return String(out)
    }

    struct JSONOptions {
        var ensureASCII = false
        var indent: String? = nil
        var itemSeparator: String? = nil
        var keySeparator: String? = nil
        var sortKeys = false
    }

    /// `json.dumps(x, ensure_ascii=False, indent=..., separators=..., sort_keys=...)`.
    static func json(_ v: TemplateValue, _ options: JSONOptions) throws -> String {
        var out = ""
        let itemSep = options.itemSeparator ?? (options.indent == nil ? ", " : ",")
        let keySep = options.keySeparator ?? ": "
        func write(_ v: TemplateValue, _ level: Int) throws {
            switch v {
            case .none: out += "null"
            case let .bool(b): out += b ? "true" : "false"
            case let .int(i): out += String(i)
            case let .double(d):
                out += d.isNaN ? "NaN" : d.isInfinite ? (d < 0 ? "-Infinity" : "Infinity") : floatRepr(d)
            case let .string(s): out += jsonString(s, ascii: options.ensureASCII)
            case let .array(a):
                if a.isEmpty { out += "[]"; return }
                out += "["
                for (i, item) in a.enumerated() {
                    if i > 0 { out += itemSep }
                    if let ind = options.indent { out += "\n" + String(repeating: ind, count: level + 1) }
                    try write(item, level + 1)
                }
                if let ind = options.indent { out += "\n" + String(repeating: ind, count: level) }
                out += "]"
            case let .dictionary(d):
                if d.isEmpty { out += "{}"; return }
                out += "{"
                var pairs = d.pairs
                if options.sortKeys {
                    pairs.sort { Array($0.key.unicodeScalars.map(\.value)).lexicographicallyPrecedes($1.key.unicodeScalars.map(\.value)) }
                }
                for (i, pair) in pairs.enumerated() {
                    if i > 0 { out += itemSep }
                    if let ind = options.indent { out += "\n" + String(repeating: ind, count: level + 1) }
                    out += jsonString(pair.key, ascii: options.ensureASCII) + keySep
                    try write(pair.value, level + 1)
                }
                if let ind = options.indent { out += "\n" + String(repeating: ind, count: level) }
                out += "}"
            case .namespace:
                throw CallFailure(message: "Object of type Namespace is not JSON serializable")
            case .undefined:
                throw CallFailure(message: "Object of type Undefined is not JSON serializable")
            case .callable:
                throw CallFailure(message: "Object of type function is not JSON serializable")
            }
        }
        try write(v, 0)
        return out
    }

    static func jsonString(_ s: String, ascii: Bool) -> String {
        var out = "\""
        for c in s.unicodeScalars {
            switch c {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            default:
                if c.value < 0x20 {
                    out += String(format: "\\u%04x", c.value)
                } else if ascii, c.value > 0x7F {
                    if c.value > 0xFFFF {
                        let v = c.value - 0x10000
                        out += String(format: "\\u%04x\\u%04x", 0xD800 + (v >> 10), 0xDC00 + (v & 0x3FF))
                    } else {
                        out += String(format: "\\u%04x", c.value)
                    }
                } else {
                    out.unicodeScalars.append(c)
                }
            }
        }
        return out + "\""
    }
}
