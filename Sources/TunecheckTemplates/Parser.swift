import Foundation

/// Parsing: tokens → AST, following the precedence of `jinja2.parser.Parser`
/// (condexpr < or < and < not < compare < `+ -` < `~` < `* / // %` < `**` < unary < postfix/filters/tests).
/// Filters and tests are checked against the supported set here, so an unsupported template fails when it is
/// loaded rather than halfway through an evaluation run.
struct Parser {
    private var tokens: [Token]
    private var index = 0
    private var depth = 0
    /// Deeply nested expressions would otherwise recurse until the stack overflows.
    static let maxNesting = 200

    init(tokens: [Token]) { self.tokens = tokens }

    private var current: Token { tokens[index] }
    private var next: Token { tokens[min(index + 1, tokens.count - 1)] }
    private mutating func advance() -> Token {
        let t = tokens[index]
        if index < tokens.count - 1 { index += 1 }
        return t
    }

    private func error(_ message: String, _ token: Token? = nil) -> ChatTemplateError {
        let loc = (token ?? current).location
        return .syntax(message: message, line: loc.line, column: loc.column)
    }

    private func unsupported(_ feature: String, _ loc: SourceLocation) -> ChatTemplateError {
        .unsupported(feature: feature, line: loc.line, column: loc.column)
    }

    private func isOp(_ op: String) -> Bool {
        if case .op(op) = current.kind { return true }
        return false
    }

    private func isName(_ name: String) -> Bool {
        if case .name(name) = current.kind { return true }
        return false
    }

    private mutating func expectOp(_ op: String) throws {
        guard isOp(op) else { throw error("expected '\(op)', got \(describe(current))") }
        _ = advance()
    }

    private mutating func expectName() throws -> String {
        guard case let .name(n) = current.kind else { throw error("expected a name, got \(describe(current))") }
        _ = advance()
        return n
    }

    private mutating func expectBlockEnd() throws {
        guard case .blockEnd = current.kind else { throw error("expected end of statement '%}', got \(describe(current))") }
        _ = advance()
    }

    private func describe(_ t: Token) -> String {
        switch t.kind {
        case let .text(s): return "template text \(s.prefix(20).debugDescription)"
        case .variableBegin: return "'{{'"
        case .variableEnd: return "'}}'"
        case .blockBegin: return "'{%'"
        case .blockEnd: return "'%}'"
        case let .name(n): return "'\(n)'"
        case let .string(s): return "string \(s.prefix(20).debugDescription)"
        case let .integer(i): return "integer \(i)"
        case let .float(d): return "number \(d)"
        case let .op(o): return "'\(o)'"
        case .eof: return "end of template"
        }
    }

    // MARK: - Statements

    mutating func parseTemplate() throws -> [Node] {
        let (body, end) = try parseBody(until: [])
        if let end { throw error("unexpected '\(end)'") }
        return body
    }

    /// Parses nodes until a block tag whose name is in `until`; returns that name (the tag's name token is
    /// consumed, the rest of the tag is left for the caller).
    private mutating func parseBody(until: Set<String>) throws -> ([Node], String?) {
        var nodes: [Node] = []
        while true {
            let token = current
            switch token.kind {
            case .eof:
                if !until.isEmpty {
                    throw error("unexpected end of template, expected one of: \(until.sorted().joined(separator: ", "))")
                }
                return (nodes, nil)
            case let .text(s):
                _ = advance()
                nodes.append(.text(s))
            case .variableBegin:
                _ = advance()
                let e = try parseTuple()
                guard case .variableEnd = current.kind else { throw error("expected end of print statement '}}', got \(describe(current))") }
                _ = advance()
                nodes.append(.output(e))
            case .blockBegin:
                _ = advance()
                guard case let .name(tag) = current.kind else { throw error("expected a tag name, got \(describe(current))") }
                if until.contains(tag) {
                    _ = advance()
                    return (nodes, tag)
                }
                nodes.append(contentsOf: try parseStatement())
            default:
                throw error("unexpected \(describe(token))")
            }
        }
    }

