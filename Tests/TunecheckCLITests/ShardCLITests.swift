import Foundation
import Testing
import TunecheckEngine
import TunecheckHarness
import TunecheckJSON
import TunecheckTestSupport

/// `eval --shard I/N` and `merge` end to end, as CI jobs run them, each in its own process: for an evaluation with every
/// suite kind (four checkpoints, three of them by glob as `watch` finds them, answers supplied for an external model,
/// a fused folder, golden files that match, differ and are missing), merging N = 1, 2, 3 and 5 shards gives exactly
/// the unsharded run's report.json (but for timings), junit.xml (but for times), failure summary and exit code; each
/// shard writes only its part file and exits 0; an incomplete set, `--update-golden` with `--shard` and a bad
/// `--shard` exit 2 and write nothing.
struct ShardCLITests {
    static let root = TestPaths.repositoryRoot
    static let healthy = root.appendingPathComponent("Tests/Fixtures/runs/tunecheck-lr1e-4/0000030_adapters.safetensors")

    /// A few lines of the demo evalsets, supplied answers, a fused folder and a suite file naming them all.
    static func workspace(_ folder: URL) throws -> URL {
        for (name, source, lines) in [("prompts.jsonl", "prompts.jsonl", 3), ("pairs.jsonl", "pairs.heldout.jsonl", 6),
                                      ("texts.jsonl", "texts.jsonl", 4), ("choices.jsonl", "choices.jsonl", 12)] {
            let text = try String(contentsOf: root.appendingPathComponent("evalsets/demo/\(source)"), encoding: .utf8)
            try (text.split(separator: "\n").prefix(lines).joined(separator: "\n") + "\n")
                .write(to: folder.appendingPathComponent(name), atomically: true, encoding: .utf8)
        }
        try CLIRunner.writeLines([
            #"{"id": "a1", "prompt": "Name a colour.", "answer": "Blue blue blue blue blue blue blue blue.", "checkpoint": "external"}"#,
            #"{"id": "a2", "prompt": "Say hello.", "answer": "Hello there, nice to meet you.", "checkpoint": "external"}"#,
        ], to: folder.appendingPathComponent("answers.jsonl"))
        let base = root.appendingPathComponent("models/demo-base")
        let adapter = try LanguageModel.load(folder: base).applyingAdapter(at: healthy).adapter
        try AdapterFuser.fuse(baseFolder: base, adapter: adapter, output: folder.appendingPathComponent("fused"), dtype: .float32)
        let suite = folder.appendingPathComponent("suite.yaml")
        try CLIRunner.writeLines([
            "name: sharding",
            "base: \(base.path)",
            "checkpoints:",
            "  - '\(root.path)/Tests/Fixtures/runs/tunecheck-lr1e-4/*_adapters.safetensors'",
            "  - \(root.path)/Tests/Fixtures/demo/collapsed-adapter",
            "fused: [{path: fused, adapter: \(healthy.path)}]",
            "evalsets: {prompts: prompts.jsonl, pairs: pairs.jsonl, texts: texts.jsonl, answers: answers.jsonl, choices: choices.jsonl}",
            "suites: [preflight, repetition, preference, drift, weight-delta, choices, perplexity, golden, fused-consistency]",
            "generation: {max_tokens: 8}",
            "golden_dir: golden",
        ], to: suite)
        // Golden files for every subject, then one made to differ and one removed.
        let update = try CLIRunner.run(["eval", "--suite", suite.path, "--update-golden", "--report-dir", folder.appendingPathComponent("update").path])
        guard update.status <= 1 else { throw FixtureError("--update-golden: \(update.standardError)") }
        let golden = folder.appendingPathComponent("golden/sharding")
        let changed = golden.appendingPathComponent("0000020_adapters.json")
        var file = try GoldenFile.load(changed)
        file.outputs[0].text += " (edited)"
        file.outputs[0].ids = (file.outputs[0].ids ?? []) + [42]
        try file.write(to: changed)
        try FileManager.default.removeItem(at: golden.appendingPathComponent("0000030_adapters.json"))
        return suite
    }

