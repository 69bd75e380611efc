import Foundation
import Testing
import TunecheckEngine
@testable import TunecheckHarness

/// `best_metric` names are validated against `CheckpointMetric` (below the harness, for the trainer); the names
/// must be the ones the suites actually report, or the best checkpoint would silently never be found.
struct CheckpointMetricTests {
    @Test func preferenceSuiteMetricsAreCheckpointMetrics() {
        let pair = MetricFormulaTests.pair("a", chosen: [-1, -2], rejected: [-3])
        let reported = Set(PreferenceMetrics(policy: [pair], reference: [pair], beta: 0.1).asMetrics.map(\.name))
        let typed = Set(CheckpointMetric.allCases.map(\.rawValue))
        #expect(reported.isSubset(of: typed), "not typed: \(reported.subtracting(typed).sorted())")
        for name in ["rewards/accuracies", "rewards/margins", "rewards/chosen", "rewards/rejected", "logps/chosen", "logps/rejected"] {
            #expect(reported.contains(name), "\(name) is TRL's name and must be reported")
        }
    }
}
