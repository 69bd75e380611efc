import Foundation

/// Python methods templates call on values (`message.content.strip()`, `message.get('x')`, `tool.items()`),
/// plus the globals transformers provides (`raise_exception`, `strftime_now`, `namespace`, `range`, `dict`).
enum Methods {
    typealias Args = TemplateCallable.Arguments

    private static let stringMethods: Set<String> = [
        "strip", "lstrip", "rstrip", "split", "rsplit", "startswith", "endswith", "title", "upper", "lower",
        "capitalize", "replace", "find", "count", "join", "splitlines", "isdigit", "isalpha", "isspace",
    ]
    private static let dictMethods: Set<String> = ["get", "items", "keys", "values"]
    /// Mutating methods that jinja2's ImmutableSandboxedEnvironment refuses.
    private static let unsafeMethods: Set<String> = [
        "append", "extend", "insert", "pop", "remove", "clear", "sort", "reverse", "update", "setdefault",
        "popitem", "add", "discard",
    ]

    static func isUnsafe(_ obj: TemplateValue, _ name: String) -> Bool {
        switch obj {
        case .array, .dictionary: return unsafeMethods.contains(name)
        default: return false
        }
    }

    static func bind(_ obj: TemplateValue, _ name: String) -> TemplateValue? {
        switch obj {
        case let .string(s) where stringMethods.contains(name):
            return .callable(TemplateCallable(name: name) { args in try callString(s, name, args) })
        case let .dictionary(d) where dictMethods.contains(name):
            return .callable(TemplateCallable(name: name) { args in
                switch name {
                case "get":
                    guard let key = args.value(0, "key") else { throw CallFailure(message: "get expected at least 1 argument, got 0") }
                    guard case let .string(k) = key else { return args.value(1, "default") ?? .none }
                    return d[k] ?? args.value(1, "default") ?? .none
                case "items": return .array(d.pairs.map { .array([.string($0.key), $0.value]) })
                case "keys": return .array(d.keys.map { .string($0) })
                default: return .array(d.pairs.map { $0.value })
                }
            })
        default:
            return nil
        }
    }

    private static func optionalString(_ v: TemplateValue?) throws -> String? {
        switch v {
        case nil, .none?: return nil
        case let .string(s)?: return s
        default: throw CallFailure(message: "expected a string argument, got \(v!.typeName)")
        }
    }

