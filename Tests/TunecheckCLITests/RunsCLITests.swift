import Foundation
import Testing
import TunecheckJSON
import TunecheckTestSupport

/// `tunecheck runs` end to end on the real run fixtures: exit codes, formats, `RUN_DIR:LOGFILE`, bad input and
/// `--suite` (the demo suite on the TRL run's PEFT checkpoints, and reuse of a tunecheck run's eval/ results).
struct RunsCLITests {
    static func fixture(_ name: String) -> String { TestPaths.ownFixtures.appendingPathComponent("runs/\(name)").path }

    static func json(_ output: String) throws -> [JSONObject] {
        let root = try JSONParser.parse(Array(output.utf8)).object
        return (root?["runs"]?.array ?? []).compactMap { $0.object }
    }

    @Test func exitCodeFollowsTheVerdicts() throws {
        let both = try CLIRunner.run(["runs", Self.fixture("tunecheck-lr5e-3"), Self.fixture("tunecheck-lr1e-4")],
                                     environment: ["COLUMNS": "400"])
        #expect(both.status == 1)
        #expect(both.standardError.contains("runs failed: \(Self.fixture("tunecheck-lr5e-3"))"))
        let lines = both.standardOutput.split(separator: "\n")
        #expect(lines.count > 4 && lines[2].contains("FAIL") && lines[3].contains("PASS"))
        #expect(try CLIRunner.run(["runs", Self.fixture("tunecheck-lr1e-4")]).status == 0)
        // unknown is not a failure
        let unknown = try CLIRunner.run(["runs", Self.fixture("mlx-lora"), Self.fixture("trl-dpo")])
        #expect(unknown.status == 0 && unknown.standardOutput.contains("UNKNOWN"))
        // --margin-threshold turns the TRL run's growing margin into an explosion
        let strict = try CLIRunner.run(["runs", Self.fixture("trl-dpo"), "--margin-threshold", "2", "--format", "json"])
        #expect(strict.status == 1)
        let run = try #require(try Self.json(strict.standardOutput).first)
        #expect(run["verdict"]?.string == "fail" && run["margin_explosion_step"]?.int == 6)
    }

    @Test func jsonMarkdownAndHTMLOutputs() throws {
        let runs = ["tunecheck-lr5e-3", "tunecheck-lr1e-3", "tunecheck-lr1e-4", "trl-dpo", "mlx-lora"].map(Self.fixture)
        let json = try CLIRunner.run(["runs"] + runs + ["--format", "json"])
        #expect(json.status == 1)
        let rows = try Self.json(json.standardOutput)
        #expect(rows.map { $0["verdict"]?.string } == ["fail", "fail", "pass", "unknown", "unknown"])
        #expect(rows.map { $0["trainer"]?.string } == ["tunecheck", "tunecheck", "tunecheck", "huggingface", "mlx_lm"])
        #expect(rows.map { $0["learning_rate"]?.double } == [5e-3, 1e-3, 1e-4, 5e-3, 1e-3])
        let markdown = try CLIRunner.run(["runs"] + runs + ["--format", "markdown"])
        #expect(markdown.standardOutput.hasPrefix("| run | trainer |"))
        let folder = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let page = folder.appendingPathComponent("runs.html")
        let html = try CLIRunner.run(["runs"] + runs + ["--format", "html", "--output", page.path])
        #expect(html.status == 1 && html.standardOutput.contains("wrote \(page.path)"))
        let text = try String(contentsOf: page, encoding: .utf8)
        #expect(text.hasPrefix("<!DOCTYPE html>") && text.contains("<svg"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path) == ["runs.html"])
    }

