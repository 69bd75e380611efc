import Foundation
import Testing
import TunecheckEngine
import TunecheckJSON
import TunecheckTestSupport
@testable import TunecheckHarness

/// Sharded evaluation in one process: the parts of N = 2 and 5 shards cover every unit exactly once and merge
/// into a report of the unsharded run's shape (every suite kind, several checkpoints, supplied answers, a fused
/// folder, golden files); merge refuses incomplete, mixed or damaged sets of parts. That the merged reports equal
/// the unsharded one exactly (outcomes, messages, every number) is checked across processes in `ShardCLITests`:
/// inside one test process, tests running at the same time switch OpenBLAS' process-wide thread count, which moves
/// float sums in their last bits and can flip a near-tie in a greedy answer between two runs of the same thing.
@Suite(.serialized) struct ShardingTests {
    static let root = TestPaths.repositoryRoot

    /// The demo base with a few lines of each demo evalset, four checkpoints (a run's three numbered adapters by
    /// glob, as `watch` sees them, and the collapsed adapter), answers supplied for an external model, a folder fused
    /// from one of the run's adapters, and golden files.
    struct Workspace {
        let folder: URL
        var model: URL { ShardingTests.root.appendingPathComponent("models/demo-base") }
        var collapsed: URL { ShardingTests.root.appendingPathComponent("Tests/Fixtures/demo/collapsed-adapter") }
        var healthy: URL { ShardingTests.root.appendingPathComponent("Tests/Fixtures/runs/tunecheck-lr1e-4/0000030_adapters.safetensors") }
        var fused: URL { folder.appendingPathComponent("fused") }
        var golden: URL { folder.appendingPathComponent("golden") }
        func file(_ name: String) -> URL { folder.appendingPathComponent(name) }

        init(prompts: Int = 3, pairs: Int = 6, texts: Int = 4, choices: Int = 12, fuse: Bool = true) throws {
            folder = try TestPaths.temporaryDirectory("shards")
            for (name, source, lines) in [("prompts.jsonl", "prompts.jsonl", prompts), ("pairs.jsonl", "pairs.heldout.jsonl", pairs),
                                          ("texts.jsonl", "texts.jsonl", texts), ("choices.jsonl", "choices.jsonl", choices)] {
                let text = try String(contentsOf: ShardingTests.root.appendingPathComponent("evalsets/demo/\(source)"), encoding: .utf8)
                try (text.split(separator: "\n").prefix(lines).joined(separator: "\n") + "\n").write(to: file(name), atomically: true, encoding: .utf8)
            }
            try (#"{"id": "a1", "prompt": "Name a colour.", "answer": "Blue blue blue blue blue blue blue blue.", "checkpoint": "external"}"# + "\n"
                 + #"{"id": "a2", "prompt": "Say hello.", "answer": "Hello there, nice to meet you.", "checkpoint": "external"}"# + "\n")
                .write(to: file("answers.jsonl"), atomically: true, encoding: .utf8)
            if fuse {
                let adapter = try LanguageModel.load(folder: model).applyingAdapter(at: healthy).adapter
                try AdapterFuser.fuse(baseFolder: model, adapter: adapter, output: fused, dtype: .float32)
            }
        }

        func settings(maxTokens: Int = 8, allSuites: Bool = true) -> SessionSettings {
            var settings = SessionSettings()
            settings.name = "sharding"
            settings.base = model
            settings.evalsets = SuiteConfiguration.Evalsets(prompts: file("prompts.jsonl").path, pairs: file("pairs.jsonl").path,
                                                            texts: file("texts.jsonl").path, answers: allSuites ? file("answers.jsonl").path : nil,
                                                            choices: allSuites ? file("choices.jsonl").path : nil)
            settings.checkpoints = (try? CheckpointSpec.resolve([
                ShardingTests.root.appendingPathComponent("Tests/Fixtures/runs/tunecheck-lr1e-4").path + "/*_adapters.safetensors",
                collapsed.path])) ?? []
            if allSuites { settings.fused = [SuiteConfiguration.FusedModel(path: fused.path, adapter: healthy.path)] }
            settings.suites = allSuites ? SuiteKind.allCases : [.repetition, .preference]
            settings.generation.maxTokens = maxTokens
            settings.goldenDirectory = golden
            settings.goldenSuiteName = "sharding"
            return settings
        }

        /// Golden files for every subject (an unsharded `--update-golden`), then one made to differ and one removed,
        /// so the golden suite passes, fails on a difference and fails on a missing file.
        func writeGolden() throws {
            var settings = settings()
            settings.updateGolden = true
            let session = EvaluationSession(settings: settings)
            try session.prepare()
            try session.evaluateAll()
            let changed = GoldenFile.url(directory: golden, suite: "sharding", checkpoint: "0000020_adapters")
            var file = try GoldenFile.load(changed)
            file.outputs[0].text += " (edited)"
            file.outputs[0].ids = (file.outputs[0].ids ?? []) + [42]
            try file.write(to: changed)
            try FileManager.default.removeItem(at: GoldenFile.url(directory: golden, suite: "sharding", checkpoint: "0000030_adapters"))
        }

        func unsharded(_ settings: SessionSettings) throws -> EvaluationSession {
            let session = EvaluationSession(settings: settings)
            try session.prepare()
            try session.evaluateAll()
            return session
        }

        /// The N parts, each written to and read back from its own folder.
        func parts(_ settings: SessionSettings, count: Int) throws -> [ShardPart] {
            try (1...count).map { index in
                let part = try EvaluationSession(settings: settings).recordShard(try ShardSpec(index: index, count: count), anchor: folder)
                let url = try part.write(into: folder.appendingPathComponent("parts-\(count)/\(index)"))
                return try ShardPart.read(url)
            }
        }
    }

