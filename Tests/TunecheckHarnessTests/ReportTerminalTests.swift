import Foundation
import Testing
@testable import TunecheckHarness

@Suite struct ReportTerminalTests {
    @Test func listsTheTableAndFailingChecks() {
        let text = TerminalSummary.render(ReportSample.report(), width: 120)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(lines[0] == "tunecheck: dpo-acne run 7: FAILED · 23/30 checks passed, 4 failed, 3 skipped")
        #expect(lines.contains("checkpoint       preflight  repetition  preference  drift  weight-delta  golden"))
        #expect(lines.contains("checkpoint-1500  ✔          ✘           ✔           –      ✘             –"))
        #expect(lines.contains("base             ✔          ✔           –           –      –             –"))
        #expect(text.contains("Failing checks (4):"))
        #expect(lines.contains("  ✘ checkpoint-1500 › repetition › prompt-2: answer repeats \"hormonal\" 5 times (score 0.91 > 0.50)"))
        #expect(lines.contains("  ✘ checkpoint-500 › preference › accuracy: accuracy 0.680 < 0.700"))
        #expect(!text.contains("\u{1B}["))
    }

    @Test func everyLineFitsTheWidth() {
        var report = ReportSample.report(extraAwkwardCheck: ReportSample.awkwardCheck)
        report.suites[0].checkpoint = String(repeating: "very-long-checkpoint-name-", count: 5)
        for width in [40, 60, 80] {
            let text = TerminalSummary.render(report, width: width)
            for line in text.split(separator: "\n") {
                #expect(line.count <= width, "\(width): \(line)")
            }
            #expect(text.contains("…"))
            #expect(!text.unicodeScalars.contains { $0.value == 0x1B || $0.value == 0x07 })
        }
        let narrow = TerminalSummary.render(ReportSample.report(), width: 40)
        #expect(narrow.contains("pre  rep  pref  drift  Δw   gold") || narrow.contains("pre"))
    }

    @Test func colourOnlyWhenAsked() {
        let coloured = TerminalSummary.render(ReportSample.report(), colored: true)
        #expect(coloured.contains("\u{1B}[31m✘\u{1B}[0m"))
        #expect(coloured.contains("\u{1B}[32m✔\u{1B}[0m"))
        var passing = ReportSample.report()
        passing.suites = passing.suites.map { suite in
            var suite = suite
            suite.checks = suite.checks.map { var check = $0; if check.status.isFailure { check.status = .passed }; return check }
            return suite
        }
        let text = TerminalSummary.render(passing)
        #expect(text.contains(": PASSED"))
        #expect(text.hasSuffix("All checks passed.\n"))
    }
}
