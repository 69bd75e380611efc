import Foundation
import TunecheckEngine

/// Multiple-choice accuracy as lm-evaluation-harness computes it (`acc`, `acc_norm` and their standard errors; see
/// `LoglikelihoodRequests` for how items become requests), and whether a checkpoint lost ability against its base.
///
/// The verdict is paired and statistical, because the same items are answered by both models: the accuracy
/// difference with a 95% interval (mean of per-item differences ± 1.96 · s/√n) and the exact two-sided McNemar test
/// on the discordant items (base right / checkpoint wrong against the reverse). A checkpoint fails when its accuracy
/// is below the base's by more than `max_drop` (default 0.02: two points, below which a loss is not worth a red
/// build) AND the McNemar p-value is below `alpha` (default 0.05: the drop is unlikely to be noise on this many
/// items). Both are needed: on a small evalset a large drop can be a few coin flips (an exact McNemar test needs at
/// least 6 one-sided discordant items for p < 0.05), and on a large one a tiny drop can be significant yet harmless.
///
/// JUnit: one case per item, failing only when the base answered it right and the checkpoint wrong (so CI lists what
/// was lost), and the `verdict` case, which alone decides whether the suite fails.
public enum ChoicesSuite: EvaluationSuite {
    public static let kind = SuiteKind.choices
    public static let shortName = "choices"
    public static let requirement = "a model and multiple-choice items (--choices)"

    public static func canRun(with inputs: SuiteInputs) -> Bool { inputs.model && inputs.choices }
    public static func applies(to subject: SubjectKind) -> Bool { subject == .base || subject == .checkpoint }
    public static func sharding(on subject: SubjectKind) -> SuiteSharding {
        .computations(subject == .checkpoint ? [.choiceScores, .choiceScores.base] : [.choiceScores])
    }

    public static func run(in context: EvaluationContext) throws -> SuiteRun? {
        guard let scores = try context.choiceScores() else { return nil }
        let baseScores = context.kind == .checkpoint ? try context.session.baseChoiceScores() : nil
        return SuiteRun(result: run(checkpoint: context.name, scores: scores, baseScores: baseScores, thresholds: context.thresholds.choices))
    }

    public static let verdictName = "verdict"

    /// The suite's result from per-item log-likelihoods alone (what a sharded run records and replays).
    public static func run(checkpoint: String, scores: [ChoiceScore], baseScores: [ChoiceScore]?,
                           thresholds: ChoicesThresholds) -> SuiteResult {
        let started = Date()
        let outcomes = scores.map { ChoiceOutcome(score: $0) }
        let accuracy = ChoiceAccuracy(outcomes)
        var metrics = [Metric(.acc, accuracy.acc), Metric(.accStderr, accuracy.accStderr), Metric(.accNorm, accuracy.accNorm),
                       Metric(.accNormStderr, accuracy.accNormStderr), Metric(.items, Double(outcomes.count))]
        let baseOutcomes = baseScores.map { $0.map { ChoiceOutcome(score: $0) } }
        var verdict = CheckStatus.passed
        var itemChecks: [CheckResult] = []
        let summary = String(format: "acc %.4f ± %.4f, acc_norm %.4f ± %.4f on %d items", accuracy.acc, accuracy.accStderr,
                             accuracy.accNorm, accuracy.accNormStderr, outcomes.count)
        if let baseOutcomes {
            let base = ChoiceAccuracy(baseOutcomes)
            let paired = PairedAccuracy(base: baseOutcomes.map(\.correct), checkpoint: outcomes.map(\.correct))
            metrics += [Metric(.accBase, base.acc), Metric(.accNormBase, base.accNorm), Metric(.accDifference, paired.difference),
                        Metric(.accDifferenceLow, paired.low), Metric(.accDifferenceHigh, paired.high), Metric(.mcnemarP, paired.pValue),
                        Metric(.lostItems, Double(paired.baseOnly)), Metric(.gainedItems, Double(paired.checkpointOnly))]
            let drop = base.acc - accuracy.acc
            // A drop of exactly max_drop is allowed (the tolerance absorbs the rounding of k/n).
            if drop > thresholds.maxDrop + 1e-12 && paired.pValue < thresholds.alpha {
                verdict = .failed(
                    message: String(format: "accuracy fell from %.3f to %.3f (%+.1f points, limit %.1f) and McNemar p = %.3g < %.3g",
                                    base.acc, accuracy.acc, -100 * drop, 100 * thresholds.maxDrop, paired.pValue, thresholds.alpha),
                    detail: String(format: "difference %+.4f, 95%% interval [%+.4f, %+.4f]; %d item(s) lost, %d gained; %@",
                                   paired.difference, paired.low, paired.high, paired.baseOnly, paired.checkpointOnly, summary))
            }
            for (outcome, baseOutcome) in zip(outcomes, baseOutcomes) {
                var status = CheckStatus.passed
                if baseOutcome.correct && !outcome.correct {
                    status = .failed(message: "lost: the base chose the right answer (\(outcome.gold)), the checkpoint chooses \(outcome.pred)",
                                     detail: "checkpoint log-likelihoods " + format(outcome.loglikelihoods)
                                        + "; base " + format(baseOutcome.loglikelihoods))
                }
                itemChecks.append(CheckResult(name: "item \(outcome.id)", status: status, metrics: itemMetrics(outcome)
                                              + [Metric("base_correct", baseOutcome.correct ? 1 : 0)]))
            }
        } else {
            itemChecks = outcomes.map { CheckResult(name: "item \($0.id)", status: .passed, metrics: itemMetrics($0)) }
        }
        let verdictCheck = CheckResult(name: verdictName, status: verdict, metrics: metrics.filter {
            [MetricName.acc.rawValue, MetricName.accBase.rawValue, MetricName.accDifference.rawValue, MetricName.mcnemarP.rawValue].contains($0.name)
        })
        return SuiteResult(kind: .choices, checkpoint: checkpoint, checks: [verdictCheck] + itemChecks, metrics: metrics,
                           startedAt: started, durationSeconds: Date().timeIntervalSince(started),
                           items: outcomes.map { .choice($0) }, verdictCheck: verdictName)
    }

    private static func itemMetrics(_ outcome: ChoiceOutcome) -> [Metric] {
        [Metric("pred", Double(outcome.pred)), Metric("pred_norm", Double(outcome.predNorm)), Metric("gold", Double(outcome.gold)),
         Metric("correct", outcome.correct ? 1 : 0)]
    }

    private static func format(_ values: [Double]) -> String {
        "[" + values.map { String(format: "%.3f", $0) }.joined(separator: ", ") + "]"
    }
}

extension SuiteKind {
    public static let choices = SuiteKind(declaring: "choices")
}
