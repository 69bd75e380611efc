import Foundation
import Testing
@testable import TunecheckEngine

/// Gradients of the training pass against central finite differences of the same float32 forward.
/// Tolerance: with ε = 1e-2 and a loss of magnitude ~10, float32 rounding of the loss (~1e-6 relative) gives
/// ~5e-4 absolute noise in a difference quotient, and the O(ε²) truncation error of the central difference is of
/// the same order for these smooth functions; 2e-3 + 2% relative leaves room for both and still fails on any
/// missing or mis-scaled term (those are O(1) relative).
struct TrainingPassTests {
    /// A fixed random linear function of the token log-probs, so every position's gradient path is exercised.
    static func loss(_ logprobs: [[Double]], weights: [[Double]]) -> Double {
        zip(logprobs, weights).reduce(0) { total, pair in total + zip(pair.0, pair.1).reduce(0) { $0 + $1.0 * $1.1 } }
    }

    static func batch(vocabulary: Int, generator: inout SeededGenerator) -> ([[Int]], [[Double]]) {
        let sequences = [9, 14, 6].map { length in (0..<length).map { _ in Int.random(in: 1..<vocabulary, using: &generator) } }
        let weights = sequences.map { sequence in (0..<(sequence.count - 1)).map { _ in Double.random(in: -0.5...0.5, using: &generator) } }
        return (sequences, weights)
    }

