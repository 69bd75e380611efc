import Foundation
import TunecheckEngine

/// `tunecheck runs --suite`: evaluates each run's checkpoints against the suite's base exactly as `eval` does
/// (one `EvaluationSession` per run, no reports written), reusing the run's own `eval/report.json` results when
/// they were made with the same settings.
public struct RunSuiteEvaluator {
    public let configuration: SuiteConfiguration
    public var onNotice: (String) -> Void = { _ in }
    /// Called with a stage description (for a progress line).
    public var progress: ((String) -> Void)?

    public init(configuration: SuiteConfiguration) {
        var configuration = configuration
        configuration.checkpoints = []
        self.configuration = configuration
    }

    /// The reward-margin threshold the suite sets (`thresholds.preference.max_margin`).
    public var marginThreshold: Double { configuration.thresholds.preference.maxMargin }

    /// Each complete checkpoint of the run with its verdict, failing suites and metrics, in step order.
    public func evaluate(_ run: TrainingRun) throws -> [TrainingRun.RecordedEvaluation] {
        if let recordedBase = run.base, let suiteBase = configuration.base,
           Self.lastComponent(recordedBase) != Self.lastComponent(suiteBase) {
            onNotice("\(run.path): trained on base '\(Self.lastComponent(recordedBase))', evaluated against the suite's base "
                     + "'\(Self.lastComponent(suiteBase))'")
        }
        guard !run.checkpoints.isEmpty else { return [] }
        var settings = try SessionSettings(configuration: configuration)
        settings.checkpointsArriveLater = true
        let session = EvaluationSession(settings: settings)
        session.onNotice = onNotice

        // Reuse: the run's eval/report.json was made with these settings (base, evalsets, generation, suites).
        var reused: [String: TrainingRun.RecordedEvaluation] = [:]
        if let recordedSettings = run.recordedSettings, Self.sameSettings(recordedSettings, session.makeReport().settings) {
            let recorded = (try? EvalReportReader.read(run.folder.appendingPathComponent("eval/report.json")))??.evaluations ?? []
            for evaluation in recorded { reused[evaluation.name] = evaluation }
        }
        var results: [TrainingRun.RecordedEvaluation] = []
        var prepared = false
        for checkpoint in run.checkpoints {
            if let evaluation = reused[checkpoint.name] {
                results.append(evaluation)
                continue
            }
            if !prepared {
                progress?("\(run.path): loading the base")
                try session.prepare()
                prepared = true
            }
            progress?("\(run.path): \(checkpoint.name)")
            var spec = try CheckpointSpec.from(path: checkpoint.path.path)
            spec.step = checkpoint.step
            let evaluation = try session.evaluate(spec)
            results.append(.init(name: checkpoint.name, step: checkpoint.step, passed: evaluation.passed,
                                 failingSuites: evaluation.failedSuites.map(\.kind.rawValue),
                                 metrics: CheckpointSummary.metrics(of: evaluation.suites)))
        }
        if !reused.isEmpty {
            let count = results.filter { reused[$0.name] != nil }.count
            if count > 0 { onNotice("\(run.path): reused \(count) checkpoint evaluation\(count == 1 ? "" : "s") from eval/report.json (same suite settings)") }
        }
        return results
    }

    /// Whether a recorded report's settings are this session's: the same suites, generation settings and inputs.
    /// Paths match when equal, or, for a recorded path that does not exist here (a run made in another checkout),
    /// when their last two components are (`models/demo-base`). Thresholds are not recorded in report.json; the
    /// suite file is assumed unchanged when its inputs are.
    static func sameSettings(_ recorded: [String: String], _ current: [(key: String, value: String)]) -> Bool {
        let pathKeys: Set<String> = ["base", "prompts", "pairs", "texts", "answers", "choices"]
        var currentMap: [String: String] = [:]
        for (key, value) in current { currentMap[key] = value }
        let keys = Set(recorded.keys).union(currentMap.keys).subtracting(["preflight"])
        for key in keys {
            guard let a = recorded[key], let b = currentMap[key] else { return false }
            if a == b { continue }
            guard pathKeys.contains(key) else { return false }
            let standardA = URL(fileURLWithPath: a).standardizedFileURL.path, standardB = URL(fileURLWithPath: b).standardizedFileURL.path
            if standardA == standardB { continue }
            if FileManager.default.fileExists(atPath: standardA) { return false }
            guard tail(standardA) == tail(standardB) else { return false }
        }
        return true
    }

    static func tail(_ path: String) -> String { URL(fileURLWithPath: path).pathComponents.suffix(2).joined(separator: "/") }

    static func lastComponent(_ path: String) -> String { URL(fileURLWithPath: path).standardizedFileURL.lastPathComponent }
}
