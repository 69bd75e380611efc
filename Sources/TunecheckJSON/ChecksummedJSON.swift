import Foundation

/// A JSON payload behind a one-line JSON header that records the payload's length (`bytes`) and SHA-256 (`sha256`):
/// the format of the base-result cache's entries and of sharded runs' part files, so a truncated, damaged or foreign
/// file is recognised before its payload is trusted.
///
///     {"format": …, <the caller's fields>, "bytes": N, "sha256": "…"}\n<payload JSON, N bytes>
public enum ChecksummedJSON {
    /// What is wrong with a body, measured against its header.
    public enum Problem: Equatable, Sendable {
        /// The header records no length or checksum.
        case noChecksum
        /// The body has `actual` bytes where the header says `expected`.
        case truncated(actual: Int, expected: Int)
        /// The lengths agree but the SHA-256 does not.
        case checksumMismatch
    }

    /// The file's bytes: `header` with the payload's length and checksum added, a newline, the payload.
    public static func encode(header: JSONObject, payload: JSONValue) -> Data {
        let body = JSONWriter.data(payload)
        var header = header
        header.set("bytes", .from(body.count))
        header.set("sha256", .string(SHA256.hex([UInt8](body))))
        return JSONWriter.data(.object(header)) + Data("\n".utf8) + body
    }

    /// The header line, parsed, and the bytes after it; nil when there is no parsable header line.
    public static func split(_ bytes: [UInt8]) -> (header: JSONObject, body: [UInt8])? {
        guard let newline = bytes.firstIndex(of: 0x0A), let header = try? JSONParser.parse(Array(bytes[..<newline])).object else {
            return nil
        }
        return (header, Array(bytes[(newline + 1)...]))
    }

    /// Whether `body` is the payload `header` describes (nil: it is).
    public static func problem(header: JSONObject, body: [UInt8]) -> Problem? {
        guard let length = header["bytes"]?.int, let checksum = header["sha256"]?.string else { return .noChecksum }
        guard body.count == length else { return .truncated(actual: body.count, expected: length) }
        return SHA256.hex(body) == checksum ? nil : .checksumMismatch
    }
}
