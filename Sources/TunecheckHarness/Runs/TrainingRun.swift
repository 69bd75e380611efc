import Foundation
import TunecheckEngine

/// One training run as read from its folder, whatever trainer wrote it: its settings, its per-step metrics, its
/// checkpoints and what it recorded about them. Readers (`RunReader`) fill it in; `RunSummary` turns it into the
/// table's row. Everything a layout does not say is nil.
public struct TrainingRun: Sendable {
    /// Who wrote the folder.
    public enum Trainer: String, Sendable, CaseIterable {
        case tunecheck
        case huggingface
        case mlxLM = "mlx_lm"
    }

    /// One logged training step (TRL's metric names; nil where the trainer did not log it).
    public struct Step: Sendable, Equatable {
        public var step: Int
        public var loss: Double?
        public var learningRate: Double?
        public var gradNorm: Double?
        public var margin: Double?
        public var accuracy: Double?

        public init(step: Int, loss: Double? = nil, learningRate: Double? = nil, gradNorm: Double? = nil,
                    margin: Double? = nil, accuracy: Double? = nil) {
            self.step = step
            self.loss = loss
            self.learningRate = learningRate
            self.gradNorm = gradNorm
            self.margin = margin
            self.accuracy = accuracy
        }
    }

    /// A complete numbered checkpoint in the folder.
    public struct Checkpoint: Sendable {
        public var name: String
        public var step: Int
        public var path: URL
    }

    /// A guard that stopped the run (tunecheck's `run.json` `stop` record).
    public struct GuardStop: Sendable, Equatable {
        public var name: String
        public var step: Int
        public var checkpoint: String?
        public var value: Double?
        public var threshold: Double?
        public var reason: String
    }

    /// What the run itself recorded about one checkpoint's evaluation (`run.json`, `eval/report.json`).
    public struct RecordedEvaluation: Sendable {
        public var name: String
        public var step: Int?
        public var passed: Bool
        public var failingSuites: [String]
        public var metrics: [MetricName: Double]
    }

    public var path: String
    public var folder: URL
    public var trainer: Trainer
    public var method: String = "unknown"
    /// The configured learning rate, or the peak logged one (`learningRateIsPeak`).
    public var learningRate: Double?
    public var learningRateIsPeak = false
    public var beta: Double?
    public var lossType: String?
    public var loraRank: Int?
    public var loraAlpha: Double?
    public var loraScale: Double?
    public var loraTargets: [String]?
    /// Steps trained (recorded, else the last logged step).
    public var steps: Int?
    public var base: String?
    public var bestMetric: MetricGoal?
    public var bestCheckpoint: String?
    public var history: [Step] = []
    public var checkpoints: [Checkpoint] = []
    public var stop: GuardStop?
    /// tunecheck's `run.json` `status` (`running`, `finished`, `stopped`, `failed`); nil for other trainers.
    public var status: String?
    /// What else ended the run, as `run.json` says: the training callback's stop request, or the error of a failed
    /// run. Shown in the reason; neither is a guard, so neither decides the verdict.
    public var endNotes: [String] = []
    /// The run's own evaluation of its checkpoints, when it made one.
    public var recorded: [RecordedEvaluation] = []
    /// `eval/report.json`'s settings (what the recorded evaluations were made with), for reuse with `--suite`.
    public var recordedSettings: [String: String]?
    /// What a reader skipped or could not use (a partially written checkpoint, a log line it did not know).
    public var notices: [String] = []

    public init(path: String, folder: URL, trainer: Trainer) {
        self.path = path
        self.folder = folder
        self.trainer = trainer
    }

    /// The numbered checkpoints in the folder that can be read now; partially written ones get a notice instead.
    /// Completeness is `CheckpointWatcher`'s (a safetensors header that describes the whole file, files present).
    mutating func findCheckpoints() {
        for candidate in CheckpointWatcher.candidates(in: folder) {
            let name = CheckpointName(fileName: candidate.path.lastPathComponent)?.displayName ?? candidate.path.lastPathComponent
            if let problem = CheckpointWatcher.incompleteness(of: candidate) {
                notices.append("\(path): ignoring \(candidate.path.lastPathComponent), a partially written checkpoint (\(problem))")
                continue
            }
            checkpoints.append(Checkpoint(name: name, step: candidate.step, path: candidate.path))
        }
    }
}
