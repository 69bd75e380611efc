import Foundation
import TunecheckJSON

/// `best_metric`: a rankable metric and which way is better. Written `rewards/accuracies` (higher is better) or
/// `-max_repetition_score` (the `-` prefix: lower is better) in the settings file; the name must be one of
/// `MetricName.rankable`.
public struct MetricGoal: Sendable, Equatable, Codable {
    public var metric: MetricName
    public var direction: RankingDirection

    public init(_ metric: MetricName, _ direction: RankingDirection = .higher) {
        self.metric = metric
        self.direction = direction
    }

    /// Parses `name` or `-name`.
    public init(parsing text: String) throws(SettingsValueError) {
        let lower = text.hasPrefix("-")
        let metric = MetricName(lower ? String(text.dropFirst()) : text)
        guard MetricName.rankable[metric] != nil else {
            let names = MetricName.rankable.keys.sorted().map(\.rawValue).joined(separator: ", ")
            throw SettingsValueError("unknown metric '\(metric.rawValue)' (\(names); prefix - when lower is better)")
        }
        self.init(metric, lower ? .lower : .higher)
    }

    /// The settings-file spelling: `name`, or `-name` when lower is better.
    public var spelling: String { (direction == .lower ? "-" : "") + metric.rawValue }

    /// True when `value` is better than `other` in this goal's direction.
    public func prefers(_ value: Double, over other: Double) -> Bool {
        direction == .lower ? value < other : value > other
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
