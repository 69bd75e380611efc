import Foundation
import TunecheckTestSupport
import Testing
@testable import TunecheckEngine
@testable import TunecheckTrainer

/// The trainer's gradients, losses, TRL metrics and optimizer steps against PyTorch + PEFT
/// (`scripts/fixtures/make_trainer_fixtures.py`, TRL 1.16 formulas).
///
/// Tolerances, from the fixtures' own float32-vs-float64 measurements (`max_abs_fp32_vs_fp64`, ≤ 7e-6 for the
/// largest IPO gradients, ≤ 1.2e-6 otherwise): gradients within 2e-5 · max(1, max|g|); losses and metrics within
/// 1e-5 relative; SGD steps within 1e-6 (lr·gradient error); AdamW steps within 1e-4 except where |g| < 1e-5 (the
/// first AdamW step is lr·g/(|g|+eps), which turns a tiny absolute gradient error into a large update error).
struct TrainerReferenceTests {
    static let fixtures = ["llama-rope-llama3-old-schema", "gpt2-inner96", "qwen3", "phi3", "granite", "granite-hybrid-dense-rope", "granite-hybrid-moe-nope"]

    static let root = TestPaths.repositoryRoot

    struct Reference: Decodable {
        struct SFT: Decodable { var ids: [Int]; var prompt_len: Int }
        struct DPO: Decodable { var chosen_ids: [Int]; var rejected_ids: [Int]; var prompt_len: Int }
        struct Batches: Decodable { var sft: [SFT]; var dpo: [DPO] }
        struct Case: Decodable { var loss: Double; var metrics: [String: Double]? }
        struct Optimizers: Decodable {
            struct SGD: Decodable { var lr: Double }
            struct AdamW: Decodable { var lr: Double; var betas: [Double]; var eps: Double; var weight_decay: Double }
            struct Clip: Decodable { var max_norm: Double }
            var sgd: SGD; var adamw: AdamW; var clip: Clip
        }
        var base: String
        var rank: Int
        var scale: Double
        var beta: Double
        var batches: Batches
        var cases: [String: Case]
        var optimizers: Optimizers
    }

    final class Setup {
        let folder: URL
        let reference: Reference
        let base: DecoderModel
        let lora: LoRAParameters

        init(_ name: String) throws {
            folder = TrainerReferenceTests.root.appendingPathComponent("Tests/Fixtures/trainer/\(name)")
            reference = try JSONDecoder().decode(Reference.self, from: Data(contentsOf: folder.appendingPathComponent("reference.json")))
            base = try ModelLoader.loadDecoder(folder: TrainerReferenceTests.root.appendingPathComponent("Tests/Fixtures/\(reference.base)"))
            lora = try LoRAParameters(base: base, rank: reference.rank, scale: Float(reference.scale), keys: nil, numLayers: nil, seed: 0)
            try load("adapter_init.safetensors")
        }

        /// Copies a fixture file's tensors into the LoRA values.
        func load(_ file: String) throws {
            let store = try WeightStore(files: [folder.appendingPathComponent(file)])
            for tensor in lora.tensors {
                let saved = try store.floatTensor(tensor.name, shape: tensor.shape)
                tensor.values.update(from: saved.pointer, count: tensor.count)
            }
        }

        func expected(_ file: String) throws -> WeightStore { try WeightStore(files: [folder.appendingPathComponent(file)]) }

        func sftGradients() throws -> Double {
            lora.zeroGradients()
            let pass = TrainingPass(model: lora.model)
            let batch = reference.batches.sft
            let logprobs = try pass.forward(batch.map(\.ids))
            let trained = batch.map { example in (0..<(example.ids.count - 1)).map { $0 + 1 >= example.prompt_len } }
            let (loss, _, gradient) = SFTLoss.evaluate(logprobs: logprobs, trained: trained)
            pass.backward(gradient, into: lora.gradients)
            return loss
        }

