import Foundation
import TunecheckJSON
import Yams

/// Thresholds of the preference suite. `beta` scales implicit rewards as TRL does (`r = β·(log π − log π_ref)`).
public struct PreferenceThresholds: Sendable, Equatable, SettingsCodable {
    /// DPO's β for the implicit reward (TRL's default 0.1).
    public var beta: Double = 0.1
    /// Fail when fewer held-out pairs than this are ranked right (chosen reward > rejected reward).
    public var minAccuracy: Double = 0.5
    /// Fail when the mean reward margin exceeds this: an exploding margin is the signature of an unstable run
    /// (the motivating run went 0.2 → 18 in a few steps).
    public var maxMargin: Double = 5
    /// Optional floor on the mean margin (nil: none).
    public var minMargin: Double?

    public init() {}

    public static var fields: [SettingsField<Self>] {
        [.field("beta", \.beta), .field("min_accuracy", \.minAccuracy), .field("max_margin", \.maxMargin),
         .field("min_margin", \.minMargin)]
    }
}

/// Thresholds of the drift suite, on the reference texts.
public struct DriftThresholds: Sendable, Equatable, SettingsCodable {
    /// Fail when the mean per-token log-prob of the reference texts falls by more than this many nats.
    public var maxTextLogprobDrop: Double = 0.5
    /// Fail when the mean token-level KL(base ‖ checkpoint) on the reference texts exceeds this (nats).
    public var maxTextKL: Double = 0.5

    public init() {}

    public static var fields: [SettingsField<Self>] {
        [.field("max_text_logprob_drop", \.maxTextLogprobDrop), .field("max_text_kl", \.maxTextKL)]
    }
}

/// Thresholds of the weight-delta suite (overall ‖ΔW‖_F / ‖W‖_F over adapted weights).
public struct WeightDeltaThresholds: Sendable, Equatable, SettingsCodable {
    /// Below this the checkpoint did not move: `no-learning`.
    public var noLearningBelow: Double = 1e-4
    /// Above this the update is suspiciously large: `large-update`.
    public var largeUpdateAbove: Double = 0.1

    public init() {}

    public static var fields: [SettingsField<Self>] {
        [.field("no_learning_below", \.noLearningBelow), .field("large_update_above", \.largeUpdateAbove)]
    }
}

/// How golden outputs are compared.
public struct GoldenThresholds: Sendable, Equatable, SettingsCodable {
    public enum Mode: String, SettingsEnum { case exact, similarity }
    /// `exact`: token ids must be identical. `similarity`: token-level similarity (2·matches / total, as
    /// difflib's ratio) must reach `minSimilarity`.
    public var mode: Mode = .exact
    public var minSimilarity: Double = 0.9

    public init() {}

    public static var fields: [SettingsField<Self>] { [.field("mode", \.mode), .field("min_similarity", \.minSimilarity)] }
}

/// Verdict bounds of the preflight check, on the mean summed base log-prob gap (chosen − rejected).
public struct PreflightThresholds: Sendable, Equatable, SettingsCodable {
    /// Below this DPO will fight the base distribution: a warning.
    public var warnBelow: Double = -100
    /// Below this DPO will very likely fail: SFT on the chosen answers first.
    public var failBelow: Double = -500

    public init() {}

    public static var fields: [SettingsField<Self>] { [.field("warn_below", \.warnBelow), .field("fail_below", \.failBelow)] }
}

/// Tolerance of the fused-consistency suite.
public struct FusedThresholds: Sendable, Equatable, SettingsCodable {
    /// Largest per-token log-prob difference between base+adapter and the fused folder. float32 rounding of the
    /// merged weights gives ~1e-5; mlx_lm's default scale of 20 amplifies it, hence 5e-4 for large scales.
    public var tolerance: Double = 1e-4
    public var toleranceLargeScale: Double = 5e-4

    public init() {}

    public static var fields: [SettingsField<Self>] {
        [.field("tolerance", \.tolerance), .field("tolerance_large_scale", \.toleranceLargeScale)]
    }
}

/// Thresholds of the multiple-choice suite (see `ChoicesSuite` for why these defaults).
public struct ChoicesThresholds: Sendable, Equatable, SettingsCodable {
    /// Fail only when the checkpoint's accuracy is below the base's by more than this (absolute, 0.02 = 2 points)...
    public var maxDrop: Double = 0.02
    /// ...and the exact McNemar test on the discordant items gives p below this.
    public var alpha: Double = 0.05
    /// lm-eval's `max_length`: the window requests are left-truncated to (nil: the model's maximum positions).
    public var maxLength: Int?

    public init() {}

    public static var fields: [SettingsField<Self>] {
        [.field("max_drop", \.maxDrop), .field("alpha", \.alpha), .field("max_length", \.maxLength)]
    }
}

