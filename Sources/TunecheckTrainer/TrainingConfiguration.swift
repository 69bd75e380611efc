import Foundation
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
public struct LoRASettings: Sendable, Equatable, Codable {
    public var rank: Int = 8
    /// The multiplier of `x·A·B` (mlx_lm's `scale`, not alpha/r).
    public var scale: Double = 20
    public var dropout: Double = 0
    /// Module paths inside a block (`self_attn.q_proj`, ...); nil adapts every linear layer.
    public var keys: [String]?

    enum CodingKeys: String, CodingKey, CaseIterable { case rank, scale, dropout, keys }

    public init() {}

    public init(from decoder: Decoder) throws {
        try TrainingConfiguration.checkKeys(decoder, CodingKeys.allCases.map(\.rawValue))
        let container = try decoder.container(keyedBy: CodingKeys.self)
        rank = try container.decodeIfPresent(Int.self, forKey: .rank) ?? rank
        scale = try container.decodeIfPresent(Double.self, forKey: .scale) ?? scale
        dropout = try container.decodeIfPresent(Double.self, forKey: .dropout) ?? dropout
        keys = try container.decodeIfPresent([String].self, forKey: .keys)
    }
}

/// mlx_lm's `lr_schedule`: `{name: cosine_decay | linear_schedule | constant, arguments: [...], warmup: N, warmup_init: x}`.
public struct LearningRateSchedule: Sendable, Equatable, Codable {
    public var name: String = "constant"
    public var arguments: [Double] = []
    public var warmup: Int = 0
    public var warmupInit: Double = 0

    enum CodingKeys: String, CodingKey, CaseIterable { case name, arguments, warmup, warmupInit = "warmup_init" }

    public init() {}

    public init(from decoder: Decoder) throws {
        try TrainingConfiguration.checkKeys(decoder, CodingKeys.allCases.map(\.rawValue))
        let container = try decoder.container(keyedBy: CodingKeys.self)
        name = try container.decodeIfPresent(String.self, forKey: .name) ?? name
        arguments = try container.decodeIfPresent([Double].self, forKey: .arguments) ?? []
        warmup = try container.decodeIfPresent(Int.self, forKey: .warmup) ?? 0
        warmupInit = try container.decodeIfPresent(Double.self, forKey: .warmupInit) ?? 0
    }

    /// The learning rate at optimizer step `step` (0-based), given the base rate.
    public func rate(at step: Int, base: Double) -> Double {
        if step < warmup {
            return warmupInit + (base - warmupInit) * Double(step + 1) / Double(warmup)
        }
        let t = Double(step - warmup)
        switch name {
        case "cosine_decay":
            let initial = arguments.first ?? base
            let decaySteps = max(arguments.count > 1 ? arguments[1] : 1, 1)
            let end = arguments.count > 2 ? arguments[2] : 0
            return end + (initial - end) * 0.5 * (1 + cos(Double.pi * min(t, decaySteps) / decaySteps))
        case "linear_schedule":
            let initial = arguments.first ?? base
            let end = arguments.count > 1 ? arguments[1] : 0
            let steps = max(arguments.count > 2 ? arguments[2] : 1, 1)
            return initial + (end - initial) * min(t, steps) / steps
        default:
            return base
        }
    }
}

/// One optimizer's settings in `optimizer_config` (mlx_lm's names); torch's defaults where absent.
public struct OptimizerSettings: Sendable, Equatable, Codable {
    public var weightDecay: Double?
    public var betas: [Double]?
    public var eps: Double?
    public var momentum: Double?

    enum CodingKeys: String, CodingKey, CaseIterable { case weightDecay = "weight_decay", betas, eps, momentum }

    public init(weightDecay: Double? = nil, betas: [Double]? = nil, eps: Double? = nil, momentum: Double? = nil) {
        self.weightDecay = weightDecay
        self.betas = betas
        self.eps = eps
        self.momentum = momentum
    }

    public init(from decoder: Decoder) throws {
        try TrainingConfiguration.checkKeys(decoder, CodingKeys.allCases.map(\.rawValue))
        let container = try decoder.container(keyedBy: CodingKeys.self)
        weightDecay = try container.decodeIfPresent(Double.self, forKey: .weightDecay)
        betas = try container.decodeIfPresent([Double].self, forKey: .betas)
        eps = try container.decodeIfPresent(Double.self, forKey: .eps)
        momentum = try container.decodeIfPresent(Double.self, forKey: .momentum)
    }
}

/// Guards that stop a run early, each with its default. A guard that trips ends the run with a message naming
/// the guard and the checkpoint, and a non-zero exit.
public struct GuardSettings: Sendable, Equatable, Codable {
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

