import Foundation
import TunecheckJSON

/// A read-only view of one JSON object, carrying the file path and the key path so every accessor
/// can throw an error that says where the problem is.
///
/// `tokenizer.json` has many optional, loosely typed fields (`merges` as strings or pairs, tokens as
/// strings or `{"content": ...}` objects), which a `Codable` model would need many custom
/// initialisers for; a small typed accessor layer keeps each stage's parser short instead.
struct JSONNode {
    let object: JSONObject
    let path: String
    let keyPath: String

    static func load(fileAt url: URL) throws -> JSONNode {
        let data: Data
        do {
            data = try BoundedFile.read(url, limit: BoundedFile.Limit.tokenizer)
        } catch {
            throw TokenizerError.unreadable(path: url.path, reason: error.reason)
        }
        let parsed: JSONValue
        do {
            parsed = try JSONParser.parse([UInt8](data))
        } catch {
            throw TokenizerError.invalidJSON(path: url.path, reason: "\(error)")
        }
        guard let object = parsed.object else {
            throw TokenizerError.invalidJSON(path: url.path, reason: "the top level is not an object")
        }
        return JSONNode(object: object, path: url.path, keyPath: "")
    }

    func qualified(_ key: String) -> String { keyPath.isEmpty ? key : "\(keyPath).\(key)" }

    /// The raw value, with JSON `null` reported as absent.
    func value(_ key: String) -> JSONValue? {
        guard let value = object[key], !value.isNull else { return nil }
        return value
    }

    func has(_ key: String) -> Bool { value(key) != nil }

    func invalid(_ key: String, _ reason: String) -> TokenizerError {
        .invalidField(path: path, field: qualified(key), reason: reason)
    }

    func string(_ key: String) throws -> String {
        guard let raw = value(key) else { throw TokenizerError.missingField(path: path, field: qualified(key)) }
        guard let string = raw.string else { throw invalid(key, "expected a string") }
        return string
    }

    func optionalString(_ key: String) throws -> String? {
        guard let raw = value(key) else { return nil }
        guard let string = raw.string else { throw invalid(key, "expected a string") }
        return string
    }

    func bool(_ key: String, default defaultValue: Bool) throws -> Bool {
        guard let raw = value(key) else { return defaultValue }
        guard let flag = raw.bool else { throw invalid(key, "expected true or false") }
        return flag
    }

    func optionalBool(_ key: String) throws -> Bool? {
        guard let raw = value(key) else { return nil }
        guard let flag = raw.bool else { throw invalid(key, "expected true or false") }
        return flag
    }

    func int(_ key: String, default defaultValue: Int) throws -> Int {
        guard let raw = value(key) else { return defaultValue }
        guard let number = raw.int else { throw invalid(key, "expected an integer") }
        return number
    }

    func object(_ key: String) throws -> JSONNode {
        guard let raw = value(key) else { throw TokenizerError.missingField(path: path, field: qualified(key)) }
        guard let child = raw.object else { throw invalid(key, "expected an object") }
        return JSONNode(object: child, path: path, keyPath: qualified(key))
    }

    func optionalObject(_ key: String) throws -> JSONNode? {
        guard has(key) else { return nil }
        return try object(key)
    }

    func array(_ key: String) throws -> [JSONValue] {
        guard let raw = value(key) else { throw TokenizerError.missingField(path: path, field: qualified(key)) }
        guard let list = raw.array else { throw invalid(key, "expected an array") }
        return list
    }

    /// The elements of an array of objects, each as a node.
    func objects(_ key: String) throws -> [JSONNode] {
        try array(key).enumerated().map { index, element in
            guard let child = element.object else {
                throw invalid("\(key)[\(index)]", "expected an object")
            }
            return JSONNode(object: child, path: path, keyPath: qualified("\(key)[\(index)]"))
        }
    }

    /// A component's `type` field, e.g. `"BPE"` or `"Sequence"`.
    func type() throws -> String { try string("type") }

    /// A `{"String": "..."}` or `{"Regex": "..."}` pattern, as used by `Split`, `Replace`.
    func pattern(_ key: String) throws -> TextPattern {
        let node = try object(key)
        if let literal = try node.optionalString("String") { return .literal(literal) }
        if let regex = try node.optionalString("Regex") { return .regex(regex) }
        throw invalid(key, "expected {\"String\": ...} or {\"Regex\": ...}")
    }
}

/// The two pattern forms `tokenizers` serialises.
enum TextPattern: Equatable {
    case literal(String)
    case regex(String)
}
