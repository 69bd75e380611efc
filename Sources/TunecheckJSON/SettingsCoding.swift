import Foundation

/// A coding key for any string: the one "any key" type of the project (settings with strict keys, configs whose
/// keys vary between schema versions).
public struct SettingsKey: CodingKey, Hashable, Sendable {
    public var stringValue: String
    public var intValue: Int? { nil }
    public init(_ string: String) { stringValue = string }
    public init?(stringValue: String) { self.stringValue = stringValue }
    public init?(intValue: Int) { return nil }

    /// The known key a typo most likely meant: the nearest by edit distance, when at most 2 edits away (and closer
    /// than the typo is long, so `ab` does not "mean" `xy`).
    static func closest(to typo: String, among known: Set<String>) -> String? {
        let typed = Array(typo.unicodeScalars)
        var best: (key: String, distance: Int)?
        for candidate in known.sorted() {
            let target = Array(candidate.unicodeScalars)
            // Levenshtein distance, one row at a time.
            var previous = Array(0...target.count)
            for (i, a) in typed.enumerated() {
                var current = [i + 1] + Array(repeating: 0, count: target.count)
                for (j, b) in target.enumerated() {
                    current[j + 1] = Swift.min(previous[j + 1] + 1, current[j] + 1, previous[j] + (a == b ? 0 : 1))
                }
                previous = current
            }
            let distance = previous[target.count]
            if distance < (best?.distance ?? Int.max) { best = (candidate, distance) }
        }
        guard let best, best.distance <= 2, best.distance < typed.count else { return nil }
        return best.key
    }
}

/// A settings struct described by one table of fields, from which both decoding (YAML through Yams, JSON through
/// `JSONValueDecoder`, or any `Decoder`) and encoding (the same keys, in table order) come.
///
/// Decoding starts from `init()` (so the documented defaults live on the properties), rejects keys the table does
/// not list with "unknown key 'x' (known: …)", and reports type errors at the key path, as `DecodingError`s.
///
/// To convert a struct: make its defaults property initialisers, give it `init()`, conform it to
/// `SettingsCodable` and list its fields:
///
/// ```swift
/// public struct GenerationSettings: SettingsCodable {
///     public var maxTokens: Int = 64
///     public var minMargin: Double?
///     public var model: String = ""
///     public init() {}
///     public static var fields: [SettingsField<Self>] {
///         [.field("max_tokens", \.maxTokens),   // absent or null: keeps the default
///          .field("min_margin", \.minMargin),   // optional: absent keeps the default, null sets nil
///          .required("model", \.model)]         // absent: `missing "model"`
///     }
/// }
/// ```
public protocol SettingsCodable: Codable {
    /// Every setting at its documented default.
    init()
    /// The keys, in the order they are encoded.
    static var fields: [SettingsField<Self>] { get }
    /// Keys that are accepted and ignored (e.g. another tool's runtime keys), so its files load as they are.
    static var ignoredKeys: [String] { get }
    /// False for files written by other tools (config.json) whose extra keys are not mistakes.
    static var rejectsUnknownKeys: Bool { get }
}

extension SettingsCodable {
    public static var ignoredKeys: [String] { [] }
    public static var rejectsUnknownKeys: Bool { true }

    public init(from decoder: Decoder) throws {
        self.init()
        let fields = Self.fields
        let container = try decoder.container(keyedBy: SettingsKey.self)
        if Self.rejectsUnknownKeys {
            let known = Set(fields.map(\.key))
            let ignored = Set(Self.ignoredKeys)
            for key in container.allKeys where !known.contains(key.stringValue) && !ignored.contains(key.stringValue) {
                let suggestion = SettingsKey.closest(to: key.stringValue, among: known).map { "did you mean '\($0)'? " } ?? ""
                throw DecodingError.dataCorruptedError(
                    forKey: key, in: container,
                    debugDescription: "unknown key '\(key.stringValue)' (\(suggestion)known: \(known.sorted().joined(separator: ", ")))")
            }
        }
        for field in fields { try field.decode(&self, container) }
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: SettingsKey.self)
        let defaults = Self()
        for field in Self.fields { try field.encode(self, defaults, &container) }
    }
}

