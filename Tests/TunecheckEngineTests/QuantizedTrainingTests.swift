import Foundation
import Testing
@testable import TunecheckEngine

/// QLoRA: LoRA training on an mlx 4-bit base (Tests/Fixtures/quantized/llama-q4-g64). The base weights stay the
/// packed codes (frozen, never widened into a float copy); forward and input-gradient products dequantize on the fly.
/// The LoRA gradients are checked against central finite differences of the same float32 forward, with
/// TrainingPassTests' tolerance (2e-3 + 2% relative, ε = 1e-2; reasons there).
struct QuantizedTrainingTests {
    @Test("QLoRA gradients through the dequantized products match finite differences; the base stays quantized")
    func qloraGradientsMatchFiniteDifferences() throws {
        let base = try ModelLoader.loadDecoder(folder: QuantizedWeightsTests.folder("llama-q4-g64"))
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
        let (sequences, weights) = TrainingPassTests.batch(vocabulary: base.spec.vocabularySize, generator: &generator)
        try TrainingPassTests.check(lora, sequences: sequences, weights: weights, samplesPerTensor: 2, generator: &generator,
                                    label: "llama-q4-g64")
    }
}
