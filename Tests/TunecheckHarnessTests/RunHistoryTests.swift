import Foundation
import Testing
import TunecheckEngine
import TunecheckJSON
import TunecheckTestSupport
@testable import TunecheckHarness

/// `tunecheck runs`' library: the three run layouts read from real runs (Tests/Fixtures/runs, made by
/// scripts/fixtures/make_run_fixtures.sh, make_trl_run_fixture.py and make_mlx_run_fixture.sh), the per-run row,
/// the verdicts and the renderers. Expected values are read from the runs' own files where they hold them, so the
/// tests check the reading, not a copy of its output.
@Suite struct RunHistoryTests {
    static func fixture(_ name: String) -> String { TestPaths.ownFixtures.appendingPathComponent("runs/\(name)").path }
    static let tooHot = fixture("tunecheck-lr5e-3"), warm = fixture("tunecheck-lr1e-3"), healthy = fixture("tunecheck-lr1e-4")
    static let partial = fixture("tunecheck-partial"), trl = fixture("trl-dpo")
    static let mlx = fixture("mlx-lora"), mlxClassic = fixture("mlx-lora-0.28")

    /// DPO's loss before the policy moves away from the reference: −log σ(0) = ln 2 (TRL's and tunecheck's first step).
    static let initialDPOLoss = log(2.0)

    static func summary(_ path: String, threshold: Double = 5) throws -> RunSummary {
        RunSummary(run: try RunReaders.read(path), settings: RunHistorySettings(marginThreshold: threshold))
    }

    /// `metrics.jsonl` straight from the file: (step, rewards/margins) per line.
    static func loggedMargins(_ path: String) throws -> [(Int, Double)] {
        let text = try String(contentsOfFile: path + "/metrics.jsonl", encoding: .utf8)
        return try text.split(separator: "\n").map { line in
            let object = try JSONParser.parse(Array(line.utf8)).object!
            return (object["step"]!.int!, object["rewards/margins"]!.double!)
        }
    }

    @Test func tooHotTunecheckRunExplodesAndFails() throws {
        let row = try Self.summary(Self.tooHot)
        let run = row.run
        #expect(run.trainer == .tunecheck)
        #expect(run.method == "dpo" && run.learningRate == 5e-3 && run.beta == 0.1 && run.lossType == "sigmoid")
        #expect(run.loraRank == 8 && run.loraScale == 20 && run.loraAlpha == nil)
        #expect(run.checkpoints.map(\.name) == ["0000005_adapters"])
        // The guard record and the per-step log agree: the run stopped at the first step whose margin exceeds 5.
        let margins = try Self.loggedMargins(Self.tooHot)
        let firstOver = try #require(margins.first { $0.1 > 5 })
        #expect(row.marginExplosionStep == firstOver.0)
        #expect(run.stop?.name == "max-margin" && run.stop?.step == firstOver.0)
        #expect(abs((run.stop?.value ?? 0) - firstOver.1) < 1e-9)
        #expect(row.maxMargin == margins.map(\.1).max() && row.maxMarginStep == firstOver.0)
        #expect(abs(try #require(row.lossFirst) - Self.initialDPOLoss) < 1e-4)
        #expect(row.evaluationSource == .recorded)
        #expect(row.firstFailingCheckpoint == "0000005_adapters")
        #expect(row.failingSuites.contains("repetition") && row.failingSuites.contains("preference"))
        #expect(row.verdict == .fail)
        #expect(row.reason.hasPrefix("guard max-margin stopped the run at step \(firstOver.0)"))
    }

