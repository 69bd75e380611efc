import Foundation
import TunecheckEngine
import TunecheckJSON

/// Reads one training-run layout. Each layout is one conformer in one file, listed in `RunReaders.all`; the first
/// that recognises a folder reads it.
public protocol RunReader {
    static var trainer: TrainingRun.Trainer { get }
    /// What the reader looks for, for the error when no reader recognises a folder.
    static var signature: String { get }
    static func recognises(_ folder: URL) -> Bool
    /// `logFile`: a console log given as `RUN_DIR:LOGFILE` (mlx_lm).
    static func read(_ folder: URL, path: String, logFile: URL?) throws -> TrainingRun
}

/// One registered layout: its reader's functions (a table of closures rather than `[any RunReader.Type]`, whose
/// opened-existential calls crash Swift 6.3's SIL generation here).
public struct RunLayout: Sendable {
    public let trainer: TrainingRun.Trainer
    public let signature: String
    let recognises: @Sendable (URL) -> Bool
    let read: @Sendable (URL, String, URL?) throws -> TrainingRun

    init<Reader: RunReader>(_ reader: Reader.Type) {
        trainer = Reader.trainer
        signature = Reader.signature
        recognises = { Reader.recognises($0) }
        read = { try Reader.read($0, path: $1, logFile: $2) }
    }
}

public enum RunReaders {
    /// The layouts, in the order they are tried (run.json first: a tunecheck run also has mlx_lm's files).
    public static let all: [RunLayout] = [RunLayout(TunecheckRunReader.self), RunLayout(HuggingFaceRunReader.self), RunLayout(MLXRunReader.self)]

    /// Reads `RUN_DIR` or `RUN_DIR:LOGFILE` (the suffix is split off only when `RUN_DIR` itself is not a folder).
    public static func read(_ argument: String) throws -> TrainingRun {
        var folderPath = argument
        var logFile: URL?
        if !isFolder(argument), let colon = argument.lastIndex(of: ":") {
            folderPath = String(argument[..<colon])
            let log = String(argument[argument.index(after: colon)...])
            guard FileManager.default.isReadableFile(atPath: log) else { throw RunError.missingFile(path: log, what: "log file") }
            logFile = URL(fileURLWithPath: log)
        }
        guard isFolder(folderPath) else { throw RunError.notAFolder(path: folderPath) }
        let folder = URL(fileURLWithPath: folderPath)
        for layout in all where layout.recognises(folder) {
            return try layout.read(folder, folderPath, logFile)
        }
        throw RunError.unknownLayout(path: folderPath, lookedFor: all.map(\.signature))
    }

    static func isFolder(_ path: String) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue
    }

    /// A JSON file's root object, or an error naming the file.
    static func object(at url: URL) throws -> JSONObject {
        let data: Data
        do { data = try BoundedFile.read(url, limit: BoundedFile.Limit.index) } catch {
            throw RunError.invalidFile(path: url.path, reason: error.reason)
        }
        do {
            guard let object = try JSONParser.parse(quotingNonFiniteNumbers(Array(data))).object else {
                throw RunError.invalidFile(path: url.path, reason: "expected a JSON object")
            }
            return object
        } catch let error as RunError { throw error } catch {
            throw RunError.invalidFile(path: url.path, reason: "\(error)")
        }
    }
}

/// Python's `json` writes non-finite floats as bare `NaN`, `Infinity`, `-Infinity` (not JSON), and a diverged run's
/// `trainer_state.json` holds exactly those. Outside strings they become the strings `"NaN"`, `"Infinity"`,
/// `"-Infinity"`, which `JSONObject.number` reads back as the non-finite values, so a NaN loss is seen, not lost.
func quotingNonFiniteNumbers(_ bytes: [UInt8]) -> [UInt8] {
    let tokens: [[UInt8]] = [Array("-Infinity".utf8), Array("Infinity".utf8), Array("NaN".utf8)]
    guard bytes.contains(UInt8(ascii: "N")) || bytes.contains(UInt8(ascii: "I")) else { return bytes }
    var out: [UInt8] = []
    out.reserveCapacity(bytes.count + 16)
    var index = 0, inString = false
    while index < bytes.count {
        let byte = bytes[index]
        if inString {
            out.append(byte)
            if byte == UInt8(ascii: "\\"), index + 1 < bytes.count {
                out.append(bytes[index + 1])
                index += 2
                continue
            }
            if byte == UInt8(ascii: "\"") { inString = false }
            index += 1
            continue
        }
        if byte == UInt8(ascii: "\"") { inString = true }
        if let token = tokens.first(where: { index + $0.count <= bytes.count && Array(bytes[index..<index + $0.count]) == $0 }) {
            out.append(UInt8(ascii: "\""))
            out.append(contentsOf: token)
            out.append(UInt8(ascii: "\""))
            index += token.count
            continue
        }
        out.append(byte)
        index += 1
    }
    return out
}

/// What can go wrong reading run folders (exit code 2).
public enum RunError: Error, LocalizedError, Equatable {
    case notAFolder(path: String)
    case missingFile(path: String, what: String)
    case unknownLayout(path: String, lookedFor: [String])
    case invalidFile(path: String, reason: String)
    case invalidLine(path: String, line: Int, reason: String)

    public var errorDescription: String? {
        switch self {
        case let .notAFolder(path): return "\(path): not a run folder (no such directory)"
        case let .missingFile(path, what): return "\(path): \(what) not found"
        case let .unknownLayout(path, lookedFor):
            return "\(path): not a training run folder I know; looked for " + lookedFor.joined(separator: "; or ")
        case let .invalidFile(path, reason): return "\(path): \(reason)"
        case let .invalidLine(path, line, reason): return "\(path):\(line): \(reason)"
        }
    }
}

extension JSONObject {
    /// A number, or a non-finite one quoted by `quotingNonFiniteNumbers`.
    func number(_ key: String) -> Double? {
        switch self[key]?.string {
        case "NaN": return .nan
        case "Infinity": return .infinity
        case "-Infinity": return -.infinity
        default: return self[key]?.double
        }
    }
    func text(_ key: String) -> String? { self[key]?.string }
}
