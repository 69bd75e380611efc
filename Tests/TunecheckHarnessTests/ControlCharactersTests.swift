import Foundation
import Testing
@testable import TunecheckHarness

/// The one control-character escaper behind the terminal summary, the HTML report and JUnit XML.
@Suite struct ControlCharactersTests {
    static let awkward = "bell:\u{07} esc:\u{1B}[31m nul:\u{00} del:\u{7F} c1:\u{85}\u{9B} nonchar:\u{FFFE}\u{FFFF} tab:\t lf:\n cr:\r "
        + "kept: emoji 🧪 cjk 漢字 rtl שלום combining e\u{301} nbsp\u{A0} bom\u{FEFF} U+FFFD \u{FFFD}"

    @Test func escapesControlsAndKeepsEverythingElse() {
        #expect(ControlCharacters.escape(Self.awkward, whitespace: .keep)
            == "bell:\\u{7} esc:\\u{1B}[31m nul:\\u{0} del:\\u{7F} c1:\\u{85}\\u{9B} nonchar:\\u{FFFE}\\u{FFFF} tab:\t lf:\n cr:\r "
            + "kept: emoji 🧪 cjk 漢字 rtl שלום combining e\u{301} nbsp\u{A0} bom\u{FEFF} U+FFFD \u{FFFD}")
    }

    @Test func whitespacePolicies() {
        let text = "a\tb\nc\rd\r\ne\u{1B}"
        #expect(ControlCharacters.escape(text, whitespace: .keep) == "a\tb\nc\rd\r\ne\\u{1B}")
        #expect(ControlCharacters.escape(text, whitespace: .keepLineFeeds) == "a b\nc d \ne\\u{1B}")
        #expect(ControlCharacters.escape(text, whitespace: .spaces) == "a b c d  e\\u{1B}")
    }

    @Test func cleanTextIsReturnedAsIs() {
        let clean = "Plain text, emoji 🎉, Ελληνικά."
        for policy in [ControlCharacters.Whitespace.keep, .keepLineFeeds, .spaces] {
            #expect(ControlCharacters.escape(clean, whitespace: policy) == clean)
        }
        #expect(ControlCharacters.escape("", whitespace: .spaces) == "")
    }

    @Test func isControlCoversC0DelC1AndTheTwoNoncharacters() {
        let controls = (0...0x1F).map { Unicode.Scalar($0)! } + (0x7F...0x9F).map { Unicode.Scalar($0)! } + ["\u{FFFE}", "\u{FFFF}"]
        for scalar in controls { #expect(ControlCharacters.isControl(scalar), "\(scalar.value)") }
        for value in [0x20, 0x7E, 0xA0, 0x200B, 0xFEFF, 0xFFFD, 0x1F600] { #expect(!ControlCharacters.isControl(Unicode.Scalar(value)!)) }
    }

    /// The three writers all use it, each with its whitespace policy.
    @Test func theReportWritersShareIt() throws {
        #expect(TerminalSummary.printable(Self.awkward) == ControlCharacters.escape(Self.awkward, whitespace: .spaces))
        #expect(ReportSupport.xmlSafe(Self.awkward) == ControlCharacters.escape(Self.awkward, whitespace: .keep))
        #expect(HTML.escape("<b>\u{1B}[1m&\u{85}</b>") == "&lt;b&gt;\\u{1B}[1m&amp;\\u{85}&lt;/b&gt;")
        let check = CheckResult(name: "c\u{1B}", status: .failed(message: "m\u{07}\u{9B}", detail: "d\u{0}"))
        let report = EvaluationReport(title: "t", startedAt: Date(timeIntervalSince1970: 0), durationSeconds: 0,
                                      suites: [SuiteResult(kind: .golden, checkpoint: "x", checks: [check])], checkpoints: [])
        #expect(TerminalSummary.render(report).contains("x › golden › c\\u{1B}: m\\u{7}\\u{9B}"))
        #expect(HTMLReport.render(report).contains("m\\u{7}\\u{9B}"))
        let xml = String(decoding: try JUnitReport.render(report, hostname: "h"), as: UTF8.self)
        #expect(xml.contains("message=\"m\\u{7}\\u{9B}\"") && xml.contains("d\\u{0}"))
    }
}
