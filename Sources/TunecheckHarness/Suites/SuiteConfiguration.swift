import Foundation
import TunecheckJSON
import Yams

/// Rejects keys a config struct does not know, so a typo (`max_token: 32`) is an error instead of being ignored.
struct StrictKeys: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { return nil }

    static func check(_ decoder: Decoder, allowed: [String]) throws {
        let container = try decoder.container(keyedBy: StrictKeys.self)
        for key in container.allKeys where !allowed.contains(key.stringValue) {
            throw DecodingError.dataCorruptedError(
                forKey: key, in: container,
                debugDescription: "unknown key '\(key.stringValue)' (known: \(allowed.sorted().joined(separator: ", ")))")
        }
    }
}

/// Thresholds of the preference suite. `beta` scales implicit rewards as TRL does (`r = β·(log π − log π_ref)`).
public struct PreferenceThresholds: Sendable, Equatable, Codable {
    /// DPO's β for the implicit reward (TRL's default 0.1).
    public var beta: Double = 0.1
    /// Fail when fewer held-out pairs than this are ranked right (chosen reward > rejected reward).
    public var minAccuracy: Double = 0.5
    /// Fail when the mean reward margin exceeds this: an exploding margin is the signature of an unstable run
    /// (the motivating run went 0.2 → 18 in a few steps).
    public var maxMargin: Double = 5
    /// Optional floor on the mean margin (nil: none).
    public var minMargin: Double?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case beta, minAccuracy = "min_accuracy", maxMargin = "max_margin", minMargin = "min_margin"
    }

    public init() {}

    public init(from decoder: Decoder) throws {
        try StrictKeys.check(decoder, allowed: CodingKeys.allCases.map(\.rawValue))
        let container = try decoder.container(keyedBy: CodingKeys.self)
        beta = try container.decodeIfPresent(Double.self, forKey: .beta) ?? beta
        minAccuracy = try container.decodeIfPresent(Double.self, forKey: .minAccuracy) ?? minAccuracy
        maxMargin = try container.decodeIfPresent(Double.self, forKey: .maxMargin) ?? maxMargin
        minMargin = try container.decodeIfPresent(Double.self, forKey: .minMargin)
    }
}

/// Thresholds of the drift suite, on the reference texts.
public struct DriftThresholds: Sendable, Equatable, Codable {
    /// Fail when the mean per-token log-prob of the reference texts falls by more than this many nats.
    public var maxTextLogprobDrop: Double = 0.5
    /// Fail when the mean token-level KL(base ‖ checkpoint) on the reference texts exceeds this (nats).
    public var maxTextKL: Double = 0.5

    enum CodingKeys: String, CodingKey, CaseIterable {
        case maxTextLogprobDrop = "max_text_logprob_drop", maxTextKL = "max_text_kl"
    }

    public init() {}

    public init(from decoder: Decoder) throws {
        try StrictKeys.check(decoder, allowed: CodingKeys.allCases.map(\.rawValue))
        let container = try decoder.container(keyedBy: CodingKeys.self)
        maxTextLogprobDrop = try container.decodeIfPresent(Double.self, forKey: .maxTextLogprobDrop) ?? maxTextLogprobDrop
        maxTextKL = try container.decodeIfPresent(Double.self, forKey: .maxTextKL) ?? maxTextKL
    }
}

/// Thresholds of the weight-delta suite (overall ‖ΔW‖_F / ‖W‖_F over adapted weights).
public struct WeightDeltaThresholds: Sendable, Equatable, Codable {
    /// Below this the checkpoint did not move: `no-learning`.
    public var noLearningBelow: Double = 1e-4
    /// Above this the update is suspiciously large: `large-update`.
    public var largeUpdateAbove: Double = 0.1

    enum CodingKeys: String, CodingKey, CaseIterable {
        case noLearningBelow = "no_learning_below", largeUpdateAbove = "large_update_above"
    }

    public init() {}

    public init(from decoder: Decoder) throws {
        try StrictKeys.check(decoder, allowed: CodingKeys.allCases.map(\.rawValue))
        let container = try decoder.container(keyedBy: CodingKeys.self)
        noLearningBelow = try container.decodeIfPresent(Double.self, forKey: .noLearningBelow) ?? noLearningBelow
        largeUpdateAbove = try container.decodeIfPresent(Double.self, forKey: .largeUpdateAbove) ?? largeUpdateAbove
    }
}

/// How golden outputs are compared.
public struct GoldenThresholds: Sendable, Equatable, Codable {
    public enum Mode: String, Sendable, Codable { case exact, similarity }
    /// `exact`: token ids must be identical. `similarity`: token-level similarity (2·matches / total, as
    /// difflib's ratio) must reach `minSimilarity`.
    public var mode: Mode = .exact
    public var minSimilarity: Double = 0.9

    enum CodingKeys: String, CodingKey, CaseIterable { case mode, minSimilarity = "min_similarity" }

    public init() {}

