import Foundation
import TunecheckEngine

/// How runs are judged: the reward-margin threshold and, with `--suite`, the suite the checkpoints are evaluated
/// with.
public struct RunHistorySettings: Sendable {
    /// A logged `rewards/margins` above this is a margin explosion.
    public var marginThreshold: Double
    /// Where the threshold came from (`--margin-threshold`, the suite's `preference.max_margin`, or the default).
    public var marginThresholdSource: String
    public var suite: String?

    public static let defaultMarginThreshold = 5.0

    public init(marginThreshold: Double = RunHistorySettings.defaultMarginThreshold, marginThresholdSource: String = "default",
                suite: String? = nil) {
        self.marginThreshold = marginThreshold
        self.marginThresholdSource = marginThresholdSource
        self.suite = suite
    }
}

/// One row of the run table: what a run was, what happened to it, and a verdict with its one-line reason.
public struct RunSummary: Sendable {
    public enum Verdict: String, Sendable { case pass, fail, unknown }

    /// Where the checkpoint verdicts came from.
    public enum EvaluationSource: String, Sendable {
        /// The run's own evaluation (tunecheck's `run.json` / `eval/report.json`).
        case recorded
        /// `--suite`: evaluated now (or reused from `eval/` when made with the same suite settings).
        case suite
        case none
    }

    public var run: TrainingRun
    public var lossFirst: Double?
    public var lossLast: Double?
    public var lossMin: Double?
    public var maxMargin: Double?
    public var maxMarginStep: Int?
    public var marginExplosionStep: Int?
    public var evaluations: [TrainingRun.RecordedEvaluation]
    public var evaluationSource: EvaluationSource
    public var firstFailingCheckpoint: String?
    public var failingSuites: [String]
    public var bestCheckpoint: String?
    public var verdict: Verdict
    public var reason: String

    /// `evaluations`: the checkpoint verdicts to judge by (nil: the run's recorded ones, if any).
    public init(run: TrainingRun, settings: RunHistorySettings, evaluations suiteEvaluations: [TrainingRun.RecordedEvaluation]? = nil) {
        self.run = run
        let losses = run.history.compactMap { step in step.loss.flatMap { $0.isFinite ? $0 : nil } }
        lossFirst = run.history.first?.loss
        lossLast = run.history.last?.loss
        lossMin = losses.min()
        for step in run.history {
            guard let margin = step.margin, margin.isFinite else { continue }
            if maxMargin == nil || margin > maxMargin! {
                maxMargin = margin
                maxMarginStep = step.step
            }
        }
        // A non-finite margin is an explosion too.
        marginExplosionStep = run.history.first { step in
            guard let margin = step.margin else { return false }
            return !margin.isFinite || margin > settings.marginThreshold
        }?.step

        if let suiteEvaluations {
            evaluations = suiteEvaluations
            evaluationSource = .suite
        } else {
            // Only checkpoints that are in the folder and complete: a recorded verdict of a file that is now
            // partially written (or gone) is not about what is there.
            let present = Set(run.checkpoints.map(\.name))
            evaluations = run.recorded.filter { present.contains($0.name) }
            evaluationSource = evaluations.isEmpty ? .none : .recorded
        }
        let ordered = evaluations.sorted { ($0.step ?? .max) < ($1.step ?? .max) }
        let firstFailing = ordered.first { !$0.passed }
        firstFailingCheckpoint = firstFailing?.name
        failingSuites = firstFailing?.failingSuites ?? []
        let passing = ordered.filter(\.passed)
        let goal = run.bestMetric ?? MetricGoal(.rewardsAccuracies)
        var best: TrainingRun.RecordedEvaluation?
        for candidate in passing {
            guard let value = candidate.metrics[goal.metric], value.isFinite else { continue }
            if let current = best, let currentValue = current.metrics[goal.metric], !goal.prefers(value, over: currentValue) { continue }
            best = candidate
        }
        if evaluationSource == .recorded, let recordedBest = run.bestCheckpoint, passing.contains(where: { $0.name == recordedBest }) {
            bestCheckpoint = recordedBest
        } else {
            bestCheckpoint = best?.name ?? (evaluations.isEmpty ? run.bestCheckpoint : nil)
        }

        // The verdict, first reason first.
        var problems: [String] = []
        if let stop = run.stop {
            var text = "guard \(stop.name) stopped the run at step \(stop.step)"
            if let value = stop.value, let threshold = stop.threshold {
                text += " (\(RunFormat.number(value)) vs \(RunFormat.number(threshold)))"
            }
            problems.append(text)
        }
        if let step = marginExplosionStep, run.stop?.name != "max-margin" || run.stop?.step != step {
            let value = run.history.first { $0.step == step }?.margin ?? .nan
            problems.append("reward margin \(RunFormat.number(value)) > \(RunFormat.number(settings.marginThreshold)) at step \(step)")
        }
        if !evaluations.isEmpty && passing.isEmpty {
            problems.append("no checkpoint passed (\(evaluations.count) evaluated; first failing \(firstFailingCheckpoint ?? "?"): "
                            + "\(failingSuites.isEmpty ? "failed" : failingSuites.joined(separator: ", ")))")
        }
        if !problems.isEmpty {
            verdict = .fail
            reason = problems.joined(separator: "; ")
        } else if let good = bestCheckpoint ?? passing.last?.name {
            verdict = .pass
            let margin = maxMargin.map { "max margin \(RunFormat.number($0)) ≤ \(RunFormat.number(settings.marginThreshold))" } ?? "no margin logged"
            reason = "\(passing.count) of \(evaluations.count) checkpoints pass (best \(good)); no guard tripped; \(margin)"
        } else {
            verdict = .unknown
            if run.history.isEmpty && run.checkpoints.isEmpty {
                reason = "nothing to judge: no logged steps and no checkpoints"
            } else {
                reason = "no checkpoint evaluated (give --suite) and no guard or margin explosion"
            }
        }
        if !run.endNotes.isEmpty { reason += "; " + run.endNotes.joined(separator: "; ") }
    }
}

/// Numbers as the run table shows them: 4 significant digits, exponent form for small learning rates.
public enum RunFormat {
    public static func number(_ value: Double) -> String {
        guard value.isFinite else { return value.isNaN ? "nan" : (value > 0 ? "inf" : "-inf") }
        if value == 0 { return "0" }
        let magnitude = abs(value)
        if magnitude < 1e-3 || magnitude >= 1e6 { return String(format: "%.3g", value) }
        var text = String(format: "%.4g", value)
        if text.contains("e") { return text }
        if text.contains(".") {
            while text.hasSuffix("0") { text.removeLast() }
            if text.hasSuffix(".") { text.removeLast() }
        }
        return text
    }

    /// A learning rate in the form people write them: `5e-3`, `2.5e-5`, `0.1`.
    public static func rate(_ value: Double) -> String {
        guard value.isFinite, value > 0, value < 0.01 else { return number(value) }
        let exponent = Int(floor(log10(value)))
        var mantissa = value / pow(10, Double(exponent))
        if mantissa >= 9.9995 { mantissa /= 10 }
        return "\(number((mantissa * 1000).rounded() / 1000))e\(exponent + (value / pow(10, Double(exponent)) >= 9.9995 ? 1 : 0))"
    }
}
