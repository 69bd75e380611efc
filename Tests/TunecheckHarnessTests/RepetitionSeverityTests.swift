import Foundation
import Testing
import TunecheckEngine
import TunecheckJSON
@testable import TunecheckHarness

/// Repetition severity through the suite and every report: one mildly repetitive answer among eight is a warning
/// (the checkpoint passes), a severe one fails it, and too many mild ones fail it too.
@Suite struct RepetitionSeverityTests {
    /// Seven healthy answers: prose, a list, code.
    static let healthy = [
        "Keep a regular sleep schedule and avoid screens for an hour before bed.",
        "Photosynthesis turns light, water and carbon dioxide into sugar and oxygen inside the chloroplasts.",
        "1. Preheat the oven.\n2. Mix the flour and eggs.\n3. Bake for twenty minutes.",
        "func area(width: Double, height: Double) -> Double {\n    return width * height\n}",
        "Paris is the capital of France and its largest city.",
        "Drink water through the day; thirst is a late signal of dehydration.",
        "Brown rice keeps its bran, so it has more fibre and magnesium than white rice.",
    ]
    /// A short phrase four times in a row inside an otherwise fine answer.
    static let mildAnswer = "The team agreed to ship on Friday. It is very important, very important, very important, very important "
        + "that everyone reviews the checklist before then."
    /// The degenerate loop.
    static let severeAnswer = "Acne in adults is often hormonal hormonal hormonal hormonal hormonal hormonal hormonal hormonal hormonal"

    static func outputs(_ texts: [String]) -> [GoldenOutput] {
        texts.enumerated().map { GoldenOutput(id: "p\($0.offset + 1)", prompt: "question \($0.offset + 1)", promptIds: nil, ids: nil, text: $0.element) }
    }

    static func run(_ texts: [String], thresholds: RepetitionThresholds = .default) -> (SuiteResult, [AnswerRecord]) {
        RepetitionSuite.run(checkpoint: "checkpoint-100", outputs: outputs(texts), useTokenIds: false, thresholds: thresholds)
    }

    static func report(_ suite: SuiteResult, _ answers: [AnswerRecord]) -> EvaluationReport {
        EvaluationReport(title: "severity", startedAt: Date(timeIntervalSince1970: 1_700_000_000), durationSeconds: 1, suites: [suite],
                         checkpoints: [CheckpointSummary(name: suite.checkpoint, step: 100, passed: suite.passed)], answers: answers)
    }

    @Test func classifyLevels() {
        func severity(_ text: String) -> RepetitionSeverity {
            RepetitionAnalyzer.classify(RepetitionAnalyzer.analyze(text), text: text, thresholds: .default).severity
        }
        for text in Self.healthy { #expect(severity(text) == .clean, "\(text)") }
        #expect(severity(Self.mildAnswer) == .mild)
        #expect(severity(Self.severeAnswer) == .severe)
        #expect(severity("") == .severe)
        // The word-run boundary: ×4 and ×5 mild (over max_repeated_word_run 3), ×6 severe (over severe_repeated_word_run 5).
        #expect(severity("It was a long long long long day at sea.") == .mild)
        #expect(severity("It was a long long long long long day at sea.") == .mild)
        #expect(severity("It was a long long long long long long day at sea.") == .severe)
        let severe = RepetitionAnalyzer.classify(RepetitionAnalyzer.analyze(Self.severeAnswer), text: Self.severeAnswer, thresholds: .default)
        #expect(severe.message.hasPrefix("repeated \"hormonal\" ×9"))
        #expect(severe.detail.contains("rule: severe_repeated_word_run 5"))
        let mild = RepetitionAnalyzer.classify(RepetitionAnalyzer.analyze(Self.mildAnswer), text: Self.mildAnswer, thresholds: .default)
        #expect(mild.detail.contains("rule: max_repeated_unit_run 2"))
    }

    @Test func oneMildAnswerAmongEightPassesWithAWarningInEveryReport() throws {
        let (suite, answers) = Self.run(Self.healthy + [Self.mildAnswer])
        #expect(suite.passed)
        #expect(suite.checks.count == 8 && suite.failureCount == 0 && suite.warningCount == 1)
        #expect(suite.metric(.mildAnswers) == 1 && suite.metric(.severeAnswers) == 0 && suite.metric(.flaggedAnswers) == 1)
        let warned = try #require(suite.checks.last?.warning)
        #expect(warned.message == "mild repetition: repeated \"very important,\" ×4 (seq-rep-4 0.14)")
        #expect(warned.detail.hasPrefix("prompt: question 8\n"))
        #expect(answers.map(\.severity) == Array(repeating: .clean, count: 7) + [.mild])
        #expect(answers.last!.flagged && !answers.last!.highlights.isEmpty)
        let report = Self.report(suite, answers)
        #expect(report.passed)

        // Terminal: the count, an amber ⚠ cell and the warning line; no failing checks.
        let terminal = TerminalSummary.render(report, width: 120)
        #expect(terminal.hasPrefix("severity: PASSED · 8/8 checks passed, 1 warning\n"))
        #expect(terminal.contains("checkpoint-100  ⚠"))
        #expect(terminal.contains("Warnings (1):\n  ⚠ checkpoint-100 › repetition › prompt p8: mild repetition: repeated \"very important,\" ×4"))
        #expect(!terminal.contains("Failing checks"))
        #expect(TerminalSummary.render(report, width: 120, colored: true).contains("\u{1B}[33m⚠\u{1B}[0m"))

        // report.json: a severity per answer, the warning on the check, counts on the suite and totals.
        let json = try JSONParser.parse(Array(JSONReport.render(report)))
        #expect(json["totals"]?["warnings"] == .from(1) && json["totals"]?["failures"] == .from(0))
        let jsonSuite = try #require(json["suites"]?[0])
        #expect(jsonSuite["warnings"] == .from(1) && jsonSuite["passed"] == .bool(true))
        let jsonCheck = try #require(jsonSuite["checks"]?[7])
        #expect(jsonCheck["status"] == .string("passed"))
        #expect(jsonCheck["warning"]?["message"] == .string(warned.message))
        #expect(jsonCheck["warning"]?["detail"] == .string(warned.detail))
        #expect(jsonSuite["checks"]?[0]?["warning"] == nil)
        let severities = (0..<8).map { json["answers"]?[$0]?["severity"] }
        #expect(severities == Array(repeating: .string("clean"), count: 7) + [.string("mild")])

        // HTML: amber cell, card, warnings section and answer badge; nothing red.
        let html = HTMLReport.render(report)
        #expect(html.contains("<td class=\"cell-warn\">⚠ passed <span class=\"sub\">8/8 · 1 warning</span></td>"))
        #expect(html.contains("<section id=\"warnings\">"))
        #expect(html.contains("<li class=\"warning\">") && html.contains(HTML.escape(warned.message)))
        #expect(html.contains("class=\"answer is-mild\"") && html.contains("badge badge-warn\">⚠ mild repetition</span>"))
        #expect(html.contains("card tone-warn"))
        #expect(!html.contains("class=\"answer is-flagged\"") && !html.contains("<section id=\"failures\">"))

        // JUnit: the test case passes and its system-out starts with the warning.
        let xml = try JUnitReport.render(report, hostname: "test")
        let root = try ParsedElement.parse(xml)
        #expect(root["failures"] == "0" && root["errors"] == "0")
        let testcase = try #require(root.first("testsuite")?.all("testcase").last)
        #expect(testcase.first("failure") == nil && testcase.first("error") == nil)
        let out = try #require(testcase.first("system-out")?.text)
        #expect(out.hasPrefix("WARNING: " + warned.message + "\n" + warned.detail + "\n\nseq_rep_1_words = "))
        #expect(root.first("testsuite")?.all("testcase").first?.first("system-out")?.text.hasPrefix("seq_rep_1_words = ") == true)
        // Validated against the Jenkins XSD in ReportJUnitTests.generatedReportsValidateAgainstTheJenkinsSchema ("warning").
    }

    /// `compare` labels a mild answer as mild, a severe one as repetitive, an empty one as empty.
    @Test func sideBySideLabelsBySeverity() {
        let (_, answers) = Self.run(Array(Self.healthy.prefix(1)) + [Self.mildAnswer, Self.severeAnswer, ""])
        #expect(answers.map { SideBySide.label($0, terminal: true) }
            == ["", "  [MILD REPETITION]", "  [REPETITIVE]", "[EMPTY: the model ended at once]"])
        #expect(SideBySide.label(answers[1], terminal: false) == " ⚠️ mild repetition")
        #expect(SideBySide.visible("a\u{1B}[2J\tb\r\nc") == "a\\u{1B}[2J b \nc")
    }