    private mutating func parseStatement() throws -> [Node] {
        let tagToken = advance()
        guard case let .name(tag) = tagToken.kind else { throw error("expected a tag name", tagToken) }
        let loc = tagToken.location
        switch tag {
        case "if":
            return [try parseIf()]
        case "for":
            return [try parseFor(loc)]
        case "set":
            return [try parseSet(loc)]
        case "macro":
            return [try parseMacro(loc)]
        case "call":
            return [try parseCallBlock(loc)]
        case "filter":
            return [try parseFilterBlock(loc)]
        case "break":
            try expectBlockEnd()
            return [.breakLoop(loc)]
        case "continue":
            try expectBlockEnd()
            return [.continueLoop(loc)]
        case "generation":
            // transformers' AssistantTracker tag: renders its body unchanged (it only records offsets).
            try expectBlockEnd()
            let (body, _) = try parseBody(until: ["endgeneration"])
            try expectBlockEnd()
            return body
        case "endif", "endfor", "endset", "endmacro", "endcall", "endfilter", "elif", "else", "endgeneration":
            throw error("unexpected '\(tag)'", tagToken)
        default:
            throw unsupported("tag '\(tag)'", loc)
        }
    }

    private mutating func parseIf() throws -> Node {
        var branches: [(test: Expr, body: [Node])] = []
        var test = try parseTuple()
        try expectBlockEnd()
        while true {
            let (body, end) = try parseBody(until: ["elif", "else", "endif"])
            branches.append((test, body))
            switch end {
            case "elif":
                test = try parseTuple()
                try expectBlockEnd()
            case "else":
                try expectBlockEnd()
                let (otherwise, _) = try parseBody(until: ["endif"])
                try expectBlockEnd()
                return .ifBlock(branches: branches, otherwise: otherwise)
            default:
                try expectBlockEnd()
                return .ifBlock(branches: branches, otherwise: nil)
            }
        }
    }

    private mutating func parseFor(_ loc: SourceLocation) throws -> Node {
        var targets: [String] = []
        let parenthesised = isOp("(")
        if parenthesised { _ = advance() }
        repeat {
            if !targets.isEmpty { _ = advance() } // the comma
            targets.append(try expectName())
        } while isOp(",")
        if parenthesised { try expectOp(")") }
        guard isName("in") else { throw error("expected 'in' in for loop, got \(describe(current))") }
        _ = advance()
        let iterable = try parseTuple(withCondExpr: false)
        var filter: Expr? = nil
        if isName("if") {
            _ = advance()
            filter = try parseTuple()
        }
        if isName("recursive") { throw unsupported("recursive for loop", current.location) }
        try expectBlockEnd()
        let (body, end) = try parseBody(until: ["else", "endfor"])
        var otherwise: [Node]? = nil
        if end == "else" {
            try expectBlockEnd()
            (otherwise, _) = try parseBody(until: ["endfor"])
        }
        try expectBlockEnd()
        return .forLoop(targets: targets, iterable: iterable, filter: filter, body: body, otherwise: otherwise, loc)
    }

    private mutating func parseSet(_ loc: SourceLocation) throws -> Node {
        let first = try expectName()
        var target = SetTarget.names([first])
        if isOp(".") {
            _ = advance()
            target = .attribute(object: first, attribute: try expectName())
        } else if isOp(",") {
            var names = [first]
            while isOp(",") {
                _ = advance()
                names.append(try expectName())
            }
            target = .names(names)
        }
        if isOp("=") {
            _ = advance()
            let value = try parseTuple()
            try expectBlockEnd()
            return .set(target, value, loc)
        }
        guard case let .names(names) = target, names.count == 1 else { throw error("expected '='") }
        if isOp("|") { throw unsupported("filtered block set", current.location) }
        try expectBlockEnd()
        let (body, _) = try parseBody(until: ["endset"])
        try expectBlockEnd()
        return .setBlock(name: names[0], body: body, loc)
    }

