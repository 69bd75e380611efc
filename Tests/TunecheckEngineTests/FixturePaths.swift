import Foundation
import TunecheckTestSupport

/// The engine tests' fixture folders, on top of `TestPaths` and `SharedFixtures` (TunecheckTestSupport).
enum FixturePaths {
    static var ownFixtures: URL { TestPaths.ownFixtures }

    /// Model fixture folders (each with a `reference.json`) of our own.
    static var ownModelNames: [String] {
        let folder = ownFixtures.appendingPathComponent("models")
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        return names.filter {
            FileManager.default.fileExists(atPath: folder.appendingPathComponent($0).appendingPathComponent("reference.json").path)
        }.sorted()
    }

    static func ownModel(_ name: String) -> URL { ownFixtures.appendingPathComponent("models").appendingPathComponent(name) }
    /// A shared reference model folder, nil when ../shared/fixtures is absent.
    static func sharedModel(_ name: String) -> URL? { SharedFixtures.path("models/\(name)") }

    static func temporaryDirectory(_ label: String) throws -> URL { try TestPaths.temporaryDirectory("tests-\(label)") }
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
