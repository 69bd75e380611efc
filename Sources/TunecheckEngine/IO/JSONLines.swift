import Foundation
import TunecheckJSON

/// Problems with a JSON Lines file, naming the file and the 1-based line.
public enum JSONLinesError: Error, LocalizedError, Equatable {
    case unreadable(path: String, reason: String)
    case invalidLine(path: String, line: Int, reason: String)
    case empty(path: String)

    public var errorDescription: String? {
        switch self {
        case let .unreadable(path, reason): return "\(path): cannot read: \(reason)"
        case let .invalidLine(path, line, reason): return "\(path):\(line): \(reason)"
        case let .empty(path): return "\(path): no records (the file is empty)"
        }
    }
}

/// One record of a JSONL file: the object and the line it came from.
public struct JSONLRecord: Sendable {
    public let line: Int
    /// The fields in file order, strings exactly as written.
    public var fields: JSONObject

    public init(line: Int, fields: JSONObject) {
        self.line = line
        self.fields = fields
    }

    public func string(_ key: String) -> String? { fields[key]?.string }

    /// An array of non-negative integers (token ids), or nil when the key is absent.
    public func integers(_ key: String, path: String) throws -> [Int]? {
        guard let value = fields[key], !value.isNull else { return nil }
        guard let list = value.array else {
            throw JSONLinesError.invalidLine(path: path, line: line, reason: "\"\(key)\" must be an array of token ids")
        }
        return try list.map { element in
            guard let id = element.int, id >= 0 else {
                throw JSONLinesError.invalidLine(path: path, line: line, reason: "\"\(key)\" must hold non-negative integer token ids")
            }
            return id
        }
    }
}

/// Reads and writes JSON Lines: one JSON object per line; blank lines are skipped.
public enum JSONLines {
    /// Largest file read whole (inputs are evalsets and prompt lists, not corpora).
    public static let maximumFileSize = BoundedFile.Limit.jsonLines

    public static func read(_ url: URL, allowEmpty: Bool = false) throws -> [JSONLRecord] {
        let path = url.path
        let data: Data
        do { data = try BoundedFile.map(url, limit: maximumFileSize) } catch {
            throw JSONLinesError.unreadable(path: path, reason: error.reason)
        }
        var records: [JSONLRecord] = []
        var lineNumber = 0
        var start = data.startIndex
        while start < data.endIndex {
            let end = data[start...].firstIndex(of: UInt8(ascii: "\n")) ?? data.endIndex
            lineNumber += 1
            var lineData = data[start..<end]
            if lineData.last == UInt8(ascii: "\r") { lineData = lineData.dropLast() }
            start = end < data.endIndex ? data.index(after: end) : end
            if lineData.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { continue }
            guard String(data: lineData, encoding: .utf8) != nil else {
                throw JSONLinesError.invalidLine(path: path, line: lineNumber, reason: "not valid UTF-8")
            }
            let object: JSONValue
            do { object = try JSONParser.parse([UInt8](lineData)) } catch {
                throw JSONLinesError.invalidLine(path: path, line: lineNumber, reason: "not valid JSON (\(error))")
            }
            guard let fields = object.object else {
                throw JSONLinesError.invalidLine(path: path, line: lineNumber, reason: "expected a JSON object, found \(kind(of: object))")
            }
            records.append(JSONLRecord(line: lineNumber, fields: fields))
        }
        if records.isEmpty && !allowEmpty { throw JSONLinesError.empty(path: path) }
        return records
    }

    /// Encodes objects as JSON Lines (keys in the order given) and writes them atomically.
    public static func write(_ objects: [JSONObject], to url: URL) throws {
        var output = Data()
        for object in objects {
            output.append(JSONWriter.data(.object(object)))
            output.append(UInt8(ascii: "\n"))
        }
        try AtomicWrite.write(output, to: url)
    }

    static func kind(of value: JSONValue) -> String {
        switch value {
        case .array: return "an array"
        case .string: return "a string"
        case .null: return "null"
        case .number: return "a number"
        case .bool: return "a boolean"
        case .object: return "an object"
        }
    }
}