    private mutating func parseParameters() throws -> [MacroParameter] {
        try expectOp("(")
        var params: [MacroParameter] = []
        while !isOp(")") {
            if !params.isEmpty { try expectOp(",") }
            if isOp(")") { break }
            let name = try expectName()
            var def: Expr? = nil
            if isOp("=") {
                _ = advance()
                def = try parseExpression()
            }
            params.append(MacroParameter(name: name, defaultValue: def))
        }
        _ = advance()
        return params
    }

    private mutating func parseMacro(_ loc: SourceLocation) throws -> Node {
        let name = try expectName()
        let params = try parseParameters()
        try expectBlockEnd()
        let (body, _) = try parseBody(until: ["endmacro"])
        if case .name = current.kind { _ = advance() } // `{% endmacro name %}`
        try expectBlockEnd()
        return .macro(MacroDefinition(name: name, parameters: params, body: body, location: loc))
    }

    private mutating func parseCallBlock(_ loc: SourceLocation) throws -> Node {
        var params: [MacroParameter] = []
        if isOp("(") { params = try parseParameters() }
        let call = try parseExpression()
        guard case .call = call else { throw error("expected a call after 'call'") }
        try expectBlockEnd()
        let (body, _) = try parseBody(until: ["endcall"])
        try expectBlockEnd()
        return .callBlock(call: call, callerParameters: params, body: body, loc)
    }

    private mutating func parseFilterBlock(_ loc: SourceLocation) throws -> Node {
        var filters: [FilterApplication] = []
        repeat {
            if !filters.isEmpty { _ = advance() } // the pipe
            let nameToken = current
            let name = try expectName()
            try checkFilter(name, nameToken.location)
            var args = CallArguments()
            if isOp("(") { args = try parseCallArguments() }
            filters.append(FilterApplication(name: name, arguments: args, location: nameToken.location))
        } while isOp("|")
        try expectBlockEnd()
        let (body, _) = try parseBody(until: ["endfilter"])
        try expectBlockEnd()
        return .filterBlock(filters, body: body, loc)
    }

    // MARK: - Expressions

    /// An expression, or a bare tuple `a, b` (as in `{% set x = 1, 2 %}`).
    private mutating func parseTuple(withCondExpr: Bool = true) throws -> Expr {
        let loc = current.location
        let first = withCondExpr ? try parseExpression() : try parseOr()
        guard isOp(",") else { return first }
        var items = [first]
        while isOp(",") {
            _ = advance()
            if case .blockEnd = current.kind { break }
            if case .variableEnd = current.kind { break }
            items.append(withCondExpr ? try parseExpression() : try parseOr())
        }
        return .tuple(items, loc)
    }

    mutating func parseExpression() throws -> Expr {
        depth += 1
        defer { depth -= 1 }
        guard depth < Parser.maxNesting else { throw unsupported("expression nesting deeper than \(Parser.maxNesting)", current.location) }
        var expr = try parseOr()
        while isName("if") {
            let loc = current.location
            _ = advance()
            let test = try parseOr()
            var otherwise: Expr? = nil
            if isName("else") {
                _ = advance()
                otherwise = try parseExpression()
            }
            expr = .conditional(test: test, then: expr, otherwise: otherwise, loc)
        }
        return expr
    }

    private mutating func parseOr() throws -> Expr {
        var lhs = try parseAnd()
        while isName("or") {
            let loc = advance().location
            lhs = .binary("or", lhs, try parseAnd(), loc)
        }
        return lhs
    }

    private mutating func parseAnd() throws -> Expr {
        var lhs = try parseNot()
        while isName("and") {
            let loc = advance().location
            lhs = .binary("and", lhs, try parseNot(), loc)
        }
        return lhs
    }

    private mutating func parseNot() throws -> Expr {
        if isName("not") {
            let loc = advance().location
            depth += 1
            defer { depth -= 1 }
            guard depth < Parser.maxNesting else { throw unsupported("expression nesting deeper than \(Parser.maxNesting)", loc) }
            return .unary("not", try parseNot(), loc)
        }
        return try parseCompare()
    }