    public init(from decoder: Decoder) throws {
        try StrictKeys.check(decoder, allowed: CodingKeys.allCases.map(\.rawValue))
        let container = try decoder.container(keyedBy: CodingKeys.self)
        mode = try container.decodeIfPresent(Mode.self, forKey: .mode) ?? mode
        minSimilarity = try container.decodeIfPresent(Double.self, forKey: .minSimilarity) ?? minSimilarity
    }
}

/// Verdict bounds of the preflight check, on the mean summed base log-prob gap (chosen − rejected).
public struct PreflightThresholds: Sendable, Equatable, Codable {
    /// Below this DPO will fight the base distribution: a warning.
    public var warnBelow: Double = -100
    /// Below this DPO will very likely fail: SFT on the chosen answers first.
    public var failBelow: Double = -500

    enum CodingKeys: String, CodingKey, CaseIterable { case warnBelow = "warn_below", failBelow = "fail_below" }

    public init() {}

    public init(from decoder: Decoder) throws {
        try StrictKeys.check(decoder, allowed: CodingKeys.allCases.map(\.rawValue))
        let container = try decoder.container(keyedBy: CodingKeys.self)
        warnBelow = try container.decodeIfPresent(Double.self, forKey: .warnBelow) ?? warnBelow
        failBelow = try container.decodeIfPresent(Double.self, forKey: .failBelow) ?? failBelow
    }
}

/// Tolerance of the fused-consistency suite.
public struct FusedThresholds: Sendable, Equatable, Codable {
    /// Largest per-token log-prob difference between base+adapter and the fused folder. float32 rounding of the
    /// merged weights gives ~1e-5; mlx_lm's default scale of 20 amplifies it, hence 5e-4 for large scales.
    public var tolerance: Double = 1e-4
    public var toleranceLargeScale: Double = 5e-4

    enum CodingKeys: String, CodingKey, CaseIterable { case tolerance, toleranceLargeScale = "tolerance_large_scale" }

    public init() {}

    public init(from decoder: Decoder) throws {
        try StrictKeys.check(decoder, allowed: CodingKeys.allCases.map(\.rawValue))
        let container = try decoder.container(keyedBy: CodingKeys.self)
        tolerance = try container.decodeIfPresent(Double.self, forKey: .tolerance) ?? tolerance
        toleranceLargeScale = try container.decodeIfPresent(Double.self, forKey: .toleranceLargeScale) ?? toleranceLargeScale
    }
}

/// All thresholds, each with its documented default.
public struct Thresholds: Sendable, Equatable, Codable {
    public var repetition = RepetitionThresholds.default
    public var preference = PreferenceThresholds()
    public var drift = DriftThresholds()
    public var weightDelta = WeightDeltaThresholds()
    public var golden = GoldenThresholds()
    public var preflight = PreflightThresholds()
    public var fused = FusedThresholds()

    enum CodingKeys: String, CodingKey, CaseIterable {
        case repetition, preference, drift, weightDelta = "weight_delta", golden, preflight, fused
    }

    public init() {}

    public init(from decoder: Decoder) throws {
        try StrictKeys.check(decoder, allowed: CodingKeys.allCases.map(\.rawValue))
        let container = try decoder.container(keyedBy: CodingKeys.self)
        repetition = try container.decodeIfPresent(RepetitionThresholds.self, forKey: .repetition) ?? repetition
        preference = try container.decodeIfPresent(PreferenceThresholds.self, forKey: .preference) ?? preference
        drift = try container.decodeIfPresent(DriftThresholds.self, forKey: .drift) ?? drift
        weightDelta = try container.decodeIfPresent(WeightDeltaThresholds.self, forKey: .weightDelta) ?? weightDelta
        golden = try container.decodeIfPresent(GoldenThresholds.self, forKey: .golden) ?? golden
        preflight = try container.decodeIfPresent(PreflightThresholds.self, forKey: .preflight) ?? preflight
        fused = try container.decodeIfPresent(FusedThresholds.self, forKey: .fused) ?? fused
    }
}

/// Generation settings of the generation suites (repetition, golden, side-by-side answers).
public struct GenerationSettings: Sendable, Equatable, Codable {
    public enum ChatTemplateMode: String, Sendable, Codable { case none, auto }
    public var maxTokens: Int = 64
    /// Prompts are used as written by default; `auto` applies the model's chat template.
    public var chatTemplate: ChatTemplateMode = .none
    /// Stop at EOS (the default) or always generate `maxTokens`.
    public var ignoreEOS: Bool = false

    enum CodingKeys: String, CodingKey, CaseIterable { case maxTokens = "max_tokens", chatTemplate = "chat_template", ignoreEOS = "ignore_eos" }

    public init() {}

