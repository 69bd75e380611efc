import Foundation

/// Jinja filters (`x | name(args)`) and tests (`x is name`), limited to what chat templates use. Names outside
/// `supported` are rejected at parse time with an "unsupported filter/test" error.
enum Filters {
    static let supported: Set<String> = [
        "abs", "capitalize", "count", "d", "default", "dictsort", "first", "float", "indent", "int", "items",
        "join", "last", "length", "list", "lower", "map", "max", "min", "reject", "rejectattr", "replace",
        "reverse", "round", "safe", "select", "selectattr", "sort", "string", "sum", "title", "tojson", "trim",
        "unique", "upper", "wordcount",
    ]

    typealias Args = TemplateCallable.Arguments

    static func apply(_ name: String, _ value: TemplateValue, _ args: Args, _ interp: Interpreter,
                      _ loc: SourceLocation) throws -> TemplateValue {
        switch name {
        case "abs":
            guard let n = value.numericValue else { throw CallFailure(message: "bad operand type for abs(): '\(value.typeName)'") }
            switch n {
            case let .int(i): return .int(abs(i))
            case let .double(d): return .double(abs(d))
            }
        case "capitalize":
            let s = Array(PythonFormatting.str(value).unicodeScalars)
            guard let first = s.first else { return .string("") }
            return .string(String(first).uppercased() + String(String.UnicodeScalarView(s.dropFirst())).lowercased())
        case "count", "length":
            switch value {
            case let .string(s): return .int(s.unicodeScalars.count)
            case let .array(a): return .int(a.count)
            case let .dictionary(d): return .int(d.count)
            case .undefined: return .int(0)
            default: throw CallFailure(message: "object of type '\(value.typeName)' has no len()")
            }
        case "d", "default":
            let fallback = args.value(0, "default_value") ?? .string("")
            let boolean = args.value(1, "boolean")?.isTruthy ?? false
            if value.isUndefined || (boolean && !value.isTruthy) { return fallback }
            return value
        case "dictsort":
            guard case let .dictionary(d) = value else { throw CallFailure(message: "dictsort requires a mapping") }
            let caseSensitive = args.value(0, "case_sensitive")?.isTruthy ?? false
            let byValue = PythonFormatting.str(args.value(1, "by") ?? "key") == "value"
            let reverse = args.value(2, "reverse")?.isTruthy ?? false
            var pairs: [TemplateValue] = d.pairs.map { .array([.string($0.key), $0.value]) }
            try sortValues(&pairs, reverse: reverse) { v in
                guard case let .array(p) = v else { return v }
                return fold(byValue ? p[1] : p[0], caseSensitive)
            }
            return .array(pairs)
        case "first":
            if case let .dictionary(d) = value { return d.keys.first.map { .string($0) } ?? .undefined(hint: "No first item, sequence was empty.") }
            return try interp.iterate(value, loc).first ?? .undefined(hint: "No first item, sequence was empty.")
        case "last":
            if case let .dictionary(d) = value { return d.keys.last.map { .string($0) } ?? .undefined(hint: "No last item, sequence was empty.") }
            return try interp.iterate(value, loc).last ?? .undefined(hint: "No last item, sequence was empty.")
        case "float":
            let fallback = args.value(0, "default") ?? .double(0)
            switch value {
            case let .double(d): return .double(d)
            case let .int(i): return .double(Double(i))
            case let .bool(b): return .double(b ? 1 : 0)
            case let .string(s): return Double(s.trimmingCharacters(in: .whitespaces)).map { .double($0) } ?? fallback
            default: return fallback
            }
        case "int":
            let fallback = args.value(0, "default") ?? .int(0)
            let base = args.value(1, "base").flatMap { v -> Int? in if case let .int(b) = v { return b } else { return nil } } ?? 10
            switch value {
            case let .int(i): return .int(i)
            case let .bool(b): return .int(b ? 1 : 0)
            case let .double(d):
                guard d.isFinite, abs(d) < 9.2e18 else { return fallback }
                return .int(Int(d))
            case let .string(s):
                let t = s.trimmingCharacters(in: .whitespacesAndNewlines).replacingOccurrences(of: "_", with: "")
                if let i = Int(t, radix: base) { return .int(i) }
                if base == 10, let d = Double(t), d.isFinite, abs(d) < 9.2e18 { return .int(Int(d)) }
                return fallback
            default: return fallback
            }
        case "indent":
            let widthValue = args.value(0, "width") ?? .int(4)
            let indention: String
            if case let .string(s) = widthValue { indention = s } else if case let .int(w) = widthValue { indention = String(repeating: " ", count: max(w, 0)) } else { indention = "    " }
            let first = args.value(1, "first")?.isTruthy ?? false
            let blank = args.value(2, "blank")?.isTruthy ?? false
            let s = PythonFormatting.str(value) + "\n"
            let lines = Methods.splitlines(s)
            var rv: String
            if blank {
                rv = lines.joined(separator: "\n" + indention)
            } else {
                rv = lines.first ?? ""
                if lines.count > 1 {
                    rv += "\n" + lines.dropFirst().map { $0.isEmpty ? $0 : indention + $0 }.joined(separator: "\n")
                }
            }
            return .string(first ? indention + rv : rv)
        case "items":
            switch value {
            case let .dictionary(d): return .array(d.pairs.map { .array([.string($0.key), $0.value]) })
            case .undefined: return .array([])
            default: throw CallFailure(message: "Can only get item pairs from a mapping.")
            }
        case "join":
            let sep = PythonFormatting.str(args.value(0, "d") ?? "")
            var items = try interp.iterate(value, loc)
            if let attr = args.value(1, "attribute") { items = try items.map { try attribute($0, attr, interp, loc) } }
            return .string(items.map(PythonFormatting.str).joined(separator: sep))
        case "list":
            return .array(try interp.iterate(value, loc))
        case "lower":
            return .string(PythonFormatting.str(value).lowercased())
        case "upper":
            return .string(PythonFormatting.str(value).uppercased())
        case "map":
            let items = try interp.iterate(value, loc)
            if let attr = args.keyword.first(where: { $0.0 == "attribute" })?.1 {
                let fallback = args.keyword.first(where: { $0.0 == "default" })?.1
                return .array(try items.map { item in
                    let v = try attribute(item, attr, interp, loc)
                    if v.isUndefined, let fallback { return fallback }
                    return v
                })
            }
            guard case let .string(filterName)? = args.positional.first else {
                throw CallFailure(message: "map requires a filter name or attribute=")
            }
            guard supported.contains(filterName) else { throw CallFailure(message: "filter '\(filterName)'", unsupported: true) }
            let rest = Args(positional: Array(args.positional.dropFirst()), keyword: args.keyword)
            return .array(try items.map { try apply(filterName, $0, rest, interp, loc) })
        case "max", "min":
            let caseSensitive = args.value(0, "case_sensitive")?.isTruthy ?? false
            let attr = args.value(1, "attribute")
            let items = try interp.iterate(value, loc)
            guard var best = items.first else { return .undefined(hint: "No aggregated item, sequence was empty.") }
            func key(_ v: TemplateValue) throws -> TemplateValue { fold(try attr.map { try attribute(v, $0, interp, loc) } ?? v, caseSensitive) }
            for item in items.dropFirst() {
                let o = try Operators.ordering(try key(item), try key(best))
                if name == "max" ? o > 0 : o < 0 { best = item }
            }
            return best
        case "reject", "select":
            let items = try interp.iterate(value, loc)
            return .array(try items.filter { item in
                let ok = try runTest(item, args.positional, interp)
                return name == "select" ? ok : !ok
            })
        case "rejectattr", "selectattr":
            let items = try interp.iterate(value, loc)
            guard let attr = args.positional.first else { throw CallFailure(message: "\(name) requires an attribute name") }
            return .array(try items.filter { item in
                let v = try attribute(item, attr, interp, loc)
                let ok = try runTest(v, Array(args.positional.dropFirst()), interp)
                return name == "selectattr" ? ok : !ok
            })
        case "replace":
            let s = PythonFormatting.str(value)
            let old = PythonFormatting.str(args.value(0, "old") ?? "")
            let new = PythonFormatting.str(args.value(1, "new") ?? "")
            var count = -1
            if let c = args.value(2, "count"), case let .int(n) = c { count = n }
            return .string(try Methods.replace(s, old, new, count, limit: interp.limits.maxOutputBytes))
        case "reverse":
            if case let .string(s) = value { return .string(String(String.UnicodeScalarView(s.unicodeScalars.reversed()))) }
            return .array(try interp.iterate(value, loc).reversed())
        case "round":
            let precision: Int = { if let p = args.value(0, "precision"), case let .int(i) = p { return i }; return 0 }()
            let method = PythonFormatting.str(args.value(1, "method") ?? "common")
            guard let n = value.numericValue else { throw CallFailure(message: "round requires a number") }
            let factor = pow(10.0, Double(precision))
            let x = n.asDouble * factor
            let rounded: Double
            switch method {
            case "common": rounded = x.rounded(.toNearestOrAwayFromZero)
            case "ceil": rounded = x.rounded(.up)
            case "floor": rounded = x.rounded(.down)
            default: throw CallFailure(message: "method must be common, ceil or floor")
            }
            return .double(rounded / factor)
        case "safe":
            return value
        case "sort":
            let reverse = args.value(0, "reverse")?.isTruthy ?? false
            let caseSensitive = args.value(1, "case_sensitive")?.isTruthy ?? false
            let attr = args.value(2, "attribute")
            var items = try interp.iterate(value, loc)
            try sortValues(&items, reverse: reverse) { v in fold(try attr.map { try attribute(v, $0, interp, loc) } ?? v, caseSensitive) }
            return .array(items)
        case "string":
            return .string(PythonFormatting.str(value))
        case "sum":
            let attr = args.value(0, "attribute")
            var total = args.value(1, "start") ?? .int(0)
            for item in try interp.iterate(value, loc) {
                total = try Operators.binary("+", total, try attr.map { try attribute(item, $0, interp, loc) } ?? item, limits: interp.limits)
            }
            return total
        case "title":
            // Jinja's own title(): split on runs of "-", whitespace and opening brackets, capitalise each piece.
            var out = ""
            var atStart = true
            for c in PythonFormatting.str(value).unicodeScalars {
                if c == "-" || Lexer.isSpace(c) || c == "(" || c == "{" || c == "[" || c == "<" {
                    out.unicodeScalars.append(c)
                    atStart = true
                } else if atStart {
                    out += String(c).uppercased()
                    atStart = false
                } else {
                    out += String(c).lowercased()
                }
            }
            return .string(out)
        case "tojson":
            // transformers' tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False).
            var options = PythonFormatting.JSONOptions()
            options.ensureASCII = args.value(0, "ensure_ascii")?.isTruthy ?? false
            switch args.value(1, "indent") {
            case let .int(n)?: options.indent = String(repeating: " ", count: max(n, 0))
            case let .string(s)?: options.indent = s
            case .none?, nil: break
            default: throw CallFailure(message: "tojson indent must be an int or a string")
            }
            if let seps = args.value(2, "separators"), case let .array(parts) = seps, parts.count == 2 {
                options.itemSeparator = PythonFormatting.str(parts[0])
                options.keySeparator = PythonFormatting.str(parts[1])
            }
            options.sortKeys = args.value(3, "sort_keys")?.isTruthy ?? false
            return .string(try PythonFormatting.json(value, options))
        case "trim":
            let chars = args.value(0, "chars")
            return .string(Methods.strip(PythonFormatting.str(value), chars, left: true, right: true))
        case "unique":
            let caseSensitive = args.value(0, "case_sensitive")?.isTruthy ?? false
            let attr = args.value(1, "attribute")
            var seen: [TemplateValue] = []
            var out: [TemplateValue] = []
            for item in try interp.iterate(value, loc) {
                let k = fold(try attr.map { try attribute(item, $0, interp, loc) } ?? item, caseSensitive)
                if !seen.contains(k) { seen.append(k); out.append(item) }
            }
            return .array(out)
        case "wordcount":
            return .int(PythonFormatting.str(value).split(whereSeparator: { $0.isWhitespace || $0.isPunctuation }).count)
        default:
            throw CallFailure(message: "filter '\(name)'", unsupported: true)
        }
    }

