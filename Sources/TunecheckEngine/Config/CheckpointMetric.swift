import Foundation
import TunecheckJSON

/// The suite-level metrics a checkpoint's evaluation reports, by the names reports and `best_metric` use. A typed
/// set below the harness, so the trainer (which does not import the harness) can name and validate them.
public enum CheckpointMetric: String, SettingsEnum {
    // preference suite (TRL's names)
    case rewardAccuracy = "rewards/accuracies"
    case rewardMargin = "rewards/margins"
    case chosenReward = "rewards/chosen"
    case rejectedReward = "rewards/rejected"
    case chosenLogprob = "logps/chosen"
    case rejectedLogprob = "logps/rejected"
    case rawAccuracySum = "raw_accuracy_sum"
    case rawAccuracyMean = "raw_accuracy_mean"
    // repetition suite
    case maxRepetitionScore = "max_repetition_score"
    case meanRepetitionScore = "mean_repetition_score"
    case flaggedAnswers = "flagged_answers"
    // drift suite
    case gapSumDrift = "gap_sum_drift"
    case gapMeanDrift = "gap_mean_drift"
    case textLogprobChange = "text_logprob_change"
    case textKLMean = "text_kl_mean"
    case textSameTop = "text_same_top"
    // weight-delta suite
    case relativeDelta = "relative_delta"
    // golden suite
    case meanSimilarity = "mean_similarity"
}

/// Which way a metric is better, for picking the best checkpoint.
public enum MetricDirection: String, Sendable, Equatable {
    case maximize, minimize
}

/// `best_metric`: a metric and whether it is maximised (`rewards/accuracies`) or minimised (`-max_repetition_score`,
/// the `-` prefix as in the settings file).
public struct MetricGoal: Sendable, Equatable, Codable {
    public var metric: CheckpointMetric
    public var direction: MetricDirection

    public init(_ metric: CheckpointMetric, _ direction: MetricDirection = .maximize) {
        self.metric = metric
        self.direction = direction
    }

    /// Parses `name` or `-name`.
    public init(parsing text: String) throws(SettingsValueError) {
        let minimise = text.hasPrefix("-")
        let name = minimise ? String(text.dropFirst()) : text
        guard let metric = CheckpointMetric(rawValue: name) else {
            throw SettingsValueError("unknown metric '\(name)' (\(CheckpointMetric.allCases.map(\.rawValue).joined(separator: ", ")); prefix - to minimise)")
        }
        self.init(metric, minimise ? .minimize : .maximize)
    }

    /// The settings-file spelling: `name`, or `-name` when minimised.
    public var spelling: String { (direction == .minimize ? "-" : "") + metric.rawValue }

    /// True when `value` is better than `other` in this goal's direction.
    public func prefers(_ value: Double, over other: Double) -> Bool {
        direction == .minimize ? value < other : value > other
    }

    public init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        do { try self.init(parsing: container.decode(String.self)) } catch let error as SettingsValueError {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: error.reason)
        }
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(spelling)
    }
}
