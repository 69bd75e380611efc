import Foundation
import TunecheckTestSupport
import Testing
@testable import TunecheckEngine
@testable import TunecheckTrainer

/// DPO with LoRA on an mlx 4-bit base (Tests/Fixtures/quantized/llama-q4-g64): the policy is the packed base plus
/// float32 factors (the committed mlx_lm QLoRA adapter, resumed, so the policy differs from the base from the first
/// step), the reference is the same quantized base with the adapter off.
///
/// Tolerances:
/// - gradients vs central finite differences: TrainingPassTests' 2e-3 + 2% relative, with ε = 4e-3 instead of 1e-2: the
///   resumed adapter has scale 20 and the loss sums ~20 log-probs per response, so it is curved enough that ε = 1e-2
///   costs up to 1.7e-2 of truncation error (observed), ε = 4e-3 about 3e-3 (float32 noise stays far below).
/// - metrics vs the test's own computation (full-sequence scoring with `Scorer`, sums taken here, TRL's formulas
///   written out): 1e-4 absolute on log-prob sums of about 20 tokens and on the rewards (β = 0.1 times a difference of
///   such sums); both sides are float32 forwards of the same weights that differ only in summation order (observed
///   values are printed).
struct QuantizedDPOTests {
    static let quantized = TestPaths.repositoryRoot.appendingPathComponent("Tests/Fixtures/quantized")
    static let base = quantized.appendingPathComponent("llama-q4-g64")
    static let adapter = quantized.appendingPathComponent("qlora-llama-q4-g64")
    static let beta = 0.1
    static let tolerance = 1e-4

    static let pairs = [
        ("Question: what does the model check?\nAnswer:", " the quantized weights of every adapter", " fast small data runs"),
        ("Question: which tokens does it learn?\nAnswer:", " the model learns small data tokens", " weights"),
        ("Question: how fast are the checks?\nAnswer:", " checks run fast on small quantized models", " the adapter runs the model"),
    ]

    static func writePairs(in folder: URL) throws -> URL {
        let url = folder.appendingPathComponent("pairs.jsonl")
        let lines = try pairs.map { prompt, chosen, rejected in
            String(decoding: try JSONSerialization.data(withJSONObject: ["prompt": prompt, "chosen": chosen, "rejected": rejected],
                                                        options: [.sortedKeys]), as: UTF8.self)
        }
        try (lines.joined(separator: "\n") + "\n").write(to: url, atomically: true, encoding: .utf8)
        return url
    }

    /// Σ log p(response) of each sequence under `model`, from full-sequence scoring: the response's targets start at
    /// `promptLength` (log-prob index `promptLength − 1`).
    static func responseSums(_ model: DecoderModel, _ sequences: [PromptResponseTokens]) throws -> [Double] {
        let scored = try Scorer(model: model).score(sequences.map(\.ids))
        return zip(scored, sequences).map { logprobs, sequence in logprobs[(sequence.promptLength - 1)...].reduce(0, +) }
    }

