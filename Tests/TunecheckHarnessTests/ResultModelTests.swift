import Testing
@testable import TunecheckHarness

@Test func suiteResultCountsFailures() {
    let suite = SuiteResult(kind: .repetition, checkpoint: "base", checks: [
        CheckResult(name: "a", status: .passed),
        CheckResult(name: "b", status: .failed(message: "loop", detail: "x x x")),
        CheckResult(name: "c", status: .skipped(reason: "no model")),
    ])
    #expect(suite.failureCount == 1)
    #expect(suite.skippedCount == 1)
    #expect(!suite.passed)
}
