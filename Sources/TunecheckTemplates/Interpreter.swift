import Foundation

/// Limits that keep a hostile or broken template from hanging or exhausting memory.
struct RenderLimits: Sendable {
    var maxOutputBytes = 8 << 20
    var maxLoopIterations = 1_000_000
    var maxCallDepth = 100
}

/// Evaluation: walks the AST with Jinja's scoping rules (for-loop bodies and macros get their own scope, `if`
/// does not; `namespace` objects are the way to carry state out of a loop).
final class Interpreter: @unchecked Sendable {
    private var scopes: [[String: TemplateValue]]
    private var buffers: [String] = [""]
    private var outputBytes = 0
    private var iterations = 0
    private var callDepth = 0
    let limits: RenderLimits
    private let globals: [String: TemplateValue]

    init(context: [String: TemplateValue], globals: [String: TemplateValue], limits: RenderLimits) {
        self.scopes = [context]
        self.globals = globals
        self.limits = limits
    }

    enum Flow { case normal, breakLoop, continueLoop }

    func render(_ nodes: [Node]) throws -> String {
        _ = try execute(nodes)
        return buffers[0]
    }

    // MARK: - Errors

    func runtime(_ message: String, _ loc: SourceLocation) -> ChatTemplateError {
        .runtime(message: message, line: loc.line, column: loc.column)
    }

    func unsupported(_ feature: String, _ loc: SourceLocation) -> ChatTemplateError {
        .unsupported(feature: feature, line: loc.line, column: loc.column)
    }

    private func undefinedError(_ v: TemplateValue, _ what: String, _ loc: SourceLocation) -> ChatTemplateError {
        if case let .undefined(hint) = v { return runtime(hint ?? "\(what) is undefined", loc) }
        return runtime("\(what) is undefined", loc)
    }

    /// Runs a callable/filter body and turns its failure into a located template error.
    func located<T>(_ loc: SourceLocation, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let failure as CallFailure {
            throw failure.unsupported ? unsupported(failure.message, loc) : runtime(failure.message, loc)
        }
    }

    // MARK: - Output

    private func write(_ s: String, _ loc: SourceLocation) throws {
        outputBytes += s.utf8.count
        guard outputBytes <= limits.maxOutputBytes else {
            throw ChatTemplateError.limitExceeded(limit: "output size limit of \(limits.maxOutputBytes) bytes", line: loc.line, column: loc.column)
        }
        buffers[buffers.count - 1] += s
    }

    func checkSize(_ bytes: Int, _ loc: SourceLocation) throws {
        guard bytes <= limits.maxOutputBytes else {
            throw ChatTemplateError.limitExceeded(limit: "output size limit of \(limits.maxOutputBytes) bytes", line: loc.line, column: loc.column)
        }
    }

    private func countIteration(_ loc: SourceLocation) throws {
        iterations += 1
        guard iterations <= limits.maxLoopIterations else {
            throw ChatTemplateError.limitExceeded(limit: "loop iteration limit of \(limits.maxLoopIterations)", line: loc.line, column: loc.column)
        }
    }

    /// Runs `body` with output captured into a fresh buffer (macros, set blocks, filter blocks).
    private func capture(_ body: () throws -> Void) throws -> String {
        buffers.append("")
        defer { buffers.removeLast() }
        try body()
        return buffers[buffers.count - 1]
    }

    // MARK: - Variables

    func lookup(_ name: String) -> TemplateValue {
        for scope in scopes.reversed() {
            if let v = scope[name] { return v }
        }
        if let v = globals[name] { return v }
        return .undefined(hint: "'\(name)' is undefined")
    }

    private func assign(_ name: String, _ value: TemplateValue) {
        scopes[scopes.count - 1][name] = value
    }

    // MARK: - Statements

    private func execute(_ nodes: [Node]) throws -> Flow {
        for node in nodes {
            let flow = try execute(node)
            if flow != .normal { return flow }
        }
        return .normal
    }

