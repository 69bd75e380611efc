import Foundation
import Testing
@testable import TunecheckEngine

/// Small numeric kernels against independent references computed here in Double, plus the sampler and the
/// KV-cache path against a cache-free recomputation.
@Suite struct KernelTests {

    /// Test-data generator (SplitMix64), independent of the engine's `SeededGenerator` under test.
    struct TestRandom {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        /// Uniform in [0, 1).
        mutating func unit() -> Double { Double(next() >> 11) * 0x1p-53 }
        /// Roughly normal (sum of 4 uniforms, rescaled), enough for spreading logits.
        mutating func normal(_ sigma: Double) -> Float {
            Float(((unit() + unit() + unit() + unit()) - 2) * sigma * 1.7320508)
        }
    }

    static func referenceLogSumExp(_ row: [Float]) -> Double {
        let maximum = Double(row.max() ?? 0)
        return maximum + Foundation.log(row.reduce(0.0) { $0 + Foundation.exp(Double($1) - maximum) })
    }

    // MARK: - log-softmax

    /// Tolerance: |Δ| ≤ 1e-6 · max(1, |reference|). The engine sums exp(x − max) in float32 lanes (each exp within
    /// 3e-7 relative, see below; the sum of positive terms adds ~6e-8 relative per float32 addition, and the terms
    /// near the maximum dominate), then takes the log in Double. An error δ relative in the sum is δ absolute in
    /// the log, so ~1e-6 absolute is the float32 floor; the max(1, |ref|) turns it into a relative bound for large
    /// magnitudes (the very negative rows), where the final `max + log(sum)` addition is exact to Double precision.
    @Test(arguments: [1, 2, 7, 8, 9, 15, 16, 17, 31, 64, 320, 1001])
    func logSumExpMatchesDouble(length: Int) {
        var random = TestRandom(state: UInt64(length) &* 7919)
        var rows: [(String, [Float])] = []
        rows.append(("normal σ=5", (0..<length).map { _ in random.normal(5) }))
        rows.append(("very negative", (0..<length).map { _ in -10_000 + random.normal(3) }))
        rows.append(("all equal", [Float](repeating: -3.25, count: length)))
        rows.append(("one dominant", (0..<length).map { $0 == length / 2 ? 40 : -60 + random.normal(10) }))
        rows.append(("spread past exp underflow", (0..<length).map { _ in Float(random.unit() * 300 - 250) }))
        var masked = (0..<length).map { _ in random.normal(2) }
        for index in stride(from: 1, to: length, by: 3) { masked[index] = -.infinity }
        rows.append(("masked with -inf", masked))
        for (label, row) in rows {
            let reference = Self.referenceLogSumExp(row)
            let (logSumExp, maximum) = row.withUnsafeBufferPointer { LogSoftmaxKernels.logSumExp($0.baseAddress!, count: length) }
            #expect(maximum == row.max())
            let tolerance = 1e-6 * max(1, abs(reference))
            #expect(abs(logSumExp - reference) <= tolerance,
                    "length \(length), \(label): \(logSumExp) vs \(reference) (Δ \(abs(logSumExp - reference)))")
        }
    }

    /// exp8 against Double exp over the whole range it is used on (x − max ∈ [−87, 0]). Bound 3e-7 relative:
    /// the documented ~2e-7 (degree-6 polynomial on |r| ≤ ln2/2 plus float32 rounding) with a margin of one ulp.
    @Test func exp8RelativeErrorBelow3e7() {
        let count = 80_000
        var worst = 0.0
        var worstInput: Float = 0
        var inputs = [Float](repeating: 0, count: 8)
        var index = 0
        while index < count {
            for lane in 0..<8 {
                // Evenly spaced over [-87, 0], both ends included.
                inputs[lane] = Float(-87.0 + 87.0 * Double(min(index + lane, count - 1)) / Double(count - 1))
            }
            let output = LogSoftmaxKernels.exp8(SIMD8(inputs))
            for lane in 0..<8 {
                let exact = Foundation.exp(Double(inputs[lane]))
                let error = abs(Double(output[lane]) - exact) / exact
                if error > worst { worst = error; worstInput = inputs[lane] }
            }
            index += 8
        }
        #expect(worst < 3e-7, "max relative error \(worst) at x = \(worstInput)")
        // Below the clamp the result is tiny and never negative or NaN (it feeds a sum of probabilities).
        let low = LogSoftmaxKernels.exp8(SIMD8(repeating: -1_000))
        #expect(low[0] >= 0 && low[0] < 1e-37)
        let infinite = LogSoftmaxKernels.exp8(SIMD8(repeating: -.infinity))
        #expect(infinite[0] >= 0 && infinite[0] < 1e-37)
    }

    // MARK: - Sampler

    @Test func argmaxTakesFirstIndexOnTies() {
        let rows: [([Float], Int)] = [
            ([1, 5, 5, 2], 1),
            ([3, 3, 3], 0),
            ([-.infinity, -.infinity, -.infinity], 0),
            ([0, 0, 0, 0, 0, 0, 0, 0, 0, 9, 1, 9], 9),
            ([-2, -1, -1.0000001, -1], 1),
            ([.nan, 1, 2, 2], 2),
        ]
        for (row, expected) in rows {
            let result = row.withUnsafeBufferPointer { Sampler.argmax($0.baseAddress!, count: row.count) }
            #expect(result == expected, "argmax \(row) = \(result)")
        }
    }

    @Test func seededGeneratorIsReproducible() {
        var first = SeededGenerator(seed: 1234)
        var second = SeededGenerator(seed: 1234)
        var other = SeededGenerator(seed: 1235)
        let a = (0..<200).map { _ in first.next() }
        let b = (0..<200).map { _ in second.next() }
        let c = (0..<200).map { _ in other.next() }
        #expect(a == b)
        #expect(a != c)
        #expect(Set(a).count == a.count, "a 64-bit generator should not repeat within 200 draws")
        // Seed 0 must not be a degenerate (all-zero) state.
        var zero = SeededGenerator(seed: 0)
        #expect((0..<8).map { _ in zero.next() }.contains { $0 != 0 })
    }

    /// Runs `draws` sampling steps over fresh copies of `logits` (the sampler overwrites them).
    static func sample(_ logits: [Float], settings: SamplingSettings, seed: UInt64, draws: Int) -> [Int] {
        var sampler = Sampler(settings: settings, seed: seed)
        return (0..<draws).map { _ in
            var copy = logits
            return copy.withUnsafeMutableBufferPointer { sampler.next($0.baseAddress!, count: $0.count, banned: []) }
        }
    }

    @Test func seededSamplingIsReproducible() {
        var random = TestRandom(state: 99)
        let logits = (0..<50).map { _ in random.normal(1) }
        let settings = SamplingSettings(temperature: 0.9, topK: 20, topP: 0.95)
        let first = Self.sample(logits, settings: settings, seed: 42, draws: 200)
        #expect(first == Self.sample(logits, settings: settings, seed: 42, draws: 200))
        #expect(first != Self.sample(logits, settings: settings, seed: 43, draws: 200))
        #expect(Set(first).count > 3, "sampling at temperature 0.9 over flat logits should vary")
    }

    @Test func topKOneEqualsGreedy() {
        var random = TestRandom(state: 7)
        for row in 0..<40 {
            let logits = (0..<(50 + row)).map { _ in random.normal(3) }
            var best = 0
            for index in logits.indices where logits[index] > logits[best] { best = index }
            for temperature: Float in [0.5, 1, 2] {
                let sampled = Self.sample(logits, settings: SamplingSettings(temperature: temperature, topK: 1), seed: UInt64(row), draws: 3)
                #expect(sampled == [best, best, best], "row \(row) T=\(temperature)")
            }
            #expect(Self.sample(logits, settings: SamplingSettings(temperature: 0), seed: 1, draws: 1) == [best])
        }
    }

    /// Frequencies of 20,000 draws from p = (0.6, 0.25, 0.1, 0.05): each within 0.015 (over 4 standard deviations
    /// of a binomial proportion at n = 20,000). top-p 0.8 keeps the smallest prefix reaching 0.8, {0, 1}.
    @Test func samplingFollowsTheDistribution() {
        let probabilities = [0.6, 0.25, 0.1, 0.05]
        let logits = probabilities.map { Float(Foundation.log($0)) }
        let draws = 20_000
        var counts = [Int](repeating: 0, count: 4)
        for token in Self.sample(logits, settings: SamplingSettings(temperature: 1), seed: 5, draws: draws) { counts[token] += 1 }
        for (index, probability) in probabilities.enumerated() {
            #expect(abs(Double(counts[index]) / Double(draws) - probability) < 0.015, "token \(index): \(counts[index]) of \(draws)")
        }
        var nucleus = [Int](repeating: 0, count: 4)
        for token in Self.sample(logits, settings: SamplingSettings(temperature: 1, topP: 0.8), seed: 6, draws: draws) { nucleus[token] += 1 }
        #expect(nucleus[2] == 0 && nucleus[3] == 0)
        #expect(abs(Double(nucleus[0]) / Double(draws) - 0.6 / 0.85) < 0.015)
    }

    // MARK: - Rotary

    /// transformers' `_compute_llama3_parameters`, in Double:
    ///   inv_freq = 1 / base^(2i/dim); wavelen = 2π / inv_freq
    ///   wavelen > orig/low  → inv_freq / factor
    ///   wavelen < orig/high → inv_freq
    ///   otherwise smooth = (orig/wavelen − low) / (high − low); (1 − smooth) · inv_freq / factor + smooth · inv_freq
    static func llama3Reference(theta: Double, dim: Int, factor: Double, low: Double, high: Double, original: Double) -> (values: [Double], regions: Set<String>) {
        var values: [Double] = []
        var regions = Set<String>()
        for index in stride(from: 0, to: dim, by: 2) {
            let frequency = 1 / Foundation.pow(theta, Double(index) / Double(dim))
            let wavelength = 2 * Double.pi / frequency
            if wavelength > original / low {
                values.append(frequency / factor)
                regions.insert("low")
            } else if wavelength < original / high {
                values.append(frequency)
                regions.insert("high")
            } else {
                let smooth = (original / wavelength - low) / (high - low)
                values.append((1 - smooth) * frequency / factor + smooth * frequency)
                regions.insert("medium")
            }
        }
        return (values, regions)
    }

    /// Tolerance 2e-6 relative: the engine works in float32 as torch does (powf and the smoothing arithmetic, a few
    /// ulps of 6e-8 each); the reference is Double. The formula is continuous at the band edges, so a value that
    /// falls on the other side of an edge in float32 still agrees.
    @Test(arguments: [(500_000.0, 128, 8.0, 1.0, 4.0, 8192.0),   // Llama 3.1
                      (500_000.0, 64, 32.0, 1.0, 4.0, 8192.0),   // Llama 3.2
                      (500_000.0, 16, 8.0, 1.0, 4.0, 64.0)])     // the llama3 fixture
    func llama3InverseFrequencies(theta: Double, dim: Int, factor: Double, low: Double, high: Double, original: Double) {
        let rotary = RotaryEmbedding(theta: theta, rotaryDim: dim,
                                     scaling: .llama3(factor: factor, lowFrequencyFactor: low, highFrequencyFactor: high, originalMaxPositions: original))
        let engine = rotary.inverseFrequencies()
        let (reference, regions) = Self.llama3Reference(theta: theta, dim: dim, factor: factor, low: low, high: high, original: original)
        #expect(engine.count == dim / 2)
        #expect(regions == ["low", "medium", "high"], "parameters should exercise all three bands, got \(regions)")
        for (index, (value, expected)) in zip(engine, reference).enumerated() {
            #expect(abs(Double(value) - expected) <= 2e-6 * expected, "inv_freq[\(index)] = \(value), expected \(expected)")
        }
    }

    @Test func plainAndLinearInverseFrequencies() {
        let plain = RotaryEmbedding(theta: 10_000, rotaryDim: 32, scaling: .none).inverseFrequencies()
        let linear = RotaryEmbedding(theta: 10_000, rotaryDim: 32, scaling: .linear(factor: 4)).inverseFrequencies()
        for index in 0..<16 {
            let expected = 1 / Foundation.pow(10_000.0, Double(2 * index) / 32)
            #expect(abs(Double(plain[index]) - expected) <= 2e-6 * expected)
            #expect(abs(Double(linear[index]) - expected / 4) <= 2e-6 * expected / 4)
        }
    }

    // MARK: - KV cache

    /// Greedy generation with the KV cache (prefill, then one token per step) must pick the same tokens as
    /// re-scoring the whole growing sequence without a cache and taking the argmax of its last row. Exact ids:
    /// both paths compute the same float32 math up to summation order, and the fixtures were generated with
    /// margins between the top two logits that such differences cannot cross (the gap is printed on failure).
    @Test(arguments: FixturePaths.ownModelNames)
    func cachedGenerationEqualsFullRecompute(fixture: String) throws {
        let folder = FixturePaths.ownModel(fixture)
        let reference = try ModelReference.load(folder)
        let model = try ModelLoader.loadDecoder(folder: folder)
        let generator = Generator(model: model)
        let scorer = Scorer(model: model)
        let steps = 8
        for prompt in reference.generate.map(\.prompt_ids) {
            let cached = try generator.generate(promptIds: prompt, options: GenerationOptions(maxNewTokens: steps, ignoreEOS: true)).ids
            var sequence = prompt
            var recomputed: [Int] = []
            var gaps: [Double] = []
            for _ in 0..<steps {
                let last = try #require(try scorer.logSoftmaxRows(sequence).last)
                var best = 0
                for index in last.indices where last[index] > last[best] { best = index }
                let runnerUp = last.indices.filter { $0 != best }.map { last[$0] }.max() ?? -.infinity
                gaps.append(last[best] - runnerUp)
                recomputed.append(best)
                sequence.append(best)
            }
            #expect(cached == recomputed, "\(fixture) prompt \(prompt): cache \(cached) vs recompute \(recomputed), top-2 gaps \(gaps)")
            #expect(cached.count == steps)
        }
    }

    // MARK: - Input checks of Scorer and Generator

    /// Bad ids and counts are `.invalidInput` with a message, never a trap (ids beyond Int32, counts whose sums
    /// overflow, a KV cache larger than memory).
    @Test(arguments: ["llama-bf16", "gpt2-inner96"])
    func scorerAndGeneratorRejectBadInput(fixture: String) throws {
        let model = try ModelLoader.loadDecoder(folder: FixturePaths.ownModel(fixture))
        let vocabulary = model.spec.vocabularySize
        let scorer = Scorer(model: model)
        let generator = Generator(model: model)
        func generate(_ prompt: [Int], _ maxNewTokens: Int) throws {
            _ = try generator.generate(promptIds: prompt, options: GenerationOptions(maxNewTokens: maxNewTokens, seed: 1))
        }
        let cases: [(String, () throws -> Void, [String])] = [
            ("score: empty sequence", { _ = try scorer.score([[1, 2], []]) }, ["sequence 1 is empty"]),
            ("score: id = vocabulary", { _ = try scorer.score([[1, vocabulary]]) }, ["token id \(vocabulary)", "vocabulary"]),
            ("score: negative id", { _ = try scorer.score([[-1, 2]]) }, ["token id -1"]),
            ("score: id beyond Int32", { _ = try scorer.score([[1, Int.max]]) }, ["token id \(Int.max)"]),
            ("rows: empty", { _ = try scorer.logSoftmaxRows([]) }, ["empty"]),
            ("rows: id beyond Int32", { _ = try scorer.logSoftmaxRows([1, Int.max]) }, ["token id \(Int.max)"]),
            ("rows: negative id", { _ = try scorer.logSoftmaxRows([1, -5]) }, ["token id -5"]),
            ("generate: empty prompt", { try generate([], 4) }, ["prompt is empty"]),
            ("generate: id = vocabulary", { try generate([1, vocabulary], 4) }, ["token id \(vocabulary)"]),
            ("generate: id beyond Int32", { try generate([Int.max], 4) }, ["token id \(Int.max)"]),
            ("generate: negative max new tokens", { try generate([1], -1) }, ["must not be negative"]),
            ("generate: Int.max new tokens", { try generate([1, 2], Int.max) }, ["new tokens (\(Int.max))"]),
            ("generate: 2^40 new tokens", { try generate([1, 2], 1 << 40) }, ["new tokens (\(1 << 40))"]),
        ]
        for (label, body, fragments) in cases {
            let error = BadInput.engineError { try body() }
            #expect(error?.caseName == "invalidInput", "\(label): \(String(describing: error))")
            BadInput.expectMessage(error, contains: fragments)
        }
        // Still usable afterwards.
        #expect(try scorer.score([[1, 2, 3]])[0].count == 2)
    }
}
