import Foundation
import TunecheckJSON

/// Runs the built `tunecheck` binary as a user would and captures what it prints.
public struct CLIRunner {
    public struct Result: Sendable {
        public var status: Int32
        public var standardOutput: String
        public var standardError: String

        public init(status: Int32, standardOutput: String, standardError: String) {
            self.status = status
            self.standardOutput = standardOutput
            self.standardError = standardError
        }
    }

    public static let defaultModel = TestPaths.repository("models/tiny-default")

    /// The `tunecheck` executable built next to the test bundle.
    public static let binary: URL = {
        if let override = ProcessInfo.processInfo.environment["TUNECHECK_BINARY"] { return URL(fileURLWithPath: override) }
        let besideRunner = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("tunecheck")
        if FileManager.default.isExecutableFile(atPath: besideRunner.path) { return besideRunner }
        return TestPaths.repository(".build/debug/tunecheck")
    }()

    @discardableResult
    public static func run(_ arguments: [String], environment: [String: String] = [:]) throws -> Result {
        let process = Process()
        process.executableURL = binary
        process.arguments = arguments
        var processEnvironment = ProcessInfo.processInfo.environment
        processEnvironment.merge(environment) { $1 }
        process.environment = processEnvironment
        // Standard error goes to a file and standard output is read to the end before waiting, so a chatty
        // child can never block on a full pipe.
        let errorFile = FileManager.default.temporaryDirectory.appendingPathComponent("tunecheck-stderr-\(UUID().uuidString)")
        _ = FileManager.default.createFile(atPath: errorFile.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: errorFile) }
        let errorHandle = try FileHandle(forWritingTo: errorFile)
        defer { try? errorHandle.close() }
        let outputPipe = Pipe()
        process.standardOutput = outputPipe
        process.standardError = errorHandle
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let standardOutput = outputPipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let standardError = (try? Data(contentsOf: errorFile)) ?? Data()
        return Result(status: process.terminationStatus,
                      standardOutput: String(decoding: standardOutput, as: UTF8.self),
                      standardError: String(decoding: standardError, as: UTF8.self))
    }

    public static func temporaryDirectory() throws -> URL { try TestPaths.temporaryDirectory("cli") }

    public static func writeLines(_ lines: [String], to url: URL) throws {
        try (lines.joined(separator: "\n") + "\n").write(to: url, atomically: true, encoding: .utf8)
    }

    /// Reads JSONL output with the project's exact parser (Foundation's JSONSerialization drops U+FEFF inside
    /// strings on Linux) and converts each line to Foundation values for convenient assertions.
    public static func readJSONLines(_ url: URL) throws -> [[String: Any]] {
        try String(contentsOf: url, encoding: .utf8).split(separator: "\n").map {
            (foundationValue(try JSONParser.parse(Array($0.utf8))) as? [String: Any]) ?? [:]
        }
    }

    public static func foundationValue(_ value: JSONValue) -> Any {
        switch value {
        case .null: return NSNull()
        case .bool(let flag): return flag
        case let .number(number, isInteger): return isInteger ? Int(number) as Any : number as Any
        case .string(let text): return text
        case .array(let elements): return elements.map(foundationValue)
        case .object(let object):
            var dictionary: [String: Any] = [:]
            for (key, element) in zip(object.keys, object.values) { dictionary[key] = foundationValue(element) }
            return dictionary
        }
    }
}
