import Foundation
import TunecheckEngine
import TunecheckJSON
import Yams

/// Problems with a training run's inputs or state; each names the file.
public enum TrainerError: Error, LocalizedError, Equatable {
    case invalidConfig(path: String, reason: String)
    case invalidData(path: String, line: Int?, reason: String)
    case guardTripped(guardName: String, checkpoint: String, reason: String)
    case failed(String)

    public var errorDescription: String? {
        switch self {
        case let .invalidConfig(path, reason): return "\(path): invalid training config: \(reason)"
        case let .invalidData(path, line, reason): return line.map { "\(path):\($0): \(reason)" } ?? "\(path): \(reason)"
        case let .guardTripped(guardName, checkpoint, reason): return "guard '\(guardName)' stopped the run at \(checkpoint): \(reason)"
        case let .failed(message): return message
        }
    }
}

/// `lora_parameters` as mlx_lm writes them.
public struct LoRASettings: Sendable, Equatable, SettingsCodable {
    public var rank: Int = 8
    /// The multiplier of `x·A·B` (mlx_lm's `scale`, not alpha/r).
    public var scale: Double = 20
    public var dropout: Double = 0
    /// Module paths inside a block (`self_attn.q_proj`, ...); nil adapts every linear layer.
    public var keys: [String]?

    public init() {}

    public static var fields: [SettingsField<Self>] {
        [.field("rank", \.rank), .field("scale", \.scale), .field("dropout", \.dropout), .field("keys", \.keys)]
    }
}

/// mlx_lm's `lr_schedule`: `{name: cosine_decay | linear_schedule | constant, arguments: [...], warmup: N, warmup_init: x}`.
public struct LearningRateSchedule: Sendable, Equatable, SettingsCodable {
    public enum Name: String, SettingsEnum { case constant, cosineDecay = "cosine_decay", linearSchedule = "linear_schedule" }

    public var name: Name = .constant
    public var arguments: [Double] = []
    public var warmup: Int = 0
    public var warmupInit: Double = 0

    public init() {}

    public static var fields: [SettingsField<Self>] {
        [.field("name", \.name), .field("arguments", \.arguments), .field("warmup", \.warmup), .field("warmup_init", \.warmupInit)]
    }

    /// The learning rate at optimizer step `step` (0-based), given the base rate.
    public func rate(at step: Int, base: Double) -> Double {
        if step < warmup {
            return warmupInit + (base - warmupInit) * Double(step + 1) / Double(warmup)
        }
        let t = Double(step - warmup)
        switch name {
        case .cosineDecay:
            let initial = arguments.first ?? base
            let decaySteps = max(arguments.count > 1 ? arguments[1] : 1, 1)
            let end = arguments.count > 2 ? arguments[2] : 0
            return end + (initial - end) * 0.5 * (1 + cos(Double.pi * min(t, decaySteps) / decaySteps))
        case .linearSchedule:
            let initial = arguments.first ?? base
            let end = arguments.count > 1 ? arguments[1] : 0
            let steps = max(arguments.count > 2 ? arguments[2] : 1, 1)
            return initial + (end - initial) * min(t, steps) / steps
        case .constant:
            return base
        }
    }
}

/// One optimizer's settings in `optimizer_config` (mlx_lm's names); torch's defaults where absent.
public struct OptimizerSettings: Sendable, Equatable, SettingsCodable {
    public var weightDecay: Double?
    public var betas: [Double]?
    public var eps: Double?
    public var momentum: Double?

    public init(weightDecay: Double? = nil, betas: [Double]? = nil, eps: Double? = nil, momentum: Double? = nil) {
        self.weightDecay = weightDecay
        self.betas = betas
        self.eps = eps
        self.momentum = momentum
    }

    public init() {}

    public static var fields: [SettingsField<Self>] {
        [.field("weight_decay", \.weightDecay), .field("betas", \.betas), .field("eps", \.eps), .field("momentum", \.momentum)]
    }
}

/// `optimizer_config`, keyed by optimizer (mlx_lm's layout): `{adamw: {weight_decay: 0.01}}`.
public struct OptimizerConfigs: Sendable, Equatable, SettingsCodable {
    public var sgd: OptimizerSettings?
    public var adam: OptimizerSettings?
    public var adamw: OptimizerSettings?

    public init() {}

    public static var fields: [SettingsField<Self>] { [.field("sgd", \.sgd), .field("adam", \.adam), .field("adamw", \.adamw)] }

    public subscript(optimizer: TrainingConfiguration.OptimizerName) -> OptimizerSettings? {
        get {
            switch optimizer {
            case .sgd: return sgd
            case .adam: return adam
            case .adamw: return adamw
            }
        }
        set {
            switch optimizer {
            case .sgd: sgd = newValue
            case .adam: adam = newValue
            case .adamw: adamw = newValue
            }
        }
    }
}

/// DPO's reference model: the base with the adapter off (computed once), or a JSONL file of precomputed
/// `reference_chosen_logps` / `reference_rejected_logps`. Written `base` or a path in the settings file (a file
/// that is itself named `base` is written `./base`).
public enum ReferenceSource: Sendable, Equatable, Codable {
    case base
    case file(String)