/// Thresholds of the perplexity suite.
public struct PerplexityThresholds: Sendable, Equatable, SettingsCodable {
    /// Fail when the word perplexity exceeds the base's by more than this fraction (0.1 = 10%).
    public var maxIncrease: Double = 0.1
    /// lm-eval's `max_length`: the rolling window (nil: the model's maximum positions).
    public var maxLength: Int?

    public init() {}

    public static var fields: [SettingsField<Self>] { [.field("max_increase", \.maxIncrease), .field("max_length", \.maxLength)] }
}

/// All thresholds, each with its documented default.
public struct Thresholds: Sendable, Equatable, SettingsCodable {
    public var repetition = RepetitionThresholds.default
    public var preference = PreferenceThresholds()
    public var drift = DriftThresholds()
    public var weightDelta = WeightDeltaThresholds()
    public var golden = GoldenThresholds()
    public var preflight = PreflightThresholds()
    public var fused = FusedThresholds()
    public var choices = ChoicesThresholds()
    public var perplexity = PerplexityThresholds()

    public init() {}

    public static var fields: [SettingsField<Self>] {
        [.field("repetition", \.repetition), .field("preference", \.preference), .field("drift", \.drift),
         .field("weight_delta", \.weightDelta), .field("golden", \.golden), .field("preflight", \.preflight),
         .field("fused", \.fused), .field("choices", \.choices), .field("perplexity", \.perplexity)]
    }
}

/// Generation settings of the generation suites (repetition, golden, side-by-side answers).
public struct GenerationSettings: Sendable, Equatable, SettingsCodable {
    public enum ChatTemplateMode: String, SettingsEnum { case none, auto }
    public var maxTokens: Int = 64
    /// Prompts are used as written by default; `auto` applies the model's chat template.
    public var chatTemplate: ChatTemplateMode = .none
    /// Stop at EOS (the default) or always generate `maxTokens`.
    public var ignoreEOS: Bool = false

    public init() {}

    public static var fields: [SettingsField<Self>] {
        [.field("max_tokens", \.maxTokens), .field("chat_template", \.chatTemplate), .field("ignore_eos", \.ignoreEOS)]
    }
}

/// A suite file (YAML or JSON). Relative paths are resolved against the file's folder.
///
/// ```yaml
/// base: ../models/tiny-default
/// checkpoints: [adapters/*_adapters.safetensors]
/// evalsets: {prompts: default/prompts.jsonl, pairs: default/pairs.jsonl, texts: default/texts.jsonl}
/// suites: [repetition, preference, drift, weight-delta, golden]
/// generation: {max_tokens: 48}
/// thresholds: {preference: {max_margin: 5}}
/// golden_dir: ../golden
/// reports: {dir: ../tunecheck-report}
/// ```
public struct SuiteConfiguration: Sendable, Equatable, SettingsCodable {
    public struct Evalsets: Sendable, Equatable, SettingsCodable {
        public var prompts: String?
        public var pairs: String?
        public var texts: String?
        public var answers: String?
        /// Multiple-choice items (the choices suite).
        public var choices: String?

        public init(prompts: String? = nil, pairs: String? = nil, texts: String? = nil, answers: String? = nil, choices: String? = nil) {
            self.prompts = prompts
            self.pairs = pairs
            self.texts = texts
            self.answers = answers
            self.choices = choices
        }

        public init() {}

        public static var fields: [SettingsField<Self>] {
            [.field("prompts", \.prompts), .field("pairs", \.pairs), .field("texts", \.texts), .field("answers", \.answers),
             .field("choices", \.choices)]
        }
    }

    public struct FusedModel: Sendable, Equatable, SettingsCodable {
        public var path: String = ""
        /// The adapter it was fused from, for the fused-consistency check.
        public var adapter: String?

        public init(path: String, adapter: String? = nil) {
            self.path = path
            self.adapter = adapter
        }

        public init() {}

        public static var fields: [SettingsField<Self>] { [.required("path", \.path), .field("adapter", \.adapter)] }
    }

    public struct Reports: Sendable, Equatable, SettingsCodable {
        public var dir: String = "tunecheck-report"
        public var formats: [ReportFormat] = [.junit, .json, .html]

        public init() {}

        public static var fields: [SettingsField<Self>] { [.field("dir", \.dir), .field("formats", \.formats)] }
    }

    public var name: String = "tunecheck"
    public var base: String?
    public var checkpoints: [String] = []
    public var fused: [FusedModel] = []
    public var evalsets = Evalsets()
    /// Which suites run; nil runs every suite the inputs allow.
    public var suites: [SuiteKind]?
    public var generation = GenerationSettings()
    public var thresholds = Thresholds()
    public var goldenDir: String = "golden"
    public var reports = Reports()
    /// Where the base model's results are kept between runs (`--cache-dir` and `TUNECHECK_CACHE_DIR` override it).
    public var cacheDir: String?

    public init() {}

