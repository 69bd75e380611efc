import Foundation
import TunecheckTestSupport
import Testing
import TunecheckEngine
import TunecheckJSON
@testable import TunecheckHarness

/// A suite defined here, outside the harness: adding a suite is a conformer plus its place in a registry.
/// It fails an answer longer than `limit` words.
enum AnswerLengthSuite: EvaluationSuite {
    static let kind = SuiteKind(declaring: "answer-length")
    static let shortName = "len"
    static let requirement = "prompts and a model"
    static let limit = 3

    static func canRun(with inputs: SuiteInputs) -> Bool { inputs.prompts && (inputs.base || inputs.checkpoints) }
    static func applies(to subject: SubjectKind) -> Bool { subject == .base || subject == .checkpoint }

    static func run(in context: EvaluationContext) throws -> SuiteRun? {
        guard let answers = try context.answers() else { return nil }
        let checks = answers.outputs.map { output in
            let words = output.text.split(whereSeparator: \.isWhitespace).count
            return CheckResult(name: "prompt \(output.id)",
                               status: words <= limit ? .passed : .failed(message: "\(words) words (limit \(limit))", detail: output.text),
                               metrics: [Metric("words", Double(words))])
        }
        return SuiteRun(result: SuiteResult(kind: kind, checkpoint: context.name, checks: checks))
    }
}

@Suite struct EvaluationSessionTests {
    static let root = TestPaths.repositoryRoot
    static let demoSuite = root.appendingPathComponent("evalsets/demo/suite.yaml")
    static let collapsed = root.appendingPathComponent("Tests/Fixtures/demo/collapsed-adapter")

    static func demoSettings(_ adjust: (inout SuiteConfiguration) -> Void) throws -> SessionSettings {
        var configuration = try SuiteConfiguration.load(demoSuite)
        adjust(&configuration)
        return try SessionSettings(configuration: configuration)
    }

    @Test func aSuiteDefinedOutsideTheHarnessRunsThroughTheSession() throws {
        let settings = try Self.demoSettings {
            $0.suites = [AnswerLengthSuite.kind, .repetition]
            $0.checkpoints = [Self.collapsed.path]
        }
        let session = EvaluationSession(settings: settings, registry: SuiteRegistry.all + [AnswerLengthSuite.self])
        try session.prepare()
        try session.evaluateAll()
        let report = session.makeReport()
        let lengths = report.suites.filter { $0.kind == AnswerLengthSuite.kind }
        #expect(lengths.map(\.checkpoint) == ["base", "collapsed-adapter"])
        // The demo base answers in sentences of more than three words: the suite's checks fail, and the session's
        // verdict, failure list and JUnit all carry the new suite.
        #expect(lengths.allSatisfy { !$0.passed })
        #expect(session.failures.description.contains("answer-length [base]"))
        let junit = String(decoding: try JUnitReport.render(report), as: UTF8.self)
        #expect(junit.contains("tunecheck.base.answer-length"))
        // Its answers come from the same generation the repetition suite judged (computed once per checkpoint).
        let repetition = try #require(report.suites.first { $0.kind == .repetition && $0.checkpoint == "base" })
        #expect(repetition.checks.count == lengths[0].checks.count)
        // Requesting it without its inputs is an input error naming what it needs.
        var bare = SessionSettings()
        bare.suites = [AnswerLengthSuite.kind]
        let unrunnable = EvaluationSession(settings: bare, registry: SuiteRegistry.all + [AnswerLengthSuite.self])
        #expect(throws: HarnessError.missingInput("suite 'answer-length' needs prompts and a model")) { try unrunnable.validateRequest() }
    }

    @Test func goldenRunsOnlyWhereGoldenOutputsExistUnlessListed() throws {
        // No suites listed: golden runs for the base (golden/demo/base.json exists) and is skipped with a notice
        // for the checkpoint, which has none; nothing fails for want of a file.
        let unlisted = try Self.demoSettings {
            $0.suites = nil
            $0.evalsets.pairs = nil
            $0.evalsets.texts = nil
            $0.checkpoints = [Self.collapsed.path]
        }
        let session = EvaluationSession(settings: unlisted)
        try session.prepare()
        try session.evaluateAll()
        let report = session.makeReport()
        #expect(report.suites.filter { $0.kind == .golden }.map(\.checkpoint) == ["base"])
        #expect(report.suites.first { $0.kind == .golden }?.passed == true)
        #expect(session.notices.count == 1)
        #expect(session.notices.first?.contains("no golden outputs for 'collapsed-adapter'") == true)
        #expect(!session.failures.entries.contains { $0.suites.contains(.golden) })

        // Listed explicitly: a missing golden file fails until --update-golden writes it.
        let listed = try Self.demoSettings {
            $0.suites = [.golden]
            $0.checkpoints = [Self.collapsed.path]
        }
        let strict = EvaluationSession(settings: listed)
        try strict.prepare()
        try strict.evaluateAll()
        let failing = try #require(strict.makeReport().suites.first { $0.kind == .golden && $0.checkpoint == "collapsed-adapter" })
        #expect(!failing.passed)
        #expect(strict.notices.isEmpty)
    }