    private func execute(_ node: Node) throws -> Flow {
        switch node {
        case let .text(s):
            try write(s, .unknown)
        case let .output(e):
            let v = try evaluate(e)
            try write(PythonFormatting.str(v), e.location)
        case let .ifBlock(branches, otherwise):
            for branch in branches where try evaluate(branch.test).isTruthy {
                return try execute(branch.body)
            }
            if let otherwise { return try execute(otherwise) }
        case let .forLoop(targets, iterable, filter, body, otherwise, loc):
            return try executeFor(targets, iterable, filter, body, otherwise, loc)
        case let .set(target, expr, loc):
            let value = try evaluate(expr)
            switch target {
            case let .names(names):
                if names.count == 1 {
                    assign(names[0], value)
                } else {
                    let items = try unpack(value, count: names.count, loc)
                    for (n, v) in zip(names, items) { assign(n, v) }
                }
            case let .attribute(object, attribute):
                guard case let .namespace(ns) = lookup(object) else {
                    throw runtime("cannot assign attribute on non-namespace object", loc)
                }
                guard !attribute.hasPrefix("_") else {
                    throw runtime("Chat templates cannot store underscore-prefixed attributes on a namespace, but got '\(attribute)'. Please rename the attribute.", loc)
                }
                ns.attributes[attribute] = value
            }
        case let .setBlock(name, body, _):
            var flow = Flow.normal
            let text = try capture { flow = try execute(body) }
            _ = flow
            assign(name, .string(text))
        case let .macro(def):
            assign(def.name, makeMacro(def))
        case let .callBlock(call, params, body, loc):
            guard case let .call(callee, args, callLoc) = call else { throw runtime("invalid call block", loc) }
            let caller = makeMacro(MacroDefinition(name: "caller", parameters: params, body: body, location: loc))
            let fn = try evaluate(callee)
            var arguments = try evaluateArguments(args)
            arguments.keyword.append(("caller", caller))
            let result = try invoke(fn, arguments, callLoc, name: describeCallee(callee))
            try write(PythonFormatting.str(result), loc)
        case let .filterBlock(filters, body, loc):
            var flow = Flow.normal
            var value = TemplateValue.string(try capture { flow = try execute(body) })
            _ = flow
            for f in filters {
                value = try applyFilter(f.name, value, f.arguments, f.location)
            }
            try write(PythonFormatting.str(value), loc)
        case .breakLoop:
            return .breakLoop
        case .continueLoop:
            return .continueLoop
        }
        return .normal
    }

    private func unpack(_ value: TemplateValue, count: Int, _ loc: SourceLocation) throws -> [TemplateValue] {
        let items = try iterate(value, loc)
        guard items.count == count else {
            throw runtime(items.count < count ? "not enough values to unpack (expected \(count), got \(items.count))"
                                              : "too many values to unpack (expected \(count))", loc)
        }
        return items
    }

    /// The items a Python `for` would see: list items, dict keys, string characters; undefined is empty.
    func iterate(_ value: TemplateValue, _ loc: SourceLocation) throws -> [TemplateValue] {
        switch value {
        case let .array(a): return a
        case let .dictionary(d): return d.keys.map { .string($0) }
        case let .string(s): return s.unicodeScalars.map { .string(String($0)) }
        case .undefined: return []
        default: throw runtime("'\(value.typeName)' object is not iterable", loc)
        }
    }

