import Foundation

/// The parsed form of a template. Expressions and statements carry their source location so runtime errors can
/// point at the template text.

struct KeywordArgument: Sendable {
    var name: String
    var value: Expr
}

struct CallArguments: Sendable {
    var positional: [Expr] = []
    var keyword: [KeywordArgument] = []
}

indirect enum Expr: Sendable {
    case literal(TemplateValue, SourceLocation)
    case name(String, SourceLocation)
    case list([Expr], SourceLocation)
    case tuple([Expr], SourceLocation)
    case dict([(key: Expr, value: Expr)], SourceLocation)
    case attribute(Expr, String, SourceLocation)
    case item(Expr, Expr, SourceLocation)
    case slice(Expr, start: Expr?, stop: Expr?, step: Expr?, SourceLocation)
    case call(Expr, CallArguments, SourceLocation)
    case filter(Expr, name: String, CallArguments, SourceLocation)
    case test(Expr, name: String, CallArguments, negated: Bool, SourceLocation)
    case unary(String, Expr, SourceLocation)
    case binary(String, Expr, Expr, SourceLocation)
    case compare(Expr, [(op: String, rhs: Expr)], SourceLocation)
    case conditional(test: Expr, then: Expr, otherwise: Expr?, SourceLocation)

    var location: SourceLocation {
        switch self {
        case let .literal(_, l), let .name(_, l), let .list(_, l), let .tuple(_, l), let .dict(_, l),
             let .attribute(_, _, l), let .item(_, _, l), let .slice(_, _, _, _, l), let .call(_, _, l),
             let .filter(_, _, _, l), let .test(_, _, _, _, l), let .unary(_, _, l), let .binary(_, _, _, l),
             let .compare(_, _, l), let .conditional(_, _, _, l):
            return l
        }
    }
}

struct MacroParameter: Sendable {
    var name: String
    var defaultValue: Expr?
}

struct MacroDefinition: Sendable {
    var name: String
    var parameters: [MacroParameter]
    var body: [Node]
    var location: SourceLocation
}

struct FilterApplication: Sendable {
    var name: String
    var arguments: CallArguments
    var location: SourceLocation
}

enum SetTarget: Sendable {
    case names([String])
    case attribute(object: String, attribute: String)
}

indirect enum Node: Sendable {
    case text(String)
    case output(Expr)
    case ifBlock(branches: [(test: Expr, body: [Node])], otherwise: [Node]?)
    case forLoop(targets: [String], iterable: Expr, filter: Expr?, body: [Node], otherwise: [Node]?, SourceLocation)
    case set(SetTarget, Expr, SourceLocation)
    case setBlock(name: String, body: [Node], SourceLocation)
    case macro(MacroDefinition)
    case callBlock(call: Expr, callerParameters: [MacroParameter], body: [Node], SourceLocation)
    case filterBlock([FilterApplication], body: [Node], SourceLocation)
    case breakLoop(SourceLocation)
    case continueLoop(SourceLocation)
}
