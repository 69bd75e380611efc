import Foundation
import TunecheckEngine
import TunecheckJSON

/// Before training: how hard will DPO have to push? The base model's log-prob gaps (chosen − rejected) on the
/// pairs, summed and per token, their distribution, the fraction already preferred and the length ratio, and a
/// verdict with reasons. A large negative summed gap means the preferred answers are far less likely under the
/// base (the motivating run: −1000 vs −40); DPO then fights the base distribution, and SFT on the chosen answers
/// first is the usual fix.
public struct PreflightAnalysis: Sendable, Equatable {
    public enum Verdict: String, Sendable, Equatable {
        case ok
        case warn
        case fail = "likely-fail"
    }

    public var pairCount: Int
    public var meanGapSum: Double
    public var meanGapPerToken: Double
    public var gapSumPercentiles: [Double]       // min, p10, p50, p90, max
    public var gapPerTokenPercentiles: [Double]  // min, p10, p50, p90, max
    public var alreadyPreferredSum: Double       // fraction with gap_sum > 0
    public var alreadyPreferredPerToken: Double  // fraction with gap_mean > 0
    public var meanChosenLength: Double
    public var meanRejectedLength: Double
    public var verdict: Verdict
    public var reasons: [String]

    public var lengthRatio: Double { meanRejectedLength > 0 ? meanChosenLength / meanRejectedLength : 0 }

    public init(scores: [PairScore], thresholds: PreflightThresholds) {
        let sums = scores.map(\.gapSum)
        let means = scores.map(\.gapMean)
        let fractions = [0, 0.1, 0.5, 0.9, 1.0]
        pairCount = scores.count
        meanGapSum = Statistics.mean(sums)
        meanGapPerToken = Statistics.mean(means)
        gapSumPercentiles = fractions.map { Statistics.percentile(sums, $0) }
        gapPerTokenPercentiles = fractions.map { Statistics.percentile(means, $0) }
        alreadyPreferredSum = scores.isEmpty ? 0 : Double(sums.filter { $0 > 0 }.count) / Double(scores.count)
        alreadyPreferredPerToken = scores.isEmpty ? 0 : Double(means.filter { $0 > 0 }.count) / Double(scores.count)
        meanChosenLength = Statistics.mean(scores.map { Double($0.chosen.tokenLogprobs.count) })
        meanRejectedLength = Statistics.mean(scores.map { Double($0.rejected.tokenLogprobs.count) })
        var reasons: [String] = []
        if meanGapSum < thresholds.failBelow {
            verdict = .fail
            reasons.append(String(format: "mean summed gap %.1f is below %.0f: the preferred answers are far less likely under the base, so DPO will very likely fail (margins explode or nothing is learned); run SFT on the chosen answers first", meanGapSum, thresholds.failBelow))
        } else if meanGapSum < thresholds.warnBelow {
            verdict = .warn
            reasons.append(String(format: "mean summed gap %.1f is below %.0f: DPO will fight the base distribution; consider SFT on the chosen answers first, a small learning rate and watching the reward margin", meanGapSum, thresholds.warnBelow))
        } else {
            verdict = .ok
            reasons.append(String(format: "mean summed gap %.1f is within the usual range", meanGapSum))
        }
        let ratio = meanRejectedLength > 0 ? meanChosenLength / meanRejectedLength : 0
        if ratio > 2 || (ratio > 0 && ratio < 0.5) {
            reasons.append(String(format: "chosen answers are %.1f× the length of rejected ones: summed log-probs are dominated by length; compare the per-token gap (%.3f) too", ratio, meanGapPerToken))
        }
        if meanGapPerToken < -1 {
            reasons.append(String(format: "per-token gap %.2f nats: the chosen answers' style or vocabulary is unfamiliar to the base, not just longer", meanGapPerToken))
        }
        if alreadyPreferredSum > 0.9 {
            reasons.append(String(format: "%.0f%% of pairs are already preferred by the base: DPO has little to learn here", 100 * alreadyPreferredSum))
        }
        self.reasons = reasons
    }

    public var metrics: [Metric] {
        [Metric("pairs", Double(pairCount)), Metric("gap_sum_mean", meanGapSum), Metric("gap_sum_p10", gapSumPercentiles[1]),
         Metric("gap_sum_median", gapSumPercentiles[2]), Metric("gap_sum_p90", gapSumPercentiles[3]),
         Metric("gap_per_token_mean", meanGapPerToken), Metric("gap_per_token_median", gapPerTokenPercentiles[2]),
         Metric("already_preferred_sum", alreadyPreferredSum), Metric("already_preferred_per_token", alreadyPreferredPerToken),
         Metric("chosen_tokens_mean", meanChosenLength), Metric("rejected_tokens_mean", meanRejectedLength), Metric("length_ratio", lengthRatio)]
    }