    private func executeFor(_ targets: [String], _ iterable: Expr, _ filter: Expr?, _ body: [Node],
                            _ otherwise: [Node]?, _ loc: SourceLocation) throws -> Flow {
        var items = try iterate(try evaluate(iterable), iterable.location)
        if let filter {
            // The inline `if` filters before `loop` is computed, so loop.length/last see the filtered list.
            var kept: [TemplateValue] = []
            for item in items {
                try countIteration(loc)
                scopes.append([:])
                defer { scopes.removeLast() }
                try bindTargets(targets, item, loc)
                if try evaluate(filter).isTruthy { kept.append(item) }
            }
            items = kept
        }
        if items.isEmpty {
            if let otherwise { return try execute(otherwise) }
            return .normal
        }
        for (i, item) in items.enumerated() {
            try countIteration(loc)
            scopes.append([:])
            defer { scopes.removeLast() }
            try bindTargets(targets, item, loc)
            var loop = TemplateDictionary()
            let n = items.count
            loop["index"] = .int(i + 1)
            loop["index0"] = .int(i)
            loop["revindex"] = .int(n - i)
            loop["revindex0"] = .int(n - i - 1)
            loop["first"] = .bool(i == 0)
            loop["last"] = .bool(i == n - 1)
            loop["length"] = .int(n)
            loop["depth"] = .int(1)
            loop["depth0"] = .int(0)
            loop["previtem"] = i > 0 ? items[i - 1] : .undefined(hint: "there is no previous item")
            loop["nextitem"] = i + 1 < n ? items[i + 1] : .undefined(hint: "there is no next item")
            let index = i
            loop["cycle"] = .callable(TemplateCallable(name: "cycle") { args in
                guard !args.positional.isEmpty else { throw CallFailure(message: "no items for cycling given") }
                return args.positional[index % args.positional.count]
            })
            assign("loop", .dictionary(loop))
            let flow = try execute(body)
            if flow == .breakLoop { break }
        }
        return .normal
    }

    private func bindTargets(_ targets: [String], _ item: TemplateValue, _ loc: SourceLocation) throws {
        if targets.count == 1 {
            assign(targets[0], item)
        } else {
            for (n, v) in zip(targets, try unpack(item, count: targets.count, loc)) { assign(n, v) }
        }
    }

    private func makeMacro(_ def: MacroDefinition) -> TemplateValue {
        .callable(TemplateCallable(name: def.name) { [unowned self] args in
            try self.runMacro(def, args)
        })
    }

    private func runMacro(_ def: MacroDefinition, _ args: TemplateCallable.Arguments) throws -> TemplateValue {
        callDepth += 1
        defer { callDepth -= 1 }
        guard callDepth <= limits.maxCallDepth else {
            throw ChatTemplateError.limitExceeded(limit: "macro recursion depth limit of \(limits.maxCallDepth)", line: def.location.line, column: def.location.column)
        }
        guard args.positional.count <= def.parameters.count else {
            throw runtime("macro '\(def.name)' takes not more than \(def.parameters.count) argument(s)", def.location)
        }
        // Macros see the template's top-level variables and their own arguments, not the caller's locals.
        let saved = scopes
        scopes = [scopes[0], [:]]
        defer { scopes = saved }
        for (i, p) in def.parameters.enumerated() {
            if i < args.positional.count {
                assign(p.name, args.positional[i])
            } else if let kw = args.keyword.first(where: { $0.0 == p.name }) {
                assign(p.name, kw.1)
            } else if let d = p.defaultValue {
                assign(p.name, try evaluate(d))
            } else {
                assign(p.name, .undefined(hint: "parameter '\(p.name)' was not provided"))
            }
        }
        for (k, v) in args.keyword where k == "caller" { assign("caller", v) }
        for (k, _) in args.keyword where k != "caller" && !def.parameters.contains(where: { $0.name == k }) {
            throw runtime("macro '\(def.name)' takes no keyword argument '\(k)'", def.location)
        }
        var flow = Flow.normal
        let text = try capture { flow = try execute(def.body) }
        _ = flow
        return .string(text)
    }

    // MARK: - Expressions

