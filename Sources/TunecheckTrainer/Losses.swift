import Foundation
import TunecheckEngine

/// SFT: mean token cross-entropy over the trained positions of a batch (mlx_lm's `(ce·mask).sum() / ntoks`).
public enum SFTLoss {
    /// `logprobs[s][i]` for every position, `trained[s][i]` whether it counts. Returns the loss, the number of
    /// trained tokens and ∂L/∂logprob (−1/ntoks where trained, 0 elsewhere).
    public static func evaluate(logprobs: [[Double]], trained: [[Bool]]) -> (loss: Double, tokens: Int, dLogprobs: [[Double]]) {
        let tokens = trained.reduce(0) { $0 + $1.filter { $0 }.count }
        guard tokens > 0 else { return (0, 0, logprobs.map { $0.map { _ in 0 } }) }
        var sum = 0.0
        for (row, mask) in zip(logprobs, trained) {
            for (value, counts) in zip(row, mask) where counts { sum -= value }
        }
        let weight = -1.0 / Double(tokens)
        let gradient = trained.map { $0.map { $0 ? weight : 0 } }
        return (sum / Double(tokens), tokens, gradient)
    }
}

/// DPO with TRL's definitions (TRL 1.16 `DPOTrainer._compute_loss`). Per pair: `π_c`, `π_r` = summed response
/// log-probs under the policy (per token for `ipo`, which TRL always length-normalises, and with
/// `normalize_by_length`, TRL's `sigmoid_norm`), `ref_c`, `ref_r` under the reference; `h = (π_c − π_r) − (ref_c − ref_r)`.
/// `sigmoid`: −log σ(β·h); `ipo`: (h − 1/(2β))²; `hinge`: max(0, 1 − β·h). The loss is the mean over pairs.
/// Metrics: `rewards/chosen` = β·(π_c − ref_c), `rewards/rejected`, `rewards/margins`, `rewards/accuracies`,
/// `logps/chosen`, `logps/rejected` (means over the batch).
public enum DPOLoss {
    /// The log-probs of one pair as the loss sees them (summed, or per token when length-normalised), and the
    /// summed ones TRL's reward metrics always use.
    public struct PairLogprobs: Sendable, Equatable {
        public var policyChosen: Double
        public var policyRejected: Double
        public var referenceChosen: Double
        public var referenceRejected: Double
        public var summed: (policyChosen: Double, policyRejected: Double, referenceChosen: Double, referenceRejected: Double)

        public init(policyChosen: Double, policyRejected: Double, referenceChosen: Double, referenceRejected: Double,
                    summed: (Double, Double, Double, Double)? = nil) {
            self.policyChosen = policyChosen
            self.policyRejected = policyRejected
            self.referenceChosen = referenceChosen
            self.referenceRejected = referenceRejected
            self.summed = summed ?? (policyChosen, policyRejected, referenceChosen, referenceRejected)
        }

        public static func == (lhs: PairLogprobs, rhs: PairLogprobs) -> Bool {
            lhs.policyChosen == rhs.policyChosen && lhs.policyRejected == rhs.policyRejected && lhs.referenceChosen == rhs.referenceChosen
                && lhs.referenceRejected == rhs.referenceRejected && lhs.summed == rhs.summed
        }
    }

    public struct Result: Sendable, Equatable {
        public var loss: Double
        /// ∂L/∂π_c and ∂L/∂π_r per pair.
        public var dChosen: [Double]
        public var dRejected: [Double]
        public var metrics: [(MetricName, Double)]

        public static func == (lhs: Result, rhs: Result) -> Bool {
            lhs.loss == rhs.loss && lhs.dChosen == rhs.dChosen && lhs.dRejected == rhs.dRejected
                && lhs.metrics.map(\.0) == rhs.metrics.map(\.0) && lhs.metrics.map(\.1) == rhs.metrics.map(\.1)
        }
    }