    /// Jinja lower-cases strings for sorting/uniqueness unless case_sensitive is set.
    private static func fold(_ v: TemplateValue, _ caseSensitive: Bool) -> TemplateValue {
        if !caseSensitive, case let .string(s) = v { return .string(s.lowercased()) }
        return v
    }

    private static func sortValues(_ items: inout [TemplateValue], reverse: Bool,
                                   key: (TemplateValue) throws -> TemplateValue) throws {
        let keyed = try items.enumerated().map { ($0.offset, try key($0.element), $0.element) }
        var failure: Error?
        // Stable sort (Python's sort is stable): tie-break on the original position.
        let sorted = keyed.sorted { a, b in
            do {
                let o = try Operators.ordering(a.1, b.1)
                if o == 0 { return a.0 < b.0 }
                return reverse ? o > 0 : o < 0
            } catch {
                failure = error
                return false
            }
        }
        if let failure { throw failure }
        items = sorted.map { $0.2 }
    }

    /// Jinja's attribute getter: dotted paths, integer parts index lists.
    static func attribute(_ item: TemplateValue, _ path: TemplateValue, _ interp: Interpreter, _ loc: SourceLocation) throws -> TemplateValue {
        if case .int = path { return try interp.getItem(item, path, loc) }
        var current = item
        for part in PythonFormatting.str(path).split(separator: ".", omittingEmptySubsequences: false) {
            if let i = Int(part) {
                current = try interp.getItem(current, .int(i), loc)
            } else {
                current = try interp.getItem(current, .string(String(part)), loc)
            }
        }
        return current
    }