    enum CodingKeys: String, CodingKey, CaseIterable {
        case maxMargin = "max_margin", minLoss = "min_loss", earlyWindowSteps = "early_window_steps", repetition
        case nonFinite = "non_finite", noLearningAfterSteps = "no_learning_after_steps", noLearningBelow = "no_learning_below"
    }

    public init() {}

    public init(from decoder: Decoder) throws {
        try TrainingConfiguration.checkKeys(decoder, CodingKeys.allCases.map(\.rawValue))
        let container = try decoder.container(keyedBy: CodingKeys.self)
        if container.contains(.maxMargin) { maxMargin = try container.decodeIfPresent(Double.self, forKey: .maxMargin) }
        if container.contains(.minLoss) { minLoss = try container.decodeIfPresent(Double.self, forKey: .minLoss) }
        earlyWindowSteps = try container.decodeIfPresent(Int.self, forKey: .earlyWindowSteps) ?? earlyWindowSteps
        repetition = try container.decodeIfPresent(Bool.self, forKey: .repetition) ?? repetition
        nonFinite = try container.decodeIfPresent(Bool.self, forKey: .nonFinite) ?? nonFinite
        if container.contains(.noLearningAfterSteps) {
            noLearningAfterSteps = try container.decodeIfPresent(Int.self, forKey: .noLearningAfterSteps)
        }
        noLearningBelow = try container.decodeIfPresent(Double.self, forKey: .noLearningBelow) ?? noLearningBelow
    }
}

/// `tunecheck train --config FILE.yaml`: mlx_lm's LoRA config keys where they overlap, plus the DPO and harness
/// settings. Unknown keys are an error.
public struct TrainingConfiguration: Sendable, Equatable, Codable {
    public enum Mode: String, Sendable, Codable { case sft, dpo }
    public enum FineTuneType: String, Sendable, Codable { case lora, full }
    public enum LossType: String, Sendable, Codable { case sigmoid, ipo, hinge }
    public enum OptimizerName: String, Sendable, Codable { case sgd, adam, adamw }

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
    public var optimizerConfig: [String: OptimizerSettings] = [:]
    public var maxGradNorm: Double?
    public var mode: Mode = .sft
    public var beta: Double = 0.1
    public var lossType: LossType = .sigmoid
    public var normalizeByLength: Bool = false
    /// `base` (the base model with the adapter off, computed once) or a JSONL file of precomputed
    /// `reference_chosen_logps` / `reference_rejected_logps`, one line per training example.
    public var reference: String = "base"
    /// Write the reference log-probs computed from the base here (like TRL's precomputed dataset).
    public var referenceOutput: String?
    public var evalSuite: String?
    public var guards = GuardSettings()
    public var shuffle: Bool = true
    /// Append EOS to responses and SFT texts (mlx_lm and TRL do).
    public var appendEos: Bool = true
    /// The metric that picks the best checkpoint (maximised; prefix `-` to minimise).
    public var bestMetric: String = "rewards/accuracies"

    enum CodingKeys: String, CodingKey, CaseIterable {
        case model, data, fineTuneType = "fine_tune_type", numLayers = "num_layers", lora = "lora_parameters"
        case learningRate = "learning_rate", iters, batchSize = "batch_size", gradAccumulationSteps = "grad_accumulation_steps"
        case saveEvery = "save_every", stepsPerReport = "steps_per_report", stepsPerEval = "steps_per_eval"
        case adapterPath = "adapter_path", resumeAdapterFile = "resume_adapter_file", seed, maxSeqLength = "max_seq_length"
        case maskPrompt = "mask_prompt", lrSchedule = "lr_schedule", optimizer, optimizerConfig = "optimizer_config"
        case maxGradNorm = "max_grad_norm", mode, beta, lossType = "loss_type", normalizeByLength = "normalize_by_length"
        case reference, referenceOutput = "reference_output", evalSuite = "eval_suite", guards, shuffle, appendEos = "append_eos"
        case bestMetric = "best_metric"
    }

    /// mlx_lm keys that are accepted and have no effect here (they concern its own runtime), so an mlx_lm config
    /// loads as is.
    static let ignoredMLXKeys = ["train", "test", "test_batches", "val_batches", "grad_checkpoint", "report_to", "project_name",
                                 "wandb", "config", "trust_remote_code", "clear_cache_threshold", "lora_layers"]

    public init() {}

