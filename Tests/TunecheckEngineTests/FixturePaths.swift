import Foundation

/// Where test fixtures live. The repository's own fixtures are under `Tests/Fixtures`; the shared reference
/// fixtures are `../shared/fixtures` beside the clone (CI has them; a user's clone may not, and the tests that
/// need them say they are skipped). `TUNECHECK_SHARED_FIXTURES` overrides the shared location.
enum FixturePaths {
    static let repositoryRoot: URL = {
        var url = URL(fileURLWithPath: #filePath)
        while url.path != "/" {
            url.deleteLastPathComponent()
            if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) { return url }
        }
        return URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
    }()

    static let ownFixtures = repositoryRoot.appendingPathComponent("Tests/Fixtures")

    static let sharedFixtures: URL = {
        if let override = ProcessInfo.processInfo.environment["TUNECHECK_SHARED_FIXTURES"] {
            return URL(fileURLWithPath: override)
        }
        return repositoryRoot.deletingLastPathComponent().appendingPathComponent("shared/fixtures")
    }()

    static var sharedAvailable: Bool {
        FileManager.default.fileExists(atPath: sharedFixtures.appendingPathComponent("README.md").path)
    }

    /// Model fixture folders (each with a `reference.json`) of our own.
    static var ownModelNames: [String] {
        let folder = ownFixtures.appendingPathComponent("models")
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        return names.filter {
            FileManager.default.fileExists(atPath: folder.appendingPathComponent($0).appendingPathComponent("reference.json").path)
        }.sorted()
    }

    static func ownModel(_ name: String) -> URL { ownFixtures.appendingPathComponent("models").appendingPathComponent(name) }
    static func sharedModel(_ name: String) -> URL { sharedFixtures.appendingPathComponent("models").appendingPathComponent(name) }

    static func temporaryDirectory(_ label: String) throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("tunecheck-tests-\(label)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}

/// The subset of a fixture's `reference.json` the engine tests read.
struct ModelReference: Decodable {
    struct ScoredText: Decodable {
        var ids: [Int]
        var logprobs: [Double]
        var top5: [TopK]?
    }
    struct TopK: Decodable {
        var position: Int
        var ids: [Int]
        var logprobs: [Double]
    }
    struct Generation: Decodable {
        var prompt_ids: [Int]
        var greedy_ids: [Int]
        var greedy_text: String?
        var full_text: String?
        var prompt: String?
    }
    struct Pair: Decodable {
        var prompt_len: Int
        var chosen_ids: [Int]
        var rejected_ids: [Int]
        var chosen_logprob_sum: Double
        var rejected_logprob_sum: Double
    }
    var texts: [ScoredText]
    var generate: [Generation]
    var pairs: [Pair]?

    static func load(_ folder: URL) throws -> ModelReference {
        try JSONDecoder().decode(ModelReference.self, from: Data(contentsOf: folder.appendingPathComponent("reference.json")))
    }
}
