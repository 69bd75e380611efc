import Foundation

/// Arithmetic, concatenation and comparison with Python's semantics (int/float promotion, floor division and
/// modulo rounding toward negative infinity, `+` on lists and strings, `in` on strings/lists/dicts).
enum Operators {
    static func unary(_ op: String, _ v: TemplateValue) throws -> TemplateValue {
        switch op {
        case "not":
            return .bool(!v.isTruthy)
        case "-", "+":
            if case let .undefined(hint) = v { throw CallFailure(message: hint ?? "value is undefined") }
            guard let n = v.numericValue else { throw CallFailure(message: "bad operand type for unary \(op): '\(v.typeName)'") }
            if op == "+" { return n.value }
            switch n {
            case let .int(i):
                let (r, o) = (0).subtractingReportingOverflow(i)
                return o ? .double(-Double(i)) : .int(r)
            case let .double(d): return .double(-d)
            }
        default:
            throw CallFailure(message: "unary operator '\(op)'", unsupported: true)
        }
    }

    private static func typeError(_ op: String, _ l: TemplateValue, _ r: TemplateValue) -> CallFailure {
        if case let .undefined(hint) = l { return CallFailure(message: hint ?? "value is undefined") }
        if case let .undefined(hint) = r { return CallFailure(message: hint ?? "value is undefined") }
        if op == "+", case .string = l {
            return CallFailure(message: "can only concatenate str (not \"\(r.typeName)\") to str")
        }
        if op == "+", case .array = l {
            return CallFailure(message: "can only concatenate list (not \"\(r.typeName)\") to list")
        }
        return CallFailure(message: "unsupported operand type(s) for \(op): '\(l.typeName)' and '\(r.typeName)'")
    }

    static func binary(_ op: String, _ l: TemplateValue, _ r: TemplateValue, limits: RenderLimits) throws -> TemplateValue {
        if op == "~" {
            return .string(PythonFormatting.str(l) + PythonFormatting.str(r))
        }
        switch (op, l, r) {
        case let ("+", .string(a), .string(b)):
            guard a.utf8.count + b.utf8.count <= limits.maxOutputBytes else { throw CallFailure(message: "string too large") }
            return .string(a + b)
        case let ("+", .array(a), .array(b)):
            return .array(a + b)
        case let ("*", .string(s), n), let ("*", n, .string(s)):
            guard let count = n.numericValue, case let .int(c) = count, !n.isDouble else { throw typeError(op, l, r) }
            guard c <= 0 || s.utf8.count * c <= limits.maxOutputBytes else { throw CallFailure(message: "string repetition result too large") }
            return .string(c > 0 ? String(repeating: s, count: c) : "")
        case let ("*", .array(a), n), let ("*", n, .array(a)):
            guard let count = n.numericValue, case let .int(c) = count, !n.isDouble else { throw typeError(op, l, r) }
            guard c <= 0 || a.count * c <= limits.maxLoopIterations else { throw CallFailure(message: "list repetition result too large") }
            return .array(c > 0 ? Array([[TemplateValue]](repeating: a, count: c).joined()) : [])
        case ("%", .string, _):
            throw CallFailure(message: "printf-style string formatting with '%'", unsupported: true)
        default:
            break
        }
        guard let a = l.numericValue, let b = r.numericValue else { throw typeError(op, l, r) }
        switch (a, b) {
        case let (.int(x), .int(y)):
            switch op {
            case "+": let (v, o) = x.addingReportingOverflow(y); if !o { return .int(v) }
            case "-": let (v, o) = x.subtractingReportingOverflow(y); if !o { return .int(v) }
            case "*": let (v, o) = x.multipliedReportingOverflow(by: y); if !o { return .int(v) }
            case "/":
                guard y != 0 else { throw CallFailure(message: "division by zero") }
                return .double(Double(x) / Double(y))
            case "//":
                guard y != 0 else { throw CallFailure(message: "integer division or modulo by zero") }
                var q = x / y
                if (x % y != 0) && ((x < 0) != (y < 0)) { q -= 1 }
                return .int(q)
            case "%":
                guard y != 0 else { throw CallFailure(message: "integer division or modulo by zero") }
                let m = x % y
                return .int(m != 0 && ((m < 0) != (y < 0)) ? m + y : m)
            case "**":
                guard y >= 0 else { return .double(pow(Double(x), Double(y))) }
                if x == 0 || x == 1 { return .int(y == 0 ? 1 : x) }
                if x == -1 { return .int(y % 2 == 0 ? 1 : -1) }
                var result = 1
                for _ in 0..<y {
                    let (v, o) = result.multipliedReportingOverflow(by: x)
                    guard !o else { throw CallFailure(message: "integer power result too large") }
                    result = v
                }
                return .int(result)
            default: break
            }
            if ["+", "-", "*"].contains(op) { throw CallFailure(message: "integer overflow in '\(op)'") }
            throw CallFailure(message: "operator '\(op)'", unsupported: true)
        default:
            let x = a.asDouble, y = b.asDouble
            switch op {
            case "+": return .double(x + y)
            case "-": return .double(x - y)
            case "*": return .double(x * y)
            case "/":
                guard y != 0 else { throw CallFailure(message: "float division by zero") }
                return .double(x / y)
            case "//":
                guard y != 0 else { throw CallFailure(message: "float floor division by zero") }
                return .double((x / y).rounded(.down))
            case "%":
                guard y != 0 else { throw CallFailure(message: "float modulo") }
                let m = fmod(x, y)
                return .double(m != 0 && ((m < 0) != (y < 0)) ? m + y : m)
            case "**": return .double(pow(x, y))
            default: throw CallFailure(message: "operator '\(op)'", unsupported: true)
            }
        }
    }

