import Foundation
import TunecheckTestSupport
import Testing
import TunecheckEngine
@testable import TunecheckHarness

/// Each metric formula against an independent computation: preference metrics by hand, drift from full
/// log-softmax rows of both models, preflight verdicts at their boundaries, golden similarity by hand and against
/// a brute-force LCS.
struct MetricFormulaTests {
    static func pair(_ id: String, chosen: [Double], rejected: [Double]) -> PairScore {
        PairScore(id: id, chosen: SpanScore(tokenLogprobs: chosen), rejected: SpanScore(tokenLogprobs: rejected))
    }

    // MARK: - Preference (TRL's rewards/*)

    @Test func preferenceMetricsMatchAHandComputation() {
        // Policy and reference summed log-probs, chosen / rejected:
        //   a: π (-10, -12)  ref (-11, -11)  → r_c = 0.1·1 = 0.1,   r_r = 0.1·(-1) = -0.1,  margin 0.2,  right
        //   b: π (-20, -15)  ref (-18, -16)  → r_c = -0.2,          r_r = 0.1,             margin -0.3, wrong
        //   c: π (-9, -30)   ref (-9, -30)   → r_c = 0,             r_r = 0,               margin 0,    wrong (not >)
        // accuracy 1/3; margins mean (0.2 - 0.3 + 0)/3 = -1/30; rewards/chosen (0.1 - 0.2 + 0)/3 = -1/30;
        // rewards/rejected (-0.1 + 0.1 + 0)/3 = 0; logps/chosen (-10 - 20 - 9)/3 = -13; logps/rejected -19.
        // Raw (no reference): summed a -10 > -12 yes, b -20 > -15 no, c -9 > -30 yes → 2/3.
        // Per token: a chosen 2 tokens (-5), rejected 4 tokens (-3) → no; b chosen 4 (-5) vs 3 (-5) → no (equal);
        // c chosen 3 (-3) vs 10 (-3) → no → 0.
        let policy = [Self.pair("a", chosen: [-4, -6], rejected: [-3, -3, -3, -3]),
                      Self.pair("b", chosen: [-5, -5, -5, -5], rejected: [-5, -5, -5]),
                      Self.pair("c", chosen: [-3, -3, -3], rejected: Array(repeating: -3, count: 10))]
        let reference = [Self.pair("a", chosen: [-11], rejected: [-11]),
                         Self.pair("b", chosen: [-18], rejected: [-16]),
                         Self.pair("c", chosen: [-9], rejected: [-30])]
        let metrics = PreferenceMetrics(policy: policy, reference: reference, beta: 0.1)
        #expect(abs(metrics.accuracy - 1.0 / 3) < 1e-12)
        #expect(abs(metrics.meanMargin - (-1.0 / 30)) < 1e-12)
        #expect(abs(metrics.meanChosenReward - (-1.0 / 30)) < 1e-12)
        #expect(abs(metrics.meanRejectedReward) < 1e-12)
        #expect(abs(metrics.meanChosenLogprob - (-13)) < 1e-12)
        #expect(abs(metrics.meanRejectedLogprob - (-19)) < 1e-12)
        #expect(abs(metrics.rawAccuracySum - 2.0 / 3) < 1e-12)
        #expect(metrics.rawAccuracyMean == 0)

        // The suite: accuracy 1/3 < 0.5 fails, the margin check passes; per-pair items carry the same numbers.
        let suite = PreferenceSuite.run(checkpoint: "x", policy: policy, reference: reference, thresholds: PreferenceThresholds())
        #expect(suite.checks.first { $0.name == "accuracy" }?.status.isFailure == true)
        #expect(suite.checks.first { $0.name == "margin" }?.status == .passed)
        let pairA = suite.checks.first { $0.name == "pair a" }
        #expect(pairA?.metrics.first { $0.name == "margin" }.map { abs($0.value - 0.2) < 1e-12 } == true)
        #expect(suite.metric(.rawAccuracySum).map { abs($0 - 2.0 / 3) < 1e-12 } == true)

        // β scales rewards and margins linearly, not accuracies.
        let hot = PreferenceMetrics(policy: policy, reference: reference, beta: 1)
        #expect(abs(hot.meanMargin - (-1.0 / 3)) < 1e-12 && hot.accuracy == metrics.accuracy)

        // An exploding margin fails the margin check.
        let exploded = PreferenceSuite.run(checkpoint: "x", policy: [Self.pair("a", chosen: [-1], rejected: [-200])],
                                           reference: [Self.pair("a", chosen: [-50], rejected: [-50])], thresholds: PreferenceThresholds())
        // margin = 0.1·(49 + 150) = 19.9 > 5
        #expect(exploded.metric(.rewardsMargins).map { abs($0 - 19.9) < 1e-9 } == true)
        #expect(exploded.checks.first { $0.name == "margin" }?.status.isFailure == true)
    }

