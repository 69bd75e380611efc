import Foundation
import Testing
import TunecheckJSON
@testable import TunecheckHarness

@Suite struct ReportJSONTests {
    private func parsed(_ report: EvaluationReport) throws -> JSONObject {
        try #require(try JSONParser.parse(Array(JSONReport.render(report))).object)
    }

    @Test func topLevelKeysComeInAFixedOrder() throws {
        let root = try parsed(ReportSample.report())
        #expect(root.keys == ["schema_version", "tool", "tunecheck_version", "title", "passed", "started_at", "duration_seconds", "settings",
                              "totals", "checkpoints", "suites", "answers", "golden"])
        #expect(root["schema_version"]?.int == 1)
        #expect(root["passed"]?.bool == false)
        #expect(root["started_at"]?.string == "2025-03-01T12:00:00.000Z")
        #expect(root["settings"]?.object?.keys == ["base", "checkpoints", "seed", "max_new_tokens"])
        #expect(root["settings"]?.object?["seed"]?.string == "0")
        let totals = try #require(root["totals"]?.object)
        #expect(totals["checkpoints"]?.int == 4)
        #expect(totals["tests"]?.int == 30)
        #expect(totals["failures"]?.int == 4)
        #expect(totals["skipped"]?.int == 3)
        #expect(totals["passed"]?.int == 23)
    }

    @Test func checkpointsSuitesAndChecksRoundTrip() throws {
        let report = ReportSample.report()
        let root = try parsed(report)
        let checkpoints = try #require(root["checkpoints"]?.array)
        #expect(checkpoints.count == 4)
        let base = try #require(checkpoints[0].object)
        #expect(base["name"]?.string == "base")
        #expect(base["step"]?.isNull == true)
        #expect(base["preference_accuracy"]?.isNull == true)
        #expect(base["passed"]?.bool == true)
        let last = try #require(checkpoints[3].object)
        #expect(last["step"]?.int == 1500)
        #expect(last["relative_weight_delta"]?.double == 0.063)
        #expect(last["repetition_score"]?.double == 0.91)

        let suites = try #require(root["suites"]?.array)
        #expect(suites.count == report.suites.count)
        let repetition = try #require(suites.compactMap({ $0.object }).first {
            $0["kind"]?.string == "repetition" && $0["checkpoint"]?.string == "checkpoint-1500"
        })
        #expect(repetition["name"]?.string == "tunecheck.checkpoint-1500.repetition")
        #expect(repetition["passed"]?.bool == false)
        #expect(repetition["failures"]?.int == 1)
        #expect(repetition["metrics"]?.object?["max_repetition_score"]?.double == 0.91)
        let checks = try #require(repetition["checks"]?.array?.compactMap({ $0.object }))
        #expect(checks.map { $0["name"]?.string } == ["prompt-1", "prompt-2"])
        #expect(checks[0].keys == ["name", "status", "passed", "duration_seconds", "metrics"])
        #expect(checks[1]["status"]?.string == "failed")
        #expect(checks[1]["passed"]?.bool == false)
        #expect(checks[1]["message"]?.string == "answer repeats \"hormonal\" 5 times (score 0.91 > 0.50)")
        #expect(checks[1]["detail"]?.string?.contains("n-gram: [hormonal] ×5") == true)
        #expect(checks[1]["metrics"]?.object?["repetition_score"]?.double == 0.91)

        let drift = try #require(suites.compactMap({ $0.object }).first { $0["kind"]?.string == "drift" })
        let skipped = try #require(drift["checks"]?.array?.first?.object)
        #expect(skipped["status"]?.string == "skipped")
        #expect(skipped["passed"]?.bool == true)
        #expect(skipped["reason"]?.string == "drift check needs --base-logits")
    }

    @Test func answersAndGoldenRoundTrip() throws {
        let report = ReportSample.report()
        let root = try parsed(report)
        let answers = try #require(root["answers"]?.array?.compactMap({ $0.object }))
        #expect(answers.count == report.answers.count)
        let flagged = try #require(answers.first { $0["flagged"]?.bool == true })
        #expect(flagged["checkpoint"]?.string == "checkpoint-1500")
        #expect(flagged["text"]?.string == ReportSample.collapsedAnswer)
        let span = try #require(flagged["highlights"]?.array?.first?.object)
        #expect(span["start"]?.int == ReportSample.collapsedSpan.lowerBound)
        #expect(span["end"]?.int == ReportSample.collapsedSpan.upperBound)
        #expect(span["label"]?.string == "repeated 1-gram ×5")
        #expect(answers.contains { $0["text"]?.string?.contains("<script>alert('x')</script>") == true })

        let golden = try #require(root["golden"]?.array?.compactMap({ $0.object }))
        #expect(golden.count == 2)
        #expect(golden[1]["matched"]?.bool == false)
        #expect(golden[1]["similarity"]?.double == 0.62)
        #expect(golden[1]["expected"]?.string == "The capital of France is Paris.")
        #expect(golden[1]["actual"]?.string == "The capital city of France is Lyon.")
    }

    @Test func awkwardTextAndNonFiniteNumbersStayValidJSON() throws {
        var report = ReportSample.report(extraAwkwardCheck: ReportSample.awkwardCheck)
        report.answers[0].ids = [1, 2, 3]
        let root = try parsed(report)
        let suite = try #require(root["suites"]?.array?.last?.object)
        let check = try #require(suite["checks"]?.array?.first?.object)
        #expect(check["name"]?.string == "weird <name> & \"quoted\"")
        // JSON keeps the exact text, control characters included.
        #expect(check["detail"]?.string?.hasPrefix(ReportSample.awkwardText) == true)
        #expect(check["metrics"]?.object?["nan"]?.isNull == true)
        #expect(check["metrics"]?.object?["inf"]?.isNull == true)
        #expect(check["metrics"]?.object?["tiny"]?.double == 1e-12)
        #expect(root["answers"]?.array?.first?.object?["ids"]?.array?.compactMap({ $0.int }) == [1, 2, 3])
    }

    @Test func outputIsIndentedWithAFinalNewline() throws {
        let text = String(decoding: JSONReport.render(ReportSample.report()), as: UTF8.self)
        #expect(text.hasPrefix("{\n  \"schema_version\": 1,\n  \"tool\": \"tunecheck\",\n"))
        #expect(text.hasSuffix("}\n"))
        // Same input, same bytes.
        #expect(JSONReport.render(ReportSample.report()) == JSONReport.render(ReportSample.report()))
    }
}
