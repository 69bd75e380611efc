import Foundation
import TunecheckEngine
import TunecheckTestSupport
import Testing
@testable import TunecheckHarness

/// The choices and perplexity suites' statistics and verdicts, from per-item values alone.
struct CapabilitySuiteTests {
    /// Exact two-sided McNemar p-values, by hand: 2·Σ_{k≤min(b,c)} C(b+c, k) / 2^(b+c), capped at 1.
    static let mcnemarCases: [(Int, Int, Double)] = [
        (6, 0, 2.0 / 64), (5, 0, 2.0 / 32), (10, 2, 2.0 * 79 / 4096), (3, 3, 1.0), (0, 0, 1.0), (14, 1, 2.0 * 16 / 32768), (0, 7, 2.0 / 128),
    ]

    @Test(arguments: mcnemarCases)
    func mcnemarExact(b: Int, c: Int, expected: Double) {
        #expect(abs(PairedAccuracy.mcnemarExact(b, c) - expected) <= 1e-14 * expected)
    }

    /// At least 6 one-sided discordant items are needed for p < 0.05 (as the README says).
    @Test func sixDiscordantItemsAreTheSmallestSignificantDrop() {
        #expect(PairedAccuracy.mcnemarExact(5, 0) >= 0.05)
        #expect(PairedAccuracy.mcnemarExact(6, 0) < 0.05)
    }

    @Test func pairedDifferenceAndInterval() {
        // 10 items: base right on 8, checkpoint right on 5; 4 lost, 1 gained.
        let base = [true, true, true, true, true, true, true, true, false, false]
        let checkpoint = [true, true, true, true, false, false, false, false, true, false]
        let paired = PairedAccuracy(base: base, checkpoint: checkpoint)
        let differences: [Double] = [0, 0, 0, 0, -1, -1, -1, -1, 1, 0]
        let mean = -0.3
        let sd = (differences.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 9).squareRoot()
        #expect(abs(paired.difference - mean) < 1e-15)
        #expect(abs(paired.low - (mean - 1.96 * sd / 10.0.squareRoot())) < 1e-12)
        #expect(abs(paired.high - (mean + 1.96 * sd / 10.0.squareRoot())) < 1e-12)
        #expect(paired.baseOnly == 4 && paired.checkpointOnly == 1)
        #expect(abs(paired.pValue - 2.0 * 6 / 32) < 1e-15)
    }

    /// acc_norm divides by the choice's length in characters (Unicode scalars, without the delimiter); ties go to
    /// the first choice.
    @Test func predictionsAndNormalisation() {
        let outcome = ChoiceOutcome(score: ChoiceScore(id: "x", loglikelihoods: [-2, -4, -2], gold: 1, choiceLengths: [2, 5, 4]))
        #expect(outcome.pred == 0)
        #expect(outcome.predNorm == 2)
        #expect(ChoiceOutcome.argmax([-1, -1, -3]) == 0)
    }

    /// lm-eval's count_words (`len(re.split(r"\s+", doc))`) and count_bytes, checked against Python.
    @Test func wordAndByteCounts() {
        #expect(LoglikelihoodRequests.wordCount("  a\tb\n\nc \u{00A0}d\u{3000}") == 6)
        #expect(LoglikelihoodRequests.wordCount("one two") == 2)
        #expect(LoglikelihoodRequests.wordCount("") == 1)
        #expect(LoglikelihoodRequests.byteCount("café") == 5)
    }

