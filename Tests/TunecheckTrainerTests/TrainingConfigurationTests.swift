import Foundation
import Testing
import TunecheckEngine
import TunecheckJSON
@testable import TunecheckTrainer

/// The training config file: typed settings, their messages, and writing the whole configuration back out.
struct TrainingConfigurationTests {
    static func load(_ yaml: String, overrides: [String] = []) throws -> TrainingConfiguration {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tunecheck-config-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let url = folder.appendingPathComponent("train.yaml")
        try Data(yaml.utf8).write(to: url)
        return try TrainingConfiguration.load(url, overrides: overrides)
    }

    /// The reason of the `invalidConfig` error loading `yaml` gives.
    static func reason(_ yaml: String) -> String? {
        do { _ = try load(yaml); return nil } catch let TrainerError.invalidConfig(_, reason) { return reason } catch { return "\(error)" }
    }

    @Test func typedSettingsAreRead() throws {
        let configuration = try Self.load("""
            model: /m
            data: /d
            mode: dpo
            best_metric: -max_repetition_score
            reference: refs.jsonl
            optimizer: adamw
            optimizer_config: {adamw: {weight_decay: 0.01, betas: [0.9, 0.98]}}
            lr_schedule: {name: cosine_decay, arguments: [1e-5, 100], warmup: 5}
            guards: {max_margin: null}
            """)
        #expect(configuration.bestMetric == MetricGoal(.maxRepetitionScore, .lower))
        #expect(configuration.bestMetric.spelling == "-max_repetition_score")
        #expect(configuration.bestMetric.prefers(0.1, over: 0.2))
        guard case .file(let path) = configuration.reference else { Issue.record("reference should be a file"); return }
        #expect(path.hasSuffix("/refs.jsonl") && path.hasPrefix("/"), "resolved against the config's folder: \(path)")
        #expect(configuration.optimizerConfig[.adamw]?.weightDecay == 0.01)
        #expect(configuration.optimizerConfig[.adam] == nil)
        #expect(configuration.lrSchedule.name == .cosineDecay)
        #expect(configuration.guards.maxMargin == nil, "null turns a guard off")
        #expect(configuration.guards.minLoss == 0.01, "absent keeps the default")
        let defaults = try Self.load("model: /m\ndata: /d\n")
        #expect(defaults.reference == .base)
        #expect(defaults.bestMetric == MetricGoal(.rewardsAccuracies, .higher))
    }

    @Test func badValuesNameTheAllowedOnes() {
        let base = "model: /m\ndata: /d\n"
        #expect(Self.reason(base + "lr_schedule: {name: exponential_decay}")
            == "lr_schedule.name: unknown value 'exponential_decay' (constant, cosine_decay, linear_schedule)")
        #expect(Self.reason(base + "optimizer_config: {lion: {eps: 1e-8}}")?.hasPrefix("optimizer_config.lion: unknown key 'lion' (known: adam, adamw, sgd)") == true)
        #expect(Self.reason(base + "optimizer: lion") == "optimizer: unknown value 'lion' (sgd, adam, adamw)")
        // Names are checked against the rankable metrics (a typo would otherwise never find a best checkpoint).
        let metric = Self.reason(base + "best_metric: -accuracy") ?? ""
        #expect(metric.hasPrefix("best_metric: unknown metric 'accuracy' ("), "\(metric)")
        #expect(metric.contains("rewards/accuracies") && metric.contains("max_repetition_score") && metric.hasSuffix("prefix - when lower is better)"))
        #expect(Self.reason(base + "best_metric: logps/chosen")?.contains("unknown metric 'logps/chosen'") == true, "reported but not rankable")
        #expect(Self.reason(base + "optimizer_config: {adamw: {betas: [0.9]}}") == "optimizer_config.adamw.betas must be two numbers in [0, 1)")
    }

    @Test func theWholeConfigurationIsWrittenBackOutAndReadsTheSame() throws {
        var configuration = try Self.load("""
            model: /m
            data: /d
            mode: dpo
            best_metric: -rewards/margins
            optimizer_config: {sgd: {momentum: 0.9}}
            guards: {min_loss: null, no_learning_after_steps: 20}
            lora_parameters: {rank: 4, keys: [self_attn.q_proj]}
            """)
        configuration.seed = 7
        let json = try JSONValueEncoder().encode(configuration)
        let object = try #require(json.object)
        #expect(object["best_metric"] == .string("-rewards/margins"))
        #expect(object["reference"] == .string("base"))
        #expect(object["seed"] == .number(7, isInteger: true))
        #expect(object.keys.first == "model" && object.keys.contains("lora_parameters"))
        let text = JSONWriter.string(json)
        #expect(try JSONValueDecoder().decode(TrainingConfiguration.self, from: Array(text.utf8)) == configuration)
    }
}
