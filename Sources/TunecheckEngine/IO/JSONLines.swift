import Foundation

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
public struct JSONLRecord: @unchecked Sendable {
    public let line: Int
    public var fields: [String: Any]

    public func string(_ key: String) -> String? { fields[key] as? String }

    /// An array of non-negative integers (token ids), or nil when the key is absent.
    public func integers(_ key: String, path: String) throws -> [Int]? {
        guard let value = fields[key] else { return nil }
        guard let list = value as? [Any] else {
            throw JSONLinesError.invalidLine(path: path, line: line, reason: "\"\(key)\" must be an array of token ids")
        }
        return try list.map { element in
            guard let id = SafeTensorsFile.exactInteger(element), id >= 0 else {
                throw JSONLinesError.invalidLine(path: path, line: line, reason: "\"\(key)\" must hold non-negative integer token ids")
            }
            return id
        }
    }
}

/// Reads and writes JSON Lines: one JSON object per line; blank lines are skipped.
public enum JSONLines {
    /// Largest file read whole (inputs are evalsets and prompt lists, not corpora).
    public static let maximumFileSize = 1 << 30

    public static func read(_ url: URL, allowEmpty: Bool = false) throws -> [JSONLRecord] {
        let path = url.path
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw JSONLinesError.unreadable(path: path, reason: "no such file")
        }
        guard !isDirectory.boolValue else { throw JSONLinesError.unreadable(path: path, reason: "is a directory, expected a .jsonl file") }
        let data: Data
        do { data = try Data(contentsOf: url, options: .mappedIfSafe) } catch {
            throw JSONLinesError.unreadable(path: path, reason: AtomicWrite.describe(error))
        }
        guard data.count <= maximumFileSize else {
            throw JSONLinesError.unreadable(path: path, reason: "file is larger than \(maximumFileSize) bytes")
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
            let object: Any
            do { object = try JSONSerialization.jsonObject(with: Data(lineData), options: [.fragmentsAllowed]) } catch {
                throw JSONLinesError.invalidLine(path: path, line: lineNumber, reason: "not valid JSON")
            }
            guard let fields = object as? [String: Any] else {
                throw JSONLinesError.invalidLine(path: path, line: lineNumber, reason: "expected a JSON object, found \(kind(of: object))")
            }
            records.append(JSONLRecord(line: lineNumber, fields: fields))
        }
        if records.isEmpty && !allowEmpty { throw JSONLinesError.empty(path: path) }
        return records
    }

    /// Encodes objects as JSON Lines (keys sorted, so output is stable) and writes them atomically.
    public static func write(_ objects: [[String: Any]], to url: URL) throws {
        var output = Data()
        for object in objects {
            output.append(try line(object))
            output.append(UInt8(ascii: "\n"))
        }
        try AtomicWrite.write(output, to: url)
    }

    public static func line(_ object: [String: Any]) throws -> Data {
        try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
    }

    static func kind(of object: Any) -> String {
        switch object {
        case is [Any]: return "an array"
        case is String: return "a string"
        case is NSNull: return "null"
        case is NSNumber: return "a number"
        default: return "\(type(of: object))"
        }
    }
}