    public init(from decoder: Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        self = text == "base" ? .base : .file(text)
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .base: try container.encode("base")
        case .file(let path): try container.encode(path)
        }
    }
}

/// Guards that stop a run early, each with its default. A guard that trips ends the run with a message naming
/// the guard and the checkpoint, and a non-zero exit.
public struct GuardSettings: Sendable, Equatable, SettingsCodable {
    /// DPO: stop when the mean reward margin of a report window exceeds this (the motivating run: 0.2 → 18).
    public var maxMargin: Double? = 5
    /// Stop when the loss falls below this within the first `earlyWindowSteps` steps (a loss that collapses to 0
    /// that fast means the model found a shortcut, not the preference).
    public var minLoss: Double? = 0.01
    public var earlyWindowSteps: Int = 50
    /// Stop when a saved checkpoint fails the repetition suite.
    public var repetition: Bool = true
    /// Stop on a NaN or infinite loss or gradient.
    public var nonFinite: Bool = true
    /// Stop when, after this many steps, the relative weight delta is below `noLearningBelow`.
    public var noLearningAfterSteps: Int? = 100
    public var noLearningBelow: Double = 1e-4

    public init() {}

    /// The optional guards are on by default; `null` in the file turns one off.
    public static var fields: [SettingsField<Self>] {
        [.field("max_margin", \.maxMargin), .field("min_loss", \.minLoss), .field("early_window_steps", \.earlyWindowSteps),
         .field("repetition", \.repetition), .field("non_finite", \.nonFinite),
         .field("no_learning_after_steps", \.noLearningAfterSteps), .field("no_learning_below", \.noLearningBelow)]
    }
}

/// `tunecheck train --config FILE.yaml`: mlx_lm's LoRA config keys where they overlap, plus the DPO and harness
/// settings. Unknown keys are an error.
public struct TrainingConfiguration: Sendable, Equatable, SettingsCodable {
    public enum Mode: String, SettingsEnum { case sft, dpo }
    public enum FineTuneType: String, SettingsEnum { case lora, full }
    public enum LossType: String, SettingsEnum { case sigmoid, ipo, hinge }
    public enum OptimizerName: String, SettingsEnum { case sgd, adam, adamw }

    public var model: String = ""
    public var data: String = ""
    public var fineTuneType: FineTuneType = .lora
    public var numLayers: Int = -1
    public var lora = LoRASettings()
    public var learningRate: Double = 1e-5
    public var iters: Int = 1000
    public var batchSize: Int = 4
    public var gradAccumulationSteps: Int = 1
    public var saveEvery: Int = 100
    public var stepsPerReport: Int = 10
    public var stepsPerEval: Int = 200
    public var adapterPath: String = "adapters"
    public var resumeAdapterFile: String?
    public var seed: UInt64 = 0
    public var maxSeqLength: Int = 2048
    public var maskPrompt: Bool = false
    public var lrSchedule = LearningRateSchedule()
    public var optimizer: OptimizerName = .adam
    /// Per optimizer, as mlx_lm: `{adamw: {weight_decay: 0.01, betas: [0.9, 0.999], eps: 1e-8}}`.
    public var optimizerConfig = OptimizerConfigs()
    public var maxGradNorm: Double?
    public var mode: Mode = .sft
    public var beta: Double = 0.1
    public var lossType: LossType = .sigmoid
    public var normalizeByLength: Bool = false
    /// `base` (the base model with the adapter off, computed once) or a JSONL file of precomputed
    /// `reference_chosen_logps` / `reference_rejected_logps`, one line per training example.
    public var reference: ReferenceSource = .base
    /// Write the reference log-probs computed from the base here (like TRL's precomputed dataset).
    public var referenceOutput: String?
    public var evalSuite: String?
    public var guards = GuardSettings()
    public var shuffle: Bool = true
    /// Append EOS to responses and SFT texts (mlx_lm and TRL do).
    public var appendEos: Bool = true
    /// The metric that picks the best checkpoint (maximised; prefix `-` to minimise in the file).
    public var bestMetric = MetricGoal(.rewardsAccuracies)

    public static var fields: [SettingsField<Self>] {
        [.required("model", \.model), .required("data", \.data), .field("fine_tune_type", \.fineTuneType),
         .field("num_layers", \.numLayers), .field("lora_parameters", \.lora), .field("learning_rate", \.learningRate),
         .field("iters", \.iters), .field("batch_size", \.batchSize), .field("grad_accumulation_steps", \.gradAccumulationSteps),
         .field("save_every", \.saveEvery), .field("steps_per_report", \.stepsPerReport), .field("steps_per_eval", \.stepsPerEval),
         .field("adapter_path", \.adapterPath), .field("resume_adapter_file", \.resumeAdapterFile), .field("seed", \.seed),
         .field("max_seq_length", \.maxSeqLength), .field("mask_prompt", \.maskPrompt), .field("lr_schedule", \.lrSchedule),
         .field("optimizer", \.optimizer), .field("optimizer_config", \.optimizerConfig), .field("max_grad_norm", \.maxGradNorm),
         .field("mode", \.mode), .field("beta", \.beta), .field("loss_type", \.lossType),
         .field("normalize_by_length", \.normalizeByLength), .field("reference", \.reference),
         .field("reference_output", \.referenceOutput), .field("eval_suite", \.evalSuite), .field("guards", \.guards),
         .field("shuffle", \.shuffle), .field("append_eos", \.appendEos), .field("best_metric", \.bestMetric)]
    }