    static func compare(_ op: String, _ l: TemplateValue, _ r: TemplateValue) throws -> Bool {
        switch op {
        case "==": return l == r
        case "!=": return l != r
        case "in": return try contains(r, l)
        case "not in": return try !contains(r, l)
        default:
            let order = try ordering(l, r, op)
            switch op {
            case "<": return order < 0
            case "<=": return order <= 0
            case ">": return order > 0
            case ">=": return order >= 0
            default: throw CallFailure(message: "comparison '\(op)'", unsupported: true)
            }
        }
    }

    /// Python ordering for numbers, strings (by code point) and lists (lexicographic).
    static func ordering(_ l: TemplateValue, _ r: TemplateValue, _ op: String = "<") throws -> Int {
        if let a = l.numericValue, let b = r.numericValue {
            switch (a, b) {
            case let (.int(x), .int(y)): return x < y ? -1 : x > y ? 1 : 0
            default:
                let x = a.asDouble, y = b.asDouble
                return x < y ? -1 : x > y ? 1 : 0
            }
        }
        switch (l, r) {
        case let (.string(a), .string(b)):
            let x = a.unicodeScalars.map(\.value), y = b.unicodeScalars.map(\.value)
            return x.lexicographicallyPrecedes(y) ? -1 : x == y ? 0 : 1
        case let (.array(a), .array(b)):
            for (x, y) in zip(a, b) where x != y { return try ordering(x, y, op) }
            return a.count < b.count ? -1 : a.count > b.count ? 1 : 0
        default:
            if case let .undefined(hint) = l { throw CallFailure(message: hint ?? "value is undefined") }
            if case let .undefined(hint) = r { throw CallFailure(message: hint ?? "value is undefined") }
            throw CallFailure(message: "'\(op)' not supported between instances of '\(l.typeName)' and '\(r.typeName)'")
        }
    }

    static func contains(_ container: TemplateValue, _ item: TemplateValue) throws -> Bool {
        switch container {
        case let .string(s):
            guard case let .string(needle) = item else {
                throw CallFailure(message: "'in <string>' requires string as left operand, not \(item.typeName)")
            }
            if needle.isEmpty { return true }
            let hay = Array(s.unicodeScalars), n = Array(needle.unicodeScalars)
            guard n.count <= hay.count else { return false }
            for i in 0...(hay.count - n.count) where hay[i..<i + n.count].elementsEqual(n) { return true }
            return false
        case let .array(a):
            return a.contains(item)
        case let .dictionary(d):
            if case let .string(k) = item { return d[k] != nil }
            return false
        case .undefined:
            return false
        case let .namespace(ns):
            if case let .string(k) = item { return ns.attributes[k] != nil }
            return false
        default:
            throw CallFailure(message: "argument of type '\(container.typeName)' is not iterable")
        }
    }
}

extension TemplateValue.Numeric {
    var value: TemplateValue {
        switch self {
        case let .int(i): return .int(i)
        case let .double(d): return .double(d)
        }
    }
}