    @Test func aSevereAnswerFailsTheCheckpoint() throws {
        let (suite, answers) = Self.run(Self.healthy + [Self.severeAnswer])
        #expect(!suite.passed && suite.failureCount == 1 && suite.warningCount == 0)
        guard case let .failed(message, detail) = suite.checks.last?.status else {
            Issue.record("the severe answer's check did not fail")
            return
        }
        #expect(message.hasPrefix("repeated \"hormonal\" ×9"))
        #expect(detail.contains("rule: severe_repeated_word_run 5"))
        #expect(answers.last?.severity == .severe && answers.last?.flagged == true)
        let report = Self.report(suite, answers)
        let json = try JSONParser.parse(Array(JSONReport.render(report)))
        #expect(json["answers"]?[7]?["severity"] == .string("severe"))
        #expect(HTMLReport.render(report).contains("badge badge-fail\">⚑ flagged</span>"))
        #expect(TerminalSummary.render(report).contains("Failing checks (1):"))
    }

    @Test func tooManyMildAnswersFailTheCheckpoint() throws {
        let longWord = "It was a long long long long day at sea."
        // Two of eight (0.25) is not more than max_mild_fraction 0.25: warnings.
        let two = Self.run(Array(Self.healthy.prefix(6)) + [Self.mildAnswer, longWord]).0
        #expect(two.passed && two.warningCount == 2)
        // Three of eight fail, each mild check quoting the share.
        let (three, _) = Self.run(Array(Self.healthy.prefix(5)) + [Self.mildAnswer, longWord, "No no no no, I did not say that."])
        #expect(!three.passed && three.failureCount == 3 && three.warningCount == 0)
        for check in three.checks.suffix(3) {
            guard case let .failed(message, _) = check.status else {
                Issue.record("\(check.name) did not fail")
                continue
            }
            #expect(message.hasPrefix("mild repetition in 3 of 8 answers mild > max_mild_fraction 0.25: repeated"), "\(message)")
        }
        // max_mild_fraction 0 makes every mild answer fail; 1 never fails on mild answers.
        var strict = RepetitionThresholds.default
        strict.maxMildFraction = 0
        #expect(!Self.run(Self.healthy + [Self.mildAnswer], thresholds: strict).0.passed)
        var lenient = RepetitionThresholds.default
        lenient.maxMildFraction = 1
        #expect(Self.run([Self.mildAnswer, longWord], thresholds: lenient).0.passed)
    }
}

private extension JSONValue {
    subscript(key: String) -> JSONValue? { object?[key] }
    subscript(index: Int) -> JSONValue? {
        guard let array, array.indices.contains(index) else { return nil }
        return array[index]
    }
}