    @Test func failuresAreListedInStepOrder() throws {
        func entry(_ name: String, step: Int?, order: Int) -> FailureSummary.Entry {
            FailureSummary.Entry(checkpoint: name, step: step, order: order, suites: [.repetition], broken: nil)
        }
        let summary = FailureSummary(entries: [
            entry("checkpoint-10", step: 10, order: 0), entry("checkpoint-100", step: 100, order: 1), entry("checkpoint-15", step: 15, order: 2),
            entry("named-folder", step: nil, order: 3), entry("checkpoint-5", step: 5, order: 4), entry("base", step: nil, order: -1),
        ])
        #expect(summary.checkpoints == ["base", "checkpoint-5", "checkpoint-10", "checkpoint-15", "checkpoint-100", "named-folder"])
        #expect(summary.description == "checks failed: repetition [base], repetition [checkpoint-5], repetition [checkpoint-10], "
                    + "repetition [checkpoint-15], repetition [checkpoint-100], repetition [named-folder]")
    }

    @Test func suiteKindsDecodeOnlyRegisteredNames() throws {
        #expect(SuiteKind(rawValue: "weight-delta") == .weightDelta)
        #expect(SuiteKind(rawValue: "weight_delta") == nil)
        #expect(SuiteKind.allCases == SuiteRegistry.kinds)
        // Comma lists (`--suites repetition,golden`) are parsed by the CLI's CommaSeparated (OptionValuesCLITests).
    }
}

/// The watcher over the checkpoint names of every trainer: mlx_lm's and tunecheck's numbered adapters,
/// tunecheck's full fine-tuning folders and the Hugging Face Trainer's `checkpoint-N/`.
@Suite struct CheckpointWatcherTests {
    static func temporaryFolder() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("tunecheck-watcher-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    static func writeTensorFile(_ url: URL) throws {
        let values: [Float] = [1, 2, 3, 4]
        try values.withUnsafeBufferPointer { buffer in
            try SafeTensorsWriter.write([TensorToWrite(name: "w", dtype: .float32, shape: [2, 2], values: buffer)], metadata: nil, to: url)
        }
    }

    @Test func everyTrainersNumberedCheckpointsAreSeenOnceInStepOrder() throws {
        let folder = try Self.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let fileManager = FileManager.default
        try Data("{}".utf8).write(to: folder.appendingPathComponent("adapter_config.json"))
        try Self.writeTensorFile(folder.appendingPathComponent("0000020_adapters.safetensors"))
        try Self.writeTensorFile(folder.appendingPathComponent("adapters.safetensors"))  // the latest copy: not a checkpoint
        for (name, marker) in [("0000005_model", "config.json"), ("checkpoint-10", "adapter_config.json"), ("model", "config.json")] {
            let checkpoint = folder.appendingPathComponent(name)
            try fileManager.createDirectory(at: checkpoint, withIntermediateDirectories: true)
            try Data("{}".utf8).write(to: checkpoint.appendingPathComponent(marker))
            try Self.writeTensorFile(checkpoint.appendingPathComponent(marker == "config.json" ? "model.safetensors" : "adapter_model.safetensors"))
        }
        let watcher = CheckpointWatcher(directory: folder, settleSeconds: 1)
        let start = Date()
        #expect(watcher.poll(now: start).isEmpty, "nothing is read before its size has settled")
        let events = watcher.poll(now: start.addingTimeInterval(2))
        let ready = events.compactMap { event -> (String, Int?)? in
            if case .ready(let spec) = event { return (spec.name, spec.step) }
            return nil
        }
        #expect(ready.map(\.0) == ["0000005_model", "checkpoint-10", "0000020_adapters"])
        #expect(ready.map(\.1) == [5, 10, 20])
        #expect(watcher.poll(now: start.addingTimeInterval(4)).isEmpty, "each is reported once")
    }

    @Test func aCheckpointStillBeingWrittenHoldsBackTheLaterOnes() throws {
        let folder = try Self.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        try Data("{}".utf8).write(to: folder.appendingPathComponent("adapter_config.json"))
        try Self.writeTensorFile(folder.appendingPathComponent("0000002_adapters.safetensors"))
        // Half a header: a writer that does not write atomically, still at work.
        try Data([0x40, 0, 0, 0, 0, 0, 0, 0, 0x7B]).write(to: folder.appendingPathComponent("0000001_adapters.safetensors"))
        let watcher = CheckpointWatcher(directory: folder, settleSeconds: 1)
        let start = Date()
        _ = watcher.poll(now: start)
        #expect(watcher.poll(now: start.addingTimeInterval(2)).isEmpty, "step 2 waits for step 1")
        // The final scan of `watch --once` waits for nothing: step 1 is broken, step 2 follows it.
        let final = watcher.poll(now: start.addingTimeInterval(3), final: true)
        #expect(final.count == 2)
        if case .broken(let path, _) = final.first { #expect(path.hasSuffix("0000001_adapters.safetensors")) } else { Issue.record("\(final)") }
        if case .ready(let spec) = final.last { #expect(spec.step == 2) } else { Issue.record("\(final)") }
    }
}
