import Foundation
import Testing
import TunecheckEngine
import TunecheckJSON
import TunecheckTestSupport
@testable import TunecheckHarness

/// The base-result cache: a second run with the same inputs reads the base's side instead of computing it and gives
/// the same report; a change in any input's content misses; a touched file (same bytes) hits; a corrupt entry is
/// recomputed with a notice.
@Suite struct BaseResultCacheTests {
    static let root = TestPaths.repositoryRoot

    /// A small copy of the demo: the model folder and the first lines of each evalset, in a temporary folder.
    struct Workspace {
        let folder: URL
        var model: URL { folder.appendingPathComponent("model") }
        var pairs: URL { folder.appendingPathComponent("pairs.jsonl") }
        var texts: URL { folder.appendingPathComponent("texts.jsonl") }
        var prompts: URL { folder.appendingPathComponent("prompts.jsonl") }
        var cache: URL { folder.appendingPathComponent("cache") }

        init() throws {
            folder = FileManager.default.temporaryDirectory.appendingPathComponent("tunecheck-cache-\(UUID().uuidString.prefix(8))")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            try FileManager.default.copyItem(at: BaseResultCacheTests.root.appendingPathComponent("models/demo-base"), to: model)
            for (name, lines) in [("pairs.heldout.jsonl", 4), ("texts.jsonl", 4), ("prompts.jsonl", 2)] {
                let text = try String(contentsOf: BaseResultCacheTests.root.appendingPathComponent("evalsets/demo/\(name)"), encoding: .utf8)
                let kept = text.split(separator: "\n").prefix(lines).joined(separator: "\n") + "\n"
                try kept.write(to: folder.appendingPathComponent(name == "pairs.heldout.jsonl" ? "pairs.jsonl" : name), atomically: true, encoding: .utf8)
            }
        }

        func settings(maxTokens: Int = 8) -> SessionSettings {
            var settings = SessionSettings()
            settings.base = model
            settings.evalsets = SuiteConfiguration.Evalsets(prompts: prompts.path, pairs: pairs.path, texts: texts.path)
            settings.checkpoints = [CheckpointSpec(name: "collapsed", source: .adapter(BaseResultCacheTests.root.appendingPathComponent("Tests/Fixtures/demo/collapsed-adapter")))]
            settings.suites = [.preflight, .repetition, .preference, .drift]
            settings.generation.maxTokens = maxTokens
            settings.cacheDirectory = cache
            return settings
        }

        /// Runs a session; returns what it computed of the base's side and its report.json without timings.
        func run(_ settings: SessionSettings) throws -> (work: [String], report: JSONValue, notices: [String]) {
            let session = EvaluationSession(settings: settings)
            try session.prepare()
            try session.evaluateAll()
            return (session.baseWork.sorted(), ReportComparison.withoutTimings(JSONReport.value(session.makeReport())), session.notices)
        }
    }

    /// The parts of report.json that come from the base alone: the preflight suite and the base's answers.
    static func baseOnly(_ report: JSONValue) -> [JSONValue] {
        let suites = report.object?["suites"]?.array?.filter { $0.object?["kind"]?.string == "preflight" } ?? []
        let answers = report.object?["answers"]?.array?.filter { $0.object?["checkpoint"]?.string == "base" } ?? []
        return suites + answers
    }

    @Test func aSecondRunReadsTheBaseResultsAndGivesTheSameReport() throws {
        let workspace = try Workspace()
        defer { try? FileManager.default.removeItem(at: workspace.folder) }
        let first = try workspace.run(workspace.settings())
        #expect(first.work == ["answers", "pairs", "texts"])
        #expect(Self.baseOnly(first.report).count == 3, "the preflight suite and the base's two answers")
        let second = try workspace.run(workspace.settings())
        #expect(second.work.isEmpty, "nothing of the base was recomputed")
        // A restored cache without the remembered digests (a fresh clone): still hits, and remembers them again.
        let digests = workspace.cache.appendingPathComponent("file-digests.json")
        try FileManager.default.removeItem(at: digests)
        #expect(try workspace.run(workspace.settings()).work.isEmpty)
        #expect(FileManager.default.fileExists(atPath: digests.path), "digests computed on a run of hits are kept")
        // What comes from the base alone (preflight on its pair scores, its answers) is read back exactly; the
        // checkpoint's side is recomputed, equal up to float32 summation order inside this test process.
        #expect(Self.baseOnly(second.report) == Self.baseOnly(first.report))
        #expect(ReportComparison.nearlyEqual(second.report, first.report))
        // Without a cache folder every run computes them.
        var uncached = workspace.settings()
        uncached.cacheDirectory = nil
        let plain = try workspace.run(uncached)
        #expect(plain.work == ["answers", "pairs", "texts"])
        #expect(ReportComparison.nearlyEqual(plain.report, first.report))
    }