    /// Every JUnit test case as "suite | case".
    static func testCases(_ report: EvaluationReport) throws -> [String] {
        let root = try ParsedElement.parse(try JUnitReport.render(report, hostname: "ci"))
        return root.all("testsuite").flatMap { suite in
            suite.all("testcase").map { testcase in (suite["name"] ?? "") + " | " + (testcase["name"] ?? "") }
        }
    }

    @Test func mergedShardsGiveTheUnshardedReport() throws {
        let workspace = try Workspace()
        defer { try? FileManager.default.removeItem(at: workspace.folder) }
        try workspace.writeGolden()
        let settings = workspace.settings()
        let reference = try workspace.unsharded(settings)
        let expected = reference.makeReport()
        let expectedCases = try Self.testCases(expected)

        // The reference exercises what the merge has to reproduce: every suite kind, passes and failures.
        #expect(Set(expected.suites.map(\.kind)) == Set(SuiteKind.allCases))
        #expect(expected.checkpoints.map(\.name) == ["base", "external", "0000010_adapters", "0000020_adapters", "0000030_adapters",
                                                     "collapsed-adapter"])
        #expect(expected.golden.contains { !$0.matched })
        #expect(expected.suites.contains { $0.kind == .golden && $0.checkpoint == "0000030_adapters" && !$0.passed })
        #expect(expected.suites.contains { $0.kind == .fusedConsistency && $0.passed })

