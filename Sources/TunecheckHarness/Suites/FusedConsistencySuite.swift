import Foundation
import TunecheckEngine

/// Base + adapter (unfused) against the fused folder made from them: per-token log-probs must agree.
public enum FusedConsistencySuite: EvaluationSuite {
    public static let kind = SuiteKind.fusedConsistency
    public static let shortName = "fused"
    public static let requirement = "a base model and a fused folder with its adapter"
    public static let isAboutInputs = true

    public static func canRun(with inputs: SuiteInputs) -> Bool { inputs.base && inputs.fusedWithAdapter }
    public static func applies(to subject: SubjectKind) -> Bool { subject == .fused }

    public static func run(in context: EvaluationContext) throws -> SuiteRun? {
        guard let fused = context.fused, let adapterPath = fused.adapter, let base = context.session.base else { return nil }
        context.session.report("fused consistency (\(context.name))", 0, 1)
        let (unfused, adapter) = try base.applyingAdapter(at: URL(fileURLWithPath: adapterPath))
        let fusedModel = try ModelLoader.loadDecoder(folder: URL(fileURLWithPath: fused.path))
        let sequences = try context.session.comparisonSequences()
        guard !sequences.isEmpty else {
            throw HarnessError.missingInput("fused consistency needs texts, pairs or prompts to score")
        }
        let scale = adapter.modules.map { abs($0.scale) }.max() ?? 1
        return SuiteRun(result: try run(name: context.name, unfused: unfused.decoder, fused: fusedModel, sequences: sequences,
                                        adapterScale: scale, thresholds: context.thresholds.fused))
    }

    public static func run(name: String, unfused: DecoderModel, fused: DecoderModel, sequences: [[Int]], adapterScale: Float,
                           thresholds: FusedThresholds) throws -> SuiteResult {
        let started = Date()
        let a = try Scorer(model: unfused).score(sequences)
        let b = try Scorer(model: fused).score(sequences)
        var largest = 0.0
        for (x, y) in zip(a, b) {
            for (p, q) in zip(x, y) { largest = max(largest, abs(p - q)) }
        }
        let tolerance = abs(adapterScale) >= 10 ? thresholds.toleranceLargeScale : thresholds.tolerance
        let status: CheckStatus = largest <= tolerance ? .passed : .failed(
            message: String(format: "fused and unfused log-probs differ by up to %.2e (tolerance %.0e)", largest, tolerance),
            detail: "the fused folder does not compute the same function as base + adapter: it was fused from another adapter or base, or fusing lost precision (check --dtype)")
        return SuiteResult(kind: .fusedConsistency, checkpoint: name,
                           checks: [CheckResult(name: "logprobs", status: status, metrics: [Metric("max_abs_diff", largest)])],
                           metrics: [Metric("max_abs_diff", largest), Metric("tolerance", tolerance)],
                           startedAt: started, durationSeconds: Date().timeIntervalSince(started))
    }
}

extension SuiteKind {
    public static let fusedConsistency = SuiteKind(declaring: "fused-consistency")
}
