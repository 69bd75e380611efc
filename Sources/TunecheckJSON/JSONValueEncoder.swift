import Foundation

/// Encodes `Encodable` values into a `JSONValue` (keys in the order they are encoded), to be written with
/// `JSONWriter`: the writing half of the one JSON stack. Integers stay integers; non-finite doubles become null.
public struct JSONValueEncoder {
    public init() {}

    public func encode<T: Encodable>(_ value: T) throws -> JSONValue {
        let encoder = JSONValueEncoding(codingPath: [])
        try value.encode(to: encoder)
        return encoder.node.value
    }
}

/// A mutable tree the containers write into; nested containers hold references to their own node.
private final class Node {
    enum Kind { case empty, value(JSONValue), object([(String, Node)]), array([Node]) }
    var kind: Kind = .empty

    init() {}
    init(_ value: JSONValue) { kind = .value(value) }

    var value: JSONValue {
        switch kind {
        case .empty: return .object(JSONObject())
        case .value(let value): return value
        case .object(let members):
            var object = JSONObject()
            for (key, node) in members { object.set(key, node.value) }
            return .object(object)
        case .array(let nodes): return .array(nodes.map(\.value))
        }
    }

    func member(_ key: String) -> Node {
        if case .object(var members) = kind {
            if let existing = members.first(where: { $0.0 == key }) { return existing.1 }
            let node = Node()
            members.append((key, node))
            kind = .object(members)
            return node
        }
        let node = Node()
        kind = .object([(key, node)])
        return node
    }

    func append() -> Node {
        let node = Node()
        if case .array(let nodes) = kind { kind = .array(nodes + [node]) } else { kind = .array([node]) }
        return node
    }
}

private func box<T: Encodable>(_ value: T, into node: Node, path: [CodingKey]) throws {
    switch value {
    case let flag as Bool: node.kind = .value(.bool(flag))
    case let text as String: node.kind = .value(.string(text))
    case let number as Double: node.kind = .value(.number(number, isInteger: false))
    case let number as Float: node.kind = .value(.number(Double(number), isInteger: false))
    case let number as Int: node.kind = .value(.number(Double(number), isInteger: true))
    case let number as Int64: node.kind = .value(.number(Double(number), isInteger: true))
    case let number as Int32: node.kind = .value(.number(Double(number), isInteger: true))
    case let number as UInt64: node.kind = .value(.number(Double(number), isInteger: true))
    case let number as UInt32: node.kind = .value(.number(Double(number), isInteger: true))
    case let number as UInt: node.kind = .value(.number(Double(number), isInteger: true))
    case let json as JSONValue: node.kind = .value(json)
    default: try value.encode(to: JSONValueEncoding(codingPath: path, node: node))
    }
}

private struct AnyIndexKey: CodingKey {
    let intValue: Int?
    var stringValue: String { "\(intValue ?? 0)" }
    init(_ index: Int) { intValue = index }
    init?(stringValue: String) { return nil }
    init?(intValue: Int) { self.intValue = intValue }
}

private struct JSONValueEncoding: Encoder {
    let codingPath: [CodingKey]
    let node: Node
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    init(codingPath: [CodingKey], node: Node = Node()) {
        self.codingPath = codingPath
        self.node = node
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        if case .object = node.kind {} else { node.kind = .object([]) }
        return KeyedEncodingContainer(KeyedContainer<Key>(node: node, codingPath: codingPath))
    }

    func unkeyedContainer() -> UnkeyedEncodingContainer {
        if case .array = node.kind {} else { node.kind = .array([]) }
        return UnkeyedContainer(node: node, codingPath: codingPath)
    }

    func singleValueContainer() -> SingleValueEncodingContainer { SingleContainer(node: node, codingPath: codingPath) }
}

private struct KeyedContainer<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let node: Node
    let codingPath: [CodingKey]

    mutating func encodeNil(forKey key: Key) throws { node.member(key.stringValue).kind = .value(.null) }

    mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
        try box(value, into: node.member(key.stringValue), path: codingPath + [key])
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key) -> KeyedEncodingContainer<NestedKey> {
        JSONValueEncoding(codingPath: codingPath + [key], node: node.member(key.stringValue)).container(keyedBy: keyType)
    }

    mutating func nestedUnkeyedContainer(forKey key: Key) -> UnkeyedEncodingContainer {
        JSONValueEncoding(codingPath: codingPath + [key], node: node.member(key.stringValue)).unkeyedContainer()
    }

    mutating func superEncoder() -> Encoder { JSONValueEncoding(codingPath: codingPath, node: node.member("super")) }

    mutating func superEncoder(forKey key: Key) -> Encoder {
        JSONValueEncoding(codingPath: codingPath + [key], node: node.member(key.stringValue))
    }
}

private struct UnkeyedContainer: UnkeyedEncodingContainer {
    let node: Node
    let codingPath: [CodingKey]

    var count: Int { if case .array(let nodes) = node.kind { return nodes.count }; return 0 }

    mutating func encodeNil() throws { node.append().kind = .value(.null) }

    mutating func encode<T: Encodable>(_ value: T) throws {
        let path = codingPath + [AnyIndexKey(count)]
        try box(value, into: node.append(), path: path)
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
        let path = codingPath + [AnyIndexKey(count)]
        return JSONValueEncoding(codingPath: path, node: node.append()).container(keyedBy: keyType)
    }

    mutating func nestedUnkeyedContainer() -> UnkeyedEncodingContainer {
        let path = codingPath + [AnyIndexKey(count)]
        return JSONValueEncoding(codingPath: path, node: node.append()).unkeyedContainer()
    }

    mutating func superEncoder() -> Encoder {
        let path = codingPath + [AnyIndexKey(count)]
        return JSONValueEncoding(codingPath: path, node: node.append())
    }
}

private struct SingleContainer: SingleValueEncodingContainer {
    let node: Node
    let codingPath: [CodingKey]

    mutating func encodeNil() throws { node.kind = .value(.null) }
    mutating func encode<T: Encodable>(_ value: T) throws { try box(value, into: node, path: codingPath) }
}
