import Foundation
import TunecheckEngine
import TunecheckJSON

/// `run.json`: what a training run is and where it stands, for people and for other tools (`tunecheck runs`,
/// dashboards). Written when the run starts and rewritten (atomically) at every save and at the end, so a killed
/// run still has it. Keys (v1):
///
///     { "schema_version": 1, "tool": "tunecheck", "tunecheck_version", "status": "running"|"finished"|"stopped"|"failed",
///       "started_at", "updated_at", "seconds",
///       "method": "sft"|"dpo", "fine_tune_type": "lora"|"full", "base", "data", "learning_rate", "beta", "loss_type",
///       "lora": { "rank", "scale", "keys" } | null,
///       "configuration": { every training setting, under the config file's keys },
///       "steps", "final_loss",
///       "checkpoints": [ names ], "checkpoint_records": [ { "name", "step", "loss", "passed", "metrics" } ],
///       "best_checkpoint", "best_metric",
///       "stop": { "guard", "step", "checkpoint", "value", "threshold", "reason" } | null,
///       "stopped_by": the stop as one line | null,
///       "stop_request": why the training callback stopped the run | null, "failure": the error that ended a failed run | null }
public struct RunRecord: Sendable {
    /// `running` until the run ends: `finished` (all steps), `stopped` (a guard or the callback), `failed` (an error).
    public enum Status: String, Sendable { case running, finished, stopped, failed }

    /// One saved checkpoint and what its evaluation said.
    public struct CheckpointRecord: Sendable {
        public var name: String
        public var step: Int
        public var loss: Double
        /// Nil when it was not evaluated.
        public var passed: Bool?
        public var metrics: [MetricName: Double]
    }

    public static let schemaVersion = 1

    public var configuration: TrainingConfiguration
    public var status: Status = .running
    public var startedAt: Date
    public var updatedAt: Date
    public var steps = 0
    public var finalLoss: Double?
    public var checkpoints: [CheckpointRecord] = []
    public var bestCheckpoint: String?
    public var stop: GuardTrip?
    /// Why the training callback asked the run to stop, when it did.
    public var stopRequest: String?
    /// The error that ended a failed run.
    public var failure: String?

    public init(configuration: TrainingConfiguration, startedAt: Date = Date()) {
        self.configuration = configuration
        self.startedAt = startedAt
        updatedAt = startedAt
    }

    public var json: JSONValue {
        let config = configuration
        var object = JSONObject()
        object.set("schema_version", .from(Self.schemaVersion))
        object.set("tool", .string("tunecheck"))
        object.set("tunecheck_version", .string(TunecheckVersion.current))
        object.set("status", .string(status.rawValue))
        object.set("started_at", .string(Self.timestamp(startedAt)))
        object.set("updated_at", .string(Self.timestamp(updatedAt)))
        object.set("seconds", .from(updatedAt.timeIntervalSince(startedAt)))
        object.set("method", .string(config.mode.rawValue))
        object.set("fine_tune_type", .string(config.fineTuneType.rawValue))
        object.set("base", .string(config.model))
        object.set("data", .string(config.data))
        object.set("learning_rate", .from(config.learningRate))
        object.set("beta", config.mode == .dpo ? .from(config.beta) : .null)
        object.set("loss_type", config.mode == .dpo ? .string(config.lossType.rawValue) : .null)
        if config.fineTuneType == .lora {
            var lora = JSONObject()
            lora.set("rank", .from(config.lora.rank))
            lora.set("scale", .from(config.lora.scale))
            lora.set("keys", config.lora.keys.map { .array($0.map { .string($0) }) } ?? .null)
            object.set("lora", .object(lora))
        } else {
            object.set("lora", .null)
        }
        object.set("configuration", config.jsonValue)
        object.set("steps", .from(steps))
        object.set("final_loss", finalLoss.map { .from($0) } ?? .null)
        object.set("checkpoints", .array(checkpoints.map { .string($0.name) }))
        object.set("checkpoint_records", .array(checkpoints.map { record in
            var entry = JSONObject()
            entry.set("name", .string(record.name))
            entry.set("step", .from(record.step))
            entry.set("loss", .from(record.loss))
            entry.set("passed", record.passed.map { .bool($0) } ?? .null)
            var metrics = JSONObject()
            for name in record.metrics.keys.sorted() { metrics.set(name.rawValue, .from(record.metrics[name]!)) }
            entry.set("metrics", .object(metrics))
            return .object(entry)
        }))
        object.set("best_checkpoint", bestCheckpoint.map { .string($0) } ?? .null)
        object.set("best_metric", .string(config.bestMetric.spelling))
        if let stop {
            var record = JSONObject()
            record.set("guard", .string(stop.guardName.rawValue))
            record.set("step", .from(stop.step))
            record.set("checkpoint", stop.checkpoint.map { .string($0) } ?? .null)
            record.set("value", stop.value.map { .from($0) } ?? .null)
            record.set("threshold", stop.threshold.map { .from($0) } ?? .null)
            record.set("reason", .string(stop.reason))
            object.set("stop", .object(record))
        } else {
            object.set("stop", .null)
        }
        object.set("stopped_by", stop.map { .string($0.error.errorDescription ?? $0.reason) } ?? .null)
        object.set("stop_request", stopRequest.map { .string($0) } ?? .null)
        object.set("failure", failure.map { .string($0) } ?? .null)
        return .object(object)
    }

    /// Writes `run.json` into `folder`, atomically.
    public func write(to folder: URL) throws {
        try AtomicWrite.write(JSONWriter.data(json) + Data("\n".utf8), to: folder.appendingPathComponent("run.json"))
    }

    static func timestamp(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: date)
    }
}

extension TrainingConfiguration {
    /// Every setting under the config file's keys (what `--set key=value` and the YAML use).
    public var jsonValue: JSONValue {
        // The settings table encodes under the same keys it decodes, in the table's order.
        (try? JSONValueEncoder().encode(self)) ?? .null
    }
}
