import Foundation

/// Everything that can go wrong while loading or using a tokenizer.
///
/// Every loading error names the file it came from, so a user with a broken checkpoint folder
/// knows which file to look at.
public enum TokenizerError: Error, LocalizedError, Equatable {
    /// The file does not exist or could not be read.
    case unreadable(path: String, reason: String)
    /// The file is not valid JSON, or its top level is not an object.
    case invalidJSON(path: String, reason: String)
    /// A required field is absent.
    case missingField(path: String, field: String)
    /// A field is present but has the wrong type or an impossible value.
    case invalidField(path: String, field: String, reason: String)
    /// A component (`model`, `normalizer`, `pre_tokenizer`, `decoder`, `post_processor`) has a type
    /// or option this library does not implement.
    case unsupported(path: String, component: String, type: String)
    /// A BPE merge refers to a token missing from the vocabulary.
    case malformedMerge(path: String, index: Int, merge: String, reason: String)
    /// `decode` was given a negative id (ids past the vocabulary are skipped, as `tokenizers` does).
    case unknownTokenId(Int)

    public var errorDescription: String? {
        switch self {
        case let .unreadable(path, reason):
            return "Cannot read tokenizer file \(path): \(reason)"
        case let .invalidJSON(path, reason):
            return "Tokenizer file \(path) is not valid JSON: \(reason)"
        case let .missingField(path, field):
            return "Tokenizer file \(path) lacks the required field '\(field)'"
        case let .invalidField(path, field, reason):
            return "Tokenizer file \(path) has an invalid '\(field)': \(reason)"
        case let .unsupported(path, component, type):
            return "Tokenizer file \(path) uses an unsupported \(component) '\(type)'"
        case let .malformedMerge(path, index, merge, reason):
            return "Tokenizer file \(path) has a malformed merge #\(index) '\(merge)': \(reason)"
        case let .unknownTokenId(id):
            return "Token id \(id) is not in the tokenizer vocabulary"
        }
    }
}