    @Test func healthyTunecheckRunPasses() throws {
        let row = try Self.summary(Self.healthy)
        #expect(row.run.learningRate == 1e-4 && row.run.steps == 30)
        #expect(row.run.checkpoints.map(\.step) == [10, 20, 30])
        #expect(row.run.history.count == 30)
        #expect(row.marginExplosionStep == nil)
        #expect(try #require(row.maxMargin) <= 5)
        #expect(row.run.stop == nil)
        #expect(row.firstFailingCheckpoint == nil)
        // best_checkpoint is the run's own choice (run.json), which is one of its passing checkpoints.
        let record = try JSONParser.parse(Array(try Data(contentsOf: URL(fileURLWithPath: Self.healthy + "/run.json")))).object!
        #expect(row.bestCheckpoint == record["best_checkpoint"]?.string)
        #expect(row.verdict == .pass)
        // A lower threshold turns the same run into a margin explosion at the first step above it.
        let strict = try Self.summary(Self.healthy, threshold: 2)
        let firstOver2 = try Self.loggedMargins(Self.healthy).first { $0.1 > 2 }?.0
        #expect(strict.marginExplosionStep == firstOver2 && strict.verdict == .fail)
    }

    /// Newer run.json keys: a run ended by an error or by the callback says so in the reason.
    @Test func failedAndCallbackStoppedRunsSaySoInTheReason() throws {
        let folder = try TestPaths.temporaryDirectory("runs-status")
        defer { try? FileManager.default.removeItem(at: folder) }
        let run = folder.appendingPathComponent("run")
        try FileManager.default.copyItem(atPath: Self.healthy, toPath: run.path)
        let recordURL = run.appendingPathComponent("run.json")
        var record = try JSONParser.parse(Array(try Data(contentsOf: recordURL))).object!
        record.set("status", .string("failed"))
        record.set("failure", .string("disk full"))
        record.set("stop_request", .string("user asked"))
        try JSONWriter.data(.object(record)).write(to: recordURL)
        let row = try Self.summary(run.path)
        #expect(row.run.status == "failed")
        #expect(row.verdict == .pass)
        #expect(row.reason.hasSuffix("; stopped by the training callback: user asked; the run failed: disk full"))
    }

    @Test func partiallyWrittenCheckpointIsIgnoredWithANotice() throws {
        let row = try Self.summary(Self.partial)
        #expect(row.run.checkpoints.map(\.name) == ["0000010_adapters", "0000020_adapters"])
        #expect(row.run.notices.count == 1)
        #expect(row.run.notices.first?.contains("ignoring 0000030_adapters.safetensors, a partially written checkpoint") == true)
        // Its recorded verdict is not about the file that is there now.
        #expect(row.evaluations.map(\.name) == ["0000010_adapters", "0000020_adapters"])
        // A Hugging Face checkpoint folder whose weights are not written yet.
        let folder = try TestPaths.temporaryDirectory("runs-partial-hf")
        defer { try? FileManager.default.removeItem(at: folder) }
        let trl = folder.appendingPathComponent("trl-dpo")
        try FileManager.default.copyItem(atPath: Self.trl, toPath: trl.path)
        let writing = trl.appendingPathComponent("checkpoint-12")
        try FileManager.default.createDirectory(at: writing, withIntermediateDirectories: false)
        try FileManager.default.copyItem(at: trl.appendingPathComponent("checkpoint-8/adapter_config.json"),
                                         to: writing.appendingPathComponent("adapter_config.json"))
        let hf = try RunReaders.read(trl.path)
        #expect(hf.checkpoints.map(\.name) == ["checkpoint-4", "checkpoint-8"] && hf.steps == 8)
        #expect(hf.notices.count == 1 && hf.notices[0].contains("ignoring checkpoint-12, a partially written checkpoint"))
        // The complete runs have no notices.
        #expect(try RunReaders.read(Self.healthy).notices.isEmpty)
    }

    @Test func trlRunFromTrainerState() throws {
        let row = try Self.summary(Self.trl)
        let run = row.run
        #expect(run.trainer == .huggingface && run.method == "dpo")
        #expect(run.checkpoints.map(\.name) == ["checkpoint-4", "checkpoint-8"])
        #expect(run.steps == 8 && run.history.map(\.step) == Array(1...8))
        #expect(run.learningRate == 5e-3 && run.learningRateIsPeak)
        #expect(run.beta == nil && run.lossType == nil)
        #expect(run.loraRank == 8 && run.loraAlpha == 16 && run.loraTargets == ["q_proj", "v_proj"])
        #expect(abs(try #require(row.lossFirst) - Self.initialDPOLoss) < 1e-4)
        // The newest checkpoint's log_history is the whole run; the older one's stops at its step.
        let older = try RunReaders.object(at: URL(fileURLWithPath: Self.trl + "/checkpoint-4/trainer_state.json"))
        #expect(older["log_history"]?.array?.count ?? 0 < run.history.count)
        #expect(row.marginExplosionStep == nil && row.verdict == .unknown)
        let strict = try Self.summary(Self.trl, threshold: 2)
        let firstOver = run.history.first { ($0.margin ?? 0) > 2 }?.step
        #expect(firstOver != nil && strict.marginExplosionStep == firstOver && strict.verdict == .fail)
    }