    public init(from decoder: Decoder) throws {
        try StrictKeys.check(decoder, allowed: CodingKeys.allCases.map(\.rawValue))
        let container = try decoder.container(keyedBy: CodingKeys.self)
        maxTokens = try container.decodeIfPresent(Int.self, forKey: .maxTokens) ?? maxTokens
        chatTemplate = try container.decodeIfPresent(ChatTemplateMode.self, forKey: .chatTemplate) ?? chatTemplate
        ignoreEOS = try container.decodeIfPresent(Bool.self, forKey: .ignoreEOS) ?? ignoreEOS
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
public struct SuiteConfiguration: Sendable, Equatable, Codable {
    public struct Evalsets: Sendable, Equatable, Codable {
        public var prompts: String?
        public var pairs: String?
        public var texts: String?
        public var answers: String?

        enum CodingKeys: String, CodingKey, CaseIterable { case prompts, pairs, texts, answers }

        public init(prompts: String? = nil, pairs: String? = nil, texts: String? = nil, answers: String? = nil) {
            self.prompts = prompts
            self.pairs = pairs
            self.texts = texts
            self.answers = answers
        }

        public init(from decoder: Decoder) throws {
            try StrictKeys.check(decoder, allowed: CodingKeys.allCases.map(\.rawValue))
            let container = try decoder.container(keyedBy: CodingKeys.self)
            prompts = try container.decodeIfPresent(String.self, forKey: .prompts)
            pairs = try container.decodeIfPresent(String.self, forKey: .pairs)
            texts = try container.decodeIfPresent(String.self, forKey: .texts)
            answers = try container.decodeIfPresent(String.self, forKey: .answers)
        }
    }

    public struct FusedModel: Sendable, Equatable, Codable {
        public var path: String
        /// The adapter it was fused from, for the fused-consistency check.
        public var adapter: String?

        enum CodingKeys: String, CodingKey, CaseIterable { case path, adapter }

        public init(path: String, adapter: String? = nil) {
            self.path = path
            self.adapter = adapter
        }

        public init(from decoder: Decoder) throws {
            try StrictKeys.check(decoder, allowed: CodingKeys.allCases.map(\.rawValue))
            let container = try decoder.container(keyedBy: CodingKeys.self)
            path = try container.decode(String.self, forKey: .path)
            adapter = try container.decodeIfPresent(String.self, forKey: .adapter)
        }
    }

    public struct Reports: Sendable, Equatable, Codable {
        public var dir: String = "tunecheck-report"
        public var formats: [String] = ["junit", "json", "html"]

        enum CodingKeys: String, CodingKey, CaseIterable { case dir, formats }

        public init() {}

        public init(from decoder: Decoder) throws {
            try StrictKeys.check(decoder, allowed: CodingKeys.allCases.map(\.rawValue))
            let container = try decoder.container(keyedBy: CodingKeys.self)
            dir = try container.decodeIfPresent(String.self, forKey: .dir) ?? dir
            formats = try container.decodeIfPresent([String].self, forKey: .formats) ?? formats
        }
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

    enum CodingKeys: String, CodingKey, CaseIterable {
        case name, base, checkpoints, fused, evalsets, suites, generation, thresholds, goldenDir = "golden_dir", reports
    }

    public init() {}

    public init(from decoder: Decoder) throws {
        try StrictKeys.check(decoder, allowed: CodingKeys.allCases.map(\.rawValue))
        let container = try decoder.container(keyedBy: CodingKeys.self)
        name = try container.decodeIfPresent(String.self, forKey: .name) ?? name
        base = try container.decodeIfPresent(String.self, forKey: .base)
        checkpoints = try container.decodeIfPresent([String].self, forKey: .checkpoints) ?? []
        fused = try container.decodeIfPresent([FusedModel].self, forKey: .fused) ?? []
        evalsets = try container.decodeIfPresent(Evalsets.self, forKey: .evalsets) ?? evalsets
        suites = try container.decodeIfPresent([SuiteKind].self, forKey: .suites)
        generation = try container.decodeIfPresent(GenerationSettings.self, forKey: .generation) ?? generation
        thresholds = try container.decodeIfPresent(Thresholds.self, forKey: .thresholds) ?? thresholds
        goldenDir = try container.decodeIfPresent(String.self, forKey: .goldenDir) ?? goldenDir
        reports = try container.decodeIfPresent(Reports.self, forKey: .reports) ?? reports
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
                configuration = try JSONDecoder().decode(SuiteConfiguration.self, from: Data(text.utf8))
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
                            texts: evalsets.texts.map(resolve), answers: evalsets.answers.map(resolve))
        goldenDir = resolve(goldenDir)
        reports.dir = resolve(reports.dir)
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
        guard thresholds.preflight.failBelow <= thresholds.preflight.warnBelow else {
            throw fail("thresholds.preflight.fail_below must not be above warn_below")
        }
        for format in reports.formats where !["junit", "json", "html"].contains(format) {
            throw fail("reports.formats: unknown format '\(format)' (junit, json, html)")
        }
    }

    public static func describe(_ error: DecodingError) -> String {
        DecodingErrorText.describe(error)
    }
}
