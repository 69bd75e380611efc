/// One line naming the key path and the problem of a settings file's decoding error (`"thresholds.preference.beta"
/// should be a number`), for the suite and training config loaders alike.
public enum DecodingErrorText {
    public static func describe(_ error: DecodingError) -> String {
        func keyPath(_ path: [CodingKey]) -> String {
            path.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
        }
        switch error {
        case let .keyNotFound(key, context):
            let parent = keyPath(context.codingPath)
            return "missing \"\(parent.isEmpty ? "" : parent + ".")\(key.stringValue)\""
        case let .typeMismatch(type, context):
            return "\"\(keyPath(context.codingPath))\" should be \(type == Double.self ? "a number" : type == Int.self ? "an integer" : type == String.self ? "a string" : type == Bool.self ? "true or false" : "\(type)")"
        case let .valueNotFound(_, context):
            return "\"\(keyPath(context.codingPath))\" is empty"
        case let .dataCorrupted(context):
            let path = keyPath(context.codingPath)
            return path.isEmpty ? context.debugDescription : "\(path): \(context.debugDescription)"
        @unknown default:
            return "\(error)"
        }
    }
}
