import Foundation
import TunecheckEngine

/// How far a checkpoint moved from its base: the chosen − rejected log-prob gap of the pairs (summed and per
/// token) under both, and on reference texts the mean per-token log-prob change and the token-level
/// KL(base ‖ checkpoint) with percentiles (as llama.cpp's KL-divergence mode reports). It fails when general text
/// degrades beyond the thresholds; the pairs' gap drift is reported beside it, since a gap that moves while
/// general text degrades is the signature of a run that learned the pairs by breaking the model.
public enum DriftSuite: EvaluationSuite {
    public static let kind = SuiteKind.drift
    public static let shortName = "drift"
    public static let requirement = "a base model, checkpoints, and pairs or texts"

    public static func canRun(with inputs: SuiteInputs) -> Bool { inputs.base && inputs.checkpoints && (inputs.pairs || inputs.texts) }
    public static func applies(to subject: SubjectKind) -> Bool { subject == .checkpoint }
    public static func sharding(on subject: SubjectKind) -> SuiteSharding {
        .computations([.pairScores, .pairScores.base, .textScores, .textScores.base, .textDistributions])
    }

    public static func run(in context: EvaluationContext) throws -> SuiteRun? {
        guard context.kind == .checkpoint, context.settings.base != nil else { return nil }
        let session = context.session
        let basePairs = try session.basePairScores()
        let checkpointPairs = basePairs == nil ? nil : try context.pairScores()
        var textDrift: TextDrift?
        if let baseTexts = try session.baseTextScores(), let checkpointTexts = try context.textScores(),
           let comparison = try context.textDistributions() {
            textDrift = TextDrift(base: baseTexts, checkpoint: checkpointTexts, comparison: comparison)
        }
        return SuiteRun(result: run(checkpoint: context.name, basePairs: basePairs, checkpointPairs: checkpointPairs,
                                    textDrift: textDrift, thresholds: context.thresholds.drift))
    }

    public struct TextDrift: Sendable, Equatable {
        public var meanLogprobChange: Double
        public var meanKL: Double
        public var klPercentiles: [(label: String, value: Double)]
        public var sameTopFraction: Double

        public static func == (lhs: TextDrift, rhs: TextDrift) -> Bool {
            lhs.meanLogprobChange == rhs.meanLogprobChange && lhs.meanKL == rhs.meanKL
                && lhs.klPercentiles.map(\.value) == rhs.klPercentiles.map(\.value) && lhs.sameTopFraction == rhs.sameTopFraction
        }

        /// Token-weighted over all texts.
        public init(base: [TextScore], checkpoint: [TextScore], comparison: DistributionComparison.Result) {
            var changes: [Double] = []
            for (b, c) in zip(base, checkpoint) {
                for (x, y) in zip(b.logprobs, c.logprobs) { changes.append(y - x) }
            }
            let kl = comparison.kl.flatMap { $0 }
            let sameTop = comparison.sameTop.flatMap { $0 }
            meanLogprobChange = Statistics.mean(changes)
            meanKL = Statistics.mean(kl)
            klPercentiles = [("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("max", 1.0)].map { ($0.0, Statistics.percentile(kl, $0.1)) }
            sameTopFraction = sameTop.isEmpty ? 1 : Double(sameTop.filter { $0 }.count) / Double(sameTop.count)
        }
    }

    public static func run(checkpoint: String, basePairs: [PairScore]?, checkpointPairs: [PairScore]?,
                           textDrift: TextDrift?, thresholds: DriftThresholds) -> SuiteResult {
        let started = Date()
        var checks: [CheckResult] = []
        var metrics: [Metric] = []
        var gapSummary = ""
        if let basePairs, let checkpointPairs, !basePairs.isEmpty {
            let sumDrift = Statistics.mean(zip(basePairs, checkpointPairs).map { $1.gapSum - $0.gapSum })
            let meanDrift = Statistics.mean(zip(basePairs, checkpointPairs).map { $1.gapMean - $0.gapMean })
            metrics += [Metric("gap_sum_base", Statistics.mean(basePairs.map(\.gapSum))),
                        Metric("gap_sum_checkpoint", Statistics.mean(checkpointPairs.map(\.gapSum))),
                        Metric("gap_sum_drift", sumDrift),
                        Metric("gap_mean_base", Statistics.mean(basePairs.map(\.gapMean))),
                        Metric("gap_mean_checkpoint", Statistics.mean(checkpointPairs.map(\.gapMean))),
                        Metric("gap_mean_drift", meanDrift)]
            gapSummary = String(format: "; meanwhile the pairs' gap moved by %+.3f (sum) / %+.4f per token", sumDrift, meanDrift)
            for (b, c) in zip(basePairs, checkpointPairs) {
                checks.append(CheckResult(name: "pair \(b.id)", status: .passed, metrics: [
                    Metric("gap_sum_base", b.gapSum), Metric("gap_sum_checkpoint", c.gapSum), Metric("gap_sum_drift", c.gapSum - b.gapSum),
                    Metric("gap_mean_drift", c.gapMean - b.gapMean)]))
            }
        }
        if let textDrift {
            metrics += [Metric("text_logprob_change", textDrift.meanLogprobChange), Metric("text_kl_mean", textDrift.meanKL)]
            metrics += textDrift.klPercentiles.map { Metric("text_kl_\($0.label)", $0.value) }
            metrics.append(Metric("text_same_top", textDrift.sameTopFraction))
            let dropStatus: CheckStatus = -textDrift.meanLogprobChange <= thresholds.maxTextLogprobDrop ? .passed : .failed(
                message: String(format: "reference texts lost %.3f nats/token (limit %.3g)%@", -textDrift.meanLogprobChange,
                                thresholds.maxTextLogprobDrop, gapSummary),
                detail: String(format: "mean per-token log-prob change %.4f; KL mean %.4f, p90 %.4f, max %.4f; same top token %.1f%%",
                               textDrift.meanLogprobChange, textDrift.meanKL, textDrift.klPercentiles[1].value,
                               textDrift.klPercentiles[3].value, 100 * textDrift.sameTopFraction))
            checks.insert(CheckResult(name: "text-logprob-drop", status: dropStatus, metrics: [Metric("text_logprob_change", textDrift.meanLogprobChange)]), at: 0)
            let klStatus: CheckStatus = textDrift.meanKL <= thresholds.maxTextKL ? .passed : .failed(
                message: String(format: "KL(base ‖ checkpoint) on reference texts %.3f nats/token (limit %.3g)%@", textDrift.meanKL,
                                thresholds.maxTextKL, gapSummary),
                detail: textDrift.klPercentiles.map { String(format: "%@ %.4f", $0.label, $0.value) }.joined(separator: ", ")
                    + String(format: "; same top token %.1f%%", 100 * textDrift.sameTopFraction))
            checks.insert(CheckResult(name: "text-kl", status: klStatus, metrics: [Metric("text_kl_mean", textDrift.meanKL)]), at: 1)
        }
        return SuiteResult(kind: .drift, checkpoint: checkpoint, checks: checks, metrics: metrics,
                           startedAt: started, durationSeconds: Date().timeIntervalSince(started))
    }
}

extension SuiteKind {
    public static let drift = SuiteKind(declaring: "drift")
}