    /// lm-eval's rolling windows for 10 tokens, window 4, prefix 99 (from `get_rolling_token_windows` +
    /// `make_disjoint_window`: ([99], [0,1,2,3]), ([3], [4,5,6,7]), ([5,6,7], [8,9])).
    @Test func rollingWindows() {
        let windows = LoglikelihoodRequests.rollingWindows(Array(0..<10), prefix: 99, maxLength: 4)
        #expect(windows == [TailRequest(tokens: [99, 0, 1, 2, 3], scoredCount: 4), TailRequest(tokens: [3, 4, 5, 6, 7], scoredCount: 4),
                            TailRequest(tokens: [5, 6, 7, 8, 9], scoredCount: 2)])
        #expect(LoglikelihoodRequests.rollingWindows([7], prefix: 1, maxLength: 4) == [TailRequest(tokens: [1, 7], scoredCount: 1)])
    }

    /// Left truncation to the window + 1 tokens, and a continuation without tokens of its own.
    @Test func requestTruncation() throws {
        let request = try LoglikelihoodRequests.request(context: Array(0..<10), continuation: [20, 21], maxLength: 5)
        #expect(request == TailRequest(tokens: [6, 7, 8, 9, 20, 21], scoredCount: 2))
        #expect(try LoglikelihoodRequests.request(context: [1], continuation: [], maxLength: 5) == nil)
    }

    /// Scores that make the model right (choice 0 more likely) or wrong.
    static func scores(_ right: [Bool]) -> [ChoiceScore] {
        right.enumerated().map { ChoiceScore(id: "q\($0.offset)", loglikelihoods: $0.element ? [-1, -2] : [-2, -1], gold: 0, choiceLengths: [1, 1]) }
    }

    @Test func choicesVerdictNeedsBothADropAndSignificance() {
        let thresholds = ChoicesThresholds()
        let n = 100
        let base = Array(repeating: true, count: n)
        // 6 lost, none gained: a 6-point drop, p = 2/64 < 0.05 → fails; the lost items fail, the others pass.
        var lostSix = base
        for index in 0..<6 { lostSix[index] = false }
        let failing = ChoicesSuite.run(checkpoint: "c", scores: Self.scores(lostSix), baseScores: Self.scores(base),
                                       thresholds: thresholds)
        #expect(!failing.passed)
        #expect(failing.checks.filter { $0.status.isFailure }.map(\.name) == ["verdict"] + (0..<6).map { "item q\($0)" })
        #expect(abs(failing.metric(.mcnemarP)! - 2.0 / 64) < 1e-15 && failing.metric(.lostItems) == 6)
        // 5 lost: a 5-point drop but p = 1/16 ≥ 0.05 → passes, while the 5 lost items still fail as test cases.
        var lostFive = base
        for index in 0..<5 { lostFive[index] = false }
        let noisy = ChoicesSuite.run(checkpoint: "c", scores: Self.scores(lostFive), baseScores: Self.scores(base),
                                     thresholds: thresholds)
        #expect(noisy.passed)
        #expect(noisy.failureCount == 5)
        // A significant but small drop (within max_drop) passes: 2 of 100 lost with max_drop 0.02 and alpha 1.
        var loose = thresholds
        loose.alpha = 0.99
        var lostTwo = base
        lostTwo[0] = false
        lostTwo[1] = false
        #expect(ChoicesSuite.run(checkpoint: "c", scores: Self.scores(lostTwo), baseScores: Self.scores(base),
                                 thresholds: loose).passed)
        lostTwo[2] = false
        #expect(!ChoicesSuite.run(checkpoint: "c", scores: Self.scores(lostTwo), baseScores: Self.scores(base),
                                  thresholds: loose).passed)
        // The base itself: acc and its standard error, no comparison.
        let own = ChoicesSuite.run(checkpoint: "base", scores: Self.scores(lostSix), baseScores: nil, thresholds: thresholds)
        #expect(own.passed && own.metric(.acc) == 0.94 && own.metric(.mcnemarP) == nil)
        #expect(own.items.count == n)
    }

    @Test func perplexityVerdict() {
        // "one two three" and "four five": 5 words, 22 bytes.
        let base = [RollingScore(id: "t1", loglikelihood: -6, words: 3, bytes: 13), RollingScore(id: "t2", loglikelihood: -4, words: 2, bytes: 9)]
        let figures = PerplexityFigures(scores: base)
        #expect(abs(figures.wordPerplexity - exp(10.0 / 5)) < 1e-12)
        #expect(abs(figures.bytePerplexity - exp(10.0 / 22)) < 1e-12)
        #expect(abs(figures.bitsPerByte - 10.0 / 22 / log(2.0)) < 1e-12)
        // +9.5% word perplexity passes, +10.5% fails (default max_increase 10%).
        func run(scale: Double) -> SuiteResult {
            let total = -5 * log(exp(2.0) * scale)
            let scores = [RollingScore(id: "t1", loglikelihood: total * 0.6, words: 3, bytes: 13),
                          RollingScore(id: "t2", loglikelihood: total * 0.4, words: 2, bytes: 9)]
            return PerplexitySuite.run(checkpoint: "c", scores: scores, baseScores: base, thresholds: PerplexityThresholds())
        }
        #expect(run(scale: 1.095).passed)
        let failing = run(scale: 1.105)
        #expect(!failing.passed)
        #expect(abs(failing.metric(.wordPerplexityRatio)! - 1.105) < 1e-9)
    }

    /// The suites' settings in a suite file: strict keys, range checks, relative evalset paths.
    @Test func suiteFileSettings() throws {
        let folder = try TestPaths.temporaryDirectory("capability-suite")
        defer { try? FileManager.default.removeItem(at: folder) }
        func load(_ yaml: String) throws -> SuiteConfiguration {
            let file = folder.appendingPathComponent("suite.yaml")
            try yaml.write(to: file, atomically: true, encoding: .utf8)
            return try SuiteConfiguration.load(file)
        }
        let configuration = try load("""
            evalsets: {choices: mc.jsonl, texts: t.jsonl}
            thresholds:
              choices: {max_drop: 0.05, alpha: 0.01, max_length: 128}
              perplexity: {max_increase: 0.2}
            """)
        #expect(configuration.evalsets.choices == folder.appendingPathComponent("mc.jsonl").standardizedFileURL.path)
        #expect(configuration.thresholds.choices.maxDrop == 0.05 && configuration.thresholds.choices.alpha == 0.01)
        #expect(configuration.thresholds.choices.maxLength == 128 && configuration.thresholds.perplexity.maxLength == nil)
        #expect(configuration.thresholds.perplexity.maxIncrease == 0.2)
        #expect(throws: HarnessError.self) { try load("thresholds: {choices: {max_dropp: 0.05}}") }
        #expect(throws: HarnessError.self) { try load("thresholds: {choices: {alpha: 1.5}}") }
        #expect(throws: HarnessError.self) { try load("thresholds: {perplexity: {max_length: 0}}") }
        #expect(SuiteKind(rawValue: "choices") == .choices && SuiteKind(rawValue: "perplexity") == .perplexity)
    }
}