    private static func callString(_ s: String, _ name: String, _ args: Args) throws -> TemplateValue {
        switch name {
        case "strip": return .string(strip(s, args.value(0, "chars"), left: true, right: true))
        case "lstrip": return .string(strip(s, args.value(0, "chars"), left: true, right: false))
        case "rstrip": return .string(strip(s, args.value(0, "chars"), left: false, right: true))
        case "split", "rsplit":
            let sep = try optionalString(args.value(0, "sep"))
            var maxsplit = -1
            if let m = args.value(1, "maxsplit"), case let .int(i) = m { maxsplit = i }
            return .array(try split(s, sep, maxsplit, fromRight: name == "rsplit").map { .string($0) })
        case "startswith", "endswith":
            guard let arg = args.value(0, "prefix") else { throw CallFailure(message: "\(name) takes at least 1 argument") }
            let candidates: [TemplateValue]
            if case let .array(a) = arg { candidates = a } else { candidates = [arg] }
            let hay = Array(s.unicodeScalars)
            for c in candidates {
                guard case let .string(p) = c else {
                    throw CallFailure(message: "\(name) first arg must be str or a tuple of str, not \(c.typeName)")
                }
                let needle = Array(p.unicodeScalars)
                if needle.count <= hay.count,
                   name == "startswith" ? hay.prefix(needle.count).elementsEqual(needle) : hay.suffix(needle.count).elementsEqual(needle) {
                    return .bool(true)
                }
            }
            return .bool(false)
        case "title":
            // Python str.title(): a cased character after an uncased one starts a word.
            var out = ""
            var previousCased = false
            for c in s.unicodeScalars {
                let cased = c.properties.isCased
                if cased {
                    out += previousCased ? String(c).lowercased() : String(c).uppercased()
                } else {
                    out.unicodeScalars.append(c)
                }
                previousCased = cased
            }
            return .string(out)
        case "upper": return .string(s.uppercased())
        case "lower": return .string(s.lowercased())
        case "capitalize":
            guard let first = s.unicodeScalars.first else { return .string("") }
            return .string(String(first).uppercased() + String(String.UnicodeScalarView(s.unicodeScalars.dropFirst())).lowercased())
        case "replace":
            guard case let .string(old)? = args.value(0, "old"), case let .string(new)? = args.value(1, "new") else {
                throw CallFailure(message: "replace expects two string arguments")
            }
            var count = -1
            if let c = args.value(2, "count"), case let .int(n) = c { count = n }
            return .string(try replace(s, old, new, count, limit: 64 << 20))
        case "find":
            guard case let .string(needle)? = args.value(0, "sub") else { throw CallFailure(message: "find expects a string") }
            let hay = Array(s.unicodeScalars), n = Array(needle.unicodeScalars)
            if n.isEmpty { return .int(0) }
            if n.count <= hay.count {
                for i in 0...(hay.count - n.count) where hay[i..<i + n.count].elementsEqual(n) { return .int(i) }
            }
            return .int(-1)
        case "count":
            guard case let .string(needle)? = args.value(0, "sub") else { throw CallFailure(message: "count expects a string") }
            if needle.isEmpty { return .int(s.unicodeScalars.count + 1) }
            return .int(try split(s, needle, -1, fromRight: false).count - 1)
        case "join":
            guard let items = args.value(0, "iterable") else { throw CallFailure(message: "join takes exactly one argument") }
            let list: [TemplateValue]
            switch items {
            case let .array(a): list = a
            case let .string(x): list = x.unicodeScalars.map { .string(String($0)) }
            default: throw CallFailure(message: "can only join an iterable")
            }
            return .string(try list.map { v -> String in
                guard case let .string(x) = v else { throw CallFailure(message: "sequence item: expected str instance, \(v.typeName) found") }
                return x
            }.joined(separator: s))
        case "splitlines": return .array(splitlines(s).map { .string($0) })
        case "isdigit": return .bool(!s.isEmpty && s.unicodeScalars.allSatisfy { $0.properties.numericType == .decimal })
        case "isalpha": return .bool(!s.isEmpty && s.unicodeScalars.allSatisfy { $0.properties.isAlphabetic })
        case "isspace": return .bool(!s.isEmpty && s.unicodeScalars.allSatisfy(Lexer.isSpace))
        default: throw CallFailure(message: "method '\(name)' on strings", unsupported: true)
        }
    }

    static func strip(_ s: String, _ chars: TemplateValue?, left: Bool, right: Bool) -> String {
        let set: ((Unicode.Scalar) -> Bool)
        if let chars, case let .string(c) = chars {
            let allowed = Set(c.unicodeScalars)
            set = { allowed.contains($0) }
        } else {
            set = Lexer.isSpace
        }
        var scalars = s.unicodeScalars[...]
        if left { while let f = scalars.first, set(f) { scalars.removeFirst() } }
        if right { while let l = scalars.last, set(l) { scalars.removeLast() } }
        return String(String.UnicodeScalarView(scalars))
    }

