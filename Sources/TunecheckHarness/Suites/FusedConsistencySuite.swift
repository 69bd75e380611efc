import Foundation
import TunecheckEngine

/// Base + adapter (unfused) against the fused folder made from them: per-token log-probs must agree.
public enum FusedConsistencySuite {
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
