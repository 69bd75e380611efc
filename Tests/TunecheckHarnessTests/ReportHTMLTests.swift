import Foundation
import Testing
@testable import TunecheckHarness

@Suite struct ReportHTMLTests {
    @Test func escapesReportTextEverywhere() {
        var report = ReportSample.report(extraAwkwardCheck: ReportSample.awkwardCheck)
        report.title = "<script>alert(1)</script> & co"
        report.settings.append((key: "<b>", value: "\"quoted\" 'single'"))
        let html = HTMLReport.render(report)
        #expect(!html.contains("<script>"))
        #expect(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"))
        #expect(html.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; co"))
        #expect(html.contains("<dt>&lt;b&gt;</dt><dd>&quot;quoted&quot; &#39;single&#39;</dd>"))
        #expect(html.contains("weird &lt;name&gt; &amp; &quot;quoted&quot;"))
        #expect(html.contains("esc:\\u{1B}[31m"))
        #expect(!html.unicodeScalars.contains { $0.value == 0x1B || $0.value == 0 || $0.value == 7 })
        #expect(!html.contains("<link") && !html.contains("src=\"http"))
    }

    @Test func containsChartsCheckpointsAndTheHighlightedSpan() {
        let report = ReportSample.report()
        let html = HTMLReport.render(report)
        #expect(html.hasPrefix("<!DOCTYPE html>"))
        #expect(html.components(separatedBy: "<svg").count - 1 == 4)
        for checkpoint in report.checkpoints { #expect(html.contains(checkpoint.name)) }
        #expect(html.contains("<mark title=\"repeated 1-gram ×5\">hormonal hormonal hormonal hormonal hormonal</mark>"))
        #expect(html.contains("⚑ flagged"))
        #expect(html.contains("answer repeats &quot;hormonal&quot; 5 times"))
        // Golden mismatch as a word diff.
        #expect(html.contains("<ins>city </ins>"))
        #expect(html.contains("<del>Paris.</del><ins>Lyon.</ins>"))
    }

    @Test func baseAnswersFormTheLeftColumn() {
        let html = HTMLReport.render(ReportSample.report())
        let prompt = html.components(separatedBy: "<article class=\"prompt").dropFirst().first { $0.contains("prompt-2") }!
        let base = prompt.range(of: "class=\"col-base\"")!
        let others = prompt.ranges(of: "class=\"col-ckpt\"")
        #expect(others.count == 3)
        #expect(others.allSatisfy { $0.lowerBound > base.lowerBound })
        #expect(prompt.contains("grid-row: 1 / span 3"))
    }

    @Test func chartsHandleMissingValuesASingleCheckpointAndLogScale() {
        var report = ReportSample.report()
        report.checkpoints = [CheckpointSummary(name: "only", preferenceAccuracy: 0.9, passed: true)]
        let single = HTMLReport.render(report)
        #expect(single.contains("only (") == false)  // no step known
        #expect(single.contains("no data"))          // margin, repetition and delta were not measured
        #expect(single.contains("<circle"))

        var wide = ReportSample.report()
        wide.checkpoints[1].relativeWeightDelta = 0.00001
        wide.checkpoints[0].relativeWeightDelta = 0
        let log = HTMLReport.render(wide, options: .init(weightDeltaScale: .log))
        #expect(log.contains("log scale"))
        #expect(log.contains("cannot be shown on a log scale"))
        let linear = HTMLReport.render(wide, options: .init(weightDeltaScale: .linear))
        #expect(!linear.contains("log scale"))
    }

    @Test func highlightSpansAreClampedAndOverlapsTrimmed() {
        let spans = [HighlightSpan(start: 4, end: 8, label: "b"), HighlightSpan(start: 2, end: 6, label: "a"),
                     HighlightSpan(start: 10, end: 99, label: "<c>"), HighlightSpan(start: -5, end: -1, label: "gone")]
        #expect(HTMLReport.highlighted("0123456789ab", spans)
            == "01<mark title=\"a\">2345</mark><mark title=\"b\">67</mark>89<mark title=\"&lt;c&gt;\">ab</mark>")
        #expect(HTMLReport.highlighted("e\u{301}<x>", [HighlightSpan(start: 1, end: 4, label: "")]) == "e\u{301}<mark>&lt;x&gt;</mark>")
    }

    @Test func wordDiffMarksInsertionsAndDeletions() {
        let pieces = WordDiff.diff("the quick brown fox", "the slow brown fox jumps")
        #expect(pieces == [
            .init(kind: .same, text: "the "), .init(kind: .deleted, text: "quick"), .init(kind: .inserted, text: "slow"),
            .init(kind: .same, text: " brown fox"), .init(kind: .inserted, text: " jumps"),
        ])
        #expect(WordDiff.diff("same", "same") == [.init(kind: .same, text: "same")])
        #expect(WordDiff.diff("", "new") == [.init(kind: .inserted, text: "new")])
    }

    @Test func niceTicksAreRound() {
        #expect(LineChart.niceTicks(0, 1, target: 5) == [0, 0.25, 0.5, 0.75, 1])
        #expect(LineChart.niceTicks(0, 1500, target: 6) == [0, 500, 1000, 1500])
        #expect(LineChart.tickLabel(0.25, step: 0.25) == "0.25")
        #expect(LineChart.tickLabel(20000, step: 5000) == "20k")
    }
}

@Test func chartAxisLabelsDropSharedPartsAtPunctuation() {
    #expect(LineChart.shortLabels(["base", "0000100_adapters", "0000200_adapters", "0000300_adapters"], limit: 12)
        == ["base", "0000100", "0000200", "0000300"])
    #expect(LineChart.shortLabels(["checkpoint-500", "checkpoint-1000"], limit: 12) == ["500", "1000"])
    #expect(LineChart.shortLabels(["short", "names"], limit: 12) == ["short", "names"])
    #expect(LineChart.compact(0.000251) == "0.00025")
    #expect(LineChart.compact(0.02512) == "0.0251")
    #expect(LineChart.compact(1.3) == "1.3")
    #expect(LineChart.compact(1234.6) == "1235")
}