    public static func evaluate(_ pairs: [PairLogprobs], beta: Double, type: TrainingConfiguration.LossType) -> Result {
        let count = Double(max(pairs.count, 1))
        var loss = 0.0
        var dChosen: [Double] = []
        var dRejected: [Double] = []
        var rewards: [ImplicitReward] = []
        for pair in pairs {
            let h = (pair.policyChosen - pair.policyRejected) - (pair.referenceChosen - pair.referenceRejected)
            var value = 0.0
            var dh = 0.0
            switch type {
            case .sigmoid:
                // −log σ(βh) = softplus(−βh), computed stably; d/dh = −β·σ(−βh).
                let z = beta * h
                value = z > 0 ? log1p(exp(-z)) : -z + log1p(exp(z))
                dh = -beta / (1 + exp(z))
            case .ipo:
                let d = h - 1 / (2 * beta)
                value = d * d
                dh = 2 * d
            case .hinge:
                let margin = 1 - beta * h
                value = max(0, margin)
                dh = margin > 0 ? -beta : 0
            }
            loss += value / count
            dChosen.append(dh / count)
            dRejected.append(-dh / count)
            // TRL computes the reward metrics from summed log-probs whatever the loss type.
            rewards.append(ImplicitReward(policyChosen: pair.summed.policyChosen, policyRejected: pair.summed.policyRejected,
                                          referenceChosen: pair.summed.referenceChosen, referenceRejected: pair.summed.referenceRejected,
                                          beta: beta))
        }
        let metrics = RewardSummary(rewards: rewards, policyChosen: pairs.map(\.summed.policyChosen),
                                    policyRejected: pairs.map(\.summed.policyRejected)).metrics
        return Result(loss: loss, dChosen: dChosen, dRejected: dRejected, metrics: metrics)
    }
}

/// DPO over a batch of tokenized pairs: from the policy's per-position log-probs (sequences ordered chosen₀,
/// rejected₀, chosen₁, ...) to the loss, TRL's metrics and ∂L/∂logprob per position (÷ response length when
/// length-normalised; IPO always is, as in TRL), each scaled by `weight` (for gradient accumulation).
public enum DPOObjective {
    public static func evaluate(logprobs: [[Double]], examples: [DPOExample], beta: Double, type: TrainingConfiguration.LossType,
                                normalizeByLength: Bool, weight: Double = 1) -> (result: DPOLoss.Result, dLogprobs: [[Double]], tokens: Int) {
        let normalize = normalizeByLength || type == .ipo
        var pairs: [DPOLoss.PairLogprobs] = []
        for (index, example) in examples.enumerated() {
            let chosen = SpanScore(sequenceLogprobs: logprobs[2 * index], promptLength: example.chosen.promptLength)
            let rejected = SpanScore(sequenceLogprobs: logprobs[2 * index + 1], promptLength: example.rejected.promptLength)
            let reference = example.reference ?? (chosenSum: 0, chosenMean: 0, rejectedSum: 0, rejectedMean: 0)
            pairs.append(DPOLoss.PairLogprobs(policyChosen: normalize ? chosen.mean : chosen.sum,
                                              policyRejected: normalize ? rejected.mean : rejected.sum,
                                              referenceChosen: normalize ? reference.chosenMean : reference.chosenSum,
                                              referenceRejected: normalize ? reference.rejectedMean : reference.rejectedSum,
                                              summed: (chosen.sum, rejected.sum, reference.chosenSum, reference.rejectedSum)))
        }
        let result = DPOLoss.evaluate(pairs, beta: beta, type: type)
        var gradient: [[Double]] = []
        var tokens = 0
        for (index, example) in examples.enumerated() {
            for (sequence, dPolicy) in [(example.chosen, result.dChosen[index]), (example.rejected, result.dRejected[index])] {
                let first = sequence.promptLength - 1
                let scale = normalize ? 1.0 / Double(sequence.responseLength) : 1.0
                gradient.append((0..<(sequence.ids.count - 1)).map { $0 >= first ? dPolicy * scale * weight : 0 })
                tokens += sequence.ids.count
            }
        }
        return (result, gradient, tokens)
    }
}