    /// Python str.split / rsplit.
    static func split(_ s: String, _ sep: String?, _ maxsplit: Int, fromRight: Bool) throws -> [String] {
        let hay = Array(s.unicodeScalars)
        func str(_ slice: ArraySlice<Unicode.Scalar>) -> String { String(String.UnicodeScalarView(slice)) }
        guard let sep else {
            // Whitespace split: runs of whitespace separate, leading/trailing whitespace ignored.
            var words: [ArraySlice<Unicode.Scalar>] = []
            var i = 0
            var splits = 0
            if fromRight {
                var parts: [String] = []
                var j = hay.count
                while j > 0 {
                    while j > 0, Lexer.isSpace(hay[j - 1]) { j -= 1 }
                    if j == 0 { break }
                    if maxsplit >= 0, splits == maxsplit {
                        parts.append(str(hay[0..<j]))
                        j = 0
                        break
                    }
                    var k = j
                    while k > 0, !Lexer.isSpace(hay[k - 1]) { k -= 1 }
                    parts.append(str(hay[k..<j]))
                    splits += 1
                    j = k
                }
                return parts.reversed()
            }
            while i < hay.count {
                while i < hay.count, Lexer.isSpace(hay[i]) { i += 1 }
                if i == hay.count { break }
                if maxsplit >= 0, splits == maxsplit {
                    var end = hay.count
                    while end > i, Lexer.isSpace(hay[end - 1]) { end -= 1 }
                    words.append(hay[i..<end])
                    break
                }
                var j = i
                while j < hay.count, !Lexer.isSpace(hay[j]) { j += 1 }
                words.append(hay[i..<j])
                splits += 1
                i = j
            }
            return words.map(str)
        }
        let needle = Array(sep.unicodeScalars)
        guard !needle.isEmpty else { throw CallFailure(message: "empty separator") }
        var positions: [Int] = []
        var i = 0
        while i + needle.count <= hay.count {
            if hay[i..<i + needle.count].elementsEqual(needle) {
                positions.append(i)
                i += needle.count
            } else {
                i += 1
            }
        }
        if maxsplit >= 0, positions.count > maxsplit {
            positions = fromRight ? Array(positions.suffix(maxsplit)) : Array(positions.prefix(maxsplit))
        }
        var parts: [String] = []
        var start = 0
        for p in positions {
            parts.append(str(hay[start..<p]))
            start = p + needle.count
        }
        parts.append(str(hay[start...]))
        return parts
    }

    /// Python str.splitlines() for the line breaks chat text actually contains.
    static func splitlines(_ s: String) -> [String] {
        var lines: [String] = []
        var current = String.UnicodeScalarView()
        var it = s.unicodeScalars.makeIterator()
        var pendingCR = false
        while let c = it.next() {
            if pendingCR {
                pendingCR = false
                if c == "\n" { continue }
            }
            switch c {
            case "\n", "\u{0B}", "\u{0C}", "\u{1C}", "\u{1D}", "\u{1E}", "\u{85}", "\u{2028}", "\u{2029}":
                lines.append(String(current)); current = String.UnicodeScalarView()
            case "\r":
                lines.append(String(current)); current = String.UnicodeScalarView()
                pendingCR = true
            default:
                current.append(c)
            }
        }
        if !current.isEmpty { lines.append(String(current)) }
        return lines
    }

    static func replace(_ s: String, _ old: String, _ new: String, _ count: Int, limit: Int) throws -> String {
        if old.isEmpty {
            // Python inserts `new` into each of the len+1 gaps (the first `count` of them when count ≥ 0).
            let scalars = s.unicodeScalars.map { String($0) }
            let slots = count < 0 ? scalars.count + 1 : min(count, scalars.count + 1)
            guard (s.utf8.count + slots * new.utf8.count) <= limit else { throw CallFailure(message: "replace result too large") }
            var out = ""
            for (i, c) in scalars.enumerated() {
                if i < slots { out += new }
                out += c
            }
            if slots == scalars.count + 1 { out += new }
            return out
        }
        let parts = try split(s, old, count < 0 ? -1 : count, fromRight: false)
        let size = parts.reduce(0) { $0 + $1.utf8.count } + (parts.count - 1) * new.utf8.count
        guard size <= limit else { throw CallFailure(message: "replace result too large") }
        return parts.joined(separator: new)
    }
}

