import Foundation

/// One multiple-choice item's outcome under one model, as lm-eval's `process_results` makes it: `pred` is the
/// argmax of the summed log-likelihoods, `predNorm` the argmax of log-likelihood / the choice's length in
/// characters (Unicode scalars, Python's `len`, without the delimiter); ties go to the first choice (numpy's argmax).
public struct ChoiceOutcome: Sendable, Equatable {
    public var id: String
    public var loglikelihoods: [Double]
    public var pred: Int
    public var predNorm: Int
    public var gold: Int

    public init(score: ChoiceScore) {
        id = score.id
        loglikelihoods = score.loglikelihoods
        pred = Self.argmax(score.loglikelihoods)
        predNorm = Self.argmax(zip(score.loglikelihoods, score.choiceLengths).map { $0 / Double($1) })
        gold = score.gold
    }

    public var correct: Bool { pred == gold }
    public var correctNorm: Bool { predNorm == gold }

    /// numpy's argmax: the first maximum (a NaN wins, as in numpy).
    static func argmax(_ values: [Double]) -> Int {
        var best = 0
        for index in values.indices.dropFirst() {
            if values[best].isNaN { return best }
            if values[index].isNaN || values[index] > values[best] { best = index }
        }
        return best
    }
}

/// lm-eval's `acc` and `acc_norm` with their standard errors (`mean_stderr`: sample standard deviation / √n).
public struct ChoiceAccuracy: Sendable, Equatable {
    public var acc: Double
    public var accStderr: Double
    public var accNorm: Double
    public var accNormStderr: Double
    public var count: Int

    public init(_ outcomes: [ChoiceOutcome]) {
        let hits = outcomes.map { $0.correct ? 1.0 : 0.0 }
        let normHits = outcomes.map { $0.correctNorm ? 1.0 : 0.0 }
        count = outcomes.count
        acc = Statistics.mean(hits)
        accStderr = Self.meanStderr(hits)
        accNorm = Statistics.mean(normHits)
        accNormStderr = Self.meanStderr(normHits)
    }

    /// `sample_stddev(arr) / sqrt(len(arr))`; NaN for fewer than two values, as lm-eval (which divides by n − 1).
    static func meanStderr(_ values: [Double]) -> Double {
        guard values.count > 1 else { return .nan }
        let mean = Statistics.mean(values)
        let variance = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(values.count - 1)
        return variance.squareRoot() / Double(values.count).squareRoot()
    }
}

/// A checkpoint's accuracy against its base's on the same items: the paired difference of per-item correctness
/// with a 95% normal interval, and the exact two-sided McNemar test on the discordant items.
public struct PairedAccuracy: Sendable, Equatable {
    /// Mean of (checkpoint correct − base correct): the accuracy difference, negative for a drop.
    public var difference: Double
    /// difference ± 1.96 · s / √n, s the sample standard deviation of the per-item differences.
    public var low: Double
    public var high: Double
    /// Items the base answered right and the checkpoint wrong (regressions), and the reverse (improvements).
    public var baseOnly: Int
    public var checkpointOnly: Int
    /// Exact two-sided McNemar p-value: min(1, 2 · P(X ≤ min(b, c))), X ~ Binomial(b + c, ½); 1 without discordant items.
    public var pValue: Double

    public init(base: [Bool], checkpoint: [Bool]) {
        precondition(base.count == checkpoint.count, "paired accuracy needs the same items on both sides")
        let differences = zip(base, checkpoint).map { Double($1 ? 1 : 0) - Double($0 ? 1 : 0) }
        let mean = Statistics.mean(differences)
        difference = mean
        let n = Double(differences.count)
        var spread = 0.0
        if differences.count > 1 {
            let variance = differences.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / (n - 1)
            spread = 1.96 * variance.squareRoot() / n.squareRoot()
        }
        low = mean - spread
        high = mean + spread
        baseOnly = zip(base, checkpoint).filter { $0 && !$1 }.count
        checkpointOnly = zip(base, checkpoint).filter { !$0 && $1 }.count
        pValue = Self.mcnemarExact(baseOnly, checkpointOnly)
    }

    /// min(1, 2 · Σ_{k ≤ min(b,c)} C(b+c, k) / 2^(b+c)), summed in log space (exact to double rounding for any n).
    static func mcnemarExact(_ b: Int, _ c: Int) -> Double {
        let n = b + c
        guard n > 0 else { return 1 }
        let k = min(b, c)
        let logHalf = -Double(n) * log(2.0)
        var tail = 0.0
        var logChoose = 0.0 // log C(n, 0)
        for i in 0...k {
            if i > 0 { logChoose += log(Double(n - i + 1)) - log(Double(i)) }
            tail += exp(logChoose + logHalf)
        }
        return min(1, 2 * tail)
    }
}

/// lm-eval's rolling-loglikelihood metrics over a set of texts: `word_perplexity` = exp(−Σ ll / Σ words),
/// `byte_perplexity` = exp(−Σ ll / Σ bytes), `bits_per_byte` = −Σ ll / Σ bytes / ln 2 (`weighted_perplexity`,
/// `bits_per_byte` aggregations; words and bytes as `count_words` / `count_bytes`).
public struct PerplexityFigures: Sendable, Equatable {
    public var wordPerplexity: Double
    public var bytePerplexity: Double
    public var bitsPerByte: Double

    public init(scores: [RollingScore]) {
        let loglikelihood = scores.reduce(0) { $0 + $1.loglikelihood }
        let words = Double(scores.reduce(0) { $0 + $1.words })
        let bytes = Double(scores.reduce(0) { $0 + $1.bytes })
        wordPerplexity = exp(-loglikelihood / words)
        bytePerplexity = exp(-loglikelihood / bytes)
        bitsPerByte = -loglikelihood / bytes / log(2.0)
    }
}
