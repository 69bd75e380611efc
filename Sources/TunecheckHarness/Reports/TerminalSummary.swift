import Foundation

/// The end-of-run summary for a terminal or CI log: a checkpoints × suites table (✔ passed, ⚠ passed with
/// warnings, ✘ failed or errored, – not run or skipped), then each warning and each failing check with its
/// one-line message. Every line fits `width` columns
/// (names and messages are cut with `…`; wide East Asian characters count as one column). ANSI colour only with
/// `colored: true`.
public enum TerminalSummary {
    public static func render(_ report: EvaluationReport, width: Int = 100, colored: Bool = false) -> String {
        let width = max(width, 24)
        let style = Style(enabled: colored)
        let grid = SuiteGrid(report)
        let allFailing = FailingCheck.all(in: report)
        // Failing item cases of a suite that passed on its verdict (choices: items the checkpoint lost).
        let failing = allFailing.filter { !$0.suite.passed }
        let lostInPassing = allFailing.filter { $0.suite.passed }
        let warnings = WarningCheck.all(in: report)
        var lines: [String] = []

        let checks = report.suites.flatMap(\.checks)
        let failures = allFailing.filter { !$0.isError }.count, errors = allFailing.filter(\.isError).count
        let skipped = report.suites.map(\.skippedCount).reduce(0, +)
        var counts = "\(checks.count - failures - errors - skipped)/\(checks.count) checks passed"
        if failures > 0 { counts += ", \(failures) failed" }
        if errors > 0 { counts += ", \(errors) error\(errors == 1 ? "" : "s")" }
        if skipped > 0 { counts += ", \(skipped) skipped" }
        if !warnings.isEmpty { counts += ", \(warnings.count) warning\(warnings.count == 1 ? "" : "s")" }
        let verdict = report.passed ? "PASSED" : "FAILED"
        var tail = " · " + counts
        var titleRoom = width - 2 - verdict.count - tail.count
        if titleRoom < 12 {
            tail = ""
            titleRoom = width - 2 - verdict.count
        }
        let title = ReportSupport.truncate(printable(ReportSupport.oneLine(report.title, limit: 1000)), to: max(titleRoom, 1))
        lines.append(style.bold(title + ": ") + (report.passed ? style.green(verdict) : style.red(verdict)) + tail)

        // Table: checkpoint column, then one column per suite kind.
        if !grid.kinds.isEmpty {
            lines.append("")
            let names = grid.checkpoints.map(printable)
            let nameWidth = min(max(names.map(\.count).max() ?? 10, "checkpoint".count), max(width / 3, 10))
            let available = width - nameWidth
            let headers = columnHeaders(grid.kinds, available: available)
            var header = pad("checkpoint", nameWidth)
            for title in headers { header += "  " + title }
            lines.append(style.dim(header))
            for (checkpoint, name) in zip(grid.checkpoints, names) {
                var line = style.bold(pad(ReportSupport.truncate(name, to: nameWidth), nameWidth))
                for (kind, title) in zip(grid.kinds, headers) {
                    let symbol: String
                    switch grid.cell(checkpoint: checkpoint, kind: kind) {
                    case .notRun, .skipped: symbol = style.dim("–")
                    case .passed(_, _, let warned) where warned > 0: symbol = style.yellow("⚠")
                    case .passed: symbol = style.green("✔")
                    case .failed: symbol = style.red("✘")
                    }
                    line += "  " + symbol + String(repeating: " ", count: max(title.count - 1, 0))
                }
                while line.hasSuffix(" ") { line.removeLast() }
                lines.append(line)
            }
        }

        // One line per item: `  <mark> <checkpoint › suite › check>: <message>`, cut to the width.
        func itemLine(mark: String, markWidth: Int, suite: SuiteResult, check: CheckResult, message: String) -> String {
            let place = printable("\(suite.checkpoint) › \(suite.kind.rawValue) › \(check.name)")
            let message = printable(ReportSupport.oneLine(message, limit: 1000))
            let room = width - 2 - markWidth - 1
            let placeShown = ReportSupport.truncate(place, to: max(min(place.count, room * 2 / 3), 8))
            let messageRoom = room - placeShown.count - 2
            var line = "  " + mark + " " + style.bold(placeShown)
            if messageRoom >= 4 && !message.isEmpty { line += ": " + ReportSupport.truncate(message, to: messageRoom) }
            return line
        }
        if !warnings.isEmpty {
            lines.append("")
            lines.append(style.bold("Warnings (\(warnings.count)):"))
            for item in warnings {
                lines.append(itemLine(mark: style.yellow("⚠"), markWidth: 1, suite: item.suite, check: item.check, message: item.warning.message))
            }
        }
        if !lostInPassing.isEmpty {
            lines.append("")
            lines.append(style.bold("Failing item cases in suites that passed their verdict (\(lostInPassing.count)):"))
            for item in lostInPassing {
                lines.append(itemLine(mark: style.yellow("⚠"), markWidth: 1, suite: item.suite, check: item.check, message: item.message))
            }
        }
        if !failing.isEmpty {
            lines.append("")
            lines.append(style.bold("Failing checks (\(failing.count)):"))
            for item in failing {
                let mark = item.isError ? style.red("✘ error") : style.red("✘")
                lines.append(itemLine(mark: mark, markWidth: item.isError ? 7 : 1, suite: item.suite, check: item.check, message: item.message))
            }
        } else if !checks.isEmpty {
            lines.append("")
            if !lostInPassing.isEmpty {
                lines.append(style.green("All suites passed their verdicts."))
            } else {
                lines.append(style.green(warnings.isEmpty ? "All checks passed." : "All checks passed (with warnings)."))
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Suite column titles: full names if they fit, then short names, then cut to fit.
    static func columnHeaders(_ kinds: [SuiteKind], available: Int) -> [String] {
        let full = kinds.map(\.rawValue)
        if full.map({ $0.count + 2 }).reduce(0, +) <= available { return full }
        let short = kinds.map(shortName)
        if short.map({ $0.count + 2 }).reduce(0, +) <= available { return short }
        let each = max(available / max(kinds.count, 1) - 2, 1)
        return short.map { String($0.prefix(each)) }
    }

    static func shortName(_ kind: SuiteKind) -> String {
        SuiteRegistry.suite(kind)?.shortName ?? kind.rawValue
    }

    /// Control characters (escape sequences in model output) shown as `\u{1B}` so they cannot move the cursor
    /// or recolour the terminal; tabs and line breaks as spaces (every item is one line).
    static func printable(_ text: String) -> String { ControlCharacters.escape(text, whitespace: .spaces) }

    private static func pad(_ text: String, _ width: Int) -> String {
        text.count >= width ? text : text + String(repeating: " ", count: width - text.count)
    }

    private struct Style {
        var enabled: Bool
        func wrap(_ code: String, _ text: String) -> String { enabled ? "\u{1B}[\(code)m\(text)\u{1B}[0m" : text }
        func bold(_ text: String) -> String { wrap("1", text) }
        func dim(_ text: String) -> String { wrap("2", text) }
        func green(_ text: String) -> String { wrap("32", text) }
        func red(_ text: String) -> String { wrap("31", text) }
        func yellow(_ text: String) -> String { wrap("33", text) }
    }
}
