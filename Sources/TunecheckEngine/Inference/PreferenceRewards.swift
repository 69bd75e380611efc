import Foundation

/// DPO's implicit rewards of one pair, with TRL's definitions: `r = β·(log π(y|x) − log π_ref(y|x))` over the
/// summed response log-probs (TRL computes its reward metrics from summed log-probs whatever the loss type).
/// The one place this arithmetic lives: the trainer's DPO metrics and the harness's preference suite both use it.
public struct ImplicitReward: Sendable, Equatable {
    public var chosen: Double
    public var rejected: Double
    public var margin: Double { chosen - rejected }
    /// TRL's `rewards/accuracies` counts a pair when the chosen reward is strictly greater.
    public var rankedRight: Bool { chosen > rejected }

    /// From summed log-probs of the policy and the reference.
    public init(policyChosen: Double, policyRejected: Double, referenceChosen: Double, referenceRejected: Double, beta: Double) {
        chosen = beta * (policyChosen - referenceChosen)
        rejected = beta * (policyRejected - referenceRejected)
    }

    public init(policy: PairSpanScores, reference: PairSpanScores, beta: Double) {
        self.init(policyChosen: policy.chosen.sum, policyRejected: policy.rejected.sum,
                  referenceChosen: reference.chosen.sum, referenceRejected: reference.rejected.sum, beta: beta)
    }
}

/// TRL's batch metrics over pairs: means of `rewards/chosen`, `rewards/rejected`, `rewards/margins`,
/// `rewards/accuracies`, and of the policy's summed `logps/chosen`, `logps/rejected`.
public struct RewardSummary: Sendable, Equatable {
    public var chosen: Double
    public var rejected: Double
    public var margins: Double
    public var accuracy: Double
    public var logpsChosen: Double
    public var logpsRejected: Double

    /// `rewards[i]` with the policy's summed log-probs of the same pair. Empty input gives zeros.
    public init(rewards: [ImplicitReward], policyChosen: [Double], policyRejected: [Double]) {
        let count = Double(max(rewards.count, 1))
        var chosenSum = 0.0, rejectedSum = 0.0, marginSum = 0.0, correct = 0.0
        for reward in rewards {
            chosenSum += reward.chosen
            rejectedSum += reward.rejected
            marginSum += reward.margin
            if reward.rankedRight { correct += 1 }
        }
        chosen = chosenSum / count
        rejected = rejectedSum / count
        margins = marginSum / count
        accuracy = correct / count
        logpsChosen = policyChosen.reduce(0, +) / count
        logpsRejected = policyRejected.reduce(0, +) / count
    }

    /// In TRL's logging order.
    public var metrics: [(MetricName, Double)] {
        [(.rewardsChosen, chosen), (.rewardsRejected, rejected), (.rewardsAccuracies, accuracy), (.rewardsMargins, margins),
         (.logpsChosen, logpsChosen), (.logpsRejected, logpsRejected)]
    }
}