    public static var fields: [SettingsField<Self>] {
        [.field("name", \.name), .field("base", \.base), .field("checkpoints", \.checkpoints), .field("fused", \.fused),
         .field("evalsets", \.evalsets), .field("suites", \.suites), .field("generation", \.generation),
         .field("thresholds", \.thresholds), .field("golden_dir", \.goldenDir), .field("reports", \.reports),
         .field("cache_dir", \.cacheDir)]
    }

    /// Reads a suite file (`.yaml`/`.yml` or `.json`) and resolves its relative paths against its folder.
    public static func load(_ url: URL) throws -> SuiteConfiguration {
        let text: String
        do { text = try BoundedFile.readText(url, limit: BoundedFile.Limit.config) } catch {
            throw HarnessError.invalidSuite(path: url.path, reason: error.reason)
        }
        var configuration: SuiteConfiguration
        do {
            if url.pathExtension.lowercased() == "json" {
                let value: JSONValue
                do { value = try JSONParser.parse(Array(text.utf8)) } catch {
                    throw HarnessError.invalidSuite(path: url.path, reason: "not valid JSON (\(error))")
                }
                guard value.object != nil else {
                    throw HarnessError.invalidSuite(path: url.path, reason: "expected an object of settings at the top level")
                }
                configuration = try JSONValueDecoder().decode(SuiteConfiguration.self, from: value)
            } else {
                guard let node = try Yams.compose(yaml: text) else {
                    throw HarnessError.invalidSuite(path: url.path, reason: "the file is empty")
                }
                guard node.mapping != nil else {
                    throw HarnessError.invalidSuite(path: url.path, reason: "expected a mapping of settings at the top level")
                }
                configuration = try YAMLDecoder().decode(SuiteConfiguration.self, from: node)
            }
        } catch let error as HarnessError {
            throw error
        } catch let error as DecodingError {
            throw HarnessError.invalidSuite(path: url.path, reason: describe(error))
        } catch let error as YamlError {
            throw HarnessError.invalidSuite(path: url.path, reason: "not valid YAML: \(String(describing: error).split(separator: "\n").first ?? "")")
        } catch {
            throw HarnessError.invalidSuite(path: url.path, reason: String(describing: error))
        }
        configuration.resolvePaths(relativeTo: url.deletingLastPathComponent())
        try configuration.validate(path: url.path)
        return configuration
    }

    mutating func resolvePaths(relativeTo folder: URL) {
        func resolve(_ path: String) -> String {
            path.hasPrefix("/") ? path : folder.appendingPathComponent(path).standardizedFileURL.path
        }
        base = base.map(resolve)
        checkpoints = checkpoints.map(resolve)
        fused = fused.map { FusedModel(path: resolve($0.path), adapter: $0.adapter.map(resolve)) }
        evalsets = Evalsets(prompts: evalsets.prompts.map(resolve), pairs: evalsets.pairs.map(resolve),
                            texts: evalsets.texts.map(resolve), answers: evalsets.answers.map(resolve), choices: evalsets.choices.map(resolve))
        goldenDir = resolve(goldenDir)
        reports.dir = resolve(reports.dir)
        cacheDir = cacheDir.map(resolve)
    }

    /// Range checks on values that decoding alone does not catch.
    public func validate(path: String) throws {
        func fail(_ reason: String) -> HarnessError { .invalidSuite(path: path, reason: reason) }
        guard generation.maxTokens >= 0 && generation.maxTokens <= 100_000 else { throw fail("generation.max_tokens must be in 0...100000") }
        let preference = thresholds.preference
        guard preference.beta > 0 else { throw fail("thresholds.preference.beta must be positive") }
        guard (0...1).contains(preference.minAccuracy) else { throw fail("thresholds.preference.min_accuracy must be in 0...1") }
        guard (0...1).contains(thresholds.golden.minSimilarity) else { throw fail("thresholds.golden.min_similarity must be in 0...1") }
        guard thresholds.weightDelta.noLearningBelow < thresholds.weightDelta.largeUpdateAbove else {
            throw fail("thresholds.weight_delta.no_learning_below must be below large_update_above")
        }
        guard (0...1).contains(thresholds.choices.maxDrop) else { throw fail("thresholds.choices.max_drop must be in 0...1") }
        guard thresholds.choices.alpha > 0 && thresholds.choices.alpha < 1 else { throw fail("thresholds.choices.alpha must be between 0 and 1") }
        guard thresholds.perplexity.maxIncrease >= 0 else { throw fail("thresholds.perplexity.max_increase must not be negative") }
        for (name, length) in [("choices", thresholds.choices.maxLength), ("perplexity", thresholds.perplexity.maxLength)] {
            if let length, length < 1 { throw fail("thresholds.\(name).max_length must be at least 1") }
        }
        guard thresholds.preflight.failBelow <= thresholds.preflight.warnBelow else {
            throw fail("thresholds.preflight.fail_below must not be above warn_below")
        }
    }

    public static func describe(_ error: DecodingError) -> String { error.settingsMessage }
}

extension ReportFormat: SettingsEnum {}