    public init(from decoder: Decoder) throws {
        try Self.checkKeys(decoder, CodingKeys.allCases.map(\.rawValue) + Self.ignoredMLXKeys)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        model = try c.decode(String.self, forKey: .model)
        data = try c.decode(String.self, forKey: .data)
        fineTuneType = try c.decodeIfPresent(FineTuneType.self, forKey: .fineTuneType) ?? fineTuneType
        numLayers = try c.decodeIfPresent(Int.self, forKey: .numLayers) ?? numLayers
        lora = try c.decodeIfPresent(LoRASettings.self, forKey: .lora) ?? lora
        learningRate = try c.decodeIfPresent(Double.self, forKey: .learningRate) ?? learningRate
        iters = try c.decodeIfPresent(Int.self, forKey: .iters) ?? iters
        batchSize = try c.decodeIfPresent(Int.self, forKey: .batchSize) ?? batchSize
        gradAccumulationSteps = try c.decodeIfPresent(Int.self, forKey: .gradAccumulationSteps) ?? gradAccumulationSteps
        saveEvery = try c.decodeIfPresent(Int.self, forKey: .saveEvery) ?? saveEvery
        stepsPerReport = try c.decodeIfPresent(Int.self, forKey: .stepsPerReport) ?? stepsPerReport
        stepsPerEval = try c.decodeIfPresent(Int.self, forKey: .stepsPerEval) ?? stepsPerEval
        adapterPath = try c.decodeIfPresent(String.self, forKey: .adapterPath) ?? adapterPath
        resumeAdapterFile = try c.decodeIfPresent(String.self, forKey: .resumeAdapterFile)
        seed = try c.decodeIfPresent(UInt64.self, forKey: .seed) ?? seed
        maxSeqLength = try c.decodeIfPresent(Int.self, forKey: .maxSeqLength) ?? maxSeqLength
        maskPrompt = try c.decodeIfPresent(Bool.self, forKey: .maskPrompt) ?? maskPrompt
        lrSchedule = try c.decodeIfPresent(LearningRateSchedule.self, forKey: .lrSchedule) ?? lrSchedule
        optimizer = try c.decodeIfPresent(OptimizerName.self, forKey: .optimizer) ?? optimizer
        optimizerConfig = try c.decodeIfPresent([String: OptimizerSettings].self, forKey: .optimizerConfig) ?? [:]
        maxGradNorm = try c.decodeIfPresent(Double.self, forKey: .maxGradNorm)
        mode = try c.decodeIfPresent(Mode.self, forKey: .mode) ?? mode
        beta = try c.decodeIfPresent(Double.self, forKey: .beta) ?? beta
        lossType = try c.decodeIfPresent(LossType.self, forKey: .lossType) ?? lossType
        normalizeByLength = try c.decodeIfPresent(Bool.self, forKey: .normalizeByLength) ?? normalizeByLength
        reference = try c.decodeIfPresent(String.self, forKey: .reference) ?? reference
        referenceOutput = try c.decodeIfPresent(String.self, forKey: .referenceOutput)
        evalSuite = try c.decodeIfPresent(String.self, forKey: .evalSuite)
        guards = try c.decodeIfPresent(GuardSettings.self, forKey: .guards) ?? guards
        shuffle = try c.decodeIfPresent(Bool.self, forKey: .shuffle) ?? shuffle
        appendEos = try c.decodeIfPresent(Bool.self, forKey: .appendEos) ?? appendEos
        bestMetric = try c.decodeIfPresent(String.self, forKey: .bestMetric) ?? bestMetric
    }

    static func checkKeys(_ decoder: Decoder, _ allowed: [String]) throws {
        struct AnyKey: CodingKey {
            var stringValue: String
            var intValue: Int? { nil }
            init?(stringValue: String) { self.stringValue = stringValue }
            init?(intValue: Int) { return nil }
        }
        let container = try decoder.container(keyedBy: AnyKey.self)
        for key in container.allKeys where !allowed.contains(key.stringValue) {
            throw DecodingError.dataCorruptedError(forKey: key, in: container,
                                                   debugDescription: "unknown key '\(key.stringValue)'")
        }
    }

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
            throw TrainerError.invalidConfig(path: path, reason: DecodingErrorText.describe(error))
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
        if configuration.reference != "base" { configuration.reference = resolve(configuration.reference) }
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
        guard ["constant", "cosine_decay", "linear_schedule"].contains(lrSchedule.name) else {
            throw fail("lr_schedule.name '\(lrSchedule.name)' is not supported (constant, cosine_decay, linear_schedule)")
        }
        if mode == .dpo && fineTuneType == .full { throw fail("DPO with fine_tune_type full is not supported; use LoRA") }
        for (name, settings) in optimizerConfig {
            guard ["sgd", "adam", "adamw"].contains(name) else { throw fail("optimizer_config.\(name): unknown optimizer") }
            if let betas = settings.betas, betas.count != 2 || betas.contains(where: { $0 < 0 || $0 >= 1 }) {
                throw fail("optimizer_config.\(name).betas must be two numbers in [0, 1)")
            }
        }
    }
}