    @Test("DPO on a quantized base: LoRA gradients of TRL's sigmoid loss match finite differences")
    func dpoGradientsMatchFiniteDifferences() throws {
        let folder = try TrainerBehaviourTests.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let language = try LanguageModel.load(folder: Self.base)
        var examples = try TrainingData.dpo(Self.writePairs(in: folder), tokenizer: language.tokenizer, appendEOS: true, maxLength: 2048)
        // The reference: the quantized base itself.
        let referenceChosen = try Self.responseSums(language.decoder, examples.map(\.chosen))
        let referenceRejected = try Self.responseSums(language.decoder, examples.map(\.rejected))
        for index in examples.indices {
            examples[index].reference = (referenceChosen[index], referenceChosen[index] / Double(examples[index].chosen.responseLength),
                                         referenceRejected[index], referenceRejected[index] / Double(examples[index].rejected.responseLength))
        }
        let lora = try LoRAParameters(base: language.decoder, resuming: Adapter.load(path: Self.adapter), seed: 0)
        for layer in lora.model.weights.layers {
            for linear in layer.linears { #expect(linear.weight.storage.isQuantized, "\(linear.name) stays packed") }
        }
        let sequences = examples.flatMap { [$0.chosen.ids, $0.rejected.ids] }
        func loss(_ pass: TrainingPass = TrainingPass(model: lora.model)) throws -> (DPOLoss.Result, [[Double]]) {
            let logprobs = try pass.forward(sequences)
            let (result, gradient, _) = DPOObjective.evaluate(logprobs: logprobs, examples: examples, beta: Self.beta, type: .sigmoid,
                                                              normalizeByLength: false)
            return (result, gradient)
        }
        lora.zeroGradients()
        let pass = TrainingPass(model: lora.model)
        let (result, dLogprobs) = try loss(pass)
        pass.backward(dLogprobs, into: lora.gradients)
        let margin = try #require(result.metrics.first { $0.0 == .rewardsMargins }?.1)
        #expect(abs(margin) > 1e-3, "the resumed adapter moves the policy away from the reference (margin \(margin))")

        var generator = SeededGenerator(seed: 21)
        var checked = 0, worst = 0.0, largest = 0.0
        let epsilon: Float = 4e-3
        for tensor in lora.tensors {
            for _ in 0..<2 {
                let index = Int.random(in: 0..<tensor.count, using: &generator)
                let original = tensor.values[index]
                tensor.values[index] = original + epsilon
                let plus = try loss().0.loss
                tensor.values[index] = original - epsilon
                let minus = try loss().0.loss
                tensor.values[index] = original
                let numeric = (plus - minus) / Double(2 * epsilon)
                let analytic = Double(tensor.gradient[index])
                worst = max(worst, abs(numeric - analytic))
                largest = max(largest, abs(numeric))
                #expect(abs(numeric - analytic) <= 2e-3 + 0.02 * abs(numeric), "\(tensor.name)[\(index)]: analytic \(analytic), finite difference \(numeric)")
                checked += 1
            }
        }
        #expect(largest > 1e-3, "the gradients are not all zero")
        print("quantized DPO: loss \(result.loss), \(checked) gradient entries, largest |analytic − finite difference| \(worst) "
              + "(largest |gradient| \(largest))")
    }

    @Test("tunecheck train: DPO on a quantized base runs; its metrics are TRL's against the quantized reference")
    func dpoTrainingReportsTRLMetricsAgainstTheQuantizedReference() throws {
        let folder = try TrainerBehaviourTests.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let data = try Self.writePairs(in: folder)
        let output = folder.appendingPathComponent("adapters")
        let referenceFile = folder.appendingPathComponent("reference.jsonl")
        var configuration = TrainerBehaviourTests.configuration(output) { configuration in
            configuration.model = Self.base.path
            configuration.data = data.path
            configuration.mode = .dpo
            configuration.beta = Self.beta
            configuration.resumeAdapterFile = Self.adapter.path
            configuration.batchSize = Self.pairs.count
            configuration.iters = 2
            configuration.saveEvery = 2
            configuration.learningRate = 1e-3
            configuration.referenceOutput = referenceFile.path
        }
        configuration.maxSeqLength = 2048
        let summary = try Trainer(configuration: configuration).run()
        #expect(summary.steps == 2)
        #expect(FileManager.default.fileExists(atPath: output.appendingPathComponent("adapters.safetensors").path))

        // The independent computation: policy = base + the resumed adapter (unfused), reference = the quantized base.
        let language = try LanguageModel.load(folder: Self.base)
        let examples = try TrainingData.dpo(data, tokenizer: language.tokenizer, appendEOS: true, maxLength: 2048)
        let policy = try Adapter.load(path: Self.adapter).attach(to: language.decoder)
        let (policyChosen, policyRejected) = (try Self.responseSums(policy, examples.map(\.chosen)), try Self.responseSums(policy, examples.map(\.rejected)))
        let (referenceChosen, referenceRejected) = (try Self.responseSums(language.decoder, examples.map(\.chosen)),
                                                    try Self.responseSums(language.decoder, examples.map(\.rejected)))

        // The reference log-probs the trainer used (reference_output), one line per pair in file order.
        let referenceLines = try String(contentsOf: referenceFile, encoding: .utf8).split(separator: "\n").map {
            try #require(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Double])
        }
        #expect(referenceLines.count == Self.pairs.count)
        var worstReference = 0.0
        for (index, line) in referenceLines.enumerated() {
            for (value, expected) in [(line["reference_chosen_logps"], referenceChosen[index]), (line["reference_rejected_logps"], referenceRejected[index])] {
                let value = try #require(value)
                worstReference = max(worstReference, abs(value - expected))
                #expect(abs(value - expected) <= Self.tolerance, "pair \(index): reference \(value) vs quantized base \(expected)")
            }
        }

        // Step 1's metrics (the whole batch; the adapter is the resumed one before its first update), TRL's formulas.
        let count = Double(Self.pairs.count)
        let chosenRewards = (0..<Self.pairs.count).map { Self.beta * (policyChosen[$0] - referenceChosen[$0]) }
        let rejectedRewards = (0..<Self.pairs.count).map { Self.beta * (policyRejected[$0] - referenceRejected[$0]) }
        let expected: [String: Double] = [
            "rewards/chosen": chosenRewards.reduce(0, +) / count,
            "rewards/rejected": rejectedRewards.reduce(0, +) / count,
            "rewards/margins": zip(chosenRewards, rejectedRewards).map { $0 - $1 }.reduce(0, +) / count,
            "rewards/accuracies": Double(zip(chosenRewards, rejectedRewards).filter { $0 > $1 }.count) / count,
            "logps/chosen": policyChosen.reduce(0, +) / count,
            "logps/rejected": policyRejected.reduce(0, +) / count,
        ]
        let metricsLines = try String(contentsOf: output.appendingPathComponent("metrics.jsonl"), encoding: .utf8).split(separator: "\n")
        let firstLine = try #require(metricsLines.first)
        let first = try #require(JSONSerialization.jsonObject(with: Data(firstLine.utf8)) as? [String: Any])
        var worstMetric = 0.0
        for (name, value) in expected.sorted(by: { $0.key < $1.key }) {
            let reported = try #require(first[name] as? Double, "metrics.jsonl reports \(name)")
            worstMetric = max(worstMetric, abs(reported - value))
            #expect(abs(reported - value) <= Self.tolerance, "\(name): trainer \(reported), TRL's formula \(value)")
        }
        #expect(abs(try #require(expected["rewards/margins"])) > 1e-3, "the policy differs from the reference at step 1")

        // The checkpoint records the factors it holds (the resumed adapter's rank 4, scale 20 and three modules, not the
        // lora section's rank 4, scale 2 and every module) and loads on the quantized base.
        let written = try Adapter.load(path: output)
        #expect(written.modules.allSatisfy { $0.scale == 20 && $0.rank == 4 }, "adapter_config.json: the resumed adapter's scale")
        #expect(Set(written.modules.map(\.modulePath)) == ["self_attn.q_proj", "self_attn.v_proj", "mlp.down_proj"])
        let trained = try Self.responseSums(written.attach(to: language.decoder), examples.map(\.chosen))
        #expect(zip(trained, policyChosen).contains { abs($0 - $1) > 1e-3 }, "two DPO steps moved the policy")
        print("quantized DPO run: reference log-probs within \(worstReference), step-1 metrics within \(worstMetric) of TRL's formulas "
              + "(\(expected.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")))")
    }
}