    static func check(_ parameters: TrainableParameters, sequences: [[Int]], weights: [[Double]], samplesPerTensor: Int,
                      epsilon: Float = 1e-2, generator: inout SeededGenerator, label: String) throws {
        let pass = TrainingPass(model: parameters.model)
        parameters.zeroGradients()
        let logprobs = try pass.forward(sequences)
        pass.backward(weights, into: parameters.gradients)
        var checked = 0, worst = 0.0, largest = 0.0
        for tensor in parameters.tensors {
            for _ in 0..<samplesPerTensor {
                let index = Int.random(in: 0..<tensor.count, using: &generator)
                let original = tensor.values[index]
                tensor.values[index] = original + epsilon
                let plus = Self.loss(try TrainingPass(model: parameters.model).forward(sequences), weights: weights)
                tensor.values[index] = original - epsilon
                let minus = Self.loss(try TrainingPass(model: parameters.model).forward(sequences), weights: weights)
                tensor.values[index] = original
                let numeric = (plus - minus) / Double(2 * epsilon)
                let analytic = Double(tensor.gradient[index])
                worst = max(worst, abs(numeric - analytic))
                largest = max(largest, abs(numeric))
                #expect(abs(numeric - analytic) <= 2e-3 + 0.02 * abs(numeric),
                        "\(label) \(tensor.name)[\(index)]: analytic \(analytic), finite difference \(numeric)")
                checked += 1
            }
        }
        #expect(checked > 0)
        print("\(label): \(checked) gradient entries, largest |analytic − finite difference| \(worst) (largest |gradient| \(largest))")
        _ = logprobs
    }

    @Test(arguments: ["llama-rope-llama3-old-schema", "gpt2-inner96", "qwen3", "phi3", "granite", "mistral-sliding-window", "phi3-partial-rotary"])
    func loraGradientsMatchFiniteDifferences(fixture: String) throws {
        let base = try ModelLoader.loadDecoder(folder: FixturePaths.ownModel(fixture))
        let lora = try LoRAParameters(base: base, rank: 2, scale: 2, keys: nil, numLayers: nil, seed: 3)
        var generator = SeededGenerator(seed: 11)
        // lora_b starts at zero; give it values so gradients of lora_a are non-zero too.
        for module in lora.modules {
            for index in 0..<module.b.count { module.b.values[index] = Float.random(in: -0.2...0.2, using: &generator) }
        }
        let (sequences, weights) = Self.batch(vocabulary: base.spec.vocabularySize, generator: &generator)
        try Self.check(lora, sequences: sequences, weights: weights, samplesPerTensor: 1, generator: &generator, label: fixture)
    }

    /// Full fine-tuning of the hybrids samples the Mamba2 mixer's own parameters (conv taps and bias, dt bias, A_log,
    /// D, gated norm), the router and the experts too; ε 1e-3 keeps the MoE fixture's routing fixed (as above).
    @Test(arguments: ["llama-rope-llama3-old-schema", "gpt2-inner96", "qwen3", "granite", "granite-hybrid-dense-rope", "granite-hybrid-moe-nope"])
    func fullGradientsMatchFiniteDifferences(fixture: String) throws {
        let full = try FullParameters(folder: FixturePaths.ownModel(fixture))
        var generator = SeededGenerator(seed: 5)
        let (sequences, weights) = Self.batch(vocabulary: full.model.spec.vocabularySize, generator: &generator)
        try Self.check(full, sequences: sequences, weights: weights, samplesPerTensor: 1, epsilon: full.model.spec.experts == nil ? 1e-2 : 1e-3,
                       generator: &generator, label: fixture)
    }

    /// mlx_lm's names for Granite 4.0-H (an unquantized `mlx_lm.convert` folder: the experts' gate and up as two
    /// (E, F, H) tensors, conv taps (C, K, 1)): full fine-tuning trains them under those names, gate and up with
    /// gradients of their own (`ExpertKernels.Gradients.gate/up`). ε 1e-3 as for the other MoE fixture.
    @Test func fullGradientsMatchFiniteDifferencesOnMLXNamedGraniteHybrid() throws {
        let full = try FullParameters(folder: QuantizedWeightsTests.folder("granitemoehybrid-mlx-bf16"))
        for suffix in ["switch_mlp.gate_proj.weight", "switch_mlp.up_proj.weight", "switch_mlp.down_proj.weight", "mamba.conv1d.weight"] {
            #expect(full.tensors.contains { $0.name.hasSuffix(suffix) }, "\(suffix) is trained")
        }
        var generator = SeededGenerator(seed: 5)
        let (sequences, weights) = Self.batch(vocabulary: full.model.spec.vocabularySize, generator: &generator)
        try Self.check(full, sequences: sequences, weights: weights, samplesPerTensor: 1, epsilon: 1e-3, generator: &generator,
                       label: "granitemoehybrid-mlx-bf16 (full)")
    }

    /// Granite 4.0-H: LoRA on in_proj reaches the loss through the conv, the time steps, the chunked scan and the gated
    /// norm, and the shared MLP's LoRA through the router's input. Sequences of 21 and 35 tokens cross several scan
    /// chunks (8 and 16 on these fixtures), three samples per tensor cover more of each path. The MoE fixture's routing
    /// is piecewise constant in the parameters: with these seeds no ±ε step crosses a top-k boundary (a crossing would
    /// show as a jump far outside the tolerance, not as noise).
    @Test(arguments: ["granite-hybrid-dense-rope", "granite-hybrid-moe-nope"])
    func hybridLoRAGradientsMatchFiniteDifferences(fixture: String) throws {
        let base = try ModelLoader.loadDecoder(folder: FixturePaths.ownModel(fixture))
        let lora = try LoRAParameters(base: base, rank: 2, scale: 2, keys: nil, numLayers: nil, seed: 3)
        #expect(lora.modules.contains { $0.name.hasSuffix("mamba.in_proj") } && lora.modules.contains { $0.name.hasSuffix("mamba.out_proj") })
        var generator = SeededGenerator(seed: 17)
        let routed = base.spec.experts != nil
        for module in lora.modules {
            for index in 0..<module.b.count { module.b.values[index] = Float.random(in: -0.2...0.2, using: &generator) * (routed ? 0.1 : 1) }
        }
        let vocabulary = base.spec.vocabularySize
        let sequences = [21, 35, 6].map { length in (0..<length).map { _ in Int.random(in: 1..<vocabulary, using: &generator) } }
        let weights = sequences.map { sequence in (0..<(sequence.count - 1)).map { _ in Double.random(in: -0.5...0.5, using: &generator) } }
        try Self.check(lora, sequences: sequences, weights: weights, samplesPerTensor: 3, epsilon: routed ? 1e-3 : 1e-2,
                       generator: &generator, label: fixture)
    }

    @Test(arguments: ["qwen3", "granite-hybrid-dense-rope", "granite-hybrid-moe-nope"])
    func recordingForwardMatchesInference(fixture: String) throws {
        let model = try ModelLoader.loadDecoder(folder: FixturePaths.ownModel(fixture))
        let reference = try ModelReference.load(FixturePaths.ownModel(fixture))
        let sequences = reference.texts.map(\.ids)
        let training = try TrainingPass(model: model).forward(sequences)
        let inference = try Scorer(model: model).score(sequences)
        for (a, b) in zip(training, inference) {
            #expect(zip(a, b).allSatisfy { abs($0 - $1) < 1e-5 })
        }
    }


    /// A batch split over two single-threaded passes gives the log-probs and (summed) gradients of one pass over the
    /// whole batch: the same math, float32 sums in another order (1e-5 relative to the largest gradient). LoRA runs the
    /// shares' backward in parallel into separate buffers; full fine-tuning runs them one after another.
    @Test(arguments: ["llama-rope-llama3-old-schema", "gpt2-inner96", "granite-hybrid-moe-nope"])
    func splitBatchEqualsOnePass(fixture: String) throws {
        let base = try ModelLoader.loadDecoder(folder: FixturePaths.ownModel(fixture))
        var generator = SeededGenerator(seed: 23)
        let (sequences, weights) = Self.batch(vocabulary: base.spec.vocabularySize, generator: &generator)
        let lora = try LoRAParameters(base: base, rank: 2, scale: 2, keys: nil, numLayers: nil, seed: 3)
        for module in lora.modules {
            for index in 0..<module.b.count { module.b.values[index] = Float.random(in: -0.05...0.05, using: &generator) }
        }
        let full = try FullParameters(folder: FixturePaths.ownModel(fixture))
        for parameters in [lora as TrainableParameters, full] {
            func run(threads: Int) throws -> (logprobs: [[Double]], gradients: [[Float]]) {
                parameters.zeroGradients()
                let pass = TrainingPass(model: parameters.model, threads: threads)
                let logprobs = try pass.forward(sequences)
                pass.backward(weights, into: parameters.gradients)
                return (logprobs, parameters.tensors.map { Array(UnsafeBufferPointer(start: $0.gradient, count: $0.count)) })
            }
            let one = try run(threads: 1), split = try run(threads: 2)
            let logprobDifference = zip(one.logprobs.joined(), split.logprobs.joined()).map { abs($0 - $1) }.max() ?? 0
            #expect(logprobDifference < 1e-5, "\(fixture): log-probs differ by \(logprobDifference)")
            let scale = one.gradients.joined().map { abs($0) }.max() ?? 0
            let difference = zip(one.gradients.joined(), split.gradients.joined()).map { abs($0 - $1) }.max() ?? 0
            #expect(scale > 0 && difference <= 1e-5 * max(scale, 1e-3), "\(fixture): gradients differ by \(difference) (max |g| \(scale))")
        }
    }
}