    /// `select`/`selectattr` helper: no test name means truthiness.
    private static func runTest(_ v: TemplateValue, _ args: [TemplateValue], _ interp: Interpreter) throws -> Bool {
        guard let first = args.first else { return v.isTruthy }
        guard case let .string(name) = first else { throw CallFailure(message: "test name must be a string") }
        guard Tests.supported.contains(name) else { throw CallFailure(message: "test '\(name)'", unsupported: true) }
        return try Tests.apply(name, v, Array(args.dropFirst()), interp)
    }
}

enum Tests {
    static let supported: Set<String> = [
        "defined", "undefined", "none", "string", "number", "integer", "float", "boolean", "true", "false",
        "mapping", "iterable", "sequence", "callable", "equalto", "eq", "==", "ne", "!=", "lt", "<", "le", "<=",
        "gt", ">", "ge", ">=", "lessthan", "greaterthan", "in", "odd", "even", "divisibleby", "lower", "upper",
        "sameas",
    ]

    static func apply(_ name: String, _ v: TemplateValue, _ args: [TemplateValue], _ interp: Interpreter) throws -> Bool {
        func arg() throws -> TemplateValue {
            guard let a = args.first else { throw CallFailure(message: "test '\(name)' needs an argument") }
            return a
        }
        switch name {
        case "defined": return !v.isUndefined
        case "undefined": return v.isUndefined
        case "none": if case .none = v { return true }; return false
        case "string": if case .string = v { return true }; return false
        case "number":
            switch v { case .int, .double, .bool: return true; default: return false }
        case "integer": if case .int = v { return true }; return false
        case "float": if case .double = v { return true }; return false
        case "boolean": if case .bool = v { return true }; return false
        case "true": if case .bool(true) = v { return true }; return false
        case "false": if case .bool(false) = v { return true }; return false
        case "mapping": if case .dictionary = v { return true }; return false
        case "iterable":
            // Python iter(): strings, lists, dicts and (in Jinja) Undefined are iterable.
            switch v { case .string, .array, .dictionary, .undefined: return true; default: return false }
        case "sequence":
            switch v { case .string, .array, .dictionary, .undefined: return true; default: return false }
        case "callable": if case .callable = v { return true }; return false
        case "equalto", "eq", "==": return v == (try arg())
        case "ne", "!=": return v != (try arg())
        case "lt", "<", "lessthan": return try Operators.ordering(v, try arg()) < 0
        case "le", "<=": return try Operators.ordering(v, try arg()) <= 0
        case "gt", ">", "greaterthan": return try Operators.ordering(v, try arg()) > 0
        case "ge", ">=": return try Operators.ordering(v, try arg()) >= 0
        case "in": return try Operators.contains(try arg(), v)
        case "odd", "even":
            guard case let .int(i) = v else { throw CallFailure(message: "test '\(name)' needs an integer") }
            return (i % 2 != 0) == (name == "odd")
        case "divisibleby":
            guard case let .int(i) = v, case let .int(d) = try arg(), d != 0 else { throw CallFailure(message: "divisibleby needs non-zero integers") }
            return i % d == 0
        case "lower": return PythonFormatting.str(v) == PythonFormatting.str(v).lowercased()
        case "upper": return PythonFormatting.str(v) == PythonFormatting.str(v).uppercased()
        case "sameas":
            let other = try arg()
            switch (v, other) {
            case (.none, .none): return true
            case let (.bool(a), .bool(b)): return a == b
            case let (.namespace(a), .namespace(b)): return a === b
            default: return false
            }
        default:
            throw CallFailure(message: "test '\(name)'", unsupported: true)
        }
    }
}
