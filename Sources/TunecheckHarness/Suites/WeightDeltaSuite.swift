import Foundation
import TunecheckEngine

/// Did anything move, and not too much? ‖ΔW‖_F / ‖W‖_F over the adapted weights (adapters) or over every tensor
/// that differs (full model folders), from `WeightDelta`; fails on `no-learning` and `large-update`.
public enum WeightDeltaSuite: EvaluationSuite {
    public static let kind = SuiteKind.weightDelta
    public static let shortName = "Δw"
    public static let requirement = "a base model and checkpoints"

    public static func canRun(with inputs: SuiteInputs) -> Bool { inputs.base && inputs.checkpoints }
    public static func applies(to subject: SubjectKind) -> Bool { subject == .checkpoint }

    public static func run(in context: EvaluationContext) throws -> SuiteRun? {
        guard let checkpoint = context.checkpoint, let base = context.session.base else { return nil }
        return SuiteRun(result: try run(checkpoint: checkpoint, base: base, thresholds: context.thresholds.weightDelta))
    }

    public static func run(checkpoint: LoadedCheckpoint, base: LanguageModel, thresholds: WeightDeltaThresholds) throws -> SuiteResult {
        let started = Date()
        let limits = DeltaThresholds(noLearning: thresholds.noLearningBelow, largeUpdate: thresholds.largeUpdateAbove)
        let report: DeltaReport
        switch checkpoint.spec.source {
        case .base:
            return SuiteResult(kind: .weightDelta, checkpoint: checkpoint.spec.name,
                               checks: [CheckResult(name: "relative-delta", status: .skipped(reason: "the base model has no delta"))])
        case .adapter:
            guard let adapter = checkpoint.adapter else { throw HarnessError.missingInput("adapter checkpoint without an adapter") }
            // The checkpoint's model is the session's base with this adapter attached: its delta needs no second
            // mapping of the base (at 3B that would double the resident set).
            report = WeightDelta.adapterDelta(attached: checkpoint.model.decoder, baseFolder: base.folder, adapter: adapter, thresholds: limits)
        case .modelFolder(let url):
            do {
                report = try WeightDelta.modelDelta(baseFolder: base.folder, otherFolder: url, thresholds: limits)
            } catch let error as EngineError {
                // A folder whose tensors do not match the base's (another architecture variant, extra biases) is
                // still evaluated by the other suites; only this check cannot run.
                let reason = error.errorDescription ?? "\(error)"
                return SuiteResult(kind: .weightDelta, checkpoint: checkpoint.spec.name, checks: [CheckResult(
                    name: "relative-delta",
                    status: .error(message: "cannot compare the weights with the base's: the tensors differ", detail: reason))],
                    startedAt: started, durationSeconds: Date().timeIntervalSince(started))
            }
        }
        let total = report.total
        let relative = total.relative
        let detail = String(format: "‖ΔW‖ %.4g over %d tensors, ‖W‖ %.4g, max |ΔW| %.3g", total.frobenius, total.tensorCount,
                            total.baseFrobenius, total.maxAbs)
        var status = CheckStatus.passed
        if report.flags.contains(.noLearning) {
            status = .failed(message: String(format: "no-learning: the weights moved by %.2e relative (below %.0e)", relative, thresholds.noLearningBelow),
                             detail: detail + "; the learning rate may be too low, or training did not run")
        } else if report.flags.contains(.largeUpdate) {
            status = .failed(message: String(format: "large-update: the weights moved by %.3f relative (above %.3g)", relative, thresholds.largeUpdateAbove),
                             detail: detail + "; the learning rate may be too high")
        }
        var checks = [CheckResult(name: "relative-delta", status: status, metrics: [Metric(.relativeDelta, relative)])]
        for layer in report.layers {
            checks.append(CheckResult(name: "layer \(layer.layer.map(String.init) ?? "other")", status: .passed, metrics: [
                Metric("relative_delta", layer.relative), Metric("frobenius", layer.frobenius), Metric("max_abs", layer.maxAbs)]))
        }
        return SuiteResult(kind: .weightDelta, checkpoint: checkpoint.spec.name, checks: checks,
                           metrics: [Metric(.relativeDelta, relative), Metric(.frobenius, total.frobenius),
                                     Metric(.baseFrobenius, total.baseFrobenius), Metric(.maxAbs, total.maxAbs),
                                     Metric(.tensors, Double(total.tensorCount))],
                           startedAt: started, durationSeconds: Date().timeIntervalSince(started))
    }
}

extension SuiteKind {
    public static let weightDelta = SuiteKind(declaring: "weight-delta")
}
