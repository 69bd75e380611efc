import Foundation

/// DPO preference metrics on held-out pairs, with TRL's definitions: implicit reward
/// `r = β·(log π(y|x) − log π_ref(y|x))` summed over response tokens; `rewards/accuracies` = mean(r_chosen > r_rejected);
/// `rewards/margins` = mean(r_chosen − r_rejected); `rewards/chosen`, `rewards/rejected` their means.
/// Also the raw accuracy without a reference (log π(chosen) > log π(rejected)), summed and length-normalised.
public struct PreferenceMetrics: Sendable, Equatable {
    public var accuracy: Double
    public var meanMargin: Double
    public var meanChosenReward: Double
    public var meanRejectedReward: Double
    public var rawAccuracySum: Double
    public var rawAccuracyMean: Double
    public var meanChosenLogprob: Double
    public var meanRejectedLogprob: Double

    public init(policy: [PairScore], reference: [PairScore], beta: Double) {
        precondition(policy.count == reference.count && !policy.isEmpty, "preference metrics need matching, non-empty score lists")
        var correct = 0.0, margins = 0.0, chosenRewards = 0.0, rejectedRewards = 0.0, rawSum = 0.0, rawMean = 0.0
        for (pi, ref) in zip(policy, reference) {
            let chosenReward = beta * (pi.chosen.sum - ref.chosen.sum)
            let rejectedReward = beta * (pi.rejected.sum - ref.rejected.sum)
            if chosenReward > rejectedReward { correct += 1 }
            margins += chosenReward - rejectedReward
            chosenRewards += chosenReward
            rejectedRewards += rejectedReward
            if pi.chosen.sum > pi.rejected.sum { rawSum += 1 }
            if pi.chosen.mean > pi.rejected.mean { rawMean += 1 }
        }
        let count = Double(policy.count)
        accuracy = correct / count
        meanMargin = margins / count
        meanChosenReward = chosenRewards / count
        meanRejectedReward = rejectedRewards / count
        rawAccuracySum = rawSum / count
        rawAccuracyMean = rawMean / count
        meanChosenLogprob = policy.map(\.chosen.sum).reduce(0, +) / count
        meanRejectedLogprob = policy.map(\.rejected.sum).reduce(0, +) / count
    }

    public var asMetrics: [Metric] {
        [Metric("rewards/accuracies", accuracy), Metric("rewards/margins", meanMargin), Metric("rewards/chosen", meanChosenReward),
         Metric("rewards/rejected", meanRejectedReward), Metric("logps/chosen", meanChosenLogprob), Metric("logps/rejected", meanRejectedLogprob),
         Metric("raw_accuracy_sum", rawAccuracySum), Metric("raw_accuracy_mean", rawAccuracyMean)]
    }
}

public enum PreferenceSuite {
    public static func run(checkpoint: String, policy: [PairScore], reference: [PairScore], thresholds: PreferenceThresholds) -> SuiteResult {
        let started = Date()
        let metrics = PreferenceMetrics(policy: policy, reference: reference, beta: thresholds.beta)
        var checks: [CheckResult] = []
        let accuracyStatus: CheckStatus = metrics.accuracy >= thresholds.minAccuracy ? .passed : .failed(
            message: String(format: "preference accuracy %.3f below %.3f", metrics.accuracy, thresholds.minAccuracy),
            detail: String(format: "%d of %d held-out pairs ranked right (reward margin mean %.4f, β %.3g)",
                           Int((metrics.accuracy * Double(policy.count)).rounded()), policy.count, metrics.meanMargin, thresholds.beta))
        checks.append(CheckResult(name: "accuracy", status: accuracyStatus, metrics: [Metric("rewards/accuracies", metrics.accuracy)]))
        var marginStatus = CheckStatus.passed
        if metrics.meanMargin > thresholds.maxMargin {
            marginStatus = .failed(
                message: String(format: "reward margin %.3f exceeds %.3g: the run is unstable (margin explosion)", metrics.meanMargin, thresholds.maxMargin),
                detail: String(format: "rewards/chosen %.4f, rewards/rejected %.4f, logps/chosen %.2f, logps/rejected %.2f",
                               metrics.meanChosenReward, metrics.meanRejectedReward, metrics.meanChosenLogprob, metrics.meanRejectedLogprob))
        } else if let minimum = thresholds.minMargin, metrics.meanMargin < minimum {
            marginStatus = .failed(message: String(format: "reward margin %.4f below %.4g", metrics.meanMargin, minimum),
                                   detail: String(format: "rewards/chosen %.4f, rewards/rejected %.4f", metrics.meanChosenReward, metrics.meanRejectedReward))
        }
        checks.append(CheckResult(name: "margin", status: marginStatus, metrics: [Metric("rewards/margins", metrics.meanMargin)]))
        for (pi, ref) in zip(policy, reference) {
            let chosenReward = thresholds.beta * (pi.chosen.sum - ref.chosen.sum)
            let rejectedReward = thresholds.beta * (pi.rejected.sum - ref.rejected.sum)
            // Items carry their numbers; only the aggregate checks pass or fail (one misranked pair is not a failure).
            checks.append(CheckResult(name: "pair \(pi.id)", status: .passed, metrics: [
                Metric("reward_chosen", chosenReward), Metric("reward_rejected", rejectedReward),
                Metric("margin", chosenReward - rejectedReward), Metric("ranked_right", chosenReward > rejectedReward ? 1 : 0)]))
        }
        return SuiteResult(kind: .preference, checkpoint: checkpoint, checks: checks, metrics: metrics.asMetrics,
                           startedAt: started, durationSeconds: Date().timeIntervalSince(started))
    }
}