    func evaluate(_ expr: Expr) throws -> TemplateValue {
        switch expr {
        case let .literal(v, _):
            return v
        case let .name(n, _):
            return lookup(n)
        case let .list(items, _), let .tuple(items, _):
            return .array(try items.map(evaluate))
        case let .dict(pairs, loc):
            var d = TemplateDictionary()
            for p in pairs {
                guard case let .string(k) = try evaluate(p.key) else {
                    throw unsupported("non-string dictionary key", loc)
                }
                d[k] = try evaluate(p.value)
            }
            return .dictionary(d)
        case let .attribute(base, name, loc):
            let obj = try evaluate(base)
            return try located(loc) { try getAttribute(obj, name, loc) }
        case let .item(base, index, loc):
            let obj = try evaluate(base)
            let key = try evaluate(index)
            return try located(loc) { try getItem(obj, key, loc) }
        case let .slice(base, start, stop, step, loc):
            let obj = try evaluate(base)
            return try located(loc) {
                try slice(obj, start.map(evaluate), stop.map(evaluate), step.map(evaluate), loc)
            }
        case let .call(callee, args, loc):
            let fn = try evaluate(callee)
            let arguments = try evaluateArguments(args)
            return try invoke(fn, arguments, loc, name: describeCallee(callee))
        case let .filter(base, name, args, loc):
            return try applyFilter(name, try evaluate(base), args, loc)
        case let .test(base, name, args, negated, loc):
            let value = try evaluate(base)
            let arguments = try evaluateArguments(args)
            let result = try located(loc) { try Tests.apply(name, value, arguments.positional, self) }
            return .bool(result != negated)
        case let .unary(op, operand, loc):
            let v = try evaluate(operand)
            return try located(loc) { try Operators.unary(op, v) }
        case let .binary(op, lhs, rhs, loc):
            switch op {
            case "and":
                let l = try evaluate(lhs)
                return l.isTruthy ? try evaluate(rhs) : l
            case "or":
                let l = try evaluate(lhs)
                return l.isTruthy ? l : try evaluate(rhs)
            default:
                let l = try evaluate(lhs)
                let r = try evaluate(rhs)
                return try located(loc) { try Operators.binary(op, l, r, limits: limits) }
            }
        case let .compare(first, rest, loc):
            var lhs = try evaluate(first)
            for (op, rhsExpr) in rest {
                let rhs = try evaluate(rhsExpr)
                let ok = try located(loc) { try Operators.compare(op, lhs, rhs) }
                if !ok { return .bool(false) }
                lhs = rhs
            }
            return .bool(true)
        case let .conditional(test, then, otherwise, _):
            if try evaluate(test).isTruthy { return try evaluate(then) }
            if let otherwise { return try evaluate(otherwise) }
            return .undefined(hint: "the inline if-expression evaluated to false and no else section was defined.")
        }
    }

    private func describeCallee(_ e: Expr) -> String {
        switch e {
        case let .name(n, _): return n
        case let .attribute(_, n, _): return n
        default: return "object"
        }
    }

    func evaluateArguments(_ args: CallArguments) throws -> TemplateCallable.Arguments {
        TemplateCallable.Arguments(positional: try args.positional.map(evaluate),
                                   keyword: try args.keyword.map { ($0.name, try evaluate($0.value)) })
    }

    func invoke(_ fn: TemplateValue, _ args: TemplateCallable.Arguments, _ loc: SourceLocation, name: String) throws -> TemplateValue {
        switch fn {
        case let .callable(c):
            callDepth += 1
            defer { callDepth -= 1 }
            guard callDepth <= limits.maxCallDepth else {
                throw ChatTemplateError.limitExceeded(limit: "call depth limit of \(limits.maxCallDepth)", line: loc.line, column: loc.column)
            }
            return try located(loc) { try c.body(args) }
        case let .undefined(hint):
            if let hint, hint.hasPrefix("'\(name)' is undefined") {
                throw unsupported("function '\(name)' (not defined by transformers or this implementation)", loc)
            }
            throw runtime(hint ?? "'\(name)' is undefined", loc)
        default:
            throw runtime("'\(fn.typeName)' object is not callable", loc)
        }
    }

    // MARK: - Attribute and item access (jinja2.sandbox semantics)

    func getAttribute(_ obj: TemplateValue, _ name: String, _ loc: SourceLocation) throws -> TemplateValue {
        switch obj {
        case .undefined:
            throw undefinedError(obj, "value", loc)
        case let .dictionary(d):
            if let m = Methods.bind(obj, name) { return m }
            return d[name] ?? .undefined(hint: "'dict object' has no attribute '\(name)'")
        case let .namespace(ns):
            return ns.attributes[name] ?? .undefined(hint: "'Namespace object' has no attribute '\(name)'")
        default:
            if let m = Methods.bind(obj, name) { return m }
            if Methods.isUnsafe(obj, name) {
                return .undefined(hint: "access to attribute '\(name)' of '\(obj.typeName)' object is unsafe.")
            }
            return .undefined(hint: "'\(obj.objectTypeRepr)' has no attribute '\(name)'")
        }
    }

