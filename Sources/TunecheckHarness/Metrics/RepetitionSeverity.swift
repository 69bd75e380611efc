import Foundation

/// How repetitive one answer is, under a `RepetitionThresholds`.
public enum RepetitionSeverity: String, Sendable, Equatable, CaseIterable, Codable {
    /// Within every mild limit.
    case clean
    /// Breaks a mild limit (`max_*`, `min_distinct_2`) but no severe one: a short repeat (`hormonal` four times, a
    /// phrase three times). A warning, unless too many of a checkpoint's answers are mild (`max_mild_fraction`).
    case mild
    /// Breaks a severe limit (`severe_*`), or is empty or one token repeated: a degenerate loop. Fails the checkpoint.
    case severe
}

/// The verdict on one answer: its severity and, unless clean, the one-line message and the detail of the
/// worst rule it breaks at that level (`rule: severe_repeated_word_run 5` for a severe answer).
public struct RepetitionVerdict: Sendable, Equatable {
    public var severity: RepetitionSeverity
    public var message: String
    public var detail: String

    public static let clean = RepetitionVerdict(severity: .clean, message: "", detail: "")
}

extension RepetitionAnalyzer {
    /// Judges `analysis` at the severe level first, then at the mild level (`judge`).
    public static func classify(_ analysis: RepetitionAnalysis, text: String, thresholds: RepetitionThresholds) -> RepetitionVerdict {
        if let severe = judge(analysis, text: text, limits: thresholds.limits(.severe)) {
            return RepetitionVerdict(severity: .severe, message: severe.message, detail: severe.detail)
        }
        if let mild = judge(analysis, text: text, limits: thresholds.limits(.mild)) {
            return RepetitionVerdict(severity: .mild, message: mild.message, detail: mild.detail)
        }
        return .clean
    }
}
