import Foundation
import TunecheckTestSupport
import Testing

/// `eval --choices` end to end on the demo: the too-hot run's collapsed checkpoint fails the choices suite against
/// the bundled base, with per-item results in report.json and a JUnit case per item; bad multiple-choice input is
/// exit 2 naming the file and line.
struct ChoicesCLITests {
    static let demoBase = TestPaths.repository("models/demo-base")
    static let collapsed = TestPaths.ownFixtures.appendingPathComponent("demo/collapsed-adapter")
    static let demoChoices = TestPaths.repository("evalsets/demo/choices.jsonl")
    static let demoTexts = TestPaths.repository("evalsets/demo/texts.jsonl")

    @Test func collapsedCheckpointFailsChoicesAndPerplexity() throws {
        let folder = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let result = try CLIRunner.run(["eval", "--base", Self.demoBase.path, "--checkpoint", Self.collapsed.path,
                                        "--choices", Self.demoChoices.path, "--texts", Self.demoTexts.path,
                                        "--suites", "choices,perplexity", "--report-dir", folder.path])
        #expect(result.status == 1, "\(result.standardError)")
        #expect(result.standardError.contains("choices [collapsed-adapter]") && result.standardError.contains("perplexity [collapsed-adapter]"),
                "\(result.standardError)")
        let report = try JSONSerialization.jsonObject(with: Data(contentsOf: folder.appendingPathComponent("report.json"))) as! [String: Any]
        let suites = report["suites"] as! [[String: Any]]
        let choices = try #require(suites.first { $0["kind"] as? String == "choices" && $0["checkpoint"] as? String == "collapsed-adapter" })
        #expect(choices["passed"] as? Bool == false && choices["verdict_check"] as? String == "verdict")
        let metrics = choices["metrics"] as! [String: Double]
        #expect(metrics["acc"]! < metrics["acc_base"]! - 0.02 && metrics["mcnemar_p"]! < 0.05)
        let items = choices["items"] as! [[String: Any]]
        #expect(items.count == 126)
        let first = items[0]
        #expect(Set(first.keys) == ["id", "loglikelihoods", "pred", "pred_norm", "gold"])
        #expect((first["loglikelihoods"] as! [Double]).count == 4)
        // JUnit: the verdict case and one per item; the failing item cases are exactly the lost ones.
        let junit = try String(contentsOf: folder.appendingPathComponent("junit.xml"), encoding: .utf8)
        #expect(junit.contains("name=\"verdict\"") && junit.contains("name=\"item food-for-1\""))
        let checks = choices["checks"] as! [[String: Any]]
        let failingItems = checks.filter { ($0["name"] as! String).hasPrefix("item ") && $0["passed"] as? Bool == false }
        #expect(Double(failingItems.count) == metrics["lost_items"]!)
        let perplexity = try #require(suites.first { $0["kind"] as? String == "perplexity" && $0["checkpoint"] as? String == "collapsed-adapter" })
        #expect((perplexity["metrics"] as! [String: Double])["word_perplexity_ratio"]! > 1.1)
        // The base's own results are reported too (the chart's reference line).
        #expect(suites.contains { $0["kind"] as? String == "choices" && $0["checkpoint"] as? String == "base" })
        let html = try String(contentsOf: folder.appendingPathComponent("report.html"), encoding: .utf8)
        #expect(html.contains("Multiple-choice accuracy") && html.contains("Word perplexity"))
    }

    /// The base's per-item results are base results: a second run with the same cache reads them, with the same
    /// report numbers.
    @Test func baseResultsComeFromTheCache() throws {
        let folder = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let cache = folder.appendingPathComponent("cache")
        var metrics: [[String: Double]] = []
        var outputs: [String] = []
        for run in 0..<2 {
            let out = folder.appendingPathComponent("out\(run)")
            let result = try CLIRunner.run(["eval", "--base", Self.demoBase.path, "--checkpoint", Self.collapsed.path, "--choices", Self.demoChoices.path,
                                            "--texts", Self.demoTexts.path, "--suites", "choices,perplexity", "--cache-dir", cache.path,
                                            "--report-dir", out.path])
            #expect(result.status == 1)
            outputs.append(result.standardOutput + result.standardError)
            let report = try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("report.json"))) as! [String: Any]
            for suite in report["suites"] as! [[String: Any]] { metrics.append(suite["metrics"] as! [String: Double]) }
        }
        #expect(outputs[1].contains("base results read: choices, rolling"), "\(outputs[1])")
        #expect(metrics.count == 8 && Array(metrics[0..<4]) == Array(metrics[4..<8]))
    }

    static func expectBadChoices(_ lines: [String], mentions fragments: [String]) throws {
        let folder = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let input = folder.appendingPathComponent("mc.jsonl")
        try CLIRunner.writeLines(lines, to: input)
        let result = try CLIRunner.run(["eval", "--base", Self.demoBase.path, "--choices", input.path, "--report-dir", folder.appendingPathComponent("out").path])
        #expect(result.status == 2, "exit status \(result.status); stderr: \(result.standardError)")
        #expect(result.standardError.split(separator: "\n").count == 1, "one error line: \(result.standardError)")
        for fragment in fragments {
            #expect(result.standardError.contains(fragment), "stderr should mention \(fragment.debugDescription): \(result.standardError)")
        }
        #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("out/report.json").path))
    }

    static let good = #"{"id": "ok", "context": "Question: Why?\nAnswer:", "choices": ["yes", "no"], "answer": 0}"#

    @Test func missingAnswer() throws {
        try Self.expectBadChoices([Self.good, #"{"id": "a", "context": "Q", "choices": ["yes", "no"]}"#], mentions: ["mc.jsonl:2", "missing \"answer\""])
    }

    @Test func answerOutOfRange() throws {
        try Self.expectBadChoices([Self.good, Self.good.replacingOccurrences(of: "\"ok\"", with: "\"b\""),
                                   #"{"id": "c", "context": "Q", "choices": ["yes", "no"], "answer": 2}"#],
                                  mentions: ["mc.jsonl:3", "\"answer\" 2 is out of range"])
        try Self.expectBadChoices([#"{"id": "c", "context": "Q", "choices": ["yes", "no"], "answer": -1}"#], mentions: ["mc.jsonl:1", "out of range"])
        try Self.expectBadChoices([#"{"id": "c", "context": "Q", "choices": ["yes", "no"], "answer": "yes"}"#], mentions: ["mc.jsonl:1", "integer index"])
    }

    @Test func noChoices() throws {
        try Self.expectBadChoices([#"{"id": "a", "context": "Q", "choices": [], "answer": 0}"#], mentions: ["mc.jsonl:1", "\"choices\" is empty"])
        try Self.expectBadChoices([#"{"id": "a", "context": "Q", "answer": 0}"#], mentions: ["mc.jsonl:1", "missing \"choices\""])
    }

    @Test func nonStringChoice() throws {
        try Self.expectBadChoices([Self.good, #"{"id": "a", "context": "Q", "choices": ["yes", 3], "answer": 0}"#],
                                  mentions: ["mc.jsonl:2", "choice 1 is not a string"])
    }
}