    func getItem(_ obj: TemplateValue, _ key: TemplateValue, _ loc: SourceLocation) throws -> TemplateValue {
        switch (obj, key) {
        case (.undefined, _):
            throw undefinedError(obj, "value", loc)
        case let (.dictionary(d), .string(k)):
            if let v = d[k] { return v }
            if let m = Methods.bind(obj, k) { return m }
            return .undefined(hint: "'dict object' has no attribute '\(k)'")
        case let (.namespace(ns), .string(k)):
            return ns.attributes[k] ?? .undefined(hint: "'Namespace object' has no attribute '\(k)'")
        case let (.array(a), _):
            if let i = key.numericValue, case let .int(index) = i, !(key.isDouble) {
                let idx = index < 0 ? a.count + index : index
                if idx >= 0, idx < a.count { return a[idx] }
                return .undefined(hint: "list object has no element \(PythonFormatting.repr(key))")
            }
            if case let .string(k) = key {
                return .undefined(hint: "'list object' has no attribute '\(k)'")
            }
            return .undefined(hint: "list object has no element \(PythonFormatting.repr(key))")
        case let (.string(s), _):
            if let i = key.numericValue, case let .int(index) = i, !(key.isDouble) {
                let scalars = Array(s.unicodeScalars)
                let idx = index < 0 ? scalars.count + index : index
                if idx >= 0, idx < scalars.count { return .string(String(scalars[idx])) }
                return .undefined(hint: "str object has no element \(index)")
            }
            if case let .string(k) = key { return try getAttribute(obj, k, loc) }
            return .undefined(hint: "str object has no element \(PythonFormatting.repr(key))")
        default:
            if case let .string(k) = key { return try getAttribute(obj, k, loc) }
            return .undefined(hint: "\(obj.objectTypeRepr) has no element \(PythonFormatting.repr(key))")
        }
    }

    private func slice(_ obj: TemplateValue, _ start: TemplateValue?, _ stop: TemplateValue?, _ step: TemplateValue?,
                       _ loc: SourceLocation) throws -> TemplateValue {
        func int(_ v: TemplateValue?) throws -> Int? {
            guard let v else { return nil }
            if case .none = v { return nil }
            guard let n = v.numericValue, case let .int(i) = n, !v.isDouble else {
                throw CallFailure(message: "slice indices must be integers or None")
            }
            return i
        }
        let st = try int(step) ?? 1
        guard st != 0 else { throw CallFailure(message: "slice step cannot be zero") }
        func indices(_ count: Int) throws -> [Int] {
            // Python's slice.indices().
            var lo = try int(start), hi = try int(stop)
            if st > 0 {
                lo = lo.map { $0 < 0 ? max($0 + count, 0) : min($0, count) } ?? 0
                hi = hi.map { $0 < 0 ? max($0 + count, 0) : min($0, count) } ?? count
                return lo! < hi! ? Array(stride(from: lo!, to: hi!, by: st)) : []
            } else {
                lo = lo.map { $0 < 0 ? max($0 + count, -1) : min($0, count - 1) } ?? count - 1
                hi = hi.map { $0 < 0 ? max($0 + count, -1) : min($0, count - 1) } ?? -1
                return lo! > hi! ? Array(stride(from: lo!, to: hi!, by: st)) : []
            }
        }
        switch obj {
        case let .array(a):
            return .array(try indices(a.count).map { a[$0] })
        case let .string(s):
            let scalars = Array(s.unicodeScalars)
            var out = String.UnicodeScalarView()
            for i in try indices(scalars.count) { out.append(scalars[i]) }
            return .string(String(out))
        case .undefined:
            throw undefinedError(obj, "value", loc)
        default:
            throw CallFailure(message: "'\(obj.typeName)' object is not subscriptable")
        }
    }

    // MARK: - Filters

    func applyFilter(_ name: String, _ value: TemplateValue, _ args: CallArguments, _ loc: SourceLocation) throws -> TemplateValue {
        let arguments = try evaluateArguments(args)
        return try located(loc) { try Filters.apply(name, value, arguments, self, loc) }
    }
}

extension TemplateValue {
    var isDouble: Bool {
        if case .double = self { return true }
        return false
    }
}
