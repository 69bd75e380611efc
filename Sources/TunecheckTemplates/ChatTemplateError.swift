import Foundation

/// Everything that can go wrong between a chat template's source and its rendered prompt.
///
/// Each case carries the template position (1-based line and column, counted in Unicode scalars) where it can
/// be known, because chat templates come from checkpoints we did not write and the person reading the error has
/// to find the offending spot in `tokenizer_config.json`.
public enum ChatTemplateError: Error, LocalizedError, Equatable, Sendable {
    /// The source does not parse as Jinja.
    case syntax(message: String, line: Int, column: Int)
    /// The source uses Jinja that this implementation deliberately does not support (a tag, filter, test, method
    /// or operator). Refusing is better than rendering something subtly different from transformers.
    case unsupported(feature: String, line: Int, column: Int)
    /// The template called `raise_exception(message)`; `message` is exactly what transformers would raise.
    case raised(message: String)
    /// A runtime failure that Jinja would also raise (undefined value used, type error, division by zero…).
    case runtime(message: String, line: Int, column: Int)
    /// A guard against runaway templates tripped (output size, loop iterations, recursion depth).
    case limitExceeded(limit: String, line: Int, column: Int)

    public var errorDescription: String? {
        switch self {
        case let .syntax(message, line, column):
            return "template syntax error at \(line):\(column): \(message)"
        case let .unsupported(feature, line, column):
            return "unsupported \(feature) at \(line):\(column)"
        case let .raised(message):
            return message
        case let .runtime(message, line, column):
            return "template error at \(line):\(column): \(message)"
        case let .limitExceeded(limit, line, column):
            return "template exceeded the \(limit) at \(line):\(column)"
        }
    }
}

/// A position in the template source, 1-based.
struct SourceLocation: Sendable, Equatable {
    var line: Int
    var column: Int
    static let unknown = SourceLocation(line: 0, column: 0)
}
