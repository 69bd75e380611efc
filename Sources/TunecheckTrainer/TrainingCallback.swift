import Foundation
import TunecheckEngine

/// A checkpoint the trainer has just written (atomically, complete).
public struct SavedCheckpoint: Sendable {
    public var step: Int
    public var name: CheckpointName
    /// The numbered file or folder.
    public var url: URL
    /// The step's training loss.
    public var loss: Double
    /// The step's own metrics (DPO: TRL's reward metrics), as metrics.jsonl records them.
    public var stepMetrics: [MetricName: Double]
}

/// What a callback found in a saved checkpoint.
public struct CheckpointFeedback: Sendable {
    /// Whether the checkpoint passed every check (only passing checkpoints can be the run's best).
    public var passed: Bool
    /// The checkpoint's numbers by name (`best_metric` ranks checkpoints by one of them).
    public var metrics: [MetricName: Double]
    /// One line per failed check, for the terminal.
    public var failures: [String]
    /// Set when the checkpoint's answers collapsed into repetition, with the evidence (the repetition guard's input).
    public var repetition: String?
    /// Set to ask the run to stop, with the reason (as mlx_lm's training callbacks can).
    public var stopRequest: String?

    public init(passed: Bool, metrics: [MetricName: Double] = [:], failures: [String] = [], repetition: String? = nil,
                stopRequest: String? = nil) {
        self.passed = passed
        self.metrics = metrics
        self.failures = failures
        self.repetition = repetition
        self.stopRequest = stopRequest
    }
}

/// Hooks into a training run, after mlx_lm's `TrainingCallback`: the trainer calls `checkpointSaved` after
/// writing each checkpoint and acts on the feedback (best checkpoint, the repetition guard, a stop request). The
/// trainer knows nothing of suites or reports; the CLI wires in a harness-backed callback that evaluates each
/// checkpoint with the run's eval suite.
public protocol TrainingCallback: AnyObject {
    /// Before the first step; the run record holds the whole configuration. `base` is the trainer's loaded base
    /// model without adapters (its weights are the mapped files): an evaluator reuses it instead of mapping the
    /// base a second time (at 3B–7B a second mapping doubles the resident set the kernel reports).
    func trainingWillStart(_ record: RunRecord, base: LanguageModel) throws
    /// After each checkpoint is written. Nil: nothing was evaluated.
    func checkpointSaved(_ checkpoint: SavedCheckpoint) throws -> CheckpointFeedback?
}

extension TrainingCallback {
    public func trainingWillStart(_ record: RunRecord, base: LanguageModel) throws {}
}