        for count in [2, 5] {  // (1, 2, 3 and 5, compared exactly, in ShardCLITests)
            let parts = try workspace.parts(settings, count: count)
            // Each unit in exactly one part: no answer generated and nothing scored twice, nothing left out.
            var seen: [String: Int] = [:]
            var owned = 0
            for part in parts {
                let payload = try #require(part.payload.object)
                owned += try #require(payload["units"]?.object?["owned"]?.int)
                for (index, subject) in try #require(payload["subjects"]?.array).enumerated() {
                    guard let value = subject.object?["record"], !value.isNull else { continue }
                    let record = try #require(SubjectRecord(json: value))
                    for (computation, items) in record.items {
                        for item in items.keys { seen["\(index) \(computation) \(item)", default: 0] += 1 }
                    }
                    for key in record.values.keys { seen["\(index) \(key)", default: 0] += 1 }
                    for key in record.suites.keys { seen["\(index) suite \(key)", default: 0] += 1 }
                }
            }
            #expect(seen.values.allSatisfy { $0 == 1 }, "N = \(count): \(seen.filter { $0.value > 1 }.keys.sorted())")
            #expect(owned == (try #require(parts[0].payload.object?["units"]?.object?["total"]?.int)))
            if count > 1 { #expect(parts.allSatisfy { ($0.payload.object?["units"]?.object?["owned"]?.int ?? 0) > 0 }, "N = \(count): a shard has no work") }

            let merged = try EvaluationSession.merging(parts.reversed(), reports: nil)
            let report = merged.makeReport()
            // Timed as the shards' span (first start to last end), not as the merge.
            let starts = parts.compactMap { $0.payload.object?["started_at"]?.double }
            let durations = parts.compactMap { $0.payload.object?["duration_seconds"]?.double }
            #expect(starts.count == count && report.startedAt.timeIntervalSince1970 == starts.min())
            #expect(report.durationSeconds >= (durations.max() ?? .infinity) - 1e-3, "epoch seconds carry ~1e-7 s of rounding")
            // The same suites, checks and items in the same order (values: see ShardCLITests).
            #expect(try Self.testCases(report) == expectedCases, "N = \(count)")
            #expect(report.checkpoints.map(\.name) == expected.checkpoints.map(\.name))
            #expect(report.answers.map { "\($0.checkpoint) \($0.promptId)" } == expected.answers.map { "\($0.checkpoint) \($0.promptId)" })
            #expect(report.golden.map { "\($0.checkpoint) \($0.promptId)" } == expected.golden.map { "\($0.checkpoint) \($0.promptId)" })
            #expect(merged.notices.filter { $0.hasPrefix("golden") } == reference.notices.filter { $0.hasPrefix("golden") })
        }
    }

    @Test func mergeRefusesIncompleteMixedAndDamagedParts() throws {
        let workspace = try Workspace(prompts: 2, pairs: 2, texts: 2, fuse: false)
        defer { try? FileManager.default.removeItem(at: workspace.folder) }
        let settings = workspace.settings(maxTokens: 4, allSuites: false)
        let parts = try workspace.parts(settings, count: 3)
        #expect(throws: Never.self) { try ShardPart.checkComplete(parts) }

        // A missing shard, named with the files given.
        #expect { try EvaluationSession.merging([parts[0], parts[2]], reports: nil) } throws: { error in
            let message = (error as? LocalizedError)?.errorDescription ?? ""
            return message.contains("shard 2 of 3 missing") && message.contains("tunecheck-part-1-of-3.json")
        }
        // A shard given twice (the same part copied elsewhere), naming both files.
        let copy = workspace.folder.appendingPathComponent("copy")
        try FileManager.default.createDirectory(at: copy, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: try #require(parts[1].url), to: copy.appendingPathComponent("tunecheck-part-2-of-3.json"))
        let duplicated = parts + [try ShardPart.read(copy.appendingPathComponent("tunecheck-part-2-of-3.json"))]
        #expect { try ShardPart.checkComplete(duplicated) } throws: { error in
            let message = (error as? LocalizedError)?.errorDescription ?? ""
            return message.contains("shard 2 is given more than once") && message.contains(copy.path)
        }
        // Another split of the same evaluation.
        let halves = try workspace.parts(settings, count: 2)
        #expect(throws: ShardError.self) { try ShardPart.checkComplete([halves[0], parts[1], parts[2]]) }
        // Different settings (a generation setting) and different inputs (an evalset line).
        let other = try EvaluationSession(settings: workspace.settings(maxTokens: 5, allSuites: false))
            .recordShard(try ShardSpec(index: 2, count: 3), anchor: workspace.folder)
        #expect { try ShardPart.checkComplete([parts[0], other, parts[2]]) } throws: { error in
            ((error as? LocalizedError)?.errorDescription ?? "").contains("different settings or inputs")
        }
        let pairs = workspace.file("pairs.jsonl")
        let original = try String(contentsOf: pairs, encoding: .utf8)
        try original.replacingOccurrences(of: "\"chosen\": \"", with: "\"chosen\": \"Well, ").write(to: pairs, atomically: true, encoding: .utf8)
        let changedInput = try EvaluationSession(settings: settings).recordShard(try ShardSpec(index: 2, count: 3), anchor: workspace.folder)
        try original.write(to: pairs, atomically: true, encoding: .utf8)
        #expect(changedInput.settingsHash != parts[1].settingsHash)
        // Another tunecheck version.
        var foreign = parts[1]
        foreign.tunecheckVersion = "0.1.9"
        #expect { try ShardPart.checkComplete([parts[0], foreign, parts[2]]) } throws: { error in
            ((error as? LocalizedError)?.errorDescription ?? "").contains("different tunecheck versions")
        }

        // Damaged files: one changed digit, a truncated copy, an empty file, something else entirely.
        let url = try #require(parts[2].url)
        let bytes = [UInt8](try Data(contentsOf: url))
        var changed = bytes
        let digit = try #require(changed.lastIndex { (0x30...0x38).contains($0) })
        changed[digit] += 1
        for (name, content, reason) in [("changed", changed, "checksum mismatch"), ("truncated", Array(bytes.prefix(bytes.count - 100)), "truncated"),
                                        ("empty", [], "no header line"), ("other", Array("{\"x\": 1}\n{}".utf8), "not a tunecheck part file")] {
            let damaged = workspace.folder.appendingPathComponent("\(name)/tunecheck-part-3-of-3.json")
            try FileManager.default.createDirectory(at: damaged.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(content).write(to: damaged)
            #expect { try ShardPart.read(damaged) } throws: { error in
                let message = (error as? LocalizedError)?.errorDescription ?? ""
                return message.contains(damaged.path) && message.contains(reason)
            }
        }

        // --update-golden cannot be sharded.
        var golden = settings
        golden.updateGolden = true
        #expect(throws: ShardError.updateGoldenWithShard) {
            try EvaluationSession(settings: golden).recordShard(try ShardSpec(index: 1, count: 2), anchor: workspace.folder)
        }
    }

    @Test func theSettingsHashIgnoresWhereTheFilesAreButNotWhatTheyHold() throws {
        let first = try Workspace(prompts: 2, pairs: 2, texts: 2, fuse: false)
        defer { try? FileManager.default.removeItem(at: first.folder) }
        let second = try Workspace(prompts: 2, pairs: 2, texts: 2, fuse: false)
        defer { try? FileManager.default.removeItem(at: second.folder) }
        func hash(_ workspace: Workspace) throws -> String {
            var settings = workspace.settings(allSuites: false)
            settings.base = nil
            settings.checkpoints = []
            return try SettingsDigest.hash(settings, subjects: [], anchor: workspace.folder)
        }
        #expect(try hash(first) == hash(second), "the same contents at the same relative paths in two folders")
        try "{\"id\": \"t1\", \"text\": \"Another sentence entirely.\"}\n".write(to: second.file("texts.jsonl"), atomically: true, encoding: .utf8)
        #expect(try hash(first) != hash(second))
        #expect(SettingsDigest.relative("/a/b/c/d.json", to: URL(fileURLWithPath: "/a/b")) == "c/d.json")
        #expect(SettingsDigest.relative("/a/x/d.json", to: URL(fileURLWithPath: "/a/b")) == "../x/d.json")
    }

    @Test func shardsAreParsedAndThePlanIsContiguousBalancedAndComplete() throws {
        #expect(try ShardSpec(parsing: "2/4") == ShardSpec(index: 2, count: 4))
        for bad in ["0/3", "4/3", "1/0", "a/b", "2", "1/2/3", ""] {
            #expect(throws: ShardError.invalidShard(bad)) { try ShardSpec(parsing: bad) }
        }
        let weights: [Double] = [5, 1, 1, 8, 2, 2, 2, 9, 1, 3, 4, 4]
        for count in 1...6 {
            let owners = ShardPlan.assign(weights: weights, count: count)
            #expect(owners == ShardPlan.assign(weights: weights, count: count))
            #expect(owners == owners.sorted(), "contiguous runs")
            #expect(Set(owners) == Set(0..<count), "every shard gets work (\(count))")
            let total = weights.reduce(0, +)
            for shard in 0..<count {
                let load = zip(weights, owners).filter { $0.1 == shard }.map(\.0).reduce(0, +)
                #expect(abs(load - total / Double(count)) <= weights.max()!, "shard \(shard) of \(count): \(load)")
            }
        }
    }
}

