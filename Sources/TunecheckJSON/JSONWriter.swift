import Foundation

/// Serialises `JSONValue`s as compact JSON. Keys keep their order, strings are written byte for byte as UTF-8
/// (only `"`, `\` and control characters are escaped), integers print as integers and other numbers in Swift's
/// shortest round-trip form. Non-finite numbers cannot be represented in JSON and become `null`.
public enum JSONWriter {
    public static func data(_ value: JSONValue) -> Data {
        var output: [UInt8] = []
        output.reserveCapacity(256)
        write(value, into: &output)
        return Data(output)
    }

    public static func string(_ value: JSONValue) -> String {
        String(decoding: data(value), as: UTF8.self)
    }

    /// Indented JSON laid out as Python's `json.dump(value, indent=2)` (`"key": value`, one member per line, empty
    /// containers as `{}` / `[]`), for files people read or that transformers writes that way (shard indexes).
    public static func prettyData(_ value: JSONValue, indent: Int = 2) -> Data {
        var output: [UInt8] = []
        writePretty(value, depth: 0, indent: indent, into: &output)
        return Data(output)
    }

    static func writePretty(_ value: JSONValue, depth: Int, indent: Int, into output: inout [UInt8]) {
        func newline(_ level: Int) {
            output.append(0x0A)
            output += [UInt8](repeating: UInt8(ascii: " "), count: level * indent)
        }
        switch value {
        case .array(let elements) where !elements.isEmpty:
            output.append(UInt8(ascii: "["))
            for (index, element) in elements.enumerated() {
                if index > 0 { output.append(UInt8(ascii: ",")) }
                newline(depth + 1)
                writePretty(element, depth: depth + 1, indent: indent, into: &output)
            }
            newline(depth)
            output.append(UInt8(ascii: "]"))
        case .object(let object) where !object.keys.isEmpty:
            output.append(UInt8(ascii: "{"))
            for index in object.keys.indices {
                if index > 0 { output.append(UInt8(ascii: ",")) }
                newline(depth + 1)
                writeString(object.keys[index], into: &output)
                output += [UInt8(ascii: ":"), UInt8(ascii: " ")]
                writePretty(object.values[index], depth: depth + 1, indent: indent, into: &output)
            }
            newline(depth)
            output.append(UInt8(ascii: "}"))
        default:
            write(value, into: &output)
        }
    }

    static func write(_ value: JSONValue, into output: inout [UInt8]) {
        switch value {
        case .null: output += Array("null".utf8)
        case .bool(let flag): output += Array((flag ? "true" : "false").utf8)
        case let .number(number, isInteger):
            if !number.isFinite {
                output += Array("null".utf8)
            } else if isInteger, abs(number) < 9.0e15 {
                output += Array(String(Int(number)).utf8)
            } else {
                output += Array("\(number)".utf8)
            }
        case .string(let text): writeString(text, into: &output)
        case .array(let elements):
            output.append(UInt8(ascii: "["))
            for (index, element) in elements.enumerated() {
                if index > 0 { output.append(UInt8(ascii: ",")) }
                write(element, into: &output)
            }
            output.append(UInt8(ascii: "]"))
        case .object(let object):
            output.append(UInt8(ascii: "{"))
            for index in object.keys.indices {
                if index > 0 { output.append(UInt8(ascii: ",")) }
                writeString(object.keys[index], into: &output)
                output.append(UInt8(ascii: ":"))
                write(object.values[index], into: &output)
            }
            output.append(UInt8(ascii: "}"))
        }
    }

    static func writeString(_ text: String, into output: inout [UInt8]) {
        output.append(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): output += [UInt8(ascii: "\\"), UInt8(ascii: "\"")]
            case UInt8(ascii: "\\"): output += [UInt8(ascii: "\\"), UInt8(ascii: "\\")]
            case 0x0A: output += [UInt8(ascii: "\\"), UInt8(ascii: "n")]
            case 0x0D: output += [UInt8(ascii: "\\"), UInt8(ascii: "r")]
            case 0x09: output += [UInt8(ascii: "\\"), UInt8(ascii: "t")]
            case 0..<0x20:
                output += Array(String(format: "\\u%04x", byte).utf8)
            default: output.append(byte)
            }
        }
        output.append(UInt8(ascii: "\""))
    }
}

extension JSONValue {
    /// Builds values from Swift literals and common types.
    public static func from(_ value: Int) -> JSONValue { .number(Double(value), isInteger: true) }
    public static func from(_ value: Double) -> JSONValue { .number(value, isInteger: false) }
    public static func from(_ values: [Int]) -> JSONValue { .array(values.map { .from($0) }) }
    public static func from(_ values: [Double]) -> JSONValue { .array(values.map { .from($0) }) }
    public static func from(_ value: String) -> JSONValue { .string(value) }
}

extension JSONObject {
    /// Sets `key`, replacing an existing value in place (keeping its position) or appending.
    public mutating func set(_ key: String, _ value: JSONValue) {
        if let index = keys.firstIndex(of: key) {
            values[index] = value
        } else {
            keys.append(key)
            values.append(value)
        }
    }

    public init(_ pairs: KeyValuePairs<String, JSONValue>) {
        self.init()
        for (key, value) in pairs { set(key, value) }
    }
}
