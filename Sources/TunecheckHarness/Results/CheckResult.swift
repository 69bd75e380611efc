import Foundation
import TunecheckEngine

/// The outcome of one check (one JUnit `testcase`).
public enum CheckStatus: Sendable, Equatable {
    case passed
    /// The check ran and its condition does not hold. `message` is one line (the JUnit `message` attribute);
    /// `detail` is the evidence: offending text, numbers.
    case failed(message: String, detail: String)
    /// The check could not run with the inputs given (e.g. no base model for a drift check).
    case skipped(reason: String)
    /// The check crashed on bad input (a JUnit `error`).
    case error(message: String, detail: String)

    public var isFailure: Bool {
        switch self {
        case .failed, .error: return true
        case .passed, .skipped: return false
        }
    }
}

/// A named number attached to a check or suite (a JUnit `property`), kept in insertion order.
public struct Metric: Sendable, Equatable {
    public var name: String
    public var value: Double

    public init(_ name: String, _ value: Double) {
        self.name = name
        self.value = value
    }

    public init(_ name: MetricName, _ value: Double) {
        self.init(name.rawValue, value)
    }
}

/// Something a passing check wants a person to see (e.g. a mildly repetitive answer): shown in amber in the
/// terminal and HTML, under `warning` in report.json, and in the JUnit test case's `system-out` (JUnit has no
/// warning state; the test case passes).
public struct CheckWarning: Sendable, Equatable {
    /// One line.
    public var message: String
    /// The evidence: offending text, numbers.
    public var detail: String

    public init(message: String, detail: String = "") {
        self.message = message
        self.detail = detail
    }
}

/// One check: a threshold on a metric, or one evalset item.
public struct CheckResult: Sendable, Equatable {
    /// Short name, unique within its suite, e.g. `accuracy` or `prompt-3`.
    public var name: String
    public var status: CheckStatus
    public var durationSeconds: Double
    public var metrics: [Metric]
    /// A warning on a passing check; reports ignore it on other statuses.
    public var warning: CheckWarning?

    public init(name: String, status: CheckStatus, durationSeconds: Double = 0, metrics: [Metric] = [], warning: CheckWarning? = nil) {
        self.name = name
        self.status = status
        self.durationSeconds = durationSeconds
        self.metrics = metrics
        self.warning = warning
    }

    /// The warning when the check passed with one.
    public var passingWarning: CheckWarning? {
        if case .passed = status { return warning }
        return nil
    }
}

/// A suite's name: in suite files, `--suites`, reports. Each suite declares its own constant beside its code
/// (`extension SuiteKind { static let drift = ... }`); the known kinds are those of `SuiteRegistry`, in its order.
public struct SuiteKind: RawRepresentable, Hashable, Sendable, Comparable, CustomStringConvertible {
    public let rawValue: String

    /// A registered kind, or nil.
    public init?(rawValue: String) {
        guard SuiteRegistry.kinds.contains(where: { $0.rawValue == rawValue }) else { return nil }
        self.rawValue = rawValue
    }

    /// Declares a kind (for a suite's own `static let`).
    public init(declaring name: String) { rawValue = name }

    public var description: String { rawValue }

    /// Registry order.
    public static func < (lhs: SuiteKind, rhs: SuiteKind) -> Bool {
        let order = SuiteRegistry.kinds
        return (order.firstIndex(of: lhs) ?? order.count, lhs.rawValue) < (order.firstIndex(of: rhs) ?? order.count, rhs.rawValue)
    }
}

extension SuiteKind: CaseIterable {
    public static var allCases: [SuiteKind] { SuiteRegistry.kinds }
}

extension SuiteKind: Codable {
    public init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        let name = try container.decode(String.self)
        guard let kind = SuiteKind(rawValue: name) else {
            throw DecodingError.dataCorruptedError(
                in: container, debugDescription: "unknown suite '\(name)' (\(SuiteKind.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        self = kind
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}

/// A per-item result a suite reports beside its checks (`items` in report.json).
public enum SuiteItem: Sendable, Equatable {
    /// A multiple-choice item: each choice's summed log-likelihood, the predictions and the right answer.
    case choice(ChoiceOutcome)
    /// A perplexity text: its summed rolling log-likelihood and lm-eval's word and byte counts.
    case text(id: String, loglikelihood: Double, words: Int, bytes: Int)
}

/// One suite run on one checkpoint (one JUnit `testsuite`).
public struct SuiteResult: Sendable, Equatable {
    public var kind: SuiteKind
    /// The checkpoint's display name (`base`, `0000100_adapters`, `checkpoint-500`, ...).
    public var checkpoint: String
    public var checks: [CheckResult]
    /// Suite-level metrics (JUnit `properties`), e.g. `accuracy`, `mean_margin`.
    public var metrics: [Metric]
    public var startedAt: Date
    public var durationSeconds: Double
    /// Per-item results (multiple-choice items, perplexity texts).
    public var items: [SuiteItem]
    /// The check whose outcome is the suite's verdict, when item checks may fail without failing the suite (the
    /// choices suite: an item the checkpoint lost is a failing test case, the suite fails on the statistical
    /// verdict). Nil: every failing check fails the suite.
    public var verdictCheck: String?

    public init(kind: SuiteKind, checkpoint: String, checks: [CheckResult], metrics: [Metric] = [], startedAt: Date = Date(), durationSeconds: Double = 0,
                items: [SuiteItem] = [], verdictCheck: String? = nil) {
        self.kind = kind
        self.checkpoint = checkpoint
        self.checks = checks
        self.metrics = metrics
        self.startedAt = startedAt
        self.durationSeconds = durationSeconds
        self.items = items
        self.verdictCheck = verdictCheck
    }

    public var failureCount: Int { checks.filter { if case .failed = $0.status { return true }; return false }.count }
    public var errorCount: Int { checks.filter { if case .error = $0.status { return true }; return false }.count }
    public var skippedCount: Int { checks.filter { if case .skipped = $0.status { return true }; return false }.count }
    /// Passing checks that carry a warning.
    public var warningCount: Int { checks.filter { $0.passingWarning != nil }.count }
    public var passed: Bool {
        !checks.contains { check in
            switch check.status {
            case .error: return true
            case .failed: return verdictCheck == nil || check.name == verdictCheck
            case .passed, .skipped: return false
            }
        }
    }

    public func metric(_ name: MetricName) -> Double? { metrics.first { $0.name == name.rawValue }?.value }
}
