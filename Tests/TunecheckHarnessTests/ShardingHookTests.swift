import Foundation
import Testing
import TunecheckEngine
import TunecheckJSON
import TunecheckTestSupport
@testable import TunecheckHarness

/// The hook a new suite uses for sharded runs, exercised by two suites the test defines: one reads a new per-item
/// computation of the context (its accessor goes through `perItem`, it declares the computation), which shards
/// split by item and `merge` serves back; one declares nothing and is run whole by one shard.
@Suite(.serialized) struct ShardingHookTests {
    /// How many prompt lengths were computed, over every session of the test.
    nonisolated(unsafe) static var computed = 0

    static let promptLengths = ContextComputation(name: "prompt-lengths", scope: .prompts) { _ = try $0.promptLengths() }

    /// Reads the new computation: one check per prompt, the total as a metric.
    enum PromptLengthSuite: EvaluationSuite {
        static let kind = SuiteKind(declaring: "prompt-length")
        static let shortName = "len"
        static let requirement = "prompts and a model"
        static func canRun(with inputs: SuiteInputs) -> Bool { inputs.prompts && inputs.checkpoints }
        static func applies(to subject: SubjectKind) -> Bool { subject == .checkpoint }
        static func sharding(on subject: SubjectKind) -> SuiteSharding { .computations([ShardingHookTests.promptLengths]) }

        static func run(in context: EvaluationContext) throws -> SuiteRun? {
            guard let lengths = try context.promptLengths() else { return nil }
            let checks = zip(context.session.promptIds, lengths).map { id, length in
                CheckResult(name: "prompt \(id)", status: length < 60 ? .passed : .failed(message: "prompt \(id) is long", detail: "\(length)"),
                            metrics: [Metric("length", Double(length))])
            }
            return SuiteRun(result: SuiteResult(kind: kind, checkpoint: context.name, checks: checks,
                                                metrics: [Metric("total_length", Double(lengths.reduce(0, +)))]))
        }
    }

    /// Declares nothing: one shard runs it on each checkpoint and records the result.
    enum CheckpointNameSuite: EvaluationSuite {
        static let kind = SuiteKind(declaring: "checkpoint-name")
        static let shortName = "name"
        static let requirement = "checkpoints"
        static func canRun(with inputs: SuiteInputs) -> Bool { inputs.checkpoints }
        static func applies(to subject: SubjectKind) -> Bool { subject == .checkpoint }
        static func run(in context: EvaluationContext) throws -> SuiteRun? {
            SuiteRun(result: SuiteResult(kind: kind, checkpoint: context.name, checks: [
                CheckResult(name: "named", status: context.name.contains("collapsed") ? .failed(message: "collapsed", detail: context.name) : .passed),
            ]))
        }
    }

    @Test func aNewPerItemComputationIsSplitRecordedAndReplayed() throws {
        let folder = try TestPaths.temporaryDirectory("shard-hook")
        defer { try? FileManager.default.removeItem(at: folder) }
        let prompts = folder.appendingPathComponent("prompts.jsonl")
        let text = try String(contentsOf: TestPaths.repository("evalsets/demo/prompts.jsonl"), encoding: .utf8)
        try (text.split(separator: "\n").prefix(5).joined(separator: "\n") + "\n").write(to: prompts, atomically: true, encoding: .utf8)
        var settings = SessionSettings()
        settings.base = TestPaths.repository("models/demo-base")
        settings.evalsets.prompts = prompts.path
        settings.checkpoints = try CheckpointSpec.resolve([TestPaths.repository("Tests/Fixtures/runs/tunecheck-lr1e-4").path + "/*_adapters.safetensors",
                                                           TestPaths.repository("Tests/Fixtures/demo/collapsed-adapter").path])
        settings.suites = nil
        settings.goldenDirectory = folder.appendingPathComponent("golden")
        let registry: [any EvaluationSuite.Type] = [PromptLengthSuite.self, CheckpointNameSuite.self]

        Self.computed = 0
        let unsharded = EvaluationSession(settings: settings, registry: registry)
        try unsharded.prepare()
        try unsharded.evaluateAll()
        #expect(Self.computed == 5 * 4)
        let expected = ReportComparison.withoutTimings(JSONReport.value(unsharded.makeReport()))

        Self.computed = 0
        let parts = try (1...3).map { index in
            try EvaluationSession(settings: settings, registry: registry).recordShard(try ShardSpec(index: index, count: 3), anchor: folder)
        }
        #expect(Self.computed == 5 * 4, "each prompt length computed by one shard only")
        Self.computed = 0
        let merged = try EvaluationSession.merging(parts, reports: nil, registry: registry)
        #expect(Self.computed == 0, "merge reads the recorded values")
        let report = merged.makeReport()
        #expect(ReportComparison.withoutTimings(JSONReport.value(report)) == expected)
        #expect(report.suites.filter { $0.kind == CheckpointNameSuite.kind }.map(\.passed) == [true, true, true, false])
        #expect(merged.failures.description == unsharded.failures.description)
    }
}

extension EvaluationContext {
    /// The test's new computation: each prompt's length in characters, per prompt.
    func promptLengths() throws -> [Int]? {
        guard kind == .checkpoint, !session.promptIds.isEmpty else { return nil }
        return try perItem(ShardingHookTests.promptLengths, ids: session.promptIds,
                           codec: ItemCodec(encode: { .from($0) }, decode: { $0.int })) { indices in
            ShardingHookTests.computed += indices.count
            return indices.map { self.session.prompts[$0].prompt.count }
        }
    }
}