    private mutating func parseCompare() throws -> Expr {
        let loc = current.location
        let lhs = try parseMath1()
        var ops: [(op: String, rhs: Expr)] = []
        while true {
            if case let .op(o) = current.kind, ["==", "!=", "<", "<=", ">", ">="].contains(o) {
                _ = advance()
                ops.append((o, try parseMath1()))
            } else if isName("in") {
                _ = advance()
                ops.append(("in", try parseMath1()))
            } else if isName("not"), case .name("in") = next.kind {
                _ = advance(); _ = advance()
                ops.append(("not in", try parseMath1()))
            } else {
                break
            }
        }
        return ops.isEmpty ? lhs : .compare(lhs, ops, loc)
    }

    private mutating func parseMath1() throws -> Expr {
        var lhs = try parseConcat()
        while case let .op(o) = current.kind, o == "+" || o == "-" {
            let loc = advance().location
            lhs = .binary(o, lhs, try parseConcat(), loc)
        }
        return lhs
    }

    private mutating func parseConcat() throws -> Expr {
        var lhs = try parseMath2()
        while isOp("~") {
            let loc = advance().location
            lhs = .binary("~", lhs, try parseMath2(), loc)
        }
        return lhs
    }

    private mutating func parseMath2() throws -> Expr {
        var lhs = try parsePow()
        while case let .op(o) = current.kind, ["*", "/", "//", "%"].contains(o) {
            let loc = advance().location
            lhs = .binary(o, lhs, try parsePow(), loc)
        }
        return lhs
    }

    private mutating func parsePow() throws -> Expr {
        var lhs = try parseUnary()
        while isOp("**") {
            let loc = advance().location
            lhs = .binary("**", lhs, try parseUnary(), loc)
        }
        return lhs
    }

    private mutating func parseUnary(withFilter: Bool = true) throws -> Expr {
        depth += 1
        defer { depth -= 1 }
        guard depth < Parser.maxNesting else { throw unsupported("expression nesting deeper than \(Parser.maxNesting)", current.location) }
        var node: Expr
        if case let .op(o) = current.kind, o == "-" || o == "+" {
            let loc = advance().location
            node = .unary(o, try parseUnary(withFilter: false), loc)
        } else {
            node = try parsePostfix(try parsePrimary())
        }
        if withFilter { node = try parseFilterExpr(node) }
        return node
    }

    private mutating func parsePrimary() throws -> Expr {
        let token = advance()
        let loc = token.location
        switch token.kind {
        case let .name(n):
            switch n {
            case "true", "True": return .literal(.bool(true), loc)
            case "false", "False": return .literal(.bool(false), loc)
            case "none", "None": return .literal(.none, loc)
            default: return .name(n, loc)
            }
        case let .string(s):
            // Adjacent string literals concatenate, as in Python.
            var value = s
            while case let .string(more) = current.kind {
                value += more
                _ = advance()
            }
            return .literal(.string(value), loc)
        case let .integer(i):
            return .literal(.int(i), loc)
        case let .float(d):
            return .literal(.double(d), loc)
        case .op("("):
            if isOp(")") {
                _ = advance()
                return .tuple([], loc)
            }
            let e = try parseExpression()
            if isOp(",") {
                var items = [e]
                while isOp(",") {
                    _ = advance()
                    if isOp(")") { break }
                    items.append(try parseExpression())
                }
                try expectOp(")")
                return .tuple(items, loc)
            }
            try expectOp(")")
            return e
        case .op("["):
            var items: [Expr] = []
            while !isOp("]") {
                if !items.isEmpty { try expectOp(",") }
                if isOp("]") { break }
                items.append(try parseExpression())
            }
            _ = advance()
            return .list(items, loc)
        case .op("{"):
            var pairs: [(key: Expr, value: Expr)] = []
            while !isOp("}") {
                if !pairs.isEmpty { try expectOp(",") }
                if isOp("}") { break }
                let k = try parseExpression()
                try expectOp(":")
                pairs.append((k, try parseExpression()))
            }
            _ = advance()
            return .dict(pairs, loc)
        default:
            throw error("unexpected \(describe(token))", token)
        }
    }

