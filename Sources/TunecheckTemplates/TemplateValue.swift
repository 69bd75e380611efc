import Foundation
import TunecheckJSON

/// A value inside a running template. Semantics follow the Python objects Jinja would see in transformers
/// (str, int, float, bool, None, list, dict, `jinja2.Undefined`, namespace, callables), because the rendered
/// prompt has to match transformers byte for byte.
public enum TemplateValue: Sendable {
    /// Jinja's default `Undefined`: renders as "", is falsy, iterates as empty, and raises when you look inside
    /// it. `hint` is the message Jinja would raise with ("'x' is undefined", "list object has no element 0").
    case undefined(hint: String?)
    case none
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case array([TemplateValue])
    case dictionary(TemplateDictionary)
    case namespace(TemplateNamespace)
    case callable(TemplateCallable)

    /// A plain undefined value with no particular origin.
    public static let undefinedValue = TemplateValue.undefined(hint: nil)

    public var isUndefined: Bool {
        if case .undefined = self { return true }
        return false
    }

    /// Python truthiness.
    public var isTruthy: Bool {
        switch self {
        case .undefined, .none: return false
        case let .bool(b): return b
        case let .int(i): return i != 0
        case let .double(d): return d != 0
        case let .string(s): return !s.isEmpty
        case let .array(a): return !a.isEmpty
        case let .dictionary(d): return !d.isEmpty
        case .namespace, .callable: return true
        }
    }

    /// The Python type name, used in error messages that mirror Python's.
    var typeName: String {
        switch self {
        case .undefined: return "Undefined"
        case .none: return "NoneType"
        case .bool: return "bool"
        case .int: return "int"
        case .double: return "float"
        case .string: return "str"
        case .array: return "list"
        case .dictionary: return "dict"
        case .namespace: return "Namespace"
        case .callable: return "function"
        }
    }

    /// Jinja's `object_type_repr`, used in undefined hints.
    var objectTypeRepr: String {
        if case .none = self { return "None" }
        return "\(typeName) object"
    }
}

extension TemplateValue: Equatable {
    /// Python `==`: numbers compare by value across int/float/bool, containers compare structurally.
    public static func == (lhs: TemplateValue, rhs: TemplateValue) -> Bool {
        switch (lhs, rhs) {
        case (.undefined, .undefined), (.none, .none): return true
        case let (.string(a), .string(b)): return a.unicodeScalars.elementsEqual(b.unicodeScalars)
        case let (.array(a), .array(b)): return a == b
        case let (.dictionary(a), .dictionary(b)): return a == b
        case let (.namespace(a), .namespace(b)): return a === b
        case let (.callable(a), .callable(b)): return a.name == b.name && a.identity == b.identity
        default:
            if let a = lhs.numericValue, let b = rhs.numericValue {
                switch (a, b) {
                case let (.int(x), .int(y)): return x == y
                default: return a.asDouble == b.asDouble
                }
            }
            return false
        }
    }

    enum Numeric {
        case int(Int)
        case double(Double)
        var asDouble: Double {
            switch self {
            case let .int(i): return Double(i)
            case let .double(d): return d
            }
        }
    }

    /// bool is an int subclass in Python, so it takes part in arithmetic and numeric comparison.
    var numericValue: Numeric? {
        switch self {
        case let .int(i): return .int(i)
        case let .double(d): return .double(d)
        case let .bool(b): return .int(b ? 1 : 0)
        default: return nil
        }
    }
}

extension TemplateValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByFloatLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByNilLiteral {
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int) { self = .int(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(arrayLiteral elements: TemplateValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, TemplateValue)...) {
        self = .dictionary(TemplateDictionary(elements))
    }
    public init(nilLiteral: ()) { self = .none }
}

extension TemplateValue {
    /// Parses JSON text into template values, keeping object key order.
    public init(jsonData: Data) throws {
        self = try JSONOrderedDecoder.decode(jsonData)
    }
}

/// A dictionary that keeps insertion order, like Python's dict (tojson and `items()` depend on it).
public struct TemplateDictionary: Sendable, Equatable {
    public private(set) var keys: [String] = []
    private var storage: [String: TemplateValue] = [:]

    public init() {}
    public init(_ pairs: [(String, TemplateValue)]) {
        for (k, v) in pairs { self[k] = v }
    }

    public var isEmpty: Bool { keys.isEmpty }
    public var count: Int { keys.count }

    public subscript(key: String) -> TemplateValue? {
        get { storage[key] }
        set {
            if let newValue {
                if storage.updateValue(newValue, forKey: key) == nil { keys.append(key) }
            } else if storage.removeValue(forKey: key) != nil {
                keys.removeAll { $0 == key }
            }
        }
    }

    public var pairs: [(key: String, value: TemplateValue)] { keys.map { ($0, storage[$0]!) } }

    public static func == (lhs: TemplateDictionary, rhs: TemplateDictionary) -> Bool {
        lhs.storage == rhs.storage // Python dict equality ignores order
    }
}

/// `namespace(...)`: the one mutable object templates may change (`{% set ns.x = ... %}`), so it is a class.
/// It is only touched by the single render call that created it.
public final class TemplateNamespace: @unchecked Sendable {
    var attributes: TemplateDictionary
    init(_ attributes: TemplateDictionary) { self.attributes = attributes }
}

/// A function a template can call: globals such as `raise_exception`, bound methods, macros.
public struct TemplateCallable: Sendable {
    public struct Arguments: Sendable {
        public var positional: [TemplateValue]
        public var keyword: [(String, TemplateValue)]

        /// The argument at `position`, or the keyword argument `name`.
        public func value(_ position: Int, _ name: String) -> TemplateValue? {
            if position < positional.count { return positional[position] }
            return keyword.first { $0.0 == name }?.1
        }
    }

    public let name: String
    let identity: UInt64
    let body: @Sendable (Arguments) throws -> TemplateValue

    public init(name: String, _ body: @escaping @Sendable (Arguments) throws -> TemplateValue) {
        self.name = name
        self.identity = TemplateCallable.nextIdentity()
        self.body = body
    }

    private static let counter = IdentityCounter()
    private static func nextIdentity() -> UInt64 { counter.next() }
}

private final class IdentityCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var value: UInt64 = 0
    func next() -> UInt64 {
        lock.lock(); defer { lock.unlock() }
        value += 1
        return value
    }
}

/// A failure inside a callable/filter; the interpreter attaches the template location.
struct CallFailure: Error {
    var message: String
    var unsupported = false
}

/// JSON text as template values, through the project's one JSON parser (which keeps object key order, as Python's
/// dict does and `tojson` / `items()` need).
enum JSONOrderedDecoder {
    static func decode(_ data: Data) throws -> TemplateValue {
        let root: JSONValue
        do { root = try JSONParser.parse([UInt8](data)) } catch { throw CallFailure(message: "invalid JSON: \(error)") }
        return convert(root)
    }

    static func convert(_ value: JSONValue) -> TemplateValue {
        switch value {
        case .null: return .none
        case .bool(let flag): return .bool(flag)
        case let .number(number, isInteger):
            if isInteger, let integer = Int(exactly: number) { return .int(integer) }
            return .double(number)
        case .string(let text): return .string(text)
        case .array(let items): return .array(items.map(convert))
        case .object(let object):
            var dictionary = TemplateDictionary()
            for (key, member) in zip(object.keys, object.values) { dictionary[key] = convert(member) }
            return .dictionary(dictionary)
        }
    }
}
