import Foundation
import TunecheckJSON
import TunecheckTestSupport
import Testing

/// Behaviour shared by `eval`, `watch`, `compare` and `train` through the evaluation session.
struct SessionBehaviourCLITests {
    static func write(_ text: String, to url: URL) throws {
        try text.write(to: url, atomically: true, encoding: .utf8)
    }

    /// `watch` sees tunecheck's own full fine-tuning checkpoints (`NNNNNNN_model/`) beside numbered adapters, and
    /// lists failures in step order (5, 10, 15, 100), not string order.
    @Test func watchSeesFullFineTuningFoldersAndListsFailuresInStepOrder() throws {
        let folder = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let watched = folder.appendingPathComponent("run")
        try FileManager.default.createDirectory(at: watched, withIntermediateDirectories: true)
        // A full fine-tuning checkpoint: a complete model folder (here a copy of the base: it moved nothing).
        try FileManager.default.copyItem(at: CLIRunner.defaultModel, to: watched.appendingPathComponent("0000015_model"))
        for step in [100, 10, 5] {
            try EvalFixtures.adapterBytes(seed: UInt64(step), folder: watched).write(to: watched.appendingPathComponent(WatchCLITests.name(step) + ".safetensors"))
        }
        // Every checkpoint fails weight-delta: the adapters move the weights "too much" for this limit, and the
        // copied base does not move at all.
        try Self.write("""
        name: watched
        base: \(CLIRunner.defaultModel.path)
        evalsets: {prompts: \(EvalFixtures.prompts.path)}
        suites: [repetition, weight-delta]
        generation: {max_tokens: 4}
        thresholds: {weight_delta: {no_learning_below: 1.0e-12, large_update_above: 1.0e-9}}
        reports: {dir: report}
        """, to: folder.appendingPathComponent("suite.yaml"))
        let result = try CLIRunner.run(["watch", "--suite", folder.appendingPathComponent("suite.yaml").path, "--dir", watched.path, "--once"])
        #expect(result.status == 1, "stdout: \(result.standardOutput)\nstderr: \(result.standardError)")
        let expected = [WatchCLITests.name(5), WatchCLITests.name(10), "0000015_model", WatchCLITests.name(100)]
        #expect(WatchCLITests.evaluatedNames(result.standardOutput).prefix(4) == expected[...], "\(result.standardOutput)")
        let failureLine = try #require(result.standardError.split(separator: "\n").first { $0.contains("checks failed") }, "\(result.standardError)")
        let listed = failureLine.matches(of: /\[([^\]]+)\]/).map { String($0.1) }
        #expect(listed == expected, "\(failureLine)")
        let report = try EvalFixtures.readJSON(folder.appendingPathComponent("report/report.json"))
        let steps = ((report["checkpoints"] as? [[String: Any]]) ?? []).compactMap { $0["step"] as? Int }
        #expect(steps == [5, 10, 15, 100])
    }

    /// `compare` reads the suite's generation settings, so it shows exactly the answers `eval` judged, and marks an
    /// answer that is empty (the model ended at once) as empty rather than repetitive.
    @Test func compareShowsTheAnswersEvalJudgedAndLabelsEmptyAnswers() throws {
        let folder = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        // The bundled demo base answers in plain English; the collapsed demo checkpoint loops.
        let demoBase = TestPaths.repositoryRoot.appendingPathComponent("models/demo-base")
        let checkpoint = TestPaths.repositoryRoot.appendingPathComponent("Tests/Fixtures/demo/collapsed-adapter")
        let suite = folder.appendingPathComponent("suite.yaml")
        try Self.write("""
        name: same-answers
        base: \(demoBase.path)
        evalsets: {prompts: \(TestPaths.repositoryRoot.appendingPathComponent("evalsets/demo/prompts.jsonl").path)}
        suites: [repetition]
        generation: {max_tokens: 9, ignore_eos: true}
        reports: {dir: report}
        """, to: suite)
        _ = try CLIRunner.run(["eval", "--suite", suite.path, "--checkpoint", checkpoint.path])
        let report = try EvalFixtures.readJSON(folder.appendingPathComponent("report/report.json"))
        let judged = (report["answers"] as? [[String: Any]]) ?? []
        #expect(judged.count == 16 && judged.allSatisfy { ($0["ids"] as? [Int])?.count == 9 }, "ignore_eos: every answer has max_tokens tokens")
        let compare = try CLIRunner.run(["compare", "--suite", suite.path, "--checkpoint", checkpoint.path, "--format", "markdown"])
        #expect(compare.status == 0, "\(compare.standardError)")
        for answer in judged {
            let text = (answer["text"] as? String ?? "").replacingOccurrences(of: "|", with: "\\|").replacingOccurrences(of: "\n", with: "<br>")
            #expect(compare.standardOutput.contains(text), "compare shows \(answer["checkpoint"] ?? "")'s answer \(text.debugDescription)")
        }

        // No new tokens at all: every answer is empty, and says so.
        let empty = try CLIRunner.run(["compare", "--suite", suite.path, "--checkpoint", checkpoint.path, "--max-tokens", "0"])
        #expect(empty.status == 0, "\(empty.standardError)")
        #expect(empty.standardOutput.contains("[EMPTY: the model ended at once]"), "\(empty.standardOutput)")
        #expect(!empty.standardOutput.contains("[REPETITIVE]"), "\(empty.standardOutput)")
    }

    /// `run.json` is written when a run starts and at every save, with the whole configuration and, when a guard
    /// stops the run, a typed stop record; metrics.jsonl has a line for every step, the tripping step included.
    @Test func aStoppedRunRecordsItsGuardStepAndNumbers() throws {
        let folder = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        try Self.write("name: quick\nsuites: [weight-delta]\n", to: folder.appendingPathComponent("suite.yaml"))
        try Self.write("""
        model: \(CLIRunner.defaultModel.path)
        data: \(EvalFixtures.pairs.path)
        mode: dpo
        optimizer: adamw
        learning_rate: 0.5
        iters: 30
        batch_size: 2
        save_every: 10
        steps_per_report: 3
        adapter_path: run
        eval_suite: suite.yaml
        guards: {max_margin: 0.5, min_loss: null, no_learning_after_steps: null}
        """, to: folder.appendingPathComponent("hot.yaml"))
        let result = try CLIRunner.run(["train", "--config", folder.appendingPathComponent("hot.yaml").path])
        #expect(result.status == 1, "stdout: \(result.standardOutput)\nstderr: \(result.standardError)")
        let run = try EvalFixtures.readJSON(folder.appendingPathComponent("run/run.json"))
        #expect(run["status"] as? String == "stopped")
        #expect(run["method"] as? String == "dpo" && run["learning_rate"] as? Double == 0.5 && run["beta"] as? Double == 0.1)
        let configuration = try #require(run["configuration"] as? [String: Any])
        #expect(configuration["learning_rate"] as? Double == 0.5 && configuration["save_every"] as? Int == 10)
        let stop = try #require(run["stop"] as? [String: Any], "\(run)")
        #expect(stop["guard"] as? String == "max-margin")
        let step = try #require(stop["step"] as? Int)
        let value = try #require(stop["value"] as? Double)
        #expect(stop["threshold"] as? Double == 0.5 && value > 0.5)
        #expect(run["steps"] as? Int == step)
        // The tripping step is in metrics.jsonl with the same margin, and its checkpoint was saved and evaluated.
        let lines = try TrainCLITests.metricsLines(folder.appendingPathComponent("run/metrics.jsonl"))
        #expect(lines.compactMap { $0["step"] as? Int } == Array(1...step))
        #expect(lines.last?["rewards/margins"] as? Double == value)
        let records = (run["checkpoint_records"] as? [[String: Any]]) ?? []
        #expect(records.last?["step"] as? Int == step && records.last?["passed"] is Bool, "\(records)")
        #expect(FileManager.default.fileExists(atPath: folder.appendingPathComponent("run/eval/\(String(format: "%07d", step))_adapters/junit.xml").path))
    }

    /// `--cache-dir` wins over `TUNECHECK_CACHE_DIR`, which wins over the suite's `cache_dir`; a second run reads the
    /// base's results and writes the same report.
    @Test func baseResultCacheFolderPrecedenceAndReuse() throws {
        let folder = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let suite = folder.appendingPathComponent("suite.yaml")
        let root = TestPaths.repositoryRoot
        try Self.write("""
        name: cached
        base: \(root.appendingPathComponent("models/demo-base").path)
        evalsets: {prompts: \(root.appendingPathComponent("evalsets/demo/prompts.jsonl").path), pairs: \(root.appendingPathComponent("evalsets/demo/pairs.heldout.jsonl").path)}
        suites: [repetition, preference]
        generation: {max_tokens: 6}
        cache_dir: from-suite
        reports: {dir: report}
        """, to: suite)
        let checkpoint = root.appendingPathComponent("Tests/Fixtures/demo/collapsed-adapter").path
        func eval(_ extra: [String], environment: [String: String] = [:]) throws -> String {
            let result = try CLIRunner.run(["eval", "--suite", suite.path, "--checkpoint", checkpoint] + extra, environment: environment)
            #expect(result.status == 0 || result.status == 1, "\(result.standardError)")
            return result.standardOutput
        }
        let first = try eval([])
        #expect(first.contains("read: none; computed and stored: answers, pairs") && first.contains(folder.appendingPathComponent("from-suite").path), "\(first)")
        func reportWithoutTimings() throws -> JSONValue {
            ReportComparison.withoutTimings(try JSONParser.parse([UInt8](Data(contentsOf: folder.appendingPathComponent("report/report.json")))))
        }
        let reportOne = try reportWithoutTimings()
        let second = try eval([])
        #expect(second.contains("base results read: answers, pairs; computed and stored: none"), "\(second)")
        #expect(try reportWithoutTimings() == reportOne, "the second run's report equals the first's but for timings")
        let fromVariable = try eval([], environment: ["TUNECHECK_CACHE_DIR": folder.appendingPathComponent("from-env").path])
        #expect(fromVariable.contains(folder.appendingPathComponent("from-env").path), "\(fromVariable)")
        let fromFlag = try eval(["--cache-dir", folder.appendingPathComponent("from-flag").path],
                                environment: ["TUNECHECK_CACHE_DIR": folder.appendingPathComponent("from-env").path])
        #expect(fromFlag.contains(folder.appendingPathComponent("from-flag").path) && fromFlag.contains("read: none"), "\(fromFlag)")
    }
}