    // MARK: - Drift

    /// Both models' full log-softmax rows, position by position.
    static func rows(_ model: DecoderModel, _ ids: [Int]) throws -> [[Double]] {
        try Scorer(model: model).logSoftmaxRows(ids)
    }

    /// numpy's default (linear) percentile, written out independently.
    static func numpyPercentile(_ values: [Double], _ q: Double) -> Double {
        let sorted = values.sorted()
        let h = (Double(sorted.count) - 1) * q
        let lo = Int(floor(h)), hi = Int(ceil(h))
        return sorted[lo] + (h - Double(lo)) * (sorted[hi] - sorted[lo])
    }

    @Test func driftMatchesKLAndLogprobsFromFullRowsOfBothModels() throws {
        let folder = TestPaths.repositoryRoot.appendingPathComponent("models/tiny-default")
        let base = try LanguageModel.load(folder: folder)
        let lora = try LoRAParameters(base: base.decoder, rank: 2, scale: 4, keys: nil, numLayers: nil, seed: 7)
        for module in lora.modules {
            for index in 0..<module.b.count { module.b.values[index] = Float((index * 37) % 11 - 5) * 4e-3 }
        }
        let tuned = base.replacingDecoder(lora.model)
        let evalsets = TestPaths.repositoryRoot.appendingPathComponent("evalsets/default")
        let texts = try EvalsetLoader.texts(evalsets.appendingPathComponent("texts.jsonl"))
        let pairs = try EvalsetLoader.pairs(evalsets.appendingPathComponent("pairs.jsonl"))

        // Through the harness.
        let baseTexts = try EvalsetScoring.scoreTexts(texts, model: base)
        let tunedTexts = try EvalsetScoring.scoreTexts(texts, model: tuned)
        let comparison = try DistributionComparison.compare(reference: base.decoder, candidate: tuned.decoder, sequences: baseTexts.map(\.ids))
        let drift = DriftSuite.TextDrift(base: baseTexts, checkpoint: tunedTexts, comparison: comparison)
        let basePairs = try EvalsetScoring.scorePairs(pairs, model: base)
        let tunedPairs = try EvalsetScoring.scorePairs(pairs, model: tuned)
        var thresholds = DriftThresholds()
        thresholds.maxTextKL = 1e-9
        let suite = DriftSuite.run(checkpoint: "tuned", basePairs: basePairs, checkpointPairs: tunedPairs, textDrift: drift, thresholds: thresholds)

        // Independently: every position's full distributions under both models.
        var kls: [Double] = [], changes: [Double] = [], sameTop = 0
        for text in texts {
            let ids = base.tokenizer.encode(text.text)
            let p = try Self.rows(base.decoder, ids), q = try Self.rows(tuned.decoder, ids)
            for position in 0..<(ids.count - 1) {
                var kl = 0.0
                for token in p[position].indices { kl += exp(p[position][token]) * (p[position][token] - q[position][token]) }
                kls.append(kl)
                changes.append(q[position][ids[position + 1]] - p[position][ids[position + 1]])
                if p[position].indices.max(by: { p[position][$0] < p[position][$1] }) == q[position].indices.max(by: { q[position][$0] < q[position][$1] }) {
                    sameTop += 1
                }
            }
        }
        let meanKL = kls.reduce(0, +) / Double(kls.count)
        #expect(meanKL > 1e-4, "the adapter moves the distribution (\(meanKL))")
        #expect(abs(drift.meanKL - meanKL) < 1e-5 * max(1, meanKL))
        #expect(abs(drift.meanLogprobChange - changes.reduce(0, +) / Double(changes.count)) < 1e-5)
        for (label, q) in [("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("max", 1.0)] {
            let value = drift.klPercentiles.first { $0.label == label }?.value ?? .nan
            #expect(abs(value - Self.numpyPercentile(kls, q)) < 1e-5, "\(label): \(value) vs \(Self.numpyPercentile(kls, q))")
        }
        #expect(abs(drift.sameTopFraction - Double(sameTop) / Double(kls.count)) < 1e-12)
        #expect(suite.metric(.textKLMean).map { abs($0 - meanKL) < 1e-5 } == true)
        #expect(suite.checks.first { $0.name == "text-kl" }?.status.isFailure == true, "KL above the limit fails")

        // Pair gaps: prompt with special tokens, response without, response positions only.
        func gap(_ model: DecoderModel, _ pair: PairItem) throws -> (sum: Double, mean: Double) {
            func span(_ response: String) throws -> [Double] {
                let prompt = base.tokenizer.encode(pair.prompt)
                let ids = prompt + base.tokenizer.encode(response, addSpecialTokens: false)
                let rows = try Self.rows(model, ids)
                return (prompt.count..<ids.count).map { rows[$0 - 1][ids[$0]] }
            }
            let chosen = try span(pair.chosen), rejected = try span(pair.rejected)
            let mean = { (values: [Double]) in values.reduce(0, +) / Double(values.count) }
            return (chosen.reduce(0, +) - rejected.reduce(0, +), mean(chosen) - mean(rejected))
        }
        var sumDrift = 0.0, meanDrift = 0.0
        for pair in pairs {
            let before = try gap(base.decoder, pair), after = try gap(tuned.decoder, pair)
            sumDrift += (after.sum - before.sum) / Double(pairs.count)
            meanDrift += (after.mean - before.mean) / Double(pairs.count)
        }
        #expect(suite.metric(.gapSumDrift).map { abs($0 - sumDrift) < 1e-3 } == true, "\(String(describing: suite.metric(.gapSumDrift))) vs \(sumDrift)")
        #expect(suite.metric(.gapMeanDrift).map { abs($0 - meanDrift) < 1e-4 } == true)
    }

    // MARK: - Preflight

    static func gapPairs(_ meanGap: Double) -> [PairScore] {
        // Two pairs whose summed gaps average to `meanGap`.
        [Self.pair("1", chosen: [meanGap - 10], rejected: [-10]), Self.pair("2", chosen: [meanGap - 30], rejected: [-30])]
    }

    @Test(arguments: [(-99.0, PreflightAnalysis.Verdict.ok), (-100.0, .ok), (-100.5, .warn), (-499.0, .warn), (-500.0, .warn),
                      (-500.5, .fail), (-1000.0, .fail), (40.0, .ok)])
    func preflightVerdictAtTheBoundaries(_ meanGap: Double, _ verdict: PreflightAnalysis.Verdict) {
        let analysis = PreflightAnalysis(scores: Self.gapPairs(meanGap), thresholds: PreflightThresholds())
        #expect(abs(analysis.meanGapSum - meanGap) < 1e-9)
        #expect(analysis.verdict == verdict, "mean gap \(meanGap) → \(analysis.verdict)")
        let suite = analysis.suiteResult(scores: Self.gapPairs(meanGap))
        #expect(suite.checks[0].status.isFailure == (verdict == .fail), "only likely-fail fails the suite")
        if verdict != .ok { #expect(analysis.reasons[0].contains(verdict == .fail ? "-500" : "-100")) }
    }

    @Test func preflightThresholdsAreConfigurable() {
        var thresholds = PreflightThresholds()
        thresholds.warnBelow = -10
        thresholds.failBelow = -20
        #expect(PreflightAnalysis(scores: Self.gapPairs(-15), thresholds: thresholds).verdict == .warn)
        #expect(PreflightAnalysis(scores: Self.gapPairs(-25), thresholds: thresholds).verdict == .fail)
    }

    // MARK: - Golden similarity

    @Test func goldenSimilarityIsTheLCSRatio() {
        // 2·LCS / (|a| + |b|), worked by hand.
        #expect(GoldenSuite.similarity([1, 2, 3, 4], [1, 3, 4, 5]) == 0.75)           // LCS 1 3 4
        #expect(GoldenSuite.similarity(Array("abcd"), Array("acbd")) == 0.75)         // LCS a b d
        #expect(GoldenSuite.similarity([1, 2, 3], [3, 2, 1]) == 2.0 / 6)              // LCS of length 1
        #expect(GoldenSuite.similarity([Int](), [Int]()) == 1)
        #expect(GoldenSuite.similarity([Int](), [1, 2]) == 0)
        #expect(GoldenSuite.similarity([7, 7, 7], [7, 7, 7]) == 1)
        #expect(GoldenSuite.similarity([1, 2], [3, 4, 5]) == 0)
        #expect(GoldenSuite.similarity([1, 2, 1, 2, 1], [2, 1, 2]) == 6.0 / 8)        // LCS 2 1 2
        let words = GoldenSuite.similarity(GoldenSuite.words("the cat sat  on\nthe mat"), GoldenSuite.words("the dog sat on the mat"))
        #expect(abs(words - 10.0 / 12) < 1e-12)                                         // 5 of 6 words in common

        // Against a brute-force LCS (memoised recursion) on pseudo-random sequences.
        func lcs(_ a: [Int], _ b: [Int]) -> Int {
            var memo: [Int: Int] = [:]
            func go(_ i: Int, _ j: Int) -> Int {
                if i == a.count || j == b.count { return 0 }
                if let known = memo[i * 1000 + j] { return known }
                let value = a[i] == b[j] ? 1 + go(i + 1, j + 1) : max(go(i + 1, j), go(i, j + 1))
                memo[i * 1000 + j] = value
                return value
            }
            return go(0, 0)
        }
        var state: UInt64 = 12345
        func next() -> Int { state = state &* 6364136223846793005 &+ 1442695040888963407; return Int(state >> 59) % 5 }
        for _ in 0..<50 {
            let a = (0..<(next() * 3)).map { _ in next() }, b = (0..<(next() * 3 + 1)).map { _ in next() }
            let expected = 2 * Double(lcs(a, b)) / Double(a.count + b.count)
            #expect(abs(GoldenSuite.similarity(a, b) - expected) < 1e-12, "\(a) vs \(b)")
        }
    }

    @Test func goldenSimilarityModeUsesTheThreshold() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("golden-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: folder) }
        let stored = [GoldenOutput(id: "p", prompt: "q", promptIds: nil, ids: [1, 2, 3, 4], text: "a b c d")]
        _ = try GoldenSuite.run(suiteName: "s", checkpoint: "c", actual: stored, settings: [:], directory: folder, update: true,
                                thresholds: GoldenThresholds())
        let now = [GoldenOutput(id: "p", prompt: "q", promptIds: nil, ids: [1, 3, 4, 5], text: "a c d e")]
        var thresholds = GoldenThresholds()
        thresholds.mode = .similarity
        thresholds.minSimilarity = 0.75
        let (passing, comparisons) = try GoldenSuite.run(suiteName: "s", checkpoint: "c", actual: now, settings: [:], directory: folder,
                                                         update: false, thresholds: thresholds)
        #expect(passing.passed && comparisons.first?.similarity == 0.75)
        thresholds.minSimilarity = 0.76
        let (failing, _) = try GoldenSuite.run(suiteName: "s", checkpoint: "c", actual: now, settings: [:], directory: folder,
                                               update: false, thresholds: thresholds)
        #expect(!failing.passed)
        let (exact, _) = try GoldenSuite.run(suiteName: "s", checkpoint: "c", actual: now, settings: [:], directory: folder,
                                             update: false, thresholds: GoldenThresholds())
        #expect(!exact.passed, "exact mode needs identical ids")
    }
}
