import Foundation

/// Helpers shared by the report writers: number and date formatting, the suites × checkpoints grid,
/// and text clean-up for formats that cannot carry every character.
enum ReportSupport {
    // MARK: Dates and numbers

    /// ISO-8601 in UTC with milliseconds, e.g. `2025-03-01T12:00:00.250Z` (JSON, HTML).
    static func iso8601(_ date: Date) -> String {
        date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
    }

    /// A duration in seconds for the XSD's `SUREFIRE_TIME` (digits, optional fraction, no sign or exponent).
    static func seconds(_ value: Double) -> String {
        guard value.isFinite, value > 0 else { return "0.000" }
        return String(format: "%.3f", value)
    }

    /// A human duration: `850 ms`, `12.3 s`, `4 min 05 s`, `1 h 02 min`.
    static func humanDuration(_ value: Double) -> String {
        guard value.isFinite, value >= 0 else { return "–" }
        if value < 1 { return "\(Int((value * 1000).rounded())) ms" }
        if value < 60 { return String(format: "%.1f s", value) }
        let total = Int(value.rounded())
        if total < 3600 { return String(format: "%d min %02d s", total / 60, total % 60) }
        return String(format: "%d h %02d min", total / 3600, (total % 3600) / 60)
    }

    /// A metric value for people: up to 4 significant digits, scientific notation for very small or large numbers.
    static func number(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value > 0 ? "∞" : "−∞" }
        if value == value.rounded(), abs(value) < 1e9 { return String(Int(value)) }
        let magnitude = abs(value)
        if magnitude >= 1e6 || magnitude < 1e-3 { return String(format: "%.3g", value) }
        var text = String(format: "%.4g", value)
        if text.contains("e") { text = String(format: "%.4f", value) }
        return text
    }

    /// A metric value for machine-read places (JUnit properties): shortest round-trip form.
    static func exactNumber(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value > 0 ? "Infinity" : "-Infinity" }
        if value == value.rounded(), abs(value) < 9e15 { return String(Int(value)) }
        return "\(value)"
    }

    // MARK: Text

    /// The first line of `text`, trimmed and cut to `limit` characters (JUnit `message`, terminal lines).
    static func oneLine(_ text: String, limit: Int = 300) -> String {
        let collapsed = text.split(omittingEmptySubsequences: true, whereSeparator: \.isNewline)
            .map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }
        let first = collapsed.first ?? ""
        let joined = collapsed.count > 1 ? first + " …" : first
        return truncate(joined, to: limit)
    }

    /// Cuts `text` to at most `limit` characters, ending in `…` when cut.
    static func truncate(_ text: String, to limit: Int) -> String {
        guard limit > 0 else { return "" }
        guard text.count > limit else { return text }
        if limit == 1 { return "…" }
        return String(text.prefix(limit - 1)) + "…"
    }

    /// Makes `text` storable in XML 1.0 (JUnit): control characters become visible escapes such as `\u{1B}`
    /// (`ControlCharacters.escape`), so the evidence survives; tab, LF and CR stay.
    static func xmlSafe(_ text: String) -> String { ControlCharacters.escape(text, whitespace: .keep) }

    // MARK: Status words

    static func statusWord(_ status: CheckStatus) -> String {
        switch status {
        case .passed: return "passed"
        case .failed: return "failed"
        case .skipped: return "skipped"
        case .error: return "error"
        }
    }
}

/// The suites × checkpoints grid the HTML table and the terminal summary show.
struct SuiteGrid {
    enum Cell: Equatable {
        /// The suite did not run on this checkpoint.
        case notRun
        /// Every check was skipped.
        case skipped(count: Int)
        /// No failure or error; `warnings` passing checks carry a warning.
        case passed(checks: Int, skipped: Int, warnings: Int)
        case failed(failures: Int, errors: Int, checks: Int)
    }

    /// Checkpoints in the order of `report.checkpoints` when that lists every checkpoint a suite ran on; otherwise
    /// in order of first appearance in the suites, then summary-only ones.
    let checkpoints: [String]
    /// Suite kinds that ran at least once, in `SuiteKind.allCases` order.
    let kinds: [SuiteKind]
    private let cells: [String: Cell]

    init(_ report: EvaluationReport) {
        var names: [String] = []
        var seen = Set<String>()
        let summarised = Set(report.checkpoints.map(\.name))
        let summariesFirst = report.suites.allSatisfy { summarised.contains($0.checkpoint) }
        let candidates = summariesFirst ? report.checkpoints.map(\.name) + report.suites.map(\.checkpoint)
                                        : report.suites.map(\.checkpoint) + report.checkpoints.map(\.name)
        for name in candidates where seen.insert(name).inserted {
            names.append(name)
        }
        checkpoints = names
        let present = Set(report.suites.map(\.kind))
        kinds = SuiteKind.allCases.filter(present.contains)

        // Several suites of one kind on one checkpoint (e.g. two evalsets) are merged into one cell.
        var grouped: [String: [SuiteResult]] = [:]
        for suite in report.suites { grouped[Self.key(suite.checkpoint, suite.kind), default: []].append(suite) }
        var cells: [String: Cell] = [:]
        for (key, suites) in grouped {
            let checks = suites.flatMap(\.checks)
            let failures = suites.map(\.failureCount).reduce(0, +)
            let errors = suites.map(\.errorCount).reduce(0, +)
            let skipped = suites.map(\.skippedCount).reduce(0, +)
            // A suite decided by a verdict check (choices) can pass with failing item cases: amber, not red.
            let passed = suites.allSatisfy(\.passed)
            if failures + errors > 0 && !passed {
                cells[key] = .failed(failures: failures, errors: errors, checks: checks.count)
            } else if failures > 0 {
                cells[key] = .passed(checks: checks.count, skipped: skipped, warnings: suites.map(\.warningCount).reduce(0, +) + failures)
            } else if !checks.isEmpty && skipped == checks.count {
                cells[key] = .skipped(count: skipped)
            } else {
                cells[key] = .passed(checks: checks.count, skipped: skipped, warnings: suites.map(\.warningCount).reduce(0, +))
            }
        }
        self.cells = cells
    }

    func cell(checkpoint: String, kind: SuiteKind) -> Cell { cells[Self.key(checkpoint, kind)] ?? .notRun }

    private static func key(_ checkpoint: String, _ kind: SuiteKind) -> String { "\(kind.rawValue)\u{0}\(checkpoint)" }
}

/// One failing (failed or errored) check with its place, in report order.
struct FailingCheck {
    var suite: SuiteResult
    var check: CheckResult
    var isError: Bool
    var message: String
    var detail: String

    static func all(in report: EvaluationReport) -> [FailingCheck] {
        report.suites.flatMap { suite in
            suite.checks.compactMap { check in
                switch check.status {
                case let .failed(message, detail):
                    return FailingCheck(suite: suite, check: check, isError: false, message: message, detail: detail)
                case let .error(message, detail):
                    return FailingCheck(suite: suite, check: check, isError: true, message: message, detail: detail)
                case .passed, .skipped:
                    return nil
                }
            }
        }
    }
}

/// One passing check with a warning, with its place, in report order.
struct WarningCheck {
    var suite: SuiteResult
    var check: CheckResult
    var warning: CheckWarning

    static func all(in report: EvaluationReport) -> [WarningCheck] {
        report.suites.flatMap { suite in
            suite.checks.compactMap { check in check.passingWarning.map { WarningCheck(suite: suite, check: check, warning: $0) } }
        }
    }
}
