import Foundation

/// A small, fast, seedable generator (xoshiro256**), so a `--seed` reproduces a sampled generation exactly.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var state: (UInt64, UInt64, UInt64, UInt64)

    public init(seed: UInt64) {
        // SplitMix64 expands the seed into the four state words.
        var mixer = seed
        func next() -> UInt64 {
            mixer &+= 0x9E37_79B9_7F4A_7C15
            var z = mixer
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        state = (next(), next(), next(), next())
    }

    public mutating func next() -> UInt64 {
        let result = rotate(state.1 &* 5, 7) &* 9
        let t = state.1 << 17
        state.2 ^= state.0
        state.3 ^= state.1
        state.1 ^= state.2
        state.0 ^= state.3
        state.2 ^= t
        state.3 = rotate(state.3, 45)
        return result
    }

    private func rotate(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }
}

/// How the next token is chosen from a row of logits. Temperature 0 is greedy (argmax, first index on ties, as
/// `torch.argmax`); otherwise logits are divided by the temperature, then filtered by top-k and top-p (in that
/// order, as transformers' logits processors do), and a token is drawn.
public struct SamplingSettings: Sendable, Equatable {
    public var temperature: Float
    public var topK: Int
    public var topP: Float

    public init(temperature: Float = 0, topK: Int = 0, topP: Float = 1) {
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
    }

    public var isGreedy: Bool { temperature <= 0 }
}

struct Sampler {
    let settings: SamplingSettings
    var generator: SeededGenerator
    /// Scratch of (vocabulary) indices for sorting candidates.
    private var candidates: [Int32] = []

    init(settings: SamplingSettings, seed: UInt64) {
        self.settings = settings
        generator = SeededGenerator(seed: seed)
    }

    /// Picks a token from `logits` (count = vocabulary); entries in `banned` are never chosen.
    mutating func next(_ logits: UnsafeMutablePointer<Float>, count: Int, banned: Set<Int>) -> Int {
        for id in banned where id < count { logits[id] = -.infinity }
        if settings.isGreedy { return Self.argmax(logits, count: count) }
        let inverseTemperature = 1 / settings.temperature
        let maximum = LogSoftmaxKernels.maximumValue(logits, count: count)
        if candidates.count != count { candidates = (0..<count).map(Int32.init) }
        // Probabilities (unnormalised) in place.
        for index in 0..<count { logits[index] = exp((logits[index] - maximum) * inverseTemperature) }
        var limit = count
        if settings.topK > 0 && settings.topK < count || settings.topP < 1 {
            candidates.withUnsafeMutableBufferPointer { buffer in
                for index in 0..<count { buffer[index] = Int32(index) }
                buffer.sort { logits[Int($0)] > logits[Int($1)] || (logits[Int($0)] == logits[Int($1)] && $0 < $1) }
            }
            if settings.topK > 0 { limit = min(limit, settings.topK) }
            if settings.topP < 1 {
                var total: Double = 0
                for rank in 0..<limit { total += Double(logits[Int(candidates[rank])]) }
                var cumulative: Double = 0
                var kept = 0
                for rank in 0..<limit {
                    kept += 1
                    cumulative += Double(logits[Int(candidates[rank])]) / total
                    if cumulative >= Double(settings.topP) { break }
                }
                limit = max(kept, 1)
            }
        } else {
            for index in 0..<count { candidates[index] = Int32(index) }
        }
        var total: Double = 0
        for rank in 0..<limit { total += Double(logits[Int(candidates[rank])]) }
        var draw = Double.random(in: 0..<1, using: &generator) * total
        for rank in 0..<limit {
            draw -= Double(logits[Int(candidates[rank])])
            if draw < 0 { return Int(candidates[rank]) }
        }
        return Int(candidates[limit - 1])
    }

    static func argmax(_ logits: UnsafePointer<Float>, count: Int) -> Int {
        var best = 0
        var bestValue = -Float.infinity
        for index in 0..<count where logits[index] > bestValue {
            bestValue = logits[index]
            best = index
        }
        return best
    }
}