    private mutating func parsePostfix(_ base: Expr) throws -> Expr {
        var node = base
        while true {
            if isOp(".") {
                let loc = advance().location
                switch current.kind {
                case let .name(n):
                    _ = advance()
                    node = .attribute(node, n, loc)
                case let .integer(i):
                    _ = advance()
                    node = .item(node, .literal(.int(i), loc), loc)
                default:
                    throw error("expected an attribute name after '.'")
                }
            } else if isOp("[") {
                let loc = advance().location
                node = try parseSubscript(node, loc)
            } else if isOp("(") {
                let loc = current.location
                node = .call(node, try parseCallArguments(), loc)
            } else {
                return node
            }
        }
    }

    private mutating func parseSubscript(_ base: Expr, _ loc: SourceLocation) throws -> Expr {
        var parts: [Expr?] = [nil]
        var sawColon = false
        while !isOp("]") {
            if isOp(":") {
                _ = advance()
                sawColon = true
                parts.append(nil)
                guard parts.count <= 3 else { throw error("too many ':' in slice") }
            } else if isOp(",") {
                throw unsupported("tuple subscript", current.location)
            } else {
                guard parts[parts.count - 1] == nil else { throw error("expected ']' or ':'") }
                parts[parts.count - 1] = try parseExpression()
            }
        }
        _ = advance()
        if !sawColon {
            guard let index = parts[0] else { throw error("expected a subscript") }
            return .item(base, index, loc)
        }
        while parts.count < 3 { parts.append(nil) }
        return .slice(base, start: parts[0], stop: parts[1], step: parts[2], loc)
    }

    private mutating func parseCallArguments() throws -> CallArguments {
        try expectOp("(")
        var args = CallArguments()
        var first = true
        while !isOp(")") {
            if !first { try expectOp(",") }
            first = false
            if isOp(")") { break }
            if isOp("*") || isOp("**") { throw unsupported("*args/**kwargs in call", current.location) }
            if case let .name(n) = current.kind, case .op("=") = next.kind {
                _ = advance(); _ = advance()
                args.keyword.append(KeywordArgument(name: n, value: try parseExpression()))
            } else {
                guard args.keyword.isEmpty else { throw error("positional argument follows keyword argument") }
                args.positional.append(try parseExpression())
            }
        }
        _ = advance()
        return args
    }

    private func checkFilter(_ name: String, _ loc: SourceLocation) throws {
        guard Filters.supported.contains(name) else { throw unsupported("filter '\(name)'", loc) }
    }

    private mutating func parseFilterExpr(_ base: Expr) throws -> Expr {
        var node = base
        while true {
            if isOp("|") {
                _ = advance()
                let nameToken = current
                let name = try expectName()
                try checkFilter(name, nameToken.location)
                var args = CallArguments()
                if isOp("(") { args = try parseCallArguments() }
                node = .filter(node, name: name, args, nameToken.location)
            } else if isName("is") {
                _ = advance()
                var negated = false
                if isName("not") { _ = advance(); negated = true }
                let nameToken = current
                var name: String
                switch current.kind {
                case let .name(n): name = n
                case .op("=="): name = "=="
                case .op("!="): name = "!="
                case .op("<"): name = "<"
                case .op("<="): name = "<="
                case .op(">"): name = ">"
                case .op(">="): name = ">="
                default: throw error("expected a test name after 'is'")
                }
                _ = advance()
                // `is none`, `is true`… are names that the lexer sees as plain names; keep them as test names.
                name = name == "None" ? "none" : name == "True" ? "true" : name == "False" ? "false" : name
                guard Tests.supported.contains(name) else { throw unsupported("test '\(name)'", nameToken.location) }
                var args = CallArguments()
                if isOp("(") {
                    args = try parseCallArguments()
                } else {
                    switch current.kind {
                    case .name("else"), .name("or"), .name("and"), .name("if"), .name("in"), .name("not"), .name("is"):
                        break
                    case .name, .string, .integer, .float, .op("["), .op("{"):
                        args.positional = [try parsePostfix(try parsePrimary())]
                    default:
                        break
                    }
                }
                node = .test(node, name: name, args, negated: negated, nameToken.location)
            } else if isOp("(") {
                let loc = current.location
                node = .call(node, try parseCallArguments(), loc)
            } else {
                return node
            }
        }
    }
}