    static func withoutTimes(_ junit: URL) throws -> String {
        try String(contentsOf: junit, encoding: .utf8)
            .replacingOccurrences(of: #" (time|timestamp)="[^"]*""#, with: "", options: .regularExpression)
    }

    static func report(_ folder: URL) throws -> JSONValue {
        ReportComparison.withoutTimings(try JSONParser.parse([UInt8](Data(contentsOf: folder.appendingPathComponent("report.json")))))
    }

    @Test func mergedShardsEqualTheUnshardedRunExactly() throws {
        let folder = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let suite = try Self.workspace(folder)
        let full = folder.appendingPathComponent("full")
        let unsharded = try CLIRunner.run(["eval", "--suite", suite.path, "--report-dir", full.path])
        #expect(unsharded.status == 1, "\(unsharded.standardError)")
        let expected = try Self.report(full)
        let kinds = Set(expected.object?["suites"]?.array?.compactMap { $0.object?["kind"]?.string } ?? [])
        #expect(kinds == ["preflight", "repetition", "preference", "drift", "weight-delta", "choices", "perplexity", "golden", "fused-consistency"])
        let junit = try Self.withoutTimes(full.appendingPathComponent("junit.xml"))
        #expect(junit.contains("output differs from golden") && junit.contains("no golden outputs for"), "golden passes, differs, is missing")

        for count in [1, 2, 3, 5] {
            let parts = folder.appendingPathComponent("parts-\(count)")
            for index in 1...count {
                let part = parts.appendingPathComponent("\(index)")
                let shard = try CLIRunner.run(["eval", "--suite", suite.path, "--shard", "\(index)/\(count)", "--report-dir", part.path])
                #expect(shard.status == 0, "\(shard.standardError)")
                #expect(try FileManager.default.contentsOfDirectory(atPath: part.path) == ["tunecheck-part-\(index)-of-\(count).json"],
                        "a shard writes its part only: no junit.xml, no verdict")
            }
            let merged = folder.appendingPathComponent("merged-\(count)")
            // Parts given as a glob for some N, as their parent folder for others.
            let given = count % 2 == 0 ? parts.path + "/*" : parts.path
            let merge = try CLIRunner.run(["merge", "--report-dir", merged.path, given])
            #expect(merge.status == 1, "N = \(count): \(merge.standardError)")
            #expect(merge.standardError == unsharded.standardError, "N = \(count): the same failure summary")
            #expect(try Self.report(merged) == expected, "N = \(count)")
            #expect(try Self.withoutTimes(merged.appendingPathComponent("junit.xml")) == junit, "N = \(count)")
            #expect(FileManager.default.fileExists(atPath: merged.appendingPathComponent("report.html").path))
        }

        // Incomplete: refused, naming the file given, writing nothing.
        let refused = folder.appendingPathComponent("refused")
        let missing = try CLIRunner.run(["merge", "--report-dir", refused.path, folder.appendingPathComponent("parts-3/1").path,
                                         folder.appendingPathComponent("parts-3/3").path])
        #expect(missing.status == 2)
        #expect(missing.standardError.contains("shard 2 of 3 missing") && missing.standardError.contains("tunecheck-part-1-of-3.json"),
                "\(missing.standardError)")
        #expect(!FileManager.default.fileExists(atPath: refused.path))
    }

    @Test func badShardRequestsExitTwo() throws {
        let folder = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let arguments = ["eval", "--base", Self.root.appendingPathComponent("models/demo-base").path, "--prompts",
                         Self.root.appendingPathComponent("evalsets/demo/prompts.jsonl").path, "--report-dir", folder.appendingPathComponent("out").path]
        let golden = try CLIRunner.run(arguments + ["--shard", "1/2", "--update-golden"])
        #expect(golden.status == 2 && golden.standardError.contains("--update-golden cannot be combined with --shard"), "\(golden.standardError)")
        let outOfRange = try CLIRunner.run(arguments + ["--shard", "3/2"])
        #expect(outOfRange.status == 2 && outOfRange.standardError.contains("--shard 3/2"), "\(outOfRange.standardError)")
        #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("out").path))
        let help = try CLIRunner.run(["merge", "--help"])
        #expect(help.status == 0 && help.standardOutput.contains("tunecheck merge --report-dir"))
        let evalHelp = try CLIRunner.run(["eval", "--help"])
        #expect(evalHelp.standardOutput.contains("--shard <I/N>"))
    }
}
