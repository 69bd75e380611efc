import Foundation
import Testing
import TunecheckTestSupport
import TunecheckTokenizers

/// Locations of the golden fixtures: the repository's own under `Tests/Fixtures/tokenizers`, the shared ones under
/// `<shared fixtures>/tokenizers` (`SharedFixtures`; tests needing them take `Fixtures.sharedRequired`).
enum Fixtures {
    /// `<shared fixtures>/tokenizers`, nil when ../shared/fixtures is absent.
    static let sharedTokenizers = SharedFixtures.path("tokenizers")
    static let localTokenizers = TestPaths.ownFixtures.appendingPathComponent("tokenizers")

    static let sharedTokenizerNames = ["bpe-bytelevel", "llama2-sp"]
    static let localTokenizerNames = ["llama3-bytelevel", "qwen2-bytelevel", "mistral-sp-legacy"]

    /// Every shared tokenizer is present.
    static var sharedAvailable: Bool {
        guard let sharedTokenizers else { return false }
        return sharedTokenizerNames.allSatisfy {
            FileManager.default.fileExists(atPath: sharedTokenizers.appendingPathComponent("\($0)/tokenizer.json").path)
        }
    }

    /// The trait of tests that read the shared tokenizers.
    static func sharedRequired(_ what: String) -> ConditionTrait { SharedFixtures.required(what, also: { sharedAvailable }) }

    /// A tokenizer fixture folder; a shared one resolves only when ../shared/fixtures is present (tests reading it
    /// carry `sharedRequired`).
    static func directory(_ name: String) -> URL {
        guard sharedTokenizerNames.contains(name) else { return localTokenizers.appendingPathComponent(name) }
        return (sharedTokenizers ?? SharedFixtures.location.appendingPathComponent("tokenizers")).appendingPathComponent(name)
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
