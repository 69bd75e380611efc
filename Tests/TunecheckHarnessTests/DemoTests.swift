import Foundation
import TunecheckTestSupport
import Testing
import TunecheckEngine
@testable import TunecheckHarness

/// The bundled demo (README's first command): the pretrained demo base passes its own suite, and a checkpoint of
/// the too-hot DPO run (`Tests/Fixtures/demo/collapsed-adapter`, made by `evalsets/demo/dpo-too-hot.yaml`, see its
/// README) fails the repetition suite on a severe answer, quoting the loop.
@Suite struct DemoTests {
    static let suiteFile = TestPaths.repositoryRoot.appendingPathComponent("evalsets/demo/suite.yaml")
    static let collapsedAdapter = TestPaths.repositoryRoot.appendingPathComponent("Tests/Fixtures/demo/collapsed-adapter")

    static func evaluate(suites: [SuiteKind], checkpoints: [String] = []) throws -> EvaluationReport {
        var configuration = try SuiteConfiguration.load(suiteFile)
        configuration.suites = suites
        configuration.checkpoints = checkpoints
        let session = EvaluationSession(settings: try SessionSettings(configuration: configuration))
        try session.prepare()
        try session.evaluateAll()
        return session.makeReport()
    }

    @Test func bundledBasePassesItsOwnRepetitionAndGoldenChecks() throws {
        let report = try Self.evaluate(suites: [.repetition, .golden])
        let repetition = try #require(report.suites.first { $0.kind == .repetition && $0.checkpoint == "base" })
        let golden = try #require(report.suites.first { $0.kind == .golden && $0.checkpoint == "base" })
        #expect(repetition.checks.count == 8)
        #expect(repetition.passed, "\(repetition.checks.filter { $0.status.isFailure })")
        #expect(golden.passed, "\(golden.checks.filter { $0.status.isFailure })")
        // Greedy answers are sentences that end, not loops: every one stops at EOS well before max_tokens.
        for answer in report.answers where answer.checkpoint == "base" {
            #expect(!answer.flagged)
            #expect(answer.text.hasSuffix("."), "\(answer.promptId): \(answer.text)")
            #expect((answer.ids?.count ?? 99) < 48, "\(answer.promptId): \(answer.text)")
        }
    }

    @Test func collapsedDemoCheckpointFailsRepetition() throws {
        let report = try Self.evaluate(suites: [.repetition], checkpoints: [Self.collapsedAdapter.path])
        let base = try #require(report.suites.first { $0.kind == .repetition && $0.checkpoint == "base" })
        let collapsed = try #require(report.suites.first { $0.kind == .repetition && $0.checkpoint != "base" })
        #expect(base.passed)
        #expect(!collapsed.passed)
        let messages = collapsed.checks.compactMap { check -> String? in
            if case let .failed(message, _) = check.status { return message }
            return nil
        }
        // It fails on a severe answer (`protein` ×6, a word loop); a milder one (`magnesium` ×4 among scattered
        // repeats) is flagged too.
        #expect(messages.count >= 1, "\(messages)")
        #expect(messages.contains { $0.contains("\"") }, "a failure quotes the repeated span: \(messages)")
        #expect((collapsed.metric(.severeAnswers) ?? 0) >= 1)
        let flagged = report.answers.filter { $0.checkpoint != "base" && $0.flagged }
        #expect(flagged.count >= 2, "\(flagged.map(\.text))")
        #expect(flagged.contains { $0.severity == .severe })
        #expect(report.answers.filter { $0.checkpoint == "base" }.allSatisfy { $0.severity == .clean })
        #expect(!report.passed)
    }
}