    /// mlx_lm keys that are accepted and have no effect here (they concern its own runtime), so an mlx_lm config
    /// loads as is.
    public static let ignoredKeys = ["train", "test", "test_batches", "val_batches", "grad_checkpoint", "report_to", "project_name",
                                 "wandb", "config", "trust_remote_code", "clear_cache_threshold", "lora_layers"]

    public init() {}

    /// Reads a YAML (or JSON) config; relative paths are resolved against the config's folder. `overrides` are
    /// `key=value` pairs (YAML values) applied on top, as from the command line.
    public static func load(_ url: URL, overrides: [String] = []) throws -> TrainingConfiguration {
        let path = url.path
        var text: String
        do { text = try BoundedFile.readText(url, limit: BoundedFile.Limit.config) } catch {
            throw TrainerError.invalidConfig(path: path, reason: error.reason)
        }
        if !overrides.isEmpty {
            // Overrides are appended as YAML keys on a re-serialised mapping, so they replace file values.
            guard let node = try? Yams.compose(yaml: text), var mapping = node.mapping else {
                throw TrainerError.invalidConfig(path: path, reason: "expected a mapping of settings at the top level")
            }
            for override in overrides {
                guard let equals = override.firstIndex(of: "=") else {
                    throw TrainerError.invalidConfig(path: path, reason: "override '\(override)' is not key=value")
                }
                let key = String(override[..<equals])
                let valueText = String(override[override.index(after: equals)...])
                let value = (try? Yams.compose(yaml: valueText)) ?? nil
                mapping[Node(key)] = value ?? Node(valueText)
            }
            text = try Yams.serialize(node: Node.mapping(mapping))
        }
        var configuration: TrainingConfiguration
        do {
            guard let node = try Yams.compose(yaml: text), node.mapping != nil else {
                throw TrainerError.invalidConfig(path: path, reason: "expected a mapping of settings at the top level")
            }
            configuration = try YAMLDecoder().decode(TrainingConfiguration.self, from: node)
        } catch let error as TrainerError {
            throw error
        } catch let error as DecodingError {
            throw TrainerError.invalidConfig(path: path, reason: error.settingsMessage)
        } catch {
            throw TrainerError.invalidConfig(path: path, reason: "not valid YAML: \(String(describing: error).split(separator: "\n").first ?? "")")
        }
        let folder = url.deletingLastPathComponent()
        func resolve(_ value: String) -> String { value.hasPrefix("/") ? value : folder.appendingPathComponent(value).standardizedFileURL.path }
        configuration.model = resolve(configuration.model)
        configuration.data = resolve(configuration.data)
        configuration.adapterPath = resolve(configuration.adapterPath)
        configuration.resumeAdapterFile = configuration.resumeAdapterFile.map(resolve)
        configuration.evalSuite = configuration.evalSuite.map(resolve)
        configuration.referenceOutput = configuration.referenceOutput.map(resolve)
        if case .file(let reference) = configuration.reference { configuration.reference = .file(resolve(reference)) }
        try configuration.validate(path: path)
        return configuration
    }

    public func validate(path: String) throws {
        func fail(_ reason: String) -> TrainerError { .invalidConfig(path: path, reason: reason) }
        guard iters > 0 else { throw fail("iters must be positive") }
        guard batchSize > 0 else { throw fail("batch_size must be positive") }
        guard gradAccumulationSteps > 0 else { throw fail("grad_accumulation_steps must be positive") }
        guard saveEvery > 0, stepsPerReport > 0, stepsPerEval > 0 else { throw fail("save_every, steps_per_report and steps_per_eval must be positive") }
        guard learningRate > 0, learningRate.isFinite else { throw fail("learning_rate must be a positive number") }
        guard maxSeqLength >= 2 else { throw fail("max_seq_length must be at least 2") }
        guard lora.rank > 0 else { throw fail("lora_parameters.rank must be positive") }
        guard lora.dropout == 0 else { throw fail("lora_parameters.dropout must be 0 (dropout is not implemented; training is deterministic)") }
        guard beta > 0 else { throw fail("beta must be positive") }
        if let maxGradNorm { guard maxGradNorm > 0 else { throw fail("max_grad_norm must be positive") } }
        if mode == .dpo && fineTuneType == .full { throw fail("DPO with fine_tune_type full is not supported; use LoRA") }
        for name in OptimizerName.allCases {
            guard let settings = optimizerConfig[name] else { continue }
            if let betas = settings.betas, betas.count != 2 || betas.contains(where: { $0 < 0 || $0 >= 1 }) {
                throw fail("optimizer_config.\(name).betas must be two numbers in [0, 1)")
            }
        }
    }
}
