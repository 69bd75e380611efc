import Foundation
import Testing
import TunecheckJSON
import TunecheckTestSupport

/// `eval --shard I/N` and `merge` end to end, as CI jobs run them: each shard writes only its part file and exits 0;
/// `merge` writes the unsharded run's reports (report.json equal but for timings, junit.xml equal but for times) and
/// its exit code; an incomplete set, `--update-golden` with `--shard` and a bad `--shard` exit 2.
struct ShardCLITests {
    static let root = TestPaths.repositoryRoot

    static func evalArguments(_ folder: URL) throws -> [String] {
        for (name, source, lines) in [("prompts.jsonl", "prompts.jsonl", 2), ("pairs.jsonl", "pairs.heldout.jsonl", 4),
                                      ("texts.jsonl", "texts.jsonl", 2)] {
            let text = try String(contentsOf: root.appendingPathComponent("evalsets/demo/\(source)"), encoding: .utf8)
            try (text.split(separator: "\n").prefix(lines).joined(separator: "\n") + "\n")
                .write(to: folder.appendingPathComponent(name), atomically: true, encoding: .utf8)
        }
        return ["eval", "--base", root.appendingPathComponent("models/demo-base").path,
                // A watched run's checkpoints by glob, and a collapsed adapter that fails.
                "--checkpoint", root.appendingPathComponent("Tests/Fixtures/runs/tunecheck-lr1e-4").path + "/*_adapters.safetensors",
                "--checkpoint", root.appendingPathComponent("Tests/Fixtures/demo/collapsed-adapter").path,
                "--prompts", folder.appendingPathComponent("prompts.jsonl").path, "--pairs", folder.appendingPathComponent("pairs.jsonl").path,
                "--texts", folder.appendingPathComponent("texts.jsonl").path, "--max-tokens", "6",
                "--suites", "preflight,repetition,preference,drift,weight-delta"]
    }

    static func withoutTimes(_ junit: URL) throws -> String {
        try String(contentsOf: junit, encoding: .utf8)
            .replacingOccurrences(of: #" (time|timestamp)="[^"]*""#, with: "", options: .regularExpression)
    }

    @Test func shardsMergeIntoTheUnshardedReports() throws {
        let folder = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let arguments = try Self.evalArguments(folder)
        let full = folder.appendingPathComponent("full")
        let unsharded = try CLIRunner.run(arguments + ["--report-dir", full.path])
        #expect(unsharded.status == 1, "\(unsharded.standardError)")

        for index in 1...2 {
            let part = folder.appendingPathComponent("parts/\(index)")
            let shard = try CLIRunner.run(arguments + ["--shard", "\(index)/2", "--report-dir", part.path])
            #expect(shard.status == 0, "\(shard.standardError)")
            #expect(try FileManager.default.contentsOfDirectory(atPath: part.path) == ["tunecheck-part-\(index)-of-2.json"],
                    "a shard writes its part only: no junit.xml, no verdict")
            #expect(shard.standardOutput.contains("part: "))
        }

        // Incomplete: refused, naming the file given, writing nothing.
        let refused = folder.appendingPathComponent("refused")
        let missing = try CLIRunner.run(["merge", "--report-dir", refused.path, folder.appendingPathComponent("parts/1").path])
        #expect(missing.status == 2)
        #expect(missing.standardError.contains("shard 2 of 2 missing") && missing.standardError.contains("tunecheck-part-1-of-2.json"),
                "\(missing.standardError)")
        #expect(!FileManager.default.fileExists(atPath: refused.path))

        let merged = folder.appendingPathComponent("merged")
        let merge = try CLIRunner.run(["merge", "--report-dir", merged.path, folder.appendingPathComponent("parts").path + "/*"])
        #expect(merge.status == 1, "a check failed: \(merge.standardError)")
        #expect(merge.standardError == unsharded.standardError, "the same failure summary")
        // Separate processes compute the same numbers: the reports are equal exactly, apart from timings.
        let expected = ReportComparison.withoutTimings(try JSONParser.parse([UInt8](Data(contentsOf: full.appendingPathComponent("report.json")))))
        let actual = ReportComparison.withoutTimings(try JSONParser.parse([UInt8](Data(contentsOf: merged.appendingPathComponent("report.json")))))
        #expect(actual == expected)
        #expect(try Self.withoutTimes(merged.appendingPathComponent("junit.xml")) == Self.withoutTimes(full.appendingPathComponent("junit.xml")))
        #expect(FileManager.default.fileExists(atPath: merged.appendingPathComponent("report.html").path))
    }

    @Test func badShardRequestsExitTwo() throws {
        let folder = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let arguments = try Self.evalArguments(folder) + ["--report-dir", folder.appendingPathComponent("out").path]
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