    /// As a suite: the verdict check fails on `likely-fail`; a warning passes but its reasons are in the metrics
    /// and the report (JUnit has no warning state).
    public func suiteResult(checkpoint: String = "base", scores: [PairScore]) -> SuiteResult {
        var checks = [CheckResult(
            name: "verdict",
            status: verdict == .fail ? .failed(message: "preflight: DPO on these pairs will very likely fail", detail: reasons.joined(separator: "\n")) : .passed,
            metrics: [Metric("gap_sum_mean", meanGapSum), Metric("verdict_level", verdict == .ok ? 0 : verdict == .warn ? 1 : 2)])]
        for score in scores {
            checks.append(CheckResult(name: "pair \(score.id)", status: .passed, metrics: [
                Metric("gap_sum", score.gapSum), Metric("gap_mean", score.gapMean),
                Metric("chosen_logprob_sum", score.chosen.sum), Metric("rejected_logprob_sum", score.rejected.sum)]))
        }
        return SuiteResult(kind: .preflight, checkpoint: checkpoint, checks: checks, metrics: metrics)
    }

    /// The analysis and per-pair gaps as JSON (`tunecheck preflight --json`).
    public func json(scores: [PairScore]) -> JSONValue {
        var object = JSONObject()
        object.set("verdict", .string(verdict.rawValue))
        object.set("reasons", .array(reasons.map { .string($0) }))
        var values = JSONObject()
        for metric in metrics { values.set(metric.name, .from(metric.value)) }
        object.set("metrics", .object(values))
        object.set("pairs", .array(scores.map { score in
            var entry = JSONObject()
            entry.set("id", .string(score.id))
            entry.set("gap_sum", .from(score.gapSum))
            entry.set("gap_mean", .from(score.gapMean))
            entry.set("chosen_logprob_sum", .from(score.chosen.sum))
            entry.set("rejected_logprob_sum", .from(score.rejected.sum))
            entry.set("chosen_tokens", .from(score.chosen.tokenLogprobs.count))
            entry.set("rejected_tokens", .from(score.rejected.tokenLogprobs.count))
            return .object(entry)
        }))
        return .object(object)
    }

    /// Human-readable report for the terminal.
    public func describe() -> String {
        var lines: [String] = []
        lines.append("preflight: \(pairCount) pairs, verdict \(verdict.rawValue.uppercased())")
        lines.append(String(format: "  summed gap (chosen − rejected): mean %.2f  [min %.2f  p10 %.2f  median %.2f  p90 %.2f  max %.2f]",
                            meanGapSum, gapSumPercentiles[0], gapSumPercentiles[1], gapSumPercentiles[2], gapSumPercentiles[3], gapSumPercentiles[4]))
        lines.append(String(format: "  per-token gap:                 mean %.3f  [min %.3f  p10 %.3f  median %.3f  p90 %.3f  max %.3f]",
                            meanGapPerToken, gapPerTokenPercentiles[0], gapPerTokenPercentiles[1], gapPerTokenPercentiles[2],
                            gapPerTokenPercentiles[3], gapPerTokenPercentiles[4]))
        lines.append(String(format: "  already preferred by the base: %.0f%% (summed), %.0f%% (per token)", 100 * alreadyPreferredSum, 100 * alreadyPreferredPerToken))
        lines.append(String(format: "  response length: chosen %.1f tokens, rejected %.1f tokens (ratio %.2f)", meanChosenLength, meanRejectedLength, lengthRatio))
        for reason in reasons { lines.append("  - \(reason)") }
        return lines.joined(separator: "\n")
    }
}

/// The preflight check as a suite: once per session, on the base's scores of the pairs.
public enum PreflightSuite: EvaluationSuite {
    public static let kind = SuiteKind.preflight
    public static let shortName = "pre"
    public static let requirement = "a base model and pairs"
    public static let isAboutInputs = true

    public static func canRun(with inputs: SuiteInputs) -> Bool { inputs.base && inputs.pairs }
    public static func applies(to subject: SubjectKind) -> Bool { subject == .base }
    public static func sharding(on subject: SubjectKind) -> SuiteSharding { .computations([.pairScores]) }

    public static func run(in context: EvaluationContext) throws -> SuiteRun? {
        guard let scores = try context.session.basePairScores(), let analysis = try context.session.preflight() else { return nil }
        return SuiteRun(result: analysis.suiteResult(checkpoint: context.name, scores: scores))
    }
}

extension SuiteKind {
    public static let preflight = SuiteKind(declaring: "preflight")
}
