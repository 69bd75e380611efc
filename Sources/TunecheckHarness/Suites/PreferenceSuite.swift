import Foundation
import TunecheckEngine

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
        self.init(rewards: Self.rewards(policy: policy, reference: reference, beta: beta), policy: policy)
    }

    init(rewards: [ImplicitReward], policy: [PairScore]) {
        precondition(rewards.count == policy.count && !policy.isEmpty, "preference metrics need matching, non-empty score lists")
        let summary = RewardSummary(rewards: rewards, policyChosen: policy.map(\.chosen.sum), policyRejected: policy.map(\.rejected.sum))
        let count = Double(policy.count)
        accuracy = summary.accuracy
        meanMargin = summary.margins
        meanChosenReward = summary.chosen
        meanRejectedReward = summary.rejected
        rawAccuracySum = Double(policy.filter { $0.chosen.sum > $0.rejected.sum }.count) / count
        rawAccuracyMean = Double(policy.filter { $0.chosen.mean > $0.rejected.mean }.count) / count
        meanChosenLogprob = summary.logpsChosen
        meanRejectedLogprob = summary.logpsRejected
    }

    /// Each pair's implicit rewards (TRL's definition, from the engine).
    static func rewards(policy: [PairScore], reference: [PairScore], beta: Double) -> [ImplicitReward] {
        zip(policy, reference).map { ImplicitReward(policy: $0.spans, reference: $1.spans, beta: beta) }
    }

    public var asMetrics: [Metric] {
        [Metric(.rewardsAccuracies, accuracy), Metric(.rewardsMargins, meanMargin), Metric(.rewardsChosen, meanChosenReward),
         Metric(.rewardsRejected, meanRejectedReward), Metric(.logpsChosen, meanChosenLogprob), Metric(.logpsRejected, meanRejectedLogprob),
         Metric(.rawAccuracySum, rawAccuracySum), Metric(.rawAccuracyMean, rawAccuracyMean)]
    }
}

public enum PreferenceSuite: EvaluationSuite {
    public static let kind = SuiteKind.preference
    public static let shortName = "pref"
    public static let requirement = "a base model, checkpoints and pairs"

    public static func canRun(with inputs: SuiteInputs) -> Bool { inputs.base && inputs.checkpoints && inputs.pairs }
    public static func applies(to subject: SubjectKind) -> Bool { subject == .checkpoint }
    public static func sharding(on subject: SubjectKind) -> SuiteSharding { .computations([.pairScores, .pairScores.base]) }

    public static func run(in context: EvaluationContext) throws -> SuiteRun? {
        guard let reference = try context.session.basePairScores(), let policy = try context.pairScores() else { return nil }
        return SuiteRun(result: run(checkpoint: context.name, policy: policy, reference: reference, thresholds: context.thresholds.preference))
    }

    public static func run(checkpoint: String, policy: [PairScore], reference: [PairScore], thresholds: PreferenceThresholds) -> SuiteResult {
        let started = Date()
        let rewards = PreferenceMetrics.rewards(policy: policy, reference: reference, beta: thresholds.beta)
        let metrics = PreferenceMetrics(rewards: rewards, policy: policy)
        var checks: [CheckResult] = []
        let accuracyStatus: CheckStatus = metrics.accuracy >= thresholds.minAccuracy ? .passed : .failed(
            message: String(format: "preference accuracy %.3f below %.3f", metrics.accuracy, thresholds.minAccuracy),
            detail: String(format: "%d of %d held-out pairs ranked right (reward margin mean %.4f, β %.3g)",
                           Int((metrics.accuracy * Double(policy.count)).rounded()), policy.count, metrics.meanMargin, thresholds.beta))
        checks.append(CheckResult(name: "accuracy", status: accuracyStatus, metrics: [Metric(.rewardsAccuracies, metrics.accuracy)]))
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
        checks.append(CheckResult(name: "margin", status: marginStatus, metrics: [Metric(.rewardsMargins, metrics.meanMargin)]))
        for (pi, reward) in zip(policy, rewards) {
            // Items carry their numbers; only the aggregate checks pass or fail (one misranked pair is not a failure).
            checks.append(CheckResult(name: "pair \(pi.id)", status: .passed, metrics: [
                Metric("reward_chosen", reward.chosen), Metric("reward_rejected", reward.rejected),
                Metric("margin", reward.margin), Metric("ranked_right", reward.rankedRight ? 1 : 0)]))
        }
        return SuiteResult(kind: .preference, checkpoint: checkpoint, checks: checks, metrics: metrics.asMetrics,
                           startedAt: started, durationSeconds: Date().timeIntervalSince(started))
    }
}

extension SuiteKind {
    public static let preference = SuiteKind(declaring: "preference")
}