/// The global functions transformers installs into its Jinja environment.
enum Globals {
    static func make(now: @escaping @Sendable () -> Date, timeZone: TimeZone, maxRange: Int) -> [String: TemplateValue] {
        var g: [String: TemplateValue] = [:]
        g["raise_exception"] = .callable(TemplateCallable(name: "raise_exception") { args in
            throw ChatTemplateError.raised(message: PythonFormatting.str(args.value(0, "message") ?? ""))
        })
        g["strftime_now"] = .callable(TemplateCallable(name: "strftime_now") { args in
            guard case let .string(format)? = args.value(0, "format") else { throw CallFailure(message: "strftime_now expects a format string") }
            return .string(try Strftime.format(format, now(), timeZone))
        })
        g["namespace"] = .callable(TemplateCallable(name: "namespace") { args in
            var attrs = TemplateDictionary()
            for p in args.positional {
                guard case let .dictionary(d) = p else { throw CallFailure(message: "namespace() positional argument must be a mapping") }
                for (k, v) in d.pairs { attrs[k] = v }
            }
            for (k, v) in args.keyword { attrs[k] = v }
            for k in attrs.keys where k.hasPrefix("_") {
                throw CallFailure(message: "Chat templates cannot store underscore-prefixed attributes on a namespace, but got '\(k)'. Please rename the attribute.")
            }
            return .namespace(TemplateNamespace(attrs))
        })
        g["dict"] = .callable(TemplateCallable(name: "dict") { args in
            var d = TemplateDictionary()
            for p in args.positional {
                guard case let .dictionary(x) = p else { throw CallFailure(message: "dict() positional argument must be a mapping") }
                for (k, v) in x.pairs { d[k] = v }
            }
            for (k, v) in args.keyword { d[k] = v }
            return .dictionary(d)
        })
        g["range"] = .callable(TemplateCallable(name: "range") { args in
            let ints = try args.positional.map { v -> Int in
                guard case let .int(i) = v else { throw CallFailure(message: "'\(v.typeName)' object cannot be interpreted as an integer") }
                return i
            }
            let (start, stop, step): (Int, Int, Int)
            switch ints.count {
            case 1: (start, stop, step) = (0, ints[0], 1)
            case 2: (start, stop, step) = (ints[0], ints[1], 1)
            case 3: (start, stop, step) = (ints[0], ints[1], ints[2])
            default: throw CallFailure(message: "range expected 1 to 3 arguments, got \(ints.count)")
            }
            guard step != 0 else { throw CallFailure(message: "range() arg 3 must not be zero") }
            let count = step > 0 ? max(0, (stop - start + step - 1) / step) : max(0, (start - stop - step - 1) / -step)
            // Jinja's sandbox caps range() at MAX_RANGE = 100000 items; we use the loop-iteration cap.
            guard count <= maxRange else { throw CallFailure(message: "Range too big. The sandbox blocks ranges larger than MAX_RANGE (\(maxRange)).") }
            return .array(stride(from: start, to: stop, by: step).map { .int($0) })
        })
        return g
    }
}

/// C-locale `strftime` for the directives chat templates use ("%d %b %Y", "%B %d, %Y", "%Y-%m-%d"…).
enum Strftime {
    private static let months = ["January", "February", "March", "April", "May", "June", "July", "August",
                                 "September", "October", "November", "December"]
    private static let days = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]

    static func format(_ format: String, _ date: Date, _ timeZone: TimeZone) throws -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second, .weekday], from: date)
        let year = c.year!, month = c.month!, day = c.day!, hour = c.hour!, minute = c.minute!, second = c.second!
        let weekday = c.weekday! - 1
        let dayOfYear = calendar.ordinality(of: .day, in: .year, for: date) ?? 1
        func pad(_ n: Int, _ w: Int = 2) -> String {
            let s = String(n)
            return String(repeating: "0", count: max(0, w - s.count)) + s
        }
        var out = ""
        var chars = Array(format)[...]
        while let ch = chars.popFirst() {
            guard ch == "%" else { out.append(ch); continue }
            var noPad = false
            if chars.first == "-" { noPad = true; chars.removeFirst() }
            guard let d = chars.popFirst() else { out.append("%"); break }
            func num(_ n: Int, _ w: Int = 2) -> String { noPad ? String(n) : pad(n, w) }
            switch d {
            case "Y": out += String(year)
            case "y": out += num(year % 100)
            case "m": out += num(month)
            case "d": out += num(day)
            case "e": out += day < 10 ? " \(day)" : String(day)
            case "H": out += num(hour)
            case "I": out += num(hour % 12 == 0 ? 12 : hour % 12)
            case "M": out += num(minute)
            case "S": out += num(second)
            case "p": out += hour < 12 ? "AM" : "PM"
            case "j": out += num(dayOfYear, 3)
            case "B": out += months[month - 1]
            case "b", "h": out += String(months[month - 1].prefix(3))
            case "A": out += days[weekday]
            case "a": out += String(days[weekday].prefix(3))
            case "w": out += String(weekday)
            case "%": out += "%"
            default: throw CallFailure(message: "strftime directive '%\(d)'", unsupported: true)
            }
        }
        return out
    }
}