        func dpoGradients(_ type: TrainingConfiguration.LossType, normalize: Bool) throws -> DPOLoss.Result {
            lora.zeroGradients()
            let examples = try reference.batches.dpo.map { pair -> DPOExample in
                let chosen = PromptResponseTokens(ids: pair.chosen_ids, promptLength: pair.prompt_len)
                let rejected = PromptResponseTokens(ids: pair.rejected_ids, promptLength: pair.prompt_len)
                let scores = try Scorer(model: base).score([chosen.ids, rejected.ids])
                let c = SpanScore(sequenceLogprobs: scores[0], promptLength: chosen.promptLength)
                let r = SpanScore(sequenceLogprobs: scores[1], promptLength: rejected.promptLength)
                return DPOExample(chosen: chosen, rejected: rejected, reference: (c.sum, c.mean, r.sum, r.mean))
            }
            let pass = TrainingPass(model: lora.model)
            let logprobs = try pass.forward(examples.flatMap { [$0.chosen.ids, $0.rejected.ids] })
            let (result, gradient, _) = DPOObjective.evaluate(logprobs: logprobs, examples: examples, beta: reference.beta, type: type,
                                                             normalizeByLength: normalize)
            pass.backward(gradient, into: lora.gradients)
            return result
        }

        /// Largest |ours − expected| over every LoRA tensor, and the largest |expected|.
        func compare(gradients file: String) throws -> (difference: Double, scale: Double) {
            let store = try expected(file)
            var difference = 0.0, scale = 0.0
            for tensor in lora.tensors {
                let saved = try store.floatTensor(tensor.name, shape: tensor.shape)
                for index in 0..<tensor.count {
                    difference = max(difference, abs(Double(tensor.gradient[index]) - Double(saved.pointer[index])))
                    scale = max(scale, abs(Double(saved.pointer[index])))
                }
            }
            return (difference, scale)
        }
    }

    static func relativelyClose(_ a: Double, _ b: Double, _ tolerance: Double = 1e-5) -> Bool {
        abs(a - b) <= tolerance * max(1, abs(b))
    }

    @Test(arguments: fixtures)
    func sftGradientsMatchPyTorch(fixture: String) throws {
        let setup = try Setup(fixture)
        let loss = try setup.sftGradients()
        #expect(Self.relativelyClose(loss, setup.reference.cases["sft"]!.loss), "loss \(loss) vs \(setup.reference.cases["sft"]!.loss)")
        let (difference, scale) = try setup.compare(gradients: "grads_sft.safetensors")
        print("trainer \(fixture) sft: max |Δgradient| \(difference) (max |g| \(scale))")
        #expect(difference <= 2e-5 * max(1, scale), "\(fixture) SFT gradients differ by \(difference)")
    }

    @Test(arguments: fixtures)
    func dpoGradientsAndMetricsMatchTRL(fixture: String) throws {
        let setup = try Setup(fixture)
        let cases: [(String, TrainingConfiguration.LossType, Bool)] = [
            ("dpo_sigmoid", .sigmoid, false), ("dpo_ipo", .ipo, false), ("dpo_hinge", .hinge, false), ("dpo_sigmoid_normalized", .sigmoid, true)]
        for (name, type, normalize) in cases {
            let result = try setup.dpoGradients(type, normalize: normalize)
            let expected = setup.reference.cases[name]!
            #expect(Self.relativelyClose(result.loss, expected.loss), "\(fixture) \(name) loss \(result.loss) vs \(expected.loss)")
            for (key, value) in result.metrics {
                if let reference = expected.metrics?[key.rawValue] {
                    #expect(Self.relativelyClose(value, reference, 1e-4), "\(fixture) \(name) \(key) \(value) vs \(reference)")
                }
            }
            let (difference, scale) = try setup.compare(gradients: "grads_\(name).safetensors")
            print("trainer \(fixture) \(name): max |Δgradient| \(difference) (max |g| \(scale))")
            #expect(difference <= 2e-5 * max(1, scale), "\(fixture) \(name) gradients differ by \(difference) (max |g| \(scale))")
        }
    }

