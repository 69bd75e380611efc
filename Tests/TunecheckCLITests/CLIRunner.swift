import Foundation
import TunecheckJSON

/// Runs the built `tunecheck` binary as a user would and captures what it prints.
struct CLIRunner {
    struct Result {
        var status: Int32
        var standardOutput: String
        var standardError: String
    }

    static let repositoryRoot: URL = {
        var url = URL(fileURLWithPath: #filePath)
        while url.path != "/" {
            url.deleteLastPathComponent()
            if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) { return url }
        }
        return URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
    }()

    static let sharedFixtures: URL = {
        if let override = ProcessInfo.processInfo.environment["TUNECHECK_SHARED_FIXTURES"] { return URL(fileURLWithPath: override) }
        return repositoryRoot.deletingLastPathComponent().appendingPathComponent("shared/fixtures")
    }()

    static var sharedAvailable: Bool {
        FileManager.default.fileExists(atPath: sharedFixtures.appendingPathComponent("README.md").path)
    }

    static let defaultModel = repositoryRoot.appendingPathComponent("models/tiny-default")

    /// The `tunecheck` executable built next to the test bundle.
    static let binary: URL = {
        if let override = ProcessInfo.processInfo.environment["TUNECHECK_BINARY"] { return URL(fileURLWithPath: override) }
        let besideRunner = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("tunecheck")
        if FileManager.default.isExecutableFile(atPath: besideRunner.path) { return besideRunner }
        return repositoryRoot.appendingPathComponent(".build/debug/tunecheck")
    }()

    @discardableResult
    static func run(_ arguments: [String], environment: [String: String] = [:]) throws -> Result {
        let process = Process()
        process.executableURL = binary
        process.arguments = arguments
        var processEnvironment = ProcessInfo.processInfo.environment
        processEnvironment.merge(environment) { $1 }
        process.environment = processEnvironment
        // Standard error goes to a file and standard output is read to the end before waiting, so a chatty
        // child can never block on a full pipe.
        let errorFile = FileManager.default.temporaryDirectory.appendingPathComponent("tunecheck-stderr-\(UUID().uuidString)")
        FileManager.default.createFile(atPath: errorFile.path, contents: nil)
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

    static func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("tunecheck-cli-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    static func writeLines(_ lines: [String], to url: URL) throws {
        try (lines.joined(separator: "\n") + "\n").write(to: url, atomically: true, encoding: .utf8)
    }

    /// Reads JSONL output with the project's exact parser (Foundation's JSONSerialization drops U+FEFF inside
    /// strings on Linux) and converts each line to Foundation values for convenient assertions.
    static func readJSONLines(_ url: URL) throws -> [[String: Any]] {
        try String(contentsOf: url, encoding: .utf8).split(separator: "\n").map {
            (foundationValue(try JSONParser.parse(Array($0.utf8))) as? [String: Any]) ?? [:]
        }
    }

    static func foundationValue(_ value: JSONValue) -> Any {
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