    @Test func changedInputsMissAndTouchedFilesHit() throws {
        let workspace = try Workspace()
        defer { try? FileManager.default.removeItem(at: workspace.folder) }
        _ = try workspace.run(workspace.settings())

        // A file only touched (new modification time, same bytes) still hits.
        let weights = workspace.model.appendingPathComponent("model.safetensors")
        try FileManager.default.setAttributes([.modificationDate: Date().addingTimeInterval(3600)], ofItemAtPath: weights.path)
        #expect(try workspace.run(workspace.settings()).work.isEmpty)

        // A changed generation setting misses the answers only.
        #expect(try workspace.run(workspace.settings(maxTokens: 6)).work == ["answers"])

        // A changed evalset line misses that evalset's entry only.
        var pairs = try String(contentsOf: workspace.pairs, encoding: .utf8)
        pairs = pairs.replacingOccurrences(of: "\"chosen\": \"", with: "\"chosen\": \"Well, ", options: [], range: pairs.range(of: "\"chosen\": \""))
        try pairs.write(to: workspace.pairs, atomically: true, encoding: .utf8)
        #expect(try workspace.run(workspace.settings()).work == ["pairs"])

        // Weights whose content changed miss everything.
        let data = try Data(contentsOf: weights)
        var bytes = [UInt8](data)
        let headerLength = Int(bytes[0]) | Int(bytes[1]) << 8 | Int(bytes[2]) << 16 | Int(bytes[3]) << 24
        bytes[8 + headerLength + 1] ^= 0x01  // one float16 weight's mantissa: still finite, a different model
        try Data(bytes).write(to: weights)
        #expect(try workspace.run(workspace.settings()).work == ["answers", "pairs", "texts"])
    }

    /// Hugging Face cache folders hold symbolic links into `blobs/`: a file's remembered digest must follow the link,
    /// so weights changed behind an unchanged link miss (the link's own size and times did not change).
    @Test func weightsBehindASymbolicLinkAreIdentifiedByTheirTarget() throws {
        let workspace = try Workspace()
        defer { try? FileManager.default.removeItem(at: workspace.folder) }
        let weights = workspace.model.appendingPathComponent("model.safetensors")
        let blob = workspace.folder.appendingPathComponent("blob-weights")
        try FileManager.default.moveItem(at: weights, to: blob)
        try FileManager.default.createSymbolicLink(at: weights, withDestinationURL: blob)
        _ = try workspace.run(workspace.settings())
        #expect(try workspace.run(workspace.settings()).work.isEmpty, "an unchanged target hits")

        var bytes = [UInt8](try Data(contentsOf: blob))
        let headerLength = Int(bytes[0]) | Int(bytes[1]) << 8 | Int(bytes[2]) << 16 | Int(bytes[3]) << 24
        bytes[8 + headerLength + 1] ^= 0x01  // one float16 weight's mantissa: still finite, a different model
        try Data(bytes).write(to: blob)
        #expect(try workspace.run(workspace.settings()).work == ["answers", "pairs", "texts"], "a changed target misses")
    }

    @Test func aCorruptEntryIsRecomputedWithANotice() throws {
        let workspace = try Workspace()
        defer { try? FileManager.default.removeItem(at: workspace.folder) }
        _ = try workspace.run(workspace.settings())
        let entries = try FileManager.default.contentsOfDirectory(atPath: workspace.cache.path).filter { $0.hasPrefix("base-pairs-") }
        let entry = workspace.cache.appendingPathComponent(try #require(entries.first))
        var bytes = [UInt8](try Data(contentsOf: entry))
        bytes[bytes.count - 10] = bytes[bytes.count - 10] == 0x31 ? 0x32 : 0x31  // one digit of a log-prob
        try Data(bytes).write(to: entry)
        let second = try workspace.run(workspace.settings())
        #expect(second.work == ["pairs"])
        #expect(second.notices.contains { $0.contains("checksum mismatch") }, "\(second.notices)")
        // The recomputed entry was stored whole: the next run reads it and reports the same.
        let third = try workspace.run(workspace.settings())
        #expect(third.work.isEmpty && Self.baseOnly(third.report) == Self.baseOnly(second.report))
        #expect(ReportComparison.nearlyEqual(third.report, second.report))
        // (Not compared with the first run: in this test process a recomputation matches it only up to float32
        // summation order, because tests running in parallel change OpenBLAS' process-wide thread count, which
        // picks its kernels. A single tunecheck process computes the same numbers every time.)
        // Truncated: the same.
        let data = try Data(contentsOf: entry)
        try data.prefix(data.count / 2).write(to: entry)
        #expect(try workspace.run(workspace.settings()).work == ["pairs"])
    }

    @Test func sha256MatchesTheStandardVectors() {
        #expect(SHA256.hex([UInt8]()) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(SHA256.hex(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(SHA256.hex(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8))
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        #expect(SHA256.hex([UInt8](repeating: 0x61, count: 1_000_000)) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
        // Fed in uneven pieces, the same digest.
        var hasher = SHA256()
        let message = Array("The quick brown fox jumps over the lazy dog, again and again and again.".utf8)
        var offset = 0
        for size in [1, 7, 63, 2, 64, 100] where offset < message.count {
            let end = min(offset + size, message.count)
            hasher.update(Array(message[offset..<end]))
            offset = end
        }
        hasher.update(Array(message[offset...]))
        #expect(hasher.finalizeHex() == SHA256.hex(message))
    }
}
