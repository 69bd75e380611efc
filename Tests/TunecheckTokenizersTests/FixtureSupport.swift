import Foundation
import TunecheckTokenizers

/// Locations of the golden fixtures, derived from this file's path so tests run from any directory.
enum Fixtures {
    /// `<repo>/Tests/TunecheckTokenizersTests/FixtureSupport.swift` → `<repo>`.
    static let repositoryRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The shared fixtures live beside the repository (`<repo>/../shared/fixtures`) and are never
    /// copied into it; `TUNECHECK_SHARED_FIXTURES` overrides the location.
    static let sharedRoot: URL = {
        if let override = ProcessInfo.processInfo.environment["TUNECHECK_SHARED_FIXTURES"], !override.isEmpty {
            return URL(fileURLWithPath: override)
        }
        return repositoryRoot.deletingLastPathComponent().appendingPathComponent("shared/fixtures")
    }()

    static let sharedTokenizers = sharedRoot.appendingPathComponent("tokenizers")
    static let localTokenizers = repositoryRoot.appendingPathComponent("Tests/Fixtures/tokenizers")

    static let sharedTokenizerNames = ["bpe-bytelevel", "llama2-sp"]
    static let localTokenizerNames = ["llama3-bytelevel", "qwen2-bytelevel", "mistral-sp-legacy"]

    static var sharedAvailable: Bool {
        sharedTokenizerNames.allSatisfy {
            FileManager.default.fileExists(atPath: sharedTokenizers.appendingPathComponent("\($0)/tokenizer.json").path)
        }
    }

    static func directory(_ name: String) -> URL {
        sharedTokenizerNames.contains(name) ? sharedTokenizers.appendingPathComponent(name) : localTokenizers.appendingPathComponent(name)
    }

    struct Case: Decodable {
        let index: Int
        let text: String
        let ids: [Int]
        let tokens: [String]
        let decoded: String
        let decoded_skip_special: String
    }

    static func cases(_ name: String) throws -> [Case] {
        let data = try Data(contentsOf: directory(name).appendingPathComponent("tokenizer_cases.json"))
        return try JSONDecoder().decode([Case].self, from: data)
    }

    /// Tokenizers are loaded once per name and shared between tests (loading llama2 parses 3.6 MB).
    private static let cacheLock = NSLock()
    nonisolated(unsafe) private static var loaded: [String: Tokenizer] = [:]

    static func tokenizer(_ name: String) throws -> Tokenizer {
        cacheLock.lock()
        defer { cacheLock.unlock() }
        if let tokenizer = loaded[name] { return tokenizer }
        let tokenizer = try Tokenizer.load(directory: directory(name))
        loaded[name] = tokenizer
        return tokenizer
    }
}

/// Shows invisible characters in failure messages.
func visible(_ text: String) -> String {
    text.unicodeScalars.map { scalar in
        scalar.isASCII && scalar.value >= 0x20 && scalar.value < 0x7F ? String(scalar) : "\\u{\(String(scalar.value, radix: 16))}"
    }.joined()
}
