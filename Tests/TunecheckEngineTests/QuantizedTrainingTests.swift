import Foundation
import Testing
@testable import TunecheckEngine

/// QLoRA: LoRA training on an mlx 4-bit base (Tests/Fixtures/quantized/llama-q4-g64). The base weights stay the
/// packed codes (frozen, never widened into a float copy); forward and input-gradient products dequantize on the fly.
/// The LoRA gradients are checked against central finite differences of the same float32 forward, with
/// TrainingPassTests' tolerance (2e-3 + 2% relative, ε = 1e-2; reasons there).
struct QuantizedTrainingTests {
    /// granitemoehybrid-q4-g32: the gradients also flow back through the quantized routed experts (gate/up/down per
    /// expert, sliced from the 3-D codes), the 8-bit router and the quantized Mamba projections.
    @Test("QLoRA gradients through the dequantized products match finite differences; the base stays quantized",
          arguments: ["llama-q4-g64", "granitemoehybrid-q4-g32"])
    func qloraGradientsMatchFiniteDifferences(fixture: String) throws {
        let base = try ModelLoader.loadDecoder(folder: QuantizedWeightsTests.folder(fixture))
        let lora = try LoRAParameters(base: base, rank: 2, scale: 2, keys: nil, numLayers: nil, seed: 3)
        var generator = SeededGenerator(seed: 14)
        // lora_b starts at zero; give it values so gradients of lora_a are non-zero too.
        for module in lora.modules {
            for index in 0..<module.b.count { module.b.values[index] = Float.random(in: -0.2...0.2, using: &generator) }
        }
        for layer in lora.model.weights.layers {
            for linear in layer.linears {
                #expect(linear.weight.storage.isQuantized, "\(linear.name) stays packed")
                #expect(linear.adapter != nil, "\(linear.name) is adapted")
            }
        }
        for experts in base.weights.layers.compactMap(\.feedForward.experts) {
            let matrices = experts.matrices + [experts.router]
            #expect(matrices.allSatisfy { $0.storage.isQuantized }, "routed experts and router stay packed")
        }
        let (sequences, weights) = TrainingPassTests.batch(vocabulary: base.spec.vocabularySize, generator: &generator)
        try TrainingPassTests.check(lora, sequences: sequences, weights: weights, samplesPerTensor: 2, generator: &generator,
                                    label: fixture)
    }

    struct GradientReference: Decodable {
        struct Entry: Decodable {
            var shape: [Int]
            var frobenius: Double
            var indices: [Int]
            var values: [Double]
        }
        var texts: [[Int]]
        var scored_tokens: Int
        var loss: Double
        var gradients: [String: Entry]
    }

    /// The committed QLoRA adapter (written by mlx_lm lora on the 4-bit base), resumed as trainable factors: the mean
    /// next-token NLL over the reference texts and its gradient w.r.t. every lora_a / lora_b against mlx's autodiff of
    /// the same loss through QuantizedLinear + LoRALinear in float32 (gradients.json, make_quantized_fixtures.py).
    /// Tolerance: loss 1e-5 relative; gradient norms 1e-3 relative and sampled entries 1e-5 + 1e-3 relative (both
    /// sides are float32 sums over 119 tokens in different orders; observed values are printed).
    @Test("QLoRA loss and LoRA gradients on the 4-bit base equal mlx's autodiff through QuantizedLinear")
    func qloraGradientsMatchMLX() throws {
        let url = QuantizedWeightsTests.folder("qlora-llama-q4-g64-fused").appendingPathComponent("gradients.json")
        let reference = try JSONDecoder().decode(GradientReference.self, from: Data(contentsOf: url))
        let base = try ModelLoader.loadDecoder(folder: QuantizedWeightsTests.folder("llama-q4-g64"))
        let lora = try LoRAParameters(base: base, resuming: Adapter.load(path: QuantizedWeightsTests.folder("qlora-llama-q4-g64")), seed: 0)
        let pass = TrainingPass(model: lora.model)
        lora.zeroGradients()
        let logprobs = try pass.forward(reference.texts)
        let count = Double(reference.scored_tokens)
        #expect(logprobs.map(\.count).reduce(0, +) == reference.scored_tokens)
        let loss = -logprobs.joined().reduce(0, +) / count
        pass.backward(logprobs.map { $0.map { _ in -1 / count } }, into: lora.gradients)
        #expect(abs(loss - reference.loss) <= 1e-5 * reference.loss, "loss \(loss) vs mlx \(reference.loss)")
        #expect(lora.tensors.count == reference.gradients.count)
        var worstNorm = 0.0, worstEntry = 0.0
        for tensor in lora.tensors {
            let entry = try #require(reference.gradients[tensor.name], "\(tensor.name) in mlx's gradients")
            #expect(tensor.count == entry.shape.reduce(1, *))
            var squares = 0.0
            for index in 0..<tensor.count { squares += Double(tensor.gradient[index]) * Double(tensor.gradient[index]) }
            let norm = squares.squareRoot()
            worstNorm = max(worstNorm, abs(norm - entry.frobenius) / entry.frobenius)
            #expect(abs(norm - entry.frobenius) <= 1e-3 * entry.frobenius, "\(tensor.name): ‖g‖ \(norm) vs mlx \(entry.frobenius)")
            for (index, value) in zip(entry.indices, entry.values) {
                let ours = Double(tensor.gradient[index])
                worstEntry = max(worstEntry, abs(ours - value))
                #expect(abs(ours - value) <= 1e-5 + 1e-3 * abs(value), "\(tensor.name)[\(index)]: \(ours) vs mlx \(value)")
            }
        }
        print("qlora vs mlx autodiff: loss \(loss) vs \(reference.loss); gradient norms within \(worstNorm) relative; "
              + "sampled entries within \(worstEntry)")
    }
}