    @Test(arguments: fixtures)
    func optimizerStepsMatchPyTorch(fixture: String) throws {
        let setup = try Setup(fixture)
        let optimizers = setup.reference.optimizers
        let steps: [(file: String, name: TrainingConfiguration.OptimizerName, clip: Bool, dpo: Bool, tolerance: Double)] = [
            ("step_sgd_sft.safetensors", .sgd, false, false, 1e-6),
            ("step_sgd_clipped_sft.safetensors", .sgd, true, false, 1e-6),
            ("step_adamw_sft.safetensors", .adamw, false, false, 1e-4),
            ("step_adamw_clipped_sft.safetensors", .adamw, true, false, 1e-4),
            ("step_adamw_dpo_sigmoid.safetensors", .adamw, false, true, 1e-4),
        ]
        for step in steps {
            try setup.load("adapter_init.safetensors")
            if step.dpo { _ = try setup.dpoGradients(.sigmoid, normalize: false) } else { _ = try setup.sftGradients() }
            if step.clip { clipGradientNorm(setup.lora, maximum: optimizers.clip.max_norm) }
            let settings = step.name == .sgd ? OptimizerSettings(weightDecay: 0)
                : OptimizerSettings(weightDecay: optimizers.adamw.weight_decay, betas: optimizers.adamw.betas, eps: optimizers.adamw.eps)
            let optimizer = Optimizer(name: step.name, settings: settings, tensors: setup.lora.tensors)
            optimizer.update(setup.lora.tensors, rate: step.name == .sgd ? optimizers.sgd.lr : optimizers.adamw.lr)
            let expected = try setup.expected(step.file)
            var difference = 0.0
            for tensor in setup.lora.tensors {
                let saved = try expected.floatTensor(tensor.name, shape: tensor.shape)
                for index in 0..<tensor.count where step.name == .sgd || abs(tensor.gradient[index]) >= 1e-5 {
                    difference = max(difference, abs(Double(tensor.values[index]) - Double(saved.pointer[index])))
                }
            }
            #expect(difference <= step.tolerance, "\(fixture) \(step.file): adapter differs by \(difference)")
        }
    }

    @Test(arguments: ["llama-rope-llama3-old-schema", "gpt2-inner96", "granite-hybrid-dense-rope", "granite-hybrid-moe-nope"])
    func fullFineTuneGradientsMatchPyTorch(fixture: String) throws {
        let folder = Self.root.appendingPathComponent("Tests/Fixtures/trainer/\(fixture)")
        let reference = try JSONDecoder().decode(Reference.self, from: Data(contentsOf: folder.appendingPathComponent("reference.json")))
        let full = try FullParameters(folder: Self.root.appendingPathComponent("Tests/Fixtures/\(reference.base)"))
        full.zeroGradients()
        let pass = TrainingPass(model: full.model)
        let batch = reference.batches.sft
        let logprobs = try pass.forward(batch.map(\.ids))
        let trained = batch.map { example in (0..<(example.ids.count - 1)).map { $0 + 1 >= example.prompt_len } }
        let (_, _, gradient) = SFTLoss.evaluate(logprobs: logprobs, trained: trained)
        pass.backward(gradient, into: full.gradients)
        let expected = try WeightStore(files: [folder.appendingPathComponent("grads_full_sft.safetensors")])
        var checked = 0
        var largest = 0.0
        for tensor in full.tensors {
            let saved = try expected.floatTensor(tensor.name, shape: tensor.shape)
            var difference = 0.0, scale = 0.0
            for index in 0..<tensor.count {
                difference = max(difference, abs(Double(tensor.gradient[index]) - Double(saved.pointer[index])))
                scale = max(scale, abs(Double(saved.pointer[index])))
            }
            #expect(difference <= 2e-5 * max(1, scale), "\(fixture) \(tensor.name): gradient differs by \(difference)")
            largest = max(largest, difference / max(1, scale))
            checked += 1
        }
        #expect(checked == expected.tensorNames.count)
        print("trainer \(fixture) full fine-tune: \(checked) tensors, max |Δgradient| / max(1, max|g|) \(largest)")
    }
}