extension ShardingTests {
    @Test func mergeStoresTheBaseResultsSoTheNextShardsReadThem() throws {
        let workspace = try Workspace(prompts: 4, pairs: 1, texts: 2, fuse: false)
        defer { try? FileManager.default.removeItem(at: workspace.folder) }
        // The base alone: its four answers are four units, split 3 + 1 over the two shards by weight; its pair one.
        var settings = workspace.settings(maxTokens: 16, allSuites: false)
        settings.checkpoints = []
        settings.suites = [.preflight, .repetition]
        settings.cacheDirectory = workspace.file("cache")
        func shards() throws -> (parts: [ShardPart], baseWork: [String]) {
            var work: [String] = []
            let parts = try (1...2).map { index -> ShardPart in
                let session = EvaluationSession(settings: settings)
                let part = try session.recordShard(try ShardSpec(index: index, count: 2), anchor: workspace.folder)
                work += session.baseWork
                return part
            }
            return (parts, work.sorted())
        }
        func entries(_ kind: String) -> [String] {
            ((try? FileManager.default.contentsOfDirectory(atPath: workspace.file("cache").path)) ?? []).filter { $0.hasPrefix("base-\(kind)-") }
        }
        // A cold cache: each shard computes its share of the answers and stores none (a share is not the whole
        // list); the shard that owns every pair stores the pairs' entry, as an unsharded run would.
        let cold = try shards()
        #expect(cold.baseWork == ["answers", "answers", "pairs"])
        #expect(entries("answers").isEmpty && entries("pairs").count == 1)
        // Merging with the cache folder stores the merged answers; the next shards read everything and compute none.
        let merged = try EvaluationSession.merging(cold.parts, reports: nil, cacheDirectory: workspace.file("cache"))
        #expect(entries("answers").count == 1)
        let warm = try shards()
        #expect(warm.baseWork.isEmpty, "\(warm.baseWork)")
        let again = try EvaluationSession.merging(warm.parts, reports: nil)
        #expect(ReportComparison.withoutTimings(JSONReport.value(again.makeReport()))
                == ReportComparison.withoutTimings(JSONReport.value(merged.makeReport())), "read back exactly")
        // An unsharded run with the same cache reads the same entries.
        let unsharded = EvaluationSession(settings: settings)
        try unsharded.prepare()
        try unsharded.evaluateAll()
        #expect(unsharded.baseWork.isEmpty)
    }
}