/// One row of a `SettingsCodable` table: a key, the property it fills, and how absence and null are treated.
public struct SettingsField<Root> {
    public let key: String
    let decode: (inout Root, KeyedDecodingContainer<SettingsKey>) throws -> Void
    /// Writes the value of the first root; the second holds the defaults.
    let encode: (Root, Root, inout KeyedEncodingContainer<SettingsKey>) throws -> Void

    /// A setting with a default: absent or null keeps the default.
    public static func field<Value: Codable>(_ key: String, _ path: WritableKeyPath<Root, Value>) -> Self {
        let codingKey = SettingsKey(key)
        return Self(key: key, decode: { root, container in
            if let value = try container.decodeIfPresent(Value.self, forKey: codingKey) { root[keyPath: path] = value }
        }, encode: { root, _, container in
            try container.encode(root[keyPath: path], forKey: codingKey)
        })
    }

    /// An optional setting: absent keeps the default (which may be a value), an explicit null turns it off.
    /// Encoded when it has a value, and as null when it is off but on by default (so the file reads back the same).
    public static func field<Value: Codable>(_ key: String, _ path: WritableKeyPath<Root, Value?>) -> Self {
        let codingKey = SettingsKey(key)
        return Self(key: key, decode: { root, container in
            if container.contains(codingKey) { root[keyPath: path] = try container.decodeIfPresent(Value.self, forKey: codingKey) }
        }, encode: { root, defaults, container in
            if let value = root[keyPath: path] {
                try container.encode(value, forKey: codingKey)
            } else if defaults[keyPath: path] != nil {
                try container.encodeNil(forKey: codingKey)
            }
        })
    }

    /// A setting that must be given: absent reads as `missing "key"`.
    public static func required<Value: Codable>(_ key: String, _ path: WritableKeyPath<Root, Value>) -> Self {
        let codingKey = SettingsKey(key)
        return Self(key: key, decode: { root, container in
            root[keyPath: path] = try container.decode(Value.self, forKey: codingKey)
        }, encode: { root, _, container in
            try container.encode(root[keyPath: path], forKey: codingKey)
        })
    }
}

/// Why a stored value does not convert to its typed setting (a `Codable` value type throws it from its parser and
/// turns it into a `DecodingError.dataCorrupted` at its path).
public struct SettingsValueError: Error, Sendable {
    public let reason: String
    public init(_ reason: String) { self.reason = reason }
}

/// A closed set of names read from settings files with an error that lists the allowed values (instead of
/// Foundation's "Cannot initialize X from invalid String value"). Conform a `String`-backed, `CaseIterable` enum.
public protocol SettingsEnum: RawRepresentable, CaseIterable, Codable, Sendable where RawValue == String {}

extension SettingsEnum {
    public init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        let name = try container.decode(String.self)
        guard let value = Self(rawValue: name) else {
            throw DecodingError.dataCorruptedError(
                in: container, debugDescription: "unknown value '\(name)' (\(Self.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        self = value
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}

extension DecodingError {
    /// A one-line message for a settings file: `"generation.max_tokens" should be an integer`,
    /// `missing "model"`, `lora_parameters.alpha: unknown key 'alpha' (known: …)`.
    public var settingsMessage: String {
        func keyPath(_ path: [CodingKey]) -> String {
            var text = ""
            for key in path {
                if let index = key.intValue { text += "[\(index)]" } else { text += (text.isEmpty ? "" : ".") + key.stringValue }
            }
            return text
        }
        switch self {
        case let .keyNotFound(key, context):
            let parent = keyPath(context.codingPath)
            return "missing \"\(parent.isEmpty ? "" : parent + ".")\(key.stringValue)\""
        case let .typeMismatch(type, context):
            let expected: String
            switch type {
            case is Double.Type, is Float.Type: expected = "a number"
            case is Int.Type, is UInt64.Type, is Int64.Type: expected = "an integer"
            case is String.Type: expected = "a string"
            case is Bool.Type: expected = "true or false"
            case is [Any].Type: expected = "a list"
            case is [String: Any].Type: expected = "a mapping"
            default: expected = "\(type)"
            }
            return "\"\(keyPath(context.codingPath))\" should be \(expected)"
        case let .valueNotFound(_, context):
            return "\"\(keyPath(context.codingPath))\" is empty"
        case let .dataCorrupted(context):
            let path = keyPath(context.codingPath)
            return path.isEmpty ? context.debugDescription : "\(path): \(context.debugDescription)"
        @unknown default:
            return "\(self)"
        }
    }
}