    @Test func partialCheckpointNoticeAndLogFileArgument() throws {
        let partial = try CLIRunner.run(["runs", Self.fixture("tunecheck-partial"), "--format", "json"])
        #expect(partial.status == 0)
        #expect(partial.standardError.contains("notice: \(Self.fixture("tunecheck-partial")): ignoring 0000030_adapters.safetensors"))
        #expect(try Self.json(partial.standardOutput).first?["checkpoints"]?.int == 2)
        // mlx_lm: the log given as RUN_DIR:LOGFILE when it is not in the folder.
        let folder = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let run = folder.appendingPathComponent("adapters")
        try FileManager.default.copyItem(atPath: Self.fixture("mlx-lora-0.28"), toPath: run.path)
        let log = folder.appendingPathComponent("console.txt")
        try FileManager.default.moveItem(at: run.appendingPathComponent("train.log"), to: log)
        let without = try Self.json(try CLIRunner.run(["runs", run.path, "--format", "json"]).standardOutput)
        #expect(without.first?["loss_first"]?.isNull == true)
        let with = try Self.json(try CLIRunner.run(["runs", run.path + ":" + log.path, "--format", "json"]).standardOutput)
        #expect(with.first?["loss_first"]?.double == 1.873 && with.first?["steps"]?.int == 12)
    }

    @Test func badInputExitsTwoNamingTheFolder() throws {
        let folder = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let unknown = try CLIRunner.run(["runs", folder.path])
        #expect(unknown.status == 2)
        #expect(unknown.standardError.contains(folder.path) && unknown.standardError.contains("looked for run.json"))
        let missing = try CLIRunner.run(["runs", folder.path + "/nope"])
        #expect(missing.status == 2 && missing.standardError.contains("nope"))
        #expect(try CLIRunner.run(["runs", Self.fixture("trl-dpo"), "--format", "xml"]).status == 2)
        #expect(try CLIRunner.run(["runs", Self.fixture("trl-dpo"), "--margin-threshold", "-1"]).status == 2)
        let help = try CLIRunner.run(["runs", "--help"])
        #expect(help.status == 0 && help.standardOutput.contains("Examples:"))
    }

    /// The demo suite on the TRL run's PEFT checkpoints (evaluated as eval does) and on the too-hot tunecheck run
    /// (its eval/report.json was made with the same suite: reused, not recomputed).
    @Test func suiteEvaluatesCheckpointsAndReusesRecordedResults() throws {
        let suite = TestPaths.repository("evalsets/demo/suite.yaml").path
        let result = try CLIRunner.run(["runs", Self.fixture("trl-dpo"), Self.fixture("tunecheck-lr5e-3"), "--suite", suite,
                                        "--format", "json"], environment: ["TUNECHECK_NO_PROGRESS": "1"])
        #expect(result.status == 1)
        let rows = try Self.json(result.standardOutput)
        try #require(rows.count == 2)
        #expect(rows[0]["evaluated_by"]?.string == "suite" && rows[1]["evaluated_by"]?.string == "suite")
        // The same verdicts as `tunecheck eval` on these checkpoints.
        let reports = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: reports) }
        _ = try CLIRunner.run(["eval", "--suite", suite, "--checkpoint", Self.fixture("trl-dpo") + "/checkpoint-4",
                               "--checkpoint", Self.fixture("trl-dpo") + "/checkpoint-8", "--report-dir", reports.path],
                              environment: ["TUNECHECK_NO_PROGRESS": "1"])
        let report = try JSONParser.parse(Array(try Data(contentsOf: reports.appendingPathComponent("report.json")))).object
        let evalVerdicts = (report?["checkpoints"]?.array ?? []).compactMap { $0.object }.filter { $0["step"]?.int != nil }
            .map { [$0["step"]?.int, $0["passed"]?.bool] as [AnyHashable?] }
        let runVerdicts = (rows[0]["checkpoint_evaluations"]?.array ?? []).compactMap { $0.object }
            .map { [$0["step"]?.int, $0["passed"]?.bool] as [AnyHashable?] }
        #expect(evalVerdicts.count == 2 && runVerdicts == evalVerdicts)
        #expect(rows[1]["verdict"]?.string == "fail" && rows[1]["first_failing_checkpoint"]?.string == "0000005_adapters")
        #expect(result.standardError.contains("reused 1 checkpoint evaluation from eval/report.json"))
        #expect(rows.allSatisfy { $0["verdict"]?.string != "unknown" })
        let settings = try JSONParser.parse(Array(result.standardOutput.utf8)).object?["settings"]?.object
        #expect(settings?["margin_threshold_source"]?.string == "the suite's preference max_margin")
    }
}