    /// A diverged TRL run: Python's json writes NaN bare; the reader keeps it, and a NaN margin is an explosion.
    @Test func nonFiniteValuesInTrainerState() throws {
        let folder = try TestPaths.temporaryDirectory("runs-nan")
        defer { try? FileManager.default.removeItem(at: folder) }
        let run = folder.appendingPathComponent("trl-dpo")
        try FileManager.default.copyItem(atPath: Self.trl, toPath: run.path)
        let state = run.appendingPathComponent("checkpoint-8/trainer_state.json")
        var text = try String(contentsOf: state, encoding: .utf8)
        let lastMargin = try #require(text.range(of: "\"rewards/margins\": ", options: .backwards))
        let end = try #require(text[lastMargin.upperBound...].firstIndex { $0 == "," || $0 == "\n" })
        text.replaceSubrange(lastMargin.upperBound..<end, with: "NaN")
        text = text.replacingOccurrences(of: "\"loss\": 0.008699300698935986", with: "\"loss\": Infinity")
        try text.write(to: state, atomically: true, encoding: .utf8)
        #expect(text.contains("\"loss\": Infinity") && text.contains(": NaN"))
        let row = try Self.summary(run.path)
        #expect(row.run.history.last?.margin?.isNaN == true && row.run.history.last?.loss == .infinity)
        #expect(row.marginExplosionStep == 8 && row.verdict == .fail)
        #expect(row.lossMin == row.run.history.compactMap(\.loss).filter(\.isFinite).min())
        #expect(quotingNonFiniteNumbers(Array("{\"a\": \"NaN \\\" Infinity\", \"b\": -Infinity}".utf8))
                == Array("{\"a\": \"NaN \\\" Infinity\", \"b\": \"-Infinity\"}".utf8))
    }

    @Test func mlxRunsFromBothLogFormats() throws {
        let table = try RunReaders.read(Self.mlx), classic = try RunReaders.read(Self.mlxClassic)
        for run in [table, classic] {
            #expect(run.trainer == .mlxLM && run.method == "sft")
            #expect(run.learningRate == 1e-3 && !run.learningRateIsPeak)
            #expect(run.loraRank == 4 && run.loraScale == 20)
            #expect(run.steps == 12 && run.checkpoints.map(\.step) == [6, 12])
            #expect(run.history.map(\.step) == [2, 4, 6, 8, 10, 12])
        }
        // Same run, two console formats: the same losses (both print 3 decimals); only the old one logs the rate.
        #expect(table.history.map(\.loss) == classic.history.map(\.loss))
        #expect(classic.history.allSatisfy { $0.learningRate == 1e-3 })
        #expect(table.history.allSatisfy { $0.learningRate == nil })
        // Validation lines are not training steps.
        #expect(!classic.history.contains { $0.loss == 4.140 })
        #expect(try Self.summary(Self.mlx).verdict == .unknown)
    }

    @Test func mlxLogLines() {
        let log = """
        Iter 1: Val loss 2.000, Val took 0.1s
        Iter 10: Train loss 0.693, Learning Rate 1.000e-05, It/sec 1.0, Tokens/sec 10.0, Trained Tokens 100, Peak mem 0.1 GB
        Iter 20: Val loss 0.400, Val chosen reward 0.100, Val rejected reward -0.100, Val accuracy 0.750, Val margin 0.200, Val took 1.000s
        Iter 20: loss 0.500, chosen_r 0.300, rejected_r -7.200, acc 0.750, margin 7.500, lr 2.000e-05, it/s 1.000, tok/s 300.000, peak_mem 1.234GB
        \u{1B}[38;5;244m  30\u{1B}[0m    \u{1B}[1;32m0.250 ▼\u{1B}[0m    \u{1B}[1m  290\u{1B}[0m    1.1k
          40    val 0.300    0.70s
        Iter 40: Saved adapter weights to a and b.
        """
        let steps = MLXRunReader.parseLog(log)
        #expect(steps == [TrainingRun.Step(step: 10, loss: 0.693, learningRate: 1e-5),
                          TrainingRun.Step(step: 20, loss: 0.5, learningRate: 2e-5, margin: 7.5, accuracy: 0.75),
                          TrainingRun.Step(step: 30, loss: 0.25)])
    }

    /// A run trained on another base than the suite's gets a notice (by folder name; nothing is evaluated here).
    @Test func differentBaseGetsANotice() throws {
        var run = TrainingRun(path: "runs/other", folder: URL(fileURLWithPath: "/nonexistent"), trainer: .mlxLM)
        run.base = "/models/Qwen2.5-0.5B"
        var configuration = SuiteConfiguration()
        configuration.base = TestPaths.repository("models/demo-base").path
        var evaluator = RunSuiteEvaluator(configuration: configuration)
        let notices = NoticeBox()
        evaluator.onNotice = { notices.items.append($0) }
        #expect(try evaluator.evaluate(run).isEmpty)
        #expect(notices.items == ["runs/other: trained on base 'Qwen2.5-0.5B', evaluated against the suite's base 'demo-base'"])
        run.base = "../../models/demo-base"
        notices.items = []
        _ = try evaluator.evaluate(run)
        #expect(notices.items.isEmpty)
    }

    @Test func unknownLayoutNamesTheFolderAndWhatWasLookedFor() throws {
        let empty = try TestPaths.temporaryDirectory("runs-empty")
        defer { try? FileManager.default.removeItem(at: empty) }
        #expect(throws: RunError.unknownLayout(path: empty.path, lookedFor: RunReaders.all.map(\.signature))) {
            try RunReaders.read(empty.path)
        }
        let message = RunError.unknownLayout(path: empty.path, lookedFor: RunReaders.all.map(\.signature)).errorDescription!
        #expect(message.contains(empty.path) && message.contains("run.json") && message.contains("trainer_state.json")
                && message.contains("adapter_config.json"))
        #expect(throws: RunError.notAFolder(path: empty.path + "/missing")) { try RunReaders.read(empty.path + "/missing") }
    }

    @Test func malformedMetricsLineNamesFileAndLine() throws {
        let folder = try TestPaths.temporaryDirectory("runs-bad")
        defer { try? FileManager.default.removeItem(at: folder) }
        for name in ["run.json", "adapter_config.json"] {
            try FileManager.default.copyItem(atPath: Self.healthy + "/" + name, toPath: folder.appendingPathComponent(name).path)
        }
        try "{\"step\": 1, \"loss\": 0.69}\n{\"step\": 2, \"loss\": \n".write(to: folder.appendingPathComponent("metrics.jsonl"), atomically: true, encoding: .utf8)
        #expect {
            try RunReaders.read(folder.path)
        } throws: { error in
            guard case let .invalidLine(path, line, _) = error as? RunError else { return false }
            return path.hasSuffix("metrics.jsonl") && line == 2
        }
    }

    @Test func jsonHasEveryKeyWithNullsForTheUnknown() throws {
        let settings = RunHistorySettings()
        let rows = try [Self.tooHot, Self.trl, Self.mlx].map { RunSummary(run: try RunReaders.read($0), settings: settings) }
        let root = try #require(RunTable.jsonValue(rows, settings: settings).object)
        let runs = (root["runs"]?.array ?? []).compactMap { $0.object }
        try #require(runs.count == 3)
        let keys = ["path", "trainer", "method", "learning_rate", "beta", "loss_type", "lora", "steps", "checkpoints", "loss_first",
                    "loss_last", "loss_min", "max_margin", "max_margin_step", "margin_explosion_step", "guard",
                    "first_failing_checkpoint", "failing_suites", "best_checkpoint", "verdict", "reason"]
        for run in runs { for key in keys { #expect(run[key] != nil, "missing \(key)") } }
        #expect(runs.map { $0["verdict"]?.string } == ["fail", "unknown", "unknown"])
        #expect(runs[0]["guard"]?.string == "max-margin" && runs[0]["margin_explosion_step"]?.int == 5)
        #expect(runs[1]["beta"]?.isNull == true && runs[1]["guard"]?.isNull == true)
        #expect(runs[1]["lora"]?.object?["alpha"]?.double == 16 && runs[1]["lora"]?.object?["scale"] == nil)
        #expect(runs[2]["lora"]?.object?["scale"]?.double == 20 && runs[2]["max_margin"]?.isNull == true)
        #expect(root["settings"]?.object?["margin_threshold"]?.double == 5)
    }

    @Test func terminalMarkdownAndHTML() throws {
        let settings = RunHistorySettings()
        let rows = try [Self.tooHot, Self.healthy].map { RunSummary(run: try RunReaders.read($0), settings: settings) }
        let terminal = RunTable.terminal(rows, settings: settings, width: 400)
        let lines = terminal.split(separator: "\n")
        #expect(lines[0].hasPrefix("run ") && lines[2].contains("FAIL") && lines[3].contains("PASS"))
        #expect(lines[2].contains("5e-3") && lines[3].contains("1e-4") && lines[2].contains("max-margin @5"))
        // Too wide for 100 columns: a row per field, a column per run, every line within the width.
        let narrow = RunTable.terminal(rows, settings: settings, width: 100).split(separator: "\n")
        let table = narrow.prefix(RunTable.headers.count + 1)
        #expect(table.allSatisfy { $0.count <= 100 })
        #expect(table.contains { $0.hasPrefix("lr ") && $0.contains("5e-3") && $0.contains("1e-4") })
        #expect(table.last?.hasPrefix("verdict") == true && table.last!.contains("FAIL") && table.last!.contains("PASS"))
        let markdown = RunTable.markdown(rows, settings: settings)
        #expect(markdown.split(separator: "\n").filter { $0.hasPrefix("| `") }.count == 2)
        #expect(markdown.contains("**FAIL**") && markdown.contains("**PASS**"))
        let html = RunHTML.render(rows, settings: settings)
        #expect(html.components(separatedBy: "<svg class=\"chart\"").count - 1 == 3)
        #expect(html.contains("class=\"reference\"") && html.contains("threshold 5"))
        // The too-hot run's checkpoint failed, the healthy run's passed: both are marked on the curves.
        #expect(html.contains("class=\"pt-fail\"") && html.contains("class=\"pt-pass\""))
        #expect(!html.contains("<script") && !html.contains("src=") && !html.contains("href=\"http"))
    }

    @Test func reuseComparesSettingsAndPathsFromAnotherCheckout() {
        let here = TestPaths.repository("models/demo-base").path
        let recorded = ["base": "/elsewhere/checkout/models/demo-base", "max_tokens": "48", "suites": "repetition", "preflight": "warn: …"]
        let current: [(key: String, value: String)] = [("base", here), ("max_tokens", "48"), ("suites", "repetition")]
        #expect(RunSuiteEvaluator.sameSettings(recorded, current))
        #expect(!RunSuiteEvaluator.sameSettings(recorded.merging(["max_tokens": "64"]) { $1 }, current))
        #expect(!RunSuiteEvaluator.sameSettings(recorded.merging(["base": "/elsewhere/models/other"]) { $1 }, current))
        #expect(!RunSuiteEvaluator.sameSettings(recorded.merging(["texts": "t.jsonl"]) { $1 }, current))
    }

    @Test func learningRatesReadAsWritten() {
        #expect(RunFormat.rate(5e-3) == "5e-3" && RunFormat.rate(1e-4) == "1e-4" && RunFormat.rate(2.5e-5) == "2.5e-5")
        #expect(RunFormat.rate(0.02) == "0.02")
    }
}

private final class NoticeBox: @unchecked Sendable {
    var items: [String] = []
}
